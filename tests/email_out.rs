//! Digests, alerts and banners delivered to a real SMTP server through the outbox.

mod common;

use chrono::{Duration, Timelike, Utc};
use common::{SmtpServer, TestState, smtp_config, world};
use cport::actions::banners::{BannerInput, Retraction};
use cport::channels::email::{Built, Mailer};
use cport::digest::scheduler::{Trigger, run_pass};
use cport::outbox::drain;
use cport::store::outbox::list_messages;
use mail_parser::MessageParser;
use serde_json::json;

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    MessageParser::default().parse(raw).expect("a parsable message")
}

/// A store holding the test world (changed by `edit` first), mailing to a fresh SMTP server.
async fn mailing_world(edit: impl FnOnce(&mut serde_json::Value)) -> (SmtpServer, TestState) {
    mailing_world_with(|_| {}, edit).await
}

/// [`mailing_world`] with its configuration changed by `configure`.
async fn mailing_world_with(
    configure: impl FnOnce(&mut cport::Config),
    edit: impl FnOnce(&mut serde_json::Value),
) -> (SmtpServer, TestState) {
    let smtp = SmtpServer::start();
    let t = TestState::new(|c| {
        smtp_config(c, smtp.port);
        configure(c);
    })
    .await;
    let mut w = world();
    edit(&mut w);
    t.load(w).await;
    (smtp, t)
}

/// cport names itself in EHLO as `smtp.helo_name` says: a relay may refuse a bare host name,
/// which is all a container has.
#[tokio::test]
async fn the_greeting_names_the_configured_host() {
    let (smtp, t) = mailing_world_with(|c| c.smtp.helo_name = "mail.tot.example".into(), |_| {}).await;
    common::digest_now(&t.state, "P-1A").await;
    assert_eq!(drain(&t.state).await.unwrap().sent, 1);
    assert_eq!(smtp.messages()[0].1["helo"], "mail.tot.example");
}

#[tokio::test]
async fn a_digest_arrives_with_both_parts_the_headers_and_signed_links() {
    let (smtp, t) = mailing_world(|_| ()).await;
    let now = Utc::now();
    let r = run_pass(&t.state, now, Some("P-1A"), Trigger::Manual { force: false }).await.unwrap();
    assert_eq!(r.queued, 1);
    assert_eq!(drain(&t.state).await.unwrap().sent, 1);

    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 1);
    let (raw, envelope) = &msgs[0];
    let m = parse(raw);
    assert_eq!(envelope["rcpt_tos"], json!(["ann@alpha.example"]));
    let text = m.body_text(0).expect("plain-text part");
    let html = m.body_html(0).expect("HTML part");
    for (part, body) in [("text", &text), ("html", &html)] {
        for want in ["V-1", "APPROVE V-1", "NODELIVERY J-1", "Tees", "Logo"] {
            assert!(body.contains(want), "{part} part lacks `{want}`");
        }
        // One job's artwork is asked for: a file sent in reply is taken as it, and it says so.
        assert!(body.to_lowercase().contains("or reply to this email with the artwork attached"), "{part}: {body}");
    }
    assert!(m.message_id().is_some_and(|id| id.ends_with("@reply.tot.example")));
    assert!(m.date().is_some());
    assert_eq!(m.header_raw("Auto-Submitted").map(str::trim), Some("auto-generated"));
    // A digest unsubscribes in one click (RFC 8058): its own signed address, and the POST
    // header a mail client needs to use it.
    assert!(
        m.header_raw("List-Unsubscribe").is_some_and(|v| v.contains("/unsubscribe/")
            && v.contains("<mailto:reply+")
            && v.contains("?subject=unsubscribe>")),
        "{:?}",
        m.header_raw("List-Unsubscribe")
    );
    assert_eq!(m.header_raw("List-Unsubscribe-Post").map(str::trim), Some("List-Unsubscribe=One-Click"));
    let reply_to = m.reply_to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap().to_string();
    let token = reply_to.strip_prefix("reply+").and_then(|r| r.strip_suffix("@reply.tot.example")).unwrap();
    assert!(t.state.signer.check_reply_token(token).is_some(), "reply token is signed");
    // The bounce address is the message's own, but not the reply token under another prefix.
    let bounce = t.state.signer.bounce_token(token);
    assert_ne!(bounce, token);
    assert_eq!(envelope["mail_from"], json!(format!("bounce+{bounce}@reply.tot.example")), "VERP return path");
    assert!(html.contains(&format!("mailto:reply+{token}@reply.tot.example?subject=")), "Approve button opens a reply");
    assert!(html.contains("body=APPROVE%20V%2D1"), "the reply is prefilled with the command");

    // Every link is signed for this contact and the page of its item.
    let links: Vec<&str> = text.split_whitespace().filter(|w| w.contains("/l/")).collect();
    assert!(links.len() >= 5, "{links:?}");
    let subjects: Vec<String> = links
        .iter()
        .map(|l| {
            let token = l.rsplit("/l/").next().unwrap();
            let claims = t.state.signer.verify(token, now).expect("valid link");
            assert_eq!(claims.contact_id, "P-1A");
            claims.subject
        })
        .collect();
    assert!(subjects.contains(&"/visuals/V-1".to_string()), "{subjects:?}");
    assert!(subjects.contains(&"/jobs/J-1/delivery".to_string()), "{subjects:?}");
}

/// An item whose id no command can name as written (the sync API takes `/`, `.` and small
/// letters; commands read `V-1001`-shaped ids in capitals) is offered by its portal link
/// alone: the mail never asks for a reply that would be refused.
#[tokio::test]
async fn items_whose_ids_no_command_can_name_offer_their_link_not_a_command() {
    let (smtp, t) = mailing_world(|w| {
        w["jobs"].as_array_mut().unwrap().push(json!(
            {"id": "j-lower9", "client_id": "C-1", "name": "Lower", "status": "in_production", "date_required": "2026-12-02",
             "printed_garments": [{"description": "Tee", "expected_qty": 5}]}));
        w["visuals"].as_array_mut().unwrap().push(json!(
            {"id": "V/77", "client_id": "C-1", "job_id": "J-1", "design_id": "DS-1", "category": "Colour visual",
             "designer": "Des", "status": "awaiting_approval", "main_image": "/media/v77.svg"}));
    })
    .await;
    let now = Utc::now();
    run_pass(&t.state, now, Some("P-1A"), Trigger::Manual { force: false }).await.unwrap();
    assert_eq!(drain(&t.state).await.unwrap().sent, 1);
    let msgs = smtp.messages();
    let m = parse(&msgs[0].0);
    let text = m.body_text(0).unwrap();
    let html = m.body_html(0).unwrap();
    for (part, body) in [("text", &text), ("html", &html)] {
        // The command-shaped ones keep their commands beside the others.
        assert!(body.contains("APPROVE V-1") && body.contains("NODELIVERY J-1"), "{part}: {body}");
        for never in ["APPROVE V/77", "REJECT V/77", "NODELIVERY j-lower9", "NODELIVERY J-LOWER9"] {
            assert!(!body.contains(never), "{part} offers `{never}`: {body}");
        }
    }
    assert!(!html.contains("body=APPROVE%20V%2F77"), "no Approve button for V/77");
    // Each still has its signed link to its page.
    let subjects: Vec<String> = text
        .split_whitespace()
        .filter(|w| w.contains("/l/"))
        .map(|l| t.state.signer.verify(l.rsplit("/l/").next().unwrap(), now).unwrap().subject)
        .collect();
    assert!(subjects.contains(&"/visuals/V%2F77".to_string()), "{subjects:?}");
    assert!(subjects.contains(&"/jobs/j-lower9/delivery".to_string()), "{subjects:?}");
}

/// A message's footer offers only commands the contact's role may send: finance is not told
/// to ask for JOBS, which it would be refused.
#[tokio::test]
async fn the_footer_offers_the_commands_of_the_contacts_role() {
    let (smtp, t) = mailing_world(|_| ()).await;
    let now = Utc::now();
    for contact in ["P-1A", "P-1F"] {
        run_pass(&t.state, now, Some(contact), Trigger::Manual { force: false }).await.unwrap();
    }
    assert_eq!(drain(&t.state).await.unwrap().sent, 2);
    let footer = |to: &str| {
        let msgs = smtp.messages();
        let (raw, _) = msgs.iter().find(|(_, e)| e["rcpt_tos"][0] == to).expect("a digest").clone();
        let m = parse(&raw);
        (m.body_text(0).unwrap().into_owned(), m.body_html(0).unwrap().into_owned())
    };
    let (text, html) = footer("ann@alpha.example");
    assert!(text.contains("one per line: ITEMS, JOBS, TRACK <delivery>, HELP."), "{text}");
    assert!(html.contains("<b>ITEMS</b>, <b>JOBS</b>, <b>TRACK &lt;delivery&gt;</b> or <b>HELP</b>."), "{html}");
    let (text, html) = footer("fay@alpha.example");
    assert!(text.contains("one per line: ITEMS, INVOICES, BALANCE, HELP."), "{text}");
    assert!(html.contains("<b>ITEMS</b>, <b>INVOICES</b>, <b>BALANCE</b> or <b>HELP</b>."), "{html}");
}

#[tokio::test]
async fn a_4xx_is_retried_with_backoff_and_then_delivered() {
    let (smtp, t) = mailing_world(|w| w["contacts"][0]["email"] = json!("tempfail@alpha.example")).await;
    common::digest_now(&t.state, "P-1A").await;
    let before = Utc::now();
    let d = drain(&t.state).await.unwrap();
    assert_eq!((d.sent, d.retrying), (0, 1));
    let row = list_messages(&t.state.db, None, 1).await.unwrap().remove(0);
    assert_eq!(row.status.as_str(), "failed");
    assert!(row.last_error.as_deref().unwrap().contains("451"), "{:?}", row.last_error);
    let wait = row.message.next_attempt_at - before;
    assert!(wait >= Duration::seconds(23) && wait <= Duration::seconds(37), "first retry after ~30 s, got {wait}");
    assert_eq!(drain(&t.state).await.unwrap().sent, 0, "not before its time");

    // Time passes.
    time_passes(&t.state.db, "").await;
    assert_eq!(drain(&t.state).await.unwrap().sent, 1);
    let row = list_messages(&t.state.db, None, 1).await.unwrap().remove(0);
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 2));
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn a_5xx_goes_dead_with_the_servers_words() {
    let (smtp, t) = mailing_world(|w| w["contacts"][0]["email"] = json!("reject@alpha.example")).await;
    common::digest_now(&t.state, "P-1A").await;
    let d = drain(&t.state).await.unwrap();
    assert_eq!(d.dead, 1);
    let row = list_messages(&t.state.db, Some("dead"), 1).await.unwrap().remove(0);
    let err = row.last_error.unwrap();
    assert!(err.contains("550") && err.contains("no such user here"), "{err}");
    assert!(smtp.messages().is_empty());

    // The address itself was refused (5.1.1): a hard bounce, as a delivery report's, so the
    // contact's email is suspended and staff see why.
    let (reason,): (Option<String>,) = cport::store::on_db!(&t.state.db, p => sqlx::query_as(
        "SELECT email_suspended_reason FROM contact_settings WHERE contact_id = 'P-1A'").fetch_one(p).await)
    .unwrap();
    assert!(reason.as_deref().is_some_and(|r| r.contains("hard bounce") && r.contains("5.1.1")), "{reason:?}");

    // Staff asking to queue it again are told it would only go dead, and why.
    let refused = cport::actions::outbox::requeue(&t.state, row.id, Utc::now()).await.unwrap_err();
    assert!(refused.to_string().contains("suspended after bounces"), "{refused}");
    // Queued again all the same (by the store), it goes dead again, now without trying the
    // address that is refused.
    let requeued = cport::store::outbox::requeue(&t.state.db, row.id, Utc::now()).await.unwrap();
    assert!(matches!(requeued, cport::store::outbox::Requeue::Queued(_)), "{requeued:?}");
    assert_eq!(drain(&t.state).await.unwrap().dead, 1);
    let row = list_messages(&t.state.db, Some("dead"), 1).await.unwrap().remove(0);
    assert!(row.last_error.as_deref().is_some_and(|e| e.contains("suspended")), "{:?}", row.last_error);
}

