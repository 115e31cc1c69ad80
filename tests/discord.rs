//! Discord: interactions signed with a real Ed25519 key arrive on `/discord/interactions`;
//! what cport sends goes through serenity's REST client to a local fake of Discord's API.

mod common;

use chrono::Utc;
use common::fake_discord::{APP_ID, FakeDiscord, InteractionSigner, button, command, form};
use common::{TestApp, TestState, load_world};
use cport::config::{Config, Secret};
use serde_json::{Value, json};

const USER: &str = "880000000000000001";
const STAFF: &str = "880000000000000009";

fn discord(c: &mut Config, fake: &FakeDiscord, signer: &InteractionSigner) {
    c.discord.token = Secret::new("discord-bot-token");
    c.discord.api_url = fake.url.clone();
    c.discord.public_key = signer.public_key_hex();
    c.discord.application_id = APP_ID.into();
    c.discord.staff = vec![STAFF.into()];
}

/// The fake Discord API, and the key its interactions are signed with.
async fn fakes() -> (FakeDiscord, InteractionSigner) {
    (FakeDiscord::start().await, InteractionSigner::new(7))
}

/// A state holding the test world that speaks to a fake Discord; `configure` changes the
/// config after that.
async fn discord_world(configure: impl FnOnce(&mut Config)) -> (FakeDiscord, TestState) {
    let (fake, signer) = fakes().await;
    let t = TestState::new(|c| {
        discord(c, &fake, &signer);
        configure(c)
    })
    .await;
    t.load(common::world()).await;
    (fake, t)
}

/// Posts an interaction signed at `ts` with `signer`; returns status and JSON body.
/// A server with the world loaded, answering Discord's interactions.
async fn discord_app() -> (FakeDiscord, InteractionSigner, TestApp) {
    let (fake, signer) = fakes().await;
    let app = TestApp::spawn_with(|c| discord(c, &fake, &signer)).await;
    load_world(&app).await;
    (fake, signer, app)
}

async fn post_signed(app: &TestApp, signer: &InteractionSigner, ts: i64, body: &Value) -> (u16, Value) {
    let text = body.to_string();
    let (sig, ts) = signer.sign(ts, &text);
    let headers = [
        ("X-Signature-Ed25519", sig.as_str()),
        ("X-Signature-Timestamp", ts.as_str()),
        ("Content-Type", "application/json"),
    ];
    let r = app.post_with(&app.http, "/discord/interactions", &headers, text).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, signer: &InteractionSigner, body: &Value) -> (u16, Value) {
    post_signed(app, signer, Utc::now().timestamp(), body).await
}

fn embed_text(response: &Value) -> String {
    let e = &response["data"]["embeds"][0];
    format!("{}\n{}", e["title"].as_str().unwrap_or(""), e["description"].as_str().unwrap_or(""))
}

fn custom_ids(response: &Value) -> Vec<String> {
    response["data"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["custom_id"].as_str().map(str::to_string))
        .collect()
}

