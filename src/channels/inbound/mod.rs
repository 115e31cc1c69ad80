//! Email in: one raw RFC 5322 message → what it asks, done, and answered. Whatever the way
//! in (MTA pipe, HTTP, IMAP), every message goes through [`handle`].
//! Here the pipeline of one message in order (refuse, classify, authenticate, act); MIME and
//! text, quotes, commands, bounces, attachments and the answer are modules of their own.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

mod answer;
mod attachments;
mod auth_results;
mod backlog;
mod bounce;
mod commands;
mod mime;
mod policy;
mod text;

use answer::{answer_reply, queue_answer};
use attachments::store_attachments;
pub use backlog::{Backlog, BacklogError, handle_backlog};
use bounce::bounce;
pub use commands::MOST_COMMANDS;
use commands::{WHOLE_REPLY, read_commands};
use policy::{addresses, auth_failure, automatic, is_report, token_for};
pub use text::{fresh_text, html_to_text};

use crate::actions::commands::Command;
use crate::actions::enquiry::{Answer, Context, run};
use crate::actions::items::Category;
use crate::actions::{Actor, Unit};
use crate::channels::email::{EmailPayload, new_message_id};
use crate::model::{InboundOutcome, MessageKind};
use crate::services::Services;
use crate::store::contacts::{ContactRow, active_contact};
use crate::store::outbox::AlertPayload;
use crate::store::outbox::{self, OutboxRow};
use crate::store::{StoreError, inbound as ledger};

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "disposition", content = "reason")]
pub enum Disposition {
    /// Commands were read and answered.
    Processed(String),
    /// A bounce (DSN) was recorded against the contact.
    Bounce(String),
    /// Not acted on and not answered: auto-reply, unknown sender, loop, …
    Ignored(String),
    /// Authentication failed: kept for staff, nothing done.
    Held(String),
    /// Seen before (same Message-ID).
    Duplicate(String),
}

impl Disposition {
    /// A message whose Message-ID was recorded before: nothing of it is done again.
    fn duplicate(message_id: &str) -> Disposition {
        Disposition::Duplicate(format!("Message-ID {message_id} was processed before"))
    }

