//! Linking a chat to a contact: one-time codes, shown on the portal or by the `LINK`
//! command, redeemed by `/start CODE` (Telegram) or `/link CODE` (Discord).

use chrono::{DateTime, Duration, Utc};

use super::ActionError;
use crate::services::Services;
use crate::store::StoreError;
use crate::store::chat as db;

/// How long a linking code works.
pub const CODE_MINUTES: i64 = 30;

/// How many of a contact's codes work at once: a newer one voids the oldest beyond these
/// (a code asked for on the portal and another by `LINK` both work).
pub const LIVE_CODES: i64 = 3;

/// A code as stored: letters and digits only, upper case, hashed.
pub fn hash_code(code: &str) -> String {
    let norm: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
    crate::links::sha256_hex(&norm)
}

/// A fresh one-time linking code for a contact, like `K7PQ-2XMD`. Only its hash is stored.
/// Refused while no chat is set up ([`chat_on`]): nothing could take the code.
pub async fn new_link_code(state: &Services, contact_id: &str, now: DateTime<Utc>) -> Result<String, ActionError> {
    chat_is_on(&state.config)?;
    Ok(state.db.in_transaction(async |tx| new_link_code_in(tx, contact_id, now).await).await?)
}

/// [`chat_on`], as the refusal of a code asked for while it is not: one rule for the portal,
/// the console and the command line.
pub(crate) fn chat_is_on(config: &crate::config::Config) -> Result<(), ActionError> {
    if chat_on(config) { Ok(()) } else { Err(ActionError::Conflict(NO_CHAT.to_string())) }
}

/// [`new_link_code`] inside the caller's transaction.
pub async fn new_link_code_in(
    tx: &mut crate::store::Tx,
    contact_id: &str,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    use rand::Rng;
    // No 0/O or 1/I: people type these codes.
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let raw: String = {
        let mut rng = rand::thread_rng();
        (0..8).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
    };
    let code = format!("{}-{}", &raw[..4], &raw[4..]);
    db::insert_code(tx, &hash_code(&code), contact_id, now, now + Duration::minutes(CODE_MINUTES)).await?;
    db::void_older_codes(tx, contact_id, LIVE_CODES).await?;
    Ok(code)
}

/// What stands before a linking code wherever a message to a contact carries one: the
/// console hides what follows it from staff (`console::without_link_tokens`), as it does the
/// code after each [`link_command`].
pub const CODE_LABEL: &str = "Your code: ";

/// The command a code is sent with on `channel`: Telegram's bot takes `/start`, Discord's
/// app `/link`.
pub fn link_command(channel: crate::model::Channel) -> &'static str {
    match channel {
        crate::model::Channel::Discord => "/link",
        _ => "/start",
    }
}

/// How a contact links a chat, with a fresh code: for the portal, `LINK` by email and the CLI.
/// Whether a chat channel is set up (a Telegram bot or a Discord app): without one a linking
/// code could not be used, and none is made.
pub fn chat_on(config: &crate::config::Config) -> bool {
    !config.telegram.token.is_empty() || !config.discord.public_key.is_empty()
}

/// Why no linking code is made here, when none is.
pub const NO_CHAT: &str = "no chat channel is set up (telegram.token or discord.public_key in cport's configuration): a chat link code could not be used";

pub fn how_to_link(config: &crate::config::Config, code: &str) -> Vec<String> {
    use crate::model::Channel::{Discord, Telegram};
    let (tg, dc) = (link_command(Telegram), link_command(Discord));
    let mut out = vec![];
    if !config.telegram.token.is_empty() {
        out.push(format!("Telegram: send {tg} {code} to TOT's bot."));
    }
    if !config.discord.public_key.is_empty() {
        out.push(format!("Discord: use {dc} {code} with TOT's app."));
    }
    if out.is_empty() {
        out.push(format!("In chat, send {tg} {code} (Telegram) or {dc} {code} (Discord)."));
    }
    out.push(format!("The code works once, for {CODE_MINUTES} minutes."));
    out
}

/// A chat refused a message because it is gone for the bot (its user blocked the bot, or
/// the chat no longer exists): it is unlinked, as `/unlink` would, so digests and alerts go
/// by email again instead of every later one failing there. Linking it again with a fresh
/// code undoes this. The same for a message from the outbox and a command's direct answer.
pub async fn chat_gone(
    db: &crate::store::Db,
    chat: crate::model::Chat,
    chat_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if db::unlink(db, chat.into(), chat_id, now).await? {
        metrics::counter!("cport_chats_gone_total", "channel" => chat.as_str()).increment(1);
    }
    Ok(())
}