async fn code_for(app: &TestApp, contact: &str) -> String {
    // tokio's Command: the server under test runs on this same thread and must keep going.
    let mut cmd = tokio::process::Command::new(common::cport_bin());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CPORT_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .args(["link-code", "--contact", contact])
        .env("CPORT_DATA_DIR", app.dir.path())
        .env("CPORT_EMAIL_DIR", app.dir.path().join("mail"))
        .env("CPORT_DATABASE_URL", &app.database_url)
        .env("CPORT_LINK_SECRET", "0123456789abcdef0123456789abcdef")
        .env("CPORT_API_TOKEN", common::TOKEN)
        .env("CPORT_DISCORD__PUBLIC_KEY", &app.state.config.discord.public_key)
        .output()
        .await
        .expect("cport link-code runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn signatures_are_checked_before_anything_else() {
    let (fake, signer) = fakes().await;
    let app = TestApp::spawn_with(|c| discord(c, &fake, &signer)).await;
    let ping = serde_json::json!({"id": "1", "application_id": APP_ID, "type": 1, "token": "t", "version": 1});
    let (s, body) = post(&app, &signer, &ping).await;
    assert_eq!((s, body["type"].as_i64()), (200, Some(1)), "PING is answered PONG");

    // Tampered body: signed one thing, sent another.
    let (sig, ts) = signer.sign(Utc::now().timestamp(), &ping.to_string());
    let tampered = ping.to_string().replace("\"type\":1", "\"type\":2");
    let headers = [("X-Signature-Ed25519", sig.as_str()), ("X-Signature-Timestamp", ts.as_str())];
    let r = app.post_with(&app.http, "/discord/interactions", &headers, tampered).await;
    assert_eq!(r.status().as_u16(), 401);
    // Signed with another key.
    let (s, _) = post(&app, &InteractionSigner::new(8), &ping).await;
    assert_eq!(s, 401);
    // A validly signed but old request (a replay).
    let (s, body) = post_signed(&app, &signer, Utc::now().timestamp() - 3600, &ping).await;
    assert_eq!(s, 401);
    assert!(body["error"].as_str().unwrap().contains("timestamp"));
    // No signature at all.
    let r = app.http.post(app.url("/discord/interactions")).body(ping.to_string()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(fake.calls().is_empty(), "nothing was sent for refused requests");
    app.stop().await;
}

#[tokio::test]
async fn commands_and_buttons_run_the_same_actions_as_email() {
    let (_fake, signer, app) = discord_app().await;

    let (s, r) = post(&app, &signer, &command(USER, "items", None)).await;
    assert_eq!(s, 200);
    assert_eq!(r["type"], 4);
    assert!(embed_text(&r).contains("not linked"), "{r}");
    assert_eq!(r["data"]["flags"], 64, "answers are only for the user who asked");

    let code = code_for(&app, "P-1B").await;
    let (_, r) = post(&app, &signer, &command(USER, "link", Some(&code))).await;
    assert!(embed_text(&r).contains("Bob Buyer"), "{r}");

    let (_, r) = post(&app, &signer, &command(USER, "jobs", None)).await;
    assert!(embed_text(&r).contains("J-1"), "{r}");
    assert!(!embed_text(&r).contains("J-9"));
    let (_, r) = post(&app, &signer, &command(USER, "job", Some("J-404"))).await;
    assert!(embed_text(&r).contains("not found"), "{r}");

    // Approve by button, confirmed.
    let (_, r) = post(&app, &signer, &button(USER, "ap:V-1")).await;
    assert_eq!(r["type"], 4);
    assert!(embed_text(&r).contains("Approve V-1?"), "{r}");
    let ids = custom_ids(&r);
    assert!(ids[0].starts_with("ay:V-1:") && ids[1] == "x", "the confirmation names what it showed: {ids:?}");
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval");
    // Pressed once TOT has changed the charges, it approves nothing and shows them again.
    app.synced(
        "visuals",
        serde_json::json!([{"id": "V-1", "client_id": "C-1", "job_id": "J-1", "design_id": "DS-1", "category": "Colour visual",
                "designer": "Des", "status": "awaiting_approval", "main_image": "/media/v1.svg",
                "charges": [{"description": "Artwork, redrawn", "qty": 1, "unit_price": 90}]}]),
    )
    .await;
    let (_, r) = post(&app, &signer, &button(USER, &ids[0])).await;
    assert_eq!(r["type"], 4, "{r}");
    assert!(embed_text(&r).contains("have changed") && embed_text(&r).contains("Artwork, redrawn"), "{r}");
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval", "nothing approved on an old confirmation");
    let yes = custom_ids(&r)[0].clone();
    assert_ne!(yes, ids[0]);
    let (_, r) = post(&app, &signer, &button(USER, &yes)).await;
    assert_eq!(r["type"], 7, "the confirmation message is updated in place");
    assert!(embed_text(&r).contains("Approved"), "{r}");
    assert_eq!(app.visual_status("V-1").await, "approved");
    // Pressed twice: the approval shown stays, and a new message says it was approved already.
    let (_, r) = post(&app, &signer, &button(USER, &yes)).await;
    assert_eq!(r["type"], 4, "a new message, not the approval overwritten: {r}");
    assert!(embed_text(&r).contains("already approved"), "{r}");
    let feed = app.changes(0).await;
    let e = feed.iter().find(|e| e["kind"] == "visual_approved").unwrap();
    assert_eq!(e["data"]["channel"], "discord");

    // A captured request sent again is not acted on twice.
    let again = command(USER, "items", None);
    assert_eq!(post(&app, &signer, &again).await.0, 200);
    assert_eq!(post(&app, &signer, &again).await.0, 409);

    // A forged confirmation naming another client's visual shows nothing of it.
    app.synced(
        "visuals",
        serde_json::json!([{"id": "V-9", "client_id": "C-2", "job_id": "J-9", "design_id": "DS-9",
                "category": "Colour visual", "designer": "Des", "status": "awaiting_approval",
                "main_image": "/media/v9.svg", "charges": [{"description": "Beta's secret art", "qty": 1, "unit_price": 70}]}]),
    )
    .await;
    let (_, r) = post(&app, &signer, &button(USER, "ay:V-9:00000000")).await;
    assert!(!r.to_string().contains("secret art") && r.to_string().contains("V-9 not found"), "{r}");
    assert_eq!(app.visual_status("V-9").await, "awaiting_approval");

    // A viewer's forged Approve button does nothing.
    let viewer = "880000000000000002";
    let code = code_for(&app, "P-1V").await;
    post(&app, &signer, &command(viewer, "link", Some(&code))).await;
    let (_, r) = post(&app, &signer, &button(viewer, "ap:V-9")).await;
    assert!(embed_text(&r).contains("not available to your role"), "{r}");

    // Staff only.
    let (_, r) = post(&app, &signer, &command(USER, "outbox", None)).await;
    assert!(embed_text(&r).contains("staff only"), "{r}");
    let (_, r) = post(&app, &signer, &command(STAFF, "outbox", None)).await;
    assert!(embed_text(&r).contains("Outbox"), "{r}");
    app.stop().await;
}

#[tokio::test]
async fn a_reject_button_asks_for_the_reason_in_a_form() {
    let (_fake, signer, app) = discord_app().await;
    // Someone unknown is told Discord's way to link.
    let (_, r) = post(&app, &signer, &command(USER, "items", None)).await;
    assert!(embed_text(&r).contains("/link CODE") && !embed_text(&r).contains("/start"), "{r}");
    let code = code_for(&app, "P-1B").await;
    post(&app, &signer, &command(USER, "link", Some(&code))).await;

    // Discord's app hears no free text: the reason is asked for in a form.
    let (_, r) = post(&app, &signer, &button(USER, "rj:V-1")).await;
    assert_eq!(r["type"], 9, "a form: {r}");
    assert!(r["data"]["title"].as_str().unwrap().contains("V-1"), "{r}");
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval", "asking changes nothing");
    // A reason that cannot be taken is refused naming it; no form can follow a form, so the
    // button is pressed again.
    let (_, r) = post(&app, &signer, &form(USER, "answer", "text", "\u{7}")).await;
    assert!(embed_text(&r).contains("reason") && embed_text(&r).contains("Press Reject again"), "{r}");
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval");
    let (_, r) = post(&app, &signer, &button(USER, "rj:V-1")).await;
    assert_eq!(r["type"], 9, "a form again: {r}");
    let (_, r) = post(&app, &signer, &form(USER, "answer", "text", "the navy is too light")).await;
    assert_eq!(r["type"], 4, "{r}");
    assert!(embed_text(&r).contains("V-1 rejected"), "{r}");
    assert_eq!(app.visual_status("V-1").await, "rejected");
    let feed = app.changes(0).await;
    let e = feed.iter().find(|e| e["kind"] == "visual_rejected").expect("the rejection is in the feed");
    assert_eq!(e["data"]["reason"], "the navy is too light");
    assert_eq!(e["data"]["channel"], "discord");

    // Two forms open at once (Reject on V-3 on the phone, then on V-4 on the desktop): the
    // phone's answer was written for V-3 and rejects neither; the open question stays V-4's.
    let (status, body) = app
        .put(
            "visuals",
            serde_json::json!([
                {"id": "V-3", "client_id": "C-1", "job_id": "J-1", "design_id": "DS-3", "category": "Colour visual",
                 "designer": "Des", "status": "awaiting_approval", "main_image": "/media/v1.svg"},
                {"id": "V-4", "client_id": "C-1", "job_id": "J-1", "design_id": "DS-4", "category": "Colour visual",
                 "designer": "Des", "status": "awaiting_approval", "main_image": "/media/v1.svg"}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, phone) = post(&app, &signer, &button(USER, "rj:V-3")).await;
    assert_eq!(phone["data"]["custom_id"], "answer:V-3", "the form names its visual: {phone}");
    post(&app, &signer, &button(USER, "rj:V-4")).await;
    let (_, r) = post(&app, &signer, &form(USER, "answer:V-3", "text", "written for V-3")).await;
    assert!(embed_text(&r).contains("was about V-3") && embed_text(&r).contains("nothing was changed"), "{r}");
    assert_eq!(app.visual_status("V-3").await, "awaiting_approval");
    assert_eq!(app.visual_status("V-4").await, "awaiting_approval");
    let (_, r) = post(&app, &signer, &form(USER, "answer:V-4", "text", "written for V-4")).await;
    assert!(embed_text(&r).contains("V-4 rejected"), "{r}");
    assert_eq!(app.visual_status("V-3").await, "awaiting_approval");

    // The form sent again finds no question: it says so and changes nothing.
    let (_, r) = post(&app, &signer, &form(USER, "answer", "text", "and again")).await;
    assert!(embed_text(&r).contains("expired"), "{r}");
    let feed = app.changes(0).await;
    assert_eq!(feed.iter().filter(|e| e["kind"] == "visual_rejected").count(), 2, "V-1's and V-4's");
    app.stop().await;
}

#[tokio::test]
async fn slow_work_is_deferred_and_edited_in() {
    let (fake, signer) = fakes().await;
    let app = TestApp::spawn_with(|c| {
        discord(c, &fake, &signer);
        // Everything counts as slow: the deferred path is what this test is about.
        c.discord.defer_after_ms = 0;
    })
    .await;
    load_world(&app).await;
    // The edit reaches Discord before the deferral it edits, and is refused as unknown: it is
    // made again, and lands.
    fake.refuse_answers(1);
    let (s, r) = post(&app, &signer, &command(USER, "help", None)).await;
    assert_eq!((s, r["type"].as_i64()), (200, Some(5)), "deferred: {r}");
    let edits = fake.wait_for("/messages/@original", 2).await;
    assert!(edits[1].path.contains(&format!("/webhooks/{APP_ID}/tok-help-{USER}")));
    let title = edits[1].body["embeds"][0]["title"].as_str().unwrap_or("");
    assert!(title.contains("not linked"), "{:?}", edits[1].body);

    // A stop while an answer is still to be edited in waits for it.
    fake.refuse_answers(1);
    let (_, r) = post(&app, &signer, &command(USER, "items", None)).await;
    assert_eq!(r["type"].as_i64(), Some(5), "deferred: {r}");
    app.stop().await;
    let edits: Vec<_> = fake.calls().into_iter().filter(|c| c.path.contains("tok-items")).collect();
    assert_eq!(edits.len(), 2, "the refused edit was made again before the server stopped: {edits:?}");
}

#[tokio::test]
async fn digests_go_out_as_embeds_with_buttons_through_serenity() {
    let (fake, t) = discord_world(|_| {}).await;
    common::link_chat(&t.state, cport::model::Channel::Discord, "/link", USER, "P-1A").await;
    let report = common::digest_now(&t.state, "P-1A").await;
    assert_eq!(report.queued, 2, "email and Discord: {report:?}");
    let r = cport::outbox::drain(&t.state).await.unwrap();
    let failed = cport::store::outbox::list_messages(&t.state.db, Some("failed"), 10).await.unwrap();
    assert_eq!((r.sent, r.dead), (2, 0), "{r:?} {:?}", failed.iter().map(|m| &m.last_error).collect::<Vec<_>>());
    let dm = fake.wait_for("/users/@me/channels", 1).await;
    assert_eq!(dm[0].body["recipient_id"].to_string().trim_matches('"'), USER);
    let posts = fake.wait_for("/messages", 1).await;
    let msg = &posts[0].body;
    assert!(posts[0].path.starts_with("/channels/9"), "{}", posts[0].path);
    let embed = &msg["embeds"][0];
    assert!(embed["title"].as_str().unwrap().contains("need you"), "{msg}");
    assert!(embed["description"].as_str().unwrap().contains("V-1"), "{msg}");
    let buttons = msg["components"][0]["components"].as_array().unwrap();
    assert_eq!(buttons[0]["custom_id"], "mo:0:ITEMS");
    assert!(buttons[1]["url"].as_str().unwrap().contains("/l/"), "a signed portal link");

    // The slash commands Discord is told about.
    let discord = cport::channels::discord::Discord::new(&t.state.config);
    let n = discord.register_commands().await.unwrap();
    let put = fake.wait_for(&format!("/applications/{APP_ID}/commands"), 1).await;
    let list = put[0].body.as_array().unwrap();
    assert_eq!(list.len(), n);
    let track = list.iter().find(|c| c["name"] == "track").expect("track registered");
    assert_eq!(track["options"][0]["required"], true);
    assert!(list.iter().any(|c| c["name"] == "link" && c["options"][0]["name"] == "code"));
}

#[tokio::test]
async fn an_alerts_picture_is_uploaded_with_the_direct_message() {
    let (fake, t) = discord_world(|_| {}).await;
    let png: &[u8] = b"\x89PNG\r\n\x1a\n the picture";
    alert_with_picture(&t, png).await;
    let posts = fake.wait_for("/messages", 1).await;
    let msg = &posts[0].body;
    // The picture is private: it travels as the message's attachment, shown by the embed.
    assert_eq!(msg["files"], serde_json::json!([{"file_name": "v5.png", "size": png.len()}]), "{msg}");
    assert_eq!(msg["embeds"][0]["image"]["url"], "attachment://v5.png", "{msg}");
    assert!(!msg.to_string().contains("/media/"), "no address of the picture: {msg}");
}

/// Ann, linked on Discord by TOT's record, is alerted of V-5, whose picture is a `/media` file
/// of these bytes; the alert is sent, and goes nowhere dead.
async fn alert_with_picture(t: &TestState, png: &[u8]) {
    t.load(serde_json::json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin",
        "email": "ann@alpha.example", "role": "admin", "discord_user_id": USER}]}))
        .await;
    let media = t.state.config.data_dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::write(media.join("v5.png"), png).unwrap();
    let now = Utc::now();
    cport::digest::alerts::scan(&t.state, now, None).await.unwrap();
    t.load(
        serde_json::json!({"visuals": [{"id": "V-5", "client_id": "C-1", "job_id": "J-1", "design_id": "DS-5",
        "category": "Colour visual", "designer": "Des", "status": "awaiting_approval", "main_image": "/media/v5.png"}]}),
    )
    .await;
    cport::digest::alerts::scan(&t.state, now, None).await.unwrap();
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!(r.dead, 0, "{r:?}");
}

