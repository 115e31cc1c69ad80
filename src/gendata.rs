//! `cport gen-data`: a synthetic data set of any size in the import format, deterministic
//! for a given seed, for tests and benchmarks.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::Money;
use crate::model::records::*;

#[derive(Debug, Clone)]
pub struct Scale {
    pub clients: usize,
    pub jobs: usize,
    pub seed: u64,
}

const PROCESSES: &[&str] = &["Screen print", "Embroidery", "Transfer", "DTG print"];
const POSITIONS: &[&str] = &["Left chest", "Full back", "Right sleeve", "Full front", "Nape"];
const GARMENTS: &[&str] = &["Heavy cotton tee", "Polo shirt", "Hoodie", "Softshell jacket", "Tote bag", "Cap"];
const COLOURS: &[&str] = &["black", "navy", "white", "heather grey", "bottle green", "red"];
const SUPPLIERS: &[&str] = &["Northwear Ltd", "Blank Garments Co", "Bagbase Supplies", "Capital Caps"];

fn pick<'a>(rng: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs[rng.gen_range(0..xs.len())]
}

fn day(base: NaiveDate, offset: i64) -> NaiveDate {
    base + Duration::days(offset)
}

/// Builds the document. Jobs are spread evenly over clients.
pub fn generate(scale: &Scale) -> Document {
    let mut rng = StdRng::seed_from_u64(scale.seed);
    let base = NaiveDate::from_ymd_opt(2026, 11, 2).expect("valid date");
    let t0 = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().expect("valid time");
    let mut doc = Document::default();
    let clients = scale.clients.max(1);
    for b in 0..50 {
        doc.blank_stock.push(BlankStockIn {
            sku: format!("BLK-{b:04}"),
            description: format!("{} {}", pick(&mut rng, GARMENTS), pick(&mut rng, COLOURS)),
            warehouse_balance: rng.gen_range(0..5000),
            expected: rng.gen_range(0..1000),
            accounted_for: rng.gen_range(0..500),
            available_to_order: rng.gen_range(0..4000),
        });
    }
    for c in 0..clients {
        let cid = format!("C-{c:05}");
        doc.clients.push(ClientIn {
            id: cid.clone(),
            name: format!("Client {c} Ltd"),
            currency: "GBP".into(),
            third_party_ordering: c % 3 == 0,
        });
        for (k, role) in ["admin", "buyer", "finance", "viewer"].iter().enumerate() {
            doc.contacts.push(ContactIn {
                id: format!("P-{c:05}-{k}"),
                client_id: cid.clone(),
                name: format!("{} {c}", ["Alex", "Sam", "Jo", "Robin"][k]),
                email: format!("{role}.{c}@client{c}.example"),
                role: role.to_string(),
                timezone: Some("Europe/London".into()),
                phone: None,
                telegram_chat_id: None,
                discord_user_id: None,
                digest_schedule: None,
                active: true,
            });
        }
        for s in 0..10 {
            let bal = rng.gen_range(0..2000);
            doc.stock.push(StockIn {
                sku: format!("SKU-{c:05}-{s:02}"),
                client_id: cid.clone(),
                client_sku: Some(format!("CS{s:03}")),
                description: format!("Branded {} {}", pick(&mut rng, GARMENTS), pick(&mut rng, COLOURS)),
                warehouse_balance: bal,
                expected: rng.gen_range(0..200),
                accounted_for: bal / 10,
                available_to_order: bal - bal / 10,
                picture: None,
            });
        }
        for p in 0..2 {
            let ordered = rng.gen_range(10..500);
            let received = if p == 0 { ordered / 2 } else { ordered };
            doc.purchase_orders.push(PurchaseOrderIn {
                id: format!("PO-{c:05}-{p}"),
                client_id: cid.clone(),
                placed_by: Some(format!("Reseller {p}")),
                third_party: p == 0,
                status: if received < ordered { "part_received" } else { "received" }.into(),
                date_ordered: day(base, -(rng.gen_range(1..60))),
                tot_ref: format!("TP{c:05}{p}"),
                client_ref: None,
                category: "Garments".into(),
                po_type: "Third party".into(),
                supplier: pick(&mut rng, SUPPLIERS).into(),
                lines: vec![PoLineIn {
                    status: "open".into(),
                    sku: format!("BLK-{:04}", rng.gen_range(0..50)),
                    description: pick(&mut rng, GARMENTS).into(),
                    ordered,
                    received,
                    cancelled: 0,
                }],
                receipts: vec![],
            });
        }
        for i in 0..5 {
            let total = rng.gen_range(5_000..500_000);
            doc.invoices.push(InvoiceIn {
                id: format!("INV-{c:05}-{i}"),
                client_id: cid.clone(),
                date: day(base, -(i * 20)),
                due_date: Some(day(base, 30 - i * 20)),
                client_po_ref: Some(format!("PO{c}{i}")),
                job_name: format!("Order {i}"),
                total: Money(total),
                paid: Money(if i > 2 { total } else { 0 }),
            });
        }
        doc.account_summaries.push(AccountSummaryIn {
            client_id: cid.clone(),
            as_of: base,
            current_balance: Money(rng.gen_range(0..1_000_000)),
            over_30: Money(rng.gen_range(0..100_000)),
            over_60: Money(rng.gen_range(0..50_000)),
            over_90: Money(0),
            credit_limit: (c % 2 == 0).then_some(Money(1_500_000)),
        });
        doc.price_cards.push(PriceCardIn {
            id: format!("RC-{c:05}"),
            client_id: cid.clone(),
            name: "Standard rates".into(),
            effective_from: day(base, -300),
            lines: PROCESSES
                .iter()
                .enumerate()
                .map(|(k, p)| PriceLineIn {
                    code: format!("PR{k}"),
                    description: p.to_string(),
                    unit: "each".into(),
                    min_qty: 25,
                    price: Money(80 + 40 * k as i64),
                })
                .collect(),
        });
    }
    for j in 0..scale.jobs {
        let c = j % clients;
        let cid = format!("C-{c:05}");
        let jid = format!("J-{j:07}");
        let status = ["entered", "in_production", "completed", "delivered", "cancelled"][rng.gen_range(0..5)];
        let qty = rng.gen_range(10..1000);
        let garment = pick(&mut rng, GARMENTS);
        let process = pick(&mut rng, PROCESSES);
        doc.jobs.push(JobIn {
            id: jid.clone(),
            client_id: cid.clone(),
            contact_id: Some(format!("P-{c:05}-1")),
            name: format!("{garment}s, {process}"),
            status: status.into(),
            date_required: Some(day(base, rng.gen_range(-20..60))),
            order_id: Some(format!("SO-{j:07}")),
            client_ref: Some(format!("REF{j}")),
            delivery_instructions: Some(["none", "given", "not_required"][rng.gen_range(0..3)].into()),
            created_at: Some(t0 - Duration::hours(rng.gen_range(0..2000))),
            process_lines: (0..2)
                .map(|k| ProcessLineIn {
                    status: "planned".into(),
                    process: process.into(),
                    position: POSITIONS[k].into(),
                    process_date: Some(day(base, rng.gen_range(0..30))),
                    qty,
                    unit_price: Money(rng.gen_range(50..400)),
                    image: None,
                })
                .collect(),
            art_costs: vec![CostLineIn { description: "Screen set-up".into(), qty: 1, unit_price: Money(2500) }],
            blank_garments: vec![CostLineIn {
                description: format!("{garment} {}", pick(&mut rng, COLOURS)),
                qty,
                unit_price: Money(rng.gen_range(200..2000)),
            }],
            printed_garments: vec![PrintedGarmentIn {
                description: format!("{garment}, decorated"),
                expected_qty: qty,
                produced_qty: if status == "entered" { 0 } else { qty },
            }],
        });
        // A visual and an artwork requirement of a job are of the job's one design.
        let design = format!("DS-{j:07}");
        if j % 10 == 0 {
            doc.visuals.push(VisualIn {
                id: format!("V-{j:07}"),
                client_id: cid.clone(),
                job_id: jid.clone(),
                design_id: design.clone(),
                category: "Colour visual".into(),
                designer: "Studio".into(),
                status: ["awaiting_approval", "approved"][rng.gen_range(0..2)].into(),
                main_image: format!("/media/visuals/V-{j:07}.svg"),
                placement_image: None,
                created_at: Some(t0),
                charges: vec![CostLineIn { description: "Artwork".into(), qty: 1, unit_price: Money(1500) }],
                comments: vec![],
            });
        }
        if j % 10 == 5 {
            doc.art_requirements.push(ArtRequirementIn {
                id: format!("AR-{j:07}"),
                client_id: cid.clone(),
                job_id: jid.clone(),
                design_id: design,
                description: "Logo, vector".into(),
                art_due: Some(day(base, rng.gen_range(0..14))),
                art_received: rng.gen_bool(0.5),
            });
        }
        if j % 3 == 0 {
            doc.deliveries.push(DeliveryIn {
                id: format!("D-{j:07}"),
                client_id: cid.clone(),
                job_id: Some(jid.clone()),
                status: "sent".into(),
                delivery_date: Some(day(base, rng.gen_range(0..30))),
                sent_date: Some(day(base, rng.gen_range(-10..0))),
                venue: format!("Unit {}, Trade Park", rng.gen_range(1..99)),
                description: format!("{qty} x {garment}"),
                contact: None,
                client_ref: None,
                tracking: Some(TrackingIn { carrier: "DPD".into(), number: format!("15501{j:08}"), url: None }),
                lines: vec![DeliveryLineIn { description: format!("{garment}, decorated"), qty }],
                packing: vec![PackingIn { container: "Box 1".into(), description: garment.to_string(), qty }],
                costs: vec![DeliveryCostIn {
                    cost_type: "Carriage".into(),
                    description: "Next day".into(),
                    price: Money(1250),
                }],
                proof_of_delivery: None,
            });
        }
    }
    doc
}
