//! Client actions: the one place where the rules live. The portal, email replies and chat
//! all call these functions; each checks role and client scope, then writes the state change
//! and its change-feed event in one transaction.

pub mod access;
pub mod artwork;
pub mod banners;
pub mod chase;
pub mod chat_link;
pub mod commands;
pub mod delivery;
pub mod enquiry;
pub mod items;
pub mod landing;
pub mod mail;
pub mod media;
pub mod orders;
pub mod outbox;
pub mod targets;
pub mod third_parties;
pub mod unsubscribe;
pub mod visuals;

use crate::model::{Channel, Role};
use crate::services::Services;
use crate::store::StoreError;
use crate::store::changes::append_change;
use crate::store::contacts::ContactRow;
use crate::store::outbox::{NewMessage, insert_message};

/// Who is acting: a contact, possibly through a delegation that limits them to one visual.
#[derive(Debug, Clone)]
pub struct Actor {
    pub contact: ContactRow,
    pub role: Role,
    /// Set when a third party acts through a delegation link (id, visual, their name).
    pub delegation: Option<Delegated>,
    /// `portal`, `email`, `telegram`, `discord`: recorded with each action.
    pub channel: Channel,
}

#[derive(Debug, Clone)]
pub struct Delegated {
    pub id: i64,
    pub visual_id: String,
    pub name: String,
    pub email: String,
}

impl Actor {
    pub fn new(contact: ContactRow, channel: Channel) -> Actor {
        let role = contact.role;
        Actor { contact, role, delegation: None, channel }
    }

    pub fn client_id(&self) -> &str {
        &self.contact.client_id
    }

    /// The name recorded with what this actor does.
    pub fn display_name(&self) -> String {
        match &self.delegation {
            Some(d) => format!("{} (for {})", d.name, self.contact.name),
            None => self.contact.name.clone(),
        }
    }

    /// May act on orders (visuals, delivery instructions).
    pub fn may_act(&self) -> bool {
        self.delegation.is_none() && self.role.acts_on_orders()
    }

    /// May see the visuals list and visual pages at all.
    pub fn may_see_visuals(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Buyer | Role::Viewer)
    }

    /// May see job pages (and their pictures and artwork): not through a delegation.
    pub fn may_see_jobs(&self) -> bool {
        self.delegation.is_none() && matches!(self.role, Role::Admin | Role::Buyer | Role::Viewer)
    }
}

/// Why an action was refused. Every variant says what to do in words a client understands.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Missing, or another client's: the same answer for both, so ids reveal nothing. The
    /// thing is named as sent, with any character that prints as nothing written as its code
    /// point (a zero-width space in an id is seen, not hidden).
    #[error("{} not found", crate::model::visible(.0, 200))]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ActionError {
    pub fn invalid(field: &str, message: impl Into<String>) -> ActionError {
        ActionError::Invalid { field: field.to_string(), message: message.into() }
    }
}

/// Refuses text a person typed when it holds control characters its field may not hold
/// (the same rule as TOT's records: see [`crate::model::forbidden_char`]).
pub(crate) fn check_typed(field: &str, s: &str, lines: crate::model::Lines) -> Result<(), ActionError> {
    crate::model::check_chars(field, s, lines).map_err(|e| ActionError::invalid(&e.field, e.reason))
}

/// Text a person typed for `field`, trimmed. Refused, naming the field, when it holds
/// characters the field may not hold, when it is empty (`empty` says what to give instead)
/// or when it runs over `max` characters.
pub(crate) fn typed_text<'a>(
    field: &str,
    s: &'a str,
    lines: crate::model::Lines,
    max: usize,
    empty: &str,
) -> Result<&'a str, ActionError> {
    let s = optional_text(field, s, lines, max)?;
    if crate::model::blank(s) {
        return Err(ActionError::invalid(field, empty));
    }
    Ok(s)
}

