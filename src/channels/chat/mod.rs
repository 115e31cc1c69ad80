//! What every chat channel shares: linking a chat user to a contact, reading commands and
//! button presses, answering in a channel-neutral [`ChatMessage`], and the [`ChatSender`]
//! trait each adapter implements. Telegram and Discord are adapters over this; a Slack or
//! Microsoft Teams adapter would be one more file implementing [`ChatSender`] and calling
//! [`handle`] from its webhook.
//! A little over 500 lines: the one path every chat update takes (tie the user, read the
//! command or button, act, answer) reads best whole; the adapters and renderings are apart.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;

use super::SendError;
use crate::actions::commands::{Command, parse_line};
use crate::actions::enquiry::{Answer, Context, run};
use crate::actions::{ActionError, Actor, Unit};
pub use crate::messages::{Button, ChatMessage, ChatPayload};
use crate::model::Channel;
use crate::services::Services;
use crate::store::chat as db;
use crate::store::contacts::get_contact;
use crate::store::{StoreError, limits};

mod render;

pub use render::{alert_message, digest_message, page};

/// Lines of an answer shown per chat message; the rest behind a "More" button.
pub const PAGE_LINES: usize = 12;

/// The most bytes of a button's data every provider takes back: Telegram's `callback_data`
/// holds 64 (its sender drops a button over it), Discord's `custom_id` 100.
pub const BUTTON_DATA_BYTES: usize = 64;
/// How long the bot waits for a rejection's reason.
const PENDING_MINUTES: i64 = 15;

/// What the handler wants done in the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A new message.
    Send(ChatMessage),
    /// Replace the message whose button was pressed.
    Edit(ChatMessage),
    /// A short notice on the button press itself (Telegram's toast).
    Notice(String),
    /// A question whose answer is the user's next words (why a visual is rejected). A chat
    /// shows `message` and takes the next message as the answer; Discord's app, which hears
    /// no free text, asks in a form with one field called `label`, and says `typed` (the
    /// command that does the same in one go) when it cannot show a form. `about` is what
    /// the question is about (the visual's id), so an answer can say which question it answers.
    Ask { message: ChatMessage, label: &'static str, typed: String, about: String },
}

/// What a chat user did.
#[derive(Debug, Clone)]
pub enum Input {
    Text(String),
    /// The data of a pressed button.
    Button(String),
    /// The words typed into the form a [`Reply::Ask`] showed, and what that form was about
    /// when the provider says (a form left open while another question was asked answers
    /// nothing).
    Answer {
        text: String,
        about: Option<String>,
    },
}

/// One thing a chat user said or pressed.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// `telegram`, `discord`.
    pub channel: Channel,
    /// The chat user (stable across chats).
    pub user_id: String,
    /// Where messages to this user go (Telegram chat id; Discord user id).
    pub chat_id: String,
    pub input: Input,
}

/// Sends a [`ChatMessage`] to a chat: the outbox calls this for digests, alerts and
/// banners. Returns the provider's message id.
pub trait ChatSender: Send + Sync {
    fn send<'a>(&'a self, chat_id: &'a str, message: &'a ChatMessage) -> BoxFuture<'a, Result<String, SendError>>;
}

/// The configured chat senders by channel name.
pub type ChatSenders = Arc<std::collections::HashMap<crate::model::Chat, Arc<dyn ChatSender>>>;

fn not_linked(channel: Channel) -> ChatMessage {
    ChatMessage::text(
        "This chat is not linked to a TOT account yet.",
        vec![format!(
            "Get a code on the portal's Preferences page (or reply LINK to any TOT email), then send {} CODE here.",
            crate::actions::chat_link::link_command(channel)
        )],
    )
}

fn is_staff(state: &Services, channel: Channel, user_id: &str) -> bool {
    let list = match channel {
        Channel::Telegram => &state.config.telegram.staff,
        Channel::Discord => &state.config.discord.staff,
        Channel::Email | Channel::Portal => return false,
    };
    list.iter().any(|s| s == user_id)
}

