//! `session-get`, `session-set`, `session-stats`, `free-space` and `port-test`.
//!
//! `session-get` answers every key of Transmission 4.0's list (rpc-spec 4.1): the
//! node's own values where it has the setting, Transmission's "off" values for
//! features it lacks (blocklist, scripts, incomplete dir).
//! `session-set` changes the download dir, the speed limits (KB/s = 1000 bytes/s, as
//! Transmission's `units` say), the download queue (the node's `max_active`) and the
//! seeding, queue, stalled and alternative speed settings (`rules.rs`); a key the
//! node cannot change is refused unless it asks for the current value.
//! `version` is "4.0.6 (Shoal x.y.z)": tools read the leading Transmission version
//! to pick features, and 4.0.6 is the protocol level the node speaks.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::{bool_arg, int_arg, Args, MethodResult, Rpc};
use crate::config::SettingsPatch;
use crate::store::torrents;

/// The RPC protocol version spoken (Transmission 4.0).
pub const RPC_VERSION: i64 = 17;

/// Bytes in Transmission's speed unit (its `units.speed-bytes`).
const KB: u64 = 1000;

/// Every `session-get` key and value.
async fn values(rpc: &Rpc) -> Args {
    let node = &rpc.node;
    let s = node.settings();
    let c = node.config();
    let saved = *rpc.saved_limits.lock().unwrap_or_else(|p| p.into_inner());
    let download_dir = s.download_dir.display().to_string();
    let free = statvfs(s.download_dir.clone())
        .await
        .map_or(-1, |(f, _)| f as i64);
    let encryption = match c.encryption.as_str() {
        "require" => "required",
        "prefer" => "preferred",
        _ => "tolerated",
    };
    let kb = |bytes: u64, saved: u64| if bytes > 0 { bytes / KB } else { saved };
    let v = json!({
        "alt-speed-down": 0, "alt-speed-enabled": false, "alt-speed-time-begin": 0,
        "alt-speed-time-day": 0, "alt-speed-time-enabled": false, "alt-speed-time-end": 0,
        "alt-speed-up": 0,
        "blocklist-enabled": false, "blocklist-size": 0, "blocklist-url": "",
        "cache-size-mb": 0,
        "config-dir": c.data_dir.display().to_string(),
        "default-trackers": s.trackers.iter().map(|t| format!("{t}\n")).collect::<String>(),
        "dht-enabled": c.dht.is_some(),
        "download-dir": download_dir,
        "download-dir-free-space": free,
        "download-queue-enabled": s.max_active > 0,
        "download-queue-size": s.max_active,
        "encryption": encryption,
        "idle-seeding-limit": 0, "idle-seeding-limit-enabled": false,
        "incomplete-dir": "", "incomplete-dir-enabled": false,
        "lpd-enabled": c.lsd.is_some(),
        "peer-limit-global": 0,
        "peer-limit-per-torrent": shoal_engine::torrent::MAX_PEERS,
        "peer-port": node.session().listen_port(),
        "peer-port-random-on-start": false,
        "pex-enabled": c.pex,
        "port-forwarding-enabled": false,
    });
    let more = json!({
        "queue-stalled-enabled": false, "queue-stalled-minutes": 0,
        "rename-partial-files": false,
        "rpc-version": RPC_VERSION, "rpc-version-minimum": 14, "rpc-version-semver": "5.3.0",
        "script-torrent-added-enabled": false, "script-torrent-added-filename": "",
        "script-torrent-done-enabled": false, "script-torrent-done-filename": "",
        "script-torrent-done-seeding-enabled": false,
        "script-torrent-done-seeding-filename": "",
        "seed-queue-enabled": false, "seed-queue-size": 0,
        "seedRatioLimit": 0.0, "seedRatioLimited": false,
        "session-id": rpc.session_id,
        "speed-limit-down": kb(s.max_down, saved.0), "speed-limit-down-enabled": s.max_down > 0,
        "speed-limit-up": kb(s.max_up, saved.1), "speed-limit-up-enabled": s.max_up > 0,
        "start-added-torrents": true,
        "trash-original-torrent-files": false,
        "units": {
            "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"], "speed-bytes": KB,
            "size-units": ["kB", "MB", "GB", "TB"], "size-bytes": KB,
            "memory-units": ["KiB", "MiB", "GiB", "TiB"], "memory-bytes": 1024,
        },
        "utp-enabled": c.utp,
        "version": format!("4.0.6 (Shoal {})", env!("CARGO_PKG_VERSION")),
    });
    let mut out = Args::new();
    for part in [v, more] {
        if let Value::Object(m) = part {
            out.extend(m);
        }
    }
    out.extend(super::rules::session_values(rpc, &s));
    out
}

