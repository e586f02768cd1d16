//! `/api/torrents...`: list, add, detail, lifecycle, export, files, peers, pieces,
//! trackers.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shoal_engine::peer::TransportKind;
use shoal_proto::magnet::Magnet;
use shoal_proto::InfoHash;

use super::{body, is_raw, media_type, require_json, resolve, roots, ApiError, ApiResult};
use crate::node::entry::file_progress;
use crate::node::{AddError, AddRequest, Node, Summary};
use crate::store::torrents::Priority;

pub async fn list(State(node): State<Node>) -> Json<Vec<Summary>> {
    Json(node.summaries())
}

fn summary(node: &Node, hash: InfoHash) -> ApiResult<Summary> {
    node.summary(hash)
        .ok_or_else(|| ApiError::not_found(format!("torrent {hash} was removed")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    torrent_base64: Option<String>,
    magnet: Option<String>,
    save_dir: Option<std::path::PathBuf>,
    #[serde(default)]
    paused: bool,
    /// Download order (`PUT .../order`); not for magnets.
    sequential: Option<bool>,
    first_last_piece: Option<bool>,
}

pub async fn add(State(node): State<Node>, headers: HeaderMap, raw: Bytes) -> ApiResult<Response> {
    let req = if is_raw(&media_type(&headers)) {
        AddRequest {
            peers: Vec::new(),
            wanted: None,
            torrent: raw.to_vec(),
            save_dir: None,
            paused: false,
            complete: false,
        }
    } else {
        require_json(&headers)?;
        let b: AddBody = serde_json::from_slice(&raw)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?;
        let save_dir = match b.save_dir {
            Some(d) => Some(roots::save_dir_within(&node, d).await?),
            None => None,
        };
        let torrent = match (b.torrent_base64, b.magnet) {
            (Some(t), None) => base64::engine::general_purpose::STANDARD
                .decode(t.trim())
                .map_err(|e| ApiError::bad_request(format!("torrent_base64 is not base64: {e}")))?,
            (None, Some(_)) if b.sequential.is_some() || b.first_last_piece.is_some() => {
                return Err(ApiError::bad_request(
                    "\"sequential\" and \"first_last_piece\" need the metadata: add the magnet, \
                     then set them with PUT /api/torrents/:id/order",
                ))
            }
            (None, Some(m)) => {
                let magnet = Magnet::parse(&m)
                    .map_err(|e| ApiError::bad_request(format!("bad magnet link: {e}")))?;
                if let Some(h) = node.summary(magnet.info_hash) {
                    return Err(ApiError::conflict("torrent is already added", h.id));
                }
                return added(&node, node.add_magnet(&m, save_dir, b.paused).await);
            }
            _ => {
                return Err(ApiError::bad_request(
                    "give exactly one of \"torrent_base64\" or \"magnet\", or POST the .torrent \
                     with Content-Type: application/x-bittorrent",
                ))
            }
        };
        let req = AddRequest {
            peers: Vec::new(),
            wanted: None,
            torrent,
            save_dir,
            paused: b.paused,
            complete: false,
        };
        let r = node.add(req).await;
        if let Ok(hash) = &r {
            if b.sequential.is_some() || b.first_last_piece.is_some() {
                super::order::apply(&node, *hash, b.sequential, b.first_last_piece).await?;
            }
        }
        return added(&node, r);
    };
    added(&node, node.add(req).await)
}

/// `201` with the summary, or the add error's status.
pub fn added(node: &Node, r: Result<InfoHash, AddError>) -> ApiResult<Response> {
    match r {
        Ok(hash) => Ok((StatusCode::CREATED, Json(summary(node, hash)?)).into_response()),
        Err(AddError::Duplicate(h)) => Err(ApiError::conflict(
            format!("torrent {h} is already added"),
            h.to_hex(),
        )),
        Err(AddError::Invalid(m)) => {
            Err(ApiError::bad_request(format!("not a valid .torrent: {m}")))
        }
        Err(AddError::Internal(e)) => Err(ApiError::internal(e)),
    }
}

/// A magnet still waiting for its metadata: its link and trackers.
fn pending_magnet(node: &Node, hash: InfoHash) -> Option<(String, Vec<String>)> {
    let map = node.magnets();
    map.get(&hash)
        .map(|p| (p.uri.clone(), p.magnet.trackers.clone()))
}

fn no_metadata_yet(hash: InfoHash) -> ApiError {
    ApiError::conflict(
        "the torrent's metadata is not known yet (state `metadata`); try again once it is",
        hash.to_hex(),
    )
}

pub async fn detail(State(node): State<Node>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let hash = resolve(&node, &id)?;
    let s = summary(&node, hash)?;
    if let Some((uri, trackers)) = pending_magnet(&node, hash) {
        let mut v = serde_json::to_value(s).map_err(|e| ApiError::internal(e.into()))?;
        if let Some(o) = v.as_object_mut() {
            let trackers: Vec<Value> = trackers.iter().map(|u| json!({"url": u})).collect();
            o.insert("trackers".into(), json!(trackers));
            o.insert("comment".into(), Value::Null);
            o.insert("created_by".into(), Value::Null);
            o.insert("magnet".into(), json!(uri));
        }
        return Ok(Json(v));
    }
    let (meta, trackers) = {
        let map = node.torrents();
        let e = map
            .get(&hash)
            .ok_or_else(|| ApiError::not_found("removed"))?;
        (e.meta.clone(), tracker_list(&node, e))
    };
    let mut v = serde_json::to_value(s).map_err(|e| ApiError::internal(e.into()))?;
    let mut magnet = Magnet::new(hash);
    magnet.display_name = Some(meta.info.name.clone());
    magnet.trackers = meta.tracker_tiers().into_iter().flatten().collect();
    if let Some(o) = v.as_object_mut() {
        o.insert("trackers".into(), json!(trackers));
        o.insert("comment".into(), json!(meta.comment));
        o.insert("created_by".into(), json!(meta.created_by));
        o.insert("magnet".into(), json!(magnet.to_uri()));
    }
    Ok(Json(v))
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    #[serde(default)]
    delete_data: bool,
}

pub async fn remove(
    State(node): State<Node>,
    Path(id): Path<String>,
    q: Result<Query<RemoveQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<StatusCode> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let hash = resolve(&node, &id)?;
    node.remove(hash, q.delete_data).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause(State(node): State<Node>, Path(id): Path<String>) -> ApiResult<Json<Summary>> {
    let hash = resolve(&node, &id)?;
    node.pause(hash).await?;
    Ok(Json(summary(&node, hash)?))
}

pub async fn resume(State(node): State<Node>, Path(id): Path<String>) -> ApiResult<Json<Summary>> {
    let hash = resolve(&node, &id)?;
    node.resume(hash).await?;
    Ok(Json(summary(&node, hash)?))
}

pub async fn recheck(State(node): State<Node>, Path(id): Path<String>) -> ApiResult<Json<Summary>> {
    let hash = resolve(&node, &id)?;
    if pending_magnet(&node, hash).is_some() {
        return Err(no_metadata_yet(hash));
    }
    node.recheck(hash).await?;
    Ok(Json(summary(&node, hash)?))
}

/// `POST /api/torrents/:id/reannounce`: announces to its trackers now; 409 when it does
/// not run (paused, queued, or a magnet still fetching its metadata).
pub async fn reannounce(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Summary>> {
    let hash = resolve(&node, &id)?;
    if !reannounce_now(&node, hash) {
        return Err(ApiError::conflict(
            "the torrent is not running (paused, queued or waiting for its metadata); \
             start it to announce",
            hash.to_hex(),
        ));
    }
    Ok(Json(summary(&node, hash)?))
}

/// Asks a running torrent's announce task for a round now; false when it does not run.
pub fn reannounce_now(node: &Node, hash: InfoHash) -> bool {
    let map = node.torrents();
    match map.get(&hash).and_then(|e| e.run.as_ref()) {
        Some(r) => {
            r.handle.reannounce();
            true
        }
        None => false,
    }
}

pub async fn export(State(node): State<Node>, Path(id): Path<String>) -> ApiResult<Response> {
    let hash = resolve(&node, &id)?;
    if pending_magnet(&node, hash).is_some() {
        return Err(no_metadata_yet(hash));
    }
    let (name, bytes) = {
        let map = node.torrents();
        let e = map
            .get(&hash)
            .ok_or_else(|| ApiError::not_found("removed"))?;
        (e.meta.info.name.clone(), e.torrent_bytes.clone())
    };
    let safe: String = name
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-bittorrent".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}.torrent\""),
            ),
        ],
        bytes.to_vec(),
    )
        .into_response())
}

