//! A message as it goes: an email row built into its MIME message, a chat row into its
//! message, an alert composed afresh from the items still open, a digest that has waited
//! written again without the items dealt with meanwhile, a digest or banner written again
//! for its contact as TOT has them now. The dispatcher sends what this makes; the staff
//! console shows it.

use chrono::{DateTime, Duration, Utc};

use crate::actions::outbox::still_listed;
use crate::channels::chat::ChatPayload;
use crate::channels::email::{Built, EmailPayload, Unsubscribe, build_message};
use crate::channels::{Providers, SendError};
use crate::messages::compose::{Composer, Recipient};
use crate::model::{MessageKind, Outlet};
use crate::store::StoreError;
use crate::store::contacts::Reach;
use crate::store::outbox::{AlertPayload, OutboxRow};

/// An email as it would go now.
pub(super) struct EmailOut {
    /// What it says: an alert's composed afresh from the items still open; a digest's or
    /// banner's written again when it has waited or TOT changed its contact since.
    pub payload: EmailPayload,
    /// The message built from it.
    pub built: Built,
    /// A digest or banner written again: the row is to keep this payload instead of its own.
    pub again: bool,
}

/// An email row as it would go now ([`EmailOut`]). `reach`: how the contact is reached now,
/// when known. `Ok(None)`: nothing would go.
pub(super) async fn email_of(
    state: &Providers,
    row: &OutboxRow,
    reach: Option<&Reach>,
    now: DateTime<Utc>,
) -> Result<Result<Option<EmailOut>, SendError>, StoreError> {
    let mut again = false;
    let payload = if row.message.kind == MessageKind::Alert {
        match alert_email(state, row, now).await? {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(Ok(None)),
            Err(e) => return Ok(Err(e)),
        }
    } else {
        let p = match serde_json::from_str::<EmailPayload>(&row.message.payload) {
            Ok(p) => p,
            Err(e) => return Ok(Err(SendError::Permanent(format!("unreadable payload: {e}")))),
        };
        let moved = changed_since(row, reach);
        let written = match row.message.kind {
            MessageKind::Digest => match digest_again(state, row, &p.item_keys, moved, now).await? {
                Again::AsWritten => Ok(Some(p)),
                Again::Rewritten(d) => {
                    again = true;
                    d.email(state, row, &p, now).map(Some)
                }
                Again::Nothing => Ok(None),
            },
            MessageKind::Banner if moved => {
                again = true;
                banner_again(state, row, &p, now).await?
            }
            _ => Ok(Some(p)),
        };
        match written {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(Ok(None)),
            Err(e) => return Ok(Err(e)),
        }
    };
    let one_click = unsubscribe_url(state, row, now);
    let unsubscribe = match (&one_click, &row.message.contact_id) {
        (Some(url), _) => Unsubscribe::OneClick(url),
        (None, Some(_)) => Unsubscribe::Preferences,
        (None, None) => Unsubscribe::Not,
    };
    let bounce = row.message.reply_token.as_deref().map(|t| state.signer.bounce_token(t));
    let tokens = row
        .message
        .reply_token
        .as_deref()
        .zip(bounce.as_deref())
        .map(|(reply, bounce)| crate::channels::email::ReplyTokens { reply, bounce });
    let built = build_message(
        &state.config,
        state.dkim.as_deref(),
        &payload,
        tokens,
        unsubscribe,
        // The time it went, for one sent (the console shows its headers as written); now,
        // for one about to go.
        row.sent_at.unwrap_or(now),
    );
    Ok(built.map(|built| Some(EmailOut { payload, built, again })))
}

/// Whether a digest or banner still to go was written before TOT changed its contact (their
/// address, role or name, while it waited for a retry or its banner's start): it is then
/// written again for them as they are, never sent to an address that is no longer theirs
/// (it holds their signed links and names the address) nor showing what their role no
/// longer sees.
fn changed_since(row: &OutboxRow, reach: Option<&Reach>) -> bool {
    row.still_to_go()
        && matches!(row.message.kind, MessageKind::Digest | MessageKind::Banner)
        && reach.is_some_and(|r| {
            r.updated_at > row.created_at
                || (row.message.channel == Outlet::Email && !r.email.eq_ignore_ascii_case(&row.message.recipient))
        })
}

