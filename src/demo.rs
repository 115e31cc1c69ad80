//! `cport demo`: a realistic data set for three clients, with generated pictures, loaded into a
//! fresh SQLite store, so a newcomer can see cport work without TOT's system.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::actions::banners::BannerInput;
use crate::model::Money;
use crate::model::records::*;

/// A demo contact worth trying, with why.
pub struct DemoContact {
    pub id: &'static str,
    pub who: &'static str,
}

pub const DEMO_CONTACTS: &[DemoContact] = &[
    DemoContact {
        id: "P-101",
        who: "Maya Patel, admin at Harbour Coffee Co",
    },
    DemoContact {
        id: "P-102",
        who: "Tom Reid, buyer at Harbour Coffee Co",
    },
    DemoContact {
        id: "P-103",
        who: "Priya Shah, finance at Harbour Coffee Co",
    },
    DemoContact {
        id: "P-104",
        who: "Leo Grant, viewer at Harbour Coffee Co",
    },
    DemoContact {
        id: "P-201",
        who: "Ewan Price, admin at Fellside Running Club",
    },
    DemoContact {
        id: "P-301",
        who: "Nia Okafor, buyer at Bright Sparks Events",
    },
];

fn money(pounds: f64) -> Money {
    Money((pounds * 100.0).round() as i64)
}

fn tee_svg(colour: &str, ink: &str, label: &str, sub: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="480" height="480" viewBox="0 0 480 480">
<rect width="480" height="480" fill="#f4f4f2"/>
<path d="M170 60 L120 80 L40 150 L85 205 L130 170 L130 430 L350 430 L350 170 L395 205 L440 150 L360 80 L310 60 Q240 110 170 60 Z" fill="{colour}" stroke="#333" stroke-width="3"/>
<circle cx="240" cy="215" r="62" fill="none" stroke="{ink}" stroke-width="8"/>
<text x="240" y="226" font-family="Helvetica, Arial, sans-serif" font-size="30" font-weight="bold" fill="{ink}" text-anchor="middle">{label}</text>
<text x="240" y="320" font-family="Helvetica, Arial, sans-serif" font-size="18" fill="{ink}" text-anchor="middle">{sub}</text>
</svg>
"##
    )
}

fn placement_svg(colour: &str, x: u32, y: u32, w: u32, h: u32, note: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="480" height="480" viewBox="0 0 480 480">
<rect width="480" height="480" fill="#ffffff"/>
<path d="M170 60 L120 80 L40 150 L85 205 L130 170 L130 430 L350 430 L350 170 L395 205 L440 150 L360 80 L310 60 Q240 110 170 60 Z" fill="{colour}" stroke="#333" stroke-width="2"/>
<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="none" stroke="#d0021b" stroke-width="3" stroke-dasharray="8 5"/>
<text x="240" y="465" font-family="Helvetica, Arial, sans-serif" font-size="16" fill="#333" text-anchor="middle">{note}</text>
</svg>
"##
    )
}

fn signature_svg(name: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="360" height="120" viewBox="0 0 360 120">
<rect width="360" height="120" fill="#fff"/>
<path d="M20 80 C 50 20, 70 110, 100 60 S 150 30, 170 75 S 220 100, 250 50 S 310 70, 340 40" fill="none" stroke="#1a237e" stroke-width="3"/>
<line x1="20" y1="100" x2="340" y2="100" stroke="#999"/>
<text x="20" y="115" font-family="Helvetica, Arial, sans-serif" font-size="11" fill="#666">Signed: {name}</text>
</svg>
"##
    )
}

