//! The routing table (BEP 5): 160 buckets of [`K`] nodes by shared id prefix.
//!
//! Bucket `i` holds nodes whose ids share exactly `i` leading bits with ours, so the
//! table knows many nodes near us and few far away. We use 160 fixed buckets rather
//! than splitting: the result is the same table, with simpler bookkeeping.
//!
//! Node states follow BEP 5: *good* if it answered one of our queries and we heard
//! from it (answer or query) within [`GOOD_FOR`]; *bad* after [`MAX_FAILURES`]
//! unanswered queries in a row; *questionable* otherwise. A full bucket replaces a bad
//! node at once; with only questionable nodes it keeps the newcomer in a small
//! replacement cache and asks the caller to ping the least recently seen one, whose
//! failures then make room. A node keeps its address: a known id heard from another
//! address is ignored, so nobody can move a node by spoofing its id.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::NodeId;

/// Nodes per bucket, and the number of closest nodes a lookup settles on.
pub const K: usize = 8;
/// How long a node stays good after we last heard from it.
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// Consecutive unanswered queries that make a node bad.
pub const MAX_FAILURES: u8 = 2;
/// A bucket untouched this long is refreshed with a lookup of an id in its range.
pub const REFRESH: Duration = Duration::from_secs(15 * 60);

/// A node's standing (BEP 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Answered recently.
    Good,
    /// Not heard from lately, or never answered us.
    Questionable,
    /// Failed to answer several queries in a row.
    Bad,
}

#[derive(Debug, Clone)]
struct Entry {
    id: NodeId,
    addr: SocketAddr,
    last_response: Option<Instant>,
    last_seen: Instant,
    failures: u8,
}

impl Entry {
    fn state(&self, now: Instant) -> NodeState {
        if self.failures >= MAX_FAILURES {
            NodeState::Bad
        } else if self.last_response.is_some()
            && now.saturating_duration_since(self.last_seen) < GOOD_FOR
        {
            NodeState::Good
        } else {
            NodeState::Questionable
        }
    }

    fn touch(&mut self, now: Instant, responded: bool) {
        self.last_seen = now;
        if responded {
            self.last_response = Some(now);
            self.failures = 0;
        }
    }
}

struct Bucket {
    nodes: Vec<Entry>,
    replacements: Vec<Entry>,
    changed: Instant,
}

/// The routing table around our id.
pub(crate) struct RoutingTable {
    own: NodeId,
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    pub(crate) fn new(own: NodeId, now: Instant) -> Self {
        let buckets = (0..160)
            .map(|_| Bucket {
                nodes: Vec::new(),
                replacements: Vec::new(),
                changed: now,
            })
            .collect();
        RoutingTable { own, buckets }
    }

    fn bucket_of(&self, id: &NodeId) -> Option<usize> {
        let i = self.own.common_prefix(&id.0);
        (i < 160).then_some(i)
    }

    /// Notes that `id` at `addr` sent us a query (`responded == false`) or answered one.
    /// Returns a node the caller should ping: `id` itself when it entered the table
    /// without ever answering us (so it can become good), or the least recently seen
    /// questionable node when `id` waits for its place.
    pub(crate) fn heard(
        &mut self,
        id: NodeId,
        addr: SocketAddr,
        now: Instant,
        responded: bool,
    ) -> Option<(NodeId, SocketAddr)> {
        let b = self.bucket_of(&id)?;
        let bucket = &mut self.buckets[b];
        if let Some(e) = bucket.nodes.iter_mut().find(|e| e.id == id) {
            if e.addr == addr {
                e.touch(now, responded);
                if responded {
                    bucket.changed = now;
                }
            }
            return None;
        }
        if bucket.nodes.iter().any(|e| e.addr == addr) {
            // Same address, new id (a restarted node): the old entry fails out first.
            return None;
        }
        let mut entry = Entry {
            id,
            addr,
            last_response: None,
            last_seen: now,
            failures: 0,
        };
        entry.touch(now, responded);
        let verify = (!responded).then_some((id, addr));
        if bucket.nodes.len() < K {
            bucket.nodes.push(entry);
            bucket.changed = now;
            return verify;
        }
        if let Some(bad) = bucket
            .nodes
            .iter_mut()
            .find(|e| e.state(now) == NodeState::Bad)
        {
            *bad = entry;
            bucket.changed = now;
            return verify;
        }
        bucket.replacements.retain(|e| e.id != id && e.addr != addr);
        if bucket.replacements.len() >= K {
            bucket.replacements.remove(0);
        }
        bucket.replacements.push(entry);
        bucket
            .nodes
            .iter()
            .filter(|e| e.state(now) == NodeState::Questionable)
            .min_by_key(|e| e.last_seen)
            .map(|e| (e.id, e.addr))
    }

