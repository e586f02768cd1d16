//! Piece and block picker: which blocks to request from which peer (BEP 3 "piece
//! downloading strategy"), and the bookkeeping of who was asked for what.
//!
//! A *piece* is the hashed unit; a *block* is the [`BLOCK_SIZE`] request unit (the
//! last block of a piece, and the last piece, may be shorter). Each piece is in one
//! of three states: *idle* (not started; if wanted and missing it sits in the
//! rarest-first buckets), *active* (some block requested or received; per-block
//! state in an `ActivePiece`) or *have* (verified).
//!
//! [`PiecePicker::pick`] hands a peer blocks in this order:
//! 0. blocks of stream window pieces, in deadline order (`deadline.rs`);
//! 1. missing blocks of pieces this peer started (whole pieces per peer keep
//!    [`PiecePicker::piece_failed`]'s blame precise);
//! 2. started pieces that nobody owns any more (their owner left or was choked);
//! 3. new pieces: the first and last piece of each file when asked, then by the
//!    [`DownloadOrder`]: highest [`Priority`] first, then rarest first, random among
//!    equally rare ones (or lowest index first when sequential);
//! 4. missing blocks of pieces another peer is still fetching (helping a slow peer
//!    beats idling, but only when no new piece is left for this peer);
//! 5. endgame (every missing wanted block is requested): blocks already requested
//!    from *other* peers, at most [`MAX_REQUESTERS`] holders per block, fewest
//!    holders first; [`PiecePicker::block_received`] then names the peers to cancel.
//!
//! Cost: availability changes are O(1) per piece; a pick is O(blocks returned) in
//! the steady state, plus one scan of the active pieces when the peer's own pieces
//! run dry and one bucket scan per new piece started. No allocation per block.
//! Availability is counted per non-seed peer plus a shared seed count (BEP 6 have
//! all), which shifts every piece equally and so never moves pieces between buckets.

mod active;
mod deadline;
mod events;
mod pick;
mod rarity;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use shoal_proto::wire::Bitfield;
use thiserror::Error;

use active::{ActivePiece, BlockState};
pub use active::{PeerList, MAX_REQUESTERS};
use deadline::Deadlines;
pub use deadline::{DownloadOrder, StreamId, DUPLICATE_AFTER};
use rarity::{Tiered, NONE};

/// Size of a request: 16 KiB, the de facto limit of every client.
pub const BLOCK_SIZE: u32 = 16384;

/// Download priority of a piece: new pieces are started from the highest priority
/// the peer has, rarest first within it (pieces already started are finished first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// After every other wanted piece.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Before every other new piece.
    High,
}

/// Caller-chosen identity of a connected peer, unique while it is connected.
/// (A plain `u64` so the torrent's own peer key is usable as is.)
pub type PeerKey = u64;

/// One block request: `length` bytes at `begin` within `piece`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    /// Piece index.
    pub piece: u32,
    /// Byte offset within the piece, a multiple of [`BLOCK_SIZE`].
    pub begin: u32,
    /// Bytes: [`BLOCK_SIZE`] except at the end of a piece.
    pub length: u32,
}

/// What the caller must do after [`PiecePicker::block_received`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// The block is new: write it. When false the data is a duplicate, was
    /// cancelled, belongs to a piece we have or do not want, or is not a block of
    /// the torrent; drop it.
    pub first: bool,
    /// This peer had a request for the block outstanding.
    pub solicited: bool,
    /// Other peers that hold a request for the block: send each a `cancel`.
    pub other_requesters: PeerList,
    /// Every block of the piece is now received: hash it, then call
    /// [`PiecePicker::piece_verified`] or [`PiecePicker::piece_failed`].
    pub piece_complete: bool,
}

/// A piece-membership test for the peer being served: a [`Bitfield`], a `[bool]`, or
/// any `Fn(u32) -> bool`.
pub trait PieceSet {
    /// True if the set contains `piece`.
    fn has_piece(&self, piece: u32) -> bool;
}

impl PieceSet for Bitfield {
    fn has_piece(&self, piece: u32) -> bool {
        self.get(piece)
    }
}

impl PieceSet for [bool] {
    fn has_piece(&self, piece: u32) -> bool {
        self.get(piece as usize).copied().unwrap_or(false)
    }
}

impl<F: Fn(u32) -> bool> PieceSet for F {
    fn has_piece(&self, piece: u32) -> bool {
        self(piece)
    }
}

