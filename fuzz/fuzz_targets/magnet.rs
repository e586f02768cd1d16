//! Magnet links: never panics, and a parsed link survives `to_uri` and back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::magnet::Magnet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = Magnet::parse(text) {
        assert_eq!(Magnet::parse(&m.to_uri()), Ok(m));
    }
});
