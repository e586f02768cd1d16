//! IPv6 on `::1`: `shoal seed` and `shoal download` bound to `::1` transfer a torrent;
//! against libtorrent (Debian's python3-libtorrent) listening on `[::1]`, both ways
//! (Shoal downloads from a libtorrent seeder; libtorrent fetches a bare magnet's
//! metadata and data from `shoal seed`). Files compared byte for byte.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use common::*;

const NAME: &str = "payload6";

fn have_ipv6_and_libtorrent(test: &str) -> bool {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        common::libtorrent::skip(&format!("SKIPPED {test}: no ::1 on this host"));
        return false;
    }
    common::libtorrent::have_libtorrent(test)
}

fn lt(name: &str, args: &[&str], cwd: &Path) -> Result<Proc> {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/drivers/lt_magnet.py"))
        .args(args)
        .env("LT_LISTEN", "[::1]:0")
        .current_dir(cwd);
    Proc::spawn_command(name, cmd)
}

fn payload(t: &TestDir) -> Result<(PathBuf, PathBuf, String)> {
    let parent = t.sub("seed")?;
    let data = parent.join(NAME);
    make_files(
        &data,
        &[("a.bin", 2 * 1024 * 1024 + 17), ("b.bin", 300_003)],
        66,
    )?;
    let torrent = t.path().join("p6.torrent");
    let out = run_shoal(
        &[
            "create".as_ref(),
            data.as_os_str(),
            "-o".as_ref(),
            torrent.as_os_str(),
        ],
        t.path(),
        Duration::from_secs(60),
    )?;
    let hash = field(&out, "info hash: ")?.trim().to_string();
    Ok((parent, torrent, hash))
}

#[test]
fn shoal_to_shoal_and_libtorrent_both_ways_over_ipv6_loopback() -> Result<()> {
    if !have_ipv6_and_libtorrent("ipv6") {
        return Ok(());
    }
    with_timeout(Duration::from_secs(150), || {
        let t = TestDir::new("ipv6")?;
        let (parent, torrent, hash) = payload(&t)?;

        // Shoal to Shoal.
        let seed = start_seed(&torrent, &parent, NAME, &["--bind-ip", "::1"])?;
        let peer = format!("[::1]:{}", seed.port);
        let dir = t.sub("shoal-leech")?;
        let mut dl = spawn_download(
            "shoal download",
            &torrent,
            &dir,
            &["--bind-ip", "::1", "--peer", &peer],
        )?;
        finish_download(&mut dl, NAME, Duration::from_secs(60))?;
        compare_trees(&parent.join(NAME), &dir.join(NAME))?;

        // libtorrent fetches a bare magnet from shoal seed over ::1.
        let lt_dir = t.sub("lt-leech")?;
        let magnet = format!("magnet:?xt=urn:btih:{hash}");
        let mut leech = lt(
            "libtorrent fetch",
            &["fetch", &magnet, lt_dir.to_str().context("utf-8")?, &peer],
            t.path(),
        )?;
        leech.wait_success(Duration::from_secs(60))?;
        compare_trees(&parent.join(NAME), &lt_dir.join(NAME))?;
        drop(seed);

        // Shoal downloads from a libtorrent seeder on [::1].
        let mut lt_seed = lt(
            "libtorrent seed",
            &[
                "seed",
                torrent.to_str().context("utf-8")?,
                parent.to_str().context("utf-8")?,
            ],
            t.path(),
        )?;
        let port = parse_port(&lt_seed.wait_for_prefix("peer port: ", Duration::from_secs(20))?)?;
        lt_seed.wait_for_line(None, Duration::from_secs(30), |l| l.trim() == "seeding")?;
        let dir = t.sub("from-lt")?;
        let lt_peer = format!("[::1]:{port}");
        let mut dl = spawn_download(
            "shoal download",
            &torrent,
            &dir,
            &["--bind-ip", "::1", "--peer", &lt_peer],
        )?;
        finish_download(&mut dl, NAME, Duration::from_secs(60))
            .with_context(|| format!("libtorrent side:\n{}", lt_seed.output_tail(20)))?;
        compare_trees(&parent.join(NAME), &dir.join(NAME))?;
        lt_seed.terminate()?;
        Ok(())
    })
}
