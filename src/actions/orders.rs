//! Re-seller orders (shared/SPEC.md F6): baskets filled against the client's stock, placed
//! in one transaction that re-checks every line against all placed orders. The third-party
//! users who may order, and their SKUs, are [`super::third_parties`].

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{ActionError, Actor, found, record};
use crate::model::{Lines, Role};
use crate::services::Services;
use crate::store::StoreError;
use crate::store::orders as q;

/// Longest basket name, address and notes.
const NAME_MAX: usize = 80;
const TEXT_MAX: usize = 2000;

/// May see stock and orders: everyone but finance (viewers look and act on nothing).
pub fn may_see_orders(actor: &Actor) -> bool {
    actor.delegation.is_none() && actor.role != Role::Finance
}

/// May fill baskets and place orders: buyers, admins and third-party users.
pub fn may_order(actor: &Actor) -> bool {
    actor.delegation.is_none() && matches!(actor.role, Role::Admin | Role::Buyer | Role::ThirdParty)
}

/// Refused unless `actor` may order now ([`may_order`], and ordering still on for a third
/// party): asked first, so a role that may not order hears that, not what was wrong with
/// its form.
pub async fn require_order(state: &Services, actor: &Actor) -> Result<(), ActionError> {
    if !may_order(actor) {
        return Err(ActionError::Forbidden(format!("Ordering is for buyers and admins; your role is {}.", actor.role)));
    }
    // TOT can turn third-party ordering off for a client; its third parties stop at once.
    if actor.role == Role::ThirdParty && !q::third_party_ordering(&state.db, actor.client_id()).await? {
        return Err(ActionError::Forbidden("Ordering is not enabled for this account any more.".into()));
    }
    Ok(())
}

/// Third parties see only their allocated SKUs.
pub fn allocated_to(actor: &Actor) -> Option<&str> {
    (actor.role == Role::ThirdParty).then_some(actor.contact.id.as_str())
}

/// A basket's lines as `actor` may see them: a third party's line of a SKU no longer
/// allocated to them keeps its SKU and quantity (to be removed) but shows nothing of the
/// stock (its description, picture and availability are the client's).
pub async fn basket_lines(state: &Services, actor: &Actor, basket: i64) -> Result<Vec<q::BasketLine>, ActionError> {
    let mut lines = q::basket_lines(&state.db, basket).await?;
    if let Some(tp) = allocated_to(actor) {
        let allocated = q::allocations(&state.db, tp).await?;
        for l in lines.iter_mut().filter(|l| !allocated.contains(&l.sku)) {
            l.description = "no longer allocated to you".into();
            l.picture = None;
            l.available = 0;
        }
    }
    Ok(lines)
}

/// A SKU the actor may order, or "not found" (another client's SKU, or one not allocated).
async fn orderable(state: &Services, actor: &Actor, sku: &str) -> Result<q::StockItem, ActionError> {
    // An empty one is refused by its name, not looked up as a SKU called "".
    let sku = super::typed_text("sku", sku, Lines::One, crate::model::ID_MAX, "choose a SKU")?;
    let item = found(q::stock_item(&state.db, actor.client_id(), sku).await, || {
        format!("SKU {}", crate::model::shown(sku, crate::model::ID_MAX))
    })?;
    if let Some(tp) = allocated_to(actor)
        && !q::allocations(&state.db, tp).await?.iter().any(|s| s == sku)
    {
        return Err(ActionError::NotFound(format!("SKU {}", crate::model::shown(sku, crate::model::ID_MAX))));
    }
    Ok(item)
}

/// Names tell a contact's baskets apart, so no two of them share one.
fn name_taken(name: &str) -> ActionError {
    let name = crate::model::quoted(name);
    ActionError::invalid("name", format!("you have a basket named {name} already: add to it, or choose another name"))
}

fn check_name(name: &str) -> Result<String, ActionError> {
    Ok(super::typed_text("name", name, Lines::One, NAME_MAX, "give the basket a name")?.to_string())
}

