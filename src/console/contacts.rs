//! `/staff/contacts`: find a client; its contacts with role, channels (email working or
//! suspended after bounces, chats linked), last digest and open items; resume a suspended
//! email, issue a chat link code, send a sign-in link.

use std::collections::HashMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Staff, page};
use crate::actions::items::current;
use crate::actions::mail::Queued;
use crate::portal::{CsrfForm, FormData, HoldsCsrf as _, Note, Params, see_other};
use crate::state::AppState;
use crate::store::contacts::{ContactRow, active_contact, list_client_contacts};
use crate::store::{chat, console, settings};
use crate::web::HttpError;
use crate::web::Reply;

pub async fn contacts(State(state): State<AppState>, staff: Staff, Params(q): Params<FormData>) -> Reply {
    let note = Note::of(&q).verified(&state, staff.session_key());
    let find = q.search("find")?;
    let find = find.as_str();
    let Some(client) = q.id("client")? else {
        let clients = console::find_clients(&state.db, find, 100).await?;
        return page(&state, Some(&staff), "contacts", json!({"find": find, "clients": clients, "note": note}));
    };
    let client = client.as_str();
    let name = super::client_named(&state, client).await?;
    let rows = list_client_contacts(&state.db, client).await?;
    let ids: Vec<&str> = rows.iter().map(|c| c.id.as_str()).collect();
    let last_digest: HashMap<String, DateTime<Utc>> =
        console::last_digests(&state.db, &ids).await?.into_iter().map(|s| (s.contact_id, s.at)).collect();
    let mut out = vec![];
    for c in &rows {
        let s = settings::get_settings(&state.db, &c.id).await?;
        let chats: Vec<_> = chat::chats_of_contact(&state.db, &c.id)
            .await?
            .into_iter()
            .map(|l| json!({"channel": l.channel, "chat": l.chat_id}))
            .collect();
        let items = current(&state, c).await?;
        out.push(json!({
            "id": c.id, "name": c.name, "email": c.email, "role": c.role,
            "email_enabled": s.email_enabled, "suspended_at": s.email_suspended_at, "suspended_why": s.email_suspended_reason,
            "soft_bounces": s.soft_bounces, "chats": chats, "last_digest": last_digest.get(&c.id),
            "items": items.len(),
        }));
    }
    page(
        &state,
        Some(&staff),
        "contacts",
        json!({"client": client, "client_name": name, "contacts": out, "note": note,
               "chat_on": crate::actions::chat_link::chat_on(&state.config)}),
    )
}

/// The note when the same email went to a contact a moment ago (a second click, or two staff
/// at once): nothing more is sent.
fn already(what: &str, c: &ContactRow, at: DateTime<Utc>) -> String {
    format!("{what} went to {} at {} UTC, a moment ago; no second one was sent.", c.email, at.format("%H:%M:%S"))
}

/// `POST /staff/contacts`: `action` is `resume`, `chat-code` or `sign-in-link` for `contact`.
pub async fn act(State(state): State<AppState>, CsrfForm(staff, form): CsrfForm<Staff>) -> Reply {
    let id = form.text("contact");
    if id.is_empty() {
        return Err(HttpError::Invalid("contact: missing: the contact's id".into()));
    }
    let Some(c) = active_contact(&state.db, &id).await? else {
        return Err(HttpError::Invalid(format!("contact: no active contact {}", crate::model::quoted(&id))));
    };
    let back = format!(
        "/staff/contacts?client={}",
        percent_encoding::utf8_percent_encode(&c.client_id, percent_encoding::NON_ALPHANUMERIC)
    );
    let now = Utc::now();
    // An email to an address suspended after bounces would only go dead: nothing is sent, and
    // the page says why (as *Remind now* does).
    let suspended = |why: &str| {
        format!(
            "Nothing was sent: email to {} is suspended ({}). Resume it once the address works.",
            c.name,
            crate::model::shown(why, 200)
        )
    };
    let note = match form.get("action") {
        Some("resume") => match crate::actions::unsubscribe::resume_email(&state, &c.id, now).await? {
            true => {
                staff.record(&state, "resumed email", &c.id).await;
                format!("Email to {} is resumed.", c.name)
            }
            false => format!("Email to {} was not suspended: nothing to resume.", c.name),
        },
        Some("chat-code") => {
            // The code goes to the contact's own address, never to the page or its address:
            // staff who saw it could tie their own chat to the contact.
            match crate::actions::mail::send_chat_code(&state, &c, now).await? {
                Queued::Yes => {
                    staff.record(&state, "issued chat link code", &c.id).await;
                    format!("Chat link code sent to {} at {}; it works once, for a short time.", c.name, c.email)
                }
                Queued::Already(at) => already("A chat link code", &c, at),
                Queued::Suspended(why) => suspended(&why),
                Queued::Unwritable => {
                    return Err(HttpError::unexpected("the chat link code email could not be written (see the log)"));
                }
            }
        }
        Some("sign-in-link") => match crate::actions::mail::send_login_link(&state, &c, now).await? {
            Queued::Yes => {
                staff.record(&state, "sent sign-in link", &c.id).await;
                format!("A sign-in link is on its way to {}.", c.email)
            }
            Queued::Already(at) => already("A sign-in link", &c, at),
            Queued::Suspended(why) => suspended(&why),
            Queued::Unwritable => {
                return Err(HttpError::unexpected("the sign-in link email could not be written (see the log)"));
            }
        },
        None | Some("") => return Err(HttpError::Invalid("action: missing: resume, chat-code or sign-in-link".into())),
        Some(other) => {
            return Err(HttpError::Invalid(format!(
                "action: {} is not resume, chat-code or sign-in-link",
                crate::model::quoted(other)
            )));
        }
    };
    Ok(see_other(&state, staff.session_key(), &back, &note))
}
