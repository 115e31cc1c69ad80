//! Checks that need more than a type: addresses, URLs, lengths, values that depend on each
//! other. Each failure names its key.

use std::net::SocketAddr;
use std::str::FromStr;

use super::{Config, ConfigError, Need, TelegramMode, Tls, Transport, invalid};

impl Config {
    pub fn validate(&self, need: Need) -> Result<(), ConfigError> {
        SocketAddr::from_str(&self.listen)
            .map_err(|_| invalid("listen", format!("`{}` is not an address like 127.0.0.1:8080", self.listen)))?;
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
        let dkim = &self.email.dkim;
        if dkim.enabled() || !dkim.domain.is_empty() || !dkim.key_file.as_os_str().is_empty() {
            let dns =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
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
        if self.smtp.pool_size == 0 {
            return Err(invalid("smtp.pool_size", "must be at least 1"));
        }
        if self.email.reply_domain.is_empty() || self.email.reply_domain.contains('@') {
            return Err(invalid("email.reply_domain", "must be a domain name like reply.tot.example"));
        }
        crate::model::schedule::parse_schedule(&self.digest.schedule).map_err(|e| invalid("digest.schedule", e))?;
        self.digest
            .timezone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| invalid("digest.timezone", format!("`{}` is not an IANA time zone", self.digest.timezone)))?;
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
                return Err(invalid("webhook.secret", "required (16 characters or more) when webhook.url is set"));
            }
        }
        let c = &self.branding.colour;
        if !(c.starts_with('#') && matches!(c.len(), 4 | 7 | 9) && c[1..].chars().all(|x| x.is_ascii_hexdigit())) {
            return Err(invalid("branding.colour", format!("`{c}` is not a colour like #1f3a5f")));
        }
        if self.portal.session_hours == 0 || self.portal.delegation_hours == 0 || self.portal.reset_minutes == 0 {
            return Err(invalid("portal", "session_hours, delegation_hours and reset_minutes must be at least 1"));
        }
        if !self.imap.host.is_empty() {
            if self.imap.tls == Tls::Starttls {
                return Err(invalid("imap.tls", "starttls is not supported for IMAP; use tls (port 993) or none"));
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
                return Err(invalid("api_token", "missing; set it in the config file or CPORT_API_TOKEN"));
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
            return Err(invalid("telegram.messages_per_second", "rate limits must be at least 1"));
        }
        if t.poll_timeout_seconds == 0 || t.poll_timeout_seconds > 50 {
            return Err(invalid("telegram.poll_timeout_seconds", "must be between 1 and 50"));
        }
        let d = &self.discord;
        if !(d.api_url.starts_with("http://") || d.api_url.starts_with("https://")) {
            return Err(invalid("discord.api_url", "must start with http:// or https://"));
        }
        if !d.public_key.is_empty() && d.verifier().is_none() {
            return Err(invalid("discord.public_key", "must be the application's public key: 64 hexadecimal digits"));
        }
        for (key, v) in [("discord.application_id", &d.application_id), ("discord.channel_id", &d.channel_id)] {
            if !v.is_empty() && v.parse::<u64>().is_err() {
                return Err(invalid(key, format!("`{v}` is not a Discord id (digits)")));
            }
        }
        if d.defer_after_ms > 2500 {
            return Err(invalid("discord.defer_after_ms", "must be at most 2500 (Discord waits 3 seconds)"));
        }
        if let Some(bad) = d.staff.iter().find(|s| s.parse::<u64>().is_err()) {
            return Err(invalid("discord.staff", format!("`{bad}` is not a Discord user id")));
        }
        Ok(())
    }
}
