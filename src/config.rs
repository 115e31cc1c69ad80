//! Configuration: built-in defaults, then a TOML file, then `CPORT_…` environment variables.
//! Everything is checked once at start; a bad value stops start-up with the key named.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::AlertMode;
use crate::named_enum;

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

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"***\"")
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: String,
    pub public_url: String,
    pub database_url: Secret,
    pub data_dir: PathBuf,
    pub api_token: Secret,
    pub link_secret: Secret,
    /// Largest request body accepted by the sync API, in bytes.
    pub max_body_bytes: u64,
    pub email: EmailConfig,
    pub smtp: SmtpConfig,
    pub digest: DigestConfig,
    pub alerts: AlertsConfig,
    pub outbox: OutboxConfig,
    pub branding: BrandingConfig,
    pub portal: PortalConfig,
    pub webhook: WebhookConfig,
    pub inbound: InboundConfig,
    pub telegram: TelegramConfig,
    pub discord: DiscordConfig,
    pub imap: ImapConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    pub transport: Transport,
    pub dir: PathBuf,
    pub from: String,
    pub reply_domain: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: String,
    pub password: Secret,
    pub pool_size: u32,
    /// The limit on each step of an SMTP conversation: connecting, the greeting, each
    /// command's reply, the reply to the end of data, and each write. A server that stays
    /// silent longer is dropped and the message retried.
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigestConfig {
    pub schedule: String,
    pub timezone: String,
    /// A scheduled digest missed while cport was down is still sent this many hours late.
    pub catch_up_hours: u32,
    /// How long the signed links in a digest stay valid.
    pub link_ttl_days: u32,
    /// How often the scheduler looks for due digests.
    pub tick_seconds: u64,
}

/// Instant alerts: default mode per category (`instant`, `digest` or `off`), batching, scanning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    pub visual_approval: AlertMode,
    pub delivery_instructions: AlertMode,
    pub third_party_po: AlertMode,
    pub awaiting_art: AlertMode,
    /// Alerts to one contact within this window go out together in one message.
    pub batch_window_seconds: u64,
    /// How often every contact is checked for new instant items (a sync checks its clients at once).
    pub scan_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Attempts before a message is dead.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, with jitter, up to `backoff_max_seconds`.
    pub backoff_base_seconds: u64,
    pub backoff_max_seconds: u64,
    /// Messages sent at the same time.
    pub workers: u32,
    /// A sender's claim on a message; renewed while the sender works, so it runs out only
    /// when the sender died. The message is then sent again.
    pub lease_seconds: u64,
    /// The longest one message may take to send on any channel (every provider call is
    /// bounded by it); a send that takes longer is abandoned and retried.
    pub send_timeout_seconds: u64,
}

/// The mini-portal: sessions, single-use links, login limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// How long a session (from a password login or a signed link) lasts.
    pub session_hours: u32,
    /// How long a delegated approval link stays valid.
    pub delegation_hours: u32,
    /// How long a password-reset link stays valid.
    pub reset_minutes: u32,
    /// Failed password logins allowed per account, and per client address, in 15 minutes.
    pub login_attempts_per_account: u32,
    pub login_attempts_per_address: u32,
    /// Mark cookies Secure: `auto` (when public_url is https), `always` or `never`.
    pub secure_cookies: CookieMode,
}

/// Optional push of every change-feed event to TOT's system, HMAC-signed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Where to POST events; empty = no push (TOT reads GET /api/v1/changes).
    pub url: String,
    /// Key for the `X-Cport-Signature: sha256=…` header.
    pub secret: Secret,
}

/// Email in: replies, bounces, attachments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    /// Bearer token for POST /inbound/email (empty: the api_token).
    pub token: Secret,
    /// Larger messages are refused unread.
    pub max_bytes: u64,
    /// authserv-ids of the receiving MTA whose Authentication-Results are believed.
    pub trusted_authserv_ids: Vec<String>,
    /// Soft bounces in a row that suspend a contact's email.
    pub soft_bounce_limit: u32,
    /// Largest attachment kept as artwork, and the file types accepted.
    pub max_attachment_bytes: u64,
    pub artwork_types: Vec<String>,
}

