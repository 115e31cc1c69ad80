//! A local stand-in for the Telegram Bot API on loopback: it records every call the real
//! teloxide client makes (`sendMessage`, `sendPhoto`, `answerCallbackQuery`,
//! `editMessageText`, …) and serves scripted updates to `getUpdates` long polls.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::post};
use serde_json::{Value, json};
use tokio::sync::Notify;

pub const BOT_ID: i64 = 7_000_000;

/// One recorded Bot API call.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub body: Value,
    /// When the fake received it.
    pub at: std::time::Instant,
}

impl Call {
    /// The message text (or photo caption).
    pub fn text(&self) -> String {
        self.body.get("text").or_else(|| self.body.get("caption")).and_then(Value::as_str).unwrap_or("").to_string()
    }
    pub fn chat(&self) -> i64 {
        match self.body.get("chat_id") {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => 0,
        }
    }
    /// Callback data of every inline button, row by row.
    pub fn buttons(&self) -> Vec<(String, String)> {
        let markup = match self.body.get("reply_markup") {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        markup["inline_keyboard"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row.as_array().cloned().unwrap_or_default())
            .map(|b| {
                let label = b["text"].as_str().unwrap_or("").to_string();
                let data = b["callback_data"].as_str().or(b["url"].as_str()).unwrap_or("").to_string();
                (label, data)
            })
            .collect()
    }
}

#[derive(Default)]
pub struct Inner {
    calls: Mutex<Vec<Call>>,
    updates: Mutex<VecDeque<Value>>,
    /// Method → queued `retry_after` seconds: the next calls of that method get a 429.
    throttle: Mutex<HashMap<String, VecDeque<u32>>>,
    /// Method → the answers its next calls are refused with: a status and Telegram's words.
    refused: Mutex<HashMap<String, VecDeque<(u16, String)>>>,
    new_update: Notify,
    new_call: Notify,
    /// Chat → a listener for messages to it (benchmarks).
    listeners: Mutex<HashMap<i64, tokio::sync::mpsc::UnboundedSender<Call>>>,
    next_update: AtomicI64,
    next_message: AtomicI64,
    /// When each getUpdates arrived, and when each was answered.
    polls_started: Mutex<Vec<std::time::Instant>>,
    polls_answered: Mutex<Vec<std::time::Instant>>,
}

/// The running fake. Its URL goes into `telegram.api_url`.
#[derive(Clone)]
pub struct FakeTelegram {
    pub url: String,
    pub inner: Arc<Inner>,
}

impl FakeTelegram {
    /// Binds a loopback port first, then serves on it.
    pub async fn start() -> FakeTelegram {
        let inner =
            Arc::new(Inner { next_update: AtomicI64::new(1), next_message: AtomicI64::new(100), ..Default::default() });
        let app = Router::new().route("/{bot}/{method}", post(api)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake telegram");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeTelegram { url, inner }
    }

    fn message(&self, user: i64, text: &str) -> Value {
        json!({
            "message_id": self.inner.next_message.fetch_add(1, Ordering::SeqCst),
            "date": chrono::Utc::now().timestamp(),
            "chat": {"id": user, "type": "private", "first_name": format!("User{user}")},
            "from": {"id": user, "is_bot": false, "first_name": format!("User{user}")},
            "text": text
        })
    }

    /// Queues an update under the next id. The id is taken while the queue is locked: taken
    /// before, two chats speaking at once could queue ids out of order, and a poll that saw
    /// only the later one would move its offset past the earlier one, which is then dropped
    /// (the bare bot of `benches/chat.rs` once waited 60 s for such an answer).
    fn push(&self, mut update: Value) -> i64 {
        let mut queue = self.inner.updates.lock().unwrap();
        let id = self.inner.next_update.fetch_add(1, Ordering::SeqCst);
        update["update_id"] = json!(id);
        queue.push_back(update);
        drop(queue);
        self.inner.new_update.notify_waiters();
        id
    }

    /// A user (in their private chat) sends text.
    pub fn say(&self, user: i64, text: &str) -> i64 {
        let m = self.message(user, text);
        self.push(json!({ "message": m }))
    }

    /// A user sends text in a group chat the bot is in.
    pub fn say_in_group(&self, group: i64, user: i64, text: &str) -> i64 {
        let mut m = self.message(user, text);
        m["chat"] = json!({"id": group, "type": "group", "title": "The team"});
        self.push(json!({ "message": m }))
    }

    /// A user edits a message they sent earlier to read `text`.
    pub fn edit(&self, user: i64, text: &str) -> i64 {
        let mut m = self.message(user, text);
        m["edit_date"] = json!(chrono::Utc::now().timestamp());
        self.push(json!({ "edited_message": m }))
    }

    /// A user presses an inline button with `data` under the bot's message `message_id`.
    pub fn press(&self, user: i64, message_id: i64, data: &str) -> i64 {
        self.press_in(
            json!({"id": user, "type": "private", "first_name": format!("User{user}")}),
            user,
            message_id,
            data,
        )
    }

    /// A user presses an inline button under the bot's message in a group.
    pub fn press_in_group(&self, group: i64, user: i64, message_id: i64, data: &str) -> i64 {
        self.press_in(json!({"id": group, "type": "group", "title": "The team"}), user, message_id, data)
    }

    fn press_in(&self, chat: Value, user: i64, message_id: i64, data: &str) -> i64 {
        let id = self.inner.next_update.load(Ordering::SeqCst);
        self.push(json!({
            "callback_query": {
                "id": format!("cq{id}"),
                "from": {"id": user, "is_bot": false, "first_name": format!("User{user}")},
                "message": {
                    "message_id": message_id,
                    "date": chrono::Utc::now().timestamp(),
                    "chat": chat,
                    "from": {"id": BOT_ID, "is_bot": true, "first_name": "TOT"},
                    "text": "…"
                },
                "chat_instance": format!("ci{user}"),
                "data": data
            }
        }))
    }

    /// The next `n` calls of `method` are answered 429 with `retry_after` seconds.
    pub fn throttle(&self, method: &str, retry_after: u32, n: usize) {
        let mut t = self.inner.throttle.lock().unwrap();
        let q = t.entry(method.to_string()).or_default();
        for _ in 0..n {
            q.push_back(retry_after);
        }
    }

    /// The next `n` calls of `method` are refused as Telegram refuses a picture it cannot
    /// take (400 Bad Request).
    pub fn refuse(&self, method: &str, n: usize) {
        self.refuse_with(method, 400, "Bad Request: wrong file identifier/HTTP URL specified", n);
    }

    /// The next `n` calls of `method` are answered `{"ok": false}` with this status and
    /// description, as Telegram answers a refusal (403 bot blocked) or its own trouble (502).
    pub fn refuse_with(&self, method: &str, status: u16, description: &str, n: usize) {
        let mut refused = self.inner.refused.lock().unwrap();
        let q = refused.entry(method.to_string()).or_default();
        for _ in 0..n {
            q.push_back((status, description.to_string()));
        }
    }

    /// Every later message (send, photo, edit) to `chat`, as it arrives.
    pub fn subscribe(&self, chat: i64) -> tokio::sync::mpsc::UnboundedReceiver<Call> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.inner.listeners.lock().unwrap().insert(chat, tx);
        rx
    }

