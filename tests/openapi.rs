//! The API contract: `GET /api/v1/openapi.json` is an OpenAPI 3.1 document that describes
//! every route the API serves; every example of the documentation (the data-format and
//! change-feed references, `examples/`) validates against it; and what a running cport
//! answers validates against it too.

mod common;

use std::path::Path;

use common::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

/// Validates `instance` against the schema at `pointer` (a JSON pointer into the document),
/// with the document's components in reach of its `$ref`s.
fn check(doc: &Value, pointer: &str, instance: &Value) -> Result<(), String> {
    let mut root = doc.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$ref"] = json!(format!("#{pointer}"));
    let validator = jsonschema::validator_for(&root).map_err(|e| format!("the schema at {pointer}: {e}"))?;
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

/// A path as a JSON pointer token inside a URI fragment (`{` and `}` percent-encoded).
fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1").replace('{', "%7B").replace('}', "%7D")
}

/// The schema of an operation's JSON request body.
fn request_pointer(path: &str, method: &str) -> String {
    format!("/paths/{}/{method}/requestBody/content/application~1json/schema", escape(path))
}

/// The schema of an operation's JSON answer with `status`.
fn answer_pointer(path: &str, method: &str, status: u16) -> String {
    format!("/paths/{}/{method}/responses/{status}/content/application~1json/schema", escape(path))
}

fn document() -> Value {
    cport::sync::openapi::document("http://127.0.0.1:8080")
}

/// The OpenAPI document itself is valid OpenAPI 3.1, by an independent validator (Python's
/// openapi-spec-validator, which `scripts/test` installs).
#[test]
fn the_document_is_valid_openapi_3_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&document()).unwrap()).unwrap();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys\n\
             from openapi_spec_validator import validate, OpenAPIV31SpecValidator\n\
             validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n\
             print('valid')",
        ])
        .arg(&file)
        .output()
        .expect("python3 (scripts/test installs openapi-spec-validator with pip)");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("valid"),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The router's routes and the document's operations are the same set.
#[test]
fn every_route_is_described_and_every_operation_is_a_route() {
    let doc = document();
    let mut expected = vec![];
    for (method, path) in cport::sync::api::ROUTES {
        if path.contains("{entity}") {
            for entity in cport::model::records::ENTITIES {
                expected.push((method.to_ascii_lowercase(), path.replace("{entity}", entity)));
            }
        } else {
            expected.push((method.to_ascii_lowercase(), path.to_string()));
        }
    }
    let mut described = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            described.push((method.clone(), path.clone()));
        }
    }
    expected.sort();
    described.sort();
    assert_eq!(described, expected);
}

/// Each ```json block of a reference page, with the heading it sits under.
fn json_blocks(page: &str) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(page)).unwrap();
    let mut out = vec![];
    let mut heading = String::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        match &mut block {
            Some(b) if line.trim_start().starts_with("```") => {
                let value: Value =
                    serde_json::from_str(b).unwrap_or_else(|e| panic!("{page}, under {heading:?}: not JSON: {e}\n{b}"));
                out.push((heading.clone(), value));
                block = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None if line.trim_start().starts_with("```json") => block = Some(String::new()),
            None if line.starts_with('#') => heading = line.trim_start_matches('#').trim().to_string(),
            None => {}
        }
    }
    out
}

