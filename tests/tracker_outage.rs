//! End to end on loopback: a `shoal seed` outlives tracker outages. Its tracker is down at its
//! first announce, comes up, and must list the seeder within about 20 s (the seeder retries
//! after 15 s, not after an interval); then the tracker is killed (losing every swarm) and
//! started again on the same port, and must list the seeder again, well enough that a new
//! `shoal download` finds it and completes.

mod common;

use anyhow::{ensure, Context, Result};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const PIECE: u32 = 32 * 1024;
const NAME: &str = "payload";
/// The tracker's announce interval: the seeder notices the second outage at its next
/// announce, within this.
const INTERVAL: u32 = 5;
/// How soon after a failed announce the tracker must list the seeder again: the first
/// retry comes after 15 s, plus slack for a loaded machine. (Before the back-off started at
/// 15 s, the first retry came after 30 s.)
const RECOVERY: Duration = Duration::from_secs(25);

/// `shoal tracker --bind 127.0.0.1:PORT` (HTTP only: the port was checked free for TCP).
fn tracker_on(port: u16, cwd: &std::path::Path) -> Result<Proc> {
    let bind = format!("127.0.0.1:{port}");
    let interval = INTERVAL.to_string();
    let args = [
        "tracker",
        "--bind",
        &bind,
        "--interval",
        &interval,
        "--no-udp",
    ];
    let mut proc = Proc::shoal("shoal tracker", &args, cwd)?;
    let url = proc.wait_for_prefix("tracker: ", READY)?;
    ensure!(
        url == format!("http://{bind}/announce"),
        "tracker at {url:?}"
    );
    Ok(proc)
}

/// The seeders the tracker on `port` lists for `hash` (a scrape), or `None` while it does not
/// answer.
fn scrape_seeders(port: u16, hash: &str) -> Result<Option<u32>> {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return Ok(None);
    };
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut query = String::new();
    for i in (0..hash.len()).step_by(2) {
        query.push('%');
        query.push_str(&hash[i..i + 2]);
    }
    write!(
        conn,
        "GET /scrape?info_hash={query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    if conn.read_to_end(&mut reply).is_err() {
        return Ok(None);
    }
    let reply = String::from_utf8_lossy(&reply);
    let Some(at) = reply.find("8:completei") else {
        // Not in the swarm list at all: no seeder.
        return Ok(Some(0));
    };
    let digits: String = reply[at + 11..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Ok(Some(digits.parse().context("scrape count")?))
}

/// Lines the seeder printed on stderr about a failed announce.
fn announce_failures(seeder: &Proc) -> usize {
    seeder
        .output(Stream::Stderr)
        .lines()
        .filter(|l| l.starts_with("tracker: "))
        .count()
}

/// Waits until the seeder has reported `n` failed announces; returns when it saw the last.
fn wait_failures(seeder: &mut Proc, n: usize, timeout: Duration) -> Result<Instant> {
    poll("the seeder reporting a failed announce", timeout, || {
        Ok((announce_failures(seeder) >= n).then(Instant::now))
    })
    .with_context(|| seeder.output_tail(20))
}

/// Waits until the tracker on `port` lists one seeder for `hash`, at most `timeout`.
fn wait_listed(port: u16, hash: &str, timeout: Duration) -> Result<()> {
    poll("the tracker listing the seeder", timeout, || {
        Ok((scrape_seeders(port, hash)? == Some(1)).then_some(()))
    })
}

#[test]
fn a_seeder_finds_its_tracker_back_after_outages() -> Result<()> {
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("tracker-outage")?;
        let data = t.sub(&format!("seed/{NAME}"))?;
        write_random_file(&data.join("file.bin"), 300_000, 11)?;
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}/announce");
        let torrent = t.path().join("payload.torrent");
        let hash = create_torrent(&data, &url, &torrent, PIECE)?;

        // Outage 1: no tracker at the seeder's first announce.
        let mut seeder = start_seed(&torrent, &t.sub("seed")?, NAME, &[])?;
        let failed_at = wait_failures(&mut seeder.proc, 1, READY)?;
        let mut tracker = tracker_on(port, t.path())?;
        let left = RECOVERY.saturating_sub(failed_at.elapsed());
        wait_listed(port, &hash, left)
            .context("the tracker did not list the seeder after it came up")?;
        eprintln!(
            "outage 1: listed {:.1} s after the failed announce",
            failed_at.elapsed().as_secs_f64()
        );

        // Outage 2: the tracker dies (forgetting the swarm) and comes back on the same port.
        let failures = announce_failures(&seeder.proc);
        tracker.kill();
        let failed_at = wait_failures(&mut seeder.proc, failures + 1, Duration::from_secs(30))?;
        let _tracker = tracker_on(port, t.path())?;
        let left = RECOVERY.saturating_sub(failed_at.elapsed());
        wait_listed(port, &hash, left).context("the restarted tracker did not list the seeder")?;
        eprintln!(
            "outage 2: listed {:.1} s after the failed announce",
            failed_at.elapsed().as_secs_f64()
        );

        // The address it lists is right: a new leecher finds the seeder through it.
        let dir = t.sub("leech")?;
        let mut leecher = spawn_download("shoal download", &torrent, &dir, &[])?;
        finish_download(&mut leecher, NAME, TRANSFER)?;
        compare_trees(&data, &dir.join(NAME))?;
        Ok(())
    })
}