    /// When each getUpdates arrived, and when each was answered, in order.
    pub fn polls(&self) -> (Vec<std::time::Instant>, Vec<std::time::Instant>) {
        (self.inner.polls_started.lock().unwrap().clone(), self.inner.polls_answered.lock().unwrap().clone())
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// Calls of one method so far.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// Waits (up to 20 s, then fails the test) until at least `n` calls of `method` arrived.
    pub async fn wait_for(&self, method: &str, n: usize) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.inner.new_call.notified();
            let got = self.calls_of(method);
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "waited 20 s for {n} {method} call(s); got {}: {:#?}",
                    got.len(),
                    self.calls().iter().map(|c| (&c.method, c.text())).collect::<Vec<_>>()
                );
            }
        }
    }

    /// The next message sent to `chat` after `after` messages to it were already seen.
    /// Says `text` as `user` and waits for the answer, the call to that chat after `after`.
    pub async fn ask(&self, user: i64, text: &str, after: usize) -> Call {
        self.say(user, text);
        self.next_to(user, after).await
    }

    pub async fn next_to(&self, chat: i64, after: usize) -> Call {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.inner.new_call.notified();
            let to: Vec<Call> = self
                .calls()
                .into_iter()
                .filter(|c| matches!(c.method.as_str(), "sendMessage" | "sendPhoto" | "editMessageText"))
                .filter(|c| c.chat() == chat)
                .collect();
            if to.len() > after {
                return to[after].clone();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("waited 20 s for message {} to chat {chat}; got {to:#?}", after + 1);
            }
        }
    }

    /// Messages (send, photo, edit) to one chat so far.
    pub fn to_chat(&self, chat: i64) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| matches!(c.method.as_str(), "sendMessage" | "sendPhoto" | "editMessageText"))
            .filter(|c| c.chat() == chat)
            .collect()
    }
}

