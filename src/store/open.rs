//! Opening a store: its address, the pool on either engine, telling another program's
//! database from cport's before anything is written, and the migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{BUSY_TIMEOUT, Db, ROW_BUFFER, Result, StoreError, guards, on_db};

/// Whether the store a URL names is there: a SQLite file that does not exist, or is empty, is not
/// (connecting would make a new, empty one). A PostgreSQL database is asked for when
/// connecting, and a URL that cannot be read is reported by [`Db::connect`].
pub fn exists(url: &str) -> bool {
    if !url.starts_with("sqlite:") {
        return true;
    }
    SqliteConnectOptions::from_str(url).map_or(true, |o| {
        let file = o.get_filename();
        // An empty file (made by `touch`, or a store's creation cut short) holds no store.
        file.as_os_str() == ":memory:" || std::fs::metadata(file).is_ok_and(|m| m.len() > 0)
    })
}

/// The `sqlite://` address of a store file: `%`, `?` and `#` in the path are escaped (the
/// address reader takes them for escapes, options and a fragment). None for a path that is
/// not UTF-8 text, which no address can hold.
pub fn sqlite_url(path: &std::path::Path) -> Option<String> {
    const SPECIAL: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%').add(b'?').add(b'#');
    Some(format!("sqlite://{}", percent_encoding::utf8_percent_encode(path.to_str()?, SPECIAL)))
}

/// The tables of a SQLite store, its own bookkeeping left out.
const SQLITE_TABLES: &str =
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";

/// The tables of a PostgreSQL store (those of the schema cport works in).
const PG_TABLES: &str =
    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1";

/// Refuses a database whose tables are some, and no record of cport's migrations among them:
/// another program's database, checked when it is opened and before anything is written.
fn foreign(url: &str, tables: &[String]) -> Result<()> {
    if tables.is_empty() || tables.iter().any(|t| t == "_sqlx_migrations") {
        return Ok(());
    }
    let mut named = tables.iter().take(3).map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ");
    if tables.len() > 3 {
        named.push_str(&format!(" and {} more", tables.len() - 3));
    }
    Err(StoreError::Foreign { url: crate::config::mask_url_password(url), tables: named })
}

impl Db {
    /// Opens the pool. A SQLite file (and its folder) is created when missing.
    pub async fn connect(url: &str) -> Result<Db> {
        let open_err = |e: &dyn std::fmt::Display| StoreError::Open {
            url: crate::config::mask_url_password(url),
            message: e.to_string(),
        };
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| open_err(&e))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(BUSY_TIMEOUT)
                // sqlx hands rows from the connection's worker thread to the task through a
                // channel of this many; at its default (50) a large read wakes the task and
                // parks the worker every few rows. A scan over the whole store reads 60,000:
                // 1.0 s at 50, 0.65 s at 1,024, 0.75-1.1 s at 8,192 (scripts/bench-items).
                .row_buffer_size(ROW_BUFFER);
            // Another program's database named by mistake is left as it was: looked at
            // read-only before anything (WAL mode is written into the file) is set on it.
            let file = opts.get_filename();
            if std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.len() > 0) {
                use sqlx::{ConnectOptions, Connection};
                let look = SqliteConnectOptions::new().filename(file).read_only(true).busy_timeout(BUSY_TIMEOUT);
                let mut c = look.connect().await.map_err(|e| open_err(&e))?;
                let tables = sqlx::query_scalar(SQLITE_TABLES).fetch_all(&mut c).await.map_err(|e| open_err(&e))?;
                let _ = c.close().await;
                foreign(url, &tables)?;
            }
            if let Some(parent) = file.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| open_err(&e))?;
            }
            // No ping before each use: a connection to a local file cannot have gone stale,
            // and sqlx's ping is one more hop to the connection's worker thread on every query.
            let pool = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await
                .map_err(|e| open_err(&e))?;
            Ok(Db::Sqlite(pool))
        } else {
            let opts = PgConnectOptions::from_str(url).map_err(|e| open_err(&e))?;
            // A server that is down should be reported soon (the MTA pipe then asks for a
            // retry), not after the pool's whole acquire timeout, and by what the server or
            // the network said ("connection refused", a wrong password): the pool only retries
            // until its time is up.
            use sqlx::Connection;
            let first = tokio::time::timeout(Duration::from_secs(8), sqlx::PgConnection::connect_with(&opts))
                .await
                .map_err(|_| open_err(&"no answer within 8 seconds"))?
                .map_err(|e| open_err(&e))?;
            let mut first = first;
            let tables = sqlx::query_scalar(PG_TABLES).fetch_all(&mut first).await.map_err(|e| open_err(&e))?;
            let _ = first.close().await;
            foreign(url, &tables)?;
            let pool = tokio::time::timeout(
                Duration::from_secs(8),
                PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(30)).connect_with(opts),
            )
            .await
            .map_err(|_| open_err(&"no answer within 8 seconds"))?
            .map_err(|e| open_err(&e))?;
            Ok(Db::Postgres(pool))
        }
    }

    /// Applies every pending migration of this engine (append-only files under `migrations/`),
    /// then puts the state guards in place ([`guards`]).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(p) => sqlx::migrate!("migrations/sqlite").run(p).await?,
            Db::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await?,
        }
        guards::install(self, guards::GUARDED).await
    }

    /// How many of this build's migrations the store has not had.
    pub async fn pending_migrations(&self) -> Result<usize> {
        let (migrator, tables_sql) = match self {
            Db::Sqlite(_) => (sqlx::migrate!("migrations/sqlite"), SQLITE_TABLES),
            Db::Postgres(_) => (sqlx::migrate!("migrations/postgres"), PG_TABLES),
        };
        let tables: Vec<String> = on_db!(self, p => sqlx::query_scalar(tables_sql).fetch_all(p).await)?;
        if !tables.iter().any(|t| t == "_sqlx_migrations") {
            return Ok(migrator.iter().count());
        }
        let applied: Vec<i64> = on_db!(self, p => sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success").fetch_all(p).await)?;
        Ok(migrator.iter().filter(|m| !applied.contains(&m.version)).count())
    }
}
