//! The Mainline DHT (BEP 5) as a sans-IO state machine, with BEP 42 node ids and
//! BEP 32's IPv6 DHT.
//!
//! [`Dht`] is one DHT node in one address family ([`Family`], from
//! [`DhtConfig::family`]). It owns no socket, clock or randomness: the
//! driver feeds every datagram to [`Dht::handle_input`], sends what
//! [`Dht::poll_transmit`] yields, calls [`Dht::handle_timeout`] once
//! [`Dht::poll_timeout`] is reached, and takes [`DhtEvent`]s from [`Dht::poll_event`].
//! `now` comes with every call; ids, transaction ids and token secrets are drawn from
//! a seed passed to [`Dht::new`].
//!
//! Parts: [`krpc`] (messages), [`NodeId`] (XOR distance, BEP 42), the routing table
//! (`table`: 160 buckets of [`K`]), `announce_peer` tokens (`token`: keyed hash of the
//! querier's IP, secret rotated every 5 min), the peer store (`store`: announced peers,
//! 30 min, bounded) and iterative lookups (`lookup`: alpha 3, ends when the closest
//! [`K`] answered). The node answers `ping`, `find_node`, `get_peers` and
//! `announce_peer` from others; it looks up nodes ([`Dht::bootstrap`], bucket
//! refreshes every 15 min) and peers ([`Dht::get_peers`], [`Dht::announce`]).
//!
//! Invariants: a response counts only from the address its transaction id was sent
//! to; every query is answered or times out after [`DhtConfig::query_timeout`];
//! everything fed from the network is bounded (lookups, candidates, peers, store).
//! With [`DhtConfig::enforce_node_id`], nodes whose id does not match their address
//! under BEP 42 are answered but never enter the routing table (loopback and private
//! addresses are exempt).
//!
//! BEP 32: the IPv4 and IPv6 DHTs are separate networks, each with its own routing
//! table, tokens and peer store; a dual-stack driver runs one `Dht` per family (with
//! [`DhtConfig::other_family`] set) on one socket each. Datagrams from the other family
//! are ignored. Answers to `find_node` and `get_peers` hold `nodes` and/or `nodes6` as
//! the query's `want` asks (by default, the family it came on); the other family's
//! nodes come from the other `Dht`, passed to [`Dht::handle_input_with`]. Our bootstrap
//! lookups ask for both families when the other DHT runs, and nodes of the other family
//! found in answers come out as [`DhtEvent::OtherFamilyNodes`] for the driver to hand
//! to the other `Dht` ([`Dht::add_node`]). `values` hold peers of the family asked on.
//!
//! ```
//! use std::time::Instant;
//! use shoal_proto::dht::{Dht, DhtConfig, Message, Body};
//!
//! let now = Instant::now();
//! let mut a = Dht::new(DhtConfig::default(), None, [1; 32], now);
//! let mut b = Dht::new(DhtConfig::default(), None, [2; 32], now);
//! let (a_addr, b_addr) = ("127.0.0.1:6881".parse().unwrap(), "127.0.0.1:6882".parse().unwrap());
//! a.bootstrap(now, &[b_addr]);
//! let (to, query) = a.poll_transmit().unwrap();
//! assert_eq!(to, b_addr);
//! b.handle_input(now, a_addr, &query);
//! let (_, answer) = b.poll_transmit().unwrap();
//! assert!(matches!(Message::decode(&answer).unwrap().body, Body::Response(_)));
//! a.handle_input(now, b_addr, &answer);
//! assert_eq!(a.nodes(), vec![(b.id(), b_addr)]);
//! ```

mod entropy;
mod family;
pub mod krpc;
mod lookup;
mod node_id;
mod server;
mod store;
mod table;
mod token;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use entropy::Entropy;
pub use family::Family;
pub use krpc::{Body, KrpcError, Message, Method, Query, Response, Want};
use lookup::{Lookup, LookupKind};
pub use lookup::{LookupId, ALPHA};
pub use node_id::{is_exempt, NodeId};
use store::PeerStore;
use table::RoutingTable;
pub use table::{NodeState, K};
use token::Tokens;

use crate::InfoHash;

/// How often the table, tokens and store are maintained.
const MAINTENANCE: Duration = Duration::from_secs(60);
/// Most lookups at once; more end at once with nothing found.
pub const MAX_LOOKUPS: usize = 64;
/// Most queries awaiting an answer; beyond this, pings are skipped.
const MAX_PENDING: usize = 2048;

/// Settings of a DHT node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtConfig {
    /// How long to wait for an answer to a query.
    pub query_timeout: Duration,
    /// Keep nodes whose id does not match their IP under BEP 42 out of the table.
    pub enforce_node_id: bool,
    /// The address family this node runs in (BEP 32).
    pub family: Family,
    /// A DHT of the other family runs beside this one: bootstrap lookups ask for its
    /// nodes too (`want`), and those found come out as [`DhtEvent::OtherFamilyNodes`].
    pub other_family: bool,
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            query_timeout: Duration::from_secs(4),
            enforce_node_id: true,
            family: Family::V4,
            other_family: false,
        }
    }
}

