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
//!
//! Persistence (`swarm_store`) reads the registry without adding work to announces: each
//! shard has a `dirty` flag set under the lock the announce already holds, and
//! [`Registry::snapshot`] copies only dirty shards, one short lock each. Swarm clocks
//! ([`Tick`]s) start `history` before the registry is made, so peers restored with
//! their real last-announce times expire when they would have in the old process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::Rng;
use shoal_proto::tracker::{AnnounceEvent, ScrapeStats};
use shoal_proto::InfoHash;

use crate::swarm::{PeerAnnounce, Swarm, Tick};
use crate::swarm_store::{SavedPeer, SavedSwarm, ShardSnapshot};

/// Number of shards; a power of two well above any core count we run on.
const SHARDS: usize = 64;

/// The registry already holds `max_swarms` torrents and this announce would add one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// The swarms of one shard.
#[derive(Default)]
struct Shard {
    swarms: HashMap<InfoHash, Swarm>,
    /// Changed since the last [`Registry::snapshot`].
    dirty: bool,
}

/// Longest history kept before the registry's start: peers restored with older last
/// announces count as announced at the start (they expire a little late).
const MAX_HISTORY: Duration = Duration::from_secs(7 * 24 * 3600);

/// What [`Registry::restore`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Restored {
    pub swarms: usize,
    pub peers: usize,
    /// Peers dropped: silent for longer than the TTL.
    pub expired: usize,
    /// Peers dropped: no room (`max_swarms`, `max_peers`).
    pub no_room: usize,
}

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
    /// At most `max_swarms` torrents of at most `max_peers` peers each; peers last
    /// seen up to `history` ago can be restored with their real times.
    pub fn new(max_swarms: usize, max_peers: usize, history: Duration) -> Self {
        let now = Instant::now();
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            swarms: AtomicUsize::new(0),
            max_swarms,
            max_peers,
            // The monotonic clock may not reach that far back (a young boot): then
            // restored peers count as seen at start.
            epoch: now.checked_sub(history.min(MAX_HISTORY)).unwrap_or(now),
        }
    }

    /// `t` as a swarm [`Tick`] (1/16 s since the registry was made; saturates after
    /// 8.5 years, from when on peers stop expiring but stay bounded per swarm).
    fn tick(&self, t: Instant) -> Tick {
        let ms = t.saturating_duration_since(self.epoch).as_millis();
        Tick::try_from(ms * 16 / 1000).unwrap_or(Tick::MAX)
    }

    /// The shard `hash` lives in.
    fn shard_of(&self, hash: &InfoHash) -> usize {
        // Info-hashes are SHA-1 output, so any byte spreads torrents evenly.
        usize::from(hash.0[0]) % self.shards.len()
    }

    fn shard(&self, hash: &InfoHash) -> MutexGuard<'_, Shard> {
        self.lock(self.shard_of(hash))
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
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
        let mut guard = self.shard(hash);
        let shard = &mut *guard;
        let swarm = match shard.swarms.get_mut(hash) {
            Some(swarm) => swarm,
            // Leaving a swarm we do not know creates nothing.
            None if a.event == AnnounceEvent::Stopped => return Ok(ScrapeStats::default()),
            None => {
                if self.swarms.fetch_add(1, Ordering::Relaxed) >= self.max_swarms {
                    self.swarms.fetch_sub(1, Ordering::Relaxed);
                    return Err(Full);
                }
                shard
                    .swarms
                    .entry(*hash)
                    .or_insert_with(|| Swarm::new(self.max_peers))
            }
        };
        shard.dirty = true;
        swarm.announce(a, self.tick(now), numwant, rng, out);
        Ok(swarm.stats())
    }

    /// Counts for one torrent (zeros when unknown).
    pub fn stats(&self, hash: &InfoHash) -> ScrapeStats {
        self.shard(hash)
            .swarms
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
            out.extend(shard.swarms.iter().take(room).map(|(h, s)| (*h, s.stats())));
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
            let before = (peers, swarms);
            shard.swarms.retain(|_, swarm| {
                peers += swarm.expire(cutoff);
                let keep = swarm.len() > 0;
                swarms += usize::from(!keep);
                keep
            });
            shard.dirty |= (peers, swarms) != before;
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
            t.swarms += shard.swarms.len();
            for swarm in shard.swarms.values() {
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

    /// Copies the shards changed since the last call (every shard with `all`) and marks
    /// them clean, locking one shard at a time. `now` and `now_unix_ms` are the same
    /// moment on the two clocks: last announces are saved as Unix milliseconds.
    pub fn snapshot(&self, all: bool, now: Instant, now_unix_ms: i64) -> Vec<ShardSnapshot> {
        let now_tick = self.tick(now);
        let mut out = Vec::new();
        for i in 0..self.shards.len() {
            let mut shard = self.lock(i);
            if !(shard.dirty || all) {
                continue;
            }
            shard.dirty = false;
            let swarms = shard
                .swarms
                .iter()
                .map(|(hash, swarm)| SavedSwarm {
                    info_hash: *hash,
                    downloaded: swarm.downloaded(),
                    peers: swarm
                        .peers()
                        .map(|(addr, peer_id, seeder, seen)| SavedPeer {
                            addr,
                            peer_id,
                            seeder,
                            last_announce_ms: now_unix_ms
                                .saturating_sub(ticks_to_ms(now_tick.saturating_sub(seen))),
                        })
                        .collect(),
                })
                .collect();
            out.push(ShardSnapshot { shard: i, swarms });
        }
        out
    }

    /// Marks shards changed again (saving them failed, so the next save retries them).
    pub fn mark_dirty(&self, shards: impl IntoIterator<Item = usize>) {
        for i in shards {
            if i < self.shards.len() {
                self.lock(i).dirty = true;
            }
        }
    }

    /// Puts back saved swarms, dropping peers whose last announce (Unix milliseconds,
    /// compared with `now_unix_ms`, the same moment as `now`) is more than `ttl` ago,
    /// and keeping the swarm and peer bounds. A peer saved with a time in the future
    /// (the wall clock went back) counts as seen now.
    pub fn restore(
        &self,
        saved: Vec<SavedSwarm>,
        now: Instant,
        now_unix_ms: i64,
        ttl: Duration,
    ) -> Restored {
        let now_tick = self.tick(now);
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let mut done = Restored::default();
        for s in saved {
            let (live, old): (Vec<_>, Vec<_>) = s
                .peers
                .into_iter()
                .partition(|p| now_unix_ms.saturating_sub(p.last_announce_ms) <= ttl_ms);
            done.expired += old.len();
            if live.is_empty() {
                continue;
            }
            let mut guard = self.shard(&s.info_hash);
            let shard = &mut *guard;
            let swarm = match shard.swarms.entry(s.info_hash) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    if self.swarms.fetch_add(1, Ordering::Relaxed) >= self.max_swarms {
                        self.swarms.fetch_sub(1, Ordering::Relaxed);
                        done.no_room += live.len();
                        continue;
                    }
                    done.swarms += 1;
                    e.insert(Swarm::new(self.max_peers))
                }
            };
            shard.dirty = true;
            swarm.restore_downloaded(s.downloaded);
            for p in live {
                let age_ms = now_unix_ms.saturating_sub(p.last_announce_ms).max(0);
                let seen = now_tick.saturating_sub(ms_to_ticks(age_ms));
                if swarm.restore(p.peer_id, p.addr, p.seeder, seen) {
                    done.peers += 1;
                } else {
                    done.no_room += 1;
                }
            }
        }
        done
    }
}

