//! The outbox: one row per message to send, claimed by dispatchers, marked when done.
//! Over 500 lines on purpose: every statement that moves a message between its states
//! (insert, claim, lease, mark, requeue, drop) is here, so the state machine and the claims
//! it relies on read in one place; apart, a transition's guard would live far from the
//! others it must agree with.

use chrono::{DateTime, Utc};

use super::{Conn, Db, Result, Tx, bind, execute, on_conn, on_db, on_db_write, on_tx};
use crate::model::{MessageKind, OutboxStatus, Outlet};

/// What an alert row carries until it is sent: the keys of the items it is about (it is
/// rendered when it goes, from those still open).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AlertPayload {
    pub items: Vec<String>,
    pub message_id: String,
    /// Sent by staff as a reminder of items waiting, not as news (absent: an alert).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reminder: bool,
}

/// A message as it is queued: what it is, to whom, and when it may first go.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct NewMessage {
    pub contact_id: Option<String>,
    pub channel: Outlet,
    pub kind: MessageKind,
    pub idem_key: String,
    pub reply_token: Option<String>,
    pub recipient: String,
    pub subject: String,
    /// Left out of the console's JSON: a rendered body can be large and is shown on its own.
    #[serde(skip)]
    pub payload: String,
    pub next_attempt_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct OutboxRow {
    pub id: i64,
    /// The message as it was queued; `next_attempt_at` in it moves with each retry.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub message: NewMessage,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub provider_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The current claim's token while a sender holds the row.
    #[serde(skip)]
    pub claim_token: Option<String>,
}

impl OutboxRow {
    /// Whether a send of it was tried before this one: a claimed row's attempts count the
    /// try under way; any other's, those made.
    pub fn tried_before(&self) -> bool {
        self.attempts > if self.status == OutboxStatus::Sending { 1 } else { 0 }
    }

    /// Whether it has waited since it was written: tried before, or written more than ten
    /// minutes ago (queued again by staff, or behind a long queue). A digest that has waited
    /// is looked at again as it goes; a fresh one goes as written, unread.
    pub fn has_waited(&self, now: DateTime<Utc>) -> bool {
        self.tried_before() || now - self.created_at > chrono::Duration::minutes(10)
    }

    /// Whether it may still go: waiting, or claimed by a sender.
    pub fn still_to_go(&self) -> bool {
        matches!(self.status, OutboxStatus::Queued | OutboxStatus::Failed | OutboxStatus::Sending)
    }
}

/// Every column of a message, read from `outbox_full` (the row joined with its payload).
const COLS: &str = "id, contact_id, channel, kind, idem_key, reply_token, recipient, subject, payload, status,
    attempts, next_attempt_at, last_error, provider_id, created_at, sent_at, claim_token";

/// Queues a message unless one with the same idempotency key exists. Returns the new id,
/// or `None` when the key was already used (the decision was made before).
pub async fn insert_message(tx: &mut Tx, m: &NewMessage, now: DateTime<Utc>) -> Result<Option<i64>> {
    let row: Option<i64> = on_tx!(tx, c => bind!(sqlx::query_scalar(
        "INSERT INTO outbox (contact_id, channel, kind, idem_key, reply_token, recipient, subject, status,
           attempts, next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $9, $9)
         ON CONFLICT (idem_key) DO NOTHING RETURNING id",
    ), &m.contact_id, &m.channel, &m.kind, &m.idem_key, &m.reply_token, &m.recipient, &m.subject,
        m.next_attempt_at, now)
    .fetch_optional(c).await)?;
    if let Some(id) = row {
        execute!(tx => "INSERT INTO outbox_payloads (outbox_id, payload) VALUES ($1, $2)", id, &m.payload)?;
        metrics::counter!("cport_outbox_queued_total", "channel" => m.channel.as_str(), "kind" => m.kind.as_str())
            .increment(1);
    }
    Ok(row)
}

/// When a message whose idempotency key starts with `prefix` was last queued to `contact_id`,
/// if that was after `since` and it may still arrive (one gone dead or dropped will not).
/// Read with the contact's row locked (see [`super::contacts::lock`]), so two requests at
/// once cannot both see none.
pub async fn queued_since(
    tx: &mut Tx,
    contact_id: &str,
    prefix: &str,
    since: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    super::contacts::lock(tx, contact_id).await?;
    // A prefix compare, not LIKE: ids may hold `_` or `%`.
    Ok(on_tx!(tx, c => bind!(sqlx::query_scalar(
        "SELECT created_at FROM outbox
         WHERE contact_id = $1 AND created_at > $2 AND substr(idem_key, 1, length($3)) = $3
           AND status NOT IN ('dead', 'dropped')
         ORDER BY created_at DESC LIMIT 1",
    ), contact_id, since, prefix)
    .fetch_optional(c).await)?)
}

