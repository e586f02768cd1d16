//! The DHT driver: the tokio shell around [`shoal_proto::dht::Dht`].
//!
//! One task owns the state machine. It feeds it the datagrams the [`crate::udp`]
//! endpoint routes here, sends what it yields through the same endpoint, sleeps until
//! its next timeout, and serves commands from [`DhtHandle`]s: peer lookups (streamed
//! back as they are found), announces, the routing table for saving, counters. It
//! resolves the bootstrap `host:port`s itself, off the session's start-up path. The
//! engine has no default bootstrap routers: a DHT with none and no saved nodes waits
//! for others to contact it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_proto::dht::{Dht, DhtEvent, LookupId};
pub use shoal_proto::dht::{DhtStats, NodeId};
use shoal_proto::InfoHash;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, Instrument};

use crate::udp::UdpEndpoint;

/// Queue of datagrams from the UDP endpoint to the DHT.
pub(crate) const DATAGRAM_QUEUE: usize = 1024;
/// Queue of commands from handles.
const COMMAND_QUEUE: usize = 256;
/// Capacity of a lookup's channel: more than the peers one lookup reports
/// (`shoal_proto::dht` caps them at 1000) plus its end, so sending never fails for
/// want of room.
const LOOKUP_QUEUE: usize = 1024;
/// Bound on resolving one bootstrap name.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// DHT settings of a session.
#[derive(Debug, Clone)]
pub struct DhtConfig {
    /// Nodes to join through, as `host:port` (none by default: the caller chooses
    /// routers, or none for a private network).
    pub bootstrap: Vec<String>,
    /// Nodes saved from an earlier run ([`DhtHandle::nodes`]).
    pub nodes: Vec<(NodeId, SocketAddr)>,
    /// Keep nodes whose id does not match their IP (BEP 42) out of the routing
    /// table; loopback and private addresses are exempt anyway.
    pub enforce_node_id: bool,
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            bootstrap: Vec::new(),
            nodes: Vec::new(),
            enforce_node_id: true,
        }
    }
}

/// What a lookup started with [`DhtHandle::announce`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupEvent {
    /// A peer of the torrent (each reported once per lookup).
    Peer(SocketAddr),
    /// The lookup ended; the channel closes after this.
    Done {
        /// Nodes that answered.
        responded: usize,
        /// Nodes we announced ourselves to.
        announced: usize,
    },
}

enum Sink {
    Peers(mpsc::Sender<SocketAddr>),
    Events(mpsc::Sender<LookupEvent>),
}

enum Command {
    GetPeers(InfoHash, mpsc::Sender<SocketAddr>),
    Announce(InfoHash, u16, mpsc::Sender<LookupEvent>),
    Nodes(oneshot::Sender<Vec<(NodeId, SocketAddr)>>),
    Stats(oneshot::Sender<DhtStats>),
}

/// Talks to the session's DHT task; cheap to clone. Calls on a stopped DHT return
/// empty results (closed channels, no nodes, zero counters).
#[derive(Debug, Clone)]
pub struct DhtHandle {
    tx: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dht::Command")
    }
}

impl DhtHandle {
    /// Looks up peers of `info_hash`; they arrive on the channel as they are found,
    /// which closes when the lookup ends.
    pub async fn get_peers(&self, info_hash: InfoHash) -> mpsc::Receiver<SocketAddr> {
        let (tx, rx) = mpsc::channel(LOOKUP_QUEUE);
        let _ = self.tx.send(Command::GetPeers(info_hash, tx)).await;
        rx
    }

    /// Looks up peers of `info_hash` like [`Self::get_peers`], then announces us on
    /// `port` to the closest nodes that gave a token.
    pub async fn announce(&self, info_hash: InfoHash, port: u16) -> mpsc::Receiver<LookupEvent> {
        let (tx, rx) = mpsc::channel(LOOKUP_QUEUE);
        let _ = self.tx.send(Command::Announce(info_hash, port, tx)).await;
        rx
    }

    /// The routing table's nodes (not bad ones), to save for the next start.
    pub async fn nodes(&self) -> Vec<(NodeId, SocketAddr)> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Nodes(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// Routing table size and other counters.
    pub async fn stats(&self) -> DhtStats {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Stats(tx)).await;
        rx.await.unwrap_or_default()
    }
}

