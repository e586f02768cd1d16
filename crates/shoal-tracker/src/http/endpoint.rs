//! `/announce` and `/scrape`: query string in, bencoded body out.
//!
//! Bad queries are answered with a bencoded `failure reason` (what BitTorrent clients
//! display), never an HTTP error. The announcer's address is the connection's source
//! IP; the `ip` parameter is honoured only from loopback, where a local proxy or test
//! legitimately speaks for someone else, since anywhere else it would let one host
//! inject others' addresses into swarms.

use std::net::{IpAddr, SocketAddr};

use shoal_proto::tracker::{AnnounceRequest, AnnounceResponse, ScrapeRequest, ScrapeResponse};
use tracing::trace;

use crate::service::{Scratch, Service};
use crate::swarm::PeerAnnounce;

impl Service {
    /// Handles `GET /announce?query` from `source`, appending the body to `body`.
    pub fn http_announce(
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
                self.stats
                    .outcomes
                    .announce_invalid(crate::metrics::Proto::Http);
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
        let numwant = self.numwant(req.numwant, req.event);
        let mut peers = std::mem::take(&mut scratch.peers);
        peers.clear();
        match Service::announce(self, &req.info_hash, &announce, numwant, false, &mut peers) {
            Ok(stats) => {
                let cfg = &self.config;
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
            Err(refusal) => {
                scratch.peers = peers;
                failure(body, &self.refusal_text(refusal));
            }
        }
    }

    /// Handles `GET /scrape?query`, appending the body to `body`.
    pub fn http_scrape(&self, query: &[u8], body: &mut Vec<u8>) {
        let req = match ScrapeRequest::from_query(query) {
            Ok(req) => req,
            Err(e) => {
                self.stats
                    .outcomes
                    .scrape_invalid(crate::metrics::Proto::Http);
                return failure(body, &e.to_string());
            }
        };
        let files = if req.info_hashes.is_empty() {
            if self.config.full_scrape_limit == 0 {
                self.stats
                    .outcomes
                    .scrape_invalid(crate::metrics::Proto::Http);
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
        self.stats.outcomes.scrape_ok(crate::metrics::Proto::Http);
        ScrapeResponse { files }.encode_into(body);
    }
}

fn failure(body: &mut Vec<u8>, reason: &str) {
    body.extend_from_slice(&shoal_proto::tracker::encode_failure(reason));
}
