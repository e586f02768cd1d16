//! `/api/node`, `/api/stats`, `/api/history`, `/api/log`, `/api/settings`,
//! `/api/search`, `/api/get`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{body, ApiError, ApiResult};
use crate::config::{Settings, SettingsPatch};
use crate::node::catalog::SearchReply;
use crate::node::{AddRequest, Node};
use crate::store::records::{self, LogQuery, LogRecord};
use crate::store::torrents;

fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))
}

pub async fn node(State(node): State<Node>) -> Json<Value> {
    let dht = match node.session().dht() {
        Some(d) => {
            let f = d.family_stats().await;
            let s = f.total();
            let n = |s: Option<shoal_engine::dht::DhtStats>| s.map(|s| s.good + s.questionable);
            json!({"enabled": true, "nodes": s.good + s.questionable,
                   "nodes_v4": n(f.v4), "nodes_v6": n(f.v6)})
        }
        None => json!({"enabled": false, "nodes": 0, "nodes_v4": null, "nodes_v6": null}),
    };
    Json(json!({
        "peer_id": crate::node::up::peer_id_text(&node.peer_id()),
        "peer_port": node.session().listen_port(),
        "web_url": node.web_url(),
        "version": env!("CARGO_PKG_VERSION"),
        "data_dir": node.config().data_dir.display().to_string(),
        "download_dir": node.settings().download_dir.display().to_string(),
        "trackers": node.settings().trackers,
        "embedded_tracker": node.embedded_tracker(),
        "uptime_secs": node.uptime_secs(),
        "encryption": node.config().encryption.as_str(),
        "dht": dht,
        "lsd": node.config().lsd.is_some(),
    }))
}

pub async fn stats(State(node): State<Node>) -> ApiResult<Json<Value>> {
    Ok(Json(node.stats().await?))
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    filter: Option<String>,
    status: Option<String>,
}

pub async fn history(
    State(node): State<Node>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<Value>>> {
    let q = query(q)?;
    if let Some(s) = &q.status {
        if !["completed", "failed", "cancelled"].contains(&s.as_str()) {
            return Err(ApiError::bad_request(
                "status must be completed, failed or cancelled",
            ));
        }
    }
    let rows = node
        .store()
        .call(move |c| records::history(c, q.filter.as_deref(), q.status.as_deref()))
        .await?;
    let swarm = node.swarm_counts();
    Ok(Json(
        rows.into_iter()
            .map(|h| {
                let (seeds, peers) = swarm.get(&h.info_hash).copied().unwrap_or((0, 0));
                let mut v = serde_json::to_value(&h).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("seeds".into(), json!(seeds));
                    o.insert("peers".into(), json!(peers));
                }
                v
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
pub struct LogParams {
    page: Option<u32>,
    per_page: Option<u32>,
    direction: Option<String>,
    peer: Option<String>,
    torrent: Option<String>,
}

#[derive(Serialize)]
pub struct LogPage {
    total: u64,
    page: u32,
    per_page: u32,
    items: Vec<LogRecord>,
}

pub async fn log(
    State(node): State<Node>,
    q: Result<Query<LogParams>, QueryRejection>,
) -> ApiResult<Json<LogPage>> {
    let p = query(q)?;
    if let Some(d) = &p.direction {
        if d != "up" && d != "down" {
            return Err(ApiError::bad_request("direction must be up or down"));
        }
    }
    let lq = LogQuery {
        page: p.page.unwrap_or(0),
        per_page: p.per_page.unwrap_or(50).clamp(1, 1000),
        direction: p.direction,
        peer: p.peer,
        torrent: p.torrent,
    };
    let (page, per_page) = (lq.page, lq.per_page);
    let (total, items) = node
        .store()
        .call(move |c| records::log_page(c, &lq))
        .await?;
    Ok(Json(LogPage {
        total,
        page,
        per_page,
        items,
    }))
}

pub async fn settings(State(node): State<Node>) -> Json<Settings> {
    Json(node.settings())
}

pub async fn patch_settings(
    State(node): State<Node>,
    b: Result<Json<SettingsPatch>, JsonRejection>,
) -> ApiResult<Json<Settings>> {
    let patch = body(b)?;
    patch.auto.check().map_err(ApiError::bad_request)?;
    if let Some(t) = &patch.trackers {
        if let Some(bad) = t.iter().find(|u| {
            !u.starts_with("http://") && !u.starts_with("udp://") && !u.starts_with("https://")
        }) {
            return Err(ApiError::bad_request(format!(
                "{bad:?} is not a tracker URL (http://host:port/announce)"
            )));
        }
    }
    let mut s = node.settings();
    s.apply(&patch);
    let p = patch.clone();
    node.store()
        .call(move |c| torrents::store_settings(c, &p))
        .await?;
    node.set_settings(s.clone());
    crate::node::altspeed::apply(&node, &s);
    node.schedule().await;
    Ok(Json(s))
}

#[derive(Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    page: Option<u32>,
}

pub async fn search(
    State(node): State<Node>,
    q: Result<Query<SearchParams>, QueryRejection>,
) -> ApiResult<Json<SearchReply>> {
    let p = query(q)?;
    let reply = node
        .search(p.q.as_deref().unwrap_or(""), p.page.unwrap_or(0))
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::BAD_GATEWAY, format!("{e:#}")))?;
    Ok(Json(reply))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetBody {
    id: String,
    save_dir: Option<std::path::PathBuf>,
    #[serde(default)]
    paused: bool,
}

pub async fn get(
    State(node): State<Node>,
    b: Result<Json<GetBody>, JsonRejection>,
) -> ApiResult<Response> {
    let b = body(b)?;
    let id = b.id.trim().to_ascii_lowercase();
    if id.len() < 4 || !id.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "id must be an info-hash in hex or a prefix of at least 4 characters",
        ));
    }
    if let Ok(h) = node.resolve(&id) {
        return Err(ApiError::conflict(
            format!("torrent {h} is already added"),
            h.to_hex(),
        ));
    }
    let save_dir = match b.save_dir {
        Some(d) => Some(super::roots::save_dir_within(&node, d).await?),
        None => None,
    };
    let torrent = node
        .fetch(&id, &[])
        .await
        .map_err(|e| ApiError::not_found(format!("{e:#}")))?;
    let req = AddRequest {
        peers: Vec::new(),
        wanted: None,
        torrent,
        save_dir,
        paused: b.paused,
        complete: false,
    };
    super::torrents::added(&node, node.add(req).await)
}
