//! HTTP handlers of the sync API. Bearer token required on every route.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use crate::state::AppState;
use crate::sync::{DeleteReport, EntityReport, RecordError, delete_batch, upsert_batch};
use crate::web::HttpError;

/// Checks `Authorization: Bearer <api_token>`.
pub fn require_token(headers: &HeaderMap, token: &str) -> Result<(), HttpError> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(HttpError::Unauthorized)?;
    if crate::links::constant_time_eq(given, token) && !token.is_empty() {
        Ok(())
    } else {
        Err(HttpError::Unauthorized)
    }
}

fn body_error(entity: &str, reason: String) -> HttpError {
    HttpError::InvalidRecords(vec![RecordError {
        entity: entity.into(),
        index: None,
        id: None,
        field: "body".into(),
        reason,
    }])
}

/// `PUT /api/v1/{entity}`: the body is a JSON array of records.
pub async fn put_entity(
    State(state): State<AppState>,
    Path(entity): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<EntityReport>, HttpError> {
    require_token(&headers, state.config.api_token.expose())?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| body_error(&entity, format!("not valid JSON: {e}")))?;
    let Value::Array(values) = value else {
        return Err(body_error(&entity, "expected a JSON array of records".into()));
    };
    let clients: Vec<String> = values
        .iter()
        .filter_map(|v| {
            v.get("client_id")
                .or_else(|| v.get("id").filter(|_| entity == "clients"))
        })
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let report = upsert_batch(&state.db, &entity, values).await?;
    if report.inserted + report.updated > 0 {
        state.alerts.mark(clients);
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    ids: Vec<String>,
}

/// `DELETE /api/v1/{entity}`: the body is `{"ids": ["…", …]}`.
pub async fn delete_entity(
    State(state): State<AppState>,
    Path(entity): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DeleteReport>, HttpError> {
    require_token(&headers, state.config.api_token.expose())?;
    let parsed: DeleteBody = serde_json::from_slice(&body)
        .map_err(|e| body_error(&entity, format!("expected {{\"ids\": [\"…\"]}}: {e}")))?;
    let report = delete_batch(&state.db, &entity, parsed.ids).await?;
    tracing::info!(
        entity,
        deleted = report.deleted,
        absent = report.absent.len(),
        "sync delete applied"
    );
    Ok(Json(report))
}

/// `POST /api/v1/banners`: staff post a stop-press banner.
pub async fn post_banner(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(axum::http::StatusCode, Json<crate::actions::banners::Posted>), HttpError> {
    require_token(&headers, state.config.api_token.expose())?;
    let input: crate::actions::banners::BannerInput =
        serde_json::from_slice(&body).map_err(|e| HttpError::BadRequest(format!("banner: {e}")))?;
    match crate::actions::banners::post(&state, input, "api", chrono::Utc::now()).await {
        Ok(p) => Ok((axum::http::StatusCode::CREATED, Json(p))),
        Err(crate::actions::banners::BannerError::Invalid(errs)) => Err(HttpError::BadRequest(
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
        )),
        Err(crate::actions::banners::BannerError::Store(e)) => Err(e.into()),
    }
}

/// `GET /api/v1/banners`: every banner with its audience.
pub async fn list_banners(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, HttpError> {
    require_token(&headers, state.config.api_token.expose())?;
    let rows = crate::store::banners::list_banners(&state.db).await?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|(b, clients)| {
                let mut v = serde_json::to_value(&b).unwrap_or_default();
                v["clients"] = serde_json::json!(clients);
                v
            })
            .collect(),
    )))
}

/// `DELETE /api/v1/banners/{id}`: retract a banner.
pub async fn retract_banner(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<axum::http::StatusCode, HttpError> {
    require_token(&headers, state.config.api_token.expose())?;
    if crate::actions::banners::retract(&state, id, chrono::Utc::now()).await? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(HttpError::NotFound)
    }
}

#[derive(Deserialize)]
pub struct ChangesQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/changes?after=SEQ&limit=N`: client actions in sequence order. Page by passing
/// the last `seq` seen as `after`; `next_after` is that value for the next call.
pub async fn list_changes(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<ChangesQuery>,
) -> Result<Json<Value>, HttpError> {
    require_token(&headers, state.config.api_token.expose())?;
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(HttpError::BadRequest("after: must be 0 or more".into()));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(HttpError::BadRequest("limit: must be from 1 to 1000".into()));
    }
    let rows = crate::store::changes::list_changes(&state.db, after, limit).await?;
    let next = rows.last().map(|r| r.seq).unwrap_or(after);
    Ok(Json(serde_json::json!({
        "changes": rows.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
        "next_after": next,
    })))
}

/// `POST /inbound/email`: one raw RFC 5322 message as the body (for MTAs that deliver over
/// HTTP). Bearer token: `inbound.token`, or the API token when that is empty.
pub async fn inbound_email(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(axum::http::StatusCode, Json<Value>), HttpError> {
    let token = if state.config.inbound.token.is_empty() {
        &state.config.api_token
    } else {
        &state.config.inbound.token
    };
    require_token(&headers, token.expose())?;
    use crate::channels::inbound::{InboundError, handle};
    match handle(&state, &body, chrono::Utc::now()).await {
        Ok(d) => Ok((
            axum::http::StatusCode::OK,
            Json(serde_json::to_value(d).unwrap_or_default()),
        )),
        Err(e @ InboundError::TooLarge { .. }) => Ok((
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            Json(serde_json::json!({"error": e.to_string()})),
        )),
        Err(e @ InboundError::Malformed(_)) => Err(HttpError::BadRequest(e.to_string())),
        Err(InboundError::Store(e)) => Err(e.into()),
        Err(e @ InboundError::Internal(_)) => Err(HttpError::unexpected(e)),
    }
}
