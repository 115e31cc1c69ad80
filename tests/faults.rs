//! Never silent, never twice: poison input is refused at the door, a message that cannot
//! be sent dies alone, background tasks come back after a panic, claims are fenced, slow and
//! hung servers cause no duplicates and no stall, and an inbound message's effects land
//! exactly once whatever step fails.

mod common;

use chrono::{Duration, Utc};
use common::{SmtpServer, TestApp, TestState, world};
use cport::outbox::drain;
use cport::store::outbox::{self as ob, Mark, Take, claim, list_messages, mark};
use serde_json::json;

fn contact(name: &str) -> serde_json::Value {
    json!([{"id": "P-X", "client_id": "C-1", "name": name, "email": "x@alpha.example", "role": "buyer"}])
}

#[tokio::test]
async fn control_characters_are_refused_in_every_text_field_with_the_field_named() {
    let app = TestApp::spawn().await;
    common::load_world(&app).await;
    let cases: &[(&str, serde_json::Value, &str)] = &[
        ("contacts", contact("Eve\r\nBcc: x@example.com"), "name"),
        ("contacts", contact("Eve\u{1b}[31m"), "name"),
        (
            "contacts",
            json!([{"id": "P-X", "client_id": "C-1", "name": "Eve", "email": "x@alpha.example", "role": "buyer", "phone": "0123\n456"}]),
            "phone",
        ),
        (
            "jobs",
            json!([{"id": "J-X", "client_id": "C-1", "name": "Tees", "status": "entered", "client_ref": "R\t1"}]),
            "client_ref",
        ),
        (
            "jobs",
            json!([{"id": "J-X", "client_id": "C-1", "name": "Tees", "status": "entered",
                    "process_lines": [{"status": "planned", "process": "Print", "position": "Fr\u{0}ont", "qty": 1, "unit_price": 1}]}]),
            "process_lines[0].position",
        ),
        (
            "deliveries",
            json!([{"id": "D-X", "client_id": "C-1", "status": "picked", "venue": "Depot", "description": "Box",
                    "tracking": {"carrier": "DHL", "number": "1", "url": "https://t.example/\r\nx"}}]),
            "tracking.url",
        ),
        ("clients", json!([{"id": "C-X", "name": "Right\u{202e}gnp.exe"}]), "name"),
    ];
    for (entity, body, field) in cases {
        let before = app.count(entity).await;
        let resp = app.refused(entity, body.clone()).await;
        let errors = resp["errors"].as_array().expect("errors listed");
        assert!(
            errors.iter().any(|e| e["field"] == *field && e["reason"].as_str().unwrap().contains("control character")),
            "{entity}: the error names `{field}`: {resp}"
        );
        assert_eq!(app.count(entity).await, before, "{entity}: nothing written");
    }
    // Multi-line fields keep their line breaks and tabs.
    let ok = json!([{"id": "D-Y", "client_id": "C-1", "status": "picked", "venue": "Unit 4\nDock Road",
                     "description": "Two boxes:\n\t- tees\n\t- caps"}]);
    app.synced("deliveries", ok).await;
    app.stop().await;
}

#[tokio::test]
async fn import_refuses_a_line_break_in_a_name_and_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path()).await;
    let doc = dir.path().join("doc.json");
    let mut w = world();
    w["contacts"][0]["name"] = json!("Eve\r\nBcc: x@example.com");
    std::fs::write(&doc, w.to_string()).unwrap();
    let out = std::process::Command::new(common::cport_bin())
        .args(["import"])
        .arg(&doc)
        .env("CPORT_DATABASE_URL", &url)
        .env("CPORT_DATA_DIR", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "refused: {stdout} {stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("contacts[0] (P-1A) name: holds the control character U+000D"),
        "names the record and field: {stdout} {stderr}"
    );
}

/// Puts a contact straight into the store, past validation, as an old row might be.
async fn poison_contact_name(t: &TestState, id: &str, name: &str) {
    cport::store::on_db!(&t.state.db, p => sqlx::query("UPDATE contacts SET name = $1 WHERE id = $2").bind(name).bind(id).execute(p).await.map(|_| ()))
        .unwrap();
}

#[tokio::test]
async fn a_message_that_cannot_be_built_dies_alone_and_the_rest_go_out() {
    let smtp = SmtpServer::start();
    let t = TestState::mailing(&smtp, |_| ()).await;
    // A name with a line break reaches the composer (the store predates the check), and a
    // payload is damaged after queueing: neither may stop the sender.
    poison_contact_name(&t, "P-1A", "Ann\r\nBcc: evil@example.com").await;
    common::digests_now(&t.state, &["P-1A", "P-1B", "P-1V"]).await;
    let rows = list_messages(&t.state.db, None, 10).await.unwrap();
    let victim = rows.iter().find(|r| r.message.contact_id.as_deref() == Some("P-1V")).unwrap().id;
    cport::store::on_db!(&t.state.db, p => sqlx::query("UPDATE outbox_payloads SET payload = '{not json' WHERE outbox_id = $1").bind(victim).execute(p).await.map(|_| ()))
        .unwrap();

    let report = drain(&t.state).await.unwrap();
    assert_eq!((report.sent, report.dead), (2, 1), "{report:?}");
    let rows = list_messages(&t.state.db, None, 10).await.unwrap();
    let dead = rows.iter().find(|r| r.id == victim).unwrap();
    assert_eq!(dead.status.as_str(), "dead");
    assert!(dead.last_error.as_deref().unwrap().contains("unreadable payload"), "{dead:?}");
    // The name was sent as one encoded phrase: no header of its own.
    let msgs = smtp.messages();
    let ann = msgs
        .iter()
        .map(|(raw, _)| String::from_utf8_lossy(raw).into_owned())
        .find(|m| m.contains("ann@alpha.example"))
        .expect("Ann's digest went out");
    let headers = ann.split("\r\n\r\n").next().unwrap();
    assert!(!headers.lines().any(|l| l.starts_with("Bcc:")), "{headers}");
    let env = msgs.iter().find(|(r, _)| String::from_utf8_lossy(r).contains("ann@alpha.example")).unwrap();
    assert_eq!(env.1["rcpt_tos"], json!(["ann@alpha.example"]));
}

/// An outbox row whose kind is no kind cport writes (a hand edit of a store from before the
/// state guards) dies alone at its claim, saying what it holds; the others in the batch go out, and every later batch
/// too. Reading the outbox names the value until someone mends or removes the row.
#[tokio::test]
async fn an_outbox_row_holding_an_unknown_kind_dies_alone_at_its_claim() {
    let smtp = SmtpServer::start();
    let t = TestState::mailing(&smtp, |_| ()).await;
    common::digests_now(&t.state, &["P-1A", "P-1B"]).await;
    let rows = list_messages(&t.state.db, None, 10).await.unwrap();
    let victim = rows.iter().find(|r| r.message.contact_id.as_deref() == Some("P-1B")).unwrap().id;
    unguarded(&t.state.db, "outbox", "kind").await;
    cport::store::on_db!(&t.state.db, p => sqlx::query("UPDATE outbox SET kind = 'postcard' WHERE id = $1")
        .bind(victim).execute(p).await.map(|_| ()))
    .unwrap();

    let report = drain(&t.state).await.unwrap();
    assert_eq!(report.sent, 1, "Ann's digest went: {report:?}");
    let (status, error): (String, String) = cport::store::on_db!(&t.state.db, p => sqlx::query_as(
        "SELECT status, last_error FROM outbox WHERE id = $1").bind(victim).fetch_one(p).await)
    .unwrap();
    assert_eq!(status, "dead");
    assert!(error.contains("`postcard`") && error.contains("digest"), "{error}");
    assert_eq!(drain(&t.state).await.unwrap().sent, 0, "nothing is left to send, and nothing fails");
    let read = list_messages(&t.state.db, None, 10).await.expect_err("the unknown kind is named when read");
    assert!(read.to_string().contains("\"postcard\""), "{read}");
}