/// Claims the next due message for sending (a lease of `lease_until`); a message whose lease
/// ran out (its sender died) is due again. Several dispatchers never claim the same row.
pub async fn claim_due(db: &Db, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Option<OutboxRow>> {
    Ok(claim(db, Take::Lane(Lane::All), 1, &new_claim_token(), now, lease_until).await?.pop())
}

/// A fresh claim token: random, so no two claims (in any process) share one.
pub fn new_claim_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Which rows a sender takes: messages to people and change events to TOT's webhook are
/// sent by senders of their own, so a webhook receiver that is slow or hangs holds up only
/// the change events behind it, never a client's email or chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Everything due (a drain by one sender, `cport digest run`).
    All,
    /// Email.
    Email,
    /// Chat messages (Telegram, Discord): their own senders, so that a mail server that is
    /// slow or does not answer holds up no chat message, nor the other way round.
    Chat,
    /// Change events for the webhook.
    Changes,
}

impl Lane {
    /// The condition, ending in `AND`, that keeps a claim to its lane.
    fn only(self) -> &'static str {
        match self {
            Lane::All => "",
            Lane::Email => "channel = 'email' AND",
            Lane::Chat => "channel NOT IN ('email', 'webhook') AND",
            Lane::Changes => "channel = 'webhook' AND",
        }
    }
}

/// What a claim takes: due rows of a lane, or the one row queued under an idempotency key
/// (when it is due).
#[derive(Debug, Clone, Copy)]
pub enum Take<'a> {
    Lane(Lane),
    Keyed(&'a str),
}

/// A row due at `$1`: queued or failed and its time come, or claimed by a sender whose
/// lease ran out (it died). What a claim takes, and what [`count_due`] counts.
///
/// A chat's command answers go one at a time, oldest first: an answer is due only when no
/// older answer to its chat is still waiting or being sent. Otherwise two senders could
/// each take one (or one answer's turn come before an older one's) and the chat read its
/// answers out of order.
const DUE: &str = "(((status IN ('queued', 'failed') AND next_attempt_at <= $1)
    OR (status = 'sending' AND claimed_until < $1))
    AND (kind <> 'answer' OR NOT EXISTS (SELECT 1 FROM outbox ahead
        WHERE ahead.kind = 'answer' AND ahead.status IN ('queued', 'failed', 'sending')
        AND ahead.channel = outbox.channel AND ahead.recipient = outbox.recipient AND ahead.id < outbox.id)))";

/// A chat that speaks again is reachable again: its answers waiting out a failure's backoff
/// are due now (their order kept: see [`DUE`]), rather than hold every later answer to it
/// until their retry comes round. Answers waiting for their turn (Telegram's pace, a 429)
/// keep it. Returns how many.
pub async fn revive_answers(db: &Db, channel: Outlet, recipient: &str, now: DateTime<Utc>) -> Result<u64> {
    Ok(crate::execute!(db => "UPDATE outbox SET next_attempt_at = $3, updated_at = $3
        WHERE kind = 'answer' AND status = 'failed' AND channel = $1 AND recipient = $2 AND next_attempt_at > $3",
        channel.as_str(), recipient, now)?)
}

/// Whether answers to `recipient` on `channel` wait in the outbox: a new answer to that chat
/// then queues behind them rather than overtake them.
pub async fn answers_waiting(db: &Db, channel: Outlet, recipient: &str) -> Result<bool> {
    let sql = "SELECT 1 FROM outbox WHERE kind = 'answer' AND status IN ('queued', 'failed', 'sending')
        AND channel = $1 AND recipient = $2 LIMIT 1";
    let found: Option<i32> =
        on_db!(db, p => bind!(sqlx::query_scalar(sql), channel.as_str(), recipient).fetch_optional(p).await)?;
    Ok(found.is_some())
}

/// Messages claimed by a sender whose claim still runs at `now`: how many, and when the
/// last claim runs out (a sender of a running server, or of a process that stopped, whose
/// messages go again then).
pub async fn held_by_claims(db: &Db, now: DateTime<Utc>) -> Result<(i64, Option<DateTime<Utc>>)> {
    let sql = "SELECT COUNT(*), MAX(claimed_until) FROM outbox WHERE status = 'sending' AND claimed_until >= $1";
    Ok(on_db!(db, p => bind!(sqlx::query_as(sql), now).fetch_one(p).await)?)
}

/// How many of a lane's messages are due at `now`, counted up to `most`: what its senders
/// share out.
pub async fn count_due(db: &Db, now: DateTime<Utc>, most: i64, lane: Lane) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE {} {DUE} LIMIT $2) due", lane.only());
    Ok(on_db!(db, p => bind!(sqlx::query_scalar(&sql), now, most).fetch_one(p).await)?)
}