#[derive(Serialize)]
pub struct FileView {
    index: usize,
    path: String,
    size: u64,
    progress: f64,
    wanted: bool,
    priority: Priority,
}

fn file_views(node: &Node, hash: InfoHash) -> ApiResult<Vec<FileView>> {
    if pending_magnet(node, hash).is_some() {
        return Ok(Vec::new());
    }
    let map = node.torrents();
    let e = map
        .get(&hash)
        .ok_or_else(|| ApiError::not_found("removed"))?;
    let info = &e.meta.info;
    let done = file_progress(info, &e.current_have());
    Ok(info
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let rel = if info.single_file {
                std::path::PathBuf::from(&info.name)
            } else {
                std::path::Path::new(&info.name).join(f.path.join("/"))
            };
            FileView {
                index: i,
                path: rel.to_string_lossy().into_owned(),
                size: f.length,
                progress: if f.length == 0 {
                    1.0
                } else {
                    done.get(i).copied().unwrap_or(0) as f64 / f.length as f64
                },
                wanted: e.wanted.get(i).copied().unwrap_or(true),
                priority: e.priorities.get(i).copied().unwrap_or_default(),
            }
        })
        .collect())
}

pub async fn files(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<FileView>>> {
    let hash = resolve(&node, &id)?;
    Ok(Json(file_views(&node, hash)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileChange {
    wanted: Option<bool>,
    priority: Option<Priority>,
}

pub async fn set_file(
    State(node): State<Node>,
    Path((id, index)): Path<(String, String)>,
    b: Result<Json<FileChange>, JsonRejection>,
) -> ApiResult<Json<FileView>> {
    let hash = resolve(&node, &id)?;
    let change = body(b)?;
    let index: usize = index
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{index:?} is not a file index")))?;
    if !node
        .set_file(hash, index, change.wanted, change.priority)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "torrent {hash} has no file {index}"
        )));
    }
    file_views(&node, hash)?
        .into_iter()
        .nth(index)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such file"))
}

