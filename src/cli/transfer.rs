//! `shoal seed` and `shoal download`: one torrent in a foreground session.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shoal_engine::{
    PeerSource, Phase, Session, SessionConfig, TorrentHandle, TorrentOptions, TorrentStatus,
};
use shoal_proto::magnet::Magnet;
use shoal_proto::metainfo::Metainfo;

use super::{human_bytes, human_duration, interrupted, NetArgs};

async fn start(
    torrent: PathBuf,
    net: &NetArgs,
    seed_only: bool,
) -> anyhow::Result<(Session, TorrentHandle)> {
    let magnet = torrent
        .to_str()
        .filter(|s| {
            s.get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("magnet:"))
        })
        .map(Magnet::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("bad magnet link: {e}"))?;
    let meta = match &magnet {
        Some(_) => None,
        None => Some(super::create::load(&torrent)?),
    };
    let mut config = SessionConfig {
        listen: SocketAddr::new(net.bind_ip, net.port.unwrap_or(0)),
        max_up: net.max_up.unwrap_or(0),
        max_down: net.max_down.unwrap_or(0),
        lsd: super::lsd_config(net.lsd, net.lsd_interface),
        pex: net.pex,
        dht: super::dht_config(
            super::dht_bootstrap(net.dht, &net.dht_bootstrap),
            Vec::new(),
        ),
        encryption: net.encryption,
        utp: net.utp,
        ..SessionConfig::default()
    };
    if net.port.is_some() {
        config.port_range = None;
    }
    let session = Session::start(config).await?;
    println!("peer port: {}", session.listen_port());
    let mut wanted_files = None;
    let (meta, met) = match (meta, magnet) {
        (Some(m), _) => (m, Vec::new()),
        (None, Some(m)) => {
            let (meta, met) = fetch_metadata(&session, m.clone(), net).await?;
            wanted_files = m.wanted_files(meta.info.files.len());
            (meta, met)
        }
        (None, None) => unreachable!("either a file or a magnet link"),
    };
    let trackers = net.trackers.iter().map(|t| vec![t.clone()]).collect();
    let opts = TorrentOptions {
        save_dir: net.dir.clone(),
        seed_only,
        peers: net.peers.clone(),
        trackers,
        wanted_files,
        ..TorrentOptions::default()
    };
    let handle = session.add_torrent(meta, opts)?;
    for (addr, source) in met {
        handle.add_peers_from(&[addr], source);
    }
    Ok((session, handle))
}

/// Fetches the metadata of `magnet` from peers (its `x.pe` and `--peer`, its trackers
/// or `--tracker`), printing what happens; Ctrl-C gives up.
async fn fetch_metadata(
    session: &Session,
    mut magnet: Magnet,
    net: &NetArgs,
) -> anyhow::Result<(Metainfo, Vec<(SocketAddr, PeerSource)>)> {
    magnet.peers.extend(net.peers.iter().map(|p| p.to_string()));
    if !net.trackers.is_empty() {
        magnet.trackers = net.trackers.clone();
    }
    println!("fetching metadata for {} from peers", magnet.info_hash);
    let mut fetch = session.fetch_metadata(&magnet);
    let fetched = tokio::select! {
        r = fetch.wait() => r?,
        _ = tokio::signal::ctrl_c() => {
            fetch.cancel();
            anyhow::bail!("interrupted while fetching metadata");
        }
    };
    let tiers = magnet.trackers.iter().map(|t| vec![t.clone()]).collect();
    let meta = Metainfo::from_info_bytes(&fetched.info_bytes, tiers)
        .map_err(|e| anyhow::anyhow!("the metadata peers gave is not a valid torrent: {e}"))?;
    println!("metadata received: {}", meta.info.name);
    Ok((meta, fetched.peers))
}

/// Follows one torrent for a foreground command: status twice a second and on phase
/// changes, a progress bar on stderr, tracker errors as they happen.
struct Watch<'a> {
    handle: &'a TorrentHandle,
    phase: tokio::sync::watch::Receiver<Phase>,
    bar: ProgressBar,
    tick: tokio::time::Interval,
    tracker_error: Option<String>,
}

impl<'a> Watch<'a> {
    fn new(handle: &'a TorrentHandle) -> Self {
        Watch {
            handle,
            phase: handle.phase(),
            bar: bar(),
            tick: tokio::time::interval(Duration::from_millis(500)),
            tracker_error: None,
        }
    }

