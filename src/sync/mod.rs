//! TOT → cport: the sync API (`PUT|DELETE /api/v1/{entity}`) and `cport import`.
//! Records are parsed, validated and checked against what they refer to before anything is
//! written; a batch is one transaction, so it lands whole or not at all.

pub mod api;
mod checks;
pub mod error;
pub mod import;
pub mod openapi;
mod read;
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
use read::error_id;
pub(crate) use read::given_twice;
pub use read::{Unreadable, parse_value};

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

/// Records typed and staged at a time, by the API's batches and the import's reader alike.
pub const PART: usize = 2_000;

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
        // Listed as a PUT's are: the first thousand, and how many more (a body of millions
        // of empty ids is not answered with millions of errors).
        let mut errs = Listed::default();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (index, id) in ids.iter().enumerate() {
            let mut fe = Vec::new();
            check_id("ids", id, &mut fe);
            // As a PUT refuses a key given twice: a list naming one twice was not meant so.
            if let Some(first) = seen.insert(id, index) {
                let twice = format!("{} appears twice in this list (also at index {first})", crate::model::quoted(id));
                fe.push(crate::model::FieldError::new("ids", twice));
            }
            errs.push(
                fe.into_iter()
                    .map(|e| RecordError {
                        entity: entity.into(),
                        index: Some(index),
                        id: Some(error_id(id)),
                        field: e.field,
                        reason: e.reason,
                    })
                    .collect(),
            );
        }
        if !errs.is_empty() {
            return Err(errs.into_error(None));
        }
        let mut tx = db.begin().await?;
        // A client's or a job's artwork rows go with it: its files are removed once that is
        // committed.
        let keys: Vec<&str> = ids.iter().map(String::as_str).collect();
        let files = match T::ENTITY {
            "clients" => crate::store::inbound::artwork_paths_of(&mut tx, &keys).await?,
            "jobs" => crate::store::inbound::artwork_paths_of_jobs(&mut tx, &keys).await?,
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
