//! Re-seller ordering: stock with what is still free to order, baskets, placed orders, and
//! third-party users with their SKU allocations.
//!
//! A placed order holds its quantities until TOT sends a new `available_to_order` figure for
//! the SKU: that figure is taken to include every order placed before it arrived.

use chrono::{DateTime, Utc};

use super::{Conn, Db, Result, StoreError, Tx, bind, execute, on_conn, on_db, on_tx, rows_for};

/// A stock line as a client orders from it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct StockItem {
    pub sku: String,
    pub client_sku: Option<String>,
    pub description: String,
    pub picture: Option<String>,
    pub warehouse_balance: i64,
    /// On its way in, and held for orders already taken, as TOT's figures say.
    pub expected: i64,
    pub accounted_for: i64,
    /// TOT's figure less what orders placed since then hold.
    pub available: i64,
}

/// What stock row `s` still has free to order: TOT's figure less what orders placed since
/// it arrived hold. The portal, ordering and the STOCK command all read this.
pub(super) const FREE_TO_ORDER: &str = "s.available_to_order - CAST(COALESCE((SELECT SUM(l.qty) FROM reseller_order_lines l
        JOIN reseller_orders o ON o.id = l.order_id
        WHERE l.sku = s.sku AND o.status = 'placed' AND o.placed_at > COALESCE(s.figure_at, s.updated_at)), 0) AS BIGINT)";

/// The stock rows as a client orders from them, `available` free to order.
fn stock_select() -> String {
    format!(
        "SELECT s.sku, s.client_sku, s.description, s.picture, s.warehouse_balance, s.expected, s.accounted_for,
           {FREE_TO_ORDER} AS available FROM stock s"
    )
}

/// The client's stock matching `text` (all of it, or only SKUs allocated to `allocated_to`).
pub async fn stock(
    db: &Db,
    client_id: &str,
    allocated_to: Option<&str>,
    text: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<StockItem>> {
    let sql = format!(
        "{} WHERE s.client_id = $1
           AND (CAST($2 AS TEXT) IS NULL OR s.sku IN (SELECT sku FROM sku_allocations WHERE contact_id = $2))
           AND (lower(s.description) LIKE LOWER($3) ESCAPE '\\' OR lower(s.sku) LIKE LOWER($3) ESCAPE '\\'
                OR lower(COALESCE(s.client_sku, '')) LIKE LOWER($3) ESCAPE '\\')
         ORDER BY s.description, s.sku LIMIT $4 OFFSET $5",
        stock_select()
    );
    let pattern = super::contains_pattern(text);
    let rows = on_db!(db, p => bind!(sqlx::query_as::<_, StockItem>(&sql), client_id, allocated_to, &pattern, limit, offset)
        .fetch_all(p).await)?;
    Ok(rows)
}

/// One SKU of the client (in a placement, read in its transaction after [`lock_stock`]).
pub async fn stock_item(conn: impl Into<Conn<'_>>, client_id: &str, sku: &str) -> Result<StockItem> {
    let sql = format!("{} WHERE s.client_id = $1 AND s.sku = $2", stock_select());
    Ok(on_conn!(conn.into(), c => bind!(sqlx::query_as::<_, StockItem>(&sql), client_id, sku).fetch_one(c).await)?)
}

/// Locks stock rows for the rest of the transaction, in SKU order so two placements never
/// wait on each other crosswise.
pub async fn lock_stock(tx: &mut Tx, skus: &[String]) -> Result<()> {
    let mut sorted = skus.to_vec();
    sorted.sort();
    for sku in sorted {
        super::lock_row(tx, "SELECT sku FROM stock WHERE sku = $1 FOR UPDATE", sku).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Basket {
    pub id: i64,
    pub client_id: String,
    pub contact_id: String,
    pub name: String,
    pub address: String,
    pub notes: String,
    pub updated_at: DateTime<Utc>,
    pub lines: i64,
    pub units: i64,
}

const BASKET: &str = "SELECT b.id, b.client_id, b.contact_id, b.name, b.address, b.notes, b.updated_at,
    (SELECT COUNT(*) FROM basket_lines l WHERE l.basket_id = b.id) AS lines,
    CAST(COALESCE((SELECT SUM(qty) FROM basket_lines l WHERE l.basket_id = b.id), 0) AS BIGINT) AS units
    FROM baskets b";

pub async fn baskets_of(db: &Db, contact_id: &str) -> Result<Vec<Basket>> {
    let sql = format!("{BASKET} WHERE b.contact_id = $1 ORDER BY b.updated_at DESC, b.id DESC");
    rows_for(db, &sql, contact_id).await
}

/// A basket of this contact (anyone else's is "not found").
pub async fn basket(conn: impl Into<Conn<'_>>, contact_id: &str, id: i64) -> Result<Basket> {
    let sql = format!("{BASKET} WHERE b.id = $1 AND b.contact_id = $2");
    Ok(on_conn!(conn.into(), c => bind!(sqlx::query_as::<_, Basket>(&sql), id, contact_id).fetch_one(c).await)?)
}

/// Locks a basket row for the rest of the transaction, so the same basket cannot be placed
/// twice at once.
pub async fn lock_basket(tx: &mut Tx, id: i64) -> Result<()> {
    super::lock_row(tx, "SELECT id FROM baskets WHERE id = $1 FOR UPDATE", id).await
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct BasketLine {
    pub sku: String,
    pub description: String,
    pub picture: Option<String>,
    pub qty: i64,
    pub available: i64,
}

pub async fn basket_lines(db: &Db, basket_id: i64) -> Result<Vec<BasketLine>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, BasketLine>(&format!(
        "SELECT l.sku, s.description, s.picture, l.qty, s.available FROM basket_lines l
         JOIN ({}) s ON s.sku = l.sku WHERE l.basket_id = $1 ORDER BY s.description, l.sku",
        stock_select()
    )), basket_id)
    .fetch_all(p).await)?)
}

