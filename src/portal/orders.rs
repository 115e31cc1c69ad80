//! Portal pages for re-seller ordering: stock, baskets, placed orders, and the client admin's
//! third-party users with their SKU allocations.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde_json::{Value, json};

use super::{CsrfForm, FormData, FromParams, HttpError, Note, Params, Session, Shown, page, page_status, see_other};
use crate::actions::orders::{self as act, PlaceError};
use crate::actions::third_parties as users;
use crate::actions::{ActionError, Actor};
use crate::model::Role;
use crate::state::AppState;
use crate::store::orders as q;
use crate::web::Reply;

/// Stock lines per page.
const PAGE: i64 = 50;

fn require_orders(s: &Session) -> Result<(), HttpError> {
    if s.actor.delegation.is_some() {
        return Err(HttpError::NotFound);
    }
    if !act::may_see_orders(&s.actor) {
        return Err(HttpError::Forbidden("Stock and orders are for buyers and admins.".into()));
    }
    Ok(())
}

/// The stock page's query: `q` to search by, `page`, and a note from the step before.
pub struct StockQuery {
    q: String,
    page: i64,
    note: Note,
}

impl FromParams for StockQuery {
    fn from_params(f: FormData) -> Result<Self, HttpError> {
        Ok(StockQuery { q: f.search("q")?, page: f.page()?, note: Note::of(&f) })
    }
}

impl StockQuery {
    /// The page a form posted from the stock page goes back to: its search, first page.
    fn back(q: String) -> StockQuery {
        StockQuery { q, page: 1, note: Note::default() }
    }
}

/// `GET /stock`: the client's stock (a third party's: its allocated SKUs) with what is free
/// to order, searchable, with an "add to basket" form on each line.
pub async fn stock(State(state): State<AppState>, session: Session, Params(sq): Params<StockQuery>) -> Reply {
    stock_page(&state, &session, &sq, Shown::fresh(None)).await
}

/// The stock page; an add refused shows its line's quantity and new basket name as typed.
async fn stock_page(state: &AppState, session: &Session, sq: &StockQuery, shown: Shown) -> Reply {
    let Shown { error, status, typed, .. } = shown;
    require_orders(session)?;
    let a = &session.actor;
    let page_no = sq.page;
    let mut items =
        q::stock(&state.db, a.client_id(), act::allocated_to(a), &sq.q, PAGE + 1, (page_no - 1) * PAGE).await?;
    let more = items.len() as i64 > PAGE;
    items.truncate(PAGE as usize);
    let baskets = q::baskets_of(&state.db, &a.contact.id).await?;
    let note = sq.note.clone().verified(state, &session.token_hash);
    page_status(
        state,
        Some(session),
        "stock",
        json!({"items": items, "q": sq.q, "page": page_no, "more": more, "baskets": baskets,
               "may_order": act::may_order(a), "note": note, "error": error, "typed": typed}),
        status,
    )
    .await
}

