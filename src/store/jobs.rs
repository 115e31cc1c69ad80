//! Jobs as the portal shows them, and the delivery instructions given for them.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Conn, Db, Result, Tx, bind, execute, on_conn, on_db, on_tx, rows_for};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct JobRow {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub status: crate::model::JobStatus,
    pub date_required: Option<NaiveDate>,
    pub order_id: Option<String>,
    pub client_ref: Option<String>,
    pub contact_name: Option<String>,
    pub delivery_instructions: crate::model::DeliveryInstructions,
    /// When cport first saw the job.
    pub created_at: DateTime<Utc>,
}

/// A job as the portal and the action items show it (`j` the job, `c` its contact).
pub(super) const SELECT: &str = "SELECT j.id, j.client_id, j.name, j.status, j.date_required, j.order_id, j.client_ref,
    c.name AS contact_name, j.delivery_instructions, j.created_at FROM jobs j LEFT JOIN contacts c ON c.id = j.contact_id";

pub async fn get_job(conn: impl Into<Conn<'_>>, client_id: &str, id: &str) -> Result<JobRow> {
    let sql = format!("{SELECT} WHERE j.id = $1 AND j.client_id = $2");
    Ok(on_conn!(conn.into(), c => bind!(sqlx::query_as::<_, JobRow>(&sql), id, client_id).fetch_one(c).await)?)
}

/// Open jobs of a client (the ones delivery instructions can be given for).
pub async fn list_open_jobs(db: &Db, client_id: &str) -> Result<Vec<JobRow>> {
    let sql = format!(
        "{SELECT} WHERE j.client_id = $1 AND j.status IN ({open}) ORDER BY j.date_required NULLS LAST, j.id",
        open = super::state_list(crate::model::JobStatus::OPEN)
    );
    rows_for(db, &sql, client_id).await
}

/// A printed-garment line with what earlier instructions already took.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct GarmentLine {
    pub job_id: String,
    pub line_no: i64,
    pub description: String,
    pub expected_qty: i64,
    pub produced_qty: i64,
    pub instructed: i64,
}

impl GarmentLine {
    pub fn remaining(&self) -> i64 {
        (self.expected_qty - self.instructed).max(0)
    }
}

const LINES: &str = "SELECT g.job_id, g.line_no, g.description, g.expected_qty, g.produced_qty,
    CAST(COALESCE((SELECT SUM(l.qty) FROM delivery_request_lines l
                   WHERE l.job_id = g.job_id AND l.line_no = g.line_no), 0) AS BIGINT) AS instructed
    FROM job_printed_garments g";

pub async fn list_garment_lines(conn: impl Into<Conn<'_>>, job_id: &str) -> Result<Vec<GarmentLine>> {
    let sql = format!("{LINES} WHERE g.job_id = $1 ORDER BY g.line_no");
    Ok(on_conn!(conn.into(), c => bind!(sqlx::query_as::<_, GarmentLine>(&sql), job_id).fetch_all(c).await)?)
}

/// The garment lines of several jobs in one read (the delivery form offers every open job's).
pub async fn garment_lines_of(db: &Db, job_ids: &[&str]) -> Result<Vec<GarmentLine>> {
    let sql = format!("{LINES} WHERE g.job_id IN ({{in}}) ORDER BY g.job_id, g.line_no");
    crate::fetch_in!(on_db, db, sql, job_ids)
}

pub struct NewRequest<'a> {
    pub client_id: &'a str,
    pub contact_id: &'a str,
    pub kind: &'a str,
    pub address: Option<&'a str>,
    pub required_date: Option<NaiveDate>,
    pub contact_name: Option<&'a str>,
    pub notes: Option<&'a str>,
}

