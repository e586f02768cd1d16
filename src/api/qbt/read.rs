//! Reading torrents: `torrents/info` (filter, category, tag, hashes, sort, reverse,
//! limit, offset), `count`, `properties`, `files`, `trackers`, `pieceStates`.

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value};
use shoal_proto::InfoHash;

use super::object::{objects, MAX_ETA};
use super::{json, text, Params, Qbt, QbtError, QbtResult};
use crate::node::Node;

/// Whether a torrent in qBittorrent state `state` (up at `up` B/s) passes `filter`.
pub fn passes(filter: &str, state: &str, up: u64) -> bool {
    let downloading = matches!(
        state,
        "downloading"
            | "metaDL"
            | "stalledDL"
            | "checkingDL"
            | "stoppedDL"
            | "queuedDL"
            | "forcedDL"
    );
    let uploading = matches!(
        state,
        "uploading" | "stalledUP" | "checkingUP" | "queuedUP" | "forcedUP"
    );
    let stopped = matches!(state, "stoppedDL" | "stoppedUP");
    let active = matches!(
        state,
        "metaDL" | "downloading" | "uploading" | "forcedDL" | "forcedUP"
    ) || (state == "stalledDL" && up > 0);
    match filter {
        "downloading" => downloading,
        "seeding" => uploading,
        "completed" => uploading || state == "stoppedUP",
        "stopped" | "paused" => stopped,
        "running" | "resumed" => !stopped,
        "active" => active,
        "inactive" => !active,
        "stalled" => matches!(state, "stalledDL" | "stalledUP"),
        "stalled_uploading" => state == "stalledUP",
        "stalled_downloading" => state == "stalledDL",
        "checking" => matches!(state, "checkingDL" | "checkingUP"),
        "moving" => state == "moving",
        "errored" => matches!(state, "error" | "missingFiles"),
        _ => true,
    }
}

/// The objects of `torrents/info` for these parameters.
pub fn select(node: &Node, p: &Params) -> Vec<Map<String, Value>> {
    let filter = p.get("filter").unwrap_or("all");
    let wanted: Option<Vec<String>> = p.get("hashes").map(|h| {
        h.split('|')
            .map(|x| x.trim().to_ascii_lowercase())
            .collect()
    });
    let private = p.flag("private");
    let mut list: Vec<Map<String, Value>> = objects(node)
        .into_iter()
        .map(|(_, o)| o)
        .filter(|o| {
            let state = o["state"].as_str().unwrap_or("");
            let up = o["upspeed"].as_u64().unwrap_or(0);
            let hash = o["hash"].as_str().unwrap_or("");
            passes(filter, state, up)
                && p.get("category").map_or(true, |c| o["category"] == c)
                && p.get("tag").map_or(true, |t| has_tag(&o["tags"], t))
                && (wanted.as_ref()).map_or(true, |w| w.iter().any(|x| x == hash))
                && private.map_or(true, |want| o["private"] == want)
        })
        .collect();
    if let Some(key) = p.get("sort") {
        list.sort_by(|a, b| compare(&a[key], &b[key]));
        if p.flag("reverse") == Some(true) {
            list.reverse();
        }
    }
    let len = list.len() as i64;
    let mut offset = p.int("offset").unwrap_or(0);
    if offset < 0 {
        offset = (len + offset).max(0);
    }
    let limit = p.int("limit").filter(|l| *l > 0).unwrap_or(len);
    list.into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect()
}

/// Whether a `tags` value (`"a, b"`) has `tag`; `""` asks for untagged torrents.
fn has_tag(tags: &Value, tag: &str) -> bool {
    let tags = tags.as_str().unwrap_or("");
    if tag.is_empty() {
        return tags.is_empty();
    }
    tags.split(", ").any(|t| t == tag)
}

/// Orders JSON values of one key: numbers by value, strings by text, others equal.
fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

pub async fn info(State(q): State<Qbt>, p: Params) -> Response {
    json(Value::Array(
        select(&q.node, &p).into_iter().map(Value::Object).collect(),
    ))
}

pub async fn count(State(q): State<Qbt>) -> Response {
    text(q.node.summaries().len().to_string())
}

