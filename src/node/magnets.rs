//! Torrents added by magnet link before their metadata is known.
//!
//! A magnet whose `.torrent` a catalog holds is added at once, as before. Otherwise it
//! waits here, in state `metadata`, while the engine fetches the info dictionary from
//! peers (BEP 9: the link's `x.pe`, its trackers, the DHT). It can be paused (the
//! fetch stops) or removed. Its row in `magnets` keeps it across restarts. When the
//! dictionary arrives, the torrent is added like a `.torrent` with the link's trackers
//! (one tier each), the peers met on the way are dialled first, and the row goes.

use std::collections::HashMap;
use std::path::PathBuf;

use shoal_engine::magnet::FetchControl;
use shoal_proto::magnet::Magnet;
use shoal_proto::metainfo::Metainfo;
use shoal_proto::InfoHash;

use super::entry::Summary;
use super::lifecycle::{AddError, AddRequest};
use super::Node;
use crate::store::magnets::{self, MagnetRow};
use crate::store::now_secs;

/// A magnet waiting for its metadata.
pub struct Pending {
    /// The parsed link.
    pub magnet: Magnet,
    /// The link as given.
    pub uri: String,
    /// Where the data will go.
    pub save_dir: PathBuf,
    /// Paused by the user: no fetch runs.
    pub paused: bool,
    /// Unix seconds.
    pub added_at: i64,
    /// The fetch, while one runs.
    pub fetch: Option<FetchControl>,
}

impl Pending {
    /// The API summary: no size or pieces yet.
    pub fn summary(&self) -> Summary {
        let p = self.fetch.as_ref().map(FetchControl::progress);
        let (got, total) = p.as_ref().map_or((0, 0), |p| p.pieces);
        let hex = self.magnet.info_hash.to_hex();
        Summary {
            name: self
                .magnet
                .display_name
                .clone()
                .unwrap_or_else(|| hex.clone()),
            id: hex,
            size: 0,
            state: if self.paused { "paused" } else { "metadata" },
            progress: 0.0,
            down_rate: 0,
            up_rate: 0,
            downloaded: 0,
            uploaded: 0,
            ratio: 0.0,
            peers: p.as_ref().map_or(0, |p| p.connected),
            seeds: 0,
            swarm_seeders: None,
            swarm_leechers: None,
            eta_secs: None,
            added_at: self.added_at,
            completed_at: None,
            save_dir: self.save_dir.display().to_string(),
            error: None,
            role: "leecher",
            private: false,
            piece_size: 0,
            pieces: total as u32,
            pieces_have: got as u32,
            files: 0,
            category: None,
            tags: Vec::new(),
            auto: super::rules::TorrentAuto::default().view(false),
            order: Default::default(),
            max_down: 0,
            max_up: 0,
        }
    }

    fn row(&self) -> MagnetRow {
        MagnetRow {
            info_hash: self.magnet.info_hash.to_hex(),
            uri: self.uri.clone(),
            save_dir: self.save_dir.clone(),
            paused: self.paused,
            added_at: self.added_at,
        }
    }
}

impl Node {
    pub(crate) fn magnets(&self) -> std::sync::MutexGuard<'_, HashMap<InfoHash, Pending>> {
        self.inner()
            .magnets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a magnet link: from a catalog that holds its `.torrent` when one does,
    /// otherwise in state `metadata` until peers give its info dictionary.
    pub async fn add_magnet(
        &self,
        uri: &str,
        save_dir: Option<PathBuf>,
        paused: bool,
    ) -> Result<InfoHash, AddError> {
        let magnet =
            Magnet::parse(uri).map_err(|e| AddError::Invalid(format!("bad magnet link: {e}")))?;
        let hash = magnet.info_hash;
        if self.is_known(hash) {
            return Err(AddError::Duplicate(hash));
        }
        if let Ok(torrent) = self.fetch(&hash.to_hex(), &magnet.trackers).await {
            let req = AddRequest {
                peers: Vec::new(),
                wanted: None,
                torrent,
                save_dir,
                paused,
                complete: false,
            };
            return self.add(req).await;
        }
        let _ops = self.inner().ops.lock().await;
        if self.is_known(hash) {
            return Err(AddError::Duplicate(hash));
        }
        let pending = Pending {
            magnet,
            uri: uri.trim().to_string(),
            save_dir: save_dir.unwrap_or_else(|| self.settings().download_dir),
            paused,
            added_at: now_secs(),
            fetch: None,
        };
        let row = pending.row();
        self.store()
            .call(move |c| magnets::upsert(c, &row))
            .await
            .map_err(AddError::Internal)?;
        self.magnets().insert(hash, pending);
        if !paused {
            self.start_fetch(hash);
        }
        Ok(hash)
    }