pub async fn basket_lines_tx(tx: &mut Tx, basket_id: i64) -> Result<Vec<(String, i64)>> {
    Ok(on_tx!(tx, c => sqlx::query_as::<_, (String, i64)>(
        "SELECT sku, qty FROM basket_lines WHERE basket_id = $1 ORDER BY sku",
    )
    .bind(basket_id)
    .fetch_all(c).await)?)
}

/// Makes a basket, unless the contact has one of that name already (a second click, the same
/// form sent twice): then `None`. Checked with the contact's row locked (see
/// [`super::contacts::lock`]), so two sent at once cannot both make one.
pub async fn create_basket(
    tx: &mut Tx,
    client_id: &str,
    contact_id: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    super::contacts::lock(tx, contact_id).await?;
    Ok(on_tx!(tx, c => bind!(sqlx::query_scalar(
        "INSERT INTO baskets (client_id, contact_id, name, address, notes, created_at, updated_at)
         SELECT $1, $2, $3, '', '', $4, $4
         WHERE NOT EXISTS (SELECT 1 FROM baskets WHERE contact_id = $2 AND name = $3) RETURNING id",
    ), client_id, contact_id, name, now)
    .fetch_optional(c).await)?)
}

/// Sets a basket line's quantity (0 removes it) and touches the basket. False when there
/// was nothing to remove: then nothing is written.
pub async fn set_line(tx: &mut Tx, basket_id: i64, sku: &str, qty: i64, now: DateTime<Utc>) -> Result<bool> {
    let n = if qty <= 0 {
        execute!(tx => "DELETE FROM basket_lines WHERE basket_id = $1 AND sku = $2", basket_id, sku)?
    } else {
        execute!(tx =>
            "INSERT INTO basket_lines (basket_id, sku, qty) VALUES ($1, $2, $3)
             ON CONFLICT (basket_id, sku) DO UPDATE SET qty = excluded.qty",
            basket_id, sku, qty)?
    };
    if n == 0 {
        return Ok(false);
    }
    execute!(tx => "UPDATE baskets SET updated_at = $2 WHERE id = $1", basket_id, now)?;
    Ok(true)
}

