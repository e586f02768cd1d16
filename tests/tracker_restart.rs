//! A `shoal tracker --data-dir D` keeps its swarms across a restart: a seeder announces
//! once (interval 1800 s, so not again during the test), the tracker is stopped (SIGTERM,
//! or SIGKILL after its periodic save) and restarted on the same dir and port, and a new
//! leecher that announces only to the new process finds the seeder and completes.

mod common;

use anyhow::{ensure, Context, Result};
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

const NAME: &str = "payload";
const FILES: &[(&str, u64)] = &[("a.bin", 600_000), ("b/c.bin", 70_001)];
/// Far beyond the test: without the saved swarm the leecher would wait this long.
const INTERVAL: &str = "1800";
/// The leecher must finish well before the seeder's next announce.
const FINISH: Duration = Duration::from_secs(60);

/// `shoal tracker --bind BIND --data-dir DIR` with debug logs of the tracker crate (its
/// "swarms saved" and "swarms restored" lines); returns it and its port.
fn start(cwd: &Path, bind: &str, data: &Path) -> Result<(Proc, u16)> {
    let mut cmd = std::process::Command::new(shoal_bin());
    cmd.args([
        "tracker",
        "--bind",
        bind,
        "--interval",
        INTERVAL,
        "--data-dir",
    ])
    .arg(data)
    .current_dir(cwd)
    .env("SHOAL_LOG", "shoal_tracker=debug")
    .env("NO_COLOR", "1");
    let mut proc = Proc::spawn_command("shoal tracker", cmd)?;
    let url = proc.wait_for_prefix("tracker: ", READY)?;
    let port = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.strip_suffix("/announce"))
        .context("tracker URL")?;
    Ok((proc, parse_port(port)?))
}

/// The tracker's `/stats` JSON.
fn stats(port: u16) -> Result<serde_json::Value> {
    let body = ureq::get(&format!("http://127.0.0.1:{port}/stats"))
        .timeout(Duration::from_secs(5))
        .call()?
        .into_string()?;
    Ok(serde_json::from_str(&body)?)
}

/// Waits until the tracker counts `seeders` seeders.
fn wait_seeders(port: u16, seeders: u64, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let s = stats(port)?;
        if s["seeders"].as_u64() == Some(seeders) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "tracker never counted {seeders} seeder(s): {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `line` without ANSI escape sequences (log fields may be styled).
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn restart_keeps_the_seeder(test: &str, kill: bool) -> Result<()> {
    let t = TestDir::new(test)?;
    let data = t.path().join("tracker-data");
    let (mut tracker, port) = start(t.path(), "127.0.0.1:0", &data)?;
    let url = format!("http://127.0.0.1:{port}/announce");

    let seed_dir = t.sub("seed")?;
    let payload = seed_dir.join(NAME);
    make_files(&payload, FILES, 7)?;
    let torrent = t.path().join("payload.torrent");
    create_torrent(&payload, &url, &torrent, 32 * 1024)?;
    let mut seeder = start_seed(&torrent, &seed_dir, NAME, &[])?;
    wait_seeders(port, 1, READY)?;

    if kill {
        // Killed only once a periodic save holds the seeder: SIGKILL runs no shutdown.
        tracker.wait_for_line(Some(Stream::Stderr), Duration::from_secs(20), |l| {
            let l = plain(l);
            l.contains("swarms saved") && l.contains("peers=1")
        })?;
        tracker.kill();
    } else {
        tracker.terminate()?;
        tracker.wait_success(Duration::from_secs(20))?;
    }

    let (mut tracker, again) = start(t.path(), &format!("127.0.0.1:{port}"), &data)?;
    ensure!(again == port, "restarted on port {again}, not {port}");
    tracker.wait_for_line(Some(Stream::Stderr), READY, |l| {
        let l = plain(l);
        l.contains("swarms restored") && l.contains("peers=1")
    })?;
    wait_seeders(port, 1, Duration::from_secs(1))?;

    let started = Instant::now();
    let leech_dir = t.sub("leech")?;
    let mut leecher = spawn_download("shoal download", &torrent, &leech_dir, &[])?;
    finish_download(&mut leecher, NAME, FINISH)?;
    compare_trees(&payload, &leech_dir.join(NAME))?;
    eprintln!(
        "{test}: leecher finished {:?} after the restart",
        started.elapsed()
    );

    seeder.proc.terminate()?;
    seeder.proc.wait_success(Duration::from_secs(20))?;
    tracker.terminate()?;
    tracker.wait_success(Duration::from_secs(20))?;
    Ok(())
}

#[test]
fn a_gracefully_restarted_tracker_still_knows_the_seeder() -> Result<()> {
    with_timeout(Duration::from_secs(180), || {
        restart_keeps_the_seeder("tracker-restart", false)
    })
}

#[test]
fn a_killed_tracker_still_knows_the_seeder_after_restart() -> Result<()> {
    with_timeout(Duration::from_secs(180), || {
        restart_keeps_the_seeder("tracker-kill", true)
    })
}
