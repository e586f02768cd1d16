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
//! Storage (`lists` module): IPv4 and IPv6 peers are kept apart, each family as a
//! seeder and a leecher list of parallel vectors (addresses: 6 bytes for IPv4, 18 for
//! IPv6; peer id and announce time: 24 bytes; no allocation per peer), with an index
//! of 4-byte positions hashed by (peer id, IP) with a per-swarm random key. Announce
//! times are [`Tick`]s (1/16 s). About 65 bytes per IPv4 peer in all as measured (30 in
//! the vectors, the rest index slots and spare capacity), against about
//! 200 with a `HashMap` of full keys. Replies pick one peer in each of `numwant`
//! strata of the candidates after a random rotation ([`sample_distinct`]).
//!
//! Invariants: every stored (peer id, IP) is in exactly one list of its family and
//! the index holds exactly one slot naming that list and position. Removal is
//! `swap_remove` plus one index fix-up, so announce, stop and random selection are
//! O(1) per peer touched and selection never walks the whole swarm.

use std::collections::hash_map::RandomState;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use rand::Rng;
use shoal_proto::tracker::{AnnounceEvent, ScrapeStats};
use shoal_proto::PeerId;

mod lists;

pub(crate) use lists::Tick;
use lists::{Addr, Applied, Ip, Lists, MAX_POS};

/// What one announce tells the swarm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAnnounce {
    pub peer_id: PeerId,
    pub addr: SocketAddr,
    pub seeder: bool,
    pub event: AnnounceEvent,
}

/// A torrent's peers, keyed by (peer id, IP).
#[derive(Debug)]
pub(crate) struct Swarm {
    v4: Lists<Ipv4Addr>,
    v6: Lists<Ipv6Addr>,
    hasher: RandomState,
    downloaded: u32,
    max_peers: usize,
}

/// Where the announcer sits among the candidates of [`Swarm::select`].
#[derive(Debug, Clone, Copy)]
struct Me {
    v6: bool,
    at: Option<(bool, usize)>,
}

impl Swarm {
    /// An empty swarm storing at most `max_peers` peers.
    pub fn new(max_peers: usize) -> Self {
        Swarm {
            v4: Lists::new(),
            v6: Lists::new(),
            hasher: RandomState::new(),
            downloaded: 0,
            max_peers: max_peers.min(MAX_POS),
        }
    }

    /// Applies an announce made at `now` and appends up to `numwant` other peers to
    /// `out` (leechers only when the announcer is a seeder). `stopped` removes the peer
    /// with this peer id and IP; a new peer is not stored when the swarm is full.
    pub fn announce(
        &mut self,
        a: &PeerAnnounce,
        now: Tick,
        numwant: usize,
        rng: &mut impl Rng,
        out: &mut Vec<SocketAddr>,
    ) {
        let room = self.len() < self.max_peers;
        let id = a.peer_id;
        let port = a.addr.port();
        let stop = a.event == AnnounceEvent::Stopped;
        let (v6, applied) = match a.addr {
            SocketAddr::V4(s) if stop => {
                self.v4.remove(&self.hasher, &id, s.ip());
                return;
            }
            SocketAddr::V6(s) if stop => {
                self.v6.remove(&self.hasher, &id, s.ip());
                return;
            }
            SocketAddr::V4(s) => (
                false,
                self.v4
                    .apply(&self.hasher, id, *s.ip(), port, a.seeder, now, room),
            ),
            SocketAddr::V6(s) => (
                true,
                self.v6
                    .apply(&self.hasher, id, *s.ip(), port, a.seeder, now, room),
            ),
        };
        let Applied { was_seeder, now_at } = applied;
        if a.event == AnnounceEvent::Completed && was_seeder != Some(true) {
            self.downloaded = self.downloaded.saturating_add(1);
        }
        self.select(Me { v6, at: now_at }, a.seeder, numwant, rng, out);
    }

