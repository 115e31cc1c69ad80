//! Instant alerts: items in categories a contact set to `instant` are alerted once, soon
//! after they appear. Alerts close together are batched, quiet hours hold them, and an alert
//! whose items were all resolved before it went out is dropped (see `outbox`).

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};

use crate::actions::items::{ActionItem, Category, ItemCache};
use crate::actions::targets::Target;
use crate::actions::targets::mode;
use crate::model::AlertMode;
use crate::services::Services;
use crate::store::contacts::{ContactRow, list_active_contacts};
use crate::store::outbox::AlertPayload;
use crate::store::settings::{ContactSettings, list_settings};
use crate::store::{StoreError, ledgers, outbox};

/// One scan: contacts of `clients` (or all), each item in an instant category not alerted
/// before is queued. Returns how many items were queued.
pub async fn scan(
    state: &Services,
    now: DateTime<Utc>,
    clients: Option<&HashSet<String>>,
) -> Result<usize, StoreError> {
    let contacts: Vec<ContactRow> = list_active_contacts(&state.db)
        .await?
        .into_iter()
        .filter(|c| clients.is_none_or(|set| set.contains(&c.client_id)))
        .collect();
    let settings = list_settings(&state.db).await?;
    let chats = crate::actions::targets::targets_by_contact(&state.config, &state.db).await?;
    let mut cache = ItemCache::new(&contacts);
    let mut queued = 0;
    let mut before = AlertedBefore::default();
    for (n, c) in contacts.iter().enumerate() {
        if n % LEDGER_BATCH == 0 {
            before = AlertedBefore::read(state, &contacts[n..(n + LEDGER_BATCH).min(contacts.len())]).await;
        }
        let s = settings.get(&c.id).cloned().unwrap_or_else(|| ContactSettings::defaults(&c.id));
        let targets = crate::actions::targets::targets_of(&s, chats.get(&c.id), crate::store::settings::Sending::Alert);
        let instant: Vec<Category> =
            Category::ALL.into_iter().filter(|cat| mode(&state.config, &s, *cat) == AlertMode::Instant).collect();
        // Email not alerted now (alerts or email turned off, suspended after bounces) still
        // has its items recorded as seen, as every channel does while no category is instant:
        // turned on again, it alerts what comes after, not what the contact had in their
        // digests all along.
        let mut watched: Vec<(crate::actions::targets::Target, &[Category])> =
            targets.into_iter().map(|t| (t, instant.as_slice())).collect();
        if !watched.iter().any(|(t, _)| matches!(t, crate::actions::targets::Target::Email)) {
            watched.push((crate::actions::targets::Target::Email, &[]));
        }
        // A chat looked at before that is no target now (unlinked, cleared or changed in
        // TOT's record, its sender no longer configured) is forgotten, as an /unlink forgets
        // it: tied again, it starts from what needs the contact then, not with every item
        // that came up meanwhile (the contact had those by email and digest).
        for chat in crate::model::Chat::ALL {
            let outlet = crate::model::Outlet::from(*chat);
            if before.get(&(c.id.clone(), outlet)).is_some()
                && !watched.iter().any(|(t, _)| t.outlet() == outlet)
                && let Err(e) = forget_chat(state, &c.id, outlet).await
            {
                super::skip_contact("alerts", &c.id, e)?;
            }
        }
        // Every item is looked at, not only the instant categories': those of the others are
        // recorded as seen, so a category switched to instant later alerts what comes after,
        // not what the contact had in their digests all along.
        let items: Vec<ActionItem> = match cache.for_contact(&state.db, c).await {
            Ok(items) => items,
            Err(e) => {
                super::skip_contact("alerts", &c.id, e)?;
                continue;
            }
        };
        for (t, instant) in &watched {
            let seen = before.get(&(c.id.clone(), t.outlet()));
            match queue_alerts(state, c, &s, t, (&items, instant), seen, now).await {
                Ok(n) => queued += n,
                Err(e) => super::skip_contact("alerts", &c.id, e)?,
            }
        }
    }
    if queued > 0 {
        state.wake_dispatch.notify_waiters();
    }
    Ok(queued)
}

