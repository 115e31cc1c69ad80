//! How the sync engine's errors answer over HTTP: through the one HTTP error type.

use super::SyncError;
use crate::web::HttpError;

impl From<SyncError> for HttpError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Invalid(errs) => HttpError::InvalidRecords(errs),
            e @ SyncError::UnknownEntity(_) => HttpError::BadRequest(e.to_string()),
            SyncError::Store(s) => s.into(),
        }
    }
}
