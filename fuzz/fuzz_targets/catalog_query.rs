//! The catalog's search-query parser. Never panics and keeps its caps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::catalog::{SearchQuery, MAX_QUERY_WORDS};

fuzz_target!(|data: &[u8]| {
    let q = SearchQuery::parse(&String::from_utf8_lossy(data));
    assert!(q.words.len() <= MAX_QUERY_WORDS);
});
