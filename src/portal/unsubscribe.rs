//! `/unsubscribe/{token}`: a mail client's one-click unsubscribe (RFC 8058). A POST, with no
//! session and no form token (the signed address is the authority), turns that kind of email
//! off; a GET only shows a page with the button, so a link scanner changes nothing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::json;

use super::page_status;
use crate::actions::unsubscribe::{stopped_already, unsubscribe};
use crate::links::LinkFor;
use crate::model::Stoppable;
use crate::state::AppState;
use crate::store::contacts::ContactRow;
use crate::web::{HttpError, Reply};

/// The contact and the kind of email a good token stops, while the link is still theirs
/// (see [`super::auth::link_holder`]).
async fn holder_of(state: &AppState, token: &str) -> Result<Option<(ContactRow, Stoppable)>, HttpError> {
    let Some(claims) = state.signer.verify(token, Utc::now()).ok() else {
        return Ok(None);
    };
    let Some(LinkFor::Unsubscribe { contact_id, what }) = claims.meaning() else {
        return Ok(None);
    };
    Ok(super::auth::link_holder(state, &claims, &contact_id).await?.map(|c| (c, what)))
}

fn described(what: Stoppable) -> &'static str {
    match what {
        Stoppable::Alert => "alert emails (something new needs you)",
        Stoppable::Digest => "summary emails (digests)",
    }
}

/// The page: `stage` is `confirm`, `done` or `already`; none means the link does not work.
async fn shown(state: &AppState, stage: Option<(&str, Stoppable, &str)>) -> Reply {
    let (ctx, status) = match stage {
        Some((stage, what, email)) => {
            (json!({"stage": stage, "what": described(what), "email": email}), StatusCode::OK)
        }
        None => (json!({"invalid": true}), StatusCode::BAD_REQUEST),
    };
    page_status(state, None, "unsubscribe", ctx, status).await
}

/// `GET /unsubscribe/{token}`: what the button will stop, or that it is stopped already;
/// nothing changes.
pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Reply {
    match holder_of(&state, &token).await? {
        Some((c, what)) => {
            let stage = if stopped_already(&state, &c, what).await? { "already" } else { "confirm" };
            shown(&state, Some((stage, what, &c.email))).await
        }
        None => shown(&state, None).await,
    }
}

/// `POST /unsubscribe/{token}`: stops that kind of email; sent again, says it was done before.
pub async fn stop(State(state): State<AppState>, Path(token): Path<String>) -> Reply {
    let Some((c, what)) = holder_of(&state, &token).await? else {
        return shown(&state, None).await;
    };
    let stage = if unsubscribe(&state, &c, what, Utc::now()).await? { "done" } else { "already" };
    shown(&state, Some((stage, what, &c.email))).await
}
