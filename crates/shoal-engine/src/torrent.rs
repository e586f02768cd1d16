//! One torrent: the state shared by its peer tasks (picker, our pieces, peer
//! registry, partial pieces) behind one short-held mutex, and the driver task that
//! checks data, runs the choker, dials peers and finishes pieces.
//!
//! Data path: a peer task hands each received block, a slice of its receive buffer,
//! to [`State::partial`]; the block that completes a piece takes the piece's blocks
//! out and a blocking job hashes them and, if they match, writes them with one
//! vectored positional write per file. Only
//! then is the piece marked verified, announced to peers with `have` and served.
//! Corrupt data never reaches the disk.
//!
//! Lock order: `Shared::state` is the only lock here; it is never held across
//! `.await` and never while taking the session's locks.

mod candidates;
mod dht;
mod dial;
mod driver;
mod events;
mod files;
mod pieces;
mod registry;
mod spans;
mod stream;
mod swarm;
mod types;

use bytes::Bytes;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use shoal_proto::metainfo::Metainfo;
use shoal_proto::tracker::{AnnounceEvent, AnnounceRequest};
use shoal_proto::wire::Bitfield;
use shoal_proto::{InfoHash, PeerId};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::choker::{Choker, ChokerConfig};
use crate::peer::connect::Connector;
use crate::peer::mse::EncryptionPolicy;
use crate::peer::{PeerCmd, PeerStats, TransportKind};
use crate::picker::{PiecePicker, Priority};
use crate::session::Limits;
use crate::storage::{Storage, StorageFactory};

use candidates::Candidates;
pub use driver::{TorrentHandle, TorrentStatus};
use events::EventHub;
pub use events::TorrentEvents;
pub use stream::{PieceWaiter, StreamError};
pub use types::{PeerInfo, PeerSource, TorrentEvent, TrackerInfo};

/// What carries a peer connection, as the peer list shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Link {
    /// The payload is RC4-encrypted (MSE).
    pub encrypted: bool,
    /// TCP or uTP.
    pub transport: TransportKind,
}

/// Identifies a connection within a torrent (never reused).
pub type PeerKey = u64;

/// Most connections per torrent.
pub const MAX_PEERS: usize = 60;
/// How often an unreachable peer address is dialled again before it is forgotten.
const MAX_DIAL_RETRIES: u32 = 6;
/// Strikes after which a peer that sent data failing the hash is dropped and banned.
const BAN_STRIKES: u32 = 4;
/// Departed peers whose identity is remembered, so a piece that fails after its
/// contributor left still gives that contributor a strike.
const MAX_DEPARTED: usize = 256;
/// How long a peer that left us holding every piece counts as a copy in the swarm
/// for the seeding choker (see `note_coverage`).
const SEED_MEMORY: Duration = Duration::from_secs(60);

/// Who gets strikes: address without port plus peer ID, so reconnecting (a new
/// connection, a new port) does not clear them.
pub(crate) type StrikeKey = (IpAddr, PeerId);

/// What the torrent is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Verifying existing data: pieces checked so far.
    Checking {
        /// Pieces checked.
        done: u32,
        /// Pieces in all.
        total: u32,
    },
    /// Fetching pieces.
    Downloading,
    /// Every piece verified; serving others.
    Seeding,
    /// Stopped with a reason the user should see.
    Error(String),
    /// Stopped by request.
    Stopped,
}

/// How a torrent is added.
#[derive(Debug, Clone, Default)]
pub struct TorrentOptions {
    /// Folder that holds (or will hold) the torrent's data under its name.
    pub save_dir: PathBuf,
    /// The data must already be complete (seed only).
    pub seed_only: bool,
    /// Peers to dial besides those from trackers.
    pub peers: Vec<SocketAddr>,
    /// Where `peers` came from (shown per peer in the API).
    pub peer_source: PeerSource,
    /// Tracker tiers; empty means the torrent's own.
    pub trackers: Vec<Vec<String>>,
    /// Piece states to trust without hashing (resume data whose files are unchanged);
    /// `None`, or a list of the wrong length, checks the data.
    pub verified: Option<Vec<bool>>,
    /// Which files to download (by index); `None` means all.
    pub wanted_files: Option<Vec<bool>>,
    /// Download priority per file (by index); `None` means all normal.
    pub file_priorities: Option<Vec<Priority>>,
    /// Where the pieces live; the default is the files below `save_dir`.
    pub storage: StorageFactory,
}

pub(crate) struct PeerEntry {
    pub addr: SocketAddr,
    pub client: String,
    pub incoming: bool,
    /// Where we learnt of it.
    pub source: PeerSource,
    /// The payload is RC4-encrypted (MSE).
    pub encrypted: bool,
    /// TCP or uTP.
    pub transport: TransportKind,
    /// Where the peer accepts connections, when known.
    pub listen_addr: Option<SocketAddr>,
    pub peer_id: PeerId,
    pub tx: mpsc::UnboundedSender<PeerCmd>,
    pub stats: Arc<PeerStats>,
}