async fn health(app: &TestApp) -> (u16, serde_json::Value) {
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Polls `/healthz` until `want` (bounded: at most `secs` seconds).
async fn health_becomes(app: &TestApp, want: u16, secs: u64) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let (status, body) = health(app).await;
        if status == want {
            return body;
        }
        assert!(std::time::Instant::now() < deadline, "healthz stayed {status}: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_background_task_that_panics_is_restarted_and_healthz_says_so_meanwhile() {
    let app = TestApp::spawn_with(|c| {
        c.digest.tick_seconds = 1;
        c.alerts.scan_seconds = 1;
        c.outbox.workers = 1;
    })
    .await;
    assert_eq!(health(&app).await.0, 200);
    for (point, task) in [
        ("task:dispatcher", "dispatcher-1"),
        ("task:dispatcher-chat", "dispatcher-chat-1"),
        ("task:scheduler", "scheduler"),
        ("task:alerts", "alerts"),
    ] {
        app.state.faults.arm(point, 1);
        app.state.wake_dispatch.notify_waiters();
        app.state.alerts.notify.notify_one();
        let body = health_becomes(&app, 503, 10).await;
        assert!(body["status"].as_str().unwrap().contains(task), "{task}: {body}");
        let body = health_becomes(&app, 200, 10).await;
        let t = body["tasks"].as_array().unwrap().iter().find(|t| t["task"] == task).unwrap().clone();
        assert_eq!(t["state"], "running", "{body}");
        assert_eq!(t["restarts"], 1, "{body}");
    }
    let metrics = app.text("/metrics").await;
    assert!(metrics.contains("cport_task_restarts_total{task=\"dispatcher-1\"}"), "restarts counted");
    app.stop().await;
}

#[tokio::test]
async fn only_the_holder_of_the_current_claim_may_mark_a_row() {
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    common::digest_now(&t.state, "P-1A").await;
    let now = Utc::now();
    let first =
        claim(&t.state.db, Take::Lane(ob::Lane::All), 1, "first", now, now + Duration::seconds(1)).await.unwrap();
    let id = first[0].id;
    // The first sender stalls past its lease; a second takes the row over and delivers it.
    let later = now + Duration::seconds(5);
    let second =
        claim(&t.state.db, Take::Lane(ob::Lane::All), 1, "second", later, later + Duration::seconds(60)).await.unwrap();
    assert_eq!(second[0].id, id);
    assert!(mark(&t.state.db, id, "second", Mark::Sent("250 ok"), later).await.unwrap());
    // The stalled sender's late answer changes nothing, alone or in a group commit.
    assert!(
        cport::store::outbox::mark_sent_many(&t.state.db, &[(id, "first", "250 late")], later)
            .await
            .unwrap()
            .is_empty()
    );
    for late in [
        Mark::Failed { error: "timed out", retry_at: None },
        Mark::Failed { error: "timed out", retry_at: Some(later) },
        Mark::Sent("250 late"),
        Mark::Dropped("late"),
    ] {
        assert!(!mark(&t.state.db, id, "first", late.clone(), later).await.unwrap(), "{late:?}");
    }
    let row = list_messages(&t.state.db, None, 10).await.unwrap().into_iter().find(|r| r.id == id).unwrap();
    assert_eq!((row.status.as_str(), row.provider_id.as_deref()), ("sent", Some("250 ok")));
    // A sent row is never claimed again, so `outbox retry --dead` cannot send it twice.
    let much_later = later + Duration::days(1);
    assert!(
        claim(&t.state.db, Take::Lane(ob::Lane::All), 10, "third", much_later, much_later).await.unwrap().is_empty()
    );
    assert_eq!(
        ob::requeue(&t.state.db, id, much_later).await.unwrap(),
        ob::Requeue::Not(cport::model::OutboxStatus::Sent)
    );
}

/// A message whose every claim runs out unmarked (its sender dies with it, past what a panic
/// guard can catch) is not taken forever: past its attempts it is dead, saying why, unsent.
#[tokio::test]
async fn a_message_whose_claims_keep_running_out_dies_after_its_attempts() {
    let t = TestState::new(|c| c.outbox.max_attempts = 2).await;
    t.load(world()).await;
    common::digest_now(&t.state, "P-1A").await;
    let mut at = Utc::now();
    let mut ids = vec![];
    for token in ["first", "second"] {
        let claimed =
            claim(&t.state.db, Take::Lane(ob::Lane::All), 100, token, at, at + Duration::seconds(1)).await.unwrap();
        assert!(!claimed.is_empty(), "{token} takes the digest");
        ids = claimed.iter().map(|r| r.id).collect();
        at += Duration::seconds(5);
    }
    let out = cport::outbox::dispatch_batch_at(&t.state, at, 100).await.unwrap();
    assert_eq!(out, vec![cport::outbox::Outcome::Dead; ids.len()]);
    let row = list_messages(&t.state.db, None, 10).await.unwrap().into_iter().find(|r| r.id == ids[0]).unwrap();
    assert_eq!(row.status.as_str(), "dead");
    assert!(row.last_error.as_deref().unwrap_or("").contains("stopped while sending"), "{:?}", row.last_error);
    assert!(row.provider_id.is_none(), "nothing was sent");
}

/// An alert whose stored item list cannot be read dies saying so; it is not dropped as if
/// its items had all been resolved.
#[tokio::test]
async fn an_alert_with_an_unreadable_payload_dies_saying_so() {
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    let now = Utc::now();
    let mut tx = t.state.db.begin().await.unwrap();
    ob::insert_message(
        &mut tx,
        &ob::NewMessage {
            contact_id: Some("P-1A".into()),
            channel: cport::model::Outlet::Email,
            kind: cport::model::MessageKind::Alert,
            idem_key: "alert-broken".into(),
            reply_token: Some(t.state.signer.new_reply_token()),
            recipient: "ann@alpha.example".into(),
            subject: "Visual V-1 awaits".into(),
            payload: "{not json".into(),
            next_attempt_at: now,
        },
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let out = cport::outbox::dispatch_batch_at(&t.state, now, 10).await.unwrap();
    assert_eq!(out, vec![cport::outbox::Outcome::Dead]);
    let row = list_messages(&t.state.db, None, 10).await.unwrap().into_iter().next().unwrap();
    assert_eq!(row.status.as_str(), "dead");
    assert!(row.last_error.as_deref().unwrap_or("").contains("unreadable payload"), "{:?}", row.last_error);
}

/// A server taking `delay` seconds a message, a lease of 3 s (renewed every second while a
/// sender works), and a digest queued for each of five contacts: how many.
async fn five_digests_for_a_slow_server(delay: &str) -> (SmtpServer, TestState, usize) {
    let smtp = SmtpServer::start_with(&["--delay", delay]);
    let t = TestState::mailing(&smtp, |c| c.outbox.lease_seconds = 3).await;
    common::digests_now(&t.state, &["P-1A", "P-1B", "P-1F", "P-1V", "P-2A"]).await;
    let queued = list_messages(&t.state.db, Some("queued"), 100).await.unwrap().len();
    assert_eq!(queued, 5, "a digest for each");
    (smtp, t, queued)
}

#[tokio::test]
async fn a_slow_server_and_short_leases_cause_no_duplicate() {
    // Two processes with two senders each: a claim never lapses while its sender works.
    let (smtp, t, queued) = five_digests_for_a_slow_server("0.5").await;
    // A second process: the same config, its own pool on the same store.
    let db = cport::store::Db::connect(t.state.config.database_url.expose()).await.unwrap();
    let other = cport::AppState::new((*t.state.config).clone(), db).unwrap();
    let (a, b) = tokio::join!(
        cport::outbox::drain_concurrently(&t.state, 2, None),
        cport::outbox::drain_concurrently(&other, 2, None)
    );
    assert_eq!(a.unwrap().sent + b.unwrap().sent, queued);
    assert_eq!(smtp.messages().len(), queued, "each digest delivered once");
}

/// The store stops taking a sender's claim renewals (locked by another writer, a connection
/// gone) while a slow server takes its batch: the sender stops before its claim runs out
/// rather than go on sending messages another sender may by then have taken; what it did
/// not send goes back, and every message is delivered once.
#[tokio::test]
async fn a_sender_whose_claim_is_not_renewed_stops_before_it_runs_out() {
    let (smtp, t, queued) = five_digests_for_a_slow_server("0.8").await;
    t.state.faults.arm("outbox:renew", 1000);
    let started = std::time::Instant::now();
    let out = cport::outbox::dispatch_batch(&t.state, 16).await.unwrap();
    let sent = out.iter().filter(|o| **o == cport::outbox::Outcome::Sent).count();
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "done within the lease: {:?}", started.elapsed());
    assert!((1..queued).contains(&sent), "some sent, then stopped: {out:?}");
    assert_eq!(smtp.messages().len(), sent, "nothing delivered that was not marked");
    let back = list_messages(&t.state.db, Some("queued"), 100).await.unwrap();
    assert_eq!(back.len(), queued - sent, "the rest handed back");
    assert!(back.iter().all(|r| r.attempts == 0), "with their attempt given back: {back:?}");
    t.state.faults.arm("outbox:renew", 0);
    drain(&t.state).await.unwrap();
    assert_eq!(smtp.messages().len(), queued, "each digest delivered once");
}

/// A lone message held at its gate (the server took most of the send's time before the
/// message could go: a delivery must begin with a quarter of it left) is handed back at
/// once, untried, not left claimed with an attempt used until its claim runs out; it goes
/// at a later try.
#[tokio::test]
async fn a_lone_message_refused_at_its_gate_is_handed_back_at_once() {
    let smtp = SmtpServer::start_with(&["--slow-rcpt", "1.7"]);
    let t = TestState::mailing(&smtp, |c| {
        c.outbox.send_timeout_seconds = 2;
        c.outbox.lease_seconds = 600;
    })
    .await;
    common::digest_now(&t.state, "P-1A").await;
    let out = cport::outbox::dispatch_batch(&t.state, 1).await.unwrap();
    assert!(!out.contains(&cport::outbox::Outcome::Sent), "{out:?}");
    let rows = list_messages(&t.state.db, None, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].status.as_str(), rows[0].attempts), ("queued", 0), "handed back untried: {:?}", rows[0]);
    assert!(smtp.messages().is_empty(), "nothing was handed over");
}

/// A relay slower to answer the end of data than the send's time (a content filter checking
/// the whole message first) is waited for once the message is handed over: the message is
/// sent once and marked so, not given up on and sent again at every try while the relay
/// takes each copy.
#[tokio::test]
async fn a_relay_slow_to_answer_the_end_of_data_gets_the_message_once() {
    let smtp = SmtpServer::start_with(&["--delay", "3"]);
    let t = TestState::mailing(&smtp, |c| c.outbox.send_timeout_seconds = 2).await;
    common::digest_now(&t.state, "P-1A").await;
    let out = cport::outbox::dispatch_batch(&t.state, 1).await.unwrap();
    assert_eq!(out, vec![cport::outbox::Outcome::Sent]);
    let rows = list_messages(&t.state.db, None, 10).await.unwrap();
    assert_eq!(rows[0].status.as_str(), "sent", "{:?}", rows[0]);
    assert_eq!(smtp.messages().len(), 1);
}

