//! Pictures under `/media`: who may see one. A picture is shown to whoever may open a
//! record showing it, by that record's own rule; a path that no record names opens nothing.

use super::Actor;
use super::commands::Command;
use crate::model::Role;
use crate::store::media::{MediaKind, MediaOwner, owners};
use crate::store::{Db, StoreError};

/// Whether `actor` may see a picture of `owner`: the owner is of the actor's client, and
/// the actor may open the owner's page.
pub fn may_see(actor: &Actor, owner: &MediaOwner) -> bool {
    if owner.client_id != actor.client_id() {
        return false;
    }
    if let Some(d) = &actor.delegation {
        // Someone deciding on one visual for a contact sees that visual's pictures only.
        return owner.kind == MediaKind::Visual && d.visual_id == owner.id;
    }
    match owner.kind {
        MediaKind::Visual => actor.may_see_visuals(),
        MediaKind::Job => actor.may_see_jobs(),
        MediaKind::Delivery => super::enquiry::allowed(actor.role, &Command::Track(owner.id.clone())),
        MediaKind::Stock => super::orders::may_see_orders(actor),
        MediaKind::PurchaseOrder => super::enquiry::allowed(actor.role, &Command::Po(owner.id.clone())),
    }
}

/// Whether `actor` may see the picture at `path` (a path under `/media`). A third party sees
/// the pictures of the SKUs allocated to them only, as `/stock` lists only those.
pub async fn may_open(db: &Db, actor: &Actor, path: &str) -> Result<bool, StoreError> {
    let mut allocated: Option<Vec<String>> = None;
    for o in owners(db, path).await?.iter().filter(|o| may_see(actor, o)) {
        if o.kind == MediaKind::Stock && actor.role == Role::ThirdParty {
            if allocated.is_none() {
                allocated = Some(crate::store::orders::allocations(db, &actor.contact.id).await?);
            }
            if !allocated.as_ref().is_some_and(|skus| skus.contains(&o.id)) {
                continue;
            }
        }
        return Ok(true);
    }
    Ok(false)
}
