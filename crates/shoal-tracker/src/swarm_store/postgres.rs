//! Swarms in PostgreSQL, beside the catalog's tables (`--catalog-db postgres://...`), so
//! a replacement tracker on another machine starts with the swarms of the one it
//! replaces.
//!
//! Schema (created on first use under its own advisory lock):
//! - `shoal_swarms(info_hash TEXT PK, shard INTEGER, downloaded BIGINT)`
//! - `shoal_swarm_peers(shard, info_hash, ip TEXT, port INTEGER, peer_id BYTEA,
//!   seeder BOOLEAN, last_announce BIGINT /* Unix ms */)`, indexed by shard.
//!
//! The columns mirror [`super::sqlite`]. A save is one transaction with one statement
//! per table for all its rows (`unnest` over arrays), so it costs a few round trips
//! whatever the swarm count. The tables hold one tracker's swarms: trackers sharing a
//! catalog database each save theirs over the same shards, so when several run at
//! once a restarted one gets what the last saver had, which is still a useful start
//! (announces correct it within an interval).
//!
//! The connection is the catalog's kind ([`PgStore`]: reconnects when broken), opened
//! separately so a long save never holds up a catalog query.

use std::collections::HashMap;

use crate::catalog::postgres::{redact_url, PgStore};

use super::sqlite::{decode_peer, parse_hash};
use super::{SavedPeer, SavedSwarm, Snapshot, SwarmStore, SwarmStoreError};

