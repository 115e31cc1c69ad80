//! Action items (shared/SPEC.md F1) as data: the four categories, what a reader may do
//! about one, and the item itself with its key and portal page. Which items a contact gets
//! is a rule, in `actions::items`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::model::Role;

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
    pub const ALL: [Category; 4] =
        [Category::VisualApproval, Category::DeliveryInstructions, Category::ThirdPartyPo, Category::AwaitingArt];

    pub fn code(self) -> &'static str {
        match self {
            Category::VisualApproval => "A1",
            Category::DeliveryInstructions => "A2",
            Category::ThirdPartyPo => "A3",
            Category::AwaitingArt => "A4",
        }
    }

    /// The category with this code (`A1` to `A4`, either case).
    pub fn from_code(code: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.code().eq_ignore_ascii_case(code))
    }

    /// The category as staff name it, about a client ("Visuals awaiting approval").
    pub fn staff_heading(self) -> &'static str {
        match self {
            Category::VisualApproval => "Visuals awaiting approval",
            other => other.heading(),
        }
    }

    /// The category as its contact reads it, in digests, chat and the portal.
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
    /// When the thing began: TOT's `created_at` for it, or else when cport first stored it.
    pub since: Option<DateTime<Utc>>,
    pub action: Action,
    /// The reply / chat command that acts on or asks about the item; none when its id is
    /// not one a command can name ([`super::typed_id`]): the portal page and buttons serve.
    pub command: Option<String>,
}

impl ActionItem {
    /// An item about the thing `id`, with the action and command its category gives.
    pub fn new(
        category: Category,
        id: String,
        title: String,
        detail: String,
        date: Option<NaiveDate>,
        since: Option<DateTime<Utc>>,
    ) -> ActionItem {
        ActionItem {
            category,
            action: category.action(),
            command: category.command(&id),
            id,
            title,
            detail,
            date,
            since,
        }
    }

    /// A stable key for "was this in the last digest" and alert ledgers.
    pub fn key(&self) -> String {
        Self::key_of(self.category, &self.id)
    }

    /// The key of the item of `category` about `id`: `A1:V-1001`.
    pub fn key_of(category: Category, id: &str) -> String {
        format!("{}:{id}", category.code())
    }

    /// The category and id a [`key`](Self::key) names, if it is one.
    pub fn key_parts(key: &str) -> Option<(Category, &str)> {
        let (code, id) = key.split_once(':')?;
        Some((Category::from_code(code)?, id)).filter(|_| !id.is_empty())
    }

    /// The portal page about this item, one its reader may open: the delivery form only
    /// to those who may give instructions ([`for_role`] has taken the action away from
    /// the others), the job page to the rest.
    pub fn path(&self) -> String {
        match (self.category, self.action) {
            (Category::VisualApproval, _) => format!("/visuals/{}", super::segment(&self.id)),
            (Category::DeliveryInstructions, Action::GiveDeliveryInstructions) => {
                format!("/jobs/{}/delivery", super::segment(&self.id))
            }
            (Category::DeliveryInstructions, _) => format!("/jobs/{}", super::segment(&self.id)),
            (Category::ThirdPartyPo, _) => format!("/pos/{}", super::segment(&self.id)),
            (Category::AwaitingArt, Action::UploadArtwork) => format!("/jobs/{}#artwork", super::segment(&self.id)),
            (Category::AwaitingArt, _) => format!("/jobs/{}", super::segment(&self.id)),
        }
    }
}

impl Category {
    /// What an admin may do about an item of this category (`for_role` narrows it for the
    /// other roles).
    pub fn action(self) -> Action {
        match self {
            Category::VisualApproval => Action::ApproveRejectDelegate,
            Category::DeliveryInstructions => Action::GiveDeliveryInstructions,
            Category::ThirdPartyPo => Action::None,
            Category::AwaitingArt => Action::UploadArtwork,
        }
    }

    /// The reply or chat command that acts on, or asks about, the item about `id`; none for
    /// an id no command can name as it is written.
    pub fn command(self, id: &str) -> Option<String> {
        if !super::typed_id(id) {
            return None;
        }
        Some(match self {
            Category::VisualApproval => format!("APPROVE {id}"),
            Category::DeliveryInstructions => format!("NODELIVERY {id}"),
            Category::ThirdPartyPo => format!("PO {id}"),
            Category::AwaitingArt => format!("JOB {id}"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Category::VisualApproval => "visual_approval",
            Category::DeliveryInstructions => "delivery_instructions",
            Category::ThirdPartyPo => "third_party_po",
            Category::AwaitingArt => "awaiting_art",
        }
    }
}
