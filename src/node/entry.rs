//! One torrent known to the node, and its summary as the API shows it.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use shoal_engine::{Phase, TorrentHandle, TorrentStatus};
use shoal_proto::metainfo::{Info, Metainfo};
use shoal_proto::wire::Bitfield;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::now_secs;
use crate::store::options::DownloadOrder;
use crate::store::records::HistoryRecord;
use crate::store::torrents::{Intent, Priority, ResumeRecord};

/// A torrent in the session, with its monitor task.
pub struct Run {
    /// The engine's handle.
    pub handle: TorrentHandle,
    /// Engine byte counters already added to the entry's totals.
    pub seen_down: u64,
    /// See `seen_down`.
    pub seen_up: u64,
    /// Stops the monitor.
    pub cancel: CancellationToken,
    /// The monitor task.
    pub monitor: Option<JoinHandle<()>>,
}

/// A torrent the node knows.
pub struct Entry {
    /// Parsed metainfo.
    pub meta: Arc<Metainfo>,
    /// The `.torrent` as stored.
    pub torrent_bytes: Arc<Vec<u8>>,
    /// Folder that holds the data under the torrent's name.
    pub save_dir: PathBuf,
    /// Active or paused.
    pub intent: Intent,
    /// Why it stopped.
    pub error: Option<String>,
    /// Unix seconds.
    pub added_at: i64,
    /// When the download started (Unix seconds).
    pub started_at: Option<i64>,
    /// When every wanted piece was verified.
    pub completed_at: Option<i64>,
    /// Files selected.
    pub wanted: Vec<bool>,
    /// File priorities.
    pub priorities: Vec<Priority>,
    /// Verified pieces when last known (kept up to date while running).
    pub have: Bitfield,
    /// Last saved resume data.
    pub resume: Option<ResumeRecord>,
    /// Payload bytes received, all runs.
    pub downloaded: u64,
    /// Payload bytes sent, all runs.
    pub uploaded: u64,
    /// The next start hashes every piece and downloads whatever is missing, even whole
    /// files of a complete torrent (a recheck, or a resume after an error), instead of
    /// trusting the resume record or failing on a missing file.
    pub recheck: bool,
    /// Being started (stat of files, adding to the session).
    pub starting: bool,
    /// Loaded at start and not yet through the queue (shown as `checking`).
    pub restoring: bool,
    /// In the session.
    pub run: Option<Run>,
    /// Peers to dial at the next start (from a magnet's metadata fetch).
    pub pending_peers: Vec<(std::net::SocketAddr, shoal_engine::PeerSource)>,
    /// Seeding rules and queue place (`super::rules`, `super::queue`).
    pub auto: super::rules::TorrentAuto,
    /// Sequential / first-and-last-pieces download (table `torrent_options`).
    pub order: DownloadOrder,
    /// Its own speed limits (table `torrent_speed`, `super::speed`).
    pub speed: crate::store::speed::SpeedLimits,
}

/// The torrent summary of `GET /api/torrents`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub state: &'static str,
    pub progress: f64,
    pub down_rate: u64,
    pub up_rate: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    pub ratio: f64,
    pub peers: usize,
    pub seeds: usize,
    pub swarm_seeders: Option<u32>,
    pub swarm_leechers: Option<u32>,
    pub eta_secs: Option<u64>,
    pub added_at: i64,
    pub completed_at: Option<i64>,
    pub save_dir: String,
    pub error: Option<String>,
    pub role: &'static str,
    pub private: bool,
    pub piece_size: u64,
    pub pieces: u32,
    pub pieces_have: u32,
    pub files: usize,
    /// Category name (see `node/labels.rs`).
    pub category: Option<String>,
    /// Tag names, sorted.
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub auto: super::rules::AutoView,
    /// `sequential` and `first_last_piece`.
    #[serde(flatten)]
    pub order: DownloadOrder,
    /// Its own download limit in bytes per second (0: none).
    pub max_down: u64,
    /// Its own upload limit in bytes per second (0: none).
    pub max_up: u64,
}

