//! `/api/torrents/:id/limits`, `/api/torrents/:id/queue`,
//! `/api/torrents/:id/force_start`: a torrent's own seeding limits, its place in the
//! queue and force start (see `crate::node::queue`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::{body, resolve, ApiError, ApiResult};
use crate::node::queue::{LimitsPatch, QueueError, QueueMove};
use crate::node::{Node, Summary};

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> ApiError {
        let status = match e {
            QueueError::Disabled => StatusCode::CONFLICT,
            QueueError::Unknown => StatusCode::NOT_FOUND,
            QueueError::Invalid(_) => StatusCode::BAD_REQUEST,
            QueueError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

fn summary(node: &Node, id: &str) -> ApiResult<Json<Summary>> {
    let hash = resolve(node, id)?;
    node.summary(hash)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("torrent {hash} was removed")))
}

/// `PUT /api/torrents/:id/limits` `{"ratio_limit", "seed_time_limit",
/// "seed_idle_limit"}` (each optional; -2 global, -1 none) and `{"max_down",
/// "max_up"}` (the torrent's own speed limits, bytes/s, 0 none).
pub async fn set_limits(
    State(node): State<Node>,
    Path(id): Path<String>,
    b: Result<Json<LimitsPatch>, JsonRejection>,
) -> ApiResult<Json<Summary>> {
    let hash = resolve(&node, &id)?;
    let p = body(b)?;
    let (down, up) = (p.max_down, p.max_up);
    node.set_seed_limits(hash, p).await?;
    if down.is_some() || up.is_some() {
        node.set_speed_limits(hash, up, down).await?;
    }
    summary(&node, &id)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    #[serde(rename = "move")]
    to: QueueMove,
}

/// `POST /api/torrents/:id/queue` `{"move": "top"|"bottom"|"up"|"down"}`; 409 when
/// queueing is off.
pub async fn queue(
    State(node): State<Node>,
    Path(id): Path<String>,
    b: Result<Json<MoveBody>, JsonRejection>,
) -> ApiResult<Json<Summary>> {
    let hash = resolve(&node, &id)?;
    let b = body(b)?;
    node.queue_move(hash, b.to).await?;
    summary(&node, &id)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForceBody {
    force: bool,
}

/// `POST /api/torrents/:id/force_start` `{"force": true|false}`.
pub async fn force_start(
    State(node): State<Node>,
    Path(id): Path<String>,
    b: Result<Json<ForceBody>, JsonRejection>,
) -> ApiResult<Json<Summary>> {
    let hash = resolve(&node, &id)?;
    node.set_force_start(hash, body(b)?.force).await?;
    summary(&node, &id)
}