/// `/word@bot rest` as (`word` lower-cased, `rest`), read as the command grammar reads it.
fn head_of(text: &str) -> (String, &str) {
    let (head, rest) = crate::actions::commands::split_head(text);
    (head.to_ascii_lowercase(), rest)
}

/// Handles one message or button press and says what to answer. Never fails for bad input.
pub async fn handle(state: &Services, inc: &Incoming, now: DateTime<Utc>) -> Result<Vec<Reply>, StoreError> {
    handle_update(state, inc, None, now).await
}

/// [`handle`] for an input the provider identifies. `update_id` is the provider's id for the input: it is recorded as seen in the same
/// transaction as what the input changes, so a crash leaves both or neither, and an input
/// delivered twice is acted on once (the second gets no answer).
pub async fn handle_update(
    state: &Services,
    inc: &Incoming,
    update_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<Reply>, StoreError> {
    let started = std::time::Instant::now();
    if let Some(id) = update_id {
        match db::seen_update(&state.db, inc.channel, id).await? {
            db::Sighting::New => {}
            // Telegram delivers an update again until cport asks for the next ones: one run
            // whose answers were never said to have gone (cport stopped between the two) is
            // told so, once, rather than passed over in silence. It is not run again.
            db::Sighting::Unanswered if inc.channel == Channel::Telegram => {
                return Ok(vec![Reply::Send(ChatMessage::text(
                    "Your last message was received and done",
                    vec![
                        "Its answer could not be sent (cport was restarting).".into(),
                        "Send it again to see where things stand: nothing is approved or sent twice.".into(),
                    ],
                ))]);
            }
            db::Sighting::Answered | db::Sighting::Unanswered => return Ok(vec![]),
        }
    }
    let mut unit = Unit::new(state);
    let replies = match handle_inner(state, &mut unit, inc, now).await {
        Ok(r) => r,
        Err(e) => {
            unit.rollback().await?;
            return Err(e);
        }
    };
    if let Some(id) = update_id {
        unit.step("chat:before-record")?;
        if !db::first_sighting(unit.tx().await?, inc.channel, id, now).await? {
            unit.rollback().await?;
            return Ok(vec![]);
        }
    }
    unit.commit().await?;
    state.wake_dispatch.notify_waiters();
    metrics::counter!("cport_chat_inputs_total", "channel" => inc.channel.as_str()).increment(1);
    metrics::histogram!("cport_chat_handle_seconds", "channel" => inc.channel.as_str())
        .record(started.elapsed().as_secs_f64());
    Ok(replies)
}

/// An input holding a NUL character is refused whole, naming the command, and changes
/// nothing: no command takes one, PostgreSQL cannot even look one up, and dropping it would
/// act on words the user did not send.
fn nul_refusal(input: &Input) -> Option<Reply> {
    let (Input::Text(t) | Input::Button(t) | Input::Answer { text: t, .. }) = input;
    if !t.contains('\0') {
        return None;
    }
    let text = match input {
        // A button's data is made by cport: one holding a NUL was damaged or made by hand, and
        // no one can press it again without one.
        Input::Button(_) => {
            "That button is damaged (it holds a NUL character): nothing was done. Send /visuals or /items for fresh ones."
                .into()
        }
        Input::Text(t) if t.trim_start().starts_with('/') => format!(
            "{} is not valid: it holds a NUL character, which no command takes. Send it again without it.",
            crate::model::quoted(&format!("/{}", head_of(t).0))
        ),
        _ => "That message is not valid: it holds a NUL character, which no command takes. Send it again without it."
            .into(),
    };
    Some(Reply::Send(ChatMessage::text(text, vec![])))
}

async fn handle_inner(
    state: &Services,
    unit: &mut Unit,
    inc: &Incoming,
    now: DateTime<Utc>,
) -> Result<Vec<Reply>, StoreError> {
    if let Some(refusal) = nul_refusal(&inc.input) {
        return Ok(vec![refusal]);
    }
    if let Input::Text(text) = &inc.input
        && text.trim_start().starts_with('/')
    {
        let (head, rest) = head_of(text);
        match head.as_str() {
            // A code is read without its spaces and dashes (`K7PQ 2XMD` as typed from a
            // screen): two words at most, so a sentence after /start is not taken for one.
            "start" | "link" if !rest.is_empty() && rest.split_whitespace().count() <= 2 => {
                return link(state, unit, inc, rest, now).await;
            }
            "unlink" => {
                let done = db::contact_for_user(&state.db, inc.channel, &inc.user_id).await?.is_some()
                    || db::tied(&state.db, inc.channel, &inc.user_id).await?;
                db::unlink_in(unit.tx().await?, inc.channel, &inc.user_id, now).await?;
                return Ok(vec![Reply::Send(ChatMessage::text(
                    if done {
                        "This chat is no longer linked. You will get no more messages here."
                    } else {
                        "This chat was not linked."
                    },
                    vec![],
                ))]);
            }
            "broadcast" | "outbox" => return staff(state, unit, inc, &head, rest, now).await,
            _ => {}
        }
    }
    let Some(contact_id) = db::contact_for_user(&state.db, inc.channel, &inc.user_id).await? else {
        // Tied to a contact TOT has since made inactive: said so, not "not linked yet".
        if db::tied(&state.db, inc.channel, &inc.user_id).await? {
            return Ok(vec![Reply::Send(ChatMessage::text(
                "The TOT account this chat is linked to is no longer active.",
                vec![format!(
                    "Ask TOT about it; if you use another account, get a code for it and send {} CODE here.",
                    crate::actions::chat_link::link_command(inc.channel)
                )],
            ))]);
        }
        return Ok(vec![Reply::Send(not_linked(inc.channel))]);
    };
    let contact = match get_contact(&state.db, &contact_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Ok(vec![Reply::Send(not_linked(inc.channel))]),
        Err(e) => return Err(e),
    };
    let actor = Actor::new(contact, inc.channel);
    // A question asked (the reason for a rejection) is answered by the next message only: a
    // button pressed or a /command sent instead drops it.
    // Taken in the unit: a reason whose rejection fails is still pending when it is sent again.
    let pending = match db::has_pending(&state.db, inc.channel, &inc.user_id).await? {
        true => db::take_pending(unit.tx().await?, inc.channel, &inc.user_id, now).await?,
        false => None,
    };
    match &inc.input {
        Input::Button(data) => button(state, unit, inc, &actor, data, now).await,
        Input::Answer { text, about } => match pending {
            // A form for another visual than the one last asked about (two forms open at
            // once): the reason was written for that one, so it rejects neither.
            Some((_, subject)) if about.as_ref().is_some_and(|a| *a != subject) => {
                ask_reason(unit, inc, &subject, now).await?;
                let about = about.as_deref().unwrap_or_default();
                Ok(vec![Reply::Send(ChatMessage::text(
                    format!(
                        "That form was about {about}, but you have since pressed Reject on {subject}: nothing was changed."
                    ),
                    vec![format!("Press Reject on {about} again, or send /reject {about} <reason>.")],
                ))])
            }
            Some(pending) => answer_pending(state, unit, inc, &actor, pending, text.trim(), now).await,
            None => Ok(vec![Reply::Send(ChatMessage::text(
                "That question has expired: nothing was changed. Press the button again.",
                vec![],
            ))]),
        },
        Input::Text(text) => {
            let text = text.trim();
            // Words that merely look like a command ("Stock colour is wrong") are the
            // answer: only a /command, like a button, leaves the question unanswered.
            if let Some(pending) = pending
                && !text.starts_with('/')
            {
                return answer_pending(state, unit, inc, &actor, pending, text, now).await;
            }
            let (head, _) = head_of(text);
            if head == "start" {
                let mut a = run(state, unit, &actor, &Command::Help, &decide_ctx(), now).await?;
                a.title =
                    format!("Hello {}. This chat is linked to {}.", actor.contact.name, actor.contact.client_name);
                return Ok(vec![Reply::Send(page(&a, "HELP", 0))]);
            }
            let mut buttons = vec![];
            let mut line = text.strip_prefix('/').unwrap_or(text);
            let answer = match parse_line(text) {
                Ok(Some(cmd)) => {
                    let a = run(state, unit, &actor, &cmd, &decide_ctx(), now).await?;
                    if cmd == Command::Visuals && actor.may_act() {
                        buttons = visual_buttons(&a);
                    }
                    a
                }
                Ok(None) => {
                    // What follows (a "More" button) is the help, not the words not understood.
                    line = "HELP";
                    let mut a = run(state, unit, &actor, &Command::Help, &decide_ctx(), now).await?;
                    a.ok = false;
                    // A message of blanks alone (a client sending nothing but spaces) is not
                    // quoted back as “”.
                    a.title = match crate::model::shown(text, 40) {
                        said if said.is_empty() => "These are the commands:".to_string(),
                        said => format!("I did not understand “{said}”. These are the commands:"),
                    };
                    a
                }
                Err(e) => {
                    // A command written wrong: what is wrong, then the help (its "More"
                    // button goes on with the help).
                    line = "HELP";
                    let mut a = run(state, unit, &actor, &Command::Help, &decide_ctx(), now).await?;
                    a.ok = false;
                    a.title = Answer::error(&e.command, e.to_string()).title;
                    a
                }
            };
            let mut m = page(&answer, line, 0);
            m.buttons.splice(0..0, buttons);
            Ok(vec![Reply::Send(m)])
        }
    }
}

/// The answer to the question asked: `(action, subject)` as [`db::set_pending`] kept it.
async fn answer_pending(
    state: &Services,
    unit: &mut Unit,
    inc: &Incoming,
    actor: &Actor,
    (action, subject): (String, String),
    text: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Reply>, StoreError> {
    if action != "reject" {
        return Ok(vec![Reply::Send(ChatMessage::text("That question has expired: nothing was changed.", vec![]))]);
    }
    // A reason that cannot be taken (too long, a control character) leaves the question
    // open where the next message can answer it (a form, as Discord asks, cannot be followed
    // by another: there the button is pressed again).
    if let Err(e) = crate::actions::visuals::check_reason(text) {
        let again = match inc.input {
            Input::Answer { .. } => format!("Press Reject again, or send /reject {subject} <reason>."),
            _ => {
                ask_reason(unit, inc, &subject, now).await?;
                "Send the reason again as your next message; a /command or a button leaves the visual as it is.".into()
            }
        };
        return Ok(vec![Reply::Send(ChatMessage::text(format!("REJECT {subject}: {e}"), vec![again]))]);
    }
    let cmd = Command::Reject { id: Some(subject), reason: text.to_string() };
    let answer = run(state, unit, actor, &cmd, &decide_ctx(), now).await?;
    Ok(vec![Reply::Send(page(&answer, "", 0))])
}

/// Remembers that the chat user's next message is the reason for rejecting `id`.
async fn ask_reason(unit: &mut Unit, inc: &Incoming, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    let until = now + Duration::minutes(PENDING_MINUTES);
    db::set_pending(unit.tx().await?, inc.channel, &inc.user_id, "reject", id, until).await
}

/// Approve / Reject buttons under a list of visuals (the first few; the rest are in the portal).
fn visual_buttons(a: &Answer) -> Vec<Vec<Button>> {
    a.sections
        .iter()
        .flat_map(|s| s.rows.iter())
        .filter_map(|r| r.first())
        .take(4)
        .map(|id| {
            vec![
                Button::action(&format!("Approve {id}"), format!("ap:{id}")),
                Button::action(&format!("Reject {id}"), format!("rj:{id}")),
            ]
        })
        .collect()
}

/// What approving visual `id` accepts, as the confirmation shows it: its charges and the
/// approval terms.
async fn terms_shown(state: &Services, actor: &Actor, id: &str) -> Result<Vec<String>, StoreError> {
    let charges = crate::store::visuals::list_charges(&state.db, id).await?;
    let currency = crate::store::enquiries::client_currency(&state.db, actor.client_id()).await?;
    let mut lines: Vec<String> = charges
        .iter()
        .map(|c| {
            format!(
                "{} × {}: {} {currency}",
                c.qty,
                c.description,
                crate::model::Money(crate::model::line_total(c.qty, c.unit_price))
            )
        })
        .collect();
    lines.insert(0, "Approving accepts the visual and the charges below:".into());
    lines.push(format!("Terms: {}", state.config.branding.approval_terms));
    Ok(lines)
}

/// The question before an approval: what approving `id` accepts (`lines`, after `first`
/// when given), and a "Yes, approve" naming what it showed: pressed once the charges or the
/// terms have changed, it approves nothing and shows them again.
fn confirmation(id: &str, lines: Vec<String>, first: Option<&str>) -> ChatMessage {
    let yes = format!("ay:{id}:{}", fingerprint(&lines));
    // An id too long for the button's data (Telegram keeps 64 bytes) leaves the typed command
    // as the way to say yes.
    let typed = (yes.len() > BUTTON_DATA_BYTES).then(|| format!("To approve, send /approve {id}"));
    ChatMessage {
        title: format!("Approve {id}?"),
        lines: first.map(str::to_string).into_iter().chain(lines).chain(typed).collect(),
        buttons: vec![vec![Button::action("Yes, approve", yes), Button::action("Cancel", "x")]],
        ..Default::default()
    }
}

/// Eight hex digits of SHA-256 over what a confirmation showed: enough to tell a change, and
/// short enough for a button's data (Telegram keeps 64 bytes).
fn fingerprint(lines: &[String]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(lines.join("\n").as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// Chat has no "message this replies to": decisions are allowed, ids are explicit.
fn decide_ctx() -> Context {
    Context { item: None, art_job: None, may_decide: true, list_limit: 0 }
}

/// Wrong codes one chat user may try before waiting (the limiter's window).
const CODE_ATTEMPTS: u32 = 5;

async fn link(
    state: &Services,
    unit: &mut Unit,
    inc: &Incoming,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Reply>, StoreError> {
    let key = format!("chat-code:{}:{}", inc.channel, inc.user_id);
    // Counted before the code is tried, in the store: one limit for every process.
    if limits::attempt(&state.db, &key, CODE_ATTEMPTS, now.timestamp_millis()).await?.is_some() {
        return Ok(vec![Reply::Send(ChatMessage::text(
            "Too many wrong codes. Wait a quarter of an hour, then try a new code.",
            vec![],
        ))]);
    }
    let redeemed = db::redeem_code(
        unit.tx().await?,
        &crate::actions::chat_link::hash_code(code),
        inc.channel,
        &inc.user_id,
        &inc.chat_id,
        now,
    )
    .await?;
    let Some(contact_id) = redeemed else {
        return Ok(vec![Reply::Send(ChatMessage::text(
            "That code is not valid: it may be mistyped, used already or older than 30 minutes.",
            vec![format!(
                "Get a new code on the portal's Preferences page, then send {} CODE.",
                crate::actions::chat_link::link_command(inc.channel)
            )],
        ))]);
    };
    limits::clear(unit.tx().await?, &key).await?;
    if let Some(chat) = inc.channel.chat() {
        crate::store::ledgers::forget_channel(unit.tx().await?, &contact_id, chat.into()).await?;
    }
    let c = get_contact(&state.db, &contact_id).await?;
    tracing::info!(channel = %inc.channel, contact = %c.id, "chat linked");
    // What the contact's role may ask, as a message's footer offers it, in the chat's form.
    let tries: Vec<String> = crate::messages::compose::asks_for(c.role)
        .into_iter()
        .map(|ask| match ask.split_once(' ') {
            Some((word, rest)) => format!("/{} {rest}", word.to_ascii_lowercase()),
            None => format!("/{}", ask.to_ascii_lowercase()),
        })
        .collect();
    let tries = match tries.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "/help".into(),
    };
    // Digests and alerts are promised only where cport sends: a Discord set up to answer
    // interactions alone (no bot token) answers commands, and sends the contact nothing.
    let sends_here = inc.channel.chat().is_some_and(|chat| state.config.chat_channels().contains(&chat));
    let told = match sends_here {
        true => format!("Digests and alerts will come here too. Try {tries}; /unlink stops it."),
        false => format!("Ask here with {tries}; digests and alerts do not come to this chat. /unlink stops it."),
    };
    Ok(vec![Reply::Send(ChatMessage::text(
        format!("Linked: this chat is now {} at {}.", c.name, c.client_name),
        vec![told],
    ))])
}

async fn staff(
    state: &Services,
    unit: &mut Unit,
    inc: &Incoming,
    head: &str,
    rest: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Reply>, StoreError> {
    if !is_staff(state, inc.channel, &inc.user_id) {
        return Ok(vec![Reply::Send(ChatMessage::text(format!("/{head} is for TOT staff only."), vec![]))]);
    }
    if head == "outbox" {
        let counts = crate::store::outbox::counts_by_status(&state.db).await?;
        let lines = if counts.is_empty() {
            vec!["(empty)".into()]
        } else {
            counts.iter().map(|(s, n)| format!("{s}: {n}")).collect()
        };
        return Ok(vec![Reply::Send(ChatMessage::text("Outbox messages by status:", lines))]);
    }
    const USAGE: &str = "Usage: /broadcast urgent|warning|info <title> | <body>";
    let (severity, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let Some((title, body)) = rest.split_once('|') else {
        return Ok(vec![Reply::Send(ChatMessage::text(
            "/broadcast: a title and a body separated by |",
            vec![USAGE.into()],
        ))]);
    };
    let input = crate::actions::banners::BannerInput {
        title: title.trim().into(),
        body: body.trim().into(),
        severity: severity.to_ascii_lowercase(),
        clients: vec![],
        starts_at: None,
        expires_at: None,
    };
    let by = format!("{}:{}", inc.channel, inc.user_id);
    // Posted in the unit that records the update: a broadcast delivered twice posts once.
    match crate::actions::banners::post_in(state, unit, input, &by, now).await {
        Ok(p) => Ok(vec![Reply::Send(ChatMessage::text(
            format!("Banner {} posted.", p.id),
            vec![format!("{} message(s) queued.", p.queued)],
        ))]),
        Err(e @ crate::actions::banners::BannerError::AlreadyPosted(_)) => {
            Ok(vec![Reply::Send(ChatMessage::text(format!("/broadcast: {e}"), vec![]))])
        }
        Err(crate::actions::banners::BannerError::Invalid(errs)) => Ok(vec![Reply::Send(ChatMessage::text(
            format!("/broadcast: {}", errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")),
            vec![USAGE.into()],
        ))]),
        Err(crate::actions::banners::BannerError::Store(e)) => Err(e),
    }
}

/// A button about a visual decided since: how it stands, at once (the button's notice) and
/// in the chat, where it stays.
fn how_it_stands(said: String) -> Vec<Reply> {
    vec![Reply::Notice(said.clone()), Reply::Send(ChatMessage::text(said, vec![]))]
}

/// Button data: `ap:ID` asks to confirm an approval, `ay:ID:SHOWN` approves (when the
/// charges and terms are still those the confirmation showed), `rj:ID` asks for a reason, `x` cancels, `mo:OFFSET:COMMAND` shows more of an answer.
async fn button(
    state: &Services,
    unit: &mut Unit,
    inc: &Incoming,
    actor: &Actor,
    data: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Reply>, StoreError> {
    let (verb, arg) = data.split_once(':').unwrap_or((data, ""));
    if matches!(verb, "ap" | "ay" | "rj") && !actor.may_act() {
        return Ok(vec![Reply::Notice(format!(
            "Approving and rejecting are not available to your role ({}).",
            actor.role
        ))]);
    }
    // The visual a button asks about must still await approval: decided since the message
    // was sent (a colleague, an earlier press), the button says so at once, before it asks
    // to confirm or for a reason. A confirmation's must be the contact's to see before its
    // charges are shown again (a hand-made press may name any visual); decided, its
    // approval says so.
    if matches!(verb, "ap" | "rj" | "ay") {
        let id = if verb == "ay" { arg.rsplit_once(':').map_or(arg, |(id, _)| id) } else { arg };
        let asked = match verb {
            "ay" => crate::actions::visuals::visible_visual(state, actor, id).await.map(drop),
            _ => crate::actions::visuals::awaiting(state, actor, id).await.map(drop),
        };
        match asked {
            Ok(()) => {}
            Err(ActionError::Conflict(said)) => return Ok(how_it_stands(said)),
            Err(ActionError::NotFound(_)) => {
                let id = crate::model::visible(id, 40);
                return Ok(vec![Reply::Notice(format!("Visual {id} not found."))]);
            }
            Err(ActionError::Store(e)) => return Err(e),
            Err(e) => return Ok(vec![Reply::Notice(e.to_string())]),
        }
    }
    match verb {
        "ap" => Ok(vec![Reply::Send(confirmation(arg, terms_shown(state, actor, arg).await?, None))]),
        "ay" => {
            let (arg, shown) = arg.rsplit_once(':').unwrap_or((arg, ""));
            let lines = terms_shown(state, actor, arg).await?;
            if shown != fingerprint(&lines) {
                // Decided since (or a hand-made press of a decided one): how it stands, not a
                // fresh confirmation of an approval that cannot be made.
                if let Err(ActionError::Conflict(said)) = crate::actions::visuals::awaiting(state, actor, arg).await {
                    return Ok(how_it_stands(said));
                }
                let changed = "The charges or terms have changed since you were asked; nothing was approved.";
                return Ok(vec![Reply::Send(confirmation(arg, lines, Some(changed)))]);
            }
            let a = run(state, unit, actor, &Command::Approve(vec![arg.to_string()]), &decide_ctx(), now).await?;
            // Approved: the question becomes the answer. Not (a second tap on the button, a
            // colleague's decision meanwhile): a new message says why, and an approval already
            // shown stays on screen.
            if a.ok { Ok(vec![Reply::Edit(page(&a, "", 0))]) } else { Ok(vec![Reply::Send(page(&a, "", 0))]) }
        }
        "rj" => {
            ask_reason(unit, inc, arg, now).await?;
            Ok(vec![
                Reply::Notice("Send the reason as your next message.".into()),
                Reply::Ask {
                    message: ChatMessage::text(
                        format!("Why are you rejecting {arg}?"),
                        vec![
                            "Send the reason as your next message; TOT's designer will read it.".into(),
                            "A /command or a button instead leaves the visual as it is.".into(),
                        ],
                    ),
                    label: "Reason",
                    typed: format!("/reject {arg} <reason>"),
                    about: arg.to_string(),
                },
            ])
        }
        "x" => Ok(vec![Reply::Edit(ChatMessage::text("Cancelled. Nothing was changed.", vec![]))]),
        "mo" => {
            let (offset, line) = arg.split_once(':').unwrap_or(("0", ""));
            let offset: usize = offset.parse().unwrap_or(0);
            match parse_line(line) {
                // A page of an answer, never a decision made again.
                Ok(Some(cmd)) if !cmd.word().decides() => {
                    let a = run(state, unit, actor, &cmd, &decide_ctx(), now).await?;
                    Ok(vec![Reply::Send(page(&a, line, offset))])
                }
                _ => Ok(vec![Reply::Notice("This button has expired.".into())]),
            }
        }
        _ => Ok(vec![Reply::Notice("This button has expired.".into())]),
    }
}

#[cfg(test)]
mod tests {
    /// A visual id too long for the "Yes, approve" button's data leaves the typed command to
    /// say yes with, in the question itself; a short one needs no such line.
    #[test]
    fn a_confirmation_too_long_for_its_button_says_the_typed_command() {
        let long = format!("V-{}", "7".repeat(58));
        let asked = super::confirmation(&long, vec!["Approving accepts the visual".into()], None);
        assert!(asked.lines.last().is_some_and(|l| *l == format!("To approve, send /approve {long}")), "{asked:?}");
        let asked = super::confirmation("V-1", vec!["Approving accepts the visual".into()], None);
        assert!(!asked.lines.iter().any(|l| l.contains("/approve")), "{asked:?}");
    }
}
