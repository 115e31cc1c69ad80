//! Webhook out: change-feed events POSTed to TOT's system, HMAC-signed.

use hmac::{Hmac, Mac};

use super::SendError;
use crate::config::WebhookConfig;
use crate::store::outbox::OutboxRow;

/// Pushes a change-feed event to TOT's webhook as configured now (its address and secret
/// when it is sent, not when it was queued: a changed address gets the backlog), signed with
/// HMAC-SHA256 over the body. 2xx is delivered; 408, 429 and 5xx (and network trouble) are
/// retried, and so are 401, 403, 404 and 405 (cport refused, or no such address: the same for
/// every event); a redirect and other 4xx are dead. (With no webhook configured any more, the
/// outbox drops the event before it comes here.)
pub async fn send(http: &reqwest::Client, hook: &WebhookConfig, row: &OutboxRow) -> Result<String, SendError> {
    if hook.url.is_empty() {
        return Err(SendError::Permanent("webhook.url is not set".into()));
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(hook.secret.expose().as_bytes())
        .map_err(|e| SendError::Permanent(e.to_string()))?;
    mac.update(row.message.payload.as_bytes());
    let sig: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let resp = http
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("x-cport-signature", format!("sha256={sig}"))
        .header("x-cport-event", &row.message.subject)
        .header("x-cport-delivery", row.message.idem_key.as_str())
        .body(row.message.payload.clone())
        .send()
        .await
        .map_err(|e| SendError::Transient(format!("webhook: {}", why(&e))))?;
    let status = resp.status();
    if status.is_success() {
        Ok(format!("HTTP {}", status.as_u16()))
    } else if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Err(SendError::Transient(format!("webhook answered HTTP {}", status.as_u16())))
    } else if status.is_redirection() {
        let to = resp.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("nowhere");
        Err(SendError::Permanent(format!(
            "webhook answered HTTP {} to {}: redirects are not followed; set webhook.url to where it points",
            status.as_u16(),
            crate::model::shown(to, 200)
        )))
    } else if matches!(status.as_u16(), 401 | 403 | 404 | 405) {
        // The receiver refuses cport itself (its signature) or has no such address: every
        // event would meet the same, none is at fault. Retried as a receiver that is down
        // is, so the backlog goes once the address or the secret is put right.
        let check = if status.as_u16() >= 404 { "webhook.url" } else { "webhook.secret" };
        Err(SendError::Transient(format!(
            "webhook answered HTTP {}: check {check} with the receiver; the events wait meanwhile",
            status.as_u16()
        )))
    } else {
        Err(SendError::Permanent(format!(
            "webhook answered HTTP {}: the receiver refused this event; once it takes it, `cport outbox retry` it",
            status.as_u16()
        )))
    }
}

/// What went wrong with a request, in words that tell a timeout from a refused connection.
fn why(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut chain = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    format!("{kind}{chain}")
}
