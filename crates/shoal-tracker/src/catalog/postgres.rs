//! The catalog in PostgreSQL (`--catalog-db postgres://...`), for a catalog shared by
//! several tracker instances.
//!
//! Schema (version 1, in `shoal_catalog_meta`), created on first use under an advisory
//! lock so that trackers starting together do not race on `CREATE TABLE`:
//! - `shoal_catalog_torrents(info_hash TEXT PK /* 40 lowercase hex */, name, name_lc,
//!   search_text, total_size, piece_length, file_count, private BOOLEAN, published,
//!   publisher BYTEA NULL, torrent BYTEA)`
//! - `shoal_catalog_files(info_hash, idx, path, length)`, primary key `(info_hash, idx)`.
//!
//! Tables are prefixed because a shared database may hold other things. The columns and
//! the candidate query mirror [`super::sqlite`] (`strpos` for `instr`), so both stores
//! return the same candidates and [`super::search::rank`] orders them the same way.
//!
//! Publishing is `INSERT ... ON CONFLICT DO NOTHING` in one transaction with the file
//! rows: when two trackers publish the same torrent at once, the second waits on the
//! primary key, then inserts nothing and reports "not new"; neither fails.
//!
//! The client is the synchronous `postgres` crate: the store is called from
//! `spawn_blocking` like the SQLite one. One connection behind a mutex; a broken
//! connection is dropped and the next call reconnects. PostgreSQL text cannot hold NUL,
//! so NUL characters in names and queries are stored and matched as U+FFFD. No TLS:
//! reach remote servers over a private network or a tunnel.

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ::postgres::{Client, Config, NoTls, Row};
use shoal_proto::catalog::SearchQuery;
use shoal_proto::InfoHash;

use super::store::{Candidate, CatalogEntry, CatalogStore, StoreError};

