//! SHA-1 throughput of the `sha1` crate as Shoal uses it, on one core, over 1 GiB in
//! 256 KiB pieces held in memory (no reads), beside `openssl speed -evp sha1`:
//!
//! ```text
//! cargo run --release -p shoal-proto --example sha1_speed
//! ```
//!
//! `shoal create` against openssl is `bench/run --only hash`.

use std::time::Instant;

use sha1::{Digest, Sha1};

fn main() {
    const PIECE: usize = 256 * 1024;
    const TOTAL: usize = 1 << 30;
    let buf: Vec<u8> = (0..PIECE).map(|i| (i * 31 % 251) as u8).collect();
    for round in 0..3 {
        let t = Instant::now();
        let mut x = 0u8;
        for _ in 0..TOTAL / PIECE {
            x ^= Sha1::digest(&buf)[0];
        }
        let mbs = TOTAL as f64 / t.elapsed().as_secs_f64() / 1e6;
        println!("round {round}: {mbs:.0} MB/s (checksum {x})");
    }
}
