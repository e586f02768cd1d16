//! What `torrent-add`, `-start`, `-stop`, `-verify`, `-remove` and `-set` do, through
//! the same node calls as `/api/torrents`.
//!
//! `torrent-add` takes `metainfo` (base64), or `filename`: a magnet link, an
//! `http://` URL (fetched by the node, at most 32 MiB, 30 s) or a `.torrent` path on
//! the node inside the folders the API may use (docs/API.md, "Folders"); `https` is
//! refused (the node has no TLS client). `torrent-set` changes file choices and
//! priorities, seeding limits (`rules.rs`), speed limits (`speed.rs`), labels (the
//! node's tags) and the queue position; what the node does not have (location,
//! bandwidth priority, ...) is refused unless it asks for what is already the case.

use std::path::PathBuf;

use base64::Engine;
use serde_json::{json, Value};
use shoal_proto::InfoHash;

use super::ids::Selector;
use super::{bool_arg, Args, MethodResult, Rpc};
use crate::node::{AddError, AddRequest};
use crate::store::now_secs;
use crate::store::torrents::Priority;

/// Largest `.torrent` fetched from a URL or read from a path.
const MAX_TORRENT: u64 = 32 << 20;

/// The torrents `args["ids"]` names, after syncing the id map.
fn selected(rpc: &Rpc, args: &Args) -> Vec<InfoHash> {
    let now = now_secs();
    let sel = Selector::parse(args.get("ids"));
    let mut ids = rpc.ids();
    if sel != Selector::RecentlyActive {
        // Numbers and hashes need no views: syncing the map is enough.
        ids.sync(&super::view::hashes(&rpc.node), now);
        return ids.select(&sel, |_| false);
    }
    let views = super::fields::synced_views(rpc, &mut ids, now);
    ids.select(&sel, |h| {
        views
            .iter()
            .any(|v| v.hash == *h && now - v.activity_date() <= super::ids::RECENT_SECS)
    })
}

fn failed(e: anyhow::Error) -> String {
    format!("{e:#}")
}

pub async fn start(rpc: &Rpc, args: &Args) -> MethodResult {
    for h in selected(rpc, args) {
        rpc.node.resume(h).await.map_err(failed)?;
    }
    Ok(Args::new())
}

pub async fn stop(rpc: &Rpc, args: &Args) -> MethodResult {
    for h in selected(rpc, args) {
        rpc.node.pause(h).await.map_err(failed)?;
    }
    Ok(Args::new())
}

pub async fn verify(rpc: &Rpc, args: &Args) -> MethodResult {
    for h in selected(rpc, args) {
        // A magnet has no data to verify yet; Transmission skips it too.
        if rpc.node.magnets().contains_key(&h) {
            continue;
        }
        rpc.node.recheck(h).await.map_err(failed)?;
    }
    Ok(Args::new())
}

/// `torrent-reannounce`: a tracker round now for each running torrent asked for; the
/// others (stopped, queued, magnets) are skipped, as Transmission skips stopped ones.
pub fn reannounce(rpc: &Rpc, args: &Args) -> MethodResult {
    for h in selected(rpc, args) {
        crate::api::torrents::reannounce_now(&rpc.node, h);
    }
    Ok(Args::new())
}

pub async fn remove(rpc: &Rpc, args: &Args) -> MethodResult {
    let delete = bool_arg(args, "delete-local-data").unwrap_or(false);
    for h in selected(rpc, args) {
        rpc.node.remove(h, delete).await.map_err(failed)?;
    }
    Ok(Args::new())
}

