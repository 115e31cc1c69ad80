//! Supervised background work: every long-running task (dispatchers, scheduler, alert
//! scanner, chat poller, IMAP loop) runs under [`supervise`], which restarts it with backoff
//! when it panics or returns before shutdown, logs that at once, counts it in
//! `cport_task_restarts_total{task}`, and keeps [`Health`] current for `/healthz`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How long a restarted task must run before its backoff starts again from the beginning.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// Restarts within [`FLAP_WINDOW`] that make a running task count as unhealthy.
const FLAP_RESTARTS: usize = 3;
const FLAP_WINDOW: Duration = Duration::from_secs(300);
/// How long a task's passes must have failed, with none succeeding, for it to count as
/// unhealthy: a store gone read-only leaves every task running and nothing done.
const FAILING_AFTER: Duration = Duration::from_secs(60);

/// What one task is doing now.
#[derive(Debug, Clone)]
pub enum TaskState {
    Running,
    /// Ended before shutdown; restarts after its backoff.
    Down {
        error: String,
    },
    /// Ended because shutdown was asked for.
    Stopped,
}

#[derive(Debug, Clone)]
struct TaskRecord {
    state: TaskState,
    restarts: u64,
    recent: Vec<Instant>,
}

/// The state of every supervised task of one process, for `/healthz`.
#[derive(Debug, Default)]
pub struct Health {
    tasks: Mutex<BTreeMap<String, TaskRecord>>,
    /// Passes failing since the first of an unbroken run of failures, with the last error.
    failing: Mutex<BTreeMap<String, (Instant, String)>>,
}

/// One line of the health report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskReport {
    pub task: String,
    /// `running`, `down`, `restarting` (running, but restarted often lately) or `stopped`.
    pub state: &'static str,
    pub restarts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Health {
    fn set(&self, task: &str, state: TaskState, restarted: bool) {
        if let Ok(mut tasks) = self.tasks.lock() {
            let rec = tasks.entry(task.to_string()).or_insert(TaskRecord {
                state: TaskState::Running,
                restarts: 0,
                recent: Vec::new(),
            });
            rec.state = state;
            if restarted {
                rec.restarts += 1;
                rec.recent.push(Instant::now());
            }
            rec.recent.retain(|t| t.elapsed() < FLAP_WINDOW);
        }
    }

    /// Records how one pass of a task's work (`outbox`, `digest`, `alerts`) ended.
    pub fn pass(&self, pass: &str, result: Result<(), String>) {
        if let Ok(mut failing) = self.failing.lock() {
            match result {
                Ok(()) => {
                    failing.remove(pass);
                }
                Err(error) => {
                    failing.entry(pass.to_string()).or_insert_with(|| (Instant::now(), String::new())).1 = error
                }
            }
        }
    }

    /// Every task with its state, by name; and each pass whose every try has failed for a
    /// minute or more, as `failing` with its last error.
    pub fn report(&self) -> Vec<TaskReport> {
        let failing: Vec<TaskReport> = match self.failing.lock() {
            Ok(f) => f
                .iter()
                .filter(|(_, (since, _))| since.elapsed() >= FAILING_AFTER)
                .map(|(pass, (since, error))| TaskReport {
                    task: format!("{pass} passes"),
                    state: "failing",
                    restarts: 0,
                    error: Some(format!("every pass for {} s: {error}", since.elapsed().as_secs())),
                })
                .collect(),
            Err(_) => vec![],
        };
        let Ok(mut tasks) = self.tasks.lock() else {
            return failing;
        };
        let mut report: Vec<TaskReport> = tasks
            .iter_mut()
            .map(|(name, rec)| {
                rec.recent.retain(|t| t.elapsed() < FLAP_WINDOW);
                let (state, error) = match &rec.state {
                    TaskState::Running if rec.recent.len() >= FLAP_RESTARTS => ("restarting", None),
                    TaskState::Running => ("running", None),
                    TaskState::Down { error } => ("down", Some(error.clone())),
                    TaskState::Stopped => ("stopped", None),
                };
                TaskReport { task: name.clone(), state, restarts: rec.restarts, error }
            })
            .collect();
        report.extend(failing);
        report
    }

    /// The tasks that make the process unhealthy: down, restarting in a loop, or failing
    /// every pass.
    pub fn unhealthy(&self) -> Vec<TaskReport> {
        self.report().into_iter().filter(|t| matches!(t.state, "down" | "restarting" | "failing")).collect()
    }
}

/// The message a panic carried.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

/// The wait before restart number `n` (1, 2, 4 … seconds, at most a minute).
pub fn restart_delay(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(6)).min(Duration::from_secs(60))
}

