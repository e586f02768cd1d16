//! Changing torrents: `torrents/add`, `stop`/`start` (and their pre-5.0 names
//! `pause`/`resume`), `delete`, `recheck`, `filePrio`.
//!
//! `torrents/add` takes `urls` (magnet links or bare info-hashes, one a line) and
//! `.torrent` files (multipart `torrents`), with `savepath`, `category` (created when
//! missing, as qBittorrent does), `tags`, `stopped`/`paused`, and, applied in
//! [`after_add`] once the torrent is in, `sequentialDownload`, `firstLastPiecePrio`,
//! `ratioLimit`, `seedingTimeLimit`, `inactiveSeedingTimeLimit` and `forced`. The node
//! keeps no download order or limits for a magnet before its metadata arrives, so for a
//! magnet those are skipped (logged); set them once it has its metadata
//! (`toggleSequentialDownload`, `setShareLimits`).

use std::collections::HashMap;
use std::path::PathBuf;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use shoal_proto::InfoHash;

use super::{text, Params, Qbt, QbtError, QbtResult};
use crate::node::{AddError, AddRequest, Node};
use crate::store::torrents::Priority;

/// The body of `torrents/add`: its parameters and `.torrent` files.
struct AddBody {
    params: Params,
    files: Vec<(String, Vec<u8>)>,
}

async fn add_body(q: &Qbt, req: Request) -> QbtResult<AddBody> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let params = Params::from_request(req, q).await?;
        return Ok(AddBody {
            params,
            files: Vec::new(),
        });
    }
    let mut m = Multipart::from_request(req, q)
        .await
        .map_err(|e| QbtError::bad(e.body_text()))?;
    let mut params = HashMap::new();
    let mut files = Vec::new();
    while let Some(field) = m
        .next_field()
        .await
        .map_err(|e| QbtError::bad(e.body_text()))?
    {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let data = field
            .bytes()
            .await
            .map_err(|e| QbtError::bad(e.body_text()))?;
        if name == "torrents" || file_name.is_some() {
            files.push((file_name.unwrap_or(name), data.to_vec()));
        } else {
            params.insert(name, String::from_utf8_lossy(&data).into_owned());
        }
    }
    Ok(AddBody {
        params: Params(params),
        files,
    })
}

/// Where a new torrent goes: `savepath`, else its category's path (relative ones under
/// the download dir), else the download dir; always inside the allowed roots.
async fn save_dir(node: &Node, p: &Params) -> QbtResult<Option<PathBuf>> {
    let explicit = p.get("savepath").map(str::trim).filter(|s| !s.is_empty());
    let from_category = p
        .get("category")
        .and_then(|c| node.labels().categories.get(c).cloned())
        .filter(|s| !s.is_empty());
    let Some(dir) = explicit.map(str::to_string).or(from_category) else {
        return Ok(None);
    };
    let dir = PathBuf::from(dir);
    let dir = if dir.is_relative() {
        node.settings().download_dir.join(dir)
    } else {
        dir
    };
    super::super::roots::save_dir_within(node, dir)
        .await
        .map(Some)
        .map_err(|_| QbtError::bad("savepath is outside the folders this node may save to"))
}

/// Whether a `urls` line is a bare info-hash (hex or base32), which qBittorrent takes
/// as a magnet link.
fn magnet_of(line: &str) -> String {
    let l = line.trim();
    let bare = (l.len() == 40 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        || (l.len() == 32 && l.bytes().all(|b| b.is_ascii_alphanumeric()));
    if bare {
        format!("magnet:?xt=urn:btih:{l}")
    } else {
        l.to_string()
    }
}

pub async fn add(State(q): State<Qbt>, req: Request) -> QbtResult<Response> {
    let body = add_body(&q, req).await?;
    let p = &body.params;
    let node = &q.node;
    let paused = p.flag("stopped").or(p.flag("paused")).unwrap_or(false);
    let dir = save_dir(node, p).await?;
    // A malformed limit is refused before anything is added.
    super::control::limits_patch(p, false)?;
    let mut added = Vec::new();
    let mut failed = 0;
    for (name, bytes) in body.files {
        let r = node
            .add(AddRequest {
                torrent: bytes,
                save_dir: dir.clone(),
                paused,
                complete: false,
                peers: Vec::new(),
                wanted: None,
            })
            .await;
        match r {
            Ok(h) => added.push(h),
            Err(AddError::Invalid(_)) => {
                return Err(QbtError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("Error: '{name}' is not a valid torrent file."),
                ))
            }
            Err(e) => {
                tracing::info!("qBittorrent API: cannot add {name}: {e}");
                failed += 1;
            }
        }
    }
    for line in p.get("urls").unwrap_or("").lines() {
        if line.trim().is_empty() {
            continue;
        }
        match node.add_magnet(&magnet_of(line), dir.clone(), paused).await {
            Ok(h) => added.push(h),
            Err(e) => {
                tracing::info!("qBittorrent API: cannot add {line}: {e}");
                failed += 1;
            }
        }
    }
    for h in &added {
        after_add(node, *h, p).await?;
    }
    if added.is_empty() && failed > 0 {
        return Ok(text("Fails."));
    }
    if added.is_empty() {
        return Err(QbtError::bad("give urls or torrents"));
    }
    Ok(text("Ok."))
}

