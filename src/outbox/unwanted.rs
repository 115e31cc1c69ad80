//! Whether a claimed message is still to go: its contact still active, the chat it goes to
//! still theirs, the kind of email still wanted.

use std::collections::HashMap;

use crate::channels::Providers;
use crate::model::{MessageKind, Outlet};
use crate::store::StoreError;
use crate::store::outbox::OutboxRow;

/// Why a row is no longer to be sent, if it is not: its contact was deactivated (or removed)
/// since it was queued, or the chat it goes to was unlinked from them, or its banner is gone,
/// or (a change event) the webhook was turned off. A digest, an alert or
/// a banner held by quiet hours or a retry would otherwise show what is no longer theirs to
/// see, or reach a chat whose user said to stop.
pub(super) async fn unwanted(
    state: &Providers,
    row: &OutboxRow,
    active: &std::collections::HashSet<String>,
    settings: &HashMap<String, crate::store::settings::ContactSettings>,
) -> Result<Option<&'static str>, StoreError> {
    // A change event queued while the webhook was set goes nowhere once it is not.
    if row.channel == Outlet::Webhook && state.config.webhook.url.is_empty() {
        return Ok(Some("webhook.url is not set any more"));
    }
    // A banner's push after its banner was retracted, or once it has expired (a retry after
    // an outage, a claim held through the retraction), would tell of what shows nowhere.
    if row.kind == MessageKind::Banner
        && crate::store::outbox::banner_gone_for(&state.db, row.id, chrono::Utc::now()).await?
    {
        return Ok(Some("its banner was retracted or has expired"));
    }
    let Some(contact) = &row.contact_id else {
        return Ok(None);
    };
    if !active.contains(contact) {
        return Ok(Some("the contact is no longer active"));
    }
    // An answer goes to the chat that asked, linked or not.
    let told = matches!(row.kind, MessageKind::Digest | MessageKind::Alert | MessageKind::Banner);
    if !told || row.channel == Outlet::Webhook {
        return Ok(None);
    }
    // A digest or an alert held by quiet hours or the batch window, or waiting for a retry,
    // goes to no one who has since turned such emails off (one click in the last one). An
    // address suspended by bounces is the sender's to refuse, saying so.
    if row.channel == Outlet::Email {
        let kind = crate::store::settings::Sending::of_kind(row.kind);
        let wants = settings.get(contact).is_none_or(|s| s.wants(kind));
        return Ok((!wants).then_some("the contact has turned these emails off since"));
    }
    let linked = crate::store::chat::chats_of_contact(&state.db, contact).await?;
    let still = linked.iter().any(|l| l.channel.as_str() == row.channel.as_str() && l.chat_id == row.recipient);
    Ok((!still).then_some("the chat is no longer linked to the contact"))
}
