//! Delivery reports for messages cport sent: soft and hard bounces counted per contact,
//! email suspended after too many.

use chrono::{DateTime, Duration, Utc};

use super::Disposition;
use crate::model::InboundOutcome;
use crate::services::Services;
use crate::store::outbox;
use crate::store::{StoreError, inbound as ledger};

/// The longest diagnostic kept from a report: enough for an MTA's sentence, not a whole
/// transcript a hostile or broken server may send.
const MOST_DIAGNOSTIC_CHARS: usize = 300;

/// The oldest message a report of failure is believed for, in days: the longest a mail server
/// keeps a message it cannot deliver (five days by default in Postfix, four in Exim), with
/// room for a report that waited in cport's mailbox while cport was down.
const REPORT_DAYS: i64 = 14;

pub(super) async fn bounce(
    state: &Services,
    raw: &[u8],
    token: &str,
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<(Disposition,), StoreError> {
    let Report { status, diagnostic, hard, recipient, failed } = Report::read(raw);
    let row = match state.signer.reply_token_of_bounce(token) {
        Some(t) => outbox::find_by_reply_token(&state.db, &t).await?,
        None => None,
    };
    // A report counts against a contact only when it is about the address the message went
    // to: a forged one (the token can be read off a forwarded message) must at least name it,
    // and a real report about another address (a forward's) is not this contact's bounce.
    let ours = row.filter(|r| recipient.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(r.message.recipient.trim())));
    // Bounces count against an address: a late report about one TOT has since replaced (the
    // contact's mail went there before the change) says nothing of the address they have now.
    let moved = match ours.as_ref().and_then(|r| r.message.contact_id.as_deref()) {
        Some(contact) => match crate::store::contacts::get_contact(&state.db, contact).await {
            Ok(c) => recipient.as_deref().is_some_and(|a| !a.eq_ignore_ascii_case(c.email.trim())),
            Err(StoreError::NotFound) => false,
            Err(e) => return Err(e),
        },
        None => false,
    };
    // A report of failure comes within the days a mail server keeps trying (Postfix: 5):
    // one about a message older than that is no real report, but the token read off a
    // delivered copy (its Return-Path holds the bounce address), and suspends no one.
    let late = ours.as_ref().is_some_and(|r| now - r.sent_at.unwrap_or(r.created_at) > Duration::days(REPORT_DAYS));
    let mut tx = state.db.begin().await?;
    // The report is recorded before it is counted, in one transaction: the same report taken
    // twice at once (two processes polling one mailbox, or IMAP and the MTA pipe) finds it
    // recorded and counts nothing, so one bounce never counts twice.
    let d = match ours.and_then(|r| r.message.contact_id) {
        // A report that the message was delivered, relayed or is still being tried is no
        // bounce, nor is one about an address the contact no longer has: kept as seen,
        // counted against no one.
        Some(_) if !failed || moved || late => {
            let d = Disposition::Ignored(match (moved, late) {
                (true, _) => "a bounce for an address the contact no longer has".into(),
                (_, true) => format!(
                    "a bounce for a message sent more than {REPORT_DAYS} days before it, which no mail server \
                     keeps trying for: not believed"
                ),
                _ => format!("a delivery report of no failure ({})", status_or_none(&status)),
            });
            if !ledger::record(&mut tx, message_id, None, InboundOutcome::Ignored, d.parts().1, None, now).await? {
                return duplicate(tx, message_id).await;
            }
            d
        }
        Some(contact) => {
            let reason =
                format!("{} bounce {status} {diagnostic}", if hard { "hard" } else { "soft" }).trim().to_string();
            if !ledger::record(&mut tx, message_id, Some(&contact), InboundOutcome::Bounce, &reason, None, now).await? {
                return duplicate(tx, message_id).await;
            }
            let limit = i64::from(state.config.inbound.soft_bounce_limit);
            let suspended = ledger::record_bounce(&mut tx, &contact, hard, &reason, limit, now).await?;
            if !suspended {
                Disposition::Bounce(reason)
            } else {
                tracing::warn!(contact = %contact, %reason, "email suspended for this contact after bounces");
                metrics::counter!("cport_email_suspended_total").increment(1);
                let r = format!("{reason}; email suspended");
                ledger::set_reason(&mut tx, message_id, &r).await?;
                Disposition::Bounce(r)
            }
        }
        None => {
            let d = Disposition::Ignored("a bounce for no message of ours, or for another address".into());
            if !ledger::record(&mut tx, message_id, None, InboundOutcome::Ignored, d.parts().1, None, now).await? {
                return duplicate(tx, message_id).await;
            }
            d
        }
    };
    tx.commit().await?;
    Ok((d,))
}

