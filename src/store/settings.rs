//! Per-contact preferences kept by cport (TOT's data never overwrites them).

use chrono::{DateTime, Utc};

use super::{Conn, Db, Result, Tx, bind, execute, on_db, on_tx};
use crate::model::{AlertMode, Stoppable};

/// What a message to a contact is, for the kinds of email a contact may turn off one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
    Digest,
    Alert,
    /// Banners, answers and the rest: only email on or off rules them.
    Other,
}

impl From<Stoppable> for Sending {
    fn from(kind: Stoppable) -> Sending {
        match kind {
            Stoppable::Digest => Sending::Digest,
            Stoppable::Alert => Sending::Alert,
        }
    }
}

impl Sending {
    /// The kind of an outbox row (`digest`, `alert`, …).
    pub fn of_kind(kind: crate::model::MessageKind) -> Sending {
        crate::model::Stoppable::of_kind(kind).map_or(Sending::Other, Sending::from)
    }
}

#[derive(Debug, Clone, Default, sqlx::FromRow, serde::Serialize)]
pub struct ContactSettings {
    pub contact_id: String,
    pub timezone: Option<String>,
    pub digest_schedule: Option<String>,
    /// Local "HH:MM" times; alerts wait while the clock is between them.
    pub quiet_start: Option<String>,
    pub quiet_end: Option<String>,
    /// The contact's own alert mode for each category; none: the configured default.
    pub mode_visual_approval: Option<AlertMode>,
    pub mode_delivery_instructions: Option<AlertMode>,
    pub mode_third_party_po: Option<AlertMode>,
    pub mode_awaiting_art: Option<AlertMode>,
    pub email_enabled: bool,
    /// Digest emails (off after a one-click unsubscribe from one; email_enabled still rules).
    pub email_digests: bool,
    /// Alert emails (the same for alerts).
    pub email_alerts: bool,
    pub email_suspended_at: Option<DateTime<Utc>>,
    pub email_suspended_reason: Option<String>,
    pub soft_bounces: i64,
    /// When the contact last changed its digest schedule or time zone here (none: never).
    pub schedule_set_at: Option<DateTime<Utc>>,
}

const COLS: &str = "contact_id, timezone, digest_schedule, quiet_start, quiet_end, mode_visual_approval,
    mode_delivery_instructions, mode_third_party_po, mode_awaiting_art, email_enabled, email_digests, email_alerts,
    email_suspended_at, email_suspended_reason, soft_bounces, schedule_set_at";

/// Why email to `contact_id` is suspended after bounces, if it is, read in `tx` (the server's
/// words, or `after bounces` where none were kept).
pub async fn email_suspended(tx: &mut Tx, contact_id: &str) -> Result<Option<String>> {
    let row: Option<(Option<DateTime<Utc>>, Option<String>)> = on_tx!(tx, c => bind!(sqlx::query_as(
        "SELECT email_suspended_at, email_suspended_reason FROM contact_settings WHERE contact_id = $1"),
        contact_id).fetch_optional(c).await)?;
    Ok(match row {
        Some((Some(_), reason)) => Some(reason.unwrap_or_else(|| "after bounces".into())),
        _ => None,
    })
}

/// The contact's settings, or defaults (everything from config) when none were saved.
pub async fn get_settings(db: &Db, contact_id: &str) -> Result<ContactSettings> {
    let sql = format!("SELECT {COLS} FROM contact_settings WHERE contact_id = $1");
    let row = on_db!(db, p => bind!(sqlx::query_as::<_, ContactSettings>(&sql), contact_id).fetch_optional(p).await)?;
    Ok(row.unwrap_or_else(|| ContactSettings::defaults(contact_id)))
}

