//! Session-wide speed limits with many peers, end to end: real `shoal` processes on
//! 127.0.0.1.
//!
//! - A node (`shoal up --max-up 1MiB`) seeds to 60 `shoal download`s: its upload over
//!   20 s stays within 10% of 1 MiB/s.
//! - A node (`shoal up --max-down 1MiB`) downloads from 60 `shoal seed`s: its download
//!   over 20 s stays within 10% of 1 MiB/s. The limit is changed through the API
//!   (`PATCH /api/settings`) while peers are connected: a trickle while the seeders
//!   start, 1 MiB/s for the measurement, then none, and the download speeds up.
//!
//! Rates come from the limited node's own counters (`uploaded`/`downloaded` of its
//! torrent in the API), read after a warm-up at t0 and t0 + 20 s. The torrent has no
//! tracker: every peer is given the node's address (`--peer`), so the 60 peers talk
//! only to the node (the node's limit of 60 peers per torrent takes them all).

mod common;
mod nodeutil;

use anyhow::{ensure, Context, Result};
use base64::Engine as _;
use common::*;
use nodeutil::*;
use serde_json::json;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

const PEERS: usize = 60;
const LIMIT: u64 = 1 << 20;
/// Measuring window (per-second samples are printed; they sit within 2% of the limit).
const WINDOW: Duration = Duration::from_secs(10);
/// Allowed distance from the limit over the window.
const TOLERANCE: f64 = 0.10;
/// Big enough that the limited side is still busy after the warm-up and the window
/// (~13 s at 1 MiB/s), small enough that 60 seeders hash it quickly at start.
const FILE_SIZE: u64 = 24 << 20;
const PIECE_SIZE: u32 = 256 * 1024;
/// The download limit while the seeders start.
const TRICKLE: u64 = 16 * 1024;

/// The shared fixture: a data file, its trackerless torrent and a node started with
/// `node_args`, which has added the torrent to save in `save_dir`.
struct Setup {
    t: TestDir,
    data: std::path::PathBuf,
    torrent: std::path::PathBuf,
    node: Node,
    id: String,
}

fn setup(test: &str, node_args: &[&str], save_in_data_dir: bool) -> Result<Setup> {
    let t = TestDir::new(test)?;
    let data = t.sub("data")?;
    let file = data.join("big.bin");
    write_random_file(&file, FILE_SIZE, 7)?;
    let torrent = t.path().join("big.torrent");
    let piece = PIECE_SIZE.to_string();
    let args: [&std::ffi::OsStr; 6] = [
        "create".as_ref(),
        file.as_os_str(),
        "-o".as_ref(),
        torrent.as_os_str(),
        "--piece-size".as_ref(),
        piece.as_ref(),
    ];
    run_shoal(&args, t.path(), QUICK)?;
    let node = start_node(
        "limited node",
        &t.path().join("node"),
        &t.sub("dl")?,
        node_args,
    )?;
    let save_dir = if save_in_data_dir {
        data.clone()
    } else {
        t.sub("node-save")?
    };
    let bytes = std::fs::read(&torrent)?;
    let added = node.post(
        "torrents",
        json!({
            "torrent_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
            "save_dir": save_dir,
        }),
    )?;
    let id = added["id"]
        .as_str()
        .context("added torrent id")?
        .to_string();
    Ok(Setup {
        t,
        data,
        torrent,
        node,
        id,
    })
}

/// Waits until the node's torrent has `PEERS` peers (seeds included).
fn wait_all_peers(node: &Node, id: &str) -> Result<()> {
    node.wait_torrent(id, "all peers connected", TRANSFER, |t| {
        let n = t["peers"].as_u64().unwrap_or(0) + t["seeds"].as_u64().unwrap_or(0);
        n >= PEERS as u64
    })?;
    Ok(())
}

/// Reads `field` of the node's torrent now and `WINDOW` later (after `warm_up`), and
/// returns the rate in bytes per second over the time between the two reads.
fn measure(node: &Node, id: &str, field: &str, warm_up: Duration) -> Result<f64> {
    let read = || -> Result<(u64, Instant)> {
        let t = node.torrent(id)?;
        let v = t[field]
            .as_u64()
            .with_context(|| format!("{field} in {t}"))?;
        Ok((v, Instant::now()))
    };
    thread::sleep(warm_up);
    let (v0, t0) = read()?;
    let mut series = Vec::new();
    let mut prev = v0;
    for _ in 0..WINDOW.as_secs() {
        thread::sleep(Duration::from_secs(1));
        let (v, _) = read()?;
        series.push(v - prev);
        prev = v;
    }
    eprintln!("{field} per second: {series:?}");
    let (v1, t1) = read()?;
    Ok(v1.saturating_sub(v0) as f64 / (t1 - t0).as_secs_f64())
}

fn check_rate(what: &str, rate: f64) -> Result<()> {
    let limit = LIMIT as f64;
    println!(
        "{what}: {:.0} B/s over {WINDOW:?} ({:+.2}% of the limit)",
        rate,
        (rate / limit - 1.0) * 100.0
    );
    ensure!(
        (rate - limit).abs() <= limit * TOLERANCE,
        "{what}: {rate:.0} B/s is not within {}% of {LIMIT} B/s",
        TOLERANCE * 100.0
    );
    Ok(())
}