#[tokio::test]
async fn a_picture_discord_refuses_does_not_cost_the_alert() {
    let (fake, t) = discord_world(|_| {}).await;
    fake.limit_uploads(8);
    alert_with_picture(&t, b"\x89PNG\r\n\x1a\n a picture larger than Discord takes").await;
    let posts = fake.wait_for("/messages", 2).await;
    assert_eq!(posts[0].body["files"].as_array().map(Vec::len), Some(1), "first with the picture");
    let msg = &posts[1].body;
    assert!(msg["files"].as_array().is_none_or(Vec::is_empty), "then without it: {msg}");
    assert!(msg["embeds"][0]["image"].is_null(), "no picture the message does not carry: {msg}");
    assert!(msg["embeds"][0]["title"].as_str().unwrap_or("").contains("V-5"), "{msg}");
    let buttons = msg["components"].to_string();
    assert!(buttons.contains("ap:V-5"), "the buttons still go: {buttons}");
    let rows = cport::store::outbox::list_messages(&t.state.db, Some("sent"), 10).await.unwrap();
    assert!(rows.iter().any(|m| m.message.channel.as_str() == "discord"), "the alert is sent: {rows:?}");
}

#[tokio::test]
async fn a_shared_channel_gets_no_details_and_no_sign_in_links() {
    let (fake, t) = discord_world(|c| {
        c.discord.channel_id = "1600000000000000001".into();
    })
    .await;
    // TOT's record names the Discord user: linked without a code.
    t.load(serde_json::json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin",
        "email": "ann@alpha.example", "role": "admin", "discord_user_id": USER}]}))
        .await;
    common::digest_now(&t.state, "P-1A").await;
    cport::outbox::drain(&t.state).await.unwrap();
    let posts = fake.wait_for("/channels/1600000000000000001/messages", 1).await;
    let msg = &posts[0].body;
    assert_eq!(msg["content"], format!("<@{USER}>"));
    let text = msg.to_string();
    assert!(!text.contains("/l/"), "no signed link in a shared channel: {text}");
    assert!(!text.contains("V-1"), "no item details either: {text}");
    assert!(text.contains("mo:0:ITEMS"), "the Items button stays: {text}");

    // An alert's title names the job: in a shared channel it says nothing of the client.
    cport::digest::alerts::scan(&t.state, Utc::now(), None).await.unwrap();
    t.load(serde_json::json!({"visuals": [{"id": "V-5", "client_id": "C-1", "job_id": "J-1", "design_id": "D5",
        "category": "Colour visual", "designer": "Des", "status": "awaiting_approval", "main_image": "/v5.svg"}]}))
        .await;
    assert!(cport::digest::alerts::scan(&t.state, Utc::now(), None).await.unwrap() > 0, "V-5 alerted");
    cport::outbox::drain(&t.state).await.unwrap();
    let posts = fake.wait_for("/channels/1600000000000000001/messages", 2).await;
    let text = posts[1].body.to_string();
    assert!(text.contains("Something at TOT needs you"), "{text}");
    assert!(!text.contains("Tees") && !text.contains("Colour visual"), "no job or visual named: {text}");

    // An urgent banner to every client says nothing of Ann's: it is shown whole. One to
    // chosen clients is the client's business, and only pointed at.
    for (title, clients, whole) in
        [("Closed Friday", vec![], true), ("Your order is late", vec!["C-1".to_string()], false)]
    {
        let input = cport::actions::banners::BannerInput {
            title: title.into(),
            body: "Details here.".into(),
            severity: "urgent".into(),
            clients,
            starts_at: None,
            expires_at: None,
        };
        cport::actions::banners::post(&t.state, input, "test", Utc::now()).await.unwrap();
        cport::outbox::drain(&t.state).await.unwrap();
        let posts = fake.calls().into_iter().filter(|c| c.path.starts_with("/channels/16")).collect::<Vec<_>>();
        let text = posts.last().unwrap().body.to_string();
        assert_eq!(text.contains(title) && text.contains("Details here."), whole, "{title}: {text}");
        assert!(text.contains(&format!("<@{USER}>")), "{text}");
    }

    // /unlink stops what TOT's record would link.
    let replies = common::say_in_chat(&t.state, cport::model::Channel::Discord, USER, "/unlink").await;
    assert!(format!("{replies:?}").contains("no longer linked"), "{replies:?}");
    assert!(cport::store::chat::chats_of_contact(&t.state.db, "P-1A").await.unwrap().is_empty());
}