    /// The torrent or magnet is in the node.
    pub(crate) fn is_known(&self, hash: InfoHash) -> bool {
        self.torrents().contains_key(&hash) || self.magnets().contains_key(&hash)
    }

    /// Lists the stored magnets and starts the fetches of the active ones.
    pub(crate) async fn restore_magnets(&self) {
        let rows = match self.store().call(|c| magnets::load_all(c)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot read the stored magnets: {e:#}");
                return;
            }
        };
        for row in rows {
            let magnet = match Magnet::parse(&row.uri) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(id = %row.info_hash, "stored magnet is unreadable, skipped: {e}");
                    continue;
                }
            };
            let hash = magnet.info_hash;
            let pending = Pending {
                magnet,
                uri: row.uri,
                save_dir: row.save_dir,
                paused: row.paused,
                added_at: row.added_at,
                fetch: None,
            };
            self.magnets().insert(hash, pending);
            if !row.paused {
                self.start_fetch(hash);
            }
        }
    }

    fn start_fetch(&self, hash: InfoHash) {
        let mut map = self.magnets();
        let Some(p) = map.get_mut(&hash) else { return };
        if p.fetch.is_some()
            || self
                .inner()
                .closing
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let mut fetch = self.session().fetch_metadata(&p.magnet);
        p.fetch = Some(fetch.control());
        let node = self.clone();
        let cancel = self.inner().cancel.clone();
        self.spawn(async move {
            let r = tokio::select! {
                r = fetch.wait() => r,
                _ = cancel.cancelled() => {
                    fetch.cancel();
                    return;
                }
            };
            if let Ok(fetched) = r {
                node.metadata_arrived(hash, fetched).await;
            }
        });
    }

    async fn metadata_arrived(&self, hash: InfoHash, fetched: shoal_engine::magnet::Fetched) {
        let pending = {
            let _ops = self.inner().ops.lock().await;
            let Some(p) = self.magnets().remove(&hash) else {
                return; // removed while the last piece came
            };
            let hex = hash.to_hex();
            if let Err(e) = self.store().call(move |c| magnets::delete(c, &hex)).await {
                tracing::warn!("cannot forget the fetched magnet {hash}: {e:#}");
            }
            p
        };
        let tiers = pending
            .magnet
            .trackers
            .iter()
            .map(|t| vec![t.clone()])
            .collect();
        let meta = match Metainfo::from_info_bytes(&fetched.info_bytes, tiers) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(%hash, "the fetched metadata is not a valid torrent: {e}");
                return;
            }
        };
        let req = AddRequest {
            torrent: meta.to_bytes(),
            save_dir: Some(pending.save_dir),
            paused: false,
            complete: false,
            wanted: pending.magnet.wanted_files(meta.info.files.len()),
            peers: fetched.peers,
        };
        match self.add(req).await {
            Ok(_) => {
                tracing::info!(%hash, name = %meta.info.name, "metadata received; downloading")
            }
            Err(e) => tracing::warn!(%hash, "cannot add the torrent of a fetched magnet: {e}"),
        }
    }

    /// Pauses, resumes or removes a pending magnet; false when `hash` is not one.
    pub(crate) async fn magnet_op(&self, hash: InfoHash, op: MagnetOp) -> anyhow::Result<bool> {
        let _ops = self.inner().ops.lock().await;
        let row = {
            let mut map = self.magnets();
            let Some(p) = map.get_mut(&hash) else {
                return Ok(false);
            };
            if let Some(f) = p.fetch.take() {
                f.cancel();
            }
            match op {
                MagnetOp::Pause => p.paused = true,
                MagnetOp::Resume => p.paused = false,
                MagnetOp::Remove => {
                    map.remove(&hash);
                }
            }
            map.get(&hash).map(Pending::row)
        };
        let hex = hash.to_hex();
        match row {
            Some(row) => self.store().call(move |c| magnets::upsert(c, &row)).await?,
            None => self.store().call(move |c| magnets::delete(c, &hex)).await?,
        }
        if op == MagnetOp::Resume {
            self.start_fetch(hash);
        }
        Ok(true)
    }

    /// Summaries of the pending magnets.
    pub(crate) fn magnet_summaries(&self) -> Vec<(i64, Summary)> {
        let map = self.magnets();
        map.values().map(|p| (p.added_at, p.summary())).collect()
    }
}

/// What to do to a pending magnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MagnetOp {
    Pause,
    Resume,
    Remove,
}
