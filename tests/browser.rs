//! The portal in a real headless Chromium (through chromedriver, both from the system's
//! packages; `scripts/test` installs them): open a signed link, approve a visual, reject
//! one with a reason, give partial delivery instructions for two jobs, read the change feed.
//! With SCREENSHOT_DIR set, the pages are saved there as PNG (the pictures of the README and the
//! documentation: SCREENSHOT_DIR=docs/src/images).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{TestApp, load_world};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver on a port of its choosing. Now and then it exits before it listens
    /// (seen on a busy 2-core machine); it is started again, three times at most, and what it
    /// said is shown if it never listens.
    fn start() -> Driver {
        let mut said = Vec::new();
        for _ in 0..3 {
            let mut child = Command::new("chromedriver")
                .arg("--port=0")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver runs (scripts/test installs chromium-driver)");
            // It prints the port it bound once it listens.
            let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            let port = loop {
                let Some(Ok(line)) = lines.next() else { break None };
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    break rest.trim_end_matches('.').trim().parse::<u16>().ok();
                }
                said.push(line);
            };
            match port {
                Some(port) => {
                    // Keep draining its output so it never blocks on a full pipe.
                    std::thread::spawn(move || for _ in lines {});
                    return Driver { child, port };
                }
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("chromedriver never said it was listening; it said: {said:?}")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn chromium(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1000,1300", format!("--user-data-dir={}", profile.display())]
        }),
    );
    // Plain HTTP: chromedriver listens on loopback only.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

async fn shot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("SCREENSHOT_DIR") {
        let png = c.screenshot().await.expect("screenshot");
        std::fs::write(std::path::Path::new(&dir).join(name), png).expect("write screenshot");
    }
}

/// The text of the page's note (shown after a successful action), or the page on failure.
async fn note_text(c: &Client) -> String {
    // The form posts and the next page loads; wait for it (bounded), not for a fixed time.
    match c.wait().at_most(std::time::Duration::from_secs(10)).for_element(Locator::Css(".note")).await {
        Ok(e) => e.text().await.unwrap(),
        Err(_) => panic!("no note on {:?}: {}", c.current_url().await.ok(), c.source().await.unwrap_or_default()),
    }
}

async fn set(c: &Client, css: &str, value: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no element {css}"));
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

/// The test world with a second visual, V-3, awaiting approval.
async fn with_v3() -> TestApp {
    let app = TestApp::with_world().await;
    app.put(
        "visuals",
        json!([{"id": "V-3", "client_id": "C-1", "job_id": "J-1", "design_id": "DS-3", "category": "Colour visual",
                "designer": "Des", "status": "awaiting_approval", "main_image": "/media/v3.svg"}]),
    )
    .await;
    app
}

#[tokio::test]
async fn a_client_approves_rejects_and_gives_delivery_instructions_in_a_browser() {
    let app = with_v3().await;
    app.put(
        "jobs",
        json!([
            {"id": "J-1", "client_id": "C-1", "name": "Staff tees", "status": "in_production", "date_required": "2026-12-01",
             "printed_garments": [{"description": "Tee, navy, printed", "expected_qty": 100}]},
            {"id": "J-4", "client_id": "C-1", "name": "Hoodies", "status": "completed",
             "printed_garments": [{"description": "Hoodie, grey, embroidered", "expected_qty": 40}]}
        ]),
    )
    .await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = chromium(&driver, profile.path()).await;

    // A signed link from an email opens the dashboard, signed in.
    c.goto(&app.link("P-1B", "/")).await.unwrap();
    let h1 = text_of(&c, "h1").await;
    assert!(h1.contains("need you"), "{h1}");
    shot(&c, "portal-dashboard.png").await;

    // Review and approve V-1.
    follow(&c, "a[href='/visuals/V-1']").await;
    assert!(c.current_url().await.unwrap().path().ends_with("/visuals/V-1"));
    shot(&c, "portal-visual.png").await;
    click(&c, "#approve input[name=terms]").await;
    follow(&c, "#approve button").await;
    let note = note_text(&c).await;
    assert!(note.contains("Visual V-1 approved"), "{note}");

    // Reject V-3 with a reason.
    c.goto(&app.url("/visuals/V-3")).await.unwrap();
    set(&c, "#reason", "Logo should be white, not yellow").await;
    follow(&c, "#reject button").await;
    let note = note_text(&c).await;
    assert!(note.contains("Visual V-3 rejected"), "{note}");

    // 60 of the 100 tees and 25 of the 40 hoodies, to one address.
    c.goto(&app.url("/jobs/J-1/delivery")).await.unwrap();
    set(&c, "input[name='qty:J-1:0']", "60").await;
    click(&c, "details summary").await;
    set(&c, "input[name='qty:J-4:0']", "25").await;
    set(&c, "#address", "Harbour Coffee Roastery, 4 Quay Street, Bristol BS1 4DB").await;
    set(&c, "#contact_name", "Maya Patel").await;
    set(&c, "#notes", "Deliver to the side door").await;
    shot(&c, "portal-delivery.png").await;
    follow(&c, "#delivery button.primary").await;
    let note = note_text(&c).await;
    assert!(note.contains("Delivery instructions sent"), "{note}");
    let page = c.source().await.unwrap();
    assert!(page.contains(">60<") && page.contains(">40<"), "the job shows 60 placed and 40 still to place");
    c.close().await.unwrap();

    // TOT's system reads what happened.
    let feed = app.changes(0).await;
    let kinds: Vec<&str> = feed.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["visual_approved", "visual_rejected", "delivery_instructions_given"]);
    assert_eq!(feed[1]["data"]["reason"], "Logo should be white, not yellow");
    assert_eq!(
        feed[2]["data"]["lines"],
        json!([{"job_id": "J-1", "line_no": 0, "qty": 60}, {"job_id": "J-4", "line_no": 0, "qty": 25}])
    );
    app.stop().await;
}

