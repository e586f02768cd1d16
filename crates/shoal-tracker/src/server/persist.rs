//! Keeping the swarms across restarts: restore them when the tracker binds, save the
//! changed shards every [`SAVE_EVERY`] and once more at shutdown (`swarm_store` has the
//! format and the backends).
//!
//! Announces never wait on this: the snapshot (a short lock per changed shard, to copy
//! it) and the database write both run in `spawn_blocking`, one save at a time, owned
//! by the saver task. Failures are logged and the shards stay marked changed, so the
//! next save retries them; the tracker keeps serving from memory.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::service::Service;
use crate::swarm_store::{self, Snapshot, SwarmStore, SAVE_EVERY};

/// Longest the final save at shutdown may take before the tracker stops without it.
const FINAL_SAVE_LIMIT: Duration = Duration::from_secs(15);

/// Opens the swarm store the config asks for and puts its swarms back into the
/// registry. `None` when the config has nowhere to keep swarms, or (logged) when the
/// store cannot be opened. A store that cannot be read leaves the registry empty.
pub(crate) async fn restore(service: &Arc<Service>) -> Option<Arc<dyn SwarmStore>> {
    let service = service.clone();
    let job = tokio::task::spawn_blocking(move || {
        let store: Arc<dyn SwarmStore> = match swarm_store::open(&service.config) {
            Ok(Some(store)) => store.into(),
            Ok(None) => return None,
            Err(e) => {
                warn!(error = %e, "cannot open the swarm store; swarms are kept in memory \
                      only and will not survive a restart");
                return None;
            }
        };
        let place = store.describe();
        let saved = match store.load() {
            Ok(saved) => saved,
            Err(e) => {
                warn!(store = %place, error = %e, "cannot read the saved swarms; starting \
                      with no swarms (peers come back as they announce; the next save \
                      replaces what could not be read)");
                return Some(store);
            }
        };
        if saved.is_empty() {
            info!(store = %place, "no saved swarms; starting empty");
            return Some(store);
        }
        let ttl = service.config.effective_peer_ttl();
        let now = Instant::now();
        let done =
            service
                .registry
                .restore(saved, now, swarm_store::unix_ms(SystemTime::now()), ttl);
        info!(
            store = %place,
            swarms = done.swarms,
            peers = done.peers,
            expired = done.expired,
            no_room = done.no_room,
            "swarms restored"
        );
        Some(store)
    });
    match job.await {
        Ok(store) => store,
        Err(e) => {
            warn!(error = %e, "restoring the swarms failed; starting with no swarms");
            None
        }
    }
}

/// Saves changed shards every [`SAVE_EVERY`] until `stop` fires (or its sender goes),
/// then once more. The first save replaces the whole store.
pub(crate) async fn save_loop(
    service: Arc<Service>,
    store: Arc<dyn SwarmStore>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut ticker = tokio::time::interval(SAVE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // immediate; the registry was just restored
    let mut full = true;
    loop {
        let last = tokio::select! {
            _ = ticker.tick() => false,
            _ = &mut stop => true,
        };
        let save = save(service.clone(), store.clone(), full);
        let saved = if last {
            match tokio::time::timeout(FINAL_SAVE_LIMIT, save).await {
                Ok(saved) => saved,
                Err(_) => {
                    warn!(limit = ?FINAL_SAVE_LIMIT, "the final swarm save is taking too \
                          long; stopping without waiting for it");
                    false
                }
            }
        } else {
            save.await
        };
        full &= !saved;
        if last {
            return;
        }
    }
}

/// One save of the changed shards (all with `full`) off the runtime; true when the
/// store has them (or nothing changed).
async fn save(service: Arc<Service>, store: Arc<dyn SwarmStore>, full: bool) -> bool {
    let job = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let shards = service.registry.snapshot(
            full,
            Instant::now(),
            swarm_store::unix_ms(SystemTime::now()),
        );
        if shards.is_empty() {
            return true;
        }
        let snapshot = Snapshot { full, shards };
        match store.save(&snapshot) {
            Ok(()) => {
                debug!(
                    shards = snapshot.shards.len(),
                    peers = snapshot.peer_count(),
                    took = ?started.elapsed(),
                    "swarms saved"
                );
                true
            }
            Err(e) => {
                warn!(store = %store.describe(), error = %e, "cannot save the swarms; \
                      retrying at the next save");
                service
                    .registry
                    .mark_dirty(snapshot.shards.iter().map(|s| s.shard));
                false
            }
        }
    });
    job.await.unwrap_or_else(|e| {
        warn!(error = %e, "the swarm save task failed");
        false
    })
}
