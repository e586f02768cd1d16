//! Seeding rules: a torrent that seeds stops (or is removed, its files kept) once it
//! reaches a share ratio, a seeding time or an idle time, global or its own, unless the
//! swarm has fewer seeds than `seed_while_fewer_seeds`.
//!
//! One task ([`run`]) ticks every second: it reads each running torrent's counters to
//! track activity (for the queue's stalled rule, `super::runs`), seeding time (counted
//! only while the engine's phase is `Seeding`, saved every 5 s in `torrent_rules` so it
//! survives restarts) and idle time (since the last uploaded byte, or since seeding
//! began; not kept across restarts), evaluates the limits with [`evaluate`], acts, and
//! then runs the queue so freed or stalled slots are taken.
//!
//! - Ratio: uploaded / downloaded, or uploaded / size when nothing was downloaded (the
//!   `ratio` the API shows, as qBittorrent computes it).
//! - Swarm seeds: the tracker's `complete` count (which includes us once we announced
//!   as a seed), or our connected seeds plus us when that is larger.
//! - Per-torrent limits follow qBittorrent: -2 uses the global setting, -1 is no limit,
//!   any other value is the limit.

use std::time::{Duration, Instant};

use serde::Serialize;
use shoal_engine::Phase;
use shoal_proto::InfoHash;

use super::entry::ratio;
use super::lifecycle::set_intent;
use super::runs::{schedule_locked, stop_run};
use super::Node;
use crate::config::automation::{AutoSettings, LimitAction};
use crate::store::rules::RulesRow;
use crate::store::torrents::Intent;

/// How often the rules and the queue are evaluated.
const TICK: Duration = Duration::from_secs(1);
/// How often seeding times are saved (and at shutdown): a crash loses at most this much
/// of a torrent's seeding time. Every seeding torrent's row is written each time.
const SAVE_EVERY: Duration = Duration::from_secs(60);
/// A per-torrent limit that defers to the global setting.
pub const USE_GLOBAL: f64 = -2.0;

/// A torrent's seeding rules, queue place and what the rules track about it.
#[derive(Debug, Clone)]
pub struct TorrentAuto {
    /// Share ratio limit: [`USE_GLOBAL`], -1 none, else the limit.
    pub ratio_limit: f64,
    /// Seeding time limit in minutes: [`USE_GLOBAL`], -1 none, else the limit.
    pub seed_time_limit: f64,
    /// Idle limit in minutes: [`USE_GLOBAL`], -1 none, else the limit.
    pub seed_idle_limit: f64,
    /// Place in the queue, 1 first.
    pub queue_position: i64,
    /// Runs whatever the queue limits.
    pub force_start: bool,
    /// Milliseconds spent seeding, all runs.
    pub seeding_ms: u64,
    /// Why the rules stopped it (cleared when resumed).
    pub stop_reason: Option<String>,
    /// What the ticks saw of the current run.
    pub activity: Activity,
}

impl Default for TorrentAuto {
    fn default() -> TorrentAuto {
        TorrentAuto {
            ratio_limit: USE_GLOBAL,
            seed_time_limit: USE_GLOBAL,
            seed_idle_limit: USE_GLOBAL,
            queue_position: 0,
            force_start: false,
            seeding_ms: 0,
            stop_reason: None,
            activity: Activity::default(),
        }
    }
}

/// The current run as the ticks see it; reset when a run starts.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    /// Stalled at the last tick (as the summary shows it).
    pub stalled: bool,
    /// Last time the payload counters moved (either way).
    pub last_transfer: Option<Instant>,
    /// Last time an uploaded byte was counted.
    pub last_upload: Option<Instant>,
    /// When the current seeding began.
    pub seeding_since: Option<Instant>,
    /// The engine's (down, up) counters at the last tick.
    bytes: (u64, u64),
    /// The last tick.
    last_tick: Option<Instant>,
    /// `seeding_ms / 1000` when last saved.
    saved_secs: u64,
}

impl Activity {
    /// A run starts at `now`: forget the previous one.
    pub fn restart(&mut self, now: Instant) {
        *self = Activity {
            last_transfer: Some(now),
            saved_secs: self.saved_secs,
            ..Activity::default()
        };
    }

