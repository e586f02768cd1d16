//! Running torrents: the `max_active` queue that starts them in the engine session
//! (each with a monitor task the node owns) and stopping them again.
//!
//! A torrent starts when it is active, not failed, and either complete (seeding never
//! waits) or a download slot is free. Callers hold `Inner::ops`. Once the node shuts
//! down ([`stop_all`]) nothing starts any more.

use std::sync::atomic::Ordering;

use shoal_engine::{Phase, TorrentOptions};
use shoal_proto::metainfo::Metainfo;
use shoal_proto::InfoHash;

use super::check::{decide, Check};
use super::entry::{Entry, Run};
use super::save::save_resume;
use super::Node;
use crate::store::now_secs;
use crate::store::records::add_history;
use crate::store::torrents::{self, Intent};

/// Starts what may start. Caller holds `ops`.
pub(crate) async fn schedule_locked(node: &Node) {
    loop {
        if node.inner().closing.load(Ordering::Relaxed) {
            return;
        }
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

/// Stats the files and adds the torrent to the session with its monitor. Caller
/// holds `ops`.
async fn start(node: &Node, hash: InfoHash) {
    let (meta, save_dir, resume, complete, wanted, priorities) = {
        let mut map = node.torrents();
        let Some(e) = map.get_mut(&hash) else { return };
        e.starting = true;
        // A recheck trusts no record and takes a missing file as data to download.
        let recheck = std::mem::take(&mut e.recheck);
        (
            e.meta.clone(),
            e.save_dir.clone(),
            e.resume.clone().filter(|_| !recheck),
            e.completed_at.is_some() && e.have.is_full() && !recheck,
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
    // The node owns the monitor: its shutdown cancels and waits for it even if this
    // run is never stopped through `stop_run`.
    let cancel = node.inner().cancel.child_token();
    let monitor = super::monitor::watch(node.clone(), handle.clone(), cancel.clone());
    let monitor = node.inner().tasks.spawn(monitor);
    let started = {
        let mut map = node.torrents();
        let Some(e) = map.get_mut(&hash) else { return };
        e.starting = false;
        let (order, first_last) = e.order.engine();
        handle.set_download_order(order, first_last);
        for (addr, source) in std::mem::take(&mut e.pending_peers) {
            handle.add_peers_from(&[addr], source);
        }
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
    // Under `ops`, so no start already under way can finish after this, and a late
    // completion or a request cannot start a torrent again.
    node.inner().closing.store(true, Ordering::Relaxed);
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

/// Puts a torrent into the error state (its run already stopped).
pub(crate) async fn fail_locked(node: &Node, hash: InfoHash, message: String) {
    let record = {
        let mut map = node.torrents();
        let Some(e) = map.get_mut(&hash) else { return };
        e.error = Some(message.clone());
        e.starting = false;
        (!e.is_complete()).then(|| e.history("failed", Some(message.clone())))
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
