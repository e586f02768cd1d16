//! Seeding limits, queues, stalled detection and alternative speeds over RPC: the
//! `torrent-set`/`torrent-get` seeding keys and the `session-get`/`session-set`
//! keys that map onto the node's automation settings (`crate::config::automation`).
//!
//! Transmission keeps a value while its `-enabled` switch is off; the node has one
//! number per setting (negative or 0: off), so a value set while switched off is
//! kept here, in memory, for `session-get` (as `Rpc::saved_limits` does for speeds).

use serde_json::{json, Value};
use shoal_proto::InfoHash;

use super::modes::{from_mode, to_mode};
use super::{bool_arg, int_arg, Args, Rpc};
use crate::config::automation::AutoPatch;
use crate::config::Settings;
use crate::node::queue::LimitsPatch;

/// Values shown while their switch is off; Transmission's defaults at first.
#[derive(Debug, Clone, Copy)]
pub struct Saved {
    /// `seedRatioLimit`.
    pub ratio: f64,
    /// `idle-seeding-limit`, minutes.
    pub idle_minutes: u64,
    /// `seed-queue-size`.
    pub seed_queue: u32,
    /// `queue-stalled-minutes`.
    pub stalled_minutes: u64,
}

impl Default for Saved {
    fn default() -> Saved {
        Saved {
            ratio: 2.0,
            idle_minutes: 30,
            seed_queue: 10,
            stalled_minutes: 30,
        }
    }
}

/// Bytes in Transmission's speed unit.
const KB: u64 = 1000;

/// `session-set` keys handled here.
pub const SESSION_KEYS: &[&str] = &[
    "seedRatioLimit",
    "seedRatioLimited",
    "idle-seeding-limit",
    "idle-seeding-limit-enabled",
    "seed-queue-size",
    "seed-queue-enabled",
    "queue-stalled-enabled",
    "queue-stalled-minutes",
    "alt-speed-down",
    "alt-speed-up",
    "alt-speed-enabled",
    "alt-speed-time-begin",
    "alt-speed-time-end",
    "alt-speed-time-day",
    "alt-speed-time-enabled",
];

fn saved(rpc: &Rpc) -> Saved {
    *rpc.saved_auto.lock().unwrap_or_else(|p| p.into_inner())
}

/// Minutes of a node value in minutes (fractions allowed), rounded for Transmission.
fn whole(minutes: f64) -> u64 {
    minutes.max(0.0).round() as u64
}

/// The `session-get` values of these keys (they replace `session.rs`'s defaults,
/// with `download-queue-enabled`, which also needs queueing on).
pub fn session_values(rpc: &Rpc, s: &Settings) -> Args {
    let a = &s.auto;
    let sv = saved(rpc);
    let v = json!({
        "seedRatioLimit": if a.seed_ratio_limit >= 0.0 { a.seed_ratio_limit } else { sv.ratio },
        "seedRatioLimited": a.seed_ratio_limit >= 0.0,
        "idle-seeding-limit": if a.seed_idle_limit >= 0.0 { whole(a.seed_idle_limit) } else { sv.idle_minutes },
        "idle-seeding-limit-enabled": a.seed_idle_limit >= 0.0,
        "download-queue-enabled": a.queueing_enabled && s.max_active > 0,
        "seed-queue-enabled": a.queueing_enabled && a.max_active_seeds > 0,
        "seed-queue-size": if a.max_active_seeds > 0 { a.max_active_seeds } else { sv.seed_queue },
        "queue-stalled-enabled": a.stalled_secs > 0,
        "queue-stalled-minutes": if a.stalled_secs > 0 { a.stalled_secs.div_ceil(60) } else { sv.stalled_minutes },
        "alt-speed-down": a.alt_max_down / KB,
        "alt-speed-up": a.alt_max_up / KB,
        "alt-speed-enabled": a.alt_enabled,
        "alt-speed-time-begin": a.alt_schedule_begin,
        "alt-speed-time-end": a.alt_schedule_end,
        "alt-speed-time-day": a.alt_schedule_days,
        "alt-speed-time-enabled": a.alt_schedule_enabled,
    });
    match v {
        Value::Object(m) => m,
        _ => Args::new(),
    }
}

