//! Assembling an info dictionary from BEP 9 metadata pieces sent by several peers,
//! for a torrent known only by its info-hash (a magnet link).
//!
//! The first peer to state a plausible `metadata_size` fixes the size for this
//! attempt; peers stating another size are not asked. Each piece records who sent it;
//! when the whole dictionary does not hash to the info-hash, every contributor is
//! named. A sole contributor is surely the liar (the caller drops it); when several
//! contributed, the next attempt takes every piece from one peer, so that a second
//! failure names the liar alone. Either way the attempt starts over with no size. Sizes past
//! [`MAX_METADATA_SIZE`] are refused. Peers are the caller's keys (`u64`); the caller
//! bounds requests in flight per peer and times them out with [`Assembler::unrequest`].

use thiserror::Error;

use crate::ids::InfoHash;
use crate::wire::{metadata_pieces, METADATA_PIECE_LEN};

/// Largest info dictionary accepted (32 MiB: about 1.6 million pieces).
pub const MAX_METADATA_SIZE: u64 = 32 * 1024 * 1024;

/// Why a peer's metadata was refused. Every variant means: drop that peer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetadataError {
    /// `metadata_size` is 0 (the peer has no metadata) or too large.
    #[error("metadata size {0} is not between 1 byte and 32 MiB")]
    BadSize(u64),
    /// A data message whose `total_size` is not the size this attempt uses.
    #[error("metadata piece says the total size is {got}, not {want}")]
    SizeMismatch {
        /// What the message said.
        got: u64,
        /// The size of this attempt.
        want: u64,
    },
    /// A piece index past the end, or a piece of the wrong length.
    #[error("metadata piece {piece} is out of range or {len} bytes long")]
    BadPiece {
        /// Piece index.
        piece: u32,
        /// Its length.
        len: usize,
    },
    /// A piece we did not ask this peer for.
    #[error("metadata piece {0} was not requested from this peer")]
    Unsolicited(u32),
}

/// What a received piece led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// More pieces are needed.
    Partial,
    /// The info dictionary is complete and hashes to the info-hash.
    Done(Vec<u8>),
    /// The whole dictionary did not hash to the info-hash; these peers sent it. The
    /// attempt restarts from nothing.
    HashMismatch(Vec<u64>),
}

/// Metadata collected so far for one info-hash.
#[derive(Debug)]
pub struct Assembler {
    info_hash: InfoHash,
    size: Option<u64>,
    buf: Vec<u8>,
    /// Per piece: who sent it.
    got: Vec<Option<u64>>,
    /// Per piece: whom it is asked of.
    asked: Vec<Option<u64>>,
    /// Take every piece of an attempt from one peer (after a mismatch from several).
    single_source: bool,
}

impl Assembler {
    /// An empty assembler for `info_hash`.
    pub fn new(info_hash: InfoHash) -> Self {
        Assembler {
            info_hash,
            size: None,
            buf: Vec::new(),
            got: Vec::new(),
            asked: Vec::new(),
            single_source: false,
        }
    }

    /// The size this attempt uses, once a peer has stated one.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// Pieces received and pieces in all (0 until the size is known).
    pub fn progress(&self) -> (usize, usize) {
        (self.got.iter().flatten().count(), self.got.len())
    }

    /// A peer stated `size` in its extension handshake. Returns whether it can be
    /// asked for pieces: false when the attempt already uses another size.
    pub fn offer_size(&mut self, size: u64) -> Result<bool, MetadataError> {
        if size == 0 || size > MAX_METADATA_SIZE {
            return Err(MetadataError::BadSize(size));
        }
        match self.size {
            Some(s) => Ok(s == size),
            None => {
                // Bounded by MAX_METADATA_SIZE above.
                let len = size as usize;
                let pieces = metadata_pieces(len);
                self.size = Some(size);
                self.buf = vec![0; len];
                self.got = vec![None; pieces];
                self.asked = vec![None; pieces];
                Ok(true)
            }
        }
    }

    /// The next piece to ask `peer` for: one neither received nor asked of anyone.
    pub fn next_request(&mut self, peer: u64) -> Option<u32> {
        if self.single_source {
            let other = |s: &Option<u64>| s.is_some_and(|p| p != peer);
            if self.got.iter().any(other) || self.asked.iter().any(other) {
                return None;
            }
        }
        let i = (0..self.got.len()).find(|&i| self.got[i].is_none() && self.asked[i].is_none())?;
        self.asked[i] = Some(peer);
        u32::try_from(i).ok()
    }

    /// `peer` will not send `piece` (rejected, timed out, or gone): someone else may
    /// be asked.
    pub fn unrequest(&mut self, peer: u64, piece: u32) {
        if let Some(slot) = self.asked.get_mut(piece as usize) {
            if *slot == Some(peer) {
                *slot = None;
            }
        }
    }

    /// `peer` is gone: its pieces in flight may be asked of others.
    pub fn peer_gone(&mut self, peer: u64) {
        for slot in &mut self.asked {
            if *slot == Some(peer) {
                *slot = None;
            }
        }
    }

