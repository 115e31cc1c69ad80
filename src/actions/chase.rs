//! The chase list: every open action item across all clients, oldest first, with who was told
//! of it, when and how, and whether they came back since; and "remind now", which queues one
//! reminder about one item to one contact, at most once a day per item, contact and channel.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, Utc};

use super::ActionError;
use super::items::{ActionItem, Category, current, for_clients};
use super::targets::targets_of;
use crate::services::Services;
use crate::store::console::{self, ContactBrief};
use crate::store::contacts::active_contact;
use crate::store::outbox::{AlertPayload, NewMessage, insert_message};
use crate::store::{StoreError, chat, settings};

/// What the list is narrowed to; every part optional.
#[derive(Debug, Clone, Default)]
pub struct ChaseFilter {
    pub category: Option<Category>,
    pub client: Option<String>,
    /// Only items waiting at least this many days.
    pub min_age_days: Option<u32>,
}

/// Channels something went out on, each with the first time.
type Channels = Vec<(crate::model::Outlet, DateTime<Utc>)>;

/// A contact of the item's client who sees it, and what they were told.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Told {
    pub contact: ContactBrief,
    /// Channels the item went out on to this contact, with the first time on each.
    pub channels: Channels,
    /// Channels a message about it is still waiting to go on (held by quiet hours, waiting
    /// for a retry or its turn), where it has not gone yet.
    pub queued: Vec<crate::model::Outlet>,
    /// Opened a portal link or signed in after first being told.
    pub opened: bool,
    /// Replied by email after first being told.
    pub replied: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChaseRow {
    pub client_id: String,
    pub client_name: String,
    pub item: ActionItem,
    pub key: String,
    /// The category's code (`A1` to `A4`).
    pub code: &'static str,
    /// Since when it has waited: when it appeared, or its date.
    pub waiting_since: Option<DateTime<Utc>>,
    pub age_days: Option<i64>,
    /// The first time anyone was told of it.
    pub first_sent: Option<DateTime<Utc>>,
    pub contacts: Vec<Told>,
}

/// One reading of every client's items at a time: a second caller waits for the first, then
/// finds what it kept.
static READING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Reads every client's items into the snapshots in the background. A staff member just
/// signed in: the chase list is likely next, and its first reading of a large store takes
/// most of a second.
pub fn read_ahead(state: &Services) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = everywhere(&state).await {
            tracing::warn!(error = %e, "reading every client's items ahead failed");
        }
        crate::memory::give_back();
    });
}

/// Every client's items (all of them), from the snapshots where a client's version has not
/// moved since they were read, reading the rest a batch of clients at a time.
pub async fn everywhere(state: &Services) -> Result<Vec<(console::ClientVersion, Arc<Vec<ActionItem>>)>, StoreError> {
    let _one = READING.lock().await;
    let clients = console::client_versions(&state.db).await?;
    let mut out = Vec::with_capacity(clients.len());
    let mut stale = vec![];
    for c in clients {
        match state.items.get(&c.id, c.version) {
            Some(items) => out.push((c, items)),
            None => stale.push(c),
        }
    }
    // Two batches at a time: SQLite's readers and PostgreSQL's connections work side by side.
    use futures::StreamExt;
    let batches: Vec<Vec<console::ClientVersion>> = stale.chunks(crate::store::IN_CHUNK).map(<[_]>::to_vec).collect();
    let mut reads = futures::stream::iter(batches)
        .map(|batch| {
            let db = state.db.clone();
            async move {
                let read = {
                    let ids: Vec<&str> = batch.iter().map(|c| c.id.as_str()).collect();
                    for_clients(&db, &ids).await
                };
                read.map(|read| (batch, read))
            }
        })
        .buffered(2);
    while let Some(done) = reads.next().await {
        let (batch, mut read) = done?;
        for c in &batch {
            let items = Arc::new(read.remove(&c.id).unwrap_or_default());
            state.items.put(&c.id, c.version, items.clone());
            out.push((c.clone(), items));
        }
    }
    Ok(out)
}

/// Since when an item has waited: when it appeared, else the start of its date.
fn waiting_since(i: &ActionItem) -> Option<DateTime<Utc>> {
    i.since.or_else(|| i.date.map(|d| d.and_time(NaiveTime::MIN).and_utc()))
}

/// The open items matching a filter, oldest first, as read at one moment: the list's pages
/// (and the CSV's, however long) are cut from the same order.
pub struct Matching {
    clients: Vec<(console::ClientVersion, Arc<Vec<ActionItem>>)>,
    /// Since when each waited, and where it is: a client of `clients`, an item of theirs.
    order: Vec<(Option<DateTime<Utc>>, usize, usize)>,
}

