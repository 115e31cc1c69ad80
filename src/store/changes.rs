//! The change feed: every client action as an event with a strictly increasing sequence.

use chrono::{DateTime, Utc};

use super::{Db, Result, Tx, bind, execute, on_db, on_tx};

/// The last sequence number given to an event (0 before the first).
pub async fn last_seq(db: &Db) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT seq FROM feed_counter WHERE id = 1").fetch_one(p).await)?)
}

/// Appends an event inside the caller's transaction and returns its sequence number.
/// The counter row stays locked until the transaction ends, so events commit in order.
pub async fn append_change(
    tx: &mut Tx,
    kind: crate::model::ChangeKind,
    client_id: &str,
    contact_id: Option<&str>,
    subject_id: &str,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<i64> {
    let seq: i64 = on_tx!(tx, c => sqlx::query_scalar("UPDATE feed_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq")
        .fetch_one(c).await)?;
    execute!(tx =>
        "INSERT INTO changes (seq, kind, client_id, contact_id, subject_id, payload, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        seq, kind.as_str(), client_id, contact_id, subject_id, payload.to_string(), now)?;
    Ok(seq)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChangeRow {
    pub seq: i64,
    pub kind: String,
    pub client_id: String,
    pub contact_id: Option<String>,
    pub subject_id: String,
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

impl ChangeRow {
    /// The event as the feed shows it.
    pub fn change(self) -> crate::model::Change {
        crate::model::Change {
            data: serde_json::from_str(&self.payload).unwrap_or(serde_json::Value::Null),
            seq: self.seq,
            kind: self.kind,
            client_id: self.client_id,
            contact_id: self.contact_id,
            subject_id: self.subject_id,
            at: self.created_at,
        }
    }
}

/// Events after `after`, in sequence order.
pub async fn list_changes(db: &Db, after: i64, limit: i64) -> Result<Vec<ChangeRow>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, ChangeRow>(
        "SELECT seq, kind, client_id, contact_id, subject_id, payload, created_at FROM changes
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    ), after, limit)
    .fetch_all(p).await)?)
}
