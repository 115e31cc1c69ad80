//! The dispatcher: claims due outbox rows, sends them on their channel, and records the
//! result. Failures are retried with exponential backoff and jitter; after
//! `outbox.max_attempts` (or a permanent error) a message is dead until staff re-queue it.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use crate::app::AppState;
use crate::channels::SendError;
use crate::channels::chat::ChatPayload;
use crate::channels::email::{EmailPayload, build_message};
use crate::digest::alerts::AlertPayload;
use crate::digest::compose::Composer;
use crate::digest::items::for_contact;
use crate::store::StoreError;
use crate::store::contacts::get_contact;
use crate::store::outbox::{self, OutboxRow};

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

/// The delay before attempt `attempts + 1`: base × 2^(attempts−1), capped, ±20 % jitter.
pub fn backoff(state: &AppState, attempts: i64) -> Duration {
    let base = state.config.outbox.backoff_base_seconds as f64;
    let max = state.config.outbox.backoff_max_seconds as f64;
    let exp = (attempts.max(1) - 1).min(30) as i32;
    let secs = (base * 2f64.powi(exp)).min(max);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    Duration::milliseconds((secs * jitter * 1000.0) as i64)
}

/// Claims and sends one due message.
pub async fn dispatch_one(state: &AppState) -> Result<Outcome, StoreError> {
    Ok(dispatch_batch(state, 1).await?.pop().unwrap_or(Outcome::Empty))
}

/// Messages a sender claims at once: fewer store round trips per message, and still small
/// enough that a lease covers sending them all.
pub const BATCH: i64 = 16;

/// Claims up to `limit` due messages and sends them one after another. An empty result
/// means nothing was due.
pub async fn dispatch_batch(state: &AppState, limit: i64) -> Result<Vec<Outcome>, StoreError> {
    dispatch_batch_at(state, Utc::now(), limit).await
}

/// [`dispatch_batch`] as if the time were `now` (what is due is decided by it).
pub async fn dispatch_batch_at(state: &AppState, now: DateTime<Utc>, limit: i64) -> Result<Vec<Outcome>, StoreError> {
    let lease = now + Duration::seconds(state.config.outbox.lease_seconds as i64);
    let rows = outbox::claim_batch(&state.db, now, lease, limit).await?;
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let suspended = outbox::suspended_contacts(&state.db).await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut sent = Vec::new();
    for row in rows {
        let (outcome, mark) = send_row(state, row, &suspended).await?;
        sent.extend(mark);
        out.push(outcome);
    }
    // Sent messages are marked together; a crash before this line sends them again once
    // their lease runs out (at least once, never lost).
    outbox::mark_sent_many(&state.db, &sent, Utc::now()).await?;
    Ok(out)
}