/// A relay that will not relay for cport (a bare 550 with no status code, as Exim words it)
/// refuses the message, not the address: it goes dead with the server's words, and the
/// contact's email is not suspended (a misconfigured relay would otherwise suspend everyone).
#[tokio::test]
async fn a_relay_refusing_to_relay_suspends_no_one() {
    let (_smtp, t) = mailing_world(|w| w["contacts"][0]["email"] = json!("norelay@alpha.example")).await;
    common::digest_now(&t.state, "P-1A").await;
    assert_eq!(drain(&t.state).await.unwrap().dead, 1);
    let row = list_messages(&t.state.db, Some("dead"), 1).await.unwrap().remove(0);
    assert!(row.last_error.as_deref().is_some_and(|e| e.contains("relaying")), "{:?}", row.last_error);
    let suspended: i64 = cport::store::on_db!(&t.state.db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM contact_settings WHERE contact_id = 'P-1A' AND email_suspended_reason IS NOT NULL")
        .fetch_one(p).await)
    .unwrap();
    assert_eq!(suspended, 0, "the address was not refused");
}

#[tokio::test]
async fn the_scheduler_sends_one_digest_per_period_however_often_it_runs() {
    let smtp = SmtpServer::start();
    let t = TestState::mailing(&smtp, |c| {
        c.digest.schedule = "0 0 * * * *".into(); // hourly, so a period has always just begun
        c.digest.catch_up_hours = 1;
    })
    .await;
    t.known_for_a_week().await;
    // "Again later" (30 s on) must fall in the same hourly period: in an hour's last half
    // minute the passes are run as of 40 s earlier.
    let now = Utc::now();
    let now = if now.minute() == 59 && now.second() >= 30 { now - Duration::seconds(40) } else { now };
    // Two schedulers at once (two processes sharing the store), then again later.
    let (a, b) = tokio::join!(
        run_pass(&t.state, now, None, Trigger::Scheduled),
        run_pass(&t.state, now, None, Trigger::Scheduled)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let again = run_pass(&t.state, now + Duration::seconds(30), None, Trigger::Scheduled).await.unwrap();
    let manual = run_pass(&t.state, now, None, Trigger::Manual { force: false }).await.unwrap();
    assert_eq!(a.queued + b.queued, 5, "one digest per contact with items: {a:?} {b:?}");
    assert_eq!((again.queued, manual.queued), (0, 0));
    drain(&t.state).await.unwrap();
    let msgs = smtp.messages();
    let mut to: Vec<String> = msgs.iter().map(|(_, e)| e["rcpt_tos"][0].as_str().unwrap().to_string()).collect();
    to.sort();
    assert_eq!(
        to,
        vec!["ann@alpha.example", "bob@alpha.example", "fay@alpha.example", "vic@alpha.example", "zed@beta.example"]
    );

    // --force sends again for the same period; the next period is a new digest.
    let forced = run_pass(&t.state, now, Some("P-1A"), Trigger::Manual { force: true }).await.unwrap();
    assert_eq!(forced.queued, 1);
    drain(&t.state).await.unwrap();
    assert_eq!(smtp.messages().len(), 6);
    let next = run_pass(&t.state, now + Duration::hours(1), Some("P-1A"), Trigger::Scheduled).await.unwrap();
    assert_eq!(next.queued, 1);
    // (The pass ran an hour ahead; bring its message due now.)
    time_passes(&t.state.db, "WHERE status = 'queued'").await;
    drain(&t.state).await.unwrap();
    assert_eq!(smtp.messages().len(), 7);
}

/// A digest still waiting when the next period's is written (its mail server refused it for
/// now, and its retry has not come) is dropped for the new one, saying so: when the server
/// is back the contact gets one digest, not one a period. The new one marks as NEW what the
/// dropped one would have, since the contact never saw it.
#[tokio::test]
async fn a_digest_still_waiting_is_superseded_by_the_next_periods() {
    let smtp = SmtpServer::start();
    let t = hourly(&smtp).await;
    t.known_for_a_week().await;
    let now = Utc::now();
    let first = run_pass(&t.state, now - Duration::hours(2), None, Trigger::Scheduled).await.unwrap();
    assert_eq!(first.queued, 5, "{first:?}");
    drain(&t.state).await.unwrap();
    // A new visual; the next hour's digests are refused by the server for now.
    t.load(json!({"visuals": [{"id": "V-5", "client_id": "C-1", "job_id": "J-1", "design_id": "D5",
        "category": "Colour visual", "designer": "Des", "status": "awaiting_approval", "main_image": "/v5.svg"}]}))
        .await;
    let waiting = run_pass(&t.state, now - Duration::hours(1), None, Trigger::Scheduled).await.unwrap();
    assert_eq!(waiting.queued, 5, "{waiting:?}");
    let refused = common::refused_for_now(&t.state.db, now, "451 4.3.0 try again later").await;
    assert_eq!(refused.len(), 5);
    // This hour's digests supersede them.
    let next = run_pass(&t.state, now, None, Trigger::Scheduled).await.unwrap();
    assert_eq!(next.queued, 5, "{next:?}");
    for row in &refused {
        let row = cport::store::outbox::get_message(&t.state.db, row.id).await.unwrap().unwrap();
        let (status, why) = (row.status.as_str(), row.last_error.unwrap_or_default());
        assert!(status == "dropped" && why.starts_with("superseded by the digest of"), "{status}: {why}");
    }
    // Even once their retry comes, only this hour's go.
    drain(&t.state).await.unwrap();
    time_passes(&t.state.db, "").await;
    let later = drain(&t.state).await.unwrap();
    let anns: Vec<_> = smtp.messages().into_iter().filter(|(_, e)| e["rcpt_tos"][0] == "ann@alpha.example").collect();
    assert_eq!(anns.len(), 2, "the first hour's and this hour's: {later:?}");
    let text = parse(&anns[1].0).body_text(0).unwrap().into_owned();
    assert!(text.contains("[NEW] Visual V-5"), "new to Ann, who never had the dropped digest: {text}");
}

/// A digest refused by its mail server for now, whose every item is dealt with before its
/// retry comes (TOT approved the one visual it listed), is dropped then, saying so, rather
/// than ask the contact for what is done.
#[tokio::test]
async fn a_digest_whose_items_were_all_dealt_with_during_its_retry_is_not_sent() {
    use cport::store::outbox::get_message;
    let smtp = SmtpServer::start();
    let t = hourly(&smtp).await;
    common::fern_with_visuals(&t, &["V-50"]).await;
    let refused = common::fern_digest_refused(&t, 1, "451 4.3.0 try again later").await;
    let id = refused[0].id;
    t.load(json!({"visuals": [common::visual_of_c5("V-50", "approved")]})).await;
    common::retries_come(&t.state.db).await;
    let d = drain(&t.state).await.unwrap();
    assert_eq!((d.sent, d.dropped), (0, 1), "{d:?}");
    let row = get_message(&t.state.db, id).await.unwrap().unwrap();
    let (status, why) = (row.status.as_str(), row.last_error.unwrap_or_default());
    assert!(status == "dropped" && why.contains("dealt with"), "{status}: {why}");
    assert!(smtp.messages().is_empty());
    // Staff queueing it again are told why it would not go.
    let said = cport::actions::outbox::requeue(&t.state, id, Utc::now()).await.unwrap_err().to_string();
    assert!(said.contains("everything it lists was dealt with"), "{said}");
}

/// The same for an alert (a reminder alike): one dropped, whose every item was dealt with
/// since, is not queued again by staff, being told why (the senders would drop it at once).
#[tokio::test]
async fn an_alert_whose_items_were_all_dealt_with_is_not_queued_again() {
    let smtp = SmtpServer::start();
    let t = hourly(&smtp).await;
    common::fern_with_visuals(&t, &["V-50"]).await;
    let now = Utc::now();
    // Staff remind Fern of V-50, then drop the reminder (a slip); TOT then approves V-50.
    cport::actions::chase::remind(&t.state, "P-5", "A1:V-50", now).await.unwrap();
    let rows = cport::store::outbox::list_messages(&t.state.db, Some("queued"), 10).await.unwrap();
    let id = rows.iter().find(|m| m.message.kind.as_str() == "alert").expect("the reminder").id;
    cport::actions::outbox::drop_message(&t.state, id, "sam@tot.example", now).await.unwrap();
    t.load(json!({"visuals": [common::visual_of_c5("V-50", "approved")]})).await;
    let said = cport::actions::outbox::requeue(&t.state, id, now).await.unwrap_err().to_string();
    assert!(said.contains("everything it lists was dealt with"), "{said}");
}

/// A digest refused by its mail server for now, one of whose two items is dealt with before
/// its retry comes, goes then written again with the one still open: it asks for nothing that
/// is done, keeps its Message-ID (a reply to it is read as before), and the console's copy is
/// what went.
#[tokio::test]
async fn a_digest_that_waited_out_a_retry_leaves_out_what_was_dealt_with_meanwhile() {
    use cport::store::outbox::get_message;
    let smtp = SmtpServer::start();
    let t = hourly(&smtp).await;
    common::fern_with_visuals(&t, &["V-50", "V-51"]).await;
    let refused = common::fern_digest_refused(&t, 1, "451 4.3.0 try again later").await;
    let written: serde_json::Value = serde_json::from_str(&refused[0].message.payload).unwrap();
    assert!(written["text"].as_str().unwrap().contains("V-50"), "{written}");
    t.load(json!({"visuals": [common::visual_of_c5("V-50", "approved")]})).await;
    common::retries_come(&t.state.db).await;
    // A sender that does not hold the row's claim changes nothing of it.
    use cport::store::outbox::{Lane, Take, claim, release_claim, rewrite};
    let (db, now) = (&t.state.db, Utc::now());
    assert_eq!(claim(db, Take::Lane(Lane::All), 10, "holder", now, now + Duration::minutes(1)).await.unwrap().len(), 1);
    assert!(!rewrite(db, refused[0].id, "another", "x@y.example", "stale", "{}").await.unwrap());
    assert_eq!(get_message(db, refused[0].id).await.unwrap().unwrap().message.payload, refused[0].message.payload);
    assert_eq!(release_claim(db, "holder", &[refused[0].id], now).await.unwrap(), 1);
    let d = drain(&t.state).await.unwrap();
    assert_eq!((d.sent, d.dropped), (1, 0), "{d:?}");
    let sent = smtp.messages();
    assert_eq!(sent.len(), 1);
    let m = parse(&sent[0].0);
    let text = m.body_text(0).unwrap().into_owned();
    assert!(text.contains("V-51") && !text.contains("V-50"), "only what is still open: {text}");
    assert!(!m.body_html(0).unwrap().contains("V-50"));
    assert_eq!(m.subject(), Some("TOT: 1 thing needs you"));
    assert_eq!(m.message_id(), written["message_id"].as_str().map(|id| id.trim_matches(['<', '>'])));
    let row = get_message(&t.state.db, refused[0].id).await.unwrap().unwrap();
    assert_eq!(row.message.subject, "TOT: 1 thing needs you");
    let kept: serde_json::Value = serde_json::from_str(&row.message.payload).unwrap();
    assert!(!kept["text"].as_str().unwrap().contains("V-50"), "the console shows what went: {kept}");
}

/// The test world mailing to `smtp`, its digests hourly on the hour, each caught up for 12
/// hours.
async fn hourly(smtp: &SmtpServer) -> TestState {
    TestState::mailing(smtp, |c| {
        c.digest.schedule = "0 0 * * * *".into();
        c.digest.catch_up_hours = 12;
    })
    .await
}

/// [`hourly`] with its five contacts known for a week and each sent the digest of the slot
/// `ago` before now; with the now it was.
async fn hourly_sent(smtp: &SmtpServer, ago: Duration) -> (TestState, chrono::DateTime<Utc>) {
    let t = hourly(smtp).await;
    t.known_for_a_week().await;
    let now = Utc::now();
    let first = run_pass(&t.state, now - ago, None, Trigger::Scheduled).await.unwrap();
    assert_eq!(first.queued, 5, "{first:?}");
    (t, now)
}

/// A period is caught up only for contacts cport knew when it began: a first import (or a
/// new person) after this morning's slot sends nothing at once; the next slot sends to them.
#[tokio::test]
async fn contacts_added_after_a_slot_get_the_next_digest_not_a_catch_up() {
    let smtp = SmtpServer::start();
    let t = TestState::mailing(&smtp, |c| {
        c.digest.schedule = "0 0 * * * *".into(); // hourly: this hour's slot began before the load
        c.digest.catch_up_hours = 12;
    })
    .await;
    let now = Utc::now();
    let r = run_pass(&t.state, now, None, Trigger::Scheduled).await.unwrap();
    assert_eq!((r.queued, r.not_due), (0, 5), "nobody known at the slot: {r:?}");
    // `digest run` still sends when staff ask.
    let manual = run_pass(&t.state, now, Some("P-1A"), Trigger::Manual { force: false }).await.unwrap();
    assert_eq!(manual.queued, 1);
    // The next slot is theirs.
    let next = run_pass(&t.state, now + Duration::hours(1), None, Trigger::Scheduled).await.unwrap();
    assert_eq!(next.queued, 5, "every contact with items: {next:?}");
    // A contact known before a slot cport missed (down) is caught up.
    let smtp2 = SmtpServer::start();
    let t2 = hourly(&smtp2).await;
    t2.known_for_a_week().await;
    let missed = run_pass(&t2.state, now, None, Trigger::Scheduled).await.unwrap();
    assert_eq!(missed.queued, 5, "{missed:?}");
}

/// A contact whose digest time changes is owed no period of the new schedule that began
/// before the change: this hour's digest went, and half past chosen after it sends at its
/// next half past, not a second digest at once. The same when TOT changes the schedule or the zone.
#[tokio::test]
async fn a_changed_schedule_waits_for_its_next_slot_not_a_second_digest_at_once() {
    let smtp = SmtpServer::start();
    let (t, now) = hourly_sent(&smtp, Duration::zero()).await;
    // Ann picks half past every six hours in her preferences; TOT moves Bob to a zone half an
    // hour off UTC, and Fay's digest to a quarter past every six hours.
    // (Stamped as the preferences page stamps a change of the schedule in force.)
    let mut ann = cport::store::settings::get_settings(&t.state.db, "P-1A").await.unwrap();
    ann.digest_schedule = Some("0 30 */6 * * *".into());
    ann.schedule_set_at = Some(now);
    cport::store::settings::save_preferences(&t.state.db, &ann, now).await.unwrap();
    t.load(json!({"contacts": [
        {"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer", "email": "bob@alpha.example", "role": "buyer",
         "timezone": "Asia/Kolkata"},
        {"id": "P-1F", "client_id": "C-1", "name": "Fay Finance", "email": "fay@alpha.example", "role": "finance",
         "digest_schedule": "0 15 */6 * * *"}
    ]}))
    .await;
    let again = run_pass(&t.state, now, None, Trigger::Scheduled).await.unwrap();
    assert_eq!((again.queued, again.not_due, again.already_decided), (0, 3, 2), "{again:?}");
    let later = now + Duration::hours(6);
    let next = run_pass(&t.state, later, None, Trigger::Scheduled).await.unwrap();
    assert_eq!(next.queued, 5, "each new schedule's next slot is owed: {next:?}");
}

/// A digest time moved earlier before the day's old time came (08:00 to 07:30, chosen at
/// 07:45) still sends the day's digest, at once: yesterday's went early in the new clock's
/// last period, and waiting for tomorrow's 07:30 would leave two days without one. The
/// others have theirs at 08:00 as before.
#[tokio::test]
async fn a_digest_moved_earlier_before_its_time_still_comes_that_day() {
    let smtp = SmtpServer::start();
    let t = TestState::mailing(&smtp, |c| {
        c.digest.schedule = "0 0 8 * * *".into();
        c.digest.timezone = "UTC".into();
        c.digest.catch_up_hours = 12;
    })
    .await;
    t.known_for_a_week().await;
    let day = (Utc::now() - Duration::days(3)).date_naive().and_hms_opt(8, 0, 0).unwrap().and_utc();
    let first = run_pass(&t.state, day + Duration::seconds(5), None, Trigger::Scheduled).await.unwrap();
    assert_eq!(first.queued, 5, "{first:?}");
    let changed = day + Duration::days(1) - Duration::minutes(15);
    let mut ann = cport::store::settings::get_settings(&t.state.db, "P-1A").await.unwrap();
    ann.digest_schedule = Some("0 30 7 * * *".into());
    ann.schedule_set_at = Some(changed);
    cport::store::settings::save_preferences(&t.state.db, &ann, changed).await.unwrap();
    let r = run_pass(&t.state, changed, None, Trigger::Scheduled).await.unwrap();
    assert_eq!((r.queued, r.not_due), (1, 4), "Ann's digest of the day, at once: {r:?}");
    let eight = run_pass(&t.state, day + Duration::days(1), None, Trigger::Scheduled).await.unwrap();
    assert_eq!(eight.queued, 4, "the others' at 08:00, and no second one for Ann: {eight:?}");
    let next =
        run_pass(&t.state, day + Duration::days(2) - Duration::minutes(30), None, Trigger::Scheduled).await.unwrap();
    assert_eq!(next.queued, 1, "Ann's at her new time the next day: {next:?}");
}

/// cport run again with another configured schedule (a restart with a changed config) is the
/// same: a contact that had this slot's digest waits for the new schedule's next slot, and
/// one that has had none since the new schedule's slot before is caught up.
#[tokio::test]
async fn a_changed_configured_schedule_waits_for_its_next_slot() {
    let smtp = SmtpServer::start();
    let (t, now) = hourly_sent(&smtp, Duration::hours(13)).await;
    let ann = run_pass(&t.state, now, Some("P-1A"), Trigger::Manual { force: false }).await.unwrap();
    assert_eq!(ann.queued, 1, "Ann has this hour's digest: {ann:?}");
    // cport starts again with digests at half past every six hours.
    let moved = with_config(&t, |c| c.digest.schedule = "0 30 */6 * * *".into());
    let r = run_pass(&moved, now, None, Trigger::Scheduled).await.unwrap();
    assert_eq!((r.queued, r.not_due), (4, 1), "all but Ann are caught up: {r:?}");
    let next = run_pass(&moved, now + Duration::hours(6), None, Trigger::Scheduled).await.unwrap();
    assert_eq!(next.queued, 5, "the next slot is owed to all: {next:?}");
}

/// The same for the configured zone: hourly digests moved half an hour by a zone half an
/// hour off UTC are not sent again at once.
#[tokio::test]
async fn a_changed_configured_zone_sends_no_second_digest_at_once() {
    let smtp = SmtpServer::start();
    let (t, now) = hourly_sent(&smtp, Duration::zero()).await;
    let moved = with_config(&t, |c| c.digest.timezone = "Asia/Kolkata".into());
    let again = run_pass(&moved, now, None, Trigger::Scheduled).await.unwrap();
    assert_eq!((again.queued, again.not_due), (0, 5), "{again:?}");
    let next = run_pass(&moved, now + Duration::hours(1), None, Trigger::Scheduled).await.unwrap();
    assert_eq!(next.queued, 5, "{next:?}");
}

/// A `digest run` started with other digest settings (a shell without the service's
/// environment) is no change of the configured clock: the scheduler's next pass owes this
/// hour's digest to every contact, Ann too.
#[tokio::test]
async fn a_digest_run_with_other_settings_changes_no_clock() {
    let smtp = SmtpServer::start();
    let (t, now) = hourly_sent(&smtp, Duration::hours(13)).await;
    let other = with_config(&t, |c| c.digest.schedule = "0 30 * * * *".into());
    let ann = run_pass(&other, now, Some("P-1A"), Trigger::Manual { force: false }).await.unwrap();
    assert_eq!(ann.queued, 1, "{ann:?}");
    let r = run_pass(&t.state, now, None, Trigger::Scheduled).await.unwrap();
    assert_eq!((r.queued, r.not_due), (5, 0), "{r:?}");
}

/// The test's services as a process started with a changed config would have them.
fn with_config(t: &TestState, change: impl FnOnce(&mut cport::config::Config)) -> cport::services::Services {
    let mut services = (**t.state).clone();
    let mut config = (*services.config).clone();
    change(&mut config);
    services.config = std::sync::Arc::new(config);
    services
}

/// TOT giving a contact's clock again as it was (the zone it had left out, now by name) owes
/// the period as before: the digest of the slot that came just before it is not skipped.
#[tokio::test]
async fn a_clock_given_again_as_it_was_skips_no_digest() {
    let smtp = SmtpServer::start();
    let t = TestState::mailing(&smtp, |c| {
        c.digest.schedule = "0 0 * * * *".into();
        c.digest.catch_up_hours = 12;
        c.digest.timezone = "Europe/Berlin".into();
    })
    .await;
    t.known_for_a_week().await;
    let now = Utc::now();
    let earlier = run_pass(&t.state, now - Duration::hours(1), None, Trigger::Scheduled).await.unwrap();
    assert_eq!(earlier.queued, 5, "{earlier:?}");
    // This hour's slot has come; before the scheduler's next tick, TOT sends Ann again with
    // the zone it had left out, now by name.
    t.load(json!({"contacts": [
        {"id": "P-1A", "client_id": "C-1", "name": "Ann Admin", "email": "ann@alpha.example", "role": "admin",
         "timezone": "Europe/Berlin"}
    ]}))
    .await;
    let r = run_pass(&t.state, now, None, Trigger::Scheduled).await.unwrap();
    assert_eq!((r.queued, r.not_due), (5, 0), "Ann's among them: {r:?}");
    let rows = list_messages(&t.state.db, None, 20).await.unwrap();
    let anns = rows
        .iter()
        .filter(|m| m.message.contact_id.as_deref() == Some("P-1A") && m.message.kind.as_str() == "digest")
        .count();
    assert_eq!(anns, 2, "one for each hour");
}

#[tokio::test]
async fn an_empty_digest_is_not_sent_and_new_items_are_marked() {
    let smtp = SmtpServer::start();
    let t = TestState::new(|c| {
        smtp_config(c, smtp.port);
        // Weekdays at 08:00: from Friday's slot to Monday's is 72 hours.
        c.digest.catch_up_hours = 100;
    })
    .await;
    let mut w = world();
    w["clients"].as_array_mut().unwrap().push(json!({"id": "C-3", "name": "Quiet Co"}));
    w["contacts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "P-3", "client_id": "C-3", "name": "Q", "email": "q@quiet.example", "role": "admin"}));
    t.load(w).await;
    t.known_for_a_week().await;
    let now = Utc::now();
    let r = run_pass(&t.state, now, Some("P-3"), Trigger::Manual { force: false }).await.unwrap();
    assert_eq!((r.queued, r.empty), (0, 1));

    // Quiet Co's first job arrives later in the period: the scheduler has decided the period
    // and stays quiet, `digest run` decides it again and sends; then the period is sent.
    t.load(json!({"jobs": [{"id": "J-30", "client_id": "C-3", "name": "Aprons", "status": "entered"}]})).await;
    let later = run_pass(&t.state, now, Some("P-3"), Trigger::Scheduled).await.unwrap();
    assert_eq!((later.queued, later.already_decided), (0, 1), "a scheduled pass does not decide again: {later:?}");
    let r = run_pass(&t.state, now, Some("P-3"), Trigger::Manual { force: false }).await.unwrap();
    assert_eq!((r.queued, r.empty), (1, 0), "{r:?}");
    let r = run_pass(&t.state, now, Some("P-3"), Trigger::Manual { force: false }).await.unwrap();
    assert_eq!((r.queued, r.already_decided), (0, 1), "{r:?}");
    drain(&t.state).await.unwrap();
    let to_quiet = smtp.messages().into_iter().filter(|(_, e)| e["rcpt_tos"][0] == "q@quiet.example").count();
    assert_eq!(to_quiet, 1);

    run_pass(&t.state, now, Some("P-1A"), Trigger::Manual { force: false }).await.unwrap();
    t.load(json!({"visuals": [{"id": "V-5", "client_id": "C-1", "job_id": "J-1", "design_id": "D5", "category": "Colour visual",
        "designer": "Des", "status": "awaiting_approval", "main_image": "/v5.svg"}]}))
        .await;
    run_pass(&t.state, now, Some("P-1A"), Trigger::Manual { force: true }).await.unwrap();
    drain(&t.state).await.unwrap();
    let msgs: Vec<_> = smtp.messages().into_iter().filter(|(_, e)| e["rcpt_tos"][0] == "ann@alpha.example").collect();
    assert_eq!(msgs.len(), 2);
    let first = parse(&msgs[0].0).body_text(0).unwrap().into_owned();
    let second = parse(&msgs[1].0);
    let text = second.body_text(0).unwrap();
    assert!(!first.contains("[NEW]"), "the first digest marks nothing as new");
    assert!(text.contains("[NEW] Visual V-5"), "{text}");
    assert_eq!(text.matches("[NEW]").count(), 1, "{text}");
    assert!(second.subject().unwrap().contains("(1 new)"));
}

#[tokio::test]
async fn a_crash_between_queueing_and_sending_loses_nothing() {
    let (smtp, t) = mailing_world(|_| ()).await;
    common::digest_now(&t.state, "P-1A").await;
    common::digest_now(&t.state, "P-1B").await;
    // One message is claimed by a sender that then dies (its lease is left behind).
    let claimed = cport::store::outbox::claim_due(&t.state.db, Utc::now(), Utc::now() + Duration::seconds(1))
        .await
        .unwrap()
        .expect("a due message");
    let config = (*t.state.config).clone();
    drop(t.state);

    // A new process on the same store sends the other at once, and the abandoned one when
    // its lease runs out.
    let db = cport::store::Db::connect(config.database_url.expose()).await.unwrap();
    let state = cport::AppState::new(config, db).unwrap();
    assert_eq!(drain(&state).await.unwrap().sent, 1);
    let later = Utc::now() + Duration::seconds(2);
    let resent = cport::store::outbox::claim_due(&state.db, later, later + Duration::seconds(300)).await.unwrap();
    assert_eq!(resent.map(|r| r.id), Some(claimed.id));
    cport::store::on_db!(&state.db, p => sqlx::query("UPDATE outbox SET status = 'queued' WHERE id = $1").bind(claimed.id).execute(p).await.map(|_| ()))
        .unwrap();
    assert_eq!(drain(&state).await.unwrap().sent, 1);
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test]
async fn an_urgent_banner_reaches_every_contact_of_its_audience_once() {
    let (smtp, t) = mailing_world(|_| ()).await;
    let now = Utc::now();
    let input = BannerInput {
        expires_at: Some(now + Duration::days(1)),
        ..urgent("Snow closes the works", "No collections today; deliveries resume tomorrow.", "C-1")
    };
    let posted = cport::actions::banners::post(&t.state, input.clone(), "test", now).await.unwrap();
    assert_eq!(posted.queued, 4);
    drain(&t.state).await.unwrap();
    drain(&t.state).await.unwrap();
    let mut to: Vec<String> =
        smtp.messages().iter().map(|(_, e)| e["rcpt_tos"][0].as_str().unwrap().to_string()).collect();
    to.sort();
    assert_eq!(to, vec!["ann@alpha.example", "bob@alpha.example", "fay@alpha.example", "vic@alpha.example"]);
    let m = smtp.messages();
    assert!(parse(&m[0].0).subject().unwrap().contains("URGENT: Snow closes the works"));

    // The banner leads the next digest of its audience, and not of other clients.
    run_pass(&t.state, now, None, Trigger::Manual { force: false }).await.unwrap();
    drain(&t.state).await.unwrap();
    for (raw, env) in smtp.messages().iter().skip(4) {
        let text = parse(raw).body_text(0).unwrap().into_owned();
        let alpha = env["rcpt_tos"][0].as_str().unwrap().ends_with("alpha.example");
        assert_eq!(text.contains("URGENT: Snow closes the works"), alpha, "{env}");
        if alpha {
            assert!(text.find("URGENT").unwrap() < text.find("==").unwrap(), "banners come first");
        }
    }

    // Bad input names the field and stores nothing.
    let bad = BannerInput { title: " ".into(), severity: "loud".into(), clients: vec!["C-404".into()], ..input };
    let err = cport::actions::banners::post(&t.state, bad, "test", now).await.unwrap_err().to_string();
    for field in ["title", "severity", "clients: unknown client `C-404`"] {
        assert!(err.contains(field), "{err}");
    }
    assert_eq!(cport::store::banners::list_banners(&t.state.db).await.unwrap().len(), 1);
}

/// A first load sent through the API entity by entity: the scan that saw the contacts
/// arrive took their baseline before the visuals came. Visuals TOT dated before that look are
/// part of what existed (recorded, no alert); one issued since is news.
#[tokio::test]
async fn records_dated_before_a_contacts_first_scan_are_no_news() {
    let (_smtp, t) = mailing_world(|_| ()).await;
    let now = Utc::now();
    assert_eq!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap(), 0);
    let issued = (now - Duration::days(3)).to_rfc3339();
    let old: Vec<_> = (20..40).map(|n| old_visual(&format!("V-{n}"), &issued)).collect();
    t.load(json!({ "visuals": old })).await;
    let later = now + Duration::seconds(30);
    assert_eq!(cport::digest::alerts::scan(&t.state, later, None).await.unwrap(), 0, "no flood of old visuals");
    assert!(cport::store::outbox::list_messages(&t.state.db, None, 10).await.unwrap().is_empty());
    t.load(json!({"visuals": [{"id": "V-50", "client_id": "C-1", "job_id": "J-1", "design_id": "D",
        "category": "Colour visual", "designer": "Des", "status": "awaiting_approval", "main_image": "/x.svg"}]}))
        .await;
    // Admin, buyer and viewer see visuals: one alert each, of the new one alone.
    assert_eq!(cport::digest::alerts::scan(&t.state, later, None).await.unwrap(), 3);
    // Past the first hour an old record that needs the contact again is news: a visual TOT
    // dated last week, sent back for approval.
    let mut reopened = old_visual("V-60", &(now - Duration::days(7)).to_rfc3339());
    reopened["status"] = json!("awaiting_approval");
    t.load(json!({ "visuals": [reopened] })).await;
    assert_eq!(cport::digest::alerts::scan(&t.state, now + Duration::hours(2), None).await.unwrap(), 3);
    // One alerted already that leaves (rejected) and comes back (sent back for approval) is
    // news again; one that stays is not alerted twice.
    let mut v50 = old_visual("V-50", &now.to_rfc3339());
    v50["status"] = json!("rejected");
    t.load(json!({ "visuals": [v50.clone()] })).await;
    assert_eq!(cport::digest::alerts::scan(&t.state, now + Duration::hours(3), None).await.unwrap(), 0);
    v50["status"] = json!("awaiting_approval");
    t.load(json!({ "visuals": [v50] })).await;
    assert_eq!(cport::digest::alerts::scan(&t.state, now + Duration::hours(4), None).await.unwrap(), 3);
    assert_eq!(cport::digest::alerts::scan(&t.state, now + Duration::hours(5), None).await.unwrap(), 0);
}

/// An alert that failed and waits for its retry is no alert sent: a new item's alert is
/// timed from when that one was tried, not held until the failed one's next try and a
/// batch window more.
#[tokio::test]
async fn an_alert_waiting_for_a_retry_does_not_hold_back_the_next() {
    let (_smtp, t) = mailing_world(|_| ()).await;
    let now = Utc::now();
    assert_eq!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap(), 0);
    let new_visual = |id: &str| {
        json!({"visuals": [{"id": id, "client_id": "C-1", "job_id": "J-1", "design_id": "D", "category": "Colour visual",
                            "designer": "Des", "status": "awaiting_approval", "main_image": "/x.svg"}]})
    };
    t.load(new_visual("V-50")).await;
    let first = now + Duration::seconds(30);
    assert_eq!(cport::digest::alerts::scan(&t.state, first, None).await.unwrap(), 3);
    // Ann's alert failed just then (her mail server said "try later"): its retry is in 40 minutes.
    cport::store::on_db!(&t.state.db, p => sqlx::query(
        "UPDATE outbox SET status = 'failed', next_attempt_at = $1, updated_at = $2 WHERE contact_id = 'P-1A' AND kind = 'alert'")
        .bind(first + Duration::minutes(40)).bind(first).execute(p).await.map(|_| ()))
    .unwrap();
    t.load(new_visual("V-51")).await;
    let later = first + Duration::minutes(10);
    assert_eq!(cport::digest::alerts::scan(&t.state, later, None).await.unwrap(), 3);
    let (due,): (chrono::DateTime<Utc>,) = cport::store::on_db!(&t.state.db, p => sqlx::query_as(
        "SELECT next_attempt_at FROM outbox WHERE contact_id = 'P-1A' AND kind = 'alert' AND status = 'queued'")
        .fetch_one(p).await)
    .unwrap();
    assert!(due <= later + Duration::seconds(1), "due at {due}, not after the failed one's retry ({later})");
}