/// `session-get` (all keys, or those in `fields`).
pub async fn get(rpc: &Rpc, args: &Args) -> MethodResult {
    let mut all = values(rpc).await;
    if let Some(Value::Array(fields)) = args.get("fields") {
        let want: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
        all.retain(|k, _| want.contains(&k.as_str()));
    }
    Ok(all)
}

/// `session-set`: checks every key first, then applies the change at once.
pub async fn set(rpc: &Rpc, args: &Args) -> MethodResult {
    let node = &rpc.node;
    let current = values(rpc).await;
    let mut s = node.settings();
    let mut patch = SettingsPatch::default();
    let mut saved = *rpc.saved_limits.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = args.get("download-dir") {
        let d = PathBuf::from(d.as_str().unwrap_or_default());
        if !d.is_absolute() {
            return Err("download directory path is not absolute".into());
        }
        patch.download_dir = Some(d);
    }
    let down = speed(args, "speed-limit-down", s.max_down, &mut saved.0)?;
    let up = speed(args, "speed-limit-up", s.max_up, &mut saved.1)?;
    patch.max_down = (down != s.max_down).then_some(down);
    patch.max_up = (up != s.max_up).then_some(up);
    let queue_on = bool_arg(args, "download-queue-enabled").unwrap_or(s.max_active > 0);
    let size = match int_arg(args, "download-queue-size") {
        Some(n) => u32::try_from(n).map_err(|_| "download-queue-size must be 0 or more")?,
        None => s.max_active,
    };
    let max_active = if queue_on { size } else { 0 };
    patch.max_active = (max_active != s.max_active).then_some(max_active);
    let enabling = bool_arg(args, "download-queue-enabled") == Some(true) && max_active > 0;
    patch.auto = super::rules::session_patch(rpc, args, &s, enabling)?;
    for (key, value) in args {
        if CHANGEABLE.contains(&key.as_str()) || super::rules::SESSION_KEYS.contains(&key.as_str())
        {
            continue;
        }
        if let Some(now) = current.get(key) {
            if !super::actions::same(value, now) {
                return Err(format!("{key} cannot be changed through RPC: {}", why(key)));
            }
        }
    }
    *rpc.saved_limits.lock().unwrap_or_else(|p| p.into_inner()) = saved;
    s.apply(&patch);
    let p = patch.clone();
    node.store()
        .call(move |c| torrents::store_settings(c, &p))
        .await
        .map_err(|e| format!("{e:#}"))?;
    node.set_settings(s.clone());
    // The limits in effect, alternative speeds included (as `PATCH /api/settings`).
    crate::node::altspeed::apply(node, &s);
    node.schedule().await;
    Ok(Args::new())
}

/// Keys `session-set` changes.
const CHANGEABLE: &[&str] = &[
    "download-dir",
    "speed-limit-down",
    "speed-limit-down-enabled",
    "speed-limit-up",
    "speed-limit-up-enabled",
    "download-queue-enabled",
    "download-queue-size",
];

fn why(key: &str) -> &'static str {
    match key {
        "peer-port" => "the node listens on one port while it runs; set `port` in config.toml (or --port) and restart",
        "dht-enabled" | "lpd-enabled" | "pex-enabled" | "utp-enabled" | "encryption" => {
            "set it in config.toml (or its flag) and restart the node"
        }
        "session-id" | "rpc-version" | "rpc-version-minimum" | "rpc-version-semver" | "version"
        | "config-dir" | "units" | "blocklist-size" => "it is read-only",
        _ => "this node does not have that feature",
    }
}

