//! Adding, starting, stopping and removing torrents, and the `max_active` queue.
//!
//! Every change runs under `Inner::ops`, so "is it running? then stop it" cannot race
//! another request. A torrent starts when it is active, not failed, and either
//! complete (seeding never waits) or a download slot is free.

use std::path::PathBuf;
use std::sync::Arc;

use shoal_engine::{Phase, TorrentOptions};
use shoal_proto::metainfo::Metainfo;
use shoal_proto::wire::Bitfield;
use shoal_proto::InfoHash;
use tokio_util::sync::CancellationToken;

use super::check::{decide, Check};
use super::durable::{files_to_sync, sync_files};
use super::entry::{Entry, Run};
use super::Node;
use crate::store::now_secs;
use crate::store::records::{add_history, HistoryRecord};
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
            wanted: None,
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
            wanted: vec![true; files],
            priorities: vec![Priority::Normal; files],
            have: if req.complete {
                Bitfield::full(n)
            } else {
                Bitfield::new(n)
            },
            resume,
            downloaded: 0,
            uploaded: 0,
            starting: false,
            restoring: false,
            run: None,
        };
        self.torrents().insert(hash, entry);
        schedule_locked(self).await;
        Ok(hash)
    }

    /// Stops a torrent and keeps it as `paused`.
    pub async fn pause(&self, hash: InfoHash) -> anyhow::Result<()> {
        let _ops = self.inner().ops.lock().await;
        stop_run(self, hash).await;
        set_intent(self, hash, Intent::Paused, None).await?;
        schedule_locked(self).await;
        Ok(())
    }

    /// Resumes a paused or failed torrent (with its saved piece states).
    pub async fn resume(&self, hash: InfoHash) -> anyhow::Result<()> {
        let _ops = self.inner().ops.lock().await;
        let running = self.torrents().get(&hash).is_some_and(|e| e.run.is_some());
        if !running {
            set_intent(self, hash, Intent::Active, None).await?;
            schedule_locked(self).await;
        }
        Ok(())
    }

    /// Stops the torrent, forgets its resume data and starts it again: every piece is
    /// hashed before use.
    pub async fn recheck(&self, hash: InfoHash) -> anyhow::Result<()> {
        let _ops = self.inner().ops.lock().await;
        stop_run(self, hash).await;
        if let Some(e) = self.torrents().get_mut(&hash) {
            e.resume = None;
        }
        set_intent(self, hash, Intent::Active, None).await?;
        schedule_locked(self).await;
        Ok(())
    }

    /// Removes a torrent, and its data with `delete_data`. A download that was not
    /// complete is recorded in history as `cancelled`.
    pub async fn remove(&self, hash: InfoHash, delete_data: bool) -> anyhow::Result<()> {
        let _ops = self.inner().ops.lock().await;
        stop_run(self, hash).await;
        let Some(entry) = self.torrents().remove(&hash) else {
            return Ok(());
        };
        let hex = hash.to_hex();
        let cancelled = (!entry.is_complete() && entry.started_at.is_some())
            .then(|| history(&entry, "cancelled", None));
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

    /// Records a completed download; stops it when auto-share is off.
    pub(crate) async fn completed(&self, hash: InfoHash) {
        let _ops = self.inner().ops.lock().await;
        let now = now_secs();
        let (record, started) = {
            let mut map = self.torrents();
            let Some(e) = map.get_mut(&hash) else { return };
            if e.completed_at.is_some() {
                return;
            }
            e.completed_at = Some(now);
            let downloaded_now = e
                .run
                .as_ref()
                .is_some_and(|r| r.handle.status().downloaded > 0);
            let record = (e.started_at.is_some() && (downloaded_now || e.downloaded > 0))
                .then(|| history(e, "completed", None));
            (record, e.started_at)
        };
        let hex = hash.to_hex();
        let _ = self
            .store()
            .call(move |c| {
                torrents::set_times(c, &hex, started, Some(now))?;
                if let Some(h) = record {
                    add_history(c, &h)?;
                }
                Ok(())
            })
            .await;
        save_resume(self, hash).await;
        if !self.settings().auto_share {
            stop_run(self, hash).await;
            let _ = set_intent(self, hash, Intent::Paused, None).await;
        }
        schedule_locked(self).await;
    }

    /// Puts a torrent into the error state and frees its slot.
    pub(crate) async fn failed(&self, hash: InfoHash, message: String) {
        let _ops = self.inner().ops.lock().await;
        stop_run(self, hash).await;
        fail_locked(self, hash, message).await;
        schedule_locked(self).await;
    }
}

