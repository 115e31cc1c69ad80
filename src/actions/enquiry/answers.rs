//! The enquiry commands: one function per command, each reading what the contact may see
//! and answering with titled tables: fourteen short functions, one per command, in the
//! order of the command table.

use super::{Answer, Ask, Section};
use crate::actions::commands::help_text;
use crate::actions::items::current;
use crate::actions::{ActionError, Unit, found};
use crate::model::Money;
use crate::model::items::{ActionItem, Category};
use crate::store::{enquiries as q, jobs};

fn d(date: Option<chrono::NaiveDate>) -> String {
    date.map(|d| d.to_string()).unwrap_or_else(|| "-".into())
}

fn money(minor: i64) -> String {
    Money(minor).to_string()
}

pub(super) fn help(a: &Ask<'_>) -> Result<Answer, ActionError> {
    let Ask { name, actor, .. } = *a;
    Ok(Answer::ok(
        name,
        "Commands you can reply with (one per line):",
        vec![Section::text(help_text(actor.role).lines().map(str::to_string).collect())],
    ))
}

pub(super) async fn items(a: &Ask<'_>, unit: &Unit) -> Result<Answer, ActionError> {
    let Ask { actor, name, .. } = *a;
    let mut items = current(a.state, &actor.contact).await?;
    items.retain(|i| !unit.is_closed(&i.key()));
    Ok(if items.is_empty() {
        Answer::ok(name, "Nothing needs you right now.", vec![])
    } else {
        let heading = format!("{}:", crate::messages::compose::need_you(items.len()));
        Answer::listing(name, heading, &["", "Item", "Date", "Reply"], &items, |i| {
            // An item whose id no command can name is answered on the portal.
            let reply = i.command.clone().unwrap_or_else(|| "(on the portal)".into());
            vec![i.category.code().into(), i.title.clone(), d(i.date), reply]
        })
    })
}

/// The rows a whole-list answer shows (30 in email and chat; the portal's page asks for its
/// own), and what its heading adds when there are more: a client with thousands of open jobs
/// is not sent them all in one reply.
fn first_rows<'l, T>(a: &Ask<'_>, list: &'l [T]) -> (&'l [T], String) {
    let most = usize::try_from(a.ctx.limit(30)).unwrap_or(30).max(1);
    match list.len() > most {
        true => (&list[..most], format!(", the first {most} here (the portal lists every one)")),
        false => (list, String::new()),
    }
}

pub(super) async fn jobs(a: &Ask<'_>) -> Result<Answer, ActionError> {
    let Ask { name, db, client, .. } = *a;
    let all = jobs::list_open_jobs(db, client).await?;
    let (list, more) = first_rows(a, &all);
    let heading = format!("{} open job(s){more}:", all.len());
    Ok(Answer::listing(name, heading, &["Job", "Name", "Status", "Required", "Your ref"], list, |j| {
        vec![
            j.id.clone(),
            j.name.clone(),
            j.status.words(),
            d(j.date_required),
            j.client_ref.clone().unwrap_or_default(),
        ]
    }))
}

/// Where a record's pictures are seen: a line with the signed link to its portal page (which
/// shows them; the portal's own page leaves the line out, as it does every signed link).
fn pictures(a: &Ask<'_>, count: usize, of_what: &str, page: &str, id: &str) -> Option<Section> {
    (count > 0).then(|| {
        let link = a.link(&format!("/{page}/{}", crate::model::segment(id)));
        Section::text(vec![format!("{count} picture(s) {of_what}, on its page: {link}")])
    })
}

