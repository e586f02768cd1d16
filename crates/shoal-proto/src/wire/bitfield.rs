//! Which pieces a peer (or we) have, as in the BEP 3 `bitfield` message: bit `i` is
//! bit `7 - i % 8` of byte `i / 8` (MSB first), spare bits in the last byte are zero.
//!
//! Invariants: the byte vector is exactly `ceil(num_pieces / 8)` long, spare bits are
//! always clear, and the cached count of set bits is exact.

use super::WireError;

/// A fixed-size set of piece indices backed by the wire representation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bitfield {
    bytes: Vec<u8>,
    num_pieces: u32,
    ones: u32,
}

impl Bitfield {
    /// Bytes in a bitfield for `num_pieces` pieces.
    pub fn byte_len(num_pieces: u32) -> u32 {
        num_pieces.div_ceil(8)
    }

    /// All pieces missing.
    pub fn new(num_pieces: u32) -> Self {
        Bitfield {
            bytes: vec![0; Self::byte_len(num_pieces) as usize],
            num_pieces,
            ones: 0,
        }
    }

    /// All pieces present (a seed, or a BEP 6 `have all`).
    pub fn full(num_pieces: u32) -> Self {
        let mut bytes = vec![0xff; Self::byte_len(num_pieces) as usize];
        if let Some(last) = bytes.last_mut() {
            *last &= !spare_mask(num_pieces);
        }
        Bitfield {
            bytes,
            num_pieces,
            ones: num_pieces,
        }
    }

    /// Checks and copies a received `bitfield` payload: it must be exactly
    /// `ceil(num_pieces / 8)` bytes with the spare bits clear (BEP 3 says peers that
    /// send otherwise should be dropped).
    pub fn from_bytes(bytes: &[u8], num_pieces: u32) -> Result<Self, WireError> {
        let expected = Self::byte_len(num_pieces) as usize;
        if bytes.len() != expected {
            return Err(WireError::BitfieldLength {
                len: bytes.len(),
                expected,
                num_pieces,
            });
        }
        if bytes
            .last()
            .is_some_and(|&b| b & spare_mask(num_pieces) != 0)
        {
            return Err(WireError::BitfieldSpareBits { num_pieces });
        }
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            num_pieces,
            ones,
        })
    }

    /// Number of pieces the set covers.
    pub fn num_pieces(&self) -> u32 {
        self.num_pieces
    }

    /// Whether piece `index` is present; `false` for indices past the end.
    pub fn get(&self, index: u32) -> bool {
        match self.locate(index) {
            Some((byte, mask)) => self.bytes[byte] & mask != 0,
            None => false,
        }
    }

    /// Marks piece `index` present. Returns whether it was missing before; indices
    /// past the end are ignored and return `false` (check `have` indices from the
    /// wire against [`Bitfield::num_pieces`] to reject the peer instead).
    pub fn set(&mut self, index: u32) -> bool {
        let Some((byte, mask)) = self.locate(index) else {
            return false;
        };
        let was_clear = self.bytes[byte] & mask == 0;
        self.bytes[byte] |= mask;
        self.ones += u32::from(was_clear);
        was_clear
    }

    /// Marks piece `index` missing. Returns whether it was present before; indices past
    /// the end are ignored and return `false`.
    pub fn clear(&mut self, index: u32) -> bool {
        let Some((byte, mask)) = self.locate(index) else {
            return false;
        };
        let was_set = self.bytes[byte] & mask != 0;
        self.bytes[byte] &= !mask;
        self.ones -= u32::from(was_set);
        was_set
    }

    /// Pieces present (constant time: the count is maintained on every change).
    pub fn count_ones(&self) -> u32 {
        self.ones
    }

    /// Every piece is present. True for a zero-piece set.
    pub fn is_full(&self) -> bool {
        self.ones == self.num_pieces
    }

    /// No piece is present.
    pub fn is_clear(&self) -> bool {
        self.ones == 0
    }

    /// The wire representation, ready for a `bitfield` message.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Indices of present pieces, ascending. Skips empty bytes without testing bits.
    pub fn iter_set(&self) -> IterSet<'_> {
        IterSet {
            bytes: &self.bytes,
            next_byte: 0,
            base: 0,
            cur: 0,
        }
    }

    fn locate(&self, index: u32) -> Option<(usize, u8)> {
        (index < self.num_pieces).then(|| ((index / 8) as usize, 0x80u8 >> (index % 8)))
    }
}

