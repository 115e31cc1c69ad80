//! Discord through serenity: messages out over the REST API (direct messages, or a
//! configured channel), slash commands and buttons in on `POST /discord/interactions`,
//! each request's Ed25519 signature checked first.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::future::BoxFuture;
use serde::Deserialize;
use serenity::all::{
    ButtonStyle, ChannelId, CommandOptionType, CreateActionRow, CreateAttachment, CreateButton, CreateCommand,
    CreateCommandOption, CreateEmbed, CreateInputText, CreateInteractionResponse, CreateInteractionResponseFollowup,
    CreateInteractionResponseMessage, CreateMessage, CreateModal, EditInteractionResponse, InputTextStyle, UserId,
};
use serenity::http::{Http, HttpBuilder};
use serenity::interactions_endpoint::Verifier;

use super::SendError;
use super::chat::{self, Button, ChatMessage, ChatSender, Incoming, Input, Reply};
use crate::actions::commands::COMMANDS;
use crate::config::Config;
use crate::model::shortened;
use crate::services::Services;

/// Discord's own API base; any other `discord.api_url` is used as a proxy base.
const DISCORD: &str = "https://discord.com";
/// How old a signed request may be (replays of captured requests are refused).
const MAX_SKEW_SECONDS: i64 = 300;
/// The custom ids of the form a question is asked in, and of its one field.
const ANSWER_FORM: &str = "answer";
const ANSWER_FIELD: &str = "text";
/// The most characters a button's custom id may carry.
const CUSTOM_ID_CHARS: usize = 100;

/// The Discord channel: a REST client and the key that checks interactions.
pub struct Discord {
    pub http: Arc<Http>,
    verifier: Option<Verifier>,
    channel_id: Option<ChannelId>,
    colour: u32,
    /// Work taking longer than this is answered "thinking…" first and edited in later
    /// (Discord waits 3 seconds for the first answer).
    pub defer_after: Duration,
    /// The work and answers still going after an interaction's first answer: a stop waits for
    /// them (within its grace), as it waits for open requests.
    pub answers: tokio_util::task::TaskTracker,
}

impl Discord {
    pub fn new(config: &Config) -> Discord {
        let cfg = &config.discord;
        let mut b = HttpBuilder::new(cfg.token.expose());
        // serenity's own HTTP client never gives up on a request: a Discord that stops
        // answering would hold an outbox sender for the whole of its handed-over wait (the
        // request counts as handed over from its first byte). Each request is cut off at
        // `outbox.send_timeout_seconds`, as every provider call is.
        match reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(config.outbox.send_timeout_seconds))
            .build()
        {
            Ok(client) => b = b.client(client),
            Err(e) => tracing::warn!(error = %e, "discord: no HTTP client with a time limit; serenity's own is used"),
        }
        // serenity's rate limiter sends straight to discord.com, ignoring the proxy base, so
        // another base goes without it (a proxy in front of Discord keeps the limits there);
        // against Discord itself the limiter stays on.
        if cfg.api_url.trim_end_matches('/') != DISCORD {
            b = b.proxy(cfg.api_url.trim_end_matches('/')).ratelimiter_disabled(true);
        }
        if let Some(id) = crate::model::discord_id(&cfg.application_id) {
            b = b.application_id(id.into());
        }
        let colour = embed_colour(&config.branding.colour);
        Discord {
            http: Arc::new(b.build()),
            verifier: cfg.verifier(),
            channel_id: crate::model::discord_id(&cfg.channel_id).map(ChannelId::from),
            colour,
            defer_after: Duration::from_millis(cfg.defer_after_ms),
            answers: tokio_util::task::TaskTracker::new(),
        }
    }

    fn embed(&self, m: &ChatMessage) -> CreateEmbed {
        let mut e = CreateEmbed::new().title(shortened(&m.title, 256).into_owned()).colour(self.colour);
        if !m.lines.is_empty() {
            e = e.description(shortened(&m.lines.join("\n"), 4096).into_owned());
        }
        // TOT's own pictures go as an attachment of the message (they are private); a web
        // address of TOT's is passed on.
        match (&m.photo_file, m.photo.as_deref()) {
            (Some((name, _)), _) => e = e.image(format!("attachment://{name}")),
            (None, Some(p)) if p.starts_with("http") => e = e.image(p),
            _ => {}
        }
        e
    }

    /// Rows of at most five buttons, at most five rows (Discord's limits).
    fn components(m: &ChatMessage) -> Vec<CreateActionRow> {
        m.buttons
            .iter()
            .map(|row| {
                row.iter()
                    // Discord refuses a custom id over 100 characters: such a button is left
                    // out (the text still says how).
                    .filter(|b| !matches!(b, Button::Action { data, .. } if data.chars().count() > CUSTOM_ID_CHARS))
                    .take(5)
                    .collect::<Vec<_>>()
            })
            .filter(|row| !row.is_empty())
            .take(5)
            .map(|row| {
                CreateActionRow::Buttons(
                    row.into_iter()
                        .map(|b| match b {
                            Button::Action { label, data } => {
                                let style = if label.starts_with("Reject") || label == "Cancel" {
                                    ButtonStyle::Secondary
                                } else {
                                    ButtonStyle::Primary
                                };
                                CreateButton::new(data.clone()).label(shortened(label, 80).into_owned()).style(style)
                            }
                            Button::Link { label, url } => {
                                CreateButton::new_link(url.clone()).label(shortened(label, 80).into_owned())
                            }
                        })
                        .collect(),
                )
            })
            .collect()
    }

    fn response_message(&self, m: &ChatMessage) -> CreateInteractionResponseMessage {
        CreateInteractionResponseMessage::new().embed(self.embed(m)).components(Self::components(m)).ephemeral(true)
    }

    /// Registers every command of the grammar (plus `link`, `unlink`, and the staff
    /// commands) as global slash commands.
    pub async fn register_commands(&self) -> Result<usize, serenity::Error> {
        let commands = slash_commands();
        let n = commands.len();
        serenity::all::Command::set_global_commands(&self.http, commands).await?;
        Ok(n)
    }
}

