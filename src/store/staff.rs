//! TOT's staff: accounts, console sessions (apart from clients' sessions), the audit trail of
//! what staff did, and access requests from people without an account.

use chrono::{DateTime, Utc};

use super::sessions::NewSession;
use super::{Db, Result, bind, execute, on_db, on_db_write, on_tx};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct StaffRow {
    pub id: i64,
    pub email: String,
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    /// When its password was last set: a password link made before it is spent.
    pub password_set_at: Option<DateTime<Utc>>,
}

const STAFF_COLS: &str = "id, email, password_hash IS NOT NULL AS has_password, created_at, password_set_at";

/// Adds a staff account (no password yet), or returns the existing one's id when the address
/// already has an account that was not removed. A removed account comes back without a
/// password.
pub async fn add(db: &Db, email: &str, now: DateTime<Utc>) -> Result<(i64, bool)> {
    let existing: Option<(i64, Option<DateTime<Utc>>)> = on_db!(db, p => bind!(sqlx::query_as(
        "SELECT id, removed_at FROM staff WHERE email = $1"), email).fetch_optional(p).await)?;
    match existing {
        Some((id, None)) => Ok((id, false)),
        Some((id, Some(_))) => {
            execute!(db =>
                "UPDATE staff SET removed_at = NULL, password_hash = NULL, created_at = $2 WHERE id = $1",
                id, now)?;
            Ok((id, true))
        }
        None => {
            let id: i64 = on_db_write!(db, p => bind!(sqlx::query_scalar(
                "INSERT INTO staff (email, created_at) VALUES ($1, $2) RETURNING id"), email, now)
                .fetch_one(p).await)?;
            Ok((id, true))
        }
    }
}

/// Whether any staff account exists (the console is in use).
pub async fn any(db: &Db) -> Result<bool> {
    let row: Option<i64> = on_db!(db, p => sqlx::query_scalar("SELECT id FROM staff WHERE removed_at IS NULL LIMIT 1")
        .fetch_optional(p).await)?;
    Ok(row.is_some())
}

/// Every staff account not removed, by address.
pub async fn list(db: &Db) -> Result<Vec<StaffRow>> {
    let sql = format!("SELECT {STAFF_COLS} FROM staff WHERE removed_at IS NULL ORDER BY email");
    Ok(on_db!(db, p => sqlx::query_as::<_, StaffRow>(&sql).fetch_all(p).await)?)
}

/// The live account with this address.
pub async fn by_email(db: &Db, email: &str) -> Result<Option<(i64, Option<String>)>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as(
        "SELECT id, password_hash FROM staff WHERE email = $1 AND removed_at IS NULL"), email)
        .fetch_optional(p).await)?)
}

/// The live account with this id.
pub async fn get(db: &Db, id: i64) -> Result<Option<StaffRow>> {
    let sql = format!("SELECT {STAFF_COLS} FROM staff WHERE id = $1 AND removed_at IS NULL");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, StaffRow>(&sql), id).fetch_optional(p).await)?)
}

/// Removes an account and ends its sessions. False when there was no such live account.
/// The removed account gives up its address (kept as `removed:<id>:<address>`), so adding
/// the address again makes a new account: a password link made for the old one opens nothing.
/// The account's row is written first, so a sign-in checking it waits (see [`insert_session`]).
pub async fn remove(db: &Db, email: &str, now: DateTime<Utc>) -> Result<bool> {
    let mut tx = db.begin().await?;
    let id: Option<i64> = on_tx!(&mut tx, c => bind!(sqlx::query_scalar(
        "UPDATE staff SET removed_at = $2, password_hash = NULL, email = 'removed:' || CAST(id AS TEXT) || ':' || email
         WHERE email = $1 AND removed_at IS NULL RETURNING id"),
        email, now).fetch_optional(c).await)?;
    if let Some(id) = id {
        execute!(&mut tx => REVOKE_ALL, id, now)?;
    }
    tx.commit().await?;
    Ok(id.is_some())
}

const REVOKE_ALL: &str = "UPDATE staff_sessions SET revoked_at = $2 WHERE staff_id = $1 AND revoked_at IS NULL";

/// Sets the password and ends every session of the account.
pub async fn set_password(db: &Db, id: i64, hash: &str, now: DateTime<Utc>) -> Result<bool> {
    let mut tx = db.begin().await?;
    let n = execute!(&mut tx =>
        "UPDATE staff SET password_hash = $2, password_set_at = $3 WHERE id = $1 AND removed_at IS NULL",
        id, hash, now)?;
    execute!(&mut tx => REVOKE_ALL, id, now)?;
    tx.commit().await?;
    Ok(n == 1)
}

/// A new console session for an account whose password was checked against `password`: when
/// that password has changed since, or the account was removed, no session starts and this
/// is false. Read with the account's row locked, as [`set_password`] and [`remove`] write it.
pub async fn insert_session(db: &Db, s: &NewSession<'_>, staff_id: i64, password: &str) -> Result<bool> {
    let mut tx = db.begin().await?;
    super::lock_row(&mut tx, "SELECT id FROM staff WHERE id = $1 FOR UPDATE", staff_id).await?;
    let still: Option<i64> = on_tx!(&mut tx, c => bind!(sqlx::query_scalar(
        "SELECT id FROM staff WHERE id = $1 AND password_hash = $2 AND removed_at IS NULL"), staff_id, password)
    .fetch_optional(c).await)?;
    if still.is_none() {
        tx.rollback().await?;
        return Ok(false);
    }
    execute!(&mut tx =>
        "INSERT INTO staff_sessions (token_hash, staff_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        s.token_hash, staff_id, s.csrf, s.now, s.expires_at)?;
    tx.commit().await?;
    Ok(true)
}

/// A live console session: its account (not removed) and CSRF token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaffSessionRow {
    pub staff_id: i64,
    pub email: String,
    pub csrf: String,
}

pub async fn get_session(db: &Db, token_hash: &str, now: DateTime<Utc>) -> Result<Option<StaffSessionRow>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, StaffSessionRow>(
        "SELECT s.staff_id, st.email, s.csrf FROM staff_sessions s JOIN staff st ON st.id = s.staff_id
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND st.removed_at IS NULL"),
        token_hash, now).fetch_optional(p).await)?)
}

pub async fn revoke_session(db: &Db, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
    execute!(db => "UPDATE staff_sessions SET revoked_at = $2 WHERE token_hash = $1", token_hash, now)?;
    Ok(())
}

/// Records what a staff member did (`action`) to what (`subject`).
pub async fn audit(db: &Db, staff_email: &str, action: &str, subject: &str, now: DateTime<Utc>) -> Result<()> {
    execute!(db =>
        "INSERT INTO staff_audit (staff_email, action, subject, at) VALUES ($1, $2, $3, $4)",
        staff_email, action, subject, now)?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AuditRow {
    pub staff_email: String,
    pub action: String,
    pub subject: String,
    pub at: DateTime<Utc>,
}

/// The most recent staff actions, newest first.
pub async fn recent_audit(db: &Db, limit: i64) -> Result<Vec<AuditRow>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, AuditRow>(
        "SELECT staff_email, action, subject, at FROM staff_audit ORDER BY id DESC LIMIT $1"), limit)
        .fetch_all(p).await)?)
}
