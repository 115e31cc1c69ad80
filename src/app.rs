//! Building and running the service: the store, the HTTP router, and shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Config;
pub use crate::state::{AppState, StartError, metrics_handle};
use crate::store::Db;
use crate::sync::api;

type BoxedTask = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// A built service: store open and migrated, listener bound, not yet serving.
pub struct App {
    listener: TcpListener,
    pub state: AppState,
    /// How long requests in flight may take to finish once shutdown begins
    /// ([`SHUTDOWN_GRACE`]; a test shortens it).
    pub shutdown_grace: std::time::Duration,
    /// How long a client may take to send a request's head ([`crate::serve::HEADER_READ`]; a
    /// test shortens it).
    pub header_read: std::time::Duration,
}

/// How long requests in flight may take to finish once shutdown begins.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// `data_dir` keeps uploaded artwork, pictures and (by default) mail files: a start that
/// cannot write there is refused, naming the key, rather than every upload failing later.
fn check_data_dir(dir: &std::path::Path) -> Result<(), String> {
    check_writable("data_dir", dir)
}

/// A folder cport writes to, made when missing and written once, named by its `key`.
fn check_writable(key: &str, dir: &std::path::Path) -> Result<(), String> {
    // Named for this process: two starting at once do not remove each other's.
    let probe = dir.join(format!(".cport-write-check-{}", std::process::id()));
    // Made for the service and its group alone (0750, as the packaged unit makes it): it
    // keeps clients' artwork and mail holding sign-in links. One that exists keeps its mode.
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .and_then(|_| std::fs::write(&probe, b""))
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| format!("{key}: cannot write to {}: {e}", crate::model::path_shown(dir)))
}

