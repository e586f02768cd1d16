//! Sharing a local path: hash it into a torrent in the background (a job the API can
//! poll), add it as complete so it seeds from where it is, and publish it to the
//! trackers' catalogs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use shoal_engine::create::{create_torrent, CreateOptions};

use super::{AddError, AddRequest, Node};

/// A sharing job as `GET /api/jobs` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ShareJob {
    pub id: String,
    pub path: String,
    pub done_bytes: u64,
    pub total_bytes: u64,
    /// `hashing`, `done` or `error`.
    pub state: &'static str,
    pub torrent_id: Option<String>,
    pub error: Option<String>,
    #[serde(skip)]
    progress: Option<Arc<(AtomicU64, AtomicU64)>>,
}

/// Jobs kept for `GET /api/jobs`; older finished ones are dropped.
const JOBS_KEPT: usize = 200;

impl Node {
    /// Starts hashing `path`; returns the job id.
    pub fn share(&self, path: PathBuf) -> String {
        let n = self.inner().next_job.fetch_add(1, Ordering::Relaxed);
        let id = format!("j{n}");
        let progress = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        {
            let mut jobs = self.inner().jobs.lock().unwrap_or_else(|p| p.into_inner());
            if jobs.len() >= JOBS_KEPT {
                if let Some(i) = jobs.iter().position(|j| j.state != "hashing") {
                    jobs.remove(i);
                }
            }
            jobs.push(ShareJob {
                id: id.clone(),
                path: path.display().to_string(),
                done_bytes: 0,
                total_bytes: 0,
                state: "hashing",
                torrent_id: None,
                error: None,
                progress: Some(progress.clone()),
            });
        }
        let node = self.clone();
        let job = id.clone();
        self.spawn(async move {
            let result = run(&node, path, progress).await;
            let mut jobs = node.inner().jobs.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(j) = jobs.iter_mut().find(|j| j.id == job) {
                if let Some(p) = j.progress.take() {
                    j.done_bytes = p.0.load(Ordering::Relaxed);
                    j.total_bytes = p.1.load(Ordering::Relaxed);
                }
                match result {
                    Ok(hex) => {
                        j.state = "done";
                        j.done_bytes = j.total_bytes;
                        j.torrent_id = Some(hex);
                    }
                    Err(e) => {
                        j.state = "error";
                        j.error = Some(format!("{e:#}"));
                    }
                }
            }
        });
        id
    }

    /// Every job, oldest first, with live progress.
    pub fn jobs(&self) -> Vec<ShareJob> {
        let jobs = self.inner().jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.iter()
            .map(|j| {
                let mut j = j.clone();
                if let Some(p) = &j.progress {
                    j.done_bytes = p.0.load(Ordering::Relaxed);
                    j.total_bytes = p.1.load(Ordering::Relaxed);
                }
                j
            })
            .collect()
    }
}

async fn run(
    node: &Node,
    path: PathBuf,
    progress: Arc<(AtomicU64, AtomicU64)>,
) -> anyhow::Result<String> {
    let path = tokio::fs::canonicalize(&path)
        .await
        .map_err(|e| anyhow::anyhow!("cannot share {}: {e}", path.display()))?;
    let Some(save_dir) = path.parent().map(PathBuf::from) else {
        anyhow::bail!(
            "cannot share {}: give a file or a named folder",
            path.display()
        );
    };
    let opts = CreateOptions {
        trackers: node.settings().trackers,
        ..CreateOptions::default()
    };
    let p = progress.clone();
    let src = path.clone();
    let meta = tokio::task::spawn_blocking(move || {
        create_torrent(&src, &opts, &|done, total| {
            p.0.store(done, Ordering::Relaxed);
            p.1.store(total, Ordering::Relaxed);
        })
    })
    .await??;
    let bytes = meta.to_bytes();
    let hash = meta.info_hash;
    let req = AddRequest {
        peers: Vec::new(),
        wanted: None,
        torrent: bytes.clone(),
        save_dir: Some(save_dir),
        paused: false,
        complete: true,
    };
    match node.add(req).await {
        Ok(_) | Err(AddError::Duplicate(_)) => {}
        Err(e) => return Err(e.into()),
    }
    node.publish(bytes).await;
    Ok(hash.to_hex())
}
