//! Digest scheduling: for each contact, the latest slot of its cron schedule (in its time
//! zone) is a period; a period is decided once per contact and channel, and a non-empty
//! digest for it is queued in the same transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use chrono_tz::Tz;

use crate::actions::banners::for_client;
use crate::actions::items::{ActionItem, ItemCache};
use crate::actions::targets::{Target, targets_by_contact, targets_of};
use crate::channels::chat::digest_message;
use crate::messages::EmailPayload;
use crate::messages::compose::{Composer, Recipient};
use crate::model::MessageKind;
use crate::model::schedule::{current_period, parse_schedule};
use crate::services::Services;
use crate::store::banners::{BannerRow, list_live};
use crate::store::contacts::{ContactRow, list_active_contacts};
use crate::store::ledgers::Decision;
use crate::store::settings::{ContactSettings, list_settings};
use crate::store::{StoreError, ledgers, outbox};

/// Who asked for the pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The scheduler: only periods that started within `digest.catch_up_hours`.
    Scheduled,
    /// `cport digest run`: the current period whatever its age. A period decided empty is
    /// decided again (what has come since is said now); `force` sends again even when a
    /// digest went out for it.
    Manual { force: bool },
}

impl Trigger {
    /// Which decisions of the current period this pass takes again.
    fn again(self) -> Again {
        match self {
            Trigger::Scheduled => Again::Never,
            Trigger::Manual { force: false } => Again::IfEmpty,
            Trigger::Manual { force: true } => Again::Always,
        }
    }
}

/// Whether a period already decided is decided again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Again {
    Never,
    IfEmpty,
    Always,
}

