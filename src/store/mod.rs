//! The store: one sqlx pool on SQLite or PostgreSQL. Nothing outside this module writes SQL.
//!
//! Queries are written once with `$1` placeholders (both engines accept them) and run on
//! whichever engine is configured through the `on_db!` / `on_tx!` macros, which expand the
//! same code for each pool type so sqlx's per-engine types are checked for both.

pub mod access;
pub mod banners;
pub mod changes;
pub mod chat;
pub mod console;
pub mod contacts;
pub mod enquiries;
pub mod guards;
pub mod inbound;
pub mod items;
pub mod jobs;
pub mod ledgers;
pub mod limits;
pub mod media;
pub mod orders;
pub mod outbox;
pub mod records;
pub mod sessions;
pub mod settings;
pub mod staff;
pub mod values;
pub mod visuals;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

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
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot open store {url}: {message}")]
    Open { url: String, message: String },
    /// The database holds tables and none of cport's migrations: another program's, named by
    /// mistake. Nothing is written into it.
    #[error(
        "the store at {url} holds tables that are not cport's ({tables}) and no record of cport's migrations; cport keeps a store of its own"
    )]
    Foreign { url: String, tables: String },
    /// The store held a statement longer than its caller could wait (a lock held elsewhere).
    #[error("the store did not answer within {0:?}")]
    Busy(std::time::Duration),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(ref d) if d.is_unique_violation() => StoreError::Collision(d.message().to_string()),
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
                | StoreError::Db(sqlx::Error::Io(_))
                | StoreError::Db(sqlx::Error::PoolTimedOut)
                | StoreError::Db(sqlx::Error::PoolClosed)
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long a SQLite statement waits for another writer before it gives up (busy).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows a SQLite read may run ahead of its reader (see `Db::connect`).
const ROW_BUFFER: usize = 1024;

/// A connection pool on one of the two engines.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction on one of the two engines.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Where a read runs: on the pool, or in a transaction the caller holds. A read both kinds
/// of caller need is written once, taking `impl Into<Conn>`: `&db` or `&mut tx`.
pub enum Conn<'a> {
    Db(&'a Db),
    Tx(&'a mut Tx),
}

impl<'a> From<&'a Db> for Conn<'a> {
    fn from(db: &'a Db) -> Self {
        Conn::Db(db)
    }
}

impl<'a> From<&'a mut Tx> for Conn<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        Conn::Tx(tx)
    }
}

/// Locks the row a `SELECT … FOR UPDATE` names until the transaction ends. PostgreSQL only:
/// a SQLite write transaction (`BEGIN IMMEDIATE`) already excludes every other writer.
pub(crate) async fn lock_row<K>(tx: &mut Tx, select_for_update: &'static str, key: K) -> Result<()>
where
    K: 'static + Send + sqlx::Encode<'static, Postgres> + sqlx::Type<Postgres>,
{
    if let Tx::Postgres(t) = tx {
        bind!(sqlx::query(select_for_update), key).fetch_optional(&mut **t).await?;
    }
    Ok(())
}

/// Makes the transactions that name the same `what` run one at a time on PostgreSQL (a lock
/// held until the transaction ends); a SQLite write transaction already excludes every other
/// writer. For a check with no row to lock, such as "is the same post there already?".
pub(crate) async fn one_at_a_time(tx: &mut Tx, what: &'static str) -> Result<()> {
    if let Tx::Postgres(t) = tx {
        bind!(sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))"), what).execute(&mut **t).await?;
    }
    Ok(())
}

/// A row type both engines can read.
pub trait Row:
    for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin
{
}

impl<T> Row for T where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin
{
}

/// Every row `sql` reads for one key, its `$1`: the lines of one job, the decisions on one
/// visual, the baskets of one contact.
pub(crate) async fn rows_for<T: Row>(db: &Db, sql: &str, key: &str) -> Result<Vec<T>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, T>(sql).bind(key).fetch_all(p).await)?)
}

/// Runs `$body` with `$c` bound to the pool, once per engine.
#[macro_export]
macro_rules! on_db {
    ($db:expr, $c:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($c) => $body,
            $crate::store::Db::Postgres($c) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the transaction's connection, once per engine.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

/// Runs `$body` with `$c` bound to a [`Conn`]'s pool or transaction, once per engine and kind.
#[macro_export]
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::store::Conn::Db(db) => $crate::on_db!(db, $c => $body),
            $crate::store::Conn::Tx(tx) => $crate::on_tx!(tx, $c => $body),
        }
    };
}

/// `$query` with each argument bound in turn: `bind!(sqlx::query(SQL), a, b)` is
/// `sqlx::query(SQL).bind(a).bind(b)`. Used inside `on_db!`/`on_tx!`, so it expands per engine.
#[macro_export]
macro_rules! bind {
    ($query:expr $(, $arg:expr)* $(,)?) => {
        $query$(.bind($arg))*
    };
}

