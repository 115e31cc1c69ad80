//! Email out: lettre's SMTP connections in cport's own pool, or `.eml` files in a folder.

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use std::sync::Arc;

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::TlsParameters;
use lettre::{Address, Message};

use super::smtp::SmtpPool;
use super::{Gate, SendError};
use crate::config::{self, Config, Transport};
pub use crate::messages::{EmailPayload, new_message_id};

/// One transport, built once at start and shared (the SMTP pool lives inside it).
#[derive(Clone)]
pub enum Mailer {
    /// Each message a `.eml` file in this folder (the demo's and tests' transport).
    File(std::path::PathBuf),
    /// SMTP, plain, STARTTLS or implicit TLS: cport's own pool of lettre connections (see
    /// [`SmtpPool`]).
    Pooled(Arc<SmtpPool>),
}

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("config key `{key}`: {message}")]
    Config { key: &'static str, message: String },
}

impl Mailer {
    pub fn from_config(config: &Config) -> Result<Mailer, MailerError> {
        match config.email.transport {
            Transport::Smtp => {
                let s = &config.smtp;
                let tls_params = || {
                    TlsParameters::new(s.host.clone())
                        .map_err(|e| MailerError::Config { key: "smtp.tls", message: e.to_string() })
                };
                let credentials = (!s.username.is_empty())
                    .then(|| Credentials::new(s.username.clone(), s.password.expose().to_string()));
                let starttls = if s.tls == config::Tls::Starttls { Some(tls_params()?) } else { None };
                let pool = SmtpPool::new(s, starttls, s.tls == config::Tls::Tls, credentials)
                    .map_err(|message| MailerError::Config { key: "smtp.host", message })?;
                Ok(Mailer::Pooled(Arc::new(pool)))
            }
            _ => {
                let dir = config.mail_dir();
                std::fs::create_dir_all(&dir).map_err(|e| MailerError::Config {
                    key: if config.email.dir.as_os_str().is_empty() { "data_dir" } else { "email.dir" },
                    message: format!("cannot create {}: {e}", crate::model::path_shown(&dir)),
                })?;
                Ok(Mailer::File(dir))
            }
        }
    }

    /// Sends one message; returns the provider's id (file name or server response).
    /// The message is handed over only once `gate` is open.
    pub async fn send(&self, message: &Built, gate: &Gate) -> Result<String, SendError> {
        let (envelope, raw) = (&message.envelope, message.raw.as_slice());
        if !matches!(self, Mailer::Pooled(_)) {
            gate.pass().await?;
        }
        match self {
            Mailer::File(dir) => {
                write_eml(dir, raw).await.map_err(|e| SendError::Transient(format!("file transport: {e}")))
            }
            Mailer::Pooled(pool) => pool.send(envelope, raw, gate).await,
        }
    }
}

/// Writes a message as `<random hex>.eml` in `dir`, whole or not at all: to a hidden file first,
/// renamed once written and synced (lettre's file transport writes in place, so a full disk left empty
/// and half-written `.eml` files beside the retry's whole one). Gives the file's name.
async fn write_eml(dir: &std::path::Path, raw: &[u8]) -> std::io::Result<String> {
    use tokio::io::AsyncWriteExt;
    let name = format!("{:032x}.eml", rand::random::<u128>());
    let part = dir.join(format!(".{name}.part"));
    let written = async {
        // Readable by the service's group whichever of its processes wrote it (the MTA's pipe
        // runs with a umask of 077), and by no one else: a message holds its reader's
        // sign-in links.
        let mut f = tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o640).open(&part).await?;
        f.write_all(raw).await?;
        // On the disk before it is renamed: after a power cut, no empty file under the name.
        f.sync_all().await?;
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o640)).await?;
        tokio::fs::rename(&part, dir.join(&name)).await
    };
    match written.await {
        Ok(()) => Ok(name),
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(e)
        }
    }
}

/// The DKIM signer of `[email.dkim]`, read once at start: none while it is off. A key that
/// cannot be read or parsed is an error naming `email.dkim.key_file`.
pub fn dkim_signer(config: &Config) -> Result<Option<Arc<DkimConfig>>, MailerError> {
    let d = &config.email.dkim;
    if !d.enabled() {
        return Ok(None);
    }
    let bad = |message: String| MailerError::Config { key: "email.dkim.key_file", message };
    // A PEM private key is a few kilobytes; 64 KiB is far more than any.
    let pem = crate::config::read_small_file(&d.key_file, 64 * 1024, "64 KiB, which no private key is")
        .map_err(|e| bad(format!("cannot read the key: {e}")))?;
    let algorithm = match d.algorithm {
        crate::config::DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
        crate::config::DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
    };
    let key =
        DkimSigningKey::new(pem.trim(), algorithm).map_err(|e| bad(format!("not a key of that algorithm: {e}")))?;
    // What a receiver checks, and what a one-click unsubscribe needs signed (RFC 8058).
    // Not Content-Type: lettre writes a multipart body's own at formatting, after signing.
    let headers = [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "In-Reply-To",
        "References",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "MIME-Version",
    ]
    .into_iter()
    .map(HeaderName::new_from_ascii_str)
    .collect();
    let canonical =
        DkimCanonicalization { header: DkimCanonicalizationType::Relaxed, body: DkimCanonicalizationType::Relaxed };
    Ok(Some(Arc::new(DkimConfig::new(d.selector.clone(), d.domain.clone(), key, headers, canonical))))
}

