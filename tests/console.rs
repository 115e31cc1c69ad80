//! The staff console over HTTP, as a browser without JavaScript uses it: signing in with the
//! link `cport staff add` prints, sessions kept apart from clients', CSRF on every POST, and
//! each page and action (chase list and reminders, outbox, banners, contacts, held mail,
//! access requests).

mod common;

use chrono::Utc;
use common::{TestApp, browser, csrf_of, load_world};

const PASSWORD: &str = "a staff password 42";

/// A staff account for `email` with its password set through the single-use link.
async fn staff_account(app: &TestApp, email: &str) -> String {
    let now = Utc::now();
    let (id, new) = cport::store::staff::add(&app.db, email, now).await.unwrap();
    assert!(new);
    let link = app.state.signer.staff_password_url(&app.base, id, chrono::Duration::hours(1), now);
    // Printed twice, the first kept: made before the password is set.
    let older = app.state.signer.staff_password_url(&app.base, id, chrono::Duration::hours(1), now);
    let path = link.strip_prefix(&app.base).expect("a link to this server").to_string();
    let b = browser();
    let html = app.shown(&b, &path).await;
    let token = path.split("token=").nth(1).unwrap().to_string();
    let csrf = csrf_of(&html);
    // Too short: refused, naming the field; the link still works.
    let (status, _, body) = app
        .post_raw(
            &b,
            "/staff/password",
            &[("csrf", &csrf), ("token", &token), ("new_password", "short"), ("confirm_password", "short")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("new_password"), "{body}");
    let (status, _, body) = app
        .post_raw(
            &b,
            "/staff/password",
            &[("csrf", &csrf), ("token", &token), ("new_password", PASSWORD), ("confirm_password", PASSWORD)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Your password is set"), "{body}");
    // The link works once.
    let (status, html) = app.page(&b, &path).await;
    assert_eq!(status, 400);
    assert!(html.contains("does not work"), "{html}");
    // The other link, made before the password was set, is spent.
    let (status, _) = app.page(&b, older.strip_prefix(&app.base).unwrap()).await;
    assert_eq!(status, 400, "made before the password was set");
    path
}

/// A browser signed in to the console.
async fn staff_browser(app: &TestApp, email: &str) -> reqwest::Client {
    let b = browser();
    let (_, html) = app.page(&b, "/staff/login").await;
    let csrf = csrf_of(&html);
    let (status, location, body) = app
        .post_raw(&b, "/staff/login", &[("csrf", &csrf), ("email", email), ("password", PASSWORD), ("next", "/staff")])
        .await;
    assert_eq!((status, location.as_str()), (303, "/staff"), "{body}");
    b
}

/// Every console page a GET reaches, and every form it posts to.
const PAGES: &[&str] = &[
    "/staff",
    "/staff/chase",
    "/staff/chase.csv",
    "/staff/outbox",
    "/staff/outbox/1",
    "/staff/outbox/1/body",
    "/staff/banners",
    "/staff/banners/preview",
    "/staff/contacts",
    "/staff/contacts?client=C-1",
    "/staff/held",
    "/staff/access",
    "/staff/anything/else",
];
const FORMS: &[&str] = &[
    "/staff/logout",
    "/staff/chase/remind",
    "/staff/outbox/1",
    "/staff/banners",
    "/staff/banners/preview",
    "/staff/banners/1/retract",
    "/staff/contacts",
    "/staff/held",
    "/staff/access",
];

/// Sam, TOT's member of staff in these tests.
const SAM: &str = "sam@tot.example";

/// An app holding the test world (each contact sent a digest when `digests`), and Sam signed
/// in to its console.
async fn console(digests: bool) -> (TestApp, reqwest::Client) {
    let app = TestApp::spawn_with(|c| {
        common::no_instant_alerts(c);
        with_chat(c);
    })
    .await;
    load_world(&app).await;
    if digests {
        digest_for_all(&app).await;
    }
    staff_account(&app, SAM).await;
    let staff = staff_browser(&app, SAM).await;
    (app, staff)
}

/// Each query on the page at `path` is refused with 400, and the page names what is wrong.
async fn refuses_each(app: &TestApp, staff: &reqwest::Client, path: &str, cases: &[(&str, &str)]) {
    for (query, says) in cases {
        let (status, body) = app.page(staff, &format!("{path}?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert!(body.contains(says), "{query}: {body}");
    }
}

/// This period's digest queued to every contact of the world, and sent.
async fn digest_for_all(app: &TestApp) {
    common::digests_now(&app.state, &["P-1A", "P-1B", "P-1F", "P-1V", "P-2A"]).await;
    cport::outbox::drain(&app.state).await.unwrap();
}

async fn status_of(app: &TestApp, id: i64) -> String {
    let (s,): (String,) = cport::store::on_db!(&app.db, p => sqlx::query_as("SELECT status FROM outbox WHERE id = $1")
        .bind(id).fetch_one(p).await)
    .unwrap();
    s
}

#[tokio::test]
async fn staff_sign_in_apart_from_clients_and_every_post_needs_csrf() {
    let app = TestApp::spawn_with(common::no_instant_alerts).await;
    load_world(&app).await;
    digest_for_all(&app).await;
    staff_account(&app, SAM).await;

    // Nobody signed in: the staff sign-in, coming back to the page asked for.
    let anon = browser();
    let r = anon.get(app.url("/staff/chase?category=A1")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/staff/login?next=%2Fstaff%2Fchase%3Fcategory%3DA1");

    // A client session: 404 on every console path, GET or POST, as if there were none.
    let client = app.signed_in("P-1A").await;
    for path in PAGES {
        let (status, _) = app.page(&client, path).await;
        assert_eq!(status, 404, "GET {path} with a client session");
    }
    for path in FORMS {
        assert_eq!(app.post_raw(&client, path, &[("csrf", "x")]).await.0, 404, "POST {path} with a client session");
    }

    // A client cookie that signs nobody in is no client: the staff sign-in, not a 404.
    let r = anon.get(app.url("/staff")).header("cookie", "cport_session=stale").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);

    // A wrong password is refused and counted; the right one signs in.
    let b = browser();
    let (_, html) = app.page(&b, "/staff/login").await;
    let csrf = csrf_of(&html);
    let (status, _, body) =
        app.post_raw(&b, "/staff/login", &[("csrf", &csrf), ("email", SAM), ("password", "not it at all")]).await;
    assert_eq!(status, 401);
    assert!(body.contains("do not match"), "{body}");
    // No password at all is said by its field, as the portal's sign-in says it.
    let (status, _, body) =
        app.post_raw(&b, "/staff/login", &[("csrf", &csrf), ("email", SAM), ("password", "")]).await;
    assert_eq!(status, 422);
    assert!(body.contains("password: give your password"), "{body}");
    let staff = staff_browser(&app, SAM).await;
    let r = staff.get(app.url("/staff")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, html) = app.page(&staff, "/staff").await;
    assert!(html.contains("Signed in as sam@tot.example"), "{html}");
    // A method an address does not take is said to staff, in the console's look; a stranger
    // is asked to sign in instead.
    let r = staff.get(app.url("/staff/logout")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("method: this address is not opened that way") && html.contains("Back to the console"),
        "{html}"
    );
    assert_eq!(anon.get(app.url("/staff/chase/remind")).send().await.unwrap().status().as_u16(), 303);
    // The staff cookie goes to /staff only: the client portal does not see a session.
    let r = staff.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "a staff session opens no client page");
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/login"));

    // Every POST without the session's CSRF token is refused and changes nothing.
    let before = (app.count("banners").await, app.count("outbox").await, app.count("staff_sessions").await);
    for path in FORMS {
        assert_eq!(
            app.post_raw(
                &staff,
                path,
                &[
                    ("title", "T"),
                    ("body", "B"),
                    ("severity", "urgent"),
                    ("action", "drop"),
                    ("contact", "P-1A"),
                    ("item", "A1:V-1"),
                ]
            )
            .await
            .0,
            403,
            "POST {path} without a CSRF token"
        );
        assert_eq!(
            app.post_raw(&staff, path, &[("csrf", "forged"), ("action", "drop")]).await.0,
            403,
            "POST {path} with a wrong CSRF token"
        );
    }
    let after = (app.count("banners").await, app.count("outbox").await, app.count("staff_sessions").await);
    assert_eq!(before, after);
    let (_, html) = app.page(&staff, "/staff").await;
    assert!(html.contains("Signed in"), "still signed in after refused posts");

    // Sign-ins are recorded; removing the account ends its session at once.
    let audit = cport::store::staff::recent_audit(&app.db, 10).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "signed in" && a.staff_email == SAM), "{audit:?}");
    assert!(cport::store::staff::remove(&app.db, SAM, Utc::now()).await.unwrap());
    let r = staff.get(app.url("/staff")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
}

#[tokio::test]
async fn the_chase_list_is_oldest_first_says_who_was_told_and_reminds_once_a_day() {
    let (app, staff) = console(false).await;

    let html = app.shown(&staff, "/staff/chase").await;
    assert!(html.contains("not yet"), "nothing was sent yet: {html}");
    digest_for_all(&app).await;
    let (_, html) = app.page(&staff, "/staff/chase").await;
    // PO-1 (ordered 2026-11-01) has waited longest; then the visuals and jobs of today.
    let first = html.find("id=\"A3:PO-1\"").expect("PO-1 listed");
    for other in ["A1:V-1", "A1:V-9", "A2:J-1"] {
        let at = html.find(&format!("id=\"{other}\"")).unwrap_or_else(|| panic!("{other} listed"));
        assert!(first < at, "PO-1 before {other}");
    }
    assert!(!html.contains("id=\"A1:V-2\""), "an approved visual is not waiting");
    assert!(html.contains("Ann Admin") && html.contains("email"), "who was told, and how");

    // Art due next week has not waited yet: 0 days, never a count below zero.
    let due = (Utc::now() + chrono::Duration::days(7)).date_naive().to_string();
    app.synced(
        "art_requirements",
        serde_json::json!([{"id": "AR-1", "client_id": "C-1", "job_id": "J-1", "design_id": "DS-1", "description": "Logo",
                "art_received": false, "art_due": due}]),
    )
    .await;
    let (_, html) = app.page(&staff, "/staff/chase?category=A4").await;
    let row = &html[html.find("id=\"A4:J-1\"").expect("J-1's art listed")..];
    let row = &row[..row.find("</tr>").unwrap_or(row.len())];
    assert!(!row.contains("<strong>-"), "{row}");
    // It has waited since cport first had it (TOT sends no date for it), never since a day
    // still to come.
    assert!(row.contains("<strong>0 d</strong>") && !row.contains(&due), "{row}");
    // Waiting at least 0 days is every item, the one dated ahead with them.
    let (_, html) = app.page(&staff, "/staff/chase?category=A4&older=0").await;
    assert!(html.contains("id=\"A4:J-1\""), "{html}");
    // A page past the last shows the last, never "nothing is waiting" beside a count.
    let (_, html) = app.page(&staff, "/staff/chase?page=9").await;
    assert!(html.contains("id=\"A4:J-1\"") && !html.contains("Page 9"), "{html}");

    // Filters: category, client, age; each bad value named.
    let (_, html) = app.page(&staff, "/staff/chase?category=A1").await;
    assert!(html.contains("id=\"A1:V-1\"") && html.contains("id=\"A1:V-9\"") && !html.contains("id=\"A3:PO-1\""));
    let (_, html) = app.page(&staff, "/staff/chase?client=C-2").await;
    assert!(html.contains("id=\"A1:V-9\"") && !html.contains("id=\"A1:V-1\""));
    let (_, html) = app.page(&staff, "/staff/chase?older=3").await;
    assert!(html.contains("id=\"A3:PO-1\"") && !html.contains("id=\"A1:V-1\""), "only what waited 3 days");
    refuses_each(
        &app,
        &staff,
        "/staff/chase",
        &[
            ("category=Z9", "category"),
            ("older=-1", "older"),
            ("older=lots", "older"),
            ("page=0", "page"),
            ("client=C-999", "client"),
        ],
    )
    .await;

    // The CSV holds the same list.
    let r = staff.get(app.url("/staff/chase.csv?category=A1")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("category,id,client_id"), "{csv}");
    assert_eq!(lines.len(), 3, "a header and the two visuals: {csv}");
    assert!(lines.iter().any(|l| l.starts_with("A1,V-1,C-1,Alpha Ltd,")), "{csv}");
    // Its times say their zone (RFC 3339, UTC): a spreadsheet reads one without as local.
    let v1: Vec<&str> = lines.iter().find(|l| l.starts_with("A1,V-1,")).unwrap().split(',').collect();
    assert!(chrono::DateTime::parse_from_rfc3339(v1[5]).is_ok(), "waiting_since: {csv}");

    // Remind now: queued once per item, contact and day, the day on the contact's clock
    // (Bob's, in a zone whose date is not UTC's at this hour).
    let zone = if chrono::Timelike::hour(&Utc::now()) >= 10 { "Pacific/Kiritimati" } else { "Pacific/Pago_Pago" };
    let bob = serde_json::json!([{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer", "email": "bob@alpha.example",
                                  "role": "buyer", "timezone": zone}]);
    app.synced("contacts", bob.clone()).await;
    let outbox = app.count("outbox").await;
    let (_, html) = app.page(&staff, "/staff/chase").await;
    let csrf = csrf_of(&html);
    let remind =
        [("csrf", csrf.as_str()), ("contact", "P-1B"), ("item", "A1:V-1"), ("back", "/staff/chase?category=A1")];
    let (status, location, _) = app.post_raw(&staff, "/staff/chase/remind", &remind).await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/staff/chase?category=A1&note=Reminder"), "{location}");
    assert!(location.contains("queued%20to%20Bob%20Buyer%20by%20email"), "in names, not ids: {location}");
    assert_eq!(app.count("outbox").await, outbox + 1);
    let (idem,): (String,) =
        cport::store::on_db!(&app.db, p => sqlx::query_as("SELECT idem_key FROM outbox ORDER BY id DESC LIMIT 1")
        .fetch_one(p).await)
        .unwrap();
    assert!(idem.starts_with("remind:P-1B:email:A1:V-1:"), "{idem}");
    let today = Utc::now().with_timezone(&zone.parse::<chrono_tz::Tz>().unwrap()).format("%Y-%m-%d").to_string();
    assert!(idem.ends_with(&today), "the day on Bob's clock ({zone}): {idem}");
    // It goes as a reminder, with the subject the outbox shows: not as something new.
    let rows = cport::store::outbox::list_messages(&app.db, None, 1).await.unwrap();
    let cport::outbox::Rendered::Email { headers, text, .. } =
        cport::outbox::render(&app.state, &rows[0], chrono::Utc::now()).await.unwrap()
    else {
        panic!("an email")
    };
    assert!(rows[0].message.subject.starts_with("TOT: Reminder: "), "{}", rows[0].message.subject);
    assert!(headers.contains(&format!("Subject: {}", rows[0].message.subject)), "{headers}");
    // Said in its words, not its links: a link's random token may spell `new` (it did once).
    let words = text.lines().filter(|l| !l.contains("http")).collect::<Vec<_>>().join("\n");
    assert!(text.contains("A reminder from TOT: this is still waiting for you.") && !words.contains("new"), "{text}");
    // Its text part says how to answer by reply, as its HTML does.
    assert!(text.contains("Reply to this email with a command, one per line: "), "{text}");
    let (status, location, _) = app.post_raw(&staff, "/staff/chase/remind", &remind).await;
    assert_eq!(status, 303);
    assert!(location.contains("already%20reminded"), "{location}");
    assert_eq!(app.count("outbox").await, outbox + 1, "once a day");
    // Dead (a bounce; the running senders may have sent it already, so it is made dead by
    // hand), the day's reminder reached no one: Remind now queues it again.
    let id = rows[0].id;
    cport::store::on_db!(&app.db, p => sqlx::query("UPDATE outbox SET status = 'dead' WHERE id = $1")
        .bind(id).execute(p).await.map(|_| ()))
    .unwrap();
    // To the same address it keeps its reply token: the dead copy may have arrived after all.
    let token = rows[0].message.reply_token.clone();
    let (status, _, _) = app.post_raw(&staff, "/staff/chase/remind", &remind).await;
    assert_eq!(status, 303);
    let again = cport::store::outbox::get_message(&app.db, id).await.unwrap().unwrap();
    assert!(token.is_some() && again.message.reply_token == token, "{:?}", again.message.reply_token);
    cport::store::on_db!(&app.db, p => sqlx::query("UPDATE outbox SET status = 'dead' WHERE id = $1")
        .bind(id).execute(p).await.map(|_| ()))
    .unwrap();
    // Bob has a new address since: the reminder queued again goes to it, not the old one.
    let mut moved = bob.clone();
    moved[0]["email"] = "robert@alpha.example".into();
    app.synced("contacts", moved).await;
    let (status, location, _) = app.post_raw(&staff, "/staff/chase/remind", &remind).await;
    assert!(status == 303 && location.contains("queued%20to%20Bob%20Buyer%20by%20email"), "{location}");
    assert_ne!(status_of(&app, id).await, "dead", "queued again");
    assert_eq!(app.count("outbox").await, outbox + 1, "the same reminder, queued again");
    let again = cport::store::outbox::get_message(&app.db, id).await.unwrap().unwrap();
    assert_eq!(again.message.recipient, "robert@alpha.example", "to the address Bob has now");
    // An item the contact does not see, and a contact that does not exist.
    let (_, location, _) =
        app.post_raw(&staff, "/staff/chase/remind", &[("csrf", &csrf), ("contact", "P-1F"), ("item", "A1:V-1")]).await;
    assert!(location.contains("no%20longer%20open"), "finance does not see visuals: {location}");
    let (status, _, body) =
        app.post_raw(&staff, "/staff/chase/remind", &[("csrf", &csrf), ("contact", "P-404"), ("item", "A1:V-1")]).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("contact: no active contact `P-404`"), "the field is named: {body}");
    // A key that is no item at all is refused by its field, not taken for one that closed.
    for item in ["A9:J-1", "A1:", "V-1"] {
        let form = [("csrf", csrf.as_str()), ("contact", "P-1B"), ("item", item)];
        let (status, _, body) = app.post_raw(&staff, "/staff/chase/remind", &form).await;
        assert_eq!(status, 422, "{item}: {body}");
        assert!(body.contains("item: ") && body.contains("is not an item"), "{item}: {body}");
    }
    // The way back stays on the chase list.
    let form = [("csrf", csrf.as_str()), ("contact", "P-1B"), ("item", "A1:V-1"), ("back", "/staff/chase/../../l/x")];
    let (_, location, _) = app.post_raw(&staff, "/staff/chase/remind", &form).await;
    assert!(location.starts_with("/staff/chase?"), "{location}");
    assert_eq!(app.count("outbox").await, outbox + 1);
    let audit = cport::store::staff::recent_audit(&app.db, 10).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "reminded" && a.subject == "P-1B of A1:V-1"), "{audit:?}");
}

