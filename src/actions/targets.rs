//! Where a contact's messages go: email while it is usable, and each linked chat whose
//! channel cport sends on. Digests, alerts and urgent banners all ask here.

use crate::services::Services;
use crate::store::StoreError;
use crate::store::chat::ChatLink;
use crate::store::settings::{ContactSettings, Sending};

/// Where a contact's digest or alert goes: email, or one linked chat.
#[derive(Debug, Clone)]
pub enum Target {
    Email,
    Chat(ChatLink),
}

impl Target {
    pub fn outlet(&self) -> crate::model::Outlet {
        match self {
            Target::Email => crate::model::Outlet::Email,
            Target::Chat(l) => l.channel.into(),
        }
    }
}

/// Every contact's targets: email when usable, and each linked chat whose channel has a
/// sender configured.
pub async fn targets_by_contact(
    services: &Services,
) -> Result<std::collections::HashMap<String, Vec<ChatLink>>, StoreError> {
    let mut out: std::collections::HashMap<String, Vec<ChatLink>> = Default::default();
    let sending = services.config.chat_channels();
    for l in crate::store::chat::all_chats(&services.db).await? {
        if sending.contains(&l.channel.as_str()) {
            out.entry(l.contact_id.clone()).or_default().push(l);
        }
    }
    Ok(out)
}

/// Where a contact's message of this kind goes: email when usable for it, and each chat.
pub fn targets_of(s: &ContactSettings, chats: Option<&Vec<ChatLink>>, kind: Sending) -> Vec<Target> {
    let mut t = vec![];
    if s.email_usable_for(kind) {
        t.push(Target::Email);
    }
    t.extend(chats.into_iter().flatten().cloned().map(Target::Chat));
    t
}