    /// Notes that the node at `addr` left a query unanswered; a node that turns bad
    /// gives its place to the newest replacement, answered ones first.
    pub(crate) fn failed(&mut self, addr: SocketAddr, now: Instant) {
        for bucket in &mut self.buckets {
            let Some(i) = bucket.nodes.iter().position(|e| e.addr == addr) else {
                continue;
            };
            bucket.nodes[i].failures = bucket.nodes[i].failures.saturating_add(1);
            if bucket.nodes[i].state(now) == NodeState::Bad {
                // `max_by_key` keeps the last maximum: the newest answered replacement.
                let best = (0..bucket.replacements.len())
                    .max_by_key(|&j| bucket.replacements[j].last_response.is_some());
                if let Some(j) = best {
                    bucket.nodes[i] = bucket.replacements.remove(j);
                    bucket.changed = now;
                }
            }
            return;
        }
    }

    /// Up to `n` nodes that are not bad, closest to `target` first.
    pub(crate) fn closest(
        &self,
        target: &[u8; 20],
        n: usize,
        now: Instant,
    ) -> Vec<(NodeId, SocketAddr)> {
        let mut all: Vec<_> = self
            .buckets
            .iter()
            .flat_map(|b| b.nodes.iter())
            .filter(|e| e.state(now) != NodeState::Bad)
            .map(|e| (e.id, e.addr))
            .collect();
        all.sort_by_cached_key(|(id, _)| id.distance(target));
        all.truncate(n);
        all
    }

    /// Every node in the table that is not bad (for saving and restoring).
    pub(crate) fn nodes(&self, now: Instant) -> Vec<(NodeId, SocketAddr)> {
        self.buckets
            .iter()
            .flat_map(|b| b.nodes.iter())
            .filter(|e| e.state(now) != NodeState::Bad)
            .map(|e| (e.id, e.addr))
            .collect()
    }

    /// Nodes per state: good, questionable, bad.
    pub(crate) fn counts(&self, now: Instant) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for e in self.buckets.iter().flat_map(|b| b.nodes.iter()) {
            match e.state(now) {
                NodeState::Good => c.0 += 1,
                NodeState::Questionable => c.1 += 1,
                NodeState::Bad => c.2 += 1,
            }
        }
        c
    }

    /// Buckets due for a refresh: unchanged for [`REFRESH`] (or all with `all`), no
    /// deeper than the deepest non-empty bucket (deeper ones are empty in any DHT of
    /// realistic size). Marks them refreshed, and returns for each a random id in its
    /// range built from `rand`.
    pub(crate) fn due_refresh(
        &mut self,
        now: Instant,
        all: bool,
        mut rand: impl FnMut() -> [u8; 20],
    ) -> Vec<[u8; 20]> {
        let Some(deepest) = self.buckets.iter().rposition(|b| !b.nodes.is_empty()) else {
            return Vec::new();
        };
        let mut targets = Vec::new();
        for i in 0..=deepest {
            if all || now.saturating_duration_since(self.buckets[i].changed) >= REFRESH {
                self.buckets[i].changed = now;
                targets.push(id_in_bucket(&self.own, i, rand()));
            }
        }
        targets
    }
}

