//! Telegram through teloxide: long polling (or a webhook), commands and inline buttons in,
//! digests, alerts and answers out. Every message waits for its turn under Telegram's limits
//! (overall, and per chat per second and per minute, kept in the store: see `Pace`); an
//! answer whose turn is more than a moment off, and a 429 `retry_after` that still comes
//! back, go to the outbox for later.
//! Over 500 lines: the adapter (sender, limits, polling, webhook, update decoding) is kept
//! whole so the Telegram surface is in one place, as `discord.rs` is for Discord.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use teloxide::prelude::*;
use teloxide::types::{
    AllowedUpdate, BotCommand, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId, ParseMode,
    UpdateKind,
};
use teloxide::{ApiError, RequestError};

use super::SendError;
use super::chat::{self, Button, ChatMessage, ChatSender, Incoming, Input, Reply};
use crate::actions::commands::COMMANDS;
use crate::config::{TelegramConfig, TelegramMode};
use crate::services::Services;
use crate::store::outbox::insert_message;

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
/// The most bytes a button's callback data may carry.
const CALLBACK_BYTES: usize = 64;

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
            let sent = self.send_to(ChatId(chat), message, OUTBOX_WAIT).await.map_err(send_error)?;
            Ok(format!("telegram:{chat}:{}", sent.id.0))
        })
    }
}

/// What a failed Bot API call means for the outbox.
fn send_error(e: RequestError) -> SendError {
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
            | ApiError::CantInitiateConversation,
        ) => SendError::AddressRefused(format!("Telegram: {e}")),
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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Cuts HTML text at a line break below `max`, so no tag is split. Telegram's limits count
/// UTF-16 code units (an emoji outside the basic plane is two), so that is what is counted;
/// the tags are counted too, which only errs short.
fn cut(html: &str, max: usize) -> String {
    let units = |s: &str| s.encode_utf16().count();
    if units(html) <= max {
        return html.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for line in html.lines() {
        // The line, its line break, and room for the closing ellipsis.
        if used + units(line) + 2 > max {
            out.push('…');
            break;
        }
        out.push_str(line);
        out.push('\n');
        used += units(line) + 1;
    }
    out
}

/// Telegram refuses buttons that open loopback or private addresses; such links go in
/// the text instead.
fn button_url(url: &str) -> Option<reqwest::Url> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?;
    let local = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    (!local).then_some(u)
}

/// HTML text (title in bold) and the inline keyboard.
fn render(m: &ChatMessage) -> (String, Option<InlineKeyboardMarkup>) {
    let mut html = String::new();
    if let Some(u) = &m.mention {
        html.push_str(&format!("<a href=\"tg://user?id={}\">@</a> ", escape(u)));
    }
    html.push_str(&format!("<b>{}</b>", escape(&m.title)));
    for l in &m.lines {
        html.push('\n');
        html.push_str(&escape(l));
    }
    let mut rows = vec![];
    for row in &m.buttons {
        let mut out = vec![];
        for b in row {
            match b {
                // Telegram refuses a whole message whose button carries more than 64 bytes
                // (`ap:` and a long id): such a button is left out, the text still says how.
                Button::Action { data, .. } if data.len() > CALLBACK_BYTES => {}
                Button::Action { label, data } => out.push(InlineKeyboardButton::callback(label.clone(), data.clone())),
                Button::Link { label, url } => match button_url(url) {
                    Some(u) => out.push(InlineKeyboardButton::url(label.clone(), u)),
                    None => html.push_str(&format!("\n{}: {}", escape(label), escape(url))),
                },
            }
        }
        if !out.is_empty() {
            rows.push(out);
        }
    }
    let keyboard = (!rows.is_empty()).then(|| InlineKeyboardMarkup::new(rows));
    (html, keyboard)
}

/// An update read and ready to run: who sent what, where to answer.
/// What an update asks for: a command to run, or a hint to tell its chat (an edit, an empty
/// message, a command in a group), which goes as an answer does, in its turn and order.
enum Step {
    Run(Prepared),
    Tell(ChatId, ChatMessage),
}

struct Prepared {
    update_id: String,
    incoming: Incoming,
    chat: ChatId,
    callback: Option<(teloxide::types::CallbackQueryId, MessageId)>,
}

/// Handles one update from polling: reads it, runs it, answers it.
/// Runs one update; its answers wait for their chat's turn until `until` at the latest (see
/// [`ANSWER_WAIT`]).
pub async fn process(state: &Services, tg: &Telegram, update: Update, until: tokio::time::Instant) {
    let now = Utc::now();
    let p = match prepare(tg, update).await {
        None => return,
        Some(Step::Tell(chat, hint)) => {
            return execute(state, tg, chat, None, vec![Reply::Send(hint)], now, until).await;
        }
        Some(Step::Run(p)) => p,
    };
    let replies = match chat::handle_update(state, &p.incoming, Some(&p.update_id), now).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "telegram: could not handle an update");
            vec![Reply::Send(ChatMessage::text(
                "Something went wrong on our side. Please try again in a minute.",
                vec![],
            ))]
        }
    };
    execute(state, tg, p.chat, p.callback, replies, now, until).await;
}

