//! Who a message is from and whether to act on it: the reply token it was sent to,
//! automatic replies and reports, and failed sender authentication.

use mail_parser::{Address, MimeHeaders};

pub(super) fn addresses(a: Option<&Address<'_>>) -> Vec<String> {
    a.map(|a| a.iter().filter_map(|x| x.address().map(|s| s.to_ascii_lowercase())).collect()).unwrap_or_default()
}

/// Finds `<prefix>+TOKEN@<reply domain>` among the addresses a message was sent to.
pub(super) fn token_for(msg: &mail_parser::Message<'_>, prefix: &str, domain: &str) -> Option<String> {
    let mut all = addresses(msg.to());
    all.extend(addresses(msg.cc()));
    for h in ["Delivered-To", "X-Original-To", "Envelope-To"] {
        if let Some(v) = msg.header_raw(h) {
            all.push(v.trim().trim_matches(['<', '>']).to_ascii_lowercase());
        }
    }
    let want = format!("@{}", domain.to_ascii_lowercase());
    all.iter().find_map(|a| {
        a.strip_suffix(&want).and_then(|local| local.strip_prefix(&format!("{prefix}+"))).map(str::to_string)
    })
}

/// Auto-replies, vacation messages and list mail: never acted on, never answered.
pub(super) fn automatic(msg: &mail_parser::Message<'_>) -> Option<String> {
    if let Some(v) = msg.header_raw("Auto-Submitted")
        && header_keyword(v) != "no"
    {
        return Some(format!("Auto-Submitted: {}", crate::model::shown(v.trim(), 60)));
    }
    for h in ["X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress-Reply"] {
        if msg.header_raw(h).is_some() {
            return Some(format!("{h} header"));
        }
    }
    if let Some(p) = msg.header_raw("Precedence") {
        let p = header_keyword(p);
        if matches!(p.as_str(), "bulk" | "junk" | "list" | "auto_reply") {
            return Some(format!("Precedence: {p}"));
        }
    }
    None
}

/// A delivery status notification (RFC 3464): `multipart/report`.
pub(super) fn is_report(msg: &mail_parser::Message<'_>) -> bool {
    msg.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart") && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
    })
}

/// DMARC or DKIM failure reported by a trusted receiving MTA, or a DMARC pass for another
/// domain than the sender's (`header.from`): a pass for the attacker's own domain says
/// nothing about the address cport acts for. Each header is read as RFC 8601 writes it (a
/// version after the authserv-id, spaces around `=`, comments anywhere).
pub(super) fn auth_failure(msg: &mail_parser::Message<'_>, from: &str, trusted: &[String]) -> Option<String> {
    if trusted.is_empty() {
        return None;
    }
    let sender_domain = from.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    for v in msg.header_values("Authentication-Results") {
        let text = match v {
            mail_parser::HeaderValue::Text(t) => t.to_string(),
            other => format!("{other:?}"),
        };
        let is_trusted = |id: &str| trusted.iter().any(|t| t.eq_ignore_ascii_case(id));
        let (authserv, verdicts) = match super::auth_results::parse(&text) {
            Ok(Some(r)) => (r.authserv, r.verdicts),
            Ok(None) => continue,
            // Read on, a stray `(` or `"` would hide what follows it: not acted on.
            Err(e) if is_trusted(&e.authserv) => {
                let id = e.authserv;
                return Some(format!("{id} wrote a result that cannot be read (a comment or quote left open)"));
            }
            Err(_) => continue,
        };
        if !is_trusted(&authserv) {
            continue;
        }
        // Whatever the parse made of it, a failure written anywhere in a trusted header holds
        // the message: holding wrongly costs staff a look, acting wrongly cannot be undone.
        let squeezed: String = text.to_ascii_lowercase().split_whitespace().collect();
        for check in ["dmarc", "dkim"] {
            for verdict in ["fail", "permerror"] {
                if squeezed.contains(&format!("{check}={verdict}")) {
                    return Some(format!("{check}={verdict} from {authserv}"));
                }
            }
        }
        let failed = |m: &super::auth_results::Verdict| {
            matches!(m.method.as_str(), "dmarc" | "dkim") && matches!(m.result.as_str(), "fail" | "permerror")
        };
        if let Some(m) = verdicts.iter().find(|m| failed(m)) {
            return Some(format!("{}={} from {authserv}", m.method, m.result));
        }
        let other_domain = verdicts
            .iter()
            .flat_map(|m| &m.properties)
            .find(|(k, d)| k == "header.from" && !d.is_empty() && !d.eq_ignore_ascii_case(&sender_domain));
        if let Some((_, domain)) = other_domain {
            let shown = crate::model::shown(domain, 100);
            return Some(format!("{authserv} checked {shown}, not the sender's domain"));
        }
    }
    None
}

/// The keyword of a header value such as `Auto-Submitted` (RFC 3834 section 5) or
/// `Precedence`, lower case: what is left with comments (in parentheses) taken out, before
/// any `;` parameters. `No (typed by me)` and `no; owner-email="x@y"` are a person's mail, as
/// plain `no` is; `junk (spam)` is junk.
fn header_keyword(v: &str) -> String {
    let mut out = String::new();
    let mut depth = 0u32;
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            // A quoted pair inside a comment (`\)`) is one character of it, not its end.
            '\\' if depth > 0 => {
                chars.next();
            }
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why a message with `header: value` is automatic, if it is.
    fn automatic_with(header: &str, value: &str) -> Option<String> {
        let raw = format!("From: a@b.example\r\n{header}: {value}\r\nSubject: x\r\n\r\nITEMS\r\n");
        let msg = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
        automatic(&msg)
    }

    #[test]
    fn auto_submitted_no_with_a_comment_or_parameter_is_a_persons_mail() {
        let with = |value: &str| automatic_with("Auto-Submitted", value);
        for person in [
            "no",
            "No",
            " no ",
            "No (manual)",
            "no; owner-email=\"tom@x.example\"",
            "(sent by hand) no",
            "no (a \\) b)",
        ] {
            assert_eq!(with(person), None, "{person:?}");
        }
        for machine in ["auto-replied", "auto-generated (vacation)", "auto-notified; owner-email=\"a@b\"", "nope"] {
            assert!(with(machine).is_some(), "{machine:?}");
        }
    }

    #[test]
    fn precedence_is_read_without_its_comments() {
        let with = |value: &str| automatic_with("Precedence", value);
        for machine in ["junk (spam)", "BULK", "(from a list) list", " auto_reply "] {
            assert!(with(machine).is_some(), "{machine:?}");
        }
        for person in ["first-class", "normal (by hand)"] {
            assert_eq!(with(person), None, "{person:?}");
        }
    }
}
