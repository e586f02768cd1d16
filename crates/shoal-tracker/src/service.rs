//! State shared by the HTTP and UDP front ends: swarms, catalog, counters, config.
//!
//! Both transports funnel announces through [`Service::announce`], which applies the
//! catalog-only rule, the swarm cap and the counters in one place. This is the core:
//! it knows nothing of either transport. State that only one front end needs (UDP
//! connection ids, the `POST /publish` upload limits) is owned by that front end and
//! handed to it by the server, so dependencies point from the front ends to the core.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use shoal_proto::tracker::{AnnounceEvent, ScrapeStats};
use shoal_proto::InfoHash;

use crate::catalog::Catalog;
use crate::config::TrackerConfig;
use crate::metrics::Proto;
use crate::registry::{Full, Registry};
use crate::stats::Stats;
use crate::swarm::PeerAnnounce;

/// Why an announce was refused; the text goes back as a failure reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_swarms` reached and this torrent is new.
    Full,
    /// Catalog-only mode and the torrent is not published.
    NotPublished,
}

/// Shared tracker state behind every connection and datagram.
pub(crate) struct Service {
    pub registry: Registry,
    pub config: TrackerConfig,
    /// Behind an `Arc` so blocking catalog work can own a handle.
    pub catalog: Arc<Catalog>,
    pub stats: Stats,
}

/// Buffers a front end reuses across announces (one per connection or UDP worker), so
/// steady-state announces allocate little.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Peers drawn for the announce being answered.
    pub peers: Vec<SocketAddr>,
}

impl Service {
    pub fn new(config: TrackerConfig, catalog: Catalog) -> Self {
        Service {
            registry: Registry::new(
                config.max_swarms,
                config.max_peers_per_swarm,
                config.effective_peer_ttl(),
            ),
            catalog: Arc::new(catalog),
            stats: Stats::new(Instant::now()),
            config,
        }
    }

    /// Peers to return: the client's wish or the default, capped; none when leaving.
    pub fn numwant(&self, asked: Option<u32>, event: AnnounceEvent) -> usize {
        let cfg = &self.config;
        let n = match event {
            AnnounceEvent::Stopped => 0,
            _ => asked.unwrap_or(cfg.default_numwant).min(cfg.max_numwant),
        };
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// Applies an announce and appends up to `numwant` peers to `out`.
    pub fn announce(
        &self,
        hash: &InfoHash,
        a: &PeerAnnounce,
        numwant: usize,
        udp: bool,
        out: &mut Vec<SocketAddr>,
    ) -> Result<ScrapeStats, Refusal> {
        if self.config.catalog_only && !self.catalog.is_published(hash) {
            let proto = if udp { Proto::Udp } else { Proto::Http };
            self.stats.outcomes.announce_refused(proto);
            return Err(Refusal::NotPublished);
        }
        self.stats.announce(udp);
        let proto = if udp { Proto::Udp } else { Proto::Http };
        let r = self
            .registry
            .announce(
                hash,
                a,
                Instant::now(),
                numwant,
                &mut rand::thread_rng(),
                out,
            )
            .map_err(|Full| Refusal::Full);
        match r {
            Ok(_) => self.stats.outcomes.announce_ok(proto),
            Err(_) => self.stats.outcomes.announce_refused(proto),
        }
        r
    }

    /// The failure reason for a refusal.
    pub fn refusal_text(&self, r: Refusal) -> String {
        match r {
            Refusal::Full => format!(
                "tracker is full: it already tracks {} torrents; try again later",
                self.config.max_swarms
            ),
            Refusal::NotPublished => "this tracker only tracks torrents published to its \
                catalog; publish the .torrent first (POST /publish, or `shoal publish`)"
                .to_string(),
        }
    }
}
