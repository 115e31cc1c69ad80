//! `/staff/held`: inbound mail held because its authentication failed, as received, with its
//! Authentication-Results; release it (processed now, as if it had passed) or discard it.

use axum::extract::State;
use chrono::Utc;
use serde_json::json;

use super::{Staff, page};
use crate::portal::{CsrfForm, FormData, HoldsCsrf as _, Note, Params, see_other};
use crate::state::AppState;
use crate::store::inbound;
use crate::web::HttpError;
use crate::web::Reply;

/// How much of a message the page shows, in characters (the Authentication-Results are read
/// from this part: a header block longer than this is not looked at further).
const SHOWN: i64 = 64 * 1024;

/// Held messages one page shows.
const PAGE: i64 = 50;

/// The message's `Authentication-Results` headers, unfolded.
fn auth_results(raw: &str) -> Vec<String> {
    let head = raw.split("\r\n\r\n").next().unwrap_or("").split("\n\n").next().unwrap_or("");
    let mut out: Vec<String> = vec![];
    let mut current: Option<String> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(c) = current.as_mut() {
                c.push(' ');
                c.push_str(line.trim());
            }
            continue;
        }
        out.extend(current.take());
        const NAME: &str = "Authentication-Results:";
        if line.get(..NAME.len()).is_some_and(|n| n.eq_ignore_ascii_case(NAME)) {
            current = line.get(NAME.len()..).map(|v| v.trim().to_string());
        }
    }
    out.extend(current);
    out
}

/// The message with each run of base64 lines (an encoded part, unreadable as it stands) as
/// one line saying so: a token quoted inside one would be out of [`super::without_tokens`]'s
/// sight.
fn without_base64_runs(text: &str) -> String {
    let base64_line = |l: &str| {
        let l = l.trim_end_matches('\r');
        l.len() >= 40 && l.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    };
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for line in text.split_inclusive('\n') {
        match (base64_line(line.trim_end_matches('\n')), in_run) {
            (true, true) => {}
            (true, false) => {
                out.push_str("[a base64-encoded part, not shown]\n");
                in_run = true;
            }
            (false, _) => {
                out.push_str(line);
                in_run = false;
            }
        }
    }
    out
}

/// The message with the quoted-printable soft line breaks of its body joined; its header
/// block as it was.
fn soft_breaks_joined(message: &str) -> String {
    let split = ["\r\n\r\n", "\n\n"].iter().filter_map(|sep| message.find(sep).map(|at| at + sep.len())).min();
    let (head, body) = message.split_at(split.unwrap_or(message.len()));
    format!("{head}{}", body.replace("=\r\n", "").replace("=\n", ""))
}

pub async fn held(State(state): State<AppState>, staff: Staff, Params(q): Params<FormData>) -> Reply {
    let note = Note::of(&q).verified(&state, staff.session_key());
    let page_no = q.page()?;
    let mut out = vec![];
    for h in inbound::held_heads(&state.db, PAGE, (page_no - 1) * PAGE, SHOWN).await? {
        let auth = auth_results(&h.head);
        // A reply quotes what it answers: the tokens of its links and reply address are
        // hidden, or staff could sign in or reply as the client.
        // Quoted-printable soft line breaks in the body are joined (once base64 runs, whose
        // padding ends lines in `=` too, are out), so a break that fell inside a link does
        // not hide it from the search. The header block is shown as received: an encoded
        // word (`=?utf-8?q?Caf=C3=A9?=`) ends a line in `=` with no soft break meant.
        let unfolded = soft_breaks_joined(&without_base64_runs(&h.head));
        let mut shown = super::without_tokens(&unfolded);
        if h.cut {
            shown.push_str("\n[… the rest is not shown]");
        }
        // What releasing it runs, decoded (a base64 body shows above only as a note): read
        // from the whole message only, as a part of one could read otherwise.
        // A message longer than is shown (a reply with artwork) is read whole, one at a time
        // and off the request's thread, so the page's memory is one message's at the most.
        let read = match h.cut {
            // The bytes as received, never `head`'s lossy reading of them: a reply in
            // ISO-8859-1 reads as its charset says, as it does when released.
            false => crate::channels::inbound::commands_in(h.bytes.as_deref().unwrap_or(h.head.as_bytes())),
            true => match inbound::get_held(&state.db, &h.row.message_id).await? {
                Some((_, raw)) => tokio::task::spawn_blocking(move || crate::channels::inbound::commands_in(&raw))
                    .await
                    .unwrap_or_else(|_| Err("could not be read (see the log)".into())),
                // Released or discarded since the list was read: the next reload drops it.
                None => Err("no longer held".into()),
            },
        };
        let runs = read
            .map(|(commands, files)| json!({"commands": commands.iter().map(|c| super::without_tokens(c)).collect::<Vec<_>>(), "files": files}))
            .unwrap_or_else(|e| json!({"unreadable": e}));
        out.push(json!({"m": h.row, "auth": auth, "raw": shown, "runs": runs}));
    }
    let (total, _) = crate::store::console::waiting_counts(&state.db).await?;
    let first = (page_no - 1) * PAGE + 1;
    let ctx = json!({"held": out, "total": total, "note": note, "page": page_no, "first": first,
                     "last": first + out.len() as i64 - 1, "older": total > page_no * PAGE});
    page(&state, Some(&staff), "held", ctx)
}

