//! The UDP tracker client's exchange (BEP 15): datagrams as a tracker (or anyone who
//! guesses the socket) might send them, fed to `AnnounceExchange` in turn with timeouts
//! in between. The input is split at `0xff` bytes into datagrams; the first byte
//! picks a cached id and the address family. Never panics; once over, stays over.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use shoal_proto::tracker::AnnounceRequest;
use shoal_proto::udp_tracker::{AnnounceExchange, Connection, UdpTimeouts};
use shoal_proto::{InfoHash, PeerId};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let t0 = Instant::now();
    let cached = (mode & 1 == 1).then(|| Connection {
        id: 7,
        expires: t0 + Duration::from_secs(30),
    });
    let req = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881);
    // Transaction id 0 throughout, so inputs starting `0 0 0 x 0 0 0 0` match.
    let mut x = AnnounceExchange::new(&req, mode & 2 == 2, cached, UdpTimeouts::default(), t0, 0);
    let mut now = t0;
    let mut over = false;
    for (i, datagram) in rest.split(|&b| b == 0xff).enumerate() {
        x.handle_datagram(datagram, now, 0);
        if mode & 4 == 4 && i % 2 == 1 {
            now += Duration::from_secs(20);
            x.handle_timeout(now, 0);
        }
        let _ = x.poll_transmit();
        if over {
            assert!(x.poll_result().is_none() && x.poll_timeout().is_none());
        }
        over |= x.poll_result().is_some();
    }
});