/// A contact TOT gives no time zone has `digest.timezone`'s, as it is configured when read;
/// one TOT gives a zone has that.
#[tokio::test]
async fn a_contact_without_a_zone_has_the_configured_one() {
    let t = common::TestState::new(|c| c.digest.timezone = "Asia/Tokyo".into()).await;
    t.load(world()).await;
    t.load(json!({"contacts": [{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer", "email": "bob@alpha.example",
        "role": "buyer", "timezone": "America/Chicago"}]}))
        .await;
    for (id, zone) in [("P-1A", "Asia/Tokyo"), ("P-1B", "America/Chicago")] {
        let c = cport::store::contacts::get_contact(&t.state.db, id).await.unwrap();
        let s = cport::store::settings::get_settings(&t.state.db, id).await.unwrap();
        assert_eq!(cport::actions::targets::clock(&t.state.config, &c, &s).1, zone, "{id}");
    }
}

/// A visual of the test world's client C-1, issued at `issued`, awaiting approval.
fn old_visual(id: &str, issued: &str) -> serde_json::Value {
    json!({"id": id, "client_id": "C-1", "job_id": "J-1", "design_id": "D", "category": "Colour visual",
           "designer": "Des", "status": "awaiting_approval", "main_image": "/x.svg", "created_at": issued})
}

