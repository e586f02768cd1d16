//! The session: our peer identity, the listening socket shared by all torrents, the
//! global rate limits, and the set of running torrents.
//!
//! Incoming connections (TCP or uTP, `incoming.rs`) are read up to the handshake,
//! then handed to the torrent the handshake names; unknown info-hashes are dropped.
//! The first 20 bytes tell a plaintext handshake from MSE (anything else); which of
//! the two are taken follows [`SessionConfig::encryption`].
//!
//! Unless both uTP and the DHT are off, the session also binds UDP on the peer
//! port's IP and number ([`crate::udp`]): uTP ([`crate::utp`], [`SessionConfig::utp`])
//! takes the datagrams that are not KRPC, and dials try it before TCP
//! ([`crate::peer::connect`]); with [`SessionConfig::dht`] a DHT node
//! ([`crate::dht`]) takes the rest, and every torrent not marked private asks it for
//! peers.
//!
//! Task tree: the session's [`TaskTracker`] owns the TCP and uTP accept loops, one
//! task per incoming connection until its handshake is read (then the torrent's
//! tracker owns it), the UDP receiver, the uTP driver and the DHT task;
//! [`Session::shutdown`] cancels them, stops every torrent and waits for both.

mod bind;
mod incoming;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_proto::magnet::Magnet;
use shoal_proto::metainfo::Metainfo;
use shoal_proto::{InfoHash, PeerId};
use thiserror::Error;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::dht::{DhtConfig, DhtHandle};
use crate::lsd::{Lsd, LsdConfig, LsdError, LsdHandle, LsdTorrents};
use crate::peer::connect::Connector;
pub use crate::peer::mse::EncryptionPolicy;
pub use crate::rate::Limits;
use crate::torrent::{PeerSource, Shared, TorrentHandle, TorrentOptions};
use bind::{bind, start_udp};
use incoming::MAX_HALF_OPEN;

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our peer ID.
    pub peer_id: PeerId,
    /// Address to listen on for peers; port 0 picks a free one.
    pub listen: SocketAddr,
    /// When `listen` has port 0 and this is set, try these ports first (in order).
    pub port_range: Option<(u16, u16)>,
    /// Upload limit in bytes per second (0 = unlimited).
    pub max_up: u64,
    /// Download limit in bytes per second (0 = unlimited).
    pub max_down: u64,
    /// Local Service Discovery (BEP 14) on this interface; `None` (the default): off.
    pub lsd: Option<LsdConfig>,
    /// Which peer connections use MSE (protocol encryption), both ways.
    pub encryption: EncryptionPolicy,
    /// Exchange peers with connected peers (BEP 11 `ut_pex`) on public torrents.
    pub pex: bool,
    /// Run a DHT node (BEP 5) on the peer port's number over UDP; `None`: no DHT.
    pub dht: Option<DhtConfig>,
    /// Accept uTP (BEP 29) connections on the peer port's number over UDP, and dial
    /// peers over uTP first, TCP after 3 s without an answer (default: on).
    pub utp: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            peer_id: PeerId::with_random(rand::random()),
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            port_range: Some((6000, 6100)),
            max_up: 0,
            max_down: 0,
            lsd: None,
            encryption: EncryptionPolicy::default(),
            pex: true,
            dht: None,
            utp: true,
        }
    }
}

/// Errors that stop a session or refuse a torrent.
#[derive(Debug, Error)]
pub enum SessionError {
    /// Could not listen.
    #[error("cannot listen for peers on {addr}: {source}; choose another port with --port")]
    Listen {
        /// The address tried.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Could not bind the UDP socket of uTP and the DHT.
    #[error(
        "cannot bind UDP {addr} for uTP and the DHT: {source}; choose another port with \
         --port (or turn uTP off with --utp false)"
    )]
    Udp {
        /// The address tried.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The torrent is already in the session.
    #[error("torrent {0} is already added")]
    Duplicate(InfoHash),
    /// Local Service Discovery was asked for but its socket could not be set up.
    #[error(transparent)]
    Lsd(LsdError),
}

/// A stable `key` announce parameter derived from the peer ID.
pub(crate) fn announce_key(id: &PeerId) -> String {
    let h = InfoHash::of(&id.0);
    h.to_hex()[..8].to_string()
}

