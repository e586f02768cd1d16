//! UDP tracker (BEP 15): request parsing as the tracker does it, response parsing as a
//! client does it. Never panics; a parsed request re-encodes to one that parses equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::udp_tracker::{parse_request, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = parse_request(data) {
        let mut out = Vec::new();
        req.write(&mut out);
        assert_eq!(parse_request(&out), Ok(req));
    }
    let _ = Response::parse(data, false);
    let _ = Response::parse(data, true);
});
