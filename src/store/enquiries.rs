//! Read-only queries behind the enquiry commands, each scoped to one client.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Db, Result, bind, on_db, rows_for};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProcessLine {
    pub status: String,
    pub process: String,
    pub position: String,
    pub process_date: Option<NaiveDate>,
    pub qty: i64,
    pub unit_price: i64,
}

pub async fn process_lines(db: &Db, job_id: &str) -> Result<Vec<ProcessLine>> {
    rows_for(
        db,
        "SELECT status, process, position, process_date, qty, unit_price FROM job_process_lines WHERE job_id = $1 ORDER BY line_no",
        job_id,
    )
    .await
}

/// A job's process pictures, for a job of `client_id`: (picture path, caption), in line order.
pub async fn job_pictures(db: &Db, client_id: &str, job_id: &str) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String, String)> = on_db!(db, p => bind!(sqlx::query_as(
        "SELECT l.image, l.process, l.position FROM job_process_lines l JOIN jobs j ON j.id = l.job_id
         WHERE l.job_id = $1 AND j.client_id = $2 AND l.image <> '' ORDER BY l.line_no"), job_id, client_id)
        .fetch_all(p).await)?;
    Ok(rows.into_iter().map(|(image, process, position)| (image, format!("{process}, {position}"))).collect())
}

/// A purchase order's checking pictures, for an order of `client_id`: (picture path, caption).
pub async fn po_pictures(db: &Db, client_id: &str, po_id: &str) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String,)> = on_db!(db, p => bind!(sqlx::query_as(
        "SELECT i.image FROM purchase_order_images i JOIN purchase_orders o ON o.id = i.po_id
         WHERE i.po_id = $1 AND o.client_id = $2 ORDER BY i.line_no"), po_id, client_id)
        .fetch_all(p).await)?;
    Ok(rows.into_iter().enumerate().map(|(n, (image,))| (image, format!("Checking picture {}", n + 1))).collect())
}

/// A priced line: a job's art costs or blank garments, a visual's art charges.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct CostLine {
    pub description: String,
    pub qty: i64,
    pub unit_price: i64,
}

/// `table` is `job_art_costs` or `job_blank_garments`.
pub async fn cost_lines(db: &Db, table: &str, job_id: &str) -> Result<Vec<CostLine>> {
    let sql = format!("SELECT description, qty, unit_price FROM {table} WHERE job_id = $1 ORDER BY line_no");
    rows_for(db, &sql, job_id).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub job_id: Option<String>,
    pub status: crate::model::DeliveryStatus,
    pub delivery_date: Option<NaiveDate>,
    pub sent_date: Option<NaiveDate>,
    pub venue: String,
    pub description: String,
    pub contact: Option<String>,
    pub client_ref: Option<String>,
    pub tracking_carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub pod_boxes: Option<i64>,
    pub pod_courier: Option<String>,
    pub pod_signed_at: Option<DateTime<Utc>>,
    pub pod_courier_worker: Option<String>,
    pub pod_signature_image: Option<String>,
}

const DELIVERY: &str = "SELECT id, job_id, status, delivery_date, sent_date, venue, description, contact, client_ref,
    tracking_carrier, tracking_number, tracking_url, pod_boxes, pod_courier, pod_signed_at, pod_courier_worker,
    pod_signature_image FROM deliveries";

pub async fn deliveries(db: &Db, client_id: &str, limit: i64) -> Result<Vec<DeliveryRow>> {
    let sql = format!(
        "{DELIVERY} WHERE client_id = $1 ORDER BY COALESCE(delivery_date, sent_date) DESC NULLS FIRST, id DESC LIMIT $2"
    );
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, DeliveryRow>(&sql), client_id, limit).fetch_all(p).await)?)
}

pub async fn job_deliveries(db: &Db, client_id: &str, job_id: &str) -> Result<Vec<DeliveryRow>> {
    let sql = format!("{DELIVERY} WHERE client_id = $1 AND job_id = $2 ORDER BY id");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, DeliveryRow>(&sql), client_id, job_id).fetch_all(p).await)?)
}

pub async fn delivery(db: &Db, client_id: &str, id: &str) -> Result<DeliveryRow> {
    let sql = format!("{DELIVERY} WHERE client_id = $1 AND id = $2");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, DeliveryRow>(&sql), client_id, id).fetch_one(p).await)?)
}

