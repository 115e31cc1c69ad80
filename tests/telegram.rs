//! Telegram end to end: the real teloxide client in cport long-polls a local fake of the Bot
//! API, which serves scripted updates and records what the bot sends back.

mod common;

use chrono::Utc;
use common::fake_telegram::FakeTelegram;
use common::{TestApp, TestState, load_world};
use cport::config::Config;
use serde_json::json;

const ANN: i64 = 4_001; // will link as Bob Buyer (P-1B)
const STRANGER: i64 = 4_002;
const STAFF: i64 = 4_900;

fn telegram(c: &mut Config, fake: &FakeTelegram) {
    c.telegram.token = cport::config::Secret::new("123456:TEST");
    c.telegram.api_url = fake.url.clone();
    c.telegram.poll_timeout_seconds = 1;
    // The fake has no limits; the throttle's own behaviour is not what these tests measure.
    c.telegram.messages_per_second = 1000;
    c.telegram.chat_messages_per_second = 1000;
    c.telegram.chat_messages_per_minute = 60_000;
    c.telegram.staff = vec![STAFF.to_string()];
}

/// A running app whose chat holds only the conversation a test has with it: no scheduled
/// digest or instant alert may land between a command and its answer.
fn conversation(c: &mut Config, fake: &FakeTelegram) {
    telegram(c, fake);
    common::no_instant_alerts(c);
}

/// The first bytes of a PNG picture (what TOT's visual files are, byte for byte, is not
/// what these tests look at).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR picture bytes";

/// A linking code from the portal's preferences page, as the contact would get it.
async fn code_from_portal(app: &TestApp, contact: &str) -> String {
    let b = app.signed_in(contact).await;
    let (_, page) = app.page(&b, "/preferences").await;
    let csrf = common::csrf_of(&page);
    let (status, _, html2) = app.post_raw(&b, "/preferences/chat-code", &[("csrf", csrf.as_str())]).await;
    assert_eq!(status, 200, "{html2}");
    let start = html2.find("class=\"code\">").expect("the page shows a code") + "class=\"code\">".len();
    html2[start..start + 9].to_string()
}

async fn extra_records(app: &TestApp) {
    app.synced(
        "deliveries",
        json!([{"id": "D-1", "client_id": "C-1", "job_id": "J-2", "status": "sent", "sent_date": "2026-11-24",
                    "venue": "Alpha HQ", "description": "Caps", "contact": "Bob",
                    "tracking": {"carrier": "DPD", "number": "155", "url": "https://track.example/155"},
                    "lines": [{"description": "Cap", "qty": 50}]}]),
    )
    .await;
    app.synced(
        "visuals",
        json!([{"id": "V-3", "client_id": "C-1", "job_id": "J-1", "design_id": "DS-3", "category": "Colour visual",
                    "designer": "Des", "status": "awaiting_approval", "main_image": "/media/v3.png"}]),
    )
    .await;
}

/// Queues answers to `chat` as a command's answers wait in the outbox, due `at`: each a title
/// and lines, under its own key. Gives their ids.
async fn queue_answers(
    db: &cport::store::Db,
    chat: i64,
    answers: &[(String, Vec<String>, String)],
    at: chrono::DateTime<Utc>,
) -> Vec<i64> {
    let mut tx = db.begin().await.unwrap();
    let mut ids = vec![];
    for (title, lines, key) in answers {
        let m = cport::messages::ChatMessage::text(title.clone(), lines.clone());
        let row = m.queued(
            None,
            cport::model::Chat::Telegram,
            &chat.to_string(),
            cport::model::MessageKind::Answer,
            key.clone(),
            at,
        );
        ids.push(cport::store::outbox::insert_message(&mut tx, &row, Utc::now()).await.unwrap().unwrap());
    }
    tx.commit().await.unwrap();
    ids
}

/// The world loaded, and cport talking to a fake Bot API.
async fn conversing() -> (FakeTelegram, TestApp) {
    let fake = FakeTelegram::start().await;
    let app = TestApp::spawn_with(|c| conversation(c, &fake)).await;
    load_world(&app).await;
    (fake, app)
}

/// [`conversing`] with the extra records, and Ann's chat linked to Bob Buyer (its first
/// answer, index 0, is the link's).
async fn linked() -> (FakeTelegram, TestApp) {
    let (fake, app) = conversing().await;
    extra_records(&app).await;
    let code = code_from_portal(&app, "P-1B").await;
    let m = fake.ask(ANN, &format!("/start {code}"), 0).await;
    assert!(m.text().contains("Linked"), "{}", m.text());
    (fake, app)
}

#[tokio::test]
async fn a_client_links_asks_and_approves_by_button() {
    let (fake, app) = conversing().await;
    extra_records(&app).await;

    // The bot registered its commands and chose long polling.
    let cmds = fake.wait_for("setMyCommands", 1).await;
    let names: Vec<&str> =
        cmds[0].body["commands"].as_array().unwrap().iter().map(|c| c["command"].as_str().unwrap()).collect();
    for want in ["help", "items", "track", "approve", "reject", "start", "unlink"] {
        assert!(names.contains(&want), "{want} registered: {names:?}");
    }

    // Someone unknown gets how to link, and nothing else.
    let m = fake.ask(STRANGER, "/items", 0).await;
    assert!(m.text().contains("not linked"), "{}", m.text());
    assert!(!m.text().contains("V-1"));

    // Linking with a code from the portal.
    let code = code_from_portal(&app, "P-1B").await;
    let m = fake.ask(ANN, &format!("/start {code}"), 0).await;
    assert!(m.text().contains("Linked") && m.text().contains("Bob Buyer"), "{}", m.text());
    assert_eq!(m.body["parse_mode"], "HTML");
    // A code works once.
    let m = fake.ask(STRANGER, &format!("/start {code}"), 1).await;
    assert!(m.text().contains("not valid"), "{}", m.text());

    // Enquiries.
    let m = fake.ask(ANN, "/track D-1", 1).await;
    assert!(m.text().contains("D-1") && m.text().contains("DPD"), "{}", m.text());
    let m = fake.ask(ANN, "/jobs", 2).await;
    assert!(m.text().contains("J-1") && m.text().contains("Tees"), "{}", m.text());
    assert!(!m.text().contains("J-9"), "another client's job never shows");
    let m = fake.ask(ANN, "/track", 3).await;
    assert!(m.text().contains("TRACK") && m.text().contains("Usage"), "{}", m.text());
    let m = fake.ask(ANN, "hello there", 4).await;
    assert!(m.text().contains("did not understand"), "{}", m.text());

    // Approve by button: one confirmation first, then the approval edits that message.
    fake.press(ANN, 500, "ap:V-1");
    let confirm = fake.next_to(ANN, 5).await;
    assert!(confirm.text().contains("Approve V-1?"), "{}", confirm.text());
    assert!(confirm.text().contains("Art"), "the charges are shown: {}", confirm.text());
    let buttons = confirm.buttons();
    let yes = buttons.iter().find(|(label, _)| label == "Yes, approve").map(|(_, d)| d.clone()).expect("{buttons:?}");
    assert!(yes.starts_with("ay:V-1:") && yes.len() == "ay:V-1:".len() + 8, "names what it showed: {yes}");
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval", "asking changes nothing");
    let confirm_id = 777;
    fake.press(ANN, confirm_id, &yes);
    let done = fake.next_to(ANN, 6).await;
    assert_eq!(done.method, "editMessageText");
    assert_eq!(done.body["message_id"], confirm_id);
    assert!(done.text().contains("Approved"), "{}", done.text());
    assert_eq!(app.visual_status("V-1").await, "approved");
    let answered = fake.wait_for("answerCallbackQuery", 2).await;
    assert_eq!(answered.len(), 2, "each button press is answered once");
    let feed = app.changes(0).await;
    let approved = feed.iter().find(|e| e["kind"] == "visual_approved").expect("approval in the feed");
    assert_eq!(approved["data"]["channel"], "telegram");

    // Reject: the reason is the next message.
    fake.press(ANN, 501, "rj:V-3");
    let ask = fake.next_to(ANN, 7).await;
    assert!(ask.text().contains("Why are you rejecting V-3"), "{}", ask.text());
    let m = fake.ask(ANN, "colours too dark", 8).await;
    assert!(m.text().contains("V-3 rejected"), "{}", m.text());
    assert_eq!(app.visual_status("V-3").await, "rejected");
    let feed = app.changes(0).await;
    let rejected = feed.iter().find(|e| e["kind"] == "visual_rejected").expect("rejection in the feed");
    assert_eq!(rejected["data"]["reason"], "colours too dark");

    // Unlink: back to a stranger.
    let m = fake.ask(ANN, "/unlink", 9).await;
    assert!(m.text().contains("no longer linked"), "{}", m.text());
    let m = fake.ask(ANN, "/items", 10).await;
    assert!(m.text().contains("not linked"), "{}", m.text());
    // The portal's Unlink from a page left open: nothing to unlink, and said so.
    let bob = app.signed_in("P-1B").await;
    let csrf = common::csrf_of(&app.shown(&bob, "/preferences").await);
    let ann = ANN.to_string();
    let unlink = [("csrf", csrf.as_str()), ("channel", "telegram"), ("user", ann.as_str())];
    let (status, location, _) = app.post_raw(&bob, "/preferences/chat-unlink", &unlink).await;
    assert_eq!(status, 303);
    let page = app.shown(&bob, &location).await;
    assert!(page.contains("That chat is not linked to you (any more): nothing to unlink."), "{page}");
    // Linked again, then unlinked by two clicks at once: one unlinks, the other is told.
    let code = code_from_portal(&app, "P-1B").await;
    let m = fake.ask(ANN, &format!("/start {code}"), 11).await;
    assert!(m.text().contains("Linked"), "{}", m.text());
    let csrf = common::csrf_of(&app.shown(&bob, "/preferences").await);
    let unlink = [("csrf", csrf.as_str()), ("channel", "telegram"), ("user", ann.as_str())];
    let (one, two) = tokio::join!(
        app.post_raw(&bob, "/preferences/chat-unlink", &unlink),
        app.post_raw(&bob, "/preferences/chat-unlink", &unlink)
    );
    let mut notes = Vec::new();
    for (status, location, _) in [one, two] {
        assert_eq!(status, 303);
        notes.push(app.shown(&bob, &location).await.contains("The chat is unlinked."));
    }
    assert_eq!(notes.iter().filter(|n| **n).count(), 1, "one of the two unlinked it");
    let odd = [("csrf", csrf.as_str()), ("channel", "pigeon"), ("user", ann.as_str())];
    let (status, _, html) = app.post_raw(&bob, "/preferences/chat-unlink", &odd).await;
    assert!(status == 422 && html.contains("channel: `pigeon` is not telegram or discord"), "{status} {html}");
    app.stop().await;
}

