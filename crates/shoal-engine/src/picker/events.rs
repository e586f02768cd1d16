//! Request lifecycle events: blocks arriving, requests dropped, peers leaving,
//! pieces verified or failed; plus the active-piece bookkeeping they share.

use std::mem;

use super::active::{ActivePiece, BlockState};
use super::rarity::NONE;
use super::{Block, PeerKey, PiecePicker, Received};

impl PiecePicker {
    /// `peer` delivered `block`. Accepts unrequested data for a wanted missing block
    /// too (e.g. a request that timed out just before the data came).
    pub fn block_received(&mut self, peer: PeerKey, block: Block) -> Received {
        let mut r = Received::default();
        let Some(idx) = self.block_index(block) else {
            return r;
        };
        let piece = block.piece;
        let p = piece as usize;
        if self.have[p] {
            return r;
        }
        let s = match self.slot[p] {
            NONE if !self.wanted[p] => return r,
            NONE => self.activate(piece),
            s => s as usize,
        };
        let wanted = self.wanted[p];
        let ap = &mut self.active[s];
        let holders = match ap.blocks[idx as usize] {
            BlockState::Received => return r,
            BlockState::Missing => {
                ap.missing -= 1;
                if wanted {
                    self.unrequested -= 1;
                }
                Default::default()
            }
            BlockState::Requested(h) => h,
        };
        ap.blocks[idx as usize] = BlockState::Received;
        ap.received += 1;
        ap.add_contributor(peer);
        let complete = ap.is_complete();
        let owner = if complete { ap.owner.take() } else { None };
        if let Some(o) = owner {
            self.unown(o, piece);
        }
        for k in holders.iter() {
            self.dec_outstanding(k);
            if k != peer {
                r.other_requesters.push(k);
            }
        }
        r.solicited = holders.contains(peer);
        r.first = true;
        r.piece_complete = complete;
        r
    }

    /// `peer` will not deliver `block` (rejected, timed out, or the caller gave up).
    pub fn request_dropped(&mut self, peer: PeerKey, block: Block) {
        let Some(idx) = self.block_index(block) else {
            return;
        };
        let p = block.piece as usize;
        let s = self.slot[p];
        if s == NONE {
            return;
        }
        let s = s as usize;
        let wanted = self.wanted[p];
        let ap = &mut self.active[s];
        let BlockState::Requested(mut h) = ap.blocks[idx as usize] else {
            return;
        };
        if !h.remove(peer) {
            return;
        }
        if h.is_empty() {
            ap.blocks[idx as usize] = BlockState::Missing;
            ap.missing += 1;
            ap.first_missing = ap.first_missing.min(idx);
            if wanted {
                self.unrequested += 1;
            }
        } else {
            ap.blocks[idx as usize] = BlockState::Requested(h);
        }
        let orphaned = ap.owner == Some(peer) && !ap.has_request_from(peer);
        if orphaned {
            ap.owner = None;
        }
        let untouched = ap.is_untouched();
        self.dec_outstanding(peer);
        if orphaned {
            self.unown(peer, block.piece);
        }
        if untouched {
            self.back_to_idle(s);
        }
    }

    /// `peer` choked us: all its requests are void; its pieces become free for
    /// others. Its identity stays known (see [`Self::peer_gone`]).
    pub fn peer_choked(&mut self, peer: PeerKey) {
        let Some(e) = self.peers.get_mut(&peer) else {
            return;
        };
        let owned = mem::take(&mut e.owned);
        let had_requests = mem::take(&mut e.outstanding) > 0;
        for piece in owned {
            if let Some(ap) = self.slot_of(piece).and_then(|s| self.active.get_mut(s)) {
                ap.owner = None;
            }
        }
        if !had_requests {
            return;
        }
        for s in (0..self.active.len()).rev() {
            let wanted = self.wanted[self.active[s].piece as usize];
            let ap = &mut self.active[s];
            for (i, b) in ap.blocks.iter_mut().enumerate() {
                let emptied = match b {
                    BlockState::Requested(h) => h.remove(peer) && h.is_empty(),
                    _ => false,
                };
                if emptied {
                    *b = BlockState::Missing;
                    ap.missing += 1;
                    ap.first_missing = ap.first_missing.min(i as u32);
                    if wanted {
                        self.unrequested += 1;
                    }
                }
            }
            if ap.is_untouched() {
                self.back_to_idle(s);
            }
        }
    }

