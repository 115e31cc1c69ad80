//! Ledgers that make decisions happen once: digest periods, alerted items, used link nonces.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Conn, Db, Result, Tx, bind, execute, fetch_in, on_conn, on_db, on_tx};

/// Claims the decision for one contact, channel and digest period. False when it was
/// already decided (by this process earlier, or by another one).
pub async fn claim_digest_period(
    tx: &mut Tx,
    contact_id: &str,
    channel: crate::model::Outlet,
    period: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(execute!(tx =>
        "INSERT INTO digest_runs (contact_id, channel, period, outbox_id, item_count, decided_at)
         VALUES ($1, $2, $3, NULL, 0, $4) ON CONFLICT DO NOTHING",
        contact_id, channel, period, now)?
        == 1)
}

pub async fn record_digest(
    tx: &mut Tx,
    contact_id: &str,
    channel: crate::model::Outlet,
    period: &str,
    outbox_id: Option<i64>,
    items: i64,
) -> Result<()> {
    execute!(tx =>
        "UPDATE digest_runs SET outbox_id = $4, item_count = $5 WHERE contact_id = $1 AND channel = $2 AND period = $3",
        contact_id, channel, period, outbox_id, items)?;
    Ok(())
}

/// Forgets a decided period so it can be decided again: any decision (`digest run --force`),
/// or only an empty one (`digest run`).
pub async fn forget_digest_period(
    tx: &mut Tx,
    contact_id: &str,
    channel: crate::model::Outlet,
    period: &str,
    only_empty: bool,
) -> Result<()> {
    execute!(tx =>
        "DELETE FROM digest_runs WHERE contact_id = $1 AND channel = $2 AND period = $3
           AND (outbox_id IS NULL OR NOT $4)",
        contact_id, channel, period, only_empty)?;
    Ok(())
}

