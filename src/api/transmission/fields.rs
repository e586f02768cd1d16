//! `torrent-get`: the fields of Transmission 4.0's list (docs/rpc-spec.md of 4.0.6,
//! section 3.3), in the `objects` or `table` format. A field the node has no figure
//! for gets Transmission's own "none" value (0, -1, "", [] or false as Transmission
//! uses it), never an invented one; unknown field names are skipped, as Transmission
//! does.

use base64::Engine;
use serde_json::{json, Value};
use shoal_engine::peer::TransportKind;
use shoal_engine::PeerSource;
use shoal_proto::magnet::Magnet;

use super::ids::{Selector, RECENT_SECS};
use super::view::View;
use super::{Args, MethodResult, Rpc};
use crate::store::now_secs;
use crate::store::torrents::Priority;

/// `torrent-get`.
pub fn torrent_get(rpc: &Rpc, args: &Args) -> MethodResult {
    let Some(Value::Array(fields)) = args.get("fields") else {
        return Err("no fields specified".into());
    };
    let fields: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
    let table = args.get("format").and_then(Value::as_str) == Some("table");
    let sel = Selector::parse(args.get("ids"));
    let now = now_secs();
    let (views, removed) = {
        let mut ids = rpc.ids();
        let order = super::view::hashes(&rpc.node);
        ids.sync(&order, now);
        let chosen = if sel == Selector::RecentlyActive {
            let all = synced_views(rpc, &mut ids, now);
            all.into_iter()
                .filter(|v| now - v.activity_date() <= RECENT_SECS)
                .map(|v| v.hash)
                .collect()
        } else {
            ids.select(&sel, |_| false)
        };
        let mut views = View::of(&rpc.node, &ids, &order, &chosen);
        mark_active(&mut ids, &mut views, now);
        views.sort_by_key(|v| v.id);
        (views, ids.removed_recently())
    };
    let d = super::rules::seed_defaults(rpc);
    let mut rows: Vec<Value> = Vec::with_capacity(views.len() + 1);
    let known: Vec<&str> = fields.into_iter().filter(|f| is_field(f)).collect();
    if table {
        rows.push(json!(known));
    }
    for v in &views {
        if table {
            rows.push(Value::Array(known.iter().map(|f| field(v, d, f)).collect()));
        } else {
            let o: Args = known
                .iter()
                .map(|f| (f.to_string(), field(v, d, f)))
                .collect();
            rows.push(Value::Object(o));
        }
    }
    let mut out = Args::new();
    out.insert("torrents".into(), Value::Array(rows));
    if sel == Selector::RecentlyActive {
        out.insert("removed".into(), json!(removed));
    }
    Ok(out)
}

/// Every torrent's view, after bringing the id map up to date (new torrents get ids,
/// moving ones are marked active).
pub fn synced_views(rpc: &Rpc, ids: &mut super::IdMap, now: i64) -> Vec<View> {
    let order = super::view::hashes(&rpc.node);
    ids.sync(&order, now);
    let mut views = View::of(&rpc.node, ids, &order, &order);
    mark_active(ids, &mut views, now);
    views
}

/// Records the views moving data now as active.
fn mark_active(ids: &mut super::IdMap, views: &mut [View], now: i64) {
    for v in views {
        if v.summary.down_rate > 0 || v.summary.up_rate > 0 {
            ids.touch(v.hash, now);
            v.last_active = Some(now);
        }
    }
}

/// The field names `torrent-get` answers.
const FIELDS: &[&str] = &[
    "activityDate",
    "addedDate",
    "availability",
    "bandwidthPriority",
    "comment",
    "corruptEver",
    "creator",
    "dateCreated",
    "desiredAvailable",
    "doneDate",
    "downloadDir",
    "downloadedEver",
    "downloadLimit",
    "downloadLimited",
    "editDate",
    "error",
    "errorString",
    "eta",
    "etaIdle",
    "file-count",
    "files",
    "fileStats",
    "group",
    "hashString",
    "haveUnchecked",
    "haveValid",
    "honorsSessionLimits",
    "id",
    "isFinished",
    "isPrivate",
    "isStalled",
    "labels",
    "leftUntilDone",
    "magnetLink",
    "manualAnnounceTime",
    "maxConnectedPeers",
    "metadataPercentComplete",
    "name",
    "peer-limit",
    "peers",
    "peersConnected",
    "peersFrom",
    "peersGettingFromUs",
    "peersSendingToUs",
    "percentComplete",
    "percentDone",
    "pieces",
    "pieceCount",
    "pieceSize",
    "priorities",
    "primary-mime-type",
    "queuePosition",
    "rateDownload",
    "rateUpload",
    "recheckProgress",
    "secondsDownloading",
    "secondsSeeding",
    "seedIdleLimit",
    "seedIdleMode",
    "seedRatioLimit",
    "seedRatioMode",
    "sizeWhenDone",
    "startDate",
    "status",
    "trackers",
    "trackerList",
    "trackerStats",
    "totalSize",
    "torrentFile",
    "uploadedEver",
    "uploadLimit",
    "uploadLimited",
    "uploadRatio",
    "wanted",
    "webseeds",
    "webseedsSendingToUs",
];

