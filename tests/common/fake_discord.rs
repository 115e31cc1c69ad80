//! A local stand-in for the Discord REST endpoints serenity calls (open a DM channel, post
//! a message, edit a deferred interaction answer, send a follow-up, register commands), on
//! loopback, recording each request; and a signer for interaction requests with a real
//! Ed25519 key.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, Uri};
use axum::routing::{patch, post, put};
use axum::{Json, Router};
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{Value, json};
use tokio::sync::Notify;

pub const APP_ID: &str = "1100000000000000001";

#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Value,
}

#[derive(Default)]
pub struct Inner {
    calls: Mutex<Vec<Call>>,
    new_call: Notify,
    /// The largest file a message may carry, as Discord limits uploads; none by default.
    upload_limit: Mutex<Option<usize>>,
    /// Interaction answers to refuse as unknown (404) before taking one, as Discord does when
    /// an edit comes before the deferral it edits.
    refuse_answers: Mutex<usize>,
    /// Channel messages to refuse before taking one: Discord's status and JSON error code.
    refuse_messages: Mutex<std::collections::VecDeque<(u16, u32, String)>>,
    /// Channel messages are taken and never answered (a Discord that stopped answering).
    hang_messages: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
pub struct FakeDiscord {
    pub url: String,
    pub inner: Arc<Inner>,
}

fn message(channel: &str, body: &Value) -> Value {
    json!({
        "id": "1300000000000000001",
        "channel_id": channel,
        "author": {"id": APP_ID, "username": "TOT", "discriminator": "0000", "avatar": null, "bot": true},
        "content": body.get("content").cloned().unwrap_or(json!("")),
        "timestamp": "2026-11-25T08:00:00.000000+00:00",
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": false,
        "type": 0
    })
}

fn record(inner: &Inner, method: Method, path: String, body: &Bytes) -> Value {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    inner.calls.lock().unwrap().push(Call { method, path, body: body.clone() });
    inner.new_call.notify_waiters();
    body
}

async fn dm_channel(State(inner): State<Arc<Inner>>, body: Bytes) -> Json<Value> {
    let b = record(&inner, Method::POST, "/users/@me/channels".into(), &body);
    let user = b["recipient_id"].as_str().map(str::to_string).unwrap_or_else(|| b["recipient_id"].to_string());
    Json(json!({
        "id": format!("9{}", &user[1..]),
        "type": 1,
        "last_message_id": null,
        "recipients": [{"id": user, "username": "client", "discriminator": "0000", "avatar": null}]
    }))
}

/// A message post: JSON, or multipart when it carries files (`payload_json` and one part
/// per file; the files are recorded under `"files"` by name and size).
async fn channel_message(
    State(inner): State<Arc<Inner>>,
    Path(channel): Path<String>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    let body = if multipart {
        let mut payload = json!({});
        let mut files = vec![];
        if let Ok(mut mp) = <axum::extract::Multipart as axum::extract::FromRequest<()>>::from_request(req, &()).await {
            while let Ok(Some(field)) = mp.next_field().await {
                match field.file_name().map(str::to_string) {
                    Some(name) => {
                        let bytes = field.bytes().await.unwrap_or_default();
                        files.push(json!({"file_name": name, "size": bytes.len()}));
                    }
                    None => {
                        payload = serde_json::from_str(&field.text().await.unwrap_or_default()).unwrap_or(json!({}))
                    }
                }
            }
        }
        payload["files"] = json!(files);
        Bytes::from(payload.to_string())
    } else {
        axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default()
    };
    let b = record(&inner, Method::POST, format!("/channels/{channel}/messages"), &body);
    if inner.hang_messages.load(std::sync::atomic::Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let limit = *inner.upload_limit.lock().unwrap();
    let too_large = b["files"].as_array().is_some_and(|files| {
        files.iter().any(|f| limit.is_some_and(|most| f["size"].as_u64().unwrap_or(0) as usize > most))
    });
    if too_large {
        let refusal = json!({"code": 40005, "message": "Request entity too large"});
        return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, Json(refusal)).into_response();
    }
    let refused = inner.refuse_messages.lock().unwrap().pop_front();
    if let Some((status, code, message)) = refused {
        let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
        return (status, Json(json!({"code": code, "message": message}))).into_response();
    }
    Json(message(&channel, &b)).into_response()
}

/// An interaction's answers (its original message edited, a follow-up), recorded as sent.
async fn interaction_answer(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let b = record(&inner, method, uri.path().trim_start_matches("/api/v10").to_string(), &body);
    let refuse = {
        let mut left = inner.refuse_answers.lock().unwrap();
        let refuse = *left > 0;
        *left = left.saturating_sub(1);
        refuse
    };
    if refuse {
        let unknown = json!({"code": 10015, "message": "Unknown Webhook"});
        return (axum::http::StatusCode::NOT_FOUND, Json(unknown)).into_response();
    }
    Json(message("1", &b)).into_response()
}

async fn commands(State(inner): State<Arc<Inner>>, Path(app): Path<String>, body: Bytes) -> Json<Value> {
    record(&inner, Method::PUT, format!("/applications/{app}/commands"), &body);
    Json(json!([]))
}

impl FakeDiscord {
    pub async fn start() -> FakeDiscord {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/api/v10/users/@me/channels", post(dm_channel))
            .route("/api/v10/channels/{channel}/messages", post(channel_message))
            .route("/api/v10/webhooks/{app}/{token}/messages/@original", patch(interaction_answer))
            .route("/api/v10/webhooks/{app}/{token}", post(interaction_answer))
            .route("/api/v10/applications/{app}/commands", put(commands))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake discord");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeDiscord { url, inner }
    }

