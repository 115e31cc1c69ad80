//! `GET /media/{path}`: TOT's pictures (visuals, proof-of-delivery signatures, receipts,
//! stock), each served only to a session that may see a record showing it, or through a
//! signed address that expires (emails). An id in a path opens nothing by itself.

use std::path::PathBuf;

use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use chrono::Utc;
use serde::Deserialize;

use super::session::Session;
use crate::state::AppState;
use crate::web::HttpError;
use crate::web::Reply;

#[derive(Debug, Default, Deserialize)]
pub struct Signed {
    exp: Option<String>,
    sig: Option<String>,
}

/// The file a `/media` path names, under `data_dir/media` (see [`crate::model::media_file`]).
pub fn file_of(state: &AppState, path: &str) -> Option<PathBuf> {
    crate::model::media_file(&state.config.data_dir.join("media"), path)
}

pub async fn serve(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    Query(signed): Query<Signed>,
    request: Request,
) -> Reply {
    let path = format!("/media/{rest}");
    let by_signature = match (&signed.exp, &signed.sig) {
        (Some(exp), Some(sig)) => state.signer.verify_media(&path, exp, sig, Utc::now()).is_ok(),
        _ => false,
    };
    // The brand's logo (`branding.logo_url`) may live here too: it is shown on the sign-in
    // page and in every email, to anyone.
    let public = state.config.branding.logo_url == path;
    if !by_signature && !public {
        let (mut parts, _) = request.into_parts();
        // No session, or one that may not see any record showing the picture: the same
        // "not found" either way, so a guessed path says nothing about what exists.
        // A store that cannot be read is a 500, as on every page, not a quiet "not found".
        let session = match Session::from_request_parts(&mut parts, &state).await {
            Ok(s) => s,
            Err(HttpError::LoginRequired { .. }) => return Err(HttpError::NotFound),
            Err(e) => return Err(e),
        };
        if !crate::actions::media::may_open(&state.db, &session.actor, &path).await? {
            return Err(HttpError::NotFound);
        }
    }
    let file = file_of(&state, &path).ok_or(HttpError::NotFound)?;
    let bytes = match tokio::fs::read(&file).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(HttpError::NotFound),
        Err(e) => {
            tracing::error!(error = %e, file = %crate::model::path_shown(&file), "a picture could not be read");
            return Err(HttpError::NotFound);
        }
    };
    let mime = mime_guess::from_path(&file).first_or_octet_stream();
    let mut response = (StatusCode::OK, bytes).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    // A picture may be an SVG: it must never run script on the portal's origin.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; style-src 'unsafe-inline'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Private to the browser that asked: no shared cache may keep it.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
    Ok(response)
}