fn is_field(f: &str) -> bool {
    FIELDS.contains(&f)
}

/// The value of field `f` (one of [`FIELDS`]); `d`: the seeding defaults
/// ([`super::rules::seed_defaults`]).
fn field(v: &View, d: (f64, f64), f: &str) -> Value {
    super::rules::torrent_field(&v.summary, d, f)
        .or_else(|| super::speed::torrent_field(&v.summary, f))
        .or_else(|| identity(v, f))
        .or_else(|| progress(v, f))
        .or_else(|| transfer(v, f))
        .or_else(|| limits(v, f))
        .or_else(|| files(v, f))
        .or_else(|| swarm(v, f))
        .unwrap_or(Value::Null)
}

/// What the torrent is: names, dates, metainfo.
fn identity(v: &View, f: &str) -> Option<Value> {
    let meta = v.meta.as_deref();
    let s = &v.summary;
    Some(match f {
        "id" => json!(v.id),
        "name" => json!(s.name),
        "hashString" => json!(s.id),
        "addedDate" => json!(s.added_at),
        "doneDate" => json!(s.completed_at.unwrap_or(0)),
        "startDate" => json!(v.started_at.unwrap_or(0)),
        "activityDate" => json!(v.activity_date()),
        "editDate" | "manualAnnounceTime" => json!(0),
        "dateCreated" => json!(meta.and_then(|m| m.creation_date).unwrap_or(0)),
        "comment" => json!(meta.and_then(|m| m.comment.clone()).unwrap_or_default()),
        "creator" => json!(meta.and_then(|m| m.created_by.clone()).unwrap_or_default()),
        "isPrivate" => json!(s.private),
        "downloadDir" => json!(s.save_dir),
        "magnetLink" => json!(magnet_link(v)),
        "torrentFile" | "primary-mime-type" | "group" => json!(""),
        "webseeds" => json!([]),
        "error" => json!(v.error().0),
        "errorString" => json!(v.error().1),
        "status" => json!(v.status_code()),
        "queuePosition" => json!(v.queue_position()),
        "totalSize" => json!(s.size),
        "pieceCount" => json!(meta.map_or(0, |m| m.info.num_pieces())),
        "pieceSize" => json!(s.piece_size),
        "file-count" => json!(s.files),
        _ => return None,
    })
}

fn magnet_link(v: &View) -> String {
    if let Some((uri, _)) = &v.magnet {
        return uri.clone();
    }
    let mut m = Magnet::new(v.hash);
    if let Some(meta) = &v.meta {
        m.display_name = Some(meta.info.name.clone());
        m.trackers = meta.tracker_tiers().into_iter().flatten().collect();
    }
    m.to_uri()
}

/// How far along it is.
fn progress(v: &View, f: &str) -> Option<Value> {
    let s = &v.summary;
    let verified = v
        .meta
        .as_ref()
        .map_or(0, |m| crate::node::entry::have_bytes(&m.info, &v.have));
    Some(match f {
        "haveValid" => json!(verified),
        "haveUnchecked" => json!(0),
        "corruptEver" => json!(corrupt(v)),
        "percentComplete" => json!(if s.size == 0 { 0.0 } else { s.progress }),
        "percentDone" => {
            let (size, left) = v.wanted_sizes();
            json!(if size == 0 {
                if v.meta.is_some() {
                    1.0
                } else {
                    0.0
                }
            } else {
                (size - left) as f64 / size as f64
            })
        }
        "sizeWhenDone" => json!(v.wanted_sizes().0),
        "leftUntilDone" => json!(v.wanted_sizes().1),
        "desiredAvailable" => json!(desired_available(v)),
        "metadataPercentComplete" => json!(metadata_percent(v)),
        "recheckProgress" => json!(match v.status().map(|s| &s.phase) {
            Some(shoal_engine::Phase::Checking { done, total }) if *total > 0 =>
                f64::from(*done) / f64::from(*total),
            _ => 0.0,
        }),
        "eta" => json!(v.eta()),
        "etaIdle" => json!(-1),
        "pieces" => json!(pieces(&v.have)),
        _ => return None,
    })
}

/// The verified pieces as Transmission sends them: the wire bitfield (piece 0 in the
/// high bit of the first byte), base64.
fn pieces(have: &shoal_proto::wire::Bitfield) -> String {
    base64::engine::general_purpose::STANDARD.encode(have.as_bytes())
}