/// `torrent-add`.
pub async fn add(rpc: &Rpc, args: &Args) -> MethodResult {
    let node = &rpc.node;
    let paused = bool_arg(args, "paused").unwrap_or(false);
    let save_dir = match args.get("download-dir").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => Some(
            crate::api::roots::save_dir_within(node, PathBuf::from(d))
                .await
                .map_err(|e| e.message)?,
        ),
        _ => None,
    };
    let filename = args.get("filename").and_then(Value::as_str).map(str::trim);
    let metainfo = args.get("metainfo").and_then(Value::as_str);
    let result = match (metainfo, filename) {
        (Some(b64), _) => {
            let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
            let torrent = base64::engine::general_purpose::STANDARD
                .decode(clean)
                .map_err(|_| "invalid or corrupt torrent file".to_string())?;
            node.add(request(torrent, save_dir, paused)).await
        }
        (None, Some(f)) if f.starts_with("magnet:") => node.add_magnet(f, save_dir, paused).await,
        (None, Some(f)) => {
            let torrent = load(rpc, f).await?;
            node.add(request(torrent, save_dir, paused)).await
        }
        (None, None) => return Err("no filename or metainfo specified".into()),
    };
    let (key, hash) = match result {
        Ok(h) => ("torrent-added", h),
        Err(AddError::Duplicate(h)) => ("torrent-duplicate", h),
        Err(AddError::Invalid(_)) => return Err("invalid or corrupt torrent file".into()),
        Err(AddError::Internal(e)) => return Err(failed(e)),
    };
    if key == "torrent-added" {
        apply_files(rpc, hash, args).await?;
    }
    let id = {
        let mut ids = rpc.ids();
        ids.sync(&super::view::hashes(node), now_secs());
        ids.id(&hash)
    };
    let name = node.summary(hash).map(|s| s.name).unwrap_or_default();
    let mut out = Args::new();
    out.insert(
        key.into(),
        json!({"id": id, "name": name, "hashString": hash.to_hex()}),
    );
    Ok(out)
}

fn request(torrent: Vec<u8>, save_dir: Option<PathBuf>, paused: bool) -> AddRequest {
    AddRequest {
        torrent,
        save_dir,
        paused,
        complete: false,
        peers: Vec::new(),
        wanted: None,
    }
}

/// The `.torrent` a `filename` names: fetched over `http://`, or read from a path
/// inside the API's folders.
async fn load(rpc: &Rpc, f: &str) -> Result<Vec<u8>, String> {
    if f.starts_with("https://") {
        return Err(format!(
            "cannot fetch {f}: Shoal has no TLS client; download the .torrent and send it \
             as metainfo"
        ));
    }
    if f.starts_with("http://") {
        let url = f.to_string();
        return tokio::task::spawn_blocking(move || fetch_url(&url))
            .await
            .map_err(|e| e.to_string())?;
    }
    let path = PathBuf::from(f);
    let roots = crate::api::roots::roots(&rpc.node).await;
    tokio::task::spawn_blocking(move || {
        let canon = path
            .canonicalize()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if crate::api::roots::inside(&canon, &roots).is_none() {
            return Err(crate::api::roots::outside(&path, &roots).message);
        }
        let meta = std::fs::metadata(&canon).map_err(|e| e.to_string())?;
        if meta.len() > MAX_TORRENT {
            return Err("invalid or corrupt torrent file".into());
        }
        std::fs::read(&canon).map_err(|e| format!("cannot read {}: {e}", path.display()))
    })
    .await
    .map_err(|e| e.to_string())?
}

fn fetch_url(url: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let resp = ureq::get(url)
        .timeout(std::time::Duration::from_secs(30))
        .call()
        .map_err(|e| format!("cannot fetch {url}: {e}"))?;
    let mut body = Vec::new();
    resp.into_reader()
        .take(MAX_TORRENT + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("cannot fetch {url}: {e}"))?;
    if body.len() as u64 > MAX_TORRENT {
        return Err("invalid or corrupt torrent file".into());
    }
    Ok(body)
}

/// File choices of `torrent-add` or `torrent-set`: `files-wanted`, `files-unwanted`,
/// `priority-high`/`-normal`/`-low` (an empty list means every file).
async fn apply_files(rpc: &Rpc, hash: InfoHash, args: &Args) -> Result<(), String> {
    let count = rpc
        .node
        .torrents()
        .get(&hash)
        .map(|e| e.meta.info.files.len());
    let Some(count) = count else {
        // A magnet without metadata has no files to choose yet.
        return Ok(());
    };
    let lists: [(&str, Option<bool>, Option<Priority>); 5] = [
        ("files-wanted", Some(true), None),
        ("files-unwanted", Some(false), None),
        ("priority-high", None, Some(Priority::High)),
        ("priority-normal", None, Some(Priority::Normal)),
        ("priority-low", None, Some(Priority::Low)),
    ];
    let mut changes = Vec::new();
    for (key, wanted, priority) in lists {
        let Some(list) = args.get(key) else { continue };
        let Some(list) = list.as_array() else {
            return Err(format!("{key} must be a list of file indices"));
        };
        let indices: Vec<usize> = if list.is_empty() {
            (0..count).collect()
        } else {
            let mut v = Vec::with_capacity(list.len());
            for i in list {
                match i.as_u64().and_then(|i| usize::try_from(i).ok()) {
                    Some(i) if i < count => v.push(i),
                    _ => return Err("file index out of range".into()),
                }
            }
            v
        };
        changes.extend(indices.into_iter().map(|i| (i, wanted, priority)));
    }
    for (i, wanted, priority) in changes {
        rpc.node
            .set_file(hash, i, wanted, priority)
            .await
            .map_err(failed)?;
    }
    Ok(())
}

