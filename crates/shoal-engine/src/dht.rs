//! The DHT driver: the tokio shell around [`shoal_proto::dht::Dht`].
//!
//! One task owns the state machine. It feeds it the datagrams the [`crate::udp`]
//! endpoint routes here, sends what it yields through the same endpoint, sleeps until
//! its next timeout, and serves commands from [`DhtHandle`]s: peer lookups (streamed
//! back as they are found), announces, the routing table for saving, counters. It
//! resolves the bootstrap `host:port`s itself, off the session's start-up path. The
//! engine has no default bootstrap routers: a DHT with none and no saved nodes waits
//! for others to contact it.
//!
//! BEP 32: the task runs one state machine per address family the UDP endpoint has a
//! socket of, with the same node id unless BEP 42 ties it to a public address.
//! Datagrams go to the DHT of their source's family (which sees the other one, for
//! answers whose `want` asks for both); nodes of the other family that a DHT learns
//! go to the other one. Bootstrap addresses and saved nodes go to the DHT of their
//! family. A handle's lookup runs in every DHT; peers from all are merged into one
//! channel, which ends when the last lookup does.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_proto::dht::{Dht, DhtEvent, LookupId};
pub use shoal_proto::dht::{DhtStats, Family, NodeId};
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
    Stats(oneshot::Sender<FamilyStats>),
}

/// Counters of each family's DHT (BEP 32); `None` where that DHT does not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FamilyStats {
    /// The IPv4 DHT.
    pub v4: Option<DhtStats>,
    /// The IPv6 DHT.
    pub v6: Option<DhtStats>,
}

impl FamilyStats {
    /// Both families' counters added up.
    pub fn total(&self) -> DhtStats {
        let mut t = DhtStats::default();
        for s in self.v4.iter().chain(&self.v6) {
            t.good += s.good;
            t.questionable += s.questionable;
            t.pending += s.pending;
            t.lookups += s.lookups;
            t.torrents += s.torrents;
        }
        t
    }
}

/// Talks to the session's DHT task; cheap to clone. Calls on a stopped DHT return
/// empty results (closed channels, no nodes, zero counters).
#[derive(Debug, Clone)]
pub struct DhtHandle {
    tx: mpsc::Sender<Command>,
    /// Whether an IPv6 DHT runs.
    ipv6: bool,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dht::Command")
    }
}

impl DhtHandle {
    /// Looks up peers of `info_hash` in every family's DHT; they arrive on the channel
    /// as they are found, which closes when the last lookup ends.
    pub async fn get_peers(&self, info_hash: InfoHash) -> mpsc::Receiver<SocketAddr> {
        let (tx, rx) = mpsc::channel(LOOKUP_QUEUE);
        let _ = self.tx.send(Command::GetPeers(info_hash, tx)).await;
        rx
    }

    /// Looks up peers of `info_hash` like [`Self::get_peers`], then announces us on
    /// `port` to the closest nodes that gave a token, in each family's DHT; `Done`
    /// comes once, with the sums, when the last family's lookup ends.
    pub async fn announce(&self, info_hash: InfoHash, port: u16) -> mpsc::Receiver<LookupEvent> {
        let (tx, rx) = mpsc::channel(LOOKUP_QUEUE);
        let _ = self.tx.send(Command::Announce(info_hash, port, tx)).await;
        rx
    }

