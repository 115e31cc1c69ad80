//! Telegram through teloxide: long polling (or a webhook), commands and inline buttons in,
//! digests, alerts and answers out. Every message waits for its turn under Telegram's limits
//! (overall, and per chat per second and per minute, kept in the store: see `Pace`); an
//! answer whose turn is more than a moment off, and a 429 `retry_after` that still comes
//! back, go to the outbox for later. Here the bot (its client, its pace, sending), polling
//! and the webhook; an update's reading and answering are in `answer`, a message's HTML in
//! `render`.

mod answer;
mod render;

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use futures::future::BoxFuture;
use teloxide::prelude::*;
use teloxide::types::{
    AllowedUpdate, BotCommand, ChatId, InlineKeyboardMarkup, InputFile, MessageId, ParseMode, UpdateKind,
};
use teloxide::{ApiError, RequestError};

use super::SendError;
use super::chat::{self, ChatMessage, ChatSender, Reply};
use crate::actions::commands::COMMANDS;
use crate::config::{TelegramConfig, TelegramMode};
use crate::services::Services;
use answer::{Step, answered, execute, prepare, process};
use render::{cut, render};

/// Telegram's limit on one message's text (and a photo caption's).
const TEXT_LIMIT: usize = 4096;
const CAPTION_LIMIT: usize = 1024;
/// The longest a batch's answers wait for their chats' turns (Telegram's pace for one chat)
/// before those still waiting are queued in the outbox for then: the next poll waits for the
/// batch, and one chat sending a flood must not hold up every other chat.
const ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// The longest an outbox sender waits for a chat's turn: a message whose turn is further off
/// is sent again then (not counted as a failed try), so a chat with many messages waiting
/// (a flood's answers) holds no sender from every other message. At 30 s, a flood of 200
/// commands from one chat held all four senders for eight minutes, urgent banners and every
/// email behind them; at 2 s a sender moves on at once.
const OUTBOX_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The bot: teloxide's client, and the pace its messages keep.
pub struct Telegram {
    pub bot: Bot,
    pace: Pace,
    /// The bot's own user name (`getMe`), once registered: a group command addressed to
    /// another bot (`/help@other_bot`) is not this bot's to answer.
    username: std::sync::OnceLock<String>,
}

/// Telegram's limits (per chat per second and per minute, and overall), kept before each
/// message in the store (see [`crate::store::limits::reserve`]), so that every process on
/// one database keeps them together. teloxide's `Throttle` adaptor keeps them in one
/// process only, and releases waiting messages in 250 ms ticks.
struct Pace {
    db: crate::store::Db,
    per_second: u32,
    chat_per_second: u32,
    chat_per_minute: u32,
}

impl Pace {
    fn new(cfg: &TelegramConfig, db: crate::store::Db) -> Pace {
        Pace {
            db,
            per_second: cfg.messages_per_second,
            chat_per_second: cfg.chat_messages_per_second,
            chat_per_minute: cfg.chat_messages_per_minute,
        }
    }

    /// Waits for the next moment a message to `chat` may go. A moment further off than `most`
    /// is not waited for: the answer is Telegram's own "retry after", so the caller queues the
    /// message for then (an answer to a chat sending a flood must not hold up every other
    /// chat's answers, nor an outbox sender every other message, while it waits its turn).
    async fn wait(&self, chat: i64, most: std::time::Duration) -> Result<(), RequestError> {
        use crate::store::limits::{Pace as Rate, next_turn, reserve};
        let rates = [
            Rate::per(format!("telegram:{chat}:second"), self.chat_per_second, 1000),
            Rate::per(format!("telegram:{chat}:minute"), self.chat_per_minute, 60_000),
            Rate::per("telegram".into(), self.per_second, 1000),
        ];
        let now = chrono::Utc::now().timestamp_millis();
        // A turn further off than `most` is found without being taken: a message queued for
        // then takes no turn from those sent meanwhile, and finds its own free when it goes.
        if let Ok(go) = next_turn(&self.db, &rates, now).await
            && go - now > i64::try_from(most.as_millis()).unwrap_or(i64::MAX)
        {
            let seconds = u32::try_from((go - now) / 1000 + 1).unwrap_or(u32::MAX);
            return Err(RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(seconds)));
        }
        let go = match reserve(&self.db, &rates, now).await {
            Ok(go) => go,
            Err(e) => {
                // Without the store, the slowest pace is kept: one chat message a second.
                tracing::warn!(error = %e, "the chat pace could not be read; waiting a second");
                now + 1000
            }
        };
        if go > now {
            tokio::time::sleep(std::time::Duration::from_millis((go - now) as u64)).await;
        }
        Ok(())
    }
}

