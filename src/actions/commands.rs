//! The command grammar shared by email replies and chat: `APPROVE V-1001, V-1002`,
//! `REJECT V-1001 colours too dark`, `/track D-2001`, … Case-insensitive; in chat the same
//! words are slash commands.

use std::fmt;

/// A parsed command. Ids are upper-cased (TOT's ids are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Items,
    Jobs,
    Job(String),
    Track(String),
    Deliveries,
    Stock(Option<String>),
    Blanks(Option<String>),
    Po(String),
    Pos,
    Invoices,
    Balance,
    Prices,
    Art,
    Visuals,
    /// Visuals to approve; empty = the item the message is about.
    Approve(Vec<String>),
    /// A visual (or the item the message is about) and the reason.
    Reject {
        id: Option<String>,
        reason: String,
    },
    NoDelivery(Option<String>),
    Link,
    Reset,
}

/// Why a line that looked like a command could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    pub command: String,
    pub message: String,
    pub usage: &'static str,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}. Usage: {}", self.command, self.message, self.usage)
    }
}

/// Every command with its usage and what it does, in the order HELP lists them.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("HELP", "HELP", "this list"),
    ("ITEMS", "ITEMS", "what needs you now"),
    ("JOBS", "JOBS", "open job orders"),
    ("JOB", "JOB <job id>", "one job: status, dates, processes, garments, deliveries"),
    ("TRACK", "TRACK <delivery id>", "where a delivery is"),
    ("DELIVERIES", "DELIVERIES", "recent deliveries"),
    ("STOCK", "STOCK [text]", "your decorated stock (optionally matching text)"),
    ("BLANKS", "BLANKS [text]", "TOT's blank garment stock"),
    ("PO", "PO <purchase order id>", "one purchase order with lines and receipts"),
    ("POS", "POS", "purchase orders"),
    ("INVOICES", "INVOICES", "invoices and what is outstanding"),
    ("BALANCE", "BALANCE", "your account balance and aging"),
    ("PRICES", "PRICES", "your price card"),
    ("ART", "ART", "artwork TOT is waiting for"),
    ("VISUALS", "VISUALS", "visuals awaiting approval"),
    ("APPROVE", "APPROVE <visual id>[, <visual id>…]", "approve visuals and their charges"),
    ("REJECT", "REJECT <visual id> <reason>", "reject a visual, saying why"),
    ("NODELIVERY", "NODELIVERY <job id>", "the job needs no delivery"),
    ("LINK", "LINK", "a signed link to the portal"),
    ("RESET", "RESET", "a password-reset link by email"),
];

fn usage(name: &str) -> &'static str {
    COMMANDS.iter().find(|(n, _, _)| *n == name).map(|(_, u, _)| *u).unwrap_or("HELP")
}

/// An id of the kind `command` takes, as its usage names it, for an error to show.
fn id_example(command: &str) -> &'static str {
    let usage = usage(command);
    [("<job id>", "J-3001"), ("<delivery id>", "D-2001"), ("<purchase order id>", "PO-5001")]
        .iter()
        .find(|(kind, _)| usage.contains(kind))
        .map_or("V-1001", |(_, example)| example)
}

fn id(command: &str, word: &str) -> Result<String, CommandError> {
    let w = word.trim_end_matches([',', '.', ';', ':']);
    if crate::model::looks_like_id(w) {
        Ok(w.to_ascii_uppercase())
    } else {
        Err(CommandError {
            command: command.into(),
            message: format!("{} is not an id like {}", crate::model::quoted(word), id_example(command)),
            usage: usage(command),
        })
    }
}

/// The first word of a line without its slash, `@bot` suffix or trailing punctuation, and
/// the rest of the line: `/track@SomeBot D-1` → (`track`, `D-1`).
pub fn split_head(line: &str) -> (&str, &str) {
    let line = line.trim();
    let stripped = line.strip_prefix('/').unwrap_or(line);
    let (head, rest) = match stripped.split_once(char::is_whitespace) {
        Some((h, r)) => (h, r.trim()),
        None => (stripped, ""),
    };
    // Telegram sends `/track@SomeBot` in groups.
    let head = head.split('@').next().unwrap_or(head).trim_end_matches([':', '.', ',', '!']);
    (head, rest)
}