/// A report recorded meanwhile by another taker: nothing of this one is kept.
async fn duplicate(tx: crate::store::Tx, message_id: &str) -> Result<(Disposition,), StoreError> {
    tx.rollback().await?;
    Ok((Disposition::duplicate(message_id),))
}

/// What a delivery report says, read from its `message/delivery-status` fields (the first of
/// each in the message). The fields are looked up as text: mail-parser gives the part's body
/// but not its per-recipient fields, and two of them are all cport needs.
#[derive(Debug, PartialEq)]
struct Report {
    /// An RFC 3463 status code (`5.1.1`), or empty when the report has none that is one.
    status: String,
    /// The remote server's words: one line of printable text, at most
    /// [`MOST_DIAGNOSTIC_CHARS`] characters.
    diagnostic: String,
    /// A failure the address is to blame for (see [`crate::channels::blames_the_address`]):
    /// a 5.1.x status, or, without one, a 550, 551 or 553 reply in the diagnostic.
    hard: bool,
    /// The address that failed (`Final-Recipient: rfc822; ann@alpha.example`), when given.
    recipient: Option<String>,
    /// Whether it reports a failure: `Action: failed`, or, without an Action, a 4.x.x or 5.x.x
    /// status (or a 4xx or 5xx reply). `delivered`, `delayed`, `relayed` and `expanded` are none, and
    /// neither is a report whose status is no code and that names no failed reply.
    failed: bool,
}

fn status_or_none(status: &str) -> &str {
    if status.is_empty() { "no status code" } else { status }
}

