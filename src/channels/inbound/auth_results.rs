//! Reading an `Authentication-Results` header (RFC 8601): who checked the message, and each
//! method's result with its properties. Written here because the mail crates in use write
//! this header but do not read it, and cport needs only its small grammar:
//!
//! ```text
//! authserv-id [version] ; method[/version] = result [reason=…] [ptype.property = value …] ; …
//! ```
//!
//! with comments in parentheses and white space allowed around every `=` and `/`.

/// One method's verdict: `dkim=fail header.d=example.com` is method `dkim`, result `fail`,
/// and the property (`header.d`, `example.com`). All lower case but property values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub method: String,
    pub result: String,
    pub properties: Vec<(String, String)>,
}

/// What a header that cannot be read whole is: a comment or a quoted string left open. A
/// trusted server may copy a sender's words (an envelope address, a HELO name) into it
/// unescaped; read on, a stray `(` or `"` would hide the verdicts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The header's first word, lower case: the authserv-id as written.
    pub authserv: String,
}

/// Who checked the message (its authserv-id, lower case) and what each method found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Results {
    pub authserv: String,
    pub verdicts: Vec<Verdict>,
}

/// The header's results (`None` when it names no one), or [`Unreadable`] when a comment or
/// quoted string is left open.
pub fn parse(header: &str) -> Result<Option<Results>, Unreadable> {
    let Some(text) = without_comments(header) else {
        let id = header.split([';', ' ', '\t', '\r', '\n', '(']).find(|w| !w.is_empty()).unwrap_or("");
        return Err(Unreadable { authserv: id.to_ascii_lowercase() });
    };
    Ok(read(&text))
}

/// [`parse`] of a header without comments.
fn read(text: &str) -> Option<Results> {
    let mut parts = split_outside_quotes(text, ';').into_iter();
    // The authserv-id is the first word; a version number may follow it.
    let authserv = parts.next()?.split_whitespace().next()?.to_ascii_lowercase();
    let verdicts = parts.filter_map(|p| verdict(&p)).collect();
    Some(Results { authserv, verdicts })
}

/// `method[/version] = result props…`, spaces around `=` and `/` taken out first; `none` (no
/// method was run) and anything unreadable give nothing.
fn verdict(resinfo: &str) -> Option<Verdict> {
    let words = joined_words(resinfo);
    let mut words = words.into_iter();
    let (method, result) = words.next()?.split_once('=').map(|(m, r)| (m.to_string(), r.to_string()))?;
    let method = method.split('/').next().unwrap_or("").to_ascii_lowercase();
    if method.is_empty() || result.is_empty() {
        return None;
    }
    let properties = words
        .filter_map(|w| w.split_once('=').map(|(k, v)| (k.to_ascii_lowercase(), v.trim_matches('"').to_string())))
        .collect();
    Some(Verdict { method, result: result.to_ascii_lowercase(), properties })
}

/// The words of a result, each `name=value` whole whatever the spaces around `=` and `/`:
/// `dmarc = fail` and `dkim / 1=pass` read as `dmarc=fail` and `dkim/1=pass`.
fn joined_words(s: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut glue = false;
    for w in s.split_whitespace() {
        let starts_glued = w.starts_with(['=', '/']);
        match words.last_mut() {
            Some(last) if glue || starts_glued => last.push_str(w),
            _ => words.push(w.to_string()),
        }
        glue = w.ends_with(['=', '/']);
    }
    words
}

/// The text with its comments, `(…)` nested and outside quoted strings, made spaces; `None`
/// when a comment or a quoted string is still open at its end.
fn without_comments(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in s.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            // A quoted-pair is read only where RFC 5322 has one: in a quoted string or a
            // comment (as `split_outside_quotes` reads it).
            '\\' if quoted || depth > 0 => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    (depth == 0 && !quoted).then_some(out)
}

/// `s` split at each `sep` outside a quoted string.
fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let (mut quoted, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(h: &str) -> (String, Vec<(String, String)>) {
        let r = parse(h).unwrap().unwrap();
        (r.authserv, r.verdicts.into_iter().map(|v| (v.method, v.result)).collect())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn every_spelling_the_rfc_allows_reads_the_same() {
        let want = ("mx.tot.example".to_string(), pairs(&[("dkim", "fail"), ("dmarc", "fail")]));
        for h in [
            "mx.tot.example; dkim=fail header.d=a.example; dmarc=fail header.from=a.example",
            // A version after the authserv-id, and spaces around `=`.
            "MX.tot.example 1; dkim = fail header.d=a.example; dmarc =fail (p=reject) header.from = a.example",
            // Comments anywhere, holding `;` and `=`; a method version.
            "mx.tot.example (checked; twice=yes) 1 ; dkim/1=fail (bad sig; dmarc=pass) ; dmarc=\tfail",
            "mx.tot.example;\r\n dkim=fail\r\n reason=\"a; b\"; dmarc=fail",
        ] {
            assert_eq!(results(h), want, "{h}");
        }
    }

    #[test]
    fn properties_are_read_with_their_values() {
        let r = parse("mx.example; dmarc=pass (p=none) header.from = \"Alpha.Example\"").unwrap().unwrap();
        assert_eq!(r.verdicts[0].properties, pairs(&[("header.from", "Alpha.Example")]));
    }

    #[test]
    fn a_header_naming_nothing_gives_no_verdicts() {
        assert_eq!(parse("mx.example; none"), Ok(Some(Results { authserv: "mx.example".into(), verdicts: vec![] })));
        assert_eq!(parse("  "), Ok(None));
        assert_eq!(parse("(only a comment)"), Ok(None));
    }

    #[test]
    fn a_comment_or_quote_left_open_is_unreadable_never_read_on() {
        for h in [
            "MX.tot.example; spf=pass (domain of \"x(\"@evil.example designates) smtp.mailfrom=x; dmarc=fail",
            "mx.tot.example; spf=pass smtp.mailfrom=\"x@evil.example; dmarc=fail",
            "mx.tot.example; spf=pass smtp.helo=a\\\"b; dmarc=fail",
        ] {
            assert_eq!(parse(h), Err(Unreadable { authserv: "mx.tot.example".into() }), "{h}");
        }
    }
}
