//! What both HTTP doors (the portal and the sync API) share: one error type, mapped to its
//! status once. An error answers JSON by default (`{"error": …}`); the portal's routes pass
//! their responses through [`render_page`], which turns the same error into a branded page
//! (or, for a missing session, a redirect to the login form).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use crate::actions::ActionError;
use crate::model::records::RecordError;
use crate::store::StoreError;

/// What a page or API handler answers: a response, or an error shown in the route's look.
pub type Reply = Result<Response, HttpError>;

/// What an HTTP handler can fail with. User-facing variants carry their message; the
/// details of `Unexpected` are logged and never shown.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The sync API's bearer token is missing or wrong.
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// A portal page needs a session; the login form comes back to `next`.
    #[error("login required")]
    LoginRequired { next: String },
    /// A staff console page needs a staff session; the staff sign-in comes back to `next`.
    #[error("staff sign-in required")]
    StaffLoginRequired { next: String },
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("the form was out of date; go back, reload the page and try again")]
    Csrf,
    #[error("{0}")]
    TooMany(String),
    /// The request itself cannot be read (a body that is not JSON, a bad query value).
    #[error("{0}")]
    BadRequest(String),
    /// What was sent cannot be used; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The framework refused the request before a handler saw it (a query, path or form value
    /// of the wrong type, a body over its limit): its status and words, in this error's shape.
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    /// Records of a sync batch that cannot be used, each naming its field.
    #[error("{}; nothing was written", RecordError::counted(.0))]
    InvalidRecords(Vec<RecordError>),
    /// The thing has moved on (decided already, placed already).
    #[error("{0}")]
    Conflict(String),
    #[error("the service is not available right now")]
    Unavailable,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl HttpError {
    /// An unexpected failure, described for the log only.
    pub fn unexpected(what: impl std::fmt::Display) -> HttpError {
        HttpError::Unexpected(anyhow::anyhow!("{what}"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::Unauthorized | HttpError::LoginRequired { .. } | HttpError::StaffLoginRequired { .. } => {
                StatusCode::UNAUTHORIZED
            }
            HttpError::NotFound => StatusCode::NOT_FOUND,
            HttpError::Forbidden(_) | HttpError::Csrf => StatusCode::FORBIDDEN,
            HttpError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::Rejected { status, .. } => *status,
            HttpError::Invalid(_) | HttpError::InvalidRecords(_) => StatusCode::UNPROCESSABLE_ENTITY,
            HttpError::Conflict(_) => StatusCode::CONFLICT,
            HttpError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The heading of the error page.
    fn title(&self) -> &'static str {
        match self {
            HttpError::NotFound => "Not found",
            HttpError::Forbidden(_)
            | HttpError::Unauthorized
            | HttpError::LoginRequired { .. }
            | HttpError::StaffLoginRequired { .. } => "Not allowed",
            HttpError::Csrf => "Please try again",
            HttpError::TooMany(_) => "Too many attempts",
            HttpError::BadRequest(_)
            | HttpError::Rejected { .. }
            | HttpError::Invalid(_)
            | HttpError::InvalidRecords(_) => "Please check what you sent",
            HttpError::Conflict(_) => "Not done",
            HttpError::Unavailable | HttpError::Unexpected(_) => "Something went wrong",
        }
    }

    /// What a client is told; never internal detail.
    fn public_message(&self) -> String {
        match self {
            HttpError::NotFound => "There is nothing here, or it is not yours to see.".into(),
            HttpError::Unavailable | HttpError::Unexpected(_) => "Please try again in a moment.".into(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => HttpError::NotFound,
            StoreError::Conflict(m) => HttpError::Conflict(m),
            StoreError::Collision(detail) => {
                // The detail names the store's tables and columns: the log's, not the person's.
                tracing::warn!(%detail, "a write collided with another");
                HttpError::Conflict(
                    "This was changed at the same moment elsewhere; nothing was saved. Try again.".into(),
                )
            }
            e @ StoreError::Unstorable => HttpError::BadRequest(e.to_string()),
            e if e.is_unavailable() => {
                tracing::error!(error = %e, "store unavailable");
                HttpError::Unavailable
            }
            e => HttpError::Unexpected(e.into()),
        }
    }
}

impl From<ActionError> for HttpError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(_) => HttpError::NotFound,
            ActionError::Forbidden(m) => HttpError::Forbidden(m),
            ActionError::Store(s) => s.into(),
            e @ ActionError::Invalid { .. } => HttpError::Invalid(e.to_string()),
            ActionError::Conflict(m) => HttpError::Conflict(m),
        }
    }
}

