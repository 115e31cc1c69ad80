//! Configuration: built-in defaults, then a TOML file, then `CPORT_…` environment variables.
//! Everything is checked once at start; a bad value stops start-up with the key named.
//!
//! This file holds every key with its type, its documentation and its default: the
//! configuration reference (`docs/src/reference/configuration.md`) is generated from it by
//! `reference.rs`, so a key's doc comment is what operators read. Kept whole on purpose (over
//! 500 lines). Loading is in `load.rs`, the checks across keys in `validate.rs`.

use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod proxies;
pub mod reference;

mod load;
pub use load::read_small_file;
mod validate;
mod warnings;

use crate::model::AlertMode;
use crate::named_enum;
pub use proxies::Proxies;
pub use validate::sqlite_in_memory;

/// A string that never shows up in `Debug` output or logs.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A secret is a string in the file; the reference marks it so (`format: password`).
impl JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "password", "writeOnly": true})
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("\"\"") } else { f.write_str("\"***\"") }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The IP address and port the HTTP server listens on (portal, sync API, change feed,
    /// health, metrics), like `127.0.0.1:8080` or `[::1]:8080`; not a host name.
    pub listen: String,
    /// The address clients reach the portal at: the base of every signed link, and `https://`
    /// in production (it also decides `portal.secure_cookies = "auto"`). A host (and port), at
    /// the root: cport's pages, redirects and cookies are made for the root of their host, so
    /// a proxy gives cport a host of its own rather than a path. No user name, password, query
    /// or fragment (every link would carry them).
    pub public_url: String,
    /// The store: `sqlite://PATH` (made by `serve`, `migrate`, `import` or `demo` when missing,
    /// with its folder, which the log then names; other commands refuse a path with no store) or `postgres://USER:PASS@HOST/DB`. Its
    /// password is masked in logs. A relative PATH is read from the folder cport runs in, as
    /// is every relative path in the config (not from the config file's folder).
    pub database_url: Secret,
    /// The folder for pictures (`media/`), uploaded artwork, the `file` transport's mail
    /// (`mail/`, unless `email.dir` names another) and other files cport keeps. Relative to
    /// the folder cport runs in.
    pub data_dir: PathBuf,
    /// The bearer token TOT's system sends to `/api/v1` (required by `serve` only); one word,
    /// no spaces. Shorter than 16 characters, `serve` warns at start.
    pub api_token: Secret,
    /// The HMAC key that signs portal links, reply addresses and unsubscribe links: at least
    /// 16 characters (required by `serve` and every command that makes or sends links:
    /// `link`, `link-code`, `digest run`, `banner post`, `staff add`, `outbox send`,
    /// `outbox retry`, `inbound-email`). Changing it invalidates every link sent, unless the old one is
    /// kept as `previous_link_secret`.
    pub link_secret: Secret,
    /// The `link_secret` before a planned change, for as long as what it signed is still in
    /// people's mail: those links, reply addresses and bounce reports keep working, while
    /// everything new is signed with `link_secret` alone. Empty: none. At least 16 characters
    /// when given, and not `link_secret` itself. Drop it once the links it signed have expired
    /// (`digest.link_ttl_days`). Never for a secret that leaked: whoever holds it could sign
    /// links with it for as long as it is kept here.
    pub previous_link_secret: Secret,
    /// Largest request body the sync API and `POST /inbound/email` accept, in bytes (the portal's
    /// and console's forms take 256 KB, chat updates 1 MB, artwork uploads their own), at most
    /// 2 GiB. At least `inbound.max_bytes`, or `POST /inbound/email`
    /// would refuse what the MTA pipe takes.
    pub max_body_bytes: u64,
    /// The reverse proxies in front of cport: addresses or networks (`127.0.0.1`,
    /// `10.0.0.0/8`, `::1`). A request from one of them counts, for the per-address sign-in
    /// and request limits and the staff log, as coming from the address it names in
    /// `X-Forwarded-For`; from anywhere else that header is not believed. Empty: no proxy,
    /// each connection's own address counts (behind a proxy, every request would then count
    /// as the proxy's, and one address's failures would lock everyone out).
    pub trusted_proxies: Proxies,
    /// How long one pass of background work may run, in seconds, before it counts as stalled:
    /// a digest pass or an alert scan in all; a batch of the outbox's, this and each of its
    /// messages' `outbox.send_timeout_seconds` and ten minutes more for the answer. A pass that
    /// long is waiting on a store that does not answer (a connection cut without a word, a
    /// lock held elsewhere), which nothing else would end: it is cut off (its transaction
    /// undone) and its task restarted, logged as an error and counted in
    /// `cport_pass_stalls_total`; one that stalls again and again makes `/healthz` say
    /// `failing` (503).
    pub stalled_pass_seconds: u64,
    /// Email out: how it leaves, the sender, the reply domain, DKIM.
    pub email: EmailConfig,
    /// The SMTP relay, when `email.transport = "smtp"`.
    pub smtp: SmtpConfig,
    /// When digests go out.
    pub digest: DigestConfig,
    /// Instant alerts: the default mode per category (`instant`, `digest` or `off`; a
    /// contact's own choice wins), batching and scanning.
    pub alerts: AlertsConfig,
    /// The outbox: retries, backoff and the senders.
    pub outbox: OutboxConfig,
    /// How TOT looks in emails and pages.
    pub branding: BrandingConfig,
    /// The mini-portal: sessions, single-use links, sign-in limits.
    pub portal: PortalConfig,
    /// Optional push of every change-feed event to TOT's system, HMAC-signed.
    pub webhook: WebhookConfig,
    /// Email in: replies, bounces, attachments.
    pub inbound: InboundConfig,
    /// The Telegram bot; off while `token` is empty.
    pub telegram: TelegramConfig,
    /// The Discord bot; sending is off while `token` is empty.
    pub discord: DiscordConfig,
    /// Polling a mailbox for replies over IMAP; off while `host` is empty.
    pub imap: ImapConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// How email leaves: `file` writes `.eml` files to `dir` (the demo, tests), `smtp` hands
    /// them to the relay in `[smtp]`.
    pub transport: Transport,
    /// Where the `file` transport writes `.eml` files; empty: `mail` under `data_dir`.
    pub dir: PathBuf,
    /// The From of every message, with a display name.
    pub from: String,
    /// The domain of the `reply+TOKEN@` and `bounce+TOKEN@` addresses: its mail must reach
    /// cport (Postfix pipe, `POST /inbound/email` or IMAP). A DNS name of two labels or more.
    pub reply_domain: String,
    /// DKIM signing of every message cport sends, for sending without a relay that signs; off
    /// while `selector` is empty. cport signs with lettre's DKIM signer (`rsa-sha256` or
    /// `ed25519-sha256`, relaxed/relaxed; From, To, Subject, Date, Message-ID, Reply-To,
    /// In-Reply-To, References, List-Unsubscribe, List-Unsubscribe-Post and MIME-Version
    /// signed). Publish the public key as a TXT record at `SELECTOR._domainkey.DOMAIN`:
    /// `v=DKIM1; k=rsa; p=` followed by `openssl rsa -in KEY -pubout -outform DER | base64
    /// -w0`. A key that cannot be read stops start-up naming `email.dkim.key_file`.
    pub dkim: DkimConfig,
}

