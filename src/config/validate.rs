//! Checks that need more than a type: addresses, URLs, lengths, values that depend on each
//! other. Each failure names its key.

use std::net::SocketAddr;
use std::str::FromStr;

use super::{Config, ConfigError, Need, TelegramMode, Tls, Transport, invalid};

impl Config {
    pub fn validate(&self, need: Need) -> Result<(), ConfigError> {
        // First: a control character makes every later message about that key misleading.
        self.check_text_values()?;
        // Then each number on its own: a check between two keys (an attachment's size and
        // the message's) would otherwise blame the key that is fine, asking the impossible.
        self.check_ranges()?;
        SocketAddr::from_str(&self.listen)
            .map_err(|_| invalid("listen", format!("`{}` is not an address like 127.0.0.1:8080", self.listen)))?;
        check_public_url(&self.public_url)?;
        let logo = &self.branding.logo_url;
        let media_path = logo.starts_with("/media/")
            && crate::model::is_plain_link(logo)
            && !logo.split('/').any(|step| step == ".." || step == ".");
        if !(logo.is_empty() || crate::model::is_web_address(logo) || media_path) {
            return Err(invalid(
                "branding.logo_url",
                "must be a web address (http:// or https://) or a path under /media/, with no spaces, quotes or `..`",
            ));
        }
        let db = self.database_url.expose();
        if !(db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            return Err(invalid("database_url", "must start with sqlite: or postgres://"));
        }
        if sqlite_in_memory(db) {
            return Err(invalid(
                "database_url",
                "names no database file; a store must outlast the process, like sqlite://data/cport.db",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must name a folder, like /var/lib/cport"));
        }
        if self.data_dir.exists() && !self.data_dir.is_dir() {
            return Err(invalid(
                "data_dir",
                format!("{} is a file, not a folder", crate::model::path_shown(&self.data_dir)),
            ));
        }
        if self.branding.name.trim().is_empty() {
            return Err(invalid("branding.name", "must not be blank: it signs every message and page"));
        }
        if self.branding.approval_terms.trim().is_empty() {
            return Err(invalid(
                "branding.approval_terms",
                "must not be blank: a client agrees to these terms with each approval, and they are recorded with it",
            ));
        }
        for (key, host) in [("smtp.host", &self.smtp.host), ("imap.host", &self.imap.host)] {
            // An IPv6 address is written bare (`::1`): the port is a key of its own, and a
            // bracketed one would be looked up as a name and never reached.
            if !host.is_empty() && !domain_name(host) && host.parse::<std::net::IpAddr>().is_err() {
                let hint = if host.starts_with('[') { " (write an IPv6 address without brackets)" } else { "" };
                return Err(invalid(
                    key,
                    format!("`{host}` is not a host name like mail.tot.example, or an IP address{hint}"),
                ));
            }
        }
        // Fully qualified: a host name of two labels at least.
        let helo = &self.smtp.helo_name;
        let qualified = domain_name(helo) && helo.trim_end_matches('.').contains('.');
        if !helo.is_empty() && !qualified {
            return Err(invalid(
                "smtp.helo_name",
                format!("{} is not a fully qualified host name like mail.tot.example", crate::model::quoted(helo)),
            ));
        }
        if self.email.transport == Transport::Smtp && self.smtp.host.is_empty() {
            return Err(invalid("smtp.host", "required when email.transport = \"smtp\""));
        }
        // An artwork file travels in base64 (4/3 of its size) inside a reply with a quote.
        let needed = self.inbound.max_attachment_bytes.saturating_mul(4) / 3 + 64 * 1024;
        if self.inbound.max_bytes < needed {
            return Err(invalid(
                "inbound.max_bytes",
                format!(
                    "{} is too small for an attachment of inbound.max_attachment_bytes ({}) to arrive by email: at least {needed}",
                    self.inbound.max_bytes, self.inbound.max_attachment_bytes
                ),
            ));
        }
        if self.max_body_bytes < self.inbound.max_bytes {
            return Err(invalid(
                "max_body_bytes",
                format!(
                    "must be at least inbound.max_bytes ({}), or POST /inbound/email refuses what the pipe takes",
                    self.inbound.max_bytes
                ),
            ));
        }
        let dns =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        let dkim = &self.email.dkim;
        if !dkim.domain.is_empty() && !domain_name(&dkim.domain) {
            return Err(invalid(
                "email.dkim.domain",
                format!("`{}` is not a domain name like tot.example", dkim.domain),
            ));
        }
        if dkim.enabled() || !dkim.domain.is_empty() || !dkim.key_file.as_os_str().is_empty() {
            if !dns(&dkim.selector) {
                return Err(invalid("email.dkim.selector", "required with email.dkim, a DNS label like `cport1`"));
            }
            if !dns(&dkim.domain) {
                return Err(invalid("email.dkim.domain", "required with email.dkim, a domain like tot.example"));
            }
            if dkim.key_file.as_os_str().is_empty() {
                return Err(invalid("email.dkim.key_file", "required with email.dkim: the private key's file"));
            }
        }
        let reply = &self.email.reply_domain;
        // Every reply address is made under it: one lettre would refuse kills every email.
        let addressable = format!("r@{reply}").parse::<lettre::Address>().is_ok();
        // One label is no domain the internet can send replies to.
        if !domain_name(reply) || !reply.trim_end_matches('.').contains('.') || !addressable {
            return Err(invalid(
                "email.reply_domain",
                format!("`{reply}` is not a domain name like reply.tot.example"),
            ));
        }
        // Every mail carries it: refused here rather than by every message when it is sent.
        if let Err(e) = self.email.from.parse::<lettre::message::Mailbox>() {
            return Err(invalid(
                "email.from",
                format!("`{}` is not an address like `TOT <notifications@tot.example>`: {e}", self.email.from),
            ));
        }
        let types = &self.inbound.artwork_types;
        if types.is_empty() {
            return Err(invalid("inbound.artwork_types", "name at least one file type, like [\"pdf\", \"png\"]"));
        }
        if let Some(t) = types.iter().find(|t| t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric())) {
            return Err(invalid(
                "inbound.artwork_types",
                format!("`{t}` is not a file type: give the extension's letters, like `pdf` (no dot)"),
            ));
        }
        crate::model::schedule::check_default_schedule(&self.digest.schedule)
            .map_err(|e| invalid("digest.schedule", e))?;
        self.digest
            .timezone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| invalid("digest.timezone", format!("`{}` is not an IANA time zone", self.digest.timezone)))?;
        if !self.webhook.url.is_empty() {
            if !crate::model::is_web_address(&self.webhook.url) {
                return Err(invalid(
                    "webhook.url",
                    "must be a web address: http:// or https://, a host, no spaces or quotes",
                ));
            }
            if self.webhook.secret.expose().len() < 16 {
                return Err(invalid("webhook.secret", "required (16 characters or more) when webhook.url is set"));
            }
        }
        let c = &self.branding.colour;
        if !(c.starts_with('#') && matches!(c.len(), 4 | 7 | 9) && c[1..].chars().all(|x| x.is_ascii_hexdigit())) {
            return Err(invalid("branding.colour", format!("`{c}` is not a colour like #1f3a5f")));
        }
        for (key, host, tls) in [("smtp", &self.smtp.host, self.smtp.tls), ("imap", &self.imap.host, self.imap.tls)] {
            if tls == Tls::None && !host.is_empty() && !loopback(host) {
                return Err(invalid(
                    &format!("{key}.tls"),
                    format!("none sends passwords and mail in the clear: only to a loopback host, not `{host}`"),
                ));
            }
        }
        let authserv = &self.inbound.trusted_authserv_ids;
        if let Some(bad) = authserv.iter().find(|id| !domain_name(id)) {
            return Err(invalid(
                "inbound.trusted_authserv_ids",
                format!("{} is not an authserv-id (a host name like mx.tot.example)", crate::model::quoted(bad)),
            ));
        }
        if !self.imap.host.is_empty() {
            if self.imap.tls == Tls::Starttls {
                return Err(invalid("imap.tls", "starttls is not supported for IMAP; use tls (port 993) or none"));
            }
            if self.imap.username.is_empty() {
                return Err(invalid("imap.username", "required when imap.host is set"));
            }
            if self.imap.mailbox.trim().is_empty() {
                return Err(invalid("imap.mailbox", "required when imap.host is set, like INBOX"));
            }
            // Moving mail to where it is would leave it to be read again (INBOX is named in
            // any case, other mailboxes as written).
            let (from, to) = (self.imap.mailbox.trim(), self.imap.processed_mailbox.trim());
            if from == to || (from.eq_ignore_ascii_case("INBOX") && to.eq_ignore_ascii_case("INBOX")) {
                return Err(invalid(
                    "imap.processed_mailbox",
                    format!(
                        "is imap.mailbox ({from}) itself: name another folder, or leave it empty to flag mail \\Seen"
                    ),
                ));
            }
        }
        if need != Need::StoreOnly && self.link_secret.expose().chars().count() < 16 {
            return Err(invalid(
                "link_secret",
                "missing or shorter than 16 characters; set it in the config file or CPORT_LINK_SECRET",
            ));
        }
        let previous = self.previous_link_secret.expose();
        if !previous.is_empty() && previous.chars().count() < 16 {
            return Err(invalid("previous_link_secret", "shorter than 16 characters; give the whole old link_secret"));
        }
        if !previous.is_empty() && previous == self.link_secret.expose() {
            return Err(invalid(
                "previous_link_secret",
                "is link_secret itself; give the secret used before the change, or leave it empty",
            ));
        }
        if need == Need::Secrets {
            if self.api_token.is_empty() {
                return Err(invalid("api_token", "missing; set it in the config file or CPORT_API_TOKEN"));
            }
            // HTTP drops the blanks around a header's value: such a token never matches.
            if !one_word(self.api_token.expose()) {
                return Err(invalid("api_token", "holds spaces; a bearer token is one word"));
            }
        }
        for (key, token) in [("inbound.token", &self.inbound.token), ("discord.token", &self.discord.token)] {
            if !token.is_empty() && !one_word(token.expose()) {
                return Err(invalid(key, "holds spaces; a token is one word"));
            }
        }
        self.validate_chat()
    }

