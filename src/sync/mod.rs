//! TOT → cport: the sync API (`PUT|DELETE /api/v1/{entity}`) and `cport import`.
//! Records are parsed, validated and checked against what they refer to before anything is
//! written; a batch is one transaction, so it lands whole or not at all.

pub mod api;
mod checks;
pub mod error;
pub mod import;
pub mod openapi;
pub mod repeated;
pub mod strict;

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::check_id;
use crate::model::records::*;
use crate::store::records::{Outcome, Upsert, delete_keys, existing_hashes, write_many};
use crate::store::{Db, StoreError, Tx};

pub use crate::model::records::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{}; nothing was written", .0.counted())]
    Invalid(Refused),
    #[error("unknown entity {}; expected one of {list}", crate::model::quoted(.0), list = ENTITIES.join(", "))]
    UnknownEntity(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counts for one entity of a batch.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct EntityReport {
    pub entity: String,
    pub received: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
}

impl EntityReport {
    /// Adds the counts of another part of the same entity's batch.
    pub fn add(&mut self, part: &EntityReport) {
        self.received += part.received;
        self.inserted += part.inserted;
        self.updated += part.updated;
        self.unchanged += part.unchanged;
    }
}

/// Calls `$body` with the record type `$T` named by `$entity` (a string).
macro_rules! by_entity {
    ($entity:expr, $T:ident => $body:expr) => {
        match $entity {
            "clients" => {
                type $T = ClientIn;
                $body
            }
            "contacts" => {
                type $T = ContactIn;
                $body
            }
            "jobs" => {
                type $T = JobIn;
                $body
            }
            "art_requirements" => {
                type $T = ArtRequirementIn;
                $body
            }
            "visuals" => {
                type $T = VisualIn;
                $body
            }
            "deliveries" => {
                type $T = DeliveryIn;
                $body
            }
            "stock" => {
                type $T = StockIn;
                $body
            }
            "blank_stock" => {
                type $T = BlankStockIn;
                $body
            }
            "purchase_orders" => {
                type $T = PurchaseOrderIn;
                $body
            }
            "invoices" => {
                type $T = InvoiceIn;
                $body
            }
            "account_summaries" => {
                type $T = AccountSummaryIn;
                $body
            }
            "price_cards" => {
                type $T = PriceCardIn;
                $body
            }
            other => Err(SyncError::UnknownEntity(other.to_string())),
        }
    };
}
pub(crate) use by_entity;

fn content_hash<T: Serialize>(rec: &T) -> String {
    let bytes = serde_json::to_vec(rec).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The refusal of the record at `index` (read as `record`, if it could be) that gives `key`
/// twice in one object (see [`repeated`]): the same from the API and from `cport import`.
fn given_twice(entity: &str, index: usize, record: Option<&serde_json::Value>, key: &str) -> RecordError {
    RecordError {
        entity: entity.to_string(),
        index: Some(index),
        id: record.and_then(|r| record_id(entity, r)),
        field: crate::model::shown(key, 100),
        reason: "given twice in one object; say it once".into(),
    }
}

/// The id of a record of `entity` that could not be read whole: its own key field only (a
/// job without its `id` is not named by its `client_id`).
fn record_id(entity: &str, v: &serde_json::Value) -> Option<String> {
    v.get(key_of(entity)).and_then(|x| x.as_str()).map(error_id)
}

/// The field that names a record of `entity` (`id` for an entity there is not).
fn key_of(entity: &str) -> &'static str {
    let key: Result<&'static str, SyncError> = by_entity!(entity, T => Ok(T::KEY));
    key.unwrap_or("id")
}

/// A record's id as an error repeats it: on one line, cut to the longest an id may be (a
/// refused id can hold anything; it is echoed to terminals and logs).
fn error_id(id: &str) -> String {
    crate::model::visible(id, crate::model::ID_MAX)
}

/// A record found in a batch but not readable as JSON (a number out of range, a lone
/// surrogate escape): named by its id and field where those can still be read.
#[derive(Debug)]
pub struct Unreadable {
    pub id: Option<String>,
    pub field: String,
    pub reason: String,
}

impl Unreadable {
    /// Why `raw` (one record's text) could not be read, as `error` says: the record is read
    /// again as fields whose values are only found, not read, to name the field at fault and
    /// the record's id. The error's line and column, counted in the record, would mislead.
    pub fn of(entity: &str, raw: &str, error: &serde_json::Error) -> Unreadable {
        let words = |e: &serde_json::Error| {
            let text = e.to_string();
            format!("cannot be read: {}", text.split(" at line ").next().unwrap_or(&text))
        };
        let Ok(fields) = serde_json::from_str::<std::collections::BTreeMap<String, &serde_json::value::RawValue>>(raw)
        else {
            return Unreadable { id: None, field: "record".into(), reason: words(error) };
        };
        let id = fields
            .get(key_of(entity))
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
            .map(|id| error_id(&id));
        let at_fault = fields
            .iter()
            .find_map(|(name, v)| serde_json::from_str::<serde_json::Value>(v.get()).err().map(|e| (name, e)));
        match at_fault {
            Some((name, e)) => Unreadable { id, field: crate::model::shown(name, 100), reason: words(&e) },
            None => Unreadable { id, field: "record".into(), reason: words(error) },
        }
    }
}

/// Records typed and staged at a time, by the API's batches and the import's reader alike.
pub const PART: usize = 2_000;

/// One record of a batch read as `T`; what is wrong with it goes to `errs`, naming the field.
pub fn parse_value<T: Upsert>(index: usize, v: serde_json::Value, errs: &mut Vec<RecordError>) -> Option<T> {
    let id = record_id(T::ENTITY, &v);
    if !v.is_object() {
        errs.push(RecordError {
            entity: T::ENTITY.into(),
            index: Some(index),
            id,
            field: "record".into(),
            reason: "expected a JSON object".into(),
        });
        return None;
    }
    // The fields it lacks, found before it is read (a few lookups): serde names only the
    // first, and a sender would then learn of them one try at a time.
    let lacks: Vec<&str> = required_of::<T>().iter().map(String::as_str).filter(|f| v.get(*f).is_none()).collect();
    match serde_path_to_error::deserialize::<_, T>(strict::Strict(v)) {
        Ok(rec) => Some(rec),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let top = path == "." || path.is_empty();
            if top && inner.starts_with("missing field `") {
                let mut lacks = lacks;
                // The one serde named, should the schema not hold it as required.
                if let Some(named) = named_field(&inner).filter(|n| !lacks.contains(n)) {
                    lacks.push(named);
                }
                for field in lacks {
                    let reason = format!("missing field `{field}`");
                    errs.push(RecordError {
                        entity: T::ENTITY.into(),
                        index: Some(index),
                        id: id.clone(),
                        field: field.into(),
                        reason,
                    });
                }
                return None;
            }
            let field = if top { named_field(&inner).unwrap_or("record") } else { &path };
            // A key or value TOT sent is repeated in these words as it came: shown with what
            // would not print as code points, and cut, as every refused value is.
            let (field, reason) = (crate::model::visible(field, 100), crate::model::visible(&inner, 1_000));
            errs.push(RecordError { entity: T::ENTITY.into(), index: Some(index), id, field, reason });
            None
        }
    }
}

