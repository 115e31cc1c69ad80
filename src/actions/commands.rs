//! The command grammar shared by email replies and chat: `APPROVE V-1001, V-1002`,
//! `REJECT V-1001 colours too dark`, `/track D-2001`, … Case-insensitive; in chat the same
//! words are slash commands.

use std::fmt;

use crate::model::CommandWord;
use crate::model::CommandWord as W;

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

impl Command {
    /// The command's first word, as `HELP` lists it.
    pub fn word(&self) -> CommandWord {
        match self {
            Command::Help => W::Help,
            Command::Items => W::Items,
            Command::Jobs => W::Jobs,
            Command::Job(_) => W::Job,
            Command::Track(_) => W::Track,
            Command::Deliveries => W::Deliveries,
            Command::Stock(_) => W::Stock,
            Command::Blanks(_) => W::Blanks,
            Command::Po(_) => W::Po,
            Command::Pos => W::Pos,
            Command::Invoices => W::Invoices,
            Command::Balance => W::Balance,
            Command::Prices => W::Prices,
            Command::Art => W::Art,
            Command::Visuals => W::Visuals,
            Command::Approve(_) => W::Approve,
            Command::Reject { .. } => W::Reject,
            Command::NoDelivery(_) => W::NoDelivery,
            Command::Link => W::Link,
            Command::Reset => W::Reset,
        }
    }
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
pub const COMMANDS: &[(CommandWord, &str, &str)] = &[
    (W::Help, "HELP", "this list"),
    (W::Items, "ITEMS", "what needs you now"),
    (W::Jobs, "JOBS", "open job orders"),
    (W::Job, "JOB <job id>", "one job: status, dates, processes, garments, deliveries"),
    (W::Track, "TRACK <delivery id>", "where a delivery is"),
    (W::Deliveries, "DELIVERIES", "recent deliveries"),
    (W::Stock, "STOCK [text]", "your decorated stock (optionally matching text)"),
    (W::Blanks, "BLANKS [text]", "TOT's blank garment stock"),
    (W::Po, "PO <purchase order id>", "one purchase order with lines and receipts"),
    (W::Pos, "POS", "purchase orders"),
    (W::Invoices, "INVOICES", "invoices and what is outstanding"),
    (W::Balance, "BALANCE", "your account balance and aging"),
    (W::Prices, "PRICES", "your price card"),
    (W::Art, "ART", "artwork TOT is waiting for"),
    (W::Visuals, "VISUALS", "visuals awaiting approval"),
    (W::Approve, "APPROVE <visual id>[, <visual id>…]", "approve visuals and their charges"),
    (W::Reject, "REJECT <visual id> <reason>", "reject a visual, saying why"),
    (W::NoDelivery, "NODELIVERY <job id>", "the job needs no delivery"),
    (W::Link, "LINK", "a signed link to the portal"),
    (W::Reset, "RESET", "a password-reset link by email"),
];

pub(crate) fn usage(word: CommandWord) -> &'static str {
    COMMANDS.iter().find(|(w, _, _)| *w == word).map_or("HELP", |(_, u, _)| *u)
}

/// An id of the kind `command` takes, as its usage names it, for an error to show.
fn id_example(command: CommandWord) -> &'static str {
    let usage = usage(command);
    [("<job id>", "J-3001"), ("<delivery id>", "D-2001"), ("<purchase order id>", "PO-5001")]
        .iter()
        .find(|(kind, _)| usage.contains(kind))
        .map_or("V-1001", |(_, example)| example)
}