pub(crate) struct State {
    pub picker: PiecePicker,
    pub have: Bitfield,
    pub peers: HashMap<PeerKey, PeerEntry>,
    pub peer_ids: HashSet<PeerId>,
    /// Addresses we are dialling or connected to by dialling.
    pub dialing: HashSet<SocketAddr>,
    /// Addresses learnt but not yet dialled (capped).
    pub candidates: Candidates,
    pub banned_addrs: HashSet<SocketAddr>,
    pub banned_ids: HashSet<PeerId>,
    /// Hash-failure strikes per peer identity.
    pub strikes: HashMap<StrikeKey, u32>,
    /// Recently disconnected peers (key, address, ID), newest last.
    pub departed: VecDeque<(PeerKey, SocketAddr, PeerId)>,
    /// When a peer holding every piece last disconnected (it completed and left a
    /// seed-to-seed connection, and likely seeds on elsewhere).
    pub seed_left_at: Option<Instant>,
    /// Upload slots; peer tasks unchoke early through it, the driver ticks it.
    pub choker: Choker,
    /// Failed dials in a row per address.
    pub dial_failures: HashMap<SocketAddr, u32>,
    /// Blocks received of pieces in progress (offset in the piece, data), in arrival
    /// order.
    pub partial: HashMap<u32, Vec<(u32, Bytes)>>,
    pub tracker_status: Option<Result<String, String>>,
    pub trackers: Vec<TrackerInfo>,
    pub hash_failures: u64,
    /// Per file: download it.
    pub wanted_files: Vec<bool>,
    /// Per file: its download priority.
    pub file_priorities: Vec<Priority>,
    /// Peer that sent the first block of each piece being received.
    pub piece_source: HashMap<u32, SocketAddr>,
}

/// State shared by a torrent's tasks.
pub struct Shared {
    pub(crate) meta: Arc<Metainfo>,
    pub(crate) our_id: PeerId,
    pub(crate) listen_port: u16,
    pub(crate) cancel: CancellationToken,
    pub(crate) limits: Arc<Limits>,
    /// This torrent's own limits (0: none), waited on after the session's: a peer's
    /// bytes are charged to both, so the lower one holds.
    pub(crate) own_limits: Limits,
    /// Whether dials use MSE; set once by the session (tests leave the default).
    pub(crate) encryption: OnceLock<EncryptionPolicy>,
    /// Peer exchange (BEP 11) on this torrent's connections (never for a private one).
    pub(crate) pex: AtomicBool,
    /// How dials connect (uTP, then TCP); set once by the session (tests and
    /// sessions without uTP leave TCP only).
    pub(crate) connector: OnceLock<Arc<Connector>>,
    /// Payload bytes sent.
    pub(crate) uploaded: AtomicU64,
    /// Payload bytes received (including discarded duplicates and failed pieces).
    pub(crate) downloaded: AtomicU64,
    storage: OnceLock<Arc<dyn Storage>>,
    seeding: AtomicBool,
    state: Mutex<State>,
    hash_slots: Semaphore,
    phase: watch::Sender<Phase>,
    completed: Notify,
    /// Asks the announce task for a round now (the user's "reannounce").
    reannounce: Notify,
    next_key: AtomicU64,
    /// Bytes of complete pieces waiting for hash and write.
    pending_bytes: AtomicU64,
    events: EventHub,
    /// Wakes the idle driver: a peer registered or addresses to dial arrived.
    wake: Notify,
    /// Makes the driver run the choker now (a seeder's peers now hold, or no longer
    /// hold, every piece).
    rechoke: Notify,
    /// Bumped by the driver on every tick while it is active (see `driver`).
    ticks: watch::Sender<u64>,
    /// Driver, announce, peer, dial, accept and piece-finishing tasks;
    /// `TorrentHandle::stop` waits for them after cancelling.
    pub(crate) tasks: TaskTracker,
    /// `torrent{hash, name}`: the parent of every task span of this torrent (`spans`).
    pub(crate) span: tracing::Span,
}