/// Starts the DHT task on `tasks` (it stops on `cancel`): returns its handle and the
/// sender the UDP endpoint routes KRPC datagrams to.
pub(crate) fn start(
    config: DhtConfig,
    endpoint: UdpEndpoint,
    datagrams: mpsc::Receiver<(SocketAddr, Bytes)>,
    tasks: &TaskTracker,
    cancel: CancellationToken,
) -> DhtHandle {
    let (tx, commands) = mpsc::channel(COMMAND_QUEUE);
    // A BEP 42 id needs our public address; a specific public listen address is one.
    let ip = match endpoint.local_addr().map(|a| a.ip()) {
        Ok(std::net::IpAddr::V4(ip)) if !shoal_proto::dht::is_exempt(ip) => Some(ip),
        _ => None::<Ipv4Addr>,
    };
    let proto_config = shoal_proto::dht::DhtConfig {
        enforce_node_id: config.enforce_node_id,
        ..Default::default()
    };
    let dht = Dht::new(proto_config, ip, rand::random(), Instant::now());
    let port = endpoint.local_addr().map(|a| a.port()).unwrap_or(0);
    let span = tracing::info_span!("dht", port, id = %shoal_proto::ids::to_hex(&dht.id().0[..4]));
    let driver = Driver {
        dht,
        endpoint,
        lookups: HashMap::new(),
    };
    tasks.spawn(
        driver
            .run(config, datagrams, commands, cancel)
            .instrument(span),
    );
    DhtHandle { tx }
}

struct Driver {
    dht: Dht,
    endpoint: UdpEndpoint,
    lookups: HashMap<LookupId, Sink>,
}

impl Driver {
    async fn run(
        mut self,
        config: DhtConfig,
        mut datagrams: mpsc::Receiver<(SocketAddr, Bytes)>,
        mut commands: mpsc::Receiver<Command>,
        cancel: CancellationToken,
    ) {
        for (id, addr) in &config.nodes {
            self.dht.add_node(Instant::now(), *id, *addr);
        }
        let routers = tokio::select! {
            r = resolve(&config.bootstrap) => r,
            () = cancel.cancelled() => return,
        };
        self.dht.bootstrap(Instant::now(), &routers);
        loop {
            self.flush().await;
            let deadline = self.dht.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                d = datagrams.recv() => match d {
                    Some((from, bytes)) => self.dht.handle_input(Instant::now(), from, &bytes),
                    None => return,
                },
                c = commands.recv() => match c {
                    Some(c) => self.command(c),
                    None => return,
                },
                () = sleep => self.dht.handle_timeout(Instant::now()),
            }
        }
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::GetPeers(ih, tx) => {
                let id = self.dht.get_peers(now, ih);
                self.lookups.insert(id, Sink::Peers(tx));
            }
            Command::Announce(ih, port, tx) => {
                let id = self.dht.announce(now, ih, Some(port));
                self.lookups.insert(id, Sink::Events(tx));
            }
            Command::Nodes(tx) => {
                let _ = tx.send(self.dht.nodes());
            }
            Command::Stats(tx) => {
                let _ = tx.send(self.dht.stats(now));
            }
        }
    }

    /// Sends every datagram waiting and hands events to their lookups.
    async fn flush(&mut self) {
        while let Some((to, bytes)) = self.dht.poll_transmit() {
            if let Err(e) = self.endpoint.send_to(&bytes, to).await {
                debug!(%to, "dht send: {e}");
            }
        }
        while let Some(e) = self.dht.poll_event() {
            match e {
                DhtEvent::Peers { lookup, peers } => match self.lookups.get(&lookup) {
                    Some(Sink::Peers(tx)) => peers.iter().for_each(|p| {
                        let _ = tx.try_send(*p);
                    }),
                    Some(Sink::Events(tx)) => peers.iter().for_each(|p| {
                        let _ = tx.try_send(LookupEvent::Peer(*p));
                    }),
                    None => {}
                },
                DhtEvent::LookupDone {
                    lookup,
                    responded,
                    announced,
                } => {
                    if let Some(Sink::Events(tx)) = self.lookups.remove(&lookup) {
                        let _ = tx.try_send(LookupEvent::Done {
                            responded,
                            announced,
                        });
                    }
                }
            }
        }
    }
}

/// Resolves `host:port` names to addresses; names that fail are logged and skipped.
async fn resolve(names: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for name in names {
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(name.as_str())).await {
            Ok(Ok(addrs)) => out.extend(addrs.filter(SocketAddr::is_ipv4)),
            Ok(Err(e)) => debug!(%name, "dht bootstrap: cannot resolve: {e}"),
            Err(_) => debug!(%name, "dht bootstrap: resolving timed out"),
        }
    }
    out
}
