//! The dispatcher: claims due outbox rows, sends them on their channel, and records the
//! result. Failures are retried with exponential backoff and jitter; after
//! `outbox.max_attempts` (or a permanent error) a message is dead until staff re-queue it.
//!
//! A little over 500 lines: the step (claim, send within its time, mark) is one path read
//! top to bottom; rendering, the loops, the marks' group commit and what an outcome means
//! beyond its message are in modules of their own.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use crate::channels::Providers;
use crate::channels::{Gate, Hold, SendError};
use crate::model::{MessageKind, Outlet};
use crate::store::StoreError;
use crate::store::contacts::Reach;
pub use crate::store::outbox::Lane;
use crate::store::outbox::{self, Mark, OutboxRow, Take};

mod aftermath;
mod loops;
mod marks;
mod render;

use crate::actions::outbox::unwanted;
use aftermath::{address_refused, after_quiet_hours};
pub use loops::{DrainReport, drain, drain_concurrently, drain_with, run_worker, senders};
use marks::PendingMark;
pub use marks::{Crew, Marker};
use render::{EmailOut, chat_message, email_of};
pub use render::{Rendered, render};

/// What one dispatch step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Nothing was due.
    Empty,
    Retrying,
    Dead,
    Dropped,
}

/// How long a change event is tried for TOT's webhook, whatever `outbox.max_attempts` says:
/// its receiver down over a weekend must not make the events of those days dead.
pub const WEBHOOK_TRIES_FOR: Duration = Duration::days(4);

/// Whether a message that failed for now is tried again: until `outbox.max_attempts` tries,
/// and a change event for the webhook also until it is [`WEBHOOK_TRIES_FOR`] old.
fn retries_left(state: &Providers, row: &OutboxRow, now: DateTime<Utc>) -> bool {
    row.attempts < i64::from(state.config.outbox.max_attempts) || within_webhook_days(row, now)
}

/// A change event for the webhook younger than [`WEBHOOK_TRIES_FOR`]: tried past its attempts.
fn within_webhook_days(row: &OutboxRow, now: DateTime<Utc>) -> bool {
    row.message.channel == Outlet::Webhook && now - row.created_at < WEBHOOK_TRIES_FOR
}

/// The delay before attempt `attempts + 1`: base × 2^(attempts−1), capped, ±20 % jitter.
pub fn backoff(state: &Providers, attempts: i64) -> Duration {
    let base = state.config.outbox.backoff_base_seconds as f64;
    let max = state.config.outbox.backoff_max_seconds as f64;
    let exp = (attempts.max(1) - 1).min(30) as i32;
    let secs = (base * 2f64.powi(exp)).min(max);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    Duration::milliseconds((secs * jitter * 1000.0) as i64)
}

/// Sends the one message queued under `idem_key` if it is due (the MTA pipe's answer to the
/// reply it took), leaving every other message to the server's senders: a pipe that sent
/// all that is due could run past the MTA's time limit and be killed mid-send.
pub async fn send_keyed(state: &Providers, idem_key: &str) -> Result<Outcome, StoreError> {
    Ok(dispatch(state, Utc::now(), 1, &Crew::default(), Take::Keyed(idem_key)).await?.pop().unwrap_or(Outcome::Empty))
}

/// Claims and sends one due message.
pub async fn dispatch_one(state: &Providers) -> Result<Outcome, StoreError> {
    Ok(dispatch_batch(state, 1).await?.pop().unwrap_or(Outcome::Empty))
}

/// Messages a sender claims at once: fewer store round trips per claim. Each is marked as
/// soon as it is sent, so a sender that dies re-sends at most the messages it was sending
/// or had just sent (see [`Marker`]); the rest of its claim is sent once the lease runs out.
pub const BATCH: i64 = 16;

/// Claims up to `limit` due messages and sends them one after another. An empty result
/// means nothing was due.
pub async fn dispatch_batch(state: &Providers, limit: i64) -> Result<Vec<Outcome>, StoreError> {
    dispatch_batch_at(state, Utc::now(), limit).await
}

