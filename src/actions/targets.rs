//! Where a contact's messages go: email while it is usable, and each linked chat whose
//! channel cport sends on. Digests, alerts and urgent banners all ask here.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::config::Config;
use crate::model::AlertMode;
use crate::model::items::{ActionItem, Category};
use crate::store::StoreError;
use crate::store::chat::ChatLink;
use crate::store::contacts::ContactRow;
use crate::store::settings::{ContactSettings, Sending};

/// Where a contact's digest or alert goes: email, or one linked chat.
#[derive(Debug, Clone)]
pub enum Target {
    Email,
    Chat(ChatLink),
}

impl Target {
    pub fn outlet(&self) -> crate::model::Outlet {
        match self {
            Target::Email => crate::model::Outlet::Email,
            Target::Chat(l) => l.channel.into(),
        }
    }
}

/// Every contact's targets: email when usable, and each linked chat whose channel has a
/// sender configured.
pub async fn targets_by_contact(
    config: &Config,
    db: &crate::store::Db,
) -> Result<std::collections::HashMap<String, Vec<ChatLink>>, StoreError> {
    let mut out: std::collections::HashMap<String, Vec<ChatLink>> = Default::default();
    let sending = config.chat_channels();
    for l in crate::store::chat::all_chats(db).await? {
        if sending.contains(&l.channel) {
            out.entry(l.contact_id.clone()).or_default().push(l);
        }
    }
    Ok(out)
}

/// Where a contact's message of this kind goes: email when usable for it, and each chat.
pub fn targets_of(s: &ContactSettings, chats: Option<&Vec<ChatLink>>, kind: Sending) -> Vec<Target> {
    let mut t = vec![];
    if s.email_usable_for(kind) {
        t.push(Target::Email);
    }
    t.extend(chats.into_iter().flatten().cloned().map(Target::Chat));
    t
}

/// When a contact's digests come: the schedule and the time zone in force (their own, else
/// TOT's for them, else the configured schedule). The scheduler reads it; a change of it is
/// what a preferences save stamps.
pub fn clock<'a>(config: &'a Config, c: &'a ContactRow, s: &'a ContactSettings) -> (&'a str, &'a str) {
    let schedule = s.digest_schedule.as_deref().or(c.digest_schedule.as_deref()).unwrap_or(&config.digest.schedule);
    (schedule, zone(config, c, s))
}

/// Which of the configured schedule and zone the contact's clock takes (neither they nor
/// TOT gave their own), so that a change of `digest.schedule` or `digest.timezone` moves it.
pub fn configured_parts(c: &ContactRow, s: &ContactSettings) -> (bool, bool) {
    (s.digest_schedule.is_none() && c.digest_schedule.is_none(), s.timezone.is_none() && c.timezone.is_empty())
}

/// Keeps as the contact's own only the zone and schedule they chose apart from TOT's: one
/// the same as TOT's for them (or the configured one) is left to follow TOT, so that saving
/// the preferences page for another reason does not pin them, and TOT's later change of
/// either still reaches the contact.
fn own_choices(config: &Config, c: &ContactRow, s: &mut ContactSettings) {
    if s.timezone.as_deref() == Some(tots_zone(config, c)) {
        s.timezone = None;
    }
    let tots_schedule = c.digest_schedule.as_deref().unwrap_or(&config.digest.schedule);
    if s.digest_schedule.as_deref() == Some(tots_schedule) {
        s.digest_schedule = None;
    }
}

/// A contact's time zone: their own, else TOT's for them, else `digest.timezone`.
pub fn zone<'a>(config: &'a Config, c: &'a ContactRow, s: &'a ContactSettings) -> &'a str {
    s.timezone.as_deref().unwrap_or_else(|| tots_zone(config, c))
}

/// [`zone`] as a zone to read clocks in. One that cannot be read (zones are checked as they
/// arrive, so only a record from before) is `digest.timezone`, checked at start.
pub fn clock_of(config: &Config, c: &ContactRow, s: &ContactSettings) -> Tz {
    zone(config, c, s).parse().or_else(|_| config.digest.timezone.parse()).unwrap_or(chrono_tz::UTC)
}

/// Today on the contact's clock ([`clock_of`]): what a date they pick is checked against
/// (west of UTC in the evening, UTC's date is already tomorrow).
pub async fn today_of(
    state: &crate::services::Services,
    c: &ContactRow,
    now: DateTime<Utc>,
) -> Result<chrono::NaiveDate, StoreError> {
    Ok(now.with_timezone(&contact_clock(state, c).await?).date_naive())
}

