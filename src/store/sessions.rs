//! Portal accounts (password hashes) and sessions.

use chrono::{DateTime, Utc};

use super::contacts::{COLS, ContactRow};
use super::{Conn, Db, Result, Tx, bind, execute, on_db, on_tx};

pub async fn get_password_hash(db: &Db, contact_id: &str) -> Result<Option<String>> {
    Ok(on_db!(db, p => bind!(sqlx::query_scalar("SELECT password_hash FROM accounts WHERE contact_id = $1"),
        contact_id)
        .fetch_optional(p).await)?)
}

/// When the contact's password was last set, if it has one: `&db` or `&mut tx`.
pub async fn password_set_at(conn: impl Into<Conn<'_>>, contact_id: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(crate::on_conn!(conn.into(), c => bind!(sqlx::query_scalar(
        "SELECT password_set_at FROM accounts WHERE contact_id = $1"), contact_id)
        .fetch_optional(c).await)?)
}

/// Sets a contact's password and ends every session of theirs, together, with the contact's
/// row locked: a sign-in that checked the old password cannot start a session after this
/// (see [`insert_password_session`]).
pub async fn replace_password(db: &Db, contact_id: &str, hash: &str, now: DateTime<Utc>) -> Result<()> {
    let mut tx = db.begin().await?;
    super::contacts::lock(&mut tx, contact_id).await?;
    execute!(&mut tx =>
        "INSERT INTO accounts (contact_id, password_hash, password_set_at) VALUES ($1, $2, $3)
         ON CONFLICT (contact_id) DO UPDATE SET password_hash = excluded.password_hash,
           password_set_at = excluded.password_set_at",
        contact_id, hash, now)?;
    execute!(&mut tx => REVOKE_ALL, contact_id, now)?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub contact_id: String,
    pub csrf: String,
    pub delegation_id: Option<i64>,
    pub expires_at: DateTime<Utc>,
}

/// A session about to be written, a client's or a staff member's: the token's hash (the
/// token itself is only in the cookie), its CSRF token and its lifetime.
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub csrf: &'a str,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_session(
    conn: impl Into<Conn<'_>>,
    s: &NewSession<'_>,
    contact_id: &str,
    delegation_id: Option<i64>,
) -> Result<()> {
    execute!(conn =>
        "INSERT INTO sessions (token_hash, contact_id, csrf, delegation_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        s.token_hash, contact_id, s.csrf, delegation_id, s.now, s.expires_at)?;
    Ok(())
}

/// A new session for a contact whose password was checked against `hash`: when the password
/// has changed since (or the contact has gone), no session starts and this is false. Read
/// with the contact's row locked, as [`replace_password`] writes it.
pub async fn insert_password_session(db: &Db, s: &NewSession<'_>, contact_id: &str, hash: &str) -> Result<bool> {
    let mut tx = db.begin().await?;
    super::contacts::lock(&mut tx, contact_id).await?;
    let still: Option<String> = on_tx!(&mut tx, c => bind!(sqlx::query_scalar(
        "SELECT a.contact_id FROM accounts a JOIN contacts c ON c.id = a.contact_id
         WHERE a.contact_id = $1 AND a.password_hash = $2 AND c.active"), contact_id, hash)
    .fetch_optional(c).await)?;
    if still.is_none() {
        tx.rollback().await?;
        return Ok(false);
    }
    insert_session(&mut tx, s, contact_id, None).await?;
    tx.commit().await?;
    Ok(true)
}

/// A live session: not expired, not revoked, and its contact still active.
/// A live session and its contact, as one row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SignedIn {
    #[sqlx(flatten)]
    pub session: SessionRow,
    #[sqlx(flatten)]
    pub contact: ContactRow,
    /// The banners' version when read (see `list_live`).
    pub banners_version: i64,
}

/// The session with this token and its (active) contact, read together: every page asks.
pub async fn get_signed_in(db: &Db, token_hash: &str, now: DateTime<Utc>) -> Result<Option<SignedIn>> {
    let sql = format!(
        "SELECT s.contact_id, s.csrf, s.delegation_id, s.expires_at, {COLS},
                COALESCE((SELECT version FROM store_versions WHERE name = 'banners'), 0) AS banners_version
         FROM sessions s
         JOIN contacts c ON c.id = s.contact_id JOIN clients cl ON cl.id = c.client_id
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND c.active"
    );
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, SignedIn>(&sql), token_hash, now).fetch_optional(p).await)?)
}

