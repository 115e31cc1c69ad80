//! The states and kinds cport names: roles, channels, alert modes and the statuses of TOT's
//! records. Each is an enum with its snake_case name for serde, config and the store.

/// An enum whose values have fixed snake_case names, as config, records and the store spell
/// them: serde by that name, `as_str`, `parse`, `Display` and `ALL`.
#[macro_export]
macro_rules! named_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every name, in order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The name as words, for people: `awaiting approval`.
            pub fn words(self) -> String {
                self.as_str().replace('_', " ")
            }

            /// Every name, for messages: `a, b, c`.
            pub fn names() -> String {
                Self::NAMES.join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        /// The names, for the configuration reference and the API contract.
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "enum": $name::NAMES})
            }
        }
    };
}

named_enum! {
    /// What a contact may do; every query is also scoped to the contact's client.
    pub enum Role {
        Admin = "admin",
        Buyer = "buyer",
        Finance = "finance",
        Viewer = "viewer",
        ThirdParty = "third_party",
    }
}

impl Role {
    /// May act on visuals and delivery instructions (not merely read them).
    pub fn acts_on_orders(self) -> bool {
        matches!(self, Role::Admin | Role::Buyer)
    }

    /// May ask the command `word` and see the matching portal page. A viewer asks everything
    /// a buyer does and more, and reads only: the decisions themselves are refused by
    /// [`acts_on_orders`](Self::acts_on_orders).
    pub fn may_ask(self, word: CommandWord) -> bool {
        use CommandWord::*;
        match self {
            Role::Admin | Role::Viewer => true,
            Role::Buyer => !matches!(word, Invoices | Balance),
            Role::Finance => matches!(word, Help | Items | Invoices | Balance | Prices | Pos | Po | Link | Reset),
            Role::ThirdParty => matches!(word, Help | Link | Reset),
        }
    }

    /// May send the command `word` and have it done: asked, and for a decision (`APPROVE`,
    /// `REJECT`, `NODELIVERY`), one who acts on orders.
    pub fn may_send(self, word: CommandWord) -> bool {
        self.may_ask(word) && (self.acts_on_orders() || !word.decides())
    }
}

named_enum! {
    /// The first word of a command, as `HELP` lists it and people type it (upper case here;
    /// any case in a reply, and lower case after a slash in chat).
    pub enum CommandWord {
        Help = "HELP",
        Items = "ITEMS",
        Jobs = "JOBS",
        Job = "JOB",
        Track = "TRACK",
        Deliveries = "DELIVERIES",
        Stock = "STOCK",
        Blanks = "BLANKS",
        Po = "PO",
        Pos = "POS",
        Invoices = "INVOICES",
        Balance = "BALANCE",
        Prices = "PRICES",
        Art = "ART",
        Visuals = "VISUALS",
        Approve = "APPROVE",
        Reject = "REJECT",
        NoDelivery = "NODELIVERY",
        Link = "LINK",
        Reset = "RESET",
    }
}

impl CommandWord {
    /// A decision on an item (a visual, a job's delivery), not a question.
    pub fn decides(self) -> bool {
        matches!(self, CommandWord::Approve | CommandWord::Reject | CommandWord::NoDelivery)
    }
}

named_enum! {
    /// Where a contact is reached or acts from.
    pub enum Channel {
        Email = "email",
        Telegram = "telegram",
        Discord = "discord",
        Portal = "portal",
    }
}

named_enum! {
    /// How a contact hears of one category of item: at once, in the digest, or not at all.
    pub enum AlertMode {
        Instant = "instant",
        Digest = "digest",
        Off = "off",
    }
}

named_enum! {
    /// Where a job stands at TOT; the first three are "open".
    pub enum JobStatus {
        Entered = "entered",
        InProduction = "in_production",
        Completed = "completed",
        Delivered = "delivered",
        Cancelled = "cancelled",
    }
}

named_enum! {
    /// Whether a job's delivery instructions are still wanted.
    pub enum DeliveryInstructions {
        None = "none",
        Given = "given",
        NotRequired = "not_required",
    }
}

named_enum! {
    /// Where a delivery stands.
    pub enum DeliveryStatus {
        Picked = "picked",
        Ready = "ready",
        Sent = "sent",
    }
}