/// [`dispatch_batch`] as if the time were `now` (what is due is decided by it).
pub async fn dispatch_batch_at(state: &Providers, now: DateTime<Utc>, limit: i64) -> Result<Vec<Outcome>, StoreError> {
    dispatch(state, now, limit, &Crew::default(), Take::Lane(Lane::All)).await
}

/// How one send ended for the books: marked already, or a mark still committing.
enum Settle {
    Done(Outcome),
    Pending {
        mark: PendingMark,
        channel: Outlet,
        kind: MessageKind,
    },
    /// Not handed over: its gate was refused (the delivery before it could not be marked).
    /// Its row goes back to the outbox with its attempt.
    Refused(i64),
}

impl Settle {
    async fn finish(self, state: &crate::services::Services) -> Result<Outcome, StoreError> {
        match self {
            Settle::Done(o) => Ok(o),
            Settle::Refused(_) => Ok(Outcome::Retrying),
            Settle::Pending { mark, channel, kind } => {
                let marked = mark.settle(state).await?;
                count(Outcome::Sent, channel, kind, marked);
                Ok(Outcome::Sent)
            }
        }
    }
}

/// The step: claims, sends and marks each message, renewing the claim while it works so
/// no other sender takes a row it is still on. When `stop` turns true, the message in hand
/// is finished and the rest of the claim handed back.
async fn dispatch(
    state: &Providers,
    now: DateTime<Utc>,
    limit: i64,
    crew: &Crew,
    take: Take<'_>,
) -> Result<Vec<Outcome>, StoreError> {
    let lease = Duration::seconds(state.config.outbox.lease_seconds as i64);
    let token = outbox::new_claim_token();
    if state.faults.fires("outbox:claim") {
        return Err(StoreError::Conflict("fault injected at outbox:claim".into()));
    }
    let rows = outbox::claim(&state.db, take, limit, &token, now, now + lease).await?;
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut contacts: Vec<String> = rows.iter().filter_map(|r| r.message.contact_id.clone()).collect();
    contacts.sort_unstable();
    contacts.dedup();
    let mut rows = rows.into_iter();
    let mut refused: Vec<i64> = vec![];
    // Until when this sender is known to hold the claim: the heartbeat moves it on with each
    // renewal the store takes. A third of the lease (one renewal missed, and the next one
    // failing) must be left for a delivery to begin, or for the batch to go on.
    let (held, until) = tokio::sync::watch::channel(now + lease);
    let hold = Hold { until, margin: lease / 3 };
    let sends = async {
        let contacts: Vec<&str> = contacts.iter().map(String::as_str).collect();
        let view = std::sync::Mutex::new(std::sync::Arc::new(View::read(&state.db, &contacts).await?));
        let batch = Batch { state, crew, token: &token, contacts: &contacts, view };
        // The previous delivery's mark commits while the next message is built and begun;
        // it is settled before the next one is delivered.
        let mut pending: Option<Settle> = None;
        for row in rows.by_ref() {
            if hold.lapsing() {
                if let Some(p) = pending.take() {
                    out.push(p.finish(state).await?);
                }
                refused.push(row.id);
                tracing::warn!(
                    id = row.id,
                    "the store did not take this sender's claim renewals; the rest of its batch is left for a later try"
                );
                break;
            }
            if crew.stopping() {
                if let Some(p) = pending.take() {
                    out.push(p.finish(state).await?);
                }
                // Handed back below with the rest not begun.
                refused.push(row.id);
                tracing::info!("stopping: the unsent messages of this batch go back to the outbox");
                break;
            }
            // The next message goes as far as it can while the previous mark commits; its
            // delivery waits for that mark (see `Gate`), and is refused if the mark failed.
            let this = match pending.take() {
                None => send_guarded(&batch, row, &Gate::open().holding(&hold)).await?,
                Some(previous) => {
                    let (key, gate) = Gate::closed();
                    let gate = gate.holding(&hold);
                    let settle = async {
                        let settled = previous.finish(state).await;
                        if settled.is_ok() {
                            key.open();
                        }
                        settled
                    };
                    let (this, settled) = tokio::join!(send_guarded(&batch, row, &gate), settle);
                    match settled {
                        Ok(s) => out.push(s),
                        Err(e) => {
                            // Its gate stayed shut by this very failure: it goes back below
                            // with the rest, not left claimed with an attempt never made.
                            if let Ok(Settle::Refused(id)) = this {
                                refused.push(id);
                            }
                            return Err(e);
                        }
                    }
                    this?
                }
            };
            // Refused at its gate (the mark before it failed, the claim is lapsing, the send's
            // time was nearly spent before the delivery began): never handed over, it goes
            // back below with its attempt, whichever message of the batch it was.
            if let Settle::Refused(id) = this {
                refused.push(id);
                continue;
            }
            pending = Some(this);
        }
        if let Some(p) = pending {
            out.push(p.finish(state).await?);
        }
        Ok::<_, StoreError>(())
    };
    // The claim outlives every send it covers: it is renewed every third of the lease for
    // as long as this sender works on it (each send is itself bounded in time).
    let heartbeat = async {
        let every = (lease / 3).to_std().unwrap_or(std::time::Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            let asked = Utc::now() + lease;
            let renewed = match state.faults.fires("outbox:renew") {
                true => Err(StoreError::Conflict("fault injected at outbox:renew".into())),
                false => outbox::renew_claim(&state.db, &token, asked).await,
            };
            match renewed {
                Ok(0) => {
                    // Another sender took the rows over (this process was paused past the
                    // lease): the hold is not moved on, so no delivery begins on them.
                    tracing::warn!("this sender's claim on the outbox was taken over; its batch stops");
                }
                Ok(_) => {
                    let _ = held.send(asked);
                }
                Err(e) => tracing::warn!(error = %e, "could not renew a claim on the outbox"),
            }
        }
    };
    let sent = tokio::select! {
        r = sends => r,
        _ = heartbeat => Ok(()),
    };
    // The rows not yet begun, and those refused at their gate, go back at once with their
    // attempt given back, rather than waiting out the claim with an attempt used that never was.
    let left: Vec<i64> = refused.into_iter().chain(rows.map(|r| r.id)).collect();
    if !left.is_empty() {
        match outbox::release_claim(&state.db, &token, &left, Utc::now()).await {
            Ok(n) => tracing::info!(handed_back = n, "unsent messages of a batch handed back to the outbox"),
            Err(e) => {
                tracing::warn!(error = %e, "unsent messages not handed back; they wait for their claim to run out")
            }
        }
    }
    sent.map(|()| out)
}