/// A contact with nothing to be alerted of at its first look keeps that look: the first
/// visual that comes for them later is alerted, not taken as the baseline.
#[tokio::test]
async fn a_first_look_at_nothing_still_counts() {
    let (_smtp, t) = mailing_world(|_| ()).await;
    let now = Utc::now();
    let mut all = world()["visuals"].as_array().unwrap().clone();
    for v in &mut all {
        v["status"] = json!("approved");
    }
    t.load(json!({ "visuals": all })).await;
    assert_eq!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap(), 0);
    t.load(json!({"visuals": [{"id": "V-70", "client_id": "C-1", "job_id": "J-1", "design_id": "D",
        "category": "Colour visual", "designer": "Des", "status": "awaiting_approval", "main_image": "/x.svg"}]}))
        .await;
    assert_eq!(cport::digest::alerts::scan(&t.state, now + Duration::seconds(5), None).await.unwrap(), 3);
}

/// A sync document of one visual of C-1's job J-1, in `status`.
fn visual_of_job_1(id: &str, status: &str) -> serde_json::Value {
    json!({"visuals": [{"id": id, "client_id": "C-1", "job_id": "J-1", "design_id": id, "category": "Colour visual",
        "designer": "Des", "status": status, "main_image": "/x.svg"}]})
}

