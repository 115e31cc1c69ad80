//! `cport demo`: a realistic data set for three clients, with generated pictures, loaded into a
//! fresh SQLite store, so a newcomer can see cport work without TOT's system.
//!
//! The data set is `document.json`, in the same format as `cport import`. It is written as of
//! [`DATED`]; [`document`] moves every date and time in it by the time since, so due dates,
//! ages and deliveries look current whenever the demo runs.

mod pictures;

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde_json::Value;

pub use pictures::write_media;

use crate::actions::banners::BannerInput;
use crate::model::MessageKind;
use crate::model::records::Document;

/// The moment `document.json` is written as of.
pub const DATED: (i32, u32, u32, u32) = (2026, 6, 1, 9);

const DOCUMENT: &str = include_str!("document.json");

/// A demo contact worth trying, with why.
pub struct DemoContact {
    pub id: &'static str,
    pub who: &'static str,
}

pub const DEMO_CONTACTS: &[DemoContact] = &[
    DemoContact { id: "P-101", who: "Maya Patel, admin at Harbour Coffee Co" },
    DemoContact { id: "P-102", who: "Tom Reid, buyer at Harbour Coffee Co" },
    DemoContact { id: "P-103", who: "Priya Shah, finance at Harbour Coffee Co" },
    DemoContact { id: "P-104", who: "Leo Grant, viewer at Harbour Coffee Co" },
    DemoContact { id: "P-201", who: "Ewan Price, admin at Fellside Running Club" },
    DemoContact { id: "P-301", who: "Nia Okafor, buyer at Bright Sparks Events" },
];

/// The demo data set, dated around `now`.
pub fn document(now: DateTime<Utc>) -> Document {
    let (y, m, d, h) = DATED;
    let dated = Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().expect("DATED is a valid time");
    let mut doc: Value = serde_json::from_str(DOCUMENT).expect("document.json is valid JSON");
    shift_dates(&mut doc, now - dated, now.date_naive() - dated.date_naive());
    serde_json::from_value(doc).expect("document.json holds import records")
}

/// Moves every date (`2026-06-01`) by `days` and every time (RFC 3339) by `by`, wherever it
/// stands in the document.
fn shift_dates(v: &mut Value, by: Duration, days: Duration) {
    match v {
        Value::String(s) => {
            if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                *s = (d + days).to_string();
            } else if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                *s = (t.with_timezone(&Utc) + by).to_rfc3339_opts(SecondsFormat::Secs, true);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|x| shift_dates(x, by, days)),
        Value::Object(fields) => fields.values_mut().for_each(|x| shift_dates(x, by, days)),
        _ => {}
    }
}

/// The demo's stop-press banner.
pub fn banner(now: DateTime<Utc>) -> BannerInput {
    BannerInput {
        title: "Christmas dispatch deadline".into(),
        body: "Orders approved by 12 December ship before the holidays. Later approvals go out from 5 January.".into(),
        severity: "warning".into(),
        clients: vec![],
        starts_at: Some(now - Duration::hours(1)),
        expires_at: Some(now + Duration::days(21)),
    }
}

/// One message the demo leaves dead in the outbox, as a bounce would, for the staff console's
/// re-queue or set aside: a sign-in link to Priya Shah (P-103) whose server answered "mailbox
/// full".
pub async fn dead_letter(state: &crate::services::Services, now: DateTime<Utc>) -> anyhow::Result<i64> {
    use crate::store::outbox::{Mark, insert_message, mark};
    let c = crate::store::contacts::get_contact(&state.db, "P-103").await?;
    let link = state.portal_link(&c.id, "/", now);
    let p = crate::actions::mail::login_email(state, &c, &link).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tx = state.db.begin().await?;
    // Due tomorrow, so no sender takes it before it is marked.
    let later = now + Duration::days(1);
    let id = insert_message(
        &mut tx,
        &p.queued(Some(&c.id), MessageKind::System, "demo:dead-letter".into(), None, later),
        now,
    )
    .await?
    .ok_or_else(|| anyhow::anyhow!("the demo's dead letter exists already"))?;
    tx.commit().await?;
    crate::store::console::hold_for(&state.db, id, "demo", now).await?;
    let error = format!("552 5.2.2 <{}>: mailbox full (a bounce the demo makes up)", c.email);
    mark(&state.db, id, "demo", Mark::Failed { error: &error, retry_at: None }, now).await?;
    Ok(id)
}

/// The contact whose digest the demo's reply answers, what the reply says, and the file in
/// the demo's folder it is written to.
const REPLY_FROM: &str = "P-101";
pub const REPLY_SAYS: &str = "APPROVE V-1001";
pub const REPLY_FILE: &str = "reply.eml";

/// A reply to Maya's digest approving visual V-1001, written to `dir/reply.eml` as her mail
/// program would send it: `cport inbound-email < reply.eml` takes it as the mail server would
/// hand it over, so a reply can be tried without one. None when her digest holds no reply
/// address (it went another way).
pub async fn reply_file(
    state: &crate::services::Services,
    dir: &std::path::Path,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let c = crate::store::contacts::get_contact(&state.db, REPLY_FROM).await?;
    let rows = crate::store::outbox::list_messages(&state.db, None, 100).await?;
    let Some((digest, token)) = rows
        .iter()
        .filter(|r| r.message.kind == MessageKind::Digest && r.message.contact_id.as_deref() == Some(REPLY_FROM))
        .find_map(|r| r.message.reply_token.as_deref().map(|t| (r, t)))
    else {
        return Ok(None);
    };
    // A reply to that digest, as her mail program threads it.
    let answered = serde_json::from_str::<crate::messages::EmailPayload>(&digest.message.payload)
        .ok()
        .map(|p| p.message_id)
        .filter(|id| !id.is_empty());
    // Written by lettre, as the outgoing mail is: a name that is not ASCII is encoded as
    // RFC 2047 asks, and the headers are those a mail program writes.
    let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("the demo's reply could not be written: {e}");
    let address = c.email.parse::<lettre::Address>().map_err(|e| bad(&e))?;
    let from = lettre::message::Mailbox::new(Some(c.name.clone()), address);
    let to = state.config.reply_address(token).parse::<lettre::message::Mailbox>().map_err(|e| bad(&e))?;
    let host = c.email.rsplit_once('@').map_or("example.com", |(_, h)| h);
    let mut mail = lettre::Message::builder();
    if let Some(id) = answered {
        mail = mail.in_reply_to(id.clone()).references(id);
    }
    let mail = mail
        .from(from)
        .to(to)
        .subject(format!("Re: {}", digest.message.subject))
        .date(now.into())
        .message_id(Some(format!("<demo-reply-{}@{host}>", now.timestamp_millis())))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(format!("{REPLY_SAYS}\r\n"))
        .map_err(|e| bad(&e))?
        .formatted();
    let path = dir.join(REPLY_FILE);
    std::fs::write(&path, mail)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_loads_and_its_dates_follow_today() {
        let now = Utc.with_ymd_and_hms(2027, 3, 10, 15, 30, 0).unwrap();
        let doc = document(now);
        let job = doc.jobs.iter().find(|j| j.id == "J-3001").expect("J-3001 in the demo");
        assert_eq!(job.date_required, Some(now.date_naive() + Duration::days(9)));
        assert_eq!(job.created_at, Some(now - Duration::days(12)));
        assert!(doc.clients.len() == 3 && doc.contacts.len() == 9, "three clients, nine contacts");
    }
}
