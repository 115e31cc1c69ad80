//! The `cport` command line: parses arguments, loads config, calls the library.
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use cport::actions::items::{ActionItem, for_contact};
use cport::config::{Config, Need, Secret};
use cport::digest::scheduler::{PassError, Trigger, run_pass};
use cport::store::Db;
use cport::store::contacts::{ContactRow, get_contact, list_active_contacts};
use cport::sync::SyncError;
use cport::sync::import::{ImportError, import_file};
use cport::{App, AppState, demo, gendata};

#[derive(Parser)]
#[command(
    name = "cport",
    version,
    about = "Tells TOT's clients what needs them, over email and chat, and takes their answers back"
)]
struct Cli {
    /// Config file (TOML). Default: ./cport.toml when it exists. CPORT_* variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum DiscordCommand {
    /// Register every command as a global slash command of the application.
    RegisterCommands,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service until SIGINT or SIGTERM: HTTP (portal, sync API, change feed, health,
    /// metrics), digest scheduler, alert scanner, outbox dispatchers and IMAP polling.
    Serve,
    /// Create a fresh demo store with realistic data, write its config, and serve it.
    Demo(DemoArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load a JSON document of TOT records (same format and checks as the sync API).
    Import(ImportArgs),
    /// Digests: send this period's digests now, or show the action items (--dry-run).
    Digest {
        #[command(subcommand)]
        command: DigestCommand,
    },
    /// Write a synthetic data set in the import format (for tests and benchmarks).
    GenData(GenDataArgs),
    /// Print a signed portal link that signs a contact in and opens PATH (staff tool).
    Link {
        /// The contact's TOT id.
        #[arg(long, value_name = "ID")]
        contact: String,
        /// The portal page, e.g. /visuals/V-1001.
        #[arg(long, value_name = "PATH", default_value = "/")]
        to: String,
        /// How long the link works, in days (default digest.link_ttl_days).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Print a one-time code that links a Telegram or Discord user to a contact
    /// (`/start CODE` to the bot, `/link CODE` in Discord).
    LinkCode {
        /// The contact's TOT id.
        #[arg(long, value_name = "ID")]
        contact: String,
    },
    /// Discord: register the slash commands with Discord (needs discord.token and
    /// discord.application_id).
    Discord {
        #[command(subcommand)]
        command: DiscordCommand,
    },
    /// Read one email (a reply to cport) on standard input and act on it: the MTA pipe.
    /// Exit 0 when handled, 75 (EX_TEMPFAIL) when the store is unavailable, 65 when unreadable.
    InboundEmail {
        /// Instead of standard input, every file in this folder (a replay, or a benchmark);
        /// answers are queued, not sent.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Inbound email held for staff (DMARC/DKIM failures).
    Inbound {
        #[command(subcommand)]
        command: InboundCommand,
    },
    /// Stop-press banners: post, list, retract.
    Banner {
        #[command(subcommand)]
        command: BannerCommand,
    },
    /// The outbox of messages: list them, re-queue failed or dead ones.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
}

#[derive(Subcommand)]
enum InboundCommand {
    /// List messages held because their authentication failed.
    Held {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum BannerCommand {
    /// Post a banner; an urgent one is also emailed at once to every contact of its audience.
    Post(BannerPostArgs),
    /// List every banner.
    List,
    /// Retract a banner so it shows nowhere.
    Retract {
        /// The banner's id (from `banner list`).
        id: i64,
    },
}

#[derive(Args)]
struct BannerPostArgs {
    /// The headline, shown first.
    #[arg(long)]
    title: String,
    /// The message.
    #[arg(long)]
    body: String,
    /// info, warning or urgent.
    #[arg(long, default_value = "info")]
    severity: String,
    /// Only these clients (repeat the flag); default every client.
    #[arg(long = "client", value_name = "ID")]
    clients: Vec<String>,
    /// Start time (RFC 3339); default now.
    #[arg(long, value_name = "TIME")]
    starts: Option<chrono::DateTime<chrono::Utc>>,
    /// Expiry time (RFC 3339); default never.
    #[arg(long, value_name = "TIME")]
    expires: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// List messages, newest first.
    List {
        /// Only this status: queued, sending, sent, failed, dead, dropped.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Send everything due now with `outbox.workers` senders, then exit (no server needed).
    Send,
    /// Re-queue a failed or dead message (by id), or every dead one (--dead).
    Retry {
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<i64>,
        #[arg(long)]
        dead: bool,
    },
}

#[derive(Args)]
struct DemoArgs {
    /// Folder for the demo store, pictures, mail and config (emptied of earlier demo files).
    #[arg(long, default_value = "demo-data", value_name = "DIR")]
    data_dir: PathBuf,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: String,
}

#[derive(Args)]
struct ImportArgs {
    /// The JSON document: {"clients": [...], "jobs": [...], ...}.
    file: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum DigestCommand {
    /// Run one digest pass now (all contacts, or one).
    Run(DigestRunArgs),
}

#[derive(Args)]
struct DigestRunArgs {
    /// Only this contact (TOT contact id).
    #[arg(long, value_name = "ID")]
    contact: Option<String>,
    /// Print what would be sent instead of sending.
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Send again even if this period's digest went out already.
    #[arg(long)]
    force: bool,
    /// Queue only; a running `cport serve` sends.
    #[arg(long)]
    no_send: bool,
}

#[derive(Args)]
struct GenDataArgs {
    /// Number of clients.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Number of jobs, spread over the clients.
    #[arg(long, default_value_t = 1000)]
    jobs: usize,
    /// Random seed; the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file (default: standard output).
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn config_path(cli: &Cli) -> Option<PathBuf> {
    cli.config.clone().or_else(|| {
        let p = PathBuf::from("cport.toml");
        p.exists().then_some(p)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let path = config_path(&cli);
    let load = |need| Config::load(path.as_deref(), need);
    match cli.command {
        Command::Serve => {
            let config = load(Need::Secrets)?;
            tracing::info!(database = %config.database_url_masked(), listen = %config.listen, "starting");
            let app = App::build(config).await?;
            app.run(cport::app::shutdown_signal()).await?;
        }
        Command::Migrate => {
            let config = load(Need::StoreOnly)?;
            let db = open_store(&config).await?;
            println!("migrations applied ({}, {})", db.engine(), config.database_url_masked());
        }
        Command::Import(args) => {
            let config = load(Need::StoreOnly)?;
            let db = open_store(&config).await?;
            return import(&db, &args).await;
        }
        Command::Digest {
            command: DigestCommand::Run(args),
        } => {
            if args.dry_run {
                let config = load(Need::StoreOnly)?;
                let db = open_store(&config).await?;
                dry_run(&db, &args).await?;
            } else {
                if args.json {
                    bail!("--json goes with --dry-run");
                }
                let state = open_state(load(Need::Secrets)?).await?;
                digest_run(&state, &args).await?;
            }
        }
        Command::GenData(args) => {
            let doc = gendata::generate(&gendata::Scale {
                clients: args.clients,
                jobs: args.jobs,
                seed: args.seed,
            });
            match &args.out {
                Some(p) => {
                    let f = std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?;
                    let mut w = std::io::BufWriter::new(f);
                    serde_json::to_writer(&mut w, &doc)?;
                    w.flush()?;
                    eprintln!("wrote {} records to {}", doc.total(), p.display());
                }
                None => {
                    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
                    serde_json::to_writer(&mut w, &doc)?;
                    w.flush()?;
                }
            }
        }
        Command::Demo(args) => run_demo(args).await?,
        Command::Link { contact, to, days } => {
            let state = open_state(load(Need::Secrets)?).await?;
            if !to.starts_with('/') || to.starts_with("//") {
                bail!("--to: `{to}` must be a portal path starting with /");
            }
            match cport::store::contacts::get_contact(&state.db, &contact).await {
                Ok(c) if c.active => {}
                Ok(_) => bail!("--contact: contact `{contact}` is not active"),
                Err(cport::store::StoreError::NotFound) => bail!("--contact: no contact with id `{contact}`"),
                Err(e) => return Err(e.into()),
            }
            let ttl = chrono::Duration::days(i64::from(days.unwrap_or(state.config.digest.link_ttl_days)));
            let url = state
                .signer
                .open_url(&state.config.public_url, &to, &contact, ttl, chrono::Utc::now());
            println!("{url}");
        }
        Command::LinkCode { contact } => {
            let state = open_state(load(Need::Secrets)?).await?;
            match cport::store::contacts::get_contact(&state.db, &contact).await {
                Ok(c) if c.active => {}
                Ok(_) => bail!("--contact: contact `{contact}` is not active"),
                Err(cport::store::StoreError::NotFound) => bail!("--contact: no contact with id `{contact}`"),
                Err(e) => return Err(e.into()),
            }
            let code = cport::actions::chat_link::new_link_code(&state, &contact, chrono::Utc::now()).await?;
            println!("{code}");
            for line in cport::actions::chat_link::how_to_link(&state.config, &code) {
                eprintln!("{line}");
            }
        }
        Command::Discord {
            command: DiscordCommand::RegisterCommands,
        } => {
            let config = load(Need::Secrets)?;
            if config.discord.token.is_empty() {
                bail!("discord.token: required to register commands (or CPORT_DISCORD_TOKEN)");
            }
            if config.discord.application_id.is_empty() {
                bail!("discord.application_id: required to register commands (or CPORT_DISCORD_APPLICATION_ID)");
            }
            let discord = cport::channels::discord::Discord::new(&config);
            let n = discord
                .register_commands()
                .await
                .map_err(|e| anyhow::anyhow!("Discord refused the commands: {e}"))?;
            println!("{n} slash commands registered");
        }
        Command::InboundEmail { dir: None } => return inbound_email(load(Need::Secrets)?).await,
        Command::InboundEmail { dir: Some(dir) } => {
            let state = open_state(load(Need::Secrets)?).await?;
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| format!("--dir: cannot read {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            let started = std::time::Instant::now();
            let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
            for f in &files {
                let raw = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
                let key = match cport::channels::inbound::handle(&state, &raw, chrono::Utc::now()).await {
                    Ok(d) => serde_json::to_value(&d)?["disposition"]
                        .as_str()
                        .unwrap_or("?")
                        .to_string(),
                    Err(cport::channels::inbound::InboundError::Store(e)) => return Err(e.into()),
                    Err(_) => "refused".to_string(),
                };
                *counts.entry(key).or_default() += 1;
            }
            let secs = started.elapsed().as_secs_f64();
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
            println!(
                "{} messages in {secs:.2}s ({:.0} messages/s): {}",
                files.len(),
                files.len() as f64 / secs.max(1e-9),
                summary.join(", ")
            );
        }
        Command::Inbound {
            command: InboundCommand::Held { limit },
        } => {
            let config = load(Need::StoreOnly)?;
            let db = open_store(&config).await?;
            let rows = cport::store::inbound::list_held(&db, limit).await?;
            println!("{} held message(s)", rows.len());
            for r in rows {
                println!(
                    "{}  {}  {}  {}",
                    r.received_at.format("%Y-%m-%d %H:%M"),
                    r.contact_id.as_deref().unwrap_or("-"),
                    r.message_id,
                    r.reason
                );
            }
        }
        Command::Banner { command } => {
            let state = open_state(load(Need::Secrets)?).await?;
            return banner(&state, command).await;
        }
        Command::Outbox { command } => {
            let need = if matches!(command, OutboxCommand::Send) {
                Need::Secrets
            } else {
                Need::StoreOnly
            };
            return outbox(load(need)?, command).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The store named by the config, its migrations applied: what every command starts from.
async fn open_store(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(config.database_url.expose()).await?;
    db.migrate().await?;
    Ok(db)
}

async fn open_state(config: Config) -> anyhow::Result<AppState> {
    let db = open_store(&config).await?;
    Ok(AppState::new(config, db)?)
}

async fn digest_run(state: &AppState, args: &DigestRunArgs) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let report = run_pass(
        state,
        now,
        args.contact.as_deref(),
        Trigger::Manual { force: args.force },
    )
    .await
    .map_err(|e| match e {
        PassError::Store(cport::store::StoreError::NotFound) => {
            anyhow::anyhow!(
                "--contact: no contact with id `{}`",
                args.contact.as_deref().unwrap_or("")
            )
        }
        other => other.into(),
    })?;
    println!(
        "digests: {} queued, {} with nothing to send, {} already sent this period (use --force to resend), {} with email off",
        report.queued, report.empty, report.already_decided, report.email_off
    );
    if !args.no_send {
        let d = cport::outbox::drain(state).await?;
        println!("outbox: {} sent, {} to retry, {} dead", d.sent, d.retrying, d.dead);
        if state.config.email.transport == "file" && d.sent > 0 {
            println!("emails written to {}", state.config.email.dir.display());
        }
    }
    Ok(())
}

async fn banner(state: &AppState, command: BannerCommand) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    match command {
        BannerCommand::Post(a) => {
            let input = cport::actions::banners::BannerInput {
                title: a.title,
                body: a.body,
                severity: a.severity,
                clients: a.clients,
                starts_at: a.starts,
                expires_at: a.expires,
            };
            let posted = cport::actions::banners::post(state, input, "cli", now).await?;
            println!("banner {} posted", posted.id);
            if posted.queued > 0 {
                let d = cport::outbox::drain(state).await?;
                println!("urgent: {} message(s) queued, {} sent now", posted.queued, d.sent);
            }
        }
        BannerCommand::List => {
            let rows = cport::store::banners::list_banners(&state.db).await?;
            println!(
                "{:<5} {:<8} {:<10} {:<17} {:<17} {:<20} TITLE",
                "ID", "SEVERITY", "STATE", "STARTS", "EXPIRES", "AUDIENCE"
            );
            for (b, clients) in rows {
                let st = if b.retracted_at.is_some() {
                    "retracted"
                } else if b.starts_at > now {
                    "scheduled"
                } else if b.expires_at.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M").to_string();
                println!(
                    "{:<5} {:<8} {:<10} {:<17} {:<17} {:<20} {}",
                    b.id,
                    b.severity,
                    st,
                    fmt(b.starts_at),
                    b.expires_at.map(fmt).unwrap_or_else(|| "-".into()),
                    if clients.is_empty() {
                        "all clients".into()
                    } else {
                        clients.join(",")
                    },
                    b.title
                );
            }
        }
        BannerCommand::Retract { id } => {
            if cport::actions::banners::retract(state, id, now).await? {
                println!("banner {id} retracted");
            } else {
                eprintln!("error: no active banner with id {id}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cport inbound-email`: the exit code tells the MTA what to do (75 = try again later).
async fn inbound_email(config: Config) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    const EX_DATAERR: u8 = 65;
    const EX_TEMPFAIL: u8 = 75;
    let mut raw = Vec::new();
    let limit = config.inbound.max_bytes;
    std::io::stdin().take(limit + 1).read_to_end(&mut raw)?;
    let state = match open_state(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: store unavailable, try again later: {e:#}");
            return Ok(ExitCode::from(EX_TEMPFAIL));
        }
    };
    match cport::channels::inbound::handle(&state, &raw, chrono::Utc::now()).await {
        Ok(d) => {
            println!("{}", serde_json::to_string(&d)?);
            // Send the answer now if it is due; a running server would also pick it up.
            cport::outbox::drain(&state).await?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.is_temporary() => {
            eprintln!("error: try again later: {e}");
            Ok(ExitCode::from(EX_TEMPFAIL))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(EX_DATAERR))
        }
    }
}

async fn send_outbox(state: &AppState) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // SIGINT or SIGTERM: each sender finishes the message in hand and hands the rest back.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        cport::app::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let d = cport::outbox::drain_concurrently(state, state.config.outbox.workers as usize, Some(stop_rx)).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "outbox: {} sent, {} to retry, {} dead, {} dropped in {secs:.2}s ({:.0} messages/s)",
        d.sent,
        d.retrying,
        d.dead,
        d.dropped,
        d.sent as f64 / secs.max(1e-9)
    );
    Ok(())
}

async fn outbox(config: Config, command: OutboxCommand) -> anyhow::Result<ExitCode> {
    use cport::store::outbox as ob;
    let db = &open_store(&config).await?;
    let now = chrono::Utc::now();
    match command {
        OutboxCommand::List { status, limit } => {
            if let Some(s) = &status
                && !ob::STATUSES.contains(&s.as_str())
            {
                bail!("--status: `{s}` is not one of {}", ob::STATUSES.join(", "));
            }
            let counts = ob::counts_by_status(db).await?;
            let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
            println!(
                "outbox: {}",
                if summary.is_empty() {
                    "empty".into()
                } else {
                    summary.join(", ")
                }
            );
            let suspended = cport::store::settings::list_settings(db)
                .await?
                .into_values()
                .filter(|s| s.email_suspended_at.is_some())
                .count();
            if suspended > 0 {
                println!("email suspended for {suspended} contact(s) after bounces");
            }
            println!(
                "{:<7} {:<8} {:<7} {:<7} {:<4} {:<17} {:<32} LAST ERROR / SUBJECT",
                "ID", "STATUS", "CHANNEL", "KIND", "TRY", "SENT / NEXT TRY", "RECIPIENT"
            );
            for m in ob::list_messages(db, status.as_deref(), limit).await? {
                println!(
                    "{:<7} {:<8} {:<7} {:<7} {:<4} {:<17} {:<32} {}",
                    m.id,
                    m.status,
                    m.channel,
                    m.kind,
                    m.attempts,
                    m.sent_at.unwrap_or(m.next_attempt_at).format("%Y-%m-%d %H:%M"),
                    truncate(&m.recipient, 32),
                    m.last_error.as_deref().unwrap_or(&m.subject)
                );
            }
        }
        OutboxCommand::Retry { id: Some(id), .. } => {
            if ob::requeue(db, id, now).await? {
                println!("message {id} queued again");
            } else {
                eprintln!("error: message {id} does not exist or is not failed or dead");
                return Ok(ExitCode::FAILURE);
            }
        }
        OutboxCommand::Send => send_outbox(&AppState::new(config, db.clone())?).await?,
        OutboxCommand::Retry { id: None, .. } => {
            let n = ob::requeue_dead(db, now).await?;
            println!("{n} dead message(s) queued again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn import(db: &Db, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let progress = !args.quiet && std::io::stderr().is_terminal();
    match import_file(db, &args.file, progress).await {
        Ok(reports) => {
            let mut total = 0;
            for r in &reports {
                total += r.received;
                println!(
                    "{:<18} {:>8} received {:>8} inserted {:>8} updated {:>8} unchanged",
                    r.entity, r.received, r.inserted, r.updated, r.unchanged
                );
            }
            println!("imported {total} records in {:.1}s", started.elapsed().as_secs_f64());
            Ok(ExitCode::SUCCESS)
        }
        Err(ImportError::Sync(SyncError::Invalid(errs))) => {
            for e in errs.iter().take(200) {
                eprintln!("{e}");
            }
            if errs.len() > 200 {
                eprintln!("… and {} more", errs.len() - 200);
            }
            eprintln!(
                "error: {} invalid record(s) in {}; nothing was written",
                errs.len(),
                args.file.display()
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

async fn dry_run(db: &Db, args: &DigestRunArgs) -> anyhow::Result<()> {
    let contacts: Vec<ContactRow> = match &args.contact {
        Some(id) => vec![get_contact(db, id).await.map_err(|e| match e {
            cport::store::StoreError::NotFound => {
                anyhow::anyhow!("--contact: no contact with id `{id}`")
            }
            other => other.into(),
        })?],
        None => list_active_contacts(db).await?,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut all = Vec::new();
    for c in &contacts {
        let items = for_contact(db, c).await?;
        if args.json {
            all.push(serde_json::json!({ "contact": c, "items": items }));
        } else {
            print_items(&mut out, c, &items)?;
        }
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &all)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

fn print_items(out: &mut impl Write, c: &ContactRow, items: &[ActionItem]) -> std::io::Result<()> {
    writeln!(
        out,
        "{}  {} <{}> ({}), {}: {} item(s)",
        c.id,
        c.name,
        c.email,
        c.role,
        c.client_name,
        items.len()
    )?;
    let mut last = None;
    for it in items {
        if last != Some(it.category) {
            writeln!(out, "  {} {}", it.category.code(), it.category.heading())?;
            last = Some(it.category);
        }
        let date = it.date.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "    {:<10} {:<10} {:<58} {}",
            it.id,
            date,
            truncate(&it.title, 58),
            it.command
        )?;
    }
    if items.is_empty() {
        writeln!(out, "    (nothing needs attention; no digest would be sent)")?;
    }
    writeln!(out)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Removes only what an earlier demo wrote, never anything else in the folder.
fn clear_demo_files(dir: &Path) -> std::io::Result<()> {
    for f in ["cport.db", "cport.db-wal", "cport.db-shm", "cport.toml"] {
        let p = dir.join(f);
        if p.exists() {
            std::fs::remove_file(p)?;
        }
    }
    for d in ["media", "mail"] {
        let p = dir.join(d);
        if p.exists() {
            std::fs::remove_dir_all(p)?;
        }
    }
    Ok(())
}

async fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clear_demo_files(dir).with_context(|| format!("cannot clear the old demo in {}", dir.display()))?;
    // Defaults and the environment (so CPORT_TELEGRAM_TOKEN, CPORT_DISCORD_* and the like
    // work here too), then what the demo decides itself.
    let mut config = Config::load(None, Need::StoreOnly)?;
    config.listen = args.listen.clone();
    config.public_url = format!("http://{}", args.listen);
    config.database_url = Secret::new(format!("sqlite://{}", dir.join("cport.db").display()));
    config.data_dir = dir.clone();
    config.api_token = Secret::new(random_secret());
    config.link_secret = Secret::new(random_secret());
    config.email.dir = dir.join("mail");
    config.validate(Need::Secrets)?;
    let config_file = dir.join("cport.toml");
    std::fs::write(
        &config_file,
        format!("# Written by `cport demo`.\n{}", config.to_toml()),
    )
    .with_context(|| format!("cannot write {}", config_file.display()))?;
    let pictures = demo::write_media(dir)?;

    let db = open_store(&config).await?;
    let now = chrono::Utc::now();
    let doc = demo::document(now);
    let reports = cport::sync::import::apply_document(&db, &doc, false)
        .await
        .map_err(|e| anyhow::anyhow!("demo data did not load: {e}"))?;
    let records: usize = reports.iter().map(|r| r.received).sum();

    let app = App::build_with(config.clone(), db).await?;
    cport::actions::banners::post(&app.state, demo::banner(now), "demo", now).await?;
    run_pass(&app.state, now, None, Trigger::Manual { force: false }).await?;
    let sent = cport::outbox::drain(&app.state).await?;
    let base = &config.public_url;
    let cfg = config_file.display();
    println!();
    println!("cport demo is running at {base}  (Ctrl-C stops it)");
    println!();
    println!(
        "  store      {} ({records} records, {pictures} pictures)",
        dir.join("cport.db").display()
    );
    println!(
        "  digests    {} emails written to {}",
        sent.sent,
        config.email.dir.display()
    );
    println!("  config     {cfg}");
    println!("  api token  {}", config.api_token.expose());
    println!();
    println!("Try next, in another terminal:");
    println!("  curl {base}/healthz");
    println!("  curl -s {base}/metrics | head");
    // Pictures are private: this address is signed and opens for a day without a session.
    println!(
        "  open {}   (a visual awaiting approval; signed, for a day)",
        app.state
            .picture_url("/media/visuals/V-1001.svg", now + chrono::Duration::days(1))
    );
    println!("  cargo run --release -- --config {cfg} digest run --dry-run");
    println!("  cargo run --release -- --config {cfg} digest run --dry-run --contact P-101 --json");
    println!(
        "  curl -X PUT {base}/api/v1/visuals -H 'Authorization: Bearer {}' \\",
        config.api_token.expose()
    );
    println!("       -H 'Content-Type: application/json' --data @examples/visuals.json");
    println!();
    if !config.telegram.token.is_empty() || !config.discord.public_key.is_empty() {
        let code = cport::actions::chat_link::new_link_code(&app.state, "P-101", now).await?;
        println!(
            "Chat: link yourself as P-101 ({}) with the code {code}:",
            demo::DEMO_CONTACTS[0].who
        );
        for line in cport::actions::chat_link::how_to_link(&app.state.config, &code) {
            println!("  {line}");
        }
        println!(
            "  then try /items, /track D-2002, /visuals; more codes: cport --config {cfg} link-code --contact P-102"
        );
        println!();
    }
    println!("Open the portal as a demo contact (each link signs you in):");
    for c in demo::DEMO_CONTACTS {
        println!(
            "  {:<6} {}\n         {}",
            c.id,
            c.who,
            app.state.portal_link(c.id, "/", now)
        );
    }
    println!();
    std::io::stdout().flush()?;
    app.run(cport::app::shutdown_signal()).await?;
    Ok(())
}
