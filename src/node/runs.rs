//! Running torrents: the queue that starts them in the engine session (each with a
//! monitor task the node owns) and stopping them again.
//!
//! A torrent starts when it is active, not failed, and a slot of its class is free:
//! `max_active` downloads, `max_active_seeds` seeds (0: no limit, the default for
//! seeds, so seeding never waits unless asked), taken in queue order
//! (`super::queue`). Force-started torrents, and running ones that moved no payload
//! for `stalled_secs`, do not count. With `queueing_enabled` off everything starts.
//! Callers hold `Inner::ops`. Once the node shuts down ([`stop_all`]) nothing starts
//! any more.

use std::sync::atomic::Ordering;

use shoal_engine::{Phase, TorrentOptions};
use shoal_proto::metainfo::Metainfo;
use shoal_proto::InfoHash;

use super::check::{decide, Check};
use super::entry::Run;
use super::save::save_resume;
use super::Node;
use crate::store::now_secs;
use crate::store::records::add_history;
use crate::store::torrents::{self, Intent};

/// A torrent as the queue sees it.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub hash: InfoHash,
    /// Every wanted piece verified: a seed.
    pub complete: bool,
    /// In the session or being started.
    pub running: bool,
    /// Waiting: active, not failed, not running.
    pub waiting: bool,
    /// Runs whatever the limits.
    pub force: bool,
    /// Running but moving nothing for `stalled_secs`.
    pub stalled: bool,
    /// In the session (not still starting), so it can go back to the queue.
    pub in_session: bool,
}

/// What the queue does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Start this torrent.
    Start(InfoHash),
    /// Stop this one and let it wait as `queued` (its class is over its limit).
    Queue(InfoHash),
}

/// The next step for `slots` in queue order. Downloads beyond `max_downloads` and
/// seeds beyond `max_seeds` wait (0: no limit); forced and stalled torrents do not
/// count. A class over its limit (the limit lowered, a download turned seed, a stalled
/// torrent moving again) sends its last running member back to the queue.
pub(crate) fn next_step(
    slots: &[Slot],
    queueing: bool,
    max_downloads: u32,
    max_seeds: u32,
) -> Option<Step> {
    if !queueing {
        return slots
            .iter()
            .find(|s| s.waiting)
            .map(|s| Step::Start(s.hash));
    }
    let counted = |s: &&Slot| s.running && !s.force && !s.stalled;
    let dl = slots.iter().filter(counted).filter(|s| !s.complete).count();
    let seeds = slots.iter().filter(counted).filter(|s| s.complete).count();
    for (complete, n, max) in [(false, dl, max_downloads), (true, seeds, max_seeds)] {
        if max > 0 && n > max as usize {
            let last = slots
                .iter()
                .rev()
                .filter(counted)
                .find(|s| s.complete == complete && s.in_session);
            if let Some(s) = last {
                return Some(Step::Queue(s.hash));
            }
        }
    }
    let free = |n: usize, max: u32| max == 0 || n < max as usize;
    slots
        .iter()
        .filter(|s| s.waiting)
        .find(|s| {
            s.force
                || if s.complete {
                    free(seeds, max_seeds)
                } else {
                    free(dl, max_downloads)
                }
        })
        .map(|s| Step::Start(s.hash))
}

/// The torrents as the queue sees them, in queue order.
fn slots(node: &Node, stalled_secs: u64) -> Vec<Slot> {
    let now = std::time::Instant::now();
    let map = node.torrents();
    let mut v: Vec<(i64, i64, Slot)> = map
        .iter()
        .map(|(h, e)| {
            let running = e.run.is_some() || e.starting;
            let slot = Slot {
                hash: *h,
                complete: e.is_complete(),
                running,
                waiting: e.intent == Intent::Active && e.error.is_none() && !running,
                force: e.auto.force_start,
                stalled: e.run.is_some() && e.auto.activity.is_stalled(now, stalled_secs),
                in_session: e.run.is_some(),
            };
            (e.auto.queue_position, e.added_at, slot)
        })
        .collect();
    v.sort_by_key(|(pos, added, _)| (*pos, *added));
    v.into_iter().map(|(_, _, s)| s).collect()
}

/// Starts what may start and queues what is over the limits. Caller holds `ops`.
pub(crate) async fn schedule_locked(node: &Node) {
    loop {
        if node.inner().closing.load(Ordering::Relaxed) {
            return;
        }
        let s = node.settings();
        let slots = slots(node, s.auto.stalled_secs);
        match next_step(
            &slots,
            s.auto.queueing_enabled,
            s.max_active,
            s.auto.max_active_seeds,
        ) {
            Some(Step::Start(hash)) => start(node, hash).await,
            Some(Step::Queue(hash)) => {
                tracing::info!(torrent = %hash, "over the active limit: queued");
                stop_run(node, hash).await;
            }
            None => return,
        }
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
        handle.set_limits(e.speed.up, e.speed.down);
        for (addr, source) in std::mem::take(&mut e.pending_peers) {
            handle.add_peers_from(&[addr], source);
        }
        e.auto.activity.restart(std::time::Instant::now());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(n: u8, complete: bool, running: bool) -> Slot {
        Slot {
            hash: InfoHash([n; 20]),
            complete,
            running,
            waiting: !running,
            force: false,
            stalled: false,
            in_session: running,
        }
    }

    fn h(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    #[test]
    fn downloads_start_in_queue_order_up_to_the_limit() {
        let mut v = vec![
            slot(1, false, false),
            slot(2, false, false),
            slot(3, true, false),
        ];
        // The seed has no limit of its own by default.
        assert_eq!(next_step(&v, true, 1, 0), Some(Step::Start(h(1))));
        v[0] = slot(1, false, true);
        assert_eq!(next_step(&v, true, 1, 0), Some(Step::Start(h(3))));
        v[2] = slot(3, true, true);
        assert_eq!(next_step(&v, true, 1, 0), None);
        // A stalled download frees its slot, a forced one needs none.
        v[0].stalled = true;
        assert_eq!(next_step(&v, true, 1, 0), Some(Step::Start(h(2))));
        v[0].stalled = false;
        v[1].force = true;
        assert_eq!(next_step(&v, true, 1, 0), Some(Step::Start(h(2))));
        // Queueing off: everything starts.
        v[1].force = false;
        assert_eq!(next_step(&v, false, 1, 0), Some(Step::Start(h(2))));
    }

    #[test]
    fn seeds_wait_for_their_limit_and_the_last_over_it_is_queued() {
        let v = vec![slot(1, true, true), slot(2, true, false)];
        assert_eq!(next_step(&v, true, 5, 1), None);
        assert_eq!(next_step(&v, true, 5, 0), Some(Step::Start(h(2))));
        let over = vec![
            slot(1, true, true),
            slot(2, true, true),
            slot(3, true, true),
        ];
        assert_eq!(next_step(&over, true, 5, 2), Some(Step::Queue(h(3))));
        // A torrent still starting is not sent back; the one before it is.
        let mut starting = over.clone();
        starting[2].in_session = false;
        assert_eq!(next_step(&starting, true, 5, 2), Some(Step::Queue(h(2))));
        assert_eq!(next_step(&over, false, 5, 2), None);
    }
}