/// `POST /stock`: add a SKU to a basket (a new one when `basket` is `new`).
pub async fn stock_add(State(state): State<AppState>, CsrfForm(session, form): CsrfForm<Session>) -> Reply {
    require_orders(&session)?;
    let a = &session.actor;
    act::require_order(&state, a).await?;
    // A double click adds once (a second add of the same line is meant only from the page
    // again), and makes one new basket, not two.
    if !super::first_sending(&state, &form, &form.text("sku")).await? {
        let note = "That form was sent already (a second click): your baskets show what it added.";
        return Ok(see_other(&state, &session.token_hash, "/baskets", note));
    }
    let sku = form.text("sku").trim().to_string();
    // The search to go back to is checked as the page's own is (it is shown and searched
    // again): a posted one the page would refuse is refused here too.
    let back = StockQuery::back(form.search("q")?);
    let qty = match super::whole_number("qty", &form.text("qty")) {
        Ok(n) => n,
        Err(e) => {
            return stock_page(&state, &session, &back, Shown::refused(e.to_string()).with_typed(&form)).await;
        }
    };
    let fresh = form.get("basket").unwrap_or("new") == "new";
    // A name typed for a new basket while an existing one is chosen: which was meant?
    if !fresh && !form.text("new_basket").trim().is_empty() {
        let msg =
            "new_basket: a name is for a new basket; choose “New basket…” to make it, or clear the name to add to \
                   the basket chosen"
                .to_string();
        return stock_page(&state, &session, &back, Shown::refused(msg).with_typed(&form)).await;
    }
    let now = Utc::now();
    let basket = match form.get("basket").unwrap_or("new") {
        "new" => {
            let name = form.text("new_basket");
            let made = if name.trim().is_empty() {
                act::create_unnamed_basket(&state, a, now).await
            } else {
                act::create_basket(&state, a, &name, now).await
            };
            match made {
                Ok(id) => id,
                // The form's field for the new basket's name is `new_basket`.
                Err(ActionError::Invalid { message, .. }) => {
                    let e = ActionError::invalid("new_basket", message);
                    return stock_error(&state, &session, &back, e, &form).await;
                }
                Err(e) => return stock_error(&state, &session, &back, e, &form).await,
            }
        }
        id => match super::digits_id(id) {
            Some(id) => id,
            None => {
                let msg = "basket: choose one of your baskets, or a new one".to_string();
                return stock_page(&state, &session, &back, Shown::refused(msg).with_typed(&form)).await;
            }
        },
    };
    match act::add(&state, a, act::Line { basket, sku: &sku, qty }, now).await {
        Ok(total) => Ok(see_other(
            &state,
            &session.token_hash,
            &format!("/baskets/{basket}"),
            &format!("Added: {sku}, now {total} in this basket."),
        )),
        Err(e) => {
            // A basket made for this line alone goes again with it.
            if fresh {
                act::delete_basket(&state, a, basket).await?;
            }
            stock_error(&state, &session, &back, e, &form).await
        }
    }
}

async fn stock_error(state: &AppState, session: &Session, back: &StockQuery, e: ActionError, form: &FormData) -> Reply {
    match e {
        // The same words for another client's SKU and for none: ids reveal nothing.
        ActionError::NotFound(_) => {
            let msg = format!("{e} among yours.");
            stock_page(state, session, back, Shown::error(StatusCode::NOT_FOUND, msg)).await
        }
        e => stock_page(state, session, back, Shown::failed(e)?.with_typed(form)).await,
    }
}

/// `GET /baskets`: the contact's baskets and a form for a new one.
pub async fn baskets(State(state): State<AppState>, session: Session, shown: Shown) -> Reply {
    baskets_page(&state, &session, shown).await
}

async fn baskets_page(state: &AppState, session: &Session, shown: Shown) -> Reply {
    let Shown { note, error, status, typed } = shown;
    require_orders(session)?;
    let list = q::baskets_of(&state.db, &session.actor.contact.id).await?;
    page_status(
        state,
        Some(session),
        "baskets",
        json!({"baskets": list, "may_order": act::may_order(&session.actor), "note": note, "error": error,
               "typed": typed}),
        status,
    )
    .await
}

/// `POST /baskets`: a new, empty basket.
pub async fn create_basket(State(state): State<AppState>, CsrfForm(session, form): CsrfForm<Session>) -> Reply {
    require_orders(&session)?;
    match act::create_basket(&state, &session.actor, &form.text("name"), Utc::now()).await {
        Ok(id) => Ok(see_other(&state, &session.token_hash, &format!("/baskets/{id}"), "Basket created.")),
        Err(e) => baskets_page(&state, &session, Shown::failed(e)?.with_typed(&form)).await,
    }
}

/// `GET /baskets/{id}`.
pub async fn basket(State(state): State<AppState>, session: Session, Path(id): Path<String>, shown: Shown) -> Reply {
    let id = super::digits_id(&id).ok_or(HttpError::NotFound)?;
    basket_page(&state, &session, id, vec![], shown).await
}

