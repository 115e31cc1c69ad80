//! The `cport` command line: parses arguments, loads the config and runs one command; one
//! file per command beside this one. `src/main.rs` only calls [`main`].

mod banner;
mod demo;
mod digest;
mod importing;
mod inbound;
mod outbox;
pub mod reference;
mod staff;

use banner::banner;
use demo::run_demo;
use digest::{digest_run, dry_run};
use importing::import;
use inbound::inbound_email;
use outbox::outbox;
use staff::staff;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::actions::items::{ActionItem, ItemCache};
use crate::config::{Config, Need, Secret};
use crate::digest::scheduler::{PassError, Trigger, run_pass};
use crate::store::Db;
use crate::store::contacts::{ContactRow, get_contact, list_active_contacts};
use crate::sync::SyncError;
use crate::sync::import::{ImportError, import_file};
use crate::{App, AppState, gendata};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

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
        /// How long the link works, in days, 1 to 366 (default digest.link_ttl_days).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=366))]
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
    /// Exit 0 when handled, 75 (EX_TEMPFAIL) when the store or cport failed (retry), 65 when unreadable.
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
    /// Staff accounts for the console at /staff: add (prints a password link), list, remove.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Add a staff account and print a single-use link to set its password; for an existing
    /// account, print a new link (a forgotten password).
    Add {
        /// The staff member's email address (their sign-in name).
        #[arg(long, value_name = "EMAIL")]
        email: String,
    },
    /// List the staff accounts.
    List,
    /// Remove a staff account and end its sessions.
    Remove {
        /// The account's email address.
        #[arg(long, value_name = "EMAIL")]
        email: String,
    },
}

