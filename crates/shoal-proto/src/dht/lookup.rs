//! Iterative lookups (BEP 5, Kademlia): walk toward a target by asking ever closer nodes.
//!
//! A [`Lookup`] keeps candidates sorted by XOR distance to the target and queries the
//! closest ones not yet asked, at most [`ALPHA`] at a time among the closest [`K`]. It
//! ends when the [`K`] closest candidates that did not fail have all answered. Answers
//! add the nodes they name as candidates; `get_peers` answers also yield peers (each
//! reported once per lookup) and tokens, with which an announcing lookup sends
//! `announce_peer` to the closest [`K`] that gave one. Candidates are bounded: beyond
//! [`MAX_CANDIDATES`] the farthest unasked ones are dropped. The lookup sends nothing
//! itself: [`super::Dht`] asks it what to query and tells it what came back. A lookup
//! runs in one address family (BEP 32): only nodes of its family become candidates.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::table::K;
use super::{Family, NodeId, Response};

/// Queries in flight per lookup.
pub const ALPHA: usize = 3;
/// Most candidates a lookup tracks.
pub const MAX_CANDIDATES: usize = 64;
/// Most distinct peers a lookup reports.
pub const MAX_PEERS: usize = 1000;

/// Names one lookup in commands and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u64);

/// What the lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LookupKind {
    /// `find_node` toward an id (bootstrap, bucket refresh).
    FindNode,
    /// `get_peers` for an info-hash; with `Some(port)`, announce on that port at the
    /// end (`None` inside: the implied port).
    GetPeers { announce: Option<Option<u16>> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Fresh,
    InFlight,
    Responded,
    Failed,
}

#[derive(Debug)]
struct Candidate {
    /// Unknown for bootstrap addresses until they answer.
    id: Option<NodeId>,
    /// Distance to the target, the sort key: all ones while `id` is unknown.
    key: [u8; 20],
    addr: SocketAddr,
    state: State,
    token: Option<Vec<u8>>,
}

/// One iterative lookup.
#[derive(Debug)]
pub(crate) struct Lookup {
    /// Our own id: never a candidate, whatever others answer.
    own: NodeId,
    pub(crate) target: [u8; 20],
    pub(crate) kind: LookupKind,
    cands: Vec<Candidate>,
    seen: HashSet<SocketAddr>,
    peers: HashSet<SocketAddr>,
    /// Queries answered (for the final event).
    pub(crate) responses: usize,
}

impl Lookup {
    pub(crate) fn new(
        own: NodeId,
        target: [u8; 20],
        kind: LookupKind,
        seeds: impl IntoIterator<Item = (Option<NodeId>, SocketAddr)>,
    ) -> Self {
        let mut l = Lookup {
            own,
            target,
            kind,
            cands: Vec::new(),
            seen: HashSet::new(),
            peers: HashSet::new(),
            responses: 0,
        };
        for (id, addr) in seeds {
            l.add(id, addr);
        }
        l
    }

    /// Sort key: distance, unknown ids last.
    fn key(&self, id: Option<NodeId>) -> [u8; 20] {
        id.map_or([0xff; 20], |id| id.distance(&self.target))
    }

    fn add(&mut self, id: Option<NodeId>, addr: SocketAddr) {
        if id == Some(self.own) || addr.port() == 0 || !self.seen.insert(addr) {
            return;
        }
        let key = self.key(id);
        let at = self.cands.partition_point(|c| c.key <= key);
        self.cands.insert(
            at,
            Candidate {
                id,
                key,
                addr,
                state: State::Fresh,
                token: None,
            },
        );
        if self.cands.len() > MAX_CANDIDATES {
            if let Some(i) = self.cands.iter().rposition(|c| c.state == State::Fresh) {
                self.cands.remove(i);
            }
        }
    }

    /// The closest [`K`] candidates that have not failed.
    fn window(&self) -> impl Iterator<Item = &Candidate> {
        self.cands
            .iter()
            .filter(|c| c.state != State::Failed)
            .take(K)
    }

    /// Candidates to query now (marked in flight), keeping [`ALPHA`] in flight.
    pub(crate) fn next_queries(&mut self) -> Vec<(Option<NodeId>, SocketAddr)> {
        let in_flight = self.window().filter(|c| c.state == State::InFlight).count();
        let fresh: Vec<SocketAddr> = self
            .window()
            .filter(|c| c.state == State::Fresh)
            .take(ALPHA.saturating_sub(in_flight))
            .map(|c| c.addr)
            .collect();
        let mut out = Vec::new();
        for c in &mut self.cands {
            if fresh.contains(&c.addr) {
                c.state = State::InFlight;
                out.push((c.id, c.addr));
            }
        }
        out
    }

