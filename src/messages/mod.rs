//! Outgoing messages as cport keeps them, in no provider's format: an email's rendered
//! parts and headers, a chat message's title, lines, picture and buttons, what the outbox
//! stores for each, and how sending one can fail. Composers write these; providers
//! (`channels`) deliver them.

pub mod compose;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// How a send failed, which decides what the dispatcher does next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Try again later (4xx, connection trouble, rate limits).
    #[error("{0}")]
    Transient(String),
    /// The provider asked us to wait this long (Telegram's and Discord's 429).
    #[error("rate limited; retry after {0:?}")]
    RateLimited(std::time::Duration),
    /// Never going to work (5xx, bad address): the message goes dead with these words.
    #[error("{0}")]
    Permanent(String),
    /// The receiving server refused the address itself (a `5.1.x` reply to RCPT TO): the
    /// message goes dead, and it counts against the contact as a hard bounce does.
    #[error("{0}")]
    AddressRefused(String),
}

/// What the outbox keeps for an email: rendered bodies and the headers that are not derived
/// from the row itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailPayload {
    pub to_name: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
    #[serde(default)]
    pub in_reply_to: Option<String>,
    #[serde(default)]
    pub references: Option<String>,
    /// Item keys shown (digests keep them to mark what is new next time).
    #[serde(default)]
    pub item_keys: Vec<String>,
}

impl EmailPayload {
    /// The outbox row that sends this email. `contact_id` ties it to a contact (bounces and
    /// suspensions apply); `reply_token` lets replies and bounces find it.
    pub fn queued(
        &self,
        contact_id: Option<&str>,
        kind: crate::model::MessageKind,
        idem_key: String,
        reply_token: Option<String>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> crate::store::outbox::NewMessage {
        crate::store::outbox::NewMessage {
            contact_id: contact_id.map(str::to_string),
            channel: crate::model::Outlet::Email,
            kind,
            idem_key,
            reply_token,
            recipient: self.to.clone(),
            subject: self.subject.clone(),
            payload: serde_json::to_string(self).unwrap_or_default(),
            next_attempt_at: at,
        }
    }
}

/// A Message-ID in cport's reply domain.
pub fn new_message_id(config: &Config) -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("<{id}@{}>", config.email.reply_domain)
}

/// A button under a message: it either sends `data` back to cport or opens a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Button {
    Action { label: String, data: String },
    Link { label: String, url: String },
}

impl Button {
    pub fn action(label: &str, data: impl Into<String>) -> Button {
        Button::Action { label: label.into(), data: data.into() }
    }
    pub fn link(label: &str, url: impl Into<String>) -> Button {
        Button::Link { label: label.into(), url: url.into() }
    }
}

/// A message for a chat, in no channel's format: each adapter renders the title, lines,
/// picture and rows of buttons its own way (Telegram HTML, a Discord embed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub title: String,
    pub lines: Vec<String>,
    /// Rows of buttons.
    pub buttons: Vec<Vec<Button>>,
    /// A picture to show with the message, as TOT's data names it: a `/media` path (its
    /// file is uploaded with the message, see [`ChatMessage::attach_picture`]) or a web
    /// address of TOT's.
    #[serde(alias = "photo_url")]
    pub photo: Option<String>,
    /// The picture's file name and bytes, read when the message is sent.
    #[serde(skip)]
    pub photo_file: Option<(String, Vec<u8>)>,
    /// A user to mention (Discord posts in a shared channel).
    pub mention: Option<String>,
    /// Says nothing of any one client (a banner to every client): shown whole where others
    /// may read it too, as in a shared Discord channel, where the rest is only pointed at.
    #[serde(default)]
    pub public: bool,
}

impl ChatMessage {
    /// Reads a `/media` picture's file so that it is uploaded with the message: pictures
    /// are private, so a chat provider could not fetch them by address. A picture whose
    /// file is missing is left out (the message still goes).
    pub async fn attach_picture(&mut self, media_dir: &std::path::Path) {
        let Some(path) = self.photo.as_deref().filter(|p| p.starts_with("/media/")) else {
            return;
        };
        let file = crate::model::media_file(media_dir, path);
        let read = match &file {
            Some(f) => tokio::fs::read(f).await.ok(),
            None => None,
        };
        match (file, read) {
            (Some(f), Some(bytes)) => {
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                self.photo_file = Some((name, bytes));
            }
            _ => {
                tracing::warn!(picture = %path, "a chat picture's file is missing; the message goes without it");
                self.photo = None;
            }
        }
    }

    pub fn text(title: impl Into<String>, lines: Vec<String>) -> ChatMessage {
        ChatMessage { title: title.into(), lines, ..Default::default() }
    }

    /// The outbox row that sends this message to `chat_id` on `channel` (like
    /// `EmailPayload::queued` for email).
    pub fn queued(
        self,
        contact_id: Option<&str>,
        channel: crate::model::Chat,
        chat_id: &str,
        kind: crate::model::MessageKind,
        idem_key: String,
        at: DateTime<Utc>,
    ) -> crate::store::outbox::NewMessage {
        crate::store::outbox::NewMessage {
            contact_id: contact_id.map(str::to_string),
            channel: channel.into(),
            kind,
            idem_key,
            reply_token: None,
            recipient: chat_id.into(),
            subject: self.title.clone(),
            payload: serde_json::to_string(&ChatPayload { message: Some(self), items: vec![], reminder: false })
                .unwrap_or_default(),
            next_attempt_at: at,
        }
    }
}

/// What the outbox holds for a chat message: ready to send, or (alerts) the item keys to
/// render when it goes, so resolved items are left out.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatPayload {
    #[serde(default)]
    pub message: Option<ChatMessage>,
    /// An alert's items, rendered when it goes; the items a digest lists (read when it has
    /// waited out a retry, to tell whether any is still open).
    #[serde(default)]
    pub items: Vec<String>,
    /// An alert staff sent as a reminder ([`crate::store::outbox::AlertPayload`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reminder: bool,
}

impl ChatPayload {
    /// A digest's payload: the message as written and the keys of the items it lists.
    pub fn digest(message: ChatMessage, items: Vec<String>) -> String {
        serde_json::to_string(&ChatPayload { message: Some(message), items, reminder: false }).unwrap_or_default()
    }
}

/// The brand as every template sees it (`brand.name`, `brand.colour`, `brand.logo_url`):
/// emails, answers and portal pages alike.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Brand<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub logo_url: &'a str,
}

impl<'a> Brand<'a> {
    pub fn of(b: &'a crate::config::BrandingConfig) -> Brand<'a> {
        Brand { name: &b.name, colour: &b.colour, logo_url: &b.logo_url }
    }
}