#[tokio::test]
async fn long_answers_come_in_pages_with_a_more_button() {
    let (fake, app) = conversing().await;
    let jobs: Vec<_> = (10..40)
        .map(|i| json!({"id": format!("J-{i}"), "client_id": "C-1", "name": format!("Run {i}"), "status": "in_production"}))
        .collect();
    app.synced("jobs", json!(jobs)).await;
    let code = code_from_portal(&app, "P-1A").await;
    fake.say(ANN, &format!("/start {code}"));
    fake.next_to(ANN, 0).await;
    let first = fake.ask(ANN, "/jobs", 1).await;
    // Thirty rows at the most in a chat: the heading says how many there are in all.
    assert!(first.text().contains("open job(s), the first 30 here"), "{}", first.text());
    let more = first.buttons();
    let (label, data) = more.first().expect("a More button").clone();
    assert!(label.starts_with("More"), "{label}");
    assert_eq!(data, "mo:12:jobs");
    let shown_first = first.text().lines().count();
    fake.press(ANN, 600, &data);
    let second = fake.next_to(ANN, 2).await;
    assert!(second.text().contains("(continued)"), "{}", second.text());
    let first_text = first.text();
    let firsts: Vec<&str> = first_text.lines().skip(1).collect();
    assert!(
        second.text().lines().skip(1).all(|l| !firsts.contains(&l)),
        "page two repeats nothing of page one ({shown_first} lines)"
    );
    app.stop().await;
}

#[tokio::test]
async fn staff_broadcast_and_outbox_and_nobody_else() {
    let (fake, app) = conversing().await;
    let m = fake.ask(STRANGER, "/broadcast urgent Closed | We are closed on Friday", 0).await;
    assert!(m.text().contains("staff only"), "{}", m.text());
    assert_eq!(app.count("banners").await, 0);
    let m = fake.ask(STAFF, "/broadcast loud Closed | Friday", 0).await;
    assert!(m.text().contains("severity"), "the bad field is named: {}", m.text());
    assert_eq!(app.count("banners").await, 0);
    let m = fake.ask(STAFF, "/broadcast urgent Closed Friday | The works are closed on Friday 27th.", 1).await;
    assert!(m.text().contains("Banner") && m.text().contains("posted"), "{}", m.text());
    assert_eq!(app.count("banners").await, 1);
    let m = fake.ask(STAFF, "/outbox", 2).await;
    assert!(m.text().contains("Outbox") && m.text().contains(':'), "{}", m.text());
    app.stop().await;
}

/// A mail server that takes the connection and never says a word holds up no chat message:
/// email and chat have senders of their own. (With one sender for both, this chat answer
/// waited behind the email for as long as the mail server's time-out.)
#[tokio::test]
async fn a_mail_server_that_does_not_answer_holds_up_no_chat_message() {
    let fake = FakeTelegram::start().await;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let app = TestApp::spawn_with(|c| {
        conversation(c, &fake);
        common::smtp_config(c, port);
        c.smtp.timeout_seconds = 3600;
        c.outbox.send_timeout_seconds = 3600;
        c.outbox.workers = 1;
    })
    .await;
    load_world(&app).await;
    let token = common::digest_to_reply_to(&app.db, &app.state.signer, "P-1B", "bob@alpha.example").await;
    let email = format!("test:{token}");
    cport::store::on_db!(&app.db, p => sqlx::query("UPDATE outbox SET next_attempt_at = $1 WHERE idem_key = $2")
        .bind(Utc::now()).bind(&email).execute(p).await.map(|_| ()))
    .unwrap();
    app.state.wake_dispatch.notify_waiters();
    let status = || async {
        let (s,): (String,) =
            cport::store::on_db!(&app.db, p => sqlx::query_as("SELECT status FROM outbox WHERE idem_key = $1")
            .bind(&email).fetch_one(p).await)
            .unwrap();
        s
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while status().await != "sending" {
        assert!(std::time::Instant::now() < deadline, "the email was never taken to be sent");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    queue_answers(&app.db, ANN, &[("Approved".into(), vec!["V-1 is approved.".into()], "answer:1".into())], Utc::now())
        .await;
    app.state.wake_dispatch.notify_waiters();
    let sent = fake.wait_for("sendMessage", 1).await;
    assert!(sent[0].text().contains("V-1 is approved"), "{}", sent[0].text());
    assert_eq!(status().await, "sending", "the email still waits on its silent server");
    drop(silent);
}

/// The app in webhook mode, with the secret Telegram will send.
async fn webhook_app(fake: &FakeTelegram) -> TestApp {
    TestApp::spawn_with(|c| {
        conversation(c, fake);
        c.telegram.mode = cport::config::TelegramMode::Webhook;
        c.telegram.webhook_secret = cport::config::Secret::new("a-long-webhook-secret");
    })
    .await
}

#[tokio::test]
async fn webhook_mode_checks_the_secret_token() {
    let fake = FakeTelegram::start().await;
    let app = webhook_app(&fake).await;
    let set = fake.wait_for("setWebhook", 1).await;
    assert!(set[0].body["url"].as_str().unwrap().ends_with("/telegram/webhook"));
    assert_eq!(set[0].body["secret_token"], "a-long-webhook-secret");
    let update = json!({"update_id": 1, "message": {"message_id": 1, "date": 0,
        "chat": {"id": STRANGER, "type": "private", "first_name": "S"},
        "from": {"id": STRANGER, "is_bot": false, "first_name": "S"}, "text": "/help"}});
    let post = |secret: &'static str| {
        app.http
            .post(app.url("/telegram/webhook"))
            .header("X-Telegram-Bot-Api-Secret-Token", secret)
            .json(&update)
            .send()
    };
    assert_eq!(post("wrong").await.unwrap().status().as_u16(), 401);
    assert!(fake.to_chat(STRANGER).is_empty(), "a forged update is not answered");
    assert_eq!(post("a-long-webhook-secret").await.unwrap().status().as_u16(), 200);
    let m = fake.next_to(STRANGER, 0).await;
    assert!(m.text().contains("not linked"));
    // Telegram re-delivering the same update does not answer twice.
    assert_eq!(post("a-long-webhook-secret").await.unwrap().status().as_u16(), 200);
    let secret = [("X-Telegram-Bot-Api-Secret-Token", "a-long-webhook-secret")];
    let r = app.post_with(&app.http, "/telegram/webhook", &secret, "not json").await;
    assert_eq!(r.status().as_u16(), 400);
    let said: serde_json::Value = r.json().await.unwrap();
    assert_eq!(said["error"], "body is not a Telegram update", "refused in cport's error shape: {said}");
    fake.say(STRANGER, "/help"); // not polled in webhook mode
    assert_eq!(fake.to_chat(STRANGER).len(), 1);
    assert!(fake.calls_of("getUpdates").is_empty(), "webhook mode does not poll");
    app.stop().await;
}

async fn linked_state(fake: &FakeTelegram) -> TestState {
    let t = TestState::new(|c| {
        telegram(c, fake);
        c.public_url = "https://portal.tot.example".into();
    })
    .await;
    t.load(common::world()).await;
    common::link_chat(&t.state, cport::model::Channel::Telegram, "/start", &ANN.to_string(), "P-1A").await;
    t
}

#[tokio::test]
async fn alerts_and_digests_reach_a_linked_chat_with_picture_and_buttons() {
    let fake = FakeTelegram::start().await;
    let t = linked_state(&fake).await;
    let media = t.state.config.data_dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::write(media.join("v5.png"), PNG).unwrap();
    let now = Utc::now();
    // The first scan is the baseline; a visual that arrives after it is news.
    cport::digest::alerts::scan(&t.state, now, None).await.unwrap();
    t.load(json!({"visuals": [{"id": "V-5", "client_id": "C-1", "job_id": "J-1", "design_id": "DS-5",
        "category": "Colour visual", "designer": "Des", "status": "awaiting_approval",
        "main_image": "/media/v5.png", "charges": [{"description": "Screen", "qty": 1, "unit_price": 30}]}]}))
        .await;
    cport::digest::alerts::scan(&t.state, now, None).await.unwrap();
    let to_chat: Vec<_> = cport::store::outbox::list_messages(&t.state.db, None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.message.channel.as_str() == "telegram")
        .collect();
    assert_eq!(to_chat.len(), 1, "one alert for the one linked chat");
    assert_eq!((to_chat[0].message.kind.as_str(), to_chat[0].message.recipient.as_str()), ("alert", "4001"));
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!(r.dead, 0, "{r:?}");
    let photo = fake.wait_for("sendPhoto", 1).await.remove(0);
    assert_eq!(photo.chat(), ANN);
    // The picture is private: its bytes are uploaded, no address is handed to Telegram.
    let sum: u64 = PNG.iter().map(|b| u64::from(*b)).sum();
    assert_eq!(photo.body["photo"], json!({"file_name": "v5.png", "size": PNG.len(), "sum": sum}));
    assert!(photo.text().contains("V-5"), "{}", photo.text());
    let labels: Vec<String> = photo.buttons().into_iter().map(|b| b.0).collect();
    assert_eq!(labels, ["Approve", "Reject", "Open"]);
    let open = photo.buttons()[2].1.clone();
    assert!(open.starts_with("https://portal.tot.example/l/"), "{open}");

    // The digest goes to the chat too, banners and items in it.
    let report = common::digest_now(&t.state, "P-1A").await;
    assert_eq!(report.queued, 2, "{report:?}");
    cport::outbox::drain(&t.state).await.unwrap();
    let digest = fake.wait_for("sendMessage", 1).await.pop().unwrap();
    assert_eq!(digest.chat(), ANN);
    assert!(digest.text().contains("need you") && digest.text().contains("V-5"), "{}", digest.text());
}

/// A link code made before TOT gave its contact another address (mailed to the old one)
/// ties no chat; one made since does.
#[tokio::test]
async fn a_code_made_before_an_address_change_ties_no_chat() {
    let fake = FakeTelegram::start().await;
    let t = TestState::new(|c| telegram(c, &fake)).await;
    t.load(common::world()).await;
    let code = cport::actions::chat_link::new_link_code(&t.state, "P-1A", Utc::now()).await.unwrap();
    t.load(json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin",
        "email": "ann.new@alpha.example", "role": "admin"}]}))
        .await;
    let said = common::say_in_chat(&t.state, cport::model::Channel::Telegram, "4001", &format!("/start {code}")).await;
    assert!(format!("{said:?}").contains("That code is not valid"), "{said:?}");
    common::link_chat(&t.state, cport::model::Channel::Telegram, "/start", "4001", "P-1A").await;
    let linked = cport::store::chat::chats_of_contact(&t.state.db, "P-1A").await.unwrap();
    assert_eq!(linked.len(), 1, "a code made since ties the chat: {linked:?}");
    // Nor does a code of a contact TOT has made inactive since tie anything: a chat tied to
    // another contact keeps that tie, and is not told it is linked.
    common::link_chat(&t.state, cport::model::Channel::Telegram, "/start", "4002", "P-1B").await;
    let code = cport::actions::chat_link::new_link_code(&t.state, "P-1A", Utc::now()).await.unwrap();
    t.load(json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin",
        "email": "ann.new@alpha.example", "role": "admin", "active": false}]}))
        .await;
    let said = common::say_in_chat(&t.state, cport::model::Channel::Telegram, "4002", &format!("/start {code}")).await;
    assert!(format!("{said:?}").contains("That code is not valid"), "{said:?}");
    let bobs = cport::store::chat::chats_of_contact(&t.state.db, "P-1B").await.unwrap();
    assert_eq!(bobs.len(), 1, "Bob's chat is still his: {bobs:?}");
}