/// How long an answer may still wait for its turn.
fn left(until: tokio::time::Instant) -> std::time::Duration {
    until.saturating_duration_since(tokio::time::Instant::now())
}

/// Reads an update; `None` when there is nothing to run (a group chat or an empty message
/// get their hint here).
async fn prepare(tg: &Telegram, update: Update) -> Option<Step> {
    let update_id = update.id.0.to_string();
    let (incoming, chat, callback) = match update.kind {
        UpdateKind::Message(m) => {
            let from = m.from.as_ref()?;
            if !m.chat.is_private() {
                // Said to a command only: a group's talk (with the bot's privacy mode off,
                // every message) is not answered line by line.
                let command = m.text().filter(|t| t.trim_start().starts_with('/'));
                if let Some(t) = command
                    && !tg.addressed_elsewhere(t).await
                {
                    let no = "Please talk to me in a private chat: your jobs are not for the group.";
                    return Some(Step::Tell(m.chat.id, ChatMessage::text(no, vec![])));
                }
                return None;
            }
            let text = m.text().unwrap_or("").to_string();
            if text.trim().is_empty() {
                let hint = ChatMessage::text("Send a command such as /items or /help.", vec![]);
                return Some(Step::Tell(m.chat.id, hint));
            }
            (
                Incoming {
                    channel: crate::model::Channel::Telegram,
                    user_id: from.id.0.to_string(),
                    chat_id: m.chat.id.0.to_string(),
                    input: Input::Text(text),
                },
                m.chat.id,
                None,
            )
        }
        // An edit is not read again (what the first message said was done or answered): the
        // sender is told to send it anew rather than hear nothing.
        UpdateKind::EditedMessage(m) => {
            if m.chat.is_private() {
                let hint = ChatMessage::text("I read new messages, not edits: send it again as a new message.", vec![]);
                return Some(Step::Tell(m.chat.id, hint));
            }
            return None;
        }
        UpdateKind::CallbackQuery(q) => {
            let Some(msg) = q.message.as_ref() else {
                let _ = tg.bot.answer_callback_query(q.id.clone()).await;
                return None;
            };
            let chat = msg.chat().id;
            // A button on a message in a group (forwarded there, or a group TOT's record named)
            // acts for no one: the presser is told to use a private chat, as a command is.
            if !msg.chat().is_private() {
                let _ = tg.bot.answer_callback_query(q.id.clone()).await;
                let no = "Please talk to me in a private chat: your jobs are not for the group.";
                return Some(Step::Tell(chat, ChatMessage::text(no, vec![])));
            }
            (
                Incoming {
                    channel: crate::model::Channel::Telegram,
                    user_id: q.from.id.0.to_string(),
                    chat_id: chat.0.to_string(),
                    input: Input::Button(q.data.clone().unwrap_or_default()),
                },
                chat,
                Some((q.id.clone(), msg.id())),
            )
        }
        _ => return None,
    };
    Some(Step::Run(Prepared { update_id, incoming, chat, callback }))
}

async fn execute(
    state: &Services,
    tg: &Telegram,
    chat: ChatId,
    callback: Option<(teloxide::types::CallbackQueryId, MessageId)>,
    replies: Vec<Reply>,
    now: DateTime<Utc>,
    until: tokio::time::Instant,
) {
    let mut noticed = false;
    // Answers waiting in the outbox (their turn had not come) go first: this batch's queue
    // behind them, as do the rest of this batch once one of its answers is queued.
    let to = chat.0.to_string();
    // The chat speaks: it is reachable again, and its answers waiting out a failure go now.
    if let Err(e) = crate::store::outbox::revive_answers(&state.db, crate::model::Outlet::Telegram, &to, now).await {
        tracing::warn!(chat = chat.0, error = %e, "telegram: the chat's failed answers could not be brought forward");
    }
    let mut behind = match crate::store::outbox::answers_waiting(&state.db, crate::model::Outlet::Telegram, &to).await {
        Ok(waiting) => waiting,
        Err(e) => {
            tracing::warn!(chat = chat.0, error = %e, "telegram: answers waiting not read; answering now");
            false
        }
    };
    for r in replies {
        if behind && let Reply::Send(m) | Reply::Edit(m) | Reply::Ask { message: m, .. } = r {
            behind = queue_answer(state, chat, m, now, now).await;
            continue;
        }
        let result = match &r {
            Reply::Send(m) | Reply::Ask { message: m, .. } => tg.send_to(chat, m, left(until)).await.map(|_| ()),
            Reply::Edit(m) => match &callback {
                Some((_, id)) => match tg.edit(chat, *id, m, left(until)).await {
                    // The message says so already (a button pressed twice): nothing to send.
                    Err(RequestError::Api(teloxide::ApiError::MessageNotModified)) => Ok(()),
                    // A photo has a caption, not text: answer with a new message instead.
                    Err(RequestError::Api(_)) => tg.send_to(chat, m, left(until)).await.map(|_| ()),
                    other => other,
                },
                None => tg.send_to(chat, m, left(until)).await.map(|_| ()),
            },
            Reply::Notice(text) => match &callback {
                Some((id, _)) if !noticed => {
                    noticed = true;
                    tg.bot.answer_callback_query(id.clone()).text(text.clone()).await.map(|_| ())
                }
                _ => Ok(()),
            },
        };
        if let Err(e) = result {
            let msg = match r {
                Reply::Send(m) | Reply::Edit(m) | Reply::Ask { message: m, .. } => m,
                Reply::Notice(_) => continue,
            };
            behind |= later(state, chat, msg, send_error(e), now).await;
        }
    }
    if let (Some((id, _)), false) = (callback, noticed) {
        let _ = tg.bot.answer_callback_query(id).await;
    }
}

