//! Action items (shared/SPEC.md F1): which ones need a contact's attention now, by the
//! contact's client and role. The item types are `model::items`.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::Role;
pub use crate::model::items::{Action, ActionItem, Category};
use crate::services::Services;
use crate::store::contacts::ContactRow;
use crate::store::{Conn, Db, Result, items};

/// The action items of one contact, in category order, limited to what its role may see.
pub async fn for_contact(conn: impl Into<Conn<'_>>, contact: &ContactRow) -> Result<Vec<ActionItem>> {
    let role = contact.role;
    Ok(for_role(for_client(conn, &contact.client_id).await?, role))
}

/// The action items of one contact for a page or a chat answer: its client's snapshot when
/// the client's version has not moved since it was read (no query at all), else read again
/// and kept. `contact` must have been read for this request: its `items_version` says which
/// snapshot is current.
pub async fn current(state: &Services, contact: &ContactRow) -> Result<Vec<ActionItem>> {
    let all = match state.items.get(&contact.client_id, contact.items_version) {
        Some(items) => items,
        None => {
            let items = Arc::new(for_client(&state.db, &contact.client_id).await?);
            state.items.put(&contact.client_id, contact.items_version, items.clone());
            items
        }
    };
    let role = contact.role;
    let visible = all.iter().filter(|i| i.category.visible_to(role)).cloned().collect();
    Ok(for_role(visible, role))
}

/// What a contact with `role` sees of its client's items, and which actions it gets.
pub fn for_role(items: Vec<ActionItem>, role: Role) -> Vec<ActionItem> {
    let acts = role.acts_on_orders();
    items
        .into_iter()
        .filter(|i| i.category.visible_to(role))
        .map(|mut i| {
            if !acts && i.action != Action::None {
                i.action = Action::None;
                i.command = match i.category {
                    Category::VisualApproval => Some("VISUALS".into()),
                    _ => crate::model::typed_id(&i.id).then(|| format!("JOB {}", i.id)),
                };
            }
            i
        })
        .collect()
}

/// Items per client for a pass over many contacts: the items of a batch of clients are read
/// together (one query per category, see `store::items`), and a batch is dropped when the
/// pass moves on to the next, so a pass over the whole store holds one batch at a time.
/// Contacts are expected in client order (as `list_active_contacts` gives them); out of order
/// they are still right, only read more often.
pub struct ItemCache {
    /// Every client the pass will ask for, in order, each once.
    clients: Vec<String>,
    batch: HashMap<String, Vec<ActionItem>>,
}

impl ItemCache {
    /// A cache for a pass over `contacts`.
    pub fn new(contacts: &[ContactRow]) -> ItemCache {
        let mut clients: Vec<String> = contacts.iter().map(|c| c.client_id.clone()).collect();
        clients.dedup();
        ItemCache { clients, batch: HashMap::new() }
    }

    /// The contact's items (as [`for_contact`]), reading its client's batch when it is not
    /// the one in hand.
    pub async fn for_contact(&mut self, db: &Db, contact: &ContactRow) -> Result<Vec<ActionItem>> {
        if !self.batch.contains_key(&contact.client_id) {
            let from = self.clients.iter().position(|c| *c == contact.client_id);
            let batch: Vec<&str> = match from {
                Some(i) => self.clients[i..].iter().take(BATCH).map(String::as_str).collect(),
                None => vec![contact.client_id.as_str()],
            };
            let (mut read, of) = match for_clients(db, &batch).await {
                Ok(b) => (b, batch),
                // One client's rows the store cannot give (a hand edit) would fail every
                // contact of the window: read this contact's client alone, so only its own
                // contacts fail.
                Err(e) if batch.len() > 1 && !e.is_unavailable() => {
                    tracing::warn!(client = %contact.client_id, error = %e, "a batch of clients' items could not be read; reading the client alone");
                    let alone = vec![contact.client_id.as_str()];
                    (for_clients(db, &alone).await?, alone)
                }
                Err(e) => return Err(e),
            };
            // A client read with no items is in hand too: its contacts do not read the batch
            // again, each of them (most clients, most minutes, have nothing pending).
            for client in of {
                read.entry(client.to_string()).or_default();
            }
            self.batch = read;
        }
        let role = contact.role;
        // Only what the role sees is copied out of the batch.
        let items = self
            .batch
            .get(&contact.client_id)
            .map_or_else(Vec::new, |all| all.iter().filter(|i| i.category.visible_to(role)).cloned().collect());
        Ok(for_role(items, role))
    }
}

/// Clients whose items are read together.
const BATCH: usize = crate::store::IN_CHUNK;

/// Every action item of one client, with the actions an admin would get.
pub async fn for_client(conn: impl Into<Conn<'_>>, client: &str) -> Result<Vec<ActionItem>> {
    Ok(for_clients(conn, &[client]).await?.remove(client).unwrap_or_default())
}

/// Every action item of each of `clients` (a client without items has none in the map), in
/// category order.
pub async fn for_clients(conn: impl Into<Conn<'_>>, clients: &[&str]) -> Result<HashMap<String, Vec<ActionItem>>> {
    let mut conn = conn.into();
    let mut out: HashMap<String, Vec<ActionItem>> = HashMap::new();
    for v in items::list_pending_visuals(conn.reborrow(), clients).await? {
        let title = format!("Visual {} for {} ({})", v.id, v.job_name, v.category);
        let detail = format!("design {}, job {}", v.design_id, v.job_id);
        let item = ActionItem::new(Category::VisualApproval, v.id, title, detail, v.date_required, Some(v.created_at));
        out.entry(v.client_id).or_default().push(item);
    }
    for j in items::list_jobs_without_delivery(conn.reborrow(), clients).await? {
        let title = format!("Job {}: {}", j.id, j.name);
        let detail = match &j.client_ref {
            // Read by the client and by staff (the chase list) alike: named as both call it.
            Some(r) => format!("client ref {r}, {}", j.status.words()),
            None => j.status.words(),
        };
        let item =
            ActionItem::new(Category::DeliveryInstructions, j.id, title, detail, j.date_required, Some(j.created_at));
        out.entry(j.client_id).or_default().push(item);
    }
    for po in items::list_open_third_party_pos(conn.reborrow(), clients).await? {
        let title = format!("PO {} ({}) from {}", po.id, po.tot_ref, po.supplier);
        let detail = format!(
            "placed by {}, {} unit(s) outstanding, {}",
            po.placed_by.as_deref().unwrap_or("a third party"),
            po.outstanding,
            po.status.words()
        );
        let item = ActionItem::new(Category::ThirdPartyPo, po.id, title, detail, Some(po.date_ordered), None);
        out.entry(po.client_id).or_default().push(item);
    }
    for a in items::list_missing_art(conn.reborrow(), clients).await? {
        let title = format!("Artwork for job {}: {}", a.job_id, a.job_name);
        let detail = format!("design {}: {}", a.design_id, a.description);
        out.entry(a.client_id).or_default().push(ActionItem::new(
            Category::AwaitingArt,
            a.job_id,
            title,
            detail,
            a.art_due,
            a.created_at,
        ));
    }
    Ok(out)
}