pub async fn delivery_lines(db: &Db, id: &str) -> Result<Vec<(String, i64)>> {
    rows_for(db, "SELECT description, qty FROM delivery_lines WHERE delivery_id = $1 ORDER BY line_no", id).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StockRow {
    pub sku: String,
    pub client_sku: Option<String>,
    pub description: String,
    pub warehouse_balance: i64,
    pub expected: i64,
    pub accounted_for: i64,
    pub available_to_order: i64,
}

/// The client's decorated stock, or TOT's blank stock when `client_id` is None, matching `text`.
pub async fn stock(db: &Db, client_id: Option<&str>, text: Option<&str>, limit: i64) -> Result<Vec<StockRow>> {
    let pattern = super::contains_pattern(text.unwrap_or(""));
    Ok(match client_id {
        // What is free to order, as the portal and ordering count it: TOT's figure less
        // orders placed since.
        Some(c) => on_db!(db, p => bind!(sqlx::query_as::<_, StockRow>(&format!(
            "SELECT s.sku, s.client_sku, s.description, s.warehouse_balance, s.expected, s.accounted_for,
               {} AS available_to_order FROM stock s
             WHERE s.client_id = $1 AND (lower(s.description) LIKE LOWER($2) ESCAPE '\\' OR lower(s.sku) LIKE LOWER($2) ESCAPE '\\'
               OR lower(COALESCE(s.client_sku, '')) LIKE LOWER($2) ESCAPE '\\')
             ORDER BY s.sku LIMIT $3",
            super::orders::FREE_TO_ORDER
        )), c, &pattern, limit).fetch_all(p).await)?,
        None => on_db!(db, p => bind!(sqlx::query_as::<_, StockRow>(
            "SELECT sku, NULL AS client_sku, description, warehouse_balance, expected, accounted_for, available_to_order
             FROM blank_stock WHERE lower(description) LIKE LOWER($1) ESCAPE '\\' OR lower(sku) LIKE LOWER($1) ESCAPE '\\'
             ORDER BY sku LIMIT $2",
        ), &pattern, limit).fetch_all(p).await)?,
    })
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PoRow {
    pub id: String,
    pub status: crate::model::PoStatus,
    pub date_ordered: NaiveDate,
    pub tot_ref: String,
    pub client_ref: Option<String>,
    pub category: String,
    pub po_type: String,
    pub supplier: String,
    pub placed_by: Option<String>,
}

const PO: &str =
    "SELECT id, status, date_ordered, tot_ref, client_ref, category, po_type, supplier, placed_by FROM purchase_orders";

pub async fn purchase_orders(db: &Db, client_id: &str, limit: i64) -> Result<Vec<PoRow>> {
    let sql = format!("{PO} WHERE client_id = $1 ORDER BY date_ordered DESC, id LIMIT $2");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, PoRow>(&sql), client_id, limit).fetch_all(p).await)?)
}

pub async fn purchase_order(db: &Db, client_id: &str, id: &str) -> Result<PoRow> {
    let sql = format!("{PO} WHERE client_id = $1 AND id = $2");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, PoRow>(&sql), client_id, id).fetch_one(p).await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PoLine {
    pub status: String,
    pub sku: String,
    pub description: String,
    pub ordered: i64,
    pub received: i64,
    pub cancelled: i64,
}

pub async fn po_lines(db: &Db, id: &str) -> Result<Vec<PoLine>> {
    rows_for(
        db,
        "SELECT status, sku, description, ordered, received, cancelled FROM purchase_order_lines WHERE po_id = $1 ORDER BY line_no",
        id,
    )
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PoReceipt {
    pub date_received: NaiveDate,
    pub signed_by: String,
    pub date_checked: Option<NaiveDate>,
    pub check_category: Option<String>,
    pub checked_by: Option<String>,
    pub outers: i64,
    pub handling_cost: i64,
}

pub async fn po_receipts(db: &Db, id: &str) -> Result<Vec<PoReceipt>> {
    rows_for(
        db,
        "SELECT date_received, signed_by, date_checked, check_category, checked_by, outers, handling_cost
         FROM purchase_order_receipts WHERE po_id = $1 ORDER BY line_no",
        id,
    )
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceRow {
    pub id: String,
    pub date: NaiveDate,
    pub client_po_ref: Option<String>,
    pub job_name: String,
    pub total: i64,
    pub paid: i64,
}

/// Invoices and credit notes with something outstanding first, then the most recent.
pub async fn invoices(db: &Db, client_id: &str, limit: i64) -> Result<Vec<InvoiceRow>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, InvoiceRow>(
        "SELECT id, date, client_po_ref, job_name, total, paid FROM invoices WHERE client_id = $1
         ORDER BY CASE WHEN paid < ABS(total) THEN 0 ELSE 1 END, date DESC, id LIMIT $2",
    ), client_id, limit).fetch_all(p).await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Aging {
    pub as_of: NaiveDate,
    pub current_balance: i64,
    pub over_30: i64,
    pub over_60: i64,
    pub over_90: i64,
    pub credit_limit: Option<i64>,
    /// The client's currency.
    pub currency: String,
}

pub async fn aging(db: &Db, client_id: &str) -> Result<Option<Aging>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, Aging>(
        "SELECT a.as_of, a.current_balance, a.over_30, a.over_60, a.over_90, a.credit_limit, cl.currency
         FROM account_summaries a JOIN clients cl ON cl.id = a.client_id WHERE a.client_id = $1",
    ), client_id).fetch_optional(p).await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PriceLine {
    pub code: String,
    pub description: String,
    pub unit: String,
    pub min_qty: i64,
    pub price: i64,
}

