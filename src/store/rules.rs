//! Rows of `torrent_rules`: per-torrent seeding limits, queue position, force start,
//! seeding time and why the rules stopped it (see `crate::node::rules`).
//!
//! A torrent without a row has the defaults (global limits, no force start, never
//! seeded) and a queue position after every torrent that has one.

use std::collections::HashMap;

use rusqlite::{params, Connection};

/// One torrent's row.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesRow {
    /// Hex info-hash.
    pub info_hash: String,
    /// Share ratio limit: -2 global, -1 none, else the limit.
    pub ratio_limit: f64,
    /// Seeding time limit in minutes: -2 global, -1 none, else the limit.
    pub seed_time_limit: f64,
    /// Idle limit in minutes: -2 global, -1 none, else the limit.
    pub seed_idle_limit: f64,
    /// 1 is the head of the queue.
    pub queue_position: i64,
    /// Runs whatever the queue limits.
    pub force_start: bool,
    /// Seconds spent seeding, all runs.
    pub seeding_secs: u64,
    /// Why the seeding rules stopped it.
    pub stop_reason: Option<String>,
}

/// Writes (inserts or replaces) a row.
pub fn save(conn: &Connection, r: &RulesRow) -> anyhow::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO torrent_rules (info_hash, ratio_limit, seed_time_limit,
             seed_idle_limit, queue_position, force_start, seeding_secs, stop_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            r.info_hash,
            r.ratio_limit,
            r.seed_time_limit,
            r.seed_idle_limit,
            r.queue_position,
            r.force_start,
            i64::try_from(r.seeding_secs).unwrap_or(i64::MAX),
            r.stop_reason,
        ],
    )?;
    Ok(())
}

/// Writes several rows in one transaction (queue moves renumber many torrents).
pub fn save_many(conn: &mut Connection, rows: &[RulesRow]) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    for r in rows {
        save(&tx, r)?;
    }
    tx.commit()?;
    Ok(())
}

/// Every row by hex info-hash.
pub fn load_all(conn: &Connection) -> anyhow::Result<HashMap<String, RulesRow>> {
    let mut stmt = conn.prepare(
        "SELECT info_hash, ratio_limit, seed_time_limit, seed_idle_limit, queue_position,
                force_start, seeding_secs, stop_reason FROM torrent_rules",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(RulesRow {
            info_hash: r.get(0)?,
            ratio_limit: r.get(1)?,
            seed_time_limit: r.get(2)?,
            seed_idle_limit: r.get(3)?,
            queue_position: r.get(4)?,
            force_start: r.get(5)?,
            seeding_secs: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
            stop_reason: r.get(7)?,
        })
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let row = row?;
        out.insert(row.info_hash.clone(), row);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_go_with_their_torrent() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = super::super::schema::open(&dir.path().join("db")).unwrap();
        c.execute(
            "INSERT INTO torrents (info_hash, name, metainfo, save_dir, state, added_at)
             VALUES ('aa', 'n', x'00', '/tmp', 'active', 1)",
            [],
        )
        .unwrap();
        let row = RulesRow {
            info_hash: "aa".into(),
            ratio_limit: 1.5,
            seed_time_limit: -2.0,
            seed_idle_limit: -1.0,
            queue_position: 3,
            force_start: true,
            seeding_secs: 77,
            stop_reason: Some("why".into()),
        };
        save_many(&mut c, std::slice::from_ref(&row)).unwrap();
        assert_eq!(load_all(&c).unwrap()["aa"], row);
        c.execute("DELETE FROM torrents WHERE info_hash = 'aa'", [])
            .unwrap();
        assert!(load_all(&c).unwrap().is_empty());
    }
}