/// Writes the demo pictures under `data_dir/media`; returns how many.
pub fn write_media(data_dir: &Path) -> std::io::Result<usize> {
    let media = data_dir.join("media");
    let files: Vec<(PathBuf, String)> = vec![
        (
            media.join("visuals/V-1001.svg"),
            tee_svg("#1f3a5f", "#f2c14e", "HARBOUR", "Left chest, 2 spot colours"),
        ),
        (
            media.join("visuals/V-1001-placement.svg"),
            placement_svg("#1f3a5f", 270, 150, 70, 70, "Left chest, 90 mm wide"),
        ),
        (
            media.join("visuals/V-1002.svg"),
            tee_svg("#f2efe6", "#6b3e26", "BARISTA", "Full back, 1 colour"),
        ),
        (
            media.join("visuals/V-1002-placement.svg"),
            placement_svg("#f2efe6", 160, 130, 160, 200, "Full back, 280 mm wide"),
        ),
        (
            media.join("visuals/V-1003.svg"),
            tee_svg("#c62828", "#ffffff", "FELLSIDE", "10K 2027, front"),
        ),
        (
            media.join("visuals/V-1003-placement.svg"),
            placement_svg("#c62828", 170, 140, 140, 120, "Full front, 250 mm wide"),
        ),
        (
            media.join("visuals/V-1004.svg"),
            tee_svg("#2e7d32", "#ffffff", "CREW", "Bright Sparks crew, back"),
        ),
        (
            media.join("visuals/V-1005.svg"),
            tee_svg("#222222", "#00bcd4", "SPARKS", "Embroidered cap front"),
        ),
        // The pictures of examples/visuals.json, so PUTting it against the demo shows them.
        (
            media.join("visuals/V-1006.svg"),
            tee_svg("#5d4037", "#f2c14e", "HC", "Apron bib, 1 colour"),
        ),
        (
            media.join("visuals/V-1006-placement.svg"),
            placement_svg("#5d4037", 200, 150, 80, 80, "Centre chest, 100 mm wide"),
        ),
        (
            media.join("stock/SKU-HC-TEE-NAVY.svg"),
            tee_svg("#1f3a5f", "#f2c14e", "HARBOUR", "Staff tee, navy"),
        ),
        (
            media.join("stock/SKU-HC-APRON.svg"),
            tee_svg("#5d4037", "#f2c14e", "HC", "Barista apron"),
        ),
        (
            media.join("stock/SKU-HC-TOTE.svg"),
            tee_svg("#efe6d2", "#1f3a5f", "HARBOUR", "Tote bag"),
        ),
        (
            media.join("stock/SKU-FS-VEST.svg"),
            tee_svg("#c62828", "#ffffff", "FELLSIDE", "Club vest"),
        ),
        (
            media.join("process/J-3001-front.svg"),
            placement_svg("#1f3a5f", 270, 150, 70, 70, "Process: screen print, left chest"),
        ),
        (media.join("pod/D-2001.svg"), signature_svg("K. Morgan")),
        (media.join("pod/D-2002.svg"), signature_svg("R. Ahmed")),
        (
            media.join("receipts/PO-5001-1.svg"),
            tee_svg("#9e9e9e", "#333333", "CHECKED", "12 outers, sealed"),
        ),
    ];
    for (path, body) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, body)?;
    }
    Ok(files.len())
}

fn contact(id: &str, client: &str, name: &str, email: &str, role: &str) -> ContactIn {
    ContactIn {
        id: id.into(),
        client_id: client.into(),
        name: name.into(),
        email: email.into(),
        role: role.into(),
        timezone: "Europe/London".into(),
        phone: None,
        telegram_chat_id: None,
        discord_user_id: None,
        digest_schedule: None,
        active: true,
    }
}

struct JobSpec<'a> {
    id: &'a str,
    client: &'a str,
    contact: &'a str,
    name: &'a str,
    status: &'a str,
    required_in_days: i64,
    instructions: &'a str,
    garment: &'a str,
    qty: i64,
    process: &'a str,
    position: &'a str,
    unit_price: f64,
}

