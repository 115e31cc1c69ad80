//! System emails sent through the outbox: delegated approval links, password resets,
//! invitations, sign-in links and chat link codes. One `*_email` function per kind, each a text + HTML pair.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::messages::{Brand, EmailPayload, SendError, new_message_id};
use crate::model::MessageKind;
use crate::services::Services;
use crate::store::StoreError;
use crate::store::contacts::ContactRow;
use crate::store::visuals::{DelegationRow, VisualRow};

fn render(state: &Services, kind: &str, ctx: serde_json::Value) -> Result<(String, String), SendError> {
    let r = |name: String| {
        state
            .templates
            .get_template(&name)
            .and_then(|t| t.render(&ctx))
            .map_err(|e| SendError::Permanent(format!("template {name}: {e:#}")))
    };
    Ok((r(format!("email/{kind}.txt.j2"))?, r(format!("email/{kind}.html.j2"))?))
}

fn brand(state: &Services) -> Brand<'_> {
    Brand::of(&state.config.branding)
}

fn payload(state: &Services, to_name: &str, to: &str, subject: String, parts: (String, String)) -> EmailPayload {
    EmailPayload {
        to_name: to_name.to_string(),
        to: to.to_string(),
        subject,
        text: parts.0,
        html: parts.1,
        message_id: new_message_id(&state.config),
        in_reply_to: None,
        references: None,
        item_keys: vec![],
    }
}

/// To a third party: approve or reject one visual through a single-use link.
pub fn delegation_email(
    state: &Services,
    from: &ContactRow,
    d: &DelegationRow,
    v: &VisualRow,
    link: &str,
    _now: DateTime<Utc>,
) -> Result<EmailPayload, SendError> {
    // The picture opens without a session for as long as the link does.
    let image = state.picture_url(&v.main_image, d.expires_at);
    let subject = format!("{} asks you to approve visual {} for {}", from.name, v.id, from.client_name);
    let parts = render(
        state,
        "delegation",
        json!({
            "brand": brand(state), "subject": subject, "name": d.name, "from": from.name, "client": from.client_name,
            "visual": {"id": v.id, "job_name": v.job_name, "category": v.category, "image": image},
            "link": link, "expires": d.expires_at.format("%a %-d %b %Y %H:%M UTC").to_string(),
        }),
    )?;
    Ok(payload(state, &d.name, &d.email, subject, parts))
}

/// A single-use password-reset link.
pub fn reset_email(state: &Services, c: &ContactRow, link: &str) -> Result<EmailPayload, SendError> {
    let minutes = json!({"minutes": state.config.portal.reset_minutes});
    link_email(state, c, link, "reset", "reset your portal password", minutes)
}

/// A sign-in link (magic link).
pub fn login_email(state: &Services, c: &ContactRow, link: &str) -> Result<EmailPayload, SendError> {
    let days = json!({"days": state.config.digest.link_ttl_days});
    link_email(state, c, link, "login", "your sign-in link", days)
}

/// An email to a contact whose point is one signed link; `extra` adds to the template's context.
fn link_email(
    state: &Services,
    c: &ContactRow,
    link: &str,
    template: &str,
    about: &str,
    extra: serde_json::Value,
) -> Result<EmailPayload, SendError> {
    let subject = format!("{}: {about}", state.config.branding.name);
    let mut ctx =
        json!({"brand": brand(state), "subject": subject, "name": c.name, "link": link, "client": c.client_name});
    if let (Some(ctx), serde_json::Value::Object(extra)) = (ctx.as_object_mut(), extra) {
        ctx.extend(extra);
    }
    Ok(payload(state, &c.name, &c.email, subject, render(state, template, ctx)?))
}

/// To someone who asked for a portal account: it was made, or it was not; to `name` at
/// `email`, about an account for `company`.
pub fn access_email(
    state: &Services,
    name: &str,
    email: &str,
    company: &str,
    granted: bool,
) -> Result<EmailPayload, SendError> {
    let subject = if granted {
        format!("{}: your portal account", state.config.branding.name)
    } else {
        format!("{}: your request for a portal account", state.config.branding.name)
    };
    let parts = render(
        state,
        "access",
        json!({"brand": brand(state), "subject": subject, "name": name, "company": company, "granted": granted,
               "login": format!("{}/login", state.config.public_url.trim_end_matches('/'))}),
    )?;
    Ok(payload(state, name, email, subject, parts))
}

/// A contact who asks again for the same kind of system email within this many seconds gets
/// no second one: a double click, or someone typing a person's address over and over, sends
/// one email, and the first one's link or code still works.
pub const REPEAT_SECONDS: i64 = 60;

/// What became of a system email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    /// On its way.
    Yes,
    /// Email to the contact is suspended after bounces (why, as kept): the sender would only
    /// make it dead, so nothing was queued.
    Suspended(String),
    /// One of the same kind went to the contact at this time, less than [`REPEAT_SECONDS`]
    /// ago: nothing more was queued.
    Already(DateTime<Utc>),
    /// The email could not be written (cport's bug, logged): nothing was queued.
    Unwritable,
}

