//! The JSON records TOT pushes (sync API and `cport import`), one struct per entity.
//! Unknown fields are refused so a typo is reported, not silently dropped.
//! Over 500 lines on purpose: twelve entities, each a struct and its checks side by side,
//! are the import format's reference and read best as one file.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::*;

/// An optional text as TOT sent it: one that prints as nothing (`""`, spaces, a zero-width
/// space: how exports write "none") reads as left out, never kept as a blank that would show
/// as "Your ref: " with nothing after it.
fn optional_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !blank(s)))
}

/// Every entity the sync API accepts, in the order an import applies them
/// (a record may refer only to entities earlier in this list).
pub const ENTITIES: &[&str] = &[
    "clients",
    "contacts",
    "jobs",
    "art_requirements",
    "visuals",
    "deliveries",
    "stock",
    "blank_stock",
    "purchase_orders",
    "invoices",
    "account_summaries",
    "price_cards",
];

/// A record's key and client, from the fields that hold them: `keyed!(sku, client_id)` in an
/// `impl Record` is keyed by `sku` (its column too) and belongs to the client its `client_id`
/// names; `keyed!(id)` belongs to no client. A macro, because a trait cannot name a field,
/// and so the key's column and its value are spelled once and cannot disagree.
macro_rules! keyed {
    ($key:ident $(, $client:ident)?) => {
        const KEY: &'static str = stringify!($key);
        fn key(&self) -> &str {
            &self.$key
        }
        fn client(&self) -> Option<&str> {
            None $(.or(Some(&self.$client)))?
        }
    };
}

/// A record that can check itself before it is written.
pub trait Record: serde::de::DeserializeOwned + Serialize + JsonSchema {
    /// The key's field, and its column in the store (see [`keyed!`]).
    const KEY: &'static str;
    /// The TOT id (the key for idempotent upserts).
    fn key(&self) -> &str;
    /// The client the record belongs to, when it belongs to one.
    fn client(&self) -> Option<&str>;
    /// The checks of the record's own fields; [`Record::check`] adds the key and the client.
    fn validate(&self, errs: &mut Vec<FieldError>);

