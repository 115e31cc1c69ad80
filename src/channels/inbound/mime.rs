//! Reading a raw message: parsed once, with limits on what would hurt the process, and the
//! checks on its parts that mail-parser leaves to its caller.

use mail_parser::{Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType};

use super::text::{html_to_text, unflow};

/// Messages nested deeper than this (a message attached inside a message inside …) are
/// refused. mail-parser builds them as a tree that is walked and dropped by recursion: a
/// reply of 1.5 MB nesting 50,000 of them overflowed a worker's stack and aborted the whole
/// server. Real mail nests a forward or two.
pub const MAX_NESTED_MESSAGES: usize = 16;

/// Messages with more places that could open a MIME part than this are refused before they
/// are parsed: mail-parser keeps every part it reads, and a message of millions of empty
/// parts, well within `inbound.max_bytes`, took some thirty times its size in memory (25 MB
/// became 735 MB; ten such at once from the MTA would take gigabytes). Real mail has tens of
/// parts, and a few hundred `--` in its text at most.
pub const MAX_PART_BREAKS: usize = 20_000;

/// The message, or why it cannot be read.
pub fn parse(raw: &[u8]) -> Result<Message<'_>, String> {
    /// Said alike whether the parser found no header block at all or only headers of no mail.
    const NO_HEADERS: &str = "no mail headers (From, To, Subject, Date…) could be read";
    if too_many_part_breaks(raw) {
        return Err(format!(
            "it has more than {MAX_PART_BREAKS} places that could open a MIME part (`--` before a boundary)"
        ));
    }
    let msg = MessageParser::default().parse(raw).ok_or(NO_HEADERS)?;
    if nesting(&msg) > MAX_NESTED_MESSAGES {
        dismantle(msg);
        return Err(format!("it nests messages more than {MAX_NESTED_MESSAGES} deep"));
    }
    // Mail has a header of mail's own (From, To, Subject, Date, Message-ID…), if not every
    // one: such a message missing its sender is taken in and recorded as ignored, not bounced
    // to whoever sent it as unreadable. Text with none of them is no email.
    if !msg.headers().iter().any(|h| !matches!(h.name, mail_parser::HeaderName::Other(_))) {
        return Err(NO_HEADERS.into());
    }
    Ok(msg)
}

/// Whether `raw` holds more than [`MAX_PART_BREAKS`] runs of two or more dashes followed by
/// something else. Every part break is one (`--` and its boundary, which may itself begin
/// with dashes), wherever it stands, as the parser finds them, whatever boundaries are
/// declared and however they are written; counted in one pass over the bytes, before
/// anything is built. Hand-written because the parser offers no limit of its own.
fn too_many_part_breaks(raw: &[u8]) -> bool {
    let mut breaks = 0;
    let mut dashes = 0;
    for &b in raw {
        if b == b'-' {
            dashes += 1;
            continue;
        }
        if dashes >= 2 {
            breaks += 1;
            if breaks > MAX_PART_BREAKS {
                return true;
            }
        }
        dashes = 0;
    }
    false
}