/// A chat tied by a code (a code had by reading the contact's address) is untied when TOT
/// gives the contact another address: whoever read the old one no longer acts or hears as
/// the contact in chat. The same address in other case is no change.
#[tokio::test]
async fn a_new_address_unties_the_chats_tied_by_a_code() {
    let fake = FakeTelegram::start().await;
    let t = TestState::new(|c| telegram(c, &fake)).await;
    t.load(common::world()).await;
    common::link_chat(&t.state, cport::model::Channel::Telegram, "/start", "4001", "P-1A").await;
    let ann = |email: &str| json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin", "email": email, "role": "admin"}]});
    let chats = || async { cport::store::chat::chats_of_contact(&t.state.db, "P-1A").await.unwrap() };
    t.load(ann("ANN@alpha.example")).await;
    assert_eq!(chats().await.len(), 1, "the same address: still tied");
    t.load(ann("ann.new@alpha.example")).await;
    assert!(chats().await.is_empty(), "untied by the new address");
    let said = common::say_in_chat(&t.state, cport::model::Channel::Telegram, "4001", "/items").await;
    assert!(!format!("{said:?}").contains("V-1"), "the untied chat hears nothing of the contact's: {said:?}");
}

/// A chat untied and tied again starts from what needs the contact then, as a first tie
/// does: what came up while it was untied (told by email) is not alerted to it all at once;
/// what comes after is. Alike when the contact unlinks and links it again, and when TOT's
/// record clears the chat and gives it again.
#[tokio::test]
async fn a_chat_tied_again_is_not_alerted_what_came_while_it_was_untied() {
    let fake = FakeTelegram::start().await;
    let ann_chat = |chat: Option<i64>| {
        json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin", "email": "ann@alpha.example",
                             "role": "admin", "telegram_chat_id": chat}]})
    };
    for by_record in [false, true] {
        let t = match by_record {
            false => linked_state(&fake).await,
            true => {
                let t = TestState::new(|c| telegram(c, &fake)).await;
                t.load(common::world()).await;
                t.load(ann_chat(Some(ANN))).await;
                t
            }
        };
        let now = Utc::now();
        let visual = common::awaiting_visual_of_c1;
        let chat_alerts = || async {
            cport::store::outbox::list_messages(&t.state.db, None, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|m| m.message.channel.as_str() == "telegram" && m.message.kind.as_str() == "alert")
                .count()
        };
        cport::digest::alerts::scan(&t.state, now, None).await.unwrap();
        match by_record {
            true => t.load(ann_chat(None)).await,
            false => {
                common::say_in_chat(&t.state, cport::model::Channel::Telegram, &ANN.to_string(), "/unlink").await;
            }
        }
        t.load(visual("V-5")).await;
        cport::digest::alerts::scan(&t.state, now, None).await.unwrap();
        match by_record {
            true => t.load(ann_chat(Some(ANN))).await,
            false => {
                common::link_chat(&t.state, cport::model::Channel::Telegram, "/start", &ANN.to_string(), "P-1A").await;
            }
        }
        cport::digest::alerts::scan(&t.state, now + chrono::Duration::hours(2), None).await.unwrap();
        assert_eq!(chat_alerts().await, 0, "V-5 came while the chat was untied (by record: {by_record})");
        t.load(visual("V-6")).await;
        cport::digest::alerts::scan(&t.state, now + chrono::Duration::hours(3), None).await.unwrap();
        assert_eq!(chat_alerts().await, 1, "V-6 came after it was tied again (by record: {by_record})");
    }
}

/// A picture Telegram refuses (too large, an address it cannot fetch) does not cost the
/// alert: it goes as text, with its buttons.
#[tokio::test]
async fn an_alert_whose_picture_is_refused_goes_as_text() {
    let fake = FakeTelegram::start().await;
    let t = linked_state(&fake).await;
    let now = Utc::now();
    cport::digest::alerts::scan(&t.state, now, None).await.unwrap();
    t.load(json!({"visuals": [{"id": "V-5", "client_id": "C-1", "job_id": "J-1", "design_id": "DS-5",
        "category": "Colour visual", "designer": "Des", "status": "awaiting_approval",
        "main_image": "https://img.tot.example/v5-huge.png"}]}))
        .await;
    cport::digest::alerts::scan(&t.state, now, None).await.unwrap();
    fake.refuse("sendPhoto", 1);
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!(r.dead, 0, "{r:?}");
    assert_eq!(fake.calls_of("sendPhoto").len(), 1, "the picture was tried");
    let text = fake.wait_for("sendMessage", 1).await.pop().unwrap();
    assert_eq!(text.chat(), ANN);
    assert!(text.text().contains("V-5"), "{}", text.text());
    let labels: Vec<String> = text.buttons().into_iter().map(|b| b.0).collect();
    assert_eq!(labels, ["Approve", "Reject", "Open"]);
}

/// The test world, sending to the fake with `per_minute` messages a minute to one chat.
async fn paced(fake: &FakeTelegram, per_minute: u32) -> TestState {
    let t = TestState::new(|c| {
        telegram(c, fake);
        c.telegram.chat_messages_per_minute = per_minute;
    })
    .await;
    t.load(common::world()).await;
    t
}

/// A message whose chat's turn is far off (Telegram allows one here a minute) is not waited
/// for by a sender: it is sent again at its turn, without counting as a failed try.
#[tokio::test]
async fn a_sender_does_not_wait_long_for_a_chats_turn() {
    use cport::channels::chat::ChatMessage;
    let fake = FakeTelegram::start().await;
    let t = paced(&fake, 1).await;
    let now = Utc::now();
    let mut tx = t.state.db.begin().await.unwrap();
    for i in 0..2 {
        let row = ChatMessage::text(format!("Note {i}"), vec![]).queued(
            None,
            cport::model::Chat::Telegram,
            &ANN.to_string(),
            cport::model::MessageKind::Answer,
            format!("test:{i}"),
            now,
        );
        cport::store::outbox::insert_message(&mut tx, &row, now).await.unwrap();
    }
    tx.commit().await.unwrap();
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!((r.sent, r.retrying, r.dead), (1, 1, 0), "{r:?}");
    assert!(cport::store::outbox::list_messages(&t.state.db, Some("failed"), 10).await.unwrap().is_empty());
    let rows = cport::store::outbox::list_messages(&t.state.db, Some("queued"), 10).await.unwrap();
    assert_eq!(rows.len(), 1, "waiting for its turn, not failed");
    assert_eq!(rows[0].attempts, 0, "a turn not come is no failed try");
    assert!(rows[0].message.next_attempt_at > now + chrono::Duration::seconds(30), "sent again at its turn: {rows:?}");
}

#[tokio::test]
async fn a_429_is_honoured_and_the_message_sent_after_the_wait() {
    let fake = FakeTelegram::start().await;
    let t = linked_state(&fake).await;
    fake.throttle("sendMessage", 1, 1);
    let now = Utc::now();
    common::digest_now(&t.state, "P-1A").await;
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!((r.sent, r.retrying, r.dead), (1, 1, 0), "email went, Telegram said wait");
    assert!(cport::store::outbox::list_messages(&t.state.db, Some("failed"), 10).await.unwrap().is_empty());
    let rows = cport::store::outbox::list_messages(&t.state.db, Some("queued"), 10).await.unwrap();
    assert_eq!(rows.len(), 1, "queued again for after the wait");
    assert_eq!(rows[0].message.channel.as_str(), "telegram");
    assert_eq!(rows[0].attempts, 0, "a rate limit does not use up an attempt");
    assert!(rows[0].last_error.as_deref().unwrap_or("").contains("retry after"));
    let wait = rows[0].message.next_attempt_at - now;
    assert!(wait >= chrono::Duration::milliseconds(900), "due after retry_after: {wait}");
    // Once due, it goes.
    let later = cport::outbox::dispatch_batch_at(&t.state, rows[0].message.next_attempt_at, 16).await.unwrap();
    assert_eq!(later, vec![cport::outbox::Outcome::Sent]);
    let sent = fake.calls_of("sendMessage");
    assert_eq!(sent.len(), 2, "the refused call, then the one that went");
    // A message still refused so a day after it was queued (a limit that never lifts)
    // counts its tries from then, and goes dead once they are spent.
    let force = cport::digest::scheduler::Trigger::Manual { force: true };
    cport::digest::scheduler::run_pass(&t.state, Utc::now(), Some("P-1A"), force).await.unwrap();
    cport::store::on_db!(&t.state.db, p => sqlx::query("UPDATE outbox SET created_at = $1 WHERE status = 'queued'")
        .bind(now - chrono::Duration::days(2)).execute(p).await.map(|_| ()))
    .unwrap();
    fake.throttle("sendMessage", 1, 1000);
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!(r.retrying, 1, "{r:?}");
    let rows = cport::store::outbox::list_messages(&t.state.db, Some("failed"), 10).await.unwrap();
    assert!(rows.len() == 1 && rows[0].attempts == 1, "a failed try: {rows:?}");
    assert!(rows[0].last_error.as_deref().unwrap_or("").contains("more than a day"), "{rows:?}");
}

#[tokio::test]
async fn old_codes_and_seen_updates_are_pruned() {
    let fake = FakeTelegram::start().await;
    let t = linked_state(&fake).await;
    let now = Utc::now();
    cport::actions::chat_link::new_link_code(&t.state, "P-1B", now).await.unwrap();
    let mut tx = t.state.db.begin().await.unwrap();
    cport::store::chat::first_sighting(&mut tx, cport::model::Channel::Telegram, "77", now).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(cport::store::chat::prune(&t.state.db, now).await.unwrap(), 0, "nothing is old yet");
    let later = now + chrono::Duration::days(8);
    assert_eq!(
        cport::store::chat::prune(&t.state.db, later).await.unwrap(),
        3,
        "two codes (one used to link) and one update id"
    );
    // The link made with a code stays.
    assert_eq!(cport::store::chat::chats_of_contact(&t.state.db, "P-1A").await.unwrap().len(), 1);
}

