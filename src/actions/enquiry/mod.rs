//! Running a parsed command for a contact: enquiries return typed answers (titled tables a
//! channel renders its own way), actions call the same functions as the portal.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::commands::Command;
mod answers;

use answers::*;

use super::{ActionError, Actor, Unit};
use crate::actions::items::Category;
use crate::model::{CommandWord, Role};
use crate::services::Services;
use crate::store::StoreError;

/// One answer to one command.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The command as understood, e.g. `TRACK D-2001`.
    pub command: String,
    pub ok: bool,
    pub title: String,
    pub sections: Vec<Section>,
}

/// A block of an answer: a few lines of text and/or a table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Section {
    pub heading: Option<String>,
    pub lines: Vec<String>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Section {
    fn text(lines: Vec<String>) -> Section {
        Section { lines, ..Default::default() }
    }
    fn table(heading: Option<&str>, columns: &[&str], rows: Vec<Vec<String>>) -> Section {
        Section {
            heading: heading.map(str::to_string),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            ..Default::default()
        }
    }
    /// A headed table of `list`, one row per entry; none when the list is empty, so that an
    /// answer leaves out the parts a record does not have.
    fn listed<T>(heading: &str, columns: &[&str], list: Vec<T>, row: impl FnMut(T) -> Vec<String>) -> Option<Section> {
        (!list.is_empty()).then(|| Section::table(Some(heading), columns, list.into_iter().map(row).collect()))
    }
}

impl Answer {
    fn ok(command: &str, title: impl Into<String>, sections: Vec<Section>) -> Answer {
        Answer { command: command.into(), ok: true, title: title.into(), sections }
    }
    /// An answer that is one table under its title ("3 open job(s):"); with no rows, the
    /// title alone ("0 open job(s).") and no table header over nothing.
    fn table(command: &str, title: impl Into<String>, columns: &[&str], rows: Vec<Vec<String>>) -> Answer {
        let title = title.into();
        if rows.is_empty() {
            let title = format!("{}.", title.trim_end_matches(':'));
            return Answer::ok(command, title, vec![]);
        }
        Answer::ok(command, title, vec![Section::table(None, columns, rows)])
    }
    /// [`Answer::table`] of `list`, one row per entry.
    fn listing<T>(
        command: &str,
        title: impl Into<String>,
        columns: &[&str],
        list: &[T],
        row: impl FnMut(&T) -> Vec<String>,
    ) -> Answer {
        Answer::table(command, title, columns, list.iter().map(row).collect())
    }