/// Torrent geometry the picker cannot represent.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PickerError {
    /// A zero piece length: the metainfo is invalid.
    #[error("piece length is 0; the torrent's metainfo is invalid")]
    ZeroPieceLength,
    /// Pieces must fit the wire's 32-bit offsets.
    #[error("piece length {0} is over 4 GiB; the torrent cannot be downloaded")]
    PieceTooLong(u64),
    /// The piece count must fit in 32 bits.
    #[error("{0} pieces are too many; the torrent cannot be downloaded")]
    TooManyPieces(u64),
}

#[derive(Debug, Default)]
struct PeerEntry {
    /// Active pieces whose `owner` is this peer.
    owned: Vec<u32>,
    /// Blocks this peer holds a request for.
    outstanding: u32,
}

/// Block picker and request tracker for one torrent. See the module docs.
#[derive(Debug)]
pub struct PiecePicker {
    piece_length: u64,
    total_length: u64,
    num_pieces: u32,
    have: Vec<bool>,
    wanted: Vec<bool>,
    /// Non-seed peers announcing each piece.
    avail: Vec<u32>,
    /// Peers that have every piece (BEP 6 have all).
    seeds: u32,
    /// Pieces with `avail` 0.
    unavailable: u32,
    /// Idle, wanted, missing pieces by priority and availability.
    rarity: Tiered,
    /// Index into `active` per piece, or `NONE`.
    slot: Vec<u32>,
    active: Vec<ActivePiece>,
    /// Retired active pieces kept for their allocations.
    spare: Vec<ActivePiece>,
    peers: HashMap<PeerKey, PeerEntry>,
    have_count: u32,
    have_bytes: u64,
    /// Wanted pieces we do not have.
    wanted_missing: u32,
    /// Bytes of `wanted_missing` pieces.
    wanted_missing_bytes: u64,
    /// Missing (unrequested) blocks of active wanted pieces.
    unrequested: u64,
    /// Stream windows (`deadline.rs`).
    deadlines: Deadlines,
    /// How new pieces are chosen.
    order: DownloadOrder,
    /// Pieces to start first (first and last of each file), when asked.
    first_last: Vec<u32>,
    /// No piece below this is missing (sequential order's scan start).
    seq_from: u32,
}

impl PiecePicker {
    /// A picker for a torrent of `total_length` bytes in pieces of `piece_length`;
    /// nothing is had, everything is wanted, no peer has anything.
    ///
    /// Expects geometry already validated by `Metainfo` (piece length 1 to 64 MiB);
    /// for anything else the picker has no pieces. [`Self::try_new`] says why.
    pub fn new(piece_length: u64, total_length: u64) -> Self {
        Self::try_new(piece_length, total_length).unwrap_or_else(|_| Self::build(1, 0, 0))
    }

    /// Like [`Self::new`], with an error for geometry the picker cannot represent.
    pub fn try_new(piece_length: u64, total_length: u64) -> Result<Self, PickerError> {
        if piece_length == 0 {
            return Err(PickerError::ZeroPieceLength);
        }
        if piece_length > u64::from(u32::MAX) {
            return Err(PickerError::PieceTooLong(piece_length));
        }
        let n = total_length.div_ceil(piece_length);
        let num_pieces = u32::try_from(n)
            .ok()
            .filter(|&n| n != NONE)
            .ok_or(PickerError::TooManyPieces(n))?;
        Ok(Self::build(piece_length, total_length, num_pieces))
    }

    /// `num_pieces` must be `total_length.div_ceil(piece_length)`.
    fn build(piece_length: u64, total_length: u64, num_pieces: u32) -> Self {
        let mut rarity = Tiered::new(num_pieces);
        for p in 0..num_pieces {
            rarity.insert(p, 0);
        }
        PiecePicker {
            piece_length,
            total_length,
            num_pieces,
            have: vec![false; num_pieces as usize],
            wanted: vec![true; num_pieces as usize],
            avail: vec![0; num_pieces as usize],
            seeds: 0,
            unavailable: num_pieces,
            rarity,
            slot: vec![NONE; num_pieces as usize],
            active: Vec::new(),
            spare: Vec::new(),
            peers: HashMap::new(),
            have_count: 0,
            have_bytes: 0,
            wanted_missing: num_pieces,
            wanted_missing_bytes: total_length,
            unrequested: 0,
            deadlines: Deadlines::default(),
            order: DownloadOrder::Rarest,
            first_last: Vec::new(),
            seq_from: 0,
        }
    }

    // ----- geometry -----

    /// Number of pieces.
    pub fn num_pieces(&self) -> u32 {
        self.num_pieces
    }

