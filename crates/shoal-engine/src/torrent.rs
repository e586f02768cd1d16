//! One torrent: the state shared by its peer tasks (picker, our pieces, peer
//! registry, partial pieces) behind one short-held mutex, and the driver task that
//! checks data, runs the choker, dials peers and finishes pieces.
//!
//! Data path: a peer task copies each received block into the piece's buffer in
//! [`State::partial`]; the block that completes a piece takes the buffer out and a
//! blocking job hashes it and, if it matches, writes it with positional writes. Only
//! then is the piece marked verified, announced to peers with `have` and served.
//! Corrupt data never reaches the disk.
//!
//! Lock order: `Shared::state` is the only lock here; it is never held across
//! `.await` and never while taking the session's locks.

mod driver;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rand::rngs::SmallRng;
use sha1::{Digest, Sha1};
use shoal_proto::metainfo::Metainfo;
use shoal_proto::tracker::{AnnounceEvent, AnnounceRequest};
use shoal_proto::wire::Bitfield;
use shoal_proto::{InfoHash, PeerId};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, watch, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::peer::{self, PeerCmd, PeerError, PeerStats};
use crate::picker::{Block, PiecePicker};
use crate::session::Limits;
use crate::storage::Storage;

pub use driver::{TorrentHandle, TorrentStatus};

/// Identifies a connection within a torrent (never reused).
pub type PeerKey = u64;

/// Most connections per torrent.
pub const MAX_PEERS: usize = 60;
/// How often an unreachable peer address is dialled again before it is forgotten.
const MAX_DIAL_RETRIES: u32 = 6;
/// Strikes after which a peer that sent data failing the hash is dropped and banned.
const BAN_STRIKES: u32 = 4;

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
    /// Tracker tiers; empty means the torrent's own.
    pub trackers: Vec<Vec<String>>,
    /// Piece states to trust without hashing (resume data whose files are unchanged);
    /// `None`, or a list of the wrong length, checks the data.
    pub verified: Option<Vec<bool>>,
    /// Which files to download (by index); `None` means all.
    pub wanted_files: Option<Vec<bool>>,
}

/// Something that happened to a torrent, for logs and persistence. Delivered through a
/// bounded broadcast channel: a slow subscriber misses events rather than slowing
/// transfers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TorrentEvent {
    /// A piece passed its hash check and is stored.
    PieceVerified {
        /// The piece.
        piece: u32,
        /// Its size.
        bytes: u64,
        /// The peer that sent its first block.
        peer: Option<SocketAddr>,
    },
    /// Blocks of one piece were sent to a peer (aggregated per piece and peer).
    BlocksSent {
        /// The receiving peer.
        peer: SocketAddr,
        /// The piece.
        piece: u32,
        /// Payload bytes sent.
        bytes: u64,
    },
    /// A piece failed its hash check and will be fetched again.
    PieceFailed {
        /// The piece.
        piece: u32,
    },
    /// Every wanted piece is verified.
    Completed,
    /// The torrent stopped with an error.
    Error(String),
}

/// A connected peer, for APIs.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Remote address of the connection.
    pub addr: SocketAddr,
    /// Client name from the handshake.
    pub client: String,
    /// Share of the torrent the peer has, 0 to 1.
    pub progress: f64,
    /// Bytes per second from the peer.
    pub down_rate: u64,
    /// Bytes per second to the peer.
    pub up_rate: u64,
    /// Payload bytes from the peer.
    pub downloaded: u64,
    /// Payload bytes to the peer.
    pub uploaded: u64,
    /// The peer has every piece.
    pub seed: bool,
    /// We choke the peer.
    pub am_choking: bool,
    /// We want pieces the peer has.
    pub am_interested: bool,
    /// The peer chokes us.
    pub peer_choking: bool,
    /// The peer wants pieces we have.
    pub peer_interested: bool,
    /// The peer connected to us.
    pub incoming: bool,
    /// The peer left our requests unanswered for a long time.
    pub snubbed: bool,
}

/// A tracker's last outcome, for APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerInfo {
    /// Announce URL.
    pub url: String,
    /// BEP 12 tier, from 0.
    pub tier: usize,
    /// `working`, `error` or `not contacted`.
    pub status: &'static str,
    /// The tracker's warning or error, if any.
    pub message: Option<String>,
    /// Seeders it reported.
    pub seeders: Option<u32>,
    /// Leechers it reported.
    pub leechers: Option<u32>,
}

