//! Turning action items and banners into email: one `compose_<kind>` per message kind, each
//! rendering a text + HTML template pair that share header and footer.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use minijinja::Environment;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use super::{Brand, EmailPayload, SendError, new_message_id};
use crate::config::Config;
use crate::links::Signer;
use crate::model::items::{Action, ActionItem, Category};
use crate::store::banners::BannerRow;
use crate::store::contacts::ContactRow;

/// Whom an email is composed for: the contact, the reply token its replies carry, and the
/// time its signed links count from.
#[derive(Clone, Copy)]
pub struct Recipient<'a> {
    pub contact: &'a ContactRow,
    pub token: &'a str,
    pub now: DateTime<Utc>,
}

/// Everything composing needs, borrowed from the app.
pub struct Composer<'a> {
    pub config: &'a Config,
    pub env: &'a Environment<'static>,
    pub signer: &'a Signer,
}

#[derive(Serialize)]
struct ContactView<'a> {
    name: &'a str,
    email: &'a str,
    client_name: &'a str,
}

#[derive(Serialize)]
struct BannerView<'a> {
    title: &'a str,
    body: &'a str,
    severity: &'a str,
}

#[derive(Serialize)]
struct ItemView {
    id: String,
    title: String,
    detail: String,
    date: Option<String>,
    date_label: &'static str,
    is_new: bool,
    command: Option<String>,
    reject_command: Option<String>,
    link: String,
    link_label: &'static str,
    approve_mailto: Option<String>,
    reject_mailto: Option<String>,
    /// Artwork may be sent by replying with the file attached: the message asks for one
    /// job's artwork (the rule `channels::inbound` reads a reply's attachments by).
    attach: bool,
}

#[derive(Serialize)]
struct GroupView<'a> {
    code: &'static str,
    heading: &'static str,
    items: Vec<ItemView>,
    /// The approval terms, where an item of the group may be approved by reply: the reply
    /// accepts them, so the message shows them.
    terms: Option<&'a str>,
}

#[derive(Serialize)]
struct Ctx<'a> {
    subject: &'a str,
    /// An alert staff sent as a reminder of items waiting, not as news.
    reminder: bool,
    brand: Brand<'a>,
    contact: ContactView<'a>,
    banners: Vec<BannerView<'a>>,
    groups: Vec<GroupView<'a>>,
    total: usize,
    new_count: usize,
    portal_link: String,
    preferences_link: String,
    /// Commands the footer offers as examples: ones the contact's role may send.
    asks: Vec<&'static str>,
}

/// Which message is composed: its templates, and whether an alert is a reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Digest,
    Alert,
    /// An alert staff sent of items waiting: the alert's templates, said as a reminder.
    Reminder,
    Banner,
}

impl Kind {
    /// The templates' name: `email/{name}.txt.j2` and `.html.j2`.
    fn templates(self) -> &'static str {
        match self {
            Kind::Digest => "digest",
            Kind::Alert | Kind::Reminder => "alert",
            Kind::Banner => "banner",
        }
    }
}

/// What an alert of `count` items is about, in a line (`first` is the first item's title):
/// its chat title and, after the brand, its subject.
pub fn alert_title(count: usize, first: &str, reminder: bool) -> String {
    match (count, reminder) {
        (1, false) => first.to_string(),
        (1, true) => format!("Reminder: {first}"),
        (n, false) => format!("{n} new things need you"),
        (n, true) => format!("Reminder: {n} things still need you"),
    }
}

/// How many things need a contact, as a digest's subject, a chat digest and the ITEMS answer
/// say it: "1 thing needs you", "4 things need you".
pub fn need_you(n: usize) -> String {
    match n {
        1 => "1 thing needs you".into(),
        n => format!("{n} things need you"),
    }
}

/// [`alert_title`] of these items.
pub fn alert_title_of(items: &[ActionItem], reminder: bool) -> String {
    alert_title(items.len(), items.first().map_or("", |i| i.title.as_str()), reminder)
}