/// A digest as a mail client shows it: its HTML part, opened in Chromium, names what needs
/// the contact, and an item's link opens that item on the portal, signed in.
#[tokio::test]
async fn a_digest_reads_in_a_browser_and_its_link_opens_the_item() {
    let app = with_v3().await;
    common::digest_now(&app.state, "P-1B").await;
    let rows = cport::store::outbox::list_messages(&app.db, None, 50).await.unwrap();
    let row = rows
        .iter()
        .find(|m| {
            m.message.contact_id.as_deref() == Some("P-1B") && m.message.kind == cport::model::MessageKind::Digest
        })
        .expect("P-1B's digest");
    let cport::outbox::Rendered::Email { html, .. } =
        cport::outbox::render(&app.state, row, chrono::Utc::now()).await.unwrap()
    else {
        panic!("an email");
    };
    let page = tempfile::tempdir().unwrap();
    let file = page.path().join("digest.html");
    std::fs::write(&file, html).unwrap();

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = chromium(&driver, profile.path()).await;
    c.set_window_size(680, 1310).await.unwrap();
    c.goto(&format!("file://{}", file.display())).await.unwrap();
    let text = text_of(&c, "body").await;
    assert!(text.contains("V-3") && text.contains("Approve"), "{text}");
    shot(&c, "digest.png").await;
    // The item's title is its link (signed: the address names no visual).
    let link = c.find(Locator::XPath("//a[contains(., 'Visual V-3')]")).await.expect("V-3's title links");
    let href = link.attr("href").await.unwrap().unwrap_or_default();
    let public = &app.state.config.public_url;
    assert!(href.starts_with(&format!("{public}/l/")), "a signed link to the portal: {href}");
    // The portal is at public_url; in this test it listens on a port of its own.
    c.goto(&href.replace(public, &app.base)).await.unwrap();
    let url = c.current_url().await.unwrap();
    assert!(url.path().ends_with("/visuals/V-3"), "{url}");
    let h1 = text_of(&c, "h1").await;
    assert!(h1.contains("V-3"), "the visual's page, signed in: {h1}");
    c.close().await.unwrap();
    app.stop().await;
}

/// The text of the element `css` picks.
async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no element {css}")).text().await.unwrap()
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no element {css}")).click().await.unwrap();
}