impl EmailConfig {
    /// Whether `address` is cport's own: its From, or any address at the reply domain (the
    /// `reply+` and `bounce+` addresses). Mail from one is a loop; mail to one reaches cport.
    pub fn is_own_address(&self, address: &str) -> bool {
        let address = address.trim().to_ascii_lowercase();
        let from = self.from.rsplit('<').next().unwrap_or("").trim_end_matches('>').trim().to_ascii_lowercase();
        address == from || address.ends_with(&format!("@{}", self.reply_domain.to_ascii_lowercase()))
    }
}

/// `[email.dkim]`: the key cport signs with, and where its public half is published.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DkimConfig {
    /// The selector the public key is published under (`SELECTOR._domainkey.DOMAIN`).
    pub selector: String,
    /// The signing domain (`d=`); it should be the From address's domain.
    pub domain: String,
    /// The private key: an RSA key in PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`, as `openssl genrsa
    /// -traditional 2048` writes it), or for `algorithm = "ed25519"` the base64 of the 32-byte
    /// secret key.
    pub key_file: PathBuf,
    /// The signing algorithm.
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    #[default]
    Rsa,
    Ed25519,
}

impl DkimConfig {
    pub fn enabled(&self) -> bool {
        !self.selector.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// The relay's host name, or its IP address (an IPv6 one without brackets: `::1`).
    pub host: String,
    /// The relay's port: 587 for STARTTLS, 465 for implicit TLS, 25 unencrypted.
    pub port: u16,
    /// TLS to the relay; `none` only on loopback.
    pub tls: Tls,
    /// The user name to sign in with; empty: no authentication.
    pub username: String,
    /// The password to sign in with.
    pub password: Secret,
    /// Connections to the relay kept open and used side by side.
    pub pool_size: u32,
    /// The limit on each step of an SMTP conversation: connecting, the greeting, each
    /// command's reply, and each write. A server that stays silent longer is dropped and the
    /// message retried. The reply to the end of data is waited for longer (RFC 5321 asks 10
    /// minutes: the server may check the message first), past `outbox.send_timeout_seconds`
    /// too: the message has been handed over, and given up on it would be sent again.
    pub timeout_seconds: u64,
    /// The name cport gives itself in EHLO, a fully qualified host name such as
    /// `mail.tot.example`; empty: this machine's host name. A relay that refuses a bare name
    /// (Postfix's `reject_non_fqdn_helo_hostname`; a container's name is a bare one) needs it.
    pub helo_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DigestConfig {
    /// When digests go out: a cron expression with seconds first (`0 0 8 * * Mon-Fri` is 08:00
    /// on weekdays), at most 24 summaries in any day (hourly). A contact's own schedule wins.
    pub schedule: String,
    /// The time zone of a contact TOT gives none (an IANA name): their digests follow
    /// `schedule` in it.
    pub timezone: String,
    /// A scheduled digest missed while cport was down is still sent this many hours late, to
    /// contacts cport knew when it was due (one added since gets the next). 0 turns scheduled
    /// digests off (`cport serve` says so at start): `cport digest run` then sends them.
    pub catch_up_hours: u32,
    /// How long the signed links in a digest stay valid.
    pub link_ttl_days: u32,
    /// How often the scheduler looks for due digests.
    pub tick_seconds: u64,
}

/// Instant alerts: default mode per category (`instant`, `digest` or `off`), batching, scanning.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Visuals awaiting approval.
    pub visual_approval: AlertMode,
    /// Jobs with no delivery instructions.
    pub delivery_instructions: AlertMode,
    /// Third-party purchase orders still open.
    pub third_party_po: AlertMode,
    /// Jobs whose artwork has not arrived.
    pub awaiting_art: AlertMode,
    /// Alerts to one contact within this window go out together in one message.
    pub batch_window_seconds: u64,
    /// How often every contact is checked for new instant items (a sync checks its clients at once).
    pub scan_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Attempts before a message is dead.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, with jitter, up to `backoff_max_seconds`.
    pub backoff_base_seconds: u64,
    /// The longest delay between two attempts.
    pub backoff_max_seconds: u64,
    /// Senders of email working at once (messages sent at the same time), and as many of
    /// chat: each claims its share of what is due, at most 16 messages, and sends them one
    /// after another. Email and chat have senders of their own, so that a slow mail server
    /// holds up no Telegram or Discord message; the change events for `webhook.url` have
    /// one sender more, of their own.
    pub workers: u32,
    /// A sender's claim on a message; renewed while the sender works, so it runs out only
    /// when the sender died. The message is then sent again.
    pub lease_seconds: u64,
    /// The longest one message may take to send on any channel (every provider call is
    /// bounded by it); a send that takes longer is abandoned and retried. Once a message is
    /// handed over (for SMTP, its end of data written) its answer is waited for within the
    /// provider's own limit (SMTP's ten minutes), not abandoned and sent again.
    pub send_timeout_seconds: u64,
    /// Days a sent message keeps its content (the rendered email or chat text, some 12 KB a
    /// digest); then the server clears it and keeps the record that it went: recipient,
    /// subject, times, key and reply address. A message that went dead or was dropped (a
    /// digest a later one said again) is cleared the same number of days after, and can then
    /// no longer be queued again. 0 keeps it for ever. Content is kept at least
    /// `digest.link_ttl_days` whatever this says, so a reply within a link's life still finds
    /// what its digest listed.
    pub sent_content_days: u32,
}

/// The mini-portal: sessions, single-use links, login limits.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// How long a session (from a password login or a signed link) lasts.
    pub session_hours: u32,
    /// How long a delegated approval link stays valid.
    pub delegation_hours: u32,
    /// How long a password-reset link stays valid.
    pub reset_minutes: u32,
    /// Failed password sign-ins allowed per account in 15 minutes (staff accounts too).
    pub login_attempts_per_account: u32,
    /// Failed password sign-ins allowed per client address in 15 minutes.
    pub login_attempts_per_address: u32,
    /// Mark cookies Secure: `auto` (when public_url is https), `always` or `never`.
    pub secure_cookies: CookieMode,
}