/// What every send of one claimed batch shares.
struct Batch<'a> {
    state: &'a Providers,
    crew: &'a Crew,
    /// The claim the batch's rows are held by.
    token: &'a str,
    /// The contacts its rows are for.
    contacts: &'a [&'a str],
    /// What it knows of them (see [`Batch::view`]).
    view: std::sync::Mutex<std::sync::Arc<View>>,
}

/// What a batch knows of its contacts as it sends.
struct View {
    /// Contacts whose email is suspended (after bounces), with the reason.
    suspended: HashMap<String, String>,
    /// The batch's contacts that are still there and active, with how they are reached now.
    active: HashMap<String, Reach>,
    /// The batch's contacts' saved settings (none saved: the defaults).
    settings: HashMap<String, crate::store::settings::ContactSettings>,
    read_at: Instant,
}

/// How old a batch's [`View`] may grow before it is read again: a batch held up by a slow
/// server (minutes, at its sends' limits) does not send on what was true as it began, to an
/// address TOT has changed since or a contact made inactive.
const VIEW_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

impl View {
    async fn read(db: &crate::store::Db, contacts: &[&str]) -> Result<View, StoreError> {
        Ok(View {
            suspended: outbox::suspended_contacts(db).await?,
            active: crate::store::contacts::active_of(db, contacts).await?,
            settings: crate::store::settings::settings_of(db, contacts).await?,
            read_at: Instant::now(),
        })
    }
}

