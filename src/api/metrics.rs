//! `GET /metrics`: the node's figures in the Prometheus text format (version 0.0.4),
//! written by hand: `# HELP` and `# TYPE` lines, then `name{labels} value` samples,
//! every name prefixed `shoal_`.
//!
//! Counters are the node's totals over all runs (they only grow); the hash-failure
//! and tracker figures are gauges over the torrents running now, since the engine
//! counts them per run of a torrent.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::node::Node;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every state word a torrent can have (`GET /api/torrents`), each reported even at 0.
const STATES: &[&str] = &[
    "metadata",
    "checking",
    "queued",
    "downloading",
    "seeding",
    "paused",
    "error",
];

/// A metrics page being written.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts metric `name` of `kind` (`counter` or `gauge`).
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample; `labels` are (name, value) pairs, values escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// `GET /metrics`.
pub async fn metrics(State(node): State<Node>) -> axum::response::Response {
    let body = render(&node).await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

async fn render(node: &Node) -> String {
    let sums = node.summaries();
    let (down, up) = node.totals();
    let mut m = Exposition::default();
    let rate = |f: fn(&crate::node::Summary) -> u64| sums.iter().map(f).sum::<u64>() as f64;
    m.single(
        "shoal_download_rate_bytes",
        "gauge",
        "Payload bytes per second received, all torrents.",
        rate(|s| s.down_rate),
    );
    m.single(
        "shoal_upload_rate_bytes",
        "gauge",
        "Payload bytes per second sent, all torrents.",
        rate(|s| s.up_rate),
    );
    m.single(
        "shoal_downloaded_bytes_total",
        "counter",
        "Payload bytes received, all runs of the node.",
        down as f64,
    );
    m.single(
        "shoal_uploaded_bytes_total",
        "counter",
        "Payload bytes sent, all runs of the node.",
        up as f64,
    );
    let peers: usize = sums.iter().map(|s| s.peers + s.seeds).sum();
    m.single(
        "shoal_peers_connected",
        "gauge",
        "Peer connections open, all torrents.",
        peers as f64,
    );
    m.family("shoal_torrents", "gauge", "Torrents by state.");
    for state in STATES {
        let n = sums.iter().filter(|s| s.state == *state).count();
        m.sample("shoal_torrents", &[("state", state)], n as f64);
    }
    running(&mut m, node);
    if let Some(dht) = node.session().dht() {
        let s = dht.stats().await;
        m.single(
            "shoal_dht_nodes",
            "gauge",
            "Good and questionable nodes in the DHT routing table.",
            (s.good + s.questionable) as f64,
        );
    }
    m.single(
        "shoal_uptime_seconds",
        "gauge",
        "Seconds since the node started.",
        node.uptime_secs() as f64,
    );
    m.finish()
}

/// The figures of the running torrents: hash failures and trackers.
fn running(m: &mut Exposition, node: &Node) {
    let (failures, trackers) = running_figures(node);
    m.single(
        "shoal_hash_failures",
        "gauge",
        "Pieces that failed their hash check in the torrents running now, since each started.",
        failures as f64,
    );
    m.family(
        "shoal_trackers",
        "gauge",
        "Trackers of running torrents by the outcome of their last announce.",
    );
    for (status, n) in [
        ("working", trackers.0),
        ("error", trackers.1),
        ("not contacted", trackers.2),
    ] {
        m.sample("shoal_trackers", &[("status", status)], n as f64);
    }
    m.single(
        "shoal_tracker_failures",
        "gauge",
        "Failed announces in a row, summed over the trackers of running torrents.",
        trackers.3 as f64,
    );
}

/// Hash failures and trackers (working, error, not contacted, failures in a row) of
/// the running torrents.
fn running_figures(node: &Node) -> (u64, (u64, u64, u64, u64)) {
    let statuses: Vec<_> = {
        let map = node.torrents();
        map.values()
            .filter_map(|e| e.run.as_ref().map(|r| r.handle.status()))
            .collect()
    };
    let mut failures = 0;
    let mut t = (0, 0, 0, 0);
    for s in statuses {
        failures += s.hash_failures;
        for tr in s.trackers {
            match tr.status {
                "working" => t.0 += 1,
                "error" => t.1 += 1,
                _ => t.2 += 1,
            }
            t.3 += u64::from(tr.failures);
        }
    }
    (failures, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_lines() {
        let mut m = Exposition::default();
        m.single("shoal_x_total", "counter", "An x.", 3.0);
        m.family("shoal_y", "gauge", "A y.");
        m.sample("shoal_y", &[("state", "a\"b"), ("k", "v")], 0.5);
        assert_eq!(
            m.finish(),
            "# HELP shoal_x_total An x.\n# TYPE shoal_x_total counter\nshoal_x_total 3\n\
             # HELP shoal_y A y.\n# TYPE shoal_y gauge\nshoal_y{state=\"a\\\"b\",k=\"v\"} 0.5\n"
        );
    }
}
