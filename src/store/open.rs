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
        crate::config::sqlite_in_memory(url) || std::fs::metadata(file).is_ok_and(|m| m.len() > 0)
    })
}

/// The file of a SQLite store's address (`None` for PostgreSQL, or an address that cannot
/// be read).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") || crate::config::sqlite_in_memory(url) {
        return None;
    }
    SqliteConnectOptions::from_str(url).ok().map(|o| o.get_filename().to_path_buf())
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

/// What a database holds, looked at before anything is written to it: its tables, and the
/// migrations recorded as applied.
struct Look {
    tables: Vec<String>,
    applied: Vec<i64>,
}

impl Look {
    /// Versions of this build's migrations for the engine: the same numbers on both.
    fn known() -> Vec<i64> {
        sqlx::migrate!("migrations/sqlite").iter().map(|m| m.version).collect()
    }

    /// Refuses a database that holds tables and no record of cport's first migration:
    /// another program's (one that keeps its own `_sqlx_migrations` too).
    fn refuse_foreign(&self, url: &str) -> Result<()> {
        let first = Self::known().first().copied();
        if self.tables.is_empty() || first.is_some_and(|f| self.applied.contains(&f)) {
            return Ok(());
        }
        let mut named = self.tables.iter().take(3).map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ");
        if self.tables.len() > 3 {
            named.push_str(&format!(" and {} more", self.tables.len() - 3));
        }
        Err(StoreError::Foreign { url: crate::config::mask_url_password(url), tables: named })
    }

    /// Refuses a store migrated by a newer cport: a migration recorded that this build does
    /// not have (sqlx would say only that one "is missing").
    fn refuse_newer(&self, url: &str) -> Result<()> {
        let known = Self::known();
        match self.applied.iter().find(|v| !known.contains(v)) {
            Some(v) => Err(StoreError::Newer { url: crate::config::mask_url_password(url), version: *v }),
            None => Ok(()),
        }
    }

    fn pending(&self) -> usize {
        Self::known().iter().filter(|v| !self.applied.contains(v)).count()
    }
}

/// The look at a database, through one connection that changes nothing: read-only for a
/// SQLite file (a pool would write WAL mode into its header first), the first connection for
/// PostgreSQL (which also reports a server that is down or a wrong password soon, by its own
/// words). A SQLite file that is not there, or empty, holds nothing.
async fn look(url: &str) -> Result<Look> {
    use sqlx::{ConnectOptions, Connection};
    let open_err = |e: &dyn std::fmt::Display| open_error(url, e);
    // The same two reads through either engine's connection type (sqlx types them apart).
    macro_rules! read {
        ($c:expr, $tables:expr) => {{
            let tables: Vec<String> =
                sqlx::query_scalar($tables).fetch_all(&mut $c).await.map_err(|e| refused(url, &e))?;
            let applied = if tables.iter().any(|t| t == "_sqlx_migrations") {
                sqlx::query_scalar(APPLIED).fetch_all(&mut $c).await.map_err(|e| refused(url, &e))?
            } else {
                vec![]
            };
            let _ = $c.close().await;
            Look { tables, applied }
        }};
    }
    if url.starts_with("sqlite:") {
        let file = SqliteConnectOptions::from_str(url).map_err(|e| open_err(&e))?.get_filename().to_path_buf();
        if !std::fs::metadata(&file).is_ok_and(|m| m.is_file() && m.len() > 0) {
            return Ok(Look { tables: vec![], applied: vec![] });
        }
        let options = SqliteConnectOptions::new().filename(&file).read_only(true).busy_timeout(BUSY_TIMEOUT);
        let mut c = options.connect().await.map_err(|e| refused(url, &e))?;
        Ok(read!(c, SQLITE_TABLES))
    } else {
        let opts = PgConnectOptions::from_str(url).map_err(|e| open_err(&e))?;
        // The connection and both reads within one bound: a server that takes the connection
        // and then never answers is reported, not waited on.
        let looked = async {
            let mut c = sqlx::PgConnection::connect_with(&opts).await.map_err(|e| open_err(&e))?;
            Ok(read!(c, PG_TABLES))
        };
        tokio::time::timeout(Duration::from_secs(8), looked)
            .await
            .map_err(|_| open_err(&"no answer within 8 seconds"))?
    }
}

/// Why a store could not be opened, its URL's password masked.
fn open_error(url: &str, e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Open { url: crate::config::mask_url_password(url), message: e.to_string() }
}

/// [`open_error`] for the database's own refusal. SQLite's words for a file it cannot use
/// are terse ("unable to open database file"): the usual causes are said beside its code.
fn refused(url: &str, e: &sqlx::Error) -> StoreError {
    match sqlite_cause(e).filter(|_| url.starts_with("sqlite:")) {
        Some((code, cause)) => open_error(url, &format!("{cause} (SQLite code {code})")),
        None => open_error(url, e),
    }
}

