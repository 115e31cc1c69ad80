//! Approving, rejecting, delegating and commenting on visuals.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{ActionError, Actor, Unit, found};
use crate::model::{ChangeKind, MessageKind, Role, VisualStatus};
use crate::services::Services;
use crate::store::visuals::{self, DelegationRow, VisualRow};

fn check_scope(actor: &Actor, id: &str) -> Result<(), ActionError> {
    if let Some(d) = &actor.delegation
        && d.visual_id != id
    {
        return Err(ActionError::NotFound(format!("visual {id}")));
    }
    Ok(())
}

/// Whether `actor` may approve or reject a visual whose status is `status` now: admins and
/// buyers while it awaits approval, and (to withdraw an approval) once it is approved; a
/// delegate once, while it awaits approval. The portal shows its buttons by this; the
/// decision itself checks the same in `decide_in`.
pub fn may_decide(actor: &Actor, status: VisualStatus, delegation_used: bool) -> bool {
    match &actor.delegation {
        Some(_) => !delegation_used && status == VisualStatus::AwaitingApproval,
        None => actor.may_act() && matches!(status, VisualStatus::AwaitingApproval | VisualStatus::Approved),
    }
}

/// Whether `actor` may comment on a visual with `status`: anyone who may decide on visuals;
/// a delegate, asked for one decision, only while it is still to be made (`delegation_used`:
/// their link was used, or has expired). The portal offers the comment form by it, and
/// [`comment`] refuses by it.
pub fn may_comment(actor: &Actor, status: VisualStatus, delegation_used: bool) -> bool {
    match &actor.delegation {
        Some(_) => may_decide(actor, status, delegation_used),
        None => actor.role.acts_on_orders(),
    }
}

/// Whether a delegation has done its work by `now`: its link was used, or it has expired. It
/// then lends its holder no decision and no comment ([`may_decide`], [`may_comment`]).
pub fn delegation_spent(d: &DelegationRow, now: DateTime<Utc>) -> bool {
    d.used_at.is_some() || d.expires_at <= now
}

/// Whether `actor` may hand a visual with `status` to someone else to decide on.
pub fn may_delegate(actor: &Actor, status: VisualStatus) -> bool {
    actor.may_act() && status == VisualStatus::AwaitingApproval
}

/// Whether a delegation still lends its giver's right to decide on one visual: it has not
/// expired, and the giver (whose role may have changed since) may still decide on visuals.
pub fn delegation_holds(giver: Role, d: &DelegationRow, now: DateTime<Utc>) -> bool {
    d.expires_at > now && giver.acts_on_orders()
}

/// Refuses anyone who may not decide on visuals at all (admins, buyers and delegates may).
pub fn check_may_act(actor: &Actor) -> Result<(), ActionError> {
    if actor.delegation.is_some() || actor.role.acts_on_orders() {
        Ok(())
    } else {
        Err(ActionError::Forbidden(format!("your role ({}) may not approve or reject visuals", actor.role)))
    }
}

/// A visual a message's button may decide on: one the actor sees, still awaiting approval
/// (decided since the message was sent, it is a conflict naming how it stands). Asked before
/// a confirmation or a reason is asked for; the decision checks again as it is made.
pub async fn awaiting(state: &Services, actor: &Actor, id: &str) -> Result<VisualRow, ActionError> {
    let v = visible_visual(state, actor, id).await?;
    if v.status != VisualStatus::AwaitingApproval {
        return Err(ActionError::Conflict(format!(
            "Visual {id} is {} already: nothing was changed.",
            v.status.words()
        )));
    }
    Ok(v)
}

/// A visual the actor may see (404 for another client's, or outside a delegation).
pub async fn visible_visual(state: &Services, actor: &Actor, id: &str) -> Result<VisualRow, ActionError> {
    check_scope(actor, id)?;
    if actor.delegation.is_none() && !actor.may_see_visuals() {
        return Err(ActionError::Forbidden(format!("your role ({}) does not show visuals", actor.role)));
    }
    found(visuals::get_visual(&state.db, actor.client_id(), id).await, || format!("visual {id}"))
}

/// What happened to one visual of an approval.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decided {
    pub visual_id: String,
    pub seq: i64,
}

/// What a client decides about a visual: a rejection always has its reason, an approval none.
#[derive(Clone, Copy)]
enum Verdict<'a> {
    Approve,
    /// `withdraw`: the client saw the visual approved and means to withdraw that approval (the
    /// portal's form says so); otherwise a rejection is of a visual awaiting approval only.
    Reject {
        reason: &'a str,
        withdraw: bool,
    },
}

