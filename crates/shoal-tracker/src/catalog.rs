//! The catalog: torrents published to this tracker, searchable by name, file name and
//! info-hash prefix, and served back as `.torrent` files.
//!
//! Storage is behind [`store::CatalogStore`]: SQLite in the data dir (or in memory),
//! or PostgreSQL ([`postgres`]) for a catalog shared by several trackers. The set of
//! published info-hashes is also kept in memory so the catalog-only check on every
//! announce costs one hash lookup, not a database query. With a shared store that set
//! can miss what other trackers published: [`Catalog::torrent`] then asks the store,
//! and the server calls [`Catalog::refresh`] every [`SHARED_REFRESH`], so catalog-only
//! announces for a torrent published elsewhere are accepted within that delay. Every
//! method here may block on the database: call it from `spawn_blocking`, except
//! [`Catalog::is_published`], [`Catalog::is_shared`] and [`Catalog::len`].

pub mod postgres;
pub mod search;
pub mod sqlite;
pub mod store;

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::Duration;

use shoal_proto::catalog::{PublishReply, SearchQuery, SearchResults, MAX_PER_PAGE};
use shoal_proto::metainfo::{Metainfo, MetainfoError};
use shoal_proto::tracker::ScrapeStats;
use shoal_proto::{InfoHash, PeerId};
use thiserror::Error;

use crate::config::TrackerConfig;
use store::{CatalogEntry, CatalogFile, CatalogStore, StoreError};

/// Most stored torrents one search ranks; a query matching more is answered from the
/// best-looking ones (exact and prefix name matches, then newest).
pub const MAX_CANDIDATES: usize = 10_000;

/// How often a tracker on a shared store re-reads the published info-hashes.
pub const SHARED_REFRESH: Duration = Duration::from_secs(5);

