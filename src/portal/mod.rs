//! The mini-portal: server-rendered pages (axum + minijinja) reached through signed links or a
//! password login. Pages work without JavaScript; a GET never changes anything, every action
//! is a POST carrying the session's CSRF token, and every action calls `crate::actions`.
//!
//! Just over 500 lines: what every page shares stays here, each part small (reading a form
//! and its fields, rendering a page, a form sent once, the router); the pages are in the
//! modules below.

pub mod artwork;
pub mod auth;
pub mod media;
pub mod pages;
pub mod preferences;
pub mod session;
pub mod unsubscribe;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::{Value, json};

use crate::actions::banners::showing;
use crate::actions::commands::Command;
use crate::state::AppState;
use crate::web::Reply;

pub mod enquiry;
pub mod orders;
pub use session::Session;

pub use crate::web::HttpError;

/// A parsed `application/x-www-form-urlencoded` body.
pub struct FormData(pub Vec<(String, String)>);

/// The fields a posted form may give more than once: the visuals ticked on the list of
/// visuals.
const REPEATABLE: &[&str] = &["visual"];

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(form_urlencoded::parse(body).into_owned().collect())
    }
    /// A query string (`RawQuery`), read the same way; none is empty.
    pub fn query(raw: Option<String>) -> FormData {
        FormData::parse(raw.unwrap_or_default().as_bytes())
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").to_string()
    }
    /// The fields as typed, by name, to show a refused form again: never its CSRF token nor
    /// a password (a page is no place to echo one).
    pub fn typed(&self) -> Value {
        let kept = self.0.iter().filter(|(k, _)| k != "csrf" && !k.contains("password"));
        Value::Object(kept.map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
    }
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
    /// A checkbox: ticked when its value (`1`, or `on` from a box written without one) is
    /// sent, not ticked when nothing is. Any other value is refused by name rather than read
    /// either way (`terms=0` is no agreement, and no refusal either).
    pub fn checkbox(&self, name: &str) -> Result<bool, crate::actions::ActionError> {
        match self.get(name).unwrap_or("") {
            "" => Ok(false),
            "1" | "on" => Ok(true),
            other => Err(crate::actions::ActionError::invalid(
                name,
                format!("{} is not a box's value: 1 when ticked, nothing when not", crate::model::quoted(other)),
            )),
        }
    }
    /// Text to search or filter by, trimmed: one line of at most [`crate::model::SEARCH_MAX`]
    /// characters, without the characters no typed text holds (a control character would be
    /// echoed into the page).
    pub fn search(&self, name: &str) -> Result<String, HttpError> {
        crate::actions::optional_text(
            name,
            self.get(name).unwrap_or(""),
            crate::model::Lines::One,
            crate::model::SEARCH_MAX,
        )
        .map(str::to_string)
        .map_err(|e| HttpError::BadRequest(e.to_string()))
    }
    /// An id to find or filter by, trimmed, checked as TOT's ids are (see
    /// [`crate::model::check_id`]); none or empty: `None`.
    pub fn id(&self, name: &str) -> Result<Option<String>, HttpError> {
        let Some(v) = self.get(name).map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let mut errs = Vec::new();
        crate::model::check_id(name, v, &mut errs);
        match errs.first() {
            None => Ok(Some(v.to_string())),
            Some(e) => Err(HttpError::BadRequest(e.to_string())),
        }
    }
    /// `page` of a paged list: a number from 1 (none or empty: the first). Any other is
    /// refused by name, for every list of the portal and the console alike.
    pub fn page(&self) -> Result<i64, HttpError> {
        const LAST: i64 = 100_000;
        match self.get("page").filter(|p| !p.is_empty()) {
            None => Ok(1),
            Some(p) => p.parse().ok().filter(|p| (1..=LAST).contains(p)).ok_or_else(|| {
                HttpError::BadRequest(format!("page: {} is not a page number (1 to {LAST})", crate::model::quoted(p)))
            }),
        }
    }
    /// A posted form. A name or value that cannot be read as text is refused, naming the
    /// field (see [`crate::web::unreadable_pair`]), and so is a field given twice, but for
    /// those a form may repeat ([`REPEATABLE`]): which of the two would count?
    pub fn posted(body: &[u8]) -> Result<FormData, HttpError> {
        let refused = |message: String| HttpError::Rejected { status: StatusCode::BAD_REQUEST, message };
        if let Some((field, wrong)) = body.split(|b| *b == b'&').find_map(crate::web::unreadable_pair) {
            return Err(refused(format!("{field}: {wrong}")));
        }
        let form = FormData::parse(body);
        match crate::web::repeated_name(form.0.iter().map(|(k, _)| k.as_str()), REPEATABLE) {
            Some(message) => Err(HttpError::Invalid(message)),
            None => Ok(form),
        }
    }
    /// The form a signed-in page posted, when its `csrf` field is the session's token.
    pub fn with_csrf(body: &[u8], session_csrf: &str) -> Result<FormData, HttpError> {
        let form = FormData::posted(body)?;
        check_csrf(form.get("csrf"), session_csrf)?;
        Ok(form)
    }
}

