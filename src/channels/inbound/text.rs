//! The text a person wrote: quoted history and signatures cut away, HTML turned to text.

/// The new text of a reply: quoted text, reply headers of common clients, forwarded blocks
/// and signatures cut away.
pub fn fresh_text(body: &str) -> String {
    let mut out = Vec::new();
    let lines: Vec<&str> = body.lines().collect();
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim_end();
        let t = line.trim();
        let lower = t.to_lowercase();
        let next = lines.get(i + 1).map(|l| l.trim().to_lowercase()).unwrap_or_default();
        let header_start = (lower.starts_with("from:") && (next.starts_with("sent:") || next.starts_with("date:")))
            || (lower.starts_with("de :") || lower.starts_with("von:")) && next.contains(':');
        let ends_quote_intro = [
            "wrote:",
            "a écrit :",
            "a écrit:",
            "schrieb:",
            "escribió:",
            "ha scritto:",
            "schreef:",
            "skrev:",
            "napisał:",
            "escreveu:",
        ]
        .iter()
        .any(|w| lower.ends_with(w));
        let opens_intro =
            ["on ", "le ", "am ", "el ", "il ", "op ", "den ", "em ", "w dniu "].iter().any(|w| lower.starts_with(w));
        // "Am 25.11.2026 um 08:00 schrieb TOT <…>:" puts the sender after the verb.
        let verb_inside = opens_intro
            && lower.ends_with(':')
            && ["wrote", "écrit", "schrieb", "escribió", "scritto", "schreef", "skrev", "napisał", "escreveu"]
                .iter()
                .any(|v| lower.contains(v));
        let intro = verb_inside
            || (ends_quote_intro && (opens_intro || i > 0 && lines[i - 1].trim().to_lowercase().starts_with("on ")))
            || (opens_intro && next.ends_with("wrote:") && lower.contains('@'));
        // A reply written below the message it quotes (bottom-posting, as Thunderbird and
        // mutt offer): the quote at the top and its intro are passed over, and the fresh
        // text below them is read, up to the next quote or signature.
        if (t.starts_with('>') || intro) && out.iter().all(|l: &String| l.trim().is_empty()) {
            continue;
        }
        if t.starts_with('>')
            || line == "-- "
            || t == "--"
            || t == "__"
            || t.starts_with("-----Original Message-----")
            || t.starts_with("________________________________")
            || lower.starts_with("---------- forwarded message")
            || lower.starts_with("begin forwarded message")
            || lower.starts_with("sent from my ")
            || header_start
            || intro
        {
            // A quote intro wrapped over two lines: drop the first half already kept.
            if ends_quote_intro
                && !opens_intro
                && out.last().is_some_and(|l: &String| l.to_lowercase().starts_with("on "))
            {
                out.pop();
            }
            break;
        }
        out.push(line.to_string());
    }
    out.join("\n").trim().to_string()
}

/// Plain text sent `format=flowed` (RFC 3676; Thunderbird and Apple Mail send it by default)
/// with its soft breaks undone: a line ending in a space goes on with the next line of the
/// same quote depth, so a reason typed as one long line is read whole. `delsp`: the space
/// before a soft break was added by the mailer and is taken out. The signature line `-- `
/// never flows; a space added before a line (space-stuffing) is taken out. LF line ends.
pub fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    // The paragraph being joined: its quote depth and its text so far.
    let mut open: Option<(usize, String)> = None;
    for line in text.split('\n') {
        let depth = line.chars().take_while(|c| *c == '>').count();
        let content = &line[depth..];
        let content = content.strip_prefix(' ').unwrap_or(content);
        let soft = content.ends_with(' ') && content != "-- ";
        let content = if soft && delsp { &content[..content.len() - 1] } else { content };
        let (para_depth, mut para) = match open.take() {
            Some((d, p)) if d == depth => (d, p),
            Some((d, p)) => {
                // A soft break before a line of another depth ends its paragraph there.
                push_line(&mut out, d, &p);
                (depth, String::new())
            }
            None => (depth, String::new()),
        };
        para.push_str(content);
        if soft {
            open = Some((para_depth, para));
        } else {
            push_line(&mut out, para_depth, &para);
        }
    }
    if let Some((d, p)) = open {
        push_line(&mut out, d, &p);
    }
    out.pop();
    out
}