/// How a portal route shows an error: carried from [`HttpError::into_response`] to
/// [`render_page`] in the response's extensions.
#[derive(Debug, Clone)]
struct ErrorPage {
    title: &'static str,
    message: String,
    /// Where a missing session sends the visitor instead (the sign-in form that fits).
    sign_in: Option<String>,
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let HttpError::Unexpected(e) = &self {
            tracing::error!(error = ?e, "unexpected error");
        }
        let body = match &self {
            HttpError::InvalidRecords(errs) => ErrorBody { error: self.to_string(), errors: errs.clone() },
            HttpError::Unexpected(_) => {
                ErrorBody { error: "internal error; it has been logged".into(), errors: vec![] }
            }
            other => ErrorBody { error: other.public_message(), errors: vec![] },
        };
        let page = ErrorPage {
            title: self.title(),
            message: self.public_message(),
            sign_in: match self {
                HttpError::LoginRequired { next } => Some(sign_in_at("/login", &next)),
                HttpError::StaffLoginRequired { next } => Some(sign_in_at("/staff/login", &next)),
                _ => None,
            },
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp.extensions_mut().insert(page);
        resp
    }
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// What is wrong, in words.
    pub error: String,
    /// For invalid records: each problem with its record and field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<crate::model::records::RecordError>,
}

/// Where to come back to after signing in: the page asked for, for a GET; for a form sent
/// from a page whose session had ended (another tab signed out, it expired), the page it was
/// sent from (its `Referer`, path only), else `default`: the path a form posts to opens
/// nothing (a GET there is refused).
pub fn come_back_to(parts: &axum::http::request::Parts, default: &str) -> String {
    use axum::http::Method;
    if parts.method == Method::GET || parts.method == Method::HEAD {
        return parts.uri.path_and_query().map_or(default, |p| p.as_str()).to_string();
    }
    let from = parts.headers.get(header::REFERER).and_then(|v| v.to_str().ok()).and_then(|r| url::Url::parse(r).ok());
    match from {
        Some(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        },
        None => default.to_string(),
    }
}

fn sign_in_at(form: &str, next: &str) -> String {
    format!("{form}?next={}", percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC))
}

/// The route of a form answered with a page of its own (a preview, a code shown once, never
/// put in an address): opened again, as after signing in from that page, it leads to `parent`.
pub fn answered_with_a_page<H, T, S>(parent: &'static str, post: H) -> axum::routing::MethodRouter<S>
where
    H: axum::handler::Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    axum::routing::get(move || async move { Redirect::to(parent) }).post(post)
}

/// For every route (`axum::middleware::map_response`, inside [`render_page`]): a request
/// axum's extractors refused (a `?limit=abc`, a repeated query key, `/banners/x` for a
/// number, a form of the wrong type, a body over its limit) answers in cport's error shape (JSON,
/// or the portal's page) instead of axum's plain text, with axum's words, which name the field.
pub async fn rejections_as_errors(resp: Response) -> Response {
    let status = resp.status();
    // axum answers a method a path does not take with an empty 405: the same error shape,
    // keeping the `Allow` header that says which methods it does take.
    if status == StatusCode::METHOD_NOT_ALLOWED && resp.extensions().get::<ErrorPage>().is_none() {
        let message = "method: this path does not take it (see the Allow header)".to_string();
        let mut answer = HttpError::Rejected { status, message }.into_response();
        if let Some(allow) = resp.headers().get(header::ALLOW) {
            answer.headers_mut().insert(header::ALLOW, allow.clone());
        }
        return answer;
    }
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let refused = [
        StatusCode::BAD_REQUEST,
        StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        StatusCode::UNPROCESSABLE_ENTITY,
    ];
    if !plain || !refused.contains(&status) || resp.extensions().get::<ErrorPage>().is_some() {
        return resp;
    }
    let body = axum::body::to_bytes(resp.into_body(), 16 * 1024).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&body).trim().to_string();
    // A path part of the wrong type (`/jobs/J-1/artwork/x` for a file number) names a thing
    // that is not there.
    if message.starts_with("Invalid URL: Cannot parse") {
        return HttpError::NotFound.into_response();
    }
    // axum's Multipart refusing a body that is not one.
    if message.starts_with("Invalid `boundary` for `multipart/form-data` request") {
        let message = "body: not a multipart/form-data upload (send the files with the page's form)".to_string();
        return HttpError::Rejected { status, message }.into_response();
    }
    // A body that stopped coming (`serve`'s idle time between its pieces).
    if message.contains("data was not received within the designated timeout") {
        let message = "body: it stopped coming before its end (Content-Length); send it whole".to_string();
        return HttpError::Rejected { status: StatusCode::BAD_REQUEST, message }.into_response();
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let message = "body: larger than this address takes (the limit is max_body_bytes in cport's configuration)";
        return HttpError::Rejected { status, message: message.into() }.into_response();
    }
    HttpError::Rejected { status, message: in_words(&message) }.into_response()
}

