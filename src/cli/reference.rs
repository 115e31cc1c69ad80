//! The command-line reference, generated from clap's description of the commands:
//! `docs/src/reference/cli.md` is this page; `tests/reference.rs` fails when they differ, and
//! `scripts/reference` writes it again.
//!
//! Written by walking `clap::Command` rather than with a page generator crate: the page is a
//! table per command in the documentation site's own layout, with defaults and choices, and
//! the walk is short.

use crate::markdown::{cell, sentence};
use clap::{Arg, Command};

/// One argument of a command, as the page shows it.
#[derive(Debug, Clone)]
pub struct Argument {
    /// `--contact <ID>`, `<FILE>`, `--dry-run`.
    pub spelling: String,
    pub default: Option<String>,
    pub choices: Vec<String>,
    pub required: bool,
    pub help: String,
}

/// One command: `cport digest run` and its arguments.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub usage: String,
    pub about: String,
    pub arguments: Vec<Argument>,
}

fn argument(a: &Arg) -> Argument {
    let value = a
        .get_value_names()
        .map(|v| v.iter().map(|n| format!("<{n}>")).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| format!("<{}>", a.get_id().as_str().to_ascii_uppercase()));
    let takes_value = a.get_action().takes_values();
    let spelling = match (a.get_long(), a.get_short()) {
        (Some(long), Some(short)) if takes_value => format!("-{short}, --{long} {value}"),
        (Some(long), Some(short)) => format!("-{short}, --{long}"),
        (Some(long), None) if takes_value => format!("--{long} {value}"),
        (Some(long), None) => format!("--{long}"),
        (None, Some(short)) if takes_value => format!("-{short} {value}"),
        (None, Some(short)) => format!("-{short}"),
        (None, None) => value,
    };
    let default: Vec<String> = a.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
    Argument {
        spelling,
        default: (!default.is_empty() && takes_value).then(|| default.join(",")),
        choices: a.get_possible_values().iter().filter(|_| takes_value).map(|p| p.get_name().to_string()).collect(),
        required: a.is_required_set(),
        help: a.get_help().map(|h| h.to_string()).unwrap_or_default(),
    }
}

fn shown(a: &Arg) -> bool {
    !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version")
}

/// Every command that does something, depth first, in the order clap lists them; the
/// arguments every command takes (`--config`, `--log-format`) are in the first entry, `cport`.
pub fn entries() -> Vec<Entry> {
    let mut root = super::command().bin_name("cport");
    root.build();
    let mut out = vec![Entry {
        name: "cport".into(),
        usage: String::new(),
        about: root.get_about().map(|s| s.to_string()).unwrap_or_default(),
        arguments: root.get_arguments().filter(|a| shown(a)).map(argument).collect(),
    }];
    collect(&root, &mut out);
    out
}

fn collect(parent: &Command, out: &mut Vec<Entry>) {
    for sub in parent.get_subcommands().filter(|s| s.get_name() != "help" && !s.is_hide_set()) {
        let name = sub.get_bin_name().unwrap_or(sub.get_name()).to_string();
        if sub.has_subcommands() {
            collect(sub, out);
            continue;
        }
        let usage = sub.clone().render_usage().to_string();
        out.push(Entry {
            usage: usage.trim_start_matches("Usage: ").trim().to_string(),
            about: sub.get_long_about().or(sub.get_about()).map(|s| s.to_string()).unwrap_or_default(),
            arguments: sub.get_arguments().filter(|a| shown(a) && !a.is_global_set()).map(argument).collect(),
            name,
        });
    }
}

const INTRO: &str = "\
# Command line

<!-- Generated from the clap definitions in src/cli/args.rs by src/cli/reference.rs: edit the
     doc comments there, then run scripts/reference. tests/reference.rs fails when this page is
     out of date. -->

`cport --help` and `cport COMMAND --help` print the same. Exit status: 0 on success, 1 on an
error (the message names the argument, key or record at fault), 2 on a bad command line;
`inbound-email` uses the mail system's codes instead (see its entry).
";

/// The manual page, `cport(1)`, from the same description (clap_mangen writes the roff):
/// `deploy/cport.1`, which the Debian package installs.
pub fn man_page() -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = clap_mangen::Man::new(super::command()).render(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The page: the arguments every command takes, then one section per command.
pub fn markdown() -> String {
    let mut out = String::from(INTRO);
    for e in entries() {
        if e.name == "cport" {
            out.push_str(&format!("\n{}\n\n## Every command\n\n", sentence(&e.about)));
        } else {
            out.push_str(&format!("\n## `{}`\n\n```text\n{}\n```\n\n{}\n", e.name, e.usage, sentence(&e.about)));
            if e.arguments.is_empty() {
                continue;
            }
            out.push('\n');
        }
        out.push_str("| argument | default | what it does |\n|---|---|---|\n");
        for a in &e.arguments {
            let mut help = sentence(&cell(&a.help));
            if !a.choices.is_empty() {
                let choices: Vec<String> = a.choices.iter().map(|c| format!("`{c}`")).collect();
                help.push_str(&format!(" One of {}.", choices.join(", ")));
            }
            if a.required {
                help.push_str(" Required.");
            }
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                a.spelling,
                a.default.as_deref().map(|d| format!("`{d}`")).unwrap_or_default(),
                help.trim()
            ));
        }
    }
    out
}