/// Claims up to `limit` of what `take` names, oldest first, under `token` until `lease_until`.
pub async fn claim(
    db: &Db,
    take: Take<'_>,
    limit: i64,
    token: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<OutboxRow>> {
    let lock = match db {
        Db::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        // SQLite runs one writer at a time, so the UPDATE below is already atomic.
        Db::Sqlite(_) => "",
    };
    let (keyed, lane, only) = match take {
        Take::Lane(lane) => ("", lane.only(), None),
        Take::Keyed(key) => ("idem_key = $5 AND", "", Some(key)),
    };
    let sql = format!(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1, claimed_until = $2, claim_token = $4, updated_at = $1
         WHERE id IN (SELECT id FROM outbox
                     WHERE {keyed} {lane} {DUE}
                     ORDER BY next_attempt_at, id LIMIT $3 {lock})
         RETURNING id, channel, kind"
    );
    let claimed: Vec<(i64, String, String)> = match only {
        None => on_db_write!(db, p => bind!(sqlx::query_as(&sql), now, lease_until, limit, token).fetch_all(p).await)?,
        Some(key) => {
            on_db_write!(db, p => bind!(sqlx::query_as(&sql), now, lease_until, limit, token, key).fetch_all(p).await)?
        }
    };
    // The claim reads the outlet and kind as text: a row holding a name cport never writes
    // (a hand edit of the store) dies alone, saying so, instead of failing every batch it
    // would be claimed into.
    let mut ids = Vec::with_capacity(claimed.len());
    for (id, channel, kind) in claimed {
        if Outlet::parse(&channel).is_some() && MessageKind::parse(&kind).is_some() {
            ids.push(id);
            continue;
        }
        let error = format!(
            "the store holds channel {} and kind {}; cport sends only the channels {} and the kinds {}",
            crate::model::quoted(&channel),
            crate::model::quoted(&kind),
            Outlet::names(),
            MessageKind::names()
        );
        tracing::error!(id, %error, "an outbox row cannot be read; it is dead");
        mark(db, id, token, Mark::Failed { error: &error, retry_at: None }, now).await?;
    }
    let sql = format!("SELECT {COLS} FROM outbox_full WHERE id IN ({{in}})");
    let mut rows: Vec<OutboxRow> = crate::fetch_in!(on_db, db, sql, &ids)?;
    rows.sort_by_key(|r| (r.message.next_attempt_at, r.id));
    Ok(rows)
}

/// Marks several rows sent in one statement, each only while its token is still its claim
/// (the dispatcher's group commit). Items are (id, claim token, provider id); returns the ids
/// that were marked.
pub async fn mark_sent_many(db: &Db, items: &[(i64, &str, &str)], now: DateTime<Utc>) -> Result<Vec<i64>> {
    let mut marked = Vec::with_capacity(items.len());
    for chunk in items.chunks(100) {
        // Per item: $id, $provider, $token.
        let at = |i: usize, k: usize| 2 + 3 * i + k;
        let provider: String = (0..chunk.len()).map(|i| format!(" WHEN ${} THEN ${}", at(i, 0), at(i, 1))).collect();
        let token: String = (0..chunk.len()).map(|i| format!(" WHEN ${} THEN ${}", at(i, 0), at(i, 2))).collect();
        let ids: Vec<String> = (0..chunk.len()).map(|i| format!("${}", at(i, 0))).collect();
        let sql = format!(
            "UPDATE outbox SET status = 'sent', sent_at = $1, updated_at = $1, claimed_until = NULL, last_error = NULL,
               provider_id = CASE id{provider} END
             WHERE id IN ({}) AND status = 'sending' AND claim_token = CASE id{token} END
             RETURNING id",
            ids.join(", ")
        );
        let sent: Vec<i64> = on_db_write!(db, p => {
            let mut q = bind!(sqlx::query_scalar(&sql), now);
            for (id, token, provider) in chunk {
                q = q.bind(*id).bind(*provider).bind(*token);
            }
            q.fetch_all(p).await
        })?;
        marked.extend(sent);
    }
    Ok(marked)
}

/// Extends the lease of every row still claimed under `token`; the number extended.
pub async fn renew_claim(db: &Db, token: &str, lease_until: DateTime<Utc>) -> Result<u64> {
    Ok(execute!(db =>
        "UPDATE outbox SET claimed_until = $2 WHERE claim_token = $1 AND status = 'sending'",
        token, lease_until)?)
}

/// Hands back rows claimed under `token` that were not sent (a sender stopping): due again
/// at once, the attempt given back.
pub async fn release_claim(db: &Db, token: &str, ids: &[i64], now: DateTime<Utc>) -> Result<u64> {
    release_claim_until(db, token, ids, now, now).await
}

/// [`release_claim`], the rows due again at `at` (an alert its contact's quiet hours hold).
pub async fn release_claim_until(
    db: &Db,
    token: &str,
    ids: &[i64],
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE outbox SET status = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
           claimed_until = NULL, claim_token = NULL, next_attempt_at = $3, updated_at = $2
         WHERE claim_token = $1 AND status = 'sending' AND id IN ({})",
        super::placeholders(4, ids.len())
    );
    Ok(on_db_write!(db, p => {
        let mut q = bind!(sqlx::query(&sql), token, now, at);
        for id in ids {
            q = q.bind(*id);
        }
        q.execute(p).await.map(|r| r.rows_affected())
    })?)
}

