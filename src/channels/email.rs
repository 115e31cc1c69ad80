//! Email out: lettre with a pooled async SMTP transport, or `.eml` files in a folder.

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use std::sync::Arc;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::SendError;
use crate::config::{self, Config, Transport};
pub use crate::messages::{EmailPayload, new_message_id};

/// One transport, built once at start and shared (the SMTP pool lives inside it).
#[derive(Clone)]
pub enum Mailer {
    File(AsyncFileTransport<Tokio1Executor>),
    /// Plain or STARTTLS: cport's own pool of lettre connections (see [`SmtpPool`]).
    Pooled(Arc<SmtpPool>),
    /// Implicit TLS: lettre's pooled transport.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// A socket whose every read and write must make progress within a time limit. lettre's
/// async client puts a timeout on connecting only; this one bounds every step after it (the
/// greeting, each command's reply, the reply to the end of data, and writes to a server that
/// stopped reading), so a server that accepts and then hangs cannot stall a sender.
#[derive(Debug)]
struct TimedStream(std::pin::Pin<Box<tokio_io_timeout::TimeoutStream<tokio::net::TcpStream>>>);

impl TimedStream {
    fn new(tcp: tokio::net::TcpStream, limit: std::time::Duration) -> TimedStream {
        let mut s = tokio_io_timeout::TimeoutStream::new(tcp);
        s.set_read_timeout(Some(limit));
        s.set_write_timeout(Some(limit));
        TimedStream(Box::pin(s))
    }
}

impl tokio::io::AsyncRead for TimedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.0.as_mut().poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TimedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.as_mut().poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.0.as_mut().poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.0.as_mut().poll_shutdown(cx)
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for TimedStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().peer_addr()
    }
}

/// A pool of SMTP connections on sockets with TCP_NODELAY set.
///
/// Written here because lettre 0.11's pooled transport leaves Nagle's algorithm on and ends
/// DATA with a separate small write ("\r\n.\r\n"): each message then waits for the server's
/// delayed ACK, about 40 ms, capping a connection at ~25 messages a second. lettre's
/// connection type does the SMTP; this only owns the sockets.
pub struct SmtpPool {
    host: String,
    port: u16,
    starttls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    idle: std::sync::Mutex<Vec<AsyncSmtpConnection>>,
    slots: tokio::sync::Semaphore,
    hello: ClientId,
    /// The limit on each step of the conversation (`smtp.timeout_seconds`).
    step: std::time::Duration,
}

