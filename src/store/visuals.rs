//! Visuals as the portal shows them, decisions on them, delegations and comments.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Conn, Db, Result, Tx, bind, execute, on_conn, on_db, on_tx, rows_for};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct VisualRow {
    pub id: String,
    pub client_id: String,
    pub job_id: String,
    pub job_name: String,
    pub job_contact: Option<String>,
    pub date_required: Option<NaiveDate>,
    pub design_id: String,
    pub category: String,
    pub designer: String,
    pub status: crate::model::VisualStatus,
    pub main_image: String,
    pub placement_image: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A visual as the portal and the action items show it (`v` the visual, `j` its job).
pub(super) const SELECT: &str =
    "SELECT v.id, v.client_id, v.job_id, j.name AS job_name, c.name AS job_contact, j.date_required,
    v.design_id, v.category, v.designer, v.status, v.main_image, v.placement_image, v.created_at
    FROM visuals v JOIN jobs j ON j.id = v.job_id LEFT JOIN contacts c ON c.id = j.contact_id";

/// One visual of one client (a visual of another client is "not found").
pub async fn get_visual(conn: impl Into<Conn<'_>>, client_id: &str, id: &str) -> Result<VisualRow> {
    let sql = format!("{SELECT} WHERE v.id = $1 AND v.client_id = $2");
    Ok(on_conn!(conn.into(), c => bind!(sqlx::query_as::<_, VisualRow>(&sql), id, client_id).fetch_one(c).await)?)
}

/// A client's visuals, those awaiting approval first, newest first: at most `limit`.
pub async fn list_visuals(db: &Db, client_id: &str, limit: i64) -> Result<Vec<VisualRow>> {
    let sql = format!(
        "{SELECT} WHERE v.client_id = $1
         ORDER BY CASE v.status WHEN '{awaiting}' THEN 0 ELSE 1 END, v.created_at DESC, v.id LIMIT $2",
        awaiting = crate::model::VisualStatus::AwaitingApproval
    );
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, VisualRow>(&sql), client_id, limit).fetch_all(p).await)?)
}

