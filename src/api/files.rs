//! Sharing: `/api/share`, `/api/jobs`, `/api/fs` (browsing the share roots) and
//! `/api/upload`.

use std::path::{Path as FsPath, PathBuf};

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{body, ApiError, ApiResult};
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
    if !b.path.is_absolute() {
        return Err(ApiError::bad_request(format!(
            "{} is not an absolute path",
            b.path.display()
        )));
    }
    if tokio::fs::metadata(&b.path).await.is_err() {
        return Err(ApiError::bad_request(format!(
            "{} does not exist; give a file or folder on the node's machine",
            b.path.display()
        )));
    }
    let id = node.share(b.path);
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

/// The allowed roots: the configured share roots and the download dir, canonical,
/// without duplicates, in that order (those that do not exist are left out).
fn roots(node: &Node) -> Vec<PathBuf> {
    let mut r: Vec<PathBuf> = node.config().share_roots.clone();
    r.push(node.settings().download_dir);
    let mut out: Vec<PathBuf> = Vec::new();
    for p in r.into_iter().filter_map(|p| p.canonicalize().ok()) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

pub async fn fs(
    State(node): State<Node>,
    q: Result<Query<FsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let roots = roots(&node);
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
    let Some(root) = roots.iter().find(|r| canon.starts_with(r)) else {
        return Err(ApiError::bad_request(format!(
            "{} is outside the share roots ({}); add it to share_roots in config.toml",
            path.display(),
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
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

#[derive(Deserialize)]
pub struct UploadQuery {
    name: String,
}

pub async fn upload(
    State(node): State<Node>,
    q: Result<Query<UploadQuery>, QueryRejection>,
    data: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Query(q) =
        q.map_err(|e| ApiError::bad_request(format!("give ?name=FILE: {}", e.body_text())))?;
    let name = q.name.trim();
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(ApiError::bad_request(
            "name must be a plain file name without slashes",
        ));
    }
    let dir = node.settings().download_dir;
    let path = dir.join(name);
    if tokio::fs::metadata(&path).await.is_ok() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{} already exists; choose another name", path.display()),
        ));
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    tokio::fs::write(&path, &data)
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("cannot write {}: {e}", path.display())))?;
    let id = node.share(path);
    Ok((StatusCode::ACCEPTED, Json(json!({"job_id": id}))))
}