/// What a page reads from its query string (read as a form), refusing by name what it cannot
/// use.
pub trait FromParams: Sized {
    fn from_params(f: FormData) -> Result<Self, HttpError>;
}

/// The query string as the form it is.
impl FromParams for FormData {
    fn from_params(f: FormData) -> Result<Self, HttpError> {
        Ok(f)
    }
}

/// A page's query string read into `T`: `Params(q): Params<ListQuery>`. (Repeated keys and
/// text that is not UTF-8 were refused before any handler, by `web::refuse_unreadable`.)
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: FromParams + Send> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, HttpError> {
        T::from_params(FormData::query(parts.uri.query().map(str::to_string))).map(Params)
    }
}

/// A whole number typed for `field` (a quantity), trimmed; refused by name as too large, or
/// as no whole number, when it cannot be read.
pub fn whole_number(field: &str, v: &str) -> Result<i64, crate::actions::ActionError> {
    let v = v.trim();
    // Digits, after a minus at most, as the API takes numbers: Rust's parser also takes `+1`.
    if v.starts_with('+') {
        let why = format!("{} is not a whole number written in digits", crate::model::quoted(v));
        return Err(crate::actions::ActionError::invalid(field, why));
    }
    v.parse().map_err(|e: std::num::ParseIntError| {
        use std::num::IntErrorKind::{NegOverflow, PosOverflow};
        let why = match e.kind() {
            PosOverflow | NegOverflow => "is too large",
            _ => "is not a whole number",
        };
        crate::actions::ActionError::invalid(field, format!("{} {why}", crate::model::quoted(v)))
    })
}

/// A record id cport made (a basket's) as a form or a path gives it: digits alone, so `+1`
/// or ` 1` names no basket rather than basket 1.
pub fn digits_id(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// A signed-in session's CSRF check, for clients and staff alike (constant time).
pub fn check_csrf(given: Option<&str>, session_csrf: &str) -> Result<(), HttpError> {
    match given {
        Some(given) if !given.is_empty() && crate::links::constant_time_eq(given, session_csrf) => Ok(()),
        _ => Err(HttpError::Csrf),
    }
}

/// Whoever a form is posted by, holding the CSRF token the form must carry: a client session
/// or a staff one.
pub trait HoldsCsrf {
    fn csrf(&self) -> &str;
    /// What names the session to the notes written for it ([`with_note`]): its token's hash.
    fn session_key(&self) -> &str;
}

/// A form posted by a signed-in client or staff member: `CsrfForm(session, form)`. The form's
/// `csrf` field is checked against the session's as it is read, so no handler can forget to.
pub struct CsrfForm<S>(pub S, pub FormData);

impl<S> axum::extract::FromRequest<AppState> for CsrfForm<S>
where
    S: axum::extract::FromRequestParts<AppState, Rejection = HttpError> + HoldsCsrf + Send,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let who = S::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
        // A body of another type is said to be one, not read as a form whose token is missing.
        let kind = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = kind.split(';').next().unwrap_or("").trim();
        if !essence.is_empty() && !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            let message = format!(
                "body: {} is not a form; send application/x-www-form-urlencoded",
                crate::model::quoted(essence)
            );
            return Err(HttpError::Rejected { status: StatusCode::UNSUPPORTED_MEDIA_TYPE, message }.into_response());
        }
        let req = axum::extract::Request::from_parts(parts, body);
        let body = axum::body::Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        let form = FormData::with_csrf(&body, who.csrf()).map_err(IntoResponse::into_response)?;
        Ok(CsrfForm(who, form))
    }
}