pub async fn create_basket(
    state: &Services,
    actor: &Actor,
    name: &str,
    now: DateTime<Utc>,
) -> Result<i64, ActionError> {
    require_order(state, actor).await?;
    let name = check_name(name)?;
    let made = state
        .db
        .in_transaction(async |tx| q::create_basket(tx, actor.client_id(), &actor.contact.id, &name, now).await)
        .await?;
    made.ok_or_else(|| name_taken(&name))
}

/// A basket for an add that named none: called after the time it was made, on the contact's
/// clock ("Basket 5 Dec 09:30"), with a number after it when that name is the contact's already (a second one in
/// the same minute).
pub async fn create_unnamed_basket(state: &Services, actor: &Actor, now: DateTime<Utc>) -> Result<i64, ActionError> {
    require_order(state, actor).await?;
    // The time as the contact reads a clock: the zone they chose, else TOT's for them.
    let tz = crate::actions::targets::contact_clock(state, &actor.contact).await?;
    let base = format!("Basket {}", now.with_timezone(&tz).format("%-d %b %H:%M"));
    // Bounded: a contact making more than this many baskets in one minute is told the name
    // is taken, as if they had typed it.
    for n in 1..=50 {
        let name = if n == 1 { base.clone() } else { format!("{base} ({n})") };
        let made = state
            .db
            .in_transaction(async |tx| q::create_basket(tx, actor.client_id(), &actor.contact.id, &name, now).await)
            .await?;
        if let Some(id) = made {
            return Ok(id);
        }
    }
    Err(name_taken(&base))
}

async fn own_basket(state: &Services, actor: &Actor, id: i64) -> Result<q::Basket, ActionError> {
    found(q::basket(&state.db, &actor.contact.id, id).await, || format!("basket {id}"))
}

/// A quantity of a SKU in one of the contact's baskets, as asked (added, or set).
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub basket: i64,
    pub sku: &'a str,
    pub qty: i64,
}

/// Adds `qty` of a SKU to a basket: never more than is free to order less what this basket
/// already holds. Read and written with the basket locked, so adds at once each count.
pub async fn add(state: &Services, actor: &Actor, line: Line<'_>, now: DateTime<Utc>) -> Result<i64, ActionError> {
    let Line { basket, sku, qty } = line;
    require_order(state, actor).await?;
    let b = own_basket(state, actor, basket).await?;
    if qty < 1 {
        return Err(ActionError::invalid("qty", "must be a whole number of at least 1"));
    }
    let item = orderable(state, actor, sku).await?;
    // The SKU as the stock holds it, never as typed: a padded one would be a line of its own.
    let sku = item.sku.as_str();
    let mut tx = state.db.begin().await?;
    q::lock_basket(&mut tx, b.id).await?;
    let held = q::basket_lines_tx(&mut tx, b.id).await?.into_iter().find(|(s, _)| s == sku).map_or(0, |(_, q)| q);
    let room = item.available - held;
    if qty > room {
        tx.rollback().await?;
        return Err(ActionError::invalid(
            "qty",
            format!(
                "only {} more of {sku} can be ordered ({} free to order, {held} already in this basket)",
                room.max(0),
                item.available.max(0)
            ),
        ));
    }
    q::set_line(&mut tx, b.id, sku, held + qty, now).await?;
    tx.commit().await?;
    Ok(held + qty)
}

/// A basket asked to change or be placed after it was placed as `order` (a page left open
/// from before, a second click).
fn placed_already(b: &q::Basket, order: i64, at: DateTime<Utc>) -> ActionError {
    ActionError::Conflict(format!(
        "basket {} was placed as order {order} at {} UTC; it is empty now",
        b.id,
        at.format("%H:%M")
    ))
}

