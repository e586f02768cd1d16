//! Tracker configuration: announce timing, peer-list sizes, resource bounds, catalog
//! storage and modes.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings for a [`crate::Tracker`]. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {
    /// Seconds clients should wait between regular announces (`interval`). Default 1800.
    pub interval: u32,
    /// Seconds clients must wait before re-announcing early (`min interval`), never sent
    /// larger than `interval`; `None` omits the key. Default 60.
    pub min_interval: Option<u32>,
    /// Seconds without an announce after which a peer is dropped. `None` (the default)
    /// means two missed announces plus a minute of grace: `2 * interval + 60`.
    pub peer_ttl: Option<u32>,
    /// Most peers returned by one announce, whatever `numwant` asks. Default 200.
    pub max_numwant: u32,
    /// Peers returned when the announce has no `numwant`. Default 50.
    pub default_numwant: u32,
    /// Most torrents tracked at once (bounds memory, the tracker is open to any
    /// info-hash); announces for new torrents beyond it get a failure reason.
    /// Default 100000.
    pub max_swarms: usize,
    /// Most peers stored per torrent; announces from new peers beyond it are answered
    /// but not stored. Default 10000.
    pub max_peers_per_swarm: usize,
    /// Largest HTTP request head (request line plus headers) in bytes; larger requests
    /// get 414 or 431 and the connection is closed. Default 8192.
    pub max_request_bytes: usize,
    /// Most torrents listed by a scrape without `info_hash` (a full scrape); 0 refuses
    /// full scrapes with a failure reason. Default 1000.
    pub full_scrape_limit: usize,
    /// Most simultaneous client connections; further clients wait in the listen
    /// backlog. Default 10000.
    pub max_connections: usize,
    /// Seconds an idle keep-alive connection (or a slow request head) may take before
    /// it is closed. Default 30.
    pub idle_timeout: u32,
    /// Folder holding the catalog database (`catalog.sqlite`), created if missing.
    /// `None` (the default) keeps the catalog in memory, lost when the tracker stops.
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL database holding the catalog instead of `data_dir`, as a
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` (or `postgresql://`) URL; several
    /// trackers may share it. The tables are created on first use. Default `None`.
    pub catalog_db: Option<String>,
    /// Track only torrents published to the catalog: announces and scrapes for other
    /// info-hashes get a failure reason. Default false (an open tracker).
    pub catalog_only: bool,
    /// List private torrents (BEP 27 `private=1`) in search results. Default false:
    /// they are tracked and served by id, but not listed.
    pub list_private: bool,
    /// Largest request body (a published `.torrent`) in bytes; larger ones get 413.
    /// Default 16 MiB.
    pub max_publish_bytes: usize,
    /// Bytes of publish bodies held in memory at once over all connections; an upload
    /// that would go over it gets 503. Buffers grow as bytes arrive, so a client that
    /// only sends headers holds nothing. Never less than `max_publish_bytes`.
    /// Default 64 MiB.
    pub publish_budget_bytes: usize,
    /// Seconds a whole publish body may take to arrive before the connection is
    /// closed. Default 30.
    pub publish_body_timeout: u32,
    /// Publishes per minute from one IP address (a token bucket with that burst);
    /// more get 429. Loopback gets ten times as many (a reverse proxy speaks for many
    /// publishers). 0 disables the limit. Default 30.
    pub publish_per_minute: u32,
    /// Also serve the UDP tracker protocol (BEP 15) on the same port number. Default true.
    pub udp: bool,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval: 1800,
            min_interval: Some(60),
            peer_ttl: None,
            max_numwant: 200,
            default_numwant: 50,
            max_swarms: 100_000,
            max_peers_per_swarm: 10_000,
            max_request_bytes: 8192,
            full_scrape_limit: 1000,
            max_connections: 10_000,
            idle_timeout: 30,
            data_dir: None,
            catalog_db: None,
            catalog_only: false,
            list_private: false,
            max_publish_bytes: 16 << 20,
            publish_budget_bytes: 64 << 20,
            publish_body_timeout: 30,
            publish_per_minute: 30,
            udp: true,
        }
    }
}

impl TrackerConfig {
    /// How long a silent peer stays listed (see [`TrackerConfig::peer_ttl`]).
    pub fn effective_peer_ttl(&self) -> Duration {
        let secs = self
            .peer_ttl
            .unwrap_or_else(|| self.interval.saturating_mul(2).saturating_add(60));
        Duration::from_secs(secs.into())
    }

    /// The `min interval` to send, clamped to `interval`.
    pub(crate) fn sent_min_interval(&self) -> Option<u32> {
        self.min_interval.map(|m| m.min(self.interval))
    }

    /// Rejects settings the tracker cannot run with, saying which field to fix.
    pub fn validate(&self) -> io::Result<()> {
        let bad = |msg: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned()));
        if self.interval == 0 {
            return bad("tracker config: interval must be at least 1 second");
        }
        if self.peer_ttl == Some(0) {
            return bad("tracker config: peer_ttl must be at least 1 second");
        }
        if self.max_peers_per_swarm == 0 {
            return bad("tracker config: max_peers_per_swarm must be at least 1");
        }
        if self.max_request_bytes < 256 {
            return bad("tracker config: max_request_bytes must be at least 256");
        }
        if self.max_connections == 0 {
            return bad("tracker config: max_connections must be at least 1");
        }
        if self.max_publish_bytes == 0 {
            return bad("tracker config: max_publish_bytes must be at least 1");
        }
        if self.publish_body_timeout == 0 {
            return bad("tracker config: publish_body_timeout must be at least 1 second");
        }
        if let Some(url) = &self.catalog_db {
            if !crate::catalog::postgres::is_postgres_url(url) {
                return bad(
                    "tracker config: catalog_db must be a postgres:// or postgresql:// URL",
                );
            }
        }
        if self.idle_timeout == 0 {
            return bad("tracker config: idle_timeout must be at least 1 second");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ttl_follows_interval() {
        let c = TrackerConfig::default();
        c.validate().unwrap();
        assert_eq!(c.effective_peer_ttl(), Duration::from_secs(3660));
        let c = TrackerConfig {
            interval: 10,
            ..TrackerConfig::default()
        };
        assert_eq!(c.effective_peer_ttl(), Duration::from_secs(80));
        assert_eq!(c.sent_min_interval(), Some(10));
        let bad = TrackerConfig {
            interval: 0,
            ..TrackerConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
