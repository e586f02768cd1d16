//! The catalog in an embedded SQLite database (`DATA_DIR/catalog.sqlite`).
//!
//! Schema (version 1, in `PRAGMA user_version`):
//! - `torrents(info_hash TEXT PK /* 40 lowercase hex */, name, name_lc, search_text,
//!   total_size, piece_length, file_count, private, published, publisher BLOB NULL,
//!   torrent BLOB)`
//! - `files(info_hash, idx, path, length)`, primary key `(info_hash, idx)`.
//!
//! Search is a token match with `instr` over `search_text` (lowercased name and file
//! paths) rather than an FTS5 index, on purpose: the catalog promises substring
//! matches ("buntu" finds "ubuntu-24.04.iso", "s01" finds "Show.S01E02.mkv"), and
//! FTS5's default tokenizer only matches whole tokens or token prefixes, while its
//! trigram tokenizer cannot match words under 3 characters and triples the index.
//! A scan of `search_text` is linear but simple and fast at tracker-catalog sizes
//! (around 100 ns per row, so about 10 ms for 100,000 torrents), and the exact
//! ranking is done in Rust anyway (`catalog::search`). The same query translates
//! directly to PostgreSQL (`strpos`), where `pg_trgm` can index it.
//!
//! One connection behind a mutex; WAL journaling so a reader never waits on the disk
//! flush of a writer longer than needed.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use shoal_proto::catalog::SearchQuery;
use shoal_proto::InfoHash;

use super::store::{Candidate, CatalogEntry, CatalogStore, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS torrents (
    info_hash    TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    name_lc      TEXT NOT NULL,
    search_text  TEXT NOT NULL,
    total_size   INTEGER NOT NULL,
    piece_length INTEGER NOT NULL,
    file_count   INTEGER NOT NULL,
    private      INTEGER NOT NULL,
    published    INTEGER NOT NULL,
    publisher    BLOB,
    torrent      BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    info_hash TEXT NOT NULL,
    idx       INTEGER NOT NULL,
    path      TEXT NOT NULL,
    length    INTEGER NOT NULL,
    PRIMARY KEY (info_hash, idx)
);
PRAGMA user_version = 1;
";

/// File name of the catalog inside the data dir.
pub const FILE_NAME: &str = "catalog.sqlite";

/// A catalog in SQLite.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/catalog.sqlite`, creating `dir` too.
    pub fn open_dir(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
        let conn = Connection::open(dir.join(FILE_NAME))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::init(conn)
    }

    /// A catalog that lives in memory only.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-statement leaves SQLite itself consistent (it rolls back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn parse_hash(hex: &str) -> Result<InfoHash, StoreError> {
    InfoHash::from_hex(hex).ok_or_else(|| StoreError::Corrupt(format!("info_hash {hex:?}")))
}

impl CatalogStore for SqliteStore {
    fn insert(&self, e: &CatalogEntry) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let hex = e.info_hash.to_hex();
        let added = tx.execute(
            "INSERT OR IGNORE INTO torrents (info_hash, name, name_lc, search_text, total_size,
                piece_length, file_count, private, published, publisher, torrent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                hex,
                e.name,
                e.name.to_lowercase(),
                e.search_text(),
                to_i64(e.total_size),
                to_i64(e.piece_length),
                to_i64(e.files.len() as u64),
                e.private,
                e.published,
                e.publisher.map(|p| p.0.to_vec()),
                e.torrent,
            ],
        )?;
        if added == 1 {
            let mut stmt = tx.prepare(
                "INSERT INTO files (info_hash, idx, path, length) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (i, f) in e.files.iter().enumerate() {
                stmt.execute(params![hex, to_i64(i as u64), f.path, to_i64(f.length)])?;
            }
        }
        tx.commit()?;
        Ok(added == 1)
    }

    fn torrent(&self, hash: &InfoHash) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT torrent FROM torrents WHERE info_hash = ?1",
                [hash.to_hex()],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn hashes(&self) -> Result<Vec<InfoHash>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT info_hash FROM torrents")?;
        let hexes = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        hexes.iter().map(|h| parse_hash(h)).collect()
    }

    fn candidates(
        &self,
        query: &SearchQuery,
        include_private: bool,
        limit: usize,
    ) -> Result<Vec<Candidate>, StoreError> {
        // ?1 phrase, ?2 include_private, ?3 limit, ?4 id prefix, ?5.. words. An empty
        // query lists the catalog (newest first here; ranking orders by seeders).
        let mut words_match = (0..query.words.len())
            .map(|i| format!("instr(search_text, ?{}) > 0", i + 5))
            .collect::<Vec<_>>()
            .join(" AND ");
        if words_match.is_empty() {
            words_match.push('1');
        }
        let sql = format!(
            "SELECT info_hash, name, search_text, total_size, file_count, published
             FROM torrents
             WHERE (private = 0 OR ?2)
               AND (({words_match}) OR (?4 <> '' AND substr(info_hash, 1, length(?4)) = ?4))
             ORDER BY name_lc = ?1 DESC, substr(name_lc, 1, length(?1)) = ?1 DESC,
                      published DESC
             LIMIT ?3"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let limit = to_i64(limit as u64);
        let prefix = query.id_prefix.clone().unwrap_or_default();
        let fixed: [&dyn rusqlite::ToSql; 4] = [&query.phrase, &include_private, &limit, &prefix];
        let all = fixed
            .into_iter()
            .chain(query.words.iter().map(|w| w as &dyn rusqlite::ToSql));
        let rows = stmt
            .query_map(params_from_iter(all), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(hex, name, search_text, size, files, published)| {
                Ok(Candidate {
                    info_hash: parse_hash(&hex)?,
                    name,
                    search_text,
                    size: u64::try_from(size).unwrap_or(0),
                    file_count: u64::try_from(files).unwrap_or(0),
                    published,
                })
            })
            .collect()
    }
}
