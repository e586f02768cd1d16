//! The peers of one address family in a swarm: two [`Peers`] (seeders, leechers) and
//! an index that stores only positions.
//!
//! [`Peers`] keeps parallel vectors: the addresses (6 bytes for IPv4, 18 for IPv6,
//! exactly what a compact reply needs) apart from the peer ids and announce times (24
//! bytes), so an IPv4 peer takes 30 bytes and no allocation of its own, and picking
//! 50 peers for a reply reads a few cache lines of addresses rather than 50 scattered
//! entries (the reads were most of the user-space time of an announce). The index is
//! a [`hashbrown::HashTable`] of 4-byte slots (position, with the top bit set for
//! seeders) hashed by (peer id, IP); a lookup compares the peer the slot points at, so
//! keys are not stored twice. Removal is `swap_remove` plus one slot fix-up, found by
//! its old value.

use std::hash::{BuildHasher, Hash};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use hashbrown::HashTable;
use shoal_proto::PeerId;

/// Time of an announce, in sixteenths of a second since the registry started.
pub(crate) type Tick = u32;

/// The bit of a slot that marks a seeder; the other bits are the position.
const SEEDER: u32 = 1 << 31;

/// The most peers one family of a swarm can hold (positions must fit a slot).
pub(super) const MAX_POS: usize = (SEEDER - 1) as usize;

/// An IP address as stored: `Ipv4Addr` or `Ipv6Addr`.
pub(super) trait Ip: Copy + Eq + Hash {
    fn socket(self, port: u16) -> SocketAddr;
}

impl Ip for Ipv4Addr {
    fn socket(self, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self, port))
    }
}

impl Ip for Ipv6Addr {
    fn socket(self, port: u16) -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(self, port, 0, 0))
    }
}

/// A stored address: IP and port.
pub(super) type Addr<A> = (A, u16);

/// What is stored of a peer besides its address.
#[derive(Debug, Clone, Copy)]
struct Meta {
    id: PeerId,
    seen: Tick,
}

/// One list of peers (the seeders or the leechers of a family), as parallel vectors.
#[derive(Debug)]
pub(super) struct Peers<A> {
    pub addrs: Vec<Addr<A>>,
    meta: Vec<Meta>,
}

impl<A: Ip> Peers<A> {
    fn new() -> Self {
        Peers {
            addrs: Vec::new(),
            meta: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    fn is(&self, pos: usize, id: &PeerId, ip: &A) -> bool {
        self.meta.get(pos).is_some_and(|m| m.id == *id) && self.addrs[pos].0 == *ip
    }

    fn hash(&self, hasher: &impl BuildHasher, pos: usize) -> u64 {
        hasher.hash_one((&self.meta[pos].id, &self.addrs[pos].0))
    }

    fn set(&mut self, pos: usize, port: u16, id: PeerId, seen: Tick) {
        self.addrs[pos].1 = port;
        self.meta[pos] = Meta { id, seen };
    }

    fn push(&mut self, ip: A, port: u16, id: PeerId, seen: Tick) -> usize {
        self.addrs.push((ip, port));
        self.meta.push(Meta { id, seen });
        self.addrs.len() - 1
    }

    fn swap_remove(&mut self, pos: usize) {
        self.addrs.swap_remove(pos);
        self.meta.swap_remove(pos);
    }

    /// Every peer as (address, peer id, last announce), in list order.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, PeerId, Tick)> + '_ {
        self.addrs
            .iter()
            .zip(&self.meta)
            .map(|(&(ip, port), m)| (ip.socket(port), m.id, m.seen))
    }

    /// Keeps the peers seen at or after `cutoff`.
    fn retain_seen(&mut self, cutoff: Tick) {
        let mut keep = 0;
        for i in 0..self.meta.len() {
            if self.meta[i].seen >= cutoff {
                self.addrs[keep] = self.addrs[i];
                self.meta[keep] = self.meta[i];
                keep += 1;
            }
        }
        self.addrs.truncate(keep);
        self.meta.truncate(keep);
        // Give back memory a burst of peers left behind.
        if self.addrs.capacity() > 16 && keep < self.addrs.capacity() / 4 {
            self.addrs.shrink_to(keep * 2);
            self.meta.shrink_to(keep * 2);
        }
    }
}

fn slot(seeder: bool, pos: usize) -> u32 {
    // Positions stay below MAX_POS: the swarm never stores more peers than that.
    u32::try_from(pos).unwrap_or(SEEDER - 1) | if seeder { SEEDER } else { 0 }
}

fn parts(slot: u32) -> (bool, usize) {
    (slot & SEEDER != 0, (slot & !SEEDER) as usize)
}

/// What an announce did to the lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Applied {
    /// Whether the peer was a seeder before (`None`: it was not stored).
    pub was_seeder: Option<bool>,
    /// Where the peer is now, as (seeder, position), if stored.
    pub now_at: Option<(bool, usize)>,
}

/// Seeders and leechers of one address family.
#[derive(Debug)]
pub(super) struct Lists<A> {
    pub seeders: Peers<A>,
    pub leechers: Peers<A>,
    index: HashTable<u32>,
}