pub(crate) struct PeerEntry {
    pub addr: SocketAddr,
    pub client: String,
    pub incoming: bool,
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
    /// Addresses learnt but not yet dialled.
    pub candidates: Vec<SocketAddr>,
    pub banned_addrs: HashSet<SocketAddr>,
    pub banned_ids: HashSet<PeerId>,
    pub strikes: HashMap<PeerKey, u32>,
    /// Failed dials in a row per address.
    pub dial_failures: HashMap<SocketAddr, u32>,
    /// Buffers of pieces being received.
    pub partial: HashMap<u32, Vec<u8>>,
    /// Spare piece buffers.
    pub pool: Vec<Vec<u8>>,
    pub tracker_status: Option<Result<String, String>>,
    pub trackers: Vec<TrackerInfo>,
    pub hash_failures: u64,
    /// Per file: download it.
    pub wanted_files: Vec<bool>,
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
    /// Payload bytes sent.
    pub(crate) uploaded: AtomicU64,
    /// Payload bytes received (including discarded duplicates and failed pieces).
    pub(crate) downloaded: AtomicU64,
    storage: OnceLock<Arc<Storage>>,
    seeding: AtomicBool,
    state: Mutex<State>,
    hash_slots: Semaphore,
    phase: watch::Sender<Phase>,
    completed: Notify,
    next_key: AtomicU64,
    events: broadcast::Sender<TorrentEvent>,
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
                candidates: Vec::new(),
                banned_addrs: HashSet::new(),
                banned_ids: HashSet::new(),
                strikes: HashMap::new(),
                dial_failures: HashMap::new(),
                partial: HashMap::new(),
                pool: Vec::new(),
                tracker_status: None,
                trackers: Vec::new(),
                hash_failures: 0,
                wanted_files: vec![true; info.files.len()],
                piece_source: HashMap::new(),
            }),
            hash_slots: Semaphore::new(threads + 1),
            phase: watch::Sender::new(Phase::Checking {
                done: 0,
                total: info.num_pieces(),
            }),
            completed: Notify::new(),
            next_key: AtomicU64::new(1),
            events: broadcast::channel(4096).0,
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

    pub(crate) fn storage(&self) -> Option<Arc<Storage>> {
        self.storage.get().cloned()
    }

    pub(crate) fn set_storage(&self, s: Arc<Storage>) {
        let _ = self.storage.set(s);
    }

    pub(crate) fn emit(&self, e: TorrentEvent) {
        let _ = self.events.send(e);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<TorrentEvent> {
        self.events.subscribe()
    }

    /// Marks a file wanted or not; a piece is wanted while any file it overlaps is.
    pub(crate) fn set_file_wanted(self: &Arc<Self>, index: usize, wanted: bool) {
        let info = &self.meta.info;
        let Some(file) = info.files.get(index) else {
            return;
        };
        let mut st = self.lock();
        let Some(slot) = st.wanted_files.get_mut(index) else {
            return;
        };
        *slot = wanted;
        if file.length == 0 {
            return;
        }
        let pl = info.piece_length;
        let first = (file.offset / pl) as u32;
        let last = ((file.offset + file.length - 1) / pl) as u32;
        for piece in first..=last {
            let (start, end) = (
                u64::from(piece) * pl,
                u64::from(piece) * pl + info.piece_size(piece),
            );
            let any =
                info.files.iter().zip(&st.wanted_files).any(|(f, w)| {
                    *w && f.length > 0 && f.offset < end && start < f.offset + f.length
                });
            st.picker.set_wanted(piece, any);
        }
        let done = st.picker.is_complete_wanted();
        drop(st);
        self.update_completion(done);
    }

    /// Switches between downloading and seeding as the wanted set is (in)complete.
    fn update_completion(&self, done: bool) {
        let was = self.seeding.swap(done, Ordering::Relaxed);
        if done && !was {
            self.set_phase(Phase::Seeding);
            self.completed.notify_one();
            self.emit(TorrentEvent::Completed);
            info!(name = %self.meta.info.name, "download complete; seeding");
        } else if !done && was {
            self.set_phase(Phase::Downloading);
        }
    }

    /// Bytes of verified pieces that fall in each file.
    pub(crate) fn file_progress(&self) -> Vec<u64> {
        let info = &self.meta.info;
        let st = self.lock();
        let mut out = vec![0u64; info.files.len()];
        let mut fi = 0;
        for piece in st.have.iter_set() {
            let start = u64::from(piece) * info.piece_length;
            let end = start + info.piece_size(piece);
            while fi < info.files.len() && info.files[fi].offset + info.files[fi].length <= start {
                fi += 1;
            }
            let mut j = fi;
            while j < info.files.len() && info.files[j].offset < end {
                let f = &info.files[j];
                let lo = start.max(f.offset);
                let hi = end.min(f.offset + f.length);
                if hi > lo {
                    out[j] += hi - lo;
                }
                j += 1;
            }
        }
        out
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
                }
                Err(e) => {
                    t.status = "error";
                    t.message = Some(e);
                }
            }
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

    // ----- peer registry -----

    pub(crate) fn register_peer(
        &self,
        addr: SocketAddr,
        peer_id: PeerId,
        incoming: bool,
    ) -> Result<(PeerKey, Arc<PeerStats>, mpsc::UnboundedReceiver<PeerCmd>), PeerError> {
        if self.storage.get().is_none() {
            return Err(PeerError::Closed("torrent is still checking its data"));
        }
        let mut st = self.lock();
        if st.banned_ids.contains(&peer_id) || st.banned_addrs.contains(&addr) {
            return Err(PeerError::Closed("banned for sending corrupt data"));
        }
        if !st.peer_ids.insert(peer_id) {
            return Err(PeerError::Closed("already connected to this peer"));
        }
        if st.peers.len() >= MAX_PEERS {
            st.peer_ids.remove(&peer_id);
            return Err(PeerError::Closed("too many peers"));
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(PeerStats::default());
        st.peers.insert(
            key,
            PeerEntry {
                addr,
                client: peer_id.client_name(),
                incoming,
                listen_addr: None,
                peer_id,
                tx,
                stats: stats.clone(),
            },
        );
        Ok((key, stats, rx))
    }

    pub(crate) fn unregister_peer(&self, key: PeerKey, peer_id: PeerId, pieces: &Bitfield) {
        let mut st = self.lock();
        if st.peers.remove(&key).is_some() {
            st.peer_ids.remove(&peer_id);
        }
        st.picker.peer_gone(key);
        st.picker.peer_bitfield_removed(pieces);
        st.strikes.remove(&key);
    }

    pub(crate) fn have_snapshot(&self) -> Bitfield {
        self.lock().have.clone()
    }

    pub(crate) fn have_piece(&self, i: u32) -> bool {
        self.lock().have.get(i)
    }

    pub(crate) fn peer_have(&self, i: u32) {
        self.lock().picker.peer_have(i);
    }

    pub(crate) fn peer_bitfield_replaced(&self, old: &Bitfield, new: &Bitfield) {
        let mut st = self.lock();
        st.picker.peer_bitfield_removed(old);
        st.picker.peer_bitfield_added(new);
    }

    /// Records the port a connected peer listens on (BEP 10 `p`), so that tracker
    /// replies naming it are not dialled a second time.
    pub(crate) fn set_listen_addr(&self, key: PeerKey, addr: SocketAddr) {
        if let Some(p) = self.lock().peers.get_mut(&key) {
            p.listen_addr = Some(addr);
        }
    }

    /// Whether the peer has a piece we still want.
    pub(crate) fn wants_any(&self, theirs: &Bitfield) -> bool {
        if self.is_seeding() {
            return false;
        }
        let st = self.lock();
        theirs
            .iter_set()
            .any(|i| !st.have.get(i) && st.picker.is_wanted(i))
    }

    pub(crate) fn peer_became_interested(&self, key: PeerKey) {
        // Unchoke at once while a regular slot is free; the choker revisits every 10 s.
        let st = self.lock();
        let unchoked = st
            .peers
            .values()
            .filter(|p| !p.stats.am_choking.load(Ordering::Relaxed))
            .count();
        if unchoked < crate::choker::ChokerConfig::default().unchoke_slots {
            if let Some(p) = st.peers.get(&key) {
                let _ = p.tx.send(PeerCmd::Unchoke);
            }
        }
    }

    // ----- requests and blocks -----

    pub(crate) fn pick(
        &self,
        key: PeerKey,
        theirs: &Bitfield,
        max: usize,
        rng: &mut SmallRng,
        out: &mut Vec<Block>,
    ) {
        self.lock().picker.pick(key, theirs, max, rng, out);
    }

    pub(crate) fn request_dropped(&self, key: PeerKey, b: Block) {
        self.lock().picker.request_dropped(key, b);
    }

    pub(crate) fn requests_dropped(&self, key: PeerKey, blocks: &[Block]) {
        let mut st = self.lock();
        for b in blocks {
            st.picker.request_dropped(key, *b);
        }
    }

    /// Whether `b` is exactly one of the torrent's blocks.
    pub(crate) fn is_valid_block(&self, b: Block) -> bool {
        let st = self.lock();
        let p = &st.picker;
        if b.piece >= p.num_pieces() || b.begin % crate::picker::BLOCK_SIZE != 0 {
            return false;
        }
        let idx = b.begin / crate::picker::BLOCK_SIZE;
        idx < p.block_count(b.piece) && p.block_ref(b.piece, idx) == (b.begin, b.length)
    }

    /// Copies a received block into its piece buffer; hashes and stores the piece when
    /// it is complete.
    pub(crate) fn block_received(
        self: &Arc<Self>,
        key: PeerKey,
        _addr: SocketAddr,
        block: Block,
        data: &[u8],
    ) {
        self.downloaded
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let mut st = self.lock();
        if st.have.get(block.piece) {
            return;
        }
        let r = st.picker.block_received(key, block);
        if !r.first {
            return;
        }
        for other in &r.other_requesters {
            if let Some(p) = st.peers.get(other) {
                let _ = p.tx.send(PeerCmd::Cancel(block));
            }
        }
        let size = self.meta.info.piece_size(block.piece) as usize;
        if !st.partial.contains_key(&block.piece) {
            st.piece_source.insert(block.piece, _addr);
            let mut buf = st.pool.pop().unwrap_or_default();
            buf.resize(size, 0);
            st.partial.insert(block.piece, buf);
        }
        let Some(buf) = st.partial.get_mut(&block.piece) else {
            return;
        };
        let start = block.begin as usize;
        if let Some(dst) = buf.get_mut(start..start + data.len()) {
            dst.copy_from_slice(data);
        }
        if r.piece_complete {
            if let Some(buf) = st.partial.remove(&block.piece) {
                drop(st);
                let me = self.clone();
                tokio::spawn(async move { me.finish_piece(block.piece, buf).await });
            }
        }
    }

    /// Hashes a complete piece off the runtime; stores it if good, refetches it if not.
    async fn finish_piece(self: Arc<Self>, piece: u32, buf: Vec<u8>) {
        let Ok(_permit) = self.hash_slots.acquire().await else {
            return;
        };
        let Some(storage) = self.storage() else {
            return;
        };
        let expected = self.meta.info.pieces[piece as usize];
        let job = tokio::task::spawn_blocking(move || {
            let ok = Sha1::digest(&buf).as_slice() == expected;
            let written = if ok {
                storage.write(piece, 0, &buf)
            } else {
                Ok(())
            };
            (ok, written, buf)
        });
        let Ok((ok, written, buf)) = job.await else {
            return;
        };
        let mut st = self.lock();
        if st.pool.len() < 64 {
            st.pool.push(buf);
        }
        match (ok, written) {
            (true, Ok(())) => {
                st.picker.piece_verified(piece);
                st.have.set(piece);
                let source = st.piece_source.remove(&piece);
                for p in st.peers.values() {
                    let _ = p.tx.send(PeerCmd::Have(piece));
                }
                let done = st.picker.is_complete_wanted();
                drop(st);
                self.emit(TorrentEvent::PieceVerified {
                    piece,
                    bytes: self.meta.info.piece_size(piece),
                    peer: source,
                });
                if done {
                    self.update_completion(true);
                }
            }
            (true, Err(e)) => {
                st.picker.piece_failed(piece);
                st.piece_source.remove(&piece);
                drop(st);
                warn!("cannot store piece {piece}: {e}");
                self.set_phase(Phase::Error(format!("{e}")));
                self.emit(TorrentEvent::Error(e.to_string()));
                self.cancel.cancel();
            }
            (false, _) => {
                st.hash_failures += 1;
                st.piece_source.remove(&piece);
                self.emit(TorrentEvent::PieceFailed { piece });
                let contributors = st.picker.piece_failed(piece);
                let sole = contributors.len() == 1;
                warn!(
                    piece,
                    ?contributors,
                    "piece failed its hash check; fetching it again"
                );
                for k in contributors {
                    let s = st.strikes.entry(k).or_insert(0);
                    *s += if sole { 2 } else { 1 };
                    if *s >= BAN_STRIKES {
                        if let Some(p) = st.peers.get(&k) {
                            let (addr, id) = (p.addr, p.peer_id);
                            warn!(%addr, "dropping peer that sent corrupt data");
                            let _ = p
                                .tx
                                .send(PeerCmd::Disconnect("sent data that failed the hash check"));
                            st.banned_addrs.insert(addr);
                            st.banned_ids.insert(id);
                        }
                    }
                }
            }
        }
    }

    // ----- dialling -----

    /// Learns peer addresses and dials as many as the connection budget allows.
    pub(crate) fn add_peers(self: &Arc<Self>, addrs: &[SocketAddr]) {
        {
            let mut st = self.lock();
            for a in addrs {
                let own = a.port() == self.listen_port
                    && (a.ip().is_loopback() || a.ip().is_unspecified());
                if !own && a.port() != 0 && !st.candidates.contains(a) && !st.dialing.contains(a) {
                    st.candidates.push(*a);
                }
            }
        }
        self.dial_candidates();
    }

    pub(crate) fn dial_candidates(self: &Arc<Self>) {
        if self.cancel.is_cancelled() || self.storage.get().is_none() {
            return;
        }
        let mut to_dial = Vec::new();
        {
            let mut st = self.lock();
            while st.peers.len() + st.dialing.len() < MAX_PEERS {
                let Some(a) = st.candidates.pop() else { break };
                let connected = st
                    .peers
                    .values()
                    .any(|p| p.addr == a || p.listen_addr == Some(a));
                if connected || st.banned_addrs.contains(&a) || !st.dialing.insert(a) {
                    continue;
                }
                to_dial.push(a);
            }
        }
        for addr in to_dial {
            let me = self.clone();
            tokio::spawn(async move {
                let (connected, r) = me.dial(addr).await;
                if let Err(e) = &r {
                    tracing::debug!(%addr, "peer connection ended: {e}");
                }
                let mut st = me.lock();
                st.dialing.remove(&addr);
                // A peer that could not be reached (or, like Transmission right after
                // another loopback peer left, dropped our handshake) is tried again a
                // few times on later driver ticks.
                let retry = !connected
                    && !matches!(r, Err(PeerError::SelfConnection))
                    && !st.banned_addrs.contains(&addr);
                let failures = st.dial_failures.entry(addr).or_insert(0);
                if connected {
                    *failures = 0;
                } else {
                    *failures += 1;
                }
                if retry && *failures <= MAX_DIAL_RETRIES && !st.candidates.contains(&addr) {
                    st.candidates.insert(0, addr);
                }
            });
        }
    }

    /// Dials and runs one peer; the flag says whether the handshake completed.
    async fn dial(self: &Arc<Self>, addr: SocketAddr) -> (bool, Result<(), PeerError>) {
        let connect = TcpStream::connect(addr);
        let stream = match tokio::time::timeout(peer::handshake::HANDSHAKE_TIMEOUT, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return (false, Err(e.into())),
            Err(_) => return (false, Err(PeerError::Timeout("connect"))),
        };
        let mut stream = stream;
        let theirs =
            match peer::handshake::outgoing(&mut stream, self.meta.info_hash, self.our_id).await {
                Ok(h) => h,
                Err(e) => return (false, Err(e)),
            };
        (
            true,
            peer::run(self.clone(), stream, addr, theirs, false).await,
        )
    }

    /// Takes over an incoming connection whose handshake named this torrent.
    pub(crate) fn accept(
        self: &Arc<Self>,
        mut stream: TcpStream,
        addr: SocketAddr,
        theirs: shoal_proto::wire::Handshake,
    ) {
        let me = self.clone();
        tokio::spawn(async move {
            // Not while checking: the peer would see no pieces. Closing before our
            // handshake makes it try again later.
            if theirs.peer_id == me.our_id || me.storage.get().is_none() {
                return;
            }
            if peer::handshake::write_handshake(&mut stream, me.meta.info_hash, me.our_id)
                .await
                .is_err()
            {
                return;
            }
            if let Err(e) = peer::run(me, stream, addr, theirs, true).await {
                tracing::debug!(%addr, "incoming peer ended: {e}");
            }
        });
    }
}
