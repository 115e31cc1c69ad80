//! Discord's side of a conversation: `POST /discord/interactions` (a slash command, a
//! button, a form's answer), checked, run through the chat layer, and answered within
//! Discord's window, or deferred and edited in, with follow-ups.

use super::*;

/// The fields of an interaction cport reads. Parsed by hand rather than into serenity's
/// full model so a field Discord adds or drops never makes us refuse a user's command.
#[derive(Debug, Deserialize)]
struct Interaction {
    #[serde(default)]
    id: String,
    #[serde(rename = "type")]
    kind: u8,
    token: Option<String>,
    application_id: Option<String>,
    data: Option<InteractionData>,
    user: Option<DiscordUser>,
    member: Option<Member>,
}

#[derive(Debug, Deserialize)]
struct InteractionData {
    name: Option<String>,
    #[serde(default)]
    options: Vec<CommandOption>,
    custom_id: Option<String>,
    /// A submitted form's rows of fields.
    #[serde(default)]
    components: Vec<FormRow>,
}

#[derive(Debug, Deserialize)]
struct FormRow {
    #[serde(default)]
    components: Vec<FormField>,
}

#[derive(Debug, Deserialize)]
struct FormField {
    custom_id: Option<String>,
    value: Option<String>,
}

impl InteractionData {
    /// The answer typed into a question's form.
    fn answer(&self) -> Option<String> {
        self.components
            .iter()
            .flat_map(|r| &r.components)
            .find(|f| f.custom_id.as_deref() == Some(ANSWER_FIELD))
            .and_then(|f| f.value.clone())
    }
}

