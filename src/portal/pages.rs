//! Portal pages: dashboard, visuals, jobs and delivery instructions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{Value, json};

use super::{CsrfForm, FormData, HttpError, Session, Shown, money, page, page_status, see_other};
use crate::actions::delivery::{DeliveryRequest, LineQty};
use crate::actions::items::{Category, current};
use crate::actions::{ActionError, visuals as act};
use crate::model::VisualStatus;
use crate::state::AppState;
use crate::store::jobs;
use crate::store::visuals as vstore;
use crate::web::Reply;

pub(super) fn no_delegation(s: &Session) -> Result<(), HttpError> {
    if s.actor.delegation.is_some() { Err(HttpError::NotFound) } else { Ok(()) }
}

/// `GET /`: banners, then the contact's action items with a way to act on each.
pub async fn dashboard(State(state): State<AppState>, session: Session, shown: Shown) -> Reply {
    if let Some(d) = &session.actor.delegation {
        return Ok(see_other(
            &state,
            &session.token_hash,
            &format!("/visuals/{}", crate::model::segment(&d.visual_id)),
            "",
        ));
    }
    let items = current(&state, &session.actor.contact).await?;
    let groups: Vec<Value> = Category::ALL
        .iter()
        .filter_map(|cat| {
            let list: Vec<Value> = items
                .iter()
                .filter(|i| i.category == *cat)
                .map(|i| {
                    json!({"id": i.id, "title": i.title, "detail": i.detail, "date": i.date, "action": i.action,
                           "command": i.command, "path": i.path(), "category": cat.name()})
                })
                .collect();
            (!list.is_empty()).then(|| json!({"code": cat.code(), "heading": cat.heading(), "items": list}))
        })
        .collect();
    // The account summary, for the roles that see invoices.
    let balance = if crate::actions::enquiry::allowed(session.actor.role, &crate::actions::commands::Command::Balance) {
        let client = &session.actor.contact.client_id;
        match crate::store::enquiries::aging(&state.db, client).await? {
            Some(a) => Some(json!({
                "as_of": a.as_of, "owed": money(a.current_balance), "over_30": money(a.over_30),
                "over_60": money(a.over_60), "over_90": money(a.over_90), "overdue": a.over_30 > 0,
                "credit_limit": a.credit_limit.map(money),
                "currency": a.currency,
            })),
            None => None,
        }
    } else {
        None
    };
    page(
        &state,
        Some(&session),
        "dashboard",
        json!({"groups": groups, "total": items.len(), "need_you": crate::messages::compose::need_you(items.len()),
               "note": shown.note, "balance": balance}),
    )
    .await
}

/// The most visuals `/visuals` lists.
const VISUALS_SHOWN: i64 = 200;

/// `GET /visuals`: the client's visuals; those awaiting approval can be approved together.
pub async fn visuals(State(state): State<AppState>, session: Session, shown: Shown) -> Reply {
    no_delegation(&session)?;
    if !session.actor.may_see_visuals() {
        return Err(HttpError::Forbidden(format!("Your role ({}) does not show visuals.", session.actor.role)));
    }
    list_page(&state, &session, shown).await
}

async fn list_page(state: &AppState, session: &Session, shown: Shown) -> Reply {
    let Shown { note, error, status, .. } = shown;
    // A page, not a client's whole history: those awaiting approval first, then the newest
    // (every visual stays reachable from its job).
    let mut rows = vstore::list_visuals(&state.db, session.actor.client_id(), VISUALS_SHOWN + 1).await?;
    let more = rows.len() as i64 > VISUALS_SHOWN;
    rows.truncate(VISUALS_SHOWN as usize);
    let list: Vec<Value> = rows
        .iter()
        .map(|v| {
            json!({"id": v.id, "job_id": v.job_id, "job_name": v.job_name, "category": v.category, "status": v.status,
                   "design_id": v.design_id, "main_image": v.main_image, "date_required": v.date_required})
        })
        .collect();
    page_status(
        state,
        Some(session),
        "visuals",
        json!({"visuals": list, "more": more, "shown": VISUALS_SHOWN, "note": note, "error": error,
               "terms": state.config.branding.approval_terms}),
        status,
    )
    .await
}