pub(super) async fn job(a: &Ask<'_>, id: &str) -> Result<Answer, ActionError> {
    let Ask { name, db, client, .. } = *a;
    let j = found(jobs::get_job(db, client, id).await, || format!("job {id}"))?;
    let mut sections = vec![Section::text(vec![
        format!("Status: {}", j.status.words()),
        format!("Date required: {}", d(j.date_required)),
        format!("Order: {}", j.order_id.clone().unwrap_or_else(|| "-".into())),
        format!("Contact: {}", j.contact_name.clone().unwrap_or_else(|| "-".into())),
        format!("Your ref: {}", j.client_ref.clone().unwrap_or_else(|| "-".into())),
    ])];
    sections.extend(Section::listed(
        "Processes",
        &["Status", "Process", "Position", "Date", "Qty", "Unit price"],
        q::process_lines(db, id).await?,
        |p| vec![p.status, p.process, p.position, d(p.process_date), p.qty.to_string(), money(p.unit_price)],
    ));
    for (table, heading) in [("job_art_costs", "Art costs"), ("job_blank_garments", "Blank garments")] {
        sections.extend(Section::listed(
            heading,
            &["Description", "Qty", "Unit price", "Total"],
            q::cost_lines(db, table, id).await?,
            |c| {
                let total = crate::model::line_total(c.qty, c.unit_price);
                vec![c.description, c.qty.to_string(), money(c.unit_price), money(total)]
            },
        ));
    }
    sections.extend(Section::listed(
        "Printed garments",
        &["Description", "Expected", "Produced"],
        jobs::list_garment_lines(db, id).await?,
        |g| vec![g.description, g.expected_qty.to_string(), g.produced_qty.to_string()],
    ));
    sections.extend(Section::listed(
        "Deliveries",
        &["Delivery", "Status", "Date", "Venue"],
        q::job_deliveries(db, client, id).await?,
        |x| vec![x.id, x.status.to_string(), d(x.delivery_date), x.venue],
    ));
    sections.extend(pictures(a, q::job_pictures(db, client, id).await?.len(), "of its processes", "jobs", id));
    Ok(Answer::ok(name, format!("Job {}: {}", j.id, j.name), sections))
}

pub(super) async fn track(a: &Ask<'_>, id: &str) -> Result<Answer, ActionError> {
    let Ask { state, actor, name, db, client, .. } = *a;
    let x = found(q::delivery(db, client, id).await, || format!("delivery {id}"))?;
    let mut lines = vec![
        format!("Status: {}", x.status),
        format!("Delivery date: {}", d(x.delivery_date)),
        format!("Sent: {}", d(x.sent_date)),
        format!("To: {}", x.venue),
        format!("What: {}", x.description),
    ];
    // Who receives it and the client's own reference for it, when TOT gave them.
    for (label, value) in [("Contact", &x.contact), ("Your ref", &x.client_ref)] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            lines.push(format!("{label}: {v}"));
        }
    }
    if let (Some(c), Some(n)) = (&x.tracking_carrier, &x.tracking_number) {
        lines.push(format!(
            "Tracking: {c} {n}{}",
            x.tracking_url.as_ref().map(|u| format!(" ({u})")).unwrap_or_default()
        ));
    }
    if let Some(at) = x.pod_signed_at {
        // On the contact's clock, as every other time they are shown, its zone named.
        let at = at.with_timezone(&crate::actions::targets::contact_clock(state, &actor.contact).await?);
        lines.push(format!(
            "Delivered: signed {} by courier {}{}, {} box(es)",
            at.format("%Y-%m-%d %H:%M %Z"),
            x.pod_courier.clone().unwrap_or_default(),
            x.pod_courier_worker.as_ref().map(|w| format!(" ({w})")).unwrap_or_default(),
            x.pod_boxes.unwrap_or(0)
        ));
    }
    let mut sections = vec![Section::text(lines)];
    sections.extend(Section::listed("Lines", &["Description", "Qty"], q::delivery_lines(db, id).await?, |(d, q)| {
        vec![d, q.to_string()]
    }));
    sections.extend(Section::listed(
        "Packing",
        &["Container", "Contents", "Qty"],
        q::delivery_packing(db, id).await?,
        |(c, d, q)| vec![c, d, q.to_string()],
    ));
    sections.extend(Section::listed(
        "Costs",
        &["Cost", "Description", "Price"],
        q::delivery_costs(db, id).await?,
        |(t, d, p)| vec![t, d, money(p)],
    ));
    Ok(Answer::ok(name, format!("Delivery {}", x.id), sections))
}

pub(super) async fn deliveries(a: &Ask<'_>) -> Result<Answer, ActionError> {
    let Ask { ctx, name, db, client, .. } = *a;
    let list = q::deliveries(db, client, ctx.limit(20)).await?;
    let heading =
        if list.len() == 1 { "1 recent delivery:".to_string() } else { format!("{} recent deliveries:", list.len()) };
    let columns = ["Delivery", "Status", "Date", "Sent", "Venue", "What", "Contact", "Your ref", "Tracking"];
    Ok(Answer::listing(name, heading, &columns, &list, |x| {
        vec![
            x.id.clone(),
            x.status.to_string(),
            d(x.delivery_date),
            d(x.sent_date),
            x.venue.clone(),
            x.description.clone(),
            x.contact.clone().unwrap_or_default(),
            x.client_ref.clone().unwrap_or_default(),
            x.tracking_number.clone().unwrap_or_default(),
        ]
    }))
}

