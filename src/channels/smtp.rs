//! SMTP out: a pool of plain, STARTTLS or implicit-TLS connections whose every step is
//! bounded in time, pipelined where the server allows it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;

use super::{Gate, SendError};
use crate::config::SmtpConfig;

/// A socket whose every read and write must make progress within a time limit. lettre's
/// async client puts a timeout on connecting only; this one bounds every step after it (the
/// greeting, each command's reply, the reply to the end of data, and writes to a server that
/// stopped reading), so a server that accepts and then hangs cannot stall a sender.
///
/// The wait for the reply to the end of data is longer (see [`END_OF_DATA`]): the stream's
/// read limit is shared with its connection's owner, which lengthens it for that reply.
#[derive(Debug)]
struct TimedStream {
    inner: std::pin::Pin<Box<tokio_io_timeout::TimeoutStream<Box<dyn Socket>>>>,
    peer: std::net::SocketAddr,
    /// The read limit in milliseconds as the owner wants it now, and as last applied.
    wanted: Arc<AtomicU64>,
    applied: u64,
}

/// What a connection runs over: the TCP socket, or TLS on it (`smtp.tls = "tls"`).
trait Socket: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + std::fmt::Debug {}
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + std::fmt::Debug> Socket for S {}

impl TimedStream {
    fn new(
        socket: Box<dyn Socket>,
        peer: std::net::SocketAddr,
        limit: std::time::Duration,
        wanted: Arc<AtomicU64>,
    ) -> TimedStream {
        let mut s = tokio_io_timeout::TimeoutStream::new(socket);
        s.set_read_timeout(Some(limit));
        s.set_write_timeout(Some(limit));
        let applied = limit.as_millis() as u64;
        wanted.store(applied, Ordering::Relaxed);
        TimedStream { inner: Box::pin(s), peer, wanted, applied }
    }
}

impl tokio::io::AsyncRead for TimedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let wanted = self.wanted.load(Ordering::Relaxed);
        if wanted != self.applied {
            self.applied = wanted;
            self.inner.as_mut().set_read_timeout_pinned(Some(std::time::Duration::from_millis(wanted)));
        }
        self.inner.as_mut().poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TimedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.inner.as_mut().poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.inner.as_mut().poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.inner.as_mut().poll_shutdown(cx)
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for TimedStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        Ok(self.peer)
    }
}

/// A pool of SMTP connections on sockets with TCP_NODELAY set, pipelining where the server
/// offers it.
///
/// Written here because lettre 0.11's pooled transport leaves Nagle's algorithm on and ends
/// DATA with a separate small write ("\r\n.\r\n"): each message then waits for the server's
/// delayed ACK, about 40 ms, capping a connection at ~25 messages a second. And lettre sends
/// each command and waits for its reply, four round trips a message; with PIPELINING
/// (RFC 2920) MAIL, RCPT and DATA go in one write and the message with its end in another,
/// two round trips, half the wake-ups on both sides. lettre's connection type still does
/// the greeting, STARTTLS, AUTH and the replies; this owns the sockets and the order of writes.
pub struct SmtpPool {
    host: String,
    port: u16,
    starttls: Option<TlsParameters>,
    /// TLS from the first byte (`smtp.tls = "tls"`, usually port 465): the handshake is made
    /// here, under the same time limit as every step, and lettre speaks SMTP over it.
    implicit_tls: Option<(tokio_rustls::TlsConnector, tokio_rustls::rustls::pki_types::ServerName<'static>)>,
    credentials: Option<Credentials>,
    idle: std::sync::Mutex<Vec<Pooled>>,
    slots: tokio::sync::Semaphore,
    hello: ClientId,
    /// The limit on each step of the conversation (`smtp.timeout_seconds`).
    step: std::time::Duration,
}

/// How long the reply to the end of data may take: RFC 5321 (4.5.3.2.6) asks a client to
/// wait ten minutes for it, as the server may check the whole message before it answers (a
/// relay's virus scan). Giving up sooner on a server that then takes the message sends it
/// twice; `outbox.send_timeout_seconds` still bounds the whole send.
const END_OF_DATA: std::time::Duration = std::time::Duration::from_secs(600);

/// An open connection, whether its server takes pipelined commands, and its socket's read
/// limit (see [`TimedStream`]).
struct Pooled {
    conn: AsyncSmtpConnection,
    pipelining: bool,
    read_limit: Arc<AtomicU64>,
    step: std::time::Duration,
}

impl SmtpPool {
    /// A pool for `s`; with `implicit_tls`, its connections speak TLS from the first byte
    /// (`starttls` is then none). An `implicit_tls` host that is no server name (nor IP
    /// address) is refused by name.
    pub fn new(
        s: &SmtpConfig,
        starttls: Option<TlsParameters>,
        implicit_tls: bool,
        credentials: Option<Credentials>,
    ) -> Result<SmtpPool, String> {
        let implicit_tls = match implicit_tls {
            false => None,
            true => {
                let name =
                    tokio_rustls::rustls::pki_types::ServerName::try_from(s.host.clone()).map_err(|e| e.to_string())?;
                Some((super::tls_client()?, name))
            }
        };
        Ok(SmtpPool {
            host: s.host.clone(),
            port: s.port,
            starttls,
            implicit_tls,
            credentials,
            idle: std::sync::Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(s.pool_size as usize),
            hello: match s.helo_name.is_empty() {
                true => ClientId::default(),
                false => ClientId::Domain(s.helo_name.trim_end_matches('.').to_string()),
            },
            step: std::time::Duration::from_secs(s.timeout_seconds),
        })
    }

