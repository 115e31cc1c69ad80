//! Supervised background work: every long-running task (dispatchers, scheduler, alert
//! scanner, chat poller, IMAP loop) runs under [`supervise`], which restarts it with backoff
//! when it panics, returns before shutdown or stalls in a pass ([`Health::watch`]), logs that at once, counts it in
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
    /// Passes running now, by a number of their own: the pass, when it began, and how long
    /// it may take before it counts as stalled.
    running: Mutex<BTreeMap<u64, Running>>,
    next_pass: std::sync::atomic::AtomicU64,
}

/// A pass running now: which, since when, for how long at the most, in which task.
#[derive(Debug)]
struct Running {
    pass: String,
    /// The kind of pass its metrics name (`outbox` for every sender's).
    kind: &'static str,
    since: Instant,
    most: Duration,
    task: Option<tokio::task::Id>,
}

impl Running {
    fn stalled(&self) -> bool {
        self.since.elapsed() > self.most
    }
}

/// One pass of a task's work under watch (see [`Health::watch`]): while it runs past its
/// limit, `/healthz` reports its task `stalled`. Dropped (the pass ended, or its task
/// panicked), it is watched no more.
pub struct Watch<'a> {
    health: &'a Health,
    id: u64,
    pass: String,
}

impl Watch<'_> {
    /// Lets this pass run `more` longer: what it found to do takes longer than a pass that
    /// only reads and writes the store.
    pub fn allow(&self, more: Duration) {
        if let Ok(mut running) = self.health.running.lock()
            && let Some(r) = running.get_mut(&self.id)
        {
            r.most = r.most.saturating_add(more);
        }
    }

    /// Ends the pass, recording how it ended (see [`Health::pass`]).
    pub fn end<T, E: std::fmt::Display>(self, result: &Result<T, E>) {
        self.health.pass(&self.pass, result.as_ref().map(|_| ()).map_err(ToString::to_string));
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.health.running.lock() {
            running.remove(&self.id);
        }
    }
}

