//! Settings of the node's automation: seeding rules, the queue, the watch folder and
//! the alternative speed limits with their weekly schedule.
//!
//! [`AutoSettings`] is part of [`super::Settings`] (flattened, so the keys sit beside
//! the others in `GET /api/settings`); [`AutoPatch`] is the same keys, each optional,
//! shared by the `shoal up` flags, `config.toml` and `PATCH /api/settings`.
//!
//! Limits use qBittorrent's convention so its and Transmission's APIs map directly:
//! a negative limit is "none". Times are minutes (fractions allowed).

use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};

/// What happens to a torrent whose seeding limit is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LimitAction {
    /// Pause it, with the reason shown (`stop_reason`).
    #[default]
    Stop,
    /// Remove it from the node, keeping its files.
    Remove,
}

/// Seconds without payload transfer after which a running torrent is stalled and no
/// longer counts against the queue limits (qBittorrent's "slow torrents").
pub const DEFAULT_STALLED_SECS: u64 = 60;

/// Every day of the week in [`AutoSettings::alt_schedule_days`].
pub const ALL_DAYS: u8 = 0x7f;

/// The automation settings in effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoSettings {
    /// Seeding stops at this share ratio (negative: no limit).
    pub seed_ratio_limit: f64,
    /// Seeding stops after this many minutes of seeding (negative: no limit).
    pub seed_time_limit: f64,
    /// Seeding stops after this many minutes without an uploaded byte (negative: no
    /// limit).
    pub seed_idle_limit: f64,
    /// What a reached limit does: `stop` or `remove` (files kept).
    pub seed_limit_action: LimitAction,
    /// Keep seeding, whatever the limits, while the swarm has fewer seeds than this
    /// (0: off). Seeds are the tracker's `complete` count (which includes us), or our
    /// connected seeds plus us when larger.
    pub seed_while_fewer_seeds: u32,
    /// Whether `max_active` and `max_active_seeds` hold torrents back as `queued`.
    pub queueing_enabled: bool,
    /// Seeds running at once; others wait as `queued` (0: no limit).
    pub max_active_seeds: u32,
    /// Seconds without transfer after which a running torrent stops counting against
    /// the queue limits (0: stalled torrents count).
    pub stalled_secs: u64,
    /// `.torrent` and `.magnet` files put here are added (none: no watch folder).
    pub watch_dir: Option<PathBuf>,
    /// Use the alternative speed limits now (the turtle), schedule or not.
    pub alt_enabled: bool,
    /// Alternative download limit in bytes per second (0: unlimited).
    pub alt_max_down: u64,
    /// Alternative upload limit in bytes per second (0: unlimited).
    pub alt_max_up: u64,
    /// Use the alternative limits within the weekly schedule.
    pub alt_schedule_enabled: bool,
    /// Days of the schedule: bit 0 Sunday, 1 Monday, ... 6 Saturday (Transmission's
    /// `alt-speed-time-day`).
    pub alt_schedule_days: u8,
    /// Start of the scheduled span, minutes after local midnight (0-1439).
    pub alt_schedule_begin: u32,
    /// End of the span, minutes after midnight (1440: the end of the day); before
    /// `begin`, the span runs past midnight into the next day.
    pub alt_schedule_end: u32,
}

impl Default for AutoSettings {
    fn default() -> AutoSettings {
        AutoSettings {
            seed_ratio_limit: -1.0,
            seed_time_limit: -1.0,
            seed_idle_limit: -1.0,
            seed_limit_action: LimitAction::Stop,
            seed_while_fewer_seeds: 0,
            queueing_enabled: true,
            max_active_seeds: 0,
            stalled_secs: DEFAULT_STALLED_SECS,
            watch_dir: None,
            alt_enabled: false,
            alt_max_down: 0,
            alt_max_up: 0,
            alt_schedule_enabled: false,
            alt_schedule_days: ALL_DAYS,
            alt_schedule_begin: 9 * 60,
            alt_schedule_end: 17 * 60,
        }
    }
}

