//! Staff's hands on the outbox: a failed, dead or dropped message queued again, a waiting one
//! dropped or a dead one set aside; and the rule the senders and staff share, whether a
//! message is still to go.

use chrono::{DateTime, Utc};

use std::collections::HashMap;

use super::ActionError;
use crate::model::{MessageKind, OutboxStatus, Outlet};
use crate::services::Services;
use crate::store::StoreError;
use crate::store::outbox::{self as ob, Dropping, OutboxRow, Requeue};

/// Queues message `id` again; gives when it goes (a banner's push waits for its banner's
/// start). Refused, saying why, when it is not failed, dead or dropped, or is a push of a
/// banner that was retracted or has expired (it shows nowhere). A running server's senders
/// are its caller's to wake.
pub async fn requeue(state: &Services, id: i64, now: DateTime<Utc>) -> Result<DateTime<Utc>, ActionError> {
    let db = &state.db;
    // One the senders would drop at once (its contact no longer active, its chat unlinked,
    // such emails turned off, a digest whose every item was dealt with): staff are told why,
    // not that it goes with the next send. One not to be queued again at all (sent, or still
    // waiting) is told so first, by `ob::requeue` below.
    let found = ob::get_message(db, id).await?;
    if let Some(row) = found.filter(|r| OutboxStatus::REQUEUEABLE.contains(&r.status))
        && let Some(why) = would_not_go(state, &row, now).await?
    {
        return Err(ActionError::Conflict(format!(
            "message {id} would not be sent ({why}), so it is not queued again"
        )));
    }
    match ob::requeue(db, id, now).await? {
        Requeue::Queued(at) => Ok(at),
        Requeue::Missing => Err(ActionError::NotFound(format!("message {id}"))),
        Requeue::Not(status) if OutboxStatus::REQUEUEABLE.contains(&status) => Err(busy(id)),
        Requeue::Not(status) => Err(ActionError::Conflict(format!(
            "message {id} is {status}: only a failed, dead or dropped message is queued again"
        ))),
        Requeue::BannerGone => Err(ActionError::Conflict(format!(
            "message {id} is a banner's push, and its banner was retracted or has expired: it shows nowhere, so it is not sent"
        ))),
        Requeue::Cleared => Err(ActionError::Conflict(format!(
            "message {id} is old: its content was cleared (outbox.sent_content_days), so there is nothing to send"
        ))),
    }
}

/// What came of queueing every dead message again.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DeadRequeued {
    /// How many were queued again.
    pub queued: u64,
    /// How many were left dead, by why they would not be sent.
    pub left: std::collections::BTreeMap<&'static str, u64>,
}

/// Queues every dead message again but those that would not be sent ([`would_not_go`]),
/// which stay dead, counted by why: the rule a message queued again alone is refused by.
/// Only the messages checked are queued: one that goes dead as they are read waits for the
/// next run.
pub async fn requeue_dead(state: &Services, now: DateTime<Utc>) -> Result<DeadRequeued, ActionError> {
    const PAGE: i64 = 500;
    let mut done = DeadRequeued::default();
    let mut go = Vec::new();
    let mut after = 0;
    // Ends: each page starts past the last id of the one before.
    loop {
        let page = ob::page_of(&state.db, OutboxStatus::Dead, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for (row, why) in page.iter().zip(would_not_go_all(state, &page, now).await?) {
            match why {
                Some(why) => *done.left.entry(why).or_default() += 1,
                None => go.push(row.id),
            }
        }
    }
    let (queued, left) = ob::requeue_dead(&state.db, &go, now).await?;
    done.queued = queued;
    // Gone or cleared as the walk was made.
    if let Ok(left @ 1..) = u64::try_from(left) {
        *done.left.entry("its banner was retracted or has expired, or its content was cleared").or_default() += left;
    }
    Ok(done)
}

/// Drops message `id`, which is queued, failed (waiting for a retry) or dead, saying who did
/// (`by`): it will not be sent, and a dead one leaves the dead letters waiting. Undone by
/// [`requeue`]. Refused, saying its state, when a sender holds it or it went.
pub async fn drop_message(
    state: &Services,
    id: i64,
    by: &str,
    now: DateTime<Utc>,
) -> Result<OutboxStatus, ActionError> {
    let was = ob::get_message(&state.db, id).await?.ok_or_else(|| ActionError::NotFound(format!("message {id}")))?;
    match ob::drop_message(&state.db, id, &format!("dropped by {by}"), now).await? {
        Dropping::Done => Ok(was.status),
        Dropping::Missing => Err(ActionError::NotFound(format!("message {id}"))),
        // Droppable each time it was read, and changed each time before it was dropped.
        Dropping::Not(status) if OutboxStatus::STAFF_DROPPABLE.contains(&status) => Err(busy(id)),
        Dropping::Not(status) => Err(ActionError::Conflict(format!(
            "message {id} is {status}: only a queued, failed or dead message is dropped"
        ))),
    }
}

/// A message whose state changed under staff's hands twice over (a sender trying it at that
/// moment): nothing was done, and trying again will find it still.
fn busy(id: i64) -> ActionError {
    ActionError::Conflict(format!("message {id} changed as it was being handled; nothing was done, try again"))
}

/// What staff are told of a message dropped that was `was`.
pub fn dropped(was: OutboxStatus) -> &'static str {
    if was == OutboxStatus::Dead {
        "Set aside; it no longer counts as a dead letter waiting."
    } else {
        "Dropped; it will not be sent."
    }
}