async fn forget_chat(state: &Services, contact: &str, outlet: crate::model::Outlet) -> Result<(), StoreError> {
    let mut tx = state.db.begin().await?;
    ledgers::forget_channel(&mut tx, contact, outlet).await?;
    tx.commit().await?;
    Ok(())
}

/// How long after a contact's first look an item TOT dated before it still counts as part of
/// what existed then: long enough for a first load sent entity by entity to arrive.
const BASELINE_SETTLES: Duration = Duration::hours(1);

/// Contacts whose alert ledgers are read together, before their items are compared.
const LEDGER_BATCH: usize = 250;

/// What a batch of contacts was alerted of before, by contact and channel, as read without
/// the write lock. A batch that cannot be read is left empty: each of its contacts then
/// goes through the transaction that decides, as on its first scan.
#[derive(Default)]
struct AlertedBefore(std::collections::HashMap<(String, crate::model::Outlet), HashSet<String>>);

impl AlertedBefore {
    async fn read(state: &Services, contacts: &[ContactRow]) -> AlertedBefore {
        let ids: Vec<&str> = contacts.iter().map(|c| c.id.as_str()).collect();
        match ledgers::alert_ledgers_of(&state.db, &ids).await {
            Ok(l) => AlertedBefore(l),
            Err(e) => {
                tracing::warn!(error = %e, "alert ledgers not read ahead; each contact is checked in its own transaction");
                AlertedBefore::default()
            }
        }
    }

    fn get(&self, key: &(String, crate::model::Outlet)) -> Option<&HashSet<String>> {
        self.0.get(key)
    }
}