/// Automation settings to change (any subset): `shoal up` flags, `config.toml` keys
/// and `PATCH /api/settings` fields.
#[derive(Args, Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoPatch {
    /// Stop seeding at this share ratio (negative: no limit, the default).
    #[arg(long, env = "SHOAL_SEED_RATIO_LIMIT", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_ratio_limit: Option<f64>,
    /// Stop seeding after this many minutes of seeding (negative: no limit, the default).
    #[arg(long, env = "SHOAL_SEED_TIME_LIMIT", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_time_limit: Option<f64>,
    /// Stop seeding after this many minutes without an upload (negative: no limit, the
    /// default).
    #[arg(long, env = "SHOAL_SEED_IDLE_LIMIT", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_idle_limit: Option<f64>,
    /// What a reached seeding limit does: stop (default) or remove (files kept).
    #[arg(long, env = "SHOAL_SEED_LIMIT_ACTION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_limit_action: Option<LimitAction>,
    /// Keep seeding past the limits while the swarm has fewer seeds than this (0: off).
    #[arg(long, env = "SHOAL_SEED_WHILE_FEWER_SEEDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_while_fewer_seeds: Option<u32>,
    /// Hold torrents beyond --max-active / --max-active-seeds as queued (default true).
    #[arg(long = "queueing", env = "SHOAL_QUEUEING", value_name = "BOOL", action = clap::ArgAction::Set)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queueing_enabled: Option<bool>,
    /// Seeds running at once; others wait as queued (0: no limit, the default).
    #[arg(long, env = "SHOAL_MAX_ACTIVE_SEEDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_active_seeds: Option<u32>,
    /// Seconds without transfer after which a torrent stops counting against the queue
    /// limits (0: never; default 60).
    #[arg(long, env = "SHOAL_STALLED_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled_secs: Option<u64>,
    /// Add the .torrent and .magnet files put in this folder (an empty path: none).
    #[arg(long, env = "SHOAL_WATCH_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch_dir: Option<PathBuf>,
    /// Use the alternative speed limits now (default false).
    #[arg(long, env = "SHOAL_ALT_ENABLED", value_name = "BOOL", action = clap::ArgAction::Set)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_enabled: Option<bool>,
    /// Alternative download limit, e.g. 100KiB (0: unlimited).
    #[arg(long, env = "SHOAL_ALT_MAX_DOWN", value_parser = crate::cli::parse_size)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_max_down: Option<u64>,
    /// Alternative upload limit, e.g. 100KiB (0: unlimited).
    #[arg(long, env = "SHOAL_ALT_MAX_UP", value_parser = crate::cli::parse_size)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_max_up: Option<u64>,
    /// Use the alternative limits within the weekly schedule (default false).
    #[arg(long = "alt-schedule", env = "SHOAL_ALT_SCHEDULE", value_name = "BOOL", action = clap::ArgAction::Set)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_schedule_enabled: Option<bool>,
    /// Days of the schedule: `all`, `weekdays`, `weekend` or names such as `mon,tue`
    /// (default all).
    #[arg(long, env = "SHOAL_ALT_SCHEDULE_DAYS", value_parser = parse_days)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_schedule_days: Option<u8>,
    /// Start of the scheduled span, local `HH:MM` (default 09:00).
    #[arg(long, env = "SHOAL_ALT_SCHEDULE_BEGIN", value_parser = parse_minute)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_schedule_begin: Option<u32>,
    /// End of the span, local `HH:MM` (default 17:00; 24:00 the end of the day;
    /// before the start: past midnight).
    #[arg(long, env = "SHOAL_ALT_SCHEDULE_END", value_parser = parse_minute)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_schedule_end: Option<u32>,
}

/// Calls `$m!(field)` for every field of [`AutoPatch`].
macro_rules! each_field {
    ($m:ident) => {
        $m!(
            seed_ratio_limit,
            seed_time_limit,
            seed_idle_limit,
            seed_limit_action,
            seed_while_fewer_seeds,
            queueing_enabled,
            max_active_seeds,
            stalled_secs,
            alt_enabled,
            alt_max_down,
            alt_max_up,
            alt_schedule_enabled,
            alt_schedule_days,
            alt_schedule_begin,
            alt_schedule_end
        )
    };
}

impl AutoSettings {
    /// Applies the fields present in `p` (an empty `watch_dir` turns the folder off).
    pub fn apply(&mut self, p: &AutoPatch) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &p.$f { self.$f = v.clone(); } )* };
        }
        each_field!(set);
        if let Some(d) = &p.watch_dir {
            self.watch_dir = (!d.as_os_str().is_empty()).then(|| d.clone());
        }
    }
}

impl AutoPatch {
    /// Takes the fields present in `newer` (merging stored settings).
    pub fn merge(&mut self, newer: &AutoPatch) {
        macro_rules! take {
            ($($f:ident),*) => { $( if newer.$f.is_some() { self.$f = newer.$f.clone(); } )* };
        }
        each_field!(take);
        if newer.watch_dir.is_some() {
            self.watch_dir = newer.watch_dir.clone();
        }
    }