pub async fn insert_request(tx: &mut Tx, r: &NewRequest<'_>, now: DateTime<Utc>) -> Result<i64> {
    let id: i64 = on_tx!(tx, c => bind!(sqlx::query_scalar(
        "INSERT INTO delivery_requests (client_id, contact_id, kind, address, required_date, contact_name, notes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    ), r.client_id, r.contact_id, r.kind, r.address, r.required_date, r.contact_name, r.notes, now)
    .fetch_one(c).await)?;
    Ok(id)
}

/// A delivery request as a request sent again is compared with: its details (required
/// date, contact on site, notes), and its lines (job, line, quantity) in job and line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    pub at: DateTime<Utc>,
    pub details: (Option<NaiveDate>, Option<String>, Option<String>),
    pub lines: Vec<(String, i64, i64)>,
}

type SentRow = (i64, DateTime<Utc>, Option<NaiveDate>, Option<String>, Option<String>, String, i64, i64);

/// The delivery requests `contact_id` made after `since` to `address`, oldest first.
pub async fn requests_since(
    tx: &mut Tx,
    contact_id: &str,
    address: &str,
    since: DateTime<Utc>,
) -> Result<Vec<SentRequest>> {
    let rows: Vec<SentRow> = on_tx!(tx, c => bind!(sqlx::query_as(
        "SELECT r.id, r.created_at, r.required_date, r.contact_name, r.notes, l.job_id, l.line_no, l.qty
         FROM delivery_requests r JOIN delivery_request_lines l ON l.request_id = r.id
         WHERE r.contact_id = $1 AND r.kind = 'delivery' AND r.address = $2 AND r.created_at > $3
         ORDER BY r.id, l.job_id, l.line_no"), contact_id, address, since)
    .fetch_all(c).await)?;
    let mut out: Vec<(i64, SentRequest)> = Vec::new();
    for (id, at, date, contact, notes, job, line, qty) in rows {
        match out.last_mut() {
            Some((last, r)) if *last == id => r.lines.push((job, line, qty)),
            _ => out.push((id, SentRequest { at, details: (date, contact, notes), lines: vec![(job, line, qty)] })),
        }
    }
    // In byte order, as the request they are compared with is: the store's own order of
    // text follows its collation (PostgreSQL's may not be bytewise).
    Ok(out
        .into_iter()
        .map(|(_, mut r)| {
            r.lines.sort();
            r
        })
        .collect())
}

pub async fn insert_request_line(tx: &mut Tx, request_id: i64, job_id: &str, line_no: i64, qty: i64) -> Result<()> {
    execute!(tx =>
        "INSERT INTO delivery_request_lines (request_id, job_id, line_no, qty) VALUES ($1, $2, $3, $4)",
        request_id, job_id, line_no, qty)?;
    Ok(())
}

/// Locks a job row until the transaction ends.
pub async fn lock_job(tx: &mut Tx, job_id: &str) -> Result<()> {
    super::lock_row(tx, "SELECT id FROM jobs WHERE id = $1 FOR UPDATE", job_id.to_string()).await
}

/// Records on the job what the client said (`given` or `not_required`).
pub async fn set_delivery_instructions(tx: &mut Tx, job_id: &str, value: &str) -> Result<()> {
    execute!(tx => "UPDATE jobs SET delivery_instructions = $2, sync_hash = '' WHERE id = $1", job_id, value)?;
    Ok(())
}

/// Addresses this client used before (earlier instructions and TOT's deliveries), newest first.
pub async fn saved_addresses(db: &Db, client_id: &str) -> Result<Vec<String>> {
    Ok(on_db!(db, p => bind!(sqlx::query_scalar(
        "SELECT address FROM (
           SELECT address, MAX(created_at) AS at FROM delivery_requests
             WHERE client_id = $1 AND address IS NOT NULL GROUP BY address
           UNION ALL
           SELECT venue AS address, MAX(updated_at) AS at FROM deliveries WHERE client_id = $1 GROUP BY venue
         ) a GROUP BY address ORDER BY MAX(at) DESC LIMIT 20",
    ), client_id)
    .fetch_all(p).await)?)
}
