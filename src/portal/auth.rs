//! Signing in and out: signed links, password login (argon2id) with rate limits, password
//! change and reset by a single-use emailed link, and sign-in links by email.
//! Over 500 lines on purpose: every way in shares the limits, the password rule and the
//! session start kept here, and the console's sign-in uses them too; apart, one security
//! rule would be spread over several files.

use std::net::IpAddr;
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::session::{self, ANON_CSRF_COOKIE, COOKIE, Session, address_key, cookie, random_token};
use super::{AnonForm, CsrfForm, FormData, HttpError, page};
use crate::links::{LinkClaims, LinkFor};
use crate::state::AppState;
use crate::store::contacts::{active_contact, get_contact};
use crate::store::sessions::{contacts_by_email, get_password_hash, replace_password, revoke_session};
use crate::store::{StoreError, ledgers, limits};
use crate::web::Reply;

const MIN_PASSWORD: usize = 10;

/// Only same-site paths may be redirect targets.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if not_a_next(n).is_none() => n.to_string(),
        _ => "/".to_string(),
    }
}

/// Why `path` may not be where a sign-in leads (none: it may), worded for the one who typed it.
pub(crate) fn not_a_next(path: &str) -> Option<&'static str> {
    if path.len() > 2000 {
        Some("is longer than 2000 characters")
    } else if !path.starts_with('/') || path.starts_with("//") {
        Some("must be a path on the portal, starting with one /")
    } else if path.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace()) {
        // Browsers drop tabs and newlines and read `\` as `/`: "/\t/evil.example" would
        // leave the site, so any of them makes the target home.
        Some("may not hold spaces, backslashes or control characters")
    } else if climbs(path) {
        Some("may not hold a . or .. step")
    } else if !percent_encoding::percent_decode_str(path).decode_utf8().is_ok_and(|p| !p.chars().any(char::is_control))
    {
        // Every route refuses a NUL or bytes that are not UTF-8 (`%00`, `%FF`) before a page is
        // looked for, and no page's address holds another control character: a link to one
        // would open an error.
        Some("may not hold a percent-encoded control character or bytes that are not UTF-8")
    } else {
        None
    }
}

/// Whether a path holds a `.` or `..` segment (percent-encoded or not), which the browser
/// resolves: `/staff/../l/x` passes for a console path and opens `/l/x`.
fn climbs(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.split('/')
        .any(|segment| matches!(&*percent_encoding::percent_decode_str(segment).decode_utf8_lossy(), "." | ".."))
}

pub fn hash_password(pw: &str) -> Result<String, HttpError> {
    use rand::RngCore;
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| HttpError::unexpected(e.to_string()))?;
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HttpError::unexpected(e.to_string()))
}

pub(crate) fn verify_password(pw: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the account does not exist, so both cases take as long.
pub(crate) fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| hash_password("not a real password at all").unwrap_or_default())
}

/// The first account whose password hash `password` matches. When no account has a hash to
/// try, a dummy one is tried instead, so an unknown address takes as long as a known one.
pub(crate) fn matching_account<T>(password: &str, accounts: Vec<(T, Option<String>)>) -> Option<(T, String)> {
    let mut tried = false;
    for (id, hash) in accounts {
        // A hash that cannot be read fails at once; it does not count as the effort spent.
        if let Some(hash) = hash.filter(|h| PasswordHash::new(h).is_ok()) {
            tried = true;
            if verify_password(password, &hash) {
                return Some((id, hash));
            }
        }
    }
    if !tried {
        let _ = verify_password(password, dummy_hash());
    }
    None
}

/// The anonymous CSRF token (double-submit cookie) for forms shown before sign-in.
pub(crate) fn anon_csrf(headers: &HeaderMap) -> (String, Option<String>) {
    match cookie(headers, ANON_CSRF_COOKIE) {
        Some(t) if t.len() == 64 => (t, None),
        _ => {
            let t = random_token();
            (t.clone(), Some(t))
        }
    }
}