    /// The next status, or `None` once `stop` fires.
    async fn next(
        &mut self,
        stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Option<TorrentStatus> {
        tokio::select! {
            _ = stop.as_mut() => return None,
            _ = self.tick.tick() => {}
            _ = self.phase.changed() => {}
        }
        let s = self.handle.status();
        report_tracker(&self.bar, &s, &mut self.tracker_error);
        Some(s)
    }

    fn show(&self, prefix: &'static str, s: &TorrentStatus) {
        self.bar.set_prefix(prefix);
        self.bar.set_length(s.total_bytes);
        self.bar.set_position(s.verified_bytes);
        self.bar.set_message(describe(s));
    }

    fn fail(&self, e: &str) -> ExitCode {
        self.bar.finish_and_clear();
        eprintln!("error: {e}");
        ExitCode::FAILURE
    }
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix} {bar:30} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Prints a tracker's refusal or error once each time it changes, so the user sees
/// e.g. the tracker's `failure reason` without waiting for a stall.
fn report_tracker(bar: &ProgressBar, s: &TorrentStatus, last: &mut Option<String>) {
    let now = match &s.tracker {
        Some(Err(e)) => Some(e.clone()),
        _ => None,
    };
    if now != *last {
        if let Some(e) = &now {
            bar.suspend(|| eprintln!("tracker: {e}"));
        }
        *last = now;
    }
}

fn describe(s: &TorrentStatus) -> String {
    let eta = (s.total_bytes - s.verified_bytes)
        .checked_div(s.down_rate)
        .map_or_else(|| "-".to_string(), human_duration);
    format!(
        "{}/{} down {}/s up {}/s peers {} ({} seeds) eta {eta}",
        human_bytes(s.verified_bytes),
        human_bytes(s.total_bytes),
        human_bytes(s.down_rate),
        human_bytes(s.up_rate),
        s.peers,
        s.seeds
    )
}

pub async fn seed(torrent: PathBuf, net: NetArgs) -> anyhow::Result<ExitCode> {
    let stop = interrupted();
    let (session, handle) = start(torrent, &net, true).await?;
    let mut watch = Watch::new(&handle);
    let name = handle.status().name;
    let mut announced = false;
    tokio::pin!(stop);
    let code = loop {
        let Some(s) = watch.next(&mut stop).await else {
            break ExitCode::SUCCESS;
        };
        match &s.phase {
            Phase::Error(e) => break watch.fail(e),
            Phase::Seeding if !announced => {
                announced = true;
                println!("seeding {name}");
            }
            _ => {}
        }
        watch.show("seeding", &s);
    };
    watch.bar.finish_and_clear();
    let s = handle.status();
    session.shutdown().await;
    println!("uploaded: {}", s.uploaded);
    Ok(code)
}

pub async fn download(
    torrent: PathBuf,
    net: NetArgs,
    keep_seeding: bool,
    stall_timeout: u64,
) -> anyhow::Result<ExitCode> {
    let stop = interrupted();
    let (session, handle) = start(torrent, &net, false).await?;
    // The moment the first piece is verified and stored (benchmarks time it).
    let mut events = handle.subscribe();
    let first_piece = tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if matches!(e, shoal_engine::TorrentEvent::PieceVerified { .. }) {
                println!("first piece verified");
                return;
            }
        }
    });
    let mut watch = Watch::new(&handle);
    let bar = watch.bar.clone();
    let name = handle.status().name;
    tokio::pin!(stop);
    let mut last_progress = (0u64, Instant::now());
    let mut done = false;
    let code = loop {
        let Some(s) = watch.next(&mut stop).await else {
            break if done {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(130)
            };
        };
        match &s.phase {
            Phase::Error(e) => break watch.fail(e),
            Phase::Seeding if !done => {
                done = true;
                bar.finish_and_clear();
                println!("complete: {name}");
                println!("downloaded: {} in {} pieces", s.downloaded, s.pieces_total);
                println!("{}", by_transport(&handle));
                if !keep_seeding {
                    break ExitCode::SUCCESS;
                }
                println!("seeding {name}");
            }
            Phase::Checking { done: d, total } => {
                bar.set_prefix("checking");
                bar.set_length(u64::from(*total));
                bar.set_position(u64::from(*d));
                continue;
            }
            _ => {}
        }
        if !done {
            watch.show("downloading", &s);
            if s.downloaded != last_progress.0 {
                last_progress = (s.downloaded, Instant::now());
            } else if stall_timeout > 0
                && last_progress.1.elapsed() > Duration::from_secs(stall_timeout)
            {
                bar.finish_and_clear();
                let tracker = match &s.tracker {
                    Some(Err(e)) => format!("; last tracker error: {e}"),
                    Some(Ok(t)) => format!("; tracker says {t}"),
                    None => String::new(),
                };
                eprintln!(
                    "error: no data received for {stall_timeout} s with {} peers connected ({} of {} verified){tracker}; \
                     check that a seeder is online",
                    s.peers,
                    human_bytes(s.verified_bytes),
                    human_bytes(s.total_bytes)
                );
                break ExitCode::from(2);
            }
        }
    };
    let s = handle.status();
    first_piece.abort();
    session.shutdown().await;
    if keep_seeding {
        println!("uploaded: {}", s.uploaded);
    }
    Ok(code)
}

/// `downloaded over: tcp N utp M`: payload bytes from the peers still connected, by
/// transport (the benchmarks check which transport carried a transfer).
fn by_transport(handle: &TorrentHandle) -> String {
    let (mut tcp, mut utp) = (0u64, 0u64);
    for p in handle.peers() {
        match p.transport {
            shoal_engine::peer::TransportKind::Tcp => tcp += p.downloaded,
            shoal_engine::peer::TransportKind::Utp => utp += p.downloaded,
        }
    }
    format!("downloaded over: tcp {tcp} utp {utp}")
}
