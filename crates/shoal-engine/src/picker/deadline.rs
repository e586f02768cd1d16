//! Streaming deadlines and download order: the picker steps that run before
//! rarest-first when a reader waits for bytes, or when the user asked for an order.
//!
//! A *stream window* is a range of pieces a reader (an HTTP stream) needs soon, the
//! piece under its read position first. [`PiecePicker::pick`] serves windows before
//! anything else, in deadline order: the first missing piece of every window, then
//! the second of every window, and so on, so several streams progress together and
//! each gets its next piece before read-ahead. A deadline piece is taken whoever
//! owns it, and once all its blocks are requested for [`DUPLICATE_AFTER`] a second
//! peer may ask for them too (endgame for that piece alone), so one slow peer cannot
//! hold a stream. That needs the time: the torrent passes it with
//! [`PiecePicker::set_clock`] before picking while a window is set (the picker reads
//! no clock).
//!
//! Download order applies to new pieces after the windows: [`DownloadOrder::Rarest`]
//! (the default) or [`DownloadOrder::Sequential`] (the lowest missing wanted piece
//! first, within the highest priority), and, as a flag, the first and last piece of
//! every wanted file before the rest ([`PiecePicker::set_first_last`]).
//!
//! Cost: nothing per pick without windows or order flags (one `is_empty` test each);
//! with a window, one pass over its pieces per pick, no allocation.

use std::time::{Duration, Instant};

use super::active::{BlockState, MAX_REQUESTERS};
use super::rarity::NONE;
use super::{Block, PeerKey, PiecePicker, PieceSet, Priority};

/// Caller-chosen identity of a stream window (unique per torrent while set).
pub type StreamId = u64;

/// How long every block of a deadline piece may be requested from its peers alone
/// before another peer is asked for them as well.
pub const DUPLICATE_AFTER: Duration = Duration::from_millis(1500);

/// Peers that may hold a request for one block of a deadline piece (the first and
/// one helper; full endgame allows [`MAX_REQUESTERS`]).
const DEADLINE_REQUESTERS: usize = 2;
const _: () = assert!(DEADLINE_REQUESTERS <= MAX_REQUESTERS);

/// Deadline pieces tracked for [`DUPLICATE_AFTER`] beyond which finished ones are
/// pruned.
const SINCE_PRUNE: usize = 64;

/// Which new piece is started first (after stream windows and started pieces).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DownloadOrder {
    /// Rarest first, random among equally rare ones (BEP 3's advice; the default).
    #[default]
    Rarest,
    /// Lowest missing piece first (within the highest priority the peer has).
    Sequential,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    id: StreamId,
    first: u32,
    last: u32,
}

/// The windows, and since when deadline pieces have had every block requested.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    windows: Vec<Window>,
    since: Vec<(u32, Instant)>,
    now: Option<Instant>,
}

impl PiecePicker {
    /// Sets (or moves) stream `id`'s window to pieces `first..=last` (clamped to the
    /// torrent): they are requested before any other piece, earliest first.
    pub fn set_stream_window(&mut self, id: StreamId, first: u32, last: u32) {
        if self.num_pieces == 0 {
            return;
        }
        let last = last.min(self.num_pieces - 1);
        let first = first.min(last);
        let w = Window { id, first, last };
        match self.deadlines.windows.iter_mut().find(|w| w.id == id) {
            Some(slot) => *slot = w,
            None => self.deadlines.windows.push(w),
        }
    }

    /// Removes stream `id`'s window (a no-op if it has none).
    pub fn clear_stream(&mut self, id: StreamId) {
        self.deadlines.windows.retain(|w| w.id != id);
        if self.deadlines.windows.is_empty() {
            self.deadlines.since.clear();
        }
    }

    /// True while some stream window is set (the caller then passes the time with
    /// [`Self::set_clock`] before picking).
    pub fn has_stream_windows(&self) -> bool {
        !self.deadlines.windows.is_empty()
    }

    /// The current time, for [`DUPLICATE_AFTER`].
    pub fn set_clock(&mut self, now: Instant) {
        self.deadlines.now = Some(now);
    }

    /// Sets the order in which new pieces are started.
    pub fn set_order(&mut self, order: DownloadOrder) {
        self.order = order;
    }

    /// The order in which new pieces are started.
    pub fn order(&self) -> DownloadOrder {
        self.order
    }

    /// Pieces to start before any other new piece, in this order (the first and last
    /// piece of each file, for "first and last pieces first"); empty turns it off.
    /// Unwanted and had pieces in the list are skipped.
    pub fn set_first_last(&mut self, pieces: Vec<u32>) {
        self.first_last = pieces;
        self.first_last.retain(|&p| p < self.num_pieces);
    }

    /// True while a first-and-last list is set.
    pub fn first_last(&self) -> bool {
        !self.first_last.is_empty()
    }

