//! `cport outbox list|send|retry|drop`: the queue of outgoing messages.

use super::digest::truncate;
use super::*;

/// Sends everything due with `outbox.workers` senders. SIGINT or SIGTERM stops them as it
/// stops `cport serve`'s: each finishes the message in hand and hands the rest of its claim
/// back, untried, for the next run. (`outbox send`, `digest run`, `banner post`.)
pub(crate) async fn send_due(state: &AppState) -> anyhow::Result<crate::outbox::DrainReport> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signals = tokio::spawn(async move {
        crate::app::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let sent = crate::outbox::drain_concurrently(state, state.config.outbox.workers as usize, Some(stop_rx)).await;
    signals.abort();
    Ok(sent?)
}

/// After a send: the messages another sender holds (a running server's, or a stopped
/// process's, which go again once its claim runs out) are said, not left unmentioned.
pub(crate) async fn say_held(state: &AppState) -> anyhow::Result<()> {
    let (n, until) = crate::store::outbox::held_by_claims(&state.db, chrono::Utc::now()).await?;
    if let (true, Some(until)) = (n > 0, until) {
        println!(
            "outbox: {n} held by another sender (a running `cport serve`, or a process that stopped: then they go again by {} UTC)",
            until.format("%Y-%m-%d %H:%M:%S")
        );
    }
    Ok(())
}

pub(crate) async fn send_outbox(state: &AppState) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let d = send_due(state).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "outbox: {} sent, {} to retry, {} dead, {} dropped in {secs:.2}s ({:.0} messages/s)",
        d.sent,
        d.retrying,
        d.dead,
        d.dropped,
        d.sent as f64 / secs.max(1e-9)
    );
    say_held(state).await?;
    went_dead(&d)
}

/// A send that made messages dead must not look like a clean one to a script or a timer;
/// one that left messages to retry is a send like any other (the next one tries them).
pub(crate) fn went_dead(d: &crate::outbox::DrainReport) -> anyhow::Result<()> {
    if d.dead > 0 {
        anyhow::bail!("{} message(s) went dead; `cport outbox list --status dead` says why", d.dead);
    }
    Ok(())
}

pub(crate) async fn outbox(config: Config, command: OutboxCommand) -> anyhow::Result<ExitCode> {
    use crate::store::outbox as ob;
    let db = &open_store(&config).await?;
    let now = chrono::Utc::now();
    match command {
        OutboxCommand::List { status, limit } => {
            if let Some(s) = &status
                && crate::model::OutboxStatus::parse(s).is_none()
            {
                bail!("--status: {} is not one of {}", crate::model::quoted(s), crate::model::OutboxStatus::names());
            }
            let counts = ob::counts_by_status(db).await?;
            let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
            println!("outbox: {}", if summary.is_empty() { "empty".into() } else { summary.join(", ") });
            let suspended = crate::store::settings::list_settings(db)
                .await?
                .into_values()
                .filter(|s| s.email_suspended_at.is_some())
                .count();
            if suspended > 0 {
                println!("email suspended for {suspended} contact(s) after bounces");
            }
            let listed = ob::list_messages(db, status.as_deref(), limit).await?;
            if listed.is_empty() {
                // A header over nothing reads as a listing that failed.
                println!("no {}messages to list", status.as_deref().map(|s| format!("{s} ")).unwrap_or_default());
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<7} {:<8} {:<7} {:<7} {:<4} {:<17} {:<32} LAST ERROR / SUBJECT",
                "ID", "STATUS", "CHANNEL", "KIND", "TRY", "SENT / NEXT TRY", "RECIPIENT"
            );
            for m in listed {
                let when = match (m.sent_at, m.status.awaits_a_try()) {
                    (Some(t), _) => t.format("%Y-%m-%d %H:%M").to_string(),
                    (None, false) => "-".into(),
                    (None, true) => m.message.next_attempt_at.format("%Y-%m-%d %H:%M").to_string(),
                };
                println!(
                    "{:<7} {:<8} {:<7} {:<7} {:<4} {:<17} {:<32} {}",
                    m.id,
                    m.status,
                    m.message.channel,
                    m.message.kind,
                    m.attempts,
                    when,
                    truncate(&m.message.recipient, 32),
                    m.last_error.as_deref().unwrap_or(&m.message.subject)
                );
            }
        }
        OutboxCommand::Retry { id: Some(id), .. } => {
            let services = crate::services::Services::new(config.clone(), db.clone());
            let Some(at) = refused_said(crate::actions::outbox::requeue(&services, id, now).await)? else {
                return Ok(ExitCode::FAILURE);
            };
            println!("message {id}: {}", crate::actions::outbox::queued_again(at, now));
        }
        OutboxCommand::Drop { id } => {
            let services = crate::services::Services::new(config.clone(), db.clone());
            let outcome = crate::actions::outbox::drop_message(&services, id, "the command line", now).await;
            let Some(was) = refused_said(outcome)? else {
                return Ok(ExitCode::FAILURE);
            };
            println!("message {id}: {}", crate::actions::outbox::dropped(was));
        }
        OutboxCommand::Send => send_outbox(&AppState::new(config, db.clone())?).await?,
        OutboxCommand::Retry { id: None, .. } => {
            let services = crate::services::Services::new(config.clone(), db.clone());
            let done = crate::actions::outbox::requeue_dead(&services, now).await?;
            println!("{} dead message(s) queued again", done.queued);
            if !done.left.is_empty() {
                println!("{} left dead, as they would not be sent:", done.left.values().sum::<u64>());
                for (why, n) in &done.left {
                    println!("  {n}: {why}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An action on one message that is refused (there is no such message, or it is not in a
/// state for it) is said on stderr, naming why: `None`, and the command fails.
fn refused_said<T>(outcome: Result<T, crate::actions::ActionError>) -> anyhow::Result<Option<T>> {
    use crate::actions::ActionError::{Conflict, NotFound};
    match outcome {
        Ok(v) => Ok(Some(v)),
        Err(e @ (NotFound(_) | Conflict(_))) => {
            super::say_error(format_args!("{e}"));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