#[tokio::test]
async fn only_a_contacts_newest_codes_link() {
    use cport::actions::chat_link::{LIVE_CODES, hash_code, new_link_code};
    let fake = FakeTelegram::start().await;
    let t = linked_state(&fake).await;
    let now = Utc::now();
    let mut codes = vec![];
    for i in 0..LIVE_CODES + 2 {
        codes.push(new_link_code(&t.state, "P-1B", now + chrono::Duration::seconds(i)).await.unwrap());
    }
    let redeem = |code: String, user: &'static str| {
        let db = t.state.db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            let who = cport::store::chat::redeem_code(
                &mut tx,
                &hash_code(&code),
                cport::model::Channel::Telegram,
                user,
                user,
                now + chrono::Duration::minutes(1),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            who
        }
    };
    assert_eq!(redeem(codes[0].clone(), "501").await, None, "the oldest code was voided by newer ones");
    assert_eq!(redeem(codes[1].clone(), "502").await, None);
    assert_eq!(redeem(codes[2].clone(), "503").await.as_deref(), Some("P-1B"), "the newest three work");
    assert_eq!(redeem(codes.last().unwrap().clone(), "504").await.as_deref(), Some("P-1B"));
}

#[tokio::test]
async fn a_bot_whose_command_menu_is_refused_still_answers() {
    let fake = FakeTelegram::start().await;
    // Telegram refuses the menu for the whole test (each try is answered "retry in 600 s").
    fake.throttle("setMyCommands", 600, 100);
    let app = TestApp::spawn_with(|c| conversation(c, &fake)).await;
    load_world(&app).await;
    let m = fake.ask(STRANGER, "/help", 0).await;
    assert!(!m.text().is_empty(), "the bot answers without its menu");
    assert!(!fake.calls_of("setMyCommands").is_empty(), "the menu was asked for");
    app.stop().await;
}