impl Batch<'_> {
    /// The batch's view of its contacts, read again once it is older than [`VIEW_FRESH`]. One
    /// that cannot be read again is used as it was: the store's trouble shows at the mark.
    async fn view(&self) -> std::sync::Arc<View> {
        let held = self.view.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if held.read_at.elapsed() < VIEW_FRESH {
            return held;
        }
        match View::read(&self.state.db, self.contacts).await {
            Ok(fresh) => {
                let fresh = std::sync::Arc::new(fresh);
                *self.view.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh.clone();
                fresh
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the batch's contacts again; sending on what was read before");
                held
            }
        }
    }
}

/// Sends one claimed row. A panic while building or sending it (a bug) makes that message
/// dead with the panic's words; the batch and the sender go on.
async fn send_guarded(batch: &Batch<'_>, row: OutboxRow, gate: &Gate) -> Result<Settle, StoreError> {
    use futures::FutureExt;
    let Batch { state, token, .. } = *batch;
    let (id, channel, kind) = (row.id, row.message.channel, row.message.kind);
    // Only a claim that ran out unmarked takes a row past its last attempt (a failure marks
    // the row dead at the last one): the sender stopped while sending it, each time. A
    // message that brings its sender down (an abort, not a panic) goes no further.
    let max = i64::from(state.config.outbox.max_attempts);
    if row.attempts > max && !within_webhook_days(&row, Utc::now()) {
        let error = format!(
            "the sender stopped while sending this message after {max} attempts; not tried again (see the log)"
        );
        tracing::error!(
            id,
            attempts = row.attempts,
            "a message outlived its attempts in claims that ran out; it is dead"
        );
        let marked =
            outbox::mark(&state.db, id, token, Mark::Failed { error: &error, retry_at: None }, Utc::now()).await?;
        count(Outcome::Dead, channel, kind, marked);
        return Ok(Settle::Done(Outcome::Dead));
    }
    match std::panic::AssertUnwindSafe(send_row(batch, row, gate)).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => {
            let why = crate::supervise::panic_text(&panic);
            tracing::error!(id, error = %why, "bug: sending a message panicked; the message is dead");
            let error = format!("internal error while sending (a bug; see the log): {why}");
            let marked =
                outbox::mark(&state.db, id, token, Mark::Failed { error: &error, retry_at: None }, Utc::now()).await?;
            count(Outcome::Dead, channel, kind, marked);
            Ok(Settle::Done(Outcome::Dead))
        }
    }
}

fn count(outcome: Outcome, channel: Outlet, kind: MessageKind, marked: bool) {
    let label = match outcome {
        Outcome::Sent => "sent",
        Outcome::Retrying => "failed",
        Outcome::Dead => "dead",
        Outcome::Dropped => "dropped",
        Outcome::Empty => "empty",
    };
    if !marked {
        // Another sender holds the row now: its outcome is the one that counts.
        tracing::warn!(%channel, %kind, outcome = label, "claim lost before marking; the outcome was not recorded");
        metrics::counter!("cport_outbox_claims_lost_total").increment(1);
        return;
    }
    metrics::counter!(format!("cport_outbox_{label}_total"), "channel" => channel.as_str(), "kind" => kind.as_str())
        .increment(1);
}

