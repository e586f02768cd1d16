//! What users do to torrents: add, pause, resume, recheck, remove, choose files.
//!
//! Every change runs under `Inner::ops`, so "is it running? then stop it" cannot race
//! another request. Starting and stopping runs and the `max_active` queue are in
//! [`super::runs`]; completion and errors reported by the engine in
//! [`super::outcome`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use shoal_engine::PeerSource;
use shoal_proto::metainfo::Metainfo;
use shoal_proto::wire::Bitfield;
use shoal_proto::InfoHash;

use super::entry::Entry;
use super::magnets::MagnetOp;
use super::runs::{schedule_locked, stop_run};
use super::Node;
use crate::store::now_secs;
use crate::store::records::add_history;
use crate::store::torrents::{self, file_stamps, Intent, Priority, ResumeRecord, TorrentRow};

/// A torrent to add.
pub struct AddRequest {
    /// The `.torrent` bytes.
    pub torrent: Vec<u8>,
    /// Where the data goes (default: the download dir).
    pub save_dir: Option<PathBuf>,
    /// Add without starting.
    pub paused: bool,
    /// The data is known to be complete and verified (a share just hashed).
    pub complete: bool,
    /// Peers to dial when it starts (learnt while fetching a magnet's metadata).
    pub peers: Vec<(SocketAddr, PeerSource)>,
    /// Files to download (a magnet's `so`); `None`: all.
    pub wanted: Option<Vec<bool>>,
}

/// Why a torrent was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// Not a valid `.torrent`.
    #[error("not a valid .torrent: {0}")]
    Invalid(String),
    /// Already added.
    #[error("torrent {0} is already added")]
    Duplicate(InfoHash),
    /// The database failed.
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

impl Node {
    /// Adds a torrent and starts it (or queues it).
    pub async fn add(&self, mut req: AddRequest) -> Result<InfoHash, AddError> {
        // Parsing hashes the info dict (a .torrent may be 32 MiB): off the runtime.
        let bytes = std::mem::take(&mut req.torrent);
        let (bytes, meta) = tokio::task::spawn_blocking(move || {
            let meta = Metainfo::from_bytes(&bytes);
            (bytes, meta)
        })
        .await
        .map_err(|e| AddError::Internal(e.into()))?;
        req.torrent = bytes;
        let meta = meta.map_err(|e| AddError::Invalid(e.to_string()))?;
        let hash = meta.info_hash;
        let _ops = self.inner().ops.lock().await;
        if self.torrents().contains_key(&hash) {
            return Err(AddError::Duplicate(hash));
        }
        // The .torrent of a magnet still waiting for its metadata supersedes it.
        let superseded = self.magnets().remove(&hash);
        if let Some(p) = superseded {
            if let Some(f) = p.fetch {
                f.cancel();
            }
            let hex = hash.to_hex();
            let _ = self
                .store()
                .call(move |c| crate::store::magnets::delete(c, &hex))
                .await;
        }
        let n = meta.info.num_pieces();
        let files = meta.info.files.len();
        let now = now_secs();
        let row = TorrentRow {
            info_hash: hash.to_hex(),
            name: meta.info.name.clone(),
            metainfo: req.torrent.clone(),
            save_dir: req.save_dir.unwrap_or_else(|| self.settings().download_dir),
            intent: if req.paused {
                Intent::Paused
            } else {
                Intent::Active
            },
            error: None,
            added_at: now,
            started_at: None,
            completed_at: req.complete.then_some(now),
            wanted: req.wanted.clone().filter(|w| w.len() == files),
            priorities: None,
            downloaded: 0,
            uploaded: 0,
        };
        // A share was hashed just now: its piece states are known, stamp the files.
        let resume = if req.complete {
            let (dir, m) = (row.save_dir.clone(), meta.clone());
            let files = tokio::task::spawn_blocking(move || file_stamps(&dir, &m.info))
                .await
                .map_err(|e| AddError::Internal(e.into()))?;
            Some(ResumeRecord {
                pieces: Bitfield::full(n).as_bytes().to_vec(),
                files,
            })
        } else {
            None
        };
        let (r, res) = (row.clone(), resume.clone());
        self.store()
            .call(move |c| {
                torrents::insert(c, &r)?;
                if let Some(res) = res {
                    torrents::save_resume(c, &r.info_hash, &res, 0, 0)?;
                }
                Ok(())
            })
            .await
            .map_err(AddError::Internal)?;
        let entry = Entry {
            meta: Arc::new(meta),
            torrent_bytes: Arc::new(req.torrent),
            save_dir: row.save_dir,
            intent: row.intent,
            error: None,
            added_at: now,
            started_at: None,
            completed_at: row.completed_at,
            wanted: row.wanted.clone().unwrap_or_else(|| vec![true; files]),
            priorities: vec![Priority::Normal; files],
            have: if req.complete {
                Bitfield::full(n)
            } else {
                Bitfield::new(n)
            },
            resume,
            downloaded: 0,
            uploaded: 0,
            recheck: false,
            starting: false,
            restoring: false,
            run: None,
            pending_peers: req.peers,
            auto: Default::default(),
            order: Default::default(),
            speed: Default::default(),
        };
        self.torrents().insert(hash, entry);
        super::queue::added(self, hash).await;
        schedule_locked(self).await;
        Ok(hash)
    }

