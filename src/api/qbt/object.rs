//! qBittorrent's torrent object (`torrents/info`, `sync/maindata`) from a node
//! [`Summary`] and a few facts the summary lacks ([`Facts`]), and its state names.
//!
//! Keys Shoal has no figure for carry qBittorrent's own "not set" value: `-1` for
//! limits and availability, `8640000` (qBittorrent's infinite ETA), `0` for times it
//! never measured. From the node's seeding rules and queue: `ratio_limit`,
//! `seeding_time_limit`, `inactive_seeding_time_limit` (the torrent's own, -2 global,
//! -1 none, minutes), `max_ratio`, `max_seeding_time`, `max_inactive_seeding_time`
//! (the limits in effect, global ones resolved; -1 none), `seeding_time` (seconds
//! seeded over all runs), `priority` (queue position, 0 when queueing is off or the
//! torrent is complete, as qBittorrent shows seeds), `force_start`, and from its
//! download order `seq_dl` and `f_l_piece_prio`. `time_active` stays 0: the node does
//! not count a torrent's total running time (only its seeding time).

use serde_json::{json, Map, Value};
use shoal_proto::magnet::Magnet;
use shoal_proto::InfoHash;

use crate::config::automation::AutoSettings;
use crate::node::rules::USE_GLOBAL;
use crate::node::{Node, Summary};

/// qBittorrent's ETA for "unknown / infinite" (100 days).
pub const MAX_ETA: u64 = 8_640_000;

/// What the qBittorrent object needs beyond the summary.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The magnet link (with name and trackers when known).
    pub magnet_uri: String,
    /// Metadata known (not a magnet still fetching it).
    pub has_metadata: bool,
    /// Multi-file torrent (the content is a folder).
    pub multi_file: bool,
    /// Bytes of the files selected for download.
    pub wanted_size: u64,
    /// Verified bytes of the selected files.
    pub wanted_done: u64,
    /// The tracker that last answered, or "".
    pub tracker: String,
    /// Trackers it announces to.
    pub trackers_count: usize,
    /// Bytes received and sent in this run of the torrent.
    pub session: (u64, u64),
    /// The `.torrent`'s comment, or "".
    pub comment: String,
}

/// The facts of every torrent the node knows (one lock of the torrent map).
pub fn facts(node: &Node) -> std::collections::HashMap<InfoHash, Facts> {
    let mut out = std::collections::HashMap::new();
    {
        let map = node.torrents();
        for (h, e) in map.iter() {
            let info = &e.meta.info;
            let mut magnet = Magnet::new(*h);
            magnet.display_name = Some(info.name.clone());
            magnet.trackers = e.meta.tracker_tiers().into_iter().flatten().collect();
            let have = e.current_have();
            let done = crate::node::entry::file_progress(info, &have);
            let wanted = |i: usize| e.wanted.get(i).copied().unwrap_or(true);
            let status = e.run.as_ref().map(|r| r.handle.status());
            let trackers = status
                .as_ref()
                .map(|s| s.trackers.as_slice())
                .unwrap_or(&[]);
            out.insert(
                *h,
                Facts {
                    trackers_count: magnet.trackers.len().max(trackers.len()),
                    magnet_uri: magnet.to_uri(),
                    has_metadata: true,
                    multi_file: !info.single_file,
                    wanted_size: (info.files.iter().enumerate())
                        .filter(|(i, _)| wanted(*i))
                        .map(|(_, f)| f.length)
                        .sum(),
                    wanted_done: (done.iter().enumerate())
                        .filter(|(i, _)| wanted(*i))
                        .map(|(_, d)| *d)
                        .sum(),
                    tracker: (trackers.iter())
                        .find(|t| t.status == "working")
                        .map(|t| t.url.clone())
                        .unwrap_or_default(),
                    session: e.run.as_ref().map_or((0, 0), |r| r.handle.transferred()),
                    comment: e.meta.comment.clone().unwrap_or_default(),
                },
            );
        }
    }
    let magnets = node.magnets();
    for (h, p) in magnets.iter() {
        out.insert(
            *h,
            Facts {
                magnet_uri: p.uri.clone(),
                trackers_count: p.magnet.trackers.len(),
                ..Facts::default()
            },
        );
    }
    out
}