/// Runs one statement with its arguments bound, on the pool or in a transaction:
/// `execute!(tx => SQL, a, b)` (or `db =>`). Evaluates to `Result<u64, sqlx::Error>`, the
/// number of rows it changed (an update that found nothing to change is 0, not an error).
#[macro_export]
macro_rules! execute {
    ($conn:expr => $sql:expr $(, $arg:expr)* $(,)?) => {{
        let conn: $crate::store::Conn<'_> = $conn.into();
        $crate::on_conn!(conn, c => $crate::bind!(sqlx::query($sql) $(, $arg)*)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
    }};
}

/// Keys one `IN (…)` list names at most (kept small for the reason given at
/// `records::PARAMS_PER_STATEMENT`).
pub const IN_CHUNK: usize = 250;

/// Rows of `$sql` for every key of `$keys`, on a pool (`on_db`) or a transaction (`on_tx`):
/// `{in}` in the SQL stands for a list of placeholders, filled [`IN_CHUNK`] keys at a time.
/// Evaluates to `Result<Vec<Row>>`.
///
/// With `once` last, the statements are not kept prepared, for lookups into tables that the
/// same transaction is filling (an import, a sync batch): PostgreSQL then plans each for its
/// arguments and the table's current size. A kept one gets a generic plan after five runs,
/// and one made while a table was nearly empty (a sequential scan) stays as the table
/// fills, each lookup then reading all of it: an import at scale S took 100 s instead of 25
/// that way.
#[macro_export]
macro_rules! fetch_in {
    ($on:ident, $conn:expr, $sql:expr, $keys:expr) => {
        $crate::fetch_in!($on, $conn, $sql, $keys, true)
    };
    ($on:ident, $conn:expr, $sql:expr, $keys:expr, once) => {
        $crate::fetch_in!($on, $conn, $sql, $keys, false)
    };
    ($on:ident, $conn:expr, $sql:expr, $keys:expr, $keep:expr) => {{
        let mut rows = Vec::new();
        let mut failed = None;
        for chunk in $keys.chunks($crate::store::IN_CHUNK) {
            let sql = $sql.replace("{in}", &$crate::store::placeholders(1, chunk.len()));
            let got = $crate::$on!($conn, c => {
                let mut q = sqlx::query_as(&sql).persistent($keep);
                for k in chunk {
                    q = q.bind(*k);
                }
                q.fetch_all(c).await
            });
            match got {
                Ok(r) => rows.extend(r),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        match failed {
            Some(e) => Err($crate::store::StoreError::from(e)),
            None => Ok(rows),
        }
    }};
}

pub use crate::{bind, execute, fetch_in, on_conn, on_db, on_tx};

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

    pub fn engine(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
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

    /// Starts a write transaction. On SQLite it takes the write lock at once (BEGIN
    /// IMMEDIATE): a deferred transaction that reads first and writes later fails outright
    /// when another writer committed in between, instead of waiting its turn.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// Runs `work` in a transaction of its own: committed when it succeeds, rolled back when
    /// it fails.
    pub async fn in_transaction<T, E: From<StoreError>>(
        &self,
        work: impl AsyncFnOnce(&mut Tx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut tx = self.begin().await?;
        match work(&mut tx).await {
            Ok(v) => {
                tx.commit().await?;
                Ok(v)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    /// Fails when the store takes no writes: a SQLite file (or its folder) the user cport runs
    /// as may not write, which SQLite then opens read-only without a word, or a PostgreSQL
    /// server in read-only mode. Checked at start: every pass would fail on such a store
    /// while the process looked healthy.
    pub async fn check_writable(&self) -> Result<()> {
        match self {
            Db::Sqlite(_) => {
                let mut tx = self.begin().await?;
                execute!(&mut tx => "UPDATE client_versions SET version = version WHERE 1 = 0")?;
                tx.rollback().await
            }
            Db::Postgres(p) => {
                let read_only: String = sqlx::query_scalar("SHOW transaction_read_only").fetch_one(p).await?;
                match read_only.as_str() {
                    "off" => Ok(()),
                    _ => Err(StoreError::Db(sqlx::Error::Protocol(
                        "the server takes no writes (transaction_read_only)".into(),
                    ))),
                }
            }
        }
    }

    pub async fn ping(&self) -> Result<()> {
        on_db!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_db!(self, p => p.close().await)
    }

    /// Size of the store on disk in bytes (SQLite file + WAL, or the PostgreSQL database).
    pub async fn size_bytes(&self) -> Result<i64> {
        match self {
            Db::Sqlite(p) => {
                let (pages, size): (i64, i64) = sqlx::query_as(
                    "SELECT (SELECT page_count FROM pragma_page_count()), (SELECT page_size FROM pragma_page_size())",
                )
                .fetch_one(p)
                .await?;
                Ok(pages * size)
            }
            Db::Postgres(p) => {
                let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(p).await?;
                Ok(size)
            }
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}

/// `$1, $2, …, $n` starting at `from`, for IN lists.
/// A LIKE pattern (for `LOWER(column) LIKE $n ESCAPE '\'`) that matches text holding
/// `text` in any case. LIKE's own wildcards in it are escaped, so `%` finds a percent sign, and
/// it is cut to 200 characters: a search is a few words, and SQLite refuses patterns over
/// 50,000 bytes as "too complex".
pub fn contains_pattern(text: &str) -> String {
    let text: String = text.trim().to_lowercase().chars().take(200).collect();
    format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// `'a', 'b'`: states for an SQL `IN (…)` list, spelled by the type that owns them (so a rule
/// such as "a job is open" lives in the model once). The names are fixed snake_case words:
/// nothing in them needs escaping.
pub fn state_list<T: Copy + std::fmt::Display>(states: &[T]) -> String {
    states.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
}

pub fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}