/// One line of unflowed text, its quote marks put back.
fn push_line(out: &mut String, depth: usize, text: &str) {
    if depth > 0 {
        out.push_str(&">".repeat(depth));
        out.push(' ');
    }
    out.push_str(text);
    out.push('\n');
}

/// Where the next `tag` (`<head`) opens in `lower` from `from`: the whole name only, so that
/// `<header>` is not taken for `<head>`.
fn opening(lower: &str, from: usize, tag: &str) -> Option<usize> {
    let mut at = from;
    while let Some(found) = lower[at..].find(tag) {
        let start = at + found;
        let after = lower.as_bytes().get(start + tag.len());
        if after.is_none_or(|b| *b == b'>' || *b == b'/' || b.is_ascii_whitespace()) {
            return Some(start);
        }
        at = start + tag.len();
    }
    None
}

/// HTML to plain text for reading commands: quoted blocks (`<blockquote>`, Gmail's and
/// Outlook's quote containers) are cut off, white space is folded as a browser shows it (a
/// line break in the source is a space), block elements become line breaks, tags go, the
/// common entities are decoded. Hand-written because only this narrow job is needed
/// and mail-parser's own conversion keeps quoted text inline.
pub fn html_to_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let marked = ["<blockquote", "class=\"gmail_quote", "id=\"divrplyfwdmsg", "id=\"appendonsend", "<hr"]
        .iter()
        .filter_map(|m| lower.find(m).map(|at| (at, m.starts_with('<'))))
        .min();
    // A tag is cut where it opens; an attribute, where the tag holding it opens.
    let cut = match marked {
        Some((at, true)) => at,
        Some((at, false)) => lower[..at].rfind('<').unwrap_or(at),
        None => html.len(),
    };
    let html = &html[..cut];
    let lower = &lower[..cut];
    // Drop what is never shown: the head, styles and scripts. Each kind's next opening is
    // looked for again only once it is passed, so a message of many hidden tags is read in
    // one pass, not once per tag (ASCII lowercasing keeps every byte offset).
    const HIDDEN: [&str; 4] = ["<head", "<style", "<script", "<title"];
    let mut shown = String::with_capacity(html.len());
    let mut next: [Option<usize>; 4] = HIDDEN.map(|t| opening(lower, 0, t));
    let mut pos = 0;
    loop {
        for (n, t) in next.iter_mut().zip(HIDDEN) {
            if n.is_some_and(|at| at < pos) {
                *n = opening(lower, pos, t);
            }
        }
        let hidden = next.iter().zip(HIDDEN).filter_map(|(n, t)| n.map(|at| (at, &t[1..]))).min_by_key(|(at, _)| *at);
        let Some((start, name)) = hidden else {
            shown.push_str(&html[pos..]);
            break;
        };
        shown.push_str(&html[pos..start]);
        let close = format!("</{name}>");
        pos = match lower[start..].find(&close) {
            Some(end) => start + end + close.len(),
            // Never closed (a `<head>` may end where `<body>` begins): only the tag itself is
            // hidden, never the rest of the message with the command in it.
            None => lower[start..].find('>').map_or(lower.len(), |end| start + end + 1),
        };
    }
    let html = shown.as_str();
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        push_folded(&mut out, &rest[..start]);
        let Some(end) = rest[start..].find('>') else { break };
        let tag = rest[start + 1..start + end].trim_start_matches('/').to_ascii_lowercase();
        let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if matches!(name.as_str(), "br" | "div" | "p" | "li" | "tr" | "h1" | "h2" | "h3" | "table") {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    push_folded(&mut out, rest);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    decode_entities(&lines.join("\n"))
}