pub(super) async fn stock(a: &Ask<'_>, own: bool, text: Option<&str>) -> Result<Answer, ActionError> {
    let Ask { ctx, name, db, client, .. } = *a;
    let list = q::stock(db, own.then_some(client), text, ctx.limit(30)).await?;
    let what = if own { "stock line(s)" } else { "blank stock line(s)" };
    let matching = text.as_ref().map(|t| format!(" matching {}", crate::model::quoted(t))).unwrap_or_default();
    let columns = ["SKU", "Your SKU", "Description", "Balance", "Expected", "Accounted for", "Available"];
    Ok(Answer::listing(name, format!("{} {what}{matching}:", list.len()), &columns, &list, |s| {
        vec![
            s.sku.clone(),
            s.client_sku.clone().unwrap_or_default(),
            s.description.clone(),
            s.warehouse_balance.to_string(),
            s.expected.to_string(),
            s.accounted_for.to_string(),
            s.available_to_order.to_string(),
        ]
    }))
}

pub(super) async fn pos(a: &Ask<'_>) -> Result<Answer, ActionError> {
    let Ask { ctx, name, db, client, .. } = *a;
    let list = q::purchase_orders(db, client, ctx.limit(30)).await?;
    let heading = format!("{} purchase order(s):", list.len());
    let columns = ["PO", "Status", "Ordered", "TOT ref", "Your ref", "Category", "Type", "Supplier"];
    Ok(Answer::listing(name, heading, &columns, &list, |p| {
        vec![
            p.id.clone(),
            p.status.words(),
            p.date_ordered.to_string(),
            p.tot_ref.clone(),
            p.client_ref.clone().unwrap_or_default(),
            p.category.clone(),
            p.po_type.clone(),
            p.supplier.clone(),
        ]
    }))
}

pub(super) async fn po(a: &Ask<'_>, id: &str) -> Result<Answer, ActionError> {
    let Ask { name, db, client, .. } = *a;
    let p = found(q::purchase_order(db, client, id).await, || format!("purchase order {id}"))?;
    let mut sections = vec![Section::text(vec![
        format!("Status: {}", p.status.words()),
        format!("Ordered: {} by {}", p.date_ordered, p.placed_by.clone().unwrap_or_else(|| "-".into())),
        format!("TOT ref {}, your ref {}", p.tot_ref, p.client_ref.clone().unwrap_or_else(|| "-".into())),
        format!("{} / {} from {}", p.category, p.po_type, p.supplier),
    ])];
    let lines = q::po_lines(db, id).await?;
    sections.push(Section::table(
        Some("Lines"),
        &["Status", "SKU", "Description", "Ordered", "Received", "Cancelled", "Outstanding"],
        lines
            .iter()
            .map(|l| {
                vec![
                    // As words, as the order's own status is: "part received".
                    l.status.replace('_', " "),
                    l.sku.clone(),
                    l.description.clone(),
                    l.ordered.to_string(),
                    l.received.to_string(),
                    l.cancelled.to_string(),
                    (l.ordered - l.received - l.cancelled).to_string(),
                ]
            })
            .collect(),
    ));
    sections.extend(Section::listed(
        "Receipts",
        &["Received", "Signed by", "Checked", "Check", "Checked by", "Outers", "Handling"],
        q::po_receipts(db, id).await?,
        |r| {
            vec![
                r.date_received.to_string(),
                r.signed_by,
                d(r.date_checked),
                r.check_category.unwrap_or_default(),
                r.checked_by.unwrap_or_default(),
                r.outers.to_string(),
                money(r.handling_cost),
            ]
        },
    ));
    sections.extend(pictures(a, q::po_pictures(db, client, id).await?.len(), "from its checking", "pos", id));
    Ok(Answer::ok(name, format!("Purchase order {}", p.id), sections))
}