/// Share ratio as qBittorrent computes it: uploaded / downloaded, or uploaded / size
/// when nothing was downloaded (a seeder of its own share has 1.0 after one full copy).
pub fn ratio(uploaded: u64, downloaded: u64, size: u64) -> f64 {
    match (downloaded, size) {
        (0, 0) => 0.0,
        (0, size) => uploaded as f64 / size as f64,
        (down, _) => uploaded as f64 / down as f64,
    }
}

/// Bytes in the verified pieces of `have`.
pub fn have_bytes(info: &Info, have: &Bitfield) -> u64 {
    have.iter_set().map(|i| info.piece_size(i)).sum()
}

/// Bytes of verified pieces within each file.
pub fn file_progress(info: &Info, have: &Bitfield) -> Vec<u64> {
    let pl = info.piece_length.max(1);
    info.files
        .iter()
        .map(|f| {
            if f.length == 0 {
                return 0;
            }
            let (start, end) = (f.offset, f.offset + f.length);
            let (first, last) = (start / pl, (end - 1) / pl);
            (first..=last)
                .filter(|p| u32::try_from(*p).is_ok_and(|p| have.get(p)))
                .map(|p| end.min((p + 1) * pl) - start.max(p * pl))
                .sum()
        })
        .collect()
}

impl Entry {
    /// A history record of this torrent ending now with `status`.
    pub(crate) fn history(&self, status: &str, error: Option<String>) -> HistoryRecord {
        let now = now_secs();
        let started = self.started_at.unwrap_or(self.added_at);
        let secs = (now - started).max(1) as u64;
        let (downloaded, _) = self.counters();
        HistoryRecord {
            info_hash: self.meta.info_hash.to_hex(),
            name: self.meta.info.name.clone(),
            size: self.meta.info.total_length,
            status: status.into(),
            error,
            avg_speed: downloaded / secs,
            started_at: started,
            finished_at: now,
        }
    }

    /// Whether every wanted piece is verified.
    pub fn is_complete(&self) -> bool {
        if let Some(run) = &self.run {
            if *run.handle.phase().borrow() == Phase::Seeding {
                return true;
            }
        }
        self.have.is_full() || (self.completed_at.is_some() && self.run.is_none())
    }

    /// The API's state word.
    pub fn state(&self, status: Option<&TorrentStatus>) -> &'static str {
        if self.error.is_some() {
            return "error";
        }
        if self.intent == Intent::Paused {
            return "paused";
        }
        match status.map(|s| &s.phase) {
            None if self.starting || self.restoring => "checking",
            None => "queued",
            Some(Phase::Checking { .. }) => "checking",
            Some(Phase::Downloading) => "downloading",
            Some(Phase::Seeding) => "seeding",
            Some(Phase::Error(_)) => "error",
            Some(Phase::Stopped) => "paused",
        }
    }

    /// The API summary.
    pub fn summary(&self) -> Summary {
        let status = self.run.as_ref().map(|r| r.handle.status());
        let info = &self.meta.info;
        let s = status.as_ref();
        let have_bytes = s.map_or_else(|| have_bytes(info, &self.have), |s| s.verified_bytes);
        let pieces_have = s.map_or_else(|| self.have.count_ones(), |s| s.pieces_have);
        let total = info.total_length;
        let progress = if total == 0 {
            1.0
        } else {
            have_bytes as f64 / total as f64
        };
        let down_rate = s.map_or(0, |s| s.down_rate);
        let (downloaded, uploaded) = self.counters_with(s.map(|s| (s.downloaded, s.uploaded)));
        let error = self.error.clone().or_else(|| match s.map(|s| &s.phase) {
            Some(Phase::Error(e)) => Some(e.clone()),
            _ => None,
        });
        let complete = have_bytes >= total;
        Summary {
            id: self.meta.info_hash.to_hex(),
            name: info.name.clone(),
            size: total,
            state: self.state(s),
            progress,
            down_rate,
            up_rate: s.map_or(0, |s| s.up_rate),
            downloaded,
            uploaded,
            ratio: ratio(uploaded, downloaded, total),
            peers: s.map_or(0, |s| s.peers - s.seeds),
            seeds: s.map_or(0, |s| s.seeds),
            swarm_seeders: s.and_then(|s| s.swarm_seeders),
            swarm_leechers: s.and_then(|s| s.swarm_leechers),
            eta_secs: if complete {
                None
            } else {
                (total - have_bytes).checked_div(down_rate)
            },
            added_at: self.added_at,
            completed_at: self.completed_at,
            save_dir: self.save_dir.display().to_string(),
            error,
            role: if complete { "seeder" } else { "leecher" },
            private: info.private,
            piece_size: info.piece_length,
            pieces: info.num_pieces(),
            pieces_have,
            files: info.files.len(),
            category: None,
            tags: Vec::new(),
            auto: self.auto.view(self.run.is_some()),
            order: self.order,
            max_down: self.speed.down,
            max_up: self.speed.up,
        }
    }

    /// Payload bytes received and sent, all runs, including what the engine counted
    /// since the last accounting tick.
    pub fn counters(&self) -> (u64, u64) {
        self.counters_with(self.run.as_ref().map(|r| r.handle.transferred()))
    }

    /// [`Self::counters`] given the engine's counters of the running torrent.
    fn counters_with(&self, engine: Option<(u64, u64)>) -> (u64, u64) {
        match (&self.run, engine) {
            (Some(r), Some((down, up))) => (
                self.downloaded + down.saturating_sub(r.seen_down),
                self.uploaded + up.saturating_sub(r.seen_up),
            ),
            _ => (self.downloaded, self.uploaded),
        }
    }

    /// The verified pieces now.
    pub fn current_have(&self) -> Bitfield {
        match &self.run {
            Some(r) => r.handle.have_pieces(),
            None => self.have.clone(),
        }
    }
}

