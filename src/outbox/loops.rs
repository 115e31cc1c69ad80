//! The loops around the dispatch step: draining what is due (alone, or with a crew of
//! senders that stop together), and the server's dispatcher workers.

use chrono::Utc;
use std::time::Duration;

use super::{BATCH, Crew, Lane, Marker, Outcome, Take, dispatch};
use crate::channels::Providers;
use crate::store::StoreError;

/// Sends everything due now, then returns the counts (for `cport digest run` and tests).
pub async fn drain(state: &Providers) -> Result<DrainReport, StoreError> {
    drain_with(state, &Crew::default()).await
}

/// [`drain`] as one of a crew: it stops early when the crew's stop turns true (the message
/// in hand is finished, the rest of the claim handed back), and marks through its marker.
pub async fn drain_with(state: &Providers, crew: &Crew) -> Result<DrainReport, StoreError> {
    if state.config.webhook.is_set() {
        return drain_lane(state, crew, Lane::All).await;
    }
    // Without a webhook here, its events are left for a process that has one (see
    // [`senders`]): email, then chat.
    let mut total = drain_lane(state, crew, Lane::Email).await?;
    total += drain_lane(state, crew, Lane::Chat).await?;
    Ok(total)
}

/// [`drain_with`] of one lane's messages.
async fn drain_lane(state: &Providers, crew: &Crew, lane: Lane) -> Result<DrainReport, StoreError> {
    let mut r = DrainReport::default();
    loop {
        if crew.stopping() {
            return Ok(r);
        }
        let now = Utc::now();
        let size = claim_size(state, now, lane).await?;
        if size == 0 {
            return Ok(r);
        }
        let batch = dispatch(state, now, size, crew, Take::Lane(lane)).await?;
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

/// [`drain`] with the [`senders`] of `workers` at once (each claims its own rows, their marks are
/// committed together), stopping early when `stop` turns true. When one sender fails the
/// others are stopped the same way, not cut off: each finishes the message in hand and hands
/// the rest of its claim back (a message cut off between delivery and its mark would go again
/// once its claim ran out, and the rest of the claim would wait that long with an attempt
/// spent). The first failure is returned once every sender has stopped.
pub async fn drain_concurrently(
    state: &Providers,
    workers: usize,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<DrainReport, StoreError> {
    let halt = std::sync::Arc::new(tokio::sync::watch::channel(false).0);
    let relay = stop.map(|mut stop| {
        let halt = halt.clone();
        tokio::spawn(async move {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    return;
                }
            }
            halt.send_replace(true);
        })
    });
    let crew = Crew { stop: Some(halt.subscribe()), marker: Some(Marker::start(state.db.clone())) };
    let mut set = tokio::task::JoinSet::new();
    for (_, lane) in senders(workers, state.config.webhook.is_set()) {
        let s = state.clone();
        let crew = crew.clone();
        set.spawn(async move { drain_lane(&s, &crew, lane).await });
    }
    let mut total = DrainReport::default();
    let mut failed = None;
    while let Some(r) = set.join_next().await {
        match r.map_err(|e| StoreError::Conflict(format!("sender task failed: {e}"))).and_then(|r| r) {
            Ok(r) => total += r,
            Err(e) => {
                halt.send_replace(true);
                failed.get_or_insert(e);
            }
        }
    }
    if let Some(relay) = relay {
        relay.abort();
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// The senders of `workers` (`outbox.workers`), with the names their server tasks have:
/// that many of email (`dispatcher-1`…) and as many of chat (`dispatcher-chat-1`…), and, when
/// this process has a `webhook.url`, one of the change feed's pushes to TOT's webhook
/// (`dispatcher-webhook`): each lane its own, so that a mail server, chat provider or receiver
/// that hangs holds up no other's messages (see [`Lane`]). A process without the webhook (a
/// shell's `cport digest run` missing the server's `CPORT_WEBHOOK__URL`, a second server set up
/// otherwise) leaves the pushes alone for one that has it, rather than drop them as unwanted.
pub fn senders(workers: usize, webhook: bool) -> impl Iterator<Item = (String, Lane)> {
    (1..=workers.max(1))
        .map(|n| (format!("dispatcher-{n}"), Lane::Email))
        .chain((1..=workers.max(1)).map(|n| (format!("dispatcher-chat-{n}"), Lane::Chat)))
        .chain(webhook.then(|| ("dispatcher-webhook".to_string(), Lane::Changes)))
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DrainReport {
    pub sent: usize,
    pub retrying: usize,
    pub dead: usize,
    pub dropped: usize,
}

impl std::ops::AddAssign for DrainReport {
    fn add_assign(&mut self, other: DrainReport) {
        self.sent += other.sent;
        self.retrying += other.retrying;
        self.dead += other.dead;
        self.dropped += other.dropped;
    }
}

/// How many of a lane's due messages a sender claims now: its share of those due among the
/// lane's senders (see [`share`]), or 0 when none is due.
async fn claim_size(state: &Providers, now: chrono::DateTime<Utc>, lane: Lane) -> Result<i64, StoreError> {
    let workers = match lane {
        Lane::Changes => 1,
        Lane::All | Lane::Email | Lane::Chat => i64::from(state.config.outbox.workers.max(1)),
    };
    let due = crate::store::outbox::count_due(&state.db, now, BATCH * workers, lane).await?;
    Ok(if due == 0 { 0 } else { share(due, workers) })
}

/// A sender's share of `due` messages among `workers` senders, at most [`BATCH`]: a burst
/// smaller than `BATCH × workers` is sent by every sender at once (a slow mail server takes
/// several messages together), not by the first one after another while the rest wait.
fn share(due: i64, workers: i64) -> i64 {
    ((due + workers - 1) / workers.max(1)).clamp(1, BATCH)
}

/// One dispatcher worker of a lane, `task` by name (its passes are reported under it, so one
/// sender failing or stalled is not hidden by another's success): sends while there is
/// work, otherwise waits for a wake-up, the next second, or shutdown. A message being sent when shutdown comes is
/// finished first; the rest of its claim is handed back.
pub async fn run_worker(
    state: Providers,
    marker: Marker,
    (task, lane): (String, Lane),
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let crew = Crew { stop: Some(shutdown.clone()), marker: Some(marker) };
    loop {
        if *shutdown.borrow() {
            break;
        }
        state.faults.panic_if_armed(match lane {
            Lane::Changes => "task:dispatcher-webhook",
            Lane::Chat => "task:dispatcher-chat",
            Lane::All | Lane::Email => "task:dispatcher",
        });
        let now = Utc::now();
        let watch = state.health.watch(&task, "outbox", Duration::from_secs(state.config.stalled_pass_seconds));
        let pass = match claim_size(&state, now, lane).await {
            // Nothing due: the wake-up or the next second finds what comes.
            Ok(0) => Ok(vec![]),
            Ok(size) => {
                // Each message may take its send's time and the wait for its answer.
                let each = Duration::from_secs(state.config.outbox.send_timeout_seconds) + super::HANDED_OVER_MOST;
                watch.allow(each.saturating_mul(size.try_into().unwrap_or(u32::MAX)));
                dispatch(&state, now, size, &crew, Take::Lane(lane)).await
            }
            Err(e) => Err(e),
        };
        watch.end(&pass);
        match pass {
            Ok(batch) if batch.is_empty() => {}
            Ok(_) => continue,
            Err(e) => {
                tracing::error!(error = %e, "dispatcher could not reach the store");
                metrics::counter!("cport_pass_failures_total", "pass" => "outbox").increment(1);
            }
        }
        tokio::select! {
            _ = state.wake_dispatch.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_share_what_is_due() {
        // Twelve due among four senders: three each, so all four send at once.
        assert_eq!(share(12, 4), 3);
        assert_eq!(share(13, 4), 4);
        assert_eq!(share(1, 4), 1);
        // Asked with nothing due (`claim_size` does not ask then), the least is one.
        assert_eq!(share(0, 4), 1);
        // A long queue: each claims a whole batch.
        assert_eq!(share(BATCH * 4, 4), BATCH);
        assert_eq!(share(10_000, 1), BATCH);
    }
}