/// Runs the task `make` builds until shutdown, restarting it whenever it panics or returns
/// early. Each run is its own tokio task, so a panic is caught at its boundary.
pub async fn supervise<F, Fut>(
    name: String,
    health: std::sync::Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
    make: F,
) where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut quick_failures = 0u32;
    loop {
        health.set(&name, TaskState::Running, false);
        let started = Instant::now();
        let ended = tokio::spawn(make()).await;
        if *shutdown.borrow() {
            if let Err(e) = ended
                && e.is_panic()
            {
                tracing::error!(task = %name, error = %panic_text(&e.into_panic()), "background task panicked while stopping");
            }
            health.set(&name, TaskState::Stopped, false);
            tracing::info!(task = %name, "background task stopped");
            return;
        }
        let error = match ended {
            Ok(()) => "returned before shutdown".to_string(),
            Err(e) if e.is_panic() => format!("panicked: {}", panic_text(&e.into_panic())),
            Err(e) => format!("was cancelled: {e}"),
        };
        if started.elapsed() >= STABLE_AFTER {
            quick_failures = 0;
        }
        let delay = restart_delay(quick_failures);
        quick_failures = quick_failures.saturating_add(1);
        tracing::error!(task = %name, error = %error, restart_in = ?delay, "background task stopped; restarting it");
        metrics::counter!("cport_task_restarts_total", "task" => name.clone()).increment(1);
        health.set(&name, TaskState::Down { error }, true);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => {
                health.set(&name, TaskState::Stopped, false);
                return;
            }
        }
    }
}

/// Faults a test arms on one app instance to see how cport copes: a task that panics, a
/// transaction that fails at a named step. Production never arms any, and an unarmed check
/// is one uncontended lock.
#[derive(Debug, Default)]
pub struct Faults {
    armed: Mutex<BTreeMap<String, u32>>,
}

impl Faults {
    /// Makes the next `times` checks of `point` fire.
    pub fn arm(&self, point: &str, times: u32) {
        if let Ok(mut a) = self.armed.lock() {
            a.insert(point.to_string(), times);
        }
    }

    /// True (and one use spent) when `point` is armed.
    pub fn fires(&self, point: &str) -> bool {
        let Ok(mut a) = self.armed.lock() else {
            return false;
        };
        match a.get_mut(point) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    /// Panics when `point` is armed: a bug injected on purpose.
    pub fn panic_if_armed(&self, point: &str) {
        if self.fires(point) {
            panic!("fault injected at {point}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delays_grow_to_a_minute() {
        assert_eq!(restart_delay(0), Duration::from_secs(1));
        assert_eq!(restart_delay(3), Duration::from_secs(8));
        assert_eq!(restart_delay(40), Duration::from_secs(60));
    }

    #[test]
    fn passes_failing_for_a_minute_make_the_process_unhealthy_until_one_succeeds() {
        let health = Health::default();
        health.pass("outbox", Err("attempt to write a readonly database".into()));
        assert!(health.unhealthy().is_empty(), "one failure is not a failing task");
        // The run of failures began 61 s ago (its start is kept; later failures update the error).
        health.failing.lock().unwrap().get_mut("outbox").unwrap().0 = Instant::now() - Duration::from_secs(61);
        health.pass("outbox", Err("still read-only".into()));
        let bad = health.unhealthy();
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!((bad[0].task.as_str(), bad[0].state), ("outbox passes", "failing"));
        assert!(bad[0].error.as_deref().unwrap().contains("still read-only"), "{bad:?}");
        health.pass("outbox", Ok(()));
        assert!(health.unhealthy().is_empty(), "one success ends it");
    }

    #[tokio::test]
    async fn a_task_that_panics_is_restarted_and_reported_down_meanwhile() {
        let health = std::sync::Arc::new(Health::default());
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (ran_twice_tx, mut ran_twice) = tokio::sync::mpsc::channel::<()>(4);
        let r = runs.clone();
        let task = tokio::spawn(supervise("t".into(), health.clone(), stop_rx.clone(), move || {
            let r = r.clone();
            let tx = ran_twice_tx.clone();
            let mut stop = stop_rx.clone();
            async move {
                if r.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    panic!("first run fails");
                }
                let _ = tx.send(()).await;
                let _ = stop.changed().await;
            }
        }));
        ran_twice.recv().await.expect("the task ran again after its panic");
        assert_eq!(health.report()[0].restarts, 1);
        assert_eq!(health.report()[0].state, "running");
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(health.report()[0].state, "stopped");
    }
}