impl Again {
    fn retakes(self, d: Decision) -> bool {
        match (d, self) {
            (Decision::Open, _) | (_, Again::Always) | (Decision::Empty, Again::IfEmpty) => true,
            (Decision::Empty | Decision::Sent, Again::Never) | (Decision::Sent, Again::IfEmpty) => false,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    pub contacts: usize,
    pub queued: usize,
    pub empty: usize,
    pub already_decided: usize,
    pub not_due: usize,
    pub email_off: usize,
    /// Digests passed over because the store failed on them (see `super::skip_contact`), or
    /// their templates did: one per contact and channel, or one for a contact whose items
    /// could not be read or whose schedule is refused.
    pub failed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("contact {contact}: {message}")]
    Contact { contact: String, message: String },
}

/// A store error met on one contact: in a pass over everyone it is that contact's alone
/// (logged and counted, `Ok`, and the pass goes on to the next); in a run for that contact
/// alone (`only`) it is the run's, in the store's own words.
fn contact_store_error(
    only: Option<&str>,
    contact: &str,
    e: StoreError,
    report: &mut PassReport,
) -> Result<(), PassError> {
    if only.is_some() {
        return Err(e.into());
    }
    super::skip_contact("digest", contact, e)?;
    report.failed += 1;
    Ok(())
}

/// A contact's schedule and time zone. `parsed` keeps the schedules already read in this
/// pass: most contacts share a few expressions, and reading one is not free.
fn contact_schedule(
    state: &Services,
    c: &ContactRow,
    s: &ContactSettings,
    parsed: &mut HashMap<String, cron::Schedule>,
) -> Result<(cron::Schedule, Tz), String> {
    let (expr, tz_name) = crate::actions::targets::clock(&state.config, c, s);
    let schedule = match parsed.get(expr) {
        Some(s) => s.clone(),
        None => {
            let s = parse_schedule(expr)?;
            parsed.insert(expr.to_string(), s.clone());
            s
        }
    };
    let tz: Tz = tz_name.parse().map_err(|_| format!("`{tz_name}` is not an IANA time zone"))?;
    Ok((schedule, tz))
}

/// One scheduler pass over every active contact (or one).
pub async fn run_pass(
    state: &Services,
    now: DateTime<Utc>,
    only: Option<&str>,
    trigger: Trigger,
) -> Result<PassReport, PassError> {
    let contacts: Vec<ContactRow> = match only {
        Some(id) => {
            let c = crate::store::contacts::get_contact(&state.db, id).await?;
            if !c.active {
                let message = "is not active; digests go to active contacts only".to_string();
                return Err(PassError::Contact { contact: c.id, message });
            }
            vec![c]
        }
        None => list_active_contacts(&state.db).await?,
    };
    let settings = list_settings(&state.db).await?;
    let mut report = PassReport { contacts: contacts.len(), ..Default::default() };
    let chats = targets_by_contact(&state.config, &state.db).await?;
    let mut cache = ItemCache::new(&contacts);
    let mut parsed = HashMap::new();
    // The live banners are read once a pass; each client's are picked from them.
    let live = list_live(&state.db, now).await?;
    let mut banners: Option<(String, Vec<BannerRow>)> = None;
    let catch_up = Duration::hours(i64::from(state.config.digest.catch_up_hours));
    // The configured clock is recorded by scheduled passes alone: a `digest run` started with
    // other settings (a shell without the service's environment) changes nothing.
    let digest = &state.config.digest;
    let (schedule_changed, zone_changed) = match trigger {
        Trigger::Scheduled => (
            ledgers::configured_clock_set_at(&state.db, "schedule", &digest.schedule, now).await?,
            ledgers::configured_clock_set_at(&state.db, "timezone", &digest.timezone, now).await?,
        ),
        Trigger::Manual { .. } => (None, None),
    };
    // A scheduled pass looks only at periods within the catch-up window: their decisions are
    // read in one go. (A manual pass may look further back, so it asks per contact; either
    // way the decision itself is taken again inside `queue_digest`'s transaction.)
    let decided = match trigger {
        Trigger::Scheduled => Some(ledgers::digest_decisions_since(&state.db, now - catch_up).await?),
        Trigger::Manual { .. } => None,
    };
    for c in &contacts {
        let s = settings.get(&c.id).cloned().unwrap_or_else(|| ContactSettings::defaults(&c.id));
        if !s.email_usable_for(crate::store::settings::Sending::Digest) {
            report.email_off += 1;
        }
        let targets = targets_of(&s, chats.get(&c.id), crate::store::settings::Sending::Digest);
        if targets.is_empty() {
            continue;
        }
        let (schedule, tz) = match contact_schedule(state, c, &s, &mut parsed) {
            Ok(x) => x,
            Err(message) => {
                if only.is_some() {
                    return Err(PassError::Contact { contact: c.id.clone(), message });
                }
                super::contact_failed("digest", &c.id, &format!("digest schedule refused: {message}"));
                report.failed += 1;
                continue;
            }
        };
        // A period is caught up only for a contact cport knew at its start, on the schedule
        // and in the zone that made it: one added since (a first import, a new person at
        // noon), or whose digest time changed since (09:00 chosen at 10:00, after the 08:00
        // digest went), missed nothing and gets the next one.
        // TOT's change counts only while its schedule or zone is the one in force; a change
        // of the configured ones (between two runs of cport) only for contacts on them.
        let tot_rules = s.digest_schedule.is_none() || s.timezone.is_none();
        let tot_set = c.schedule_set_at.filter(|_| tot_rules);
        let (takes_schedule, takes_zone) = crate::actions::targets::configured_parts(c, &s);
        let config_set = [schedule_changed.filter(|_| takes_schedule), zone_changed.filter(|_| takes_zone)];
        let clock_set = [tot_set, s.schedule_set_at].into_iter().chain(config_set).flatten().max();
        let known_at = |p: DateTime<Utc>| c.created_at.is_none_or(|t| t <= p);
        let current = current_period(&schedule, tz, now);
        // A clock set since the period began owes it only if the contact's last digest came
        // before the middle of the period before it on that clock: not after the 08:00
        // digest went when 09:00 was chosen at 10:00 (a second one within the hour), but
        // when 07:30 was chosen at 07:45 before the day's 08:00 (the next, tomorrow at 07:30,
        // would come two days after the last), and when the clock was given again as it was
        // (a zone TOT left out, now given by name).
        let owed = match current {
            Some(p) if clock_set.is_some_and(|t| t > p) => {
                let before = current_period(&schedule, tz, p - chrono::Duration::seconds(1));
                let last = match ledgers::last_digest_period(&state.db, &c.id).await {
                    Ok(last) => last,
                    // One contact's row the store cannot give stops no one else's digest.
                    Err(e) => {
                        contact_store_error(only, &c.id, e, &mut report)?;
                        continue;
                    }
                };
                last.is_none_or(|l| l == p || before.is_some_and(|b| l < p - (p - b) / 2))
            }
            _ => true,
        };
        let period = match (current, trigger) {
            (Some(p), Trigger::Scheduled) if now - p <= catch_up && known_at(p) && owed => p,
            (_, Trigger::Scheduled) => {
                report.not_due += 1;
                continue;
            }
            (Some(p), Trigger::Manual { .. }) => p,
            (None, Trigger::Manual { .. }) => now,
        };
        let again = trigger.again();
        let period_key = period.to_rfc3339_opts(SecondsFormat::Secs, true);
        for target in &targets {
            // The same for a chat tied since the period began: its contact had that digest
            // by the ways it had then.
            if let (Trigger::Scheduled, Target::Chat(l)) = (trigger, target)
                && l.linked_at.is_some_and(|tied| tied > period)
            {
                report.not_due += 1;
                continue;
            }
            let decision = match &decided {
                Some(d) => d
                    .get(&(c.id.clone(), target.outlet().as_str().to_string(), period_key.clone()))
                    .copied()
                    .unwrap_or(ledgers::Decision::Open),
                None => match ledgers::digest_decision(&state.db, &c.id, target.outlet(), &period_key).await {
                    Ok(d) => d,
                    Err(e) => {
                        contact_store_error(only, &c.id, e, &mut report)?;
                        break;
                    }
                },
            };
            if !again.retakes(decision) {
                report.already_decided += 1;
                continue;
            }
            let items = match cache.for_contact(&state.db, c).await {
                Ok(items) => crate::actions::targets::wanted(&state.config, &s, items),
                Err(e) => {
                    contact_store_error(only, &c.id, e, &mut report)?;
                    break;
                }
            };
            // Contacts come in client order: a client's banners are picked once.
            if banners.as_ref().is_none_or(|(client, _)| *client != c.client_id) {
                banners = Some((c.client_id.clone(), for_client(&live, &c.client_id, now)));
            }
            let content =
                DigestContent { items: &items, banners: banners.as_ref().map_or(&[][..], |(_, b)| b.as_slice()) };
            match queue_digest(state, c, target, content, &period, again, now).await {
                Ok(Queued::Queued(_)) => report.queued += 1,
                Ok(Queued::Empty) => report.empty += 1,
                Ok(Queued::AlreadyDecided) => report.already_decided += 1,
                Ok(Queued::Unrendered) => report.failed += 1,
                Err(e) if only.is_none() => {
                    super::skip_contact("digest", &c.id, e)?;
                    report.failed += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if report.queued > 0 {
        state.wake_dispatch.notify_waiters();
    }
    Ok(report)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Queued(i64),
    Empty,
    AlreadyDecided,
    /// Its templates failed (logged and counted); nothing was decided, so the next pass
    /// tries again.
    Unrendered,
}

/// What one digest shows: the contact's items and the banners of its client.
#[derive(Clone, Copy)]
pub struct DigestContent<'a> {
    pub items: &'a [ActionItem],
    pub banners: &'a [BannerRow],
}

/// Decides one contact's digest for one period and, when it has items, queues it — in one
/// transaction, so the decision and the message exist together or not at all.
pub async fn queue_digest(
    state: &Services,
    c: &ContactRow,
    target: &Target,
    content: DigestContent<'_>,
    period: &DateTime<Utc>,
    again: Again,
    now: DateTime<Utc>,
) -> Result<Queued, StoreError> {
    if state.faults.fires("digest:queue") {
        return Err(StoreError::Conflict("fault injected at digest:queue".into()));
    }
    let DigestContent { items, banners } = content;
    let channel = target.outlet();
    let period_key = period.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut tx = state.db.begin().await?;
    if again != Again::Never {
        ledgers::forget_digest_period(&mut tx, &c.id, channel, &period_key, again == Again::IfEmpty).await?;
    }
    if !ledgers::claim_digest_period(&mut tx, &c.id, channel, &period_key, now).await? {
        tx.rollback().await?;
        return Ok(Queued::AlreadyDecided);
    }
    // A digest of an earlier period still waiting (a mail server or chat down for longer than
    // a period) is stale: this one says what still needs the contact, and goes instead.
    let why = format!("superseded by the digest of {period_key}");
    let superseded = outbox::supersede_digests(&mut tx, &c.id, channel, *period, &why, now).await?;
    if superseded > 0 {
        tracing::info!(contact = %c.id, %channel, superseded, "digests still waiting were dropped for a newer one");
    }
    if items.is_empty() {
        ledgers::record_digest(&mut tx, &c.id, channel, &period_key, None, 0).await?;
        tx.commit().await?;
        return Ok(Queued::Empty);
    }
    let mut idem = format!("digest:{}:{channel}:{period_key}", c.id);
    if again == Again::Always {
        idem.push_str(&format!(":forced:{}", now.timestamp_micros()));
    }
    if let Target::Chat(link) = target {
        let message = digest_message(state, c, items, banners, now);
        let mut new = message.clone().queued(Some(&c.id), link.channel, &link.chat_id, MessageKind::Digest, idem, now);
        new.payload = crate::messages::ChatPayload::digest(message, item_keys(items));
        let Some(id) = outbox::insert_message(&mut tx, &new, now).await? else {
            tx.rollback().await?;
            return Ok(Queued::AlreadyDecided);
        };
        ledgers::record_digest(&mut tx, &c.id, channel, &period_key, Some(id), items.len() as i64).await?;
        ledgers::note_items(&mut tx, &c.id, channel, &item_keys(items), id, now).await?;
        tx.commit().await?;
        return Ok(Queued::Queued(id));
    }
    let previous: Option<HashSet<String>> = outbox::last_digest_payload(&mut tx, &c.id, channel, None)
        .await?
        .and_then(|p| serde_json::from_str::<EmailPayload>(&p).ok())
        .map(|p| p.item_keys.into_iter().collect());
    let token = state.signer.new_reply_token();
    let composer = Composer { config: &state.config, env: &state.templates, signer: &state.signer };
    let payload =
        match composer.compose_digest(&Recipient { contact: c, token: &token, now }, items, banners, previous.as_ref())
        {
            Ok(p) => p,
            Err(e) => {
                tx.rollback().await?;
                super::contact_failed("digest", &c.id, &format!("digest could not be composed: {e}"));
                return Ok(Queued::Unrendered);
            }
        };
    let id =
        outbox::insert_message(&mut tx, &payload.queued(Some(&c.id), MessageKind::Digest, idem, Some(token), now), now)
            .await?;
    let Some(id) = id else {
        tx.rollback().await?;
        return Ok(Queued::AlreadyDecided);
    };
    ledgers::record_digest(&mut tx, &c.id, channel, &period_key, Some(id), items.len() as i64).await?;
    ledgers::note_items(&mut tx, &c.id, channel, &item_keys(items), id, now).await?;
    tx.commit().await?;
    Ok(Queued::Queued(id))
}

fn item_keys(items: &[ActionItem]) -> Vec<String> {
    items.iter().map(ActionItem::key).collect()
}

/// What the store forgets with age, done by the scheduling process each tick: expired chat
/// codes and old update ids, stale rate limits, the nonces of links long expired, and the content of messages sent more than
/// `outbox.sent_content_days` ago (a thousand at a time, at most 50,000 a tick, so a first
/// pass over a long history does not hold the store for long).
pub async fn housekeeping(state: &Services, now: DateTime<Utc>) -> u64 {
    if let Err(e) = crate::store::chat::prune(&state.db, now).await {
        tracing::warn!(error = %e, "chat ledgers not pruned");
    }
    if let Err(e) = crate::store::limits::sweep(&state.db, now.timestamp_millis()).await {
        tracing::warn!(error = %e, "stale rate limits not swept");
    }
    let spent = now - Duration::days(crate::links::LONGEST_LINK_DAYS + 1);
    if let Err(e) = crate::store::ledgers::forget_nonces(&state.db, spent).await {
        tracing::warn!(error = %e, "used link nonces not forgotten");
    }
    let Some(days) = state.config.sent_content_kept_days() else {
        return 0;
    };
    let before = now - Duration::days(i64::from(days));
    let mut cleared = 0;
    for _ in 0..50 {
        match outbox::clear_old_content(&state.db, before, 1000).await {
            Ok(n) => {
                cleared += n;
                if n < 1000 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the content of old messages not cleared");
                break;
            }
        }
    }
    if cleared > 0 {
        tracing::info!(cleared, days, "content of old messages cleared");
    }
    cleared
}

/// The scheduler loop: a pass every `digest.tick_seconds` until shutdown. With PostgreSQL,
/// only the process holding the advisory lock runs passes (the ledgers would make a second
/// one harmless, but not free).
pub async fn run(state: Services, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let tick = std::time::Duration::from_secs(state.config.digest.tick_seconds);
    let mut lock: Option<ledgers::LeaderLock> = None;
    loop {
        state.faults.panic_if_armed("task:scheduler");
        let leads = ledgers::keep_lock(&state.db, &mut lock, ledgers::Leader::Scheduler).await;
        if matches!(state.db, crate::store::Db::Sqlite(_)) || leads {
            let watch = state.health.watch(
                "digest",
                "digest",
                std::time::Duration::from_secs(state.config.stalled_pass_seconds),
            );
            housekeeping(&state, Utc::now()).await;
            state.faults.stall_if_armed("digest:stall").await;
            let pass = run_pass(&state, Utc::now(), None, Trigger::Scheduled).await;
            watch.end(&pass);
            match pass {
                Ok(r) if r.queued > 0 => tracing::info!(queued = r.queued, empty = r.empty, "digests queued"),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "digest pass failed");
                    metrics::counter!("cport_pass_failures_total", "pass" => "digest").increment(1);
                }
            }
            crate::memory::give_back();
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => break,
        }
    }
}
