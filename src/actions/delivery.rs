//! Delivery instructions for open jobs: "no delivery required", or an address and date for
//! all or part of the printed-garment lines of one or several jobs.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::{ActionError, Actor, found};
use crate::model::DeliveryInstructions;
use crate::services::Services;
use crate::store::StoreError;
use crate::store::jobs::{self, NewRequest};

/// How far ahead a delivery may be asked for: two years, beyond any order TOT takes; a date
/// further out is a slip of the keyboard (2062 for 2026).
const MOST_DAYS_AHEAD: u64 = 731;

/// Whether a job has delivery instructions still to take: open, not called "no delivery", and
/// with nothing said yet or goods still to place. What the portal offers; `give` and
/// `no_delivery` refuse the rest, saying why.
pub fn takes_instructions(job: &jobs::JobRow, lines: &[jobs::GarmentLine]) -> bool {
    job.status.is_open()
        && match job.delivery_instructions {
            DeliveryInstructions::NotRequired => false,
            DeliveryInstructions::None => true,
            DeliveryInstructions::Given => lines.iter().any(|l| l.remaining() > 0),
        }
}

fn check_may_act(actor: &Actor) -> Result<(), ActionError> {
    if actor.may_act() {
        Ok(())
    } else {
        Err(ActionError::Forbidden(format!("your role ({}) may not give delivery instructions", actor.role)))
    }
}

/// The client says this job needs no delivery (collected, or kept at TOT).
pub async fn no_delivery(
    state: &Services,
    actor: &Actor,
    job_id: &str,
    now: DateTime<Utc>,
) -> Result<i64, ActionError> {
    state.db.in_transaction(async |tx| no_delivery_in(state, tx, actor, job_id, now).await).await
}

/// [`no_delivery`] inside the caller's transaction (an inbound message's unit).
pub async fn no_delivery_in(
    state: &Services,
    tx: &mut crate::store::Tx,
    actor: &Actor,
    job_id: &str,
    now: DateTime<Utc>,
) -> Result<i64, ActionError> {
    check_may_act(actor)?;
    // Instructions given for the job at the same moment wait for this, or this for them.
    jobs::lock_job(tx, job_id).await?;
    let job = found(jobs::get_job(&mut *tx, actor.client_id(), job_id).await, || format!("job {job_id}"))?;
    if !job.status.is_open() {
        return Err(ActionError::Conflict(format!("job {job_id} is {}; it needs no instructions", job.status.words())));
    }
    match job.delivery_instructions {
        DeliveryInstructions::None => {}
        DeliveryInstructions::NotRequired => {
            return Err(ActionError::Conflict(format!("job {job_id} is marked as needing no delivery already")));
        }
        DeliveryInstructions::Given => {
            return Err(ActionError::Conflict(format!("job {job_id} already has delivery instructions")));
        }
    }
    let rid = jobs::insert_request(
        tx,
        &NewRequest {
            client_id: actor.client_id(),
            contact_id: &actor.contact.id,
            kind: "no_delivery",
            address: None,
            required_date: None,
            contact_name: None,
            notes: None,
        },
        now,
    )
    .await?;
    jobs::set_delivery_instructions(tx, job_id, DeliveryInstructions::NotRequired.as_str()).await?;
    let seq = super::record(
        state,
        tx,
        crate::model::ChangeKind::NoDeliveryAcknowledged,
        actor,
        job_id,
        &json!({"job_id": job_id, "request_id": rid, "by": actor.contact.name, "channel": actor.channel}),
        now,
    )
    .await?;
    Ok(seq)
}

/// One line of a delivery request: so many of a job's printed-garment line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineQty {
    pub job_id: String,
    pub line_no: i64,
    pub qty: i64,
}

#[derive(Debug, Clone)]
pub struct DeliveryRequest {
    pub lines: Vec<LineQty>,
    pub address: String,
    pub required_date: Option<NaiveDate>,
    pub contact_name: String,
    pub notes: String,
}

/// The saved address a delivery form chose, if any (empty: none): one the client has
/// delivered to, by its text. Another is refused by name rather than taken as typed, as a
/// basket's chosen address is (see `orders::chosen_address`).
pub async fn saved_address(state: &Services, actor: &Actor, chosen: &str) -> Result<String, ActionError> {
    if chosen.is_empty() {
        return Ok(String::new());
    }
    let saved = jobs::saved_addresses(&state.db, actor.client_id()).await?;
    match crate::model::offered_choice(&saved, chosen) {
        Some(address) => Ok(address.clone()),
        None => Err(ActionError::invalid("saved_address", "choose one of the addresses offered, or type one")),
    }
}