/// Sends one claimed row and records failures; a success is returned to be marked with its
/// batch.
async fn send_row(
    state: &AppState,
    row: OutboxRow,
    suspended: &HashMap<String, String>,
) -> Result<(Outcome, Option<(i64, String)>), StoreError> {
    let started = Instant::now();
    let now = Utc::now();
    let result = match (
        row.channel.as_str(),
        row.contact_id.as_ref().and_then(|c| suspended.get(c)),
    ) {
        ("email", Some(reason)) => Err(SendError::Permanent(format!(
            "email to this contact is suspended: {reason}"
        ))),
        ("email", None) => send_email(state, &row, now).await?,
        ("webhook", _) => crate::channels::webhook::send(&state.http, &state.config.webhook, &row)
            .await
            .map(Some),
        // A store error while rendering one chat message must not stop the batch (its sent
        // rows would go again): it is that message's transient failure.
        (chat, _) if state.chat.contains_key(chat) => send_chat(state, &row, now)
            .await
            .unwrap_or_else(|e| Err(SendError::Transient(format!("store: {e}")))),
        (other, _) => Err(SendError::Permanent(format!("no sender for channel `{other}`"))),
    };
    let now = Utc::now();
    let mut mark = None;
    let outcome = match result {
        Ok(Some(provider_id)) => {
            metrics::histogram!("cport_outbox_send_seconds", "channel" => row.channel.clone())
                .record(started.elapsed().as_secs_f64());
            mark = Some((row.id, provider_id));
            Outcome::Sent
        }
        Ok(None) => {
            outbox::mark_dropped(&state.db, row.id, "every item was resolved before sending", now).await?;
            Outcome::Dropped
        }
        // A provider's "wait this long" is obeyed, and does not use up the attempts.
        Err(SendError::RateLimited(wait)) => {
            let at = now + Duration::from_std(wait).unwrap_or_else(|_| Duration::seconds(60));
            tracing::warn!(id = row.id, retry_at = %at, "rate limited by the provider; will retry");
            outbox::mark_rate_limited(
                &state.db,
                row.id,
                &format!("rate limited; retry after {wait:?}"),
                at,
                now,
            )
            .await?;
            Outcome::Retrying
        }
        Err(SendError::Transient(msg)) if row.attempts < i64::from(state.config.outbox.max_attempts) => {
            let at = now + backoff(state, row.attempts);
            tracing::warn!(id = row.id, attempts = row.attempts, error = %msg, retry_at = %at, "send failed; will retry");
            outbox::mark_failed(&state.db, row.id, &msg, Some(at), now).await?;
            Outcome::Retrying
        }
        Err(e) => {
            tracing::error!(id = row.id, attempts = row.attempts, error = %e, "send failed; message is dead");
            outbox::mark_failed(&state.db, row.id, &e.to_string(), None, now).await?;
            Outcome::Dead
        }
    };
    let label = match outcome {
        Outcome::Sent => "sent",
        Outcome::Retrying => "failed",
        Outcome::Dead => "dead",
        Outcome::Dropped => "dropped",
        Outcome::Empty => "empty",
    };
    metrics::counter!(format!("cport_outbox_{label}_total"), "channel" => row.channel.clone(), "kind" => row.kind.clone())
        .increment(1);
    Ok((outcome, mark))
}

/// Sends an email row. `Ok(None)` means the message should be dropped, not sent.
async fn send_email(
    state: &AppState,
    row: &OutboxRow,
    now: DateTime<Utc>,
) -> Result<Result<Option<String>, SendError>, StoreError> {
    let payload = if row.kind == "alert" {
        match alert_email(state, row, now).await? {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(Ok(None)),
            Err(e) => return Ok(Err(e)),
        }
    } else {
        match serde_json::from_str::<EmailPayload>(&row.payload) {
            Ok(p) => p,
            Err(e) => return Ok(Err(SendError::Permanent(format!("unreadable payload: {e}")))),
        }
    };
    let message = match build_message(&state.config, &payload, row.reply_token.as_deref()) {
        Ok(m) => m,
        Err(e) => return Ok(Err(e)),
    };
    Ok(state.mailer.send(message).await.map(Some))
}

/// Sends a chat row. Alerts are rendered now from the items still open, like emails.
async fn send_chat(
    state: &AppState,
    row: &OutboxRow,
    now: DateTime<Utc>,
) -> Result<Result<Option<String>, SendError>, StoreError> {
    let Some(sender) = state.chat.get(row.channel.as_str()) else {
        return Ok(Err(SendError::Permanent(format!(
            "no sender for channel `{}`",
            row.channel
        ))));
    };
    let payload: ChatPayload = match serde_json::from_str(&row.payload) {
        Ok(p) => p,
        Err(e) => return Ok(Err(SendError::Permanent(format!("unreadable payload: {e}")))),
    };
    let message = match (payload.message, row.kind.as_str(), &row.contact_id) {
        (Some(m), _, _) => m,
        (None, "alert", Some(contact_id)) => match still_open(state, contact_id, &payload.items).await? {
            Some((contact, open)) => crate::channels::chat::alert_message(state, &contact, &open, now).await?,
            None => return Ok(Ok(None)),
        },
        _ => return Ok(Err(SendError::Permanent("chat message without content".into()))),
    };
    Ok(sender.send(&row.recipient, &message).await.map(Some))
}

