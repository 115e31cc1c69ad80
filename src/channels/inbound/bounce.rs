//! Delivery reports for messages cport sent: soft and hard bounces counted per contact,
//! email suspended after too many.

use chrono::{DateTime, Utc};

use super::Disposition;
use crate::services::Services;
use crate::store::outbox;
use crate::store::{StoreError, inbound as ledger};

pub(super) async fn bounce(
    state: &Services,
    msg: &mail_parser::Message<'_>,
    raw: &[u8],
    token: &str,
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<(Disposition,), StoreError> {
    let _ = msg;
    let text = String::from_utf8_lossy(raw);
    let field = |name: &str| {
        text.lines()
            .find(|l| l.get(..name.len()).is_some_and(|h| h.eq_ignore_ascii_case(name)))
            .and_then(|l| l.get(name.len()..))
            .map(|v| v.trim().to_string())
    };
    let status = field("Status:").unwrap_or_default();
    let diagnostic = field("Diagnostic-Code:").unwrap_or_default();
    let hard = status.starts_with('5') || (status.is_empty() && diagnostic.contains(" 5"));
    let row = match state.signer.check_reply_token(token) {
        Some(t) => outbox::find_by_reply_token(&state.db, &t).await?,
        None => None,
    };
    let mut tx = state.db.begin().await?;
    let d = match row.and_then(|r| r.contact_id) {
        Some(contact) => {
            let reason =
                format!("{} bounce {status} {diagnostic}", if hard { "hard" } else { "soft" }).trim().to_string();
            let limit = i64::from(state.config.inbound.soft_bounce_limit);
            let suspended = ledger::record_bounce(&mut tx, &contact, hard, &reason, limit, now).await?;
            if suspended {
                tracing::warn!(contact = %contact, %reason, "email suspended for this contact after bounces");
                metrics::counter!("cport_email_suspended_total").increment(1);
            }
            let (kind, r) = ("bounce", format!("{reason}{}", if suspended { "; email suspended" } else { "" }));
            ledger::record(&mut tx, message_id, Some(&contact), kind, &r, None, now).await?;
            Disposition::Bounce(r)
        }
        None => {
            let d = Disposition::Ignored("a bounce for no message of ours".into());
            ledger::record(&mut tx, message_id, None, "ignored", d.parts().1, None, now).await?;
            d
        }
    };
    tx.commit().await?;
    Ok((d,))
}
