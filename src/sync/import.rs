//! `cport import FILE`: a whole document of TOT records, through the same validation as the
//! sync API, applied in one transaction (all of it or none of it).
//! Over 500 lines: the streaming reader, and the loose reader that names every bad record of a
//! document the first cannot read, share their serde visitors and stay side by side.

use std::io::BufReader;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use super::{EntityReport, Known, Listed, RecordError, SyncError, by_entity, stage};
use crate::model::records::*;
use crate::store::Db;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The OS's words are in the message, once (see `ConfigError::Read`).
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} is not a JSON document: {message}")]
    NotJson { path: String, message: String },
    /// JSON, but not the shape `import` reads.
    #[error("{path} is not an import document: {message}")]
    NotDocument { path: String, message: String },
    #[error("reading {path} stopped: {message}")]
    Reader { path: String, message: String },
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl From<crate::store::StoreError> for ImportError {
    fn from(e: crate::store::StoreError) -> Self {
        ImportError::Sync(SyncError::Store(e))
    }
}

/// Records the reader hands to the writer at a time.
const BATCH: usize = super::PART;

/// Batches the reader may run ahead of the writer (bounds memory to a few batches).
const AHEAD: usize = 4;

/// One batch of one entity from the reader: the entity's place in [`ENTITIES`] and its
/// records, each with its index in the entity's array, as `Vec<(usize, T)>`.
type Batch = (usize, Box<dyn std::any::Any + Send>);

/// The document is read twice (its outline, then its records): one that can be read only
/// once (a pipe, `/dev/stdin`, a `<(…)` substitution) is first copied to a temporary file,
/// removed when the import ends. None for a regular file.
fn readable_twice(path: &Path) -> std::io::Result<Option<tempfile::TempPath>> {
    if std::fs::metadata(path)?.is_file() {
        return Ok(None);
    }
    let mut copy = tempfile::Builder::new().prefix("cport-import-").suffix(".json").tempfile()?;
    copy_checked(&mut std::fs::File::open(path)?, &mut copy)?;
    Ok(Some(copy.into_temp_path()))
}

/// Copies a document that can be read only once, stopping at the first byte no JSON document
/// holds: a NUL, bytes that are not UTF-8, or anything but white space before the opening
/// `{`. A device given by mistake (`/dev/zero`, `/dev/urandom`) is refused at once rather
/// than copied to disk without end. (Written by hand: the copy is `std::io::copy` with
/// these three checks on each chunk.)
fn copy_checked(from: &mut impl std::io::Read, to: &mut impl std::io::Write) -> std::io::Result<()> {
    let refused = |at: usize, what: &str| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("byte {at} is {what}: not a JSON document"))
    };
    let mut buf = vec![0u8; 64 * 1024];
    // The bytes of a character cut by the end of the last chunk.
    let mut cut: Vec<u8> = Vec::new();
    let (mut at, mut begun) = (0usize, false);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        if at == 0 && (chunk.starts_with(b"\xFF\xFE") || chunk.starts_with(b"\xFE\xFF")) {
            return Err(refused(0, "a UTF-16 byte-order mark (the text is UTF-16; save it as UTF-8)"));
        }
        if let Some(i) = chunk.iter().position(|b| *b == 0) {
            return Err(refused(at + i, "a NUL byte"));
        }
        // A byte-order mark at the very start is passed over, as `past_bom` passes it over in
        // a file (it may come a byte at a time from a pipe: each byte is checked at its offset).
        let lead = |(j, b): (usize, &u8)| !(b.is_ascii_whitespace() || BOM.get(at + j) == Some(b));
        if !begun && let Some(i) = chunk.iter().enumerate().position(lead) {
            if chunk[i] == b'[' {
                return Err(refused(
                    at + i,
                    &format!("`[`, where a document begins with `{{`; it must be {A_DOCUMENT}"),
                ));
            }
            if chunk[i] != b'{' {
                return Err(refused(at + i, "not the `{` a document begins with"));
            }
            begun = true;
        }
        let start = at - cut.len();
        cut.extend_from_slice(chunk);
        match std::str::from_utf8(&cut) {
            Ok(_) => cut.clear(),
            Err(e) if e.error_len().is_none() => drop(cut.drain(..e.valid_up_to())),
            Err(e) => return Err(refused(start + e.valid_up_to(), "not UTF-8")),
        }
        to.write_all(chunk)?;
        at += n;
    }
    match cut.is_empty() {
        true => Ok(()),
        false => Err(refused(at - cut.len(), "not UTF-8 (a character cut off at the end)")),
    }
}