/// A message written once whose signed link has expired (a sign-in email dead for days) is
/// not queued again, saying why, and one still queued when its link expires (a long outage)
/// is dropped as it would go, not sent with a link that opens nothing. A link older than the
/// message (one a client wrote, quoted back in an answer) is not its to check.
#[tokio::test]
async fn a_message_whose_link_has_expired_is_not_sent() {
    let t = common::TestState::new(|_| {}).await;
    t.load(common::world()).await;
    let (db, now) = (&t.state.db, Utc::now());
    let ann = cport::store::contacts::get_contact(db, "P-1A").await.unwrap();
    // A sign-in email with a link made at `made`, queued at `queued`.
    let queue = |key: &'static str, made: chrono::DateTime<Utc>, queued: chrono::DateTime<Utc>| {
        let url = t.state.signer.open_url("http://127.0.0.1:9", "/", "P-1A", chrono::Duration::hours(1), made);
        let p = cport::actions::mail::login_email(&t.state, &ann, &url).unwrap();
        async move {
            let mut tx = db.begin().await.unwrap();
            let row = p.queued(Some("P-1A"), cport::model::MessageKind::System, key.into(), None, now);
            let id = cport::store::outbox::insert_message(&mut tx, &row, queued).await.unwrap().unwrap();
            tx.commit().await.unwrap();
            id
        }
    };
    let two_hours_ago = now - chrono::Duration::hours(2);
    let stale = queue("test:stale", two_hours_ago, two_hours_ago).await;
    let fresh = queue("test:fresh", now, now).await;
    // A link made (by the clock) before its message was written: as a client's old link
    // quoted back in an answer is.
    let quoted = queue("test:quoted", two_hours_ago, now + chrono::Duration::minutes(2)).await;
    let three_days_ago = now - chrono::Duration::days(3);
    let dead = queue("test:dead", three_days_ago, three_days_ago).await;
    assert!(cport::store::console::hold_for(db, dead, "held-by-test", now).await.unwrap());
    let mark = cport::store::outbox::Mark::Failed { error: "421 try later", retry_at: None };
    assert!(cport::store::outbox::mark(db, dead, "held-by-test", mark, now).await.unwrap());

    let refused = cport::actions::outbox::requeue(&t.state, dead, now).await.unwrap_err().to_string();
    assert!(refused.contains("a link it carries has expired"), "{refused}");
    let status = |id: i64| async move { cport::store::outbox::get_message(db, id).await.unwrap().unwrap() };
    assert_eq!(status(dead).await.status.as_str(), "dead", "nothing changed");

    cport::outbox::drain(&t.state).await.unwrap();
    let (stale, fresh, quoted) = (status(stale).await, status(fresh).await, status(quoted).await);
    assert_eq!(stale.status.as_str(), "dropped");
    assert!(stale.last_error.as_deref().unwrap_or("").contains("a link it carries has expired"), "{stale:?}");
    assert_eq!(fresh.status.as_str(), "sent", "a link still good goes");
    assert_eq!(quoted.status.as_str(), "sent", "an older link is not the message's own: {quoted:?}");
    // One that went is said to have gone, whatever its link has come to since.
    let later = now + chrono::Duration::hours(2);
    let refused = cport::actions::outbox::requeue(&t.state, fresh.id, later).await.unwrap_err().to_string();
    assert!(refused.contains("is sent: only a failed, dead or dropped message is queued again"), "{refused}");
}

