//! HTTP handlers of the sync API. Bearer token required on every route.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::state::AppState;
use crate::store::changes::ChangeRow;
use crate::sync::{DeleteReport, EntityReport, RecordError, delete_batch, upsert_batch};
use crate::web::HttpError;

/// Every route of the API, as `(method, path)`: [`router`] serves these, and the OpenAPI
/// document describes each (`{entity}` once per entity). `tests/openapi.rs` holds the three
/// together.
pub const ROUTES: &[(&str, &str)] = &[
    ("PUT", "/api/v1/{entity}"),
    ("DELETE", "/api/v1/{entity}"),
    ("POST", "/api/v1/banners"),
    ("GET", "/api/v1/banners"),
    ("DELETE", "/api/v1/banners/{id}"),
    ("GET", "/api/v1/changes"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/inbound/email"),
];

/// The API's routes (see [`ROUTES`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/changes", get(list_changes))
        .route("/inbound/email", post(inbound_email))
        .route("/api/v1/banners", post(post_banner).get(list_banners))
        .route("/api/v1/banners/{id}", delete(retract_banner))
        .route("/api/v1/{entity}", put(put_batch).delete(delete_ids))
}

/// `GET /api/v1/openapi.json`: the API contract (no token needed: it tells nothing the
/// documentation does not).
pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(super::openapi::document(&state.config.public_url))
}

/// A request that carries the API token (`Authorization: Bearer <api_token>`). As the first
/// extractor of a handler, it refuses any other request with 401 before the rest is read.
pub struct Tot;

impl FromRequestParts<AppState> for Tot {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        require_token(&parts.headers, state.config.api_token.expose())?;
        Ok(Tot)
    }
}

/// Checks `Authorization: Bearer <api_token>` (the scheme's name in any case, RFC 9110 §11.1),
/// then that the body is not in a content coding cport does not undo (415): a caller without
/// the token learns nothing of how its body would be read.
pub fn require_token(headers: &HeaderMap, token: &str) -> Result<(), HttpError> {
    // Two Authorization headers are read as neither: which one a proxy in front checked is
    // not known.
    let mut all = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let given = all
        .next()
        .filter(|_| all.next().is_none())
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, given)| given)
        .ok_or(HttpError::Unauthorized)?;
    if crate::links::constant_time_eq(given, token) && !token.is_empty() {
        crate::web::plain_body(headers)
    } else {
        Err(HttpError::Unauthorized)
    }
}

/// The `{entity}` of a sync route (a write), one the API has: another is refused before the
/// body is read, so what is said about a body is said of a known entity (the name is not
/// echoed raw). A write takes no query: one given anyway (`?dry_run=1`) is refused by its
/// name rather than ignored, so that a caller never believes it was heeded while the batch
/// is written.
pub struct Entity(String);

impl FromRequestParts<AppState> for Entity {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(query) = parts.uri.query().filter(|q| !q.is_empty()) {
            let first = query.split('&').next().unwrap_or(query);
            let name =
                percent_encoding::percent_decode_str(first.split('=').next().unwrap_or(first)).decode_utf8_lossy();
            return Err(HttpError::BadRequest(format!(
                "{}: this route takes no query parameters; nothing was written",
                crate::model::quoted(&name)
            )));
        }
        let Path(entity) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| HttpError::BadRequest(format!("entity: {}", e.body_text())))?;
        match crate::model::records::ENTITIES.contains(&entity.as_str()) {
            true => Ok(Entity(entity)),
            false => Err(super::SyncError::UnknownEntity(entity).into()),
        }
    }
}

/// What a sync API handler answers: a JSON body, or the error mapped once by [`HttpError`].
type Api<T> = Result<Json<T>, HttpError>;

fn body_error(entity: &str, reason: String) -> HttpError {
    // serde's words repeat the keys and values sent as they came.
    let reason = crate::model::visible(&reason, 1_000);
    HttpError::InvalidRecords(
        vec![RecordError { entity: entity.into(), index: None, id: None, field: "body".into(), reason }].into(),
    )
}

/// The client a record of `entity` belongs to, read from its text without building its tree
/// (the alert scan looks at the clients a batch changed).
fn client_of(entity: &str, record: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Owner {
        client_id: Option<String>,
        id: Option<String>,
    }
    let o: Owner = serde_json::from_str(record.get()).ok()?;
    o.client_id.or(o.id.filter(|_| entity == "clients"))
}

/// One record's JSON tree, or why it has none: its text was read as JSON with the batch, but
/// a tree also asks that numbers fit (`1e400`), escapes name characters (a lone `\ud800`) and
/// nesting stops (at 128 levels).
fn tree(entity: &str, record: &RawValue) -> Result<Value, super::Unreadable> {
    serde_json::from_str(record.get()).map_err(|e| super::Unreadable::of(entity, record.get(), &e))
}