/// Text between tags, its runs of white space (line breaks of the source among them) one
/// space each, as a browser shows them.
fn push_folded(out: &mut String, text: &str) {
    let mut space = out.ends_with([' ', '\n']);
    for c in text.chars() {
        if c.is_ascii_whitespace() {
            if !space {
                out.push(' ');
                space = true;
            }
        } else {
            out.push(c);
            space = false;
        }
    }
}

/// Character references decoded in one pass: numeric ones (`&#74;`, `&#x4A;`; one naming no
/// character becomes U+FFFD) and the named ones mail clients write. Others stay as written.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        // The longest reference read is `&#x10FFFF;` (10 bytes). The `;` is looked for by
        // byte, so a letter of several bytes just after the reference does not hide it.
        let decoded = rest.as_bytes()[1..rest.len().min(11)].iter().position(|&b| b == b';').and_then(|end| {
            // ASCII up to the `;` (any other byte is not part of a reference).
            let name = rest.get(1..1 + end).filter(|n| n.is_ascii())?;
            let c = match name.strip_prefix('#') {
                Some(n) => {
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => n.parse::<u32>().ok()?,
                    };
                    char::from_u32(code).filter(|&c| c != '\0').unwrap_or(char::REPLACEMENT_CHARACTER)
                }
                None => match name {
                    "nbsp" => ' ',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    "amp" => '&',
                    "ndash" => '–',
                    "mdash" => '—',
                    _ => return None,
                },
            };
            Some((c, end + 2))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {

    /// A reference just before a letter of several bytes is decoded like any other; an `&`
    /// that begins none, or one holding a letter that is not ASCII, stays as written.
    #[test]
    fn references_are_decoded_before_letters_of_several_bytes() {
        for (html, text) in [
            ("trop&nbsp;foncé", "trop foncé"),
            ("A&amp;é", "A&é"),
            ("it&#8217;s 🎉", "it\u{2019}s 🎉"),
            ("R&é;D & co&", "R&é;D & co&"),
            ("&#x10FFFF;é", "\u{10FFFF}é"),
        ] {
            assert_eq!(super::decode_entities(html), text, "{html}");
        }
    }

    #[test]
    fn flowed_text_is_joined_at_its_soft_breaks_and_nowhere_else() {
        let sent = "REJECT V-2003 The logo needs to be twice as large and the navy should \nmatch Pantone 533 C.\nJOBS\n\n-- \nTom";
        assert_eq!(
            unflow(sent, false),
            "REJECT V-2003 The logo needs to be twice as large and the navy should match Pantone 533 C.\nJOBS\n\n-- \nTom"
        );
        // delsp=yes: the space before the break was the mailer's.
        assert_eq!(unflow("APPROVE V-10\n01", false), "APPROVE V-10\n01");
        assert_eq!(unflow("too dar\nk", true), "too dar\nk");
        assert_eq!(unflow("too da \nrk", true), "too dark");
        // Quoted lines flow within their depth; space-stuffing is undone.
        assert_eq!(unflow("> On Mon \n> Ann wrote:\n  From here", false), "> On Mon Ann wrote:\n From here");
        assert_eq!(unflow("soft \n> quoted", false), "soft \n> quoted");
    }

    use super::*;

    #[test]
    fn quotes_and_signatures_of_common_clients_are_cut() {
        let cases = [
            ("APPROVE V-1\n\nOn Wed, 25 Nov 2026 at 08:00, TOT <n@tot.example> wrote:\n> old", "APPROVE V-1"),
            ("APPROVE V-1\nOn Wed, 25 Nov 2026 at 08:00, TOT <n@tot.example>\nwrote:\n> old", "APPROVE V-1"),
            ("ITEMS\n\nLe mer. 25 nov. 2026 à 08:00, TOT <n@tot.example> a écrit :\n> vieux", "ITEMS"),
            ("ITEMS\n\nAm Mi., 25. Nov. 2026 um 08:00 Uhr schrieb TOT <n@tot.example>:\n> alt", "ITEMS"),
            ("JOBS\n\nFrom: TOT <n@tot.example>\nSent: Wednesday\nTo: Ann\n\nAPPROVE V-1", "JOBS"),
            ("JOBS\n-----Original Message-----\nAPPROVE V-1", "JOBS"),
            ("TRACK D-1\n-- \nAnn, Alpha Ltd", "TRACK D-1"),
            ("TRACK D-1\n\nSent from my iPhone", "TRACK D-1"),
            // Written below the quote: the quote and its intro passed over, the reply read up
            // to the next quote.
            ("> quoted first\nAPPROVE V-1", "APPROVE V-1"),
            (
                "On Wed, 25 Nov 2026 at 08:00, TOT <n@tot.example> wrote:\n> APPROVE V-9\n>\n\nAPPROVE V-1\nITEMS",
                "APPROVE V-1\nITEMS",
            ),
            ("> old\n\nTRACK D-1\n> more old\nAPPROVE V-2", "TRACK D-1"),
            ("> old\n> older", ""),
        ];
        for (body, want) in cases {
            assert_eq!(fresh_text(body), want, "{body:?}");
        }
    }

    #[test]
    fn html_replies_lose_their_quoted_part() {
        let html = "<div>APPROVE V-1</div><div>ITEMS<br></div><div class=\"gmail_quote\">On … wrote:<blockquote>REJECT V-1 x</blockquote></div>";
        let text = html_to_text(html);
        assert!(text.contains("APPROVE V-1") && text.contains("ITEMS"));
        assert!(!text.contains("REJECT"), "{text}");
        for (html, text) in [
            ("<p>A &amp; B&nbsp;&lt;ok&gt;</p>", "A & B <ok>"),
            ("<p>&#74;OBS J&#45;1 &#x4A;&#X4a;</p>", "JOBS J-1 JJ"),
            ("&amp;lt; &#0; &#xD800; &#99999999; &bogus; & &#;", "&lt; \u{fffd} \u{fffd} \u{fffd} &bogus; & &#;"),
        ] {
            assert_eq!(html_to_text(html).trim(), text, "{html}");
        }
        let styled =
            "<html><head><title>x</title><style>p{margin:0}</style></head><body><div>APPROVE V-1</div></body></html>";
        assert_eq!(html_to_text(styled).trim(), "APPROVE V-1");
        // A `<header>` is shown (it is no `<head>`), and a `<head>` never closed (HTML5 lets
        // `<body>` end it) hides only itself: the command after either is read.
        for html in [
            "<header>Reply</header><div>APPROVE V-1</div>",
            "<html><head><meta charset=utf-8><body><div>APPROVE V-1</div>",
            "<title>Re: digest<div>APPROVE V-1</div>",
        ] {
            assert!(html_to_text(html).contains("APPROVE V-1"), "{html}: {}", html_to_text(html));
        }
    }

    #[test]
    fn html_source_line_breaks_are_spaces_and_a_quote_tag_cuts_where_it_opens() {
        let wrapped = "<p>REJECT V-1001 the navy is too light and the logo should be\r\n  twice as large</p><p>APPROVE\nV-1002</p>";
        assert_eq!(
            html_to_text(wrapped).trim(),
            "REJECT V-1001 the navy is too light and the logo should be twice as large\n\nAPPROVE V-1002"
        );
        for html in [
            "<body>APPROVE V-1001<blockquote type=\"cite\">REJECT V-1</blockquote>",
            "<body>APPROVE V-1001<hr>REJECT V-1",
        ] {
            assert_eq!(html_to_text(html).trim(), "APPROVE V-1001", "{html}");
        }
        // An attribute marker cuts at the tag that holds it.
        assert_eq!(html_to_text("<div>ITEMS</div><div class=\"gmail_quote\">On … wrote:</div>").trim(), "ITEMS");
    }
}