/// A batch held up by a slow server reads its contacts again before a later message once
/// what it read has grown old: a digest whose contact TOT gave a new address meanwhile is
/// written again and goes to the new one, never to the address they no longer have.
#[tokio::test]
async fn a_batch_held_up_sends_on_what_is_true_when_each_message_goes() {
    let smtp = SmtpServer::start_with(&["--delay", "6"]);
    let t = TestState::mailing(&smtp, |_| {}).await;
    common::digests_now(&t.state, &["P-1A", "P-1B"]).await;
    let state = t.state.clone();
    let batch = tokio::spawn(async move { cport::outbox::dispatch_batch(&state, 2).await });
    // Ann's digest is being received (the batch read its contacts before it began): Bob's
    // address changes while the server keeps the batch waiting.
    let receiving = smtp.dir.path().join("receiving");
    for _ in 0..400 {
        if receiving.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(receiving.exists(), "the first message reached the server");
    t.load(json!({"contacts": [{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer", "email": "bob@new.example",
                                 "role": "buyer"}]}))
        .await;
    let out = batch.await.unwrap().unwrap();
    assert_eq!(out, vec![cport::outbox::Outcome::Sent; 2]);
    let to: Vec<String> = smtp.messages().iter().map(|(_, e)| e["rcpt_tos"][0].as_str().unwrap().to_string()).collect();
    assert_eq!(to, ["ann@alpha.example", "bob@new.example"], "Bob's digest went to the address he has now");
}

/// A server too busy to take a message answers MAIL with a 421 and closes: its own words are
/// the recorded reason (a pipelining sender once kept only "incomplete response"), and the
/// message goes at a later try.
#[tokio::test]
async fn a_server_too_busy_is_named_by_its_own_words_and_the_message_retried() {
    let smtp = SmtpServer::start_with(&["--busy", "1"]);
    let t = TestState::mailing(&smtp, |_| {}).await;
    common::digests_now(&t.state, &["P-1A"]).await;
    let d = drain(&t.state).await.unwrap();
    assert_eq!((d.sent, d.retrying), (0, 1), "{d:?}");
    let row = list_messages(&t.state.db, None, 1).await.unwrap().remove(0);
    let error = row.last_error.unwrap_or_default();
    assert!(error.contains("421") && error.contains("Too busy for now"), "{error}");
}

/// A server that refuses cport's login, or its sender address, refuses every message alike:
/// nothing of the message is at fault, so the messages wait out their backoff, named by the
/// step that failed, instead of going dead at their first try (a rotated password would
/// otherwise kill the whole queue in seconds). With the right password the same server takes
/// the mail, so the refusal is the login's.
#[tokio::test]
async fn a_refused_login_or_sender_leaves_the_queue_waiting_not_dead() {
    // A digest's envelope sender is its bounce address, at `email.reply_domain`.
    let smtp = SmtpServer::start_with(&["--password", "right", "--refuse-from", "@refused.example"]);
    type Setup = fn(&mut cport::config::Config);
    let cases: [(Setup, &str, &str); 3] = [
        (
            |c| c.smtp.password = cport::config::Secret::new("wrong"),
            "failed",
            "SMTP login (smtp.username, smtp.password)",
        ),
        (
            |c| {
                c.smtp.password = cport::config::Secret::new("right");
                c.email.reply_domain = "refused.example".into();
            },
            "failed",
            "SMTP MAIL FROM <bounce+",
        ),
        (|c| c.smtp.password = cport::config::Secret::new("right"), "sent", ""),
    ];
    for (setup, status, names) in cases {
        let t = TestState::mailing(&smtp, |c| {
            c.smtp.username = "cport".into();
            setup(c);
        })
        .await;
        common::digests_now(&t.state, &["P-1A", "P-1B"]).await;
        drain(&t.state).await.unwrap();
        let rows = list_messages(&t.state.db, None, 10).await.unwrap();
        assert_eq!(rows.len(), 2);
        for row in rows {
            assert_eq!(row.status.as_str(), status, "{row:?}");
            let error = row.last_error.unwrap_or_default();
            assert!(error.contains(names), "{names}: {error}");
            if status == "failed" {
                assert!(row.message.next_attempt_at > Utc::now(), "a later try is set: {error}");
            }
        }
    }
    assert_eq!(smtp.messages().len(), 2, "only the right login and sender delivered");
}

#[tokio::test]
async fn a_server_that_accepts_and_hangs_is_timed_out_and_the_message_retried() {
    let smtp = SmtpServer::start_with(&["--hang", "ann@"]);
    let t = TestState::mailing(&smtp, |c| c.smtp.timeout_seconds = 1).await;
    common::digests_now(&t.state, &["P-1A", "P-1B"]).await;
    let started = std::time::Instant::now();
    let report = tokio::time::timeout(std::time::Duration::from_secs(30), drain(&t.state))
        .await
        .expect("the sender is not stalled by a silent server")
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!((report.sent, report.retrying), (1, 1), "{report:?}");
    let rows = list_messages(&t.state.db, None, 10).await.unwrap();
    let ann = rows.iter().find(|r| r.message.recipient == "ann@alpha.example").unwrap();
    assert_eq!(ann.status.as_str(), "failed");
    assert!(ann.last_error.as_deref().unwrap().contains("timed out"), "{ann:?}");
    assert_eq!(smtp.messages().len(), 1, "Bob's digest went out");
}

fn reply(token: &str, message_id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Ann Admin <ann@alpha.example>\r\nTo: reply+{token}@reply.tot.example\r\n\
         Subject: Re: your digest\r\nMessage-ID: <{message_id}>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn digest_token(t: &TestState, contact: &str) -> String {
    common::digest_now(&t.state, contact).await;
    common::reply_token_of(&t.state.db, contact).await
}

async fn count(t: &TestState, sql: &str) -> i64 {
    let (n,): (i64,) = cport::store::on_db!(&t.state.db, p => sqlx::query_as(sql).fetch_one(p).await).unwrap();
    n
}

#[tokio::test]
async fn a_reply_whose_processing_fails_at_any_step_leaves_nothing_and_its_retry_acts_once() {
    use cport::channels::inbound::{Disposition, handle};
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    let token = digest_token(&t, "P-1A").await;
    let raw = reply(&token, "r-1@alpha.example", "REJECT V-1 the blue is too dark\r\nNODELIVERY J-1");
    let replies = "SELECT COUNT(*) FROM outbox WHERE kind = 'reply'";
    for point in [
        "inbound:after-command",
        // cport's own answer cannot be written: a temporary failure, never a bounce.
        "render:answer",
        "inbound:after-answer",
        "inbound:after-record",
        "unit:commit",
    ] {
        t.state.faults.arm(point, 1);
        let e = handle(&t.state, &raw, Utc::now()).await.expect_err(point);
        assert!(e.is_temporary(), "{point}: the MTA is told to try again (75), not to bounce: {e}");
        assert_eq!(count(&t, "SELECT COUNT(*) FROM visual_decisions").await, 0, "{point}");
        assert_eq!(count(&t, "SELECT COUNT(*) FROM changes").await, 0, "{point}");
        assert_eq!(count(&t, replies).await, 0, "{point}: no answer queued");
        assert_eq!(count(&t, "SELECT COUNT(*) FROM inbound_messages").await, 0, "{point}");
    }
    // The MTA's retry does the work, once.
    let d = handle(&t.state, &raw, Utc::now()).await.unwrap();
    assert!(matches!(d, Disposition::Processed(_)), "{d:?}");
    assert_eq!(count(&t, "SELECT COUNT(*) FROM visual_decisions").await, 1);
    assert_eq!(count(&t, "SELECT COUNT(*) FROM changes").await, 2, "rejected + no delivery");
    assert_eq!(count(&t, replies).await, 1);
    let again = handle(&t.state, &raw, Utc::now()).await.unwrap();
    assert!(matches!(again, Disposition::Duplicate(_)), "{again:?}");
    assert_eq!(count(&t, "SELECT COUNT(*) FROM changes").await, 2);
    assert_eq!(count(&t, replies).await, 1);
}

#[tokio::test]
async fn a_chat_update_whose_processing_fails_leaves_nothing_and_its_redelivery_acts_once() {
    use cport::channels::chat::{Incoming, Input, handle, handle_update};
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    // Made in the store directly: this state has no chat provider set up to ask one of.
    let now = Utc::now();
    let code = t
        .state
        .db
        .in_transaction(async |tx| cport::actions::chat_link::new_link_code_in(tx, "P-1A", now).await)
        .await
        .unwrap();
    let chat = |input: Input| Incoming {
        channel: cport::model::Channel::Telegram,
        user_id: "501".into(),
        chat_id: "501".into(),
        input,
    };
    handle(&t.state, &chat(Input::Text(format!("/start {code}"))), Utc::now()).await.unwrap();
    // The confirmation's "Yes, approve", as the chat shows it.
    let asked = handle(&t.state, &chat(Input::Button("ap:V-1".into())), Utc::now()).await.unwrap();
    let yes = asked
        .iter()
        .find_map(|r| match r {
            cport::channels::chat::Reply::Send(m) => m.buttons.iter().flatten().find_map(|b| match b {
                cport::messages::Button::Action { label, data } if label == "Yes, approve" => Some(data.clone()),
                _ => None,
            }),
            _ => None,
        })
        .expect("a confirmation");
    let approve = chat(Input::Button(yes));
    for point in ["chat:before-record", "unit:commit"] {
        t.state.faults.arm(point, 1);
        assert!(handle_update(&t.state, &approve, Some("900"), Utc::now()).await.is_err());
        assert_eq!(count(&t, "SELECT COUNT(*) FROM changes").await, 0, "{point}");
        assert_eq!(count(&t, "SELECT COUNT(*) FROM chat_updates").await, 0, "{point}");
    }
    let replies = handle_update(&t.state, &approve, Some("900"), Utc::now()).await.unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(count(&t, "SELECT COUNT(*) FROM changes WHERE kind = 'visual_approved'").await, 1);
    // Delivered again before its answer was recorded as sent (here nothing sends it): told
    // it was done, once, and not run again.
    let again = handle_update(&t.state, &approve, Some("900"), Utc::now()).await.unwrap();
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(matches!(&again[0], cport::channels::chat::Reply::Send(m) if m.title.contains("received and done")));
    assert_eq!(count(&t, "SELECT COUNT(*) FROM changes").await, 1);
    cport::store::chat::update_answered(&t.state.db, cport::model::Channel::Telegram, "900", Utc::now()).await.unwrap();
    let third = handle_update(&t.state, &approve, Some("900"), Utc::now()).await.unwrap();
    assert!(third.is_empty(), "an update answered is not answered again");
    assert_eq!(count(&t, "SELECT COUNT(*) FROM changes").await, 1);
}

#[tokio::test]
async fn a_stopping_sender_hands_back_only_its_own_unsent_rows() {
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    common::digests_now(&t.state, &["P-1A", "P-1B", "P-1V"]).await;
    let now = Utc::now();
    let rows =
        claim(&t.state.db, Take::Lane(ob::Lane::All), 3, "mine", now, now + Duration::seconds(60)).await.unwrap();
    assert_eq!(rows.len(), 3);
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    // A stale token hands back nothing; the holder hands back the two it did not send.
    assert_eq!(ob::release_claim(&t.state.db, "other", &ids, now).await.unwrap(), 0);
    assert_eq!(ob::release_claim(&t.state.db, "mine", &ids[1..], now).await.unwrap(), 2);
    let all = list_messages(&t.state.db, None, 10).await.unwrap();
    for r in &all {
        let want = if r.id == ids[0] { ("sending", 1) } else { ("queued", 0) };
        assert_eq!((r.status.as_str(), r.attempts), want, "{r:?}");
    }
}

/// Several senders draining together stop together: when one fails (its claim refused by
/// the store) the others finish the message in hand and hand the rest back, nothing is left
/// claimed, nothing went twice, and the failure is what the drain returns.
#[tokio::test]
async fn when_one_of_several_senders_fails_the_others_stop_and_hand_back_their_claims() {
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    let ann = cport::store::contacts::get_contact(&t.state.db, "P-1A").await.unwrap();
    let now = Utc::now();
    const MESSAGES: usize = 200;
    for n in 0..MESSAGES {
        let p = cport::actions::mail::login_email(&t.state, &ann, "http://127.0.0.1:9/l/x").unwrap();
        let mut tx = t.state.db.begin().await.unwrap();
        let row = p.queued(Some("P-1A"), cport::model::MessageKind::System, format!("test:{n}"), None, now);
        ob::insert_message(&mut tx, &row, now).await.unwrap().unwrap();
        tx.commit().await.unwrap();
    }
    t.state.faults.arm("outbox:claim", 1);
    let err = cport::outbox::drain_concurrently(&t.state, 2, None).await.expect_err("the failure is returned");
    assert!(err.to_string().contains("outbox:claim"), "{err}");

    let rows = list_messages(&t.state.db, None, 1000).await.unwrap();
    assert_eq!(rows.len(), MESSAGES);
    let sent = rows.iter().filter(|r| r.status.as_str() == "sent").count();
    let delivered = std::fs::read_dir(&t.state.config.email.dir).unwrap().count();
    assert_eq!(sent, delivered, "each delivery marked once, none twice");
    assert!(sent < MESSAGES, "the other sender stopped rather than draining the outbox alone");
    for r in rows.iter().filter(|r| r.status.as_str() != "sent") {
        assert_eq!((r.status.as_str(), r.attempts), ("queued", 0), "handed back untried: {r:?}");
    }
    // What was handed back goes with the next send.
    let report = drain(&t.state).await.unwrap();
    assert_eq!(report.sent, MESSAGES - sent);
}

/// A digest sent to Ann and one to Bob, with content kept `days` days: their outbox ids.
async fn two_sent_digests(days: u32) -> (TestState, i64, i64) {
    let t = TestState::new(|c| c.outbox.sent_content_days = days).await;
    t.load(world()).await;
    common::digests_now(&t.state, &["P-1A", "P-1B"]).await;
    assert_eq!(drain(&t.state).await.unwrap().sent, 2);
    let rows = list_messages(&t.state.db, None, 10).await.unwrap();
    let of = |contact: &str| rows.iter().find(|r| r.message.contact_id.as_deref() == Some(contact)).unwrap().id;
    let (ann, bob) = (of("P-1A"), of("P-1B"));
    (t, ann, bob)
}

/// Makes message `id` as if created and sent `days` days ago, to contacts stored before it.
async fn sent_days_ago(t: &TestState, id: i64, days: i64) {
    let then = Utc::now() - Duration::days(days);
    cport::store::on_db!(&t.state.db, p => sqlx::query("UPDATE outbox SET created_at = $1, sent_at = $1 WHERE id = $2")
        .bind(then).bind(id).execute(p).await.map(|_| ()))
    .unwrap();
    cport::store::on_db!(&t.state.db, p => sqlx::query("UPDATE contacts SET created_at = $1 WHERE created_at > $1")
        .bind(then - Duration::days(1)).execute(p).await.map(|_| ()))
    .unwrap();
}

/// A sent message's content is cleared after `outbox.sent_content_days`, a newer one's is
/// kept; the message itself stays (its key, its reply address), the console says what
/// happened to its content, and a reply to it is still answered.
#[tokio::test]
async fn the_content_of_old_sent_messages_is_cleared_and_the_record_kept() {
    let (t, old, new) = two_sent_digests(30).await;
    sent_days_ago(&t, old, 31).await;

    assert_eq!(cport::digest::scheduler::housekeeping(&t.state, Utc::now()).await, 1);
    assert_eq!(cport::digest::scheduler::housekeeping(&t.state, Utc::now()).await, 0, "once");
    let cleared = ob::get_message(&t.state.db, old).await.unwrap().expect("the message stays");
    assert_eq!((cleared.status.as_str(), cleared.message.payload.as_str()), ("sent", ""));
    let kept = ob::get_message(&t.state.db, new).await.unwrap().unwrap();
    assert!(kept.message.payload.contains("item_keys"), "a newer message keeps its content");
    let shown = cport::outbox::render(&t.state, &cleared, Utc::now()).await.unwrap();
    assert!(matches!(shown, cport::outbox::Rendered::Cleared), "{shown:?}");

    // A reply to the old digest finds its contact and is answered (an approval from a mail
    // this old is refused by age, with a fresh link).
    let token = cleared.message.reply_token.clone().expect("a reply address");
    let raw = reply(&token, "late-1@alpha.example", "APPROVE V-1");
    let d = cport::channels::inbound::handle(&t.state, &raw, Utc::now()).await.unwrap();
    assert!(matches!(d, cport::channels::inbound::Disposition::Processed(_)), "{d:?}");
    assert_eq!(count(&t, "SELECT COUNT(*) FROM visual_decisions").await, 0, "too old to approve from");
    let answer =
        list_messages(&t.state.db, None, 10).await.unwrap().into_iter().find(|r| r.message.kind.as_str() == "reply");
    let answer: cport::messages::EmailPayload =
        serde_json::from_str(&answer.expect("answered").message.payload).unwrap();
    assert!(answer.text.contains("too old to approve"), "{}", answer.text);
}

/// A message that went dead or was dropped holds as much as one that went: its content is
/// cleared the same number of days after, the console and a retry say so, and it is not
/// queued again (there is nothing left to send), alone or with every dead letter.
#[tokio::test]
async fn dead_and_dropped_messages_are_cleared_in_time_and_not_sent_again() {
    let (t, ann, bob) = two_sent_digests(30).await;
    let now = Utc::now();
    for (id, status, days) in [(ann, "dropped", 31), (bob, "dead", 29)] {
        let then = now - Duration::days(days);
        cport::store::on_db!(&t.state.db, p => sqlx::query(
            "UPDATE outbox SET status = $1, created_at = $2, updated_at = $2, sent_at = NULL WHERE id = $3")
            .bind(status).bind(then).bind(id).execute(p).await.map(|_| ()))
        .unwrap();
    }
    let notices = |id: i64| format!("SELECT COUNT(*) FROM item_notices WHERE outbox_id = {id}");
    assert!(count(&t, &notices(ann)).await > 0, "the digest noted what it listed");
    assert_eq!(cport::digest::scheduler::housekeeping(&t.state, now).await, 1, "the dropped one, 31 days on");
    // Its notices go with it: it told no one, and will not be sent now.
    assert_eq!(count(&t, &notices(ann)).await, 0);
    assert!(count(&t, &notices(bob)).await > 0, "the dead one's are kept while it may be queued again");
    let cleared = ob::get_message(&t.state.db, ann).await.unwrap().expect("the message stays");
    assert_eq!((cleared.status.as_str(), cleared.message.payload.as_str()), ("dropped", ""));
    let shown = cport::outbox::render(&t.state, &cleared, now).await.unwrap();
    assert!(matches!(shown, cport::outbox::Rendered::Cleared), "{shown:?}");
    let e = cport::actions::outbox::requeue(&t.state, ann, now).await.unwrap_err();
    assert!(e.to_string().contains("its content was cleared"), "{e}");
    assert_eq!(ob::get_message(&t.state.db, ann).await.unwrap().unwrap().status.as_str(), "dropped");

    // The dead one, two days later: cleared too, and left dead by a retry of every dead one.
    let later = now + Duration::days(2);
    assert_eq!(cport::digest::scheduler::housekeeping(&t.state, later).await, 1);
    assert!(ob::get_message(&t.state.db, bob).await.unwrap().unwrap().message.payload.is_empty());
    assert_eq!(ob::requeue_dead(&t.state.db, &[bob], later).await.unwrap(), (0, 1));
    assert_eq!(ob::get_message(&t.state.db, bob).await.unwrap().unwrap().status.as_str(), "dead");

    // One cleared at the moment it was queued again (PostgreSQL lets the two pass each other)
    // reaches a sender empty: dropped, saying why, never sent blank.
    cport::store::on_db!(&t.state.db, p => sqlx::query("UPDATE outbox SET status = 'queued', next_attempt_at = $1 WHERE id = $2")
        .bind(Utc::now()).bind(bob).execute(p).await.map(|_| ()))
    .unwrap();
    assert_eq!(drain(&t.state).await.unwrap().sent, 0);
    let empty = ob::get_message(&t.state.db, bob).await.unwrap().unwrap();
    assert_eq!(empty.status.as_str(), "dropped");
    assert!(empty.last_error.as_deref().unwrap_or("").contains("its content was cleared"), "{empty:?}");
}

/// Content is never cleared while a link to it may still act: a setting shorter than
/// `digest.link_ttl_days` (14 here) is held to it.
#[tokio::test]
async fn content_is_kept_at_least_as_long_as_a_link_lives() {
    let (t, ann, bob) = two_sent_digests(3).await;
    sent_days_ago(&t, ann, 10).await;
    sent_days_ago(&t, bob, 15).await;
    assert_eq!(cport::digest::scheduler::housekeeping(&t.state, Utc::now()).await, 1, "only the one past 14 days");
    assert!(!ob::get_message(&t.state.db, ann).await.unwrap().unwrap().message.payload.is_empty());
    assert!(ob::get_message(&t.state.db, bob).await.unwrap().unwrap().message.payload.is_empty());
}

/// A single-use link's nonce is kept while any link could still be alive and forgotten after:
/// the used-link ledger does not grow for ever, and a recent one still refuses a replay.
#[tokio::test]
async fn used_link_nonces_are_forgotten_only_after_any_link_has_expired() {
    let t = TestState::new(|_| {}).await;
    let now = Utc::now();
    let long_ago = now - Duration::days(cport::links::LONGEST_LINK_DAYS + 2);
    let recently = now - Duration::days(cport::links::LONGEST_LINK_DAYS - 1);
    assert!(cport::store::ledgers::use_nonce(&t.state.db, "old", long_ago).await.unwrap());
    assert!(cport::store::ledgers::use_nonce(&t.state.db, "recent", recently).await.unwrap());
    cport::digest::scheduler::housekeeping(&t.state, now).await;
    assert!(!cport::store::ledgers::nonce_used(&t.state.db, "old").await.unwrap(), "forgotten");
    assert!(!cport::store::ledgers::use_nonce(&t.state.db, "recent", now).await.unwrap(), "still a replay");
}

/// A server on a loopback port, set up by `adjust` before it runs; stopped by sending on the
/// channel, its task's result said by the handle.
async fn serving(
    adjust: impl FnOnce(&mut cport::app::App),
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let config = common::test_config(dir.path(), common::fresh_database_url(dir.path()).await);
    let mut app = cport::app::App::build(config).await.unwrap();
    adjust(&mut app);
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    (addr, stop, task, dir)
}

/// A client that begins a request and never finishes it (a stalled upload, a slow-loris)
/// does not keep the server from stopping: once shutdown begins, requests in flight have the
/// grace period, and then their connections are closed.
#[tokio::test]
async fn a_request_never_finished_does_not_hold_the_stop() {
    use tokio::io::AsyncWriteExt;
    let (addr, stop, task, _dir) = serving(|app| app.shutdown_grace = std::time::Duration::from_millis(300)).await;
    // A sign-in form whose body never comes: its handler waits for the body.
    let mut held = tokio::net::TcpStream::connect(addr).await.unwrap();
    held.write_all(
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=",
    )
    .await
    .unwrap();
    // A second request on its own connection answers, so the first has been taken in.
    let r = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    stop.send(()).unwrap();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(60), task).await;
    assert!(ended.is_ok(), "the server did not stop while a request was held open");
    ended.unwrap().unwrap().expect("stopped cleanly");
    drop(held);
}

/// A client that opens a connection and never finishes a request's head (a slow-loris) is
/// cut off once `header_read` has passed, and the server answers others meanwhile.
#[tokio::test]
async fn a_request_head_never_finished_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, stop, task, _dir) = serving(|app| app.header_read = std::time::Duration::from_millis(300)).await;
    let mut held = tokio::net::TcpStream::connect(addr).await.unwrap();
    held.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ").await.unwrap();
    let r = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "others are served meanwhile");
    // Bounded: the server closes the connection (with or without a 408) long before this.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), held.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was still open after 30 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    stop.send(()).unwrap();
    task.await.unwrap().expect("stopped cleanly");
}

