//! Peer addresses learnt (trackers, the user, retries) and not yet dialled: a queue
//! with a set beside it, so that a tracker reply of hundreds of thousands of peers
//! costs one hash lookup per address, and a cap, so that it costs no more memory than
//! a few thousand.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use super::types::PeerSource;

/// Most addresses kept; later ones are ignored until some are dialled.
pub(crate) const MAX_CANDIDATES: usize = 2000;

/// Addresses to dial, newest first; retries go last.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    queue: VecDeque<SocketAddr>,
    /// Where each queued address was learnt.
    set: HashMap<SocketAddr, PeerSource>,
}

impl Candidates {
    /// Number of addresses waiting.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// No address is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The list is full: further addresses are ignored.
    pub fn is_full(&self) -> bool {
        self.queue.len() >= MAX_CANDIDATES
    }

    pub fn contains(&self, a: &SocketAddr) -> bool {
        self.set.contains_key(a)
    }

    /// Adds a fresh address (dialled before older ones); false if known or full.
    pub fn push_new(&mut self, a: SocketAddr, source: PeerSource) -> bool {
        if self.is_full() || self.set.contains_key(&a) {
            return false;
        }
        self.set.insert(a, source);
        self.queue.push_back(a);
        true
    }

    /// Adds an address to retry after every other one; false if known or full.
    pub fn push_retry(&mut self, a: SocketAddr, source: PeerSource) -> bool {
        if self.is_full() || self.set.contains_key(&a) {
            return false;
        }
        self.set.insert(a, source);
        self.queue.push_front(a);
        true
    }

    /// The next address to dial.
    pub fn pop(&mut self) -> Option<(SocketAddr, PeerSource)> {
        let a = self.queue.pop_back()?;
        let source = self.set.remove(&a).unwrap_or(PeerSource::Tracker);
        Some((a, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u32) -> SocketAddr {
        SocketAddr::from((i.to_be_bytes(), 6881))
    }

    #[test]
    fn newest_first_retries_last_no_duplicates() {
        let mut c = Candidates::default();
        assert!(c.push_new(addr(1), PeerSource::Tracker));
        assert!(c.push_new(addr(2), PeerSource::Tracker));
        assert!(!c.push_new(addr(1), PeerSource::Tracker));
        assert!(c.push_retry(addr(3), PeerSource::Tracker));
        assert!(!c.push_retry(addr(2), PeerSource::Tracker));
        assert_eq!(c.pop().map(|p| p.0), Some(addr(2)));
        assert_eq!(c.pop().map(|p| p.0), Some(addr(1)));
        assert_eq!(c.pop().map(|p| p.0), Some(addr(3)));
        assert_eq!(c.pop().map(|p| p.0), None);
        assert!(
            c.push_new(addr(1), PeerSource::Tracker),
            "a dialled address may be learnt again"
        );
    }

    #[test]
    fn huge_reply_is_capped_and_fast() {
        let mut c = Candidates::default();
        // 700k addresses (a 4 MiB compact reply): linear in the input, capped in size.
        let added = (0..700_000)
            .filter(|i| c.push_new(addr(*i), PeerSource::Tracker))
            .count();
        assert_eq!(added, MAX_CANDIDATES);
        assert_eq!(c.len(), MAX_CANDIDATES);
        assert!(!c.push_retry(addr(9_999_999), PeerSource::Tracker));
    }
}