/// A form posted before sign-in (login, reset, access request), its anonymous CSRF token
/// (double-submit cookie) checked as it is read.
pub struct AnonForm {
    pub form: FormData,
    /// The request's headers (the anonymous CSRF cookie a page shown again needs).
    pub headers: axum::http::HeaderMap,
    /// Where the request came from, for the per-address limits: the connection's address,
    /// or the client's a trusted proxy names ([`crate::config::Proxies::client`]).
    pub addr: std::net::IpAddr,
}

impl axum::extract::FromRequest<AppState> for AnonForm {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let Some(axum::extract::ConnectInfo(addr)) =
            req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().copied()
        else {
            return Err(HttpError::unexpected("no peer address (served without connect info)").into_response());
        };
        let forwarded = headers.get_all("x-forwarded-for").iter().map(|v| v.as_bytes());
        let addr = state.config.trusted_proxies.client(addr.ip(), forwarded);
        let body = axum::body::Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        let form = FormData::posted(&body).map_err(IntoResponse::into_response)?;
        auth::check_anon_csrf(&headers, &form).map_err(IntoResponse::into_response)?;
        Ok(AnonForm { form, headers, addr })
    }
}

/// How a page with a form is shown: fresh (with the note a redirect carried, see [`Note`]), or
/// again after its form was refused, with the message and the status that says why.
pub struct Shown {
    pub note: Option<String>,
    pub error: Option<String>,
    pub status: StatusCode,
    /// The refused form's fields as typed ([`FormData::typed`]), for its page to show again
    /// (`{{ typed.reason }}`): one field is put right, not the whole form typed anew.
    pub typed: Value,
}

impl Shown {
    pub fn fresh(note: Option<String>) -> Shown {
        Shown { note, error: None, status: StatusCode::OK, typed: Value::Object(Default::default()) }
    }
    /// The same, with the refused form's fields to show again.
    pub fn with_typed(mut self, form: &FormData) -> Shown {
        self.typed = form.typed();
        self
    }
    /// A form refused for what it holds (422).
    pub fn refused(error: String) -> Shown {
        Shown::error(StatusCode::UNPROCESSABLE_ENTITY, error)
    }
    /// An action's refusal for its form's page to show, with the status the API gives it (the
    /// one mapping, [`HttpError`]'s): a field to put right 422, a conflict (decided meanwhile)
    /// 409. Any other (not found, not allowed, a failure) is given back, for its caller to show
    /// otherwise or to pass up (`?` makes it the [`HttpError`] it maps to).
    pub fn failed(e: crate::actions::ActionError) -> Result<Shown, crate::actions::ActionError> {
        use crate::actions::ActionError::{Conflict, Invalid};
        match e {
            Invalid { .. } | Conflict(_) => {
                let error = e.to_string();
                Ok(Shown::error(HttpError::from(e).status(), error))
            }
            e => Err(e),
        }
    }
    pub fn error(status: StatusCode, error: String) -> Shown {
        Shown { note: None, error: Some(error), status, typed: Value::Object(Default::default()) }
    }
}

/// A page fetched with GET is shown fresh, with the note a redirect carried when cport wrote
/// it (a forged `?note=` is dropped; a repeated one refused like any ambiguous query).
impl axum::extract::FromRequestParts<AppState> for Shown {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        let axum::extract::Query(note) = axum::extract::Query::<Note>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        // The reader is the session the cookie names, read without a trip to the store: a
        // note signed for another session is not shown whatever this cookie turns out to be.
        let reader = session::cookie(&parts.headers, session::COOKIE).map(|t| session::hash_token(&t));
        Ok(Shown::fresh(note.verified(state, reader.as_deref().unwrap_or(ANYONE))))
    }
}

/// The menu's pages the actor may open, each by the rule its page asks.
fn sees(a: &crate::actions::Actor) -> Value {
    use crate::model::CommandWord;
    json!({
        "visuals": a.may_see_visuals(),
        "jobs": a.may_see_jobs(),
        "deliveries": a.role.may_ask(CommandWord::Deliveries),
        "invoices": a.role.may_ask(CommandWord::Invoices),
        "pos": a.role.may_ask(CommandWord::Pos),
        "orders": crate::actions::orders::may_see_orders(a),
        "users": crate::actions::third_parties::manages_users(a),
    })
}

