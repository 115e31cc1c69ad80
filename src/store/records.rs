//! Writing TOT records: idempotent upserts keyed by TOT id, child lines replaced whole,
//! deletes by id. A record whose content hash is unchanged is not written again.
//!
//! Each entity says which columns it fills and with what (`Upsert::columns`, `Upsert::lines`);
//! one statement builder (`upsert_sql`) and one writer (`write_many`) serve them all, so a new
//! column is one word in one list. The twelve entities' lists stand together, beside the
//! writer, so the whole write contract reads as one table: over 500 lines on purpose.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::values::{Col, Val, cols, execute};
use super::{Result, Tx, fetch_in, placeholders};
use crate::model::records::*;

/// What happened to one record of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Inserted,
    Updated,
    Unchanged,
}

/// The child lines of one table, each row without its parent key and line number.
pub struct Lines<'a> {
    pub table: &'static str,
    pub rows: Vec<Vec<Col<'a>>>,
}

/// A record type the store knows how to write.
pub trait Upsert: Record + Sync {
    /// Its name in the sync API and the import document.
    const ENTITY: &'static str;
    /// The table it is stored in: the entity's name.
    const TABLE: &'static str = Self::ENTITY;
    /// Columns not simply replaced on update: (column, VALUES expression, SET expression).
    /// In the VALUES expression `{v}` is the column's value and `{now}` the write time; in
    /// the SET expression `{v}` is the value sent (NULL when none was), so a VALUES
    /// expression must give the value itself whenever it is not NULL.
    const SPECIAL: &'static [(&'static str, &'static str, &'static str)] = &[];
    /// The column of the child line tables that points at this record.
    const PARENT: &'static str = "";
    /// Columns of other records that name this one without hanging off it (table, column):
    /// emptied when it is deleted, so no row points at a record that is gone. Their sync hash
    /// is forgotten with it, so the next send of such a record is written in full.
    const NAMED_BY: &'static [(&'static str, &'static str)] = &[];
    /// cport's own rows that hold this record by its key and mean nothing without it (table,
    /// column): deleted with it. A basket line of a SKU TOT removed could never be placed,
    /// nor shown with its stock to be taken out; placed orders keep theirs, as history.
    const HELD_BY: &'static [(&'static str, &'static str)] = &[];
    /// Its records are people who sign in: after an update, the sessions and delegations they
    /// no longer hold are ended (see [`super::sessions::end_lapsed`]), and a new address
    /// forgets the old one's bounces ([`super::inbound::forget_bounces_of_moved`]).
    const SIGNS_IN: bool = false;
    /// Other records this one points at: (field, table, id). The referenced record must exist
    /// and, when it belongs to a client, to this record's client.
    fn refs(&self) -> Vec<(&'static str, &'static str, &str)> {
        match self.client() {
            Some(c) => vec![("client_id", "clients", c)],
            None => vec![],
        }
    }
    /// The record's own columns, the key first.
    fn columns(&self) -> Vec<Col<'_>>;
    /// Child line tables, each listed even when empty so an update clears it.
    fn lines(&self) -> Vec<Lines<'_>> {
        vec![]
    }
}

/// `INSERT … ON CONFLICT (key) DO UPDATE SET …` for `rows` rows of these columns
/// (`sync_hash` and `updated_at` last), `cols` being the first row's. Rows go in one
/// statement only when they agree on which special columns were sent NULL (see `SPECIAL`).
fn upsert_sql<T: Upsert>(cols: &[Col], rows: usize) -> String {
    let per_row = cols.len();
    let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
    let special = |name: &str| T::SPECIAL.iter().find(|(c, _, _)| *c == name);
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let base = r * per_row;
            let now = format!("${}", base + per_row);
            let exprs: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let v = format!("${}", base + i + 1);
                    match special(name) {
                        Some((_, insert, _)) => insert.replace("{v}", &v).replace("{now}", &now),
                        None => v,
                    }
                })
                .collect();
            format!("({})", exprs.join(", "))
        })
        .collect();
    let sets: Vec<String> = cols
        .iter()
        .filter(|(name, _)| *name != T::KEY)
        .map(|(name, val)| match special(name) {
            Some((_, _, update)) => {
                let sent = if val.is_null() { "NULL".to_string() } else { format!("excluded.{name}") };
                format!("{name} = {}", update.replace("{v}", &sent))
            }
            None => format!("{name} = excluded.{name}"),
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {}",
        T::TABLE,
        names.join(", "),
        values.join(", "),
        T::KEY,
        sets.join(", ")
    )
}

