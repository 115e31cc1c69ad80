//! `/staff/outbox`: messages by status, channel, kind, contact, client and date; a message's
//! page with its body as sent (HTML in a sandboxed frame), headers and failed attempts;
//! re-queue a failed, dead or dropped message, drop a waiting one or set a dead one aside.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse};
use chrono::{DateTime, Datelike, Utc};
use serde_json::json;

use super::{Staff, page, without_link_tokens, without_tokens};
use crate::model::{MessageKind, OutboxStatus, Outlet};
use crate::outbox::{Rendered, render};
use crate::portal::{CsrfForm, FormData, HoldsCsrf as _, Note, Params, see_other};
use crate::state::AppState;
use crate::store::console::{OutboxFilter, list_outbox};
use crate::store::outbox as ob;
use crate::web::HttpError;
use crate::web::Reply;

const PAGE: i64 = 100;
/// The named state a filter field chooses, if any.
fn one_of<T>(q: &FormData, name: &str, parse: fn(&str) -> Option<T>, names: &[&str]) -> Result<Option<T>, HttpError> {
    match q.get(name).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse(v).map(Some).ok_or_else(|| {
            HttpError::BadRequest(format!("{name}: {} is not one of {}", crate::model::quoted(v), names.join(", ")))
        }),
    }
}

fn day_field(q: &FormData, name: &str, end: bool) -> Result<Option<DateTime<Utc>>, HttpError> {
    match q.get(name).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => {
            let d = crate::model::dates::parse_date(v).map_err(|e| HttpError::BadRequest(format!("{name}: {e}")))?;
            // Until a day is before the start of the next. After the last day a time can be
            // stored as (9999-12-31) there is no bound: a five-digit year would sort before
            // every stored time.
            let d = match (end, d.succ_opt()) {
                (false, _) => d,
                (true, Some(next)) if next.year() <= 9999 => next,
                (true, _) => return Ok(None),
            };
            Ok(Some(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()))
        }
    }
}

pub async fn list(State(state): State<AppState>, staff: Staff, Params(q): Params<FormData>) -> Reply {
    let filter = OutboxFilter {
        status: one_of(&q, "status", OutboxStatus::parse, OutboxStatus::NAMES)?,
        channel: one_of(&q, "channel", Outlet::parse, Outlet::NAMES)?,
        kind: one_of(&q, "kind", MessageKind::parse, MessageKind::NAMES)?,
        contact_id: q.id("contact")?,
        client_id: q.id("client")?,
        from: day_field(&q, "from", false)?,
        until: day_field(&q, "until", true)?,
    };
    if let (Some(from), Some(until)) = (filter.from, filter.until)
        && until <= from
    {
        return Err(HttpError::BadRequest("until: a day before from; give one on or after it".into()));
    }
    let page_no = q.page()?;
    let mut rows = list_outbox(&state.db, &filter, PAGE + 1, (page_no - 1) * PAGE).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    // Nothing found for an id that names nothing is a mistyped id, said as one rather than
    // shown as "no messages" (a removed contact's messages still list by its contact id; a
    // client's are its contacts' as they are now, so not a removed contact's).
    if rows.is_empty() {
        if let Some(client) = &filter.client_id {
            super::client_named(&state, client).await?;
        }
        if let Some(contact) = &filter.contact_id {
            match crate::store::contacts::get_contact(&state.db, contact).await {
                Err(crate::store::StoreError::NotFound) => {
                    return Err(HttpError::BadRequest(format!(
                        "contact: no contact {}",
                        crate::model::quoted(contact)
                    )));
                }
                other => drop(other?),
            }
        }
    }
    // An answer's subject repeats the client's ("Re: …"), which may hold a link they quoted;
    // a server's refusal may repeat the message's bounce address (`bounce+TOKEN@…`).
    for r in &mut rows {
        r.message.subject = without_tokens(&r.message.subject);
        r.last_error = r.last_error.as_deref().map(without_tokens);
    }
    let kept: Vec<(String, String)> =
        q.0.iter().filter(|(k, v)| k != "page" && k != "note" && k != "ns" && !v.is_empty()).cloned().collect();
    let link = |p: i64| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &kept {
            s.append_pair(k, v);
        }
        s.append_pair("page", &p.to_string());
        s.finish()
    };
    page(
        &state,
        Some(&staff),
        "outbox",
        json!({
            "rows": rows, "statuses": OutboxStatus::NAMES, "channels": Outlet::NAMES, "kinds": MessageKind::NAMES,
            "f": {"status": filter.status, "channel": filter.channel, "kind": filter.kind, "contact": filter.contact_id,
                  "client": filter.client_id, "from": q.get("from"), "until": q.get("until")},
            "page": page_no, "prev": (page_no > 1).then(|| link(page_no - 1)), "next": more.then(|| link(page_no + 1)),
            "note": Note::of(&q).verified(&state, staff.session_key()),
        }),
    )
}

/// A message as the console shows it: as rendered, with its signed links' tokens hidden (and,
/// in its headers and text, which may repeat what a client wrote, every token-shaped word;
/// the HTML keeps its layout's long names).
async fn shown(state: &AppState, row: &ob::OutboxRow) -> Result<Rendered, HttpError> {
    Ok(match render(state, row, Utc::now()).await? {
        Rendered::Email { headers, text, html } => Rendered::Email {
            headers: without_tokens(&headers),
            text: without_tokens(&text),
            html: without_link_tokens(&html),
        },
        Rendered::Chat { title, lines } => {
            Rendered::Chat { title, lines: lines.iter().map(|l| without_link_tokens(l)).collect() }
        }
        other => other,
    })
}