named_enum! {
    /// Where a purchase order stands.
    pub enum PoStatus {
        Open = "open",
        PartReceived = "part_received",
        Received = "received",
        Closed = "closed",
        Cancelled = "cancelled",
    }
}

named_enum! {
    /// How loud a stop-press banner is; urgent ones are also sent at once.
    pub enum Severity {
        Info = "info",
        Warning = "warning",
        Urgent = "urgent",
    }
}

impl JobStatus {
    /// Still at TOT: delivery instructions may be given for it, and its items (no
    /// instructions yet, art not received) are open. The store's queries read this list.
    pub const OPEN: &'static [JobStatus] = &[JobStatus::Entered, JobStatus::InProduction, JobStatus::Completed];

    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }
}

impl PoStatus {
    /// Done with: nothing more is chased for it, whatever its lines say.
    pub const FINISHED: &'static [PoStatus] = &[PoStatus::Closed, PoStatus::Cancelled];
}

pub const JOB_STATUSES: &[&str] = JobStatus::NAMES;
pub const DELIVERY_INSTRUCTIONS: &[&str] = DeliveryInstructions::NAMES;
pub const VISUAL_STATUSES: &[&str] = VisualStatus::NAMES;

named_enum! {
    /// Where a colour visual stands. TOT's records and the store keep it as its snake_case
    /// name; decisions work on this type.
    pub enum VisualStatus {
        AwaitingApproval = "awaiting_approval",
        Approved = "approved",
        Rejected = "rejected",
    }
}

pub const DELIVERY_STATUSES: &[&str] = DeliveryStatus::NAMES;
pub const PO_STATUSES: &[&str] = PoStatus::NAMES;
pub const SEVERITIES: &[&str] = Severity::NAMES;

named_enum! {
    /// The way an outbox message leaves: a mail, a chat message, or a call to TOT's webhook.
    pub enum Outlet {
        Email = "email",
        Telegram = "telegram",
        Discord = "discord",
        Webhook = "webhook",
    }
}

impl Outlet {
    /// The chat provider a message goes through, if it goes to a chat.
    pub fn chat(self) -> Option<Chat> {
        match self {
            Outlet::Telegram => Some(Chat::Telegram),
            Outlet::Discord => Some(Chat::Discord),
            Outlet::Email | Outlet::Webhook => None,
        }
    }

    pub fn is_chat(self) -> bool {
        self.chat().is_some()
    }
}

named_enum! {
    /// A chat provider a contact links an account of (and TOT's record may name one of).
    pub enum Chat {
        Telegram = "telegram",
        Discord = "discord",
    }
}

/// A chat provider is also a channel contacts act from and a way messages leave.
macro_rules! from_chat {
    ($($to:ident),+) => {$(
        impl From<Chat> for $to {
            fn from(c: Chat) -> $to {
                match c {
                    Chat::Telegram => $to::Telegram,
                    Chat::Discord => $to::Discord,
                }
            }
        }
    )+};
}

from_chat!(Channel, Outlet);

impl Channel {
    /// The chat provider a contact acts from, if they act from a chat.
    pub fn chat(self) -> Option<Chat> {
        match self {
            Channel::Telegram => Some(Chat::Telegram),
            Channel::Discord => Some(Chat::Discord),
            Channel::Email | Channel::Portal => None,
        }
    }
}

named_enum! {
    /// What an outbox message is, for its sender, the console's filters and the metrics.
    pub enum MessageKind {
        /// The scheduled summary of a contact's items.
        Digest = "digest",
        /// Something new that needs a contact, sent at once.
        Alert = "alert",
        /// An urgent stop-press banner, sent at once.
        Banner = "banner",
        /// The answer to an emailed reply.
        Reply = "reply",
        /// The answer to a chat command.
        Answer = "answer",
        /// Sign-in, reset, invitation, delegation and access-request mail.
        System = "system",
        /// A change-feed notice to TOT's webhook.
        Change = "change",
    }
}

named_enum! {
    /// A kind of email a contact may turn off by itself (the one-click address in its
    /// `List-Unsubscribe`, or a reply to that header's `mailto:`); the others follow only
    /// email on or off. The name is what an unsubscribe link signs.
    pub enum Stoppable {
        Digest = "digest",
        Alert = "alert",
    }
}