/// The contact's clock ([`clock_of`]), their saved settings read for it.
pub async fn contact_clock(state: &crate::services::Services, c: &ContactRow) -> Result<Tz, StoreError> {
    let s = crate::store::settings::get_settings(&state.db, &c.id).await?;
    Ok(clock_of(&state.config, c, &s))
}

/// When quiet hours (local "HH:MM" start and end) hold a message due at `at`, the time they end.
pub fn quiet_until(s: &ContactSettings, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let start = NaiveTime::parse_from_str(s.quiet_start.as_deref()?, "%H:%M").ok()?;
    let end = NaiveTime::parse_from_str(s.quiet_end.as_deref()?, "%H:%M").ok()?;
    let local = at.with_timezone(&tz);
    let t = local.time();
    let inside = if start <= end { t >= start && t < end } else { t >= start || t < end };
    if !inside {
        return None;
    }
    let mut day = local.date_naive();
    if t >= end {
        day = day.succ_opt()?;
    }
    // The end time may come twice on the day clocks go back: the first of the two not
    // before `at`. It may not come at all on the day they go forward: the first minute
    // after the gap (searched a minute at a time, at most three hours on).
    let naive = day.and_time(end);
    let ends = (0..=180).find_map(|m| {
        let local = naive + Duration::minutes(m);
        let both = [local.and_local_timezone(tz).earliest(), local.and_local_timezone(tz).latest()];
        both.into_iter().flatten().map(|t| t.with_timezone(&Utc)).find(|t| *t >= at)
    })?;
    Some(ends.max(at))
}

/// When an alert due at `at` may go to a contact: at `at`, or when their quiet hours end if
/// they hold it then. The first queueing and every retry ask this, so a retry never lands in
/// quiet hours either.
pub fn after_quiet_hours(config: &Config, c: &ContactRow, s: &ContactSettings, at: DateTime<Utc>) -> DateTime<Utc> {
    quiet_until(s, clock_of(config, c, s), at).unwrap_or(at)
}

/// Preferences a contact chose, checked by [`check_preferences`]: the only kind
/// [`save_preferences`] saves.
#[derive(Debug, Clone)]
pub struct Checked(ContactSettings);

/// Checks preferences a contact typed (`s`, read from the form as text) before they are
/// saved: a time zone; a digest schedule within a contact's limits (given as
/// `schedule_field`), unless it is the one TOT gives them, which is theirs whatever it allows
/// and must not stop the page being saved for another reason; quiet hours `HH:MM` each, both
/// or neither, not one time twice, then kept as `HH:MM` whatever was typed (`7:5`). The
/// first fault, naming its field. What passes keeps only the contact's own choices
/// ([`own_choices`]).
pub fn check_preferences(
    config: &Config,
    c: &ContactRow,
    mut s: ContactSettings,
    schedule_field: &str,
) -> Result<Checked, super::ActionError> {
    use super::ActionError;
    let quoted = crate::model::quoted;
    let tz = s.timezone.as_deref().unwrap_or("");
    tz.parse::<Tz>().map_err(|_| ActionError::invalid("timezone", format!("{} is not a time zone", quoted(tz))))?;
    let schedule = s.digest_schedule.as_deref().unwrap_or("");
    let tots = c.digest_schedule.as_deref().unwrap_or(&config.digest.schedule);
    if schedule != tots {
        crate::model::schedule::check_contact_schedule(schedule)
            .map_err(|e| ActionError::invalid(schedule_field, e.to_string()))?;
    }
    let time = |key: &str, v: &Option<String>| match v.as_deref() {
        None => Ok(None),
        Some(v) => NaiveTime::parse_from_str(v, "%H:%M")
            .map(Some)
            .map_err(|_| ActionError::invalid(key, format!("{} is not a time like 22:00", quoted(v)))),
    };
    let (start, end) = (time("quiet_start", &s.quiet_start)?, time("quiet_end", &s.quiet_end)?);
    match (start, end) {
        (Some(_), None) | (None, Some(_)) => {
            return Err(ActionError::invalid("quiet hours", "give both a start and an end, or neither"));
        }
        (Some(a), Some(b)) if a == b => {
            return Err(ActionError::invalid(
                "quiet_end",
                format!(
                    "{} is also the start: quiet hours from a time to itself hold nothing (leave both empty for none)",
                    s.quiet_end.as_deref().unwrap_or_default()
                ),
            ));
        }
        _ => {}
    }
    let hhmm = |t: Option<NaiveTime>| t.map(|t| t.format("%H:%M").to_string());
    (s.quiet_start, s.quiet_end) = (hhmm(start), hhmm(end));
    own_choices(config, c, &mut s);
    Ok(Checked(s))
}

