//! The preferences of the node's automation in qBittorrent's terms: seeding limits,
//! the queue, the alternative speed limits and their schedule; and
//! `transfer/speedLimitsMode`, `toggleSpeedLimitsMode`, `setSpeedLimitsMode`.
//!
//! | qBittorrent | Shoal |
//! |---|---|
//! | `max_ratio`, `max_seeding_time`, `max_inactive_seeding_time` (minutes; -1 none) and their `_enabled` | `seed_ratio_limit`, `seed_time_limit`, `seed_idle_limit` |
//! | `max_ratio_act` 0 stop, 1 remove (2 super seeding, 3 remove with files: not supported, ignored) | `seed_limit_action` `stop`, `remove` (files kept) |
//! | `queueing_enabled`, `max_active_downloads`, `max_active_uploads` (-1 none) | `queueing_enabled`, `max_active`, `max_active_seeds` (0 none) |
//! | `max_active_torrents` | no total limit in Shoal: -1, ignored when set |
//! | `dont_count_slow_torrents`, `slow_torrent_inactive_timer` (s) | `stalled_secs` (0: stalled torrents count) |
//! | `alt_dl_limit`, `alt_up_limit` (B/s) | `alt_max_down`, `alt_max_up` |
//! | `scheduler_enabled`, `schedule_from_hour/min`, `schedule_to_hour/min` | `alt_schedule_enabled`, `alt_schedule_begin`, `alt_schedule_end` |
//! | `scheduler_days` 0 every day, 1 weekdays, 2 weekend, 3 Monday ... 9 Sunday | `alt_schedule_days` (bit 0 Sunday ... 6 Saturday; other sets read as 0) |
//!
//! The speed limits mode is whether the alternative limits are in effect now (by hand
//! or by the schedule). Toggling it off inside the scheduled span clears the switch
//! by hand, but the schedule keeps them on until its end (qBittorrent's scheduler
//! would flip them at the next boundary instead).

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{text, Params, Qbt, QbtError, QbtResult};
use crate::config::automation::{AutoPatch, AutoSettings, LimitAction, DEFAULT_STALLED_SECS};
use crate::config::{Settings, SettingsPatch};
use crate::node::altspeed;

/// Shoal's day set for qBittorrent's `scheduler_days`.
pub fn days_of(code: i64) -> Option<u8> {
    match code {
        0 => Some(0x7f),
        1 => Some(0x3e),
        2 => Some(0x41),
        // Monday (3) is bit 1 ... Saturday (8) bit 6; Sunday (9) bit 0.
        3..=8 => Some(1 << (code - 2)),
        9 => Some(1),
        _ => None,
    }
}

/// qBittorrent's `scheduler_days` for Shoal's day set (0, every day, for a set it
/// cannot name).
pub fn days_code(days: u8) -> i64 {
    (0..=9)
        .find(|c| days_of(*c) == Some(days & 0x7f))
        .unwrap_or(0)
}

/// A limit as qBittorrent shows it: -1 for none.
fn limit(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else {
        v
    }
}

/// A count as qBittorrent shows it: -1 for none (Shoal's 0).
fn count(n: u32) -> i64 {
    if n == 0 {
        -1
    } else {
        i64::from(n)
    }
}

