//! Saving a torrent's resume data (verified pieces, file stamps, counters), from its
//! monitor while pieces arrive and when its run stops.

use shoal_proto::InfoHash;

use super::durable::{files_to_sync, sync_files};
use super::Node;
use crate::store::torrents::{self, file_stamps, ResumeRecord};

/// Writes the torrent's verified pieces, file stamps and counters. Files holding pieces
/// claimed for the first time are flushed to disk before (see [`super::durable`]); if
/// that fails, nothing is saved and the last record stays.
///
/// The file stamps are taken before the bitfield. A restart trusts the bitfield only
/// while every stamp matches, so a stamp must not reflect a write the bitfield lacks:
/// taken after it (and after the flush), they covered the pieces verified meanwhile,
/// and a `kill -9` before the next write made the restart trust a record without them,
/// losing verified pieces. Taken before, a piece written later changes its file's
/// mtime and the restart hashes the data (only a write within the same clock tick as
/// the stamp goes unnoticed). Pieces the bitfield claims were written before it, so
/// it never claims data that was not there.
pub(crate) async fn save_resume(node: &Node, hash: InfoHash) {
    let Some((dir, meta)) = node
        .torrents()
        .get(&hash)
        .map(|e| (e.save_dir.clone(), e.meta.clone()))
    else {
        return;
    };
    let (d, m) = (dir.clone(), meta.clone());
    let Ok(stamps) = tokio::task::spawn_blocking(move || file_stamps(&d, &m.info)).await else {
        return;
    };
    let Some((have, down, up, old)) = node.torrents().get(&hash).map(|e| {
        let (d, u) = e.counters();
        let old = e.resume.as_ref().map(|r| r.pieces.clone());
        (e.current_have(), d, u, old)
    }) else {
        return;
    };
    let files = files_to_sync(&meta.info, old.as_deref(), &have);
    if !files.is_empty() {
        let (d, m) = (dir.clone(), meta.clone());
        let synced = tokio::task::spawn_blocking(move || sync_files(&d, &m.info, &files)).await;
        if let Err(e) = synced.map_err(std::io::Error::other).and_then(|r| r) {
            tracing::warn!(torrent = %hash, "resume data not saved: {e}");
            return;
        }
    }
    let hex = hash.to_hex();
    let saved = node
        .store()
        .call(move |c| {
            let record = ResumeRecord {
                pieces: have.as_bytes().to_vec(),
                files: stamps,
            };
            torrents::save_resume(c, &hex, &record, down, up)?;
            Ok(record)
        })
        .await;
    match saved {
        Ok(record) => {
            if let Some(e) = node.torrents().get_mut(&hash) {
                e.resume = Some(record);
            }
        }
        Err(e) => tracing::warn!("cannot save resume data: {e:#}"),
    }
}
