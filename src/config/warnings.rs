//! What a server about to start should know of its configuration: settings that are valid
//! but likely a mistake, said as warnings by `serve` and by the demo (which serves the same
//! way). Refusing them would stop setups that mean them (a test rig on loopback, a short
//! token behind a private network).

use super::{Config, TelegramMode};

/// Shorter than this, a bearer token is within reach of guessing.
const SHORT_TOKEN: usize = 16;

impl Config {
    /// Each warning in words, in the order of the keys it names.
    pub fn start_warnings(&self) -> Vec<String> {
        let mut out = vec![];
        if self.digest.catch_up_hours == 0 {
            out.push(
                "digest.catch_up_hours is 0: the scheduler sends no digest (no pass is ever on the slot's \
                 instant); `cport digest run` sends them, or set it to 1 or more"
                    .to_string(),
            );
        }
        for (key, token) in [("api_token", &self.api_token), ("inbound.token", &self.inbound.token)] {
            let n = token.expose().chars().count();
            if n > 0 && n < SHORT_TOKEN {
                out.push(format!(
                    "{key} is {n} characters: whoever guesses it may {}; use {SHORT_TOKEN} or more random \
                     characters (e.g. `openssl rand -hex 32`)",
                    if key == "api_token" {
                        "change TOT's records and read the change feed"
                    } else {
                        "post mail as any sender"
                    }
                ));
            }
        }
        if self.inbound.trusted_authserv_ids.is_empty() {
            out.push(
                "email replies are acted on without a trusted DMARC or DKIM result \
                 (inbound.trusted_authserv_ids is empty): an approval by email then rests on \
                 the secrecy of the reply address; put a DMARC check in front of cport and name it there"
                    .to_string(),
            );
        }
        if let Some(host) = plain_http_host(&self.webhook.url).filter(|h| !super::validate::loopback(h)) {
            out.push(format!(
                "webhook.url is plain http to {host}: every change event (names, addresses, what clients \
                 decided) crosses the network unencrypted; use https"
            ));
        }
        if self.telegram.mode == TelegramMode::Webhook && !self.telegram.token.is_empty() && !self.public_is_https() {
            out.push(format!(
                "telegram.mode is webhook but public_url ({}) is not https: Telegram sends updates only to \
                 an https address, so none will come (use long polling, or serve cport over https)",
                self.public_url
            ));
        }
        out
    }
}

/// The host of an `http://` address (its scheme in any case), as the `url` crate reads it
/// (an IPv6 host in its brackets); `None` for any other address.
fn plain_http_host(address: &str) -> Option<String> {
    let parsed = url::Url::parse(address).ok()?;
    (parsed.scheme() == "http").then(|| parsed.host_str().map(str::to_string)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warned(change: impl FnOnce(&mut Config)) -> Vec<String> {
        let mut c = Config::default();
        c.inbound.trusted_authserv_ids = vec!["mx.tot.example".into()];
        change(&mut c);
        c.start_warnings()
    }

    #[test]
    fn a_sound_configuration_has_no_warnings() {
        assert_eq!(warned(|c| c.api_token = crate::config::Secret::new("0123456789abcdef")), Vec::<String>::new());
    }

    #[test]
    fn short_tokens_are_named_with_their_length() {
        let w = warned(|c| {
            c.api_token = crate::config::Secret::new("t0ken");
            c.inbound.token = crate::config::Secret::new("abc");
        });
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("api_token is 5 characters"), "{w:?}");
        assert!(w[1].starts_with("inbound.token is 3 characters"), "{w:?}");
    }

    #[test]
    fn plain_http_webhooks_are_warned_of_unless_on_this_machine() {
        for url in ["http://tot.example/hook", "HTTP://user@10.0.0.5:8080/x", "http://[2001:db8::1]:80/"] {
            let w = warned(|c| c.webhook.url = url.into());
            assert!(w.iter().any(|w| w.starts_with("webhook.url is plain http")), "{url}: {w:?}");
        }
        for url in ["https://tot.example/hook", "http://127.0.0.1:9000/hook", "http://localhost/x", "http://[::1]:8/"] {
            assert_eq!(warned(|c| c.webhook.url = url.into()), Vec::<String>::new(), "{url}");
        }
    }

    #[test]
    fn the_other_warnings_name_their_keys() {
        assert!(warned(|c| c.digest.catch_up_hours = 0)[0].starts_with("digest.catch_up_hours is 0"));
        let w = warned(|c| c.inbound.trusted_authserv_ids.clear());
        assert!(w[0].contains("inbound.trusted_authserv_ids is empty"), "{w:?}");
    }
}