/// Optional push of every change-feed event to TOT's system, HMAC-signed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Where to POST events; empty = no push (TOT reads GET /api/v1/changes). Plain `http://`
    /// to another machine, `serve` warns at start.
    pub url: String,
    /// Key for the `X-Cport-Signature: sha256=…` header: at least 16 characters when `url`
    /// is set.
    pub secret: Secret,
}

impl WebhookConfig {
    /// Whether this process pushes change events: it queues them as they are recorded, and
    /// has a sender for them; one without leaves them to a process that has.
    pub fn is_set(&self) -> bool {
        !self.url.is_empty()
    }
}

/// Email in: replies, bounces, attachments.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    /// Bearer token for POST /inbound/email (empty: the api_token). Shorter than 16
    /// characters, `serve` warns at start.
    pub token: Secret,
    /// Larger messages are refused unread. At least 4/3 × `max_attachment_bytes` + 64 KiB (an
    /// attachment travels in base64), and Postfix's `message_size_limit` should be at least
    /// this.
    pub max_bytes: u64,
    /// authserv-ids of the receiving MTA whose Authentication-Results are believed (e.g.
    /// `["mx.tot.example"]`), each a host name. Empty: replies are acted on without a DMARC
    /// check, and `serve` warns once at start.
    pub trusted_authserv_ids: Vec<String>,
    /// Soft bounces that suspend a contact's email: reports of failure not the address's
    /// fault (a full mailbox, a refusal for policy), counted since the contact last replied or
    /// was given a new address, which start the count again.
    pub soft_bounce_limit: u32,
    /// Largest attachment kept as artwork, in bytes.
    pub max_attachment_bytes: u64,
    /// The file types accepted as artwork, by extension.
    pub artwork_types: Vec<String>,
}

