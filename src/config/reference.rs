//! The configuration reference, generated from the config types: every key with its type (from
//! the JSON Schema that `schemars` derives from the structs), its default (from
//! `Config::default()`), its environment variable and its doc comment.
//! `docs/src/reference/configuration.md` is this page; `tests/reference.rs` fails when they
//! differ, and `scripts/reference` writes it again.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::Config;
use crate::markdown::cell;

/// One key of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Dotted path: `smtp.host`.
    pub path: String,
    /// `string`, `integer`, `secret`, `list of strings`, or the choices: `` `a` \| `b` ``.
    pub kind: String,
    /// The default as TOML would spell it.
    pub default: String,
    /// The variable that sets it: `CPORT_SMTP__HOST`.
    pub env: String,
    /// What it does (the field's doc comment).
    pub description: String,
}

/// A table of the file: `""` for the top level, `email.dkim` for `[email.dkim]`.
#[derive(Debug, Clone)]
pub struct Section {
    pub path: String,
    pub description: String,
    pub keys: Vec<Key>,
}

/// The JSON Schema of [`Config`], every sub-table inlined.
pub fn schema() -> Value {
    let generator = SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true).into_generator();
    generator.into_root_schema_for::<Config>().to_value()
}

/// Every table of the configuration with its keys, in the order of the structs.
pub fn sections() -> Vec<Section> {
    let defaults = toml::Value::try_from(Config::default()).unwrap_or(toml::Value::Table(Default::default()));
    let mut out = vec![];
    walk(&schema(), &defaults, "", "", &mut out);
    out
}

fn walk(schema: &Value, defaults: &toml::Value, path: &str, description: &str, out: &mut Vec<Section>) {
    let mut section = Section { path: path.to_string(), description: description.to_string(), keys: vec![] };
    let mut tables = vec![];
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, property) in properties.into_iter().flatten() {
        let key = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
        let default = defaults.get(name).cloned().unwrap_or(toml::Value::String(String::new()));
        let doc = text(property.get("description"));
        if property.get("properties").is_some() {
            tables.push((property, default, key, doc));
            continue;
        }
        section.keys.push(Key {
            env: format!("CPORT_{}", key.replace('.', "__").to_ascii_uppercase()),
            kind: kind(property),
            default: default.to_string(),
            description: doc,
            path: key,
        });
    }
    out.push(section);
    for (property, default, key, doc) in tables {
        walk(property, &default, &key, &doc, out);
    }
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn kind(p: &Value) -> String {
    if let Some(choices) = p.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = choices.iter().filter_map(Value::as_str).map(|c| format!("`{c}`")).collect();
        return names.join(" \\| ");
    }
    // A field whose type is an enum with a doc comment of its own comes as `allOf: [enum]` or
    // a `oneOf` of constants, depending on how schemars inlines it.
    if let Some(inner) = p.get("allOf").and_then(Value::as_array).and_then(|a| a.first()) {
        return kind(inner);
    }
    if let Some(one_of) = p.get("oneOf").and_then(Value::as_array) {
        let names: Vec<String> =
            one_of.iter().filter_map(|v| v.get("const").and_then(Value::as_str)).map(|c| format!("`{c}`")).collect();
        if !names.is_empty() {
            return names.join(" \\| ");
        }
    }
    match (p.get("type").and_then(Value::as_str), p.get("format").and_then(Value::as_str)) {
        (Some("string"), Some("password")) => "secret".into(),
        (Some("array"), _) => match p.pointer("/items/type").and_then(Value::as_str) {
            Some(t) => format!("list of {t}s"),
            None => "list".into(),
        },
        (Some(t), _) => t.to_string(),
        (None, _) => "value".into(),
    }
}

const INTRO: &str = "\
# Configuration

<!-- Generated from src/config/mod.rs by src/config/reference.rs: edit the doc comments there,
     then run scripts/reference. tests/reference.rs fails when this page is out of date. -->

A TOML file; every key is optional except the two secrets (`api_token`, `link_secret`),
which `serve` refuses to start without (a command that makes or sends links needs only
`link_secret`; `migrate`, `import` and `--dry-run` neither). `cport` reads
`--config FILE`, or `./cport.toml` when it exists.

Any key can be set from the environment: `CPORT_` and the key's path in capitals with `__`
between the parts (`CPORT_SMTP__HOST`, `CPORT_EMAIL__DKIM__SELECTOR`); for a key of a table,
`CPORT_<TABLE>_<KEY>` works too when unambiguous (`CPORT_TELEGRAM_TOKEN`). A list is given
comma-separated. The environment wins over the file, the file over the defaults.

An unknown key, a value of the wrong type, a number outside its range, a bad cron expression
or time zone stops start-up with an error that names the key or variable. Every count and
interval has a range, given in the error (`outbox.workers` 1 to 64, `digest.link_ttl_days`
1 to 366, `outbox.lease_seconds` 3 to 86400…): a zero would stop the work it counts, and a
number past the top would overflow the time it feeds. A `CPORT_` variable must be UTF-8 text;
other variables are not read. Secrets never appear in logs, and a database
URL's password is masked.
";

/// The page: an introduction, then one table per table of the file.
pub fn markdown() -> String {
    let mut out = String::from(INTRO);
    for section in sections() {
        if section.path.is_empty() {
            out.push_str("\n## Top level\n\n");
        } else {
            out.push_str(&format!("\n## `[{}]`\n\n", section.path));
        }
        if !section.description.is_empty() {
            out.push_str(&section.description);
            out.push_str("\n\n");
        }
        out.push_str("| key | type | default | environment | what it does |\n|---|---|---|---|---|\n");
        for k in &section.keys {
            let name = k.path.rsplit('.').next().unwrap_or(&k.path);
            out.push_str(&format!(
                "| `{name}` | {} | `{}` | `{}` | {} |\n",
                k.kind,
                cell(&k.default),
                k.env,
                cell(&k.description)
            ));
        }
    }
    out
}
