//! What the node commands read from the API (only the fields they show; the rest is ignored,
//! and `--json` prints the node's JSON untouched) and how they show it to people.

use serde::Deserialize;

use crate::cli::{human_bytes, human_duration};

/// Characters of the info-hash shown in tables (enough to be unique in practice; any unique
/// prefix works as an ID).
pub const SHORT_ID: usize = 8;

/// Longest name shown in a table before it is cut with `…`.
const NAME_WIDTH: usize = 40;

/// A torrent summary (`GET /api/torrents`).
#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default)]
pub struct Summary {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub state: String,
    pub progress: f64,
    pub down_rate: u64,
    pub up_rate: u64,
    pub peers: u64,
    pub seeds: u64,
    pub eta_secs: Option<u64>,
    pub error: Option<String>,
}

/// Node statistics (`GET /api/stats`).
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(default)]
pub struct Stats {
    pub down_rate: u64,
    pub up_rate: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    pub files_shared: u64,
    pub downloads_completed: u64,
    pub downloads_failed: u64,
    pub torrents: u64,
    pub peers: u64,
}

/// A share job (`GET /api/jobs/:id`).
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(default)]
pub struct Job {
    pub id: String,
    pub done_bytes: u64,
    pub total_bytes: u64,
    pub state: String,
    pub torrent_id: Option<String>,
    pub error: Option<String>,
}

/// One catalog search result (`GET /api/search`).
#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default)]
pub struct SearchHit {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub file_count: u64,
    pub seeders: u64,
    pub leechers: u64,
    pub completed: u64,
    pub published: u64,
}

/// A page of search results.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(default)]
pub struct SearchPage {
    pub results: Vec<SearchHit>,
    pub page: u64,
}

/// The first [`SHORT_ID`] characters of an ID.
pub fn short_id(id: &str) -> &str {
    id.get(..SHORT_ID).unwrap_or(id)
}

