//! Chat commands through the Telegram Bot API on loopback: how many commands cport handles
//! per second, and their latency, from the update's arrival at the (fake) Bot API to the
//! answer's arrival there. Each chat sends its next command when the previous one is
//! answered. Beside it, in the same run and with the same fake: a bare bot loop (getUpdates,
//! then one sendMessage per update, no store, no logic), the ceiling of the transport.
//!
//!   cargo bench --bench chat -- [CHATS] [ROUNDS]        (scripts/bench-chat wraps this)

#[path = "../tests/common/fake_telegram.rs"]
mod fake_telegram;

use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use serde_json::json;

/// The allocator the `cport` binary runs with (`src/main.rs`), so the figures are its figures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const COMMANDS: [&str; 4] = ["/jobs", "/track D-1", "/items", "/job J-1"];
const FIRST_CHAT: i64 = 10_000;

struct Figures {
    commands: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn print(&self, label: &str) {
        let mut l = self.latencies.clone();
        l.sort();
        let pct = |p: f64| l[((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1];
        println!(
            "{label:<58} {:>7} {:>10.0} {:>9.1} {:>9.1}",
            self.commands,
            self.commands as f64 / self.elapsed.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0
        );
    }
}

/// Every chat sends `rounds` commands, one after the other's answer.
async fn drive(fake: &FakeTelegram, chats: i64, rounds: usize) -> Figures {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for chat in FIRST_CHAT..FIRST_CHAT + chats {
        let fake = fake.clone();
        let mut rx = fake.subscribe(chat);
        set.spawn(async move {
            let mut lat = Vec::with_capacity(rounds);
            for r in 0..rounds {
                let t0 = Instant::now();
                fake.say(chat, COMMANDS[(r + chat as usize) % COMMANDS.len()]);
                let answer = tokio::time::timeout(Duration::from_secs(60), rx.recv())
                    .await
                    .expect("an answer within 60 s")
                    .expect("fake still running");
                lat.push(answer.at - t0);
            }
            lat
        });
    }
    let mut latencies = vec![];
    while let Some(l) = set.join_next().await {
        latencies.extend(l.expect("chat task"));
    }
    Figures { commands: latencies.len(), elapsed: start.elapsed(), latencies }
}

/// The reference: a bot that answers every update with one sendMessage and does nothing else.
async fn bare_bot(api: String) {
    let http = reqwest::Client::new();
    let mut offset = 0i64;
    loop {
        let r: serde_json::Value = match http
            .post(format!("{api}/botREF/getUpdates"))
            .json(&json!({"offset": offset, "timeout": 1}))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => return,
        };
        let updates = r["result"].as_array().cloned().unwrap_or_default();
        let mut sends = tokio::task::JoinSet::new();
        for u in updates {
            offset = offset.max(u["update_id"].as_i64().unwrap_or(0) + 1);
            let chat = u["message"]["chat"]["id"].as_i64().unwrap_or(0);
            let (http, api) = (http.clone(), api.clone());
            sends.spawn(async move {
                let _ = http
                    .post(format!("{api}/botREF/sendMessage"))
                    .json(&json!({"chat_id": chat, "text": "ok"}))
                    .send()
                    .await;
            });
        }
        while sends.join_next().await.is_some() {}
    }
}

fn world(chats: i64) -> serde_json::Value {
    let contacts: Vec<_> = (0..chats)
        .map(|i| {
            json!({"id": format!("P-{i}"), "client_id": "C-1", "name": format!("Contact {i}"),
                   "email": format!("c{i}@alpha.example"), "role": "admin"})
        })
        .collect();
    let jobs: Vec<_> = (1..=30)
        .map(|i| {
            json!({"id": format!("J-{i}"), "client_id": "C-1", "name": format!("Run {i}"), "status": "in_production",
                   "date_required": "2026-12-01",
                   "process_lines": [{"status": "planned", "process": "Screen print", "position": "Front", "qty": 100, "unit_price": "1.50"}],
                   "printed_garments": [{"description": "Tee", "expected_qty": 100}]})
        })
        .collect();
    json!({
        "clients": [{"id": "C-1", "name": "Alpha Ltd"}],
        "contacts": contacts,
        "jobs": jobs,
        "deliveries": [{"id": "D-1", "client_id": "C-1", "job_id": "J-1", "status": "sent", "sent_date": "2026-11-24",
                        "venue": "Alpha HQ", "description": "Tees", "contact": "Ann",
                        "tracking": {"carrier": "DPD", "number": "155", "url": "https://track.example/155"},
                        "lines": [{"description": "Tee", "qty": 100}]}],
        "visuals": [{"id": "V-1", "client_id": "C-1", "job_id": "J-2", "design_id": "DS-1", "category": "Colour visual",
                     "designer": "Des", "status": "awaiting_approval", "main_image": "/media/v1.svg"}]
    })
}

/// cport with its store loaded and every chat linked, polling `fake`.
async fn cport(fake: &FakeTelegram, chats: i64, telegram_limits: bool, dir: &std::path::Path) -> cport::AppState {
    let mut config = cport::config::Config {
        listen: "127.0.0.1:0".into(),
        database_url: cport::config::Secret::new(format!("sqlite://{}", dir.join("cport.db").display())),
        data_dir: dir.to_path_buf(),
        api_token: cport::config::Secret::new("bench"),
        link_secret: cport::config::Secret::new("bench-secret-0123456789"),
        ..Default::default()
    };
    config.email.dir = dir.join("mail");
    config.telegram.token = cport::config::Secret::new("123:BENCH");
    config.telegram.api_url = fake.url.clone();
    config.telegram.poll_timeout_seconds = 1;
    if !telegram_limits {
        config.telegram.messages_per_second = 1_000_000;
        config.telegram.chat_messages_per_second = 1_000_000;
        config.telegram.chat_messages_per_minute = 1_000_000;
    }
    let app = cport::App::build(config).await.expect("cport starts");
    let state = app.state.clone();
    let doc: cport::model::records::Document = serde_json::from_value(world(chats)).unwrap();
    cport::sync::import::apply_document(&state.db, &doc, false).await.expect("data loads");
    tokio::spawn(app.run(std::future::pending()));
    for i in 0..chats {
        let chat = FIRST_CHAT + i;
        let code =
            cport::actions::chat_link::new_link_code(&state, &format!("P-{i}"), chrono::Utc::now()).await.unwrap();
        let mut rx = fake.subscribe(chat);
        fake.say(chat, &format!("/start {code}"));
        rx.recv().await.expect("linked");
    }
    state
}

fn main() {
    cport::memory::tune();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let chats: i64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(50);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(40);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        println!(
            "{chats} chats × {rounds} commands ({}), loopback, {} cores",
            COMMANDS.join(", "),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!("{:<58} {:>7} {:>10} {:>9} {:>9}", "run", "answers", "per second", "p50 ms", "p99 ms");
        let reference = FakeTelegram::start().await;
        tokio::spawn(bare_bot(reference.url.clone()));
        drive(&reference, chats, rounds).await.print("reference: bare bot loop (no store, no logic)");

        let dir = tempfile::tempdir().unwrap();
        let fake = FakeTelegram::start().await;
        let _state = cport(&fake, chats, false, dir.path()).await;
        drive(&fake, chats, rounds).await.print("cport: commands on SQLite, Telegram's limits lifted");

        let dir2 = tempfile::tempdir().unwrap();
        let fake2 = FakeTelegram::start().await;
        let _state2 = cport(&fake2, chats, true, dir2.path()).await;
        drive(&fake2, chats, 3).await.print("cport: Telegram's limits kept (30 msg/s, 1 per chat per s)");
    });
}
