//! The session: our peer identity, the listening socket shared by all torrents, the
//! global rate limits, and the set of running torrents.
//!
//! Incoming connections are read up to the handshake, then handed to the torrent the
//! handshake names; unknown info-hashes are dropped. The first 20 bytes tell a
//! plaintext handshake from MSE (anything else); which of the two are taken follows
//! [`SessionConfig::encryption`].
//!
//! With [`SessionConfig::dht`], the session also binds UDP on the peer port's number
//! ([`crate::udp`]) and runs a DHT node ([`crate::dht`]) that every torrent not marked
//! private asks for peers.
//!
//! Task tree: the session's [`TaskTracker`] owns the accept loop, one task per
//! incoming connection until its handshake is read (then the torrent's tracker owns
//! it), and the UDP receiver and DHT tasks; [`Session::shutdown`] cancels them, stops
//! every torrent and waits for both.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_proto::magnet::Magnet;
use shoal_proto::metainfo::Metainfo;
use shoal_proto::wire::Handshake;
use shoal_proto::{InfoHash, PeerId};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, Instrument};

use crate::dht::{DhtConfig, DhtHandle};
use crate::lsd::{Lsd, LsdConfig, LsdError, LsdHandle, LsdTorrents};
use crate::peer::handshake::{self, PREFIX_LEN};
pub use crate::peer::mse::EncryptionPolicy;
use crate::peer::{mse, PeerError, Transport};
pub use crate::rate::Limits;
use crate::torrent::{PeerSource, Shared, TorrentHandle, TorrentOptions};
use crate::udp::{UdpEndpoint, UdpRoutes};

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
    /// Could not bind the UDP socket of the DHT.
    #[error("cannot bind UDP {addr} for the DHT: {source}; choose another port with --port")]
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
    /// Parent of every torrent's token; cancelled last on shutdown.
    cancel: CancellationToken,
    /// Stops the accept loop, the incoming handshakes, the UDP receiver and the DHT
    /// (a child of `cancel`), first on shutdown so that no connection reaches a
    /// torrent being stopped. Torrents see a stopped DHT as one that finds nothing.
    accept_cancel: CancellationToken,
    /// The accept loop, the incoming connections still reading their handshake, the
    /// LSD task, the UDP receiver and the DHT task.
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
        let listener = bind(&config).await?;
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
        let dht = match &config.dht {
            Some(dht_config) => {
                let addr = SocketAddr::new(config.listen.ip(), listen_port);
                let dht = start_dht(addr, dht_config.clone(), &tasks, &accept_cancel).await;
                Some(dht.map_err(|source| SessionError::Udp { addr, source })?)
            }
            None => None,
        };
        let inner = Arc::new(Inner {
            lsd: lsd.as_ref().map(Lsd::handle),
            limits: Arc::new(Limits::new(config.max_up, config.max_down)),
            config,
            listen_port,
            torrents: Mutex::new(HashMap::new()),
            dht,
            accept_cancel,
            cancel,
            tasks,
        });
        let span = tracing::info_span!("accept", port = listen_port);
        inner
            .tasks
            .spawn(accept_loop(inner.clone(), listener).instrument(span));
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

/// Binds the UDP endpoint on `addr` and starts its receiver and the DHT on `tasks`.
async fn start_dht(
    addr: SocketAddr,
    config: DhtConfig,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> std::io::Result<DhtHandle> {
    let endpoint = UdpEndpoint::bind(addr).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(crate::dht::DATAGRAM_QUEUE);
    let routes = UdpRoutes {
        dht: Some(tx),
        // The uTP driver plugs in here.
        utp: None,
    };
    endpoint.start_receiver(routes, tasks, cancel.clone());
    Ok(crate::dht::start(
        config,
        endpoint,
        rx,
        tasks,
        cancel.clone(),
    ))
}

async fn bind(config: &SessionConfig) -> Result<TcpListener, SessionError> {
    if config.listen.port() == 0 {
        if let Some((lo, hi)) = config.port_range {
            for port in lo..=hi {
                if let Ok(l) = bind_one(SocketAddr::new(config.listen.ip(), port)).await {
                    return Ok(l);
                }
            }
        }
    }
    bind_one(config.listen)
        .await
        .map_err(|source| SessionError::Listen {
            addr: config.listen,
            source,
        })
}

/// Binds `addr`; the IPv4 wildcard listens on both stacks (`[::]` with IPv4 mapped in)
/// when the host has IPv6, so IPv6 peers reach us too.
async fn bind_one(addr: SocketAddr) -> std::io::Result<TcpListener> {
    if addr.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
        match bind_dual_stack(addr.port()) {
            Ok(l) => return Ok(l),
            Err(e) => debug!("no dual-stack listener on port {}: {e}", addr.port()),
        }
    }
    TcpListener::bind(addr).await
}