fn job(s: JobSpec, today: NaiveDate, now: DateTime<Utc>, age_days: i64) -> JobIn {
    let produced = match s.status {
        "entered" => 0,
        "in_production" => s.qty / 2,
        _ => s.qty,
    };
    JobIn {
        id: s.id.into(),
        client_id: s.client.into(),
        contact_id: Some(s.contact.into()),
        name: s.name.into(),
        status: s.status.into(),
        date_required: Some(today + Duration::days(s.required_in_days)),
        order_id: Some(format!("SO-{}", &s.id[2..])),
        client_ref: Some(format!("{}-{}", &s.client[2..], &s.id[2..])),
        delivery_instructions: s.instructions.into(),
        created_at: Some(now - Duration::days(age_days)),
        process_lines: vec![
            ProcessLineIn {
                status: if s.status == "entered" { "planned" } else { "done" }.into(),
                process: s.process.into(),
                position: s.position.into(),
                process_date: Some(today + Duration::days(s.required_in_days - 5)),
                qty: s.qty,
                unit_price: money(s.unit_price),
                image: if s.id == "J-3001" {
                    Some("/media/process/J-3001-front.svg".into())
                } else {
                    None
                },
            },
            ProcessLineIn {
                status: "planned".into(),
                process: "Fold and bag".into(),
                position: "-".into(),
                process_date: Some(today + Duration::days(s.required_in_days - 2)),
                qty: s.qty,
                unit_price: money(0.25),
                image: None,
            },
        ],
        art_costs: vec![CostLineIn {
            description: "Screen / digitising set-up".into(),
            qty: 1,
            unit_price: money(35.0),
        }],
        blank_garments: vec![CostLineIn {
            description: s.garment.into(),
            qty: s.qty,
            unit_price: money(4.85),
        }],
        printed_garments: vec![PrintedGarmentIn {
            description: format!("{}, decorated", s.garment),
            expected_qty: s.qty,
            produced_qty: produced,
        }],
    }
}

