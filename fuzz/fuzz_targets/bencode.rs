//! Bencode decoding: never panics, and a decoded container's raw span is its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::bencode;

fuzz_target!(|data: &[u8]| {
    if let Ok((value, used)) = bencode::decode_prefix(data) {
        assert!(used <= data.len());
        let raw = value.raw();
        assert!(raw.is_empty() || raw == &data[..used]);
    }
    if let Ok(value) = bencode::decode(data) {
        let raw = value.raw();
        assert!(raw.is_empty() || raw == data);
    }
});
