//! The command line's grammar: every command, subcommand and option as clap reads them.
//! What each one does is in its own file beside this one.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cport",
    version,
    about = "Tells TOT's clients what needs them, over email and chat, and takes their answers back"
)]
pub(super) struct Cli {
    /// Config file (TOML). Default: ./cport.toml when it exists. CPORT_* variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub(super) config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub(super) log_format: String,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand, Debug)]
pub(super) enum DiscordCommand {
    /// Register every command as a global slash command of the application.
    RegisterCommands,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Run the service until SIGINT or SIGTERM: HTTP (portal, sync API, change feed, health,
    /// metrics), digest scheduler, alert scanner, outbox dispatchers and IMAP polling. It
    /// listens where the config's `listen` says (`CPORT_LISTEN`; 127.0.0.1:8080 by default).
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
        /// The portal page, e.g. /visuals/V-1001. A visual, job, delivery or purchase order is
        /// checked: one of another client's, or of a kind the contact's role does not see, is
        /// refused, and so is a path below it that is none of its pages (a job's delivery
        /// form only for a role that gives one, a delivery's note.pdf and packing.pdf), as are
        /// staff, API and signed-link paths; other pages are not checked.
        #[arg(long, value_name = "PATH", default_value = "/")]
        to: String,
        /// How long the link works, in days, 1 to 366 (default digest.link_ttl_days).
        #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..=366))]
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
    /// Exit 0 when handled, 75 (EX_TEMPFAIL) when the store or cport failed (retry), 65 when
    /// unreadable or larger than inbound.max_bytes (bounced).
    InboundEmail {
        /// Instead of standard input, every regular file in this folder (a replay, or a
        /// benchmark; links are not followed); answers are queued, not sent. Each file refused
        /// is named with why on standard error, and the run then exits 1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Inbound email: what became of each message (list), and those held for staff (held).
    Inbound {
        #[command(subcommand)]
        command: InboundCommand,
    },
    /// Stop-press banners: post, list, retract.
    Banner {
        #[command(subcommand)]
        command: BannerCommand,
    },
    /// The outbox of messages: list them, re-queue failed, dead or dropped ones.
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
pub(super) enum StaffCommand {
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
pub(super) enum InboundCommand {
    /// List messages held because their authentication failed.
    Held {
        /// At most this many, newest first (1 to 10000).
        #[arg(long, allow_negative_numbers = true, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// The latest inbound messages with what became of each, whichever route took them.
    List {
        /// Only this outcome (a duplicate, mail seen before, is told to the route that brought
        /// it and not recorded again, so it is no outcome to list).
        #[arg(long, value_name = "DISPOSITION",
              value_parser = clap::builder::PossibleValuesParser::new(crate::model::InboundOutcome::NAMES.iter().copied()
                  .filter(|n| *n != crate::model::InboundOutcome::Duplicate.as_str())))]
        disposition: Option<String>,
        /// At most this many, newest first (1 to 10000).
        #[arg(long, allow_negative_numbers = true, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
}

#[derive(Subcommand)]
pub(super) enum BannerCommand {
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
pub(super) struct BannerPostArgs {
    /// The headline, shown first.
    #[arg(long)]
    pub(super) title: String,
    /// The message.
    #[arg(long)]
    pub(super) body: String,
    /// How loud it is (urgent ones are also sent at once).
    #[arg(long, default_value = "info",
          value_parser = clap::builder::PossibleValuesParser::new(crate::model::Severity::NAMES.iter().copied()))]
    pub(super) severity: String,
    /// Only these clients (repeat the flag); default every client.
    #[arg(long = "client", value_name = "ID")]
    pub(super) clients: Vec<String>,
    /// Start time (RFC 3339, as the API reads it), at most 366 days ahead; default now.
    #[arg(long, value_name = "TIME", value_parser = crate::model::dates::parse_time)]
    pub(super) starts: Option<chrono::DateTime<chrono::Utc>>,
    /// Expiry time (RFC 3339, as the API reads it); default never.
    #[arg(long, value_name = "TIME", value_parser = crate::model::dates::parse_time)]
    pub(super) expires: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Subcommand)]
pub(super) enum OutboxCommand {
    /// List messages, newest first.
    List {
        /// Only this status.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::model::OutboxStatus::NAMES.iter().copied()))]
        status: Option<String>,
        /// At most this many, newest first (1 to 10000).
        #[arg(long, allow_negative_numbers = true, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Send everything due now with `outbox.workers` senders (and, with `webhook.url` set, one
    /// for the webhook's change events), then exit (no server needed). Exits 1 when a message
    /// went dead; one to retry waits for the next send.
    Send,
    /// Re-queue a failed, dead or dropped message (by id), or every dead one (--dead).
    #[command(override_usage = "cport outbox retry <ID>\n       cport outbox retry --dead")]
    Retry {
        /// The message's id (from `outbox list`).
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<i64>,
        /// Every dead message but those that would not be sent (a push of a banner retracted
        /// or expired since, content cleared after `outbox.sent_content_days`, a contact no
        /// longer active, a link expired...), which stay dead and are counted by why.
        #[arg(long)]
        dead: bool,
    },
    /// Drop a queued or failed message so it is not sent, or set a dead one aside (it no
    /// longer counts as waiting); `outbox retry ID` queues it again.
    Drop {
        /// The message's id (from `outbox list`).
        id: i64,
    },
}

/// Where the demo keeps its files unless told (`--data-dir`); its config is `cport.toml` there.
pub(super) const DEMO_DIR: &str = "demo-data";

#[derive(Args)]
pub(super) struct DemoArgs {
    /// Folder for the demo store, pictures, mail and config (emptied of earlier demo files).
    #[arg(long, default_value = DEMO_DIR, value_name = "DIR")]
    pub(super) data_dir: PathBuf,
    /// Address to serve on (default: `listen` from the environment, `CPORT_LISTEN`, else
    /// 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR", value_parser = listen_address)]
    pub(super) listen: Option<String>,
}

#[derive(Args)]
pub(super) struct ImportArgs {
    /// The JSON document: {"clients": [...], "jobs": [...], ...}.
    pub(super) file: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub(super) quiet: bool,
}

#[derive(Subcommand)]
pub(super) enum DigestCommand {
    /// Run one digest pass now (all contacts, or one), then send what is due. Exits 1 when a
    /// digest could not be queued or a message went dead.
    Run(DigestRunArgs),
}

#[derive(Args)]
pub(super) struct DigestRunArgs {
    /// Only this contact (TOT contact id).
    #[arg(long, value_name = "ID")]
    pub(super) contact: Option<String>,
    /// Print what each contact's digest would hold now, and by which ways (email, chats),
    /// instead of sending: whether this period's went out already is not asked (a run would
    /// skip those, and --force would send them again).
    #[arg(long)]
    pub(super) dry_run: bool,
    /// With --dry-run: print JSON instead of a table.
    #[arg(long, requires = "dry_run")]
    pub(super) json: bool,
    /// Send again even if this period's digest went out already.
    #[arg(long)]
    pub(super) force: bool,
    /// Queue only; a running `cport serve` sends.
    #[arg(long)]
    pub(super) no_send: bool,
}

#[derive(Args)]
pub(super) struct GenDataArgs {
    /// Number of clients (1 to 100000).
    #[arg(long, allow_negative_numbers = true, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(super) clients: u32,
    /// Number of jobs, spread over the clients (0 to 2000000; the data set is made in memory,
    /// about 1.3 GB for a million jobs).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=2_000_000))]
    pub(super) jobs: u32,
    /// Random seed; the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Output file (default: standard output).
    #[arg(long, short, value_name = "FILE")]
    pub(super) out: Option<PathBuf>,
}

/// `--listen` is refused by clap, naming the flag, when it is no address to bind.
fn listen_address(text: &str) -> Result<String, String> {
    text.parse::<std::net::SocketAddr>()
        .map(|_| text.to_string())
        .map_err(|_| format!("`{text}` is not an address like 127.0.0.1:8080 (an IP address and a port up to 65535)"))
}