/// Writes records of one entity and replaces their child lines, many rows a statement (an
/// import has four times as many lines as records, and one statement costs as much as
/// many rows). `exists` says an older version of that record
/// is stored (its lines are deleted first).
pub async fn write_many<T: Upsert>(tx: &mut Tx, recs: &[(&T, &str, bool)], now: DateTime<Utc>) -> Result<()> {
    // The records themselves: multi-row upserts of records that agree on which special
    // columns they sent NULL (the SET clause differs by that).
    let rows: Vec<Vec<Col>> = recs
        .iter()
        .map(|(rec, hash, _)| {
            let mut cols = rec.columns();
            cols.extend(cols![sync_hash = *hash, updated_at = now]);
            cols
        })
        .collect();
    let nulls = |cols: &[Col]| -> Vec<bool> {
        cols.iter()
            .filter(|(n, _)| T::SPECIAL.iter().any(|(c, _, update)| c == n && update.contains("{v}")))
            .map(|(_, v)| v.is_null())
            .collect()
    };
    let mut groups: Vec<(Vec<bool>, Vec<&Vec<Col>>)> = Vec::new();
    for cols in &rows {
        let key = nulls(cols);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(cols),
            None => groups.push((key, vec![cols])),
        }
    }
    for (_, group) in &groups {
        let per_row = group[0].len();
        for chunk in group.chunks((PARAMS_PER_STATEMENT / per_row).max(1)) {
            let vals: Vec<&Val> = chunk.iter().flat_map(|cols| cols.iter().map(|(_, v)| v)).collect();
            execute(tx, &upsert_sql::<T>(chunk[0], chunk.len()), &vals).await?;
        }
    }
    if T::SIGNS_IN {
        let updated: Vec<&str> = recs.iter().filter(|(_, _, exists)| *exists).map(|(r, _, _)| r.key()).collect();
        super::sessions::end_lapsed(tx, &updated, now).await?;
        super::inbound::forget_bounces_of_moved(tx, &updated, now).await?;
    }
    // Every line of every record, by table: (parent key, line number, columns).
    let mut tables: Vec<(&'static str, Vec<LineRow>)> = Vec::new();
    let mut replaced: Vec<Val> = Vec::new();
    for (rec, _, exists) in recs {
        if *exists {
            replaced.push(Val::from(rec.key()));
        }
        for lines in rec.lines() {
            let at = match tables.iter().position(|(t, _)| *t == lines.table) {
                Some(i) => i,
                None => {
                    tables.push((lines.table, Vec::new()));
                    tables.len() - 1
                }
            };
            for (i, row) in lines.rows.into_iter().enumerate() {
                tables[at].1.push((Val::from(rec.key()), Val::from(i as i64), row));
            }
        }
    }
    if !replaced.is_empty() {
        // Tables come from any record's `lines`, which lists each table even when empty.
        let all_tables: Vec<&str> =
            recs.first().map(|(r, _, _)| r.lines().iter().map(|l| l.table).collect()).unwrap_or_default();
        for table in all_tables {
            for chunk in replaced.chunks(super::IN_CHUNK) {
                let sql = format!("DELETE FROM {table} WHERE {} IN ({})", T::PARENT, placeholders(1, chunk.len()));
                let vals: Vec<&Val> = chunk.iter().collect();
                execute(tx, &sql, &vals).await?;
            }
        }
    }
    for (table, rows) in &tables {
        let Some((_, _, first)) = rows.first() else { continue };
        let names: Vec<&str> = first.iter().map(|(n, _)| *n).collect();
        let per_row = names.len() + 2;
        let rows_per_statement = (PARAMS_PER_STATEMENT / per_row).max(1);
        for chunk in rows.chunks(rows_per_statement) {
            let values: Vec<String> =
                (0..chunk.len()).map(|r| format!("({})", placeholders(1 + r * per_row, per_row))).collect();
            let sql = format!(
                "INSERT INTO {table} ({}, line_no, {}) VALUES {}",
                T::PARENT,
                names.join(", "),
                values.join(", ")
            );
            let mut vals: Vec<&Val> = Vec::with_capacity(chunk.len() * per_row);
            for (key, line_no, row) in chunk {
                vals.push(key);
                vals.push(line_no);
                vals.extend(row.iter().map(|(_, v)| v));
            }
            execute(tx, &sql, &vals).await?;
        }
    }
    Ok(())
}

