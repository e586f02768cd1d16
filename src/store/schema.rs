//! Opening the database and creating or migrating its tables.

use std::path::Path;

use anyhow::Context;
use rusqlite::Connection;

/// Schema version stored in `PRAGMA user_version`.
const VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS torrents (
    info_hash    TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    metainfo     BLOB NOT NULL,
    save_dir     TEXT NOT NULL,
    state        TEXT NOT NULL,
    error        TEXT,
    added_at     INTEGER NOT NULL,
    started_at   INTEGER,
    completed_at INTEGER,
    wanted       TEXT,
    priorities   TEXT,
    downloaded   INTEGER NOT NULL DEFAULT 0,
    uploaded     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS resume (
    info_hash TEXT PRIMARY KEY REFERENCES torrents(info_hash) ON DELETE CASCADE,
    pieces    BLOB NOT NULL,
    files     TEXT NOT NULL,
    saved_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id          INTEGER PRIMARY KEY,
    info_hash   TEXT NOT NULL,
    name        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    status      TEXT NOT NULL,
    error       TEXT,
    avg_speed   INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stats (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS transfer_log (
    id        INTEGER PRIMARY KEY,
    ts_ms     INTEGER NOT NULL,
    direction TEXT NOT NULL,
    peer      TEXT NOT NULL,
    info_hash TEXT NOT NULL,
    piece     INTEGER NOT NULL,
    bytes     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS transfer_log_hash ON transfer_log(info_hash);
CREATE TABLE IF NOT EXISTS magnets (
    info_hash TEXT PRIMARY KEY,
    uri       TEXT NOT NULL,
    save_dir  TEXT NOT NULL,
    state     TEXT NOT NULL,
    added_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS categories (
    name      TEXT PRIMARY KEY,
    save_path TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS torrent_labels (
    info_hash TEXT PRIMARY KEY,
    category  TEXT,
    tags      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS torrent_rules (
    info_hash       TEXT PRIMARY KEY REFERENCES torrents(info_hash) ON DELETE CASCADE,
    ratio_limit     REAL NOT NULL DEFAULT -2,
    seed_time_limit REAL NOT NULL DEFAULT -2,
    seed_idle_limit REAL NOT NULL DEFAULT -2,
    queue_position  INTEGER NOT NULL,
    force_start     INTEGER NOT NULL DEFAULT 0,
    seeding_secs    INTEGER NOT NULL DEFAULT 0,
    stop_reason     TEXT
);
CREATE TABLE IF NOT EXISTS torrent_options (
    info_hash        TEXT PRIMARY KEY REFERENCES torrents(info_hash) ON DELETE CASCADE,
    sequential       INTEGER NOT NULL DEFAULT 0,
    first_last_piece INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS torrent_speed (
    info_hash TEXT PRIMARY KEY REFERENCES torrents(info_hash) ON DELETE CASCADE,
    max_up    INTEGER NOT NULL DEFAULT 0,
    max_down  INTEGER NOT NULL DEFAULT 0
);
";

/// Opens `path` with WAL and `synchronous=NORMAL` and brings the schema up to date.
pub fn open(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > VERSION {
        anyhow::bail!(
            "{} was written by a newer Shoal (schema {version}); upgrade Shoal or use another --data-dir",
            path.display()
        );
    }
    conn.execute_batch(SCHEMA)?;
    conn.pragma_update(None, "user_version", VERSION)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    #[test]
    fn opens_twice() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        drop(super::open(&p).unwrap());
        let c = super::open(&p).unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