impl Report {
    fn read(raw: &[u8]) -> Report {
        let text = String::from_utf8_lossy(raw);
        let field = |name: &str| {
            text.lines()
                .find(|l| l.get(..name.len()).is_some_and(|h| h.eq_ignore_ascii_case(name)))
                .and_then(|l| l.get(name.len()..))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let status = field("Status:");
        let status = if is_status_code(&status) { status } else { String::new() };
        let diagnostic = crate::model::shown(&field("Diagnostic-Code:"), MOST_DIAGNOSTIC_CHARS);
        // Hard (the contact's email suspended at once) only when the address is at fault;
        // a refusal for policy or a full mailbox is soft, as when refused while sending.
        let reply = diagnostic
            .split(|c: char| c.is_whitespace() || c == ';')
            .find(|w| w.len() == 3 && w.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|w| w.parse().ok());
        let words = format!("{status} {diagnostic}");
        let hard = crate::channels::blames_the_address(&words, reply);
        let failed = match field("Action:").to_ascii_lowercase().as_str() {
            "failed" => true,
            "" => hard || status.starts_with(['4', '5']) || reply.is_some_and(|r| (400..600).contains(&r)),
            _ => false,
        };
        let final_recipient = field("Final-Recipient:");
        let recipient = final_recipient
            .split_once(';')
            .map(|(_, address)| address.trim().trim_matches(['<', '>']).to_string())
            .filter(|a| !a.is_empty());
        Report { status, diagnostic, hard, recipient, failed }
    }
}

/// `class.subject.detail`: a class of 2, 4 or 5, then two numbers of one to three digits.
fn is_status_code(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    matches!(parts.as_slice(), [class, subject, detail]
        if matches!(*class, "2" | "4" | "5")
            && [subject, detail].iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_read_into_a_clean_bounded_reason() {
        let r = Report::read(
            b"Final-Recipient: rfc822; <Ann@alpha.example>\r\nAction: failed\r\nStatus: 5.1.1\r\n\
              Diagnostic-Code: smtp; 550 no such user\r\n",
        );
        let want = Report {
            status: "5.1.1".into(),
            diagnostic: "smtp; 550 no such user".into(),
            hard: true,
            recipient: Some("Ann@alpha.example".into()),
            failed: true,
        };
        assert_eq!(r, want);

        // Control characters (a terminal escape, a NUL) become spaces; a long sentence is cut.
        let odd = format!("Status: 4.2.2\r\nDiagnostic-Code: smtp; 452 \u{1b}[31mfull\u{0}box {}\r\n", "x".repeat(400));
        let r = Report::read(odd.as_bytes());
        assert!(!r.hard && r.status == "4.2.2");
        assert!(r.diagnostic.starts_with("smtp; 452 [31mfull box x"), "{}", r.diagnostic);
        assert!(!r.diagnostic.chars().any(char::is_control));
        assert_eq!(r.diagnostic.chars().count(), MOST_DIAGNOSTIC_CHARS);

        // A status that is not a code is not kept; the diagnostic still decides.
        let r = Report::read(b"Status: 5.1.1 <script>\r\nDiagnostic-Code: smtp; 550 gone\r\n");
        assert_eq!((r.status.as_str(), r.hard), ("", true));
        assert!(!is_status_code("5.1") && !is_status_code("7.1.1") && !is_status_code("5.1.1234"));
    }

    #[test]
    fn only_an_address_at_fault_is_a_hard_bounce() {
        let read = |status: &str, diagnostic: &str| {
            Report::read(
                format!("Action: failed\r\nStatus: {status}\r\nDiagnostic-Code: smtp; {diagnostic}\r\n").as_bytes(),
            )
        };
        assert!(read("5.1.1", "550 5.1.1 no such user").hard);
        assert!(read("5.1.10", "550 5.1.10 recipient address rejected").hard);
        // Refused for policy (DMARC, spam), or a full mailbox: failed, but soft.
        for (status, diagnostic) in [
            ("5.7.1", "550 5.7.1 rejected by DMARC policy"),
            ("5.7.26", "550 5.7.26 unauthenticated email is not accepted"),
            ("5.2.2", "552 5.2.2 mailbox full"),
            ("4.2.2", "452 4.2.2 mailbox full"),
        ] {
            let r = read(status, diagnostic);
            assert!(r.failed && !r.hard, "{status}: {r:?}");
        }
        // No status: the reply decides, and a refusal to relay is not the address's fault.
        let bare = |diagnostic: &str| Report::read(format!("Diagnostic-Code: smtp; {diagnostic}\r\n").as_bytes());
        assert!(bare("550 mailbox unavailable").hard);
        let relay = bare("550 relaying denied");
        assert!(relay.failed && !relay.hard, "{relay:?}");
        let policy = bare("554 message refused");
        assert!(policy.failed && !policy.hard, "{policy:?}");
    }

    #[test]
    fn only_a_report_of_failure_is_a_bounce() {
        let read =
            |action: &str, status: &str| Report::read(format!("Action: {action}\r\nStatus: {status}\r\n").as_bytes());
        assert!(read("failed", "5.1.1").failed && read("Failed", "4.2.2").failed);
        for (action, status) in
            [("delivered", "2.0.0"), ("delayed", "4.4.7"), ("relayed", "2.0.0"), ("expanded", "2.0.0")]
        {
            assert!(!read(action, status).failed, "{action}");
        }
        // Without an Action: a failure's status, or none.
        assert!(Report::read(b"Status: 4.2.2\r\n").failed);
        assert!(!Report::read(b"Status: 2.0.0\r\n").failed && !Report::read(b"Status: 9.9.9\r\n").failed);
        assert!(!Report::read(b"Diagnostic-Code: smtp; weird\r\n").failed);
    }
}
