//! `POST /api/upload?name=FILE`: the body is streamed to a temp file in the download
//! dir (bounded memory, at most `max_upload` bytes), flushed to disk, then linked to
//! its name (never replacing an existing file) and shared.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::{require_raw, ApiError, ApiResult};
use crate::node::Node;

/// Makes temp names unique within the process (the pid separates processes).
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

#[derive(Deserialize)]
pub struct UploadQuery {
    name: String,
}

/// A temp file removed when dropped (also when the request is cancelled mid-way), by a
/// task the node owns so that shutdown waits for the removal.
struct TempFile(PathBuf, Node);

impl Drop for TempFile {
    fn drop(&mut self) {
        let path = std::mem::take(&mut self.0);
        if tokio::runtime::Handle::try_current().is_ok() {
            self.1.spawn(async move {
                let _ = tokio::fs::remove_file(&path).await;
            });
        }
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the file is larger than this node's upload limit of {max} bytes; share it \
             from where it is (POST /api/share) or raise max_upload in config.toml"
        ),
    )
}

fn exists(path: &std::path::Path) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        format!("{} already exists; choose another name", path.display()),
    )
}

pub async fn upload(
    State(node): State<Node>,
    q: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    data: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Query(q) =
        q.map_err(|e| ApiError::bad_request(format!("give ?name=FILE: {}", e.body_text())))?;
    let name = q.name.trim();
    if name.is_empty() || name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
        return Err(ApiError::bad_request(
            "name must be a plain file name without slashes",
        ));
    }
    require_raw(&headers)?;
    let max = node.config().max_upload;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let dir = node.settings().download_dir;
    let path = dir.join(name);
    if tokio::fs::symlink_metadata(&path).await.is_ok() {
        return Err(exists(&path));
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("cannot create {}: {e}", dir.display())))?;
    let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
    let temp = TempFile(
        dir.join(format!(".{name}.{}-{n}.upload", std::process::id())),
        node.clone(),
    );
    receive(data, &temp.0, max).await?;
    match tokio::fs::hard_link(&temp.0, &path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(&path)),
        // No hard links on this file system: rename, having checked again.
        Err(_) => {
            if tokio::fs::symlink_metadata(&path).await.is_ok() {
                return Err(exists(&path));
            }
            tokio::fs::rename(&temp.0, &path).await.map_err(|e| {
                ApiError::internal(anyhow::anyhow!("cannot write {}: {e}", path.display()))
            })?;
        }
    }
    drop(temp);
    let id = node.share(path);
    Ok((StatusCode::ACCEPTED, Json(json!({"job_id": id}))))
}

/// Writes the body to `temp`, at most `max` bytes, and flushes it to disk.
async fn receive(data: Body, temp: &std::path::Path, max: u64) -> ApiResult<()> {
    let write_err = |e: std::io::Error| {
        ApiError::internal(anyhow::anyhow!("cannot write {}: {e}", temp.display()))
    };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)
        .await
        .map_err(write_err)?;
    let mut stream = data.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("the upload broke off: {e}")))?;
        total = total.saturating_add(chunk.len() as u64);
        if total > max {
            return Err(too_large(max));
        }
        file.write_all(&chunk).await.map_err(write_err)?;
    }
    file.flush().await.map_err(write_err)?;
    file.sync_data().await.map_err(write_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_streamed_body_is_capped_and_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = || {
            let parts: Vec<Result<Vec<u8>, std::io::Error>> =
                (0..10).map(|i| Ok(vec![i as u8; 1000])).collect();
            Body::from_stream(futures_util::stream::iter(parts))
        };
        let ok = dir.path().join("ok");
        receive(chunks(), &ok, 10_000).await.unwrap();
        let data = std::fs::read(&ok).unwrap();
        assert_eq!(data.len(), 10_000);
        assert_eq!(data[9_999], 9);
        let big = dir.path().join("big");
        let e = receive(chunks(), &big, 9_999).await.unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        // An existing temp name is never overwritten.
        assert!(receive(chunks(), &ok, 10_000).await.is_err());
    }
}