/// `torrent-set` keys the node cannot change, with the value it reports for each:
/// setting that value again is accepted (clients send whole forms).
fn fixed_value(key: &str) -> Option<(Value, &'static str)> {
    Some(match key {
        "honorsSessionLimits" => (
            json!(true),
            "a torrent's own limits apply on top of the session's, never instead",
        ),
        "bandwidthPriority" => (json!(0), "bandwidth priorities are not supported"),
        "group" => (json!(""), "bandwidth groups are not supported"),
        "peer-limit" => (
            json!(shoal_engine::torrent::MAX_PEERS),
            "the peer limit per torrent is fixed",
        ),
        "location" => (json!(null), "torrents cannot be moved by this node"),
        "trackerAdd" | "trackerRemove" | "trackerReplace" | "trackerList" => {
            (json!(null), "tracker lists cannot be edited by this node")
        }
        _ => return None,
    })
}

/// Whether `given` asks for `current` (numbers compared as numbers).
pub(super) fn same(given: &Value, current: &Value) -> bool {
    match (given.as_f64(), current.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => given == current || (given.as_bool() == Some(false) && current == &json!(false)),
    }
}

/// `torrent-set`: checks the keys the node cannot change, then applies file choices,
/// seeding limits, labels and the queue position to each torrent.
pub async fn set(rpc: &Rpc, args: &Args) -> MethodResult {
    for (key, value) in args {
        if let Some((current, why)) = fixed_value(key) {
            if !same(value, &current) {
                return Err(format!("{key}: {why}"));
            }
        }
    }
    let labels = labels_arg(args)?;
    let chosen = selected(rpc, args);
    for h in &chosen {
        apply_files(rpc, *h, args).await?;
        super::rules::apply_limits(rpc, *h, args).await?;
        super::speed::apply(rpc, *h, args).await?;
        if let Some(l) = &labels {
            rpc.node
                .set_tags(*h, l)
                .await
                .map_err(|e| format!("labels: {e}"))?;
        }
    }
    if let Some(pos) = super::int_arg(args, "queuePosition") {
        let to = usize::try_from(pos).map_err(|_| "queuePosition must be 0 or more")?;
        // Transmission places each in turn: the last one ends up at `to`.
        rpc.node
            .queue_reorder(|o| {
                for h in &chosen {
                    super::modes::place(o, *h, to);
                }
            })
            .await
            .map_err(failed)?;
    }
    Ok(Args::new())
}

/// `labels`: Transmission's labels are the node's tags (a torrent's whole set).
fn labels_arg(args: &Args) -> Result<Option<Vec<String>>, String> {
    let Some(v) = args.get("labels") else {
        return Ok(None);
    };
    let list = v.as_array().ok_or("labels must be a list of strings")?;
    let mut out = Vec::with_capacity(list.len());
    for l in list {
        let l = l.as_str().ok_or("labels must be a list of strings")?.trim();
        if !l.is_empty() && !out.iter().any(|x: &String| x == l) {
            out.push(l.to_string());
        }
    }
    Ok(Some(out))
}

/// `queue-move-top`/`-up`/`-down`/`-bottom` on the node's queue. Transmission moves
/// queue positions whether or not its queues are enabled, so this does too.
pub async fn queue_move(rpc: &Rpc, method: &str, args: &Args) -> MethodResult {
    let mv = super::modes::Move::parse(method).ok_or("method name not recognized")?;
    let chosen = selected(rpc, args);
    rpc.node
        .queue_reorder(|o| super::modes::apply(o, &chosen, mv))
        .await
        .map_err(failed)?;
    Ok(Args::new())
}