pub(crate) fn check_anon_csrf(headers: &HeaderMap, form: &FormData) -> Result<(), HttpError> {
    match (cookie(headers, ANON_CSRF_COOKIE), form.get("csrf")) {
        (Some(c), Some(f)) if !c.is_empty() && c == f => Ok(()),
        _ => Err(HttpError::Csrf),
    }
}

async fn anon_page(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    status: StatusCode,
    mut ctx: serde_json::Value,
) -> Reply {
    let new_cookie = anon_form(state, headers, &mut ctx);
    Ok(anon_response(page(state, None, name, ctx).await?, status, new_cookie))
}

/// Puts the anonymous CSRF token into the context of a form shown before sign-in; gives the
/// cookie to set when the visitor has none yet.
pub(crate) fn anon_form(state: &AppState, headers: &HeaderMap, ctx: &mut serde_json::Value) -> Option<String> {
    let (csrf, new_cookie) = anon_csrf(headers);
    ctx["csrf"] = json!(csrf);
    new_cookie.map(|c| session::set_cookie(state, ANON_CSRF_COOKIE, &c, 86400))
}

/// The rendered page of [`anon_form`] with its status and, when new, the token's cookie.
pub(crate) fn anon_response(mut resp: Response, status: StatusCode, new_cookie: Option<String>) -> Response {
    *resp.status_mut() = status;
    match new_cookie {
        Some(c) => with_cookie(resp, &c),
        None => resp,
    }
}

pub(crate) fn with_cookie(mut resp: Response, cookie: &str) -> Response {
    if let Ok(h) = cookie.parse() {
        resp.headers_mut().append(header::SET_COOKIE, h);
    }
    resp
}

async fn invalid_link(state: &AppState, headers: &HeaderMap) -> Reply {
    anon_page(state, headers, "link_invalid", StatusCode::BAD_REQUEST, json!({})).await
}

/// `GET /l/{token}`: a signed link. It signs the visitor in and sends them on; it never
/// acts. Every way a link can be bad gets the same page.
pub async fn signed_link(State(state): State<AppState>, Path(token): Path<String>, headers: HeaderMap) -> Reply {
    let now = Utc::now();
    let Ok(claims) = state.signer.verify(&token, now) else {
        return invalid_link(&state, &headers).await;
    };
    match open_link(&state, &claims).await? {
        Some((cookie, target)) => Ok(with_cookie(Redirect::to(&target).into_response(), &cookie)),
        None if matches!(claims.meaning(), Some(LinkFor::SetPassword { .. })) => {
            Ok(Redirect::to(&format!("/password/reset?token={token}")).into_response())
        }
        None => invalid_link(&state, &headers).await,
    }
}

/// The active contact a link was made for, while it is still the same contact at the same
/// address: a contact TOT removed and sent again under the same id is a new record (perhaps
/// another person, at another client), and a contact TOT gave another address is no longer
/// read at the old one; a link made before either is not theirs.
pub(crate) async fn link_holder(
    state: &AppState,
    claims: &LinkClaims,
    contact_id: &str,
) -> Result<Option<crate::store::contacts::ContactRow>, HttpError> {
    Ok(active_contact(&state.db, contact_id).await?.filter(|c| {
        !c.created_at.is_some_and(|t| claims.made_before(t)) && !c.email_set_at.is_some_and(|t| claims.made_by(t))
    }))
}

/// Whether a link was made before `contact_id`'s password was last set (or in the same
/// millisecond): a sign-in or password link that old is spent.
async fn made_before_password(state: &AppState, claims: &LinkClaims, contact_id: &str) -> Result<bool, HttpError> {
    let set_at = crate::store::sessions::password_set_at(&state.db, contact_id).await?;
    Ok(set_at.is_some_and(|t| claims.made_by(t)))
}

