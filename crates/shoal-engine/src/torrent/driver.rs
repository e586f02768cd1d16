//! The torrent's driver task: opens and checks the data, starts the announce task
//! (and the DHT task when the torrent may use the DHT),
//! recomputes rates every second, runs the choker every ten seconds (and at once
//! when a seeder's peers come to hold, or stop holding, every piece: `rechoke`),
//! and keeps the connection budget filled from known addresses.
//!
//! It ticks only while there is something to do: peers connected, dials pending or
//! queued, or bytes moved within the rate window. An idle torrent's driver sleeps
//! until a peer registers or addresses to dial arrive (`Shared::wake`), so a node
//! with many idle torrents does not wake once a second for each.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::info;

use super::{
    PeerInfo, PeerKey, PeerSource, Phase, Shared, TorrentEvents, TorrentOptions, TrackerInfo,
};
use crate::choker::PeerSnapshot;
use crate::dht::DhtHandle;
use crate::peer::PeerCmd;
use crate::picker::Priority;
use crate::rate::RateEstimator;
use crate::storage::OpenMode;

/// Driver period while the torrent has peers, dials or non-zero rates.
const TICK: Duration = Duration::from_secs(1);

/// How long `stop` waits for peer and piece tasks after cancelling them (a peer
/// waits up to 5 s for its writer to flush).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A point-in-time view of a torrent for CLIs and APIs.
#[derive(Debug, Clone)]
pub struct TorrentStatus {
    /// Torrent name.
    pub name: String,
    /// Total bytes.
    pub total_bytes: u64,
    /// Bytes in verified pieces.
    pub verified_bytes: u64,
    /// Verified pieces.
    pub pieces_have: u32,
    /// Pieces in all.
    pub pieces_total: u32,
    /// Payload bytes received.
    pub downloaded: u64,
    /// Payload bytes sent.
    pub uploaded: u64,
    /// Bytes per second received, recent average.
    pub down_rate: u64,
    /// Bytes per second sent, recent average.
    pub up_rate: u64,
    /// Connected peers.
    pub peers: usize,
    /// Connected peers that have every piece.
    pub seeds: usize,
    /// Pieces that failed their hash check.
    pub hash_failures: u64,
    /// Peers dropped and banned for sending corrupt data.
    pub banned_peers: usize,
    /// Last tracker outcome.
    pub tracker: Option<Result<String, String>>,
    /// Seeders in the swarm, as the tracker last said.
    pub swarm_seeders: Option<u32>,
    /// Leechers in the swarm, as the tracker last said.
    pub swarm_leechers: Option<u32>,
    /// Every tracker with its last outcome.
    pub trackers: Vec<TrackerInfo>,
    /// Current phase.
    pub phase: Phase,
}

/// A running torrent.
#[derive(Clone)]
pub struct TorrentHandle {
    pub(crate) shared: Arc<Shared>,
    rates: Arc<std::sync::Mutex<(u64, u64)>>,
    task: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl TorrentHandle {
    pub(crate) fn start(
        shared: Arc<Shared>,
        opts: TorrentOptions,
        dht: Option<DhtHandle>,
    ) -> TorrentHandle {
        // Before the check, which may take minutes: changes made through the handle
        // meanwhile then apply on top of these, not the other way round.
        shared.init_file_choices(
            opts.wanted_files.as_deref(),
            opts.file_priorities.as_deref(),
        );
        let rates = Arc::new(std::sync::Mutex::new((0, 0)));
        let drive = drive(shared.clone(), opts, rates.clone(), dht);
        let task = shared
            .tasks
            .spawn(shared.traced(shared.driver_span(), drive));
        TorrentHandle {
            shared,
            rates,
            task: Arc::new(std::sync::Mutex::new(Some(task))),
        }
    }

    /// The torrent's info-hash.
    pub fn info_hash(&self) -> shoal_proto::InfoHash {
        self.shared.meta.info_hash
    }

    /// Watches the phase (checking, downloading, seeding, error).
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.shared.phase_rx()
    }

