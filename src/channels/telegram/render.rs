//! A chat message in Telegram's HTML, cut to Telegram's limits, with its inline keyboard.

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use super::super::chat::{Button, ChatMessage};
use crate::channels::chat::BUTTON_DATA_BYTES as CALLBACK_BYTES;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Cuts HTML text at a line break below `max`, so no tag is split. Telegram's limits count
/// UTF-16 code units (an emoji outside the basic plane is two), so that is what is counted;
/// the tags are counted too, which only errs short.
pub(super) fn cut(html: &str, max: usize) -> String {
    let units = |s: &str| s.encode_utf16().count();
    if units(html) <= max {
        return html.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for line in html.lines() {
        // The line, its line break, and room for the closing ellipsis.
        if used + units(line) + 2 > max {
            // A line of text (no tag to leave open) is kept as far as it fits: a long
            // paragraph is shortened, not dropped whole (an urgent banner's one-paragraph
            // body would leave its title alone). Never inside an entity (`&amp;`).
            if !line.contains('<') {
                let room = max.saturating_sub(used + 1);
                let mut kept = 0;
                let mut taken = 0;
                for (at, ch) in line.char_indices() {
                    if taken + ch.len_utf16() > room {
                        break;
                    }
                    taken += ch.len_utf16();
                    kept = at + ch.len_utf8();
                }
                let mut part = &line[..kept];
                if let Some(amp) = part.rfind('&')
                    && !part[amp..].contains(';')
                {
                    part = &part[..amp];
                }
                out.push_str(part);
            }
            out.push('…');
            break;
        }
        out.push_str(line);
        out.push('\n');
        used += units(line) + 1;
    }
    out
}

/// Telegram refuses a whole message whose button opens an address that is not on the
/// internet (`BUTTON_URL_INVALID`): a loopback or private address, or a host name without a
/// dot (`http://cport:8080`). Such links go in the text instead.
fn button_url(url: &str) -> Option<reqwest::Url> {
    let u = reqwest::Url::parse(url).ok()?;
    let local = match u.host()? {
        url::Host::Domain(name) => !name.trim_end_matches('.').contains('.'),
        url::Host::Ipv4(ip) => ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified(),
        url::Host::Ipv6(ip) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    (!local).then_some(u)
}

/// `m` as it may go to a group (TOT's record may name one for a contact: a negative chat id):
/// without its buttons, since a link button signs in as the contact whoever in the group taps
/// it, and a pressed action button acts for no one in a group (see `answer::prepare`).
pub(super) fn for_group(m: &ChatMessage) -> ChatMessage {
    let mut lines = m.lines.clone();
    if m.buttons.iter().flatten().next().is_some() {
        lines.push(
            "Buttons and sign-in links go to a private chat only: act from your email or talk to me privately.".into(),
        );
    }
    ChatMessage { lines, buttons: vec![], ..m.clone() }
}

/// HTML text (title in bold) and the inline keyboard.
pub(super) fn render(m: &ChatMessage) -> (String, Option<InlineKeyboardMarkup>) {
    let mut html = String::new();
    if let Some(u) = &m.mention {
        html.push_str(&format!("<a href=\"tg://user?id={}\">@</a> ", escape(u)));
    }
    html.push_str(&format!("<b>{}</b>", escape(&m.title)));
    for l in &m.lines {
        html.push('\n');
        html.push_str(&escape(l));
    }
    let mut rows = vec![];
    for row in &m.buttons {
        let mut out = vec![];
        for b in row {
            match b {
                // Telegram refuses a whole message whose button carries more than 64 bytes
                // (`ap:` and a long id): such a button is left out, the text still says how.
                Button::Action { data, .. } if data.len() > CALLBACK_BYTES => {}
                Button::Action { label, data } => out.push(InlineKeyboardButton::callback(label.clone(), data.clone())),
                Button::Link { label, url } => match button_url(url) {
                    Some(u) => out.push(InlineKeyboardButton::url(label.clone(), u)),
                    None => html.push_str(&format!("\n{}: {}", escape(label), escape(url))),
                },
            }
        }
        if !out.is_empty() {
            rows.push(out);
        }
    }
    let keyboard = (!rows.is_empty()).then(|| InlineKeyboardMarkup::new(rows));
    (html, keyboard)
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn a_link_telegram_would_refuse_as_a_button_goes_in_the_text() {
        for url in [
            "http://localhost:8080/l/x",
            "http://cport:8080/l/x",
            "http://127.0.0.1/",
            "http://192.168.1.10/",
            "http://10.0.0.5/",
            "http://[::1]:8/",
            "http://[fd00::1]/",
        ] {
            assert!(super::button_url(url).is_none(), "{url}");
        }
        assert!(super::button_url("https://portal.tot.example/l/x").is_some());
        assert!(super::button_url("http://203.0.113.7/").is_some());
    }

    #[test]
    fn a_cut_counts_what_telegram_counts() {
        // 1,500 lines of two emoji: 3,000 characters but 6,000 UTF-16 units with the breaks
        // 7,500, past the 4,096 Telegram takes.
        let text = "\u{1f600}\u{1f600}\n".repeat(1_500);
        let out = cut(&text, 4096);
        assert!(out.encode_utf16().count() <= 4096, "{} units", out.encode_utf16().count());
        assert!(out.ends_with('…') && out.starts_with("\u{1f600}"));
        let short = "short\nenough";
        assert_eq!(cut(short, 4096), short);
        // One long paragraph under a title is shortened, never dropped, and never cut inside
        // an entity; the title's tags stay whole.
        let body = "Fish &amp; chips ".repeat(300);
        let html = format!("<b>URGENT: the yard is closed</b>\n{body}");
        let out = cut(&html, 4096);
        assert!(out.encode_utf16().count() <= 4096 && out.ends_with('…'), "{out}");
        assert!(out.starts_with("<b>URGENT: the yard is closed</b>\nFish &amp; chips"), "{out}");
        assert!(out.len() > 4000, "the paragraph is kept as far as it fits: {} bytes", out.len());
        let tail = out.trim_end_matches('…');
        assert!(tail.rfind('&').is_none_or(|at| tail[at..].contains(';')), "no entity cut: {tail}");
    }
}
