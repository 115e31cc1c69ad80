//! Keys given twice in one JSON object of a sync batch.
//!
//! serde_json keeps the last of two equal keys in an object without a word (RFC 8259 leaves
//! it open), and no option of it refuses them; a record that says two things about one field
//! is refused instead, as `cport import` refuses it. Written by hand as a serde visitor that
//! only walks the text: no value is kept.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The first key a record of a batch (a JSON array of objects) gives twice, in that record
/// or in an object inside it: the record's index and the key's path in the record
/// (`process_lines[1].unit_price`). `None` when there is none, or when `body` is not such an
/// array (that is said elsewhere).
pub fn repeated_key(body: &[u8]) -> Option<(usize, String)> {
    let found = Found::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Walk { found: &found, record: None }.deserialize(&mut de);
    found.first.into_inner()
}

/// The path of the first key one record (a JSON object) gives twice, in it or in an object
/// inside it.
pub fn repeated_in_record(record: &str) -> Option<String> {
    let found = Found::default();
    let mut de = serde_json::Deserializer::from_str(record);
    let _ = Walk { found: &found, record: Some(0) }.deserialize(&mut de);
    found.first.into_inner().map(|(_, key)| key)
}

/// One step from a record down to a value: a field's name or an array's index.
enum Step {
    Key(String),
    Index(usize),
}

/// The walk's state: where in the record it is, and the first repeated key found.
#[derive(Default)]
struct Found {
    /// The steps down to the value being read, kept as one stack so that reading a value
    /// costs nothing more than the key it is under.
    at: RefCell<Vec<Step>>,
    first: RefCell<Option<(usize, String)>>,
}

impl Found {
    /// The path to `key` under where the walk is: `tracking.carrier`, `lines[0].qty`.
    fn path_to(&self, key: &str) -> String {
        let mut path = String::new();
        for step in self.at.borrow().iter() {
            match step {
                Step::Key(k) if path.is_empty() => path.push_str(k),
                Step::Key(k) => {
                    path.push('.');
                    path.push_str(k);
                }
                Step::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        path
    }
}

/// Walks one JSON value. `record` is the index of the record it is in; `None` for the batch
/// itself, whose elements are the records.
struct Walk<'a> {
    found: &'a Found,
    record: Option<usize>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            // The batch's elements are the records; an array inside a record is a step down.
            let record = match self.record {
                Some(r) => {
                    self.found.at.borrow_mut().push(Step::Index(index));
                    Some(r)
                }
                None => Some(index),
            };
            let more = items.next_element_seed(Walk { found: self.found, record })?;
            if self.record.is_some() {
                self.found.at.borrow_mut().pop();
            }
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<(), A::Error> {
        // A batch that is an object, not an array: said elsewhere.
        let Some(record) = self.record else {
            return Ok(());
        };
        let mut keys = HashSet::new();
        while let Some(key) = fields.next_key::<String>()? {
            if keys.contains(&key) {
                *self.found.first.borrow_mut() = Some((record, self.found.path_to(&key)));
                return Err(de::Error::custom("a key given twice"));
            }
            self.found.at.borrow_mut().push(Step::Key(key));
            fields.next_value_seed(Walk { found: self.found, record: self.record })?;
            if let Some(Step::Key(key)) = self.found.at.borrow_mut().pop() {
                keys.insert(key);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::repeated_key;

    #[test]
    fn a_key_given_twice_is_named_with_its_record() {
        assert_eq!(
            repeated_key(br#"[{"id":"J-1","name":"a"},{"id":"J-2","name":"b","id":"J-3"}]"#),
            Some((1, "id".into()))
        );
        assert_eq!(
            repeated_key(br#"[{"id":"J-1","lines":[{"qty":1},{"qty":1,"qty":2}]}]"#),
            Some((0, "lines[1].qty".into()))
        );
        assert_eq!(
            repeated_key(br#"[{"id":"D-1","tracking":{"carrier":"A","carrier":"B"}}]"#),
            Some((0, "tracking.carrier".into()))
        );
        assert_eq!(repeated_key(br#"[{"id":"J-1","a":{"id":1}},{"id":"J-1"}]"#), None, "one key per object");
        assert_eq!(repeated_key(br#"{"id":"J-1","id":"J-2"}"#), None, "not a batch: said elsewhere");
        assert_eq!(repeated_key(b"not json"), None);
    }
}
