//! Domain types shared by every module: ids, money, roles, and the TOT records
//! that enter through the sync API and `cport import`.
//!
//! Over 500 lines: the text checks every field of every input passes through (characters,
//! lengths, ids, quantities, web addresses, pictures) are here together, one rule each, so
//! that the portal, chat, email and the API refuse alike.

pub mod dates;
pub mod filetype;
mod ids;
pub mod items;
mod money;
pub mod records;
pub mod schedule;
pub mod states;

use std::fmt;

use serde::Serialize;

pub use ids::{ID_MAX, check_id, looks_like_id, segment, typed_id};
pub use money::{Money, Total, line_total, lines_total, outstanding};
pub use states::*;

/// One problem with one field of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError { field: field.into(), reason: reason.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// A text cell of a CSV file as no spreadsheet takes for a formula: one that begins (after
/// any spaces, which some programs trim first) with `=`, `+`, `-`, `@`, their full-width
/// forms, a tab or a carriage return gets a leading `'`.
pub fn spreadsheet_text(s: &str) -> String {
    let first = s.trim_start_matches(|c: char| c.is_whitespace() && !matches!(c, '\t' | '\r')).chars().next();
    match first {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '＝' | '＋' | '－' | '＠') => format!("'{s}"),
        _ => s.to_string(),
    }
}

/// At most `max` characters of `s`, the last one an ellipsis when something was cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Whether a text field may span lines: tab, CR and LF are allowed there and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// Fields of TOT records that may span lines (by the last name of their path): free text a
/// person writes, and addresses. Every other text field is one line.
pub const MULTILINE_FIELDS: &[&str] = &["description", "body", "venue", "notes", "address"];

/// The first character `s` may not hold, if any. Refused everywhere: C0 and C1 control
/// characters (NUL, ESC, DEL, …), the bidirectional overrides and isolates that make text
/// read differently from what it holds, and Unicode's noncharacters (U+FFFE, U+FDD0, …: no
/// text is meant to hold them); single-line text also refuses tab, CR, LF and the Unicode
/// line and paragraph separators, which would break a mail header or a chat line.
pub fn forbidden_char(s: &str, lines: Lines) -> Option<char> {
    s.chars().find(|&c| match c {
        '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}' => lines == Lines::One,
        c => bidi_control(c) || noncharacter(c) || c.is_control(),
    })
}

fn bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn noncharacter(c: char) -> bool {
    matches!(c, '\u{FDD0}'..='\u{FDEF}') || (c as u32 & 0xFFFE) == 0xFFFE
}