/// A body that stops coming (a stalled upload, a slow-loris that sent its head) is answered
/// once `header_read` of silence has passed, and its connection let go; a body declared
/// longer than any address takes is refused at once, before it is sent.
#[tokio::test]
async fn a_body_that_stops_coming_is_answered_and_one_too_long_refused_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, stop, task, _dir) = serving(|app| app.header_read = std::time::Duration::from_millis(300)).await;
    let answer_to = |head: &'static [u8]| async move {
        let mut held = tokio::net::TcpStream::connect(addr).await.unwrap();
        held.write_all(head).await.unwrap();
        let mut answer = Vec::new();
        // Bounded: the server answers and closes long before this.
        let read = tokio::time::timeout(std::time::Duration::from_secs(30), held.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the connection was still open after 30 s");
        String::from_utf8_lossy(&answer).into_owned()
    };
    let stalled = answer_to(
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\nConnection: close\r\n\r\nemail=",
    )
    .await;
    assert!(stalled.starts_with("HTTP/1.1 400"), "{stalled}");
    assert!(stalled.contains("body: it stopped coming before its end"), "{stalled}");
    // A broken chunked encoding is said in cport's words too, not the framework's.
    let broken = answer_to(
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n",
    )
    .await;
    assert!(broken.starts_with("HTTP/1.1 400"), "{broken}");
    assert!(broken.contains("body: it could not be read as sent") && !broken.contains("Failed to buffer"), "{broken}");
    let huge = answer_to(
        b"PUT /api/v1/clients HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer x\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    assert!(huge.contains("99999999999 bytes is more than cport takes"), "{huge}");
    stop.send(()).unwrap();
    task.await.unwrap().expect("stopped cleanly");
}

