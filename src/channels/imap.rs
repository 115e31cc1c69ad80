//! Email in by IMAP: polls a mailbox for unseen messages, hands each to
//! [`inbound::handle`](super::inbound::handle), then flags it seen (or moves it). Uses IDLE
//! where the server offers it, and reconnects with backoff when the connection drops.

use std::time::Duration;

use chrono::Utc;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::inbound::handle;
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("connecting to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("the server closed the connection before greeting")]
    NoGreeting,
    #[error("no answer while {0} within {1:?} (imap.timeout_seconds)")]
    Timeout(&'static str, Duration),
}

/// How long one IDLE is left before it is ended and begun again (after a search): under the
/// five or six minutes after which NAT gateways and firewalls forget a quiet connection
/// without a word, which a longer IDLE would wait on, replies unread, until the server's own
/// limit.
const IDLE_MOST: Duration = Duration::from_secs(4 * 60);

/// Each exchange with the server is bounded by `imap.timeout_seconds`: a server that takes
/// the connection and then says nothing is dropped, and reconnected to with backoff, rather
/// than holding the poller forever. (The IDLE wait, when silence is normal, has its own cap.)
async fn bounded<T, E>(
    state: &Services,
    what: &'static str,
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ImapError>
where
    ImapError: From<E>,
{
    bounded_for(state, what, 0, step).await
}

/// The slowest a message is read before its fetch counts as stalled: 64 KiB a second (a
/// 25 MiB reply then has about seven minutes more than `imap.timeout_seconds`).
const SLOWEST_READ: u64 = 64 * 1024;

/// [`bounded`], for an exchange that carries `bytes` as well: its limit grows by the time
/// they take at [`SLOWEST_READ`], so a large reply over a slow link is read rather than cut
/// off and fetched again, over and over, in front of the mail behind it.
async fn bounded_for<T, E>(
    state: &Services,
    what: &'static str,
    bytes: u64,
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ImapError>
where
    ImapError: From<E>,
{
    let limit = Duration::from_secs(state.config.imap.timeout_seconds + bytes / SLOWEST_READ);
    match tokio::time::timeout(limit, step).await {
        Ok(r) => r.map_err(ImapError::from),
        Err(_) => Err(ImapError::Timeout(what, limit)),
    }
}

/// What one polling pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollReport {
    pub handled: usize,
    pub deferred: usize,
}

/// Connects, logs in and selects the mailbox, then polls until shutdown (or an error).
async fn session_loop(
    state: &Services,
    shutdown: &mut watch::Receiver<bool>,
    once: bool,
    opened: &mut bool,
    refused: &mut Refusals,
) -> Result<PollReport, ImapError> {
    let c = &state.config.imap;
    let addr = format!("{}:{}", c.host, c.port);
    let tcp = bounded(state, "connecting", async {
        TcpStream::connect((c.host.as_str(), c.port)).await.map_err(|e| ImapError::Connect(addr.clone(), e))
    })
    .await?;
    tcp.set_nodelay(true).ok();
    if c.tls == crate::config::Tls::Tls {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(c.host.clone())
            .map_err(|e| ImapError::Tls(e.to_string()))?;
        let connector = super::tls_client().map_err(ImapError::Tls)?;
        let tls = bounded(state, "starting TLS", async {
            connector.connect(name, tcp).await.map_err(|e| ImapError::Tls(e.to_string()))
        })
        .await?;
        run_session(state, tls, shutdown, once, opened, refused).await
    } else {
        run_session(state, tcp, shutdown, once, opened, refused).await
    }
}

async fn run_session<S>(
    state: &Services,
    stream: S,
    shutdown: &mut watch::Receiver<bool>,
    once: bool,
    opened: &mut bool,
    refused: &mut Refusals,
) -> Result<PollReport, ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let c = &state.config.imap;
    let mut client = async_imap::Client::new(stream);
    bounded(state, "waiting for the greeting", async {
        client.read_response().await.map_err(|e| ImapError::Connect(c.host.clone(), e))?.ok_or(ImapError::NoGreeting)
    })
    .await?;
    let mut session = bounded(state, "signing in", async {
        client.login(&c.username, c.password.expose()).await.map_err(|(e, _)| e)
    })
    .await?;
    let mailbox = bounded(state, "selecting the mailbox", session.select(&c.mailbox)).await?;
    refused.numbered(mailbox.uid_validity);
    let idle = bounded(state, "asking for capabilities", session.capabilities()).await?.has_str("IDLE");
    tracing::info!(host = %c.host, mailbox = %c.mailbox, idle, "IMAP mailbox open");
    *opened = true;
    let mut total = PollReport::default();
    loop {
        let r = poll_once(state, &mut session, refused).await?;
        total.handled += r.handled;
        total.deferred += r.deferred;
        if once || *shutdown.borrow() {
            bounded(state, "signing out", session.logout()).await.ok();
            return Ok(total);
        }
        // Mail that came while the pass ran is told of in the answers to its commands (an
        // EXISTS beside a STORE's answer), which IDLE would not tell again: the mailbox is
        // searched once more first.
        if arrived(&session) {
            continue;
        }
        // A message left for later (the store failed on it, or the server would not give
        // it) is tried again after `poll_seconds`: IDLE would wait for new mail instead.
        if idle && r.deferred == 0 {
            let mut handle = session.idle();
            bounded(state, "starting IDLE", handle.init()).await?;
            let (wait, stop) = handle.wait_with_timeout(IDLE_MOST);
            let ended = tokio::select! {
                r = wait => { r?; false }
                _ = shutdown.changed() => true,
            };
            drop(stop);
            session = bounded(state, "ending IDLE", handle.done()).await?;
            if ended {
                bounded(state, "signing out", session.logout()).await.ok();
                return Ok(total);
            }
        } else {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(c.poll_seconds)) => {}
                _ = shutdown.changed() => {
                    bounded(state, "signing out", session.logout()).await.ok();
                    return Ok(total);
                }
            }
        }
    }
}

