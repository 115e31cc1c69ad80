//! Re-seller baskets and orders, and third-party users, through the portal as people use it,
//! with the placement race run on the engine under test.

mod common;

use chrono::Utc;
use common::{TestApp, TestState, csrf_of};
use cport::actions::orders::Line;
use serde_json::json;

fn stock() -> serde_json::Value {
    json!([
        {"sku": "SKU-TEE", "client_id": "C-1", "client_sku": "T-1", "description": "Tee, black, printed",
         "warehouse_balance": 40, "expected": 0, "accounted_for": 30, "available_to_order": 10,
         "picture": "/media/stock/SKU-TEE.svg"},
        {"sku": "SKU-CAP", "client_id": "C-1", "description": "Cap, embroidered",
         "warehouse_balance": 100, "expected": 0, "accounted_for": 0, "available_to_order": 100,
         "picture": "/media/stock/SKU-CAP.svg"},
        {"sku": "SKU-BAG", "client_id": "C-2", "description": "Beta bag",
         "warehouse_balance": 5, "expected": 0, "accounted_for": 0, "available_to_order": 5}
    ])
}

async fn app_with_stock() -> TestApp {
    let app = TestApp::with_world().await;
    app.synced("stock", stock()).await;
    app.synced("clients", json!([{"id": "C-1", "name": "Alpha Ltd", "third_party_ordering": true}])).await;
    app
}

/// The id of the basket a POST redirected to.
fn basket_id(location: &str) -> String {
    location.trim_start_matches("/baskets/").split('?').next().unwrap().to_string()
}

/// Adds `qty` of `sku` to a new basket called `name`; gives the basket's id.
async fn new_basket(app: &TestApp, b: &reqwest::Client, sku: &str, qty: &str, name: &str) -> String {
    let loc = app.submit(b, "/stock", &[("sku", sku), ("qty", qty), ("basket", "new"), ("new_basket", name)]).await;
    basket_id(&loc)
}

/// Names the basket at `path`, sends it to a new `address`, and places it.
async fn place(app: &TestApp, b: &reqwest::Client, path: &str, name: &str, address: &str) {
    app.submit(b, path, &[("action", "save"), ("name", name), ("address_choice", "new"), ("address", address)]).await;
    app.submit(b, path, &[("action", "place")]).await;
}