/// Message `id`'s status now, when `done` says the action asked for has been done to it.
async fn status_now(
    state: &AppState,
    id: i64,
    done: impl Fn(OutboxStatus) -> bool,
) -> Result<Option<OutboxStatus>, HttpError> {
    Ok(ob::get_message(&state.db, id).await?.map(|r| r.status).filter(|s| done(*s)))
}

async fn row_of(state: &AppState, id: &str) -> Result<ob::OutboxRow, HttpError> {
    let id: i64 = id.parse().map_err(|_| HttpError::NotFound)?;
    ob::get_message(&state.db, id).await?.ok_or(HttpError::NotFound)
}

pub async fn message(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Params(q): Params<FormData>,
) -> Reply {
    let mut row = row_of(&state, &id).await?;
    let rendered = shown(&state, &row).await?;
    row.message.subject = without_tokens(&row.message.subject);
    // A server's words may repeat the bounce address, whose token would let whoever reads
    // it report bounces for the message.
    row.last_error = row.last_error.as_deref().map(without_tokens);
    let mut attempts = ob::attempts_of(&state.db, row.id).await?;
    for a in &mut attempts {
        a.error = without_tokens(&a.error);
    }
    // A push of a banner retracted or expired since cannot go again: said whatever its state.
    let now = Utc::now();
    let banner_gone =
        row.message.kind == crate::model::MessageKind::Banner && ob::banner_gone_for(&state.db, row.id, now).await?;
    // Queuing again is offered by the rule that takes it: a failed, dead or dropped message
    // that would go (not one whose link expired, whose content was cleared, whose contact
    // left...); why not is said.
    let requeueable = OutboxStatus::REQUEUEABLE.contains(&row.status);
    let why_not = if requeueable { crate::actions::outbox::would_not_go(&state, &row, now).await? } else { None };
    page(
        &state,
        Some(&staff),
        "message",
        json!({
            "m": row, "rendered": rendered, "attempts": attempts, "banner_gone": banner_gone,
            "why_not": why_not,
            "next_try": row.status.awaits_a_try().then_some(row.message.next_attempt_at),
            "may_requeue": requeueable && why_not.is_none(),
            "may_drop": OutboxStatus::STAFF_DROPPABLE.contains(&row.status),
            "cleared_after": state.config.sent_content_kept_days(),
            "note": Note::of(&q).verified(&state, staff.session_key()),
        }),
    )
}

/// `GET /staff/outbox/{id}/body`: an email's HTML body alone, for the message page's frame.
/// It may be framed by the console only, runs no script and loads nothing but pictures.
pub async fn body(State(state): State<AppState>, _staff: Staff, Path(id): Path<String>) -> Reply {
    let row = row_of(&state, &id).await?;
    let html = match shown(&state, &row).await? {
        Rendered::Email { html, .. } => html,
        _ => return Err(HttpError::NotFound),
    };
    let mut resp = Html(html).into_response();
    let h = resp.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline'; frame-ancestors 'self'",
        ),
    );
    Ok(resp)
}

/// `POST /staff/outbox/{id}`: `action=requeue` or `action=drop`.
pub async fn act(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(staff, form): CsrfForm<Staff>,
) -> Reply {
    let row = row_of(&state, &id).await?;
    let now = Utc::now();
    let back = format!("/staff/outbox/{}", row.id);
    // Found as the action would leave it (a second click, a colleague, a page left open),
    // before it or by its refusal: said on the page, not as a failure.
    let queued = |s: OutboxStatus| matches!(s, OutboxStatus::Queued | OutboxStatus::Sending | OutboxStatus::Sent);
    let dropped = |s: OutboxStatus| s == OutboxStatus::Dropped;
    let done_already = |status: OutboxStatus| {
        let note = format!("Nothing more to do: message {} is {status} now.", row.id);
        Ok(see_other(&state, staff.session_key(), &back, &note))
    };
    match form.get("action") {
        Some("requeue") if queued(row.status) => done_already(row.status),
        Some("drop") if dropped(row.status) => done_already(row.status),
        Some("requeue") => {
            // Its banner gone, its contact no longer active…: said by the action's refusal.
            let at = match crate::actions::outbox::requeue(&state, row.id, now).await {
                Ok(at) => at,
                Err(e) => return status_now(&state, row.id, queued).await?.map_or(Err(e.into()), done_already),
            };
            state.wake_dispatch.notify_waiters();
            staff.record(&state, "re-queued message", &row.id.to_string()).await;
            Ok(see_other(&state, staff.session_key(), &back, &crate::actions::outbox::queued_again(at, now)))
        }
        Some("drop") => {
            let was = match crate::actions::outbox::drop_message(&state, row.id, &staff.email, now).await {
                Ok(was) => was,
                Err(e) => return status_now(&state, row.id, dropped).await?.map_or(Err(e.into()), done_already),
            };
            staff.record(&state, "dropped message", &row.id.to_string()).await;
            Ok(see_other(&state, staff.session_key(), &back, crate::actions::outbox::dropped(was)))
        }
        None | Some("") => Err(HttpError::Invalid("action: missing: requeue or drop".into())),
        Some(other) => {
            Err(HttpError::Invalid(format!("action: {} is not requeue or drop", crate::model::quoted(other))))
        }
    }
}