/// `POST /visuals`: approve the ticked visuals.
pub async fn approve_many(State(state): State<AppState>, CsrfForm(session, form): CsrfForm<Session>) -> Reply {
    no_delegation(&session)?;
    let ids = form.all("visual");
    let terms = match form.checkbox("terms") {
        Ok(t) => t,
        Err(e) => return list_page(&state, &session, Shown::refused(e.to_string())).await,
    };
    match act::approve(&state, None, &session.actor, &ids, terms, Utc::now()).await {
        Ok(results) => {
            let approved: Vec<&str> = results.iter().filter(|(_, r)| r.is_ok()).map(|(id, _)| id.as_str()).collect();
            let done = match approved.as_slice() {
                [] => "None approved.".to_string(),
                ids => format!("Approved: {}.", ids.join(", ")),
            };
            // The store's own words stay in the log: a client reads that it failed.
            let failed: Vec<String> = results
                .iter()
                .filter_map(|(id, r)| match r.as_ref().err()? {
                    ActionError::Store(e) => {
                        tracing::error!(visual = %id, error = %e, "approving a ticked visual failed");
                        Some(format!("{id}: not approved, as cport's store failed; try again."))
                    }
                    e => Some(e.to_string()),
                })
                .collect();
            if failed.is_empty() {
                Ok(see_other(&state, &session.token_hash, "/visuals", &done))
            } else {
                let shown = Shown { note: Some(done), ..Shown::error(StatusCode::CONFLICT, failed.join(" ")) };
                list_page(&state, &session, shown).await
            }
        }
        Err(e) => list_page(&state, &session, Shown::failed(e)?).await,
    }
}

async fn visual_page(state: &AppState, session: &Session, id: &str, shown: Shown) -> Reply {
    let Shown { note, error, status, typed } = shown;
    let v = act::visible_visual(state, &session.actor, id).await?;
    let charges = vstore::list_charges(&state.db, id).await?;
    let total = crate::model::lines_total(charges.iter().map(|c| (c.qty, c.unit_price)));
    let comments = vstore::list_comments(&state.db, id).await?;
    let decisions = vstore::list_decisions(&state.db, id).await?;
    let delegation_used = match &session.actor.delegation {
        // Used, or expired while the page was left open: it asks for nothing more.
        Some(d) => {
            crate::actions::visuals::delegation_spent(&vstore::get_delegation(&state.db, d.id).await?, Utc::now())
        }
        None => false,
    };
    let currency = crate::store::enquiries::client_currency(&state.db, session.actor.client_id()).await?;
    page_status(
        state,
        Some(session),
        "visual",
        json!({
            "v": v,
            "charges": charges.iter().map(|c| json!({"description": c.description, "qty": c.qty,
                "unit_price": money(c.unit_price), "total": money(crate::model::line_total(c.qty, c.unit_price))})).collect::<Vec<_>>(),
            "total": money(total),
            "currency": currency,
            "comments": comments,
            "decisions": decisions,
            "terms": state.config.branding.approval_terms,
            "can_decide": crate::actions::visuals::may_decide(&session.actor, v.status, delegation_used),
            "can_delegate": crate::actions::visuals::may_delegate(&session.actor, v.status),
            "can_comment": crate::actions::visuals::may_comment(&session.actor, v.status, delegation_used),
            "note": note,
            "error": error,
            "typed": typed,
        }),
        status,
    )
    .await
}

/// `GET /visuals/{id}`: the visual review page.
pub async fn visual(State(state): State<AppState>, session: Session, Path(id): Path<String>, shown: Shown) -> Reply {
    visual_page(&state, &session, &id, shown).await
}