    /// Whether the closest [`K`] live candidates have all answered.
    pub(crate) fn is_done(&self) -> bool {
        self.window().all(|c| c.state == State::Responded)
    }

    /// Takes an answer from `addr`, whose nodes of `family` become candidates; returns
    /// the peers not reported before.
    pub(crate) fn on_response(
        &mut self,
        addr: SocketAddr,
        r: &Response,
        family: Family,
    ) -> Vec<SocketAddr> {
        let Some(i) = self.cands.iter().position(|c| c.addr == addr) else {
            return Vec::new();
        };
        self.responses += 1;
        let mut c = self.cands.remove(i);
        c.state = State::Responded;
        c.id = Some(r.id);
        c.key = self.key(c.id);
        c.token.clone_from(&r.token);
        let at = self.cands.partition_point(|x| x.key <= c.key);
        self.cands.insert(at, c);
        for (id, a) in family.nodes_of(r) {
            self.add(Some(id), a);
        }
        self.note_peers(&r.values)
    }

    /// Takes peers found (in an answer, or in our own store); returns those not
    /// reported before.
    pub(crate) fn note_peers(&mut self, values: &[SocketAddr]) -> Vec<SocketAddr> {
        let mut new = Vec::new();
        for p in values {
            if self.peers.len() < MAX_PEERS && self.peers.insert(*p) {
                new.push(*p);
            }
        }
        new
    }

    /// Notes that `addr` did not answer (timeout or error).
    pub(crate) fn on_failed(&mut self, addr: SocketAddr) {
        if let Some(c) = self.cands.iter_mut().find(|c| c.addr == addr) {
            c.state = State::Failed;
        }
    }

    /// The closest [`K`] that answered with a token: where to announce.
    pub(crate) fn announce_targets(&self) -> Vec<(SocketAddr, Vec<u8>)> {
        self.cands
            .iter()
            .filter(|c| c.state == State::Responded)
            .filter_map(|c| Some((c.addr, c.token.clone()?)))
            .take(K)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn node(d: u8) -> (NodeId, SocketAddr) {
        let mut id = [0u8; 20];
        id[19] = d;
        (
            NodeId(id),
            SocketAddr::from((Ipv4Addr::new(10, 0, 0, d), 1)),
        )
    }

    #[test]
    fn alpha_in_flight_and_ends_on_k_closest() {
        let seeds = (1..=20).map(|d| {
            let (id, a) = node(d);
            (Some(id), a)
        });
        let mut l = Lookup::new(NodeId([9; 20]), [0; 20], LookupKind::FindNode, seeds);
        let q = l.next_queries();
        assert_eq!(q.len(), ALPHA);
        assert_eq!(q[0].1, node(1).1, "closest first");
        assert!(l.next_queries().is_empty(), "alpha in flight");
        l.on_failed(node(1).1);
        assert_eq!(l.next_queries().len(), 1);
        let mut rounds = 0;
        while !l.is_done() {
            for (id, a) in l.next_queries() {
                let r = Response {
                    id: id.unwrap(),
                    token: Some(vec![1]),
                    ..Response::default()
                };
                l.on_response(a, &r, Family::V4);
            }
            // Answer the ones still in flight from earlier rounds too.
            for d in 2..=4 {
                let (id, a) = node(d);
                let r = Response {
                    id,
                    token: Some(vec![1]),
                    ..Response::default()
                };
                l.on_response(a, &r, Family::V4);
            }
            rounds += 1;
            assert!(rounds < 20);
        }
        let targets = l.announce_targets();
        assert_eq!(targets.len(), K);
        assert_eq!(targets[0].0, node(2).1);
        assert!(!targets.iter().any(|t| t.0 == node(1).1));
    }

    #[test]
    fn peers_reported_once_and_candidates_bounded() {
        let (seed_id, seed) = node(200);
        let mut l = Lookup::new(
            NodeId([9; 20]),
            [0; 20],
            LookupKind::FindNode,
            [(None, seed)],
        );
        l.next_queries();
        let p = SocketAddr::from((Ipv4Addr::new(1, 1, 1, 1), 80));
        let r = Response {
            id: seed_id,
            nodes: (0..100u8)
                .map(|i| {
                    let (id, a) = node(i.wrapping_add(1));
                    let SocketAddr::V4(a) = a else { unreachable!() };
                    (id, a)
                })
                .collect(),
            values: vec![p, p],
            ..Response::default()
        };
        assert_eq!(l.on_response(seed, &r, Family::V4), vec![p]);
        assert!(l.on_response(seed, &r, Family::V4).is_empty());
        assert!(l.cands.len() <= MAX_CANDIDATES);
    }
}