/// Every JSON example of the data-format and change-feed references validates against the
/// schema its section is about; an example under a heading this test does not know fails, so
/// a new example is never left unchecked.
#[test]
fn every_example_of_the_references_validates() {
    let doc = document();
    let schemas =
        |names: &[&str]| -> Vec<String> { names.iter().map(|n| format!("/components/schemas/{n}")).collect() };
    let mut checked = 0;
    for page in ["docs/src/reference/data-format.md", "docs/src/reference/change-feed.md"] {
        for (heading, example) in json_blocks(page) {
            let entity = heading.trim_matches('`');
            let pointers = if cport::model::records::ENTITIES.contains(&entity) {
                vec![request_pointer(&format!("/api/v1/{entity}"), "put")]
            } else if heading == "Unknown fields" {
                schemas(&["RecordError"])
            } else if heading.starts_with("`PUT") {
                schemas(&["EntityReport", "ErrorBody"])
            } else if heading.starts_with("`DELETE") {
                schemas(&["DeleteReport", "ErrorBody"])
            } else if heading == "Import" {
                schemas(&["Document"])
            } else if heading == "Change feed" {
                schemas(&["ChangesPage"])
            } else {
                panic!("{page}: a JSON example under {heading:?}, which names no schema here");
            };
            let results: Vec<Result<(), String>> = pointers.iter().map(|p| check(&doc, p, &example)).collect();
            assert!(
                results.iter().any(Result::is_ok),
                "{page}, the example under {heading:?} does not validate: {results:?}\n{example:#}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} examples found");
}

/// Every file of `examples/` validates: `ENTITY.json` as that entity's PUT body, `import.json`
/// as an import document. And validation is not vacuous: a misspelt field, a missing key or a
/// money amount with three decimals fails.
#[test]
fn every_file_of_examples_validates_and_a_bad_record_does_not() {
    let doc = document();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let pointer = if name == "import" {
            "/components/schemas/Document".to_string()
        } else {
            assert!(cport::model::records::ENTITIES.contains(&name.as_str()), "examples/{name}.json names no entity");
            request_pointer(&format!("/api/v1/{name}"), "put")
        };
        check(&doc, &pointer, &value).unwrap_or_else(|e| panic!("examples/{name}.json: {e}"));
        n += 1;
    }
    assert_eq!(n, cport::model::records::ENTITIES.len() + 1);

    let clients = request_pointer("/api/v1/clients", "put");
    assert!(check(&doc, &clients, &json!([{"id": "C-1", "name": "A"}])).is_ok());
    let e = check(&doc, &clients, &json!([{"id": "C-1", "name": "A", "colour": "red"}])).unwrap_err();
    assert!(e.contains("colour"), "{e}");
    assert!(check(&doc, &clients, &json!([{"name": "A"}])).is_err(), "id is required");
    let invoices = request_pointer("/api/v1/invoices", "put");
    let mut invoice: Value = serde_json::from_slice(&std::fs::read(dir.join("invoices.json")).unwrap()).unwrap();
    invoice[0]["total"] = json!("12.345");
    assert!(check(&doc, &invoices, &invoice).is_err(), "three decimals");
}

/// A running cport serves the document without a token, and what it answers on each route
/// has a status the document lists, with a body that validates against it.
#[tokio::test]
async fn what_the_server_answers_matches_the_document() {
    let app = TestApp::spawn().await;
    let doc: Value = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["paths"], document()["paths"]);

    let conforms = |path: &str, method: &str, status: u16, body: &Value| {
        let documented = &doc["paths"][path][method]["responses"][status.to_string()];
        assert!(documented.is_object(), "{method} {path} answered {status}, which the document does not list");
        if documented.get("content").is_some() {
            check(&doc, &answer_pointer(path, method, status), body)
                .unwrap_or_else(|e| panic!("{method} {path} → {status}: {e}\n{body:#}"));
        }
    };

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for entity in cport::model::records::ENTITIES {
        let body: Value = serde_json::from_slice(&std::fs::read(dir.join(format!("{entity}.json"))).unwrap()).unwrap();
        let path = format!("/api/v1/{entity}");
        let (status, answer) = app.put(entity, body).await;
        // Examples refer to one another; the import document holds them all in order.
        conforms(&path, "put", status, &answer);
    }
    let (status, answer) = app.put("clients", json!([{"id": "C-1", "name": "A", "colour": "red"}])).await;
    assert_eq!(status, 422);
    conforms("/api/v1/clients", "put", status, &answer);
    let (status, answer) = app.delete("jobs", &["J-404"]).await;
    assert_eq!(status, 200);
    conforms("/api/v1/jobs", "delete", status, &answer);

    let (status, answer) = app
        .api(
            Method::POST,
            "/api/v1/banners",
            Some(json!({"title": "Closed Friday", "body": "At noon.", "severity": "info"})),
        )
        .await;
    assert_eq!(status, 201);
    conforms("/api/v1/banners", "post", status, &answer);
    let id = answer["id"].as_i64().unwrap();
    let (status, answer) =
        app.api(Method::POST, "/api/v1/banners", Some(json!({"title": "", "body": "x", "severity": "loud"}))).await;
    conforms("/api/v1/banners", "post", status, &answer);
    let (status, answer) = app.api(Method::GET, "/api/v1/banners", None).await;
    conforms("/api/v1/banners", "get", status, &answer);
    for _ in 0..2 {
        let (status, _) = app.api(Method::DELETE, &format!("/api/v1/banners/{id}"), None).await;
        assert_eq!(status, 204, "retracted, and a retry says the same");
        conforms("/api/v1/banners/{id}", "delete", status, &Value::Null);
    }
    let (status, answer) = app.api(Method::DELETE, "/api/v1/banners/999999", None).await;
    conforms("/api/v1/banners/{id}", "delete", status, &answer);

    // A change to read: an approval through the portal's action.
    common::load_world(&app).await;
    let b = app.signed_in("P-1B").await;
    let (status, _, _) = app.post_form(&b, "/visuals/V-1", &[("action", "approve"), ("terms", "1")]).await;
    assert!(status < 400, "the approval: {status}");
    let (status, answer) = app.api(Method::GET, "/api/v1/changes?after=0&limit=10", None).await;
    conforms("/api/v1/changes", "get", status, &answer);
    assert!(!answer["changes"].as_array().unwrap().is_empty(), "{answer}");
    let (status, answer) = app.api(Method::GET, "/api/v1/changes?limit=0", None).await;
    assert_eq!(status, 400);
    conforms("/api/v1/changes", "get", status, &answer);

    let mail = "From: someone@else.example\r\nTo: nobody@tot.example\r\nSubject: hi\r\nMessage-ID: <x@else.example>\r\n\r\nhello\r\n";
    let bearer = format!("Bearer {}", common::TOKEN);
    let headers = [("authorization", bearer.as_str()), ("content-type", "message/rfc822")];
    let r = app.post_with(&app.http, "/inbound/email", &headers, mail).await;
    let status = r.status().as_u16();
    conforms("/inbound/email", "post", status, &r.json().await.unwrap());

    let r = app.http.get(app.url("/api/v1/changes")).send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(status, 401);
    conforms("/api/v1/changes", "get", status, &r.json().await.unwrap());
    app.stop().await;
}