/// `s` as one clean line: each character a one-line field may not hold becomes a space, and
/// runs of blanks one space. For text shown where a line break would do harm: a mail header
/// phrase (a line break there starts a header of its own), a file name in an answer.
pub fn one_line(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if forbidden_char(c.encode_utf8(&mut [0; 4]), Lines::One).is_some() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks `s` for characters its field may not hold; the error names the field and the
/// character by its code point (the character itself may not print).
pub fn check_chars(field: &str, s: &str, lines: Lines) -> Result<(), FieldError> {
    let Some(c) = forbidden_char(s, lines) else {
        return Ok(());
    };
    let code = c as u32;
    let why = match c {
        '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}' => {
            format!("holds the control character U+{code:04X}, a line break or tab; this field is one line")
        }
        c if bidi_control(c) => {
            format!(
                "holds the direction control character U+{code:04X}, which makes text read other than it is written"
            )
        }
        c if noncharacter(c) => format!("holds U+{code:04X}, which is not a character"),
        _ => format!("holds the control character U+{code:04X}"),
    };
    Err(FieldError::new(field, why))
}

/// The same action with the same content sent again within this many minutes (a second
/// click, the back button, a form sent twice at once, a retry) is the same action: it takes
/// effect once and the person is told when it did. A banner, a comment, delivery
/// instructions, an artwork file.
pub const SAME_AGAIN_MINUTES: i64 = 10;

/// The longest a record's text may be where its field sets no lower bound of its own: a
/// line (a name, a reference, a picture's address) or text that spans lines (a description,
/// an address). Every answer, digest and document repeats what is stored.
pub const MOST_LINE_CHARS: usize = 2_000;
pub const MOST_TEXT_CHARS: usize = 20_000;

/// Checks every string inside a record (found through its serde form, so a field added
/// later is covered without being listed) for control characters and for a length past
/// [`MOST_LINE_CHARS`] or [`MOST_TEXT_CHARS`]. Strings under a key in [`MULTILINE_FIELDS`]
/// may hold tabs and line breaks.
pub fn check_record_chars<T: Serialize>(record: &T, errs: &mut Vec<FieldError>) {
    fn walk(v: &serde_json::Value, path: &mut String, lines: Lines, errs: &mut Vec<FieldError>) {
        match v {
            serde_json::Value::String(s) => {
                let most = if lines == Lines::One { MOST_LINE_CHARS } else { MOST_TEXT_CHARS };
                if let Err(e) = check_chars(path, s, lines) {
                    errs.push(e);
                } else if s.chars().nth(most).is_some() && !errs.iter().any(|e| e.field == *path) {
                    errs.push(FieldError::new(path.as_str(), format!("longer than {most} characters")));
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path, lines, errs);
                    path.truncate(len);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    let lines = if MULTILINE_FIELDS.contains(&k.as_str()) { Lines::Many } else { Lines::One };
                    walk(item, path, lines, errs);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    if let Ok(v) = serde_json::to_value(record) {
        walk(&v, &mut String::new(), Lines::One, errs);
    }
}

/// The longest text searched for, in characters: a portal filter, a `STOCK` or `BLANKS`
/// command. One longer is refused by name, never cut short unsaid.
pub const SEARCH_MAX: usize = 200;

/// The most characters a free-text field of a form takes: the action's check refuses more,
/// and the form's `maxlength` (the templates' global `limits`) reads the same figure.
pub mod limits {
    /// A banner's headline.
    pub const BANNER_TITLE: usize = 200;
    /// A banner's message.
    pub const BANNER_BODY: usize = 4_000;
    /// A person's name, wherever one is typed or sent: a contact TOT sends, a third-party
    /// user, a delegate, a delivery's contact, an account request's name (and its company).
    pub const PERSON_NAME: usize = 200;
    /// A portal account request's note.
    pub const ACCESS_NOTE: usize = 2_000;
}

/// True when `s` shows nothing: empty, or only white space and characters that take no room
/// of their own (format characters such as zero-width spaces and joiners and the byte-order
/// mark, variation selectors, the Hangul fillers). A name or comment made of them would reach
/// its reader blank.
pub fn blank(s: &str) -> bool {
    use unicode_general_category::{GeneralCategory, get_general_category};
    s.chars().all(|c| {
        c.is_whitespace()
            || get_general_category(c) == GeneralCategory::Format
            || matches!(c, '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}')
            || matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
    })
}

/// Checks a free-text field is present and not absurdly long. Text that shows nothing but
/// holds a character no field may hold (a direction control alone) is left to the check of
/// characters every caller makes ([`check_chars`]; a record's every text): said empty too,
/// the message would blame what the sender did not do.
pub fn check_text(field: &str, s: &str, max: usize, errs: &mut Vec<FieldError>) {
    // Trimmed, as some callers check it: a form feed alone is blank, and said empty.
    if blank(s) && forbidden_char(s.trim(), Lines::Many).is_some() {
        return;
    }
    if blank(s) {
        errs.push(FieldError::new(field, "must not be empty"));
    } else if s.chars().count() > max {
        errs.push(FieldError::new(field, format!("longer than {max} characters")));
    }
}

/// The longest path of a picture, in bytes: pictures are found by their path, which the
/// store indexes, and PostgreSQL refuses an index entry past about 2,700 bytes (2,000
/// characters of a script written three bytes a character would be 6,000).
pub const MOST_PICTURE_BYTES: usize = 2_000;

/// Checks the path of a picture TOT's data names (a visual, a process step, a signature, a
/// stock item, a receipt's checking picture): present, and at most [`MOST_PICTURE_BYTES`].
pub fn check_picture(field: &str, s: &str, errs: &mut Vec<FieldError>) {
    if blank(s) {
        errs.push(FieldError::new(field, "must not be empty"));
    } else if s.len() > MOST_PICTURE_BYTES {
        errs.push(FieldError::new(field, format!("longer than {MOST_PICTURE_BYTES} bytes of UTF-8")));
    }
}

/// Checks a web address TOT's data offers as a link (a carrier's tracking page): `http://` or
/// `https://`, a host, and nothing a browser would not keep inside one address (spaces,
/// quotes, angle brackets), at most 2,000 characters.
pub fn check_web_address(field: &str, s: &str, errs: &mut Vec<FieldError>) {
    if s.chars().count() > 2000 {
        errs.push(FieldError::new(field, "longer than 2000 characters"));
    } else if !is_web_address(s) {
        errs.push(FieldError::new(field, format!("{} is not a web address (https://…)", quoted(s))));
    }
}

/// The shape [`check_web_address`] asks for, without its length limit.
pub fn is_web_address(s: &str) -> bool {
    // The scheme's case does not matter (RFC 3986 §3.1): `HTTPS://` is as good.
    let scheme = |p: &str| s.get(..p.len()).filter(|h| h.eq_ignore_ascii_case(p)).map(|_| &s[p.len()..]);
    let rest = scheme("https://").or_else(|| scheme("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    // And one a client can open: a port past 65535 or a host that is no host is not.
    host.is_some_and(|h| !h.is_empty()) && is_plain_link(s) && url::Url::parse(s).is_ok()
}

/// True when `s` holds no character that could end a link or an attribute early: white
/// space, control characters, quotes, angle brackets, backticks, backslashes.
pub fn is_plain_link(s: &str) -> bool {
    !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '`' | '\\'))
}

/// A Discord id (a "snowflake"): digits of a non-zero 64-bit number, as Discord gives them.
/// Zero is no id (serenity refuses it), so it is refused where an id is taken in.
pub fn discord_id(s: &str) -> Option<std::num::NonZeroU64> {
    // A leading zero would let one id be written two ways (and pass a check for the other).
    if s.is_empty() || s.len() > 20 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub fn check_qty(field: &str, q: i64, errs: &mut Vec<FieldError>) {
    if q < 0 {
        errs.push(FieldError::new(field, "must not be negative"));
    } else if q > 1_000_000_000 {
        errs.push(FieldError::new(field, "is larger than 1,000,000,000"));
    }
}

pub fn check_one_of(field: &str, v: &str, allowed: &[&str], errs: &mut Vec<FieldError>) {
    if !allowed.contains(&v) {
        errs.push(FieldError::new(field, format!("{} is not one of {}", quoted(v), allowed.join(", "))));
    }
}

/// One event of the change feed: what `GET /api/v1/changes` lists and the webhook posts.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Change {
    /// Its place in the feed; strictly increasing.
    pub seq: i64,
    /// What happened: `visual_approved`, `visual_rejected`, `visual_delegated`,
    /// `visual_commented`, `delivery_instructions_given`, `no_delivery_acknowledged`,
    /// `artwork_uploaded`, `reseller_order_placed`, `third_party_user_created`,
    /// `third_party_user_revoked`, `sku_allocated`, `sku_unallocated`, `email_unsubscribed`,
    /// `access_requested` (`ChangeKind`). Text, not an enum: later versions add kinds, and a
    /// reader ignores those it does not know.
    pub kind: String,
    /// The client it concerns (empty for an access request).
    pub client_id: String,
    /// The contact who did it, when a contact did.
    pub contact_id: Option<String>,
    /// The record it is about (a visual, a job, an order…).
    pub subject_id: String,
    /// When it happened.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The details, by kind (see the change-feed reference).
    pub data: serde_json::Value,
}

/// A refused value as an error message repeats it: in backquotes, on one line, at most 40
/// characters. What was refused may be megabytes long or hold control characters, and the
/// message goes to logs, terminals and pages: a character that may not stand on a line is
/// written as its code point (`UTC<U+0001>`), as is one that prints as nothing (a zero-width
/// space), so the message shows what made the value wrong.
pub fn quoted(s: &str) -> String {
    format!("`{}`", visible(s, 40))
}

/// `s` with every character that would not print, or would print as nothing, written as its
/// code point (`<U+0000>`), cut to `max` characters: a refused value or id as it was sent.
pub fn visible(s: &str, max: usize) -> String {
    use unicode_general_category::{GeneralCategory, get_general_category};
    let visible: String = s
        .chars()
        .map(|c| {
            // What would not print, or would print as nothing (a zero-width space in an id),
            // is named by its code point.
            let unseen = forbidden_char(c.encode_utf8(&mut [0; 4]), Lines::One).is_some()
                || (c.is_whitespace() && c != ' ')
                || get_general_category(c) == GeneralCategory::Format;
            match unseen {
                true => format!("<U+{:04X}>", c as u32),
                false => c.to_string(),
            }
        })
        .collect();
    shortened(&visible, max).into_owned()
}

/// A file's path as a message or a log line shows it: each character that would not print
/// written as its code point, as [`visible`] does (`<U+001B>`), and each byte that is not
/// UTF-8 as its value (`<0xE9>`). A path comes from the command line or a folder's listing,
/// and a hostile file name could otherwise move the terminal's cursor, forge log lines, or
/// hide which file is meant.
pub fn path_shown(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        out.push_str(&visible(chunk.valid(), usize::MAX));
        for b in chunk.invalid() {
            out.push_str(&format!("<0x{b:02X}>"));
        }
    }
    out
}

/// The text of `offered` that a form's choice `chosen` names. A browser sends a `<select>`'s
/// choice back altered: its line breaks made CRLF, or (an option with no value) its white
/// space folded to single spaces, so a many-line address offered would never match as sent.
/// The two are compared with white space folded; the offered text is what is given back.
pub fn offered_choice<'a>(offered: &'a [String], chosen: &str) -> Option<&'a String> {
    offered.iter().find(|o| o.split_whitespace().eq(chosen.split_whitespace()))
}

/// Text from outside (a field's name, a server's words) made fit to show: one clean line of
/// at most `max` characters.
pub fn shown(s: &str, max: usize) -> String {
    shortened(&one_line(s), max).into_owned()
}

/// `s` cut to at most `max` characters, with `…` in place of what was cut.
pub fn shortened(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if s.chars().count() > max => format!("{}…", &s[..cut]).into(),
        _ => s.into(),
    }
}