#[tokio::test]
async fn instant_alerts_are_batched_and_dropped_when_resolved_first() {
    let (smtp, t) = mailing_world(|_| ()).await;
    let now = Utc::now();
    // The first scan only records what already exists.
    assert_eq!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap(), 0);

    let visual = |id: &str| visual_of_job_1(id, "awaiting_approval");
    t.load(visual("V-10")).await;
    // Admin and buyer act on visuals; the viewer sees them too. Finance does not.
    assert_eq!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap(), 3);
    assert_eq!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap(), 0, "an item is alerted once");
    assert_eq!(drain(&t.state).await.unwrap().sent, 3, "the first alert goes at once");

    // Two more within the batch window: held and sent together as one message each.
    t.load(visual("V-11")).await;
    t.load(visual("V-12")).await;
    assert_eq!(cport::digest::alerts::scan(&t.state, now + Duration::seconds(10), None).await.unwrap(), 6);
    assert_eq!(drain(&t.state).await.unwrap().sent, 0, "held for the batch window");
    time_passes(&t.state.db, "WHERE status = 'queued'").await;
    assert_eq!(drain(&t.state).await.unwrap().sent, 3);
    let last = smtp.messages().pop().unwrap();
    let text = parse(&last.0).body_text(0).unwrap().into_owned();
    assert!(text.contains("V-11") && text.contains("V-12"), "{text}");

    // A visual approved before its alert goes out: the alert is dropped, not sent.
    t.load(visual("V-13")).await;
    cport::digest::alerts::scan(&t.state, now + Duration::seconds(20), None).await.unwrap();
    let mut approved = visual("V-13");
    approved["visuals"][0]["status"] = json!("approved");
    t.load(approved).await;
    time_passes(&t.state.db, "WHERE status = 'queued'").await;
    let d = drain(&t.state).await.unwrap();
    assert_eq!((d.sent, d.dropped), (0, 3));
    assert_eq!(smtp.messages().len(), 6);
}

/// An alert held by the batch window goes to no one who has since set that category to come
/// in the digest (or not at all): it is dropped, saying so. A staff reminder is staff's own
/// word and goes whatever the modes say.
#[tokio::test]
async fn a_held_alert_is_dropped_once_its_category_is_no_longer_instant() {
    let (smtp, t) = mailing_world(|_| ()).await;
    let now = Utc::now();
    assert_eq!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap(), 0);
    let visual = |id: &str| visual_of_job_1(id, "awaiting_approval");
    t.load(visual("V-10")).await;
    cport::digest::alerts::scan(&t.state, now, None).await.unwrap();
    assert_eq!(drain(&t.state).await.unwrap().sent, 3, "the first alerts go at once");
    // The next one is held for the batch window; meanwhile Ann and Bob choose the digest
    // and "not at all" for visuals.
    t.load(visual("V-11")).await;
    assert_eq!(cport::digest::alerts::scan(&t.state, now + Duration::seconds(10), None).await.unwrap(), 3);
    for (contact, mode) in [("P-1A", cport::model::AlertMode::Digest), ("P-1B", cport::model::AlertMode::Off)] {
        let mut s = cport::store::settings::get_settings(&t.state.db, contact).await.unwrap();
        s.mode_visual_approval = Some(mode);
        cport::store::settings::save_preferences(&t.state.db, &s, now).await.unwrap();
    }
    time_passes(&t.state.db, "WHERE status = 'queued'").await;
    let d = drain(&t.state).await.unwrap();
    assert_eq!((d.sent, d.dropped), (1, 2), "only the viewer's goes: {d:?}");
    let rows = cport::store::outbox::list_messages(&t.state.db, None, 20).await.unwrap();
    for contact in ["P-1A", "P-1B"] {
        let held =
            rows.iter().find(|r| r.message.contact_id.as_deref() == Some(contact) && r.status.as_str() == "dropped");
        let why = held.and_then(|r| r.last_error.clone()).unwrap_or_default();
        assert!(why.contains("no longer alerted at once"), "{contact}: {why}");
    }
    assert_eq!(smtp.messages().len(), 4);
    // Staff's reminder of the visual still reaches Ann.
    cport::actions::chase::remind(&t.state, "P-1A", "A1:V-11", Utc::now()).await.unwrap();
    time_passes(&t.state.db, "WHERE status = 'queued'").await;
    assert_eq!(drain(&t.state).await.unwrap().sent, 1);
}

/// An alert of two visuals, one approved while it waited, goes with the other alone; a bare
/// `APPROVE` in reply means that one, the visual its reader saw, not "which of two?".
#[tokio::test]
async fn a_bare_reply_to_an_alert_means_the_item_it_showed() {
    let (smtp, t) = mailing_world(|_| ()).await;
    let now = Utc::now();
    assert_eq!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap(), 0);
    let visual = visual_of_job_1;
    // Two visuals in one batch: held for the window after the first alert.
    t.load(visual("V-10", "awaiting_approval")).await;
    cport::digest::alerts::scan(&t.state, now, None).await.unwrap();
    drain(&t.state).await.unwrap();
    t.load(visual("V-11", "awaiting_approval")).await;
    t.load(visual("V-12", "awaiting_approval")).await;
    cport::digest::alerts::scan(&t.state, now + Duration::seconds(10), None).await.unwrap();
    t.load(visual("V-11", "approved")).await;
    time_passes(&t.state.db, "WHERE status = 'queued'").await;
    assert_eq!(drain(&t.state).await.unwrap().sent, 3);
    let rows = list_messages(&t.state.db, None, 100).await.unwrap();
    let alert = rows
        .iter()
        .filter(|m| m.message.contact_id.as_deref() == Some("P-1A") && m.message.kind.as_str() == "alert")
        .max_by_key(|m| m.id)
        .unwrap();
    let shown = parse(&smtp.messages().last().unwrap().0).body_text(0).unwrap().into_owned();
    assert!(shown.contains("V-12") && !shown.contains("V-11"), "{shown}");
    let domain = &t.state.config.email.reply_domain;
    let token = alert.message.reply_token.as_deref().unwrap();
    let mail = format!(
        "From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: alert\r\n\
         Message-ID: <bare-approve@alpha.example>\r\n\r\nAPPROVE\r\n"
    );
    let d = cport::channels::inbound::handle(&t.state, mail.as_bytes(), Utc::now()).await.unwrap();
    assert!(matches!(d, cport::channels::inbound::Disposition::Processed(_)), "{d:?}");
    let v12 = cport::store::visuals::get_visual(&t.state.db, "C-1", "V-12").await.unwrap();
    assert_eq!(v12.status.as_str(), "approved");
}