/// Reads one line. `Ok(None)`: the line is not a command (a reader stops there);
/// `Err`: it starts with a command word but the rest is wrong.
pub fn parse_line(line: &str) -> Result<Option<Command>, CommandError> {
    let line = line.trim();
    let (head, rest) = split_head(line);
    let word = head.to_ascii_uppercase();
    let name = match word.as_str() {
        "NO-DELIVERY" => "NODELIVERY",
        "START" if line.starts_with('/') => "HELP",
        w => w,
    };
    if !COMMANDS.iter().any(|(n, _, _)| *n == name) {
        return Ok(None);
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    let none_expected = |c: Command| -> Result<Option<Command>, CommandError> {
        if words.is_empty() {
            Ok(Some(c))
        } else {
            Err(CommandError {
                command: name.into(),
                message: format!("takes nothing after it, found {}", crate::model::quoted(rest)),
                usage: usage(name),
            })
        }
    };
    let one_id = |mk: fn(String) -> Command| -> Result<Option<Command>, CommandError> {
        match words.as_slice() {
            [w] => Ok(Some(mk(id(name, w)?))),
            [] => Err(CommandError {
                command: name.into(),
                message: "which one? an id is missing".into(),
                usage: usage(name),
            }),
            _ => Err(CommandError {
                command: name.into(),
                message: format!("expects one id, found {}", crate::model::quoted(rest)),
                usage: usage(name),
            }),
        }
    };
    let text = (!rest.is_empty()).then(|| rest.to_string());
    match name {
        "HELP" => Ok(Some(Command::Help)),
        "ITEMS" => none_expected(Command::Items),
        "JOBS" => none_expected(Command::Jobs),
        "DELIVERIES" => none_expected(Command::Deliveries),
        "POS" => none_expected(Command::Pos),
        "INVOICES" => none_expected(Command::Invoices),
        "BALANCE" => none_expected(Command::Balance),
        "PRICES" => none_expected(Command::Prices),
        "ART" => none_expected(Command::Art),
        "VISUALS" => none_expected(Command::Visuals),
        "LINK" => none_expected(Command::Link),
        "RESET" => none_expected(Command::Reset),
        "JOB" => one_id(Command::Job),
        "TRACK" => one_id(Command::Track),
        "PO" => one_id(Command::Po),
        "STOCK" => Ok(Some(Command::Stock(text))),
        "BLANKS" => Ok(Some(Command::Blanks(text))),
        "NODELIVERY" => match words.as_slice() {
            [] => Ok(Some(Command::NoDelivery(None))),
            _ => one_id(|i| Command::NoDelivery(Some(i))),
        },
        "APPROVE" => {
            // Each id is kept once, as first named, and every word is read, so a word that is
            // not an id is named however late it comes; reading stops once one more visual
            // than a batch takes is named (the action refuses that batch), so a long line
            // holds at most that many. Any white space separates, a no-break space from an
            // HTML mail included.
            let mut ids: Vec<String> = Vec::new();
            let words = rest
                .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';'))
                .filter(|w| !w.is_empty() && !w.eq_ignore_ascii_case("and"));
            for w in words {
                let i = id(name, w)?;
                if !ids.contains(&i) {
                    ids.push(i);
                }
                if ids.len() > super::visuals::MOST_AT_ONCE {
                    break;
                }
            }
            Ok(Some(Command::Approve(ids)))
        }
        "REJECT" => {
            let (id_part, reason) = match words.first() {
                Some(w) if crate::model::looks_like_id(w) => (Some(id(name, w)?), rest[w.len()..].trim()),
                _ => (None, rest),
            };
            // The mailto: button pre-fills "reason:" for the client to complete.
            let reason = reason.trim_start_matches([':', '-']).trim();
            const LABEL: &str = "reason:";
            let reason = match reason.get(..LABEL.len()) {
                Some(head) if head.eq_ignore_ascii_case(LABEL) => reason[LABEL.len()..].trim(),
                _ => reason,
            };
            if reason.is_empty() {
                let message = match id_part {
                    Some(_) => "say why: a reason is required",
                    // In reply to an alert about one visual, the reason alone will do.
                    None => "say which visual and why, for example REJECT V-1001 the navy is too light",
                };
                return Err(CommandError { command: name.into(), message: message.into(), usage: usage(name) });
            }
            Ok(Some(Command::Reject { id: id_part, reason: reason.to_string() }))
        }
        _ => Ok(None),
    }
}

