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

/// Holds a send back at the moment the receiving side would take the message (for pipelined
/// SMTP, the end of data; elsewhere, before the request), until its [`GateKey`] opens it.
/// The outbox lets a sender start its next message while the previous delivery's mark
/// commits, and gates the next delivery on that mark: a sender killed at any moment leaves
/// at most one delivered message unmarked. A key dropped unopened (the mark failed) refuses
/// the delivery: with the store failing, one unmarked delivery is not followed by another.
#[derive(Clone, Default)]
pub struct Gate(Option<tokio::sync::watch::Receiver<bool>>);

/// Opens its [`Gate`]; dropped unopened, it refuses it.
pub struct GateKey(tokio::sync::watch::Sender<bool>);

impl Gate {
    /// A gate that is open from the start.
    pub fn open() -> Gate {
        Gate(None)
    }

    /// A closed gate and its key.
    pub fn closed() -> (GateKey, Gate) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (GateKey(tx), Gate(Some(rx)))
    }

    /// Returns once the gate is open, or an error (a transient one: the message is tried
    /// again later) once its key is gone unopened.
    pub async fn pass(&self) -> Result<(), SendError> {
        let Some(rx) = &self.0 else { return Ok(()) };
        match rx.clone().wait_for(|open| *open).await {
            Ok(_) => Ok(()),
            Err(_) => Err(SendError::Transient(
                "not sent: the delivery before it could not be recorded, so this one waits for a later try".into(),
            )),
        }
    }

    /// True once the gate's key is gone unopened: a send stopped here was refused, not tried.
    pub fn refused(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| !*rx.borrow() && rx.has_changed().is_err())
    }
}

impl GateKey {
    pub fn open(self) {
        let _ = self.0.send(true);
    }
}

/// The senders the engines deliver through (email, chat, webhooks), with the [`Services`]
/// they deref to. The digest scheduler, alerts and outbox take this, not the application.
///
/// [`Services`]: crate::services::Services
#[derive(Clone)]
pub struct Providers {
    pub services: crate::services::Services,
    pub mailer: email::Mailer,
    /// The DKIM signer, when `[email.dkim]` is on.
    pub dkim: Option<std::sync::Arc<lettre::message::dkim::DkimConfig>>,
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
