//! Staff signing in and out, and choosing a password through the single-use link that
//! `cport staff add` prints. The same argon2 hashing, limits and anonymous CSRF token as the
//! client portal's sign-in.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{COOKIE, Staff, page};
use crate::links::LinkFor;
use crate::portal::auth::{
    SignInTries, anon_form, anon_response, check_new_password, hash_password, matching_account, safe_next, with_cookie,
};
use crate::portal::session::Terms;
use crate::portal::{AnonForm, CsrfForm};
use crate::state::AppState;
use crate::store::{ledgers, staff};
use crate::web::HttpError;
use crate::web::Reply;

const MIN_PASSWORD: usize = 12;

/// The console cookie: HttpOnly, sent to `/staff` only, and never on a cross-site request.
fn staff_cookie(state: &AppState, value: &str, max_age_secs: i64) -> String {
    let secure = if state.config.secure_cookies() { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/staff; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}")
}

/// A console page shown before sign-in, with the anonymous CSRF token its form carries.
fn anon_page(state: &AppState, headers: &HeaderMap, name: &str, status: StatusCode, mut ctx: Value) -> Reply {
    let new_cookie = anon_form(state, headers, &mut ctx);
    Ok(anon_response(page(state, None, name, ctx)?, status, new_cookie))
}

/// Only console paths are targets after sign-in.
fn staff_next(next: Option<&str>) -> String {
    let n = safe_next(next);
    if n == "/staff" || n.starts_with("/staff/") || n.starts_with("/staff?") { n } else { "/staff".into() }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Reply {
    anon_page(&state, &headers, "login", StatusCode::OK, json!({"next": staff_next(q.next.as_deref())}))
}

/// The sign-in page again: the address and password do not match.
fn wrong_password(state: &AppState, headers: &HeaderMap, next: &str, email: &str) -> Reply {
    let error = "That email and password do not match.";
    anon_page(state, headers, "login", StatusCode::UNAUTHORIZED, json!({"next": next, "email": email, "error": error}))
}

/// `POST /staff/login`: email and password, limited per account and per address like clients'.
pub async fn login(State(state): State<AppState>, AnonForm { form, headers, addr }: AnonForm) -> Reply {
    let email = form.text("email").trim().to_lowercase();
    let next = staff_next(form.get("next"));
    let password = form.text("password");
    let lacks =
        crate::portal::auth::sign_in_lacks(&email, &password, "of your staff account", "ask for a new password link");
    if let Some(error) = lacks {
        let ctx = json!({"next": next, "error": error, "email": form.text("email")});
        return anon_page(&state, &headers, "login", StatusCode::UNPROCESSABLE_ENTITY, ctx);
    }
    let tries = SignInTries::count(&state, staff_account(&email), addr, "or ask for a new password link").await?;
    let account = staff::by_email(&state.db, &email).await?;
    let Some((id, hash)) = matching_account(&password, account.into_iter().collect()) else {
        tracing::info!(ip = %addr, "failed staff sign-in");
        return wrong_password(&state, &headers, &next, &email);
    };
    tries.succeeded(&state).await?;
    let t = Terms::lasting(state.config.portal.session_hours);
    // The password was changed, or the account removed, while it was checked: not signed in.
    if !staff::insert_session(&state.db, &t.row(), id, &hash).await? {
        return wrong_password(&state, &headers, &next, &email);
    }
    staff::audit(&state.db, &email, "signed in", &addr.to_string(), Utc::now()).await?;
    crate::actions::chase::read_ahead(&state);
    Ok(with_cookie(Redirect::to(&next).into_response(), &staff_cookie(&state, &t.token, t.seconds())))
}

/// `POST /staff/logout`.
pub async fn logout(State(state): State<AppState>, CsrfForm(staff, _): CsrfForm<Staff>) -> Reply {
    staff::revoke_session(&state.db, &staff.token_hash, Utc::now()).await?;
    Ok(with_cookie(Redirect::to("/staff/login").into_response(), &staff_cookie(&state, "", 0)))
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// The staff account a password link is for, when the link is good, unused and made since
/// the account's password was last set (an older link is spent).
async fn link_account(state: &AppState, token: &str) -> Result<Option<(i64, String)>, HttpError> {
    let Ok(claims) = state.signer.verify(token, Utc::now()) else {
        return Ok(None);
    };
    let Some(LinkFor::StaffPassword { staff_id }) = claims.meaning() else {
        return Ok(None);
    };
    if ledgers::nonce_used(&state.db, &claims.nonce).await? {
        return Ok(None);
    }
    Ok(staff::get(&state.db, staff_id)
        .await?
        .filter(|s| !s.password_set_at.is_some_and(|t| claims.made_by(t)))
        .map(|s| (s.id, claims.nonce)))
}

fn invalid_link(state: &AppState, headers: &HeaderMap) -> Reply {
    anon_page(state, headers, "password", StatusCode::BAD_REQUEST, json!({"invalid": true}))
}

/// `GET /staff/password?token=`: choose a password.
pub async fn password_form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<TokenQuery>) -> Reply {
    let token = q.token.unwrap_or_default();
    match link_account(&state, &token).await? {
        Some(_) => {
            anon_page(&state, &headers, "password", StatusCode::OK, json!({"token": token, "min": MIN_PASSWORD}))
        }
        None => invalid_link(&state, &headers),
    }
}

/// The sign-in limit's key for a staff address.
fn staff_account(email: &str) -> String {
    format!("staff:{}", email.trim().to_lowercase())
}

/// `POST /staff/password`: sets the password once per link, and ends the account's sessions.
pub async fn set_password(State(state): State<AppState>, AnonForm { form, headers, .. }: AnonForm) -> Reply {
    let token = form.text("token");
    let Some((id, nonce)) = link_account(&state, &token).await? else {
        return invalid_link(&state, &headers);
    };
    let (new, error) = match check_new_password(&form, MIN_PASSWORD) {
        Ok(new) => (new, None),
        Err(e) => (String::new(), Some(e)),
    };
    if let Some(error) = error {
        return anon_page(
            &state,
            &headers,
            "password",
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"token": token, "min": MIN_PASSWORD, "error": error}),
        );
    }
    let now = Utc::now();
    if !ledgers::use_nonce(&state.db, &nonce, now).await? {
        return invalid_link(&state, &headers);
    }
    staff::set_password(&state.db, id, &hash_password(&new)?, now).await?;
    if let Some(s) = staff::get(&state.db, id).await? {
        staff::audit(&state.db, &s.email, "set password", &s.email, now).await?;
        SignInTries::password_set(&state, &staff_account(&s.email)).await?;
    }
    anon_page(
        &state,
        &headers,
        "login",
        StatusCode::OK,
        json!({"next": "/staff", "note": "Your password is set. Sign in with it."}),
    )
}