#[tokio::test]
async fn a_poller_that_panics_is_restarted_and_answers_again() {
    let (fake, app) = conversing().await;
    fake.wait_for("setMyCommands", 1).await;
    app.state.faults.arm("task:telegram", 1);
    // The poller panics at its next turn; /healthz names it until it is back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let body = loop {
        let r = app.http.get(app.url("/healthz")).send().await.unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        if status == 503 {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "healthz stayed {status}: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(body["status"].as_str().unwrap().contains("telegram"), "{body}");
    // Restarted, it registers again and answers commands.
    fake.wait_for("setMyCommands", 2).await;
    let m = fake.ask(STRANGER, "/help", 0).await;
    assert!(!m.text().is_empty());
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    app.stop().await;
}

/// cport stopped between an update's commit and its answer (here: the answer never sent,
/// then the poller gone before it told Telegram the update was read): Telegram delivers the
/// update again, and the chat is told it was done, rather than left without a word. It is
/// not run twice.
#[tokio::test]
async fn an_update_done_but_never_answered_is_told_so_when_delivered_again() {
    let (fake, app) = linked().await;
    // Armed once the poller is waiting again (the linking batch is behind it).
    let polls = fake.polls().0.len();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fake.polls().0.len() <= polls {
        assert!(std::time::Instant::now() < deadline, "the poller never asked again");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    app.state.faults.arm("telegram:before-answer", 1);
    app.state.faults.arm("telegram:after-batch", 1);
    fake.say(ANN, "/approve V-1");
    let told = fake.next_to(ANN, 1).await;
    assert!(told.text().contains("received and done"), "{}", told.text());
    assert_eq!(app.visual_status("V-1").await, "approved");
    let approvals = app.changes(0).await.iter().filter(|e| e["kind"] == "visual_approved").count();
    assert_eq!(approvals, 1, "run once");
    // Answered now: asked again, the chat is answered as usual.
    let m = fake.ask(ANN, "/items", 2).await;
    assert!(!m.text().contains("received and done"), "{}", m.text());
    app.stop().await;
}

#[tokio::test]
async fn a_webhook_update_that_fails_is_refused_so_telegram_sends_it_again() {
    let fake = FakeTelegram::start().await;
    let app = webhook_app(&fake).await;
    fake.wait_for("setWebhook", 1).await;
    let update = json!({"update_id": 7, "message": {"message_id": 1, "date": 0,
        "chat": {"id": STRANGER, "type": "private", "first_name": "S"},
        "from": {"id": STRANGER, "is_bot": false, "first_name": "S"}, "text": "/help"}});
    let post = || {
        app.http
            .post(app.url("/telegram/webhook"))
            .header("X-Telegram-Bot-Api-Secret-Token", "a-long-webhook-secret")
            .json(&update)
            .send()
    };
    app.state.faults.arm("chat:before-record", 1);
    assert_eq!(post().await.unwrap().status().as_u16(), 503, "Telegram is asked to retry");
    assert_eq!(app.count("chat_updates").await, 0, "nothing recorded");
    assert!(fake.to_chat(STRANGER).is_empty(), "nothing answered");
    assert_eq!(post().await.unwrap().status().as_u16(), 200);
    let m = fake.next_to(STRANGER, 0).await;
    assert!(m.text().contains("not linked"));
    assert_eq!(post().await.unwrap().status().as_u16(), 200);
    assert_eq!(app.count("chat_updates").await, 1);
    assert_eq!(fake.to_chat(STRANGER).len(), 1, "answered once");
    app.stop().await;
}

#[tokio::test]
async fn two_processes_on_one_store_send_no_faster_to_one_chat_than_one_does() {
    let fake = FakeTelegram::start().await;
    // One message a second to a chat, as Telegram asks.
    let paced = |c: &mut Config| {
        telegram(c, &fake);
        c.telegram.chat_messages_per_second = 1;
    };
    let a = TestState::new(paced).await;
    let b = a.beside(paced).await;
    let send = |t: &TestState, n: usize| {
        let sender = t.state.chat[&cport::model::Chat::Telegram].clone();
        async move {
            let m = cport::channels::chat::ChatMessage::text(format!("message {n}"), vec![]);
            let to = ANN.to_string();
            // A turn further off than a sender waits (the fourth's, three seconds away, when
            // the others have taken theirs first) is answered "retry after", and the outbox
            // would send it then: so is it here, once.
            match sender.send(&to, &m).await {
                Err(cport::channels::SendError::RateLimited(wait)) => {
                    tokio::time::sleep(wait).await;
                    sender.send(&to, &m).await.expect("sent after the wait it was given")
                }
                sent => sent.expect("sent"),
            }
        }
    };
    // Two messages from each process at once, to the same chat.
    tokio::join!(send(&a, 1), send(&b, 2), send(&a, 3), send(&b, 4));
    let mut times: Vec<_> = fake.to_chat(ANN).into_iter().filter(|c| c.method == "sendMessage").map(|c| c.at).collect();
    times.sort();
    assert_eq!(times.len(), 4);
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        // Each process alone would send its two at once, the two together two pairs at
        // once; one shared pace spaces all four a second apart. Half a second leaves room
        // for one request taking longer than the next (a new connection, a busy machine).
        assert!(gap >= std::time::Duration::from_millis(500), "{gap:?} between two messages to one chat");
    }
}

/// NUL characters in what a chat sends (a link code, a command's id or text) get a plain
/// answer on both engines (PostgreSQL refuses NUL in text, even to look it up), and the bot
/// goes on answering.
/// A chat just linked is offered the commands its contact's role may send, as an email's
/// footer offers them: a finance contact is not told to try /jobs, which it may not ask.
#[tokio::test]
async fn a_chat_just_linked_is_offered_what_its_role_may_ask() {
    let (fake, app) = conversing().await;
    let code = code_from_portal(&app, "P-1F").await;
    let m = fake.ask(ANN, &format!("/start {code}"), 0).await;
    assert!(m.text().contains("Linked") && m.text().contains("/invoices"), "{}", m.text());
    assert!(!m.text().contains("/jobs") && m.text().contains("/help"), "{}", m.text());
    let code = code_from_portal(&app, "P-1B").await;
    let m = fake.ask(STRANGER, &format!("/start {code}"), 0).await;
    assert!(m.text().contains("Try /items, /jobs, /track") && m.text().contains("or /help;"), "{}", m.text());
    app.stop().await;
}

/// RESET from a chat whose contact's email is suspended after bounces sends nothing that
/// would only go dead: the answer says why and what to do.
#[tokio::test]
async fn reset_from_a_chat_says_when_email_is_suspended() {
    let (fake, app) = linked().await;
    cport::store::on_db!(&app.db, p => sqlx::query(
        "INSERT INTO contact_settings (contact_id, email_enabled, email_suspended_at, email_suspended_reason, soft_bounces, updated_at)
         VALUES ('P-1B', TRUE, $1, '550 mailbox unavailable', 0, $1)
         ON CONFLICT (contact_id) DO UPDATE SET email_suspended_at = excluded.email_suspended_at,
           email_suspended_reason = excluded.email_suspended_reason").bind(chrono::Utc::now()).execute(p).await.map(|_| ()))
    .unwrap();
    let outbox = app.count("outbox").await;
    let m = fake.ask(ANN, "/reset", 1).await;
    assert!(
        m.text().contains("is suspended (550 mailbox unavailable), so no password-reset link was sent"),
        "{}",
        m.text()
    );
    assert_eq!(app.count("outbox").await, outbox, "nothing queued");
    app.stop().await;
}

#[tokio::test]
async fn nul_characters_in_a_chat_get_an_answer_and_the_bot_goes_on() {
    let (fake, app) = conversing().await;
    let m = fake.ask(STRANGER, "/start ab\u{0}cd", 0).await;
    assert!(m.text().contains("not valid"), "{}", m.text());
    let code = code_from_portal(&app, "P-1B").await;
    let m = fake.ask(ANN, &format!("/start {code}"), 0).await;
    assert!(m.text().contains("Linked"), "{}", m.text());
    let m = fake.ask(ANN, "/reject V-1 too\u{0} dark", 1).await;
    assert!(!m.text().is_empty());
    let m = fake.ask(ANN, "/track D-\u{0}1", 2).await;
    assert!(!m.text().is_empty());
    let m = fake.ask(ANN, "/jobs", 3).await;
    assert!(m.text().contains("J-1"), "the bot still answers: {}", m.text());
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval");
    app.stop().await;
}

#[tokio::test]
async fn a_command_naming_a_visual_twice_answers_for_each_visual_once() {
    let (fake, app) = linked().await;

    // A list naming a visual that is not hers (a typo) approves nothing, and says which.
    let m = fake.ask(ANN, "/approve V-1,V-404", 1).await;
    let text = m.text();
    assert!(text.contains("no visual `V-404` among yours; nothing was approved"), "{text}");
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval");

    let m = fake.ask(ANN, "/approve V-1,V-1", 2).await;
    let text = m.text();
    assert!(text.contains("V-1: approved"), "{text}");
    assert_eq!(text.matches("V-1:").count(), 1, "V-1 is answered for once: {text}");
    assert_eq!(app.visual_status("V-1").await, "approved");
    let feed = app.changes(0).await;
    assert_eq!(feed.iter().filter(|e| e["kind"] == "visual_approved").count(), 1, "one approval recorded");

    // Approving it again approves nothing, and the answer does not say it did.
    let m = fake.ask(ANN, "/approve V-1", 3).await;
    let text = m.text();
    assert!(text.contains("already approved"), "{text}");
    assert!(!text.contains("Thank you"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn a_question_is_answered_by_the_next_words_only() {
    let (fake, app) = linked().await;

    // Asked why V-3 is rejected, Ann sends a command instead: the command runs, V-3 stays.
    fake.press(ANN, 600, "rj:V-3");
    let ask = fake.next_to(ANN, 1).await;
    assert!(ask.text().contains("Why are you rejecting V-3"), "{}", ask.text());
    let m = fake.ask(ANN, "/approve V-1", 2).await;
    assert!(m.text().contains("V-1: approved"), "{}", m.text());
    assert_eq!(app.visual_status("V-3").await, "awaiting_approval", "a command is not a reason");
    // The question was dropped: later words are not taken as a reason either.
    let m = fake.ask(ANN, "thanks", 3).await;
    assert!(m.text().contains("did not understand"), "{}", m.text());
    assert_eq!(app.visual_status("V-3").await, "awaiting_approval");

    // The help shown for words not understood goes on with "More", which shows the rest.
    let more = m.buttons().into_iter().find(|(_, data)| data.starts_with("mo:")).expect("a More button");
    assert!(more.1.ends_with(":HELP"), "{more:?}");
    fake.press(ANN, 601, &more.1);
    let rest = fake.next_to(ANN, 4).await;
    assert!(rest.text().contains("RESET") || rest.text().contains("LINK"), "the rest of the help: {}", rest.text());

    // A button pressed instead of answering drops the question too.
    fake.press(ANN, 602, "rj:V-3");
    fake.next_to(ANN, 5).await;
    fake.press(ANN, 603, "x");
    fake.next_to(ANN, 6).await;
    fake.ask(ANN, "looks fine now", 7).await;
    assert_eq!(app.visual_status("V-3").await, "awaiting_approval", "the question went with the button");
    // Words that look like a command are still the answer to the question asked.
    fake.press(ANN, 604, "rj:V-3");
    fake.next_to(ANN, 8).await;
    let m = fake.ask(ANN, "Stock colour is wrong on the sleeve", 9).await;
    assert!(m.text().contains("V-3 rejected"), "{}", m.text());
    assert_eq!(app.visual_status("V-3").await, "rejected");
    app.stop().await;
}

#[tokio::test]
async fn a_chat_tied_by_code_replaces_the_one_in_tots_record() {
    let (fake, app) = linked().await;
    // TOT's record names another chat for Bob; his tied chat (Ann's) is the one that counts.
    app.synced(
        "contacts",
        json!([{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer", "email": "bob@alpha.example", "role": "buyer",
                "telegram_chat_id": STRANGER}]),
    )
    .await;
    let m = fake.ask(STRANGER, "/approve V-1", 0).await;
    assert!(m.text().contains("not linked"), "{}", m.text());
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval");
    let m = fake.ask(ANN, "/jobs", 1).await;
    assert!(m.text().contains("J-1"), "{}", m.text());
    app.stop().await;
}

/// A chat tied by a code to one contact is never sent another contact's messages because
/// TOT's record names that chat for them too: the person there proved who they are.
#[tokio::test]
async fn tots_record_never_sends_to_a_chat_tied_to_someone_else() {
    let fake = FakeTelegram::start().await;
    let t = linked_state(&fake).await;
    // Ann's chat is tied to P-1A by a code; TOT then names the same chat for Bob (P-1B).
    t.load(json!({"contacts": [{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer",
        "email": "bob@alpha.example", "role": "buyer", "telegram_chat_id": ANN}]}))
        .await;
    let bobs = cport::store::chat::chats_of_contact(&t.state.db, "P-1B").await.unwrap();
    assert!(bobs.is_empty(), "Bob's messages do not reach Ann's chat: {bobs:?}");
    let all = cport::actions::targets::targets_by_contact(&t.state.config, &t.state.db).await.unwrap();
    assert!(!all.contains_key("P-1B"), "nor do his digests: {all:?}");
    assert_eq!(all.get("P-1A").map(Vec::len), Some(1), "Ann's chat is still hers: {all:?}");
    // Nor does the chat act as Bob once the contact it is tied to is no longer active.
    t.load(json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin",
        "email": "ann@alpha.example", "role": "admin", "active": false}]}))
        .await;
    let who = cport::store::chat::contact_for_user(&t.state.db, cport::model::Channel::Telegram, &ANN.to_string())
        .await
        .unwrap();
    assert_eq!(who, None, "the chat is not Bob's");
    // A chat nobody tied is still TOT's record's to use.
    t.load(json!({"contacts": [{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer",
        "email": "bob@alpha.example", "role": "buyer", "telegram_chat_id": STRANGER}]}))
        .await;
    let bobs = cport::store::chat::chats_of_contact(&t.state.db, "P-1B").await.unwrap();
    assert_eq!(bobs.len(), 1, "{bobs:?}");
}

/// A group TOT's record names for a contact (a negative chat id) gets the contact's digest
/// without buttons: a link button would sign in as the contact whoever in the group taps it,
/// and an action button pressed in a group acts for no one. A private chat keeps them.
#[tokio::test]
async fn a_group_named_by_tots_record_gets_no_sign_in_buttons() {
    const GROUP: i64 = -100_777;
    let fake = FakeTelegram::start().await;
    let t = TestState::new(|c| telegram(c, &fake)).await;
    t.load(common::world()).await;
    t.load(json!({"contacts": [{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer",
        "email": "bob@alpha.example", "role": "buyer", "telegram_chat_id": GROUP}]}))
        .await;
    let report = common::digest_now(&t.state, "P-1B").await;
    assert!(report.queued >= 1, "{report:?}");
    cport::outbox::drain(&t.state).await.unwrap();
    let sent = fake.wait_for("sendMessage", 1).await.pop().unwrap();
    assert_eq!(sent.chat(), GROUP);
    assert!(sent.text().contains("need you") && sent.text().contains("V-1"), "{}", sent.text());
    assert!(sent.buttons().is_empty(), "{:?}", sent.buttons());
    assert!(!sent.text().contains("/l/") && sent.text().contains("private chat only"), "{}", sent.text());
}

/// A chat sending a flood is answered at Telegram's pace for one chat (one a second, here
/// five a minute), but the answers that would wait their turn longer than a moment are queued
/// for then: the next poll, and every other chat's answers, do not wait for them (the twelve
/// answers take more than a minute to go).
#[tokio::test]
async fn a_chat_sending_a_flood_holds_up_no_other_chat() {
    let fake = FakeTelegram::start().await;
    let app = TestApp::spawn_with(|c| {
        conversation(c, &fake);
        c.telegram.chat_messages_per_second = 1;
        c.telegram.chat_messages_per_minute = 5;
    })
    .await;
    load_world(&app).await;
    for i in 0..12 {
        fake.say(STRANGER, &format!("hello {i}"));
    }
    // The flood was polled (its first answer went): another chat speaks in the next poll.
    fake.next_to(STRANGER, 0).await;
    let m = fake.ask(ANN, "/help", 0).await;
    assert!(m.text().contains("not linked"), "{}", m.text());
    let flood = fake.to_chat(STRANGER).len();
    assert!(flood < 12, "another chat was answered before the flood's last answers went ({flood} had)");
    let queued: i64 = cport::store::on_db!(&app.db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'answer' AND recipient = $1")
        .bind(STRANGER.to_string()).fetch_one(p).await)
    .unwrap();
    assert!(queued >= 1, "the answers that would wait are queued, not lost");
    app.stop().await;
}

/// An edited message is not run again, and the sender is told so rather than hearing nothing.
#[tokio::test]
async fn an_edited_message_gets_told_to_send_it_again() {
    let (fake, app) = linked().await;
    let m = fake.ask(ANN, "/trak D-1", 1).await;
    assert!(m.text().contains("did not understand") || m.text().contains("trak"), "{}", m.text());
    fake.edit(ANN, "/track D-1");
    let m = fake.next_to(ANN, 2).await;
    assert!(m.text().contains("send it again as a new message"), "{}", m.text());
    app.stop().await;
}

#[tokio::test]
async fn a_code_typed_with_a_space_links() {
    let (fake, app) = conversing().await;
    let code = code_from_portal(&app, "P-1B").await;
    let typed = code.replace('-', " ").to_lowercase();
    assert!(typed.contains(' '), "{typed}");
    let m = fake.ask(ANN, &format!("/start {typed}"), 0).await;
    assert!(m.text().contains("Linked") && m.text().contains("Bob Buyer"), "{}", m.text());
    app.stop().await;
}

/// A store failure after one visual of an approval was written (its change not yet recorded)
/// fails the whole input: nothing of it is committed, and Telegram's retry approves once.
#[tokio::test]
async fn a_store_failure_mid_approval_commits_nothing() {
    use cport::channels::chat::{Incoming, Input, handle_update};
    let t = TestState::new(|_| {}).await;
    t.load(common::world()).await;
    let s = &t.state;
    common::link_chat(s, cport::model::Channel::Telegram, "/start", &ANN.to_string(), "P-1A").await;
    let approve = Incoming {
        channel: cport::model::Channel::Telegram,
        user_id: ANN.to_string(),
        chat_id: ANN.to_string(),
        input: Input::Text("/approve V-1".into()),
    };
    let status = || async {
        let v: String =
            cport::store::on_db!(&s.db, p => sqlx::query_scalar("SELECT status FROM visuals WHERE id = 'V-1'")
            .fetch_one(p).await)
            .unwrap();
        v
    };
    s.faults.arm("change:record", 1);
    assert!(handle_update(s, &approve, Some("1"), Utc::now()).await.is_err(), "the failure is the input's");
    assert_eq!(status().await, "awaiting_approval", "nothing of it was committed");
    let replies = handle_update(s, &approve, Some("1"), Utc::now()).await.unwrap();
    assert!(format!("{replies:?}").contains("Approved"), "{replies:?}");
    assert_eq!(status().await, "approved");
}

/// What a chat input changes commits with the record that it was seen: a failure before that
/// record leaves a broadcast unposted, a code unused and a reason still awaited, so
/// Telegram's second delivery of the update does each once.
#[tokio::test]
async fn an_update_that_fails_changes_nothing_and_its_retry_does_it_once() {
    use cport::channels::chat::{Incoming, Input, handle_update};
    let t = TestState::new(|c| c.telegram.staff = vec![STAFF.to_string()]).await;
    t.load(common::world()).await;
    let s = &t.state;
    let banners = || async {
        let n: i64 =
            cport::store::on_db!(&s.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM banners").fetch_one(p).await)
                .unwrap();
        n
    };
    let status = |id: &'static str| async move {
        let v: String = cport::store::on_db!(&s.db, p => sqlx::query_scalar("SELECT status FROM visuals WHERE id = $1")
            .bind(id).fetch_one(p).await)
        .unwrap();
        v
    };
    let from = |user: i64, input: Input| Incoming {
        channel: cport::model::Channel::Telegram,
        user_id: user.to_string(),
        chat_id: user.to_string(),
        input,
    };
    let fails_then_runs = |inc: Incoming, update: &'static str| async move {
        s.faults.arm("chat:before-record", 1);
        assert!(handle_update(s, &inc, Some(update), Utc::now()).await.is_err(), "{update} fails");
        let replies = handle_update(s, &inc, Some(update), Utc::now()).await.unwrap();
        // Its answers sent, as the poller records them.
        cport::store::chat::update_answered(&s.db, inc.channel, update, Utc::now()).await.unwrap();
        assert!(handle_update(s, &inc, Some(update), Utc::now()).await.unwrap().is_empty(), "{update} runs once");
        replies
    };
    let text = |replies: &[cport::channels::chat::Reply]| format!("{replies:?}");

    // A staff broadcast.
    let broadcast = from(STAFF, Input::Text("/broadcast urgent Closed | Closed on Friday.".into()));
    s.faults.arm("chat:before-record", 1);
    assert!(handle_update(s, &broadcast, Some("1"), Utc::now()).await.is_err());
    assert_eq!(banners().await, 0, "a failed update posts no banner");
    let r = fails_then_runs(broadcast, "2").await;
    assert!(text(&r).contains("posted"), "{r:?}");
    assert_eq!(banners().await, 1, "posted once");

    // A linking code: unused by the failure, so the retry links.
    // Made in the store directly: this state has no chat provider set up to ask one of.
    let now = Utc::now();
    let code =
        s.db.in_transaction(async |tx| cport::actions::chat_link::new_link_code_in(tx, "P-1A", now).await)
            .await
            .unwrap();
    let r = fails_then_runs(from(ANN, Input::Text(format!("/start {code}"))), "3").await;
    assert!(text(&r).contains("Linked"), "{r:?}");

    // A reason: still awaited after the failure, so the retry rejects.
    fails_then_runs(from(ANN, Input::Button("rj:V-1".into())), "4").await;
    let r = fails_then_runs(from(ANN, Input::Text("The red is too dark".into())), "5").await;
    assert!(text(&r).contains("rejected"), "{r:?}");
    assert_eq!(status("V-1").await, "rejected");
}

/// A state holding the world, no provider set up, with Ann's Telegram chat linked to P-1A.
async fn ann_linked() -> TestState {
    let t = TestState::new(|_| {}).await;
    t.load(common::world()).await;
    common::link_chat(&t.state, cport::model::Channel::Telegram, "/start", &ANN.to_string(), "P-1A").await;
    t
}

/// What Ann says or presses in her Telegram chat.
fn from_ann(input: cport::channels::chat::Input) -> cport::channels::chat::Incoming {
    let user = ANN.to_string();
    cport::channels::chat::Incoming {
        channel: cport::model::Channel::Telegram,
        user_id: user.clone(),
        chat_id: user,
        input,
    }
}

/// A reason that cannot be taken is refused naming the field, and the question stays open:
/// the next message is the reason again.
#[tokio::test]
async fn a_refused_reason_leaves_the_question_open() {
    let t = ann_linked().await;
    let s = &t.state;
    let user = ANN.to_string();
    let press = from_ann(cport::channels::chat::Input::Button("rj:V-1".into()));
    cport::channels::chat::handle(s, &press, Utc::now()).await.unwrap();
    let r = common::say_in_chat(s, cport::model::Channel::Telegram, &user, &"too long ".repeat(300)).await;
    assert!(format!("{r:?}").contains("reason: "), "the field is named: {r:?}");
    let r = common::say_in_chat(s, cport::model::Channel::Telegram, &user, "The red is too dark").await;
    assert!(format!("{r:?}").contains("rejected"), "{r:?}");
}

/// A quiet long poll lasts its whole `poll_timeout_seconds` (Telegram then answers an empty
/// list) and the next poll follows that answer: cport's HTTP client does not give up on the
/// poll first (teloxide's own client stops any call after 17 s) and poll again, failing
/// every quiet poll with an error in the log.
#[tokio::test]
async fn a_quiet_long_poll_waits_its_whole_time() {
    let fake = FakeTelegram::start().await;
    let app = TestApp::spawn_with(|c| {
        conversation(c, &fake);
        c.telegram.poll_timeout_seconds = 22;
    })
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (started, answered) = loop {
        let (started, answered) = fake.polls();
        if started.len() >= 2 {
            break (started, answered);
        }
        assert!(std::time::Instant::now() < deadline, "a second poll within 60 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        answered.first().is_some_and(|first| *first <= started[1]),
        "the second poll came {:?} after the first, before its answer",
        started[1] - started[0]
    );
    app.stop().await;
}

/// A NUL character in what a chat user types or presses is refused, naming the command,
/// and changes nothing (PostgreSQL cannot keep one, and dropping it would act on words the
/// user did not send); the input is recorded as seen, so a redelivery is not answered twice.
#[tokio::test]
async fn a_nul_in_chat_input_is_refused_naming_the_command() {
    use cport::channels::chat::{Input, handle_update};
    let t = ann_linked().await;
    let s = &t.state;
    let inputs = [
        Input::Text("/items\0".into()),
        Input::Text("I can\0't find \0 the form".into()),
        Input::Button("ay:V-\u{0}1".into()),
    ];
    for (n, input) in inputs.into_iter().enumerate() {
        let inc = from_ann(input);
        let update = format!("nul-{n}");
        let r = handle_update(s, &inc, Some(&update), Utc::now()).await.expect("answered, not a store error");
        assert!(format!("{r:?}").contains("NUL character"), "{inc:?}: {r:?}");
        cport::store::chat::update_answered(&s.db, inc.channel, &update, Utc::now()).await.unwrap();
        assert!(handle_update(s, &inc, Some(&update), Utc::now()).await.unwrap().is_empty(), "{update} seen once");
    }
    let status: String =
        cport::store::on_db!(&s.db, p => sqlx::query_scalar("SELECT status FROM visuals WHERE id = 'V-1'")
        .fetch_one(p).await)
        .unwrap();
    assert_eq!(status, "awaiting_approval", "the pressed button did nothing");
    let named = handle_update(s, &from_ann(Input::Text("/stock B\u{0}LK".into())), None, Utc::now()).await.unwrap();
    assert!(format!("{named:?}").contains("`/stock` is not valid"), "the command is named: {named:?}");
}

/// A chat tied after this period's slot has missed nothing: the contact had that digest by
/// email, and the chat's first digest is the next one. A chat tied before the slot that cport
/// missed (it was down) is caught up like the email.
#[tokio::test]
async fn a_chat_tied_after_the_slot_waits_for_the_next_digest() {
    use cport::digest::scheduler::{Trigger, run_pass};
    let fake = FakeTelegram::start().await;
    let t = TestState::new(|c| {
        telegram(c, &fake);
        c.digest.schedule = "0 0 * * * *".into(); // hourly: this hour's slot began before the link
        c.digest.catch_up_hours = 12;
    })
    .await;
    t.load(common::world()).await;
    t.known_for_a_week().await;
    common::link_chat(&t.state, cport::model::Channel::Telegram, "/start", &ANN.to_string(), "P-1A").await;
    let now = Utc::now();
    let channels = || async {
        let rows = cport::store::outbox::list_messages(&t.state.db, None, 50).await.unwrap();
        let mut of_ann: Vec<String> = rows
            .iter()
            .filter(|m| m.message.contact_id.as_deref() == Some("P-1A") && m.message.kind.as_str() == "digest")
            .map(|m| m.message.channel.as_str().to_string())
            .collect();
        of_ann.sort();
        of_ann
    };
    run_pass(&t.state, now, Some("P-1A"), Trigger::Scheduled).await.unwrap();
    assert_eq!(channels().await, ["email"], "the email was due; the chat tied since waits");
    // The next slot reaches both.
    let next = run_pass(&t.state, now + chrono::Duration::hours(1), Some("P-1A"), Trigger::Scheduled).await.unwrap();
    assert_eq!(next.queued, 2, "{next:?}");
    // Tied before the slot: caught up with the email.
    let fake2 = FakeTelegram::start().await;
    let t2 = TestState::new(|c| {
        telegram(c, &fake2);
        c.digest.schedule = "0 0 * * * *".into();
        c.digest.catch_up_hours = 12;
    })
    .await;
    t2.load(common::world()).await;
    common::link_chat(&t2.state, cport::model::Channel::Telegram, "/start", &ANN.to_string(), "P-1A").await;
    t2.known_for_a_week().await;
    cport::store::on_db!(&t2.state.db, p => sqlx::query("UPDATE chat_links SET linked_at = $1")
        .bind(Utc::now() - chrono::Duration::days(1)).execute(p).await.map(|_| ()))
    .unwrap();
    let missed = run_pass(&t2.state, now, Some("P-1A"), Trigger::Scheduled).await.unwrap();
    assert_eq!(missed.queued, 2, "{missed:?}");
}

/// A digest queued for a chat that is unlinked before it goes is dropped, saying why: the
/// chat's user said to stop. The contact's email still goes.
#[tokio::test]
async fn a_chat_unlinked_before_its_digest_goes_gets_nothing() {
    let fake = FakeTelegram::start().await;
    let t = linked_state(&fake).await;
    common::digests_now(&t.state, &["P-1A"]).await;
    let queued = cport::store::outbox::list_messages(&t.state.db, None, 10).await.unwrap();
    assert!(queued.iter().any(|m| m.message.channel.as_str() == "telegram"), "a digest for the chat: {queued:?}");
    common::say_in_chat(&t.state, cport::model::Channel::Telegram, &ANN.to_string(), "/unlink").await;
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!((r.sent, r.dropped), (1, 1), "{r:?}");
    let rows = cport::store::outbox::list_messages(&t.state.db, None, 10).await.unwrap();
    let chat = rows.iter().find(|m| m.message.channel.as_str() == "telegram").unwrap();
    assert_eq!(
        (chat.status.as_str(), chat.last_error.as_deref()),
        ("dropped", Some("the chat is no longer linked to the contact"))
    );
    assert!(
        fake.to_chat(ANN).iter().all(|c| c.method != "sendMessage" && c.method != "sendPhoto"),
        "nothing reached the chat"
    );
}

/// Telegram's own trouble (a 502 Bad Gateway, a 504) is tried again, not taken as the
/// message's fault; a chat gone for the bot (its user blocked it) is unlinked, its message
/// dropped rather than dead, and the contact's next digest goes by email alone.
#[tokio::test]
async fn telegrams_own_trouble_is_retried_and_a_blocked_chat_is_unlinked() {
    let fake = FakeTelegram::start().await;
    let t = linked_state(&fake).await;
    let to_chat = |rows: Vec<cport::store::outbox::OutboxRow>| {
        rows.into_iter().filter(|m| m.message.channel.as_str() == "telegram").collect::<Vec<_>>()
    };
    fake.refuse_with("sendMessage", 502, "Bad Gateway", 1);
    common::digest_now(&t.state, "P-1A").await;
    cport::outbox::drain(&t.state).await.unwrap();
    let rows = to_chat(cport::store::outbox::list_messages(&t.state.db, None, 100).await.unwrap());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status.as_str(), "failed", "tried again later, not dead: {:?}", rows[0]);

    // Before the retry, Ann blocks the bot.
    fake.refuse_with("sendMessage", 403, "Forbidden: bot was blocked by the user", 1);
    let sql = "UPDATE outbox SET next_attempt_at = $1 WHERE status = 'failed'";
    cport::store::on_db!(&t.state.db, p => sqlx::query(sql).bind(Utc::now()).execute(p).await.map(|_| ())).unwrap();
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!((r.dead, r.dropped), (0, 1), "{r:?}");
    let rows = to_chat(cport::store::outbox::list_messages(&t.state.db, None, 100).await.unwrap());
    assert_eq!(rows[0].status.as_str(), "dropped");
    assert!(rows[0].last_error.as_deref().unwrap_or_default().contains("it was unlinked"), "{:?}", rows[0]);
    let chats = cport::store::chat::chats_of_contact(&t.state.db, "P-1A").await.unwrap();
    assert!(chats.is_empty(), "the chat is unlinked: {chats:?}");
    // Her next digest goes by email alone.
    let force = cport::digest::scheduler::Trigger::Manual { force: true };
    let report = cport::digest::scheduler::run_pass(&t.state, Utc::now(), Some("P-1A"), force).await.unwrap();
    let rows = cport::store::outbox::list_messages(&t.state.db, None, 100).await.unwrap();
    let newest: Vec<_> =
        rows.iter().filter(|m| m.message.kind.as_str() == "digest" && m.status.as_str() == "queued").collect();
    assert!(
        !newest.is_empty() && newest.iter().all(|m| m.message.channel.as_str() == "email"),
        "{report:?} {newest:?}"
    );
}

/// A table in a chat answer keeps its column names: once above its rows, each cell in its
/// place (an empty one shown, so columns do not shift), or, for one row, beside each value.
#[tokio::test]
async fn a_chat_answer_names_its_columns() {
    let fake = FakeTelegram::start().await;
    let t = linked_state(&fake).await;
    let ann = ANN.to_string();
    let said = |r: Vec<cport::channels::chat::Reply>| format!("{r:?}");
    let jobs = said(common::say_in_chat(&t.state, cport::model::Channel::Telegram, &ann, "/jobs").await);
    assert!(jobs.contains("Job · Name · Status · Required · Your ref"), "{jobs}");
    assert!(jobs.contains("J-1 · Tees · in production · "), "{jobs}");
    let job = said(common::say_in_chat(&t.state, cport::model::Channel::Telegram, &ann, "/job J-1").await);
    assert!(job.contains("\"Process: Screen print\", \"Position: Front\""), "one row reads as names and values: {job}");
}

/// A chat flooded with answers holds no outbox sender: a message whose turn for that chat
/// is more than a moment off is put back for its turn (not counted as a failure), and the
/// senders go on to every other message, an email among them, in the same pass.
#[tokio::test]
async fn a_flooded_chat_holds_no_sender_from_other_messages() {
    let fake = FakeTelegram::start().await;
    // Twenty a minute to one chat, Telegram's pace (the per-second pace lifted): the
    // minute's twenty at once, then the next turns three seconds apart.
    let t = paced(&fake, 20).await;
    common::link_chat(&t.state, cport::model::Channel::Telegram, "/start", &ANN.to_string(), "P-1A").await;
    let now = Utc::now();
    let flood: Vec<_> = (0..30).map(|i| (format!("answer {i}"), vec!["…".to_string()], format!("flood:{i}"))).collect();
    queue_answers(&t.state.db, ANN, &flood, now).await;
    common::digest_now(&t.state, "P-1B").await;
    // One sender's passes over everything due, until nothing is (one chat's answers go one
    // at a time, in order).
    let first = cport::outbox::dispatch_batch(&t.state, 100).await.unwrap();
    assert_eq!(first.len(), 2, "the oldest answer and the email, in the first pass: {first:?}");
    let rows = cport::store::outbox::list_messages(&t.state.db, None, 100).await.unwrap();
    let email = rows.iter().find(|m| m.message.contact_id.as_deref() == Some("P-1B")).expect("Bob's digest");
    assert_eq!(email.status.as_str(), "sent", "{email:?}");
    for _ in 0..40 {
        let outcomes = cport::outbox::dispatch_batch(&t.state, 100).await.unwrap();
        assert!(!outcomes.iter().any(|o| matches!(o, cport::outbox::Outcome::Dead)), "{outcomes:?}");
        if outcomes.is_empty() {
            break;
        }
    }
    // The twenty went at once; a sender waiting up to half a minute for each later turn
    // (three seconds apart) would have sent the other ten too, held all that time.
    let sent: Vec<String> = fake.calls_of("sendMessage").iter().map(|c| c.text()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("<b>answer {i}</b>\n…")).collect();
    assert_eq!(sent, expected, "what may go at once, in order, and no more");
    let rows = cport::store::outbox::list_messages(&t.state.db, None, 100).await.unwrap();
    let mut waiting: Vec<_> =
        rows.iter().filter(|m| m.message.idem_key.starts_with("flood:") && m.status.as_str() == "queued").collect();
    waiting.sort_by_key(|m| m.id);
    assert_eq!(waiting.len(), 10, "the rest wait for their turn, none failed");
    assert!(waiting.iter().all(|m| m.attempts == 0), "{waiting:?}");
    assert!(waiting[0].message.next_attempt_at > now, "the next answer waits for its turn: {:?}", waiting[0]);
}

/// Answers queued for one chat, sent by several senders at once, reach it in the order they
/// were queued: a chat's answers go one at a time.
#[tokio::test]
async fn several_senders_send_one_chats_answers_in_order() {
    let fake = FakeTelegram::start().await;
    // A pace that holds none of them back: only the order is at stake.
    let t = TestState::new(|c| {
        telegram(c, &fake);
        c.telegram.chat_messages_per_second = 100;
        c.telegram.chat_messages_per_minute = 100;
    })
    .await;
    t.load(common::world()).await;
    let answers: Vec<_> = (0..8).map(|i| (format!("answer {i}"), vec![], format!("answer:{i}"))).collect();
    queue_answers(&t.state.db, ANN, &answers, Utc::now()).await;
    let report = cport::outbox::drain_concurrently(&t.state, 4, None).await.unwrap();
    assert_eq!(report.sent, 8, "{report:?}");
    let sent: Vec<String> = fake.to_chat(ANN).iter().map(|c| c.text()).collect();
    let expected: Vec<String> = (0..8).map(|i| format!("<b>answer {i}</b>")).collect();
    assert_eq!(sent, expected);
}

/// A command from a chat whose earlier answers wait for their turn in the outbox is answered
/// after them, not before.
#[tokio::test]
async fn a_new_answer_waits_behind_the_chats_queued_answers() {
    let (fake, app) = conversing().await;
    let at = Utc::now() + chrono::Duration::seconds(2);
    queue_answers(&app.db, STRANGER, &[("the earlier answer".into(), vec![], "answer:earlier".into())], at).await;
    fake.say(STRANGER, "/help");
    let first = fake.next_to(STRANGER, 0).await;
    assert_eq!(first.text(), "<b>the earlier answer</b>");
    let second = fake.next_to(STRANGER, 1).await;
    assert!(second.text().contains("not linked"), "{}", second.text());
    app.stop().await;
}

/// In a group the bot is in, a command is told to come to a private chat, once; the group's
/// other talk (every message, with the bot's privacy mode off) is not answered at all.
#[tokio::test]
async fn a_group_is_told_once_per_command_and_its_talk_is_left_alone() {
    let (fake, _app) = conversing().await;
    const GROUP: i64 = -100_200;
    fake.say_in_group(GROUP, ANN, "hello all, lunch at one?");
    fake.say_in_group(GROUP, ANN, "/items@tot_bot");
    fake.say_in_group(GROUP, ANN, "see you there");
    // A command for another bot in the group is that bot's.
    fake.say_in_group(GROUP, ANN, "/help@weather_bot Leeds");
    // A button pressed on a message in the group acts for no one: told as a command is.
    fake.press_in_group(GROUP, ANN, 1, "rj:V-1");
    // Two private questions after them: the second is polled only once the batch holding
    // the group's updates was run.
    for _ in 0..2 {
        let seen = fake.to_chat(ANN).len();
        assert!(!fake.ask(ANN, "/help", seen).await.text().is_empty());
    }
    let to_group = fake.to_chat(GROUP);
    assert_eq!(to_group.len(), 2, "{to_group:?}");
    assert!(to_group.iter().all(|m| m.text().contains("private chat")), "{to_group:?}");
}

/// A chat whose contact TOT made inactive is told so (not that it was never linked), and
/// `/unlink` there says it unlinked what it removed.
#[tokio::test]
async fn a_chat_of_an_inactive_contact_is_told_so() {
    let fake = FakeTelegram::start().await;
    let t = linked_state(&fake).await;
    t.load(json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin", "email": "ann@alpha.example",
        "role": "admin", "active": false}]}))
        .await;
    let ann = ANN.to_string();
    let said = format!("{:?}", common::say_in_chat(&t.state, cport::model::Channel::Telegram, &ann, "/items").await);
    assert!(said.contains("no longer active") && !said.contains("not linked to a TOT account yet"), "{said}");
    let said = format!("{:?}", common::say_in_chat(&t.state, cport::model::Channel::Telegram, &ann, "/unlink").await);
    assert!(said.contains("no longer linked"), "{said}");
    let said = format!("{:?}", common::say_in_chat(&t.state, cport::model::Channel::Telegram, &ann, "/items").await);
    assert!(said.contains("not linked to a TOT account yet"), "{said}");
    // A chat TOT's own record names, of a contact TOT then made inactive: told the same.
    t.load(json!({"contacts": [{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer", "email": "bob@alpha.example",
        "role": "buyer", "telegram_chat_id": 4002, "active": false}]}))
        .await;
    let said = format!("{:?}", common::say_in_chat(&t.state, cport::model::Channel::Telegram, "4002", "/items").await);
    assert!(said.contains("no longer active"), "{said}");
}

