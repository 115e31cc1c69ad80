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

/// Whether a mail refusal is about the address itself (no such mailbox or domain), so that
/// the contact's email is suspended at once: an RFC 3463 status of class 5.1 in its `words`,
/// or with none there, a `reply` code of 550, 551 or 553 that does not refuse to relay. A
/// refusal for policy (5.7.x: a spam filter, a DMARC or DKIM check, a relay that will not
/// relay for cport; every address would then be suspended by one bad day) or a full mailbox
/// (5.2.2) is not the address's fault: it counts as a soft bounce. One rule for a refusal
/// heard while sending and for a delivery report that comes back later.
pub fn blames_the_address(words: &str, reply: Option<u16>) -> bool {
    let status = words.split(|c: char| c.is_whitespace() || matches!(c, ':' | ';' | '(' | ')')).find(|w| {
        let parts: Vec<&str> = w.split('.').collect();
        parts.len() == 3
            && parts[0] == "5"
            && parts[1..].iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    });
    match status {
        Some(s) => s.starts_with("5.1."),
        None => matches!(reply, Some(550 | 551 | 553)) && !words.to_ascii_lowercase().contains("relay"),
    }
}

/// The TLS client for cport's own mail connections (implicit-TLS SMTP, IMAP): the web PKI's
/// roots, and rustls's `ring` provider named outright. Two crates here build rustls with two
/// providers (`ring`, `aws-lc-rs`), so it has no default of its own and
/// `ClientConfig::builder()` panics: the IMAP poller did, at every session, on `tls = "tls"`.
pub(crate) fn tls_client() -> Result<tokio_rustls::TlsConnector, String> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg)))
}

/// Holds a send back at the moment the receiving side would take the message (for pipelined
/// SMTP, the end of data; elsewhere, before the request), until its [`GateKey`] opens it.
/// The outbox lets a sender start its next message while the previous delivery's mark
/// commits, and gates the next delivery on that mark: a sender killed at any moment leaves
/// at most one delivered message unmarked. A key dropped unopened (the mark failed) refuses
/// the delivery: with the store failing, one unmarked delivery is not followed by another.
///
/// It also refuses a delivery its sender may no longer make: once the sender's claim on the
/// message is near its end (the store did not answer the renewals, and another sender may
/// soon take the message and send it too), or once so little of the send's time is left
/// that the message would be handed over and given up on at once.
#[derive(Clone, Default)]
pub struct Gate {
    mark: Option<tokio::sync::watch::Receiver<bool>>,
    hold: Option<Hold>,
    deadline: Option<(tokio::time::Instant, std::time::Duration)>,
    refused: std::sync::Arc<std::sync::atomic::AtomicBool>,
    passed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Until when a sender is known to hold its claim (renewed while it works), and how much of
/// it must be left for a delivery to begin.
#[derive(Clone)]
pub struct Hold {
    pub until: tokio::sync::watch::Receiver<chrono::DateTime<chrono::Utc>>,
    pub margin: chrono::Duration,
}

impl Hold {
    /// True once less than the margin of the claim is left.
    pub fn lapsing(&self) -> bool {
        *self.until.borrow() - chrono::Utc::now() < self.margin
    }
}

/// Opens its [`Gate`]; dropped unopened, it refuses it.
pub struct GateKey(tokio::sync::watch::Sender<bool>);

impl Gate {
    /// A gate that is open from the start.
    pub fn open() -> Gate {
        Gate::default()
    }

    /// A closed gate and its key.
    pub fn closed() -> (GateKey, Gate) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (GateKey(tx), Gate { mark: Some(rx), ..Gate::default() })
    }

    /// This gate, also refusing once `hold` is lapsing.
    pub fn holding(mut self, hold: &Hold) -> Gate {
        self.hold = Some(hold.clone());
        self
    }

    /// This gate for a send that must end by `deadline`: it refuses a delivery with less
    /// than `least` of that left.
    pub fn until(&self, deadline: tokio::time::Instant, least: std::time::Duration) -> Gate {
        Gate { deadline: Some((deadline, least)), ..self.clone() }
    }

    /// Returns once the gate is open, or an error (a transient one: the message is tried
    /// again later) once its key is gone unopened, the claim is lapsing or the send's time
    /// nearly spent.
    pub async fn pass(&self) -> Result<(), SendError> {
        let refuse = |why: &str| {
            self.refused.store(true, std::sync::atomic::Ordering::SeqCst);
            Err(SendError::Transient(format!("not sent: {why}, so it waits for a later try")))
        };
        if let Some(rx) = &self.mark
            && rx.clone().wait_for(|open| *open).await.is_err()
        {
            return refuse("the delivery before it could not be recorded");
        }
        if self.hold.as_ref().is_some_and(Hold::lapsing) {
            return refuse("the claim on it could not be renewed (the store did not answer)");
        }
        if let Some((deadline, least)) = self.deadline
            && deadline.saturating_duration_since(tokio::time::Instant::now()) < least
        {
            return refuse("waiting for the delivery before it to be recorded used most of its send time");
        }
        self.passed.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// True once the gate let the delivery through: the message has been (or is being)
    /// handed over, and may reach its reader whatever happens to the send after this.
    pub fn passed(&self) -> bool {
        self.passed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// True once the gate refused a delivery, or its key is gone unopened: a send stopped
    /// here was not tried.
    pub fn refused(&self) -> bool {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
            || self.mark.as_ref().is_some_and(|rx| !*rx.borrow() && rx.has_changed().is_err())
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
    /// Chat senders by provider (see `Config::chat_channels`).
    pub chat: chat::ChatSenders,
}

impl std::ops::Deref for Providers {
    type Target = crate::services::Services;
    fn deref(&self) -> &crate::services::Services {
        &self.services
    }
}