/// Clicks something that loads a new page (a link, a form's button) and waits, bounded, until
/// the page it was on is gone: a wait for an element that both pages hold (a row of a list
/// before and after filtering) would otherwise find it on the old page, which then goes stale.
async fn follow(c: &Client, css: &str) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    click(c, css).await;
    // A WebDriver client has no event for "this document was replaced": poll the old root,
    // which answers until the new page has taken its place (at most 10 s).
    for _ in 0..200 {
        if old.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("clicking {css} did not load a page within 10 s");
}

#[tokio::test]
async fn a_reseller_fills_a_basket_comes_back_on_another_device_and_places_it() {
    let app = TestApp::with_world().await;
    app.synced(
        "stock",
        json!([
            {"sku": "SKU-TEE", "client_id": "C-1", "client_sku": "T-1", "description": "Tee, black, printed",
             "warehouse_balance": 40, "expected": 0, "accounted_for": 30, "available_to_order": 10,
             "picture": "/media/stock/tee.svg"},
            {"sku": "SKU-CAP", "client_id": "C-1", "description": "Cap, embroidered",
             "warehouse_balance": 100, "expected": 0, "accounted_for": 0, "available_to_order": 100}
        ]),
    )
    .await;
    let media = app.dir.path().join("media/stock");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::write(
        media.join("tee.svg"),
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96"><rect width="96" height="96" fill="#f4f5f7"/><path d="M30 18 L48 26 L66 18 L84 34 L74 46 L68 42 L68 84 L28 84 L28 42 L22 46 L12 34 Z" fill="#222"/><circle cx="48" cy="52" r="9" fill="#e0a030"/></svg>"##,
    )
    .unwrap();
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = chromium(&driver, profile.path()).await;

    c.goto(&app.link("P-1B", "/stock")).await.unwrap();
    shot(&c, "portal-stock.png").await;
    set(&c, "#qty-SKU-TEE", "3").await;
    set(&c, "#sku-SKU-TEE input[name=new_basket]", "Clifton shop").await;
    follow(&c, "#sku-SKU-TEE form.add button").await;
    let note = note_text(&c).await;
    assert!(note.contains("SKU-TEE, now 3"), "{note}");
    set(&c, "#address", "7 Princess Victoria St, Bristol BS8 4BX").await;
    set(&c, "#notes", "Deliver before 10:00").await;
    follow(&c, "#save").await;
    // The page before had a note too: wait for the new one.
    wait_for(&c, Locator::XPath("//div[contains(@class, 'note') and contains(., 'Saved')]"), "the basket is saved")
        .await;
    shot(&c, "portal-basket.png").await;
    c.close().await.unwrap();

    // Later, on another device, through a new signed link.
    let profile2 = tempfile::tempdir().unwrap();
    let c = chromium(&driver, profile2.path()).await;
    c.goto(&app.link("P-1B", "/baskets")).await.unwrap();
    c.find(Locator::LinkText("Clifton shop")).await.unwrap().click().await.unwrap();
    let qty = c.find(Locator::Css("#qty-SKU-TEE")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(qty.as_deref(), Some("3"), "the basket kept its line");
    let page = c.source().await.unwrap();
    assert!(page.contains("7 Princess Victoria St"), "and its address");
    follow(&c, "#place").await;
    let note = note_text(&c).await;
    assert!(note.contains("placed"), "{note}");
    assert!(c.current_url().await.unwrap().path().ends_with("/orders"));
    shot(&c, "portal-orders.png").await;
    c.goto(&app.url("/stock")).await.unwrap();
    let free = text_of(&c, "#sku-SKU-TEE .available").await;
    assert_eq!(free, "7", "stock went down by the order");
    c.close().await.unwrap();
    let feed = app.changes(0).await;
    assert_eq!(feed.last().unwrap()["kind"], "reseller_order_placed");
    app.stop().await;
}

#[tokio::test]
async fn a_buyer_sends_artwork_from_the_job_page_in_a_browser() {
    let app = TestApp::spawn_with(|c| c.inbound.max_attachment_bytes = 64 * 1024).await;
    load_world(&app).await;
    // The visual's picture is private: it shows on the portal through the session.
    let media = app.dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::write(
        media.join("v1.svg"),
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96"><rect width="96" height="96" fill="#1f3a5f"/></svg>"##,
    )
    .unwrap();
    let files = tempfile::tempdir().unwrap();
    let exe = files.path().join("setup.exe");
    std::fs::write(&exe, b"MZ").unwrap();
    let big = files.path().join("huge.pdf");
    std::fs::write(&big, vec![b'%'; 64 * 1024 + 1]).unwrap();
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = chromium(&driver, profile.path()).await;

    c.goto(&app.link("P-1B", "/visuals/V-1")).await.unwrap();
    let width = c.execute("return document.querySelector('img.visual').naturalWidth", vec![]).await.unwrap();
    assert_eq!(width, json!(96), "the visual's picture loads for the signed-in buyer");

    // The A4 item's link opens the job at its artwork.
    c.goto(&app.link("P-1B", "/jobs/J-1#artwork")).await.unwrap();
    let heading = text_of(&c, "#artwork h2").await;
    assert_eq!(heading, "Artwork");
    let input = c.find(Locator::Css("form.upload input[type=file]")).await.unwrap();
    // A refused type and a file over the limit are named before anything is sent.
    input.send_keys(&format!("{}\n{}", exe.display(), big.display())).await.unwrap();
    let problems = text_of(&c, "form.upload .problems").await;
    assert!(problems.contains("setup.exe: .exe files are not accepted"), "{problems}");
    assert!(problems.contains("huge.pdf: larger than 64 KB"), "{problems}");
    click(&c, "form.upload button[type=submit]").await;
    let problems = text_of(&c, "form.upload .problems").await;
    assert!(problems.starts_with("Nothing was sent"), "{problems}");
    assert!(app.changes(0).await.iter().all(|e| e["kind"] != "artwork_uploaded"), "nothing reached TOT");

    // A good file dropped on the form (a drop event as the browser makes one) goes, and
    // the page says so; the plain input would send the same.
    c.execute(
        r#"const dt = new DataTransfer();
           dt.items.add(new File(["%PDF-1.4 the logo"], "logo.pdf", {type: "application/pdf"}));
           document.querySelector("form.upload .drop")
             .dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));"#,
        vec![],
    )
    .await
    .unwrap();
    let chosen = text_of(&c, "form.upload .chosen").await;
    assert!(chosen.contains("logo.pdf") && !chosen.contains("will not be sent"), "{chosen}");
    let problems = text_of(&c, "form.upload .problems").await;
    assert!(problems.is_empty(), "{problems}");
    shot(&c, "portal-artwork.png").await;
    click(&c, "form.upload button[type=submit]").await;
    let note = note_text(&c).await;
    assert!(note.contains("logo.pdf") && note.contains("received"), "{note}");
    let listed = text_of(&c, "#artwork").await;
    assert!(listed.contains("Files you sent") && listed.contains("logo.pdf"), "{listed}");
    assert!(!listed.contains("waiting for your artwork"), "{listed}");
    let feed = app.changes(0).await;
    assert_eq!(feed.iter().filter(|e| e["kind"] == "artwork_uploaded").count(), 1, "{feed:?}");
    let _ = c.close().await;
    app.stop().await;
}