    /// The routing tables' nodes (not bad ones; both families), to save for the next
    /// start.
    pub async fn nodes(&self) -> Vec<(NodeId, SocketAddr)> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Nodes(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// Routing table size and other counters, both families added up.
    pub async fn stats(&self) -> DhtStats {
        self.family_stats().await.total()
    }

    /// Counters per family.
    pub async fn family_stats(&self) -> FamilyStats {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Stats(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// Whether the IPv6 DHT (BEP 32) runs beside the IPv4 one (or alone, on an IPv6
    /// listen address).
    pub fn ipv6(&self) -> bool {
        self.ipv6
    }
}

/// Starts the DHT task on `tasks` (it stops on `cancel`): returns its handle and the
/// sender the UDP endpoint routes KRPC datagrams to. One DHT runs per family the
/// endpoint has a socket of (BEP 32): IPv4 on an IPv4 socket, IPv6 on an IPv6 one.
pub(crate) fn start(
    config: DhtConfig,
    endpoint: UdpEndpoint,
    datagrams: mpsc::Receiver<(SocketAddr, Bytes)>,
    tasks: &TaskTracker,
    cancel: CancellationToken,
) -> DhtHandle {
    let (tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let local = endpoint.local_addr().ok();
    let first = local.map(Family::of);
    let has_v6 = first == Some(Family::V6) || endpoint.local_addr6().is_some();
    let has_v4 = first == Some(Family::V4);
    let both = has_v4 && has_v6;
    let proto_config = |family| shoal_proto::dht::DhtConfig {
        enforce_node_id: config.enforce_node_id,
        family,
        other_family: both,
        ..Default::default()
    };
    // A BEP 42 id needs our public address; a specific public listen address is one.
    let public = local
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified() && !shoal_proto::dht::is_exempt(*ip));
    let now = Instant::now();
    let v4 = has_v4.then(|| Dht::new(proto_config(Family::V4), public, rand::random(), now));
    let v6 = has_v6.then(|| {
        let config = proto_config(Family::V6);
        match (&v4, public) {
            // BEP 32: one id in both DHTs, unless BEP 42 binds it to an address.
            (Some(v4), None) => Dht::new_with_id(config, v4.id(), rand::random(), now),
            _ => Dht::new(config, public.filter(IpAddr::is_ipv6), rand::random(), now),
        }
    });
    let port = local.map_or(0, |a| a.port());
    let id = v4
        .as_ref()
        .or(v6.as_ref())
        .map(|d| d.id().0)
        .unwrap_or_default();
    let span = tracing::info_span!("dht", port, id = %shoal_proto::ids::to_hex(&id[..4]));
    let driver = Driver {
        v4,
        v6,
        endpoint,
        lookups: HashMap::new(),
        sinks: HashMap::new(),
        next_sink: 0,
    };
    tasks.spawn(
        driver
            .run(config, datagrams, commands, cancel)
            .instrument(span),
    );
    DhtHandle { tx, ipv6: has_v6 }
}

/// A handle's request, served by one lookup per family.
struct Request {
    sink: Sink,
    /// Lookups still running.
    running: usize,
    responded: usize,
    announced: usize,
}

struct Driver {
    v4: Option<Dht>,
    v6: Option<Dht>,
    endpoint: UdpEndpoint,
    /// Each family's lookups, by the request they serve.
    lookups: HashMap<(Family, LookupId), u64>,
    sinks: HashMap<u64, Request>,
    next_sink: u64,
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
            if let Some(d) = self.dht_mut(Family::of(*addr)) {
                d.add_node(Instant::now(), *id, *addr);
            }
        }
        let routers = tokio::select! {
            r = resolve(&config.bootstrap) => r,
            () = cancel.cancelled() => return,
        };
        // Each DHT keeps the addresses of its own family.
        for d in self.v4.iter_mut().chain(self.v6.iter_mut()) {
            d.bootstrap(Instant::now(), &routers);
        }
        loop {
            self.flush().await;
            let deadline = self
                .v4
                .iter()
                .chain(&self.v6)
                .filter_map(Dht::poll_timeout)
                .min();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                d = datagrams.recv() => match d {
                    Some((from, bytes)) => self.input(from, &bytes),
                    None => return,
                },
                c = commands.recv() => match c {
                    Some(c) => self.command(c),
                    None => return,
                },
                () = sleep => {
                    let now = Instant::now();
                    self.v4.iter_mut().chain(self.v6.iter_mut()).for_each(|d| d.handle_timeout(now));
                }
            }
        }
    }

    fn dht_mut(&mut self, family: Family) -> Option<&mut Dht> {
        match family {
            Family::V4 => self.v4.as_mut(),
            Family::V6 => self.v6.as_mut(),
        }
    }

