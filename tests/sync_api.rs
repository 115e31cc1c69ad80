//! The sync API over a real socket, on the engine this run is for.

mod common;

use common::{TOKEN, TestApp};
use cport::actions::items::{Category, for_contact};
use cport::store::contacts::get_contact;
use serde_json::json;

/// An app whose store holds one client, C-1, and nothing else.
async fn with_one_client() -> TestApp {
    let app = TestApp::spawn().await;
    app.synced("clients", json!([{"id": "C-1", "name": "Alpha"}])).await;
    app
}

#[tokio::test]
async fn a_valid_batch_is_stored_and_reported() {
    let app = TestApp::spawn().await;
    let body = app.synced("clients", json!([{"id": "C-1", "name": "Alpha Ltd"}])).await;
    assert_eq!(body["inserted"], 1);
    let body = app.synced(
            "jobs",
            json!([{"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "entered",
                "process_lines": [{"status": "planned", "process": "Screen print", "position": "Front", "qty": 10, "unit_price": 1.5}],
                "art_costs": [{"description": "Set-up", "qty": 1, "unit_price": "35.00"}],
                "blank_garments": [{"description": "Tee", "qty": 10, "unit_price": 2}],
                "printed_garments": [{"description": "Tee printed", "expected_qty": 10}]}]),
        ).await;
    assert_eq!((body["received"].as_i64(), body["inserted"].as_i64()), (Some(1), Some(1)));
    assert_eq!(app.count("job_process_lines").await, 1);
    let (price,): (i64,) =
        cport::store::on_db!(&app.db, p => sqlx::query_as("SELECT unit_price FROM job_process_lines")
        .fetch_one(p).await)
        .unwrap();
    assert_eq!(price, 150, "money is stored as minor units");
    app.stop().await;
}

