//! Per-torrent monitor task and the node-wide writers.
//!
//! The monitor turns engine events into transfer-log records, adds the engine's byte
//! counters to the torrent's and node's totals every second while the torrent is
//! active (and not at all while it is idle), saves resume data at most every 5 s
//! while pieces arrive, and reports completion and errors as [`Outcome`]s to the node's
//! outcome task (`super::outcome`): acting on them stops the torrent, which waits for
//! this monitor, so the monitor cannot act itself.

use std::sync::atomic::Ordering;
use std::time::Duration;

use shoal_engine::{Phase, TorrentEvent, TorrentHandle};
use shoal_proto::InfoHash;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Node;
use crate::store::now_ms;
use crate::store::records::{self, LogRecord};

/// Resume data is saved this often while the piece count changes. Each save flushes
/// the files of the new pieces to disk first, so not more often.
const RESUME_EVERY: Duration = Duration::from_secs(5);

/// What a monitor reports about its torrent.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Every wanted piece is verified.
    Completed(InfoHash),
    /// The engine stopped the torrent with an error the user should see.
    Failed(InfoHash, String),
}

/// Sends `outcome` to the node's outcome task. The channel is unbounded because a send
/// must never wait (the outcome task may be waiting for this monitor to stop); each
/// run of a monitor sends at most one of each kind.
fn report(node: &Node, outcome: Outcome) {
    // Closed only once the node shuts down: the report is then moot.
    let _ = node.inner().outcomes.send(outcome);
}

/// Watches one running torrent until `cancel`.
///
/// Event-driven: it wakes for engine events, phase changes, the engine's activity
/// ticks (about once a second while the torrent has peers or moves bytes) and a
/// pending resume save, so an idle torrent costs no wake-ups.
pub(crate) async fn watch(node: Node, handle: TorrentHandle, cancel: CancellationToken) {
    let hash = handle.info_hash();
    let span = tracing::info_span!("monitor", torrent = %hash);
    async move {
        let mut events = handle.subscribe();
        let mut events_open = true;
        let mut phase = handle.phase();
        let mut ticks = handle.ticks();
        let mut last_save = tokio::time::Instant::now();
        // Pieces in the last saved resume data (a fresh torrent has none: save once).
        let mut saved_pieces = node
            .torrents()
            .get(&hash)
            .and_then(|e| e.resume.as_ref())
            .map_or(u32::MAX, |r| r.pieces.iter().map(|b| b.count_ones()).sum());
        let mut done = false;
        let mut pieces = None;
        let hex = hash.to_hex();
        loop {
            let now = phase.borrow_and_update().clone();
            match &now {
                Phase::Seeding if !done => {
                    done = true;
                    report(&node, Outcome::Completed(hash));
                }
                Phase::Error(e) => {
                    report(&node, Outcome::Failed(hash, e.clone()));
                    return;
                }
                _ => {}
            }
            let checking = matches!(now, Phase::Checking { .. });
            if !checking && pieces.is_none() {
                pieces = Some(account(&node, &handle));
            }
            let unsaved = pieces.is_some_and(|p| p != saved_pieces);
            if unsaved && last_save.elapsed() >= RESUME_EVERY {
                saved_pieces = pieces.unwrap_or(saved_pieces);
                last_save = tokio::time::Instant::now();
                super::save::save_resume(&node, hash).await;
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                ev = events.recv(), if events_open => match ev {
                    Some(TorrentEvent::Completed) if !done => {
                        done = true;
                        report(&node, Outcome::Completed(hash));
                    }
                    Some(ev) => on_event(&node, &hex, ev),
                    None => events_open = false,
                },
                r = phase.changed() => {
                    if r.is_err() {
                        // The engine dropped the torrent; `cancel` follows.
                        cancel.cancelled().await;
                        return;
                    }
                    pieces = None;
                }
                r = ticks.changed() => {
                    if r.is_err() {
                        cancel.cancelled().await;
                        return;
                    }
                    pieces = None;
                }
                _ = tokio::time::sleep_until(last_save + RESUME_EVERY), if unsaved => {}
            }
        }
    }
    .instrument(span)
    .await
}

fn on_event(node: &Node, hex: &str, ev: TorrentEvent) {
    let record = match ev {
        TorrentEvent::PieceVerified { piece, bytes, peer } => LogRecord {
            ts_ms: now_ms(),
            direction: "down",
            peer: peer.map(|p| p.to_string()).unwrap_or_default(),
            info_hash: hex.to_string(),
            piece,
            bytes,
        },
        TorrentEvent::BlocksSent { peer, piece, bytes } => LogRecord {
            ts_ms: now_ms(),
            direction: "up",
            peer: peer.to_string(),
            info_hash: hex.to_string(),
            piece,
            bytes,
        },
        _ => return,
    };
    // The log is best effort: under a flood, drop rather than slow the transfers.
    let _ = node.inner().log_tx.try_send(record);
}

/// Adds what the engine counted since the last call to the entry and node totals;
/// returns the verified piece count.
fn account(node: &Node, handle: &TorrentHandle) -> u32 {
    let s = handle.status();
    let have = handle.have_pieces();
    let pieces = have.count_ones();
    let mut map = node.torrents();
    let Some(e) = map.get_mut(&handle.info_hash()) else {
        return pieces;
    };
    let Some(run) = e.run.as_mut() else {
        return pieces;
    };
    let dd = s.downloaded.saturating_sub(run.seen_down);
    let du = s.uploaded.saturating_sub(run.seen_up);
    run.seen_down = s.downloaded;
    run.seen_up = s.uploaded;
    e.downloaded += dd;
    e.uploaded += du;
    if !matches!(s.phase, Phase::Checking { .. }) {
        e.have = have;
    }
    drop(map);
    node.add_totals(dd, du);
    pieces
}

/// Writes transfer-log records in batches, at most once a second.
pub(crate) async fn write_log(node: Node, mut rx: mpsc::Receiver<LogRecord>) {
    let cancel = node.inner().cancel.clone();
    let mut batch = Vec::new();
    loop {
        let open = tokio::select! {
            r = rx.recv() => match r {
                Some(rec) => { batch.push(rec); true }
                None => false,
            },
            _ = cancel.cancelled() => false,
        };
        while let Ok(rec) = rx.try_recv() {
            batch.push(rec);
        }
        if !batch.is_empty() {
            let recs = std::mem::take(&mut batch);
            if let Err(e) = node
                .store()
                .call(move |c| records::append_log(c, &recs))
                .await
            {
                tracing::warn!("cannot write the transfer log: {e:#}");
            }
        }
        if !open {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Saves the cumulative byte counters every 2 s when they changed.
pub(crate) async fn save_totals(node: Node) {
    let cancel = node.inner().cancel.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut saved = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = node.totals();
                if saved != Some(now) {
                    saved = Some(now);
                    flush_totals(&node).await;
                }
            }
            _ = cancel.cancelled() => return,
        }
    }
}

/// Writes the cumulative byte counters now.
pub(crate) async fn flush_totals(node: &Node) {
    let t = &node.inner().totals;
    let (down, up) = (
        t.downloaded.load(Ordering::Relaxed) as i64,
        t.uploaded.load(Ordering::Relaxed) as i64,
    );
    let _ = node
        .store()
        .call(move |c| {
            c.execute(
                "INSERT INTO stats (key, value) VALUES ('downloaded', ?1), ('uploaded', ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                rusqlite::params![down, up],
            )?;
            Ok(())
        })
        .await;
}