/// Waits (bounded) for an element after a form posts and the next page loads.
async fn wait_for(c: &Client, at: Locator<'_>, what: &str) -> fantoccini::elements::Element {
    c.wait().at_most(std::time::Duration::from_secs(10)).for_element(at).await.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Waits (bounded) for a note that holds `text`, after a form posts and the next page loads.
async fn note_with(c: &Client, text: &str) -> String {
    let xpath = format!("//div[contains(@class, 'note') and contains(., '{text}')]");
    match c.wait().at_most(std::time::Duration::from_secs(10)).for_element(Locator::XPath(&xpath)).await {
        Ok(e) => e.text().await.unwrap(),
        Err(_) => panic!(
            "no note with {text:?} on {:?}: {}",
            c.current_url().await.ok(),
            c.source().await.unwrap_or_default()
        ),
    }
}

#[tokio::test]
async fn staff_use_the_console_in_a_browser() {
    use chrono::Utc;
    let app = TestApp::spawn_with(|c| {
        c.inbound.trusted_authserv_ids = vec!["mx.tot.example".into()];
        // A Discord app is set up (its interactions only come in): chat link codes are offered.
        c.discord.public_key = "ab".repeat(32);
    })
    .await;
    load_world(&app).await;
    common::digests_now(&app.state, &["P-1A", "P-1B", "P-2A"]).await;
    // A dead message (as a bounce leaves one), a held reply, an access request.
    let now = Utc::now();
    let ann = cport::store::contacts::get_contact(&app.db, "P-1A").await.unwrap();
    let p = cport::actions::mail::login_email(&app.state, &ann, "http://127.0.0.1:9/l/x").unwrap();
    let mut tx = app.db.begin().await.unwrap();
    let later = now + chrono::Duration::hours(12);
    let dead = cport::store::outbox::insert_message(
        &mut tx,
        &p.queued(Some("P-1A"), cport::model::MessageKind::System, "test:dead".into(), None, later),
        now,
    )
    .await
    .unwrap()
    .unwrap();
    tx.commit().await.unwrap();
    assert!(cport::store::console::hold_for(&app.db, dead, "t", now).await.unwrap());
    let bounce = cport::store::outbox::Mark::Failed { error: "552 5.2.2 mailbox full", retry_at: None };
    assert!(cport::store::outbox::mark(&app.db, dead, "t", bounce, now).await.unwrap());
    let token = common::digest_to_reply_to(&app.db, &app.state.signer, "P-1A", "ann@alpha.example").await;
    let held = format!(
        "Authentication-Results: mx.tot.example; dmarc=fail (p=none) header.from=alpha.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{}\r\nSubject: Re: digest\r\n\
         Message-ID: <held-b@alpha.example>\r\n\r\nAPPROVE V-1\r\n",
        app.state.config.email.reply_domain
    );
    cport::channels::inbound::handle(&app.state, held.as_bytes(), now).await.unwrap();
    let (id, _) = cport::store::staff::add(&app.db, "sam@tot.example", now).await.unwrap();
    let link = app.state.signer.staff_password_url(&app.base, id, chrono::Duration::hours(1), now);

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = chromium(&driver, profile.path()).await;

    // A newcomer asks for access on the sign-in page.
    c.goto(&app.url("/login")).await.unwrap();
    click(&c, "#request-access summary").await;
    set(&c, "#access-name", "Gus Gamma").await;
    set(&c, "#access-email", "gus@gamma.example").await;
    set(&c, "#access-company", "Gamma Events").await;
    follow(&c, "#request-access button").await;
    wait_for(&c, Locator::XPath("//h1[contains(., 'Request sent')]"), "request sent").await;

    // The password link from `cport staff add`, then sign in.
    c.goto(&link).await.unwrap();
    set(&c, "#new_password", "a staff password 42").await;
    set(&c, "#confirm_password", "a staff password 42").await;
    follow(&c, "button.primary").await;
    note_with(&c, "Your password is set").await;
    set(&c, "#email", "sam@tot.example").await;
    set(&c, "#password", "a staff password 42").await;
    follow(&c, "button.primary").await;
    wait_for(&c, Locator::XPath("//h1[. = 'Overview']"), "the overview").await;
    let page = c.source().await.unwrap();
    assert!(
        page.contains("<strong>1</strong> dead letter(s) waiting")
            && page.contains("<strong>1</strong> held inbound mail"),
        "{page}"
    );
    shot(&c, "console-overview.png").await;

    // The chase list: the oldest visual awaiting approval, and a reminder.
    follow(&c, "nav a[href='/staff/chase']").await;
    c.find(Locator::Css("#category")).await.unwrap().select_by_value("A1").await.unwrap();
    follow(&c, "form.search button").await;
    wait_for(&c, Locator::Css("tr[id='A1:V-1']"), "visuals").await;
    let first = c.find(Locator::Css("table.chase tbody tr")).await.unwrap().attr("id").await.unwrap();
    assert_eq!(first.as_deref(), Some("A1:V-1"), "the oldest visual first");
    shot(&c, "console-chase.png").await;
    follow(&c, "tr[id='A1:V-1'] button.remind").await;
    let note = note_with(&c, "Reminder about Visual V-1").await;
    assert!(note.contains("queued"), "{note}");

    // An urgent banner: preview (the email in its frame), then post.
    follow(&c, "nav a[href='/staff/banners']").await;
    set(&c, "#title", "Closed Friday").await;
    set(&c, "#body", "The works close at noon on Friday.").await;
    c.find(Locator::Css("#severity")).await.unwrap().select_by_value("urgent").await.unwrap();
    click(&c, "button.preview").await;
    let reach = c
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(Locator::Css("p.reach"))
        .await
        .expect("the reach")
        .text()
        .await
        .unwrap();
    assert!(reach.contains("5 contact(s)"), "{reach}");
    c.find(Locator::Css("iframe.mail")).await.unwrap().enter_frame().await.unwrap();
    let mail = c.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
    assert!(mail.contains("Closed Friday"), "the email as HTML: {mail}");
    c.enter_parent_frame().await.unwrap();
    c.execute("document.getElementById('preview').scrollIntoView()", vec![]).await.unwrap();
    shot(&c, "console-banner-preview.png").await;
    follow(&c, "button.post").await;
    let note = note_with(&c, "posted").await;
    assert!(note.contains("5 message(s) queued"), "{note}");
    // Taking a banner down asks first: the button that does it shows only once staff have
    // opened the question.
    let retract = c.find(Locator::Css("table.list details.confirm button.danger")).await.unwrap();
    assert!(!retract.is_displayed().await.unwrap(), "retract is one click away only after the question");
    click(&c, "table.list details.confirm summary").await;
    let question = text_of(&c, "table.list details.confirm p").await;
    assert!(question.contains("Take this banner down"), "{question}");
    follow(&c, "table.list details.confirm button.danger").await;
    note_with(&c, "retracted").await;

    // The outbox: the dead message, queued again.
    c.goto(&app.url("/staff/outbox?status=dead")).await.unwrap();
    follow(&c, &format!("td a[href='/staff/outbox/{dead}']")).await;
    let page = c.source().await.unwrap();
    assert!(page.contains("552 5.2.2 mailbox full"), "{page}");
    c.find(Locator::Css("iframe.mail")).await.unwrap().enter_frame().await.unwrap();
    let mail = c.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
    assert!(mail.contains("sign-in") || mail.contains("portal"), "the sent email in its frame: {mail}");
    c.enter_parent_frame().await.unwrap();
    follow(&c, "button[value=requeue]").await;
    note_with(&c, "Queued again").await;

    // Contacts, held mail, access requests.
    c.goto(&app.url("/staff/contacts?client=C-1")).await.unwrap();
    click(&c, "tr[id='P-1A'] button[value='sign-in-link']").await;
    note_with(&c, "sign-in link is on its way").await;
    click(&c, "tr[id='P-1B'] button[value='chat-code']").await;
    // The code goes to Bob's own address; staff are told so, and never see it.
    let note = note_with(&c, "Chat link code sent to Bob Buyer").await;
    assert!(note.contains("bob@alpha.example") && !note.contains("/start "), "{note}");
    follow(&c, "nav a[href='/staff/held']").await;
    assert!(c.source().await.unwrap().contains("dmarc=fail"));
    follow(&c, "button[value=release]").await;
    note_with(&c, "Released").await;
    assert_eq!(app.visual_status("V-1").await, "approved");
    // TOT made Gus's account, and it reached cport: the request can be marked done.
    app.synced(
        "contacts",
        serde_json::json!([{"id": "P-1G", "client_id": "C-1", "name": "Gus Gamma", "email": "gus@gamma.example", "role": "buyer"}]),
    )
    .await;
    follow(&c, "nav a[href='/staff/access']").await;
    follow(&c, "button[value=done]").await;
    note_with(&c, "marked done").await;
    follow(&c, "nav button.link").await;
    wait_for(&c, Locator::XPath("//h1[. = 'Staff sign-in']"), "signed out").await;
    c.close().await.unwrap();

    // A client's browser finds no console.
    let profile2 = tempfile::tempdir().unwrap();
    let c = chromium(&driver, profile2.path()).await;
    c.goto(&app.link("P-1B", "/")).await.unwrap();
    c.goto(&app.url("/staff")).await.unwrap();
    let h1 = text_of(&c, "h1").await;
    assert_eq!(h1, "Not found");
    c.close().await.unwrap();
    app.stop().await;
}
