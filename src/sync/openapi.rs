//! The API contract: an OpenAPI 3.1 document of the sync API, the banners API, the change feed
//! and `POST /inbound/email`, served at `GET /api/v1/openapi.json`.
//!
//! The schemas are generated (schemars) from the types the handlers read and write: the
//! records of `model::records`, the reports of `sync`, the banner input, the change, the error
//! body. The operations are listed here, one per entry of [`super::api::ROUTES`];
//! `tests/openapi.rs` checks that the two agree, that every route is served, that every
//! example of the data-format reference and of `examples/` validates against the document, and
//! (with schemathesis) that generated requests get the answers it documents.
//! `docs/src/reference/api.md` is [`markdown`] of it.

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::{DeleteReport, EntityReport, SyncError, by_entity};
use crate::markdown::cell;
use crate::model::records::*;

/// The schema of `T`, its parts added to the generator's components.
fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Value {
    g.subschema_for::<T>().to_value()
}

fn json_body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn answer(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// The error answers every bearer-token route can give.
fn with_errors(mut responses: Value, error: &Value, codes: &[(&str, &str)]) -> Value {
    let common = [
        ("401", "The bearer token is missing or wrong (`WWW-Authenticate: Bearer`)."),
        ("503", "The store is unreachable; send again later."),
    ];
    for (code, why) in common.iter().chain(codes.iter()) {
        responses[*code] = answer(why, error.clone());
    }
    responses
}

/// The record schema of an entity the sync API accepts.
fn record_schema(entity: &str, g: &mut SchemaGenerator) -> Result<Value, SyncError> {
    by_entity!(entity, T => Ok(schema::<T>(g)))
}

/// The whole document. `server` is the public base URL the API is reached at.
pub fn document(server: &str) -> Value {
    let mut g =
        SchemaSettings::draft2020_12().with(|s| s.definitions_path = "/components/schemas".into()).into_generator();
    let error = schema::<crate::web::ErrorBody>(&mut g);
    // The import document (`cport import FILE`) is no request body, but the same records: its
    // schema is in the components for those who write such files.
    schema::<Document>(&mut g);
    let mut paths = Map::new();

    for entity in ENTITIES {
        let Ok(record) = record_schema(entity, &mut g) else {
            continue;
        };
        let report = schema::<EntityReport>(&mut g);
        let deleted = schema::<DeleteReport>(&mut g);
        let ids = schema::<super::api::DeleteBody>(&mut g);
        paths.insert(
            format!("/api/v1/{entity}"),
            json!({
                "put": {
                    "operationId": format!("put_{entity}"),
                    "tags": ["sync"],
                    "summary": format!("Upsert {entity}"),
                    "description": format!(
                        "The body is a JSON array of {entity} records; each replaces the record with \
                         its key whole. The batch is one transaction: every record is checked (fields, \
                         references) before anything is written, and one bad record means nothing is \
                         written. An empty array changes nothing."
                    ),
                    "requestBody": json_body(json!({"type": "array", "items": record})),
                    "responses": with_errors(
                        json!({"200": answer("The batch was applied.", report)}),
                        &error,
                        &[
                            ("400", "The body ended before its `Content-Length` (a request cut short), or a query parameter was given (this route takes none); nothing was written."),
                            ("413", "The body is larger than `max_body_bytes`."),
                            ("415", "The body has a `Content-Encoding` (gzip) cport does not undo: send it as it is."),
                            ("409", "Another request wrote the same new records at the same moment (a retry sent while the first was still running); nothing of this one was written: send it again."),
                            ("422", "Records are invalid (each error names its record and field); nothing was written."),
                        ],
                    ),
                },
                "delete": {
                    "operationId": format!("delete_{entity}"),
                    "tags": ["sync"],
                    "summary": format!("Delete {entity} by key"),
                    "description": "Deletes the records with these keys and what hangs off them; other \
                                    records that name one (a job its contact, a delivery its job) \
                                    lose the name. An absent key is not an error, so a delete can be \
                                    sent again; a key named twice in one list is (422, naming both \
                                    places), and nothing is deleted.",
                    "requestBody": json_body(ids),
                    "responses": with_errors(
                        json!({"200": answer("The records were deleted.", deleted)}),
                        &error,
                        &[
                            ("400", "A query parameter was given (this route takes none); nothing was deleted."),
                            ("413", "The body is larger than `max_body_bytes`."),
                            ("415", "The body has a `Content-Encoding` (gzip) cport does not undo: send it as it is."),
                            ("422", "A key is not a valid id, or the body has another shape; nothing was deleted."),
                        ],
                    ),
                },
            }),
        );
    }

    let input = schema::<crate::actions::banners::BannerInput>(&mut g);
    let posted = schema::<crate::actions::banners::Posted>(&mut g);
    let listed = schema::<super::api::ListedBanner>(&mut g);
    paths.insert(
        "/api/v1/banners".into(),
        json!({
            "post": {
                "operationId": "post_banner",
                "tags": ["banners"],
                "summary": "Post a stop-press banner",
                "description": "Shown on the portal, in digests and in chat from `starts_at` until \
                                `expires_at`; an urgent one is also sent at once to every contact of \
                                its audience (`queued` counts those messages).",
                "requestBody": json_body(input),
                "responses": with_errors(
                    json!({"201": answer("The banner was posted.", posted)}),
                    &error,
                    &[
                        ("400", "A field is missing or invalid (the message names it); nothing was posted."),
                        ("413", "The body is larger than `max_body_bytes`."),
                        ("415", "The body has a `Content-Encoding` (gzip) cport does not undo: send it as it is."),
                        (
                            "409",
                            "The same banner (words, severity, times, audience) was posted in the last ten minutes, \
                             by this route or another: the message names it; nothing more was posted or sent.",
                        ),
                    ],
                ),
            },
            "get": {
                "operationId": "list_banners",
                "tags": ["banners"],
                "summary": "Every banner with its audience",
                "responses": with_errors(
                    json!({"200": answer("Every banner, newest first.", json!({"type": "array", "items": listed}))}),
                    &error,
                    &[],
                ),
            },
        }),
    );
    paths.insert(
        "/api/v1/banners/{id}".into(),
        json!({
            "delete": {
                "operationId": "retract_banner",
                "tags": ["banners"],
                "summary": "Retract a banner so it shows nowhere",
                "parameters": [{"name": "id", "in": "path", "required": true,
                                "description": "The banner's id.", "schema": {"type": "integer", "format": "int64"}}],
                "responses": with_errors(
                    json!({"204": {"description": "The banner was retracted (now, or before: a retry is safe)."}}),
                    &error,
                    &[
                        ("400", "The id is not a number."),
                        ("404", "No such banner."),
                    ],
                ),
            },
        }),
    );

    let page = schema::<super::api::ChangesPage>(&mut g);
    paths.insert(
        "/api/v1/changes".into(),
        json!({
            "get": {
                "operationId": "list_changes",
                "tags": ["change feed"],
                "summary": "What clients did, in sequence order",
                "description": "Page by passing the last `seq` seen as `after`; `next_after` is that value \
                                for the next call. Sequence numbers are given inside the writing \
                                transaction, so a reader paging with `after` never skips an event.",
                "parameters": [
                    {"name": "after", "in": "query", "required": false,
                     "description": "Only events with a larger `seq`.",
                     "schema": {"type": "integer", "format": "int64", "minimum": 0, "default": 0}},
                    {"name": "limit", "in": "query", "required": false,
                     "description": "At most this many events.",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                ],
                "responses": with_errors(
                    json!({"200": answer("The next events.", page)}),
                    &error,
                    &[("400", "`after` or `limit` is out of range (the message names it).")],
                ),
            },
        }),
    );

    let disposition = schema::<crate::channels::inbound::Disposition>(&mut g);
    paths.insert(
        "/inbound/email".into(),
        json!({
            "post": {
                "operationId": "inbound_email",
                "tags": ["email"],
                "summary": "Hand cport one email (a reply, a bounce)",
                "description": "For mail systems that deliver over HTTP. The bearer token is \
                                `inbound.token`, or the API token when that is empty.",
                "requestBody": {"required": true, "content": {"message/rfc822": {
                    "schema": {"type": "string", "description": "The raw RFC 5322 message."}}}},
                "responses": with_errors(
                    json!({"200": answer("What became of the message.", disposition)}),
                    &error,
                    &[
                        ("400", "The message cannot be read as email."),
                        ("413", "The message is larger than `inbound.max_bytes`."),
                        ("415", "The body has a `Content-Encoding` (gzip) cport does not undo: send it as it is."),
                    ],
                ),
            },
        }),
    );

    paths.insert(
        "/api/v1/openapi.json".into(),
        json!({
            "get": {
                "operationId": "openapi",
                "tags": ["contract"],
                "summary": "This document",
                "security": [],
                "responses": {"200": answer("The OpenAPI 3.1 document.", json!({"type": "object"}))},
            },
        }),
    );

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cport API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "TOT's system pushes its records to cport (`PUT`/`DELETE /api/v1/{entity}`), \
                            posts stop-press banners, and reads back what clients did from the change \
                            feed. Every route needs `Authorization: Bearer <api_token>`.",
        },
        "servers": [{"url": server}],
        "security": [{"bearer": []}],
        "tags": [
            {"name": "sync", "description": "TOT's records, pushed to cport."},
            {"name": "banners", "description": "Stop-press banners."},
            {"name": "change feed", "description": "What clients did, for TOT's system."},
            {"name": "email", "description": "Email in over HTTP."},
            {"name": "contract", "description": "This document."},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                            "description": "`api_token` of the configuration."}},
            "schemas": g.take_definitions(true),
        },
    })
}