/// The data-format reference is written by hand; its table of each entity lists exactly the
/// fields the record type has, and says "required" of exactly the required ones. A field added
/// to a record and not to the reference (or the reverse) fails here.
#[test]
fn the_data_format_reference_lists_exactly_the_fields_of_each_record() {
    let doc = document();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/reference/data-format.md"))
        .unwrap();
    let mut checked = 0;
    for entity in cport::model::records::ENTITIES {
        // The first table after the entity's heading.
        let heading = format!("\n### {entity}\n");
        let at = text.find(&heading).unwrap_or_else(|| panic!("data-format.md has no section {entity}"));
        let rows: Vec<(String, bool)> = text[at + heading.len()..]
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                (cells[1].trim_matches('`').to_string(), cells[3].starts_with("required"))
            })
            .collect();
        let items =
            doc.pointer(&format!("{}/items/$ref", request_pointer(&format!("/api/v1/{entity}"), "put"))).unwrap();
        let name = items.as_str().unwrap().rsplit('/').next().unwrap();
        let schema = &doc["components"]["schemas"][name];
        let mut fields: Vec<String> = schema["properties"].as_object().unwrap().keys().cloned().collect();
        let required: Vec<&str> = schema["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let mut listed: Vec<String> = rows.iter().map(|(f, _)| f.clone()).collect();
        fields.sort();
        listed.sort();
        assert_eq!(listed, fields, "the fields of {entity} in data-format.md");
        for (field, says_required) in &rows {
            assert_eq!(
                *says_required,
                required.contains(&field.as_str()),
                "data-format.md, {entity}.{field}: required or not"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, cport::model::records::ENTITIES.len());
}

/// A request axum refuses before a handler sees it (a query or path value of the wrong type,
/// a repeated key, a form of the wrong type) answers in cport's error shape, naming the field:
/// JSON on the API, the portal's page on the portal; never axum's plain text.
#[tokio::test]
async fn a_refused_request_answers_in_the_error_shape_naming_the_field() {
    let app = TestApp::spawn().await;
    let doc = document();
    for (method, path, documented, names) in [
        (Method::GET, "/api/v1/changes?limit=abc", "/api/v1/changes", "limit"),
        (Method::GET, "/api/v1/changes?after=1&after=2", "/api/v1/changes", "after"),
        (Method::GET, "/api/v1/changes?since=20", "/api/v1/changes", "since"),
        (Method::DELETE, "/api/v1/banners/abc", "/api/v1/banners/{id}", "id"),
        // A write takes no query: one given is refused, never ignored while the batch is written.
        (Method::PUT, "/api/v1/jobs?dry_run=1", "/api/v1/jobs", "`dry_run`: this route takes no query parameters"),
        (Method::DELETE, "/api/v1/jobs?force", "/api/v1/jobs", "`force`"),
    ] {
        let r = app.http.request(method.clone(), app.url(path)).bearer_auth(common::TOKEN).send().await.unwrap();
        let status = r.status().as_u16();
        assert_eq!(status, 400, "{method} {path}");
        assert!(
            r.headers()["content-type"].to_str().unwrap().starts_with("application/json"),
            "{method} {path}: {:?}",
            r.headers()["content-type"]
        );
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(names), "{method} {path}: {body}");
        check(&doc, &answer_pointer(documented, &method.as_str().to_ascii_lowercase(), status), &body).unwrap();
    }
    // The portal: a page, not plain text.
    common::load_world(&app).await;
    let b = app.signed_in("P-1B").await;
    let (status, html) = app.page(&b, "/?note=a&note=b").await;
    assert_eq!(status, 400);
    assert!(html.contains("<html") && html.contains("note"), "{html}");
    app.stop().await;
}

