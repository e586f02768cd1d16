//! `PUT /api/torrents/:id/order`: a torrent's download order (sequential, first and
//! last pieces first).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;

use super::{body, resolve, ApiError, ApiResult};
use crate::node::{Node, Summary};

/// The fields to change; absent ones keep their value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderChange {
    sequential: Option<bool>,
    first_last_piece: Option<bool>,
}

pub async fn set_order(
    State(node): State<Node>,
    Path(id): Path<String>,
    b: Result<Json<OrderChange>, JsonRejection>,
) -> ApiResult<Json<Summary>> {
    let hash = resolve(&node, &id)?;
    let change = body(b)?;
    apply(&node, hash, change.sequential, change.first_last_piece).await?;
    node.summary(hash)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("torrent {hash} was removed")))
}

/// Sets the order of a torrent just added or changed; `409` for a magnet still
/// waiting for its metadata.
pub async fn apply(
    node: &Node,
    hash: shoal_proto::InfoHash,
    sequential: Option<bool>,
    first_last_piece: Option<bool>,
) -> ApiResult<()> {
    match node.set_order(hash, sequential, first_last_piece).await? {
        Some(_) => Ok(()),
        None if node.summary(hash).is_some() => Err(ApiError::conflict(
            "the torrent's metadata is not known yet (state `metadata`); set its order once it is",
            hash.to_hex(),
        )),
        None => Err(ApiError::not_found(format!("torrent {hash} was removed"))),
    }
}
