//! Inbound email bookkeeping: processed-once ledger, held messages, bounces, artwork.

use chrono::{DateTime, Utc};

use super::{Db, Result, Tx, on_db, on_tx};

pub async fn seen(db: &Db, message_id: &str) -> Result<bool> {
    let row: Option<(String,)> = on_db!(db, p => sqlx::query_as("SELECT disposition FROM inbound_messages WHERE message_id = $1")
        .bind(message_id).fetch_optional(p).await)?;
    Ok(row.is_some())
}

/// Records what became of a message; false when it had been recorded already.
pub async fn record(
    tx: &mut Tx,
    message_id: &str,
    contact_id: Option<&str>,
    disposition: &str,
    reason: &str,
    raw: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "INSERT INTO inbound_messages (message_id, received_at, contact_id, disposition, reason, raw)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(message_id).bind(now).bind(contact_id).bind(disposition).bind(reason).bind(raw)
    .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldRow {
    pub message_id: String,
    pub received_at: DateTime<Utc>,
    pub contact_id: Option<String>,
    pub reason: String,
}

pub async fn list_held(db: &Db, limit: i64) -> Result<Vec<HeldRow>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, HeldRow>(
        "SELECT message_id, received_at, contact_id, reason FROM inbound_messages WHERE disposition = 'held'
         ORDER BY received_at DESC LIMIT $1",
    ).bind(limit).fetch_all(p).await)?)
}

/// Counts a bounce for a contact; suspends email on a hard bounce or after `soft_limit` soft
/// ones in a row. Returns whether email is now suspended.
pub async fn record_bounce(
    tx: &mut Tx,
    contact_id: &str,
    hard: bool,
    reason: &str,
    soft_limit: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO contact_settings (contact_id, email_enabled, soft_bounces, updated_at) VALUES ($1, TRUE, 0, $2)
         ON CONFLICT (contact_id) DO NOTHING",
    ).bind(contact_id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    let (soft,): (i64,) = on_tx!(tx, c => sqlx::query_as(
        "UPDATE contact_settings SET soft_bounces = soft_bounces + $2, updated_at = $3 WHERE contact_id = $1 RETURNING soft_bounces",
    ).bind(contact_id).bind(if hard { 0i64 } else { 1i64 }).bind(now).fetch_one(c).await)?;
    let suspend = hard || soft >= soft_limit;
    if suspend {
        on_tx!(tx, c => sqlx::query(
            "UPDATE contact_settings SET email_suspended_at = COALESCE(email_suspended_at, $2), email_suspended_reason = $3
             WHERE contact_id = $1",
        ).bind(contact_id).bind(now).bind(reason).execute(c).await.map(|r| r.rows_affected()))?;
    }
    Ok(suspend)
}

/// A message from the contact proves the address works: lift a suspension, reset counts.
pub async fn clear_bounces(tx: &mut Tx, contact_id: &str, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE contact_settings SET email_suspended_at = NULL, email_suspended_reason = NULL, soft_bounces = 0, updated_at = $2
         WHERE contact_id = $1 AND (email_suspended_at IS NOT NULL OR soft_bounces > 0)",
    ).bind(contact_id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn suspended_count(db: &Db) -> Result<i64> {
    let (n,): (i64,) = on_db!(db, p => sqlx::query_as("SELECT COUNT(*) FROM contact_settings WHERE email_suspended_at IS NOT NULL")
        .fetch_one(p).await)?;
    Ok(n)
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_artwork(
    tx: &mut Tx,
    client_id: &str,
    job_id: &str,
    contact_id: &str,
    file_name: &str,
    content_type: &str,
    size: i64,
    path: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO artwork_uploads (client_id, job_id, contact_id, file_name, content_type, size_bytes, path, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    ).bind(client_id).bind(job_id).bind(contact_id).bind(file_name).bind(content_type).bind(size).bind(path).bind(now)
    .execute(c).await.map(|r| r.rows_affected()))?;
    on_tx!(tx, c => sqlx::query("UPDATE art_requirements SET art_received = TRUE, sync_hash = '' WHERE job_id = $1 AND client_id = $2")
        .bind(job_id).bind(client_id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}