/// Tries at a message the server will not give before it is left to a person.
const MOST_REFUSALS: u32 = 5;

/// How often each message could not be taken (the server gave no body, or reading or
/// flagging it failed), kept across the poller's sessions: a failure that ends a session
/// would otherwise meet the same message first in the next one, every time, and hold up
/// every message behind it.
///
/// A UID names one message only within its mailbox's UIDVALIDITY: a mailbox rebuilt or moved
/// to another server numbers its messages anew, and the counts are let go then, so that a
/// new message given an old number is read.
#[derive(Default)]
struct Refusals {
    counts: std::collections::HashMap<u32, u32>,
    validity: Option<u32>,
}

impl Refusals {
    /// The mailbox was selected, its UIDs valid under `validity`.
    fn numbered(&mut self, validity: Option<u32>) {
        if validity != self.validity {
            if !self.counts.is_empty() {
                tracing::info!("the IMAP mailbox numbers its messages anew (UIDVALIDITY); its refusals are let go");
            }
            self.counts.clear();
            self.validity = validity;
        }
    }

    /// Counts one more refusal of `uid`; how many there have been. Said once, at the last
    /// try: the message is left unread in the mailbox for a person.
    fn again(&mut self, uid: u32) -> u32 {
        let n = self.counts.entry(uid).or_default();
        *n = n.saturating_add(1);
        if *n == MOST_REFUSALS {
            tracing::error!(
                uid,
                "an unseen IMAP message could not be taken in {MOST_REFUSALS} tries; it is left unread in the \
                 mailbox for a person to look at"
            );
            metrics::counter!("cport_imap_errors_total").increment(1);
        }
        *n
    }

    /// Whether `uid` has had its tries and is passed over.
    fn given_up(&self, uid: u32) -> bool {
        self.counts.get(&uid).is_some_and(|n| *n >= MOST_REFUSALS)
    }
}

