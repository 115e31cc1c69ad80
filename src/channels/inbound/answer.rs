//! The answer to a contact's reply: its commands run and its attachments kept inside the
//! reply's unit, then one email composed (threaded under the reply) and queued with the
//! record that the reply was seen.

use super::*;

/// Runs a contact's reply inside `unit`: its commands, its attachments, the answer queued
/// and the message recorded. `None` when another process recorded it first.
#[allow(clippy::too_many_arguments)]
pub(super) async fn answer_reply(
    state: &Services,
    unit: &mut Unit,
    msg: &mail_parser::Message<'_>,
    message_id: &str,
    row: &OutboxRow,
    contact: &ContactRow,
    actor: &Actor,
    body: &mime::Body,
    now: DateTime<Utc>,
) -> Result<Option<Disposition>, InboundError> {
    let text = fresh_text(&body.text);
    let lines = read_commands(&text);
    // The `mailto:` of a digest's or alert's List-Unsubscribe: the subject says it, the body
    // says nothing. It is done without an answer (nobody waits for one).
    let asked_to_stop = lines.is_empty() && msg.subject().is_some_and(|s| s.trim().eq_ignore_ascii_case("unsubscribe"));
    if let Some(what) = crate::model::Stoppable::of_kind(row.message.kind).filter(|_| asked_to_stop) {
        let tx = unit.tx().await?;
        crate::actions::unsubscribe::unsubscribe_in(state, tx, contact, what, "email", now).await?;
        ledger::clear_bounces(tx, &contact.id, now).await?;
        let d = Disposition::Processed(format!("unsubscribed from {} emails", row.message.kind));
        let (kind, reason) = d.parts();
        if !ledger::record(tx, message_id, Some(&contact.id), kind, reason, None, now).await? {
            return Ok(None);
        }
        return Ok(Some(d));
    }
    let ctx = context_of(row, state, now);
    // A genuine reply proves the address works: its suspension is lifted before the commands
    // run, so that RESET sends its link rather than answering that email is suspended.
    ledger::clear_bounces(unit.tx().await?, &contact.id, now).await?;
    // Answered in the order the reply gives them, a line that is no command in its place.
    let mut answers: Vec<Answer> = Vec::new();
    for line in &lines {
        match line {
            Ok(c) => {
                answers.push(run(state, unit, actor, c, &ctx, now).await?);
                unit.step("inbound:after-command")?;
            }
            Err(e) => answers.push(Answer::error(&e.command, e.to_string())),
        }
    }
    // A command written wrong is answered with what is wrong and, once, the help text.
    let written_wrong = lines.iter().any(|l| matches!(l, Err(e) if e.command != WHOLE_REPLY));
    if written_wrong && !lines.iter().any(|l| matches!(l, Ok(Command::Help))) {
        answers.push(run(state, unit, actor, &Command::Help, &ctx, now).await?);
    }
    let stored = store_attachments(state, unit, msg, actor, &ctx, now).await?;
    if let Some(a) = stored {
        answers.push(a);
        unit.step("inbound:after-attachments")?;
    }
    if answers.is_empty() && body.damaged {
        answers.push(Answer::error(
            "",
            "The text of your reply arrived damaged (its encoding could not be read): write the command again at the top of a new reply.",
        ));
    } else if answers.is_empty() {
        let mut a = Answer::error("", "No command found at the top of your reply.");
        a.sections.insert(
            0,
            crate::actions::enquiry::Section {
                lines: vec![format!(
                    "Write one command per line at the very top, for example ITEMS or {}.",
                    if actor.role.may_send(crate::model::CommandWord::Approve) { "APPROVE V-1001" } else { "HELP" }
                )],
                ..Default::default()
            },
        );
        answers.push(a);
        answers.push(run(state, unit, actor, &Command::Help, &ctx, now).await?);
    }
    // What was done, as staff read it (the inbound list, a held reply released): a command
    // not done, or done in part, is followed by the answer's own words, as the client read
    // them.
    let summary: Vec<String> = answers
        .iter()
        .map(|a| match (a.command.is_empty(), a.ok) {
            (true, _) => "no command".into(),
            (false, true) => a.command.clone(),
            (false, false) => format!("{}: {}", a.command, crate::model::shown(&a.refusal(), 200)),
        })
        .collect();
    let d = Disposition::Processed(summary.join("; "));
    queue_answer(state, unit, msg, message_id, contact, &answers, d, now).await
}