/// What became of a claimed message, recorded by the holder of its claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark<'a> {
    /// Delivered; the provider's id for it.
    Sent(&'a str),
    /// Failed; tried again at the time given, or dead when there is none.
    Failed { error: &'a str, retry_at: Option<DateTime<Utc>> },
    /// The provider asked to wait (or the chat's turn has not come): queued again for then,
    /// with the attempt given back, so staff do not see a failure where nothing failed.
    RateLimited { error: &'a str, retry_at: DateTime<Utc> },
    /// No longer needs sending (its items were resolved first).
    Dropped(&'a str),
}

/// Records the outcome of a send, but only while `token` is still the row's claim: a sender
/// whose claim ran out and was taken over marks nothing. False when the claim was lost.
pub async fn mark(db: &Db, id: i64, token: &str, mark: Mark<'_>, now: DateTime<Utc>) -> Result<bool> {
    const FENCE: &str = "WHERE id = $1 AND claim_token = $2 AND status = 'sending'";
    let failure = match &mark {
        Mark::Sent(_) => None,
        Mark::Failed { error, retry_at: Some(_) } => Some(("failed", *error)),
        Mark::Failed { error, retry_at: None } => Some(("dead", *error)),
        Mark::RateLimited { error, .. } => Some(("rate limited", *error)),
        Mark::Dropped(reason) => Some(("dropped", *reason)),
    };
    let n = match mark {
        Mark::Sent(provider) => execute!(db =>
            &format!(
            "UPDATE outbox SET status = 'sent', sent_at = $3, updated_at = $3, claimed_until = NULL,
               last_error = NULL, provider_id = $4 {FENCE}"
        ),
            id, token, now, provider)?,
        Mark::Failed { error, retry_at } => execute!(db =>
            &format!(
            "UPDATE outbox SET status = $4, last_error = $5, next_attempt_at = COALESCE($6, next_attempt_at),
               claimed_until = NULL, updated_at = $3 {FENCE}"
        ),
            id, token, now, if retry_at.is_some() { "failed" } else { "dead" }, error, retry_at)?,
        Mark::RateLimited { error, retry_at } => execute!(db =>
            &format!(
            "UPDATE outbox SET status = 'queued', last_error = $4, next_attempt_at = $5,
               attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
               claimed_until = NULL, updated_at = $3 {FENCE}"
        ),
            id, token, now, error, retry_at)?,
        Mark::Dropped(reason) => execute!(db =>
            &format!(
            "UPDATE outbox SET status = 'dropped', last_error = $4, claimed_until = NULL, updated_at = $3 {FENCE}"
        ),
            id, token, now, reason)?,
    };
    if n == 1
        && let Some((outcome, error)) = failure
    {
        execute!(db =>
            "INSERT INTO outbox_attempts (outbox_id, at, outcome, error) VALUES ($1, $2, $3, $4)",
            id, now, outcome, error)?;
    }
    Ok(n == 1)
}

/// A send that did not deliver a message.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub outcome: String,
    pub error: String,
}

/// The message's failed sends, oldest first.
pub async fn attempts_of(db: &Db, id: i64) -> Result<Vec<Attempt>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, Attempt>(
        "SELECT at, outcome, error FROM outbox_attempts WHERE outbox_id = $1 ORDER BY id"), id)
        .fetch_all(p).await)?)
}