impl App {
    /// Opens and migrates the store and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> Result<App, StartError> {
        let db = Db::connect(config.database_url.expose()).await?;
        db.migrate().await?;
        Self::build_with(config, db).await
    }

    pub async fn build_with(config: Config, db: Db) -> Result<App, StartError> {
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|error| StartError::Bind { addr: config.listen.clone(), error })?;
        Self::build_on(config, db, listener).await
    }

    /// [`App::build_with`] on a listener bound before (the demo binds first, so that a port
    /// in use is said before anything is changed).
    pub async fn build_on(config: Config, db: Db, listener: TcpListener) -> Result<App, StartError> {
        db.check_writable().await.map_err(|e| {
            StartError::Config(format!(
                "the store takes no writes ({e}); cport writes to it: check that the user it runs as may write the database file and its folder"
            ))
        })?;
        check_data_dir(&config.data_dir).map_err(StartError::Config)?;
        // The `file` transport's folder elsewhere than under data_dir: every email would
        // fail there, one by one, rather than the start.
        if config.email.transport == crate::config::Transport::File && !config.email.dir.as_os_str().is_empty() {
            check_writable("email.dir", &config.email.dir).map_err(StartError::Config)?;
        }
        let state = AppState::new(config, db)?;
        Ok(App { listener, state, shutdown_grace: SHUTDOWN_GRACE, header_read: crate::serve::HEADER_READ })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves HTTP and runs the scheduler, alert scanner and dispatchers until `shutdown`
    /// resolves; then finishes in-flight requests and sends, and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let state = self.state.clone();
        // Where staff use the console, its chase list reads every client's items: begin now,
        // so the first staff to open it need not wait for that reading.
        if crate::store::staff::any(&state.db).await.unwrap_or(false) {
            crate::actions::chase::read_ahead(&state);
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        // Each background task runs supervised: restarted with backoff if it panics or
        // returns early, and reported by /healthz meanwhile.
        let mut supervised = |name: String, make: Box<dyn Fn() -> BoxedTask + Send>| {
            tasks.spawn(crate::supervise::supervise(name, state.health.clone(), stop_rx.clone(), make));
        };
        let (s, rx) = (state.clone(), stop_rx.clone());
        supervised(
            "scheduler".into(),
            Box::new(move || Box::pin(crate::digest::scheduler::run(s.providers.services.clone(), rx.clone()))),
        );
        let (s, rx) = (state.clone(), stop_rx.clone());
        supervised(
            "alerts".into(),
            Box::new(move || Box::pin(crate::digest::alerts::run(s.providers.services.clone(), rx.clone()))),
        );
        if let Some(tg) = state.telegram.clone() {
            let (s, rx) = (state.clone(), stop_rx.clone());
            supervised(
                "telegram".into(),
                Box::new(move || {
                    Box::pin(crate::channels::telegram::run_polling(
                        s.providers.services.clone(),
                        tg.clone(),
                        rx.clone(),
                    ))
                }),
            );
        }
        if !state.config.imap.host.is_empty() {
            let (s, rx) = (state.clone(), stop_rx.clone());
            supervised(
                "imap".into(),
                Box::new(move || Box::pin(crate::channels::imap::run(s.providers.services.clone(), rx.clone()))),
            );
        }
        let marker = crate::outbox::Marker::start(state.db.clone());
        let webhook = state.config.webhook.is_set();
        for (name, lane) in crate::outbox::senders(state.config.outbox.workers as usize, webhook) {
            let (s, rx, m, task) = (state.clone(), stop_rx.clone(), marker.clone(), name.clone());
            supervised(
                task,
                Box::new(move || {
                    Box::pin(crate::outbox::run_worker(
                        s.providers.clone(),
                        m.clone(),
                        (name.clone(), lane),
                        rx.clone(),
                    ))
                }),
            );
        }
        let router = router(state.clone());
        tracing::info!(addr = %self.local_addr(), engine = state.db.engine(), "serving");
        let stop = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        crate::serve::serve(self.listener, router, stop, self.header_read, self.shutdown_grace).await;
        // Interactions answered "thinking…" are still being worked on: their work and answers
        // are let finish, within the same grace.
        if let Some(d) = &state.discord {
            d.answers.close();
            if tokio::time::timeout(self.shutdown_grace, d.answers.wait()).await.is_err() {
                tracing::warn!(left = d.answers.len(), "Discord answers still going at shutdown were dropped");
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "background task ended abnormally");
            }
        }
        state.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

async fn telegram_webhook(State(s): State<AppState>, headers: axum::http::HeaderMap, body: Bytes) -> Response {
    let (status, said) =
        crate::channels::telegram::webhook(s.providers.services.clone(), s.telegram.clone(), headers, body).await;
    // A refusal in the shape every other address answers one in; Telegram reads only the status.
    match status.is_success() {
        true => (status, said).into_response(),
        false => (status, axum::Json(serde_json::json!({ "error": said }))).into_response(),
    }
}

async fn discord_interactions(State(s): State<AppState>, headers: axum::http::HeaderMap, body: Bytes) -> Response {
    crate::channels::discord::interactions(s.providers.services.clone(), s.discord.clone(), headers, body).await
}

/// The most a chat provider's update may hold: a message of a few thousand characters and its
/// wrapping, far below what an unauthenticated sender could otherwise make cport read.
const CHAT_UPDATE_BYTES: usize = 1024 * 1024;

/// The most a portal or console form may hold: far more than any of their fields together.
const FORM_BYTES: usize = 256 * 1024;

pub fn router(state: AppState) -> Router {
    let limit = usize::try_from(state.config.max_body_bytes).unwrap_or(usize::MAX);
    // The most any address takes: the artwork upload's limit, or the one for all the rest.
    let most = limit.max(crate::portal::artwork::body_limit(&state)).max(CHAT_UPDATE_BYTES) as u64;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        // What chat providers post: the body is bounded before it is read, as its sender is
        // only known from what it holds.
        .route("/telegram/webhook", post(telegram_webhook).layer(DefaultBodyLimit::max(CHAT_UPDATE_BYTES)))
        .route("/discord/interactions", post(discord_interactions).layer(DefaultBodyLimit::max(CHAT_UPDATE_BYTES)))
        .route_layer(middleware::map_response(crate::web::too_large_says(CHAT_UPDATE_BYTES, String::new())))
        .merge(api::router())
        .merge(portal_routes(&state))
        .fallback(not_found)
        .layer(middleware::map_response(crate::web::rejections_as_errors))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(crate::web::method_pages))
        .layer(middleware::from_fn(crate::web::refuse_unreadable))
        .layer(middleware::from_fn(move |req, next| crate::web::refuse_declared_over(most, req, next)))
        .layer(middleware::from_fn(track))
        // No page of cport may be framed by another site (clickjacking an approval).
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        ))
        // What cport answers is a client's or staff's own (invoices, statements, items): no
        // browser or proxy keeps a copy to show again after sign-out. The stylesheet, the
        // script and pictures say how long they may be kept.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        // Some addresses hold a token (a password reset, an unsubscribe link): none is handed
        // to another site by a link or a logo on the page. cport's own pages say where a form
        // came from (sign-in after a session ended returns there).
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .with_state(state)
}

