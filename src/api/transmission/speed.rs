//! A torrent's own speed limits over RPC: `downloadLimit`/`downloadLimited` and
//! `uploadLimit`/`uploadLimited` (kB/s = 1000 bytes/s) onto the node's per-torrent
//! `max_down`/`max_up` (bytes/s, 0 none; `crate::node::speed`).
//!
//! Transmission keeps a limit while `-Limited` is off; the node keeps one number, so
//! a limit sent alone for an unlimited torrent is refused (transmission-remote's
//! `-d`/`-u` send both) and an unlimited torrent shows a limit of 0.

use serde_json::{json, Value};
use shoal_proto::InfoHash;

use super::{bool_arg, int_arg, Args, Rpc};

/// Bytes in Transmission's speed unit.
const KB: u64 = 1000;

/// `torrent-get`'s speed limit fields from the node's summary.
pub fn torrent_field(s: &crate::node::Summary, f: &str) -> Option<Value> {
    Some(match f {
        "downloadLimit" => json!(s.max_down / KB),
        "downloadLimited" => json!(s.max_down > 0),
        "uploadLimit" => json!(s.max_up / KB),
        "uploadLimited" => json!(s.max_up > 0),
        _ => return None,
    })
}

/// The new limit in bytes/s for one direction, from `key` (kB/s) and `key`+`ed`;
/// `None`: unchanged. `current`: bytes/s now (0 none).
pub fn new_limit(
    limit: Option<i64>,
    limited: Option<bool>,
    current: u64,
    key: &str,
) -> Result<Option<u64>, String> {
    let kb = limit
        .map(|n| u64::try_from(n).map_err(|_| format!("{key} must be 0 or more")))
        .transpose()?;
    let zero = || {
        format!(
            "{key} 0 would stop the torrent's transfer: stop the torrent instead, or send \
             {key}ed false for no limit"
        )
    };
    let bytes = match (limited, kb) {
        (None, None) => return Ok(None),
        (Some(false), _) => 0,
        (Some(true), None) if current > 0 => current,
        (Some(true), None) => return Err(format!("{key}ed true needs a {key}")),
        (Some(true), Some(0)) => return Err(zero()),
        (Some(true), Some(kb)) => kb.saturating_mul(KB),
        (None, Some(0)) if current > 0 => return Err(zero()),
        // The value an unlimited torrent shows, sent back with a whole form.
        (None, Some(0)) => return Ok(None),
        (None, Some(kb)) if current > 0 => kb.saturating_mul(KB),
        (None, Some(_)) => {
            return Err(format!(
                "{key} alone cannot be kept for a torrent without a limit: this node stores \
                 one number per torrent; send {key}ed true with it"
            ))
        }
    };
    Ok((bytes != current).then_some(bytes))
}

/// `torrent-set`'s speed limit keys for one torrent.
pub async fn apply(rpc: &Rpc, hash: InfoHash, args: &Args) -> Result<(), String> {
    let Some(s) = rpc.node.summary(hash) else {
        return Ok(());
    };
    let down = new_limit(
        int_arg(args, "downloadLimit"),
        bool_arg(args, "downloadLimited"),
        s.max_down,
        "downloadLimit",
    )?;
    let up = new_limit(
        int_arg(args, "uploadLimit"),
        bool_arg(args, "uploadLimited"),
        s.max_up,
        "uploadLimit",
    )?;
    if down.is_none() && up.is_none() {
        return Ok(());
    }
    if rpc.node.magnets().contains_key(&hash) {
        return Err("speed limits cannot be set before the torrent's metadata arrives".into());
    }
    rpc.node
        .set_speed_limits(hash, up, down)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "downloadLimit";

    #[test]
    fn limits_and_switches_map_onto_one_number() {
        assert_eq!(new_limit(None, None, 0, K), Ok(None));
        assert_eq!(new_limit(Some(100), Some(true), 0, K), Ok(Some(100_000)));
        assert_eq!(new_limit(None, Some(false), 100_000, K), Ok(Some(0)));
        assert_eq!(new_limit(Some(50), Some(false), 100_000, K), Ok(Some(0)));
        assert_eq!(new_limit(Some(50), None, 100_000, K), Ok(Some(50_000)));
        assert_eq!(new_limit(None, Some(true), 100_000, K), Ok(None));
        assert_eq!(new_limit(Some(0), None, 0, K), Ok(None));
        assert!(new_limit(Some(50), None, 0, K).is_err());
        assert!(new_limit(None, Some(true), 0, K).is_err());
        assert!(new_limit(Some(0), Some(true), 0, K).is_err());
        assert!(new_limit(Some(-1), Some(true), 0, K).is_err());
    }
}