/// The cause behind a SQLite result code met when opening: the primary code is the low byte
/// of an extended one (1544, a read-only folder, is 8 with 6 << 8).
fn sqlite_cause(e: &sqlx::Error) -> Option<(i32, &'static str)> {
    let sqlx::Error::Database(d) = e else { return None };
    let code: i32 = d.code()?.parse().ok()?;
    let cause = match code & 0xff {
        8 => "the file or its folder is read-only; cport writes both (a store keeps -wal and -shm files beside it)",
        11 => "the file is damaged (SQLite finds it malformed); restore it from a backup",
        14 => {
            "the file cannot be opened or made: check that the path names a file, not a folder, and that cport may write in its folder"
        }
        26 => "the file is not a SQLite database",
        _ => return None,
    };
    Some((code, cause))
}

/// The migrations a store records as applied.
const APPLIED: &str = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";

/// [`look`], refusing another program's database and a store a newer cport migrated.
async fn checked_look(url: &str) -> Result<Look> {
    let seen = look(url).await?;
    seen.refuse_foreign(url)?;
    seen.refuse_newer(url)?;
    Ok(seen)
}

impl Db {
    /// Opens the pool. A SQLite file (and its folder) is created when missing; another
    /// program's database, or a store a newer cport migrated, is refused before anything is
    /// written to it.
    pub async fn connect(url: &str) -> Result<Db> {
        checked_look(url).await?;
        Self::pool(url).await
    }

    /// Opens a store as it is, for a command that only reads or adds to one: refused, before
    /// anything is written to it, when it is another program's, older than this cport (it
    /// would want migrating under a `cport serve` still running on it) or newer.
    pub async fn connect_as_is(url: &str) -> Result<Db> {
        let seen = checked_look(url).await?;
        // Only now is the pool opened (it sets WAL mode, written into a SQLite file).
        match seen.pending() {
            0 => Self::pool(url).await,
            pending => Err(StoreError::Older { url: crate::config::mask_url_password(url), pending }),
        }
    }

    async fn pool(url: &str) -> Result<Db> {
        let open_err = |e: &dyn std::fmt::Display| open_error(url, e);
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
            // A missing folder is made (a new install's `data/`), and said: a mistyped path
            // would otherwise leave a store where nobody looks, without a word.
            if let Some(parent) = opts.get_filename().parent()
                && !parent.as_os_str().is_empty()
                && !parent.exists()
            {
                std::fs::create_dir_all(parent).map_err(|e| open_err(&e))?;
                tracing::info!(folder = %crate::model::path_shown(parent), "made the store's folder, which did not exist");
            }
            // A new store is its owner's alone (0600, whatever the umask): it holds every
            // message's text, sign-in links among them. SQLite gives its -wal and -shm files
            // the store's own mode. One that exists keeps the mode it has.
            if !crate::config::sqlite_in_memory(url) {
                use std::os::unix::fs::OpenOptionsExt;
                let made =
                    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(opts.get_filename());
                match made {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(open_err(&e)),
                }
            }
            // No ping before each use: a connection to a local file cannot have gone stale,
            // and sqlx's ping is one more hop to the connection's worker thread on every query.
            let pool = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await
                .map_err(|e| refused(url, &e))?;
            Ok(Db::Sqlite(super::SqliteDb::new(pool)))
        } else {
            let opts = PgConnectOptions::from_str(url).map_err(|e| open_err(&e))?;
            let pool = tokio::time::timeout(
                Duration::from_secs(8),
                // A request waits 10 s for a connection at most: with the server down (every
                // new connection refused) it is told 503 then, not after half a minute.
                PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect_with(opts),
            )
            .await
            .map_err(|_| open_err(&"no answer within 8 seconds"))?
            .map_err(|e| open_err(&e))?;
            Ok(Db::Postgres(pool))
        }
    }

    /// Why the store cannot be reached, in the server's or the network's own words: a pool
    /// that timed out says only that, so one connection is tried on its own (within 3 s).
    /// `None` when that connection is made (the pool was only busy).
    pub async fn why_unreachable(&self) -> Option<String> {
        use sqlx::ConnectOptions;
        let tried = on_db!(self, p => {
            tokio::time::timeout(Duration::from_secs(3), p.connect_options().connect()).await.map(|r| r.map(drop))
        });
        match tried {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("no answer to a new connection within 3 seconds".into()),
        }
    }

    /// How many migrations the store records as applied (none on a new store).
    pub async fn applied_migrations(&self) -> Result<i64> {
        let has = on_db!(self, p => sqlx::query_scalar::<_, String>(match self {
            Db::Sqlite(_) => SQLITE_TABLES,
            Db::Postgres(_) => PG_TABLES,
        }).fetch_all(p).await)?;
        if !has.iter().any(|t| t == "_sqlx_migrations") {
            return Ok(0);
        }
        Ok(on_db!(self, p => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(p).await)?)
    }

    /// Applies every pending migration of this engine (append-only files under `migrations/`),
    /// then puts the state guards in place ([`guards`]). (A store a newer cport migrated was
    /// refused by [`Db::connect`].)
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(s) => sqlx::migrate!("migrations/sqlite").run(s.pool()).await?,
            Db::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await?,
        }
        guards::install(self, guards::GUARDED).await
    }
}