/// Rows come back typed: a state column holding a name cport never writes (a hand edit of
/// the database before its state guards were made) is refused as it is read, naming the state and the value, and the rows
/// beside it still read.
#[tokio::test]
async fn a_state_the_store_should_not_hold_is_named_when_read() {
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    unguarded(&t.state.db, "contacts", "role").await;
    cport::store::on_db!(&t.state.db, p => sqlx::query("UPDATE contacts SET role = 'boss' WHERE id = 'P-1A'")
        .execute(p).await.map(|r| r.rows_affected()))
    .unwrap();
    let err = cport::store::contacts::get_contact(&t.state.db, "P-1A").await.expect_err("an unknown role is refused");
    let text = err.to_string();
    assert!(text.contains("Role") && text.contains("\"boss\"") && text.contains("buyer"), "{text}");
    let bob = cport::store::contacts::get_contact(&t.state.db, "P-1B").await.expect("another contact reads");
    assert_eq!(bob.role, cport::model::Role::Buyer);
}

/// Takes away the state guard of one column, as in a store written before guards existed.
async fn unguarded(db: &cport::store::Db, table: &str, column: &str) {
    let pattern = format!("known_{table}_{column}_%");
    let (find, drop) = match db.engine() {
        "sqlite" => ("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE $1", "DROP TRIGGER"),
        _ => ("SELECT conname::text FROM pg_constraint WHERE conname LIKE $1", "ALTER TABLE {table} DROP CONSTRAINT"),
    };
    let names: Vec<(String,)> =
        cport::store::on_db!(db, p => sqlx::query_as(find).bind(&pattern).fetch_all(p).await).unwrap();
    assert!(!names.is_empty(), "{table}.{column} was guarded");
    for (name,) in names {
        by_hand(db, &format!("{} \"{name}\"", drop.replace("{table}", table))).await.unwrap();
    }
}

/// The error of a statement run by hand on the store (as someone with a SQL shell would).
async fn by_hand(db: &cport::store::Db, sql: &str) -> Result<u64, String> {
    cport::store::on_db!(db, p => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()))
        .map_err(|e| e.to_string())
}

/// A hand edit of the store that writes a state no type knows is refused by the database,
/// naming the column, and changes nothing: the rows stay readable and digests still go.
#[tokio::test]
async fn a_hand_edit_writing_a_state_no_type_knows_is_refused_naming_the_column() {
    use cport::store::guards::GUARDED;
    let app = TestApp::with_world().await;
    let db = &app.db;
    for (table, column) in [
        ("contacts", "role"),
        ("jobs", "status"),
        ("jobs", "delivery_instructions"),
        ("visuals", "status"),
        ("purchase_orders", "status"),
    ] {
        assert!(app.count(table).await > 0, "{table} has rows to edit");
        let err = by_hand(db, &format!("UPDATE {table} SET {column} = 'emperor'")).await.expect_err(table);
        assert!(err.contains(table) && err.contains(column), "{table}.{column}: {err}");
        let n = app.count(&format!("{table} WHERE {column} = 'emperor'")).await;
        assert_eq!(n, 0, "{table}.{column}: nothing written");
    }
    // Every name of each type is taken, in every guarded column that holds rows here.
    for g in GUARDED {
        if app.count(g.table).await == 0 {
            continue;
        }
        for name in g.names {
            let sql = format!("UPDATE {} SET {} = '{name}' WHERE {} IS NOT NULL", g.table, g.column, g.column);
            let mut tx = db.begin().await.unwrap();
            let done = cport::store::on_tx!(&mut tx, c => sqlx::query(&sql).execute(c).await.map(|_| ()));
            assert!(done.is_ok(), "{}.{} = {name}: {done:?}", g.table, g.column);
            tx.rollback().await.unwrap();
        }
    }
    // A new row with an unknown state is refused as well.
    let insert = "INSERT INTO banners (title, body, severity, starts_at, created_by, created_at)
                  VALUES ('t', 'b', 'apocalyptic', '2026-01-01T00:00:00Z', 'sql', '2026-01-01T00:00:00Z')";
    let err = by_hand(db, insert).await.expect_err("a banner of an unknown severity");
    assert!(err.contains("banners") && err.contains("severity"), "{err}");
    let before = app.count("outbox").await;
    common::digest_now(&app.state, "P-1A").await;
    assert!(app.count("outbox").await > before, "the digest pass still reads every contact");
    app.stop().await;
}