/// An answer Telegram would not take now (rate limit, network) goes to the outbox, due when
/// Telegram said to come back. Whether it was queued.
async fn later(state: &Services, chat: ChatId, m: ChatMessage, why: SendError, now: DateTime<Utc>) -> bool {
    let at = match &why {
        SendError::RateLimited(d) => now + chrono::Duration::from_std(*d).unwrap_or_default(),
        SendError::Transient(_) => now + chrono::Duration::seconds(5),
        SendError::AddressRefused(e) => {
            tracing::warn!(chat = chat.0, error = %e, "telegram: answer refused, the chat is gone for the bot; unlinked");
            if let Err(e) =
                crate::actions::chat_link::chat_gone(&state.db, crate::model::Chat::Telegram, &chat.0.to_string(), now)
                    .await
            {
                tracing::error!(chat = chat.0, error = %e, "telegram: the gone chat could not be unlinked");
            }
            return false;
        }
        SendError::Permanent(e) => {
            tracing::warn!(chat = chat.0, error = %e, "telegram: answer refused");
            return false;
        }
    };
    tracing::info!(chat = chat.0, error = %why, retry_at = %at, "telegram: answer queued for later");
    queue_answer(state, chat, m, at, now).await
}

/// Queues an answer in the outbox, due `at` (and after the chat's answers queued before it).
/// Whether the store took it.
async fn queue_answer(state: &Services, chat: ChatId, m: ChatMessage, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let idem = format!("answer:telegram:{}:{}", chat.0, crate::store::outbox::new_claim_token());
    let row =
        m.queued(None, crate::model::Chat::Telegram, &chat.0.to_string(), crate::model::MessageKind::Answer, idem, at);
    let queued = async {
        let mut tx = state.db.begin().await?;
        insert_message(&mut tx, &row, now).await?;
        tx.commit().await
    };
    match queued.await {
        Ok(()) => {
            state.wake_dispatch.notify_waiters();
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "telegram: answer lost, the store refused it");
            false
        }
    }
}

/// Tries at setting the command menu, a minute apart, before it is left for the next start.
const MENU_TRIES: usize = 24 * 60;

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
    loop {
        state.faults.panic_if_armed("task:telegram");
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
                if let Some(last) = updates.last() {
                    offset = last.id.0 as i32 + 1;
                }
                metrics::counter!("cport_telegram_updates_total").increment(updates.len() as u64);
                run_batch(&state, &tg, updates).await;
            }
            Err(e) => {
                let wait = match &e {
                    RequestError::RetryAfter(s) => s.duration(),
                    _ => std::time::Duration::from_secs(2),
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
    let want = state.config.telegram.webhook_secret.expose();
    let got = headers.get("x-telegram-bot-api-secret-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if state.config.telegram.mode != TelegramMode::Webhook
        || want.is_empty()
        || !crate::links::constant_time_eq(got, want)
    {
        return (StatusCode::UNAUTHORIZED, "secret token missing or wrong");
    }
    let update: Update = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(_) => return (StatusCode::BAD_REQUEST, "body is not a Telegram update"),
    };
    // Recorded as seen together with what it changes (in `chat::handle`); this only spares
    // a known duplicate the work.
    match crate::store::chat::seen_update(&state.db, crate::model::Channel::Telegram, &update.id.0.to_string()).await {
        Ok(false) => {}
        Ok(true) => return (StatusCode::OK, "seen before"),
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
    use super::cut;

    #[test]
    fn a_cut_counts_what_telegram_counts() {
        // 1,500 lines of two emoji: 3,000 characters but 6,000 UTF-16 units with the breaks
        // 7,500, past the 4,096 Telegram takes.
        let text = "\u{1f600}\u{1f600}\n".repeat(1_500);
        let out = cut(&text, 4096);
        assert!(out.encode_utf16().count() <= 4096, "{} units", out.encode_utf16().count());
        assert!(out.ends_with('…') && out.starts_with("\u{1f600}"));
        let short = "short\nenough";
        assert_eq!(cut(short, 4096), short);
    }
}
