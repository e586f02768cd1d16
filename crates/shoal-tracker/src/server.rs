//! The listening tracker: accept loop, connection tasks, UDP workers, the expiry sweep
//! and the stats sampler.
//!
//! Task tree: [`Tracker::run`] owns a `JoinSet` holding the sweep task, the stats
//! sampler, the shared-catalog refresher (PostgreSQL only) and the UDP workers, another
//! holding the accept loop (`accept` module), which owns one task per connection it
//! does not answer inline, and a third holding the swarm saver (`persist` module; only
//! with a data dir or a PostgreSQL catalog). A semaphore of `max_connections` permits
//! bounds the connections; when it is exhausted the accept loop waits and new clients
//! queue in the kernel backlog. Shutdown stops the accept loop, which aborts its
//! connection tasks and waits for them, then aborts every other task and waits, then
//! tells the saver to make its last save (nothing changes the swarms by then) and
//! waits for it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tracing::{debug, info, warn, Instrument};

use crate::catalog::Catalog;
use crate::config::TrackerConfig;
use crate::service::Service;
use crate::swarm_store::SwarmStore;
use crate::udp::ConnectionIds;

mod accept;
mod persist;

/// Attempts at finding a port free for both TCP and UDP when binding port 0.
const BIND_ATTEMPTS: usize = 20;

/// A tracker bound to its sockets (TCP, and UDP on the same port), not yet serving.
pub struct Tracker {
    /// Non-blocking; accepted with [`crate::sys::accept_nonblocking`] so a connection
    /// answered inline never touches the reactor.
    listener: AsyncFd<std::net::TcpListener>,
    udp: Option<UdpSocket>,
    service: Arc<Service>,
    /// Where the swarms are saved, if anywhere.
    swarm_store: Option<Arc<dyn SwarmStore>>,
}

impl Tracker {
    /// Validates `config`, opens the catalog (creating `data_dir` if needed), restores
    /// the swarms saved by the last run (from `data_dir` or `catalog_db`; a store that
    /// cannot be read is logged and the tracker starts with none) and binds `addr` for
    /// HTTP and, unless `config.udp` is off, UDP on the same port (port 0 picks a port
    /// free for both).
    pub async fn bind(addr: SocketAddr, config: TrackerConfig) -> io::Result<Tracker> {
        config.validate()?;
        let (listener, udp) = bind_pair(addr, config.udp).await?;
        let cfg = config.clone();
        let catalog = tokio::task::spawn_blocking(move || Catalog::open(&cfg))
            .await
            .map_err(io::Error::other)?
            .map_err(|e| io::Error::other(format!("cannot open the catalog: {e}")))?;
        let listener = crate::sys::async_listener(listener.into_std()?)?;
        let service = Arc::new(Service::new(config, catalog));
        let swarm_store = persist::restore(&service).await;
        Ok(Tracker {
            listener,
            udp,
            service,
            swarm_store,
        })
    }

    /// The UDP announce URL, e.g. `udp://127.0.0.1:6969/announce`, when UDP is on.
    pub fn udp_announce_url(&self) -> io::Result<Option<String>> {
        match &self.udp {
            Some(u) => Ok(Some(format!("udp://{}/announce", u.local_addr()?))),
            None => Ok(None),
        }
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.get_ref().local_addr()
    }

    /// The announce URL clients should use, e.g. `http://127.0.0.1:6969/announce`.
    pub fn announce_url(&self) -> io::Result<String> {
        Ok(format!("http://{}/announce", self.local_addr()?))
    }