/// Replaces a claimed message's address, subject and content with what it shows as it
/// goes: an alert's items still open (a reply to it is then read against the items its
/// reader saw), a digest or banner written again without what was dealt with or for its
/// contact as they are now (the console shows what went, and where). Only while `token`
/// still holds the claim: a sender that lost it changes nothing of what another sent.
pub async fn rewrite(db: &Db, id: i64, token: &str, recipient: &str, subject: &str, payload: &str) -> Result<bool> {
    let mut tx = db.begin().await?;
    let n = execute!(&mut tx =>
        "UPDATE outbox SET recipient = $3, subject = $4 WHERE id = $1 AND claim_token = $2 AND status = 'sending'",
        id, token, recipient, subject)?;
    if n == 1 {
        execute!(&mut tx => "UPDATE outbox_payloads SET payload = $2 WHERE outbox_id = $1", id, payload)?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

/// Puts a held message back to `queued` with new content (alert batching), in a transaction.
pub async fn update_queued(tx: &mut Tx, id: i64, subject: &str, payload: &str, now: DateTime<Utc>) -> Result<bool> {
    let n = execute!(tx =>
        "UPDATE outbox SET subject = $2, updated_at = $3 WHERE id = $1 AND status = 'queued'",
        id, subject, now)?;
    if n != 1 {
        return Ok(false);
    }
    execute!(tx => "UPDATE outbox_payloads SET payload = $2 WHERE outbox_id = $1", id, payload)?;
    Ok(true)
}

/// A contact's alerts queued to go after `now` (held by quiet hours, the batch window or a
/// retry): their ids and when they go.
pub async fn held_alerts(
    conn: impl Into<Conn<'_>>,
    contact_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, DateTime<Utc>)>> {
    let sql = "SELECT id, next_attempt_at FROM outbox
        WHERE contact_id = $1 AND kind = 'alert' AND status = 'queued' AND next_attempt_at > $2";
    Ok(on_conn!(conn.into(), c => bind!(sqlx::query_as(sql), contact_id, now).fetch_all(c).await)?)
}

/// Moves a message still queued to go at `at`; false when it is no longer queued (a sender
/// took it meanwhile).
pub async fn retime(conn: impl Into<Conn<'_>>, id: i64, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool> {
    let n = crate::execute!(conn => "UPDATE outbox SET next_attempt_at = $2, updated_at = $3 WHERE id = $1 AND status = 'queued'",
        id, at, now)?;
    Ok(n == 1)
}

/// The queued alerts for this contact and channel that have not gone yet (held for batching
/// or quiet hours), newest first; a few at most.
pub async fn find_held_alerts(
    tx: &mut Tx,
    contact_id: &str,
    channel: crate::model::Outlet,
    now: DateTime<Utc>,
) -> Result<Vec<OutboxRow>> {
    // Locked until the scan's transaction ends: two scanners (two processes on PostgreSQL)
    // adding to one held alert each write the payload they read, so the second must read it
    // after the first has written, or the first one's items are lost from it. A SQLite write
    // transaction already excludes every other writer.
    // The rows, not the view: PostgreSQL locks nothing through the view's outer join (a
    // queued message always has its payload). Both are locked, so that a second scanner,
    // once let through, reads the payload the first one wrote.
    let lock = match tx {
        Tx::Postgres(_) => "FOR UPDATE OF o, p",
        Tx::Sqlite(..) => "",
    };
    let sql = format!(
        "SELECT {COLS} FROM outbox o JOIN outbox_payloads p ON p.outbox_id = o.id
         WHERE contact_id = $1 AND channel = $2 AND kind = 'alert'
           AND status = 'queued' AND next_attempt_at > $3 ORDER BY id DESC LIMIT 20 {lock}"
    );
    Ok(on_tx!(tx, c => bind!(sqlx::query_as::<_, OutboxRow>(&sql), contact_id, channel, now).fetch_all(c).await)?)
}

/// When the last alert went to (or is queued for) this contact on this channel: a failed
/// one waiting for its retry counts from when it was tried, not from that retry (it reached
/// no one; the next alert is not held back behind it).
pub async fn last_alert_at(
    tx: &mut Tx,
    contact_id: &str,
    channel: crate::model::Outlet,
) -> Result<Option<DateTime<Utc>>> {
    let at = "CASE WHEN status = 'failed' THEN updated_at ELSE next_attempt_at END";
    let sql = format!(
        "SELECT {at} FROM outbox WHERE contact_id = $1 AND channel = $2 AND kind = 'alert'
           AND status <> 'dropped' ORDER BY {at} DESC LIMIT 1"
    );
    Ok(on_tx!(tx, c => bind!(sqlx::query_scalar(&sql), contact_id, channel).fetch_optional(c).await)?)
}

pub async fn find_by_reply_token(db: &Db, token: &str) -> Result<Option<OutboxRow>> {
    let sql = format!("SELECT {COLS} FROM outbox_full WHERE reply_token = $1");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, OutboxRow>(&sql), token).fetch_optional(p).await)?)
}

/// The most recent messages, newest first, optionally of one status.
pub async fn list_messages(db: &Db, status: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>> {
    let sql = format!("SELECT {COLS} FROM outbox_full WHERE ($1 IS NULL OR status = $1) ORDER BY id DESC LIMIT $2");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, OutboxRow>(&sql), status, limit).fetch_all(p).await)?)
}

