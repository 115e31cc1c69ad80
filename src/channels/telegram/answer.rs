//! An update, from polling or the webhook, read and answered: its command run, and its
//! answers sent in their chat's turn and order (behind the chat's answers waiting in the
//! outbox), or queued there for later.

use chrono::{DateTime, Utc};
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{ChatId, MessageId, UpdateKind};

use super::super::SendError;
use super::super::chat::{self, ChatMessage, Incoming, Input, Reply};
use super::{Telegram, send_error};
use crate::services::Services;
use crate::store::outbox::insert_message;

/// What an update asks for: a command to run, or a hint to tell its chat (an edit, an empty
/// message, a command in a group), which goes as an answer does, in its turn and order.
pub(super) enum Step {
    Run(Prepared),
    Tell(ChatId, ChatMessage),
}

/// An update read and ready to run: who sent what, where to answer.
pub(super) struct Prepared {
    pub(super) update_id: String,
    pub(super) incoming: Incoming,
    pub(super) chat: ChatId,
    pub(super) callback: Option<(teloxide::types::CallbackQueryId, MessageId)>,
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
    // A test's crash between the update's commit and its answers.
    state.faults.panic_if_armed("telegram:before-answer");
    execute(state, tg, p.chat, p.callback, replies, now, until).await;
    answered(state, &p.update_id).await;
}

/// Records that an update's answers went (or wait in the outbox): delivered again, it is
/// passed over. Not recorded (the store failing now), it is told it was done, once.
pub(super) async fn answered(state: &Services, update_id: &str) {
    let now = Utc::now();
    if let Err(e) =
        crate::store::chat::update_answered(&state.db, crate::model::Channel::Telegram, update_id, now).await
    {
        tracing::warn!(error = %e, update = update_id, "telegram: an update's answer could not be recorded as sent");
    }
}

/// How long an answer may still wait for its turn.
fn left(until: tokio::time::Instant) -> std::time::Duration {
    until.saturating_duration_since(tokio::time::Instant::now())
}

/// Reads an update; `None` when there is nothing to run (a group chat or an empty message
/// get their hint here).
pub(super) async fn prepare(tg: &Telegram, update: Update) -> Option<Step> {
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

pub(super) async fn execute(
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
    let mut behind = match crate::store::outbox::answers_waiting(&state.db, crate::model::Outlet::Telegram, &to).await {
        Ok(waiting) => waiting,
        Err(e) => {
            tracing::warn!(chat = chat.0, error = %e, "telegram: answers waiting not read; answering now");
            false
        }
    };
    // The chat speaks: it is reachable again, and its answers waiting out a failure go now.
    // (Written only when some wait: most commands, in a chat with none, take no write lock.)
    if behind
        && let Err(e) = crate::store::outbox::revive_answers(&state.db, crate::model::Outlet::Telegram, &to, now).await
    {
        tracing::warn!(chat = chat.0, error = %e, "telegram: the chat's failed answers could not be brought forward");
    }
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
                    let answered = tg.bot.answer_callback_query(id.clone()).text(text.clone()).await.map(|_| ());
                    // Not taken: the plain answer after the loop still stops the button's spinner.
                    noticed = answered.is_ok();
                    answered
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
