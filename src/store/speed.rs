//! Rows of the `torrent_speed` table: a torrent's own upload and download limits in
//! bytes per second (0: none), applied to its run on top of the session's limits.

use std::collections::HashMap;

use rusqlite::{params, Connection};

/// A torrent's own limits, bytes per second (0: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpeedLimits {
    /// Upload limit.
    pub up: u64,
    /// Download limit.
    pub down: u64,
}

/// Stores `hash`'s limits (a row of zeros is deleted: no limits is the default).
pub fn set(conn: &Connection, hash: &str, l: SpeedLimits) -> anyhow::Result<()> {
    if l == SpeedLimits::default() {
        conn.execute("DELETE FROM torrent_speed WHERE info_hash = ?1", [hash])?;
        return Ok(());
    }
    conn.execute(
        "INSERT INTO torrent_speed (info_hash, max_up, max_down) VALUES (?1, ?2, ?3)
         ON CONFLICT(info_hash) DO UPDATE SET max_up = ?2, max_down = ?3",
        params![hash, l.up as i64, l.down as i64],
    )?;
    Ok(())
}

/// Every stored torrent's limits, by hex info-hash.
pub fn load_all(conn: &Connection) -> anyhow::Result<HashMap<String, SpeedLimits>> {
    let mut stmt = conn.prepare("SELECT info_hash, max_up, max_down FROM torrent_speed")?;
    let rows = stmt.query_map([], |r| {
        let up: i64 = r.get(1)?;
        let down: i64 = r.get(2)?;
        Ok((
            r.get::<_, String>(0)?,
            SpeedLimits {
                up: up.max(0) as u64,
                down: down.max(0) as u64,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
