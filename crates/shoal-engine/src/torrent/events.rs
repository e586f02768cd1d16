//! Fan-out of [`TorrentEvent`]s to subscribers, each with its own bounded queue.
//!
//! A tokio `broadcast` channel allocates its whole ring at creation (4096 slots of
//! about 80 bytes were 320 KiB per torrent, most of a node's memory with 1000 idle
//! torrents). Here each subscriber gets an `mpsc` queue, which allocates in blocks of
//! 32 as events arrive, so a torrent that sends nothing costs a few words. A full
//! queue drops the event and counts it: a slow subscriber misses events rather than
//! slowing transfers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::TorrentEvent;

/// Events a subscriber may have queued before further ones are dropped for it.
const QUEUE: usize = 4096;

struct Sub {
    tx: mpsc::Sender<TorrentEvent>,
    missed: Arc<AtomicU64>,
}

/// The sending side, owned by the torrent.
#[derive(Default)]
pub(crate) struct EventHub {
    subs: Mutex<Vec<Sub>>,
}

impl EventHub {
    /// Queues `e` for every subscriber that has room; forgets closed subscribers.
    pub fn emit(&self, e: TorrentEvent) {
        let mut subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
        if subs.is_empty() {
            return;
        }
        let last = subs.len() - 1;
        let mut closed = false;
        let mut e = Some(e);
        for (i, s) in subs.iter().enumerate() {
            let ev = if i == last { e.take() } else { e.clone() };
            let Some(ev) = ev else { break };
            match s.tx.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    s.missed.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => closed = true,
            }
        }
        if closed {
            subs.retain(|s| !s.tx.is_closed());
        }
    }

    /// A new subscriber that receives the events emitted from now on.
    pub fn subscribe(&self) -> TorrentEvents {
        let (tx, rx) = mpsc::channel(QUEUE);
        let missed = Arc::new(AtomicU64::new(0));
        self.subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Sub {
                tx,
                missed: missed.clone(),
            });
        TorrentEvents { rx, missed }
    }
}

/// A subscription to a torrent's events (see [`crate::TorrentHandle::subscribe`]).
pub struct TorrentEvents {
    rx: mpsc::Receiver<TorrentEvent>,
    missed: Arc<AtomicU64>,
}

impl TorrentEvents {
    /// The next event; `None` once the torrent is gone. Cancel safe.
    pub async fn recv(&mut self) -> Option<TorrentEvent> {
        self.rx.recv().await
    }

    /// Events dropped so far because this subscriber's queue was full.
    pub fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_gets_each_event_and_a_full_queue_drops() {
        let hub = EventHub::default();
        hub.emit(TorrentEvent::Completed); // nobody listens: dropped
        let mut a = hub.subscribe();
        let mut b = hub.subscribe();
        hub.emit(TorrentEvent::PieceFailed { piece: 1 });
        assert_eq!(a.recv().await, Some(TorrentEvent::PieceFailed { piece: 1 }));
        assert_eq!(b.recv().await, Some(TorrentEvent::PieceFailed { piece: 1 }));
        drop(b);
        for i in 0..QUEUE as u32 + 3 {
            hub.emit(TorrentEvent::PieceFailed { piece: i });
        }
        assert_eq!(a.missed(), 3);
        assert_eq!(hub.subs.lock().unwrap().len(), 1);
        assert_eq!(a.recv().await, Some(TorrentEvent::PieceFailed { piece: 0 }));
        drop(hub);
        let mut n = 1;
        while a.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(n, QUEUE);
    }
}
