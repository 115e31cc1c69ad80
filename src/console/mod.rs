//! The staff console at `/staff`: TOT's own pages. Staff accounts and sessions are apart from
//! clients' (their own table and cookie, scoped to `/staff`): a client session never opens a
//! staff page, which answers 404 to it, and a staff session opens no client page. Pages work
//! without JavaScript, a GET never changes anything, every POST carries the session's CSRF
//! token, and every action is recorded with who took it.

pub mod access;
pub mod auth;
pub mod banners;
pub mod chase;
pub mod contacts;
pub mod held;
pub mod outbox;
pub mod overview;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::Value;

use crate::portal::session::{cookie, hash_token};
use crate::state::AppState;
use crate::store::staff;
use crate::web::HttpError;
use crate::web::Reply;

/// The console session's cookie, sent only to `/staff` paths.
pub const COOKIE: &str = "cport_staff";

/// A signed-in staff member. Handlers that take it require a console session: without one, a
/// visitor with a client session gets 404 (the console is not theirs to know about) and anyone
/// else the staff sign-in form.
#[derive(Debug, Clone)]
pub struct Staff {
    pub id: i64,
    pub email: String,
    pub csrf: String,
    token_hash: String,
}

/// The name of the client a query's `client` names, or a refusal naming the field: a
/// mistyped id is said as one, not shown as a page that is not there.
async fn client_named(state: &AppState, id: &str) -> Result<String, HttpError> {
    crate::store::console::client_name(&state.db, id)
        .await?
        .ok_or_else(|| HttpError::BadRequest(format!("client: no client {}", crate::model::quoted(id))))
}

impl crate::portal::HoldsCsrf for Staff {
    fn csrf(&self) -> &str {
        &self.csrf
    }
    fn session_key(&self) -> &str {
        &self.token_hash
    }
}

impl Staff {
    /// Records an action this staff member took. The action is done by then: a trail that
    /// cannot be written is said in the log (which then holds the record), not answered as a
    /// failure that would have staff do it twice.
    pub async fn record(&self, state: &AppState, action: &str, subject: &str) {
        if let Err(e) = staff::audit(&state.db, &self.email, action, subject, Utc::now()).await {
            tracing::error!(staff = %self.email, action, subject, error = %e, "a staff action done but not in the audit trail");
            return;
        }
        tracing::info!(staff = %self.email, action, subject, "staff action");
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let now = Utc::now();
        if let Some(token) = cookie(&parts.headers, COOKIE)
            && let Some(s) = staff::get_session(&state.db, &hash_token(&token), now).await?
        {
            return Ok(Staff { id: s.staff_id, email: s.email, csrf: s.csrf, token_hash: hash_token(&token) });
        }
        // A signed-in client finds nothing here; anyone else is asked to sign in as staff.
        if let Some(token) = cookie(&parts.headers, crate::portal::session::COOKIE)
            && crate::store::sessions::get_signed_in(&state.db, &hash_token(&token), now).await?.is_some()
        {
            return Err(HttpError::NotFound);
        }
        let next = crate::web::come_back_to(parts, "/staff");
        Err(HttpError::StaffLoginRequired { next })
    }
}

/// A message's text (or its headers) with the tokens of its signed links and addresses taken
/// out: what a client was sent, without letting staff sign in as the client (a portal link),
/// choose their password (a reset link), decide for them (a delegation link, a reply to the
/// `reply+` address), unsubscribe them, report a bounce in their name, or tie their own chat
/// to the client's contact (a chat link code).
pub fn without_link_tokens(text: &str) -> String {
    // An email's HTML writes each `/` of a link as `&#x2f;` (the templates' escaping), and a
    // link rewritten by a mail filter (Microsoft's Safe Links) carries the original one
    // percent-encoded in its query: the markers are looked for in each spelling, in any case.
    // A chat linking code follows its label or the command it is sent with
    // (`actions::chat_link`).
    const MARKERS: [&str; 17] = [
        "/l/",
        "token=",
        "/unsubscribe/",
        "reply+",
        "bounce+",
        "&#x2f;l&#x2f;",
        "&#x2f;unsubscribe&#x2f;",
        crate::actions::chat_link::CODE_LABEL,
        "/start ",
        "&#x2f;start ",
        "/link ",
        "&#x2f;link ",
        "%2fl%2f",
        "%2funsubscribe%2f",
        "token%3d",
        "reply%2b",
        "bounce%2b",
    ];
    let markers: Vec<String> = MARKERS.iter().map(|m| m.to_ascii_lowercase()).collect();
    // The same length as `text`, byte for byte: a place found in it is the place in `text`.
    let lower = text.to_ascii_lowercase();
    let token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '%');
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    loop {
        let next = markers.iter().filter_map(|m| lower[from..].find(m.as_str()).map(|at| (from + at, m.len()))).min();
        let Some((at, len)) = next else {
            out.push_str(&text[from..]);
            return out;
        };
        out.push_str(&text[from..at + len]);
        from = at + len;
        let end = text[from..].find(|c: char| !token_char(c)).unwrap_or(text.len() - from);
        if end > 0 {
            out.push_str("(link token hidden)");
        }
        from += end;
    }
}