/// The CSV holds every row of the list, however long: one longer than the rows it reads at a
/// time comes whole, each item once, in the list's order.
#[tokio::test]
async fn the_chase_csv_holds_every_row_of_a_long_list() {
    let (app, staff) = console(false).await;
    let visuals: Vec<serde_json::Value> = (0..4_500)
        .map(|n| {
            serde_json::json!({"id": format!("VX-{n:05}"), "client_id": "C-1", "job_id": "J-1", "design_id": "DS-1",
                "category": "Colour visual", "designer": "Des", "status": "awaiting_approval", "main_image": "/media/v1.svg", "charges": [],
                "created_at": format!("2026-10-01T{:02}:{:02}:00Z", n / 60 % 24, n % 60)})
        })
        .collect();
    for batch in visuals.chunks(1_500) {
        app.synced("visuals", serde_json::Value::Array(batch.to_vec())).await;
    }
    let total = cport::actions::chase::matching(&app.state, &Default::default(), Utc::now()).await.unwrap().len();
    assert!(total > 4_500, "{total}");
    let r = staff.get(app.url("/staff/chase.csv")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert!(lines[0].starts_with("category,id,"), "{}", lines[0]);
    assert_eq!(lines.len(), total + 1, "a header and every row");
    // An item is its category and id (a job may wait for instructions and for art).
    let keys: Vec<(&str, &str)> = lines[1..].iter().filter_map(|l| l.split_once(',')).collect();
    let once: std::collections::BTreeSet<(&str, &str)> =
        keys.iter().map(|(c, rest)| (*c, rest.split(',').next().unwrap())).collect();
    assert_eq!(once.len(), keys.len(), "each item once");
    let waiting: Vec<&str> = lines[1..].iter().filter_map(|l| l.split(',').nth(5).filter(|w| !w.is_empty())).collect();
    assert!(waiting.windows(2).all(|w| w[0] <= w[1]), "oldest first across every page");
}

/// The world with a digest queued to Ann, and its id. No background senders: each step is the
/// test's.
async fn a_digest_to_ann() -> (common::TestState, i64) {
    let t = common::TestState::new(common::no_instant_alerts).await;
    t.load(common::world()).await;
    common::digests_now(&t.state, &["P-1A"]).await;
    let digest = cport::store::outbox::list_messages(&t.state.db, None, 1).await.unwrap()[0].id;
    (t, digest)
}

/// What the chase list says of Ann and visual V-1: when she was first told, on which channels,
/// and on which a message telling her still waits to go.
async fn ann_told_of_v1(t: &common::TestState) -> (Option<chrono::DateTime<Utc>>, Vec<String>, Vec<String>) {
    use cport::actions::chase::{ChaseFilter, list};
    let filter = ChaseFilter { client: Some("C-1".into()), ..Default::default() };
    let (_, rows) = list(&t.state, &filter, 0, 50, Utc::now()).await.unwrap();
    let row = rows.into_iter().find(|r| r.key == "A1:V-1").expect("V-1 listed");
    let ann = row.contacts.iter().find(|c| c.contact.id == "P-1A").expect("Ann sees V-1");
    let queued: Vec<String> = ann.queued.iter().map(|ch| ch.as_str().to_string()).collect();
    (row.first_sent, ann.channels.iter().map(|(ch, _)| ch.as_str().to_string()).collect(), queued)
}

/// A contact is told of an item when the message that lists it is sent, not when it is
/// queued: a digest still waiting, or one that went dead, told no one, and the chase list
/// says "not yet"; once one is sent it says when, and by which channel.
#[tokio::test]
async fn the_chase_list_counts_a_contact_told_once_the_message_is_sent() {
    let (t, digest) = a_digest_to_ann().await;
    let v1 = ann_told_of_v1;
    assert_eq!(v1(&t).await, (None, vec![], vec!["email".to_string()]), "queued is not told, but waits to be");
    let now = Utc::now();
    assert!(cport::store::console::hold_for(&t.state.db, digest, "held-by-test", now).await.unwrap());
    let mark = cport::store::outbox::Mark::Failed { error: "550 5.1.1 no such user", retry_at: None };
    assert!(cport::store::outbox::mark(&t.state.db, digest, "held-by-test", mark, now).await.unwrap());
    assert_eq!(v1(&t).await, (None, vec![], vec![]), "a dead digest told no one, and will not");
    // A second digest listing it, queued while the first is dead, is set aside: the first,
    // queued again below, still counts when it goes.
    let again = cport::digest::scheduler::Trigger::Manual { force: true };
    cport::digest::scheduler::run_pass(&t.state, Utc::now(), Some("P-1A"), again).await.unwrap();
    let second = cport::store::outbox::list_messages(&t.state.db, None, 1).await.unwrap()[0].id;
    assert_ne!(second, digest);
    let dropped = cport::store::outbox::drop_message(&t.state.db, second, "set aside by test", Utc::now()).await;
    assert!(matches!(dropped.unwrap(), cport::store::outbox::Dropping::Done));

    // Queued again and sent: told, by email, when it went.
    cport::store::outbox::requeue(&t.state.db, digest, Utc::now()).await.unwrap();
    let before = Utc::now();
    cport::outbox::drain(&t.state).await.unwrap();
    let sent = cport::store::outbox::get_message(&t.state.db, digest).await.unwrap().unwrap();
    assert_eq!(sent.status.as_str(), "sent");
    let (first, channels, queued) = v1(&t).await;
    assert!(queued.is_empty(), "{queued:?}");
    assert!(first.is_some_and(|f| f >= chrono::SubsecRound::trunc_subsecs(before, 0)), "told when it went: {first:?}");
    assert_eq!(channels, ["email"]);
    // Told once: the next digest listing it, sent, leaves the first telling as it was.
    cport::digest::scheduler::run_pass(&t.state, Utc::now(), Some("P-1A"), again).await.unwrap();
    assert_eq!(cport::outbox::drain(&t.state).await.unwrap().sent, 1, "another digest went");
    assert_eq!(v1(&t).await.0, first, "the first time it was sent");
}

/// Two messages listing one item wait for one contact: a digest, then a reminder. The
/// reminder is set aside and the digest goes: the contact was told, by the digest, whichever
/// of the two was written last. A key a message lists twice is one notice.
#[tokio::test]
async fn the_chase_list_counts_the_message_that_went_of_two_waiting() {
    let (t, digest) = a_digest_to_ann().await;
    let told = ann_told_of_v1;
    cport::actions::chase::remind(&t.state, "P-1A", "A1:V-1", Utc::now()).await.unwrap();
    let reminder = cport::store::outbox::list_messages(&t.state.db, None, 1).await.unwrap()[0].id;
    assert_ne!(digest, reminder);
    assert_eq!(told(&t).await, (None, vec![], vec!["email".to_string()]), "both wait: queued, on one channel");
    let dropped = cport::store::outbox::drop_message(&t.state.db, reminder, "set aside by test", Utc::now());
    assert!(matches!(dropped.await.unwrap(), cport::store::outbox::Dropping::Done));
    let before = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
    cport::outbox::drain(&t.state).await.unwrap();
    let sent = cport::store::outbox::get_message(&t.state.db, digest).await.unwrap().unwrap();
    assert_eq!(sent.status.as_str(), "sent");
    let (first, channels, queued) = told(&t).await;
    assert!(first.is_some_and(|f| f >= before), "told by the digest when it went: {first:?}");
    assert_eq!((channels, queued), (vec!["email".to_string()], vec![]));

    // A message listing one key twice notes it once, on both engines.
    let mut tx = t.state.db.begin().await.unwrap();
    let twice = ["A1:V-9".to_string(), "A1:V-9".to_string()];
    cport::store::ledgers::note_items(&mut tx, "P-1A", cport::model::Outlet::Email, &twice, digest, Utc::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let notices = cport::store::console::notices_of(&t.state.db, &["A1:V-9"]).await.unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
}

/// A sent message's headers are shown as written: its `Date` is when it went, not when the
/// page is viewed.
#[tokio::test]
async fn a_sent_message_shows_the_date_it_went() {
    let (app, staff) = console(true).await;
    cport::outbox::drain(&app.state).await.unwrap();
    let sent = cport::store::outbox::list_messages(&app.db, Some("sent"), 50).await.unwrap();
    let row = sent.iter().find(|m| m.message.channel.as_str() == "email").expect("a sent email");
    let went = chrono::DateTime::parse_from_rfc3339("2026-11-02T10:11:12Z").unwrap().with_timezone(&Utc);
    cport::store::on_db!(&app.db, p => sqlx::query("UPDATE outbox SET sent_at = $1 WHERE id = $2")
        .bind(went).bind(row.id).execute(p).await.map(|_| ()))
    .unwrap();
    let html = app.shown(&staff, &format!("/staff/outbox/{}", row.id)).await;
    assert!(html.contains("Date: Mon, 02 Nov 2026 10:11:12 +0000") && html.contains("<h2>As sent</h2>"), "{html}");
    app.stop().await;
}

/// A server's refusal that repeats the message's bounce address is shown with the address's
/// token hidden, in the list, the last error and each attempt: whoever reads it could
/// otherwise report bounces for the message.
#[tokio::test]
async fn a_send_error_is_shown_with_its_tokens_hidden() {
    let (app, staff) = console(true).await;
    cport::outbox::drain(&app.state).await.unwrap();
    let row = cport::store::outbox::list_messages(&app.db, Some("sent"), 50).await.unwrap().remove(0);
    let token = "4levozxvtnkg3vw7nhf5qkl4";
    let error = format!("553 5.7.1 <bounce+{token}@reply.tot.example>: Sender address rejected");
    cport::store::on_db!(&app.db, p => async {
        sqlx::query("UPDATE outbox SET status = 'dead', last_error = $1 WHERE id = $2")
            .bind(&error).bind(row.id).execute(p).await?;
        sqlx::query("INSERT INTO outbox_attempts (outbox_id, at, outcome, error) VALUES ($1, $2, 'dead', $3)")
            .bind(row.id).bind(Utc::now()).bind(&error).execute(p).await.map(|_| ())
    }.await)
    .unwrap();
    for page in ["/staff/outbox".to_string(), format!("/staff/outbox/{}", row.id)] {
        let html = app.shown(&staff, &page).await;
        assert!(html.contains("Sender address rejected"), "{page}: the error is shown: {html}");
        assert!(!html.contains(token), "{page}: {html}");
    }
    app.stop().await;
}

/// A sign-in email to Ann queued under `key`, due at `at` (one in hours the running
/// dispatcher leaves be); its id.
async fn sign_in_mail_due(app: &TestApp, key: &str, at: chrono::DateTime<Utc>) -> i64 {
    let ann = cport::store::contacts::get_contact(&app.db, "P-1A").await.unwrap();
    let p = cport::actions::mail::login_email(&app.state, &ann, "http://127.0.0.1:9/l/x").unwrap();
    let mut tx = app.db.begin().await.unwrap();
    let queued = p.queued(Some("P-1A"), cport::model::MessageKind::System, key.into(), None, at);
    let id = cport::store::outbox::insert_message(&mut tx, &queued, Utc::now()).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    id
}

/// Message `id` fails for good through the dispatcher's own claim and mark: it is dead.
async fn goes_dead(app: &TestApp, id: i64) {
    let now = Utc::now();
    assert!(cport::store::console::hold_for(&app.db, id, "held-by-test", now).await.unwrap());
    let mark = cport::store::outbox::Mark::Failed { error: "550 5.1.1 no such user", retry_at: None };
    assert!(cport::store::outbox::mark(&app.db, id, "held-by-test", mark, now).await.unwrap());
}

#[tokio::test]
async fn the_outbox_shows_a_message_as_sent_requeues_a_dead_one_and_drops_a_queued_one() {
    let (app, staff) = console(true).await;
    // The digests are sent before the list is read: the running dispatcher may not have got
    // to them yet.
    cport::outbox::drain(&app.state).await.unwrap();

    // Two messages due in 12 hours (the running dispatcher leaves them be): one fails for
    // good through the dispatcher's own mark, the other waits.
    let now = Utc::now();
    let later = now + chrono::Duration::hours(12);
    let (dead, waiting) =
        (sign_in_mail_due(&app, "test:dead", later).await, sign_in_mail_due(&app, "test:waiting", later).await);
    goes_dead(&app, dead).await;

    let html = app.shown(&staff, "/staff/outbox?status=dead").await;
    assert!(html.contains(&format!("/staff/outbox/{dead}\"")) && html.contains("550 5.1.1"), "{html}");
    let (_, html) = app.page(&staff, "/staff/outbox?status=sent&channel=email&kind=digest&client=C-1").await;
    assert!(!html.contains(&format!("/staff/outbox/{dead}\"")), "a dead message is not sent");
    assert!(html.contains("ann@alpha.example") && !html.contains("zed@beta.example"), "client C-1 only");
    // Until the last day a date may name is no bound at all: every message, never none.
    let (_, html) = app.page(&staff, "/staff/outbox?status=dead&until=9999-12-31").await;
    assert!(html.contains(&format!("/staff/outbox/{dead}\"")), "{html}");
    // A page past the end says so, not "no message matches" of a list that has some.
    let html = app.shown(&staff, "/staff/outbox?page=500").await;
    assert!(html.contains("Nothing on page 500") && !html.contains("No message matches"), "{html}");
    refuses_each(
        &app,
        &staff,
        "/staff/outbox",
        &[
            ("status=lost", "status"),
            ("channel=fax", "channel"),
            ("from=yesterday", "from"),
            ("until=-5000-01-01", "until"),
            ("from=99999-01-01", "from"),
            ("from=2026-12-05&until=2026-12-01", "until: a day before from"),
            ("status=sent&status=dead", "status: is given twice"),
            ("client=%ff", "client: not text in UTF-8"),
            // A name that is not text is said as it was sent.
            ("client%FF=C-1", "client%FF: not text in UTF-8"),
            ("client=%E2%80%AE", "may hold only letters"),
            ("contact=a%20b", "contact: "),
            // A mistyped id is said as one, not shown as "no messages".
            ("client=C-999", "client: no client `C-999`"),
            ("contact=p-102", "contact: no contact `p-102`"),
        ],
    )
    .await;

    let html = app.shown(&staff, &format!("/staff/outbox/{dead}")).await;
    assert!(html.contains("Subject:") && html.contains("Message-ID:"), "the headers as written: {html}");
    assert!(html.contains("<h2>As it would go now</h2>"), "a dead message never went: {html}");
    assert!(html.contains("dead") && html.contains("550 5.1.1 no such user"), "the failed attempt");
    assert!(
        html.contains("(link token hidden)") && !html.contains("&#x2f;l&#x2f;x"),
        "no working sign-in link for staff: {html}"
    );
    assert!(html.contains(&format!("src=\"/staff/outbox/{dead}/body\"")) && html.contains("sandbox"));
    let r = staff.get(app.url(&format!("/staff/outbox/{dead}/body"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("sandbox") && csp.contains("frame-ancestors 'self'"), "{csp}");
    let body = r.text().await.unwrap();
    assert!(body.contains("<html"), "the email's HTML");
    // The HTML writes a link's slashes as `&#x2f;`: its tokens are hidden all the same.
    for link in body.split("&#x2f;l&#x2f;").skip(1).chain(body.split("/l/").skip(1)) {
        assert!(link.starts_with("(link token hidden)"), "a sign-in link in the HTML: {}", &link[..link.len().min(80)]);
    }

    // Two actions at once (a crafted form): refused by the field, nothing done.
    let (status, _, body) =
        app.post_form(&staff, &format!("/staff/outbox/{dead}"), &[("action", "requeue"), ("action", "drop")]).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("action: is given twice"), "{body}");
    assert_eq!(cport::store::outbox::get_message(&app.db, dead).await.unwrap().unwrap().status.as_str(), "dead");
    // Under /staff, even an address refused before any route reads it is the console's page.
    let (status, body) = app.page(&staff, "/staff/outbox?client=a&client=b").await;
    assert_eq!(status, 400);
    assert!(body.contains("Back to the console"), "{body}");

    // Re-queue the dead one (and only once: then it is queued, or already sent again);
    // drop the waiting one.
    let metrics = app.text("/metrics").await;
    assert!(metrics.contains("cport_outbox_messages{status=\"dead\"} 1"), "{metrics}");
    app.submit(&staff, &format!("/staff/outbox/{dead}"), &[("action", "requeue")]).await;
    assert_ne!(status_of(&app, dead).await, "dead");
    // A state emptied since the last scrape reads 0, not its old count; sent ones are counted
    // by the counter, not by reading every message ever sent.
    let metrics = app.text("/metrics").await;
    assert!(metrics.contains("cport_outbox_messages{status=\"dead\"} 0"), "{metrics}");
    assert!(!metrics.contains("cport_outbox_messages{status=\"sent\"}"), "{metrics}");
    // Clicked again (the page left open, a double click): said to be done, not a failure,
    // and done once.
    let location = app.submit(&staff, &format!("/staff/outbox/{dead}"), &[("action", "requeue")]).await;
    let page = app.shown(&staff, &location).await;
    assert!(page.contains(&format!("Nothing more to do: message {dead} is ")), "{page}");
    let (_, page) = app.page(&staff, &format!("/staff/outbox/{waiting}")).await;
    assert!(page.contains("Drop this message?"), "dropping asks first: {page}");
    app.submit(&staff, &format!("/staff/outbox/{waiting}"), &[("action", "drop")]).await;
    assert_eq!(status_of(&app, waiting).await, "dropped");
    let location = app.submit(&staff, &format!("/staff/outbox/{waiting}"), &[("action", "drop")]).await;
    let page = app.shown(&staff, &location).await;
    assert!(page.contains(&format!("Nothing more to do: message {waiting} is dropped now.")), "{page}");
    // A refusal is shown in the console's look.
    let (status, _, body) = app.post_form(&staff, &format!("/staff/outbox/{waiting}"), &[("action", "burn")]).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("Back to the console") && !body.contains("Go to the portal"),
        "a console error is shown in the console's look: {body}"
    );
    // A drop can be undone: the dropped message is queued again.
    let (_, page) = app.page(&staff, &format!("/staff/outbox/{waiting}")).await;
    assert!(page.contains("it will not be tried again") && page.contains("Queue again"), "{page}");
    assert!(!page.contains("Drop this message?"), "a dropped message offers no drop: {page}");
    app.submit(&staff, &format!("/staff/outbox/{waiting}"), &[("action", "requeue")]).await;
    assert_ne!(status_of(&app, waiting).await, "dropped");
    let (status, _, body) = app.post_form(&staff, &format!("/staff/outbox/{dead}"), &[("action", "burn")]).await;
    assert_eq!(status, 422);
    assert!(body.contains("action"), "{body}");
    let (status, _) = app.page(&staff, "/staff/outbox/999999").await;
    assert_eq!(status, 404);
    let audit = cport::store::staff::recent_audit(&app.db, 10).await.unwrap();
    let done: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert!(done.contains(&"re-queued message") && done.contains(&"dropped message"), "{done:?}");
    assert_eq!(done.iter().filter(|a| **a == "dropped message").count(), 1, "dropped once: {done:?}");

    // A message for a contact TOT has since removed would be dropped at once by the sender:
    // staff are told so, not that it goes with the next send.
    let gone = sign_in_mail_due(&app, "test:gone", later).await;
    app.submit(&staff, &format!("/staff/outbox/{gone}"), &[("action", "drop")]).await;
    let page = app.shown(&staff, &format!("/staff/outbox/{gone}")).await;
    assert!(page.contains("Queue again"), "{page}");
    assert_eq!(app.delete("contacts", &["P-1A"]).await.0, 200);
    // The page offers it by the rule the action takes: not offered, and why said.
    let page = app.shown(&staff, &format!("/staff/outbox/{gone}")).await;
    assert!(page.contains("It cannot be sent again now: the contact is no longer active."), "{page}");
    assert!(!page.contains("Queue again"), "{page}");
    let (status, _, body) = app.post_form(&staff, &format!("/staff/outbox/{gone}"), &[("action", "requeue")]).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("would not be sent (the contact is no longer active)"), "{body}");
    assert_eq!(status_of(&app, gone).await, "dropped");
}

/// A dead letter staff have looked at and will not send again is set aside: it leaves the
/// overview's dead letters waiting and the dead gauge, its failed attempt kept, and it can
/// be queued again like any dropped message.
#[tokio::test]
async fn a_dead_letter_set_aside_no_longer_waits() {
    let (app, staff) = console(false).await;
    let dead = sign_in_mail_due(&app, "test:dead", Utc::now() + chrono::Duration::hours(12)).await;
    goes_dead(&app, dead).await;
    let overview = app.shown(&staff, "/staff").await;
    assert!(overview.contains("<strong>1</strong> dead letter(s) waiting"), "{overview}");
    let page = app.shown(&staff, &format!("/staff/outbox/{dead}")).await;
    assert!(page.contains("Set this dead message aside?"), "setting aside asks first: {page}");
    let to = app.submit(&staff, &format!("/staff/outbox/{dead}"), &[("action", "drop")]).await;
    let told = app.shown(&staff, &to).await;
    assert!(told.contains("Set aside; it no longer counts as a dead letter waiting."), "{told}");
    assert!(told.contains("550 5.1.1 no such user"), "the failed attempt is kept: {told}");
    assert_eq!(status_of(&app, dead).await, "dropped");
    let overview = app.shown(&staff, "/staff").await;
    assert!(overview.contains("<strong>0</strong> dead letter(s) waiting"), "{overview}");
    assert!(app.text("/metrics").await.contains("cport_outbox_messages{status=\"dead\"} 0"));
    // Once only: a second click does nothing more, and says so, naming the state it is in.
    let to = app.submit(&staff, &format!("/staff/outbox/{dead}"), &[("action", "drop")]).await;
    let told = app.shown(&staff, &to).await;
    assert!(told.contains(&format!("Nothing more to do: message {dead} is dropped now.")), "{told}");
    // Undone the way a drop is.
    app.submit(&staff, &format!("/staff/outbox/{dead}"), &[("action", "requeue")]).await;
    assert_ne!(status_of(&app, dead).await, "dropped");

    // Another set aside, and its content cleared with age: said, and not offered again.
    let old = sign_in_mail_due(&app, "test:old", Utc::now() + chrono::Duration::hours(12)).await;
    goes_dead(&app, old).await;
    app.submit(&staff, &format!("/staff/outbox/{old}"), &[("action", "drop")]).await;
    cport::store::on_db!(&app.db, p => sqlx::query("DELETE FROM outbox_payloads WHERE outbox_id = $1")
        .bind(old).execute(p).await.map(|_| ()))
    .unwrap();
    let page = app.shown(&staff, &format!("/staff/outbox/{old}")).await;
    assert!(page.contains("after it was dropped") && page.contains("so it cannot be sent again"), "{page}");
    assert!(!page.contains("Queue again"), "{page}");
    let (status, _, body) = app.post_form(&staff, &format!("/staff/outbox/{old}"), &[("action", "requeue")]).await;
    assert!(status == 409 && body.contains("its content was cleared"), "{status} {body}");
    assert_eq!(status_of(&app, old).await, "dropped");
}

#[tokio::test]
async fn a_banner_is_previewed_then_posted_to_its_audience_and_retracted() {
    let (app, staff) = console(false).await;

    let form = [
        ("title", "Closed Friday"),
        ("body", "The works close at noon on Friday."),
        ("severity", "urgent"),
        ("audience", "chosen"),
        ("clients", "C-1"),
        ("starts_at", ""),
        ("expires_at", ""),
    ];
    let (status, _, html) = app.post_form(&staff, "/staff/banners", &[]).await;
    assert_eq!(status, 422, "an empty form is refused: {html}");
    let (status, _, html) = {
        let (_, page) = app.page(&staff, "/staff/banners").await;
        let csrf = csrf_of(&page);
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(&form);
        app.post_raw(&staff, "/staff/banners/preview", &fields).await
    };
    assert_eq!(status, 200, "{html}");
    // Client C-1 has four contacts, each with email.
    assert!(
        html.contains("queues it at once to <strong>4</strong> contact(s): 4 email(s) and 0 chat message(s)"),
        "{html}"
    );
    assert!(html.contains("srcdoc=") && html.contains("URGENT: Closed Friday"), "email and chat forms: {html}");
    assert_eq!(app.count("banners").await, 0, "a preview writes nothing");
    // One that starts later goes then, not at once, and the preview says so.
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M").to_string();
    let (status, _, html) = {
        let (_, page) = app.page(&staff, "/staff/banners").await;
        let csrf = csrf_of(&page);
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend(form.iter().map(|(k, v)| if *k == "starts_at" { (*k, tomorrow.as_str()) } else { (*k, *v) }));
        app.post_raw(&staff, "/staff/banners/preview", &fields).await
    };
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("posting it queues it to go at") && !html.contains("at once to"), "{html}");

    for (field, value, named) in [
        ("title", "", "title"),
        ("severity", "dire", "severity"),
        ("clients", "C-404", "C-404"),
        ("expires_at", "2020-01-01T00:00", "expires_at"),
        ("starts_at", "1900-01-01T00:00", "starts_at: `1900-01-01T00:00` is not between the years 1970 and 9999"),
        ("starts_at", "0001-01-01T00:00:00Z", "is not between the years 1970 and 9999"),
        ("starts_at", "9999-12-30T00:00", "starts_at: must be within 366 days from now"),
        ("starts_at", "soon", "starts_at"),
        ("title", "two\u{7}lines", "title"),
        // A choice the form does not offer never widens the banner to every client.
        ("audience", "everyone", "audience: `everyone` is not all or chosen"),
        ("audience", "", "audience: missing"),
        // Ids typed with "every client" still ticked: which was meant cannot be told.
        ("audience", "all", "clients: ids are given, but the audience is every client"),
    ] {
        let fields: Vec<(&str, &str)> =
            form.iter().map(|(k, v)| if *k == field { (*k, value) } else { (*k, *v) }).collect();
        let (status, _, body) = app.post_form(&staff, "/staff/banners", &fields).await;
        assert_eq!(status, 422, "{field}={value:?}");
        assert!(body.contains(named), "{field}={value:?} names {named}: {body}");
    }
    assert_eq!(app.count("banners").await, 0);

    // Banner messages only: the running app's alert scanner may queue alerts meanwhile.
    let banners_queued = "outbox WHERE kind = 'banner'";
    let outbox = app.count(banners_queued).await;
    // An urgent banner is posted only from a preview of exactly its fields: a post without
    // one shows the preview, with its reach, and posts nothing.
    let (status, _, html) = app.post_form(&staff, "/staff/banners", &form).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("check its reach") && html.contains("<strong>4</strong> contact(s)"), "{html}");
    assert_eq!(app.count("banners").await, 0, "not posted yet");
    let confirm = common::hidden_value(&html, "confirm").expect("a confirmation in the form");
    let changed: Vec<(&str, &str)> = form
        .iter()
        .map(|(k, v)| if *k == "body" { (*k, "Open as usual.") } else { (*k, *v) })
        .chain([("confirm", confirm.as_str())])
        .collect();
    let (status, _, _) = app.post_form(&staff, "/staff/banners", &changed).await;
    assert_eq!((status, app.count("banners").await), (200, 0), "changed after its preview: previewed again");
    let mut confirmed = form.to_vec();
    confirmed.push(("confirm", &confirm));
    let location = app.submit(&staff, "/staff/banners", &confirmed).await;
    assert!(location.contains("4%20message"), "{location}");
    assert_eq!(app.count("banners").await, 1);
    assert_eq!(app.count(banners_queued).await, outbox + 4);
    // The same confirmed form sent again, five times at once (a second click, the back
    // button): refused, saying it was posted, and nobody is emailed twice.
    let again = futures::future::join_all((0..5).map(|_| app.post_form(&staff, "/staff/banners", &confirmed))).await;
    for (status, _, html) in &again {
        assert_eq!(*status, 409, "{html}");
        assert!(html.contains("This preview was posted already: the banners list shows it"), "{html}");
    }
    assert_eq!((app.count("banners").await, app.count(banners_queued).await), (1, outbox + 4));
    // The same banner sent by TOT's system through the API a moment later: one post, refused.
    let (status, v) = app
        .api(
            reqwest::Method::POST,
            "/api/v1/banners",
            Some(serde_json::json!({"title": "Closed Friday", "body": "The works close at noon on Friday.",
                                    "severity": "urgent", "clients": ["C-1"]})),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!((app.count("banners").await, app.count(banners_queued).await), (1, outbox + 4));
    // A second banner's preview shows the digest as C-1 will get it: led by both, the
    // urgent one first.
    let stocktake =
        [("title", "Stocktake"), ("body", "Counts on Monday."), ("severity", "warning"), ("audience", "all")];
    let (_, page) = app.page(&staff, "/staff/banners").await;
    let csrf = csrf_of(&page);
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(&stocktake);
    let (status, _, html) = app.post_raw(&staff, "/staff/banners/preview", &fields).await;
    assert_eq!(status, 200, "{html}");
    let preview = &html[html.find("id=\"preview\"").expect("a preview")..];
    let preview = &preview[..preview.find("</section>").unwrap_or(preview.len())];
    // The chat bubble lists them in the digest's order.
    let bubble = &preview[preview.find("class=\"bubble\"").expect("a chat preview")..];
    let (urgent, warning) = (bubble.find("Closed Friday"), bubble.find("Stocktake"));
    assert!(urgent.is_some() && warning.is_some() && urgent < warning, "{bubble}");
    // The client portal shows it to C-1 and not to C-2.
    let (_, page) = app.page(&app.signed_in("P-1B").await, "/").await;
    assert!(page.contains("Closed Friday"));
    let (_, page) = app.page(&app.signed_in("P-2A").await, "/").await;
    assert!(!page.contains("Closed Friday"));

    let (_, html) = app.page(&staff, "/staff/banners").await;
    let id: i64 = {
        let at = html.find("/retract\"").expect("a retract form");
        let start = html[..at].rfind("/staff/banners/").unwrap() + "/staff/banners/".len();
        html[start..at].parse().unwrap()
    };
    let (_, html) = app.page(&staff, "/staff/banners").await;
    let csrf = csrf_of(&html);
    assert_eq!(app.post_raw(&staff, &format!("/staff/banners/{id}/retract"), &[("csrf", &csrf)]).await.0, 303);
    let (_, page) = app.page(&app.signed_in("P-1B").await, "/").await;
    assert!(!page.contains("Closed Friday"), "retracted");
    // Again, from a page left open: staff are told it was done before, not that it is missing.
    let (status, location, _) = app.post_raw(&staff, &format!("/staff/banners/{id}/retract"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let page = app.shown(&staff, &location).await;
    assert!(page.contains(&format!("Banner {id} was retracted already, at ")), "{page}");
    assert_eq!(app.post_raw(&staff, "/staff/banners/424242/retract", &[("csrf", &csrf)]).await.0, 404);
    // Its pushes, dropped or sent, are not offered to be queued again.
    let pushes = cport::store::outbox::list_messages(&app.db, None, 100).await.unwrap();
    let push = pushes.iter().find(|m| m.message.kind.as_str() == "banner").expect("a push");
    let html = app.shown(&staff, &format!("/staff/outbox/{}", push.id)).await;
    assert!(html.contains("cannot be sent again") && !html.contains("Queue again"), "{html}");
    // The preview's form sent once more after the retraction (the back button): its preview
    // posted once, so nothing goes again; a fresh preview is asked for.
    let (status, _, html) = app.post_form(&staff, "/staff/banners", &confirmed).await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("This preview was posted already"), "{html}");
    assert_eq!((app.count("banners").await, app.count(banners_queued).await), (1, outbox + 4));
    // A confirmation altered by hand (its time moved) is no confirmation: the preview again.
    let moved = format!("1{confirm}");
    let tampered: Vec<(&str, &str)> = form.iter().copied().chain([("confirm", moved.as_str())]).collect();
    let (status, _, html) = app.post_form(&staff, "/staff/banners", &tampered).await;
    assert!(status == 200 && html.contains("check its reach"), "{status}: {html}");
    assert_eq!(app.count("banners").await, 1);
}

#[tokio::test]
async fn access_requests_reach_the_console_and_the_feed_and_the_person_is_told() {
    let app = TestApp::spawn_with(common::no_instant_alerts).await;
    load_world(&app).await;
    let visitor = browser();
    let (_, html) = app.page(&visitor, "/login").await;
    assert!(html.contains("Request access"), "{html}");
    let csrf = csrf_of(&html);
    let ask = |name: &'static str, email: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", name.to_string()),
            ("email", email.to_string()),
            ("company", "Gamma Events".to_string()),
            ("note", "We order hoodies".to_string()),
        ]
    };
    for (fields, named) in [
        (ask("Gus", "not-an-address"), "email"),
        (ask("", "gus@gamma.example"), "name"),
        (ask("Gus\u{1b}[2J", "gus@gamma.example"), "name"),
        // A name of a direction control alone is refused for that, not said to be empty.
        (ask("\u{202e}\u{200b}", "gus@gamma.example"), "name: holds the direction control character U+202E"),
        // A form feed alone is blank (trimmed away before its characters are checked).
        (ask("\u{c}", "gus@gamma.example"), "name: must not be empty"),
    ] {
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, body) = app.post_raw(&visitor, "/access", &f).await;
        assert_eq!(status, 422);
        assert!(body.contains(named), "{named}: {body}");
    }
    assert_eq!(app.count("access_requests").await, 0);
    // A known address and an unknown one get the same answer.
    let mut answers = vec![];
    // Gus again while his request is open (another address case): the same answer, and his
    // open request stands alone.
    for (name, email) in
        [("Gus Gamma", "gus@gamma.example"), ("Ann", "ann@alpha.example"), ("Gus", "GUS@gamma.example")]
    {
        let f = ask(name, email);
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, body) = app.post_raw(&visitor, "/access", &f).await;
        assert_eq!(status, 200);
        answers.push(body);
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(app.count("access_requests").await, 2);
    let feed = app.changes(0).await;
    let asked: Vec<_> = feed.iter().filter(|c| c["kind"] == "access_requested").collect();
    assert_eq!(asked.len(), 2, "{feed:?}");
    assert_eq!(asked[0]["data"]["email"], "gus@gamma.example");

    staff_account(&app, SAM).await;
    let staff = staff_browser(&app, SAM).await;
    let (_, html) = app.page(&staff, "/staff").await;
    assert!(html.contains("<strong>2</strong> open access request(s)"), "{html}");
    let (_, html) = app.page(&staff, "/staff/access").await;
    assert!(html.contains("Gus Gamma") && html.contains("We order hoodies"));
    let id = asked[0]["subject_id"].as_str().unwrap().to_string();
    // Done before the account is there would tell Gus of an account he cannot use.
    let (status, _, body) = app.post_form(&staff, "/staff/access", &[("id", &id), ("decision", "done")]).await;
    assert!(status == 409 && body.contains("no contact has the address gus@gamma.example yet"), "{status} {body}");
    let (status, _, body) = app.post_form(&staff, "/staff/access", &[("id", "999"), ("decision", "done")]).await;
    assert!(status == 422 && body.contains("id: there is no access request 999"), "{status} {body}");
    app.synced(
        "contacts",
        serde_json::json!([{"id": "P-1G", "client_id": "C-1", "name": "Gustav Gamma", "email": "gus@gamma.example", "role": "buyer"}]),
    )
    .await;
    app.submit(&staff, "/staff/access", &[("id", &id), ("decision", "done")]).await;
    let (status, _, body) = app.post_form(&staff, "/staff/access", &[("id", &id), ("decision", "refused")]).await;
    assert_eq!(status, 409, "decided once: {body}");
    assert!(body.contains("was decided already (done)"), "{body}");
    assert!(body.contains(&format!("(done) by {SAM}")), "and by whom: {body}");
    // A second click of the same decision is no error: it says so, and sends nothing more.
    let again = app.submit(&staff, "/staff/access", &[("id", &id), ("decision", "done")]).await;
    let page = app.shown(&staff, &again).await;
    assert!(page.contains(&format!("Request {id} was marked done already by {SAM} at ")), "{page}");
    assert!(page.contains("nothing more was sent"), "{page}");
    let told: Vec<_> = cport::store::outbox::list_messages(&app.db, None, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.message.recipient == "gus@gamma.example")
        .collect();
    assert_eq!(told.len(), 1);
    assert!(told[0].message.payload.contains("is ready"), "{}", told[0].message.payload);
    // Greeted as the contact TOT made, for its client: the form's words may be anyone's.
    assert!(told[0].message.payload.contains("Hello Gustav Gamma"), "{}", told[0].message.payload);
    assert!(
        told[0].message.payload.contains("portal for Alpha Ltd") && !told[0].message.payload.contains("Gamma Events")
    );
    // Once decided, a new request from the same address is a new request.
    let f = ask("Gus Gamma", "gus@gamma.example");
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(app.post_raw(&visitor, "/access", &f).await.0, 200);
    assert_eq!(app.count("access_requests").await, 3);

    // More open requests than a page lists: the page says how many it leaves out.
    let mut tx = app.db.begin().await.unwrap();
    for i in 0..200 {
        let email = format!("asker{i}@example.com");
        cport::store::access::insert(&mut tx, "Asker", &email, "Co", "", Utc::now()).await.unwrap();
    }
    tx.commit().await.unwrap();
    let (_, html) = app.page(&staff, "/staff/access").await;
    assert!(html.contains("The oldest 200 of 202 open requests are shown"), "{html}");
}