/// A file name made safe for a disk and a header: ASCII letters, digits and `.-_` kept,
/// anything else `_`.
pub fn safe_file_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

/// A folder's name for an id: the id itself where it holds only ASCII letters, digits, `-`
/// and `.` (not first), each other byte written `%XX`. Unlike [`safe_file_name`], no two ids
/// share a folder (`A/1` and `A_1` would both be `A_1`, one job's files then another's, and
/// gone with the other's client), and no id names `.` or `..`.
pub fn folder_name(id: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.');
    let name = percent_encoding::utf8_percent_encode(id, KEEP).to_string();
    match name.strip_prefix('.') {
        Some(rest) => format!("%2E{rest}"),
        None => name,
    }
}

/// A size as people read it: `20 MB`, `64 KB`, `512 bytes` (binary units, whole numbers).
pub fn size_text(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = 1024 * 1024;
    match bytes {
        b if b >= MB && b % MB == 0 => format!("{} MB", b / MB),
        b if b >= MB => format!("{:.1} MB", b as f64 / MB as f64),
        b if b >= KB => format!("{} KB", b / KB),
        b => format!("{b} bytes"),
    }
}

/// The file a `/media` path of TOT's names under `media_dir`; `None` for a path that would
/// leave that folder or holds anything but plain names (`..`, `.`, empty parts, backslashes).
pub fn media_file(media_dir: &std::path::Path, path: &str) -> Option<std::path::PathBuf> {
    use std::path::Component;
    let rest = path.strip_prefix("/media/")?;
    let mut out = media_dir.to_path_buf();
    for part in rest.split('/') {
        let mut c = std::path::Path::new(part).components();
        match (c.next(), c.next()) {
            (Some(Component::Normal(name)), None) if !part.contains('\\') => out.push(name),
            _ => return None,
        }
    }
    Some(out)
}