    /// Serves until `shutdown` completes, then closes every connection and returns.
    /// Accept errors (such as running out of file descriptors) are logged and retried,
    /// never fatal.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Tracker {
            listener,
            udp,
            service,
            swarm_store,
        } = self;
        let addr = listener.get_ref().local_addr()?;
        info!(%addr, udp = udp.is_some(), "tracker listening");
        let mut tasks = JoinSet::new();
        tasks.spawn(sweep(service.clone()).instrument(tracing::info_span!("tracker_sweep")));
        tasks.spawn(sample_stats(service.clone()));
        if service.catalog.is_shared() {
            tasks.spawn(
                refresh_catalog(service.clone())
                    .instrument(tracing::info_span!("tracker_catalog_refresh")),
            );
        }
        if let Some(udp) = udp {
            let udp = Arc::new(udp);
            let clock = Instant::now();
            let ids = Arc::new(ConnectionIds::new());
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
            for _ in 0..workers {
                tasks.spawn(
                    crate::udp::serve(udp.clone(), service.clone(), ids.clone(), clock)
                        .instrument(tracing::info_span!("tracker_udp")),
                );
            }
        }
        // Its own set: at shutdown it saves once more, after everything else stopped.
        let mut saver = JoinSet::new();
        let (stop_saving, last_save) = oneshot::channel();
        if let Some(store) = swarm_store {
            saver.spawn(
                persist::save_loop(service.clone(), store, last_save)
                    .instrument(tracing::info_span!("tracker_swarm_save")),
            );
        }
        // A set of its own: on shutdown the accept loop closes its connections itself.
        let mut acceptor = JoinSet::new();
        let (stop, stopped) = oneshot::channel();
        acceptor.spawn(
            accept::accept_loop(listener, service, stopped)
                .instrument(tracing::info_span!("tracker_http")),
        );
        shutdown.await;
        info!(%addr, "tracker shutting down");
        let _ = stop.send(());
        while acceptor.join_next().await.is_some() {}
        tasks.shutdown().await;
        let _ = stop_saving.send(());
        while saver.join_next().await.is_some() {}
        Ok(())
    }
}

/// Binds `addr` and serves until `shutdown` completes.
///
/// ```no_run
/// # async fn example() -> std::io::Result<()> {
/// let addr = "127.0.0.1:6969".parse().unwrap();
/// shoal_tracker::serve(addr, shoal_tracker::TrackerConfig::default(), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
pub async fn serve(
    addr: SocketAddr,
    config: TrackerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    Tracker::bind(addr, config).await?.run(shutdown).await
}

/// Binds TCP on `addr` and, when `with_udp`, UDP on the same IP and port. For port 0,
/// retries with new ports until one is free for both.
async fn bind_pair(
    addr: SocketAddr,
    with_udp: bool,
) -> io::Result<(TcpListener, Option<UdpSocket>)> {
    let mut last_err = None;
    for _ in 0..BIND_ATTEMPTS {
        let listener = TcpListener::bind(addr).await?;
        if !with_udp {
            return Ok((listener, None));
        }
        let port = listener.local_addr()?.port();
        match UdpSocket::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(udp) => return Ok((listener, Some(udp))),
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot bind UDP port {port} for the UDP tracker: {e}"),
                ))
            }
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no port free for both TCP and UDP")))
}

/// Picks up torrents other trackers published to a shared catalog, so catalog-only
/// announces for them are accepted here too.
async fn refresh_catalog(service: Arc<Service>) {
    let mut ticker = tokio::time::interval(crate::catalog::SHARED_REFRESH);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; the catalog was just loaded
    loop {
        ticker.tick().await;
        let catalog = service.catalog.clone();
        match tokio::task::spawn_blocking(move || catalog.refresh()).await {
            Ok(Ok(n)) => debug!(published = n, "catalog refreshed"),
            Ok(Err(e)) => warn!(error = %e, "cannot refresh the shared catalog; retrying"),
            Err(e) => warn!(error = %e, "catalog refresh task failed"),
        }
    }
}

/// Samples the announce counter once a second for the announces-per-second figure.
async fn sample_stats(service: Arc<Service>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        service.stats.sample(Instant::now());
    }
}

/// Drops silent peers and empty swarms, a few times per TTL so a peer outlives its
/// TTL by at most a quarter of it.
async fn sweep(service: Arc<Service>) {
    let ttl = service.config.effective_peer_ttl();
    let period = (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(cutoff) = Instant::now().checked_sub(ttl) else {
            continue;
        };
        let (peers, swarms) = service.registry.expire(cutoff);
        if peers + swarms > 0 {
            debug!(
                peers,
                swarms,
                remaining = service.registry.swarm_count(),
                "expired"
            );
        }
    }
}