/// A command's answer refused because the user blocked the bot unlinks the chat, as a
/// refused digest or alert does: digests and alerts go by email again.
#[tokio::test]
async fn a_blocked_bots_refused_answer_unlinks_the_chat() {
    let (fake, app) = linked().await;
    fake.refuse_with("sendMessage", 403, "Forbidden: bot was blocked by the user", 1);
    fake.say(ANN, "/help");
    // One chat's commands run in order: the second is read once the first was answered.
    let m = fake.ask(ANN, "/help", 2).await;
    assert!(m.text().contains("not linked"), "{}", m.text());
    let chats = cport::store::chat::chats_of_contact(&app.db, "P-1B").await.unwrap();
    assert!(chats.is_empty(), "the chat is unlinked: {chats:?}");
    app.stop().await;
}

/// An answer that failed and waits out its backoff holds the chat's later answers behind it
/// (their order kept), but not past the chat speaking again: it is reachable, so the failed
/// answer goes at once, then the new one.
#[tokio::test]
async fn a_chat_that_speaks_again_gets_its_failed_answer_at_once() {
    let (fake, app) = conversing().await;
    let now = Utc::now();
    let id =
        queue_answers(&app.db, STRANGER, &[("the failed answer".into(), vec![], "answer:failed".into())], now).await[0];
    // Failed once; its retry is an hour off.
    let sql = "UPDATE outbox SET status = 'failed', attempts = 1, next_attempt_at = $2 WHERE id = $1";
    let retry = now + chrono::Duration::hours(1);
    cport::store::on_db!(&app.db, p => sqlx::query(sql).bind(id).bind(retry).execute(p).await.map(|_| ())).unwrap();
    fake.say(STRANGER, "/help");
    let first = fake.next_to(STRANGER, 0).await;
    assert_eq!(first.text(), "<b>the failed answer</b>");
    let second = fake.next_to(STRANGER, 1).await;
    assert!(second.text().contains("not linked"), "{}", second.text());
    app.stop().await;
}

