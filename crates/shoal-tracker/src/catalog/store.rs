//! The catalog's storage boundary: a trait so SQLite (the default, embedded) and a
//! shared server database (PostgreSQL, [`super::postgres`]) are interchangeable.
//!
//! Stores are synchronous; the tracker calls them from `spawn_blocking`. A store
//! keeps only what publishing gives it; live swarm counts come from the registry.
//! Every store implements the same contract, checked by the same tests (see
//! `tests::for_each_store`): `insert` is idempotent (also when two trackers insert
//! the same torrent at once into a shared store), `candidates` applies the private
//! rule, and ranking happens outside the store in [`super::search::rank`].

use shoal_proto::catalog::SearchQuery;
use shoal_proto::{InfoHash, PeerId};
use thiserror::Error;

/// The test PostgreSQL server (shared with the integration tests).
#[cfg(test)]
#[path = "../../tests/common/postgres.rs"]
pub(crate) mod test_postgres;

/// A catalog storage failure; the request fails with 500, the tracker keeps serving.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The embedded database failed (disk full, corrupt file, locked).
    #[error("catalog database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL server failed or went away; the next request reconnects.
    #[error("catalog database (PostgreSQL) error: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// Cannot reach or log in to the PostgreSQL server (at startup).
    #[error(
        "cannot connect to the PostgreSQL catalog {target}: {source}; check the \
         --catalog-db URL (host, port, user, database) and that the server accepts \
         connections from this host"
    )]
    Connect {
        /// The URL without its password.
        target: String,
        /// Why.
        source: ::postgres::Error,
    },
    /// The catalog database setting is not a URL this tracker can use.
    #[error("catalog database URL {0:?} is not usable: give postgres://USER@HOST:PORT/DB or postgresql://...")]
    BadUrl(String),
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
    /// True when other trackers may write to this store too, so what this process
    /// remembers of it (the published set) must be refreshed from it.
    fn is_shared(&self) -> bool {
        false
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::postgres::PgStore;
    use crate::catalog::sqlite::SqliteStore;

    /// Opens the store under test; calling it again reopens the same data (a restart).
    pub(crate) type Open<'a> = &'a dyn Fn() -> Box<dyn CatalogStore>;

    /// Runs `scenario` against SQLite (in a temp dir) and, when PostgreSQL is installed,
    /// against a fresh PostgreSQL database; otherwise a `SKIPPED:` line says why.
    pub(crate) fn for_each_store(scenario: impl Fn(Open<'_>)) {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("catalog");
        eprintln!("store: SQLite in {}", folder.display());
        scenario(&|| Box::new(SqliteStore::open_dir(&folder).unwrap()));
        if let Some(url) = test_postgres::fresh_database() {
            eprintln!("store: PostgreSQL at {url}");
            scenario(&|| Box::new(PgStore::connect(&url).unwrap()));
        }
    }

    pub(crate) fn entry(n: u8, name: &str, files: &[&str], private: bool) -> CatalogEntry {
        CatalogEntry {
            info_hash: InfoHash([n; 20]),
            name: name.into(),
            total_size: 100 * files.len() as u64,
            piece_length: 16384,
            files: files
                .iter()
                .map(|p| CatalogFile {
                    path: (*p).into(),
                    length: 100,
                })
                .collect(),
            private,
            published: 1_700_000_000 + i64::from(n),
            publisher: Some(PeerId([9; 20])),
            torrent: vec![b'd', n, b'e'],
        }
    }

    #[test]
    fn insert_is_idempotent_and_persists() {
        for_each_store(|open| {
            {
                let s = open();
                assert!(s
                    .insert(&entry(1, "Ubuntu ISO", &["ubuntu.iso"], false))
                    .unwrap());
                assert!(!s
                    .insert(&entry(1, "Ubuntu ISO", &["ubuntu.iso"], false))
                    .unwrap());
            }
            let s = open();
            assert_eq!(s.hashes().unwrap(), [InfoHash([1; 20])]);
            assert_eq!(
                s.torrent(&InfoHash([1; 20])).unwrap(),
                Some(vec![b'd', 1, b'e'])
            );
            assert_eq!(s.torrent(&InfoHash([2; 20])).unwrap(), None);
        });
    }

    #[test]
    fn candidates_match_words_ids_and_hide_private() {
        for_each_store(|open| {
            let s = open();
            s.insert(&entry(1, "Big Buck Bunny", &["bbb/video.MKV"], false))
                .unwrap();
            s.insert(&entry(2, "Secret", &["x.mkv"], true)).unwrap();
            s.insert(&entry(0xab, "Other", &["y.txt"], false)).unwrap();
            s.insert(&entry(3, "Many", &[], false)).unwrap();
            let names = |q: &str, private: bool| -> Vec<String> {
                s.candidates(&SearchQuery::parse(q), private, 100)
                    .unwrap()
                    .into_iter()
                    .map(|c| c.name)
                    .collect()
            };
            assert_eq!(names("bunny video", false), ["Big Buck Bunny"]);
            assert_eq!(names("mkv", false), ["Big Buck Bunny"]);
            assert_eq!(names("mkv", true).len(), 2);
            assert_eq!(names("abab", false), ["Other"]);
            assert_eq!(names("many", false), ["Many"]);
            assert!(names("bunny nothing", false).is_empty());
            // An empty query lists the catalog: the public torrents, or all of them.
            assert_eq!(names("", false).len(), 3);
            assert_eq!(names("", true).len(), 4);
            // Quotes, SQL wildcards and NUL are data, not syntax.
            assert!(names("%' OR 1=1 --", false).is_empty());
            assert!(names("_", false).is_empty());
            assert!(names("bunny\0", false).is_empty());
        });
    }

    #[test]
    fn candidates_put_exact_and_prefix_names_first_within_the_limit() {
        for_each_store(|open| {
            let s = open();
            for n in 1..=5 {
                s.insert(&entry(n, &format!("the linux book {n}"), &[], false))
                    .unwrap();
            }
            s.insert(&entry(10, "Linux", &[], false)).unwrap();
            s.insert(&entry(11, "Linux Tools", &[], false)).unwrap();
            let got: Vec<String> = s
                .candidates(&SearchQuery::parse("linux"), false, 2)
                .unwrap()
                .into_iter()
                .map(|c| c.name)
                .collect();
            assert_eq!(got, ["Linux", "Linux Tools"]);
            let c = &s
                .candidates(&SearchQuery::parse("tools"), false, 10)
                .unwrap()[0];
            assert_eq!(
                (c.info_hash, c.search_text.as_str(), c.size, c.file_count),
                (InfoHash([11; 20]), "linux tools", 0, 0)
            );
            assert_eq!(c.published, 1_700_000_011);
        });
    }
}
