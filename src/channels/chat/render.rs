//! Chat renderings: an answer split into pages, a digest, an alert batch, each as a
//! channel-neutral [`ChatMessage`] with buttons.

use chrono::{DateTime, Utc};

use super::{Button, ChatMessage, PAGE_LINES};
use crate::actions::enquiry::Answer;
use crate::actions::items::{ActionItem, Category};
use crate::services::Services;
use crate::store::StoreError;
use crate::store::banners::BannerRow;
use crate::store::contacts::ContactRow;

/// The lines of an answer as chat shows them: headings, text, and one line per table row.
fn answer_lines(a: &Answer) -> Vec<String> {
    let mut out = vec![];
    for s in &a.sections {
        if let Some(h) = &s.heading {
            out.push(format!("— {h} —"));
        }
        out.extend(s.lines.iter().cloned());
        // A column without a name (ITEMS' category code) reads as a table without names.
        let named = !s.columns.is_empty() && s.columns.iter().all(|c| !c.is_empty());
        match (!named, s.rows.as_slice()) {
            // No column names: each row's cells, the empty ones left out.
            (true, rows) => {
                for r in rows {
                    let cells: Vec<&str> =
                        r.iter().map(String::as_str).filter(|c| !c.is_empty() && *c != "-").collect();
                    out.push(cells.join(" · "));
                }
            }
            // One row (a balance, one purchase order): each value beside its name.
            (false, [row]) => {
                for (name, cell) in s.columns.iter().zip(row) {
                    if !cell.is_empty() && cell != "-" {
                        out.push(format!("{name}: {cell}"));
                    }
                }
            }
            // A table: its names once, then each row with every cell in its place (an
            // empty one as "–"), so a column reads the same in every row.
            (false, rows) => {
                if !rows.is_empty() {
                    out.push(s.columns.join(" · "));
                }
                for r in rows {
                    let cells: Vec<&str> = r.iter().map(|c| if c.is_empty() || c == "-" { "–" } else { c }).collect();
                    out.push(cells.join(" · "));
                }
            }
        }
    }
    out
}

/// One page of an answer. A longer answer gets a "More" button that runs `command` again
/// from the next line (Telegram allows 64 bytes of button data, so long commands get none).
pub fn page(a: &Answer, command: &str, offset: usize) -> ChatMessage {
    let mut lines = answer_lines(a);
    if !a.ok && a.command != "HELP" {
        lines.push("Send /help for the list of commands.".into());
    }
    let end = offset.saturating_add(PAGE_LINES).min(lines.len());
    let start = offset.min(end);
    let mut m = ChatMessage::text(a.title.clone(), lines[start..end].to_vec());
    if offset > 0 {
        m.title = format!("{} (continued)", a.title);
    }
    let data = format!("mo:{end}:{command}");
    if end < lines.len() && !command.is_empty() && data.len() <= super::BUTTON_DATA_BYTES {
        m.buttons.push(vec![Button::action(&format!("More ({} left)", lines.len() - end), data)]);
    }
    m
}

/// The most characters of a banner's body a chat digest shows.
const BANNER_CHARS: usize = 300;

/// A digest for chat: banners first, then the items by category, and a portal button.
pub fn digest_message(
    state: &Services,
    contact: &ContactRow,
    items: &[ActionItem],
    banners: &[BannerRow],
    now: DateTime<Utc>,
) -> ChatMessage {
    let mut lines = vec![];
    // A banner's body is cut short here (the portal and the email digest show it whole): a
    // chat message holds 4,096 characters, and a long banner must not crowd the items out.
    for b in banners {
        let body = crate::model::shortened(&b.body, BANNER_CHARS);
        lines.push(format!("[{}] {}: {body}", b.severity.as_str().to_uppercase(), b.title));
    }
    for cat in Category::ALL {
        let of: Vec<&ActionItem> = items.iter().filter(|i| i.category == cat).collect();
        if of.is_empty() {
            continue;
        }
        lines.push(format!("— {} ({}) —", cat.heading(), of.len()));
        for i in of.iter().take(10) {
            lines.push(match &i.command {
                Some(command) => format!("{} · {command}", i.title),
                None => i.title.clone(),
            });
        }
        if of.len() > 10 {
            lines.push(format!("…and {} more", of.len() - 10));
        }
    }
    ChatMessage {
        title: format!(
            "{}, {}",
            crate::messages::compose::need_you(items.len()),
            contact.name.split_whitespace().next().unwrap_or(&contact.name)
        ),
        lines,
        buttons: vec![vec![
            Button::action("Items", "mo:0:ITEMS"),
            Button::link("Open the portal", state.portal_link(&contact.id, "/", now)),
        ]],
        ..Default::default()
    }
}

/// An alert for chat. One visual to approve comes with its picture and Approve / Reject /
/// Open buttons; anything else is a list with a portal button.
pub async fn alert_message(
    state: &Services,
    contact: &ContactRow,
    items: &[ActionItem],
    reminder: bool,
    now: DateTime<Utc>,
) -> Result<ChatMessage, StoreError> {
    let title = crate::messages::compose::alert_title_of(items, reminder);
    if let [one] = items
        && one.category == Category::VisualApproval
    {
        let v = match crate::store::visuals::get_visual(&state.db, &contact.client_id, &one.id).await {
            Ok(v) => v,
            // Gone since the alert was queued: the plain list below says what is left.
            Err(StoreError::NotFound) => return Ok(digest_message(state, contact, items, &[], now)),
            Err(e) => return Err(e),
        };
        let open = Button::link(
            "Open",
            state.portal_link(&contact.id, &format!("/visuals/{}", crate::model::segment(&v.id)), now),
        );
        let acts = contact.role.acts_on_orders();
        let mut row = vec![];
        if acts {
            row.push(Button::action("Approve", format!("ap:{}", v.id)));
            row.push(Button::action("Reject", format!("rj:{}", v.id)));
        }
        row.push(open);
        // Chat apps cannot show SVG pictures; they stay behind the Open button.
        let image = &v.main_image;
        let photo = (!image.to_ascii_lowercase().ends_with(".svg")
            && (image.starts_with("/media/") || image.starts_with("https://") || image.starts_with("http://")))
        .then(|| image.clone());
        return Ok(ChatMessage {
            title,
            lines: vec![one.detail.clone()],
            buttons: vec![row],
            photo,
            ..Default::default()
        });
    }
    let mut m = digest_message(state, contact, items, &[], now);
    m.title = title;
    Ok(m)
}