/// What a request over a group of routes' body limit is told: the limit in words and, after
/// it, where it comes from (layered beside that group's `DefaultBodyLimit`; a request over the
/// limit for all the rest is told by [`rejections_as_errors`]).
pub fn too_large_says(bytes: usize, whence: String) -> impl Fn(Response) -> std::future::Ready<Response> + Clone {
    move |resp: Response| {
        let plain = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"));
        std::future::ready(if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && plain {
            let size = crate::model::size_text(bytes as u64);
            let message = format!("body: larger than this address takes ({size} at most{whence})");
            HttpError::Rejected { status: StatusCode::PAYLOAD_TOO_LARGE, message }.into_response()
        } else {
            resp
        })
    }
}

/// axum's and serde's words for a query or form value of the wrong type, as a person reads
/// them: `page: not a whole number` for "Failed to deserialize query string: page: invalid
/// digit found in string". Words it does not know pass unchanged.
fn in_words(message: &str) -> String {
    let message = ["Failed to deserialize query string: ", "Failed to deserialize form body: "]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .unwrap_or(message);
    let Some((field, detail)) = message.split_once(": ") else {
        return message.to_string();
    };
    let detail = match detail {
        "cannot parse integer from empty string" => "give a whole number",
        "invalid digit found in string" => "not a whole number",
        "number too large to fit in target type" => "too large",
        "number too small to fit in target type" => "too small",
        "provided string was not `true` or `false`" => "give true or false",
        other => other,
    };
    format!("{field}: {detail}")
}

/// What is wrong with one `name=value` pair of a query string or posted form, as sent
/// (percent-encoded, `+` for a space), if anything: bytes that are not UTF-8 (which a lossy
/// decoding would store as U+FFFD in place of what was sent), or a NUL character (no stored
/// text holds one, and PostgreSQL refuses it even to compare with, which would otherwise
/// surface as an error that names no field).
pub fn unreadable_pair(pair: &[u8]) -> Option<(String, &'static str)> {
    let mut parts = pair.splitn(2, |b| *b == b'=');
    let (name, value) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let decoded = |raw: &[u8]| -> Vec<u8> {
        let raw: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
        percent_encoding::percent_decode(&raw).collect()
    };
    let (n, v) = (decoded(name), decoded(value));
    let wrong = if std::str::from_utf8(&n).is_err() || std::str::from_utf8(&v).is_err() {
        "not text in UTF-8"
    } else if n.contains(&0) || v.contains(&0) {
        "holds a NUL character (U+0000)"
    } else {
        return None;
    };
    Some((crate::model::shown(&String::from_utf8_lossy(&n), 100), wrong))
}

/// For every route (`axum::middleware::from_fn`, outermost): a path or query string that
/// cannot be read as text (a NUL, bytes that are not UTF-8) is refused naming where it is,
/// and so is a query naming one parameter twice (which value would count?), before a handler
/// looks anything up with it. A body in a content coding cport does not undo (gzip) is
/// refused with 415 rather than read as if it were plain ([`plain_body`]).
pub async fn refuse_unreadable(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let uri = req.uri();
    // A program's route asks for its token first (a request without it is 401 whatever its
    // body): it refuses a coded body itself, once the caller is known (`sync::api`).
    if !for_programs(uri.path())
        && let Err(e) = plain_body(req.headers())
    {
        return in_shape_for(uri.path(), e).await;
    }
    let path: Vec<u8> = percent_encoding::percent_decode_str(uri.path()).collect();
    let refused = if std::str::from_utf8(&path).is_err() {
        Some("path: not text in UTF-8".to_string())
    } else if path.contains(&0) {
        Some("path: holds a NUL character (U+0000)".to_string())
    } else {
        uri.query().and_then(query_fault)
    };
    match refused {
        Some(message) => {
            in_shape_for(uri.path(), HttpError::Rejected { status: StatusCode::BAD_REQUEST, message }).await
        }
        None => next.run(req).await,
    }
}

/// A body whose declared length is more than any address takes is refused (413) before a
/// byte of it is read, rather than read until the address's own limit is met or the sender
/// gives up.
pub async fn refuse_declared_over(most: u64, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match declared {
        Some(n) if n > most => {
            let message = format!(
                "body: {n} bytes is more than cport takes at any address ({most}; max_body_bytes in its configuration)"
            );
            in_shape_for(req.uri().path(), HttpError::Rejected { status: StatusCode::PAYLOAD_TOO_LARGE, message }).await
        }
        _ => next.run(req).await,
    }
}

