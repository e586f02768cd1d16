//! Per-piece block state for pieces that are being downloaded ("active" pieces).
//!
//! Invariants of an [`ActivePiece`]: `missing + requested + received == blocks.len()`
//! where `requested` counts blocks in [`BlockState::Requested`]; a requested block
//! has 1..=[`MAX_REQUESTERS`] distinct holders; `first_missing` is at most the index
//! of the first missing block.

use super::PeerKey;

/// Most peers that may hold a request for the same block at once (endgame duplicates).
pub const MAX_REQUESTERS: usize = 3;

/// A small inline set of peers (at most [`MAX_REQUESTERS`]); `Copy`, never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerList {
    len: u8,
    keys: [PeerKey; MAX_REQUESTERS],
}

impl Default for PeerList {
    fn default() -> Self {
        PeerList {
            len: 0,
            keys: [0; MAX_REQUESTERS],
        }
    }
}

impl PeerList {
    /// A list holding only `key`.
    pub(crate) fn one(key: PeerKey) -> Self {
        let mut list = PeerList::default();
        list.push(key);
        list
    }

    /// The peers, in insertion order.
    pub fn as_slice(&self) -> &[PeerKey] {
        &self.keys[..usize::from(self.len)]
    }

    /// Iterates over the peers.
    pub fn iter(&self) -> impl Iterator<Item = PeerKey> + '_ {
        self.as_slice().iter().copied()
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True if there are no peers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if `key` is in the list.
    pub fn contains(&self, key: PeerKey) -> bool {
        self.as_slice().contains(&key)
    }

    /// Adds `key`; false (and no change) if it is present or the list is full.
    pub(crate) fn push(&mut self, key: PeerKey) -> bool {
        let n = usize::from(self.len);
        if n >= MAX_REQUESTERS || self.contains(key) {
            return false;
        }
        self.keys[n] = key;
        self.len += 1;
        true
    }

    /// Removes `key`, keeping the order of the others; false if absent.
    pub(crate) fn remove(&mut self, key: PeerKey) -> bool {
        let n = usize::from(self.len);
        match self.as_slice().iter().position(|k| *k == key) {
            Some(i) => {
                self.keys.copy_within(i + 1..n, i);
                self.len -= 1;
                true
            }
            None => false,
        }
    }
}

impl<'a> IntoIterator for &'a PeerList {
    type Item = &'a PeerKey;
    type IntoIter = std::slice::Iter<'a, PeerKey>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

/// State of one block of an active piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockState {
    /// Not received and not requested from anyone.
    Missing,
    /// Requested from these peers (more than one only in endgame).
    Requested(PeerList),
    /// Data received (not yet verified: the piece hash covers it).
    Received,
}

/// A piece with at least one block requested or received and not yet verified.
#[derive(Debug)]
pub(crate) struct ActivePiece {
    pub piece: u32,
    pub blocks: Vec<BlockState>,
    pub missing: u32,
    pub received: u32,
    /// Lower bound of the first missing block index, so picking does not rescan.
    pub first_missing: u32,
    /// The peer fetching this piece as a whole, if any (see the picker's ordering).
    pub owner: Option<PeerKey>,
    /// Peers that delivered at least one block of the current attempt.
    pub contributors: Vec<PeerKey>,
}

impl ActivePiece {
    pub fn empty() -> Self {
        ActivePiece {
            piece: 0,
            blocks: Vec::new(),
            missing: 0,
            received: 0,
            first_missing: 0,
            owner: None,
            contributors: Vec::new(),
        }
    }

    /// Re-initialises for `piece` with `count` missing blocks, reusing allocations.
    pub fn reset(&mut self, piece: u32, count: u32) {
        self.piece = piece;
        self.blocks.clear();
        self.blocks.resize(count as usize, BlockState::Missing);
        self.missing = count;
        self.received = 0;
        self.first_missing = 0;
        self.owner = None;
        self.contributors.clear();
    }

    pub fn is_complete(&self) -> bool {
        self.received as usize == self.blocks.len()
    }

    /// True if no block is requested or received: the piece is as good as unstarted.
    pub fn is_untouched(&self) -> bool {
        self.missing as usize == self.blocks.len()
    }

    /// True if `peer` holds a request for any block of this piece.
    pub fn has_request_from(&self, peer: PeerKey) -> bool {
        self.blocks
            .iter()
            .any(|b| matches!(b, BlockState::Requested(h) if h.contains(peer)))
    }

    pub fn add_contributor(&mut self, peer: PeerKey) {
        if !self.contributors.contains(&peer) {
            self.contributors.push(peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_list_push_remove() {
        let mut l = PeerList::default();
        assert!(l.is_empty());
        assert!(l.push(1));
        assert!(!l.push(1));
        assert!(l.push(2));
        assert!(l.push(3));
        assert!(!l.push(4), "capped at MAX_REQUESTERS");
        assert!(l.remove(2));
        assert!(!l.remove(2));
        assert_eq!(l.as_slice(), &[1, 3]);
        assert_eq!(l.len(), 2);
        assert!(l.push(4));
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![1, 3, 4]);
    }

    #[test]
    fn active_piece_reset_and_counts() {
        let mut a = ActivePiece::empty();
        a.reset(7, 3);
        assert!(a.is_untouched());
        assert!(!a.is_complete());
        a.blocks[1] = BlockState::Requested(PeerList::one(9));
        assert!(a.has_request_from(9));
        assert!(!a.has_request_from(8));
        a.add_contributor(9);
        a.add_contributor(9);
        assert_eq!(a.contributors, vec![9]);
    }
}
