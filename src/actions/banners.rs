//! Stop-press banners (shared/SPEC.md F7): staff post them from the CLI, the API or chat;
//! active ones lead every digest, and an urgent one is pushed to its audience at once.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::actions::Unit;
use crate::actions::targets::Target;
use crate::messages::ChatMessage;
use crate::messages::compose::{Composer, Recipient};
use crate::model::{FieldError, MessageKind, SEVERITIES, check_one_of, check_text};
use crate::services::Services;
use crate::store::banners::{BannerRow, LiveBanner, NewBanner, existing_clients, get_banner, insert_banner, list_live};
use crate::store::contacts::{ContactRow, list_active_contacts};
use crate::store::settings::{ContactSettings, list_settings};
use crate::store::{StoreError, outbox};

/// A banner as staff describe it (API body; the CLI builds the same).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BannerInput {
    /// The headline, shown first (one line).
    #[schemars(length(min = 1, max = crate::model::limits::BANNER_TITLE), regex(pattern = r"\S"))]
    pub title: String,
    /// The message.
    #[schemars(length(min = 1, max = crate::model::limits::BANNER_BODY), regex(pattern = r"\S"))]
    pub body: String,
    /// How loud it is; `urgent` ones are also sent at once.
    #[schemars(with = "crate::model::Severity")]
    pub severity: String,
    /// Client ids; empty or missing means every client.
    #[serde(default)]
    pub clients: Vec<String>,
    /// When it starts showing, at most 366 days ahead; default now.
    #[serde(default, deserialize_with = "crate::model::dates::optional_time")]
    pub starts_at: Option<DateTime<Utc>>,
    /// When it stops showing; default never.
    #[serde(default, deserialize_with = "crate::model::dates::optional_time")]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BannerError {
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The same post sent again (a second click, a retry after a lost answer): banner `.0`.
    #[error("this banner was posted already (banner {0}); retract it, or change it to post another")]
    AlreadyPosted(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Posted {
    /// The banner's id (to retract it).
    pub id: i64,
    /// Messages queued at once (urgent banners only).
    pub queued: usize,
}

/// How far ahead a banner may be set to start.
pub const MOST_DAYS_AHEAD: i64 = 366;
/// The most clients one banner names: its audience is some of TOT's clients, and every
/// client is an empty list.
pub const MOST_CLIENTS: usize = 10_000;

/// Checks a banner as staff describe it and gives the banner to store; nothing is written.
/// Each problem names its field.
pub async fn check(
    state: &Services,
    input: &BannerInput,
    by: &str,
    now: DateTime<Utc>,
) -> Result<NewBanner, BannerError> {
    let mut errs = Vec::new();
    check_text("title", &input.title, crate::model::limits::BANNER_TITLE, &mut errs);
    check_text("body", &input.body, crate::model::limits::BANNER_BODY, &mut errs);
    let severity = crate::model::Severity::parse(&input.severity);
    if severity.is_none() {
        check_one_of("severity", &input.severity, SEVERITIES, &mut errs);
    }
    for (field, value, lines) in
        [("title", &input.title, crate::model::Lines::One), ("body", &input.body, crate::model::Lines::Many)]
    {
        if let Err(e) = crate::model::check_chars(field, value.trim(), lines) {
            errs.push(e);
        }
    }
    // What the API reads is checked as it is read; the console and the command line give
    // times of their own making, checked here for all three.
    let years = crate::model::dates::YEARS;
    for (field, at) in [("starts_at", input.starts_at), ("expires_at", input.expires_at)] {
        if let Some(at) = at
            && !years.contains(&chrono::Datelike::year(&at))
        {
            errs.push(FieldError::new(
                field,
                format!("must be between the years {} and {}", years.start(), years.end()),
            ));
        }
    }
    // A banner is news: one set to start years ahead (a typed year off by one) would wait
    // unseen in the list, never shown.
    if let Some(at) = input.starts_at
        && years.contains(&chrono::Datelike::year(&at))
        && at > now + chrono::Duration::days(MOST_DAYS_AHEAD)
    {
        errs.push(FieldError::new("starts_at", format!("must be within {MOST_DAYS_AHEAD} days from now")));
    }
    let starts_at = input.starts_at.unwrap_or(now);
    if let Some(exp) = input.expires_at {
        // An end already past shows the banner nowhere (and would send an urgent one to be
        // dropped at once), whatever its start; without a start the banner starts now.
        if exp <= now {
            errs.push(FieldError::new("expires_at", "is past: give a time to come"));
        } else if exp <= starts_at {
            errs.push(FieldError::new("expires_at", "must be after the start"));
        }
    }
    // Only what could be an id is looked up (a NUL in one cannot be, on PostgreSQL). A list
    // longer than any audience is refused as a whole, not answered one error an entry.
    let mut ids = Vec::new();
    if input.clients.len() > MOST_CLIENTS {
        let why = format!("at most {MOST_CLIENTS} clients (leave it empty for every client)");
        errs.push(FieldError::new("clients", why));
    }
    for (i, c) in input.clients.iter().enumerate().take_while(|_| input.clients.len() <= MOST_CLIENTS) {
        let before = errs.len();
        crate::model::check_id(&format!("clients[{i}]"), c, &mut errs);
        if errs.len() == before {
            ids.push(c.clone());
        }
    }
    // A client named twice is one audience (the store keeps each client once per banner).
    let mut seen = std::collections::HashSet::new();
    ids.retain(|c| seen.insert(c.clone()));
    let known: std::collections::HashSet<String> = existing_clients(&state.db, &ids).await?.into_iter().collect();
    for c in ids.iter().filter(|c| !known.contains(*c)) {
        errs.push(FieldError::new("clients", format!("unknown client {}", crate::model::quoted(c))));
    }
    let Some(severity) = severity.filter(|_| errs.is_empty()) else {
        return Err(BannerError::Invalid(errs));
    };
    Ok(NewBanner {
        title: input.title.trim().to_string(),
        body: input.body.trim().to_string(),
        severity,
        audience: ids,
        starts_at,
        expires_at: input.expires_at,
        created_by: by.to_string(),
    })
}

/// Each active contact an urgent banner goes to at once, with where it goes; nobody for
/// other severities (they wait for the digests).
async fn audience(state: &Services, banner: &NewBanner) -> Result<Vec<(ContactRow, Vec<Target>)>, StoreError> {
    if banner.severity != crate::model::Severity::Urgent {
        return Ok(vec![]);
    }
    let contacts = list_active_contacts(&state.db).await?;
    let settings = list_settings(&state.db).await?;
    let chats = crate::actions::targets::targets_by_contact(&state.config, &state.db).await?;
    let chosen: std::collections::HashSet<&str> = banner.audience.iter().map(String::as_str).collect();
    Ok(contacts
        .into_iter()
        .filter(|c| chosen.is_empty() || chosen.contains(c.client_id.as_str()))
        .map(|c| {
            let s = settings.get(&c.id).cloned().unwrap_or_else(|| ContactSettings::defaults(&c.id));
            let targets =
                crate::actions::targets::targets_of(&s, chats.get(&c.id), crate::store::settings::Sending::Other);
            (c, targets)
        })
        .collect())
}

/// Whom an urgent banner reaches when it is posted: contacts, and the emails and chat
/// messages that go to them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Reach {
    pub contacts: usize,
    pub emails: usize,
    pub chats: usize,
}