    /// Every number in the configuration within a range that makes sense: a zero where a
    /// count or an interval is needed stops the work, and a number past the top overflows
    /// the date arithmetic it feeds (a link's expiry, a lease) or starts millions of tasks.
    fn check_ranges(&self) -> Result<(), ConfigError> {
        for (key, value, min, max, unit) in self.ranges() {
            if !(min..=max).contains(&value) {
                return Err(invalid(key, format!("{value} is not between {min} and {max}{unit}")));
            }
        }
        if self.outbox.backoff_max_seconds < self.outbox.backoff_base_seconds {
            return Err(invalid("outbox.backoff_max_seconds", "must be at least outbox.backoff_base_seconds"));
        }
        Ok(())
    }

    /// The range of the number at `key`, if it has one, in words: `between 1 and 64`. Said
    /// also for a number that does not fit its key's type at all (`-1`, `99999999999`).
    pub(super) fn range_of(key: &str) -> Option<String> {
        let (_, _, min, max, unit) = Config::default().ranges().into_iter().find(|r| r.0 == key)?;
        Some(format!("between {min} and {max}{unit}"))
    }

    /// Each number's key, value, least, most and unit.
    fn ranges(&self) -> [(&'static str, u64, u64, u64, &'static str); 33] {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 60 * MINUTE;
        const DAY: u64 = 24 * HOUR;
        let (t, d, o, p) = (&self.telegram, &self.discord, &self.outbox, &self.portal);
        [
            ("smtp.pool_size", self.smtp.pool_size.into(), 1, 64, ""),
            ("smtp.timeout_seconds", self.smtp.timeout_seconds, 1, HOUR, " seconds"),
            // 0 turns the scheduler's digests off (said at start): no pass is ever that late.
            ("digest.catch_up_hours", self.digest.catch_up_hours.into(), 0, 7 * 24, " hours"),
            ("digest.link_ttl_days", self.digest.link_ttl_days.into(), 1, 366, " days"),
            ("digest.tick_seconds", self.digest.tick_seconds, 1, HOUR, " seconds"),
            ("alerts.batch_window_seconds", self.alerts.batch_window_seconds, 0, DAY, " seconds"),
            ("alerts.scan_seconds", self.alerts.scan_seconds, 1, DAY, " seconds"),
            ("outbox.max_attempts", o.max_attempts.into(), 1, 100, ""),
            ("outbox.backoff_base_seconds", o.backoff_base_seconds, 1, DAY, " seconds"),
            ("outbox.backoff_max_seconds", o.backoff_max_seconds, 1, 7 * DAY, " seconds"),
            ("outbox.workers", o.workers.into(), 1, 64, ""),
            // A sender renews its claim every third of the lease.
            ("outbox.lease_seconds", o.lease_seconds, 3, DAY, " seconds"),
            ("outbox.send_timeout_seconds", o.send_timeout_seconds, 1, HOUR, " seconds"),
            ("outbox.sent_content_days", o.sent_content_days.into(), 0, 100 * 366, " days"),
            ("portal.session_hours", p.session_hours.into(), 1, 366 * 24, " hours"),
            ("portal.delegation_hours", p.delegation_hours.into(), 1, 366 * 24, " hours"),
            ("portal.reset_minutes", p.reset_minutes.into(), 1, 7 * 24 * 60, " minutes"),
            ("portal.login_attempts_per_account", p.login_attempts_per_account.into(), 1, 1000, ""),
            ("portal.login_attempts_per_address", p.login_attempts_per_address.into(), 1, 100_000, ""),
            ("inbound.soft_bounce_limit", self.inbound.soft_bounce_limit.into(), 1, 1000, ""),
            ("telegram.poll_timeout_seconds", t.poll_timeout_seconds.into(), 1, 50, " seconds"),
            ("telegram.messages_per_second", t.messages_per_second.into(), 1, 1_000_000, ""),
            ("telegram.chat_messages_per_second", t.chat_messages_per_second.into(), 1, 1_000_000, ""),
            ("telegram.chat_messages_per_minute", t.chat_messages_per_minute.into(), 1, 1_000_000, ""),
            // Discord waits 3 seconds for the first answer to an interaction.
            ("discord.defer_after_ms", d.defer_after_ms, 0, 2500, " ms"),
            ("imap.poll_seconds", self.imap.poll_seconds, 1, DAY, " seconds"),
            ("imap.timeout_seconds", self.imap.timeout_seconds, 1, HOUR, " seconds"),
            ("smtp.port", self.smtp.port.into(), 1, 65535, ""),
            ("imap.port", self.imap.port.into(), 1, 65535, ""),
            ("inbound.max_attachment_bytes", self.inbound.max_attachment_bytes, 1, 1 << 30, " bytes"),
            ("inbound.max_bytes", self.inbound.max_bytes, 1, 2 << 30, " bytes"),
            // A body is held whole while it is read.
            ("max_body_bytes", self.max_body_bytes, 1, 2 << 30, " bytes"),
            ("stalled_pass_seconds", self.stalled_pass_seconds, 1, DAY, " seconds"),
        ]
    }

