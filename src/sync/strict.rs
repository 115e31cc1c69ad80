//! Reading TOT's JSON into typed records as the format is written: a record, and every
//! object inside it (a delivery's `tracking`, each of its `lines`), must be a JSON object with
//! named fields. serde lets a struct also be read from an array, filling its fields in the
//! order they are declared; a sender's `["DPD", "123"]` would then be taken silently, and a
//! swapped pair would swap two values, with the check for unknown fields never run. Written by
//! hand because neither serde nor serde_json has a switch for it: this deserializer is
//! serde_json's tree, except that a struct asked of anything but an object is refused.

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use serde_json::{Error, Value};

/// A JSON tree read strictly (see the module's words).
pub struct Strict(pub Value);

/// `T` from a JSON tree, its structs from objects only.
pub fn from_value<T: de::DeserializeOwned>(v: Value) -> Result<T, Error> {
    T::deserialize(Strict(v))
}

/// A JSON tree read from a stream, refusing an object that names a key twice (serde_json's
/// own tree keeps the last without a word, where a typed record refuses it).
pub struct Tree(pub Value);

impl<'de> de::Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tree;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, b: bool) -> Result<Tree, E> {
                Ok(Tree(Value::Bool(b)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Tree, E> {
                Ok(Tree(Value::from(n)))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Tree, E> {
                Ok(Tree(Value::from(n)))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Tree, E> {
                serde_json::Number::from_f64(n)
                    .map(|n| Tree(Value::Number(n)))
                    .ok_or_else(|| E::custom("not a finite number"))
            }
            fn visit_str<E>(self, s: &str) -> Result<Tree, E> {
                Ok(Tree(Value::String(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Tree, E> {
                Ok(Tree(Value::String(s)))
            }
            fn visit_unit<E>(self) -> Result<Tree, E> {
                Ok(Tree(Value::Null))
            }
            fn visit_none<E>(self) -> Result<Tree, E> {
                Ok(Tree(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
                <Tree as de::Deserialize>::deserialize(d)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
                let mut items = Vec::new();
                while let Some(Tree(v)) = seq.next_element()? {
                    items.push(v);
                }
                Ok(Tree(Value::Array(items)))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
                let mut fields = serde_json::Map::new();
                while let Some((key, Tree(v))) = map.next_entry::<String, Tree>()? {
                    if fields.contains_key(&key) {
                        return Err(de::Error::custom(format!("`{key}` is given twice in one object")));
                    }
                    fields.insert(key, v);
                }
                Ok(Tree(Value::Object(fields)))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a JSON value is, in the words of an error message.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'de> IntoDeserializer<'de, Error> for Strict {
    type Deserializer = Strict;
    fn into_deserializer(self) -> Strict {
        self
    }
}

type Items = std::iter::Map<std::vec::IntoIter<Value>, fn(Value) -> Strict>;

fn seq(items: Vec<Value>) -> SeqDeserializer<Items, Error> {
    SeqDeserializer::new(items.into_iter().map(Strict as fn(Value) -> Strict))
}

type Fields = std::iter::Map<serde_json::map::IntoIter, fn((String, Value)) -> (String, Strict)>;

fn map(fields: serde_json::Map<String, Value>) -> MapDeserializer<'static, Fields, Error> {
    fn field((k, v): (String, Value)) -> (String, Strict) {
        (k, Strict(v))
    }
    MapDeserializer::new(fields.into_iter().map(field as fn((String, Value)) -> (String, Strict)))
}

impl<'de> Deserializer<'de> for Strict {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => n.deserialize_any(visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => {
                let mut access = seq(items);
                let out = visitor.visit_seq(&mut access)?;
                access.end()?;
                Ok(out)
            }
            Value::Object(fields) => {
                let mut access = map(fields);
                let out = visitor.visit_map(&mut access)?;
                access.end()?;
                Ok(out)
            }
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            v @ Value::Object(_) => Strict(v).deserialize_any(visitor),
            other => Err(de::Error::custom(format!("expected an object with named fields, not {}", kind(&other)))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Strict(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Line {
        description: String,
        qty: i64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Record {
        id: String,
        #[serde(default)]
        tracking: Option<Line>,
        #[serde(default)]
        lines: Vec<Line>,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn objects_read_as_before_and_arrays_for_objects_are_refused() {
        let good = json!({"id": "D-1", "tracking": {"description": "DPD", "qty": 1}, "lines": [{"description": "Tee", "qty": 5}], "tags": ["a"]});
        let r: Record = super::from_value(good).unwrap();
        assert_eq!((r.lines[0].qty, r.tags.len(), r.tracking.unwrap().description.as_str()), (5, 1, "DPD"));
        for bad in
            [json!(["D-1"]), json!({"id": "D-1", "tracking": ["DPD", 1]}), json!({"id": "D-1", "lines": [["Tee", 5]]})]
        {
            let e = super::from_value::<Record>(bad.clone()).expect_err("an array is no object");
            assert!(e.to_string().contains("expected an object with named fields, not an array"), "{bad}: {e}");
        }
        let e = super::from_value::<Record>(json!({"id": "D-1", "extra": 1})).unwrap_err();
        assert!(e.to_string().contains("unknown field `extra`"), "{e}");
        assert!(super::from_value::<Record>(json!({"id": 7})).is_err());
    }
}