/// Reads and applies an import document from a file, streaming it: records are parsed on a
/// blocking thread and staged in batches of [`BATCH`] inside one transaction, so memory stays
/// at a few batches whatever the document's size. Entities are applied in the order of
/// [`ENTITIES`]; a document that lists one before an entity it may refer to has that one
/// held in memory until the end. A document that does not parse as records is read again
/// loosely to report every bad record; nothing is written then.
pub async fn import_file(db: &Db, path: &Path, show_progress: bool) -> Result<Vec<EntityReport>, ImportError> {
    let shown = crate::model::path_shown(path).to_string();
    let read_err = |error| ImportError::Read { path: shown.clone(), error };
    let kept = readable_twice(path).map_err(read_err)?;
    let path = kept.as_deref().unwrap_or(path);
    let spinner = show_progress.then(|| {
        let s = ProgressBar::new_spinner();
        s.set_message(format!("reading {shown}"));
        s.enable_steady_tick(std::time::Duration::from_millis(120));
        s
    });
    let outline = read_outline(path);
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let outline = match outline {
        Ok(o) if o.iter().all(|(e, _)| ENTITIES.contains(&e.as_str())) => o,
        Ok(_) => return Err(loose_report(path, &shown, None)),
        Err(OutlineError::Read(e)) => return Err(read_err(e)),
        Err(OutlineError::Parse(e)) => return Err(loose_report(path, &shown, Some(e))),
    };
    if let Some(twice) =
        outline.iter().enumerate().find_map(|(i, (e, _))| outline[..i].iter().any(|(f, _)| f == e).then_some(e))
    {
        return Err(SyncError::Invalid(
            vec![RecordError {
                entity: twice.clone(),
                index: None,
                id: None,
                field: twice.clone(),
                reason: format!("`{twice}` appears twice in the document"),
            }]
            .into(),
        )
        .into());
    }
    let place = |entity: &str| ENTITIES.iter().position(|e| *e == entity).unwrap_or(usize::MAX);
    // An entity streams when every entity it may refer to that the document holds comes
    // earlier in the file and streams too; otherwise it waits for the end.
    let mut held = [false; ENTITIES.len()];
    let in_file: Vec<usize> = outline.iter().map(|(e, _)| place(e)).collect();
    for (pos, &p) in in_file.iter().enumerate() {
        held[p] = in_file.iter().enumerate().any(|(q, &other)| other < p && (q > pos || held[other]));
    }

    let bar = progress_bar(show_progress, outline.iter().map(|(_, n)| *n).sum());
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Batch>(AHEAD);
    let file = path.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || stream_document(&file, &sender));

    let mut writer = Writer::new(bar.as_ref());
    let mut tx = db.begin().await?;
    let mut waiting: Vec<Batch> = Vec::new();
    let mut failed = None;
    while let Some(batch) = batches.recv().await {
        if held[batch.0] {
            waiting.push(batch);
        } else if let Err(e) = writer.apply(&mut tx, batch).await {
            // Dropping the receiver stops the reader at its next batch.
            failed = Some(e);
            break;
        }
    }
    drop(batches);
    let read = reader.await.map_err(|e| {
        SyncError::Store(crate::store::StoreError::Open {
            url: shown.clone(),
            message: format!("the reader stopped: {e}"),
        })
    })?;
    if let Some(e) = failed {
        tx.rollback().await?;
        return Err(e.into());
    }
    if let Err(e) = read {
        tx.rollback().await?;
        return Err(match e {
            StreamError::Read(e) => read_err(e),
            StreamError::Parse(e) => loose_report(path, &shown, Some(e)),
        });
    }
    waiting.sort_by_key(|b| b.0);
    for batch in waiting {
        writer.apply(&mut tx, batch).await?;
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if !writer.found.errs.is_empty() {
        tx.rollback().await?;
        return Err(writer.found.into_error(None).into());
    }
    tx.commit().await?;
    Ok(writer.written())
}

