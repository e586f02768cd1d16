//! `/announce` and `/scrape`: query string in, bencoded body out.
//!
//! Bad queries are answered with a bencoded `failure reason` (what BitTorrent clients
//! display), never an HTTP error. The announcer's address is the connection's source
//! IP; the `ip` parameter is honoured only from loopback, where a local proxy or test
//! legitimately speaks for someone else, since anywhere else it would let one host
//! inject others' addresses into swarms.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use shoal_proto::tracker::{
    AnnounceEvent, AnnounceRequest, AnnounceResponse, ScrapeRequest, ScrapeResponse,
};
use tracing::trace;

use crate::config::TrackerConfig;
use crate::registry::{Full, Registry};
use crate::swarm::PeerAnnounce;

/// Shared tracker state behind every connection.
pub(crate) struct Service {
    pub registry: Registry,
    pub config: TrackerConfig,
}

/// Buffers one connection reuses across requests, so steady-state announces allocate
/// little.
#[derive(Default)]
pub(crate) struct Scratch {
    pub peers: Vec<SocketAddr>,
}

impl Service {
    pub fn new(config: TrackerConfig) -> Self {
        Service {
            registry: Registry::new(config.max_swarms),
            config,
        }
    }

    /// Handles `GET /announce?query` from `source`, appending the body to `body`.
    pub fn announce(
        &self,
        query: &[u8],
        source: IpAddr,
        body: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) {
        let req = match AnnounceRequest::from_query(query) {
            Ok(req) => req,
            Err(e) => {
                trace!(%source, error = %e, "bad announce");
                return failure(body, &e.to_string());
            }
        };
        let ip = match req.ip {
            Some(claimed) if source.is_loopback() => claimed,
            _ => source,
        };
        let announce = PeerAnnounce {
            peer_id: req.peer_id,
            addr: SocketAddr::new(ip.to_canonical(), req.port),
            seeder: req.left == 0,
            event: req.event,
        };
        let cfg = &self.config;
        let numwant = match req.event {
            AnnounceEvent::Stopped => 0,
            _ => req
                .numwant
                .unwrap_or(cfg.default_numwant)
                .min(cfg.max_numwant),
        };
        let mut peers = std::mem::take(&mut scratch.peers);
        peers.clear();
        let result = self.registry.announce(
            &req.info_hash,
            &announce,
            Instant::now(),
            usize::try_from(numwant).unwrap_or(usize::MAX),
            &mut rand::thread_rng(),
            &mut peers,
        );
        match result {
            Ok(stats) => {
                let resp = AnnounceResponse {
                    interval: cfg.interval,
                    min_interval: cfg.sent_min_interval(),
                    complete: stats.complete,
                    incomplete: stats.incomplete,
                    peers,
                    warning: None,
                    tracker_id: None,
                };
                resp.encode_into(req.compact, body);
                scratch.peers = resp.peers;
            }
            Err(Full) => {
                scratch.peers = peers;
                failure(
                    body,
                    &format!(
                        "tracker is full: it already tracks {} torrents; try again later",
                        cfg.max_swarms
                    ),
                );
            }
        }
    }

    /// Handles `GET /scrape?query`, appending the body to `body`.
    pub fn scrape(&self, query: &[u8], body: &mut Vec<u8>) {
        let req = match ScrapeRequest::from_query(query) {
            Ok(req) => req,
            Err(e) => return failure(body, &e.to_string()),
        };
        let files = if req.info_hashes.is_empty() {
            if self.config.full_scrape_limit == 0 {
                return failure(
                    body,
                    "full scrape is disabled on this tracker; pass info_hash parameters",
                );
            }
            self.registry.all_stats(self.config.full_scrape_limit)
        } else {
            req.info_hashes
                .iter()
                .map(|h| (*h, self.registry.stats(h)))
                .collect()
        };
        ScrapeResponse { files }.encode_into(body);
    }
}

fn failure(body: &mut Vec<u8>, reason: &str) {
    body.extend_from_slice(&shoal_proto::tracker::encode_failure(reason));
}
