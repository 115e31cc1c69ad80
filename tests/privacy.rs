//! Never to the wrong eyes: pictures open only for those who may see the record showing
//! them (or through a signed address that expires), every signed link in a digest opens
//! for its reader, two processes on one store keep one sign-in limit, and artwork sent on
//! the portal is the client's own.

mod common;

use chrono::{Duration, Utc};
use common::{TestApp, browser, load_world};
use serde_json::json;

/// The world, with one picture of each kind for client C-1 and one for C-2, on disk.
async fn app_with_pictures() -> TestApp {
    let app = TestApp::spawn_with(|c| c.branding.logo_url = "/media/brand/logo.svg".into()).await;
    load_world(&app).await;
    for (entity, body) in [
        (
            "jobs",
            json!([{"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "in_production",
                    "process_lines": [{"status": "planned", "process": "Screen print", "position": "Front", "qty": 100,
                                       "unit_price": "1.50", "image": "/media/process/J-1_front.png"}],
                    "printed_garments": [{"description": "Tee", "expected_qty": 100}]}]),
        ),
        (
            "deliveries",
            json!([{"id": "D-1", "client_id": "C-1", "job_id": "J-2", "status": "sent", "sent_date": "2026-11-24",
                    "venue": "Alpha HQ", "description": "Caps", "lines": [{"description": "Cap", "qty": 50}],
                    "proof_of_delivery": {"signature_image": "/media/pod/D-1.svg", "boxes": 2, "courier": "DPD",
                                          "signed_at": "2026-11-25T10:42:00Z", "courier_worker": "Driver 7"}}]),
        ),
        (
            "stock",
            json!([{"sku": "SKU-1", "client_id": "C-1", "description": "Tee, printed", "warehouse_balance": 10,
                    "expected": 0, "accounted_for": 0, "available_to_order": 10, "picture": "/media/stock/SKU-1.svg"}]),
        ),
        (
            "purchase_orders",
            json!([{"id": "PO-1", "client_id": "C-1", "placed_by": "Reseller R", "third_party": true, "status": "open",
                    "date_ordered": "2026-11-01", "tot_ref": "T1", "category": "Garments", "type": "Third party", "supplier": "S",
                    "lines": [{"status": "open", "sku": "BLK-1", "description": "Tee", "ordered": 10, "received": 4}],
                    "receipts": [{"date_received": "2026-11-05", "signed_by": "Stores", "outers": 1, "handling_cost": 0,
                                  "checking_images": ["/media/receipts/PO-1_1.svg"]}]}]),
        ),
    ] {
        app.synced(entity, body).await;
    }
    let media = app.dir.path().join("media");
    for file in [
        "v1.svg",
        "v9.svg",
        "process/J-1_front.png",
        "pod/D-1.svg",
        "stock/SKU-1.svg",
        "receipts/PO-1_1.svg",
        // On disk, but no record shows it: nobody may open it.
        "receipts/PO-1X1.svg",
        "receipts/po-1_1.svg",
        "stray.svg",
        "brand/logo.svg",
    ] {
        let path = media.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("<svg xmlns='http://www.w3.org/2000/svg'><title>{file}</title></svg>")).unwrap();
    }
    std::fs::write(app.dir.path().join("secret.txt"), "not a picture").unwrap();
    app
}

