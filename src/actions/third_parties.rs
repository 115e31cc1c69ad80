//! The third-party users a client's admins set up (shared/SPEC.md F6): invited by email,
//! revoked, and allowed to order the SKUs allocated to them.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{ActionError, Actor, found, record};
use crate::model::{Lines, Role};
use crate::services::Services;
use crate::store::orders as q;

/// Manages the client's third-party users and their SKUs: the client's admins.
pub fn manages_users(actor: &Actor) -> bool {
    actor.delegation.is_none() && actor.role == Role::Admin
}

fn require_admin(actor: &Actor) -> Result<(), ActionError> {
    if manages_users(actor) {
        Ok(())
    } else {
        Err(ActionError::Forbidden("Only the client's admins manage third-party users.".into()))
    }
}

async fn require_third_parties(state: &Services, actor: &Actor) -> Result<(), ActionError> {
    require_admin(actor)?;
    if !q::third_party_ordering(&state.db, actor.client_id()).await? {
        return Err(ActionError::Forbidden("Third-party ordering is not enabled for your account; ask TOT.".into()));
    }
    Ok(())
}

/// Creates a third-party user and emails them an invitation (a single-use link to choose a
/// password, valid 7 days).
pub async fn create_third_party(
    state: &Services,
    actor: &Actor,
    name: &str,
    email: &str,
    now: DateTime<Utc>,
) -> Result<String, ActionError> {
    require_third_parties(state, actor).await?;
    let name =
        super::typed_text("name", name, Lines::One, crate::model::limits::PERSON_NAME, "give the person's name")?;
    let email = super::person_email(state, "email", email, "the person the account is for")?;
    let mut tx = state.db.begin().await?;
    // An address signs in one person: asked inside the transaction that adds them.
    if let Some(holder) = q::email_taken(&mut tx, actor.client_id(), email).await? {
        tx.rollback().await?;
        // Another client's contact is not confirmed as such to this client's admin.
        let why = if holder == actor.client_id() {
            format!("{email} already has an account here")
        } else {
            format!("{email} cannot be given an account; ask TOT if it should be")
        };
        return Err(ActionError::invalid("email", why));
    }
    let id = q::next_third_party_id(&mut tx, actor.client_id()).await?;
    q::insert_third_party(
        &mut tx,
        &q::NewThirdParty {
            id: &id,
            client_id: actor.client_id(),
            name,
            email,
            timezone: &actor.contact.timezone,
            created_by: &actor.contact.id,
        },
        now,
    )
    .await?;
    record(
        state,
        &mut tx,
        crate::model::ChangeKind::ThirdPartyUserCreated,
        actor,
        &id,
        &json!({"user_id": id, "name": name, "email": email, "by": actor.contact.name}),
        now,
    )
    .await?;
    tx.commit().await?;
    crate::actions::mail::send_invitation(state, &id, name, email, &actor.contact, now).await?;
    Ok(id)
}

/// Revokes a third-party user: sessions end at once, links stop working. False when the user
/// was revoked already (a second click, a page left open): nothing more is done.
pub async fn revoke_third_party(
    state: &Services,
    actor: &Actor,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, ActionError> {
    // Taking access away needs no ordering turned on: an admin must be able to shut a door
    // TOT closed for new orders (the user's sessions still show the client's stock).
    require_admin(actor)?;
    named("user", id, "say which third-party user")?;
    // Checked as every id a form sends is (as allocating checks it): trimmed, one line, an
    // id's length at the most.
    let id = super::typed_text("user", id, Lines::One, crate::model::ID_MAX, "say which third-party user")?;
    let mut tx = state.db.begin().await?;
    if !q::revoke_third_party(&mut tx, actor.client_id(), id, now).await? {
        let active = q::third_party_active(&mut tx, actor.client_id(), id).await?;
        tx.rollback().await?;
        return match active {
            Some(false) => Ok(false),
            _ => Err(ActionError::NotFound(format!("user {}", crate::model::shown(id, crate::model::ID_MAX)))),
        };
    }
    record(
        state,
        &mut tx,
        crate::model::ChangeKind::ThirdPartyUserRevoked,
        actor,
        id,
        &json!({"user_id": id, "by": actor.contact.name}),
        now,
    )
    .await?;
    tx.commit().await?;
    crate::store::sessions::revoke_contact_sessions(&state.db, id, now).await?;
    Ok(true)
}

/// An allocation for a user revoked since the page was shown.
fn revoked(user: &str) -> ActionError {
    ActionError::Conflict(format!("user {user} was revoked; a revoked user takes no SKUs"))
}

/// Allocates or un-allocates one of the client's SKUs to one of its third-party users.
pub async fn allocate(
    state: &Services,
    actor: &Actor,
    user: &str,
    sku: &str,
    on: bool,
    now: DateTime<Utc>,
) -> Result<bool, ActionError> {
    named("user", user, "say which third-party user")?;
    named("sku", sku, "say which stock line")?;
    // Un-allocating takes access away, as revoking does: allowed with ordering off.
    match on {
        true => require_third_parties(state, actor).await?,
        false => require_admin(actor)?,
    }
    let user = super::typed_text("user", user, Lines::One, crate::model::ID_MAX, "choose a user")?;
    let sku = super::typed_text("sku", sku, Lines::One, crate::model::ID_MAX, "choose a SKU")?;
    let users = q::third_parties(&state.db, actor.client_id()).await?;
    match users.iter().find(|u| u.id == user) {
        // A revoked user's SKUs may still be taken away (they would come back with the user
        // were TOT to make the contact active again).
        Some(u) if u.active || !on => {}
        // A page left open from before the revoke: said, not "not found".
        Some(_) => return Err(revoked(user)),
        None => {
            return Err(ActionError::NotFound(format!("user {}", crate::model::shown(user, crate::model::ID_MAX))));
        }
    }
    found(q::stock_item(&state.db, actor.client_id(), sku).await, || {
        format!("SKU {}", crate::model::shown(sku, crate::model::ID_MAX))
    })?;
    let mut tx = state.db.begin().await?;
    let changed = q::set_allocation(&mut tx, user, sku, on, now).await?;
    // Read again under the lock `set_allocation` took: a revoke a moment before is seen.
    if on && q::third_party_active(&mut tx, actor.client_id(), user).await? != Some(true) {
        tx.rollback().await?;
        return Err(revoked(user));
    }
    if changed {
        let kind = if on { crate::model::ChangeKind::SkuAllocated } else { crate::model::ChangeKind::SkuUnallocated };
        record(state, &mut tx, kind, actor, sku, &json!({"user_id": user, "sku": sku, "by": actor.contact.name}), now)
            .await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// A field naming a record (a user, a SKU) sent empty is said by its name, not looked up
/// as a record of no name.
fn named(field: &str, value: &str, what: &str) -> Result<(), ActionError> {
    match value.trim().is_empty() {
        true => Err(ActionError::invalid(field, what)),
        false => Ok(()),
    }
}