impl Shared {
    pub(crate) fn new(
        meta: Arc<Metainfo>,
        our_id: PeerId,
        listen_port: u16,
        limits: Arc<Limits>,
        cancel: CancellationToken,
    ) -> Arc<Shared> {
        let info = &meta.info;
        let picker = PiecePicker::new(info.piece_length, info.total_length);
        let have = Bitfield::new(info.num_pieces());
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Shared {
            our_id,
            listen_port,
            cancel,
            limits,
            own_limits: Limits::new(0, 0),
            encryption: OnceLock::new(),
            pex: AtomicBool::new(true),
            connector: OnceLock::new(),
            uploaded: AtomicU64::new(0),
            downloaded: AtomicU64::new(0),
            storage: OnceLock::new(),
            seeding: AtomicBool::new(false),
            state: Mutex::new(State {
                picker,
                have,
                peers: HashMap::new(),
                peer_ids: HashSet::new(),
                dialing: HashSet::new(),
                candidates: Candidates::default(),
                banned_addrs: HashSet::new(),
                banned_ids: HashSet::new(),
                strikes: HashMap::new(),
                departed: VecDeque::new(),
                seed_left_at: None,
                choker: Choker::new(ChokerConfig::default()),
                dial_failures: HashMap::new(),
                partial: HashMap::new(),
                tracker_status: None,
                trackers: Vec::new(),
                hash_failures: 0,
                wanted_files: vec![true; info.files.len()],
                file_priorities: vec![Priority::Normal; info.files.len()],
                piece_source: HashMap::new(),
            }),
            hash_slots: Semaphore::new(threads + 1),
            phase: watch::Sender::new(Phase::Checking {
                done: 0,
                total: info.num_pieces(),
            }),
            completed: Notify::new(),
            reannounce: Notify::new(),
            next_key: AtomicU64::new(1),
            pending_bytes: AtomicU64::new(0),
            events: EventHub::default(),
            wake: Notify::new(),
            rechoke: Notify::new(),
            ticks: watch::Sender::new(0),
            tasks: TaskTracker::new(),
            span: spans::torrent_span(&meta),
            meta,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug; keep serving with the data as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The torrent's info-hash.
    pub fn info_hash(&self) -> InfoHash {
        self.meta.info_hash
    }

    pub(crate) fn storage(&self) -> Option<Arc<dyn Storage>> {
        self.storage.get().cloned()
    }

    pub(crate) fn set_storage(&self, s: Arc<dyn Storage>) {
        let _ = self.storage.set(s);
    }

    pub(crate) fn emit(&self, e: TorrentEvent) {
        self.events.emit(e);
    }

    pub(crate) fn subscribe(&self) -> TorrentEvents {
        self.events.subscribe()
    }

    pub(crate) fn set_phase(&self, p: Phase) {
        self.phase.send_replace(p);
    }

    pub(crate) fn phase_rx(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    pub(crate) fn is_seeding(&self) -> bool {
        self.seeding.load(Ordering::Relaxed)
    }

    pub(crate) fn completed_notify(&self) -> &Notify {
        &self.completed
    }

    /// Woken by [`crate::TorrentHandle::reannounce`]; a request made while a round is
    /// under way is kept (one `Notify` permit) and starts the next round at once.
    pub(crate) fn reannounce_notify(&self) -> &Notify {
        &self.reannounce
    }

    pub(crate) fn peer_count(&self) -> usize {
        self.lock().peers.len()
    }

    pub(crate) fn init_trackers(&self, tiers: &[Vec<String>]) {
        let mut st = self.lock();
        st.trackers = tiers
            .iter()
            .enumerate()
            .flat_map(|(tier, urls)| {
                urls.iter().map(move |url| TrackerInfo {
                    url: url.clone(),
                    tier,
                    status: "not contacted",
                    message: None,
                    seeders: None,
                    leechers: None,
                    failures: 0,
                    next_announce: None,
                })
            })
            .collect();
    }

    /// Records one tracker's answer (`Ok((seeders, leechers, warning))`) or error.
    pub(crate) fn tracker_result(&self, url: &str, r: Result<(u32, u32, Option<String>), String>) {
        let mut st = self.lock();
        st.tracker_status = Some(match &r {
            Ok((s, l, _)) => Ok(format!("{url}: {s} seeders, {l} leechers")),
            Err(e) => Err(e.clone()),
        });
        if let Some(t) = st.trackers.iter_mut().find(|t| t.url == url) {
            match r {
                Ok((s, l, w)) => {
                    t.status = "working";
                    t.message = w;
                    t.seeders = Some(s);
                    t.leechers = Some(l);
                    t.failures = 0;
                }
                Err(e) => {
                    t.status = "error";
                    t.message = Some(e);
                    t.failures = t.failures.saturating_add(1);
                }
            }
        }
    }

    /// Records when the next announce round is due (`at`) for the trackers it contacts
    /// (`urls`); the others have none.
    pub(crate) fn trackers_due(&self, urls: &[&str], at: Instant) {
        let mut st = self.lock();
        for t in &mut st.trackers {
            t.next_announce = urls.contains(&t.url.as_str()).then_some(at);
        }
    }

    /// Bytes still missing.
    pub(crate) fn left(&self) -> u64 {
        let st = self.lock();
        let info = &self.meta.info;
        let have: u64 = st.have.iter_set().map(|i| info.piece_size(i)).sum();
        info.total_length - have
    }

    pub(crate) fn announce_request(&self, event: AnnounceEvent) -> AnnounceRequest {
        let mut req = AnnounceRequest::new(self.meta.info_hash, self.our_id, self.listen_port);
        req.uploaded = self.uploaded.load(Ordering::Relaxed);
        req.downloaded = self.downloaded.load(Ordering::Relaxed);
        req.left = self.left();
        req.event = event;
        req.numwant = Some(80);
        req.key = Some(crate::session::announce_key(&self.our_id));
        req
    }

    /// Marks every piece in `have` as verified (after a check) and decides the phase.
    pub(crate) fn load_pieces(&self, have: &[bool]) {
        let mut st = self.lock();
        for (i, ok) in have.iter().enumerate() {
            if *ok {
                st.have.set(i as u32);
                st.picker.set_have(i as u32);
            }
        }
        let done = st.picker.is_complete_wanted();
        drop(st);
        self.seeding.store(done, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
