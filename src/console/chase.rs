//! `/staff/chase`: every open action item across all clients, oldest first, with who was told
//! and whether they came back; a CSV of the same list; "remind now".

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chrono::Utc;
use serde_json::json;

use super::{Staff, page};
use crate::actions::chase::{self, ChaseFilter, ChaseRow};
use crate::actions::items::Category;
use crate::portal::{CsrfForm, FormData, HoldsCsrf as _, Params, see_other};
use crate::state::AppState;
use crate::web::HttpError;
use crate::web::Reply;

const PAGE: usize = 50;
/// The CSV is read and written this many rows at a time.
const CSV_PAGE: usize = 2_000;

/// The filter from the query string; a value that cannot be used is an error naming it.
fn filter_of(q: &FormData) -> Result<(ChaseFilter, usize), HttpError> {
    let text = |name: &str| q.get(name).map(str::trim).filter(|v| !v.is_empty());
    let category = match text("category") {
        None => None,
        Some(c) => Some(Category::from_code(c).ok_or_else(|| {
            let codes: Vec<&str> = Category::ALL.iter().map(|c| c.code()).collect();
            HttpError::BadRequest(format!("category: {} is not one of {}", crate::model::quoted(c), codes.join(", ")))
        })?),
    };
    let min_age_days = match text("older") {
        None => None,
        Some(d) => Some(
            d.parse::<u32>()
                .ok()
                .filter(|d| *d <= 3650)
                .ok_or_else(|| HttpError::BadRequest("older: a whole number of days from 0 to 3650".into()))?,
        ),
    };
    let client = q.id("client")?;
    // At most 100,000: the cast cannot wrap.
    let page = q.page()? as usize;
    Ok((ChaseFilter { category, client, min_age_days }, page))
}

/// A client filter naming no client is refused by name ([`super::client_named`]) rather than
/// shown as a client with nothing open (a mistyped id would read as all done).
async fn known_client(state: &AppState, client: Option<&str>) -> Result<(), HttpError> {
    if let Some(id) = client {
        super::client_named(state, id).await?;
    }
    Ok(())
}

pub async fn chase(State(state): State<AppState>, staff: Staff, Params(q): Params<FormData>) -> Reply {
    let (filter, page_no) = filter_of(&q)?;
    known_client(&state, filter.client.as_deref()).await?;
    let now = Utc::now();
    let all = chase::matching(&state, &filter, now).await?;
    let total = all.len();
    let pages = total.div_ceil(PAGE).max(1);
    // A page past the last (a list that shrank since its link was made) shows the last, not
    // "nothing is waiting" beside a count of what is.
    let page_no = page_no.min(pages);
    let rows = all.rows(&state, (page_no - 1) * PAGE, PAGE, now).await?;
    let query = |p: usize| {
        let mut parts = vec![];
        for name in ["category", "client", "older"] {
            if let Some(v) = q.get(name).filter(|v| !v.trim().is_empty()) {
                parts.push(format!(
                    "{name}={}",
                    percent_encoding::utf8_percent_encode(v.trim(), percent_encoding::NON_ALPHANUMERIC)
                ));
            }
        }
        if p > 1 {
            parts.push(format!("page={p}"));
        }
        parts.join("&")
    };
    page(
        &state,
        Some(&staff),
        "chase",
        json!({
            "rows": rows, "total": total, "page": page_no, "pages": pages,
            "prev": (page_no > 1).then(|| query(page_no - 1)),
            "next": (page_no < pages).then(|| query(page_no + 1)),
            "csv": query(1),
            "here": query(page_no),
            "categories": Category::ALL.iter().map(|c| json!({"code": c.code(), "heading": c.staff_heading()})).collect::<Vec<_>>(),
            "f": {"category": filter.category.map(Category::code), "client": filter.client, "older": filter.min_age_days},
            "note": crate::portal::Note::of(&q).verified(&state, staff.session_key()),
        }),
    )
}