/// Takes in `raw` with its U+0001 marker sent as the byte of `é` in ISO 8859-1 (not UTF-8
/// on its own), and checks the message was held.
async fn held_as_latin1(app: &TestApp, raw: &str) {
    let bytes: Vec<u8> = raw.bytes().map(|b| if b == 1 { 0xE9 } else { b }).collect();
    let d = cport::channels::inbound::handle(&app.state, &bytes, Utc::now()).await.unwrap();
    assert!(matches!(d, cport::channels::inbound::Disposition::Held(_)), "{d:?}");
}

/// A world whose mail is checked against `mx.tot.example`'s results, Sam signed in to the
/// console, and the reply token and domain of a digest to Ann.
async fn holding_mail() -> (TestApp, reqwest::Client, String, String) {
    mail_console(|c| {
        c.inbound.trusted_authserv_ids = vec!["mx.tot.example".into()];
        with_chat(c);
    })
    .await
}

/// A Discord app set up (its interactions only come in): chat link codes are offered.
fn with_chat(c: &mut cport::config::Config) {
    c.discord.public_key = "ab".repeat(32);
}

/// A console with a staff member signed in and a digest to every contact, configured by
/// `configure`; with the reply token and domain of Ann's digest.
async fn mail_console(
    configure: impl FnOnce(&mut cport::config::Config),
) -> (TestApp, reqwest::Client, String, String) {
    let app = TestApp::spawn_with(configure).await;
    load_world(&app).await;
    digest_for_all(&app).await;
    staff_account(&app, SAM).await;
    let staff = staff_browser(&app, SAM).await;
    let token = common::digest_to_reply_to(&app.db, &app.state.signer, "P-1A", "ann@alpha.example").await;
    let domain = app.state.config.email.reply_domain.clone();
    (app, staff, token, domain)
}