/// The new limit in bytes/s from `KEY` (KB/s) and `KEY-enabled`. Transmission keeps a
/// limit while it is disabled; the node has one number (0 = off), so a disabled limit
/// is kept in `saved` for `session-get`.
fn speed(args: &Args, key: &str, bytes: u64, saved: &mut u64) -> Result<u64, String> {
    let enabled = bool_arg(args, &format!("{key}-enabled")).unwrap_or(bytes > 0);
    let kb = match int_arg(args, key) {
        Some(n) => u64::try_from(n).map_err(|_| format!("{key} must be 0 or more"))?,
        None if bytes > 0 => bytes / KB,
        None => *saved,
    };
    *saved = kb;
    Ok(if enabled { kb.saturating_mul(KB) } else { 0 })
}

/// `session-stats`.
pub async fn stats(rpc: &Rpc) -> MethodResult {
    let node = &rpc.node;
    let sums = node.summaries();
    let all = node.stats_of(&sums).await.map_err(|e| format!("{e:#}"))?;
    let n = |k: &str| all.get(k).and_then(Value::as_u64).unwrap_or(0);
    let active = sums
        .iter()
        .filter(|s| matches!(s.state, "downloading" | "seeding" | "metadata"))
        .count();
    let paused = sums.iter().filter(|s| s.state == "paused").count();
    let (down0, up0) = rpc.totals_at_start;
    let v = json!({
        "activeTorrentCount": active,
        "pausedTorrentCount": paused,
        "torrentCount": sums.len(),
        "downloadSpeed": n("down_rate"),
        "uploadSpeed": n("up_rate"),
        // The node counts bytes over all runs but not sessions, files or time.
        "cumulative-stats": {
            "downloadedBytes": n("downloaded"), "uploadedBytes": n("uploaded"),
            "filesAdded": 0, "sessionCount": 0, "secondsActive": 0,
        },
        "current-stats": {
            "downloadedBytes": n("downloaded").saturating_sub(down0),
            "uploadedBytes": n("uploaded").saturating_sub(up0),
            "filesAdded": 0, "sessionCount": 1, "secondsActive": node.uptime_secs(),
        },
    });
    match v {
        Value::Object(m) => Ok(m),
        _ => Ok(Args::new()),
    }
}

/// Free and total bytes of the file system holding `path` (statvfs).
async fn statvfs(path: PathBuf) -> std::io::Result<(u64, u64)> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs that
        // the call fills in; nothing else is borrowed.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let unit = st.f_frsize as u64;
        Ok((st.f_bavail as u64 * unit, st.f_blocks as u64 * unit))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// `free-space`.
pub async fn free_space(args: &Args) -> MethodResult {
    let Some(path) = args.get("path").and_then(Value::as_str) else {
        return Err("directory path argument is missing".into());
    };
    if !path.starts_with('/') {
        return Err("directory path is not absolute".into());
    }
    let (free, total) = statvfs(PathBuf::from(path))
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Args::new();
    out.insert("path".into(), json!(path));
    out.insert("size-bytes".into(), json!(free));
    out.insert("total_size".into(), json!(total));
    Ok(out)
}

/// `port-test`: Transmission asks a web service outside whether the peer port is
/// reachable; the node has no such service and will not contact a third party, so it
/// cannot tell. It answers `port-is-open: false` with an error result saying so, and
/// whether the port at least accepts connections on loopback.
pub async fn port_test(rpc: &Rpc) -> MethodResult {
    let port = rpc.node.session().listen_port();
    let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
    let listening = matches!(
        tokio::time::timeout(std::time::Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    );
    let local = if listening {
        "accepts connections on loopback"
    } else {
        "does not accept connections on loopback"
    };
    Err(format!(
        "port-test cannot tell whether peer port {port} is reachable from the internet: \
         Shoal does not ask an outside service; the port {local}"
    ))
}