fn progress_bar(show: bool, total: usize) -> Option<ProgressBar> {
    show.then(|| {
        let b = ProgressBar::new(total as u64);
        b.set_style(
            ProgressStyle::with_template("{msg:>18} [{bar:40}] {pos}/{len} records, {per_sec}, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b
    })
}

/// Stages batches of any entity, keeping per entity what its earlier batches found and the
/// counts.
struct Writer<'a> {
    bar: Option<&'a ProgressBar>,
    known: Vec<Known>,
    reports: Vec<Option<EntityReport>>,
    /// What validation found, bounded like the loose reading's report: a document of a
    /// million bad records is refused without holding a million errors.
    found: Listed,
}

impl<'a> Writer<'a> {
    fn new(bar: Option<&'a ProgressBar>) -> Writer<'a> {
        Writer {
            bar,
            known: vec![Known::default(); ENTITIES.len()],
            reports: vec![None; ENTITIES.len()],
            found: Listed::default(),
        }
    }

    /// What the document wrote, once its transaction committed: the reports, counted in the
    /// records metric.
    fn written(self) -> Vec<EntityReport> {
        let reports: Vec<EntityReport> = self.reports.into_iter().flatten().collect();
        super::count_written(&reports);
        reports
    }

    async fn apply(&mut self, tx: &mut crate::store::Tx, (place, records): Batch) -> Result<(), SyncError> {
        let bar = self.bar;
        let tick = |n: u64| {
            if let Some(b) = bar {
                b.inc(n)
            }
        };
        if let Some(b) = bar {
            b.set_message(ENTITIES[place]);
        }
        let part = by_entity!(ENTITIES[place], T => {
            let records = records
                .downcast::<Vec<(usize, T)>>()
                .map_err(|_| SyncError::UnknownEntity(ENTITIES[place].to_string()))?;
            let mut errs = Vec::new();
            let part = stage(tx, &records, &mut self.known[place], &mut errs, tick).await?;
            self.found.push(errs);
            Ok(part)
        })?;
        self.reports[place]
            .get_or_insert_with(|| EntityReport { entity: ENTITIES[place].to_string(), ..Default::default() })
            .add(&part);
        Ok(())
    }
}

/// The file, buffered, past a UTF-8 byte-order mark if it starts with one (which RFC 8259
/// lets a reader ignore, and some Windows tools write).
fn past_bom(file: std::fs::File) -> std::io::Result<BufReader<std::fs::File>> {
    use std::io::BufRead;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    if reader.fill_buf()?.starts_with(BOM) {
        reader.consume(BOM.len());
    }
    Ok(reader)
}

/// The UTF-8 byte-order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

enum OutlineError {
    Read(std::io::Error),
    Parse(String),
}

/// What an import document is, as a reader expecting one says it: a file holding one
/// entity's array (the sync API's body, `examples/visuals.json`) is told where that goes.
const A_DOCUMENT: &str =
    "an object of entity arrays, like {\"visuals\": [...]} (one entity's array alone is PUT to /api/v1/{entity})";

/// One entity's array of a document, read by one of the document's three readings: its
/// outline, its typed records, and the loose check that names every bad record.
trait EntityReader {
    fn entity<'de, A: MapAccess<'de>>(&mut self, name: String, map: &mut A) -> Result<(), A::Error>;
}

/// A document, an object of entity arrays, each array given to `R` in the order the file
/// lists them.
struct EntityArrays<R>(R);

impl<'de, R: EntityReader> Visitor<'de> for EntityArrays<R> {
    type Value = R;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(A_DOCUMENT)
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<R, A::Error> {
        while let Some(name) = map.next_key::<String>()? {
            self.0.entity(name, &mut map)?;
        }
        Ok(self.0)
    }
}

/// The document's entities in the order the file lists them, each with its number of
/// records, read without keeping any record.
fn read_outline(path: &Path) -> Result<Vec<(String, usize)>, OutlineError> {
    struct Outline(Vec<(String, usize)>);
    impl EntityReader for Outline {
        fn entity<'de, A: MapAccess<'de>>(&mut self, name: String, map: &mut A) -> Result<(), A::Error> {
            // A sequence of zero-sized values: counted, nothing kept.
            let records: Vec<IgnoredAny> = map.next_value()?;
            self.0.push((name, records.len()));
            Ok(())
        }
    }
    let file = std::fs::File::open(path).map_err(OutlineError::Read)?;
    let mut de = serde_json::Deserializer::from_reader(past_bom(file).map_err(OutlineError::Read)?);
    let outline = de.deserialize_map(EntityArrays(Outline(Vec::new()))).map_err(|e| match e.classify() {
        serde_json::error::Category::Io => OutlineError::Read(e.into()),
        _ => OutlineError::Parse(e.to_string()),
    })?;
    de.end().map_err(|e| OutlineError::Parse(e.to_string()))?;
    Ok(outline.0)
}

enum StreamError {
    Read(std::io::Error),
    Parse(String),
}

/// Parses the document's records and sends them in batches; stops early (with `Ok`) when
/// the writer has gone.
fn stream_document(path: &Path, sender: &tokio::sync::mpsc::Sender<Batch>) -> Result<(), StreamError> {
    /// Why the reader stopped before the end: the writer has gone.
    const GONE: &str = "the writer has stopped";
    struct Doc<'s>(&'s tokio::sync::mpsc::Sender<Batch>);
    struct Records<'s, T>(usize, &'s tokio::sync::mpsc::Sender<Batch>, std::marker::PhantomData<T>);
    impl<'de, T: DeserializeOwned + Send + 'static> DeserializeSeed<'de> for Records<'_, T> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de, T: DeserializeOwned + Send + 'static> Visitor<'de> for Records<'_, T> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut index: usize = 0;
            let mut batch: Vec<(usize, T)> = Vec::with_capacity(BATCH);
            // Each record as a tree first, then typed strictly (see `super::strict`): an object
            // written as an array stops this reader, and the loose one names it.
            while let Some(super::strict::Tree(tree)) = seq.next_element()? {
                let rec: T = super::strict::from_value(tree).map_err(A::Error::custom)?;
                batch.push((index, rec));
                index += 1;
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    self.1.blocking_send((self.0, Box::new(full))).map_err(|_| A::Error::custom(GONE))?;
                }
            }
            if !batch.is_empty() {
                self.1.blocking_send((self.0, Box::new(batch))).map_err(|_| A::Error::custom(GONE))?;
            }
            Ok(())
        }
    }
    impl EntityReader for Doc<'_> {
        fn entity<'de, A: MapAccess<'de>>(&mut self, name: String, map: &mut A) -> Result<(), A::Error> {
            let Some(place) = ENTITIES.iter().position(|e| *e == name) else {
                return Err(A::Error::custom(SyncError::UnknownEntity(name)));
            };
            let read: Result<Result<(), A::Error>, SyncError> = by_entity!(name.as_str(), T => {
                Ok(map.next_value_seed(Records::<T>(place, self.0, std::marker::PhantomData)))
            });
            read.map_err(A::Error::custom)?
        }
    }
    let file = std::fs::File::open(path).map_err(StreamError::Read)?;
    let mut de = serde_json::Deserializer::from_reader(past_bom(file).map_err(StreamError::Read)?);
    match de.deserialize_map(EntityArrays(Doc(sender))) {
        Ok(_) => Ok(()),
        Err(_) if sender.is_closed() => Ok(()),
        Err(e) if e.classify() == serde_json::error::Category::Io => Err(StreamError::Read(e.into())),
        Err(e) => Err(StreamError::Parse(e.to_string())),
    }
}