impl<'a> Verdict<'a> {
    fn status(self) -> VisualStatus {
        match self {
            Verdict::Approve => VisualStatus::Approved,
            Verdict::Reject { .. } => VisualStatus::Rejected,
        }
    }
    fn reason(self) -> Option<&'a str> {
        match self {
            Verdict::Approve => None,
            Verdict::Reject { reason, .. } => Some(reason),
        }
    }
}

/// One decision: inside an inbound message's [`Unit`] when given one, else in its own
/// transaction (the portal's way: each visual of a batch lands alone).
async fn decide(
    state: &Services,
    unit: Option<&mut Unit>,
    actor: &Actor,
    id: &str,
    verdict: Verdict<'_>,
    now: DateTime<Utc>,
) -> Result<Decided, ActionError> {
    if let Some(unit) = unit {
        return decide_in(state, unit.tx().await?, actor, id, verdict, now).await;
    }
    let d = state.db.in_transaction(async |tx| decide_in(state, tx, actor, id, verdict, now).await).await?;
    state.wake_dispatch.notify_waiters();
    Ok(d)
}

/// One decision inside the caller's transaction; nothing is written unless it succeeds up
/// to the status change.
async fn decide_in(
    state: &Services,
    tx: &mut crate::store::Tx,
    actor: &Actor,
    id: &str,
    verdict: Verdict<'_>,
    now: DateTime<Utc>,
) -> Result<Decided, ActionError> {
    let (to, reason) = (verdict.status(), verdict.reason());
    check_scope(actor, id)?;
    check_may_act(actor)?;
    let v = found(visuals::get_visual(&mut *tx, actor.client_id(), id).await, || format!("visual {id}"))?;
    use VisualStatus::{Approved, AwaitingApproval, Rejected};
    let withdraw = matches!(verdict, Verdict::Reject { withdraw: true, .. });
    let from = match (v.status, to) {
        // The withdraw form, from a page that showed it approved: it was reopened since.
        (AwaitingApproval, Rejected) if withdraw => {
            return Err(ActionError::Conflict(format!(
                "visual {id} is awaiting approval again (TOT reopened it since your page was shown): look at it again"
            )));
        }
        (AwaitingApproval, _) => AwaitingApproval,
        // Un-approving: an approved visual may be rejected with a reason (not by a delegate),
        // by someone who saw it approved: a rejection sent from a page or message that showed
        // it awaiting approval would withdraw another's approval unseen.
        (Approved, Rejected) if actor.delegation.is_none() && withdraw => Approved,
        (Approved, Rejected) if actor.delegation.is_none() => {
            let by = match visuals::last_decision(&mut *tx, id).await? {
                Some(d) if d.decision == Approved => {
                    format!(" by {} at {} UTC", d.decided_by, d.at.format("%Y-%m-%d %H:%M"))
                }
                _ => String::new(),
            };
            return Err(ActionError::Conflict(format!(
                "visual {id} was approved{by}; to withdraw that approval, use Withdraw approval on its page in the portal"
            )));
        }
        (Approved, _) => return Err(ActionError::Conflict(format!("visual {id} is already approved"))),
        (Rejected, _) => {
            return Err(ActionError::Conflict(format!("visual {id} was rejected; TOT will send a new visual")));
        }
    };
    if let Some(d) = &actor.delegation
        && !visuals::use_delegation(tx, d.id, now).await?
    {
        return Err(ActionError::Conflict("this approval link has been used already or has expired".into()));
    }
    if !visuals::set_status(tx, id, from.as_str(), to.as_str()).await? {
        return Err(ActionError::Conflict(format!("visual {id} was changed by someone else a moment ago")));
    }
    let who = actor.display_name();
    visuals::insert_decision(tx, id, to, reason, &who, actor.channel, now).await?;
    let kind = if to == Approved { ChangeKind::VisualApproved } else { ChangeKind::VisualRejected };
    let mut data = json!({
        "visual_id": id,
        "job_id": v.job_id,
        "design_id": v.design_id,
        "by": who,
        "channel": actor.channel,
    });
    if to == Approved {
        let charges = visuals::list_charges(&mut *tx, id).await?;
        let total = crate::model::lines_total(charges.iter().map(|c| (c.qty, c.unit_price)));
        data["charges_total"] = json!(crate::model::Money(total).to_string());
        data["terms_accepted"] = json!(state.config.branding.approval_terms);
    }
    if let Some(r) = reason {
        data["reason"] = json!(r);
    }
    if from == Approved {
        data["unapproved"] = json!(true);
    }
    if let Some(d) = &actor.delegation {
        data["delegation"] = json!({"id": d.id, "name": d.name, "email": d.email});
    }
    let seq = super::record(state, tx, kind, actor, id, &data, now).await?;
    tracing::info!(visual = id, to = to.as_str(), by = %who, channel = %actor.channel, seq, "visual decided");
    Ok(Decided { visual_id: id.to_string(), seq })
}