/// The visual's status as the page showed it (the reject form's `seen`).
fn seen_status(form: &FormData) -> Result<VisualStatus, ActionError> {
    let seen = form.text("seen");
    VisualStatus::parse(&seen).ok_or_else(|| {
        ActionError::invalid(
            "seen",
            format!(
                "{} is not the status a page shows: one of {}",
                crate::model::quoted(&seen),
                VisualStatus::NAMES.join(", ")
            ),
        )
    })
}

/// `POST /visuals/{id}`: approve, reject, delegate or comment (`action` field).
pub async fn visual_action(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(session, form): CsrfForm<Session>,
) -> Reply {
    // The address names a visual as TOT gave its id, to the letter (its page is found so):
    // `/visuals/V-1%20` is no visual, for every action alike, though an approval's list of
    // ids is read trimmed.
    if id.trim() != id {
        return Err(HttpError::NotFound);
    }
    let now = Utc::now();
    let a = &session.actor;
    let result: Result<String, ActionError> = match form.get("action") {
        // The role is asked before the form's fields (in each action): the terms box is
        // read here, so it is asked here first too.
        Some("approve") => match act::check_may_act(a).and_then(|()| form.checkbox("terms")) {
            Ok(terms) => act::approve(&state, None, a, std::slice::from_ref(&id), terms, now)
                .await
                .and_then(|mut r| {
                    r.pop().map_or_else(|| Err(ActionError::NotFound(format!("visual {id}"))), |(_, r)| r)
                })
                .map(|_| format!("Visual {id} approved. Thank you.")),
            Err(e) => Err(e),
        },
        // The form says what the page showed: a withdrawal is a reject of an approved visual.
        Some("reject") => match act::check_may_act(a).and_then(|()| seen_status(&form)) {
            Ok(seen) => act::reject(&state, None, a, &id, &form.text("reason"), seen == VisualStatus::Approved, now)
                .await
                .map(|_| format!("Visual {id} rejected. TOT will be in touch with a new visual.")),
            Err(e) => Err(e),
        },
        Some("delegate") => act::delegate(&state, a, &id, &form.text("name"), &form.text("email"), now)
            .await
            .map(|_| format!("An approval link was sent to {}.", form.text("email").trim())),
        Some("comment") => {
            act::comment(&state, a, &id, &form.text("comment"), now).await.map(|_| "Comment added.".to_string())
        }
        _ => Err(ActionError::invalid("action", "choose approve, reject, delegate or comment")),
    };
    match result {
        Ok(note) => {
            Ok(see_other(&state, &session.token_hash, &format!("/visuals/{}", crate::model::segment(&id)), &note))
        }
        // A field to put right comes back as typed; a conflict (decided meanwhile, a comment
        // already in the thread) does not offer the same words to send again.
        Err(e @ ActionError::Invalid { .. }) => {
            visual_page(&state, &session, &id, Shown::failed(e)?.with_typed(&form)).await
        }
        Err(e) => visual_page(&state, &session, &id, Shown::failed(e)?).await,
    }
}

async fn job_with_lines(
    state: &AppState,
    session: &Session,
    id: &str,
) -> Result<(jobs::JobRow, Vec<jobs::GarmentLine>), HttpError> {
    no_delegation(session)?;
    if !session.actor.may_see_jobs() {
        return Err(HttpError::Forbidden(format!("Your role ({}) does not show jobs.", session.actor.role)));
    }
    let job = match jobs::get_job(&state.db, session.actor.client_id(), id).await {
        Ok(j) => j,
        Err(crate::store::StoreError::NotFound) => return Err(HttpError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let lines = jobs::list_garment_lines(&state.db, id).await?;
    Ok((job, lines))
}

fn lines_json(lines: &[jobs::GarmentLine]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            json!({"job_id": l.job_id, "line_no": l.line_no, "description": l.description, "expected_qty": l.expected_qty,
                   "produced_qty": l.produced_qty, "instructed": l.instructed, "remaining": l.remaining()})
        })
        .collect()
}