/// Messages in `status` with ids above `after`, oldest first, `limit` at most: a walk over
/// all of them a page at a time.
pub async fn page_of(db: &Db, status: OutboxStatus, after: i64, limit: i64) -> Result<Vec<OutboxRow>> {
    let sql = format!("SELECT {COLS} FROM outbox_full WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, OutboxRow>(&sql), status, after, limit).fetch_all(p).await)?)
}

/// One message with its payload.
pub async fn get_message(db: &Db, id: i64) -> Result<Option<OutboxRow>> {
    let sql = format!("SELECT {COLS} FROM outbox_full WHERE id = $1");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, OutboxRow>(&sql), id).fetch_optional(p).await)?)
}

/// What came of dropping one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropping {
    Done,
    /// There is no such message.
    Missing,
    /// It is not queued, failed or dead (a sender holds it, or it went): its state now.
    Not(OutboxStatus),
}

/// Drops a message still waiting to be sent, or sets a dead one aside
/// ([`OutboxStatus::STAFF_DROPPABLE`]), saying `why`; never one a sender holds.
pub async fn drop_message(db: &Db, id: i64, why: &str, now: DateTime<Utc>) -> Result<Dropping> {
    let sql = format!(
        "UPDATE outbox SET status = 'dropped', last_error = $3, updated_at = $2
         WHERE id = $1 AND status IN ({})",
        super::state_list(OutboxStatus::STAFF_DROPPABLE)
    );
    // Twice at most, as in [`requeue`]: one that became droppable between the two statements
    // (a send failing that moment) is tried once more rather than refused under a wrong
    // reason.
    let mut seen = Dropping::Missing;
    for _ in 0..2 {
        if execute!(db => &sql, id, now, why)? == 1 {
            return Ok(Dropping::Done);
        }
        let now_is: Option<OutboxStatus> = on_db!(db, p => bind!(
            sqlx::query_scalar("SELECT status FROM outbox WHERE id = $1"), id).fetch_optional(p).await)?;
        seen = match now_is {
            None => return Ok(Dropping::Missing),
            Some(s) if !OutboxStatus::STAFF_DROPPABLE.contains(&s) => return Ok(Dropping::Not(s)),
            Some(s) => Dropping::Not(s),
        };
    }
    Ok(seen)
}

/// Clears the content of at most `limit` messages sent before `before`, or that went dead or
/// were dropped before it (a digest a later one said again, a message staff set aside: they
/// hold as much as one that went), oldest first: their payload rows go, the messages stay
/// (reading with an empty payload; one cleared is not queued again, [`requeue_sql`]), and so
/// do the chase list's notices of those that told no one. Returns how many.
pub async fn clear_old_content(db: &Db, before: DateTime<Utc>, limit: i64) -> Result<u64> {
    // The payloads are walked in id order from the oldest still held, no further than the
    // newest message created before the cut (one step down `outbox(created_at)`), each
    // message looked up by its id: a pass costs the rows it clears and the few older ones
    // never sent, not the outbox. (A join let SQLite read every sent message by status and
    // sort them: 45 ms a pass with nothing to clear at 200,000 messages, against 0.01 ms.)
    let old = "SELECT p.outbox_id FROM outbox_payloads p
            WHERE p.outbox_id <= (SELECT id FROM outbox WHERE created_at < $1 ORDER BY created_at DESC LIMIT 1)
              AND EXISTS (SELECT 1 FROM outbox o WHERE o.id = p.outbox_id
                          AND ((o.status = 'sent' AND o.sent_at < $1) OR (o.status IN ('dead', 'dropped') AND o.updated_at < $1)))
            ORDER BY p.outbox_id LIMIT $2";
    // Two statements, each its own: the notices first, so that a pass cut short between the
    // two leaves content whose notices are gone (the next pass clears it), never notices of
    // content cleared. No write transaction is held across them each tick.
    let untold = format!(
        "DELETE FROM item_notices WHERE outbox_id IN ({old})
           AND EXISTS (SELECT 1 FROM outbox o WHERE o.id = item_notices.outbox_id AND o.status IN ('dead', 'dropped'))"
    );
    execute!(db => &untold, before, limit)?;
    Ok(execute!(db => &format!("DELETE FROM outbox_payloads WHERE outbox_id IN ({old})"), before, limit)?)
}

/// The banner an urgent push was queued for (its key is `banner:{id}:…`).
const ITS_BANNER: &str = "outbox.kind = 'banner' AND outbox.idem_key LIKE 'banner:' || b.id || ':%'";

/// Whether the message's banner was retracted or has expired at `$1` (it shows nowhere).
fn banner_gone() -> String {
    format!(
        "EXISTS (SELECT 1 FROM banners b WHERE {ITS_BANNER}
                 AND (b.retracted_at IS NOT NULL OR b.expires_at <= $1))"
    )
}

/// Whether the banner message `id` is for was retracted or has expired at `now`: its push,
/// held by a retry or a claim through the retraction, goes to no one.
pub async fn banner_gone_for(db: &Db, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let sql = format!("SELECT {} FROM outbox WHERE id = $2", banner_gone());
    let gone: Option<bool> = on_db!(db, p => bind!(sqlx::query_scalar(&sql), now, id).fetch_optional(p).await)?;
    Ok(gone.unwrap_or(false))
}