pub async fn properties(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let hash = p.torrent(&q.node)?;
    let s = q.node.summary(hash).ok_or_else(QbtError::not_found)?;
    let (meta, session) = {
        let map = q.node.torrents();
        match map.get(&hash) {
            Some(e) => (
                Some(e.meta.clone()),
                e.run.as_ref().map_or((0, 0), |r| r.handle.transferred()),
            ),
            None => (None, (0, 0)),
        }
    };
    let elapsed = (crate::store::now_secs() - s.added_at).max(0);
    let avg = |bytes: u64| bytes.checked_div(elapsed as u64).unwrap_or(0);
    let m = meta.as_deref();
    Ok(json(Value::Object(super::merge([
        json!({
            "save_path": s.save_dir, "download_path": "",
            "creation_date": m.and_then(|m| m.creation_date).unwrap_or(-1),
            "piece_size": if m.is_some() { s.piece_size as i64 } else { -1 },
            "comment": m.and_then(|m| m.comment.clone()).unwrap_or_default(),
            "total_wasted": 0, "total_uploaded": s.uploaded,
            "total_uploaded_session": session.1, "total_downloaded": s.downloaded,
            "total_downloaded_session": session.0, "up_limit": -1, "dl_limit": -1,
            "time_elapsed": elapsed, "seeding_time": s.auto.seeding_secs,
            "nb_connections": s.peers + s.seeds, "nb_connections_limit": -1,
            "share_ratio": s.ratio, "addition_date": s.added_at,
            "completion_date": s.completed_at.unwrap_or(-1),
            "created_by": m.and_then(|m| m.created_by.clone()).unwrap_or_default(),
        }),
        json!({
            "dl_speed_avg": avg(s.downloaded), "dl_speed": s.down_rate,
            "eta": s.eta_secs.unwrap_or(MAX_ETA).min(MAX_ETA), "last_seen": -1,
            "peers": s.peers, "peers_total": s.swarm_leechers.map_or(-1, i64::from),
            "pieces_have": s.pieces_have,
            "pieces_num": if m.is_some() { i64::from(s.pieces) } else { -1 },
            "reannounce": 0, "seeds": s.seeds,
            "seeds_total": s.swarm_seeders.map_or(-1, i64::from),
            "total_size": if m.is_some() { s.size as i64 } else { -1 },
            "up_speed_avg": avg(s.uploaded), "up_speed": s.up_rate,
            "isPrivate": s.private, "is_private": s.private,
            "hash": s.id, "infohash_v1": s.id, "infohash_v2": "", "name": s.name,
            "has_metadata": m.is_some(), "popularity": 0,
        }),
    ]))))
}

/// qBittorrent's file priority for Shoal's selection and priority.
pub fn file_priority(wanted: bool, p: crate::store::torrents::Priority) -> u8 {
    use crate::store::torrents::Priority;
    match (wanted, p) {
        (false, _) => 0,
        (true, Priority::Low | Priority::Normal) => 1,
        (true, Priority::High) => 6,
    }
}

pub async fn files(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let hash = p.torrent(&q.node)?;
    let wanted_index: Option<Vec<usize>> = p
        .get("indexes")
        .map(|s| s.split('|').filter_map(|i| i.trim().parse().ok()).collect());
    let map = q.node.torrents();
    let Some(e) = map.get(&hash) else {
        return Ok(json(json!([])));
    };
    let info = &e.meta.info;
    let done = crate::node::entry::file_progress(info, &e.current_have());
    let pl = info.piece_length.max(1);
    let mut out = Vec::new();
    for (i, f) in info.files.iter().enumerate() {
        if wanted_index.as_ref().is_some_and(|w| !w.contains(&i)) {
            continue;
        }
        let name = if info.single_file {
            info.name.clone()
        } else {
            format!("{}/{}", info.name, f.path.join("/"))
        };
        let first = f.offset / pl;
        let last = (f.offset + f.length.max(1) - 1) / pl;
        let progress = match f.length {
            0 => 1.0,
            n => done.get(i).copied().unwrap_or(0) as f64 / n as f64,
        };
        let wanted = e.wanted.get(i).copied().unwrap_or(true);
        let prio = e.priorities.get(i).copied().unwrap_or_default();
        out.push(json!({
            "index": i, "name": name, "size": f.length, "progress": progress,
            "priority": file_priority(wanted, prio), "is_seed": progress >= 1.0,
            "piece_range": [first, last], "availability": -1,
        }));
    }
    Ok(json(Value::Array(out)))
}

