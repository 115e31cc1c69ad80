//! The commands a reply gives: read from the top of its fresh text, one a line, until the
//! first line that is none.

use crate::actions::commands::{Command, CommandError, parse_line};

/// The most commands one reply runs; a reply is a person's answer, not a batch job.
pub const MOST_COMMANDS: usize = 10;

/// What an error about the reply as a whole (too many commands), not one command, names.
pub(super) const WHOLE_REPLY: &str = "REPLY";

/// The error of a command line whose text arrived damaged.
fn unreadable(command: String, usage: &'static str) -> CommandError {
    CommandError {
        command,
        message: "holds U+FFFD where its text could not be read (a NUL, or an encoding other than the one the \
                  message names): write it again"
            .into(),
        usage,
    }
}

/// Commands from the top of the fresh text, until the first line that is not one. A command
/// given twice runs once; past [`MOST_COMMANDS`] the rest are refused with one error.
pub fn read_commands(text: &str) -> Vec<Result<Command, CommandError>> {
    let mut read: Vec<Result<Command, CommandError>> = Vec::new();
    // Past the limit only the first few are kept, to be named, and the rest counted: a
    // reply of millions of command lines costs no more than reading it.
    const NAMED: usize = 5;
    let mut over: Vec<&str> = Vec::new();
    let mut over_seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let given = |read: &[Result<Command, CommandError>], c: &Command| read.iter().any(|r| r.as_ref().ok() == Some(c));
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let damaged = line.contains('\u{FFFD}');
        match parse_line(line) {
            // A command whose words arrived damaged (U+FFFD stands where a NUL, or bytes of
            // another charset than the one named, could not be read) is not run: it would act
            // on, or keep in TOT's records, words the person did not write. Said so whether or
            // not the rest of the line reads as the command's arguments: an id with U+FFFD in
            // it is no typing slip to be explained.
            Ok(Some(c)) if damaged && read.len() < MOST_COMMANDS => {
                read.push(Err(unreadable(c.word().to_string(), crate::actions::commands::usage(c.word()))));
            }
            Err(e) if damaged && read.len() < MOST_COMMANDS => read.push(Err(unreadable(e.command, e.usage))),
            // A command given twice in one reply is run and answered once.
            Ok(Some(c)) if given(&read, &c) => {}
            Ok(Some(_)) | Err(_) if read.len() >= MOST_COMMANDS => {
                let line = line.trim();
                if over_seen.insert(line) && over.len() < NAMED {
                    over.push(line);
                }
            }
            Ok(Some(c)) => read.push(Ok(c)),
            Ok(None) => break,
            Err(e) => read.push(Err(e)),
        }
    }
    if !over.is_empty() {
        // The first few named as written (each cut short), so the sender knows what to send again.
        let mut named: Vec<String> = over.iter().map(|l| crate::model::visible(l, 30)).collect();
        if over_seen.len() > NAMED {
            named.push(format!("and {} more", over_seen.len() - NAMED));
        }
        read.push(Err(CommandError {
            command: WHOLE_REPLY.into(),
            message: format!(
                "only the first {MOST_COMMANDS} commands of a reply are run; not run: {} (send them again)",
                named.join(", ")
            ),
            usage: "one command a line, at most 10 a reply",
        }));
    }
    read
}
