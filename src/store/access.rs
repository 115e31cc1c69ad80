//! Access requests: someone without an account asking for one from the sign-in page.

use chrono::{DateTime, Utc};

use super::{Db, Result, Tx, bind, execute, on_db, on_tx};
use crate::model::AccessStatus;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AccessRequest {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub company: String,
    pub note: String,
    /// `open`, `done` or `refused`.
    pub status: AccessStatus,
    pub created_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

const COLS: &str = "id, name, email, company, note, status, created_at, decided_by, decided_at";

/// Records a request, unless one from the same address is still open (asked twice, or sent
/// twice at once): then `None`, and the open one stands.
pub async fn insert(
    tx: &mut Tx,
    name: &str,
    email: &str,
    company: &str,
    note: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    super::one_at_a_time(tx, "cport access requests").await?;
    Ok(on_tx!(tx, c => bind!(sqlx::query_scalar(
        "INSERT INTO access_requests (name, email, company, note, status, created_at)
         SELECT $1, $2, $3, $4, 'open', $5
         WHERE NOT EXISTS (SELECT 1 FROM access_requests WHERE status = 'open' AND lower(email) = lower($2))
         RETURNING id"), name, email, company, note, now)
        .fetch_optional(c).await)?)
}

pub async fn count_open(db: &Db) -> Result<i64> {
    let n: i64 = on_db!(db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM access_requests WHERE status = 'open'").fetch_one(p).await)?;
    Ok(n)
}

/// Open requests oldest first, then the latest decided ones.
pub async fn list(db: &Db, limit: i64) -> Result<Vec<AccessRequest>> {
    let sql = format!(
        "SELECT {COLS} FROM access_requests
         ORDER BY CASE status WHEN 'open' THEN 0 ELSE 1 END, CASE status WHEN 'open' THEN created_at END, id DESC
         LIMIT $1"
    );
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, AccessRequest>(&sql), limit).fetch_all(p).await)?)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<AccessRequest>> {
    let sql = format!("SELECT {COLS} FROM access_requests WHERE id = $1");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, AccessRequest>(&sql), id).fetch_optional(p).await)?)
}

/// Decides an open request (`done` or `refused`) in `tx`. False when it was not open.
pub async fn decide(tx: &mut Tx, id: i64, status: AccessStatus, by: &str, now: DateTime<Utc>) -> Result<bool> {
    Ok(execute!(tx =>
        "UPDATE access_requests SET status = $2, decided_by = $3, decided_at = $4 WHERE id = $1 AND status = 'open'",
        id, status, by, now)?
        == 1)
}