#[derive(Debug, Deserialize)]
struct CommandOption {
    value: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct DiscordUser {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Member {
    user: DiscordUser,
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// `POST /discord/interactions`.
pub async fn interactions(state: Services, discord: Option<Arc<Discord>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(discord) = discord else {
        return refuse(StatusCode::NOT_FOUND, "discord is not configured");
    };
    let Some(verifier) = &discord.verifier else {
        return refuse(StatusCode::NOT_FOUND, "discord.public_key is not configured");
    };
    // Discord waits three seconds for the first answer, from the moment it sent the request:
    // every wait here (the store's look for a replay too) counts against one deadline.
    let deadline = tokio::time::Instant::now() + discord.defer_after;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (signature, timestamp) = (header("x-signature-ed25519"), header("x-signature-timestamp"));
    if verifier.verify(signature, timestamp, &body).is_err() {
        return refuse(StatusCode::UNAUTHORIZED, "invalid request signature");
    }
    // Checked: a header's number may be any i64, and a subtraction that overflows is a panic.
    let Ok(sent_at) = timestamp.parse::<i64>() else {
        return refuse(StatusCode::UNAUTHORIZED, "x-signature-timestamp: not a time in whole seconds");
    };
    let fresh = Utc::now()
        .timestamp()
        .checked_sub(sent_at)
        .is_some_and(|skew| skew.unsigned_abs() <= MAX_SKEW_SECONDS.unsigned_abs());
    if !fresh {
        return refuse(StatusCode::UNAUTHORIZED, "request timestamp is too old");
    }
    let it: Interaction = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            // The parser's words name Rust's types: logged, and the caller told in plain words.
            tracing::debug!(error = %e, "a Discord interaction that could not be read");
            return refuse(StatusCode::BAD_REQUEST, "body is not an interaction (JSON of Discord's interaction shape)");
        }
    };
    let user = it.user.as_ref().or(it.member.as_ref().map(|m| &m.user)).map(|u| u.id.clone());
    let input = match (it.kind, &it.data, user) {
        (1, _, _) => {
            return Json(serde_json::to_value(CreateInteractionResponse::Pong).unwrap_or_default()).into_response();
        }
        (2, Some(d), Some(_)) => {
            let mut text = format!("/{}", d.name.as_deref().unwrap_or(""));
            for o in &d.options {
                match &o.value {
                    Some(serde_json::Value::String(s)) => text.push_str(&format!(" {s}")),
                    Some(v) => text.push_str(&format!(" {v}")),
                    None => {}
                }
            }
            Input::Text(text)
        }
        (3, Some(d), Some(_)) => Input::Button(d.custom_id.clone().unwrap_or_default()),
        (5, Some(d), Some(_)) if d.custom_id.as_deref().and_then(form_about).is_some() => match d.answer() {
            Some(text) => Input::Answer { text, about: d.custom_id.as_deref().and_then(form_about).flatten() },
            None => return refuse(StatusCode::BAD_REQUEST, "a form without its answer field"),
        },
        (2 | 3 | 5, None, _) => return refuse(StatusCode::BAD_REQUEST, "the interaction has no data"),
        (2 | 3 | 5, _, None) => return refuse(StatusCode::BAD_REQUEST, "the interaction names no user"),
        (5, _, _) => return refuse(StatusCode::BAD_REQUEST, "a form cport did not send (its custom_id)"),
        _ => return refuse(StatusCode::BAD_REQUEST, "unsupported interaction type"),
    };
    // A captured request replayed within the timestamp window is answered once only.
    // It is recorded as seen together with what it changes (in `chat::handle`), which tells a
    // replay apart itself (answering it nothing): a store too slow to say so before the
    // deadline is not waited for here.
    match tokio::time::timeout_at(
        deadline,
        crate::store::chat::seen_update(&state.db, crate::model::Channel::Discord, &it.id),
    )
    .await
    {
        Ok(Ok(crate::store::chat::Sighting::New)) | Err(_) => {}
        Ok(Ok(_)) => return refuse(StatusCode::CONFLICT, "interaction already handled"),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "discord: store unavailable");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "store unavailable");
        }
    }
    let user = it.user.as_ref().or(it.member.as_ref().map(|m| &m.user)).map(|u| u.id.clone()).unwrap_or_default();
    if discord.http.application_id().is_none()
        && let Some(id) = it.application_id.as_deref().and_then(crate::model::discord_id)
    {
        discord.http.set_application_id(id.into());
    }
    let incoming = Incoming { channel: crate::model::Channel::Discord, user_id: user.clone(), chat_id: user, input };
    let button = it.kind == 3;
    let work = {
        let state = state.clone();
        let id = it.id.clone();
        discord.answers.spawn(async move { chat::handle_update(&state, &incoming, Some(&id), Utc::now()).await })
    };
    let mut work = work;
    // Zero means "always defer" (a deployment whose store is known to be slow).
    let quick =
        if discord.defer_after.is_zero() { None } else { tokio::time::timeout_at(deadline, &mut work).await.ok() };
    match quick.ok_or(()) {
        Ok(done) => {
            let replies = flatten(done);
            let (first, rest) = respond(&discord, button, replies);
            if !rest.is_empty()
                && let Some(token) = it.token.clone()
            {
                let d = discord.clone();
                discord.answers.spawn(async move { follow_up(&d, &token, rest).await });
            }
            Json(serde_json::to_value(first).unwrap_or_default()).into_response()
        }
        Err(_) => {
            // Too slow for Discord's window: say "thinking…" now, edit the answer in later.
            if let Some(token) = it.token.clone() {
                let d = discord.clone();
                discord.answers.spawn(async move {
                    let replies = flatten(work.await);
                    let mut msgs = messages(replies);
                    if msgs.is_empty() {
                        msgs.push(ChatMessage::text("Done.", vec![]));
                    }
                    let first = msgs.remove(0);
                    let edit =
                        EditInteractionResponse::new().embed(d.embed(&first)).components(Discord::components(&first));
                    // An edit may be made again: it leaves one answer however often it lands.
                    let edited = answer_call("editing the deferred answer", Again::AfterTimeout, || {
                        d.http.edit_original_interaction_response(&token, &edit, vec![])
                    })
                    .await;
                    if edited.is_some() {
                        follow_up(&d, &token, msgs).await;
                    }
                });
            }
            // Buttons too get a new ephemeral message rather than an edit of the message they
            // are on (in a shared channel that message is someone else's).
            let defer = CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new().ephemeral(true));
            Json(serde_json::to_value(defer).unwrap_or_default()).into_response()
        }
    }
}

fn flatten(done: Result<Result<Vec<Reply>, crate::store::StoreError>, tokio::task::JoinError>) -> Vec<Reply> {
    match done {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "discord: could not handle an interaction");
            vec![Reply::Send(ChatMessage::text(
                "Something went wrong on our side. Please try again in a minute.",
                vec![],
            ))]
        }
        Err(e) => {
            tracing::error!(error = %e, "discord: handler task failed");
            vec![Reply::Send(ChatMessage::text("Something went wrong on our side.", vec![]))]
        }
    }
}

/// Whether a form's custom id is a question's (`answer`, or `answer:<subject>`), and its subject.
fn form_about(custom_id: &str) -> Option<Option<String>> {
    match custom_id.strip_prefix(ANSWER_FORM)? {
        "" => Some(None),
        rest => rest.strip_prefix(':').filter(|s| !s.is_empty()).map(|s| Some(s.to_string())),
    }
}

/// Messages to show, notices turned into text when nothing else is said.
fn messages(replies: Vec<Reply>) -> Vec<ChatMessage> {
    let mut notice = None;
    let mut out = vec![];
    for r in replies {
        match r {
            Reply::Send(m) | Reply::Edit(m) => out.push(m),
            Reply::Notice(n) => notice = notice.or(Some(n)),
            // No form can follow a deferred answer: say the command instead.
            Reply::Ask { message, typed, .. } => {
                out.push(ChatMessage::text(message.title, vec![format!("Use {typed}.")]))
            }
        }
    }
    if out.is_empty()
        && let Some(n) = notice
    {
        out.push(ChatMessage::text(n, vec![]));
    }
    out
}