impl Telegram {
    pub fn new(cfg: &TelegramConfig, db: crate::store::Db) -> Result<Telegram, String> {
        let url = reqwest::Url::parse(&cfg.api_url).map_err(|e| format!("telegram.api_url: {e}"))?;
        // teloxide's client gives up on any call after 17 s and does not lengthen that for a
        // long poll, so a getUpdates waiting `poll_timeout_seconds` (30 by default) for news
        // would fail on every quiet poll: the client waits the poll's time and 10 s more.
        let wait = std::time::Duration::from_secs(u64::from(cfg.poll_timeout_seconds) + 10)
            .max(std::time::Duration::from_secs(17));
        let client = teloxide::net::default_reqwest_settings()
            .timeout(wait)
            .build()
            .map_err(|e| format!("telegram: cannot make an HTTP client: {e}"))?;
        Ok(Telegram {
            bot: Bot::with_client(cfg.token.expose(), client).set_api_url(url),
            pace: Pace::new(cfg, db),
            username: std::sync::OnceLock::new(),
        })
    }

    /// Registers the commands (`setMyCommands`) and the delivery mode: no webhook for long
    /// polling, or cport's webhook URL with its secret.
    /// The bot's command menu. Only a convenience: while Telegram refuses it, commands
    /// typed in full still work.
    pub async fn register_commands(&self) -> Result<(), RequestError> {
        let mut commands: Vec<BotCommand> =
            COMMANDS.iter().map(|(name, _, what)| BotCommand::new(name.as_str().to_ascii_lowercase(), *what)).collect();
        commands.push(BotCommand::new("start", "link this chat: /start CODE"));
        commands.push(BotCommand::new("unlink", "stop messages to this chat"));
        self.bot.set_my_commands(commands).await?;
        Ok(())
    }

    /// How updates arrive: the webhook set (webhook mode) or taken away (polling, which
    /// Telegram refuses while one is set).
    pub async fn register(&self, state: &Services) -> Result<(), RequestError> {
        let cfg = &state.config.telegram;
        // Only a group's hint needs the name: a Telegram that will not give it stops nothing
        // (it is asked again when a group command names a bot).
        self.learn_name().await;
        if cfg.mode == TelegramMode::Webhook {
            let url = format!("{}/telegram/webhook", state.config.public_url.trim_end_matches('/'));
            let url = reqwest::Url::parse(&url).map_err(|e| RequestError::Io(Arc::new(std::io::Error::other(e))))?;
            self.bot.set_webhook(url).secret_token(cfg.webhook_secret.expose().to_string()).await?;
        } else {
            self.bot.delete_webhook().await?;
        }
        Ok(())
    }

    /// Asks Telegram the bot's own name (`getMe`) unless it is known.
    async fn learn_name(&self) {
        if self.username.get().is_some() {
            return;
        }
        match self.bot.get_me().await {
            Ok(me) => {
                let _ = self.username.set(me.username().to_string());
            }
            Err(e) => {
                tracing::warn!(error = %e, "telegram: the bot's own name (getMe) is not known; group commands naming a bot get no hint")
            }
        }
    }

