//! Random bytes for the DHT from a seed the caller supplies.
//!
//! The protocol crate has no randomness of its own: the driver passes a seed drawn from
//! the OS once, and every id, transaction id and token secret is SHA-1 of the seed and
//! a counter. SHA-1 keeps later outputs (token secrets) from being guessed from the
//! transaction ids other nodes see; a seeded simulation gets the same run every time.

use sha1::{Digest, Sha1};

/// A deterministic stream of random bytes expanded from a 32-byte seed.
#[derive(Clone)]
pub(crate) struct Entropy {
    seed: [u8; 32],
    counter: u64,
}

impl Entropy {
    pub(crate) fn new(seed: [u8; 32]) -> Self {
        Entropy { seed, counter: 0 }
    }

    /// The next 20 random bytes.
    pub(crate) fn block(&mut self) -> [u8; 20] {
        self.counter += 1;
        let mut h = Sha1::new();
        h.update(self.seed);
        h.update(self.counter.to_be_bytes());
        h.finalize().into()
    }
}