/// qBittorrent's state name for a Shoal summary.
pub fn state(s: &Summary) -> &'static str {
    let done = s.progress >= 1.0 && s.size > 0;
    let forced = s.auto.force_start;
    match (s.state, done) {
        // Forced torrents run whatever the queue, so qBittorrent names them apart
        // (whether or not they move data).
        ("seeding", _) if forced => "forcedUP",
        ("downloading", _) if forced => "forcedDL",
        ("error", _) => "error",
        ("metadata", _) => "metaDL",
        ("paused", true) => "stoppedUP",
        ("paused", false) => "stoppedDL",
        ("checking", true) => "checkingUP",
        ("checking", false) => "checkingDL",
        ("queued", true) => "queuedUP",
        ("queued", false) => "queuedDL",
        ("seeding", _) if s.up_rate > 0 => "uploading",
        ("seeding", _) => "stalledUP",
        ("downloading", _) if s.down_rate > 0 => "downloading",
        ("downloading", _) => "stalledDL",
        _ => "unknown",
    }
}

/// A per-torrent limit in effect: its own, or the `global` one for -2; -1 for none
/// (qBittorrent's `max_*` keys).
pub fn effective_limit(own: f64, global: f64) -> f64 {
    let v = if own == USE_GLOBAL { global } else { own };
    if v < 0.0 {
        -1.0
    } else {
        v
    }
}

/// qBittorrent's `priority`: the queue position, 0 for a torrent outside the queue
/// (queueing off, or complete: qBittorrent shows seeds as not queued).
pub fn queue_priority(s: &Summary, g: &AutoSettings) -> i64 {
    let done = s.progress >= 1.0 && s.size > 0;
    if !g.queueing_enabled || done || s.auto.queue_position <= 0 {
        0
    } else {
        s.auto.queue_position
    }
}