/// Whether the server said, unasked, that mail came (EXISTS, RECENT) since this was last
/// asked; what else it said unasked is of no use here and is let go.
fn arrived<S>(session: &async_imap::Session<S>) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    use async_imap::types::UnsolicitedResponse;
    let mut came = false;
    while let Ok(r) = session.unsolicited_responses.try_recv() {
        came |= matches!(r, UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_));
    }
    came
}

/// Handles every unseen message once. A message the store could not take stays unseen for
/// the next pass; every other outcome (processed, ignored, refused) marks it done.
async fn poll_once<S>(
    state: &Services,
    session: &mut async_imap::Session<S>,
    refused: &mut Refusals,
) -> Result<PollReport, ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let mut uids: Vec<u32> = bounded(state, "searching", session.uid_search("UNSEEN")).await?.into_iter().collect();
    uids.sort_unstable();
    let mut report = PollReport::default();
    // The sizes first, in one exchange: a message over `inbound.max_bytes` is refused without
    // being read into memory. A server that gives no size leaves it to be checked once read.
    let max = state.config.inbound.max_bytes;
    let sizes: std::collections::HashMap<u32, u32> = match uids.is_empty() {
        true => Default::default(),
        false => bounded(state, "reading message sizes", async {
            session.uid_fetch(uid_set(&uids), "RFC822.SIZE").await?.try_collect::<Vec<_>>().await
        })
        .await?
        .into_iter()
        .filter_map(|f| Some((f.uid?, f.size?)))
        .collect(),
    };
    for uid in uids {
        // Left for a person after its tries (see `Refusals`).
        if refused.given_up(uid) {
            continue;
        }
        // Too large to read: its header alone is, so that the contact who sent it is told
        // and staff see it among inbound mail (as the MTA pipe bounces it, and the HTTP
        // route answers 413).
        let too_large = sizes.get(&uid).map(|s| u64::from(*s)).filter(|s| *s > max);
        let (part, what) = match too_large {
            Some(_) => ("BODY.PEEK[HEADER]", "fetching a message's header"),
            None => ("BODY.PEEK[]", "fetching a message"),
        };
        // A header is small; a whole message is given the time its size takes.
        let carries = match too_large {
            Some(_) => 0,
            None => sizes.get(&uid).map_or(max, |s| u64::from(*s)),
        };
        // A failure here may leave the connection in any state: the session ends (the next
        // one starts clean), and the message is counted against its tries.
        let fetched: Vec<_> = match bounded_for(state, what, carries, async {
            session.uid_fetch(uid.to_string(), part).await?.try_collect().await
        })
        .await
        {
            Ok(f) => f,
            Err(e) => {
                refused.again(uid);
                return Err(e);
            }
        };
        let raw = fetched.into_iter().find_map(|f| match too_large {
            Some(_) => f.header().map(<[u8]>::to_vec),
            None => f.body().map(<[u8]>::to_vec),
        });
        // No body: the server refused this one message (async-imap ends a fetch at a tagged
        // NO or BAD with no item and no error) or it went away. It stays unseen for a later
        // pass, and the ones after it are not held up behind it.
        let Some(raw) = raw else {
            // One the server never gives is left in the mailbox for a person, said once, and
            // no longer keeps the poller from waiting in IDLE.
            if refused.again(uid) < MOST_REFUSALS {
                tracing::warn!(uid, "IMAP server gave no body for an unseen message; left for later");
                report.deferred += 1;
            }
            continue;
        };
        let now = Utc::now();
        let handled = match too_large {
            Some(size) => {
                tracing::warn!(uid, size, max, "IMAP message not read: larger than inbound.max_bytes");
                crate::channels::inbound::handle_unread(state, &raw, size, now).await
            }
            None => handle(state, &raw, now).await,
        };
        match handled {
            Err(e) if e.is_temporary() => {
                tracing::warn!(uid, error = %e, "IMAP message left for later");
                report.deferred += 1;
                continue;
            }
            Err(e) => {
                tracing::warn!(uid, error = %e, "IMAP message refused");
                // Its sender is told nothing (no bounce, as the MTA pipe's refusal makes):
                // recorded, so that staff see it among inbound mail.
                if let Err(not) = crate::channels::inbound::record_refused(state, &raw, &e, now).await {
                    tracing::warn!(uid, error = %not, "IMAP message refused and not recorded; left for later");
                    if refused.again(uid) < MOST_REFUSALS {
                        report.deferred += 1;
                    }
                    continue;
                }
            }
            Ok(_) => {}
        }
        let moved = match state.config.imap.processed_mailbox.as_str() {
            "" => false,
            to => match bounded(state, "moving a message", session.uid_mv(uid.to_string(), to)).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(uid, to, error = %e, "IMAP message not moved; flagged seen where it is");
                    false
                }
            },
        };
        if !moved {
            let flagged: Result<Vec<_>, _> = bounded(state, "flagging a message seen", async {
                session.uid_store(uid.to_string(), "+FLAGS (\\Seen)").await?.try_collect().await
            })
            .await;
            // Handled, but still unseen: the next session meets it again (its Message-ID
            // is known by then, so it is not acted on twice), within its tries.
            if let Err(e) = flagged {
                refused.again(uid);
                return Err(e);
            }
        }
        report.handled += 1;
    }
    Ok(report)
}