/// A Discord that takes a message and never answers holds no sender past
/// `outbox.send_timeout_seconds` (serenity's own client would wait for good, and the outbox
/// waits long for a message handed over): the request is cut off and the message retried.
#[tokio::test]
async fn a_discord_that_never_answers_is_cut_off_and_the_message_retried() {
    let (fake, t) = discord_world(|c| c.outbox.send_timeout_seconds = 2).await;
    common::link_chat(&t.state, cport::model::Channel::Discord, "/link", USER, "P-1A").await;
    fake.hang_messages();
    common::digest_now(&t.state, "P-1A").await;
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(std::time::Duration::from_secs(60), cport::outbox::drain(&t.state))
        .await
        .expect("the sender is not held by a silent Discord")
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    assert_eq!(r.retrying, 1, "{r:?}");
    let rows = cport::store::outbox::list_messages(&t.state.db, Some("failed"), 10).await.unwrap();
    assert!(rows.len() == 1 && rows[0].message.channel.as_str() == "discord", "{rows:?}");
    assert!(fake.calls().iter().any(|c| c.path.starts_with("/channels/")), "the message was posted");
}

/// A user whose direct messages are closed to the bot (Discord's 403, code 50007) has their
/// chat unlinked at the first message refused, that message dropped, not dead; their next
/// digest goes by email alone.
#[tokio::test]
async fn a_user_who_closed_direct_messages_is_unlinked() {
    let (fake, t) = discord_world(|_| {}).await;
    common::link_chat(&t.state, cport::model::Channel::Discord, "/link", USER, "P-1A").await;
    fake.refuse_message(403, 50007, "Cannot send messages to this user");
    common::digest_now(&t.state, "P-1A").await;
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!((r.dead, r.dropped), (0, 1), "{r:?}");
    assert!(cport::store::chat::chats_of_contact(&t.state.db, "P-1A").await.unwrap().is_empty());
    let force = cport::digest::scheduler::Trigger::Manual { force: true };
    cport::digest::scheduler::run_pass(&t.state, chrono::Utc::now(), Some("P-1A"), force).await.unwrap();
    let rows = cport::store::outbox::list_messages(&t.state.db, Some("queued"), 10).await.unwrap();
    assert!(!rows.is_empty() && rows.iter().all(|m| m.message.channel.as_str() == "email"), "{rows:?}");
}