/// [`without_link_tokens`], and every other word shaped like a token hidden too: a link a
/// reply quotes may be cut over two lines (an older mail program wraps it) or written
/// without its `/l/`, and the part of it after the marker would sign in as the client. A
/// signed link is base64 of both cases, a reply token letters and digits of one case: a run
/// of 16 or more with three capitals and three small letters at least, or of 20 or more with
/// letters and digits and no dot (a host name has dots), is hidden. Words and host names are
/// kept.
pub fn without_tokens(text: &str) -> String {
    let marked = without_link_tokens(text);
    let run_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let token_shaped = |run: &str| {
        let count = |f: fn(&char) -> bool| run.chars().filter(f).count();
        let both_cases = count(char::is_ascii_uppercase) >= 3 && count(char::is_ascii_lowercase) >= 3;
        let letters_and_digits =
            count(char::is_ascii_alphabetic) > 0 && count(char::is_ascii_digit) > 0 && !run.contains('.');
        // A header's name (`List-Unsubscribe-Post`, `Content-Transfer-Encoding`): capitalised
        // words joined by dashes, as no token is.
        let header_name = run.split('-').all(|w| {
            let mut c = w.chars();
            c.next().is_some_and(|f| f.is_ascii_uppercase()) && c.all(|x| x.is_ascii_lowercase())
        });
        !header_name && ((run.len() >= 16 && both_cases) || (run.len() >= 20 && letters_and_digits))
    };
    let mut out = String::with_capacity(marked.len());
    let mut rest = marked.as_str();
    while let Some(start) = rest.find(run_char) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c: char| !run_char(c)).unwrap_or(rest.len());
        let run = &rest[..end];
        out.push_str(if token_shaped(run) { "(token hidden)" } else { run });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Renders a console page (`templates/staff/{name}.html.j2`) with who is signed in.
pub fn page(state: &AppState, staff: Option<&Staff>, name: &str, mut ctx: Value) -> Reply {
    ctx["brand"] = serde_json::to_value(crate::messages::Brand::of(&state.config.branding)).unwrap_or(Value::Null);
    if let Some(s) = staff {
        ctx["me"] = serde_json::json!({"email": s.email});
        ctx["csrf"] = serde_json::json!(s.csrf);
    }
    crate::web::html(&state.templates, &format!("staff/{name}.html.j2"), &ctx)
}

/// The console's routes; their errors are shown as pages (see `app::router`).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/staff", get(overview::overview))
        .route("/staff/login", get(auth::login_form).post(auth::login))
        .route("/staff/logout", post(auth::logout))
        .route("/staff/password", get(auth::password_form).post(auth::set_password))
        .route("/staff/chase", get(chase::chase))
        .route("/staff/chase.csv", get(chase::chase_csv))
        .route("/staff/chase/remind", post(chase::remind))
        .route("/staff/outbox", get(outbox::list))
        .route("/staff/outbox/{id}", get(outbox::message).post(outbox::act))
        .route("/staff/outbox/{id}/body", get(outbox::body))
        .route("/staff/banners", get(banners::list).post(banners::post))
        .route(
            "/staff/banners/preview",
            crate::web::answered_with_a_page::<Staff, _, _, _>("/staff/banners", banners::preview),
        )
        .route("/staff/banners/{id}/retract", post(banners::retract))
        .route("/staff/contacts", get(contacts::contacts).post(contacts::act))
        .route("/staff/held", get(held::held).post(held::act))
        .route("/staff/access", get(access::list).post(access::act))
        // Any other path under /staff is as unknown as the rest of the console to a stranger.
        .route("/staff/{*rest}", get(overview::unknown))
        .layer(axum::middleware::from_fn_with_state(state.clone(), strangers_see_no_methods))
        .layer(axum::middleware::map_response(crate::web::mark_console))
}