pub async fn reach(state: &Services, banner: &NewBanner) -> Result<Reach, StoreError> {
    let mut r = Reach::default();
    for (_, targets) in audience(state, banner).await? {
        r.contacts += usize::from(!targets.is_empty());
        for t in targets {
            match t {
                Target::Email => r.emails += 1,
                Target::Chat(_) => r.chats += 1,
            }
        }
    }
    Ok(r)
}

/// An urgent banner as its chat message.
pub fn urgent_chat(row: &BannerRow, every_client: bool) -> ChatMessage {
    let mut m = ChatMessage::text(format!("URGENT: {}", row.title), row.body.lines().map(str::to_string).collect());
    m.public = every_client;
    m
}

/// Checks and stores a banner; an urgent one is queued to every contact of its audience,
/// once per contact and channel, in the same transaction.
pub async fn post(state: &Services, input: BannerInput, by: &str, now: DateTime<Utc>) -> Result<Posted, BannerError> {
    let mut unit = Unit::new(state);
    let posted = match post_in(state, &mut unit, input, by, now).await {
        Ok(p) => p,
        Err(e) => {
            unit.rollback().await?;
            return Err(e);
        }
    };
    unit.commit().await?;
    if posted.queued > 0 {
        state.wake_dispatch.notify_waiters();
    }
    Ok(posted)
}

