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
mod error;
pub mod guards;
pub mod inbound;
pub mod items;
pub mod jobs;
pub mod ledgers;
pub mod limits;
pub mod media;
mod open;
pub mod orders;
pub mod outbox;
pub mod records;
pub mod sessions;
pub mod settings;
pub mod staff;
pub mod values;
pub mod visuals;

pub use error::{Result, StoreError};
pub use open::{exists, sqlite_file, sqlite_url};

use std::time::Duration;

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

/// How long a SQLite statement waits for another writer before it gives up (busy).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows a SQLite read may run ahead of its reader (see `Db::connect`).
const ROW_BUFFER: usize = 1024;

/// A connection pool on one of the two engines.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// A SQLite store's pool, and the turn its writers take one at a time.
///
/// SQLite has one write lock. A writer waiting for it inside SQLite (its busy timeout) holds
/// a pool connection all the while, so enough of them held every connection, and the lock's
/// holder, reading on the pool before its commit (an inbound message's unit between two
/// commands), waited for a connection until they gave up as busy: every write failed and
/// nothing moved for the busy timeout, or longer. Writers of this process therefore queue
/// for their turn here, in order and holding nothing, and take a connection once it is
/// theirs; only another process's writer is waited for inside SQLite.
#[derive(Clone, Debug)]
pub struct SqliteDb {
    pool: SqlitePool,
    turn: std::sync::Arc<tokio::sync::Semaphore>,
}

/// One writer's turn at a SQLite store: the next waits until it is dropped.
pub type WriteTurn = tokio::sync::OwnedSemaphorePermit;

impl SqliteDb {
    pub(crate) fn new(pool: SqlitePool) -> SqliteDb {
        SqliteDb { pool, turn: std::sync::Arc::new(tokio::sync::Semaphore::new(1)) }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Waits for this process's writers before this one, as long as a statement waits for
    /// another process's (busy after that).
    pub async fn turn(&self) -> Result<WriteTurn> {
        match tokio::time::timeout(BUSY_TIMEOUT, self.turn.clone().acquire_owned()).await {
            Ok(Ok(turn)) => Ok(turn),
            // The semaphore is never closed; a timeout is the store busy with other writers.
            Ok(Err(_)) | Err(_) => Err(StoreError::Busy(BUSY_TIMEOUT)),
        }
    }
}

/// A transaction on one of the two engines (on SQLite, with its writer's turn).
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>, WriteTurn),
    Postgres(Transaction<'static, Postgres>),
}

/// Where a read runs: on the pool, or in a transaction the caller holds. A read both kinds
/// of caller need is written once, taking `impl Into<Conn>`: `&db` or `&mut tx`.
pub enum Conn<'a> {
    Db(&'a Db),
    Tx(&'a mut Tx),
}

impl Conn<'_> {
    /// What a write here waits for first: on a SQLite store's pool, the turn of this
    /// process's writers (see [`SqliteDb`]); a transaction has it already, and PostgreSQL
    /// needs none.
    pub async fn write_turn(&self) -> Result<Option<WriteTurn>> {
        match self {
            Conn::Db(db) => db.write_turn().await,
            Conn::Tx(_) => Ok(None),
        }
    }

    /// The same place again, for one more statement: a read of several statements runs each
    /// where the first ran.
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Db(db) => Conn::Db(db),
            Conn::Tx(tx) => Conn::Tx(tx),
        }
    }
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
            $crate::store::Db::Sqlite(s) => {
                let $c = s.pool();
                $body
            }
            $crate::store::Db::Postgres($c) => $body,
        }
    };
}

/// [`on_db!`] for a statement that writes: it runs once this process's writers before it have
/// gone (see [`Db::write_turn`]), and evaluates to `Result<_, StoreError>`.
#[macro_export]
macro_rules! on_db_write {
    ($db:expr, $c:ident => $body:expr) => {
        match $db.write_turn().await {
            Ok(_turn) => $crate::on_db!($db, $c => $body).map_err($crate::store::StoreError::from),
            Err(e) => Err(e),
        }
    };
}

