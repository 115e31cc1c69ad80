//! Staff's hands on the outbox: a failed, dead or dropped message queued again.

use chrono::{DateTime, Utc};

use super::ActionError;
use crate::store::Db;
use crate::store::outbox::{self as ob, Requeue};

/// Queues message `id` again; gives when it goes (a banner's push waits for its banner's
/// start). Refused, saying why, when it is not failed, dead or dropped, or is a push of a
/// banner that was retracted or has expired (it shows nowhere). A running server's senders
/// are its caller's to wake.
pub async fn requeue(db: &Db, id: i64, now: DateTime<Utc>) -> Result<DateTime<Utc>, ActionError> {
    // One for a contact no longer active would be dropped by the sender at once: staff are
    // told so, not that it goes with the next send.
    if let Some(row) = ob::get_message(db, id).await?
        && let Some(contact) = &row.contact_id
        && crate::store::contacts::active_contact(db, contact).await?.is_none()
    {
        return Err(ActionError::Conflict(format!(
            "message {id} is for {}, who is no longer an active contact: it would not be sent, so it is not queued again",
            crate::model::quoted(contact)
        )));
    }
    match ob::requeue(db, id, now).await? {
        Requeue::Queued(at) => Ok(at),
        Requeue::Missing => Err(ActionError::NotFound(format!("message {id}"))),
        Requeue::Not(status) => Err(ActionError::Conflict(format!(
            "message {id} is {status}: only a failed, dead or dropped message is queued again"
        ))),
        Requeue::BannerGone => Err(ActionError::Conflict(format!(
            "message {id} is a banner's push, and its banner was retracted or has expired: it shows nowhere, so it is not sent"
        ))),
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