/// The guards follow the types' name lists: a list that changes replaces its guard at the
/// next start (no migration), and a start with nothing changed makes nothing again.
#[tokio::test]
async fn a_guard_follows_its_types_names() {
    use cport::store::guards::{GUARDED, Guard, install};
    let app = TestApp::with_world().await;
    let db = &app.db;
    let guards = |table: &str| {
        let sqlite = format!("sqlite_master WHERE type = 'trigger' AND name LIKE 'known_{table}_%'");
        let postgres = format!("pg_constraint WHERE conname LIKE 'known_{table}_%'");
        if db.engine() == "sqlite" { sqlite } else { postgres }
    };
    let each = if db.engine() == "sqlite" { 2 } else { 1 };
    assert_eq!(app.count(&guards("contacts_role")).await, each);
    let roles: &'static [&'static str] = &["admin", "buyer", "finance", "viewer", "third_party", "auditor"];
    install(db, &[Guard { table: "contacts", column: "role", names: roles, bulk: false }]).await.unwrap();
    assert_eq!(app.count(&guards("contacts_role")).await, each, "the old guard was replaced");
    assert_eq!(by_hand(db, "UPDATE contacts SET role = 'auditor' WHERE id = 'P-1V'").await, Ok(1));
    by_hand(db, "UPDATE contacts SET role = 'viewer' WHERE id = 'P-1V'").await.unwrap();
    install(db, GUARDED).await.unwrap();
    install(db, GUARDED).await.unwrap();
    assert_eq!(app.count(&guards("contacts_role")).await, each);
    let all = if db.engine() == "sqlite" {
        "sqlite_master WHERE type = 'trigger' AND name LIKE 'known_%'"
    } else {
        "pg_constraint WHERE conname LIKE 'known_%'"
    };
    let made: usize = GUARDED.iter().map(|g| g.objects(db.engine() == "sqlite").len()).sum();
    assert_eq!(app.count(all).await, made as i64);
    assert!(by_hand(db, "UPDATE contacts SET role = 'auditor' WHERE id = 'P-1V'").await.is_err());
    app.stop().await;
}

/// On PostgreSQL one process runs the scheduler, holding a lock on a connection of its own.
/// When that lock is let go (its task panicked and was restarted), it is free at once for
/// another process: it does not go back to the pool still held.
#[tokio::test]
async fn the_schedulers_lock_is_free_for_another_process_once_dropped() {
    use cport::store::ledgers::try_leader_lock;
    let one = TestState::new(|_| {}).await;
    let two = one.beside(|_| {}).await;
    if matches!(one.state.db, cport::store::Db::Sqlite(_)) {
        // One process per SQLite file: no lock to take, the scheduler always runs.
        assert!(try_leader_lock(&one.state.db).await.is_none());
        return;
    }
    let mut held = try_leader_lock(&one.state.db).await.expect("the first process takes the lock");
    assert!(held.alive().await);
    assert!(try_leader_lock(&two.state.db).await.is_none(), "held by the first");
    drop(held);
    // A pooled connection handed back still holding the lock would keep the second out.
    let mut taken = None;
    for _ in 0..50 {
        taken = try_leader_lock(&two.state.db).await;
        if taken.is_some() {
            break;
        }
        // The closed connection's session ends on the server a moment after the socket closes.
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(taken.is_some(), "the second process takes the lock once the first lets it go");
}

/// A delivered message whose "sent" cannot be written at first (the store stumbles) is
/// marked once the store answers: it is not left to go out again when its claim runs out.
#[tokio::test]
async fn a_sent_mark_the_store_refuses_at_first_is_written_on_a_later_try() {
    let rows = sent_after_refused_marks(300, 2).await;
    let sent: Vec<_> = rows.iter().filter(|r| r.status.as_str() == "sent").collect();
    assert_eq!(sent.len(), 1, "marked sent: {rows:?}");
    assert!(sent[0].provider_id.is_some());
}

/// A store that refuses a delivered message's "sent" for longer than a moment (an import
/// holding SQLite's lock, a failover) is tried again for as long as the sender's claim surely
/// lasts, two thirds of its lease (four seconds of six here: the fifth refusal comes three
/// seconds in): the message is marked, not left to go out again when its claim runs out.
#[tokio::test]
async fn a_sent_mark_is_tried_again_for_as_long_as_the_claim_surely_lasts() {
    let rows = sent_after_refused_marks(6, 5).await;
    assert_eq!(rows.iter().filter(|r| r.status.as_str() == "sent").count(), 1, "marked sent: {rows:?}");
}

/// Ann's digest sent by a sender with a claim of `lease` seconds while the store refuses its
/// "sent" mark `refusals` times; the batch goes on and gives a delivery. Gives the rows.
async fn sent_after_refused_marks(lease: u64, refusals: u32) -> Vec<cport::store::outbox::OutboxRow> {
    let t = TestState::new(|c| c.outbox.lease_seconds = lease).await;
    t.load(world()).await;
    common::digest_now(&t.state, "P-1A").await;
    t.state.faults.arm("outbox:mark-sent", refusals);
    let out = cport::outbox::dispatch_batch_at(&t.state, Utc::now(), 1).await.expect("the batch goes on");
    assert_eq!(out, vec![cport::outbox::Outcome::Sent]);
    list_messages(&t.state.db, None, 10).await.unwrap()
}

/// A sender whose "sent" mark cannot be written at all (the store fails through every try
/// for as long as its claim surely lasts, two seconds of a three-second lease) does not
/// deliver its next message, so one delivery at most is left unmarked, to go again when its
/// claim runs out. The one held back and the rest of the batch are handed back at once,
/// their attempt not counted.
#[tokio::test]
async fn a_sent_mark_that_cannot_be_written_holds_back_the_next_delivery() {
    let t = TestState::new(|c| c.outbox.lease_seconds = 3).await;
    t.load(world()).await;
    common::digests_now(&t.state, &["P-1A", "P-1B", "P-2A"]).await;
    // The marks' group commit fails (its store is closed), and so does each sender's own mark.
    let gone =
        cport::store::Db::connect(&format!("sqlite://{}", t.dir.path().join("gone.db").display())).await.unwrap();
    gone.close().await;
    let crew = cport::outbox::Crew { stop: None, marker: Some(cport::outbox::Marker::start(gone)) };
    t.state.faults.arm("outbox:mark-sent", 6);
    let err = cport::outbox::drain_with(&t.state, &crew).await.expect_err("the mark's failure is reported");
    assert!(err.to_string().contains("outbox:mark-sent"), "{err}");
    let delivered = std::fs::read_dir(&t.state.config.email.dir).unwrap().count();
    assert_eq!(delivered, 1, "the second message was not handed over");
    let rows: Vec<_> = list_messages(&t.state.db, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.status.as_str().to_string(), r.attempts, r.last_error.unwrap_or_default()))
        .collect();
    let back = rows.iter().filter(|r| **r == ("queued".to_string(), 0, String::new())).count();
    assert_eq!(back, 2, "the one held back and the one not begun are handed back untried: {rows:?}");
    assert!(
        rows.contains(&("sending".to_string(), 1, String::new())),
        "the delivered one waits for its claim: {rows:?}"
    );
}

/// A state whose digests are hourly, so a scheduled pass always finds a period just begun.
async fn hourly_digests() -> TestState {
    TestState::new(|c| {
        c.digest.schedule = "0 0 * * * *".into();
        c.digest.catch_up_hours = 1;
    })
    .await
}

/// A scheduled pass goes on past a contact whose digest the store fails on: that one is
/// counted as failed (and tried again next tick), the others get theirs. A pass asked for
/// one contact reports the failure instead.
#[tokio::test]
async fn a_contact_whose_digest_fails_is_passed_over_and_the_others_get_theirs() {
    use cport::digest::scheduler::{Trigger, run_pass};
    let t = hourly_digests().await;
    t.load(world()).await;
    t.known_for_a_week().await;
    t.state.faults.arm("digest:queue", 1);
    let now = Utc::now();
    let r = run_pass(&t.state, now, None, Trigger::Scheduled).await.expect("the pass goes on");
    assert_eq!((r.failed, r.queued), (1, 4), "{r:?}");
    let again = run_pass(&t.state, now, None, Trigger::Scheduled).await.unwrap();
    assert_eq!((again.failed, again.queued), (0, 1), "the one passed over is tried again: {again:?}");
    t.state.faults.arm("digest:queue", 1);
    let one = run_pass(&t.state, now, Some("P-1A"), Trigger::Manual { force: true }).await;
    assert!(one.is_err_and(|e| e.to_string().contains("digest:queue")));
}