/// Milliseconds in `ticks` sixteenths of a second.
fn ticks_to_ms(ticks: Tick) -> i64 {
    i64::from(ticks) * 1000 / 16
}

/// Whole ticks in `ms` milliseconds (non-negative), saturating.
fn ms_to_ticks(ms: i64) -> Tick {
    Tick::try_from(ms.saturating_mul(16) / 1000).unwrap_or(Tick::MAX)
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
        let r = Registry::new(2, 100, Duration::ZERO);
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

    /// Announces peer `n` (a seeder when `seeder`) to torrent `h` at `t`.
    fn put(r: &Registry, h: u8, n: u8, seeder: bool, event: AnnounceEvent, t: Instant) {
        let mut p = a(n, event);
        p.seeder = seeder;
        r.announce(
            &InfoHash([h; 20]),
            &p,
            t,
            0,
            &mut rand::thread_rng(),
            &mut Vec::new(),
        )
        .unwrap();
    }

    fn peers_of(r: &Registry, h: u8) -> Vec<(SocketAddr, bool)> {
        let shard = r.shard(&InfoHash([h; 20]));
        let mut v: Vec<_> = shard.swarms[&InfoHash([h; 20])]
            .peers()
            .map(|(addr, _, seeder, _)| (addr, seeder))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn snapshots_restore_seeders_times_and_completions_and_drop_expired_peers() {
        let ttl = Duration::from_secs(100);
        let old = Registry::new(10, 100, ttl);
        let t0 = Instant::now();
        let unix0 = 1_700_000_000_000i64;
        put(&old, 1, 1, false, AnnounceEvent::Started, t0);
        put(
            &old,
            1,
            1,
            true,
            AnnounceEvent::Completed,
            t0 + Duration::from_secs(1),
        );
        put(
            &old,
            1,
            2,
            false,
            AnnounceEvent::Started,
            t0 + Duration::from_secs(50),
        );
        put(
            &old,
            2,
            3,
            true,
            AnnounceEvent::Started,
            t0 + Duration::from_secs(50),
        );
        let snap_at = t0 + Duration::from_secs(60);
        let shards = old.snapshot(false, snap_at, unix0);
        assert_eq!(shards.len(), 2, "only shards with swarms are dirty");
        let saved: Vec<SavedSwarm> = shards.into_iter().flat_map(|s| s.swarms).collect();
        let p1 = saved
            .iter()
            .find(|s| s.info_hash == InfoHash([1; 20]))
            .unwrap();
        assert_eq!(p1.downloaded, 1);
        let seen: Vec<_> = p1
            .peers
            .iter()
            .map(|p| (p.seeder, p.last_announce_ms))
            .collect();
        assert!(seen.contains(&(true, unix0 - 59_000)) && seen.contains(&(false, unix0 - 10_000)));
        assert!(
            old.snapshot(false, snap_at, unix0).is_empty(),
            "clean until changed"
        );

        // A restart 50 s later: peer 1 (silent 109 s) is past the 100 s TTL.
        let new = Registry::new(10, 100, ttl);
        let now = Instant::now();
        let done = new.restore(saved.clone(), now, unix0 + 50_000, ttl);
        assert_eq!(
            done,
            Restored {
                swarms: 2,
                peers: 2,
                expired: 1,
                no_room: 0
            }
        );
        assert_eq!(
            new.stats(&InfoHash([1; 20])),
            ScrapeStats {
                complete: 0,
                downloaded: 1,
                incomplete: 1
            }
        );
        assert_eq!(
            new.stats(&InfoHash([2; 20])).complete,
            1,
            "a seeder stays a seeder"
        );
        assert_eq!(peers_of(&new, 2), [(a(3, AnnounceEvent::None).addr, true)]);
        // Peers keep their real age: seen 60 s before the restart, gone 40 s after it.
        assert_eq!(new.expire(now + Duration::from_secs(39) - ttl), (0, 0));
        assert_eq!(new.expire(now + Duration::from_secs(41) - ttl), (2, 2));
        // What was restored is saved again whole by the next (full) snapshot.
        let full = new.snapshot(true, now, unix0);
        assert_eq!(full.len(), SHARDS);
    }

    #[test]
    fn restore_keeps_the_bounds_and_a_clock_gone_back_counts_as_now() {
        let ttl = Duration::from_secs(100);
        let r = Registry::new(1, 2, ttl);
        let peer = |n: u8, ms| SavedPeer {
            addr: a(n, AnnounceEvent::None).addr,
            peer_id: shoal_proto::PeerId([n; 20]),
            seeder: n == 1,
            last_announce_ms: ms,
        };
        let swarm = |h: u8, peers| SavedSwarm {
            info_hash: InfoHash([h; 20]),
            downloaded: 0,
            peers,
        };
        let now = Instant::now();
        let done = r.restore(
            vec![
                swarm(1, vec![peer(1, 5_000_000), peer(2, 1_000), peer(3, 1_000)]),
                swarm(2, vec![peer(4, 1_000)]),
                swarm(3, vec![peer(5, 1)]),
            ],
            now,
            1_000,
            ttl,
        );
        assert_eq!(
            done,
            Restored {
                swarms: 1,
                peers: 2,
                expired: 0,
                no_room: 3
            }
        );
        assert_eq!(r.swarm_count(), 1);
        // The peer saved "in the future" is as fresh as the others.
        assert_eq!(r.expire(now - Duration::from_secs(1)), (0, 0));
        assert!(r.restore(Vec::new(), now, 0, ttl) == Restored::default());
    }

    #[test]
    fn changes_mark_only_their_shard_and_failed_saves_are_retried() {
        let r = Registry::new(10, 100, Duration::ZERO);
        let now = Instant::now();
        put(&r, 1, 1, false, AnnounceEvent::Started, now);
        put(&r, 2, 1, false, AnnounceEvent::Started, now);
        assert_eq!(r.snapshot(false, now, 0).len(), 2);
        put(&r, 2, 1, false, AnnounceEvent::None, now);
        let again = r.snapshot(false, now, 0);
        assert_eq!(
            again.iter().map(|s| s.shard).collect::<Vec<_>>(),
            [r.shard_of(&InfoHash([2; 20]))]
        );
        r.mark_dirty([again[0].shard, 999]);
        assert_eq!(r.snapshot(false, now, 0).len(), 1);
        // Expiry is a change too: the emptied shard is saved without its swarm.
        r.expire(now + Duration::from_secs(1));
        let emptied = r.snapshot(false, now, 0);
        assert_eq!(emptied.len(), 2);
        assert!(emptied.iter().all(|s| s.swarms.is_empty()));
    }
}