/// The error for a document that did not parse as records: every bad record (the first
/// [`MOST_ERRORS`]), found by reading it again loosely, or `typed` (the strict reader's message)
/// when none is found. The second reading streams like the first, one record at a time, so a
/// large document with one bad value needs no more memory than a good one.
fn loose_report(path: &Path, shown: &str, typed: Option<String>) -> ImportError {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(error) => return ImportError::Read { path: shown.to_string(), error },
    };
    let reader = match past_bom(file) {
        Ok(r) => r,
        Err(error) => return ImportError::Read { path: shown.to_string(), error },
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut found = Listed::default();
    if let Err(e) = de.deserialize_map(EntityArrays(LooseDoc(&mut found))) {
        let source = path;
        let path = shown.to_string();
        return match e.classify() {
            serde_json::error::Category::Io => ImportError::Read { path, error: e.into() },
            // JSON of another shape (one entity's array, made for the API) is said as such.
            serde_json::error::Category::Data => ImportError::NotDocument { path, message: e.to_string() },
            // Bytes no JSON document holds are said as a piped document's are (by the same
            // check, at the byte they stand at), not as the parser's surprise at a place in them.
            _ => match std::fs::File::open(source).and_then(|mut f| copy_checked(&mut f, &mut std::io::sink())) {
                Err(error) if error.kind() == std::io::ErrorKind::InvalidData => ImportError::Read { path, error },
                _ => ImportError::NotJson { path, message: e.to_string() },
            },
        };
    }
    found.into_error(Some(typed.unwrap_or_else(|| "not a document of records".into()))).into()
}