/// [`typed_text`] for a field that may be left empty. Text that prints as nothing (spaces
/// and zero-width characters alone) is left empty: kept, it would show as a name or note
/// that is not there.
pub(crate) fn optional_text<'a>(
    field: &str,
    s: &'a str,
    lines: crate::model::Lines,
    max: usize,
) -> Result<&'a str, ActionError> {
    let s = s.trim();
    check_typed(field, s, lines)?;
    if s.chars().count() > max {
        return Err(ActionError::invalid(field, format!("longer than {max} characters")));
    }
    Ok(if crate::model::blank(s) { "" } else { s })
}

/// An email address a person typed, trimmed; refused, naming the field, unless cport can send
/// to it (see [`crate::model::records::valid_email`]).
pub(crate) fn typed_email<'a>(field: &str, s: &'a str) -> Result<&'a str, ActionError> {
    let s = s.trim();
    check_typed(field, s, crate::model::Lines::One)?;
    if !crate::model::records::valid_email(s) {
        let given = crate::model::quoted(s);
        return Err(ActionError::invalid(
            field,
            format!("is not an email address like name@example.com ({given} was given)"),
        ));
    }
    Ok(s)
}

/// An address typed for a person cport will write to (a delegate, a third-party user):
/// [`typed_email`], and not one of cport's own addresses, which reach no person (mail to
/// them comes back to cport, or is a loop it ignores). `who` says whose address to give.
pub(crate) fn person_email<'a>(state: &Services, field: &str, s: &'a str, who: &str) -> Result<&'a str, ActionError> {
    let email = typed_email(field, s)?;
    if state.config.email.is_own_address(email) {
        return Err(ActionError::invalid(field, format!("is cport's own address; give the address of {who}")));
    }
    Ok(email)
}

/// Maps "no such row" to a not-found naming the thing.
pub(crate) fn found<T>(r: Result<T, StoreError>, what: impl FnOnce() -> String) -> Result<T, ActionError> {
    match r {
        Ok(v) => Ok(v),
        Err(StoreError::NotFound) => Err(ActionError::NotFound(what())),
        Err(e) => Err(e.into()),
    }
}

/// The changes one inbound message makes (an email reply, a chat update, a Discord
/// interaction), in one transaction together with the record that the message was seen: a
/// crash at any point leaves all of it or none of it, so a provider's retry either does the
/// work or is recognised as a duplicate.
///
/// The transaction begins at the first write, so a message that only reads holds no write
/// lock while it reads. Every write on the way must go through [`Unit::tx`]: on SQLite a
/// second writer would wait for this one.
pub struct Unit {
    db: crate::store::Db,
    tx: Option<crate::store::Tx>,
    /// Its turn among the units in transactions at once (see `Services::units`), taken with
    /// its transaction and kept until the unit ends.
    units: std::sync::Arc<tokio::sync::Semaphore>,
    turn: Option<tokio::sync::OwnedSemaphorePermit>,
    faults: std::sync::Arc<crate::supervise::Faults>,
    /// The items this unit's decisions closed (`A1:V-1001`). An answer later in the same
    /// unit reads the store as it was before the unit began (reads hold no lock and do not
    /// see its uncommitted writes), so it leaves these out rather than offer them again.
    closed: std::collections::HashSet<String>,
}

/// How long a unit waits for its turn among those in transactions before the store counts
/// as busy (as long as a SQLite statement waits for another writer).
const UNIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Unit {
    pub fn new(state: &Services) -> Unit {
        Unit {
            db: state.db.clone(),
            tx: None,
            units: state.units.clone(),
            turn: None,
            faults: state.faults.clone(),
            closed: Default::default(),
        }
    }

    /// Notes that this unit closed the item `category`:`id` (approved, rejected, said to
    /// need no delivery).
    pub fn closed(&mut self, category: crate::model::items::Category, id: &str) {
        self.closed.insert(crate::model::items::ActionItem::key_of(category, id));
    }

    /// Whether this unit closed the item of `key`.
    pub fn is_closed(&self, key: &str) -> bool {
        self.closed.contains(key)
    }

    /// The unit's transaction, begun now if it was not yet.
    pub async fn tx(&mut self) -> Result<&mut crate::store::Tx, StoreError> {
        let tx = match self.tx.take() {
            Some(tx) => tx,
            None => {
                if self.turn.is_none() {
                    let waited = tokio::time::timeout(UNIT_WAIT, self.units.clone().acquire_owned()).await;
                    self.turn = Some(waited.ok().and_then(Result::ok).ok_or(StoreError::Busy(UNIT_WAIT))?);
                }
                self.db.begin().await?
            }
        };
        Ok(self.tx.insert(tx))
    }

    /// A named step of the work: fails the whole unit when a test armed `point` (to prove
    /// that a failure there leaves nothing behind).
    pub fn step(&self, point: &str) -> Result<(), StoreError> {
        if self.faults.fires(point) {
            return Err(StoreError::Conflict(format!("fault injected at {point}")));
        }
        Ok(())
    }

    /// Makes every change of the unit permanent at once.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.step("unit:commit")?;
        match self.tx {
            Some(tx) => tx.commit().await,
            None => Ok(()),
        }
    }

    /// Forgets every change of the unit.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.tx {
            Some(tx) => tx.rollback().await,
            None => Ok(()),
        }
    }
}

