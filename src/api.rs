//! The node's JSON API over HTTP (axum), as specified in `docs/API.md`, plus the web
//! UI from [`crate::web`] at `/`.
//!
//! Errors are `{"error": "..."}` with 400 (malformed input), 404 (unknown torrent,
//! file or job), 409 (conflict, with `"id"`) or 500.

mod events;
mod files;
mod info;
mod torrents;

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;
use shoal_proto::InfoHash;

use crate::node::{Node, ResolveError};

/// Largest body of `POST /api/upload`.
const MAX_UPLOAD: usize = 4 << 30;
/// Largest body of other requests (a `.torrent`).
const MAX_BODY: usize = 32 << 20;

/// The whole HTTP application: `/api/...` and the web UI.
pub fn app(node: Node) -> Router {
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
        .route(
            "/upload",
            post(files::upload).layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/events", get(events::events))
        .fallback(|| async { ApiError::not_found("no such API endpoint; see docs/API.md") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(node);
    Router::new().nest("/api", api).merge(crate::web::router())
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

/// A JSON body, or 400 with what was wrong.
pub fn body<T: DeserializeOwned>(b: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    b.map(|Json(v)| v)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {}", e.body_text())))
}

/// The torrent an `:id` names.
pub fn resolve(node: &Node, id: &str) -> ApiResult<InfoHash> {
    Ok(node.resolve(id)?)
}