/// What a failed [`Discord::register_commands`] says: nothing answering at `api_url` (a wrong
/// `discord.api_url`, no network) is no refusal by Discord, and is not said as one.
pub fn registration_error(e: &serenity::Error, api_url: &str) -> String {
    match e {
        serenity::Error::Http(serenity::http::HttpError::Request(r)) => {
            let why = std::error::Error::source(r).map_or(r.to_string(), |s| s.to_string());
            format!("could not reach Discord at {api_url} (discord.api_url): {}", crate::model::shown(&why, 300))
        }
        _ => format!("Discord refused the commands: {e}"),
    }
}

/// The slash commands: the grammar's words, each with one text option when it takes words.
fn slash_commands() -> Vec<CreateCommand> {
    let mut out: Vec<CreateCommand> = COMMANDS
        .iter()
        .map(|(name, usage, what)| {
            let name = name.as_str().to_ascii_lowercase();
            let c = CreateCommand::new(&name).description(shortened(what, 100).into_owned());
            if *usage == name.to_ascii_uppercase() && name != "link" {
                return c;
            }
            let (opt, desc, required) = match name.as_str() {
                "link" => ("code", "a linking code from the portal (empty: a portal link)".to_string(), false),
                _ => ("args", shortened(usage, 100).into_owned(), usage.contains(" <")),
            };
            c.add_option(CreateCommandOption::new(CommandOptionType::String, opt, desc).required(required))
        })
        .collect();
    out.push(CreateCommand::new("unlink").description("stop messages to you here"));
    out.push(
        CreateCommand::new("broadcast").description("TOT staff: post a banner").add_option(
            CreateCommandOption::new(CommandOptionType::String, "args", "urgent|warning|info <title> | <body>")
                .required(true),
        ),
    );
    out.push(CreateCommand::new("outbox").description("TOT staff: outbox messages by status"));
    out
}

/// The title of every message in a shared channel, whatever it is about.
const SHARED_TITLE: &str = "Something at TOT needs you";

impl ChatSender for Discord {
    fn send<'a>(&'a self, chat_id: &'a str, message: &'a ChatMessage) -> BoxFuture<'a, Result<String, SendError>> {
        Box::pin(async move {
            let user = crate::model::discord_id(chat_id).ok_or_else(|| {
                SendError::Permanent(format!("{} is not a Discord user id", crate::model::quoted(chat_id)))
            })?;
            let channel = match self.channel_id {
                Some(c) => c,
                None => UserId::from(user).create_dm_channel(&*self.http).await.map_err(send_error)?.id,
            };
            let sent = match channel.send_message(&*self.http, self.create(user, message)).await {
                // A picture Discord will not take (over its upload limit, a type it does not
                // show, an address it refuses) must not cost the message: it goes without it.
                Err(e)
                    if refused(&e)
                        && self.channel_id.is_none()
                        && (message.photo_file.is_some() || message.photo.is_some()) =>
                {
                    tracing::warn!(error = %e, "discord: the message with its picture was refused; sending it without");
                    let plain = ChatMessage { photo: None, photo_file: None, ..message.clone() };
                    channel.send_message(&*self.http, self.create(user, &plain)).await
                }
                other => other,
            }
            .map_err(send_error)?;
            Ok(format!("discord:{}:{}", channel.get(), sent.id.get()))
        })
    }
}

