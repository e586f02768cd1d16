//! The torrent's DHT task: finds peers through the session's DHT and announces us.
//!
//! Each round is one `get_peers` lookup toward the info-hash that ends with
//! `announce_peer` (our listen port) to the closest nodes; peers found go to the
//! torrent's dial queue as they arrive. Rounds repeat every [`DOWNLOAD_INTERVAL`]
//! while pieces are missing and every [`SEED_INTERVAL`] when seeding (within the
//! 30 minutes nodes keep an announce). A round that announced to nobody (the DHT
//! still empty), or found no peer while downloading, is retried sooner: after
//! [`RETRY_FIRST`], doubling up to the interval. Private torrents never get here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Shared;
use crate::dht::{DhtHandle, LookupEvent};

/// Between lookups while pieces are missing.
const DOWNLOAD_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Between lookups while seeding.
const SEED_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// First wait after a lookup that announced to nobody or found nothing needed.
const RETRY_FIRST: Duration = Duration::from_secs(5);

pub(crate) async fn run(shared: Arc<Shared>, dht: DhtHandle) {
    let info_hash = shared.info_hash();
    let mut retry = RETRY_FIRST;
    loop {
        let lookup = dht.announce(info_hash, shared.listen_port).await;
        let Some((found, announced)) = follow(&shared, lookup).await else {
            return;
        };
        let seeding = shared.is_seeding();
        let interval = if seeding {
            SEED_INTERVAL
        } else {
            DOWNLOAD_INTERVAL
        };
        let wait = if announced == 0 || (!seeding && found == 0) {
            let wait = retry;
            retry = (retry * 2).min(interval);
            wait
        } else {
            retry = RETRY_FIRST;
            interval
        };
        tracing::debug!(found, announced, ?wait, "dht lookup done");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.cancel.cancelled() => return,
        }
    }
}

/// Feeds the peers of one lookup to the torrent until it ends; returns the peers
/// found and the nodes announced to, or `None` when the torrent stops.
async fn follow(
    shared: &Arc<Shared>,
    mut lookup: mpsc::Receiver<LookupEvent>,
) -> Option<(usize, usize)> {
    let (mut found, mut announced) = (0, 0);
    let mut batch = Vec::new();
    loop {
        let event = tokio::select! {
            e = lookup.recv() => e,
            () = shared.cancel.cancelled() => return None,
        };
        let Some(mut event) = event else {
            return Some((found, announced));
        };
        // Everything already queued goes to the dialler at once.
        loop {
            match event {
                LookupEvent::Peer(p) => batch.push(p),
                LookupEvent::Done { announced: a, .. } => announced = a,
            }
            match lookup.try_recv() {
                Ok(e) => event = e,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            found += batch.len();
            tracing::debug!(peers = ?batch, "dht found peers");
            add_peers(shared, &batch);
        }
        batch.clear();
    }
}

/// The one place DHT peers enter the torrent.
fn add_peers(shared: &Arc<Shared>, peers: &[SocketAddr]) {
    shared.add_peers(peers, super::PeerSource::Dht);
}
