//! Rows of the `torrent_options` table: per-torrent download order (sequential,
//! first and last pieces first). A torrent without a row uses the defaults (rarest
//! first); the row goes with its torrent (`ON DELETE CASCADE`).

use std::collections::HashMap;

use rusqlite::{params, Connection};
use serde::Serialize;

/// How a torrent's new pieces are chosen, as the API shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DownloadOrder {
    /// Lowest missing piece first instead of rarest first.
    pub sequential: bool,
    /// The first and last piece of every file before the rest.
    pub first_last_piece: bool,
}

impl DownloadOrder {
    /// The engine's picker settings for this order.
    pub fn engine(self) -> (shoal_engine::picker::DownloadOrder, bool) {
        let order = if self.sequential {
            shoal_engine::picker::DownloadOrder::Sequential
        } else {
            shoal_engine::picker::DownloadOrder::Rarest
        };
        (order, self.first_last_piece)
    }
}

/// Stores a torrent's order (its `torrents` row must exist).
pub fn set_order(conn: &Connection, hash: &str, order: DownloadOrder) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO torrent_options (info_hash, sequential, first_last_piece)
         VALUES (?1, ?2, ?3)
         ON CONFLICT(info_hash) DO UPDATE SET
             sequential = excluded.sequential, first_last_piece = excluded.first_last_piece",
        params![hash, order.sequential, order.first_last_piece],
    )?;
    Ok(())
}

/// Every stored order by hex info-hash.
pub fn load_orders(conn: &Connection) -> anyhow::Result<HashMap<String, DownloadOrder>> {
    let mut stmt =
        conn.prepare("SELECT info_hash, sequential, first_last_piece FROM torrent_options")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            DownloadOrder {
                sequential: r.get(1)?,
                first_last_piece: r.get(2)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_round_trip_and_go_with_their_torrent() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::store::schema::open(&dir.path().join("db")).unwrap();
        c.execute(
            "INSERT INTO torrents (info_hash, name, metainfo, save_dir, state, added_at)
             VALUES ('ab', 'n', x'00', '/tmp', 'active', 0)",
            [],
        )
        .unwrap();
        let seq = DownloadOrder {
            sequential: true,
            first_last_piece: false,
        };
        set_order(&c, "ab", seq).unwrap();
        assert_eq!(load_orders(&c).unwrap()["ab"], seq);
        let both = DownloadOrder {
            sequential: true,
            first_last_piece: true,
        };
        set_order(&c, "ab", both).unwrap();
        assert_eq!(load_orders(&c).unwrap()["ab"], both);
        assert!(set_order(&c, "cd", both).is_err(), "no torrent row");
        c.execute("DELETE FROM torrents WHERE info_hash = 'ab'", [])
            .unwrap();
        assert!(load_orders(&c).unwrap().is_empty());
    }
}
