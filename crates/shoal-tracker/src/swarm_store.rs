//! Where the swarms outlive the process: snapshots of the registry written every
//! [`SAVE_EVERY`] (when something changed) and at graceful shutdown, read back at start,
//! so a restarted tracker hands out its seeders at once instead of waiting up to an
//! announce interval for them to come back.
//!
//! A snapshot holds, per swarm, its completion count and every peer: address, peer id,
//! seeder or leecher, and its last announce as Unix milliseconds (the registry's clock
//! is an `Instant`, meaningless in another process). Rows are grouped by registry shard
//! and each save replaces only the shards that changed since the last one, in one
//! transaction: a crash mid-save (SIGKILL, power loss) leaves the previous snapshot
//! whole. The first save after start replaces everything, so rows that could not be
//! read back (or shards that no longer exist) do not linger.
//!
//! Backends: SQLite, a sibling of the catalog ([`sqlite::FILE_NAME`] in the data dir,
//! WAL), or PostgreSQL tables beside the catalog's when the catalog is there, so a
//! replacement tracker on another machine takes the swarms over. The store is a cache:
//! announces rebuild it anyway, so a store that cannot be read is logged and the
//! tracker starts with no swarms rather than not at all. Stores are synchronous and
//! called from `spawn_blocking` (`server::persist`).

pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::net::SocketAddr;
use std::time::Duration;

use shoal_proto::{InfoHash, PeerId};
use thiserror::Error;

use crate::catalog::store::StoreError;
use crate::config::TrackerConfig;

/// How often changed swarms are written.
pub(crate) const SAVE_EVERY: Duration = Duration::from_secs(5);

/// Why the swarms could not be saved or loaded. The tracker keeps serving either way.
#[derive(Debug, Error)]
pub(crate) enum SwarmStoreError {
    /// The SQLite file failed (disk full, corrupt, locked).
    #[error("swarm database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL server failed or went away; the next save reconnects.
    #[error("swarm database (PostgreSQL) error: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// Opening the shared database failed (as for the catalog).
    #[error(transparent)]
    Open(#[from] StoreError),
    /// A stored row does not decode (written by something else, or damaged).
    #[error("swarm database holds a malformed row: {0}")]
    Corrupt(String),
}

/// One peer as saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SavedPeer {
    pub addr: SocketAddr,
    pub peer_id: PeerId,
    pub seeder: bool,
    /// Last announce, Unix milliseconds.
    pub last_announce_ms: i64,
}

/// One swarm as saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SavedSwarm {
    pub info_hash: InfoHash,
    /// Completions (scrape `downloaded`).
    pub downloaded: u32,
    pub peers: Vec<SavedPeer>,
}

/// The swarms of one registry shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ShardSnapshot {
    pub shard: usize,
    pub swarms: Vec<SavedSwarm>,
}

/// What one save writes: these shards replace their stored rows; with `full`, every
/// stored row goes first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub full: bool,
    pub shards: Vec<ShardSnapshot>,
}

impl Snapshot {
    /// Peers in the snapshot.
    pub fn peer_count(&self) -> usize {
        self.shards
            .iter()
            .flat_map(|s| &s.swarms)
            .map(|s| s.peers.len())
            .sum()
    }
}

/// Persistent swarm storage.
pub(crate) trait SwarmStore: Send + Sync {
    /// Writes `snapshot` in one transaction.
    fn save(&self, snapshot: &Snapshot) -> Result<(), SwarmStoreError>;
    /// Every saved swarm.
    fn load(&self) -> Result<Vec<SavedSwarm>, SwarmStoreError>;
    /// Where the swarms are, for logs (no password).
    fn describe(&self) -> String;
}

/// The store `config` asks for: PostgreSQL when the catalog is there, else SQLite in
/// `data_dir`, else none (swarms in memory only, as before). Blocks (file or network
/// IO). A SQLite file that cannot be opened is moved aside and replaced (logged).
pub(crate) fn open(config: &TrackerConfig) -> Result<Option<Box<dyn SwarmStore>>, SwarmStoreError> {
    Ok(match (&config.catalog_db, &config.data_dir) {
        (Some(url), _) => Some(Box::new(postgres::PgSwarms::connect(url)?)),
        (None, Some(dir)) => Some(Box::new(sqlite::SqliteSwarms::open_or_replace(dir)?)),
        (None, None) => None,
    })
}

/// Unix milliseconds as stored; `i64` so SQLite and PostgreSQL hold them natively.
pub(crate) fn unix_ms(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        // A clock before 1970 is broken; every saved peer then looks fresh.
        Err(_) => 0,
    }
}

/// Saved swarms for tests.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A peer `n` (IPv4 for even `n`, IPv6 for odd) seen at `ms`.
    pub(crate) fn peer(n: u8, seeder: bool, ms: i64) -> SavedPeer {
        let addr = if n % 2 == 0 {
            SocketAddr::from(([10, 0, 0, n], 1000 + u16::from(n)))
        } else {
            SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n)], 2000))
        };
        SavedPeer {
            addr,
            peer_id: PeerId([n; 20]),
            seeder,
            last_announce_ms: ms,
        }
    }

    /// Sorted for comparison: swarms by hash, peers by address.
    pub(crate) fn sorted(mut swarms: Vec<SavedSwarm>) -> Vec<SavedSwarm> {
        swarms.sort_by_key(|s| s.info_hash.0);
        for s in &mut swarms {
            s.peers.sort_by_key(|p| p.addr);
        }
        swarms
    }

    /// Save, reload, partial save and full save on the store `open` returns (called
    /// again: a restart).
    pub(crate) fn round_trip(open: &dyn Fn() -> Box<dyn SwarmStore>) {
        let s1 = SavedSwarm {
            info_hash: InfoHash([1; 20]),
            downloaded: 7,
            peers: vec![peer(2, true, 1_700_000_000_123), peer(3, false, 5)],
        };
        let s2 = SavedSwarm {
            info_hash: InfoHash([2; 20]),
            downloaded: 0,
            peers: vec![peer(4, false, 9)],
        };
        let snap = |full, shards: Vec<(usize, Vec<SavedSwarm>)>| Snapshot {
            full,
            shards: shards
                .into_iter()
                .map(|(shard, swarms)| ShardSnapshot { shard, swarms })
                .collect(),
        };
        {
            let store = open();
            assert!(store.load().unwrap().is_empty());
            store
                .save(&snap(
                    true,
                    vec![(1, vec![s1.clone()]), (2, vec![s2.clone()])],
                ))
                .unwrap();
        }
        let store = open();
        assert_eq!(sorted(store.load().unwrap()), [s1.clone(), s2.clone()]);
        // A partial save replaces only its shards: shard 2 emptied, shard 1 kept.
        store.save(&snap(false, vec![(2, vec![])])).unwrap();
        assert_eq!(sorted(store.load().unwrap()), [s1]);
        // A full save drops shards it does not name.
        store
            .save(&snap(true, vec![(2, vec![s2.clone()])]))
            .unwrap();
        assert_eq!(sorted(open().load().unwrap()), [s2]);
    }
}