/// How a schema reads in a table: `string`, `array of [ClientIn](#clientin)`, `a` \| `b`.
fn kind(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("[{name}](#{})", name.to_ascii_lowercase());
    }
    if let Some(choices) = s.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = choices.iter().map(|c| format!("`{}`", c.as_str().unwrap_or("null"))).collect();
        return names.join(" \\| ");
    }
    if let Some(c) = s.get("const") {
        return format!("`{}`", c.as_str().map(str::to_string).unwrap_or_else(|| c.to_string()));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(parts) = s.get(key).and_then(Value::as_array) {
            return parts.iter().map(kind).collect::<Vec<_>>().join(" or ");
        }
    }
    let format = s.get("format").and_then(Value::as_str);
    let one = |t: &str| -> String {
        match (t, format) {
            ("array", _) => format!("array of {}", s.get("items").map(kind).unwrap_or_else(|| "values".into())),
            ("string", Some(f @ ("date" | "date-time"))) => format!("{f} string"),
            (t, _) => t.to_string(),
        }
    };
    match s.get("type") {
        Some(Value::String(t)) => one(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).map(one).collect::<Vec<_>>().join(" or "),
        _ if s.get("properties").is_some() => "object".into(),
        _ => "any JSON value".into(),
    }
}

const INTRO: &str = "\
# HTTP API (OpenAPI)

