//! One-click unsubscribe (RFC 8058): the signed address in a digest's or alert's
//! `List-Unsubscribe` turns that kind of email off for that contact, without a session. The
//! contact turns it back on from the preferences page.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{ActionError, Actor, record};
use crate::model::Stoppable;
use crate::services::Services;
use crate::store::contacts::ContactRow;
use crate::store::settings::set_email_kind;
use crate::store::{StoreError, Tx};

/// Whether `what` email is off for the contact already: a second visit to the link says so
/// rather than asking again.
pub async fn stopped_already(state: &Services, contact: &ContactRow, what: Stoppable) -> Result<bool, StoreError> {
    let s = crate::store::settings::get_settings(&state.db, &contact.id).await?;
    Ok(match what {
        Stoppable::Digest => !s.email_digests,
        Stoppable::Alert => !s.email_alerts,
    })
}

/// Turns off `what` email for the contact and records it in the change
/// feed (`email_unsubscribed`) when it changed anything; false when it was off already.
pub async fn unsubscribe(
    state: &Services,
    contact: &ContactRow,
    what: Stoppable,
    now: DateTime<Utc>,
) -> Result<bool, ActionError> {
    let mut tx = state.db.begin().await?;
    let changed = unsubscribe_in(state, &mut tx, contact, what, "one-click", now).await?;
    tx.commit().await?;
    Ok(changed)
}

/// [`unsubscribe`] inside the caller's transaction (a reply to the `mailto:` address of a
/// digest's `List-Unsubscribe`, with the subject `unsubscribe`); `via` says which. True
/// when it changed anything.
pub async fn unsubscribe_in(
    state: &Services,
    tx: &mut Tx,
    contact: &ContactRow,
    what: Stoppable,
    via: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !set_email_kind(tx, &contact.id, what, false, now).await? {
        return Ok(false);
    }
    let actor = Actor::new(contact.clone(), crate::model::Channel::Email);
    let data = json!({"what": what, "via": via});
    record(state, tx, crate::model::ChangeKind::EmailUnsubscribed, &actor, &contact.id, &data, now).await?;
    tracing::info!(contact = %contact.id, %what, via, "unsubscribed");
    Ok(true)
}

/// Lifts a suspension after bounces (staff saw the address works again), in one transaction.
pub async fn resume_email(state: &Services, contact_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let mut tx = state.db.begin().await?;
    let lifted = crate::store::inbound::clear_bounces(&mut tx, contact_id, now).await?;
    tx.commit().await?;
    Ok(lifted)
}
