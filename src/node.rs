//! The long-running node behind `shoal up`: one engine [`Session`], the torrents the
//! user added (running, queued, paused or failed) and their persistent state in the
//! [`Store`], sharing jobs, and the numbers the API reports.
//!
//! Every torrent has an [`Entry`]; a running one also has a [`Run`] (its engine handle
//! and a monitor task that logs transfers, saves resume data every 5 s and notices
//! completion and errors). Paused and queued torrents are not in the session at all;
//! resuming re-adds them with the saved piece states.
//!
//! Lock order: `Inner::ops` (async, serialises lifecycle changes across awaits), then
//! `Inner::torrents`, then `Inner::settings`, then the engine's own locks (through
//! `TorrentHandle::status` and friends). Sync locks are never held across `.await`.

pub mod altspeed;
pub mod catalog;
mod check;
mod durable;
pub mod entry;
pub mod labels;
mod lifecycle;
mod magnets;
mod monitor;
mod order;
mod outcome;
pub mod queue;
mod restore;
pub mod rules;
mod runs;
mod save;
pub mod share;
mod speed;
pub mod swarm;
pub mod tokens;
pub mod up;
mod watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use shoal_engine::Session;
use shoal_proto::{InfoHash, PeerId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{NodeConfig, Settings};
use crate::store::records::LogRecord;
use crate::store::Store;

pub use entry::{Entry, Summary};
pub use lifecycle::{AddError, AddRequest};
pub use share::ShareJob;

/// Transfer-log records waiting to be written before new ones are dropped.
const LOG_QUEUE: usize = 20_000;

/// How long shutdown waits for the node's tasks after cancelling them (a share job may
/// be hashing a large folder on the blocking pool, which cannot be interrupted).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

/// Cumulative payload byte counters, including earlier runs.
#[derive(Default)]
pub struct Totals {
    /// Received.
    pub downloaded: AtomicU64,
    /// Sent.
    pub uploaded: AtomicU64,
}

pub(crate) struct Inner {
    session: Session,
    store: Store,
    peer_id: PeerId,
    config: NodeConfig,
    settings: Mutex<Settings>,
    torrents: Mutex<HashMap<InfoHash, Entry>>,
    /// Magnets waiting for their metadata (`magnets.rs`).
    magnets: Mutex<HashMap<InfoHash, magnets::Pending>>,
    ops: tokio::sync::Mutex<()>,
    jobs: Mutex<Vec<ShareJob>>,
    next_job: AtomicU64,
    totals: Totals,
    started: Instant,
    web_url: Mutex<String>,
    embedded_tracker: Option<String>,
    log_tx: mpsc::Sender<LogRecord>,
    /// Completion and errors from the monitors, to the outcome task.
    outcomes: mpsc::UnboundedSender<monitor::Outcome>,
    /// Set by shutdown (under `ops`): nothing starts any more.
    closing: AtomicBool,
    /// Cancelled on shutdown once every torrent is stopped: stops the node's tasks.
    cancel: CancellationToken,
    /// Every task the node starts: log writer, statistics saver, restore, outcome
    /// task, monitors, share jobs. Shutdown waits for them.
    tasks: TaskTracker,
    /// Categories and tags (`labels.rs`).
    labels: Mutex<labels::Labels>,
    /// Tokens that open one file's stream URL without a login (`tokens.rs`).
    stream_tokens: tokens::StreamTokens,
}

/// What the node needs at start besides its config.
pub struct NodeParts {
    /// The engine session (already listening).
    pub session: Session,
    /// The open database.
    pub store: Store,
    /// This data dir's peer ID.
    pub peer_id: PeerId,
    /// The embedded tracker's announce URL, if one runs.
    pub embedded_tracker: Option<String>,
}

impl Node {
    /// Builds the node and starts its background tasks (transfer log writer, statistics
    /// saver, restoring the stored torrents). Returns at once; torrents come back in the
    /// background.
    pub async fn start(config: NodeConfig, parts: NodeParts) -> anyhow::Result<Node> {
        let (log_tx, log_rx) = mpsc::channel(LOG_QUEUE);
        let (outcomes, outcome_rx) = mpsc::unbounded_channel();
        let totals = Totals::default();
        let (down, up) = parts
            .store
            .call(|c| {
                Ok((
                    crate::store::records::stat(c, "downloaded")?,
                    crate::store::records::stat(c, "uploaded")?,
                ))
            })
            .await?;
        totals.downloaded.store(down, Ordering::Relaxed);
        totals.uploaded.store(up, Ordering::Relaxed);
        let label_rows = parts.store.call(|c| crate::store::labels::load(c)).await?;
        let node = Node {
            inner: Arc::new(Inner {
                session: parts.session,
                store: parts.store,
                peer_id: parts.peer_id,
                settings: Mutex::new(config.settings.clone()),
                config,
                torrents: Mutex::new(HashMap::new()),
                magnets: Mutex::new(HashMap::new()),
                ops: tokio::sync::Mutex::new(()),
                jobs: Mutex::new(Vec::new()),
                next_job: AtomicU64::new(1),
                totals,
                started: Instant::now(),
                web_url: Mutex::new(String::new()),
                embedded_tracker: parts.embedded_tracker,
                log_tx,
                outcomes,
                closing: AtomicBool::new(false),
                cancel: CancellationToken::new(),
                tasks: TaskTracker::new(),
                labels: Mutex::new(labels::Labels::from_rows(label_rows)),
                stream_tokens: Default::default(),
            }),
        };
        node.spawn(monitor::write_log(node.clone(), log_rx));
        node.spawn(monitor::save_totals(node.clone()));
        node.spawn(outcome::run(node.clone(), outcome_rx));
        node.spawn(save_dht_nodes_every(node.clone(), DHT_SAVE_INTERVAL));
        restore::load(&node).await;
        queue::restore(&node).await;
        node.restore_magnets().await;
        node.spawn(restore::start(node.clone()));
        node.spawn(rules::run(node.clone()));
        node.spawn(altspeed::run(node.clone()));
        node.spawn(watch::run(node.clone()));
        Ok(node)
    }

    /// Runs `fut` as a task the node owns (cancelled and awaited on shutdown).
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.tasks.spawn(fut);
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    pub(crate) fn torrents(&self) -> MutexGuard<'_, HashMap<InfoHash, Entry>> {
        self.inner
            .torrents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Current run-time settings.
    pub fn settings(&self) -> Settings {
        self.inner
            .settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_settings(&self, s: Settings) {
        *self
            .inner
            .settings
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = s;
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The engine session.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    /// Our peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The resolved configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// Tokens for stream URLs opened by media players (`tokens.rs`).
    pub fn stream_tokens(&self) -> &tokens::StreamTokens {
        &self.inner.stream_tokens
    }

    /// The embedded tracker's announce URL, when the node runs one.
    pub fn embedded_tracker(&self) -> Option<&str> {
        self.inner.embedded_tracker.as_deref()
    }

    /// Seconds since start.
    pub fn uptime_secs(&self) -> u64 {
        self.inner.started.elapsed().as_secs()
    }

    /// The web UI's URL (set once it listens).
    pub fn web_url(&self) -> String {
        self.inner
            .web_url
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_web_url(&self, url: String) {
        *self.inner.web_url.lock().unwrap_or_else(|p| p.into_inner()) = url;
    }

    /// Cumulative payload bytes received and sent.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.inner.totals.downloaded.load(Ordering::Relaxed),
            self.inner.totals.uploaded.load(Ordering::Relaxed),
        )
    }

    /// Finds a torrent by full hex info-hash or a unique prefix of at least 4 characters.
    pub fn resolve(&self, id: &str) -> Result<InfoHash, ResolveError> {
        let id = id.to_ascii_lowercase();
        if id.len() < 4 || id.len() > 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ResolveError::Malformed(id));
        }
        let map = self.torrents();
        let magnets = self.magnets();
        let mut found = map
            .keys()
            .chain(magnets.keys())
            .filter(|h| h.to_hex().starts_with(&id));
        match (found.next(), found.next()) {
            (Some(h), None) => Ok(*h),
            (Some(_), Some(_)) => Err(ResolveError::Ambiguous(id)),
            (None, _) => Err(ResolveError::Unknown(id)),
        }
    }

    /// Every torrent's summary, oldest first.
    pub fn summaries(&self) -> Vec<Summary> {
        let mut v: Vec<(i64, Summary)> = {
            let map = self.torrents();
            map.values().map(|e| (e.added_at, e.summary())).collect()
        };
        v.extend(self.magnet_summaries());
        v.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
        let labels = self.labels();
        v.into_iter()
            .map(|(_, s)| labels::with_labels(s, &labels))
            .collect()
    }

    /// One torrent's summary.
    pub fn summary(&self, hash: InfoHash) -> Option<Summary> {
        let s = self.torrents().get(&hash).map(Entry::summary);
        let s = s.or_else(|| self.magnets().get(&hash).map(magnets::Pending::summary))?;
        let l = self.labels_of(hash);
        Some(Summary {
            category: l.category,
            tags: l.tags.into_iter().collect(),
            ..s
        })
    }

    /// Swarm counts (seeds, peers) of running torrents by hex info-hash.
    pub fn swarm_counts(&self) -> HashMap<String, (u32, u32)> {
        let map = self.torrents();
        map.iter()
            .filter_map(|(h, e)| {
                let s = e.run.as_ref()?.handle.status();
                Some((
                    h.to_hex(),
                    (s.swarm_seeders.unwrap_or(0), s.swarm_leechers.unwrap_or(0)),
                ))
            })
            .collect()
    }

    /// `GET /api/stats`.
    pub async fn stats(&self) -> anyhow::Result<serde_json::Value> {
        self.stats_of(&self.summaries()).await
    }

    /// [`Self::stats`] from summaries the caller already has (every torrent's).
    pub async fn stats_of(&self, sums: &[Summary]) -> anyhow::Result<serde_json::Value> {
        let (completed, failed) = self
            .store()
            .call(|c| {
                Ok((
                    crate::store::records::stat(c, "downloads_completed")?,
                    crate::store::records::stat(c, "downloads_failed")?,
                ))
            })
            .await?;
        let (downloaded, uploaded) = self.totals();
        let unaccounted: (u64, u64) = {
            let map = self.torrents();
            map.values()
                .filter_map(|e| e.run.as_ref())
                .map(|r| {
                    let (down, up) = r.handle.transferred();
                    (
                        down.saturating_sub(r.seen_down),
                        up.saturating_sub(r.seen_up),
                    )
                })
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        };
        Ok(serde_json::json!({
            "down_rate": sums.iter().map(|s| s.down_rate).sum::<u64>(),
            "up_rate": sums.iter().map(|s| s.up_rate).sum::<u64>(),
            "downloaded": downloaded + unaccounted.0,
            "uploaded": uploaded + unaccounted.1,
            "files_shared": sums.iter().filter(|s| s.state == "seeding").count(),
            "downloads_completed": completed,
            "downloads_failed": failed,
            "torrents": sums.len(),
            "peers": sums.iter().map(|s| s.peers + s.seeds).sum::<usize>(),
            "alt_speed_active": altspeed::active(self),
            "limit_down": altspeed::limits(self).1,
            "limit_up": altspeed::limits(self).0,
        }))
    }

    /// Stops every torrent, saves resume data and statistics, and waits for the
    /// node's tasks.
    pub async fn shutdown(&self) {
        save_dht_nodes(self).await;
        runs::stop_all(self).await;
        rules::save_seeding_times(self).await;
        self.inner.cancel.cancel();
        self.inner.tasks.close();
        let wait = self.inner.tasks.wait();
        if tokio::time::timeout(SHUTDOWN_GRACE, wait).await.is_err() {
            tracing::warn!(
                tasks = self.inner.tasks.len(),
                "node tasks still running at shutdown"
            );
        }
        monitor::flush_totals(self).await;
        self.inner.session.shutdown().await;
    }

    pub(crate) fn add_totals(&self, down: u64, up: u64) {
        let t = &self.inner.totals;
        t.downloaded.fetch_add(down, Ordering::Relaxed);
        t.uploaded.fetch_add(up, Ordering::Relaxed);
    }
}