/// A non-negative integer argument.
fn count(args: &Args, key: &str) -> Result<Option<u64>, String> {
    match int_arg(args, key) {
        Some(n) => u64::try_from(n)
            .map(Some)
            .map_err(|_| format!("{key} must be 0 or more")),
        None if args.contains_key(key) => Err(format!("{key} must be a whole number")),
        None => Ok(None),
    }
}

/// A `value` + `enabled` pair onto one node number: the new value, or `None` when
/// unchanged. `on`: whether it is on now; `current`: the value shown now.
fn switched(
    args: &Args,
    keys: (&str, &str),
    on: bool,
    current: u64,
    kept: &mut u64,
) -> Result<Option<(bool, u64)>, String> {
    let value = count(args, keys.0)?;
    let enabled = bool_arg(args, keys.1);
    if value.is_none() && enabled.is_none() {
        return Ok(None);
    }
    let value = value.unwrap_or(current);
    *kept = value;
    Ok(Some((enabled.unwrap_or(on), value)))
}

/// The automation part of `session-set` (with `queue_on`: whether the download queue
/// is being enabled, which also needs queueing on). Updates the saved values.
pub fn session_patch(
    rpc: &Rpc,
    args: &Args,
    s: &Settings,
    queue_on: bool,
) -> Result<AutoPatch, String> {
    let a = &s.auto;
    let mut sv = saved(rpc);
    let shown = session_values(rpc, s);
    let num = |k: &str| shown.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut p = AutoPatch::default();
    if args.contains_key("seedRatioLimit") || args.contains_key("seedRatioLimited") {
        let ratio = match args.get("seedRatioLimit") {
            Some(v) => v
                .as_f64()
                .filter(|r| r.is_finite() && *r >= 0.0)
                .ok_or("seedRatioLimit must be a number of 0 or more")?,
            None => shown
                .get("seedRatioLimit")
                .and_then(Value::as_f64)
                .unwrap_or(2.0),
        };
        sv.ratio = ratio;
        let on = bool_arg(args, "seedRatioLimited").unwrap_or(a.seed_ratio_limit >= 0.0);
        p.seed_ratio_limit = Some(if on { ratio } else { -1.0 });
    }
    let idle_on = a.seed_idle_limit >= 0.0;
    let keys = ("idle-seeding-limit", "idle-seeding-limit-enabled");
    if let Some((on, m)) = switched(args, keys, idle_on, num(keys.0), &mut sv.idle_minutes)? {
        p.seed_idle_limit = Some(if on { m as f64 } else { -1.0 });
    }
    let seeds_on = a.queueing_enabled && a.max_active_seeds > 0;
    let keys = ("seed-queue-size", "seed-queue-enabled");
    let mut kept = u64::from(sv.seed_queue);
    if let Some((on, n)) = switched(args, keys, seeds_on, num(keys.0), &mut kept)? {
        let n = u32::try_from(n).map_err(|_| "seed-queue-size is too large")?;
        sv.seed_queue = n;
        p.max_active_seeds = Some(if on { n } else { 0 });
        if on && n > 0 && !a.queueing_enabled {
            p.queueing_enabled = Some(true);
        }
    }
    if queue_on && !a.queueing_enabled {
        p.queueing_enabled = Some(true);
    }
    let keys = ("queue-stalled-minutes", "queue-stalled-enabled");
    let stalled_on = a.stalled_secs > 0;
    if let Some((on, m)) = switched(args, keys, stalled_on, num(keys.0), &mut sv.stalled_minutes)? {
        p.stalled_secs = Some(if on { m.saturating_mul(60) } else { 0 });
    }
    alt_patch(args, &mut p)?;
    p.check()?;
    *rpc.saved_auto.lock().unwrap_or_else(|e| e.into_inner()) = sv;
    Ok(p)
}