/// How TOT looks in emails and pages.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingConfig {
    /// The name in subjects, greetings and page titles.
    pub name: String,
    /// The logo in emails and pages: a web address, or a path under `/media` (served to
    /// anyone). Empty: the name in text.
    pub logo_url: String,
    /// The brand colour of headers and buttons (`#rrggbb`; `#rgb` and `#rrggbbaa` too).
    pub colour: String,
    /// What a contact accepts by approving a visual; recorded with each approval.
    pub approval_terms: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramConfig {
    /// The bot's token as BotFather gives it (`123456:ABC-def…`). Empty: no Telegram bot.
    pub token: Secret,
    /// Base of the Bot API (`https://api.telegram.org`, or a local Bot API server / a fake).
    pub api_url: String,
    /// `polling` (getUpdates, works behind NAT) or `webhook` (Telegram posts to
    /// `public_url` + `/telegram/webhook`).
    pub mode: TelegramMode,
    /// Required in webhook mode: Telegram sends it back in `X-Telegram-Bot-Api-Secret-Token`.
    /// 16 to 256 of the letters A-Z and a-z, digits, `_` and `-` (Telegram's rule).
    pub webhook_secret: Secret,
    /// Telegram user ids of TOT staff, who may `/broadcast` and `/outbox`.
    pub staff: Vec<String>,
    /// How long one getUpdates call waits for news.
    pub poll_timeout_seconds: u32,
    /// Telegram's limit on messages a second, kept by the sender.
    pub messages_per_second: u32,
    /// Telegram's limit on messages a second to one chat.
    pub chat_messages_per_second: u32,
    /// Telegram's limit on messages a minute to one chat (Telegram asks it of groups; cport
    /// keeps it for every chat).
    pub chat_messages_per_minute: u32,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        TelegramConfig {
            token: Secret::default(),
            api_url: "https://api.telegram.org".into(),
            mode: TelegramMode::Polling,
            webhook_secret: Secret::default(),
            staff: vec![],
            poll_timeout_seconds: 30,
            messages_per_second: 30,
            chat_messages_per_second: 1,
            chat_messages_per_minute: 20,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// Bot token for sending. Empty: nothing is sent to Discord.
    pub token: Secret,
    /// Base of the REST API (`https://discord.com`, or a proxy / a fake). Against any other
    /// base serenity's rate limiter is off (it would send to discord.com itself): a proxy
    /// must keep Discord's limits, and a 429 through it is waited out five seconds at a time.
    pub api_url: String,
    /// The application's Ed25519 public key (64 hex digits); empty: the interactions
    /// endpoint answers 404.
    pub public_key: String,
    /// The application's id (for `cport discord register-commands`).
    pub application_id: String,
    /// When set, digests and alerts are posted to this channel (mentioning the contact)
    /// instead of the contact's direct messages.
    pub channel_id: String,
    /// Discord user ids of TOT staff, who may `/broadcast` and `/outbox`.
    pub staff: Vec<String>,
    /// Interactions taking longer, from the request's arrival, are answered "thinking…" at
    /// once and edited in later (Discord waits 3 seconds for the first answer); 0: always.
    pub defer_after_ms: u64,
}

impl Config {
    /// The address replies to a message with reply token `token` go to (`reply+TOKEN@` the
    /// reply domain), where the inbound reader finds the token again.
    pub fn reply_address(&self, token: &str) -> String {
        format!("reply+{token}@{}", self.email.reply_domain)
    }

    /// Days a sent message's content is kept, if it is ever cleared: `outbox.sent_content_days`,
    /// but never less than a link lives (`digest.link_ttl_days`), so a reply within a link's
    /// life still finds what its digest listed.
    pub fn sent_content_kept_days(&self) -> Option<u32> {
        match self.outbox.sent_content_days {
            0 => None,
            days => Some(days.max(self.digest.link_ttl_days)),
        }
    }

    /// The chat channels cport sends on: those with a bot token (a Discord public key alone
    /// answers interactions but sends nothing).
    pub fn chat_channels(&self) -> Vec<crate::model::Chat> {
        let mut out = vec![];
        if !self.telegram.token.is_empty() {
            out.push(crate::model::Chat::Telegram);
        }
        if !self.discord.token.is_empty() {
            out.push(crate::model::Chat::Discord);
        }
        out
    }
}

impl DiscordConfig {
    /// The interaction verifier for `public_key` (64 hexadecimal digits, a valid Ed25519
    /// key), `None` for anything else.
    pub fn verifier(&self) -> Option<serenity::interactions_endpoint::Verifier> {
        let k = self.public_key.trim();
        if k.len() != 64 || !k.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&k[2 * i..2 * i + 2], 16).ok()?;
        }
        serenity::interactions_endpoint::Verifier::try_new(bytes).ok()
    }
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            token: Secret::default(),
            api_url: "https://discord.com".into(),
            public_key: String::new(),
            application_id: String::new(),
            channel_id: String::new(),
            staff: vec![],
            defer_after_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ImapConfig {
    /// The server's host name or IP address (an IPv6 one without brackets); empty: no IMAP
    /// polling.
    pub host: String,
    /// The server's port: 993 for implicit TLS.
    pub port: u16,
    /// `tls` (implicit, port 993) or `none` (loopback only); `starttls` is refused for IMAP.
    pub tls: Tls,
    /// The user name to sign in with.
    pub username: String,
    /// The password to sign in with.
    pub password: Secret,
    /// The folder replies arrive in.
    pub mailbox: String,
    /// Move handled messages here (a folder other than `mailbox`); empty = flag them \Seen and
    /// leave them.
    pub processed_mailbox: String,
    /// Poll interval when the server has no IDLE.
    pub poll_seconds: u64,
    /// The limit on each exchange with the server: connecting, TLS, the greeting, signing
    /// in, each search, fetch, move and flag; a message's fetch has a second more for each
    /// 64 KiB it holds. A server that stays silent longer is dropped and reconnected to with
    /// backoff (the wait in IDLE is not bounded by it).
    pub timeout_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            database_url: Secret::new("sqlite://data/cport.db"),
            data_dir: "data".into(),
            api_token: Secret::default(),
            link_secret: Secret::default(),
            previous_link_secret: Secret::default(),
            max_body_bytes: 64 * 1024 * 1024,
            trusted_proxies: Proxies::default(),
            stalled_pass_seconds: 900,
            email: EmailConfig::default(),
            smtp: SmtpConfig::default(),
            digest: DigestConfig::default(),
            alerts: AlertsConfig::default(),
            outbox: OutboxConfig::default(),
            branding: BrandingConfig::default(),
            portal: PortalConfig::default(),
            webhook: WebhookConfig::default(),
            inbound: InboundConfig::default(),
            telegram: TelegramConfig::default(),
            discord: DiscordConfig::default(),
            imap: ImapConfig::default(),
        }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            transport: Transport::File,
            dir: PathBuf::new(),
            from: "TOT <notifications@tot.example>".into(),
            reply_domain: "reply.tot.example".into(),
            dkim: DkimConfig::default(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 587,
            tls: Tls::Starttls,
            username: String::new(),
            password: Secret::default(),
            pool_size: 4,
            timeout_seconds: 30,
            helo_name: String::new(),
        }
    }
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            schedule: "0 0 8 * * Mon-Fri".into(),
            timezone: "Europe/London".into(),
            catch_up_hours: 12,
            link_ttl_days: 14,
            tick_seconds: 30,
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            visual_approval: AlertMode::Instant,
            delivery_instructions: AlertMode::Digest,
            third_party_po: AlertMode::Digest,
            awaiting_art: AlertMode::Digest,
            batch_window_seconds: 300,
            scan_seconds: 60,
        }
    }
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_attempts: 8,
            backoff_base_seconds: 30,
            backoff_max_seconds: 3600,
            workers: 4,
            lease_seconds: 300,
            send_timeout_seconds: 120,
            sent_content_days: 90,
        }
    }
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            session_hours: 12,
            delegation_hours: 72,
            reset_minutes: 30,
            login_attempts_per_account: 5,
            login_attempts_per_address: 20,
            secure_cookies: CookieMode::Auto,
        }
    }
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            token: Secret::default(),
            // Room for a `max_attachment_bytes` file in base64 (4/3) with the rest of a reply.
            max_bytes: 28 * 1024 * 1024,
            trusted_authserv_ids: vec![],
            soft_bounce_limit: 3,
            max_attachment_bytes: 20 * 1024 * 1024,
            artwork_types: ["pdf", "ai", "eps", "svg", "png", "jpg", "jpeg", "tif", "tiff", "psd", "zip"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl Default for BrandingConfig {
    fn default() -> Self {
        BrandingConfig {
            name: "TOT".into(),
            logo_url: String::new(),
            colour: "#1f3a5f".into(),
            approval_terms: "By approving you confirm the artwork, colours, placement and the charges shown, \
                and ask TOT to go ahead with production."
                .into(),
        }
    }
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            host: String::new(),
            port: 993,
            tls: Tls::Tls,
            username: String::new(),
            password: Secret::default(),
            mailbox: "INBOX".into(),
            processed_mailbox: String::new(),
            poll_seconds: 60,
            timeout_seconds: 60,
        }
    }
}