/// The automation preferences of `app/preferences`.
pub fn preferences(s: &Settings) -> Map<String, Value> {
    let a = &s.auto;
    let minutes = |v: f64| {
        let v = limit(v);
        if v.fract() == 0.0 {
            json!(v as i64)
        } else {
            json!(v)
        }
    };
    let end = a.alt_schedule_end % (24 * 60);
    super::merge([
        json!({
            "max_ratio_enabled": a.seed_ratio_limit >= 0.0, "max_ratio": limit(a.seed_ratio_limit),
            "max_seeding_time_enabled": a.seed_time_limit >= 0.0,
            "max_seeding_time": minutes(a.seed_time_limit),
            "max_inactive_seeding_time_enabled": a.seed_idle_limit >= 0.0,
            "max_inactive_seeding_time": minutes(a.seed_idle_limit),
            "max_ratio_act": match a.seed_limit_action { LimitAction::Stop => 0, LimitAction::Remove => 1 },
        }),
        json!({
            "queueing_enabled": a.queueing_enabled,
            "max_active_downloads": count(s.max_active),
            "max_active_uploads": count(a.max_active_seeds),
            "max_active_torrents": -1,
            "dont_count_slow_torrents": a.stalled_secs > 0,
            "slow_torrent_inactive_timer":
                if a.stalled_secs > 0 { a.stalled_secs } else { DEFAULT_STALLED_SECS },
        }),
        json!({
            "alt_dl_limit": a.alt_max_down, "alt_up_limit": a.alt_max_up,
            "scheduler_enabled": a.alt_schedule_enabled,
            "schedule_from_hour": a.alt_schedule_begin / 60,
            "schedule_from_min": a.alt_schedule_begin % 60,
            "schedule_to_hour": end / 60, "schedule_to_min": end % 60,
            "scheduler_days": days_code(a.alt_schedule_days),
        }),
    ])
}

/// Reads preference values, 400 for a wrong type.
struct Prefs<'a>(&'a Map<String, Value>);

impl Prefs<'_> {
    fn num(&self, k: &str) -> QbtResult<Option<f64>> {
        match self.0.get(k) {
            None => Ok(None),
            Some(v) => {
                (v.as_f64().map(Some)).ok_or_else(|| QbtError::bad(format!("{k} must be a number")))
            }
        }
    }

    fn flag(&self, k: &str) -> QbtResult<Option<bool>> {
        match self.0.get(k) {
            None => Ok(None),
            Some(v) => (v.as_bool().map(Some))
                .ok_or_else(|| QbtError::bad(format!("{k} must be true or false"))),
        }
    }

    /// A limit with its `_enabled` switch: off is "none" (-1), as qBittorrent reads it.
    fn limit(&self, enabled: &str, k: &str) -> QbtResult<Option<f64>> {
        if self.flag(enabled)? == Some(false) {
            return Ok(Some(-1.0));
        }
        self.num(k)
    }

    /// A count where -1 (any negative) is none: Shoal's 0.
    fn count(&self, k: &str) -> QbtResult<Option<u32>> {
        Ok(self.num(k)?.map(|n| {
            if n <= 0.0 {
                0
            } else {
                n.min(f64::from(u32::MAX)) as u32
            }
        }))
    }

    /// A `schedule_*_hour` and `_min` pair as minutes after midnight (both needed).
    fn minute(&self, hour: &str, min: &str) -> QbtResult<Option<u32>> {
        match (self.num(hour)?, self.num(min)?) {
            (Some(h), Some(m)) if (0.0..24.0).contains(&h) && (0.0..60.0).contains(&m) => {
                Ok(Some(h as u32 * 60 + m as u32))
            }
            (Some(_), Some(_)) => Err(QbtError::bad(format!("{hour}/{min} is not a time of day"))),
            _ => Ok(None),
        }
    }
}

