//! Loading: the defaults as a TOML tree, the file laid over it (unknown keys refused), then
//! `CPORT_…` variables, then one typed parse that names the key of any value that does not fit.

use std::path::{Path, PathBuf};

use super::{Config, ConfigError, Need, invalid};

impl Config {
    /// Loads defaults, overlays `file` (if given) and the environment, then validates.
    pub fn load(file: Option<&Path>, need: Need) -> Result<Config, ConfigError> {
        Self::load_from(file, &Self::environment()?, need)
    }

    /// The `CPORT_…` variables of this process, for [`Config::load_from`].
    pub fn environment() -> Result<Vec<(String, String)>, ConfigError> {
        // `vars()` would panic on any variable that is not UTF-8, cport's or not: only
        // cport's own must be.
        let mut env = Vec::new();
        for (var, value) in std::env::vars_os() {
            let Some(var) = var.to_str().filter(|v| v.starts_with("CPORT_")) else { continue };
            let value = value
                .into_string()
                .map_err(|_| ConfigError::Env { var: var.to_string(), message: "is not UTF-8 text".into() })?;
            env.push((var.to_string(), value));
        }
        Ok(env)
    }

    /// Same as [`Config::load`] with the environment passed in (tests use this).
    pub fn load_from(file: Option<&Path>, env: &[(String, String)], need: Need) -> Result<Config, ConfigError> {
        let mut tree = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError::Parse { path: PathBuf::from("<defaults>"), message: e.to_string() })?;
        if let Some(path) = file {
            let text = read_config_file(path).map_err(|error| ConfigError::Read { path: path.to_path_buf(), error })?;
            let overlay: toml::Value = toml::from_str(&text).map_err(|e| {
                // The line it stopped at: the message alone ("invalid string") names no key.
                let at = e.span().map(|s| {
                    let line = text[..s.start].matches('\n').count() + 1;
                    match key_at(&text, s.start) {
                        Some(key) => format!("line {line}, key `{key}`: "),
                        None => format!("line {line}: "),
                    }
                });
                ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: format!("{}{}", at.unwrap_or_default(), e.message()),
                }
            })?;
            merge(&mut tree, overlay, "")?;
        }
        // The variable that set each key, so that a value that does not fit is named by it;
        // two spellings of one key (`CPORT_OUTBOX__WORKERS`, `CPORT_OUTBOX_WORKERS`) given
        // both are refused rather than one silently winning.
        let mut from_env: Vec<(String, &str)> = Vec::new();
        for (var, value) in env {
            if let Some(rest) = var.strip_prefix("CPORT_") {
                let key = apply_env(&mut tree, var, rest, value)?;
                if let Some((_, other)) = from_env.iter().find(|(k, _)| *k == key) {
                    return Err(ConfigError::Env {
                        var: var.to_string(),
                        message: format!("sets {key}, as {other} does too; keep one of them"),
                    });
                }
                from_env.push((key, var.as_str()));
            }
        }
        // A key's value refused, named by the variable that gave it when one did.
        let refused = |key: &str, message: String| match from_env.iter().find(|(k, _)| k == key) {
            Some((_, var)) => ConfigError::Env { var: var.to_string(), message: format!("for `{key}`, {message}") },
            None => invalid(key, message),
        };
        // The path of a value that does not fit its type (a misspelt mode) names the key.
        let config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            let message = number_in_words(e.into_inner().message(), Config::range_of(&key));
            if key.is_empty() || key == "." {
                ConfigError::Parse {
                    path: file.map(Path::to_path_buf).unwrap_or_else(|| "<environment>".into()),
                    message,
                }
            } else {
                refused(&key, message)
            }
        })?;
        config.validate(need).map_err(|e| match e {
            ConfigError::Invalid { key, message } => refused(&key, message),
            other => other,
        })?;
        Ok(config)
    }
}

/// The dotted key whose value holds byte `at` of a TOML text that failed to parse, so a
/// number too large names `outbox.workers` and not only a line. Read by hand because the
/// parser gives up before it has a tree: the last `[section]` line above, and the bare key
/// before `=` on the line itself (a quoted or inline-table key is not named; the line is).
fn key_at(text: &str, at: usize) -> Option<String> {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let (key, _) = text[start..at].split_once('=')?;
    let key = key.trim();
    let bare = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !bare(key) {
        return None;
    }
    let section = text[..start].lines().rev().map(str::trim).find_map(|l| {
        let inner = l.strip_prefix('[')?.split(']').next()?.trim_start_matches('[').trim();
        bare(inner).then_some(inner)
    });
    Some(match section {
        Some(s) => format!("{s}.{key}"),
        None => key.to_string(),
    })
}