fn bind_dual_stack(port: u16) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    s.set_only_v6(false)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    let addr = SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), port);
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(std::net::TcpListener::from(s))
}

/// Incoming connections that may be between accept and handshake at once; more are
/// closed at once (a flood of silent connections cannot pile up tasks and sockets).
const MAX_HALF_OPEN: usize = 256;

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let half_open = Arc::new(Semaphore::new(MAX_HALF_OPEN));
    loop {
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                // A dual-stack listener reports IPv4 peers as `::ffff:a.b.c.d`.
                Ok((s, a)) => (s, SocketAddr::new(a.ip().to_canonical(), a.port())),
                Err(e) => {
                    debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = inner.accept_cancel.cancelled() => return,
        };
        let Ok(permit) = half_open.clone().try_acquire_owned() else {
            debug!(%addr, "too many incoming handshakes; closing");
            continue;
        };
        let span = tracing::info_span!("incoming", %addr);
        let cancel = inner.accept_cancel.clone();
        let task = incoming(inner.clone(), stream, addr, permit);
        inner.tasks.spawn(
            async move {
                tokio::select! {
                    () = task => {}
                    () = cancel.cancelled() => debug!("handshake abandoned: shutting down"),
                }
            }
            .instrument(span),
        );
    }
}

/// Reads an incoming connection's handshake (after an MSE handshake, if that is what
/// it opens with) and hands it to the torrent it names.
async fn incoming(
    inner: Arc<Inner>,
    stream: TcpStream,
    addr: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    if let Err(e) = sniff(&inner, stream, addr, permit).await {
        debug!("incoming connection refused: {e}");
    }
}

async fn sniff(
    inner: &Arc<Inner>,
    mut stream: TcpStream,
    addr: SocketAddr,
    permit: OwnedSemaphorePermit,
) -> Result<(), PeerError> {
    let policy = inner.config.encryption;
    let mut first = [0u8; PREFIX_LEN];
    // An MSE initiator sends at least its 96-byte key at once, so 20 bytes come
    // either way.
    tokio::time::timeout(handshake::HANDSHAKE_TIMEOUT, stream.read_exact(&mut first))
        .await
        .map_err(|_| PeerError::Timeout("handshake"))??;
    if handshake::is_plaintext(&first) {
        if !policy.accepts_plaintext() {
            return Err(PeerError::Closed(
                "plaintext refused: encryption is required",
            ));
        }
        let hs = handshake::read_handshake_after(&mut stream, &first).await?;
        return hand_over(inner, stream, addr, hs, permit);
    }
    let accept = policy.incoming_methods().ok_or(PeerError::Closed(
        "not a BitTorrent handshake, and encryption is off",
    ))?;
    let lookup = |req2: &[u8; 20]| {
        // A handful of torrents per node: hashing each is cheaper than keeping a map.
        let map = inner.torrents.lock().unwrap_or_else(|p| p.into_inner());
        map.keys()
            .copied()
            .find(|h| shoal_proto::mse::req2_hash(h) == *req2)
    };
    let (mut s, skey) = mse::accept(stream, &first, accept, lookup).await?;
    let hs = handshake::read_handshake(&mut s).await?;
    if hs.info_hash != skey {
        return Err(PeerError::Protocol(
            "handshake names another torrent than the encryption handshake".into(),
        ));
    }
    hand_over(inner, s, addr, hs, permit)
}

/// Gives a handshaken connection to the torrent it names.
fn hand_over<T: Transport + AsyncWrite + Unpin>(
    inner: &Arc<Inner>,
    stream: T,
    addr: SocketAddr,
    hs: Handshake,
    permit: OwnedSemaphorePermit,
) -> Result<(), PeerError> {
    let shared = {
        let map = inner.torrents.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&hs.info_hash).map(|(s, _)| s.clone())
    };
    match shared {
        Some(s) => {
            s.accept(stream, addr, hs, permit);
            Ok(())
        }
        None => Err(PeerError::Protocol(format!(
            "incoming peer for unknown torrent {}",
            hs.info_hash
        ))),
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