/// A client whose rows the store cannot read (a hand edit past the guards) fails only its
/// own contacts: a contact whose client was read in the same batch still gets its digest.
#[tokio::test]
async fn a_client_whose_items_cannot_be_read_fails_only_its_own_contacts() {
    use cport::digest::scheduler::{Trigger, run_pass};
    use cport::store::guards::GUARDED;
    let t = hourly_digests().await;
    let mut w = world();
    w["purchase_orders"].as_array_mut().unwrap().push(json!(
        {"id": "PO-9", "client_id": "C-2", "placed_by": "Reseller R", "third_party": true, "status": "open",
         "date_ordered": "2026-11-01", "tot_ref": "T9", "category": "Garments", "type": "Third party", "supplier": "S",
         "lines": [{"status": "open", "sku": "BLK-9", "description": "Bag", "ordered": 10, "received": 0}]}
    ));
    t.load(w).await;
    let db = &t.state.db;
    let sqlite = matches!(db, cport::store::Db::Sqlite(_));
    let guard = GUARDED.iter().find(|g| g.table == "purchase_orders" && g.column == "status").unwrap();
    for name in guard.objects(sqlite) {
        let drop = if sqlite {
            format!("DROP TRIGGER {name}")
        } else {
            format!("ALTER TABLE purchase_orders DROP CONSTRAINT {name}")
        };
        by_hand(db, &drop).await.unwrap();
    }
    assert_eq!(by_hand(db, "UPDATE purchase_orders SET status = 'mislaid' WHERE id = 'PO-9'").await, Ok(1));
    t.known_for_a_week().await;
    let r = run_pass(&t.state, Utc::now(), None, Trigger::Scheduled).await.expect("the pass goes on");
    assert_eq!((r.failed, r.queued), (1, 4), "Beta's one contact fails, Alpha's four get theirs: {r:?}");
}

