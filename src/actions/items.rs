//! Action items (shared/SPEC.md F1): what needs a contact's attention now.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::model::Role;
use crate::store::contacts::ContactRow;
use crate::store::{Db, Result, items};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A1: colour visuals awaiting approval.
    VisualApproval,
    /// A2: open jobs with no delivery instructions.
    DeliveryInstructions,
    /// A3: third-party purchase orders not fully delivered.
    ThirdPartyPo,
    /// A4: open jobs whose artwork has not arrived.
    AwaitingArt,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::VisualApproval,
        Category::DeliveryInstructions,
        Category::ThirdPartyPo,
        Category::AwaitingArt,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Category::VisualApproval => "A1",
            Category::DeliveryInstructions => "A2",
            Category::ThirdPartyPo => "A3",
            Category::AwaitingArt => "A4",
        }
    }

    pub fn heading(self) -> &'static str {
        match self {
            Category::VisualApproval => "Visuals awaiting your approval",
            Category::DeliveryInstructions => "Jobs without delivery instructions",
            Category::ThirdPartyPo => "Third-party purchase orders still open",
            Category::AwaitingArt => "Artwork not yet received",
        }
    }

    /// Which categories a role sees at all. Finance follows spending (A3) only;
    /// third-party users see what is delegated to them (nothing here yet).
    pub fn visible_to(self, role: Role) -> bool {
        match role {
            Role::Admin | Role::Buyer | Role::Viewer => true,
            Role::Finance => self == Category::ThirdPartyPo,
            Role::ThirdParty => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Approve, reject or delegate a visual.
    ApproveRejectDelegate,
    /// Give delivery instructions, or say none are needed.
    GiveDeliveryInstructions,
    /// Upload the missing artwork.
    UploadArtwork,
    /// Information only.
    None,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionItem {
    pub category: Category,
    /// The id of the thing the item is about (visual, job, purchase order).
    pub id: String,
    pub title: String,
    pub detail: String,
    /// The date that matters: required-by, art due, or ordered on.
    pub date: Option<NaiveDate>,
    /// When cport first saw the thing (for "new since last digest").
    pub since: Option<DateTime<Utc>>,
    pub action: Action,
    /// The reply / chat command that acts on or asks about the item.
    pub command: String,
}

/// The action items of one contact, in category order, limited to what its role may see.
pub async fn for_contact(db: &Db, contact: &ContactRow) -> Result<Vec<ActionItem>> {
    let role = Role::parse(&contact.role).unwrap_or(Role::Viewer);
    Ok(for_role(for_client(db, &contact.client_id).await?, role))
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
                    Category::VisualApproval => "VISUALS".into(),
                    _ => format!("JOB {}", i.id),
                };
            }
            i
        })
        .collect()
}

/// Items per client, read once per pass however many of the client's contacts need them.
#[derive(Default)]
pub struct ItemCache(std::collections::HashMap<String, Vec<ActionItem>>);

impl ItemCache {
    /// The contact's items (as [`for_contact`]), reading its client's items at most once.
    pub async fn for_contact(&mut self, db: &Db, contact: &ContactRow) -> Result<Vec<ActionItem>> {
        if !self.0.contains_key(&contact.client_id) {
            self.0
                .insert(contact.client_id.clone(), for_client(db, &contact.client_id).await?);
        }
        let role = Role::parse(&contact.role).unwrap_or(Role::Viewer);
        Ok(for_role(self.0[&contact.client_id].clone(), role))
    }
}

/// Every action item of one client, with the actions an admin would get.
pub async fn for_client(db: &Db, client: &str) -> Result<Vec<ActionItem>> {
    let mut out = Vec::new();
    for v in items::list_pending_visuals(db, client).await? {
        out.push(ActionItem {
            category: Category::VisualApproval,
            title: format!("Visual {} for {} ({})", v.id, v.job_name, v.category),
            detail: format!("design {}, job {}", v.design_id, v.job_id),
            date: v.date_required,
            since: Some(v.created_at),
            action: Action::ApproveRejectDelegate,
            command: format!("APPROVE {}", v.id),
            id: v.id,
        });
    }
    for j in items::list_jobs_without_delivery(db, client).await? {
        out.push(ActionItem {
            category: Category::DeliveryInstructions,
            title: format!("Job {}: {}", j.id, j.name),
            detail: match &j.client_ref {
                Some(r) => format!("your ref {r}, {}", j.status.replace('_', " ")),
                None => j.status.replace('_', " "),
            },
            date: j.date_required,
            since: Some(j.created_at),
            action: Action::GiveDeliveryInstructions,
            command: format!("NODELIVERY {}", j.id),
            id: j.id,
        });
    }
    for po in items::list_open_third_party_pos(db, client).await? {
        out.push(ActionItem {
            category: Category::ThirdPartyPo,
            title: format!("PO {} ({}) from {}", po.id, po.tot_ref, po.supplier),
            detail: format!(
                "placed by {}, {} unit(s) outstanding, {}",
                po.placed_by.as_deref().unwrap_or("a third party"),
                po.outstanding,
                po.status.replace('_', " ")
            ),
            date: Some(po.date_ordered),
            since: None,
            action: Action::None,
            command: format!("PO {}", po.id),
            id: po.id,
        });
    }
    for a in items::list_missing_art(db, client).await? {
        out.push(ActionItem {
            category: Category::AwaitingArt,
            title: format!("Artwork for job {}: {}", a.job_id, a.job_name),
            detail: format!("design {}: {}", a.design_id, a.description),
            date: a.art_due,
            since: None,
            action: Action::UploadArtwork,
            command: format!("JOB {}", a.job_id),
            id: a.job_id,
        });
    }
    Ok(out)
}

impl ActionItem {
    /// A stable key for "was this in the last digest" and alert ledgers.
    pub fn key(&self) -> String {
        format!("{}:{}", self.category.code(), self.id)
    }

    /// The portal page about this item, one its reader may open: the delivery form only
    /// to those who may give instructions ([`for_role`] has taken the action away from
    /// the others), the job page to the rest.
    pub fn path(&self) -> String {
        match (self.category, self.action) {
            (Category::VisualApproval, _) => format!("/visuals/{}", self.id),
            (Category::DeliveryInstructions, Action::GiveDeliveryInstructions) => {
                format!("/jobs/{}/delivery", self.id)
            }
            (Category::DeliveryInstructions, _) => format!("/jobs/{}", self.id),
            (Category::ThirdPartyPo, _) => format!("/pos/{}", self.id),
            (Category::AwaitingArt, Action::UploadArtwork) => format!("/jobs/{}#artwork", self.id),
            (Category::AwaitingArt, _) => format!("/jobs/{}", self.id),
        }
    }
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::VisualApproval => "visual_approval",
            Category::DeliveryInstructions => "delivery_instructions",
            Category::ThirdPartyPo => "third_party_po",
            Category::AwaitingArt => "awaiting_art",
        }
    }
}
