//! The sync API's error type for its HTTP handlers: user-facing variants with fixed status codes, plus
//! `Unexpected`, whose details are logged and never shown.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{RecordError, SyncError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid records")]
    Invalid(Vec<RecordError>),
    #[error("{0}")]
    Conflict(String),
    #[error("the service is not available right now")]
    Unavailable,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Conflict(m) => AppError::Conflict(m),
            e if e.is_unavailable() => {
                tracing::error!(error = %e, "store unavailable");
                AppError::Unavailable
            }
            e => AppError::Unexpected(e.into()),
        }
    }
}

impl From<SyncError> for AppError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Invalid(errs) => AppError::Invalid(errs),
            e @ SyncError::UnknownEntity(_) => AppError::NotFound.with_hint(e.to_string()),
            SyncError::Store(s) => s.into(),
        }
    }
}

impl AppError {
    fn with_hint(self, hint: String) -> AppError {
        match self {
            AppError::NotFound => AppError::BadRequest(hint),
            other => other,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            AppError::Invalid(errs) => json!({
                "error": format!("{} invalid record(s); nothing was written", errs.len()),
                "errors": errs,
            }),
            AppError::Unexpected(e) => {
                tracing::error!(error = ?e, "unexpected error");
                json!({ "error": "internal error; it has been logged" })
            }
            other => json!({ "error": other.to_string() }),
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