/// Puts the automation preferences of `prefs` into `patch`; `cur`: the settings now.
pub fn patch(
    prefs: &Map<String, Value>,
    cur: &Settings,
    patch: &mut SettingsPatch,
) -> QbtResult<()> {
    let p = Prefs(prefs);
    let mut a = AutoPatch {
        seed_ratio_limit: p.limit("max_ratio_enabled", "max_ratio")?,
        seed_time_limit: p.limit("max_seeding_time_enabled", "max_seeding_time")?,
        seed_idle_limit: p.limit(
            "max_inactive_seeding_time_enabled",
            "max_inactive_seeding_time",
        )?,
        queueing_enabled: p.flag("queueing_enabled")?,
        max_active_seeds: p.count("max_active_uploads")?,
        alt_max_down: p.num("alt_dl_limit")?.map(|v| v.max(0.0) as u64),
        alt_max_up: p.num("alt_up_limit")?.map(|v| v.max(0.0) as u64),
        alt_schedule_enabled: p.flag("scheduler_enabled")?,
        alt_schedule_begin: p.minute("schedule_from_hour", "schedule_from_min")?,
        alt_schedule_end: p.minute("schedule_to_hour", "schedule_to_min")?,
        ..AutoPatch::default()
    };
    a.seed_limit_action = match p.num("max_ratio_act")?.map(|v| v as i64) {
        None => None,
        Some(0) => Some(LimitAction::Stop),
        Some(1) => Some(LimitAction::Remove),
        Some(n) => {
            tracing::warn!(
                "qBittorrent API: max_ratio_act {n} is not supported (0 stop, 1 remove); ignored"
            );
            None
        }
    };
    if let Some(code) = p.num("scheduler_days")? {
        a.alt_schedule_days = Some(
            days_of(code as i64).ok_or_else(|| QbtError::bad("scheduler_days must be 0 to 9"))?,
        );
    }
    let slow_timer = p
        .num("slow_torrent_inactive_timer")?
        .map(|v| v.max(1.0) as u64);
    a.stalled_secs = match p.flag("dont_count_slow_torrents")? {
        Some(false) => Some(0),
        Some(true) => Some(slow_timer.unwrap_or(if cur.auto.stalled_secs > 0 {
            cur.auto.stalled_secs
        } else {
            DEFAULT_STALLED_SECS
        })),
        None if cur.auto.stalled_secs > 0 => slow_timer,
        None => None,
    };
    if prefs.contains_key("max_active_torrents") {
        tracing::warn!("qBittorrent API: max_active_torrents has no counterpart (Shoal limits downloads and seeds apart); ignored");
    }
    patch.max_active = p.count("max_active_downloads")?;
    patch.auto = a;
    Ok(())
}

pub async fn speed_limits_mode(State(q): State<Qbt>) -> Response {
    text(if altspeed::active(&q.node) { "1" } else { "0" })
}

/// Sets the alternative limits on or off by hand.
async fn set_mode(q: &Qbt, on: bool) -> QbtResult<Response> {
    let patch = SettingsPatch {
        auto: AutoPatch {
            alt_enabled: Some(on),
            ..AutoPatch::default()
        },
        ..SettingsPatch::default()
    };
    super::app::apply(q, patch).await?;
    if !on && altspeed::active(&q.node) {
        tracing::info!(
            "qBittorrent API: alternative limits stay on until the schedule's span ends"
        );
    }
    Ok(text(""))
}

pub async fn toggle_speed_limits_mode(State(q): State<Qbt>) -> QbtResult<Response> {
    let on = altspeed::active(&q.node);
    set_mode(&q, !on).await
}

pub async fn set_speed_limits_mode(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let mode = p
        .int("mode")
        .ok_or_else(|| QbtError::bad("'mode': invalid argument"))?;
    set_mode(&q, mode != 0).await
}

