//! What a request is refused for before, or as, a handler reads it: text that cannot be
//! read, a repeated query key, a coded body, a body over its limit, a method a path does not
//! take, and axum's own refusals, each answered in cport's error shape naming what is wrong.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ConsoleRoute, ErrorPage, HttpError, for_programs, in_shape_for, render_page};

/// For every route (`axum::middleware::map_response`, inside [`render_page`]): a request
/// axum's extractors refused (a `?limit=abc`, a repeated query key, `/banners/x` for a
/// number, a form of the wrong type, a body over its limit) answers in cport's error shape (JSON,
/// or the portal's page) instead of axum's plain text, with axum's words, which name the field.
pub async fn rejections_as_errors(resp: Response) -> Response {
    let status = resp.status();
    // axum answers a method a path does not take with an empty 405: the same error shape,
    // keeping the `Allow` header that says which methods it does take.
    if status == StatusCode::METHOD_NOT_ALLOWED && resp.extensions().get::<ErrorPage>().is_none() {
        let message = "method: this path does not take it (see the Allow header)".to_string();
        let mut answer = HttpError::Rejected { status, message }.into_response();
        if let Some(allow) = resp.headers().get(header::ALLOW) {
            answer.headers_mut().insert(header::ALLOW, allow.clone());
        }
        return answer;
    }
    let plain = axum_plain_text(&resp);
    let refused = [
        StatusCode::BAD_REQUEST,
        StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        StatusCode::UNPROCESSABLE_ENTITY,
    ];
    if !plain || !refused.contains(&status) || resp.extensions().get::<ErrorPage>().is_some() {
        return resp;
    }
    let body = axum::body::to_bytes(resp.into_body(), 16 * 1024).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&body).trim().to_string();
    // A path part of the wrong type (`/jobs/J-1/artwork/x` for a file number) names a thing
    // that is not there.
    if message.starts_with("Invalid URL: Cannot parse") {
        return HttpError::NotFound.into_response();
    }
    // axum's Multipart refusing a body that is not one.
    if message.starts_with("Invalid `boundary` for `multipart/form-data` request") {
        let message = "body: not a multipart/form-data upload (send the files with the page's form)".to_string();
        return HttpError::Rejected { status, message }.into_response();
    }
    // A body that stopped coming (`serve`'s idle time between its pieces).
    if message.contains("data was not received within the designated timeout") {
        let message = "body: it stopped coming before its end (Content-Length); send it whole".to_string();
        return HttpError::Rejected { status: StatusCode::BAD_REQUEST, message }.into_response();
    }
    // Any other failure while the body came (a broken chunked encoding, a connection cut).
    if status == StatusCode::BAD_REQUEST && message.starts_with("Failed to buffer the request body") {
        let message = "body: it could not be read as sent (broken chunked encoding, or the connection failed); \
                       send it again whole"
            .to_string();
        return HttpError::Rejected { status: StatusCode::BAD_REQUEST, message }.into_response();
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let message = "body: larger than this address takes (the limit is max_body_bytes in cport's configuration)";
        return HttpError::Rejected { status, message: message.into() }.into_response();
    }
    HttpError::Rejected { status, message: in_words(&message) }.into_response()
}

/// What a request over a group of routes' body limit is told: the limit in words and, after
/// it, where it comes from (layered beside that group's `DefaultBodyLimit`; a request over the
/// limit for all the rest is told by [`rejections_as_errors`]).
pub fn too_large_says(bytes: usize, whence: String) -> impl Fn(Response) -> std::future::Ready<Response> + Clone {
    move |resp: Response| {
        let plain = axum_plain_text(&resp);
        std::future::ready(if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && plain {
            let size = crate::model::size_text(bytes as u64);
            let message = format!("body: larger than this address takes ({size} at most{whence})");
            HttpError::Rejected { status: StatusCode::PAYLOAD_TOO_LARGE, message }.into_response()
        } else {
            resp
        })
    }
}

/// axum's and serde's words for a query or form value of the wrong type, as a person reads
/// them: `page: not a whole number` for "Failed to deserialize query string: page: invalid
/// digit found in string". Words it does not know pass unchanged.
fn in_words(message: &str) -> String {
    let message = ["Failed to deserialize query string: ", "Failed to deserialize form body: "]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .unwrap_or(message);
    let Some((field, detail)) = message.split_once(": ") else {
        return message.to_string();
    };
    let detail = match detail {
        "cannot parse integer from empty string" => "give a whole number",
        "invalid digit found in string" => "not a whole number",
        "number too large to fit in target type" => "too large",
        "number too small to fit in target type" => "too small",
        "provided string was not `true` or `false`" => "give true or false",
        other => other,
    };
    format!("{field}: {detail}")
}