named_enum! {
    /// How email leaves: `.eml` files in a folder, or SMTP.
    pub enum Transport {
        File = "file",
        Smtp = "smtp",
    }
}

named_enum! {
    /// TLS on a mail connection: none (loopback only), STARTTLS, or implicit TLS.
    pub enum Tls {
        None = "none",
        Starttls = "starttls",
        Tls = "tls",
    }
}

named_enum! {
    /// When session cookies are marked Secure: `auto` follows `public_url`'s scheme.
    pub enum CookieMode {
        Auto = "auto",
        Always = "always",
        Never = "never",
    }
}

named_enum! {
    /// How Telegram updates arrive: cport polls, or Telegram posts to the webhook.
    pub enum TelegramMode {
        Polling = "polling",
        Webhook = "webhook",
    }
}

/// A configuration problem, always naming the key (or file) at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The OS's words are in the message (a field named `source` would print them twice in
    /// an error chain).
    #[error("cannot read config file {}: {error}", crate::model::path_shown(path))]
    Read { path: PathBuf, error: std::io::Error },
    #[error("config file {}: {message}", crate::model::path_shown(path))]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

impl ConfigError {
    /// What went wrong, named without a path or a value: for a message that may travel
    /// further than the operator (an MTA's bounce).
    pub fn discreet(&self) -> String {
        match self {
            ConfigError::Read { .. } => "the config file cannot be read".into(),
            ConfigError::Parse { .. } => "the config file is not valid TOML".into(),
            ConfigError::Invalid { key, .. } => format!("config key `{key}` is not usable"),
            ConfigError::Env { var, .. } => format!("environment variable {var} is not usable"),
        }
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), message: message.into() }
}