/// A batch's records as JSON trees, one at a time. A type of its own: a `map` over a closure,
/// held across the store's awaits, fails the check that the handler's future is `Send`
/// (rust-lang/rust#64552).
struct Trees<'a>(&'a str, std::slice::Iter<'a, &'a RawValue>);

impl Iterator for Trees<'_> {
    type Item = Result<Value, super::Unreadable>;
    fn next(&mut self) -> Option<Self::Item> {
        self.1.next().map(|r| tree(self.0, r))
    }
}

/// `PUT /api/v1/{entity}`: the body is a JSON array of records.
pub async fn put_batch(_: Tot, State(s): State<AppState>, Entity(entity): Entity, body: Bytes) -> Api<EntityReport> {
    let body = body.strip_prefix(super::import::BOM).unwrap_or(&body);
    // Each record's text is found in the body, and read into a JSON tree only when its turn
    // comes: the whole body as one tree took ten times its size (a 53 MB batch of jobs
    // peaked at 531 MB in the server; one record's tree at a time, at 201 – 206 MB).
    let records: Vec<&RawValue> = serde_json::from_slice(body).map_err(|_| {
        // Not an array is found at its first byte: whether it is JSON at all is asked apart.
        if let Err(e) = std::str::from_utf8(body) {
            return body_error(
                &entity,
                format!("not UTF-8 text: the byte at offset {} cannot be read as UTF-8", e.valid_up_to()),
            );
        }
        match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => body_error(&entity, "expected a JSON array of records".into()),
            Err(e) => body_error(&entity, format!("not valid JSON: {e}")),
        }
    })?;
    if let Some((index, key)) = super::repeated::repeated_key(body) {
        let record = records.get(index).and_then(|r| tree(&entity, r).ok());
        return Err(HttpError::InvalidRecords(vec![super::given_twice(&entity, index, record.as_ref(), &key)].into()));
    }
    let clients: Vec<String> = records.iter().filter_map(|r| client_of(&entity, r)).collect();
    let report = upsert_batch(&s.db, &entity, Trees(&entity, records.iter())).await?;
    if report.inserted + report.updated > 0 {
        s.alerts.mark(clients);
    }
    tracing::info!(
        entity,
        received = report.received,
        inserted = report.inserted,
        updated = report.updated,
        unchanged = report.unchanged,
        "sync batch applied"
    );
    Ok(Json(report))
}

/// The body of a delete.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteBody {
    /// The keys of the records to delete: `id`, or `sku` for `stock` and `blank_stock`, or the
    /// client id for `account_summaries`.
    pub ids: Vec<String>,
}

/// `DELETE /api/v1/{entity}`: the body is `{"ids": ["…", …]}`.
pub async fn delete_ids(_: Tot, State(s): State<AppState>, Entity(entity): Entity, body: Bytes) -> Api<DeleteReport> {
    let parsed: DeleteBody =
        object_body(&body).map_err(|e| body_error(&entity, format!("expected {{\"ids\": [\"…\"]}}: {e}")))?;
    let report = delete_batch(&s.db, &entity, parsed.ids).await?;
    tracing::info!(entity, deleted = report.deleted, absent = report.absent.len(), "sync delete applied");
    Ok(Json(report))
}

/// A body that is one JSON object, read strictly (see [`super::strict`]); what is wrong is
/// said with the field it is in.
fn object_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    // A byte-order mark before the JSON is passed over, as a PUT's is.
    let body = body.strip_prefix(super::import::BOM).unwrap_or(body);
    // A key given twice is refused, as in a record: which of the two would count?
    let v: Value = match serde_json::from_slice::<super::strict::Tree>(body) {
        Ok(tree) => tree.0,
        Err(e) if e.is_data() => return Err(e.to_string()),
        Err(e) => return Err(format!("not valid JSON: {e}")),
    };
    if !v.is_object() {
        return Err("the body must be a JSON object".into());
    }
    serde_path_to_error::deserialize(super::strict::Strict(v)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path.is_empty() || path == "." { inner } else { format!("{path}: {inner}") }
    })
}

