//! Access requests: a newcomer asks for a portal account from the sign-in page; the request
//! goes to the staff console and, as `access_requested`, to the change feed for TOT's system
//! (where contacts are made). Staff mark it done or refused, and the person is told by email.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{ActionError, record_event};
use crate::model::{FieldError, Lines, MessageKind, check_chars, check_text};
use crate::services::Services;
use crate::store::access;

/// What the form asks.
#[derive(Debug, Clone, Default)]
pub struct AccessInput {
    pub name: String,
    pub email: String,
    pub company: String,
    pub note: String,
}

fn check(input: &AccessInput) -> Vec<FieldError> {
    let mut errs = vec![];
    use crate::model::limits::{ACCESS_NOTE, PERSON_NAME};
    check_text("name", &input.name, PERSON_NAME, &mut errs);
    check_text("company", &input.company, PERSON_NAME, &mut errs);
    if input.note.chars().count() > ACCESS_NOTE {
        errs.push(FieldError::new("note", format!("longer than {ACCESS_NOTE} characters")));
    }
    if !crate::model::records::valid_email(input.email.trim()) {
        errs.push(FieldError::new("email", "is not an email address"));
    }
    for (field, value, lines) in [
        ("name", &input.name, Lines::One),
        ("email", &input.email, Lines::One),
        ("company", &input.company, Lines::One),
        ("note", &input.note, Lines::Many),
    ] {
        if let Err(e) = check_chars(field, value.trim(), lines) {
            errs.push(e);
        }
    }
    errs
}

/// Records a request and its change-feed event together; `None` when a request from the same
/// address is still open (it stands, and nothing more is recorded). Whether the address is
/// known is never looked at: the answer is the same for everyone.
pub async fn request(state: &Services, input: &AccessInput, now: DateTime<Utc>) -> Result<Option<i64>, ActionError> {
    if let Some(e) = check(input).into_iter().next() {
        return Err(ActionError::invalid(&e.field, e.reason));
    }
    // The answer goes to this address: one of cport's own would mail cport.
    super::person_email(state, "email", &input.email, "the person asking")?;
    let (name, email, company, note) = (input.name.trim(), input.email.trim(), input.company.trim(), input.note.trim());
    let mut tx = state.db.begin().await?;
    let Some(id) = access::insert(&mut tx, name, email, company, note, now).await? else {
        tx.rollback().await?;
        return Ok(None);
    };
    let data = json!({"id": id, "name": name, "email": email, "company": company, "note": note});
    record_event(state, &mut tx, crate::model::ChangeKind::AccessRequested, ("", None), &id.to_string(), &data, now)
        .await?;
    tx.commit().await?;
    state.wake_dispatch.notify_waiters();
    Ok(Some(id))
}

crate::named_enum! {
    /// How staff decide a request.
    pub enum Decision {
        /// The account was made (in TOT's system, which sends contacts to cport).
        Done = "done",
        Refused = "refused",
    }
}

impl Decision {
    /// What the request's status becomes.
    pub fn status(self) -> crate::model::AccessStatus {
        match self {
            Decision::Done => crate::model::AccessStatus::Done,
            Decision::Refused => crate::model::AccessStatus::Refused,
        }
    }
}

/// What came of deciding a request.
#[derive(Debug)]
pub enum Decided {
    /// Decided now; the person's email is queued.
    Now,
    /// It had been decided so already (a second click): nothing more is done or sent. The
    /// request as it stands, with who decided it and when.
    Already(access::AccessRequest),
}

/// The form's `id` names no request (read first, or again after a race): said the same way.
fn no_request(id: i64) -> ActionError {
    ActionError::invalid("id", format!("there is no access request {id}"))
}

/// Decides an open request and queues the email that tells the person, in one transaction.
/// The same decision again is [`Decided::Already`]; the other one, once it is decided, a
/// conflict naming what it was.
pub async fn decide(
    state: &Services,
    id: i64,
    decision: Decision,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Decided, ActionError> {
    let Some(r) = access::get(&state.db, id).await? else {
        return Err(no_request(id));
    };
    // Said first: a request decided already is that, whatever else is true of it now (the
    // decision is made again below, atomically, for two clicks at once).
    if r.status != crate::model::AccessStatus::Open {
        return decided_already(r, decision);
    }
    // Done means the account is there: the person is told it is ready, so it must be. They
    // are greeted as the contact TOT made (the name and client on record), not as the form
    // said: anyone may ask in another's name.
    let (name, company) = match decision {
        Decision::Done => {
            let ids = crate::store::sessions::contacts_by_email(&state.db, &r.email).await?;
            let Some(first) = ids.first() else {
                return Err(ActionError::Conflict(format!(
                    "no contact has the address {} yet: make the account in TOT's system, let it reach cport, \
                     then mark the request done",
                    r.email
                )));
            };
            // One address may be a contact of several clients: each is named.
            let mut clients: Vec<String> = Vec::new();
            let mut name = String::new();
            for id in &ids {
                let c = crate::store::contacts::get_contact(&state.db, id).await?;
                if id == first {
                    name = c.name;
                }
                if !clients.contains(&c.client_name) {
                    clients.push(c.client_name);
                }
            }
            (name, clients.join(" and "))
        }
        Decision::Refused => (r.name.clone(), r.company.clone()),
    };
    let email = match super::mail::access_email(state, &name, &r.email, &company, decision == Decision::Done) {
        Ok(p) => Some(p),
        Err(e) => {
            // cport's bug, not the person's: said loudly; the decision still stands.
            tracing::error!(request = id, error = %e, "bug: the access answer could not be written");
            None
        }
    };
    let mut tx = state.db.begin().await?;
    if !access::decide(&mut tx, id, decision.status(), by, now).await? {
        tx.rollback().await?;
        // Another click decided it meanwhile: said as it now stands.
        let r = access::get(&state.db, id).await?.ok_or_else(|| no_request(id))?;
        return decided_already(r, decision);
    }
    if let Some(email) = email {
        let row = email.queued(None, MessageKind::System, format!("access:{id}"), None, now);
        crate::store::outbox::insert_message(&mut tx, &row, now).await?;
    }
    tx.commit().await?;
    state.wake_dispatch.notify_waiters();
    Ok(Decided::Now)
}

/// A request decided already, asked to be decided `decision`: the same is a second click,
/// the other a conflict that says what it was decided, by whom.
fn decided_already(r: access::AccessRequest, decision: Decision) -> Result<Decided, ActionError> {
    if r.status == decision.status() {
        return Ok(Decided::Already(r));
    }
    let by = r.decided_by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
    Err(ActionError::Conflict(format!("access request {} was decided already ({}){by}", r.id, r.status.as_str())))
}