/// The client's current price card (the latest already in effect) and its lines.
pub async fn price_card(
    db: &Db,
    client_id: &str,
    today: NaiveDate,
) -> Result<Option<(String, NaiveDate, Vec<PriceLine>)>> {
    let card: Option<(String, String, NaiveDate)> = on_db!(db, p => bind!(sqlx::query_as(
        "SELECT id, name, effective_from FROM price_cards WHERE client_id = $1 AND effective_from <= $2
         ORDER BY effective_from DESC LIMIT 1",
    ), client_id, today).fetch_optional(p).await)?;
    let Some((id, name, from)) = card else { return Ok(None) };
    let lines = on_db!(db, p => bind!(sqlx::query_as::<_, PriceLine>(
        "SELECT code, description, unit, min_qty, price FROM price_card_lines WHERE price_card_id = $1 ORDER BY line_no",
    ), &id).fetch_all(p).await)?;
    Ok(Some((name, from, lines)))
}

pub async fn client_currency(db: &Db, client_id: &str) -> Result<String> {
    let c: String = on_db!(db, p => bind!(sqlx::query_scalar("SELECT currency FROM clients WHERE id = $1"),
        client_id).fetch_one(p).await)?;
    Ok(c)
}

/// A delivery's packing: (container, description, qty) in order.
pub async fn delivery_packing(db: &Db, id: &str) -> Result<Vec<(String, String, i64)>> {
    rows_for(db, "SELECT container, description, qty FROM delivery_packing WHERE delivery_id = $1 ORDER BY line_no", id)
        .await
}

/// An invoice as its document shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceDoc {
    pub id: String,
    pub date: NaiveDate,
    pub due_date: Option<NaiveDate>,
    pub client_po_ref: Option<String>,
    pub job_name: String,
    pub total: i64,
    pub paid: i64,
}

impl InvoiceDoc {
    /// What is still owed on it; negative for a credit note's credit left.
    pub fn outstanding(&self) -> i64 {
        crate::model::outstanding(self.total, self.paid)
    }

    /// A credit note is an invoice with a negative total.
    pub fn is_credit_note(&self) -> bool {
        self.total < 0
    }
}

const INVOICE_DOC: &str = "SELECT id, date, due_date, client_po_ref, job_name, total, paid FROM invoices";

pub async fn invoice(db: &Db, client_id: &str, id: &str) -> Result<InvoiceDoc> {
    let sql = format!("{INVOICE_DOC} WHERE client_id = $1 AND id = $2");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, InvoiceDoc>(&sql), client_id, id).fetch_one(p).await)?)
}

/// Invoices with something still to pay and credit notes not yet used up (anything whose
/// [`outstanding`](crate::model::outstanding) is not zero: `paid` short of the total's
/// amount), oldest first.
pub async fn open_invoices(db: &Db, client_id: &str) -> Result<Vec<InvoiceDoc>> {
    let sql = format!("{INVOICE_DOC} WHERE client_id = $1 AND paid < ABS(total) ORDER BY date, id");
    rows_for(db, &sql, client_id).await
}

/// A delivery's costs: (type, description, price in minor units).
pub async fn delivery_costs(db: &Db, id: &str) -> Result<Vec<(String, String, i64)>> {
    rows_for(db, "SELECT cost_type, description, price FROM delivery_costs WHERE delivery_id = $1 ORDER BY line_no", id)
        .await
}
