//! Chat users tied to contacts (Telegram, Discord), linking codes, pending questions.

use chrono::{DateTime, Utc};

use super::{Db, Result, Tx, bind, execute, on_db, on_tx, rows_for};

/// A chat user known as a contact. `chat_id` is where messages to them go.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChatLink {
    pub channel: crate::model::Chat,
    pub user_id: String,
    pub chat_id: String,
    pub contact_id: String,
    /// When the person tied the chat with a code; none for a chat TOT's record names (when
    /// it began to is not kept).
    pub linked_at: Option<DateTime<Utc>>,
}

/// Stores a new code (only its hash) for a contact.
pub async fn insert_code(
    tx: &mut Tx,
    code_hash: &str,
    contact_id: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    execute!(tx =>
        "INSERT INTO chat_codes (code_hash, contact_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        code_hash, contact_id, now, expires_at)?;
    Ok(())
}

/// Voids the contact's unused codes but the newest `keep`: asking for codes again and again
/// leaves only the last few working, not a growing set of guessable ones.
pub async fn void_older_codes(tx: &mut Tx, contact_id: &str, keep: i64) -> Result<u64> {
    Ok(execute!(tx =>
        "DELETE FROM chat_codes WHERE contact_id = $1 AND used_at IS NULL AND code_hash NOT IN
           (SELECT code_hash FROM chat_codes WHERE contact_id = $1 AND used_at IS NULL
            ORDER BY created_at DESC, code_hash LIMIT $2)",
        contact_id, keep)?)
}

/// Uses a code once and ties the chat user to its contact, replacing any earlier tie of that
/// user or of that contact on the same channel. `None`: unknown, used or expired code.
pub async fn redeem_code(
    tx: &mut Tx,
    code_hash: &str,
    channel: crate::model::Channel,
    user_id: &str,
    chat_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    // A code made before TOT gave its contact another address was for the old address's
    // reader (mailed there, or shown to a session that address opened): it ties nothing. Nor
    // does one of a contact TOT has made inactive since: it would undo the chat's tie to an
    // active contact and promise digests that never come.
    let row: Option<String> = on_tx!(tx, c => bind!(sqlx::query_scalar(
        "UPDATE chat_codes SET used_at = $2
         WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2
           AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = chat_codes.contact_id AND c.email_set_at >= chat_codes.created_at)
           AND EXISTS (SELECT 1 FROM contacts c WHERE c.id = chat_codes.contact_id AND c.active)
         RETURNING contact_id",
    ), code_hash, now)
    .fetch_optional(c).await)?;
    let Some(contact_id) = row else {
        return Ok(None);
    };
    execute!(tx =>
        "DELETE FROM chat_links WHERE channel = $1 AND (user_id = $2 OR contact_id = $3)",
        channel, user_id, &contact_id)?;
    execute!(tx => "DELETE FROM chat_optouts WHERE channel = $1 AND user_id = $2", channel, user_id)?;
    execute!(tx =>
        "INSERT INTO chat_links (channel, user_id, chat_id, contact_id, linked_at) VALUES ($1, $2, $3, $4, $5)",
        channel, user_id, chat_id, &contact_id, now)?;
    Ok(Some(contact_id))
}

/// Removes a chat user's tie, and opts the chat out of what TOT's contact record would
/// link anyway. True when the chat was linked either way and this call unlinked it (two at
/// once: one of them).
pub async fn unlink(db: &Db, channel: crate::model::Channel, user_id: &str, now: DateTime<Utc>) -> Result<bool> {
    let was = contact_for_user(db, channel, user_id).await?.is_some();
    let mut tx = db.begin().await?;
    let changed = unlink_in(&mut tx, channel, user_id, now).await?;
    tx.commit().await?;
    Ok(was && changed)
}

/// [`unlink`]'s changes, in a transaction of the caller's; false when there was nothing to
/// change (no tie, and opted out already).
pub async fn unlink_in(tx: &mut Tx, channel: crate::model::Channel, user_id: &str, now: DateTime<Utc>) -> Result<bool> {
    let untied = execute!(tx => "DELETE FROM chat_links WHERE channel = $1 AND user_id = $2", channel, user_id)?;
    let opted = execute!(tx =>
        "INSERT INTO chat_optouts (channel, user_id, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        channel, user_id, now)?;
    Ok(untied + opted > 0)
}

/// Whether a chat user is an inactive contact's: tied by a code, or named by the record of
/// a contact TOT made inactive (and not opted out). Asked when no active contact is found,
/// to tell such a chat from one never linked (a record naming this chat for an active
/// contact who tied another chat by code does not make it theirs).
pub async fn tied(db: &Db, channel: crate::model::Channel, user_id: &str) -> Result<bool> {
    let (telegram, discord) = record_ids(channel, user_id);
    let n: i64 = on_db!(db, p => bind!(sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM chat_links WHERE channel = $1 AND user_id = $2)
              + (SELECT COUNT(*) FROM contacts c WHERE (c.telegram_chat_id = $3 OR c.discord_user_id = $4)
                   AND NOT c.active AND NOT EXISTS (SELECT 1 FROM chat_optouts o WHERE o.channel = $1 AND o.user_id = $2))"),
        channel, user_id, telegram, discord)
        .fetch_one(p).await)?;
    Ok(n > 0)
}

