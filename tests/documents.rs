//! Enquiry pages for every role, and the documents: PDFs read back with `pdftotext`, the
//! statement CSV read back with Python's csv module.

mod common;

use common::TestApp;
use serde_json::json;

async fn app() -> TestApp {
    let app = TestApp::with_world().await;
    for (entity, body) in [
        (
            "deliveries",
            json!([{"id": "D-1", "client_id": "C-1", "job_id": "J-2", "status": "sent", "sent_date": "2026-11-24",
                    "delivery_date": "2026-11-25", "venue": "Alpha HQ, 1 Quay St, Bristol", "description": "Caps for the team",
                    "contact": "Bob", "client_ref": "ALPHA-7",
                    "tracking": {"carrier": "DPD", "number": "155", "url": "https://track.example/155"},
                    "lines": [{"description": "Cap, embroidered", "qty": 50}, {"description": "Beanie, navy", "qty": 20}],
                    "packing": [{"container": "Box 1 of 2", "description": "Caps", "qty": 50},
                                {"container": "Box 2 of 2", "description": "Beanies", "qty": 20}],
                    "costs": [{"cost_type": "Carriage", "description": "DPD next day", "price": "14.50"}],
                    "proof_of_delivery": {"signature_image": "/media/pod/D-1.svg", "boxes": 2, "courier": "DPD",
                                          "signed_at": "2026-11-25T10:42:00Z", "courier_worker": "Driver 7"}},
                   {"id": "D-9", "client_id": "C-2", "status": "sent", "sent_date": "2026-11-20", "venue": "Beta", "description": "Bags",
                    "lines": [{"description": "Bag", "qty": 1}]}]),
        ),
        (
            "invoices",
            json!([{"id": "INV-1", "client_id": "C-1", "date": "2026-10-01", "due_date": "2026-10-31",
                    "client_po_ref": "PO-A", "job_name": "Tees", "total": "734.40", "paid": 200},
                   {"id": "INV-2", "client_id": "C-1", "date": "2026-11-01", "due_date": "2026-12-01",
                    "job_name": "Caps", "total": "100.00", "paid": "100.00"},
                   {"id": "CN-3", "client_id": "C-1", "date": "2026-11-10", "job_name": "Credit: misprinted tees",
                    "total": "-234.40"},
                   {"id": "INV-9", "client_id": "C-2", "date": "2026-11-01", "job_name": "Bags", "total": 5, "paid": 0}]),
        ),
        (
            "account_summaries",
            json!([{"client_id": "C-1", "as_of": "2026-11-25", "current_balance": "300.00", "over_30": "234.40",
                    "over_60": 0, "over_90": 0}]),
        ),
        (
            "blank_stock",
            json!([{"sku": "BLK-1", "description": "Tee, blank", "warehouse_balance": 10, "expected": 0,
                    "accounted_for": 0, "available_to_order": 10}]),
        ),
    ] {
        app.synced(entity, body).await;
    }
    app
}

/// The app, and a browser signed in as `contact`.
async fn app_as(contact: &str) -> (TestApp, reqwest::Client) {
    let app = app().await;
    let b = app.signed_in(contact).await;
    (app, b)
}

