//! A small HTTP/1.1 GET server for the tracker endpoints.
//!
//! One task per connection with a fixed read buffer of `max_request_bytes`. Requests
//! are parsed in place; every complete request already in the buffer (pipelining) is
//! answered into one output buffer and written with a single `write_all`. Keep-alive
//! follows HTTP/1.1 (on unless `Connection: close`) and HTTP/1.0 (off unless
//! `Connection: keep-alive`). A head that outgrows the buffer gets 414 (no complete
//! request line) or 431, a malformed head or a request body gets 400, and the
//! connection is closed; a non-GET gets 405 and an unknown path 404, keeping the
//! connection. Reads time out after `idle_timeout`, writes after the same.

mod endpoint;
mod request;

pub(crate) use endpoint::Service;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tracing::{debug, trace};

use endpoint::Scratch;
use request::{parse_head, Head};

/// What to do with the connection after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    KeepOpen,
    Close,
}

/// Serves one client connection until it closes, errs, idles out or asks to close.
pub(crate) async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    service: Arc<Service>,
) {
    let cfg = &service.config;
    let idle = Duration::from_secs(cfg.idle_timeout.into());
    let mut buf = vec![0u8; cfg.max_request_bytes];
    let (mut start, mut end) = (0usize, 0usize);
    let mut out = Vec::with_capacity(1024);
    let mut body = Vec::with_capacity(512);
    let mut scratch = Scratch::default();
    loop {
        let mut after = After::KeepOpen;
        while after == After::KeepOpen {
            match parse_head(&buf[start..end]) {
                Ok(Some((head, used))) => {
                    after = respond(&service, &head, peer, &mut out, &mut body, &mut scratch);
                    start += used;
                }
                Ok(None) => {
                    if start == 0 && end == buf.len() {
                        let has_line = buf.contains(&b'\n');
                        let (status, text) = if has_line {
                            (
                                "431 Request Header Fields Too Large",
                                "request head too large\n",
                            )
                        } else {
                            ("414 URI Too Long", "request line too long\n")
                        };
                        debug!(%peer, status, "oversized request");
                        write_response(
                            &mut out,
                            status,
                            "text/plain",
                            text.as_bytes(),
                            false,
                            false,
                        );
                        after = After::Close;
                    }
                    break;
                }
                Err(bad) => {
                    debug!(%peer, reason = bad.0, "bad request");
                    let text = format!("bad request: {}\n", bad.0);
                    write_response(
                        &mut out,
                        "400 Bad Request",
                        "text/plain",
                        text.as_bytes(),
                        false,
                        false,
                    );
                    after = After::Close;
                }
            }
        }
        if !out.is_empty() {
            match timeout(idle, stream.write_all(&out)).await {
                Ok(Ok(())) => out.clear(),
                _ => return,
            }
        }
        if after == After::Close {
            let _ = timeout(idle, stream.shutdown()).await;
            return;
        }
        // Make room: drop consumed bytes so a partial request sits at the front.
        if start == end {
            (start, end) = (0, 0);
        } else if start > 0 {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        match timeout(idle, stream.read(&mut buf[end..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Err(_) => {
                trace!(%peer, "idle timeout");
                return;
            }
            Ok(Ok(n)) => end += n,
        }
    }
}

/// Routes one request and appends its full response to `out`.
fn respond(
    service: &Service,
    head: &Head<'_>,
    peer: SocketAddr,
    out: &mut Vec<u8>,
    body: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> After {
    if head.has_body {
        let text = b"bad request: request bodies are not accepted\n";
        write_response(out, "400 Bad Request", "text/plain", text, false, false);
        return After::Close;
    }
    let keep = head.keep_alive;
    let ka10 = keep && head.http10;
    if head.method != b"GET" {
        write_response(
            out,
            "405 Method Not Allowed",
            "text/plain",
            b"only GET is supported\n",
            keep,
            ka10,
        );
        return if keep { After::KeepOpen } else { After::Close };
    }
    body.clear();
    let (path, query) = head.path_and_query();
    match path {
        b"/announce" => service.announce(query, peer.ip(), body, scratch),
        b"/scrape" => service.scrape(query, body),
        _ => {
            write_response(
                out,
                "404 Not Found",
                "text/plain",
                b"not found: this tracker serves /announce and /scrape\n",
                keep,
                ka10,
            );
            return if keep { After::KeepOpen } else { After::Close };
        }
    }
    write_response(out, "200 OK", "text/plain", body, keep, ka10);
    if keep {
        After::KeepOpen
    } else {
        After::Close
    }
}

/// Appends a complete response. `keep_alive == false` adds `Connection: close`;
/// `explicit_keep_alive` adds `Connection: keep-alive` (HTTP/1.0 clients need it).
fn write_response(
    out: &mut Vec<u8>,
    status: &str,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
    explicit_keep_alive: bool,
) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if explicit_keep_alive {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}