    /// Values no two records of this kind may hold, as (field, value); the field is also the
    /// column. A chat id reaches one person: given to two contacts, one contact's digests
    /// would reach the other's chat, and that chat's commands act as either.
    fn unique_values(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Every check of the record: its key and its client are ids, then its own fields.
    fn check(&self, errs: &mut Vec<FieldError>) {
        check_id(Self::KEY, self.key(), errs);
        // An account summary's key is its client: checked once, above.
        if let Some(client) = self.client().filter(|_| Self::KEY != "client_id") {
            check_id("client_id", client, errs);
        }
        self.validate(errs);
    }
}

fn default_currency() -> String {
    "GBP".into()
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientIn {
    /// TOT's client id.
    pub id: String,
    /// Company name.
    pub name: String,
    /// An ISO 4217 code such as `GBP` or `EUR` (three capital letters); all money of the client's
    /// records is in this currency.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// The client's admins may let third-party users order allocated SKUs.
    #[serde(default)]
    pub third_party_ordering: bool,
}

impl Record for ClientIn {
    keyed!(id);
    fn validate(&self, e: &mut Vec<FieldError>) {
        check_text("name", &self.name, 200, e);
        // The code list is ISO 4217's, as the `iso_currency` crate keeps it.
        if iso_currency::Currency::from_code(&self.currency).is_none() {
            e.push(FieldError::new(
                "currency",
                format!("{} is not an ISO 4217 currency code like GBP (three capital letters)", quoted(&self.currency)),
            ));
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactIn {
    /// TOT's contact id.
    pub id: String,
    /// The client (must exist).
    pub client_id: String,
    /// Full name.
    pub name: String,
    /// Email address: one `@`, a dot inside the domain, no spaces, `<`, `>` or commas, at most
    /// 254 characters.
    pub email: String,
    /// `admin` (everything), `buyer` (orders, baskets, deliveries, visuals), `finance`
    /// (invoices, statements, balance), `viewer` (read-only), `third_party` (only what was
    /// delegated or allocated).
    pub role: String,
    /// IANA time zone name, e.g. `Europe/Berlin`; digests are scheduled in it. Left out: the
    /// zone of cport's `digest.timezone`, as it is when read (so a change of it reaches every
    /// contact TOT gives none).
    #[serde(default, deserialize_with = "optional_text")]
    pub timezone: Option<String>,
    /// Phone number, free form.
    #[serde(default, deserialize_with = "optional_text")]
    pub phone: Option<String>,
    /// Telegram chat id, not 0 (may be negative for groups); one contact's alone.
    #[serde(default)]
    pub telegram_chat_id: Option<i64>,
    /// Discord user id (a snowflake: digits that fit 64 bits, as a string); one contact's alone.
    #[serde(default, deserialize_with = "optional_text")]
    pub discord_user_id: Option<String>,
    /// Cron expression (seconds first) overriding the default digest schedule; at most four
    /// summaries in any day, as the portal allows the contact.
    #[serde(default, deserialize_with = "optional_text")]
    pub digest_schedule: Option<String>,
    /// `false` leaves the contact out of digest runs. A third-party user a client's admin
    /// revoked stays inactive whatever is sent here.
    #[serde(default = "default_true")]
    pub active: bool,
}

/// An address cport can send to: one `@`, a dot in the domain, no spaces, at most 64
/// characters before the `@` and 254 in all, and one the mail sender itself accepts (so an
/// address taken here never turns into a dead message later).
pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    local.len() <= 64
        && s.parse::<lettre::Address>().is_ok()
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',' || prints_as_nothing(c))
        // A host name: labels of letters, digits and inner hyphens (`b.c%0a` is no host).
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.chars().count() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// A character an address may not hold although the mail sender takes it: a control
/// character, or one that prints as nothing (a zero-width space, a byte-order mark, a
/// direction mark), so two addresses that read the same are the same address.
fn prints_as_nothing(c: char) -> bool {
    use unicode_general_category::{GeneralCategory, get_general_category};
    c.is_control() || get_general_category(c) == GeneralCategory::Format
}

impl Record for ContactIn {
    keyed!(id, client_id);
    fn unique_values(&self) -> Vec<(&'static str, String)> {
        let telegram = self.telegram_chat_id.map(|id| ("telegram_chat_id", id.to_string()));
        let discord = self.discord_user_id.clone().map(|id| ("discord_user_id", id));
        telegram.into_iter().chain(discord).collect()
    }
    fn validate(&self, e: &mut Vec<FieldError>) {
        check_text("name", &self.name, super::limits::PERSON_NAME, e);
        if !valid_email(&self.email) {
            e.push(FieldError::new("email", format!("{} is not an email address", quoted(&self.email))));
        }
        if Role::parse(&self.role).is_none() {
            e.push(FieldError::new(
                "role",
                format!("{} is not one of admin, buyer, finance, viewer, third_party", quoted(&self.role)),
            ));
        }
        if let Some(zone) = &self.timezone
            && zone.parse::<chrono_tz::Tz>().is_err()
        {
            e.push(FieldError::new("timezone", format!("{} is not an IANA time zone", quoted(zone))));
        }
        if let Some(s) = &self.digest_schedule
            && let Err(msg) = crate::model::schedule::check_contact_schedule(s)
        {
            e.push(FieldError::new("digest_schedule", msg));
        }
        // A snowflake: digits that fit 64 bits (Discord refuses anything else, so a message
        // to the contact would only go dead later).
        if let Some(d) = &self.discord_user_id
            && discord_id(d).is_none()
        {
            e.push(FieldError::new("discord_user_id", format!("{} is not a Discord user id (digits)", quoted(d))));
        }
        // Telegram numbers no chat 0 (a message to it is refused, and would only go dead).
        if self.telegram_chat_id == Some(0) {
            e.push(FieldError::new("telegram_chat_id", "0 is not a Telegram chat id"));
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessLineIn {
    /// Status of the step, free text (e.g. `planned`, `done`).
    pub status: String,
    /// E.g. `Screen print`, `Embroidery`.
    pub process: String,
    /// Where on the garment, e.g. `Left chest`.
    pub position: String,
    /// Planned or actual date of the step.
    #[serde(default, deserialize_with = "dates::optional_date")]
    pub process_date: Option<NaiveDate>,
    /// Quantity.
    pub qty: i64,
    /// Price per unit.
    pub unit_price: Money,
    /// Picture of the step.
    #[serde(default, deserialize_with = "optional_text")]
    pub image: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostLineIn {
    /// What is charged.
    pub description: String,
    /// Quantity.
    pub qty: i64,
    /// Price per unit; the line total is `qty × unit_price`.
    pub unit_price: Money,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrintedGarmentIn {
    /// The decorated garment.
    pub description: String,
    /// Quantity ordered.
    pub expected_qty: i64,
    /// Quantity produced so far.
    #[serde(default)]
    pub produced_qty: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobIn {
    /// TOT's job id.
    pub id: String,
    /// The client (must exist).
    pub client_id: String,
    /// The client's contact for the job (must exist and belong to the same client).
    #[serde(default, deserialize_with = "optional_text")]
    pub contact_id: Option<String>,
    /// Job name.
    pub name: String,
    /// `entered`, `in_production`, `completed` (these three are *open*), `delivered`,
    /// `cancelled`.
    pub status: String,
    /// Date the client needs the goods.
    #[serde(default, deserialize_with = "dates::optional_date")]
    pub date_required: Option<NaiveDate>,
    /// TOT's sales order number.
    #[serde(default, deserialize_with = "optional_text")]
    pub order_id: Option<String>,
    /// The client's own reference.
    #[serde(default, deserialize_with = "optional_text")]
    pub client_ref: Option<String>,
    /// `none` (the client has said nothing yet), `given`, or `not_required`. Left out, the
    /// job keeps what it has (`none` for a new job): a client's answer in the portal, chat or
    /// email is not undone by TOT's next update of the job; TOT sends `none` to ask again.
    #[serde(default, deserialize_with = "optional_text")]
    pub delivery_instructions: Option<String>,
    /// When the job was entered; if left out, the time of first insert is used and kept.
    #[serde(default, deserialize_with = "dates::optional_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// Decoration steps.
    #[serde(default)]
    pub process_lines: Vec<ProcessLineIn>,
    /// Artwork charges.
    #[serde(default)]
    pub art_costs: Vec<CostLineIn>,
    /// Undecorated garments used.
    #[serde(default)]
    pub blank_garments: Vec<CostLineIn>,
    /// Decorated output.
    #[serde(default)]
    pub printed_garments: Vec<PrintedGarmentIn>,
}

/// The largest line total cport takes, in minor units (ten trillion in the currency's units):
/// far above any real charge, and far enough below `i64::MAX` that many lines still sum.
const MOST_LINE_TOTAL: u64 = 1_000_000_000_000_000;

/// Refuses a line whose `qty × unit_price` no total could hold.
pub(crate) fn check_line_total(field: &str, qty: i64, unit_price: Money, e: &mut Vec<FieldError>) {
    if qty.checked_mul(unit_price.minor()).is_none_or(|t| t.unsigned_abs() > MOST_LINE_TOTAL) {
        e.push(FieldError::new(field, "qty × unit_price is more than 10,000,000,000,000.00"));
    }
}

/// Refuses a list of amounts (line totals, costs) that together pass the most a line may
/// be: the pages, documents and change feed show their sum, and a sum that no longer fits
/// would be shown capped, wrong, and could be approved so.
fn check_sum(field: &str, amounts: impl IntoIterator<Item = i64>, e: &mut Vec<FieldError>) {
    let sum: i128 = amounts.into_iter().map(i128::from).sum();
    if sum.unsigned_abs() > u128::from(MOST_LINE_TOTAL) {
        e.push(FieldError::new(field, "the lines add up to more than 10,000,000,000,000.00"));
    }
}

fn check_cost_lines(name: &str, lines: &[CostLineIn], e: &mut Vec<FieldError>) {
    for (i, l) in lines.iter().enumerate() {
        check_text(&format!("{name}[{i}].description"), &l.description, 500, e);
        check_qty(&format!("{name}[{i}].qty"), l.qty, e);
        check_line_total(&format!("{name}[{i}].unit_price"), l.qty, l.unit_price, e);
    }
    check_sum(name, lines.iter().map(|l| crate::model::line_total(l.qty, l.unit_price.minor())), e);
}

impl Record for JobIn {
    keyed!(id, client_id);
    fn validate(&self, e: &mut Vec<FieldError>) {
        if let Some(c) = &self.contact_id {
            check_id("contact_id", c, e);
        }
        check_text("name", &self.name, 300, e);
        check_one_of("status", &self.status, JOB_STATUSES, e);
        if let Some(given) = &self.delivery_instructions {
            check_one_of("delivery_instructions", given, DELIVERY_INSTRUCTIONS, e);
        }
        for (i, l) in self.process_lines.iter().enumerate() {
            check_text(&format!("process_lines[{i}].process"), &l.process, 200, e);
            check_text(&format!("process_lines[{i}].status"), &l.status, 50, e);
            check_text(&format!("process_lines[{i}].position"), &l.position, 200, e);
            check_qty(&format!("process_lines[{i}].qty"), l.qty, e);
            check_line_total(&format!("process_lines[{i}].unit_price"), l.qty, l.unit_price, e);
            if let Some(image) = &l.image {
                check_picture(&format!("process_lines[{i}].image"), image, e);
            }
        }
        check_sum(
            "process_lines",
            self.process_lines.iter().map(|l| crate::model::line_total(l.qty, l.unit_price.minor())),
            e,
        );
        check_cost_lines("art_costs", &self.art_costs, e);
        check_cost_lines("blank_garments", &self.blank_garments, e);
        for (i, l) in self.printed_garments.iter().enumerate() {
            check_text(&format!("printed_garments[{i}].description"), &l.description, 500, e);
            check_qty(&format!("printed_garments[{i}].expected_qty"), l.expected_qty, e);
            check_qty(&format!("printed_garments[{i}].produced_qty"), l.produced_qty, e);
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtRequirementIn {
    /// TOT's id for the requirement.
    pub id: String,
    /// The client (must exist).
    pub client_id: String,
    /// The job (must exist and belong to the same client).
    pub job_id: String,
    /// TOT's design id (not checked against anything).
    pub design_id: String,
    /// What artwork is needed.
    pub description: String,
    /// Date the artwork is needed by.
    #[serde(default, deserialize_with = "dates::optional_date")]
    pub art_due: Option<NaiveDate>,
    /// The artwork has arrived.
    #[serde(default)]
    pub art_received: bool,
}

impl Record for ArtRequirementIn {
    keyed!(id, client_id);
    fn validate(&self, e: &mut Vec<FieldError>) {
        check_id("job_id", &self.job_id, e);
        check_id("design_id", &self.design_id, e);
        check_text("description", &self.description, 500, e);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentIn {
    /// Who wrote it.
    pub author: String,
    /// `client` or `tot`.
    pub side: String,
    /// The comment.
    pub body: String,
    /// When it was written.
    #[serde(deserialize_with = "dates::time")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VisualIn {
    /// TOT's visual id.
    pub id: String,
    /// The client (must exist).
    pub client_id: String,
    /// The job (must exist and belong to the same client).
    pub job_id: String,
    /// TOT's design id (not checked against anything).
    pub design_id: String,
    /// E.g. `Colour visual`, `Embroidery sew-out`.
    pub category: String,
    /// Who drew it.
    pub designer: String,
    /// `awaiting_approval`, `approved`, `rejected`.
    pub status: String,
    /// The visual.
    pub main_image: String,
    /// Where the design sits on the garment.
    #[serde(default, deserialize_with = "optional_text")]
    pub placement_image: Option<String>,
    /// When the visual was issued; if left out, the time of first insert is used and kept.
    #[serde(default, deserialize_with = "dates::optional_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// Art charges (cost lines, as a job has).
    #[serde(default)]
    pub charges: Vec<CostLineIn>,
    /// The thread between client and TOT, oldest first.
    #[serde(default)]
    pub comments: Vec<CommentIn>,
}

impl Record for VisualIn {
    keyed!(id, client_id);
    fn validate(&self, e: &mut Vec<FieldError>) {
        check_id("job_id", &self.job_id, e);
        check_id("design_id", &self.design_id, e);
        check_text("category", &self.category, 100, e);
        check_text("designer", &self.designer, 200, e);
        check_one_of("status", &self.status, VISUAL_STATUSES, e);
        check_picture("main_image", &self.main_image, e);
        if let Some(image) = &self.placement_image {
            check_picture("placement_image", image, e);
        }
        check_cost_lines("charges", &self.charges, e);
        for (i, c) in self.comments.iter().enumerate() {
            check_one_of(&format!("comments[{i}].side"), &c.side, &["client", "tot"], e);
            check_text(&format!("comments[{i}].body"), &c.body, 5000, e);
            check_text(&format!("comments[{i}].author"), &c.author, 200, e);
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingIn {
    /// E.g. `DPD`.
    pub carrier: String,
    /// Tracking number.
    pub number: String,
    /// Tracking page: an `http://` or `https://` address (the portal links to it).
    #[serde(default, deserialize_with = "optional_text")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryLineIn {
    /// The goods.
    pub description: String,
    /// Quantity.
    pub qty: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackingIn {
    /// E.g. `Box 1 of 2`, `Pallet 1`.
    pub container: String,
    /// Contents.
    pub description: String,
    /// Quantity in the container.
    pub qty: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryCostIn {
    /// E.g. `Carriage`, `Packing`.
    pub cost_type: String,
    /// Details.
    pub description: String,
    /// Amount.
    pub price: Money,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofOfDeliveryIn {
    /// Picture of the signature.
    pub signature_image: String,
    /// Boxes handed over.
    pub boxes: i64,
    /// Courier company.
    pub courier: String,
    /// When it was signed for.
    #[serde(deserialize_with = "dates::time")]
    pub signed_at: DateTime<Utc>,
    /// Driver or worker id.
    #[serde(default, deserialize_with = "optional_text")]
    pub courier_worker: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryIn {
    /// TOT's delivery id.
    pub id: String,
    /// The client (must exist).
    pub client_id: String,
    /// The job delivered (must exist and belong to the same client).
    #[serde(default, deserialize_with = "optional_text")]
    pub job_id: Option<String>,
    /// `picked`, `ready`, `sent`.
    pub status: String,
    /// Date due at the venue.
    #[serde(default, deserialize_with = "dates::optional_date")]
    pub delivery_date: Option<NaiveDate>,
    /// Date dispatched; **required when `status` is `sent`**.
    #[serde(default, deserialize_with = "dates::optional_date")]
    pub sent_date: Option<NaiveDate>,
    /// Delivery address or place (e.g. `Collect from TOT`).
    pub venue: String,
    /// What is being delivered.
    pub description: String,
    /// Name of the person receiving it (free text, not a contact id).
    #[serde(default, deserialize_with = "optional_text")]
    pub contact: Option<String>,
    /// The client's own reference.
    #[serde(default, deserialize_with = "optional_text")]
    pub client_ref: Option<String>,
    /// Carrier tracking.
    #[serde(default)]
    pub tracking: Option<TrackingIn>,
    /// Goods in the delivery.
    #[serde(default)]
    pub lines: Vec<DeliveryLineIn>,
    /// Goods by container.
    #[serde(default)]
    pub packing: Vec<PackingIn>,
    /// Carriage and other charges.
    #[serde(default)]
    pub costs: Vec<DeliveryCostIn>,
    /// The courier's record of handover.
    #[serde(default)]
    pub proof_of_delivery: Option<ProofOfDeliveryIn>,
}

impl Record for DeliveryIn {
    keyed!(id, client_id);
    fn validate(&self, e: &mut Vec<FieldError>) {
        if let Some(j) = &self.job_id {
            check_id("job_id", j, e);
        }
        check_one_of("status", &self.status, DELIVERY_STATUSES, e);
        check_text("venue", &self.venue, 500, e);
        check_text("description", &self.description, 500, e);
        if let Some(t) = &self.tracking {
            check_text("tracking.carrier", &t.carrier, 100, e);
            check_text("tracking.number", &t.number, 100, e);
            if let Some(url) = &t.url {
                check_web_address("tracking.url", url, e);
            }
        }
        for (i, l) in self.lines.iter().enumerate() {
            check_text(&format!("lines[{i}].description"), &l.description, 500, e);
            check_qty(&format!("lines[{i}].qty"), l.qty, e);
        }
        for (i, l) in self.packing.iter().enumerate() {
            check_text(&format!("packing[{i}].container"), &l.container, 100, e);
            check_text(&format!("packing[{i}].description"), &l.description, 500, e);
            check_qty(&format!("packing[{i}].qty"), l.qty, e);
        }
        for (i, l) in self.costs.iter().enumerate() {
            check_text(&format!("costs[{i}].cost_type"), &l.cost_type, 100, e);
            check_text(&format!("costs[{i}].description"), &l.description, 500, e);
        }
        check_sum("costs", self.costs.iter().map(|c| c.price.minor()), e);
        if let Some(p) = &self.proof_of_delivery {
            check_qty("proof_of_delivery.boxes", p.boxes, e);
            check_text("proof_of_delivery.courier", &p.courier, 200, e);
            check_picture("proof_of_delivery.signature_image", &p.signature_image, e);
        }
        if DeliveryStatus::parse(&self.status) == Some(DeliveryStatus::Sent) && self.sent_date.is_none() {
            e.push(FieldError::new("sent_date", "required when status is sent"));
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockIn {
    /// TOT's SKU.
    pub sku: String,
    /// The client (must exist).
    pub client_id: String,
    /// The client's own code for the item.
    #[serde(default, deserialize_with = "optional_text")]
    pub client_sku: Option<String>,
    /// The item.
    pub description: String,
    /// Units in the warehouse.
    pub warehouse_balance: i64,
    /// Units on their way in.
    #[serde(default)]
    pub expected: i64,
    /// Units already committed to orders.
    #[serde(default)]
    pub accounted_for: i64,
    /// Units the client may order now (sent by TOT, not computed by cport).
    pub available_to_order: i64,
    /// Picture of the item.
    #[serde(default, deserialize_with = "optional_text")]
    pub picture: Option<String>,
}

impl Record for StockIn {
    keyed!(sku, client_id);
    fn validate(&self, e: &mut Vec<FieldError>) {
        check_text("description", &self.description, 500, e);
        if let Some(picture) = &self.picture {
            check_picture("picture", picture, e);
        }
        check_qty("warehouse_balance", self.warehouse_balance, e);
        check_qty("expected", self.expected, e);
        check_qty("accounted_for", self.accounted_for, e);
        check_qty("available_to_order", self.available_to_order, e);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlankStockIn {
    /// TOT's SKU.
    pub sku: String,
    /// The garment.
    pub description: String,
    /// Units in the warehouse.
    pub warehouse_balance: i64,
    /// Units on their way in.
    #[serde(default)]
    pub expected: i64,
    /// Units already committed.
    #[serde(default)]
    pub accounted_for: i64,
    /// Units available.
    pub available_to_order: i64,
}

impl Record for BlankStockIn {
    keyed!(sku);
    fn validate(&self, e: &mut Vec<FieldError>) {
        check_text("description", &self.description, 500, e);
        check_qty("warehouse_balance", self.warehouse_balance, e);
        check_qty("expected", self.expected, e);
        check_qty("accounted_for", self.accounted_for, e);
        check_qty("available_to_order", self.available_to_order, e);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoLineIn {
    /// Status of the line, free text (e.g. `open`, `received`).
    pub status: String,
    /// The item's SKU (not checked against stock).
    pub sku: String,
    /// The item.
    pub description: String,
    /// Units ordered.
    pub ordered: i64,
    /// Units received; `received + cancelled` must not exceed `ordered`.
    #[serde(default)]
    pub received: i64,
    /// Units cancelled.
    #[serde(default)]
    pub cancelled: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoReceiptIn {
    /// Date the goods arrived.
    #[serde(deserialize_with = "dates::date")]
    pub date_received: NaiveDate,
    /// Who signed for them.
    pub signed_by: String,
    /// Date they were checked.
    #[serde(default, deserialize_with = "dates::optional_date")]
    pub date_checked: Option<NaiveDate>,
    /// Kind of check, e.g. `Count and quality`.
    #[serde(default, deserialize_with = "optional_text")]
    pub check_category: Option<String>,
    /// Who checked them.
    #[serde(default, deserialize_with = "optional_text")]
    pub checked_by: Option<String>,
    /// Outer cartons received.
    #[serde(default)]
    pub outers: i64,
    /// Handling charge.
    #[serde(default)]
    pub handling_cost: Money,
    /// Pictures taken at the check.
    #[serde(default)]
    pub checking_images: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseOrderIn {
    /// TOT's purchase order id.
    pub id: String,
    /// The client (must exist).
    pub client_id: String,
    /// Name of whoever placed the order; set together with `third_party`.
    #[serde(default, deserialize_with = "optional_text")]
    pub placed_by: Option<String>,
    /// Placed by one of the client's third parties (these show as action items).
    #[serde(default)]
    pub third_party: bool,
    /// `open`, `part_received`, `received`, `closed`, `cancelled`.
    pub status: String,
    /// Order date.
    #[serde(deserialize_with = "dates::date")]
    pub date_ordered: NaiveDate,
    /// TOT's reference.
    pub tot_ref: String,
    /// The client's reference.
    #[serde(default, deserialize_with = "optional_text")]
    pub client_ref: Option<String>,
    /// E.g. `Blank garments`.
    pub category: String,
    /// Order type, e.g. `Third party`, `Client`.
    #[serde(rename = "type")]
    pub po_type: String,
    /// Supplier name.
    pub supplier: String,
    /// What was ordered.
    #[serde(default)]
    pub lines: Vec<PoLineIn>,
    /// Goods-in records.
    #[serde(default)]
    pub receipts: Vec<PoReceiptIn>,
}

impl Record for PurchaseOrderIn {
    keyed!(id, client_id);
    fn validate(&self, e: &mut Vec<FieldError>) {
        check_one_of("status", &self.status, PO_STATUSES, e);
        check_text("tot_ref", &self.tot_ref, 100, e);
        check_text("category", &self.category, 100, e);
        check_text("type", &self.po_type, 100, e);
        check_text("supplier", &self.supplier, 200, e);
        for (i, l) in self.lines.iter().enumerate() {
            check_id(&format!("lines[{i}].sku"), &l.sku, e);
            check_text(&format!("lines[{i}].status"), &l.status, 50, e);
            check_text(&format!("lines[{i}].description"), &l.description, 500, e);
            check_qty(&format!("lines[{i}].ordered"), l.ordered, e);
            check_qty(&format!("lines[{i}].received"), l.received, e);
            check_qty(&format!("lines[{i}].cancelled"), l.cancelled, e);
            if l.received.saturating_add(l.cancelled) > l.ordered {
                e.push(FieldError::new(format!("lines[{i}].received"), "received plus cancelled is more than ordered"));
            }
        }
        for (i, r) in self.receipts.iter().enumerate() {
            check_text(&format!("receipts[{i}].signed_by"), &r.signed_by, 200, e);
            for (j, image) in r.checking_images.iter().enumerate() {
                check_picture(&format!("receipts[{i}].checking_images[{j}]"), image, e);
            }
            check_qty(&format!("receipts[{i}].outers"), r.outers, e);
        }
        check_sum("receipts", self.receipts.iter().map(|r| r.handling_cost.minor()), e);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceIn {
    /// Invoice number.
    pub id: String,
    /// The client (must exist).
    pub client_id: String,
    /// Invoice date.
    #[serde(deserialize_with = "dates::date")]
    pub date: NaiveDate,
    /// Payment due date.
    #[serde(default, deserialize_with = "dates::optional_date")]
    pub due_date: Option<NaiveDate>,
    /// The client's purchase order reference.
    #[serde(default, deserialize_with = "optional_text")]
    pub client_po_ref: Option<String>,
    /// What was invoiced.
    pub job_name: String,
    /// Invoice total; may be negative (a credit note).
    pub total: Money,
    /// Amount paid so far (on a credit note, paid out of it); must not be negative nor more
    /// than the total's amount. Outstanding is `total − paid`, on a credit note `total + paid`.
    #[serde(default)]
    pub paid: Money,
}

impl Record for InvoiceIn {
    keyed!(id, client_id);
    fn validate(&self, e: &mut Vec<FieldError>) {
        check_text("job_name", &self.job_name, 300, e);
        if self.paid.0 < 0 {
            e.push(FieldError::new("paid", "must not be negative"));
        }
        // A credit note (a negative total) may be paid out up to its amount.
        if self.paid.0 > self.total.0.abs() {
            e.push(FieldError::new("paid", "is more than the total's amount"));
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountSummaryIn {
    /// The client (must exist).
    pub client_id: String,
    /// Date the figures were taken.
    #[serde(deserialize_with = "dates::date")]
    pub as_of: NaiveDate,
    /// Total owed.
    pub current_balance: Money,
    /// Part overdue by more than 30 days.
    #[serde(default)]
    pub over_30: Money,
    /// Part overdue by more than 60 days.
    #[serde(default)]
    pub over_60: Money,
    /// Part overdue by more than 90 days.
    #[serde(default)]
    pub over_90: Money,
    /// The client's credit limit, when TOT keeps one.
    #[serde(default)]
    pub credit_limit: Option<Money>,
}

impl Record for AccountSummaryIn {
    keyed!(client_id, client_id);
    /// Its key is its client, checked by [`Record::check`]; a credit limit is not negative.
    fn validate(&self, e: &mut Vec<FieldError>) {
        if self.credit_limit.is_some_and(|l| l.0 < 0) {
            e.push(FieldError::new("credit_limit", "must not be negative"));
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceLineIn {
    /// Rate code, e.g. `SP1`.
    pub code: String,
    /// What the rate is for.
    pub description: String,
    /// E.g. `each`, `per colour`.
    pub unit: String,
    /// Minimum quantity the rate applies to.
    #[serde(default = "one")]
    pub min_qty: i64,
    /// Price per unit.
    pub price: Money,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceCardIn {
    /// TOT's rate card id.
    pub id: String,
    /// The client (must exist).
    pub client_id: String,
    /// Name of the card.
    pub name: String,
    /// Date the rates apply from.
    #[serde(deserialize_with = "dates::date")]
    pub effective_from: NaiveDate,
    /// The rates.
    #[serde(default)]
    pub lines: Vec<PriceLineIn>,
}

impl Record for PriceCardIn {
    keyed!(id, client_id);
    fn validate(&self, e: &mut Vec<FieldError>) {
        check_text("name", &self.name, 200, e);
        for (i, l) in self.lines.iter().enumerate() {
            check_text(&format!("lines[{i}].code"), &l.code, 50, e);
            check_text(&format!("lines[{i}].description"), &l.description, 500, e);
            check_text(&format!("lines[{i}].unit"), &l.unit, 50, e);
            check_qty(&format!("lines[{i}].min_qty"), l.min_qty, e);
        }
    }
}

/// A whole import document: any of the entities, each an array.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientIn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<ContactIn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobIn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub art_requirements: Vec<ArtRequirementIn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visuals: Vec<VisualIn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<DeliveryIn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stock: Vec<StockIn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blank_stock: Vec<BlankStockIn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purchase_orders: Vec<PurchaseOrderIn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invoices: Vec<InvoiceIn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub account_summaries: Vec<AccountSummaryIn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub price_cards: Vec<PriceCardIn>,
}

impl Document {
    pub fn total(&self) -> usize {
        self.clients.len()
            + self.contacts.len()
            + self.jobs.len()
            + self.art_requirements.len()
            + self.visuals.len()
            + self.deliveries.len()
            + self.stock.len()
            + self.blank_stock.len()
            + self.purchase_orders.len()
            + self.invoices.len()
            + self.account_summaries.len()
            + self.price_cards.len()
    }
}

/// One problem with one record of a batch.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, JsonSchema)]
pub struct RecordError {
    pub entity: String,
    /// Position of the record in its array (none for a problem with the whole body).
    pub index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub field: String,
    pub reason: String,
}

/// A batch or document refused: its problems as listed (a report lists the first thousand),
/// how many records had problems and how many problems there were in all, and how many of
/// those were about no one record (an unknown entity, the document's shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub errors: Vec<RecordError>,
    pub records: usize,
    pub problems: usize,
    pub whole: usize,
}

impl From<Vec<RecordError>> for Refused {
    /// Every problem listed: counted from the list.
    fn from(errors: Vec<RecordError>) -> Refused {
        let placed = || errors.iter().filter(|e| e.index.is_some() || e.id.is_some());
        let records = placed().map(|e| (&e.entity, e.index, &e.id)).collect::<std::collections::HashSet<_>>().len();
        let whole = errors.len() - placed().count();
        Refused { records, problems: errors.len(), whole, errors }
    }
}

impl Refused {
    /// How many records it is about, as a refusal says it: one record may have several
    /// problems, and a count of problems would read as a count of records; a problem with no
    /// record (an unknown entity) is said as the document's, not counted as a record.
    pub fn counted(&self) -> String {
        let in_records = self.problems - self.whole.min(self.problems);
        let mut said = Vec::new();
        if self.records > 0 || self.whole == 0 {
            said.push(match self.records == in_records {
                true => format!("{} invalid record(s)", self.records),
                false => format!("{} invalid record(s), {in_records} problems", self.records),
            });
        }
        if self.whole > 0 {
            said.push(format!("{} problem(s) with the document as a whole", self.whole));
        }
        said.join(" and ")
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // About a whole entity or document, not one of its records: named once.
        if self.index.is_none() && self.id.is_none() && self.field == self.entity {
            return write!(f, "{}: {}", self.entity, self.reason);
        }
        match self.index {
            Some(i) => write!(f, "{}[{i}]", self.entity)?,
            None => write!(f, "{}", self.entity)?,
        }
        if let Some(id) = &self.id {
            write!(f, " ({id})")?;
        }
        write!(f, " {}: {}", self.field, self.reason)
    }
}
