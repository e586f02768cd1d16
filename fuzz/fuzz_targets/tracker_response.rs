//! HTTP tracker announce and scrape responses as a client parses them. Never panics;
//! whatever parses re-encodes to something that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::tracker::{AnnounceResponse, ScrapeResponse};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = AnnounceResponse::parse(data) {
        assert!(AnnounceResponse::parse(&r.encode(true)).is_ok());
        assert!(AnnounceResponse::parse(&r.encode(false)).is_ok());
    }
    if let Ok(r) = ScrapeResponse::parse(data) {
        assert!(ScrapeResponse::parse(&r.encode()).is_ok());
    }
});