    fn validate_chat(&self) -> Result<(), ConfigError> {
        let t = &self.telegram;
        if !crate::model::is_web_address(&t.api_url) {
            return Err(invalid(
                "telegram.api_url",
                "must be a web address: http:// or https://, a host, no spaces or quotes",
            ));
        }
        if t.mode == TelegramMode::Webhook && !t.token.is_empty() && t.webhook_secret.expose().len() < 16 {
            return Err(invalid(
                "telegram.webhook_secret",
                "required (16 characters or more) when telegram.mode = \"webhook\"",
            ));
        }
        // `123456:ABC-def…`, as BotFather gives it: one with a space or a slash would make
        // every request's address wrong, and Telegram's refusal would name no key.
        let (bot, secret) = t.token.expose().split_once(':').unwrap_or_default();
        let token_shaped = !bot.is_empty()
            && bot.bytes().all(|b| b.is_ascii_digit())
            && !secret.is_empty()
            && secret.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !t.token.is_empty() && !token_shaped {
            return Err(invalid("telegram.token", "is not a bot token like 123456:ABC-def (as BotFather gives it)"));
        }
        // Telegram's own rule for the secret it sends back: refused by setWebhook otherwise,
        // with words that name no key.
        let secret = t.webhook_secret.expose();
        if !secret.is_empty()
            && (secret.len() > 256 || !secret.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')))
        {
            return Err(invalid(
                "telegram.webhook_secret",
                "may hold only letters A-Z and a-z, digits, `_` and `-`, at most 256 of them (Telegram's rule)",
            ));
        }
        // Compared as Telegram writes them (`123`): `+123` or `0123` would never match.
        if let Some(bad) = t.staff.iter().find(|s| s.parse::<i64>().map(|n| n.to_string()).as_ref() != Ok(*s)) {
            return Err(invalid(
                "telegram.staff",
                format!("{} is not a Telegram user id (digits, as Telegram writes it)", crate::model::quoted(bad)),
            ));
        }
        let d = &self.discord;
        if !crate::model::is_web_address(&d.api_url) {
            return Err(invalid(
                "discord.api_url",
                "must be a web address: http:// or https://, a host, no spaces or quotes",
            ));
        }
        // Discord's own host with a path (`https://discord.com/api`, as Discord's docs write
        // the base) would be taken for a proxy: serenity adds `/api/v10` itself, and every
        // call would go to `/api/api/v10/…`, a 404, with its rate limiter off.
        if let Ok(u) = reqwest::Url::parse(&d.api_url)
            && u.host_str().is_some_and(|h| h.eq_ignore_ascii_case("discord.com"))
            && d.api_url.trim_end_matches('/') != "https://discord.com"
        {
            return Err(invalid(
                "discord.api_url",
                format!(
                    "{} is Discord itself: give `https://discord.com`, without a path (cport adds /api/v10)",
                    crate::model::quoted(&d.api_url)
                ),
            ));
        }
        if !d.public_key.is_empty() && d.verifier().is_none() {
            return Err(invalid("discord.public_key", "must be the application's public key: 64 hexadecimal digits"));
        }
        for (key, v) in [("discord.application_id", &d.application_id), ("discord.channel_id", &d.channel_id)] {
            if !v.is_empty() && crate::model::discord_id(v).is_none() {
                return Err(invalid(key, format!("{} is not a Discord id (digits, not 0)", crate::model::quoted(v))));
            }
        }
        if let Some(bad) = d.staff.iter().find(|s| crate::model::discord_id(s).is_none()) {
            return Err(invalid("discord.staff", format!("{} is not a Discord user id", crate::model::quoted(bad))));
        }
        Ok(())
    }
}

impl Config {
    /// Every text value of the config on one line, free of control characters (and of the
    /// characters that make text read other than it is written), but
    /// `branding.approval_terms`, which is prose: a line break in `imap.mailbox` would end an
    /// IMAP command early, and one in a host, an address or a name is never meant. The same
    /// rule as records' text ([`crate::model::check_chars`]). Names the first key that holds
    /// one.
    fn check_text_values(&self) -> Result<(), ConfigError> {
        use crate::model::{FieldError, Lines, check_chars};
        use serde_json::Value;
        fn first_bad(key: &str, v: &Value) -> Option<FieldError> {
            let join = |k: &str| if key.is_empty() { k.to_string() } else { format!("{key}.{k}") };
            match v {
                Value::String(s) => {
                    let lines = if key == "branding.approval_terms" { Lines::Many } else { Lines::One };
                    check_chars(key, s, lines).err()
                }
                Value::Array(items) => items.iter().enumerate().find_map(|(i, x)| first_bad(&format!("{key}[{i}]"), x)),
                Value::Object(fields) => fields.iter().find_map(|(k, x)| first_bad(&join(k), x)),
                _ => None,
            }
        }
        // The config is plain data: it always serializes.
        let Ok(all) = serde_json::to_value(self) else {
            return Ok(());
        };
        match first_bad("", &all) {
            Some(e) => Err(invalid(&e.field, e.reason)),
            None => Ok(()),
        }
    }
}

/// `public_url` as every link is made from it: an http(s) address of a host, at its root (the
/// pages' links, redirects and cookie paths start at `/`: under a path, a signed link would
/// sign in and then redirect out of it), with nothing a link would carry on after it (a query,
/// a fragment) or leak to every client who gets one (a user name and password).
fn check_public_url(raw: &str) -> Result<(), ConfigError> {
    // Said with any password in it masked: refused for holding one, it is not printed.
    let said = match url::Url::parse(raw) {
        Ok(u) if u.password().is_some() => super::mask_url_password(raw),
        _ => raw.to_string(),
    };
    let wrong = |why: &str| invalid("public_url", format!("{} {why}", crate::model::quoted(&said)));
    if !crate::model::is_web_address(raw) {
        return Err(wrong("is not a web address: http:// or https://, a host, no spaces or quotes"));
    }
    let url = url::Url::parse(raw).map_err(|e| wrong(&format!("is not a web address: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(wrong("holds a user name or password, which every link would show"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(wrong("holds a query or fragment (`?`, `#`), which every link would break on"));
    }
    if url.path() != "/" {
        return Err(wrong(
            "has a path: cport's pages, redirects and cookies start at the root of their host; give it a host \
             of its own at the proxy",
        ));
    }
    match url.host() {
        Some(url::Host::Domain(d)) if !domain_name(d) => Err(wrong("names no host")),
        None => Err(wrong("names no host")),
        _ => Ok(()),
    }
}

/// A host name as DNS has it: dot-separated labels of letters, digits, `-` and `_`, each 1 to
/// 63 characters and not beginning or ending with `-`, 253 characters at most.
fn domain_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        })
}

/// Whether a host is this machine: `localhost`, or a loopback address.
pub(super) fn loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A token sent in an HTTP header is one word: HTTP drops the blanks around a header's value,
/// so a token holding any would never match.
fn one_word(token: &str) -> bool {
    !token.chars().any(char::is_whitespace)
}

/// Whether a `sqlite:` URL names no database file: none (each connection would open an
/// empty store of its own) or memory, which keeps nothing once the process stops.
pub fn sqlite_in_memory(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("sqlite:") else { return false };
    let rest = rest.trim_start_matches("//");
    let (file, options) = rest.split_once('?').unwrap_or((rest, ""));
    file.is_empty() || file == ":memory:" || options.split('&').any(|o| o == "mode=memory")
}