    async fn connect(&self) -> Result<Pooled, SendError> {
        let where_ = format!("{}:{}", self.host, self.port);
        let tcp = tokio::time::timeout(self.step, tokio::net::TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| SendError::Transient(format!("connecting to {where_}: timed out")))?
            .map_err(|e| SendError::Transient(format!("connecting to {where_}: {e}")))?;
        tcp.set_nodelay(true).map_err(|e| SendError::Transient(format!("connecting to {where_}: {e}")))?;
        let peer = tcp.peer_addr().map_err(|e| SendError::Transient(format!("connecting to {where_}: {e}")))?;
        let socket: Box<dyn Socket> = match &self.implicit_tls {
            None => Box::new(tcp),
            Some((connector, name)) => {
                let tls = tokio::time::timeout(self.step, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| SendError::Transient(format!("SMTP TLS handshake with {where_}: timed out")))?
                    .map_err(|e| {
                        let mut s = format!("SMTP TLS handshake with {where_}: {e}");
                        if tls_mismatch(&s) {
                            s.push_str(TLS_MISMATCH);
                        }
                        SendError::Transient(s)
                    })?;
                Box::new(tls)
            }
        };
        let read_limit = Arc::new(AtomicU64::new(0));
        let stream = TimedStream::new(socket, peer, self.step, read_limit.clone());
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(session_failed("greeting"))?;
        if let Some(tls) = &self.starttls {
            conn.starttls(tls.clone(), &self.hello).await.map_err(session_failed("STARTTLS"))?;
        }
        // lettre keeps only the extensions it uses; PIPELINING is read from a second EHLO
        // (before AUTH, which an EHLO could reset).
        let ehlo = conn.command(Ehlo::new(self.hello.clone())).await.map_err(session_failed("EHLO"))?;
        let pipelining = ehlo
            .message()
            .any(|line| line.split_whitespace().next().is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING")));
        if let Some(c) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                .await
                .map_err(session_failed("login (smtp.username, smtp.password)"))?;
        }
        Ok(Pooled { conn, pipelining, read_limit, step: self.step })
    }

    /// Sends one message; its end of data (which makes the server take it) waits for `gate`.
    pub async fn send(&self, envelope: &Envelope, raw: &[u8], gate: &Gate) -> Result<String, SendError> {
        let _slot = self.slots.acquire().await.map_err(|e| SendError::Transient(e.to_string()))?;
        let reused = self.idle.lock().ok().and_then(|mut v| v.pop());
        let (mut pooled, was_reused) = match reused {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        let result = match pooled.send(envelope, raw, gate).await {
            // An idle connection the server closed meanwhile fails before the message is
            // written: one more try on a fresh one. Once the end of data may have reached the
            // server, never: the server may have taken the message, and a second try could
            // deliver it twice; the outbox decides on a retry, after its backoff.
            Err(f) if was_reused && f.broken && !f.maybe_delivered => {
                pooled = self.connect().await?;
                pooled.send(envelope, raw, gate).await
            }
            other => other,
        };
        // Only a connection whose conversation ended in step goes back to the pool: after a
        // refusal (lettre and a pipelined server may both be mid-conversation), a timeout or
        // a broken socket its state is unknown.
        if result.is_ok()
            && !pooled.conn.has_broken()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(pooled);
        }
        result.map(|r| r.message().collect::<Vec<_>>().join(" ")).map_err(|f| f.error)
    }
}

/// A send that failed, and how far it got.
#[derive(Debug)]
struct Failed {
    error: SendError,
    /// The connection broke (no SMTP reply said why).
    broken: bool,
    /// The end of data was written: the server may have taken the message.
    maybe_delivered: bool,
}

impl Failed {
    fn at(e: lettre::transport::smtp::Error, maybe_delivered: bool) -> Failed {
        Failed { broken: !e.is_permanent() && !e.is_transient(), error: classify(e), maybe_delivered }
    }