/// Sets a line's quantity (0 removes the line), within what is free to order. Only a line the
/// basket holds is changed: a page left open from before the basket was placed adds nothing.
pub async fn set_qty(state: &Services, actor: &Actor, line: Line<'_>, now: DateTime<Utc>) -> Result<(), ActionError> {
    let Line { basket, sku, qty } = line;
    require_order(state, actor).await?;
    let b = own_basket(state, actor, basket).await?;
    // The SKU as the basket holds it: as posted (the basket page posts each line's own, and a
    // line kept from before SKUs were trimmed may hold spaces), else trimmed, as typed.
    let exact = q::basket_lines(&state.db, b.id).await?.iter().any(|l| l.sku == sku);
    let sku =
        if exact { sku } else { super::typed_text("sku", sku, Lines::One, crate::model::ID_MAX, "choose a SKU")? };
    if qty < 0 {
        return Err(ActionError::invalid("qty", "must be 0 (remove) or more"));
    }
    // What is free is read before the transaction (on the pool, as it would be inside it): a
    // transaction that reads on the pool holds two connections at once. It is weighed below.
    let free = if qty > 0 { Some(orderable(state, actor, sku).await) } else { None };
    let mut tx = state.db.begin().await?;
    q::lock_basket(&mut tx, b.id).await?;
    // Read again under the lock: placed a moment ago, it is emptied and touched. Said before
    // what is free now is weighed, which a page left open would be told instead.
    let b = found(q::basket(&mut tx, &actor.contact.id, b.id).await, || format!("basket {}", b.id))?;
    if !q::basket_lines_tx(&mut tx, b.id).await?.iter().any(|(s, _)| s == sku) {
        let e = match q::placed_from(&mut tx, &b).await? {
            Some((order, at)) => placed_already(&b, order, at),
            None => ActionError::invalid("sku", format!("{} is not in this basket", crate::model::quoted(sku))),
        };
        tx.rollback().await?;
        return Err(e);
    }
    if let Some(item) = free {
        let item = item?;
        if qty > item.available {
            tx.rollback().await?;
            return Err(ActionError::invalid(
                "qty",
                format!("only {} of {sku} are free to order", item.available.max(0)),
            ));
        }
    }
    q::set_line(&mut tx, b.id, sku, qty, now).await?;
    tx.commit().await?;
    Ok(())
}

/// The addresses a basket may be sent to without typing one: the client's saved delivery
/// addresses, or for a third party only where its own orders went (never the client's).
pub async fn offered_addresses(state: &Services, actor: &Actor) -> Result<Vec<String>, StoreError> {
    if actor.role == Role::ThirdParty {
        q::own_addresses(&state.db, actor.client_id(), &actor.contact.id).await
    } else {
        crate::store::jobs::saved_addresses(&state.db, actor.client_id()).await
    }
}

/// The address a basket form chose: one of [`offered_addresses`] by its text, or, for `new`
/// (or nothing chosen), the one typed. Any other choice is refused by its field rather than
/// saved as an address.
pub async fn chosen_address(state: &Services, actor: &Actor, choice: &str, typed: &str) -> Result<String, ActionError> {
    match choice {
        "" | "new" => Ok(typed.to_string()),
        chosen => {
            let offered = offered_addresses(state, actor).await?;
            crate::model::offered_choice(&offered, chosen).cloned().ok_or_else(|| {
                ActionError::invalid(
                    "address_choice",
                    "choose one of the addresses offered, or a new one written below",
                )
            })
        }
    }
}

/// A basket's address or notes as typed, trimmed. Text that prints as nothing (a zero-width
/// space) is kept as nothing: the basket then asks for an address when it is placed, as the
/// delivery form does.
fn basket_text<'a>(field: &str, v: &'a str) -> Result<&'a str, ActionError> {
    super::optional_text(field, v, Lines::Many, TEXT_MAX)
}

pub async fn save_details(
    state: &Services,
    actor: &Actor,
    basket: i64,
    name: &str,
    address: &str,
    notes: &str,
    now: DateTime<Utc>,
) -> Result<(), ActionError> {
    require_order(state, actor).await?;
    let b = own_basket(state, actor, basket).await?;
    let name = check_name(name)?;
    let (address, notes) = (basket_text("address", address)?, basket_text("notes", notes)?);
    let saved = state.db.in_transaction(async |tx| q::update_basket(tx, &b, &name, address, notes, now).await).await?;
    if saved { Ok(()) } else { Err(name_taken(&name)) }
}

pub async fn delete_basket(state: &Services, actor: &Actor, basket: i64) -> Result<(), ActionError> {
    require_order(state, actor).await?;
    let b = own_basket(state, actor, basket).await?;
    q::delete_basket(&state.db, b.id).await?;
    Ok(())
}