impl Matching {
    /// How many items match.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// At most `limit` of the items from `offset`, with who was told of each.
    pub async fn rows(
        &self,
        state: &Services,
        offset: usize,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<ChaseRow>, StoreError> {
        let page: Vec<_> = self
            .order
            .iter()
            .skip(offset)
            .take(limit)
            .map(|&(since, c, i)| (since, &self.clients[c].0, &self.clients[c].1[i]))
            .collect();
        told(state, page, now).await
    }
}

/// The open items matching `filter`, oldest first.
pub async fn matching(state: &Services, filter: &ChaseFilter, now: DateTime<Utc>) -> Result<Matching, StoreError> {
    // At least 0 days is every item: one dated ahead, or with no date, has waited 0 days too.
    let cutoff = filter.min_age_days.filter(|d| *d > 0).map(|d| now - Duration::days(i64::from(d)));
    let clients = everywhere(state).await?;
    let mut order = vec![];
    for (c, (client, items)) in clients.iter().enumerate() {
        if filter.client.as_ref().is_some_and(|f| *f != client.id) {
            continue;
        }
        for (i, item) in items.iter().enumerate() {
            let since = waiting_since(item);
            let old_enough = match (cutoff, since) {
                (Some(c), Some(s)) => s <= c,
                (Some(_), None) => false,
                (None, _) => true,
            };
            if old_enough && filter.category.is_none_or(|c| c == item.category) {
                order.push((since, c, i));
            }
        }
    }
    // Oldest first; items with no date last; then by category and id, so the order is stable.
    let item = |&(_, c, i): &(Option<DateTime<Utc>>, usize, usize)| &clients[c].1[i];
    order.sort_unstable_by(|a, b| {
        let when = match (a.0, b.0) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        when.then_with(|| (item(a).category, &item(a).id).cmp(&(item(b).category, &item(b).id)))
    });
    Ok(Matching { clients, order })
}

/// The open items matching `filter`, oldest first: how many in all, and `limit` of them
/// from `offset` with who was told of each.
pub async fn list(
    state: &Services,
    filter: &ChaseFilter,
    offset: usize,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<(usize, Vec<ChaseRow>), StoreError> {
    let all = matching(state, filter, now).await?;
    Ok((all.len(), all.rows(state, offset, limit, now).await?))
}

/// Who of each item's client sees it, and what they were told of it.
async fn told(
    state: &Services,
    page: Vec<(Option<DateTime<Utc>>, &console::ClientVersion, &ActionItem)>,
    now: DateTime<Utc>,
) -> Result<Vec<ChaseRow>, StoreError> {
    let client_ids: BTreeSet<&str> = page.iter().map(|(_, c, _)| c.id.as_str()).collect();
    let client_ids: Vec<&str> = client_ids.into_iter().collect();
    let keys: Vec<String> = page.iter().map(|(_, _, i)| i.key()).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let contacts = console::contacts_of(&state.db, &client_ids).await?;
    let contact_ids: Vec<&str> = contacts.iter().map(|c| c.id.as_str()).collect();
    // Per item and contact: the channels it went out on, and those it still waits to go on.
    let mut notices: HashMap<(String, String), (Channels, Vec<crate::model::Outlet>)> = HashMap::new();
    for n in console::notices_of(&state.db, &key_refs).await? {
        let (sent, queued) = notices.entry((n.item_key, n.contact_id)).or_default();
        match n.first_at {
            Some(at) => sent.push((n.channel, at)),
            None => queued.push(n.channel),
        }
    }
    let sessions: HashMap<String, DateTime<Utc>> =
        console::last_sessions(&state.db, &contact_ids).await?.into_iter().map(|s| (s.contact_id, s.at)).collect();
    let replies: HashMap<String, DateTime<Utc>> =
        console::last_replies(&state.db, &contact_ids).await?.into_iter().map(|s| (s.contact_id, s.at)).collect();
    let mut by_client: HashMap<&str, Vec<&ContactBrief>> = HashMap::new();
    for c in &contacts {
        by_client.entry(c.client_id.as_str()).or_default().push(c);
    }
    Ok(page
        .into_iter()
        .zip(keys)
        .map(|((since, client, item), key)| {
            let mut first_sent: Option<DateTime<Utc>> = None;
            let contacts: Vec<Told> = by_client
                .get(client.id.as_str())
                .into_iter()
                .flatten()
                .filter(|c| item.category.visible_to(c.role))
                .map(|c| {
                    // Read, not taken: two rows may share a key (two pieces of artwork awaited
                    // for one job are each a row, keyed by the job), and each was told alike.
                    let (mut channels, mut queued) =
                        notices.get(&(key.clone(), c.id.clone())).cloned().unwrap_or_default();
                    channels.sort_by_key(|(channel, at)| (channel.as_str(), *at));
                    queued.sort_by_key(|channel| channel.as_str());
                    let first = channels.iter().map(|(_, at)| *at).min();
                    if let Some(f) = first {
                        first_sent = Some(first_sent.map_or(f, |x| x.min(f)));
                    }
                    let after = |at: Option<&DateTime<Utc>>| matches!((first, at), (Some(f), Some(a)) if *a >= f);
                    Told {
                        opened: after(sessions.get(&c.id)),
                        replied: after(replies.get(&c.id)),
                        contact: (*c).clone(),
                        channels,
                        queued,
                    }
                })
                .collect();
            ChaseRow {
                client_id: client.id.clone(),
                client_name: client.name.clone(),
                // An item dated ahead (art due next week, seen first only then) has not
                // waited yet: 0 days, never less.
                age_days: since.map(|s| (now - s).num_days().max(0)),
                waiting_since: since,
                first_sent,
                key,
                code: item.category.code(),
                item: item.clone(),
                contacts,
            }
        })
        .collect())
}

/// Queues a reminder about item `key` to `contact_id` on each channel that reaches them (an
/// alert about that one item, rendered when it goes). Once per item, contact, channel and
/// day: a second click the same day queues nothing and says so.
pub async fn remind(
    state: &Services,
    contact_id: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Reminded, ActionError> {
    if ActionItem::key_parts(key).is_none() {
        let no = format!("{} is not an item (a category and an id: A1:V-1001)", crate::model::quoted(key));
        return Err(ActionError::invalid("item", no));
    }
    let Some(contact) = active_contact(&state.db, contact_id).await? else {
        let no = format!("no active contact {}", crate::model::quoted(contact_id));
        return Err(ActionError::invalid("contact", no));
    };
    let items = current(state, &contact).await?;
    let Some(item) = items.iter().find(|i| i.key() == key) else {
        return Err(ActionError::Conflict(format!(
            "{} is no longer open for {}, or is not theirs to see",
            crate::model::quoted(key),
            contact.name
        )));
    };
    let s = settings::get_settings(&state.db, &contact.id).await?;
    let sending = state.config.chat_channels();
    let chats: Vec<_> = chat::chats_of_contact(&state.db, &contact.id)
        .await?
        .into_iter()
        .filter(|l| sending.contains(&l.channel))
        .collect();
    let targets = targets_of(&s, Some(&chats), crate::store::settings::Sending::Alert);
    if targets.is_empty() {
        return Err(ActionError::Conflict(format!(
            "nothing reaches {}: email is suspended or off and no chat is linked",
            contact.name
        )));
    }
    // Once a day on the contact's clock: two clicks either side of UTC's midnight are one
    // day for a contact in Auckland.
    let day = now.with_timezone(&super::targets::clock_of(&state.config, &contact, &s)).format("%Y-%m-%d");
    // A reminder is an alert: the contact's quiet hours hold it as they hold every alert.
    let at = super::targets::after_quiet_hours(&state.config, &contact, &s, now);
    let mut tx = state.db.begin().await?;
    let mut queued = 0;
    let mut went: Vec<&str> = vec![];
    for t in &targets {
        let channel = t.outlet();
        let (recipient, reply_token, message_id) = match t {
            super::targets::Target::Email => (
                contact.email.clone(),
                Some(state.signer.new_reply_token()),
                crate::messages::new_message_id(&state.config),
            ),
            super::targets::Target::Chat(l) => (l.chat_id.clone(), None, String::new()),
        };
        let payload = AlertPayload { items: vec![key.to_string()], message_id, reminder: true };
        let new = NewMessage {
            contact_id: Some(contact.id.clone()),
            channel,
            kind: crate::model::MessageKind::Alert,
            idem_key: format!("remind:{}:{channel}:{key}:{day}", contact.id),
            reply_token,
            recipient,
            subject: crate::messages::compose::alert_subject(&state.config.branding.name, 1, &item.title, true),
            payload: serde_json::to_string(&payload).unwrap_or_default(),
            next_attempt_at: at,
        };
        let id = match insert_message(&mut tx, &new, now).await? {
            Some(id) => Some(id),
            // The day's reminder on this channel, dropped or dead: it reached no one, so it
            // goes again (once a day is a reminder given, not one tried).
            None => crate::store::outbox::revive_unsent(&mut tx, &new, now).await?,
        };
        if let Some(id) = id {
            crate::store::ledgers::note_items(&mut tx, &contact.id, channel, &[key.to_string()], id, now).await?;
            queued += 1;
            went.push(channel.as_str());
        }
    }
    tx.commit().await?;
    if queued == 0 {
        return Err(ActionError::Conflict(format!("{} was already reminded of {} today", contact.name, item.title)));
    }
    state.wake_dispatch.notify_waiters();
    // The channels it went on this time: one reminded already today is not named.
    let channels = went.join(" and ");
    let held_until = (at > now).then_some(at);
    Ok(Reminded { queued, contact: contact.name.clone(), item: item.title.clone(), channels, held_until })
}

/// What a reminder queued, in words for staff.
#[derive(Debug, Clone)]
pub struct Reminded {
    /// Messages queued: one a channel that reaches the contact.
    pub queued: usize,
    /// The contact's name.
    pub contact: String,
    /// The item's title.
    pub item: String,
    /// The channels, like `email and telegram`.
    pub channels: String,
    /// When the contact's quiet hours end, if they hold the reminder now.
    pub held_until: Option<DateTime<Utc>>,
}
