//! Swarms in SQLite: `DATA_DIR/swarms.sqlite`, beside the catalog's file rather than in
//! it, so the snapshot writer never makes a publish wait for the database lock.
//!
//! Schema (version 1, in `PRAGMA user_version`):
//! - `swarms(info_hash TEXT PK /* 40 lowercase hex */, shard, downloaded)`
//! - `peers(shard, info_hash, ip TEXT, port, peer_id BLOB /* 20 bytes */, seeder,
//!   last_announce /* Unix ms */)`, indexed by shard.
//!
//! WAL with `synchronous = NORMAL`: a commit survives a process crash (what a SIGKILL
//! is); a power cut may lose the last snapshot or two but never leaves half of one.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection};
use shoal_proto::{InfoHash, PeerId};
use tracing::warn;

use super::{SavedPeer, SavedSwarm, Snapshot, SwarmStore, SwarmStoreError};
use crate::catalog::store::StoreError;

/// File name of the swarm store inside the data dir.
pub(crate) const FILE_NAME: &str = crate::SWARMS_FILE;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS swarms (
    info_hash  TEXT PRIMARY KEY NOT NULL,
    shard      INTEGER NOT NULL,
    downloaded INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS swarms_shard ON swarms (shard);
CREATE TABLE IF NOT EXISTS peers (
    shard         INTEGER NOT NULL,
    info_hash     TEXT NOT NULL,
    ip            TEXT NOT NULL,
    port          INTEGER NOT NULL,
    peer_id       BLOB NOT NULL,
    seeder        INTEGER NOT NULL,
    last_announce INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS peers_shard ON peers (shard);
PRAGMA user_version = 1;
";

/// Swarms in a SQLite file.
pub(crate) struct SqliteSwarms {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl SqliteSwarms {
    /// Opens (creating if needed) `dir/swarms.sqlite`. A file that is not a usable
    /// database is renamed to `swarms.sqlite.corrupt` (replacing an older one) and a
    /// new one created: the swarms are a cache, and a tracker that refused to start
    /// over one would be worse than one that starts empty.
    pub fn open_or_replace(dir: &Path) -> Result<SqliteSwarms, SwarmStoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        match Self::open(&path) {
            Ok(store) => Ok(store),
            Err(e) if path.exists() => {
                let aside = dir.join(format!("{FILE_NAME}.corrupt"));
                warn!(
                    path = %path.display(),
                    error = %e,
                    moved_to = %aside.display(),
                    "the saved swarms cannot be read; moving the file aside and starting \
                     with no swarms (peers come back as they announce)"
                );
                // The WAL and shared-memory files belong to the broken database.
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(dir.join(format!("{FILE_NAME}{suffix}")));
                }
                std::fs::rename(&path, &aside).map_err(|source| StoreError::Folder {
                    path: aside.clone(),
                    source,
                })?;
                Self::open(&path)
            }
            Err(e) => Err(e),
        }
    }

    fn open(path: &Path) -> Result<SqliteSwarms, SwarmStoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteSwarms {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-statement leaves SQLite itself consistent (it rolls back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn shard_i64(shard: usize) -> i64 {
    i64::try_from(shard).unwrap_or(i64::MAX)
}

impl SwarmStore for SqliteSwarms {
    fn save(&self, snapshot: &Snapshot) -> Result<(), SwarmStoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if snapshot.full {
            tx.execute_batch("DELETE FROM peers; DELETE FROM swarms;")?;
        }
        {
            let mut drop_swarms = tx.prepare_cached("DELETE FROM swarms WHERE shard = ?1")?;
            let mut drop_peers = tx.prepare_cached("DELETE FROM peers WHERE shard = ?1")?;
            let mut add_swarm = tx.prepare_cached(
                "INSERT OR REPLACE INTO swarms (info_hash, shard, downloaded) VALUES (?1, ?2, ?3)",
            )?;
            let mut add_peer = tx.prepare_cached(
                "INSERT INTO peers (shard, info_hash, ip, port, peer_id, seeder, last_announce)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for shard in &snapshot.shards {
                let n = shard_i64(shard.shard);
                if !snapshot.full {
                    drop_swarms.execute([n])?;
                    drop_peers.execute([n])?;
                }
                for swarm in &shard.swarms {
                    let hex = swarm.info_hash.to_hex();
                    add_swarm.execute(params![hex, n, swarm.downloaded])?;
                    for p in &swarm.peers {
                        add_peer.execute(params![
                            n,
                            hex,
                            p.addr.ip().to_string(),
                            p.addr.port(),
                            &p.peer_id.0[..],
                            p.seeder,
                            p.last_announce_ms,
                        ])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn load(&self) -> Result<Vec<SavedSwarm>, SwarmStoreError> {
        let conn = self.conn();
        let mut swarms: HashMap<String, SavedSwarm> = HashMap::new();
        let mut stmt = conn.prepare("SELECT info_hash, downloaded FROM swarms")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let hex: String = r.get(0)?;
            let downloaded: i64 = r.get(1)?;
            let swarm = SavedSwarm {
                info_hash: parse_hash(&hex)?,
                downloaded: u32::try_from(downloaded).unwrap_or(0),
                peers: Vec::new(),
            };
            swarms.insert(hex, swarm);
        }
        let mut stmt =
            conn.prepare("SELECT info_hash, ip, port, peer_id, seeder, last_announce FROM peers")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let hex: String = r.get(0)?;
            let (addr, peer_id) =
                decode_peer(&r.get::<_, String>(1)?, r.get(2)?, &r.get::<_, Vec<u8>>(3)?)?;
            let peer = SavedPeer {
                addr,
                peer_id,
                seeder: r.get(4)?,
                last_announce_ms: r.get(5)?,
            };
            let Some(swarm) = swarms.get_mut(&hex) else {
                return Err(SwarmStoreError::Corrupt(format!(
                    "peer of {hex:?}, a swarm not in the swarms table"
                )));
            };
            swarm.peers.push(peer);
        }
        Ok(swarms.into_values().collect())
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

pub(super) fn parse_hash(hex: &str) -> Result<InfoHash, SwarmStoreError> {
    InfoHash::from_hex(hex).ok_or_else(|| SwarmStoreError::Corrupt(format!("info_hash {hex:?}")))
}

/// The address and peer id of a stored peer row.
pub(super) fn decode_peer(
    ip: &str,
    port: i64,
    id: &[u8],
) -> Result<(SocketAddr, PeerId), SwarmStoreError> {
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| SwarmStoreError::Corrupt(format!("peer ip {ip:?}")))?;
    let port =
        u16::try_from(port).map_err(|_| SwarmStoreError::Corrupt(format!("peer port {port}")))?;
    let id: [u8; 20] = id
        .try_into()
        .map_err(|_| SwarmStoreError::Corrupt(format!("peer id of {} bytes", id.len())))?;
    Ok((SocketAddr::new(ip, port), PeerId(id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm_store::tests::round_trip;

    #[test]
    fn snapshots_round_trip_and_replace_by_shard() {
        let dir = tempfile::tempdir().unwrap();
        round_trip(&|| Box::new(SqliteSwarms::open_or_replace(dir.path()).unwrap()));
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = b"this is not a database, just bytes that happen to sit here".repeat(100);
        std::fs::write(dir.path().join(FILE_NAME), &garbage).unwrap();
        let store = SqliteSwarms::open_or_replace(dir.path()).unwrap();
        assert!(store.load().unwrap().is_empty());
        let aside = std::fs::read(dir.path().join(format!("{FILE_NAME}.corrupt"))).unwrap();
        assert_eq!(aside, garbage);
    }

    #[test]
    fn a_malformed_row_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteSwarms::open_or_replace(dir.path()).unwrap();
        let hex = InfoHash([1; 20]).to_hex();
        let bad_rows = [
            format!("INSERT INTO swarms VALUES ('{hex}', 1, 0); INSERT INTO peers VALUES (1, '{hex}', 'not an ip', 1, zeroblob(20), 1, 0)"),
            format!("INSERT INTO swarms VALUES ('{hex}', 1, 0); INSERT INTO peers VALUES (1, '{hex}', '10.0.0.1', 70000, zeroblob(20), 1, 0)"),
            format!("INSERT INTO swarms VALUES ('{hex}', 1, 0); INSERT INTO peers VALUES (1, '{hex}', '10.0.0.1', 1, zeroblob(3), 1, 0)"),
            format!("INSERT INTO swarms VALUES ('{hex}', 1, 0); INSERT INTO peers VALUES (1, 'zz', '10.0.0.1', 1, zeroblob(20), 1, 0)"),
            "INSERT INTO swarms VALUES ('nothex', 1, 0)".to_string(),
            format!("INSERT INTO swarms VALUES ('{hex}', 1, 'text')"),
        ];
        for sql in bad_rows {
            store
                .conn()
                .execute_batch(&format!("DELETE FROM peers; DELETE FROM swarms; {sql}"))
                .unwrap();
            let err = store.load().expect_err(&sql);
            assert!(err.to_string().contains("swarm database"), "{sql}: {err}");
        }
    }
}
