//! SMTP out: a pool of plain or STARTTLS connections whose every step is bounded in time,
//! pipelined where the server allows it.

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;

use super::{Gate, SendError};
use crate::config::SmtpConfig;

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
    credentials: Option<Credentials>,
    idle: std::sync::Mutex<Vec<Pooled>>,
    slots: tokio::sync::Semaphore,
    hello: ClientId,
    /// The limit on each step of the conversation (`smtp.timeout_seconds`).
    step: std::time::Duration,
}

/// An open connection and whether its server takes pipelined commands.
struct Pooled {
    conn: AsyncSmtpConnection,
    pipelining: bool,
}

impl SmtpPool {
    pub fn new(s: &SmtpConfig, starttls: Option<TlsParameters>, credentials: Option<Credentials>) -> SmtpPool {
        SmtpPool {
            host: s.host.clone(),
            port: s.port,
            starttls,
            credentials,
            idle: std::sync::Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(s.pool_size as usize),
            hello: ClientId::default(),
            step: std::time::Duration::from_secs(s.timeout_seconds),
        }
    }

    async fn connect(&self) -> Result<Pooled, SendError> {
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
        // lettre keeps only the extensions it uses; PIPELINING is read from a second EHLO
        // (before AUTH, which an EHLO could reset).
        let ehlo = conn.command(Ehlo::new(self.hello.clone())).await.map_err(classify)?;
        let pipelining = ehlo.message().any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"))
        });
        if let Some(c) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                .await
                .map_err(classify)?;
        }
        Ok(Pooled { conn, pipelining })
    }

    /// Sends one message; its end of data (which makes the server take it) waits for `gate`.
    pub async fn send(&self, envelope: &Envelope, raw: &[u8], gate: &Gate) -> Result<String, SendError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        let reused = self.idle.lock().ok().and_then(|mut v| v.pop());
        let (mut pooled, was_reused) = match reused {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        let result = match pooled.send(envelope, raw, gate).await {
            // An idle connection the server closed meanwhile: one more try on a fresh one.
            Err(e) if was_reused && !e.is_permanent() && !e.is_transient() => {
                pooled = self.connect().await?;
                pooled.send(envelope, raw, gate).await
            }
            other => other,
        };
        // Only a connection whose server answered goes back to the pool: after a timeout or
        // a broken socket the conversation's state is unknown. A pipelined refusal leaves it
        // unknown too (the server may be waiting for the message), so that one is closed.
        let answered = match &result {
            Ok(_) => true,
            Err(e) => !pooled.pipelining && (e.is_permanent() || e.is_transient()),
        };
        if answered
            && !pooled.conn.has_broken()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(pooled);
        }
        result
            .map(|r| r.message().collect::<Vec<_>>().join(" "))
            .map_err(classify)
    }
}

impl Pooled {
    async fn send(
        &mut self,
        envelope: &Envelope,
        raw: &[u8],
        gate: &Gate,
    ) -> Result<Response, lettre::transport::smtp::Error> {
        // Non-ASCII addresses or content need MAIL parameters lettre chooses from the
        // server's extensions; such a message goes through lettre's own conversation.
        let text = std::str::from_utf8(raw).ok().filter(|t| t.is_ascii());
        let ascii_addresses = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .all(|a: &lettre::Address| AsRef::<str>::as_ref(a).is_ascii());
        let (true, Some(text), true) = (self.pipelining, text, ascii_addresses) else {
            gate.pass().await;
            return self.conn.send(envelope, raw).await;
        };
        let mut commands = Mail::new(envelope.from().cloned(), vec![]).to_string();
        for to in envelope.to() {
            commands.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
        }
        commands.push_str(&Data.to_string());
        // Every reply is read, even after a refusal, so the conversation stays in step; a
        // broken connection ends it at once.
        let mut refused = None;
        let replies = 1 + envelope.to().len() + 1;
        for n in 0..replies {
            let reply = if n == 0 {
                self.conn.command(&commands).await
            } else {
                self.conn.read_response().await
            };
            match reply {
                Ok(_) => {}
                Err(e) if e.is_permanent() || e.is_transient() => {
                    refused.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = refused {
            return Err(e);
        }
        gate.pass().await;
        self.conn.command(DataBody(text)).await
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

/// 5xx replies are permanent; everything else (4xx, network, TLS) is worth another try.
pub(super) fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(error_chain(&e))
    } else {
        SendError::Transient(error_chain(&e))
    }
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

#[cfg(test)]
mod tests {
    use super::DataBody;

    #[test]
    fn data_lines_starting_with_a_dot_are_doubled_and_the_end_follows() {
        let body = DataBody(".first\r\nmiddle .\r\n..two\r\n.\r\nlast").to_string();
        assert_eq!(body, "..first\r\nmiddle .\r\n...two\r\n..\r\nlast\r\n.\r\n");
        assert_eq!(DataBody("one\r\n").to_string(), "one\r\n.\r\n");
    }
}
