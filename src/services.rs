//! What the rules need of the running process: the configuration, the store, the signer,
//! the compiled templates, the dispatcher's wake-up and the test fault hooks. Actions take
//! this, not the whole application state (which adds providers, metrics and tasks), so
//! their signatures say what they touch; `AppState` derefs to it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Notify;

use crate::config::Config;
use crate::links::Signer;
use crate::model::items::ActionItem;
use crate::store::Db;
use crate::store::banners::LiveBanner;
use crate::supervise::Faults;

#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub db: Db,
    pub signer: Signer,
    pub templates: Arc<minijinja::Environment<'static>>,
    /// Rung when messages are queued, so a dispatcher picks them up at once.
    pub wake_dispatch: Arc<Notify>,
    /// Faults armed by tests (never in production).
    pub faults: Arc<Faults>,
    /// Clients changed by a sync, for the alert scanner.
    pub alerts: Arc<AlertSignal>,
    /// Each client's action items as last read, for pages and chat (`actions::items::current`).
    pub items: Arc<ItemSnapshots>,
    /// The live banners as last read, for pages (`actions::banners::showing`).
    pub banners: Arc<BannerSnapshot>,
    /// The state of every supervised background task and its passes, for `/healthz`.
    pub health: Arc<crate::supervise::Health>,
    /// The turns of the transactions that read on the pool before they end (an inbound
    /// message's unit, `Unit` of the actions): half the pool's connections, so that their reads
    /// always find one free. As many in transactions as the pool has connections once held
    /// them all, each waiting for one more to read with, until the pool gave up on them.
    pub units: Arc<tokio::sync::Semaphore>,
}

/// The live banners with the banners' version they were read at (raised by the store on
/// every write to banners or their audiences, from any process).
#[derive(Default)]
pub struct BannerSnapshot(Mutex<Option<Versioned<Vec<LiveBanner>>>>);

impl BannerSnapshot {
    /// The banners if they were read at `version`.
    pub fn get(&self, version: i64) -> Option<Arc<Vec<LiveBanner>>> {
        let kept = self.0.lock().ok()?;
        kept.as_ref().filter(|(v, _)| *v == version).map(|(_, b)| b.clone())
    }

    /// Keeps `banners`, read after the version was seen to be `version`.
    pub fn put(&self, version: i64, banners: Arc<Vec<LiveBanner>>) {
        if let Ok(mut kept) = self.0.lock() {
            *kept = Some((version, banners));
        }
    }
}

/// Clients whose items are kept at most; past it the snapshots start again from none.
const SNAPSHOT_CLIENTS: usize = 10_000;

/// Each client's action items (all of them, before any role's filter) with the version of
/// the client they were read at (`ContactRow::items_version`, raised by the store on every
/// write to what items are made of, from any process). A snapshot serves only a reader that
/// saw the same version, so it is never older than what that reader could see itself.
#[derive(Default)]
pub struct ItemSnapshots(Mutex<HashMap<String, Versioned<Vec<ActionItem>>>>);

/// What was read, with the version it was read at.
type Versioned<T> = (i64, Arc<T>);

impl ItemSnapshots {
    /// The client's items if they were read at `version`.
    pub fn get(&self, client: &str, version: i64) -> Option<Arc<Vec<ActionItem>>> {
        let map = self.0.lock().ok()?;
        map.get(client).filter(|(v, _)| *v == version).map(|(_, items)| items.clone())
    }

    /// Keeps `items`, read after the client's version was seen to be `version`.
    pub fn put(&self, client: &str, version: i64, items: Arc<Vec<ActionItem>>) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= SNAPSHOT_CLIENTS && !map.contains_key(client) {
                map.clear();
            }
            map.insert(client.to_string(), (version, items));
        }
    }
}

/// Clients whose data changed since the last scan, and a bell to ring.
#[derive(Default)]
pub struct AlertSignal {
    dirty: Mutex<HashSet<String>>,
    pub notify: Notify,
}

impl AlertSignal {
    pub fn mark(&self, clients: impl IntoIterator<Item = String>) {
        if let Ok(mut d) = self.dirty.lock() {
            d.extend(clients);
        }
        self.notify.notify_one();
    }
    pub fn take(&self) -> HashSet<String> {
        self.dirty.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default()
    }
}

impl Services {
    pub fn new(config: Config, db: Db) -> Services {
        Services {
            signer: Signer::new(config.link_secret.expose()).with_previous(config.previous_link_secret.expose()),
            config: Arc::new(config),
            templates: Arc::new(crate::templates::environment()),
            wake_dispatch: Arc::new(Notify::new()),
            faults: Arc::new(Faults::default()),
            health: Arc::new(Default::default()),
            alerts: Arc::new(AlertSignal::default()),
            items: Arc::new(ItemSnapshots::default()),
            banners: Arc::new(BannerSnapshot::default()),
            units: Arc::new(tokio::sync::Semaphore::new((db.max_connections() as usize / 2).max(1))),
            db,
        }
    }

    /// A signed link that signs `contact_id` in and opens `path`, valid `digest.link_ttl_days`.
    pub fn portal_link(&self, contact_id: &str, path: &str, now: DateTime<Utc>) -> String {
        let ttl = Duration::days(i64::from(self.config.digest.link_ttl_days));
        self.signer.open_url(&self.config.public_url, path, contact_id, ttl, now)
    }

    /// A picture's address for a reader without a session (an email): a path under
    /// `/media` gets a signature that expires at `expires`; TOT's web addresses are kept.
    pub fn picture_url(&self, picture: &str, expires: DateTime<Utc>) -> String {
        if picture.starts_with("/media/") {
            self.signer.media_url(&self.config.public_url, picture, expires)
        } else if picture.starts_with('/') {
            format!("{}{picture}", self.config.public_url.trim_end_matches('/'))
        } else {
            picture.to_string()
        }
    }
}
