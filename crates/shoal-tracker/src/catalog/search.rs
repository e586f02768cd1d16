//! Search ranking: a pure function from a query, candidate torrents and live swarm
//! counts to ordered hits.
//!
//! A candidate matches when every query word occurs in its lowercased name or file
//! paths (substring match), or when the query is an info-hash prefix of it. Order:
//! 1. info-hash prefix matches (an id is the most specific thing a user can type),
//! 2. exact name (case-insensitive, whitespace collapsed),
//! 3. name starting with the query,
//! 4. every word somewhere in the name or file paths;
//!
//! then more seeders first, then newer first, then by name, then by id (a total
//! order, so pages are stable). An empty query matches every candidate (browsing the
//! catalog), so it is ordered by seeders, then newest.

use shoal_proto::catalog::{SearchHit, SearchQuery};
use shoal_proto::tracker::ScrapeStats;
use shoal_proto::InfoHash;

use super::store::Candidate;

/// How well a candidate matches; lower is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// The query is a prefix of the info-hash.
    IdPrefix,
    /// The name equals the query.
    ExactName,
    /// The name starts with the query.
    NamePrefix,
    /// Every word occurs in the name or a file path.
    Words,
}

/// The tier of `c` for `q`, or `None` when it does not match. Everything matches an
/// empty query, in one tier.
pub fn tier(q: &SearchQuery, c: &Candidate) -> Option<Tier> {
    if q.is_empty() {
        return Some(Tier::Words);
    }
    if let Some(p) = &q.id_prefix {
        if c.info_hash.to_hex().starts_with(p.as_str()) {
            return Some(Tier::IdPrefix);
        }
    }
    if !q.words.iter().all(|w| c.search_text.contains(w.as_str())) {
        return None;
    }
    let name = c
        .name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    Some(if name == q.phrase {
        Tier::ExactName
    } else if name.starts_with(&q.phrase) {
        Tier::NamePrefix
    } else {
        Tier::Words
    })
}

/// Filters and orders `candidates`; `stats` gives live counts per torrent.
pub fn rank(
    q: &SearchQuery,
    candidates: Vec<Candidate>,
    stats: impl Fn(&InfoHash) -> ScrapeStats,
) -> Vec<SearchHit> {
    let mut scored: Vec<(Tier, ScrapeStats, Candidate)> = candidates
        .into_iter()
        .filter_map(|c| Some((tier(q, &c)?, stats(&c.info_hash), c)))
        .collect();
    scored.sort_by(|(ta, sa, a), (tb, sb, b)| {
        ta.cmp(tb)
            .then(sb.complete.cmp(&sa.complete))
            .then(b.published.cmp(&a.published))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.info_hash.cmp(&b.info_hash))
    });
    scored
        .into_iter()
        .map(|(_, s, c)| SearchHit {
            id: c.info_hash.to_hex(),
            name: c.name,
            size: c.size,
            file_count: c.file_count,
            seeders: s.complete,
            leechers: s.incomplete,
            completed: s.downloaded,
            published: c.published,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(n: u8, name: &str, files: &[&str]) -> Candidate {
        let mut text = name.to_lowercase();
        for f in files {
            text.push('\n');
            text.push_str(&f.to_lowercase());
        }
        Candidate {
            info_hash: InfoHash([n; 20]),
            name: name.into(),
            search_text: text,
            size: 1,
            file_count: files.len() as u64,
            published: 0,
        }
    }

    fn names(q: &str, cands: Vec<Candidate>, seeders: &[(u8, u32)]) -> Vec<String> {
        let q = SearchQuery::parse(q);
        rank(&q, cands, |h| ScrapeStats {
            complete: seeders
                .iter()
                .find(|(n, _)| h.0[0] == *n)
                .map_or(0, |(_, s)| *s),
            ..ScrapeStats::default()
        })
        .into_iter()
        .map(|h| h.name)
        .collect()
    }

    #[test]
    fn exact_beats_prefix_beats_substring_whatever_the_seeders() {
        let cands = vec![
            cand(1, "The Linux Book", &[]),
            cand(2, "Linux Tools", &[]),
            cand(3, "linux", &[]),
        ];
        let seeders = [(1, 50), (2, 10), (3, 0)];
        assert_eq!(
            names("LINUX", cands, &seeders),
            ["linux", "Linux Tools", "The Linux Book"]
        );
    }

    #[test]
    fn seeders_then_newer_break_ties() {
        let mut old = cand(1, "ubuntu a", &[]);
        old.published = 10;
        let mut new = cand(2, "ubuntu b", &[]);
        new.published = 20;
        let popular = cand(3, "ubuntu c", &[]);
        assert_eq!(
            names("ubuntu", vec![old, new, popular], &[(3, 5)]),
            ["ubuntu c", "ubuntu b", "ubuntu a"]
        );
    }

    #[test]
    fn every_word_must_match_name_or_files() {
        let cands = vec![
            cand(1, "Holiday", &["Photos/beach.JPG", "notes.txt"]),
            cand(2, "Beach party", &["a.mp3"]),
            cand(3, "Work", &["report.pdf"]),
        ];
        assert_eq!(names("beach jpg", cands.clone(), &[]), ["Holiday"]);
        assert_eq!(
            names("beach", cands.clone(), &[]),
            ["Beach party", "Holiday"]
        );
        assert_eq!(names("each", cands.clone(), &[]).len(), 2);
        assert!(names("beach pdf", cands, &[]).is_empty());
    }

    #[test]
    fn id_prefixes_match_first() {
        let cands = vec![cand(0xab, "x", &[]), cand(0xcd, "abab in name", &[])];
        assert_eq!(names("ABAB", cands.clone(), &[]), ["x", "abab in name"]);
        assert_eq!(names("abababab", cands.clone(), &[]), ["x"]);
        assert_eq!(names("cdcd", cands.clone(), &[]), ["abab in name"]);
        assert!(names("abc", cands, &[]).is_empty());
    }

    #[test]
    fn no_match() {
        let cands = vec![cand(1, "Something", &["file.bin"])];
        assert!(names("nothing", cands, &[]).is_empty());
    }

    #[test]
    fn empty_query_lists_all_by_seeders_then_newest() {
        let mut old = cand(1, "old", &[]);
        old.published = 10;
        let mut new = cand(2, "new", &[]);
        new.published = 20;
        let mut popular = cand(3, "popular", &[]);
        popular.published = 5;
        let all = vec![old, new, popular];
        assert_eq!(names("", all.clone(), &[(3, 2)]), ["popular", "new", "old"]);
        assert_eq!(names("   ", all, &[]), ["new", "old", "popular"]);
    }

    #[test]
    fn hits_carry_live_counts() {
        let q = SearchQuery::parse("x");
        let hits = rank(&q, vec![cand(1, "x", &["a", "b"])], |_| ScrapeStats {
            complete: 1,
            downloaded: 2,
            incomplete: 3,
        });
        let h = &hits[0];
        assert_eq!(h.id, "01".repeat(20));
        assert_eq!(
            (h.seeders, h.completed, h.leechers, h.file_count),
            (1, 2, 3, 2)
        );
    }
}