/// A line that could not be had when placing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Short {
    pub sku: String,
    pub wanted: i64,
    pub available: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("{}", .0.iter().map(|s| format!("{}: {} wanted, {} free to order", s.sku, s.wanted, s.available.max(0))).collect::<Vec<_>>().join("; "))]
    Short(Vec<Short>),
    #[error(transparent)]
    Action(#[from] ActionError),
}

impl From<StoreError> for PlaceError {
    fn from(e: StoreError) -> Self {
        PlaceError::Action(ActionError::Store(e))
    }
}

/// Places a basket: in one transaction, locks the SKUs, re-checks every line against all
/// placed orders, records the order and its `reseller_order_placed` event, and empties the
/// basket. When any line falls short nothing is written and the short lines are returned.
pub async fn place(state: &Services, actor: &Actor, basket: i64, now: DateTime<Utc>) -> Result<i64, PlaceError> {
    require_order(state, actor).await?;
    let mut tx = state.db.begin().await?;
    // A third party's allocations and standing are read in the placing transaction: a revoke
    // or an un-allocation a moment before the order is seen, never passed.
    let allowed: Option<Vec<String>> = match allocated_to(actor) {
        Some(tp) => match q::allocations_held(&mut tx, tp).await? {
            Some(skus) => Some(skus),
            None => {
                tx.rollback().await?;
                return Err(ActionError::Forbidden("This account was revoked; it places no orders.".into()).into());
            }
        },
        None => None,
    };
    q::lock_basket(&mut tx, basket).await?;
    let b = match q::basket(&mut tx, &actor.contact.id, basket).await {
        Ok(b) => b,
        Err(StoreError::NotFound) => {
            tx.rollback().await?;
            return Err(ActionError::NotFound(format!("basket {basket}")).into());
        }
        Err(e) => return Err(e.into()),
    };
    let lines = q::basket_lines_tx(&mut tx, b.id).await?;
    if lines.is_empty() {
        let e = match q::placed_from(&mut tx, &b).await? {
            Some((order, at)) => placed_already(&b, order, at),
            None => ActionError::invalid("basket", "is empty: add something first"),
        };
        tx.rollback().await?;
        return Err(e.into());
    }
    if crate::model::blank(&b.address) {
        tx.rollback().await?;
        return Err(ActionError::invalid("address", "say where the order goes").into());
    }
    let skus: Vec<String> = lines.iter().map(|l| l.0.clone()).collect();
    q::lock_stock(&mut tx, &skus).await?;
    let mut short = vec![];
    let mut items = vec![];
    for (sku, qty) in &lines {
        let permitted = allowed.as_ref().is_none_or(|a| a.contains(sku));
        let item = match q::stock_item(&mut tx, actor.client_id(), sku).await {
            Ok(i) if permitted => i,
            Ok(_) | Err(StoreError::NotFound) => {
                short.push(Short { sku: sku.clone(), wanted: *qty, available: 0 });
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if item.available < *qty {
            short.push(Short { sku: sku.clone(), wanted: *qty, available: item.available });
        }
        items.push((item, *qty));
    }
    if !short.is_empty() {
        tx.rollback().await?;
        return Err(PlaceError::Short(short));
    }
    let order = q::insert_order(&mut tx, &b, &actor.contact.name, now).await?;
    for (item, qty) in &items {
        q::insert_order_line(&mut tx, order, &item.sku, &item.description, *qty).await?;
    }
    q::clear_basket(&mut tx, b.id, now).await?;
    let data = json!({
        "order_id": order,
        "basket": b.name,
        "address": b.address,
        "notes": b.notes,
        "lines": items.iter().map(|(i, qty)| json!({"sku": i.sku, "description": i.description, "qty": qty})).collect::<Vec<_>>(),
        "placed_by": actor.contact.name,
        "channel": actor.channel,
    });
    record(state, &mut tx, crate::model::ChangeKind::ResellerOrderPlaced, actor, &order.to_string(), &data, now)
        .await?;
    tx.commit().await?;
    state.wake_dispatch.notify_waiters();
    Ok(order)
}