/// What the DHT reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtEvent {
    /// A `get_peers` lookup found peers (each reported once per lookup).
    Peers {
        /// The lookup.
        lookup: LookupId,
        /// The new peers.
        peers: Vec<SocketAddr>,
    },
    /// A lookup ended.
    LookupDone {
        /// The lookup.
        lookup: LookupId,
        /// Nodes that answered it.
        responded: usize,
        /// `announce_peer` queries sent at its end.
        announced: usize,
    },
    /// Nodes of the other family named in an answer (BEP 32), for the other DHT's
    /// [`Dht::add_node`]; only with [`DhtConfig::other_family`].
    OtherFamilyNodes {
        /// The nodes, at most [`krpc::MAX_NODES`] per answer.
        nodes: Vec<(NodeId, SocketAddr)>,
    },
}

/// Counters for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DhtStats {
    /// Good nodes in the routing table.
    pub good: usize,
    /// Questionable nodes in the routing table.
    pub questionable: usize,
    /// Queries awaiting an answer.
    pub pending: usize,
    /// Lookups running.
    pub lookups: usize,
    /// Torrents with peers announced to us.
    pub torrents: usize,
}

#[derive(Debug, Clone, Copy)]
enum Purpose {
    Lookup(LookupId),
    Ping,
    Announce,
}

#[derive(Debug)]
struct Pending {
    addr: SocketAddr,
    deadline: Instant,
    purpose: Purpose,
}

/// One DHT node; see the module doc.
pub struct Dht {
    id: NodeId,
    config: DhtConfig,
    table: RoutingTable,
    tokens: Tokens,
    store: PeerStore,
    rng: Entropy,
    pending: HashMap<[u8; 4], Pending>,
    lookups: BTreeMap<LookupId, Lookup>,
    bootstrap: Vec<SocketAddr>,
    transmit: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<DhtEvent>,
    next_lookup: u64,
    next_maintenance: Instant,
}

impl Dht {
    /// A node with a BEP 42 id for `external_ip` (a random id when unknown), drawing
    /// its random values from `seed`.
    pub fn new(
        config: DhtConfig,
        external_ip: Option<IpAddr>,
        seed: [u8; 32],
        now: Instant,
    ) -> Dht {
        let mut rng = Entropy::new(seed);
        let b = rng.block();
        let id = match external_ip {
            Some(ip) => {
                let mut tail = [0u8; 17];
                tail.copy_from_slice(&b[..17]);
                NodeId::bep42(ip, b[19], tail)
            }
            None => NodeId(b),
        };
        Dht::with_id(config, id, rng, now)
    }

    /// A node with the given id (BEP 32 suggests one id for both families' DHTs).
    pub fn new_with_id(config: DhtConfig, id: NodeId, seed: [u8; 32], now: Instant) -> Dht {
        Dht::with_id(config, id, Entropy::new(seed), now)
    }