fn merge(base: &mut toml::Value, overlay: toml::Value, prefix: &str) -> Result<(), ConfigError> {
    let (toml::Value::Table(base_t), toml::Value::Table(over_t)) = (base, overlay) else {
        return Ok(());
    };
    for (k, v) in over_t {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match base_t.get_mut(&k) {
            None => {
                // A slip of the keyboard (`emial`, `[smtp] prot`) is shown the key it was meant for.
                let near = base_t
                    .keys()
                    .map(|b| (b, strsim::damerau_levenshtein(&k, b)))
                    .filter(|(_, d)| *d <= 2 && *d < k.chars().count())
                    .min_by_key(|(_, d)| *d);
                let says = match near {
                    Some((b, _)) if prefix.is_empty() => format!("unknown key (`{b}` is nearest)"),
                    Some((b, _)) => format!("unknown key (`{prefix}.{b}` is nearest)"),
                    None => "unknown key".into(),
                };
                return Err(invalid(&key, says));
            }
            Some(existing @ toml::Value::Table(_)) => {
                if !v.is_table() {
                    return Err(invalid(&key, "must be a table ([section])"));
                }
                merge(existing, v, &key)?;
            }
            Some(existing) => {
                if std::mem::discriminant(existing) != std::mem::discriminant(&v) {
                    return Err(invalid(&key, format!("expected {}, found {}", existing.type_str(), v.type_str())));
                }
                *existing = v;
            }
        }
    }
    Ok(())
}