/// What is wrong with one `name=value` pair of a query string or posted form, as sent
/// (percent-encoded, `+` for a space), if anything: bytes that are not UTF-8 (which a lossy
/// decoding would store as U+FFFD in place of what was sent), or a NUL character (no stored
/// text holds one, and PostgreSQL refuses it even to compare with, which would otherwise
/// surface as an error that names no field).
pub fn unreadable_pair(pair: &[u8]) -> Option<(String, &'static str)> {
    let mut parts = pair.splitn(2, |b| *b == b'=');
    let (name, value) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let decoded = |raw: &[u8]| -> Vec<u8> {
        let raw: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
        percent_encoding::percent_decode(&raw).collect()
    };
    let (n, v) = (decoded(name), decoded(value));
    let wrong = if std::str::from_utf8(&n).is_err() || std::str::from_utf8(&v).is_err() {
        "not text in UTF-8"
    } else if n.contains(&0) || v.contains(&0) {
        "holds a NUL character (U+0000)"
    } else {
        return None;
    };
    // A name that is not text is said as it was sent (`title%FF`), not with a stand-in
    // character the sender never wrote.
    let said = match std::str::from_utf8(&n) {
        Ok(text) => crate::model::shown(text, 100),
        Err(_) => crate::model::shown(&String::from_utf8_lossy(name), 100),
    };
    Some((said, wrong))
}

/// For every route (`axum::middleware::from_fn`, outermost): a path or query string that
/// cannot be read as text (a NUL, bytes that are not UTF-8) is refused naming where it is,
/// and so is a query naming one parameter twice (which value would count?), before a handler
/// looks anything up with it. A body in a content coding cport does not undo (gzip) is
/// refused with 415 rather than read as if it were plain ([`plain_body`]).
pub async fn refuse_unreadable(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let uri = req.uri();
    // A program's route asks for its token first (a request without it is 401 whatever its
    // body): it refuses a coded body itself, once the caller is known (`sync::api`).
    if !for_programs(uri.path())
        && let Err(e) = plain_body(req.headers())
    {
        return in_shape_for(uri.path(), e).await;
    }
    let path: Vec<u8> = percent_encoding::percent_decode_str(uri.path()).collect();
    let refused = if std::str::from_utf8(&path).is_err() {
        Some("path: not text in UTF-8".to_string())
    } else if path.contains(&0) {
        Some("path: holds a NUL character (U+0000)".to_string())
    } else {
        uri.query().and_then(query_fault)
    };
    match refused {
        Some(message) => {
            in_shape_for(uri.path(), HttpError::Rejected { status: StatusCode::BAD_REQUEST, message }).await
        }
        None => next.run(req).await,
    }
}

/// A body whose declared length is more than any address takes is refused (413) before a
/// byte of it is read, rather than read until the address's own limit is met or the sender
/// gives up.
pub async fn refuse_declared_over(most: u64, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match declared {
        Some(n) if n > most => {
            let message = format!(
                "body: {n} bytes is more than cport takes at any address ({most}; max_body_bytes in its configuration)"
            );
            in_shape_for(req.uri().path(), HttpError::Rejected { status: StatusCode::PAYLOAD_TOO_LARGE, message }).await
        }
        _ => next.run(req).await,
    }
}

/// For every route (`axum::middleware::from_fn`, outside [`rejections_as_errors`]): a method
/// a page does not take is answered after the pages' own layers have run, so it is shown as
/// a page here (the console's under `/staff`); under `/api/` it stays JSON.
pub async fn method_pages(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path();
    let (programs, console) = (for_programs(path), path.starts_with("/staff"));
    let resp = next.run(req).await;
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED || programs {
        return resp;
    }
    // A person reads a page: not of headers, but of what to do instead.
    let message = "method: this address is not opened that way; use the page's links and buttons".to_string();
    let mut page = HttpError::Rejected { status: StatusCode::METHOD_NOT_ALLOWED, message }.into_response();
    if console {
        page.extensions_mut().insert(ConsoleRoute);
    }
    render_page(page).await
}

/// A body in a content coding cport does not undo (gzip) is refused with 415, rather than
/// read as if it were plain.
pub fn plain_body(headers: &axum::http::HeaderMap) -> Result<(), HttpError> {
    let coded = headers
        .get_all(axum::http::header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(str::trim)
        .find(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
        .map(crate::model::quoted);
    match coded {
        Some(coding) => Err(HttpError::Rejected {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!("Content-Encoding: {coding} is not accepted; send the body as it is"),
        }),
        None => Ok(()),
    }
}

/// What is wrong with a query string, naming the parameter: see [`refuse_unreadable`].
fn query_fault(query: &str) -> Option<String> {
    let pairs = query.as_bytes().split(|b| *b == b'&').filter(|p| !p.is_empty());
    if let Some((field, wrong)) = pairs.into_iter().find_map(unreadable_pair) {
        return Some(format!("{field}: {wrong}"));
    }
    let names: Vec<String> = form_urlencoded::parse(query.as_bytes()).map(|(k, _)| k.into_owned()).collect();
    repeated_name(names.iter().map(String::as_str), &[])
}

/// "`name`: is given twice" for the first name of a query or form given more than once (which
/// value would count?), but those in `may_repeat`.
pub fn repeated_name<'a>(names: impl Iterator<Item = &'a str>, may_repeat: &[&str]) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .filter(|n| !may_repeat.contains(n))
        .find(|n| !seen.insert(*n))
        .map(|n| format!("{}: is given twice; give it once", crate::model::shown(n, 100)))
}

/// Whether a response is axum's own plain-text refusal (cport's errors are JSON or a page).
fn axum_plain_text(resp: &Response) -> bool {
    resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/plain"))
}
