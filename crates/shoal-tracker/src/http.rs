//! A small HTTP/1.1 server for the tracker endpoints.
//!
//! One task per connection with a fixed read buffer of `max_request_bytes` for request
//! heads. Requests are parsed in place; every complete request already in the buffer
//! (pipelining) is answered into one output buffer and written with a single
//! `write_all`. Keep-alive follows HTTP/1.1 (on unless `Connection: close`) and
//! HTTP/1.0 (off unless `Connection: keep-alive`). A head that outgrows the buffer gets
//! 414 (no complete request line) or 431, a malformed head gets 400, and the
//! connection is closed; an unsupported method gets 405 and an unknown path 404,
//! keeping the connection. Reads time out after `idle_timeout`, writes after the same.
//!
//! Only `POST /publish` has a body: it must carry `Content-Length` (chunked gets 411)
//! of at most `max_publish_bytes` (more gets 413, unread, and a close). A body on any
//! other request gets 400 and a close. Bodies are read as they arrive under a per-IP
//! rate (429), a tracker-wide byte budget (503) and a total deadline (`upload`
//! module), so clients announcing large bodies they never send cost no memory.
//!
//! Routes: `/announce`, `/scrape` (bencode), `/` (HTML status), `/stats` (JSON),
//! `/search`, `/torrent/<hex>`, `POST /publish` (catalog, JSON).

mod catalog_api;
mod endpoint;
mod inline;
mod request;
mod status;
mod upload;

pub(crate) use inline::{Inline, Outcome};
pub(crate) use upload::UploadLimits;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tracing::{debug, trace};

use crate::service::{Scratch, Service};
use catalog_api::Reply;
pub(crate) use request::parse_head;
use request::Head;
use upload::{Upload, UploadError};

/// What to do with the connection after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    KeepOpen,
    Close,
}