fn pdftotext(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(out.status.success(), "pdftotext: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// With SCREENSHOT_DIR set, the PDF's first page is saved there as `name` (the pictures of
/// the README and the documentation), drawn by poppler's `pdftoppm` at 60 dpi.
fn picture(pdf: &[u8], name: &str) {
    let Ok(to) = std::env::var("SCREENSHOT_DIR") else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.pdf");
    std::fs::write(&path, pdf).unwrap();
    let stem = std::path::Path::new(&to).join(name.trim_end_matches(".png"));
    let out = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-singlefile"])
        .arg(&path)
        .arg(&stem)
        .output()
        .expect("pdftoppm (poppler-utils) is installed");
    assert!(out.status.success(), "pdftoppm: {}", String::from_utf8_lossy(&out.stderr));
}

async fn get(app: &TestApp, b: &reqwest::Client, path: &str) -> (u16, String, Vec<u8>) {
    let r = b.get(app.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn every_page_for_every_role() {
    let app = app().await;
    let _ = app.synced("contacts", json!([{"id": "P-1T", "client_id": "C-1", "name": "Tess Third", "email": "t@x.example", "role": "third_party"}])).await;
    // admin, buyer, finance, viewer, third party
    let who = ["P-1A", "P-1B", "P-1F", "P-1V", "P-1T"];
    let pages: &[(&str, [u16; 5])] = &[
        ("/jobs", [200, 200, 403, 200, 403]),
        ("/deliveries", [200, 200, 403, 200, 403]),
        ("/deliveries/D-1", [200, 200, 403, 200, 403]),
        ("/deliveries/D-1/note.pdf", [200, 200, 403, 200, 403]),
        ("/deliveries/D-1/packing.pdf", [200, 200, 403, 200, 403]),
        ("/invoices", [200, 403, 200, 200, 403]),
        ("/invoices/INV-1.pdf", [200, 403, 200, 200, 403]),
        ("/statement.pdf", [200, 403, 200, 200, 403]),
        ("/statement.csv", [200, 403, 200, 200, 403]),
        ("/pos", [200, 200, 200, 200, 403]),
        ("/pos/PO-1", [200, 200, 200, 200, 403]),
        ("/blanks", [200, 200, 403, 200, 403]),
        ("/prices", [200, 200, 200, 200, 403]),
        ("/art", [200, 200, 403, 200, 403]),
        ("/stock", [200, 200, 403, 200, 200]),
        ("/orders", [200, 200, 403, 200, 200]),
        ("/users", [200, 404, 404, 404, 404]),
        // Another client's things are not found, whoever asks.
        ("/deliveries/D-9", [404, 404, 403, 404, 403]),
        ("/deliveries/D-9/note.pdf", [404, 404, 403, 404, 403]),
        ("/invoices/INV-9.pdf", [404, 403, 404, 404, 403]),
    ];
    let mut wrong = vec![];
    for (i, contact) in who.iter().enumerate() {
        let b = app.signed_in(contact).await;
        for (path, want) in pages {
            let (s, _, _) = get(&app, &b, path).await;
            if s != want[i] {
                wrong.push(format!("{contact} {path}: {s}, want {}", want[i]));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    app.stop().await;
}

#[tokio::test]
async fn lists_filter_sort_and_link_to_details() {
    let (app, ann) = app_as("P-1A").await;
    let (_, _, html) = get(&app, &ann, "/jobs?q=caps").await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("href=\"/jobs/J-2\"") && !html.contains("href=\"/jobs/J-1\""), "{html}");
    // 32 open jobs: two pages of 25; sorted by name, descending.
    let jobs: Vec<_> = (10..40)
        .map(|i| json!({"id": format!("J-{i}"), "client_id": "C-1", "name": format!("Run {i}"), "status": "entered"}))
        .collect();
    assert_eq!(app.put("jobs", json!(jobs)).await.0, 200);
    let (_, _, html) = get(&app, &ann, "/jobs?sort=1&desc=1").await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("Page 1 of 2"), "{html}");
    let first = html.find("href=\"/jobs/J-").unwrap();
    assert!(html[first..].starts_with("href=\"/jobs/J-1\""), "descending by name: Tees (J-1), Run …, Caps");
    let (_, _, html) = get(&app, &ann, "/jobs?sort=1&desc=1&page=2").await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("Page 2 of 2") && html.contains("href=\"/jobs/J-2\""), "{html}");
    assert!(!html.contains("href=\"/jobs/J-1\""), "page two does not repeat page one");
    // A page past the last (a list that shrank since the link) shows the last, not nothing;
    // a filter that matches nothing says so.
    let (_, _, html) = get(&app, &ann, "/jobs?sort=1&desc=1&page=9").await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("Page 2 of 2") && html.contains("href=\"/jobs/J-2\""), "{html}");
    let (_, _, html) = get(&app, &ann, "/jobs?q=zebra").await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("No rows match “zebra”.") && !html.contains("href=\"/jobs/J-"), "{html}");
    // A column the page does not have is refused by name, as a sort that is no number is.
    for sort in ["99", "-1"] {
        let (status, _, html) = get(&app, &ann, &format!("/jobs?sort={sort}")).await;
        assert_eq!(status, 400, "{sort}");
        assert!(String::from_utf8(html).unwrap().contains("sort"), "{sort}");
    }
    // A list with no rows has no columns to name: a link saved sorted still opens it.
    let (status, _, html) = get(&app, &ann, "/prices?sort=3&desc=1").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&html));
    let (_, _, html) = get(&app, &ann, "/invoices").await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("href=\"/invoices/INV-1.pdf\""), "{html}");
    assert!(html.contains("/statement.pdf") && html.contains("/statement.csv"));
    let (_, _, html) = get(&app, &ann, "/deliveries/D-1").await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("DPD") && html.contains("/deliveries/D-1/note.pdf"), "{html}");
    // Who receives it and the client's own reference, as the delivery note has them.
    assert!(html.contains("Contact: Bob") && html.contains("Your ref: ALPHA-7"), "{html}");
    let list = String::from_utf8(get(&app, &ann, "/deliveries").await.2).unwrap();
    assert!(list.contains(">Your ref<") && list.contains(">ALPHA-7<"), "{list}");
    let blanks = String::from_utf8(get(&app, &ann, "/blanks").await.2).unwrap();
    assert!(blanks.contains(">Expected<") && blanks.contains(">Accounted for<"), "{blanks}");
    // minijinja writes "/" in attributes as &#x2f;, which browsers read as "/".
    let html = html.replace("&#x2f;", "/");
    for want in [
        "Box 1 of 2",
        "Beanies",
        "DPD next day",
        "14.50",
        "src=\"/media/pod/D-1.svg\"",
        "href=\"https://track.example/155\"",
    ] {
        assert!(html.contains(want), "{want} on the delivery page: {html}");
    }
    // When it was signed for, on Ann's clock as every time she is shown (Sydney's, here).
    app.synced(
        "contacts",
        json!([{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin", "email": "ann@alpha.example", "role": "admin",
                "timezone": "Australia/Sydney"}]),
    )
    .await;
    let html = String::from_utf8(get(&app, &ann, "/deliveries/D-1").await.2).unwrap();
    assert!(html.contains("signed 2026-11-25 21:42 AEDT by courier"), "{html}");
    let (_, _, html) = get(&app, &ann, "/jobs/J-1").await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("Processes") && html.contains("Screen print"), "{html}");
    let (_, _, html) = get(&app, &ann, "/jobs/J-2").await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("href=\"/deliveries/D-1\""), "the job links its deliveries: {html}");
    app.stop().await;
}