/// Bytes of pieces that failed their hash check in this run (each one is discarded
/// whole).
fn corrupt(v: &View) -> u64 {
    v.status()
        .map_or(0, |s| s.hash_failures.saturating_mul(v.summary.piece_size))
}

/// Bytes still wanted that connected peers have: all of them when a seed is
/// connected, else 0 (the node does not keep per-piece availability, so this is a
/// lower bound).
fn desired_available(v: &View) -> u64 {
    if v.summary.seeds > 0 {
        v.wanted_sizes().1
    } else {
        0
    }
}

fn metadata_percent(v: &View) -> f64 {
    if v.meta.is_some() {
        return 1.0;
    }
    if v.summary.pieces == 0 {
        0.0
    } else {
        f64::from(v.summary.pieces_have) / f64::from(v.summary.pieces)
    }
}

/// Rates and byte counts.
fn transfer(v: &View, f: &str) -> Option<Value> {
    let s = &v.summary;
    Some(match f {
        "rateDownload" => json!(s.down_rate),
        "rateUpload" => json!(s.up_rate),
        "downloadedEver" => json!(s.downloaded),
        "uploadedEver" => json!(s.uploaded),
        "uploadRatio" => json!(v.ratio()),
        "secondsDownloading" => json!(0),
        _ => return None,
    })
}

/// Per-torrent settings the node does not have (bandwidth priority), and the fixed
/// peer limit. Seeding limits are in `rules.rs`, speed limits in `speed.rs`.
fn limits(_v: &View, f: &str) -> Option<Value> {
    Some(match f {
        "bandwidthPriority" => json!(0),
        "honorsSessionLimits" => json!(true),
        "peer-limit" | "maxConnectedPeers" => json!(shoal_engine::torrent::MAX_PEERS),
        _ => return None,
    })
}

fn priority_number(p: Priority) -> i64 {
    match p {
        Priority::Low => -1,
        Priority::Normal => 0,
        Priority::High => 1,
    }
}

/// Files and their choices.
fn files(v: &View, f: &str) -> Option<Value> {
    let n = v.meta.as_ref().map_or(0, |m| m.info.files.len());
    let wanted = |i: usize| v.wanted.get(i).copied().unwrap_or(true);
    let prio = |i: usize| priority_number(v.priorities.get(i).copied().unwrap_or_default());
    Some(match f {
        "files" => {
            let Some(m) = &v.meta else {
                return Some(json!([]));
            };
            let done = v.file_done();
            json!(m
                .info
                .files
                .iter()
                .enumerate()
                .map(|(i, file)| json!({
                    "bytesCompleted": done.get(i).copied().unwrap_or(0),
                    "length": file.length,
                    "name": m.info.file_rel_path(file).to_string_lossy(),
                }))
                .collect::<Vec<_>>())
        }
        "fileStats" => {
            let done = v.file_done();
            json!((0..n)
                .map(|i| json!({
                    "bytesCompleted": done.get(i).copied().unwrap_or(0),
                    "wanted": wanted(i),
                    "priority": prio(i),
                }))
                .collect::<Vec<_>>())
        }
        "priorities" => json!((0..n).map(prio).collect::<Vec<_>>()),
        // Transmission 4.0 sends 0/1 here, for old clients.
        "wanted" => json!((0..n).map(|i| i64::from(wanted(i))).collect::<Vec<_>>()),
        "availability" => availability(v),
        _ => return None,
    })
}

/// Per piece: -1 when we have it, else the number of connected seeds (other peers'
/// pieces are not kept per piece by the node, so they are not counted).
fn availability(v: &View) -> Value {
    let n = v.meta.as_ref().map_or(0, |m| m.info.num_pieces());
    json!((0..n)
        .map(|p| if v.have.get(p) {
            -1
        } else {
            v.summary.seeds as i64
        })
        .collect::<Vec<_>>())
}

/// Peers and trackers.
fn swarm(v: &View, f: &str) -> Option<Value> {
    let s = &v.summary;
    Some(match f {
        "peersConnected" => json!(s.peers + s.seeds),
        "webseedsSendingToUs" => json!(0),
        "peersGettingFromUs" | "peersSendingToUs" | "peers" | "peersFrom" => peer_field(v, f),
        "trackers" | "trackerStats" | "trackerList" => super::trackers::tracker_field(v, f),
        _ => return None,
    })
}