/// `CPORT_SMTP__HOST` → smtp.host; `CPORT_DATABASE_URL` → database_url;
/// `CPORT_TELEGRAM_TOKEN` → telegram.token (single underscore after a section name).
/// Returns the dotted key it set.
fn apply_env(tree: &mut toml::Value, var: &str, rest: &str, value: &str) -> Result<String, ConfigError> {
    let lower = rest.to_ascii_lowercase();
    // `__` separates every level (`CPORT_EMAIL__DKIM__SELECTOR`); a single `_` only the first.
    let path: Vec<String> = if lower.contains("__") {
        lower.split("__").map(str::to_string).collect()
    } else if tree.get(&lower).is_some_and(|v| !v.is_table()) {
        vec![lower.clone()]
    } else if let Some((section, key)) = lower.split_once('_') {
        vec![section.to_string(), key.to_string()]
    } else {
        vec![lower.clone()]
    };
    let unknown = || ConfigError::Env { var: var.to_string(), message: "does not name a config key".into() };
    let mut node = &mut *tree;
    for part in &path[..path.len() - 1] {
        node = node.get_mut(part.as_str()).filter(|n| n.is_table()).ok_or_else(unknown)?;
    }
    let leaf = node.get_mut(path[path.len() - 1].as_str()).ok_or_else(unknown)?;
    let parsed = match leaf {
        toml::Value::Integer(_) => value.parse::<i64>().map(toml::Value::Integer).map_err(|e| {
            let message = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    format!("`{value}` is too large")
                }
                _ => format!("`{value}` is not a whole number"),
            };
            ConfigError::Env { var: var.to_string(), message }
        })?,
        toml::Value::Boolean(_) => value.parse::<bool>().map(toml::Value::Boolean).map_err(|_| ConfigError::Env {
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
    Ok(path.join("."))
}

/// serde's words for a number out of its type's range ("invalid value: integer `70000`,
/// expected u16") as a person reads them, with the key's own `range` when it has one: "`-3`
/// is below zero; this key takes a whole number between 1 and 64". The type's bounds are not
/// given: a key's real range is narrower. Other words pass unchanged.
fn number_in_words(message: &str, range: Option<String>) -> String {
    let worded = message.strip_prefix("invalid value: integer `").and_then(|rest| {
        let (number, _) = rest.split_once("`, expected ")?;
        let takes = match &range {
            Some(range) => format!("this key takes a whole number {range}"),
            None if number.starts_with('-') => "this key takes a whole number of 0 or more".into(),
            None => "this key takes a smaller whole number".into(),
        };
        Some(if number.starts_with('-') {
            format!("`{number}` is below zero; {takes}")
        } else {
            format!("`{number}` is too large; {takes}")
        })
    });
    worded.unwrap_or_else(|| message.to_string())
}

/// The most a configuration file may hold: far more than any real one.
const MOST_CONFIG_BYTES: u64 = 1024 * 1024;

/// A configuration file's text.
fn read_config_file(path: &Path) -> std::io::Result<String> {
    read_small_file(path, MOST_CONFIG_BYTES, "1 MiB, which no configuration is")
}

/// The text of a file a configuration names (itself, a key). Only a regular file is read, and
/// only so far: `/dev/zero` or a FIFO given by mistake is refused at once rather than read
/// without end; `most_words` says the limit in the refusal.
pub fn read_small_file(path: &Path, most: u64, most_words: &str) -> std::io::Result<String> {
    use std::io::Read;
    let refused = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_string());
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(refused("it is a folder, not a file"));
    }
    if !meta.is_file() {
        return Err(refused("it is not a regular file (a device or a pipe)"));
    }
    let mut text = String::new();
    std::fs::File::open(path)?.take(most + 1).read_to_string(&mut text)?;
    if text.len() as u64 > most {
        return Err(refused(&format!("it is larger than {most_words}")));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::mask_url_password;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    /// `portal.secure_cookies = "auto"` follows `public_url`'s scheme in whatever case it is
    /// written: an `HTTPS://` portal's cookies are Secure too.
    #[test]
    fn cookies_are_secure_for_an_https_portal_in_any_case() {
        let mut c = crate::config::Config::default();
        for (url, secure) in [
            ("https://portal.tot.example", true),
            ("HTTPS://portal.tot.example", true),
            ("http://127.0.0.1:8080", false),
        ] {
            c.public_url = url.into();
            assert_eq!(c.secure_cookies(), secure, "{url}");
        }
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
        let rotated = env(&[("CPORT_PREVIOUS_LINK_SECRET", "the-old-link-secret")]);
        let c = Config::load_from(None, &[ok.clone(), rotated].concat(), Need::Secrets).unwrap();
        assert_eq!(c.previous_link_secret.expose(), "the-old-link-secret");

        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("CPORT_SMTP__PORT", "many")], "CPORT_SMTP__PORT"),
            (
                &[("CPORT_OUTBOX__WORKERS", "-3")],
                "CPORT_OUTBOX__WORKERS: for `outbox.workers`, `-3` is below zero; this key takes a whole number between 1 and 64",
            ),
            (&[("CPORT_OUTBOX__WORKERS", "0")], "CPORT_OUTBOX__WORKERS: "),
            (&[("CPORT_LISTEN", "nonsense")], "CPORT_LISTEN: "),
            (&[("CPORT_DIGEST__LINK_TTL_DAYS", "99999999999999999999")], "is too large"),
            (&[("CPORT_OUTBOX__WORKERS", "2"), ("CPORT_OUTBOX_WORKERS", "4")], "as CPORT_OUTBOX__WORKERS does too"),
            (&[("CPORT_NOPE", "1")], "CPORT_NOPE"),
            (&[("CPORT_DIGEST__SCHEDULE", "every day")], "digest.schedule"),
            (&[("CPORT_DIGEST__TIMEZONE", "Mars/Base")], "digest.timezone"),
            (&[("CPORT_LISTEN", "here")], "listen"),
            (&[("CPORT_API_TOKEN", " padded-token-123 ")], "api_token"),
            (&[("CPORT_INBOUND__TOKEN", "two words")], "for `inbound.token`, holds spaces"),
            (&[("CPORT_DISCORD__TOKEN", "has space")], "for `discord.token`, holds spaces"),
            (
                &[("CPORT_TELEGRAM__WEBHOOK_SECRET", "not/a:secret-for-telegram")],
                "for `telegram.webhook_secret`, may hold only",
            ),
            (&[("CPORT_SMTP__POOL_SIZE", "0")], "0 is not between 1 and 64"),
            (&[("CPORT_MAX_BODY_BYTES", "-1")], "`-1` is below zero; this key takes a whole number between 1 and"),
            (&[("CPORT_SMTP__HOST", "mail.example.com"), ("CPORT_SMTP__TLS", "none")], "smtp.tls"),
            (&[("CPORT_PREVIOUS_LINK_SECRET", "old")], "for `previous_link_secret`, shorter than 16 characters"),
            (
                &[("CPORT_PREVIOUS_LINK_SECRET", "0123456789abcdef")],
                "for `previous_link_secret`, is link_secret itself",
            ),
        ];
        for &(extra, named) in cases {
            let mut e = ok.clone();
            e.extend(env(extra));
            let err = Config::load_from(None, &e, Need::Secrets).unwrap_err().to_string();
            assert!(err.contains(named), "{extra:?}: error `{err}` should name {named}");
        }
    }

    #[test]
    fn mail_goes_under_the_data_folder_unless_a_folder_is_named() {
        let moved = env(&[("CPORT_DATA_DIR", "/var/lib/cport")]);
        let c = Config::load_from(None, &moved, Need::StoreOnly).unwrap();
        assert_eq!(c.mail_dir(), Path::new("/var/lib/cport/mail"));
        let named = env(&[("CPORT_DATA_DIR", "/var/lib/cport"), ("CPORT_EMAIL__DIR", "/srv/outgoing")]);
        let c = Config::load_from(None, &named, Need::StoreOnly).unwrap();
        assert_eq!(c.mail_dir(), Path::new("/srv/outgoing"));
    }

    #[test]
    fn missing_secrets_are_refused_only_when_needed() {
        let secret = env(&[("CPORT_LINK_SECRET", "0123456789abcdef")]);
        let err = Config::load_from(None, &secret, Need::Secrets).unwrap_err().to_string();
        assert!(err.contains("api_token"), "serving needs the API token: {err}");
        Config::load_from(None, &secret, Need::Signing).expect("making links needs only the link secret");
        let err = Config::load_from(None, &[], Need::Signing).unwrap_err().to_string();
        assert!(err.contains("link_secret"), "{err}");
        // Sixteen characters, as the reference says: nine of two bytes each are too few.
        let short = env(&[("CPORT_LINK_SECRET", "ééééééééé")]);
        let err = Config::load_from(None, &short, Need::Signing).unwrap_err().to_string();
        assert!(err.contains("shorter than 16 characters"), "{err}");
        Config::load_from(None, &[], Need::StoreOnly).unwrap();
    }

    #[test]
    fn unknown_and_mistyped_file_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for (text, named) in [
            ("listn = \"x\"", "config key `listn`: unknown key (`listen` is nearest)"),
            ("[smtp]\nprot = 1", "config key `smtp.prot`: unknown key (`smtp.port` is nearest)"),
            ("[emial]\nfrom = \"x\"", "config key `emial`: unknown key (`email` is nearest)"),
            ("[smtp]\nzzzzzz = 1", "config key `smtp.zzzzzz`: unknown key"),
            ("[smtp]\nport = \"x\"", "smtp.port"),
            (
                "[smtp]\nport = 70000",
                "config key `smtp.port`: `70000` is too large; this key takes a whole number between 1 and 65535",
            ),
            ("[email]\ntransport = \"pigeon\"", "email.transport"),
            ("[smtp]\ntls = \"ssl\"", "smtp.tls"),
            ("[alerts]\nvisual_approval = \"loud\"", "alerts.visual_approval"),
            ("[digest]\ncatch_up_hours = 169", "digest.catch_up_hours"),
            ("[portal]\nsecure_cookies = \"sometimes\"", "portal.secure_cookies"),
            ("[telegram]\nmode = \"push\"", "telegram.mode"),
            ("[smtp]\nhelo_name = \"localhost\"", "smtp.helo_name"),
            ("[smtp]\nhelo_name = \"mail tot.example\"", "smtp.helo_name"),
            ("[discord]\napi_url = \"https://discord.com/api\"", "discord.api_url"),
            ("[discord]\napi_url = \"https://Discord.com/api/v10/\"", "discord.api_url"),
            ("[email]\nfrom = \"TOT notifications\"", "email.from"),
            ("[email]\nfrom = \"TOT <notifications@tot.example\"", "email.from"),
            ("[email]\nreply_domain = \"reply tot.example\"", "email.reply_domain"),
            ("[email]\nreply_domain = \"cport@reply.tot.example\"", "email.reply_domain"),
            ("[inbound]\nartwork_types = []", "inbound.artwork_types"),
            ("[inbound]\nartwork_types = [\"pdf\", \".png\"]", "inbound.artwork_types"),
            ("[imap]\nhost = \"127.0.0.1\"\nusername = \"u\"\nmailbox = \"\"", "imap.mailbox"),
            ("[imap]\nmailbox = \"INBOX\\r\\nA1 LOGOUT\"", "imap.mailbox"),
            (
                "[imap]\nhost = \"127.0.0.1\"\nusername = \"u\"\nmailbox = \"INBOX\"\nprocessed_mailbox = \"inbox\"",
                "imap.processed_mailbox",
            ),
            ("[branding]\nname = \"TOT\\u001b[2J\"", "branding.name"),
            ("[discord]\nstaff = [\"1\", \"2\\n\"]", "discord.staff[1]"),
            // Values every link or mail is made from, refused at start rather than by each.
            ("public_url = \"http://127.0.0.1:8080/?x=1\"", "public_url"),
            ("public_url = \"http://u:pw@cport.tot.example\"", "public_url"),
            ("public_url = \"http://127.0.0.1:99999\"", "public_url"),
            ("public_url = \"https://-x-\"", "public_url"),
            ("[email]\nreply_domain = \"a..b\"", "email.reply_domain"),
            ("[email]\nreply_domain = \"x\"", "email.reply_domain"),
            (&format!("[email]\nreply_domain = \"{}.example\"", "a".repeat(64)), "email.reply_domain"),
            ("[email.dkim]\ndomain = \"\\u0001\"", "email.dkim.domain"),
            ("[imap]\nhost = \"\\u0001\"", "imap.host"),
            ("[smtp]\nhost = \"mail.example.com\"\ntls = \"none\"", "smtp.tls"),
            ("[imap]\nhost = \"imap.example.com\"\nusername = \"u\"\ntls = \"none\"", "imap.tls"),
            ("[inbound]\ntrusted_authserv_ids = [\"\"]", "inbound.trusted_authserv_ids"),
            ("[inbound]\ntrusted_authserv_ids = [\"a b;c\"]", "inbound.trusted_authserv_ids"),
            ("max_body_bytes = 9223372036854775807", "max_body_bytes"),
            ("max_body_bytes = 99999999999999999999", "line 1, key `max_body_bytes`"),
            ("[portal]\nx = 1\n[outbox]\n# many\nworkers = 99999999999999999999", "line 5, key `outbox.workers`"),
            ("[[x]]\n[email.dkim]\nselector = \"open", "key `email.dkim.selector`"),
            ("[outbox]\nworkers = 2\n[outbox]\nworkers = 3", "line 3"),
            ("[telegram]\ntoken = \"123456:ABC def\"", "telegram.token"),
            ("[telegram]\ntoken = \"bot/123456:ABC\"", "telegram.token"),
            // A store that keeps nothing, a name or terms of nothing, hosts that are no hosts.
            ("database_url = \"sqlite:\"", "database_url"),
            ("database_url = \"sqlite://\"", "database_url"),
            ("database_url = \"sqlite::memory:\"", "database_url"),
            ("database_url = \"sqlite:x.db?mode=memory\"", "database_url"),
            ("[branding]\nname = \"  \"", "branding.name"),
            ("[branding]\napproval_terms = \"\"", "branding.approval_terms"),
            ("[smtp]\nhost = \"smtp example\"", "smtp.host"),
            ("[imap]\nhost = \"imap ex/ample\"\nusername = \"u\"", "imap.host"),
            // An IPv6 address in brackets would be looked up as a name: written bare.
            ("[imap]\nhost = \"[::1]\"\nusername = \"u\"", "without brackets"),
            ("data_dir = \"\"", "data_dir"),
            ("data_dir = \"Cargo.toml\"", "data_dir"),
            ("[branding]\nlogo_url = \"/media/../../etc/passwd\"", "branding.logo_url"),
            // Text that reads other than it is written, as records refuse it.
            ("[branding]\nname = \"T\\u202eOT\"", "branding.name"),
            ("public_url = \"http://x.example/\\u202e\"", "public_url"),
        ] {
            let p = dir.path().join("c.toml");
            std::fs::write(&p, text).unwrap();
            let err = Config::load_from(Some(&p), &[], Need::StoreOnly).unwrap_err().to_string();
            assert!(err.contains(named), "{text}: `{err}` should name {named}");
            // A password refused for being there is not printed in the refusal.
            assert!(!err.contains(":pw@"), "{text}: `{err}` repeats the password");
        }
    }

    #[test]
    fn database_passwords_are_masked() {
        assert_eq!(mask_url_password("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(mask_url_password("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(
            mask_url_password("postgres://127.0.0.1/db?user=bob&password=SeCrEt&sslpassword=k"),
            "postgres://127.0.0.1/db?user=bob&password=***&sslpassword=***"
        );
        assert!(!mask_url_password("postgres://bob:SeCrEt@[::1]:5432/db?password=SeCrEt").contains("SeCrEt"));
    }
}
