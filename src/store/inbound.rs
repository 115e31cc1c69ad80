//! Inbound email bookkeeping: processed-once ledger, held messages, bounces, artwork.

use chrono::{DateTime, Utc};

use super::{Db, Result, Tx, bind, execute, fetch_in, on_db, on_tx};
use crate::model::InboundOutcome;

pub async fn seen(db: &Db, message_id: &str) -> Result<bool> {
    let row: Option<String> = on_db!(db, p => bind!(sqlx::query_scalar("SELECT disposition FROM inbound_messages WHERE message_id = $1"),
        message_id).fetch_optional(p).await)?;
    Ok(row.is_some())
}

/// Records what became of a message, with its bytes when `raw` is given (a held message);
/// false when it had been recorded already. The bytes are kept as text for the console to
/// show, and, when they are not UTF-8 (an 8-bit body in another charset), also as they came,
/// for a release to read them as received.
pub async fn record(
    tx: &mut Tx,
    message_id: &str,
    contact_id: Option<&str>,
    disposition: InboundOutcome,
    reason: &str,
    raw: Option<&[u8]>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let text = raw.map(|r| String::from_utf8_lossy(r).into_owned());
    let bytes = raw.filter(|r| std::str::from_utf8(r).is_err());
    // A held message is recorded again when staff release it (nothing else reaches a
    // message already recorded: `seen` turns it away first).
    Ok(execute!(tx =>
        "INSERT INTO inbound_messages (message_id, received_at, contact_id, disposition, reason, raw, raw_bytes)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (message_id) DO UPDATE SET received_at = excluded.received_at, contact_id = excluded.contact_id,
           disposition = excluded.disposition, reason = excluded.reason, raw = excluded.raw,
           raw_bytes = excluded.raw_bytes
         WHERE inbound_messages.disposition = 'held'",
        message_id, now, contact_id, disposition, reason, text, bytes)?
        == 1)
}

/// Rewords what became of a recorded message (a bounce that turned out to suspend email).
pub async fn set_reason(tx: &mut Tx, message_id: &str, reason: &str) -> Result<()> {
    execute!(tx => "UPDATE inbound_messages SET reason = $2 WHERE message_id = $1", message_id, reason)?;
    Ok(())
}

/// An inbound message as recorded, whichever route took it (the MTA pipe, the HTTP route,
/// IMAP or `--dir`).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct InboundRow {
    pub message_id: String,
    pub received_at: DateTime<Utc>,
    pub contact_id: Option<String>,
    pub disposition: InboundOutcome,
    pub reason: String,
}

/// One recorded inbound message, by its id.
pub async fn get_message(db: &Db, message_id: &str) -> Result<Option<InboundRow>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, InboundRow>(
        "SELECT message_id, received_at, contact_id, disposition, reason FROM inbound_messages WHERE message_id = $1"),
        message_id).fetch_optional(p).await)?)
}

/// The latest inbound messages, newest first, optionally of one disposition.
pub async fn list_recent(db: &Db, disposition: Option<InboundOutcome>, limit: i64) -> Result<Vec<InboundRow>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, InboundRow>(
        "SELECT message_id, received_at, contact_id, disposition, reason FROM inbound_messages
         WHERE ($1 IS NULL OR disposition = $1) ORDER BY received_at DESC, message_id LIMIT $2"),
        disposition, limit).fetch_all(p).await)?)
}

/// Recorded inbound messages by disposition (for `/metrics`, whichever process took them).
pub async fn counts_by_disposition(db: &Db) -> Result<Vec<(InboundOutcome, i64)>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, (InboundOutcome, i64)>(
        "SELECT disposition, COUNT(*) FROM inbound_messages GROUP BY disposition ORDER BY disposition")
        .fetch_all(p).await)?)
}

