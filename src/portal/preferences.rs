//! The preferences page: digest schedule, time zone, quiet hours, alert modes per category,
//! email on or off, and linking or unlinking a chat.

use axum::extract::State;
use chrono::Utc;
use serde_json::{Value, json};

use super::pages::no_delegation;
use super::{CsrfForm, FormData, HttpError, Session, Shown, page_status, see_other};
use crate::actions::items::Category;
use crate::actions::targets::mode;
use crate::model::AlertMode;
use crate::state::AppState;
use crate::store::settings::{ContactSettings, get_settings};
use crate::web::Reply;

const SCHEDULES: &[(&str, &str)] = &[
    ("0 0 8 * * Mon-Fri", "Weekdays at 08:00"),
    ("0 0 8 * * *", "Every day at 08:00"),
    ("0 0 8 * * Mon", "Mondays at 08:00"),
    ("0 0 8,14 * * Mon-Fri", "Weekdays at 08:00 and 14:00"),
];

const ZONES: &[&str] = &[
    "Europe/London",
    "Europe/Dublin",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Amsterdam",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Dubai",
    "Asia/Singapore",
    "Australia/Sydney",
    "UTC",
];

/// The preferences page. `typed`: settings posted and refused, shown as typed, not as saved.
async fn prefs_page(
    state: &AppState,
    session: &Session,
    shown: Shown,
    code: Option<(String, Vec<String>)>,
    typed: Option<ContactSettings>,
) -> Reply {
    let Shown { note, error, status, .. } = shown;
    let c = &session.actor.contact;
    let chats: Vec<Value> = crate::store::chat::chats_of_contact(&state.db, &c.id)
        .await?
        .into_iter()
        .map(|l| json!({"channel": l.channel, "user": l.user_id}))
        .collect();
    let stored = get_settings(&state.db, &c.id).await?;
    // The email boxes as stored when the page was made, sent back with the form: a box left
    // as it was shown keeps what is stored by then (see `save_preferences`).
    let shown_boxes = json!({"email_enabled": stored.email_enabled, "email_digests": stored.email_digests,
                             "email_alerts": stored.email_alerts});
    let s = typed.unwrap_or(stored);
    let schedule = crate::actions::targets::clock(&state.config, c, &s).0.to_string();
    let modes: Vec<Value> = Category::ALL
        .iter()
        .filter(|cat| cat.visible_to(session.actor.role))
        .map(|cat| json!({"name": cat.name(), "heading": cat.heading(), "mode": mode(&state.config, &s, *cat)}))
        .collect();
    page_status(
        state,
        Some(session),
        "preferences",
        json!({
            "s": s, "timezone": crate::actions::targets::zone(&state.config, c, &s), "zones": ZONES,
            "schedule": schedule, "schedules": SCHEDULES.iter().map(|(e, l)| json!({"expr": e, "label": l})).collect::<Vec<_>>(),
            "custom": !SCHEDULES.iter().any(|(e, _)| *e == schedule), "modes": modes, "email": c.email,
            "note": note, "error": error, "chats": chats,
            "code": code.as_ref().map(|c| &c.0), "code_how": code.as_ref().map(|c| &c.1),
            "chat_on": crate::actions::chat_link::chat_on(&state.config), "stored": shown_boxes,
        }), status).await
}

/// `POST /preferences/chat-code`: a one-time code to link Telegram or Discord, shown on the
/// page (never put in a URL).
pub async fn chat_code(State(state): State<AppState>, CsrfForm(session, _): CsrfForm<Session>) -> Reply {
    no_delegation(&session)?;
    let code = crate::actions::chat_link::new_link_code(&state, &session.actor.contact.id, Utc::now()).await?;
    let how = crate::actions::chat_link::how_to_link(&state.config, &code);
    prefs_page(&state, &session, Shown::fresh(None), Some((code, how)), None).await
}

/// Unlinked already (a second click, another tab), or never this contact's: the same words,
/// which tell nothing of other people's chats.
const NOT_LINKED: &str = "That chat is not linked to you (any more): nothing to unlink.";

/// `POST /preferences/chat-unlink`: stops messages to a linked chat.
pub async fn chat_unlink(State(state): State<AppState>, CsrfForm(session, form): CsrfForm<Session>) -> Reply {
    no_delegation(&session)?;
    let given = form.get("channel").unwrap_or("");
    let Some(channel) = crate::model::Chat::parse(given) else {
        return Err(HttpError::Invalid(format!("channel: {} is not telegram or discord", crate::model::quoted(given))));
    };
    let user = form.get("user").unwrap_or("");
    let mine = crate::store::chat::chats_of_contact(&state.db, &session.actor.contact.id)
        .await?
        .into_iter()
        .any(|l| l.channel == channel && l.user_id == user);
    if !mine {
        return Ok(see_other(&state, &session.token_hash, "/preferences", NOT_LINKED));
    }
    let channel = crate::model::Channel::from(channel);
    if !crate::store::chat::unlink(&state.db, channel, user, Utc::now()).await? {
        // Another click unlinked it a moment before.
        return Ok(see_other(&state, &session.token_hash, "/preferences", NOT_LINKED));
    }
    Ok(see_other(&state, &session.token_hash, "/preferences", "The chat is unlinked."))
}

