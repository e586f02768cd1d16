//! uTP (BEP 29) over IPv6 on `::1`, with every Shoal on its defaults (bound to the
//! IPv4 wildcard: a dual-stack TCP listener, UDP on `0.0.0.0` and an IPv6-only UDP
//! socket on `[::]` beside it, same port number):
//! - two `shoal up` nodes: B is given A only as `[::1]:PORT` in a magnet's `x.pe`; B's
//!   API lists A with transport `utp` and family `ipv6`, A's lists B as an incoming
//!   `utp`/`ipv6` peer, and B's copy is byte-identical (A also lists the incoming TCP
//!   connection B fetched the metadata over: the magnet fetcher dials TCP only);
//! - libtorrent (Debian's python3-libtorrent) listening on `[::1]` with its TCP off
//!   both ways (uTP only), both directions: `shoal download` dials a libtorrent
//!   seeder, a libtorrent leecher dials `shoal seed`. libtorrent reports the
//!   connection as a uTP socket from `::1`.
//!
//! Skips with a message when `::1` or python3 with libtorrent is missing, unless
//! `SHOAL_INTEROP_REQUIRED=1`. The libtorrent driver prints its error and connection
//! alerts to stderr, which a failure's message includes. Like its IPv4 twin in
//! `utp_interop.rs`, libtorrent downloading from Shoal sometimes stalls (libtorrent's
//! uTP socket times out reading and reconnects, 10 s or more; the known flake of
//! issue 14), so nextest retries it (scripts/nextest.toml).

mod common;
mod nodeutil;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use common::libtorrent::{have_libtorrent, run_driver_env, skip};
use common::*;
use nodeutil::*;
use serde_json::{json, Value};

const NAME: &str = "payload6";
/// Nobody listens there: no tracker introduces the peers to each other.
const NO_TRACKER: &str = "http://127.0.0.1:1/announce";
const DRIVER: &str = include_str!("drivers/lt_utp.py");

fn have_ipv6(test: &str) -> bool {
    let ok = std::net::UdpSocket::bind("[::1]:0").is_ok()
        && std::net::TcpListener::bind("[::1]:0").is_ok();
    if !ok {
        skip(&format!("SKIPPED {test}: no ::1 on this host"));
    }
    ok
}

/// Adds the peers `node`'s API lists for torrent `id` to `seen`, as
/// `(addr, transport, family, incoming)`.
fn note_peers(node: &Node, id: &str, seen: &mut Vec<(String, String, String, bool)>) {
    let Ok(peers) = node.get(&format!("torrents/{id}/peers")) else {
        return;
    };
    let s = |p: &Value, k: &str| p[k].as_str().unwrap_or_default().to_string();
    for p in peers.as_array().into_iter().flatten() {
        let row = (
            s(p, "addr"),
            s(p, "transport"),
            s(p, "family"),
            p["incoming"] == true,
        );
        if !seen.contains(&row) {
            seen.push(row);
        }
    }
}

