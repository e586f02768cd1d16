//! Interop of our BEP 15 UDP tracker with a real client: aria2c announces over
//! `udp://127.0.0.1:PORT/announce` (the only tracker in its .torrent), learns the
//! `shoal seed` peer from it and downloads from it. The seeder announces over HTTP to
//! the same tracker (the engine speaks HTTP trackers), so the swarm spans both
//! transports. `/stats` then proves the UDP path was used.
//!
//! aria2 sends UDP tracker packets through its DHT socket, so this test runs aria2c
//! with DHT on (an empty routing table, no entry point, a DHT file in the test dir:
//! it stays on loopback) rather than through `common::aria2`, which turns DHT off.
//!
//! Skips with a message when aria2c is missing, unless `SHOAL_INTEROP_REQUIRED=1`.

mod common;

use anyhow::{ensure, Context, Result};
use common::*;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

const NAME: &str = "payload";

/// `GET /stats` from the tracker behind `announce_url`, as JSON text.
fn stats(announce_url: &str) -> Result<String> {
    let host = announce_url
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

/// aria2c leeching `torrent` into `dir` with DHT on (needed for UDP trackers).
fn aria2_with_udp(torrent: &Path, dir: &Path, work: &Path) -> Result<Proc> {
    let listen = free_port()?;
    let dht_port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let utf8 = |p: &Path| p.to_str().map(String::from).context("path is not UTF-8");
    let args = [
        "--no-conf=true".to_string(),
        "--enable-dht=true".into(),
        format!("--dht-listen-port={dht_port}"),
        format!("--dht-file-path={}", utf8(&work.join("dht.dat"))?),
        "--enable-dht6=false".into(),
        "--bt-enable-lpd=false".into(),
        "--enable-peer-exchange=false".into(),
        "--enable-rpc=false".into(),
        "--seed-time=0".into(),
        "--bt-require-crypto=false".into(),
        "--file-allocation=none".into(),
        "--allow-overwrite=true".into(),
        "--auto-file-renaming=false".into(),
        format!("--listen-port={listen}"),
        format!("--dir={}", utf8(dir)?),
        format!("--log={}", utf8(&work.join("aria2.log"))?),
        "--log-level=info".into(),
        "--console-log-level=warn".into(),
        "--summary-interval=0".into(),
        "--show-console-readout=false".into(),
        "--enable-color=false".into(),
        utf8(torrent)?,
    ];
    Proc::spawn("aria2c", "aria2c", &args, work)
}

#[test]
fn aria2_announces_over_udp_and_downloads_from_shoal_seed() -> Result<()> {
    if !have_tools("udp interop aria2", &["aria2c"]) {
        return Ok(());
    }
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("udp-aria2")?;
        let tracker = start_tracker(t.path(), 2)?;
        let port = tracker
            .url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|r| r.strip_suffix("/announce"))
            .context("tracker URL")?;
        let udp_url = format!("udp://127.0.0.1:{port}/announce");

        let seed_dir = t.sub("seed")?;
        let data = seed_dir.join(NAME);
        make_files(
            &data,
            &[("big.bin", 1024 * 1024 + 13), ("sub/small.bin", 50_001)],
            21,
        )?;
        let torrent = t.path().join("payload.torrent");
        create_torrent(&data, &udp_url, &torrent, 64 * 1024)?;
        let _seeder = start_seed(&torrent, &seed_dir, NAME, &["--tracker", &tracker.url])?;

        let out = t.sub("aria2")?;
        let mut aria = aria2_with_udp(&torrent, &out, t.path())?;
        aria.wait_success(TRANSFER)?;
        compare_trees(&data, &out.join(NAME))?;

        let s = stats(&tracker.url)?;
        let udp_announces: u64 = s
            .split("\"udp_announces_total\":")
            .nth(1)
            .and_then(|r| r.split([',', '}']).next())
            .and_then(|n| n.trim().parse().ok())
            .with_context(|| format!("udp_announces_total in {s}"))?;
        ensure!(udp_announces >= 1, "aria2c did not announce over UDP: {s}");
        drop(tracker);
        Ok(())
    })
}
