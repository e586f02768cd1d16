//! Sharing: `/api/share`, `/api/jobs` and `/api/fs` (browsing the share roots).

use std::path::{Path as FsPath, PathBuf};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{body, roots, ApiError, ApiResult};
use crate::node::{Node, ShareJob};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    path: PathBuf,
}

pub async fn share(
    State(node): State<Node>,
    b: Result<Json<ShareBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let b = body(b)?;
    let path = roots::existing_within(&node, b.path).await?;
    let id = node.share(path);
    Ok((StatusCode::ACCEPTED, Json(json!({"job_id": id}))))
}

pub async fn jobs(State(node): State<Node>) -> Json<Vec<ShareJob>> {
    Json(node.jobs())
}

pub async fn job(State(node): State<Node>, Path(id): Path<String>) -> ApiResult<Json<ShareJob>> {
    node.jobs()
        .into_iter()
        .find(|j| j.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no job {id:?}; list them with GET /api/jobs")))
}

#[derive(Deserialize)]
pub struct FsQuery {
    path: Option<PathBuf>,
}

#[derive(Serialize)]
struct FsEntry {
    name: String,
    dir: bool,
    size: u64,
}

pub async fn fs(
    State(node): State<Node>,
    q: Result<Query<FsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let roots = roots::roots(&node).await;
    let path = match q.path {
        Some(p) => p,
        None => roots
            .first()
            .cloned()
            .ok_or_else(|| ApiError::not_found("no share roots exist"))?,
    };
    let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    let mut listing = tokio::task::spawn_blocking(move || list_dir(&path, &roots))
        .await
        .map_err(|e| ApiError::internal(e.into()))??;
    if let Some(o) = listing.as_object_mut() {
        o.insert("roots".into(), json!(shown));
    }
    Ok(Json(listing))
}

fn list_dir(path: &FsPath, roots: &[PathBuf]) -> ApiResult<Value> {
    let canon = path
        .canonicalize()
        .map_err(|e| ApiError::not_found(format!("{}: {e}", path.display())))?;
    let Some(root) = roots::inside(&canon, roots) else {
        return Err(roots::outside(path, roots));
    };
    let parent = (canon != *root)
        .then(|| canon.parent().map(|p| p.display().to_string()))
        .flatten();
    let mut entries = Vec::new();
    let rd = std::fs::read_dir(&canon)
        .map_err(|e| ApiError::bad_request(format!("cannot list {}: {e}", canon.display())))?;
    for ent in rd.flatten() {
        let Ok(md) = ent.metadata() else { continue };
        entries.push(FsEntry {
            name: ent.file_name().to_string_lossy().into_owned(),
            dir: md.is_dir(),
            size: if md.is_dir() { 0 } else { md.len() },
        });
    }
    entries.sort_by(|a, b| (!a.dir, &a.name).cmp(&(!b.dir, &b.name)));
    Ok(json!({"path": canon.display().to_string(), "parent": parent, "entries": entries}))
}