/// How long a one-click unsubscribe address works (a mail client may use it weeks later).
const UNSUBSCRIBE_DAYS: i64 = 90;

/// The one-click unsubscribe address of a digest or alert email (RFC 8058); none for others.
fn unsubscribe_url(state: &Providers, row: &OutboxRow, now: DateTime<Utc>) -> Option<String> {
    let contact = row.message.contact_id.as_deref()?;
    let what = crate::model::Stoppable::of_kind(row.message.kind)?;
    Some(state.signer.unsubscribe_url(&state.config.public_url, contact, what, Duration::days(UNSUBSCRIBE_DAYS), now))
}

/// A chat row's message: its own, or an alert's made now from its items still open (`None`
/// when none is left), or a digest that has waited written again without what was dealt with
/// (then with the payload to keep for it); an error says why the row cannot be read.
pub(super) async fn chat_message(
    state: &Providers,
    row: &OutboxRow,
    reach: Option<&Reach>,
    now: DateTime<Utc>,
) -> Result<Result<Option<(crate::messages::ChatMessage, Option<String>)>, String>, StoreError> {
    let payload: ChatPayload = match serde_json::from_str(&row.message.payload) {
        Ok(p) => p,
        Err(e) => return Ok(Err(format!("unreadable payload: {e}"))),
    };
    Ok(match (payload.message, row.message.kind, &row.message.contact_id) {
        (Some(m), MessageKind::Digest, _) => {
            match digest_again(state, row, &payload.items, changed_since(row, reach), now).await? {
                Again::Rewritten(again) => {
                    let m =
                        crate::channels::chat::digest_message(state, &again.contact, &again.open, &again.banners, now);
                    let keys = again.open.iter().map(crate::actions::items::ActionItem::key).collect();
                    Ok(Some((m.clone(), Some(ChatPayload::digest(m, keys)))))
                }
                Again::AsWritten => Ok(Some((m, None))),
                Again::Nothing => Ok(None),
            }
        }
        (Some(m), _, _) => Ok(Some((m, None))),
        (None, MessageKind::Alert, Some(contact_id)) => {
            match still_open(state, contact_id, (&payload.items, payload.reminder)).await? {
                Some((contact, open)) => Ok(Some((
                    crate::channels::chat::alert_message(state, &contact, &open, payload.reminder, now).await?,
                    None,
                ))),
                None => Ok(None),
            }
        }
        _ => Err("chat message without content".into()),
    })
}

/// An alert's contact and those of its items still open, and still of a category the
/// contact wants alerted at once (one they set to `digest` or `off` while the alert was held
/// by quiet hours, the batch window or a retry is left out; a staff reminder is staff's own
/// word and goes whatever the modes say); `None` when the contact is gone or nothing is left
/// (the alert is then dropped).
async fn still_open(
    state: &Providers,
    contact_id: &str,
    (keys, reminder): (&[String], bool),
) -> Result<Option<(crate::store::contacts::ContactRow, Vec<crate::actions::items::ActionItem>)>, StoreError> {
    let Some((contact, listed)) = still_listed(state, contact_id, keys).await? else {
        return Ok(None);
    };
    let s = crate::store::settings::get_settings(&state.db, contact_id).await?;
    let wanted = |i: &crate::actions::items::ActionItem| {
        reminder || crate::actions::targets::mode(&state.config, &s, i.category) == crate::model::AlertMode::Instant
    };
    let open: Vec<_> = listed.into_iter().filter(wanted).collect();
    Ok((!open.is_empty()).then_some((contact, open)))
}

/// A digest that has waited, written again: its contact, the items it lists still open for
/// them, and the banners showing now.
struct DigestAgain {
    contact: crate::store::contacts::ContactRow,
    open: Vec<crate::actions::items::ActionItem>,
    banners: Vec<crate::store::banners::BannerRow>,
    /// The items the digest before it listed (an email's "new" marks are against them).
    previous: Option<std::collections::HashSet<String>>,
}

