//! Marking deliveries: the senders of one process hand their "sent" marks to one task that
//! commits them together.

use chrono::Utc;

use crate::store::StoreError;
use crate::store::outbox::{self, Mark};

/// What the senders of one process share: the stop signal, and the [`Marker`] that commits
/// their "sent" marks together.
#[derive(Clone, Default)]
pub struct Crew {
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
    pub marker: Option<Marker>,
}

impl Crew {
    pub(super) fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| *s.borrow())
    }
}

/// One sender's "sent" mark, waiting for the next group commit.
struct SentMark {
    id: i64,
    token: String,
    provider: String,
    done: tokio::sync::oneshot::Sender<Option<bool>>,
}

/// Commits the "sent" marks of every sender of a process together (group commit): while
/// one statement runs, the marks that arrive meanwhile wait and go in the next one. A
/// sender's mark commits while it builds its next message and begins sending it (for SMTP,
/// up to the server's "go ahead" for the data); the next delivery waits for that mark
/// (`channels::Gate`), so a crash re-sends at most one message per sender, the one just
/// delivered. The store does one write for several messages instead of one each (a SQLite
/// write costs a hop to its worker thread and a WAL frame).
#[derive(Clone)]
pub struct Marker {
    jobs: tokio::sync::mpsc::UnboundedSender<SentMark>,
}

impl Marker {
    /// Starts the committing task; it ends when the last clone is dropped.
    pub fn start(db: crate::store::Db) -> Marker {
        let (jobs, mut rx) = tokio::sync::mpsc::unbounded_channel::<SentMark>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                // A sender's next delivery waits for this commit, so it does not wait for
                // other marks to come: what arrived while the last statement ran goes now.
                // (Waiting up to 2 ms for one mark from each sender measured 0.79 of
                // smtp-source against 0.83 without; scripts/bench-email.)
                while batch.len() < 100 {
                    match rx.try_recv() {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
                let items: Vec<(i64, &str, &str)> =
                    batch.iter().map(|j| (j.id, j.token.as_str(), j.provider.as_str())).collect();
                let result = outbox::mark_sent_many(&db, &items, Utc::now()).await;
                if let Err(e) = &result {
                    tracing::warn!(error = %e, marks = batch.len(), "group commit of marks failed; each sender marks its own");
                }
                for j in batch {
                    let _ = j.done.send(result.as_ref().ok().map(|marked| marked.contains(&j.id)));
                }
            }
        });
        Marker { jobs }
    }

    /// Hands one row's "sent" mark to the group commit; the sender settles it later.
    pub(super) fn submit(&self, id: i64, token: &str, provider: &str) -> PendingMark {
        let (done, wait) = tokio::sync::oneshot::channel();
        let job = SentMark { id, token: token.to_string(), provider: provider.to_string(), done };
        // A closed marker leaves `wait` to fail at once: the sender then marks alone.
        let _ = self.jobs.send(job);
        PendingMark { wait, id, token: token.to_string(), provider: provider.to_string() }
    }
}

/// A delivery whose "sent" mark is in the group commit; see [`Settle`].
pub(super) struct PendingMark {
    wait: tokio::sync::oneshot::Receiver<Option<bool>>,
    id: i64,
    token: String,
    provider: String,
}

impl PendingMark {
    /// Waits for the group commit; false when the claim was lost. If the group commit
    /// could not be made, the row is marked on its own.
    pub(super) async fn settle(self, state: &crate::services::Services) -> Result<bool, StoreError> {
        if let Ok(Some(marked)) = self.wait.await {
            return Ok(marked);
        }
        mark_sent(state, self.id, &self.token, &self.provider).await
    }
}

/// Marks a delivered message sent, trying again while the store fails (a SQLite store held
/// by an import, a PostgreSQL failover) for as long as this sender's claim surely lasts,
/// two thirds of `outbox.lease_seconds` (the claim is renewed every third), and a minute at
/// most (the sender and the rest of its batch wait meanwhile, and so does a stop). A "sent"
/// lost here would send the message again once its claim runs out, and no other sender can
/// take it before then. Each try is cut off at three seconds, or the time left if less: a
/// store that is locked does not fail a write at once but holds it (SQLite's busy wait).
pub(super) async fn mark_sent(
    state: &crate::services::Services,
    id: i64,
    token: &str,
    provider: &str,
) -> Result<bool, StoreError> {
    let db = &state.db;
    let lasts = std::time::Duration::from_millis(state.config.outbox.lease_seconds * 2000 / 3);
    let deadline = tokio::time::Instant::now() + lasts.min(std::time::Duration::from_secs(60));
    let cut = std::time::Duration::from_secs(3);
    let mut wait = std::time::Duration::from_millis(100);
    loop {
        let tried = match state.faults.fires("outbox:mark-sent") {
            true => Err(StoreError::Conflict("fault injected at outbox:mark-sent".into())),
            false => {
                let mark = outbox::mark(db, id, token, Mark::Sent(provider), Utc::now());
                let until = deadline.min(tokio::time::Instant::now() + cut);
                match tokio::time::timeout_at(until, mark).await {
                    Ok(r) => r,
                    Err(_) => Err(StoreError::Busy(cut)),
                }
            }
        };
        match tried {
            Ok(marked) => return Ok(marked),
            Err(e) if tokio::time::Instant::now() + wait >= deadline => return Err(e),
            Err(e) => {
                tracing::warn!(id, error = %e, retry_in = ?wait, "a delivered message could not be marked sent yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}