fn history(e: &Entry, status: &str, error: Option<String>) -> HistoryRecord {
    let now = now_secs();
    let started = e.started_at.unwrap_or(e.added_at);
    let secs = (now - started).max(1) as u64;
    let (downloaded, _) = e.counters();
    HistoryRecord {
        info_hash: e.meta.info_hash.to_hex(),
        name: e.meta.info.name.clone(),
        size: e.meta.info.total_length,
        status: status.into(),
        error,
        avg_speed: downloaded / secs,
        started_at: started,
        finished_at: now,
    }
}

async fn fail_locked(node: &Node, hash: InfoHash, message: String) {
    let record = {
        let mut map = node.torrents();
        let Some(e) = map.get_mut(&hash) else { return };
        e.error = Some(message.clone());
        e.starting = false;
        (!e.is_complete()).then(|| history(e, "failed", Some(message.clone())))
    };
    let hex = hash.to_hex();
    let _ = node
        .store()
        .call(move |c| {
            torrents::set_state(c, &hex, Intent::Active, Some(&message))?;
            if let Some(h) = record {
                add_history(c, &h)?;
            }
            Ok(())
        })
        .await;
}

async fn set_intent(
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

/// Starts what may start. Caller holds `ops`.
pub(crate) async fn schedule_locked(node: &Node) {
    loop {
        let next = {
            let max = node.settings().max_active as usize;
            let map = node.torrents();
            let downloading = map
                .values()
                .filter(|e| (e.run.is_some() || e.starting) && !e.is_complete())
                .count();
            let mut waiting: Vec<(&InfoHash, &Entry)> = map
                .iter()
                .filter(|(_, e)| {
                    e.intent == Intent::Active
                        && e.error.is_none()
                        && e.run.is_none()
                        && !e.starting
                })
                .collect();
            waiting.sort_by_key(|(_, e)| (!e.is_complete(), e.added_at));
            waiting
                .into_iter()
                .find(|(_, e)| e.is_complete() || max == 0 || downloading < max)
                .map(|(h, _)| *h)
        };
        let Some(hash) = next else { return };
        start(node, hash).await;
    }
}

/// Stats the files and adds the torrent to the session. Caller holds `ops`.
///
/// Boxed: the monitor it spawns may call back into the queue, which starts torrents;
/// the explicit `Send` future type breaks that cycle for the compiler.
fn start(node: &Node, hash: InfoHash) -> futures_util::future::BoxFuture<'_, ()> {
    Box::pin(start_inner(node, hash))
}

async fn start_inner(node: &Node, hash: InfoHash) {
    let (meta, save_dir, resume, complete, wanted, priorities) = {
        let mut map = node.torrents();
        let Some(e) = map.get_mut(&hash) else { return };
        e.starting = true;
        (
            e.meta.clone(),
            e.save_dir.clone(),
            e.resume.clone(),
            e.completed_at.is_some() && e.have.is_full(),
            e.wanted.clone(),
            e.priorities.iter().map(|&p| p.into()).collect(),
        )
    };
    let m = meta.clone();
    let dir = save_dir.clone();
    let check = tokio::task::spawn_blocking(move || decide(&m, &dir, resume.as_ref(), complete))
        .await
        .unwrap_or(Check::Recheck);
    let verified = match check {
        Check::Missing(msg) => {
            fail_locked(node, hash, msg).await;
            return;
        }
        Check::Trusted(v) => Some(v),
        Check::Recheck => None,
    };
    let opts = TorrentOptions {
        save_dir,
        seed_only: false,
        peers: Vec::new(),
        trackers: tiers(&node.settings().trackers, &meta),
        verified,
        wanted_files: Some(wanted),
        file_priorities: Some(priorities),
        ..TorrentOptions::default()
    };
    let handle = match node.session().add_torrent((*meta).clone(), opts) {
        Ok(h) => h,
        Err(e) => {
            fail_locked(node, hash, e.to_string()).await;
            return;
        }
    };
    let cancel = CancellationToken::new();
    let monitor = tokio::spawn(super::monitor::watch(
        node.clone(),
        handle.clone(),
        cancel.clone(),
    ));
    let started = {
        let mut map = node.torrents();
        let Some(e) = map.get_mut(&hash) else { return };
        e.starting = false;
        e.run = Some(Run {
            handle,
            seen_down: 0,
            seen_up: 0,
            cancel,
            monitor: Some(monitor),
        });
        if e.started_at.is_none() && e.completed_at.is_none() {
            e.started_at = Some(now_secs());
            e.started_at
        } else {
            None
        }
    };
    if let Some(t) = started {
        let hex = hash.to_hex();
        let _ = node
            .store()
            .call(move |c| torrents::set_times(c, &hex, Some(t), None))
            .await;
    }
}

