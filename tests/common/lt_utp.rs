//! The two uTP interop scenarios against a uTP-only libtorrent (`tests/drivers/lt_utp.py`:
//! TCP off both ways), shared by `utp_interop.rs` (IPv4, `127.0.0.1`) and `utp_ipv6.rs`
//! (`::1`). The torrent's tracker is a closed port, so the only connection is the one the
//! scenario asks for; libtorrent must report it as a uTP socket from the expected address,
//! and the data must arrive byte-identical.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use super::libtorrent::run_driver_env;
use super::*;

/// Nobody listens there: no tracker introduces the peers to each other.
const NO_TRACKER: &str = "http://127.0.0.1:1/announce";
/// A libtorrent session seeding or leeching one torrent over uTP only (the driver's
/// docstring says what it prints).
const DRIVER: &str = include_str!("../drivers/lt_utp.py");

/// Where the two ends meet.
#[derive(Debug, Clone, Copy)]
pub struct Loopback {
    /// The host part of a peer address: `127.0.0.1` or `[::1]`.
    pub host: &'static str,
    /// What libtorrent's `utp peer: ADDR` line starts with for a peer on that host.
    pub lt_peer_prefix: &'static str,
    /// libtorrent's listen address (`LT_LISTEN`), or its default (`0.0.0.0:0`).
    pub lt_listen: Option<&'static str>,
    /// The data's directory name and seed for the payload bytes.
    pub name: &'static str,
    pub seed: u64,
}

pub const IPV4: Loopback = Loopback {
    host: "127.0.0.1",
    lt_peer_prefix: "utp peer: 127.0.0.1:",
    lt_listen: None,
    name: "payload",
    seed: 41,
};

pub const IPV6: Loopback = Loopback {
    host: "[::1]",
    lt_peer_prefix: "utp peer: ::1:",
    lt_listen: Some("[::1]:0"),
    name: "payload6",
    seed: 42,
};

fn libtorrent(
    at: Loopback,
    mode: &str,
    torrent: &Path,
    save: &Path,
    work: &Path,
    peers: &[String],
) -> Result<Proc> {
    let env: Vec<(&str, &str)> = at.lt_listen.map(|l| ("LT_LISTEN", l)).into_iter().collect();
    run_driver_env("lt_utp.py", DRIVER, mode, torrent, save, work, peers, &env)
}

/// Data (a 3 MiB file and a small one in a folder) and its torrent, 64 KiB pieces.
fn payload(at: Loopback, t: &TestDir, seed_dir: &Path) -> Result<PathBuf> {
    let data = seed_dir.join(at.name);
    make_files(
        &data,
        &[("a.bin", 3 * 1024 * 1024 + 11), ("b/c.bin", 200_003)],
        at.seed,
    )?;
    let torrent = t.path().join(format!("{}.torrent", at.name));
    create_torrent(&data, NO_TRACKER, &torrent, 64 * 1024)?;
    Ok(torrent)
}

/// libtorrent's first `utp peer: ADDR` line must name the loopback of `at`.
fn ensure_utp_peer(at: Loopback, lt: &Proc) -> Result<()> {
    let said = lt.output(Stream::Stdout);
    let line = said.lines().find(|l| l.starts_with("utp peer: "));
    ensure!(
        line.is_some_and(|l| l.starts_with(at.lt_peer_prefix)),
        "libtorrent did not report a uTP peer on {}:\n{said}\n{}",
        at.host,
        lt.output(Stream::Stderr)
    );
    println!("libtorrent: {}", line.unwrap_or_default());
    Ok(())
}

/// `shoal download` dials a libtorrent seeder (Shoal sends the SYN).
pub fn shoal_dials_libtorrent(at: Loopback, tag: &'static str) -> Result<()> {
    with_timeout(Duration::from_secs(100), move || {
        let t = TestDir::new(&format!("{tag}-lt-seed"))?;
        let seed_dir = t.sub("lt")?;
        let torrent = payload(at, &t, &seed_dir)?;
        let mut lt = libtorrent(at, "seed", &torrent, &seed_dir, t.path(), &[])?;
        let port = parse_port(&lt.wait_for_prefix("peer port: ", READY)?)?;
        lt.wait_for_prefix("seeding ", READY)?;

        let dir = t.sub("leech")?;
        let peer = format!("{}:{port}", at.host);
        let mut leech = spawn_download("shoal download", &torrent, &dir, &["--peer", &peer])?;
        finish_download(&mut leech, at.name, Duration::from_secs(60))
            .with_context(|| format!("libtorrent side:\n{}", lt.output_tail(30)))?;
        lt.wait_for_prefix("utp peer: ", QUICK)?;
        ensure_utp_peer(at, &lt)?;
        compare_trees(&seed_dir.join(at.name), &dir.join(at.name))?;
        lt.terminate()?;
        Ok(())
    })
}

/// A libtorrent leecher dials `shoal seed` (Shoal accepts over uTP).
pub fn libtorrent_dials_shoal(at: Loopback, tag: &'static str) -> Result<()> {
    with_timeout(Duration::from_secs(150), move || {
        let t = TestDir::new(&format!("{tag}-shoal-seed"))?;
        let seed_dir = t.sub("seed")?;
        let torrent = payload(at, &t, &seed_dir)?;
        let seeder = start_seed(&torrent, &seed_dir, at.name, &[])?;

        let out = t.sub("lt")?;
        let peer = format!("{}:{}", at.host, seeder.port);
        let mut lt = libtorrent(at, "leech", &torrent, &out, t.path(), &[peer])?;
        lt.wait_success(TRANSFER).with_context(|| {
            format!(
                "shoal side:\n{}\nlibtorrent side:\n{}",
                seeder.proc.output_tail(20),
                lt.output_tail(30)
            )
        })?;
        ensure_utp_peer(at, &lt)?;
        compare_trees(&seed_dir.join(at.name), &out.join(at.name))?;
        Ok(())
    })
}