/// Appends a change-feed event in the caller's transaction and, when a webhook is configured,
/// queues its push through the outbox in the same transaction.
pub(crate) async fn record(
    state: &Services,
    tx: &mut crate::store::Tx,
    kind: crate::model::ChangeKind,
    actor: &Actor,
    subject_id: &str,
    data: &serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<i64, StoreError> {
    let by = Some(actor.contact.id.as_str());
    record_event(state, tx, kind, (actor.client_id(), by), subject_id, data, now).await
}

/// [`record`] for an event no contact made: `who` is the client (empty for none) and the
/// contact, if any.
pub(crate) async fn record_event(
    state: &Services,
    tx: &mut crate::store::Tx,
    kind: crate::model::ChangeKind,
    who: (&str, Option<&str>),
    subject_id: &str,
    data: &serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<i64, StoreError> {
    let (client_id, contact_id) = who;
    // To the microsecond, as PostgreSQL keeps it: the webhook's event is the feed's, to the
    // letter.
    let now = chrono::SubsecRound::trunc_subsecs(now, 6);
    // A test's failure of the store after the change it records was written.
    if state.faults.fires("change:record") {
        return Err(StoreError::Conflict("fault injected at change:record".into()));
    }
    let seq = append_change(tx, kind, client_id, contact_id, subject_id, data, now).await?;
    let hook = &state.config.webhook;
    if hook.is_set() {
        let event = crate::model::Change {
            seq,
            kind: kind.to_string(),
            client_id: client_id.to_string(),
            contact_id: contact_id.map(str::to_string),
            subject_id: subject_id.to_string(),
            at: now,
            data: data.clone(),
        };
        insert_message(
            tx,
            &NewMessage {
                contact_id: None,
                channel: crate::model::Outlet::Webhook,
                kind: crate::model::MessageKind::Change,
                idem_key: format!("change:{seq}"),
                reply_token: None,
                recipient: hook.url.clone(),
                subject: kind.to_string(),
                payload: serde_json::to_string(&event).unwrap_or_default(),
                next_attempt_at: now,
            },
            now,
        )
        .await?;
    }
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Lines;

    /// A field left with only what prints as nothing is empty, for every field that may be:
    /// an invisible contact name or note is not stored to show as one that is not there.
    #[test]
    fn text_that_prints_as_nothing_is_left_empty() {
        for s in ["", "  ", "\u{200B}", " \u{2060}\u{FEFF} ", "\u{3164}"] {
            assert_eq!(optional_text("contact_name", s, Lines::One, 10).unwrap(), "", "{s:?}");
            let e = typed_text("address", s, Lines::Many, 10, "give an address").unwrap_err();
            assert!(e.to_string().contains("address") && e.to_string().contains("give an address"), "{e}");
        }
        assert_eq!(optional_text("notes", " Gate\u{200B}2 ", Lines::Many, 10).unwrap(), "Gate\u{200B}2");
        let e = optional_text("notes", "a\u{0007}", Lines::Many, 10).unwrap_err();
        assert!(e.to_string().contains("notes"), "{e}");
    }
}