/// The enquiry pages the menu has no room for, each where the role may ask its command
/// (the rule the page itself asks): the dashboard lists them.
fn more_pages(role: crate::model::Role) -> Vec<Value> {
    use crate::model::CommandWord;
    [
        (CommandWord::Blanks, "/blanks", "Blank stock"),
        (CommandWord::Prices, "/prices", "Price card"),
        (CommandWord::Art, "/art", "Awaiting art"),
    ]
    .into_iter()
    .filter(|(word, _, _)| role.may_ask(*word))
    .map(|(_, path, label)| json!({"path": path, "label": label}))
    .collect()
}

/// Renders a portal page with the shared context (brand, who is signed in, banners).
pub async fn page(state: &AppState, session: Option<&Session>, name: &str, mut ctx: Value) -> Reply {
    let b = &state.config.branding;
    ctx["brand"] = serde_json::to_value(crate::messages::Brand::of(b)).unwrap_or(Value::Null);
    match session {
        Some(s) => {
            let c = &s.actor.contact;
            ctx["me"] = json!({
                "name": s.actor.display_name(), "client": c.client_name, "role": s.actor.role.as_str(),
                "delegated": s.actor.delegation.is_some(), "may_act": s.actor.may_act(),
                "sees": sees(&s.actor),
                "more": more_pages(s.actor.role),
            });
            ctx["csrf"] = json!(s.csrf);
            // A value new with each page, for a form whose second sending must do nothing
            // (see [`first_sending`]).
            ctx["once"] = json!(session::random_token());
            // Times on the contact's clock, as digests are scheduled (see the `when` filter).
            ctx["tz"] = json!(crate::actions::targets::contact_clock(state, c).await?.name());
            let banners = if s.actor.delegation.is_some() {
                vec![]
            } else {
                showing(state, s.banners_version, &c.client_id, Utc::now()).await?
            };
            ctx["banners"] = serde_json::to_value(banners).unwrap_or(Value::Null);
        }
        None => {
            ctx["me"] = Value::Null;
            ctx["banners"] = json!([]);
        }
    }
    crate::web::html(&state.templates, &format!("portal/{name}.html.j2"), &ctx)
}

/// Whether this is the first sending of a form that carries the page's `once` value, for
/// `what` (the forms of one page differ by it: each stock line's add): a second (a double
/// click, the back button and send again) within a quarter of an hour is `false`, and its
/// caller does nothing again. Kept with the sign-in limits, in the store, so two processes
/// agree. A form without the value (not sent from a page) is not checked.
pub async fn first_sending(state: &AppState, form: &FormData, what: &str) -> Result<bool, HttpError> {
    let Some(once) = form.get("once").filter(|o| !o.is_empty()) else { return Ok(true) };
    if once.len() != 64 || !once.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(HttpError::BadRequest("once: not a value a page of this portal gave; reload the page".into()));
    }
    let key = format!("once:{once}:{}", crate::links::sha256_hex(what));
    let taken = crate::store::limits::attempt(&state.db, &key, 1, Utc::now().timestamp_millis()).await?;
    Ok(taken.is_none())
}

/// [`page`] with a status other than 200 (a form shown again with its error).
pub async fn page_status(
    state: &AppState,
    session: Option<&Session>,
    name: &str,
    ctx: Value,
    status: StatusCode,
) -> Reply {
    let mut resp = page(state, session, name, ctx).await?;
    *resp.status_mut() = status;
    Ok(resp)
}

/// Money in minor units as text with two decimals.
pub fn money(minor: i64) -> String {
    crate::model::Money(minor).to_string()
}

/// The most characters a note carried by a redirect shows.
const NOTE_MAX: usize = 500;

/// The reader of a note cport's own words alone make (no one's input in it), shown with or
/// without a session: "You are signed out."
pub const ANYONE: &str = "";

/// A redirect after a successful POST, with a short note for the next page: [`with_note`].
pub fn see_other(state: &AppState, reader: &str, path: &str, note: &str) -> Response {
    Redirect::to(&with_note(state, reader, path, note)).into_response()
}

/// `path` carrying a note for the next page. The note is signed, so a link cannot put words of
/// its own on the portal, and signed for its `reader` (the session's key, [`HoldsCsrf`]): a
/// note quoting what someone typed ("Basket `…` created") is shown only in the session it
/// was written for, never replayed to another contact in a link. [`ANYONE`] for a note of
/// cport's own words alone.
pub fn with_note(state: &AppState, reader: &str, path: &str, note: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    if note.is_empty() {
        return path.to_string();
    }
    // A note can quote what someone typed: it is cut short so a redirect stays a sane size.
    let note = &crate::model::shortened(note, NOTE_MAX);
    let enc = percent_encoding::utf8_percent_encode(note, percent_encoding::NON_ALPHANUMERIC);
    format!("{path}{sep}note={enc}&ns={}", note_tag(state, reader, note))
}