    /// Length of `piece` in bytes (0 if out of range).
    pub fn piece_size(&self, piece: u32) -> u64 {
        if piece >= self.num_pieces {
            return 0;
        }
        let start = u64::from(piece) * self.piece_length;
        self.piece_length.min(self.total_length - start)
    }

    /// Number of blocks in `piece` (0 if out of range).
    pub fn block_count(&self, piece: u32) -> u32 {
        // piece_size <= u32::MAX, so the count fits.
        self.piece_size(piece).div_ceil(u64::from(BLOCK_SIZE)) as u32
    }

    /// `(begin, length)` of block `block_index` of `piece`; `(0, 0)` if either is out
    /// of range.
    pub fn block_ref(&self, piece: u32, block_index: u32) -> (u32, u32) {
        self.block(piece, block_index)
            .map_or((0, 0), |b| (b.begin, b.length))
    }

    /// Block `block_index` of `piece`, if both exist.
    pub fn block(&self, piece: u32, block_index: u32) -> Option<Block> {
        let size = self.piece_size(piece);
        let begin = u64::from(block_index) * u64::from(BLOCK_SIZE);
        (begin < size).then(|| Block {
            piece,
            begin: begin as u32,
            length: (size - begin).min(u64::from(BLOCK_SIZE)) as u32,
        })
    }

    /// The block index of `block` if it is exactly one of `piece`'s blocks.
    fn block_index(&self, block: Block) -> Option<u32> {
        let idx = block.begin / BLOCK_SIZE;
        if idx * BLOCK_SIZE != block.begin {
            return None;
        }
        let b = self.block(block.piece, idx)?;
        (b.length == block.length).then_some(idx)
    }

    /// True if `block` is exactly one of the torrent's blocks.
    pub fn is_valid_block(&self, block: Block) -> bool {
        self.block_index(block).is_some()
    }

    // ----- have / wanted -----

    /// True if `piece` is verified and stored.
    pub fn have(&self, piece: u32) -> bool {
        self.have.get(piece as usize).copied().unwrap_or(false)
    }

    /// Number of verified pieces.
    pub fn have_count(&self) -> u32 {
        self.have_count
    }