/// One line of the health report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskReport {
    pub task: String,
    /// `running`, `down`, `restarting` (running, but restarted often lately) or `stopped`;
    /// for a pass, `failing` (every try for a minute) or `stalled` (one running past its limit).
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

    /// Watches one pass of `pass` (`outbox`, `digest`, `alerts`) that should end within
    /// `most`. One that does not is waiting on a query the store never answers (a
    /// connection cut without a word, which no timeout of sqlx's ends, or a lock held
    /// elsewhere): left alone, its task would wait for ever and every later pass with it,
    /// unsaid. [`supervise`] cuts such a pass off and restarts its task; the pass counts as
    /// failed, so one that stalls again and again is reported `failing`.
    /// `kind` labels its metrics (`cport_pass_stalls_total{pass}`), as its failures are
    /// labelled: one kind for every sender's pass, each of which is watched by its own name.
    pub fn watch(&self, pass: &str, kind: &'static str, most: Duration) -> Watch<'_> {
        let id = self.next_pass.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut running) = self.running.lock() {
            let r = Running { pass: pass.to_string(), kind, since: Instant::now(), most, task: tokio::task::try_id() };
            running.insert(id, r);
        }
        Watch { health: self, id, pass: pass.to_string() }
    }

    /// The pass `task` is in, and how long it has run, when it has run past its limit.
    fn stalled_in(&self, task: tokio::task::Id) -> Option<(String, &'static str, Duration)> {
        let running = self.running.lock().ok()?;
        running
            .values()
            .find(|r| r.task == Some(task) && r.stalled())
            .map(|r| (r.pass.clone(), r.kind, r.since.elapsed()))
    }

    /// Every task with its state, by name; each pass whose every try has failed for a
    /// minute or more, as `failing` with its last error; and each pass running past its
    /// limit, as `stalled`.
    pub fn report(&self) -> Vec<TaskReport> {
        let stalled: Vec<TaskReport> = match self.running.lock() {
            Ok(r) => r
                .values()
                .filter(|r| r.stalled())
                .map(|r| TaskReport {
                    task: format!("{} passes", r.pass),
                    state: "stalled",
                    restarts: 0,
                    error: Some(format!(
                        "one pass has run for {} s, past the {} s it may take (stalled_pass_seconds)",
                        r.since.elapsed().as_secs(),
                        r.most.as_secs()
                    )),
                })
                .collect(),
            Err(_) => vec![],
        };
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
            return [failing, stalled].concat();
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
        report.extend(stalled);
        report
    }

    /// The tasks that make the process unhealthy: down, restarting in a loop, failing
    /// every pass, or stalled in one.
    pub fn unhealthy(&self) -> Vec<TaskReport> {
        self.report().into_iter().filter(|t| matches!(t.state, "down" | "restarting" | "failing" | "stalled")).collect()
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
        let ended = run_once(&health, make()).await;
        if *shutdown.borrow() {
            if let Err(error) = ended {
                tracing::error!(task = %name, %error, "background task ended abnormally while stopping");
            }
            health.set(&name, TaskState::Stopped, false);
            tracing::info!(task = %name, "background task stopped");
            return;
        }
        let error = ended.err().unwrap_or_else(|| "returned before shutdown".to_string());
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

/// How often a running task is looked at for a stalled pass.
const STALL_CHECK: Duration = Duration::from_secs(1);

/// Runs one task to its end: `Err` says how it ended abnormally (a panic, or a stalled pass
/// cut off). Its own tokio task, so a panic is caught at its boundary; aborted when this
/// future is dropped, so it never runs on unwatched.
async fn run_once(health: &Health, task: impl Future<Output = ()> + Send + 'static) -> Result<(), String> {
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut run = AbortOnDrop(tokio::spawn(task));
    let ended = loop {
        tokio::select! {
            ended = &mut run.0 => break ended,
            _ = tokio::time::sleep(STALL_CHECK) => {
                if let Some((pass, kind, ran)) = health.stalled_in(run.0.id()) {
                    run.0.abort();
                    let error = format!(
                        "a {pass} pass stalled: no end after {} s (stalled_pass_seconds), waiting on a store or \
                         server that did not answer; it was cut off",
                        ran.as_secs()
                    );
                    health.pass(&pass, Err(error.clone()));
                    metrics::counter!("cport_pass_stalls_total", "pass" => kind).increment(1);
                    return Err(error);
                }
            }
        }
    };
    match ended {
        Ok(()) => Ok(()),
        Err(e) if e.is_panic() => Err(format!("panicked: {}", panic_text(&e.into_panic()))),
        Err(e) => Err(format!("was cancelled: {e}")),
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

    /// Waits for ever when `point` is armed: a store or server that never answers, injected
    /// on purpose (only shutdown, dropping the task, ends it).
    pub async fn stall_if_armed(&self, point: &str) {
        if self.fires(point) {
            std::future::pending::<()>().await;
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

    #[test]
    fn a_pass_running_past_its_limit_is_stalled_until_it_ends() {
        let health = Health::default();
        let quick = health.watch("digest", "digest", Duration::from_secs(3600));
        let slow = health.watch("outbox", "outbox", Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        let bad = health.unhealthy();
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!((bad[0].task.as_str(), bad[0].state), ("outbox passes", "stalled"));
        assert!(bad[0].error.as_deref().unwrap().contains("stalled_pass_seconds"), "{bad:?}");
        slow.allow(Duration::from_secs(3600));
        assert!(health.unhealthy().is_empty(), "allowed longer, it is within its limit");
        let slow = health.watch("outbox", "outbox", Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        slow.end(&Err::<(), _>("store: gone"));
        assert!(health.unhealthy().is_empty(), "ended, a pass is watched no more (one failure is no failing task)");
        quick.end(&Ok::<(), String>(()));
        assert!(health.report().is_empty(), "{:?}", health.report());
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