/// `pg_advisory_xact_lock` key held while creating the schema ("shoalswm").
const SCHEMA_LOCK: i64 = 0x7368_6f61_6c73_776d;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS shoal_swarms (
    info_hash  TEXT PRIMARY KEY NOT NULL,
    shard      INTEGER NOT NULL,
    downloaded BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS shoal_swarms_shard ON shoal_swarms (shard);
CREATE TABLE IF NOT EXISTS shoal_swarm_peers (
    shard         INTEGER NOT NULL,
    info_hash     TEXT NOT NULL,
    ip            TEXT NOT NULL,
    port          INTEGER NOT NULL,
    peer_id       BYTEA NOT NULL,
    seeder        BOOLEAN NOT NULL,
    last_announce BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS shoal_swarm_peers_shard ON shoal_swarm_peers (shard);
";

/// Swarms in a PostgreSQL database.
pub(crate) struct PgSwarms {
    db: PgStore,
    target: String,
}

/// A snapshot as column arrays, for `unnest`.
#[derive(Default)]
struct Columns {
    shards: Vec<i32>,
    swarm_shard: Vec<i32>,
    swarm_hash: Vec<String>,
    downloaded: Vec<i64>,
    peer_shard: Vec<i32>,
    peer_hash: Vec<String>,
    ip: Vec<String>,
    port: Vec<i32>,
    peer_id: Vec<Vec<u8>>,
    seeder: Vec<bool>,
    last: Vec<i64>,
}

impl Columns {
    fn of(snapshot: &Snapshot) -> Columns {
        let mut c = Columns::default();
        for shard in &snapshot.shards {
            let n = i32::try_from(shard.shard).unwrap_or(i32::MAX);
            c.shards.push(n);
            for swarm in &shard.swarms {
                let hex = swarm.info_hash.to_hex();
                for p in &swarm.peers {
                    c.peer_shard.push(n);
                    c.peer_hash.push(hex.clone());
                    c.ip.push(p.addr.ip().to_string());
                    c.port.push(i32::from(p.addr.port()));
                    c.peer_id.push(p.peer_id.0.to_vec());
                    c.seeder.push(p.seeder);
                    c.last.push(p.last_announce_ms);
                }
                c.swarm_shard.push(n);
                c.swarm_hash.push(hex);
                c.downloaded.push(i64::from(swarm.downloaded));
            }
        }
        c
    }
}

impl PgSwarms {
    /// Connects to `url` and creates the tables if missing. Blocks (network).
    pub fn connect(url: &str) -> Result<PgSwarms, SwarmStoreError> {
        let db = PgStore::connect(url)?;
        db.with_client(|c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
            tx.batch_execute(SCHEMA)?;
            tx.commit()
        })?;
        Ok(PgSwarms {
            db,
            target: redact_url(url),
        })
    }
}

impl SwarmStore for PgSwarms {
    fn save(&self, snapshot: &Snapshot) -> Result<(), SwarmStoreError> {
        let c = Columns::of(snapshot);
        // Repeatable as a whole: `with_client` may run it again on a new connection.
        self.db.with_client(|client| {
            let mut tx = client.transaction()?;
            if snapshot.full {
                tx.batch_execute("DELETE FROM shoal_swarm_peers; DELETE FROM shoal_swarms;")?;
            } else {
                tx.execute(
                    "DELETE FROM shoal_swarm_peers WHERE shard = ANY($1)",
                    &[&c.shards],
                )?;
                tx.execute(
                    "DELETE FROM shoal_swarms WHERE shard = ANY($1)",
                    &[&c.shards],
                )?;
            }
            tx.execute(
                "INSERT INTO shoal_swarms (shard, info_hash, downloaded)
                 SELECT * FROM unnest($1::INTEGER[], $2::TEXT[], $3::BIGINT[])
                 ON CONFLICT (info_hash) DO UPDATE
                     SET shard = EXCLUDED.shard, downloaded = EXCLUDED.downloaded",
                &[&c.swarm_shard, &c.swarm_hash, &c.downloaded],
            )?;
            tx.execute(
                "INSERT INTO shoal_swarm_peers
                     (shard, info_hash, ip, port, peer_id, seeder, last_announce)
                 SELECT * FROM unnest($1::INTEGER[], $2::TEXT[], $3::TEXT[], $4::INTEGER[],
                     $5::BYTEA[], $6::BOOLEAN[], $7::BIGINT[])",
                &[
                    &c.peer_shard,
                    &c.peer_hash,
                    &c.ip,
                    &c.port,
                    &c.peer_id,
                    &c.seeder,
                    &c.last,
                ],
            )?;
            tx.commit()
        })?;
        Ok(())
    }

    fn load(&self) -> Result<Vec<SavedSwarm>, SwarmStoreError> {
        let (swarm_rows, peer_rows) = self.db.with_client(|c| {
            let mut tx = c.transaction()?;
            let swarms = tx.query("SELECT info_hash, downloaded FROM shoal_swarms", &[])?;
            let peers = tx.query(
                "SELECT info_hash, ip, port, peer_id, seeder, last_announce
                 FROM shoal_swarm_peers",
                &[],
            )?;
            tx.commit()?;
            Ok((swarms, peers))
        })?;
        let mut swarms: HashMap<String, SavedSwarm> = HashMap::new();
        for r in &swarm_rows {
            let hex: String = r.try_get(0)?;
            let downloaded: i64 = r.try_get(1)?;
            let swarm = SavedSwarm {
                info_hash: parse_hash(&hex)?,
                downloaded: u32::try_from(downloaded).unwrap_or(0),
                peers: Vec::new(),
            };
            swarms.insert(hex, swarm);
        }
        for r in &peer_rows {
            let hex: String = r.try_get(0)?;
            let port: i32 = r.try_get(2)?;
            let (addr, peer_id) = decode_peer(
                &r.try_get::<_, String>(1)?,
                i64::from(port),
                &r.try_get::<_, Vec<u8>>(3)?,
            )?;
            let peer = SavedPeer {
                addr,
                peer_id,
                seeder: r.try_get(4)?,
                last_announce_ms: r.try_get(5)?,
            };
            let Some(swarm) = swarms.get_mut(&hex) else {
                return Err(SwarmStoreError::Corrupt(format!(
                    "peer of {hex:?}, a swarm not in shoal_swarms"
                )));
            };
            swarm.peers.push(peer);
        }
        Ok(swarms.into_values().collect())
    }

    fn describe(&self) -> String {
        format!("{} (PostgreSQL)", self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::store::test_postgres;
    use crate::swarm_store::tests::round_trip;

    #[test]
    fn snapshots_round_trip_and_replace_by_shard() {
        let Some(url) = test_postgres::fresh_database() else {
            return;
        };
        round_trip(&|| Box::new(PgSwarms::connect(&url).unwrap()));
    }

    #[test]
    fn a_malformed_row_is_an_error_not_a_panic() {
        let Some(url) = test_postgres::fresh_database() else {
            return;
        };
        let store = PgSwarms::connect(&url).unwrap();
        let hex = shoal_proto::InfoHash([1; 20]).to_hex();
        store
            .db
            .with_client(|c| {
                c.batch_execute(&format!(
                    "INSERT INTO shoal_swarms VALUES ('{hex}', 1, 0);
                     INSERT INTO shoal_swarm_peers VALUES
                         (1, '{hex}', 'not an ip', 1, '\\x00', TRUE, 0)"
                ))
            })
            .unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("malformed row"), "{err}");
    }
}