/// How TOT looks in emails and pages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingConfig {
    pub name: String,
    pub logo_url: String,
    pub colour: String,
    pub approval_terms: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramConfig {
    /// Empty: no Telegram bot.
    pub token: Secret,
    /// Base of the Bot API (`https://api.telegram.org`, or a local Bot API server / a fake).
    pub api_url: String,
    /// `polling` (getUpdates, works behind NAT) or `webhook` (Telegram posts to
    /// `public_url` + `/telegram/webhook`).
    pub mode: TelegramMode,
    /// Required in webhook mode: Telegram sends it back in `X-Telegram-Bot-Api-Secret-Token`.
    pub webhook_secret: Secret,
    /// Telegram user ids of TOT staff, who may `/broadcast` and `/outbox`.
    pub staff: Vec<String>,
    /// How long one getUpdates call waits for news.
    pub poll_timeout_seconds: u32,
    /// Telegram's limits, kept by the sender: overall, and per chat.
    pub messages_per_second: u32,
    pub chat_messages_per_second: u32,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// Bot token for sending. Empty: nothing is sent to Discord.
    pub token: Secret,
    /// Base of the REST API (`https://discord.com`, or a proxy / a fake).
    pub api_url: String,
    /// The application's Ed25519 public key (64 hex digits); empty: the interactions
    /// endpoint answers 404.
    pub public_key: String,
    pub application_id: String,
    /// When set, digests and alerts are posted to this channel (mentioning the contact)
    /// instead of the contact's direct messages.
    pub channel_id: String,
    /// Discord user ids of TOT staff, who may `/broadcast` and `/outbox`.
    pub staff: Vec<String>,
    /// Interactions taking longer are answered "thinking…" at once and edited in later
    /// (Discord waits 3 seconds for the first answer).
    pub defer_after_ms: u64,
}

impl Config {
    /// The chat channels cport sends on: those with a bot token (a Discord public key alone
    /// answers interactions but sends nothing).
    pub fn chat_channels(&self) -> Vec<&'static str> {
        let mut out = vec![];
        if !self.telegram.token.is_empty() {
            out.push("telegram");
        }
        if !self.discord.token.is_empty() {
            out.push("discord");
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImapConfig {
    /// Empty: no IMAP polling.
    pub host: String,
    pub port: u16,
    /// `tls` (implicit, port 993) or `none` (loopback only).
    pub tls: Tls,
    pub username: String,
    pub password: Secret,
    pub mailbox: String,
    /// Move handled messages here; empty = flag them \Seen and leave them.
    pub processed_mailbox: String,
    /// Poll interval when the server has no IDLE.
    pub poll_seconds: u64,
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
            max_body_bytes: 64 * 1024 * 1024,
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
            dir: "data/mail".into(),
            from: "TOT <notifications@tot.example>".into(),
            reply_domain: "reply.tot.example".into(),
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
            max_bytes: 10 * 1024 * 1024,
            trusted_authserv_ids: vec![],
            soft_bounce_limit: 3,
            max_attachment_bytes: 20 * 1024 * 1024,
            artwork_types: [
                "pdf", "ai", "eps", "svg", "png", "jpg", "jpeg", "tif", "tiff", "psd", "zip",
            ]
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
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Where secrets must be present: `serve` needs them, `digest run --dry-run` does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Secrets,
    StoreOnly,
}

impl Config {
    /// Loads defaults, overlays `file` (if given) and the environment, then validates.
    pub fn load(file: Option<&Path>, need: Need) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env, need)
    }