/// Whether the alternative limits are on, for `sync/maindata`.
pub fn alt_active(a: &AutoSettings) -> bool {
    altspeed::is_active(a, altspeed::LocalTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn settings() -> Settings {
        Settings {
            max_down: 0,
            max_up: 0,
            auto_share: true,
            max_active: 5,
            trackers: Vec::new(),
            download_dir: "/d".into(),
            auto: AutoSettings::default(),
        }
    }

    #[test]
    fn preferences_read_the_automation_settings() {
        let mut s = settings();
        s.auto.seed_ratio_limit = 1.5;
        s.auto.seed_time_limit = 120.0;
        s.auto.seed_limit_action = LimitAction::Remove;
        s.auto.max_active_seeds = 0;
        s.auto.alt_max_down = 1024;
        s.auto.alt_schedule_begin = 22 * 60 + 30;
        s.auto.alt_schedule_end = 24 * 60;
        s.auto.alt_schedule_days = 0x3e;
        let p = preferences(&s);
        assert_eq!(p["max_ratio_enabled"], true);
        assert_eq!(p["max_ratio"], 1.5);
        assert_eq!(p["max_seeding_time"], 120);
        assert_eq!(p["max_inactive_seeding_time_enabled"], false);
        assert_eq!(p["max_inactive_seeding_time"], -1);
        assert_eq!(p["max_ratio_act"], 1);
        assert_eq!(p["queueing_enabled"], true);
        assert_eq!(p["max_active_downloads"], 5);
        assert_eq!(p["max_active_uploads"], -1);
        assert_eq!(p["dont_count_slow_torrents"], true);
        assert_eq!(p["alt_dl_limit"], 1024);
        assert_eq!(
            (
                p["schedule_from_hour"].clone(),
                p["schedule_from_min"].clone()
            ),
            (json!(22), json!(30))
        );
        assert_eq!(
            (p["schedule_to_hour"].clone(), p["schedule_to_min"].clone()),
            (json!(0), json!(0))
        );
        assert_eq!(p["scheduler_days"], 1);
    }

    #[test]
    fn set_preferences_patch_the_automation_settings() {
        let cur = settings();
        let mut out = SettingsPatch::default();
        let v = prefs(json!({
            "max_ratio_enabled": true, "max_ratio": 2.0,
            "max_seeding_time_enabled": false, "max_seeding_time": 30,
            "max_inactive_seeding_time": 15, "max_ratio_act": 1,
            "queueing_enabled": false, "max_active_downloads": -1, "max_active_uploads": 4,
            "dont_count_slow_torrents": false,
            "alt_dl_limit": 2048, "alt_up_limit": -1, "scheduler_enabled": true,
            "schedule_from_hour": 8, "schedule_from_min": 15,
            "schedule_to_hour": 18, "schedule_to_min": 0, "scheduler_days": 2,
        }));
        patch(&v, &cur, &mut out).unwrap();
        let a = &out.auto;
        assert_eq!(a.seed_ratio_limit, Some(2.0));
        assert_eq!(a.seed_time_limit, Some(-1.0));
        assert_eq!(a.seed_idle_limit, Some(15.0));
        assert_eq!(a.seed_limit_action, Some(LimitAction::Remove));
        assert_eq!(a.queueing_enabled, Some(false));
        assert_eq!(out.max_active, Some(0));
        assert_eq!(a.max_active_seeds, Some(4));
        assert_eq!(a.stalled_secs, Some(0));
        assert_eq!((a.alt_max_down, a.alt_max_up), (Some(2048), Some(0)));
        assert_eq!(a.alt_schedule_enabled, Some(true));
        assert_eq!(
            (a.alt_schedule_begin, a.alt_schedule_end),
            (Some(495), Some(1080))
        );
        assert_eq!(a.alt_schedule_days, Some(0x41));
        // Unsupported actions are ignored; wrong types and times refused.
        let mut out = SettingsPatch::default();
        patch(&prefs(json!({"max_ratio_act": 2})), &cur, &mut out).unwrap();
        assert_eq!(out.auto.seed_limit_action, None);
        let bad = [
            json!({"queueing_enabled": 1}),
            json!({"schedule_from_hour": 25, "schedule_from_min": 0}),
            json!({"scheduler_days": 12}),
        ];
        for b in bad {
            assert!(
                patch(&prefs(b.clone()), &cur, &mut SettingsPatch::default()).is_err(),
                "{b}"
            );
        }
    }

    #[test]
    fn scheduler_days_round_trip() {
        for code in 0..=9 {
            assert_eq!(days_code(days_of(code).unwrap()), code);
        }
        assert_eq!(days_of(3), Some(0b10)); // Monday
        assert_eq!(days_of(9), Some(0b1)); // Sunday
        assert_eq!(days_of(10), None);
        assert_eq!(days_code(0b11), 0);
    }
}
