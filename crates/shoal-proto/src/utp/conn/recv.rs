//! The receive side of a connection: in-order bytes waiting for the reader, packets
//! that arrived ahead of a gap, and the FIN.
//!
//! Invariants: `ack_nr` is the last sequence number delivered in order; slot `i` of
//! `ahead` holds packet `ack_nr + 1 + i` (slot 0 is always empty, or it would have been
//! delivered). Bytes held (readable plus ahead) never exceed `capacity`: a data packet
//! that does not fit is dropped and the sender retransmits once the window opens. No
//! sequence number beyond the peer's FIN is accepted.

use std::collections::VecDeque;

use super::super::packet::MAX_SACK_BYTES;

/// Most packets held ahead of a gap (and so the farthest ahead one may be).
pub(super) const MAX_AHEAD: usize = 4096;

/// What became of a received sequenced packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Received {
    /// Kept (delivered or held ahead of a gap).
    New,
    /// Already had it.
    Duplicate,
    /// No room, too far ahead, or past the FIN.
    Dropped,
}

#[derive(Debug)]
pub(super) struct RecvBuffer {
    ack_nr: u16,
    readable: VecDeque<u8>,
    ahead: VecDeque<Option<Vec<u8>>>,
    ahead_bytes: usize,
    eof: Option<u16>,
    finished: bool,
    capacity: usize,
}

impl RecvBuffer {
    /// A buffer whose next expected packet is `ack_nr + 1`.
    pub(super) fn new(ack_nr: u16, capacity: usize) -> Self {
        RecvBuffer {
            ack_nr,
            readable: VecDeque::new(),
            ahead: VecDeque::new(),
            ahead_bytes: 0,
            eof: None,
            finished: false,
            capacity,
        }
    }

    pub(super) fn ack_nr(&self) -> u16 {
        self.ack_nr
    }

    /// Moves the starting point (the initiator learns the acceptor's first sequence
    /// number from its first packet).
    pub(super) fn reset_ack_nr(&mut self, ack_nr: u16) {
        self.ack_nr = ack_nr;
    }

    /// Whether the peer's FIN has been reached in order.
    pub(super) fn finished(&self) -> bool {
        self.finished
    }

    /// Whether the reader has taken everything up to the peer's FIN.
    pub(super) fn at_eof(&self) -> bool {
        self.finished && self.readable.is_empty()
    }

    /// Bytes in order, waiting for the reader.
    pub(super) fn readable(&self) -> usize {
        self.readable.len()
    }

    /// Bytes the buffer can still take: the advertised window.
    pub(super) fn window(&self) -> u32 {
        let used = self.readable.len() + self.ahead_bytes;
        u32::try_from(self.capacity.saturating_sub(used)).unwrap_or(u32::MAX)
    }

    /// Files packet `seq` (a FIN when `fin`).
    pub(super) fn insert(&mut self, seq: u16, payload: &[u8], fin: bool) -> Received {
        let dist = usize::from(seq.wrapping_sub(self.ack_nr.wrapping_add(1)));
        if dist >= 0x8000 || self.finished {
            return Received::Duplicate;
        }
        let past_eof = self
            .eof
            .is_some_and(|e| usize::from(e.wrapping_sub(self.ack_nr.wrapping_add(1))) < dist);
        let second_fin = fin && self.eof.is_some_and(|e| e != seq);
        if dist >= MAX_AHEAD || past_eof || second_fin {
            return Received::Dropped;
        }
        if self.ahead.get(dist).is_some_and(Option::is_some) {
            return Received::Duplicate;
        }
        if payload.len() > self.window() as usize {
            return Received::Dropped;
        }
        if fin {
            self.eof = Some(seq);
        }
        if dist == 0 && self.ahead.len() <= 1 && !fin {
            // The next packet in order with nothing held ahead (the common case): straight
            // to the reader, without a buffer of its own on the way.
            self.ahead.clear();
            self.ack_nr = seq;
            self.readable.extend(payload);
            return Received::New;
        }
        if self.ahead.len() <= dist {
            self.ahead.resize(dist + 1, None);
        }
        self.ahead_bytes += payload.len();
        self.ahead[dist] = Some(payload.to_vec());
        self.deliver();
        Received::New
    }