/// Builds and sends one row within `outbox.send_timeout_seconds`. `Ok(None)`: drop it.
async fn attempt(
    state: &Providers,
    row: &OutboxRow,
    (suspended, active): (&HashMap<String, String>, &HashMap<String, Reach>),
    gate: &Gate,
) -> Result<Option<String>, SendError> {
    let now = Utc::now();
    // A store error while rendering one message must not stop the batch: it is that
    // message's transient failure.
    let store = |e: StoreError| SendError::Transient(format!("store: {e}"));
    let reach = row.message.contact_id.as_ref().and_then(|c| active.get(c));
    match (row.message.channel, row.message.contact_id.as_ref().and_then(|c| suspended.get(c))) {
        (Outlet::Email, Some(reason)) => {
            Err(SendError::Permanent(format!("email to this contact is suspended: {reason}")))
        }
        (Outlet::Email, None) => send_email(&Going { state, row, reach, now }, gate).await.map_err(store)?,
        (Outlet::Webhook, _) => {
            gate.pass().await?;
            crate::channels::webhook::send(&state.http, &state.config.webhook, row).await.map(Some)
        }
        (out, _) if out.chat().is_some_and(|c| state.chat.contains_key(&c)) => {
            send_chat(&Going { state, row, reach, now }, gate).await.map_err(store)?
        }
        (other, _) => Err(SendError::Permanent(format!("no sender for channel `{other}`"))),
    }
}

/// How long a message handed over is waited for in all, past `outbox.send_timeout_seconds`:
/// the SMTP pool's wait for the end of data's answer, and a little more.
pub(crate) const HANDED_OVER_MOST: std::time::Duration = std::time::Duration::from_secs(630);

