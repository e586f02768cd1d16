//! The peers of one address family in a swarm: compact entries in two vectors
//! (seeders, leechers) and an index that stores only positions.
//!
//! An IPv4 peer takes 32 bytes (peer id, address, port, last announce) and an IPv6 peer
//! 44, in place in a vector: no allocation per peer. The index is a
//! [`hashbrown::HashTable`] of 4-byte slots (position, with the top bit set for
//! seeders) hashed by (peer id, IP); a lookup compares the entry the slot points at,
//! so keys are not stored twice. Removal is `swap_remove` plus one slot fix-up, found
//! by its old value.

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

/// One stored peer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry<A> {
    pub seen: Tick,
    pub port: u16,
    pub id: PeerId,
    pub ip: A,
}

impl<A: Ip> Entry<A> {
    pub fn addr(&self) -> SocketAddr {
        self.ip.socket(self.port)
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
    pub seeders: Vec<Entry<A>>,
    pub leechers: Vec<Entry<A>>,
    index: HashTable<u32>,
}

impl<A: Ip> Lists<A> {
    pub fn new() -> Self {
        Lists {
            seeders: Vec::new(),
            leechers: Vec::new(),
            index: HashTable::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.seeders.len() + self.leechers.len()
    }

    fn list(&self, seeder: bool) -> &Vec<Entry<A>> {
        if seeder {
            &self.seeders
        } else {
            &self.leechers
        }
    }

    fn list_mut(&mut self, seeder: bool) -> &mut Vec<Entry<A>> {
        if seeder {
            &mut self.seeders
        } else {
            &mut self.leechers
        }
    }

    fn at(&self, slot: u32) -> Option<&Entry<A>> {
        let (seeder, pos) = parts(slot);
        self.list(seeder).get(pos)
    }

    /// The slot of the peer (`id`, `ip`), if stored.
    fn find(&self, hash: u64, id: &PeerId, ip: &A) -> Option<u32> {
        self.index
            .find(hash, |&s| {
                self.at(s).is_some_and(|e| e.id == *id && e.ip == *ip)
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
        let entry = Entry {
            seen: now,
            port,
            id,
            ip,
        };
        match self.find(hash, &id, &ip).map(parts) {
            Some((was, pos)) if was == seeder => {
                self.list_mut(seeder)[pos] = entry;
                Applied {
                    was_seeder: Some(was),
                    now_at: Some((seeder, pos)),
                }
            }
            Some((was, _)) => {
                self.remove_hashed(hasher, hash, &id, &ip);
                let pos = self.insert(hasher, hash, entry, seeder);
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
                let pos = self.insert(hasher, hash, entry, seeder);
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
        entry: Entry<A>,
        seeder: bool,
    ) -> usize {
        let list = self.list_mut(seeder);
        list.push(entry);
        let pos = list.len() - 1;
        let Lists {
            seeders,
            leechers,
            index,
        } = self;
        index.insert_unique(hash, slot(seeder, pos), |&s| {
            let (seeder, pos) = parts(s);
            let e = if seeder {
                &seeders[pos]
            } else {
                &leechers[pos]
            };
            hasher.hash_one((&e.id, &e.ip))
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
            list.get(pos).is_some_and(|e| e.id == *id && e.ip == *ip)
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
            // The last entry moved into `pos`: point its slot there.
            let moved = &self.list(seeder)[pos];
            let h = hasher.hash_one((&moved.id, &moved.ip));
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
        self.seeders.retain(|e| e.seen >= cutoff);
        self.leechers.retain(|e| e.seen >= cutoff);
        let gone = before - self.len();
        if gone > 0 {
            for list in [&mut self.seeders, &mut self.leechers] {
                // Give back memory a burst of peers left behind.
                if list.capacity() > 16 && list.len() < list.capacity() / 4 {
                    list.shrink_to(list.len() * 2);
                }
            }
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
        // Empty, so neither call below hashes anything: a fresh table of the right size.
        index.clear();
        index.shrink_to(0, |_| 0);
        let rehash = |s: &u32| {
            let (seeder, pos) = parts(*s);
            let e = if seeder {
                &seeders[pos]
            } else {
                &leechers[pos]
            };
            hasher.hash_one((&e.id, &e.ip))
        };
        index.reserve(seeders.len() + leechers.len(), rehash);
        for (seeder, list) in [(true, &*seeders), (false, &*leechers)] {
            for (pos, e) in list.iter().enumerate() {
                index.insert_unique(hasher.hash_one((&e.id, &e.ip)), slot(seeder, pos), rehash);
            }
        }
    }

    /// Checks that every entry has exactly one slot pointing at it (tests).
    #[cfg(test)]
    pub fn check(&self, hasher: &impl BuildHasher) {
        assert_eq!(self.index.len(), self.len());
        for (seeder, list) in [(true, &self.seeders), (false, &self.leechers)] {
            for (pos, e) in list.iter().enumerate() {
                let h = hasher.hash_one((&e.id, &e.ip));
                assert_eq!(self.find(h, &e.id, &e.ip), Some(slot(seeder, pos)));
            }
        }
    }
}