/// Records that an item was alerted; false when it had been already.
pub async fn claim_alert(
    tx: &mut Tx,
    contact_id: &str,
    channel: crate::model::Outlet,
    category: &str,
    item_id: &str,
    outbox_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(execute!(tx =>
        "INSERT INTO alert_ledger (contact_id, channel, category, item_id, outbox_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        contact_id, channel, category, item_id, outbox_id, now)?
        == 1)
}

/// Forgets that the items `keys` (`category:id`) were alerted to the contact on `channel`:
/// they no longer need the contact, so if one comes back (a visual sent back for approval)
/// it is news again.
pub async fn forget_alerts(tx: &mut Tx, contact_id: &str, channel: crate::model::Outlet, keys: &[&str]) -> Result<()> {
    let mut by_category: HashMap<&str, Vec<&str>> = HashMap::new();
    for key in keys {
        if let Some((category, id)) = key.split_once(':') {
            by_category.entry(category).or_default().push(id);
        }
    }
    for (category, ids) in by_category {
        for chunk in ids.chunks(super::IN_CHUNK) {
            let sql = format!(
                "DELETE FROM alert_ledger WHERE contact_id = $1 AND channel = $2 AND category = $3 AND item_id IN ({})",
                super::placeholders(4, chunk.len())
            );
            on_tx!(tx, c => {
                let mut q = sqlx::query(&sql).bind(contact_id).bind(channel).bind(category);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.execute(c).await.map(|r| r.rows_affected())
            })?;
        }
    }
    Ok(())
}

/// Marks a single-use nonce used; false when it was used before (a replay).
pub async fn use_nonce(db: &Db, nonce: &str, now: DateTime<Utc>) -> Result<bool> {
    Ok(execute!(db =>
        "INSERT INTO used_nonces (nonce, used_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        nonce, now)?
        == 1)
}

/// Forgets nonces used before `before`: the links that carried them have expired by then
/// (see [`crate::links::LONGEST_LINK_DAYS`]), so a replay is refused for its age. Returns the
/// rows removed.
pub async fn forget_nonces(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    Ok(execute!(db => "DELETE FROM used_nonces WHERE used_at < $1", before)?)
}

/// Forgets what was alerted to a contact on `channel` and when it was first looked at: a
/// chat tied again starts from what needs the contact then, as a first tie does, instead of
/// alerting all that came up while it was untied (the contact had that by email and digest).
pub async fn forget_channel(tx: &mut Tx, contact_id: &str, channel: crate::model::Outlet) -> Result<()> {
    execute!(tx => "DELETE FROM alert_baselines WHERE contact_id = $1 AND channel = $2", contact_id, channel)?;
    execute!(tx => "DELETE FROM alert_ledger WHERE contact_id = $1 AND channel = $2", contact_id, channel)?;
    Ok(())
}

/// Records the contact's alert baseline: `None` when this is the first look at the contact
/// on `channel`, else when the baseline was taken (the contact was scanned before).
pub async fn claim_alert_baseline(
    tx: &mut Tx,
    contact_id: &str,
    channel: crate::model::Outlet,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    if execute!(tx =>
        "INSERT INTO alert_baselines (contact_id, channel, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        contact_id, channel, now)?
        == 1
    {
        return Ok(None);
    }
    Ok(Some(on_tx!(tx, c => bind!(sqlx::query_scalar(
        "SELECT created_at FROM alert_baselines WHERE contact_id = $1 AND channel = $2"), contact_id, channel)
        .fetch_one(c).await)?))
}

/// For each of `contacts` and each channel it has an alert baseline on, the item keys
/// (`category:id`) in its alert ledger: what a scan compares a contact's items with before
/// it takes the write lock, read for many contacts at once. A contact and channel without a
/// baseline is absent (its first scan records one).
pub async fn alert_ledgers_of(
    db: &Db,
    contacts: &[&str],
) -> Result<HashMap<(String, crate::model::Outlet), HashSet<String>>> {
    let baselines: Vec<(String, crate::model::Outlet)> =
        fetch_in!(on_db, db, "SELECT contact_id, channel FROM alert_baselines WHERE contact_id IN ({in})", contacts)?;
    let mut out: HashMap<(String, crate::model::Outlet), HashSet<String>> =
        baselines.into_iter().map(|k| (k, HashSet::new())).collect();
    let rows: Vec<(String, crate::model::Outlet, String, String)> = fetch_in!(
        on_db,
        db,
        "SELECT contact_id, channel, category, item_id FROM alert_ledger WHERE contact_id IN ({in})",
        contacts
    )?;
    for (contact, channel, category, item) in rows {
        if let Some(keys) = out.get_mut(&(contact, channel)) {
            keys.insert(format!("{category}:{item}"));
        }
    }
    Ok(out)
}

/// Item keys (`category:id`) already in this contact's alert ledger.
pub async fn alerted_keys(
    conn: impl Into<Conn<'_>>,
    contact_id: &str,
    channel: crate::model::Outlet,
) -> Result<std::collections::HashSet<String>> {
    let rows: Vec<(String, String)> = on_conn!(conn.into(), p => bind!(sqlx::query_as(
        "SELECT category, item_id FROM alert_ledger WHERE contact_id = $1 AND channel = $2",
    ), contact_id, channel)
    .fetch_all(p).await)?;
    Ok(rows.into_iter().map(|(c, i)| format!("{c}:{i}")).collect())
}

/// How a contact's digest period stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not decided yet.
    Open,
    /// Decided with nothing to say: no message was queued.
    Empty,
    /// Decided, and a digest queued.
    Sent,
}

impl Decision {
    /// A decision recorded in `digest_runs`, read from its message (none when it was empty).
    fn taken(outbox_id: Option<i64>) -> Decision {
        if outbox_id.is_some() { Decision::Sent } else { Decision::Empty }
    }
}

/// Every digest decision taken since `since`, by (contact, channel, period): what a
/// scheduled pass needs, read once rather than once per contact (a period it may still
/// decide began after `since`, so its decision, if any, was taken after it too).
pub async fn digest_decisions_since(
    db: &Db,
    since: DateTime<Utc>,
) -> Result<std::collections::HashMap<(String, String, String), Decision>> {
    let rows: Vec<(String, String, String, Option<i64>)> = on_db!(db, p => bind!(sqlx::query_as(
        "SELECT contact_id, channel, period, outbox_id FROM digest_runs WHERE decided_at >= $1",
    ), since)
    .fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .map(|(contact, channel, period, outbox)| ((contact, channel, period), Decision::taken(outbox)))
        .collect())
}

/// The latest period any of the contact's digests was decided for, on any channel.
pub async fn last_digest_period(db: &Db, contact_id: &str) -> Result<Option<DateTime<Utc>>> {
    let row: Option<String> = on_db!(db, p => bind!(sqlx::query_scalar(
        "SELECT MAX(period) FROM digest_runs WHERE contact_id = $1",
    ), contact_id)
    .fetch_one(p).await)?;
    Ok(row.and_then(|p| DateTime::parse_from_rfc3339(&p).ok()).map(|p| p.with_timezone(&Utc)))
}

/// When a setting of the configured digest clock (`digest.schedule`, `digest.timezone`)
/// was last found changed by a scheduled pass: `value` is the one in force now, recorded
/// with `now` when it differs from the one recorded (or none was). A store first seen by
/// this version is stamped too: that costs nothing where the clock did not change (a
/// contact that had no digest since the slot before is still owed it) and keeps a clock
/// changed by the same restart from sending a second digest. Only read while it stays.
pub async fn configured_clock_set_at(
    db: &Db,
    name: &str,
    value: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let kept: Option<(String, Option<DateTime<Utc>>)> = on_db!(db, p => bind!(sqlx::query_as(
        "SELECT value, set_at FROM configured_clocks WHERE name = $1",
    ), name)
    .fetch_optional(p).await)?;
    match kept {
        Some((was, set_at)) if was == value => Ok(set_at),
        kept => {
            // Two processes that run with different settings stamp it in turn (each pass
            // says so here); either withholds only a period the contact had its digest for.
            if let Some((was, _)) = &kept {
                tracing::info!(setting = %format!("digest.{name}"), was = %was, now = %value, "the configured digest clock changed: a contact on it who had a digest since the new clock's slot before this one waits for its next slot");
            }
            execute!(db =>
                "INSERT INTO configured_clocks (name, value, set_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, set_at = excluded.set_at",
                name, value, now)?;
            Ok(Some(now))
        }
    }
}

/// Whether this contact's digest for `period` on `channel` has been decided already.
pub async fn digest_decision(
    db: &Db,
    contact_id: &str,
    channel: crate::model::Outlet,
    period: &str,
) -> Result<Decision> {
    let row: Option<Option<i64>> = on_db!(db, p => bind!(sqlx::query_scalar(
        "SELECT outbox_id FROM digest_runs WHERE contact_id = $1 AND channel = $2 AND period = $3",
    ), contact_id, channel, period)
    .fetch_optional(p).await)?;
    Ok(row.map_or(Decision::Open, Decision::taken))
}

/// Whether a single-use nonce has been used (without using it).
pub async fn nonce_used(db: &Db, nonce: &str) -> Result<bool> {
    let row: Option<String> = on_db!(db, p => bind!(sqlx::query_scalar("SELECT nonce FROM used_nonces WHERE nonce = $1"),
        nonce)
        .fetch_optional(p).await)?;
    Ok(row.is_some())
}

const LEADER_LOCK: i64 = 0x6370_6f72_7401;

/// The lock that makes one process Telegram's long poller.
const POLLER_LOCK: i64 = 0x6370_6f72_7402;

/// A PostgreSQL advisory lock that makes one process the scheduler (or the Telegram poller),
/// held by a connection of its own for as long as this lives.
pub struct LeaderLock(sqlx::pool::PoolConnection<sqlx::Postgres>);

impl LeaderLock {
    /// Whether the lock's connection still answers (a session lock ends with its
    /// connection: a store restart or a cut network takes it away unseen), within five
    /// seconds: a connection whose network path was cut mid-answer waits for good, and the
    /// scheduler with it, still holding the lock on the server until that session is dropped.
    pub async fn alive(&mut self) -> bool {
        let asked = sqlx::query("SELECT 1").execute(&mut *self.0);
        matches!(tokio::time::timeout(std::time::Duration::from_secs(5), asked).await, Ok(Ok(_)))
    }
}

/// Takes the scheduler's lock. None when another process holds it, when the store cannot be
/// reached (said in the log), or on SQLite.
pub async fn try_leader_lock(db: &Db) -> Option<LeaderLock> {
    try_lock(db, LEADER_LOCK, Leader::Scheduler.what()).await
}

/// Takes the Telegram poller's lock: Telegram answers a second long poll of the same bot
/// 409, and a process that took a batch another had not yet confirmed would answer it
/// again. None as [`try_leader_lock`].
pub async fn try_poller_lock(db: &Db) -> Option<LeaderLock> {
    try_lock(db, POLLER_LOCK, Leader::TelegramPoller.what()).await
}

/// Which process-wide role a [`LeaderLock`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leader {
    /// The digest scheduler ([`try_leader_lock`]).
    Scheduler,
    /// Telegram's long poller ([`try_poller_lock`]).
    TelegramPoller,
}

impl Leader {
    fn key(self) -> i64 {
        match self {
            Leader::Scheduler => LEADER_LOCK,
            Leader::TelegramPoller => POLLER_LOCK,
        }
    }
    fn what(self) -> &'static str {
        match self {
            Leader::Scheduler => "the scheduler's lock",
            Leader::TelegramPoller => "the Telegram poller's lock",
        }
    }
}

