//! `.torrent` parsing: never panics on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shoal_proto::metainfo::Metainfo::from_bytes(data);
});
