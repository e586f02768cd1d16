//! Bringing the stored torrents back at start: every torrent is listed before the API
//! serves (paused or failed as stored, active ones as `checking`), then active ones are
//! started in the background through the normal queue. Files whose size and modification time match the resume
//! record are trusted; others are hashed by the engine; missing ones put the torrent
//! into the error state.

use std::sync::Arc;

use shoal_proto::metainfo::Metainfo;
use shoal_proto::wire::Bitfield;

use super::entry::Entry;
use super::Node;
use crate::store::options;
use crate::store::torrents::{self, Intent, Priority};

/// Lists the stored torrents (before the API serves), without starting them.
pub(crate) async fn load(node: &Node) {
    let rows = match node.store().call(|c| torrents::load_all(c)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot read the stored torrents: {e:#}");
            return;
        }
    };
    let orders = match node.store().call(|c| options::load_orders(c)).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!("cannot read the torrents' download order; using rarest first: {e:#}");
            Default::default()
        }
    };
    let speeds = match node
        .store()
        .call(|c| crate::store::speed::load_all(c))
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot read the torrents' own speed limits; none apply: {e:#}");
            Default::default()
        }
    };
    let started = std::time::Instant::now();
    let count = rows.len();
    {
        let mut map = node.torrents();
        for (row, resume) in rows {
            let meta = match Metainfo::from_bytes(&row.metainfo) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(id = %row.info_hash, "stored torrent is unreadable, skipped: {e}");
                    continue;
                }
            };
            let n = meta.info.num_pieces();
            let files = meta.info.files.len();
            let have = resume
                .as_ref()
                .and_then(|r| Bitfield::from_bytes(&r.pieces, n).ok())
                .unwrap_or_else(|| Bitfield::new(n));
            let restoring = row.intent == Intent::Active && row.error.is_none();
            let entry = Entry {
                torrent_bytes: Arc::new(row.metainfo),
                save_dir: row.save_dir,
                intent: row.intent,
                error: row.error,
                added_at: row.added_at,
                started_at: row.started_at,
                completed_at: row.completed_at,
                wanted: row
                    .wanted
                    .filter(|w| w.len() == files)
                    .unwrap_or_else(|| vec![true; files]),
                priorities: row
                    .priorities
                    .filter(|p| p.len() == files)
                    .unwrap_or_else(|| vec![Priority::Normal; files]),
                have,
                resume,
                downloaded: row.downloaded,
                uploaded: row.uploaded,
                recheck: false,
                starting: false,
                restoring,
                run: None,
                pending_peers: Vec::new(),
                auto: Default::default(),
                order: orders.get(&row.info_hash).copied().unwrap_or_default(),
                speed: speeds.get(&row.info_hash).copied().unwrap_or_default(),
                meta: Arc::new(meta),
            };
            map.insert(entry.meta.info_hash, entry);
        }
    }
    tracing::info!(count, elapsed = ?started.elapsed(), "torrents listed");
}

/// Starts the active stored torrents through the queue, in the background.
pub(crate) async fn start(node: Node) {
    let started = std::time::Instant::now();
    node.schedule().await;
    for e in node.torrents().values_mut() {
        e.restoring = false;
    }
    tracing::info!(elapsed = ?started.elapsed(), "torrents restored");
}
