//! The mini-portal over HTTP, as a browser uses it: signed links, sessions, CSRF, roles,
//! client scope, visual review, delegation, delivery instructions and the change feed.

mod common;

use common::{TestApp, browser, csrf_of, load_world};
use serde_json::json;

async fn app() -> TestApp {
    TestApp::with_world().await
}

/// Asserts that V-1 still awaits approval and TOT has heard of nothing.
async fn nothing_done(app: &TestApp) {
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval");
    assert!(app.changes(0).await.is_empty(), "the change feed is empty");
}

/// The app, and a browser signed in as `contact`.
async fn app_as(contact: &str) -> (TestApp, reqwest::Client) {
    let app = app().await;
    let b = app.signed_in(contact).await;
    (app, b)
}

/// The world, with J-1 in production: 100 tees to give delivery instructions for.
async fn app_with_tees_in_production() -> TestApp {
    let app = app().await;
    app.put(
        "jobs",
        json!([{"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "in_production",
                "printed_garments": [{"description": "Tee", "expected_qty": 100}]}]),
    )
    .await;
    app
}

/// The world, with V-3 awaiting approval beside V-1.
async fn app_with_a_second_visual() -> TestApp {
    let app = app().await;
    app.put(
        "visuals",
        json!([{"id": "V-3", "client_id": "C-1", "job_id": "J-1", "design_id": "D3", "category": "c", "designer": "d",
                "status": "awaiting_approval", "main_image": "/x.svg"}]),
    )
    .await;
    app
}

