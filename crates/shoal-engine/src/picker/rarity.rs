//! Rarest-first buckets: unstarted wanted pieces grouped by availability.
//!
//! `buckets[a]` holds the pieces seen at `a` non-seed peers, in no particular order;
//! `pos[p]` is `p`'s index in its bucket or [`NONE`]. Moving a piece between buckets
//! when a peer announces it is O(1) (swap-remove + push), so availability updates
//! never scan. Picking walks buckets from rarest and, inside a bucket, scans from a
//! random start for the first piece the peer has: ties are broken at random and
//! the cost is paid once per new piece, not per block.

use rand::Rng;

use super::PieceSet;

/// Marker for "not in any bucket".
pub(crate) const NONE: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct Rarity {
    buckets: Vec<Vec<u32>>,
    pos: Vec<u32>,
    len: usize,
}

impl Rarity {
    pub fn new(num_pieces: u32) -> Self {
        Rarity {
            buckets: Vec::new(),
            pos: vec![NONE; num_pieces as usize],
            len: 0,
        }
    }

    /// Number of pieces in all buckets.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn contains(&self, piece: u32) -> bool {
        self.pos.get(piece as usize).is_some_and(|&p| p != NONE)
    }

    /// Adds `piece` (not present) with availability `avail`.
    pub fn insert(&mut self, piece: u32, avail: u32) {
        if self.contains(piece) || piece as usize >= self.pos.len() {
            return;
        }
        let b = avail as usize;
        if self.buckets.len() <= b {
            self.buckets.resize_with(b + 1, Vec::new);
        }
        let bucket = &mut self.buckets[b];
        self.pos[piece as usize] = bucket.len() as u32;
        bucket.push(piece);
        self.len += 1;
    }

    /// Removes `piece`, which must have been inserted with availability `avail`.
    pub fn remove(&mut self, piece: u32, avail: u32) {
        let Some(&i) = self.pos.get(piece as usize) else {
            return;
        };
        let Some(bucket) = self.buckets.get_mut(avail as usize) else {
            return;
        };
        if i == NONE || bucket.get(i as usize) != Some(&piece) {
            return;
        }
        bucket.swap_remove(i as usize);
        if let Some(&moved) = bucket.get(i as usize) {
            self.pos[moved as usize] = i;
        }
        self.pos[piece as usize] = NONE;
        self.len -= 1;
    }

    /// Moves a present `piece` from availability `from` to `to`.
    pub fn update(&mut self, piece: u32, from: u32, to: u32) {
        if from != to && self.contains(piece) {
            self.remove(piece, from);
            self.insert(piece, to);
        }
    }

    /// The rarest piece that `has` contains, chosen at random among equally rare ones.
    pub fn pick<S, R>(&self, has: &S, rng: &mut R) -> Option<u32>
    where
        S: PieceSet + ?Sized,
        R: Rng + ?Sized,
    {
        if self.len == 0 {
            return None;
        }
        for bucket in &self.buckets {
            if bucket.is_empty() {
                continue;
            }
            let start = rng.gen_range(0..bucket.len());
            let (head, tail) = bucket.split_at(start);
            if let Some(&p) = tail.iter().chain(head).find(|&&p| has.has_piece(p)) {
                return Some(p);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn insert_remove_update_keep_positions() {
        let mut r = Rarity::new(10);
        for p in 0..10 {
            r.insert(p, 0);
        }
        assert_eq!(r.len(), 10);
        r.remove(3, 0);
        r.remove(3, 0);
        assert!(!r.contains(3));
        assert_eq!(r.len(), 9);
        r.update(9, 0, 2);
        r.update(0, 0, 1);
        // Every remaining piece is findable at its bucket position.
        for (a, bucket) in r.buckets.iter().enumerate() {
            for (i, &p) in bucket.iter().enumerate() {
                assert_eq!(r.pos[p as usize] as usize, i, "bucket {a}");
            }
        }
        let mut rng = StdRng::seed_from_u64(1);
        let only_9_and_0 = |p: u32| p == 9 || p == 0;
        assert_eq!(
            r.pick(&only_9_and_0, &mut rng),
            Some(0),
            "bucket 1 before 2"
        );
        assert_eq!(r.pick(&|_: u32| false, &mut rng), None);
        r.remove(0, 0); // wrong bucket: ignored
        assert!(r.contains(0));
    }
}
