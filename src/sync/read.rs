//! One record of a batch read from JSON: typed as its entity, or refused saying which field
//! is at fault and why, named by the record's id where it can still be read.

use std::collections::HashMap;

use super::{SyncError, by_entity, strict};
use crate::model::records::*;
use crate::store::records::Upsert;

/// The refusal of the record at `index` (read as `record`, if it could be) that gives `key`
/// twice in one object (see [`super::repeated`]): the same from the API and from `cport import`.
pub(crate) fn given_twice(entity: &str, index: usize, record: Option<&serde_json::Value>, key: &str) -> RecordError {
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
pub(super) fn error_id(id: &str) -> String {
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
            let said = text.split(" at line ").next().unwrap_or(&text);
            // serde_json's words for an escape that is no character name the reader's state.
            match said {
                "lone leading surrogate in hex escape"
                | "unexpected end of hex escape"
                | "invalid unicode code point" => {
                    "cannot be read: a `\\u` escape in it is no character (a surrogate, `\\uD800` to `\\uDFFF`, \
                     must come as a pair, high then low, and each escape has four hex digits)"
                        .to_string()
                }
                said => format!("cannot be read: {said}"),
            }
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
            let (field, reason) = (crate::model::visible(field, 100), crate::model::visible(&in_words(&inner), 1_000));
            errs.push(RecordError { entity: T::ENTITY.into(), index: Some(index), id, field, reason });
            None
        }
    }
}

/// serde's words for a value of the wrong type in a sender's terms: "expected i64" is
/// "expected a whole number", and a number read as a float where a whole number is wanted
/// (`1.5`, `1e3`, or digits too many for any count, which JSON readers hold as a float) is
/// said to be one. Other words pass unchanged.
fn in_words(inner: &str) -> String {
    const WHOLE: &[&str] = &["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize", "isize"];
    let Some((said, wanted)) = inner.rsplit_once(", expected ") else {
        return inner.to_string();
    };
    if !WHOLE.contains(&wanted) {
        return inner.to_string();
    }
    if let Some(n) = said.strip_prefix("invalid type: floating point `").and_then(|n| n.strip_suffix('`')) {
        return format!(
            "expected a whole number in digits, not `{n}` (a number with a fraction or an exponent, or with too many \
             digits for any count, is refused)"
        );
    }
    // A whole number past what the field holds (beyond 64 bits' range, or below zero where
    // none is taken).
    if let Some(n) = said.strip_prefix("invalid value: integer `").and_then(|n| n.strip_suffix('`')) {
        return format!("`{n}` is out of the range of whole numbers this field takes");
    }
    format!("{said}, expected a whole number")
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

#[cfg(test)]
mod tests {
    use super::in_words;

    #[test]
    fn a_number_of_the_wrong_kind_is_said_in_the_senders_terms() {
        for (serde, said) in [
            ("invalid type: floating point `1e+20`, expected i64", "expected a whole number in digits, not `1e+20`"),
            ("invalid type: floating point `1.5`, expected u32", "expected a whole number in digits, not `1.5`"),
            ("invalid type: string \"5\", expected i64", "invalid type: string \"5\", expected a whole number"),
            ("invalid type: integer `5`, expected a string", "invalid type: integer `5`, expected a string"),
            (
                "invalid value: integer `10000000000000000000`, expected i64",
                "`10000000000000000000` is out of the range",
            ),
        ] {
            let words = in_words(serde);
            assert!(words.starts_with(said) && !words.contains("i64"), "{serde}: {words}");
        }
    }
}