/// Two scanners adding to one held alert at once (two processes on PostgreSQL): the second
/// reads the alert only once the first has written to it, so the first one's items stay in
/// it. (On SQLite a write transaction already keeps every other writer out.)
#[tokio::test]
async fn a_held_alert_is_added_to_by_one_scanner_at_a_time() {
    use cport::model::{MessageKind, Outlet};
    use cport::store::outbox::{NewMessage, find_held_alerts, insert_message, update_queued};
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    let db = t.state.db.clone();
    let cport::store::Db::Postgres(pool) = &db else { return };
    let now = Utc::now();
    let held = |items: &str| format!(r#"{{"items":[{items}],"message_id":"<held@reply.tot.example>"}}"#);
    let mut tx = db.begin().await.unwrap();
    let new = NewMessage {
        contact_id: Some("P-1A".into()),
        channel: Outlet::Email,
        kind: MessageKind::Alert,
        idem_key: "alert:P-1A:email:held".into(),
        reply_token: None,
        recipient: "ann@alpha.example".into(),
        subject: "One thing".into(),
        payload: held(r#""VA:V-1""#),
        next_attempt_at: now + Duration::hours(1),
    };
    insert_message(&mut tx, &new, now).await.unwrap().expect("a new row");
    tx.commit().await.unwrap();

    let mut first = db.begin().await.unwrap();
    let row = find_held_alerts(&mut first, "P-1A", Outlet::Email, now)
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("the held alert");
    let second = tokio::spawn({
        let db = db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            let row = find_held_alerts(&mut tx, "P-1A", Outlet::Email, now).await.unwrap().into_iter().next();
            tx.rollback().await.unwrap();
            row.map(|r| r.message.payload)
        }
    });
    let waits = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let mut waiting = false;
    for _ in 0..5_000 {
        if second.is_finished() {
            break;
        }
        let n: i64 = sqlx::query_scalar(waits).fetch_one(pool).await.unwrap();
        if n > 0 {
            waiting = true;
            break;
        }
    }
    assert!(waiting, "the second scanner waits for the first one's row");
    assert!(update_queued(&mut first, row.id, "2 new things", &held(r#""VA:V-1","DI:J-1""#), now).await.unwrap());
    first.commit().await.unwrap();
    let seen = second.await.unwrap().expect("the alert is still held");
    assert!(seen.contains("DI:J-1"), "the second reads what the first wrote: {seen}");
}

/// A fresh SQLite store, migrated, in a folder of its own: the folder, its URL, the store.
async fn migrated_sqlite() -> (tempfile::TempDir, String, cport::store::Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cport.db").display());
    let db = cport::store::Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    (dir, url, db)
}

/// A digest pass that waits on something that never answers (injected: it waits for ever) is
/// cut off once it has run `stalled_pass_seconds`, said meanwhile by `/healthz`, and its task
/// restarted: the scheduler goes on rather than waiting unsaid for ever.
#[tokio::test]
async fn a_pass_that_stalls_is_cut_off_and_its_task_restarted() {
    let app = TestApp::spawn_with(|c| {
        c.digest.tick_seconds = 1;
        c.stalled_pass_seconds = 1;
    })
    .await;
    assert_eq!(health(&app).await.0, 200);
    app.state.faults.arm("digest:stall", 1);
    let body = health_becomes(&app, 503, 15).await;
    let said = body.to_string();
    assert!(said.contains("digest passes is stalled") || said.contains("a digest pass stalled"), "{body}");
    let body = health_becomes(&app, 200, 15).await;
    let t = body["tasks"].as_array().unwrap().iter().find(|t| t["task"] == "scheduler").unwrap().clone();
    assert_eq!((t["state"].as_str(), t["restarts"].as_u64()), (Some("running"), Some(1)), "{body}");
    assert!(app.text("/metrics").await.contains("cport_pass_stalls_total{pass=\"digest\"} 1"));
    app.stop().await;
}

/// The same for real on PostgreSQL, which waits for a lock without end unless told: a table
/// locked elsewhere (a migration, a `VACUUM FULL`, a session left open) holds the alert scan
/// and the digest pass; each is cut off, said, and runs again once the lock goes.
#[tokio::test]
async fn passes_held_by_a_lock_elsewhere_are_cut_off_and_run_again_once_it_goes() {
    use sqlx::{Connection, Executor};
    if common::engine_name() != "postgres" {
        return; // SQLite's lock waits end with its busy time-out, a failed pass said as such.
    }
    let app = TestApp::spawn_with(|c| {
        c.digest.tick_seconds = 1;
        c.alerts.scan_seconds = 1;
        c.stalled_pass_seconds = 1;
    })
    .await;
    common::load_world(&app).await;
    assert_eq!(health(&app).await.0, 200);
    let mut holder = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
    holder.execute("BEGIN; LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let body = health_becomes(&app, 503, 20).await;
    assert!(body.to_string().contains("stalled"), "{body}");
    // Said stalled once it runs past its time; cut off at the supervisor's next look (each
    // second). The lock is held until then: let go sooner, the pass would just end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let metrics = loop {
        let metrics = app.text("/metrics").await;
        if metrics.contains("cport_pass_stalls_total{pass=") || std::time::Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    holder.execute("ROLLBACK").await.unwrap();
    assert!(metrics.contains("cport_pass_stalls_total{pass="), "{metrics}");
    // Once the lock is gone, the restarted tasks' passes end: nothing is stalled any more.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, body) = health(&app).await;
        if !body.to_string().contains("stalled")
            && body["tasks"].as_array().unwrap().iter().all(|t| t["state"] != "down")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still stalled: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    holder.close().await.unwrap();
    app.stop().await;
}

/// A store SQLite can only read (a file or folder the user cport runs as may not write,
/// opened read-only without a word) stops start-up, saying so: served, every pass failed
/// while `/healthz` said ok.
#[tokio::test]
async fn a_store_that_takes_no_writes_stops_start_up_saying_so() {
    let (dir, url, db) = migrated_sqlite().await;
    db.close().await;
    let read_only = cport::store::Db::connect(&format!("{url}?mode=ro")).await.unwrap();
    let mut config = common::test_config(dir.path(), url);
    config.listen = "127.0.0.1:0".into();
    let Err(e) = cport::App::build_with(config, read_only).await else { panic!("started on a read-only store") };
    let e = e.to_string();
    assert!(e.contains("the store takes no writes") && e.contains("readonly"), "{e}");
}

/// A `data_dir` cport cannot write (here: a folder below a file) stops start-up naming the
/// key, rather than each upload and mail file failing later; the same for the `file`
/// transport's own folder, `email.dir`, where every email would have failed one by one.
#[tokio::test]
async fn a_data_or_mail_folder_that_cannot_be_written_stops_start_up_naming_it() {
    for key in ["data_dir", "email.dir"] {
        let (dir, url, db) = migrated_sqlite().await;
        std::fs::write(dir.path().join("a-file"), b"").unwrap();
        let mut config = common::test_config(dir.path(), url);
        config.listen = "127.0.0.1:0".into();
        config.email.transport = cport::config::Transport::File;
        let below_a_file = dir.path().join("a-file").join("folder");
        match key {
            "data_dir" => config.data_dir = below_a_file,
            _ => config.email.dir = below_a_file,
        }
        let Err(e) = cport::App::build_with(config, db).await else { panic!("started without {key}") };
        let e = e.to_string();
        assert!(e.starts_with(&format!("{key}: cannot write to")) && e.contains("a-file"), "{e}");
    }
}

/// A write that waited out another writer's lock (SQLite's "database is locked") is the
/// store being busy, which callers answer with "try again later" (503), not an internal error.
#[tokio::test]
async fn a_write_that_meets_a_held_lock_is_busy_not_an_internal_error() {
    use sqlx::{ConnectOptions, Connection, Executor};
    if common::engine_name() != "sqlite" {
        return; // PostgreSQL's lock time-outs are mapped alike; a held SQLite lock is the one to stage.
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("locked.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(true)
        .busy_timeout(std::time::Duration::ZERO);
    let mut holder = opts.connect().await.unwrap();
    holder.execute("CREATE TABLE t (x INTEGER)").await.unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    holder.execute("INSERT INTO t VALUES (1)").await.unwrap();
    let mut other = opts.connect().await.unwrap();
    let e = other.execute("INSERT INTO t VALUES (2)").await.expect_err("the lock is held");
    let e = cport::store::StoreError::from(e);
    assert!(e.is_unavailable(), "{e:?}");
    assert_eq!(cport::web::HttpError::from(e).status().as_u16(), 503);
    holder.execute("ROLLBACK").await.unwrap();
    let _ = (holder.close().await, other.close().await);
}

/// Writers waiting for SQLite's one write lock leave the pool's connections to others: the
/// lock's holder (an inbound message's unit between two commands) still reads on the pool,
/// and every writer goes once it commits. A waiting writer once held a connection, so more of
/// them than the pool has stalled the holder's next read until they gave up as busy, 10 s
/// later (a dozen visuals approved at once met the alert scanner that way).
#[tokio::test]
async fn writers_waiting_for_the_lock_leave_the_pool_to_its_holder() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const WRITERS: usize = 24;
    let t = TestState::new(|_| {}).await;
    let db = t.state.db.clone();
    let mut holder = db.begin().await.unwrap();
    cport::execute!(&mut holder => "INSERT INTO used_nonces (nonce, used_at) VALUES ('held', $1)", Utc::now()).unwrap();
    let started = std::sync::Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let (db, started) = (db.clone(), started.clone());
            tokio::spawn(async move {
                let nonce = format!("w{n}");
                started.fetch_add(1, Ordering::SeqCst);
                // Half in a transaction of their own, half as one statement.
                if n % 2 == 0 {
                    db.in_transaction(async |tx| {
                        cport::execute!(tx => "INSERT INTO used_nonces (nonce, used_at) VALUES ($1, $2)", &nonce, Utc::now())
                    })
                    .await
                } else {
                    cport::execute!(&db => "INSERT INTO used_nonces (nonce, used_at) VALUES ($1, $2)", &nonce, Utc::now())
                }
            })
        })
        .collect();
    for _ in 0..10_000 {
        if started.load(Ordering::SeqCst) == WRITERS {
            break;
        }
        tokio::task::yield_now().await;
    }
    // The holder reads on the pool for a while as the writers queue up, then commits.
    let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
    let mut reads = 0;
    while std::time::Instant::now() < until {
        cport::store::ledgers::last_digest_period(&db, "P-1A").await.expect("the holder reads on the pool");
        reads += 1;
        tokio::task::yield_now().await;
    }
    holder.commit().await.unwrap();
    for (n, w) in writers.into_iter().enumerate() {
        w.await.unwrap().unwrap_or_else(|e| panic!("writer {n} was refused: {e}"));
    }
    assert_eq!(count(&t, "SELECT COUNT(*) FROM used_nonces").await, WRITERS as i64 + 1, "after {reads} reads");
}

/// Inbound messages' units in transactions at once leave the pool room for their reads: at
/// most half the pool's connections hold a unit's transaction, the next unit waits its turn,
/// and every one of them reads on the pool (as an answer after an approval does) and commits.
/// Without the turns, as many units as the pool has connections held every one of them on
/// PostgreSQL, each waiting for one more to read with until the pool gave up on it.
#[tokio::test]
async fn units_in_transactions_at_once_still_find_a_connection_to_read_with() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let t = TestState::new(|_| {}).await;
    let services: &cport::services::Services = &t.state;
    let at_once = services.units.available_permits();
    assert_eq!(at_once, services.db.max_connections() as usize / 2);
    let (inside, most) = (std::sync::Arc::new(AtomicUsize::new(0)), std::sync::Arc::new(AtomicUsize::new(0)));
    let units: Vec<_> = (0..services.db.max_connections() as usize + at_once)
        .map(|n| {
            let (s, inside, most) = (services.clone(), inside.clone(), most.clone());
            tokio::spawn(async move {
                let mut unit = cport::actions::Unit::new(&s);
                let nonce = format!("u{n}");
                cport::execute!(unit.tx().await? => "INSERT INTO used_nonces (nonce, used_at) VALUES ($1, $2)", &nonce, Utc::now())?;
                most.fetch_max(inside.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                for _ in 0..20 {
                    tokio::task::yield_now().await;
                }
                cport::store::ledgers::last_digest_period(&s.db, "P-1A").await?;
                inside.fetch_sub(1, Ordering::SeqCst);
                unit.commit().await
            })
        })
        .collect();
    let total = units.len();
    for (n, u) in units.into_iter().enumerate() {
        u.await.unwrap().unwrap_or_else(|e| panic!("unit {n} failed: {e}"));
    }
    assert!(most.load(Ordering::SeqCst) <= at_once, "{} in transactions at once", most.load(Ordering::SeqCst));
    assert_eq!(count(&t, "SELECT COUNT(*) FROM used_nonces").await, total as i64);
}

/// TOT's webhook receiver taking events and never answering holds up no client's email: the
/// change events have a sender of their own, even with one sender of messages.
#[tokio::test]
async fn a_webhook_receiver_that_hangs_holds_up_no_clients_email() {
    let smtp = SmtpServer::start();
    // It takes connections (the system's backlog does) and never reads or answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", hung.local_addr().unwrap());
    let t = TestState::mailing(&smtp, |c| {
        c.webhook.url = url.clone();
        c.webhook.secret = cport::config::Secret::new("webhook-secret-0123456789");
        c.outbox.workers = 1;
    })
    .await;
    let now = Utc::now();
    let mut tx = t.state.db.begin().await.unwrap();
    for seq in 0..3 {
        let event = ob::NewMessage {
            contact_id: None,
            channel: cport::model::Outlet::Webhook,
            kind: cport::model::MessageKind::Change,
            idem_key: format!("change:{seq}"),
            reply_token: None,
            recipient: url.clone(),
            subject: "visual_approved".into(),
            payload: "{}".into(),
            next_attempt_at: now - Duration::seconds(60),
        };
        ob::insert_message(&mut tx, &event, now).await.unwrap();
    }
    tx.commit().await.unwrap();
    // The digest is queued after the events, and due after them.
    common::digests_now(&t.state, &["P-1A"]).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let state = t.state.clone();
    let senders = tokio::spawn(async move { cport::outbox::drain_concurrently(&state, 1, Some(stopped)).await });
    // The webhook's client gives up after 15 s an event: in line behind three of them, the
    // digest would wait 45 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while smtp.messages().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the digest waited behind the hung webhook");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let rows = list_messages(&t.state.db, None, 10).await.unwrap();
    let events: Vec<_> = rows.iter().filter(|r| r.message.channel.as_str() == "webhook").collect();
    assert!(events.iter().all(|r| r.status.as_str() != "sent"), "the receiver took none: {events:?}");
    // The receiver goes away (its connections are reset) and the senders stop.
    drop(hung);
    stop.send_replace(true);
    let report = tokio::time::timeout(std::time::Duration::from_secs(30), senders).await.unwrap().unwrap().unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
}

/// A server that takes longer to answer the end of data than `smtp.timeout_seconds` (it
/// checks the whole message first, as a relay's virus scan does) is waited for: giving up
/// would send the message again, once the server had taken it.
#[tokio::test]
async fn a_server_slow_to_take_a_message_is_waited_for_not_sent_it_twice() {
    let smtp = SmtpServer::start_with(&["--delay", "2"]);
    let t = TestState::mailing(&smtp, |c| c.smtp.timeout_seconds = 1).await;
    common::digests_now(&t.state, &["P-1A"]).await;
    let d = drain(&t.state).await.unwrap();
    assert_eq!((d.sent, d.retrying), (1, 0), "{d:?}");
    assert_eq!(smtp.messages().len(), 1, "delivered once");
}

/// `smtp.tls = "tls"` against a server that speaks plain SMTP first: the message waits for a
/// later try, and its error names the setting rather than only TLS's words.
#[tokio::test]
async fn a_tls_setting_the_server_does_not_speak_is_named() {
    let smtp = SmtpServer::start();
    let t = TestState::mailing(&smtp, |c| c.smtp.tls = cport::config::Tls::Tls).await;
    common::digests_now(&t.state, &["P-1A"]).await;
    let d = drain(&t.state).await.unwrap();
    assert_eq!((d.sent, d.retrying), (0, 1), "{d:?}");
    let row = list_messages(&t.state.db, None, 1).await.unwrap().remove(0);
    let error = row.last_error.unwrap_or_default();
    assert!(error.contains("smtp.tls"), "{error}");
}

/// cport is built with TLS for PostgreSQL (a managed database asks for it): a URL with
/// `sslmode=require` is put to the server, and the test server, which offers no TLS, is
/// refused for that in sqlx's words; built without TLS, sqlx refused before asking, and a
/// managed database could not be used at all. PostgreSQL only.
#[tokio::test]
async fn postgres_tls_is_asked_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path()).await;
    if !url.starts_with("postgres") {
        return;
    }
    let Err(e) = cport::store::Db::connect(&format!("{url}?sslmode=require")).await else {
        panic!("the test server offers no TLS, so a connection that requires it is refused");
    };
    let said = e.to_string();
    assert!(said.contains("server does not support TLS") && !said.contains("without TLS support"), "{said}");
}

/// A store that cannot be reached is described in its own words (the health check logs them
/// beside the pool's "timed out"); one that can be is not.
#[tokio::test]
async fn why_a_store_cannot_be_reached_is_told_in_its_own_words() {
    let t = TestState::new(|_| {}).await;
    assert_eq!(t.state.db.why_unreachable().await, None, "a new connection is made");
    // A SQLite store whose folder went away.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("store");
    std::fs::create_dir(&folder).unwrap();
    let url = format!("sqlite://{}", folder.join("cport.db").display());
    let db = cport::store::Db::connect(&url).await.unwrap();
    std::fs::rename(&folder, dir.path().join("moved")).unwrap();
    let why = db.why_unreachable().await.expect("no connection can be made");
    assert!(why.contains("unable to open database file"), "{why}");
}
