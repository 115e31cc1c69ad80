//! The application's shared state: the providers (and, through them, the services) every
//! handler and background task reaches, the chat clients, metrics and task health. Built
//! once by `AppState::new`, for the server and the CLI alike; `app` serves it.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::channels::Providers;
use crate::channels::email::Mailer;
use crate::config::Config;
use crate::model::Chat;
use crate::services::Services;
use crate::store::Db;

/// What every handler and background task can reach: the [`Providers`] the engines send
/// through (which deref to the [`Services`] the rules use), the chat clients the HTTP
/// routes answer for, and the metrics and task health. Built once; clones share everything.
#[derive(Clone)]
pub struct AppState {
    pub providers: Providers,
    pub metrics: PrometheusHandle,
    pub started: Instant,
    /// The Telegram bot, when `telegram.token` is set.
    pub telegram: Option<Arc<crate::channels::telegram::Telegram>>,
    /// The Discord client, when a token or public key is set.
    pub discord: Option<Arc<crate::channels::discord::Discord>>,
}

impl std::ops::Deref for AppState {
    type Target = Providers;
    fn deref(&self) -> &Providers {
        &self.providers
    }
}

impl AppState {
    /// Everything but the listener: for the server and for CLI commands alike.
    pub fn new(config: Config, db: Db) -> Result<AppState, StartError> {
        let mailer = Mailer::from_config(&config).map_err(|e| StartError::Config(e.to_string()))?;
        let dkim = crate::channels::email::dkim_signer(&config).map_err(|e| StartError::Config(e.to_string()))?;
        let telegram = if config.telegram.token.is_empty() {
            None
        } else {
            Some(Arc::new(
                crate::channels::telegram::Telegram::new(&config.telegram, db.clone()).map_err(StartError::Config)?,
            ))
        };
        let discord = (!config.discord.token.is_empty() || !config.discord.public_key.is_empty())
            .then(|| Arc::new(crate::channels::discord::Discord::new(&config)));
        let mut chat: std::collections::HashMap<Chat, Arc<dyn crate::channels::chat::ChatSender>> = Default::default();
        // The senders of `Config::chat_channels`, which the digest's targets are read from.
        for name in config.chat_channels() {
            match (name, &telegram, &discord) {
                (Chat::Telegram, Some(t), _) => {
                    chat.insert(name, t.clone());
                }
                (Chat::Discord, _, Some(d)) => {
                    chat.insert(name, d.clone());
                }
                _ => {}
            }
        }
        Ok(AppState {
            providers: Providers {
                services: Services::new(config, db),
                mailer,
                dkim,
                // The webhook's client: a redirect is not followed (reqwest would send the
                // event on as a bodiless GET, or post it signed to another host, and count
                // what that answers); it is said, naming where it points.
                http: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(15))
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("cport/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| StartError::Config(format!("HTTP client: {e}")))?,
                chat: Arc::new(chat),
            },
            metrics: metrics_handle(),
            started: Instant::now(),
            telegram,
            discord,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The OS's words are in the message, once (see `ConfigError::Read`).
    #[error("cannot listen on {addr}: {error}{}", in_use_hint(error))]
    Bind { addr: String, error: std::io::Error },
    #[error("{0}")]
    Config(String),
}

/// What to do about an address another program listens on (an earlier `cport serve` or
/// `cport demo` still running, most often); nothing for any other failure to listen.
pub fn in_use_hint(error: &std::io::Error) -> &'static str {
    if error.kind() == std::io::ErrorKind::AddrInUse {
        "; another program (a cport still running?) listens there: stop it, or listen elsewhere (port 0 takes a free one)"
    } else {
        ""
    }
}

/// The process-wide metrics recorder (installed once; every `App` shares it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests); then ours only renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
