//! `GET /stats` (JSON) and `GET /` (a small HTML page of the same figures).

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;

use crate::service::Service;

/// Tracker figures, as served by `/stats`.
#[derive(Debug, Serialize)]
pub(crate) struct StatusReport {
    /// Torrents with at least one live peer.
    pub torrents: usize,
    /// Torrents published to the catalog.
    pub catalog_torrents: usize,
    /// Live peers over all torrents.
    pub peers: u64,
    /// Live seeders.
    pub seeders: u64,
    /// Live leechers.
    pub leechers: u64,
    /// Announces per second over the last ten seconds.
    pub announces_per_sec: f64,
    /// Announces since start (HTTP and UDP).
    pub announces_total: u64,
    /// Announces since start over UDP.
    pub udp_announces_total: u64,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// True in catalog-only mode.
    pub catalog_only: bool,
}

pub(crate) fn report(service: &Service) -> StatusReport {
    let t = service.registry.totals();
    let (all, udp) = service.stats.announces();
    StatusReport {
        torrents: t.swarms,
        catalog_torrents: service.catalog.len(),
        peers: t.seeders + t.leechers,
        seeders: t.seeders,
        leechers: t.leechers,
        announces_per_sec: (service.stats.rate() * 10.0).round() / 10.0,
        announces_total: all,
        udp_announces_total: udp,
        uptime_secs: service.stats.uptime(Instant::now()).as_secs(),
        catalog_only: service.config.catalog_only,
    }
}

pub(crate) fn json(service: &Service) -> Vec<u8> {
    serde_json::to_vec(&report(service)).unwrap_or_default()
}

pub(crate) fn html(service: &Service) -> Vec<u8> {
    let r = report(service);
    let up = r.uptime_secs;
    let mut s = String::with_capacity(1500);
    s.push_str(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Shoal tracker</title>\
         <meta http-equiv=\"refresh\" content=\"10\"><style>body{font-family:sans-serif;\
         margin:2em}td{padding:.2em 1em}td:last-child{text-align:right}</style></head><body>\
         <h1>Shoal tracker</h1><table>",
    );
    let rows: [(&str, String); 8] = [
        ("Torrents (active)", r.torrents.to_string()),
        ("Torrents in catalog", r.catalog_torrents.to_string()),
        ("Peers", r.peers.to_string()),
        ("Seeders", r.seeders.to_string()),
        ("Leechers", r.leechers.to_string()),
        (
            "Announces per second",
            format!("{:.1}", r.announces_per_sec),
        ),
        ("Announces since start", r.announces_total.to_string()),
        (
            "Uptime",
            format!(
                "{}d {:02}h {:02}m {:02}s",
                up / 86400,
                up / 3600 % 24,
                up / 60 % 60,
                up % 60
            ),
        ),
    ];
    for (k, v) in rows {
        // Only numbers and fixed labels: nothing to escape.
        let _ = write!(s, "<tr><td>{k}</td><td>{v}</td></tr>");
    }
    s.push_str(
        "</table><p>Announce: <code>/announce</code> (HTTP) or <code>udp://</code> on the \
         same port. Catalog: <code>/search?q=</code>, <code>/torrent/&lt;id&gt;</code>, \
         <code>POST /publish</code>. JSON: <a href=\"/stats\">/stats</a>.</p></body></html>",
    );
    s.into_bytes()
}
