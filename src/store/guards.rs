//! The columns that hold a state keep to the names of its type. cport writes only those,
//! but a hand edit of the store could write any text, and a row holding a name no type
//! knows cannot be read: every pass that reads it (a digest run, the alert scan, a page)
//! would then fail for every contact, not for that row alone. So the database itself
//! refuses such a write: SQLite naming the table, the column and the names it takes,
//! PostgreSQL the table and the constraint (`known_<table>_<column>_…`).
//!
//! The guards are made from the types' name lists ([`GUARDED`]) when the store is opened
//! for migration, not written into a migration file: a new state name needs no migration,
//! and the list cannot drift from the type. Each guard's name carries a fingerprint of its
//! list; one whose list changed is replaced, one that is current is left alone (no lock is
//! taken on a table at an ordinary start). Rows written before a guard existed are not
//! re-checked (PostgreSQL's `NOT VALID`; SQLite's triggers see only new writes), so an
//! upgrade never fails on old data. On SQLite the tables TOT's records fill in bulk guard
//! their updates only ([`Guard::bulk`]).

use sha2::{Digest, Sha256};

use super::{Db, Result, Tx, bind, on_db, on_tx};
use crate::model::{
    AccessStatus, AlertMode, Channel, Chat, DeliveryInstructions, DeliveryStatus, InboundOutcome, JobStatus,
    MessageKind, OutboxStatus, Outlet, PoStatus, Role, Severity, VisualStatus,
};

/// One guarded column: its table, its name, and the names it may hold.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    pub table: &'static str,
    pub column: &'static str,
    pub names: &'static [&'static str],
    /// A table TOT's records fill in bulk (an import writes 200,000 jobs): on SQLite only
    /// its updates are guarded. A trigger fired on every insert costs about 3 µs a row (a
    /// million rows into a table with two: 0.29 s without, 6.0 s with, sqlite3 3.40), and
    /// these rows arrive through the sync API's checks; a hand edit is an update.
    pub bulk: bool,
}

const fn guard(table: &'static str, column: &'static str, names: &'static [&'static str]) -> Guard {
    Guard { table, column, names, bulk: false }
}

const fn bulk(table: &'static str, column: &'static str, names: &'static [&'static str]) -> Guard {
    Guard { table, column, names, bulk: true }
}

/// Every column read back as a state type (a NULL, where the column allows one, passes).
pub const GUARDED: &[Guard] = &[
    guard("contacts", "role", Role::NAMES),
    bulk("jobs", "status", JobStatus::NAMES),
    bulk("jobs", "delivery_instructions", DeliveryInstructions::NAMES),
    bulk("visuals", "status", VisualStatus::NAMES),
    guard("visual_decisions", "decision", VisualStatus::NAMES),
    guard("visual_decisions", "channel", Channel::NAMES),
    bulk("deliveries", "status", DeliveryStatus::NAMES),
    bulk("purchase_orders", "status", PoStatus::NAMES),
    guard("banners", "severity", Severity::NAMES),
    guard("outbox", "channel", Outlet::NAMES),
    guard("outbox", "kind", MessageKind::NAMES),
    guard("outbox", "status", OutboxStatus::NAMES),
    guard("chat_links", "channel", Chat::NAMES),
    guard("access_requests", "status", AccessStatus::NAMES),
    guard("inbound_messages", "disposition", InboundOutcome::NAMES),
    guard("contact_settings", "mode_visual_approval", AlertMode::NAMES),
    guard("contact_settings", "mode_delivery_instructions", AlertMode::NAMES),
    guard("contact_settings", "mode_third_party_po", AlertMode::NAMES),
    guard("contact_settings", "mode_awaiting_art", AlertMode::NAMES),
];

impl Guard {
    /// What every guard of this column is named by, whatever its list.
    fn prefix(&self) -> String {
        format!("known_{}_{}_", self.table, self.column)
    }

    /// This list's guard name: the prefix and a fingerprint of the names.
    fn name(&self) -> String {
        let digest = Sha256::digest(self.names.join(",").as_bytes());
        let fingerprint: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("{}{fingerprint}", self.prefix())
    }

    /// The names as an SQL list of strings (they are the types' own snake_case names; a quote
    /// would still be doubled).
    fn sql_list(&self) -> String {
        self.names.iter().map(|n| format!("'{}'", n.replace('\'', "''"))).collect::<Vec<_>>().join(", ")
    }

