//! One torrent's swarm: who is in it, seeders apart from leechers, and peer selection.
//!
//! A peer is a (peer id, IP) pair, not a peer id alone: peer ids are public (they are
//! in every non-compact announce reply), so keying by id would let anyone move a peer
//! to another address or remove it with `stopped`. An announce carrying a known peer
//! id from another IP is a different peer; it can only add or remove its own entry.
//! (opentracker keys peers by address for the same reason. We prefer this to
//! honouring the optional `key` parameter, which many clients do not send and which
//! would still let a forger who saw a `key` in transit through.) The same peer id and IP
//! on a new port updates the port. A client whose IP changes shows up as a new peer,
//! and its old entry expires after the peer TTL.
//!
//! A swarm holds at most `max_peers` peers; announces from new peers beyond it are
//! answered (with peers and counts) but not stored, so one torrent cannot take the
//! tracker's memory.
//!
//! Invariants: every (peer id, IP) is in exactly one of `seeders`/`leechers`, and
//! `index[key]` names that list and the position in it. Removal is `swap_remove`
//! plus one index fix-up, so announce, stop and random selection are O(1) per peer
//! touched and selection never walks the whole swarm.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand::Rng;
use shoal_proto::tracker::{AnnounceEvent, ScrapeStats};
use shoal_proto::PeerId;

/// What one announce tells the swarm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAnnounce {
    pub peer_id: PeerId,
    pub addr: SocketAddr,
    pub seeder: bool,
    pub event: AnnounceEvent,
}

/// What identifies a peer in a swarm.
type PeerKey = (PeerId, IpAddr);

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: PeerId,
    addr: SocketAddr,
    last_seen: Instant,
}

impl Entry {
    fn key(&self) -> PeerKey {
        (self.id, self.addr.ip())
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    seeder: bool,
    pos: usize,
}

/// A torrent's peers, keyed by (peer id, IP).
#[derive(Debug)]
pub(crate) struct Swarm {
    seeders: Vec<Entry>,
    leechers: Vec<Entry>,
    index: HashMap<PeerKey, Slot>,
    downloaded: u32,
    max_peers: usize,
}

impl Swarm {
    /// An empty swarm storing at most `max_peers` peers.
    pub fn new(max_peers: usize) -> Self {
        Swarm {
            seeders: Vec::new(),
            leechers: Vec::new(),
            index: HashMap::new(),
            downloaded: 0,
            max_peers,
        }
    }

    /// Applies an announce and appends up to `numwant` other peers to `out`
    /// (leechers only when the announcer is a seeder). `stopped` removes the peer with
    /// this peer id and IP; a new peer is not stored when the swarm is full.
    pub fn announce(
        &mut self,
        a: &PeerAnnounce,
        now: Instant,
        numwant: usize,
        rng: &mut impl Rng,
        out: &mut Vec<SocketAddr>,
    ) {
        let key = (a.peer_id, a.addr.ip());
        if a.event == AnnounceEvent::Stopped {
            self.remove(&key);
            return;
        }
        let entry = Entry {
            id: a.peer_id,
            addr: a.addr,
            last_seen: now,
        };
        let was_seeder = match self.index.get(&key).copied() {
            Some(slot) if slot.seeder == a.seeder => {
                self.list_mut(slot.seeder)[slot.pos] = entry;
                Some(slot.seeder)
            }
            Some(slot) => {
                self.remove(&key);
                self.insert(entry, a.seeder);
                Some(slot.seeder)
            }
            None if self.index.len() >= self.max_peers => None,
            None => {
                self.insert(entry, a.seeder);
                None
            }
        };
        if a.event == AnnounceEvent::Completed && was_seeder != Some(true) {
            self.downloaded = self.downloaded.saturating_add(1);
        }
        self.select(&key, a.seeder, numwant, rng, out);
    }

