//! The DHT (BEP 5): KRPC decoding, then whole datagrams fed to a `Dht` node. The input
//! is split at `0xff` bytes into datagrams; each is decoded (and, when it decodes,
//! re-encoded and decoded to the same message), then handed to a node that has a
//! lookup running, from one of two addresses, with a timeout after every other one.
//! Never panics.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use shoal_proto::dht::{Body, Dht, DhtConfig, Message, Method, NodeId, Query};
use shoal_proto::InfoHash;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut node = Dht::new(DhtConfig::default(), None, [7; 32], t0);
    let peers: [SocketAddr; 2] = [([127, 0, 0, 2], 6881).into(), ([1, 2, 3, 4], 6881).into()];
    node.add_node(t0, NodeId([1; 20]), peers[0]);
    node.announce(t0, InfoHash([2; 20]), None);
    let mut now = t0;
    for (i, datagram) in data.split(|&b| b == 0xff).enumerate() {
        if let Ok(m) = Message::decode(datagram) {
            let lossy = matches!(
                m.body,
                Body::Error(..) | Body::Query(Query { method: Method::Other(_), .. })
            );
            if !lossy {
                assert_eq!(Message::decode(&m.encode()).as_ref(), Ok(&m));
            }
        }
        node.handle_input(now, peers[i % 2], datagram);
        if i % 2 == 1 {
            now += Duration::from_secs(3);
            node.handle_timeout(now);
        }
        while node.poll_transmit().is_some() {}
        while node.poll_event().is_some() {}
    }
});