/// Discord refusing cport's own set-up (a revoked token, a channel the bot may not post in
/// or cannot see) refuses every message alike: each is tried again with backoff while it is
/// put right, not made dead at its first try; an account that is gone is unlinked.
#[tokio::test]
async fn a_refusal_of_the_set_up_is_retried_and_a_gone_account_unlinked() {
    let (fake, t) = discord_world(|_| {}).await;
    common::link_chat(&t.state, cport::model::Channel::Discord, "/link", USER, "P-1A").await;
    let force = cport::digest::scheduler::Trigger::Manual { force: true };
    for (status, code, says, hint) in [
        (401, 0, "401: Unauthorized", "discord.token"),
        (403, 50013, "Missing Permissions", "discord.channel_id"),
        (404, 10003, "Unknown Channel", "discord.channel_id"),
    ] {
        fake.refuse_message(status, code, says);
        cport::digest::scheduler::run_pass(&t.state, chrono::Utc::now(), Some("P-1A"), force).await.unwrap();
        let r = cport::outbox::drain(&t.state).await.unwrap();
        assert_eq!((r.dead, r.retrying), (0, 1), "{status}: {r:?}");
        let rows = cport::store::outbox::list_messages(&t.state.db, Some("failed"), 10).await.unwrap();
        let error = rows.iter().find_map(|m| m.last_error.clone()).unwrap_or_default();
        assert!(error.contains(hint), "{status}: {error}");
        cport::store::on_db!(&t.state.db, p => sqlx::query("DELETE FROM outbox").execute(p).await.map(|_| ())).unwrap();
    }
    fake.refuse_message(404, 10013, "Unknown User");
    cport::digest::scheduler::run_pass(&t.state, chrono::Utc::now(), Some("P-1A"), force).await.unwrap();
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!((r.dead, r.dropped), (0, 1), "{r:?}");
    assert!(cport::store::chat::chats_of_contact(&t.state.db, "P-1A").await.unwrap().is_empty());
}

