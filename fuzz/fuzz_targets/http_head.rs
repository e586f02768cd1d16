//! The tracker's HTTP/1.x request-head parser. Never panics; a complete head never
//! claims more bytes than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(used)) = shoal_tracker::parse_http_head(data) {
        assert!(used <= data.len());
    }
});
