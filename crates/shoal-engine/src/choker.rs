//! Upload slots: which interested peers we unchoke (BEP 3 "choking").
//!
//! Tit-for-tat as in BEP 3 and mainline: every `recheck_interval` the
//! `unchoke_slots` interested peers with the best rates are unchoked (rate of data
//! *from* them while downloading, *to* them while seeding, where reciprocation is
//! moot and fast downloaders spread the data best). Uninterested peers that beat
//! the slowest of those are unchoked too, so they can start at once if they become
//! interested. One more interested peer is unchoked optimistically, rotated every
//! `optimistic_interval`; peers we never unchoked are three times as likely to be
//! chosen, so newcomers get a first piece to trade. Seeds are never unchoked while
//! we seed. Ties are broken with the caller's RNG, so decisions are deterministic
//! for a seeded RNG.
//!
//! A seeder is frugal, because its upload is not reciprocated and every byte it
//! sends of a piece its peers already hold is one they could have traded:
//! - it fills only `seeding_slots` (1) regular slot besides the optimistic one: one
//!   fast receiver fetches distinct pieces (rarest first) and passes them on, where
//!   two fed at once fetch some of the same pieces before their HAVEs meet;
//! - once its connected peers hold every piece between them (the caller says so
//!   through [`Choker::set_swarm_covered`], from the HAVEs peers send to seeds
//!   too), it keeps `covered_seeding_slots` (0) regular slots: only the optimistic
//!   unchoke stays, so a stalled swarm still gets data, and the regular slot comes
//!   back as soon as some piece is held by no connected peer again. The torrent
//!   also counts a peer that left us holding every piece as a copy for a minute
//!   (it completed and closed the seed-to-seed connection; it seeds on elsewhere).
//!
//! A lone leecher never holds every piece before it is done, so it keeps the
//! regular slot and full speed. Bench scenario 3 (one seeder, 8 Shoal leechers
//! started together, 256 MiB, 2 shared cores, medians of 3 runs, binaries
//! interleaved): the seeder uploaded 2.16x and 2.36x the file (runs up to 3.02x;
//! the first 4 interested leechers were unchoked early, as early unchokes used
//! `unchoke_slots`, and kept the seeder for the whole ~4 s transfer, each fetching
//! 60-69% of the file from it); with 2 seeding slots and the covered rule 1.19x
//! and 1.48x (runs up to 1.63x); with 1 seeding slot 1.01x and 1.01x (every run
//! 1.00-1.18x). The last leecher finished as soon in all three (3.8-4.9 s; 3.8 s
//! and 3.9 s for the last two).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;

use crate::picker::PeerKey;

/// Choker tuning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChokerConfig {
    /// Regular unchoke slots, besides the optimistic one.
    pub unchoke_slots: usize,
    /// Regular slots while seeding (see the module doc), besides the optimistic one.
    pub seeding_slots: usize,
    /// Regular slots while seeding once every piece is held by some connected peer
    /// (see the module doc), besides the optimistic one.
    pub covered_seeding_slots: usize,
    /// How often the optimistic unchoke moves to another peer.
    pub optimistic_interval: Duration,
    /// How often the regular slots are recomputed.
    pub recheck_interval: Duration,
}

impl Default for ChokerConfig {
    fn default() -> Self {
        ChokerConfig {
            unchoke_slots: 4,
            seeding_slots: 1,
            covered_seeding_slots: 0,
            optimistic_interval: Duration::from_secs(30),
            recheck_interval: Duration::from_secs(10),
        }
    }
}

/// What the choker needs to know about one connected peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSnapshot {
    /// The caller's key for the peer.
    pub key: PeerKey,
    /// The peer is interested in our pieces.
    pub interested: bool,
    /// Bytes per second we receive from the peer.
    pub download_rate: u64,
    /// Bytes per second we send to the peer.
    pub upload_rate: u64,
    /// The peer has every piece.
    pub is_seed: bool,
}

/// Changes to apply, relative to the choker's previous decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChokeDecision {
    /// Peers to unchoke.
    pub unchoke: Vec<PeerKey>,
    /// Peers to choke.
    pub choke: Vec<PeerKey>,
}

impl ChokeDecision {
    /// True if nothing changes.
    pub fn is_empty(&self) -> bool {
        self.unchoke.is_empty() && self.choke.is_empty()
    }
}

/// Choking state of one torrent. See the module docs.
#[derive(Debug)]
pub struct Choker {
    config: ChokerConfig,
    /// Peers we have unchoked, optimistic one included.
    unchoked: Vec<PeerKey>,
    optimistic: Option<PeerKey>,
    next_recheck: Option<Instant>,
    next_optimistic: Option<Instant>,
    /// Peers we have unchoked at least once (the rest get 3x optimistic weight).
    ever_unchoked: HashSet<PeerKey>,
    /// Recompute at the next tick regardless of the interval.
    dirty: bool,
    /// Every piece is held by some connected peer (see [`Self::set_swarm_covered`]).
    covered: bool,
}