/// `name` cut to `width` characters, the last one `…` when cut.
fn clip(name: &str, width: usize) -> String {
    if name.chars().count() <= width {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// `47.3%`, rounded down so that only complete torrents show 100%.
pub fn percent(progress: f64) -> String {
    let p = if progress.is_finite() {
        progress.clamp(0.0, 1.0)
    } else {
        0.0
    };
    format!("{:.1}%", (p * 1000.0).floor() / 10.0)
}

fn rate(bytes_per_sec: u64) -> String {
    format!("{}/s", human_bytes(bytes_per_sec))
}

/// Left-aligned columns except those in `right`, two spaces apart, widths in characters.
fn table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            if right.contains(&i) {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&pad);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The `shoal ls` table, then one line per torrent in error saying why.
pub fn torrent_table(torrents: &[Summary]) -> String {
    if torrents.is_empty() {
        return "no torrents (add one with `shoal add FILE` or `shoal share PATH`)\n".into();
    }
    let rows: Vec<Vec<String>> = torrents
        .iter()
        .map(|t| {
            vec![
                short_id(&t.id).to_string(),
                clip(&t.name, NAME_WIDTH),
                human_bytes(t.size),
                percent(t.progress),
                t.state.clone(),
                rate(t.down_rate),
                rate(t.up_rate),
                t.seeds.to_string(),
                t.peers.to_string(),
                t.eta_secs.map_or_else(|| "-".into(), human_duration),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID", "NAME", "SIZE", "DONE", "STATE", "DOWN", "UP", "SEEDS", "PEERS", "ETA",
        ],
        &rows,
        &[2, 3, 5, 6, 7, 8, 9],
    );
    for t in torrents {
        if let Some(err) = t.error.as_deref().filter(|e| !e.is_empty()) {
            out.push_str(&format!("{}: {err}\n", short_id(&t.id)));
        }
    }
    out
}

/// One line about one torrent, for pause/resume/add/rm.
pub fn torrent_line(verb: &str, t: &Summary) -> String {
    format!(
        "{verb} {} {} ({}, {}, {})\n",
        short_id(&t.id),
        t.name,
        human_bytes(t.size),
        percent(t.progress),
        t.state
    )
}

/// The `shoal stats` lines.
pub fn stats_lines(s: &Stats) -> String {
    format!(
        "torrents: {} ({} seeding)\n\
         peers: {}\n\
         down: {}  up: {}\n\
         downloaded: {}  uploaded: {}\n\
         downloads: {} completed, {} failed\n",
        s.torrents,
        s.files_shared,
        s.peers,
        rate(s.down_rate),
        rate(s.up_rate),
        human_bytes(s.downloaded),
        human_bytes(s.uploaded),
        s.downloads_completed,
        s.downloads_failed
    )
}

/// `3m 05s ago` for a Unix time; `-` when unknown or in the future.
fn age(published: u64, now: u64) -> String {
    if published == 0 || published > now {
        "-".into()
    } else {
        format!("{} ago", human_duration(now - published))
    }
}

/// The `shoal search` table.
pub fn search_table(hits: &[SearchHit], now: u64) -> String {
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            vec![
                short_id(&h.id).to_string(),
                clip(&h.name, NAME_WIDTH),
                human_bytes(h.size),
                h.file_count.to_string(),
                h.seeders.to_string(),
                h.leechers.to_string(),
                h.completed.to_string(),
                age(h.published, now),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "SIZE",
            "FILES",
            "SEEDERS",
            "LEECHERS",
            "COMPLETED",
            "PUBLISHED",
        ],
        &rows,
        &[2, 3, 4, 5, 6],
    )
}

/// Numbered choices for `shoal get` when several results match.
pub fn numbered(hits: &[SearchHit]) -> String {
    let mut out = String::new();
    for (i, h) in hits.iter().enumerate() {
        out.push_str(&format!(
            "{:>3}) {}  {}  ({}, seeders: {})\n",
            i + 1,
            short_id(&h.id),
            h.name,
            human_bytes(h.size),
            h.seeders
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, name: &str) -> Summary {
        Summary {
            id: id.into(),
            name: name.into(),
            size: 1536,
            state: "downloading".into(),
            progress: 0.5,
            down_rate: 2048,
            up_rate: 0,
            peers: 2,
            seeds: 1,
            eta_secs: Some(65),
            error: None,
        }
    }

    #[test]
    fn percent_rounds_down() {
        assert_eq!(percent(0.0), "0.0%");
        assert_eq!(percent(0.4736), "47.3%");
        assert_eq!(percent(0.99999), "99.9%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(percent(f64::NAN), "0.0%");
        assert_eq!(percent(7.0), "100.0%");
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééééééé", 4), "ééé…");
    }

    #[test]
    fn ls_table() {
        let mut broken = summary(
            &"b".repeat(40),
            "a very long name indeed, longer than forty characters",
        );
        broken.state = "error".into();
        broken.error = Some("file photos/a.jpg is missing".into());
        broken.eta_secs = None;
        let out = torrent_table(&[summary(&"a".repeat(40), "photos"), broken]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with("ID        NAME"), "{out}");
        assert!(lines[1].starts_with("aaaaaaaa  photos "), "{out}");
        for col in [
            "1.5 KiB",
            "50.0%",
            "downloading",
            "2.0 KiB/s",
            "0 B/s",
            "1m 05s",
        ] {
            assert!(lines[1].contains(col), "{col} missing in {out}");
        }
        assert!(lines[2].contains(" longer than fo… "), "{out}");
        assert!(lines[2].trim_end().ends_with('-'), "{out}");
        assert_eq!(lines[3], "bbbbbbbb: file photos/a.jpg is missing");
        // The last column is right-aligned under its header.
        assert_eq!(
            lines[1].find("1m 05s").unwrap() + "1m 05s".len(),
            lines[0].len()
        );
    }

    #[test]
    fn empty_ls_says_how_to_add() {
        assert!(torrent_table(&[]).contains("shoal share"));
    }

    #[test]
    fn summary_ignores_unknown_fields_and_nulls() {
        let t: Summary = serde_json::from_str(
            r#"{"id":"ab","name":"x","size":1,"state":"seeding","progress":1.0,"down_rate":0,
                "up_rate":0,"eta_secs":null,"swarm_seeders":null,"role":"seeder"}"#,
        )
        .unwrap();
        assert_eq!(t.state, "seeding");
        assert_eq!(t.eta_secs, None);
    }

    #[test]
    fn stats_and_search() {
        let s = Stats {
            torrents: 5,
            files_shared: 3,
            downloaded: 1 << 20,
            ..Stats::default()
        };
        let out = stats_lines(&s);
        assert!(out.starts_with("torrents: 5 (3 seeding)\n"), "{out}");
        assert!(out.contains("downloaded: 1.0 MiB"), "{out}");

        let hit = SearchHit {
            id: "0123456789abcdef0123456789abcdef01234567".into(),
            name: "ubuntu".into(),
            size: 10,
            file_count: 1,
            seeders: 4,
            published: 1000,
            ..SearchHit::default()
        };
        let out = search_table(std::slice::from_ref(&hit), 1065);
        assert!(out.lines().nth(1).unwrap().starts_with("01234567  ubuntu"));
        assert!(out.contains("1m 05s ago"), "{out}");
        assert_eq!(
            numbered(&[hit]),
            "  1) 01234567  ubuntu  (10 B, seeders: 4)\n"
        );
        assert_eq!(age(5, 1), "-");
    }
}