/// An alert email's subject ([`alert_title`] after the brand), as queued and as sent.
pub fn alert_subject(brand: &str, count: usize, first: &str, reminder: bool) -> String {
    format!("{brand}: {}", alert_title(count, first, reminder))
}

/// A few commands to offer a contact of `role` (a message's footer, a chat just linked), HELP
/// last: only those their role may send.
pub fn asks_for(role: crate::model::Role) -> Vec<&'static str> {
    use crate::model::CommandWord as W;
    let mut asks: Vec<&'static str> = [
        (W::Items, "ITEMS"),
        (W::Jobs, "JOBS"),
        (W::Track, "TRACK <delivery>"),
        (W::Invoices, "INVOICES"),
        (W::Balance, "BALANCE"),
    ]
    .into_iter()
    .filter(|(word, _)| role.may_send(*word))
    .map(|(_, example)| example)
    .take(3)
    .collect();
    asks.push("HELP");
    asks
}

fn mailto(to: &str, subject: &str, body: &str) -> String {
    format!(
        "mailto:{to}?subject={}&body={}",
        utf8_percent_encode(subject, NON_ALPHANUMERIC),
        utf8_percent_encode(body, NON_ALPHANUMERIC)
    )
}

impl Composer<'_> {
    /// A signed portal link for `contact` to `path`.
    pub fn link(&self, contact_id: &str, path: &str, now: DateTime<Utc>) -> String {
        let ttl = Duration::days(i64::from(self.config.digest.link_ttl_days));
        self.signer.open_url(&self.config.public_url, path, contact_id, ttl, now)
    }

    pub fn reply_address(&self, token: &str) -> String {
        self.config.reply_address(token)
    }

    fn groups<'s>(
        &'s self,
        contact: &ContactRow,
        items: &[ActionItem],
        previous: Option<&HashSet<String>>,
        reply: &str,
        subject: &str,
        now: DateTime<Utc>,
    ) -> (Vec<GroupView<'s>>, usize) {
        let mut groups: Vec<GroupView<'s>> = Vec::new();
        let mut new_count = 0;
        let art_jobs: HashSet<&str> =
            items.iter().filter(|i| i.category == Category::AwaitingArt).map(|i| i.id.as_str()).collect();
        for cat in Category::ALL {
            let views: Vec<ItemView> = items
                .iter()
                .filter(|i| i.category == cat)
                .map(|i| {
                    let is_new = previous.is_some_and(|p| !p.contains(&i.key()));
                    new_count += usize::from(is_new);
                    // Approve and reject by reply only where a command can name the visual.
                    let actionable = i.action == Action::ApproveRejectDelegate && i.command.is_some();
                    let re = format!("Re: {subject}");
                    ItemView {
                        id: i.id.clone(),
                        title: i.title.clone(),
                        detail: i.detail.clone(),
                        date: i.date.map(|d| d.format("%a %-d %b %Y").to_string()),
                        date_label: match cat {
                            Category::VisualApproval | Category::DeliveryInstructions => "needed by",
                            Category::ThirdPartyPo => "ordered",
                            Category::AwaitingArt => "art due",
                        },
                        is_new,
                        command: i.command.clone(),
                        reject_command: actionable.then(|| format!("REJECT {} <reason>", i.id)),
                        link: self.link(&contact.id, &i.path(), now),
                        link_label: match i.action {
                            Action::ApproveRejectDelegate => "Review",
                            Action::GiveDeliveryInstructions => "Give delivery instructions",
                            Action::UploadArtwork => "Open job",
                            Action::None => "View",
                        },
                        approve_mailto: actionable.then(|| mailto(reply, &re, &format!("APPROVE {}", i.id))),
                        reject_mailto: actionable.then(|| mailto(reply, &re, &format!("REJECT {} reason: ", i.id))),
                        attach: i.action == Action::UploadArtwork && art_jobs.len() == 1,
                    }
                })
                .collect();
            if !views.is_empty() {
                let terms = views
                    .iter()
                    .any(|v| v.approve_mailto.is_some())
                    .then_some(self.config.branding.approval_terms.as_str());
                groups.push(GroupView { code: cat.code(), heading: cat.heading(), items: views, terms });
            }
        }
        (groups, new_count)
    }

    fn render(&self, kind: &str, ctx: &Ctx) -> Result<(String, String), SendError> {
        let render = |name: String| {
            self.env
                .get_template(&name)
                .and_then(|t| t.render(ctx))
                .map_err(|e| SendError::Permanent(format!("template {name}: {e:#}")))
        };
        Ok((render(format!("email/{kind}.txt.j2"))?, render(format!("email/{kind}.html.j2"))?))
    }

    fn compose(
        &self,
        kind: Kind,
        to: &Recipient,
        subject: String,
        items: &[ActionItem],
        banners: &[BannerRow],
        previous: Option<&HashSet<String>>,
    ) -> Result<EmailPayload, SendError> {
        let Recipient { contact, token, now } = *to;
        let reply = self.reply_address(token);
        let (groups, new_count) = self.groups(contact, items, previous, &reply, &subject, now);
        let ctx = Ctx {
            subject: &subject,
            reminder: kind == Kind::Reminder,
            brand: Brand::of(&self.config.branding),
            contact: ContactView { name: &contact.name, email: &contact.email, client_name: &contact.client_name },
            banners: banners
                .iter()
                .map(|b| BannerView { title: &b.title, body: &b.body, severity: b.severity.as_str() })
                .collect(),
            groups,
            total: items.len(),
            new_count,
            portal_link: self.link(&contact.id, "/", now),
            preferences_link: self.link(&contact.id, "/preferences", now),
            asks: asks_for(contact.role),
        };
        let (text, html) = self.render(kind.templates(), &ctx)?;
        Ok(EmailPayload {
            to_name: contact.name.clone(),
            to: contact.email.clone(),
            subject,
            text,
            html,
            message_id: new_message_id(self.config),
            in_reply_to: None,
            references: None,
            item_keys: items.iter().map(ActionItem::key).collect(),
        })
    }

    /// The digest: banners, then items grouped by category, new ones marked.
    pub fn compose_digest(
        &self,
        to: &Recipient,
        items: &[ActionItem],
        banners: &[BannerRow],
        previous: Option<&HashSet<String>>,
    ) -> Result<EmailPayload, SendError> {
        let new = previous.map_or(0, |p| items.iter().filter(|i| !p.contains(&i.key())).count());
        let brand = &self.config.branding.name;
        let subject = match (items.len(), new) {
            (1, _) | (_, 0) => format!("{brand}: {}", need_you(items.len())),
            (n, k) => format!("{brand}: {} ({k} new)", need_you(n)),
        };
        self.compose(Kind::Digest, to, subject, items, banners, previous)
    }

    /// An instant alert about one or more new items.
    /// An alert: items new to the contact, or, with `reminder`, items staff chose to remind
    /// them of (said as such, not as something new).
    pub fn compose_alert(
        &self,
        to: &Recipient,
        items: &[ActionItem],
        reminder: bool,
    ) -> Result<EmailPayload, SendError> {
        let first = items.first().map_or("", |i| i.title.as_str());
        let subject = alert_subject(&self.config.branding.name, items.len(), first, reminder);
        self.compose(if reminder { Kind::Reminder } else { Kind::Alert }, to, subject, items, &[], None)
    }

    /// A stop-press banner pushed at once (urgent banners).
    pub fn compose_banner(&self, to: &Recipient, banner: &BannerRow) -> Result<EmailPayload, SendError> {
        let subject =
            format!("{} {}: {}", self.config.branding.name, banner.severity.as_str().to_uppercase(), banner.title);
        self.compose(Kind::Banner, to, subject, &[], std::slice::from_ref(banner), None)
    }
}