/// The node's trackers first (one tier each), then the torrent's own.
fn tiers(node_trackers: &[String], meta: &Metainfo) -> Vec<Vec<String>> {
    let mut tiers: Vec<Vec<String>> = node_trackers.iter().map(|t| vec![t.clone()]).collect();
    for tier in meta.tracker_tiers() {
        let rest: Vec<String> = tier
            .into_iter()
            .filter(|u| !node_trackers.contains(u))
            .collect();
        if !rest.is_empty() {
            tiers.push(rest);
        }
    }
    tiers
}

/// Takes a torrent out of the session, accounts its counters and saves its resume data.
/// Caller holds `ops`.
pub(crate) async fn stop_run(node: &Node, hash: InfoHash) {
    let run = node.torrents().get_mut(&hash).and_then(|e| e.run.take());
    let Some(mut run) = run else { return };
    run.cancel.cancel();
    if let Some(m) = run.monitor.take() {
        let _ = m.await;
    }
    node.session().remove_torrent(&hash).await;
    finish_run(node, hash, run).await;
}

async fn finish_run(node: &Node, hash: InfoHash, run: Run) {
    let status = run.handle.status();
    let have = run.handle.have_pieces();
    let phase = status.phase.clone();
    {
        let mut map = node.torrents();
        if let Some(e) = map.get_mut(&hash) {
            let dd = status.downloaded.saturating_sub(run.seen_down);
            let du = status.uploaded.saturating_sub(run.seen_up);
            e.downloaded += dd;
            e.uploaded += du;
            node.add_totals(dd, du);
            // A failed check leaves no pieces known: keep what we knew.
            if !matches!(phase, Phase::Checking { .. } | Phase::Error(_)) || have.count_ones() > 0 {
                e.have = have;
            }
        }
    }
    save_resume(node, hash).await;
}

/// Stops every torrent at once (shutdown), saving their resume data.
pub(crate) async fn stop_all(node: &Node) {
    let _ops = node.inner().ops.lock().await;
    let runs: Vec<(InfoHash, Run)> = node
        .torrents()
        .iter_mut()
        .filter_map(|(h, e)| e.run.take().map(|r| (*h, r)))
        .collect();
    let stops = runs.into_iter().map(|(hash, mut run)| async move {
        run.cancel.cancel();
        if let Some(m) = run.monitor.take() {
            let _ = m.await;
        }
        node.session().remove_torrent(&hash).await;
        finish_run(node, hash, run).await;
    });
    futures_util::future::join_all(stops).await;
}

/// Writes the torrent's verified pieces, file stamps and counters. Files holding pieces
/// claimed for the first time are flushed to disk before (see [`super::durable`]); if
/// that fails, nothing is saved and the last record stays.
pub(crate) async fn save_resume(node: &Node, hash: InfoHash) {
    let Some((have, dir, meta, down, up, old)) = node.torrents().get(&hash).map(|e| {
        let (d, u) = e.counters();
        let old = e.resume.as_ref().map(|r| r.pieces.clone());
        (
            e.current_have(),
            e.save_dir.clone(),
            e.meta.clone(),
            d,
            u,
            old,
        )
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
                files: file_stamps(&dir, &meta.info),
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

impl Node {
    pub(crate) fn add_totals(&self, down: u64, up: u64) {
        use std::sync::atomic::Ordering;
        self.inner()
            .totals
            .downloaded
            .fetch_add(down, Ordering::Relaxed);
        self.inner()
            .totals
            .uploaded
            .fetch_add(up, Ordering::Relaxed);
    }
}
