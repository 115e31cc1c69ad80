//! Webhook out: change-feed events POSTed to TOT's system, HMAC-signed.

use hmac::{Hmac, Mac};

use super::SendError;
use crate::config::WebhookConfig;
use crate::store::outbox::OutboxRow;

/// Pushes a change-feed event to TOT's webhook, signed with HMAC-SHA256 over the body.
/// 2xx is delivered; 408, 429 and 5xx (and network trouble) are retried; other 4xx are dead.
pub async fn send(http: &reqwest::Client, hook: &WebhookConfig, row: &OutboxRow) -> Result<String, SendError> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(hook.secret.expose().as_bytes())
        .map_err(|e| SendError::Permanent(e.to_string()))?;
    mac.update(row.payload.as_bytes());
    let sig: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let resp = http
        .post(&row.recipient)
        .header("content-type", "application/json")
        .header("x-cport-signature", format!("sha256={sig}"))
        .header("x-cport-event", &row.subject)
        .header("x-cport-delivery", row.idem_key.as_str())
        .body(row.payload.clone())
        .send()
        .await
        .map_err(|e| SendError::Transient(format!("webhook: {e}")))?;
    let status = resp.status();
    if status.is_success() {
        Ok(format!("HTTP {}", status.as_u16()))
    } else if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Err(SendError::Transient(format!("webhook answered HTTP {}", status.as_u16())))
    } else {
        Err(SendError::Permanent(format!("webhook answered HTTP {}", status.as_u16())))
    }
}