pub async fn preferences(State(state): State<AppState>, session: Session, shown: Shown) -> Reply {
    no_delegation(&session)?;
    prefs_page(&state, &session, shown, None, None).await
}

/// The settings as the form gives them, unchecked: saved once checked, or shown again as
/// typed when refused. A mode or box that cannot be read keeps its saved value.
fn as_typed(form: &FormData, mut s: ContactSettings) -> ContactSettings {
    let opt = |k: &str| Some(form.text(k)).filter(|v| !v.is_empty());
    s.timezone = opt("timezone");
    s.digest_schedule = match form.text("schedule").as_str() {
        "custom" => opt("custom_schedule"),
        other => Some(other.to_string()),
    };
    s.quiet_start = opt("quiet_start");
    s.quiet_end = opt("quiet_end");
    for (ticked, name) in [
        (&mut s.email_enabled, "email_enabled"),
        (&mut s.email_digests, "email_digests"),
        (&mut s.email_alerts, "email_alerts"),
    ] {
        if let Ok(b) = form.checkbox(name) {
            *ticked = b;
        }
    }
    for cat in Category::ALL {
        let m = opt(&format!("mode_{}", cat.name())).and_then(|m| AlertMode::parse(&m));
        match cat {
            Category::VisualApproval => s.mode_visual_approval = m.or(s.mode_visual_approval.take()),
            Category::DeliveryInstructions => s.mode_delivery_instructions = m.or(s.mode_delivery_instructions.take()),
            Category::ThirdPartyPo => s.mode_third_party_po = m.or(s.mode_third_party_po.take()),
            Category::AwaitingArt => s.mode_awaiting_art = m.or(s.mode_awaiting_art.take()),
        }
    }
    s
}

/// `POST /preferences`: channels, time zone, schedule, quiet hours, mode per category.
pub async fn save_preferences(State(state): State<AppState>, CsrfForm(session, form): CsrfForm<Session>) -> Reply {
    no_delegation(&session)?;
    let c = &session.actor.contact;
    let s = get_settings(&state.db, &c.id).await?;
    // What the form holds is read here (a box, a mode's name); what it may say is the
    // action's to check (`targets::check_preferences`).
    let read = || -> Result<[bool; 3], String> {
        let mut boxes = [false; 3];
        let now_stored = [s.email_enabled, s.email_digests, s.email_alerts];
        for ((ticked, name), stored) in
            boxes.iter_mut().zip(["email_enabled", "email_digests", "email_alerts"]).zip(now_stored)
        {
            *ticked = form.checkbox(name).map_err(|e| e.to_string())?;
            // Left as the page showed it, a box keeps what is stored now: an unsubscribe
            // link followed (or another device's save) since the page was opened is not
            // undone by saving another field.
            if form.get(&format!("shown_{name}")).is_some_and(|was| (was == "1") == *ticked) {
                *ticked = stored;
            }
        }
        for cat in Category::ALL {
            if let Some(m) = form.get(&format!("mode_{}", cat.name()))
                && AlertMode::parse(m).is_none()
            {
                return Err(format!(
                    "mode_{}: {} is not one of {}",
                    cat.name(),
                    crate::model::quoted(m),
                    AlertMode::names()
                ));
            }
        }
        Ok(boxes)
    };
    let saved = s.clone();
    let schedule_field = if form.text("schedule") == "custom" { "custom_schedule" } else { "schedule" };
    let checked = read().and_then(|[email_enabled, email_digests, email_alerts]| {
        let mut typed = as_typed(&form, saved.clone());
        (typed.email_enabled, typed.email_digests, typed.email_alerts) = (email_enabled, email_digests, email_alerts);
        crate::actions::targets::check_preferences(&state.config, c, typed, schedule_field).map_err(|e| e.to_string())
    });
    let checked = match checked {
        Ok(checked) => checked,
        // The form comes back as typed (nothing saved), so one field can be put right.
        Err(e) => return prefs_page(&state, &session, Shown::refused(e), None, Some(as_typed(&form, saved))).await,
    };
    crate::actions::targets::save_preferences(&state, c, &saved, checked, Utc::now()).await?;
    Ok(see_other(&state, &session.token_hash, "/preferences", "Preferences saved."))
}