struct Inner {
    config: SessionConfig,
    listen_port: u16,
    limits: Arc<Limits>,
    torrents: Mutex<HashMap<InfoHash, (Arc<Shared>, TorrentHandle)>>,
    /// The DHT, when configured; torrents that are not private use it.
    dht: Option<DhtHandle>,
    /// How torrents dial (uTP first when uTP is on, then TCP).
    connector: Arc<Connector>,
    /// Incoming connections between accept and handshake, over both transports.
    half_open: Arc<Semaphore>,
    /// Parent of every torrent's token; cancelled last on shutdown.
    cancel: CancellationToken,
    /// Stops the accept loop, the incoming handshakes, the UDP receiver and the DHT
    /// (a child of `cancel`), first on shutdown so that no connection reaches a
    /// torrent being stopped. Torrents see a stopped DHT as one that finds nothing.
    accept_cancel: CancellationToken,
    /// The accept loops, the incoming connections still reading their handshake, the
    /// LSD task, the UDP receiver, the uTP driver and the DHT task.
    tasks: TaskTracker,
    /// Wakes the LSD task when a torrent is added; `None` when LSD is off.
    lsd: Option<LsdHandle>,
}

/// How long shutdown waits for the accept loop and incoming handshakes after
/// cancelling them. They return at once on the token; the bound is for a task stuck
/// where it does not look at it.
const ACCEPT_GRACE: Duration = Duration::from_secs(5);

