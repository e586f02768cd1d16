//! The catalog's storage boundary: a trait so SQLite (the default, embedded) and a
//! shared server database (PostgreSQL, not implemented yet) are interchangeable.
//!
//! Stores are synchronous; the tracker calls them from `spawn_blocking`. A store
//! keeps only what publishing gives it; live swarm counts come from the registry.

use shoal_proto::catalog::SearchQuery;
use shoal_proto::{InfoHash, PeerId};
use thiserror::Error;

/// A catalog storage failure; the request fails with 500, the tracker keeps serving.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The embedded database failed (disk full, corrupt file, locked).
    #[error("catalog database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Creating the data folder failed.
    #[error("cannot create the catalog folder {path}: {source}")]
    Folder {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A stored row does not decode (written by something else).
    #[error("catalog database holds a malformed row: {0}")]
    Corrupt(String),
}

/// One file of a published torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogFile {
    /// Path inside the torrent, components joined with `/`.
    pub path: String,
    /// Bytes.
    pub length: u64,
}

/// Everything stored about a published torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The torrent.
    pub info_hash: InfoHash,
    /// `info.name`.
    pub name: String,
    /// Total bytes.
    pub total_size: u64,
    /// Piece size in bytes.
    pub piece_length: u64,
    /// Files in torrent order.
    pub files: Vec<CatalogFile>,
    /// BEP 27 private flag.
    pub private: bool,
    /// Publish time, Unix seconds.
    pub published: i64,
    /// Who published it, when they said.
    pub publisher: Option<PeerId>,
    /// The `.torrent` as published.
    pub torrent: Vec<u8>,
}

impl CatalogEntry {
    /// Lowercased name and file paths, one per line: what words are matched against.
    pub fn search_text(&self) -> String {
        let mut t = self.name.to_lowercase();
        for f in &self.files {
            t.push('\n');
            t.push_str(&f.path.to_lowercase());
        }
        t
    }
}

/// What search needs of a stored torrent (no file list, no `.torrent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The torrent.
    pub info_hash: InfoHash,
    /// `info.name`.
    pub name: String,
    /// Lowercased name and paths, as [`CatalogEntry::search_text`].
    pub search_text: String,
    /// Total bytes.
    pub size: u64,
    /// Number of files.
    pub file_count: u64,
    /// Publish time, Unix seconds.
    pub published: i64,
}

/// Persistent catalog storage.
pub trait CatalogStore: Send + Sync {
    /// Stores `entry` unless its info-hash is already there; true when it was new.
    fn insert(&self, entry: &CatalogEntry) -> Result<bool, StoreError>;
    /// The `.torrent` bytes of a published torrent.
    fn torrent(&self, hash: &InfoHash) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every published info-hash (loaded once at start for catalog-only checks).
    fn hashes(&self) -> Result<Vec<InfoHash>, StoreError>;
    /// Up to `limit` torrents that may match `query` (every word in the search text,
    /// or the id prefix), best-looking first; the caller ranks them exactly.
    /// Private torrents only when `include_private`.
    fn candidates(
        &self,
        query: &SearchQuery,
        include_private: bool,
        limit: usize,
    ) -> Result<Vec<Candidate>, StoreError>;
}