    /// Seeders, completions and leechers.
    pub fn stats(&self) -> ScrapeStats {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        ScrapeStats {
            complete: count(self.v4.seeders.len() + self.v6.seeders.len()),
            downloaded: self.downloaded,
            incomplete: count(self.v4.leechers.len() + self.v6.leechers.len()),
        }
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Completions counted so far (the scrape `downloaded`).
    pub fn downloaded(&self) -> u32 {
        self.downloaded
    }

    /// Puts back the completion count of a snapshot (never lowers it).
    pub fn restore_downloaded(&mut self, n: u32) {
        self.downloaded = self.downloaded.max(n);
    }

    /// Every stored peer as (address, peer id, seeder, last announce): what a snapshot
    /// of the swarm keeps.
    pub fn peers(&self) -> impl Iterator<Item = (SocketAddr, PeerId, bool, Tick)> + '_ {
        let seeders = self.v4.seeders.iter().chain(self.v6.seeders.iter());
        let leechers = self.v4.leechers.iter().chain(self.v6.leechers.iter());
        seeders
            .map(|(a, id, t)| (a, id, true, t))
            .chain(leechers.map(|(a, id, t)| (a, id, false, t)))
    }

    /// Puts back a peer from a snapshot, last seen at `seen`, unless the swarm is full;
    /// returns whether it was stored. Counts no completion.
    pub fn restore(&mut self, peer_id: PeerId, addr: SocketAddr, seeder: bool, seen: Tick) -> bool {
        let room = self.len() < self.max_peers;
        let port = addr.port();
        let applied = match addr {
            SocketAddr::V4(s) => {
                self.v4
                    .apply(&self.hasher, peer_id, *s.ip(), port, seeder, seen, room)
            }
            SocketAddr::V6(s) => {
                self.v6
                    .apply(&self.hasher, peer_id, *s.ip(), port, seeder, seen, room)
            }
        };
        applied.now_at.is_some()
    }

    /// Drops peers last seen before `cutoff`; returns how many.
    pub fn expire(&mut self, cutoff: Tick) -> usize {
        self.v4.expire(&self.hasher, cutoff) + self.v6.expire(&self.hasher, cutoff)
    }

    /// Random distinct peers from the candidates, skipping the announcer.
    fn select(
        &self,
        me: Me,
        me_seeder: bool,
        numwant: usize,
        rng: &mut impl Rng,
        out: &mut Vec<SocketAddr>,
    ) {
        // Candidates are `seeders4 ++ seeders6 ++ leechers4 ++ leechers6`, without the
        // seeders for a seeder.
        let no: &[Addr<Ipv4Addr>] = &[];
        let no6: &[Addr<Ipv6Addr>] = &[];
        let (s4, s6) = if me_seeder {
            (no, no6)
        } else {
            (&self.v4.seeders.addrs[..], &self.v6.seeders.addrs[..])
        };
        let (l4, l6) = (&self.v4.leechers.addrs[..], &self.v6.leechers.addrs[..]);
        let bounds = [s4.len(), s6.len(), l4.len(), l6.len()];
        let at = |i: usize| -> Option<SocketAddr> {
            let mut i = i;
            if i < bounds[0] {
                return Some(s4[i].0.socket(s4[i].1));
            }
            i -= bounds[0];
            if i < bounds[1] {
                return Some(s6[i].0.socket(s6[i].1));
            }
            i -= bounds[1];
            if i < bounds[2] {
                return Some(l4[i].0.socket(l4[i].1));
            }
            l6.get(i - bounds[2]).map(|(ip, port)| ip.socket(*port))
        };
        let total: usize = bounds.iter().sum();
        // The announcer's own position among the candidates, if it is one.
        let me_at = match me.at {
            Some((true, _)) if me_seeder => None,
            Some((true, pos)) => Some(if me.v6 { bounds[0] + pos } else { pos }),
            Some((false, pos)) => {
                let l = bounds[0] + bounds[1];
                Some(if me.v6 { l + bounds[2] + pos } else { l + pos })
            }
            None => None,
        };
        let n = total - usize::from(me_at.is_some());
        let k = numwant.min(n);
        let skip_me = |i: usize| match me_at {
            Some(m) if i >= m => i + 1,
            _ => i,
        };
        if k == n {
            out.extend((0..n).filter_map(|i| at(skip_me(i))));
        } else {
            out.reserve(k);
            sample_distinct(rng, n, k, |i| out.extend(at(skip_me(i))));
        }
    }