/// The banner that banner message `id` pushes, if it is one and the banner is kept.
pub async fn banner_of(db: &Db, id: i64) -> Result<Option<i64>> {
    let sql = format!("SELECT b.id FROM outbox, banners b WHERE outbox.id = $1 AND {ITS_BANNER}");
    Ok(on_db!(db, p => bind!(sqlx::query_scalar(&sql), id).fetch_optional(p).await)?)
}

/// Queueing again, at `$1`: a banner's push goes no sooner than its banner starts, and never
/// once the banner is gone ([`banner_gone`]); a message whose content was cleared
/// ([`clear_old_content`]) never, as there is nothing left to send. One statement, so a
/// retraction at the same moment is seen either way.
fn requeue_sql(which: &str) -> String {
    format!(
        "UPDATE outbox SET status = 'queued', attempts = 0, last_error = NULL, updated_at = $1,
           next_attempt_at = COALESCE((SELECT b.starts_at FROM banners b WHERE {ITS_BANNER} AND b.starts_at > $1), $1)
         WHERE {which} AND NOT {} AND {HELD}",
        banner_gone()
    )
}

/// Queues again the message under `m`'s idempotency key if it was dropped or went dead (its
/// content still held): one that reached no one. It goes as `m` is now: to its recipient
/// (the contact's address or chat may have changed since), with its words, due when `m` is.
/// To the same recipient it keeps its reply token: a dead message may have arrived after
/// all (its sender stopped mid-send), and a reply to that copy is still answered. Gives its
/// id.
pub async fn revive_unsent(tx: &mut Tx, m: &NewMessage, now: DateTime<Utc>) -> Result<Option<i64>> {
    let sql = format!(
        "UPDATE outbox SET status = 'queued', attempts = 0, last_error = NULL, next_attempt_at = $2, updated_at = $3,
           reply_token = CASE WHEN recipient = $5 THEN reply_token ELSE $4 END, recipient = $5, subject = $6
         WHERE idem_key = $1 AND status IN ('dropped', 'dead') AND {HELD} RETURNING id"
    );
    let id: Option<i64> = on_tx!(tx, c => bind!(sqlx::query_scalar(&sql), &m.idem_key, m.next_attempt_at, now,
        &m.reply_token, &m.recipient, &m.subject)
    .fetch_optional(c).await)?;
    if let Some(id) = id {
        execute!(tx => "UPDATE outbox_payloads SET payload = $2 WHERE outbox_id = $1", id, &m.payload)?;
    }
    Ok(id)
}

/// The message's content is still held (not cleared).
const HELD: &str = "EXISTS (SELECT 1 FROM outbox_payloads p WHERE p.outbox_id = outbox.id)";

/// What came of queueing one message again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Queued, to go at this time (a banner's push waits for its banner's start).
    Queued(DateTime<Utc>),
    /// There is no such message.
    Missing,
    /// It is not failed, dead or dropped: its state now.
    Not(OutboxStatus),
    /// A banner's push whose banner was retracted or has expired.
    BannerGone,
    /// Its content was cleared, long after it went dead or was dropped.
    Cleared,
}

/// Sends a failed, dead or dropped message again from scratch ([`requeue_sql`]).
pub async fn requeue(db: &Db, id: i64, now: DateTime<Utc>) -> Result<Requeue> {
    let update = format!(
        "{} RETURNING next_attempt_at",
        requeue_sql(&format!("id = $2 AND status IN ({})", super::state_list(OutboxStatus::REQUEUEABLE)))
    );
    let look = format!("SELECT status, {}, {HELD} FROM outbox WHERE id = $2", banner_gone());
    // Twice at most: a message that became requeueable between the two statements (a send
    // failing that moment) is tried once more rather than refused under a wrong reason.
    let mut seen = Requeue::Missing;
    for _ in 0..2 {
        let at: Option<DateTime<Utc>> =
            on_db_write!(db, p => bind!(sqlx::query_scalar(&update), now, id).fetch_optional(p).await)?;
        if let Some(at) = at {
            return Ok(Requeue::Queued(at));
        }
        let found: Option<(OutboxStatus, bool, bool)> =
            on_db!(db, p => bind!(sqlx::query_as(&look), now, id).fetch_optional(p).await)?;
        seen = match found {
            None => return Ok(Requeue::Missing),
            Some((s, _, _)) if !OutboxStatus::REQUEUEABLE.contains(&s) => return Ok(Requeue::Not(s)),
            Some((_, true, _)) => return Ok(Requeue::BannerGone),
            Some((_, _, false)) => return Ok(Requeue::Cleared),
            Some((s, false, true)) => Requeue::Not(s),
        };
    }
    Ok(seen)
}