    /// A refusal, its message naming the command it answers (`APPROVE: …`, the command's
    /// word without its arguments, which may be a hundred ids), since a reply
    /// may hold several and the reason alone may name only a field. Where the list of
    /// commands is, each channel says its own way (the email answer's footer, a line in chat).
    pub fn error(command: &str, message: impl Into<String>) -> Answer {
        let message = message.into();
        let verb = command.split_whitespace().next().unwrap_or_default();
        let title = if verb.is_empty() || message.starts_with(verb) { message } else { format!("{verb}: {message}") };
        Answer { command: command.into(), ok: false, title, sections: vec![] }
    }
    /// What an answer not wholly done says, as one text: its title without the command word
    /// put before it (`APPROVE: Nothing was approved: …` → `Nothing was approved: …`), then
    /// the lines of its sections (where an approval's reasons, or each file refused, stand).
    pub fn refusal(&self) -> String {
        let verb = self.command.split_whitespace().next().unwrap_or_default();
        let title = self.title.strip_prefix(verb).and_then(|t| t.strip_prefix(": ")).unwrap_or(&self.title);
        let lines = self.sections.iter().flat_map(|s| s.lines.iter().map(String::as_str));
        std::iter::once(title).chain(lines).collect::<Vec<_>>().join(" ")
    }
    /// Plain text (email text part, logs, chat fallback).
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.title);
        for s in &self.sections {
            if let Some(h) = &s.heading {
                out.push_str(&format!("\n{h}\n"));
            }
            for l in &s.lines {
                out.push_str(&format!("{l}\n"));
            }
            if !s.columns.is_empty() {
                let widths: Vec<usize> = (0..s.columns.len())
                    .map(|i| {
                        s.rows
                            .iter()
                            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                            .chain([s.columns[i].len()])
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let fmt_row = |cells: &[String]| {
                    cells
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                        .collect::<Vec<_>>()
                        .join("  ")
                        .trim_end()
                        .to_string()
                };
                out.push_str(&fmt_row(&s.columns));
                out.push('\n');
                for r in &s.rows {
                    out.push_str(&fmt_row(r));
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// What a message is about, when it is about one item (an alert, a delegation).
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub item: Option<(Category, String)>,
    /// The job whose artwork the message replied to asked for: its one artwork item, whatever
    /// else it held (a digest lists many things, and a file attached can be for that job alone).
    pub art_job: Option<String>,
    /// False when the link or reply token is too old to approve with (enquiries still work).
    pub may_decide: bool,
    /// How many rows a list may hold; 0 means the short lists email and chat show.
    pub list_limit: i64,
}

impl Context {
    fn limit(&self, default: i64) -> i64 {
        if self.list_limit > 0 { self.list_limit } else { default }
    }
}

/// Whether a role may run a command (and see the matching portal page): [`Role::may_ask`].
pub fn allowed(role: Role, cmd: &Command) -> bool {
    role.may_ask(cmd.word())
}

/// Runs one command for one actor. Never fails for bad input: the answer says what was wrong.
pub async fn run(
    state: &Services,
    unit: &mut Unit,
    actor: &Actor,
    cmd: &Command,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Answer, StoreError> {
    let name = command_name(cmd);
    if !allowed(actor.role, cmd) {
        return Ok(Answer::error(&name, format!("{name} is not available to your role ({}).", actor.role)));
    }
    match run_inner(Ask { state, actor, ctx, now, name: &name, db: &state.db, client: actor.client_id() }, unit, cmd)
        .await
    {
        Ok(a) => Ok(a),
        Err(ActionError::Store(e)) => Err(e),
        Err(e @ ActionError::NotFound(_)) => Ok(Answer::error(&name, format!("{e}. Check the id and try again."))),
        Err(e) => Ok(Answer::error(&name, e.to_string())),
    }
}

/// [`run`] as a whole of its own (the portal's enquiry pages): what the command changes is
/// committed when it succeeds.
pub async fn run_alone(
    state: &Services,
    actor: &Actor,
    cmd: &Command,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Answer, StoreError> {
    let mut unit = super::Unit::new(state);
    match run(state, &mut unit, actor, cmd, ctx, now).await {
        Ok(a) => {
            unit.commit().await?;
            state.wake_dispatch.notify_waiters();
            Ok(a)
        }
        Err(e) => {
            unit.rollback().await?;
            Err(e)
        }
    }
}

pub fn command_name(cmd: &Command) -> String {
    use Command::*;
    let rest = match cmd {
        Job(i) | Track(i) | Po(i) => i.clone(),
        // The search text is the sender's: shown on one line, cut short.
        Stock(t) | Blanks(t) => crate::model::shown(t.as_deref().unwrap_or(""), 40),
        Approve(ids) => ids.join(", "),
        Reject { id, .. } | NoDelivery(id) => id.clone().unwrap_or_default(),
        Help | Items | Jobs | Deliveries | Pos | Invoices | Balance | Prices | Art | Visuals | Link | Reset => {
            String::new()
        }
    };
    format!("{} {rest}", cmd.word()).trim_end().into()
}

/// Deciding from an old email or link is refused; a fresh link to the page where the
/// decision is made (the item's own, when one is named) is offered instead.
fn may_decide(a: &Ask, want: Category, id: Option<&str>) -> Result<(), ActionError> {
    if a.ctx.may_decide {
        return Ok(());
    }
    let at = |list: &str, page: &dyn Fn(&str) -> String| id.map_or_else(|| list.to_string(), page);
    let (deciding, path) = match want {
        Category::DeliveryInstructions => {
            ("say a job needs no delivery", at("/jobs", &|i| format!("/jobs/{}/delivery", crate::model::segment(i))))
        }
        _ => ("approve or reject", at("/visuals", &|i| format!("/visuals/{}", crate::model::segment(i)))),
    };
    Err(ActionError::Forbidden(format!(
        "This email is too old to {deciding} from. Open a fresh link instead: {}",
        a.link(&path)
    )))
}

/// The item a decision is about: the one named, or else the one the message replied to is
/// about. Refused when the message is too old to decide from.
fn decision_id(a: &Ask, named: Option<&str>, want: Category, command: CommandWord) -> Result<String, ActionError> {
    let id = match (named, &a.ctx.item) {
        (Some(id), _) => Some(id.to_string()),
        (None, Some((cat, id))) if *cat == want => Some(id.clone()),
        _ => None,
    };
    may_decide(a, want, id.as_deref())?;
    match id {
        Some(id) => Ok(id),
        None => {
            let example = match want {
                Category::DeliveryInstructions => "NODELIVERY J-3001",
                _ if command == CommandWord::Reject => "REJECT V-1001 the navy is too light",
                _ => "APPROVE V-1001",
            };
            // What is wrong and the usage line, as for a command written wrong.
            let usage = crate::actions::commands::usage(command);
            Err(ActionError::invalid(command.as_str(), format!("say which one, for example {example}. Usage: {usage}")))
        }
    }
}

/// What every command is given: who asks, with what context, and when.
#[derive(Clone, Copy)]
struct Ask<'a> {
    state: &'a Services,
    actor: &'a Actor,
    ctx: &'a Context,
    now: DateTime<Utc>,
    /// The command as understood (the answer's `command`).
    name: &'a str,
    /// The store the answers read.
    db: &'a crate::store::Db,
    /// The client whose records the contact may see.
    client: &'a str,
}

impl<'a> Ask<'a> {
    /// A signed portal link for the asking contact.
    fn link(&self, path: &str) -> String {
        self.state.portal_link(&self.actor.contact.id, path, self.now)
    }
}

async fn run_inner(a: Ask<'_>, unit: &mut Unit, cmd: &Command) -> Result<Answer, ActionError> {
    match cmd {
        Command::Help => help(&a),
        Command::Items => items(&a, unit).await,
        Command::Jobs => jobs(&a).await,
        Command::Job(id) => job(&a, id).await,
        Command::Track(id) => track(&a, id).await,
        Command::Deliveries => deliveries(&a).await,
        Command::Stock(text) => stock(&a, true, text.as_deref()).await,
        Command::Blanks(text) => stock(&a, false, text.as_deref()).await,
        Command::Pos => pos(&a).await,
        Command::Po(id) => po(&a, id).await,
        Command::Invoices => invoices(&a).await,
        Command::Balance => balance(&a).await,
        Command::Prices => prices(&a).await,
        Command::Art => art(&a).await,
        Command::Visuals => visuals(&a, unit).await,
        Command::Approve(ids) => approve(&a, unit, ids).await,
        Command::Reject { id, reason } => reject(&a, unit, id.as_deref(), reason).await,
        Command::NoDelivery(id) => no_delivery(&a, unit, id.as_deref()).await,
        Command::Link => link(&a, unit).await,
        Command::Reset => reset(&a, unit).await,
    }
}

async fn approve(a: &Ask<'_>, unit: &mut Unit, ids: &[String]) -> Result<Answer, ActionError> {
    let Ask { state, actor, now, name, .. } = *a;
    let ids = if ids.is_empty() {
        vec![decision_id(a, None, Category::VisualApproval, CommandWord::Approve)?]
    } else {
        let one = match ids {
            [id] => Some(id.as_str()),
            _ => None,
        };
        may_decide(a, Category::VisualApproval, one)?;
        ids.to_vec()
    };
    // The command itself is the acceptance: the terms were in the message replied to.
    let results = super::visuals::approve(state, Some(unit), actor, &ids, true, now).await?;
    for (id, _) in results.iter().filter(|(_, r)| r.is_ok()) {
        unit.closed(Category::VisualApproval, id);
    }
    let all_ok = results.iter().all(|(_, r)| r.is_ok());
    let none_ok = results.iter().all(|(_, r)| r.is_err());
    let lines: Vec<String> = results
        .into_iter()
        .map(|(id, r)| match r {
            Ok(_) => format!("{id}: approved"),
            Err(ActionError::NotFound(_)) => format!("{id}: not found"),
            Err(e) => format!("{id}: {e}"),
        })
        .collect();
    let mut a = Answer::ok(
        name,
        match (all_ok, none_ok) {
            (true, _) => "Approved. Thank you.",
            (false, true) => "Nothing was approved:",
            (false, false) => "Not everything could be approved:",
        },
        vec![Section::text(lines)],
    );
    a.ok = all_ok;
    Ok(a)
}

async fn reject(a: &Ask<'_>, unit: &mut Unit, id: Option<&str>, reason: &str) -> Result<Answer, ActionError> {
    let Ask { state, actor, now, name, .. } = *a;
    let named = id.map(str::to_string);
    let id = decision_id(a, id, Category::VisualApproval, CommandWord::Reject)?;
    // A command is sent from a message that showed the visual awaiting approval.
    match super::visuals::reject(state, Some(unit), actor, &id, reason, false, now).await {
        // A reason whose first word looks like an id (`REJECT PMS-286 is too dark`) was read
        // as one: in a reply about one visual, the answer says how to write it for that one.
        Err(ActionError::NotFound(what)) if named.is_some() => {
            // Only for a word of another kind than the visual's id (`PMS-286` beside `V-1`):
            // `V-12` is a mistyped visual, said not found as it is.
            let kind = |s: &str| s.split('-').next().unwrap_or_default().to_ascii_uppercase();
            if let (Some((Category::VisualApproval, about)), Some(word)) = (&a.ctx.item, &named)
                && kind(word) != kind(about)
            {
                return Err(ActionError::invalid(
                    "REJECT",
                    format!(
                        "{} not found: to reject {about}, write REJECT {about} <reason>",
                        crate::model::visible(&what, 200)
                    ),
                ));
            }
            return Err(ActionError::NotFound(what));
        }
        r => r?,
    };
    unit.closed(Category::VisualApproval, &id);
    Ok(Answer::ok(
        name,
        format!("{id} rejected. TOT will send a new visual."),
        vec![Section::text(vec![format!("Your reason: {reason}")])],
    ))
}

async fn no_delivery(a: &Ask<'_>, unit: &mut Unit, id: Option<&str>) -> Result<Answer, ActionError> {
    let Ask { state, actor, now, name, .. } = *a;
    let id = decision_id(a, id, Category::DeliveryInstructions, CommandWord::NoDelivery)?;
    super::delivery::no_delivery_in(state, unit.tx().await?, actor, &id, now).await?;
    unit.closed(Category::DeliveryInstructions, &id);
    Ok(Answer::ok(name, format!("Noted: job {id} needs no delivery."), vec![]))
}

async fn link(a: &Ask<'_>, unit: &mut Unit) -> Result<Answer, ActionError> {
    let Ask { state, actor, now, name, .. } = *a;
    let mut sections = vec![Section::text(vec![a.link("/")])];
    // By email, LINK also brings a code that ties a chat to this contact.
    let chat_on = crate::actions::chat_link::chat_on(&state.config);
    if actor.channel == crate::model::Channel::Email && chat_on && actor.delegation.is_none() {
        let code = crate::actions::chat_link::new_link_code_in(unit.tx().await?, &actor.contact.id, now).await?;
        sections.push(Section {
            heading: Some(format!("{}{code} (to link a chat)", crate::actions::chat_link::CODE_LABEL)),
            lines: crate::actions::chat_link::how_to_link(&state.config, &code),
            ..Default::default()
        });
    }
    Ok(Answer::ok(name, "Your portal link (it signs you in):", sections))
}

async fn reset(a: &Ask<'_>, unit: &mut Unit) -> Result<Answer, ActionError> {
    use crate::actions::mail::Queued;
    let Ask { state, actor, name, now, .. } = *a;
    let to = &actor.contact.email;
    match crate::actions::mail::queue_reset_link(state, unit.tx().await?, &actor.contact, now).await? {
        Queued::Yes => Ok(Answer::ok(name, format!("A password-reset link is on its way to {to}."), vec![])),
        Queued::Already(at) => Ok(Answer::ok(
            name,
            format!("A password-reset link went to {to} at {} UTC, a moment ago: use that one.", at.format("%H:%M:%S")),
            vec![],
        )),
        Queued::Suspended(why) => Err(ActionError::Conflict(format!(
            "email to {to} is suspended ({}), so no password-reset link was sent; ask TOT to resume it once the address works",
            crate::model::shown(&why, 200)
        ))),
        // Logged as cport's bug where it was found; the contact is told plainly.
        Queued::Unwritable => Err(ActionError::Conflict(
            "the password-reset email could not be written (a fault on our side, logged)".into(),
        )),
    }
}