    /// Whether a run has moved no payload for `stalled_secs` (never, with 0).
    pub fn is_stalled(&self, now: Instant, stalled_secs: u64) -> bool {
        stalled_secs > 0
            && self
                .last_transfer
                .is_some_and(|t| now.duration_since(t) >= Duration::from_secs(stalled_secs))
    }
}

/// The rules' fields of a torrent summary (flattened into it).
#[derive(Debug, Clone, Serialize)]
pub struct AutoView {
    /// Place in the queue, 1 first.
    pub queue_position: i64,
    /// Runs whatever the queue limits.
    pub force_start: bool,
    /// Own share ratio limit (-2 global, -1 none).
    pub ratio_limit: f64,
    /// Own seeding time limit in minutes (-2 global, -1 none).
    pub seed_time_limit: f64,
    /// Own idle limit in minutes (-2 global, -1 none).
    pub seed_idle_limit: f64,
    /// Seconds spent seeding, all runs.
    pub seeding_secs: u64,
    /// Why the seeding rules stopped it.
    pub stop_reason: Option<String>,
    /// Running but moving nothing for `stalled_secs`: not counted by the queue.
    pub stalled: bool,
}

impl TorrentAuto {
    /// From its database row.
    pub fn from_row(r: &RulesRow) -> TorrentAuto {
        TorrentAuto {
            ratio_limit: r.ratio_limit,
            seed_time_limit: r.seed_time_limit,
            seed_idle_limit: r.seed_idle_limit,
            queue_position: r.queue_position,
            force_start: r.force_start,
            seeding_ms: r.seeding_secs.saturating_mul(1000),
            stop_reason: r.stop_reason.clone(),
            activity: Activity {
                saved_secs: r.seeding_secs,
                ..Activity::default()
            },
        }
    }

    /// Its database row.
    pub fn row(&self, hash: &InfoHash) -> RulesRow {
        RulesRow {
            info_hash: hash.to_hex(),
            ratio_limit: self.ratio_limit,
            seed_time_limit: self.seed_time_limit,
            seed_idle_limit: self.seed_idle_limit,
            queue_position: self.queue_position,
            force_start: self.force_start,
            seeding_secs: self.seeding_ms / 1000,
            stop_reason: self.stop_reason.clone(),
        }
    }

    /// The summary fields; `running`: whether it runs.
    pub fn view(&self, running: bool) -> AutoView {
        AutoView {
            queue_position: self.queue_position,
            force_start: self.force_start,
            ratio_limit: self.ratio_limit,
            seed_time_limit: self.seed_time_limit,
            seed_idle_limit: self.seed_idle_limit,
            seeding_secs: self.seeding_ms / 1000,
            stop_reason: self.stop_reason.clone(),
            stalled: running && self.activity.stalled,
        }
    }
}

/// The limits in effect for one torrent (`None`: no limit). Times in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Share ratio.
    pub ratio: Option<f64>,
    /// Seeding time.
    pub seeding_secs: Option<f64>,
    /// Time without upload.
    pub idle_secs: Option<f64>,
}

/// A per-torrent value over the global one: -2 global, any other negative none.
fn pick(own: f64, global: f64) -> Option<f64> {
    let v = if own == USE_GLOBAL { global } else { own };
    (v >= 0.0).then_some(v)
}

/// The limits of a torrent with `own` rules under `global` settings.
pub fn limits(global: &AutoSettings, own: &TorrentAuto) -> Limits {
    Limits {
        ratio: pick(own.ratio_limit, global.seed_ratio_limit),
        seeding_secs: pick(own.seed_time_limit, global.seed_time_limit).map(|m| m * 60.0),
        idle_secs: pick(own.seed_idle_limit, global.seed_idle_limit).map(|m| m * 60.0),
    }
}

/// What the rules look at in a seeding torrent.
#[derive(Debug, Clone, Copy)]
pub struct Observed {
    /// Share ratio now.
    pub ratio: f64,
    /// Seconds seeded, all runs.
    pub seeding_secs: f64,
    /// Seconds since the last uploaded byte (or since seeding began).
    pub idle_secs: f64,
    /// Seeds in the swarm, us included.
    pub swarm_seeds: u32,
}