    /// `peer` disconnected: drops all its requests and forgets it. Its pieces'
    /// availability is separate: call [`Self::peer_bitfield_removed`] as well.
    pub fn peer_gone(&mut self, peer: PeerKey) {
        self.peer_choked(peer);
        self.peers.remove(&peer);
    }

    /// The hash of `piece` matched: it is stored and never picked again.
    pub fn piece_verified(&mut self, piece: u32) {
        self.set_have(piece);
    }

    /// The hash of `piece` did not match: every block is fetched again. Returns the
    /// peers that delivered blocks of it, to be held responsible.
    pub fn piece_failed(&mut self, piece: u32) -> Vec<PeerKey> {
        if self.have(piece) {
            return Vec::new();
        }
        let Some(s) = self.slot_of(piece) else {
            return Vec::new();
        };
        let mut ap = self.release(s);
        let contributors = mem::take(&mut ap.contributors);
        self.spare.push(ap);
        if self.wanted[piece as usize] {
            self.rarity.insert(piece, self.avail[piece as usize]);
        }
        contributors
    }

    // ----- shared bookkeeping -----

    pub(super) fn slot_of(&self, piece: u32) -> Option<usize> {
        match self.slot.get(piece as usize) {
            Some(&s) if s != NONE => Some(s as usize),
            _ => None,
        }
    }

    /// Makes idle `piece` active with every block missing; returns its slot.
    pub(super) fn activate(&mut self, piece: u32) -> usize {
        let p = piece as usize;
        self.rarity.remove(piece, self.avail[p]);
        let count = self.block_count(piece);
        let mut ap = self.spare.pop().unwrap_or_else(ActivePiece::empty);
        ap.reset(piece, count);
        if self.wanted[p] {
            self.unrequested += u64::from(count);
        }
        let s = self.active.len();
        self.active.push(ap);
        self.slot[p] = s as u32;
        s
    }

    /// Removes the active piece in slot `s`, releasing its requests and owner. The
    /// caller decides where the piece goes next.
    pub(super) fn release(&mut self, s: usize) -> ActivePiece {
        let ap = self.active.swap_remove(s);
        if let Some(moved) = self.active.get(s) {
            self.slot[moved.piece as usize] = s as u32;
        }
        self.slot[ap.piece as usize] = NONE;
        for b in &ap.blocks {
            if let BlockState::Requested(h) = b {
                for k in h.iter() {
                    self.dec_outstanding(k);
                }
            }
        }
        if let Some(o) = ap.owner {
            self.unown(o, ap.piece);
        }
        if self.wanted[ap.piece as usize] {
            self.unrequested -= u64::from(ap.missing);
        }
        ap
    }

    /// Returns the active piece in slot `s` to idle (into the buckets if wanted).
    pub(super) fn back_to_idle(&mut self, s: usize) {
        let ap = self.release(s);
        let p = ap.piece;
        self.spare.push(ap);
        if self.wanted[p as usize] && !self.have[p as usize] {
            self.rarity.insert(p, self.avail[p as usize]);
        }
    }

    pub(super) fn own(&mut self, peer: PeerKey, s: usize) {
        let ap = &mut self.active[s];
        ap.owner = Some(peer);
        let piece = ap.piece;
        self.peers.entry(peer).or_default().owned.push(piece);
    }

    fn unown(&mut self, owner: PeerKey, piece: u32) {
        if let Some(e) = self.peers.get_mut(&owner) {
            if let Some(i) = e.owned.iter().position(|&p| p == piece) {
                e.owned.swap_remove(i);
            }
        }
    }

    fn dec_outstanding(&mut self, peer: PeerKey) {
        if let Some(e) = self.peers.get_mut(&peer) {
            e.outstanding = e.outstanding.saturating_sub(1);
        }
    }
}