/// `GET /jobs/{id}`: the job with its printed garments and what delivery instructions took.
pub async fn job(State(state): State<AppState>, session: Session, Path(id): Path<String>, shown: Shown) -> Reply {
    let (job, lines) = job_with_lines(&state, &session, &id).await?;
    let open = job.status.is_open();
    let offers_delivery = crate::actions::delivery::takes_instructions(&job, &lines);
    // Processes, costs and deliveries: the JOB enquiry's tables (the facts and printed
    // garments are shown above them already).
    let ctx = crate::actions::enquiry::Context::default();
    let cmd = crate::actions::commands::Command::Job(id.clone());
    let mut a = crate::actions::enquiry::run_alone(&state, &session.actor, &cmd, &ctx, Utc::now()).await?;
    a.sections.retain(|s| s.heading.as_deref().is_some_and(|h| h != "Printed garments"));
    let pictures = crate::store::enquiries::job_pictures(&state.db, session.actor.client_id(), &id).await?;
    let pictures: Vec<Value> = pictures.into_iter().map(|(src, alt)| json!({"src": src, "alt": alt})).collect();
    page(
        &state,
        Some(&session),
        "job",
        json!({"job": job, "lines": lines_json(&lines), "open": open, "offers_delivery": offers_delivery,
               "note": shown.note, "a": a, "pictures": pictures,
               "art": super::artwork::art_json(&state, &session, &id, job.status).await?}),
    )
    .await
}

async fn delivery_page(state: &AppState, session: &Session, id: &str, form: Option<&FormData>, shown: Shown) -> Reply {
    let Shown { error, status, .. } = shown;
    let (job, lines) = job_with_lines(state, session, id).await?;
    let open: Vec<_> =
        jobs::list_open_jobs(&state.db, session.actor.client_id()).await?.into_iter().filter(|j| j.id != id).collect();
    let ids: Vec<&str> = open.iter().map(|j| j.id.as_str()).collect();
    let mut by_job: std::collections::HashMap<String, Vec<jobs::GarmentLine>> = Default::default();
    for l in jobs::garment_lines_of(&state.db, &ids).await? {
        by_job.entry(l.job_id.clone()).or_default().push(l);
    }
    let mut others = Vec::new();
    for j in &open {
        let l = by_job.remove(&j.id).unwrap_or_default();
        // A job whose instructions the form may take, with goods left to place in it.
        if crate::actions::delivery::takes_instructions(j, &l) && l.iter().any(|x| x.remaining() > 0) {
            others.push(json!({"id": j.id, "name": j.name, "lines": lines_json(&l)}));
        }
    }
    let addresses = jobs::saved_addresses(&state.db, session.actor.client_id()).await?;
    let values: Value =
        form.map(|f| Value::Object(f.0.iter().map(|(k, v)| (k.clone(), json!(v))).collect())).unwrap_or(json!({}));
    // The address the refused form chose, as offered, to be chosen again.
    let chosen = form.and_then(|f| crate::model::offered_choice(&addresses, &f.text("saved_address")));
    page_status(
        state,
        Some(session),
        "delivery",
        json!({"job": job, "lines": lines_json(&lines), "others": others, "addresses": addresses,
               "values": values, "chosen": chosen, "error": error, "today": crate::actions::targets::today_of(state, &session.actor.contact, Utc::now()).await?,
               "closed": (!job.status.is_open()).then(|| job.status.words())}),
        status,
    )
    .await
}