    /// Checks the index of both families (tests).
    #[cfg(test)]
    fn check(&self) {
        self.v4.check(&self.hasher);
        self.v6.check(&self.hasher);
    }
}

/// Calls `pick` with `k` distinct indices of `0..n` (`k < n`), in increasing order
/// after a random rotation: one index drawn uniformly from each of `k` equal strata
/// of the rotated range (as opentracker does). Every index has the same chance
/// (`k / n`), the picks are distinct by construction, and the swarm vectors are read
/// front to back, which the prefetcher follows, instead of at `k` random places; O(k),
/// no allocation.
fn sample_distinct(rng: &mut impl Rng, n: usize, k: usize, mut pick: impl FnMut(usize)) {
    if k == 0 {
        return;
    }
    let rotate = rng.gen_range(0..n);
    for j in 0..k {
        // Strata [j n / k, (j + 1) n / k) are non-empty since k < n (u64: no overflow).
        let lo = (j as u64 * n as u64 / k as u64) as usize;
        let hi = ((j as u64 + 1) * n as u64 / k as u64) as usize;
        let i = lo + rng.gen_range(0..hi - lo) + rotate;
        pick(if i >= n { i - n } else { i });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::IpAddr;

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
        s.announce(&a, 0, numwant, &mut rand::thread_rng(), &mut out);
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
        s.check();
        assert_eq!(s.len(), 6);
    }

    #[test]
    fn expiry_drops_silent_peers() {
        let mut s = Swarm::new(usize::MAX);
        let t0: Tick = 100;
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
        let later = t0 + 160;
        s.announce(
            &peer(3, false, AnnounceEvent::None),
            later,
            0,
            &mut rng,
            &mut out,
        );
        assert_eq!(s.expire(t0 + 80), 2);
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

    #[test]
    fn ipv4_and_ipv6_peers_share_a_swarm() {
        let mut s = Swarm::new(usize::MAX);
        let v6 = |n: u8, seeder: bool, event| PeerAnnounce {
            peer_id: PeerId([n; 20]),
            addr: SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n)], 2000)),
            seeder,
            event,
        };
        announce(&mut s, peer(1, true, AnnounceEvent::Started), 0);
        announce(&mut s, v6(2, true, AnnounceEvent::Started), 0);
        announce(&mut s, peer(3, false, AnnounceEvent::Started), 0);
        announce(&mut s, v6(4, false, AnnounceEvent::Started), 0);
        // The same peer id on another family is another peer.
        announce(&mut s, v6(1, false, AnnounceEvent::Started), 0);
        s.check();
        assert_eq!((s.stats().complete, s.stats().incomplete), (2, 3));
        let seen: HashSet<_> = announce(&mut s, v6(4, false, AnnounceEvent::None), 50)
            .into_iter()
            .collect();
        let want: HashSet<_> = [
            peer(1, true, AnnounceEvent::None).addr,
            v6(2, true, AnnounceEvent::None).addr,
            peer(3, false, AnnounceEvent::None).addr,
            v6(1, false, AnnounceEvent::None).addr,
        ]
        .into_iter()
        .collect();
        assert_eq!(seen, want);
        // A seeder sees only leechers, of both families.
        let seen: HashSet<_> = announce(&mut s, v6(2, true, AnnounceEvent::None), 50)
            .into_iter()
            .collect();
        assert_eq!(seen.len(), 3);
        assert!(!seen.contains(&peer(1, true, AnnounceEvent::None).addr));
        // An IPv6 leecher completes, then leaves.
        announce(&mut s, v6(4, true, AnnounceEvent::Completed), 0);
        assert_eq!((s.stats().complete, s.stats().downloaded), (3, 1));
        announce(&mut s, v6(4, true, AnnounceEvent::Stopped), 0);
        s.check();
        assert_eq!((s.stats().complete, s.stats().incomplete), (2, 2));
    }

    /// Random announces against a plain model: counts, index and replies stay right.
    #[test]
    fn random_announces_match_a_model() {
        use rand::{Rng, SeedableRng};
        use std::collections::HashMap;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut s = Swarm::new(40);
        // (id, ip) -> (port, seeder, last tick)
        let mut model: HashMap<(u8, IpAddr), (u16, bool, Tick)> = HashMap::new();
        let mut downloaded = 0u32;
        for step in 0..20_000u32 {
            let now: Tick = step / 10;
            let id = rng.gen_range(0..30u8);
            let ip: IpAddr = if rng.gen_bool(0.3) {
                IpAddr::from([0xfe80, 0, 0, 0, 0, 0, 0, u16::from(rng.gen_range(0..3u8))])
            } else {
                IpAddr::from([10, 0, 0, rng.gen_range(0..3u8)])
            };
            // Ports differ between ids, so an address names one peer.
            let port = u16::from(id) * 10 + rng.gen_range(1..5u16);
            let seeder = rng.gen_bool(0.4);
            let event = match rng.gen_range(0..10) {
                0 | 1 => AnnounceEvent::Stopped,
                2 => AnnounceEvent::Completed,
                3 => AnnounceEvent::Started,
                _ => AnnounceEvent::None,
            };
            if step % 997 == 0 {
                let cutoff = now.saturating_sub(20);
                let before = model.len();
                model.retain(|_, v| v.2 >= cutoff);
                assert_eq!(s.expire(cutoff), before - model.len());
            }
            let a = PeerAnnounce {
                peer_id: PeerId([id; 20]),
                addr: SocketAddr::new(ip, port),
                seeder,
                event,
            };
            let numwant = rng.gen_range(0..12usize);
            let mut out = Vec::new();
            s.announce(&a, now, numwant, &mut rng, &mut out);
            let key = (id, ip);
            let stored = if event == AnnounceEvent::Stopped {
                model.remove(&key);
                false
            } else {
                let prev = model.get(&key).map(|v| v.1);
                if prev.is_some() || model.len() < 40 {
                    model.insert(key, (port, seeder, now));
                }
                if event == AnnounceEvent::Completed && prev != Some(true) {
                    downloaded += 1;
                }
                model.contains_key(&key)
            };
            s.check();
            let seeds = model.values().filter(|v| v.1).count();
            assert_eq!(s.len(), model.len());
            assert_eq!(
                s.stats(),
                ScrapeStats {
                    complete: seeds as u32,
                    downloaded,
                    incomplete: (model.len() - seeds) as u32,
                }
            );
            if event != AnnounceEvent::Stopped {
                let candidates: HashSet<SocketAddr> = model
                    .iter()
                    .filter(|(k, v)| **k != key && !(seeder && v.1))
                    .map(|((_, ip), v)| SocketAddr::new(*ip, v.0))
                    .collect();
                let got: HashSet<SocketAddr> = out.iter().copied().collect();
                assert_eq!(got.len(), out.len(), "distinct");
                assert_eq!(
                    out.len(),
                    numwant.min(candidates.len()),
                    "step {step} stored {stored}"
                );
                assert!(got.is_subset(&candidates));
            }
        }
    }

    #[test]
    fn sampling_is_distinct_and_covers_every_index_evenly() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut hits = [0u32; 20];
        for _ in 0..20_000 {
            let mut got = Vec::new();
            sample_distinct(&mut rng, 20, 5, |i| got.push(i));
            let set: HashSet<_> = got.iter().copied().collect();
            assert_eq!((got.len(), set.len()), (5, 5));
            got.iter().for_each(|&i| hits[i] += 1);
        }
        // Each index is picked with probability 1/4: 5000 expected, sd ~61.
        assert!(hits.iter().all(|&h| (4700..5300).contains(&h)), "{hits:?}");
        for (n, k) in [(100_000, 3), (10_000, 9_999), (2, 1), (7, 0)] {
            let mut got = HashSet::new();
            sample_distinct(&mut rng, n, k, |i| assert!(i < n && got.insert(i)));
            assert_eq!(got.len(), k);
        }
    }
}