/// Makes the outbox's messages (those `filter` picks) due now, as if their wait had passed.
async fn time_passes(db: &cport::store::Db, filter: &str) {
    let sql = format!("UPDATE outbox SET next_attempt_at = $1 {filter}");
    cport::store::on_db!(db, p => sqlx::query(&sql).bind(Utc::now()).execute(p).await.map(|_| ())).unwrap();
}

/// An urgent banner for one client, from now on, with no end.
fn urgent(title: &str, body: &str, client: &str) -> BannerInput {
    BannerInput {
        title: title.into(),
        body: body.into(),
        severity: "urgent".into(),
        clients: vec![client.into()],
        starts_at: None,
        expires_at: None,
    }
}

/// A message from the digest address to `to`, `raw` as it goes on the wire.
fn built(to: &str, raw: String) -> Built {
    let from = Some("digest@tot.example".parse().unwrap());
    Built { envelope: lettre::address::Envelope::new(from, vec![to.parse().unwrap()]).unwrap(), raw: raw.into_bytes() }
}

/// A mailer for `smtp`, its pool `pool` connections (the default when none).
fn mailer_for(smtp: &SmtpServer, pool: Option<u32>) -> Mailer {
    let mut config = cport::config::Config::default();
    smtp_config(&mut config, smtp.port);
    if let Some(n) = pool {
        config.smtp.pool_size = n;
    }
    Mailer::from_config(&config).unwrap()
}

/// The SMTP pool pipelines MAIL, RCPT and DATA when the server offers PIPELINING and talks
/// one command at a time when it does not; either way a message arrives byte for byte
/// (lines that start with a dot included), and a refused recipient leaves the next message
/// on the pool unharmed.
#[tokio::test]
async fn messages_arrive_whole_with_and_without_pipelining() {
    use cport::channels::{Gate, SendError};
    for args in [&[][..], &["--no-pipelining"][..]] {
        let smtp = SmtpServer::start_with(args);
        let mailer = mailer_for(&smtp, Some(1));
        let built = |to: &str, body: &str| built(to, format!("Subject: dots\r\nTo: {to}\r\n\r\n{body}"));
        let body = ".a line that starts with a dot\r\n..and two\r\n.\r\nthe end\r\n";
        mailer.send(&built("ann@alpha.example", body), &Gate::open()).await.unwrap();
        let refused = mailer.send(&built("reject@alpha.example", "x\r\n"), &Gate::open()).await;
        assert!(matches!(&refused, Err(SendError::AddressRefused(m)) if m.contains("550")), "{args:?}: {refused:?}");
        mailer.send(&built("bob@alpha.example", "after the refusal\r\n"), &Gate::open()).await.unwrap();
        let got = smtp.messages();
        assert_eq!(got.len(), 2, "{args:?}");
        let text = String::from_utf8(got[0].0.clone()).unwrap();
        assert!(text.trim_end().ends_with(body.trim_end()), "{args:?}: {text:?}");
        assert!(text.contains(&format!("\r\n\r\n{body}")), "{args:?}: {text:?}");
        assert_eq!(got[1].1["rcpt_tos"][0], "bob@alpha.example", "{args:?}");
    }
}

/// A send whose gate is closed goes no further than the server's "go ahead" for the data:
/// nothing is delivered until the gate opens (the outbox opens it once the sender's previous
/// delivery is marked, so a killed sender leaves at most one delivery unmarked).
#[tokio::test]
async fn a_closed_gate_holds_the_delivery_until_it_opens() {
    use cport::channels::Gate;
    for args in [&[][..], &["--no-pipelining"][..]] {
        let smtp = SmtpServer::start_with(args);
        let mailer = mailer_for(&smtp, None);
        let message = built("ann@alpha.example", "Subject: held\r\n\r\nheld\r\n".into());
        let (key, gate) = Gate::closed();
        let send = mailer.send(&message, &gate);
        tokio::pin!(send);
        tokio::select! {
            r = &mut send => panic!("{args:?}: delivered through a closed gate: {r:?}"),
            _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => {}
        }
        assert!(smtp.messages().is_empty(), "{args:?}");
        key.open();
        send.await.unwrap();
        assert_eq!(smtp.messages().len(), 1, "{args:?}");
    }
}

/// A reused connection the server closed while idle fails before the message is written:
/// the pool tries once more on a fresh connection and the message arrives. A connection lost
/// after the end of data was written is never retried by the pool: the server may have taken
/// the message, so the send reports a temporary failure (the outbox retries after its
/// backoff) and the server holds exactly one copy.
#[tokio::test]
async fn only_a_message_not_yet_written_is_retried_on_a_fresh_connection() {
    use cport::channels::{Gate, SendError};
    let built = |to: &str| built(to, format!("Subject: once\r\nTo: {to}\r\n\r\nonce\r\n"));
    for pipelining in [&[][..], &["--no-pipelining"][..]] {
        let closes_idle = SmtpServer::start_with(&[&["--one-per-connection"], pipelining].concat());
        let mailer = mailer_for(&closes_idle, Some(1));
        for to in ["ann@alpha.example", "bob@alpha.example", "cy@alpha.example"] {
            mailer.send(&built(to), &Gate::open()).await.unwrap();
        }
        assert_eq!(closes_idle.messages().len(), 3, "{pipelining:?}");

        let drops = SmtpServer::start_with(&[&["--drop", "dropped"], pipelining].concat());
        let mailer = mailer_for(&drops, Some(1));
        mailer.send(&built("ann@alpha.example"), &Gate::open()).await.unwrap();
        let lost = mailer.send(&built("dropped@alpha.example"), &Gate::open()).await;
        assert!(matches!(lost, Err(SendError::Transient(_))), "{pipelining:?}: {lost:?}");
        let got = drops.messages();
        assert_eq!(got.len(), 2, "{pipelining:?}: the lost message was sent again");
        assert_eq!(got[1].1["rcpt_tos"][0], "dropped@alpha.example");
        // The pool is still usable after the lost connection.
        mailer.send(&built("bob@alpha.example"), &Gate::open()).await.unwrap();
        assert_eq!(drops.messages().len(), 3, "{pipelining:?}");
    }
}

/// Checks a message's DKIM signature with dkimpy (an independent verifier, from PyPI), the
/// public key served for `selector._domainkey.domain` by its DNS hook.
fn dkim_verifies(raw: &[u8], txt: &str) -> Result<(), String> {
    use std::io::Write;
    let script = "import dkim, sys\n\
                  txt = sys.argv[1].encode()\n\
                  def dns(name, timeout=5):\n    return txt if name.startswith(b'cport1._domainkey.tot.example') else None\n\
                  ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=dns)\n\
                  sys.exit(0 if ok else 1)\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, txt])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test installs dkimpy)");
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

#[tokio::test]
async fn with_dkim_every_message_is_signed_and_an_independent_verifier_accepts_it() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("dkim.pem");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    run(&["genrsa", "-traditional", "-out", key.to_str().unwrap(), "2048"]);
    let public = run(&["rsa", "-in", key.to_str().unwrap(), "-pubout", "-outform", "DER"]);
    use base64::Engine;
    let txt = format!("v=DKIM1; k=rsa; p={}", base64::engine::general_purpose::STANDARD.encode(public));

    let smtp = SmtpServer::start();
    let t = TestState::mailing(&smtp, |c| {
        c.email.from = "TOT <notifications@tot.example>".into();
        c.email.dkim.selector = "cport1".into();
        c.email.dkim.domain = "tot.example".into();
        c.email.dkim.key_file = key.clone();
    })
    .await;
    let now = Utc::now();
    // A digest, an urgent banner, a sign-in link: three kinds of message.
    run_pass(&t.state, now, Some("P-1A"), Trigger::Manual { force: false }).await.unwrap();
    cport::actions::banners::post(&t.state, urgent("Closed Friday", "Back on Monday.", "C-2"), "test", now)
        .await
        .unwrap();
    let ann = cport::store::contacts::get_contact(&t.state.db, "P-1A").await.unwrap();
    cport::actions::mail::send_login_link(&t.state, &ann, now).await.unwrap();
    assert_eq!(drain(&t.state).await.unwrap().sent, 3);

    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 3);
    for (raw, _) in &msgs {
        let m = parse(raw);
        let sig = m.header_raw("DKIM-Signature").expect("signed");
        assert!(sig.contains("d=tot.example") && sig.contains("s=cport1"), "{sig}");
        assert!(sig.contains("list-unsubscribe") || m.header_raw("List-Unsubscribe").is_none(), "{sig}");
        if let Err(e) = dkim_verifies(raw, &txt) {
            panic!("dkimpy refused the signature of {:?}: {e}", m.subject());
        }
        // Changed in transit, it no longer verifies: the check is real.
        let mut tampered = raw.clone();
        let at = tampered.windows(5).position(|w| w == b"Hello").unwrap_or(tampered.len() - 10);
        tampered[at] ^= 0x20;
        assert!(dkim_verifies(&tampered, &txt).is_err(), "a changed body is refused");
    }
}

#[tokio::test]
async fn a_dkim_key_that_cannot_be_used_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("not-a-key.pem");
    std::fs::write(&key, "-----BEGIN RSA PRIVATE KEY-----\nnonsense\n-----END RSA PRIVATE KEY-----\n").unwrap();
    let mut c = common::test_config(dir.path(), format!("sqlite://{}", dir.path().join("c.db").display()));
    c.email.dkim.selector = "cport1".into();
    c.email.dkim.domain = "tot.example".into();
    c.email.dkim.key_file = key;
    let db = cport::store::Db::connect(c.database_url.expose()).await.unwrap();
    let err = cport::AppState::new(c.clone(), db.clone()).err().expect("refused").to_string();
    assert!(err.contains("email.dkim.key_file"), "{err}");
    // A device named by mistake is refused at once, not read without end.
    c.email.dkim.key_file = "/dev/zero".into();
    let err = cport::AppState::new(c, db).err().expect("refused").to_string();
    assert!(err.contains("email.dkim.key_file") && err.contains("not a regular file"), "{err}");
}