/// How deep messages nest in `msg`, counted without recursion and no further than one past
/// the limit.
fn nesting(msg: &Message<'_>) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(msg, 0)];
    while let Some((m, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        if depth > MAX_NESTED_MESSAGES {
            break;
        }
        for p in &m.parts {
            if let PartType::Message(inner) = &p.body {
                pending.push((inner, depth + 1));
            }
        }
    }
    deepest
}

/// Drops a deeply nested message one level at a time: its own drop would recurse once per
/// level.
fn dismantle(msg: Message<'_>) {
    let mut pending = vec![msg];
    while let Some(mut m) = pending.pop() {
        for p in m.parts.iter_mut() {
            if let PartType::Message(inner) = &mut p.body {
                pending.push(std::mem::take(inner));
            }
        }
    }
}

/// What a reply says, and whether a text body of it arrived damaged (its encoding could not
/// be read), so that an answer can say so rather than "no command found".
pub struct Body {
    pub text: String,
    pub damaged: bool,
}

/// The reply's first plain-text body; or, when it has none or one that is blank or damaged,
/// its first HTML body turned to text by [`html_to_text`] (which drops quoted blocks).
pub fn body(msg: &Message<'_>) -> Body {
    let first = |ids: &[u32]| ids.first().and_then(|&i| msg.parts.get(i as usize));
    let plain = first(&msg.text_body).and_then(|p| match &p.body {
        PartType::Text(t) => Some((t, p.is_encoding_problem)),
        _ => None,
    });
    // `format=flowed` (and its `delsp`), when the text is the plain part's.
    let flowed = first(&msg.text_body).and_then(|p| p.content_type()).and_then(|ct| {
        let is = |name: &str, value: &str| ct.attribute(name).is_some_and(|v| v.trim().eq_ignore_ascii_case(value));
        is("format", "flowed").then(|| is("delsp", "yes"))
    });
    let html = first(&msg.html_body).and_then(|p| match &p.body {
        PartType::Html(h) => Some((h, p.is_encoding_problem)),
        _ => None,
    });
    let damaged = plain.is_some_and(|(_, d)| d) || html.is_some_and(|(_, d)| d);
    let (text, is_plain) = match (plain, html) {
        (Some((t, false)), _) if !t.trim().is_empty() => (t.to_string(), true),
        (_, Some((h, false))) => (html_to_text(h), false),
        (Some((t, _)), _) => (t.to_string(), true),
        (None, Some((h, true))) => (html_to_text(h), false),
        (None, None) => (String::new(), false),
    };
    // Line breaks as any mailer writes them: CRLF, LF, or a bare CR (old Mac mailers); a
    // byte-order mark some mailers put first is no part of the text.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text);
    let text = match flowed.filter(|_| is_plain) {
        Some(delsp) => unflow(&text, delsp),
        None => text,
    };
    Body { text, damaged }
}

/// Whether a part's content arrived damaged: mail-parser keeps what it could not decode as
/// text and says so, and it decodes base64 leniently (junk skipped, a cut-off end taken as
/// is), so base64 is decoded again here, strictly but for line breaks and padding.
pub fn damaged(msg: &Message<'_>, part: &MessagePart<'_>) -> bool {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    if part.is_encoding_problem {
        return true;
    }
    if part.encoding != Encoding::Base64 {
        return false;
    }
    let Some(raw) = msg.raw_message.get(part.offset_body as usize..part.offset_end as usize) else {
        return true;
    };
    let text: Vec<u8> = raw.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    let strict = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    strict.decode(&text).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of more parts than any mail has is refused before it is parsed, wherever its
    /// part breaks stand (the parser takes `--` and a boundary mid-line too); one just within
    /// the limit is read.
    #[test]
    fn a_message_of_too_many_parts_is_refused_unparsed() {
        for (declared, part) in
            [("boundary=zz", "--zz\r\n\r\n"), ("boundary=\"zz\"", "x--zz\n\n"), ("boundary = \"--zz\"", "----zz\n\n")]
        {
            let message = |parts: usize| {
                let mut m = format!(
                    "From: ann@alpha.example\nMessage-ID: <p@x>\nContent-Type: multipart/mixed; {declared}\n\n"
                );
                m.push_str(&part.repeat(parts));
                m
            };
            let many = message(MAX_PART_BREAKS + 1);
            let err = parse(many.as_bytes()).expect_err("refused");
            assert!(err.contains("more than 20000 places that could open a MIME part"), "{declared}: {err}");
            assert!(parse(message(MAX_PART_BREAKS - 1).as_bytes()).is_ok(), "{declared}");
        }
    }

    #[test]
    fn base64_that_does_not_decode_is_damaged() {
        let message = |body: &str| {
            format!(
                "From: ann@alpha.example\nMessage-ID: <b@x>\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\n\
                 Content-Type: text/plain\n\nART\n--zz\nContent-Type: application/pdf\n\
                 Content-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\n\n{body}\n--zz--\n"
            )
        };
        for (body, bad) in [
            ("JVBERi0xLjQK", false),
            ("JVBERi0x\nLjQK", false),
            ("JVBERi0xLjQ", false),
            ("!!!!####$$$$", true),
            ("JVBERi0xL", true),
            ("JVBE!!Ri0xLjQK", true),
        ] {
            let raw = message(body);
            let msg = parse(raw.as_bytes()).unwrap();
            let part = msg.attachments().next().expect("the attachment");
            assert_eq!(damaged(&msg, part), bad, "{body}");
        }
    }
}