/// One child line as written: its parent's key, its line number and its columns.
type LineRow<'a> = (Val<'a>, Val<'a>, Vec<Col<'a>>);

/// Parameters one multi-row statement binds at most. Not more: sqlx's SQLite binding looks
/// each parameter up by name among all of the statement's, so a bind costs in proportion to
/// their number (at 2,000 that lookup was two thirds of an import's time). Scale-S import on
/// SQLite: 19.3 s at 100, 17.7 s at 250, 19.5 s at 500, 23.4 s at 1,000.
const PARAMS_PER_STATEMENT: usize = 250;

/// The stored content hash of each of `keys` that exists.
pub async fn existing_hashes(tx: &mut Tx, table: &str, key: &str, keys: &[&str]) -> Result<HashMap<String, String>> {
    let sql = format!("SELECT {key}, sync_hash FROM {table} WHERE {key} IN ({{in}})");
    let keys = storable(keys);
    let rows: Vec<(String, String)> = fetch_in!(on_tx, tx, sql, keys, once)?;
    Ok(rows.into_iter().collect())
}

/// For each of `values` that a row of `table` holds in `column`: the key of that row.
pub async fn holders(tx: &mut Tx, table: &str, column: &str, values: &[&str]) -> Result<HashMap<String, String>> {
    let sql = format!("SELECT CAST({column} AS TEXT), id FROM {table} WHERE CAST({column} AS TEXT) IN ({{in}})");
    let values = storable(values);
    let rows: Vec<(String, String)> = fetch_in!(on_tx, tx, sql, values, once)?;
    Ok(rows.into_iter().collect())
}

/// For each id of `table` that exists: the client it belongs to.
pub async fn owners(tx: &mut Tx, table: &str, ids: &[&str]) -> Result<HashMap<String, String>> {
    let (key, owner) = match table {
        "clients" => ("id", "id"),
        "stock" | "blank_stock" => ("sku", "client_id"),
        _ => ("id", "client_id"),
    };
    let sql = format!("SELECT {key}, {owner} FROM {table} WHERE {key} IN ({{in}})");
    let ids = storable(ids);
    let rows: Vec<(String, String)> = fetch_in!(on_tx, tx, sql, ids, once)?;
    Ok(rows.into_iter().collect())
}

/// The keys a row could have: one with a NUL character cannot (ids are checked before they
/// are written) and PostgreSQL refuses it even in a lookup, so a batch's reference check
/// reports such a key as unknown beside its field errors instead of failing whole.
fn storable<'a>(keys: &[&'a str]) -> Vec<&'a str> {
    keys.iter().copied().filter(|k| !k.contains('\0')).collect()
}