/// More held mail than one page shows is paged, newest first: the oldest, which has waited
/// longest, is reached by Older rather than hidden until the newer ones are dealt with.
#[tokio::test]
async fn held_mail_is_paged_newest_first() {
    let (app, staff, token, domain) = holding_mail().await;
    let start = Utc::now() - chrono::Duration::hours(2);
    for n in 0..51 {
        let raw = format!(
            "Authentication-Results: mx.tot.example; dmarc=fail (p=reject) header.from=alpha.example\r\n\
             From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
             Message-ID: <paged-{n}@alpha.example>\r\n\r\nITEMS\r\n"
        );
        let at = start + chrono::Duration::seconds(n);
        let d = cport::channels::inbound::handle(&app.state, raw.as_bytes(), at).await.unwrap();
        assert!(matches!(d, cport::channels::inbound::Disposition::Held(_)), "{d:?}");
    }
    let (_, first) = app.page(&staff, "/staff/held").await;
    assert!(first.contains("1–50 of 51, newest first; the older ones are on the next pages"), "{first}");
    assert!(first.contains("paged-50@") && !first.contains("paged-0@"), "the newest first");
    assert!(first.contains("href=\"/staff/held?page=2\">Older"), "{first}");
    let (_, second) = app.page(&staff, "/staff/held?page=2").await;
    assert!(second.contains("paged-0@") && second.contains("51–51 of 51"), "{second}");
    assert!(second.contains("href=\"/staff/held?page=1\">Newer") && !second.contains(">Older<"), "{second}");
    let (status, html) = app.page(&staff, "/staff/held?page=0").await;
    assert!(status == 400 && html.contains("page:"), "{status} {html}");
}