#[test]
fn shoal_nodes_talk_utp_over_ipv6_loopback() -> Result<()> {
    if !have_ipv6("utp ipv6 (shoal to shoal)") {
        return Ok(());
    }
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("utp6-nodes")?;
        let data = t.sub("a-files")?.join(NAME);
        make_files(
            &data,
            &[("x.bin", 3 * 1024 * 1024 + 5), ("y.bin", 77_777)],
            61,
        )?;
        let a = start_node("a", &t.sub("a-data")?, &t.sub("a-dl")?, &["--no-tracker"])?;
        // B downloads slowly enough (1 MiB/s for 3 MiB) for both peer lists to be read
        // while the two are connected.
        let b = start_node(
            "b",
            &t.sub("b-data")?,
            &t.sub("b-dl")?,
            &["--no-tracker", "--max-down", "1MiB"],
        )?;
        let id = a.share(&data, Duration::from_secs(60))?;
        let a_addr = format!("[::1]:{}", a.peer_port);
        let magnet = format!("magnet:?xt=urn:btih:{id}&x.pe={a_addr}");
        b.post("torrents", json!({ "magnet": magnet }))?;

        let (mut b_sees, mut a_sees) = (Vec::new(), Vec::new());
        let end = Instant::now() + Duration::from_secs(120);
        loop {
            note_peers(&b, &id, &mut b_sees);
            note_peers(&a, &id, &mut a_sees);
            if b.torrent(&id).is_ok_and(|s| s["state"] == "seeding") {
                break;
            }
            if Instant::now() > end {
                bail!(
                    "B not seeding; B saw {b_sees:?}, A saw {a_sees:?}\n{}\n{}",
                    b.proc.output_tail(30),
                    a.proc.output_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("B's API listed {b_sees:?}; A's listed {a_sees:?}");
        let utp6 = |r: &(String, String, String, bool)| r.1 == "utp" && r.2 == "ipv6";
        ensure!(
            b_sees.iter().any(|r| r.0 == a_addr && !r.3 && utp6(r)),
            "B lists A ({a_addr}) as an outgoing utp/ipv6 peer: {b_sees:?}"
        );
        ensure!(
            a_sees
                .iter()
                .any(|r| r.0.starts_with("[::1]:") && r.3 && utp6(r)),
            "A lists B as an incoming utp/ipv6 peer: {a_sees:?}"
        );
        compare_trees(&data, &t.path().join("b-dl").join(NAME))?;
        Ok(())
    })
}

/// libtorrent on `[::1]`, uTP only, seeding or leeching `torrent`.
fn libtorrent(
    mode: &str,
    torrent: &Path,
    save: &Path,
    work: &Path,
    peers: &[String],
) -> Result<Proc> {
    let env = [("LT_LISTEN", "[::1]:0")];
    run_driver_env("lt_utp.py", DRIVER, mode, torrent, save, work, peers, &env)
}

fn payload(t: &TestDir, seed_dir: &Path) -> Result<PathBuf> {
    let data = seed_dir.join(NAME);
    make_files(
        &data,
        &[("a.bin", 3 * 1024 * 1024 + 11), ("b/c.bin", 200_003)],
        42,
    )?;
    let torrent = t.path().join("payload6.torrent");
    create_torrent(&data, NO_TRACKER, &torrent, 64 * 1024)?;
    Ok(torrent)
}

/// libtorrent's `utp peer: ADDR` line must name `::1`.
fn ensure_utp_from_ipv6_loopback(lt: &Proc) -> Result<()> {
    let said = lt.output(Stream::Stdout);
    let line = said.lines().find(|l| l.starts_with("utp peer: "));
    ensure!(
        line.is_some_and(|l| l.starts_with("utp peer: ::1:")),
        "libtorrent did not report a uTP peer on ::1:\n{said}\n{}",
        lt.output(Stream::Stderr)
    );
    println!("libtorrent: {}", line.unwrap_or_default());
    Ok(())
}

#[test]
fn shoal_downloads_from_libtorrent_over_ipv6_utp() -> Result<()> {
    let test = "utp ipv6 interop (shoal dials libtorrent)";
    if !have_ipv6(test) || !have_libtorrent(test) {
        return Ok(());
    }
    with_timeout(Duration::from_secs(100), || {
        let t = TestDir::new("utp6-lt-seed")?;
        let seed_dir = t.sub("lt")?;
        let torrent = payload(&t, &seed_dir)?;
        let mut lt = libtorrent("seed", &torrent, &seed_dir, t.path(), &[])?;
        let port = parse_port(&lt.wait_for_prefix("peer port: ", READY)?)?;
        lt.wait_for_prefix("seeding ", READY)?;

        let dir = t.sub("leech")?;
        let peer = format!("[::1]:{port}");
        let mut leech = spawn_download("shoal download", &torrent, &dir, &["--peer", &peer])?;
        finish_download(&mut leech, NAME, Duration::from_secs(60))
            .with_context(|| format!("libtorrent side:\n{}", lt.output_tail(30)))?;
        lt.wait_for_prefix("utp peer: ", QUICK)?;
        ensure_utp_from_ipv6_loopback(&lt)?;
        compare_trees(&seed_dir.join(NAME), &dir.join(NAME))?;
        lt.terminate()?;
        Ok(())
    })
}

#[test]
fn libtorrent_downloads_from_shoal_over_ipv6_utp() -> Result<()> {
    let test = "utp ipv6 interop (libtorrent dials shoal)";
    if !have_ipv6(test) || !have_libtorrent(test) {
        return Ok(());
    }
    with_timeout(Duration::from_secs(150), || {
        let t = TestDir::new("utp6-shoal-seed")?;
        let seed_dir = t.sub("seed")?;
        let torrent = payload(&t, &seed_dir)?;
        let seeder = start_seed(&torrent, &seed_dir, NAME, &[])?;

        let out = t.sub("lt")?;
        let peer = format!("[::1]:{}", seeder.port);
        let mut lt = libtorrent("leech", &torrent, &out, t.path(), &[peer])?;
        lt.wait_success(TRANSFER).with_context(|| {
            format!(
                "shoal side:\n{}\nlibtorrent side:\n{}",
                seeder.proc.output_tail(20),
                lt.output_tail(30)
            )
        })?;
        ensure_utp_from_ipv6_loopback(&lt)?;
        compare_trees(&seed_dir.join(NAME), &out.join(NAME))?;
        Ok(())
    })
}