/// Applies the per-torrent options of `torrents/add` to a torrent just added.
async fn after_add(node: &Node, hash: InfoHash, p: &Params) -> QbtResult<()> {
    if let Some(c) = p.get("category").filter(|c| !c.is_empty()) {
        if !node.labels().categories.contains_key(c) {
            node.put_category(c, "", false)
                .await
                .map_err(|e| QbtError::conflict(e.to_string()))?;
        }
        node.set_category(&[hash], Some(c))
            .await
            .map_err(|e| QbtError::conflict(e.to_string()))?;
    }
    let tags = super::labels::tag_list(p.get("tags"));
    if !tags.is_empty() {
        node.add_tags(&[hash], &tags)
            .await
            .map_err(|e| QbtError::bad(e.to_string()))?;
    }
    after_add_rules(node, hash, p).await
}

/// The download order, share limits and force start of `torrents/add`.
async fn after_add_rules(node: &Node, hash: InfoHash, p: &Params) -> QbtResult<()> {
    let magnet = node.magnets().contains_key(&hash);
    let seq = p.flag("sequentialDownload").filter(|on| *on);
    let first_last = p.flag("firstLastPiecePrio").filter(|on| *on);
    let limits = super::control::limits_patch(p, false)?;
    let has_limits = limits.ratio_limit.is_some()
        || limits.seed_time_limit.is_some()
        || limits.seed_idle_limit.is_some();
    if magnet && (seq.is_some() || first_last.is_some() || has_limits) {
        tracing::info!(
            %hash,
            "qBittorrent API: download order and share limits of a magnet are not kept \
             before its metadata; skipped"
        );
    } else {
        if seq.is_some() || first_last.is_some() {
            node.set_order(hash, seq, first_last)
                .await
                .map_err(QbtError::internal)?;
        }
        if has_limits {
            node.set_seed_limits(hash, limits)
                .await
                .map_err(|e| QbtError::bad(e.to_string()))?;
        }
    }
    if p.flag("forced") == Some(true) {
        if let Err(e) = node.set_force_start(hash, true).await {
            tracing::info!(%hash, "qBittorrent API: cannot force start: {e}");
        }
    }
    Ok(())
}

/// Runs `op` on every torrent `hashes` names, logging failures (qBittorrent answers 200
/// whatever happens to each).
async fn each<F, Fut>(q: &Qbt, p: &Params, what: &str, op: F) -> QbtResult<Response>
where
    F: Fn(Node, InfoHash) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for h in p.hashes(&q.node)? {
        if let Err(e) = op(q.node.clone(), h).await {
            tracing::warn!(%h, "qBittorrent API: cannot {what}: {e:#}");
        }
    }
    Ok(text(""))
}

pub async fn stop(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    each(&q, &p, "stop", |n, h| async move { n.pause(h).await }).await
}

pub async fn start(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    each(&q, &p, "start", |n, h| async move { n.resume(h).await }).await
}

pub async fn recheck(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    each(&q, &p, "recheck", |n, h| async move {
        // A magnet without metadata has nothing to check.
        if n.magnets().contains_key(&h) {
            return Ok(());
        }
        n.recheck(h).await
    })
    .await
}

pub async fn delete(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let files = p.flag("deleteFiles").unwrap_or(false);
    each(
        &q,
        &p,
        "delete",
        |n, h| async move { n.remove(h, files).await },
    )
    .await
}

/// Shoal's selection and priority for qBittorrent's file priority 0, 1, 6 or 7.
pub fn shoal_priority(p: i64) -> Option<(bool, Priority)> {
    match p {
        0 => Some((false, Priority::Normal)),
        1 => Some((true, Priority::Normal)),
        6 | 7 => Some((true, Priority::High)),
        _ => None,
    }
}

pub async fn file_prio(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let hash = p.torrent(&q.node)?;
    let prio = p
        .int("priority")
        .and_then(shoal_priority)
        .ok_or_else(|| QbtError::bad("Priority is not valid"))?;
    let ids: Vec<usize> = p
        .need("id")?
        .split('|')
        .map(|i| i.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|_| QbtError::bad("File IDs must be integers"))?;
    if q.node.magnets().contains_key(&hash) {
        return Err(QbtError::conflict(
            "Torrent's metadata has not yet downloaded",
        ));
    }
    let files = q
        .node
        .torrents()
        .get(&hash)
        .map_or(0, |e| e.meta.info.files.len());
    if let Some(bad) = ids.iter().find(|i| **i >= files) {
        return Err(QbtError::conflict(format!("File ID is not valid: {bad}")));
    }
    for i in ids {
        q.node
            .set_file(hash, i, Some(prio.0), Some(prio.1))
            .await
            .map_err(QbtError::internal)?;
    }
    Ok(text(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_hashes_become_magnets() {
        let hex = "ab".repeat(20);
        assert_eq!(magnet_of(&hex), format!("magnet:?xt=urn:btih:{hex}"));
        let m = "magnet:?xt=urn:btih:".to_string() + &hex;
        assert_eq!(magnet_of(&format!(" {m} ")), m);
    }

    #[test]
    fn file_priorities() {
        assert_eq!(shoal_priority(0), Some((false, Priority::Normal)));
        assert_eq!(shoal_priority(1), Some((true, Priority::Normal)));
        assert_eq!(shoal_priority(7), Some((true, Priority::High)));
        assert_eq!(shoal_priority(3), None);
    }
}
