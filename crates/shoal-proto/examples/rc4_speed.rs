//! RC4 throughput of `shoal_proto::mse::Rc4` on one core, in place and into another
//! buffer (what the MSE read and write halves do), over 256 MiB in 128 KiB batches:
//!
//! ```text
//! cargo run --release -p shoal-proto --example rc4_speed
//! ```
//!
//! The transfer benchmark with and without RC4 is `bench/run --only mse`.

use std::time::Instant;

use shoal_proto::mse::Rc4;

fn main() {
    const BATCH: usize = 128 * 1024;
    const TOTAL: usize = 256 << 20;
    let src: Vec<u8> = (0..BATCH).map(|i| (i * 31 % 251) as u8).collect();
    let mut buf = src.clone();
    let mut rc4 = Rc4::new(b"a 20-byte key ......");
    let t = Instant::now();
    for _ in 0..TOTAL / BATCH {
        rc4.apply(&mut buf);
    }
    let in_place = TOTAL as f64 / t.elapsed().as_secs_f64() / 1e6;
    let mut dst = vec![0u8; BATCH];
    let t = Instant::now();
    for _ in 0..TOTAL / BATCH {
        rc4.apply_into(&src, &mut dst);
    }
    let into = TOTAL as f64 / t.elapsed().as_secs_f64() / 1e6;
    // Keep the results alive so the loops are not optimised away.
    let check = buf.iter().chain(&dst).fold(0u8, |a, b| a ^ b);
    println!(
        "rc4 in place: {in_place:.0} MB/s; into another buffer: {into:.0} MB/s (check {check})"
    );
}
