//! Catalog endpoints: `POST /publish`, `GET /torrent/<hex>`, `GET /search`.
//!
//! Database work runs on the blocking pool; answers are JSON (`shoal_proto::catalog`
//! types) except the `.torrent` itself. Client mistakes get 4xx with an
//! [`ErrorReply`] saying what to fix; storage failures get 500 and are logged.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use shoal_proto::catalog::{ErrorReply, SearchQuery, DEFAULT_PER_PAGE};
use shoal_proto::{InfoHash, PeerId};
use tracing::warn;

use crate::catalog::PublishError;
use crate::service::Service;

/// A complete answer to one catalog request.
pub(crate) struct Reply {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: &'static str, value: &impl Serialize) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            // Our reply types always serialize.
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    pub fn error(status: &'static str, text: impl Into<String>) -> Reply {
        Reply::json(status, &ErrorReply { error: text.into() })
    }
}

fn internal(e: impl std::fmt::Display) -> Reply {
    warn!(error = %e, "catalog request failed");
    Reply::error(
        "500 Internal Server Error",
        format!("the tracker's catalog failed: {e}"),
    )
}

/// Decoded query pairs.
type Params = Vec<(Vec<u8>, Vec<u8>)>;

fn params(query: &[u8]) -> Result<Params, Reply> {
    shoal_proto::urlenc::parse_query(query).ok_or_else(|| {
        Reply::error(
            "400 Bad Request",
            "malformed percent-encoding in the query string",
        )
    })
}

/// `POST /publish?peer_id=...` with the `.torrent` as body.
pub(crate) async fn publish(service: &Arc<Service>, query: &[u8], body: Vec<u8>) -> Reply {
    if body.is_empty() {
        return Reply::error(
            "400 Bad Request",
            "empty body: POST the .torrent file's bytes to /publish",
        );
    }
    let mut publisher = None;
    let pairs = match params(query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    for (k, v) in pairs {
        if k == b"peer_id" {
            match <[u8; 20]>::try_from(v.as_slice()) {
                Ok(id) => publisher = Some(PeerId(id)),
                Err(_) => {
                    return Reply::error(
                        "400 Bad Request",
                        format!(
                        "peer_id must be 20 bytes, got {}; send the raw 20 bytes percent-encoded",
                        v.len()
                    ),
                    )
                }
            }
        }
    }
    let catalog = service.catalog.clone();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let job = tokio::task::spawn_blocking(move || catalog.publish(&body, publisher, now));
    match job.await {
        Ok(Ok(reply)) => Reply::json("200 OK", &reply),
        Ok(Err(PublishError::Invalid(e))) => Reply::error(
            "400 Bad Request",
            format!("not a valid .torrent: {e}; POST the raw bytes of a .torrent file"),
        ),
        Ok(Err(PublishError::Store(e))) => internal(e),
        Err(e) => internal(e),
    }
}

/// `GET /torrent/<40 hex>`.
pub(crate) async fn torrent(service: &Arc<Service>, rest: &[u8]) -> Reply {
    let hex = std::str::from_utf8(rest).unwrap_or_default();
    let hex = hex.strip_suffix(".torrent").unwrap_or(hex);
    let Some(hash) = InfoHash::from_hex(hex) else {
        return Reply::error(
            "400 Bad Request",
            "expected /torrent/<info-hash as 40 hex digits>",
        );
    };
    let catalog = service.catalog.clone();
    match tokio::task::spawn_blocking(move || catalog.torrent(&hash)).await {
        Ok(Ok(Some(bytes))) => Reply {
            status: "200 OK",
            content_type: "application/x-bittorrent",
            body: bytes,
        },
        Ok(Ok(None)) => Reply::error(
            "404 Not Found",
            format!("no torrent {} in this tracker's catalog", hash.to_hex()),
        ),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// `GET /search?q=...&page=N&per_page=M`.
pub(crate) async fn search(service: &Arc<Service>, query: &[u8]) -> Reply {
    let pairs = match params(query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (mut q, mut page, mut per_page) = (None, 1u32, DEFAULT_PER_PAGE);
    for (k, v) in pairs {
        let number = || {
            std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
        };
        match k.as_slice() {
            b"q" => q = Some(String::from_utf8_lossy(&v).into_owned()),
            b"page" => match number() {
                Some(n) => page = n,
                None => return Reply::error("400 Bad Request", "page must be a number from 1"),
            },
            b"per_page" => match number() {
                Some(n) => per_page = n,
                None => return Reply::error("400 Bad Request", "per_page must be a number from 1"),
            },
            _ => {}
        }
    }
    let Some(q) = q else {
        return Reply::error("400 Bad Request", "missing q parameter: /search?q=words");
    };
    let query = SearchQuery::parse(&q);
    let svc = service.clone();
    let job = tokio::task::spawn_blocking(move || {
        svc.catalog
            .search(&query, page, per_page, |h| svc.registry.stats(h))
    });
    match job.await {
        Ok(Ok(results)) => Reply::json("200 OK", &results),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}