/// Queues a system email of kind `what` (`sign-in`, `reset`, `chat-code`, `invite`) to
/// `contact_id` in `tx`, unless email to them is suspended after bounces or one of that kind
/// went to them within [`REPEAT_SECONDS`]. An email that could not be written is cport's bug,
/// not the contact's: said loudly, naming `what`, never silently dropped. The caller wakes the
/// senders once `tx` is committed.
async fn queue_once(
    tx: &mut crate::store::Tx,
    signer: &crate::links::Signer,
    contact_id: &str,
    what: &str,
    email: Result<EmailPayload, SendError>,
    now: DateTime<Utc>,
) -> Result<Queued, StoreError> {
    if let Some(why) = crate::store::settings::email_suspended(tx, contact_id).await? {
        return Ok(Queued::Suspended(why));
    }
    let kind = format!("{what}:{contact_id}:");
    // One sent before the password was last set is no repeat: its link is spent by that.
    let since = now - Duration::seconds(REPEAT_SECONDS);
    let since = crate::store::sessions::password_set_at(&mut *tx, contact_id).await?.map_or(since, |t| since.max(t));
    if let Some(at) = crate::store::outbox::queued_since(tx, contact_id, &kind, since).await? {
        return Ok(Queued::Already(at));
    }
    let p = match email {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(contact = %contact_id, email = what, error = %e, "bug: an email could not be written");
            return Ok(Queued::Unwritable);
        }
    };
    let idem = format!("{kind}{}", now.timestamp_micros());
    // With a reply address and a bounce address of its own, as every email has: a reply
    // (HELP, LINK) is answered, and a bounce counts against the contact's address.
    let token = Some(signer.new_reply_token());
    crate::store::outbox::insert_message(tx, &p.queued(Some(contact_id), MessageKind::System, idem, token, now), now)
        .await?;
    Ok(Queued::Yes)
}

/// [`queue_once`] in a transaction of its own, waking the senders when something was queued.
async fn queue_system(
    state: &Services,
    contact_id: &str,
    what: &str,
    email: Result<EmailPayload, SendError>,
    now: DateTime<Utc>,
) -> Result<Queued, StoreError> {
    let queued =
        state.db.in_transaction(async |tx| queue_once(tx, &state.signer, contact_id, what, email, now).await).await?;
    if queued == Queued::Yes {
        state.wake_dispatch.notify_waiters();
    }
    Ok(queued)
}

/// Queues a sign-in link to a contact (asked for on the sign-in page, or sent by staff).
pub async fn send_login_link(state: &Services, c: &ContactRow, now: DateTime<Utc>) -> Result<Queued, StoreError> {
    let link = state.portal_link(&c.id, "/", now);
    queue_system(state, &c.id, "sign-in", login_email(state, c, &link), now).await
}

/// Issues a fresh chat link code and sends it to the contact's own address, together: a code
/// staff issue for a contact reaches only that contact (shown to staff, it would let them tie
/// their own chat to the contact and act as the client). When nothing is queued, no code is
/// made either; while no chat is set up, none is asked for.
pub async fn send_chat_code(
    state: &Services,
    c: &ContactRow,
    now: DateTime<Utc>,
) -> Result<Queued, super::ActionError> {
    super::chat_link::chat_is_on(&state.config)?;
    let mut tx = state.db.begin().await?;
    // The contact first, then its codes: the order every other path takes them in.
    crate::store::contacts::lock(&mut tx, &c.id).await?;
    let code = super::chat_link::new_link_code_in(&mut tx, &c.id, now).await?;
    let subject = format!("{}: your chat link code", state.config.branding.name);
    let how = super::chat_link::how_to_link(&state.config, &code);
    let ctx = json!({"brand": brand(state), "subject": subject, "name": c.name, "client": c.client_name,
                     "label": super::chat_link::CODE_LABEL, "code": code, "how": how});
    let email = render(state, "chat_code", ctx).map(|parts| payload(state, &c.name, &c.email, subject, parts));
    let queued = queue_once(&mut tx, &state.signer, &c.id, "chat-code", email, now).await?;
    if queued == Queued::Yes {
        tx.commit().await?;
        state.wake_dispatch.notify_waiters();
    } else {
        tx.rollback().await?;
    }
    Ok(queued)
}

/// How long an invitation link works.
pub const INVITE_DAYS: i64 = 7;

/// Invites a new third-party user: a single-use link, valid [`INVITE_DAYS`], to choose a
/// password (the password-reset page and its one-time token), after which they sign in.
pub async fn send_invitation(
    state: &Services,
    id: &str,
    name: &str,
    email: &str,
    from: &ContactRow,
    now: DateTime<Utc>,
) -> Result<(), crate::store::StoreError> {
    let link = state.signer.set_password_url(&state.config.public_url, id, chrono::Duration::days(INVITE_DAYS), now);
    let subject = format!("{}: {} invites you to order", state.config.branding.name, from.client_name);
    let parts = render(
        state,
        "invite",
        json!({"brand": brand(state), "subject": subject, "name": name, "from": from.name,
               "client": from.client_name, "link": link, "days": INVITE_DAYS}),
    );
    let invitation = parts.map(|parts| payload(state, name, email, subject, parts));
    queue_system(state, id, "invite", invitation, now).await.map(|_| ())
}

/// Queues a single-use password-reset link for a contact.
pub async fn send_reset_link(state: &Services, c: &ContactRow, now: DateTime<Utc>) -> Result<Queued, StoreError> {
    let queued = state.db.in_transaction(async |tx| queue_reset_link(state, tx, c, now).await).await?;
    if queued == Queued::Yes {
        state.wake_dispatch.notify_waiters();
    }
    Ok(queued)
}

/// [`send_reset_link`] inside the caller's transaction (the `RESET` command's unit).
pub async fn queue_reset_link(
    state: &Services,
    tx: &mut crate::store::Tx,
    c: &ContactRow,
    now: DateTime<Utc>,
) -> Result<Queued, StoreError> {
    let ttl = Duration::minutes(i64::from(state.config.portal.reset_minutes));
    let link = state.signer.set_password_url(&state.config.public_url, &c.id, ttl, now);
    queue_once(tx, &state.signer, &c.id, "reset", reset_email(state, c, &link), now).await
}