/// Sends one claimed row and marks it, if this sender still holds its claim (a delivery's
/// mark may still be committing when this returns).
async fn send_row(batch: &Batch<'_>, row: OutboxRow, gate: &Gate) -> Result<Settle, StoreError> {
    let Batch { state, crew, token, .. } = *batch;
    let started = Instant::now();
    let view = batch.view().await;
    let (suspended, active, settings) = (&view.suspended, &view.active, &view.settings);
    let limit = std::time::Duration::from_secs(state.config.outbox.send_timeout_seconds);
    // A delivery begins with a quarter of the send's time left at least: one held at its
    // gate longer is handed back untried, not handed over and then given up on at once.
    let gate = &gate.until(tokio::time::Instant::now() + limit, limit / 4);
    let now = Utc::now();
    let unwanted = unwanted(state, &row, active, settings, now).await;
    // An alert due while its contact's quiet hours hold it (they were set after it was
    // queued, or staff queued it again) goes back untried, with its attempt, until they end.
    if let Ok(None) = unwanted {
        let until = after_quiet_hours(state, &row, settings, now).await;
        if until > now {
            tracing::info!(id = row.id, until = %until, "an alert held by its contact's quiet hours");
            outbox::release_claim_until(&state.db, token, &[row.id], until, now).await?;
            return Ok(Settle::Done(Outcome::Retrying));
        }
    }
    let attempted = async {
        match &unwanted {
            Ok(Some(_)) => Ok(None),
            Err(e) => Err(SendError::Transient(format!("store: {e}"))),
            Ok(None) => attempt(state, &row, (suspended, active), gate).await,
        }
    };
    let timed_out = || {
        tracing::warn!(id = row.id, channel = %row.message.channel, "send timed out; the connection was dropped");
        Err(SendError::Transient(format!(
            "no answer within {} s (outbox.send_timeout_seconds); the connection was dropped",
            limit.as_secs()
        )))
    };
    let result = async {
        tokio::pin!(attempted);
        match tokio::time::timeout(limit, &mut attempted).await {
            Ok(r) => r,
            // Handed over already (for SMTP, the end of data written): its answer is waited for,
            // within the provider's own limit on it (the ten minutes RFC 5321 gives a server to
            // check a message). Given up on here, a message the server then takes would be sent
            // again at every try: a relay slower than the send's time would get every attempt.
            Err(_) if gate.passed() => match tokio::time::timeout(HANDED_OVER_MOST, attempted).await {
                Ok(r) => r,
                Err(_) => timed_out(),
            },
            Err(_) => timed_out(),
        }
    }
    .await;
    if result.is_err() && gate.refused() {
        return Ok(Settle::Refused(row.id));
    }
    let now = Utc::now();
    let error;
    let (outcome, mark) = match &result {
        Ok(Some(provider_id)) => {
            metrics::histogram!("cport_outbox_send_seconds", "channel" => row.message.channel.as_str())
                .record(started.elapsed().as_secs_f64());
            (Outcome::Sent, Mark::Sent(provider_id))
        }
        Ok(None) => match (unwanted, row.message.kind) {
            (Ok(Some(why)), _) => (Outcome::Dropped, Mark::Dropped(why)),
            (_, MessageKind::Digest) => (
                Outcome::Dropped,
                Mark::Dropped(
                    "everything it lists was dealt with before it went, or is no longer its contact's to see",
                ),
            ),
            (_, MessageKind::Banner) => (Outcome::Dropped, Mark::Dropped("its contact or its banner is gone")),
            _ => (
                Outcome::Dropped,
                Mark::Dropped("every item was resolved, or its category no longer alerted at once, before sending"),
            ),
        },
        // A provider's "wait this long" is obeyed, and does not use up the attempts, for a
        // day from the message's queueing; after that (a limit that never lifts) each one
        // counts as a failed try, so the message goes dead once they are spent rather than
        // wait unseen for ever.
        Err(SendError::RateLimited(wait)) if now - row.created_at < Duration::days(1) => {
            let at = now + Duration::from_std(*wait).unwrap_or_else(|_| Duration::seconds(60));
            let at = after_quiet_hours(state, &row, settings, at).await;
            tracing::warn!(id = row.id, retry_at = %at, "rate limited by the provider; will retry");
            error = format!("rate limited; retry after {wait:?}");
            let mark = Mark::RateLimited { error: &error, retry_at: at };
            (Outcome::Retrying, mark)
        }
        // A chat gone for the bot (blocked, deleted): nothing to retry, and no failure of
        // TOT's to look into; the chat is unlinked below.
        Err(SendError::AddressRefused(why)) if row.message.channel.is_chat() => {
            tracing::warn!(id = row.id, channel = %row.message.channel, error = %why, "the chat is gone; unlinking it");
            error = format!("the chat is gone ({why}); it was unlinked");
            (Outcome::Dropped, Mark::Dropped(&error))
        }
        Err(SendError::RateLimited(wait)) if retries_left(state, &row, now) => {
            let waited = now + Duration::from_std(*wait).unwrap_or_else(|_| Duration::seconds(60));
            let at = after_quiet_hours(state, &row, settings, waited.max(now + backoff(state, row.attempts))).await;
            error = format!("rate limited for more than a day since it was queued; retry after {wait:?}");
            tracing::warn!(id = row.id, attempts = row.attempts, retry_at = %at, "still rate limited a day on; counted as a failed try");
            (Outcome::Retrying, Mark::Failed { error: &error, retry_at: Some(at) })
        }
        Err(SendError::Transient(msg)) if retries_left(state, &row, now) => {
            let at = after_quiet_hours(state, &row, settings, now + backoff(state, row.attempts)).await;
            tracing::warn!(id = row.id, attempts = row.attempts, error = %msg, retry_at = %at, "send failed; will retry");
            let mark = Mark::Failed { error: msg, retry_at: Some(at) };
            (Outcome::Retrying, mark)
        }
        Err(e) => {
            tracing::error!(id = row.id, attempts = row.attempts, error = %e, "send failed; message is dead");
            error = e.to_string();
            let mark = Mark::Failed { error: &error, retry_at: None };
            (Outcome::Dead, mark)
        }
    };
    // A delivery's mark joins the crew's group commit; every other outcome is marked alone.
    if let (Mark::Sent(provider_id), Some(marker)) = (&mark, &crew.marker) {
        return Ok(Settle::Pending {
            mark: marker.submit(row.id, token, provider_id),
            channel: row.message.channel,
            kind: row.message.kind,
        });
    }
    let marked = match mark {
        Mark::Sent(provider_id) => marks::mark_sent(state, row.id, token, provider_id).await?,
        mark => outbox::mark(&state.db, row.id, token, mark, now).await?,
    };
    match (&result, &row.message.contact_id, marked) {
        (Err(SendError::AddressRefused(_)), _, true) if let Some(chat) = row.message.channel.chat() => {
            crate::actions::chat_link::chat_gone(&state.db, chat, &row.message.recipient, now).await?
        }
        (Err(SendError::AddressRefused(why)), Some(contact), true) => address_refused(state, contact, why, now).await?,
        _ => {}
    }
    count(outcome, row.message.channel, row.message.kind, marked);
    Ok(Settle::Done(outcome))
}

