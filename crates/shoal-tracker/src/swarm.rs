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
mod tests;
