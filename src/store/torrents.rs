//! Rows of the `torrents` and `resume` tables, and the identity and settings in `meta`.
//!
//! Resume data is the verified-piece bitfield (MSB first, as on the wire) plus, per
//! file, its size and modification time (ns) when the bitfield was saved. On start a
//! torrent whose files still match is trusted without hashing.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use shoal_proto::metainfo::Info;
use shoal_proto::PeerId;

use crate::config::SettingsPatch;

/// What the user asked a torrent to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Running (or queued for a slot).
    Active,
    /// Stopped by the user.
    Paused,
}

impl Intent {
    fn as_str(self) -> &'static str {
        match self {
            Intent::Active => "active",
            Intent::Paused => "paused",
        }
    }

    fn parse(s: &str) -> Intent {
        if s == "paused" {
            Intent::Paused
        } else {
            Intent::Active
        }
    }
}

/// Per-file priority: new pieces are started from the highest priority first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Fetched after the others.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Fetched first.
    High,
}

impl From<Priority> for shoal_engine::picker::Priority {
    fn from(p: Priority) -> Self {
        match p {
            Priority::Low => shoal_engine::picker::Priority::Low,
            Priority::Normal => shoal_engine::picker::Priority::Normal,
            Priority::High => shoal_engine::picker::Priority::High,
        }
    }
}

/// One row of `torrents`.
#[derive(Debug, Clone)]
pub struct TorrentRow {
    /// Info-hash, hex.
    pub info_hash: String,
    /// Display name.
    pub name: String,
    /// The whole `.torrent`.
    pub metainfo: Vec<u8>,
    /// Folder holding the data under its name.
    pub save_dir: PathBuf,
    /// Active or paused.
    pub intent: Intent,
    /// Why the torrent stopped, if it did.
    pub error: Option<String>,
    /// Unix seconds.
    pub added_at: i64,
    /// When the current download started (Unix seconds).
    pub started_at: Option<i64>,
    /// When every piece was first verified.
    pub completed_at: Option<i64>,
    /// Files selected (None: all).
    pub wanted: Option<Vec<bool>>,
    /// File priorities (None: all normal).
    pub priorities: Option<Vec<Priority>>,
    /// Payload bytes received, over all runs.
    pub downloaded: u64,
    /// Payload bytes sent, over all runs.
    pub uploaded: u64,
}

/// Size and modification time (ns since the epoch) of one file; `None` when missing.
pub type FileStamp = Option<(u64, i64)>;

/// One row of `resume`.
#[derive(Debug, Clone)]
pub struct ResumeRecord {
    /// Verified pieces, MSB-first bitfield bytes.
    pub pieces: Vec<u8>,
    /// Per file, as when `pieces` was saved.
    pub files: Vec<FileStamp>,
}

/// Stats every file of `info` under `save_dir`. Blocking.
pub fn file_stamps(save_dir: &Path, info: &Info) -> Vec<FileStamp> {
    info.files
        .iter()
        .map(|f| {
            let path = save_dir.join(info.file_rel_path(f));
            let md = std::fs::metadata(&path).ok()?;
            let mtime = md
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i64);
            Some((md.len(), mtime))
        })
        .collect()
}