/// The fields a record of `T` cannot be read without, in the order it declares them: its
/// schema's `required` (schemars reads serde's own attributes, so a field with a default or
/// an `Option` is not among them), made once per entity.
fn required_of<T: Upsert>() -> &'static [String] {
    static MADE: std::sync::OnceLock<std::sync::Mutex<HashMap<&'static str, &'static [String]>>> =
        std::sync::OnceLock::new();
    let mut made = MADE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    made.entry(T::ENTITY).or_insert_with(|| {
        let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>().to_value();
        let names = schema["required"].as_array().map(|a| a.iter().filter_map(|n| n.as_str().map(String::from)));
        // Made once for each of the dozen entities and kept for the process's life.
        Vec::leak(names.map(Iterator::collect).unwrap_or_default())
    })
}

/// The field serde's message about a missing, unknown or repeated field names (it stands in
/// backquotes, and a key TOT sent may hold one itself).
fn named_field(message: &str) -> Option<&str> {
    ["missing field `", "unknown field `", "duplicate field `"].iter().find_map(|start| {
        let rest = message.strip_prefix(start)?;
        rest.rfind("`, ").or_else(|| rest.rfind('`')).map(|end| &rest[..end])
    })
}

/// What staging one batch carries from part to part.
#[derive(Default, Clone)]
pub struct Known {
    /// The keys met so far, with their index in the batch.
    seen: HashMap<String, usize>,
    /// Ids the batch's records name in other tables, with the client each belongs to (none:
    /// not there), looked up once for the whole batch rather than once a part.
    owners: HashMap<&'static str, HashMap<String, Option<String>>>,
}

impl Known {
    /// Ids kept per table at the most: a batch naming more is looked up again as it goes,
    /// rather than held.
    const MOST_OWNERS: usize = 100_000;
}