pub(super) async fn invoices(a: &Ask<'_>) -> Result<Answer, ActionError> {
    let Ask { ctx, name, db, client, .. } = *a;
    let list = q::invoices(db, client, ctx.limit(30)).await?;
    let cur = q::client_currency(db, client).await?;
    let heading = format!("{} invoice(s), amounts in {cur}:", list.len());
    let columns = ["Status", "Invoice", "Date", "Your PO", "Job", "Total", "Paid", "Outstanding"];
    Ok(Answer::listing(name, heading, &columns, &list, |i| {
        let status = if i.total < 0 {
            if crate::model::outstanding(i.total, i.paid) == 0 { "credit used" } else { "credit" }
        } else if i.paid >= i.total {
            "paid"
        } else if i.paid > 0 {
            "part paid"
        } else {
            "unpaid"
        };
        vec![
            status.into(),
            i.id.clone(),
            i.date.to_string(),
            i.client_po_ref.clone().unwrap_or_default(),
            i.job_name.clone(),
            money(i.total),
            money(i.paid),
            money(crate::model::outstanding(i.total, i.paid)),
        ]
    }))
}

pub(super) async fn balance(a: &Ask<'_>) -> Result<Answer, ActionError> {
    let Ask { name, db, client, .. } = *a;
    Ok(match q::aging(db, client).await? {
        Some(a) => Answer::ok(
            name,
            format!("Your account on {} ({}):", a.as_of, a.currency),
            vec![match a.credit_limit {
                Some(limit) => Section::table(
                    None,
                    &["Total owed", "Over 30 days", "Over 60 days", "Over 90 days", "Credit limit"],
                    vec![vec![
                        money(a.current_balance),
                        money(a.over_30),
                        money(a.over_60),
                        money(a.over_90),
                        money(limit),
                    ]],
                ),
                None => Section::table(
                    None,
                    &["Total owed", "Over 30 days", "Over 60 days", "Over 90 days"],
                    vec![vec![money(a.current_balance), money(a.over_30), money(a.over_60), money(a.over_90)]],
                ),
            }],
        ),
        None => Answer::ok(name, "No account summary from TOT yet.", vec![]),
    })
}

pub(super) async fn prices(a: &Ask<'_>) -> Result<Answer, ActionError> {
    let Ask { state, actor, now, name, db, client, .. } = *a;
    // The card in force today on the contact's clock: a new card starts at their midnight.
    let today = crate::actions::targets::today_of(state, &actor.contact, now).await?;
    Ok(match q::price_card(db, client, today).await? {
        Some((card, from, lines)) => {
            let cur = q::client_currency(db, client).await?;
            let heading = format!("{card} (from {from}, {cur}):");
            Answer::listing(name, heading, &["Code", "Description", "Unit", "Min qty", "Price"], &lines, |l| {
                vec![l.code.clone(), l.description.clone(), l.unit.clone(), l.min_qty.to_string(), money(l.price)]
            })
        }
        None => Answer::ok(name, "No price card yet.", vec![]),
    })
}

pub(super) async fn art(a: &Ask<'_>) -> Result<Answer, ActionError> {
    let Ask { name, db, client, .. } = *a;
    let all = crate::store::items::list_missing_art(db, &[client]).await?;
    if all.is_empty() {
        return Ok(Answer::ok(name, "TOT is not waiting for any artwork from you.", vec![]));
    }
    let (list, more) = first_rows(a, &all);
    let heading = format!("TOT is waiting for {} piece(s) of artwork{more}:", all.len());
    Ok(Answer::listing(name, heading, &["Art due", "Description", "Design", "Job", "Received"], list, |a| {
        vec![d(a.art_due), a.description.clone(), a.design_id.clone(), a.job_id.clone(), "no".into()]
    }))
}

pub(super) async fn visuals(a: &Ask<'_>, unit: &Unit) -> Result<Answer, ActionError> {
    let Ask { name, db, client, .. } = *a;
    let mut list = crate::store::items::list_pending_visuals(db, &[client]).await?;
    list.retain(|v| !unit.is_closed(&ActionItem::key_of(Category::VisualApproval, &v.id)));
    if list.is_empty() {
        return Ok(Answer::ok(name, "No visual is awaiting approval.", vec![]));
    }
    let (shown, more) = first_rows(a, &list);
    let rows =
        shown.iter().map(|v| vec![v.id.clone(), v.job_name.clone(), v.category.clone(), d(v.date_required)]).collect();
    Ok(Answer::ok(
        name,
        format!("{} visual(s) awaiting approval{more}:", list.len()),
        vec![
            Section::table(None, &["Visual", "Job", "Category", "Needed by"], rows),
            Section::text(vec![format!("Review them: {}", a.link("/visuals"))]),
        ],
    ))
}