/// A file's media type as the sender declared it, kept only when it is one (`type/subtype`,
/// lower-cased, without parameters); anything else is `application/octet-stream`.
pub fn media_type(declared: &str) -> String {
    let t = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    if t.split_once('/').is_some_and(|(a, b)| token(a) && token(b)) { t } else { "application/octet-stream".into() }
}

#[cfg(test)]
mod tests {
    /// Every id has a folder of its own, inside the one it is joined to.
    #[test]
    fn ids_never_share_a_folder() {
        let ids = ["A/1", "A_1", "A%2F1", "A%5F1", "J-1", ".", "..", "%2E", "é", "Ã©"];
        let names: std::collections::HashSet<String> = ids.iter().map(|id| super::folder_name(id)).collect();
        assert_eq!(names.len(), ids.len(), "{names:?}");
        assert_eq!(super::folder_name("J-3001.v2"), "J-3001.v2", "a plain id is its own name");
        for id in ids {
            let name = super::folder_name(id);
            assert!(!name.contains('/') && name != "." && name != "..", "{id:?} → {name:?}");
        }
    }

    use super::{
        VISUAL_STATUSES, VisualStatus, discord_id, is_web_address, media_file, media_type, quoted, shortened, size_text,
    };

    #[test]
    fn a_csv_cell_is_never_a_formula() {
        use super::spreadsheet_text;
        assert_eq!(spreadsheet_text("=1+1"), "'=1+1");
        // After spaces (some programs trim them first), and in full-width forms.
        assert_eq!(spreadsheet_text(" =1+1"), "' =1+1");
        assert_eq!(spreadsheet_text("\u{a0}@SUM(A1)"), "'\u{a0}@SUM(A1)");
        assert_eq!(spreadsheet_text("＝1+1"), "'＝1+1");
        assert_eq!(spreadsheet_text("A - B"), "A - B");
    }