/// Deletes the rows with these keys; returns the keys that existed. A few hundred keys a
/// statement: a batch of many thousands holds the store for moments, not one statement each.
pub async fn delete_keys<T: Upsert>(tx: &mut Tx, keys: &[String]) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    for chunk in storable(&keys.iter().map(String::as_str).collect::<Vec<_>>()).chunks(super::IN_CHUNK) {
        let list = placeholders(1, chunk.len());
        let vals: Vec<Val> = chunk.iter().map(|k| Val::from(*k)).collect();
        let refs: Vec<&Val> = vals.iter().collect();
        let sql = format!("DELETE FROM {} WHERE {} IN ({list}) RETURNING {}", T::TABLE, T::KEY, T::KEY);
        let gone: Vec<String> = super::values::fetch_strings(tx, &sql, &refs).await?;
        if gone.is_empty() {
            continue;
        }
        let list = placeholders(1, gone.len());
        let vals: Vec<Val> = gone.iter().map(Val::from).collect();
        let refs: Vec<&Val> = vals.iter().collect();
        for (table, column) in T::NAMED_BY {
            let sql = format!("UPDATE {table} SET {column} = NULL, sync_hash = '' WHERE {column} IN ({list})");
            execute(tx, &sql, &refs).await?;
        }
        for (table, column) in T::HELD_BY {
            execute(tx, &format!("DELETE FROM {table} WHERE {column} IN ({list})"), &refs).await?;
        }
        deleted.extend(gone);
    }
    // In the order asked for, as one at a time gave them.
    let order: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    deleted.sort_by_key(|k| order.get(k.as_str()).copied().unwrap_or(usize::MAX));
    Ok(deleted)
}

/// One child table's lines: a row of columns for each item.
fn lines_of<'a, T>(table: &'static str, items: &'a [T], row: impl Fn(&'a T) -> Vec<Col<'a>>) -> Lines<'a> {
    Lines { table, rows: items.iter().map(row).collect() }
}

/// Cost lines (art costs, blank garments, visual charges) share one shape.
fn cost_lines<'a>(table: &'static str, lines: &'a [CostLineIn]) -> Lines<'a> {
    lines_of(table, lines, |l| cols![l: description, qty, unit_price])
}

/// A created time given by TOT wins; without one a new row gets the write time and an
/// existing row keeps its own.
const fn created_at(table_created_at: &'static str) -> (&'static str, &'static str, &'static str) {
    ("created_at", "COALESCE({v}, {now})", table_created_at)
}

/// A record TOT sends no created time for: a new row gets the write time, and an existing
/// row keeps its own (`keep`, the table's column).
const fn first_stored(keep: &'static str) -> (&'static str, &'static str, &'static str) {
    ("created_at", "{now}", keep)
}

impl Upsert for ClientIn {
    const ENTITY: &'static str = "clients";
    fn columns(&self) -> Vec<Col<'_>> {
        cols![self: id, name, currency, third_party_ordering]
    }
}

impl Upsert for ContactIn {
    const ENTITY: &'static str = "contacts";
    /// `created_at` is when cport first stored the contact, kept on every update;
    /// `schedule_set_at` is when an update changed its digest schedule or time zone.
    const SPECIAL: &'static [(&'static str, &'static str, &'static str)] = &[
        first_stored("contacts.created_at"),
        // No zone given is kept as none (''), read as `digest.timezone` (see `ContactIn`).
        ("timezone", "COALESCE({v}, '')", "COALESCE({v}, '')"),
        // A third-party user a client's admin revoked stays so while TOT sends them as one.
        (
            "active",
            "{v}",
            "CASE WHEN contacts.revoked_at IS NOT NULL AND excluded.role = 'third_party' THEN FALSE ELSE {v} END",
        ),
        (
            "schedule_set_at",
            "NULL",
            "CASE WHEN contacts.digest_schedule IS DISTINCT FROM excluded.digest_schedule
               OR contacts.timezone IS DISTINCT FROM excluded.timezone THEN excluded.updated_at
             ELSE contacts.schedule_set_at END",
        ),
        // Another address (not the same one written in other case): see `ContactRow::email_set_at`.
        (
            "email_set_at",
            "NULL",
            "CASE WHEN LOWER(contacts.email) <> LOWER(excluded.email) THEN excluded.updated_at
             ELSE contacts.email_set_at END",
        ),
    ];
    const NAMED_BY: &'static [(&'static str, &'static str)] = &[("jobs", "contact_id")];
    const SIGNS_IN: bool = true;
    fn columns(&self) -> Vec<Col<'_>> {
        cols![
            self: id, client_id, name, email, role, timezone, phone, telegram_chat_id, discord_user_id,
            digest_schedule, active; created_at = Val::Time(None), schedule_set_at = Val::Time(None),
            email_set_at = Val::Time(None),
        ]
    }
}