    /// Same as [`Config::load`] with the environment passed in (tests use this).
    pub fn load_from(file: Option<&Path>, env: &[(String, String)], need: Need) -> Result<Config, ConfigError> {
        let mut tree = toml::Value::try_from(Config::default()).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<defaults>"),
            message: e.to_string(),
        })?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let overlay: toml::Value = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?;
            merge(&mut tree, overlay, "")?;
        }
        for (var, value) in env {
            if let Some(rest) = var.strip_prefix("CPORT_") {
                apply_env(&mut tree, var, rest, value)?;
            }
        }
        // The path of a value that does not fit its type (a misspelt mode) names the key.
        let config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            let message = e.into_inner().message().to_string();
            if key.is_empty() || key == "." {
                ConfigError::Parse {
                    path: file.map(Path::to_path_buf).unwrap_or_else(|| "<environment>".into()),
                    message,
                }
            } else {
                invalid(&key, message)
            }
        })?;
        config.validate(need)?;
        Ok(config)
    }

    pub fn validate(&self, need: Need) -> Result<(), ConfigError> {
        SocketAddr::from_str(&self.listen).map_err(|_| {
            invalid(
                "listen",
                format!("`{}` is not an address like 127.0.0.1:8080", self.listen),
            )
        })?;
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err(invalid("public_url", "must start with http:// or https://"));
        }
        let db = self.database_url.expose();
        if !(db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            return Err(invalid("database_url", "must start with sqlite: or postgres://"));
        }
        if self.email.transport == Transport::Smtp && self.smtp.host.is_empty() {
            return Err(invalid("smtp.host", "required when email.transport = \"smtp\""));
        }
        if self.smtp.pool_size == 0 {
            return Err(invalid("smtp.pool_size", "must be at least 1"));
        }
        if self.email.reply_domain.is_empty() || self.email.reply_domain.contains('@') {
            return Err(invalid(
                "email.reply_domain",
                "must be a domain name like reply.tot.example",
            ));
        }
        crate::model::schedule::parse_schedule(&self.digest.schedule).map_err(|e| invalid("digest.schedule", e))?;
        self.digest.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            invalid(
                "digest.timezone",
                format!("`{}` is not an IANA time zone", self.digest.timezone),
            )
        })?;
        if self.outbox.max_attempts == 0 {
            return Err(invalid("outbox.max_attempts", "must be at least 1"));
        }
        if self.outbox.workers == 0 {
            return Err(invalid("outbox.workers", "must be at least 1"));
        }
        for (key, secs) in [
            ("smtp.timeout_seconds", self.smtp.timeout_seconds),
            ("outbox.send_timeout_seconds", self.outbox.send_timeout_seconds),
            ("outbox.lease_seconds", self.outbox.lease_seconds),
        ] {
            if secs == 0 {
                return Err(invalid(key, "must be at least 1 second"));
            }
        }
        if self.outbox.lease_seconds < 3 {
            return Err(invalid(
                "outbox.lease_seconds",
                "must be at least 3 seconds (a sender renews its claim every third of it)",
            ));
        }
        if self.digest.tick_seconds == 0 || self.alerts.scan_seconds == 0 {
            return Err(invalid("digest.tick_seconds", "intervals must be at least 1 second"));
        }
        if !self.webhook.url.is_empty() {
            if !(self.webhook.url.starts_with("http://") || self.webhook.url.starts_with("https://")) {
                return Err(invalid("webhook.url", "must start with http:// or https://"));
            }
            if self.webhook.secret.expose().len() < 16 {
                return Err(invalid(
                    "webhook.secret",
                    "required (16 characters or more) when webhook.url is set",
                ));
            }
        }
        let c = &self.branding.colour;
        if !(c.starts_with('#') && matches!(c.len(), 4 | 7 | 9) && c[1..].chars().all(|x| x.is_ascii_hexdigit())) {
            return Err(invalid(
                "branding.colour",
                format!("`{c}` is not a colour like #1f3a5f"),
            ));
        }
        if self.portal.session_hours == 0 || self.portal.delegation_hours == 0 || self.portal.reset_minutes == 0 {
            return Err(invalid(
                "portal",
                "session_hours, delegation_hours and reset_minutes must be at least 1",
            ));
        }
        if !self.imap.host.is_empty() {
            if self.imap.tls == Tls::Starttls {
                return Err(invalid(
                    "imap.tls",
                    "starttls is not supported for IMAP; use tls (port 993) or none",
                ));
            }
            if self.imap.username.is_empty() {
                return Err(invalid("imap.username", "required when imap.host is set"));
            }
        }
        if self.inbound.soft_bounce_limit == 0 {
            return Err(invalid("inbound.soft_bounce_limit", "must be at least 1"));
        }
        if need == Need::Secrets {
            if self.api_token.is_empty() {
                return Err(invalid(
                    "api_token",
                    "missing; set it in the config file or CPORT_API_TOKEN",
                ));
            }
            if self.link_secret.expose().len() < 16 {
                return Err(invalid(
                    "link_secret",
                    "missing or shorter than 16 characters; set it in the config file or CPORT_LINK_SECRET",
                ));
            }
        }
        self.validate_chat()?;
        Ok(())
    }

    fn validate_chat(&self) -> Result<(), ConfigError> {
        let t = &self.telegram;
        if !(t.api_url.starts_with("http://") || t.api_url.starts_with("https://")) {
            return Err(invalid("telegram.api_url", "must start with http:// or https://"));
        }
        if t.mode == TelegramMode::Webhook && !t.token.is_empty() && t.webhook_secret.expose().len() < 16 {
            return Err(invalid(
                "telegram.webhook_secret",
                "required (16 characters or more) when telegram.mode = \"webhook\"",
            ));
        }
        if let Some(bad) = t.staff.iter().find(|s| s.parse::<i64>().is_err()) {
            return Err(invalid("telegram.staff", format!("`{bad}` is not a Telegram user id")));
        }
        if t.messages_per_second == 0 || t.chat_messages_per_second == 0 || t.chat_messages_per_minute == 0 {
            return Err(invalid(
                "telegram.messages_per_second",
                "rate limits must be at least 1",
            ));
        }
        if t.poll_timeout_seconds == 0 || t.poll_timeout_seconds > 50 {
            return Err(invalid("telegram.poll_timeout_seconds", "must be between 1 and 50"));
        }
        let d = &self.discord;
        if !(d.api_url.starts_with("http://") || d.api_url.starts_with("https://")) {
            return Err(invalid("discord.api_url", "must start with http:// or https://"));
        }
        if !d.public_key.is_empty() && d.verifier().is_none() {
            return Err(invalid(
                "discord.public_key",
                "must be the application's public key: 64 hexadecimal digits",
            ));
        }
        for (key, v) in [
            ("discord.application_id", &d.application_id),
            ("discord.channel_id", &d.channel_id),
        ] {
            if !v.is_empty() && v.parse::<u64>().is_err() {
                return Err(invalid(key, format!("`{v}` is not a Discord id (digits)")));
            }
        }
        if d.defer_after_ms > 2500 {
            return Err(invalid(
                "discord.defer_after_ms",
                "must be at most 2500 (Discord waits 3 seconds)",
            ));
        }
        if let Some(bad) = d.staff.iter().find(|s| s.parse::<u64>().is_err()) {
            return Err(invalid("discord.staff", format!("`{bad}` is not a Discord user id")));
        }
        Ok(())
    }

    /// The configuration as TOML, secrets included (for `cport demo` to write its file).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn secure_cookies(&self) -> bool {
        match self.portal.secure_cookies {
            CookieMode::Always => true,
            CookieMode::Never => false,
            CookieMode::Auto => self.public_url.starts_with("https://"),
        }
    }

    /// The database URL with any password masked, for logs.
    pub fn database_url_masked(&self) -> String {
        mask_url_password(self.database_url.expose())
    }
}