async fn queue_alerts(
    state: &Services,
    c: &ContactRow,
    s: &ContactSettings,
    target: &Target,
    (items, instant): (&[ActionItem], &[Category]),
    seen_before: Option<&HashSet<String>>,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let channel = target.outlet();
    // A look without the write lock first, at the ledger read ahead for the contact's batch:
    // a contact scanned before with nothing new (most contacts, most minutes) opens no
    // transaction. What is found new is read again inside the transaction below, which
    // decides.
    let keys: HashSet<String> = items.iter().map(ActionItem::key).collect();
    if seen_before.is_some_and(|seen| *seen == keys) {
        return Ok(0);
    }
    // A chat row holds the same item list; the chat sender reads it as a `ChatPayload`.
    let (recipient, reply_token, message_id) = match target {
        Target::Email => {
            (c.email.clone(), Some(state.signer.new_reply_token()), crate::messages::new_message_id(&state.config))
        }
        Target::Chat(l) => (l.chat_id.clone(), None, String::new()),
    };
    // The ledger is read inside the transaction that writes it, so two scanners (two
    // processes) never both take the same item as new.
    let mut tx = state.db.begin().await?;
    let seen = ledgers::alerted_keys(&mut tx, &c.id, channel).await?;
    // Items that no longer need the contact are forgotten: one that comes back later (a
    // visual sent back for approval, a job's instructions withdrawn) is news again.
    let mut gone: Vec<&str> = seen.iter().filter(|k| !keys.contains(*k)).map(String::as_str).collect();
    if !gone.is_empty() {
        // Read again now, past the batch's snapshot: an item another process alerted since
        // that snapshot was taken (a sync in between) is not gone, only new to the snapshot.
        // Read in this transaction: on SQLite it holds the one write lock, and a read of the
        // pool's would wait for a connection that writers waiting on that lock may all hold.
        let now_there: HashSet<String> =
            crate::actions::items::for_contact(&mut tx, c).await?.iter().map(ActionItem::key).collect();
        gone.retain(|k| !now_there.contains(*k));
    }
    ledgers::forget_alerts(&mut tx, &c.id, channel, &gone).await?;
    let fresh: Vec<&ActionItem> = items.iter().filter(|i| !seen.contains(&i.key())).collect();
    // What exists at the first look at this contact is the baseline, not news; and so is an
    // item that reaches cport within the hour after that look but that TOT dated before it (a
    // first load sent entity by entity, its visuals after the scan that saw the contacts
    // arrive). Later, an old record that needs the contact again (a visual sent back for
    // approval) is news like any other.
    let baseline = ledgers::claim_alert_baseline(&mut tx, &c.id, channel, now).await?;
    let (old, fresh): (Vec<&ActionItem>, Vec<&ActionItem>) = match baseline {
        None => (fresh, vec![]),
        Some(at) => fresh.into_iter().partition(|i| {
            !instant.contains(&i.category) || (now - at < BASELINE_SETTLES && i.since.is_some_and(|since| since < at))
        }),
    };
    for i in &old {
        ledgers::claim_alert(&mut tx, &c.id, channel, i.category.code(), &i.id, None, now).await?;
    }
    if fresh.is_empty() {
        // A first look, or items recorded without an alert (from before it, or of a category
        // not instant), is written; with nothing at all, nothing is.
        if baseline.is_none() || !old.is_empty() || !gone.is_empty() {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        return Ok(0);
    }
    // News joins a held alert, not a held reminder: staff's reminder says its items are still
    // waiting, which a new item is not.
    let mut held = None;
    for row in outbox::find_held_alerts(&mut tx, &c.id, channel, now).await? {
        match serde_json::from_str::<AlertPayload>(&row.message.payload) {
            // Nor one addressed to a chat or address the contact no longer has (TOT's record
            // changed it): its sender drops it, and what joined it would be lost with it.
            Ok(p) if p.reminder || !row.message.recipient.eq_ignore_ascii_case(&recipient) => continue,
            Ok(p) => {
                held = Some((row.id, p));
                break;
            }
            Err(e) => {
                // Its sender says so when it dies (it cannot be read either); this batch
                // waits for a row of its own.
                tracing::error!(id = row.id, error = %e, "a held alert's payload cannot be read; its items wait");
                tx.rollback().await?;
                return Ok(0);
            }
        }
    }
    let (row_id, mut payload) = match held {
        Some(held) => held,
        None => {
            let window = Duration::seconds(state.config.alerts.batch_window_seconds as i64);
            let mut at = match outbox::last_alert_at(&mut tx, &c.id, channel).await? {
                Some(last) if now - last < window => last + window,
                _ => now,
            };
            at = crate::actions::targets::after_quiet_hours(&state.config, c, s, at);
            let payload = AlertPayload { items: vec![], message_id, reminder: false };
            let first = fresh[0];
            let id = outbox::insert_message(
                &mut tx,
                &outbox::NewMessage {
                    contact_id: Some(c.id.clone()),
                    channel,
                    kind: crate::model::MessageKind::Alert,
                    // An item may be alerted again once it has left and come back: the
                    // key holds the time (the ledger's claim below is what keeps two
                    // scanners from alerting one item twice).
                    idem_key: format!("alert:{}:{channel}:{}:{}", c.id, first.key(), now.timestamp()),
                    reply_token,
                    recipient,
                    subject: crate::messages::compose::alert_subject(
                        &state.config.branding.name,
                        1,
                        &first.title,
                        false,
                    ),
                    payload: serde_json::to_string(&payload).unwrap_or_default(),
                    next_attempt_at: at,
                },
                now,
            )
            .await?;
            match id {
                Some(id) => (id, payload),
                None => {
                    tx.rollback().await?;
                    return Ok(0);
                }
            }
        }
    };
    let mut added = 0;
    for i in &fresh {
        if ledgers::claim_alert(&mut tx, &c.id, channel, i.category.code(), &i.id, Some(row_id), now).await? {
            payload.items.push(i.key());
            added += 1;
        }
    }
    if added == 0 {
        // Another scanner alerted all of them first: no row without items is ever queued.
        tx.rollback().await?;
        return Ok(0);
    }
    let told: Vec<String> = payload.items[payload.items.len() - added..].to_vec();
    ledgers::note_items(&mut tx, &c.id, channel, &told, row_id, now).await?;
    // As the email will say it (its items are the row's; a held row's are said by count).
    let subject = crate::messages::compose::alert_subject(
        &state.config.branding.name,
        payload.items.len(),
        &fresh[0].title,
        false,
    );
    // The held row may have been claimed by a sender since it was found: then it is gone
    // already, and these items wait for the next scan rather than ride a row that left.
    if !outbox::update_queued(&mut tx, row_id, &subject, &serde_json::to_string(&payload).unwrap_or_default(), now)
        .await?
    {
        tx.rollback().await?;
        return Ok(0);
    }
    tx.commit().await?;
    Ok(added)
}

/// The alert loop: scans changed clients when a sync rings, everyone every `alerts.scan_seconds`.
pub async fn run(state: Services, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let every = std::time::Duration::from_secs(state.config.alerts.scan_seconds);
    let mut next_full = tokio::time::Instant::now();
    loop {
        state.faults.panic_if_armed("task:alerts");
        let full = tokio::time::Instant::now() >= next_full;
        let watch =
            state.health.watch("alerts", "alerts", std::time::Duration::from_secs(state.config.stalled_pass_seconds));
        let dirty = state.alerts.take();
        let result = if full {
            next_full = tokio::time::Instant::now() + every;
            scan(&state, Utc::now(), None).await
        } else if !dirty.is_empty() {
            scan(&state, Utc::now(), Some(&dirty)).await
        } else {
            Ok(0)
        };
        watch.end(&result);
        match result {
            Ok(n) if n > 0 => tracing::info!(items = n, "alerts queued"),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "alert scan failed");
                metrics::counter!("cport_pass_failures_total", "pass" => "alerts").increment(1);
            }
        }
        if full {
            // A full scan reads every client's items; what it freed goes back to the system.
            crate::memory::give_back();
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_full) => {}
            _ = state.alerts.notify.notified() => {}
            _ = shutdown.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schedule::utc;

    use crate::actions::targets::quiet_until;
    use chrono_tz::Tz;

    #[test]
    fn quiet_hours_hold_until_they_end_in_the_contacts_zone() {
        let s = ContactSettings {
            quiet_start: Some("22:00".into()),
            quiet_end: Some("07:00".into()),
            ..ContactSettings::defaults("P")
        };
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 23:30 Berlin (22:30 UTC in winter) → held until 07:00 Berlin = 06:00 UTC next day.
        let at = utc(2026, 11, 25, 22, 30);
        assert_eq!(quiet_until(&s, berlin, at), Some(utc(2026, 11, 26, 6, 0)));
        // 05:00 Berlin → same morning 07:00.
        let early = utc(2026, 11, 26, 4, 0);
        assert_eq!(quiet_until(&s, berlin, early), Some(utc(2026, 11, 26, 6, 0)));
        // Noon is not quiet.
        let noon = utc(2026, 11, 26, 11, 0);
        assert_eq!(quiet_until(&s, berlin, noon), None);
    }

    #[test]
    fn quiet_hours_end_once_on_the_days_the_clocks_change() {
        let london: Tz = "Europe/London".parse().unwrap();
        let q = |start: &str, end: &str| ContactSettings {
            quiet_start: Some(start.into()),
            quiet_end: Some(end.into()),
            ..ContactSettings::defaults("P")
        };
        // 25 October 2026, clocks back at 02:00 BST: 01:30 comes twice (00:30 and 01:30
        // UTC). At 01:15 GMT (the second 01:15) the end still to come is the second 01:30.
        let s = q("22:00", "01:30");
        let at = utc(2026, 10, 25, 1, 15);
        assert_eq!(quiet_until(&s, london, at), Some(utc(2026, 10, 25, 1, 30)));
        // At the first 01:15 (00:15 UTC), the first 01:30 (00:30 UTC).
        assert_eq!(quiet_until(&s, london, utc(2026, 10, 25, 0, 15)), Some(utc(2026, 10, 25, 0, 30)));
        // 29 March 2026, clocks forward at 01:00 GMT: 01:30 never comes; they end at 02:00
        // BST (01:00 UTC), the first minute after the gap.
        let s = q("23:00", "01:30");
        assert_eq!(quiet_until(&s, london, utc(2026, 3, 29, 0, 10)), Some(utc(2026, 3, 29, 1, 0)));
    }
}