impl Upsert for JobIn {
    const ENTITY: &'static str = "jobs";
    /// The artwork clients sent for it: a job deleted (or sent anew for another client)
    /// keeps none of the old one's, and its files go once the delete is committed.
    const HELD_BY: &'static [(&'static str, &'static str)] = &[("artwork_uploads", "job_id")];
    /// The client's answer about delivery stays when TOT leaves it out (see `JobIn`).
    const SPECIAL: &'static [(&'static str, &'static str, &'static str)] = &[
        created_at("COALESCE({v}, jobs.created_at)"),
        ("delivery_instructions", "COALESCE({v}, 'none')", "COALESCE({v}, jobs.delivery_instructions)"),
    ];
    const PARENT: &'static str = "job_id";
    const NAMED_BY: &'static [(&'static str, &'static str)] = &[("deliveries", "job_id")];
    fn refs(&self) -> Vec<(&'static str, &'static str, &str)> {
        let mut r = vec![("client_id", "clients", self.client_id.as_str())];
        if let Some(c) = &self.contact_id {
            r.push(("contact_id", "contacts", c.as_str()));
        }
        r
    }
    fn columns(&self) -> Vec<Col<'_>> {
        cols![
            self: id, client_id, contact_id, name, status, date_required, order_id, client_ref,
            delivery_instructions, created_at,
        ]
    }
    fn lines(&self) -> Vec<Lines<'_>> {
        vec![
            lines_of(
                "job_process_lines",
                &self.process_lines,
                |l| cols![l: status, process, position, process_date, qty, unit_price, image],
            ),
            cost_lines("job_art_costs", &self.art_costs),
            cost_lines("job_blank_garments", &self.blank_garments),
            lines_of(
                "job_printed_garments",
                &self.printed_garments,
                |l| cols![l: description, expected_qty, produced_qty],
            ),
        ]
    }
}

impl Upsert for ArtRequirementIn {
    const ENTITY: &'static str = "art_requirements";
    /// `created_at` is when cport first stored it, kept on every update.
    const SPECIAL: &'static [(&'static str, &'static str, &'static str)] =
        &[first_stored("art_requirements.created_at")];
    fn refs(&self) -> Vec<(&'static str, &'static str, &str)> {
        vec![("client_id", "clients", &self.client_id), ("job_id", "jobs", &self.job_id)]
    }
    fn columns(&self) -> Vec<Col<'_>> {
        cols![self: id, client_id, job_id, design_id, description, art_due, art_received; created_at = Val::Time(None)]
    }
}

impl Upsert for VisualIn {
    const ENTITY: &'static str = "visuals";
    const SPECIAL: &'static [(&'static str, &'static str, &'static str)] =
        &[created_at("COALESCE({v}, visuals.created_at)")];
    const PARENT: &'static str = "visual_id";
    fn refs(&self) -> Vec<(&'static str, &'static str, &str)> {
        vec![("client_id", "clients", &self.client_id), ("job_id", "jobs", &self.job_id)]
    }
    fn columns(&self) -> Vec<Col<'_>> {
        cols![
            self: id, client_id, job_id, design_id, category, designer, status, main_image, placement_image,
            created_at,
        ]
    }
    fn lines(&self) -> Vec<Lines<'_>> {
        vec![
            cost_lines("visual_charges", &self.charges),
            lines_of("visual_comments", &self.comments, |m| cols![m: author, body, at; author_side = &m.side]),
        ]
    }
}