/// For every route (`axum::middleware::from_fn`, outside [`rejections_as_errors`]): a method
/// a page does not take is answered after the pages' own layers have run, so it is shown as
/// a page here (the console's under `/staff`); under `/api/` it stays JSON.
pub async fn method_pages(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path();
    let (programs, console) = (for_programs(path), path.starts_with("/staff"));
    let mut resp = next.run(req).await;
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED || programs {
        return resp;
    }
    if console {
        resp.extensions_mut().insert(ConsoleRoute);
    }
    render_page(resp).await
}

/// A body in a content coding cport does not undo (gzip) is refused with 415, rather than
/// read as if it were plain.
pub fn plain_body(headers: &axum::http::HeaderMap) -> Result<(), HttpError> {
    let coded = headers
        .get_all(axum::http::header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(str::trim)
        .find(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
        .map(crate::model::quoted);
    match coded {
        Some(coding) => Err(HttpError::Rejected {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!("Content-Encoding: {coding} is not accepted; send the body as it is"),
        }),
        None => Ok(()),
    }
}

/// What is wrong with a query string, naming the parameter: see [`refuse_unreadable`].
fn query_fault(query: &str) -> Option<String> {
    let pairs = query.as_bytes().split(|b| *b == b'&').filter(|p| !p.is_empty());
    if let Some((field, wrong)) = pairs.into_iter().find_map(unreadable_pair) {
        return Some(format!("{field}: {wrong}"));
    }
    let names: Vec<String> = form_urlencoded::parse(query.as_bytes()).map(|(k, _)| k.into_owned()).collect();
    repeated_name(names.iter().map(String::as_str), &[])
}

/// "`name`: is given twice" for the first name of a query or form given more than once (which
/// value would count?), but those in `may_repeat`.
pub fn repeated_name<'a>(names: impl Iterator<Item = &'a str>, may_repeat: &[&str]) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .filter(|n| !may_repeat.contains(n))
        .find(|n| !seen.insert(*n))
        .map(|n| format!("{}: is given twice; give it once", crate::model::shown(n, 100)))
}

/// The routes programs call (the sync API, the mail systems' `/inbound/`): answered in JSON,
/// errors too. Every other route is a page.
pub fn for_programs(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/inbound/")
}

/// An error answered outside the routes' own layers: JSON on [`for_programs`] routes, the
/// portal's page elsewhere.
pub async fn in_shape_for(path: &str, e: HttpError) -> Response {
    let mut resp = e.into_response();
    if for_programs(path) {
        return resp;
    }
    // Under `/staff` in the console's look, as its own routes' errors are.
    if path.starts_with("/staff") {
        resp.extensions_mut().insert(ConsoleRoute);
    }
    render_page(resp).await
}

/// The page `templates/{name}` renders from `ctx`; a template that fails is a 500 naming it.
pub fn html(templates: &minijinja::Environment<'_>, name: &str, ctx: &Value) -> Result<Response, HttpError> {
    let body = templates
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| HttpError::unexpected(format!("template {name}: {e:#}")))?;
    Ok(Html(body).into_response())
}

/// Marks a response of the staff console's routes, so an error there is shown in the
/// console's look (with the way back to it), not the client portal's.
#[derive(Clone, Copy)]
pub struct ConsoleRoute;

/// For the console's routes (`axum::middleware::map_response`): see [`ConsoleRoute`].
pub async fn mark_console(mut resp: Response) -> Response {
    resp.extensions_mut().insert(ConsoleRoute);
    resp
}

/// For the portal's routes (`axum::middleware::map_response`): an error becomes a page in the
/// portal's look (the console's, on its routes), and a missing session a redirect to the
/// login form.
pub async fn render_page(mut resp: Response) -> Response {
    let Some(page) = resp.extensions_mut().remove::<ErrorPage>() else {
        return resp;
    };
    if let Some(target) = page.sign_in {
        return Redirect::to(&target).into_response();
    }
    let template = match resp.extensions().get::<ConsoleRoute>() {
        Some(_) => "staff/error.html.j2",
        None => "portal/message.html.j2",
    };
    let body = crate::templates::shared()
        .get_template(template)
        .and_then(|t| {
            t.render(json!({
                "brand": {"name": "TOT", "colour": "#1f3a5f", "logo_url": ""},
                "title": page.title, "message": page.message, "me": Value::Null, "banners": [],
            }))
        })
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "error page template failed");
            format!("<h1>{}</h1>", page.title)
        });
    (resp.status(), Html(body)).into_response()
}