/// An alert's contact and those of its items still open; `None` when the contact is gone or
/// nothing is left (the alert is then dropped).
async fn still_open(
    state: &AppState,
    contact_id: &str,
    keys: &[String],
) -> Result<
    Option<(
        crate::store::contacts::ContactRow,
        Vec<crate::digest::items::ActionItem>,
    )>,
    StoreError,
> {
    let contact = match get_contact(&state.db, contact_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let open: Vec<_> = for_contact(&state.db, &contact)
        .await?
        .into_iter()
        .filter(|i| keys.contains(&i.key()))
        .collect();
    Ok((!open.is_empty()).then_some((contact, open)))
}

/// Alerts are rendered when they go, from the items still open then: resolved items are
/// left out, and an alert with none left is dropped.
async fn alert_email(
    state: &AppState,
    row: &OutboxRow,
    now: DateTime<Utc>,
) -> Result<Result<Option<EmailPayload>, SendError>, StoreError> {
    let Some(contact_id) = &row.contact_id else {
        return Ok(Err(SendError::Permanent("alert without a contact".into())));
    };
    let p: AlertPayload = serde_json::from_str(&row.payload).unwrap_or_default();
    let Some((contact, open)) = still_open(state, contact_id, &p.items).await? else {
        return Ok(Ok(None));
    };
    let composer = Composer {
        config: &state.config,
        env: &state.templates,
        signer: &state.signer,
    };
    let token = row.reply_token.clone().unwrap_or_default();
    Ok(composer.compose_alert(&contact, &open, &token, now).map(|mut e| {
        if !p.message_id.is_empty() {
            e.message_id = p.message_id.clone();
        }
        Some(e)
    }))
}

/// Sends everything due now, then returns the counts (for `cport digest run` and tests).
pub async fn drain(state: &AppState) -> Result<DrainReport, StoreError> {
    let mut r = DrainReport::default();
    loop {
        let batch = dispatch_batch(state, BATCH).await?;
        if batch.is_empty() {
            return Ok(r);
        }
        for o in batch {
            match o {
                Outcome::Empty => {}
                Outcome::Sent => r.sent += 1,
                Outcome::Retrying => r.retrying += 1,
                Outcome::Dead => r.dead += 1,
                Outcome::Dropped => r.dropped += 1,
            }
        }
    }
}

/// [`drain`] with `workers` senders at once (each claims its own rows).
pub async fn drain_concurrently(state: &AppState, workers: usize) -> Result<DrainReport, StoreError> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let s = state.clone();
        set.spawn(async move { drain(&s).await });
    }
    let mut total = DrainReport::default();
    while let Some(r) = set.join_next().await {
        let r = r.map_err(|e| StoreError::Conflict(format!("sender task failed: {e}")))??;
        total.sent += r.sent;
        total.retrying += r.retrying;
        total.dead += r.dead;
        total.dropped += r.dropped;
    }
    Ok(total)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DrainReport {
    pub sent: usize,
    pub retrying: usize,
    pub dead: usize,
    pub dropped: usize,
}

/// One dispatcher worker: sends while there is work, otherwise waits for a wake-up, the
/// next second, or shutdown. A message being sent when shutdown comes is finished first.
pub async fn run_worker(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        match dispatch_batch(&state, BATCH).await {
            Ok(batch) if batch.is_empty() => {}
            Ok(_) => continue,
            Err(e) => tracing::error!(error = %e, "dispatcher could not reach the store"),
        }
        tokio::select! {
            _ = state.wake_dispatch.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.changed() => break,
        }
    }
}