/// Why a publish failed.
#[derive(Debug, Error)]
pub enum PublishError {
    /// The body is not a valid `.torrent`; the client is told why (400).
    #[error("not a valid .torrent: {0}")]
    Invalid(#[from] MetainfoError),
    /// Storage failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Published torrents and how to search them.
pub struct Catalog {
    store: Box<dyn CatalogStore>,
    published: RwLock<HashSet<InfoHash>>,
    list_private: bool,
}

impl Catalog {
    /// Opens the catalog the config asks for: PostgreSQL at `catalog_db`, else SQLite
    /// in `data_dir`, else in memory. Blocks (file or network IO).
    pub fn open(config: &TrackerConfig) -> Result<Catalog, StoreError> {
        let store: Box<dyn CatalogStore> = match (&config.catalog_db, &config.data_dir) {
            (Some(url), _) => Box::new(postgres::PgStore::connect(url)?),
            (None, Some(dir)) => Box::new(sqlite::SqliteStore::open_dir(dir)?),
            (None, None) => Box::new(sqlite::SqliteStore::in_memory()?),
        };
        Catalog::with_store(store, config.list_private)
    }

    /// A catalog over any store.
    pub fn with_store(
        store: Box<dyn CatalogStore>,
        list_private: bool,
    ) -> Result<Catalog, StoreError> {
        let published = store.hashes()?.into_iter().collect();
        Ok(Catalog {
            store,
            published: RwLock::new(published),
            list_private,
        })
    }

    /// Whether `hash` has been published (in memory, cheap).
    pub fn is_published(&self, hash: &InfoHash) -> bool {
        self.published
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(hash)
    }

    /// Whether other trackers share the store (see [`Catalog::refresh`]).
    pub fn is_shared(&self) -> bool {
        self.store.is_shared()
    }

    /// Adds what other trackers published to the in-memory set; returns the number of
    /// published torrents. Nothing is ever unpublished, so this only adds.
    pub fn refresh(&self) -> Result<usize, StoreError> {
        let hashes = self.store.hashes()?;
        let mut published = self.published.write().unwrap_or_else(|p| p.into_inner());
        published.extend(hashes);
        Ok(published.len())
    }

    /// Number of published torrents.
    pub fn len(&self) -> usize {
        self.published
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// True when nothing has been published.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Validates and stores a `.torrent`; publishing the same torrent again changes
    /// nothing and reports `created: false`.
    pub fn publish(
        &self,
        torrent: &[u8],
        publisher: Option<PeerId>,
        now_unix: i64,
    ) -> Result<PublishReply, PublishError> {
        let meta = Metainfo::from_bytes(torrent)?;
        let info = &meta.info;
        let entry = CatalogEntry {
            info_hash: meta.info_hash,
            name: info.name.clone(),
            total_size: info.total_length,
            piece_length: info.piece_length,
            files: info
                .files
                .iter()
                .map(|f| CatalogFile {
                    path: f.path.join("/"),
                    length: f.length,
                })
                .collect(),
            private: info.private,
            published: now_unix,
            publisher,
            torrent: torrent.to_vec(),
        };
        let created = self.store.insert(&entry)?;
        self.published
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(meta.info_hash);
        Ok(PublishReply {
            id: meta.info_hash.to_hex(),
            name: entry.name,
            created,
        })
    }

    /// The `.torrent` of a published torrent.
    pub fn torrent(&self, hash: &InfoHash) -> Result<Option<Vec<u8>>, StoreError> {
        let known = self.is_published(hash);
        if !known && !self.is_shared() {
            return Ok(None);
        }
        let torrent = self.store.torrent(hash)?;
        if !known && torrent.is_some() {
            // Published by another tracker since the last refresh.
            self.published
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(*hash);
        }
        Ok(torrent)
    }

    /// One page of ranked results; `page` counts from 1, `per_page` is clamped to
    /// 1..=[`MAX_PER_PAGE`].
    pub fn search(
        &self,
        query: &SearchQuery,
        page: u32,
        per_page: u32,
        stats: impl Fn(&InfoHash) -> ScrapeStats,
    ) -> Result<SearchResults, StoreError> {
        let page = page.max(1);
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        let candidates = self
            .store
            .candidates(query, self.list_private, MAX_CANDIDATES)?;
        let hits = search::rank(query, candidates, stats);
        let skip = usize::try_from(u64::from(page - 1) * u64::from(per_page)).unwrap_or(usize::MAX);
        Ok(SearchResults {
            total: hits.len() as u64,
            page,
            per_page,
            hits: hits
                .into_iter()
                .skip(skip)
                .take(per_page as usize)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::metainfo::InfoBuilder;

    pub(crate) fn torrent(name: &str, files: &[(&str, u64)], private: bool) -> Vec<u8> {
        let info = InfoBuilder {
            name: name.into(),
            piece_length: 16384,
            files: files
                .iter()
                .map(|(p, l)| (p.split('/').map(String::from).collect(), *l))
                .collect(),
            single_file: false,
            private,
        };
        let total: u64 = files.iter().map(|f| f.1).sum();
        let pieces = vec![[0u8; 20]; total.div_ceil(16384).max(1) as usize];
        let info_bytes = info.encode(&pieces);
        let mut out = b"d4:info".to_vec();
        out.extend_from_slice(&info_bytes);
        out.push(b'e');
        out
    }

    #[test]
    fn publish_search_private_and_paging() {
        store::tests::for_each_store(|open| {
            let c = Catalog::with_store(open(), false).unwrap();
            let t = torrent("Ubuntu 24.04", &[("disk/ubuntu.iso", 1000)], false);
            let r = c.publish(&t, Some(PeerId([1; 20])), 5).unwrap();
            assert!(r.created);
            assert!(!c.publish(&t, None, 6).unwrap().created);
            let hash = InfoHash::from_hex(&r.id).unwrap();
            assert!(c.is_published(&hash));
            assert_eq!(c.torrent(&hash).unwrap().as_deref(), Some(&t[..]));
            c.publish(&torrent("Hidden ubuntu", &[("a", 1)], true), None, 7)
                .unwrap();
            for i in 0..5 {
                c.publish(
                    &torrent(&format!("ubuntu extra {i}"), &[("b", 1)], false),
                    None,
                    8,
                )
                .unwrap();
            }
            assert_eq!(c.len(), 7);
            let none = |_: &InfoHash| ScrapeStats::default();
            let res = c.search(&SearchQuery::parse("ubuntu"), 1, 4, none).unwrap();
            assert_eq!(res.total, 6, "private one not listed");
            assert_eq!(res.hits.len(), 4);
            assert_eq!(res.hits[0].name, "ubuntu extra 0"); // newer first, then by name
            let last = c.search(&SearchQuery::parse("ubuntu"), 2, 4, none).unwrap();
            assert_eq!(last.hits.len(), 2);
            assert_eq!(last.hits[1].name, "Ubuntu 24.04");
            let res = c.search(&SearchQuery::parse("iso"), 1, 0, none).unwrap();
            assert_eq!(
                (res.per_page, res.hits[0].file_count, res.hits[0].size),
                (1, 1, 1000)
            );
            assert!(matches!(
                c.publish(b"garbage", None, 1),
                Err(PublishError::Invalid(_))
            ));
        });
    }
}
