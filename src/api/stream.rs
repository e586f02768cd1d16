//! `GET|HEAD /api/torrents/:id/files/:index/stream`: one file over HTTP with
//! `Range`, playable while it downloads; `POST .../stream-token`: a URL with a
//! short-lived token for media players that cannot log in.
//!
//! Answers: `200` (no or unusable `Range`), `206` with `Content-Range` (the first
//! range only when several are asked), `416` with `Content-Range: bytes */LEN`;
//! always `Accept-Ranges: bytes`, `Content-Length` and a `Content-Type` from the
//! file's extension. The body (`stream/body.rs`) sends verified bytes only, waiting
//! for pieces as they verify, with a deadline window in the picker.
//!
//! Tokens: [`mark_token`] runs before any access check and marks a request whose
//! `?token=` is valid for its torrent and file with the [`StreamTokenAccess`]
//! extension, so a login layer can let it through; an invalid token is refused
//! with `403` by the handler.

mod body;
mod range;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use shoal_proto::InfoHash;

use super::{resolve, ApiError, ApiResult};
use crate::node::tokens::TOKEN_TTL;
use crate::node::Node;
use body::{Source, Span};
use range::{content_type, parse_range, RangeRequest};

/// Marks a request whose `?token=` opens the stream it asks for (see the module
/// docs). Set only by [`mark_token`]; a client cannot send it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamTokenAccess;

/// Middleware: adds [`StreamTokenAccess`] to stream requests with a valid token.
pub async fn mark_token(State(node): State<Node>, mut req: Request, next: Next) -> Response {
    req.extensions_mut().remove::<StreamTokenAccess>();
    if token_grants(&node, req.uri()) {
        req.extensions_mut().insert(StreamTokenAccess);
    }
    next.run(req).await
}

/// True if `uri` is a stream URL (`.../torrents/ID/files/N/stream`) whose `token`
/// query parameter is valid for that torrent and file.
pub fn token_grants(node: &Node, uri: &Uri) -> bool {
    let Some((hash, index)) = stream_target(node, uri.path()) else {
        return false;
    };
    query_token(uri.query()).is_some_and(|t| node.stream_tokens().check(t, hash, index))
}

/// The torrent and file a stream path names.
fn stream_target(node: &Node, path: &str) -> Option<(InfoHash, usize)> {
    let segs: Vec<&str> = path.trim_end_matches('/').rsplit('/').take(5).collect();
    match segs.as_slice() {
        ["stream", index, "files", id, "torrents"] => {
            Some((node.resolve(id).ok()?, index.parse().ok()?))
        }
        _ => None,
    }
}

/// The value of `token=` in a query string.
fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

/// What the handler needs of the torrent and file.
struct Target {
    source: Source,
    file_offset: u64,
    file_len: u64,
    piece_len: u64,
    name: String,
}

fn target(node: &Node, hash: InfoHash, index: usize) -> ApiResult<Target> {
    let map = node.torrents();
    let e = map.get(&hash).ok_or_else(|| {
        ApiError::conflict(
            "the torrent's metadata is not known yet (state `metadata`); try again once it is",
            hash.to_hex(),
        )
    })?;
    let info = &e.meta.info;
    let f = info
        .files
        .get(index)
        .ok_or_else(|| ApiError::not_found(format!("torrent {hash} has no file {index}")))?;
    let pl = info.piece_length.max(1);
    let pieces = if f.length == 0 {
        0..0
    } else {
        (f.offset / pl) as u32..((f.offset + f.length - 1) / pl) as u32 + 1
    };
    let complete = pieces.clone().all(|p| e.have.get(p));
    let source = match &e.run {
        Some(r) => {
            let wanted = e.wanted.get(index).copied().unwrap_or(true);
            if !wanted && !pieces.clone().all(|p| r.handle.has_piece(p)) {
                return Err(ApiError::conflict(
                    format!(
                        "file {index} is skipped; select it (PUT .../files/{index}) to stream it"
                    ),
                    hash.to_hex(),
                ));
            }
            Source::Running(r.handle.clone())
        }
        None if complete => {
            let mut p = e.save_dir.join(&info.name);
            if !info.single_file {
                p.extend(&f.path);
            }
            Source::File(p)
        }
        None => {
            return Err(ApiError::conflict(
                "the torrent is not running and the file is incomplete; resume it to stream",
                hash.to_hex(),
            ))
        }
    };
    Ok(Target {
        source,
        file_offset: f.offset,
        file_len: f.length,
        piece_len: pl,
        name: f.path.last().cloned().unwrap_or_else(|| info.name.clone()),
    })
}

fn parse_index(index: &str) -> ApiResult<usize> {
    index
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{index:?} is not a file index")))
}

/// `GET` (and `HEAD`) `/api/torrents/:id/files/:index/stream`.
pub async fn stream(
    State(node): State<Node>,
    Path((id, index)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let hash = resolve(&node, &id)?;
    let index = parse_index(&index)?;
    if let Some(t) = query_token(uri.query()) {
        if !node.stream_tokens().check(t, hash, index) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "the stream token is invalid or expired; ask for a new one with POST .../stream-token",
            ));
        }
    }
    let t = target(&node, hash, index)?;
    let len = t.file_len;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match parse_range(range, len) {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        RangeRequest::Unsatisfiable => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [
                    (header::CONTENT_RANGE, format!("bytes */{len}")),
                    (header::ACCEPT_RANGES, "bytes".to_string()),
                ],
            )
                .into_response())
        }
    };
    let mut resp = Response::new(body::body(
        t.source,
        Span {
            file_offset: t.file_offset,
            file_len: len,
            start,
            end,
            piece_len: t.piece_len,
        },
    ));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&t.name)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        let cr = format!("bytes {start}-{}/{len}", end - 1);
        if let Ok(v) = HeaderValue::from_str(&cr) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

/// `POST /api/torrents/:id/files/:index/stream-token`: a token and the absolute
/// stream URL carrying it.
pub async fn stream_token(
    State(node): State<Node>,
    Path((id, index)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let hash = resolve(&node, &id)?;
    let index = parse_index(&index)?;
    target(&node, hash, index)?;
    let token = node.stream_tokens().issue(hash, index);
    // The address the caller reached us at, so the link works from where it is used.
    let base = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|h| format!("http://{h}/"))
        .unwrap_or_else(|| node.web_url());
    let url = format!(
        "{}api/torrents/{}/files/{index}/stream?token={token}",
        base,
        hash.to_hex()
    );
    Ok(Json(json!({
        "token": token,
        "url": url,
        "expires_in": TOKEN_TTL.as_secs(),
    })))
}