/// All torrents with their resume data, oldest first.
pub fn load_all(conn: &Connection) -> anyhow::Result<Vec<(TorrentRow, Option<ResumeRecord>)>> {
    let mut stmt = conn.prepare(
        "SELECT t.info_hash, t.name, t.metainfo, t.save_dir, t.state, t.error, t.added_at,
                t.started_at, t.completed_at, t.wanted, t.priorities, t.downloaded, t.uploaded,
                r.pieces, r.files
         FROM torrents t LEFT JOIN resume r ON r.info_hash = t.info_hash
         ORDER BY t.added_at, t.rowid",
    )?;
    let rows = stmt.query_map([], |r| {
        let wanted: Option<String> = r.get(9)?;
        let prio: Option<String> = r.get(10)?;
        let pieces: Option<Vec<u8>> = r.get(13)?;
        let files: Option<String> = r.get(14)?;
        let row = TorrentRow {
            info_hash: r.get(0)?,
            name: r.get(1)?,
            metainfo: r.get(2)?,
            save_dir: PathBuf::from(r.get::<_, String>(3)?),
            intent: Intent::parse(&r.get::<_, String>(4)?),
            error: r.get(5)?,
            added_at: r.get(6)?,
            started_at: r.get(7)?,
            completed_at: r.get(8)?,
            wanted: wanted.and_then(|w| serde_json::from_str(&w).ok()),
            priorities: prio.and_then(|p| serde_json::from_str(&p).ok()),
            downloaded: r.get::<_, i64>(11)? as u64,
            uploaded: r.get::<_, i64>(12)? as u64,
        };
        let resume = match (pieces, files) {
            (Some(pieces), Some(files)) => serde_json::from_str(&files)
                .ok()
                .map(|files| ResumeRecord { pieces, files }),
            _ => None,
        };
        Ok((row, resume))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Inserts a new torrent.
pub fn insert(conn: &Connection, t: &TorrentRow) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO torrents (info_hash, name, metainfo, save_dir, state, error, added_at,
            started_at, completed_at, wanted, priorities, downloaded, uploaded)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            t.info_hash,
            t.name,
            t.metainfo,
            t.save_dir.to_string_lossy(),
            t.intent.as_str(),
            t.error,
            t.added_at,
            t.started_at,
            t.completed_at,
            t.wanted.as_ref().map(json),
            t.priorities.as_ref().map(json),
            t.downloaded as i64,
            t.uploaded as i64,
        ],
    )?;
    Ok(())
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Sets intent and error.
pub fn set_state(
    conn: &Connection,
    hash: &str,
    intent: Intent,
    error: Option<&str>,
) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE torrents SET state = ?2, error = ?3 WHERE info_hash = ?1",
        params![hash, intent.as_str(), error],
    )?;
    Ok(())
}

/// Sets the times of the current download.
pub fn set_times(
    conn: &Connection,
    hash: &str,
    started_at: Option<i64>,
    completed_at: Option<i64>,
) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE torrents SET started_at = ?2, completed_at = ?3 WHERE info_hash = ?1",
        params![hash, started_at, completed_at],
    )?;
    Ok(())
}

/// Sets the file selection and priorities.
pub fn set_files(
    conn: &Connection,
    hash: &str,
    wanted: &[bool],
    priorities: &[Priority],
) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE torrents SET wanted = ?2, priorities = ?3 WHERE info_hash = ?1",
        params![hash, json(&wanted), json(&priorities)],
    )?;
    Ok(())
}

/// Saves resume data and the torrent's byte counters in one transaction.
pub fn save_resume(
    conn: &mut Connection,
    hash: &str,
    resume: &ResumeRecord,
    downloaded: u64,
    uploaded: u64,
) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    let n = tx.execute(
        "UPDATE torrents SET downloaded = ?2, uploaded = ?3 WHERE info_hash = ?1",
        params![hash, downloaded as i64, uploaded as i64],
    )?;
    if n > 0 {
        tx.execute(
            "INSERT INTO resume (info_hash, pieces, files, saved_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(info_hash) DO UPDATE SET pieces = ?2, files = ?3, saved_at = ?4",
            params![
                hash,
                resume.pieces,
                json(&resume.files),
                crate::store::now_secs()
            ],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Deletes a torrent and its resume data.
pub fn delete(conn: &Connection, hash: &str) -> anyhow::Result<()> {
    conn.execute("DELETE FROM resume WHERE info_hash = ?1", params![hash])?;
    conn.execute("DELETE FROM torrents WHERE info_hash = ?1", params![hash])?;
    Ok(())
}

fn meta_get(conn: &Connection, key: &str) -> anyhow::Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

fn meta_put(conn: &Connection, key: &str, value: &str) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = ?2",
        params![key, value],
    )?;
    Ok(())
}

