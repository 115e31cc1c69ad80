//! Where a signed link for a contact may lead: a page they can open, not one that would end
//! on "not found" or "not for your role". Asked by `cport link --to` before it signs one.

use super::Actor;
use crate::model::CommandWord;
use crate::store::{Db, StoreError};

/// Why a signed link for `actor` to `path` would not open: a page for staff or machines, a
/// page the contact's role does not see, or a record their client does not have. `None`
/// when it opens (or is a page this does not check). The rules are the pages' own: the
/// role's ([`crate::model::Role::may_ask`], [`Actor::may_see_visuals`]) and the record's
/// owner.
pub async fn leads_nowhere(db: &Db, actor: &Actor, path: &str) -> Result<Option<String>, StoreError> {
    use StoreError::NotFound;
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.first() {
        Some(&"staff") => return Ok(Some("it is the staff console's, not a page of the portal".into())),
        Some(&"api") => return Ok(Some("it is the API's, not a page of the portal".into())),
        Some(&"l") => return Ok(Some("it is a signed link already: give the page it opens".into())),
        _ => {}
    }
    let (Some(kind), Some(id)) = (parts.first(), parts.get(1)) else {
        return Ok(None);
    };
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy().into_owned();
    let client = actor.client_id();
    let (what, may, found) = match *kind {
        "visuals" => {
            ("visual", actor.may_see_visuals(), crate::store::visuals::get_visual(db, client, &id).await.map(|_| ()))
        }
        "jobs" => ("job", actor.may_see_jobs(), crate::store::jobs::get_job(db, client, &id).await.map(|_| ())),
        "deliveries" => (
            "delivery",
            actor.role.may_ask(CommandWord::Track),
            crate::store::enquiries::delivery(db, client, &id).await.map(|_| ()),
        ),
        "pos" => (
            "purchase order",
            actor.role.may_ask(CommandWord::Po),
            crate::store::enquiries::purchase_order(db, client, &id).await.map(|_| ()),
        ),
        _ => return Ok(None),
    };
    if !may {
        return Ok(Some(format!("it is a {what}'s page, which a contact of role {} does not see", actor.role)));
    }
    // Below the record's page, only the pages it has: a job's delivery form (for those who
    // act on orders), a delivery's two PDFs.
    match (*kind, &parts[2..]) {
        (_, []) | ("deliveries", ["note.pdf" | "packing.pdf"]) => {}
        ("jobs", ["delivery"]) if actor.may_act() => {}
        ("jobs", ["delivery"]) => {
            return Ok(Some(format!(
                "it is a job's delivery form, which a contact of role {} does not give",
                actor.role
            )));
        }
        (_, rest) => {
            let below = crate::model::quoted(&rest.join("/"));
            return Ok(Some(format!("a {what}'s page has no page {below} below it")));
        }
    }
    match found {
        Ok(()) => Ok(None),
        Err(NotFound) => Ok(Some(format!("the contact's client has no {what} {}", crate::model::quoted(&id)))),
        Err(e) => Err(e),
    }
}