#[tokio::test]
async fn a_signed_link_signs_in_and_shows_the_contacts_items() {
    let app = app().await;
    let b = browser();
    let r = b.get(app.link("P-1A", "/visuals/V-1")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/visuals/V-1");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let html = app.shown(&b, "/").await;
    for want in ["Visual V-1 for Tees", "Job J-1: Tees", "PO PO-1 (T1)", "Artwork for job J-1"] {
        assert!(html.contains(want), "dashboard lacks {want}");
    }
    assert!(!html.contains("V-9") && !html.contains("J-9"), "another client's items never show");
    // Without a session the portal asks to sign in.
    let r = browser().get(app.url("/visuals")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/login?next="));
    app.stop().await;
}

#[tokio::test]
async fn bad_links_all_get_the_same_page_and_sign_nobody_in() {
    let app = app().await;
    let now = chrono::Utc::now();
    let right = cport::links::Signer::new("0123456789abcdef0123456789abcdef");
    let wrong = cport::links::Signer::new("another-secret-0123456789");
    let expired = right.sign(cport::links::Purpose::Open, "/", "P-1A", chrono::Duration::seconds(-5), now);
    let foreign = wrong.sign(cport::links::Purpose::Open, "/", "P-1A", chrono::Duration::days(1), now);
    let good = right.sign(cport::links::Purpose::Open, "/", "P-1A", chrono::Duration::days(1), now);
    let tampered = format!("{}x", good);
    let unknown_contact = right.sign(cport::links::Purpose::Open, "/", "P-404", chrono::Duration::days(1), now);
    let mut pages = Vec::new();
    for (case, token) in [
        ("expired", expired),
        ("signed with another key", foreign),
        ("tampered", tampered),
        ("unknown contact", unknown_contact),
        ("garbage", "abc".to_string()),
    ] {
        let b = browser();
        let r = b.get(app.url(&format!("/l/{token}"))).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{case}");
        let set = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
        assert!(!set.iter().any(|c| c.starts_with("cport_session=")), "{case}: no session");
        let html = r.text().await.unwrap();
        assert!(html.contains("This link is not valid or has expired"), "{case}");
        assert!(html.contains("Email me a new link"), "{case}: offers a new link");
        pages.push(html.replace(&common::csrf_of(&html), ""));
        let (status, _) = app.page(&b, "/").await;
        assert_eq!(status, 303, "{case}: still signed out");
    }
    assert!(pages.windows(2).all(|w| w[0] == w[1]), "one page for every kind of bad link");
    app.stop().await;
}

#[tokio::test]
async fn a_contact_gets_404_for_another_clients_visual_and_job() {
    let (app, b) = app_as("P-1A").await;
    for path in ["/visuals/V-9", "/jobs/J-9", "/jobs/J-9/delivery", "/visuals/V-404"] {
        let (status, html) = app.page(&b, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(!html.contains("Beta"), "{path} reveals nothing");
    }
    let (_, html) = app.page(&b, "/visuals/V-1").await;
    let csrf = common::csrf_of(&html);
    assert_eq!(
        app.post_raw(&b, "/visuals/V-9", &[("csrf", &csrf), ("action", "approve"), ("terms", "1")]).await.0,
        404
    );
    assert_eq!(app.visual_status("V-9").await, "awaiting_approval");
    // An address that is a visual's id with a space or tab after it is no visual, for an
    // approval as for every other action.
    for path in ["/visuals/V-1%20", "/visuals/V-1%09"] {
        let form = [("csrf", csrf.as_str()), ("action", "approve"), ("terms", "1")];
        assert_eq!(app.post_raw(&b, path, &form).await.0, 404, "{path}");
    }
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval");
    assert_eq!(app.post_raw(&b, "/jobs/J-9/delivery", &[("csrf", &csrf), ("action", "none")]).await.0, 404);
    assert!(app.changes(0).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_act_and_a_missing_csrf_token_is_refused() {
    let (app, viewer) = app_as("P-1V").await;
    let html = app.shown(&viewer, "/visuals/V-1").await;
    assert!(!html.contains("id=\"approve\""), "no approve form for a viewer");
    let (status, _, body) = app.post_form(&viewer, "/visuals/V-1", &[("action", "approve"), ("terms", "1")]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(app.post_form(&viewer, "/jobs/J-1/delivery", &[("action", "none")]).await.0, 403);
    // A role that may not act hears that, not what was wrong with a form it could never send.
    for fields in [
        vec![("action", "approve")],
        vec![("action", "reject"), ("reason", "")],
        vec![("action", "comment"), ("comment", "")],
        vec![("action", "delegate"), ("name", ""), ("email", "")],
    ] {
        let (status, _, body) = app.post_form(&viewer, "/visuals/V-1", &fields).await;
        assert_eq!(status, 403, "{fields:?}: {body}");
    }

    let admin = app.signed_in("P-1A").await;
    for (case, fields) in [
        ("no token", vec![("action", "approve"), ("terms", "1")]),
        ("wrong token", vec![("csrf", "0000"), ("action", "approve"), ("terms", "1")]),
    ] {
        assert_eq!(app.post_raw(&admin, "/visuals/V-1", &fields).await.0, 403, "{case}");
    }
    // Another session's token is not this session's.
    let (_, other_html) = app.page(&app.signed_in("P-1B").await, "/visuals/V-1").await;
    let stolen = common::csrf_of(&other_html);
    assert_eq!(
        app.post_raw(&admin, "/visuals/V-1", &[("csrf", &stolen), ("action", "approve"), ("terms", "1")]).await.0,
        403
    );
    nothing_done(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn approving_rejecting_and_the_change_feed() {
    let (app, b) = app_as("P-1B").await;
    // Terms must be accepted.
    let html = app.post_refused(&b, "/visuals/V-1", &[("action", "approve")]).await;
    assert!(html.contains("accept the approval terms"), "{html}");
    let location = app.submit(&b, "/visuals/V-1", &[("action", "approve"), ("terms", "1")]).await;
    assert!(location.starts_with("/visuals/V-1?note="));
    assert_eq!(app.visual_status("V-1").await, "approved");
    // Approving again is refused with a clear message.
    let html = app.post_conflict(&b, "/visuals/V-1", &[("action", "approve"), ("terms", "1")]).await;
    assert!(html.contains("already approved"));
    // Un-approve needs a reason.
    let html = app
        .post_refused(&b, "/visuals/V-1", &[("action", "reject"), ("seen", "awaiting_approval"), ("reason", "  ")])
        .await;
    assert!(html.contains("say why"));
    // A rejection from a page that showed the visual still awaiting approval (another tab, a
    // colleague approved meanwhile) withdraws nobody's approval unseen: it says who approved.
    let stale = [("action", "reject"), ("reason", "Gold too dark"), ("seen", "awaiting_approval")];
    let html = app.post_conflict(&b, "/visuals/V-1", &stale).await;
    assert!(html.contains("visual V-1 was approved by Bob Buyer at") && html.contains("Withdraw approval"), "{html}");
    assert_eq!(app.visual_status("V-1").await, "approved");
    let html = app.shown(&b, "/visuals/V-1").await;
    assert!(html.contains(r#"name="seen" value="approved""#), "the withdraw form says what it showed: {html}");
    app.submit(&b, "/visuals/V-1", &[("action", "reject"), ("reason", "Gold too dark"), ("seen", "approved")]).await;
    assert_eq!(app.visual_status("V-1").await, "rejected");
    app.submit(&b, "/visuals/V-1", &[("action", "comment"), ("comment", "Please try 7406 C")]).await;
    let (_, html) = app.page(&b, "/visuals/V-1").await;
    assert!(html.contains("Please try 7406 C") && html.contains("Gold too dark"));
    // The same comment sent again (a second click, the back button) is not added twice.
    let html = app.post_conflict(&b, "/visuals/V-1", &[("action", "comment"), ("comment", "Please try 7406 C")]).await;
    assert!(
        html.contains("this comment from Bob Buyer is on visual V-1 already") && html.contains("in the thread"),
        "{html}"
    );
    assert_eq!(html.matches("Please try 7406 C").count(), 1, "{html}");
    // Sent twice at once: one is added, the other is told so.
    let twice = [("action", "comment"), ("comment", "Or 7407 C")];
    let (one, two) = tokio::join!(app.post_form(&b, "/visuals/V-1", &twice), app.post_form(&b, "/visuals/V-1", &twice));
    let mut statuses = [one.0, two.0];
    statuses.sort();
    assert_eq!(statuses, [303, 409], "{} {}", one.2, two.2);

    // A withdraw form from a page that showed it approved, after TOT reopened it: refused.
    let mut reopened = common::world()["visuals"][0].clone();
    reopened["status"] = json!("awaiting_approval");
    assert_eq!(app.put("visuals", json!([reopened])).await.0, 200);
    let withdraw = [("action", "reject"), ("reason", "Too dark"), ("seen", "approved")];
    let html = app.post_conflict(&b, "/visuals/V-1", &withdraw).await;
    assert!(html.contains("visual V-1 is awaiting approval again"), "{html}");
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval");

    let feed = app.changes(0).await;
    let kinds: Vec<&str> = feed.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["visual_approved", "visual_rejected", "visual_commented", "visual_commented"]);
    let seqs: Vec<i64> = feed.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
    assert_eq!(feed[0]["data"]["charges_total"], "25.00");
    assert_eq!(feed[0]["client_id"], "C-1");
    assert_eq!(feed[1]["data"]["reason"], "Gold too dark");
    assert_eq!(feed[1]["data"]["unapproved"], true);
    // Paging with after= never skips or repeats.
    let page2 = app.changes(seqs[0]).await;
    assert_eq!(page2.len(), 3);
    assert_eq!(page2[0]["seq"].as_i64(), Some(seqs[1]));
    // The feed needs the API token.
    let r = app.http.get(app.url("/api/v1/changes")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = app.http.get(app.url("/api/v1/changes?limit=0")).bearer_auth(common::TOKEN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    app.stop().await;
}

/// Ids may hold `/` (`INV/77`): every link and redirect to such a record names it as one
/// step of the path, and leads to its page.
#[tokio::test]
async fn records_whose_ids_hold_a_slash_have_links_that_lead_to_them() {
    let (app, b) = app_as("P-1A").await;
    let (status, body) = app
        .put(
            "jobs",
            json!([{"id": "J/77", "client_id": "C-1", "name": "Slash job", "status": "in_production",
                    "printed_garments": [{"description": "Tee", "expected_qty": 10}]}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .put(
            "visuals",
            json!([{"id": "V/77", "client_id": "C-1", "job_id": "J/77", "design_id": "D77", "category": "c",
                    "designer": "d", "status": "awaiting_approval", "main_image": "/x.svg"}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Paths in attributes are HTML-escaped (`/` as `&#x2f;`): read as a browser does.
    let dashboard = app.shown(&b, "/").await.replace("&#x2f;", "/");
    assert!(dashboard.contains("/visuals/V%2F77") && dashboard.contains("/jobs/J%2F77"), "{dashboard}");
    assert!(!dashboard.contains("/visuals/V/77") && !dashboard.contains("/jobs/J/77"), "{dashboard}");
    let jobs = app.shown(&b, "/jobs").await;
    assert!(jobs.contains(r#"href="/jobs/J%2F77""#), "{jobs}");
    assert!(app.shown(&b, "/jobs/J%2F77").await.contains("Slash job"));
    assert!(app.shown(&b, "/visuals").await.contains(r#"href="/visuals/V%2F77""#));
    // Approved from its page, the answer leads back to it.
    let location = app.submit(&b, "/visuals/V%2F77", &[("action", "approve"), ("terms", "1")]).await;
    assert!(location.starts_with("/visuals/V%2F77?note="), "{location}");
    assert!(app.shown(&b, &location).await.replace("&#x2f;", "/").contains("Visual V/77"));
    assert_eq!(app.visual_status("V/77").await, "approved");
    // A signed link to it opens it.
    let r = browser().get(app.link("P-1A", "/visuals/V%2F77")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/visuals/V%2F77");
    app.stop().await;
}

#[tokio::test]
async fn approving_several_visuals_at_once_from_the_list() {
    let app = app_with_a_second_visual().await;
    let b = app.signed_in("P-1A").await;
    // One id the contact cannot see (another client's V-9, a typo): refused whole, naming it.
    let html = app.post_refused(&b, "/visuals", &[("visual", "V-1"), ("visual", "V-9"), ("terms", "1")]).await;
    assert!(html.contains("visuals: no visual `V-9` among yours; nothing was approved"), "{html}");
    nothing_done(&app).await;
    let location = app.submit(&b, "/visuals", &[("visual", "V-1"), ("visual", "V-3"), ("terms", "1")]).await;
    assert!(app.shown(&b, &location).await.contains("Approved: V-1, V-3."), "{location}");
    assert_eq!(app.visual_status("V-1").await, "approved");
    assert_eq!(app.visual_status("V-3").await, "approved");
    assert_eq!(app.changes(0).await.len(), 2);
    let html = app.post_refused(&b, "/visuals", &[("terms", "1")]).await;
    assert!(html.contains("choose at least one visual"));
    app.stop().await;
}

/// A client with a long history of visuals gets a page, not all of them: those awaiting
/// approval first, then the newest, and a line saying the list stops there.
#[tokio::test]
async fn the_visuals_page_lists_the_awaiting_then_the_newest_up_to_its_limit() {
    let app = app().await;
    let visuals: Vec<_> = (100..310)
        .map(|i| {
            json!({"id": format!("V-{i}"), "client_id": "C-1", "job_id": "J-1", "design_id": "D", "category": "c",
                   "designer": "d", "status": "approved", "main_image": "/x.svg",
                   "created_at": format!("2026-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60)})
        })
        .collect();
    assert_eq!(app.put("visuals", json!(visuals)).await.0, 200);
    let b = app.signed_in("P-1A").await;
    let html = app.shown(&b, "/visuals").await;
    let listed = html.matches("<a href=\"/visuals/V-").count();
    assert_eq!(listed, 200, "a page of visuals");
    assert!(html.contains("href=\"/visuals/V-1\""), "the one awaiting approval is listed: {html}");
    assert!(html.contains("href=\"/visuals/V-309\"") && !html.contains("href=\"/visuals/V-100\""), "the newest");
    assert!(html.contains("The first 200 are listed"), "{html}");
    app.stop().await;
}

/// A delegation's link lends the right to decide on one visual, so once the visual is
/// decided (here by the contact who handed it over) a link not yet opened opens nothing.
#[tokio::test]
async fn a_delegated_link_opened_after_the_decision_opens_nothing() {
    let app = app_with_a_second_visual().await;
    let b = app.signed_in("P-1A").await;
    let dana = [("action", "delegate"), ("name", "Dana Cole"), ("email", "dana@reseller.example")];
    app.submit(&b, "/visuals/V-1", &dana).await;
    let link = app.link_mailed_to("dana@reseller.example", "/l/").await;
    app.submit(&b, "/visuals/V-1", &[("action", "approve"), ("terms", "1")]).await;
    assert_eq!(app.visual_status("V-1").await, "approved");
    let r = browser().get(&link).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let set = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
    assert!(!set.iter().any(|c| c.starts_with("cport_session=")), "no session: {set:?}");
    assert!(r.text().await.unwrap().contains("This link is not valid or has expired"));
    app.stop().await;
}

#[tokio::test]
async fn a_delegated_link_shows_one_visual_and_works_once() {
    let app = app_with_a_second_visual().await;
    let b = app.signed_in("P-1A").await;
    let html = app
        .post_refused(&b, "/visuals/V-1", &[("action", "delegate"), ("name", "Dana"), ("email", "not-an-email")])
        .await;
    assert!(html.contains("is not an email address"));
    // The form comes back as typed, to put the address right.
    assert!(html.contains("value=\"Dana\"") && html.contains("value=\"not-an-email\""), "{html}");
    app.submit(
        &b,
        "/visuals/V-1",
        &[("action", "delegate"), ("name", "Dana Cole"), ("email", "dana@reseller.example")],
    )
    .await;
    // Handed over again (a second click, the back button, five at once): refused, saying
    // until when the first link works; one link is mailed.
    let again = [("action", "delegate"), ("name", "Dana Cole"), ("email", "DANA@reseller.example")];
    for (status, _, html) in futures::future::join_all((0..5).map(|_| app.post_form(&b, "/visuals/V-1", &again))).await
    {
        assert_eq!(status, 409, "{html}");
        assert!(html.contains("was handed to DANA@reseller.example already; that link works until"), "{html}");
    }
    let (n,): (i64,) = cport::store::on_db!(&app.db, p => sqlx::query_as(
        "SELECT COUNT(*) FROM delegations WHERE visual_id = 'V-1'").fetch_one(p).await)
    .unwrap();
    assert_eq!(n, 1, "one delegation");
    // The approval link went to the outbox as an email to the third party.
    let link = app.link_mailed_to("dana@reseller.example", "/l/").await;
    // Dana is no contact: her mail offers no unsubscribe (no preferences page of hers).
    let rows = cport::store::outbox::list_messages(&app.db, None, 50).await.unwrap();
    let to_dana = rows.iter().find(|m| m.message.recipient == "dana@reseller.example").unwrap();
    match cport::outbox::render(&app.state, to_dana, chrono::Utc::now()).await.unwrap() {
        cport::outbox::Rendered::Email { headers, .. } => {
            assert!(headers.contains("Subject:") && !headers.contains("List-Unsubscribe"), "{headers}")
        }
        other => panic!("an email, not {other:?}"),
    }

    let third = browser();
    let r = third.get(&link).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/visuals/V-1");
    let html = app.shown(&third, "/visuals/V-1").await;
    assert!(html.contains("Dana Cole (for Ann Admin)"));
    assert!(html.contains("Post comment"), "a delegate may comment while the decision is to be made: {html}");
    for path in ["/visuals/V-3", "/visuals", "/jobs/J-1", "/preferences"] {
        assert_eq!(app.page(&third, path).await.0, 404, "{path} is outside the delegation");
    }
    assert_eq!(app.page(&third, "/").await.0, 303, "home leads to the one visual");
    // Nor does it act outside it, even with its good token: the same 404, no role named.
    let csrf = common::csrf_of(&html);
    assert_eq!(app.page(&third, "/jobs/J-1/delivery").await.0, 404);
    let (status, _, body) = app.post_raw(&third, "/jobs/J-1/delivery", &[("csrf", &csrf), ("action", "none")]).await;
    assert_eq!(status, 404, "{body}");
    // Opening the link again (a mail scanner) changed nothing.
    assert_eq!(browser().get(&link).send().await.unwrap().status().as_u16(), 303);
    assert_eq!(app.visual_status("V-1").await, "awaiting_approval");

    // Handed to a second person too, whose link stays unused.
    app.submit(&b, "/visuals/V-1", &[("action", "delegate"), ("name", "Eve Other"), ("email", "eve@other.example")])
        .await;
    let eve = browser();
    eve.get(&app.link_mailed_to("eve@other.example", "/l/").await).send().await.unwrap();
    // Nobody is handed a visual at cport's own address, nor at their own.
    for (email, says) in
        [("x@reply.tot.example", "own address; give the address"), ("ann@alpha.example", "your own address")]
    {
        let html =
            app.post_refused(&b, "/visuals/V-1", &[("action", "delegate"), ("name", "X"), ("email", email)]).await;
        assert!(html.contains(says), "{email}: {html}");
    }

    app.submit(&third, "/visuals/V-1", &[("action", "approve"), ("terms", "1")]).await;
    assert_eq!(app.visual_status("V-1").await, "approved");
    // Decided by Dana: Eve's link asks for nothing more, not even a comment.
    let html = app.post_conflict(&eve, "/visuals/V-1", &[("action", "comment"), ("comment", "hi")]).await;
    assert!(html.contains("approved already"), "{html}");
    // Nor is a comment offered to either, by the rule that refused it.
    for who in [&eve, &third] {
        let html = app.shown(who, "/visuals/V-1").await;
        assert!(!html.contains("Post comment"), "{html}");
    }
    assert_eq!(
        app.post_form(
            &third,
            "/visuals/V-1",
            &[("action", "reject"), ("seen", "awaiting_approval"), ("reason", "changed my mind")]
        )
        .await
        .0,
        409,
        "a delegation decides once"
    );
    assert_eq!(app.visual_status("V-1").await, "approved");
    // The used link no longer opens anything.
    let r = browser().get(&link).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let kinds: Vec<String> = app.changes(0).await.iter().map(|c| c["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, vec!["visual_delegated", "visual_delegated", "visual_approved"]);

    // The delegate's session ends when the delegation expires...
    assert_eq!(app.page(&third, "/visuals/V-1").await.0, 200, "the decision stays in view meanwhile");
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    cport::store::on_db!(&app.db, p => sqlx::query("UPDATE delegations SET expires_at = $1").bind(past).execute(p).await.map(|_| ()))
        .unwrap();
    assert_eq!(app.page(&third, "/visuals/V-1").await.0, 303, "an expired delegation opens nothing");
    // ...and when TOT deletes its visual, the delegation with it: sign-in is asked, never
    // "not found" on every page, signing out among them.
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    cport::store::on_db!(&app.db, p => sqlx::query("UPDATE delegations SET expires_at = $1").bind(later).execute(p).await.map(|_| ()))
        .unwrap();
    assert_eq!(app.page(&eve, "/visuals/V-1").await.0, 200);
    assert_eq!(app.delete("visuals", &["V-1"]).await.0, 200);
    for path in ["/", "/visuals/V-1"] {
        assert_eq!(app.page(&eve, path).await.0, 303, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn delivery_instructions_are_checked_against_what_the_jobs_hold() {
    let app = app().await;
    app.put(
        "jobs",
        json!([
            {"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "in_production",
             "printed_garments": [{"description": "Tee", "expected_qty": 100}]},
            {"id": "J-4", "client_id": "C-1", "name": "Hoodies", "status": "completed",
             "printed_garments": [{"description": "Hoodie S", "expected_qty": 20}, {"description": "Hoodie L", "expected_qty": 30}]}
        ]),
    )
    .await;
    let b = app.signed_in("P-1B").await;
    let html = app.shown(&b, "/jobs/J-1/delivery").await;
    assert!(html.contains("qty:J-4:1"), "other open jobs can join the delivery");

    // Too many: refused, naming the line, nothing written.
    let html = app
        .post_refused(
            &b,
            "/jobs/J-1/delivery",
            &[("qty:J-1:0", "101"), ("address", "1 Quay St"), ("required_date", "")],
        )
        .await;
    assert!(html.contains("qty[J-1:0]") && html.contains("101 is more than the 100"), "{html}");
    assert!(html.contains("1 Quay St"), "the form keeps what was typed");
    let html = app.post_refused(&b, "/jobs/J-1/delivery", &[("qty:J-1:0", "10")]).await;
    assert!(html.contains("address"));
    let html = app.post_refused(&b, "/jobs/J-1/delivery", &[("qty:J-1:0", "ten"), ("address", "x")]).await;
    assert!(html.contains("not a whole number"));
    // A date: written YYYY-MM-DD, not in the past, not beyond two years.
    let far = (chrono::Utc::now().date_naive() + chrono::Days::new(800)).to_string();
    for (date, says) in [("2026-1-5", "YYYY-MM-DD"), ("2020-01-01", "in the past"), (far.as_str(), "within two years")]
    {
        let fields = [("qty:J-1:0", "10"), ("address", "x"), ("required_date", date)];
        let html = app.post_refused(&b, "/jobs/J-1/delivery", &fields).await;
        assert!(html.contains("required_date") && html.contains(says), "{date}: {html}");
    }
    assert!(app.changes(0).await.is_empty());

    // 60 of J-1 and part of J-4 in one delivery.
    let delivery = [
        ("qty:J-1:0", "60"),
        ("qty:J-4:0", "20"),
        ("qty:J-4:1", "5"),
        ("address", "Unit 4, Dock Rd"),
        ("contact_name", "Sam"),
        ("notes", "Gate 2"),
    ];
    app.submit(&b, "/jobs/J-1/delivery", &delivery).await;
    // Sent again (a second click): told so, before what is left is weighed, and not made twice.
    let (status, _, html) = app.post_form(&b, "/jobs/J-1/delivery", &delivery).await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("you sent these delivery instructions at") && html.contains("TOT has them"), "{html}");
    assert_eq!(app.changes(0).await.len(), 1);
    // What is left: 40 of J-1, 25 of J-4 line 1.
    let (_, html) = app.page(&b, "/jobs/J-1").await;
    assert!(html.contains(">60<") && html.contains(">40<"), "{html}");
    app.shown(&b, "/jobs/J-4/delivery").await;
    let (status, _, html) =
        app.post_form(&b, "/jobs/J-4/delivery", &[("qty:J-4:1", "26"), ("address", "Unit 4, Dock Rd")]).await;
    assert_eq!(status, 422, "earlier instructions count: {html}");
    assert!(html.contains("more than the 25"));
    // Saved addresses are offered next time.
    let (_, html) = app.page(&b, "/jobs/J-4/delivery").await;
    assert!(html.contains("<option>Unit 4, Dock Rd</option>"));

    // "No delivery required" for a job that has no instructions yet.
    app.put(
        "jobs",
        json!([{"id": "J-5", "client_id": "C-1", "name": "Caps", "status": "entered",
                "printed_garments": [{"description": "Cap", "expected_qty": 10}]}]),
    )
    .await;
    app.submit(&b, "/jobs/J-5/delivery", &[("action", "none")]).await;
    let (status, _, html) = app.post_form(&b, "/jobs/J-5/delivery", &[("action", "none")]).await;
    assert_eq!(status, 409);
    assert!(html.contains("job J-5 is marked as needing no delivery already"), "{html}");
    // Once it needs no delivery, the page offers no delivery form, other jobs' forms do not
    // offer its goods, and instructions sent for it anyway are refused.
    let html = app.shown(&b, "/jobs/J-5/delivery").await;
    assert!(html.contains("You said this job needs no delivery") && !html.contains("id=\"delivery\""), "{html}");
    assert!(!app.shown(&b, "/jobs/J-4/delivery").await.contains("qty:J-5:1"));
    let (status, _, html) =
        app.post_form(&b, "/jobs/J-4/delivery", &[("qty:J-5:1", "10"), ("address", "Unit 4, Dock Rd")]).await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("job J-5 needs no delivery (you said so)"), "{html}");

    let feed = app.changes(0).await;
    assert_eq!(feed.len(), 2);
    assert_eq!(feed[0]["kind"], "delivery_instructions_given");
    assert_eq!(feed[0]["data"]["jobs"], json!(["J-1", "J-4"]));
    assert_eq!(feed[0]["data"]["lines"].as_array().unwrap().len(), 3);
    assert_eq!(feed[0]["data"]["address"], "Unit 4, Dock Rd");
    assert_eq!(feed[1]["kind"], "no_delivery_acknowledged");
    // Both jobs left the A2 list.
    let (_, html) = app.page(&b, "/").await;
    assert!(!html.contains("Job J-1: Tees") && !html.contains("Job J-5: Caps"));
    // A job that needs no delivery, or is closed, offers no instructions: no button, and its
    // form page says why.
    assert!(!app.shown(&b, "/jobs/J-5").await.contains("Give delivery instructions"));
    let closed = json!([{"id": "J-8", "client_id": "C-1", "name": "Old", "status": "cancelled",
                         "printed_garments": [{"description": "Tee", "expected_qty": 5}]}]);
    assert_eq!(app.put("jobs", closed).await.0, 200);
    assert!(!app.shown(&b, "/jobs/J-8").await.contains("Give delivery instructions"));
    let html = app.shown(&b, "/jobs/J-8/delivery").await;
    assert!(html.contains("This job is cancelled: it takes no delivery instructions"), "{html}");
    assert!(!html.contains("id=\"delivery\""), "{html}");

    // TOT's next update of a job, which says nothing of delivery, does not undo the client's
    // answer; TOT sending `none` asks again.
    let job = |extra: serde_json::Value| {
        let mut j = json!({"id": "J-5", "client_id": "C-1", "name": "Caps", "status": "in_production",
                           "client_ref": "new ref"});
        j.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!([j])
    };
    assert_eq!(app.put("jobs", job(json!({}))).await.0, 200);
    assert_eq!(app.count("jobs WHERE id = 'J-5' AND delivery_instructions = 'not_required'").await, 1);
    assert!(!app.shown(&b, "/").await.contains("Job J-5: Caps"), "still answered");
    assert_eq!(app.put("jobs", job(json!({"delivery_instructions": "none"}))).await.0, 200);
    assert!(app.shown(&b, "/").await.contains("Job J-5: Caps"), "asked again");
    app.stop().await;
}

/// An address with letters beyond A-Z signs in as it is kept, and with its A-Z letters in any
/// case, on both engines (SQLite's LOWER folds A-Z only: the address is lowered by the store
/// on both sides, never by cport first).
#[tokio::test]
async fn an_address_beyond_a_to_z_signs_in_as_it_is_kept() {
    let elodie = json!([{"id": "P-1E", "client_id": "C-1", "name": "Élodie Müller",
                         "email": "Élodie.MÜLLER@alpha.example", "role": "buyer"}]);
    let app = TestApp::with_world().await;
    app.synced("contacts", elodie).await;
    let c = browser();
    let link = app.state.signer.set_password_url(&app.base, "P-1E", chrono::Duration::hours(1), chrono::Utc::now());
    let path = link.strip_prefix(&app.base).unwrap().to_string();
    let ((status, _), _) = app.choose_password_twice(&c, &path, "élodie's password").await;
    assert_eq!(status, 303);
    for typed in ["Élodie.MÜLLER@alpha.example", "ÉLODIE.MÜLLER@ALPHA.EXAMPLE", "Élodie.mÜller@Alpha.Example"] {
        let form = [("email", typed), ("password", "élodie's password")];
        let (status, location, html) = app.post_form(&browser(), "/login", &form).await;
        assert_eq!((status, location.as_str()), (303, "/"), "{typed}: {html}");
    }
    app.stop().await;
}

#[tokio::test]
async fn passwords_login_limits_and_single_use_reset_links() {
    let (app, b) = app_as("P-1A").await;
    let html = app.post_refused(&b, "/password", &[("new_password", "short"), ("confirm_password", "short")]).await;
    assert!(html.contains("at least 10"));
    app.submit(
        &b,
        "/password",
        &[("new_password", "correct horse battery"), ("confirm_password", "correct horse battery")],
    )
    .await;

    let login = |pw: &'static str| {
        let app = &app;
        async move {
            let c = browser();
            app.post_form(&c, "/login", &[("email", "ANN@alpha.example"), ("password", pw), ("next", "/visuals")]).await
        }
    };
    let (status, location, _) = login("correct horse battery").await;
    assert_eq!((status, location.as_str()), (303, "/visuals"));
    // No password: the field is named, the address comes back as typed.
    let (status, _, html) = login("").await;
    assert_eq!(status, 422);
    assert!(html.contains("password: give your password") && html.contains("value=\"ANN@alpha.example\""), "{html}");
    for _ in 0..5 {
        let (status, _, html) = login("wrong").await;
        assert_eq!(status, 401);
        assert!(html.contains("do not match"));
    }
    let (status, _, html) = login("correct horse battery").await;
    assert_eq!(status, 429, "five failures lock the account for a while");
    assert!(html.contains("Try again in"));

    // Reset by email: the answer never says whether the address exists.
    let c = browser();
    let (_, _, known) = app.post_form(&c, "/password/reset", &[("email", "bob@alpha.example")]).await;
    let (_, _, unknown) = app.post_form(&c, "/password/reset", &[("email", "nobody@alpha.example")]).await;
    assert_eq!(known, unknown);
    // Asked again at once (a double click): the same answer, and no second email.
    let (_, _, again) = app.post_form(&c, "/password/reset", &[("email", "bob@alpha.example")]).await;
    assert_eq!(again, known);
    // What cannot be an address is refused by its field, here and for a sign-in link.
    for (form, path) in [("/password/reset", "/password/reset"), ("/login", "/login/link")] {
        for email in ["", "a", "two words@x.example"] {
            let csrf = csrf_of(&app.page(&c, form).await.1);
            let (status, _, html) = app.post_raw(&c, path, &[("csrf", &csrf), ("email", email)]).await;
            assert_eq!(status, 422, "{path} {email:?}: {html}");
            assert!(html.contains("email: is not an email address"), "{path} {email:?}: {html}");
            // The form comes back with what was typed.
            assert!(
                html.contains(&format!("value=\"{email}\"")) && html.contains("name=\"csrf\""),
                "{path} {email:?}: {html}"
            );
        }
    }
    let rows = cport::store::outbox::list_messages(&app.db, None, 10).await.unwrap();
    assert_eq!(rows.iter().filter(|m| m.message.subject.contains("reset")).count(), 1);
    let link = app.link_mailed_to("bob@alpha.example", "token=").await;
    let path = link.strip_prefix(&app.base).unwrap().to_string();
    // A reset link made before the password is set (an older email, still within its time).
    let made_at = |at: chrono::DateTime<chrono::Utc>| {
        let link = app.state.signer.set_password_url(&app.base, "P-1B", chrono::Duration::hours(1), at);
        link.strip_prefix(&app.base).unwrap().to_string()
    };
    let made = || made_at(chrono::Utc::now());
    let older = made_at(chrono::Utc::now() - chrono::Duration::minutes(1));
    let ((status, location), again) = app.choose_password_twice(&c, &path, "bobs new password").await;
    assert_eq!(status, 303, "{location}");
    assert_eq!(again, 400, "the reset link works once");
    let (status, location, _) =
        app.post_form(&browser(), "/login", &[("email", "bob@alpha.example"), ("password", "bobs new password")]).await;
    assert_eq!((status, location.as_str()), (303, "/"));
    // The older link is spent by the change; one made since works.
    let (status, html) = app.page(&c, &older).await;
    assert_eq!(status, 400, "{html}");
    let ((status, _), _) = app.choose_password_twice(&c, &made(), "bobs third password").await;
    assert_eq!(status, 303);

    // Ann, locked out above, does as the lockout said: a new password from a reset link
    // signs her in at once, not after the lock runs out.
    let link = app.state.signer.set_password_url(&app.base, "P-1A", chrono::Duration::hours(1), chrono::Utc::now());
    let ((status, _), _) =
        app.choose_password_twice(&c, link.strip_prefix(&app.base).unwrap(), "anns new password").await;
    assert_eq!(status, 303);
    let (status, location, _) = login("anns new password").await;
    assert_eq!((status, location.as_str()), (303, "/visuals"), "the new password ends the lockout");
    // Locked again, she signs in by an emailed link and changes her password there: the
    // new one works on her other devices at once too.
    for _ in 0..5 {
        assert_eq!(login("wrong").await.0, 401);
    }
    assert_eq!(login("anns new password").await.0, 429);
    let by_link = app.signed_in("P-1A").await;
    let fields = [
        ("current_password", "anns new password"),
        ("new_password", "anns third password"),
        ("confirm_password", "anns third password"),
    ];
    app.submit(&by_link, "/password", &fields).await;
    let (status, location, _) = login("anns third password").await;
    assert_eq!((status, location.as_str()), (303, "/visuals"), "a changed password ends the lockout");
    // Someone at a device left signed in guesses the current password no more often than
    // at sign-in, and the owner's sign-in is not locked by it.
    let guess = [
        ("current_password", "guess"),
        ("new_password", "mallorys password"),
        ("confirm_password", "mallorys password"),
    ];
    for _ in 0..5 {
        assert_eq!(app.post_form(&by_link, "/password", &guess).await.0, 422);
    }
    let (status, _, html) = app.post_form(&by_link, "/password", &guess).await;
    assert!(status == 429 && html.contains("Too many failed sign-ins"), "{status}: {html}");
    assert_eq!(login("anns third password").await.0, 303, "sign-in is not locked by the guesses");
    app.stop().await;
}

/// A password set ends every session and retires every sign-in link made before it: a
/// digest's link forwarded, or left in a shared browser's history, is no way back in once
/// the contact changes the password (the page says so); a link made after works.
#[tokio::test]
async fn a_password_change_retires_the_sign_in_links_made_before_it() {
    let app = TestApp::with_world().await;
    let forwarded = app.link("P-1A", "/visuals");
    // A sign-in link asked for by email just before the change, and again just after: the
    // second is no repeat of the first, whose link the change spent, and goes too.
    let ask_for_a_link = || async {
        let c = common::browser();
        let csrf = csrf_of(&app.page(&c, "/login").await.1);
        let (status, _, html) =
            app.post_raw(&c, "/login/link", &[("csrf", csrf.as_str()), ("email", "ann@alpha.example")]).await;
        assert!(status < 400, "{html}");
    };
    let sign_in_emails = || async {
        let rows = cport::store::outbox::list_messages(&app.db, None, 50).await.unwrap();
        rows.iter().filter(|m| m.message.subject.contains("your sign-in link")).count()
    };
    ask_for_a_link().await;
    assert_eq!(sign_in_emails().await, 1);
    let b = app.signed_in("P-1A").await;
    let fields = [("new_password", "anns own new password"), ("confirm_password", "anns own new password")];
    let location = app.submit(&b, "/password", &fields).await;
    ask_for_a_link().await;
    assert_eq!(sign_in_emails().await, 2, "the link asked for after the change is sent");
    assert!(app.shown(&b, &location).await.contains("links in earlier emails no longer sign you in"), "{location}");
    let other = common::browser();
    let r = other.get(&forwarded).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "the link made before the change signs no one in");
    assert_eq!(app.page(&other, "/visuals").await.0, 303, "no session: sent to sign in");
    let r = other.get(app.link("P-1A", "/visuals")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "a link made since works");
    app.stop().await;
}

#[tokio::test]
async fn preferences_are_saved_and_bad_values_named() {
    let (app, b) = app_as("P-1A").await;
    let html =
        app.post_refused(&b, "/preferences", &[("timezone", "Mars/Olympus"), ("schedule", "0 0 8 * * Mon-Fri")]).await;
    assert!(html.contains("timezone:") && html.contains("is not a time zone"), "{html}");
    let html = app
        .post_refused(
            &b,
            "/preferences",
            &[("timezone", "Europe/Paris"), ("schedule", "custom"), ("custom_schedule", "every morning")],
        )
        .await;
    assert!(html.contains("schedule:"));
    // The refused form comes back as typed, to put one field right: not as saved.
    assert!(
        html.contains("value=\"every morning\"") && html.contains("<option selected>Europe&#x2f;Paris</option>"),
        "{html}"
    );
    // Quiet hours from a time to itself would hold nothing: refused, naming quiet_end.
    let same =
        [("timezone", "Europe/Paris"), ("schedule", "0 0 8 * * Mon"), ("quiet_start", "22:00"), ("quiet_end", "22:00")];
    let html = app.post_refused(&b, "/preferences", &same).await;
    assert!(html.contains("quiet_end: 22:00 is also the start"), "{html}");
    assert!(html.contains("value=\"22:00\""), "the times typed are shown again: {html}");
    // A start alone, or a time that is none, is refused by its field too.
    for (start, end, says) in [
        ("22:00", "", "quiet hours: give both a start and an end, or neither"),
        ("25:00", "07:00", "quiet_start: `25:00` is not a time like 22:00"),
        ("22:00", "7h", "quiet_end: `7h` is not a time like 22:00"),
    ] {
        let fields =
            [("timezone", "Europe/Paris"), ("schedule", "0 0 8 * * Mon"), ("quiet_start", start), ("quiet_end", end)];
        let html = app.post_refused(&b, "/preferences", &fields).await;
        assert!(html.contains(says), "{start}-{end}: {html}");
    }
    let s = cport::store::settings::get_settings(&app.db, "P-1A").await.unwrap();
    assert_eq!(s.quiet_start, None, "nothing saved");
    app.submit(
        &b,
        "/preferences",
        &[
            ("timezone", "Europe/Paris"),
            ("schedule", "0 0 8 * * Mon"),
            ("quiet_start", "21:00"),
            // Kept as HH:MM, as the page's time input reads it back.
            ("quiet_end", "7:30"),
            ("email_enabled", "1"),
            ("mode_visual_approval", "digest"),
            ("mode_awaiting_art", "off"),
        ],
    )
    .await;
    let s = cport::store::settings::get_settings(&app.db, "P-1A").await.unwrap();
    let stamped = s.schedule_set_at.expect("a new schedule in force is stamped");
    assert_eq!(s.timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(s.digest_schedule.as_deref(), Some("0 0 8 * * Mon"));
    assert_eq!((s.quiet_start.as_deref(), s.quiet_end.as_deref()), (Some("21:00"), Some("07:30")));
    assert_eq!(s.mode_visual_approval, Some(cport::model::AlertMode::Digest));
    assert_eq!(s.mode_awaiting_art, Some(cport::model::AlertMode::Off));
    assert!(s.email_enabled);
    // Saved again with only an alert mode changed: the schedule in force is the same, so a
    // digest period missed meanwhile is still owed (the stamp does not move).
    app.submit(
        &b,
        "/preferences",
        &[
            ("timezone", "Europe/Paris"),
            ("schedule", "0 0 8 * * Mon"),
            ("email_enabled", "1"),
            ("mode_visual_approval", "instant"),
        ],
    )
    .await;
    let s = cport::store::settings::get_settings(&app.db, "P-1A").await.unwrap();
    assert_eq!(s.mode_visual_approval, Some(cport::model::AlertMode::Instant));
    assert_eq!(s.schedule_set_at, Some(stamped));
    // A first save that keeps the schedule and zone in force (Bob's, from TOT and the
    // defaults) stamps nothing either.
    let bob = app.signed_in("P-1B").await;
    let keep = [("timezone", "Europe/London"), ("schedule", "0 0 8 * * Mon-Fri"), ("mode_visual_approval", "digest")];
    app.submit(&bob, "/preferences", &keep).await;
    let s = cport::store::settings::get_settings(&app.db, "P-1B").await.unwrap();
    assert_eq!((s.mode_visual_approval, s.schedule_set_at), (Some(cport::model::AlertMode::Digest), None));
    // Nor does it pin them: TOT's zone and schedule stay Bob's, and TOT's change of either
    // still reaches him.
    assert_eq!((s.timezone, s.digest_schedule), (None, None));
    assert_eq!(
        app.put(
            "contacts",
            serde_json::json!([{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer", "email": "bob@alpha.example",
                                "role": "buyer", "timezone": "Asia/Dubai"}])
        )
        .await
        .0,
        200
    );
    let html = app.shown(&bob, "/preferences").await;
    assert!(html.contains("<option selected>Asia&#x2f;Dubai</option>"), "{html}");
    // Without a chat channel set up, no code is offered or made: it could not be used.
    let html = app.shown(&b, "/preferences").await;
    assert!(html.contains("TOT has not set up chat yet") && !html.contains("Get a linking code"), "{html}");
    let csrf = csrf_of(&html);
    let (status, _, html) = app.post_raw(&b, "/preferences/chat-code", &[("csrf", csrf.as_str())]).await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("no chat channel is set up"), "{html}");
    assert_eq!(app.count("chat_codes").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let (app, b) = app_as("P-1A").await;
    let (_, home) = app.page(&b, "/").await;
    let csrf = common::csrf_of(&home);
    let (status, location, _) = app.post_raw(&b, "/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303, "{location}");
    assert_eq!(app.page(&b, "/").await.0, 303);
    // A form from a page left open (its session ended in another tab) comes back to that page
    // after signing in, not to the path it posted to, which opens nothing.
    let post = |path: &str, referer: Option<String>| {
        let mut r = b.post(app.url(path)).form(&[("csrf", csrf.as_str()), ("action", "comment"), ("comment", "x")]);
        if let Some(from) = referer {
            r = r.header("referer", from);
        }
        r.send()
    };
    // A page that answered a form (a linking code) leads back to its own page when opened.
    let r = b.get(app.url("/preferences/chat-code")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), &r.headers()["location"]),
        (303, &"/preferences".parse::<reqwest::header::HeaderValue>().unwrap())
    );
    for (path, referer, back) in [
        ("/visuals/V-1", Some(app.url("/visuals/V-1?tab=2")), "/login?next=%2Fvisuals%2FV%2D1%3Ftab%3D2"),
        ("/visuals/V-1", None, "/login?next=%2F"),
        ("/logout", Some(app.url("/jobs")), "/login?next=%2Fjobs"),
    ] {
        let r = post(path, referer).await.unwrap();
        assert_eq!(r.status().as_u16(), 303);
        assert_eq!(r.headers()["location"], back, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn change_events_are_pushed_to_the_webhook_signed_and_retried() {
    use axum::http::{HeaderMap, StatusCode};
    use hmac::{Hmac, Mac};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // TOT's receiving end: fails the first delivery, accepts the next.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(HeaderMap, String)>();
    let calls = Arc::new(AtomicUsize::new(0));
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            let calls = calls.clone();
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                tx.send((headers, body)).unwrap();
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let secret = "webhook-secret-0123456789";
    let app = TestApp::spawn_with(|c| {
        c.webhook.url = hook_url.clone();
        c.webhook.secret = cport::config::Secret::new(secret);
        c.outbox.backoff_base_seconds = 1;
    })
    .await;
    load_world(&app).await;
    let b = app.signed_in("P-1A").await;
    app.submit(&b, "/visuals/V-1", &[("action", "approve"), ("terms", "1")]).await;

    let (headers, body) = tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("the event arrives after one retry")
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["kind"], "visual_approved");
    assert_eq!(event["seq"], 1);
    assert_eq!(event["subject_id"], "V-1");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(headers["x-cport-signature"].to_str().unwrap(), format!("sha256={want}"));
    assert_eq!(headers["x-cport-event"], "visual_approved");
    app.stop().await;
}

/// A webhook that answers with a redirect is not followed (the event would go on as a GET
/// without its body, or signed to another host, and be counted delivered): the event is
/// dead, saying where it pointed. With the webhook turned off, a queued event goes nowhere.
#[tokio::test]
async fn a_webhook_redirect_is_not_followed_and_an_event_goes_nowhere_once_the_hook_is_off() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let landed = Arc::new(AtomicUsize::new(0));
    let counted = landed.clone();
    let hook = axum::Router::new()
        .route("/hook", axum::routing::post(|| async { (axum::http::StatusCode::FOUND, [("location", "/landing")]) }))
        .route("/busy", axum::routing::post(|| async { axum::http::StatusCode::SERVICE_UNAVAILABLE }))
        .route("/refuses", axum::routing::post(|| async { axum::http::StatusCode::UNAUTHORIZED }))
        .route("/invalid", axum::routing::post(|| async { axum::http::StatusCode::UNPROCESSABLE_ENTITY }))
        .route(
            "/landing",
            axum::routing::any(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { "welcome" }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });
    let t = common::TestState::new(|c| {
        c.webhook.url = hook_url.clone();
        c.webhook.secret = cport::config::Secret::new("webhook-secret-0123456789");
    })
    .await;
    let event = |key: &str| cport::store::outbox::NewMessage {
        contact_id: None,
        channel: cport::model::Outlet::Webhook,
        kind: cport::model::MessageKind::Change,
        idem_key: key.into(),
        reply_token: None,
        recipient: hook_url.clone(),
        subject: "visual_approved".into(),
        payload: r#"{"seq": 1}"#.into(),
        next_attempt_at: chrono::Utc::now(),
    };
    let mut tx = t.state.db.begin().await.unwrap();
    cport::store::outbox::insert_message(&mut tx, &event("change:1"), chrono::Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!((r.sent, r.dead), (0, 1), "{r:?}");
    let dead = cport::store::outbox::list_messages(&t.state.db, Some("dead"), 5).await.unwrap();
    let why = dead[0].last_error.clone().unwrap_or_default();
    assert!(why.contains("HTTP 302") && why.contains("/landing") && why.contains("not followed"), "{why}");
    assert_eq!(landed.load(Ordering::SeqCst), 0, "the redirect was not followed");

    // A receiver that is down: its events are tried for days, whatever outbox.max_attempts
    // says; one older than that is dead.
    let busy = hook_url.replace("/hook", "/busy");
    let t = common::TestState::new(|c| {
        c.webhook.url = busy.clone();
        c.webhook.secret = cport::config::Secret::new("webhook-secret-0123456789");
        c.outbox.max_attempts = 1;
    })
    .await;
    let now = chrono::Utc::now();
    let mut tx = t.state.db.begin().await.unwrap();
    cport::store::outbox::insert_message(&mut tx, &event("change:3"), now).await.unwrap();
    let old = cport::store::outbox::NewMessage { next_attempt_at: now, ..event("change:4") };
    cport::store::outbox::insert_message(&mut tx, &old, now - chrono::Duration::days(5)).await.unwrap();
    tx.commit().await.unwrap();
    let r = cport::outbox::drain(&t.state).await.unwrap();
    assert_eq!((r.retrying, r.dead), (1, 1), "{r:?}");
    let dead = cport::store::outbox::list_messages(&t.state.db, Some("dead"), 5).await.unwrap();
    assert_eq!(dead[0].message.idem_key, "change:4", "the one five days old");
    // Its next claims, past max_attempts, still try it.
    for _ in 0..2 {
        let later = chrono::Utc::now() + chrono::Duration::hours(2);
        let outcomes = cport::outbox::dispatch_batch_at(&t.state, later, 100).await.unwrap();
        assert_eq!(outcomes, vec![cport::outbox::Outcome::Retrying]);
    }

    // A receiver that refuses cport's signature (or has no such address) would refuse every
    // event alike: they wait, naming the key to check. One refusing this event alone (422)
    // makes it dead, saying so.
    for (path, status, says) in
        [("/refuses", "failed", "check webhook.secret"), ("/invalid", "dead", "refused this event")]
    {
        let url = hook_url.replace("/hook", path);
        let t = common::TestState::new(|c| {
            c.webhook.url = url.clone();
            c.webhook.secret = cport::config::Secret::new("webhook-secret-0123456789");
        })
        .await;
        let mut tx = t.state.db.begin().await.unwrap();
        cport::store::outbox::insert_message(&mut tx, &event("change:5"), chrono::Utc::now()).await.unwrap();
        tx.commit().await.unwrap();
        cport::outbox::drain(&t.state).await.unwrap();
        let row = cport::store::outbox::list_messages(&t.state.db, None, 5).await.unwrap().remove(0);
        assert_eq!(row.status.as_str(), status, "{path}: {row:?}");
        assert!(row.last_error.as_deref().unwrap_or("").contains(says), "{path}: {row:?}");
    }

    // A process without the webhook (a shell's `digest run` lacking the server's variable)
    // leaves what was queued for it to one that has it, whether it sends alone or with a
    // sender per lane: nothing is dropped.
    let off = common::TestState::new(|c| c.webhook.url = String::new()).await;
    let mut tx = off.state.db.begin().await.unwrap();
    cport::store::outbox::insert_message(&mut tx, &event("change:2"), chrono::Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
    cport::outbox::drain(&off.state).await.unwrap();
    cport::outbox::drain_concurrently(&off.state, 2, None).await.unwrap();
    let queued = cport::store::outbox::list_messages(&off.state.db, Some("queued"), 5).await.unwrap();
    assert_eq!(queued.len(), 1, "left for a process with the webhook: {queued:?}");
}

#[tokio::test]
async fn a_line_is_named_once_and_bad_fields_are_refused_by_name() {
    let app = app_with_tees_in_production().await;
    let b = app.signed_in("P-1B").await;
    let fields = [("qty:J-1:0", "7"), ("address", "1 Quay St")];
    app.submit(&b, "/jobs/J-1/delivery", &fields).await;
    let feed = app.changes(0).await;
    let e = feed.iter().find(|e| e["kind"] == "delivery_instructions_given").expect("the instructions are in the feed");
    assert_eq!(e["data"]["lines"], serde_json::json!([{"job_id": "J-1", "line_no": 0, "qty": 7}]));
    // A job that is not the client's, named in a field, is refused by that field.
    let fields = [("qty:J-1:0", "1"), ("qty:J-9:0", "1"), ("address", "x")];
    let html = app.post_refused(&b, "/jobs/J-1/delivery", &fields).await;
    assert!(html.contains("qty[J-9:0]") && html.contains("you have no job J-9"), "{html}");
    // A line that is not a number is named as the field it came in.
    let html = app.post_refused(&b, "/jobs/J-1/delivery", &[("qty:J-1:x", "1"), ("address", "x")]).await;
    assert!(html.contains("qty[J-1:x]"), "{html}");
    // A hand-made form: one line given twice, or under a second name for it, or a field that
    // names no line, or a button the form does not have: each refused by name, none added up.
    for (fields, says) in [
        // Each within what the line holds, together over it: never added up unseen.
        (vec![("qty:J-1:0", "1"), ("qty:J-1:0", "2")], "qty:J-1:0: is given twice"),
        (vec![("qty:J-1:0", "1"), ("qty:J-1:00", "1")], "qty[J-1:00]: job J-1 has no line `00`"),
        (vec![("qty:J-1:+0", "1")], "qty[J-1:+0]: job J-1 has no line `+0`"),
        // Padded, each part is said as sent: never as the job or line it looks like trimmed.
        (vec![("qty:J-1 :0", "1")], "`J-1 ` may hold only letters"),
        (vec![("qty:J-1: 0", "1")], "job J-1 has no line ` 0`"),
        (vec![("qty:J-1", "5")], "qty[J-1]: is not a line of a job"),
        (vec![("qty:::", "1")], "qty[::]: is not a line of a job"),
        (vec![("qty:J-1:", "1")], "qty[J-1:]: is not a line of a job"),
        (vec![("qty:J-1:0", "1"), ("action", "bogus")], "action: `bogus` is not deliver or none"),
    ] {
        let mut fields = fields;
        fields.push(("address", "Unit 1"));
        let html = app.post_refused(&b, "/jobs/J-1/delivery", &fields).await;
        assert!(html.contains(says), "{says}: {html}");
    }
    assert_eq!(app.changes(0).await.len(), feed.len(), "nothing more was recorded");
    app.stop().await;
}

/// A field given twice, a query value that is not text or not of its type, text that shows
/// nothing, a password of spaces: each refused naming the field, and nothing changes.
#[tokio::test]
async fn what_could_be_read_two_ways_is_refused_by_name() {
    let app = app().await;
    let b = app.signed_in("P-1A").await;
    let feed = app.changes(0).await.len();
    for (fields, says) in [
        (vec![("action", "comment"), ("comment", "first"), ("comment", "second")], "comment: is given twice"),
        (vec![("action", "comment"), ("action", "reject"), ("comment", "x")], "action: is given twice"),
        (vec![("action", "comment"), ("comment", "\u{200B}\u{FEFF} \u{2060}")], "comment: write something first"),
        (vec![("action", "comment"), ("comment", "odd \u{FFFE}")], "U+FFFE, which is not a character"),
        (vec![("action", "approve"), ("terms", "0")], "terms: `0` is not a box&#x27;s value"),
        (vec![("action", "approve"), ("terms", "false")], "terms: `false` is not a box"),
        (vec![("action", "reject"), ("reason", "x"), ("seen", "bogus")], "seen: `bogus` is not the status"),
        (vec![("action", "reject"), ("reason", "x")], "seen: `` is not the status"),
    ] {
        let html = app.post_refused(&b, "/visuals/V-1", &fields).await;
        assert!(html.contains(says), "{fields:?}: {html}");
    }
    // A comment refused is shown again as typed (escaped), the page's CSRF token fresh.
    let html = app.post_refused(&b, "/visuals/V-1", &[("action", "comment"), ("comment", "<b>odd</b> \u{FFFE}")]).await;
    assert!(html.contains(">&lt;b&gt;odd&lt;&#x2f;b&gt; \u{FFFE}</textarea>"), "{html}");
    let html = app.post_refused(&b, "/visuals", &[("visual", "V-1"), ("terms", "no")]).await;
    assert!(html.contains("terms: `no` is not a box"), "{html}");
    let prefs = [("timezone", "Europe/London"), ("schedule", "0 0 8 * * Mon-Fri"), ("email_enabled", "0")];
    let html = app.post_refused(&b, "/preferences", &prefs).await;
    assert!(html.contains("email_enabled: `0` is not a box"), "{html}");
    assert!(cport::store::settings::get_settings(&app.db, "P-1A").await.unwrap().email_enabled, "email stays on");
    let html = app.post_refused(&b, "/password", &[("new_password", "correct horse battery")]).await;
    assert!(html.contains("confirm_password: give the new password again"), "{html}");
    let form = [("content-type", "application/json")];
    let r = app.post_with(&b, "/visuals/V-1", &form, r#"{"action": "approve", "terms": "1"}"#).await;
    assert_eq!(r.status().as_u16(), 415);
    let html = r.text().await.unwrap();
    assert!(html.contains("body: `application&#x2f;json` is not a form"), "{html}");
    let spaces = "              ";
    let html = app.post_refused(&b, "/password", &[("new_password", spaces), ("confirm_password", spaces)]).await;
    assert!(html.contains("new_password: spaces alone are no password"), "{html}");
    let (_, html) = app.page(&b, "/visuals/V-1").await;
    assert!(!html.contains("first") && !html.contains("second"), "no comment was added: {html}");
    assert_eq!(app.changes(0).await.len(), feed, "nothing was recorded");
    for (path, says) in [
        ("/jobs?q=%ff", "q: not text in UTF-8"),
        ("/jobs?q=%01x", "q: "),
        ("/stock?q=a%0Ab", "q: "),
        ("/jobs?q=a&q=b", "q: is given twice"),
        ("/jobs?page=abc", "page: `abc` is not a page number"),
        ("/jobs?page=0", "page: `0` is not a page number"),
        ("/jobs?page=99999999999999999999999", "is not a page number (1 to 100000)"),
        ("/stock?page=-2", "page: `-2` is not a page number"),
        ("/jobs?sort=name", "sort: `name` is not a column number"),
        ("/jobs?sort=1&desc=maybe", "desc: `maybe` is not 1"),
    ] {
        let (status, html) = app.page(&b, path).await;
        assert_eq!(status, 400, "{path}: {html}");
        assert!(html.contains(says), "{path}: {html}");
    }
    let (status, _) = app.page(&b, "/jobs/J-1/artwork/x").await;
    assert_eq!(status, 404, "a file number that is not a number names no file");
    app.stop().await;
}

/// A saved address of many lines is chosen as a browser sends the choice back (its white
/// space folded, for an option without a value; its line breaks made CRLF, for one with), and
/// kept as it was saved. Compared as sent, no such address could ever be chosen.
#[tokio::test]
async fn a_saved_address_of_many_lines_can_be_chosen() {
    let app = app_with_tees_in_production().await;
    let b = app.signed_in("P-1B").await;
    app.submit(&b, "/jobs/J-1/delivery", &[("qty:J-1:0", "1"), ("address", "Unit 4\r\nPark Rd\r\nLeeds")]).await;
    let (_, html) = app.page(&b, "/jobs/J-1/delivery").await;
    assert!(html.contains("<option>Unit 4"), "offered: {html}");
    for (n, sent) in ["Unit 4 Park Rd Leeds", "Unit 4\r\nPark Rd\r\nLeeds", "Unit 4\nPark Rd\nLeeds"].iter().enumerate()
    {
        let notes = format!("Drop {n}");
        app.submit(&b, "/jobs/J-1/delivery", &[("qty:J-1:0", "1"), ("saved_address", sent), ("notes", &notes)]).await;
    }
    let changes = app.changes(0).await;
    let addresses: Vec<&str> = changes.iter().filter_map(|c| c["data"]["address"].as_str()).collect();
    assert_eq!(addresses.len(), 4, "{changes:?}");
    assert!(addresses.iter().all(|a| *a == addresses[0]), "kept as saved: {addresses:?}");
    // One not offered is still refused, however its white space falls.
    let html =
        app.post_refused(&b, "/jobs/J-1/delivery", &[("qty:J-1:0", "1"), ("saved_address", "Unit 4 Leeds")]).await;
    assert!(html.contains("saved_address: choose one of the addresses offered"), "{html}");
    // One chosen and another typed (a form that came back kept what was typed): asked, not
    // settled by one of them silently; the same one in both is that one.
    let both = [("qty:J-1:0", "1"), ("saved_address", "Unit 4 Park Rd Leeds"), ("address", "2 Oracle St")];
    let html = app.post_refused(&b, "/jobs/J-1/delivery", &both).await;
    assert!(html.contains("a saved address is chosen and another typed"), "{html}");
    assert_eq!(app.changes(0).await.len(), 4, "nothing was recorded");
    let same = [
        ("qty:J-1:0", "1"),
        ("saved_address", "Unit 4 Park Rd Leeds"),
        ("address", "Unit 4 Park Rd Leeds"),
        ("notes", "Both the same"),
    ];
    app.submit(&b, "/jobs/J-1/delivery", &same).await;
    app.stop().await;
}

#[tokio::test]
async fn hostile_inputs_change_nothing() {
    let app = app_with_tees_in_production().await;
    let b = app.signed_in("P-1B").await;
    // Two quantities whose sum would wrap around an i64.
    let _ = app
        .post_refused(
            &b,
            "/jobs/J-1/delivery",
            &[("qty:J-1:0", "9223372036854775807"), ("qty:J-1:0", "2"), ("address", "x")],
        )
        .await;
    let html =
        app.post_refused(&b, "/jobs/J-1/delivery", &[("qty:J-1:0", "99999999999999999999"), ("address", "x")]).await;
    assert!(html.contains("`99999999999999999999` is too large"), "{html}");
    let html =
        app.post_refused(&b, "/jobs/J-1/delivery", &[("qty:J-1:0", "1"), ("saved_address", "1 Elsewhere")]).await;
    assert!(html.contains("saved_address: choose one of the addresses offered"), "{html}");
    // The form posted to a job that is not there, or is another client's, is not found, and
    // the lines of the contact's own job it names are not taken either.
    let csrf = csrf_of(&app.page(&b, "/jobs/J-1/delivery").await.1);
    for path in ["/jobs/J-NOPE/delivery", "/jobs/J-9/delivery"] {
        let form = [("csrf", csrf.as_str()), ("action", "deliver"), ("qty:J-1:0", "1"), ("address", "2 Oracle St")];
        let (status, _, _) = app.post_raw(&b, path, &form).await;
        assert_eq!(status, 404, "{path}");
    }
    assert!(app.changes(0).await.is_empty());
    // A link cannot put its own words on the portal: notes are signed by cport.
    let (_, html) = app.page(&b, "/?note=Your+account+is+locked%2C+call+0800+000").await;
    assert!(!html.contains("Your account is locked"));
    // Pages cannot be framed by another site.
    let r = b.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    // A private page is not kept by the browser to be shown again after sign-out, and no
    // address of cport's (some hold a token) is handed to another site.
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "same-origin");
    let statement = b.get(app.url("/statement.csv")).send().await.unwrap();
    assert_eq!(statement.headers()["cache-control"], "no-store", "documents too");
    let style = b.get(app.url("/static/portal.css")).send().await.unwrap();
    assert!(style.headers()["cache-control"].to_str().unwrap().contains("max-age"), "the stylesheet may be kept");
    // A delegate may decide a visual awaiting approval, never undo the client's approval.
    // (Dana opens her link before the approval: after it, the link opens nothing.)
    app.submit(&b, "/visuals/V-1", &[("action", "delegate"), ("name", "Dana"), ("email", "dana@reseller.example")])
        .await;
    let link = app.link_mailed_to("dana@reseller.example", "/l/").await;
    let third = browser();
    third.get(&link).send().await.unwrap();
    app.submit(&b, "/visuals/V-1", &[("action", "approve"), ("terms", "1")]).await;
    let undo = [("action", "reject"), ("seen", "awaiting_approval"), ("reason", "undo")];
    let _ = app.post_conflict(&third, "/visuals/V-1", &undo).await;
    assert_eq!(app.visual_status("V-1").await, "approved");
    app.stop().await;
}

/// The dashboard keeps items and banners in memory between requests, yet a change made
/// through another server on the same store (a second `cport serve`) shows on the very next
/// request: a visual decided on, a banner posted (only to its audience), then retracted.
#[tokio::test]
async fn a_second_server_s_changes_show_on_the_next_page() {
    let a = app().await;
    let b = a.spawn_beside(|_| {}).await;
    let ann = a.signed_in("P-1A").await;
    let zed = a.signed_in("P-2A").await;
    // The dashboard's link to V-1 (minijinja escapes the slashes).
    const V1: &str = "&#x2f;visuals&#x2f;V-1";
    let (_, html) = a.page(&ann, "/").await;
    assert!(html.contains(V1), "{html}");
    let (_, html) = a.page(&ann, "/").await;
    assert!(html.contains(V1), "served again from memory: {html}");

    let mut visual = common::world()["visuals"][0].clone();
    visual["status"] = json!("approved");
    assert_eq!(b.put("visuals", json!([visual])).await.0, 200);
    let banner = json!({"title": "Closed Friday", "body": "Back Monday.\nCollections from 9.", "severity": "warning", "clients": ["C-1"]});
    let (status, posted) = b.api(reqwest::Method::POST, "/api/v1/banners", Some(banner)).await;
    assert_eq!(status, 201, "{posted}");
    let (_, html) = a.page(&ann, "/").await;
    assert!(!html.contains(V1), "the decided visual is gone: {html}");
    assert!(html.contains("Closed Friday"), "the new banner shows: {html}");
    // Its body keeps the lines it was written in.
    assert!(html.contains("<span class=\"lines\">Back Monday.\nCollections from 9.</span>"), "{html}");
    let (_, html) = a.page(&zed, "/").await;
    assert!(!html.contains("Closed Friday"), "not to another client: {html}");

    let id = posted["id"].as_i64().expect("the banner's id");
    let path = format!("/api/v1/banners/{id}");
    assert_eq!(b.api(reqwest::Method::DELETE, &path, None).await.0, 204);
    let (_, html) = a.page(&ann, "/").await;
    assert!(!html.contains("Closed Friday"), "the retracted banner is gone: {html}");
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn the_dashboard_shows_the_account_to_roles_that_see_invoices() {
    let app = app().await;
    app.synced(
        "account_summaries",
        json!([{"client_id": "C-1", "as_of": "2026-11-30", "current_balance": "1250.00", "over_30": "300.00",
                    "over_60": "120.00", "over_90": "0", "credit_limit": "5000.00"}]),
    )
    .await;
    for who in ["P-1F", "P-1A", "P-1V"] {
        let (_, page) = app.page(&app.signed_in(who).await, "/").await;
        assert!(page.contains("Your account"), "{who}: {page}");
        assert!(
            page.contains("1250.00") && page.contains("300.00 over 30 days") && page.contains("5000.00"),
            "{who}: {page}"
        );
        assert!(page.contains("href=\"/statement.pdf\""), "{who}");
    }
    let (_, page) = app.page(&app.signed_in("P-1B").await, "/").await;
    assert!(!page.contains("Your account"), "a buyer does not see invoices");
    // Without a credit limit the line is left out; BALANCE by reply or chat says the same.
    app.put("account_summaries", json!([{"client_id": "C-1", "as_of": "2026-11-30", "current_balance": "10.00"}]))
        .await;
    let (_, page) = app.page(&app.signed_in("P-1F").await, "/").await;
    assert!(page.contains("10.00") && !page.contains("Credit limit") && !page.contains("Overdue"), "{page}");
    let body = app
        .refused(
            "account_summaries",
            json!([{"client_id": "C-1", "as_of": "2026-11-30", "current_balance": "10.00", "credit_limit": "lots"}]),
        )
        .await;
    assert!(body.to_string().contains("credit_limit"), "{body}");
}

/// The `.eml` files the app has written so far (the demo's and tests' mail transport).
fn written_mail(app: &TestApp) -> Vec<String> {
    let dir = app.dir.path().join("mail");
    let mut out = vec![];
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    out
}

/// The value of a header (unfolded) in a raw message.
fn header_of(raw: &str, name: &str) -> Option<String> {
    let head = raw.split("\r\n\r\n").next()?;
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push_str(line.trim_start());
                continue;
            }
            return value;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}

#[tokio::test]
async fn a_digest_unsubscribes_in_one_click_and_no_more_digests_come() {
    use cport::digest::scheduler::{Trigger, run_pass};
    let app = app().await;
    let now = chrono::Utc::now();
    run_pass(&app.state, now, Some("P-1A"), Trigger::Manual { force: false }).await.unwrap();
    cport::outbox::drain(&app.state).await.unwrap();
    // The server's own senders may hold the digest: wait (bounded) for its file.
    let mut digest = None;
    for _ in 0..500 {
        digest =
            written_mail(&app).into_iter().find(|m| m.contains("ann@alpha.example") && m.contains("things need you"));
        if digest.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let digest = digest.expect("Ann's digest was written");
    assert_eq!(header_of(&digest, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    let list = header_of(&digest, "List-Unsubscribe").unwrap();
    let url = list.trim_start_matches('<').split('>').next().unwrap().to_string();
    let public = app.state.config.public_url.trim_end_matches('/').to_string();
    assert!(url.starts_with(&format!("{public}/unsubscribe/")), "{list}");
    let path = url[public.len()..].to_string();

    // A link scanner's GET changes nothing.
    let plain = reqwest::Client::new();
    let r = plain.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("Stop these emails?"));
    let s = cport::store::settings::get_settings(&app.db, "P-1A").await.unwrap();
    assert!(s.email_digests);

    // Ann's preferences page, opened before she unsubscribes.
    let ann = app.signed_in("P-1A").await;
    let stale = app.shown(&ann, "/preferences").await;
    assert!(stale.contains("name=\"shown_email_digests\" value=\"1\""), "{stale}");

    // A mail client's POST: no cookie, no form token, only the body RFC 8058 gives it.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = app.post_with(&plain, &path, &form, "List-Unsubscribe=One-Click").await;
    assert_eq!(r.status().as_u16(), 200);
    let s = cport::store::settings::get_settings(&app.db, "P-1A").await.unwrap();
    assert!(!s.email_digests && s.email_alerts && s.email_enabled, "only digests stop");
    // The page opened before, saved after with another field changed: the box she left as
    // it was shown keeps what the unsubscribe stored, and her change is saved.
    let mut saved = vec![("timezone", "Europe/Paris"), ("schedule", "0 0 8 * * Mon-Fri")];
    for b in ["email_enabled", "email_digests", "email_alerts"] {
        saved.extend([(b, "1")]);
    }
    saved.extend([("shown_email_enabled", "1"), ("shown_email_digests", "1"), ("shown_email_alerts", "1")]);
    app.submit(&ann, "/preferences", &saved).await;
    let s = cport::store::settings::get_settings(&app.db, "P-1A").await.unwrap();
    assert!(!s.email_digests && s.email_alerts, "the unsubscribe stands");
    assert_eq!(s.timezone.as_deref(), Some("Europe/Paris"));
    let feed = app.changes(0).await;
    let stops: Vec<_> = feed.iter().filter(|c| c["kind"] == "email_unsubscribed").collect();
    assert_eq!(stops.len(), 1, "{feed:?}");
    assert_eq!(stops[0]["contact_id"], "P-1A");
    assert_eq!(stops[0]["data"]["what"], "digest");
    // Again: still off, no second event; the link opened again says so rather than asking.
    let r = plain.post(app.url(&path)).body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let again = plain.get(app.url(&path)).send().await.unwrap().text().await.unwrap();
    assert!(again.contains("Already stopped") && !again.contains("Stop these emails?"), "{again}");
    assert_eq!(app.changes(0).await.iter().filter(|c| c["kind"] == "email_unsubscribed").count(), 1);

    // The next digest goes nowhere by email.
    let digests = "outbox WHERE contact_id = 'P-1A' AND kind = 'digest'";
    let before = app.count(digests).await;
    run_pass(&app.state, now, Some("P-1A"), Trigger::Manual { force: true }).await.unwrap();
    assert_eq!(app.count(digests).await, before, "no more digests by email");

    // A tampered or foreign token does nothing; a portal link is no unsubscribe link.
    let tampered = format!("{}x", path);
    let r = plain.post(app.url(&tampered)).body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let portal = app.link("P-1B", "/").rsplit('/').next().unwrap().to_string();
    let r = plain.post(app.url(&format!("/unsubscribe/{portal}"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(cport::store::settings::get_settings(&app.db, "P-1B").await.unwrap().email_digests);

    // The preferences page turns digests back on.
    let b = app.signed_in("P-1A").await;
    let (_, html) = app.page(&b, "/preferences").await;
    assert!(html.contains("name=\"email_digests\"") && !html.contains("name=\"email_digests\" value=\"1\" checked"));
    app.submit(
        &b,
        "/preferences",
        &[
            ("email_enabled", "1"),
            ("email_digests", "1"),
            ("email_alerts", "1"),
            ("schedule", "0 0 8 * * Mon-Fri"),
            ("timezone", "Europe/London"),
        ],
    )
    .await;
    assert!(cport::store::settings::get_settings(&app.db, "P-1A").await.unwrap().email_digests);
}

/// Input that would be accepted only to fail later (an address the sender refuses, a schedule
/// that never fires, text no mail line can hold) is refused at the form, naming the field, and
/// changes nothing.
#[tokio::test]
async fn input_that_could_only_fail_later_is_refused_at_the_form() {
    let app = app_with_tees_in_production().await;
    let b = app.signed_in("P-1A").await;
    // Addresses the mail sender would refuse: a 70-character domain label, two dots.
    let bad = [format!("sam@{}.example", "b".repeat(70)), "y@a..example".to_string()];
    for email in &bad {
        let html =
            app.post_refused(&b, "/visuals/V-1", &[("action", "delegate"), ("name", "Sam"), ("email", email)]).await;
        assert!(html.contains("email: is not an email address"), "{email}: {html}");
    }
    assert_eq!(app.count("delegations").await, 0);
    let queued = cport::store::outbox::list_messages(&app.db, None, 100).await.unwrap();
    assert!(!queued.iter().any(|m| bad.contains(&m.message.recipient)), "nothing queued to them");
    // A name no mail header line can hold.
    let html = app
        .post_refused(
            &b,
            "/visuals/V-1",
            &[("action", "delegate"), ("name", &"S".repeat(5000)), ("email", "sam@reseller.example")],
        )
        .await;
    assert!(html.contains("name: longer than 200 characters"), "{html}");
    // The field is named on the visual page too.
    let bell = [("action", "reject"), ("seen", "awaiting_approval"), ("reason", "too\u{7}dark")];
    let html = app.post_refused(&b, "/visuals/V-1", &bell).await;
    assert!(html.contains("reason:"), "{html}");
    // Delivery notes and contact name are bounded like the address.
    for (field, value) in [("notes", "n".repeat(2001)), ("contact_name", "c".repeat(201))] {
        let html = app
            .post_refused(&b, "/jobs/J-1/delivery", &[("qty:J-1:0", "1"), ("address", "Unit 1"), (field, &value)])
            .await;
        assert!(html.contains(&format!("{field}: longer than")), "{field}: {html}");
    }
    // A schedule that can never fire (31 February; a year gone by).
    for cron in ["0 0 0 31 2 *", "0 0 8 * * * 2000"] {
        let html = app
            .post_refused(
                &b,
                "/preferences",
                &[("timezone", "Europe/London"), ("schedule", "custom"), ("custom_schedule", cron)],
            )
            .await;
        assert!(html.contains("never fires"), "{cron}: {html}");
    }
    // A batch names each visual once, and at most 100.
    let many: Vec<String> = (0..101).map(|i| format!("V-{i}")).collect();
    let mut fields: Vec<(&str, &str)> = many.iter().map(|v| ("visual", v.as_str())).collect();
    fields.push(("terms", "1"));
    let html = app.post_refused(&b, "/visuals", &fields).await;
    assert!(html.contains("at most 100 visuals at once"), "{html}");
    let location =
        app.submit(&b, "/visuals", &[("visual", "V-1"), ("visual", "V-1"), ("visual", " V-1 "), ("terms", "1")]).await;
    assert!(location.contains("note=Approved%3A%20V%2D1%2E&"), "approved once: {location}");
    assert!(app.changes(0).await.iter().filter(|c| c["kind"] == "visual_approved").count() == 1);
    // Bytes that are not UTF-8 are refused by field, not stored as U+FFFD.
    let (_, page) = app.page(&b, "/visuals/V-1").await;
    let csrf = common::csrf_of(&page);
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = app.post_with(&b, "/visuals/V-1", &form, format!("csrf={csrf}&action=comment&body=ok%ff%fe")).await;
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("body: not text in UTF-8"));
    assert!(!app.changes(0).await.iter().any(|c| c["kind"] == "visual_commented"));
    // Signing in: an address too long is named.
    let html = app.post_refused(&browser(), "/login", &[("email", &"a".repeat(300)), ("password", "x")]).await;
    assert!(html.contains("email: longer than any address"), "{html}");
    // No password given is said by its field, not as a password that does not match.
    let html = app.post_refused(&browser(), "/login", &[("email", "ann@alpha.example")]).await;
    assert!(html.contains("password: give your password"), "{html}");
    // A path nothing serves: the portal's page, or the error in JSON under /api/.
    let (status, html) = app.page(&b, "/no/such/page").await;
    assert_eq!(status, 404);
    assert!(html.contains("<html") && html.contains("Not found"), "{html}");
    let (status, body) = app.api(reqwest::Method::GET, "/api/v1/no/such/thing", None).await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string(), "{body}");
    // A method the path does not take: 405 in the same shape, saying which it does take.
    let r = app.http.get(app.url("/api/v1/clients")).bearer_auth(common::TOKEN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.headers().contains_key("allow"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().starts_with("method:"), "{body}");
    // On a page, the same words in the portal's page.
    let r = b.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.headers().contains_key("allow"));
    let html = r.text().await.unwrap();
    assert!(html.contains("<html") && html.contains("method: this address is not opened that way"), "{html}");
    // A console address tells a client nothing, whatever the method (staff see the 405).
    for path in ["/staff/logout", "/staff/chase/remind", "/staff/banners/1/retract"] {
        let r = b.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
    }
    app.stop().await;
}

/// Each way in takes at most what its senders need, refused before it is read: a portal or
/// console form 256 KiB, a chat provider's update 1 MiB. An oversized body answers 413 and
/// changes nothing; one within the limit reaches the form's own checks.
#[tokio::test]
async fn oversized_bodies_are_refused_by_route_and_change_nothing() {
    let (app, b) = app_as("P-1A").await;
    let over_a_form = "x".repeat(300 * 1024);
    let (status, _, page) = app
        .post_form(&b, "/visuals/V-1", &[("action", "reject"), ("seen", "awaiting_approval"), ("reason", &over_a_form)])
        .await;
    assert_eq!(status, 413, "{page}");
    assert!(page.contains("<html"), "a portal route answers with a page: {page}");
    assert!(page.contains("256 KB at most") && !page.contains("max_body_bytes"), "the form's own limit: {page}");
    // Within the form's limit, the field's own limit speaks.
    let within = "x".repeat(200 * 1024);
    let page = app
        .post_refused(&b, "/visuals/V-1", &[("action", "reject"), ("seen", "awaiting_approval"), ("reason", &within)])
        .await;
    assert!(page.contains("reason"), "{page}");
    nothing_done(&app).await;
    let r = browser()
        .post(app.url("/staff/login"))
        .form(&[("email", "staff@tot.example"), ("password", over_a_form.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413, "the console's forms have the same limit");
    let page = r.text().await.unwrap();
    assert!(page.contains("256 KB at most"), "{page}");
    let over_an_update = vec![b' '; 1024 * 1024 + 1];
    for path in ["/telegram/webhook", "/discord/interactions"] {
        let r = app.http.post(app.url(path)).body(over_an_update.clone()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 413, "{path}");
        let said = r.text().await.unwrap();
        assert!(said.contains("1 MB at most"), "{path}: {said}");
    }
    app.stop().await;
}

/// Twelve visuals approved at once, each in its own request: every one answers and is
/// approved. An approval once read its charges on a second connection while its transaction
/// held the first, and a dozen at once held the whole pool: answers took 10–20 s, and a third
/// of them were 500s ("database is locked").
#[tokio::test]
async fn many_visuals_approved_at_once_all_answer_and_are_approved() {
    let (app, b) = app_as("P-1A").await;
    let ids: Vec<String> = (0..12).map(|i| format!("V-70{i:02}")).collect();
    let visuals: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            json!({"id": id, "client_id": "C-1", "job_id": "J-1", "design_id": "D", "category": "Colour visual",
                   "designer": "Dee", "status": "awaiting_approval", "main_image": "/x.svg",
                   "charges": [{"description": "Art", "qty": 1, "unit_price": "10.00"}]})
        })
        .collect();
    app.synced("visuals", json!(visuals)).await;
    let form = [("action", "approve"), ("terms", "1")];
    let paths: Vec<String> = ids.iter().map(|id| format!("/visuals/{id}")).collect();
    let answers = futures::future::join_all(paths.iter().map(|p| app.post_form(&b, p, &form))).await;
    for (id, (status, _, body)) in ids.iter().zip(&answers) {
        assert_eq!(*status, 303, "{id}: {body}");
        assert_eq!(app.visual_status(id).await, "approved", "{id}");
    }
    app.stop().await;
}

/// A client the proxy names: a browser whose requests carry `X-Forwarded-For` as a proxy in
/// front of cport would write it.
fn through_proxy(forwarded_for: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", forwarded_for.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Behind a trusted reverse proxy each client's own address counts against the per-address
/// sign-in limit, not the proxy's (one address's failures would otherwise lock everyone out);
/// a client cannot escape its limit by writing an address of its own into the header; and
/// with no proxy trusted the header is not believed at all.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_limited_by_its_own_address() {
    async fn fail(app: &TestApp, b: reqwest::Client, n: usize) -> u16 {
        let email = format!("nobody{n}@alpha.example");
        app.post_form(&b, "/login", &[("email", &email), ("password", "wrong")]).await.0
    }
    let trusting = TestApp::spawn_with(|c| {
        c.trusted_proxies = serde_json::from_value(json!(["127.0.0.1", "::1"])).unwrap();
        c.portal.login_attempts_per_address = 3;
    })
    .await;
    for n in 0..3 {
        assert_eq!(fail(&trusting, through_proxy("203.0.113.1"), n).await, 401);
    }
    assert_eq!(fail(&trusting, through_proxy("203.0.113.1"), 3).await, 429, "that client's address is limited");
    // Its own address written in front of what the proxy appended changes nothing.
    assert_eq!(fail(&trusting, through_proxy("198.51.100.9, 203.0.113.1"), 4).await, 429);
    // Another client, through the same proxy, is not locked out.
    assert_eq!(fail(&trusting, through_proxy("203.0.113.2"), 5).await, 401, "another client signs in as before");
    trusting.stop().await;

    let plain = TestApp::spawn_with(|c| c.portal.login_attempts_per_address = 3).await;
    for n in 0..3 {
        assert_eq!(fail(&plain, through_proxy(&format!("203.0.113.{n}")), n).await, 401);
    }
    assert_eq!(fail(&plain, through_proxy("203.0.113.77"), 3).await, 429, "the header of an untrusted peer is ignored");
    plain.stop().await;
}

/// An alert held by quiet hours its contact then clears goes within the batch window, not at
/// the old hours' end; quiet hours set anew hold what is queued inside them.
#[tokio::test]
async fn changing_quiet_hours_moves_the_alerts_they_hold() {
    let app = TestApp::with_world().await;
    let b = app.signed_in("P-1A").await;
    let now = chrono::Utc::now();
    let hhmm = |t: chrono::DateTime<chrono::Utc>| t.format("%H:%M").to_string();
    let (start, end) = (hhmm(now - chrono::Duration::hours(1)), hhmm(now + chrono::Duration::hours(6)));
    let quiet = [
        ("timezone", "UTC"),
        ("schedule", "0 0 8 * * Mon"),
        ("email_enabled", "1"),
        ("email_alerts", "1"),
        ("quiet_start", start.as_str()),
        ("quiet_end", end.as_str()),
    ];
    app.submit(&b, "/preferences", &quiet).await;
    // An alert the hours hold: queued for their end.
    let held_until = now + chrono::Duration::hours(6);
    let payload = serde_json::json!({"items": ["A1:V-1"], "message_id": "<held@x>"}).to_string();
    let row = cport::store::outbox::NewMessage {
        contact_id: Some("P-1A".into()),
        channel: cport::model::Outlet::Email,
        kind: cport::model::MessageKind::Alert,
        idem_key: "alert:held".into(),
        reply_token: None,
        recipient: "ann@alpha.example".into(),
        subject: "TOT: Visual V-1".into(),
        payload,
        next_attempt_at: held_until,
    };
    let mut tx = app.db.begin().await.unwrap();
    let id = cport::store::outbox::insert_message(&mut tx, &row, now).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    let at =
        || async { cport::store::outbox::get_message(&app.db, id).await.unwrap().unwrap().message.next_attempt_at };
    // A failure after the save and before the retiming (injected) leaves neither: the hours
    // are as they were and the alert is held to their end.
    app.state.faults.arm("preferences:retime", 1);
    let (status, _, _) = app.post_form(&b, "/preferences", &quiet[..4]).await;
    assert_ne!(status, 303, "the failed save was reported as done");
    let s = cport::store::settings::get_settings(&app.db, "P-1A").await.unwrap();
    assert_eq!(s.quiet_end.as_deref(), Some(end.as_str()), "the quiet hours were saved without their alerts");
    let kept = at().await;
    assert!((kept - held_until).abs() < chrono::Duration::seconds(1), "moved to {kept}, not kept at {held_until}");
    // Cleared: it goes within the batch window.
    app.submit(&b, "/preferences", &quiet[..4]).await;
    let window = chrono::Duration::seconds(app.state.config.alerts.batch_window_seconds as i64);
    let released = at().await;
    assert!(released <= chrono::Utc::now() + window, "released at {released}, not {held_until}");
    // Set again: held to their end once more.
    app.submit(&b, "/preferences", &quiet).await;
    let held = at().await;
    assert!(held > now + chrono::Duration::hours(5), "held to the hours' end: {held}");
    app.stop().await;
}

/// TOT's digest schedule may be more frequent than a contact may choose (every two hours
/// here): the preferences page, which shows it, still saves another change with it kept.
#[tokio::test]
async fn preferences_save_with_tots_more_frequent_schedule_kept() {
    let app = TestApp::spawn_with(|c| c.digest.schedule = "0 0 */2 * * *".into()).await;
    load_world(&app).await;
    let b = app.signed_in("P-1A").await;
    let kept = [
        ("timezone", "Europe/London"),
        ("schedule", "0 0 */2 * * *"),
        ("email_enabled", "1"),
        ("quiet_start", "22:00"),
        ("quiet_end", "07:00"),
    ];
    app.submit(&b, "/preferences", &kept).await;
    let s = cport::store::settings::get_settings(&app.db, "P-1A").await.unwrap();
    assert_eq!((s.quiet_start.as_deref(), s.digest_schedule.as_deref()), (Some("22:00"), None), "{s:?}");
    // Choosing it as their own is still refused.
    let html = app
        .post_refused(
            &b,
            "/preferences",
            &[("timezone", "Europe/London"), ("schedule", "custom"), ("custom_schedule", "0 0 */3 * * *")],
        )
        .await;
    assert!(html.contains("custom_schedule:"), "{html}");
    app.stop().await;
}

/// The menu offers a page exactly when the page opens for the contact's role: both ask one
/// rule, for every role.
#[tokio::test]
async fn the_menu_offers_the_pages_each_role_may_open_and_no_others() {
    let app = TestApp::with_world().await;
    let pages = ["/visuals", "/jobs", "/deliveries", "/invoices", "/pos", "/stock", "/baskets", "/orders", "/users"];
    for contact in ["P-1A", "P-1B", "P-1F", "P-1V"] {
        let b = app.signed_in(contact).await;
        let home = app.shown(&b, "/").await;
        let nav = &home[home.find("<nav>").expect("a menu")..home.find("</nav>").unwrap()];
        let mut offered = 0;
        for path in pages {
            let in_menu = nav.contains(&format!("href=\"{path}\""));
            let (status, _) = app.page(&b, path).await;
            assert_eq!(in_menu, status == 200, "{contact}: {path} in the menu: {in_menu}, opens with {status}");
            offered += usize::from(in_menu);
        }
        assert!(offered > 0, "{contact}: some page is offered: {nav}");
    }
    app.stop().await;
}

/// Times on a contact's pages are on the contact's clock, its zone named (digests are
/// scheduled on that clock too); the staff console keeps UTC.
#[tokio::test]
async fn a_contacts_pages_show_times_on_the_contacts_clock() {
    let app = TestApp::with_world().await;
    let mut ann = common::world()["contacts"][0].clone();
    ann["timezone"] = json!("Asia/Tokyo");
    app.synced("contacts", json!([ann])).await;
    let b = app.signed_in("P-1A").await;
    app.submit(&b, "/visuals/V-1", &[("action", "approve"), ("terms", "1")]).await;
    let html = app.shown(&b, "/visuals/V-1").await;
    let shown = html.split(": approved by").next().and_then(|h| h.rsplit("<li>").next()).unwrap_or_default();
    assert!(shown.ends_with(" JST"), "the decision's time on Ann's clock: {shown:?}");
    let tokyo = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Tokyo).format("%Y-%m-%d").to_string();
    assert!(shown.starts_with(&tokyo), "{shown:?} is Tokyo's date {tokyo}");
    app.stop().await;
}

/// A sign-in link's email has a reply address and a bounce address of its own, as every
/// email does: a reply is answered, and a bounce counts against the contact's address.
#[tokio::test]
async fn a_sign_in_email_has_a_reply_address_of_its_own() {
    let app = app().await;
    let c = browser();
    let csrf = csrf_of(&app.page(&c, "/login").await.1);
    let (status, _, html) =
        app.post_raw(&c, "/login/link", &[("csrf", csrf.as_str()), ("email", "ann@alpha.example")]).await;
    assert!(status < 400, "{html}");
    let rows = cport::store::outbox::list_messages(&app.db, None, 50).await.unwrap();
    let row = rows.iter().find(|m| m.message.subject.contains("your sign-in link")).expect("the sign-in email");
    let token = row.message.reply_token.clone().expect("a reply token");
    cport::outbox::drain(&app.state).await.unwrap();
    let mut mail = None;
    for _ in 0..500 {
        mail = written_mail(&app).into_iter().find(|m| m.contains("your sign-in link"));
        if mail.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mail = mail.expect("the sign-in email was written");
    let reply = header_of(&mail, "Reply-To").expect("a Reply-To");
    assert!(reply.contains(&format!("reply+{token}@")), "{reply}");
}
