//! Contacts as cport reads them.

use chrono::{DateTime, Utc};

use super::{Db, Result, bind, on_db, rows_for};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ContactRow {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub name: String,
    pub email: String,
    pub role: crate::model::Role,
    pub timezone: String,
    pub digest_schedule: Option<String>,
    pub active: bool,
    /// The version of the client's action items when this row was read (see the
    /// `client_versions` migration): a page's items snapshot is current while it matches.
    pub items_version: i64,
    /// When cport first stored it; none for a contact stored before that was kept.
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When TOT last changed its digest schedule or time zone (none: never since stored).
    pub schedule_set_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When TOT last gave it another email address (none: never since stored): what was
    /// signed for it before then was for the old address's reader.
    pub email_set_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A [`ContactRow`]'s columns, from `contacts c` joined with `clients cl`.
pub(super) const COLS: &str = "c.id, c.client_id, cl.name AS client_name, c.name, c.email, c.role, c.timezone,
    c.digest_schedule, c.active,
    COALESCE((SELECT v.version FROM client_versions v WHERE v.client_id = c.client_id), 0) AS items_version,
    c.created_at, c.schedule_set_at, c.email_set_at";

const FROM: &str = "FROM contacts c JOIN clients cl ON cl.id = c.client_id";

/// Locks a contact's row until the transaction ends (PostgreSQL; a SQLite write transaction
/// already excludes every other writer): what one contact does, or asks for, at once is done
/// one at a time.
pub async fn lock(tx: &mut super::Tx, contact_id: &str) -> Result<()> {
    super::lock_row(tx, "SELECT id FROM contacts WHERE id = $1 FOR UPDATE", contact_id.to_string()).await
}

pub async fn get_contact(db: &Db, id: &str) -> Result<ContactRow> {
    let sql = format!("SELECT {COLS} {FROM} WHERE c.id = $1");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, ContactRow>(&sql), id).fetch_one(p).await)?)
}

/// The contact if it is active. To whatever acts for a contact (a reply, a signed link, a
/// chase, an unsubscribe) one that is no longer active is as good as none.
pub async fn active_contact(db: &Db, id: &str) -> Result<Option<ContactRow>> {
    let sql = format!("SELECT {COLS} {FROM} WHERE c.id = $1 AND c.active");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, ContactRow>(&sql), id).fetch_optional(p).await)?)
}

/// The active contacts of one client, by name.
pub async fn list_client_contacts(db: &Db, client_id: &str) -> Result<Vec<ContactRow>> {
    let sql = format!("SELECT {COLS} {FROM} WHERE c.active AND c.client_id = $1 ORDER BY c.name, c.id");
    rows_for(db, &sql, client_id).await
}

/// Every active contact, in id order.
pub async fn list_active_contacts(db: &Db) -> Result<Vec<ContactRow>> {
    let sql = format!("SELECT {COLS} {FROM} WHERE c.active ORDER BY c.client_id, c.id");
    Ok(on_db!(db, p => sqlx::query_as::<_, ContactRow>(&sql).fetch_all(p).await)?)
}

/// How an active contact is reached now: their address, and when TOT last changed their
/// record (a message written before then may name what is no longer so).
#[derive(Debug, Clone)]
pub struct Reach {
    pub email: String,
    pub updated_at: DateTime<Utc>,
}

/// Of `contacts`, those still there and active (the outbox sends nothing queued for the others).
pub async fn active_of(db: &Db, contacts: &[&str]) -> Result<std::collections::HashMap<String, Reach>> {
    let rows: Vec<(String, String, DateTime<Utc>)> = crate::fetch_in!(
        on_db,
        db,
        "SELECT id, email, updated_at FROM contacts WHERE active AND id IN ({in})".to_string(),
        contacts,
        once
    )?;
    Ok(rows.into_iter().map(|(id, email, updated_at)| (id, Reach { email, updated_at })).collect())
}