/// Approves one or more visuals (and their costs). `terms_accepted` must be true: the
/// client saw and accepted the approval terms (a chat or email command counts as that: the
/// terms were in the message replied to). Without a `unit` each visual is its own
/// transaction; the result lists what happened to each, by id (each named once, in the order
/// first named).
pub async fn approve(
    state: &Services,
    mut unit: Option<&mut Unit>,
    actor: &Actor,
    ids: &[String],
    terms_accepted: bool,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Result<Decided, ActionError>)>, ActionError> {
    // Who may decide is asked first: a role that may not hears that, not what was wrong
    // with a form it could never send.
    check_may_act(actor)?;
    let ids = distinct_ids(ids)?;
    if !terms_accepted {
        return Err(ActionError::invalid("terms", "tick the box to accept the approval terms"));
    }
    // A list naming a visual this contact cannot see (a typo, another client's) is refused
    // whole, naming each such id, before anything is approved. What changes meanwhile (a
    // colleague's decision) is answered visual by visual below.
    let mut unknown = Vec::new();
    for id in &ids {
        match visible_visual(state, actor, id).await {
            Ok(_) => {}
            Err(ActionError::NotFound(_)) => unknown.push(crate::model::quoted(id)),
            Err(e) => return Err(e),
        }
    }
    if !unknown.is_empty() {
        return Err(ActionError::invalid(
            "visuals",
            format!("no visual {} among yours; nothing was approved", unknown.join(", ")),
        ));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match decide(state, unit.as_deref_mut(), actor, id, Verdict::Approve, now).await {
            // In a unit the store failing is no answer about one visual: it stops the batch,
            // so the unit it left half written is rolled back by its caller, never committed.
            // Without one, each visual landed alone, and the result says which did.
            Err(ActionError::Store(e)) if unit.is_some() => return Err(ActionError::Store(e)),
            r => out.push((id.to_string(), r)),
        }
    }
    Ok(out)
}

/// The most visuals one batch decision may name.
pub const MOST_AT_ONCE: usize = 100;

/// The visuals a batch decision names, each once; refused when there are none or too many
/// (found as soon as one more than the most is seen, however long the list).
fn distinct_ids(ids: &[String]) -> Result<Vec<&str>, ActionError> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<&str> = Vec::new();
    for id in ids.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        if seen.insert(id) {
            out.push(id);
        }
        if out.len() > MOST_AT_ONCE {
            return Err(ActionError::invalid("visuals", format!("at most {MOST_AT_ONCE} visuals at once")));
        }
    }
    if out.is_empty() {
        return Err(ActionError::invalid("visuals", "choose at least one visual"));
    }
    Ok(out)
}

/// Rejects a visual awaiting approval, or with `withdraw` (the client saw it approved)
/// withdraws its approval; a reason is required. Inside `unit` when given one.
pub async fn reject(
    state: &Services,
    unit: Option<&mut Unit>,
    actor: &Actor,
    id: &str,
    reason: &str,
    withdraw: bool,
    now: DateTime<Utc>,
) -> Result<Decided, ActionError> {
    check_may_act(actor)?;
    let reason = check_reason(reason)?;
    decide(state, unit, actor, id, Verdict::Reject { reason, withdraw }, now).await
}

/// A rejection's reason as it is kept (trimmed), or why it cannot be.
pub fn check_reason(reason: &str) -> Result<&str, ActionError> {
    super::typed_text("reason", reason, crate::model::Lines::Many, 2000, "say why the visual is rejected")
}