/// Runs `$body` with `$c` bound to the transaction's connection, once per engine.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t, _) => {
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
/// `execute!(tx => SQL, a, b)` (or `db =>`), on the pool after its writer's turn
/// ([`Conn::write_turn`]). Evaluates to `Result<u64, StoreError>`, the number of rows it
/// changed (an update that found nothing to change is 0, not an error).
#[macro_export]
macro_rules! execute {
    ($conn:expr => $sql:expr $(, $arg:expr)* $(,)?) => {{
        let conn: $crate::store::Conn<'_> = $conn.into();
        match conn.write_turn().await {
            Ok(_turn) => $crate::on_conn!(conn, c => $crate::bind!(sqlx::query($sql) $(, $arg)*)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
                .map_err($crate::store::StoreError::from)),
            Err(e) => Err(e),
        }
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

pub use crate::{bind, execute, fetch_in, on_conn, on_db, on_db_write, on_tx};

impl Db {
    /// What a statement that writes on the pool waits for first: on SQLite, the turn of this
    /// process's writers (see [`SqliteDb`]); on PostgreSQL, nothing.
    pub async fn write_turn(&self) -> Result<Option<WriteTurn>> {
        match self {
            Db::Sqlite(s) => s.turn().await.map(Some),
            Db::Postgres(_) => Ok(None),
        }
    }

    /// How many connections the pool opens at most.
    pub fn max_connections(&self) -> u32 {
        match self {
            Db::Sqlite(s) => s.pool.options().get_max_connections(),
            Db::Postgres(p) => p.options().get_max_connections(),
        }
    }

    pub fn engine(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (BEGIN
    /// IMMEDIATE): a deferred transaction that reads first and writes later fails outright
    /// when another writer committed in between, instead of waiting its turn.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(s) => {
                let turn = s.turn().await?;
                Tx::Sqlite(s.pool.begin_with("BEGIN IMMEDIATE").await?, turn)
            }
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
        // SQLite: the log is folded into the file and emptied first, so the file alone is the
        // whole store once closed. The last connection's close does it too, but only when it
        // is the last anywhere and the close is not cut short. Another process busy on the
        // store is waited for a second at most; then the log stays, as it safely may.
        if let Db::Sqlite(s) = self
            && let Ok(mut c) = s.pool.acquire().await
        {
            let _ = sqlx::query("PRAGMA busy_timeout = 1000").execute(&mut *c).await;
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *c).await;
        }
        on_db!(self, p => p.close().await)
    }

    /// Size of the store on disk in bytes (SQLite file + WAL, or the PostgreSQL database).
    pub async fn size_bytes(&self) -> Result<i64> {
        match self {
            Db::Sqlite(s) => {
                let (pages, size): (i64, i64) = sqlx::query_as(
                    "SELECT (SELECT page_count FROM pragma_page_count()), (SELECT page_size FROM pragma_page_size())",
                )
                .fetch_one(&s.pool)
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
            Tx::Sqlite(t, _turn) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(t, _turn) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}

/// A LIKE pattern (for `LOWER(column) LIKE LOWER($n) ESCAPE '\'`) that matches text holding
/// `text` in any case. LIKE's own wildcards in it are escaped, so `%` finds a percent sign, and
/// it is cut to [`crate::model::SEARCH_MAX`] characters (every search refuses a longer one
/// first): a search is a few words, and SQLite refuses patterns over
/// 50,000 bytes as "too complex". Both sides are lowered by the engine, never one by Rust:
/// SQLite's LOWER folds only A-Z, and a pattern lowered further (`É` → `é`) would then miss
/// the very text it was typed from.
pub fn contains_pattern(text: &str) -> String {
    let text: String = text.trim().chars().take(crate::model::SEARCH_MAX).collect();
    format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// `'a', 'b'`: states for an SQL `IN (…)` list, spelled by the type that owns them (so a rule
/// such as "a job is open" lives in the model once). The names are fixed snake_case words:
/// nothing in them needs escaping.
pub fn state_list<T: Copy + std::fmt::Display>(states: &[T]) -> String {
    states.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
}

/// `$1, $2, …, $n` starting at `from`, for IN lists.
pub fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}
