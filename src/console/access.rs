//! `/staff/access`: requests for a portal account from the sign-in page; mark one done (the
//! account was made in TOT's system) or refused, and the person is told by email.

use axum::extract::State;
use chrono::Utc;
use serde_json::json;

use super::{Staff, page};
use crate::actions::access::{Decided, Decision, decide};
use crate::portal::{CsrfForm, FormData, HoldsCsrf as _, Note, Params, see_other};
use crate::state::AppState;
use crate::store::access;
use crate::web::HttpError;
use crate::web::Reply;

/// The most requests one page lists.
const SHOWN: i64 = 200;

pub async fn list(State(state): State<AppState>, staff: Staff, Params(q): Params<FormData>) -> Reply {
    let note = Note::of(&q).verified(&state, staff.session_key());
    let rows = access::list(&state.db, SHOWN).await?;
    // Open requests come first, oldest first: more than are shown are said, not hidden.
    let open = access::count_open(&state.db).await?;
    let shown_open = rows.iter().filter(|r| r.status == crate::model::AccessStatus::Open).count();
    page(
        &state,
        Some(&staff),
        "access",
        json!({"requests": rows, "note": note, "open": open, "shown_open": shown_open}),
    )
}

/// `POST /staff/access`: `decision` (`done` or `refused`) for request `id`.
pub async fn act(State(state): State<AppState>, CsrfForm(staff, form): CsrfForm<Staff>) -> Reply {
    let id: i64 = form.text("id").parse().map_err(|_| HttpError::Invalid("id: not a request number".into()))?;
    let decision = Decision::parse(form.get("decision").unwrap_or(""))
        .ok_or_else(|| HttpError::Invalid("decision: `done` or `refused`".into()))?;
    let note = match decide(&state, id, decision, &staff.email, Utc::now()).await? {
        Decided::Now => {
            staff.record(&state, &format!("marked access request {}", decision.as_str()), &id.to_string()).await;
            format!("Request {id} marked {}; the person is told by email.", decision.as_str())
        }
        // A second click: the first did it all, and this one nothing more.
        Decided::Already(r) => format!(
            "Request {id} was marked {} already{}{}; nothing more was sent.",
            decision.as_str(),
            r.decided_by.map(|b| format!(" by {b}")).unwrap_or_default(),
            r.decided_at.map(|t| format!(" at {} UTC", t.format("%Y-%m-%d %H:%M"))).unwrap_or_default(),
        ),
    };
    Ok(see_other(&state, staff.session_key(), "/staff/access", &note))
}