    /// Step 0: blocks of stream window pieces, in deadline order.
    pub(super) fn pick_deadline<S: PieceSet + ?Sized>(
        &mut self,
        peer: PeerKey,
        peer_has: &S,
        want: usize,
        out: &mut Vec<Block>,
    ) -> usize {
        if self.deadlines.windows.is_empty() {
            return 0;
        }
        // Pieces already had at the front of a window no longer matter.
        let mut span = 0;
        for w in &mut self.deadlines.windows {
            while w.first < w.last && self.have[w.first as usize] {
                w.first += 1;
            }
            span = span.max(w.last - w.first + 1);
        }
        let mut n = 0;
        for rank in 0..span {
            for i in 0..self.deadlines.windows.len() {
                if n == want {
                    return n;
                }
                let w = self.deadlines.windows[i];
                let Some(piece) = w.first.checked_add(rank).filter(|&p| p <= w.last) else {
                    continue;
                };
                if self.wants(piece) && peer_has.has_piece(piece) {
                    n += self.pick_deadline_piece(piece, peer, want - n, out);
                }
            }
        }
        n
    }

    /// Blocks of one wanted, missing deadline piece the peer has.
    fn pick_deadline_piece(
        &mut self,
        piece: u32,
        peer: PeerKey,
        want: usize,
        out: &mut Vec<Block>,
    ) -> usize {
        let s = match self.slot[piece as usize] {
            NONE => {
                let s = self.activate(piece);
                self.own(peer, s);
                s
            }
            s => s as usize,
        };
        if self.active[s].missing > 0 {
            if self.active[s].owner.is_none() {
                self.own(peer, s);
            }
            return self.request_missing(s, peer, want, out);
        }
        if self.active[s].is_complete() {
            return 0;
        }
        let Some(now) = self.deadlines.now else {
            return 0;
        };
        let since = match self.deadlines.since.iter().find(|(p, _)| *p == piece) {
            Some(&(_, t)) => t,
            None => {
                self.note_fully_requested(piece, now);
                return 0;
            }
        };
        if now.saturating_duration_since(since) < DUPLICATE_AFTER {
            return 0;
        }
        self.duplicate_requests(s, peer, want, out)
    }

    /// Records that every block of deadline `piece` is requested as of `now`.
    fn note_fully_requested(&mut self, piece: u32, now: Instant) {
        let d = &mut self.deadlines;
        if d.since.len() >= SINCE_PRUNE {
            let slot = &self.slot;
            d.since.retain(|(p, _)| slot[*p as usize] != NONE);
        }
        d.since.push((piece, now));
    }

    /// Asks `peer` too for blocks of slot `s` that fewer than
    /// [`DEADLINE_REQUESTERS`] peers hold.
    fn duplicate_requests(
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
        for (i, b) in ap.blocks.iter_mut().enumerate() {
            if n == want {
                break;
            }
            if let BlockState::Requested(h) = b {
                if h.len() < DEADLINE_REQUESTERS && h.push(peer) {
                    out.push(super::pick::block_at(piece, i, size));
                    n += 1;
                }
            }
        }
        self.peers.entry(peer).or_default().outstanding += n as u32;
        n
    }

    /// The first new piece for `peer` by the first-and-last list, then the order.
    /// `None` when the order is rarest-first and no listed piece fits: the caller
    /// asks the rarity buckets.
    pub(super) fn ordered_new_piece<S: PieceSet + ?Sized>(&mut self, peer_has: &S) -> Option<u32> {
        if !self.first_last.is_empty() {
            let mut stale = false;
            let mut found = None;
            for &p in &self.first_last {
                let i = p as usize;
                if self.have[i] {
                    stale = true;
                } else if self.slot[i] == NONE && self.wanted[i] && peer_has.has_piece(p) {
                    found = Some(p);
                    break;
                }
            }
            if stale {
                let have = &self.have;
                self.first_last.retain(|&p| !have[p as usize]);
            }
            if found.is_some() {
                return found;
            }
        }
        match self.order {
            DownloadOrder::Rarest => None,
            DownloadOrder::Sequential => self.lowest_new_piece(peer_has),
        }
    }

    /// The lowest idle wanted piece `peer_has`, at the highest priority that has one.
    fn lowest_new_piece<S: PieceSet + ?Sized>(&mut self, peer_has: &S) -> Option<u32> {
        while self.seq_from < self.num_pieces && self.have[self.seq_from as usize] {
            self.seq_from += 1;
        }
        let mut best: Option<(u32, Priority)> = None;
        for p in self.seq_from..self.num_pieces {
            let i = p as usize;
            if self.slot[i] != NONE || !self.wanted[i] || self.have[i] || !peer_has.has_piece(p) {
                continue;
            }
            let pr = self.priority(p);
            if best.map_or(true, |(_, b)| pr > b) {
                best = Some((p, pr));
                // A lower piece at this priority is found: only a higher one beats it.
                if !self.rarity.has_above(pr) {
                    break;
                }
            }
        }
        best.map(|(p, _)| p)
    }
}