fn peer_field(v: &View, f: &str) -> Value {
    let peers = v.run.as_ref().map(|(h, _)| h.peers()).unwrap_or_default();
    match f {
        "peersGettingFromUs" => json!(peers.iter().filter(|p| p.up_rate > 0).count()),
        "peersSendingToUs" => json!(peers.iter().filter(|p| p.down_rate > 0).count()),
        "peersFrom" => {
            let count = |src: PeerSource| peers.iter().filter(|p| p.source == src).count();
            json!({
                "fromCache": 0, "fromDht": count(PeerSource::Dht),
                "fromIncoming": count(PeerSource::Incoming), "fromLpd": count(PeerSource::Lsd),
                "fromLtep": count(PeerSource::Magnet), "fromPex": count(PeerSource::Pex),
                "fromTracker": count(PeerSource::Tracker),
            })
        }
        _ => json!(peers
            .iter()
            .map(|p| json!({
                "address": p.addr.ip().to_string(), "port": p.addr.port(),
                "clientName": p.client, "progress": p.progress,
                "clientIsChoked": p.peer_choking, "clientIsInterested": p.am_interested,
                "peerIsChoked": p.am_choking, "peerIsInterested": p.peer_interested,
                "isDownloadingFrom": p.down_rate > 0, "isUploadingTo": p.up_rate > 0,
                "isEncrypted": p.encrypted, "isIncoming": p.incoming,
                "isUTP": p.transport == TransportKind::Utp,
                "rateToClient": p.down_rate, "rateToPeer": p.up_rate,
                "flagStr": flag_str(p),
            }))
            .collect::<Vec<_>>()),
    }
}

/// Transmission's peer flags: D/d downloading from / interested in, U/u uploading to
/// / interested peer, K unchoked but not interested, ? we unchoked it but it is not
/// interested, E encrypted, T uTP, X from PEX, H from DHT, I incoming.
fn flag_str(p: &shoal_engine::PeerInfo) -> String {
    let mut s = String::new();
    if p.down_rate > 0 {
        s.push('D');
    } else if p.am_interested && p.peer_choking {
        s.push('d');
    }
    if p.up_rate > 0 {
        s.push('U');
    } else if p.peer_interested && !p.am_choking {
        s.push('u');
    }
    if !p.peer_choking && !p.am_interested {
        s.push('K');
    }
    if !p.am_choking && !p.peer_interested {
        s.push('?');
    }
    if p.encrypted {
        s.push('E');
    }
    if p.transport == TransportKind::Utp {
        s.push('T');
    }
    match p.source {
        PeerSource::Pex => s.push('X'),
        PeerSource::Dht => s.push('H'),
        _ => {}
    }
    if p.incoming {
        s.push('I');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::wire::Bitfield;

    #[test]
    fn pieces_are_a_base64_bitfield_high_bit_first() {
        let mut have = Bitfield::new(10);
        assert_eq!(pieces(&have), "AAA=");
        have.set(0);
        have.set(9);
        assert_eq!(pieces(&have), "gEA=");
    }

    /// Seeding defaults: ratio 2, idle 30 minutes.
    const D: (f64, f64) = (2.0, 30.0);

    #[test]
    fn every_field_has_a_value() {
        let summary = crate::node::Summary {
            size: 0,
            piece_size: 0,
            pieces: 0,
            files: 0,
            state: "metadata",
            tags: vec!["linux".into()],
            auto: crate::node::rules::TorrentAuto {
                ratio_limit: 1.5,
                ..Default::default()
            }
            .view(false),
            ..crate::node::Summary::sample("metadata")
        };
        let hash = shoal_proto::InfoHash([0xab; 20]);
        let v = View {
            hash,
            id: 1,
            summary,
            meta: None,
            have: Bitfield::new(0),
            wanted: Vec::new(),
            priorities: Vec::new(),
            started_at: None,
            run: None,
            magnet: Some((format!("magnet:?xt=urn:btih:{}", hash.to_hex()), Vec::new())),
            default_trackers: vec!["http://t/announce".into()],
            position: 0,
            last_active: None,
        };
        let null: Vec<&str> = FIELDS
            .iter()
            .copied()
            .filter(|f| field(&v, D, f).is_null())
            .collect();
        assert!(null.is_empty(), "{null:?}");
        assert_eq!(field(&v, D, "status"), json!(4));
        assert_eq!(field(&v, D, "seedRatioMode"), json!(1));
        assert_eq!(field(&v, D, "seedRatioLimit"), json!(1.5));
        assert_eq!(field(&v, D, "seedIdleMode"), json!(0));
        assert_eq!(field(&v, D, "seedIdleLimit"), json!(30));
        assert_eq!(field(&v, D, "labels"), json!(["linux"]));
        assert_eq!(field(&v, D, "isFinished"), json!(false));
        assert_eq!(field(&v, D, "eta"), json!(-2));
        assert_eq!(field(&v, D, "trackers")[0]["announce"], "http://t/announce");
    }
}
