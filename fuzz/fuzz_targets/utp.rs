//! uTP (BEP 29): the packet decoder, then datagrams fed to connections in every state.
//! The input is split at `0xff 0xfe` into datagrams; the first byte picks the side (an
//! initiator still connecting, or one connected through a scripted handshake) and how
//! far the clock moves between datagrams. Never panics; every output decodes; once
//! closed, stays closed.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use shoal_proto::utp::{Connection, Packet, UtpConfig};

fuzz_target!(|data: &[u8]| {
    let _ = Packet::decode(data);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let t0 = Instant::now();
    let cfg = UtpConfig::default();
    let mut c = Connection::connect(cfg, t0, 0x1234);
    let syn = c.poll_transmit(t0).expect("a new connection sends its SYN");
    let mut accepted = Connection::accept(cfg, t0, &syn, 77).expect("our own SYN is one");
    if mode & 1 == 1 {
        let ack = accepted.poll_transmit(t0).expect("an accepted SYN is acked");
        c.handle_packet(t0, &ack);
        c.write(&[1; 3000]);
    }
    accepted.write(&[2; 3000]);
    let step = Duration::from_millis(u64::from(mode >> 1) * 40);
    let mut now = t0;
    let mut closed = [false; 2];
    let mut start = 0;
    let mut datagrams = Vec::new();
    while let Some(i) = rest[start..].windows(2).position(|w| w == [0xff, 0xfe]) {
        datagrams.push(&rest[start..start + i]);
        start += i + 2;
    }
    datagrams.push(&rest[start..]);
    for d in datagrams {
        now += step;
        for (conn, was_closed) in [&mut c, &mut accepted].into_iter().zip(&mut closed) {
            conn.handle_packet(now, d);
            if conn.poll_timeout().is_some_and(|t| t <= now) {
                conn.handle_timeout(now);
            }
            while let Some(out) = conn.poll_transmit(now) {
                assert!(Packet::decode(&out).is_ok());
            }
            let _ = conn.read(&mut [0; 512]);
            assert!(!*was_closed || conn.is_closed());
            *was_closed = conn.is_closed();
        }
    }
});
