//! Enquiry pages: jobs, deliveries, invoices, purchase orders, blank stock, prices and art.
//! Each page runs the same enquiry as the `JOBS`, `TRACK`, … commands (so email, chat and the
//! portal never disagree) and shows its tables filterable, sortable and paged; and the
//! documents: delivery and packing notes, invoices and the statement.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use chrono::Utc;
use serde_json::json;

use super::{FormData, FromParams, HttpError, Params, Session, page};
use crate::actions::commands::Command;
use crate::actions::enquiry::{Answer, Context, allowed, run_alone};
use crate::model::quoted;
use crate::state::AppState;
use crate::store::{StoreError, enquiries as q};
use crate::web::Reply;

/// Table rows per page.
const ROWS: usize = 25;

/// A list page's query: `q` to filter by, `sort` (a column number), `desc=1` for highest
/// first, `page`. A value that cannot be used is refused naming its field.
pub struct ListQuery {
    q: String,
    sort: Option<usize>,
    desc: bool,
    page: usize,
}

impl FromParams for ListQuery {
    fn from_params(f: FormData) -> Result<Self, HttpError> {
        let sort = match f.get("sort").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                s.parse().map_err(|_| HttpError::BadRequest(format!("sort: {} is not a column number", quoted(s))))?,
            ),
        };
        let desc = match f.get("desc").unwrap_or("") {
            "" | "0" => false,
            "1" => true,
            other => {
                return Err(HttpError::BadRequest(format!(
                    "desc: {} is not 1 (highest first) or 0 (lowest first)",
                    quoted(other)
                )));
            }
        };
        // At most 100,000: the cast cannot wrap.
        Ok(ListQuery { q: f.search("q")?, sort, desc, page: f.page()? as usize })
    }
}

fn check(session: &Session, cmd: &Command) -> Result<(), HttpError> {
    if session.actor.delegation.is_some() {
        return Err(HttpError::NotFound);
    }
    if !allowed(session.actor.role, cmd) {
        return Err(HttpError::Forbidden(format!("This page is not available to your role ({}).", session.actor.role)));
    }
    Ok(())
}

/// A sorted column's order: numbers (money, quantities) first, by value, then text without
/// regard to case. It must be a total order (`sort_by` may panic on one that is not), so a
/// number never compares with text as text, and `NaN` or `inf` count as text.
fn cmp_cells(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Greater, Less};
    let num = |s: &str| s.replace(',', "").parse::<f64>().ok().filter(|x| x.is_finite());
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Less,
        (None, Some(_)) => Greater,
        (None, None) => a.to_lowercase().cmp(&b.to_lowercase()),
    }
}

/// Filters, sorts and pages every table of the answer; returns (page, pages). A column to
/// sort by that no table has is refused by name (a page past the last shows the last). A
/// page with no table now (a list that emptied, said in words) has nothing to sort: a link
/// saved sorted still opens it.
fn shape(a: &mut Answer, lq: &ListQuery) -> Result<(usize, usize), HttpError> {
    let widest = a.sections.iter().map(|s| s.columns.len()).max().unwrap_or(0);
    if let Some(col) = lq.sort.filter(|c| widest > 0 && *c >= widest) {
        return Err(HttpError::Rejected {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: format!("sort: column {col} is not one of this page's (0 to {})", widest.saturating_sub(1)),
        });
    }
    let needle = lq.q.trim().to_lowercase();
    // Sections without a table have no rows: each pass leaves them as they are.
    for s in &mut a.sections {
        if !needle.is_empty() {
            s.rows.retain(|r| r.iter().any(|c| c.to_lowercase().contains(&needle)));
        }
        if let Some(col) = lq.sort.filter(|c| *c < s.columns.len()) {
            s.rows.sort_by(|x, y| cmp_cells(&x[col], &y[col]));
            if lq.desc {
                s.rows.reverse();
            }
        }
    }
    // A page past the last shows the last (a list that shrank since its link was made).
    let pages = a.sections.iter().map(|s| s.rows.len().div_ceil(ROWS)).max().unwrap_or(0).max(1);
    let page_no = lq.page.min(pages);
    for s in &mut a.sections {
        let start = ((page_no - 1) * ROWS).min(s.rows.len());
        let end = (start + ROWS).min(s.rows.len());
        s.rows = s.rows[start..end].to_vec();
    }
    Ok((page_no, pages))
}

struct Spec<'a> {
    heading: &'a str,
    /// Pictures to show under the tables: (URL, caption).
    images: Vec<(String, String)>,
    /// Cells of the column with this heading link to `prefix + cell + suffix`.
    link: Option<(&'a str, &'a str, &'a str)>,
    filterable: bool,
    documents: Vec<(String, String)>,
}