#[tokio::test]
async fn requests_without_the_right_token_get_401_and_change_nothing() {
    let app = TestApp::spawn().await;
    let batch = json!([{"id": "C-1", "name": "Alpha Ltd"}]);
    let cases: [(&str, Option<String>); 4] = [
        ("no Authorization header", None),
        ("wrong token", Some("Bearer nope".into())),
        ("token in the wrong scheme", Some(format!("Basic {TOKEN}"))),
        ("empty bearer", Some("Bearer ".into())),
    ];
    for (case, header) in cases {
        let mut req = app.http.put(app.url("/api/v1/clients")).json(&batch);
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{case}");
        let r = app.http.delete(app.url("/api/v1/clients")).json(&json!({"ids": ["C-1"]})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{case} (delete)");
    }
    // The token is checked first: what else is wrong with a request is not told without it.
    for (method, path, body) in [
        (reqwest::Method::PUT, "/api/v1/clients", "not json"),
        (reqwest::Method::DELETE, "/api/v1/banners/not-a-number", ""),
        (reqwest::Method::GET, "/api/v1/changes?after=soon", ""),
        (reqwest::Method::POST, "/api/v1/banners", "{}"),
    ] {
        let r = app.http.request(method.clone(), app.url(path)).body(body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{method} {path}");
    }
    // Two Authorization headers, the right token in one: neither is taken.
    let r = app
        .http
        .put(app.url("/api/v1/clients"))
        .header("authorization", "Bearer nope")
        .header("authorization", format!("Bearer {TOKEN}"))
        .json(&batch);
    assert_eq!(r.send().await.unwrap().status().as_u16(), 401, "two tokens");
    assert_eq!(app.count("clients").await, 0);
    // The scheme's name is not case-sensitive.
    let r = app.http.put(app.url("/api/v1/clients")).header("authorization", format!("bearer {TOKEN}")).json(&batch);
    assert_eq!(r.send().await.unwrap().status().as_u16(), 200, "bearer in lower case");
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_batch_is_422_with_every_error_and_writes_nothing() {
    let app = with_one_client().await;
    let batch = json!([
        {"id": "J-1", "client_id": "C-1", "name": "Good one", "status": "entered"},
        {"id": "J-2", "client_id": "C-1", "name": "Bad status", "status": "flying"},
        {"id": "J-3", "client_id": "C-404", "name": "Unknown client", "status": "entered"},
        {"id": "J-4", "client_id": "C-1", "name": "Negative", "status": "entered",
         "printed_garments": [{"description": "Tee", "expected_qty": -5}]},
        {"id": "J-5", "client_id": "C-1", "name": "Typo", "status": "entered", "date_requried": "2026-01-01"},
        {"id": "J-6", "client_id": "C-1", "name": "Bad money", "status": "entered",
         "art_costs": [{"description": "Set-up", "qty": 1, "unit_price": "1.999"}]},
        {"id": "J-1", "client_id": "C-1", "name": "Duplicate", "status": "entered"},
        "not an object",
        // Every field it lacks is named at once, not one a try.
        {"id": "J-8", "client_id": "C-1"}
    ]);
    let body = app.refused("jobs", batch).await;
    let errors = body["errors"].as_array().expect("errors array");
    let expect = [
        (1, "status", "flying"),
        (2, "client_id", "unknown client"),
        (3, "printed_garments[0].expected_qty", "negative"),
        (4, "date_requried", "unknown field"),
        (5, "art_costs[0].unit_price", "2 decimals"),
        (6, "id", "appears twice"),
        (7, "record", "object"),
        (8, "name", "missing field `name`"),
        (8, "status", "missing field `status`"),
    ];
    for (index, field, words) in expect {
        assert!(
            errors.iter().any(|e| e["index"] == index
                && e["field"].as_str().is_some_and(|f| f.contains(field))
                && e["reason"].as_str().is_some_and(|r| r.contains(words))),
            "expected an error for record {index} field {field} mentioning `{words}` in {body:#}"
        );
    }
    assert_eq!(app.count("jobs").await, 0, "the good record was not written either");
    app.stop().await;
}

/// A key or value TOT sends is repeated in the error as it is shown, never as it came: a
/// control character as its code point, a backquote in a key kept in the field's name, a
/// megabyte-long key cut.
#[tokio::test]
async fn an_odd_key_is_named_as_it_is_shown() {
    let app = with_one_client().await;
    let mut long = json!({"id": "J-2", "client_id": "C-1", "name": "Tees", "status": "entered"});
    long["k".repeat(1_000_000)] = json!(1);
    let batch = json!([
        {"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "entered", "date`\u{1b}[2J": 1},
        long,
        {"id": "J-3", "client_id": "C-1", "name": "Tees", "status": "entered",
         "printed_garments": [{"description": "Tee", "expected_qty": "\u{1b}]0;x\u{7}"}]},
    ]);
    let body = app.refused("jobs", batch).await;
    let errors = body["errors"].as_array().expect("errors array");
    let field = |i: usize| errors.iter().find(|e| e["index"] == i).map(|e| e["field"].as_str().unwrap().to_string());
    assert_eq!(field(0).as_deref(), Some("date`<U+001B>[2J"), "{body}");
    assert!(field(1).is_some_and(|f| f.starts_with("kkk") && f.chars().count() <= 100), "{body:.300}");
    assert!(field(2).is_some_and(|f| f.contains("expected_qty")), "{body:.300}");
    let text = body.to_string();
    assert!(text.len() < 20_000, "the key is not repeated whole: {} bytes", text.len());
    assert!(!text.contains("\\u001b") && !text.contains("\\u0007"), "no control character in the report: {text:.2000}");
    let third = errors.iter().find(|e| e["index"] == 2).map(|e| e["reason"].as_str().unwrap().to_string());
    assert!(third.is_some_and(|r| r.contains("invalid type: string") && r.contains("0;x")), "{text:.2000}");
    assert_eq!(app.count("jobs").await, 0);
    app.stop().await;
}

/// A chat id reaches one person: given to a second contact (in the store or in the same
/// batch) it is refused, naming the field and the contact that holds it, and nothing is
/// written; handed from one contact to another in one batch, it is taken.
#[tokio::test]
async fn a_chat_id_is_given_to_one_contact_only() {
    let app = TestApp::spawn().await;
    app.synced("clients", json!([{"id": "C-1", "name": "Alpha"}, {"id": "C-2", "name": "Beta"}])).await;
    let contact = |id: &str, client: &str, chat: serde_json::Value| {
        json!({"id": id, "client_id": client, "name": id, "email": format!("{}@x.example", id.to_lowercase()),
               "role": "buyer", "telegram_chat_id": chat["telegram"], "discord_user_id": chat["discord"]})
    };
    app.synced("contacts", json!([contact("P-1", "C-1", json!({"telegram": 512340987, "discord": "4001"}))])).await;
    let cases = [
        (json!([contact("P-2", "C-2", json!({"telegram": 512340987}))]), "telegram_chat_id", "contact `P-1`'s already"),
        (json!([contact("P-2", "C-1", json!({"discord": "4001"}))]), "discord_user_id", "contact `P-1`'s already"),
        (
            json!([contact("P-3", "C-1", json!({"telegram": 77})), contact("P-4", "C-2", json!({"telegram": 77}))]),
            "telegram_chat_id",
            "also given to `P-3` in this batch",
        ),
        // The same id written with a leading zero is no Discord id (it would pass for another).
        (json!([contact("P-2", "C-1", json!({"discord": "04001"}))]), "discord_user_id", "is not a Discord user id"),
    ];
    for (batch, field, says) in cases {
        let (status, body) = app.put("contacts", batch.clone()).await;
        assert_eq!(status, 422, "{batch}: {body}");
        let errors = body["errors"].as_array().unwrap();
        assert!(errors.iter().any(|e| e["field"] == field && e["reason"].as_str().unwrap().contains(says)), "{body}");
        assert_eq!(app.count("contacts").await, 1, "nothing written");
    }
    // Handed over in one batch: P-1 gives up the chat, P-2 takes it.
    let (status, body) = app
        .put(
            "contacts",
            json!([contact("P-1", "C-1", json!({})), contact("P-2", "C-1", json!({"telegram": 512340987}))]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Sent again, unchanged: P-2 holds it, and that is no conflict with itself.
    let (status, body) = app.put("contacts", json!([contact("P-2", "C-1", json!({"telegram": 512340987}))])).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_batch_larger_than_one_part_is_still_all_or_nothing() {
    let app = with_one_client().await;
    let part = cport::sync::PART;
    let jobs = |n: usize| -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| json!({"id": format!("J-{i}"), "client_id": "C-1", "name": "Tees", "status": "entered"}))
            .collect()
    };
    // A key repeated two parts apart, and one bad record in the last part: both found, and
    // the parts before them, already staged, are not written.
    let mut batch = jobs(2 * part + 10);
    batch[2 * part + 1]["id"] = json!("J-3");
    batch[2 * part + 5]["status"] = json!("lost");
    let body = app.refused("jobs", json!(batch)).await;
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{body:#}");
    assert!(
        errors.iter().any(|e| e["index"] == 2 * part + 1
            && e["reason"].as_str().is_some_and(|r| r.contains("appears twice in this batch (also at index 3)"))),
        "{body:#}"
    );
    assert!(errors.iter().any(|e| e["index"] == 2 * part + 5 && e["field"] == "status"), "{body:#}");
    assert_eq!(app.count("jobs").await, 0, "nothing of the batch is written");
    // The same batch made good is taken whole, and counted once.
    let body = app.synced("jobs", json!(jobs(2 * part + 10))).await;
    assert_eq!(
        (body["received"].as_u64(), body["inserted"].as_u64()),
        (Some(2 * part as u64 + 10), Some(2 * part as u64 + 10))
    );
    assert_eq!(app.count("jobs").await, 2 * part as i64 + 10);
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_an_array_of_records_is_refused() {
    let app = TestApp::spawn().await;
    for (case, body, words) in [
        ("malformed JSON", "{not json", "not valid JSON: key must be a string"),
        ("an object, not an array", "{\"id\": \"C-1\"}", "expected a JSON array"),
        ("an array cut short", "[{\"id\": \"C-1\", \"name\": \"A\"}, {\"id\"", "not valid JSON: EOF"),
    ] {
        let r = app
            .http
            .put(app.url("/api/v1/clients"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422, "{case}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["errors"][0]["field"], "body", "{case}");
        assert!(v["errors"][0]["reason"].as_str().unwrap().contains(words), "{case}: {v}");
    }
    // JSON that holds together but whose record has no tree: named by its place, its id and
    // the field at fault, without a line and column counted inside the record.
    let deep = format!("[{{\"id\": \"C-1\", \"name\": {}1{}}}]", "[".repeat(200), "]".repeat(200));
    for (case, body, field, id, words) in [
        ("a number past any float", "[{\"id\": \"C-1\", \"name\": 1e400}]", "name", Some("C-1"), "number out of range"),
        (
            "a number past any float, inside a line",
            "[{\"id\": \"C-1\", \"name\": \"A\", \"lines\": [{\"qty\": 1e400}]}]",
            "lines",
            Some("C-1"),
            "number out of range",
        ),
        ("a lone surrogate", "[{\"name\": \"A\\ud800B\", \"id\": \"C-1\"}]", "name", Some("C-1"), "as a pair"),
        ("a lone low surrogate", "[{\"name\": \"A\\udc00\", \"id\": \"C-1\"}]", "name", Some("C-1"), "as a pair"),
        ("a surrogate at the end", "[{\"name\": \"A\\ud800\", \"id\": \"C-1\"}]", "name", Some("C-1"), "as a pair"),
        ("nested past the parser's limit", deep.as_str(), "name", Some("C-1"), "recursion limit"),
    ] {
        let r =
            app.http.put(app.url("/api/v1/clients")).bearer_auth(TOKEN).body(body.to_string()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 422, "{case}");
        let v: serde_json::Value = r.json().await.unwrap();
        let e = &v["errors"][0];
        assert_eq!(
            (e["index"].as_u64(), e["field"].as_str(), e["id"].as_str()),
            (Some(0), Some(field), id),
            "{case}: {v}"
        );
        let reason = e["reason"].as_str().unwrap();
        assert!(reason.contains(words) && !reason.contains("line 1"), "{case}: {v}");
    }
    // Bytes that are not UTF-8 are named as that, by where they are; a gzip body is refused
    // as a coding cport does not undo, not read as broken JSON.
    let r = app
        .http
        .put(app.url("/api/v1/clients"))
        .bearer_auth(TOKEN)
        .body(b"[{\"id\": \"C-\xff\"}]".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["errors"][0]["reason"].as_str().unwrap().contains("not UTF-8 text: the byte at offset 11"), "{v}");
    let r = app
        .http
        .put(app.url("/api/v1/clients"))
        .bearer_auth(TOKEN)
        .header("content-encoding", "gzip")
        .body("[{\"id\": \"C-1\", \"name\": \"Alpha\"}]")
        .send()
        .await
        .unwrap();
    common::refused_with(r, 415, "Content-Encoding: `gzip` is not accepted").await;
    // One record with several problems is one invalid record; its id is shown as sent.
    let (status, v) = app.put("clients", json!([{"id": "C-\u{0}1", "name": ""}])).await;
    assert_eq!(status, 422);
    assert!(v["error"].as_str().unwrap().starts_with("1 invalid record(s), 3 problems"), "{v}");
    assert_eq!(v["errors"][0]["id"], "C-<U+0000>1", "{v}");
    let (status, body) = app.put("widgets", json!([])).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("unknown entity `widgets`"), "{body}");
    assert_eq!(app.count("clients").await, 0);
    // A byte-order mark before the array is passed over.
    let bom = "\u{feff}[{\"id\": \"C-1\", \"name\": \"Alpha\"}]";
    let r = app.http.put(app.url("/api/v1/clients")).bearer_auth(TOKEN).body(bom).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    assert_eq!(app.count("clients").await, 1);
    // And before a DELETE's object, as before a PUT's array.
    let bom = "\u{feff}{\"ids\": [\"C-1\"]}";
    let r = app.http.delete(app.url("/api/v1/clients")).bearer_auth(TOKEN).body(bom).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    assert_eq!(app.count("clients").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn resending_the_same_batch_changes_nothing() {
    let app = TestApp::with_world().await;
    let stamp = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            let rows: Vec<(String, String)> = cport::store::on_db!(&db, p => sqlx::query_as(
                "SELECT id, CAST(updated_at AS TEXT) FROM jobs ORDER BY id").fetch_all(p).await)
            .unwrap();
            rows
        }
    };
    let before = stamp(&app).await;
    let lines_before = app.count("job_process_lines").await;
    let w = common::world();
    let body = app.synced("jobs", w["jobs"].clone()).await;
    assert_eq!(body["unchanged"], 4, "{body}");
    assert_eq!((body["inserted"].as_i64(), body["updated"].as_i64()), (Some(0), Some(0)));
    assert_eq!(stamp(&app).await, before, "nothing was rewritten");
    assert_eq!(app.count("job_process_lines").await, lines_before);

    // A real change is applied and its child lines replaced, not duplicated.
    let mut jobs = w["jobs"].clone();
    jobs[0]["process_lines"][0]["qty"] = json!(120);
    let (_, body) = app.put("jobs", jobs).await;
    assert_eq!((body["updated"].as_i64(), body["unchanged"].as_i64()), (Some(1), Some(3)), "{body}");
    assert_eq!(app.count("job_process_lines").await, lines_before);
    app.stop().await;
}

/// Two columns are not simply replaced: a job's created time given once is kept when a later
/// version leaves it out, and a stock line's figure time moves only when its available
/// quantity changes.
#[tokio::test]
async fn kept_columns_survive_an_update() {
    let app = TestApp::spawn().await;
    app.put("clients", json!([{"id": "C-1", "name": "Alpha Ltd"}])).await;
    let job = |name: &str, created: Option<&str>| {
        let mut j = json!({"id": "J-1", "client_id": "C-1", "name": name, "status": "entered"});
        if let Some(c) = created {
            j["created_at"] = json!(c);
        }
        json!([j])
    };
    app.synced("jobs", job("Tees", Some("2026-01-02T03:04:05Z"))).await;
    let body = app.synced("jobs", job("Tees v2", None)).await;
    assert_eq!(body["updated"], 1, "{body}");
    let (name, created): (String, chrono::DateTime<chrono::Utc>) = cport::store::on_db!(&app.db, p =>
        sqlx::query_as("SELECT name, created_at FROM jobs WHERE id = 'J-1'").fetch_one(p).await)
    .unwrap();
    assert_eq!(name, "Tees v2");
    assert_eq!(created.to_rfc3339(), "2026-01-02T03:04:05+00:00", "the first created time is kept");

    // Records with and without a created time in one batch (written together).
    let created_of = |app: &TestApp, id: &'static str| {
        let db = app.db.clone();
        async move {
            let (at,): (chrono::DateTime<chrono::Utc>,) = cport::store::on_db!(&db, p =>
                sqlx::query_as("SELECT created_at FROM jobs WHERE id = $1").bind(id).fetch_one(p).await)
            .unwrap();
            at.to_rfc3339()
        }
    };
    let two = |first: Option<&str>, second: Option<&str>| {
        let mut a = job("Tees v3", first)[0].clone();
        let mut b = job("Caps", second)[0].clone();
        a["id"] = json!("J-1");
        b["id"] = json!("J-2");
        json!([a, b])
    };
    app.synced("jobs", two(None, Some("2026-03-04T05:06:07Z"))).await;
    assert_eq!(created_of(&app, "J-1").await, "2026-01-02T03:04:05+00:00");
    assert_eq!(created_of(&app, "J-2").await, "2026-03-04T05:06:07+00:00");
    app.synced("jobs", two(Some("2026-02-02T00:00:00Z"), None)).await;
    assert_eq!(created_of(&app, "J-1").await, "2026-02-02T00:00:00+00:00", "a new created time is taken");
    assert_eq!(created_of(&app, "J-2").await, "2026-03-04T05:06:07+00:00");

    let stock = |available: i64, description: &str| {
        json!([{"sku": "S-1", "client_id": "C-1", "description": description, "warehouse_balance": 10,
            "available_to_order": available}])
    };
    let figure = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            let (at,): (chrono::DateTime<chrono::Utc>,) = cport::store::on_db!(&db, p =>
                sqlx::query_as("SELECT figure_at FROM stock WHERE sku = 'S-1'").fetch_one(p).await)
            .unwrap();
            at
        }
    };
    app.synced("stock", stock(5, "Tee")).await;
    let first = figure(&app).await;
    app.put("stock", stock(5, "Tee, navy")).await;
    assert_eq!(figure(&app).await, first, "same available quantity: the figure time stays");
    app.put("stock", stock(4, "Tee, navy")).await;
    assert!(figure(&app).await > first, "a new available quantity moves the figure time");
    app.stop().await;
}

#[tokio::test]
async fn deleting_removes_records_with_their_lines_and_is_safe_to_resend() {
    let app = TestApp::with_world().await;
    let (status, body) = app.delete("jobs", &["J-1", "J-404"]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], 1);
    assert_eq!(body["absent"], json!(["J-404"]));
    assert_eq!(app.count("job_process_lines").await, 0);
    let (n,): (i64,) = cport::store::on_db!(&app.db, p => sqlx::query_as(
        "SELECT COUNT(*) FROM visuals WHERE job_id = 'J-1'").fetch_one(p).await)
    .unwrap();
    assert_eq!(n, 0, "visuals of a deleted job go with it");
    let (status, body) = app.delete("jobs", &["J-1"]).await;
    assert_eq!((status, body["deleted"].as_i64()), (200, Some(0)));
    let (status, body) = app.delete("jobs", &["bad id!"]).await;
    assert_eq!(status, 422, "{body}");
    // A list naming one id twice is refused whole, naming the second place; nothing goes.
    let (status, body) = app.delete("jobs", &["J-2", "J-NOPE", "J-NOPE"]).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("appears twice in this list (also at index 1)"), "{body}");
    assert_eq!(body["errors"][0]["index"], 2, "{body}");
    let (status, body) = app.delete("jobs", &["J-2"]).await;
    assert_eq!((status, body["deleted"].as_i64()), (200, Some(1)), "J-2 was still there: {body}");
    app.stop().await;
}

/// A record that another names without hanging off it (a job's contact, a delivery's job)
/// can be deleted: the name is emptied, so nothing points at a record that is gone, and the
/// record that named it is written in full when it comes again.
#[tokio::test]
async fn deleting_a_named_record_empties_the_names_and_a_later_send_is_written() {
    let app = TestApp::with_world().await;
    let job = json!([{"id": "J-7", "client_id": "C-1", "name": "Hoodies", "status": "entered", "contact_id": "P-1V"}]);
    let delivery = json!([{"id": "D-7", "client_id": "C-1", "job_id": "J-7", "status": "picked", "venue": "Depot",
                           "description": "Hoodies"}]);
    app.synced("jobs", job.clone()).await;
    app.synced("deliveries", delivery.clone()).await;
    let names = || async {
        cport::store::on_db!(&app.db, p => sqlx::query_as::<_, (Option<String>, Option<String>)>(
            "SELECT (SELECT contact_id FROM jobs WHERE id = 'J-7'), (SELECT job_id FROM deliveries WHERE id = 'D-7')")
            .fetch_one(p).await)
        .unwrap()
    };
    assert_eq!(names().await, (Some("P-1V".into()), Some("J-7".into())));

    let (status, body) = app.delete("contacts", &["P-1V"]).await;
    assert_eq!((status, body["deleted"].as_i64()), (200, Some(1)), "{body}");
    assert_eq!(names().await.0, None, "the job names no contact that is gone");
    // TOT's record still names the contact: refused by name, as any unknown contact is.
    let body = app.refused("jobs", job.clone()).await;
    assert!(body.to_string().contains("unknown contact `P-1V`"), "{body}");
    // The contact comes back and the job is sent as before: written, not taken as unchanged.
    app.synced(
        "contacts",
        json!([{"id": "P-1V", "client_id": "C-1", "name": "Vic", "email": "vic@alpha.example",
                                   "role": "viewer"}]),
    )
    .await;
    let report = app.synced("jobs", job.clone()).await;
    assert_eq!(report["updated"], 1, "{report}");
    assert_eq!(names().await.0.as_deref(), Some("P-1V"));

    let (status, body) = app.delete("jobs", &["J-7"]).await;
    assert_eq!((status, body["deleted"].as_i64()), (200, Some(1)), "{body}");
    assert_eq!(names().await.1, None, "the delivery names no job that is gone");
    app.synced("jobs", job).await;
    assert_eq!(app.synced("deliveries", delivery).await["updated"], 1);
    assert_eq!(names().await.1.as_deref(), Some("J-7"));
    app.stop().await;
}

#[tokio::test]
async fn records_cannot_point_at_another_clients_records() {
    let app = TestApp::with_world().await;
    // C-2's visual of C-1's job.
    let visual = json!({"id": "V-X", "client_id": "C-2", "job_id": "J-1", "design_id": "D", "category": "c",
        "designer": "d", "status": "awaiting_approval", "main_image": "/x.svg"});
    let body = app.refused("visuals", json!([visual])).await;
    assert_eq!(body["errors"][0]["field"], "job_id");
    assert!(body["errors"][0]["reason"].as_str().unwrap().contains("another client"));
    app.stop().await;
}

/// Every text a record must have is refused blank, nested ones too, each named by its path.
#[tokio::test]
async fn a_required_text_left_blank_is_refused_by_its_path() {
    let app = TestApp::with_world().await;
    let job = json!({"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "in_production",
        "process_lines": [{"status": "planned", "process": "Screen print", "position": " ", "qty": 1, "unit_price": 1}]});
    let delivery = json!({"id": "D-1", "client_id": "C-1", "status": "ready", "venue": "HQ", "description": "Tees",
        "packing": [{"container": "Box 1", "description": "", "qty": 1}],
        "costs": [{"cost_type": "Carriage", "description": "\u{200b}", "price": 1}],
        "proof_of_delivery": {"signature_image": "", "boxes": 1, "courier": "DPD", "signed_at": "2026-11-25T10:00:00Z"}});
    let po = json!({"id": "PO-1", "client_id": "C-1", "status": "open", "date_ordered": "2026-11-01", "tot_ref": "T1",
        "category": "Garments", "type": "Third party", "supplier": "S",
        "lines": [{"status": "", "sku": "BLK-1", "description": " ", "ordered": 1}],
        "receipts": [{"date_received": "2026-11-02", "signed_by": "Sam", "checking_images": ["/media/a.jpg", ""]}]});
    for (entity, record, fields) in [
        ("jobs", job, vec!["process_lines[0].position"]),
        (
            "deliveries",
            delivery,
            vec!["packing[0].description", "costs[0].description", "proof_of_delivery.signature_image"],
        ),
        ("purchase_orders", po, vec!["lines[0].status", "lines[0].description", "receipts[0].checking_images[1]"]),
    ] {
        let body = app.refused(entity, json!([record])).await;
        let mut named: Vec<&str> =
            body["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
        named.dedup();
        assert_eq!(named, fields, "{entity}: {body}");
    }
    app.stop().await;
}

/// A text field that may be left out, sent blank (`""`, spaces, a zero-width space), is kept
/// as left out: nothing later shows "Your ref: " with nothing after it. A blank text a record
/// must have is still refused (above).
#[tokio::test]
async fn an_optional_text_sent_blank_is_kept_as_none() {
    let app = TestApp::with_world().await;
    app.synced(
        "jobs",
        json!([{"id": "J-7", "client_id": "C-1", "name": "Tees", "status": "entered", "client_ref": "",
                "order_id": "  "}]),
    )
    .await;
    app.synced(
        "purchase_orders",
        json!([{"id": "PO-7", "client_id": "C-1", "placed_by": "\u{200b}", "third_party": true, "status": "open",
                "date_ordered": "2026-11-01", "tot_ref": "T7", "category": "Garments", "type": "Third party",
                "supplier": "S", "client_ref": " ", "lines": [{"status": "open", "sku": "BLK-1", "description": "Tee", "ordered": 1}]}]),
    )
    .await;
    let nulls: (i64, i64) = cport::store::on_db!(&app.db, p => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM jobs WHERE id = 'J-7' AND client_ref IS NULL AND order_id IS NULL),
                (SELECT COUNT(*) FROM purchase_orders WHERE id = 'PO-7' AND placed_by IS NULL AND client_ref IS NULL)")
        .fetch_one(p).await)
    .unwrap();
    assert_eq!(nulls, (1, 1), "blank optional fields are kept as none");
    app.stop().await;
}

/// An address holding a character that prints as nothing reads as another address: mail
/// would go to neither the one shown nor the one meant.
#[tokio::test]
async fn an_email_address_with_an_invisible_character_is_refused() {
    let app = TestApp::with_world().await;
    for email in ["sa\u{200b}m@alpha.example", "\u{feff}sam@alpha.example", "sam@alpha\u{200f}.example"] {
        let body = app
            .refused(
                "contacts",
                json!([{"id": "P-1S", "client_id": "C-1", "name": "Sam", "email": email, "role": "buyer"}]),
            )
            .await;
        assert_eq!(body["errors"][0]["field"], "email", "{email:?}: {body}");
        assert!(body["errors"][0]["reason"].as_str().unwrap().contains("<U+"), "named by code point: {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn action_items_follow_the_contacts_role() {
    let app = TestApp::with_world().await;
    let items = |id: &'static str| {
        let db = app.db.clone();
        async move {
            let c = get_contact(&db, id).await.unwrap();
            for_contact(&db, &c).await.unwrap()
        }
    };
    let admin = items("P-1A").await;
    let got: Vec<(Category, &str)> = admin.iter().map(|i| (i.category, i.id.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (Category::VisualApproval, "V-1"),
            (Category::DeliveryInstructions, "J-1"),
            (Category::ThirdPartyPo, "PO-1"),
            (Category::AwaitingArt, "J-1"),
        ],
        "approved visuals, jobs with instructions, delivered jobs and received POs are not items"
    );
    assert_eq!(admin[0].command.as_deref(), Some("APPROVE V-1"));
    assert_eq!(admin[1].command.as_deref(), Some("NODELIVERY J-1"));

    let buyer = items("P-1B").await;
    assert_eq!(buyer.len(), 4);
    let finance = items("P-1F").await;
    assert_eq!(finance.iter().map(|i| i.category).collect::<Vec<_>>(), vec![Category::ThirdPartyPo]);
    let viewer = items("P-1V").await;
    assert_eq!(viewer.len(), 4);
    assert!(
        viewer.iter().all(|i| i.action == cport::actions::items::Action::None),
        "a viewer sees items but may not act on them"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_contact_never_gets_another_clients_items() {
    let app = TestApp::with_world().await;
    let beta = get_contact(&app.db, "P-2A").await.unwrap();
    let items = for_contact(&app.db, &beta).await.unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, vec!["V-9", "J-9", "J-9"]);
    let alpha = get_contact(&app.db, "P-1A").await.unwrap();
    let alpha_items = for_contact(&app.db, &alpha).await.unwrap();
    assert!(alpha_items.iter().all(|i| !i.id.ends_with('9')), "{alpha_items:?}");
    app.stop().await;
}

/// `cport_sync_records_total` counts what was written: a batch refused whole (a record of
/// the wrong type beside a good one) counts nothing, a batch taken counts its records. (Price cards, which no
/// other test of this file sends: the counter is the process's.)
#[tokio::test]
async fn the_records_metric_counts_only_what_was_written() {
    let app = with_one_client().await;
    let inserted = || async {
        let text = app.text("/metrics").await;
        text.lines()
            .find(|l| {
                l.starts_with("cport_sync_records_total{")
                    && l.contains("entity=\"price_cards\"")
                    && l.contains("outcome=\"inserted\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let card = |id: &str, name: &str| {
        json!({"id": id, "client_id": "C-1", "name": name, "effective_from": "2027-01-01",
        "lines": [{"code": "SP1", "description": "Screen print", "unit": "each", "min_qty": 25, "price": "0.84"}]})
    };
    let before = inserted().await;
    // One record of the wrong type (refused as it is read) beside a good one.
    let mut wrong = card("RC-2", "Rates");
    wrong["lines"][0]["min_qty"] = json!("lots");
    app.refused("price_cards", json!([card("RC-1", "Rates"), wrong])).await;
    assert_eq!(inserted().await, before, "a refused batch wrote nothing, and counts nothing");
    app.synced("price_cards", json!([card("RC-1", "Rates")])).await;
    assert_eq!(inserted().await, before + 1);
    app.stop().await;
}

#[tokio::test]
async fn health_and_metrics_are_served() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["engine"], common::engine_name());
    app.put("clients", json!([{"id": "C-1", "name": "A"}])).await;
    let text = app.text("/metrics").await;
    assert!(text.contains("cport_http_requests_total"), "{text}");
    assert!(text.contains("cport_sync_records_total"), "{text}");
    assert!(text.lines().any(|l| l == "cport_store_up 1"), "the store answered the scrape: {text}");
    // Made-up methods are counted, all under one label: a client cannot add series at will.
    for n in 0..20 {
        let m = reqwest::Method::from_bytes(format!("MADEUP{n}").as_bytes()).unwrap();
        let r = app.http.request(m, app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 405);
    }
    let text = app.text("/metrics").await;
    assert!(!text.contains("MADEUP"), "{text}");
    let other = text
        .lines()
        .find(|l| l.starts_with("cport_http_requests_total{") && l.contains("method=\"other\"") && l.contains("405"))
        .unwrap_or_else(|| panic!("no count of other methods: {text}"));
    assert!(other.ends_with(" 20"), "{other}");
    app.stop().await;
}

#[tokio::test]
async fn staff_post_list_and_retract_banners_over_the_api() {
    let app = TestApp::with_world().await;
    let url = app.url("/api/v1/banners");
    let r = app.http.post(&url).json(&json!({"title": "t", "body": "b", "severity": "info"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = app
        .http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"title": "Works closed", "body": "Back Monday", "severity": "loud"}))
        .send()
        .await
        .unwrap();
    common::refused_with(r, 400, "severity").await;
    let r = app
        .http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"title": "Works closed", "body": "Back Monday", "severity": "warning", "clients": ["C-2"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"].as_i64().unwrap();
    // The same post again (a retry after a lost answer): a conflict naming the banner.
    let same = json!({"title": "Works closed", "body": "Back Monday", "severity": "warning", "clients": ["C-2"]});
    let r = app.http.post(&url).bearer_auth(TOKEN).json(&same).send().await.unwrap();
    common::refused_with(r, 409, &format!("posted already (banner {id})")).await;
    let list: serde_json::Value = app.http.get(&url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(list[0]["title"], "Works closed");
    assert_eq!(list[0]["clients"], json!(["C-2"]));
    // A client named twice is one audience, not a refusal from the store.
    let twice = json!({"title": "Stocktake", "body": "Friday", "severity": "info", "clients": ["C-1", "C-2", "C-1"]});
    let r = app.http.post(&url).bearer_auth(TOKEN).json(&twice).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    let list: serde_json::Value = app.http.get(&url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    let stocktake = list.as_array().unwrap().iter().find(|b| b["title"] == "Stocktake").expect("listed");
    assert_eq!(stocktake["clients"], json!(["C-1", "C-2"]));
    let del = |id: i64| app.http.delete(app.url(&format!("/api/v1/banners/{id}"))).bearer_auth(TOKEN).send();
    assert_eq!(del(id).await.unwrap().status().as_u16(), 204);
    assert_eq!(del(id).await.unwrap().status().as_u16(), 204, "retracted before: a retry is answered the same");
    common::refused_with(del(999).await.unwrap(), 404, "no banner with id 999").await;
    // An end before the start, or (with no start: now) in the past, each said as it is.
    for (body, says) in [
        (json!({"title": "Late", "body": "b", "severity": "info", "expires_at": "2020-01-01T00:00:00Z"}), "is past"),
        (
            json!({"title": "Late", "body": "b", "severity": "info", "starts_at": "2031-01-02T00:00:00Z",
                   "expires_at": "2031-01-01T00:00:00Z"}),
            "must be after the start",
        ),
        // Started and ended in the past: shown nowhere, so refused, not posted.
        (
            json!({"title": "Old", "body": "b", "severity": "urgent", "starts_at": "2020-01-01T00:00:00Z",
                   "expires_at": "2021-01-01T00:00:00Z"}),
            "expires_at: is past",
        ),
    ] {
        let r = app.http.post(&url).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        common::refused_with(r, 400, says).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn inbound_email_over_http_needs_the_token_and_refuses_oversized_messages() {
    let app = TestApp::spawn_with(|c| c.inbound.max_bytes = 2048).await;
    let url = app.url("/inbound/email");
    let msg = "From: a@b.example\nTo: reply+aaaaaaaaaaaaaaaaaaaaaaaa@reply.tot.example\nSubject: x\nMessage-ID: <x1@b.example>\n\nITEMS\n";
    assert_eq!(app.http.post(&url).body(msg).send().await.unwrap().status().as_u16(), 401);
    let r = app.http.post(&url).bearer_auth(TOKEN).body(msg).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["disposition"], "ignored", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("no valid reply token"));
    let refused = |text: String| {
        text.lines()
            .find(|l| l.starts_with("cport_inbound_total{disposition=\"refused\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = refused(app.text("/metrics").await);
    let big = "x".repeat(4096);
    let r = app.http.post(&url).bearer_auth(TOKEN).body(big).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert!(r.text().await.unwrap().contains("inbound.max_bytes"));
    assert!(refused(app.text("/metrics").await) > before, "a message refused for its size is counted as refused");
    // A program calls this address: its refusals are JSON, as the API's are, never a page.
    let r = app.http.post(&url).bearer_auth(TOKEN).header("content-encoding", "gzip").body(msg).send().await.unwrap();
    common::refused_with(r, 415, "Content-Encoding").await;
    // Without the token it is 401 whatever the body: the caller is asked for first.
    for url in [url.clone(), app.url("/api/v1/clients")] {
        let r = app.http.post(&url).header("content-encoding", "gzip").body(msg).send().await.unwrap();
        assert_eq!(r.status().as_u16(), if url.ends_with("clients") { 405 } else { 401 }, "{url}");
        let r = app.http.put(&url).header("content-encoding", "gzip").body(msg).send().await.unwrap();
        assert_eq!(r.status().as_u16(), if url.ends_with("clients") { 401 } else { 405 }, "{url}");
    }
    let r = app.http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    common::refused_with(r, 405, "method").await;
    app.stop().await;
}

/// A pass over many contacts reads items for a batch of clients at once; each contact gets
/// exactly what reading its own client alone gives, in the same order.
#[tokio::test]
async fn the_batched_item_scan_matches_each_contacts_own_read() {
    let app = TestApp::with_world().await;
    let contacts = cport::store::contacts::list_active_contacts(&app.db).await.unwrap();
    assert!(contacts.len() > 2, "the world has several contacts");
    let mut cache = cport::actions::items::ItemCache::new(&contacts);
    let mut seen_items = 0;
    for c in &contacts {
        let batched = cache.for_contact(&app.db, c).await.unwrap();
        let alone = for_contact(&app.db, c).await.unwrap();
        let ids = |items: &[cport::actions::items::ActionItem]| {
            items.iter().map(|i| (i.category, i.id.clone(), i.command.clone())).collect::<Vec<_>>()
        };
        assert_eq!(ids(&batched), ids(&alone), "contact {}", c.id);
        seen_items += batched.len();
    }
    assert!(seen_items > 0, "the world has items");
    app.stop().await;
}

/// Pages and chat read a client's items from a snapshot kept with the client's version; a
/// write from another process (here a second state on the same store, as a second `cport
/// serve` on PostgreSQL would be) raises the version, so the next request sees it. A reader
/// holding the version a snapshot was read at is served from it without a query.
#[tokio::test]
async fn a_change_by_one_process_is_seen_by_the_next_request_on_another() {
    use cport::actions::items::current;
    let a = common::TestState::new(|_| {}).await;
    a.load(common::world()).await;
    let b = a.beside(|_| {}).await;
    let keys = |items: &[cport::actions::items::ActionItem]| {
        let mut k: Vec<String> = items.iter().map(|i| i.key()).collect();
        k.sort();
        k
    };
    let before = get_contact(&a.state.db, "P-1A").await.unwrap();
    let first = keys(&current(&a.state, &before).await.unwrap());
    assert!(first.contains(&"A1:V-1".to_string()), "{first:?}");
    assert!(first.contains(&"A3:PO-1".to_string()), "{first:?}");

    // Process B: the visual is decided on and the purchase order's line fully received.
    let w = common::world();
    let mut visual = w["visuals"][0].clone();
    visual["status"] = json!("approved");
    cport::sync::upsert_batch(&b.state.db, "visuals", vec![Ok(visual)]).await.unwrap();
    let mut po = w["purchase_orders"][0].clone();
    po["lines"][0]["received"] = json!(10);
    cport::sync::upsert_batch(&b.state.db, "purchase_orders", vec![Ok(po)]).await.unwrap();

    // A's next request reads the contact afresh and sees both changes.
    let after = get_contact(&a.state.db, "P-1A").await.unwrap();
    assert_ne!(after.items_version, before.items_version);
    let now = keys(&current(&a.state, &after).await.unwrap());
    assert!(!now.contains(&"A1:V-1".to_string()), "{now:?}");
    assert!(!now.contains(&"A3:PO-1".to_string()), "{now:?}");
    assert_eq!(now, keys(&for_contact(&a.state.db, &after).await.unwrap()));
    // Another client's version did not move.
    let beta = get_contact(&a.state.db, "P-2A").await.unwrap();
    let beta_items = current(&a.state, &beta).await.unwrap();
    assert_eq!(keys(&beta_items), keys(&for_contact(&a.state.db, &beta).await.unwrap()));

    // B gives J-1's delivery instructions. A reader still holding the version it read
    // before is served the snapshot read at that version, from memory; the next request,
    // reading the contact afresh, sees the change.
    let mut job = w["jobs"][0].clone();
    job["delivery_instructions"] = json!("given");
    cport::sync::upsert_batch(&b.state.db, "jobs", vec![Ok(job)]).await.unwrap();
    assert!(now.contains(&"A2:J-1".to_string()), "{now:?}");
    assert_eq!(keys(&current(&a.state, &after).await.unwrap()), now, "served from the snapshot");
    let next = get_contact(&a.state.db, "P-1A").await.unwrap();
    let fresh = keys(&current(&a.state, &next).await.unwrap());
    assert!(!fresh.contains(&"A2:J-1".to_string()), "{fresh:?}");
}

/// A key given twice in a delete's or a banner's body is refused by name, as in a record:
/// which of the two would count? Nothing is deleted or posted.
#[tokio::test]
async fn a_key_given_twice_in_a_delete_or_a_banner_is_refused() {
    let app = TestApp::with_world().await;
    let send = |method: reqwest::Method, path: &'static str, body: &'static str| {
        app.http.request(method, app.url(path)).bearer_auth(TOKEN).body(body).send()
    };
    let r = send(reqwest::Method::DELETE, "/api/v1/clients", r#"{"ids": ["C-NONE"], "ids": ["C-2"]}"#).await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body.to_string().contains("`ids` is given twice"), "{body}");
    assert_eq!(app.count("clients WHERE id = 'C-2'").await, 1, "nothing was deleted");
    let banners = app.count("banners").await;
    let banner = r#"{"title": "T1", "title": "T2", "body": "b", "severity": "info"}"#;
    let r = send(reqwest::Method::POST, "/api/v1/banners", banner).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("`title` is given twice"), "{body}");
    assert_eq!(app.count("banners").await, banners, "nothing was posted");
}

/// A batch of many bad records is answered with the first thousand errors and a count of the
/// rest, not an error per record (two million empty objects once made a 159 MB answer).
#[tokio::test]
async fn a_batch_of_many_bad_records_lists_a_thousand_and_counts_the_rest() {
    let app = TestApp::with_world().await;
    let body = app.refused("jobs", serde_json::Value::Array(vec![json!({}); 3000])).await;
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1001, "a thousand listed and one row counting the rest");
    let last = errors.last().unwrap();
    assert_eq!(last["field"], "document");
    let more = last["reason"].as_str().unwrap();
    let n: usize = more.split(' ').next().unwrap().parse().unwrap();
    assert!(more.ends_with("more errors are not listed") && n >= 2000, "{more}");
    // The count is of every record, listed or not, and the row counting the rest is none.
    assert!(body["error"].as_str().unwrap().starts_with("3000 invalid record(s)"), "{}", body["error"]);
}

/// A client's currency is a code ISO 4217 has (any number of decimals: amounts are held to
/// two whatever the code); three capital letters that name none are refused by name.
#[tokio::test]
async fn a_currency_iso_does_not_know_is_refused_by_name() {
    let app = TestApp::with_world().await;
    for code in ["ABC", "gbp", "GB", "EURO", "€"] {
        let body = app.refused("clients", json!([{"id": "C-9", "name": "Nine Ltd", "currency": code}])).await;
        let e = &body["errors"][0];
        assert_eq!(e["field"], "currency", "{code}: {body}");
        assert!(e["reason"].as_str().unwrap().contains("not an ISO 4217 currency code"), "{code}: {body}");
    }
    for code in ["EUR", "JPY", "CHF"] {
        let (status, body) = app.put("clients", json!([{"id": "C-9", "name": "Nine Ltd", "currency": code}])).await;
        assert_eq!(status, 200, "{code}: {body}");
    }
}

/// A NUL character (U+0000) anywhere in a record is refused by name and changes nothing, on
/// both engines: PostgreSQL refuses NUL in text even to look it up, and a batch's reference
/// check once turned that into a 500 (found by schemathesis). A lookup by an id holding one,
/// on the portal or the API, answers 4xx too.
#[tokio::test]
async fn a_nul_character_is_refused_by_name_never_a_server_error() {
    let app = TestApp::with_world().await;
    let body = app
        .refused(
            "jobs",
            json!([{"id": "J-\u{0}9", "client_id": "C-\u{0}1", "name": "N\u{0}", "status": "entered",
                    "contact_id": "P-\u{0}1"}]),
        )
        .await;
    let errors = body["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["field"] == "client_id" && e["reason"].as_str().unwrap().contains("U+0000")),
        "{body}"
    );
    assert!(
        errors.iter().any(|e| e["field"] == "client_id" && e["reason"].as_str().unwrap().contains("unknown client")),
        "{body}"
    );
    let (status, body) = app.delete("jobs", &["J-\u{0}1"]).await;
    assert_eq!(status, 422, "{body}");

    let b = app.signed_in("P-1B").await;
    for path in ["/visuals/V-1%00", "/jobs/J-1%00/delivery", "/enquiries/E%00"] {
        let (status, body) = app.page(&b, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("path: holds a NUL character"), "{path}: {body}");
    }
    let (status, body) = app.page(&b, "/stock?q=te%00e").await;
    assert_eq!((status, body.contains("q: holds a NUL character")), (400, true), "{body}");
    let (status, body) = app.api(reqwest::Method::GET, "/api/v1/changes?after=%00", None).await;
    assert_eq!(
        (status, body["error"].as_str().is_some_and(|e| e.contains("after: holds a NUL"))),
        (400, true),
        "{body}"
    );
    // Past the last event: refused, so a reader never keeps a place no event will reach.
    let (status, body) = app.api(reqwest::Method::GET, "/api/v1/changes?after=9223372036854775807", None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("after: 9223372036854775807 is past the last event"), "{body}");
    // Text looked up, not stored: an address to sign in with, a banner's audience.
    let anon = common::browser();
    let (_, html) = app.page(&anon, "/login").await;
    let csrf = common::csrf_of(&html);
    let (status, _, body) = app
        .post_raw(&anon, "/login", &[("csrf", csrf.as_str()), ("email", "ann@alpha.example\u{0}"), ("password", "x")])
        .await;
    assert_eq!((status, body.contains("email: holds a NUL character")), (400, true), "{body}");
    let (status, body) = app
        .api(
            reqwest::Method::POST,
            "/api/v1/banners",
            Some(json!({"title": "T", "body": "B", "severity": "info",
                                                                    "clients": ["C-\u{0}1"]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.starts_with("clients[0]: ")), "{body}");
    app.stop().await;
}

/// A cost line whose `qty × unit_price` no total can hold is refused on the way in, naming it,
/// though each figure alone is within its limit: a page, an answer or an approval summing it
/// must never overflow.
#[tokio::test]
async fn a_line_no_total_can_hold_is_refused_by_name() {
    let app = with_one_client().await;
    let huge = json!([{"description": "Set-up", "qty": 1_000_000_000, "unit_price": "9999999999999.99"}]);
    let body = app
        .refused(
            "jobs",
            json!([{"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "entered", "art_costs": huge}]),
        )
        .await;
    let errors = body["errors"].as_array().expect("errors array");
    assert!(
        errors.iter().any(|e| e["field"] == "art_costs[0].unit_price"
            && e["reason"].as_str().is_some_and(|r| r.contains("qty × unit_price is more than"))),
        "{body:#}"
    );
    assert_eq!(app.count("jobs").await, 0);

    // Lines each within the limit whose sum is not, in every list a page or the change feed
    // adds up: refused naming the list, never shown capped.
    let line = json!({"description": "Set-up", "qty": 1, "unit_price": "9999999999999.99"});
    let many = serde_json::Value::Array(vec![line; 2]);
    let job = json!({"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "entered"});
    app.synced("jobs", json!([job])).await;
    let visual = json!({"id": "V-1", "client_id": "C-1", "job_id": "J-1", "design_id": "D", "category": "Colour visual",
                        "designer": "d", "status": "awaiting_approval", "main_image": "/v.svg", "charges": many});
    let process = json!([{"process": "Print", "position": "Front", "qty": 1, "unit_price": "9999999999999.99", "status": "open"},
                         {"process": "Print", "position": "Back", "qty": 1, "unit_price": "9999999999999.99", "status": "open"}]);
    let costs = json!([{"cost_type": "Carriage", "description": "x", "price": "9999999999999.99"},
                       {"cost_type": "Carriage", "description": "y", "price": "9999999999999.99"}]);
    for (entity, record, field) in [
        ("visuals", visual, "charges"),
        (
            "jobs",
            {
                let mut j = job.clone();
                j["art_costs"] = many.clone();
                j
            },
            "art_costs",
        ),
        (
            "jobs",
            {
                let mut j = job.clone();
                j["process_lines"] = process;
                j
            },
            "process_lines",
        ),
        (
            "deliveries",
            json!({"id": "D-1", "client_id": "C-1", "status": "picked", "venue": "V", "description": "d",
                              "costs": costs}),
            "costs",
        ),
    ] {
        let body = app.refused(entity, json!([record])).await;
        let errors = body["errors"].as_array().expect("errors array");
        assert!(
            errors.iter().any(|e| e["field"] == field
                && e["reason"].as_str().is_some_and(|r| r.contains("add up to more than 10,000,000,000,000.00"))),
            "{entity}.{field}: {body:#}"
        );
    }
    assert_eq!(app.count("visuals").await, 0);
    assert_eq!(app.count("deliveries").await, 0);
    app.stop().await;
}

/// A contact's schedule from TOT's record is held to what the portal allows the contact:
/// every second, or every hour, would flood them.
#[tokio::test]
async fn a_contact_schedule_sending_more_than_four_a_day_is_refused_by_name() {
    let app = with_one_client().await;
    for schedule in ["* * * * * *", "0 0 * * * *"] {
        let body = app
            .refused(
                "contacts",
                json!([{"id": "P-1", "client_id": "C-1", "name": "Ann", "email": "ann@alpha.example",
                        "role": "admin", "digest_schedule": schedule}]),
            )
            .await;
        let errors = body["errors"].as_array().expect("errors array");
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == "digest_schedule"
                    && e["reason"].as_str().is_some_and(|r| r.contains("at most 4"))),
            "{schedule}: {body:#}"
        );
    }
    assert_eq!(app.count("contacts").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn dates_and_times_are_read_to_the_letter_and_each_bad_one_is_named() {
    let app = with_one_client().await;
    let job = |field: &str, value: &str| {
        let mut j = json!({"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "entered"});
        j[field] = json!(value);
        json!([j])
    };
    // What each field refuses, and what the refusal says.
    let dates = [
        ("2026-1-5", "YYYY-MM-DD"),
        ("10000-01-01", "YYYY-MM-DD"),
        ("0000-01-01", "between the years 1900 and 9999"),
        ("2026-02-30", "not a day of the calendar"),
    ];
    let times = [
        ("2026-11-25 09:30:00Z", "RFC 3339"),
        ("2026-11-25T09:30:00", "RFC 3339"),
        ("0001-01-01T00:00:00Z", "between the years"),
        // In the year 10000 once in UTC, as it would be kept.
        ("9999-12-31T23:30:00-01:00", "between the years"),
    ];
    for (field, cases) in [("date_required", &dates), ("created_at", &times)] {
        for &(value, says) in cases {
            let body = app.refused("jobs", job(field, value)).await;
            let e = &body["errors"][0];
            assert_eq!(e["field"], field, "{body:#}");
            assert!(e["reason"].as_str().is_some_and(|r| r.contains(says)), "{field} = {value}: {body:#}");
        }
    }
    assert_eq!(app.count("jobs").await, 0, "nothing written");
    app.synced("jobs", job("date_required", "2026-01-05")).await;
    app.stop().await;
}

#[tokio::test]
async fn values_that_could_only_break_later_are_refused_by_name() {
    let app = with_one_client().await;
    let long = "x".repeat(2001);
    let cases = [
        (
            "invoices",
            json!({"id": "I-1", "client_id": "C-1", "date": "2026-11-01", "job_name": "Tees",
                             "total": -90_000_000_000_000_000_i64, "paid": 0}),
            "total",
        ),
        (
            "invoices",
            json!({"id": "I-1", "client_id": "C-1", "date": "2026-11-01", "job_name": "Tees",
                             "total": "-10.00", "paid": "25.00"}),
            "paid",
        ),
        (
            "purchase_orders",
            json!({"id": "PO-1", "client_id": "C-1", "placed_by": "R", "third_party": true, "status": "open",
                                    "date_ordered": "2026-11-01", "tot_ref": "T", "category": "G", "type": "T", "supplier": "S",
                                    "lines": [{"status": "open", "sku": "S-1", "description": "Tee", "ordered": 10,
                                               "received": i64::MAX, "cancelled": 1}]}),
            "lines[0].received",
        ),
        ("jobs", json!({"id": "../../x", "client_id": "C-1", "name": "Tees", "status": "entered"}), "id"),
        (
            "jobs",
            json!({"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "entered", "order_id": long}),
            "order_id",
        ),
        (
            "contacts",
            json!({"id": "P-1", "client_id": "C-1", "name": "Ann", "email": "ann@alpha.example", "role": "admin",
                             "discord_user_id": "abc"}),
            "discord_user_id",
        ),
        (
            "contacts",
            json!({"id": "P-1", "client_id": "C-1", "name": "Ann", "email": "ann@alpha.example", "role": "admin",
                             "discord_user_id": "0"}),
            "discord_user_id",
        ),
        (
            "deliveries",
            json!({"id": "D-1", "client_id": "C-1", "status": "ready", "venue": "Works", "description": "Tees",
                   "tracking": {"carrier": "DPD", "number": "1",
                                "url": "https://t.example/x\"><script>alert(1)</script>"}}),
            "tracking.url",
        ),
        (
            "deliveries",
            json!({"id": "D-1", "client_id": "C-1", "status": "ready", "venue": "Works", "description": "Tees",
                   "tracking": {"carrier": "DPD", "number": "1", "url": "javascript:alert(1)"}}),
            "tracking.url",
        ),
    ];
    for (entity, record, field) in cases {
        let body = app.refused(entity, json!([record])).await;
        let errors = body["errors"].as_array().expect("errors");
        assert!(errors.iter().any(|e| e["field"] == field), "{entity} {field}: {body:#}");
        let shown = body.to_string();
        assert!(shown.len() < 2000, "a refused value is not repeated whole: {} bytes", shown.len());
    }
    for table in ["invoices", "purchase_orders", "jobs", "contacts", "deliveries"] {
        assert_eq!(app.count(table).await, 0, "{table}: nothing written");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_record_does_not_move_to_another_client() {
    let app = TestApp::with_world().await;
    // J-1 has C-1's visual V-1 and art AR-1: sent again for C-2, it would show in C-1's pages
    // as C-2's job.
    let (status, body) =
        app.put("jobs", json!([{"id": "J-1", "client_id": "C-2", "name": "Moved", "status": "entered"}])).await;
    assert_eq!(status, 422, "{body}");
    let e = &body["errors"][0];
    assert_eq!(e["field"], "client_id", "{body}");
    assert!(e["reason"].as_str().unwrap().contains("does not move between clients"), "{body}");
    let b = app.signed_in("P-1B").await;
    let (_, html) = app.page(&b, "/jobs/J-1").await;
    assert!(html.contains("Tees") && !html.contains("Moved"), "nothing changed");
    // The same record for its own client still updates.
    let (status, body) =
        app.put("jobs", json!([{"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "in_production"}])).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

/// A refused record's id, and the ids it names, are repeated on one line and cut short:
/// what a terminal would run (an escape sequence) or a log would split on never comes back.
#[tokio::test]
async fn refused_ids_are_repeated_on_one_line_and_cut_short() {
    let app = TestApp::with_world().await;
    let hostile = format!("C-\u{1b}]0;owned\u{7}\n{}", "9".repeat(5000));
    let body =
        app.refused("jobs", json!([{"id": hostile, "client_id": hostile, "name": "N", "status": "entered"}])).await;
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["reason"].as_str().unwrap().contains("unknown client")), "{body}");
    for e in errors {
        let text = e.to_string();
        assert!(!text.contains("\\u001b") && !text.contains("\\n") && !text.contains("\\u0007"), "{text}");
        assert!(text.len() < 600, "cut short: {} bytes", text.len());
    }
    // A refused id to delete is repeated the same way.
    let (status, body) = app.delete("jobs", &[&hostile]).await;
    assert_eq!(status, 422, "{body}");
    let text = body["errors"][0].to_string();
    assert!(!text.contains("\\u001b") && !text.contains("\\n") && text.len() < 600, "{text}");
    app.stop().await;
}

/// A record that gives one key twice is refused, naming the key and the record, and nothing
/// of the batch is written (JSON parsers differ on which of the two they keep).
#[tokio::test]
async fn a_record_giving_a_key_twice_is_refused_naming_it() {
    let app = TestApp::with_world().await;
    let before = app.count("jobs").await;
    let body = r#"[{"id": "J-50", "client_id": "C-1", "name": "Fine", "status": "entered"},
                   {"id": "J-51", "client_id": "C-1", "name": "Twice", "status": "entered", "id": "J-52"}]"#;
    let r = app
        .http
        .put(app.url("/api/v1/jobs"))
        .bearer_auth(common::TOKEN)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let report: serde_json::Value = r.json().await.unwrap();
    let e = &report["errors"][0];
    assert_eq!((e["index"].as_i64(), e["field"].as_str()), (Some(1), Some("id")), "{report}");
    assert_eq!(app.count("jobs").await, before, "nothing written");
    // An entity the API does not have is said first, whatever the body.
    let (status, body) = app.api(reqwest::Method::PUT, "/api/v1/gloves", Some(serde_json::json!({"x": 1}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("unknown entity"), "{body}");
    app.stop().await;
}

/// An object written as an array (its fields by position) is refused wherever an object is
/// asked for, naming where, and changes nothing: a record's nested object, a line of it, the
/// body of a delete, the body of a banner. A banner's bad time names its field.
#[tokio::test]
async fn objects_written_as_arrays_are_refused_where_they_stand() {
    let app = TestApp::with_world().await;
    let delivery = |tracking: serde_json::Value, lines: serde_json::Value| {
        json!([{"id": "D-9", "client_id": "C-1", "status": "picked", "venue": "Hall", "description": "Tees",
                "tracking": tracking, "lines": lines}])
    };
    for (body, field) in [
        (delivery(json!(["DPD", "123", null]), json!([])), "tracking"),
        (delivery(json!(null), json!([["Tee", 5]])), "lines[0]"),
    ] {
        let (status, v) = app.put("deliveries", body).await;
        assert_eq!(status, 422, "{v}");
        let e = &v["errors"][0];
        assert_eq!(e["field"], field, "{v}");
        assert!(e["reason"].as_str().unwrap().contains("expected an object with named fields, not an array"), "{v}");
    }
    assert_eq!(app.count("deliveries").await, 0);

    let (status, v) = app.api(reqwest::Method::DELETE, "/api/v1/clients", Some(json!([["C-1"]]))).await;
    assert_eq!(status, 422, "{v}");
    assert!(v["errors"][0]["reason"].as_str().unwrap().contains("the body must be a JSON object"), "{v}");
    assert_eq!(app.count("clients").await, 2, "nothing deleted");

    let url = app.url("/api/v1/banners");
    for (body, says) in [
        (json!(["Closed", "Friday", "info"]), "the body must be a JSON object"),
        (
            json!({"title": "Closed", "body": "Friday", "severity": "info", "starts_at": "2026-13-01T00:00:00Z"}),
            "starts_at:",
        ),
    ] {
        let r = app.http.post(&url).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        common::refused_with(r, 400, says).await;
    }
    assert_eq!(app.count("banners").await, 0);
    app.stop().await;
}

/// A client (or a job) TOT deletes takes its artwork records with it, and their files:
/// nothing would name them after. Another client's stay.
#[tokio::test]
async fn deleting_a_client_removes_its_artwork_files() {
    let t = common::TestState::new(|_| {}).await;
    t.load(common::world()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![];
    for (client, job, contact) in [("C-1", "J-1", "P-1A"), ("C-2", "J-9", "P-2A")] {
        let path = dir.path().join(format!("{client}.pdf"));
        std::fs::write(&path, b"%PDF-1.4 art").unwrap();
        let path = path.display().to_string();
        let mut tx = t.state.db.begin().await.unwrap();
        let art = cport::store::inbound::NewArtwork {
            client_id: client,
            job_id: job,
            requirement_id: None,
            contact_id: contact,
            file_name: "logo.pdf",
            content_type: "application/pdf",
            size: 12,
            path: &path,
        };
        cport::store::inbound::insert_artwork(&mut tx, &art, chrono::Utc::now()).await.unwrap();
        tx.commit().await.unwrap();
        files.push(path);
    }
    let report = cport::sync::delete_batch(&t.state.db, "clients", vec!["C-2".into()]).await.unwrap();
    assert_eq!(report.deleted, 1);
    assert!(std::path::Path::new(&files[0]).exists(), "C-1's file stays");
    assert!(!std::path::Path::new(&files[1]).exists(), "C-2's file went with it");
    // The same for a job: its artwork goes with it (sent anew, it shows none of the old).
    let report = cport::sync::delete_batch(&t.state.db, "jobs", vec!["J-1".into()]).await.unwrap();
    assert_eq!(report.deleted, 1);
    assert!(!std::path::Path::new(&files[0]).exists(), "J-1's file went with it");
    let left: (i64,) = cport::store::on_db!(&t.state.db, p => sqlx::query_as("SELECT COUNT(*) FROM artwork_uploads")
        .fetch_one(p).await)
    .unwrap();
    assert_eq!(left.0, 0);
}

/// Values a sync record may be sent in place of its own: wrong types, out-of-range numbers,
/// impossible dates, control and bidi characters, very long text, ids of nothing or of another
/// client's records.
fn odd_values() -> Vec<serde_json::Value> {
    vec![
        json!(null),
        json!(""),
        json!(" "),
        json!("\u{0}"),
        json!("a\u{202e}b"),
        json!("x\ny"),
        json!("\u{7f}"),
        json!("\u{fffe}"),
        json!(-1),
        json!(0),
        json!(1.5),
        json!(1e300),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(true),
        json!([]),
        json!({}),
        json!([null]),
        json!({"a": 1}),
        json!("2026-02-30"),
        json!("2026-12-01T25:00:00Z"),
        json!("9999-12-31"),
        json!("x".repeat(100_000)),
        json!("日本"),
        json!("C-404"),
        json!("C-200"),
        json!("J-1"),
        json!("awaiting_approval"),
        json!("eur"),
    ]
}

/// The demo's records, each sent with one to three of its values (at any depth) replaced by
/// an odd one (seeded, so a failure is found again): each batch is taken or refused with 422
/// naming the entity and the field, never a server error, and a record taken holds no
/// character text may not hold.
#[tokio::test]
async fn records_with_odd_values_are_taken_or_refused_by_field_never_a_server_error() {
    use rand::{Rng, SeedableRng};
    let app = TestApp::spawn().await;
    let doc: serde_json::Value = serde_json::from_str(include_str!("../src/demo/document.json")).unwrap();
    let entities = cport::model::records::ENTITIES;
    for entity in entities {
        let (status, v) = app.api(reqwest::Method::PUT, &format!("/api/v1/{entity}"), Some(doc[*entity].clone())).await;
        assert_eq!(status, 200, "the demo's {entity}: {v}");
    }
    let odd = odd_values();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut taken = 0;
    for i in 0..400 {
        let entity = entities[rng.gen_range(0..entities.len())];
        let records = doc[entity].as_array().unwrap();
        let mut record = records[rng.gen_range(0..records.len())].clone();
        for _ in 0..rng.gen_range(1..4) {
            // Down to a value at random: into an object's field or an array's element, or stop.
            let mut at = &mut record;
            loop {
                let size = match &*at {
                    serde_json::Value::Object(o) => o.len(),
                    serde_json::Value::Array(a) => a.len(),
                    _ => 0,
                };
                if size == 0 || rng.gen_bool(0.2) {
                    break;
                }
                let n = rng.gen_range(0..size);
                at = match at {
                    serde_json::Value::Object(o) => o.values_mut().nth(n).unwrap(),
                    serde_json::Value::Array(a) => &mut a[n],
                    _ => unreachable!(),
                };
            }
            *at = odd[rng.gen_range(0..odd.len())].clone();
        }
        let body = json!([record]);
        let (status, v) = app.api(reqwest::Method::PUT, &format!("/api/v1/{entity}"), Some(body.clone())).await;
        let sent: String = body.to_string().chars().take(1000).collect();
        match status {
            200 => {
                taken += 1;
                let bad = common::forbidden_in(&body);
                assert!(bad.is_none(), "record {i}: {entity} took {bad:?}: {sent}");
            }
            422 => {
                let first = &v["errors"][0];
                assert!(
                    first["entity"] == *entity && first["field"].as_str().is_some_and(|f| !f.is_empty()),
                    "record {i}: the refusal names no field: {v}\n{sent}"
                );
            }
            _ => panic!("record {i}: {entity} answered {status}: {v}\n{sent}"),
        }
    }
    assert!((5..380).contains(&taken), "some records are still taken, most refused: {taken} of 400");
}

/// Pictures are found by their path, which the store indexes: one longer than 2,000 bytes (a
/// thousand characters of a script written three bytes each) is refused naming the field on
/// both engines, where PostgreSQL's index once made it a server error.
#[tokio::test]
async fn a_picture_path_too_long_for_its_index_is_refused_by_name() {
    let app = TestApp::with_world().await;
    let stock = |picture: String| {
        json!([{"sku": "S-1", "client_id": "C-1", "description": "Tee", "warehouse_balance": 10,
                "available_to_order": 5, "picture": picture}])
    };
    let body = app.refused("stock", stock("图".repeat(1000))).await;
    let said = body.to_string();
    assert!(said.contains("\"picture\"") && said.contains("longer than 2000 bytes"), "{body}");
    assert_eq!(app.count("stock").await, 0, "nothing was written");
    app.synced("stock", stock("图".repeat(600))).await;
    let visual = json!([{"id": "V-9", "client_id": "C-1", "job_id": "J-1", "design_id": "D", "category": "c",
                         "designer": "d", "status": "awaiting_approval", "main_image": "/media/v.png",
                         "placement_image": "图".repeat(1000)}]);
    assert!(app.refused("visuals", visual).await.to_string().contains("placement_image"));
    app.stop().await;
}

/// A count sent as anything but a whole number in digits is refused in the sender's words,
/// naming the field, whatever way it was written: never the reader's "expected i64".
#[tokio::test]
async fn a_count_not_written_as_a_whole_number_is_refused_in_plain_words() {
    let app = with_one_client().await;
    let stock = |written: &str| {
        format!(
            "[{{\"sku\": \"S-1\", \"client_id\": \"C-1\", \"description\": \"Tee\", \"warehouse_balance\": {written}, \
             \"expected\": 0, \"accounted_for\": 0, \"available_to_order\": 0}}]"
        )
    };
    for (written, says) in [
        ("1.5", "expected a whole number in digits, not `1.5`"),
        // Read as floats, said as the reader holds them (`1000.0`, `1e20`).
        ("1e3", "expected a whole number in digits, not `1"),
        ("99999999999999999999", "expected a whole number in digits, not `1"),
        ("\"150\"", "invalid type: string \"150\", expected a whole number"),
    ] {
        let r = app.http.put(app.url("/api/v1/stock")).bearer_auth(TOKEN).body(stock(written)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 422, "{written}");
        let v: serde_json::Value = r.json().await.unwrap();
        let e = &v["errors"][0];
        assert_eq!(e["field"], "warehouse_balance", "{written}: {v}");
        let reason = e["reason"].as_str().unwrap();
        assert!(reason.starts_with(says) && !reason.contains("i64"), "{written}: {v}");
    }
    assert_eq!(app.count("stock").await, 0, "nothing was written");
    app.stop().await;
}
