//! `sync/maindata`: the whole state once, then only what changed.
//!
//! Every answer gets a new `rid` and its snapshot is kept (the last [`KEEP`]). A
//! request with a kept `rid` gets the differences from that snapshot: new torrents in
//! full, changed keys of the others, `torrents_removed`, and likewise for categories,
//! tags, trackers and `server_state`. An unknown `rid` (0, too old, from before a
//! restart) gets `full_update: true` and everything.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{json, Params, Qbt};

/// Snapshots kept for deltas.
const KEEP: usize = 16;

/// What one `sync/maindata` answer showed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub torrents: BTreeMap<String, Map<String, Value>>,
    pub categories: Map<String, Value>,
    pub tags: BTreeSet<String>,
    pub trackers: BTreeMap<String, Vec<String>>,
    pub server_state: Map<String, Value>,
}

/// The snapshots of recent answers, by rid.
#[derive(Debug, Default)]
pub struct History {
    last_rid: u64,
    snapshots: BTreeMap<u64, Snapshot>,
}

impl History {
    /// Records `now` under a new rid and returns it with the snapshot of `since`, if kept.
    pub fn record(&mut self, since: u64, now: Snapshot) -> (u64, Option<Snapshot>) {
        let old = self.snapshots.get(&since).cloned();
        self.last_rid += 1;
        self.snapshots.insert(self.last_rid, now);
        while self.snapshots.len() > KEEP {
            self.snapshots.pop_first();
        }
        (self.last_rid, old)
    }
}

