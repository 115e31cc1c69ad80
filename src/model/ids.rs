//! TOT ids: what the sync API takes, what a command can name, and how one is written as a
//! step of a portal path.

use super::{FieldError, quoted};

/// The longest an id may be, in characters (ids are ASCII).
pub const ID_MAX: usize = 64;

/// Checks a TOT id: 1–64 characters of letters, digits, `-`, `_`, `.` or `/`.
pub fn check_id(field: &str, id: &str, errs: &mut Vec<FieldError>) {
    if id.is_empty() {
        errs.push(FieldError::new(field, "must not be empty"));
    } else if id.len() > ID_MAX {
        errs.push(FieldError::new(field, format!("longer than {ID_MAX} characters")));
    } else if !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')) {
        errs.push(FieldError::new(field, format!("{} may hold only letters, digits, '-', '_', '.', '/'", quoted(id))));
    } else if id.split('/').any(|part| matches!(part, "" | "." | "..")) {
        // An id names folders (a job's artwork): no empty, `.` or `..` part between slashes.
        errs.push(FieldError::new(field, format!("{} has an empty, `.` or `..` part between slashes", quoted(id))));
    }
}

/// True for a word shaped like a TOT id as commands read it: one to four letters, a dash,
/// then letters, digits and dashes with at least one digit, at most [`ID_MAX`] characters
/// (trailing `,.;:` aside, as a list in a sentence leaves them).
pub fn looks_like_id(word: &str) -> bool {
    let w = word.trim_end_matches([',', '.', ';', ':']);
    let Some((prefix, rest)) = w.split_once('-') else {
        return false;
    };
    w.len() <= ID_MAX
        && !prefix.is_empty()
        && prefix.len() <= 4
        && prefix.chars().all(|c| c.is_ascii_alphabetic())
        && !rest.is_empty()
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && rest.chars().any(|c| c.is_ascii_digit())
}

/// True for an id a reply or chat command names as it is written: shaped as
/// [`looks_like_id`] and in capitals (commands read ids in capitals). Items about other ids
/// (the sync API takes a wider set) offer their portal page and buttons, never a command
/// that would be refused.
pub fn typed_id(id: &str) -> bool {
    looks_like_id(id) && id == id.trim_end_matches([',', '.', ';', ':']) && !id.bytes().any(|b| b.is_ascii_lowercase())
}

/// An id as one step of a portal path: the `/` an id may hold is written `%2F`, so
/// `/invoices/INV%2F77.pdf` names invoice `INV/77` (the router reads it back as such). Any
/// other byte but RFC 3986's unreserved ones is written `%XX` too: an id read from a
/// request's path (one that names nothing) may hold anything, and the path made from it
/// goes back in a `Location` header, where a control character would not stand.
pub fn segment(id: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(id, KEEP).to_string()
}

#[cfg(test)]
mod tests {
    /// A path step made from any id is one step of a valid path: a request's id that names
    /// nothing (a control character, `?`, `#`, a space) goes back in a `Location` header
    /// whole, and a stored id keeps its look but for its `/`.
    #[test]
    fn any_id_makes_one_valid_path_step() {
        assert_eq!(super::segment("INV/77"), "INV%2F77");
        assert_eq!(super::segment("J-3001_a.b"), "J-3001_a.b");
        for id in ["J\u{1}x", "J?x=1", "J#x", "J x", "J%2Fx", "é\r\n"] {
            let step = super::segment(id);
            assert!(step.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)), "{id:?} → {step}");
            let back = percent_encoding::percent_decode_str(&step).decode_utf8().unwrap();
            assert_eq!(back, id, "read back as it was");
        }
    }
}