/// The document read loosely: each entity's value, record by record.
struct LooseDoc<'a>(&'a mut Listed);

impl EntityReader for LooseDoc<'_> {
    fn entity<'de, A: MapAccess<'de>>(&mut self, name: String, map: &mut A) -> Result<(), A::Error> {
        map.next_value_seed(LooseEntity { entity: &name, found: &mut *self.0 })
    }
}

/// One entity's value read loosely: an array whose records are each checked as that entity's.
struct LooseEntity<'a> {
    entity: &'a str,
    found: &'a mut Listed,
}

impl<'de> DeserializeSeed<'de> for LooseEntity<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl LooseEntity<'_> {
    fn not_an_array<E>(self) -> Result<(), E> {
        self.found.entity(self.entity, "expected an array of records".into());
        Ok(())
    }
}

impl<'de> Visitor<'de> for LooseEntity<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if !ENTITIES.contains(&self.entity) {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            self.found.entity(self.entity, SyncError::UnknownEntity(self.entity.to_string()).to_string());
            return Ok(());
        }
        let mut index = 0;
        while let Some(raw) = seq.next_element::<Box<serde_json::value::RawValue>>()? {
            let mut errs = Vec::new();
            // A value JSON cannot hold (a number past any float, a lone surrogate) is named by
            // its record and field, as the API names it, and the reading goes on.
            let v: serde_json::Value = match serde_json::from_str(raw.get()) {
                Ok(v) => v,
                Err(e) => {
                    let u = super::Unreadable::of(self.entity, raw.get(), &e);
                    let entity = self.entity.to_string();
                    self.found.push(vec![RecordError {
                        entity,
                        index: Some(index),
                        id: u.id,
                        field: u.field,
                        reason: u.reason,
                    }]);
                    index += 1;
                    continue;
                }
            };
            // A tree keeps the last of two equal keys without a word: asked of the text.
            if let Some(key) = super::repeated::repeated_in_record(raw.get()) {
                errs.push(super::given_twice(self.entity, index, Some(&v), &key));
            } else {
                // Every name is known here (checked above), so `by_entity!` always has a type.
                let _: Result<(), SyncError> = by_entity!(self.entity, T => {
                    super::parse_value::<T>(index, v, &mut errs);
                    Ok(())
                });
            }
            self.found.push(errs);
            index += 1;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.not_an_array()
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.not_an_array()
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.not_an_array()
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.not_an_array()
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.not_an_array()
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.not_an_array()
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.not_an_array()
    }
}

fn indexed<T: Clone + Send + 'static>(place: &str, v: &[T]) -> Option<Batch> {
    let place = ENTITIES.iter().position(|e| *e == place)?;
    (!v.is_empty()).then(|| (place, Box::new(v.iter().cloned().enumerate().collect::<Vec<_>>()) as _))
}

/// Applies a parsed document in one transaction, entity by entity in dependency order.
pub async fn apply_document(db: &Db, doc: &Document, show_progress: bool) -> Result<Vec<EntityReport>, SyncError> {
    let bar = progress_bar(show_progress, doc.total());
    let mut writer = Writer::new(bar.as_ref());
    let mut tx = db.begin().await?;
    // Each entity's name is its field's: written once, so the two cannot disagree.
    macro_rules! in_order {
        ($($entity:ident)*) => { [$(indexed(stringify!($entity), &doc.$entity)),*] };
    }
    let batches = in_order! { clients contacts jobs art_requirements visuals deliveries stock blank_stock
    purchase_orders invoices account_summaries price_cards };
    for batch in batches.into_iter().flatten() {
        writer.apply(&mut tx, batch).await?;
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if !writer.found.errs.is_empty() {
        tx.rollback().await?;
        return Err(writer.found.into_error(None));
    }
    tx.commit().await?;
    Ok(writer.written())
}