    /// Hands a datagram to the DHT of its family, with the other for `want` answers.
    fn input(&mut self, from: SocketAddr, bytes: &[u8]) {
        let now = Instant::now();
        let (own, other) = match Family::of(from) {
            Family::V4 => (self.v4.as_mut(), self.v6.as_ref()),
            Family::V6 => (self.v6.as_mut(), self.v4.as_ref()),
        };
        if let Some(d) = own {
            d.handle_input_with(now, from, bytes, other);
        }
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        let (ih, port, sink) = match c {
            Command::GetPeers(ih, tx) => (ih, None, Sink::Peers(tx)),
            Command::Announce(ih, port, tx) => (ih, Some(port), Sink::Events(tx)),
            Command::Nodes(tx) => {
                let dhts = self.v4.iter().chain(&self.v6);
                let _ = tx.send(dhts.flat_map(Dht::nodes).collect());
                return;
            }
            Command::Stats(tx) => {
                let _ = tx.send(FamilyStats {
                    v4: self.v4.as_ref().map(|d| d.stats(now)),
                    v6: self.v6.as_ref().map(|d| d.stats(now)),
                });
                return;
            }
        };
        let key = self.next_sink;
        self.next_sink += 1;
        let mut running = 0;
        for d in self.v4.iter_mut().chain(self.v6.iter_mut()) {
            let lid = match port {
                None => d.get_peers(now, ih),
                Some(p) => d.announce(now, ih, Some(p)),
            };
            self.lookups.insert((d.family(), lid), key);
            running += 1;
        }
        if running > 0 {
            let request = Request {
                sink,
                running,
                responded: 0,
                announced: 0,
            };
            self.sinks.insert(key, request);
        }
    }

    /// Sends every datagram waiting and hands events to their lookups.
    async fn flush(&mut self) {
        for family in [Family::V4, Family::V6] {
            while let Some((to, bytes)) = self.dht_mut(family).and_then(Dht::poll_transmit) {
                if let Err(e) = self.endpoint.send_to(&bytes, to).await {
                    debug!(%to, "dht send: {e}");
                }
            }
            while let Some(e) = self.dht_mut(family).and_then(Dht::poll_event) {
                self.event(family, e);
            }
        }
    }

    fn event(&mut self, family: Family, e: DhtEvent) {
        match e {
            DhtEvent::Peers { lookup, peers } => {
                let key = self.lookups.get(&(family, lookup));
                match key.and_then(|k| self.sinks.get(k)).map(|r| &r.sink) {
                    Some(Sink::Peers(tx)) => peers.iter().for_each(|p| {
                        let _ = tx.try_send(*p);
                    }),
                    Some(Sink::Events(tx)) => peers.iter().for_each(|p| {
                        let _ = tx.try_send(LookupEvent::Peer(*p));
                    }),
                    None => {}
                }
            }
            DhtEvent::LookupDone {
                lookup,
                responded,
                announced,
            } => {
                let Some(key) = self.lookups.remove(&(family, lookup)) else {
                    return;
                };
                let Some(r) = self.sinks.get_mut(&key) else {
                    return;
                };
                r.running = r.running.saturating_sub(1);
                r.responded += responded;
                r.announced += announced;
                if r.running > 0 {
                    return;
                }
                // The last family's lookup ended: the channel closes with the request.
                if let Some(Request {
                    sink: Sink::Events(tx),
                    responded,
                    announced,
                    ..
                }) = self.sinks.remove(&key)
                {
                    let _ = tx.try_send(LookupEvent::Done {
                        responded,
                        announced,
                    });
                }
            }
            DhtEvent::OtherFamilyNodes { nodes } => {
                // BEP 32: the other DHT pings them, and keeps those that answer.
                let now = Instant::now();
                if let Some(d) = self.dht_mut(family.other()) {
                    nodes.iter().for_each(|(id, a)| d.add_node(now, *id, *a));
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
            Ok(Ok(addrs)) => out.extend(addrs),
            Ok(Err(e)) => debug!(%name, "dht bootstrap: cannot resolve: {e}"),
            Err(_) => debug!(%name, "dht bootstrap: resolving timed out"),
        }
    }
    out
}
