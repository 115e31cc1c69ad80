//! Portal sessions: a random token in an HttpOnly cookie (only its hash is stored), a CSRF
//! token per session checked on every POST, and login rate limits.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use chrono::Utc;
use rand::RngCore;

use crate::actions::{Actor, Delegated};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::sessions::{NewSession, SignedIn, get_signed_in, insert_password_session, insert_session};
use crate::store::visuals::get_delegation;
use crate::web::HttpError;

pub const COOKIE: &str = "cport_session";
pub const ANON_CSRF_COOKIE: &str = "cport_csrf";

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn hash_token(token: &str) -> String {
    crate::links::sha256_hex(token)
}

/// The value of one cookie from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value with the flags every cport cookie carries.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> String {
    let secure = if state.config.secure_cookies() { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

/// Starts a session; returns the cookie to set.
pub async fn start(state: &AppState, contact_id: &str, delegation_id: Option<i64>) -> Result<String, StoreError> {
    let p = &state.config.portal;
    let t = Terms::lasting(if delegation_id.is_some() { p.delegation_hours } else { p.session_hours });
    insert_session(&state.db, &t.row(), contact_id, delegation_id).await?;
    Ok(t.cookie(state))
}

/// Starts a session for a contact whose password was checked against `hash`; `None` (no
/// session) when the password changed in the meantime or the contact has gone.
pub async fn start_with_password(state: &AppState, contact_id: &str, hash: &str) -> Result<Option<String>, StoreError> {
    let t = Terms::lasting(state.config.portal.session_hours);
    let started = insert_password_session(&state.db, &t.row(), contact_id, hash).await?;
    Ok(started.then(|| t.cookie(state)))
}

/// A new session's token, CSRF token and lifetime, for a client (a delegate's lasts as long
/// as the delegation) or a staff member.
pub struct Terms {
    pub token: String,
    token_hash: String,
    csrf: String,
    now: chrono::DateTime<Utc>,
    expires: chrono::DateTime<Utc>,
    hours: u32,
}

impl Terms {
    pub fn lasting(hours: u32) -> Terms {
        let now = Utc::now();
        let expires = now + chrono::Duration::hours(i64::from(hours));
        let token = random_token();
        Terms { token_hash: hash_token(&token), token, csrf: random_token(), now, expires, hours }
    }

    /// The session as the store writes it.
    pub fn row(&self) -> NewSession<'_> {
        NewSession { token_hash: &self.token_hash, csrf: &self.csrf, now: self.now, expires_at: self.expires }
    }

    /// How long the cookie lasts.
    pub fn seconds(&self) -> i64 {
        i64::from(self.hours) * 3600
    }

    fn cookie(&self, state: &AppState) -> String {
        set_cookie(state, COOKIE, &self.token, self.seconds())
    }
}

/// A signed-in visitor. Handlers that take it require a session; without one the visitor is
/// sent to the login page.
#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub csrf: String,
    pub actor: Actor,
    /// The banners' version when the session was read (which kept banners are current).
    pub banners_version: i64,
}

impl Session {
    /// Checks a CSRF token given outside a form body (a multipart upload's field).
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), HttpError> {
        super::check_csrf(given, &self.csrf)
    }
}

impl super::HoldsCsrf for Session {
    fn csrf(&self) -> &str {
        &self.csrf
    }
    fn session_key(&self) -> &str {
        &self.token_hash
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let next = crate::web::come_back_to(parts, "/");
        let login = || HttpError::LoginRequired { next: next.clone() };
        let token = cookie(&parts.headers, COOKIE).ok_or_else(login)?;
        let token_hash = hash_token(&token);
        let now = Utc::now();
        let SignedIn { session: row, contact, banners_version } =
            get_signed_in(&state.db, &token_hash, now).await?.ok_or_else(login)?;
        let mut actor = Actor::new(contact, crate::model::Channel::Portal);
        if let Some(id) = row.delegation_id {
            // A delegate's session ends with the delegation, and with its visual (TOT deleted
            // it, and the delegation with it): sign-in is asked, never "not found" on every page.
            let d = match get_delegation(&state.db, id).await {
                Ok(d) => d,
                Err(crate::store::StoreError::NotFound) => return Err(login()),
                Err(e) => return Err(e.into()),
            };
            if !crate::actions::visuals::delegation_holds(actor.role, &d, now) {
                return Err(login());
            }
            actor.delegation = Some(Delegated { id, visual_id: d.visual_id, name: d.name, email: d.email });
        }
        Ok(Session { token_hash, csrf: row.csrf, actor, banners_version })
    }
}

/// The key of an address's sign-in count: an IPv4 address, or an IPv6 address's /64 (one
/// household or host is given a whole /64, and could try each of its addresses in turn).
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        v4 => format!("ip:{v4}"),
    }
}
