//! What a send's outcome means beyond its message: an alert its contact's quiet hours hold,
//! an address the receiving server refused (a chat gone for the bot is unlinked by
//! [`crate::actions::chat_link::chat_gone`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::channels::Providers;
use crate::model::MessageKind;
use crate::store::StoreError;
use crate::store::outbox::OutboxRow;

/// When an alert retried at `at` may go: its contact's quiet hours hold a retry as they held
/// its first try. Any other kind goes at `at`; so does an alert whose contact cannot be read
/// (the retry is not lost for want of a time zone).
pub(super) async fn after_quiet_hours(
    state: &Providers,
    row: &OutboxRow,
    settings: &HashMap<String, crate::store::settings::ContactSettings>,
    at: DateTime<Utc>,
) -> DateTime<Utc> {
    let (MessageKind::Alert, Some(id)) = (row.message.kind, &row.message.contact_id) else {
        return at;
    };
    let defaults;
    let s = match settings.get(id) {
        Some(s) => s,
        None => {
            defaults = crate::store::settings::ContactSettings::defaults(id);
            &defaults
        }
    };
    match crate::store::contacts::get_contact(&state.db, id).await {
        Ok(c) => crate::actions::targets::after_quiet_hours(&state.config, &c, s, at),
        Err(e) => {
            tracing::warn!(id = row.id, error = %e, "an alert's contact could not be read for its quiet hours");
            at
        }
    }
}

/// The receiving server refused a contact's address while cport sent to it: a hard bounce,
/// counted as a delivery report's is, so their email is suspended (and staff see why)
/// rather than every later message going dead the same way.
pub(super) async fn address_refused(
    state: &Providers,
    contact: &str,
    why: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let reason = format!("hard bounce (refused when sent) {}", crate::model::shown(why, 300));
    let limit = i64::from(state.config.inbound.soft_bounce_limit);
    let mut tx = state.db.begin().await?;
    let suspended = crate::store::inbound::record_bounce(&mut tx, contact, true, &reason, limit, now).await?;
    tx.commit().await?;
    if suspended {
        tracing::warn!(contact = %contact, %reason, "email suspended for this contact: its address was refused");
        metrics::counter!("cport_email_suspended_total").increment(1);
    }
    Ok(())
}