    /// Whether a command names another bot (`/help@other_bot`), or any bot while this one's
    /// name cannot be learnt: in a group, several bots share the commands.
    async fn addressed_elsewhere(&self, text: &str) -> bool {
        let head = text.split_whitespace().next().unwrap_or("");
        let Some((_, bot)) = head.split_once('@') else { return false };
        self.learn_name().await;
        self.username.get().is_none_or(|me| !bot.eq_ignore_ascii_case(me))
    }

    /// Sends `m` to `chat` in its turn, waiting for it at most `most` (see [`Pace::wait`]).
    async fn send_to(
        &self,
        chat: ChatId,
        m: &ChatMessage,
        most: std::time::Duration,
    ) -> Result<teloxide::types::Message, RequestError> {
        self.pace.wait(chat.0, most).await?;
        let (html, keyboard) = render(m);
        // TOT's own pictures are uploaded (they are private); a web address of TOT's is
        // passed on for Telegram to fetch.
        let photo = match (&m.photo_file, m.photo.as_deref()) {
            (Some((name, bytes)), _) => Some(InputFile::memory(bytes.clone()).file_name(name.clone())),
            (None, Some(p)) if p.starts_with("http") => reqwest::Url::parse(p).ok().map(InputFile::url),
            _ => None,
        };
        if let Some(photo) = photo {
            let mut req =
                self.bot.send_photo(chat, photo).caption(cut(&html, CAPTION_LIMIT)).parse_mode(ParseMode::Html);
            if let Some(k) = keyboard.clone() {
                req = req.reply_markup(k);
            }
            match req.await {
                // A picture Telegram will not take (too large, an address it cannot fetch, a
                // type it does not show) must not cost the message: it goes as text alone.
                Err(RequestError::Api(e)) => {
                    tracing::warn!(chat = chat.0, error = %e, "telegram: the picture was refused; sending the text alone");
                }
                other => return other,
            }
        }
        let mut req = self.bot.send_message(chat, cut(&html, TEXT_LIMIT)).parse_mode(ParseMode::Html);
        if let Some(k) = keyboard {
            req = req.reply_markup(k);
        }
        req.await
    }

    async fn edit(
        &self,
        chat: ChatId,
        id: MessageId,
        m: &ChatMessage,
        most: std::time::Duration,
    ) -> Result<(), RequestError> {
        self.pace.wait(chat.0, most).await?;
        let (html, keyboard) = render(m);
        let mut req = self.bot.edit_message_text(chat, id, cut(&html, TEXT_LIMIT)).parse_mode(ParseMode::Html);
        req = req.reply_markup(keyboard.unwrap_or_else(|| InlineKeyboardMarkup::new(Vec::<Vec<_>>::new())));
        req.await.map(|_| ())
    }
}

impl ChatSender for Telegram {
    fn send<'a>(&'a self, chat_id: &'a str, message: &'a ChatMessage) -> BoxFuture<'a, Result<String, SendError>> {
        Box::pin(async move {
            let chat: i64 =
                chat_id.parse().map_err(|_| SendError::Permanent(format!("`{chat_id}` is not a Telegram chat id")))?;
            let group = (!ChatId(chat).is_user()).then(|| render::for_group(message));
            let message = group.as_ref().unwrap_or(message);
            let sent = self.send_to(ChatId(chat), message, OUTBOX_WAIT).await.map_err(send_error)?;
            Ok(format!("telegram:{chat}:{}", sent.id.0))
        })
    }
}

