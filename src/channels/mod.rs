//! Provider adapters. Each turns an outbox row into a delivery on its channel.

pub mod chat;
pub mod discord;
pub mod email;
pub mod imap;
pub mod inbound;
pub mod smtp;
pub mod telegram;
pub mod webhook;

pub use crate::messages::SendError;

/// The senders the engines deliver through (email, chat, webhooks), with the [`Services`]
/// they deref to. The digest scheduler, alerts and outbox take this, not the application.
///
/// [`Services`]: crate::services::Services
#[derive(Clone)]
pub struct Providers {
    pub services: crate::services::Services,
    pub mailer: email::Mailer,
    /// HTTP client for webhook pushes (one pool for the process).
    pub http: reqwest::Client,
    /// Chat senders by channel name (see `Config::chat_channels`).
    pub chat: chat::ChatSenders,
}

impl std::ops::Deref for Providers {
    type Target = crate::services::Services;
    fn deref(&self) -> &crate::services::Services {
        &self.services
    }
}