#[tokio::test]
async fn pdfs_hold_the_data_and_the_brand() {
    let (app, fay) = app_as("P-1A").await;
    let (s, ct, pdf) = get(&app, &fay, "/deliveries/D-1/note.pdf").await;
    assert_eq!((s, ct.as_str()), (200, "application/pdf"));
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdftotext(&pdf);
    picture(&pdf, "delivery-note.png");
    for want in [
        "TOT",
        "Delivery note D-1",
        "Alpha Ltd",
        "Alpha HQ, 1 Quay St, Bristol",
        "ALPHA-7",
        "Cap, embroidered",
        "50",
        "Beanie, navy",
        "DPD 155",
        "70 item(s)",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    let text = pdftotext(&get(&app, &fay, "/deliveries/D-1/packing.pdf").await.2);
    for want in ["Packing note D-1", "Box 1 of 2", "Box 2 of 2", "Beanies", "2 container(s), 70 item(s)"] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    // A credit note is titled as one, not as an invoice.
    let text = pdftotext(&get(&app, &fay, "/invoices/CN-3.pdf").await.2);
    assert!(text.contains("Credit note CN-3") && !text.contains("Invoice CN-3"), "{text}");
    let text = pdftotext(&get(&app, &fay, "/invoices/INV-1.pdf").await.2);
    for want in ["Invoice INV-1", "PO-A", "734.40 GBP", "200.00 GBP", "534.40 GBP"] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    let statement = get(&app, &fay, "/statement.pdf").await.2;
    picture(&statement, "statement.png");
    let text = pdftotext(&statement);
    for want in [
        "Statement for Alpha Ltd",
        "300.00",
        "234.40",
        "534.40",
        "INV-1",
        "CN-3 CR",
        "-234.40",
        "1 open invoice(s) and 1 credit note(s); outstanding 300.00 GBP.",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    assert!(!text.contains("differs from these rows"), "the rows add up to TOT's total owed:\n{text}");
    assert!(!text.contains("INV-2"), "a paid invoice is not open");
    assert!(!text.contains("INV-9"), "another client's invoice never shows");
    app.stop().await;
}

/// What was paid out of a credit note is taken off its credit: one partly paid out shows
/// what is left, one paid out in full is settled and leaves the statement.
#[tokio::test]
async fn a_credit_note_paid_out_leaves_only_what_is_left() {
    let (app, fay) = app_as("P-1F").await;
    app.synced(
        "invoices",
        json!([{"id": "CN-4", "client_id": "C-1", "date": "2026-11-12", "job_name": "Credit: short delivery",
                "total": "-100.00", "paid": "40.00"},
               {"id": "CN-5", "client_id": "C-1", "date": "2026-11-13", "job_name": "Credit: late",
                "total": "-50.00", "paid": "50.00"}]),
    )
    .await;
    let csv = String::from_utf8(get(&app, &fay, "/statement.csv").await.2).unwrap();
    let cn4 = csv.lines().find(|l| l.contains("CN-4")).unwrap_or_else(|| panic!("CN-4 is open:\n{csv}"));
    assert!(cn4.contains(",-100.00,40.00,-60.00,"), "what is left of its credit: {cn4}");
    assert!(!csv.contains("CN-5"), "a credit note paid out in full is settled:\n{csv}");
    let text = pdftotext(&get(&app, &fay, "/invoices/CN-4.pdf").await.2);
    assert!(text.contains("-60.00 GBP") && !text.contains("-140.00"), "{text}");
    let (status, _, page) = get(&app, &fay, "/invoices").await;
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("-60.00") && !page.contains("-140.00") && !page.contains("-100.00</td><td>50.00"), "{page}");
    assert!(page.contains("credit used"), "CN-5 is said to be used up: {page}");
    app.stop().await;
}

#[tokio::test]
async fn statement_csv_has_the_columns_and_rows() {
    let (app, fay) = app_as("P-1F").await;
    let (s, ct, csv) = get(&app, &fay, "/statement.csv").await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/csv"));
    // Read back by a CSV reader that is not ours.
    let out = std::process::Command::new("python3")
        .args(["-c", "import csv,json,sys; print(json.dumps(list(csv.DictReader(sys.stdin))))"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&csv)?;
            c.wait_with_output()
        })
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let header = String::from_utf8(csv.clone()).unwrap().lines().next().unwrap().to_string();
    assert_eq!(header, "kind,invoice,date,due_date,client_po_ref,job,total,paid,outstanding,currency");
    let invoices: Vec<_> = rows.iter().filter(|r| r["kind"] == "invoice").collect();
    assert_eq!(invoices.len(), 1);
    let credits: Vec<_> = rows.iter().filter(|r| r["kind"] == "credit_note").collect();
    assert_eq!(credits.len(), 1);
    assert_eq!(credits[0]["invoice"], "CN-3");
    assert_eq!(credits[0]["outstanding"], "-234.40");
    // The rows add up to the total owed the statement shows beside them.
    let cents = |v: &serde_json::Value| -> i64 {
        let s = v.as_str().unwrap();
        let (neg, s) = s.strip_prefix('-').map_or((1, s), |r| (-1, r));
        let (a, b) = s.split_once('.').unwrap();
        neg * (a.parse::<i64>().unwrap() * 100 + b.parse::<i64>().unwrap())
    };
    let owed: i64 = rows.iter().filter(|r| r["kind"] != "aging").map(|r| cents(&r["outstanding"])).sum();
    assert_eq!(invoices[0]["invoice"], "INV-1");
    assert_eq!(invoices[0]["outstanding"], "534.40");
    assert_eq!(invoices[0]["currency"], "GBP");
    let aging: Vec<_> = rows.iter().filter(|r| r["kind"] == "aging").collect();
    assert_eq!(aging.len(), 4);
    assert_eq!(aging[0]["invoice"], "total_owed");
    assert_eq!(owed, cents(&aging[0]["outstanding"]));
    assert_eq!(aging[1]["invoice"], "over_30");
    assert_eq!(aging[1]["outstanding"], "234.40");
    app.stop().await;
}