/// A basket's page; a details form refused shows its name, address and notes as typed.
async fn basket_page(state: &AppState, session: &Session, id: i64, short: Vec<act::Short>, shown: Shown) -> Reply {
    let Shown { note, error, status, typed } = shown;
    require_orders(session)?;
    let b = match q::basket(&state.db, &session.actor.contact.id, id).await {
        Ok(b) => b,
        Err(crate::store::StoreError::NotFound) => return Err(HttpError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let lines = act::basket_lines(state, &session.actor, id).await?;
    let addresses = act::offered_addresses(state, &session.actor).await?;
    let field = |key: &str, saved: &str| typed.get(key).and_then(Value::as_str).unwrap_or(saved).to_string();
    let details = json!({"name": field("name", &b.name), "address": field("address", &b.address),
                         "notes": field("notes", &b.notes)});
    page_status(
        state,
        Some(session),
        "basket",
        json!({"b": b, "details": details, "lines": lines, "addresses": addresses, "short": short,
               "may_order": act::may_order(&session.actor), "note": note, "error": error}),
        status,
    )
    .await
}

/// `POST /baskets/{id}`: `action` = `qty` (set a line; 0 removes), `remove`, `save`
/// (name, address, notes), `delete`, or `place`.
pub async fn basket_action(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(session, form): CsrfForm<Session>,
) -> Reply {
    require_orders(&session)?;
    let id = super::digits_id(&id).ok_or(HttpError::NotFound)?;
    let now = Utc::now();
    let a: &Actor = &session.actor;
    let here = format!("/baskets/{id}");
    let result: Result<Response, ActionError> = match form.get("action").unwrap_or("") {
        "qty" | "remove" => {
            let sku = form.text("sku");
            let qty = if form.get("action") == Some("remove") {
                Ok(0)
            } else {
                super::whole_number("qty", &form.text("qty"))
            };
            match qty {
                Ok(n) => act::set_qty(&state, a, act::Line { basket: id, sku: &sku, qty: n }, now).await.map(|_| {
                    see_other(
                        &state,
                        &session.token_hash,
                        &here,
                        &if n == 0 { format!("{sku} removed.") } else { format!("{sku}: {n}.") },
                    )
                }),
                Err(e) => Err(e),
            }
        }
        "save" => match act::chosen_address(&state, a, &form.text("address_choice"), &form.text("address")).await {
            Ok(address) => act::save_details(&state, a, id, &form.text("name"), &address, &form.text("notes"), now)
                .await
                .map(|_| see_other(&state, &session.token_hash, &here, "Saved. The basket keeps until you come back.")),
            Err(e) => Err(e),
        },
        // Sent twice (a second click, the back button), the second finds it gone: said so
        // on the list, not as a missing page over a delete that worked. The words fit a
        // basket that was never this contact's too, and say nothing of whose it is.
        "delete" => match act::delete_basket(&state, a, id).await {
            Ok(()) => Ok(see_other(&state, &session.token_hash, "/baskets", "Basket deleted.")),
            Err(ActionError::NotFound(_)) => Ok(see_other(
                &state,
                &session.token_hash,
                "/baskets",
                &format!("Nothing deleted: basket {id} is not among yours (deleted already?)."),
            )),
            Err(e) => Err(e),
        },
        "place" => match act::place(&state, a, id, now).await {
            Ok(order) => {
                Ok(see_other(&state, &session.token_hash, "/orders", &format!("Order {order} placed. TOT has it now.")))
            }
            Err(PlaceError::Short(short)) => {
                let msg =
                    "Not placed: some lines cannot be ordered as they stand (each says why). Lower or remove them and place again."
                        .to_string();
                return basket_page(&state, &session, id, short, Shown::error(StatusCode::CONFLICT, msg)).await;
            }
            Err(PlaceError::Action(e)) => Err(e),
        },
        other => Err(ActionError::invalid("action", format!("{} is not a basket action", crate::model::quoted(other)))),
    };
    match result {
        Ok(r) => Ok(r),
        // A line's stock gone from this user's reach meanwhile (un-allocated): said on the
        // basket, which still opens, not as a missing page. One not theirs stays a 404.
        Err(e @ ActionError::NotFound(_)) => {
            let msg = format!("{e} among what you may order; remove the line.");
            basket_page(&state, &session, id, vec![], Shown::error(StatusCode::NOT_FOUND, msg)).await
        }
        Err(e) => basket_page(&state, &session, id, vec![], Shown::failed(e)?.with_typed(&form)).await,
    }
}

/// `GET /orders`: placed orders with their lines and status (a third party: its own).
pub async fn orders(State(state): State<AppState>, session: Session, shown: Shown) -> Reply {
    require_orders(&session)?;
    let a = &session.actor;
    let only = (a.role == Role::ThirdParty).then_some(a.contact.id.as_str());
    let list = q::orders(&state.db, a.client_id(), only).await?;
    let ids: Vec<i64> = list.iter().map(|o| o.id).collect();
    let mut lines_of = q::order_lines(&state.db, &ids).await?;
    let mut out: Vec<Value> = Vec::with_capacity(list.len());
    for o in list {
        let lines = lines_of.remove(&o.id).unwrap_or_default();
        out.push(json!({"o": o, "lines": lines.iter().map(|(sku, d, qty)| json!({"sku": sku, "description": d, "qty": qty})).collect::<Vec<_>>()}));
    }
    page(&state, Some(&session), "orders", json!({"orders": out, "note": shown.note})).await
}

/// The users page does not exist for anyone who does not manage users.
fn require_admin(s: &Session) -> Result<(), HttpError> {
    if !users::manages_users(&s.actor) {
        return Err(HttpError::NotFound);
    }
    Ok(())
}

/// `GET /users`: the client's third-party users and their SKUs (admins only).
pub async fn users(State(state): State<AppState>, session: Session, shown: Shown) -> Reply {
    users_page(&state, &session, shown).await
}

async fn users_page(state: &AppState, session: &Session, shown: Shown) -> Reply {
    let Shown { note, error, status, typed } = shown;
    require_admin(session)?;
    let client = session.actor.client_id();
    let enabled = q::third_party_ordering(&state.db, client).await?;
    let mut users = vec![];
    for u in q::third_parties(&state.db, client).await? {
        let skus = q::allocations(&state.db, &u.id).await?;
        users.push(json!({"u": u, "skus": skus}));
    }
    let stock = q::stock(&state.db, client, None, "", 1000, 0).await?;
    page_status(
        state,
        Some(session),
        "users",
        json!({"enabled": enabled, "users": users, "stock": stock, "note": note, "error": error, "typed": typed}),
        status,
    )
    .await
}

/// `POST /users`: `action` = `create` (name, email), `revoke` (user), `allocate` /
/// `unallocate` (user, sku).
pub async fn users_action(State(state): State<AppState>, CsrfForm(session, form): CsrfForm<Session>) -> Reply {
    require_admin(&session)?;
    let now = Utc::now();
    let a = &session.actor;
    let user = form.text("user");
    let sku = form.text("sku");
    let result = match form.get("action").unwrap_or("") {
        "create" => users::create_third_party(&state, a, &form.text("name"), &form.text("email"), now)
            .await
            .map(|id| format!("{} added as {id}; an invitation is on its way.", form.text("name").trim())),
        "revoke" => users::revoke_third_party(&state, a, &user, now).await.map(|done| match done {
            true => format!("{user} revoked: signed out, links no longer work."),
            false => format!("{user} was revoked already."),
        }),
        "allocate" => users::allocate(&state, a, &user, &sku, true, now).await.map(|done| match done {
            true => format!("{sku} allocated to {user}."),
            false => format!("{sku} was allocated to {user} already."),
        }),
        "unallocate" => users::allocate(&state, a, &user, &sku, false, now).await.map(|done| match done {
            true => format!("{sku} no longer allocated to {user}."),
            false => format!("{sku} was not allocated to {user}: nothing to take back."),
        }),
        other => Err(ActionError::invalid("action", format!("{} is not a user action", crate::model::quoted(other)))),
    };
    match result {
        Ok(note) => Ok(see_other(&state, &session.token_hash, "/users", &note)),
        Err(e @ ActionError::NotFound(_)) => {
            users_page(&state, &session, Shown::error(StatusCode::NOT_FOUND, format!("{e}."))).await
        }
        Err(e) => users_page(&state, &session, Shown::failed(e)?.with_typed(&form)).await,
    }
}