/// UIDs as an IMAP set, runs of consecutive ones as ranges (`1:3,7`), so a long backlog is
/// one short command.
fn uid_set(sorted: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i].checked_add(1) == Some(sorted[i + 1]) {
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        match sorted[i] == start {
            true => out.push_str(&start.to_string()),
            false => out.push_str(&format!("{start}:{}", sorted[i])),
        }
        i += 1;
    }
    out
}

/// One pass (connect, handle what is unseen, log out): for tests and `cport imap poll`.
pub async fn poll(state: &Services) -> Result<PollReport, ImapError> {
    let (_tx, mut rx) = watch::channel(false);
    session_loop(state, &mut rx, true, &mut false, &mut Refusals::default()).await
}

/// The poller: runs while `imap.host` is set, reconnecting after failures (1 s doubling to 5
/// minutes) until shutdown.
pub async fn run(state: Services, mut shutdown: watch::Receiver<bool>) {
    let mut delay = Duration::from_secs(1);
    let mut refused = Refusals::default();
    loop {
        state.faults.panic_if_armed("task:imap");
        let mut opened = false;
        let began = std::time::Instant::now();
        match session_loop(&state, &mut shutdown, false, &mut opened, &mut refused).await {
            Ok(_) => break,
            Err(e) => {
                // A session that opened the mailbox and then worked for a while was a good
                // one: the wait before the next starts short again. One that fails soon after
                // opening each time keeps backing off (a server signed in to every second
                // may lock the account).
                if opened && began.elapsed() >= Duration::from_secs(60) {
                    delay = Duration::from_secs(1);
                }
                tracing::warn!(error = %e, retry_in = ?delay, "IMAP connection failed");
                metrics::counter!("cport_imap_errors_total").increment(1);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => break,
        }
        delay = (delay * 2).min(Duration::from_secs(300));
    }
    tracing::info!("IMAP poller stopped");
}

#[cfg(test)]
mod tests {
    /// The tries of a message are counted across sessions (the poller keeps one count for
    /// its life): after the last, the message is passed over, and others are not.
    #[test]
    fn a_message_is_passed_over_after_its_tries() {
        let mut refused = super::Refusals::default();
        refused.numbered(None);
        for n in 1..super::MOST_REFUSALS {
            assert_eq!(refused.again(7), n);
            assert!(!refused.given_up(7), "try {n} of {}", super::MOST_REFUSALS);
        }
        refused.again(7);
        assert!(refused.given_up(7) && !refused.given_up(8));
        // Selected again under the same numbering, the count stands; renumbered, UID 7 is
        // another message, read like any new one.
        refused.numbered(None);
        assert!(refused.given_up(7));
        refused.numbered(Some(42));
        assert!(!refused.given_up(7));
    }

    #[test]
    fn a_uid_set_gives_runs_as_ranges() {
        assert_eq!(super::uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(super::uid_set(&[4]), "4");
        assert_eq!(super::uid_set(&[]), "");
    }
}
