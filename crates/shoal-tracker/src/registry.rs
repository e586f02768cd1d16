//! All swarms, in a map sharded by info-hash so announces for different torrents
//! rarely contend.
//!
//! Why shards of `std::sync::Mutex<HashMap>` rather than one task owning all state: an
//! announce touches one swarm for about a microsecond, so a short uncontended lock is
//! far cheaper than a channel round-trip and two task wake-ups, and it lets every
//! runtime worker serve announces in parallel. Locks are never held across `.await`
//! and never nested (one shard at a time), so there is no lock order to keep.
//!
//! The swarm count is a global atomic checked when a swarm is created, which bounds
//! memory under an open tracker flooded with random info-hashes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use rand::Rng;
use shoal_proto::tracker::{AnnounceEvent, ScrapeStats};
use shoal_proto::InfoHash;

use crate::swarm::{PeerAnnounce, Swarm, Tick};

/// Number of shards; a power of two well above any core count we run on.
const SHARDS: usize = 64;

/// The registry already holds `max_swarms` torrents and this announce would add one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

type Shard = HashMap<InfoHash, Swarm>;

/// Counts over all swarms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub swarms: usize,
    pub seeders: u64,
    pub leechers: u64,
}

/// Every swarm the tracker knows.
pub(crate) struct Registry {
    shards: Box<[Mutex<Shard>]>,
    swarms: AtomicUsize,
    max_swarms: usize,
    max_peers: usize,
    /// Tick 0 of the swarms' clocks.
    epoch: Instant,
}

impl Registry {
    /// At most `max_swarms` torrents of at most `max_peers` peers each.
    pub fn new(max_swarms: usize, max_peers: usize) -> Self {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            swarms: AtomicUsize::new(0),
            max_swarms,
            max_peers,
            epoch: Instant::now(),
        }
    }

    /// `t` as a swarm [`Tick`] (1/16 s since the registry was made; saturates after
    /// 8.5 years, from when on peers stop expiring but stay bounded per swarm).
    fn tick(&self, t: Instant) -> Tick {
        let ms = t.saturating_duration_since(self.epoch).as_millis();
        Tick::try_from(ms * 16 / 1000).unwrap_or(Tick::MAX)
    }

    fn shard(&self, hash: &InfoHash) -> MutexGuard<'_, Shard> {
        // Info-hashes are SHA-1 output, so any byte spreads torrents evenly.
        let i = usize::from(hash.0[0]) % self.shards.len();
        // A panic while holding a shard cannot leave a swarm half-updated in a way
        // that matters more than dropping the tracker would, so recover the guard.
        self.shards[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies an announce; appends chosen peers to `out`; returns the swarm's counts
    /// after the announce.
    pub fn announce(
        &self,
        hash: &InfoHash,
        a: &PeerAnnounce,
        now: Instant,
        numwant: usize,
        rng: &mut impl Rng,
        out: &mut Vec<SocketAddr>,
    ) -> Result<ScrapeStats, Full> {
        let mut shard = self.shard(hash);
        let swarm = match shard.get_mut(hash) {
            Some(swarm) => swarm,
            // Leaving a swarm we do not know creates nothing.
            None if a.event == AnnounceEvent::Stopped => return Ok(ScrapeStats::default()),
            None => {
                if self.swarms.fetch_add(1, Ordering::Relaxed) >= self.max_swarms {
                    self.swarms.fetch_sub(1, Ordering::Relaxed);
                    return Err(Full);
                }
                shard
                    .entry(*hash)
                    .or_insert_with(|| Swarm::new(self.max_peers))
            }
        };
        swarm.announce(a, self.tick(now), numwant, rng, out);
        Ok(swarm.stats())
    }

    /// Counts for one torrent (zeros when unknown).
    pub fn stats(&self, hash: &InfoHash) -> ScrapeStats {
        self.shard(hash)
            .get(hash)
            .map(Swarm::stats)
            .unwrap_or_default()
    }

    /// Counts for up to `limit` torrents, in no particular order.
    pub fn all_stats(&self, limit: usize) -> Vec<(InfoHash, ScrapeStats)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let room = limit.saturating_sub(out.len());
            out.extend(shard.iter().take(room).map(|(h, s)| (*h, s.stats())));
            if out.len() >= limit {
                break;
            }
        }
        out
    }

    /// Drops peers not seen since `cutoff` and swarms left empty. Returns
    /// `(peers, swarms)` removed. Locks one shard at a time.
    pub fn expire(&self, cutoff: Instant) -> (usize, usize) {
        let (mut peers, mut swarms) = (0, 0);
        let cutoff = self.tick(cutoff);
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.retain(|_, swarm| {
                peers += swarm.expire(cutoff);
                let keep = swarm.len() > 0;
                swarms += usize::from(!keep);
                keep
            });
        }
        self.swarms.fetch_sub(swarms, Ordering::Relaxed);
        (peers, swarms)
    }

    /// Swarm, seeder and leecher counts over every torrent (locks one shard at a time,
    /// so the figures are a near-instant snapshot, not an atomic one).
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            t.swarms += shard.len();
            for swarm in shard.values() {
                let s = swarm.stats();
                t.seeders += u64::from(s.complete);
                t.leechers += u64::from(s.incomplete);
            }
        }
        t
    }

    /// Number of swarms.
    pub fn swarm_count(&self) -> usize {
        self.swarms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::PeerId;
    use std::time::Duration;

    fn a(n: u8, event: AnnounceEvent) -> PeerAnnounce {
        PeerAnnounce {
            peer_id: PeerId([n; 20]),
            addr: SocketAddr::from(([127, 0, 0, 1], u16::from(n) + 1)),
            seeder: false,
            event,
        }
    }

    #[test]
    fn bounded_swarm_count_and_expiry() {
        let r = Registry::new(2, 100);
        let now = Instant::now();
        let mut rng = rand::thread_rng();
        let mut out = Vec::new();
        let go = |h: u8, e| {
            r.announce(
                &InfoHash([h; 20]),
                &a(1, e),
                now,
                10,
                &mut rand::thread_rng(),
                &mut Vec::new(),
            )
        };
        assert!(go(1, AnnounceEvent::Started).is_ok());
        assert!(go(2, AnnounceEvent::Started).is_ok());
        assert_eq!(go(3, AnnounceEvent::Started), Err(Full));
        assert_eq!(go(4, AnnounceEvent::Stopped), Ok(ScrapeStats::default()));
        assert_eq!(r.swarm_count(), 2);
        // Existing swarms still work when full.
        let s = r
            .announce(
                &InfoHash([1; 20]),
                &a(2, AnnounceEvent::None),
                now,
                10,
                &mut rng,
                &mut out,
            )
            .unwrap();
        assert_eq!(s.incomplete, 2);
        assert_eq!(out.len(), 1);
        assert_eq!(r.all_stats(10).len(), 2);
        assert_eq!(r.all_stats(1).len(), 1);
        assert_eq!(
            r.totals(),
            Totals {
                swarms: 2,
                seeders: 0,
                leechers: 3
            }
        );
        assert_eq!(r.expire(now + Duration::from_secs(1)), (3, 2));
        assert_eq!(r.swarm_count(), 0);
        assert!(go(3, AnnounceEvent::Started).is_ok());
        assert_eq!(r.stats(&InfoHash([3; 20])).incomplete, 1);
    }
}