/// A limit in minutes as qBittorrent's integer (-2 and -1 stay as they are).
fn minutes(v: f64) -> Value {
    if v.fract() == 0.0 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// The torrent object of `torrents/info`, every key qBittorrent 5.0 sends; `g`: the
/// node's automation settings (global limits, queueing).
pub fn object(s: &Summary, f: &Facts, g: &AutoSettings) -> Map<String, Value> {
    let a = &s.auto;
    let meta = f.has_metadata;
    let content = if !meta {
        String::new()
    } else {
        std::path::Path::new(&s.save_dir)
            .join(&s.name)
            .display()
            .to_string()
    };
    let completed = if meta { f.wanted_done } else { 0 };
    let size = if meta { f.wanted_size } else { 0 };
    super::merge([
        json!({
            "hash": s.id, "infohash_v1": s.id, "infohash_v2": "", "name": s.name,
            "magnet_uri": f.magnet_uri, "size": size,
            "total_size": if meta { s.size as i64 } else { -1 },
            "progress": s.progress, "dlspeed": s.down_rate, "upspeed": s.up_rate,
            "priority": queue_priority(s, g), "num_seeds": s.seeds, "num_leechs": s.peers,
            "num_complete": s.swarm_seeders.unwrap_or(0),
            "num_incomplete": s.swarm_leechers.unwrap_or(0),
            "state": state(s),
            "eta": s.eta_secs.unwrap_or(MAX_ETA).min(MAX_ETA),
            "seq_dl": s.order.sequential, "f_l_piece_prio": s.order.first_last_piece,
            "category": s.category.clone().unwrap_or_default(),
            "tags": s.tags.join(", "),
        }),
        json!({
            "super_seeding": false, "force_start": a.force_start,
            "save_path": s.save_dir, "download_path": "",
            "content_path": content,
            "root_path": if f.multi_file { content.clone() } else { String::new() },
            "added_on": s.added_at, "completion_on": s.completed_at.unwrap_or(-1),
            "tracker": f.tracker, "trackers_count": f.trackers_count,
            "dl_limit": 0, "up_limit": 0,
            "downloaded": s.downloaded, "uploaded": s.uploaded,
            "downloaded_session": f.session.0, "uploaded_session": f.session.1,
            "amount_left": size.saturating_sub(completed), "completed": completed,
            "max_ratio": effective_limit(a.ratio_limit, g.seed_ratio_limit),
            "max_seeding_time": minutes(effective_limit(a.seed_time_limit, g.seed_time_limit)),
            "max_inactive_seeding_time":
                minutes(effective_limit(a.seed_idle_limit, g.seed_idle_limit)),
        }),
        json!({
            "ratio": s.ratio, "ratio_limit": a.ratio_limit,
            "seeding_time_limit": minutes(a.seed_time_limit),
            "inactive_seeding_time_limit": minutes(a.seed_idle_limit), "popularity": 0,
            "seen_complete": 0, "auto_tmm": false, "time_active": 0, "seeding_time": a.seeding_secs,
            "last_activity": s.added_at, "availability": -1, "reannounce": 0,
            "comment": f.comment,
            "private": if meta { json!(s.private) } else { Value::Null },
            "has_metadata": meta,
        }),
    ])
}

/// Every torrent's object, by hash.
pub fn objects(node: &Node) -> Vec<(Summary, Map<String, Value>)> {
    let sums = node.summaries();
    let facts = facts(node);
    let g = node.settings().auto;
    let none = Facts::default();
    sums.into_iter()
        .map(|s| {
            let f = InfoHash::from_hex(&s.id).and_then(|h| facts.get(&h));
            let o = object(&s, f.unwrap_or(&none), &g);
            (s, o)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(state: &'static str, progress: f64, down: u64, up: u64) -> Summary {
        Summary {
            progress,
            down_rate: down,
            up_rate: up,
            ..Summary::sample(state)
        }
    }

    #[test]
    fn states_map_to_qbittorrent_names() {
        let cases = [
            ("downloading", 0.5, 10, 0, "downloading"),
            ("downloading", 0.5, 0, 0, "stalledDL"),
            ("seeding", 1.0, 0, 5, "uploading"),
            ("seeding", 1.0, 0, 0, "stalledUP"),
            ("paused", 0.5, 0, 0, "stoppedDL"),
            ("paused", 1.0, 0, 0, "stoppedUP"),
            ("checking", 0.2, 0, 0, "checkingDL"),
            ("checking", 1.0, 0, 0, "checkingUP"),
            ("queued", 0.0, 0, 0, "queuedDL"),
            ("queued", 1.0, 0, 0, "queuedUP"),
            ("metadata", 0.0, 0, 0, "metaDL"),
            ("error", 0.3, 0, 0, "error"),
        ];
        for (shoal, progress, down, up, want) in cases {
            assert_eq!(state(&summary(shoal, progress, down, up)), want, "{shoal}");
        }
        for (shoal, progress, want) in [
            ("downloading", 0.5, "forcedDL"),
            ("seeding", 1.0, "forcedUP"),
            ("paused", 0.5, "stoppedDL"),
        ] {
            let mut s = summary(shoal, progress, 0, 0);
            s.auto.force_start = true;
            assert_eq!(state(&s), want, "forced {shoal}");
        }
    }

    #[test]
    fn share_limits_queue_and_order_come_from_the_node() {
        let mut g = AutoSettings {
            seed_ratio_limit: 2.0,
            seed_time_limit: -1.0,
            seed_idle_limit: 30.0,
            ..AutoSettings::default()
        };
        let mut s = summary("downloading", 0.5, 0, 0);
        s.auto.ratio_limit = -2.0;
        s.auto.seed_time_limit = 90.0;
        s.auto.seed_idle_limit = -1.0;
        s.auto.queue_position = 3;
        s.auto.seeding_secs = 42;
        s.order.sequential = true;
        let facts = Facts {
            has_metadata: true,
            ..Facts::default()
        };
        let o = object(&s, &facts, &g);
        assert_eq!(o["ratio_limit"], -2.0);
        assert_eq!(o["seeding_time_limit"], 90);
        assert_eq!(o["inactive_seeding_time_limit"], -1);
        assert_eq!(o["max_ratio"], 2.0);
        assert_eq!(o["max_seeding_time"], 90);
        assert_eq!(o["max_inactive_seeding_time"], -1);
        assert_eq!(o["seeding_time"], 42);
        assert_eq!(o["priority"], 3);
        assert_eq!(
            (o["seq_dl"].clone(), o["f_l_piece_prio"].clone()),
            (json!(true), json!(false))
        );
        // Complete torrents and a queue that is off have no position, as in qBittorrent.
        let mut done = summary("seeding", 1.0, 0, 0);
        done.auto.queue_position = 1;
        assert_eq!(object(&done, &facts, &g)["priority"], 0);
        g.queueing_enabled = false;
        assert_eq!(object(&s, &facts, &g)["priority"], 0);
        assert_eq!(effective_limit(-2.0, -5.0), -1.0);
        assert_eq!(effective_limit(1.5, 3.0), 1.5);
    }

    #[test]
    fn a_magnet_without_metadata_has_qbittorrents_placeholders() {
        let s = summary("metadata", 0.0, 0, 0);
        let o = object(&s, &Facts::default(), &AutoSettings::default());
        assert_eq!(o["total_size"], -1);
        assert_eq!(o["private"], Value::Null);
        assert_eq!(o["has_metadata"], false);
        assert_eq!(o["eta"], MAX_ETA);
        assert_eq!(o["completion_on"], -1);
    }
}