/// The demo data set, dated around `now` so that due dates look current.
pub fn document(now: DateTime<Utc>) -> Document {
    let today = now.date_naive();
    let d = |n: i64| today + Duration::days(n);
    let clients = vec![
        ClientIn {
            id: "C-100".into(),
            name: "Harbour Coffee Co".into(),
            currency: "GBP".into(),
            third_party_ordering: true,
        },
        ClientIn {
            id: "C-200".into(),
            name: "Fellside Running Club".into(),
            currency: "GBP".into(),
            third_party_ordering: false,
        },
        ClientIn {
            id: "C-300".into(),
            name: "Bright Sparks Events".into(),
            currency: "EUR".into(),
            third_party_ordering: false,
        },
    ];
    let mut contacts = vec![
        contact("P-101", "C-100", "Maya Patel", "maya@harbourcoffee.example", "admin"),
        contact("P-102", "C-100", "Tom Reid", "tom@harbourcoffee.example", "buyer"),
        contact(
            "P-103",
            "C-100",
            "Priya Shah",
            "accounts@harbourcoffee.example",
            "finance",
        ),
        contact("P-104", "C-100", "Leo Grant", "leo@harbourcoffee.example", "viewer"),
        contact(
            "P-105",
            "C-100",
            "Dana Cole",
            "dana@northsideresellers.example",
            "third_party",
        ),
        contact("P-201", "C-200", "Ewan Price", "kit@fellside-rc.example", "admin"),
        contact("P-202", "C-200", "Sophie Hall", "sophie@fellside-rc.example", "buyer"),
        contact("P-301", "C-300", "Nia Okafor", "nia@brightsparks.example", "buyer"),
        contact("P-302", "C-300", "Jonas Berg", "jonas@brightsparks.example", "admin"),
    ];
    contacts[8].timezone = "Europe/Berlin".into();
    let specs = vec![
        (
            JobSpec {
                id: "J-3001",
                client: "C-100",
                contact: "P-102",
                name: "Staff tees, spring range",
                status: "in_production",
                required_in_days: 9,
                instructions: "none",
                garment: "Heavy cotton tee, navy",
                qty: 240,
                process: "Screen print",
                position: "Left chest",
                unit_price: 1.65,
            },
            12,
        ),
        (
            JobSpec {
                id: "J-3002",
                client: "C-100",
                contact: "P-102",
                name: "Barista aprons",
                status: "entered",
                required_in_days: 21,
                instructions: "none",
                garment: "Bib apron, brown",
                qty: 120,
                process: "Embroidery",
                position: "Centre chest",
                unit_price: 2.40,
            },
            3,
        ),
        (
            JobSpec {
                id: "J-3003",
                client: "C-100",
                contact: "P-101",
                name: "Tote bags for launch",
                status: "completed",
                required_in_days: 2,
                instructions: "given",
                garment: "Canvas tote, natural",
                qty: 500,
                process: "Screen print",
                position: "Front",
                unit_price: 0.95,
            },
            30,
        ),
        (
            JobSpec {
                id: "J-3004",
                client: "C-100",
                contact: "P-101",
                name: "Winter hoodies",
                status: "delivered",
                required_in_days: -14,
                instructions: "given",
                garment: "Hoodie, heather grey",
                qty: 80,
                process: "Embroidery",
                position: "Left chest",
                unit_price: 3.10,
            },
            60,
        ),
        (
            JobSpec {
                id: "J-3005",
                client: "C-100",
                contact: "P-102",
                name: "Cancelled polo run",
                status: "cancelled",
                required_in_days: 5,
                instructions: "none",
                garment: "Polo shirt, white",
                qty: 60,
                process: "Transfer",
                position: "Left chest",
                unit_price: 1.20,
            },
            20,
        ),
        (
            JobSpec {
                id: "J-3006",
                client: "C-200",
                contact: "P-202",
                name: "10K race tees",
                status: "in_production",
                required_in_days: 14,
                instructions: "none",
                garment: "Technical tee, red",
                qty: 650,
                process: "Screen print",
                position: "Full front",
                unit_price: 1.35,
            },
            8,
        ),
        (
            JobSpec {
                id: "J-3007",
                client: "C-200",
                contact: "P-201",
                name: "Club vests",
                status: "completed",
                required_in_days: 1,
                instructions: "not_required",
                garment: "Running vest, red",
                qty: 150,
                process: "Transfer",
                position: "Front",
                unit_price: 1.10,
            },
            25,
        ),
        (
            JobSpec {
                id: "J-3008",
                client: "C-300",
                contact: "P-301",
                name: "Festival crew tees",
                status: "entered",
                required_in_days: 30,
                instructions: "none",
                garment: "Organic tee, green",
                qty: 300,
                process: "Screen print",
                position: "Full back",
                unit_price: 1.55,
            },
            2,
        ),
        (
            JobSpec {
                id: "J-3009",
                client: "C-300",
                contact: "P-301",
                name: "Crew caps",
                status: "in_production",
                required_in_days: 18,
                instructions: "given",
                garment: "Six-panel cap, black",
                qty: 200,
                process: "Embroidery",
                position: "Front",
                unit_price: 2.05,
            },
            6,
        ),
    ];
    let jobs = specs.into_iter().map(|(s, age)| job(s, today, now, age)).collect();

    let art_requirements = vec![
        ArtRequirementIn {
            id: "AR-4001".into(),
            client_id: "C-100".into(),
            job_id: "J-3002".into(),
            design_id: "DS-7102".into(),
            description: "Apron logo, vector (AI or EPS)".into(),
            art_due: Some(d(4)),
            art_received: false,
        },
        ArtRequirementIn {
            id: "AR-4002".into(),
            client_id: "C-100".into(),
            job_id: "J-3001".into(),
            design_id: "DS-7101".into(),
            description: "Harbour roundel, 2 spot colours".into(),
            art_due: Some(d(-5)),
            art_received: true,
        },
        ArtRequirementIn {
            id: "AR-4003".into(),
            client_id: "C-300".into(),
            job_id: "J-3008".into(),
            design_id: "DS-7301".into(),
            description: "Crew back print, high-res PDF".into(),
            art_due: Some(d(7)),
            art_received: false,
        },
    ];

    let comment = |author: &str, side: &str, body: &str, hours: i64| CommentIn {
        author: author.into(),
        side: side.into(),
        body: body.into(),
        at: now - Duration::hours(hours),
    };
    let visual =
        |id: &str, client: &str, job: &str, design: &str, category: &str, status: &str, placement: bool, hours: i64| {
            VisualIn {
                id: id.into(),
                client_id: client.into(),
                job_id: job.into(),
                design_id: design.into(),
                category: category.into(),
                designer: "Aisha Khan".into(),
                status: status.into(),
                main_image: format!("/media/visuals/{id}.svg"),
                placement_image: placement.then(|| format!("/media/visuals/{id}-placement.svg")),
                created_at: Some(now - Duration::hours(hours)),
                charges: vec![
                    CostLineIn {
                        description: "Artwork preparation".into(),
                        qty: 1,
                        unit_price: money(25.0),
                    },
                    CostLineIn {
                        description: "Colour separation".into(),
                        qty: 2,
                        unit_price: money(12.5),
                    },
                ],
                comments: vec![],
            }
        };
    let mut v1 = visual(
        "V-1001",
        "C-100",
        "J-3001",
        "DS-7101",
        "Colour visual",
        "awaiting_approval",
        true,
        20,
    );
    v1.comments = vec![
        comment(
            "Aisha Khan",
            "tot",
            "Gold matched to Pantone 7408 C as on your brand sheet.",
            20,
        ),
        comment("Tom Reid", "client", "Could the roundel be a touch smaller?", 6),
        comment("Aisha Khan", "tot", "Reduced to 90 mm wide, new visual attached.", 2),
    ];
    let visuals = vec![
        v1,
        visual(
            "V-1002",
            "C-100",
            "J-3002",
            "DS-7102",
            "Colour visual",
            "awaiting_approval",
            true,
            4,
        ),
        visual(
            "V-1003",
            "C-200",
            "J-3006",
            "DS-7201",
            "Colour visual",
            "awaiting_approval",
            true,
            30,
        ),
        visual(
            "V-1004",
            "C-300",
            "J-3008",
            "DS-7301",
            "Colour visual",
            "approved",
            false,
            72,
        ),
        visual(
            "V-1005",
            "C-300",
            "J-3009",
            "DS-7302",
            "Embroidery sew-out",
            "awaiting_approval",
            false,
            10,
        ),
    ];

    let pod = |img: &str, boxes: i64, courier: &str, hours: i64, worker: &str| ProofOfDeliveryIn {
        signature_image: img.into(),
        boxes,
        courier: courier.into(),
        signed_at: now - Duration::hours(hours),
        courier_worker: Some(worker.into()),
    };
    let deliveries = vec![
        DeliveryIn {
            id: "D-2001".into(),
            client_id: "C-100".into(),
            job_id: Some("J-3004".into()),
            status: "sent".into(),
            delivery_date: Some(d(-12)),
            sent_date: Some(d(-13)),
            venue: "Harbour Coffee Roastery, 4 Quay Street, Bristol BS1 4DB".into(),
            description: "80 winter hoodies".into(),
            contact: Some("Maya Patel".into()),
            client_ref: Some("HC-WINTER".into()),
            tracking: Some(TrackingIn {
                carrier: "DPD".into(),
                number: "15501234567890".into(),
                url: Some("https://track.dpd.example/15501234567890".into()),
            }),
            lines: vec![DeliveryLineIn {
                description: "Hoodie, heather grey, embroidered".into(),
                qty: 80,
            }],
            packing: vec![
                PackingIn {
                    container: "Box 1 of 2".into(),
                    description: "Hoodies S-M".into(),
                    qty: 40,
                },
                PackingIn {
                    container: "Box 2 of 2".into(),
                    description: "Hoodies L-XL".into(),
                    qty: 40,
                },
            ],
            costs: vec![DeliveryCostIn {
                cost_type: "Carriage".into(),
                description: "DPD next day, 2 boxes".into(),
                price: money(14.50),
            }],
            proof_of_delivery: Some(pod("/media/pod/D-2001.svg", 2, "DPD", 24 * 12, "Driver 4471")),
        },
        DeliveryIn {
            id: "D-2002".into(),
            client_id: "C-100".into(),
            job_id: Some("J-3003".into()),
            status: "sent".into(),
            delivery_date: Some(d(1)),
            sent_date: Some(d(0)),
            venue: "Harbour Coffee, 19 Park Row, Bristol BS1 5LJ".into(),
            description: "500 launch totes".into(),
            contact: Some("Tom Reid".into()),
            client_ref: Some("HC-LAUNCH".into()),
            tracking: Some(TrackingIn {
                carrier: "Parcelforce".into(),
                number: "PF884512309GB".into(),
                url: None,
            }),
            lines: vec![DeliveryLineIn {
                description: "Canvas tote, printed".into(),
                qty: 500,
            }],
            packing: vec![PackingIn {
                container: "Pallet 1".into(),
                description: "10 cartons of 50".into(),
                qty: 500,
            }],
            costs: vec![
                DeliveryCostIn {
                    cost_type: "Carriage".into(),
                    description: "Pallet, 48 hour".into(),
                    price: money(42.0),
                },
                DeliveryCostIn {
                    cost_type: "Packing".into(),
                    description: "Cartons and wrap".into(),
                    price: money(6.0),
                },
            ],
            proof_of_delivery: Some(pod("/media/pod/D-2002.svg", 10, "Parcelforce", 1, "Driver 118")),
        },
        DeliveryIn {
            id: "D-2003".into(),
            client_id: "C-200".into(),
            job_id: Some("J-3007".into()),
            status: "ready".into(),
            delivery_date: Some(d(2)),
            sent_date: None,
            venue: "Collect from TOT".into(),
            description: "150 club vests".into(),
            contact: Some("Ewan Price".into()),
            client_ref: None,
            tracking: None,
            lines: vec![DeliveryLineIn {
                description: "Running vest, red, transfer".into(),
                qty: 150,
            }],
            packing: vec![PackingIn {
                container: "Box 1 of 1".into(),
                description: "Vests".into(),
                qty: 150,
            }],
            costs: vec![],
            proof_of_delivery: None,
        },
        DeliveryIn {
            id: "D-2004".into(),
            client_id: "C-300".into(),
            job_id: Some("J-3009".into()),
            status: "picked".into(),
            delivery_date: Some(d(19)),
            sent_date: None,
            venue: "Messegelände Halle 3, Berlin".into(),
            description: "Crew caps, first half".into(),
            contact: Some("Nia Okafor".into()),
            client_ref: Some("BSE-CAPS".into()),
            tracking: None,
            lines: vec![DeliveryLineIn {
                description: "Six-panel cap, embroidered".into(),
                qty: 100,
            }],
            packing: vec![],
            costs: vec![],
            proof_of_delivery: None,
        },
    ];

    let stock =
        |sku: &str, client: &str, client_sku: &str, desc: &str, bal: i64, exp: i64, acc: i64, pic: bool| StockIn {
            sku: sku.into(),
            client_id: client.into(),
            client_sku: Some(client_sku.into()),
            description: desc.into(),
            warehouse_balance: bal,
            expected: exp,
            accounted_for: acc,
            available_to_order: bal - acc,
            picture: pic.then(|| format!("/media/stock/{sku}.svg")),
        };
    let stock = vec![
        stock(
            "SKU-HC-TEE-NAVY",
            "C-100",
            "HC-001",
            "Staff tee, navy, roundel left chest",
            420,
            240,
            60,
            true,
        ),
        stock(
            "SKU-HC-APRON",
            "C-100",
            "HC-002",
            "Barista apron, brown, embroidered",
            35,
            120,
            30,
            true,
        ),
        stock(
            "SKU-HC-TOTE",
            "C-100",
            "HC-003",
            "Canvas tote, Harbour print",
            1200,
            0,
            200,
            true,
        ),
        stock(
            "SKU-HC-CAP",
            "C-100",
            "HC-004",
            "Cap, navy, embroidered HC",
            0,
            0,
            0,
            false,
        ),
        stock("SKU-FS-VEST", "C-200", "FRC-V1", "Club vest, red", 64, 150, 10, true),
    ];
    let blank_stock = vec![
        BlankStockIn {
            sku: "BLK-TEE-NAVY-M".into(),
            description: "Heavy cotton tee, navy, M".into(),
            warehouse_balance: 1800,
            expected: 600,
            accounted_for: 240,
            available_to_order: 1560,
        },
        BlankStockIn {
            sku: "BLK-HOOD-GREY-L".into(),
            description: "Hoodie, heather grey, L".into(),
            warehouse_balance: 260,
            expected: 0,
            accounted_for: 80,
            available_to_order: 180,
        },
        BlankStockIn {
            sku: "BLK-TOTE-NAT".into(),
            description: "Canvas tote, natural".into(),
            warehouse_balance: 3000,
            expected: 1000,
            accounted_for: 500,
            available_to_order: 2500,
        },
        BlankStockIn {
            sku: "BLK-CAP-BLK".into(),
            description: "Six-panel cap, black".into(),
            warehouse_balance: 90,
            expected: 400,
            accounted_for: 200,
            available_to_order: 0,
        },
    ];

    let purchase_orders = vec![
        PurchaseOrderIn {
            id: "PO-5001".into(),
            client_id: "C-100".into(),
            placed_by: Some("Northside Resellers (Dana Cole)".into()),
            third_party: true,
            status: "part_received".into(),
            date_ordered: d(-18),
            tot_ref: "TPO-5001".into(),
            client_ref: Some("NSR-77".into()),
            category: "Blank garments".into(),
            po_type: "Third party".into(),
            supplier: "Northwear Ltd".into(),
            lines: vec![
                PoLineIn {
                    status: "part_received".into(),
                    sku: "BLK-TEE-NAVY-M".into(),
                    description: "Heavy cotton tee, navy, M".into(),
                    ordered: 300,
                    received: 180,
                    cancelled: 0,
                },
                PoLineIn {
                    status: "received".into(),
                    sku: "BLK-TOTE-NAT".into(),
                    description: "Canvas tote, natural".into(),
                    ordered: 200,
                    received: 200,
                    cancelled: 0,
                },
            ],
            receipts: vec![PoReceiptIn {
                date_received: d(-6),
                signed_by: "G. Lowe".into(),
                date_checked: Some(d(-5)),
                check_category: Some("Count and quality".into()),
                checked_by: Some("Warehouse team B".into()),
                outers: 12,
                handling_cost: money(18.0),
                checking_images: vec!["/media/receipts/PO-5001-1.svg".into()],
            }],
        },
        PurchaseOrderIn {
            id: "PO-5002".into(),
            client_id: "C-100".into(),
            placed_by: Some("Maya Patel".into()),
            third_party: false,
            status: "open".into(),
            date_ordered: d(-3),
            tot_ref: "TPO-5002".into(),
            client_ref: None,
            category: "Consumables".into(),
            po_type: "Client".into(),
            supplier: "Bagbase Supplies".into(),
            lines: vec![PoLineIn {
                status: "open".into(),
                sku: "BLK-TOTE-NAT".into(),
                description: "Canvas tote, natural".into(),
                ordered: 1000,
                received: 0,
                cancelled: 0,
            }],
            receipts: vec![],
        },
        PurchaseOrderIn {
            id: "PO-5003".into(),
            client_id: "C-100".into(),
            placed_by: Some("Northside Resellers (Dana Cole)".into()),
            third_party: true,
            status: "received".into(),
            date_ordered: d(-40),
            tot_ref: "TPO-5003".into(),
            client_ref: Some("NSR-61".into()),
            category: "Blank garments".into(),
            po_type: "Third party".into(),
            supplier: "Capital Caps".into(),
            lines: vec![PoLineIn {
                status: "received".into(),
                sku: "BLK-CAP-BLK".into(),
                description: "Six-panel cap, black".into(),
                ordered: 50,
                received: 50,
                cancelled: 0,
            }],
            receipts: vec![PoReceiptIn {
                date_received: d(-30),
                signed_by: "G. Lowe".into(),
                date_checked: Some(d(-30)),
                check_category: Some("Count".into()),
                checked_by: Some("Warehouse team A".into()),
                outers: 2,
                handling_cost: money(4.0),
                checking_images: vec![],
            }],
        },
    ];

    let inv = |id: &str, client: &str, days: i64, po: &str, job: &str, total: f64, paid: f64| InvoiceIn {
        id: id.into(),
        client_id: client.into(),
        date: d(-days),
        due_date: Some(d(30 - days)),
        client_po_ref: Some(po.into()),
        job_name: job.into(),
        total: money(total),
        paid: money(paid),
    };
    let invoices = vec![
        inv(
            "INV-9001",
            "C-100",
            95,
            "HC-SUMMER",
            "Summer staff tees",
            1284.00,
            1000.00,
        ),
        inv("INV-9002", "C-100", 64, "HC-EVENT", "Event lanyards", 310.50, 0.0),
        inv("INV-9003", "C-100", 35, "HC-WINTER", "Winter hoodies", 642.40, 0.0),
        inv("INV-9004", "C-100", 5, "HC-LAUNCH", "Tote bags for launch", 968.75, 0.0),
        inv("INV-9005", "C-100", 120, "HC-SPRING", "Spring aprons", 455.00, 455.00),
        // A credit note: a negative total, counted in the statement's rows.
        inv(
            "CN-9006",
            "C-100",
            20,
            "HC-WINTER",
            "Credit: 4 misprinted hoodies",
            -46.00,
            0.0,
        ),
        inv("INV-9101", "C-200", 12, "FRC-VESTS", "Club vests", 391.20, 391.20),
        inv("INV-9201", "C-300", 40, "BSE-23", "Crew tees 2026", 2150.00, 1150.00),
    ];
    let account_summaries = vec![
        AccountSummaryIn {
            client_id: "C-100".into(),
            as_of: today,
            current_balance: money(2159.65),
            over_30: money(642.40),
            over_60: money(310.50),
            over_90: money(284.00),
        },
        AccountSummaryIn {
            client_id: "C-200".into(),
            as_of: today,
            current_balance: money(0.0),
            over_30: money(0.0),
            over_60: money(0.0),
            over_90: money(0.0),
        },
        AccountSummaryIn {
            client_id: "C-300".into(),
            as_of: today,
            current_balance: money(1000.0),
            over_30: money(1000.0),
            over_60: money(0.0),
            over_90: money(0.0),
        },
    ];
    let lines = |rate: f64| {
        vec![
            PriceLineIn {
                code: "SP1".into(),
                description: "Screen print, 1 colour, per position".into(),
                unit: "each".into(),
                min_qty: 25,
                price: money(0.85 * rate),
            },
            PriceLineIn {
                code: "SP4".into(),
                description: "Screen print, up to 4 colours".into(),
                unit: "each".into(),
                min_qty: 50,
                price: money(1.65 * rate),
            },
            PriceLineIn {
                code: "EMB".into(),
                description: "Embroidery up to 8,000 stitches".into(),
                unit: "each".into(),
                min_qty: 12,
                price: money(2.40 * rate),
            },
            PriceLineIn {
                code: "TRF".into(),
                description: "Heat transfer, full colour".into(),
                unit: "each".into(),
                min_qty: 10,
                price: money(1.20 * rate),
            },
            PriceLineIn {
                code: "SET".into(),
                description: "Screen set-up".into(),
                unit: "per colour".into(),
                min_qty: 1,
                price: money(17.50),
            },
        ]
    };
    let price_cards = vec![
        PriceCardIn {
            id: "RC-100".into(),
            client_id: "C-100".into(),
            name: "Harbour Coffee 2026 rates".into(),
            effective_from: d(-200),
            lines: lines(0.95),
        },
        PriceCardIn {
            id: "RC-200".into(),
            client_id: "C-200".into(),
            name: "Club rates".into(),
            effective_from: d(-100),
            lines: lines(0.9),
        },
        PriceCardIn {
            id: "RC-300".into(),
            client_id: "C-300".into(),
            name: "Events rates (EUR)".into(),
            effective_from: d(-50),
            lines: lines(1.1),
        },
    ];
    Document {
        clients,
        contacts,
        jobs,
        art_requirements,
        visuals,
        deliveries,
        stock,
        blank_stock,
        purchase_orders,
        invoices,
        account_summaries,
        price_cards,
    }
}

/// The demo's stop-press banner.
pub fn banner(now: DateTime<Utc>) -> BannerInput {
    BannerInput {
        title: "Christmas dispatch deadline".into(),
        body: "Orders approved by 12 December ship before the holidays. Later approvals go out from 5 January.".into(),
        severity: "warning".into(),
        clients: vec![],
        starts_at: Some(now - Duration::hours(1)),
        expires_at: Some(now + Duration::days(21)),
    }
}