#[cfg(test)]
impl Summary {
    /// A summary of a one-piece, ten-byte torrent `ab..ab` in `state`, for the unit tests
    /// of the API front ends; tests change the fields they care about.
    pub fn sample(state: &'static str) -> Summary {
        Summary {
            id: "ab".repeat(20),
            name: "n".into(),
            size: 10,
            state,
            progress: 0.0,
            down_rate: 0,
            up_rate: 0,
            downloaded: 0,
            uploaded: 0,
            ratio: 0.0,
            peers: 0,
            seeds: 0,
            swarm_seeders: None,
            swarm_leechers: None,
            eta_secs: None,
            added_at: 1,
            completed_at: None,
            save_dir: "/d".into(),
            error: None,
            role: "leecher",
            private: false,
            piece_size: 1,
            pieces: 1,
            pieces_have: 0,
            files: 1,
            category: None,
            tags: Vec::new(),
            auto: super::rules::TorrentAuto::default().view(false),
            order: Default::default(),
            max_down: 0,
            max_up: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::metainfo::InfoBuilder;

    #[test]
    fn ratio_falls_back_to_size_when_nothing_was_downloaded() {
        assert_eq!(ratio(500, 1000, 4000), 0.5);
        assert_eq!(ratio(4000, 0, 4000), 1.0);
        assert_eq!(ratio(6000, 0, 4000), 1.5);
        assert_eq!(ratio(0, 0, 4000), 0.0);
        assert_eq!(ratio(10, 0, 0), 0.0);
    }

    #[test]
    fn file_progress_splits_pieces_over_files() {
        let b = InfoBuilder {
            name: "d".into(),
            piece_length: 16384,
            files: vec![(vec!["a".into()], 10000), (vec!["b".into()], 30000)],
            single_file: false,
            private: false,
        };
        let bytes = b.encode(&[[0u8; 20]; 3]);
        let m = Metainfo::from_info_bytes(&bytes, vec![]).unwrap();
        let mut have = Bitfield::new(3);
        have.set(0);
        assert_eq!(file_progress(&m.info, &have), vec![10000, 6384]);
        have.set(2);
        assert_eq!(file_progress(&m.info, &have), vec![10000, 6384 + 7232]);
    }
}