/// qBittorrent's tracker status: 0 disabled, 1 not contacted, 2 working, 3 updating,
/// 4 not working.
fn tracker_status(s: &str) -> u8 {
    match s {
        "working" => 2,
        "error" => 4,
        _ => 1,
    }
}

pub async fn trackers(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let hash = p.torrent(&q.node)?;
    let cfg = q.node.config();
    // qBittorrent lists its peer sources first, as pseudo-trackers (status 2: on, 0: off).
    let source = |name: &str, on: bool| {
        json!({"url": format!("** [{name}] **"), "status": if on { 2 } else { 0 }, "tier": -1,
               "num_peers": 0, "num_seeds": 0, "num_leeches": 0, "num_downloaded": 0, "msg": ""})
    };
    let mut out = vec![
        source("DHT", cfg.dht.is_some()),
        source("PeX", cfg.pex),
        source("LSD", cfg.lsd.is_some()),
    ];
    out.extend(tracker_rows(&q.node, hash));
    Ok(json(Value::Array(out)))
}

fn tracker_rows(node: &Node, hash: InfoHash) -> Vec<Value> {
    let row = |url: &str, tier: i64, status: u8, msg: &str, seeds: i64, leeches: i64| {
        json!({"url": url, "status": status, "tier": tier, "num_peers": -1,
               "num_seeds": seeds, "num_leeches": leeches, "num_downloaded": -1, "msg": msg})
    };
    if let Some(p) = node.magnets().get(&hash) {
        return (p.magnet.trackers.iter())
            .map(|u| row(u, 0, 1, "", -1, -1))
            .collect();
    }
    let map = node.torrents();
    let Some(e) = map.get(&hash) else {
        return Vec::new();
    };
    if let Some(r) = &e.run {
        return (r.handle.status().trackers.iter())
            .map(|t| {
                let count = |c: Option<u32>| c.map_or(-1, i64::from);
                row(
                    &t.url,
                    t.tier as i64,
                    tracker_status(t.status),
                    t.message.as_deref().unwrap_or(""),
                    count(t.seeders),
                    count(t.leechers),
                )
            })
            .collect();
    }
    (e.meta.tracker_tiers().iter().enumerate())
        .flat_map(|(tier, urls)| urls.iter().map(move |u| (tier, u.clone())))
        .map(|(tier, u)| row(&u, tier as i64, 1, "", -1, -1))
        .collect()
}

/// `pieceStates`: per piece 0 not downloaded, 1 downloading, 2 downloaded. Shoal does
/// not expose in-flight pieces, so only 0 and 2 occur.
pub async fn piece_states(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let hash = p.torrent(&q.node)?;
    let map = q.node.torrents();
    let Some(e) = map.get(&hash) else {
        return Ok(json(json!([])));
    };
    let have = e.current_have();
    let states: Vec<u8> = (0..have.num_pieces())
        .map(|i| if have.get(i) { 2 } else { 0 })
        .collect();
    Ok(json(json!(states)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_qbittorrent() {
        assert!(passes("downloading", "stoppedDL", 0));
        assert!(!passes("seeding", "stoppedUP", 0));
        assert!(passes("completed", "stoppedUP", 0));
        assert!(passes("paused", "stoppedDL", 0));
        assert!(passes("stopped", "stoppedUP", 0));
        assert!(!passes("running", "stoppedUP", 0));
        assert!(passes("resumed", "stalledUP", 0));
        assert!(passes("active", "stalledDL", 10));
        assert!(!passes("active", "stalledDL", 0));
        assert!(passes("errored", "error", 0));
        assert!(passes("downloading", "forcedDL", 0));
        assert!(passes("seeding", "forcedUP", 0));
        assert!(passes("active", "forcedUP", 0));
        assert!(passes("all", "error", 0));
    }

    #[test]
    fn tags_and_sorting() {
        assert!(has_tag(&json!("a, b"), "b"));
        assert!(!has_tag(&json!("ab"), "a"));
        assert!(has_tag(&json!(""), ""));
        assert_eq!(compare(&json!(2), &json!(10)), std::cmp::Ordering::Less);
        assert_eq!(
            compare(&json!("b"), &json!("A")),
            std::cmp::Ordering::Greater
        );
    }
}
