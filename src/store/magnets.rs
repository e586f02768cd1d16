//! Rows of the `magnets` table: torrents added by magnet link whose metadata is not
//! known yet. A row goes when the metadata arrives (the torrent then has its row in
//! `torrents`) or the user removes it.

use std::path::PathBuf;

use rusqlite::{params, Connection};

/// A magnet waiting for its metadata.
#[derive(Debug, Clone)]
pub struct MagnetRow {
    /// Hex info-hash.
    pub info_hash: String,
    /// The link as given.
    pub uri: String,
    /// Where the data will go.
    pub save_dir: PathBuf,
    /// Paused by the user.
    pub paused: bool,
    /// Unix seconds.
    pub added_at: i64,
}

/// Adds or replaces a row.
pub fn upsert(conn: &Connection, row: &MagnetRow) -> anyhow::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO magnets (info_hash, uri, save_dir, state, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            row.info_hash,
            row.uri,
            row.save_dir.to_string_lossy(),
            if row.paused { "paused" } else { "active" },
            row.added_at
        ],
    )?;
    Ok(())
}

/// Removes a row (no error when absent).
pub fn delete(conn: &Connection, hash: &str) -> anyhow::Result<()> {
    conn.execute("DELETE FROM magnets WHERE info_hash = ?1", params![hash])?;
    Ok(())
}

/// Every row, oldest first.
pub fn load_all(conn: &Connection) -> anyhow::Result<Vec<MagnetRow>> {
    let mut stmt = conn.prepare(
        "SELECT info_hash, uri, save_dir, state, added_at FROM magnets ORDER BY added_at",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(MagnetRow {
            info_hash: r.get(0)?,
            uri: r.get(1)?,
            save_dir: PathBuf::from(r.get::<_, String>(2)?),
            paused: r.get::<_, String>(3)? == "paused",
            added_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::schema::open(&dir.path().join("t.db")).unwrap();
        let row = MagnetRow {
            info_hash: "ab".repeat(20),
            uri: "magnet:?xt=urn:btih:".to_string() + &"ab".repeat(20),
            save_dir: "/tmp/x".into(),
            paused: true,
            added_at: 5,
        };
        upsert(&conn, &row).unwrap();
        let all = load_all(&conn).unwrap();
        assert_eq!(all.len(), 1);
        assert!(all[0].paused);
        assert_eq!(all[0].uri, row.uri);
        delete(&conn, &row.info_hash).unwrap();
        assert!(load_all(&conn).unwrap().is_empty());
    }
}
