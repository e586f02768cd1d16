//! The listening tracker: accept loop, connection tasks and the expiry sweep.
//!
//! Task tree: [`Tracker::run`] owns a `JoinSet` holding the sweep task and one task
//! per connection. A semaphore of `max_connections` permits bounds the connections;
//! when it is exhausted the accept loop waits and new clients queue in the kernel
//! backlog. Shutdown stops accepting, aborts every task and waits for them.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn, Instrument};

use crate::config::TrackerConfig;
use crate::http::{serve_connection, Service};

/// An HTTP tracker bound to a socket, not yet serving.
pub struct Tracker {
    listener: TcpListener,
    service: Arc<Service>,
}

impl Tracker {
    /// Validates `config` and binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr, config: TrackerConfig) -> io::Result<Tracker> {
        config.validate()?;
        let listener = TcpListener::bind(addr).await?;
        Ok(Tracker {
            listener,
            service: Arc::new(Service::new(config)),
        })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The announce URL clients should use, e.g. `http://127.0.0.1:6969/announce`.
    pub fn announce_url(&self) -> io::Result<String> {
        Ok(format!("http://{}/announce", self.local_addr()?))
    }

    /// Serves until `shutdown` completes, then closes every connection and returns.
    /// Accept errors (such as running out of file descriptors) are logged and retried,
    /// never fatal.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Tracker { listener, service } = self;
        let addr = listener.local_addr()?;
        info!(%addr, "tracker listening");
        let mut tasks = JoinSet::new();
        tasks.spawn(sweep(service.clone()).instrument(tracing::info_span!("tracker_sweep")));
        let permits = Arc::new(Semaphore::new(service.config.max_connections));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break, // never closed; defensive
                },
            };
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            // Reap finished connection tasks so the set does not grow without bound.
            while tasks.try_join_next().is_some() {}
            match accepted {
                Ok((stream, peer)) => {
                    // Small responses: send them now rather than waiting on Nagle.
                    let _ = stream.set_nodelay(true);
                    let svc = service.clone();
                    let span = tracing::debug_span!("tracker_conn", %peer);
                    tasks.spawn(
                        async move {
                            serve_connection(stream, peer, svc).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Err(e) => {
                    warn!(error = %e, "accept failed; retrying shortly");
                    drop(permit);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        info!(%addr, "tracker shutting down");
        tasks.shutdown().await;
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