/// Keeps `held` holding `leader`'s lock, one look at a time: a lock whose connection no
/// longer answers is let go (said), and a lock not held is asked for (its taking said).
/// Whether it is held now. Always false on SQLite, whose one process needs no lock.
pub async fn keep_lock(db: &Db, held: &mut Option<LeaderLock>, leader: Leader) -> bool {
    if let Some(lock) = held.as_mut()
        && !lock.alive().await
    {
        tracing::warn!(lock = leader.what(), "a lock was lost with its connection; asking for it again");
        *held = None;
    }
    if held.is_none() {
        *held = try_lock(db, leader.key(), leader.what()).await;
        if held.is_some() {
            tracing::info!(lock = leader.what(), "this process holds a lock and does its work");
        }
    }
    held.is_some()
}

async fn try_lock(db: &Db, key: i64, what: &str) -> Option<LeaderLock> {
    let Db::Postgres(pool) = db else { return None };
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, lock = what, "could not ask for a lock");
            return None;
        }
    };
    // Dropped (a panic in the scheduler, a lost connection), the connection is closed rather
    // than handed back to the pool still holding the lock, so the lock is free at once.
    conn.close_on_drop();
    match bind!(sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)"), key).fetch_one(&mut *conn).await {
        Ok(true) => {
            // The server learns of this connection cut without a word (a failover, a
            // firewall's idle timeout) within two minutes and frees the lock for another
            // process, rather than holding it through the system's two hours of silence.
            // Ignored where refused (a connection over a Unix socket has no keepalive).
            let keepalive = "SELECT set_config('tcp_keepalives_idle', '60', false),
                    set_config('tcp_keepalives_interval', '10', false), set_config('tcp_keepalives_count', '6', false)";
            if let Err(e) = sqlx::query(keepalive).execute(&mut *conn).await {
                tracing::debug!(error = %e, "a lock's connection keeps the server's keepalive");
            }
            Some(LeaderLock(conn))
        }
        Ok(false) => None,
        Err(e) => {
            tracing::warn!(error = %e, lock = what, "could not ask for a lock");
            None
        }
    }
}