/// A tracking address stored before the sync checked them (or written by hand) that would
/// close its attribute and open a script is not made a link, and nothing of it runs.
#[tokio::test]
async fn a_tracking_address_holding_markup_is_not_a_link() {
    let (app, ann) = app_as("P-1A").await;
    let bad = "https://t.example/x\"><script>alert(1)</script>";
    cport::store::on_db!(&app.db, p => sqlx::query("UPDATE deliveries SET tracking_url = $1 WHERE id = 'D-1'")
        .bind(bad).execute(p).await.map(|r| r.rows_affected()))
    .unwrap();
    let (status, _, html) = get(&app, &ann, "/deliveries/D-1").await;
    assert_eq!(status, 200);
    let html = String::from_utf8(html).unwrap();
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(!html.contains("Track with"), "no link to it: {html}");
    assert!(html.contains("/deliveries/D-1/note.pdf"), "the documents are still offered: {html}");
    app.stop().await;
}

/// TOT's ids may hold small letters (the sync API takes them): a delivery's and a purchase
/// order's pages, and the delivery's PDFs, open by the id as TOT gave it, and an id that
/// differs only in case is another record's, never shown in its place.
#[tokio::test]
async fn records_with_small_letters_in_their_ids_open_as_given() {
    let (app, ann) = app_as("P-1A").await;
    app.synced(
        "deliveries",
        json!([{"id": "d-7a", "client_id": "C-1", "job_id": "J-2", "status": "ready", "venue": "Quay St",
                "description": "Hoodies, small letters", "lines": [{"description": "Hoodie", "qty": 3}]}]),
    )
    .await;
    app.synced(
        "purchase_orders",
        json!([{"id": "po-7a", "client_id": "C-1", "placed_by": "Reseller R", "third_party": true, "status": "open",
                "date_ordered": "2026-11-02", "tot_ref": "T7", "category": "Garments", "type": "Third party",
                "supplier": "Supplier of small letters",
                "lines": [{"status": "open", "sku": "BLK-1", "description": "Tee", "ordered": 5, "received": 0}]}]),
    )
    .await;
    let (status, _, html) = get(&app, &ann, "/deliveries/d-7a").await;
    let html = String::from_utf8(html).unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Hoodies, small letters") && html.contains("/deliveries/d-7a/note.pdf"), "{html}");
    let (status, ct, pdf) = get(&app, &ann, "/deliveries/d-7a/note.pdf").await;
    assert_eq!((status, ct.as_str()), (200, "application/pdf"));
    assert!(pdftotext(&pdf).contains("Hoodies, small letters"));
    let (status, _, html) = get(&app, &ann, "/pos/po-7a").await;
    let html = String::from_utf8(html).unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Supplier of small letters"), "{html}");
    // Another case is another id: `D-7A` is no record of this client's.
    assert_eq!(get(&app, &ann, "/deliveries/D-7A").await.0, 404);
    assert_eq!(get(&app, &ann, "/pos/PO-7A").await.0, 404);
    app.stop().await;
}