impl Discord {
    /// The message to post: whole in a direct message; in a shared channel a title that says
    /// nothing of the client and the action buttons only, since a signed link would sign in
    /// whoever clicks it and the details (an alert's title names the job and the supplier)
    /// are the client's. A button press is answered to the presser alone, as the presser.
    fn create(&self, user: std::num::NonZeroU64, message: &ChatMessage) -> CreateMessage {
        // A banner to every client is everyone's to read: shown whole, its reader mentioned.
        if self.channel_id.is_some() && message.public {
            let whole = ChatMessage { photo: None, photo_file: None, buttons: vec![], ..message.clone() };
            return CreateMessage::new().content(format!("<@{user}>")).embed(self.embed(&whole));
        }
        if self.channel_id.is_none() {
            let mut b = CreateMessage::new().embed(self.embed(message)).components(Self::components(message));
            if let Some((name, bytes)) = &message.photo_file {
                b = b.add_file(CreateAttachment::bytes(bytes.clone(), name.clone()));
            }
            return b;
        }
        let mut shared = ChatMessage::text(
            SHARED_TITLE.to_string(),
            vec!["Use the buttons, or /items here: only you see the answers.".into()],
        );
        shared.buttons = message
            .buttons
            .iter()
            .map(|row| row.iter().filter(|b| matches!(b, Button::Action { .. })).cloned().collect())
            .filter(|row: &Vec<Button>| !row.is_empty())
            .collect();
        CreateMessage::new()
            .content(format!("<@{user}>"))
            .embed(self.embed(&shared))
            .components(Self::components(&shared))
    }
}

/// Discord refused the request as it was made (a 4xx other than a rate limit): sent again
/// the same way, it would be refused again.
fn refused(e: &serenity::Error) -> bool {
    use serenity::http::HttpError;
    matches!(e, serenity::Error::Http(HttpError::UnsuccessfulRequest(r))
        if r.status_code.is_client_error() && r.status_code.as_u16() != 429)
}

/// What a failed REST call means for the outbox.
fn send_error(e: serenity::Error) -> SendError {
    use serenity::http::HttpError;
    match &e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => match r.status_code.as_u16() {
            429 => SendError::RateLimited(Duration::from_secs(5)),
            // 50007, "Cannot send messages to this user": they left every server the bot is
            // in, blocked it, or closed their direct messages. Said as a refused address, so
            // the chat is unlinked rather than every later message to it going dead.
            403 if r.error.code == 50007 => SendError::AddressRefused(format!("Discord: {e}")),
            // 10013, "Unknown User": the account is gone; the same, so it is unlinked.
            404 if r.error.code == 10013 => SendError::AddressRefused(format!("Discord: {e}")),
            // Refusals of cport's own set-up, the same for every message (as a webhook's
            // 401, 403 and 404 are): tried again with backoff while it is put right, not
            // each message made dead at its first try.
            401 => SendError::Transient(format!("Discord refused discord.token: {e}")),
            403 if matches!(r.error.code, 50001 | 50013) => SendError::Transient(format!(
                "Discord: the bot may not post there (discord.channel_id, or its permissions in that channel): {e}"
            )),
            404 if r.error.code == 10003 => {
                SendError::Transient(format!("Discord: discord.channel_id names no channel the bot can see: {e}"))
            }
            s if s >= 500 => SendError::Transient(format!("Discord: {e}")),
            _ => SendError::Permanent(format!("Discord: {e}")),
        },
        serenity::Error::Http(HttpError::Request(r)) => {
            let mut msg = format!("Discord: {e}");
            let mut source = std::error::Error::source(r);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            SendError::Transient(msg)
        }
        serenity::Error::Io(_) => SendError::Transient(format!("Discord: {e}")),
        _ => SendError::Permanent(format!("Discord: {e}")),
    }
}

mod interaction;
pub use interaction::interactions;

/// The brand colour as an embed's: `#1f3a5f`, `#f00` (each digit doubled) or `#1f3a5fcc`
/// (the alpha left out, as embeds have none).
fn embed_colour(colour: &str) -> u32 {
    let hex = colour.trim_start_matches('#');
    let six: String = match hex.len() {
        3 => hex.chars().flat_map(|c| [c, c]).collect(),
        _ => hex.chars().take(6).collect(),
    };
    u32::from_str_radix(&six, 16).unwrap_or(0x1f3a5f)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_brand_colour_in_every_written_form_is_the_embeds() {
        assert_eq!(super::embed_colour("#1f3a5f"), 0x1f3a5f);
        assert_eq!(super::embed_colour("#f00"), 0xff0000);
        assert_eq!(super::embed_colour("#1f3a5fcc"), 0x1f3a5f);
    }
}
