//! Rarest-first buckets: unstarted wanted pieces grouped by availability.
//!
//! `buckets[a]` holds the pieces seen at `a` non-seed peers, in no particular order;
//! `pos[p]` is `p`'s index in its bucket or [`NONE`]. Moving a piece between buckets
//! when a peer announces it is O(1) (swap-remove + push), so availability updates
//! never scan. Picking walks buckets from rarest and, inside a bucket, scans from a
//! random start for the first piece the peer has: ties are broken at random and
//! the cost is paid once per new piece, not per block.
//!
//! [`Tiered`] keeps one such set per [`Priority`]: a new piece comes from the highest
//! priority that the peer has any piece of, rarest first within it.

use rand::Rng;

use super::{PieceSet, Priority};

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

/// Rarest-first sets per priority, highest first (see the module docs).
#[derive(Debug)]
pub(crate) struct Tiered {
    tiers: [Rarity; 3],
    /// Priority of each piece, as an index into `tiers`.
    tier: Vec<u8>,
}

impl Tiered {
    /// Every piece at [`Priority::Normal`], none present.
    pub fn new(num_pieces: u32) -> Self {
        Tiered {
            tiers: [
                Rarity::new(num_pieces),
                Rarity::new(num_pieces),
                Rarity::new(num_pieces),
            ],
            tier: vec![tier_of(Priority::Normal); num_pieces as usize],
        }
    }

    fn of(&mut self, piece: u32) -> Option<&mut Rarity> {
        let t = *self.tier.get(piece as usize)?;
        self.tiers.get_mut(usize::from(t))
    }

    /// Pieces present at any priority.
    pub fn len(&self) -> usize {
        self.tiers.iter().map(Rarity::len).sum()
    }

    /// True if `piece` is present (at its priority).
    #[cfg(test)]
    pub fn contains(&self, piece: u32) -> bool {
        let t = self.tier.get(piece as usize).copied().unwrap_or(0);
        self.tiers
            .get(usize::from(t))
            .is_some_and(|r| r.contains(piece))
    }

    /// Adds `piece` (not present) with availability `avail` at its priority.
    pub fn insert(&mut self, piece: u32, avail: u32) {
        if let Some(r) = self.of(piece) {
            r.insert(piece, avail);
        }
    }

    /// Removes `piece`, present with availability `avail` (or absent: no-op).
    pub fn remove(&mut self, piece: u32, avail: u32) {
        if let Some(r) = self.of(piece) {
            r.remove(piece, avail);
        }
    }

    /// Moves a present `piece` from availability `from` to `to`.
    pub fn update(&mut self, piece: u32, from: u32, to: u32) {
        if let Some(r) = self.of(piece) {
            r.update(piece, from, to);
        }
    }

    /// Sets `piece`'s priority; a present piece (availability `avail`) moves tiers.
    pub fn set_priority(&mut self, piece: u32, priority: Priority, avail: u32) {
        let Some(&old) = self.tier.get(piece as usize) else {
            return;
        };
        let new = tier_of(priority);
        if old == new {
            return;
        }
        let present = self.tiers[usize::from(old)].contains(piece);
        if present {
            self.tiers[usize::from(old)].remove(piece, avail);
        }
        self.tier[piece as usize] = new;
        if present {
            self.tiers[usize::from(new)].insert(piece, avail);
        }
    }

    /// True if some piece of a priority above `p` is present.
    pub fn has_above(&self, p: Priority) -> bool {
        self.tiers[..usize::from(tier_of(p))]
            .iter()
            .any(|r| r.len() > 0)
    }

    /// The priority of `piece` (Normal past the end).
    pub fn priority(&self, piece: u32) -> Priority {
        match self.tier.get(piece as usize) {
            Some(0) => Priority::High,
            Some(2) => Priority::Low,
            _ => Priority::Normal,
        }
    }

    /// The rarest piece `has` contains at the highest priority that has one.
    pub fn pick<S, R>(&self, has: &S, rng: &mut R) -> Option<u32>
    where
        S: PieceSet + ?Sized,
        R: Rng + ?Sized,
    {
        self.tiers.iter().find_map(|r| r.pick(has, rng))
    }
}

fn tier_of(p: Priority) -> u8 {
    match p {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
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

    #[test]
    fn higher_priority_first_then_rarest() {
        let mut t = Tiered::new(6);
        for p in 0..6 {
            t.insert(p, u32::from(p == 4));
        }
        t.set_priority(4, Priority::High, 1);
        t.set_priority(5, Priority::Low, 0);
        assert_eq!(t.len(), 6);
        assert_eq!(t.priority(4), Priority::High);
        let mut rng = StdRng::seed_from_u64(7);
        // 4 is the most common piece but the only high one.
        assert_eq!(t.pick(&|_: u32| true, &mut rng), Some(4));
        t.remove(4, 1);
        // Normal before low, whatever the rarity.
        let only = |set: &'static [u32]| move |p: u32| set.contains(&p);
        assert_eq!(t.pick(&only(&[5, 2]), &mut rng), Some(2));
        assert_eq!(t.pick(&only(&[5]), &mut rng), Some(5));
        // Moving back to normal keeps the piece present exactly once.
        t.set_priority(5, Priority::Normal, 0);
        assert_eq!(t.len(), 5);
        t.remove(5, 0);
        assert_eq!(t.pick(&only(&[5]), &mut rng), None);
        // An absent piece only changes its recorded priority.
        t.set_priority(4, Priority::Low, 1);
        assert_eq!(t.len(), 4);
        t.insert(4, 1);
        assert_eq!(t.pick(&only(&[4, 0]), &mut rng), Some(0));
    }
}