#[derive(Subcommand)]
enum InboundCommand {
    /// List messages held because their authentication failed.
    Held {
        /// At most this many, newest first (1 to 10000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// The latest inbound messages with what became of each, whichever route took them.
    List {
        /// Only this outcome: processed, bounce, ignored, held or duplicate.
        #[arg(long, value_name = "DISPOSITION")]
        disposition: Option<String>,
        /// At most this many, newest first (1 to 10000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
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
        /// At most this many, newest first (1 to 10000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Send everything due now with `outbox.workers` senders, then exit (no server needed).
    Send,
    /// Re-queue a failed or dead message (by id), or every dead one (--dead).
    Retry {
        /// The message's id (from `outbox list`).
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<i64>,
        /// Every dead message.
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

/// The whole command line as clap describes it (for the command-line reference).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
}

fn config_path(cli: &Cli) -> Option<PathBuf> {
    cli.config.clone().or_else(|| {
        let p = PathBuf::from("cport.toml");
        p.exists().then_some(p)
    })
}

pub fn main() -> ExitCode {
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
            if config.inbound.trusted_authserv_ids.is_empty() {
                tracing::warn!(
                    "email replies are acted on without a trusted DMARC or DKIM result \
                     (inbound.trusted_authserv_ids is empty): an approval by email then rests on \
                     the secrecy of the reply address; put a DMARC check in front of cport and name it there"
                );
            }
            let app = App::build(config).await?;
            app.run(crate::app::shutdown_signal()).await?;
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
        Command::Digest { command: DigestCommand::Run(args) } => {
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
            let doc = gendata::generate(&gendata::Scale { clients: args.clients, jobs: args.jobs, seed: args.seed });
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
            match crate::store::contacts::get_contact(&state.db, &contact).await {
                Ok(c) if c.active => {}
                Ok(_) => bail!("--contact: contact `{contact}` is not active"),
                Err(crate::store::StoreError::NotFound) => bail!("--contact: no contact with id `{contact}`"),
                Err(e) => return Err(e.into()),
            }
            let ttl = chrono::Duration::days(i64::from(days.unwrap_or(state.config.digest.link_ttl_days)));
            let url = state.signer.open_url(&state.config.public_url, &to, &contact, ttl, chrono::Utc::now());
            println!("{url}");
        }
        Command::LinkCode { contact } => {
            let state = open_state(load(Need::Secrets)?).await?;
            match crate::store::contacts::get_contact(&state.db, &contact).await {
                Ok(c) if c.active => {}
                Ok(_) => bail!("--contact: contact `{contact}` is not active"),
                Err(crate::store::StoreError::NotFound) => bail!("--contact: no contact with id `{contact}`"),
                Err(e) => return Err(e.into()),
            }
            let code = crate::actions::chat_link::new_link_code(&state, &contact, chrono::Utc::now()).await?;
            println!("{code}");
            for line in crate::actions::chat_link::how_to_link(&state.config, &code) {
                eprintln!("{line}");
            }
        }
        Command::Discord { command: DiscordCommand::RegisterCommands } => {
            let config = load(Need::Secrets)?;
            if config.discord.token.is_empty() {
                bail!("discord.token: required to register commands (or CPORT_DISCORD_TOKEN)");
            }
            if config.discord.application_id.is_empty() {
                bail!("discord.application_id: required to register commands (or CPORT_DISCORD_APPLICATION_ID)");
            }
            let discord = crate::channels::discord::Discord::new(&config);
            let n =
                discord.register_commands().await.map_err(|e| anyhow::anyhow!("Discord refused the commands: {e}"))?;
            println!("{n} slash commands registered");
        }
        Command::InboundEmail { dir: None } => match load(Need::Secrets) {
            Ok(config) => return inbound_email(config).await,
            // The MTA shows this to no one but its log while it retries (exit 75); it names
            // neither the file nor what is in it, since a final bounce would carry it.
            Err(e) => {
                tracing::debug!(error = %e, "inbound-email: configuration");
                eprintln!(
                    "error: cport's configuration cannot be used; the message is kept for a later try (run `cport migrate` as this user to see why)"
                );
                return Ok(ExitCode::from(inbound::EX_TEMPFAIL));
            }
        },
        Command::InboundEmail { dir: Some(dir) } => {
            let state = open_state(load(Need::Secrets)?).await?;
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| format!("--dir: cannot read {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            let started = std::time::Instant::now();
            let counts = crate::channels::inbound::handle_backlog(&state, &files).await?;
            let secs = started.elapsed().as_secs_f64();
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
            println!(
                "{} messages in {secs:.2}s ({:.0} messages/s): {}",
                files.len(),
                files.len() as f64 / secs.max(1e-9),
                summary.join(", ")
            );
        }
        Command::Inbound { command: InboundCommand::List { disposition, limit } } => {
            const DISPOSITIONS: &[&str] = &["processed", "bounce", "ignored", "held", "duplicate"];
            if let Some(d) = &disposition
                && !DISPOSITIONS.contains(&d.as_str())
            {
                bail!("--disposition: `{d}` is not one of {}", DISPOSITIONS.join(", "));
            }
            let config = load(Need::StoreOnly)?;
            let db = open_store(&config).await?;
            let counts = crate::store::inbound::counts_by_disposition(&db).await?;
            let summary: Vec<String> = counts.iter().map(|(d, n)| format!("{d} {n}")).collect();
            println!("inbound: {}", if summary.is_empty() { "nothing yet".into() } else { summary.join(", ") });
            println!("{:<17} {:<10} {:<10} {:<40} REASON", "RECEIVED", "OUTCOME", "CONTACT", "MESSAGE-ID");
            for r in crate::store::inbound::list_recent(&db, disposition.as_deref(), limit).await? {
                println!(
                    "{:<17} {:<10} {:<10} {:<40} {}",
                    r.received_at.format("%Y-%m-%d %H:%M"),
                    r.disposition,
                    r.contact_id.as_deref().unwrap_or("-"),
                    digest::truncate(&r.message_id, 40),
                    r.reason
                );
            }
        }
        Command::Inbound { command: InboundCommand::Held { limit } } => {
            let config = load(Need::StoreOnly)?;
            let db = open_store(&config).await?;
            let rows = crate::store::inbound::list_held(&db, limit).await?;
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
        Command::Staff { command } => {
            let state = open_state(load(Need::Secrets)?).await?;
            return staff(&state, command).await;
        }
        Command::Outbox { command } => {
            let need = if matches!(command, OutboxCommand::Send) { Need::Secrets } else { Need::StoreOnly };
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
