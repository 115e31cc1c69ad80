//! The outbox: one row per message to send, claimed by dispatchers, marked when done.

use chrono::{DateTime, Utc};

use super::{Db, Result, Tx, on_db, on_tx};

pub const STATUSES: &[&str] = &["queued", "sending", "sent", "failed", "dead", "dropped"];

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub contact_id: Option<String>,
    pub channel: String,
    pub kind: String,
    pub idem_key: String,
    pub reply_token: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub payload: String,
    pub next_attempt_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub contact_id: Option<String>,
    pub channel: String,
    pub kind: String,
    pub idem_key: String,
    pub reply_token: Option<String>,
    pub recipient: String,
    pub subject: String,
    #[serde(skip)]
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub provider_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

const COLS: &str = "id, contact_id, channel, kind, idem_key, reply_token, recipient, subject, payload, status,
    attempts, next_attempt_at, last_error, provider_id, created_at, sent_at";

/// Queues a message unless one with the same idempotency key exists. Returns the new id,
/// or `None` when the key was already used (the decision was made before).
pub async fn insert_message(tx: &mut Tx, m: &NewMessage, now: DateTime<Utc>) -> Result<Option<i64>> {
    let row: Option<(i64,)> = on_tx!(tx, c => sqlx::query_as(
        "INSERT INTO outbox (contact_id, channel, kind, idem_key, reply_token, recipient, subject, payload, status,
           attempts, next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, $9, $10, $10)
         ON CONFLICT (idem_key) DO NOTHING RETURNING id",
    )
    .bind(&m.contact_id)
    .bind(&m.channel)
    .bind(&m.kind)
    .bind(&m.idem_key)
    .bind(&m.reply_token)
    .bind(&m.recipient)
    .bind(&m.subject)
    .bind(&m.payload)
    .bind(m.next_attempt_at)
    .bind(now)
    .fetch_optional(c)
    .await)?;
    if row.is_some() {
        metrics::counter!("cport_outbox_queued_total", "channel" => m.channel.clone(), "kind" => m.kind.clone())
            .increment(1);
    }
    Ok(row.map(|r| r.0))
}

