//! Fetching a torrent's info dictionary from peers (BEP 9) when only its info-hash is
//! known (a magnet link).
//!
//! [`Session::fetch_metadata`](crate::Session::fetch_metadata) starts one task that
//! gathers peer addresses (the link's `x.pe`, its trackers, the DHT when the session
//! runs one) and dials up to [`MAX_DIALS`] of them at a time. Each connection
//! (`magnet/peer.rs`) does the handshakes and asks for at most two metadata pieces at
//! once; the pieces meet in one [`Assembler`], which checks the whole against the
//! info-hash. Peers that send a bad size, a bad piece or a dictionary that does not
//! hash are dropped and not dialled again; a peer that rejects is asked again only
//! after a pause. The fetch ends with the dictionary and every peer address learnt,
//! which the caller hands to the torrent it then starts (these connections close; the
//! torrent dials again).

mod peer;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_proto::magnet::Magnet;
use shoal_proto::metadata::Assembler;
use shoal_proto::tracker::{AnnounceEvent, AnnounceRequest};
use shoal_proto::{InfoHash, PeerId};
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, Instrument};

use crate::torrent::PeerSource;

/// Connections trying to fetch metadata at once.
pub const MAX_DIALS: usize = 30;
/// How often trackers are asked again while no peer has given the metadata.
const TRACKER_RETRY: Duration = Duration::from_secs(30);
/// How long after a DHT lookup ends the next one starts, while no peer has given the
/// metadata.
pub const DHT_RETRY: Duration = Duration::from_secs(15);

/// Why a metadata fetch ended without the dictionary.
#[derive(Debug, Error)]
pub enum FetchError {
    /// Cancelled (torrent paused or removed, node stopping).
    #[error("metadata fetch cancelled")]
    Cancelled,
}

/// What a fetch is doing, for the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchProgress {
    /// Peer addresses known.
    pub peers_known: usize,
    /// Connections open now.
    pub connected: usize,
    /// Metadata pieces received and pieces in all (0 until a peer states the size).
    pub pieces: (usize, usize),
}

/// The fetched dictionary and the peers learnt on the way.
#[derive(Debug)]
pub struct Fetched {
    /// The raw info dictionary; its SHA-1 is the info-hash.
    pub info_bytes: Vec<u8>,
    /// Every peer address learnt, with where it came from.
    pub peers: Vec<(SocketAddr, PeerSource)>,
}

/// A running fetch. Dropping it does not stop it; [`MetadataFetch::cancel`] does.
pub struct MetadataFetch {
    result: Option<tokio::sync::oneshot::Receiver<Fetched>>,
    progress: watch::Receiver<FetchProgress>,
    cancel: CancellationToken,
}

impl MetadataFetch {
    /// Waits for the dictionary.
    pub async fn wait(&mut self) -> Result<Fetched, FetchError> {
        let rx = self.result.take().ok_or(FetchError::Cancelled)?;
        rx.await.map_err(|_| FetchError::Cancelled)
    }

    /// What the fetch is doing now.
    pub fn progress(&self) -> FetchProgress {
        self.progress.borrow().clone()
    }

    /// Stops the fetch and its connections.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// A handle to watch or cancel the fetch from elsewhere.
    pub fn control(&self) -> FetchControl {
        FetchControl {
            progress: self.progress.clone(),
            cancel: self.cancel.clone(),
        }
    }
}

/// Watches or cancels a [`MetadataFetch`]; cheap to clone.
#[derive(Clone)]
pub struct FetchControl {
    progress: watch::Receiver<FetchProgress>,
    cancel: CancellationToken,
}

impl FetchControl {
    /// What the fetch is doing now.
    pub fn progress(&self) -> FetchProgress {
        self.progress.borrow().clone()
    }