#[tokio::test]
async fn a_large_held_message_shows_its_start_and_its_authentication_results() {
    let (app, staff, token, domain) = holding_mail().await;
    // 100,000 two-byte characters: more than the page shows, cut on a character.
    let body = "\u{3a9}".repeat(100_000);
    let raw = format!(
        "Authentication-Results: mx.tot.example; dmarc=fail (p=reject) header.from=alpha.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
         Message-ID: <big-1@alpha.example>\r\nDate: Wed, 02 Dec 2026 09:00:00 +0000\r\n\r\nAPPROVE V-1\r\n{body}\r\nLAST-LINE\r\n"
    );
    let d = cport::channels::inbound::handle(&app.state, raw.as_bytes(), Utc::now()).await.unwrap();
    assert!(matches!(d, cport::channels::inbound::Disposition::Held(_)), "{d:?}");

    let (_, html) = app.page(&staff, "/staff/held").await;
    assert!(html.contains("big-1@alpha.example"), "the message is listed");
    assert!(html.contains("dmarc=fail (p=reject) header.from=alpha.example"), "its Authentication-Results are shown");
    assert!(
        html.contains("APPROVE V-1") && html.contains("the rest is not shown"),
        "its start is shown, and that it goes on"
    );
    assert!(!html.contains("LAST-LINE"), "the page does not carry the whole message");
    // What releasing it runs is read from the whole message, however long.
    assert!(html.contains("Releasing it runs") && html.contains("<code>APPROVE V-1</code>"), "{}", &html[..4000]);

    // Released, the whole message is acted on.
    app.submit(&staff, "/staff/held", &[("message_id", "big-1@alpha.example"), ("action", "release")]).await;
    assert_eq!(app.visual_status("V-1").await, "approved");
    app.stop().await;
}

