//! Shoal's BitTorrent tracker: HTTP (BEP 3 announce, BEP 23 compact peers, BEP 7
//! `peers6`, BEP 48 scrape) and UDP (BEP 15, same port number) serving swarms from
//! memory, plus a catalog of published torrents that can be searched by name, file
//! name or info-hash prefix and fetched as `.torrent` files, persisted in SQLite
//! (`data_dir/catalog.sqlite`) or in a PostgreSQL database shared by several trackers
//! (`catalog_db`), and a status page (`/`, `/stats`).
//!
//! Swarms survive restarts when there is somewhere to keep them: with a `data_dir`
//! they are saved to [`SWARMS_FILE`] beside the catalog, with a `catalog_db` to tables
//! beside the catalog's, every 5 s (only what changed) and at shutdown, and restored
//! when the tracker binds (peers silent longer than the peer TTL are dropped). So a
//! restarted tracker, even after a crash, hands out its seeders at once instead of
//! after their next announce. Without either, swarms live in memory only.
//!
//! Modes: open (any info-hash, the default) or catalog-only (announces for
//! unpublished torrents are refused). Private torrents (BEP 27) are listed in search
//! only with `list_private`. It does not do access lists, and prints nothing: it logs
//! through `tracing`.
//!
//! Main types:
//! - [`Tracker`]: bind, read [`Tracker::local_addr`], then [`Tracker::run`] until a
//!   shutdown future completes; [`serve`] does all three.
//! - [`TrackerConfig`]: intervals, peer TTL, `numwant` caps, resource bounds, catalog
//!   folder or database, and modes.
//! - [`catalog::Catalog`]: publishing and search, usable on its own.
//!
//! Design:
//! - One core, two front ends: `service` (swarm registry, catalog, config, counters)
//!   is what every announce goes through, and it knows neither transport. The HTTP
//!   front end (`http`, with the accept loop in `server`) and the UDP one (`udp`) own
//!   what only they need (the `POST /publish` upload limits; the connection-id key)
//!   and call into the core; neither imports the other.
//! - HTTP is a small hand-written HTTP/1.1 server on tokio (`http` module) rather than
//!   hyper/axum. The tracker only answers `GET` with tiny bodies, so what matters is
//!   per-request cost: requests are parsed in place in a per-connection buffer, query
//!   ids decode straight into arrays, responses are written into reused buffers, and
//!   pipelined requests are answered with one write. It also keeps the hard limits
//!   (head size, idle time, connection count) explicit in one place. The cost is owning
//!   some HTTP edge cases; everything unexpected is answered with a 4xx and a close.
//! - Connection-per-announce clients are the expensive case, so the listener defers
//!   accept until a request has arrived (`TCP_DEFER_ACCEPT`) and the accept loop
//!   answers a complete announce or scrape that asks to close inline: one read, one
//!   send whose FIN rides along, close; no task, no reactor registration. Everything
//!   else gets a task per connection. UDP workers take and answer datagrams in batches
//!   (`recvmmsg`/`sendmmsg`). Both are Linux calls, made through `libc` (`sys` module).
//! - Swarms live in a map sharded 64 ways by info-hash (`registry` module), each shard
//!   a `std::sync::Mutex` held for one announce and never across `.await`, so every
//!   runtime worker serves announces in parallel without a channel hop. Saving them
//!   adds no IO and no lock to an announce: each shard has a changed flag set under its
//!   lock, and the saver (`server::persist`, `swarm_store`) copies changed shards one
//!   short lock at a time and writes them from `spawn_blocking`. Within a swarm,
//!   seeders and leechers are separate lists per address family, compact (an IPv4
//!   peer is 30 bytes in parallel vectors of addresses and of ids and times, no
//!   allocation per peer), indexed by (peer id, IP) through a table of positions, so a
//!   stored peer costs about 50-75 bytes and random peer selection is O(numwant),
//!   reading the address vector front to back.
//! - Peers are keyed by (peer id, IP), so a forger who learns a peer id cannot move or
//!   stop that peer, and each swarm stores at most
//!   [`TrackerConfig::max_peers_per_swarm`] peers. The announced address is the
//!   connection's source IP (the `ip` parameter is honoured only from loopback). Peers
//!   silent for [`TrackerConfig::effective_peer_ttl`] are swept out, and so are empty
//!   swarms.
//!
//! ```
//! use shoal_tracker::{Tracker, TrackerConfig};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let tracker = Tracker::bind("127.0.0.1:0".parse().unwrap(), TrackerConfig::default()).await?;
//! let addr = tracker.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(tracker.run(async { let _ = stopped.await; }));
//!
//! let mut conn = tokio::net::TcpStream::connect(addr).await?;
//! conn.write_all(b"GET /scrape HTTP/1.1\r\nConnection: close\r\n\r\n").await?;
//! let mut reply = Vec::new();
//! conn.read_to_end(&mut reply).await?;
//! assert!(reply.ends_with(b"d5:filesdee"));
//!
//! let _ = stop.send(());
//! server.await.unwrap()?;
//! # Ok(()) }
//! ```

pub mod catalog;
mod config;
mod http;
mod metrics;
mod registry;
mod server;
mod service;
mod stats;
mod swarm;
mod swarm_store;
mod sys;
mod udp;

pub use config::TrackerConfig;
pub use server::{serve, Tracker};

/// File name of the saved swarms inside [`TrackerConfig::data_dir`] (SQLite), beside
/// the catalog's `catalog.sqlite`.
pub const SWARMS_FILE: &str = "swarms.sqlite";

/// Parses the first HTTP request head in `buf` as the server does: `Ok(None)` until
/// the head is complete, then the bytes it spans, or why it gets 400. An entry point
/// for fuzzing (`fuzz/fuzz_targets/http_head.rs`), not a stable API.
#[doc(hidden)]
pub fn parse_http_head(buf: &[u8]) -> Result<Option<usize>, &'static str> {
    match http::parse_head(buf) {
        Ok(Some((head, used))) => {
            // Routing splits the target too; exercise it.
            let _ = head.path_and_query();
            Ok(Some(used))
        }
        Ok(None) => Ok(None),
        Err(bad) => Err(bad.0),
    }
}