/// A held message, its bytes as received.
pub async fn get_held(db: &Db, message_id: &str) -> Result<Option<(InboundRow, Vec<u8>)>> {
    #[derive(sqlx::FromRow)]
    struct WithRaw {
        #[sqlx(flatten)]
        row: InboundRow,
        raw: Option<String>,
        raw_bytes: Option<Vec<u8>>,
    }
    let found: Option<WithRaw> = on_db!(db, p => bind!(sqlx::query_as(
        "SELECT message_id, received_at, contact_id, disposition, reason, raw, raw_bytes FROM inbound_messages
         WHERE message_id = $1 AND disposition = 'held'"), message_id).fetch_optional(p).await)?;
    Ok(found.map(|f| (f.row, f.raw_bytes.unwrap_or_else(|| f.raw.unwrap_or_default().into_bytes()))))
}

/// Discards a held message: it stays recorded (so it is never taken again) without its text.
pub async fn discard_held(db: &Db, message_id: &str, why: &str) -> Result<bool> {
    Ok(execute!(db =>
        "UPDATE inbound_messages SET disposition = 'ignored', reason = $2, raw = NULL, raw_bytes = NULL
         WHERE message_id = $1 AND disposition = 'held'",
        message_id, why)?
        == 1)
}

/// The messages held for a person to look at, newest first.
pub async fn list_held(db: &Db, limit: i64) -> Result<Vec<InboundRow>> {
    list_recent(db, Some(InboundOutcome::Held), limit).await
}

/// A held message with the start of its text, as the console shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldHead {
    #[sqlx(flatten)]
    pub row: InboundRow,
    /// The first characters of the message as received.
    pub head: String,
    /// Whether the message goes on past `head`.
    pub cut: bool,
    /// The message's bytes as received, when it is not cut: `head` is their lossy reading,
    /// and a command is read from the bytes (in their charset), as releasing it reads them.
    pub bytes: Option<Vec<u8>>,
}

/// [`list_held`] with the first `chars` characters of each message, in one query: a page of
/// held mail reads a bounded amount however large the messages are (a longer one is read
/// whole by itself, with [`get_held`]).
pub async fn held_heads(db: &Db, limit: i64, offset: i64, chars: i64) -> Result<Vec<HeldHead>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, HeldHead>(
        "SELECT message_id, received_at, contact_id, disposition, reason,
                COALESCE(substr(raw, 1, CAST($2 AS INTEGER)), '') AS head,
                COALESCE(length(raw) > CAST($2 AS INTEGER), FALSE) AS cut,
                CASE WHEN length(raw) <= CAST($2 AS INTEGER) THEN raw_bytes END AS bytes
         FROM inbound_messages WHERE disposition = 'held' ORDER BY received_at DESC, message_id
         LIMIT $1 OFFSET $3"),
        limit, chars, offset).fetch_all(p).await)?)
}

/// Counts a bounce for a contact; suspends email on a hard bounce or after `soft_limit` soft
/// ones in a row. Returns whether this bounce suspended it: one for a contact suspended
/// already (the other messages in flight to a bad address bounce too) changes neither the
/// time nor the reason, and is no new suspension to count.
pub async fn record_bounce(
    tx: &mut Tx,
    contact_id: &str,
    hard: bool,
    reason: &str,
    soft_limit: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    execute!(tx =>
        "INSERT INTO contact_settings (contact_id, email_enabled, soft_bounces, updated_at) VALUES ($1, TRUE, 0, $2)
         ON CONFLICT (contact_id) DO NOTHING",
        contact_id, now)?;
    let soft: i64 = on_tx!(tx, c => bind!(sqlx::query_scalar(
        "UPDATE contact_settings SET soft_bounces = soft_bounces + $2, updated_at = $3 WHERE contact_id = $1 RETURNING soft_bounces",
    ), contact_id, if hard { 0i64 } else { 1i64 }, now).fetch_one(c).await)?;
    if !(hard || soft >= soft_limit) {
        return Ok(false);
    }
    let suspended = execute!(tx =>
        "UPDATE contact_settings SET email_suspended_at = $2, email_suspended_reason = $3
         WHERE contact_id = $1 AND email_suspended_at IS NULL",
        contact_id, now, reason)?;
    Ok(suspended == 1)
}

/// A message from the contact proves the address works: lift a suspension, reset counts.
/// Lifts a suspension and forgets soft bounces. False when there was nothing to lift.
pub async fn clear_bounces(tx: &mut Tx, contact_id: &str, now: DateTime<Utc>) -> Result<bool> {
    let n = execute!(tx =>
        "UPDATE contact_settings SET email_suspended_at = NULL, email_suspended_reason = NULL, soft_bounces = 0, updated_at = $2
         WHERE contact_id = $1 AND (email_suspended_at IS NOT NULL OR soft_bounces > 0)",
        contact_id, now)?;
    Ok(n > 0)
}

/// Bounces count against an address: of `contact_ids`, those this write gave another
/// address (`contacts.email_set_at` at `now`) have their suspension lifted and their soft
/// bounces forgotten, so the new address is tried. Gives how many were lifted.
pub async fn forget_bounces_of_moved(tx: &mut Tx, contact_ids: &[&str], now: DateTime<Utc>) -> Result<u64> {
    let mut lifted = 0;
    for chunk in contact_ids.chunks(super::IN_CHUNK) {
        let sql = format!(
            "UPDATE contact_settings SET email_suspended_at = NULL, email_suspended_reason = NULL, soft_bounces = 0,
               updated_at = $1
             WHERE (email_suspended_at IS NOT NULL OR soft_bounces > 0)
               AND contact_id IN (SELECT id FROM contacts WHERE id IN ({}) AND email_set_at >= $1)",
            super::placeholders(2, chunk.len())
        );
        let mut vals: Vec<super::values::Val> = vec![super::values::Val::from(now)];
        vals.extend(chunk.iter().map(|id| super::values::Val::from(*id)));
        let refs: Vec<&super::values::Val> = vals.iter().collect();
        lifted += super::values::execute(tx, &sql, &refs).await?;
    }
    Ok(lifted)
}

pub async fn suspended_count(db: &Db) -> Result<i64> {
    let n: i64 = on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM contact_settings WHERE email_suspended_at IS NOT NULL")
        .fetch_one(p).await)?;
    Ok(n)
}

