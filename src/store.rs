//! The node's state on disk: one SQLite database, `<data dir>/shoal.db`, in WAL mode
//! with `synchronous=NORMAL`: a commit survives a process crash (`kill -9`) at any
//! moment, and a power loss costs at most the last commits, never consistency.
//!
//! All database work runs on one dedicated thread fed by a bounded channel
//! ([`Store::call`]); async code never touches the connection. Tables (see
//! `docs/NODE.md`): `meta` (peer ID, settings), `torrents`, `resume`, `history`,
//! `stats`, `transfer_log`, `magnets`, `torrent_options`, and the labels
//! (`categories`, `tags`, `torrent_labels`).

pub mod labels;
pub mod magnets;
pub mod options;
pub mod records;
pub mod rules;
mod schema;
pub mod speed;
pub mod torrents;

use std::path::Path;

use anyhow::Context;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Jobs waiting for the database thread before callers wait to queue.
const QUEUE: usize = 256;

/// A handle to the database thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Job>,
}

impl Store {
    /// Opens (creating if needed) `path`, migrates the schema and starts the thread.
    pub async fn open(path: &Path) -> anyhow::Result<Store> {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        let (ready_tx, ready_rx) = oneshot::channel();
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("shoal-db".into())
            .spawn(move || {
                let mut conn = match schema::open(&path) {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Some(job) = rx.blocking_recv() {
                    job(&mut conn);
                }
            })
            .context("cannot start the database thread")?;
        ready_rx
            .await
            .context("the database thread stopped")?
            .context("cannot open the node database")?;
        Ok(Store { tx })
    }

    /// Runs `f` on the database thread and returns its result.
    pub async fn call<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.tx
            .send(job)
            .await
            .map_err(|_| anyhow::anyhow!("the database is closed"))?;
        rx.await.context("the database thread stopped")?
    }
}

/// Current time in Unix seconds.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
