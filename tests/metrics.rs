//! `GET /metrics` on the node and on its embedded tracker: every line is valid
//! Prometheus text exposition (0.0.4), and the figures move after a transfer.

mod common;
mod nodeutil;

use anyhow::{bail, ensure, Context, Result};
use common::*;
use nodeutil::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A metric or label name.
fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// `k="v",...` (values with `\\`, `\"`, `\n` escapes); the labels in order.
fn parse_labels(s: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (k, after) = rest.split_once("=\"").context("label without =\"")?;
        ensure!(is_name(k), "bad label name {k:?}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => bail!("bad escape {other:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => bail!("unterminated label value"),
            }
        };
        out.push((k.to_string(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(out)
}

/// Parses a whole page: every line a HELP, a TYPE (before the family's samples, once)
/// or a sample with a float value. Returns `name{labels}` → value.
fn parse(text: &str) -> Result<BTreeMap<String, f64>> {
    let mut typed: BTreeSet<String> = BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next(), parts.next().unwrap_or(""));
            ensure!(is_name(name), "bad name in {line:?}");
            match kw {
                Some("HELP") => {}
                Some("TYPE") => {
                    let ty = parts.next().unwrap_or("");
                    ensure!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty),
                        "bad type in {line:?}"
                    );
                    ensure!(typed.insert(name.to_string()), "second TYPE: {line:?}");
                }
                _ => bail!("bad comment line {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').context("sample without value")?;
        let v: f64 = value
            .parse()
            .with_context(|| format!("bad value in {line:?}"))?;
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').context("unclosed labels")?;
                parse_labels(labels).with_context(|| format!("in {line:?}"))?;
                name
            }
            None => series,
        };
        ensure!(is_name(name), "bad metric name in {line:?}");
        ensure!(typed.contains(name), "sample before its TYPE: {line:?}");
        ensure!(
            samples.insert(series.to_string(), v).is_none(),
            "repeated {line:?}"
        );
    }
    Ok(samples)
}

fn metrics(url: &str) -> Result<BTreeMap<String, f64>> {
    let resp = ureq::get(url).timeout(Duration::from_secs(30)).call()?;
    let ctype = resp.header("Content-Type").unwrap_or("").to_string();
    ensure!(
        ctype.starts_with("text/plain; version=0.0.4"),
        "{url}: {ctype}"
    );
    let text = resp.into_string()?;
    parse(&text).with_context(|| format!("{url}:\n{text}"))
}

fn get(m: &BTreeMap<String, f64>, series: &str) -> Result<f64> {
    m.get(series)
        .copied()
        .with_context(|| format!("no {series} in {m:?}"))
}

#[test]
fn parser_refuses_bad_lines() {
    assert!(parse("# TYPE a gauge\na{x=\"1\",y=\"q\\\"\"} 2.5\n").is_ok());
    for bad in [
        "a 1\n",
        "# TYPE a gauge\na one\n",
        "# TYPE a gauge\na{x=1} 1\n",
        "# TYPE 9a gauge\n",
        "# TYPE a gauge\n# TYPE a gauge\n",
        "# TYPE a wrong\n",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn node_and_tracker_metrics_move_after_a_transfer() -> Result<()> {
    with_timeout(Duration::from_secs(150), || {
        let t = TestDir::new("metrics")?;
        let data = t.sub("share")?.join("m.bin");
        write_random_file(&data, 1_500_000, 5)?;
        let mut a = start_node("node A", &t.path().join("a"), &t.sub("dl-a")?, &[])?;
        let tracker = a.tracker.clone().context("A runs the embedded tracker")?;
        let mut b = start_node(
            "node B",
            &t.path().join("b"),
            &t.sub("dl-b")?,
            &["--tracker", &tracker],
        )?;
        let tracker_metrics = tracker.replace("/announce", "/metrics");
        let before = metrics(&format!("{}metrics", b.url))?;
        ensure!(
            get(&before, "shoal_downloaded_bytes_total")? == 0.0,
            "{before:?}"
        );
        ensure!(get(&before, "shoal_torrents{state=\"seeding\"}")? == 0.0);
        let tr_before = metrics(&tracker_metrics)?;

        let id = a.share(&data, TRANSFER)?;
        a.wait_torrent(&id, "A seeds", TRANSFER, |t| state(t) == "seeding")?;
        let (status, added) = call("POST", &b.api("get"), Some(json!({"id": &id})))?;
        ensure!(status == 201, "POST /api/get: {status} {added}");
        b.wait_torrent(&id, "B completes", TRANSFER, |t| state(t) == "seeding")?;

        let after = poll("B's total to count the download", QUICK, || {
            let m = metrics(&format!("{}metrics", b.url))?;
            Ok((get(&m, "shoal_downloaded_bytes_total")? >= 1_500_000.0).then_some(m))
        })?;
        ensure!(
            get(&after, "shoal_torrents{state=\"seeding\"}")? == 1.0,
            "{after:?}"
        );
        ensure!(get(&after, "shoal_torrents{state=\"paused\"}")? == 0.0);
        ensure!(get(&after, "shoal_hash_failures")? == 0.0);
        poll("A's upload total", QUICK, || {
            let m = metrics(&format!("{}metrics", a.url))?;
            Ok((get(&m, "shoal_uploaded_bytes_total")? >= 1_500_000.0).then_some(()))
        })?;
        let tr = metrics(&tracker_metrics)?;
        let ok = "shoal_tracker_announces_total{protocol=\"http\",result=\"ok\"}";
        ensure!(get(&tr, ok)? > get(&tr_before, ok)?, "{tr:?}");
        ensure!(get(&tr, "shoal_tracker_swarms")? >= 1.0, "{tr:?}");
        ensure!(
            get(&tr, "shoal_tracker_peers{role=\"seeder\"}")? >= 1.0,
            "{tr:?}"
        );
        ensure!(get(&tr, "shoal_tracker_catalog_torrents")? >= 1.0, "{tr:?}");
        a.stop()?;
        b.stop()
    })
}
