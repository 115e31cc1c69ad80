//! What the staff console reads across the whole store: message counts, the clients' item
//! versions, who was told of which item and when, and the outbox by filter.

use chrono::{DateTime, Utc};

use super::outbox::OutboxRow;
use super::{Db, Result, bind, execute, fetch_in, on_db};

/// Messages created since `since`, counted by status and channel.
pub async fn message_counts(db: &Db, since: DateTime<Utc>) -> Result<Vec<(String, String, i64)>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as(
        "SELECT status, channel, COUNT(*) FROM outbox WHERE created_at >= $1 GROUP BY status, channel
         ORDER BY status, channel"), since).fetch_all(p).await)?)
}

/// When the last digest decision was taken (by any process's scheduler or `digest run`).
pub async fn last_digest_decided(db: &Db) -> Result<Option<DateTime<Utc>>> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT MAX(decided_at) FROM digest_runs").fetch_one(p).await)?)
}

/// Inbound mail held for a person to look at, and dead messages.
pub async fn waiting_counts(db: &Db) -> Result<(i64, i64)> {
    let held: i64 = on_db!(db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM inbound_messages WHERE disposition = 'held'").fetch_one(p).await)?;
    let dead: i64 = on_db!(db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE status = 'dead'").fetch_one(p).await)?;
    Ok((held, dead))
}

/// A client with the version of its items (see `client_versions`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientVersion {
    pub id: String,
    pub name: String,
    pub version: i64,
}

/// Every client, by id, with its items' version.
pub async fn client_versions(db: &Db) -> Result<Vec<ClientVersion>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, ClientVersion>(
        "SELECT cl.id, cl.name, COALESCE(v.version, 0) AS version
         FROM clients cl LEFT JOIN client_versions v ON v.client_id = cl.id ORDER BY cl.id").fetch_all(p).await)?)
}

/// A contact as the console lists it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ContactBrief {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub email: String,
    pub role: crate::model::Role,
}

/// The active contacts of `clients`.
pub async fn contacts_of(db: &Db, clients: &[&str]) -> Result<Vec<ContactBrief>> {
    fetch_in!(
        on_db,
        db,
        "SELECT id, client_id, name, email, role FROM contacts WHERE active AND client_id IN ({in}) ORDER BY client_id, name, id",
        clients
    )
}

/// One contact told of one item on one channel, first at `first_at`; or, without it, a
/// message that will tell them still waiting to go.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Notice {
    pub item_key: String,
    pub contact_id: String,
    pub channel: crate::model::Outlet,
    pub first_at: Option<DateTime<Utc>>,
}

/// Who was told of the items `keys`, on which channel, and when: when the first of the
/// messages noted ([`super::ledgers::note_items`]) was sent; and whose messages are all still
/// waiting to go. One whose messages all went dead or were dropped told no one and is not
/// listed.
pub async fn notices_of(db: &Db, keys: &[&str]) -> Result<Vec<Notice>> {
    fetch_in!(
        on_db,
        db,
        // A notice written before notices named their message was a telling at first_at.
        "SELECT n.item_key, n.contact_id, n.channel,
                MIN(CASE WHEN n.outbox_id IS NULL THEN n.first_at WHEN o.status = 'sent' THEN o.sent_at END) AS first_at
         FROM item_notices n LEFT JOIN outbox o ON o.id = n.outbox_id
         WHERE n.item_key IN ({in}) AND (n.outbox_id IS NULL OR o.status NOT IN ('dead', 'dropped'))
         GROUP BY n.item_key, n.contact_id, n.channel",
        keys
    )
}

/// When each of `contacts` last opened a portal link or signed in, and last replied by email.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LastSeen {
    pub contact_id: String,
    pub at: DateTime<Utc>,
}

pub async fn last_sessions(db: &Db, contacts: &[&str]) -> Result<Vec<LastSeen>> {
    fetch_in!(
        on_db,
        db,
        // A delegate's session is kept under its giver: not the giver opening a link.
        "SELECT contact_id, MAX(created_at) AS at FROM sessions WHERE contact_id IN ({in}) AND delegation_id IS NULL
         GROUP BY contact_id",
        contacts
    )
}