    /// Seeders, completions and leechers.
    pub fn stats(&self) -> ScrapeStats {
        ScrapeStats {
            complete: u32::try_from(self.seeders.len()).unwrap_or(u32::MAX),
            downloaded: self.downloaded,
            incomplete: u32::try_from(self.leechers.len()).unwrap_or(u32::MAX),
        }
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Drops peers not seen since `cutoff`; returns how many.
    pub fn expire(&mut self, cutoff: Instant) -> usize {
        let before = self.index.len();
        for seeder in [true, false] {
            let list = self.list_mut(seeder);
            list.retain(|e| e.last_seen >= cutoff);
        }
        if self.seeders.len() + self.leechers.len() != before {
            self.reindex();
        }
        before - self.index.len()
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (seeder, list) in [(true, &self.seeders), (false, &self.leechers)] {
            for (pos, e) in list.iter().enumerate() {
                self.index.insert(e.key(), Slot { seeder, pos });
            }
        }
    }

    fn list_mut(&mut self, seeder: bool) -> &mut Vec<Entry> {
        if seeder {
            &mut self.seeders
        } else {
            &mut self.leechers
        }
    }

    fn insert(&mut self, entry: Entry, seeder: bool) {
        let list = self.list_mut(seeder);
        list.push(entry);
        let pos = list.len() - 1;
        self.index.insert(entry.key(), Slot { seeder, pos });
    }

    fn remove(&mut self, key: &PeerKey) {
        let Some(slot) = self.index.remove(key) else {
            return;
        };
        let list = self.list_mut(slot.seeder);
        list.swap_remove(slot.pos);
        if let Some(moved) = list.get(slot.pos).map(Entry::key) {
            if let Some(s) = self.index.get_mut(&moved) {
                s.pos = slot.pos;
            }
        }
    }

    /// Random distinct peers from the candidate lists, skipping `me`.
    fn select(
        &self,
        me: &PeerKey,
        me_seeder: bool,
        numwant: usize,
        rng: &mut impl Rng,
        out: &mut Vec<SocketAddr>,
    ) {
        // Candidates are `seeders ++ leechers`, or just leechers for a seeder.
        let seeds: &[Entry] = if me_seeder { &[] } else { &self.seeders };
        let leechers = &self.leechers[..];
        let at = |i: usize| match seeds.get(i) {
            Some(e) => Some(e),
            None => leechers.get(i - seeds.len()),
        };
        let total = seeds.len() + leechers.len();
        // The announcer's own position in the candidates, if it is one.
        let me_at = self
            .index
            .get(me)
            .and_then(|s| match (s.seeder, me_seeder) {
                (true, false) => Some(s.pos),
                (false, _) => Some(seeds.len() + s.pos),
                (true, true) => None,
            });
        let n = total - usize::from(me_at.is_some());
        let k = numwant.min(n);
        let skip_me = |i: usize| match me_at {
            Some(m) if i >= m => i + 1,
            _ => i,
        };
        if k == n {
            out.extend((0..n).filter_map(|i| at(skip_me(i))).map(|e| e.addr));
        } else {
            let picks = rand::seq::index::sample(rng, n, k);
            out.extend(picks.iter().filter_map(|i| at(skip_me(i))).map(|e| e.addr));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Duration;

    fn peer(n: u8, seeder: bool, event: AnnounceEvent) -> PeerAnnounce {
        PeerAnnounce {
            peer_id: PeerId([n; 20]),
            addr: SocketAddr::from(([10, 0, 0, n], 1000 + u16::from(n))),
            seeder,
            event,
        }
    }

    fn announce(s: &mut Swarm, a: PeerAnnounce, numwant: usize) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        s.announce(
            &a,
            Instant::now(),
            numwant,
            &mut rand::thread_rng(),
            &mut out,
        );
        out
    }

    #[test]
    fn peers_see_each_other_but_not_themselves() {
        let mut s = Swarm::new(usize::MAX);
        assert!(announce(&mut s, peer(1, false, AnnounceEvent::Started), 50).is_empty());
        let seen = announce(&mut s, peer(2, false, AnnounceEvent::Started), 50);
        assert_eq!(seen, vec![peer(1, false, AnnounceEvent::None).addr]);
        let seen = announce(&mut s, peer(1, false, AnnounceEvent::None), 50);
        assert_eq!(seen, vec![peer(2, false, AnnounceEvent::None).addr]);
        assert_eq!(
            s.stats(),
            ScrapeStats {
                complete: 0,
                downloaded: 0,
                incomplete: 2
            }
        );
    }

    #[test]
    fn completion_moves_to_seeders_once_and_stop_removes() {
        let mut s = Swarm::new(usize::MAX);
        announce(&mut s, peer(1, false, AnnounceEvent::Started), 50);
        announce(&mut s, peer(2, false, AnnounceEvent::Started), 50);
        announce(&mut s, peer(1, true, AnnounceEvent::Completed), 50);
        announce(&mut s, peer(1, true, AnnounceEvent::Completed), 50);
        assert_eq!(
            s.stats(),
            ScrapeStats {
                complete: 1,
                downloaded: 1,
                incomplete: 1
            }
        );
        announce(&mut s, peer(2, false, AnnounceEvent::Stopped), 50);
        assert_eq!(
            s.stats(),
            ScrapeStats {
                complete: 1,
                downloaded: 1,
                incomplete: 0
            }
        );
        announce(&mut s, peer(1, true, AnnounceEvent::Stopped), 50);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn seeders_get_only_leechers() {
        let mut s = Swarm::new(usize::MAX);
        for n in 1..=5 {
            announce(&mut s, peer(n, true, AnnounceEvent::Started), 50);
        }
        announce(&mut s, peer(9, false, AnnounceEvent::Started), 50);
        let seen = announce(&mut s, peer(1, true, AnnounceEvent::None), 50);
        assert_eq!(seen, vec![peer(9, false, AnnounceEvent::None).addr]);
        assert_eq!(
            announce(&mut s, peer(9, false, AnnounceEvent::None), 50).len(),
            5
        );
    }

    #[test]
    fn random_selection_is_distinct_capped_and_excludes_self() {
        let mut s = Swarm::new(usize::MAX);
        for n in 1..=100 {
            announce(&mut s, peer(n, n % 3 == 0, AnnounceEvent::Started), 0);
        }
        for _ in 0..50 {
            let me = peer(42, false, AnnounceEvent::None);
            let seen = announce(&mut s, me, 30);
            assert_eq!(seen.len(), 30);
            assert!(!seen.contains(&me.addr));
            assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 30);
        }
        let all = announce(&mut s, peer(42, false, AnnounceEvent::None), 500);
        assert_eq!(all.len(), 99);
    }

    #[test]
    fn removal_keeps_index_consistent() {
        let mut s = Swarm::new(usize::MAX);
        for n in 1..=10 {
            announce(&mut s, peer(n, false, AnnounceEvent::Started), 0);
        }
        for n in [1, 5, 10, 2] {
            announce(&mut s, peer(n, false, AnnounceEvent::Stopped), 0);
        }
        for (id, slot) in &s.index {
            let list = if slot.seeder { &s.seeders } else { &s.leechers };
            assert_eq!(list[slot.pos].key(), *id);
        }
        assert_eq!(s.len(), 6);
    }

    #[test]
    fn expiry_drops_silent_peers() {
        let mut s = Swarm::new(usize::MAX);
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut rng = rand::thread_rng();
        s.announce(
            &peer(1, false, AnnounceEvent::None),
            t0,
            0,
            &mut rng,
            &mut out,
        );
        s.announce(
            &peer(2, true, AnnounceEvent::None),
            t0,
            0,
            &mut rng,
            &mut out,
        );
        let later = t0 + Duration::from_secs(10);
        s.announce(
            &peer(3, false, AnnounceEvent::None),
            later,
            0,
            &mut rng,
            &mut out,
        );
        assert_eq!(s.expire(t0 + Duration::from_secs(5)), 2);
        assert_eq!(s.len(), 1);
        let seen = announce(&mut s, peer(4, false, AnnounceEvent::None), 10);
        assert_eq!(seen, vec![peer(3, false, AnnounceEvent::None).addr]);
    }

    #[test]
    fn a_peer_id_from_another_ip_is_another_peer() {
        let mut s = Swarm::new(usize::MAX);
        let victim = peer(1, false, AnnounceEvent::Started);
        announce(&mut s, victim, 0);
        announce(&mut s, peer(2, false, AnnounceEvent::Started), 0);
        // A forger reusing the victim's peer id can neither stop nor move it.
        let mut forged = peer(1, false, AnnounceEvent::Stopped);
        forged.addr = SocketAddr::from(([10, 9, 9, 9], 6666));
        announce(&mut s, forged, 0);
        assert_eq!(s.len(), 2);
        forged.event = AnnounceEvent::None;
        announce(&mut s, forged, 0);
        assert_eq!(s.len(), 3);
        let seen = announce(&mut s, peer(2, false, AnnounceEvent::None), 50);
        assert!(seen.contains(&victim.addr) && seen.contains(&forged.addr));
        // The forger leaving removes only its own entry.
        forged.event = AnnounceEvent::Stopped;
        announce(&mut s, forged, 0);
        let seen = announce(&mut s, peer(2, false, AnnounceEvent::None), 50);
        assert_eq!(seen, vec![victim.addr]);
        // The real peer on a new port is the same peer, moved.
        let mut moved = peer(1, false, AnnounceEvent::None);
        moved.addr.set_port(9999);
        announce(&mut s, moved, 0);
        assert_eq!(s.len(), 2);
        let seen = announce(&mut s, peer(2, false, AnnounceEvent::None), 50);
        assert_eq!(seen, vec![moved.addr]);
    }

    #[test]
    fn a_full_swarm_answers_new_peers_without_storing_them() {
        let mut s = Swarm::new(3);
        for n in 1..=3 {
            announce(&mut s, peer(n, n == 1, AnnounceEvent::Started), 0);
        }
        let seen = announce(&mut s, peer(4, false, AnnounceEvent::Started), 50);
        assert_eq!(seen.len(), 3, "still answered");
        assert_eq!(s.len(), 3, "but not stored");
        assert_eq!(s.stats().incomplete, 2);
        // Members still update, complete and leave.
        announce(&mut s, peer(2, true, AnnounceEvent::Completed), 0);
        assert_eq!(s.stats().complete, 2);
        announce(&mut s, peer(3, false, AnnounceEvent::Stopped), 0);
        announce(&mut s, peer(4, false, AnnounceEvent::Started), 0);
        assert_eq!(s.len(), 3);
        let seen = announce(&mut s, peer(1, true, AnnounceEvent::None), 50);
        assert_eq!(seen, vec![peer(4, false, AnnounceEvent::None).addr]);
    }
}