    /// Dials these peers (besides those the trackers give), given by the user.
    pub fn add_peers(&self, addrs: &[std::net::SocketAddr]) {
        self.shared.add_peers(addrs, PeerSource::Manual);
    }

    /// Dials these peers, learnt from `source`.
    pub fn add_peers_from(&self, addrs: &[std::net::SocketAddr], source: PeerSource) {
        self.shared.add_peers(addrs, source);
    }

    /// Announces to the trackers now instead of at the next interval (qBittorrent's
    /// "force reannounce"); the round after it follows the tracker's answer as usual.
    /// Several requests before the round starts make one round.
    pub fn reannounce(&self) {
        self.shared.reannounce_notify().notify_one();
    }

    /// A snapshot of counters and rates.
    /// Sets this torrent's own upload and download limits in bytes per second (0:
    /// none), on top of the session's; peers waiting recompute their wait.
    pub fn set_limits(&self, up: u64, down: u64) {
        self.shared.own_limits.set(up, down);
    }

    /// This torrent's own (upload, download) limits in bytes per second (0: none).
    pub fn limits(&self) -> (u64, u64) {
        (self.shared.own_limits.up(), self.shared.own_limits.down())
    }

    pub fn status(&self) -> TorrentStatus {
        let (down_rate, up_rate) = *self.rates.lock().unwrap_or_else(|p| p.into_inner());
        let sh = &self.shared;
        let info = &sh.meta.info;
        let st = sh.lock();
        let verified_bytes = st.have.iter_set().map(|i| info.piece_size(i)).sum();
        let seeds = st
            .peers
            .values()
            .filter(|p| p.stats.is_seed.load(Ordering::Relaxed))
            .count();
        TorrentStatus {
            name: info.name.clone(),
            total_bytes: info.total_length,
            verified_bytes,
            pieces_have: st.have.count_ones(),
            pieces_total: info.num_pieces(),
            downloaded: sh.downloaded.load(Ordering::Relaxed),
            uploaded: sh.uploaded.load(Ordering::Relaxed),
            down_rate,
            up_rate,
            peers: st.peers.len(),
            seeds,
            hash_failures: st.hash_failures,
            banned_peers: st.banned_ids.len(),
            tracker: st.tracker_status.clone(),
            swarm_seeders: st.trackers.iter().find_map(|t| t.seeders),
            swarm_leechers: st.trackers.iter().find_map(|t| t.leechers),
            trackers: st.trackers.clone(),
            phase: sh.phase_rx().borrow().clone(),
        }
    }

    /// Payload bytes received and sent so far (two atomic loads; [`Self::status`]
    /// has them too, with everything else).
    pub fn transferred(&self) -> (u64, u64) {
        let sh = &self.shared;
        (
            sh.downloaded.load(Ordering::Relaxed),
            sh.uploaded.load(Ordering::Relaxed),
        )
    }

    /// The torrent's metainfo.
    pub fn metainfo(&self) -> Arc<shoal_proto::metainfo::Metainfo> {
        self.shared.meta.clone()
    }

    /// Verified pieces (for resume data and piece maps).
    pub fn have_pieces(&self) -> shoal_proto::wire::Bitfield {
        self.shared.have_snapshot()
    }

    /// Events: verified and failed pieces, blocks sent, completion, errors.
    pub fn subscribe(&self) -> TorrentEvents {
        self.shared.subscribe()
    }

    /// Changes about once a second while the torrent is active (has peers, dials, or
    /// moved bytes in the last few seconds), i.e. whenever counters, rates and peers
    /// may have moved; does not change while it is idle. For pollers that want to
    /// sleep while the torrent does.
    pub fn ticks(&self) -> watch::Receiver<u64> {
        self.shared.ticks.subscribe()
    }

    /// Downloads file `index` or skips it.
    pub fn set_file_wanted(&self, index: usize, wanted: bool) {
        self.shared.set_file_wanted(index, wanted);
    }

    /// Sets the download priority of file `index`: new pieces are started from the
    /// highest priority first.
    pub fn set_file_priority(&self, index: usize, priority: Priority) {
        self.shared.set_file_priority(index, priority);
    }