pub async fn last_replies(db: &Db, contacts: &[&str]) -> Result<Vec<LastSeen>> {
    fetch_in!(
        on_db,
        db,
        "SELECT contact_id, MAX(received_at) AS at FROM inbound_messages
         WHERE contact_id IN ({in}) AND disposition = 'processed' GROUP BY contact_id",
        contacts
    )
}

/// What the outbox page filters by; every field optional.
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub status: Option<crate::model::OutboxStatus>,
    pub channel: Option<crate::model::Outlet>,
    pub kind: Option<crate::model::MessageKind>,
    pub contact_id: Option<String>,
    pub client_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Messages matching `f`, newest first, `limit` from `offset` (without their payloads).
pub async fn list_outbox(db: &Db, f: &OutboxFilter, limit: i64, offset: i64) -> Result<Vec<OutboxRow>> {
    let sql = "SELECT o.id, o.contact_id, o.channel, o.kind, o.idem_key, o.reply_token, o.recipient, o.subject,
            '' AS payload, o.status, o.attempts, o.next_attempt_at, o.last_error, o.provider_id, o.created_at,
            o.sent_at, o.claim_token
         FROM outbox o
         WHERE ($1 IS NULL OR o.status = $1) AND ($2 IS NULL OR o.channel = $2) AND ($3 IS NULL OR o.kind = $3)
           AND ($4 IS NULL OR o.contact_id = $4)
           AND ($5 IS NULL OR o.contact_id IN (SELECT id FROM contacts WHERE client_id = $5))
           AND ($6 IS NULL OR o.created_at >= $6) AND ($7 IS NULL OR o.created_at < $7)
         ORDER BY o.id DESC LIMIT $8 OFFSET $9";
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, OutboxRow>(sql), &f.status, &f.channel, &f.kind, &f.contact_id,
        &f.client_id, f.from, f.until, limit, offset).fetch_all(p).await)?)
}

/// A client as the console's contacts page lists it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ClientBrief {
    pub id: String,
    pub name: String,
    pub contacts: i64,
}

/// Clients whose id or name holds `text` (any case), by name, at most `limit`.
pub async fn find_clients(db: &Db, text: &str, limit: i64) -> Result<Vec<ClientBrief>> {
    let like = super::contains_pattern(text);
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, ClientBrief>(
        "SELECT cl.id, cl.name, (SELECT COUNT(*) FROM contacts c WHERE c.client_id = cl.id AND c.active) AS contacts
         FROM clients cl WHERE LOWER(cl.id) LIKE LOWER($1) ESCAPE '\\' OR LOWER(cl.name) LIKE LOWER($1) ESCAPE '\\'
         ORDER BY cl.name, cl.id LIMIT $2"), like, limit).fetch_all(p).await)?)
}

/// When each of `contacts` was last sent a digest (queued by the scheduler or `digest run`).
pub async fn last_digests(db: &Db, contacts: &[&str]) -> Result<Vec<LastSeen>> {
    fetch_in!(
        on_db,
        db,
        "SELECT contact_id, MAX(decided_at) AS at FROM digest_runs
         WHERE contact_id IN ({in}) AND outbox_id IS NOT NULL GROUP BY contact_id",
        contacts
    )
}

/// Puts a queued message in the hands of a sender holding `token`, as a claim does (the
/// demo's made-up bounce goes through the senders' own `mark` from here), for a minute: a
/// process stopped before it marks the message leaves it to the senders after that, as any
/// claim does.
pub async fn hold_for(db: &Db, id: i64, token: &str, now: DateTime<Utc>) -> Result<bool> {
    Ok(execute!(db =>
        "UPDATE outbox SET status = 'sending', claim_token = $2, claimed_until = $4, attempts = attempts + 1,
                updated_at = $3
         WHERE id = $1 AND status = 'queued'",
        id, token, now, now + chrono::Duration::minutes(1))?
        == 1)
}

/// A client's name, by its exact id.
pub async fn client_name(db: &Db, id: &str) -> Result<Option<String>> {
    Ok(on_db!(db, p => bind!(sqlx::query_scalar("SELECT name FROM clients WHERE id = $1"), id)
        .fetch_optional(p).await)?)
}