fn id(command: CommandWord, word: &str) -> Result<String, CommandError> {
    let w = word.trim_end_matches([',', '.', ';', ':']);
    if crate::model::looks_like_id(w) {
        Ok(w.to_ascii_uppercase())
    } else {
        Err(CommandError {
            command: command.to_string(),
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

/// The command a first word that is none was meant to be: one letter off (or two letters
/// swapped), and written as only a command is. Either in capitals and four letters or more
/// (`APROVE`, `TRAK`; not a sign-off such as `BOB`), or before an id when the command takes
/// one (`Aprove V-2008`, `Trak D-1`). Prose under a reply's commands ("Hello Ann,",
/// "Visual V-2008 looks great", "Invoice INV-42 is paid") is not taken for one: a reader
/// stops there, as before. A reader names a misspelt command rather than stopping silently.
fn misspelt(head: &str, rest: &str) -> Option<CommandWord> {
    // One letter off is one letter longer at the most: a longer word is none, and is not
    // measured (a reply of one word of megabytes would take seconds).
    const LONGEST: usize = 16;
    if head.len() > LONGEST || !head.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let capitals = head.len() >= 4 && head.chars().all(|c| c.is_ascii_uppercase());
    let before_id = rest
        .split_whitespace()
        .next()
        .is_some_and(|w| crate::model::looks_like_id(w) && w.chars().any(|c| c.is_ascii_digit()));
    let word = head.to_ascii_uppercase();
    COMMANDS
        .iter()
        .filter(|(w, u, _)| (capitals || (before_id && u.contains('<'))) && w.as_str().len() >= 2)
        .map(|(w, _, _)| (*w, strsim::damerau_levenshtein(&word, w.as_str())))
        .filter(|(_, d)| *d == 1)
        .min_by_key(|(w, _)| w.as_str().len().abs_diff(word.len()))
        .map(|(w, _)| w)
}

/// Reads one line. `Ok(None)`: the line is not a command (a reader stops there);
/// `Err`: it starts with a command word but the rest is wrong.
pub fn parse_line(line: &str) -> Result<Option<Command>, CommandError> {
    let line = line.trim();
    let (head, rest) = split_head(line);
    let word = head.to_ascii_uppercase();
    let name = match word.as_str() {
        "NO-DELIVERY" => W::NoDelivery,
        "START" if line.starts_with('/') => W::Help,
        w => match CommandWord::parse(w) {
            Some(w) => w,
            None => {
                return match misspelt(head, rest) {
                    Some(near) => Err(CommandError {
                        command: crate::model::visible(head, 30),
                        message: format!("is not a command ({near} is nearest)"),
                        usage: usage(near),
                    }),
                    None => Ok(None),
                };
            }
        },
    };
    let words: Vec<&str> = rest.split_whitespace().collect();
    let none_expected = |c: Command| -> Result<Option<Command>, CommandError> {
        if words.is_empty() {
            Ok(Some(c))
        } else {
            Err(CommandError {
                command: name.to_string(),
                message: format!("takes nothing after it, found {}", crate::model::quoted(rest)),
                usage: usage(name),
            })
        }
    };
    let one_id = |mk: fn(String) -> Command| -> Result<Option<Command>, CommandError> {
        match words.as_slice() {
            [w] => Ok(Some(mk(id(name, w)?))),
            [] => Err(CommandError {
                command: name.to_string(),
                message: "which one? an id is missing".into(),
                usage: usage(name),
            }),
            _ => Err(CommandError {
                command: name.to_string(),
                message: format!("expects one id, found {}", crate::model::quoted(rest)),
                usage: usage(name),
            }),
        }
    };
    // Text to search for, without quotes put round it (`STOCK "apron"`): no SKU or
    // description holds them, and a search for them finds nothing.
    let unquoted = [('"', '"'), ('\'', '\''), ('\u{201c}', '\u{201d}'), ('\u{2018}', '\u{2019}')]
        .iter()
        .find_map(|(open, close)| rest.strip_prefix(*open).and_then(|r| r.strip_suffix(*close)))
        .unwrap_or(rest)
        .trim();
    let text = (!unquoted.is_empty()).then(|| unquoted.to_string());
    if matches!(name, W::Stock | W::Blanks) {
        // Held to what the portal's search box takes (see `actions::optional_text`).
        let refused = if unquoted.chars().count() > crate::model::SEARCH_MAX {
            Some(format!("the text to search for is longer than {} characters", crate::model::SEARCH_MAX))
        } else {
            crate::model::check_chars("text", unquoted, crate::model::Lines::One)
                .err()
                .map(|e| format!("the text to search for {}", e.reason))
        };
        if let Some(message) = refused {
            return Err(CommandError { command: name.to_string(), message, usage: usage(name) });
        }
    }
    match name {
        W::Help => Ok(Some(Command::Help)),
        W::Items => none_expected(Command::Items),
        W::Jobs => none_expected(Command::Jobs),
        W::Deliveries => none_expected(Command::Deliveries),
        W::Pos => none_expected(Command::Pos),
        W::Invoices => none_expected(Command::Invoices),
        W::Balance => none_expected(Command::Balance),
        W::Prices => none_expected(Command::Prices),
        W::Art => none_expected(Command::Art),
        W::Visuals => none_expected(Command::Visuals),
        W::Link => none_expected(Command::Link),
        W::Reset => none_expected(Command::Reset),
        W::Job => one_id(Command::Job),
        W::Track => one_id(Command::Track),
        W::Po => one_id(Command::Po),
        W::Stock => Ok(Some(Command::Stock(text))),
        W::Blanks => Ok(Some(Command::Blanks(text))),
        W::NoDelivery => match words.as_slice() {
            [] => Ok(Some(Command::NoDelivery(None))),
            _ => one_id(|i| Command::NoDelivery(Some(i))),
        },
        W::Approve => {
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
        W::Reject => {
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
                return Err(CommandError { command: name.to_string(), message: message.into(), usage: usage(name) });
            }
            Ok(Some(Command::Reject { id: id_part, reason: reason.to_string() }))
        }
    }
}

/// The help text, one command a line.
pub fn help_text(role: crate::model::Role) -> String {
    COMMANDS
        .iter()
        .filter(|(word, _, _)| role.may_send(*word))
        .map(|(_, u, what)| format!("{u:<38} {what}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_read_without_the_quotes_round_it() {
        for line in ["STOCK \"apron\"", "STOCK 'apron'", "stock \u{201c}apron\u{201d}", "STOCK apron"] {
            assert_eq!(parse_line(line), Ok(Some(Command::Stock(Some("apron".into())))), "{line}");
        }
        assert_eq!(parse_line("BLANKS \"\""), Ok(Some(Command::Blanks(None))));
        assert_eq!(parse_line("STOCK 5\" apron"), Ok(Some(Command::Stock(Some("5\" apron".into())))));
    }

    /// A search longer than the portal's is refused by name, never cut short unsaid; one as
    /// long, in letters of two bytes, is read whole.
    #[test]
    fn a_search_text_too_long_is_refused_by_name() {
        let most = "é".repeat(crate::model::SEARCH_MAX);
        assert_eq!(parse_line(&format!("STOCK {most}")), Ok(Some(Command::Stock(Some(most.clone())))));
        for command in ["STOCK", "BLANKS"] {
            let e = parse_line(&format!("{command} \"{most}x\"")).unwrap_err();
            assert_eq!(e.command, command);
            assert!(e.message.contains("longer than 200 characters"), "{e}");
        }
    }

    /// A search holding what the portal's search box refuses (a direction control, a bell)
    /// is refused by the command's name, as the portal refuses it by its field's.
    #[test]
    fn a_search_text_with_control_characters_is_refused_by_name() {
        for (line, code) in [("STOCK navy\u{202E}tee", "U+202E"), ("/blanks \"navy\u{7}\"", "U+0007")] {
            let e = parse_line(line).unwrap_err();
            assert!(["STOCK", "BLANKS"].contains(&e.command.as_str()), "{e}");
            assert!(e.message.contains("the text to search for holds") && e.message.contains(code), "{e}");
        }
    }

    #[test]
    fn a_misspelt_command_is_named_and_prose_is_not() {
        for (line, nearest) in [
            ("APROVE V-2008", "APPROVE"),
            ("TRAK D-1", "TRACK"),
            ("Rejcet V-1 too dark", "REJECT"),
            ("Aprove V-1", "APPROVE"),
            ("APPORVE", "APPROVE"),
            ("DELIVRIES", "DELIVERIES"),
        ] {
            let e = parse_line(line).unwrap_err();
            assert!(e.to_string().contains(&format!("is not a command ({nearest} is nearest)")), "{line}: {e}");
        }
        for prose in [
            "Hello Ann,",
            "Post it on Monday",
            "Thanks!",
            "THANKS",
            "OK",
            "Best regards",
            "Jbos are fine",
            "Visual V-2008 looks great",
            "Invoice INV-0042 is paid",
            "Price PC-1 is wrong",
            "Approval V-1 given",
            "BOB",
            "JOE",
            "PPS",
            "ATT: accounts",
        ] {
            assert_eq!(parse_line(prose), Ok(None), "{prose}");
        }
    }

    #[test]
    fn every_command_word_has_one_row_that_reads_back_as_it() {
        for w in CommandWord::ALL {
            assert_eq!(COMMANDS.iter().filter(|(x, _, _)| x == w).count(), 1, "{w}");
        }
        for (w, usage, _) in COMMANDS {
            assert!(usage.starts_with(w.as_str()), "{usage}");
            let example =
                usage.replace("<visual id>[, <visual id>…]", "V-1").replace("<visual id> <reason>", "V-1 why");
            let example = example.replace("<job id>", "J-1").replace("<delivery id>", "D-1");
            let example = example.replace("<purchase order id>", "PO-1").replace(" [text]", "");
            let read = parse_line(&example).unwrap_or_else(|e| panic!("{example}: {e}")).expect("a command");
            assert_eq!(read.word(), *w, "{example}");
        }
    }

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