/// Why a seeding torrent must stop, if it must. `keep_below`: keep seeding while the
/// swarm has fewer seeds than this (0: off).
pub fn evaluate(l: &Limits, o: &Observed, keep_below: u32) -> Option<String> {
    let reason = if l.ratio.is_some_and(|r| o.ratio >= r) {
        format!(
            "share ratio limit reached ({:.2} of {:.2})",
            o.ratio,
            l.ratio.unwrap_or(0.0)
        )
    } else if l.seeding_secs.is_some_and(|s| o.seeding_secs >= s) {
        format!(
            "seeding time limit reached ({} s seeded)",
            o.seeding_secs as u64
        )
    } else if l.idle_secs.is_some_and(|s| o.idle_secs >= s) {
        format!(
            "idle seeding limit reached (nothing uploaded for {} s)",
            o.idle_secs as u64
        )
    } else {
        return None;
    };
    (o.swarm_seeds >= keep_below).then_some(reason)
}

/// Evaluates the rules and runs the queue every [`TICK`] until the node stops.
pub(crate) async fn run(node: Node) {
    let cancel = node.inner().cancel.clone();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_save = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let auto = node.settings().auto;
        let now = Instant::now();
        let hits = observe(&node, &auto, now);
        for (hash, reason) in hits {
            act(&node, hash, reason, auto.seed_limit_action).await;
        }
        if now.duration_since(last_save) >= SAVE_EVERY {
            last_save = now;
            save_seeding_times(&node).await;
        }
        node.schedule().await;
    }
}

/// Updates every running torrent's activity and seeding time; returns the seeding
/// torrents whose limits are reached, with the reason.
fn observe(node: &Node, auto: &AutoSettings, now: Instant) -> Vec<(InfoHash, String)> {
    let mut hits = Vec::new();
    let mut map = node.torrents();
    for (hash, e) in map.iter_mut() {
        let Some(run) = &e.run else { continue };
        let (down, up) = run.handle.transferred();
        let seeding = *run.handle.phase().borrow() == Phase::Seeding;
        let a = &mut e.auto.activity;
        if (down, up) != a.bytes {
            a.last_transfer = Some(now);
        }
        if up != a.bytes.1 {
            a.last_upload = Some(now);
        }
        a.bytes = (down, up);
        a.stalled = a.is_stalled(now, auto.stalled_secs);
        if seeding {
            if a.seeding_since.is_some() {
                if let Some(t) = a.last_tick {
                    let ms = now.duration_since(t).as_millis();
                    e.auto.seeding_ms += u64::try_from(ms).unwrap_or(0);
                }
            } else {
                a.seeding_since = Some(now);
            }
        } else {
            a.seeding_since = None;
        }
        let a = &mut e.auto.activity;
        a.last_tick = Some(now);
        let Some(since) = a.seeding_since else {
            continue;
        };
        if e.intent != Intent::Active || e.auto.stop_reason.is_some() {
            continue;
        }
        let idle_from = a.last_upload.map_or(since, |u| u.max(since));
        let l = limits(auto, &e.auto);
        if l.ratio.is_none() && l.seeding_secs.is_none() && l.idle_secs.is_none() {
            continue;
        }
        let (downloaded, uploaded) = e.counters();
        let mut observed = Observed {
            ratio: ratio(uploaded, downloaded, e.meta.info.total_length),
            seeding_secs: e.auto.seeding_ms as f64 / 1000.0,
            idle_secs: now.duration_since(idle_from).as_secs_f64(),
            swarm_seeds: u32::MAX,
        };
        // The swarm's seeds matter only once a limit is reached (the full status copies
        // the torrent's name and trackers: too dear for every torrent every second).
        if evaluate(&l, &observed, 0).is_none() {
            continue;
        }
        let status = run.handle.status();
        observed.swarm_seeds = status.swarm_seeders.unwrap_or(0).max(
            u32::try_from(status.seeds)
                .unwrap_or(u32::MAX)
                .saturating_add(1),
        );
        if let Some(reason) = evaluate(&l, &observed, auto.seed_while_fewer_seeds) {
            hits.push((*hash, reason));
        }
    }
    hits
}