impl Choker {
    /// A choker with every peer choked.
    pub fn new(config: ChokerConfig) -> Self {
        Choker {
            config,
            unchoked: Vec::new(),
            optimistic: None,
            next_recheck: None,
            next_optimistic: None,
            ever_unchoked: HashSet::new(),
            dirty: true,
            covered: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ChokerConfig {
        &self.config
    }

    /// Peers currently unchoked by our decisions.
    pub fn unchoked(&self) -> &[PeerKey] {
        &self.unchoked
    }

    /// The current optimistic unchoke.
    pub fn optimistic(&self) -> Option<PeerKey> {
        self.optimistic
    }

    /// True if `key` is unchoked.
    pub fn is_unchoked(&self, key: PeerKey) -> bool {
        self.unchoked.contains(&key)
    }

    /// Regular (not optimistic) slots for the current state.
    pub fn regular_slots(&self, seeding: bool) -> usize {
        match (seeding, self.covered) {
            (false, _) => self.config.unchoke_slots,
            (true, false) => self.config.seeding_slots,
            (true, true) => self.config.covered_seeding_slots,
        }
    }

    /// Records whether every piece is held by some connected peer. While seeding, a
    /// change takes effect at the next [`Self::tick`], which it returns true for.
    pub fn set_swarm_covered(&mut self, covered: bool, seeding: bool) -> bool {
        if self.covered == covered {
            return false;
        }
        self.covered = covered;
        self.dirty |= seeding;
        seeding
    }

    /// Recompute at the next [`Self::tick`] (e.g. a peer became interested).
    pub fn invalidate(&mut self) {
        self.dirty = true;
    }

    /// Records that the caller unchoked `key` on its own (e.g. a free slot filled
    /// at once); the next recheck may choke it again.
    pub fn mark_unchoked(&mut self, key: PeerKey) {
        if !self.unchoked.contains(&key) {
            self.unchoked.push(key);
            self.ever_unchoked.insert(key);
        }
    }

    /// `key` disconnected.
    pub fn peer_removed(&mut self, key: PeerKey) {
        if let Some(i) = self.unchoked.iter().position(|&k| k == key) {
            self.unchoked.remove(i);
            self.dirty = true;
        }
        if self.optimistic == Some(key) {
            self.optimistic = None;
        }
        self.ever_unchoked.remove(&key);
    }

    /// Decides at `now` which of `peers` (every connected peer) to choke and
    /// unchoke. Does nothing between rechecks unless invalidated or a slot freed.
    /// Peers missing from `peers` are forgotten without a `choke`.
    pub fn tick<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        peers: &[PeerSnapshot],
        we_are_seeding: bool,
        rng: &mut R,
    ) -> ChokeDecision {
        let present = |k: &PeerKey| peers.iter().any(|p| p.key == *k);
        let before = self.unchoked.len();
        self.unchoked.retain(present);
        if self.unchoked.len() != before {
            self.dirty = true;
        }
        if self.optimistic.is_some_and(|k| !present(&k)) {
            self.optimistic = None;
        }
        let due = self.next_recheck.is_none_or_past(now);
        if !due && !self.dirty {
            return ChokeDecision::default();
        }
        self.dirty = false;
        self.next_recheck = Some(now + self.config.recheck_interval);

        let new_set = self.compute(now, peers, we_are_seeding, rng);
        let mut decision = ChokeDecision::default();
        for &k in &new_set {
            if !self.unchoked.contains(&k) {
                decision.unchoke.push(k);
                self.ever_unchoked.insert(k);
            }
        }
        for &k in &self.unchoked {
            if !new_set.contains(&k) {
                decision.choke.push(k);
            }
        }
        self.unchoked = new_set;
        decision
    }

    /// The unchoked set for this round, optimistic unchoke last.
    fn compute<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        peers: &[PeerSnapshot],
        seeding: bool,
        rng: &mut R,
    ) -> Vec<PeerKey> {
        let rate = |p: &PeerSnapshot| {
            if seeding {
                p.upload_rate
            } else {
                p.download_rate
            }
        };
        let eligible = |p: &PeerSnapshot| !(seeding && p.is_seed);
        let mut ranked: Vec<&PeerSnapshot> = peers
            .iter()
            .filter(|p| p.interested && eligible(p))
            .collect();
        ranked.shuffle(rng);
        ranked.sort_by_key(|p| std::cmp::Reverse(rate(p)));
        let slots = self.regular_slots(seeding);
        let mut set: Vec<PeerKey> = ranked.iter().take(slots).map(|p| p.key).collect();

        // BEP 3: uninterested peers faster than the slowest regular one stay ready.
        if !seeding && set.len() == slots {
            let floor = ranked.get(slots.saturating_sub(1)).map_or(0, |p| rate(p));
            let mut fast: Vec<&PeerSnapshot> = peers
                .iter()
                .filter(|p| !p.interested && eligible(p) && rate(p) > floor && rate(p) > 0)
                .collect();
            fast.sort_by_key(|p| std::cmp::Reverse(rate(p)));
            set.extend(fast.iter().take(slots).map(|p| p.key));
        }

        let current = self
            .optimistic
            .filter(|k| !set.contains(k) && ranked.iter().any(|p| p.key == *k));
        let rotate = current.is_none() || self.next_optimistic.is_none_or_past(now);
        self.optimistic = if rotate {
            self.next_optimistic = Some(now + self.config.optimistic_interval);
            let pool: Vec<&PeerSnapshot> = ranked
                .iter()
                .copied()
                .filter(|p| !set.contains(&p.key))
                .collect();
            let weight = |p: &&PeerSnapshot| {
                if self.ever_unchoked.contains(&p.key) {
                    1
                } else {
                    3
                }
            };
            pool.choose_weighted(rng, weight).ok().map(|p| p.key)
        } else {
            current
        };
        if let Some(k) = self.optimistic {
            set.push(k);
        }
        set
    }
}

/// `Option<Instant>` deadline helper: unset or reached.
trait Deadline {
    fn is_none_or_past(&self, now: Instant) -> bool;
}

impl Deadline for Option<Instant> {
    fn is_none_or_past(&self, now: Instant) -> bool {
        match self {
            Some(t) => now >= *t,
            None => true,
        }
    }
}

#[cfg(test)]
mod tests;