/// Queues again those of messages `ids` still dead ([`requeue_sql`]), a thousand to a
/// statement: how many, and how many of them stay dead, the pushes of banners retracted or
/// expired since and those whose content was cleared.
pub async fn requeue_dead(db: &Db, ids: &[i64], now: DateTime<Utc>) -> Result<(u64, i64)> {
    let (mut queued, mut left) = (0, 0);
    for chunk in ids.chunks(1_000) {
        // Ids are numbers: written into the statement, with no limit on bound parameters.
        let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        let which = format!("status = 'dead' AND id IN ({list})");
        let mut tx = db.begin().await?;
        queued += execute!(&mut tx => &requeue_sql(&which), now)?;
        let sql = format!("SELECT COUNT(*) FROM outbox WHERE {which} AND ({} OR NOT {HELD})", banner_gone());
        left += on_tx!(&mut tx, c => bind!(sqlx::query_scalar::<_, i64>(&sql), now).fetch_one(c).await)?;
        tx.commit().await?;
    }
    Ok((queued, left))
}

/// The number of messages in each state but `sent`, for the metrics a scrape reads: each is
/// a range of the `outbox_due` index, where counting the sent ones reads every message ever
/// sent (12 ms a scrape at 200,000 messages on SQLite, against 0.01 ms without them).
pub async fn counts_unsent(db: &Db) -> Result<Vec<(OutboxStatus, i64)>> {
    let unsent: Vec<OutboxStatus> = OutboxStatus::ALL.iter().copied().filter(|s| *s != OutboxStatus::Sent).collect();
    let sql = format!(
        "SELECT status, COUNT(*) FROM outbox WHERE status IN ({}) GROUP BY status ORDER BY status",
        super::state_list(&unsent)
    );
    Ok(on_db!(db, p => sqlx::query_as::<_, (OutboxStatus, i64)>(&sql).fetch_all(p).await)?)
}

pub async fn counts_by_status(db: &Db) -> Result<Vec<(String, i64)>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, (String, i64)>(
        "SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status",
    )
    .fetch_all(p).await)?)
}

/// Drops the digests to `contact_id` on `channel` written before `period` began and still
/// waiting to go (queued, or failed and waiting out a retry), saying `why`: the digest of
/// `period` says what they said, as it stands now, so a mail server back after an outage
/// sends one digest, not one a period. One a sender holds goes; so does another of `period`
/// itself (`digest run --force`). Returns how many were dropped.
pub async fn supersede_digests(
    tx: &mut Tx,
    contact_id: &str,
    channel: Outlet,
    period: DateTime<Utc>,
    why: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let sql = format!(
        "UPDATE outbox SET status = 'dropped', last_error = $4, updated_at = $5
         WHERE contact_id = $1 AND channel = $2 AND kind = 'digest' AND created_at < $3 AND status IN ({})",
        super::state_list(OutboxStatus::DROPPABLE)
    );
    execute!(tx => &sql, contact_id, channel, period, why, now)
}

/// The payload of the last digest queued for this contact and channel that went or may
/// still go (for "new" marks: one dropped or dead never reached the contact); with
/// `before`, the last one queued before that digest (`created_at`, `id`), which a digest
/// written again as it goes compares itself with.
pub async fn last_digest_payload(
    conn: impl Into<Conn<'_>>,
    contact_id: &str,
    channel: crate::model::Outlet,
    before: Option<(DateTime<Utc>, i64)>,
) -> Result<Option<String>> {
    // Without `before`: after every row (9999-12-31, the last time the store's columns hold).
    let last = DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default();
    let (at, id) = before.unwrap_or((last, i64::MAX));
    let mut conn = conn.into();
    Ok(on_conn!(conn.reborrow(), c => bind!(sqlx::query_scalar(
        // In the order of the `outbox_contact` index, so the newest is read without sorting
        // every digest the contact ever had.
        "SELECT payload FROM outbox_full WHERE contact_id = $1 AND channel = $2 AND kind = 'digest'
           AND status NOT IN ('dropped', 'dead') AND (created_at < $3 OR (created_at = $3 AND id < $4))
         ORDER BY created_at DESC, id DESC LIMIT 1",
    ), contact_id, channel, at, id)
    .fetch_optional(c).await)?)
}

/// Contacts whose email is suspended (after bounces), with the reason.
pub async fn suspended_contacts(db: &Db) -> Result<std::collections::HashMap<String, String>> {
    let rows: Vec<(String, Option<String>)> = on_db!(db, p => sqlx::query_as(
        "SELECT contact_id, email_suspended_reason FROM contact_settings WHERE email_suspended_at IS NOT NULL",
    )
    .fetch_all(p).await)?;
    Ok(rows.into_iter().map(|(c, r)| (c, r.unwrap_or_default())).collect())
}