/// Saves what a contact chose on their preferences page (`after`, over `before`) and, in the
/// same transaction, what follows from it: the digest clock stamped when the schedule or
/// zone in force changes ([`stamp_clock`]), and their held alerts retimed to the new quiet
/// hours ([`retime_held_alerts`]). A failure between the two leaves neither. Gives how many
/// alerts moved.
pub async fn save_preferences(
    state: &crate::services::Services,
    c: &ContactRow,
    before: &ContactSettings,
    Checked(mut after): Checked,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let config = &state.config;
    stamp_clock(config, c, before, &mut after, now);
    state
        .db
        .in_transaction(async |tx| {
            crate::store::settings::save_preferences(&mut *tx, &after, now).await?;
            if state.faults.fires("preferences:retime") {
                return Err(StoreError::Conflict("fault injected at preferences:retime".into()));
            }
            retime_held_alerts(config, tx, c, (before, &after), now).await
        })
        .await
}

/// After a contact's quiet hours or zone changed (`before` to `after`): their held alerts go
/// when the new hours allow, within one batch window from `now` for one the old hours held
/// (quiet hours cleared at 23:00 release what they held then, not at their old end); new
/// quiet hours hold what is queued to go inside them. Gives how many moved.
async fn retime_held_alerts(
    config: &Config,
    tx: &mut crate::store::Tx,
    c: &ContactRow,
    (before, after): (&ContactSettings, &ContactSettings),
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let same = |s: &ContactSettings| (s.quiet_start.clone(), s.quiet_end.clone(), zone(config, c, s).to_string());
    if same(before) == same(after) {
        return Ok(0);
    }
    let window = chrono::Duration::seconds(config.alerts.batch_window_seconds as i64);
    let mut moved = 0;
    for (id, at) in crate::store::outbox::held_alerts(&mut *tx, &c.id, now).await? {
        let go = after_quiet_hours(config, c, after, at.min(now + window));
        if go != at && crate::store::outbox::retime(&mut *tx, id, go, now).await? {
            moved += 1;
        }
    }
    Ok(moved)
}

/// The time zone TOT gives a contact, else `digest.timezone`.
fn tots_zone<'a>(config: &'a Config, c: &'a ContactRow) -> &'a str {
    match c.timezone.as_str() {
        "" => &config.digest.timezone,
        given => given,
    }
}

/// Stamps `after` (settings about to be saved over `before`) with `now` when the schedule or
/// zone in force changes: the scheduler owes a period of the new one that began earlier only
/// if no digest went since the slot before it (see `digest::scheduler`).
/// Anything else changed (an alert mode, email off) stamps nothing.
fn stamp_clock(
    config: &Config,
    c: &ContactRow,
    before: &ContactSettings,
    after: &mut ContactSettings,
    now: chrono::DateTime<chrono::Utc>,
) {
    if clock(config, c, before) != clock(config, c, after) {
        after.schedule_set_at = Some(now);
    }
}

/// The mode a contact chose for a category, or the configured default.
pub fn mode(config: &Config, s: &ContactSettings, cat: Category) -> AlertMode {
    let (own, default) = match cat {
        Category::VisualApproval => (&s.mode_visual_approval, &config.alerts.visual_approval),
        Category::DeliveryInstructions => (&s.mode_delivery_instructions, &config.alerts.delivery_instructions),
        Category::ThirdPartyPo => (&s.mode_third_party_po, &config.alerts.third_party_po),
        Category::AwaitingArt => (&s.mode_awaiting_art, &config.alerts.awaiting_art),
    };
    own.unwrap_or(*default)
}

/// The items a contact hears of at all: those of a category they set to "not at all" (`off`)
/// are in no digest or alert of theirs (they stay on the portal and in answers asked for).
pub fn wanted(config: &Config, s: &ContactSettings, items: Vec<ActionItem>) -> Vec<ActionItem> {
    items.into_iter().filter(|i| mode(config, s, i.category) != AlertMode::Off).collect()
}
