//! End to end on loopback: a `shoal tracker`, one `shoal seed` and three `shoal download`
//! processes started at once. Every leecher must finish with byte-identical files, and the
//! leechers must trade pieces among themselves: the seeder (rate-limited) uploads less than the
//! three full copies they need.

mod common;

use anyhow::{ensure, Context, Result};
use common::*;
use std::time::Duration;

const PIECE: u32 = 32 * 1024;
/// Name of the torrent (the folder).
const NAME: &str = "payload";
/// A few MiB and not piece-aligned, an empty file, and one not a multiple of 16 KiB (a short
/// last block), in a subfolder.
const FILES: &[(&str, u64)] = &[
    ("big.bin", 3 * 1024 * 1024 + 123),
    ("empty.bin", 0),
    ("nested/odd.bin", 100_001),
];

/// `shoal info X | head -1`: the reader goes away early; shoal ends quietly (no panic).
#[test]
fn info_into_a_closed_pipe_does_not_panic() -> Result<()> {
    with_timeout(Duration::from_secs(60), || {
        let t = TestDir::new("info-pipe")?;
        let data = t.sub(NAME)?;
        // More listing than a pipe holds (64 KiB), so the writer meets the closed pipe.
        for i in 0..3000 {
            let name = format!("a-rather-long-file-name-to-fill-the-pipe-quickly-{i:05}.bin");
            std::fs::write(data.join(name), [i as u8])?;
        }
        let torrent = t.path().join("payload.torrent");
        create_torrent(&data, "http://127.0.0.1:1/announce", &torrent, PIECE)?;
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("\"$0\" info \"$1\" | head -c 10")
            .arg(shoal_bin())
            .arg(&torrent)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !stderr.contains("panicked"),
            "shoal info panicked:\n{stderr}"
        );
        ensure!(
            out.stdout.starts_with(b"info hash:"),
            "output {:?}",
            out.stdout
        );
        // The pipeline's status is head's; check shoal's own by itself too.
        ensure!(out.status.success(), "sh: {}", out.status);
        Ok(())
    })
}

#[test]
fn create_then_info_describes_the_files() -> Result<()> {
    with_timeout(Duration::from_secs(60), || {
        let t = TestDir::new("info")?;
        let data = t.sub(NAME)?;
        let total = make_files(&data, FILES, 7)?;
        let torrent = t.path().join("payload.torrent");
        let hash = create_torrent(&data, "http://127.0.0.1:1/announce", &torrent, PIECE)?;

        let info = run_shoal(
            &["info", torrent.to_str().context("utf-8")?],
            t.path(),
            QUICK,
        )?;
        ensure!(
            field(&info, "info hash: ")? == hash,
            "info hash differs:\n{info}"
        );
        ensure!(field(&info, "name: ")? == NAME, "name:\n{info}");
        ensure!(
            field(&info, "size: ")? == total.to_string(),
            "size:\n{info}"
        );
        let pieces = total.div_ceil(u64::from(PIECE));
        ensure!(
            field(&info, "pieces: ")? == format!("{pieces} x {PIECE}"),
            "pieces:\n{info}"
        );
        let mut files: Vec<(u64, String)> = info
            .lines()
            .filter_map(|l| l.strip_prefix("file: "))
            .map(|rest| {
                let (len, path) = rest.split_once(' ').context("file: <len> <path>")?;
                // The path is relative to the torrent's folder; tolerate a `<name>/` prefix.
                let path = path.strip_prefix("payload/").unwrap_or(path);
                Ok((len.parse()?, path.to_string()))
            })
            .collect::<Result<_>>()?;
        files.sort();
        let mut want: Vec<(u64, String)> =
            FILES.iter().map(|(p, n)| (*n, (*p).to_string())).collect();
        want.sort();
        ensure!(files == want, "files {files:?}, want {want:?}\n{info}");
        Ok(())
    })
}

#[test]
fn three_leechers_trade_and_finish() -> Result<()> {
    with_timeout(Duration::from_secs(240), || {
        let t = TestDir::new("swarm")?;
        let tracker = start_tracker(t.path(), 2)?;

        let seed_dir = t.sub("seed")?;
        let data = seed_dir.join(NAME);
        let total = make_files(&data, FILES, 42)?;
        let torrent = t.path().join("payload.torrent");
        create_torrent(&data, &tracker.url, &torrent, PIECE)?;

        // 1 MiB/s: the three leechers need ~9.4 MiB, so without trading the seeder would be
        // the bottleneck and upload 3x the torrent.
        let mut seeder = start_seed(&torrent, &seed_dir, NAME, &["--max-up", "1048576"])?;

        let mut leechers = Vec::new();
        for i in 0..3 {
            let dir = t.sub(&format!("leech{i}"))?;
            let p = spawn_download(&format!("shoal download #{i}"), &torrent, &dir, &[])?;
            leechers.push((p, dir));
        }
        for (p, _) in &mut leechers {
            parse_port(&p.wait_for_prefix("peer port: ", READY)?)?;
        }
        for (p, dir) in &mut leechers {
            finish_download(p, NAME, TRANSFER)?;
            compare_trees(&data, &dir.join(NAME))
                .with_context(|| format!("{} has different files", p.name()))?;
        }

        seeder.proc.terminate()?;
        seeder.proc.wait_success(Duration::from_secs(20))?;
        let uploaded: u64 = seeder
            .proc
            .wait_for_prefix("uploaded: ", Duration::from_secs(1))?
            .parse()
            .context("uploaded: <bytes>")?;
        ensure!(uploaded > 0, "seeder reports no upload");
        ensure!(
            uploaded < 3 * total,
            "seeder uploaded {uploaded} bytes, >= 3 x {total}: the leechers did not trade"
        );
        drop(tracker);
        Ok(())
    })
}