    /// True when every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.have_count == self.num_pieces
    }

    /// Bytes of pieces we do not have (the tracker's `left`).
    pub fn missing_bytes(&self) -> u64 {
        self.total_length - self.have_bytes
    }

    /// Bytes of wanted pieces we do not have.
    pub fn wanted_missing_bytes(&self) -> u64 {
        self.wanted_missing_bytes
    }

    /// True when every wanted piece is verified (we are done, maybe partially).
    pub fn is_complete_wanted(&self) -> bool {
        self.wanted_missing == 0
    }

    /// True if `piece` is wanted (selected files).
    pub fn is_wanted(&self, piece: u32) -> bool {
        self.wanted.get(piece as usize).copied().unwrap_or(false)
    }

    /// True if we would download `piece`: wanted and not had.
    pub fn wants(&self, piece: u32) -> bool {
        self.is_wanted(piece) && !self.have(piece)
    }

    /// True if `peer_has` contains a piece we would download. O(pieces); for
    /// interest decisions, not per block.
    pub fn wants_any(&self, peer_has: &Bitfield) -> bool {
        peer_has.iter_set().any(|p| self.wants(p))
    }

    /// Marks `piece` as verified and stored (resume, or after the hash check).
    pub fn set_have(&mut self, piece: u32) {
        if piece >= self.num_pieces || self.have[piece as usize] {
            return;
        }
        let s = self.slot[piece as usize];
        if s != NONE {
            let ap = self.release(s as usize);
            self.spare.push(ap);
        }
        self.rarity.remove(piece, self.avail[piece as usize]);
        self.have[piece as usize] = true;
        self.have_count += 1;
        let size = self.piece_size(piece);
        self.have_bytes += size;
        if self.wanted[piece as usize] {
            self.wanted_missing -= 1;
            self.wanted_missing_bytes -= size;
        }
    }

    /// Sets `piece`'s [`Priority`].
    pub fn set_priority(&mut self, piece: u32, priority: Priority) {
        if let Some(&avail) = self.avail.get(piece as usize) {
            self.rarity.set_priority(piece, priority, avail);
        }
    }

    /// The [`Priority`] of `piece`.
    pub fn priority(&self, piece: u32) -> Priority {
        self.rarity.priority(piece)
    }

    /// Selects or deselects `piece`. Unwanted pieces are never picked; blocks already
    /// requested for them are still accepted.
    pub fn set_wanted(&mut self, piece: u32, wanted: bool) {
        let i = piece as usize;
        if piece >= self.num_pieces || self.wanted[i] == wanted {
            return;
        }
        self.wanted[i] = wanted;
        let s = self.slot[i];
        if s != NONE {
            let missing = u64::from(self.active[s as usize].missing);
            if wanted {
                self.unrequested += missing;
            } else {
                self.unrequested -= missing;
            }
        } else if !self.have[i] {
            if wanted {
                self.rarity.insert(piece, self.avail[i]);
            } else {
                self.rarity.remove(piece, self.avail[i]);
            }
        }
        if !self.have[i] {
            let size = self.piece_size(piece);
            if wanted {
                self.wanted_missing += 1;
                self.wanted_missing_bytes += size;
            } else {
                self.wanted_missing -= 1;
                self.wanted_missing_bytes -= size;
            }
        }
    }

    // ----- availability -----

    /// Peers known to have `piece`, seeds included.
    pub fn availability(&self, piece: u32) -> u32 {
        let a = self.avail.get(piece as usize).copied().unwrap_or(0);
        a.saturating_add(self.seeds)
    }

    /// Pieces that no connected peer has (0 while a [`Self::peer_have_all`] seed is
    /// counted). A seeder reads 0 as "its peers hold a distributed copy" (see
    /// [`crate::choker`]).
    pub fn pieces_unavailable(&self) -> u32 {
        if self.seeds > 0 {
            0
        } else {
            self.unavailable
        }
    }

    /// A peer announced a bitfield.
    pub fn peer_bitfield_added(&mut self, bitfield: &Bitfield) {
        self.peer_pieces_added(bitfield.iter_set());
    }

    /// A peer with this bitfield left.
    pub fn peer_bitfield_removed(&mut self, bitfield: &Bitfield) {
        self.peer_pieces_removed(bitfield.iter_set());
    }

    /// A peer announced these pieces (out-of-range indices are ignored).
    pub fn peer_pieces_added(&mut self, pieces: impl IntoIterator<Item = u32>) {
        for p in pieces {
            self.peer_have(p);
        }
    }

    /// A peer that had these pieces left.
    pub fn peer_pieces_removed(&mut self, pieces: impl IntoIterator<Item = u32>) {
        for p in pieces {
            self.change_avail(p, false);
        }
    }

    /// A peer sent `have` for `piece`.
    pub fn peer_have(&mut self, piece: u32) {
        self.change_avail(piece, true);
    }

    /// A peer sent BEP 6 `have all` (or is otherwise known to be a seed).
    pub fn peer_have_all(&mut self) {
        self.seeds = self.seeds.saturating_add(1);
    }

    /// A peer counted by [`Self::peer_have_all`] left.
    pub fn peer_have_all_removed(&mut self) {
        self.seeds = self.seeds.saturating_sub(1);
    }

    fn change_avail(&mut self, piece: u32, up: bool) {
        let Some(a) = self.avail.get_mut(piece as usize) else {
            return;
        };
        let old = *a;
        *a = if up {
            old.saturating_add(1)
        } else {
            old.saturating_sub(1)
        };
        let new = *a;
        if (old == 0) != (new == 0) {
            if new == 0 {
                self.unavailable += 1;
            } else {
                self.unavailable -= 1;
            }
        }
        self.rarity.update(piece, old, new);
    }

    // ----- state queries -----

    /// True when every missing block of every wanted piece is requested from
    /// someone and some wanted piece is still missing.
    pub fn in_endgame(&self) -> bool {
        self.wanted_missing > 0 && self.rarity.len() == 0 && self.unrequested == 0
    }

    /// Blocks `peer` holds a request for.
    pub fn outstanding(&self, peer: PeerKey) -> u32 {
        self.peers.get(&peer).map_or(0, |e| e.outstanding)
    }

    /// Pieces with a block requested or received and not yet verified.
    pub fn active_pieces(&self) -> usize {
        self.active.len()
    }

    /// Peers holding a request for `block` (empty if none or not a block).
    pub fn requesters(&self, block: Block) -> PeerList {
        let Some(idx) = self.block_index(block) else {
            return PeerList::default();
        };
        match self.active_block(block.piece, idx) {
            Some(BlockState::Requested(h)) => *h,
            _ => PeerList::default(),
        }
    }

    fn active_block(&self, piece: u32, idx: u32) -> Option<&BlockState> {
        let s = *self.slot.get(piece as usize)?;
        self.active.get(s as usize)?.blocks.get(idx as usize)
    }
}