/// How often the DHT's routing table is saved (and at shutdown).
const DHT_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// Saves the DHT's routing table, when the session runs a DHT with nodes in it, so the
/// next start need not bootstrap from the routers.
async fn save_dht_nodes(node: &Node) {
    let Some(dht) = node.session().dht() else {
        return;
    };
    let nodes = dht.nodes().await;
    if nodes.is_empty() {
        return;
    }
    let n = nodes.len();
    let r = node
        .store()
        .call(move |c| crate::store::torrents::save_dht_nodes(c, &nodes))
        .await;
    match r {
        Ok(()) => tracing::debug!(nodes = n, "saved the DHT routing table"),
        Err(e) => tracing::warn!("cannot save the DHT routing table: {e:#}"),
    }
}

async fn save_dht_nodes_every(node: Node, every: std::time::Duration) {
    if node.session().dht().is_none() {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => save_dht_nodes(&node).await,
            _ = node.inner().cancel.cancelled() => return,
        }
    }
}

/// Why a torrent ID did not name one torrent.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Not hex, or too short.
    #[error(
        "{0:?} is not a torrent id: give the info-hash in hex or a prefix of at least 4 characters"
    )]
    Malformed(String),
    /// Several torrents start with it.
    #[error("{0:?} matches several torrents: give more characters")]
    Ambiguous(String),
    /// No torrent starts with it.
    #[error("no torrent with id {0:?}; list them with GET /api/torrents")]
    Unknown(String),
}

#[cfg(test)]
mod tests;
