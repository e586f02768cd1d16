//! One torrent as `torrent-get` sees it: what the node knows, copied out of its lock,
//! and the Transmission quantities derived from it (status, sizes, eta, ratio).

use std::sync::Arc;

use shoal_engine::{Phase, TorrentHandle, TorrentStatus};
use shoal_proto::metainfo::Metainfo;
use shoal_proto::wire::Bitfield;
use shoal_proto::InfoHash;

use crate::node::entry::file_progress;
use crate::node::{Node, Summary};
use crate::store::torrents::Priority;

/// Transmission's "no eta": not downloading (`TR_ETA_NOT_AVAIL`).
pub const ETA_NOT_AVAIL: i64 = -1;
/// Transmission's "eta unknown": downloading at no speed (`TR_ETA_UNKNOWN`).
pub const ETA_UNKNOWN: i64 = -2;

/// A torrent's data for `torrent-get`.
pub struct View {
    pub hash: InfoHash,
    pub id: i64,
    pub summary: Summary,
    /// `None` for a magnet still fetching its metadata.
    pub meta: Option<Arc<Metainfo>>,
    pub have: Bitfield,
    pub wanted: Vec<bool>,
    pub priorities: Vec<Priority>,
    pub started_at: Option<i64>,
    /// The engine's handle and status, while it runs.
    pub run: Option<(TorrentHandle, TorrentStatus)>,
    /// A pending magnet: its link and trackers.
    pub magnet: Option<(String, Vec<String>)>,
    /// The node's default trackers (added to a stopped torrent's own).
    pub default_trackers: Vec<String>,
    /// Position in the node's order (oldest first), from 0.
    pub position: usize,
    /// Last time it was seen moving data (Unix seconds).
    pub last_active: Option<i64>,
}

impl View {
    /// Transmission's `queuePosition` (from 0): the node's queue position (from 1); a
    /// magnet, not in the queue until its metadata arrives, after all torrents in
    /// the order it was added.
    pub fn queue_position(&self) -> i64 {
        match self.summary.auto.queue_position {
            p if p >= 1 => p - 1,
            _ => self.position as i64,
        }
    }
}

impl View {
    /// The views of `chosen`, given every torrent's hash oldest first (`order`, whose
    /// index is the queue position) and ids from the RPC's map. Torrents removed
    /// meanwhile are left out.
    pub fn of(
        node: &Node,
        ids: &super::IdMap,
        order: &[InfoHash],
        chosen: &[InfoHash],
    ) -> Vec<View> {
        let trackers = node.settings().trackers;
        let positions: std::collections::HashMap<&InfoHash, usize> =
            order.iter().enumerate().map(|(i, h)| (h, i)).collect();
        let mut out = Vec::with_capacity(chosen.len());
        for hash in chosen {
            let hash = *hash;
            let Some(s) = node.summary(hash) else {
                continue;
            };
            let position = positions.get(&hash).copied().unwrap_or(0);
            let mut v = View {
                hash,
                id: ids.id(&hash),
                summary: s,
                meta: None,
                have: Bitfield::new(0),
                wanted: Vec::new(),
                priorities: Vec::new(),
                started_at: None,
                run: None,
                magnet: None,
                default_trackers: trackers.clone(),
                position,
                last_active: ids.last_active(&hash),
            };
            if let Some(e) = node.torrents().get(&hash) {
                v.meta = Some(e.meta.clone());
                v.have = e.current_have();
                v.wanted = e.wanted.clone();
                v.priorities = e.priorities.clone();
                v.started_at = e.started_at;
                v.run = e
                    .run
                    .as_ref()
                    .map(|r| (r.handle.clone(), r.handle.status()));
            } else if let Some(p) = node.magnets().get(&hash) {
                v.magnet = Some((p.uri.clone(), p.magnet.trackers.clone()));
            }
            out.push(v);
        }
        out
    }

    pub fn status(&self) -> Option<&TorrentStatus> {
        self.run.as_ref().map(|(_, s)| s)
    }

    /// Transmission's status number: 0 stopped, 1 queued to verify, 2 verifying,
    /// 3 queued to download, 4 downloading, 5 queued to seed, 6 seeding.
    pub fn status_code(&self) -> i64 {
        let checking = matches!(
            self.status().map(|s| &s.phase),
            Some(Phase::Checking { .. })
        );
        status_code(self.summary.state, checking, self.complete())
    }

    /// Every byte of the torrent is verified.
    pub fn complete(&self) -> bool {
        self.meta.is_some() && self.summary.progress >= 1.0
    }