/// A CSV field: quoted when it holds a separator, a quote or a line break, and never read as
/// a formula by a spreadsheet.
fn field(s: &str) -> String {
    let s = crate::model::spreadsheet_text(s);
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

fn csv_line(r: &ChaseRow) -> String {
    // RFC 3339 in UTC, as every time cport gives out: a spreadsheet reads a time without its
    // zone as its own.
    let when =
        |t: Option<chrono::DateTime<Utc>>| t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default();
    let mut channels: Vec<&str> =
        r.contacts.iter().flat_map(|c| c.channels.iter().map(|(ch, _)| ch.as_str())).collect();
    channels.sort_unstable();
    channels.dedup();
    let mut queued: Vec<&str> = r.contacts.iter().flat_map(|c| c.queued.iter().map(|ch| ch.as_str())).collect();
    queued.sort_unstable();
    queued.dedup();
    let names: Vec<&str> = r.contacts.iter().map(|c| c.contact.name.as_str()).collect();
    [
        r.item.category.code().to_string(),
        r.item.id.clone(),
        r.client_id.clone(),
        r.client_name.clone(),
        r.item.title.clone(),
        when(r.waiting_since),
        r.age_days.map(|d| d.to_string()).unwrap_or_default(),
        when(r.first_sent),
        channels.join(" "),
        r.contacts.iter().any(|c| c.opened).to_string(),
        r.contacts.iter().any(|c| c.replied).to_string(),
        names.join("; "),
        // Last, so that the columns before it stand where they always stood.
        queued.join(" "),
    ]
    .iter()
    .map(|f| field(f))
    .collect::<Vec<_>>()
    .join(",")
}

/// `GET /staff/chase.csv`: the same filtered list, every row, in the order it stood in when
/// asked. Its rows are written as they are read, [`CSV_PAGE`] at a time, so a long list is
/// not cut short and its file is not held whole in memory (the items matched are, as for a
/// page); who was told, opened or replied is as each run of rows is read. A store failing
/// part way breaks the download off (the error is logged): the browser reports a failed
/// transfer rather than a file that looks whole.
pub async fn chase_csv(State(state): State<AppState>, _staff: Staff, Params(q): Params<FormData>) -> Reply {
    let (filter, _) = filter_of(&q)?;
    known_client(&state, filter.client.as_deref()).await?;
    let now = Utc::now();
    let all = std::sync::Arc::new(chase::matching(&state, &filter, now).await?);
    // The first page is read before the answer starts: a store that fails at once is a
    // page of error, not an empty file.
    let first = all.rows(&state, 0, CSV_PAGE, now).await?;
    let header = "category,id,client_id,client,title,waiting_since,age_days,first_sent,channels,opened_link,replied,contacts,queued\r\n";
    let head = futures::stream::once(std::future::ready(Ok(csv_lines(header.into(), &first))));
    let rest = futures::stream::unfold(CSV_PAGE, move |from| {
        let (all, state) = (all.clone(), state.clone());
        async move {
            if from >= all.len() {
                return None;
            }
            match all.rows(&state, from, CSV_PAGE, now).await {
                Ok(rows) => Some((Ok(csv_lines(String::new(), &rows)), from + CSV_PAGE)),
                Err(e) => {
                    tracing::error!(error = %e, rows_written = from, "the chase list's CSV stopped part way");
                    // Past the end: the stream ends after this error.
                    Some((Err(std::io::Error::other(e.to_string())), usize::MAX))
                }
            }
        }
    });
    use futures::StreamExt as _;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"chase.csv\""),
        ],
        axum::body::Body::from_stream(head.chain(rest)),
    )
        .into_response())
}

/// `rows` as CSV lines after `out`.
fn csv_lines(mut out: String, rows: &[ChaseRow]) -> String {
    for r in rows {
        out.push_str(&csv_line(r));
        out.push_str("\r\n");
    }
    out
}

/// `POST /staff/chase/remind`: contact and item key; back to the list with what happened.
pub async fn remind(State(state): State<AppState>, CsrfForm(staff, form): CsrfForm<Staff>) -> Reply {
    let contact = form.text("contact");
    let key = form.text("item");
    if contact.is_empty() || key.is_empty() {
        return Err(HttpError::Invalid("contact and item: both are needed".into()));
    }
    let back = crate::portal::auth::safe_next(form.get("back"));
    let back = if back == "/staff/chase" || back.starts_with("/staff/chase?") { back } else { "/staff/chase".into() };
    let note = match chase::remind(&state, &contact, &key, Utc::now()).await {
        Ok(r) => {
            staff.record(&state, "reminded", &format!("{contact} of {key}")).await;
            let mut note = format!("Reminder about {} queued to {} by {}.", r.item, r.contact, r.channels);
            if let Some(at) = r.held_until {
                note += &format!(" Their quiet hours hold it until {} UTC.", at.format("%Y-%m-%d %H:%M"));
            }
            note
        }
        Err(crate::actions::ActionError::Conflict(m)) => format!("No reminder queued: {m}."),
        Err(e) => return Err(e.into()),
    };
    Ok(see_other(&state, staff.session_key(), &back, &note))
}
