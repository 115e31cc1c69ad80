//! Provider adapters. Each turns an outbox row into a delivery on its channel.

pub mod chat;
pub mod discord;
pub mod email;
pub mod imap;
pub mod inbound;
pub mod telegram;
pub mod webhook;

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
}