/// What a failed Bot API call means for the outbox.
pub(super) fn send_error(e: RequestError) -> SendError {
    match e {
        RequestError::RetryAfter(s) => SendError::RateLimited(s.duration()),
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            SendError::Transient(format!("Telegram: {e}"))
        }
        // The chat itself is gone for the bot: its user blocked it or was deleted, or the
        // chat no longer exists. Said as a refused address, so the chat is unlinked rather
        // than every later message to it going dead the same way.
        RequestError::Api(
            ApiError::BotBlocked
            | ApiError::ChatNotFound
            | ApiError::UserDeactivated
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::BotKickedFromChannel
            | ApiError::CantInitiateConversation,
        ) => SendError::AddressRefused(format!("Telegram: {e}")),
        // teloxide knows some refusals by older words ("Unauthorized: bot was kicked…"); the
        // Bot API now says `Forbidden: …` for every chat the bot may not write to (kicked,
        // blocked, a user who never pressed Start, no right to post): the chat is gone too.
        RequestError::Api(ApiError::Unknown(ref text)) if text.trim_start().starts_with("Forbidden") => {
            SendError::AddressRefused(format!("Telegram: {e}"))
        }
        // A group that became a supergroup has a new id: this one takes nothing more, and the
        // new one is TOT's record's to give (or a new link's).
        RequestError::MigrateToChatId(to) => SendError::AddressRefused(format!(
            "Telegram: the group became a supergroup with the id {to}; link that chat, or give its id in TOT's record"
        )),
        // teloxide keeps the description, not the status: Telegram begins a refusal of the
        // request itself with its class (`Bad Request: …`, `Forbidden: …`); anything else
        // (`Bad Gateway`, `Gateway Timeout`, `Internal Server Error`) is Telegram's own
        // trouble, tried again.
        RequestError::Api(ApiError::Unknown(ref text)) if !refusal(text) => {
            SendError::Transient(format!("Telegram: {e}"))
        }
        other => SendError::Permanent(format!("Telegram: {other}")),
    }
}

/// A description Telegram gives a request it refuses (a 4xx), not its own failure. A 429
/// that came without its `retry_after` is no refusal: it is tried again.
fn refusal(text: &str) -> bool {
    ["Bad Request", "Forbidden", "Unauthorized", "Not Found", "Conflict"]
        .iter()
        .any(|class| text.trim_start().starts_with(class))
}

/// Tries at setting the command menu, a minute apart, before it is left for the next start.
const MENU_TRIES: usize = 24 * 60;