    /// A refusal of command `n` of MAIL, the RCPTs (1 to `recipients`) and DATA: a permanent
    /// refusal of a recipient's address is told apart, as a bounce.
    fn of_command(n: usize, envelope: &Envelope, e: lettre::transport::smtp::Error) -> Failed {
        let recipients = envelope.to().len();
        if (1..=recipients).contains(&n) && e.is_permanent() && address_refused(&e) {
            return Failed { error: SendError::AddressRefused(error_chain(&e)), broken: false, maybe_delivered: false };
        }
        // MAIL names only cport's own sender address (`email.from`, or the bounce address at
        // `email.reply_domain`): its refusal (a relay that will not take mail from it) is the
        // same for every message, never this one's fault.
        // (Save for a refusal of the parameters MAIL carries for this message, SMTPUTF8 or
        // 8BITMIME: 555, or 5.5.4.)
        let parameters = e.status().is_some_and(|c| c.to_string() == "555") || e.to_string().contains("5.5.4");
        if n == 0 && e.is_permanent() && !parameters {
            let from = envelope.from().map_or_else(|| "<>".to_string(), |a| format!("<{a}>"));
            let error = SendError::Transient(format!("SMTP MAIL FROM {from} refused: {}", described(&e)));
            return Failed { error, broken: false, maybe_delivered: false };
        }
        Failed::at(e, false)
    }
}

/// A permanent refusal that is about the address (no such mailbox or domain): an RFC 3463
/// status of class 5.1, or with none given, a 550, 551 or 553 reply that does not refuse to
/// relay. A refusal for policy (5.7.x, a spam filter, a relay that will not relay for cport:
/// every address would then be suspended) or a full mailbox is not the address's fault.
fn address_refused(e: &lettre::transport::smtp::Error) -> bool {
    super::blames_the_address(&e.to_string(), e.status().and_then(|c| c.to_string().parse().ok()))
}

impl Pooled {
    /// MAIL, RCPT and DATA (in one write when the server pipelines, else one at a time),
    /// then the message and its end of data in one write once `gate` opens.
    async fn send(&mut self, envelope: &Envelope, raw: &[u8], gate: &Gate) -> Result<Response, Failed> {
        let mut commands = vec![Mail::new(envelope.from().cloned(), self.mail_options(envelope, raw)?).to_string()];
        for to in envelope.to() {
            commands.push(Rcpt::new(to.clone(), vec![]).to_string());
        }
        commands.push(Data.to_string());
        if self.pipelining {
            // Every reply is read, even after a refusal, so the conversation stays in step;
            // a broken connection ends it at once.
            let mut refused = None;
            for n in 0..commands.len() {
                let reply =
                    if n == 0 { self.conn.command(commands.concat()).await } else { self.conn.read_response().await };
                match reply {
                    Ok(_) => {}
                    Err(e) if e.is_permanent() || e.is_transient() => {
                        refused.get_or_insert((n, e));
                    }
                    // A server that refused and then closed (a 421 "too busy"): its refusal
                    // is the reason, not the replies it never wrote.
                    Err(e) => {
                        return Err(match refused.take() {
                            Some((n, first)) => Failed::of_command(n, envelope, first),
                            None => Failed::at(e, false),
                        });
                    }
                }
            }
            if let Some((n, e)) = refused {
                return Err(Failed::of_command(n, envelope, e));
            }
        } else {
            for (n, c) in commands.into_iter().enumerate() {
                self.conn.command(c).await.map_err(|e| Failed::of_command(n, envelope, e))?;
            }
        }
        // Refused: the server, mid-DATA, discards the message when the connection (not
        // returned to the pool after an error) is dropped.
        gate.pass().await.map_err(|error| Failed { error, broken: false, maybe_delivered: false })?;
        let longest = END_OF_DATA.max(self.step);
        self.read_limit.store(longest.as_millis() as u64, Ordering::Relaxed);
        let reply = match std::str::from_utf8(raw) {
            Ok(text) => self.conn.command(DataBody(text)).await,
            // lettre's codec stuffs the dots of a message that is not UTF-8.
            Err(_) => self.conn.message(raw).await,
        };
        self.read_limit.store(self.step.as_millis() as u64, Ordering::Relaxed);
        reply.map_err(|e| Failed::at(e, true))
    }