    /// Stops the fetch and its connections.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// What the fetch task shares with its connections.
pub(crate) struct FetchShared {
    pub info_hash: InfoHash,
    pub our_id: PeerId,
    pub listen_port: u16,
    pub assembler: Mutex<Assembler>,
    /// Peers that sent bad metadata: their connections close, they are not dialled.
    pub banned: Mutex<HashSet<SocketAddr>>,
    /// Peer keys (for the assembler) and their addresses.
    pub keys: Mutex<HashMap<u64, SocketAddr>>,
    /// The verified dictionary, from the connection that completed it.
    pub complete: mpsc::UnboundedSender<Vec<u8>>,
    pub cancel: CancellationToken,
}

/// Where a fetch looks for peers.
pub(crate) struct Sources {
    pub magnet: Magnet,
    /// The session's DHT, if it runs one: looked up now and every
    /// [`DHT_RETRY`] while no peer has given the metadata.
    pub dht: Option<crate::dht::DhtHandle>,
}

pub(crate) fn start(
    our_id: PeerId,
    listen_port: u16,
    sources: Sources,
    tasks: &TaskTracker,
    cancel: CancellationToken,
) -> MetadataFetch {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (complete, complete_rx) = mpsc::unbounded_channel();
    let (ptx, prx) = watch::channel(FetchProgress::default());
    let shared = Arc::new(FetchShared {
        info_hash: sources.magnet.info_hash,
        our_id,
        listen_port,
        assembler: Mutex::new(Assembler::new(sources.magnet.info_hash)),
        banned: Mutex::new(HashSet::new()),
        keys: Mutex::new(HashMap::new()),
        complete,
        cancel: cancel.clone(),
    });
    let span = tracing::info_span!("metadata", hash = %sources.magnet.info_hash);
    let t = tasks.clone();
    let ends = Ends {
        result: tx,
        complete: complete_rx,
        progress: ptx,
    };
    tasks.spawn(run(shared, sources, ends, t).instrument(span));
    MetadataFetch {
        result: Some(rx),
        progress: prx,
        cancel,
    }
}

/// Peers known, and which are being tried.
#[derive(Default)]
struct Book {
    known: HashMap<SocketAddr, PeerSource>,
    queue: VecDeque<SocketAddr>,
    tried: HashSet<SocketAddr>,
}

impl Book {
    fn learn(&mut self, addrs: impl IntoIterator<Item = SocketAddr>, source: PeerSource) {
        for a in addrs {
            if a.port() != 0 && !self.known.contains_key(&a) {
                self.known.insert(a, source);
                self.queue.push_back(a);
            }
        }
    }
}

/// How the fetch task reports.
struct Ends {
    result: tokio::sync::oneshot::Sender<Fetched>,
    complete: mpsc::UnboundedReceiver<Vec<u8>>,
    progress: watch::Sender<FetchProgress>,
}

async fn run(shared: Arc<FetchShared>, sources: Sources, mut ends: Ends, tasks: TaskTracker) {
    let mut dht_rx = match &sources.dht {
        Some(d) => Some(d.get_peers(shared.info_hash).await),
        None => None,
    };
    let mut dht_ended: Option<tokio::time::Instant> = None;
    let mut book = Book::default();
    let x_pe: Vec<SocketAddr> = sources
        .magnet
        .peers
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    book.learn(x_pe, PeerSource::Magnet);
    let (found_tx, mut found_rx) = mpsc::channel::<Vec<SocketAddr>>(16);
    let mut trackers: Vec<Vec<String>> = sources
        .magnet
        .trackers
        .iter()
        .map(|t| vec![t.clone()])
        .collect();
    if !trackers.is_empty() {
        let s = shared.clone();
        let tx = found_tx.clone();
        tasks.spawn(async move { ask_trackers(s, &mut trackers, tx).await }.in_current_span());
    }
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<SocketAddr>();
    let mut open = 0usize;
    let mut next_key = 0u64;
    let mut retry = tokio::time::interval(Duration::from_secs(5));
    loop {
        while open < MAX_DIALS {
            let Some(addr) = book.queue.pop_front() else {
                break;
            };
            if shared
                .banned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&addr)
            {
                continue;
            }
            book.tried.insert(addr);
            open += 1;
            let s = shared.clone();
            let ended = ended_tx.clone();
            next_key += 1;
            let key = next_key;
            shared
                .keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, addr);
            tasks.spawn(
                async move {
                    if let Err(e) = peer::fetch_from(&s, addr, key).await {
                        debug!(%addr, "metadata peer: {e}");
                    }
                    let _ = ended.send(addr);
                }
                .in_current_span(),
            );
        }
        let (got, total) = shared
            .assembler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .progress();
        ends.progress.send_replace(FetchProgress {
            peers_known: book.known.len(),
            connected: open,
            pieces: (got, total),
        });
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            Some(addrs) = found_rx.recv() => book.learn(addrs, PeerSource::Tracker),
            addr = recv_dht(&mut dht_rx), if dht_rx.is_some() => match addr {
                Some(addr) => book.learn([addr], PeerSource::Dht),
                None => {
                    dht_rx = None;
                    dht_ended = Some(tokio::time::Instant::now());
                }
            },
            Some(_) = ended_rx.recv() => open -= 1,
            Some(info_bytes) = ends.complete.recv() => {
                let peers = book.known.into_iter().collect();
                let _ = ends.result.send(Fetched { info_bytes, peers });
                // Closes the connections and the tracker task.
                shared.cancel.cancel();
                return;
            }
            _ = retry.tick() => {
                if let (Some(d), Some(t)) = (&sources.dht, dht_ended) {
                    if t.elapsed() >= DHT_RETRY {
                        dht_ended = None;
                        dht_rx = Some(d.get_peers(shared.info_hash).await);
                    }
                }
                // Peers tried and gone may have the metadata by now (a seeder that was
                // still checking); try them again, banned ones aside.
                if book.queue.is_empty() && open == 0 {
                    let again: Vec<SocketAddr> = book.tried.drain().collect();
                    book.queue.extend(again);
                }
            }
        }
    }
}

async fn recv_dht(dht: &mut Option<mpsc::Receiver<SocketAddr>>) -> Option<SocketAddr> {
    match dht {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl FetchShared {
    /// The address of the peer with assembler key `key`.
    pub(crate) fn addr_of(&self, key: u64) -> Option<SocketAddr> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.get(&key).copied()
    }
}

async fn ask_trackers(
    shared: Arc<FetchShared>,
    tiers: &mut [Vec<String>],
    found: mpsc::Sender<Vec<SocketAddr>>,
) {
    let mut event = AnnounceEvent::Started;
    loop {
        let mut req = AnnounceRequest::new(shared.info_hash, shared.our_id, shared.listen_port);
        // Unknown until the metadata is: not a seeder.
        req.left = 1;
        req.event = event;
        req.numwant = Some(100);
        let r = tokio::select! {
            r = crate::announce::announce_tiers(tiers, &req) => r,
            _ = shared.cancel.cancelled() => return,
        };
        match r {
            Ok((resp, _)) => {
                event = AnnounceEvent::None;
                if found.send(resp.peers).await.is_err() {
                    return;
                }
            }
            Err(e) => debug!("metadata announce failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(TRACKER_RETRY) => {}
            _ = shared.cancel.cancelled() => return,
        }
    }
}