pub fn mask_url_password(url: &str) -> String {
    // user:password@host → user:***@host
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        if let Some(at) = rest.find('@') {
            let creds = &rest[..at];
            if let Some(colon) = creds.find(':') {
                return format!("{}://{}:***{}", &url[..scheme_end], &creds[..colon], &rest[at..]);
            }
        }
    }
    url.to_string()
}

fn merge(base: &mut toml::Value, overlay: toml::Value, prefix: &str) -> Result<(), ConfigError> {
    let (toml::Value::Table(base_t), toml::Value::Table(over_t)) = (base, overlay) else {
        return Ok(());
    };
    for (k, v) in over_t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match base_t.get_mut(&k) {
            None => return Err(invalid(&key, "unknown key")),
            Some(existing @ toml::Value::Table(_)) => {
                if !v.is_table() {
                    return Err(invalid(&key, "must be a table ([section])"));
                }
                merge(existing, v, &key)?;
            }
            Some(existing) => {
                if std::mem::discriminant(existing) != std::mem::discriminant(&v) {
                    return Err(invalid(
                        &key,
                        format!("expected {}, found {}", existing.type_str(), v.type_str()),
                    ));
                }
                *existing = v;
            }
        }
    }
    Ok(())
}

/// `CPORT_SMTP__HOST` → smtp.host; `CPORT_DATABASE_URL` → database_url;
/// `CPORT_TELEGRAM_TOKEN` → telegram.token (single underscore after a section name).
fn apply_env(tree: &mut toml::Value, var: &str, rest: &str, value: &str) -> Result<(), ConfigError> {
    let lower = rest.to_ascii_lowercase();
    let path: Vec<String> = if let Some((section, key)) = lower.split_once("__") {
        vec![section.to_string(), key.to_string()]
    } else if tree.get(&lower).is_some_and(|v| !v.is_table()) {
        vec![lower.clone()]
    } else if let Some((section, key)) = lower.split_once('_') {
        vec![section.to_string(), key.to_string()]
    } else {
        vec![lower.clone()]
    };
    let unknown = || ConfigError::Env {
        var: var.to_string(),
        message: "does not name a config key".into(),
    };
    let mut node = &mut *tree;
    for part in &path[..path.len() - 1] {
        node = node
            .get_mut(part.as_str())
            .filter(|n| n.is_table())
            .ok_or_else(unknown)?;
    }
    let leaf = node.get_mut(path[path.len() - 1].as_str()).ok_or_else(unknown)?;
    let parsed = match leaf {
        toml::Value::Integer(_) => value
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| ConfigError::Env {
                var: var.to_string(),
                message: format!("`{value}` is not a whole number"),
            })?,
        toml::Value::Boolean(_) => value
            .parse::<bool>()
            .map(toml::Value::Boolean)
            .map_err(|_| ConfigError::Env {
                var: var.to_string(),
                message: format!("`{value}` is not true or false"),
            })?,
        toml::Value::Array(_) => toml::Value::Array(
            value
                .split(',')
                .map(|v| toml::Value::String(v.trim().to_string()))
                .filter(|v| v.as_str() != Some(""))
                .collect(),
        ),
        toml::Value::Table(_) => return Err(unknown()),
        _ => toml::Value::String(value.to_string()),
    };
    *leaf = parsed;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn environment_overrides_and_names_bad_keys() {
        let ok = env(&[
            ("CPORT_API_TOKEN", "t0ken"),
            ("CPORT_LINK_SECRET", "0123456789abcdef"),
            ("CPORT_SMTP__PORT", "2525"),
            ("CPORT_TELEGRAM_API_URL", "http://127.0.0.1:1"),
        ]);
        let c = Config::load_from(None, &ok, Need::Secrets).unwrap();
        assert_eq!(c.smtp.port, 2525);
        assert_eq!(c.telegram.api_url, "http://127.0.0.1:1");
        assert_eq!(format!("{:?}", c.api_token), "\"***\"");

        let cases = [
            (vec![("CPORT_SMTP__PORT", "many")], "CPORT_SMTP__PORT"),
            (vec![("CPORT_NOPE", "1")], "CPORT_NOPE"),
            (vec![("CPORT_DIGEST__SCHEDULE", "every day")], "digest.schedule"),
            (vec![("CPORT_DIGEST__TIMEZONE", "Mars/Base")], "digest.timezone"),
            (vec![("CPORT_LISTEN", "here")], "listen"),
        ];
        for (extra, named) in cases {
            let mut e = ok.clone();
            e.extend(env(&extra));
            let err = Config::load_from(None, &e, Need::Secrets).unwrap_err().to_string();
            assert!(err.contains(named), "{extra:?}: error `{err}` should name {named}");
        }
    }

    #[test]
    fn missing_secrets_are_refused_only_when_needed() {
        let err = Config::load_from(None, &[], Need::Secrets).unwrap_err().to_string();
        assert!(err.contains("api_token"), "{err}");
        Config::load_from(None, &[], Need::StoreOnly).unwrap();
    }

    #[test]
    fn unknown_and_mistyped_file_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for (text, named) in [
            ("listn = \"x\"", "listn"),
            ("[smtp]\nprot = 1", "smtp.prot"),
            ("[smtp]\nport = \"x\"", "smtp.port"),
            ("[email]\ntransport = \"pigeon\"", "email.transport"),
            ("[smtp]\ntls = \"ssl\"", "smtp.tls"),
            ("[alerts]\nvisual_approval = \"loud\"", "alerts.visual_approval"),
            ("[portal]\nsecure_cookies = \"sometimes\"", "portal.secure_cookies"),
            ("[telegram]\nmode = \"push\"", "telegram.mode"),
        ] {
            let p = dir.path().join("c.toml");
            std::fs::write(&p, text).unwrap();
            let err = Config::load_from(Some(&p), &[], Need::StoreOnly)
                .unwrap_err()
                .to_string();
            assert!(err.contains(named), "{text}: `{err}` should name {named}");
        }
    }

    #[test]
    fn database_passwords_are_masked() {
        assert_eq!(mask_url_password("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(mask_url_password("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