/// A method a console address does not take is said (405) to staff alone: anyone else gets
/// what the address itself would answer them (a signed-in client 404, a stranger the sign-in
/// form), so that which addresses exist is not told outside the console.
async fn strangers_see_no_methods(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (uri, headers) = (req.uri().clone(), req.headers().clone());
    let resp = next.run(req).await;
    if resp.status() != axum::http::StatusCode::METHOD_NOT_ALLOWED {
        return resp;
    }
    let (mut parts, ()) = axum::http::Request::get(uri).body(()).unwrap_or_default().into_parts();
    parts.headers = headers;
    match Staff::from_request_parts(&mut parts, &state).await {
        Ok(_) => resp,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::{without_link_tokens, without_tokens};

    #[test]
    fn link_tokens_are_hidden_and_the_rest_kept() {
        let text = "Open <a href=\"https://p.example/l/bx8v.rWn-_q\">it</a> or https://p.example/password/reset?token=MR8v.y2&x=1 \
                    and /media/v.svg?exp=1&sig=abc";
        assert_eq!(
            without_link_tokens(text),
            "Open <a href=\"https://p.example/l/(link token hidden)\">it</a> or \
             https://p.example/password/reset?token=(link token hidden)&x=1 and /media/v.svg?exp=1&sig=abc"
        );
        assert_eq!(without_link_tokens("ends with /l/"), "ends with /l/");
        let headers =
            "Reply-To: <reply+Ab3.x-Y@reply.tot.example>\r\nList-Unsubscribe: <https://p.example/unsubscribe/Zz9.q>";
        assert_eq!(
            without_link_tokens(headers),
            "Reply-To: <reply+(link token hidden)@reply.tot.example>\r\n\
             List-Unsubscribe: <https://p.example/unsubscribe/(link token hidden)>"
        );
        assert_eq!(
            without_link_tokens("mailto:reply+T0k.en@reply.tot.example?subject=APPROVE"),
            "mailto:reply+(link token hidden)@reply.tot.example?subject=APPROVE"
        );
        // A link a mail filter rewrote, the original percent-encoded in its query.
        let safe = "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fp.example%2Fl%2Fbx8v.rWn&data=05";
        assert_eq!(
            without_link_tokens(safe),
            "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fp.example%2Fl%2F(link token hidden)&data=05"
        );
        assert_eq!(without_link_tokens("REPLY%2bT0k@x"), "REPLY%2b(link token hidden)@x");
        assert_eq!(without_link_tokens("Ωmega /L/Tok ü"), "Ωmega /L/(link token hidden) ü");
    }

    #[test]
    fn a_token_cut_over_two_lines_or_bare_is_hidden() {
        let quoted = "> Review: http://p.example/l/bx8vdmlzdWFscy9WLTEwMDEfUC0xMDEfMTc5NzYx\n\
                      > MjM4NR9YLXl1VzZkd1E2MmUfMTc5NjQwMjc4NTc1NA.dlH9tFC8ofwZq-3_xY\n";
        let shown = without_tokens(quoted);
        assert_eq!(shown, "> Review: http://p.example/l/(link token hidden)\n> (token hidden)\n", "{shown}");
        assert_eq!(without_tokens("/%6C/bx8vdmlzdWFscy9WLTEwMDE.dlH9tFC8of"), "/%6C/(token hidden)");
        assert_eq!(without_tokens("code K7QX2M9RTB4WZ3YHJ5NA here"), "code (token hidden) here");
        // Words, host names, message ids and dates stay as they are.
        let plain = "Thanks, the Internationalisation team at eur01.safelinks.protection.outlook.com \
                     <CAGmail001@mail.gmail.com> 2026-12-04T10:00:00Z";
        assert_eq!(without_tokens(plain), plain);
        let headers = "List-Unsubscribe-Post: List-Unsubscribe=One-Click\nContent-Transfer-Encoding: base64";
        assert_eq!(without_tokens(headers), headers);
    }
}
