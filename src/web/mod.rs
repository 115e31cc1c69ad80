//! What both HTTP doors (the portal and the sync API) share: one error type, mapped to its
//! status once. An error answers JSON by default (`{"error": …}`); the portal's routes pass
//! their responses through [`render_page`], which turns the same error into a branded page
//! (or, for a missing session, a redirect to the login form).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use crate::actions::ActionError;
use crate::model::records::{RecordError, Refused};
use crate::store::StoreError;

mod requests;

pub use requests::{
    method_pages, plain_body, refuse_declared_over, refuse_unreadable, rejections_as_errors, repeated_name,
    too_large_says, unreadable_pair,
};

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
    #[error("{}; nothing was written", .0.counted())]
    InvalidRecords(Refused),
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
            HttpError::InvalidRecords(refused) => ErrorBody { error: self.to_string(), errors: refused.errors.clone() },
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
    pub errors: Vec<RecordError>,
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
/// put in an address): opened again, as after signing in from that page, it leads to `parent`,
/// for whoever `G` lets in: anyone (`()`: the portal's page asks for its own sign-in), or
/// staff alone (anyone else answered as the console answers them, a client 404).
pub fn answered_with_a_page<G, H, T, S>(parent: &'static str, post: H) -> axum::routing::MethodRouter<S>
where
    G: axum::extract::FromRequestParts<S> + Send + 'static,
    H: axum::handler::Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    axum::routing::get(move |_: G| async move { Redirect::to(parent) }).post(post)
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