/// Validates `records` (each with its index in the batch), checks references inside `tx`,
/// and writes those with no error (a batch with any error is not committed). Errors are
/// appended to `errs`. `known` is what the earlier parts of the same batch found (a batch is
/// staged in parts).
pub async fn stage<T: Upsert>(
    tx: &mut Tx,
    records: &[(usize, T)],
    known: &mut Known,
    errs: &mut Vec<RecordError>,
    mut progress: impl FnMut(u64),
) -> Result<EntityReport, StoreError> {
    let entity = T::ENTITY;
    let mut report = EntityReport { entity: entity.into(), received: records.len(), ..Default::default() };
    let before = errs.len();
    checks::check(tx, records, known, errs).await?;
    // A part with refused records still writes the others (a batch with any error is rolled
    // back whole in the end): what later records refer to is then found, and the report
    // names the records at fault, not every record that refers to one written beside them.
    let refused: HashSet<usize> = errs[before..].iter().filter_map(|e| e.index).collect();
    let kept: Vec<&(usize, T)> = records.iter().filter(|(index, _)| !refused.contains(index)).collect();
    let keys: Vec<&str> = kept.iter().map(|(_, r)| r.key()).collect();
    let hashes = existing_hashes(tx, T::TABLE, T::KEY, &keys).await?;
    let now = Utc::now();
    for chunk in kept.chunks(256) {
        let mut changed: Vec<(&T, String, bool)> = Vec::new();
        for (_, rec) in chunk.iter().copied() {
            let hash = content_hash(rec);
            let outcome = match hashes.get(rec.key()) {
                Some(h) if *h == hash => Outcome::Unchanged,
                Some(_) => Outcome::Updated,
                None => Outcome::Inserted,
            };
            match outcome {
                Outcome::Unchanged => report.unchanged += 1,
                Outcome::Updated => report.updated += 1,
                Outcome::Inserted => report.inserted += 1,
            }
            if outcome != Outcome::Unchanged {
                changed.push((rec, hash, outcome == Outcome::Updated));
            }
        }
        let changed: Vec<(&T, &str, bool)> = changed.iter().map(|(r, h, e)| (*r, h.as_str(), *e)).collect();
        write_many(tx, &changed, now).await?;
        progress(chunk.len() as u64);
    }
    if errs.len() > before {
        return Ok(EntityReport { entity: entity.into(), received: records.len(), ..Default::default() });
    }
    Ok(report)
}

/// Counts what a committed batch or document did in `cport_sync_records_total`: only once
/// committed, as a batch refused or rolled back whole wrote nothing.
pub fn count_written<'a>(reports: impl IntoIterator<Item = &'a EntityReport>) {
    for r in reports {
        for (label, count) in [("inserted", r.inserted), ("updated", r.updated), ("unchanged", r.unchanged)] {
            metrics::counter!("cport_sync_records_total", "entity" => r.entity.clone(), "outcome" => label)
                .increment(count as u64);
        }
    }
}

fn singular(table: &str) -> &str {
    match table {
        "clients" => "client",
        "contacts" => "contact",
        "jobs" => "job",
        other => other,
    }
}

/// The most record errors one report lists.
pub(crate) const MOST_ERRORS: usize = 1000;

/// Record errors as a report lists them: the first [`MOST_ERRORS`], and how many more there
/// were (a body of two million empty records is not answered with two million errors), with
/// the records they are about counted in all.
#[derive(Default)]
pub(crate) struct Listed {
    errs: Vec<RecordError>,
    more: usize,
    /// The records with a problem, by entity: a bit for each index (a record's problems may
    /// be found in more than one pass, and it counts once). A few bits a record, where a set
    /// of two million indices would hold tens of megabytes.
    records: std::collections::HashMap<String, Vec<u64>>,
    /// Problems with no record's index (an entity's or the document's): each counts as one.
    unplaced: usize,
}

impl Listed {
    /// The refusal: the errors listed, a last row counting those that are not, and, when
    /// none was found, `otherwise` as the document's one error.
    pub(crate) fn into_error(self, otherwise: Option<String>) -> SyncError {
        let records = self.records.values().flatten().map(|w| w.count_ones() as usize).sum::<usize>();
        let whole = self.unplaced;
        let problems = self.errs.len() + self.more;
        let Listed { mut errs, more, .. } = self;
        let document = |reason: String| RecordError {
            entity: "document".into(),
            index: None,
            id: None,
            field: "document".into(),
            reason,
        };
        if more > 0 {
            errs.push(document(format!("{more} more errors are not listed")));
        }
        if let (true, Some(reason)) = (errs.is_empty(), otherwise) {
            errs.push(document(reason));
            return SyncError::Invalid(errs.into());
        }
        SyncError::Invalid(Refused { errors: errs, records, problems, whole })
    }