/// What became of a held message that cannot be released or discarded now: released or
/// discarded a moment ago (by another click, another member of staff), said as the page's
/// note, since nothing is left to do; never held, refused.
async fn not_held(state: &AppState, id: &str) -> Result<String, HttpError> {
    let shown = crate::model::quoted(id);
    match inbound::get_message(&state.db, id).await? {
        // Released, it is what it became (`processed`, …); discarded, `ignored` with who did it.
        Some(m) => Ok(format!(
            "Nothing more to do: {shown} is not waiting in held mail: it is {} ({}).",
            m.disposition.as_str(),
            m.reason
        )),
        None => Err(HttpError::Conflict(format!("message_id: {shown} was never held"))),
    }
}

/// `POST /staff/held`: `action` is `release` or `discard` for `message_id`.
pub async fn act(State(state): State<AppState>, CsrfForm(staff, form): CsrfForm<Staff>) -> Reply {
    use crate::channels::inbound::Disposition;
    let id = form.text("message_id");
    if id.trim().is_empty() {
        return Err(HttpError::Invalid("message_id: give the Message-ID of the held mail".into()));
    }
    let note = match form.get("action") {
        Some("release") => match crate::channels::inbound::release(&state, &id, Utc::now()).await {
            // Taken by another release a moment before this one: nothing was done again.
            Ok(None | Some(Disposition::Duplicate(_))) => not_held(&state, &id).await?,
            Ok(Some(d)) => {
                staff.record(&state, "released held mail", &id).await;
                format!(
                    "Released: {}",
                    serde_json::to_value(&d)
                        .ok()
                        .and_then(|v| v["reason"].as_str().map(str::to_string))
                        .unwrap_or_default()
                )
            }
            Err(e) if e.is_temporary() => return Err(HttpError::Unavailable),
            Err(e) => return Err(HttpError::Invalid(format!("the held message cannot be processed: {e}"))),
        },
        Some("discard") => {
            if inbound::discard_held(&state.db, &id, &format!("discarded by {}", staff.email)).await? {
                staff.record(&state, "discarded held mail", &id).await;
                "Discarded.".to_string()
            } else {
                not_held(&state, &id).await?
            }
        }
        other => {
            return Err(HttpError::Invalid(format!(
                "action: {} is not release or discard",
                crate::model::quoted(other.unwrap_or(""))
            )));
        }
    };
    Ok(see_other(&state, staff.session_key(), "/staff/held", &note))
}

#[cfg(test)]
mod tests {
    #[test]
    fn headers_are_shown_as_received_and_only_the_body_is_unfolded() {
        let raw = "Subject: =?utf-8?q?Re:_Caf=C3=A9?=\r\nMessage-ID: <m@x>\r\n\r\nhttps://x/l/ab=\r\ncd\r\n";
        assert_eq!(
            super::soft_breaks_joined(raw),
            "Subject: =?utf-8?q?Re:_Caf=C3=A9?=\r\nMessage-ID: <m@x>\r\n\r\nhttps://x/l/abcd\r\n"
        );
    }

    #[test]
    fn authentication_results_are_read_unfolded() {
        let raw = "From: a@b\r\nAuthentication-Results: mx.tot.example;\r\n dmarc=fail header.from=b\r\nSubject: x\r\n\r\nAuthentication-Results: in the body\r\n";
        assert_eq!(super::auth_results(raw), vec!["mx.tot.example; dmarc=fail header.from=b".to_string()]);
    }
}