/// An urgent banner retracted before it starts (or while its sends wait for a retry) goes to
/// nobody: its waiting messages are dropped with it, saying why.
#[tokio::test]
async fn a_retracted_urgent_banner_is_not_pushed_afterwards() {
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    let now = Utc::now();
    let mut input = urgent("Closed Friday", "Back on Monday.", "C-1");
    input.starts_at = Some(now + chrono::Duration::days(1));
    let posted = cport::actions::banners::post(&t.state, input, "test", now).await.unwrap();
    assert!(posted.queued > 0, "queued for its start");
    assert_eq!(cport::actions::banners::retract(&t.state, posted.id, now).await.unwrap(), Retraction::Done);
    let rows = cport::store::outbox::list_messages(&t.state.db, None, 100).await.unwrap();
    let pushes: Vec<_> = rows.iter().filter(|r| r.message.kind.as_str() == "banner").collect();
    assert_eq!(pushes.len(), posted.queued);
    for r in pushes {
        assert_eq!(r.status.as_str(), "dropped", "{r:?}");
        assert_eq!(r.last_error.as_deref(), Some("the banner was retracted"));
    }
    let later = now + chrono::Duration::days(2);
    assert!(cport::outbox::dispatch_batch_at(&t.state, later, 100).await.unwrap().is_empty(), "nothing goes");
    // Nor when staff queue one of them again (by mistake, or one by one with `retry --dead`):
    // the banner shows nowhere, and that is said.
    use cport::store::outbox::{Requeue, requeue};
    let dropped = rows.iter().find(|r| r.message.kind.as_str() == "banner").unwrap().id;
    let said = cport::actions::outbox::requeue(&t.state, dropped, now).await.unwrap_err().to_string();
    assert!(said.contains("its banner was retracted or has expired"), "{said}");
    let first = rows.iter().find(|r| r.message.kind.as_str() == "banner").unwrap().id;
    assert_eq!(requeue(&t.state.db, first, now).await.unwrap(), Requeue::BannerGone);
    assert!(cport::outbox::dispatch_batch_at(&t.state, later, 100).await.unwrap().is_empty(), "still nothing goes");
    // Dead ones stay dead under `retry` of every dead message, counted so it can say so.
    cport::store::on_db!(&t.state.db, p => sqlx::query("UPDATE outbox SET status = 'dead' WHERE kind = 'banner'")
        .execute(p).await.map(|_| ()))
    .unwrap();
    let dead: Vec<i64> = rows.iter().filter(|r| r.message.kind.as_str() == "banner").map(|r| r.id).collect();
    let (queued, left) = cport::store::outbox::requeue_dead(&t.state.db, &dead, now).await.unwrap();
    assert_eq!((queued, left), (0, posted.queued as i64));
    // Asked as staff ask it, they are left by the rule each is refused by alone, and why said.
    let done = cport::actions::outbox::requeue_dead(&t.state, now).await.unwrap();
    assert_eq!(done.queued, 0);
    assert_eq!(
        done.left.into_iter().collect::<Vec<_>>(),
        [("its banner was retracted or has expired", posted.queued as u64)]
    );
}

/// A banner's push that waited past its banner's expiry (retried through a relay's outage),
/// or was held in a sender's claim through a retraction, is dropped when it comes to be
/// sent: it would tell of what shows nowhere.
#[tokio::test]
async fn a_banner_push_is_not_sent_once_its_banner_is_gone() {
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    let now = Utc::now();
    let posted = cport::actions::banners::post(&t.state, urgent("Works closed", "Until six.", "C-1"), "test", now)
        .await
        .unwrap();
    assert!(posted.queued > 0);
    // As if the relay was down until the banner had expired: each push failed, due again.
    cport::store::on_db!(&t.state.db, p => sqlx::query(
        "UPDATE outbox SET status = 'failed', attempts = 1 WHERE kind = 'banner'").execute(p).await.map(|_| ()))
    .unwrap();
    cport::store::on_db!(&t.state.db, p => sqlx::query("UPDATE banners SET expires_at = $1")
        .bind(now - Duration::minutes(1)).execute(p).await.map(|_| ()))
    .unwrap();
    let outcomes = cport::outbox::dispatch_batch_at(&t.state, Utc::now(), 100).await.unwrap();
    assert_eq!(outcomes.len(), posted.queued, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| *o == cport::outbox::Outcome::Dropped), "{outcomes:?}");
    for r in list_messages(&t.state.db, Some("dropped"), 100).await.unwrap() {
        assert_eq!(r.last_error.as_deref(), Some("its banner was retracted or has expired"), "{r:?}");
    }
}

/// An urgent banner that starts later than its links would last from its posting is sent with
/// links that work from its start: they last `digest.link_ttl_days` from when it goes.
#[tokio::test]
async fn a_banner_that_starts_later_carries_links_that_work_when_it_arrives() {
    let t = TestState::new(|c| c.digest.link_ttl_days = 14).await;
    t.load(world()).await;
    let now = Utc::now();
    let start = now + Duration::days(20);
    let mut input = urgent("Works closed", "For the move.", "C-1");
    input.starts_at = Some(start);
    cport::actions::banners::post(&t.state, input, "test", now).await.unwrap();
    let rows = list_messages(&t.state.db, None, 100).await.unwrap();
    let email = rows
        .iter()
        .find(|r| r.message.kind.as_str() == "banner" && r.message.channel.as_str() == "email")
        .expect("an email");
    let payload: serde_json::Value = serde_json::from_str(&email.message.payload).unwrap();
    let text = payload["text"].as_str().unwrap();
    let token = text.split("/l/").nth(1).expect("a portal link").split_whitespace().next().unwrap();
    let token = token.trim_end_matches(['>', ')', '.']);
    assert!(t.state.signer.verify(token, start + Duration::days(1)).is_ok(), "works the day after it arrives");
}

/// A push of a banner that starts tomorrow, dropped by staff and queued again, waits for the
/// banner's start as it did before: never sent at once.
#[tokio::test]
async fn a_banner_push_queued_again_waits_for_its_start() {
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    let now = Utc::now();
    let starts = now + chrono::Duration::days(1);
    let mut input = urgent("Closed Friday", "Back on Monday.", "C-1");
    input.starts_at = Some(starts);
    let posted = cport::actions::banners::post(&t.state, input, "test", now).await.unwrap();
    let rows = cport::store::outbox::list_messages(&t.state.db, None, 100).await.unwrap();
    let push = rows.iter().find(|r| r.message.kind.as_str() == "banner").unwrap();
    let dropped = cport::store::outbox::drop_message(&t.state.db, push.id, "dropped by staff", now).await.unwrap();
    assert_eq!(dropped, cport::store::outbox::Dropping::Done);
    let requeued = cport::store::outbox::requeue(&t.state.db, push.id, now).await.unwrap();
    let cport::store::outbox::Requeue::Queued(at) = requeued else { panic!("{requeued:?}") };
    assert_eq!(at.timestamp(), starts.timestamp(), "it goes when its banner starts");
    assert!(cport::actions::outbox::queued_again(at, now).contains("when its banner starts"));
    assert!(cport::outbox::dispatch_batch_at(&t.state, now, 100).await.unwrap().is_empty(), "not before its start");
    let rows = cport::store::outbox::list_messages(&t.state.db, None, 100).await.unwrap();
    let again = rows.iter().find(|r| r.id == push.id).unwrap();
    assert_eq!((again.status.as_str(), again.message.next_attempt_at.timestamp()), ("queued", starts.timestamp()));
    let sent = cport::outbox::dispatch_batch_at(&t.state, starts + chrono::Duration::minutes(1), 100).await.unwrap();
    assert_eq!(sent.len(), posted.queued, "every push goes at the start");
}

/// A category a contact set to "not at all" is in none of their digests; switched to
/// instant later, what they had all along is no news, and an alert held by the batch window
/// goes to no one who turned alert emails off meanwhile.
#[tokio::test]
async fn a_category_set_off_is_in_no_message_and_alerts_follow_what_a_contact_turned_off() {
    use cport::model::AlertMode;
    use cport::store::settings::{get_settings, save_preferences};
    let (smtp, t) = mailing_world(|_| ()).await;
    let now = Utc::now();
    let mut s = get_settings(&t.state.db, "P-1A").await.unwrap();
    s.mode_awaiting_art = Some(AlertMode::Off);
    save_preferences(&t.state.db, &s, now).await.unwrap();
    for contact in ["P-1A", "P-1B"] {
        run_pass(&t.state, now, Some(contact), Trigger::Manual { force: false }).await.unwrap();
    }
    assert_eq!(drain(&t.state).await.unwrap().sent, 2);
    for (raw, envelope) in smtp.messages() {
        let text = parse(&raw).body_text(0).unwrap().into_owned();
        let ann = envelope["rcpt_tos"][0] == "ann@alpha.example";
        assert_eq!(text.contains("Artwork not yet received"), !ann, "{envelope}: {text}");
    }

    // The first look records every item, of every category; art switched to instant later
    // alerts nothing the contact already had.
    assert_eq!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap(), 0);
    s.mode_awaiting_art = Some(AlertMode::Instant);
    save_preferences(&t.state.db, &s, now).await.unwrap();
    assert_eq!(cport::digest::alerts::scan(&t.state, now + Duration::hours(2), None).await.unwrap(), 0);

    // A new visual: alerted at once. A second one waits for the batch window; Ann turns
    // alert emails off meanwhile, and hers is dropped, saying why.
    let visual = |id: &str| visual_of_job_1(id, "awaiting_approval");
    let later = now + Duration::hours(3);
    t.load(visual("V-80")).await;
    assert_eq!(cport::digest::alerts::scan(&t.state, later, None).await.unwrap(), 3);
    time_passes(&t.state.db, "WHERE status = 'queued'").await;
    assert_eq!(drain(&t.state).await.unwrap().sent, 3);
    t.load(visual("V-81")).await;
    assert_eq!(cport::digest::alerts::scan(&t.state, later + Duration::seconds(10), None).await.unwrap(), 3);
    let mut s = get_settings(&t.state.db, "P-1A").await.unwrap();
    s.email_alerts = false;
    save_preferences(&t.state.db, &s, later).await.unwrap();
    time_passes(&t.state.db, "WHERE status = 'queued'").await;
    let d = drain(&t.state).await.unwrap();
    assert_eq!((d.sent, d.dropped), (2, 1), "{d:?}");
    let rows = list_messages(&t.state.db, Some("dropped"), 10).await.unwrap();
    assert!(
        rows.iter().any(|r| r.message.recipient == "ann@alpha.example"
            && r.last_error.as_deref() == Some("the contact has turned these emails off since")),
        "{rows:?}"
    );

    // While they are off, what comes is recorded as seen for her: turned on again, her
    // alerts tell of what comes after, not of what her digests showed her meanwhile.
    t.load(visual("V-82")).await;
    let off = later + Duration::hours(1);
    assert_eq!(cport::digest::alerts::scan(&t.state, off, None).await.unwrap(), 2, "Bob and Vic");
    s.email_alerts = true;
    save_preferences(&t.state.db, &s, off).await.unwrap();
    let on = off + Duration::hours(1);
    assert_eq!(cport::digest::alerts::scan(&t.state, on, None).await.unwrap(), 0, "nothing new for Ann");
    t.load(visual("V-83")).await;
    assert_eq!(cport::digest::alerts::scan(&t.state, on + Duration::hours(1), None).await.unwrap(), 3);
}