/// A chat user's id as TOT's contact record holds it for their channel (a number for
/// Telegram), so each lookup is one index probe, not a read of every contact.
fn record_ids(channel: crate::model::Channel, user_id: &str) -> (Option<i64>, Option<&str>) {
    let telegram = match channel {
        crate::model::Channel::Telegram => user_id.parse::<i64>().ok().filter(|n| n.to_string() == user_id),
        _ => None,
    };
    (telegram, (channel == crate::model::Channel::Discord).then_some(user_id))
}

/// The active contact a chat user is: tied by a code, or else named by TOT's own contact
/// record (`telegram_chat_id`, `discord_user_id`) of a contact who has tied no chat of that
/// channel (as [`chats_of_contact`] sends: the tied chat replaces the record's), unless the
/// chat is tied by a code to someone else (active or not). Where TOT's records name one chat
/// for several contacts, the first by id.
pub async fn contact_for_user(db: &Db, channel: crate::model::Channel, user_id: &str) -> Result<Option<String>> {
    let (telegram, discord) = record_ids(channel, user_id);
    Ok(on_db!(db, p => bind!(sqlx::query_scalar(
        "SELECT contact_id FROM (
           SELECT l.contact_id, 0 AS rank FROM chat_links l JOIN contacts c ON c.id = l.contact_id
           WHERE l.channel = $1 AND l.user_id = $2 AND c.active
           UNION ALL
           SELECT c.id, 1 FROM contacts c
           WHERE c.active AND (c.telegram_chat_id = $3 OR c.discord_user_id = $4)
             AND NOT EXISTS (SELECT 1 FROM chat_optouts o WHERE o.channel = $1 AND o.user_id = $2)
             AND NOT EXISTS (SELECT 1 FROM chat_links l WHERE l.channel = $1 AND l.user_id = $2)
             AND NOT EXISTS (SELECT 1 FROM chat_links l WHERE l.contact_id = c.id AND l.channel = $1)
         ) u ORDER BY rank, contact_id LIMIT 1",
    ), channel, user_id, telegram, discord)
    .fetch_optional(p).await)?)
}

/// Where a contact's chat messages go, per channel: tied chats first, else TOT's record, unless
/// that chat is tied by a code to someone else (who proved they hold it: TOT's record is out of
/// date, and the other contact's messages must not reach them).
pub async fn chats_of_contact(db: &Db, contact_id: &str) -> Result<Vec<ChatLink>> {
    rows_for(
        db,
        "SELECT channel, user_id, chat_id, contact_id, linked_at FROM chat_links WHERE contact_id = $1
         UNION ALL
         SELECT 'telegram', CAST(telegram_chat_id AS TEXT), CAST(telegram_chat_id AS TEXT), id, NULL FROM contacts
         WHERE id = $1 AND telegram_chat_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM chat_links WHERE channel = 'telegram'
                           AND (contact_id = $1 OR user_id = CAST(telegram_chat_id AS TEXT)))
           AND NOT EXISTS (SELECT 1 FROM chat_optouts o
                           WHERE o.channel = 'telegram' AND o.user_id = CAST(telegram_chat_id AS TEXT))
         UNION ALL
         SELECT 'discord', discord_user_id, discord_user_id, id, NULL FROM contacts
         WHERE id = $1 AND discord_user_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM chat_links WHERE channel = 'discord'
                           AND (contact_id = $1 OR user_id = discord_user_id))
           AND NOT EXISTS (SELECT 1 FROM chat_optouts o WHERE o.channel = 'discord' AND o.user_id = discord_user_id)
         ORDER BY 1",
        contact_id,
    )
    .await
}