    /// Verified bytes per file.
    pub fn file_progress(&self) -> Vec<u64> {
        self.shared.file_progress()
    }

    /// Connected peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let n = f64::from(self.shared.meta.info.num_pieces().max(1));
        let st = self.shared.lock();
        st.peers
            .values()
            .map(|p| {
                let s = &p.stats;
                let r = |a: &std::sync::atomic::AtomicBool| a.load(Ordering::Relaxed);
                PeerInfo {
                    addr: p.addr,
                    client: p.client.clone(),
                    progress: s.pieces.load(Ordering::Relaxed) as f64 / n,
                    down_rate: s.down_rate.load(Ordering::Relaxed),
                    up_rate: s.up_rate.load(Ordering::Relaxed),
                    downloaded: s.downloaded.load(Ordering::Relaxed),
                    uploaded: s.uploaded.load(Ordering::Relaxed),
                    seed: r(&s.is_seed),
                    am_choking: r(&s.am_choking),
                    am_interested: r(&s.am_interested),
                    peer_choking: r(&s.peer_choking),
                    peer_interested: r(&s.peer_interested),
                    incoming: p.incoming,
                    encrypted: p.encrypted,
                    transport: p.transport,
                    ipv6: super::types::is_ipv6(&p.addr),
                    snubbed: r(&s.snubbed),
                    source: p.source,
                }
            })
            .collect()
    }

    /// Stops the torrent: disconnects peers, sends `stopped` to trackers, waits (a
    /// bounded time) for its tasks (driver, announce, peers, pieces), flushes data.
    pub async fn stop(&self) {
        self.shared.cancel.cancel();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        self.shared.tasks.close();
        if tokio::time::timeout(STOP_GRACE, self.shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                name = %self.shared.meta.info.name,
                tasks = self.shared.tasks.len(),
                "torrent tasks still running after stop"
            );
        }
        if let Some(s) = self.shared.storage() {
            let _ = tokio::task::spawn_blocking(move || s.sync()).await;
        }
    }
}

async fn drive(
    shared: Arc<Shared>,
    opts: TorrentOptions,
    rates: Arc<std::sync::Mutex<(u64, u64)>>,
    dht: Option<DhtHandle>,
) {
    if let Err(msg) = open_and_check(&shared, &opts).await {
        shared.set_phase(Phase::Error(msg));
        return;
    }
    // Stopped while checking: no `started` announce for a torrent already gone.
    if shared.cancel.is_cancelled() {
        return;
    }
    let tiers = if opts.trackers.is_empty() {
        shared.meta.tracker_tiers()
    } else {
        opts.trackers.clone()
    };
    shared.init_trackers(&tiers);
    let announce = crate::announce::run(shared.clone(), tiers);
    let announce = shared
        .tasks
        .spawn(shared.traced(shared.announce_span(), announce));
    let dht = dht.map(|dht| {
        let lookups = super::dht::run(shared.clone(), dht);
        shared
            .tasks
            .spawn(shared.traced(shared.dht_span(), lookups))
    });
    shared.add_peers(&opts.peers, opts.peer_source);
    // Addresses learnt while checking (a magnet's peers, the DHT) wait for no tick.
    shared.dial_candidates();

    let mut rng = SmallRng::from_entropy();
    let mut peer_rates: HashMap<PeerKey, (u64, u64, RateEstimator, RateEstimator)> = HashMap::new();
    let (mut down, mut up) = (RateEstimator::new(), RateEstimator::new());
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        if is_idle(&shared, &down, &up) {
            // Nothing moves until a peer registers or addresses to dial arrive: wait
            // for that instead of ticking (1000 idle torrents would wake 1000 times
            // a second). Rates are zero and no choking decision is pending.
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = shared.cancel.cancelled() => break,
            }
            tick.reset_immediately();
        }
        // A rechoke wake-up runs the choker now but is not a tick: the dial cadence
        // and the `ticks` counter follow the clock only.
        let ticked = tokio::select! {
            _ = tick.tick() => true,
            _ = shared.rechoke.notified() => false,
            _ = shared.cancel.cancelled() => break,
        };
        n += u64::from(ticked);
        let now = Instant::now();
        down.add_total(shared.downloaded.load(Ordering::Relaxed), now);
        up.add_total(shared.uploaded.load(Ordering::Relaxed), now);
        *rates.lock().unwrap_or_else(|p| p.into_inner()) = (down.rate(now), up.rate(now));

        let mut st = shared.lock();
        peer_rates.retain(|k, _| st.peers.contains_key(k));
        let mut snaps = Vec::with_capacity(st.peers.len());
        for (k, p) in &st.peers {
            let e = peer_rates
                .entry(*k)
                .or_insert_with(|| (0, 0, RateEstimator::new(), RateEstimator::new()));
            e.2.add_total(p.stats.downloaded.load(Ordering::Relaxed), now);
            e.3.add_total(p.stats.uploaded.load(Ordering::Relaxed), now);
            p.stats.down_rate.store(e.2.rate(now), Ordering::Relaxed);
            p.stats.up_rate.store(e.3.rate(now), Ordering::Relaxed);
            snaps.push(PeerSnapshot {
                key: *k,
                interested: p.stats.peer_interested.load(Ordering::Relaxed),
                download_rate: e.2.rate(now),
                upload_rate: e.3.rate(now),
                is_seed: p.stats.is_seed.load(Ordering::Relaxed),
            });
        }
        shared.note_coverage(&mut st);
        let decision = st.choker.tick(now, &snaps, shared.is_seeding(), &mut rng);
        for k in decision.unchoke {
            if let Some(p) = st.peers.get(&k) {
                let _ = p.tx.send(PeerCmd::Unchoke);
            }
        }
        for k in decision.choke {
            if let Some(p) = st.peers.get(&k) {
                let _ = p.tx.send(PeerCmd::Choke);
            }
        }
        drop(st);
        if ticked {
            if n % 5 == 0 {
                shared.dial_candidates();
            }
            shared.ticks.send_replace(n);
        }
    }
    let _ = announce.await;
    if let Some(dht) = dht {
        let _ = dht.await;
    }
}

