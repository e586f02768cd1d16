//! Peer lists: compact v4/v6 round-trip, dictionary lists never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::{bencode, peers};

fuzz_target!(|data: &[u8]| {
    if let Ok(addrs) = peers::parse_compact_v4(data) {
        let mut out = Vec::new();
        peers::encode_compact_v4(&addrs, &mut out);
        assert_eq!(out, data);
    }
    if let Ok(addrs) = peers::parse_compact_v6(data) {
        // IPv4-mapped entries are skipped by the v6 encoder, so only check parsing again.
        let mut out = Vec::new();
        peers::encode_compact_v6(&addrs, &mut out);
        assert!(peers::parse_compact_v6(&out).is_ok());
    }
    if let Ok(value) = bencode::decode(data) {
        let _ = peers::parse_peers(&value);
    }
});