/// What staff are told of a message queued again to go at `at`.
pub fn queued_again(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if at > now {
        format!("Queued again; it goes at {} UTC, when its banner starts.", at.format("%Y-%m-%d %H:%M"))
    } else {
        "Queued again; it goes with the next send.".into()
    }
}

/// Why message `row`, queued again now, would not be sent, if it would not: [`unwanted`],
/// its contact's email suspended, or (a digest) everything it lists dealt with. [`requeue`]
/// refuses such a message saying so, and the console offers to queue again only a failed,
/// dead or dropped message for which it is `None`.
pub async fn would_not_go(
    state: &Services,
    row: &OutboxRow,
    now: DateTime<Utc>,
) -> Result<Option<&'static str>, StoreError> {
    Ok(would_not_go_all(state, std::slice::from_ref(row), now).await?.pop().flatten())
}

/// [`would_not_go`] for each of `rows`, their contacts' state read once for them all.
async fn would_not_go_all(
    state: &Services,
    rows: &[OutboxRow],
    now: DateTime<Utc>,
) -> Result<Vec<Option<&'static str>>, StoreError> {
    let mut contacts: Vec<&str> = rows.iter().filter_map(|r| r.message.contact_id.as_deref()).collect();
    contacts.sort_unstable();
    contacts.dedup();
    let active = crate::store::contacts::active_of(&state.db, &contacts).await?;
    let settings = crate::store::settings::settings_of(&state.db, &contacts).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(why) = unwanted(state, row, &active, &settings, now).await? {
            out.push(Some(why));
            continue;
        }
        // The sender would make it dead at once, as it did: said before, not after.
        let suspended = row.message.channel == Outlet::Email
            && row
                .message
                .contact_id
                .as_ref()
                .and_then(|c| settings.get(c))
                .is_some_and(|s| s.email_suspended_at.is_some());
        out.push(if suspended {
            Some("email to its contact is suspended after bounces; resume it on the contacts page first")
        } else {
            nothing_left(state, row).await?.then_some("everything it lists was dealt with")
        });
    }
    Ok(out)
}

/// Why a row is no longer to be sent, if it is not: its contact was deactivated (or removed)
/// since it was queued, or (an email written once, a link or an answer) their address
/// changed, or the chat it goes to was unlinked from them, or its banner is gone, or (a
/// change event) the webhook was turned off. A digest, an alert or a banner held by quiet
/// hours or a retry would otherwise show what is no longer theirs to see, or reach a chat
/// whose user said to stop. (A digest or banner that has waited, or whose contact TOT
/// changed meanwhile, goes written again for them as they are, and is dropped when nothing
/// it lists is left to ask: `outbox::render`.)
pub async fn unwanted(
    state: &Services,
    row: &OutboxRow,
    active: &HashMap<String, crate::store::contacts::Reach>,
    settings: &HashMap<String, crate::store::settings::ContactSettings>,
    now: DateTime<Utc>,
) -> Result<Option<&'static str>, StoreError> {
    // A change event queued while the webhook was set goes nowhere once it is not.
    if row.message.channel == Outlet::Webhook && !state.config.webhook.is_set() {
        return Ok(Some("webhook.url is not set any more"));
    }
    // Its content cleared as it was queued again (the two at one moment): nothing to send.
    if row.message.payload.is_empty() {
        return Ok(Some("its content was cleared (outbox.sent_content_days); there is nothing to send"));
    }
    if link_expired(state, row, now) {
        return Ok(Some("a link it carries has expired; send the person a new one"));
    }
    // A banner's push after its banner was retracted, or once it has expired (a retry after
    // an outage, a claim held through the retraction), would tell of what shows nowhere.
    if row.message.kind == MessageKind::Banner && ob::banner_gone_for(&state.db, row.id, now).await? {
        return Ok(Some("its banner was retracted or has expired"));
    }
    let Some(contact) = &row.message.contact_id else {
        return Ok(None);
    };
    let Some(reach) = active.get(contact) else {
        return Ok(Some("the contact is no longer active"));
    };
    // An email TOT's change of the contact's address overtook (a sign-in or reset link, a
    // chat code, an answer) goes to no address that is no longer theirs: it may hold what
    // signs in as them. (A digest or banner is written again for the new address, an alert
    // is written when it goes; `outbox::render`.)
    if row.message.channel == Outlet::Email
        && !matches!(row.message.kind, MessageKind::Digest | MessageKind::Banner | MessageKind::Alert)
        && !reach.email.eq_ignore_ascii_case(&row.message.recipient)
    {
        return Ok(Some("the contact's email address has changed since it was written"));
    }
    // An answer goes to the chat that asked, linked or not.
    let told = matches!(row.message.kind, MessageKind::Digest | MessageKind::Alert | MessageKind::Banner);
    if !told || row.message.channel == Outlet::Webhook {
        return Ok(None);
    }
    // A digest or an alert held by quiet hours or the batch window, or waiting for a retry,
    // goes to no one who has since turned such emails off (one click in the last one). An
    // address suspended by bounces is the sender's to refuse, saying so.
    if row.message.channel == Outlet::Email {
        let kind = crate::store::settings::Sending::of_kind(row.message.kind);
        let wants = settings.get(contact).is_none_or(|s| s.wants(kind));
        return Ok((!wants).then_some("the contact has turned these emails off since"));
    }
    let linked = crate::store::chat::chats_of_contact(&state.db, contact).await?;
    let still =
        linked.iter().any(|l| Outlet::from(l.channel) == row.message.channel && l.chat_id == row.message.recipient);
    Ok((!still).then_some("the chat is no longer linked to the contact"))
}

