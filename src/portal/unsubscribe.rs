//! `/unsubscribe/{token}`: a mail client's one-click unsubscribe (RFC 8058). A POST, with no
//! session and no form token (the signed address is the authority), turns that kind of email
//! off; a GET only shows a page with the button, so a link scanner changes nothing.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::json;

use super::{HttpError, page_status};
use crate::actions::ActionError;
use crate::actions::unsubscribe::{kind_of, unsubscribe};
use crate::links::LinkFor;
use crate::state::AppState;

/// The contact and the kind of email a good token stops.
fn claims_of(state: &AppState, token: &str) -> Option<(String, String)> {
    match state.signer.verify(token, Utc::now()).ok()?.meaning()? {
        LinkFor::Unsubscribe { contact_id, what } if kind_of(&what).is_some() => Some((contact_id, what)),
        _ => None,
    }
}

fn described(what: &str) -> &'static str {
    if what == "alert" {
        "alert emails (something new needs you)"
    } else {
        "summary emails (digests)"
    }
}

async fn invalid(state: &AppState, headers: &HeaderMap) -> Result<Response, HttpError> {
    let _ = headers;
    page_status(
        state,
        None,
        "unsubscribe",
        json!({"invalid": true}),
        StatusCode::BAD_REQUEST,
    )
    .await
}

/// `GET /unsubscribe/{token}`: what the button will stop; nothing changes.
pub async fn confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let Some((contact_id, what)) = claims_of(&state, &token) else {
        return invalid(&state, &headers).await;
    };
    let c = match crate::store::contacts::get_contact(&state.db, &contact_id).await {
        Ok(c) if c.active => c,
        _ => return invalid(&state, &headers).await,
    };
    page_status(
        &state,
        None,
        "unsubscribe",
        json!({"stage": "confirm", "token": token, "what": described(&what), "email": c.email}),
        StatusCode::OK,
    )
    .await
}

/// `POST /unsubscribe/{token}`: stops that kind of email (again is fine).
pub async fn stop(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let Some((contact_id, what)) = claims_of(&state, &token) else {
        return invalid(&state, &headers).await;
    };
    match unsubscribe(&state, &contact_id, &what, Utc::now()).await {
        Ok(c) => {
            page_status(
                &state,
                None,
                "unsubscribe",
                json!({"stage": "done", "what": described(&what), "email": c.email}),
                StatusCode::OK,
            )
            .await
        }
        Err(ActionError::NotFound(_)) => invalid(&state, &headers).await,
        Err(e) => Err(e.into()),
    }
}