/// How often a process that does not poll Telegram (another holds the poller's lock) asks
/// for the lock again.
const POLLER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long every poll may fail before the poller lets its lock go for another process.
const POLL_FAILING_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Long polling until shutdown. Written out rather than teloxide's dispatcher so polling and
/// the webhook share one handler and polling stops on cport's own shutdown signal. Updates
/// of one batch run concurrently, one chat's in order.
pub async fn run_polling(state: Services, tg: Arc<Telegram>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    // The command menu is tried beside the updates, never before them: a Telegram that
    // refuses it must not stop the bot answering.
    let (menu, mut menu_stop) = (tg.clone(), shutdown.clone());
    tokio::spawn(async move {
        for _ in 0..MENU_TRIES {
            match menu.register_commands().await {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "telegram: could not set the command menu; retrying in 60 s"),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                _ = menu_stop.changed() => return,
            }
        }
    });
    loop {
        match tg.register(&state).await {
            Ok(()) => break,
            Err(e) => {
                // Counted with the failed polls: a revoked token fails here for ever, and no
                // chat command is heard meanwhile.
                metrics::counter!("cport_telegram_poll_errors_total").increment(1);
                tracing::warn!(error = %e, "telegram: could not register commands; retrying in 10 s");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
    if state.config.telegram.mode == TelegramMode::Webhook {
        tracing::info!("telegram: webhook mode, updates arrive on /telegram/webhook");
        // Nothing to poll; the task waits for shutdown so its supervisor sees it running.
        let _ = shutdown.changed().await;
        return;
    }
    tracing::info!("telegram: long polling");
    let timeout = state.config.telegram.poll_timeout_seconds;
    let mut offset: i32 = 0;
    use crate::store::ledgers;
    let mut lock: Option<ledgers::LeaderLock> = None;
    // Since when every poll has failed, if the last did.
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        state.faults.panic_if_armed("task:telegram");
        // On PostgreSQL, one process of those sharing the store polls: the one holding the
        // poller's lock. The others ask for it now and then, and take over when its holder
        // stops (its connection, and the lock with it, ends) or lets it go, unable to reach
        // Telegram for a minute (its host's network may be at fault, not Telegram).
        if matches!(state.db, crate::store::Db::Postgres(_)) {
            if lock.is_some() && failing_since.is_some_and(|t| t.elapsed() > POLL_FAILING_FOR) {
                tracing::warn!(
                    "telegram: no poll has worked for a minute; the poller's lock is let go for another process"
                );
                lock = None;
                failing_since = None;
                tokio::select! {
                    _ = tokio::time::sleep(POLLER_WAIT * 2) => {}
                    _ = shutdown.changed() => break,
                }
            }
            let had = lock.is_some();
            let holds = tokio::select! {
                holds = ledgers::keep_lock(&state.db, &mut lock, ledgers::Leader::TelegramPoller) => holds,
                _ = shutdown.changed() => break,
            };
            if !holds {
                tokio::select! {
                    _ = tokio::time::sleep(POLLER_WAIT) => continue,
                    _ = shutdown.changed() => break,
                }
            }
            if !had {
                // Updates another poller took and did not confirm come again: each is
                // recorded once, so none runs twice.
                offset = 0;
            }
        }
        let req = tg.bot.get_updates().offset(offset).timeout(timeout).allowed_updates(vec![
            AllowedUpdate::Message,
            AllowedUpdate::EditedMessage,
            AllowedUpdate::CallbackQuery,
        ]);
        let result = tokio::select! {
            r = req.send() => r,
            _ = shutdown.changed() => break,
        };
        match result {
            Ok(updates) => {
                failing_since = None;
                if let Some(last) = updates.last() {
                    // The Bot API's offset is 32 bits: an id past it (never seen) asks from the
                    // top rather than overflowing.
                    offset = i32::try_from(last.id.0).map_or(i32::MAX, |id| id.saturating_add(1));
                }
                metrics::counter!("cport_telegram_updates_total").increment(updates.len() as u64);
                let ran = !updates.is_empty();
                run_batch(&state, &tg, updates).await;
                // A test's crash after a batch ran, before its offset is given back to Telegram.
                if ran {
                    state.faults.panic_if_armed("telegram:after-batch");
                }
            }
            Err(e) => {
                // Telegram's own "come back later" is Telegram answering, not a poll failing.
                let wait = match &e {
                    RequestError::RetryAfter(s) => s.duration(),
                    _ => {
                        failing_since.get_or_insert_with(std::time::Instant::now);
                        std::time::Duration::from_secs(2)
                    }
                };
                // Counted, so a bot that hears nothing (a revoked token, a second poller
                // taking its updates) is seen on a dashboard, not only in the log.
                metrics::counter!("cport_telegram_poll_errors_total").increment(1);
                tracing::warn!(error = %e, "telegram: getUpdates failed");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => break,
                }
            }
        }
    }
    tracing::info!("telegram: polling stopped");
}

fn chat_of(u: &Update) -> i64 {
    match &u.kind {
        UpdateKind::Message(m) | UpdateKind::EditedMessage(m) => m.chat.id.0,
        UpdateKind::CallbackQuery(q) => q.message.as_ref().map_or(0, |m| m.chat().id.0),
        _ => 0,
    }
}

/// Runs a batch: one task per chat, each chat's updates in order.
async fn run_batch(state: &Services, tg: &Arc<Telegram>, updates: Vec<Update>) {
    let mut by_chat: std::collections::BTreeMap<i64, Vec<Update>> = Default::default();
    for u in updates {
        by_chat.entry(chat_of(&u)).or_default().push(u);
    }
    // The next poll waits for this batch: its answers wait for their chats' turns until one
    // moment, and those still waiting then are queued for their turn.
    let until = tokio::time::Instant::now() + ANSWER_WAIT;
    let mut set = tokio::task::JoinSet::new();
    for (_, list) in by_chat {
        let (state, tg) = (state.clone(), tg.clone());
        set.spawn(async move {
            for u in list {
                process(&state, &tg, u, until).await;
            }
        });
    }
    // The whole batch is waited for, a call Telegram does not answer included (until the
    // client gives up): polling on without it would run that chat's next commands beside
    // the ones still running (an /unlink after a /start), and a stop would lose them.
    while set.join_next().await.is_some() {}
}