/// [`post`] as part of a unit of the caller's (a chat command recorded as seen with it):
/// nothing is written until the unit commits.
pub async fn post_in(
    state: &Services,
    unit: &mut Unit,
    input: BannerInput,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Posted, BannerError> {
    let banner = check(state, &input, by, now).await?;
    let starts_at = banner.starts_at;
    // Compose before opening the transaction (SQLite holds one writer at a time).
    let audience = audience(state, &banner).await?;
    let tx = unit.tx().await?;
    if let Some(id) = crate::store::banners::same_post(tx, &banner, now).await? {
        return Err(BannerError::AlreadyPosted(id));
    }
    let id = insert_banner(tx, &banner, now).await?;
    let mut queued = 0;
    if !audience.is_empty() {
        let row = banner.row(id);
        let composer = Composer { config: &state.config, env: &state.templates, signer: &state.signer };
        for (c, targets) in &audience {
            for target in targets {
                let new = match &target {
                    Target::Email => {
                        let token = state.signer.new_reply_token();
                        // Its links last from when it goes (a banner that starts next week
                        // must not arrive with links that expired before it started).
                        let sent = Recipient { contact: c, token: &token, now: starts_at.max(now) };
                        let payload = match composer.compose_banner(&sent, &row) {
                            Ok(p) => p,
                            Err(e) => {
                                // cport's bug, not the contact's: said loudly; the rest still go.
                                tracing::error!(contact = %c.id, error = %e, "bug: a banner email could not be written");
                                continue;
                            }
                        };
                        payload.queued(
                            Some(&c.id),
                            MessageKind::Banner,
                            format!("banner:{id}:{}:email", c.id),
                            Some(token),
                            starts_at.max(now),
                        )
                    }
                    Target::Chat(link) => {
                        let message = urgent_chat(&row, banner.audience.is_empty());
                        message.queued(
                            Some(&c.id),
                            link.channel,
                            &link.chat_id,
                            MessageKind::Banner,
                            format!("banner:{id}:{}:{}", c.id, link.channel),
                            starts_at.max(now),
                        )
                    }
                };
                queued += usize::from(outbox::insert_message(tx, &new, now).await?.is_some());
            }
        }
    }
    tracing::info!(id, severity = %banner.severity, queued, by, "banner posted");
    Ok(Posted { id, queued })
}

/// What a retraction found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retraction {
    /// The banner shows no more.
    Done,
    /// It was retracted before, at this time (a second click, a page left open).
    Already(DateTime<Utc>),
    /// There is no banner of that id.
    Missing,
}

/// Retracts a banner: it no longer shows anywhere. Messages already sent stay sent.
pub async fn retract(state: &Services, id: i64, now: DateTime<Utc>) -> Result<Retraction, StoreError> {
    let mut tx = state.db.begin().await?;
    if crate::store::banners::retract_banner(&mut tx, id, now).await? {
        tx.commit().await?;
        return Ok(Retraction::Done);
    }
    tx.rollback().await?;
    Ok(match get_banner(&state.db, id).await {
        Ok(BannerRow { retracted_at: Some(at), .. }) => Retraction::Already(at),
        // Not retracted, yet not taken by the update: it went between the two reads.
        Ok(_) | Err(StoreError::NotFound) => Retraction::Missing,
        Err(e) => return Err(e),
    })
}

/// The banners showing for `client` at `now`, from the live banners kept in memory while the
/// banners' version is `version` (read with the request's session), else read again and kept.
/// A banner's start and expiry are checked at `now`, so a kept list stays right over time.
pub async fn showing(
    state: &Services,
    version: i64,
    client: &str,
    now: DateTime<Utc>,
) -> Result<Vec<BannerRow>, StoreError> {
    let live = match state.banners.get(version) {
        Some(live) => live,
        None => {
            let live = std::sync::Arc::new(list_live(&state.db, now).await?);
            state.banners.put(version, live.clone());
            live
        }
    };
    Ok(for_client(&live, client, now))
}

/// The banners a digest to `client` would lead with once `new` (not yet posted) starts: the
/// live ones showing then, and `new` among them in their order ([`BannerRow::shown_order`]).
/// For a preview.
pub async fn with_new(
    state: &Services,
    new: &NewBanner,
    client: &str,
    now: DateTime<Utc>,
) -> Result<Vec<BannerRow>, StoreError> {
    let row = new.row(0);
    let at = row.starts_at.max(now);
    let mut live = list_live(&state.db, at).await?;
    let place = live.iter().position(|b| b.row.shown_order() > row.shown_order()).unwrap_or(live.len());
    live.insert(place, LiveBanner { row, audience: new.audience.clone() });
    Ok(for_client(&live, client, at))
}

/// The banners of `live` that show for `client` at `now`: started, not expired, not
/// retracted, and addressed to every client or to this one; in `live`'s order (most severe
/// first).
pub fn for_client(live: &[LiveBanner], client: &str, now: DateTime<Utc>) -> Vec<BannerRow> {
    live.iter()
        .filter(|b| {
            b.row.state(now) == crate::model::BannerState::Active
                && (b.audience.is_empty() || b.audience.iter().any(|c| c == client))
        })
        .map(|b| b.row.clone())
        .collect()
}