/// Adds a comment to a visual's thread.
pub async fn comment(
    state: &Services,
    actor: &Actor,
    id: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<i64, ActionError> {
    // Said before the comment is read or the visual looked up: whatever it is, a read-only
    // role may not write it.
    if actor.delegation.is_none() && !may_comment(actor, VisualStatus::AwaitingApproval, false) {
        return Err(ActionError::Forbidden(format!("your role ({}) is read-only", actor.role)));
    }
    let body = super::typed_text("comment", body, crate::model::Lines::Many, 5000, "write something first")?;
    let v = visible_visual(state, actor, id).await?;
    if let Some(d) = &actor.delegation {
        if delegation_spent(&visuals::get_delegation(&state.db, d.id).await?, now) {
            return Err(ActionError::Forbidden("this approval link has been used or has expired".into()));
        }
        // A delegate is asked for one decision: once the visual is decided (by the client, or
        // another delegate), there is nothing left to say to TOT's designer about it.
        if !may_comment(actor, v.status, false) {
            return Err(ActionError::Conflict(format!(
                "visual {id} is {} already; this link asks for nothing more",
                v.status.words()
            )));
        }
    }
    let who = actor.display_name();
    let mut tx = state.db.begin().await?;
    visuals::lock_visual(&mut tx, id).await?;
    let since = now - Duration::minutes(crate::model::SAME_AGAIN_MINUTES);
    if let Some(at) = visuals::same_comment(&mut tx, id, &who, body, since).await? {
        tx.rollback().await?;
        return Err(ActionError::Conflict(format!(
            "this comment from {who} is on visual {id} already (written at {} UTC); it is in the thread",
            at.format("%H:%M")
        )));
    }
    visuals::insert_comment(&mut tx, id, &who, body, now).await?;
    let data = json!({"visual_id": id, "job_id": v.job_id, "by": who, "body": body, "channel": actor.channel});
    let seq = super::record(state, &mut tx, crate::model::ChangeKind::VisualCommented, actor, id, &data, now).await?;
    tx.commit().await?;
    Ok(seq)
}

/// What a delegation produced: the link to email and the row.
#[derive(Debug, Clone)]
pub struct Delegation {
    pub id: i64,
    pub seq: i64,
    pub link: String,
}

/// A visual asked to be handed on once it was decided.
fn needs_no_approval(id: &str, status: VisualStatus) -> ActionError {
    ActionError::Conflict(format!("visual {id} is {} and needs no approval", status.words()))
}

/// Hands a visual to a third party: a single-use, expiring approval link is emailed to them
/// through the outbox, in the same transaction as the delegation and its event.
pub async fn delegate(
    state: &Services,
    actor: &Actor,
    id: &str,
    name: &str,
    email: &str,
    now: DateTime<Utc>,
) -> Result<Delegation, ActionError> {
    if actor.delegation.is_some() {
        return Err(ActionError::Forbidden("a delegated approval cannot be delegated again".into()));
    }
    check_may_act(actor)?;
    let name = super::typed_text(
        "name",
        name,
        crate::model::Lines::One,
        crate::model::limits::PERSON_NAME,
        "who should approve it?",
    )?;
    // Handed to no one: cport's own addresses reach no person, and one's own is no one else.
    let email = super::person_email(state, "email", email, "the person who should approve it")?;
    if email.eq_ignore_ascii_case(&actor.contact.email) {
        return Err(ActionError::invalid("email", "is your own address; approve it yourself, or give someone else's"));
    }
    let v = visible_visual(state, actor, id).await?;
    if v.status != VisualStatus::AwaitingApproval {
        return Err(needs_no_approval(id, v.status));
    }
    let ttl = Duration::hours(i64::from(state.config.portal.delegation_hours));
    let mut tx = state.db.begin().await?;
    if let Some(until) = visuals::open_delegation(&mut tx, id, email, now).await? {
        tx.rollback().await?;
        return Err(ActionError::Conflict(format!(
            "visual {id} was handed to {email} already; that link works until {} UTC",
            until.format("%Y-%m-%d %H:%M")
        )));
    }
    // Read again under the visual's lock: decided by a colleague a moment ago, it is handed
    // to no one (no email, no event for a visual that needs no approval).
    let now_status = visuals::get_visual(&mut tx, actor.client_id(), id).await?.status;
    if now_status != VisualStatus::AwaitingApproval {
        tx.rollback().await?;
        return Err(needs_no_approval(id, now_status));
    }
    let row = DelegationRow {
        id: 0,
        visual_id: id.to_string(),
        client_id: actor.client_id().to_string(),
        contact_id: actor.contact.id.clone(),
        name: name.to_string(),
        email: email.to_string(),
        expires_at: now + ttl,
        used_at: None,
    };
    let did = visuals::insert_delegation(&mut tx, &row, now).await?;
    let link = state.signer.delegation_url(&state.config.public_url, id, did, ttl, now);
    let payload = crate::actions::mail::delegation_email(state, &actor.contact, &row, &v, &link, now)
        .map_err(|e| ActionError::Conflict(format!("the email could not be written: {e}")))?;
    crate::store::outbox::insert_message(
        &mut tx,
        // To a third party: no contact, so the delegator's own bounces cannot stop it.
        &payload.queued(None, MessageKind::System, format!("delegation:{did}"), None, now),
        now,
    )
    .await?;
    let data = json!({"visual_id": id, "job_id": v.job_id, "by": actor.contact.name, "to_name": name, "to_email": email,
                      "expires_at": row.expires_at, "channel": actor.channel});
    let seq = super::record(state, &mut tx, crate::model::ChangeKind::VisualDelegated, actor, id, &data, now).await?;
    tx.commit().await?;
    state.wake_dispatch.notify_waiters();
    Ok(Delegation { id: did, seq, link })
}
