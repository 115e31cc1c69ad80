//! Running a parsed command for a contact: enquiries return typed answers (titled tables a
//! channel renders its own way), actions call the same functions as the portal.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::commands::{Command, help_text};
use super::{ActionError, Actor};
use crate::actions::items::{Category, for_contact};
use crate::model::{Money, Role};
use crate::services::Services;
use crate::store::{StoreError, enquiries as q, jobs};

/// One answer to one command.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The command as understood, e.g. `TRACK D-2001`.
    pub command: String,
    pub ok: bool,
    pub title: String,
    pub sections: Vec<Section>,
}

/// A block of an answer: a few lines of text and/or a table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Section {
    pub heading: Option<String>,
    pub lines: Vec<String>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Section {
    fn text(lines: Vec<String>) -> Section {
        Section {
            lines,
            ..Default::default()
        }
    }
    fn table(heading: Option<&str>, columns: &[&str], rows: Vec<Vec<String>>) -> Section {
        Section {
            heading: heading.map(str::to_string),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            ..Default::default()
        }
    }
}

impl Answer {
    fn ok(command: &str, title: impl Into<String>, sections: Vec<Section>) -> Answer {
        Answer {
            command: command.into(),
            ok: true,
            title: title.into(),
            sections,
        }
    }
    /// A refusal. Where the list of commands is, each channel says its own way (the email
    /// answer's footer, a line in chat).
    pub fn error(command: &str, message: impl Into<String>) -> Answer {
        Answer {
            command: command.into(),
            ok: false,
            title: message.into(),
            sections: vec![],
        }
    }
    /// Plain text (email text part, logs, chat fallback).
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.title);
        for s in &self.sections {
            if let Some(h) = &s.heading {
                out.push_str(&format!("\n{h}\n"));
            }
            for l in &s.lines {
                out.push_str(&format!("{l}\n"));
            }
            if !s.columns.is_empty() {
                let widths: Vec<usize> = (0..s.columns.len())
                    .map(|i| {
                        s.rows
                            .iter()
                            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                            .chain([s.columns[i].len()])
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let fmt_row = |cells: &[String]| {
                    cells
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                        .collect::<Vec<_>>()
                        .join("  ")
                        .trim_end()
                        .to_string()
                };
                out.push_str(&fmt_row(&s.columns));
                out.push('\n');
                for r in &s.rows {
                    out.push_str(&fmt_row(r));
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// What a message is about, when it is about one item (an alert, a delegation).
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub item: Option<(Category, String)>,
    /// False when the link or reply token is too old to approve with (enquiries still work).
    pub may_decide: bool,
    /// How many rows a list may hold; 0 means the short lists email and chat show.
    pub list_limit: i64,
}

impl Context {
    fn limit(&self, default: i64) -> i64 {
        if self.list_limit > 0 { self.list_limit } else { default }
    }
}

fn d(date: Option<chrono::NaiveDate>) -> String {
    date.map(|d| d.to_string()).unwrap_or_else(|| "-".into())
}

/// Whether a role may run a command (and see the matching portal page).
pub fn allowed(role: Role, cmd: &Command) -> bool {
    use Command::*;
    match role {
        Role::Admin | Role::Viewer => true,
        Role::Buyer => !matches!(cmd, Invoices | Balance),
        Role::Finance => matches!(
            cmd,
            Help | Items | Invoices | Balance | Prices | Pos | Po(_) | Link | Reset
        ),
        Role::ThirdParty => matches!(cmd, Help | Link | Reset),
    }
}

/// Runs one command for one actor. Never fails for bad input: the answer says what was wrong.
pub async fn run(
    state: &Services,
    unit: &mut super::Unit,
    actor: &Actor,
    cmd: &Command,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Answer, StoreError> {
    let name = command_name(cmd);
    if !allowed(actor.role, cmd) {
        return Ok(Answer::error(
            &name,
            format!("{name} is not available to your role ({}).", actor.role),
        ));
    }
    match run_inner(state, unit, actor, cmd, ctx, now, &name).await {
        Ok(a) => Ok(a),
        Err(ActionError::Store(e)) => Err(e),
        Err(ActionError::NotFound(what)) => Ok(Answer::error(
            &name,
            format!("{what} not found. Check the id and try again."),
        )),
        Err(e) => Ok(Answer::error(&name, e.to_string())),
    }
}

/// [`run`] as a whole of its own (the portal's enquiry pages): what the command changes is
/// committed when it succeeds.
pub async fn run_alone(
    state: &Services,
    actor: &Actor,
    cmd: &Command,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Answer, StoreError> {
    let mut unit = super::Unit::new(state);
    match run(state, &mut unit, actor, cmd, ctx, now).await {
        Ok(a) => {
            unit.commit().await?;
            state.wake_dispatch.notify_waiters();
            Ok(a)
        }
        Err(e) => {
            unit.rollback().await?;
            Err(e)
        }
    }
}

pub fn command_name(cmd: &Command) -> String {
    use Command::*;
    match cmd {
        Help => "HELP".into(),
        Items => "ITEMS".into(),
        Jobs => "JOBS".into(),
        Job(i) => format!("JOB {i}"),
        Track(i) => format!("TRACK {i}"),
        Deliveries => "DELIVERIES".into(),
        Stock(t) => format!("STOCK {}", t.as_deref().unwrap_or("")).trim_end().into(),
        Blanks(t) => format!("BLANKS {}", t.as_deref().unwrap_or("")).trim_end().into(),
        Po(i) => format!("PO {i}"),
        Pos => "POS".into(),
        Invoices => "INVOICES".into(),
        Balance => "BALANCE".into(),
        Prices => "PRICES".into(),
        Art => "ART".into(),
        Visuals => "VISUALS".into(),
        Approve(ids) => format!("APPROVE {}", ids.join(", ")).trim_end().into(),
        Reject { id, .. } => format!("REJECT {}", id.as_deref().unwrap_or("")).trim_end().into(),
        NoDelivery(i) => format!("NODELIVERY {}", i.as_deref().unwrap_or("")).trim_end().into(),
        Link => "LINK".into(),
        Reset => "RESET".into(),
    }
}

fn context_id(ctx: &Context, want: Category, command: &str) -> Result<String, ActionError> {
    match &ctx.item {
        Some((cat, id)) if *cat == want => Ok(id.clone()),
        _ => Err(ActionError::invalid(
            command,
            "say which one, for example APPROVE V-1001",
        )),
    }
}

fn link(state: &Services, actor: &Actor, path: &str, now: DateTime<Utc>) -> String {
    state.portal_link(&actor.contact.id, path, now)
}

async fn run_inner(
    state: &Services,
    unit: &mut super::Unit,
    actor: &Actor,
    cmd: &Command,
    ctx: &Context,
    now: DateTime<Utc>,
    name: &str,
) -> Result<Answer, ActionError> {
    let client = actor.client_id();
    let db = &state.db;
    let money = |m: i64| Money(m).to_string();
    let refuse_old = || {
        ActionError::Forbidden(format!(
            "This email is too old to approve or reject from. Open a fresh link instead: {}",
            link(state, actor, "/visuals", now)
        ))
    };
    Ok(match cmd {
        Command::Help => Answer::ok(
            name,
            "Commands you can reply with (one per line):",
            vec![Section::text(help_text().lines().map(str::to_string).collect())],
        ),
        Command::Items => {
            let items = for_contact(db, &actor.contact).await?;
            if items.is_empty() {
                Answer::ok(name, "Nothing needs you right now.", vec![])
            } else {
                let rows = items
                    .iter()
                    .map(|i| vec![i.category.code().into(), i.title.clone(), d(i.date), i.command.clone()])
                    .collect();
                Answer::ok(
                    name,
                    format!("{} thing(s) need you:", items.len()),
                    vec![Section::table(None, &["", "Item", "Date", "Reply"], rows)],
                )
            }
        }
        Command::Jobs => {
            let list = jobs::list_open_jobs(db, client).await?;
            let rows = list
                .iter()
                .map(|j| {
                    vec![
                        j.id.clone(),
                        j.name.clone(),
                        j.status.replace('_', " "),
                        d(j.date_required),
                        j.client_ref.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            Answer::ok(
                name,
                format!("{} open job(s):", list.len()),
                vec![Section::table(
                    None,
                    &["Job", "Name", "Status", "Required", "Your ref"],
                    rows,
                )],
            )
        }
        Command::Job(id) => {
            let j = super::found(jobs::get_job(db, client, id).await, || format!("job {id}"))?;
            let mut sections = vec![Section::text(vec![
                format!("Status: {}", j.status.replace('_', " ")),
                format!("Date required: {}", d(j.date_required)),
                format!("Order: {}", j.order_id.clone().unwrap_or_else(|| "-".into())),
                format!("Contact: {}", j.contact_name.clone().unwrap_or_else(|| "-".into())),
                format!("Your ref: {}", j.client_ref.clone().unwrap_or_else(|| "-".into())),
            ])];
            let pl = q::process_lines(db, id).await?;
            if !pl.is_empty() {
                let rows = pl
                    .iter()
                    .map(|p| {
                        vec![
                            p.status.clone(),
                            p.process.clone(),
                            p.position.clone(),
                            d(p.process_date),
                            p.qty.to_string(),
                            money(p.unit_price),
                        ]
                    })
                    .collect();
                sections.push(Section::table(
                    Some("Processes"),
                    &["Status", "Process", "Position", "Date", "Qty", "Unit price"],
                    rows,
                ));
            }
            for (table, heading) in [("job_art_costs", "Art costs"), ("job_blank_garments", "Blank garments")] {
                let lines = q::cost_lines(db, table, id).await?;
                if !lines.is_empty() {
                    let rows = lines
                        .iter()
                        .map(|c| {
                            vec![
                                c.description.clone(),
                                c.qty.to_string(),
                                money(c.unit_price),
                                money(c.qty * c.unit_price),
                            ]
                        })
                        .collect();
                    sections.push(Section::table(
                        Some(heading),
                        &["Description", "Qty", "Unit price", "Total"],
                        rows,
                    ));
                }
            }
            let garments = jobs::list_garment_lines(db, id).await?;
            if !garments.is_empty() {
                let rows = garments
                    .iter()
                    .map(|g| {
                        vec![
                            g.description.clone(),
                            g.expected_qty.to_string(),
                            g.produced_qty.to_string(),
                        ]
                    })
                    .collect();
                sections.push(Section::table(
                    Some("Printed garments"),
                    &["Description", "Expected", "Produced"],
                    rows,
                ));
            }
            let dels = q::job_deliveries(db, client, id).await?;
            if !dels.is_empty() {
                let rows = dels
                    .iter()
                    .map(|x| vec![x.id.clone(), x.status.clone(), d(x.delivery_date), x.venue.clone()])
                    .collect();
                sections.push(Section::table(
                    Some("Deliveries"),
                    &["Delivery", "Status", "Date", "Venue"],
                    rows,
                ));
            }
            Answer::ok(name, format!("Job {}: {}", j.id, j.name), sections)
        }
        Command::Track(id) => {
            let x = super::found(q::delivery(db, client, id).await, || format!("delivery {id}"))?;
            let mut lines = vec![
                format!("Status: {}", x.status),
                format!("Delivery date: {}", d(x.delivery_date)),
                format!("Sent: {}", d(x.sent_date)),
                format!("To: {}", x.venue),
                format!("What: {}", x.description),
            ];
            if let (Some(c), Some(n)) = (&x.tracking_carrier, &x.tracking_number) {
                lines.push(format!(
                    "Tracking: {c} {n}{}",
                    x.tracking_url.as_ref().map(|u| format!(" ({u})")).unwrap_or_default()
                ));
            }
            if let Some(at) = x.pod_signed_at {
                lines.push(format!(
                    "Delivered: signed {} by courier {}{}, {} box(es)",
                    at.format("%Y-%m-%d %H:%M UTC"),
                    x.pod_courier.clone().unwrap_or_default(),
                    x.pod_courier_worker
                        .as_ref()
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default(),
                    x.pod_boxes.unwrap_or(0)
                ));
            }
            let items = q::delivery_lines(db, id).await?;
            let mut sections = vec![Section::text(lines)];
            if !items.is_empty() {
                sections.push(Section::table(
                    Some("Lines"),
                    &["Description", "Qty"],
                    items.into_iter().map(|(d, q)| vec![d, q.to_string()]).collect(),
                ));
            }
            let packing = q::delivery_packing(db, id).await?;
            if !packing.is_empty() {
                sections.push(Section::table(
                    Some("Packing"),
                    &["Container", "Contents", "Qty"],
                    packing.into_iter().map(|(c, d, q)| vec![c, d, q.to_string()]).collect(),
                ));
            }
            let costs = q::delivery_costs(db, id).await?;
            if !costs.is_empty() {
                sections.push(Section::table(
                    Some("Costs"),
                    &["Cost", "Description", "Price"],
                    costs.into_iter().map(|(t, d, p)| vec![t, d, money(p)]).collect(),
                ));
            }
            Answer::ok(name, format!("Delivery {}", x.id), sections)
        }
        Command::Deliveries => {
            let list = q::deliveries(db, client, ctx.limit(20)).await?;
            let rows = list
                .iter()
                .map(|x| {
                    vec![
                        x.id.clone(),
                        x.status.clone(),
                        d(x.delivery_date),
                        d(x.sent_date),
                        x.venue.clone(),
                        x.tracking_number.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            Answer::ok(
                name,
                format!("{} recent deliveries:", list.len()),
                vec![Section::table(
                    None,
                    &["Delivery", "Status", "Date", "Sent", "Venue", "Tracking"],
                    rows,
                )],
            )
        }
        Command::Stock(text) | Command::Blanks(text) => {
            let own = matches!(cmd, Command::Stock(_));
            let list = q::stock(db, own.then_some(client), text.as_deref(), ctx.limit(30)).await?;
            let rows = list
                .iter()
                .map(|s| {
                    vec![
                        s.sku.clone(),
                        s.client_sku.clone().unwrap_or_default(),
                        s.description.clone(),
                        s.warehouse_balance.to_string(),
                        s.expected.to_string(),
                        s.available_to_order.to_string(),
                    ]
                })
                .collect();
            let what = if own { "stock line(s)" } else { "blank stock line(s)" };
            Answer::ok(
                name,
                format!(
                    "{} {what}{}:",
                    list.len(),
                    text.as_ref().map(|t| format!(" matching \"{t}\"")).unwrap_or_default()
                ),
                vec![Section::table(
                    None,
                    &["SKU", "Your SKU", "Description", "Balance", "Expected", "Available"],
                    rows,
                )],
            )
        }
        Command::Pos => {
            let list = q::purchase_orders(db, client, ctx.limit(30)).await?;
            let rows = list
                .iter()
                .map(|p| {
                    vec![
                        p.id.clone(),
                        p.status.replace('_', " "),
                        p.date_ordered.to_string(),
                        p.tot_ref.clone(),
                        p.client_ref.clone().unwrap_or_default(),
                        p.supplier.clone(),
                    ]
                })
                .collect();
            Answer::ok(
                name,
                format!("{} purchase order(s):", list.len()),
                vec![Section::table(
                    None,
                    &["PO", "Status", "Ordered", "TOT ref", "Your ref", "Supplier"],
                    rows,
                )],
            )
        }
        Command::Po(id) => {
            let p = super::found(q::purchase_order(db, client, id).await, || {
                format!("purchase order {id}")
            })?;
            let mut sections = vec![Section::text(vec![
                format!("Status: {}", p.status.replace('_', " ")),
                format!(
                    "Ordered: {} by {}",
                    p.date_ordered,
                    p.placed_by.clone().unwrap_or_else(|| "-".into())
                ),
                format!(
                    "TOT ref {}, your ref {}",
                    p.tot_ref,
                    p.client_ref.clone().unwrap_or_else(|| "-".into())
                ),
                format!("{} / {} from {}", p.category, p.po_type, p.supplier),
            ])];
            let lines = q::po_lines(db, id).await?;
            sections.push(Section::table(
                Some("Lines"),
                &[
                    "Status",
                    "SKU",
                    "Description",
                    "Ordered",
                    "Received",
                    "Cancelled",
                    "Outstanding",
                ],
                lines
                    .iter()
                    .map(|l| {
                        vec![
                            l.status.clone(),
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
            let receipts = q::po_receipts(db, id).await?;
            if !receipts.is_empty() {
                sections.push(Section::table(
                    Some("Receipts"),
                    &[
                        "Received",
                        "Signed by",
                        "Checked",
                        "Check",
                        "Checked by",
                        "Outers",
                        "Handling",
                    ],
                    receipts
                        .iter()
                        .map(|r| {
                            vec![
                                r.date_received.to_string(),
                                r.signed_by.clone(),
                                d(r.date_checked),
                                r.check_category.clone().unwrap_or_default(),
                                r.checked_by.clone().unwrap_or_default(),
                                r.outers.to_string(),
                                money(r.handling_cost),
                            ]
                        })
                        .collect(),
                ));
            }
            Answer::ok(name, format!("Purchase order {}", p.id), sections)
        }
        Command::Invoices => {
            let list = q::invoices(db, client, ctx.limit(30)).await?;
            let cur = q::client_currency(db, client).await?;
            let rows = list
                .iter()
                .map(|i| {
                    let status = if i.total < 0 {
                        "credit"
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
                        money(i.total - i.paid),
                    ]
                })
                .collect();
            Answer::ok(
                name,
                format!("{} invoice(s), amounts in {cur}:", list.len()),
                vec![Section::table(
                    None,
                    &[
                        "Status",
                        "Invoice",
                        "Date",
                        "Your PO",
                        "Job",
                        "Total",
                        "Paid",
                        "Outstanding",
                    ],
                    rows,
                )],
            )
        }
        Command::Balance => match q::aging(db, client).await? {
            Some(a) => {
                let cur = q::client_currency(db, client).await?;
                Answer::ok(
                    name,
                    format!("Your account on {} ({cur}):", a.as_of),
                    vec![Section::table(
                        None,
                        &["Total owed", "Over 30 days", "Over 60 days", "Over 90 days"],
                        vec![vec![
                            money(a.current_balance),
                            money(a.over_30),
                            money(a.over_60),
                            money(a.over_90),
                        ]],
                    )],
                )
            }
            None => Answer::ok(name, "No account summary from TOT yet.", vec![]),
        },
        Command::Prices => match q::price_card(db, client, now.date_naive()).await? {
            Some((card, from, lines)) => {
                let cur = q::client_currency(db, client).await?;
                let rows = lines
                    .iter()
                    .map(|l| {
                        vec![
                            l.code.clone(),
                            l.description.clone(),
                            l.unit.clone(),
                            l.min_qty.to_string(),
                            money(l.price),
                        ]
                    })
                    .collect();
                Answer::ok(
                    name,
                    format!("{card} (from {from}, {cur}):"),
                    vec![Section::table(
                        None,
                        &["Code", "Description", "Unit", "Min qty", "Price"],
                        rows,
                    )],
                )
            }
            None => Answer::ok(name, "No price card yet.", vec![]),
        },
        Command::Art => {
            let list = crate::store::items::list_missing_art(db, client).await?;
            let rows = list
                .iter()
                .map(|a| {
                    vec![
                        d(a.art_due),
                        a.description.clone(),
                        a.design_id.clone(),
                        a.job_id.clone(),
                        "no".into(),
                    ]
                })
                .collect();
            Answer::ok(
                name,
                format!("TOT is waiting for {} piece(s) of artwork:", list.len()),
                vec![Section::table(
                    None,
                    &["Art due", "Description", "Design", "Job", "Received"],
                    rows,
                )],
            )
        }
        Command::Visuals => {
            let list = crate::store::items::list_pending_visuals(db, client).await?;
            let rows = list
                .iter()
                .map(|v| vec![v.id.clone(), v.job_name.clone(), v.category.clone(), d(v.date_required)])
                .collect();
            Answer::ok(
                name,
                format!("{} visual(s) awaiting approval:", list.len()),
                vec![
                    Section::table(None, &["Visual", "Job", "Category", "Needed by"], rows),
                    Section::text(vec![format!("Review them: {}", link(state, actor, "/visuals", now))]),
                ],
            )
        }
        Command::Approve(ids) => {
            if !ctx.may_decide {
                return Err(refuse_old());
            }
            let ids = if ids.is_empty() {
                vec![context_id(ctx, Category::VisualApproval, "APPROVE")?]
            } else {
                ids.clone()
            };
            // The command itself is the acceptance: the terms were in the message replied to.
            let results = super::visuals::approve_in(state, unit, actor, &ids, now).await?;
            let lines: Vec<String> = ids
                .iter()
                .zip(results)
                .map(|(id, r)| match r {
                    Ok(_) => format!("{id}: approved"),
                    Err(ActionError::NotFound(_)) => format!("{id}: not found"),
                    Err(e) => format!("{id}: {e}"),
                })
                .collect();
            let all_ok = lines.iter().all(|l| l.ends_with("approved"));
            let mut a = Answer::ok(
                name,
                if all_ok {
                    "Approved. Thank you."
                } else {
                    "Not everything could be approved:"
                },
                vec![Section::text(lines)],
            );
            a.ok = all_ok;
            a
        }
        Command::Reject { id, reason } => {
            if !ctx.may_decide {
                return Err(refuse_old());
            }
            let id = match id {
                Some(i) => i.clone(),
                None => context_id(ctx, Category::VisualApproval, "REJECT")?,
            };
            super::visuals::reject_in(state, unit, actor, &id, reason, now).await?;
            Answer::ok(
                name,
                format!("{id} rejected. TOT will send a new visual."),
                vec![Section::text(vec![format!("Your reason: {reason}")])],
            )
        }
        Command::NoDelivery(id) => {
            if !ctx.may_decide {
                return Err(refuse_old());
            }
            let id = match id {
                Some(i) => i.clone(),
                None => context_id(ctx, Category::DeliveryInstructions, "NODELIVERY")?,
            };
            super::delivery::no_delivery_in(state, unit.tx().await?, actor, &id, now).await?;
            Answer::ok(name, format!("Noted: job {id} needs no delivery."), vec![])
        }
        Command::Link => {
            let mut sections = vec![Section::text(vec![link(state, actor, "/", now)])];
            // By email, LINK also brings a code that ties a chat to this contact.
            let chat_on = !state.config.telegram.token.is_empty() || !state.config.discord.public_key.is_empty();
            if actor.channel == "email" && chat_on && actor.delegation.is_none() {
                let code =
                    crate::actions::chat_link::new_link_code_in(unit.tx().await?, &actor.contact.id, now).await?;
                sections.push(Section {
                    heading: Some(format!("Chat linking code: {code}")),
                    lines: crate::actions::chat_link::how_to_link(&state.config, &code),
                    ..Default::default()
                });
            }
            Answer::ok(name, "Your portal link (it signs you in):", sections)
        }
        Command::Reset => {
            crate::actions::mail::queue_reset_link(state, unit.tx().await?, &actor.contact).await?;
            Answer::ok(
                name,
                format!("A password-reset link is on its way to {}.", actor.contact.email),
                vec![],
            )
        }
    })
}
