//! What the engine reports about a running torrent (completion, failure), acted on by
//! one task the node owns.
//!
//! The monitors send [`Outcome`]s over a channel instead of calling the lifecycle code
//! themselves: acting on one stops the torrent, which waits for its monitor, so the
//! monitor must not be the one acting; and the monitor module need not know the
//! lifecycle code that starts it.

use shoal_proto::InfoHash;
use tokio::sync::mpsc;

use super::lifecycle::set_intent;
use super::monitor::Outcome;
use super::runs::{fail_locked, schedule_locked, stop_run};
use super::save::save_resume;
use super::Node;
use crate::store::now_secs;
use crate::store::records::add_history;
use crate::store::torrents::{self, Intent};

/// Acts on the monitors' reports, one at a time, until the node's token is cancelled
/// (a report still queued then is acted on at the next start: the monitor sees the
/// torrent complete or failed again).
pub(crate) async fn run(node: Node, mut rx: mpsc::UnboundedReceiver<Outcome>) {
    let cancel = node.inner().cancel.clone();
    loop {
        let outcome = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            o = rx.recv() => match o {
                Some(o) => o,
                None => return,
            },
        };
        match outcome {
            Outcome::Completed(hash) => node.completed(hash).await,
            Outcome::Failed(hash, message) => node.failed(hash, message).await,
        }
    }
}

impl Node {
    /// Records a completed download; stops it when auto-share is off.
    async fn completed(&self, hash: InfoHash) {
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
                .then(|| e.history("completed", None));
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
    async fn failed(&self, hash: InfoHash, message: String) {
        let _ops = self.inner().ops.lock().await;
        stop_run(self, hash).await;
        fail_locked(self, hash, message).await;
        schedule_locked(self).await;
    }
}