impl Stoppable {
    /// The kind an outbox message of `kind` is, if a contact may stop it alone.
    pub fn of_kind(kind: MessageKind) -> Option<Stoppable> {
        match kind {
            MessageKind::Digest => Some(Stoppable::Digest),
            MessageKind::Alert => Some(Stoppable::Alert),
            _ => None,
        }
    }
}

named_enum! {
    /// Where an outbox message stands. `Sending` is a claim held by one dispatcher.
    pub enum OutboxStatus {
        Queued = "queued",
        Sending = "sending",
        Sent = "sent",
        Failed = "failed",
        Dead = "dead",
        Dropped = "dropped",
    }
}

impl OutboxStatus {
    /// May be queued again by staff: a drop by mistake is undone the same way.
    pub const REQUEUEABLE: &'static [OutboxStatus] = &[OutboxStatus::Failed, OutboxStatus::Dead, OutboxStatus::Dropped];
    /// Still waiting to go: a digest a newer one says again is dropped.
    pub const DROPPABLE: &'static [OutboxStatus] = &[OutboxStatus::Queued, OutboxStatus::Failed];
    /// Staff may drop one still waiting, or set a dead one aside once they have looked at it
    /// (it then leaves the dead letters waiting); either is queued again the same way.
    pub const STAFF_DROPPABLE: &'static [OutboxStatus] =
        &[OutboxStatus::Queued, OutboxStatus::Failed, OutboxStatus::Dead];

    /// Waits for the senders to try it (again) on their own: not sent, dead or dropped, which
    /// have no next try until staff queue them again.
    pub fn awaits_a_try(self) -> bool {
        matches!(self, OutboxStatus::Queued | OutboxStatus::Sending | OutboxStatus::Failed)
    }
}

named_enum! {
    /// What became of a message taken in (a reply, a bounce report), as the store records it.
    pub enum InboundOutcome {
        /// Commands were read and answered.
        Processed = "processed",
        /// A delivery report, recorded against the contact.
        Bounce = "bounce",
        /// Not acted on and not answered: an auto-reply, an unknown sender, a loop, or held
        /// mail staff discarded.
        Ignored = "ignored",
        /// Its sender could not be proven: kept for staff, nothing done.
        Held = "held",
        /// Seen before (the same Message-ID): never recorded again, only reported.
        Duplicate = "duplicate",
    }
}

named_enum! {
    /// Where a stop-press banner stands at a moment: its record read against the clock.
    pub enum BannerState {
        /// Taken down by staff: shown nowhere again.
        Retracted = "retracted",
        /// Its expiry has passed.
        Expired = "expired",
        /// Posted to start later.
        Scheduled = "scheduled",
        /// Showing now.
        Active = "active",
    }
}

impl BannerState {
    /// Showing now or to show later: what staff may still retract.
    pub fn live(self) -> bool {
        matches!(self, BannerState::Scheduled | BannerState::Active)
    }
}

named_enum! {
    /// Where a request for a portal account stands.
    pub enum AccessStatus {
        Open = "open",
        Done = "done",
        Refused = "refused",
    }
}

named_enum! {
    /// What a change-feed event says happened. Written by cport; read back as text, since the
    /// feed is TOT's record of every version's events and the list only grows.
    pub enum ChangeKind {
        VisualApproved = "visual_approved",
        VisualRejected = "visual_rejected",
        VisualDelegated = "visual_delegated",
        VisualCommented = "visual_commented",
        DeliveryInstructionsGiven = "delivery_instructions_given",
        NoDeliveryAcknowledged = "no_delivery_acknowledged",
        ArtworkUploaded = "artwork_uploaded",
        ResellerOrderPlaced = "reseller_order_placed",
        ThirdPartyUserCreated = "third_party_user_created",
        ThirdPartyUserRevoked = "third_party_user_revoked",
        SkuAllocated = "sku_allocated",
        SkuUnallocated = "sku_unallocated",
        EmailUnsubscribed = "email_unsubscribed",
        AccessRequested = "access_requested",
    }
}