/// Linking promises digests and alerts in the chat only where cport sends them: a Discord
/// set up to answer interactions alone (a public key, no bot token) says that they do not
/// come to this chat; one with a bot token, that they come here too.
#[tokio::test]
async fn linking_promises_messages_only_where_cport_sends_them() {
    for (token, says, not) in [
        ("", "digests and alerts do not come to this chat", "will come here too"),
        ("discord-bot-token", "Digests and alerts will come here too", "do not come to this chat"),
    ] {
        let t = TestState::new(|c| {
            c.discord.public_key = InteractionSigner::new(7).public_key_hex();
            c.discord.token = Secret::new(token);
        })
        .await;
        t.load(common::world()).await;
        let r = common::link_chat(&t.state, cport::model::Channel::Discord, "/link", USER, "P-1A").await;
        let said = format!("{r:?}");
        assert!(said.contains("Linked:") && said.contains(says) && !said.contains(not), "{token:?}: {said}");
    }
}

/// A signed interaction that is malformed is refused in words that say what is wrong: a
/// timestamp that is no number (not "too old"), a body of another shape (not the parser's
/// words, which name Rust's types), a command or form without its data or user.
#[tokio::test]
async fn a_malformed_interaction_is_refused_saying_what_is_wrong() {
    let (_fake, signer, app) = discord_app().await;
    let send = |ts: String, body: String| {
        let sig = signer.sign_raw(&ts, &body);
        let app = &app;
        async move {
            let headers = [("X-Signature-Ed25519", sig.as_str()), ("X-Signature-Timestamp", ts.as_str())];
            let r = app.post_with(&app.http, "/discord/interactions", &headers, body).await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null)["error"].to_string())
        }
    };
    let now = Utc::now().timestamp().to_string();
    let (s, said) = send("abc".into(), json!({"type": 1}).to_string()).await;
    assert!(s == 401 && said.contains("x-signature-timestamp") && !said.contains("too old"), "{said}");
    for (body, says) in [
        (json!({"type": "1"}).to_string(), "body is not an interaction"),
        ("{1: 2}".to_string(), "body is not an interaction"),
        (json!({"id": "9", "type": 2, "user": {"id": USER}}).to_string(), "has no data"),
        (json!({"id": "9", "type": 2, "data": {"name": "items"}}).to_string(), "names no user"),
        (json!({"id": "9", "type": 5, "user": {"id": USER}, "data": {"custom_id": "zz"}}).to_string(), "form"),
    ] {
        let (s, said) = send(now.clone(), body.clone()).await;
        assert!(s == 400 && said.contains(says), "{body}: {said}");
        assert!(
            !said.contains("expected") && !said.contains("line 1"),
            "{body}: plain words, not the parser's: {said}"
        );
    }
    app.stop().await;
}
