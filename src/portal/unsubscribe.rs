//! `/unsubscribe/{token}`: a mail client's one-click unsubscribe (RFC 8058). A POST, with no
//! session and no form token (the signed address is the authority), turns that kind of email
//! off; a GET only shows a page with the button, so a link scanner changes nothing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::json;

use super::page_status;
use crate::actions::ActionError;
use crate::actions::unsubscribe::{kind_of, unsubscribe};
use crate::links::LinkFor;
use crate::state::AppState;
use crate::web::Reply;

/// The contact and the kind of email a good token stops.
fn claims_of(state: &AppState, token: &str) -> Option<(String, String)> {
    match state.signer.verify(token, Utc::now()).ok()?.meaning()? {
        LinkFor::Unsubscribe { contact_id, what } if kind_of(&what).is_some() => Some((contact_id, what)),
        _ => None,
    }
}

fn described(what: &str) -> &'static str {
    if what == "alert" { "alert emails (something new needs you)" } else { "summary emails (digests)" }
}

/// The page: `stage` is `confirm` or `done`; none means the link does not work.
async fn shown(state: &AppState, stage: Option<(&str, &str, &str)>) -> Reply {
    let (ctx, status) = match stage {
        Some((stage, what, email)) => {
            (json!({"stage": stage, "what": described(what), "email": email}), StatusCode::OK)
        }
        None => (json!({"invalid": true}), StatusCode::BAD_REQUEST),
    };
    page_status(state, None, "unsubscribe", ctx, status).await
}

/// `GET /unsubscribe/{token}`: what the button will stop; nothing changes.
pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Reply {
    let Some((contact_id, what)) = claims_of(&state, &token) else {
        return shown(&state, None).await;
    };
    match crate::store::contacts::active_contact(&state.db, &contact_id).await? {
        Some(c) => shown(&state, Some(("confirm", &what, &c.email))).await,
        None => shown(&state, None).await,
    }
}

/// `POST /unsubscribe/{token}`: stops that kind of email (again is fine).
pub async fn stop(State(state): State<AppState>, Path(token): Path<String>) -> Reply {
    let Some((contact_id, what)) = claims_of(&state, &token) else {
        return shown(&state, None).await;
    };
    match unsubscribe(&state, &contact_id, &what, Utc::now()).await {
        Ok(c) => shown(&state, Some(("done", &what, &c.email))).await,
        Err(ActionError::NotFound(_)) => shown(&state, None).await,
        Err(e) => Err(e.into()),
    }
}