/// Starts `PEERS` copies of `shoal <command> TORRENT --dir DIR --peer NODE`, each in its
/// own directory unless `shared_dir` is given.
fn start_peers(
    command: &str,
    torrent: &Path,
    shared_dir: Option<&Path>,
    root: &Path,
    node: &Node,
) -> Result<Vec<Proc>> {
    let peer = format!("127.0.0.1:{}", node.peer_port);
    let mut procs = Vec::with_capacity(PEERS);
    for i in 0..PEERS {
        let dir = match shared_dir {
            Some(d) => d.to_path_buf(),
            None => root.join(format!("peer{i}")),
        };
        std::fs::create_dir_all(&dir)?;
        let args: Vec<&std::ffi::OsStr> = vec![
            command.as_ref(),
            torrent.as_os_str(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--port".as_ref(),
            "0".as_ref(),
            "--bind-ip".as_ref(),
            "127.0.0.1".as_ref(),
            "--peer".as_ref(),
            peer.as_ref(),
            // The limiter is measured, not the swarm: with PEX the leechers would mesh,
            // hold every piece between them, and the seeder's choker would keep only its
            // optimistic slot (see `choker`), far under the limit.
            "--pex".as_ref(),
            "false".as_ref(),
        ];
        procs.push(Proc::shoal(&format!("{command} {i}"), &args, root)?);
    }
    Ok(procs)
}

#[test]
fn upload_limit_holds_with_60_leechers() -> Result<()> {
    with_timeout(Duration::from_secs(280), || {
        let s = setup("rate-up", &["--max-up", "1MiB"], true)?;
        s.node
            .wait_torrent(&s.id, "node seeds", TRANSFER, |t| state(t) == "seeding")?;
        let root = s.t.sub("leechers")?;
        let _leechers = start_peers("download", &s.torrent, None, &root, &s.node)?;
        wait_all_peers(&s.node, &s.id)?;
        s.node.wait_torrent(&s.id, "node uploads", TRANSFER, |t| {
            t["uploaded"].as_u64().unwrap_or(0) > 0
        })?;
        // The warm-up spends the one-second burst and lets every peer ask.
        let rate = measure(&s.node, &s.id, "uploaded", Duration::from_secs(3))?;
        check_rate("upload with 60 leechers", rate)?;
        let t = s.node.torrent(&s.id)?;
        ensure!(
            t["peers"].as_u64() == Some(PEERS as u64),
            "leechers left during the test: {t}"
        );
        Ok(())
    })
}

/// `PATCH /api/settings` with `max_down`.
fn set_max_down(node: &Node, bytes_per_sec: u64) -> Result<()> {
    let (status, set) = call(
        "PATCH",
        &node.api("settings"),
        Some(json!({ "max_down": bytes_per_sec })),
    )?;
    ensure!(
        status == 200 && set["max_down"] == bytes_per_sec,
        "settings: {status} {set}"
    );
    Ok(())
}

#[test]
fn download_limit_holds_with_60_seeders_and_can_be_changed() -> Result<()> {
    with_timeout(Duration::from_secs(280), || {
        let s = setup("rate-down", &["--max-down", "1MiB"], false)?;
        // A trickle while the seeders start (each hashes the file first, some long
        // after others), so the window below sees them all and most of the file left.
        set_max_down(&s.node, TRICKLE)?;
        s.node
            .wait_torrent(&s.id, "node downloads", TRANSFER, |t| {
                state(t) == "downloading"
            })?;
        let root = s.t.sub("seeders")?;
        let mut seeders = start_peers("seed", &s.torrent, Some(&s.data), &root, &s.node)?;
        for p in &mut seeders {
            p.wait_for_line(Some(Stream::Stdout), TRANSFER, |l| {
                l.trim() == "seeding big.bin"
            })?;
        }
        wait_all_peers(&s.node, &s.id)?;
        let before = s.node.torrent(&s.id)?["downloaded"].as_u64().unwrap_or(0);
        ensure!(
            before < FILE_SIZE / 8,
            "{before} B downloaded before the limit was raised from {TRICKLE} B/s"
        );
        set_max_down(&s.node, LIMIT)?;
        let rate = measure(&s.node, &s.id, "downloaded", Duration::from_secs(3))?;
        check_rate("download from 60 seeders", rate)?;
        let t = s.node.torrent(&s.id)?;
        ensure!(
            t["seeds"].as_u64() == Some(PEERS as u64) && state(&t) == "downloading",
            "the 60 seeders were not all there for the whole window: {t}"
        );

        // Lifted: the peers already connected speed up at once.
        let (d0, t0) = (t["downloaded"].as_u64().unwrap_or(0), Instant::now());
        set_max_down(&s.node, 0)?;
        let done = s
            .node
            .wait_torrent(&s.id, "download completes unlimited", TRANSFER, |t| {
                state(t) == "seeding"
            })?;
        let rest = FILE_SIZE.saturating_sub(d0);
        let fast = rest as f64 / t0.elapsed().as_secs_f64();
        println!("after lifting the limit: {fast:.0} B/s for the last {rest} B");
        ensure!(
            fast > 2.0 * LIMIT as f64,
            "lifting the limit did not speed the download up: {fast:.0} B/s ({done})"
        );
        compare_trees(&s.data, &s.t.path().join("node-save"))?;
        Ok(())
    })
}