    pub(crate) fn push(&mut self, errs: Vec<RecordError>) {
        for e in errs {
            match e.index {
                Some(i) => {
                    let mark = |bits: &mut Vec<u64>| {
                        if bits.len() <= i / 64 {
                            bits.resize(i / 64 + 1, 0);
                        }
                        bits[i / 64] |= 1 << (i % 64);
                    };
                    // The entity's name is copied once, not for each of its problems.
                    match self.records.get_mut(&e.entity) {
                        Some(bits) => mark(bits),
                        None => mark(self.records.entry(e.entity.clone()).or_default()),
                    }
                }
                None => self.unplaced += 1,
            }
            if self.errs.len() < MOST_ERRORS {
                self.errs.push(e);
            } else {
                self.more += 1;
            }
        }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.errs.is_empty() && self.more == 0
    }

    pub(crate) fn entity(&mut self, entity: &str, reason: String) {
        // The name as the document gave it, which may be anything: shown as refused values are.
        let field = crate::model::visible(entity, 100);
        self.push(vec![RecordError { entity: field.clone(), index: None, id: None, field, reason }]);
    }
}

/// Writes a batch of one entity's records, all or none. The records are read one after
/// another from `values` (the API hands them over as it parses each from the body; one it
/// could not read comes as the reason, refused naming its place).
pub async fn upsert_batch<I>(db: &Db, entity: &str, values: I) -> Result<EntityReport, SyncError>
where
    I: IntoIterator<Item = Result<serde_json::Value, Unreadable>>,
    I::IntoIter: Send,
{
    by_entity!(entity, T => {
        let (mut errs, mut listed) = (Vec::new(), Listed::default());
        let mut known = Known::default();
        let mut report = EntityReport { entity: entity.into(), ..Default::default() };
        let mut values = values.into_iter().enumerate().peekable();
        let mut tx = db.begin().await?;
        // A part's records are typed and staged at a time, all in one transaction: a batch
        // is never held whole as records (60,000 jobs at once took 3.3 times the body).
        while values.peek().is_some() {
            let mut part = Vec::with_capacity(PART);
            for (index, v) in values.by_ref().take(PART) {
                match v {
                    Ok(v) => part.extend(parse_value::<T>(index, v, &mut errs).map(|rec| (index, rec))),
                    Err(u) => errs.push(RecordError {
                        entity: entity.into(),
                        index: Some(index),
                        id: u.id,
                        field: u.field,
                        reason: u.reason,
                    }),
                }
            }
            report.add(&stage(&mut tx, &part, &mut known, &mut errs, |_| {}).await?);
            listed.push(std::mem::take(&mut errs));
        }
        if !listed.is_empty() {
            tx.rollback().await?;
            return Err(listed.into_error(None));
        }
        tx.commit().await?;
        count_written([&report]);
        Ok(report)
    })
}

/// What a delete batch did.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DeleteReport {
    pub entity: String,
    pub deleted: usize,
    /// Ids that were not there (deleting them again is not an error, so re-sends are safe).
    pub absent: Vec<String>,
}

/// Deletes records by TOT id, with everything that hangs off them.
pub async fn delete_batch(db: &Db, entity: &str, ids: Vec<String>) -> Result<DeleteReport, SyncError> {
    by_entity!(entity, T => {
        let mut errs = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (index, id) in ids.iter().enumerate() {
            let mut fe = Vec::new();
            check_id("ids", id, &mut fe);
            // As a PUT refuses a key given twice: a list naming one twice was not meant so.
            if let Some(first) = seen.insert(id, index) {
                let twice = format!("{} appears twice in this list (also at index {first})", crate::model::quoted(id));
                fe.push(crate::model::FieldError::new("ids", twice));
            }
            errs.extend(fe.into_iter().map(|e| RecordError {
                entity: entity.into(),
                index: Some(index),
                id: Some(error_id(id)),
                field: e.field,
                reason: e.reason,
            }));
        }
        if !errs.is_empty() {
            return Err(SyncError::Invalid(errs.into()));
        }
        let mut tx = db.begin().await?;
        // A client's artwork rows go with it: its files are removed once that is committed.
        let files = match T::ENTITY {
            "clients" => {
                let keys: Vec<&str> = ids.iter().map(String::as_str).collect();
                crate::store::inbound::artwork_paths_of(&mut tx, &keys).await?
            }
            _ => vec![],
        };
        let deleted = delete_keys::<T>(&mut tx, &ids).await?;
        tx.commit().await?;
        crate::actions::artwork::remove_files(&files);
        let gone: HashSet<&String> = deleted.iter().collect();
        Ok(DeleteReport {
            entity: entity.into(),
            deleted: deleted.len(),
            absent: ids.iter().filter(|i| !gone.contains(i)).cloned().collect(),
        })
    })
}