/// Saves a basket's name and details, unless another of the contact's baskets has that name:
/// then false, and nothing is written. Checked with the contact's row locked.
pub async fn update_basket(
    tx: &mut Tx,
    b: &Basket,
    name: &str,
    address: &str,
    notes: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    super::contacts::lock(tx, &b.contact_id).await?;
    let taken: Option<i64> = on_tx!(tx, c => bind!(sqlx::query_scalar(
        "SELECT id FROM baskets WHERE contact_id = $1 AND name = $2 AND id <> $3"), &b.contact_id, name, b.id)
    .fetch_optional(c).await)?;
    if taken.is_some() {
        return Ok(false);
    }
    execute!(tx =>
        "UPDATE baskets SET name = $2, address = $3, notes = $4, updated_at = $5 WHERE id = $1",
        b.id, name, address, notes, now)?;
    Ok(true)
}

pub async fn delete_basket(db: &Db, id: i64) -> Result<()> {
    execute!(db => "DELETE FROM baskets WHERE id = $1", id)?;
    Ok(())
}

pub async fn clear_basket(tx: &mut Tx, id: i64, now: DateTime<Utc>) -> Result<()> {
    execute!(tx => "DELETE FROM basket_lines WHERE basket_id = $1", id)?;
    execute!(tx => "UPDATE baskets SET updated_at = $2 WHERE id = $1", id, now)?;
    Ok(())
}

/// The order that emptied a basket, if placing is what last changed it (the order keeps the
/// basket's name and contact, and the basket was touched at the moment it was placed): its
/// id and when it was placed.
pub async fn placed_from(conn: impl Into<Conn<'_>>, b: &Basket) -> Result<Option<(i64, DateTime<Utc>)>> {
    Ok(on_conn!(conn.into(), c => bind!(sqlx::query_as(
        "SELECT id, placed_at FROM reseller_orders WHERE contact_id = $1 AND basket_name = $2 AND placed_at = $3
         ORDER BY id DESC LIMIT 1"), &b.contact_id, &b.name, b.updated_at)
    .fetch_optional(c).await)?)
}

/// Places a basket as an order of its contact's (named as they are called now): the order
/// keeps the basket's name, address and notes. Its lines are added with [`insert_order_line`].
pub async fn insert_order(tx: &mut Tx, b: &Basket, contact_name: &str, now: DateTime<Utc>) -> Result<i64> {
    let id: i64 = on_tx!(tx, c => bind!(sqlx::query_scalar(
        "INSERT INTO reseller_orders (client_id, contact_id, contact_name, basket_name, address, notes, status, placed_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'placed', $7) RETURNING id",
    ), &b.client_id, &b.contact_id, contact_name, &b.name, &b.address, &b.notes, now)
    .fetch_one(c).await)?;
    Ok(id)
}

pub async fn insert_order_line(tx: &mut Tx, order_id: i64, sku: &str, description: &str, qty: i64) -> Result<()> {
    execute!(tx =>
        "INSERT INTO reseller_order_lines (order_id, sku, description, qty) VALUES ($1, $2, $3, $4)",
        order_id, sku, description, qty)?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Order {
    pub id: i64,
    pub contact_id: String,
    pub contact_name: String,
    pub basket_name: String,
    pub address: String,
    pub notes: String,
    pub status: String,
    pub placed_at: DateTime<Utc>,
}

/// Orders of the client, or only those `contact_id` placed.
pub async fn orders(db: &Db, client_id: &str, contact_id: Option<&str>) -> Result<Vec<Order>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, Order>(
        "SELECT id, contact_id, contact_name, basket_name, address, notes, status, placed_at FROM reseller_orders
         WHERE client_id = $1 AND (CAST($2 AS TEXT) IS NULL OR contact_id = $2) ORDER BY placed_at DESC, id DESC LIMIT 200",
    ), client_id, contact_id)
    .fetch_all(p).await)?)
}

