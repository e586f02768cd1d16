//! uTP (BEP 29) against libtorrent 2.0 (Debian's python3-libtorrent), both directions,
//! with libtorrent's TCP turned off (`enable_incoming_tcp` = `enable_outgoing_tcp` =
//! false, uTP on) and Shoal on its defaults (uTP on, tried before TCP):
//! - `shoal download` dials a libtorrent seeder (Shoal sends the SYN);
//! - a libtorrent leecher dials `shoal seed` (Shoal accepts over uTP).
//!
//! The torrent's tracker is a closed port, so the only connection is the one each test
//! asks for. libtorrent reports the connection as a uTP socket, and the data arrives
//! byte-identical.
//!
//! Skips with a message when python3 with libtorrent is missing, unless
//! `SHOAL_INTEROP_REQUIRED=1`.

mod common;

use anyhow::{Context, Result};
use common::libtorrent::have_libtorrent;
use common::*;
use std::path::Path;
use std::time::Duration;

const NAME: &str = "payload";
/// Nobody listens there: no tracker introduces the peers to each other.
const NO_TRACKER: &str = "http://127.0.0.1:1/announce";

/// A libtorrent session seeding or leeching one torrent over uTP only (the driver's
/// docstring says what it prints).
const DRIVER: &str = include_str!("drivers/lt_utp.py");

fn libtorrent(
    mode: &str,
    torrent: &Path,
    save: &Path,
    work: &Path,
    peers: &[String],
) -> Result<Proc> {
    common::libtorrent::run_driver("lt_utp.py", DRIVER, mode, torrent, save, work, peers)
}

/// Data and torrent for one test.
fn payload(t: &TestDir, seed_dir: &Path) -> Result<std::path::PathBuf> {
    let data = seed_dir.join(NAME);
    make_files(
        &data,
        &[("a.bin", 3 * 1024 * 1024 + 11), ("b/c.bin", 200_003)],
        41,
    )?;
    let torrent = t.path().join("payload.torrent");
    create_torrent(&data, NO_TRACKER, &torrent, 64 * 1024)?;
    Ok(torrent)
}

#[test]
fn shoal_downloads_from_libtorrent_over_utp() -> Result<()> {
    if !have_libtorrent("utp interop (shoal dials libtorrent)") {
        return Ok(());
    }
    with_timeout(Duration::from_secs(100), || {
        let t = TestDir::new("utp-lt-seed")?;
        let seed_dir = t.sub("lt")?;
        let torrent = payload(&t, &seed_dir)?;
        let mut lt = libtorrent("seed", &torrent, &seed_dir, t.path(), &[])?;
        let port = parse_port(&lt.wait_for_prefix("peer port: ", READY)?)?;
        lt.wait_for_prefix("seeding ", READY)?;

        let dir = t.sub("leech")?;
        let peer = format!("127.0.0.1:{port}");
        let mut leech = spawn_download("shoal download", &torrent, &dir, &["--peer", &peer])?;
        finish_download(&mut leech, NAME, Duration::from_secs(60))
            .with_context(|| format!("libtorrent side:\n{}", lt.output_tail(20)))?;
        lt.wait_for_prefix("utp peer: ", QUICK)?;
        compare_trees(&seed_dir.join(NAME), &dir.join(NAME))?;
        Ok(())
    })
}

#[test]
fn libtorrent_downloads_from_shoal_over_utp() -> Result<()> {
    if !have_libtorrent("utp interop (libtorrent dials shoal)") {
        return Ok(());
    }
    with_timeout(Duration::from_secs(100), || {
        let t = TestDir::new("utp-shoal-seed")?;
        let seed_dir = t.sub("seed")?;
        let torrent = payload(&t, &seed_dir)?;
        let seeder = start_seed(&torrent, &seed_dir, NAME, &[])?;

        let out = t.sub("lt")?;
        let peer = format!("127.0.0.1:{}", seeder.port);
        let mut lt = libtorrent("leech", &torrent, &out, t.path(), &[peer])?;
        lt.wait_success(TRANSFER)
            .with_context(|| format!("shoal side:\n{}", seeder.proc.output_tail(20)))?;
        let said = lt.output(Stream::Stdout);
        anyhow::ensure!(
            said.lines().any(|l| l.starts_with("utp peer: ")),
            "libtorrent did not report a uTP connection:\n{said}"
        );
        compare_trees(&seed_dir.join(NAME), &out.join(NAME))?;
        Ok(())
    })
}