/// Stops or removes a torrent whose limit is reached.
async fn act(node: &Node, hash: InfoHash, reason: String, action: LimitAction) {
    tracing::info!(torrent = %hash, ?action, "{reason}");
    if action == LimitAction::Remove {
        if let Err(e) = node.remove(hash, false).await {
            tracing::warn!(torrent = %hash, "cannot remove after its seeding limit: {e:#}");
        }
        return;
    }
    let _ops = node.inner().ops.lock().await;
    if !node.torrents().get(&hash).is_some_and(|e| e.run.is_some()) {
        return;
    }
    stop_run(node, hash).await;
    if let Err(e) = set_intent(node, hash, Intent::Paused, None).await {
        tracing::warn!(torrent = %hash, "cannot record the stop: {e:#}");
    }
    let row = node.torrents().get_mut(&hash).map(|e| {
        e.auto.stop_reason = Some(reason);
        e.auto.row(&hash)
    });
    if let Some(row) = row {
        let _ = node
            .store()
            .call(move |c| crate::store::rules::save(c, &row))
            .await;
    }
    schedule_locked(node).await;
}

/// Saves the rows whose seeding time moved by a second or more since last saved.
pub(crate) async fn save_seeding_times(node: &Node) {
    let rows: Vec<RulesRow> = {
        let mut map = node.torrents();
        map.iter_mut()
            .filter(|(_, e)| e.auto.seeding_ms / 1000 != e.auto.activity.saved_secs)
            .map(|(h, e)| {
                e.auto.activity.saved_secs = e.auto.seeding_ms / 1000;
                e.auto.row(h)
            })
            .collect()
    };
    if rows.is_empty() {
        return;
    }
    let r = node
        .store()
        .call(move |c| crate::store::rules::save_many(c, &rows))
        .await;
    if let Err(e) = r {
        tracing::warn!("cannot save seeding times: {e:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(ratio: f64, seeding_secs: f64, idle_secs: f64, seeds: u32) -> Observed {
        Observed {
            ratio,
            seeding_secs,
            idle_secs,
            swarm_seeds: seeds,
        }
    }

    #[test]
    fn own_limits_override_global_ones() {
        let global = AutoSettings {
            seed_ratio_limit: 2.0,
            seed_time_limit: 10.0,
            ..AutoSettings::default()
        };
        let mut own = TorrentAuto::default();
        let l = limits(&global, &own);
        assert_eq!(l.ratio, Some(2.0));
        assert_eq!(l.seeding_secs, Some(600.0));
        assert_eq!(l.idle_secs, None);
        own.ratio_limit = -1.0;
        own.seed_idle_limit = 0.5;
        own.seed_time_limit = 0.0;
        let l = limits(&global, &own);
        assert_eq!(
            (l.ratio, l.seeding_secs, l.idle_secs),
            (None, Some(0.0), Some(30.0))
        );
    }

    #[test]
    fn each_limit_stops_and_few_seeds_keep_seeding() {
        let l = Limits {
            ratio: Some(1.0),
            seeding_secs: Some(60.0),
            idle_secs: Some(30.0),
        };
        assert_eq!(evaluate(&l, &observed(0.5, 10.0, 5.0, 1), 0), None);
        let r = evaluate(&l, &observed(1.0, 10.0, 5.0, 1), 0).unwrap();
        assert!(r.contains("ratio"), "{r}");
        let r = evaluate(&l, &observed(0.1, 60.0, 5.0, 1), 0).unwrap();
        assert!(r.contains("seeding time"), "{r}");
        let r = evaluate(&l, &observed(0.1, 1.0, 31.0, 1), 0).unwrap();
        assert!(r.contains("idle"), "{r}");
        // The only seed of a swarm that wants two keeps seeding past every limit.
        assert_eq!(evaluate(&l, &observed(9.0, 99.0, 99.0, 1), 2), None);
        assert!(evaluate(&l, &observed(9.0, 99.0, 99.0, 2), 2).is_some());
        let none = Limits {
            ratio: None,
            seeding_secs: None,
            idle_secs: None,
        };
        assert_eq!(evaluate(&none, &observed(9.0, 99.0, 99.0, 9), 0), None);
    }

    #[test]
    fn stalled_after_the_setting_and_never_with_zero() {
        let t0 = Instant::now();
        let mut a = Activity::default();
        a.restart(t0);
        assert!(!a.is_stalled(t0 + Duration::from_secs(59), 60));
        assert!(a.is_stalled(t0 + Duration::from_secs(60), 60));
        assert!(!a.is_stalled(t0 + Duration::from_secs(600), 0));
    }
}
