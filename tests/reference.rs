//! The reference pages of the documentation are generated from the code: the configuration
//! from the config types, the command line from clap, the HTTP API from the OpenAPI document. These tests fail when a committed page
//! differs from what the code generates now (run `scripts/reference` to write them again), and
//! check what the pages promise: every key and argument documented, every environment
//! variable named on the page accepted by the loader.

use std::path::Path;

use cport::config::{Config, ConfigError, Need};

/// Compares a committed page with the generated text; with `CPORT_WRITE_REFERENCE=1` writes it
/// instead (what `scripts/reference` does).
fn matches_committed(path: &str, generated: &str) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("CPORT_WRITE_REFERENCE").is_some() {
        std::fs::write(&file, generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(generated.lines().count()));
        panic!(
            "{path} is out of date with the code (first difference at line {}): run scripts/reference\n\
             committed: {:?}\ngenerated: {:?}",
            line + 1,
            committed.lines().nth(line),
            generated.lines().nth(line),
        );
    }
}

#[test]
fn the_configuration_reference_is_what_the_config_types_generate() {
    matches_committed("docs/src/reference/configuration.md", &cport::config::reference::markdown());
}

#[test]
fn the_command_line_reference_is_what_clap_generates() {
    matches_committed("docs/src/reference/cli.md", &cport::cli::reference::markdown());
}

#[test]
fn the_manual_page_is_what_clap_generates() {
    let page = cport::cli::reference::man_page();
    assert!(page.starts_with(".ie") || page.contains(".TH cport 1"), "{page}");
    matches_committed("deploy/cport.1", &page);
}

#[test]
fn the_api_reference_is_what_the_openapi_document_says() {
    let doc = cport::sync::openapi::document("http://127.0.0.1:8080");
    let mut json = serde_json::to_string_pretty(&doc).unwrap();
    json.push('\n');
    matches_committed("docs/src/reference/openapi.json", &json);
    matches_committed("docs/src/reference/api.md", &cport::sync::openapi::markdown(&doc));
}

#[test]
fn every_key_has_a_type_a_default_and_a_description() {
    let sections = cport::config::reference::sections();
    let keys: Vec<_> = sections.iter().flat_map(|s| &s.keys).collect();
    assert!(keys.len() > 80, "{} keys", keys.len());
    for k in &keys {
        assert!(!k.description.trim().is_empty(), "config key `{}` has no doc comment", k.path);
        assert!(!k.kind.is_empty() && k.kind != "value", "config key `{}`: type {:?}", k.path, k.kind);
    }
    for s in sections.iter().filter(|s| !s.path.is_empty()) {
        assert!(!s.description.is_empty(), "config table [{}] has no doc comment", s.path);
    }
    let find = |p: &str| keys.iter().find(|k| k.path == p).unwrap_or_else(|| panic!("no key {p}"));
    // Spot checks against the types, one of each kind.
    assert_eq!(find("smtp.tls").kind, "`none` \\| `starttls` \\| `tls`");
    assert_eq!(find("smtp.port").default, "587");
    assert_eq!(find("api_token").kind, "secret");
    assert_eq!(find("email.dkim.algorithm").kind, "`rsa` \\| `ed25519`");
    assert_eq!(find("email.dkim.selector").env, "CPORT_EMAIL__DKIM__SELECTOR");
    assert_eq!(find("alerts.visual_approval").default, "\"instant\"");
    assert_eq!(find("inbound.artwork_types").kind, "list of strings");
}

/// Every variable the page names reaches its key: set to a value of the key's type, it loads,
/// and the loaded configuration holds that value where the page says.
#[test]
fn every_environment_variable_on_the_page_sets_its_key() {
    for section in cport::config::reference::sections() {
        for k in section.keys {
            let default: toml::Value =
                toml::from_str::<toml::Table>(&format!("v = {}", k.default)).unwrap()["v"].clone();
            let value = match &default {
                toml::Value::Integer(i) => (i + 1).to_string(),
                toml::Value::Boolean(b) => (!b).to_string(),
                toml::Value::Array(_) => "a,b".to_string(),
                _ => "set-from-the-environment".to_string(),
            };
            let env = vec![(k.env.clone(), value.clone())];
            match Config::load_from(None, &env, Need::StoreOnly) {
                Ok(config) => {
                    let tree = toml::Value::try_from(&config).unwrap();
                    let got = k.path.split('.').try_fold(&tree, |n, part| n.get(part));
                    let got = match got {
                        Some(toml::Value::String(s)) => s.clone(),
                        Some(toml::Value::Array(a)) => {
                            a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(",")
                        }
                        Some(other) => other.to_string(),
                        None => panic!("{}: no key {} after loading", k.env, k.path),
                    };
                    assert_eq!(got, value, "{} did not set {}", k.env, k.path);
                }
                // A value the checks refuse (a mode that is not one of the choices, a
                // too-short secret) still proves the variable named a key.
                Err(ConfigError::Invalid { key, .. }) => {
                    let table = k.path.rsplit_once('.').map(|(t, _)| t).unwrap_or("");
                    assert!(key.starts_with(table), "{} was refused for another table's key: {key}", k.env)
                }
                // A value of the wrong type is named by the variable that gave it.
                Err(ConfigError::Env { var, message }) if var == k.env && !message.contains("does not name") => {}
                Err(e) => panic!("{} (from the configuration reference): {e}", k.env),
            }
        }
    }
}

#[test]
fn every_command_and_argument_is_described() {
    let entries = cport::cli::reference::entries();
    assert!(entries.iter().any(|e| e.name == "cport digest run"), "{entries:?}");
    for e in &entries {
        assert!(!e.about.trim().is_empty(), "`{}` has no description", e.name);
        for a in &e.arguments {
            assert!(!a.help.trim().is_empty(), "`{} {}` has no description", e.name, a.spelling);
        }
    }
}

#[test]
fn every_change_kind_is_on_the_change_feed_page() {
    let page = std::fs::read_to_string("docs/src/reference/change-feed.md").unwrap();
    for kind in cport::model::ChangeKind::NAMES {
        assert!(page.contains(&format!("`{kind}`")), "docs/src/reference/change-feed.md does not name `{kind}`");
    }
}