/// Notes that message `outbox_id` (a digest, an alert or a reminder queued in `tx`) tells
/// `contact_id` of the items `keys` on `channel`. The contact counts as told once a message
/// noted for the item is sent, at the earliest such message's `sent_at`
/// ([`super::console::notices_of`]); until one is, each message listing the item is noted, so
/// whichever of them goes tells. An item the contact was told of already is not noted again.
/// The notices of messages that went dead or were dropped (they told no one, unless staff
/// queue them again) go when their content is cleared ([`super::outbox::clear_old_content`]).
pub async fn note_items(
    tx: &mut Tx,
    contact_id: &str,
    channel: crate::model::Outlet,
    keys: &[String],
    outbox_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    // A key listed twice is one notice (the unique index would also take the second as a
    // conflict, and do nothing).
    let keys: Vec<&String> = keys.iter().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    for chunk in keys.chunks(300) {
        // A notice written before notices named their message (no `outbox_id`) was a telling.
        let values: Vec<String> = (0..chunk.len()).map(|i| format!("(${})", i + 5)).collect();
        let insert = format!(
            "INSERT INTO item_notices (item_key, contact_id, channel, first_at, outbox_id)
             SELECT k.column1, $1, $2, $3, $4 FROM (VALUES {}) AS k
             WHERE NOT EXISTS (SELECT 1 FROM item_notices n LEFT JOIN outbox o ON o.id = n.outbox_id
                               WHERE n.item_key = k.column1 AND n.contact_id = $1 AND n.channel = $2
                                 AND (n.outbox_id IS NULL OR o.status = 'sent'))
             ON CONFLICT DO NOTHING",
            values.join(", ")
        );
        on_tx!(tx, c => {
            let mut q = bind!(sqlx::query(&insert), contact_id, channel, now, outbox_id);
            for k in chunk {
                q = q.bind(*k);
            }
            q.execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}