    /// Verified bytes per file.
    pub fn file_done(&self) -> Vec<u64> {
        match &self.meta {
            Some(m) => file_progress(&m.info, &self.have),
            None => Vec::new(),
        }
    }

    /// `sizeWhenDone` and `leftUntilDone`: bytes of the wanted files, and of those
    /// not verified yet.
    pub fn wanted_sizes(&self) -> (u64, u64) {
        let Some(m) = &self.meta else { return (0, 0) };
        let done = self.file_done();
        let mut size = 0;
        let mut left = 0;
        for (i, f) in m.info.files.iter().enumerate() {
            if self.wanted.get(i).copied().unwrap_or(true) {
                size += f.length;
                left += f.length.saturating_sub(done.get(i).copied().unwrap_or(0));
            }
        }
        (size, left)
    }

    /// Seconds to finish at the current rate, or Transmission's "none" values.
    pub fn eta(&self) -> i64 {
        let (_, left) = self.wanted_sizes();
        eta(self.status_code(), left, self.summary.down_rate)
    }

    /// Transmission 4's `uploadRatio`: uploaded over `sizeWhenDone`, -1 when there is
    /// nothing to divide (`TR_RATIO_NA`), -2 when that is 0 but bytes were sent
    /// (`TR_RATIO_INF`).
    pub fn ratio(&self) -> f64 {
        let (size, _) = self.wanted_sizes();
        ratio(self.summary.uploaded, size)
    }

    /// Transmission's error number: 3 (local error) with its message, or 0.
    pub fn error(&self) -> (i64, String) {
        match &self.summary.error {
            Some(e) => (3, e.clone()),
            None => (0, String::new()),
        }
    }

    /// `activityDate`: the last time data moved (seen by this RPC), else when it
    /// started or completed; 0 (never) otherwise.
    pub fn activity_date(&self) -> i64 {
        [self.last_active, self.started_at, self.summary.completed_at]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0)
    }
}

/// Every torrent's info-hash, oldest first (the order of `GET /api/torrents`).
pub fn hashes(node: &Node) -> Vec<InfoHash> {
    let mut v: Vec<(i64, InfoHash)> = {
        let map = node.torrents();
        map.iter().map(|(h, e)| (e.added_at, *h)).collect()
    };
    v.extend(node.magnets().iter().map(|(h, p)| (p.added_at, *h)));
    v.sort();
    v.into_iter().map(|(_, h)| h).collect()
}

/// See [`View::status_code`]; `state` is the node's state word.
pub fn status_code(state: &str, checking: bool, complete: bool) -> i64 {
    match state {
        "checking" if checking => 2,
        "checking" => 1,
        "queued" if complete => 5,
        "queued" => 3,
        "downloading" | "metadata" => 4,
        "seeding" => 6,
        _ => 0,
    }
}

/// See [`View::eta`].
pub fn eta(status: i64, left: u64, rate: u64) -> i64 {
    if status != 4 {
        return ETA_NOT_AVAIL;
    }
    match left.checked_div(rate) {
        Some(secs) => i64::try_from(secs).unwrap_or(i64::MAX),
        None => ETA_UNKNOWN,
    }
}

/// See [`View::ratio`].
pub fn ratio(uploaded: u64, size: u64) -> f64 {
    if size > 0 {
        uploaded as f64 / size as f64
    } else if uploaded > 0 {
        -2.0
    } else {
        -1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_numbers() {
        assert_eq!(status_code("paused", false, false), 0);
        assert_eq!(status_code("error", false, true), 0);
        assert_eq!(status_code("checking", false, false), 1);
        assert_eq!(status_code("checking", true, false), 2);
        assert_eq!(status_code("queued", false, false), 3);
        assert_eq!(status_code("downloading", false, false), 4);
        assert_eq!(status_code("metadata", false, false), 4);
        assert_eq!(status_code("queued", false, true), 5);
        assert_eq!(status_code("seeding", false, true), 6);
    }

    #[test]
    fn eta_and_ratio_use_transmissions_none_values() {
        assert_eq!(eta(6, 0, 100), ETA_NOT_AVAIL);
        assert_eq!(eta(0, 1000, 0), ETA_NOT_AVAIL);
        assert_eq!(eta(4, 1000, 0), ETA_UNKNOWN);
        assert_eq!(eta(4, 1000, 100), 10);
        assert_eq!(ratio(0, 0), -1.0);
        assert_eq!(ratio(10, 0), -2.0);
        assert_eq!(ratio(500, 1000), 0.5);
    }
}