#[tokio::test]
async fn contacts_held_mail_and_the_overview() {
    let (app, staff, token, domain) = holding_mail().await;

    // A reply whose authentication failed is held; staff release it and it is acted on.
    let raw = format!(
        "Authentication-Results: mx.tot.example; dmarc=fail (p=none) header.from=alpha.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
         Message-ID: <held-1@alpha.example>\r\nDate: Wed, 02 Dec 2026 09:00:00 +0000\r\n\r\nAPPROVE V-1\r\n"
    );
    let d = cport::channels::inbound::handle(&app.state, raw.as_bytes(), Utc::now()).await.unwrap();
    assert!(matches!(d, cport::channels::inbound::Disposition::Held(_)), "{d:?}");
    // A third's text is base64 (as many programs write one not in ASCII): the page says what
    // releasing it would run, decoded.
    let encoded =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "REJECT V-1 trop sombre, désolé\r\n");
    let third = raw.replace("held-1@", "held-3@").replace(
        "\r\n\r\nAPPROVE V-1\r\n",
        &format!("\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n"),
    );
    cport::channels::inbound::handle(&app.state, third.as_bytes(), Utc::now()).await.unwrap();
    let (_, html) = app.page(&staff, "/staff/held").await;
    assert!(html.contains("Releasing it runs") && html.contains("<code>REJECT V-1</code>"), "{html}");
    app.submit(&staff, "/staff/held", &[("message_id", "held-3@alpha.example"), ("action", "discard")]).await;
    // The second quotes Ann's sign-in link as an older mail program wraps it, over two lines.
    let token = app.state.signer.sign(
        cport::links::Purpose::Open,
        "/visuals/V-1",
        "P-1A",
        chrono::Duration::days(1),
        Utc::now(),
    );
    let (head, tail) = token.split_at(30);
    let quoted = format!("APPROVE V-1\r\n\r\n> Review: {}/l/{head}\r\n> {tail}\r\n", app.base);
    let second = raw.replace("held-1@", "held-2@").replace("APPROVE V-1\r\n", &quoted);
    cport::channels::inbound::handle(&app.state, second.as_bytes(), Utc::now()).await.unwrap();
    let (_, html) = app.page(&staff, "/staff").await;
    assert!(html.contains("<strong>2</strong> held inbound mail"), "{html}");
    let metrics = app.text("/metrics").await;
    assert!(metrics.contains("cport_inbound_messages{disposition=\"held\"} 2"), "{metrics}");
    let (_, html) = app.page(&staff, "/staff/held").await;
    assert!(html.contains("dmarc=fail (p=none) header.from=alpha.example") && html.contains("APPROVE V-1"), "{html}");
    assert!(html.contains("(token hidden)"), "{html}");
    for piece in [head, tail] {
        assert!(!html.contains(&piece[piece.len() - 12..]), "no part of the link's token is shown: {html}");
    }
    // Discarding asks first; releasing, which can be checked and undone by the client, does not.
    assert!(
        html.contains("<summary class=\"danger\">Discard…</summary>") && html.contains("Discard this reply unread?"),
        "{html}"
    );
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval");
    // Released three times at once (clicks, colleagues): acted on once, recorded once, and
    // the others are told what became of it.
    let release = [("message_id", "held-1@alpha.example"), ("action", "release")];
    let tries = futures::future::join_all((0..3).map(|_| app.post_form(&staff, "/staff/held", &release))).await;
    assert!(tries.iter().all(|t| t.0 == 303), "{tries:?}");
    let mut notes = vec![];
    for (_, location, _) in &tries {
        notes.push(app.shown(&staff, location).await);
    }
    assert_eq!(notes.iter().filter(|n| n.contains("Released: APPROVE V-1")).count(), 1, "{notes:?}");
    let told = "Nothing more to do: `held-1@alpha.example` is not waiting in held mail: it is processed";
    assert_eq!(notes.iter().filter(|n| n.contains(told)).count(), 2, "{notes:?}");
    assert_eq!(app.visual_status("V-1").await, "approved", "released and acted on");
    let audit = cport::store::staff::recent_audit(&app.db, 100).await.unwrap();
    assert_eq!(audit.iter().filter(|a| a.action == "released held mail").count(), 1, "{audit:?}");
    let (status, _, html) = app.post_form(&staff, "/staff/held", &[("action", "discard")]).await;
    assert!(status == 422 && html.contains("message_id: give the Message-ID"), "{status} {html}");
    app.submit(&staff, "/staff/held", &[("message_id", "held-2@alpha.example"), ("action", "discard")]).await;
    let location =
        app.submit(&staff, "/staff/held", &[("message_id", "held-2@alpha.example"), ("action", "release")]).await;
    let html = app.shown(&staff, &location).await;
    assert!(html.contains("it is ignored (discarded by "), "{html}");
    let (status, _, html) =
        app.post_form(&staff, "/staff/held", &[("message_id", "never@alpha.example"), ("action", "release")]).await;
    assert!(status == 409 && html.contains("was never held"), "{status} {html}");
    // One without a Message-ID and with a byte that is not UTF-8 keeps its id when released.
    let bare = raw
        .replace("Message-ID: <held-1@alpha.example>\r\n", "")
        .replace("Subject: Re: digest", "Subject: Re: caf\u{1}");
    held_as_latin1(&app, &bare).await;
    let id = cport::store::inbound::list_held(&app.db, 10).await.unwrap()[0].message_id.clone();
    assert!(id.starts_with("sha256:"), "{id}");
    app.submit(&staff, "/staff/held", &[("message_id", &id), ("action", "release")]).await;
    let held = cport::store::inbound::list_held(&app.db, 10).await.unwrap();
    assert!(held.is_empty(), "{held:?}");
    // A body of 8-bit text in another charset is released as it came: its words reach the
    // answer as written, never as U+FFFD where a byte was not UTF-8.
    let latin = raw
        .replace("held-1@", "held-4@")
        .replace(
            "Subject: Re: digest\r\n",
            "Subject: Re: digest\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n",
        )
        .replace("APPROVE V-1\r\n", "JOBS caf\u{1}\r\n");
    held_as_latin1(&app, &latin).await;
    // The page says what releasing it runs as releasing reads it: in its charset.
    let html = app.shown(&staff, "/staff/held").await;
    assert!(html.contains("<code>JOBS: takes nothing after it, found `café`."), "{html}");
    app.submit(&staff, "/staff/held", &[("message_id", "held-4@alpha.example"), ("action", "release")]).await;
    let answers = cport::store::outbox::list_messages(&app.db, None, 50).await.unwrap();
    let answer = answers
        .iter()
        .filter(|m| m.message.recipient == "ann@alpha.example")
        .map(|m| serde_json::from_str::<cport::channels::email::EmailPayload>(&m.message.payload).unwrap().text)
        .find(|t| t.contains("JOBS"))
        .expect("the released reply is answered");
    assert!(answer.contains("`café`"), "{answer}");
    // The gauge follows: none held now, not the 2 of the last scrape.
    let metrics = app.text("/metrics").await;
    assert!(metrics.contains("cport_inbound_messages{disposition=\"held\"} 0"), "{metrics}");

    // Contacts: a suspended address is shown with its bounce and resumed.
    cport::store::on_db!(&app.db, p => sqlx::query(
        "INSERT INTO contact_settings (contact_id, email_enabled, email_suspended_at, email_suspended_reason, soft_bounces, updated_at)
         VALUES ('P-1B', TRUE, $1, '550 mailbox unavailable', 0, $1)
         ON CONFLICT (contact_id) DO UPDATE SET email_suspended_at = excluded.email_suspended_at,
           email_suspended_reason = excluded.email_suspended_reason").bind(Utc::now()).execute(p).await.map(|_| ()))
    .unwrap();
    let (status, html) = app.page(&staff, "/staff/contacts?find=%01alpha").await;
    assert!(status == 400 && html.contains("find: "), "a control character is refused by name: {html}");
    let (_, html) = app.page(&staff, "/staff/contacts?find=alpha").await;
    assert!(html.contains("Alpha Ltd") && !html.contains("Beta plc"), "{html}");
    let html = app.shown(&staff, "/staff/contacts?client=C-1").await;
    assert!(html.contains("550 mailbox unavailable") && html.contains("Resume email"), "{html}");
    // While it is suspended nothing is emailed to it, and staff are told why.
    let outbox = app.count("outbox").await;
    for action in ["sign-in-link", "chat-code"] {
        let location =
            app.submit(&staff, "/staff/contacts?client=C-1", &[("contact", "P-1B"), ("action", action)]).await;
        let note = app.shown(&staff, &location).await;
        assert!(note.contains("Nothing was sent: email to Bob Buyer is suspended (550 mailbox unavailable)"), "{note}");
    }
    assert_eq!(app.count("outbox").await, outbox);
    let location = app.submit(&staff, "/staff/contacts?client=C-1", &[("contact", "P-1B"), ("action", "resume")]).await;
    assert!(location.starts_with("/staff/contacts?client=C%2D1&note=Email%20to%20Bob"), "{location}");
    let s = cport::store::settings::get_settings(&app.db, "P-1B").await.unwrap();
    assert!(s.email_suspended_at.is_none());
    // Again: there is nothing to resume, and staff are told so.
    let location = app.submit(&staff, "/staff/contacts?client=C-1", &[("contact", "P-1B"), ("action", "resume")]).await;
    assert!(location.contains("was%20not%20suspended"), "{location}");
    let (_, location, _) =
        app.post_form(&staff, "/staff/contacts?client=C-1", &[("contact", "P-1A"), ("action", "chat-code")]).await;
    assert!(location.contains("Chat%20link%20code"), "{location}");
    let outbox = app.count("outbox").await;
    app.submit(&staff, "/staff/contacts?client=C-1", &[("contact", "P-1A"), ("action", "sign-in-link")]).await;
    assert_eq!(app.count("outbox").await, outbox + 1);
    // A second click (or a second member of staff) a moment later sends nothing more, no new
    // code is made, and staff are told what went when.
    let codes = app.count("chat_codes").await;
    for action in ["chat-code", "sign-in-link"] {
        let location =
            app.submit(&staff, "/staff/contacts?client=C-1", &[("contact", "P-1A"), ("action", action)]).await;
        let note = app.shown(&staff, &location).await;
        assert!(
            note.contains("went to ann@alpha.example at") && note.contains("no second one was sent"),
            "{action}: {note}"
        );
    }
    assert_eq!((app.count("outbox").await, app.count("chat_codes").await), (outbox + 1, codes));
    let (status, body) = app.page(&staff, "/staff/contacts?client=C-404").await;
    assert!(status == 400 && body.contains("client: no client `C-404`"), "{status} {body}");
    app.put("clients", serde_json::json!([{"id": "C-1X", "name": "Alpha Extra"}])).await;
    let html = app.shown(&staff, "/staff/contacts?client=C-1X").await;
    assert!(html.contains("No active contacts"), "{html}");

    // The overview counts what was sent and lists what staff did.
    let (_, html) = app.page(&staff, "/staff").await;
    assert!(html.contains("Messages, last 24 hours") && html.contains("status=sent"), "{html}");
    assert!(html.contains("released held mail") && html.contains("resumed email"), "{html}");
}

/// A password link made before an account was removed does not open the account added again
/// for the same address; the new account's own link does.
#[tokio::test]
async fn a_link_for_a_removed_account_opens_nothing_after_it_is_added_again() {
    let app = TestApp::spawn().await;
    let now = Utc::now();
    let email = "rita@tot.example";
    let (old_id, _) = cport::store::staff::add(&app.db, email, now).await.unwrap();
    let old = app.state.signer.staff_password_url(&app.base, old_id, chrono::Duration::hours(1), now);
    assert!(cport::store::staff::remove(&app.db, email, now).await.unwrap());
    let (new_id, new) = cport::store::staff::add(&app.db, email, now).await.unwrap();
    assert!(new && new_id != old_id, "a new account");
    let b = browser();
    let (status, _) = app.page(&b, old.strip_prefix(&app.base).unwrap()).await;
    assert_eq!(status, 400, "the old link is refused");
    let fresh = app.state.signer.staff_password_url(&app.base, new_id, chrono::Duration::hours(1), now);
    let (status, _) = app.page(&b, fresh.strip_prefix(&app.base).unwrap()).await;
    assert_eq!(status, 200, "the new account's link opens");
    let listed = cport::store::staff::list(&app.db).await.unwrap();
    assert_eq!(listed.iter().filter(|s| s.email == email).count(), 1, "{listed:?}");
    app.stop().await;
}

/// A held reply quotes the digest it answers: staff reading it see neither the tokens of its
/// links nor its reply address's token (they could sign in or reply as the client), plain
/// or inside a base64-encoded part.
#[tokio::test]
async fn a_held_message_shows_no_link_tokens() {
    let (app, staff, token, domain) = holding_mail().await;
    let link = "http://127.0.0.1:8080/l/bx8vdmlzdWFscy9WLTEfUC0xQR8xNzk3NTA5OTcy.mJJkvDUz6CkSGELk2DcXS8jnUXpsF";
    // The same link as a mail filter rewrote it, and split by a quoted-printable soft break.
    let safe = "https://eur01.safelinks.protection.outlook.com/?url=http%3A%2F%2F127.0.0.1%3A8080%2Fl%2FSafeLinksTok3n.Xq&data=05";
    let quoted = format!(
        "APPROVE V-1\r\n> Review: {link}\r\n> {safe}\r\n> Also: http://127.0.0.1:8080/=\r\nl/SoftBreakTok3n.Zq\r\n"
    );
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("<a href=\"{link}\">Review</a>").repeat(3));
    let lines: Vec<&str> = encoded.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let raw = format!(
        "Authentication-Results: mx.tot.example; dmarc=fail (p=none) header.from=alpha.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: =?utf-8?q?Re:_Caf=C3=A9?=\r\n\
         Message-ID: <held-tokens@alpha.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{quoted}\r\n\
         --b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        lines.join("\r\n")
    );
    let d = cport::channels::inbound::handle(&app.state, raw.as_bytes(), Utc::now()).await.unwrap();
    assert!(matches!(d, cport::channels::inbound::Disposition::Held(_)), "{d:?}");
    let (_, html) = app.page(&staff, "/staff/held").await;
    assert!(html.contains("APPROVE V-1") && html.contains("held-tokens@alpha.example"), "{html}");
    // The header block as received: an encoded word's closing `?=` is no soft line break.
    assert!(html.contains("Caf=C3=A9?=\r\nMessage-ID") || html.contains("Caf=C3=A9?=\nMessage-ID"), "{html}");
    assert!(!html.contains("mJJkvDUz6CkSGELk2DcXS8jnUXpsF") && !html.contains(&token), "{html}");
    assert!(!html.contains("SafeLinksTok3n") && !html.contains("SoftBreakTok3n"), "{html}");
    assert!(!html.contains(lines[0]), "the encoded part is not shown: {html}");
    app.stop().await;
}

