//! The engine's HTTP tracker client: a raw HTTP response (status line, headers,
//! Content-Length or chunked body) as read from the socket. Never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shoal_engine::announce::http::parse_response(data);
});