/// Reads a JSON or multipart body into one JSON object.
async fn read_body(req: Request) -> Value {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    if is_multipart {
        let mut out = serde_json::Map::new();
        if let Ok(mut mp) = <Multipart as axum::extract::FromRequest<()>>::from_request(req, &()).await {
            while let Ok(Some(field)) = mp.next_field().await {
                let name = field.name().unwrap_or("").to_string();
                // An uploaded file is recorded by its name, size and bytes' checksum.
                if let Some(file_name) = field.file_name().map(str::to_string) {
                    let bytes = field.bytes().await.unwrap_or_default();
                    let sum: u64 = bytes.iter().map(|b| u64::from(*b)).sum();
                    out.insert(name, json!({"file_name": file_name, "size": bytes.len(), "sum": sum}));
                    continue;
                }
                let text = field.text().await.unwrap_or_default();
                let value = serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(|v| v.is_object() || v.is_array() || v.is_number())
                    .unwrap_or(Value::String(text));
                out.insert(name, value);
            }
        }
        // A file sent as `"photo": "attach://ID"` travels in the part named ID.
        let attached: Vec<(String, Value)> = out
            .iter()
            .filter_map(|(k, v)| {
                let id = v.as_str()?.strip_prefix("attach://")?;
                Some((k.clone(), out.get(id)?.clone()))
            })
            .collect();
        for (k, file) in attached {
            out.insert(k, file);
        }
        return Value::Object(out);
    }
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(json!({}))
}

async fn api(State(inner): State<Arc<Inner>>, Path((_bot, method)): Path<(String, String)>, req: Request) -> Response {
    // Bot API method names are case-insensitive; teloxide sends `SendMessage`.
    let mut chars = method.chars();
    let method: String = chars.next().map(|c| c.to_ascii_lowercase()).into_iter().chain(chars).collect();
    let body = read_body(req).await;
    if method == "getUpdates" {
        return get_updates(&inner, &body).await;
    }
    let limited = inner.throttle.lock().unwrap().get_mut(&method).and_then(|q| q.pop_front());
    let call = Call { method: method.clone(), body: body.clone(), at: std::time::Instant::now() };
    if matches!(method.as_str(), "sendMessage" | "sendPhoto" | "editMessageText")
        && let Some(tx) = inner.listeners.lock().unwrap().get(&call.chat())
    {
        let _ = tx.send(call.clone());
    }
    inner.calls.lock().unwrap().push(call);
    inner.new_call.notify_waiters();
    let refused = inner.refused.lock().unwrap().get_mut(&method).and_then(|q| q.pop_front());
    if let Some((status, description)) = refused {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            Json(json!({"ok": false, "error_code": status, "description": description})),
        )
            .into_response();
    }
    if let Some(secs) = limited {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({
                "ok": false, "error_code": 429,
                "description": format!("Too Many Requests: retry after {secs}"),
                "parameters": {"retry_after": secs}
            })),
        )
            .into_response();
    }
    let result = match method.as_str() {
        "sendMessage" | "sendPhoto" | "editMessageText" => {
            let chat = match &body["chat_id"] {
                Value::Number(n) => n.as_i64().unwrap_or(0),
                Value::String(s) => s.parse().unwrap_or(0),
                _ => 0,
            };
            let id = body["message_id"].as_i64().unwrap_or_else(|| inner.next_message.fetch_add(1, Ordering::SeqCst));
            json!({
                "message_id": id,
                "date": chrono::Utc::now().timestamp(),
                "chat": {"id": chat, "type": "private", "first_name": "Client"},
                "from": {"id": BOT_ID, "is_bot": true, "first_name": "TOT"},
                "text": body.get("text").or(body.get("caption")).cloned().unwrap_or(json!(""))
            })
        }
        "getMe" => json!({"id": BOT_ID, "is_bot": true, "first_name": "TOT", "username": "tot_bot",
                          "can_join_groups": false, "can_read_all_group_messages": false,
                          "supports_inline_queries": false, "has_main_web_app": false}),
        _ => json!(true),
    };
    Json(json!({"ok": true, "result": result})).into_response()
}

async fn get_updates(inner: &Inner, body: &Value) -> Response {
    inner.polls_started.lock().unwrap().push(std::time::Instant::now());
    let offset = body["offset"].as_i64().unwrap_or(0);
    // Telegram holds a quiet poll for its whole timeout (bounded here, as every wait in tests).
    let timeout = body["timeout"].as_u64().unwrap_or(0).min(60);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let list = loop {
        let notified = inner.new_update.notified();
        {
            let mut q = inner.updates.lock().unwrap();
            q.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            if !q.is_empty() {
                break q.iter().cloned().collect::<Vec<Value>>();
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            break vec![];
        }
    };
    inner.polls_answered.lock().unwrap().push(std::time::Instant::now());
    Json(json!({"ok": true, "result": list})).into_response()
}
