//! `torrent-get`'s `trackers`, `trackerStats` and `trackerList`.
//!
//! A running torrent lists what its announcer reports; a stopped one the node's
//! default trackers and its own tiers, as `GET /api/torrents/:id/trackers` does.
//! The announcer keeps no announce times or scrape results, so those are
//! Transmission's "never" values (0, false, -1 for unknown counts).

use serde_json::{json, Value};

use super::view::View;
use crate::store::now_secs;

/// One tracker as far as the node knows it.
struct Tracker {
    url: String,
    tier: usize,
    status: &'static str,
    message: Option<String>,
    seeders: Option<u32>,
    leechers: Option<u32>,
    /// Unix seconds of the next announce.
    next: Option<i64>,
}

fn trackers(v: &View) -> Vec<Tracker> {
    if let Some((_, status)) = &v.run {
        let now = std::time::Instant::now();
        return status
            .trackers
            .iter()
            .map(|t| Tracker {
                url: t.url.clone(),
                tier: t.tier,
                status: t.status,
                message: t.message.clone(),
                seeders: t.seeders,
                leechers: t.leechers,
                next: t
                    .next_announce
                    .map(|at| now_secs() + at.saturating_duration_since(now).as_secs() as i64),
            })
            .collect();
    }
    let own: Vec<Vec<String>> = match (&v.meta, &v.magnet) {
        (Some(m), _) => m.tracker_tiers(),
        (None, Some((_, t))) => t.iter().map(|u| vec![u.clone()]).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<Tracker> = Vec::new();
    let tiers = v
        .default_trackers
        .iter()
        .map(|u| vec![u.clone()])
        .chain(own);
    for urls in tiers {
        let tier = out.last().map_or(0, |t| t.tier + 1);
        for url in urls {
            if !out.iter().any(|t| t.url == url) {
                out.push(Tracker {
                    url,
                    tier,
                    status: "not contacted",
                    message: None,
                    seeders: None,
                    leechers: None,
                    next: None,
                });
            }
        }
    }
    out
}

/// The scrape URL Transmission derives: `announce` in the last path segment replaced
/// by `scrape`, or "" when there is none (BEP 48 convention).
pub fn scrape_url(announce: &str) -> String {
    if announce.starts_with("udp://") {
        return announce.to_string();
    }
    match announce.rfind('/') {
        Some(i) if announce[i + 1..].starts_with("announce") => {
            format!("{}/scrape{}", &announce[..i], &announce[i + 1 + 8..])
        }
        _ => String::new(),
    }
}

/// `scheme://host:port` and the bare host of a tracker URL.
fn host_of(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let hostport = rest.split('/').next().unwrap_or("");
    let host = match hostport.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => hostport,
    };
    (
        format!("{scheme}://{hostport}"),
        host.trim_matches(['[', ']']).to_string(),
    )
}

/// `trackers`, `trackerStats` or `trackerList`.
pub fn tracker_field(v: &View, f: &str) -> Value {
    let list = trackers(v);
    match f {
        "trackerList" => {
            let mut s = String::new();
            for (i, t) in list.iter().enumerate() {
                if i > 0 && list[i - 1].tier != t.tier {
                    s.push('\n');
                }
                s.push_str(&t.url);
                s.push('\n');
            }
            json!(s)
        }
        "trackers" => json!(list
            .iter()
            .enumerate()
            .map(|(id, t)| json!({
                "announce": t.url, "id": id, "scrape": scrape_url(&t.url),
                "sitename": host_of(&t.url).1, "tier": t.tier,
            }))
            .collect::<Vec<_>>()),
        _ => json!(list
            .iter()
            .enumerate()
            .map(|(id, t)| stats(id, t))
            .collect::<Vec<_>>()),
    }
}

fn stats(id: usize, t: &Tracker) -> Value {
    let (host, sitename) = host_of(&t.url);
    // The announcer keeps no time of the last announce; tools print that time (as
    // decades ago for 0) whenever this is true, so it stays false.
    let announced = false;
    let result = match (t.status, &t.message) {
        ("working", None) => "Success".to_string(),
        (_, Some(m)) => m.clone(),
        _ => String::new(),
    };
    let count = |c: Option<u32>| c.map_or(-1, i64::from);
    json!({
        "announce": t.url, "announceState": if t.next.is_some() { 1 } else { 0 },
        "downloadCount": -1, "hasAnnounced": announced, "hasScraped": false,
        "host": host, "id": id, "isBackup": false,
        "lastAnnouncePeerCount": 0, "lastAnnounceResult": result,
        "lastAnnounceStartTime": 0, "lastAnnounceSucceeded": t.status == "working",
        "lastAnnounceTime": 0, "lastAnnounceTimedOut": false,
        "lastScrapeResult": "", "lastScrapeStartTime": 0, "lastScrapeSucceeded": false,
        "lastScrapeTime": 0, "lastScrapeTimedOut": false,
        "leecherCount": count(t.leechers), "seederCount": count(t.seeders),
        "nextAnnounceTime": t.next.unwrap_or(0), "nextScrapeTime": 0,
        "scrape": scrape_url(&t.url), "scrapeState": 0, "sitename": sitename,
        "tier": t.tier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_urls() {
        assert_eq!(
            scrape_url("http://t.example:6969/announce"),
            "http://t.example:6969/scrape"
        );
        assert_eq!(
            scrape_url("http://t/x/announce.php?k=1"),
            "http://t/x/scrape.php?k=1"
        );
        assert_eq!(scrape_url("http://t/a"), "");
        assert_eq!(host_of("http://127.0.0.1:80/announce").1, "127.0.0.1");
        assert_eq!(host_of("udp://[::1]:6969").0, "udp://[::1]:6969");
    }
}