impl Upsert for DeliveryIn {
    const ENTITY: &'static str = "deliveries";
    const PARENT: &'static str = "delivery_id";
    fn refs(&self) -> Vec<(&'static str, &'static str, &str)> {
        let mut r = vec![("client_id", "clients", self.client_id.as_str())];
        if let Some(j) = &self.job_id {
            r.push(("job_id", "jobs", j.as_str()));
        }
        r
    }
    fn columns(&self) -> Vec<Col<'_>> {
        let t = self.tracking.as_ref();
        let p = self.proof_of_delivery.as_ref();
        cols![
            self: id, client_id, job_id, status, delivery_date, sent_date, venue, description, contact, client_ref;
            tracking_carrier = t.map(|t| t.carrier.as_str()), tracking_number = t.map(|t| t.number.as_str()),
            tracking_url = t.and_then(|t| t.url.as_deref()),
            pod_signature_image = p.map(|p| p.signature_image.as_str()), pod_boxes = p.map(|p| p.boxes),
            pod_courier = p.map(|p| p.courier.as_str()), pod_signed_at = p.map(|p| p.signed_at),
            pod_courier_worker = p.and_then(|p| p.courier_worker.as_deref()),
        ]
    }
    fn lines(&self) -> Vec<Lines<'_>> {
        vec![
            lines_of("delivery_lines", &self.lines, |l| cols![l: description, qty]),
            lines_of("delivery_packing", &self.packing, |l| cols![l: container, description, qty]),
            lines_of("delivery_costs", &self.costs, |l| cols![l: cost_type, description, price]),
        ]
    }
}

impl Upsert for StockIn {
    const ENTITY: &'static str = "stock";
    const HELD_BY: &'static [(&'static str, &'static str)] = &[("basket_lines", "sku"), ("sku_allocations", "sku")];
    /// `figure_at` is when `available_to_order` last changed.
    const SPECIAL: &'static [(&'static str, &'static str, &'static str)] = &[(
        "figure_at",
        "{now}",
        "CASE WHEN stock.available_to_order = excluded.available_to_order THEN stock.figure_at ELSE excluded.updated_at END",
    )];
    fn columns(&self) -> Vec<Col<'_>> {
        cols![
            self: sku, client_id, client_sku, description, warehouse_balance, expected, accounted_for,
            available_to_order, picture; figure_at = Val::Time(None),
        ]
    }
}

impl Upsert for BlankStockIn {
    const ENTITY: &'static str = "blank_stock";
    fn columns(&self) -> Vec<Col<'_>> {
        cols![self: sku, description, warehouse_balance, expected, accounted_for, available_to_order]
    }
}

impl Upsert for PurchaseOrderIn {
    const ENTITY: &'static str = "purchase_orders";
    const PARENT: &'static str = "po_id";
    fn columns(&self) -> Vec<Col<'_>> {
        cols![
            self: id, client_id, placed_by, third_party, status, date_ordered, tot_ref, client_ref, category, po_type,
            supplier,
        ]
    }
    fn lines(&self) -> Vec<Lines<'_>> {
        // Each checking picture once more, on its own row, for the `/media` lookup's index.
        let images = self.receipts.iter().flat_map(|r| &r.checking_images).map(|i| cols![image = i]);
        vec![
            lines_of(
                "purchase_order_lines",
                &self.lines,
                |l| cols![l: status, sku, description, ordered, received, cancelled],
            ),
            lines_of("purchase_order_receipts", &self.receipts, |r| {
                cols![
                    r: date_received, signed_by, date_checked, check_category, checked_by, outers, handling_cost;
                    checking_images = serde_json::to_string(&r.checking_images).unwrap_or_else(|_| "[]".into()),
                ]
            }),
            Lines { table: "purchase_order_images", rows: images.collect() },
        ]
    }
}

impl Upsert for InvoiceIn {
    const ENTITY: &'static str = "invoices";
    fn columns(&self) -> Vec<Col<'_>> {
        cols![self: id, client_id, date, due_date, client_po_ref, job_name, total, paid]
    }
}

impl Upsert for AccountSummaryIn {
    const ENTITY: &'static str = "account_summaries";
    fn columns(&self) -> Vec<Col<'_>> {
        cols![self: client_id, as_of, current_balance, over_30, over_60, over_90, credit_limit]
    }
}

impl Upsert for PriceCardIn {
    const ENTITY: &'static str = "price_cards";
    const PARENT: &'static str = "price_card_id";
    fn columns(&self) -> Vec<Col<'_>> {
        cols![self: id, client_id, name, effective_from]
    }
    fn lines(&self) -> Vec<Lines<'_>> {
        vec![lines_of("price_card_lines", &self.lines, |l| cols![l: code, description, unit, min_qty, price])]
    }
}
