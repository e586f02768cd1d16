//! The node's JSON API over HTTP (axum), as specified in `docs/API.md`, plus the web
//! UI from [`crate::web`] at `/`.
//!
//! Errors are `{"error": "..."}` with 400 (malformed input), 401 (no login, see
//! [`auth`]), 403 (refused by [`guard`]: a foreign `Host` or a cross-site `Origin`), 404
//! (unknown torrent, file or job), 409 (conflict, with `"id"`), 413 (upload too large),
//! 415 (wrong `Content-Type`), 429 (too many failed logins) or 500.

pub mod auth;
mod automation;
mod events;
mod files;
pub mod guard;
mod info;
mod labels;
mod metrics;
mod order;
pub mod qbt;
mod roots;
pub mod stream;
mod torrents;
mod transmission;
mod upload;

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;
use shoal_proto::InfoHash;

use crate::node::{Node, ResolveError};

/// Largest body of requests other than `POST /api/upload` (a `.torrent`).
const MAX_BODY: usize = 32 << 20;

/// The whole HTTP application: `/api/...` and the web UI, for a server listening on
/// `bound` (which the user chose when `node.config().web` is set), behind the Host and
/// Origin [`guard`] and the login layer ([`auth`]).
pub fn app(node: Node, bound: SocketAddr, web: &WebLayers) -> Router {
    let access = guard::Access::new(bound, node.config().web.is_some(), &web.hosts, web.tls);
    // Its own nest, so the native API's fallback never sees `/api/v2/...`.
    let qbt = qbt::router(node.clone());
    let trpc = transmission::router(node.clone());
    let metrics = Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state(node.clone());
    let api = Router::new()
        .route("/node", get(info::node))
        .route("/stats", get(info::stats))
        .route("/torrents", get(torrents::list).post(torrents::add))
        .route("/share", post(files::share))
        .route("/jobs", get(files::jobs))
        .route("/jobs/:job_id", get(files::job))
        .route(
            "/torrents/:id",
            get(torrents::detail).delete(torrents::remove),
        )
        .route("/torrents/:id/pause", post(torrents::pause))
        .route("/torrents/:id/resume", post(torrents::resume))
        .route("/torrents/:id/recheck", post(torrents::recheck))
        .route("/torrents/:id/torrent", get(torrents::export))
        .route("/torrents/:id/files", get(torrents::files))
        .route("/torrents/:id/files/:index", put(torrents::set_file))
        .route("/torrents/:id/peers", get(torrents::peers))
        .route("/torrents/:id/pieces", get(torrents::pieces))
        .route("/torrents/:id/trackers", get(torrents::trackers))
        .route("/history", get(info::history))
        .route("/log", get(info::log))
        .route("/settings", get(info::settings).patch(info::patch_settings))
        .route("/search", get(info::search))
        .route("/get", post(info::get))
        .route("/fs", get(files::fs))
        // Streamed to disk with its own limit (`max_upload`).
        .route(
            "/upload",
            post(upload::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/events", get(events::events))
        .route(
            "/categories",
            get(labels::categories).post(labels::create_category),
        )
        .route("/categories/:name", delete(labels::remove_category))
        .route("/tags", get(labels::tags))
        .route("/torrents/:id/labels", put(labels::set_labels))
        .route("/torrents/:id/limits", put(automation::set_limits))
        .route("/torrents/:id/queue", post(automation::queue))
        .route("/torrents/:id/force_start", post(automation::force_start))
        .route("/torrents/:id/order", put(order::set_order))
        .route("/torrents/:id/reannounce", post(torrents::reannounce))
        .route("/torrents/:id/files/:index/stream", get(stream::stream))
        .route(
            "/torrents/:id/files/:index/stream-token",
            post(stream::stream_token),
        )
        .fallback(|| async { ApiError::not_found("no such API endpoint; see docs/API.md") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(node.clone());
    let routes = Router::new()
        .nest("/api/v2", qbt)
        .nest("/api", api)
        .merge(trpc)
        .merge(metrics)
        .merge(crate::web::router());
    // Layered last, so they cover every route merged above and requests no route
    // matches; the guard runs first (a foreign Host gets no login attempt).
    routes
        .layer(axum::middleware::from_fn_with_state(
            web.auth.clone(),
            auth::layer,
        ))
        // Before the login layer, so it sees a stream token's mark (a client cannot set
        // the mark itself: this layer removes any it did not make).
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            stream::mark_token,
        ))
        .layer(axum::middleware::from_fn_with_state(access, guard::guard))
}

/// What the layers around the whole app need besides the node.
#[derive(Clone)]
pub struct WebLayers {
    /// The login layer.
    pub auth: auth::Auth,
    /// `--web-host` names.
    pub hosts: Vec<String>,
    /// Served over HTTPS.
    pub tls: bool,
}

/// An API error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            id: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>, id: String) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            message: message.into(),
            id: Some(id),
        }
    }

    pub fn internal(e: anyhow::Error) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> ApiError {
        match e {
            ResolveError::Unknown(_) => ApiError::not_found(e.to_string()),
            _ => ApiError::bad_request(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.id {
            Some(id) => json!({"error": self.message, "id": id}),
            None => json!({"error": self.message}),
        };
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON body; 415 without `Content-Type: application/json`, 400 when malformed.
pub fn body<T: DeserializeOwned>(b: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    b.map(|Json(v)| v).map_err(|e| match e {
        JsonRejection::MissingJsonContentType(_) => not_json(),
        e => ApiError::bad_request(format!("malformed JSON body: {}", e.body_text())),
    })
}

fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "send the body as JSON with Content-Type: application/json",
    )
}

/// The media type of the request body (`Content-Type` without parameters), lower case.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether the body is raw bytes (`.torrent` or a file).
pub fn is_raw(media_type: &str) -> bool {
    media_type == "application/x-bittorrent" || media_type == "application/octet-stream"
}

/// 415 unless the body is declared as raw bytes.
pub fn require_raw(headers: &HeaderMap) -> ApiResult<()> {
    if is_raw(&media_type(headers)) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the raw bytes with Content-Type: application/octet-stream \
             (or application/x-bittorrent for a .torrent)",
        ))
    }
}

/// 415 unless the body is declared as JSON.
pub fn require_json(headers: &HeaderMap) -> ApiResult<()> {
    let t = media_type(headers);
    if t == "application/json" || (t.starts_with("application/") && t.ends_with("+json")) {
        Ok(())
    } else {
        Err(not_json())
    }
}

/// The torrent an `:id` names.
pub fn resolve(node: &Node, id: &str) -> ApiResult<InfoHash> {
    Ok(node.resolve(id)?)
}
