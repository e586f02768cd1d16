//! Rows of the label tables: `categories` (name and save path), `tags` (every tag the
//! user created, used or not) and `torrent_labels` (a torrent's category and tags).
//!
//! `torrent_labels` has no foreign key to `torrents`: a torrent added by magnet has its
//! row in `magnets` until the metadata arrives, and it can carry labels from the start.
//! Its row goes when the torrent is removed ([`delete_torrent`]); rows left by a crash
//! between the two are dropped at load ([`load`]).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, Connection};

/// A torrent's category and tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TorrentLabels {
    /// The category's name, if any.
    pub category: Option<String>,
    /// Tag names.
    pub tags: BTreeSet<String>,
}

/// Everything in the label tables.
#[derive(Debug, Clone, Default)]
pub struct LabelRows {
    /// Category name → save path ("" when the category has none).
    pub categories: BTreeMap<String, String>,
    /// Every known tag.
    pub tags: BTreeSet<String>,
    /// Hex info-hash → labels.
    pub torrents: BTreeMap<String, TorrentLabels>,
}

/// Reads every label, first dropping torrent labels whose torrent is in neither
/// `torrents` nor `magnets`.
pub fn load(conn: &Connection) -> anyhow::Result<LabelRows> {
    conn.execute(
        "DELETE FROM torrent_labels WHERE info_hash NOT IN (SELECT info_hash FROM torrents)
         AND info_hash NOT IN (SELECT info_hash FROM magnets)",
        [],
    )?;
    let mut rows = LabelRows::default();
    let mut stmt = conn.prepare("SELECT name, save_path FROM categories")?;
    for r in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (name, path) = r?;
        rows.categories.insert(name, path);
    }
    let mut stmt = conn.prepare("SELECT name FROM tags")?;
    for r in stmt.query_map([], |r| r.get::<_, String>(0))? {
        rows.tags.insert(r?);
    }
    let mut stmt = conn.prepare("SELECT info_hash, category, tags FROM torrent_labels")?;
    let it = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for r in it {
        let (hash, category, tags) = r?;
        let tags = split_tags(&tags);
        rows.torrents.insert(hash, TorrentLabels { category, tags });
    }
    Ok(rows)
}

/// Tags as stored: joined with `,` (which a tag name cannot contain).
fn split_tags(s: &str) -> BTreeSet<String> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Adds or replaces a category.
pub fn put_category(conn: &Connection, name: &str, save_path: &str) -> anyhow::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO categories (name, save_path) VALUES (?1, ?2)",
        params![name, save_path],
    )?;
    Ok(())
}

/// Removes categories and clears them from the torrents that had them.
pub fn delete_categories(conn: &mut Connection, names: &[String]) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    for n in names {
        tx.execute("DELETE FROM categories WHERE name = ?1", params![n])?;
        tx.execute(
            "UPDATE torrent_labels SET category = NULL WHERE category = ?1",
            params![n],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Adds tags to the known set.
pub fn put_tags(conn: &mut Connection, tags: &[String]) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    for t in tags {
        tx.execute("INSERT OR IGNORE INTO tags (name) VALUES (?1)", params![t])?;
    }
    tx.commit()?;
    Ok(())
}

/// Removes tags from the known set (torrents' labels are saved by the caller).
pub fn delete_tags(conn: &mut Connection, tags: &[String]) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    for t in tags {
        tx.execute("DELETE FROM tags WHERE name = ?1", params![t])?;
    }
    tx.commit()?;
    Ok(())
}

/// Saves the labels of torrents (hex info-hash); empty labels delete the row.
pub fn put_torrents(
    conn: &mut Connection,
    labels: &[(String, TorrentLabels)],
) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    for (hash, l) in labels {
        if l.category.is_none() && l.tags.is_empty() {
            tx.execute(
                "DELETE FROM torrent_labels WHERE info_hash = ?1",
                params![hash],
            )?;
            continue;
        }
        let tags: Vec<&str> = l.tags.iter().map(String::as_str).collect();
        tx.execute(
            "INSERT OR REPLACE INTO torrent_labels (info_hash, category, tags) VALUES (?1, ?2, ?3)",
            params![hash, l.category, tags.join(",")],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Forgets a removed torrent's labels (no error when it had none).
pub fn delete_torrent(conn: &Connection, hash: &str) -> anyhow::Result<()> {
    conn.execute(
        "DELETE FROM torrent_labels WHERE info_hash = ?1",
        params![hash],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_orphans_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::store::schema::open(&dir.path().join("t.db")).unwrap();
        let hash = "ab".repeat(20);
        crate::store::magnets::upsert(
            &conn,
            &crate::store::magnets::MagnetRow {
                info_hash: hash.clone(),
                uri: format!("magnet:?xt=urn:btih:{hash}"),
                save_dir: "/tmp/x".into(),
                paused: false,
                added_at: 1,
            },
        )
        .unwrap();
        put_category(&conn, "tv", "/srv/tv").unwrap();
        put_category(&conn, "films", "").unwrap();
        put_tags(&mut conn, &["a".into(), "b".into()]).unwrap();
        let l = TorrentLabels {
            category: Some("tv".into()),
            tags: ["a".to_string(), "b".to_string()].into(),
        };
        put_torrents(&mut conn, &[(hash.clone(), l.clone())]).unwrap();
        put_torrents(&mut conn, &[("cd".repeat(20), l.clone())]).unwrap();
        let rows = load(&conn).unwrap();
        assert_eq!(rows.categories.len(), 2);
        assert_eq!(rows.categories["tv"], "/srv/tv");
        assert_eq!(rows.tags.len(), 2);
        // The second torrent exists nowhere: its labels are dropped.
        assert_eq!(rows.torrents.len(), 1);
        assert_eq!(rows.torrents[&hash], l);
        delete_categories(&mut conn, &["tv".into()]).unwrap();
        delete_tags(&mut conn, &["a".into()]).unwrap();
        let rows = load(&conn).unwrap();
        assert_eq!(rows.torrents[&hash].category, None);
        assert_eq!(rows.tags.len(), 1);
        delete_torrent(&conn, &hash).unwrap();
        assert!(load(&conn).unwrap().torrents.is_empty());
    }
}