/// Saves what the contact chose (not the bounce state, which the inbound side owns), with
/// `schedule_set_at` as the caller decided it (see `actions::targets::clock`).
pub async fn save_preferences(conn: impl Into<Conn<'_>>, s: &ContactSettings, now: DateTime<Utc>) -> Result<()> {
    execute!(conn =>
        "INSERT INTO contact_settings (contact_id, timezone, digest_schedule, quiet_start, quiet_end,
           mode_visual_approval, mode_delivery_instructions, mode_third_party_po, mode_awaiting_art,
           email_enabled, soft_bounces, updated_at, email_digests, email_alerts, schedule_set_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12, $13, $14)
         ON CONFLICT (contact_id) DO UPDATE SET timezone = excluded.timezone,
           digest_schedule = excluded.digest_schedule, quiet_start = excluded.quiet_start,
           quiet_end = excluded.quiet_end, mode_visual_approval = excluded.mode_visual_approval,
           mode_delivery_instructions = excluded.mode_delivery_instructions,
           mode_third_party_po = excluded.mode_third_party_po, mode_awaiting_art = excluded.mode_awaiting_art,
           email_enabled = excluded.email_enabled, updated_at = excluded.updated_at,
           email_digests = excluded.email_digests, email_alerts = excluded.email_alerts,
           schedule_set_at = excluded.schedule_set_at",
        &s.contact_id, &s.timezone, &s.digest_schedule, &s.quiet_start, &s.quiet_end, &s.mode_visual_approval, &s.mode_delivery_instructions, &s.mode_third_party_po, &s.mode_awaiting_art, s.email_enabled, now, s.email_digests, s.email_alerts, s.schedule_set_at)?;
    Ok(())
}

/// Turns one kind of email on or off for a contact, in `tx`. True when it changed.
pub async fn set_email_kind(
    tx: &mut Tx,
    contact_id: &str,
    kind: Stoppable,
    on: bool,
    now: DateTime<Utc>,
) -> Result<bool> {
    let column = match kind {
        Stoppable::Digest => "email_digests",
        Stoppable::Alert => "email_alerts",
    };
    let sql = format!(
        "INSERT INTO contact_settings (contact_id, email_enabled, soft_bounces, updated_at, {column})
         VALUES ($1, TRUE, 0, $3, $2)
         ON CONFLICT (contact_id) DO UPDATE SET {column} = excluded.{column}, updated_at = excluded.updated_at
         WHERE contact_settings.{column} <> excluded.{column}"
    );
    Ok(execute!(tx => &sql, contact_id, on, now)? == 1)
}

/// Every saved settings row, by contact.
pub async fn list_settings(db: &Db) -> Result<std::collections::HashMap<String, ContactSettings>> {
    let sql = format!("SELECT {COLS} FROM contact_settings");
    let rows = on_db!(db, p => sqlx::query_as::<_, ContactSettings>(&sql).fetch_all(p).await)?;
    Ok(rows.into_iter().map(|s| (s.contact_id.clone(), s)).collect())
}

/// The saved settings of these contacts, by contact (one with none saved is left out: its
/// settings are the defaults).
pub async fn settings_of(db: &Db, contacts: &[&str]) -> Result<std::collections::HashMap<String, ContactSettings>> {
    let sql = format!("SELECT {COLS} FROM contact_settings WHERE contact_id IN ({{in}})");
    let rows: Vec<ContactSettings> = crate::fetch_in!(on_db, db, sql, contacts, once)?;
    Ok(rows.into_iter().map(|s| (s.contact_id.clone(), s)).collect())
}

impl ContactSettings {
    pub fn defaults(contact_id: &str) -> ContactSettings {
        ContactSettings {
            contact_id: contact_id.to_string(),
            email_enabled: true,
            email_digests: true,
            email_alerts: true,
            ..Default::default()
        }
    }

    /// Email of this kind may be sent: email is usable, and this kind is not turned off.
    pub fn email_usable_for(&self, kind: Sending) -> bool {
        self.email_usable() && self.wants(kind)
    }

    /// The contact has not turned email, or this kind of it, off (bounces aside).
    pub fn wants(&self, kind: Sending) -> bool {
        self.email_enabled
            && match kind {
                Sending::Digest => self.email_digests,
                Sending::Alert => self.email_alerts,
                Sending::Other => true,
            }
    }

    /// Email may be sent: enabled by the contact and not suspended by bounces.
    pub fn email_usable(&self) -> bool {
        self.email_enabled && self.email_suspended_at.is_none()
    }
}