/// Which secrets must be present: `serve` needs both (the API token guards its sync API), a
/// command that makes signed links or sends what holds them (`link`, `digest run`) the link
/// secret, `digest run --dry-run` neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Secrets,
    Signing,
    StoreOnly,
}

impl Config {
    /// The configuration as TOML, secrets included (for `cport demo` to write its file).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn secure_cookies(&self) -> bool {
        match self.portal.secure_cookies {
            CookieMode::Always => true,
            CookieMode::Never => false,
            CookieMode::Auto => self.public_is_https(),
        }
    }

    /// Whether `public_url` is an https address; its scheme read in any case (`HTTPS://` is
    /// https too).
    pub fn public_is_https(&self) -> bool {
        self.public_url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    }

    /// Where the `file` transport writes: `email.dir`, or `mail` under `data_dir` when that is
    /// not set (so moving `data_dir` moves the mail with it, whatever folder cport starts in).
    pub fn mail_dir(&self) -> PathBuf {
        if self.email.dir.as_os_str().is_empty() { self.data_dir.join("mail") } else { self.email.dir.clone() }
    }

    /// The database URL with any password masked, for logs.
    pub fn database_url_masked(&self) -> String {
        mask_url_password(self.database_url.expose())
    }
}

/// A database URL as a log may show it: the password, given as `user:password@` or as a
/// `password=` (or `sslpassword=`) parameter, as `***`. One that is not a URL is not shown.
pub fn mask_url_password(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return "(not shown: not a URL)".into();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = matches!(k.to_ascii_lowercase().as_str(), "password" | "sslpassword");
                (k.into_owned(), if secret { "***".into() } else { v.into_owned() })
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}