impl SmtpPool {
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let where_ = format!("{}:{}", self.host, self.port);
        let tcp = tokio::time::timeout(
            self.step,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| SendError::Transient(format!("connecting to {where_}: timed out")))?
        .map_err(|e| SendError::Transient(format!("connecting to {where_}: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| SendError::Transient(format!("connecting to {where_}: {e}")))?;
        let mut conn =
            AsyncSmtpConnection::connect_with_transport(Box::new(TimedStream::new(tcp, self.step)), &self.hello)
                .await
                .map_err(classify)?;
        if let Some(tls) = &self.starttls {
            conn.starttls(tls.clone(), &self.hello).await.map_err(classify)?;
        }
        if let Some(c) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                .await
                .map_err(classify)?;
        }
        Ok(conn)
    }

    async fn send(&self, envelope: &lettre::address::Envelope, raw: &[u8]) -> Result<String, SendError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        let reused = self.idle.lock().ok().and_then(|mut v| v.pop());
        let (mut conn, was_reused) = match reused {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        let result = match conn.send(envelope, raw).await {
            // An idle connection the server closed meanwhile: one more try on a fresh one.
            Err(e) if was_reused && !e.is_permanent() && !e.is_transient() => {
                conn = self.connect().await?;
                conn.send(envelope, raw).await
            }
            other => other,
        };
        // Only a connection whose server answered goes back to the pool: after a timeout or
        // a broken socket the conversation's state is unknown.
        let answered = match &result {
            Ok(_) => true,
            Err(e) => e.is_permanent() || e.is_transient(),
        };
        if answered
            && !conn.has_broken()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(conn);
        }
        result
            .map(|r| r.message().collect::<Vec<_>>().join(" "))
            .map_err(classify)
    }
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
                    TlsParameters::new(s.host.clone()).map_err(|e| MailerError::Config {
                        key: "smtp.tls",
                        message: e.to_string(),
                    })
                };
                let credentials = (!s.username.is_empty())
                    .then(|| Credentials::new(s.username.clone(), s.password.expose().to_string()));
                if s.tls != config::Tls::Tls {
                    return Ok(Mailer::Pooled(Arc::new(SmtpPool {
                        host: s.host.clone(),
                        port: s.port,
                        starttls: if s.tls == config::Tls::Starttls {
                            Some(tls_params()?)
                        } else {
                            None
                        },
                        credentials,
                        idle: std::sync::Mutex::new(Vec::new()),
                        slots: tokio::sync::Semaphore::new(s.pool_size as usize),
                        hello: ClientId::default(),
                        step: std::time::Duration::from_secs(s.timeout_seconds),
                    })));
                }
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                    .port(s.port)
                    .timeout(Some(std::time::Duration::from_secs(s.timeout_seconds)))
                    .tls(Tls::Wrapper(tls_params()?));
                if let Some(c) = credentials {
                    b = b.credentials(c);
                }
                b = b.pool_config(PoolConfig::new().max_size(s.pool_size));
                Ok(Mailer::Smtp(b.build()))
            }
            _ => {
                std::fs::create_dir_all(&config.email.dir).map_err(|e| MailerError::Config {
                    key: "email.dir",
                    message: format!("cannot create {}: {e}", config.email.dir.display()),
                })?;
                Ok(Mailer::File(AsyncFileTransport::<Tokio1Executor>::new(
                    &config.email.dir,
                )))
            }
        }
    }

    /// Sends one message; returns the provider's id (file name or server response).
    pub async fn send(&self, message: &Built) -> Result<String, SendError> {
        let (envelope, raw) = (&message.envelope, message.raw.as_slice());
        match self {
            Mailer::File(t) => t
                .send_raw(envelope, raw)
                .await
                .map(|id| format!("{id}.eml"))
                .map_err(|e| SendError::Transient(format!("file transport: {e}"))),
            Mailer::Pooled(pool) => pool.send(envelope, raw).await,
            Mailer::Smtp(t) => match t.send_raw(envelope, raw).await {
                Ok(resp) => Ok(resp.message().collect::<Vec<_>>().join(" ")),
                Err(e) if e.is_permanent() => Err(SendError::Permanent(error_chain(&e))),
                Err(e) => Err(SendError::Transient(error_chain(&e))),
            },
        }
    }
}

/// 5xx replies are permanent; everything else (4xx, network, TLS) is worth another try.
fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(error_chain(&e))
    } else {
        SendError::Transient(error_chain(&e))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn header(name: &'static str, value: impl Into<String>) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.into())
}

/// A message ready for any transport: its envelope and its bytes.
pub struct Built {
    pub envelope: lettre::address::Envelope,
    pub raw: Vec<u8>,
}

/// Builds the RFC 5322 message for an outbox email. `token` is the row's reply token:
/// replies go to `reply+TOKEN@`, bounces to `bounce+TOKEN@` (VERP). A message lettre cannot
/// format is a permanent error for that message, never a panic: lettre's formatting panics
/// on a header its `Display` refuses, so formatting runs inside `catch_unwind` here.
pub fn build_message(config: &Config, p: &EmailPayload, token: Option<&str>) -> Result<Built, SendError> {
    let message = build_typed(config, p, token)?;
    let envelope = message.envelope().clone();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| message.formatted()))
        .map(|raw| Built { envelope, raw })
        .map_err(|panic| {
            let why = crate::supervise::panic_text(&panic);
            tracing::error!(error = %why, "bug: the mail library could not format a message");
            SendError::Permanent(format!("the message could not be formatted: {why}"))
        })
}

fn build_typed(config: &Config, p: &EmailPayload, token: Option<&str>) -> Result<Message, SendError> {
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
        .raw_header(header("Auto-Submitted", "auto-generated"))
        .raw_header(header(
            "List-Unsubscribe",
            format!("<{}/preferences>", config.public_url.trim_end_matches('/')),
        ));
    let bounce: Address = match token {
        Some(t) => {
            let reply: Address = format!("reply+{t}@{domain}")
                .parse()
                .map_err(|e| bad("reply address", &e))?;
            b = b.reply_to(Mailbox::new(
                Some(crate::model::one_line(&format!("{} replies", config.branding.name))),
                reply,
            ));
            format!("bounce+{t}@{domain}")
                .parse()
                .map_err(|e| bad("bounce address", &e))?
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