    /// `peer` sent piece `piece` of a dictionary of `total_size` bytes.
    pub fn on_data(
        &mut self,
        peer: u64,
        piece: u32,
        total_size: u64,
        data: &[u8],
    ) -> Result<Progress, MetadataError> {
        let Some(size) = self.size else {
            return Err(MetadataError::Unsolicited(piece));
        };
        if total_size != size {
            return Err(MetadataError::SizeMismatch {
                got: total_size,
                want: size,
            });
        }
        let i = piece as usize;
        if self.asked.get(i).copied().flatten() != Some(peer) {
            return Err(MetadataError::Unsolicited(piece));
        }
        let start = i * METADATA_PIECE_LEN;
        let want = (self.buf.len() - start).min(METADATA_PIECE_LEN);
        if data.len() != want {
            return Err(MetadataError::BadPiece {
                piece,
                len: data.len(),
            });
        }
        self.buf[start..start + want].copy_from_slice(data);
        self.got[i] = Some(peer);
        self.asked[i] = None;
        if self.got.iter().any(Option::is_none) {
            return Ok(Progress::Partial);
        }
        if InfoHash::of(&self.buf) == self.info_hash {
            self.size = None;
            return Ok(Progress::Done(std::mem::take(&mut self.buf)));
        }
        let mut culprits: Vec<u64> = self.got.iter().flatten().copied().collect();
        culprits.sort_unstable();
        culprits.dedup();
        let single_source = self.single_source || culprits.len() > 1;
        *self = Assembler::new(self.info_hash);
        self.single_source = single_source;
        Ok(Progress::HashMismatch(culprits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(len: usize) -> (Vec<u8>, InfoHash) {
        let v: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let h = InfoHash::of(&v);
        (v, h)
    }

    fn feed(a: &mut Assembler, peer: u64, v: &[u8]) -> Progress {
        let mut last = Progress::Partial;
        while let Some(p) = a.next_request(peer) {
            let s = p as usize * METADATA_PIECE_LEN;
            let e = (s + METADATA_PIECE_LEN).min(v.len());
            last = a.on_data(peer, p, v.len() as u64, &v[s..e]).unwrap();
        }
        last
    }

    #[test]
    fn assembles_from_one_peer() {
        let (v, h) = info(40_000);
        let mut a = Assembler::new(h);
        assert!(a.offer_size(40_000).unwrap());
        assert_eq!(a.progress(), (0, 3));
        assert_eq!(feed(&mut a, 1, &v), Progress::Done(v));
    }

    #[test]
    fn pieces_spread_over_peers_and_rejects_go_elsewhere() {
        let (v, h) = info(3 * METADATA_PIECE_LEN);
        let mut a = Assembler::new(h);
        a.offer_size(v.len() as u64).unwrap();
        assert_eq!(a.next_request(1), Some(0));
        assert_eq!(a.next_request(2), Some(1));
        a.unrequest(2, 1);
        assert_eq!(a.next_request(3), Some(1));
        a.peer_gone(1);
        assert_eq!(a.next_request(3), Some(0));
        let p0 = &v[..METADATA_PIECE_LEN];
        assert_eq!(
            a.on_data(3, 0, v.len() as u64, p0).unwrap(),
            Progress::Partial
        );
        // Peer 1 was un-asked: its late piece is unsolicited.
        assert_eq!(
            a.on_data(1, 0, v.len() as u64, p0),
            Err(MetadataError::Unsolicited(0))
        );
    }

    #[test]
    fn wrong_metadata_names_contributors_and_restarts() {
        let (mut v, h) = info(20_000);
        v[5] ^= 1;
        let mut a = Assembler::new(h);
        a.offer_size(20_000).unwrap();
        assert_eq!(a.next_request(7), Some(0));
        assert_eq!(a.next_request(8), Some(1));
        let n = v.len() as u64;
        a.on_data(7, 0, n, &v[..METADATA_PIECE_LEN]).unwrap();
        let r = a.on_data(8, 1, n, &v[METADATA_PIECE_LEN..]).unwrap();
        assert_eq!(r, Progress::HashMismatch(vec![7, 8]));
        assert_eq!(a.size(), None);
        assert!(a.offer_size(20_000).unwrap());
        // Two contributors: the next attempt takes every piece from one peer.
        assert_eq!(a.next_request(8), Some(0));
        assert_eq!(a.next_request(7), None);
        assert_eq!(a.next_request(8), Some(1));
    }

    #[test]
    fn refuses_bad_sizes_and_pieces() {
        let (v, h) = info(20_000);
        let mut a = Assembler::new(h);
        assert_eq!(a.offer_size(0), Err(MetadataError::BadSize(0)));
        assert!(a.offer_size(MAX_METADATA_SIZE + 1).is_err());
        assert!(a.offer_size(20_000).unwrap());
        assert!(!a.offer_size(20_001).unwrap());
        assert_eq!(a.next_request(1), Some(0));
        assert!(matches!(
            a.on_data(1, 0, 20_001, &v[..METADATA_PIECE_LEN]),
            Err(MetadataError::SizeMismatch { .. })
        ));
        assert!(matches!(
            a.on_data(1, 0, 20_000, &v[..100]),
            Err(MetadataError::BadPiece { .. })
        ));
        assert_eq!(
            a.on_data(1, 9, 20_000, &v[..100]),
            Err(MetadataError::Unsolicited(9))
        );
    }
}