fn available_on(html: &str, sku: &str) -> i64 {
    let row = html.split(&format!("id=\"sku-{sku}\"")).nth(1).expect("the SKU is listed");
    let cell = row.split("class=\"num available\">").nth(1).unwrap();
    cell.split('<').next().unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn baskets_keep_to_what_is_free_and_placing_takes_stock_down() {
    let app = app_with_stock().await;
    let bob = app.signed_in("P-1B").await;
    let html = app.shown(&bob, "/stock").await;
    assert_eq!(available_on(&html, "SKU-TEE"), 10);
    assert!(!html.contains("SKU-BAG"), "another client's stock never shows");

    // Two baskets; more than is free is refused with the field named and nothing written.
    let shop = new_basket(&app, &bob, "SKU-TEE", "4", "Shop").await;
    let (s, _, html) = app.post_form(&bob, "/stock", &[("sku", "SKU-TEE"), ("qty", "7"), ("basket", &shop)]).await;
    assert_eq!(s, 422);
    assert!(html.contains("qty: only 6 more of SKU-TEE"), "{html}");
    let (s, _, html) = app.post_form(&bob, "/stock", &[("sku", "SKU-TEE"), ("qty", "0"), ("basket", &shop)]).await;
    assert_eq!(s, 422, "{html}");
    // A new basket made for a refused line is not left behind.
    let (s, _, html) = app
        .post_form(&bob, "/stock", &[("sku", "SKU-TEE"), ("qty", "99"), ("basket", "new"), ("new_basket", "Too many")])
        .await;
    assert_eq!(s, 422);
    // Its line shows what was typed, to lower the quantity and send again.
    assert!(html.contains("value=\"99\"") && html.contains("value=\"Too many\""), "{html}");
    let (_, html) = app.page(&bob, "/baskets").await;
    assert!(!html.contains("Too many"), "{html}");
    // A basket that is not a basket, and a new basket's name no one can read: named.
    let html = app.post_refused(&bob, "/stock", &[("sku", "SKU-TEE"), ("qty", "1"), ("basket", "abc")]).await;
    assert!(html.contains("basket: choose one of your baskets"), "{html}");
    // Numbers in digits, as the API takes them: a sign before a quantity or a basket is refused.
    let plus = format!("+{shop}");
    let html = app.post_refused(&bob, "/stock", &[("sku", "SKU-TEE"), ("qty", "1"), ("basket", &plus)]).await;
    assert!(html.contains("basket: choose one of your baskets"), "{html}");
    let html = app.post_refused(&bob, "/stock", &[("sku", "SKU-TEE"), ("qty", "+1"), ("basket", &shop)]).await;
    assert!(html.contains("qty: `+1` is not a whole number written in digits"), "{html}");
    let html = app
        .post_refused(&bob, "/stock", &[("sku", "SKU-TEE"), ("qty", "1"), ("basket", "new"), ("new_basket", "a\u{7}b")])
        .await;
    assert!(html.contains("new_basket:"), "{html}");
    let (s, _, _) = app.post_form(&bob, "/stock", &[("sku", "SKU-BAG"), ("qty", "1"), ("basket", &shop)]).await;
    assert_eq!(s, 404, "another client's SKU is not found");
    let (_, _, html) = app.post_form(&bob, "/stock", &[("sku", "SKU-NOPE"), ("qty", "1"), ("basket", &shop)]).await;
    assert!(html.contains("SKU SKU-NOPE not found among yours."), "{html}");
    let event = new_basket(&app, &bob, "SKU-CAP", "20", "Event").await;
    assert_ne!(shop, event);
    let (_, html) = app.page(&bob, "/baskets").await;
    assert!(html.contains("Shop") && html.contains("Event"));
    // A second basket of a name already used (the same form sent twice, a rename) is refused
    // by its field, and nothing is made or renamed.
    let baskets = app.count("baskets").await;
    let again = [("sku", "SKU-CAP"), ("qty", "1"), ("basket", "new"), ("new_basket", "Event")];
    let html = app.post_refused(&bob, "/stock", &again).await;
    assert!(html.contains("new_basket: you have a basket named `Event` already"), "{html}");
    let html = app.post_refused(&bob, "/baskets", &[("name", "Shop")]).await;
    assert!(html.contains("name: you have a basket named `Shop` already"), "{html}");
    let rename = [("action", "save"), ("name", "Event"), ("address_choice", "new"), ("address", "1 High St")];
    let html = app.post_refused(&bob, &format!("/baskets/{shop}"), &rename).await;
    assert!(html.contains("name: you have a basket named `Event` already"), "{html}");
    assert_eq!(app.count("baskets").await, baskets);
    let (_, html) = app.page(&bob, &format!("/baskets/{event}")).await;
    assert!(html.contains(r#"id="qty-SKU-CAP" name="qty" type="number" min="0" value="20""#), "{html}");
    // Four adds at once each count: none is lost to another read before it was written.
    let one = [("sku", "SKU-CAP"), ("qty", "1"), ("basket", event.as_str())];
    let adds = futures::future::join_all((0..4).map(|_| app.post_form(&bob, "/stock", &one))).await;
    assert!(adds.iter().all(|(s, _, _)| *s == 303), "{adds:?}");
    let (_, html) = app.page(&bob, &format!("/baskets/{event}")).await;
    assert!(html.contains(r#"id="qty-SKU-CAP" name="qty" type="number" min="0" value="24""#), "{html}");
    // A SKU sent padded (spaces, a tab, a no-break space) is the stock's own: the same line,
    // never a second one the basket page does not show and placing cannot have.
    let lines = app.count("basket_lines").await;
    for padded in [" SKU-CAP ", "\tSKU-CAP", "SKU-CAP\u{a0}"] {
        let (s, _, html) = app.post_form(&bob, "/stock", &[("sku", padded), ("qty", "1"), ("basket", &event)]).await;
        assert_eq!(s, 303, "{padded:?}: {html}");
    }
    assert_eq!(app.count("basket_lines").await, lines);
    let (_, html) = app.page(&bob, &format!("/baskets/{event}")).await;
    assert!(html.contains(r#"id="qty-SKU-CAP" name="qty" type="number" min="0" value="27""#), "{html}");

    // Change and remove lines; save the address and come back on another device.
    let path = format!("/baskets/{shop}");
    app.post_form(&bob, &path, &[("action", "qty"), ("sku", "SKU-TEE"), ("qty", "5")]).await;
    let (s, _, html) = app.post_form(&bob, &path, &[("action", "qty"), ("sku", "SKU-TEE"), ("qty", "11")]).await;
    assert_eq!(s, 422);
    assert!(html.contains("only 10 of SKU-TEE"), "{html}");
    // Removing what the basket does not hold is refused by name.
    let (s, _, html) = app.post_form(&bob, &path, &[("action", "remove"), ("sku", "SKU-CAP")]).await;
    assert_eq!(s, 422);
    assert!(html.contains("sku: `SKU-CAP` is not in this basket"), "{html}");
    let (s, _, html) = app.post_form(&bob, &path, &[("action", "place")]).await;
    assert_eq!(s, 422, "no address yet");
    assert!(html.contains("address: say where the order goes"));
    // An address that prints as nothing is no address, as on the delivery form.
    for nothing in ["\u{200B}", " \u{FEFF} "] {
        let form = [("action", "save"), ("name", "Shop"), ("address_choice", "new"), ("address", nothing)];
        app.submit(&bob, &path, &form).await;
        let (s, _, html) = app.post_form(&bob, &path, &[("action", "place")]).await;
        assert_eq!(s, 422, "{nothing:?}: {html}");
        assert!(html.contains("address: say where the order goes"), "{nothing:?}: {html}");
    }
    app.submit(
        &bob,
        &path,
        &[
            ("action", "save"),
            ("name", "Shop"),
            ("address_choice", "new"),
            ("address", "1 High St, Bristol"),
            ("notes", "Back door"),
        ],
    )
    .await;
    let other_device = app.signed_in("P-1B").await;
    let (_, html) = app.page(&other_device, &path).await;
    assert!(html.contains("1 High St, Bristol") && html.contains("value=\"5\""), "{html}");
    // An address the form did not offer is refused by its field, and nothing is saved.
    for choice in ["999", "   "] {
        let fields = [("action", "save"), ("name", "Shop"), ("address_choice", choice), ("address", "Elsewhere 2")];
        let (s, _, html) = app.post_form(&bob, &path, &fields).await;
        assert_eq!(s, 422, "{choice:?}");
        assert!(html.contains("address_choice: choose one of the addresses offered"), "{html}");
        // The refused form shows what was typed, to put it right; the page after, what was saved.
        assert!(html.contains(">Elsewhere 2</textarea>"), "{html}");
    }
    let (_, html) = app.page(&bob, &path).await;
    assert!(html.contains("1 High St, Bristol") && !html.contains("Elsewhere 2"), "{html}");
    // Someone else's basket is not there for them.
    let ann = app.signed_in("P-1A").await;
    assert_eq!(app.page(&ann, &path).await.0, 404);

    // Place: the basket empties, stock goes down, the order is listed, TOT hears of it.
    let loc = app.submit(&bob, &path, &[("action", "place")]).await;
    assert!(loc.starts_with("/orders"));
    let (_, html) = app.page(&bob, "/stock").await;
    assert_eq!(available_on(&html, "SKU-TEE"), 5);
    // The STOCK command by email or chat says the same figure as the page.
    let contact = cport::store::contacts::get_contact(&app.db, "P-1B").await.unwrap();
    let actor = cport::actions::Actor::new(contact, cport::model::Channel::Email);
    let asked = cport::actions::commands::Command::Stock(Some("SKU-TEE".into()));
    let answer =
        cport::actions::enquiry::run_alone(&app.state, &actor, &asked, &Default::default(), chrono::Utc::now())
            .await
            .unwrap();
    let row = answer.sections.iter().flat_map(|s| s.rows.iter()).find(|r| r[0] == "SKU-TEE").expect("the SKU listed");
    assert_eq!(row.last().map(String::as_str), Some("5"), "{answer:?}");
    let (_, html) = app.page(&bob, &path).await;
    assert!(html.contains("This basket is empty"));
    // From the page as it was before (a second click, another tab): placed already, said so,
    // and nothing is added back or placed again.
    for fields in [vec![("action", "place")], vec![("action", "qty"), ("sku", "SKU-TEE"), ("qty", "3")]] {
        let (s, _, html) = app.post_form(&bob, &path, &fields).await;
        assert_eq!(s, 409, "{fields:?}: {html}");
        assert!(html.contains(&format!("basket {shop} was placed as order")), "{fields:?}: {html}");
    }
    assert!(app.shown(&bob, &path).await.contains("This basket is empty"));
    let (_, html) = app.page(&ann, "/orders").await;
    assert!(html.contains("SKU-TEE") && html.contains("1 High St, Bristol") && html.contains("placed"));
    let feed = app.changes(0).await;
    let placed = feed.iter().find(|e| e["kind"] == "reseller_order_placed").expect("in the feed");
    assert_eq!(placed["data"]["lines"][0]["qty"], 5);
    assert_eq!(placed["data"]["address"], "1 High St, Bristol");

    // A stock record whose figure did not change (a new description) keeps the hold.
    let mut renamed = stock();
    renamed[0]["description"] = json!("Tee, black, printed (2027 range)");
    app.put("stock", renamed).await;
    let (_, html) = app.page(&bob, "/stock").await;
    assert_eq!(available_on(&html, "SKU-TEE"), 5, "still held");

    // TOT's next stock figure takes the order in: the hold ends.
    let mut s2 = stock();
    s2[0]["available_to_order"] = json!(5);
    app.put("stock", s2).await;
    let (_, html) = app.page(&bob, "/stock").await;
    assert_eq!(available_on(&html, "SKU-TEE"), 5, "not counted twice");

    // A SKU TOT deletes leaves no line behind in a basket: none that could never be placed.
    let lines = app.count("basket_lines").await;
    assert_eq!(app.delete("stock", &["SKU-CAP"]).await.0, 200);
    assert_eq!(app.count("basket_lines").await, lines - 1, "the event basket's cap line went with it");

    // Deleting a basket.
    app.submit(&bob, &format!("/baskets/{event}"), &[("action", "delete")]).await;
    assert_eq!(app.page(&bob, &format!("/baskets/{event}")).await.0, 404);
    // Sent again from its page (a second click): the list says it is gone, not a missing page.
    let csrf = common::csrf_of(&app.page(&bob, "/baskets").await.1);
    let (status, location, _) =
        app.post_raw(&bob, &format!("/baskets/{event}"), &[("csrf", &csrf), ("action", "delete")]).await;
    assert_eq!(status, 303);
    let page = app.shown(&bob, &location).await;
    assert!(page.contains(&format!("Nothing deleted: basket {event} is not among yours")), "{page}");
    app.stop().await;
}

/// The note a redirect carries ("Added: …") is for the session it was written in: a link
/// holding it, sent to another contact, shows them nothing, as it may quote what its sender
/// typed (a basket's name).
#[tokio::test]
async fn a_note_shows_only_in_the_session_it_was_written_for() {
    let app = app_with_stock().await;
    let bob = app.signed_in("P-1B").await;
    let loc = app.submit(&bob, "/baskets", &[("name", "Call 555-0100 to pay")]).await;
    let loc = app
        .submit(
            &bob,
            &loc,
            &[
                ("action", "save"),
                ("name", "Call 555-0100 to pay"),
                ("address_choice", "new"),
                ("address", "1 High St"),
            ],
        )
        .await;
    let note = loc.split_once('?').expect("a note").1.to_string();
    assert!(app.shown(&bob, &format!("/?{note}")).await.contains("Saved."), "{note}");
    let ann = app.signed_in("P-1A").await;
    assert!(
        !app.shown(&ann, &format!("/?{note}")).await.contains("Saved."),
        "another session shows no one else's note"
    );
    let again = app.signed_in("P-1B").await;
    assert!(
        !app.shown(&again, &format!("/?{note}")).await.contains("Saved."),
        "nor another session of the same contact"
    );
    app.stop().await;
}

#[tokio::test]
async fn roles_decide_who_orders() {
    let app = app_with_stock().await;
    let fay = app.signed_in("P-1F").await;
    assert_eq!(app.page(&fay, "/stock").await.0, 403, "finance has no stock pages");
    assert_eq!(app.page(&fay, "/users").await.0, 404);
    let vic = app.signed_in("P-1V").await;
    let html = app.shown(&vic, "/stock").await;
    assert!(!html.contains("class=\"inline add\""), "a viewer gets no add form");
    let (s, _, _) = app.post_form(&vic, "/stock", &[("sku", "SKU-TEE"), ("qty", "1"), ("basket", "new")]).await;
    assert_eq!(s, 403);
    // Told first that the role may not order, whatever else the form gets wrong.
    let (s, _, html) = app.post_form(&vic, "/stock", &[("sku", "SKU-TEE"), ("qty", "x"), ("basket", "")]).await;
    assert_eq!(s, 403, "{html}");
    assert_eq!(app.count("baskets").await, 0);
    let bob = app.signed_in("P-1B").await;
    assert_eq!(app.page(&bob, "/users").await.0, 404, "users are for admins");
    app.stop().await;
}

/// Adds that name no basket each make one, called after the minute: a second in the same
/// minute is numbered, never refused for a name its maker did not choose.
#[tokio::test]
async fn baskets_made_unnamed_in_the_same_minute_are_numbered() {
    let t = TestState::new(|_| {}).await;
    t.load(common::world()).await;
    // Named on Ann's clock: Tokyo is never UTC's day and hour.
    cport::store::on_db!(&t.state.db, p => sqlx::query("UPDATE contacts SET timezone = 'Asia/Tokyo' WHERE id = 'P-1A'")
        .execute(p).await.map(|_| ()))
    .unwrap();
    let ann = cport::store::contacts::get_contact(&t.state.db, "P-1A").await.unwrap();
    let ann = cport::actions::Actor::new(ann, cport::model::Channel::Portal);
    let now = Utc::now();
    let mut names = vec![];
    for _ in 0..3 {
        let id = cport::actions::orders::create_unnamed_basket(&t.state, &ann, now).await.unwrap();
        names.push(cport::store::orders::basket(&t.state.db, "P-1A", id).await.unwrap().name);
    }
    let base = format!("Basket {}", now.with_timezone(&chrono_tz::Asia::Tokyo).format("%-d %b %H:%M"));
    assert_eq!(names, [base.clone(), format!("{base} (2)"), format!("{base} (3)")]);
    // A zone Ann chose herself rules over TOT's for her, as it does for her digests.
    let mut s = cport::store::settings::get_settings(&t.state.db, "P-1A").await.unwrap();
    s.timezone = Some("America/Los_Angeles".into());
    cport::store::settings::save_preferences(&t.state.db, &s, now).await.unwrap();
    let id = cport::actions::orders::create_unnamed_basket(&t.state, &ann, now).await.unwrap();
    let name = cport::store::orders::basket(&t.state.db, "P-1A", id).await.unwrap().name;
    let theirs = now.with_timezone(&chrono_tz::America::Los_Angeles).format("%-d %b %H:%M");
    assert_eq!(name, format!("Basket {theirs}"));
}

/// Two people place the last units at once: exactly one order, the other told which line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_placements_of_the_last_units_one_wins() {
    let t = TestState::new(|_| {}).await;
    t.load(common::world()).await;
    t.load(json!({"stock": stock()})).await;
    let now = Utc::now();
    let actor = |id: &str| {
        let state = t.state.clone();
        let id = id.to_string();
        async move {
            let c = cport::store::contacts::get_contact(&state.db, &id).await.unwrap();
            cport::actions::Actor::new(c, cport::model::Channel::Portal)
        }
    };
    let (ann, bob) = (actor("P-1A").await, actor("P-1B").await);
    let mut baskets = vec![];
    for a in [&ann, &bob] {
        let b = cport::actions::orders::create_basket(&t.state, a, "Last ones", now).await.unwrap();
        cport::actions::orders::add(&t.state, a, Line { basket: b, sku: "SKU-TEE", qty: 8 }, now).await.unwrap();
        cport::actions::orders::add(&t.state, a, Line { basket: b, sku: "SKU-CAP", qty: 1 }, now).await.unwrap();
        cport::actions::orders::save_details(&t.state, a, b, "Last ones", "Somewhere 1", "", now).await.unwrap();
        baskets.push(b);
    }
    let (s1, s2) = (t.state.clone(), t.state.clone());
    let (a1, a2) = (ann.clone(), bob.clone());
    let (b1, b2) = (baskets[0], baskets[1]);
    let one = tokio::spawn(async move { cport::actions::orders::place(&s1, &a1, b1, Utc::now()).await });
    let two = tokio::spawn(async move { cport::actions::orders::place(&s2, &a2, b2, Utc::now()).await });
    let results = [one.await.unwrap(), two.await.unwrap()];
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    let lost = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    match lost {
        cport::actions::orders::PlaceError::Short(lines) => {
            assert_eq!(lines.len(), 1, "only the tee fell short: {lines:?}");
            assert_eq!((lines[0].sku.as_str(), lines[0].wanted, lines[0].available), ("SKU-TEE", 8, 2));
        }
        other => panic!("expected a shortfall, got {other}"),
    }
    let orders = cport::store::orders::orders(&t.state.db, "C-1", None).await.unwrap();
    assert_eq!(orders.len(), 1);
    let item = cport::store::orders::stock_item(&t.state.db, "C-1", "SKU-TEE").await.unwrap();
    assert_eq!(item.available, 2);
}

#[tokio::test]
async fn a_third_party_sees_and_orders_only_what_was_allocated_until_revoked() {
    let app = app_with_stock().await;
    let ann = app.signed_in("P-1A").await;
    let (_, html) = app.page(&ann, "/users").await;
    assert!(html.contains("Add a third-party user"));
    let (s, _, html) = app
        .post_form(&ann, "/users", &[("action", "create"), ("name", "Rita Reseller"), ("email", "not-an-address")])
        .await;
    assert_eq!(s, 422);
    assert!(html.contains("email: is not an email address"), "{html}");
    app.submit(&ann, "/users", &[("action", "create"), ("name", "Rita Reseller"), ("email", "rita@resell.example")])
        .await;
    let rita = "TP-C-1-1";
    // The same person twice is refused, by the address, whatever its case.
    let html = app
        .post_refused(&ann, "/users", &[("action", "create"), ("name", "Rita again"), ("email", "RITA@resell.example")])
        .await;
    assert!(html.contains("email: RITA@resell.example already has an account here"), "{html}");
    // So is an address a contact of the client already signs in with.
    let html = app
        .post_refused(&ann, "/users", &[("action", "create"), ("name", "Bob again"), ("email", "bob@alpha.example")])
        .await;
    assert!(html.contains("email: bob@alpha.example already has an account here"), "{html}");
    // Another client's contact is refused without saying whose the address is.
    let html =
        app.post_refused(&ann, "/users", &[("action", "create"), ("name", "Zed"), ("email", "zed@beta.example")]).await;
    assert!(html.contains("email: zed@beta.example cannot be given an account"), "{html}");
    // A person's name is as long as anywhere else cport takes one: 200 characters.
    let long = "N".repeat(201);
    let html = app
        .post_refused(&ann, "/users", &[("action", "create"), ("name", &long), ("email", "long@resell.example")])
        .await;
    assert!(html.contains("name: longer than 200 characters"), "{html}");
    assert!(!html.contains("already has an account"), "{html}");
    // A user or stock line left empty is named, not looked up as one of no name.
    let html = app.post_refused(&ann, "/users", &[("action", "revoke"), ("user", "")]).await;
    assert!(html.contains("user: say which third-party user"), "{html}");
    let html = app.post_refused(&ann, "/users", &[("action", "allocate"), ("user", "TP-C-1-1"), ("sku", " ")]).await;
    assert!(html.contains("sku: say which stock line"), "{html}");
    // cport's own addresses reach no person: no account, no invitation mailed there.
    let own = app.state.config.email.from.clone();
    let own = own.rsplit('<').next().unwrap_or(&own).trim_end_matches('>').to_string();
    let reply = format!("reply+abc@{}", app.state.config.email.reply_domain);
    for address in [own.as_str(), reply.as_str()] {
        let html =
            app.post_refused(&ann, "/users", &[("action", "create"), ("name", "Loop"), ("email", address)]).await;
        assert!(
            html.contains("email: is cport&#x27;s own address") || html.contains("email: is cport's own address"),
            "{address}: {html}"
        );
    }
    // The same person added ten times at once is added once.
    let form = [("action", "create"), ("name", "Zed Third"), ("email", "zed@third.example")];
    futures::future::join_all((0..10).map(|_| app.post_form(&ann, "/users", &form))).await;
    let (n,): (i64,) = cport::store::on_db!(&app.db, p => sqlx::query_as(
        "SELECT COUNT(*) FROM contacts WHERE lower(email) = 'zed@third.example'").fetch_one(p).await)
    .unwrap();
    assert_eq!(n, 1, "one account for one address");
    // The invitation is queued to her.
    let rows = cport::store::outbox::list_messages(&app.db, None, 50).await.unwrap();
    let invites: Vec<_> = rows
        .iter()
        .filter(|m| m.message.recipient == "rita@resell.example" && m.message.subject.contains("invites you"))
        .collect();
    assert_eq!(invites.len(), 1);
    // The invitation chooses a password, once; then she signs in with it.
    let p: cport::channels::email::EmailPayload = serde_json::from_str(&invites[0].message.payload).unwrap();
    let link = p.text.split_whitespace().find(|w| w.contains("token=")).unwrap();
    let path = format!("/password/reset?{}", link.split('?').nth(1).unwrap());
    let ((first, _), again) = app.choose_password_twice(&common::browser(), &path, "ritas own password").await;
    assert_eq!(first, 303);
    assert_eq!(again, 400, "the invitation works once");
    let (s, loc, _) = app
        .post_form(
            &common::browser(),
            "/login",
            &[("email", "rita@resell.example"), ("password", "ritas own password")],
        )
        .await;
    assert_eq!((s, loc.as_str()), (303, "/"));
    app.submit(&ann, "/users", &[("action", "allocate"), ("user", rita), ("sku", "SKU-CAP")]).await;
    let location = app.submit(&ann, "/users", &[("action", "allocate"), ("user", rita), ("sku", "SKU-CAP")]).await;
    let page = app.shown(&ann, &location).await;
    assert!(page.contains(&format!("SKU-CAP was allocated to {rita} already.")), "{page}");
    let (s, _, _) = app.post_form(&ann, "/users", &[("action", "allocate"), ("user", rita), ("sku", "SKU-BAG")]).await;
    assert_eq!(s, 404, "another client's SKU cannot be allocated");

    let r = app.signed_in(rita).await;
    let html = app.shown(&r, "/stock").await;
    assert!(html.contains("SKU-CAP") && !html.contains("SKU-TEE"), "only allocated SKUs");
    // And only their pictures, which Bob, a buyer, sees both of.
    let stock_pictures = app.dir.path().join("media").join("stock");
    std::fs::create_dir_all(&stock_pictures).unwrap();
    for sku in ["SKU-TEE", "SKU-CAP"] {
        std::fs::write(stock_pictures.join(format!("{sku}.svg")), "<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap();
    }
    let buyer = app.signed_in("P-1B").await;
    for (path, for_rita) in [("/media/stock/SKU-CAP.svg", 200), ("/media/stock/SKU-TEE.svg", 404)] {
        assert_eq!(app.page(&r, path).await.0, for_rita, "{path} for the third party");
        assert_eq!(app.page(&buyer, path).await.0, 200, "{path} for a buyer");
    }
    let (s, _, _) = app.post_form(&r, "/stock", &[("sku", "SKU-TEE"), ("qty", "1"), ("basket", "new")]).await;
    assert_eq!(s, 404, "an unallocated SKU cannot be ordered");
    let basket = new_basket(&app, &r, "SKU-CAP", "3", "Rita's").await;
    let path = format!("/baskets/{basket}");
    place(&app, &r, &path, "Rita's", "Rita's shop").await;
    let (_, html) = app.page(&r, "/orders").await;
    assert!(html.contains("Rita&#x27;s shop") || html.contains("Rita's shop"), "{html}");
    // Bob's orders are not Rita's to see.
    let bob = app.signed_in("P-1B").await;
    let basket = new_basket(&app, &bob, "SKU-TEE", "1", "B").await;
    let bpath = format!("/baskets/{basket}");
    place(&app, &bob, &bpath, "B", "Bob's place").await;
    let (_, html) = app.page(&r, "/orders").await;
    assert!(!html.contains("Bob"), "{html}");
    assert_eq!(app.page(&r, "/users").await.0, 404);
    assert_eq!(app.page(&r, "/visuals").await.0, 403);

    // TOT turns third-party ordering off: she can look but no longer order.
    app.put("clients", json!([{"id": "C-1", "name": "Alpha Ltd", "third_party_ordering": false}])).await;
    let (s, _, _) = app.post_form(&r, "/stock", &[("sku", "SKU-CAP"), ("qty", "1"), ("basket", "new")]).await;
    assert_eq!(s, 403);
    app.put("clients", json!([{"id": "C-1", "name": "Alpha Ltd", "third_party_ordering": true}])).await;
    // Her basket offers her own past addresses, not the client's.
    let basket = new_basket(&app, &r, "SKU-CAP", "1", "Next").await;
    let (_, html) = app.page(&r, &format!("/baskets/{basket}")).await;
    assert!(
        html.contains("<option value=\"Rita&#x27;s shop\">") || html.contains("<option value=\"Rita's shop\">"),
        "{html}"
    );
    assert!(!html.contains("Bob&#x27;s place") && !html.contains("Bob's place"));
    // A SKU taken back from her stays in her basket to be removed, showing nothing of the stock.
    app.submit(&ann, "/users", &[("action", "unallocate"), ("user", rita), ("sku", "SKU-CAP")]).await;
    let location = app.submit(&ann, "/users", &[("action", "unallocate"), ("user", rita), ("sku", "SKU-CAP")]).await;
    assert!(app.shown(&ann, &location).await.contains("nothing to take back"), "{location}");
    let (_, html) = app.page(&r, &format!("/baskets/{basket}")).await;
    assert!(html.contains("SKU-CAP") && html.contains("no longer allocated to you"), "{html}");
    assert!(!html.contains("Cap, embroidered") && !html.contains("SKU-CAP.svg"), "{html}");
    // Changing its quantity from a page left open: said on the basket, which still opens.
    let (s, _, html) =
        app.post_form(&r, &format!("/baskets/{basket}"), &[("action", "qty"), ("sku", "SKU-CAP"), ("qty", "5")]).await;
    assert_eq!(s, 404, "{html}");
    assert!(html.contains("not found among what you may order") && html.contains("name=\"csrf\""), "{html}");

    // Revoked: her session ends at once, and a placing already past the sign-in check (the
    // revoke lands between it and the order) sees the revoke in its own transaction.
    let before = cport::store::contacts::get_contact(&app.db, rita).await.unwrap();
    // An id with a control character is refused by name, as allocating refuses it; one
    // padded with spaces is the user's.
    let html =
        app.post_refused(&ann, "/users", &[("action", "revoke"), ("user", format!("{rita}\u{7}").as_str())]).await;
    assert!(html.contains("user: "), "{html}");
    app.submit(&ann, "/users", &[("action", "revoke"), ("user", format!(" {rita} ").as_str())]).await;
    // Again, from a page left open: told it was done before, and nothing more is recorded.
    let events = app.changes(0).await.len();
    let location = app.submit(&ann, "/users", &[("action", "revoke"), ("user", rita)]).await;
    assert!(app.shown(&ann, &location).await.contains(&format!("{rita} was revoked already.")), "{location}");
    let (s, _, html) =
        app.post_form(&ann, "/users", &[("action", "allocate"), ("user", rita), ("sku", "SKU-CAP")]).await;
    assert!(html.contains(&format!("user {rita} was revoked; a revoked user takes no SKUs")), "{s}: {html}");
    assert_eq!(s, 409, "a conflict, as every form's and the API's are: {html}");
    assert_eq!(app.changes(0).await.len(), events);
    let stale = cport::actions::Actor::new(before, cport::model::Channel::Portal);
    let placed = cport::actions::orders::place(&app.state, &stale, basket.parse().unwrap(), chrono::Utc::now()).await;
    assert!(
        matches!(&placed, Err(cport::actions::orders::PlaceError::Action(e)) if e.to_string().contains("revoked")),
        "{placed:?}"
    );
    let resp = r.get(app.url("/stock")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303, "sent to sign in");
    // Her SKUs may still be taken away (they would come back with her otherwise).
    app.submit(&ann, "/users", &[("action", "unallocate"), ("user", rita), ("sku", "SKU-CAP")]).await;
    let gone = app.changes(0).await;
    assert!(gone.iter().any(|e| e["kind"] == "sku_unallocated" && e["data"]["user_id"] == rita), "{gone:?}");
    // Someone invited and revoked before choosing a password: the invitation is dead, and
    // sending its form anyway sets nothing.
    app.submit(&ann, "/users", &[("action", "create"), ("name", "Tom Trader"), ("email", "tom@trade.example")]).await;
    let rows = cport::store::outbox::list_messages(&app.db, None, 100).await.unwrap();
    let invite = rows.iter().find(|m| m.message.recipient == "tom@trade.example").expect("Tom's invitation");
    let p: cport::channels::email::EmailPayload = serde_json::from_str(&invite.message.payload).unwrap();
    let link = p.text.split_whitespace().find(|w| w.contains("token=")).unwrap();
    let token = link.split("token=").nth(1).unwrap().to_string();
    let path = format!("/password/reset?token={token}");
    let tom = common::browser();
    let (_, form) = app.page(&tom, &path).await;
    let csrf = csrf_of(&form);
    let tom_id = invite.message.contact_id.clone().expect("Tom's id");
    app.submit(&ann, "/users", &[("action", "revoke"), ("user", &tom_id)]).await;
    assert_eq!(app.page(&tom, &path).await.0, 400, "the invitation of a revoked user opens nothing");
    let set = [
        ("csrf", csrf.as_str()),
        ("token", token.as_str()),
        ("new_password", "toms password 1"),
        ("confirm_password", "toms password 1"),
    ];
    assert_eq!(app.post_raw(&tom, "/password/reset", &set).await.0, 400);
    let accounts = app.count(&format!("accounts WHERE contact_id = '{tom_id}'")).await;
    assert_eq!(accounts, 0, "no password was set");
    let kinds: Vec<String> = app.changes(0).await.iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect();
    for k in ["third_party_user_created", "sku_allocated", "reseller_order_placed", "third_party_user_revoked"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    app.stop().await;
}

/// With third-party ordering turned off, an admin still sees their third-party users and can
/// take access away (revoke, un-allocate), but adds and allocates nothing.
#[tokio::test]
async fn with_ordering_off_an_admin_can_still_take_access_away() {
    let app = app_with_stock().await;
    let ann = app.signed_in("P-1A").await;
    app.submit(&ann, "/users", &[("action", "create"), ("name", "Rita Reseller"), ("email", "rita@resell.example")])
        .await;
    let sku = stock()[0]["sku"].as_str().unwrap().to_string();
    app.submit(&ann, "/users", &[("action", "allocate"), ("user", "TP-C-1-1"), ("sku", &sku)]).await;
    app.synced("clients", json!([{"id": "C-1", "name": "Alpha Ltd", "third_party_ordering": false}])).await;
    let (_, html) = app.page(&ann, "/users").await;
    assert!(html.contains("not enabled") && html.contains("Rita Reseller"), "{html}");
    assert!(!html.contains("value=\"allocate\"") && !html.contains("value=\"create\""), "{html}");
    let (status, _, _) =
        app.post_form(&ann, "/users", &[("action", "create"), ("name", "Sam"), ("email", "sam@resell.example")]).await;
    assert_eq!(status, 403, "none added");
    app.submit(&ann, "/users", &[("action", "unallocate"), ("user", "TP-C-1-1"), ("sku", &sku)]).await;
    app.submit(&ann, "/users", &[("action", "revoke"), ("user", "TP-C-1-1")]).await;
    let kinds: Vec<String> = app.changes(0).await.iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect();
    assert!(kinds.ends_with(&["sku_unallocated".to_string(), "third_party_user_revoked".to_string()]), "{kinds:?}");
    // TOT's next update of her contact (it learned of her from the feed) does not undo the
    // admin's revoke.
    app.synced(
        "contacts",
        json!([{"id": "TP-C-1-1", "client_id": "C-1", "name": "Rita Reseller-Smith", "email": "rita@resell.example",
                "role": "third_party", "active": true}]),
    )
    .await;
    assert_eq!(app.count("contacts WHERE id = 'TP-C-1-1' AND active").await, 0, "still revoked");
    let (_, html) = app.page(&ann, "/users").await;
    assert!(html.contains("Rita Reseller-Smith") && html.contains("revoked"), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn a_new_third_party_user_never_takes_an_id_already_in_use() {
    let app = app_with_stock().await;
    // TOT's records already hold a contact with the id the first user cport makes would get.
    app.synced(
        "contacts",
        json!([{"id": "TP-C-1-1", "client_id": "C-1", "name": "Rex Reseller", "email": "rex@resell.example",
                "role": "viewer"}]),
    )
    .await;
    let ann = app.signed_in("P-1A").await;
    app.submit(&ann, "/users", &[("action", "create"), ("name", "Rita Reseller"), ("email", "rita@resell.example")])
        .await;
    let (_, html) = app.page(&ann, "/users").await;
    assert!(html.contains("Rita Reseller"), "{html}");
    let feed = app.changes(0).await;
    let made = feed.iter().find(|e| e["kind"] == "third_party_user_created").expect("in the feed");
    assert_eq!(made["subject_id"], "TP-C-1-2", "{made}");
    // TOT deletes Rita's contact once it has learned of her: her id is never given to the
    // next person (who would see the orders placed under it).
    let r = app
        .http
        .delete(app.url("/api/v1/contacts"))
        .bearer_auth(common::TOKEN)
        .json(&json!({"ids": ["TP-C-1-2"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    app.submit(&ann, "/users", &[("action", "create"), ("name", "Sam Seller"), ("email", "sam@resell.example")]).await;
    let feed = app.changes(0).await;
    let ids: Vec<&str> = feed
        .iter()
        .filter(|e| e["kind"] == "third_party_user_created")
        .filter_map(|e| e["subject_id"].as_str())
        .collect();
    assert_eq!(ids, ["TP-C-1-2", "TP-C-1-3"]);
    app.stop().await;
}

/// A third-party user's id stays an id TOT's sync may name (at most 64 characters), even for
/// a client whose own id takes all 64.
#[tokio::test]
async fn a_third_party_id_fits_in_an_id_for_a_long_client_id() {
    let t = TestState::new(|_| {}).await;
    let client = format!("C-{}", "X".repeat(62));
    let mut tx = t.state.db.begin().await.unwrap();
    let id = cport::store::orders::next_third_party_id(&mut tx, &client).await.unwrap();
    tx.rollback().await.unwrap();
    let mut errs = vec![];
    cport::model::check_id("id", &id, &mut errs);
    assert!(errs.is_empty(), "{id}: {errs:?}");
    assert!(id.starts_with("TP-C-XX") && id.ends_with("-1"), "{id}");
}

/// A double click on "Add" adds once and makes one new basket: the page's once-value is
/// taken by the first sending, and the second is told. Another line added from the same page
/// (the back button) is its own form and goes.
#[tokio::test]
async fn a_double_click_on_add_adds_once_and_makes_one_basket() {
    let app = app_with_stock().await;
    let bob = app.signed_in("P-1B").await;
    let html = app.shown(&bob, "/stock").await;
    let once = html.split("name=\"once\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_string();
    let csrf = common::csrf_of(&html);
    let add = |sku: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("once", once.clone()),
            ("sku", sku.into()),
            ("qty", "3".into()),
            ("basket", "new".into()),
        ]
    };
    let send = |fields: [(&'static str, String); 5]| {
        let bob = bob.clone();
        let url = app.url("/stock");
        async move {
            let r = bob.post(url).form(&fields).send().await.unwrap();
            (
                r.status().as_u16(),
                r.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default(),
            )
        }
    };
    let (one, two) = tokio::join!(send(add("SKU-TEE")), send(add("SKU-TEE")));
    assert_eq!((one.0, two.0), (303, 303));
    let told = [&one.1, &two.1].into_iter().filter(|l| l.starts_with("/baskets?")).count();
    assert_eq!(told, 1, "one of the two is told it was sent already: {one:?} {two:?}");
    assert_eq!(app.count("baskets").await, 1, "one new basket");
    assert_eq!(app.count("basket_lines WHERE qty = 3").await, 1, "three added once");
    let said = app.shown(&bob, if one.1.starts_with("/baskets?") { &one.1 } else { &two.1 }).await;
    assert!(said.contains("That form was sent already"), "{said}");
    // Another line from the same page is a form of its own.
    let (status, location) = send(add("SKU-CAP")).await;
    assert!(status == 303 && location.starts_with("/baskets/"), "{location}");
    app.stop().await;
}