<!-- Generated from the OpenAPI document (src/sync/openapi.rs, schemas from the handlers'
     types) by scripts/reference. tests/reference.rs fails when this page is out of date. -->

The contract of the sync API, the banners API, the change feed and `POST /inbound/email`, as
a running cport serves it at `GET /api/v1/openapi.json` ([the same document](openapi.json)
for this version). Feed it to a client generator or an API tester; the [data
format](data-format.md) explains each field of the records in words.
";

/// The document as a page of the documentation site: the operations, then the schemas.
pub fn markdown(doc: &Value) -> String {
    let mut out = String::from(INTRO);
    out.push_str("\n## Operations\n");
    let empty = Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap_or(&empty) {
            out.push_str(&format!(
                "\n### `{} {path}`\n\n{}\n",
                method.to_ascii_uppercase(),
                op["summary"].as_str().unwrap_or_default()
            ));
            if let Some(d) = op["description"].as_str() {
                out.push_str(&format!("\n{d}\n"));
            }
            if let Some(params) = op["parameters"].as_array() {
                out.push_str("\n| parameter | in | type | what it is |\n|---|---|---|---|\n");
                for p in params {
                    out.push_str(&format!(
                        "| `{}` | {} | {} | {} |\n",
                        p["name"].as_str().unwrap_or_default(),
                        p["in"].as_str().unwrap_or_default(),
                        kind(&p["schema"]),
                        cell(p["description"].as_str().unwrap_or_default())
                    ));
                }
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (media, body) in content {
                    out.push_str(&format!("\nBody (`{media}`): {}\n", kind(&body["schema"])));
                }
            }
            out.push_str("\n| answer | body | when |\n|---|---|---|\n");
            for (code, r) in op["responses"].as_object().unwrap_or(&empty) {
                let body = r["content"]["application/json"]["schema"]
                    .as_object()
                    .map(|_| kind(&r["content"]["application/json"]["schema"]));
                out.push_str(&format!(
                    "| {code} | {} | {} |\n",
                    body.unwrap_or_default(),
                    cell(r["description"].as_str().unwrap_or_default())
                ));
            }
        }
    }
    out.push_str("\n## Schemas\n");
    for (name, s) in doc["components"]["schemas"].as_object().unwrap_or(&empty) {
        out.push_str(&format!("\n### {name}\n\n"));
        if let Some(d) = s["description"].as_str() {
            out.push_str(&format!("{}\n\n", d.trim()));
        }
        match s["properties"].as_object() {
            Some(props) => {
                let required: Vec<&str> =
                    s["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                out.push_str("| field | type | required / default | what it is |\n|---|---|---|---|\n");
                for (field, p) in props {
                    let need = if required.contains(&field.as_str()) {
                        "required".to_string()
                    } else if let Some(d) = p.get("default") {
                        format!("default `{d}`")
                    } else {
                        "optional".to_string()
                    };
                    out.push_str(&format!(
                        "| `{field}` | {} | {need} | {} |\n",
                        kind(p),
                        cell(p["description"].as_str().unwrap_or_default())
                    ));
                }
                if s["additionalProperties"] == Value::Bool(false) {
                    out.push_str("\nNo other field is accepted.\n");
                }
            }
            None => match s["oneOf"].as_array() {
                // A tagged enum: one line per variant, its fields with their values.
                Some(variants) if variants.iter().all(|v| v.get("properties").is_some()) => {
                    out.push_str("One of:\n\n");
                    for v in variants {
                        let fields: Vec<String> = v["properties"]
                            .as_object()
                            .unwrap_or(&empty)
                            .iter()
                            .map(|(f, p)| format!("`{f}`: {}", kind(p)))
                            .collect();
                        out.push_str(&format!(
                            "- {}: {}\n",
                            fields.join(", "),
                            cell(v["description"].as_str().unwrap_or_default())
                        ));
                    }
                }
                _ => out.push_str(&format!("{}\n", kind(s))),
            },
        }
    }
    out
}