    /// Stops a torrent and keeps it as `paused`.
    pub async fn pause(&self, hash: InfoHash) -> anyhow::Result<()> {
        if self.magnet_op(hash, MagnetOp::Pause).await? {
            return Ok(());
        }
        let _ops = self.inner().ops.lock().await;
        stop_run(self, hash).await;
        set_intent(self, hash, Intent::Paused, None).await?;
        schedule_locked(self).await;
        Ok(())
    }

    /// Resumes a paused torrent with its saved piece states. A torrent stopped by an
    /// error (a file deleted, shortened or unreadable, a full disk) is rechecked
    /// instead: its saved piece states may be wrong, so every piece is hashed and
    /// what is missing, whole files included, is downloaded again.
    pub async fn resume(&self, hash: InfoHash) -> anyhow::Result<()> {
        if self.magnet_op(hash, MagnetOp::Resume).await? {
            return Ok(());
        }
        let _ops = self.inner().ops.lock().await;
        let running = {
            let mut map = self.torrents();
            match map.get_mut(&hash) {
                Some(e) if e.run.is_none() && e.error.is_some() => {
                    e.resume = None;
                    e.recheck = true;
                    false
                }
                Some(e) => e.run.is_some(),
                None => false,
            }
        };
        if !running {
            self.clear_stop_reason(hash).await;
            set_intent(self, hash, Intent::Active, None).await?;
            schedule_locked(self).await;
        }
        Ok(())
    }

    /// Stops the torrent, forgets its resume data and starts it again: every piece is
    /// hashed before use, and missing files are downloaded again.
    pub async fn recheck(&self, hash: InfoHash) -> anyhow::Result<()> {
        let _ops = self.inner().ops.lock().await;
        stop_run(self, hash).await;
        if let Some(e) = self.torrents().get_mut(&hash) {
            e.resume = None;
            e.recheck = true;
        }
        set_intent(self, hash, Intent::Active, None).await?;
        schedule_locked(self).await;
        Ok(())
    }

    /// Removes a torrent, and its data with `delete_data`. A download that was not
    /// complete is recorded in history as `cancelled`.
    pub async fn remove(&self, hash: InfoHash, delete_data: bool) -> anyhow::Result<()> {
        self.forget_labels(hash).await;
        if self.magnet_op(hash, MagnetOp::Remove).await? {
            return Ok(());
        }
        let _ops = self.inner().ops.lock().await;
        stop_run(self, hash).await;
        let Some(entry) = self.torrents().remove(&hash) else {
            return Ok(());
        };
        let hex = hash.to_hex();
        let cancelled = (!entry.is_complete() && entry.started_at.is_some())
            .then(|| entry.history("cancelled", None));
        self.store()
            .call(move |c| {
                torrents::delete(c, &hex)?;
                if let Some(h) = cancelled {
                    add_history(c, &h)?;
                }
                Ok(())
            })
            .await?;
        if delete_data {
            let path = entry.save_dir.join(&entry.meta.info.name);
            tokio::task::spawn_blocking(move || {
                let r = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                if let Err(e) = r {
                    tracing::warn!("cannot delete {}: {e}", path.display());
                }
            })
            .await?;
        }
        schedule_locked(self).await;
        Ok(())
    }

    /// Selects or skips a file and sets its priority.
    pub async fn set_file(
        &self,
        hash: InfoHash,
        index: usize,
        wanted: Option<bool>,
        priority: Option<Priority>,
    ) -> anyhow::Result<bool> {
        let _ops = self.inner().ops.lock().await;
        let (w, p) = {
            let mut map = self.torrents();
            let Some(e) = map.get_mut(&hash) else {
                return Ok(false);
            };
            if index >= e.wanted.len() {
                return Ok(false);
            }
            if let Some(w) = wanted {
                e.wanted[index] = w;
                if let Some(r) = &e.run {
                    r.handle.set_file_wanted(index, w);
                }
            }
            if let Some(p) = priority {
                e.priorities[index] = p;
                if let Some(r) = &e.run {
                    r.handle.set_file_priority(index, p.into());
                }
            }
            (e.wanted.clone(), e.priorities.clone())
        };
        let hex = hash.to_hex();
        self.store()
            .call(move |c| torrents::set_files(c, &hex, &w, &p))
            .await?;
        Ok(true)
    }

    /// Starts queued torrents while slots are free.
    pub async fn schedule(&self) {
        let _ops = self.inner().ops.lock().await;
        schedule_locked(self).await;
    }
}

/// Records the user's intent (and error) in the entry and the database.
pub(super) async fn set_intent(
    node: &Node,
    hash: InfoHash,
    intent: Intent,
    error: Option<String>,
) -> anyhow::Result<()> {
    {
        let mut map = node.torrents();
        let Some(e) = map.get_mut(&hash) else {
            return Ok(());
        };
        e.intent = intent;
        e.error = error.clone();
    }
    let hex = hash.to_hex();
    node.store()
        .call(move |c| torrents::set_state(c, &hex, intent, error.as_deref()))
        .await
}