/// `POST /api/v1/banners`: staff post a stop-press banner.
pub async fn post_banner(
    _: Tot,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(axum::http::StatusCode, Json<crate::actions::banners::Posted>), HttpError> {
    let input: crate::actions::banners::BannerInput =
        object_body(&body).map_err(|e| HttpError::BadRequest(format!("banner: {e}")))?;
    match crate::actions::banners::post(&state, input, "api", chrono::Utc::now()).await {
        Ok(p) => Ok((axum::http::StatusCode::CREATED, Json(p))),
        Err(crate::actions::banners::BannerError::Invalid(errs)) => {
            Err(HttpError::BadRequest(errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")))
        }
        Err(e @ crate::actions::banners::BannerError::AlreadyPosted(_)) => Err(HttpError::Conflict(e.to_string())),
        Err(crate::actions::banners::BannerError::Store(e)) => Err(e.into()),
    }
}

/// A banner as `GET /api/v1/banners` lists it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ListedBanner {
    #[serde(flatten)]
    pub banner: crate::store::banners::BannerRow,
    /// The clients it shows to; empty for every client.
    pub clients: Vec<String>,
}

/// `GET /api/v1/banners`: every banner with its audience.
pub async fn list_banners(_: Tot, State(state): State<AppState>) -> Api<Vec<ListedBanner>> {
    let rows = crate::store::banners::list_banners(&state.db).await?;
    Ok(Json(rows.into_iter().map(|(banner, clients)| ListedBanner { banner, clients }).collect()))
}

/// `DELETE /api/v1/banners/{id}`: retract a banner.
pub async fn retract_banner(
    _: Tot,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, HttpError> {
    let id: i64 = id.parse().map_err(|_| {
        HttpError::BadRequest(format!("id: {} is not a banner id (a whole number)", crate::model::quoted(&id)))
    })?;
    use crate::actions::banners::Retraction;
    match crate::actions::banners::retract(&state, id, chrono::Utc::now()).await? {
        // Retracted before: the same answer, so a request retried after a lost answer is safe.
        Retraction::Done | Retraction::Already(_) => Ok(axum::http::StatusCode::NO_CONTENT),
        // Said as the CLI says it: TOT's system asks for one banner by its id.
        Retraction::Missing => Err(HttpError::Rejected {
            status: axum::http::StatusCode::NOT_FOUND,
            message: format!("no banner with id {id}"),
        }),
    }
}

/// A misspelt key (`?since=20`) is refused, naming it: taken quietly, it would read the feed
/// from its start.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

/// A page of the change feed.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ChangesPage {
    pub changes: Vec<crate::model::Change>,
    /// The `after` of the next call: the last `seq` of this page (or the `after` given).
    pub next_after: i64,
}

/// `GET /api/v1/changes?after=SEQ&limit=N`: client actions in sequence order. Page by passing
/// the last `seq` seen as `after`; `next_after` is that value for the next call.
pub async fn list_changes(
    _: Tot,
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<ChangesQuery>,
) -> Api<ChangesPage> {
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(HttpError::BadRequest("after: must be 0 or more".into()));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(HttpError::BadRequest("limit: must be from 1 to 1000".into()));
    }
    let rows = crate::store::changes::list_changes(&state.db, after, limit).await?;
    // Past the last event there is nothing to wait for: a reader keeping such a value would
    // pass over every event to come.
    if rows.is_empty() {
        let last = crate::store::changes::last_seq(&state.db).await?;
        if after > last {
            return Err(HttpError::BadRequest(format!("after: {after} is past the last event ({last})")));
        }
    }
    let next = rows.last().map(|r| r.seq).unwrap_or(after);
    Ok(Json(ChangesPage { changes: rows.into_iter().map(ChangeRow::change).collect(), next_after: next }))
}

/// `POST /inbound/email`: one raw RFC 5322 message as the body (for MTAs that deliver over
/// HTTP). Bearer token: `inbound.token`, or the API token when that is empty.
pub async fn inbound_email(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<(axum::http::StatusCode, Json<Value>), HttpError> {
    let token =
        if state.config.inbound.token.is_empty() { &state.config.api_token } else { &state.config.inbound.token };
    require_token(request.headers(), token.expose())?;
    use crate::channels::inbound::{InboundError, handle};
    // Read by hand rather than by an extractor, so that the caller is known before a byte of
    // the body is taken, and no more than one message may hold is ever held.
    let max = state.config.inbound.max_bytes;
    let mut body = Vec::new();
    let mut stream = request.into_body().into_data_stream();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(|e| HttpError::BadRequest(format!("the message could not be read: {e}")))?;
        if (body.len() + chunk.len()) as u64 > max {
            crate::channels::inbound::count_refused();
            let message = format!("message too large: more than inbound.max_bytes ({max} bytes)");
            return Err(HttpError::Rejected { status: axum::http::StatusCode::PAYLOAD_TOO_LARGE, message });
        }
        body.extend_from_slice(&chunk);
    }
    match handle(&state, &body, chrono::Utc::now()).await {
        Ok(d) => Ok((axum::http::StatusCode::OK, Json(serde_json::to_value(d).unwrap_or_default()))),
        Err(e @ InboundError::TooLarge { .. }) => {
            Err(HttpError::Rejected { status: axum::http::StatusCode::PAYLOAD_TOO_LARGE, message: e.to_string() })
        }
        Err(e @ InboundError::Malformed(_)) => Err(HttpError::BadRequest(e.to_string())),
        Err(InboundError::Store(e)) => Err(e.into()),
        Err(e @ InboundError::Internal(_)) => Err(HttpError::unexpected(e)),
    }
}