    fn with_id(config: DhtConfig, id: NodeId, mut rng: Entropy, now: Instant) -> Dht {
        Dht {
            id,
            config,
            table: RoutingTable::new(id, now),
            tokens: Tokens::new(rng.block(), now),
            store: PeerStore::default(),
            rng,
            pending: HashMap::new(),
            lookups: BTreeMap::new(),
            bootstrap: Vec::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            next_lookup: 0,
            next_maintenance: now + MAINTENANCE,
        }
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The address family this node runs in.
    pub fn family(&self) -> Family {
        self.config.family
    }

    /// Joins the DHT through `addrs` (routers or known nodes): a lookup of our own id.
    /// The addresses of our family are kept, and tried again while the table is empty.
    pub fn bootstrap(&mut self, now: Instant, addrs: &[SocketAddr]) -> LookupId {
        let family = self.config.family;
        for a in addrs.iter().filter_map(|a| family.normalize(*a)) {
            if !self.bootstrap.contains(&a) {
                self.bootstrap.push(a);
            }
        }
        self.start_lookup(now, self.id.0, LookupKind::FindNode)
    }

    /// Looks for peers of `info_hash`; they arrive as [`DhtEvent::Peers`].
    pub fn get_peers(&mut self, now: Instant, info_hash: InfoHash) -> LookupId {
        let kind = LookupKind::GetPeers { announce: None };
        self.start_lookup(now, info_hash.0, kind)
    }

    /// Looks for peers of `info_hash` like [`Dht::get_peers`], then announces us on
    /// `port` to the closest nodes (`None`: the port our datagrams come from).
    pub fn announce(&mut self, now: Instant, info_hash: InfoHash, port: Option<u16>) -> LookupId {
        let kind = LookupKind::GetPeers {
            announce: Some(port),
        };
        self.start_lookup(now, info_hash.0, kind)
    }

    /// The nodes of the routing table that are not bad, to save.
    pub fn nodes(&self) -> Vec<(NodeId, SocketAddr)> {
        // Bad depends only on failures, not on time: any instant will do.
        self.table.nodes(self.next_maintenance)
    }

    /// Adds a saved node to the routing table (questionable until it answers a ping).
    /// Nodes of the other family are ignored.
    pub fn add_node(&mut self, now: Instant, id: NodeId, addr: SocketAddr) {
        if let Some(a) = self.config.family.normalize(addr) {
            if self.id_acceptable(&id, a) {
                if let Some((_, verify)) = self.table.heard(id, a, now, false) {
                    self.ping(now, verify);
                }
            }
        }
    }

    /// Counters for display.
    pub fn stats(&self, now: Instant) -> DhtStats {
        let (good, questionable, _) = self.table.counts(now);
        DhtStats {
            good,
            questionable,
            pending: self.pending.len(),
            lookups: self.lookups.len(),
            torrents: self.store.len(),
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DhtEvent> {
        self.events.pop_front()
    }

    /// When [`Dht::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadlines = self.pending.values().map(|p| p.deadline);
        deadlines.chain([self.next_maintenance]).min()
    }

    /// Takes one datagram from `from`. Anything malformed or unexpected is dropped, as
    /// is anything from the other family.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.handle_input_with(now, from, bytes, None);
    }

    /// [`Dht::handle_input`], with the DHT of the other family running beside this one
    /// (BEP 32): answers give its nodes to queries whose `want` asks for them.
    pub fn handle_input_with(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        other: Option<&Dht>,
    ) {
        let Some(from) = self.config.family.normalize(from) else {
            return;
        };
        let Ok(msg) = Message::decode(bytes) else {
            return;
        };
        match msg.body {
            Body::Query(q) => self.answer(now, from, msg.tid, q, other),
            Body::Response(r) => self.on_response(now, from, &msg.tid, &r),
            Body::Error(..) => {
                if let Some(p) = self.take_pending(from, &msg.tid) {
                    // It is alive, but the query failed: the lookup moves on.
                    if let Purpose::Lookup(lid) = p.purpose {
                        if let Some(l) = self.lookups.get_mut(&lid) {
                            l.on_failed(from);
                        }
                        self.advance(lid, now);
                    }
                }
            }
        }
    }

    /// Times out unanswered queries and runs periodic maintenance.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<[u8; 4]> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for tid in expired {
            let Some(p) = self.pending.remove(&tid) else {
                continue;
            };
            self.table.failed(p.addr, now);
            if let Purpose::Lookup(lid) = p.purpose {
                if let Some(l) = self.lookups.get_mut(&lid) {
                    l.on_failed(p.addr);
                }
                self.advance(lid, now);
            }
        }
        if now >= self.next_maintenance {
            self.next_maintenance = now + MAINTENANCE;
            self.maintain(now);
        }
    }

    fn maintain(&mut self, now: Instant) {
        let fresh = self.rng.block();
        self.tokens.rotate_if_due(now, fresh);
        self.store.expire(now);
        if self.table.nodes(now).is_empty() && !self.bootstrap.is_empty() {
            self.start_lookup(now, self.id.0, LookupKind::FindNode);
            return;
        }
        self.refresh(now, false);
    }

    /// Looks up a random id in every bucket due for it (`all`: in every bucket).
    fn refresh(&mut self, now: Instant, all: bool) {
        let rng = &mut self.rng;
        let targets = self.table.due_refresh(now, all, || rng.block());
        for t in targets {
            self.start_lookup(now, t, LookupKind::FindNode);
        }
    }

    fn id_acceptable(&self, id: &NodeId, addr: SocketAddr) -> bool {
        !self.config.enforce_node_id || id.is_valid_for(addr.ip())
    }

    /// Up to [`K`] nodes of our table closest to `target`, not bad.
    fn closest(&self, target: &[u8; 20], now: Instant) -> Vec<(NodeId, SocketAddr)> {
        self.table.closest(target, K, now)
    }

    fn take_pending(&mut self, from: SocketAddr, tid: &[u8]) -> Option<Pending> {
        let tid: [u8; 4] = tid.try_into().ok()?;
        if self.pending.get(&tid)?.addr != from {
            return None;
        }
        self.pending.remove(&tid)
    }

    fn on_response(&mut self, now: Instant, from: SocketAddr, tid: &[u8], r: &Response) {
        let Some(p) = self.take_pending(from, tid) else {
            return;
        };
        if self.config.other_family {
            let nodes = self.config.family.other().nodes_of(r);
            if !nodes.is_empty() {
                self.events.push_back(DhtEvent::OtherFamilyNodes { nodes });
            }
        }
        if self.id_acceptable(&r.id, from) {
            if let Some((_, stale)) = self.table.heard(r.id, from, now, true) {
                self.ping(now, stale);
            }
        }
        let Purpose::Lookup(lid) = p.purpose else {
            return;
        };
        let Some(l) = self.lookups.get_mut(&lid) else {
            return;
        };
        let peers = l.on_response(from, r, self.config.family);
        if !peers.is_empty() {
            self.events
                .push_back(DhtEvent::Peers { lookup: lid, peers });
        }
        self.advance(lid, now);
    }

    fn ping(&mut self, now: Instant, addr: SocketAddr) {
        if self.pending.len() < MAX_PENDING && !self.pending.values().any(|p| p.addr == addr) {
            self.send_query(now, addr, Method::Ping, Purpose::Ping);
        }
    }

    fn start_lookup(&mut self, now: Instant, target: [u8; 20], kind: LookupKind) -> LookupId {
        let lid = LookupId(self.next_lookup);
        self.next_lookup += 1;
        if self.lookups.len() >= MAX_LOOKUPS {
            let done = DhtEvent::LookupDone {
                lookup: lid,
                responded: 0,
                announced: 0,
            };
            self.events.push_back(done);
            return lid;
        }
        let closest = self.table.closest(&target, K, now);
        let mut seeds: Vec<(Option<NodeId>, SocketAddr)> =
            closest.iter().map(|(id, a)| (Some(*id), *a)).collect();
        if closest.len() < K {
            seeds.extend(self.bootstrap.iter().map(|a| (None, *a)));
        }
        let mut lookup = Lookup::new(self.id, target, kind, seeds);
        if let LookupKind::GetPeers { .. } = kind {
            // We are one of the nodes too: peers announced to us count (with two
            // nodes, the other one's announce is only ever stored here).
            let local = lookup.note_peers(&self.store.get(&target, now, store::MAX_ANSWER));
            if !local.is_empty() {
                let peers = local;
                self.events
                    .push_back(DhtEvent::Peers { lookup: lid, peers });
            }
        }
        self.lookups.insert(lid, lookup);
        self.advance(lid, now);
        lid
    }

    /// Sends a lookup's next queries, or ends it.
    fn advance(&mut self, lid: LookupId, now: Instant) {
        let Some(l) = self.lookups.get_mut(&lid) else {
            return;
        };
        if l.is_done() {
            self.finish(lid, now);
            return;
        }
        // BEP 32: a dual-stack node bootstrapping asks for both families' nodes;
        // otherwise the default (the family of the socket) is what we need.
        let want = if self.config.other_family && l.target == self.id.0 {
            Want { n4: true, n6: true }
        } else {
            Want::default()
        };
        let method = match l.kind {
            LookupKind::FindNode => Method::FindNode {
                target: l.target,
                want,
            },
            LookupKind::GetPeers { .. } => Method::GetPeers {
                info_hash: l.target,
                want,
            },
        };
        for (_, addr) in l.next_queries() {
            self.send_query(now, addr, method.clone(), Purpose::Lookup(lid));
        }
    }

    fn finish(&mut self, lid: LookupId, now: Instant) {
        let Some(l) = self.lookups.remove(&lid) else {
            return;
        };
        let mut announced = 0;
        if let LookupKind::GetPeers {
            announce: Some(port),
        } = l.kind
        {
            for (addr, token) in l.announce_targets() {
                let method = Method::AnnouncePeer {
                    info_hash: l.target,
                    port: port.unwrap_or(0),
                    token,
                    implied_port: port.is_none(),
                };
                self.send_query(now, addr, method, Purpose::Announce);
                announced += 1;
            }
        }
        self.events.push_back(DhtEvent::LookupDone {
            lookup: lid,
            responded: l.responses,
            announced,
        });
        if l.kind == LookupKind::FindNode && l.target == self.id.0 {
            // Bootstrapped: the lookup filled the buckets near us; fill the far ones
            // now rather than after the first 15-minute refresh.
            self.refresh(now, true);
        }
    }

    fn send_query(&mut self, now: Instant, addr: SocketAddr, method: Method, purpose: Purpose) {
        let tid = loop {
            let b = self.rng.block();
            let tid = [b[0], b[1], b[2], b[3]];
            if !self.pending.contains_key(&tid) {
                break tid;
            }
        };
        let msg = Message {
            tid: tid.to_vec(),
            body: Body::Query(Query {
                id: self.id,
                method,
            }),
            ip: None,
        };
        self.transmit.push_back((addr, msg.encode()));
        let deadline = now + self.config.query_timeout;
        self.pending.insert(
            tid,
            Pending {
                addr,
                deadline,
                purpose,
            },
        );
    }
}