    /// The MAIL parameters a message needs (RFC 6531 SMTPUTF8 for non-ASCII addresses,
    /// RFC 6152 8BITMIME for non-ASCII content), refused at once when the server lacks them.
    fn mail_options(&self, envelope: &Envelope, raw: &[u8]) -> Result<Vec<MailParameter>, Failed> {
        let lacks = |what: &str| Failed {
            error: SendError::Permanent(format!("the message needs {what}, which the SMTP server does not offer")),
            broken: false,
            maybe_delivered: false,
        };
        let info = self.conn.server_info();
        let mut options = vec![];
        let non_ascii_address = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii_address {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(lacks("SMTPUTF8 (an address is not ASCII)"));
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !raw.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(lacks("8BITMIME (the content is not ASCII)"));
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Ok(options)
    }
}

/// A message as DATA carries it, with its end: a line that starts with "." gets another
/// (RFC 5321 4.5.2), as lettre's codec does, and the end-of-data line follows in the same
/// write (after a line break of its own only when the message does not end with one).
struct DataBody<'a>(&'a str);

impl std::fmt::Display for DataBody<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, line) in self.0.split("\r\n").enumerate() {
            if i > 0 {
                f.write_str("\r\n")?;
            }
            if line.starts_with('.') {
                f.write_str(".")?;
            }
            f.write_str(line)?;
        }
        f.write_str(if self.0.ends_with("\r\n") { ".\r\n" } else { "\r\n.\r\n" })
    }
}

/// 5xx replies are permanent; everything else (4xx, network, TLS) is worth another try, and
/// so is a refusal of cport's login (RFC 4954's 530, 534, 535, 538), whichever step it came
/// at: it says nothing of the message, and every message would fail on it alike.
pub(super) fn classify(e: lettre::transport::smtp::Error) -> SendError {
    let login_refused = e.status().is_some_and(|c| matches!(c.to_string().as_str(), "530" | "534" | "535" | "538"));
    if e.is_permanent() && !login_refused {
        SendError::Permanent(described(&e))
    } else {
        SendError::Transient(described(&e))
    }
}

/// A failure setting up a session (its greeting, EHLO, STARTTLS, login): nothing about the
/// message on hand, so worth another try even after a 5xx. Marked dead at once, a password
/// rotated or a relay closed to cport would kill the whole queue in seconds; retried, the
/// messages wait out their backoff while staff put it right, and `stage` names the step.
fn session_failed(stage: &'static str) -> impl Fn(lettre::transport::smtp::Error) -> SendError {
    move |e| SendError::Transient(format!("SMTP {stage}: {}", described(&e)))
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        // lettre's errors repeat their source's words ("permanent error (550): 5.1.1 …: 5.1.1 …").
        let more = c.to_string();
        if !s.contains(&more) {
            s.push_str(": ");
            s.push_str(&more);
        }
        cur = c.source();
    }
    s
}

/// A lettre error in words: [`error_chain`], and for a connection's failure (not a server's
/// reply, whose words are its own) that is a TLS handshake meeting plain SMTP, the setting
/// at fault, which TLS's words alone ("corrupt message") do not name.
pub(super) fn described(e: &lettre::transport::smtp::Error) -> String {
    let mut s = error_chain(e);
    if e.status().is_none() && tls_mismatch(&s) {
        s.push_str(TLS_MISMATCH);
    }
    s
}

/// What is said after TLS's own words for a handshake that met plain SMTP.
const TLS_MISMATCH: &str = " (the server does not speak TLS as smtp.tls says: `tls` is TLS from the first byte, \
     usually port 465; `starttls` upgrades a plain connection, usually port 587)";

/// TLS's words for a handshake that met something else than TLS.
fn tls_mismatch(words: &str) -> bool {
    ["corrupt message", "InvalidContentType", "wrong version number"].iter().any(|w| words.contains(w))
}

#[cfg(test)]
mod tests {
    use super::{DataBody, tls_mismatch};

    #[test]
    fn tls_words_for_a_handshake_that_met_plain_smtp_are_told() {
        assert!(tls_mismatch("Connection error: received corrupt message of type InvalidContentType"));
        assert!(!tls_mismatch("Connection error: Connection refused (os error 111)"));
    }

    #[test]
    fn data_lines_starting_with_a_dot_are_doubled_and_the_end_follows() {
        let body = DataBody(".first\r\nmiddle .\r\n..two\r\n.\r\nlast").to_string();
        assert_eq!(body, "..first\r\nmiddle .\r\n...two\r\n..\r\nlast\r\n.\r\n");
        assert_eq!(DataBody("one\r\n").to_string(), "one\r\n.\r\n");
    }
}