    /// Refuses (413, as Discord does) a message carrying a file larger than `bytes`.
    pub fn limit_uploads(&self, bytes: usize) {
        *self.inner.upload_limit.lock().unwrap() = Some(bytes);
    }

    /// Refuses the next channel message with this status, JSON error code and message (403,
    /// 50007 "Cannot send messages to this user": a user whose direct messages are closed).
    pub fn refuse_message(&self, status: u16, code: u32, message: &str) {
        self.inner.refuse_messages.lock().unwrap().push_back((status, code, message.to_string()));
    }

    /// Refuses the next `n` interaction answers (edits, follow-ups) as unknown.
    /// Takes every channel message from now on and never answers it.
    pub fn hang_messages(&self) {
        self.inner.hang_messages.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn refuse_answers(&self, n: usize) {
        *self.inner.refuse_answers.lock().unwrap() = n;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// Waits (up to 20 s, then fails the test) for `n` calls whose path ends with `suffix`.
    pub async fn wait_for(&self, suffix: &str, n: usize) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.inner.new_call.notified();
            let got: Vec<Call> = self.calls().into_iter().filter(|c| c.path.ends_with(suffix)).collect();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("waited 20 s for {n} call(s) to …{suffix}; got {:#?}", self.calls());
            }
        }
    }
}

/// Signs interaction requests like Discord does.
pub struct InteractionSigner {
    key: SigningKey,
}

impl InteractionSigner {
    pub fn new(seed: u8) -> InteractionSigner {
        InteractionSigner { key: SigningKey::from_bytes(&[seed; 32]) }
    }

    /// The public key as 64 hex digits (what goes in `discord.public_key`).
    pub fn public_key_hex(&self) -> String {
        self.key.verifying_key().to_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// (signature hex, timestamp) for `body` signed at `timestamp`.
    pub fn sign(&self, timestamp: i64, body: &str) -> (String, String) {
        let ts = timestamp.to_string();
        (self.sign_raw(&ts, body), ts)
    }

    /// The signature hex of `body` with `timestamp` as the header holds it, whatever it is.
    pub fn sign_raw(&self, timestamp: &str, body: &str) -> String {
        let sig = self.key.sign(format!("{timestamp}{body}").as_bytes());
        sig.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_400_000_000_000_000_000);

/// A fresh interaction id (Discord never sends one twice).
fn next_id() -> String {
    NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::SeqCst).to_string()
}

/// A slash command interaction from a user in their DMs.
pub fn command(user: &str, name: &str, args: Option<&str>) -> Value {
    let mut data = json!({"id": "1200000000000000001", "name": name, "type": 1});
    if let Some(a) = args {
        let opt = if name == "link" { "code" } else { "args" };
        data["options"] = json!([{"name": opt, "type": 3, "value": a}]);
    }
    interaction(2, &format!("tok-{name}-{user}"), user, data)
}

/// An interaction of `kind` from `user` in their DMs, answered with `token`.
fn interaction(kind: u8, token: &str, user: &str, data: Value) -> Value {
    json!({
        "id": next_id(),
        "application_id": APP_ID,
        "type": kind,
        "token": token,
        "version": 1,
        "channel_id": "1500000000000000001",
        "user": {"id": user, "username": "client", "discriminator": "0", "avatar": null},
        "locale": "en-GB",
        "data": data
    })
}

/// A form (a modal) submitted with one field filled in.
pub fn form(user: &str, custom_id: &str, field: &str, value: &str) -> Value {
    let rows = json!([{"type": 1, "components": [{"type": 4, "custom_id": field, "value": value}]}]);
    interaction(5, &format!("tok-form-{user}"), user, json!({"custom_id": custom_id, "components": rows}))
}

/// A button press on a message the app sent.
pub fn button(user: &str, custom_id: &str) -> Value {
    let mut press =
        interaction(3, &format!("tok-button-{user}"), user, json!({"custom_id": custom_id, "component_type": 2}));
    press["message"] = json!({"id": "1300000000000000001", "channel_id": "1500000000000000001"});
    press
}