    fn parts(&self) -> (InboundOutcome, &str) {
        match self {
            Disposition::Processed(r) => (InboundOutcome::Processed, r),
            Disposition::Bounce(r) => (InboundOutcome::Bounce, r),
            Disposition::Ignored(r) => (InboundOutcome::Ignored, r),
            Disposition::Held(r) => (InboundOutcome::Held, r),
            Disposition::Duplicate(r) => (InboundOutcome::Duplicate, r),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// `size`: as much of it as was read, which may stop just past `max`; not said.
    #[error("message too large: more than inbound.max_bytes ({max} bytes)")]
    TooLarge { size: usize, max: u64 },
    #[error("not an email message: {0}")]
    Malformed(String),
    /// cport's own fault (an answer template that does not render): the message is fine
    /// and should be delivered again once it is mended, never bounced.
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl InboundError {
    /// Whether the sender should try again later (the MTA's exit 75, HTTP 503): the store
    /// or cport itself failed, not the message.
    pub fn is_temporary(&self) -> bool {
        match self {
            // Text the store cannot hold is the message's doing: trying again cannot help.
            InboundError::Store(StoreError::Unstorable) => false,
            InboundError::Store(_) | InboundError::Internal(_) => true,
            InboundError::TooLarge { .. } | InboundError::Malformed(_) => false,
        }
    }
}

/// What releasing a held message would run, read as [`handle`] reads it (the fresh text of
/// its first readable body, decoded): each command as understood, or what is wrong with its
/// line; and how many files it attaches. For staff deciding whether to release it.
pub fn commands_in(raw: &[u8]) -> Result<(Vec<String>, usize), String> {
    let msg = mime::parse(raw)?;
    let body = mime::body(&msg);
    let lines = read_commands(&fresh_text(&body.text))
        .into_iter()
        .map(|l| match l {
            Ok(c) => crate::actions::enquiry::command_name(&c),
            Err(e) => e.to_string(),
        })
        .collect();
    Ok((lines, msg.attachments().filter(|a| !attachments::is_signature(a)).count()))
}

fn context_of(row: &OutboxRow, state: &Services, now: DateTime<Utc>) -> Context {
    let keys: Vec<String> = match row.message.kind {
        MessageKind::Alert => {
            serde_json::from_str::<AlertPayload>(&row.message.payload).map(|p| p.items).unwrap_or_default()
        }
        _ => serde_json::from_str::<EmailPayload>(&row.message.payload).map(|p| p.item_keys).unwrap_or_default(),
    };
    let item = match keys.as_slice() {
        [one] => crate::model::items::ActionItem::key_parts(one).map(|(c, id)| (c, id.to_string())),
        _ => None,
    };
    // Two requirements of one job are two items with one key: still one job.
    let art_jobs: std::collections::BTreeSet<&str> = keys
        .iter()
        .filter_map(|k| crate::model::items::ActionItem::key_parts(k))
        .filter_map(|(c, job)| (c == Category::AwaitingArt).then_some(job))
        .collect();
    let art_job = match art_jobs.len() {
        1 => art_jobs.first().map(|j| j.to_string()),
        _ => None,
    };
    let age = now - row.created_at;
    let may_decide = age <= Duration::days(i64::from(state.config.digest.link_ttl_days));
    Context { item, art_job, may_decide, list_limit: 0 }
}

/// Processes one raw message.
pub async fn handle(state: &Services, raw: &[u8], now: DateTime<Utc>) -> Result<Disposition, InboundError> {
    guarded(handle_as(state, raw, None, None, now)).await
}

/// A message too large to read (`size` bytes, over `inbound.max_bytes`), known by its header
/// alone (a mailbox that gives the header apart, as IMAP does): checked as any reply is (its
/// sender, reply address and authentication), and, when it is a contact's reply, answered
/// that nothing in it was read, so that the contact is not left waiting on it. Anything else
/// is recorded as [`handle`] records it.
pub async fn handle_unread(
    state: &Services,
    header: &[u8],
    size: u64,
    now: DateTime<Utc>,
) -> Result<Disposition, InboundError> {
    let mut head = header.to_vec();
    // The header alone, ended as a message's header is, with no body.
    while head.ends_with(b"\r\n") || head.ends_with(b"\n") {
        head.pop();
    }
    head.extend_from_slice(b"\r\n\r\n");
    guarded(handle_as(state, &head, None, Some(size), now)).await
}

/// Records a message refused unread (not mail, too large with no size told first, text the
/// store cannot hold) among inbound mail, with why, for a route whose sender is told nothing
/// (IMAP: the MTA pipe's refusal bounces, the HTTP route's is answered): staff see it, where
/// it would otherwise only be flagged seen in the mailbox. Known by a hash of its bytes, so
/// one met again is recorded once; its first 64 KB kept, NUL-free, for the console to show.
pub async fn record_refused(
    state: &Services,
    raw: &[u8],
    why: &InboundError,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let id = hashed_id(raw);
    let kept = nul_free(&raw[..raw.len().min(64 * 1024)]).into_owned();
    let reason = format!("refused unread: {why}");
    state
        .db
        .in_transaction(async |tx| {
            ledger::record(tx, &id, None, InboundOutcome::Ignored, &reason, Some(&kept), now).await
        })
        .await?;
    Ok(())
}

/// Counts a message refused unread (too large, not mail, cport failed on it), whichever
/// route refused it.
pub fn count_refused() {
    metrics::counter!("cport_inbound_total", "disposition" => "refused").increment(1);
}

/// Runs one message's handling with its panics caught. A message that makes a parser (or
/// cport) panic is refused as unreadable, so the worker that read it goes on to the next and
/// a mailbox is not stuck behind it; the panic hook has logged and counted the panic, and an
/// open transaction rolled back as it was dropped. Every refusal is counted.
async fn guarded(
    work: impl std::future::Future<Output = Result<Disposition, InboundError>>,
) -> Result<Disposition, InboundError> {
    use futures::FutureExt;
    let out = std::panic::AssertUnwindSafe(work).catch_unwind().await.unwrap_or_else(|panic| {
        let why = crate::supervise::panic_text(&*panic);
        Err(InboundError::Malformed(format!("it could not be read (cport failed on it: {why})")))
    });
    if out.as_ref().is_err_and(|e| !e.is_temporary()) {
        count_refused();
    }
    out
}

/// Processes a message held for failed authentication as if it had passed: staff looked at
/// it and released it. `Ok(None)` when no such message is held (released or discarded
/// already).
pub async fn release(
    state: &Services,
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Disposition>, InboundError> {
    let Some((_, raw)) = ledger::get_held(&state.db, message_id).await? else {
        return Ok(None);
    };
    guarded(handle_as(state, &raw, Some(message_id), None, now)).await.map(Some)
}

/// [`handle`]; with `released`, the held message of that id, taken without its
/// authentication check; with `unread`, the header of a message of that size, too large to read.
async fn handle_as(
    state: &Services,
    raw: &[u8],
    released: Option<&str>,
    unread: Option<u64>,
    now: DateTime<Utc>,
) -> Result<Disposition, InboundError> {
    let max = state.config.inbound.max_bytes;
    if raw.len() as u64 > max {
        return Err(InboundError::TooLarge { size: raw.len(), max });
    }
    let raw = &nul_free(raw)[..];
    state.faults.panic_if_armed("inbound:parse");
    let msg = mime::parse(raw).map_err(InboundError::Malformed)?;
    // A released message keeps the id it was held under (one without a Message-ID is known by
    // a hash of its bytes, and the held copy's bytes may differ from the original's).
    let message_id = match released {
        Some(id) => id.to_string(),
        None => known_id(&msg, raw),
    };
    let released = released.is_some();
    if !released && ledger::seen(&state.db, &message_id).await? {
        return Ok(Disposition::duplicate(&message_id));
    }
    let outcome = decide(state, &msg, raw, &message_id, released, unread, now).await?;
    let (disposition, reason) = outcome.0.parts();
    tracing::info!(message_id = %message_id, disposition = disposition.as_str(), reason, "inbound email");
    metrics::counter!("cport_inbound_total", "disposition" => disposition.as_str()).increment(1);
    Ok(outcome.0)
}

/// Decides and records. Returns the disposition (and, inside, queues any answer).
#[allow(clippy::too_many_arguments)]
async fn decide(
    state: &Services,
    msg: &mail_parser::Message<'_>,
    raw: &[u8],
    message_id: &str,
    released: bool,
    unread: Option<u64>,
    now: DateTime<Utc>,
) -> Result<(Disposition,), InboundError> {
    let domain = state.config.email.reply_domain.clone();
    let from = addresses(msg.from()).into_iter().next().unwrap_or_default();
    let record = |d: Disposition, contact: Option<String>, keep_raw: bool| {
        let kept = keep_raw.then_some(raw);
        async move {
            let mut tx = state.db.begin().await?;
            let (kind, reason) = d.parts();
            // Not recorded: another took the message a moment before (a release racing a
            // release or a discard, a copy arriving twice at once).
            if !ledger::record(&mut tx, message_id, contact.as_deref(), kind, reason, kept, now).await? {
                tx.rollback().await?;
                return Ok::<_, StoreError>((Disposition::duplicate(message_id),));
            }
            tx.commit().await?;
            Ok::<_, StoreError>((d,))
        }
    };

    // Bounces first, and only delivery reports count: a vacation reply sent to the envelope
    // sender (bounce+TOKEN@) or with a null sender is an automatic message, not a bounce.
    if is_report(msg) {
        // Reports go to the envelope sender, `bounce+TOKEN@`; the reply address is printed in
        // every message, so a report sent there is not taken as one.
        if let Some(token) = token_for(msg, "bounce", &domain) {
            return Ok(bounce(state, raw, &token, message_id, now).await?);
        }
        return Ok(record(Disposition::Ignored("a delivery report for no message of ours".into()), None, false).await?);
    }
    if token_for(msg, "bounce", &domain).is_some() || msg.header_raw("Return-Path").is_some_and(|r| r.trim() == "<>") {
        return Ok(
            record(Disposition::Ignored("an automatic message to the bounce address".into()), None, false).await?
        );
    }
    if let Some(why) = automatic(msg) {
        return Ok(record(Disposition::Ignored(format!("automatic message ({why})")), None, false).await?);
    }
    if from.is_empty() {
        return Ok(record(Disposition::Ignored("no sender address in From".into()), None, false).await?);
    }
    // A reply is one person's: a From naming several cannot be told to be the contact's alone,
    // and of two From headers a DMARC check judges the first while the last is read here.
    let from_headers = msg.headers().iter().filter(|h| h.name == mail_parser::HeaderName::From).count();
    if addresses(msg.from()).len() > 1 || from_headers > 1 {
        return Ok(record(
            Disposition::Ignored("more than one sender in From; a reply comes from one person".into()),
            None,
            false,
        )
        .await?);
    }
    if state.config.email.is_own_address(&from) {
        return Ok(record(Disposition::Ignored("from cport's own address (mail loop)".into()), None, false).await?);
    }
    let Some(token) = token_for(msg, "reply", &domain).and_then(|t| state.signer.check_reply_token(&t)) else {
        return Ok(record(
            Disposition::Ignored(format!(
                "no valid reply token; sender {} not answered",
                crate::model::shown(&from, 254)
            )),
            None,
            false,
        )
        .await?);
    };
    let Some(row) = outbox::find_by_reply_token(&state.db, &token).await? else {
        return Ok(record(Disposition::Ignored("reply token matches no message".into()), None, false).await?);
    };
    let Some(contact_id) = row.message.contact_id.clone() else {
        return Ok(record(Disposition::Ignored("reply to a message with no contact".into()), None, false).await?);
    };
    let Some(contact) = active_contact(&state.db, &contact_id).await? else {
        return Ok(record(Disposition::Ignored("the contact is no longer active".into()), None, false).await?);
    };
    // A message sent before the contact's record was made went to a record TOT removed since,
    // whose id this one took: its reply address is not this contact's (as a link is not).
    // A message's time is its pass's start, which may come a little before a record that pass
    // found (a contact synced while the pass ran): only one older by more than that counts.
    const PASS_SLACK: chrono::Duration = chrono::Duration::minutes(10);
    if contact.created_at.is_some_and(|made| row.created_at + PASS_SLACK < made) {
        let why = "reply to a message sent to a contact since removed";
        return Ok(record(Disposition::Ignored(why.into()), None, false).await?);
    }
    if !from.eq_ignore_ascii_case(&contact.email) {
        return Ok(record(
            Disposition::Ignored(format!(
                "sender {} is not the contact the token was sent to; not answered",
                crate::model::shown(&from, 254)
            )),
            Some(contact.id.clone()),
            false,
        )
        .await?);
    }
    if let Some(why) = auth_failure(msg, &from, &state.config.inbound.trusted_authserv_ids).filter(|_| !released) {
        // Its header alone was read: there is nothing for staff to release, so it is not held.
        if let Some(size) = unread {
            let why = format!(
                "not read: {size} bytes, more than inbound.max_bytes, and its sender could not be proven ({why})"
            );
            return Ok(record(Disposition::Ignored(why), Some(contact.id.clone()), false).await?);
        }
        return Ok(
            record(Disposition::Held(format!("authentication failed: {why}")), Some(contact.id.clone()), true).await?
        );
    }

    // A real reply from the contact.
    let actor = Actor::new(contact.clone(), crate::model::Channel::Email);
    // Everything this reply changes, its answer and the record that it was seen are one
    // transaction: a crash at any point leaves all of it or none (the MTA then retries).
    let mut unit = Unit::new(state);
    let done = match unread {
        Some(size) => {
            let d = Disposition::Processed(format!(
                "not read: {} bytes, more than inbound.max_bytes; the sender was told",
                size
            ));
            let answer = Answer::error(
                "",
                format!(
                    "Your reply was too large to read ({}; the most is {}), so nothing in it was done. \
                     Send files on the portal (reply LINK for a link), and commands in a reply without them.",
                    crate::model::size_text(size),
                    crate::model::size_text(state.config.inbound.max_bytes)
                ),
            );
            queue_answer(state, &mut unit, msg, message_id, &contact, &[answer], d, now).await
        }
        None => {
            let mut body = mime::body(msg);
            // A NUL decoded from an encoding (`=00`, base64) is shown as the raw one is (see
            // [`nul_free`]).
            body.text = body.text.replace('\0', "\u{FFFD}");
            answer_reply(state, &mut unit, msg, message_id, &row, &contact, &actor, &body, now).await
        }
    };
    match done {
        Ok(Some(d)) => {
            unit.commit().await?;
            state.wake_dispatch.notify_waiters();
            Ok((d,))
        }
        Ok(None) => {
            unit.rollback().await?;
            Ok((Disposition::duplicate(message_id),))
        }
        Err(e) => {
            unit.rollback().await?;
            Err(e)
        }
    }
}

/// A NUL byte has no place in a message as mail carries it (RFC 5322 2.3; binary parts
/// travel encoded), and PostgreSQL cannot keep one in text, not even in a Message-ID or a
/// held copy: each is written as U+FFFD, so such a message gets an outcome instead of a retry
/// for days. Not dropped: `APPROVE V-10<NUL>03` would then act on V-1003, which the client
/// did not write; as it is, it names no visual.
fn nul_free(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match raw.contains(&0) {
        true => raw.split(|&b| b == 0).collect::<Vec<_>>().join("\u{FFFD}".as_bytes()).into(),
        false => raw.into(),
    }
}

/// The id a message is known by: its Message-ID, or (none, one too long for an index, or
/// one holding control characters) a hash.
fn known_id(msg: &mail_parser::Message<'_>, raw: &[u8]) -> String {
    match msg.message_id() {
        Some(id) if threadable(id) => id.to_string(),
        Some(id) => hashed_id(id.as_bytes()),
        None => hashed_id(raw),
    }
}

/// An id made from `bytes` (a hash), for a message whose own cannot be used.
fn hashed_id(bytes: &[u8]) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(bytes);
    format!("sha256:{}", h.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>())
}

/// The outbox key the answer to a reply is queued under.
fn answer_key(message_id: &str) -> String {
    format!("reply:{message_id}")
}

/// The outbox key of the answer to `raw`, once [`handle`] has processed it: the MTA pipe
/// sends that one message at once and leaves the rest to the server's senders.
pub fn answer_key_of(raw: &[u8]) -> Option<String> {
    let raw = nul_free(raw);
    mime::parse(&raw).ok().map(|msg| answer_key(&known_id(&msg, &raw)))
}

/// A Message-ID that can be kept and written back into threading headers as it came: visible
/// ASCII, no angle brackets, at most 500 bytes (an index entry PostgreSQL can hold).
fn threadable(id: &str) -> bool {
    !id.is_empty() && id.len() <= 500 && id.bytes().all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}
