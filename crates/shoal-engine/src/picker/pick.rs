//! [`PiecePicker::pick`]: the request ordering described in the module docs.

use std::mem;

use rand::Rng;

use super::active::{BlockState, PeerList, MAX_REQUESTERS};
use super::{Block, PeerKey, PiecePicker, PieceSet, BLOCK_SIZE};

/// Which started pieces [`PiecePicker::pick_started`] may take blocks from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Started {
    /// Pieces without an owner; the picking peer adopts them.
    Orphans,
    /// Pieces another peer owns; ownership stays.
    Others,
}

impl PiecePicker {
    /// Appends up to `max` blocks for `peer` to `out` (which is not cleared) and
    /// records them as requested by `peer`; returns how many were added.
    /// `peer_has` is the set of pieces the peer announced. `rng` breaks ties among
    /// equally rare pieces and spreads endgame duplicates.
    pub fn pick<S, R>(
        &mut self,
        peer: PeerKey,
        peer_has: &S,
        max: usize,
        rng: &mut R,
        out: &mut Vec<Block>,
    ) -> usize
    where
        S: PieceSet + ?Sized,
        R: Rng + ?Sized,
    {
        self.pick_steps(peer, peer_has, max, rng, out, true)
    }

    /// Like [`Self::pick`] without starting new pieces: for when too many pieces are
    /// in progress (each holding received blocks) and the started ones must finish first.
    pub fn pick_started_only<S, R>(
        &mut self,
        peer: PeerKey,
        peer_has: &S,
        max: usize,
        rng: &mut R,
        out: &mut Vec<Block>,
    ) -> usize
    where
        S: PieceSet + ?Sized,
        R: Rng + ?Sized,
    {
        self.pick_steps(peer, peer_has, max, rng, out, false)
    }

    /// Steps 0-5 in order (step 3, new pieces, only when `start_new`).
    fn pick_steps<S, R>(
        &mut self,
        peer: PeerKey,
        peer_has: &S,
        max: usize,
        rng: &mut R,
        out: &mut Vec<Block>,
        start_new: bool,
    ) -> usize
    where
        S: PieceSet + ?Sized,
        R: Rng + ?Sized,
    {
        if max == 0 || self.wanted_missing == 0 {
            return 0;
        }
        let mut n = self.pick_deadline(peer, peer_has, max, out);
        if n < max {
            n += self.pick_owned(peer, max - n, out);
        }
        if n < max {
            n += self.pick_started(peer, peer_has, Started::Orphans, max - n, out);
        }
        if n < max && start_new {
            n += self.pick_new(peer, peer_has, max - n, rng, out);
        }
        if n < max {
            n += self.pick_started(peer, peer_has, Started::Others, max - n, out);
        }
        if n < max && self.in_endgame() {
            n += self.pick_endgame(peer, peer_has, max - n, rng, out);
        }
        n
    }

    /// Step 1: missing blocks of pieces `peer` owns.
    fn pick_owned(&mut self, peer: PeerKey, want: usize, out: &mut Vec<Block>) -> usize {
        let Some(e) = self.peers.get_mut(&peer) else {
            return 0;
        };
        let owned = mem::take(&mut e.owned);
        let mut n = 0;
        for &piece in &owned {
            if n == want {
                break;
            }
            if !self.wanted[piece as usize] {
                continue;
            }
            if let Some(s) = self.slot_of(piece) {
                n += self.request_missing(s, peer, want - n, out);
            }
        }
        if let Some(e) = self.peers.get_mut(&peer) {
            e.owned = owned;
        }
        n
    }

    /// Steps 2 and 4: missing blocks of started pieces owned by nobody or by others.
    fn pick_started<S: PieceSet + ?Sized>(
        &mut self,
        peer: PeerKey,
        peer_has: &S,
        which: Started,
        want: usize,
        out: &mut Vec<Block>,
    ) -> usize {
        let mut n = 0;
        for s in 0..self.active.len() {
            if n == want {
                break;
            }
            let ap = &self.active[s];
            let eligible = match which {
                Started::Orphans => ap.owner.is_none(),
                Started::Others => ap.owner.is_some_and(|o| o != peer),
            };
            if !eligible
                || ap.missing == 0
                || !self.wanted[ap.piece as usize]
                || !peer_has.has_piece(ap.piece)
            {
                continue;
            }
            if which == Started::Orphans {
                self.own(peer, s);
            }
            n += self.request_missing(s, peer, want - n, out);
        }
        n
    }