/// No peers, no dials pending, no addresses to dial and both rates at zero: the
/// driver has nothing to do until [`Shared::wake`] is notified.
fn is_idle(shared: &Shared, down: &RateEstimator, up: &RateEstimator) -> bool {
    let now = Instant::now();
    if down.rate(now) != 0 || up.rate(now) != 0 {
        return false;
    }
    let st = shared.lock();
    st.peers.is_empty() && st.dialing.is_empty() && st.candidates.is_empty()
}

/// Opens the files and verifies what is already there.
async fn open_and_check(shared: &Arc<Shared>, opts: &TorrentOptions) -> Result<(), String> {
    let info = shared.meta.info.clone();
    let dir = opts.save_dir.clone();
    let mode = if opts.seed_only {
        OpenMode::Seed
    } else {
        OpenMode::Download
    };
    let sh = shared.clone();
    let total = info.num_pieces();
    let trusted = opts.verified.clone().filter(|v| v.len() == total as usize);
    let factory = opts.storage.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let storage = factory.open(&dir, &info, mode).map_err(|e| e.to_string())?;
        if let Some(have) = trusted {
            return Ok::<_, String>((storage, have));
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let progress = |done: u32| sh.set_phase(Phase::Checking { done, total });
        let have = storage
            .check_all(threads, &progress)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((storage, have))
    })
    .await
    .map_err(|e| format!("checking data failed: {e}"))?;
    let (storage, have) = checked?;
    let good = have.iter().filter(|h| **h).count();
    if opts.seed_only && good < have.len() {
        return Err(format!(
            "the data under {} does not match the torrent: {} of {} pieces are missing or damaged; \
             point --dir at the folder that holds {:?}",
            opts.save_dir.display(),
            have.len() - good,
            have.len(),
            shared.meta.info.name
        ));
    }
    shared.set_storage(storage);
    shared.load_pieces(&have);
    info!(name = %shared.meta.info.name, good, total = have.len(), "data checked");
    shared.set_phase(if shared.is_seeding() {
        Phase::Seeding
    } else {
        Phase::Downloading
    });
    Ok(())
}
