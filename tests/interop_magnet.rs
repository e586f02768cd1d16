//! Magnet links against libtorrent (Debian's python3-libtorrent), both ways, with no
//! tracker: Shoal fetches the metadata (BEP 9) from a libtorrent seeder named in the
//! link's `x.pe` and downloads; libtorrent, given a bare magnet and Shoal's address,
//! fetches the metadata from `shoal seed` and downloads. Files compared byte for byte.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use common::libtorrent::have_libtorrent;
use common::*;

const NAME: &str = "payload";

fn driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/drivers/lt_magnet.py")
}

fn lt(name: &str, args: &[&str], cwd: &Path) -> Result<Proc> {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(driver()).args(args).current_dir(cwd);
    Proc::spawn_command(name, cmd)
}

/// A payload folder and its tracker-less torrent; returns (data dir, torrent, info-hash).
fn payload(t: &TestDir) -> Result<(PathBuf, PathBuf, String)> {
    let parent = t.sub("seed")?;
    let data = parent.join(NAME);
    make_files(
        &data,
        &[("a.bin", 3 * 1024 * 1024 + 7), ("b.bin", 500_001)],
        41,
    )?;
    let torrent = t.path().join("payload.torrent");
    let out = run_shoal(
        &[
            "create".as_ref(),
            data.as_os_str(),
            "-o".as_ref(),
            torrent.as_os_str(),
            "--piece-size".as_ref(),
            "16384".as_ref(),
        ],
        t.path(),
        Duration::from_secs(60),
    )?;
    let hash = field(&out, "info hash: ")?.trim().to_string();
    Ok((parent, torrent, hash))
}

#[test]
fn shoal_fetches_metadata_from_libtorrent() -> Result<()> {
    if !have_libtorrent("interop magnet from libtorrent") {
        return Ok(());
    }
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("magnet-from-lt")?;
        let (parent, torrent, hash) = payload(&t)?;
        let mut seed = lt(
            "libtorrent seed",
            &[
                "seed",
                torrent.to_str().context("utf-8 path")?,
                parent.to_str().context("utf-8 path")?,
            ],
            t.path(),
        )?;
        let port = parse_port(&seed.wait_for_prefix("peer port: ", Duration::from_secs(20))?)?;
        seed.wait_for_line(None, Duration::from_secs(30), |l| l.trim() == "seeding")?;
        let magnet = format!("magnet:?xt=urn:btih:{hash}&x.pe=127.0.0.1:{port}");
        let dir = t.sub("leech")?;
        let mut dl = spawn_download("shoal download", Path::new(&magnet), &dir, &[])?;
        finish_download(&mut dl, NAME, Duration::from_secs(60))
            .with_context(|| format!("libtorrent side:\n{}", seed.output_tail(20)))?;
        ensure_line(&dl, "metadata received: payload")?;
        compare_trees(&parent.join(NAME), &dir.join(NAME))?;
        seed.terminate()?;
        Ok(())
    })
}

#[test]
fn libtorrent_fetches_metadata_from_shoal() -> Result<()> {
    if !have_libtorrent("interop magnet to libtorrent") {
        return Ok(());
    }
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("magnet-to-lt")?;
        let (parent, torrent, hash) = payload(&t)?;
        let seed = start_seed(&torrent, &parent, NAME, &["--bind-ip", "127.0.0.1"])?;
        let dir = t.sub("lt-leech")?;
        let magnet = format!("magnet:?xt=urn:btih:{hash}");
        let mut leech = lt(
            "libtorrent fetch",
            &[
                "fetch",
                &magnet,
                dir.to_str().context("utf-8 path")?,
                &format!("127.0.0.1:{}", seed.port),
            ],
            t.path(),
        )?;
        leech.wait_for_line(None, Duration::from_secs(30), |l| {
            l.trim() == format!("metadata: {NAME}")
        })?;
        leech.wait_success(Duration::from_secs(60))?;
        compare_trees(&parent.join(NAME), &dir.join(NAME))?;
        drop(seed);
        Ok(())
    })
}

fn ensure_line(p: &Proc, line: &str) -> Result<()> {
    anyhow::ensure!(
        p.output(Stream::Stdout).lines().any(|l| l.trim() == line),
        "{}: no line `{line}`\n{}",
        p.name(),
        p.output_tail(20)
    );
    Ok(())
}