/// Longest wait for a connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest any statement may run before the server cancels it.
const STATEMENT_TIMEOUT_MS: u32 = 30_000;
/// `pg_advisory_xact_lock` key held while creating the schema ("shoalcat").
const SCHEMA_LOCK: i64 = 0x7368_6f61_6c63_6174;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS shoal_catalog_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS shoal_catalog_torrents (
    info_hash    TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    name_lc      TEXT NOT NULL,
    search_text  TEXT NOT NULL,
    total_size   BIGINT NOT NULL,
    piece_length BIGINT NOT NULL,
    file_count   BIGINT NOT NULL,
    private      BOOLEAN NOT NULL,
    published    BIGINT NOT NULL,
    publisher    BYTEA,
    torrent      BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS shoal_catalog_files (
    info_hash TEXT NOT NULL REFERENCES shoal_catalog_torrents (info_hash) ON DELETE CASCADE,
    idx       INTEGER NOT NULL,
    path      TEXT NOT NULL,
    length    BIGINT NOT NULL,
    PRIMARY KEY (info_hash, idx)
);
INSERT INTO shoal_catalog_meta (key, value) VALUES ('schema_version', '1')
    ON CONFLICT (key) DO NOTHING;
";

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// `url` with any password replaced by `***`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

/// A catalog in a PostgreSQL database.
pub struct PgStore {
    config: Config,
    /// Shown in messages: the URL without its password.
    target: String,
    /// `None` after the connection broke, until the next call reconnects.
    client: Mutex<Option<Client>>,
}

impl PgStore {
    /// Connects to `url` and creates the schema if it is missing. Blocks (network);
    /// must not be called from an async context.
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        let target = redact_url(url);
        if !is_postgres_url(url) {
            return Err(StoreError::BadUrl(target));
        }
        let mut config: Config = url.parse().map_err(|source| StoreError::Connect {
            target: target.clone(),
            source,
        })?;
        config.connect_timeout(CONNECT_TIMEOUT);
        let client = Self::open(&config, &target)?;
        Ok(PgStore {
            config,
            target,
            client: Mutex::new(Some(client)),
        })
    }

    fn open(config: &Config, target: &str) -> Result<Client, StoreError> {
        let mut client = config
            .connect(NoTls)
            .map_err(|source| StoreError::Connect {
                target: target.to_string(),
                source,
            })?;
        client.batch_execute(&format!("SET statement_timeout = {STATEMENT_TIMEOUT_MS}"))?;
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
        tx.batch_execute(SCHEMA)?;
        tx.commit()?;
        Ok(client)
    }

    /// Runs `f` on the connection, reconnecting if the last one broke. When the
    /// connection turns out to be broken during `f` (server restarted, idle connection
    /// cut), `f` runs once more on a new one; every caller's `f` is safe to repeat.
    pub(crate) fn with_client<T>(
        &self,
        mut f: impl FnMut(&mut Client) -> Result<T, ::postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock();
        let mut retried = false;
        loop {
            if !matches!(&*guard, Some(c) if !c.is_closed()) {
                *guard = None;
            }
            let client = match &mut *guard {
                Some(c) => c,
                slot @ None => slot.insert(Self::open(&self.config, &self.target)?),
            };
            match f(client) {
                Err(e) if client.is_closed() && !retried => {
                    tracing::warn!(error = %e, db = %self.target, "catalog connection lost; reconnecting");
                    retried = true;
                }
                result => return Ok(result?),
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Client>> {
        // A panic mid-call leaves at worst an aborted transaction, rolled back when
        // the `Transaction` was dropped.
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // `postgres::Client` blocks on its own runtime when dropped, which panics
        // inside an async context (the tracker drops its catalog from a task).
        if let Some(client) = self.lock().take() {
            let _ = std::thread::Builder::new()
                .name("catalog-pg-close".into())
                .spawn(move || drop(client));
        }
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `s` as PostgreSQL text can hold it (no NUL).
fn pg_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn parse_hash(hex: &str) -> Result<InfoHash, StoreError> {
    InfoHash::from_hex(hex).ok_or_else(|| StoreError::Corrupt(format!("info_hash {hex:?}")))
}

fn candidate(row: &Row) -> Result<Candidate, StoreError> {
    let hex: String = row.try_get(0)?;
    Ok(Candidate {
        info_hash: parse_hash(&hex)?,
        name: row.try_get(1)?,
        search_text: row.try_get(2)?,
        size: u64::try_from(row.try_get::<_, i64>(3)?).unwrap_or(0),
        file_count: u64::try_from(row.try_get::<_, i64>(4)?).unwrap_or(0),
        published: row.try_get(5)?,
    })
}

impl CatalogStore for PgStore {
    fn insert(&self, e: &CatalogEntry) -> Result<bool, StoreError> {
        let hex = e.info_hash.to_hex();
        let name = pg_text(&e.name);
        let name_lc = pg_text(&e.name.to_lowercase()).into_owned();
        let search_text = pg_text(&e.search_text()).into_owned();
        let publisher = e.publisher.map(|p| p.0.to_vec());
        let idx: Vec<i32> = (0..e.files.len())
            .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
            .collect();
        let paths: Vec<String> = e.files.iter().map(|f| pg_text(&f.path).into()).collect();
        let lengths: Vec<i64> = e.files.iter().map(|f| to_i64(f.length)).collect();
        self.with_client(|c| {
            let mut tx = c.transaction()?;
            let added = tx.execute(
                "INSERT INTO shoal_catalog_torrents (info_hash, name, name_lc, search_text,
                    total_size, piece_length, file_count, private, published, publisher, torrent)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (info_hash) DO NOTHING",
                &[
                    &hex,
                    &name.as_ref(),
                    &name_lc,
                    &search_text,
                    &to_i64(e.total_size),
                    &to_i64(e.piece_length),
                    &to_i64(e.files.len() as u64),
                    &e.private,
                    &e.published,
                    &publisher,
                    &e.torrent,
                ],
            )?;
            if added == 1 && !e.files.is_empty() {
                // One round trip for any number of files.
                tx.execute(
                    "INSERT INTO shoal_catalog_files (info_hash, idx, path, length)
                     SELECT $1, f.idx, f.path, f.length
                     FROM unnest($2::INTEGER[], $3::TEXT[], $4::BIGINT[]) AS f (idx, path, length)
                     ON CONFLICT DO NOTHING",
                    &[&hex, &idx, &paths, &lengths],
                )?;
            }
            tx.commit()?;
            Ok(added == 1)
        })
    }

    fn torrent(&self, hash: &InfoHash) -> Result<Option<Vec<u8>>, StoreError> {
        let hex = hash.to_hex();
        let row = self.with_client(|c| {
            c.query_opt(
                "SELECT torrent FROM shoal_catalog_torrents WHERE info_hash = $1",
                &[&hex],
            )
        })?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    fn hashes(&self) -> Result<Vec<InfoHash>, StoreError> {
        let rows =
            self.with_client(|c| c.query("SELECT info_hash FROM shoal_catalog_torrents", &[]))?;
        rows.iter()
            .map(|r| parse_hash(&r.try_get::<_, String>(0)?))
            .collect()
    }

    fn candidates(
        &self,
        query: &SearchQuery,
        include_private: bool,
        limit: usize,
    ) -> Result<Vec<Candidate>, StoreError> {
        // $1 phrase, $2 include_private, $3 limit, $4 id prefix, $5.. words.
        let mut words_match = (0..query.words.len())
            .map(|i| format!("strpos(search_text, ${}::TEXT) > 0", i + 5))
            .collect::<Vec<_>>()
            .join(" AND ");
        if words_match.is_empty() {
            words_match.push_str("TRUE");
        }
        let sql = format!(
            "SELECT info_hash, name, search_text, total_size, file_count, published
             FROM shoal_catalog_torrents
             WHERE (NOT private OR $2::BOOLEAN)
               AND (({words_match})
                    OR ($4::TEXT <> '' AND left(info_hash, length($4::TEXT)) = $4::TEXT))
             ORDER BY name_lc = $1::TEXT DESC, left(name_lc, length($1::TEXT)) = $1::TEXT DESC,
                      published DESC
             LIMIT $3::BIGINT"
        );
        let phrase = pg_text(&query.phrase).into_owned();
        let limit = to_i64(limit as u64);
        let prefix = query.id_prefix.clone().unwrap_or_default();
        let words: Vec<String> = query.words.iter().map(|w| pg_text(w).into()).collect();
        let mut params: Vec<&(dyn ::postgres::types::ToSql + Sync)> =
            vec![&phrase, &include_private, &limit, &prefix];
        params.extend(
            words
                .iter()
                .map(|w| w as &(dyn ::postgres::types::ToSql + Sync)),
        );
        let rows = self.with_client(|c| c.query(&sql, &params))?;
        rows.iter().map(candidate).collect()
    }

    fn is_shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::store::test_postgres;
    use crate::catalog::store::tests::entry;
    use crate::catalog::Catalog;

    #[test]
    fn two_trackers_publishing_the_same_torrents_at_once_never_fail() {
        let Some(url) = test_postgres::fresh_database() else {
            return;
        };
        // Several stores connecting at once also race on creating the schema.
        let stores: Vec<PgStore> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| PgStore::connect(&url).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let created: Vec<Vec<bool>> = std::thread::scope(|s| {
            let handles: Vec<_> = stores
                .iter()
                .map(|store| {
                    s.spawn(move || {
                        (1..=30)
                            .map(|n| {
                                let files = ["a/one.bin", "a/two.bin", "b/three.bin"];
                                store.insert(&entry(n, &format!("t{n}"), &files, false))
                            })
                            .collect::<Result<Vec<bool>, _>>()
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for n in 0..30 {
            let winners = created.iter().filter(|c| c[n]).count();
            assert_eq!(winners, 1, "torrent {n} created exactly once");
        }
        assert_eq!(stores[0].hashes().unwrap().len(), 30);
        let files: i64 = stores[0]
            .with_client(|c| c.query_one("SELECT count(*) FROM shoal_catalog_files", &[]))
            .unwrap()
            .get(0);
        assert_eq!(files, 90);
    }

    #[test]
    fn a_tracker_sees_what_another_published() {
        let Some(url) = test_postgres::fresh_database() else {
            return;
        };
        let open = || Catalog::with_store(Box::new(PgStore::connect(&url).unwrap()), false);
        let (a, b) = (open().unwrap(), open().unwrap());
        assert!(a.is_shared());
        let t = crate::catalog::tests::torrent("Shared Thing", &[("x.bin", 5)], false);
        let id = a.publish(&t, None, 1).unwrap().id;
        let hash = InfoHash::from_hex(&id).unwrap();
        assert!(!b.is_published(&hash), "not refreshed yet");
        let none = |_: &InfoHash| Default::default();
        let found = b.search(&SearchQuery::parse("thing"), 1, 10, none).unwrap();
        assert_eq!(found.hits[0].id, id);
        assert_eq!(b.torrent(&hash).unwrap().as_deref(), Some(&t[..]));
        assert!(b.is_published(&hash), "learned from the fetch");
        let c = open().unwrap();
        assert!(c.is_published(&hash), "loaded at open");
        a.publish(
            &crate::catalog::tests::torrent("Later", &[("y", 1)], false),
            None,
            2,
        )
        .unwrap();
        assert_eq!(c.refresh().unwrap(), 2);
        assert!(!b.publish(&t, None, 3).unwrap().created);
    }

    #[test]
    fn a_lost_connection_is_replaced() {
        let Some(url) = test_postgres::fresh_database() else {
            return;
        };
        let store = PgStore::connect(&url).unwrap();
        store.insert(&entry(1, "kept", &[], false)).unwrap();
        let killer = PgStore::connect(&url).unwrap();
        let pid: i32 = store
            .with_client(|c| c.query_one("SELECT pg_backend_pid()", &[]))
            .unwrap()
            .get(0);
        killer
            .with_client(|c| c.execute("SELECT pg_terminate_backend($1)", &[&pid]))
            .unwrap();
        assert_eq!(store.hashes().unwrap(), [InfoHash([1; 20])]);
    }

    #[test]
    fn an_unreachable_server_is_a_clear_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = PgStore::connect(&format!("postgres://u:pw@127.0.0.1:{port}/db"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("postgres://u:***@127.0.0.1"), "{err}");
        assert!(!err.contains("pw"), "{err}");
        assert!(err.contains("--catalog-db"), "{err}");
    }

    #[test]
    fn urls_are_recognised_and_redacted() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("PostgreSQL://h/db"));
        assert!(!is_postgres_url("sqlite:///x"));
        assert!(!is_postgres_url("/var/lib/shoal"));
        assert_eq!(
            redact_url("postgres://shoal:s3cr:et@db.lan:5432/cat?sslmode=disable"),
            "postgres://shoal:***@db.lan:5432/cat?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://shoal@db/cat"),
            "postgres://shoal@db/cat"
        );
        assert_eq!(
            redact_url("postgres://db:5432/cat"),
            "postgres://db:5432/cat"
        );
        assert!(matches!(
            PgStore::connect("mysql://u:pw@h/db"),
            Err(StoreError::BadUrl(u)) if u == "mysql://u:***@h/db"
        ));
    }

    #[test]
    fn nul_characters_become_replacement_characters() {
        assert_eq!(pg_text("a\0b"), "a\u{fffd}b");
        assert!(matches!(pg_text("plain"), Cow::Borrowed("plain")));
    }
}