/// The help text, one command a line.
pub fn help_text(role: crate::model::Role) -> String {
    COMMANDS
        .iter()
        .filter(|(name, _, _)| role.may_send(name))
        .map(|(_, u, what)| format!("{u:<38} {what}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_whatever_the_case_and_punctuation() {
        let cases: Vec<(&str, Option<Command>)> = vec![
            ("APPROVE V-1001", Some(Command::Approve(vec!["V-1001".into()]))),
            (
                "approve v-1001, V-1002 and V-1003",
                Some(Command::Approve(vec!["V-1001".into(), "V-1002".into(), "V-1003".into()])),
            ),
            ("Approve", Some(Command::Approve(vec![]))),
            // A no-break space (an HTML mail's &nbsp;) separates like any other.
            ("APPROVE V-1001\u{a0}V-1002", Some(Command::Approve(vec!["V-1001".into(), "V-1002".into()]))),
            // Named twice, kept once.
            ("APPROVE V-1001, v-1001", Some(Command::Approve(vec!["V-1001".into()]))),
            ("/track D-2001", Some(Command::Track("D-2001".into()))),
            ("/track@TotBot d-2001", Some(Command::Track("D-2001".into()))),
            (
                "REJECT V-1001 gold is too dark",
                Some(Command::Reject { id: Some("V-1001".into()), reason: "gold is too dark".into() }),
            ),
            (
                "reject V-1001 reason: wrong size",
                Some(Command::Reject { id: Some("V-1001".into()), reason: "wrong size".into() }),
            ),
            (
                "REJECT V-1001 REASON: too dark",
                Some(Command::Reject { id: Some("V-1001".into()), reason: "too dark".into() }),
            ),
            (
                "REJECT please make it bigger",
                Some(Command::Reject { id: None, reason: "please make it bigger".into() }),
            ),
            ("NODELIVERY", Some(Command::NoDelivery(None))),
            ("nodelivery j-3001", Some(Command::NoDelivery(Some("J-3001".into())))),
            ("STOCK navy tee", Some(Command::Stock(Some("navy tee".into())))),
            ("stock", Some(Command::Stock(None))),
            ("Items", Some(Command::Items)),
            ("/start", Some(Command::Help)),
            ("Thanks, looks great!", None),
            ("Approved by me yesterday", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(parse_line(line), Ok(want), "{line}");
        }
    }

    #[test]
    fn malformed_commands_say_what_is_wrong_and_how_to_write_them() {
        let cases = [
            ("TRACK", "TRACK", "missing"),
            ("TRACK D-1 D-2", "TRACK", "one id"),
            ("JOB tomorrow", "JOB", "`tomorrow` is not an id like J-3001"),
            ("TRACK D2001", "TRACK", "not an id like D-2001"),
            ("PO 5001", "PO", "not an id like PO-5001"),
            // A zero-width space pasted inside an id is named, not shown as nothing.
            ("APPROVE V-10\u{200b}01", "APPROVE", "`V-10<U+200B>01` is not an id like V-1001"),
            ("APPROVE V-1001 please", "APPROVE", "`please`"),
            ("REJECT V-1001", "REJECT", "reason is required"),
            ("REJECT V-1001 reason: ", "REJECT", "reason is required"),
            ("REJECT", "REJECT", "say which visual and why"),
            ("BALANCE now", "BALANCE", "takes nothing"),
        ];
        // A word that is not an id is named however late in the line it comes.
        let long = format!("APPROVE {} please", "V-1 ".repeat(150));
        let cases = cases.into_iter().chain([(long.as_str(), "APPROVE", "`please`")]);
        for (line, command, words) in cases {
            let e = parse_line(line).unwrap_err();
            assert_eq!(e.command, command, "{line}");
            assert!(e.to_string().contains(words), "{line}: {e}");
            assert!(e.to_string().contains("Usage:"), "{line}: {e}");
        }
    }
}