/// Claims the next due message for sending (a lease of `lease_until`); a message whose lease
/// ran out (its sender died) is due again. Several dispatchers never claim the same row.
pub async fn claim_due(db: &Db, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Option<OutboxRow>> {
    Ok(claim_batch(db, now, lease_until, 1).await?.pop())
}

/// Claims up to `limit` due messages at once, oldest first.
pub async fn claim_batch(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OutboxRow>> {
    let lock = match db {
        Db::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        // SQLite runs one writer at a time, so the UPDATE below is already atomic.
        Db::Sqlite(_) => "",
    };
    let sql = format!(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1, claimed_until = $2, updated_at = $1
         WHERE id IN (SELECT id FROM outbox
                     WHERE (status IN ('queued', 'failed') AND next_attempt_at <= $1)
                        OR (status = 'sending' AND claimed_until < $1)
                     ORDER BY next_attempt_at, id LIMIT $3 {lock})
         RETURNING {COLS}"
    );
    let mut rows = on_db!(db, p => sqlx::query_as::<_, OutboxRow>(&sql).bind(now).bind(lease_until).bind(limit).fetch_all(p).await)?;
    rows.sort_by_key(|r| (r.next_attempt_at, r.id));
    Ok(rows)
}

/// Marks several messages sent in one statement (provider ids per message).
pub async fn mark_sent_many(db: &Db, sent: &[(i64, String)], now: DateTime<Utc>) -> Result<()> {
    for chunk in sent.chunks(200) {
        let cases: String = (0..chunk.len())
            .map(|i| format!(" WHEN ${} THEN ${}", 2 + 2 * i, 3 + 2 * i))
            .collect();
        let ids: Vec<String> = (0..chunk.len()).map(|i| format!("${}", 2 + 2 * i)).collect();
        let sql = format!(
            "UPDATE outbox SET status = 'sent', sent_at = $1, updated_at = $1, claimed_until = NULL, last_error = NULL,
               provider_id = CASE id{cases} END WHERE id IN ({})",
            ids.join(", ")
        );
        on_db!(db, p => {
            let mut q = sqlx::query(&sql).bind(now);
            for (id, provider) in chunk {
                q = q.bind(*id).bind(provider);
            }
            q.execute(p).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Records a failed attempt: `failed` with a next attempt time, or `dead` when `retry_at` is None.
pub async fn mark_failed(
    db: &Db,
    id: i64,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let status = if retry_at.is_some() { "failed" } else { "dead" };
    on_db!(db, p => sqlx::query(
        "UPDATE outbox SET status = $2, last_error = $3, next_attempt_at = COALESCE($4, next_attempt_at),
           claimed_until = NULL, updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(error)
    .bind(retry_at)
    .bind(now)
    .execute(p)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A provider asked to wait: due again at `retry_at`, and the attempt is given back.
pub async fn mark_rate_limited(
    db: &Db,
    id: i64,
    error: &str,
    retry_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "UPDATE outbox SET status = 'failed', last_error = $2, next_attempt_at = $3,
           attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
           claimed_until = NULL, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_at)
    .bind(now)
    .execute(p)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A message that no longer needs sending (its item was resolved first).
pub async fn mark_dropped(db: &Db, id: i64, reason: &str, now: DateTime<Utc>) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "UPDATE outbox SET status = 'dropped', last_error = $2, claimed_until = NULL, updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(reason)
    .bind(now)
    .execute(p)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Puts a held message back to `queued` with new content (alert batching), in a transaction.
pub async fn update_queued(tx: &mut Tx, id: i64, subject: &str, payload: &str, now: DateTime<Utc>) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE outbox SET subject = $2, payload = $3, updated_at = $4 WHERE id = $1 AND status = 'queued'",
    )
    .bind(id)
    .bind(subject)
    .bind(payload)
    .bind(now)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// A queued alert for this contact and channel that has not gone yet (held for batching or
/// quiet hours), if any.
pub async fn find_held_alert(
    tx: &mut Tx,
    contact_id: &str,
    channel: &str,
    now: DateTime<Utc>,
) -> Result<Option<OutboxRow>> {
    let sql = format!(
        "SELECT {COLS} FROM outbox WHERE contact_id = $1 AND channel = $2 AND kind = 'alert'
           AND status = 'queued' AND next_attempt_at > $3 ORDER BY id DESC LIMIT 1"
    );
    Ok(
        on_tx!(tx, c => sqlx::query_as::<_, OutboxRow>(&sql).bind(contact_id).bind(channel).bind(now).fetch_optional(c).await)?,
    )
}

/// When the last message of `kind` went to (or was queued for) this contact on this channel.
pub async fn last_alert_at(tx: &mut Tx, contact_id: &str, channel: &str) -> Result<Option<DateTime<Utc>>> {
    let row: Option<(DateTime<Utc>,)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT next_attempt_at FROM outbox WHERE contact_id = $1 AND channel = $2 AND kind = 'alert'
           AND status <> 'dropped' ORDER BY next_attempt_at DESC LIMIT 1",
    )
    .bind(contact_id)
    .bind(channel)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|r| r.0))
}

pub async fn find_by_reply_token(db: &Db, token: &str) -> Result<Option<OutboxRow>> {
    let sql = format!("SELECT {COLS} FROM outbox WHERE reply_token = $1");
    Ok(on_db!(db, p => sqlx::query_as::<_, OutboxRow>(&sql).bind(token).fetch_optional(p).await)?)
}

/// The most recent messages, newest first, optionally of one status.
pub async fn list_messages(db: &Db, status: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>> {
    let sql = format!("SELECT {COLS} FROM outbox WHERE ($1 IS NULL OR status = $1) ORDER BY id DESC LIMIT $2");
    Ok(on_db!(db, p => sqlx::query_as::<_, OutboxRow>(&sql).bind(status).bind(limit).fetch_all(p).await)?)
}

/// Sends a failed or dead message again from scratch. Returns false when it was not retryable.
pub async fn requeue(db: &Db, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let n = on_db!(db, p => sqlx::query(
        "UPDATE outbox SET status = 'queued', attempts = 0, next_attempt_at = $2, updated_at = $2
         WHERE id = $1 AND status IN ('failed', 'dead')",
    )
    .bind(id)
    .bind(now)
    .execute(p)
    .await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn requeue_dead(db: &Db, now: DateTime<Utc>) -> Result<u64> {
    Ok(on_db!(db, p => sqlx::query(
        "UPDATE outbox SET status = 'queued', attempts = 0, next_attempt_at = $1, updated_at = $1 WHERE status = 'dead'",
    )
    .bind(now)
    .execute(p)
    .await.map(|r| r.rows_affected()))?)
}

pub async fn counts_by_status(db: &Db) -> Result<Vec<(String, i64)>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, (String, i64)>(
        "SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status",
    )
    .fetch_all(p)
    .await)?)
}

/// The item keys of the last digest queued for this contact and channel (for "new" marks).
pub async fn last_digest_payload(tx: &mut Tx, contact_id: &str, channel: &str) -> Result<Option<String>> {
    let row: Option<(String,)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT payload FROM outbox WHERE contact_id = $1 AND channel = $2 AND kind = 'digest'
         ORDER BY id DESC LIMIT 1",
    )
    .bind(contact_id)
    .bind(channel)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|r| r.0))
}

/// Contacts whose email is suspended (after bounces), with the reason.
pub async fn suspended_contacts(db: &Db) -> Result<std::collections::HashMap<String, String>> {
    let rows: Vec<(String, Option<String>)> = on_db!(db, p => sqlx::query_as(
        "SELECT contact_id, email_suspended_reason FROM contact_settings WHERE email_suspended_at IS NOT NULL",
    )
    .fetch_all(p)
    .await)?;
    Ok(rows.into_iter().map(|(c, r)| (c, r.unwrap_or_default())).collect())
}