/// The price card in force is the one of the contact's day: at noon UTC on 1 December, a card
/// from 2 December is already TOT's prices for a contact in Auckland (past their midnight),
/// and not yet for one in London.
#[tokio::test]
async fn the_price_card_in_force_is_the_one_of_the_contacts_day() {
    let app = app().await;
    let card = |id: &str, name: &str, from: &str| {
        json!({"id": id, "client_id": "C-1", "name": name, "effective_from": from,
               "lines": [{"code": "SP1", "description": "Screen print", "unit": "each", "min_qty": 25, "price": "0.84"}]})
    };
    app.synced(
        "price_cards",
        json!([card("RC-1", "Old rates", "2026-01-01"), card("RC-2", "New rates", "2026-12-02")]),
    )
    .await;
    let noon = chrono::DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z").unwrap().to_utc();
    for (zone, card) in
        [("Pacific/Auckland", "New rates (from 2026-12-02"), ("Europe/London", "Old rates (from 2026-01-01")]
    {
        let ann = json!([{"id": "P-1A", "client_id": "C-1", "name": "Ann Admin", "email": "ann@alpha.example",
                          "role": "admin", "timezone": zone}]);
        app.synced("contacts", ann).await;
        let contact = cport::store::contacts::get_contact(&app.db, "P-1A").await.unwrap();
        let actor = cport::actions::Actor::new(contact, cport::model::Channel::Email);
        let asked = cport::actions::commands::Command::Prices;
        let answer =
            cport::actions::enquiry::run_alone(&app.state, &actor, &asked, &Default::default(), noon).await.unwrap();
        assert!(answer.title.starts_with(card), "{zone}: {answer:?}");
    }
    app.stop().await;
}

