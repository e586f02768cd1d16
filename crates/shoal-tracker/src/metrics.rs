//! `GET /metrics`: the tracker's figures in the Prometheus text format (0.0.4),
//! written by hand, every name prefixed `shoal_tracker_`.
//!
//! [`Outcomes`] counts requests by protocol and result with one relaxed atomic
//! increment each (the announce path already does one for [`crate::stats::Stats`]);
//! swarm, peer and catalog figures are read from the registry and catalog at scrape
//! time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::service::Service;

/// Index of a protocol in the counters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Proto {
    Http = 0,
    Udp = 1,
}

impl Proto {
    fn label(i: usize) -> &'static str {
        if i == 0 {
            "http"
        } else {
            "udp"
        }
    }
}

/// Request outcomes since start.
#[derive(Default)]
pub(crate) struct Outcomes {
    /// Announces answered with peers.
    announce_ok: [AtomicU64; 2],
    /// Announces refused (tracker full, not in the catalog).
    announce_refused: [AtomicU64; 2],
    /// Announces that could not be parsed.
    announce_invalid: [AtomicU64; 2],
    /// Scrapes answered.
    scrape_ok: [AtomicU64; 2],
    /// Scrapes refused or unparsable.
    scrape_invalid: [AtomicU64; 2],
}

fn bump(c: &[AtomicU64; 2], p: Proto) {
    c[p as usize].fetch_add(1, Ordering::Relaxed);
}

impl Outcomes {
    pub fn announce_ok(&self, p: Proto) {
        bump(&self.announce_ok, p);
    }
    pub fn announce_refused(&self, p: Proto) {
        bump(&self.announce_refused, p);
    }
    pub fn announce_invalid(&self, p: Proto) {
        bump(&self.announce_invalid, p);
    }
    pub fn scrape_ok(&self, p: Proto) {
        bump(&self.scrape_ok, p);
    }
    pub fn scrape_invalid(&self, p: Proto) {
        bump(&self.scrape_invalid, p);
    }
}

/// One family: HELP, TYPE, then samples.
fn family(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {kind}");
}

/// The `/metrics` body.
pub(crate) fn render(service: &Service) -> Vec<u8> {
    let o = &service.stats.outcomes;
    let mut s = String::with_capacity(2048);
    let name = "shoal_tracker_announces_total";
    family(&mut s, name, "counter", "Announces by protocol and result.");
    let results = [
        ("ok", &o.announce_ok),
        ("refused", &o.announce_refused),
        ("invalid", &o.announce_invalid),
    ];
    for (result, c) in results {
        for (i, n) in c.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            let p = Proto::label(i);
            let _ = writeln!(s, "{name}{{protocol=\"{p}\",result=\"{result}\"}} {n}");
        }
    }
    let name = "shoal_tracker_scrapes_total";
    family(&mut s, name, "counter", "Scrapes by protocol and result.");
    for (result, c) in [("ok", &o.scrape_ok), ("invalid", &o.scrape_invalid)] {
        for (i, n) in c.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            let p = Proto::label(i);
            let _ = writeln!(s, "{name}{{protocol=\"{p}\",result=\"{result}\"}} {n}");
        }
    }
    let t = service.registry.totals();
    let gauges: [(&str, &str, u64); 3] = [
        (
            "shoal_tracker_swarms",
            "Torrents with at least one live peer.",
            t.swarms as u64,
        ),
        (
            "shoal_tracker_catalog_torrents",
            "Torrents published to the catalog.",
            service.catalog.len() as u64,
        ),
        (
            "shoal_tracker_uptime_seconds",
            "Seconds since the tracker started.",
            service.stats.uptime(Instant::now()).as_secs(),
        ),
    ];
    for (name, help, v) in gauges {
        family(&mut s, name, "gauge", help);
        let _ = writeln!(s, "{name} {v}");
    }
    let name = "shoal_tracker_peers";
    family(&mut s, name, "gauge", "Live peers by role.");
    let _ = writeln!(s, "{name}{{role=\"seeder\"}} {}", t.seeders);
    let _ = writeln!(s, "{name}{{role=\"leecher\"}} {}", t.leechers);
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_by_protocol() {
        let o = Outcomes::default();
        o.announce_ok(Proto::Udp);
        o.announce_ok(Proto::Udp);
        o.scrape_invalid(Proto::Http);
        assert_eq!(o.announce_ok[1].load(Ordering::Relaxed), 2);
        assert_eq!(o.announce_ok[0].load(Ordering::Relaxed), 0);
        assert_eq!(o.scrape_invalid[0].load(Ordering::Relaxed), 1);
    }
}