impl<A: Ip> Lists<A> {
    pub fn new() -> Self {
        Lists {
            seeders: Peers::new(),
            leechers: Peers::new(),
            index: HashTable::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.seeders.len() + self.leechers.len()
    }

    fn list(&self, seeder: bool) -> &Peers<A> {
        if seeder {
            &self.seeders
        } else {
            &self.leechers
        }
    }

    fn list_mut(&mut self, seeder: bool) -> &mut Peers<A> {
        if seeder {
            &mut self.seeders
        } else {
            &mut self.leechers
        }
    }

    /// The slot of the peer (`id`, `ip`), if stored.
    fn find(&self, hash: u64, id: &PeerId, ip: &A) -> Option<u32> {
        self.index
            .find(hash, |&s| {
                let (seeder, pos) = parts(s);
                self.list(seeder).is(pos, id, ip)
            })
            .copied()
    }

    /// Applies an announce that is not `stopped`: updates the peer in place, moves it
    /// between seeders and leechers, or stores it when `room` allows a new peer.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        hasher: &impl BuildHasher,
        id: PeerId,
        ip: A,
        port: u16,
        seeder: bool,
        now: Tick,
        room: bool,
    ) -> Applied {
        let hash = hasher.hash_one((&id, &ip));
        match self.find(hash, &id, &ip).map(parts) {
            Some((was, pos)) if was == seeder => {
                self.list_mut(seeder).set(pos, port, id, now);
                Applied {
                    was_seeder: Some(was),
                    now_at: Some((seeder, pos)),
                }
            }
            Some((was, _)) => {
                self.remove_hashed(hasher, hash, &id, &ip);
                let pos = self.insert(hasher, hash, (ip, port, id, now), seeder);
                Applied {
                    was_seeder: Some(was),
                    now_at: Some((seeder, pos)),
                }
            }
            None if !room => Applied {
                was_seeder: None,
                now_at: None,
            },
            None => {
                let pos = self.insert(hasher, hash, (ip, port, id, now), seeder);
                Applied {
                    was_seeder: None,
                    now_at: Some((seeder, pos)),
                }
            }
        }
    }

    fn insert(
        &mut self,
        hasher: &impl BuildHasher,
        hash: u64,
        (ip, port, id, seen): (A, u16, PeerId, Tick),
        seeder: bool,
    ) -> usize {
        let pos = self.list_mut(seeder).push(ip, port, id, seen);
        let Lists {
            seeders,
            leechers,
            index,
        } = self;
        index.insert_unique(hash, slot(seeder, pos), |&s| {
            let (seeder, pos) = parts(s);
            let list = if seeder { &*seeders } else { &*leechers };
            list.hash(hasher, pos)
        });
        pos
    }

    /// Removes the peer (`id`, `ip`) if stored; returns whether it was.
    pub fn remove(&mut self, hasher: &impl BuildHasher, id: &PeerId, ip: &A) -> bool {
        let hash = hasher.hash_one((id, ip));
        self.remove_hashed(hasher, hash, id, ip)
    }

    fn remove_hashed(&mut self, hasher: &impl BuildHasher, hash: u64, id: &PeerId, ip: &A) -> bool {
        let Lists {
            seeders,
            leechers,
            index,
        } = self;
        let found = index.find_entry(hash, |&s| {
            let (seeder, pos) = parts(s);
            let list = if seeder { &*seeders } else { &*leechers };
            list.is(pos, id, ip)
        });
        let Ok(found) = found else {
            return false;
        };
        let (gone, _) = found.remove();
        let (seeder, pos) = parts(gone);
        let list = self.list_mut(seeder);
        let last = list.len() - 1;
        list.swap_remove(pos);
        if pos != last {
            // The last peer moved into `pos`: point its slot there.
            let h = self.list(seeder).hash(hasher, pos);
            let old = slot(seeder, last);
            if let Some(s) = self.index.find_mut(h, |&s| s == old) {
                *s = slot(seeder, pos);
            }
        }
        true
    }

    /// Drops peers last seen before `cutoff`; returns how many.
    pub fn expire(&mut self, hasher: &impl BuildHasher, cutoff: Tick) -> usize {
        let before = self.len();
        self.seeders.retain_seen(cutoff);
        self.leechers.retain_seen(cutoff);
        let gone = before - self.len();
        if gone > 0 {
            self.reindex(hasher);
        }
        gone
    }

    fn reindex(&mut self, hasher: &impl BuildHasher) {
        let Lists {
            seeders,
            leechers,
            index,
        } = self;
        // Emptied first, so no hasher call below rehashes anything: a fresh table sized
        // for the peers left.
        index.clear();
        index.shrink_to(0, |_| 0);
        let rehash = |s: &u32| {
            let (seeder, pos) = parts(*s);
            let list = if seeder { &*seeders } else { &*leechers };
            list.hash(hasher, pos)
        };
        index.reserve(seeders.len() + leechers.len(), rehash);
        for (seeder, list) in [(true, &*seeders), (false, &*leechers)] {
            for pos in 0..list.len() {
                index.insert_unique(list.hash(hasher, pos), slot(seeder, pos), rehash);
            }
        }
    }

    /// Checks that every peer has exactly one slot pointing at it (tests).
    #[cfg(test)]
    pub fn check(&self, hasher: &impl BuildHasher) {
        assert_eq!(self.index.len(), self.len());
        for (seeder, list) in [(true, &self.seeders), (false, &self.leechers)] {
            assert_eq!(list.addrs.len(), list.meta.len());
            for pos in 0..list.len() {
                let (id, ip) = (list.meta[pos].id, list.addrs[pos].0);
                let h = list.hash(hasher, pos);
                assert_eq!(self.find(h, &id, &ip), Some(slot(seeder, pos)));
            }
        }
    }
}