    /// Step 3: new pieces, first-and-last and download order, else rarest first.
    fn pick_new<S, R>(
        &mut self,
        peer: PeerKey,
        peer_has: &S,
        want: usize,
        rng: &mut R,
        out: &mut Vec<Block>,
    ) -> usize
    where
        S: PieceSet + ?Sized,
        R: Rng + ?Sized,
    {
        let mut n = 0;
        while n < want {
            let next = match self.ordered_new_piece(peer_has) {
                Some(p) => Some(p),
                None if self.order == super::DownloadOrder::Sequential => None,
                None => self.rarity.pick(peer_has, rng),
            };
            let Some(piece) = next else {
                break;
            };
            let s = self.activate(piece);
            self.own(peer, s);
            n += self.request_missing(s, peer, want - n, out);
        }
        n
    }

    /// Step 5: duplicate requests for blocks other peers hold, fewest holders first.
    fn pick_endgame<S, R>(
        &mut self,
        peer: PeerKey,
        peer_has: &S,
        want: usize,
        rng: &mut R,
        out: &mut Vec<Block>,
    ) -> usize
    where
        S: PieceSet + ?Sized,
        R: Rng + ?Sized,
    {
        let len = self.active.len();
        if len == 0 {
            return 0;
        }
        let offset = rng.gen_range(0..len);
        let mut n = 0;
        for limit in [2, MAX_REQUESTERS + 1] {
            for k in 0..len {
                if n == want {
                    break;
                }
                let s = (offset + k) % len;
                let piece = self.active[s].piece;
                if !self.wanted[piece as usize] || !peer_has.has_piece(piece) {
                    continue;
                }
                let size = self.piece_size(piece);
                let ap = &mut self.active[s];
                if ap.is_complete() {
                    continue;
                }
                for (i, b) in ap.blocks.iter_mut().enumerate() {
                    if n == want {
                        break;
                    }
                    if let BlockState::Requested(h) = b {
                        if h.len() < limit && h.push(peer) {
                            out.push(block_at(piece, i, size));
                            n += 1;
                        }
                    }
                }
            }
        }
        self.peers.entry(peer).or_default().outstanding += n as u32;
        n
    }

    /// Requests up to `want` missing blocks of the active piece in slot `s` from `peer`.
    pub(super) fn request_missing(
        &mut self,
        s: usize,
        peer: PeerKey,
        want: usize,
        out: &mut Vec<Block>,
    ) -> usize {
        let piece = self.active[s].piece;
        let size = self.piece_size(piece);
        let ap = &mut self.active[s];
        let mut n = 0;
        let mut i = ap.first_missing as usize;
        while i < ap.blocks.len() && n < want && ap.missing > 0 {
            if ap.blocks[i] == BlockState::Missing {
                ap.blocks[i] = BlockState::Requested(PeerList::one(peer));
                ap.missing -= 1;
                out.push(block_at(piece, i, size));
                n += 1;
            }
            i += 1;
        }
        ap.first_missing = if ap.missing == 0 {
            ap.blocks.len() as u32
        } else {
            i as u32
        };
        if n > 0 {
            // Only wanted pieces are picked, so these were counted as unrequested.
            self.unrequested -= n as u64;
            self.peers.entry(peer).or_default().outstanding += n as u32;
        }
        n
    }
}

/// Block `index` of a piece of `size` bytes (`index` is in range).
pub(super) fn block_at(piece: u32, index: usize, size: u64) -> Block {
    let begin = index as u64 * u64::from(BLOCK_SIZE);
    let length = (size - begin).min(u64::from(BLOCK_SIZE));
    Block {
        piece,
        begin: begin as u32,
        length: length as u32,
    }
}
