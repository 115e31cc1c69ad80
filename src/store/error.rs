//! What the store answers when it cannot do what was asked, mapped once from sqlx's errors.

use super::BUSY_TIMEOUT;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// A write met a row written at the same moment (a unique key). The text is the
    /// database's, naming tables and columns: for the log, not for people.
    #[error("a write collided with another: {0}")]
    Collision(String),
    /// A value no row can hold: PostgreSQL refuses a NUL character (U+0000) in text, even
    /// to compare with. What was sent is at fault, not the store.
    #[error("text holds a NUL character (U+0000), which cannot be stored or looked up")]
    Unstorable,
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
    /// The migrator's words are in the message, once (not also its source: an error chain
    /// would print them twice).
    #[error("migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("cannot open store {url}: {message}")]
    Open { url: String, message: String },
    /// The database holds tables and none of cport's migrations: another program's, named by
    /// mistake. Nothing is written into it.
    #[error(
        "the store at {url} holds tables that are not cport's ({tables}) and no record of cport's migrations; cport keeps a store of its own"
    )]
    Foreign { url: String, tables: String },
    /// A store that has not had every migration this cport knows (opened as it is).
    #[error("the store at {url} is older than this cport ({pending} migrations to apply)")]
    Older { url: String, pending: usize },
    /// A store migrated by a newer cport: this one does not know all it holds.
    #[error(
        "{url} was migrated by a newer cport (migration {version} is not one this cport knows); run that cport, or a copy of the store made for this one"
    )]
    Newer { url: String, version: i64 },
    /// The store held a statement longer than its caller could wait (a lock held elsewhere).
    #[error("the store did not answer within {0:?}")]
    Busy(std::time::Duration),
    /// The disk refused a write (full, failing, or not the service's to write): of the
    /// database, or of a file kept in `data_dir`. Nothing was recorded; worth trying again
    /// once the disk is put right.
    #[error("the disk refused a write: {0}")]
    Disk(String),
}

/// Whether the database's error is its disk's: SQLite's full (13) or I/O error (10, with its
/// extended codes), PostgreSQL's disk full (53100) or I/O error (58030).
pub(super) fn disk_error(code: &str) -> bool {
    // PostgreSQL's codes are five characters, SQLite's numbers below 10,000.
    matches!(code, "53100" | "58030") || code.parse::<u32>().is_ok_and(|n| n < 10_000 && (n == 13 || n & 0xff == 10))
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(ref d) if d.is_unique_violation() => StoreError::Collision(d.message().to_string()),
            // A record named by another was deleted by a write that committed after this one
            // checked it (PostgreSQL's writers run side by side): the two writes crossed, and
            // this one is worth sending again once it is known which stands.
            sqlx::Error::Database(ref d) if d.is_foreign_key_violation() => StoreError::Conflict(format!(
                "a record this write names was deleted by another write at the same time; send it again: {}",
                d.message()
            )),
            // SQLSTATE 22021, character_not_in_repertoire: a NUL in a bound text value.
            sqlx::Error::Database(ref d) if d.code().as_deref() == Some("22021") => StoreError::Unstorable,
            // Another writer held the store past the wait (SQLite's busy or locked, after
            // `BUSY_TIMEOUT`), or PostgreSQL gave up on a lock or broke a deadlock: worth
            // trying again, and said so (503), not an internal error.
            sqlx::Error::Database(ref d)
                if matches!(
                    d.code().as_deref(),
                    Some("5" | "6" | "261" | "262" | "517" | "773" | "55P03" | "40P01" | "40001")
                ) =>
            {
                StoreError::Busy(BUSY_TIMEOUT)
            }
            sqlx::Error::Database(ref d) if d.code().as_deref().is_some_and(disk_error) => {
                StoreError::Disk(d.message().to_string())
            }
            other => StoreError::Db(other),
        }
    }
}

impl StoreError {
    /// True when the database could not be reached at all (callers may ask to retry later).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Open { .. }
                | StoreError::Busy(_)
                | StoreError::Disk(_)
                | StoreError::Db(sqlx::Error::Io(_))
                | StoreError::Db(sqlx::Error::PoolTimedOut)
                | StoreError::Db(sqlx::Error::PoolClosed)
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

#[cfg(test)]
mod tests {
    use super::disk_error;

    #[test]
    fn a_full_or_failing_disk_is_told_from_other_errors() {
        // SQLite: full, an I/O error and two of its extended codes (a short read, the
        // shared-memory file's); PostgreSQL: disk full, I/O error.
        for code in ["13", "10", "266", "4874", "53100", "58030"] {
            assert!(disk_error(code), "{code}");
        }
        // Busy, a constraint, a unique key, PostgreSQL's unique violation and lock timeout.
        for code in ["5", "19", "2067", "23505", "55P03"] {
            assert!(!disk_error(code), "{code}");
        }
    }
}