fn note_tag(state: &AppState, reader: &str, note: &str) -> String {
    state.signer.tag("note", &format!("{reader}\n{note}"))
}

/// The `?note=&ns=` of a page, if cport wrote it.
#[derive(serde::Deserialize, Default, Clone)]
pub struct Note {
    pub note: Option<String>,
    pub ns: Option<String>,
}

impl Note {
    /// The note of a query string read as a form.
    pub fn of(q: &FormData) -> Note {
        Note { note: q.get("note").map(str::to_string), ns: q.get("ns").map(str::to_string) }
    }

    /// The note, when cport wrote it for this `reader` or for [`ANYONE`].
    pub fn verified(self, state: &AppState, reader: &str) -> Option<String> {
        let (note, ns) = (self.note?, self.ns?);
        let signed_for = |r: &str| crate::links::constant_time_eq(&note_tag(state, r, &note), &ns);
        (signed_for(reader) || signed_for(ANYONE)).then_some(note)
    }
}

const STYLESHEET: &str = include_str!("../../static/portal.css");
const UPLOAD_SCRIPT: &str = include_str!("../../static/upload.js");

/// The artwork forms' drag and drop and progress (the forms work without it).
async fn upload_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        UPLOAD_SCRIPT,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
        .into_response()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/static/portal.css", get(stylesheet))
        .route("/static/upload.js", get(upload_script))
        .route("/l/{token}", get(auth::signed_link))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/login/link", post(auth::request_link))
        .route("/access", post(auth::request_access))
        .route("/unsubscribe/{token}", get(unsubscribe::confirm).post(unsubscribe::stop))
        .route("/logout", post(auth::logout))
        .route("/password", get(auth::password_form).post(auth::change_password))
        .route("/password/reset", get(auth::reset_form).post(auth::reset))
        .route("/preferences", get(preferences::preferences).post(preferences::save_preferences))
        .route(
            "/preferences/chat-code",
            crate::web::answered_with_a_page::<(), _, _, _>("/preferences", preferences::chat_code),
        )
        .route("/preferences/chat-unlink", post(preferences::chat_unlink))
        .route("/visuals", get(pages::visuals).post(pages::approve_many))
        .route("/visuals/{id}", get(pages::visual).post(pages::visual_action))
        .route("/jobs", enquiry::list_page("Jobs", Command::Jobs, Some(("Job", "/jobs/", ""))))
        .route("/jobs/{id}", get(pages::job))
        .route("/jobs/{id}/artwork/{file}", get(artwork::download))
        .route(
            "/deliveries",
            enquiry::list_page("Deliveries", Command::Deliveries, Some(("Delivery", "/deliveries/", ""))),
        )
        .route("/deliveries/{id}", get(enquiry::delivery))
        .route("/deliveries/{id}/{doc}", get(enquiry::delivery_document))
        .route("/invoices", get(enquiry::invoices))
        .route("/invoices/{file}", get(enquiry::invoice_document))
        .route("/statement.pdf", get(enquiry::statement_pdf))
        .route("/statement.csv", get(enquiry::statement_csv))
        .route("/pos", enquiry::list_page("Purchase orders", Command::Pos, Some(("PO", "/pos/", ""))))
        .route("/pos/{id}", enquiry::record_page("Purchase order", Command::Po))
        .route("/blanks", enquiry::list_page("Blank stock", Command::Blanks(None), None))
        .route("/prices", enquiry::list_page("Price card", Command::Prices, None))
        .route("/art", enquiry::list_page("Awaiting art", Command::Art, Some(("Job", "/jobs/", ""))))
        .route("/stock", get(orders::stock).post(orders::stock_add))
        .route("/baskets", get(orders::baskets).post(orders::create_basket))
        .route("/baskets/{id}", get(orders::basket).post(orders::basket_action))
        .route("/orders", get(orders::orders))
        .route("/users", get(orders::users).post(orders::users_action))
        .route("/jobs/{id}/delivery", get(pages::delivery_form).post(pages::delivery_submit))
}