async fn open_link(state: &AppState, claims: &LinkClaims) -> Result<Option<(String, String)>, HttpError> {
    match claims.meaning() {
        Some(LinkFor::Open { contact_id, path }) => {
            let Some(c) = link_holder(state, claims, &contact_id).await? else {
                return Ok(None);
            };
            // Setting a password ends every session of the contact's ("other devices were
            // signed out"): a sign-in link made before it (in a forwarded digest, a shared
            // browser's history) is no way back in.
            if made_before_password(state, claims, &c.id).await? {
                return Ok(None);
            }
            let cookie = session::start(state, &c.id, None).await?;
            Ok(Some((cookie, safe_next(Some(&path)))))
        }
        Some(LinkFor::Delegation { id, path }) => {
            let d = match crate::store::visuals::get_delegation(&state.db, id).await {
                Ok(d) => d,
                Err(StoreError::NotFound) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            if d.used_at.is_some() || path != format!("/visuals/{}", crate::model::segment(&d.visual_id)) {
                return Ok(None);
            }
            // The same rule as every request of the session it opens.
            let Some(giver) = active_contact(&state.db, &d.contact_id).await? else {
                return Ok(None);
            };
            if !crate::actions::visuals::delegation_holds(giver.role, &d, Utc::now()) {
                return Ok(None);
            }
            // The link lends the right to decide, so it opens nothing once the visual is
            // decided (by the giver, TOT, or anyone else) or gone.
            match crate::store::visuals::get_visual(&state.db, &d.client_id, &d.visual_id).await {
                Ok(v) if v.status == crate::model::VisualStatus::AwaitingApproval => {}
                Ok(_) | Err(StoreError::NotFound) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            let cookie = session::start(state, &d.contact_id, Some(d.id)).await?;
            Ok(Some((cookie, format!("/visuals/{}", crate::model::segment(&d.visual_id)))))
        }
        // A password link opens the password page (see `signed_link`), not a session.
        Some(LinkFor::SetPassword { .. } | LinkFor::StaffPassword { .. } | LinkFor::Unsubscribe { .. }) | None => {
            Ok(None)
        }
    }
}

/// Too many failed tries lately: when to try again, and `or` what else to do.
fn too_many(secs: u64, or: &str) -> HttpError {
    HttpError::TooMany(format!("Too many failed sign-ins. Try again in {} minute(s), {or}.", secs.div_ceil(60)))
}

/// What a sign-in form lacks, said by its field, before any account is looked for (and no try
/// is counted: nothing was checked). `whose` names the address asked for; `or` is the way in
/// without a password.
pub(crate) fn sign_in_lacks(email: &str, password: &str, whose: &str, or: &str) -> Option<String> {
    if email.is_empty() {
        Some(format!("email: give the address {whose}."))
    } else if email.len() > 254 {
        Some("email: longer than any address (254 characters at most).".into())
    } else if password.is_empty() {
        Some(format!("password: give your password, or {or}."))
    } else {
        None
    }
}

/// A sign-in try, counted before the password is checked, against the account's and the
/// address's limits (in the store, so every process together keeps one limit).
pub(crate) struct SignInTries {
    account: String,
    address: String,
}

impl SignInTries {
    /// Counts the try; too many lately is an error that says when to try again, and `or`
    /// what else to do.
    pub(crate) async fn count(
        state: &AppState,
        account: String,
        addr: IpAddr,
        or: &str,
    ) -> Result<SignInTries, HttpError> {
        let address = address_key(addr);
        let p = &state.config.portal;
        let now_ms = Utc::now().timestamp_millis();
        let by_account = limits::attempt(&state.db, &account, p.login_attempts_per_account, now_ms).await?;
        let by_address = limits::attempt(&state.db, &address, p.login_attempts_per_address, now_ms).await?;
        if let Some(secs) = by_account.or(by_address) {
            return Err(too_many(secs, or));
        }
        Ok(SignInTries { account, address })
    }

    /// Counts a try of the account's password made by someone signed in (changing it), against
    /// the account's limit alone: the same error as at sign-in once there were too many.
    pub(crate) async fn count_account(state: &AppState, account: &str, or: &str) -> Result<(), HttpError> {
        let p = &state.config.portal;
        let now_ms = Utc::now().timestamp_millis();
        match limits::attempt(&state.db, account, p.login_attempts_per_account, now_ms).await? {
            Some(secs) => Err(too_many(secs, or)),
            None => Ok(()),
        }
    }

    /// A new password was set (from a reset link, or by its owner): the account's count
    /// starts again, so the new password signs in at once, as the lockout's message said
    /// it would.
    pub(crate) async fn password_set(state: &AppState, account: &str) -> Result<(), HttpError> {
        limits::clear(&state.db, account).await?;
        Ok(())
    }

    /// The password was right: the account's count starts again and the address gets its
    /// try back.
    pub(crate) async fn succeeded(self, state: &AppState) -> Result<(), HttpError> {
        limits::clear(&state.db, &self.account).await?;
        limits::refund(&state.db, &self.address).await?;
        Ok(())
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    note: Option<String>,
    ns: Option<String>,
}

pub async fn login_form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Reply {
    anon_page(
        &state,
        &headers,
        "login",
        StatusCode::OK,
        json!({"next": safe_next(q.next.as_deref()), "note": super::Note { note: q.note, ns: q.ns }.verified(&state, super::ANYONE)}),
    )
    .await
}

/// The sign-in page again: the address and password do not match.
async fn wrong_password(state: &AppState, headers: &HeaderMap, next: &str, email: &str) -> Reply {
    let error = "That email and password do not match. Try again, or ask for a sign-in link.";
    anon_page(state, headers, "login", StatusCode::UNAUTHORIZED, json!({"next": next, "email": email, "error": error}))
        .await
}

/// The sign-in limit's key for a portal address, trimmed and lower-case as sign-in reads it.
fn portal_account(email: &str) -> String {
    format!("acct:{}", email.trim().to_lowercase())
}

/// `POST /login`: email and password.
pub async fn login(State(state): State<AppState>, AnonForm { form, headers, addr }: AnonForm) -> Reply {
    // Compared by the store with both sides lowered there (see `contacts_by_email`).
    let email = form.text("email").trim().to_string();
    let next = safe_next(form.get("next"));
    let password = form.text("password");
    if let Some(error) = sign_in_lacks(&email, &password, "you sign in with", "ask for a sign-in link by email") {
        // What was typed comes back (the address, never the password).
        let ctx = json!({"next": next, "error": error, "email": form.text("email")});
        return anon_page(&state, &headers, "login", StatusCode::UNPROCESSABLE_ENTITY, ctx).await;
    }
    let tries = SignInTries::count(&state, portal_account(&email), addr, "or ask for a sign-in link by email").await?;
    let mut accounts = vec![];
    for id in contacts_by_email(&state.db, &email).await? {
        let hash = get_password_hash(&state.db, &id).await?;
        accounts.push((id, hash));
    }
    let Some((contact_id, hash)) = matching_account(&password, accounts) else {
        tracing::info!(ip = %addr, "failed portal sign-in");
        return wrong_password(&state, &headers, &next, &email).await;
    };
    tries.succeeded(&state).await?;
    // The password was changed (or the contact removed) while it was checked: not signed in.
    let Some(cookie) = session::start_with_password(&state, &contact_id, &hash).await? else {
        return wrong_password(&state, &headers, &next, &email).await;
    };
    Ok(with_cookie(Redirect::to(&next).into_response(), &cookie))
}

/// Counts a request from this address against `kind`'s limit (sign-in links, resets).
async fn limit_address(state: &AppState, kind: &str, addr: IpAddr) -> Result<(), HttpError> {
    let key = format!("{kind}:{}", address_key(addr));
    let limit = state.config.portal.login_attempts_per_address;
    if limits::attempt(&state.db, &key, limit, Utc::now().timestamp_millis()).await?.is_some() {
        return Err(HttpError::TooMany("Too many requests from here. Try again later.".into()));
    }
    Ok(())
}

/// The address a "send me a link" form was given: one that cannot be an address is refused by
/// its field (saying so tells nothing of which addresses are known).
fn typed_address(form: &FormData) -> Result<String, HttpError> {
    crate::actions::typed_email("email", &form.text("email")).map(str::to_string).map_err(HttpError::from)
}

/// What a "send me a link" form asks for: a sign-in link (the sign-in page's form) or a
/// link to choose a new password (the reset page's).
#[derive(Debug, Clone, Copy)]
enum LinkAsked {
    SignIn,
    Reset,
}

/// Answers a "send me a link" form. Each portal contact at the typed address is sent the
/// link (a person may work for several clients; five at most), and the answer is the same
/// whether the address is known or not. An address that cannot be one shows the form again,
/// the field named and the address as typed.
async fn send_asked_link(state: &AppState, AnonForm { form, headers, addr }: AnonForm, asked: LinkAsked) -> Reply {
    let (limit, page) = match asked {
        LinkAsked::SignIn => ("link", "login"),
        LinkAsked::Reset => ("reset", "reset"),
    };
    limit_address(state, limit, addr).await?;
    let email = match typed_address(&form) {
        Ok(e) => e,
        Err(e) => {
            let (error, typed) = (e.to_string(), form.text("email"));
            let ctx = match asked {
                LinkAsked::SignIn => json!({"next": "/", "error": error, "link_email": typed}),
                LinkAsked::Reset => json!({"stage": "request", "error": error, "email": typed}),
            };
            return anon_page(state, &headers, page, StatusCode::UNPROCESSABLE_ENTITY, ctx).await;
        }
    };
    let now = Utc::now();
    for id in contacts_by_email(&state.db, &email).await?.iter().take(5) {
        let c = get_contact(&state.db, id).await?;
        match asked {
            LinkAsked::SignIn => crate::actions::mail::send_login_link(state, &c, now).await?,
            LinkAsked::Reset => crate::actions::mail::send_reset_link(state, &c, now).await?,
        };
    }
    let sent = match asked {
        LinkAsked::SignIn => "If that address belongs to a portal user, a sign-in link is on its way.",
        LinkAsked::Reset => {
            "If that address belongs to a portal user, a link to choose a new password is on its way. It works once, for a short time."
        }
    };
    message(state, "Check your email", sent).await
}

/// `POST /login/link`: email me a sign-in link. The answer never says whether the address
/// is known.
pub async fn request_link(State(state): State<AppState>, form: AnonForm) -> Reply {
    send_asked_link(&state, form, LinkAsked::SignIn).await
}

/// `POST /access`: someone without an account asks for one. The answer is the same whoever
/// asks, known address or not.
pub async fn request_access(State(state): State<AppState>, AnonForm { form, headers, addr }: AnonForm) -> Reply {
    limit_address(&state, "access", addr).await?;
    let input = crate::actions::access::AccessInput {
        name: form.text("name"),
        email: form.text("email"),
        company: form.text("company"),
        note: form.text("note"),
    };
    match crate::actions::access::request(&state, &input, Utc::now()).await {
        Ok(_) => {
            message(&state, "Request sent", "Thank you. Your request is with our team; you will hear from us by email.")
                .await
        }
        Err(e @ crate::actions::ActionError::Invalid { .. }) => {
            anon_page(
                &state,
                &headers,
                "login",
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"next": "/", "access": {"name": input.name, "email": input.email, "company": input.company,
                       "note": input.note, "error": e.to_string()}}),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn message(state: &AppState, title: &str, text: &str) -> Reply {
    page(state, None, "message", json!({"title": title, "message": text})).await
}

/// `POST /logout`.
pub async fn logout(State(state): State<AppState>, CsrfForm(session, _): CsrfForm<Session>) -> Reply {
    revoke_session(&state.db, &session.token_hash, Utc::now()).await?;
    let clear = super::session::set_cookie(&state, COOKIE, "", 0);
    Ok(with_cookie(
        Redirect::to(&super::with_note(&state, super::ANYONE, "/login", "You are signed out.")).into_response(),
        &clear,
    ))
}

pub async fn password_form(State(state): State<AppState>, session: Session) -> Reply {
    if session.actor.delegation.is_some() {
        return Err(HttpError::NotFound);
    }
    let has = get_password_hash(&state.db, &session.actor.contact.id).await?.is_some();
    page(&state, Some(&session), "password", json!({"has_password": has, "min": MIN_PASSWORD})).await
}

/// The new password a form chose (`new_password`, repeated in `confirm_password`), or what is
/// wrong with it, naming the field. Clients and staff choose passwords by the same rule.
pub(crate) fn check_new_password(form: &FormData, min: usize) -> Result<String, String> {
    let new = form.text("new_password");
    if new.chars().count() < min {
        return Err(format!("new_password: at least {min} characters."));
    }
    if crate::model::blank(&new) {
        return Err("new_password: spaces alone are no password.".into());
    }
    // What a keyboard types: a control character (a tab, an escape) is lost or changed by
    // the next form or password manager it passes through, and the account with it.
    if let Some(c) = new.chars().find(|c| c.is_control()) {
        return Err(format!(
            "new_password: holds the control character U+{:04X}, which a keyboard does not type.",
            c as u32
        ));
    }
    if new.chars().count() > 200 {
        return Err("new_password: 200 characters at most.".into());
    }
    match form.get("confirm_password") {
        None | Some("") => return Err("confirm_password: give the new password again.".into()),
        Some(again) if again != new => return Err("confirm_password: the two passwords differ.".into()),
        Some(_) => {}
    }
    Ok(new)
}

/// `POST /password`: change the password (the current one is needed when there is one).
pub async fn change_password(State(state): State<AppState>, CsrfForm(session, form): CsrfForm<Session>) -> Reply {
    if session.actor.delegation.is_some() {
        return Err(HttpError::NotFound);
    }
    let id = session.actor.contact.id.clone();
    let existing = get_password_hash(&state.db, &id).await?;
    let account = portal_account(&session.actor.contact.email);
    // The current password asked for here is guessed no more often than at sign-in (by
    // someone at a device left signed in): each try counts, a right one clears the count.
    // A count of its own, so that a lockout at sign-in (the owner then signs in by an emailed
    // link to change the password) does not stop the change, nor the guesses here sign-in.
    let changing = format!("change:{account}");
    if existing.is_some() {
        SignInTries::count_account(&state, &changing, "or ask for a password-reset link by email").await?;
    }
    let error = match (&existing, check_new_password(&form, MIN_PASSWORD)) {
        (Some(h), _) if !verify_password(&form.text("current_password"), h) => {
            Some("current_password: that is not your password now.".to_string())
        }
        (_, Err(e)) => {
            // The current password was right: its count starts again.
            SignInTries::password_set(&state, &changing).await?;
            Some(e)
        }
        (_, Ok(new)) => {
            let now = Utc::now();
            replace_password(&state.db, &id, &hash_password(&new)?, now).await?;
            SignInTries::password_set(&state, &account).await?;
            SignInTries::password_set(&state, &changing).await?;
            let cookie = session::start(&state, &id, None).await?;
            return Ok(with_cookie(
                super::see_other(
                    &state,
                    super::ANYONE,
                    "/",
                    "Your password is changed. Other devices were signed out, and links in earlier emails no longer sign you in.",
                ),
                &cookie,
            ));
        }
    };
    let mut resp = page(
        &state,
        Some(&session),
        "password",
        json!({"has_password": existing.is_some(), "min": MIN_PASSWORD, "error": error}),
    )
    .await?;
    *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(resp)
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// A password link's claims while it may still be used: signed, not expired, for a contact
/// who is still active (a third party revoked since their invitation went out, or a contact
/// TOT deactivated, finds the link dead, as every other link of theirs), and made since the
/// password last changed (by another link, or on the portal): an older link is spent.
async fn reset_claims(state: &AppState, token: &str) -> Result<Option<LinkClaims>, HttpError> {
    let Some(claims) = state
        .signer
        .verify(token, Utc::now())
        .ok()
        .filter(|c| matches!(c.meaning(), Some(LinkFor::SetPassword { .. })))
    else {
        return Ok(None);
    };
    if link_holder(state, &claims, &claims.contact_id).await?.is_none() {
        return Ok(None);
    }
    Ok((!made_before_password(state, &claims, &claims.contact_id).await?).then_some(claims))
}

/// `GET /password/reset`: ask for a link, or (with `?token=`) choose the new password.
pub async fn reset_form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<TokenQuery>) -> Reply {
    match q.token {
        None => anon_page(&state, &headers, "reset", StatusCode::OK, json!({"stage": "request"})).await,
        Some(t) => match reset_claims(&state, &t).await? {
            Some(c) if !ledgers::nonce_used(&state.db, &c.nonce).await? => {
                anon_page(
                    &state,
                    &headers,
                    "reset",
                    StatusCode::OK,
                    json!({"stage": "choose", "token": t, "min": MIN_PASSWORD}),
                )
                .await
            }
            _ => invalid_link(&state, &headers).await,
        },
    }
}

/// `POST /password/reset`: either send a reset link (email field) or set the new password
/// (token field). The link works once.
pub async fn reset(State(state): State<AppState>, AnonForm { form, headers, addr }: AnonForm) -> Reply {
    let now = Utc::now();
    if let Some(token) = form.get("token") {
        let Some(claims) = reset_claims(&state, token).await? else {
            return invalid_link(&state, &headers).await;
        };
        let new = match check_new_password(&form, MIN_PASSWORD) {
            Ok(n) => n,
            Err(e) => {
                return anon_page(
                    &state,
                    &headers,
                    "reset",
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"stage": "choose", "token": token, "min": MIN_PASSWORD, "error": e}),
                )
                .await;
            }
        };
        if !ledgers::use_nonce(&state.db, &claims.nonce, now).await? {
            return invalid_link(&state, &headers).await;
        }
        replace_password(&state.db, &claims.contact_id, &hash_password(&new)?, now).await?;
        let email = get_contact(&state.db, &claims.contact_id).await?.email;
        SignInTries::password_set(&state, &portal_account(&email)).await?;
        return Ok(super::see_other(&state, super::ANYONE, "/login", "Your new password is set. Sign in with it."));
    }
    send_asked_link(&state, AnonForm { form, headers, addr }, LinkAsked::Reset).await
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_same_site_paths_are_redirect_targets() {
        for (next, want) in [
            (Some("/visuals/V-1?x=1"), "/visuals/V-1?x=1"),
            (Some("//evil.example"), "/"),
            (Some("/\t/evil.example"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("https://evil.example"), "/"),
            (Some("/ok path"), "/"),
            // Dot segments, which the browser resolves out of the folder they seem to be in.
            (Some("/staff/../l/x"), "/"),
            (Some("/staff/%2e%2E/l/x"), "/"),
            (Some("/staff/./chase"), "/"),
            (Some("/staff/chase?back=../x"), "/staff/chase?back=../x"),
            (Some("/files/v1..2"), "/files/v1..2"),
            (None, "/"),
        ] {
            assert_eq!(safe_next(next), want, "{next:?}");
        }
        // A target too long for a Location header a proxy would pass goes home.
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
    }
}