/// A job's process pictures and a purchase order's checking pictures are shown on their
/// pages; an email or chat answer says how many there are and links to the page.
#[tokio::test]
async fn process_and_checking_pictures_are_shown_on_their_pages() {
    let (app, ann) = app_as("P-1A").await;
    let job = json!([{"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "in_production",
        "process_lines": [{"status": "planned", "process": "Screen print", "position": "Front", "qty": 100,
                           "unit_price": "1.50", "image": "/media/process/J-1-front.svg"}],
        "printed_garments": [{"description": "Tee", "expected_qty": 100}]}]);
    app.synced("jobs", job).await;
    let po = json!([{"id": "PO-1", "client_id": "C-1", "placed_by": "Reseller R", "third_party": true, "status": "open",
        "date_ordered": "2026-11-01", "tot_ref": "T1", "category": "Garments", "type": "Third party", "supplier": "S",
        "lines": [{"status": "open", "sku": "BLK-1", "description": "Tee", "ordered": 10, "received": 4}],
        "receipts": [{"date_received": "2026-11-05", "signed_by": "Sam", "outers": 2, "handling_cost": "3.00",
                      "checking_images": ["/media/po/PO-1-a.svg", "/media/po/PO-1-b.svg"]}]}]);
    app.synced("purchase_orders", po).await;
    // minijinja writes "/" in attributes as &#x2f;, which browsers read as "/".
    let shown = |path: &'static str| {
        let (app, ann) = (&app, &ann);
        async move { String::from_utf8(get(app, ann, path).await.2).unwrap().replace("&#x2f;", "/") }
    };
    let html = shown("/jobs/J-1").await;
    assert!(html.contains("src=\"/media/process/J-1-front.svg\"") && html.contains("Screen print, Front"), "{html}");
    let html = shown("/pos/PO-1").await;
    assert!(html.contains("src=\"/media/po/PO-1-b.svg\"") && html.contains("Checking picture 2"), "{html}");
    assert!(!html.contains("picture(s) from its checking"), "the portal's own page needs no link to itself");
    // By email: where they are.
    let contact = cport::store::contacts::get_contact(&app.db, "P-1A").await.unwrap();
    let actor = cport::actions::Actor::new(contact, cport::model::Channel::Email);
    for (asked, says) in [
        (cport::actions::commands::Command::Job("J-1".into()), "1 picture(s) of its processes, on its page: "),
        (cport::actions::commands::Command::Po("PO-1".into()), "2 picture(s) from its checking, on its page: "),
    ] {
        let answer =
            cport::actions::enquiry::run_alone(&app.state, &actor, &asked, &Default::default(), chrono::Utc::now())
                .await
                .unwrap();
        let lines: Vec<&String> = answer.sections.iter().flat_map(|s| s.lines.iter()).collect();
        assert!(lines.iter().any(|l| l.starts_with(says) && l.contains("/l/")), "{answer:?}");
    }
    app.stop().await;
}
