//! The engine's BEP 15 client against a real `shoal tracker`: a torrent whose only
//! tracker is `udp://127.0.0.1:PORT/announce` is seeded by `shoal seed` and fetched by
//! `shoal download`. Neither has another way to find the other, so a byte-identical
//! download proves both announced over UDP; the tracker's `/stats` confirms it.

mod common;

use anyhow::{ensure, Context, Result};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const NAME: &str = "payload";

/// `GET /stats` from the tracker behind the HTTP announce URL, as JSON text.
fn stats(http_url: &str) -> Result<String> {
    let host = http_url
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix("/announce"))
        .context("tracker URL shape")?;
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let body = reply.split("\r\n\r\n").nth(1).context("no body")?;
    Ok(body.to_string())
}

/// A top-level integer field of the `/stats` JSON.
fn stat(json: &str, key: &str) -> Result<u64> {
    json.split(&format!("\"{key}\":"))
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("{key} in {json}"))
}

#[test]
fn seed_and_download_announce_over_udp() -> Result<()> {
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("udp-client")?;
        let mut tracker = start_tracker(t.path(), 2)?;
        let udp = tracker.proc.wait_for_prefix("udp tracker: ", READY)?;
        ensure!(udp.starts_with("udp://127.0.0.1:"), "unexpected {udp:?}");
        let udp_url = format!("{udp}/announce");

        let seed_dir = t.sub("seed")?;
        let data = seed_dir.join(NAME);
        make_files(
            &data,
            &[("big.bin", 1024 * 1024 + 13), ("sub/small.bin", 50_001)],
            15,
        )?;
        let torrent = t.path().join("payload.torrent");
        create_torrent(&data, &udp_url, &torrent, 64 * 1024)?;
        let _seeder = start_seed(&torrent, &seed_dir, NAME, &[])?;

        let out = t.sub("download")?;
        let mut download = spawn_download("shoal download", &torrent, &out, &[])?;
        finish_download(&mut download, NAME, TRANSFER)?;
        compare_trees(&data, &out.join(NAME))?;

        let s = stats(&tracker.url)?;
        let udp_announces = stat(&s, "udp_announces_total")?;
        ensure!(
            udp_announces >= 2,
            "seeder and leecher did not both announce over UDP: {s}"
        );
        Ok(())
    })
}