/// A visual's art charges, as a job's cost lines are kept: on the pool, or in the
/// transaction deciding on the visual (which must not wait for a second connection: a
/// dozen approvals at once would hold every connection and wait for one more).
pub async fn list_charges(conn: impl Into<Conn<'_>>, visual_id: &str) -> Result<Vec<super::enquiries::CostLine>> {
    Ok(on_conn!(conn.into(), c => bind!(sqlx::query_as(
        "SELECT description, qty, unit_price FROM visual_charges WHERE visual_id = $1 ORDER BY line_no"),
        visual_id).fetch_all(c).await)?)
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct CommentRow {
    pub author: String,
    pub side: String,
    pub body: String,
    pub at: DateTime<Utc>,
}

/// TOT's comments (from sync) and the portal's, in time order.
pub async fn list_comments(db: &Db, visual_id: &str) -> Result<Vec<CommentRow>> {
    rows_for(
        db,
        "SELECT author, author_side AS side, body, at FROM visual_comments WHERE visual_id = $1
         UNION ALL
         SELECT author, 'client' AS side, body, at FROM portal_comments WHERE visual_id = $1
         ORDER BY at",
        visual_id,
    )
    .await
}

/// Locks a visual's row until the transaction ends (PostgreSQL; a SQLite write transaction
/// already excludes every other writer): what is decided about one visual at once is decided
/// one at a time.
pub async fn lock_visual(tx: &mut Tx, visual_id: &str) -> Result<()> {
    super::lock_row(tx, "SELECT id FROM visuals WHERE id = $1 FOR UPDATE", visual_id.to_string()).await
}

pub async fn insert_comment(tx: &mut Tx, visual_id: &str, author: &str, body: &str, now: DateTime<Utc>) -> Result<()> {
    execute!(tx =>
        "INSERT INTO portal_comments (visual_id, author, body, at) VALUES ($1, $2, $3, $4)",
        visual_id, author, body, now)?;
    Ok(())
}

/// When `author` last wrote `body` on the visual, if that was after `since`: the same comment
/// sent again (a second click, the back button). The caller holds [`lock_visual`], so two
/// sent at once cannot both see none.
pub async fn same_comment(
    tx: &mut Tx,
    visual_id: &str,
    author: &str,
    body: &str,
    since: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    Ok(on_tx!(tx, c => bind!(sqlx::query_scalar(
        "SELECT at FROM portal_comments WHERE visual_id = $1 AND author = $2 AND body = $3 AND at > $4
         ORDER BY at DESC LIMIT 1"), visual_id, author, body, since)
    .fetch_optional(c).await)?)
}

/// Sets a visual's status if it is still `from`; false when someone else changed it first.
pub async fn set_status(tx: &mut Tx, id: &str, from: &str, to: &str) -> Result<bool> {
    Ok(execute!(tx =>
        "UPDATE visuals SET status = $3, sync_hash = '' WHERE id = $1 AND status = $2",
        id, from, to)?
        == 1)
}

pub async fn insert_decision(
    tx: &mut Tx,
    visual_id: &str,
    decision: crate::model::VisualStatus,
    reason: Option<&str>,
    by: &str,
    channel: crate::model::Channel,
    now: DateTime<Utc>,
) -> Result<()> {
    execute!(tx =>
        "INSERT INTO visual_decisions (visual_id, decision, reason, decided_by, channel, at) VALUES ($1, $2, $3, $4, $5, $6)",
        visual_id, decision, reason, by, channel, now)?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct DecisionRow {
    pub decision: crate::model::VisualStatus,
    pub reason: Option<String>,
    pub decided_by: String,
    pub channel: crate::model::Channel,
    pub at: DateTime<Utc>,
}

/// The latest decision on a visual, if a client made one through cport.
pub async fn last_decision(conn: impl Into<Conn<'_>>, visual_id: &str) -> Result<Option<DecisionRow>> {
    Ok(on_conn!(conn.into(), c => bind!(sqlx::query_as::<_, DecisionRow>(
        "SELECT decision, reason, decided_by, channel, at FROM visual_decisions WHERE visual_id = $1
         ORDER BY id DESC LIMIT 1"), visual_id)
    .fetch_optional(c).await)?)
}

pub async fn list_decisions(db: &Db, visual_id: &str) -> Result<Vec<DecisionRow>> {
    rows_for(
        db,
        "SELECT decision, reason, decided_by, channel, at FROM visual_decisions WHERE visual_id = $1 ORDER BY id",
        visual_id,
    )
    .await
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct DelegationRow {
    pub id: i64,
    pub visual_id: String,
    pub client_id: String,
    pub contact_id: String,
    pub name: String,
    pub email: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// Until when an unused delegation of this visual to this address still works, if one does:
/// asked in the delegating transaction, with the visual's row locked on PostgreSQL (a SQLite
/// write transaction already excludes every other writer), so the same hand-over sent twice
/// at once makes one link.
pub async fn open_delegation(
    tx: &mut Tx,
    visual_id: &str,
    email: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    lock_visual(tx, visual_id).await?;
    Ok(on_tx!(tx, c => bind!(sqlx::query_scalar(
        "SELECT MAX(expires_at) FROM delegations
         WHERE visual_id = $1 AND lower(email) = lower($2) AND used_at IS NULL AND expires_at > $3"),
        visual_id, email, now).fetch_one(c).await)?)
}

pub async fn insert_delegation(tx: &mut Tx, d: &DelegationRow, now: DateTime<Utc>) -> Result<i64> {
    let id: i64 = on_tx!(tx, c => bind!(sqlx::query_scalar(
        "INSERT INTO delegations (visual_id, client_id, contact_id, name, email, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    ), &d.visual_id, &d.client_id, &d.contact_id, &d.name, &d.email, d.expires_at, now)
    .fetch_one(c).await)?;
    Ok(id)
}

pub async fn get_delegation(db: &Db, id: i64) -> Result<DelegationRow> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, DelegationRow>(
        "SELECT id, visual_id, client_id, contact_id, name, email, expires_at, used_at FROM delegations WHERE id = $1",
    ), id)
    .fetch_one(p).await)?)
}

/// Marks a delegation used; false when it was used already (it works once).
pub async fn use_delegation(tx: &mut Tx, id: i64, now: DateTime<Utc>) -> Result<bool> {
    Ok(execute!(tx =>
        "UPDATE delegations SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $2",
        id, now)?
        == 1)
}