/// Every contact with at least one chat, for the scheduler's pass.
pub async fn all_chats(db: &Db) -> Result<Vec<ChatLink>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, ChatLink>(
        "SELECT channel, user_id, chat_id, contact_id, linked_at FROM chat_links
         UNION ALL
         SELECT 'telegram', CAST(telegram_chat_id AS TEXT), CAST(telegram_chat_id AS TEXT), id, NULL FROM contacts c
         WHERE telegram_chat_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM chat_links l WHERE l.channel = 'telegram'
                           AND (l.contact_id = c.id OR l.user_id = CAST(c.telegram_chat_id AS TEXT)))
           AND NOT EXISTS (SELECT 1 FROM chat_optouts o
                           WHERE o.channel = 'telegram' AND o.user_id = CAST(c.telegram_chat_id AS TEXT))
         UNION ALL
         SELECT 'discord', discord_user_id, discord_user_id, id, NULL FROM contacts c
         WHERE discord_user_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM chat_links l WHERE l.channel = 'discord'
                           AND (l.contact_id = c.id OR l.user_id = c.discord_user_id))
           AND NOT EXISTS (SELECT 1 FROM chat_optouts o WHERE o.channel = 'discord' AND o.user_id = c.discord_user_id)",
    )
    .fetch_all(p).await)?)
}

/// Remembers the question a chat user is answering next (one at a time).
pub async fn set_pending(
    tx: &mut Tx,
    channel: crate::model::Channel,
    user_id: &str,
    action: &str,
    subject: &str,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    execute!(tx =>
        "INSERT INTO chat_pending (channel, user_id, action, subject, expires_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (channel, user_id) DO UPDATE SET action = excluded.action, subject = excluded.subject,
           expires_at = excluded.expires_at",
        channel, user_id, action, subject, expires_at)?;
    Ok(())
}

/// Whether a chat user has a question pending, expired or not (a read, so a message with
/// nothing pending opens no write).
pub async fn has_pending(db: &Db, channel: crate::model::Channel, user_id: &str) -> Result<bool> {
    let sql = "SELECT COUNT(*) FROM chat_pending WHERE channel = $1 AND user_id = $2";
    let n: i64 = on_db!(db, p => bind!(sqlx::query_scalar(sql), channel, user_id).fetch_one(p).await)?;
    Ok(n > 0)
}

/// Takes (and forgets) a chat user's pending question, if it has not expired.
pub async fn take_pending(
    tx: &mut Tx,
    channel: crate::model::Channel,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, String)>> {
    let row: Option<(String, String, DateTime<Utc>)> = on_tx!(tx, c => bind!(sqlx::query_as(
        "DELETE FROM chat_pending WHERE channel = $1 AND user_id = $2 RETURNING action, subject, expires_at",
    ), channel, user_id)
    .fetch_optional(c).await)?;
    Ok(row.filter(|r| r.2 > now).map(|r| (r.0, r.1)))
}

/// What is known of an update id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// Never seen: to be run.
    New,
    /// Run, and its answers sent (or queued for later).
    Answered,
    /// Run, its answers never said to have gone: the process stopped between the two.
    Unanswered,
}

/// What is known of an update id (a cheap check before the work).
pub async fn seen_update(db: &Db, channel: crate::model::Channel, update_id: &str) -> Result<Sighting> {
    let row: Option<(Option<DateTime<Utc>>,)> = on_db!(db, p => bind!(sqlx::query_as(
        "SELECT answered_at FROM chat_updates WHERE channel = $1 AND update_id = $2",
    ), channel, update_id)
    .fetch_optional(p).await)?;
    Ok(match row {
        None => Sighting::New,
        Some((Some(_),)) => Sighting::Answered,
        Some((None,)) => Sighting::Unanswered,
    })
}

/// Records that an update's answers were sent or queued.
pub async fn update_answered(
    db: &Db,
    channel: crate::model::Channel,
    update_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    execute!(db => "UPDATE chat_updates SET answered_at = $3 WHERE channel = $1 AND update_id = $2 AND answered_at IS NULL",
        channel, update_id, now)?;
    Ok(())
}

/// Records an update id; false when it was seen before (a webhook delivered it twice).
pub async fn first_sighting(
    tx: &mut Tx,
    channel: crate::model::Channel,
    update_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(execute!(tx =>
        "INSERT INTO chat_updates (channel, update_id, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        channel, update_id, now)?
        == 1)
}

/// Forgets codes that expired a day ago and update ids seen a week ago (a webhook's
/// re-delivery and a replayed interaction come within minutes). Returns the rows removed.
pub async fn prune(db: &Db, now: DateTime<Utc>) -> Result<u64> {
    let codes = execute!(db => "DELETE FROM chat_codes WHERE expires_at < $1", now - chrono::Duration::days(1))?;
    let updates = execute!(db => "DELETE FROM chat_updates WHERE seen_at < $1", now - chrono::Duration::days(7))?;
    Ok(codes + updates)
}
