//! HTTP tracker query strings as the tracker parses them: `/announce?...` and
//! `/scrape?...`. Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::tracker::{AnnounceRequest, ScrapeRequest};

fuzz_target!(|data: &[u8]| {
    let _ = AnnounceRequest::from_query(data);
    let _ = ScrapeRequest::from_query(data);
});