/// Quiet hours hold every alert, not only its first try: a retry after a failure that would
/// fall inside them waits for their end; so does a staff reminder sent while they last, and
/// an alert already due when the contact set them (it goes back untried, its attempt kept).
#[tokio::test]
async fn quiet_hours_hold_an_alerts_retry_a_staff_reminder_and_one_already_due() {
    // A retry four minutes on (three at the least, with its jitter): inside quiet hours that
    // begin within two minutes, and a minute at the least after the first try.
    let (smtp, t) = mailing_world_with(
        |c| c.outbox.backoff_base_seconds = 240,
        |w| w["contacts"][0]["email"] = json!("tempfail@alpha.example"),
    )
    .await;
    let now = Utc::now();
    assert_eq!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap(), 0);
    t.load(json!({"visuals": [{"id": "V-10", "client_id": "C-1", "job_id": "J-1", "design_id": "V-10",
        "category": "Colour visual", "designer": "Des", "status": "awaiting_approval", "main_image": "/x.svg"}]}))
        .await;
    assert!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap() > 0);
    // Ann's quiet hours (UTC) begin at the second whole minute from now and end in two hours.
    let minute = |d: chrono::DateTime<Utc>| {
        d - Duration::seconds(d.second() as i64) - Duration::nanoseconds(d.nanosecond() as i64)
    };
    let (start, end) = (minute(now) + Duration::minutes(2), minute(now + Duration::hours(2)));
    let quiet = |id: &'static str, start: chrono::DateTime<Utc>| {
        let db = t.state.db.clone();
        async move {
            let mut s = cport::store::settings::get_settings(&db, id).await.unwrap();
            s.timezone = Some("UTC".into());
            s.quiet_start = Some(start.format("%H:%M").to_string());
            s.quiet_end = Some(end.format("%H:%M").to_string());
            cport::store::settings::save_preferences(&db, &s, now).await.unwrap();
        }
    };
    quiet("P-1A", start).await;

    // Its first try goes (quiet hours have not begun) and fails with a 451; the retry, four
    // minutes on, would fall inside them: it waits for their end.
    drain(&t.state).await.unwrap();
    let rows = list_messages(&t.state.db, None, 20).await.unwrap();
    let row = rows.iter().find(|r| r.message.contact_id.as_deref() == Some("P-1A")).expect("P-1A's alert");
    assert_eq!(row.status.as_str(), "failed", "{row:?}");
    assert!(row.last_error.as_deref().unwrap_or_default().contains("451"), "{row:?}");
    assert_eq!(row.message.next_attempt_at, end, "the retry waits for the quiet hours' end");

    // Bob's alert went; a reminder to him is due at once. His quiet hours, set now and
    // already begun, hold it when it comes to be sent: back in the queue, untried.
    let r = cport::actions::chase::remind(&t.state, "P-1B", "A1:V-10", now).await.unwrap();
    assert_eq!(r.held_until, None, "no quiet hours when it was queued");
    quiet("P-1B", minute(now) - Duration::hours(1)).await;
    let sent = smtp.messages().len();
    drain(&t.state).await.unwrap();
    assert_eq!(smtp.messages().len(), sent, "nothing sent to Bob in his quiet hours");
    let rows = list_messages(&t.state.db, None, 20).await.unwrap();
    let held = rows.iter().find(|r| r.message.idem_key.starts_with("remind:P-1B:")).expect("the reminder");
    assert_eq!((held.status.as_str(), held.attempts, held.message.next_attempt_at), ("queued", 0, end), "{held:?}");

    // Staff reminding Ann while her quiet hours last are told when it goes.
    let later = start + Duration::seconds(30);
    let r = cport::actions::chase::remind(&t.state, "P-1A", "A1:V-10", later).await.unwrap();
    assert_eq!(r.held_until, Some(end), "staff are told when it goes");
}

/// A visual that arrives while a staff reminder waits out the contact's quiet hours is news:
/// it is alerted on its own when they end, not added to the reminder (which would say it is
/// still waiting, as if the contact had heard of it).
#[tokio::test]
async fn news_during_a_held_reminder_is_alerted_on_its_own() {
    use cport::store::outbox::AlertPayload;
    let (_smtp, t) = mailing_world_with(|_| {}, |_| {}).await;
    let now = Utc::now();
    let visual = common::awaiting_visual_of_c1;
    cport::digest::alerts::scan(&t.state, now, None).await.unwrap();
    t.load(visual("V-10")).await;
    assert!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap() > 0);
    drain(&t.state).await.unwrap();
    // Ann's quiet hours (UTC) began an hour ago and last two more.
    let mut s = cport::store::settings::get_settings(&t.state.db, "P-1A").await.unwrap();
    s.timezone = Some("UTC".into());
    s.quiet_start = Some((now - Duration::hours(1)).format("%H:%M").to_string());
    s.quiet_end = Some((now + Duration::hours(2)).format("%H:%M").to_string());
    cport::store::settings::save_preferences(&t.state.db, &s, now).await.unwrap();
    let r = cport::actions::chase::remind(&t.state, "P-1A", "A1:V-10", now).await.unwrap();
    assert!(r.held_until.is_some(), "{r:?}");
    t.load(visual("V-11")).await;
    assert!(cport::digest::alerts::scan(&t.state, now, None).await.unwrap() > 0);
    let held: Vec<AlertPayload> = list_messages(&t.state.db, None, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.status.as_str() == "queued" && r.message.contact_id.as_deref() == Some("P-1A"))
        .map(|r| serde_json::from_str(&r.message.payload).unwrap())
        .collect();
    let reminder = held.iter().find(|p| p.reminder).expect("the reminder is held");
    assert_eq!(reminder.items, ["A1:V-10"], "{held:?}");
    let news = held.iter().find(|p| !p.reminder).expect("the news is an alert of its own");
    assert_eq!(news.items, ["A1:V-11"], "{held:?}");
}

/// A digest written for a contact's address before TOT changed it (waiting for a retry, or
/// held) goes to no address that is no longer theirs (it holds their signed links): it goes
/// written again for the one they have now, and the console shows where it went.
#[tokio::test]
async fn a_digest_for_an_address_the_contact_no_longer_has_goes_to_their_new_one() {
    let smtp = SmtpServer::start();
    let t = TestState::mailing(&smtp, |_| {}).await;
    common::digests_now(&t.state, &["P-1A"]).await;
    t.load(json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin",
        "email": "ann.new@alpha.example", "role": "admin"}]}))
        .await;
    let d = drain(&t.state).await.unwrap();
    assert_eq!((d.sent, d.dropped), (1, 0), "{d:?}");
    let sent = smtp.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1["rcpt_tos"], json!(["ann.new@alpha.example"]), "{:?}", sent[0].1);
    let text = parse(&sent[0].0).body_text(0).unwrap().into_owned();
    assert!(text.contains("ann.new@alpha.example") && !text.contains("ann@alpha.example"), "{text}");
    let row = list_messages(&t.state.db, None, 1).await.unwrap().remove(0);
    assert_eq!((row.status.as_str(), row.message.recipient.as_str()), ("sent", "ann.new@alpha.example"));
}

/// A digest written before TOT changed the contact's role goes showing only what the new
/// role sees (Ann, made finance, is shown the open third-party PO, not the visual, the job or
/// the artwork an admin was asked about).
#[tokio::test]
async fn a_digest_written_before_a_role_change_shows_only_what_the_new_role_sees() {
    let smtp = SmtpServer::start();
    let t = TestState::mailing(&smtp, |_| {}).await;
    common::digests_now(&t.state, &["P-1A"]).await;
    let written = list_messages(&t.state.db, None, 1).await.unwrap().remove(0);
    assert!(written.message.payload.contains("V-1"), "written for an admin");
    t.load(json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin",
        "email": "ann@alpha.example", "role": "finance"}]}))
        .await;
    let d = drain(&t.state).await.unwrap();
    assert_eq!(d.sent, 1, "{d:?}");
    let m = smtp.messages();
    let text = parse(&m[0].0).body_text(0).unwrap().into_owned();
    assert!(text.contains("PO-1"), "{text}");
    for hidden in ["V-1", "J-1", "AR-1", "Logo"] {
        assert!(!text.contains(hidden), "{hidden} is not a finance contact's to see: {text}");
    }
    let kept = list_messages(&t.state.db, None, 1).await.unwrap().remove(0);
    assert!(!kept.message.payload.contains("V-1"), "the console shows what went");
}

/// A sign-in link still waiting for the address TOT has since replaced (its mail server was
/// down) goes to no one: whoever reads the old address is not signed in as the contact.
#[tokio::test]
async fn a_sign_in_link_waiting_for_a_replaced_address_is_not_sent() {
    let smtp = SmtpServer::start();
    let t = TestState::mailing(&smtp, |_| {}).await;
    let ann = cport::store::contacts::get_contact(&t.state.db, "P-1A").await.unwrap();
    cport::actions::mail::send_login_link(&t.state, &ann, Utc::now()).await.unwrap();
    t.load(json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin",
        "email": "ann.new@alpha.example", "role": "admin"}]}))
        .await;
    let d = drain(&t.state).await.unwrap();
    assert_eq!((d.sent, d.dropped), (0, 1), "{d:?}");
    let row = list_messages(&t.state.db, None, 1).await.unwrap().remove(0);
    assert!(row.last_error.unwrap_or_default().contains("address has changed"));
    assert!(smtp.messages().is_empty());
}

/// An urgent banner's push waiting for its start goes to the address the contact has when it
/// starts, not to one TOT has since replaced.
#[tokio::test]
async fn an_urgent_banners_push_goes_to_the_address_the_contact_has_when_it_starts() {
    let (smtp, t) = mailing_world_with(|_| {}, |_| {}).await;
    let now = Utc::now();
    let mut input = urgent("Closed Friday", "Back on Monday.", "C-1");
    input.starts_at = Some(now + chrono::Duration::days(1));
    let posted = cport::actions::banners::post(&t.state, input, "test", now).await.unwrap();
    assert!(posted.queued > 0, "queued for its start");
    t.load(json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin",
        "email": "ann.new@alpha.example", "role": "admin"}]}))
        .await;
    let later = now + chrono::Duration::days(2);
    let went = cport::outbox::dispatch_batch_at(&t.state, later, 100).await.unwrap();
    assert_eq!(went.len(), posted.queued, "{went:?}");
    let to: Vec<String> =
        smtp.messages().iter().map(|(_, env)| env["rcpt_tos"][0].as_str().unwrap_or("").to_string()).collect();
    assert!(to.contains(&"ann.new@alpha.example".to_string()), "{to:?}");
    assert!(!to.contains(&"ann@alpha.example".to_string()), "{to:?}");
}