/// A chat link code staff issue goes to the contact's own address. Staff never see it: not
/// on the page, not in its address, not in the console's copy of the email (with it, staff
/// could tie their own chat to the contact and act as the client).
#[tokio::test]
async fn a_chat_link_code_goes_to_the_contact_and_never_to_staff() {
    let (app, staff) = console(false).await;
    let (status, location, _) =
        app.post_form(&staff, "/staff/contacts?client=C-1", &[("contact", "P-1A"), ("action", "chat-code")]).await;
    assert_eq!(status, 303);
    let page = app.shown(&staff, &location).await;
    assert!(page.contains("Chat link code sent to Ann Admin at ann@alpha.example"), "{page}");
    let rows = cport::store::outbox::list_messages(&app.db, None, 50).await.unwrap();
    let mail = rows
        .iter()
        .find(|m| m.message.recipient == "ann@alpha.example" && m.message.subject.contains("chat link code"))
        .expect("the code is emailed to the contact");
    let p: cport::channels::email::EmailPayload = serde_json::from_str(&mail.message.payload).unwrap();
    let code =
        p.text.split("Your code: ").nth(1).and_then(|t| t.split_whitespace().next()).expect("a code").to_string();
    assert!(p.html.contains(&code) && p.text.contains(&format!("/link {code}")), "{}", p.text);
    for (what, seen) in [("the redirect", location.clone()), ("the page", page)] {
        assert!(!seen.contains(&code), "{what} shows the code: {seen}");
    }
    assert_staff_never_see(&app, &staff, mail.id, &code).await;
    app.stop().await;
}

/// Staff reading a message in the console see none of `code`: not on its page, not in its
/// HTML body.
async fn assert_staff_never_see(app: &TestApp, staff: &reqwest::Client, mail_id: i64, code: &str) {
    let page = app.shown(staff, &format!("/staff/outbox/{mail_id}")).await;
    let body = staff.get(app.url(&format!("/staff/outbox/{mail_id}/body"))).send().await.unwrap().text().await.unwrap();
    for (what, seen) in [("the message", page), ("its HTML", body)] {
        assert!(!seen.contains(code), "{what} shows the code: {seen}");
    }
}

/// `LINK` by email answers with the portal link and, where a chat is set up, a chat link
/// code. The answer goes to the contact; staff reading it in the console see neither.
#[tokio::test]
async fn a_link_answers_chat_code_is_hidden_from_staff() {
    use common::fake_discord::{APP_ID, FakeDiscord, InteractionSigner};
    let fake = FakeDiscord::start().await;
    let signer = InteractionSigner::new(7);
    let (app, staff, token, domain) = mail_console(|c| {
        common::no_instant_alerts(c);
        c.discord.token = cport::config::Secret::new("discord-bot-token");
        c.discord.api_url = fake.url.clone();
        c.discord.public_key = signer.public_key_hex();
        c.discord.application_id = APP_ID.into();
    })
    .await;
    let raw = format!(
        "From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
         Message-ID: <link-1@alpha.example>\r\nDate: Wed, 02 Dec 2026 09:00:00 +0000\r\n\r\nLINK\r\n"
    );
    let d = cport::channels::inbound::handle(&app.state, raw.as_bytes(), Utc::now()).await.unwrap();
    assert!(matches!(d, cport::channels::inbound::Disposition::Processed(_)), "{d:?}");
    let rows = cport::store::outbox::list_messages(&app.db, None, 50).await.unwrap();
    let answer = rows
        .iter()
        .find(|m| m.message.recipient == "ann@alpha.example" && m.message.kind == cport::model::MessageKind::Reply)
        .expect("LINK is answered");
    let p: cport::channels::email::EmailPayload = serde_json::from_str(&answer.message.payload).unwrap();
    let code = p.text.split("Your code: ").nth(1).and_then(|t| t.split_whitespace().next()).expect("a code");
    let link = p.text.split_whitespace().find(|w| w.contains("/l/")).expect("a portal link");
    let link_token = link.rsplit('/').next().unwrap();
    assert!(p.html.contains(code), "the contact gets the code: {}", p.html);
    assert_staff_never_see(&app, &staff, answer.id, code).await;
    assert_staff_never_see(&app, &staff, answer.id, link_token).await;
    app.stop().await;
}

/// A sign-in that checked a password a moment before it was changed, or before the account
/// was removed, starts no session: the check is made again, with the account's row locked,
/// where the session is written. The same holds for clients' portal sessions.
#[tokio::test]
async fn a_sign_in_checked_before_a_password_change_or_removal_starts_no_session() {
    use cport::store::{sessions, staff};
    let app = TestApp::spawn().await;
    load_world(&app).await;
    let now = Utc::now();
    let later = now + chrono::Duration::hours(1);
    let new = |token_hash| sessions::NewSession { token_hash, csrf: "c", now, expires_at: later };
    let (id, _) = staff::add(&app.db, "rita@tot.example", now).await.unwrap();
    assert!(staff::set_password(&app.db, id, "hash-1", now).await.unwrap());
    assert!(staff::insert_session(&app.db, &new("t-1"), id, "hash-1").await.unwrap());
    assert!(staff::set_password(&app.db, id, "hash-2", now).await.unwrap());
    assert!(!staff::insert_session(&app.db, &new("t-2"), id, "hash-1").await.unwrap());
    assert!(staff::get_session(&app.db, "t-1", now).await.unwrap().is_none(), "the change ended the first");
    assert!(staff::remove(&app.db, "rita@tot.example", now).await.unwrap());
    assert!(!staff::insert_session(&app.db, &new("t-3"), id, "hash-2").await.unwrap());
    assert_eq!(app.count("staff_sessions").await, 1, "only the first was ever written");

    sessions::replace_password(&app.db, "P-1A", "hash-1", now).await.unwrap();
    assert!(sessions::insert_password_session(&app.db, &new("p-1"), "P-1A", "hash-1").await.unwrap());
    sessions::replace_password(&app.db, "P-1A", "hash-2", now).await.unwrap();
    assert!(!sessions::insert_password_session(&app.db, &new("p-2"), "P-1A", "hash-1").await.unwrap());
    assert!(sessions::get_signed_in(&app.db, "p-1", now).await.unwrap().is_none(), "the change ended the first");
    assert!(sessions::insert_password_session(&app.db, &new("p-3"), "P-1A", "hash-2").await.unwrap());
    assert!(sessions::get_signed_in(&app.db, "p-3", now).await.unwrap().is_some());
    app.stop().await;
}

/// Five wrong passwords lock a staff account for a while, and the lockout says to ask for a
/// new password link: a password set from one signs in at once.
#[tokio::test]
async fn a_new_password_ends_a_staff_lockout() {
    let app = TestApp::with_world().await;
    staff_account(&app, SAM).await;
    let sign_in = |password: &'static str| {
        let app = &app;
        async move {
            let b = browser();
            let csrf = csrf_of(&app.page(&b, "/staff/login").await.1);
            let fields = [("csrf", csrf.as_str()), ("email", SAM), ("password", password), ("next", "/staff")];
            let (status, _, body) = app.post_raw(&b, "/staff/login", &fields).await;
            (status, body)
        }
    };
    for _ in 0..5 {
        assert_eq!(sign_in("not the password").await.0, 401);
    }
    let (status, body) = sign_in(PASSWORD).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("ask for a new password link"), "{body}");
    let id = cport::store::staff::by_email(&app.db, SAM).await.unwrap().expect("Sam's account").0;
    let link = app.state.signer.staff_password_url(&app.base, id, chrono::Duration::hours(1), Utc::now());
    let path = link.strip_prefix(&app.base).unwrap();
    let b = browser();
    let csrf = csrf_of(&app.shown(&b, path).await);
    let token = path.split("token=").nth(1).unwrap();
    let new = "another staff password 7";
    let fields = [("csrf", csrf.as_str()), ("token", token), ("new_password", new), ("confirm_password", new)];
    assert_eq!(app.post_raw(&b, "/staff/password", &fields).await.0, 200);
    assert_eq!(sign_in("another staff password 7").await.0, 303, "the new password signs in at once");
    app.stop().await;
}