/// `POST /telegram/webhook`: Telegram's secret header must match. An update is run (and
/// recorded as seen, in one transaction) before Telegram is told 200, so a crash or a store
/// failure before then makes Telegram deliver it again. Its answers go out before the 200 too
/// (each waits for its chat's turn only a moment, [`ANSWER_WAIT`], then is queued): a
/// graceful shutdown waits for open requests, so it loses no answer.
pub async fn webhook(
    state: Services,
    tg: Option<Arc<Telegram>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let Some(tg) = tg else {
        return (StatusCode::NOT_FOUND, "telegram is not configured");
    };
    // Said apart from a wrong secret: an operator who left the mode as it was is not sent
    // after the secret.
    if state.config.telegram.mode != TelegramMode::Webhook {
        return (StatusCode::NOT_FOUND, "telegram.mode is \"polling\": updates are fetched, not taken here");
    }
    let want = state.config.telegram.webhook_secret.expose();
    let got = headers.get("x-telegram-bot-api-secret-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if want.is_empty() || !crate::links::constant_time_eq(got, want) {
        return (StatusCode::UNAUTHORIZED, "secret token missing or wrong");
    }
    let update: Update = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(_) => return (StatusCode::BAD_REQUEST, "body is not a Telegram update"),
    };
    // Recorded as seen together with what it changes (in `chat::handle`); this only spares
    // a known duplicate the work.
    match crate::store::chat::seen_update(&state.db, crate::model::Channel::Telegram, &update.id.0.to_string()).await {
        // One run but never answered goes on: `chat::handle_update` tells its chat.
        Ok(crate::store::chat::Sighting::New | crate::store::chat::Sighting::Unanswered) => {}
        Ok(crate::store::chat::Sighting::Answered) => return (StatusCode::OK, "seen before"),
        Err(e) => {
            tracing::error!(error = %e, "telegram webhook: store unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable; retry");
        }
    }
    let now = Utc::now();
    let until = tokio::time::Instant::now() + ANSWER_WAIT;
    let p = match prepare(&tg, update).await {
        None => return (StatusCode::OK, "nothing to run"),
        Some(Step::Tell(chat, hint)) => {
            execute(&state, &tg, chat, None, vec![Reply::Send(hint)], now, until).await;
            return (StatusCode::OK, "told");
        }
        Some(Step::Run(p)) => p,
    };
    match chat::handle_update(&state, &p.incoming, Some(&p.update_id), now).await {
        Ok(replies) => {
            execute(&state, &tg, p.chat, p.callback, replies, now, until).await;
            answered(&state, &p.update_id).await;
            (StatusCode::OK, "ok")
        }
        Err(e) => {
            tracing::error!(error = %e, "telegram webhook: could not handle an update; Telegram will retry");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable; retry")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way the Bot API says the bot may not write to a chat unlinks it, the words
    /// teloxide knows and those it does not alike; Telegram's own trouble is tried again.
    #[test]
    fn a_chat_the_bot_may_not_write_to_is_refused_whatever_the_words() {
        let unknown = |text: &str| RequestError::Api(ApiError::Unknown(text.to_string()));
        for refused in [
            unknown("Forbidden: bot can't initiate conversation with a user"),
            unknown("Forbidden: bot was kicked from the group chat"),
            unknown("Forbidden: not enough rights to send text messages to the chat"),
            RequestError::Api(ApiError::BotKickedFromSupergroup),
            RequestError::Api(ApiError::BotBlocked),
            RequestError::MigrateToChatId(ChatId(-100_123)),
        ] {
            let said = format!("{refused:?}");
            assert!(matches!(send_error(refused), SendError::AddressRefused(_)), "{said}");
        }
        assert!(matches!(send_error(unknown("Bad Gateway")), SendError::Transient(_)));
        assert!(matches!(send_error(unknown("Bad Request: message is too long")), SendError::Permanent(_)));
    }
}