/// What becomes of a digest as it goes.
enum Again {
    /// It goes as written: fresh, or every item it lists still open.
    AsWritten,
    /// It goes written again.
    Rewritten(Box<DigestAgain>),
    /// Nothing it lists is open for its contact (or the contact is gone): it does not go.
    Nothing,
}

/// A digest that has waited (a retry, a long queue, queued again by staff) and lists items
/// dealt with meanwhile is written again with only those still open, so it asks for nothing
/// that is done; one whose contact TOT changed since (`moved`, see [`changed_since`]) is
/// written again whatever it lists, for the contact as they are now.
async fn digest_again(
    state: &Providers,
    row: &OutboxRow,
    keys: &[String],
    moved: bool,
    now: DateTime<Utc>,
) -> Result<Again, StoreError> {
    let (Some(contact_id), true) = (&row.message.contact_id, row.still_to_go() && (moved || row.has_waited(now)))
    else {
        return Ok(Again::AsWritten);
    };
    // A digest that lists nothing readable (a chat digest written before digests kept
    // their items) cannot be read again: it goes as written, unless that is to an email
    // address that is no longer its contact's.
    if keys.is_empty() {
        let readdressed = moved && row.message.channel == Outlet::Email;
        return Ok(if readdressed { Again::Nothing } else { Again::AsWritten });
    }
    let Some((contact, open)) = still_listed(state, contact_id, keys).await? else {
        return Ok(Again::Nothing);
    };
    if open.is_empty() {
        return Ok(Again::Nothing);
    }
    let still: std::collections::HashSet<String> = open.iter().map(crate::actions::items::ActionItem::key).collect();
    if !moved && keys.iter().all(|k| still.contains(k)) {
        return Ok(Again::AsWritten);
    }
    let live = crate::store::banners::list_live(&state.db, now).await?;
    let banners = crate::actions::banners::for_client(&live, &contact.client_id, now);
    let previous = match row.message.channel {
        Outlet::Email => crate::store::outbox::last_digest_payload(
            &state.db,
            contact_id,
            Outlet::Email,
            Some((row.created_at, row.id)),
        )
        .await?
        .and_then(|p| serde_json::from_str::<EmailPayload>(&p).ok())
        .map(|p| p.item_keys.into_iter().collect()),
        _ => None,
    };
    Ok(Again::Rewritten(Box::new(DigestAgain { contact, open, banners, previous })))
}

impl DigestAgain {
    /// The email written again: its Message-ID and reply address kept (a reply to it is
    /// read as a reply to the digest), its "new" marks against the digest before it.
    fn email(
        &self,
        state: &Providers,
        row: &OutboxRow,
        was: &EmailPayload,
        now: DateTime<Utc>,
    ) -> Result<EmailPayload, SendError> {
        compose_again(state, row, (&self.contact, &was.message_id), now, |c, to| {
            c.compose_digest(to, &self.open, &self.banners, self.previous.as_ref())
        })
    }
}

/// A banner's push written again for its contact as they are now (TOT changed them since);
/// `Ok(None)` when the contact is gone or the banner no longer shows for their client.
async fn banner_again(
    state: &Providers,
    row: &OutboxRow,
    was: &EmailPayload,
    now: DateTime<Utc>,
) -> Result<Result<Option<EmailPayload>, SendError>, StoreError> {
    let (Some(contact_id), Some(banner_id)) =
        (&row.message.contact_id, crate::store::outbox::banner_of(&state.db, row.id).await?)
    else {
        return Ok(Ok(None));
    };
    let contact = match crate::store::contacts::get_contact(&state.db, contact_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Ok(Ok(None)),
        Err(e) => return Err(e),
    };
    // Shown at its start (a push waits for it), to the contact's client as it is now.
    let at = now.max(row.message.next_attempt_at);
    let live = crate::store::banners::list_live(&state.db, at).await?;
    let Some(banner) =
        crate::actions::banners::for_client(&live, &contact.client_id, at).into_iter().find(|b| b.id == banner_id)
    else {
        return Ok(Ok(None));
    };
    Ok(compose_again(state, row, (&contact, &was.message_id), now, |c, to| c.compose_banner(to, &banner)).map(Some))
}

