//! The `cport` command line: parses arguments, loads the config and runs one command; one
//! file per command beside this one. `src/main.rs` only calls [`main`].

mod args;
mod banner;
mod demo;
mod digest;
mod importing;
mod inbound;
mod outbox;
pub mod reference;
mod staff;

use args::*;
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
use clap::Parser;

fn init_logging(format: &str) {
    // The IMAP client logs each command it writes at trace level, the LOGIN with its
    // password among them, and whole messages: held at info whatever RUST_LOG asks, as
    // secrets never go to the log.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
        .add_directive("async_imap=info".parse().expect("a directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    // Every panic, wherever it happens (a detached task sending chat answers, a message the
    // outbox catches and marks dead, a background task the supervisor restarts), goes to the
    // log with where it happened, and is counted for alerting: a panic is always a bug.
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        let message = crate::supervise::panic_text(info.payload());
        tracing::error!(%location, %message, %backtrace, "bug: a panic");
        metrics::counter!("cport_panics_total").increment(1);
    }));
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

/// A command whose output is cut short (`cport outbox list | head -1`) ends there, quietly, as
/// `ls` or `cat` do: Rust starts with SIGPIPE ignored, so every later `println!` would panic
/// on the closed pipe. The serving commands keep it ignored (a client that hangs up is no
/// reason to stop), and so does the MTA pipe, which must always end with an exit code.
fn end_quietly_when_output_is_closed() {
    // No safe binding restores a signal's default disposition (`signal-hook` installs
    // handlers only), so this is one of the crate's audited `unsafe` calls.
    #[cfg(unix)]
    #[allow(unsafe_code)]
    // SAFETY: `signal` with SIG_DFL installs no handler code; it runs before any other thread
    // starts, so nothing races with the change.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

pub fn main() -> ExitCode {
    // rustls is built here with two crypto providers (`ring` by lettre and sqlx, `aws-lc-rs`
    // by tokio-rustls), so it has none by default and any `ClientConfig::builder()` a crate
    // makes without naming one panics. cport's own clients name `ring`; this makes it the
    // process's default for the rest (PostgreSQL's `sslmode=verify-ca`, among others).
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return refused_arguments(e),
    };
    if !matches!(cli.command, Command::Serve | Command::Demo(_) | Command::InboundEmail { .. }) {
        end_quietly_when_output_is_closed();
    }
    init_logging(&cli.log_format);
    JSON_LOG.store(cli.log_format == "json", std::sync::atomic::Ordering::Relaxed);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            say_error(format_args!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let outcome = run(cli).await;
        close_opened().await;
        outcome
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            say_error(format_args!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Arguments the parser refuses: its words and its exit code (2), except for
/// `inbound-email`, whose caller is the mail server: any failure before the message is read
/// is 75 there (try again later), so a typo in `master.cf` or a flag an upgrade dropped
/// defers the mail, said in the MTA's log, instead of bouncing every reply with the usage.
fn refused_arguments(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let asked = matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !asked && std::env::args_os().skip(1).any(|a| a == "inbound-email") {
        let _ = e.print();
        return ExitCode::from(inbound::EX_TEMPFAIL);
    }
    e.exit()
}

/// One line of what a command found wrong (a record of an import, a file of a backlog) on
/// stderr: as written, or a JSON log line when the log is JSON.
pub(crate) fn say_problem(message: std::fmt::Arguments<'_>) {
    if JSON_LOG.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(problem = %message, "refused");
    } else {
        eprintln!("{message}");
    }
}

/// Whether the log is JSON (`--log-format json`), set once at start.
static JSON_LOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A command's error on stderr: `error: …`, or in the log's own shape when the log is JSON,
/// so a collector reads every line.
pub(crate) fn say_error(message: std::fmt::Arguments<'_>) {
    if JSON_LOG.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::error!(error = %message, "refused");
    } else {
        eprintln!("error: {message}");
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let path = config_path(&cli);
    let load = |need| Config::load(path.as_deref(), need);
    match cli.command {
        Command::Serve => {
            let config = load(Need::Secrets)?;
            tracing::info!(database = %config.database_url_masked(), listen = %config.listen, "starting");
            start_warnings(&config);
            let app = App::build(config).await?;
            app.run(crate::app::shutdown_signal()).await?;
        }
        Command::Migrate => {
            let config = load(Need::StoreOnly)?;
            let db = Db::connect(config.database_url.expose()).await?;
            opened(&db);
            let before = db.applied_migrations().await?;
            db.migrate().await?;
            let after = db.applied_migrations().await?;
            // An upgrade and a store already up to date read apart.
            let what = match after - before {
                0 => format!("none new; the store was up to date at {after}"),
                n => format!("{n} new, {after} in all"),
            };
            println!("migrations applied: {what} ({}, {})", db.engine(), config.database_url_masked());
        }
        Command::Import(args) => {
            let config = load(Need::StoreOnly)?;
            // A file that cannot be read is said before a store is opened (or made) for it.
            // A pipe or FIFO is not opened here: opening and closing it would end its writer.
            if let Err(error) = std::fs::metadata(&args.file).and_then(|m| match m {
                m if m.is_dir() => Err(std::io::Error::other("it is a folder, not a file")),
                m if m.is_file() => std::fs::File::open(&args.file).map(drop),
                _ => Ok(()),
            }) {
                bail!("cannot read {}: {error}", crate::model::path_shown(&args.file));
            }
            let url = config.database_url.expose();
            let made = !crate::store::exists(url);
            let db = make_store(&config).await?;
            let imported = import(&db, &args).await;
            // A store made for a document that was refused holds nothing: it goes again,
            // rather than stay behind as if something had been imported.
            if made && !matches!(imported, Ok(code) if code == ExitCode::SUCCESS) {
                db.close().await;
                if let Some(file) = crate::store::sqlite_file(url) {
                    for end in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{end}", file.display()));
                    }
                    eprintln!(
                        "the store made for it, {}, was removed again: nothing was written",
                        crate::model::path_shown(&file)
                    );
                }
            }
            return imported;
        }
        Command::Digest { command: DigestCommand::Run(args) } => {
            if args.dry_run {
                let config = load(Need::StoreOnly)?;
                let db = open_store(&config).await?;
                dry_run(&config, &db, &args).await?;
            } else {
                if args.json {
                    bail!("--json goes with --dry-run");
                }
                let state = open_state(load(Need::Signing)?).await?;
                digest_run(&state, &args).await?;
            }
        }
        Command::GenData(args) => {
            let doc = gendata::generate(&gendata::Scale {
                clients: args.clients as usize,
                jobs: args.jobs as usize,
                seed: args.seed,
            });
            match &args.out {
                Some(p) => {
                    let f = std::fs::File::create(p)
                        .with_context(|| format!("cannot write {}", crate::model::path_shown(p)))?;
                    let mut w = std::io::BufWriter::new(f);
                    serde_json::to_writer(&mut w, &doc)?;
                    w.flush()?;
                    eprintln!("wrote {} records to {}", doc.total(), crate::model::path_shown(p));
                }
                None => {
                    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
                    serde_json::to_writer(&mut w, &doc)?;
                    w.flush()?;
                }
            }
        }
        Command::Demo(args) => {
            // The demo writes the configuration it runs with (its folder's cport.toml); one
            // named here would be ignored without a word, so it is refused instead.
            if let Some(named) = &cli.config {
                anyhow::bail!(
                    "--config {}: the demo makes and uses its own ({}); change it with CPORT_* variables, or run `cport serve` with a configuration",
                    crate::model::path_shown(named),
                    crate::model::path_shown(&args.data_dir.join("cport.toml"))
                );
            }
            run_demo(args).await?
        }
        Command::Link { contact, to, days } => {
            // The rule the sign-in link follows (anything else would open the home page),
            // checked before anything is opened.
            if let Some(why) = crate::portal::auth::not_a_next(&to) {
                bail!("--to: {} {why}", crate::model::quoted(&to));
            }
            let state = open_state(load(Need::Signing)?).await?;
            let who = active_contact(&state.db, &contact).await?;
            let actor = crate::actions::Actor::new(who, crate::model::Channel::Portal);
            if let Some(why) = crate::actions::landing::leads_nowhere(&state.db, &actor, &to).await? {
                bail!("--to: {}: {why}", crate::model::quoted(&to));
            }
            let ttl = chrono::Duration::days(i64::from(days.unwrap_or(state.config.digest.link_ttl_days)));
            let url = state.signer.open_url(&state.config.public_url, &to, &contact, ttl, chrono::Utc::now());
            println!("{url}");
        }
        Command::LinkCode { contact } => {
            let state = open_state(load(Need::Signing)?).await?;
            active_contact(&state.db, &contact).await?;
            let code = crate::actions::chat_link::new_link_code(&state, &contact, chrono::Utc::now())
                .await
                .map_err(|e| anyhow::anyhow!("link-code: {e}"))?;
            println!("{code}");
            for line in crate::actions::chat_link::how_to_link(&state.config, &code) {
                eprintln!("{line}");
            }
        }
        Command::Discord { command: DiscordCommand::RegisterCommands } => {
            let config = load(Need::Signing)?;
            if config.discord.token.is_empty() {
                bail!("discord.token: required to register commands (or CPORT_DISCORD_TOKEN)");
            }
            if config.discord.application_id.is_empty() {
                bail!("discord.application_id: required to register commands (or CPORT_DISCORD_APPLICATION_ID)");
            }
            let discord = crate::channels::discord::Discord::new(&config);
            let n = discord.register_commands().await.map_err(|e| {
                anyhow::anyhow!(crate::channels::discord::registration_error(&e, &config.discord.api_url))
            })?;
            println!("{n} slash commands registered");
        }
        Command::InboundEmail { dir: None } => match load(Need::Signing) {
            Ok(config) => return inbound_email(config).await,
            // The MTA shows this to no one but its log while it retries (exit 75); it names
            // neither the file nor what is in it, since a final bounce would carry it.
            // A person running it by hand, at a terminal, is told all.
            Err(e) => {
                tracing::debug!(error = %e, "inbound-email: configuration");
                let why = match std::io::stderr().is_terminal() {
                    true => e.to_string(),
                    false => format!(
                        "{} (run `cport inbound-email` by hand, at a terminal, as this user to see the whole error)",
                        e.discreet()
                    ),
                };
                say_error(format_args!(
                    "cport's configuration cannot be used ({why}); the message is kept for a later try"
                ));
                return Ok(ExitCode::from(inbound::EX_TEMPFAIL));
            }
        },
        Command::InboundEmail { dir: Some(dir) } => {
            let state = open_state(load(Need::Signing)?).await?;
            // Regular files only: a link is not followed (it may lead out of the folder), a
            // folder inside is not a message; each is named as passed over.
            let mut files: Vec<PathBuf> = Vec::new();
            for entry in std::fs::read_dir(&dir)
                .with_context(|| format!("--dir: cannot read {}", crate::model::path_shown(&dir)))?
            {
                let entry = entry.with_context(|| format!("--dir: cannot read {}", crate::model::path_shown(&dir)))?;
                match entry.file_type() {
                    Ok(t) if t.is_file() => files.push(entry.path()),
                    _ => say_problem(format_args!(
                        "passed over {}: not a regular file",
                        crate::model::path_shown(&entry.path())
                    )),
                }
            }
            files.sort();
            let started = std::time::Instant::now();
            let backlog = crate::channels::inbound::handle_backlog(&state, &files).await?;
            let secs = started.elapsed().as_secs_f64();
            for (file, why) in &backlog.refused {
                say_problem(format_args!("refused {}: {why}", crate::model::path_shown(file)));
            }
            let summary: Vec<String> = backlog.counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
            let counted = if summary.is_empty() { String::new() } else { format!(": {}", summary.join(", ")) };
            println!(
                "{} messages in {secs:.2}s ({:.0} messages/s){counted}",
                files.len(),
                files.len() as f64 / secs.max(1e-9)
            );
            // A file refused is an error of the run, as one refused on standard input is: a
            // script sees it by the exit code, the files by the lines above.
            if !backlog.refused.is_empty() {
                say_error(format_args!("{} of the {} files were refused", backlog.refused.len(), files.len()));
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Inbound { command: InboundCommand::List { disposition, limit } } => {
            use crate::model::InboundOutcome;
            let disposition = match disposition.as_deref().map(|d| (d, InboundOutcome::parse(d))) {
                None => None,
                Some((_, Some(d))) => Some(d),
                Some((d, None)) => {
                    bail!("--disposition: {} is not one of {}", crate::model::quoted(d), InboundOutcome::names())
                }
            };
            let config = load(Need::StoreOnly)?;
            let db = open_store(&config).await?;
            let counts = crate::store::inbound::counts_by_disposition(&db).await?;
            let summary: Vec<String> = counts.iter().map(|(d, n)| format!("{d} {n}")).collect();
            println!("inbound: {}", if summary.is_empty() { "nothing yet".into() } else { summary.join(", ") });
            let listed = crate::store::inbound::list_recent(&db, disposition, limit).await?;
            if listed.is_empty() {
                // A header over nothing reads as a listing that failed.
                println!("no {}messages to list", disposition.map(|d| format!("{d} ")).unwrap_or_default());
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:<17} {:<10} {:<10} {:<40} REASON", "RECEIVED", "OUTCOME", "CONTACT", "MESSAGE-ID");
            for r in listed {
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
        // Only the commands that write links (an urgent banner's messages, a staff password
        // link) need the link secret: listing or retracting works without it.
        Command::Banner { command } => {
            let need = if matches!(command, BannerCommand::Post(_)) { Need::Signing } else { Need::StoreOnly };
            let state = open_state(load(need)?).await?;
            return banner(&state, command).await;
        }
        Command::Staff { command } => {
            let need = if matches!(command, StaffCommand::Add { .. }) { Need::Signing } else { Need::StoreOnly };
            let state = open_state(load(need)?).await?;
            return staff(&state, command).await;
        }
        Command::Outbox { command } => {
            // Queueing messages again (one, or every dead one) checks the links they carry,
            // which takes the key.
            let signs = matches!(command, OutboxCommand::Send | OutboxCommand::Retry { .. });
            let need = if signs { Need::Signing } else { Need::StoreOnly };
            return outbox(load(need)?, command).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The store named by the config, as it is: what every command but those that fill or run a
/// store starts from. Only those (`migrate`, `import`, `demo`, `serve`) make a store that is
/// not there or apply migrations: any other finding none says so, rather than reading a new
/// empty store made at a misspelt path and reporting nothing, and one finding an older store
/// asks for `cport migrate` rather than changing it under a `cport serve` still running on it.
async fn open_store(config: &Config) -> anyhow::Result<Db> {
    let url = config.database_url_masked();
    if !crate::store::exists(config.database_url.expose()) {
        // Run beside a demo's folder, the demo's store is the one most likely meant.
        let demo = Path::new(DEMO_DIR).join("cport.toml");
        let hint = if demo.is_file() {
            format!("; the demo's is read with --config {}", demo.display())
        } else {
            String::new()
        };
        bail!("database_url: no store at {url} yet (`cport migrate`, `cport import` or `cport serve` makes one){hint}");
    }
    match Db::connect_as_is(config.database_url.expose()).await {
        Ok(db) => {
            opened(&db);
            Ok(db)
        }
        Err(e @ crate::store::StoreError::Older { .. }) => {
            bail!("database_url: {e}: run `cport migrate` first (`cport serve` applies them too)")
        }
        Err(e) => Err(e.into()),
    }
}

/// The store named by the config, made when it is not there and its migrations applied.
async fn make_store(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(config.database_url.expose()).await?;
    opened(&db);
    db.migrate().await?;
    Ok(db)
}

/// Every store this command opened, to be closed before the process ends: SQLite then folds
/// its write-ahead log into the file, so the file alone is the whole store (as a copy made
/// for a backup after `migrate` or `staff add` takes it), not a file and a `-wal` beside it.
static OPENED: std::sync::Mutex<Vec<Db>> = std::sync::Mutex::new(Vec::new());

fn opened(db: &Db) {
    if let Ok(mut all) = OPENED.lock() {
        all.push(db.clone());
    }
}

async fn close_opened() {
    let all = OPENED.lock().map(|mut all| std::mem::take(&mut *all)).unwrap_or_default();
    for db in all {
        // Bounded: a connection some task still held would otherwise keep the process.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), db.close()).await;
    }
}

async fn open_state(config: Config) -> anyhow::Result<AppState> {
    let db = open_store(&config).await?;
    Ok(AppState::new(config, db)?)
}

/// The active contact `--contact` names, or an error naming the option.
async fn active_contact(db: &crate::store::Db, id: &str) -> anyhow::Result<ContactRow> {
    match get_contact(db, id).await {
        Ok(c) if c.active => Ok(c),
        Ok(_) => bail!("--contact: contact {} is not active", crate::model::quoted(id)),
        Err(crate::store::StoreError::NotFound) => bail!("--contact: no contact with id {}", crate::model::quoted(id)),
        Err(e) => Err(e.into()),
    }
}

/// What a server about to start should know of its configuration ([`Config::start_warnings`]),
/// logged as warnings: said by `serve` and by the demo, which serves the same way.
pub(crate) fn start_warnings(config: &Config) {
    for warning in config.start_warnings() {
        tracing::warn!("{warning}");
    }
}