    #[test]
    fn a_quoted_value_shows_what_cannot_stand_on_a_line() {
        assert_eq!(quoted("UTC\u{1}"), "`UTC<U+0001>`");
        assert_eq!(quoted("two\nlines"), "`two<U+000A>lines`");
        assert_eq!(quoted("V-10\u{200b}01\r"), "`V-10<U+200B>01<U+000D>`", "what prints as nothing is named");
        assert_eq!(quoted("a\u{a0}b é"), "`a<U+00A0>b é`");
        assert_eq!(quoted("plain"), "`plain`");
        assert_eq!(quoted(&"x".repeat(100)).chars().count(), 42, "cut to 40 and its quotes");
    }

    #[test]
    fn shortened_text_keeps_whole_characters() {
        assert_eq!(shortened("abc", 3), "abc");
        assert_eq!(shortened("abcd", 3), "ab…");
        assert_eq!(shortened("ééééé", 4), "ééé…");
        assert_eq!(shortened("", 3), "");
    }

    #[test]
    fn web_addresses_are_links_and_nothing_else() {
        for ok in [
            "https://track.dpd.example/?n=1&c=2",
            "http://t.example",
            "https://t.example/a#b",
            "HTTPS://T.example/upper",
            "Http://t.example",
        ] {
            assert!(is_web_address(ok), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "https://",
            "https:///path",
            "https://t.example/x\"><script>",
            "https://t.example/a b",
            "https://t.example/\u{7}",
            "ftp://t.example",
            "HTTPS:/t.example",
            "ht",
            // Shaped like an address, but none a client could open.
            "http://127.0.0.1:99999/x",
            "https://exa mple.com",
            "https://[::1/x",
        ] {
            assert!(!is_web_address(bad), "{bad}");
        }
    }

    #[test]
    fn a_declared_media_type_is_kept_only_when_it_is_one() {
        assert_eq!(media_type("application/PDF; name=\"a.pdf\""), "application/pdf");
        assert_eq!(media_type("image/svg+xml"), "image/svg+xml");
        for bad in ["", "pdf", "text/", "/plain", "text/plain\r\nX: y", "a/b/c", &format!("a/{}", "b".repeat(100))] {
            assert_eq!(media_type(bad), "application/octet-stream", "{bad:?}");
        }
    }

    #[test]
    fn a_discord_id_is_a_non_zero_snowflake() {
        assert_eq!(discord_id("80351110224678912").map(|n| n.get()), Some(80351110224678912));
        for bad in ["0", "00", "", "-1", "+5", "12a", "99999999999999999999", "1 2"] {
            assert_eq!(discord_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn visual_statuses_are_the_records_names() {
        let names: Vec<&str> = VisualStatus::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(names, VISUAL_STATUSES);
        assert_eq!(VisualStatus::parse("approved"), Some(VisualStatus::Approved));
        assert_eq!(VisualStatus::parse("Approved"), None);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(20 * 1024 * 1024), "20 MB");
        assert_eq!(size_text(1536 * 1024), "1.5 MB");
        assert_eq!(size_text(64 * 1024), "64 KB");
        assert_eq!(size_text(100), "100 bytes");
    }

    #[test]
    fn only_plain_names_under_the_media_folder_are_files() {
        let dir = std::path::Path::new("/data/media");
        assert_eq!(media_file(dir, "/media/visuals/V-1.svg"), Some("/data/media/visuals/V-1.svg".into()));
        for bad in [
            "/media/../cport.db",
            "/media/visuals/../../x",
            "/media//etc/passwd",
            "/media/a/./b",
            "/media/",
            "/media/a\\..\\b",
            "/other/x",
        ] {
            assert_eq!(media_file(dir, bad), None, "{bad}");
        }
    }
}