/// The portal's pages, pictures and artwork uploads, and the staff console: their errors are
/// shown as pages.
fn portal_routes(state: &AppState) -> Router<AppState> {
    use crate::web::too_large_says;
    let files = crate::portal::artwork::body_limit(state);
    let files_say =
        format!(": {} files of inbound.max_attachment_bytes with their headers", crate::actions::artwork::MAX_FILES);
    Router::new()
        .route("/media/{*path}", get(crate::portal::media::serve))
        // Artwork files are larger than any form: this route has a limit of its own.
        .route(
            "/jobs/{id}/artwork",
            post(crate::portal::artwork::upload)
                .layer(DefaultBodyLimit::max(files))
                .layer(middleware::map_response(too_large_says(files, files_say))),
        )
        .merge(
            Router::new()
                .merge(crate::portal::router())
                .merge(crate::console::router(state))
                .layer(DefaultBodyLimit::max(FORM_BYTES))
                .layer(middleware::map_response(too_large_says(FORM_BYTES, String::new()))),
        )
        .layer(middleware::map_response(crate::web::rejections_as_errors))
        .layer(middleware::map_response(crate::web::render_page))
}

/// A path no route serves: the error in JSON under `/api/`, the portal's page elsewhere.
async fn not_found(uri: axum::http::Uri) -> Response {
    crate::web::in_shape_for(uri.path(), crate::web::HttpError::NotFound).await
}

/// How long a health check or a scrape waits on the store: well inside a load balancer's
/// check and Prometheus's scrape timeout (10 s), so an outage is reported, not waited out
/// (the pool would wait 30 s for a connection).
const STORE_ASK: Duration = Duration::from_secs(2);

async fn healthz(State(state): State<AppState>) -> Response {
    let tasks = state.health.report();
    let unhealthy = state.health.unhealthy();
    let pinged = match tokio::time::timeout(STORE_ASK, state.db.ping()).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err("no answer within 2 seconds".to_string()),
    };
    match pinged {
        Ok(()) if unhealthy.is_empty() => Json(serde_json::json!({
            "status": "ok",
            "engine": state.db.engine(),
            "uptime_seconds": state.started.elapsed().as_secs(),
            "tasks": tasks,
        }))
        .into_response(),
        Ok(()) => {
            let named: Vec<String> = unhealthy.iter().map(|t| format!("{} is {}", t.task, t.state)).collect();
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({
                    "status": format!("background task down: {}", named.join(", ")),
                    "engine": state.db.engine(),
                    "tasks": tasks,
                })),
            )
                .into_response()
        }
        Err(e) => {
            let cause =
                state.db.why_unreachable().await.unwrap_or_else(|| "a new connection is made: the pool is busy".into());
            tracing::error!(error = %e, %cause, "health check: store unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "store unavailable"}))).into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    // The gauges read from the store, all within one bound: a store that does not answer
    // leaves them as they were and says so in `cport_store_up`.
    let read = tokio::time::timeout(STORE_ASK, store_gauges(&state)).await;
    metrics::gauge!("cport_store_up").set(if matches!(read, Ok(true)) { 1.0 } else { 0.0 });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

/// Sets the gauges that are counts in the store; true when every one was read.
async fn store_gauges(state: &AppState) -> bool {
    let mut all = true;
    match crate::store::inbound::suspended_count(&state.db).await {
        Ok(n) => metrics::gauge!("cport_email_suspended_contacts").set(n as f64),
        Err(_) => all = false,
    }
    // Recorded by every route that takes mail in, this process or another (the MTA's pipe).
    let inbound = crate::store::inbound::counts_by_disposition(&state.db).await;
    all &= inbound.is_ok();
    if let Ok(counts) = inbound {
        // Each outcome is set, 0 when none is left (held mail released or discarded), so no
        // gauge keeps a count from an earlier scrape. Duplicates are never recorded.
        for outcome in
            crate::model::InboundOutcome::ALL.iter().filter(|o| **o != crate::model::InboundOutcome::Duplicate)
        {
            let n = counts.iter().find(|(o, _)| o == outcome).map_or(0, |(_, n)| *n);
            metrics::gauge!("cport_inbound_messages", "disposition" => outcome.as_str()).set(n as f64);
        }
    }
    let outbox = crate::store::outbox::counts_unsent(&state.db).await;
    all &= outbox.is_ok();
    if let Ok(counts) = outbox {
        // A state left empty since the last scrape reads 0, not its last count.
        for status in crate::model::OutboxStatus::ALL.iter().filter(|s| **s != crate::model::OutboxStatus::Sent) {
            let n = counts.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
            metrics::gauge!("cport_outbox_messages", "status" => status.as_str()).set(n as f64);
        }
    }
    all
}

/// Counts requests and their latency per route and status.
async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("cport_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("cport_http_request_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// The method as a metrics label: the standard methods by name, any other as `other`, so a
/// client sending made-up methods (each one answered 405) cannot add series without end.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN.iter().find(|k| *k == m).map_or("other", |k| k.as_str())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
