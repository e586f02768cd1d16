//! The engine's HTTP tracker client: a raw HTTP response (status line, headers,
//! Content-Length or chunked body) as read from the socket. Never panics.
//!
//! Not built yet: it needs `shoal_engine::announce::http::parse_response(raw)`, a
//! `#[doc(hidden)] pub` wrapper around `complete_body`. Once that exists, add the
//! `shoal-engine` dependency and uncomment the `[[bin]]` entry in `fuzz/Cargo.toml`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shoal_engine::announce::http::parse_response(data);
});