/// Gives delivery details for lines of one or more open jobs of the actor's client. Each
/// quantity must be at most what the line holds less what earlier instructions took.
pub async fn give(
    state: &Services,
    actor: &Actor,
    req: &DeliveryRequest,
    now: DateTime<Utc>,
) -> Result<i64, ActionError> {
    check_may_act(actor)?;
    // A form names each line once: one named twice is a hand-made request, refused rather
    // than its quantities added unseen.
    let mut named = std::collections::HashSet::new();
    if let Some(l) = req.lines.iter().find(|l| !named.insert((l.job_id.as_str(), l.line_no))) {
        let job = crate::model::shown(&l.job_id, crate::model::ID_MAX);
        return Err(ActionError::invalid(&format!("qty[{job}:{}]", l.line_no), "is given twice; give each line once"));
    }
    let lines: Vec<&LineQty> = req.lines.iter().filter(|l| l.qty != 0).collect();
    if lines.is_empty() {
        return Err(ActionError::invalid("qty", "enter a quantity for at least one line"));
    }
    if let Some(l) = lines.iter().find(|l| l.qty < 0) {
        let job = crate::model::shown(&l.job_id, crate::model::ID_MAX);
        return Err(ActionError::invalid(&format!("qty[{job}:{}]", l.line_no), "must not be negative"));
    }
    let address = super::typed_text("address", &req.address, crate::model::Lines::Many, 1000, "where should it go?")?;
    let contact_name = super::optional_text(
        "contact_name",
        &req.contact_name,
        crate::model::Lines::One,
        crate::model::limits::PERSON_NAME,
    )?;
    let notes = super::optional_text("notes", &req.notes, crate::model::Lines::Many, 2000)?;
    if let Some(d) = req.required_date {
        let today = crate::actions::targets::today_of(state, &actor.contact, now).await?;
        if d < today {
            return Err(ActionError::invalid("required_date", "must not be in the past"));
        }
        if d > today + chrono::Days::new(MOST_DAYS_AHEAD) {
            return Err(ActionError::invalid("required_date", "must be within two years from today"));
        }
    }
    let mut tx = state.db.begin().await?;
    let mut by_job: BTreeMap<&str, Vec<&LineQty>> = BTreeMap::new();
    for l in &lines {
        by_job.entry(l.job_id.as_str()).or_default().push(l);
    }
    // Two submissions for the same jobs wait for each other here (job ids in order), and the
    // jobs are read after the wait.
    for job_id in by_job.keys() {
        jobs::lock_job(&mut tx, job_id).await?;
    }
    // The request's lines in job and line order (each is named once, checked above).
    let merged: BTreeMap<(&str, i64), i64> = lines.iter().map(|l| ((l.job_id.as_str(), l.line_no), l.qty)).collect();
    // The same request sent again (a second click, the back button, two at once): told, not
    // made twice. Partial instructions leave goods to instruct, so quantities alone cannot
    // tell.
    let asked: Vec<(String, i64, i64)> = merged.iter().map(|((j, n), q)| (j.to_string(), *n, *q)).collect();
    let given = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let details = (req.required_date, given(contact_name), given(notes));
    let since = now - chrono::Duration::minutes(crate::model::SAME_AGAIN_MINUTES);
    let sent = jobs::requests_since(&mut tx, &actor.contact.id, address, since).await?;
    if let Some(r) = sent.iter().find(|r| r.lines == asked && r.details == details) {
        tx.rollback().await?;
        return Err(ActionError::Conflict(format!(
            "you sent these delivery instructions at {} UTC already; TOT has them",
            r.at.format("%H:%M")
        )));
    }
    for (job_id, wanted) in &by_job {
        // A job is named by the form's fields: one that is not the client's is refused by its
        // field, and the form is kept.
        let job = match jobs::get_job(&mut tx, actor.client_id(), job_id).await {
            Ok(j) => j,
            Err(StoreError::NotFound) => {
                let job = crate::model::shown(job_id, crate::model::ID_MAX);
                let field = format!("qty[{job}:{}]", wanted[0].line_no);
                return Err(ActionError::invalid(&field, format!("you have no job {job}")));
            }
            Err(e) => return Err(e.into()),
        };
        if !job.status.is_open() {
            return Err(ActionError::Conflict(format!("job {job_id} is {}", job.status.words())));
        }
        if job.delivery_instructions == DeliveryInstructions::NotRequired {
            return Err(ActionError::Conflict(format!(
                "job {job_id} needs no delivery (you said so); if that has changed, ask TOT to open it for instructions again"
            )));
        }
        let held = jobs::list_garment_lines(&mut tx, job_id).await?;
        for w in wanted {
            let field = format!("qty[{job_id}:{}]", w.line_no);
            let Some(line) = held.iter().find(|h| h.line_no == w.line_no) else {
                return Err(ActionError::invalid(&field, format!("job {job_id} has no line {}", w.line_no)));
            };
            if w.qty > line.remaining() {
                return Err(ActionError::invalid(
                    &field,
                    format!(
                        "{} is more than the {} of “{}” still without instructions (job {job_id} holds {}, earlier instructions took {})",
                        w.qty,
                        line.remaining(),
                        line.description,
                        line.expected_qty,
                        line.instructed
                    ),
                ));
            }
        }
    }
    let rid = jobs::insert_request(
        &mut tx,
        &NewRequest {
            client_id: actor.client_id(),
            contact_id: &actor.contact.id,
            kind: "delivery",
            address: Some(address),
            required_date: req.required_date,
            contact_name: (!contact_name.is_empty()).then_some(contact_name),
            notes: (!notes.is_empty()).then_some(notes),
        },
        now,
    )
    .await?;
    for ((job_id, line_no), qty) in &merged {
        jobs::insert_request_line(&mut tx, rid, job_id, *line_no, *qty).await?;
    }
    for job_id in by_job.keys() {
        jobs::set_delivery_instructions(&mut tx, job_id, DeliveryInstructions::Given.as_str()).await?;
    }
    let seq = super::record(state, &mut tx, crate::model::ChangeKind::DeliveryInstructionsGiven, actor, &format!("DR-{rid}"),
        &json!({
            "request_id": rid,
            "jobs": by_job.keys().collect::<Vec<_>>(),
            "lines": merged.iter().map(|((job_id, line_no), qty)| json!({"job_id": job_id, "line_no": line_no, "qty": qty})).collect::<Vec<_>>(),
            "address": address,
            "required_date": req.required_date,
            "contact": contact_name,
            "notes": notes,
            "by": actor.contact.name,
            "channel": actor.channel,
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(seq)
}