async fn show(
    state: &AppState,
    session: &Session,
    cmds: &[Command],
    spec: Spec<'_>,
    lq: &ListQuery,
    detail: bool,
) -> Reply {
    for c in cmds {
        check(session, c)?;
    }
    let now = Utc::now();
    // The portal pages its lists itself, so it asks for all of them.
    let ctx = Context { item: None, art_job: None, may_decide: false, list_limit: 5000 };
    let mut answer: Option<Answer> = None;
    for c in cmds {
        let a = run_alone(state, &session.actor, c, &ctx, now).await?;
        if detail && !a.ok {
            return Err(HttpError::NotFound);
        }
        match &mut answer {
            None => answer = Some(a),
            Some(first) => {
                first
                    .sections
                    .push(crate::actions::enquiry::Section { heading: Some(a.title.clone()), ..Default::default() });
                first.sections.extend(a.sections);
            }
        }
    }
    let mut a = answer.ok_or(HttpError::NotFound)?;
    // Answers written for email and chat carry signed portal links; on the portal itself
    // they are noise.
    for s in &mut a.sections {
        s.lines.retain(|l| !l.contains("/l/"));
    }
    let (page_no, pages) = shape(&mut a, lq)?;
    page(
        state,
        Some(session),
        "enquiry",
        json!({
            "heading": spec.heading, "a": a, "q": lq.q, "sort": lq.sort, "desc": lq.desc,
            "page": page_no, "pages": pages, "filterable": spec.filterable, "sortable": spec.filterable,
            "images": spec.images.iter().map(|(src, alt)| json!({"src": src, "alt": alt})).collect::<Vec<_>>(),
            "link": spec.link.map(|(column, prefix, suffix)| json!({"column": column, "prefix": prefix, "suffix": suffix})),
            "documents": spec.documents.iter().map(|(href, label)| json!({"href": attribute(href), "label": label})).collect::<Vec<_>>(),
        }),
    )
    .await
}

/// A list page: one enquiry, filterable, sortable and paged, its ids linking to their pages.
pub fn list_page(
    heading: &'static str,
    cmd: Command,
    link: Option<(&'static str, &'static str, &'static str)>,
) -> MethodRouter<AppState> {
    get(move |State(s): State<AppState>, session: Session, Params(lq): Params<ListQuery>| async move {
        show(&s, &session, std::slice::from_ref(&cmd), list(heading, link), &lq, false).await
    })
}

fn list(heading: &'static str, link: Option<(&'static str, &'static str, &'static str)>) -> Spec<'static> {
    Spec { heading, images: vec![], link, filterable: true, documents: vec![] }
}

pub async fn delivery(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Params(lq): Params<ListQuery>,
) -> Reply {
    // The id as TOT gave it: ids are matched exactly, and TOT's may hold small letters.
    let mut documents = vec![
        (format!("/deliveries/{}/note.pdf", crate::model::segment(&id)), "Delivery note (PDF)".to_string()),
        (format!("/deliveries/{}/packing.pdf", crate::model::segment(&id)), "Packing note (PDF)".to_string()),
    ];
    let mut images = vec![];
    if session.actor.delegation.is_none()
        && let Ok(d) = q::delivery(&s.db, session.actor.client_id(), &id).await
    {
        // Only web addresses from TOT's data become links (one stored before the sync checked
        // them is looked at again here).
        if let Some(url) = d.tracking_url.filter(|u| crate::model::is_web_address(u)) {
            let carrier = d.tracking_carrier.unwrap_or_else(|| "the carrier".into());
            documents.insert(0, (url, format!("Track with {carrier}")));
        }
        if let Some(sig) = d.pod_signature_image {
            images.push((sig, "Proof of delivery: the signature".to_string()));
        }
    }
    let spec = Spec { heading: "Delivery", images, link: None, filterable: false, documents };
    show(&s, &session, &[Command::Track(id)], spec, &lq, true).await
}

pub async fn invoices(State(s): State<AppState>, session: Session, Params(lq): Params<ListQuery>) -> Reply {
    let spec = Spec {
        heading: "Invoices",
        images: vec![],
        link: Some(("Invoice", "/invoices/", ".pdf")),
        filterable: true,
        documents: vec![
            ("/statement.pdf".into(), "Statement (PDF)".into()),
            ("/statement.csv".into(), "Statement (CSV)".into()),
        ],
    };
    show(&s, &session, &[Command::Invoices, Command::Balance], spec, &lq, false).await
}

/// A record's page: one enquiry about the id in the path (`Command::Po` for `/pos/{id}`).
pub fn record_page(heading: &'static str, cmd: fn(String) -> Command) -> MethodRouter<AppState> {
    get(
        move |State(s): State<AppState>, session: Session, Path(id): Path<String>, Params(lq): Params<ListQuery>| async move {
            let cmd = cmd(id);
            check(&session, &cmd)?;
            let images = match &cmd {
                Command::Po(id) => q::po_pictures(&s.db, session.actor.client_id(), id).await?,
                _ => vec![],
            };
            let spec = Spec { heading, images, link: None, filterable: false, documents: vec![] };
            show(&s, &session, &[cmd], spec, &lq, true).await
        },
    )
}