/// The lines of each of `orders` (sku, description, quantity, by sku), read together.
pub async fn order_lines(
    db: &Db,
    orders: &[i64],
) -> Result<std::collections::HashMap<i64, Vec<(String, String, i64)>>> {
    let rows: Vec<(i64, String, String, i64)> = crate::fetch_in!(
        on_db,
        db,
        "SELECT order_id, sku, description, qty FROM reseller_order_lines WHERE order_id IN ({in})
         ORDER BY order_id, sku"
            .to_string(),
        orders,
        once
    )?;
    let mut by_order: std::collections::HashMap<i64, Vec<(String, String, i64)>> = Default::default();
    for (order, sku, description, qty) in rows {
        by_order.entry(order).or_default().push((sku, description, qty));
    }
    Ok(by_order)
}

/// Addresses a contact's own orders for its client went to, most recent first (an order is
/// kept when its contact is gone, and TOT may give the id to a contact of another client).
pub async fn own_addresses(db: &Db, client_id: &str, contact_id: &str) -> Result<Vec<String>> {
    Ok(on_db!(db, p => bind!(sqlx::query_scalar(
        "SELECT address FROM reseller_orders WHERE client_id = $1 AND contact_id = $2 AND address <> ''
         GROUP BY address ORDER BY MAX(placed_at) DESC LIMIT 20",
    ), client_id, contact_id)
    .fetch_all(p).await)?)
}

/// Whether the client lets its admins set up third-party users.
pub async fn third_party_ordering(db: &Db, client_id: &str) -> Result<bool> {
    let on: bool = on_db!(db, p => bind!(sqlx::query_scalar("SELECT third_party_ordering FROM clients WHERE id = $1"),
        client_id).fetch_one(p).await)?;
    Ok(on)
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ThirdParty {
    pub id: String,
    pub name: String,
    pub email: String,
    pub active: bool,
    pub created_by: Option<String>,
}

pub async fn third_parties(db: &Db, client_id: &str) -> Result<Vec<ThirdParty>> {
    rows_for(
        db,
        "SELECT id, name, email, active, created_by FROM contacts
         WHERE client_id = $1 AND role = 'third_party' ORDER BY active DESC, name, id",
        client_id,
    )
    .await
}

/// The client of an active contact (of any; this client's first) that already signs in with
/// `email`, asked in the
/// transaction that will add one, with the client's row locked on PostgreSQL (a SQLite write
/// transaction already excludes every other writer): two admins adding the same person at
/// once add one.
pub async fn email_taken(tx: &mut Tx, client_id: &str, email: &str) -> Result<Option<String>> {
    super::lock_row(tx, "SELECT id FROM clients WHERE id = $1 FOR UPDATE", client_id.to_string()).await?;
    Ok(on_tx!(tx, c => bind!(sqlx::query_scalar(
        "SELECT client_id FROM contacts WHERE active AND lower(email) = lower($1) ORDER BY client_id <> $2 LIMIT 1"),
        email, client_id)
        .fetch_optional(c).await)?)
}

/// A third-party user as the client's admin creates it.
pub struct NewThirdParty<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub timezone: &'a str,
    pub created_by: &'a str,
}

/// Adds a third-party user as a contact of the client (role `third_party`).
pub async fn insert_third_party(tx: &mut Tx, u: &NewThirdParty<'_>, now: DateTime<Utc>) -> Result<()> {
    execute!(tx =>
        "INSERT INTO contacts (id, client_id, name, email, role, timezone, active, sync_hash, updated_at, created_by,
           created_at)
         VALUES ($1, $2, $3, $4, 'third_party', $5, TRUE, '', $6, $7, $6)",
        u.id, u.client_id, u.name, u.email, u.timezone, now, u.created_by)?;
    Ok(())
}

/// Whether one of the client's third-party users is active; `None` when there is no such user.
pub async fn third_party_active(conn: impl Into<Conn<'_>>, client_id: &str, id: &str) -> Result<Option<bool>> {
    Ok(on_conn!(conn.into(), c => bind!(sqlx::query_scalar(
        "SELECT active FROM contacts WHERE id = $1 AND client_id = $2 AND role = 'third_party'"), id, client_id)
    .fetch_optional(c).await)?)
}

