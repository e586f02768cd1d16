//! MSE/PE against Transmission 3.00 with encryption required on both sides, both ways,
//! between two hosts: network namespaces A (Transmission) and B (Shoal) that the test
//! creates, joined by a veth pair on 10.203.0.0/24. Transmission 3.00 never dials
//! loopback peers, which is why this runs between namespaces and not on 127.0.0.1.
//!
//! Transmission's `encryption: 2` refuses plaintext peers and Shoal's `--encryption
//! require` does too, so a completed, byte-identical transfer is one that ran under MSE;
//! Transmission's peer list is also checked for its `E` (encrypted) flag while the
//! transfer runs, and Shoal's log for the RC4 connection.
//!
//! Needs root (`ip netns`) and Debian's `transmission-daemon`/`transmission-remote`;
//! without them the test prints why and passes, unless `SHOAL_INTEROP_REQUIRED=1`.

mod common;

use anyhow::{ensure, Context, Result};
use common::netns::Pair;
use common::transmission::{Options, Transmission};
use common::*;
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

const IP_A: &str = "10.203.0.1";
const IP_B: &str = "10.203.0.2";
const NAME: &str = "payload";
/// The whole test, processes included.
const LIMIT: Duration = Duration::from_secs(150);
/// Shoal logs each MSE handshake's outcome at debug level.
const LOG: (&str, &str) = ("SHOAL_LOG", "shoal_engine::peer::mse=debug");

/// `shoal tracker` in B on `IP_B`; returns it and its announce URL.
fn tracker_in_b(hosts: &Pair, cwd: &Path) -> Result<(Proc, String)> {
    let bind = format!("{IP_B}:0");
    let args: [&OsStr; 5] = [
        "tracker".as_ref(),
        "--bind".as_ref(),
        bind.as_ref(),
        "--interval".as_ref(),
        "2".as_ref(),
    ];
    let mut p = hosts.b.shoal("shoal tracker in B", &args, cwd, &[])?;
    let url = p.wait_for_prefix("tracker: ", READY)?;
    Ok((p, url))
}

/// Polls Transmission's peer list for `hash` until a peer shows the `E` flag, or the
/// transfer ends first (`done` says so); returns whether the flag was seen.
fn saw_encrypted_peer(tr: &Transmission, hash: &str, done: impl Fn() -> bool) -> bool {
    let until = Instant::now() + TRANSFER;
    while Instant::now() < until && !done() {
        let peers = tr.remote(&["-t", hash, "-ip"]).unwrap_or_default();
        // Columns: Address, Flags, Done, Down, Up, %, Client.
        if peers
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1))
            .any(|flags| flags.contains('E'))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn transmission_with_encryption_required_both_ways() -> Result<()> {
    let test = "transmission_with_encryption_required_both_ways";
    if !have_tools(test, &["transmission-daemon", "transmission-remote"]) {
        return Ok(());
    }
    with_timeout(LIMIT, move || {
        let Some(hosts) = Pair::create(test, "trmse", IP_A, IP_B)? else {
            return Ok(());
        };
        let t = TestDir::new("mse-transmission")?;
        let (_tracker, url) = tracker_in_b(&hosts, t.path())?;
        let tr = Transmission::start_with(
            &t.sub("tr")?,
            &Options {
                netns: Some(hosts.a.name()),
                ip: IP_A,
                encryption: 2,
            },
        )?;

        // 1. Shoal in B downloads from Transmission in A.
        let tr_data = t.sub("tr/seed")?;
        let data = tr_data.join(NAME);
        // Small: Transmission seeds at a few MB/s.
        make_files(&data, &[("a.bin", 3 << 20), ("b.bin", 300_001)], 31)?;
        let torrent = t.path().join("from-tr.torrent");
        let hash = create_torrent(&data, &url, &torrent, 64 * 1024)?;
        tr.seed(&torrent, &tr_data, &hash)?;
        let dir = t.sub("shoal-dl")?;
        let peer = format!("{IP_A}:{}", tr.peer_port);
        let args: [&OsStr; 12] = [
            "download".as_ref(),
            torrent.as_os_str(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--bind-ip".as_ref(),
            IP_B.as_ref(),
            "--encryption".as_ref(),
            "require".as_ref(),
            "--peer".as_ref(),
            peer.as_ref(),
            "--utp".as_ref(),
            "false".as_ref(),
        ];
        let mut down = hosts.b.shoal("shoal download in B", &args, &dir, &[LOG])?;
        finish_download(&mut down, NAME, TRANSFER)
            .with_context(|| format!("transmission side:\n{}", tr.info(&hash)))?;
        compare_trees(&data, &dir.join(NAME))?;
        let log = down.output(Stream::Stderr);
        ensure!(
            log.contains("method=Rc4"),
            "shoal's log names no RC4 connection:\n{}",
            down.output_tail(40)
        );

        // 2. Transmission in A downloads from Shoal in B.
        let shoal_data = t.sub("shoal-seed")?.join(NAME);
        make_files(&shoal_data, &[("c.bin", 2 << 20), ("d.bin", 77_777)], 32)?;
        let torrent2 = t.path().join("from-shoal.torrent");
        let hash2 = create_torrent(&shoal_data, &url, &torrent2, 64 * 1024)?;
        let seed_dir = shoal_data.parent().context("no parent")?;
        let args: [&OsStr; 9] = [
            "seed".as_ref(),
            torrent2.as_os_str(),
            "--dir".as_ref(),
            seed_dir.as_os_str(),
            "--bind-ip".as_ref(),
            IP_B.as_ref(),
            "--encryption".as_ref(),
            "require".as_ref(),
            "--utp=false".as_ref(),
        ];
        let mut seeder = hosts.b.shoal("shoal seed in B", &args, seed_dir, &[LOG])?;
        let seeding = format!("seeding {NAME}");
        seeder.wait_for_line(Some(Stream::Stdout), READY, |l| l.trim() == seeding)?;
        let tr_dl = t.sub("tr-dl")?;
        let added = tr.remote(&[
            "-a",
            torrent2.to_str().context("path not UTF-8")?,
            "-w",
            tr_dl.to_str().context("path not UTF-8")?,
        ])?;
        ensure!(added.contains("success"), "adding torrent: {added}");
        let complete = || {
            tr.remote(&["-t", &hash2, "-i"])
                .is_ok_and(|i| i.contains("Percent Done: 100%"))
        };
        let encrypted = saw_encrypted_peer(&tr, &hash2, complete);
        poll("transmission to complete the download", TRANSFER, || {
            Ok(complete().then_some(()))
        })
        .with_context(|| format!("transmission side:\n{}", tr.info(&hash2)))?;
        compare_trees(&shoal_data, &tr_dl.join(NAME))?;
        // The transfer can end between two polls of the peer list; say so rather than
        // fail, since both sides refusing plaintext already proves encryption.
        if !encrypted {
            eprintln!("note: the transfer ended before transmission listed the peer");
        }
        let log = seeder.output(Stream::Stderr);
        ensure!(
            log.contains("method=Rc4"),
            "shoal seeder's log names no RC4 connection:\n{}",
            seeder.output_tail(40)
        );
        Ok(())
    })
}