fn pdf(name: &str, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (header::CONTENT_DISPOSITION, format!("inline; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response()
}

fn not_found(e: StoreError) -> HttpError {
    match e {
        StoreError::NotFound => HttpError::NotFound,
        other => other.into(),
    }
}

/// `GET /deliveries/{id}/{doc}`: `note.pdf` or `packing.pdf`.
pub async fn delivery_document(
    State(s): State<AppState>,
    session: Session,
    Path((id, doc)): Path<(String, String)>,
) -> Reply {
    check(&session, &Command::Track(id.clone()))?;
    let client = session.actor.client_id();
    let d = q::delivery(&s.db, client, &id).await.map_err(not_found)?;
    let name = &session.actor.contact.client_name;
    match doc.as_str() {
        "note.pdf" => {
            let lines = q::delivery_lines(&s.db, &d.id).await?;
            Ok(pdf(
                &format!("delivery-note-{}.pdf", d.id),
                crate::documents::delivery_note(&s.config, name, &d, &lines),
            ))
        }
        "packing.pdf" => {
            let packing = q::delivery_packing(&s.db, &d.id).await?;
            Ok(pdf(
                &format!("packing-note-{}.pdf", d.id),
                crate::documents::packing_note(&s.config, name, &d, &packing),
            ))
        }
        _ => Err(HttpError::NotFound),
    }
}

/// `GET /invoices/{id}.pdf`.
pub async fn invoice_document(State(s): State<AppState>, session: Session, Path(file): Path<String>) -> Reply {
    check(&session, &Command::Invoices)?;
    let id = file.strip_suffix(".pdf").ok_or(HttpError::NotFound)?;
    let client = session.actor.client_id();
    let i = q::invoice(&s.db, client, id).await.map_err(not_found)?;
    let currency = q::client_currency(&s.db, client).await?;
    let bytes = crate::documents::invoice(&s.config, &session.actor.contact.client_name, &currency, &i);
    Ok(pdf(&format!("invoice-{}.pdf", i.id), bytes))
}

/// `GET /statement.pdf`.
pub async fn statement_pdf(State(s): State<AppState>, session: Session) -> Reply {
    statement(&s, &session, "statement.pdf").await
}

/// `GET /statement.csv`.
pub async fn statement_csv(State(s): State<AppState>, session: Session) -> Reply {
    statement(&s, &session, "statement.csv").await
}

async fn statement(s: &AppState, session: &Session, file: &str) -> Reply {
    check(session, &Command::Balance)?;
    let client = session.actor.client_id();
    let currency = q::client_currency(&s.db, client).await?;
    let aging = q::aging(&s.db, client).await?;
    let open = q::open_invoices(&s.db, client).await?;
    // The statement's date is the reader's: past midnight in Sydney it is already tomorrow's.
    let today = crate::actions::targets::today_of(s, &session.actor.contact, Utc::now()).await?;
    match file {
        "statement.pdf" => Ok(pdf(
            &format!("statement-{today}.pdf"),
            crate::documents::statement(
                &s.config,
                &session.actor.contact.client_name,
                &currency,
                today,
                aging.as_ref(),
                &open,
            ),
        )),
        "statement.csv" => {
            let bytes = crate::documents::statement_csv(&currency, aging.as_ref(), &open)
                .map_err(|e| HttpError::unexpected(format!("statement csv: {e}")))?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename=\"statement-{today}.csv\"")),
                ],
                bytes,
            )
                .into_response())
        }
        _ => Err(HttpError::NotFound),
    }
}

/// A link's address as the page writes it (`href="{{ d.href|safe }}"`): the characters that
/// could close the attribute or open markup are escaped. Done here, not by the template's own
/// escaping, which also writes every `/` as `&#x2f;` (links that no longer read as paths).
fn attribute(href: &str) -> String {
    let mut out = String::with_capacity(href.len());
    for c in href.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::cmp_cells;

    #[test]
    fn a_mixed_column_sorts_in_one_total_order() {
        let mut cells = vec!["10", "1a", "9", "nan", "B", "-2", "a", "1,000", "inf"];
        cells.sort_by(|x, y| cmp_cells(x, y));
        assert_eq!(cells, ["-2", "9", "10", "1,000", "1a", "a", "B", "inf", "nan"]);
        // Transitive where the old rule was not: 10 > 9, 9 > 1a (as text), 1a > 10 (as text).
        assert!(cmp_cells("9", "10").is_lt() && cmp_cells("10", "1a").is_lt() && cmp_cells("9", "1a").is_lt());
    }
}