pub async fn peers(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let hash = resolve(&node, &id)?;
    if pending_magnet(&node, hash).is_some() {
        return Ok(Json(Vec::new()));
    }
    let peers = {
        let map = node.torrents();
        let e = map
            .get(&hash)
            .ok_or_else(|| ApiError::not_found("removed"))?;
        e.run.as_ref().map(|r| r.handle.peers()).unwrap_or_default()
    };
    Ok(Json(
        peers
            .into_iter()
            .map(|p| {
                let mut flags = String::new();
                if !p.peer_choking && p.am_interested {
                    flags.push('D');
                } else if p.am_interested {
                    flags.push('d');
                }
                if !p.am_choking && p.peer_interested {
                    flags.push('U');
                } else if p.peer_interested {
                    flags.push('u');
                }
                if p.incoming {
                    flags.push('I');
                }
                if p.snubbed {
                    flags.push('S');
                }
                if p.encrypted {
                    flags.push('E');
                }
                if p.transport == TransportKind::Utp {
                    flags.push('P');
                }
                let family = if p.ipv6 { "ipv6" } else { "ipv4" };
                json!({
                    "addr": p.addr.to_string(), "client": p.client, "progress": p.progress,
                    "down_rate": p.down_rate, "up_rate": p.up_rate,
                    "downloaded": p.downloaded, "uploaded": p.uploaded, "seed": p.seed,
                    "am_choking": p.am_choking, "am_interested": p.am_interested,
                    "peer_choking": p.peer_choking, "peer_interested": p.peer_interested,
                    "incoming": p.incoming, "encrypted": p.encrypted, "flags": flags,
                    "source": p.source.as_str(), "transport": p.transport.as_str(),
                    "family": family,
                })
            })
            .collect(),
    ))
}

pub async fn pieces(State(node): State<Node>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let hash = resolve(&node, &id)?;
    if pending_magnet(&node, hash).is_some() {
        return Ok(Json(json!({"count": 0, "have": ""})));
    }
    let have = {
        let map = node.torrents();
        let e = map
            .get(&hash)
            .ok_or_else(|| ApiError::not_found("removed"))?;
        e.current_have()
    };
    Ok(Json(json!({
        "count": have.num_pieces(),
        "have": base64::engine::general_purpose::STANDARD.encode(have.as_bytes()),
    })))
}

fn tracker_list(node: &Node, e: &crate::node::Entry) -> Vec<Value> {
    if let Some(r) = &e.run {
        let now = std::time::Instant::now();
        return r
            .handle
            .status()
            .trackers
            .into_iter()
            .map(|t| {
                // Rounded up, so "in 0 s" means an announce is under way.
                let next_in = t.next_announce.map(|at| {
                    let left = at.saturating_duration_since(now);
                    left.as_secs() + u64::from(left.subsec_nanos() > 0)
                });
                json!({"url": t.url, "tier": t.tier, "status": t.status, "message": t.message,
                       "seeders": t.seeders, "leechers": t.leechers, "failures": t.failures,
                       "next_announce_in": next_in})
            })
            .collect();
    }
    let mut urls: Vec<String> = node.settings().trackers;
    for u in e.meta.tracker_tiers().into_iter().flatten() {
        if !urls.contains(&u) {
            urls.push(u);
        }
    }
    urls.into_iter()
        .enumerate()
        .map(|(tier, url)| {
            json!({"url": url, "tier": tier, "status": "not contacted", "message": null,
                   "seeders": null, "leechers": null, "failures": 0, "next_announce_in": null})
        })
        .collect()
}

pub async fn trackers(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let hash = resolve(&node, &id)?;
    if let Some((_, trackers)) = pending_magnet(&node, hash) {
        return Ok(Json(trackers.iter().map(|u| json!({"url": u})).collect()));
    }
    let map = node.torrents();
    let e = map
        .get(&hash)
        .ok_or_else(|| ApiError::not_found("removed"))?;
    Ok(Json(tracker_list(&node, e)))
}