/// `GET /jobs/{id}/delivery`: the delivery instructions form (this job, plus other open jobs
/// whose goods can travel in the same delivery).
pub async fn delivery_form(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Reply {
    no_delegation(&session)?;
    if !session.actor.may_act() {
        return Err(HttpError::Forbidden(format!(
            "Your role ({}) may not give delivery instructions.",
            session.actor.role
        )));
    }
    delivery_page(&state, &session, &id, None, Shown::fresh(None)).await
}

/// `POST /jobs/{id}/delivery`: `action=none` (no delivery required) or the delivery details.
pub async fn delivery_submit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(session, form): CsrfForm<Session>,
) -> Reply {
    // The page's own job is checked as its GET checks it (a delegate's session, a role
    // that sees no jobs, a job not the client's): a form posted to another's job, or to none,
    // is not found and changes nothing, whatever lines it names.
    job_with_lines(&state, &session, &id).await?;
    let now = Utc::now();
    // The form's two buttons; a form without one gives instructions.
    let result = match form.get("action") {
        Some("none") => crate::actions::delivery::no_delivery(&state, &session.actor, &id, now)
            .await
            .map(|_| format!("Noted: job {id} needs no delivery.")),
        None | Some("deliver") => match parse_delivery(
            &form,
            crate::actions::delivery::saved_address(&state, &session.actor, &form.text("saved_address")).await,
        ) {
            Ok(req) => crate::actions::delivery::give(&state, &session.actor, &req, now)
                .await
                .map(|_| "Delivery instructions sent to TOT.".to_string()),
            Err(e) => Err(e),
        },
        Some(other) => {
            Err(ActionError::invalid("action", format!("{} is not deliver or none", crate::model::quoted(other))))
        }
    };
    match result {
        Ok(note) => Ok(see_other(&state, &session.token_hash, &format!("/jobs/{}", crate::model::segment(&id)), &note)),
        Err(e) => delivery_page(&state, &session, &id, Some(&form), Shown::failed(e)?).await,
    }
}

fn parse_delivery(form: &FormData, saved: Result<String, ActionError>) -> Result<DeliveryRequest, ActionError> {
    let mut lines = Vec::new();
    for (k, v) in &form.0 {
        let Some(rest) = k.strip_prefix("qty:") else { continue };
        // The field is named as the form named it, shortened (a hand-made form may send anything).
        let Some((job, line)) = rest.rsplit_once(':').filter(|(j, l)| !j.is_empty() && !l.is_empty()) else {
            return Err(ActionError::invalid(
                &format!("qty[{}]", crate::model::shown(rest, 64)),
                "is not a line of a job (qty:JOB:LINE)",
            ));
        };
        let field = || format!("qty[{}:{}]", crate::model::shown(job, 64), crate::model::shown(line, 20));
        // The job part is an id as TOT writes them, said exactly as sent when it is not one
        // (a padded `J-1 ` shown trimmed would read as a job that is there).
        let mut refused = Vec::new();
        crate::model::check_id("job", job, &mut refused);
        if let Some(e) = refused.first() {
            return Err(ActionError::invalid(&field(), e.reason.clone()));
        }
        // A line is named as the form names it, `0`, `1`…: `00` or `+0` would be a second
        // name for one line, its quantities added unseen.
        let line_no = line.parse::<u32>().ok().filter(|n| n.to_string() == line).ok_or_else(|| {
            ActionError::invalid(&field(), format!("job {job} has no line {}", crate::model::quoted(line)))
        })?;
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let qty = super::whole_number(&field(), v)?;
        lines.push(LineQty { job_id: job.to_string(), line_no: i64::from(line_no), qty });
    }
    // One address: a saved one chosen and another typed (a form that came back with an error
    // keeps what was typed) is asked about, never settled by one silently winning.
    let chosen = form.text("saved_address");
    let address = match (form.text("address").trim(), chosen.trim()) {
        ("", _) => saved?,
        (typed, "") => typed.to_string(),
        (typed, _) => match saved {
            Ok(s) if crate::model::offered_choice(std::slice::from_ref(&s), typed).is_some() => s,
            Ok(_) => {
                return Err(ActionError::invalid(
                    "saved_address",
                    "a saved address is chosen and another typed: choose one, or clear the other",
                ));
            }
            Err(e) => return Err(e),
        },
    };
    let required_date = match form.text("required_date").trim() {
        "" => None,
        d => Some(crate::model::dates::parse_date(d).map_err(|e| ActionError::invalid("required_date", e))?),
    };
    Ok(DeliveryRequest {
        lines,
        address,
        required_date,
        contact_name: form.text("contact_name"),
        notes: form.text("notes"),
    })
}