/// DHT nodes saved by [`save_dht_nodes`] (none when never saved); lines that do not
/// parse are skipped.
pub fn dht_nodes(
    conn: &Connection,
) -> anyhow::Result<Vec<(shoal_proto::dht::NodeId, std::net::SocketAddr)>> {
    let Some(text) = meta_get(conn, "dht_nodes")? else {
        return Ok(Vec::new());
    };
    Ok(text
        .lines()
        .filter_map(|l| {
            let (id, addr) = l.split_once(' ')?;
            let mut bytes = [0u8; 20];
            shoal_proto::ids::from_hex_into(id, &mut bytes).then_some(())?;
            Some((shoal_proto::dht::NodeId(bytes), addr.parse().ok()?))
        })
        .collect())
}

/// Saves the DHT's routing table (`hexid ip:port` a line) for the next start.
pub fn save_dht_nodes(
    conn: &Connection,
    nodes: &[(shoal_proto::dht::NodeId, std::net::SocketAddr)],
) -> anyhow::Result<()> {
    let text: Vec<String> = nodes
        .iter()
        .map(|(id, a)| format!("{} {a}", shoal_proto::ids::to_hex(&id.0)))
        .collect();
    meta_put(conn, "dht_nodes", &text.join("\n"))
}

/// The data dir's peer ID, created (with the Shoal prefix) on first use.
pub fn peer_id(conn: &Connection) -> anyhow::Result<PeerId> {
    if let Some(hex) = meta_get(conn, "peer_id")? {
        let mut id = [0u8; 20];
        if shoal_proto::ids::from_hex_into(&hex, &mut id) {
            return Ok(PeerId(id));
        }
    }
    let id = PeerId::with_random(rand::random());
    meta_put(conn, "peer_id", &shoal_proto::ids::to_hex(&id.0))?;
    Ok(id)
}

/// Settings changed at run time through the API.
pub fn stored_settings(conn: &Connection) -> anyhow::Result<SettingsPatch> {
    match meta_get(conn, "settings")? {
        Some(s) => serde_json::from_str(&s).context("stored settings are unreadable"),
        None => Ok(SettingsPatch::default()),
    }
}

/// Merges `patch` into the stored settings.
pub fn store_settings(conn: &Connection, patch: &SettingsPatch) -> anyhow::Result<()> {
    let mut cur = stored_settings(conn).unwrap_or_default();
    macro_rules! take {
        ($($f:ident),*) => { $( if patch.$f.is_some() { cur.$f = patch.$f.clone(); } )* };
    }
    take!(
        max_down,
        max_up,
        auto_share,
        max_active,
        trackers,
        download_dir
    );
    cur.auto.merge(&patch.auto);
    meta_put(conn, "settings", &json(&cur))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(hash: &str) -> TorrentRow {
        TorrentRow {
            info_hash: hash.into(),
            name: "n".into(),
            metainfo: vec![1, 2],
            save_dir: "/tmp".into(),
            intent: Intent::Active,
            error: None,
            added_at: 1,
            started_at: None,
            completed_at: None,
            wanted: Some(vec![true, false]),
            priorities: None,
            downloaded: 0,
            uploaded: 0,
        }
    }

    #[test]
    fn torrents_and_resume_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = super::super::schema::open(&dir.path().join("db")).unwrap();
        insert(&c, &row("aa")).unwrap();
        let r = ResumeRecord {
            pieces: vec![0x80],
            files: vec![Some((5, 7)), None],
        };
        save_resume(&mut c, "aa", &r, 10, 20).unwrap();
        set_state(&c, "aa", Intent::Paused, Some("x")).unwrap();
        let all = load_all(&c).unwrap();
        assert_eq!(all.len(), 1);
        let (t, res) = &all[0];
        assert_eq!(t.intent, Intent::Paused);
        assert_eq!(t.downloaded, 10);
        assert_eq!(t.wanted, Some(vec![true, false]));
        assert_eq!(res.as_ref().unwrap().files, r.files);
        let id = peer_id(&c).unwrap();
        assert_eq!(peer_id(&c).unwrap(), id);
        delete(&c, "aa").unwrap();
        assert!(load_all(&c).unwrap().is_empty());
    }
}
