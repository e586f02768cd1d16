//! History, cumulative statistics and the transfer log.

use rusqlite::{params, Connection};
use serde::Serialize;

/// Most transfer-log rows kept; older ones are dropped first.
pub const LOG_LIMIT: i64 = 100_000;

/// A finished, failed or cancelled download.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRecord {
    /// Info-hash, hex.
    #[serde(rename = "id")]
    pub info_hash: String,
    /// Torrent name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Bytes per second over the download.
    pub avg_speed: u64,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds.
    pub finished_at: i64,
}

/// Appends to the history.
pub fn add_history(conn: &Connection, h: &HistoryRecord) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO history (info_hash, name, size, status, error, avg_speed, started_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            h.info_hash,
            h.name,
            h.size as i64,
            h.status,
            h.error,
            h.avg_speed as i64,
            h.started_at,
            h.finished_at
        ],
    )?;
    let counter = match h.status.as_str() {
        "completed" => "downloads_completed",
        "failed" => "downloads_failed",
        _ => return Ok(()),
    };
    add_stat(conn, counter, 1)
}

/// History, newest first, filtered by name substring and status.
pub fn history(
    conn: &Connection,
    filter: Option<&str>,
    status: Option<&str>,
) -> anyhow::Result<Vec<HistoryRecord>> {
    let like = format!("%{}%", filter.unwrap_or(""));
    let mut stmt = conn.prepare(
        "SELECT info_hash, name, size, status, error, avg_speed, started_at, finished_at
         FROM history WHERE name LIKE ?1 AND (?2 IS NULL OR status = ?2)
         ORDER BY finished_at DESC, id DESC LIMIT 10000",
    )?;
    let rows = stmt.query_map(params![like, status], |r| {
        Ok(HistoryRecord {
            info_hash: r.get(0)?,
            name: r.get(1)?,
            size: r.get::<_, i64>(2)? as u64,
            status: r.get(3)?,
            error: r.get(4)?,
            avg_speed: r.get::<_, i64>(5)? as u64,
            started_at: r.get(6)?,
            finished_at: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Adds `delta` to a cumulative counter.
pub fn add_stat(conn: &Connection, key: &str, delta: i64) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO stats (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = value + ?2",
        params![key, delta],
    )?;
    Ok(())
}

/// A cumulative counter (0 if never set).
pub fn stat(conn: &Connection, key: &str) -> anyhow::Result<u64> {
    use rusqlite::OptionalExtension;
    let v: Option<i64> = conn
        .query_row("SELECT value FROM stats WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

/// One piece received or one piece's worth of blocks sent.
#[derive(Debug, Clone, Serialize)]
pub struct LogRecord {
    /// Unix milliseconds.
    pub ts_ms: i64,
    /// `up` or `down`.
    pub direction: &'static str,
    /// `ip:port`, or empty when unknown.
    pub peer: String,
    /// Info-hash, hex.
    pub info_hash: String,
    /// Piece index.
    pub piece: u32,
    /// Payload bytes.
    pub bytes: u64,
}

/// Appends records in one transaction and drops the oldest beyond [`LOG_LIMIT`].
pub fn append_log(conn: &mut Connection, records: &[LogRecord]) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO transfer_log (ts_ms, direction, peer, info_hash, piece, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for r in records {
            stmt.execute(params![
                r.ts_ms,
                r.direction,
                r.peer,
                r.info_hash,
                r.piece,
                r.bytes as i64
            ])?;
        }
    }
    tx.execute(
        "DELETE FROM transfer_log WHERE id <= (SELECT MAX(id) FROM transfer_log) - ?1",
        [LOG_LIMIT],
    )?;
    tx.commit()?;
    Ok(())
}

/// A filter and page of the transfer log.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Page number from 0.
    pub page: u32,
    /// Records per page.
    pub per_page: u32,
    /// `up` or `down`.
    pub direction: Option<String>,
    /// Substring of the peer address.
    pub peer: Option<String>,
    /// Info-hash prefix.
    pub torrent: Option<String>,
}

/// The total matching `q` and one page of them, newest first.
pub fn log_page(conn: &Connection, q: &LogQuery) -> anyhow::Result<(u64, Vec<LogRecord>)> {
    let peer = format!("%{}%", q.peer.as_deref().unwrap_or(""));
    let torrent = format!(
        "{}%",
        q.torrent.as_deref().unwrap_or("").to_ascii_lowercase()
    );
    let filter = "WHERE (?1 IS NULL OR direction = ?1) AND peer LIKE ?2 AND info_hash LIKE ?3";
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM transfer_log {filter}"),
        params![q.direction, peer, torrent],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT ts_ms, direction, peer, info_hash, piece, bytes FROM transfer_log {filter}
         ORDER BY id DESC LIMIT ?4 OFFSET ?5"
    ))?;
    let offset = i64::from(q.page) * i64::from(q.per_page);
    let rows = stmt.query_map(
        params![q.direction, peer, torrent, q.per_page, offset],
        |r| {
            let dir: String = r.get(1)?;
            Ok(LogRecord {
                ts_ms: r.get(0)?,
                direction: if dir == "up" { "up" } else { "down" },
                peer: r.get(2)?,
                info_hash: r.get(3)?,
                piece: r.get(4)?,
                bytes: r.get::<_, i64>(5)? as u64,
            })
        },
    )?;
    Ok((total.max(0) as u64, rows.collect::<Result<_, _>>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_pages_newest_first_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = super::super::schema::open(&dir.path().join("db")).unwrap();
        let recs: Vec<LogRecord> = (0..10)
            .map(|i| LogRecord {
                ts_ms: i,
                direction: if i % 2 == 0 { "up" } else { "down" },
                peer: format!("127.0.0.1:{}", 6000 + i),
                info_hash: "ab".repeat(20),
                piece: i as u32,
                bytes: 16384,
            })
            .collect();
        append_log(&mut c, &recs).unwrap();
        let q = LogQuery {
            per_page: 3,
            direction: Some("down".into()),
            torrent: Some("AB".into()),
            ..LogQuery::default()
        };
        let (total, items) = log_page(&c, &q).unwrap();
        assert_eq!(total, 5);
        assert_eq!(items.iter().map(|r| r.piece).collect::<Vec<_>>(), [9, 7, 5]);
    }

    #[test]
    fn history_counts_completed() {
        let dir = tempfile::tempdir().unwrap();
        let c = super::super::schema::open(&dir.path().join("db")).unwrap();
        let h = HistoryRecord {
            info_hash: "aa".into(),
            name: "photos".into(),
            size: 1,
            status: "completed".into(),
            error: None,
            avg_speed: 1,
            started_at: 1,
            finished_at: 2,
        };
        add_history(&c, &h).unwrap();
        assert_eq!(stat(&c, "downloads_completed").unwrap(), 1);
        assert_eq!(history(&c, Some("hot"), None).unwrap().len(), 1);
        assert!(history(&c, None, Some("failed")).unwrap().is_empty());
    }
}