/// Mask of the unused low bits in the last byte of a bitfield for `num_pieces`.
fn spare_mask(num_pieces: u32) -> u8 {
    match num_pieces % 8 {
        0 => 0,
        used => 0xffu8 >> used,
    }
}

/// Iterator over the present pieces of a [`Bitfield`], from [`Bitfield::iter_set`].
#[derive(Debug, Clone)]
pub struct IterSet<'a> {
    bytes: &'a [u8],
    next_byte: usize,
    /// Piece index of bit 7 of `cur`.
    base: u32,
    /// Unvisited set bits of the current byte.
    cur: u8,
}

impl Iterator for IterSet<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        while self.cur == 0 {
            let skipped = self.bytes.get(self.next_byte..)?;
            let nz = skipped.iter().position(|&b| b != 0)?;
            self.next_byte += nz;
            self.cur = self.bytes[self.next_byte];
            // Bitfields are at most u32::MAX / 8 + 1 bytes, so this fits in u32.
            self.base = (self.next_byte as u32).wrapping_mul(8);
            self.next_byte += 1;
        }
        let bit = self.cur.leading_zeros();
        self.cur &= !(0x80u8 >> bit);
        Some(self.base + bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn msb_first_layout() {
        let mut b = Bitfield::new(10);
        assert_eq!(b.as_bytes(), [0, 0]);
        assert!(b.set(0));
        assert!(!b.set(0));
        assert!(b.set(9));
        assert_eq!(b.as_bytes(), [0x80, 0x40]);
        assert_eq!(b.count_ones(), 2);
        assert!(b.get(9) && !b.get(8) && !b.get(10) && !b.get(u32::MAX));
        assert!(!b.set(10), "out of range is ignored");
        assert!(b.clear(0) && !b.clear(0) && !b.clear(99));
        assert_eq!(b.iter_set().collect::<Vec<_>>(), [9]);
    }

    #[test]
    fn full_and_spare_bits() {
        let f = Bitfield::full(10);
        assert_eq!(f.as_bytes(), [0xff, 0xc0]);
        assert!(f.is_full() && !f.is_clear());
        assert_eq!(Bitfield::from_bytes(&[0xff, 0xc0], 10), Ok(f));
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xe0], 10),
            Err(WireError::BitfieldSpareBits { num_pieces: 10 })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff], 10),
            Err(WireError::BitfieldLength {
                len: 1,
                expected: 2,
                num_pieces: 10
            })
        );
        assert_eq!(Bitfield::full(16).as_bytes(), [0xff, 0xff]);
        let empty = Bitfield::full(0);
        assert!(empty.is_full() && empty.is_clear() && empty.as_bytes().is_empty());
        assert_eq!(Bitfield::from_bytes(&[], 0), Ok(Bitfield::new(0)));
    }

    proptest! {
        #[test]
        fn matches_a_bool_model(num_pieces in 0u32..300,
                                ops in proptest::collection::vec((any::<bool>(), 0u32..320), 0..200)) {
            let mut b = Bitfield::new(num_pieces);
            let mut model = vec![false; num_pieces as usize];
            for (set, i) in ops {
                let changed = if set { b.set(i) } else { b.clear(i) };
                let mut expect = false;
                if let Some(s) = model.get_mut(i as usize) {
                    expect = *s != set;
                    *s = set;
                }
                prop_assert_eq!(changed, expect);
            }
            let want: Vec<u32> = (0..num_pieces).filter(|&i| model[i as usize]).collect();
            prop_assert_eq!(b.iter_set().collect::<Vec<_>>(), want.clone());
            prop_assert_eq!(b.count_ones() as usize, want.len());
            prop_assert_eq!(b.is_full(), want.len() == num_pieces as usize);
            prop_assert_eq!(Bitfield::from_bytes(b.as_bytes(), num_pieces), Ok(b));
        }

        #[test]
        fn from_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40),
                                          num_pieces in 0u32..400) {
            if let Ok(b) = Bitfield::from_bytes(&bytes, num_pieces) {
                prop_assert_eq!(b.iter_set().count() as u32, b.count_ones());
                prop_assert!(b.iter_set().all(|i| i < num_pieces));
            }
        }
    }
}