    /// The names of what makes this guard: on SQLite a trigger for inserts (`_i`, not on
    /// a bulk table) and one for updates (`_u`); on PostgreSQL one CHECK constraint.
    pub fn objects(&self, sqlite: bool) -> Vec<String> {
        let name = self.name();
        match (sqlite, self.bulk) {
            (false, _) => vec![name],
            (true, true) => vec![format!("{name}_u")],
            (true, false) => vec![format!("{name}_i"), format!("{name}_u")],
        }
    }

    fn refusal(&self) -> String {
        format!("{}.{} takes only {}", self.table, self.column, self.names.join(", ")).replace('\'', "''")
    }
}

/// Puts every guard of `guards` in place: those missing or out of date are made, the
/// current ones are left. Called by [`Db::migrate`] with [`GUARDED`].
pub async fn install(db: &Db, guards: &[Guard]) -> Result<()> {
    let sqlite = matches!(db, Db::Sqlite(_));
    // Most starts (every MTA pipe's process among them) find every guard current: that is
    // read without taking the write lock.
    let mut current = true;
    for g in guards {
        let names: Vec<String> =
            on_db!(db, p => bind!(sqlx::query_scalar(present_sql(sqlite)), g.prefix(), g.table).fetch_all(p).await)?;
        current &= names.into_iter().eq(g.objects(sqlite));
    }
    if current {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    let mut made = 0;
    if !sqlite {
        // Adding a constraint waits for every transaction on its table (an import in another
        // process): a start that cannot have the lock soon fails saying so, and is retried.
        on_tx!(&mut tx, c => sqlx::query("SET LOCAL lock_timeout = '30s'").execute(c).await.map(|_| ()))?;
        // Two processes starting at once would otherwise both add the same constraint.
        on_tx!(&mut tx, c => sqlx::query("SELECT pg_advisory_xact_lock(7340531)").execute(c).await.map(|_| ()))?;
    }
    for g in guards {
        let present = present(&mut tx, sqlite, g).await?;
        let wanted = g.objects(sqlite);
        if present == wanted {
            continue;
        }
        let mut statements: Vec<String> = present
            .iter()
            .map(|old| match sqlite {
                true => format!("DROP TRIGGER IF EXISTS \"{old}\""),
                false => format!("ALTER TABLE {} DROP CONSTRAINT IF EXISTS \"{old}\"", g.table),
            })
            .collect();
        statements.extend(create(sqlite, g, &wanted));
        for sql in &statements {
            on_tx!(&mut tx, c => sqlx::query(sql).execute(c).await.map(|_| ()))?;
        }
        tracing::debug!(table = g.table, column = g.column, "state guard made");
        made += 1;
    }
    tx.commit().await?;
    if made > 0 {
        tracing::info!(made, "state guards made or brought up to date");
    }
    Ok(())
}

/// The guards of `g`'s column now in the store, by name.
async fn present(tx: &mut Tx, sqlite: bool, g: &Guard) -> Result<Vec<String>> {
    Ok(on_tx!(tx, c => bind!(sqlx::query_scalar(present_sql(sqlite)), g.prefix(), g.table).fetch_all(c).await)?)
}

/// The names of a column's guards ($1 the prefix, $2 the table), in name order.
fn present_sql(sqlite: bool) -> &'static str {
    match sqlite {
        true => {
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND substr(name, 1, length($1)) = $1
               AND tbl_name = $2 ORDER BY name"
        }
        false => {
            "SELECT conname::text FROM pg_constraint WHERE left(conname::text, length($1)) = $1
               AND conrelid = to_regclass($2) ORDER BY conname"
        }
    }
}

/// The statements that make `g`'s guard, named `names`: on SQLite a trigger for inserts and
/// one for updates (it cannot add a CHECK to a table that exists); on PostgreSQL a CHECK.
fn create(sqlite: bool, g: &Guard, names: &[String]) -> Vec<String> {
    let Guard { table, column, .. } = g;
    let list = g.sql_list();
    if !sqlite {
        return vec![format!(
            "ALTER TABLE {table} ADD CONSTRAINT \"{}\" CHECK ({column} IN ({list})) NOT VALID",
            names[0]
        )];
    }
    let refusal = g.refusal();
    let body = format!("WHEN NEW.{column} NOT IN ({list}) BEGIN SELECT RAISE(ABORT, '{refusal}'); END");
    names
        .iter()
        .map(|name| match name.ends_with("_i") {
            true => format!("CREATE TRIGGER \"{name}\" BEFORE INSERT ON {table} {body}"),
            false => format!("CREATE TRIGGER \"{name}\" BEFORE UPDATE OF {column} ON {table} {body}"),
        })
        .collect()
}