/// Whatever a linked chat sends (commands, ids, button data and form answers run together,
/// NUL and bidi characters, very long text; seeded, so a failure is found again), each is
/// answered and none fails; no answer holds a character text may not hold (an echoed input
/// is shown escaped); and the chat is still linked after it all.
#[tokio::test]
async fn odd_chat_input_is_answered_and_never_fails() {
    use cport::channels::chat::{Input, Reply, handle};
    use rand::{Rng, SeedableRng};
    let t = ann_linked().await;
    let words = [
        "/help",
        "/items",
        "/approve",
        "/reject",
        "/jobs",
        "/job",
        "/stock",
        "/track",
        "/art",
        "/delivery",
        "/nodelivery",
        "/visuals",
        "/visual",
        "V-1",
        "V-2",
        "J-1",
        "PO-1",
        "A1:V-1",
        "ap:V-1",
        "rj:V-1",
        "more:1",
        "pg:2",
        "x",
        "",
        "\u{0}",
        "\u{202e}",
        "\u{7}",
        "99999999999999999999",
        "-1",
        "é",
        "日本",
        "@bot",
        "/approve@cport_bot",
        "APPROVE",
        "REJECT",
        "too dark",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..1500 {
        let mut text = String::new();
        for _ in 0..rng.gen_range(0..5) {
            text.push_str(words[rng.gen_range(0..words.len())]);
            text.push([' ', ':', '\n', '_'][rng.gen_range(0..4)]);
        }
        if rng.gen_bool(0.05) {
            text = text.repeat(rng.gen_range(1..300));
        }
        let input = match rng.gen_range(0..3) {
            0 => Input::Text(text),
            1 => Input::Button(text),
            _ => Input::Answer { text, about: rng.gen_bool(0.5).then(|| "V-1".to_string()) },
        };
        let replies = handle(&t.state, &from_ann(input.clone()), Utc::now())
            .await
            .unwrap_or_else(|e| panic!("input {i} {input:?} failed: {e}"));
        for reply in replies {
            let shown = match reply {
                Reply::Send(m) | Reply::Edit(m) | Reply::Ask { message: m, .. } => {
                    [vec![m.title], m.lines].concat().join("\n")
                }
                Reply::Notice(n) => n,
            };
            let bad = cport::model::forbidden_char(&shown, cport::model::Lines::Many);
            assert!(bad.is_none(), "input {i} {input:?} was answered with {bad:?}: {shown}");
        }
    }
    let r = common::say_in_chat(&t.state, cport::model::Channel::Telegram, &ANN.to_string(), "/items").await;
    assert!(format!("{r:?}").contains("need you"), "still linked: {r:?}");
    // Blanks alone are answered with the commands, not quoted back as “”.
    let r = common::say_in_chat(&t.state, cport::model::Channel::Telegram, &ANN.to_string(), " \n ").await;
    assert!(format!("{r:?}").contains("\"These are the commands:\""), "{r:?}");
}

/// A chat digest that waits out a retry while every item it lists is dealt with (TOT
/// approved the one visual in it) is dropped when the retry comes, as an email one is,
/// rather than ask the chat for what is done.
#[tokio::test]
async fn a_chat_digest_whose_items_were_all_dealt_with_during_its_retry_is_not_sent() {
    use cport::store::outbox::get_message;
    let fake = FakeTelegram::start().await;
    let t = TestState::new(|c| telegram(c, &fake)).await;
    common::fern_with_visuals(&t, &["V-50"]).await;
    common::link_chat(&t.state, cport::model::Channel::Telegram, "/start", "555", "P-5").await;
    let refused = common::fern_digest_refused(&t, 2, "502 Bad Gateway").await;
    t.load(serde_json::json!({"visuals": [common::visual_of_c5("V-50", "approved")]})).await;
    common::retries_come(&t.state.db).await;
    let d = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!((d.sent, d.dropped), (0, 2), "{d:?}");
    let chat = refused.iter().find(|r| r.message.channel.as_str() == "telegram").unwrap();
    let row = get_message(&t.state.db, chat.id).await.unwrap().unwrap();
    let (status, why) = (row.status.as_str(), row.last_error.unwrap_or_default());
    assert!(status == "dropped" && why.contains("dealt with"), "{status}: {why}");
    assert!(fake.to_chat(555).is_empty(), "{:?}", fake.to_chat(555));
}

/// A chat digest that waits out a retry while one of the two visuals it lists is approved
/// goes when the retry comes written again with the one still open, as an email one does;
/// the console's copy is what went.
#[tokio::test]
async fn a_chat_digest_that_waited_out_a_retry_leaves_out_what_was_dealt_with_meanwhile() {
    use cport::store::outbox::get_message;
    let fake = FakeTelegram::start().await;
    let t = TestState::new(|c| telegram(c, &fake)).await;
    common::fern_with_visuals(&t, &["V-50", "V-51"]).await;
    common::link_chat(&t.state, cport::model::Channel::Telegram, "/start", "555", "P-5").await;
    let refused = common::fern_digest_refused(&t, 2, "502 Bad Gateway").await;
    t.load(serde_json::json!({"visuals": [common::visual_of_c5("V-50", "approved")]})).await;
    common::retries_come(&t.state.db).await;
    cport::outbox::drain(&t.state).await.unwrap();
    let said = fake.to_chat(555);
    assert_eq!(said.len(), 1, "{said:?}");
    let text = said[0].text();
    assert!(text.contains("V-51") && !text.contains("V-50"), "only what is still open: {text}");
    assert!(text.contains("1 thing needs you"), "{text}");
    let chat = refused.iter().find(|r| r.message.channel.as_str() == "telegram").unwrap();
    let row = get_message(&t.state.db, chat.id).await.unwrap().unwrap();
    assert_eq!(row.status.as_str(), "sent");
    assert!(row.message.subject.starts_with("1 thing needs you") && !row.message.payload.contains("V-50"), "{row:?}");
}

/// On PostgreSQL one process of those sharing the store long-polls Telegram: the one holding
/// the poller's lock (a second poll of the same bot is answered 409, and a batch taken twice
/// would be answered twice). Another takes over once the holder lets the lock go. On SQLite
/// (one process to a store) the poller polls at once.
#[tokio::test]
async fn one_process_polls_telegram_and_another_takes_over() {
    let fake = FakeTelegram::start().await;
    let t = TestState::new(|c| telegram(c, &fake)).await;
    let held = cport::store::ledgers::try_poller_lock(&t.state.db).await;
    let shared = matches!(t.state.db, cport::store::Db::Postgres(_));
    assert_eq!(held.is_some(), shared, "another process's lock, on PostgreSQL");
    let tg = t.state.telegram.clone().expect("a bot");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(cport::channels::telegram::run_polling(t.state.services.clone(), tg, rx));
    if let Some(held) = held {
        // Set up for polling (the webhook taken away), then asking for the lock, not polling.
        within_30_s("deleteWebhook", || !fake.calls_of("deleteWebhook").is_empty()).await;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        assert!(fake.polls().0.is_empty(), "no poll while another process holds the lock");
        drop(held);
    }
    within_30_s("a poll", || !fake.polls().0.is_empty()).await;
    stop.send(true).unwrap();
    poller.await.unwrap();
}

/// Waits, checking every 50 ms, until `done` holds: at most 30 s, then fails naming `what`.
async fn within_30_s(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what} within 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A confirmation button pressed once its visual is decided answers how the visual stands,
/// whatever fingerprint it carries: never a fresh "Approve?" saying the charges changed.
#[tokio::test]
async fn a_confirmation_of_a_decided_visual_says_how_it_stands() {
    use cport::channels::chat::{Input, handle};
    let t = ann_linked().await;
    let s = &t.state;
    let r = common::say_in_chat(s, cport::model::Channel::Telegram, &ANN.to_string(), "/approve V-1").await;
    assert!(format!("{r:?}").contains("pproved"), "{r:?}");
    for data in ["ay:V-1:xxxx", "ay:V-1:", "ay:V-1"] {
        let r = handle(s, &from_ann(Input::Button(data.into())), Utc::now()).await.unwrap();
        let said = format!("{r:?}");
        assert!(said.contains("approved already") && !said.contains("have changed"), "{data}: {said}");
    }
}