/// One row about to go: what it is sent with, and how its contact is reached now (when it
/// has one).
struct Going<'a> {
    state: &'a Providers,
    row: &'a OutboxRow,
    reach: Option<&'a Reach>,
    now: DateTime<Utc>,
}

/// Sends an email row. `Ok(None)` means the message should be dropped, not sent.
async fn send_email(go: &Going<'_>, gate: &Gate) -> Result<Result<Option<String>, SendError>, StoreError> {
    let Going { state, row, reach, now } = *go;
    let EmailOut { payload: shown, built: message, again } = match email_of(state, row, reach, now).await? {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(Ok(None)),
        Err(e) => return Ok(Err(e)),
    };
    // What goes is what the row keeps, written before it goes (a reply can come before the
    // send is marked, and a bounce is matched by the address it went to): an alert keeps the
    // items it shows, so a bare `APPROVE` in reply means the one visual its reader saw, and
    // the address it goes to; a digest or banner written again keeps what it says. A list of
    // strings and a payload always serialize; were they not to, the row would keep what was
    // queued, as before.
    let moved = !shown.to.eq_ignore_ascii_case(&row.message.recipient);
    let kept = match row.message.kind {
        MessageKind::Alert => serde_json::from_str::<outbox::AlertPayload>(&row.message.payload)
            .ok()
            .filter(|p| p.items != shown.item_keys || moved)
            .and_then(|mut p| {
                p.items.clone_from(&shown.item_keys);
                serde_json::to_string(&p).ok()
            }),
        _ if again => serde_json::to_string(&shown).ok(),
        _ => None,
    };
    if let (Some(payload), Some(token)) = (kept, row.claim_token.as_deref()) {
        outbox::rewrite(&state.db, row.id, token, &shown.to, &shown.subject, &payload).await?;
    }
    Ok(state.mailer.send(&message, gate).await.map(Some))
}

/// Sends a chat row. Alerts are rendered now from the items still open, like emails.
async fn send_chat(go: &Going<'_>, gate: &Gate) -> Result<Result<Option<String>, SendError>, StoreError> {
    let Going { state, row, reach, now } = *go;
    let Some(sender) = row.message.channel.chat().and_then(|c| state.chat.get(&c)) else {
        return Ok(Err(SendError::Permanent(format!("no sender for channel `{}`", row.message.channel))));
    };
    let mut message = match chat_message(state, row, reach, now).await? {
        Ok(Some((m, None))) => m,
        // A digest written again keeps what it says (the console shows what went).
        Ok(Some((m, Some(payload)))) => {
            if let Some(token) = row.claim_token.as_deref() {
                outbox::rewrite(&state.db, row.id, token, &row.message.recipient, &m.title, &payload).await?;
            }
            m
        }
        Ok(None) => return Ok(Ok(None)),
        Err(e) => return Ok(Err(SendError::Permanent(e))),
    };
    message.attach_picture(&state.config.data_dir.join("media")).await;
    if let Err(e) = gate.pass().await {
        return Ok(Err(e));
    }
    Ok(sender.send(&row.message.recipient, &message).await.map(Some))
}