    /// Moves packets that are now in order from `ahead` to `readable`.
    fn deliver(&mut self) {
        while let Some(Some(_)) = self.ahead.front() {
            let Some(Some(data)) = self.ahead.pop_front() else {
                break;
            };
            self.ahead_bytes -= data.len();
            self.ack_nr = self.ack_nr.wrapping_add(1);
            if self.eof == Some(self.ack_nr) {
                self.finished = true;
                self.ahead.clear();
                self.ahead_bytes = 0;
                return;
            }
            self.readable.extend(data);
        }
    }

    /// Copies readable bytes into `buf`.
    pub(super) fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.readable.len());
        let (front, back) = self.readable.as_slices();
        let from_front = n.min(front.len());
        buf[..from_front].copy_from_slice(&front[..from_front]);
        buf[from_front..n].copy_from_slice(&back[..n - from_front]);
        self.readable.drain(..n);
        n
    }

    /// Writes the selective-ack bitmask (bit `i` = packet `ack_nr + 2 + i` held) into
    /// `out` and returns its length, or `None` when nothing is held ahead of a gap.
    pub(super) fn sack(&self, out: &mut [u8; MAX_SACK_BYTES]) -> Option<usize> {
        if self.ahead.len() < 2 {
            return None;
        }
        let bits = (self.ahead.len() - 1).min(MAX_SACK_BYTES * 8);
        let len = bits.div_ceil(32) * 4;
        out[..len].fill(0);
        for (i, slot) in self.ahead.iter().skip(1).take(bits).enumerate() {
            if slot.is_some() {
                out[i / 8] |= 1 << (i % 8);
            }
        }
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorders_drops_duplicates_and_stops_at_fin() {
        let mut r = RecvBuffer::new(65534, 1 << 16);
        assert_eq!(r.insert(1, b"c", false), Received::New); // ahead: 65535, 0 missing
        assert_eq!(r.insert(1, b"c", false), Received::Duplicate);
        let mut sack = [0; MAX_SACK_BYTES];
        assert_eq!(r.sack(&mut sack), Some(4));
        assert_eq!(
            sack[0], 0b10,
            "bit 0 = ack_nr + 2 = 0 missing, bit 1 = 1 held"
        );
        assert_eq!(r.insert(2, &[], true), Received::New);
        assert_eq!(r.insert(3, b"x", false), Received::Dropped, "past the FIN");
        assert_eq!(r.insert(65535, b"a", false), Received::New);
        assert_eq!(r.insert(0, b"b", false), Received::New);
        assert!(r.finished() && !r.at_eof());
        let mut buf = [0; 8];
        assert_eq!(r.read(&mut buf), 3);
        assert_eq!(&buf[..3], b"abc");
        assert!(r.at_eof());
        assert_eq!(r.insert(0, b"b", false), Received::Duplicate);
    }

    #[test]
    fn in_order_packets_go_straight_to_the_reader_until_a_gap() {
        let mut r = RecvBuffer::new(9, 1 << 16);
        assert_eq!(r.insert(10, b"ab", false), Received::New);
        assert_eq!(r.insert(11, b"cd", false), Received::New);
        assert_eq!((r.ack_nr(), r.readable(), r.ahead.len()), (11, 4, 0));
        assert_eq!(r.insert(11, b"cd", false), Received::Duplicate);
        assert_eq!(r.insert(13, b"gh", false), Received::New); // 12 missing
        assert_eq!(r.insert(12, b"ef", false), Received::New); // fills the gap
        assert_eq!(r.insert(14, b"ij", false), Received::New); // in order again
        assert_eq!(r.insert(15, &[], true), Received::New);
        assert_eq!((r.ack_nr(), r.ahead.len()), (15, 0));
        assert!(r.finished());
        let mut buf = [0; 16];
        let n = r.read(&mut buf);
        assert_eq!(&buf[..n], b"abcdefghij");
        assert!(r.at_eof());
        let mut w = RecvBuffer::new(0, 3);
        assert_eq!(
            w.insert(1, b"abcd", false),
            Received::Dropped,
            "over the window"
        );
        assert_eq!(w.ack_nr(), 0);
    }

    #[test]
    fn full_buffer_drops_and_reading_reopens() {
        let mut r = RecvBuffer::new(0, 4);
        assert_eq!(r.insert(1, b"abcd", false), Received::New);
        assert_eq!(r.window(), 0);
        assert_eq!(r.insert(2, b"e", false), Received::Dropped);
        assert_eq!(r.read(&mut [0; 2]), 2);
        assert_eq!(r.insert(2, b"e", false), Received::New);
        assert_eq!(r.ack_nr(), 2);
    }
}