fn header(name: &'static str, value: impl Into<String>) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.into())
}

/// A message ready for any transport: its envelope and its bytes.
pub struct Built {
    pub envelope: lettre::address::Envelope,
    pub raw: Vec<u8>,
}

/// What a message's `List-Unsubscribe` offers.
#[derive(Debug, Clone, Copy)]
pub enum Unsubscribe<'a> {
    /// A digest's or alert's own signed one-click address (RFC 8058).
    OneClick(&'a str),
    /// Other mail to a contact: the preferences page.
    Preferences,
    /// Mail to someone who is no contact (a delegate, a person asking for access): nothing
    /// to unsubscribe from, so no header.
    Not,
}

/// The two addresses a message with a reply token carries: replies go to `reply+REPLY@`,
/// bounces to `bounce+BOUNCE@` (VERP). The bounce token is made from the reply token by the
/// signer ([`crate::links::Signer::bounce_token`]), not equal to it.
#[derive(Debug, Clone, Copy)]
pub struct ReplyTokens<'a> {
    pub reply: &'a str,
    pub bounce: &'a str,
}

/// Builds the RFC 5322 message for an outbox email. `tokens` are the row's reply and bounce
/// tokens, if it has them. `unsubscribe` says what its `List-Unsubscribe` offers.
/// With `dkim`, the message is signed. A message lettre cannot
/// format is a permanent error for that message, never a panic: lettre's formatting panics
/// on a header its `Display` refuses, so formatting runs inside `catch_unwind` here.
pub fn build_message(
    config: &Config,
    dkim: Option<&DkimConfig>,
    p: &EmailPayload,
    tokens: Option<ReplyTokens<'_>>,
    unsubscribe: Unsubscribe<'_>,
    date: chrono::DateTime<chrono::Utc>,
) -> Result<Built, SendError> {
    let mut message = build_typed(config, p, tokens, unsubscribe, date)?;
    let envelope = message.envelope().clone();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Some(d) = dkim {
            message.sign(d);
        }
        message.formatted()
    }))
    .map(|raw| Built { envelope, raw })
    .map_err(|panic| {
        let why = crate::supervise::panic_text(&panic);
        tracing::error!(error = %why, "bug: the mail library could not format a message");
        SendError::Permanent(format!("the message could not be formatted: {why}"))
    })
}

fn build_typed(
    config: &Config,
    p: &EmailPayload,
    tokens: Option<ReplyTokens<'_>>,
    unsubscribe: Unsubscribe<'_>,
    date: chrono::DateTime<chrono::Utc>,
) -> Result<Message, SendError> {
    let token = tokens.map(|t| t.reply);
    let bad = |what: &str, e: &dyn std::fmt::Display| SendError::Permanent(format!("{what}: {e}"));
    let from: Mailbox = config.email.from.parse().map_err(|e| bad("email.from", &e))?;
    let to_addr: Address = p.to.parse().map_err(|e| bad("recipient address", &e))?;
    let name = crate::model::one_line(&p.to_name);
    let to = Mailbox::new((!name.is_empty()).then_some(name), to_addr.clone());
    let domain = &config.email.reply_domain;
    let mut b = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(crate::model::one_line(&p.subject))
        .message_id(Some(p.message_id.clone()))
        .date(date.into())
        .raw_header(header("Auto-Submitted", "auto-generated"));
    b = match unsubscribe {
        // The https address first (RFC 8058's one click), then a reply that says so.
        Unsubscribe::OneClick(url) => b
            .raw_header(header(
                "List-Unsubscribe",
                match token {
                    Some(t) => format!("<{url}>, <mailto:{}?subject=unsubscribe>", config.reply_address(t)),
                    None => format!("<{url}>"),
                },
            ))
            .raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")),
        Unsubscribe::Preferences => b.raw_header(header(
            "List-Unsubscribe",
            format!("<{}/preferences>", config.public_url.trim_end_matches('/')),
        )),
        Unsubscribe::Not => b,
    };
    let bounce: Address = match token {
        Some(t) => {
            let reply: Address = config.reply_address(t).parse().map_err(|e| bad("reply address", &e))?;
            b = b.reply_to(Mailbox::new(
                Some(crate::model::one_line(&format!("{} replies", config.branding.name))),
                reply,
            ));
            let bounce = tokens.map_or(t, |t| t.bounce);
            format!("bounce+{bounce}@{domain}").parse().map_err(|e| bad("bounce address", &e))?
        }
        None => from.email.clone(),
    };
    if let Some(irt) = &p.in_reply_to {
        b = b.in_reply_to(irt.clone());
    }
    if let Some(r) = &p.references {
        b = b.references(r.clone());
    }
    let envelope = lettre::address::Envelope::new(Some(bounce), vec![to_addr]).map_err(|e| bad("envelope", &e))?;
    b.envelope(envelope)
        .multipart(MultiPart::alternative_plain_html(p.text.clone(), p.html.clone()))
        .map_err(|e| bad("message", &e))
}