/// A running session.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl Session {
    /// Binds the peer listener and starts accepting connections.
    pub async fn start(config: SessionConfig) -> Result<Session, SessionError> {
        let want_udp = config.utp || config.dht.is_some();
        let (listener, udp) = bind(&config, want_udp).await?;
        let listen_port = listener
            .local_addr()
            .map_err(|source| SessionError::Listen {
                addr: config.listen,
                source,
            })?
            .port();
        let lsd = config
            .lsd
            .as_ref()
            .map(Lsd::bind)
            .transpose()
            .map_err(SessionError::Lsd)?;
        let cancel = CancellationToken::new();
        let accept_cancel = cancel.child_token();
        let tasks = TaskTracker::new();
        let (dht, utp) = match udp {
            Some(endpoint) => start_udp(&config, endpoint, &tasks, &accept_cancel),
            None => (None, None),
        };
        let inner = Arc::new(Inner {
            lsd: lsd.as_ref().map(Lsd::handle),
            limits: Arc::new(Limits::new(config.max_up, config.max_down)),
            config,
            listen_port,
            torrents: Mutex::new(HashMap::new()),
            dht,
            connector: Arc::new(Connector::new(utp.clone())),
            half_open: Arc::new(Semaphore::new(MAX_HALF_OPEN)),
            accept_cancel,
            cancel,
            tasks,
        });
        let span = tracing::info_span!("accept", port = listen_port);
        inner
            .tasks
            .spawn(incoming::tcp_accept_loop(inner.clone(), listener).instrument(span));
        if let Some(utp) = utp {
            let span = tracing::info_span!("utp_accept", port = listen_port);
            inner
                .tasks
                .spawn(incoming::utp_accept_loop(inner.clone(), utp).instrument(span));
        }
        if let Some(lsd) = lsd {
            // Stopped with the accept loop: both bring peers to torrents being stopped.
            let cancel = inner.accept_cancel.clone();
            let torrents: Arc<dyn LsdTorrents> = inner.clone();
            let span = tracing::info_span!("lsd");
            inner
                .tasks
                .spawn(lsd.run(torrents, listen_port, cancel).instrument(span));
        }
        Ok(Session { inner })
    }

    /// The port peers connect to.
    pub fn listen_port(&self) -> u16 {
        self.inner.listen_port
    }

    /// Our peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.inner.config.peer_id
    }

    /// The DHT, when the session runs one (to save its nodes, show its size).
    pub fn dht(&self) -> Option<DhtHandle> {
        self.inner.dht.clone()
    }

    /// Adds a torrent and starts checking, announcing and transferring.
    pub fn add_torrent(
        &self,
        meta: Metainfo,
        opts: TorrentOptions,
    ) -> Result<TorrentHandle, SessionError> {
        let mut map = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if map.contains_key(&meta.info_hash) {
            return Err(SessionError::Duplicate(meta.info_hash));
        }
        let shared = Shared::new(
            Arc::new(meta),
            self.inner.config.peer_id,
            self.inner.listen_port,
            self.inner.limits.clone(),
            self.inner.cancel.child_token(),
        );
        let _ = shared.encryption.set(self.inner.config.encryption);
        shared
            .pex
            .store(self.inner.config.pex, std::sync::atomic::Ordering::Relaxed);
        let _ = shared.connector.set(self.inner.connector.clone());
        // BEP 27: a private torrent's peers come from its trackers only.
        let dht = self.inner.dht.clone().filter(|_| !shared.meta.info.private);
        let handle = TorrentHandle::start(shared.clone(), opts, dht);
        map.insert(shared.info_hash(), (shared, handle.clone()));
        if let Some(lsd) = &self.inner.lsd {
            lsd.torrent_added();
        }
        Ok(handle)
    }

    /// The running torrents.
    pub fn torrents(&self) -> Vec<TorrentHandle> {
        let map = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.values().map(|(_, h)| h.clone()).collect()
    }

    /// The torrent with this info-hash, if running.
    pub fn torrent(&self, id: &InfoHash) -> Option<TorrentHandle> {
        let map = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(id).map(|(_, h)| h.clone())
    }

    /// Stops a torrent (peers, trackers) and forgets it; its data stays on disk.
    /// Returns false when it was not running.
    pub async fn remove_torrent(&self, id: &InfoHash) -> bool {
        let entry = {
            let mut map = self
                .inner
                .torrents
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            map.remove(id)
        };
        match entry {
            Some((_, h)) => {
                h.stop().await;
                true
            }
            None => false,
        }
    }

    /// Starts fetching the info dictionary of the torrent `magnet` names, from the
    /// link's peers and trackers (and the DHT when the session runs one). It stops on
    /// [`MetadataFetch::cancel`](crate::magnet::MetadataFetch::cancel) or shutdown.
    pub fn fetch_metadata(&self, magnet: &Magnet) -> crate::magnet::MetadataFetch {
        let sources = crate::magnet::Sources {
            magnet: magnet.clone(),
            dht: self.inner.dht.clone(),
        };
        crate::magnet::start(
            self.inner.config.peer_id,
            self.inner.listen_port,
            sources,
            &self.inner.tasks,
            self.inner.accept_cancel.child_token(),
        )
    }

    /// Changes the global rate limits (bytes per second, 0 = unlimited).
    pub fn set_limits(&self, up: u64, down: u64) {
        self.inner.limits.set(up, down);
    }

    /// Stops the listener and every torrent, and waits (a bounded time) for every task
    /// the session started: the accept loop, incoming handshakes, and each torrent's
    /// tasks (see [`TorrentHandle::stop`]).
    pub async fn shutdown(&self) {
        self.inner.accept_cancel.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(ACCEPT_GRACE, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = self.inner.tasks.len(),
                "incoming connections still open after shutdown"
            );
        }
        let handles: Vec<TorrentHandle> = {
            let map = self
                .inner
                .torrents
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            map.values().map(|(_, h)| h.clone()).collect()
        };
        for h in &handles {
            h.stop().await;
        }
        self.inner.cancel.cancel();
    }

    /// The session's own tasks (accept loop, incoming handshakes), for tests.
    #[cfg(test)]
    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }
}

impl LsdTorrents for Inner {
    fn public_info_hashes(&self) -> Vec<InfoHash> {
        let map = self.torrents.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, (s, _))| !s.meta.info.private)
            .map(|(h, _)| *h)
            .collect()
    }

    fn add_lsd_peer(&self, hash: &InfoHash, addr: SocketAddr) -> bool {
        let shared = {
            let map = self.torrents.lock().unwrap_or_else(|p| p.into_inner());
            map.get(hash).map(|(s, _)| s.clone())
        };
        // Private torrents take peers from their tracker only (BEP 27).
        match shared {
            Some(s) if !s.meta.info.private => {
                s.add_peers(&[addr], PeerSource::Lsd);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests;