/// `alt-speed-*` keys.
fn alt_patch(args: &Args, p: &mut AutoPatch) -> Result<(), String> {
    if let Some(kb) = count(args, "alt-speed-down")? {
        p.alt_max_down = Some(kb.saturating_mul(KB));
    }
    if let Some(kb) = count(args, "alt-speed-up")? {
        p.alt_max_up = Some(kb.saturating_mul(KB));
    }
    p.alt_enabled = bool_arg(args, "alt-speed-enabled");
    p.alt_schedule_enabled = bool_arg(args, "alt-speed-time-enabled");
    let minute = |k: &str| -> Result<Option<u32>, String> {
        count(args, k)?
            .map(|m| u32::try_from(m).map_err(|_| format!("{k} must be minutes after midnight")))
            .transpose()
    };
    p.alt_schedule_begin = minute("alt-speed-time-begin")?;
    p.alt_schedule_end = minute("alt-speed-time-end")?;
    if let Some(d) = count(args, "alt-speed-time-day")? {
        // Bits 0 (Sunday) to 6 (Saturday), as the node keeps them.
        p.alt_schedule_days = Some(
            u8::try_from(d)
                .ok()
                .filter(|d| *d <= 0x7f)
                .ok_or("alt-speed-time-day must be a day mask from 0 to 127")?,
        );
    }
    Ok(())
}

/// The limits a torrent in mode 0 shows and mode 1 sent alone takes: (ratio, idle
/// minutes), the node's global ones, or the saved ones when those are off.
pub fn seed_defaults(rpc: &Rpc) -> (f64, f64) {
    let a = rpc.node.settings().auto;
    let sv = saved(rpc);
    let pick = |global: f64, saved: f64| if global >= 0.0 { global } else { saved };
    (
        pick(a.seed_ratio_limit, sv.ratio),
        pick(a.seed_idle_limit, sv.idle_minutes as f64),
    )
}

/// `torrent-get`'s seeding fields of a torrent whose summary carries the node's
/// per-torrent values; `d`: [`seed_defaults`].
pub fn torrent_field(s: &crate::node::Summary, d: (f64, f64), f: &str) -> Option<Value> {
    let own = &s.auto;
    Some(match f {
        "seedRatioMode" => json!(to_mode(own.ratio_limit, d.0).0),
        "seedRatioLimit" => json!(to_mode(own.ratio_limit, d.0).1),
        "seedIdleMode" => json!(to_mode(own.seed_idle_limit, d.1).0),
        "seedIdleLimit" => json!(whole(to_mode(own.seed_idle_limit, d.1).1)),
        // Stopped because a seeding limit was reached.
        "isFinished" => json!(own.stop_reason.is_some()),
        "isStalled" => json!(own.stalled),
        "secondsSeeding" => json!(own.seeding_secs),
        "labels" => json!(s.tags),
        _ => return None,
    })
}

/// `torrent-set`'s `seedRatioMode`/`seedRatioLimit` and `seedIdleMode`/`seedIdleLimit`
/// for one torrent.
pub async fn apply_limits(rpc: &Rpc, hash: InfoHash, args: &Args) -> Result<(), String> {
    let node = &rpc.node;
    let Some(s) = node.summary(hash) else {
        return Ok(());
    };
    let d = seed_defaults(rpc);
    let float = |k: &'static str| -> Result<Option<f64>, String> {
        match args.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("{k} must be a number")),
        }
    };
    let ratio = from_mode(
        int_arg(args, "seedRatioMode"),
        float("seedRatioLimit")?,
        s.auto.ratio_limit,
        d.0,
        ("seedRatioMode", "seedRatioLimit"),
    )
    .map_err(|e| e.to_string())?;
    let idle = from_mode(
        int_arg(args, "seedIdleMode"),
        float("seedIdleLimit")?,
        s.auto.seed_idle_limit,
        d.1,
        ("seedIdleMode", "seedIdleLimit"),
    )
    .map_err(|e| e.to_string())?;
    if ratio.is_none() && idle.is_none() {
        return Ok(());
    }
    if node.magnets().contains_key(&hash) {
        return Err("seeding limits cannot be set before the torrent's metadata arrives".into());
    }
    let patch = LimitsPatch {
        ratio_limit: ratio,
        seed_time_limit: None,
        seed_idle_limit: idle,
        ..LimitsPatch::default()
    };
    node.set_seed_limits(hash, patch)
        .await
        .map_err(|e| e.to_string())
}