/// One artwork file kept for a job (and, from the portal, for one of its art requirements).
pub struct NewArtwork<'a> {
    pub client_id: &'a str,
    pub job_id: &'a str,
    /// The art requirement it answers; `None` answers every one of the job's.
    pub requirement_id: Option<&'a str>,
    pub contact_id: &'a str,
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub path: &'a str,
}

/// Where the artwork files of `clients` (or of `jobs`, [`artwork_paths_of_jobs`]) are
/// stored: read before they are deleted, as their artwork rows go with them and nothing would
/// name the files after.
pub async fn artwork_paths_of(tx: &mut Tx, clients: &[&str]) -> Result<Vec<String>> {
    let rows: Vec<(String,)> =
        fetch_in!(on_tx, &mut *tx, "SELECT path FROM artwork_uploads WHERE client_id IN ({in})", clients)?;
    Ok(rows.into_iter().map(|(p,)| p).collect())
}

/// [`artwork_paths_of`] for jobs.
pub async fn artwork_paths_of_jobs(tx: &mut Tx, jobs: &[&str]) -> Result<Vec<String>> {
    let rows: Vec<(String,)> =
        fetch_in!(on_tx, &mut *tx, "SELECT path FROM artwork_uploads WHERE job_id IN ({in})", jobs)?;
    Ok(rows.into_iter().map(|(p,)| p).collect())
}

/// Records an artwork file and marks the art it answers received.
pub async fn insert_artwork(tx: &mut Tx, a: &NewArtwork<'_>, now: DateTime<Utc>) -> Result<()> {
    execute!(tx =>
        "INSERT INTO artwork_uploads (client_id, job_id, requirement_id, contact_id, file_name, content_type, size_bytes, path, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        a.client_id, a.job_id, a.requirement_id, a.contact_id, a.file_name, a.content_type, a.size, a.path, now)?;
    execute!(tx =>
        "UPDATE art_requirements SET art_received = TRUE, sync_hash = ''
         WHERE job_id = $1 AND client_id = $2 AND ($3 IS NULL OR id = $3)",
        a.job_id, a.client_id, a.requirement_id)?;
    Ok(())
}

/// When the same file (name, size, and content by the digest and name that end its stored
/// path, `stored_tail`) was kept for the job and requirement after `since`: the same upload
/// sent again (a second click, a form sent twice). The caller holds the job's row lock.
pub async fn same_artwork(
    tx: &mut Tx,
    a: &NewArtwork<'_>,
    stored_tail: &str,
    since: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    Ok(on_tx!(tx, c => bind!(sqlx::query_scalar(
        "SELECT created_at FROM artwork_uploads
         WHERE job_id = $1 AND file_name = $2 AND size_bytes = $3 AND created_at > $5
           AND (requirement_id = $6 OR (requirement_id IS NULL AND $6 IS NULL))
           AND substr(path, length(path) - length($4) + 1) = $4
         ORDER BY created_at DESC LIMIT 1"), a.job_id, a.file_name, a.size, stored_tail, since, a.requirement_id)
    .fetch_optional(c).await)?)
}

/// An artwork file a client sent, as the job page lists it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ArtworkRow {
    pub id: i64,
    pub requirement_id: Option<String>,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
    pub sent_by: Option<String>,
    #[serde(skip)]
    pub path: String,
}

const ARTWORK: &str = "SELECT a.id, a.requirement_id, a.file_name, a.content_type, a.size_bytes, a.created_at,
    c.name AS sent_by, a.path FROM artwork_uploads a LEFT JOIN contacts c ON c.id = a.contact_id";

/// The artwork files a client sent for one job, newest first.
pub async fn list_artwork(db: &Db, client_id: &str, job_id: &str) -> Result<Vec<ArtworkRow>> {
    let sql = format!("{ARTWORK} WHERE a.client_id = $1 AND a.job_id = $2 ORDER BY a.created_at DESC, a.id DESC");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, ArtworkRow>(&sql), client_id, job_id).fetch_all(p).await)?)
}

/// One artwork file of one client's job (another client's is "not found").
pub async fn get_artwork(db: &Db, client_id: &str, job_id: &str, id: i64) -> Result<ArtworkRow> {
    let sql = format!("{ARTWORK} WHERE a.client_id = $1 AND a.job_id = $2 AND a.id = $3");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, ArtworkRow>(&sql), client_id, job_id, id).fetch_one(p).await)?)
}

/// A job's art requirement, received or not.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ArtRequirement {
    pub id: String,
    pub design_id: String,
    pub description: String,
    pub art_due: Option<chrono::NaiveDate>,
    pub art_received: bool,
}

/// A job's art requirements, those still waiting first.
pub async fn art_requirements(db: &Db, client_id: &str, job_id: &str) -> Result<Vec<ArtRequirement>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, ArtRequirement>(
        "SELECT id, design_id, description, art_due, art_received FROM art_requirements
         WHERE client_id = $1 AND job_id = $2 ORDER BY art_received, art_due NULLS LAST, id",
    ), client_id, job_id)
    .fetch_all(p).await)?)
}