/// The contract holds under generated requests: schemathesis (from PyPI; `scripts/test`
/// installs it) sends every operation the boundary cases its schema implies (wrong types,
/// missing and extra fields, empty and huge values, repeated query keys) and a seeded run of
/// random ones, and checks each answer: never a server error, and status, content type and body
/// as documented. `POST /inbound/email` is left out: its body is a raw email, which
/// schemathesis cannot generate (tests/email_in.rs covers it).
#[tokio::test]
async fn the_api_keeps_its_contract_under_generated_requests() {
    let app = TestApp::spawn().await;
    common::load_world(&app).await;
    // Its own folder: schemathesis keeps a cache of past failures where it runs, which would
    // make a run depend on the ones before it (and litter the checkout).
    let cwd = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new("st")
        .current_dir(cwd.path())
        .args(["run", &app.url("/api/v1/openapi.json"), "--url", &app.base])
        .args(["-H", &format!("Authorization: Bearer {}", common::TOKEN)])
        .args(["--phases", "coverage,fuzzing", "--max-examples", "15", "--seed", "20261202"])
        .args(["--exclude-checks", "positive_data_acceptance", "--exclude-path", "/inbound/email"])
        .args(["--workers", "1"])
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("schemathesis (`st`; scripts/test installs it with pip)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found answers that break the contract:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
    app.stop().await;
}

/// Every field of every record (and of their nested lines) says what it is, so a client
/// generated from the document carries the meaning along.
#[test]
fn every_field_of_every_record_is_described() {
    let doc = document();
    let mut n = 0;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if !name.ends_with("In") {
            continue;
        }
        for (field, p) in schema["properties"].as_object().unwrap() {
            let d = p["description"].as_str().unwrap_or_default();
            assert!(!d.trim().is_empty(), "{name}.{field} has no doc comment");
            n += 1;
        }
    }
    assert!(n > 150, "{n} fields");
}