/// Deactivates a third-party user: their sessions stop at once (sessions need an active contact).
pub async fn revoke_third_party(tx: &mut Tx, client_id: &str, id: &str, now: DateTime<Utc>) -> Result<bool> {
    Ok(execute!(tx =>
        "UPDATE contacts SET active = FALSE, revoked_at = $3, updated_at = $3
         WHERE id = $1 AND client_id = $2 AND role = 'third_party' AND active",
        id, client_id, now)?
        == 1)
}

/// A third party's allocations as an order being placed must see them: read in its
/// transaction with the contact's row locked on PostgreSQL (a revoke updates that row, an
/// allocation change locks it; a SQLite write transaction already excludes every other
/// writer). `None` when the contact is no longer active (revoked).
pub async fn allocations_held(tx: &mut Tx, contact_id: &str) -> Result<Option<Vec<String>>> {
    super::contacts::lock(tx, contact_id).await?;
    let active: Option<bool> = on_tx!(tx, c => bind!(sqlx::query_scalar(
        "SELECT active FROM contacts WHERE id = $1"), contact_id).fetch_optional(c).await)?;
    if active != Some(true) {
        return Ok(None);
    }
    Ok(Some(on_tx!(tx, c => bind!(sqlx::query_scalar(
        "SELECT sku FROM sku_allocations WHERE contact_id = $1 ORDER BY sku"), contact_id)
        .fetch_all(c).await)?))
}

pub async fn allocations(db: &Db, contact_id: &str) -> Result<Vec<String>> {
    Ok(on_db!(db, p => bind!(sqlx::query_scalar(
        "SELECT sku FROM sku_allocations WHERE contact_id = $1 ORDER BY sku",
    ), contact_id)
    .fetch_all(p).await)?)
}

/// Allocates (or, with `on` false, un-allocates) a SKU; true when something changed.
pub async fn set_allocation(tx: &mut Tx, contact_id: &str, sku: &str, on: bool, now: DateTime<Utc>) -> Result<bool> {
    // The holder's row is locked as [`allocations_held`] locks it: an order placed at the
    // same moment sees the allocations before or after, never a mix.
    super::contacts::lock(tx, contact_id).await?;
    let n = if on {
        execute!(tx =>
            "INSERT INTO sku_allocations (contact_id, sku, allocated_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            contact_id, sku, now)?
    } else {
        execute!(tx => "DELETE FROM sku_allocations WHERE contact_id = $1 AND sku = $2", contact_id, sku)?
    };
    Ok(n == 1)
}

/// The next free `TP-<client>-<n>` id for a third-party user: after every one the client's
/// admins were ever given (the change feed keeps each creation, so an id TOT deleted is
/// never given to someone else, who would see the orders placed under it), and past any id
/// taken meanwhile (TOT's records may hold one).
pub async fn next_third_party_id(tx: &mut Tx, client_id: &str) -> Result<String> {
    let made: i64 = on_tx!(tx, c => bind!(sqlx::query_scalar(
        "SELECT COUNT(*) FROM changes WHERE client_id = $1 AND kind = 'third_party_user_created'",
    ), client_id)
    .fetch_one(c).await)?;
    // Bounded: each step passes one id that exists, and a client has few contacts.
    for n in made + 1..=made + 1000 {
        // Within the 64 characters of every id TOT's data may hold (so the sync API can
        // still name the contact): a long client id is cut, and the check below keeps the
        // result unique.
        let room = 64 - "TP--".len() - n.to_string().len();
        let id = format!("TP-{}-{n}", client_id.chars().take(room).collect::<String>());
        let taken: Option<i32> = on_tx!(tx, c => bind!(sqlx::query_scalar(
            "SELECT 1 FROM contacts WHERE id = $1
             UNION ALL SELECT 1 FROM reseller_orders WHERE contact_id = $1
             UNION ALL SELECT 1 FROM changes
               WHERE client_id = $2 AND kind = 'third_party_user_created' AND subject_id = $1"),
            &id, client_id).fetch_optional(c).await)?;
        if taken.is_none() {
            return Ok(id);
        }
    }
    Err(StoreError::Conflict(format!("no free third-party id after TP-{client_id}-{made}")))
}
