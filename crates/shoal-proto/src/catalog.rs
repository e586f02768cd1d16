//! The tracker catalog's JSON messages and search-query parsing, shared by the tracker
//! (which serves them) and the client (which reads them).
//!
//! Endpoints, relative to the tracker's base URL (its announce URL minus `/announce`):
//! - `POST /publish[?peer_id=..]` with the raw `.torrent` as body -> [`PublishReply`].
//! - `GET /torrent/<40 hex>` -> the `.torrent` bytes (`application/x-bittorrent`).
//! - `GET /search?q=..&page=N&per_page=M` -> [`SearchResults`].
//! - Any failure -> a non-2xx status with [`ErrorReply`].
//!
//! [`SearchQuery::parse`] turns the `q` text into lowercase words and, when the text is
//! a single run of 4 to 40 hex digits, an info-hash prefix. It caps the words it keeps
//! ([`MAX_QUERY_WORDS`], [`MAX_QUERY_CHARS`]) so a hostile query costs little.
//!
//! ```
//! use shoal_proto::catalog::SearchQuery;
//! let q = SearchQuery::parse("  Ubuntu  ISO ");
//! assert_eq!(q.words, ["ubuntu", "iso"]);
//! assert_eq!(q.id_prefix, None);
//! assert_eq!(SearchQuery::parse("ABCD12").id_prefix.as_deref(), Some("abcd12"));
//! ```

use serde::{Deserialize, Serialize};

/// Most words of a query that are matched; the rest are ignored.
pub const MAX_QUERY_WORDS: usize = 8;
/// Most characters of a query that are read.
pub const MAX_QUERY_CHARS: usize = 256;
/// Fewest hex digits that make an info-hash prefix search.
pub const MIN_ID_PREFIX: usize = 4;
/// Most results one search page returns.
pub const MAX_PER_PAGE: u32 = 100;
/// Results per page when the request does not say.
pub const DEFAULT_PER_PAGE: u32 = 20;

/// One torrent in search results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The torrent's name (`info.name`).
    pub name: String,
    /// Info-hash, 40 lowercase hex digits.
    pub id: String,
    /// Total bytes of all files.
    pub size: u64,
    /// Number of files.
    pub file_count: u64,
    /// Peers with the whole torrent, from live announces.
    pub seeders: u32,
    /// Peers still downloading.
    pub leechers: u32,
    /// Completed downloads counted since the tracker started.
    pub completed: u32,
    /// When it was published to this tracker, Unix seconds.
    pub published: i64,
}

/// A page of search results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Matches over all pages (capped by the tracker's candidate limit).
    pub total: u64,
    /// This page, from 1.
    pub page: u32,
    /// Page size used.
    pub per_page: u32,
    /// Best match first.
    pub hits: Vec<SearchHit>,
}

/// The reply to a publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishReply {
    /// Info-hash, 40 lowercase hex digits.
    pub id: String,
    /// The torrent's name.
    pub name: String,
    /// False when the torrent was already in the catalog (publishing is idempotent).
    pub created: bool,
}

/// The body of every catalog error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What was wrong and what to do.
    pub error: String,
}

/// A parsed search query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Lowercase words, each of which must match the name or a file path.
    pub words: Vec<String>,
    /// The whole query lowercased with single spaces, for exact and prefix ranking.
    pub phrase: String,
    /// Lowercase hex when the query is one token of 4 to 40 hex digits.
    pub id_prefix: Option<String>,
}

impl SearchQuery {
    /// Splits on whitespace, lowercases, and caps length and word count.
    pub fn parse(q: &str) -> SearchQuery {
        let q: String = q.chars().take(MAX_QUERY_CHARS).collect();
        let words: Vec<String> = q
            .split_whitespace()
            .take(MAX_QUERY_WORDS)
            .map(str::to_lowercase)
            .collect();
        let id_prefix = match words.as_slice() {
            [w] if (MIN_ID_PREFIX..=40).contains(&w.len())
                && w.bytes().all(|c| c.is_ascii_hexdigit()) =>
            {
                Some(w.clone())
            }
            _ => None,
        };
        SearchQuery {
            phrase: words.join(" "),
            words,
            id_prefix,
        }
    }

    /// True when there is nothing to search for.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// The catalog base URL for an announce URL: `http://host:port/announce` ->
/// `http://host:port`. `None` when the path does not end in `/announce`.
pub fn base_url(announce_url: &str) -> Option<&str> {
    let no_query = announce_url.split('?').next().unwrap_or(announce_url);
    no_query.strip_suffix("/announce")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke;
    use proptest::prelude::*;

    #[test]
    fn parses_words_and_id_prefixes() {
        let q = SearchQuery::parse("Big  Buck\tBUNNY");
        assert_eq!(q.words, ["big", "buck", "bunny"]);
        assert_eq!(q.phrase, "big buck bunny");
        assert_eq!(q.id_prefix, None);
        assert_eq!(SearchQuery::parse("abc").id_prefix, None);
        assert_eq!(
            SearchQuery::parse("dead").id_prefix.as_deref(),
            Some("dead")
        );
        assert_eq!(SearchQuery::parse("dead beef").id_prefix, None);
        assert_eq!(SearchQuery::parse(&"a".repeat(41)).id_prefix, None);
        assert!(SearchQuery::parse("   ").is_empty());
    }

    #[test]
    fn caps_hostile_queries() {
        let q = SearchQuery::parse(&"w ".repeat(10_000));
        assert_eq!(q.words.len(), MAX_QUERY_WORDS);
        let q = SearchQuery::parse(&"é".repeat(10_000));
        assert_eq!(q.phrase.chars().count(), MAX_QUERY_CHARS);
    }

    #[test]
    fn base_url_from_announce() {
        assert_eq!(
            base_url("http://127.0.0.1:6969/announce"),
            Some("http://127.0.0.1:6969")
        );
        assert_eq!(base_url("http://h/x/announce?k=1"), Some("http://h/x"));
        assert_eq!(base_url("http://h/scrape"), None);
    }

    #[test]
    fn json_shape() {
        let hit = SearchHit {
            name: "n".into(),
            id: "00".repeat(20),
            size: 1,
            file_count: 1,
            seeders: 2,
            leechers: 3,
            completed: 4,
            published: 5,
        };
        let json = serde_json::to_string(&hit).unwrap();
        assert!(json.contains("\"file_count\":1"));
        assert_eq!(serde_json::from_str::<SearchHit>(&json).unwrap(), hit);
    }

    #[test]
    fn every_prefix_is_safe() {
        let q = "  Big Buck\tBUNNY İstanbul ǅ 0123abcdEF ";
        for (i, _) in q.char_indices() {
            let _ = SearchQuery::parse(&q[..i]);
        }
    }

    proptest! {
        #[test]
        fn random_queries_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600), s in ".{0,300}") {
            for q in [String::from_utf8_lossy(&b).into_owned(), s] {
                let p = SearchQuery::parse(&q);
                prop_assert!(p.words.len() <= MAX_QUERY_WORDS);
                prop_assert_eq!(p.is_empty(), p.phrase.is_empty());
            }
        }

        #[test]
        fn mutated_queries_never_panic(edits in smoke::edits()) {
            let q = smoke::mutate(b"Big Buck Bunny 1080p deadbeef", &edits);
            let _ = SearchQuery::parse(&String::from_utf8_lossy(&q));
        }
    }
}