/// An id sharing exactly `prefix` leading bits with `own`, the rest from `rand`.
fn id_in_bucket(own: &NodeId, prefix: usize, rand: [u8; 20]) -> [u8; 20] {
    let mut id = rand;
    for bit in 0..=prefix.min(159) {
        let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
        let want = if bit == prefix {
            !own.0[byte] & mask
        } else {
            own.0[byte] & mask
        };
        id[byte] = (id[byte] & !mask) | want;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(10, 0, 0, i), 6881))
    }

    /// An id in bucket 0 of an all-zero own id (first bit set), distinguished by `i`.
    fn far(i: u8) -> NodeId {
        let mut id = [0u8; 20];
        id[0] = 0x80;
        id[19] = i;
        NodeId(id)
    }

    #[test]
    fn full_bucket_asks_for_ping_and_replaces_bad_nodes() {
        let t0 = Instant::now();
        let mut t = RoutingTable::new(NodeId([0; 20]), t0);
        for i in 0..K as u8 {
            assert_eq!(t.heard(far(i), addr(i), t0, true), None);
        }
        // All good: the newcomer waits, nobody to ping.
        assert_eq!(t.heard(far(100), addr(100), t0, true), None);
        let later = t0 + GOOD_FOR;
        // All questionable now: ping the least recently seen.
        assert_eq!(
            t.heard(far(101), addr(101), later, true),
            Some((far(0), addr(0)))
        );
        t.failed(addr(0), later);
        assert_eq!(t.nodes(later).len(), K, "one failure: still questionable");
        t.failed(addr(0), later);
        let ids: Vec<_> = t.nodes(later).into_iter().map(|n| n.0).collect();
        assert!(!ids.contains(&far(0)));
        assert!(ids.contains(&far(101)), "newest replacement took the place");
    }

    #[test]
    fn ids_keep_their_address_and_closest_sorts() {
        let t0 = Instant::now();
        let mut t = RoutingTable::new(NodeId([0; 20]), t0);
        t.heard(far(1), addr(1), t0, true);
        t.heard(far(1), addr(2), t0, true);
        assert_eq!(t.nodes(t0), vec![(far(1), addr(1))]);
        let mut near = [0u8; 20];
        near[19] = 1;
        let verify = t.heard(NodeId(near), addr(3), t0, false);
        assert_eq!(
            verify,
            Some((NodeId(near), addr(3))),
            "ping a node that never answered"
        );
        let c = t.closest(&[0; 20], 8, t0);
        assert_eq!(c[0].0, NodeId(near));
        assert_eq!(t.counts(t0), (1, 1, 0));
        assert_eq!(t.heard(NodeId([0; 20]), addr(4), t0, true), None, "own id");
        assert_eq!(t.nodes(t0).len(), 2);
    }

    #[test]
    fn refresh_targets_fall_in_their_bucket() {
        let t0 = Instant::now();
        let own = NodeId([0x5a; 20]);
        let mut t = RoutingTable::new(own, t0);
        let mut id = own.0;
        id[1] ^= 0x01; // prefix 15
        t.heard(NodeId(id), addr(1), t0, true);
        assert!(t.due_refresh(t0, false, || [0; 20]).is_empty());
        let targets = t.due_refresh(t0 + REFRESH, false, || [0xff; 20]);
        assert_eq!(targets.len(), 16);
        for (i, target) in targets.iter().enumerate() {
            assert_eq!(own.common_prefix(target), i);
        }
        assert!(t.due_refresh(t0 + REFRESH, false, || [0; 20]).is_empty());
        assert_eq!(t.due_refresh(t0 + REFRESH, true, || [0; 20]).len(), 16);
    }
}