/// Serves one client connection until it closes, errs, idles out or asks to close.
/// `received` is what was already read from it (at most `max_request_bytes`);
/// `uploads` bounds `POST /publish` bodies across all connections.
pub(crate) async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    service: Arc<Service>,
    uploads: Arc<UploadLimits>,
    received: &[u8],
) {
    let cfg = &service.config;
    let idle = Duration::from_secs(cfg.idle_timeout.into());
    let mut buf = vec![0u8; cfg.max_request_bytes];
    let (mut start, mut end) = (0usize, received.len().min(buf.len()));
    buf[..end].copy_from_slice(&received[..end]);
    let mut out = Vec::with_capacity(1024);
    let mut body = Vec::with_capacity(512);
    let mut scratch = Scratch::default();
    loop {
        let mut after = After::KeepOpen;
        while after == After::KeepOpen {
            match parse_head(&buf[start..end]) {
                Ok(Some((head, used))) => {
                    start += used;
                    let mut upload = None;
                    if head.has_body {
                        // Capped by body_allowed before any byte is kept, so it fits usize.
                        let len = usize::try_from(head.content_length).unwrap_or(usize::MAX);
                        let in_buf = (end - start).min(len);
                        let prefix = &buf[start..start + in_buf];
                        match receive_body(&service, &uploads, &head, peer, prefix, &mut stream)
                            .await
                        {
                            Ok(up) => upload = Some(up),
                            Err(Some(refusal)) => {
                                write_reply(&mut out, &refusal, false, false);
                                after = After::Close;
                                break;
                            }
                            Err(None) => return,
                        }
                        start += in_buf;
                    }
                    let req_body = upload
                        .as_mut()
                        .map(|u| std::mem::take(&mut u.body))
                        .unwrap_or_default();
                    after = respond(
                        &service,
                        &head,
                        req_body,
                        peer,
                        &mut out,
                        &mut body,
                        &mut scratch,
                    )
                    .await;
                    // The body's budget is held until the publish is done with it.
                    drop(upload);
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

/// Whether a request may send its body; otherwise the refusal to send before closing.
fn body_allowed(service: &Service, head: &Head<'_>) -> Result<(), Reply> {
    let text = |status, t: String| Reply {
        status,
        content_type: "text/plain",
        body: t.into_bytes(),
    };
    if head.chunked {
        return Err(text(
            "411 Length Required",
            "chunked request bodies are not accepted; send Content-Length\n".into(),
        ));
    }
    if head.method != b"POST" || head.path_and_query().0 != b"/publish" {
        return Err(text(
            "400 Bad Request",
            "bad request: request bodies are only accepted by POST /publish\n".into(),
        ));
    }
    let max = service.config.max_publish_bytes;
    if head.content_length > max as u64 {
        return Err(text(
            "413 Content Too Large",
            format!(
                "request body is {} bytes; this tracker accepts .torrent files up to {max} bytes\n",
                head.content_length
            ),
        ));
    }
    Ok(())
}

/// Checks and receives a request body: refused (`Err(Some)`, answer and close) by
/// [`body_allowed`], the per-IP publish rate or the byte budget; the connection is
/// dropped without an answer (`Err(None)`) when the client fails or misses the deadline.
async fn receive_body<'s>(
    service: &Service,
    uploads: &'s UploadLimits,
    head: &Head<'_>,
    peer: SocketAddr,
    prefix: &[u8],
    stream: &mut TcpStream,
) -> Result<Upload<'s>, Option<Reply>> {
    body_allowed(service, head).map_err(Some)?;
    if !uploads.allow(peer.ip(), Instant::now()) {
        debug!(%peer, "publish rate exceeded");
        return Err(Some(Reply::error(
            "429 Too Many Requests",
            format!(
                "too many publishes from {}: this tracker accepts {} a minute per address; \
                 try again in a minute",
                peer.ip(),
                service.config.publish_per_minute
            ),
        )));
    }
    let busy = || {
        debug!(%peer, "publish budget exhausted");
        Some(Reply::error(
            "503 Service Unavailable",
            "the tracker is receiving too many uploads right now; try again in a minute",
        ))
    };
    let len = usize::try_from(head.content_length).unwrap_or(usize::MAX);
    let mut up = uploads.start(prefix, len).map_err(|_| busy())?;
    let deadline = Duration::from_secs(service.config.publish_body_timeout.into());
    match uploads.finish(&mut up, stream, len, deadline).await {
        Ok(()) => Ok(up),
        Err(UploadError::Busy) => Err(busy()),
        Err(UploadError::Gone) => {
            debug!(%peer, "publish body incomplete; closing");
            Err(None)
        }
    }
}

/// Routes one request and appends its full response to `out`.
async fn respond(
    service: &Arc<Service>,
    head: &Head<'_>,
    req_body: Vec<u8>,
    peer: SocketAddr,
    out: &mut Vec<u8>,
    body: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> After {
    let keep = head.keep_alive;
    let ka10 = keep && head.http10;
    let after = if keep { After::KeepOpen } else { After::Close };
    if answer_tracker(service, head, peer, out, body, scratch) {
        return after;
    }
    let (path, query) = head.path_and_query();
    let reply = match (head.method, path) {
        (b"GET", b"/") => Reply {
            status: "200 OK",
            content_type: "text/html; charset=utf-8",
            body: status::html(service),
        },
        (b"GET", b"/metrics") => Reply {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: crate::metrics::render(service),
        },
        (b"GET", b"/stats") => Reply {
            status: "200 OK",
            content_type: "application/json",
            body: status::json(service),
        },
        (b"GET", b"/search") => catalog_api::search(service, query).await,
        (b"GET", p) if p.starts_with(b"/torrent/") => {
            catalog_api::torrent(service, &p[b"/torrent/".len()..]).await
        }
        (b"POST", b"/publish") => catalog_api::publish(service, query, req_body).await,
        (b"GET", _) => Reply {
            status: "404 Not Found",
            content_type: "text/plain",
            body: b"not found: this tracker serves /announce, /scrape, /, /stats, /search, \
                /torrent/<id> and POST /publish\n"
                .to_vec(),
        },
        _ => Reply {
            status: "405 Method Not Allowed",
            content_type: "text/plain",
            body: b"only GET is supported, and POST on /publish\n".to_vec(),
        },
    };
    write_reply(out, &reply, keep, ka10);
    after
}

/// Answers `GET /announce` and `GET /scrape` (appending the response to `out`) and
/// returns true; false for any other request. Synchronous, so the accept loop can
/// answer a request inline.
pub(crate) fn answer_tracker(
    service: &Service,
    head: &Head<'_>,
    peer: SocketAddr,
    out: &mut Vec<u8>,
    body: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> bool {
    if head.method != b"GET" {
        return false;
    }
    let (path, query) = head.path_and_query();
    body.clear();
    match path {
        b"/announce" => service.http_announce(query, peer.ip(), body, scratch),
        b"/scrape" => service.http_scrape(query, body),
        _ => return false,
    }
    let keep = head.keep_alive;
    write_response(out, "200 OK", "text/plain", body, keep, keep && head.http10);
    true
}

fn write_reply(out: &mut Vec<u8>, r: &Reply, keep_alive: bool, explicit_keep_alive: bool) {
    write_response(
        out,
        r.status,
        r.content_type,
        &r.body,
        keep_alive,
        explicit_keep_alive,
    );
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