pub async fn revoke_session(db: &Db, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
    execute!(db => "UPDATE sessions SET revoked_at = $2 WHERE token_hash = $1", token_hash, now)?;
    Ok(())
}

/// Ends every session of a contact (password changed or reset, user revoked).
pub async fn revoke_contact_sessions(db: &Db, contact_id: &str, now: DateTime<Utc>) -> Result<u64> {
    Ok(execute!(db => REVOKE_ALL, contact_id, now)?)
}

const REVOKE_ALL: &str = "UPDATE sessions SET revoked_at = $2 WHERE contact_id = $1 AND revoked_at IS NULL";

/// After TOT's records changed these contacts, ends for good what they no longer hold: the
/// sessions of a contact made inactive or given another address by this write (they were
/// opened by the old address's reader); for a new address also the password and the chats
/// tied by a code (both were had by reading the old address: a chat named by TOT's record
/// stays, as TOT says); and the delegations given by a contact whose role no longer decides
/// on visuals (or who is inactive), with the sessions those opened. Restoring the contact
/// later brings none of them back. Returns the sessions ended.
pub async fn end_lapsed(tx: &mut Tx, contact_ids: &[&str], now: DateTime<Utc>) -> Result<u64> {
    let deciders: Vec<crate::model::Role> =
        crate::model::Role::ALL.iter().copied().filter(|r| r.acts_on_orders()).collect();
    let deciders = super::state_list(&deciders);
    let mut ended = 0;
    for chunk in contact_ids.chunks(super::IN_CHUNK) {
        let ids = super::placeholders(2, chunk.len());
        let lapsed =
            format!("SELECT id FROM contacts WHERE id IN ({ids}) AND (NOT active OR role NOT IN ({deciders}))");
        let given = format!(
            "SELECT id FROM delegations WHERE contact_id IN ({lapsed}) AND used_at IS NULL AND expires_at > $1"
        );
        let moved = format!("SELECT id FROM contacts WHERE id IN ({ids}) AND email_set_at >= $1");
        let sqls = [
            format!(
                "UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL
                 AND (contact_id IN (SELECT id FROM contacts WHERE id IN ({ids}) AND (NOT active OR email_set_at >= $1))
                      OR delegation_id IN ({given}))"
            ),
            format!("UPDATE delegations SET expires_at = $1 WHERE id IN ({given})"),
            format!("DELETE FROM accounts WHERE contact_id IN ({moved})"),
            format!("DELETE FROM chat_links WHERE contact_id IN ({moved})"),
        ];
        for (i, sql) in sqls.iter().enumerate() {
            let mut vals: Vec<super::values::Val> = vec![super::values::Val::from(now)];
            vals.extend(chunk.iter().map(|id| super::values::Val::from(*id)));
            let refs: Vec<&super::values::Val> = vals.iter().collect();
            let n = super::values::execute(tx, sql, &refs).await?;
            if i == 0 {
                ended += n;
            }
        }
    }
    Ok(ended)
}

/// Contacts whose email matches (case-insensitively), active only. Both sides are lowered by
/// the engine: SQLite folds A-Z only, so an address typed as it is kept always matches, where
/// one lowered by Rust first (`É` → `é`) would miss an `É` the store cannot fold.
pub async fn contacts_by_email(db: &Db, email: &str) -> Result<Vec<String>> {
    Ok(on_db!(db, p => bind!(sqlx::query_scalar(
        "SELECT id FROM contacts WHERE lower(email) = lower($1) AND active ORDER BY id",
    ), email)
    .fetch_all(p).await)?)
}