/// The answer for `rid`, given the current state and the old one (None: full update).
pub fn answer(rid: u64, now: &Snapshot, old: Option<&Snapshot>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("rid".into(), json!(rid));
    let Some(old) = old else {
        out.insert("full_update".into(), json!(true));
        let torrents: Map<String, Value> = (now.torrents.iter())
            .map(|(h, o)| (h.clone(), Value::Object(o.clone())))
            .collect();
        out.insert("torrents".into(), Value::Object(torrents));
        out.insert("categories".into(), Value::Object(now.categories.clone()));
        out.insert("tags".into(), json!(now.tags));
        out.insert("trackers".into(), json!(now.trackers));
        out.insert(
            "server_state".into(),
            Value::Object(now.server_state.clone()),
        );
        return out;
    };
    let mut torrents = Map::new();
    for (h, o) in &now.torrents {
        match old.torrents.get(h) {
            None => {
                torrents.insert(h.clone(), Value::Object(o.clone()));
            }
            Some(prev) => {
                let d = changed(prev, o);
                if !d.is_empty() {
                    torrents.insert(h.clone(), Value::Object(d));
                }
            }
        }
    }
    put(&mut out, "torrents", Value::Object(torrents));
    let gone: Vec<&String> = (old.torrents.keys())
        .filter(|h| !now.torrents.contains_key(*h))
        .collect();
    put(&mut out, "torrents_removed", json!(gone));
    let cats: Map<String, Value> = (now.categories.iter())
        .filter(|(k, v)| old.categories.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    put(&mut out, "categories", Value::Object(cats));
    let cats_gone: Vec<&String> = (old.categories.keys())
        .filter(|k| !now.categories.contains_key(*k))
        .collect();
    put(&mut out, "categories_removed", json!(cats_gone));
    put(
        &mut out,
        "tags",
        json!(now.tags.difference(&old.tags).collect::<Vec<_>>()),
    );
    put(
        &mut out,
        "tags_removed",
        json!(old.tags.difference(&now.tags).collect::<Vec<_>>()),
    );
    let trackers: BTreeMap<&String, &Vec<String>> = (now.trackers.iter())
        .filter(|(k, v)| old.trackers.get(*k) != Some(v))
        .collect();
    put(&mut out, "trackers", json!(trackers));
    let trackers_gone: Vec<&String> = (old.trackers.keys())
        .filter(|k| !now.trackers.contains_key(*k))
        .collect();
    put(&mut out, "trackers_removed", json!(trackers_gone));
    put(
        &mut out,
        "server_state",
        Value::Object(changed(&old.server_state, &now.server_state)),
    );
    out
}

/// Keys of `new` whose value differs from `old`'s.
fn changed(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    new.iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Inserts `v` unless it is an empty object or array (qBittorrent leaves those out).
fn put(out: &mut Map<String, Value>, key: &str, v: Value) {
    let empty = match &v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if !empty {
        out.insert(key.into(), v);
    }
}

/// Free bytes on the file system holding `dir`, when it can be read.
fn free_space(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (r == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// The current state.
async fn snapshot(q: &Qbt) -> Snapshot {
    let node = &q.node;
    let objects = super::object::objects(node);
    let mut trackers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    {
        let map = node.torrents();
        for (h, e) in map.iter() {
            for url in e.meta.tracker_tiers().into_iter().flatten() {
                trackers.entry(url).or_default().push(h.to_hex());
            }
        }
    }
    let labels = node.labels();
    let mut server = super::app::transfer_state(q).await;
    let (down, up) = node.totals();
    let dir = node.settings().download_dir;
    let free = tokio::task::spawn_blocking(move || free_space(&dir))
        .await
        .ok()
        .flatten();
    let peers: u64 = (objects.iter())
        .map(|(s, _)| (s.peers + s.seeds) as u64)
        .sum();
    let ratio = if down == 0 {
        "-".to_string()
    } else {
        format!("{:.2}", up as f64 / down as f64)
    };
    let extra = json!({
        "alltime_dl": down, "alltime_ul": up, "global_ratio": ratio,
        "free_space_on_disk": free.unwrap_or(0),
        "queueing": node.settings().auto.queueing_enabled,
        "use_alt_speed_limits": super::speed::alt_active(&node.settings().auto),
        "refresh_interval": 1500, "total_peer_connections": peers,
        // libtorrent's disk-cache counters: Shoal has no such cache, so they stay zero.
        "queued_io_jobs": 0, "average_time_queue": 0, "read_cache_hits": "0",
        "read_cache_overload": "0", "write_cache_overload": "0", "total_buffers_size": 0,
        "total_queued_size": 0, "total_wasted_session": 0,
    });
    if let Value::Object(m) = extra {
        server.extend(m);
    }
    Snapshot {
        torrents: objects.into_iter().map(|(s, o)| (s.id, o)).collect(),
        categories: super::labels::categories_json(&labels),
        tags: labels.tags,
        trackers,
        server_state: server,
    }
}

pub async fn maindata(State(q): State<Qbt>, p: Params) -> Response {
    let since = p.int("rid").unwrap_or(0).max(0) as u64;
    let now = snapshot(&q).await;
    let (rid, old) = q
        .sync
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record(since, now.clone());
    json(Value::Object(answer(rid, &now, old.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(torrents: &[(&str, Value)], tags: &[&str]) -> Snapshot {
        Snapshot {
            torrents: torrents
                .iter()
                .map(|(h, v)| (h.to_string(), v.as_object().cloned().unwrap()))
                .collect(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            server_state: json!({"dl_info_speed": 0}).as_object().cloned().unwrap(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn deltas_carry_only_changes() {
        let a = snap(
            &[
                ("h1", json!({"name": "a", "progress": 0.5})),
                ("h2", json!({"name": "b"})),
            ],
            &["x"],
        );
        let b = snap(
            &[
                ("h1", json!({"name": "a", "progress": 0.75})),
                ("h3", json!({"name": "c"})),
            ],
            &["y"],
        );
        let d = answer(2, &b, Some(&a));
        assert_eq!(d["rid"], 2);
        assert!(d.get("full_update").is_none());
        assert_eq!(d["torrents"]["h1"], json!({"progress": 0.75}));
        assert_eq!(d["torrents"]["h3"], json!({"name": "c"}));
        assert_eq!(d["torrents_removed"], json!(["h2"]));
        assert_eq!(d["tags"], json!(["y"]));
        assert_eq!(d["tags_removed"], json!(["x"]));
        assert!(d.get("server_state").is_none());
        assert!(d.get("categories").is_none());
        let same = answer(3, &b, Some(&b));
        assert_eq!(same.len(), 1, "{same:?}");
    }

    #[test]
    fn unknown_rids_get_everything() {
        let mut h = History::default();
        let s = snap(&[("h1", json!({"name": "a"}))], &[]);
        let (rid, old) = h.record(0, s.clone());
        assert_eq!((rid, old), (1, None));
        let full = answer(rid, &s, None);
        assert_eq!(full["full_update"], true);
        assert_eq!(full["torrents"]["h1"]["name"], "a");
        let (rid2, old) = h.record(1, s.clone());
        assert_eq!(rid2, 2);
        assert_eq!(old, Some(s.clone()));
        for _ in 0..KEEP {
            h.record(0, s.clone());
        }
        // rid 1 has aged out.
        assert_eq!(h.record(1, s).1, None);
    }
}