async fn status(app: &TestApp, client: &reqwest::Client, path: &str) -> u16 {
    client.get(app.url(path)).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn pictures_open_only_for_sessions_that_may_see_their_record() {
    let app = app_with_pictures().await;
    // Ann admin, Bob buyer, Fay finance, Vic viewer (all C-1), Zed admin (C-2).
    let who = ["P-1A", "P-1B", "P-1F", "P-1V", "P-2A"];
    let mut sessions = vec![];
    for c in who {
        sessions.push(app.signed_in(c).await);
    }
    let nobody = browser();
    // Each picture, and who of the five gets it (the rest, and no session, get 404).
    let table: [(&str, [bool; 5]); 9] = [
        ("/media/v1.svg", [true, true, false, true, false]),
        ("/media/v9.svg", [false, false, false, false, true]),
        ("/media/process/J-1_front.png", [true, true, false, true, false]),
        ("/media/pod/D-1.svg", [true, true, false, true, false]),
        ("/media/stock/SKU-1.svg", [true, true, false, true, false]),
        ("/media/receipts/PO-1_1.svg", [true, true, true, true, false]),
        // `_` in a name must not match any character of another receipt's picture.
        ("/media/receipts/PO-1X1.svg", [false; 5]),
        // Nor may a path differing from a receipt's picture only in the case of its letters.
        ("/media/receipts/po-1_1.svg", [false; 5]),
        ("/media/stray.svg", [false; 5]),
    ];
    for (path, allowed) in table {
        for (i, c) in who.iter().enumerate() {
            let want = if allowed[i] { 200 } else { 404 };
            assert_eq!(status(&app, &sessions[i], path).await, want, "{path} for {c}");
        }
        assert_eq!(status(&app, &nobody, path).await, 404, "{path} without a session");
    }
    // The brand's logo is for everyone: the sign-in page and emails show it.
    assert_eq!(status(&app, &nobody, "/media/brand/logo.svg").await, 200);
    // A picture is served as a picture that can run nothing, and kept by no shared cache.
    let r = sessions[0].get(app.url("/media/v1.svg")).send().await.unwrap();
    let h = r.headers();
    assert_eq!(h["content-type"], "image/svg+xml");
    assert!(h["content-security-policy"].to_str().unwrap().starts_with("sandbox"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["cache-control"].to_str().unwrap().starts_with("private"));
    // Paths that try to leave the pictures' folder open nothing, for anyone.
    for path in ["/media/..%2Fsecret.txt", "/media/%2E%2E/secret.txt", "/media/..%5Csecret.txt", "/media/v1%01.svg"] {
        assert_eq!(status(&app, &sessions[0], path).await, 404, "{path}");
    }
    // A path longer than any record holds is nobody's picture (not a store error).
    let long = format!("/media/{}.svg", "ab_".repeat(17_000));
    assert_eq!(status(&app, &sessions[0], &long).await, 404, "a long path");
    // A NUL is refused at the door, as in every path.
    assert_eq!(status(&app, &sessions[0], "/media/v1%00.svg").await, 400);
    // A receipt's picture belongs to it while TOT's record lists it: sent again without the
    // receipt, the purchase order no longer shows it.
    let mut po = json!({"id": "PO-1", "client_id": "C-1", "placed_by": "Reseller R", "third_party": true, "status": "open",
        "date_ordered": "2026-11-01", "tot_ref": "T1", "category": "Garments", "type": "Third party", "supplier": "S",
        "lines": [], "receipts": []});
    app.synced("purchase_orders", json!([po.clone()])).await;
    assert_eq!(status(&app, &sessions[0], "/media/receipts/PO-1_1.svg").await, 404, "no longer listed");
    po["receipts"] = json!([{"date_received": "2026-11-05", "signed_by": "Stores", "outers": 1, "handling_cost": 0,
                             "checking_images": ["/media/receipts/PO-1_1.svg", "/media/receipts/PO-1_1.svg"]}]);
    app.synced("purchase_orders", json!([po])).await;
    assert_eq!(status(&app, &sessions[0], "/media/receipts/PO-1_1.svg").await, 200, "listed again, twice");
    app.stop().await;
}

#[tokio::test]
async fn a_signed_picture_address_opens_without_a_session_until_it_expires() {
    let app = app_with_pictures().await;
    let now = Utc::now();
    let public = app.state.config.public_url.trim_end_matches('/').to_string();
    let local = |url: String| url.replace(&public, &app.base);
    let fresh = local(app.state.picture_url("/media/v1.svg", now + Duration::hours(1)));
    let nobody = browser();
    let r = nobody.get(&fresh).send().await.unwrap();
    assert_eq!(r.status(), 200, "{fresh}");
    assert!(r.text().await.unwrap().contains("v1.svg"));
    let expired = local(app.state.picture_url("/media/v1.svg", now - Duration::seconds(1)));
    assert_eq!(nobody.get(&expired).send().await.unwrap().status(), 404);
    // The signature is the path's: it opens no other picture.
    let other = fresh.replace("/media/v1.svg", "/media/v9.svg");
    assert_eq!(nobody.get(&other).send().await.unwrap().status(), 404);
    // Its expiry cannot be moved.
    let (base, query) = fresh.split_once('?').unwrap();
    let later = (now + Duration::days(365)).timestamp();
    let sig = query.split('&').find(|kv| kv.starts_with("sig=")).unwrap();
    let moved = format!("{base}?exp={later}&{sig}");
    assert_eq!(nobody.get(&moved).send().await.unwrap().status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn every_signed_link_in_every_demo_digest_opens_for_its_reader() {
    let app = TestApp::spawn().await;
    let now = Utc::now();
    cport::demo::write_media(app.dir.path()).unwrap();
    cport::sync::import::apply_document(&app.db, &cport::demo::document(now), false).await.unwrap();
    cport::digest::scheduler::run_pass(
        &app.state,
        now,
        None,
        cport::digest::scheduler::Trigger::Manual { force: false },
    )
    .await
    .unwrap();
    let public = app.state.config.public_url.trim_end_matches('/').to_string();
    let digests: Vec<_> = cport::store::outbox::list_messages(&app.db, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.message.kind.as_str() == "digest" && m.message.channel.as_str() == "email")
        .collect();
    let contacts = cport::store::contacts::list_active_contacts(&app.db).await.unwrap();
    let mut roles_checked = std::collections::BTreeSet::new();
    let mut links_checked = 0;
    let mut targets = std::collections::BTreeSet::new();
    for m in &digests {
        let contact =
            contacts.iter().find(|c| Some(&c.id) == m.message.contact_id.as_ref()).expect("a digest's contact");
        let p: cport::channels::email::EmailPayload = serde_json::from_str(&m.message.payload).unwrap();
        let links: Vec<String> = p
            .text
            .split_whitespace()
            .filter(|w| w.starts_with(&format!("{public}/l/")))
            .map(|w| w.trim_end_matches(['.', ',', ')', '>']).replace(&public, &app.base))
            .collect();
        assert!(!links.is_empty(), "{}'s digest has links", contact.id);
        for link in links {
            // Each link in a browser of its own, as a mail client opens it.
            let b = browser();
            let r = b.get(&link).send().await.unwrap();
            assert_eq!(r.status(), 303, "{link} for {} ({})", contact.id, contact.role);
            let target = r.headers()["location"].to_str().unwrap().to_string();
            let page = target.split('#').next().unwrap();
            let (s, body) = app.page(&b, page).await;
            assert_eq!(
                s,
                200,
                "{target} from {}'s digest ({}): {}",
                contact.id,
                contact.role,
                body.chars().take(300).collect::<String>()
            );
            links_checked += 1;
            targets.insert((contact.role.to_string(), page.split('/').nth(1).unwrap_or("").to_string()));
        }
        roles_checked.insert(contact.role.to_string());
    }
    for role in ["admin", "buyer", "finance", "viewer"] {
        assert!(roles_checked.contains(role), "a {role}'s digest was checked: {roles_checked:?}");
    }
    assert!(links_checked >= 20, "{links_checked} links checked");
    // A purchase order's item opens its own page; a viewer's delivery item opens the job.
    assert!(targets.contains(&("admin".into(), "pos".into())), "{targets:?}");
    assert!(targets.contains(&("viewer".into(), "jobs".into())), "{targets:?}");
    app.stop().await;
}

#[tokio::test]
async fn two_processes_on_one_store_keep_one_sign_in_limit() {
    let a = TestApp::with_world().await;
    let b = a.spawn_beside(|_| {}).await;
    let per_account = a.state.config.portal.login_attempts_per_account;
    let login = |app: &TestApp| {
        let app = app.url("");
        async move {
            let c = browser();
            let html = c.get(format!("{app}/login")).send().await.unwrap().text().await.unwrap();
            let csrf = common::csrf_of(&html);
            c.post(format!("{app}/login"))
                .form(&[("csrf", csrf.as_str()), ("email", "ann@alpha.example"), ("password", "wrong")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Wrong passwords, taking turns between the two processes: together they allow what
    // one would allow, and then both refuse.
    for i in 0..per_account {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_eq!(login(app).await, 401, "try {} of {per_account}", i + 1);
    }
    assert_eq!(login(&a).await, 429);
    assert_eq!(login(&b).await, 429);
    b.stop().await;
    a.stop().await;
}

/// A multipart body with the form's fields and files, as a browser sends it.
fn multipart(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----cport-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts artwork from the job page's form; returns the note of the page it lands on.
async fn send_artwork(
    app: &TestApp,
    b: &reqwest::Client,
    job: &str,
    requirement: &str,
    files: &[(&str, &[u8])],
) -> (u16, String) {
    let (_, html) = app.page(b, &format!("/jobs/{job}")).await;
    let csrf = common::csrf_of(&html);
    // A requirement holding a NUL stands for two fields of that name, one value each.
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend(requirement.split('\u{0}').map(|r| ("requirement", r)));
    let (ctype, body) = multipart(&fields, files);
    let r =
        b.post(app.url(&format!("/jobs/{job}/artwork"))).header("content-type", ctype).body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
    if status != 303 {
        return (status, r.text().await.unwrap_or_default());
    }
    assert!(location.ends_with("#artwork"), "{location}");
    let (_, page) = app.page(b, location.split('#').next().unwrap()).await;
    let note = page
        .split("<div class=\"note\" role=\"status\">")
        .nth(1)
        .and_then(|n| n.split("</div>").next())
        .unwrap_or("")
        .to_string();
    (status, note)
}

#[tokio::test]
async fn a_buyer_sends_artwork_on_the_job_page_and_it_stays_the_clients_own() {
    let app = TestApp::spawn_with(|c| c.inbound.max_attachment_bytes = 64 * 1024).await;
    load_world(&app).await;
    let bob = app.signed_in("P-1B").await;
    let page = app.shown(&bob, "/jobs/J-1").await;
    assert!(page.contains("id=\"artwork\"") && page.contains("waiting for your artwork"), "{page}");
    assert!(page.contains("name=\"files\"") && page.contains("multiple"), "a file input for several files");
    let before = app.changes(0).await.len();

    // A refused type and a file over the limit: named, and nothing changes.
    let big = vec![b'%'; 64 * 1024 + 1];
    let (s, note) = send_artwork(&app, &bob, "J-1", "AR-1", &[("setup.exe", b"MZ"), ("huge.pdf", &big)]).await;
    assert_eq!(s, 303);
    assert!(note.contains("setup.exe: .exe files are not accepted"), "{note}");
    assert!(note.contains("huge.pdf: larger than 64 KB"), "{note}");
    assert_eq!(app.changes(0).await.len(), before, "nothing recorded");
    // A requirement given twice (the last would win): refused, naming the field.
    let (s, note) = send_artwork(&app, &bob, "J-1", "AR-1\u{0}AR-9", &[("logo.pdf", b"%PDF-1.4 logo")]).await;
    assert_eq!(s, 303);
    assert!(note.contains("requirement: is given twice"), "{note}");
    assert_eq!(app.changes(0).await.len(), before, "nothing recorded");
    // A name holding a control character (which no multipart part may): said by the name.
    let (s, note) = send_artwork(&app, &bob, "J-1", "AR-1", &[("a\u{1b}b.pdf", b"%PDF-1.4")]).await;
    assert_eq!(s, 303);
    assert!(
        note.contains("a file&#x27;s name could not be read") || note.contains("a file's name could not be read"),
        "{note}"
    );
    assert_eq!(app.changes(0).await.len(), before, "nothing recorded");
    // A program renamed to look like a PDF is refused by what it holds.
    let (s, note) = send_artwork(&app, &bob, "J-1", "AR-1", &[("art.pdf", b"MZ\x90\x00 a program")]).await;
    assert_eq!(s, 303);
    assert!(note.contains("art.pdf: its content is not a .pdf file"), "{note}");
    assert_eq!(app.changes(0).await.len(), before, "nothing recorded");
    let (_, page) = app.page(&bob, "/jobs/J-1").await;
    assert!(page.contains("waiting for your artwork"));

    // Nothing chosen: said, and nothing changes.
    let (s, note) = send_artwork(&app, &bob, "J-1", "AR-1", &[]).await;
    assert_eq!(s, 303);
    assert!(note.contains("files: choose at least one file"), "{note}");
    assert_eq!(app.changes(0).await.len(), before, "nothing recorded");

    // An empty file, and a name too long for a file system: refused by name, and the long
    // name is not echoed whole. `.pdf` alone, or after characters that print as nothing, is
    // no name either.
    let long = format!("{}.pdf", "n".repeat(300));
    let files: &[(&str, &[u8])] =
        &[("empty.pdf", b""), (&long, b"%PDF-1.4"), (".pdf", b"%PDF-1.4"), ("\u{200B}\u{2060}.pdf", b"%PDF-1.4")];
    let (s, note) = send_artwork(&app, &bob, "J-1", "AR-1", files).await;
    assert_eq!(s, 303);
    assert!(note.contains("empty.pdf: the file is empty"), "{note}");
    assert!(note.contains("the file name is longer than 200 characters") && note.len() < 1400, "{note}");
    assert_eq!(note.matches("a file without a name: name it with its type").count(), 2, "nameless: {note}");
    assert_eq!(app.changes(0).await.len(), before, "nothing recorded");

    // A job no longer at TOT (cancelled, delivered) takes no artwork, and its page neither
    // offers a form for art TOT was waiting for nor says it waits: ART and the digests wait
    // for art on jobs still at TOT only.
    for (i, status) in ["cancelled", "delivered"].into_iter().enumerate() {
        let job = serde_json::json!([{"id": "J-8", "client_id": "C-1", "name": "Dropped", "status": status}]);
        app.synced("jobs", job).await;
        if i == 0 {
            let art = serde_json::json!([{"id": "AR-8", "client_id": "C-1", "job_id": "J-8", "design_id": "DS-1",
                                          "description": "Badge", "art_received": false}]);
            app.synced("art_requirements", art).await;
        }
        let (s, body) = send_artwork(&app, &bob, "J-8", "AR-8", &[("logo.pdf", b"%PDF-1.4")]).await;
        assert_eq!(s, 409, "{body}");
        assert!(body.contains(&format!("job J-8 is {status}; it takes no artwork")), "{body}");
        assert_eq!(app.changes(0).await.len(), before, "nothing recorded");
        let page = app.shown(&bob, "/jobs/J-8").await;
        assert!(page.contains("Badge") && !page.contains("class=\"upload\""), "{status}: {page}");
        assert!(!page.contains("waiting for your artwork"), "{status}: {page}");
    }
    assert!(app.shown(&bob, "/jobs/J-1").await.contains("class=\"upload\""), "a job not cancelled offers one");

    // Two good files: kept, the art received, one event.
    let (s, note) =
        send_artwork(&app, &bob, "J-1", "AR-1", &[("logo.pdf", b"%PDF-1.4 logo"), ("logo.svg", b"<svg/>")]).await;
    assert_eq!(s, 303);
    assert!(note.contains("logo.pdf") && note.contains("received"), "{note}");
    let changes = app.changes(0).await;
    let uploaded: Vec<_> = changes.iter().filter(|c| c["kind"] == "artwork_uploaded").collect();
    assert_eq!(uploaded.len(), 1, "{changes:?}");
    assert_eq!(uploaded[0]["data"]["requirement_id"], "AR-1");
    assert_eq!(uploaded[0]["data"]["channel"], "portal");
    let file = &uploaded[0]["data"]["files"][0];
    assert_eq!(file["name"], "logo.pdf");
    let stored = file["stored_as"].as_str().unwrap();
    assert!(stored.ends_with("-logo.pdf") && !stored.contains('/'), "the name it is kept under: {file}");
    let (_, page) = app.page(&bob, "/jobs/J-1").await;
    assert!(!page.contains("waiting for your artwork"), "the art is received");
    assert!(page.contains("logo.pdf") && page.contains("logo.svg"));
    // The same files sent again (a second click): each said received already, kept once.
    let (s, note) =
        send_artwork(&app, &bob, "J-1", "AR-1", &[("logo.pdf", b"%PDF-1.4 logo"), ("logo.svg", b"<svg/>")]).await;
    assert_eq!(s, 303);
    assert_eq!(note.matches("received already, at").count(), 2, "{note}");
    assert_eq!(app.changes(0).await.iter().filter(|c| c["kind"] == "artwork_uploaded").count(), 1);
    assert_eq!(app.shown(&bob, "/jobs/J-1").await.matches("logo.pdf</a>").count(), 1);
    // The item has left the buyer's items.
    let contact = cport::store::contacts::get_contact(&app.db, "P-1B").await.unwrap();
    let items = cport::actions::items::for_contact(&app.db, &contact).await.unwrap();
    assert!(!items.iter().any(|i| i.key() == "A4:J-1"), "{items:?}");

    // Each file downloads for the client's sessions, as bytes to save; for no one else.
    let href = page.split("href=\"/jobs/J-1/artwork/").nth(1).unwrap().split('"').next().unwrap().to_string();
    let path = format!("/jobs/J-1/artwork/{href}");
    let r = bob.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    // The name as uploaded too, for browsers that read it (RFC 6266's `filename*`).
    assert!(disposition.contains("filename*=UTF-8''logo."), "{disposition}");
    let vic = app.signed_in("P-1V").await;
    assert_eq!(status(&app, &vic, &path).await, 200, "a viewer of the client sees the job's files");
    let zed = app.signed_in("P-2A").await;
    assert_eq!(status(&app, &zed, &path).await, 404, "another client's session");
    assert_eq!(status(&app, &browser(), &path).await, 303, "no session: sign in first");
    assert_eq!(status(&app, &zed, "/jobs/J-1").await, 404);

    // A viewer sees the files but gets no form; posting anyway is refused and changes nothing.
    let (_, page) = app.page(&vic, "/jobs/J-1").await;
    assert!(!page.contains("name=\"files\""));
    let (s, _) = send_artwork(&app, &vic, "J-1", "AR-1", &[("x.pdf", b"%PDF-1.4")]).await;
    assert_eq!(s, 403);
    // Another client's requirement is none of this job's: refused, naming the field.
    let (s, note) = send_artwork(&app, &bob, "J-1", "AR-9", &[("x.pdf", b"%PDF-1.4")]).await;
    assert_eq!(s, 303);
    assert!(note.contains("Nothing was sent: requirement: job J-1 has no art requirement"), "{note}");
    // Files for no requirement at all are refused the same way, as is a body that is no upload.
    let (s, note) = send_artwork(&app, &bob, "J-1", "", &[("x.pdf", b"%PDF-1.4")]).await;
    assert_eq!(s, 303);
    assert!(note.contains("Nothing was sent: requirement: say which"), "{note}");
    let r = bob.post(app.url("/jobs/J-1/artwork")).header("content-type", "text/plain").body("x").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("body: not a multipart&#x2f;form-data upload"), "{page}");
    assert_eq!(app.changes(0).await.iter().filter(|c| c["kind"] == "artwork_uploaded").count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn two_uploads_of_one_name_keep_their_own_bytes() {
    let t = common::TestState::new(|_| {}).await;
    t.load(common::world()).await;
    let bob = cport::store::contacts::get_contact(&t.state.db, "P-1B").await.unwrap();
    let bob = cport::actions::Actor::new(bob, cport::model::Channel::Portal);
    // Two uploads of one name to one job in the same second (a double click, two tabs).
    let now = Utc::now();
    for bytes in [&b"%PDF-1 first version"[..], b"%PDF-1 second version"] {
        let file = cport::actions::artwork::Upload {
            name: "logo.pdf".into(),
            content_type: "application/pdf".into(),
            bytes,
            damaged: false,
        };
        let mut unit = cport::actions::Unit::new(&t.state);
        let answer =
            cport::actions::artwork::upload(&t.state, &mut unit, &bob, "J-1", None, &[file], now).await.unwrap();
        assert!(answer.ok, "{answer:?}");
        // A small file's size is said in bytes, not as "0 KB".
        assert!(format!("{answer:?}").contains(&format!("logo.pdf ({} bytes): received", bytes.len())), "{answer:?}");
        unit.commit().await.unwrap();
    }
    let rows = cport::store::inbound::list_artwork(&t.state.db, "C-1", "J-1").await.unwrap();
    let mut kept: Vec<Vec<u8>> = rows.iter().map(|r| std::fs::read(&r.path).unwrap()).collect();
    kept.sort();
    assert_eq!(kept, [b"%PDF-1 first version".to_vec(), b"%PDF-1 second version".to_vec()]);
    // One file attached twice to one message: kept once.
    let twice: Vec<_> = (0..2)
        .map(|_| cport::actions::artwork::Upload {
            name: "back.pdf".into(),
            content_type: "application/pdf".into(),
            bytes: b"%PDF-1 back",
            damaged: false,
        })
        .collect();
    let mut unit = cport::actions::Unit::new(&t.state);
    let answer = cport::actions::artwork::upload(&t.state, &mut unit, &bob, "J-1", None, &twice, now).await.unwrap();
    unit.commit().await.unwrap();
    assert!(format!("{answer:?}").contains("back.pdf: received already"), "{answer:?}");
    assert_eq!(cport::store::inbound::list_artwork(&t.state.db, "C-1", "J-1").await.unwrap().len(), 3);

    // A name that is only a type's letters has no type.
    let file = cport::actions::artwork::Upload {
        name: "pdf".into(),
        content_type: "application/pdf".into(),
        bytes: b"%PDF",
        damaged: false,
    };
    let mut unit = cport::actions::Unit::new(&t.state);
    let answer = cport::actions::artwork::upload(&t.state, &mut unit, &bob, "J-1", None, &[file], now).await.unwrap();
    let said = format!("{answer:?}");
    assert!(!answer.ok && said.contains("pdf: the name has no type"), "{said}");
}

/// A contact deactivated after a message was queued for them (a digest waiting for its send,
/// an alert held by quiet hours) gets nothing more: the message is dropped, saying why. And
/// no digest is made for one on demand.
#[tokio::test]
async fn a_contact_deactivated_after_queueing_gets_nothing_more() {
    use cport::digest::scheduler::{Trigger, run_pass};
    let t = common::TestState::new(|_| {}).await;
    t.load(common::world()).await;
    common::digests_now(&t.state, &["P-1A", "P-1B"]).await;
    t.load(json!({"contacts": [{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer",
        "email": "bob@alpha.example", "role": "buyer", "active": false}]}))
        .await;
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!((r.sent, r.dropped), (1, 1), "{r:?}");
    let rows = cport::store::outbox::list_messages(&t.state.db, None, 10).await.unwrap();
    let bob = rows.iter().find(|m| m.message.recipient == "bob@alpha.example").expect("Bob's digest was queued");
    assert_eq!(bob.status.as_str(), "dropped");
    assert_eq!(bob.last_error.as_deref(), Some("the contact is no longer active"));
    let mail: Vec<_> = std::fs::read_dir(&t.state.config.email.dir).unwrap().collect();
    assert_eq!(mail.len(), 1, "only Ann's digest was written");
    let refused = run_pass(&t.state, Utc::now(), Some("P-1B"), Trigger::Manual { force: true }).await;
    assert!(refused.is_err_and(|e| e.to_string().contains("is not active")));
}

/// A contact TOT removes and later sends again under the same id is a new record (here
/// another person, at another client): the links made for the one removed (sign-in,
/// password, unsubscribe) open nothing for the new one; links made since work.
#[tokio::test]
async fn links_made_for_a_removed_contact_do_not_open_for_the_next_holder_of_its_id() {
    let app = TestApp::spawn().await;
    load_world(&app).await;
    let made = Utc::now();
    let signer = &app.state.signer;
    let old_links = [
        signer.open_url(&app.base, "/visuals/V-1", "P-1B", Duration::days(1), made),
        signer.set_password_url(&app.base, "P-1B", Duration::days(1), made),
        signer.unsubscribe_url(&app.base, "P-1B", cport::model::Stoppable::Digest, Duration::days(1), made),
    ];
    let (status, body) = app.delete("contacts", &["P-1B"]).await;
    assert_eq!(status, 200, "{body}");
    app.synced(
        "contacts",
        json!([{"id": "P-1B", "client_id": "C-2", "name": "Other Person", "email": "other@beta.example", "role": "admin"}]),
    )
    .await;
    for link in &old_links {
        let path = link.strip_prefix(&app.base).unwrap();
        let b = browser();
        let (status, html) = app.page(&b, path).await;
        assert_eq!(status, 400, "{path}: {html}");
        assert!(html.contains("does not work") || html.contains("not valid"), "{path}: {html}");
        assert_eq!(app.page(&b, "/").await.0, 303, "{path} signed nobody in");
    }
    // One-click unsubscribe by POST is refused as well, and nothing changed.
    let unsubscribe = old_links[2].strip_prefix(&app.base).unwrap();
    let (status, _, _) = app.post_raw(&browser(), unsubscribe, &[]).await;
    assert_eq!(status, 400);
    assert_eq!(app.count("changes WHERE kind = 'email_unsubscribed'").await, 0);
    // A link made for the contact now opens, as its holder.
    let now = signer.open_url(&app.base, "/", "P-1B", Duration::days(1), Utc::now());
    let b = browser();
    assert_eq!(app.page(&b, now.strip_prefix(&app.base).unwrap()).await.0, 303);
    let html = app.shown(&b, "/").await;
    assert!(html.contains("Other Person"), "{html}");
    app.stop().await;
}

/// A contact TOT gives another address is no longer read at the old one: the session and
/// the signed links made before the change (sign-in, password) open nothing for whoever
/// still reads the old address; links made since work. The same address written in other
/// case is no change.
#[tokio::test]
async fn a_new_address_ends_the_sessions_and_links_made_for_the_old_one() {
    let app = TestApp::spawn().await;
    load_world(&app).await;
    let signer = &app.state.signer;
    let made = Utc::now();
    let old_links = [
        signer.open_url(&app.base, "/visuals/V-1", "P-1B", Duration::days(1), made),
        signer.set_password_url(&app.base, "P-1B", Duration::days(1), made),
    ];
    let b = app.signed_in("P-1B").await;
    let bob =
        |email: &str| json!([{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer", "email": email, "role": "buyer"}]);
    app.synced("contacts", bob("BOB@alpha.example")).await;
    assert_eq!(app.page(&b, "/").await.0, 200, "the same address: still signed in");
    app.synced("contacts", bob("robert@alpha.example")).await;
    assert_eq!(app.page(&b, "/").await.0, 303, "the old address's session ended");
    for link in &old_links {
        let path = link.strip_prefix(&app.base).unwrap();
        let b = browser();
        let (status, html) = app.page(&b, path).await;
        assert_eq!(status, 400, "{path}: {html}");
        assert_eq!(app.page(&b, "/").await.0, 303, "{path} signed nobody in");
    }
    let now = signer.open_url(&app.base, "/", "P-1B", Duration::days(1), Utc::now() + Duration::milliseconds(2));
    let b = browser();
    assert_eq!(app.page(&b, now.strip_prefix(&app.base).unwrap()).await.0, 303);
    assert_eq!(app.page(&b, "/").await.0, 200, "a link made since signs in");
    app.stop().await;
}

/// A password chosen by whoever read a contact's old address does not sign in with the new
/// one: TOT giving the contact another address ends the password with the sessions, and the
/// new address's reader chooses one from a reset link. The same address in other case keeps it.
#[tokio::test]
async fn a_new_address_ends_the_password_chosen_at_the_old_one() {
    let app = TestApp::spawn().await;
    load_world(&app).await;
    let b = app.signed_in("P-1B").await;
    let pw = "bobs long password";
    app.submit(&b, "/password", &[("new_password", pw), ("confirm_password", pw)]).await;
    let bob =
        |email: &str| json!([{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer", "email": email, "role": "buyer"}]);
    let login = |email: &'static str| {
        let app = &app;
        async move { app.post_form(&browser(), "/login", &[("email", email), ("password", pw)]).await.0 }
    };
    app.synced("contacts", bob("BOB@alpha.example")).await;
    assert_eq!(login("bob@alpha.example").await, 303, "the same address keeps the password");
    app.synced("contacts", bob("robert@alpha.example")).await;
    assert_eq!(login("robert@alpha.example").await, 401, "the old password opens nothing");
    assert_eq!(app.count("accounts").await, 0);
    app.stop().await;
}

/// What TOT's records take away stays taken when they give it back: a session ended by a
/// contact's deactivation, and a delegation (with the session it opened) ended by its
/// giver's loss of the right to decide, do not return when the contact is restored.
#[tokio::test]
async fn sessions_and_delegations_ended_by_tots_records_stay_ended() {
    let app = TestApp::spawn().await;
    load_world(&app).await;
    let bob = |active: bool, role: &str| {
        json!([{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer", "email": "bob@alpha.example",
                "role": role, "active": active}])
    };
    let b = app.signed_in("P-1B").await;
    app.submit(&b, "/visuals/V-1", &[("action", "delegate"), ("name", "Dana Cole"), ("email", "dana@resell.example")])
        .await;
    let link = app.link_mailed_to("dana@resell.example", "/l/").await;
    let dana = browser();
    assert_eq!(dana.get(&link).send().await.unwrap().status().as_u16(), 303);
    assert_eq!(app.page(&dana, "/visuals/V-1").await.0, 200);

    // Bob becomes a viewer, then a buyer again: Dana's session and link stay ended.
    app.synced("contacts", bob(true, "viewer")).await;
    app.synced("contacts", bob(true, "buyer")).await;
    assert_ne!(app.page(&dana, "/visuals/V-1").await.0, 200, "the delegate's session ended");
    let again = browser();
    let r = again.get(&link).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "the delegation link ended");
    // Bob is deactivated, then active again: his session stays ended.
    assert_eq!(app.page(&b, "/").await.0, 200, "a role change keeps his own session");
    app.synced("contacts", bob(false, "buyer")).await;
    app.synced("contacts", bob(true, "buyer")).await;
    assert_eq!(app.page(&b, "/").await.0, 303, "signed out for good");
    app.stop().await;
}