/// The interaction's own response (a button's `Edit` updates the message it was on), and
/// what has to follow it.
fn respond(d: &Discord, button: bool, replies: Vec<Reply>) -> (CreateInteractionResponse, Vec<ChatMessage>) {
    if let Some(Reply::Ask { message, label, about, .. }) = replies.iter().find(|r| matches!(r, Reply::Ask { .. })) {
        return (CreateInteractionResponse::Modal(question_form(message, label, about)), vec![]);
    }
    let edit_first = button && matches!(replies.first(), Some(Reply::Edit(_)));
    let mut msgs = messages(replies);
    if msgs.is_empty() {
        return (CreateInteractionResponse::Acknowledge, vec![]);
    }
    let first = msgs.remove(0);
    let r = if edit_first {
        CreateInteractionResponse::UpdateMessage(
            CreateInteractionResponseMessage::new().embed(d.embed(&first)).components(Discord::components(&first)),
        )
    } else {
        CreateInteractionResponse::Message(d.response_message(&first))
    };
    (r, msgs)
}

/// Discord's form for a question: its title (at most 45 characters) and one paragraph field
/// (at most as long as a reason may be), named for what it is about (`answer:V-1`), so that
/// its answer can be matched with the question; a subject too long for Discord's custom id
/// is left out.
fn question_form(message: &ChatMessage, label: &str, about: &str) -> CreateModal {
    let field = CreateInputText::new(InputTextStyle::Paragraph, label, ANSWER_FIELD).max_length(2000);
    let named = format!("{ANSWER_FORM}:{about}");
    let id = if named.chars().count() <= CUSTOM_ID_CHARS { named } else { ANSWER_FORM.to_string() };
    CreateModal::new(id, shortened(&message.title, 45).into_owned()).components(vec![CreateActionRow::InputText(field)])
}

async fn follow_up(d: &Discord, token: &str, msgs: Vec<ChatMessage>) {
    for m in msgs {
        let f = CreateInteractionResponseFollowup::new()
            .embed(d.embed(&m))
            .components(Discord::components(&m))
            .ephemeral(true);
        // A follow-up posted twice shows twice: tried again only when it cannot have landed.
        if answer_call("a follow-up message", Again::OnlyIfRefused, || {
            d.http.create_followup_message(token, &f, vec![])
        })
        .await
        .is_none()
        {
            return;
        }
    }
}

/// How long one call for an interaction's answer may take.
const ANSWER_CALL: Duration = Duration::from_secs(10);
/// Tries of one such call.
const ANSWER_TRIES: u32 = 4;

/// When a call for an interaction's answer is made again.
#[derive(Clone, Copy, PartialEq)]
enum Again {
    /// Also after a try that timed out (an edit: made twice, it leaves one answer).
    AfterTimeout,
    /// Only after Discord said no or could not be reached (a post: one that timed out may
    /// have landed).
    OnlyIfRefused,
}

/// Makes a call for an interaction's answer (an edit, a follow-up), each try bounded by
/// [`ANSWER_CALL`], up to [`ANSWER_TRIES`] times a short while apart: a call refused as not
/// found may have reached Discord before the "thinking…" it answers (both leave at once),
/// and a 5xx, a rate limit or a dropped connection pass. `None`, logged, when it never went.
async fn answer_call<T, F, Fut>(what: &str, again: Again, mut call: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, serenity::Error>>,
{
    let mut wait = Duration::from_millis(250);
    for attempt in 1..=ANSWER_TRIES {
        let last = attempt == ANSWER_TRIES;
        match tokio::time::timeout(ANSWER_CALL, call()).await {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) if !last && passing(&e, again) => {
                tracing::debug!(error = %e, attempt, "discord: {what} failed; trying again");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "discord: {what} failed");
                return None;
            }
            Err(_) if !last && again == Again::AfterTimeout => {
                tracing::debug!(attempt, "discord: {what} timed out; trying again");
            }
            Err(_) => {
                tracing::warn!("discord: {what} had no answer within {ANSWER_CALL:?}");
                return None;
            }
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    None
}

/// A failure that may pass: not found (the interaction not yet known), a rate limit, no
/// connection made; and, for a call that may be made twice, a server error or a connection
/// lost on the way (for a post, those may have landed).
fn passing(e: &serenity::Error, again: Again) -> bool {
    use serenity::http::HttpError;
    let twice_is_harmless = again == Again::AfterTimeout;
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            matches!(r.status_code.as_u16(), 404 | 429) || (twice_is_harmless && r.status_code.is_server_error())
        }
        serenity::Error::Http(HttpError::Request(r)) => twice_is_harmless || r.is_connect(),
        serenity::Error::Io(_) => twice_is_harmless,
        _ => false,
    }
}