/// Queues the answer to a contact's reply and records the reply as `d`, inside `unit`.
/// `None` when another process recorded it first.
#[allow(clippy::too_many_arguments)]
pub(super) async fn queue_answer(
    state: &Services,
    unit: &mut Unit,
    msg: &mail_parser::Message<'_>,
    message_id: &str,
    contact: &ContactRow,
    answers: &[Answer],
    d: Disposition,
    now: DateTime<Utc>,
) -> Result<Option<Disposition>, InboundError> {
    let payload = compose_answer(state, contact, msg, answers, now).map_err(|e| {
        tracing::error!(error = %e, "the answer to a reply could not be rendered; the reply will be retried");
        InboundError::Internal(format!("answer could not be written: {e}"))
    })?;
    let tx = unit.tx().await?;
    outbox::insert_message(
        tx,
        &payload.queued(
            Some(&contact.id),
            crate::model::MessageKind::Reply,
            answer_key(message_id),
            Some(state.signer.new_reply_token()),
            now,
        ),
        now,
    )
    .await?;
    unit.step("inbound:after-answer")?;
    let tx = unit.tx().await?;
    ledger::clear_bounces(tx, &contact.id, now).await?;
    let (kind, reason) = d.parts();
    if !ledger::record(tx, message_id, Some(&contact.id), kind, reason, None, now).await? {
        return Ok(None);
    }
    unit.step("inbound:after-record")?;
    Ok(Some(d))
}

fn compose_answer(
    state: &Services,
    contact: &ContactRow,
    msg: &mail_parser::Message<'_>,
    answers: &[Answer],
    _now: DateTime<Utc>,
) -> Result<EmailPayload, String> {
    // The client's subject as one line of at most 200 characters (it may come encoded, of
    // any length and holding anything).
    let original = crate::model::shown(msg.subject().unwrap_or("your message").trim(), 200);
    let subject = if original.to_ascii_lowercase().starts_with("re:") { original } else { format!("Re: {original}") };
    // The thread so far: the client's References, else what it replied to, then its message;
    // each id as one plain token (the last 20), and only ids that can be written back as they
    // came (one known by its hash is not).
    let earlier = msg.header_raw("References").or_else(|| msg.header_raw("In-Reply-To")).unwrap_or("");
    let ours = msg.message_id().filter(|id| threadable(id)).map(|id| format!("<{id}>"));
    let mut thread: Vec<String> = earlier
        .split_whitespace()
        .filter_map(|t| t.strip_prefix('<')?.strip_suffix('>').filter(|id| threadable(id)).map(|id| format!("<{id}>")))
        .collect();
    thread.drain(..thread.len().saturating_sub(20));
    thread.extend(ours.clone());
    let b = &state.config.branding;
    let ctx = serde_json::json!({
        "brand": crate::messages::Brand::of(b),
        "subject": subject,
        "contact": {"name": contact.name, "email": contact.email, "client_name": contact.client_name},
        "answers": answers,
        "texts": answers.iter().map(|a| a.to_text()).collect::<Vec<_>>(),
    });
    let render = |name: &str| {
        if state.faults.fires("render:answer") {
            return Err("fault injected at render:answer".to_string());
        }
        state.templates.get_template(name).and_then(|t| t.render(&ctx)).map_err(|e| format!("{e:#}"))
    };
    Ok(EmailPayload {
        to_name: contact.name.clone(),
        to: contact.email.clone(),
        subject,
        text: render("email/reply.txt.j2")?,
        html: render("email/reply.html.j2")?,
        message_id: new_message_id(&state.config),
        in_reply_to: ours,
        references: (!thread.is_empty()).then(|| thread.join(" ")),
        item_keys: vec![],
    })
}