    /// Why the values cannot be used, if so.
    pub fn check(&self) -> Result<(), String> {
        if self.alt_schedule_days.is_some_and(|d| d > ALL_DAYS) {
            return Err("alt_schedule_days is a bit mask of days, 0 to 127".into());
        }
        if self.alt_schedule_begin.is_some_and(|m| m >= 24 * 60) {
            return Err("alt_schedule_begin is minutes after midnight, 0 to 1439".into());
        }
        if self.alt_schedule_end.is_some_and(|m| m > 24 * 60) {
            return Err("alt_schedule_end is minutes after midnight, 0 to 1440".into());
        }
        for (k, v) in [
            ("seed_ratio_limit", self.seed_ratio_limit),
            ("seed_time_limit", self.seed_time_limit),
            ("seed_idle_limit", self.seed_idle_limit),
        ] {
            if v.is_some_and(|x| !x.is_finite()) {
                return Err(format!("{k} must be a number (negative: no limit)"));
            }
        }
        if let Some(d) = &self.watch_dir {
            if !d.as_os_str().is_empty() && !d.is_absolute() {
                return Err("watch_dir must be an absolute path (empty: none)".into());
            }
        }
        Ok(())
    }
}

const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Parses `all`, `weekdays`, `weekend`, a list of day names (`mon,tue`, any case, the
/// first three letters suffice) or the bit mask itself.
pub fn parse_days(s: &str) -> Result<u8, String> {
    let s = s.trim().to_ascii_lowercase();
    match s.as_str() {
        "all" | "every" | "daily" => return Ok(ALL_DAYS),
        "weekdays" => return Ok(0b011_1110),
        "weekend" => return Ok(0b100_0001),
        _ => {}
    }
    if let Ok(n) = s.parse::<u8>() {
        return (n <= ALL_DAYS)
            .then_some(n)
            .ok_or_else(|| "a day mask is 0 to 127".to_string());
    }
    let mut mask = 0u8;
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let i = DAY_NAMES
            .iter()
            .position(|d| part.get(..3) == Some(*d))
            .ok_or_else(|| {
                format!("{part:?} is not a day: use all, weekdays, weekend or mon,tue,...")
            })?;
        mask |= 1 << i;
    }
    Ok(mask)
}

/// Parses a local time `HH:MM` into minutes after midnight (`24:00`: 1440, the end
/// of the day).
pub fn parse_minute(s: &str) -> Result<u32, String> {
    let bad = || format!("{s:?} is not a time of day: use HH:MM, e.g. 08:30");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if (h >= 24 || m >= 60) && (h, m) != (24, 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_times_parse() {
        assert_eq!(parse_days("all"), Ok(127));
        assert_eq!(parse_days("Mon,wednesday"), Ok(0b1010));
        assert_eq!(parse_days("weekend"), Ok(0b100_0001));
        assert_eq!(parse_days("5"), Ok(5));
        assert!(parse_days("funday").is_err());
        assert!(parse_days("200").is_err());
        assert_eq!(parse_minute("08:30"), Ok(510));
        assert_eq!(parse_minute("0:00"), Ok(0));
        assert_eq!(parse_minute("24:00"), Ok(1440));
        assert!(parse_minute("24:01").is_err());
        assert!(parse_minute("8").is_err());
    }

    #[test]
    fn patch_applies_merges_and_clears_the_watch_dir() {
        let mut s = AutoSettings::default();
        let p = AutoPatch {
            seed_ratio_limit: Some(2.0),
            watch_dir: Some("/w".into()),
            ..AutoPatch::default()
        };
        s.apply(&p);
        assert_eq!(s.seed_ratio_limit, 2.0);
        assert_eq!(s.watch_dir, Some(PathBuf::from("/w")));
        let mut stored = p.clone();
        stored.merge(&AutoPatch {
            watch_dir: Some(PathBuf::new()),
            max_active_seeds: Some(3),
            ..AutoPatch::default()
        });
        s.apply(&stored);
        assert_eq!(s.watch_dir, None);
        assert_eq!((s.max_active_seeds, s.seed_ratio_limit), (3, 2.0));
        assert!(AutoPatch {
            alt_schedule_end: Some(1441),
            ..AutoPatch::default()
        }
        .check()
        .is_err());
    }
}