/// Whether a message written once (a sign-in, password, invitation or delegation email, an
/// answer) carries a signed link made for it that has expired by `now`: sent late (a long
/// outage, a retry after days, staff queueing it again) it would give its reader a link that
/// opens nothing. Only a link made when the message was written counts: an answer may quote
/// what its client wrote, an old link of theirs with it, and still goes. Digests, alerts and
/// banners that have waited are written again, with new links, as they go
/// (`outbox::render`). The links are found as a sign-in link (`/l/TOKEN`) and a password link
/// (`?token=TOKEN`) are written (`links::Signer`).
fn link_expired(state: &Services, row: &OutboxRow, now: DateTime<Utc>) -> bool {
    if matches!(row.message.kind, MessageKind::Digest | MessageKind::Alert | MessageKind::Banner | MessageKind::Change)
    {
        return false;
    }
    // Made with the message: within the minute before it was queued.
    let written = row.created_at - chrono::Duration::minutes(1);
    let payload = &row.message.payload;
    ["/l/", "?token="].iter().any(|marker| {
        payload.match_indices(marker).any(|(at, _)| {
            let rest = &payload[at + marker.len()..];
            let end =
                rest.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))).unwrap_or(rest.len());
            // A sentence's full stop after a link is not part of its token.
            let token = rest[..end].trim_end_matches('.');
            state
                .signer
                .claims_any_time(token)
                .is_some_and(|c| c.expires <= now && c.issued.is_some_and(|made| made >= written))
        })
    })
}

/// Whether `row` is a digest or an alert none of whose items is still open for its contact. One whose
/// payload lists nothing readable (a chat digest written before chat digests kept their
/// items) is not taken as having nothing left.
async fn nothing_left(state: &Services, row: &OutboxRow) -> Result<bool, StoreError> {
    let Some(contact) = row.message.contact_id.as_deref() else { return Ok(false) };
    let payload = &row.message.payload;
    // An alert (or a reminder) names its items whatever its channel; a digest, as written.
    let listed = match (row.message.kind, row.message.channel) {
        (MessageKind::Alert, _) => serde_json::from_str::<crate::store::outbox::AlertPayload>(payload).map(|p| p.items),
        (MessageKind::Digest, Outlet::Email) => {
            serde_json::from_str::<crate::messages::EmailPayload>(payload).map(|p| p.item_keys)
        }
        (MessageKind::Digest, _) => serde_json::from_str::<crate::messages::ChatPayload>(payload).map(|p| p.items),
        _ => return Ok(false),
    };
    let Some(keys) = listed.ok().filter(|keys| !keys.is_empty()) else {
        return Ok(false);
    };
    Ok(still_listed(state, contact, &keys).await?.is_some_and(|(_, open)| open.is_empty()))
}

/// Of the items a digest lists (`keys`), those still open for its contact and theirs to
/// see now, in the order a digest shows them, with the contact; `None` when the contact is
/// gone.
pub async fn still_listed(
    state: &Services,
    contact_id: &str,
    keys: &[String],
) -> Result<Option<(crate::store::contacts::ContactRow, Vec<super::items::ActionItem>)>, StoreError> {
    let contact = match crate::store::contacts::get_contact(&state.db, contact_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let open = super::items::current(state, &contact).await?.into_iter().filter(|i| keys.contains(&i.key())).collect();
    Ok(Some((contact, open)))
}