/// Alerts are rendered when they go, from the items still open then: resolved items are
/// left out, and an alert with none left is dropped.
async fn alert_email(
    state: &Providers,
    row: &OutboxRow,
    now: DateTime<Utc>,
) -> Result<Result<Option<EmailPayload>, SendError>, StoreError> {
    let Some(contact_id) = &row.message.contact_id else {
        return Ok(Err(SendError::Permanent("alert without a contact".into())));
    };
    // An unreadable item list is the store's fault, not "every item resolved": the row dies
    // saying so rather than being dropped under a false reason.
    let p: AlertPayload = match serde_json::from_str(&row.message.payload) {
        Ok(p) => p,
        Err(e) => return Ok(Err(SendError::Permanent(format!("unreadable payload: {e}")))),
    };
    let Some((contact, open)) = still_open(state, contact_id, (&p.items, p.reminder)).await? else {
        return Ok(Ok(None));
    };
    Ok(compose_again(state, row, (&contact, &p.message_id), now, |c, to| c.compose_alert(to, &open, p.reminder))
        .map(Some))
}

/// `row`'s email composed afresh by `compose` for `contact` as they are now, keeping the
/// row's reply address and `message_id` (when it has one): a reply to it is read as a reply
/// to the message queued.
fn compose_again(
    state: &Providers,
    row: &OutboxRow,
    (contact, message_id): (&crate::store::contacts::ContactRow, &str),
    now: DateTime<Utc>,
    compose: impl FnOnce(&Composer, &Recipient) -> Result<EmailPayload, SendError>,
) -> Result<EmailPayload, SendError> {
    let composer = Composer { config: &state.config, env: &state.templates, signer: &state.signer };
    let token = row.message.reply_token.clone().unwrap_or_default();
    let mut e = compose(&composer, &Recipient { contact, token: &token, now })?;
    if !message_id.is_empty() {
        e.message_id = message_id.to_string();
    }
    Ok(e)
}

/// A message as it goes, or went: what the staff console shows of it. Alerts are rendered
/// when they go, so theirs is what would go now.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "as", rename_all = "snake_case")]
pub enum Rendered {
    /// The header block as written to the server, and the two bodies.
    Email {
        headers: String,
        text: String,
        html: String,
    },
    Chat {
        title: String,
        lines: Vec<String>,
    },
    /// A webhook's JSON body.
    Json {
        body: String,
    },
    /// Nothing would go now: an alert whose items were all resolved.
    Nothing,
    /// Sent, or gone dead or dropped, long ago: its content was cleared after
    /// `outbox.sent_content_days`.
    Cleared,
    Unreadable {
        error: String,
    },
}

pub async fn render(state: &Providers, row: &OutboxRow, now: DateTime<Utc>) -> Result<Rendered, StoreError> {
    use crate::model::OutboxStatus::{Dead, Dropped, Sent};
    if row.message.payload.is_empty() && matches!(row.status, Sent | Dead | Dropped) {
        return Ok(Rendered::Cleared);
    }
    if row.message.channel == Outlet::Webhook {
        let body = serde_json::from_str::<serde_json::Value>(&row.message.payload)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| row.message.payload.clone());
        return Ok(Rendered::Json { body });
    }
    let contacts: Vec<&str> = row.message.contact_id.as_deref().into_iter().collect();
    let active = crate::store::contacts::active_of(&state.db, &contacts).await?;
    let reach = contacts.first().and_then(|c| active.get(*c));
    if row.message.channel == Outlet::Email {
        return Ok(match email_of(state, row, reach, now).await? {
            Ok(Some(EmailOut { payload, built, .. })) => {
                let raw = String::from_utf8_lossy(&built.raw);
                let headers = raw.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n", "\n");
                Rendered::Email { headers, text: payload.text, html: payload.html }
            }
            Ok(None) => Rendered::Nothing,
            Err(e) => Rendered::Unreadable { error: e.to_string() },
        });
    }
    let message = match chat_message(state, row, reach, now).await? {
        Ok(Some((m, _))) => m,
        Ok(None) => return Ok(Rendered::Nothing),
        Err(error) => return Ok(Rendered::Unreadable { error }),
    };
    Ok(Rendered::Chat { title: message.title, lines: message.lines })
}
