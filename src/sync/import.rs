//! `cport import FILE`: a whole document of TOT records, through the same validation as the
//! sync API, applied in one transaction (all of it or none of it).

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use super::{EntityReport, RecordError, SyncError, by_entity, parse_values, stage};
use crate::model::records::*;
use crate::store::Db;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a JSON document: {message}")]
    NotJson { path: String, message: String },
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl From<crate::store::StoreError> for ImportError {
    fn from(e: crate::store::StoreError) -> Self {
        ImportError::Sync(SyncError::Store(e))
    }
}

/// Reads and applies an import document from a file.
pub async fn import_file(db: &Db, path: &Path, show_progress: bool) -> Result<Vec<EntityReport>, ImportError> {
    let shown = path.display().to_string();
    let read_err = |source| ImportError::Read {
        path: shown.clone(),
        source,
    };
    let spinner = if show_progress {
        let s = ProgressBar::new_spinner();
        s.set_message(format!("reading {shown}"));
        s.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(s)
    } else {
        None
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 20, file));
    let parsed: Result<Document, _> = serde_path_to_error::deserialize(&mut de);
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let doc = match parsed {
        Ok(doc) => doc,
        Err(typed) => {
            // Re-read loosely so every bad record is reported, not just the first.
            let text = std::fs::read(path).map_err(read_err)?;
            let loose: BTreeMap<String, serde_json::Value> =
                serde_json::from_slice(&text).map_err(|e| ImportError::NotJson {
                    path: shown.clone(),
                    message: e.to_string(),
                })?;
            let mut errs = loose_errors(loose);
            if errs.is_empty() {
                errs.push(RecordError {
                    entity: "document".into(),
                    index: None,
                    id: None,
                    field: typed.path().to_string(),
                    reason: typed.into_inner().to_string(),
                });
            }
            return Err(SyncError::Invalid(errs).into());
        }
    };
    Ok(apply_document(db, &doc, show_progress).await?)
}

fn loose_errors(loose: BTreeMap<String, serde_json::Value>) -> Vec<RecordError> {
    let mut errs = Vec::new();
    for (entity, value) in loose {
        let serde_json::Value::Array(values) = value else {
            errs.push(RecordError {
                entity: entity.clone(),
                index: None,
                id: None,
                field: entity.clone(),
                reason: "expected an array of records".into(),
            });
            continue;
        };
        let result: Result<(), SyncError> = by_entity!(entity.as_str(), T => {
            parse_values::<T>(values, &mut errs);
            Ok(())
        });
        if let Err(e) = result {
            errs.push(RecordError {
                entity: entity.clone(),
                index: None,
                id: None,
                field: entity.clone(),
                reason: e.to_string(),
            });
        }
    }
    errs
}

fn indexed<T: Clone>(v: &[T]) -> Vec<(usize, T)> {
    v.iter().cloned().enumerate().collect()
}

/// Applies a parsed document in one transaction, entity by entity in dependency order.
pub async fn apply_document(db: &Db, doc: &Document, show_progress: bool) -> Result<Vec<EntityReport>, SyncError> {
    let bar = if show_progress {
        let b = ProgressBar::new(doc.total() as u64);
        b.set_style(
            ProgressStyle::with_template("{msg:>18} [{bar:40}] {pos}/{len} records, {per_sec}, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Some(b)
    } else {
        None
    };
    let tick = |n: u64| {
        if let Some(b) = &bar {
            b.inc(n)
        }
    };
    let mut errs = Vec::new();
    let mut reports = Vec::new();
    let mut tx = db.begin().await?;
    macro_rules! step {
        ($field:ident) => {
            if !doc.$field.is_empty() {
                if let Some(b) = &bar {
                    b.set_message(stringify!($field));
                }
                reports.push(stage(&mut tx, &indexed(&doc.$field), &mut errs, tick).await?);
            }
        };
    }
    step!(clients);
    step!(contacts);
    step!(jobs);
    step!(art_requirements);
    step!(visuals);
    step!(deliveries);
    step!(stock);
    step!(blank_stock);
    step!(purchase_orders);
    step!(invoices);
    step!(account_summaries);
    step!(price_cards);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if !errs.is_empty() {
        tx.rollback().await?;
        return Err(SyncError::Invalid(errs));
    }
    tx.commit().await?;
    Ok(reports)
}
