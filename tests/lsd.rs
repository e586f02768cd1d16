//! Local Service Discovery (BEP 14) between two hosts: network namespaces A and B that
//! the test creates (and always deletes), joined by a veth pair on 10.201.0.0/24. No
//! tracker and no `--peer`: the downloader in B must find the seeder in A by multicast
//! alone. A second test listens to the group in B and checks that a private torrent is
//! never announced while a public one is.
//!
//! Needs root (`ip netns`); without it the tests print why and pass, unless
//! `SHOAL_INTEROP_REQUIRED=1`, which makes that a failure. Multicast stays inside the
//! namespaces: the veth pair is their only link.

mod common;

use anyhow::{bail, ensure, Context, Result};
use common::netns::{Netns, Pair};
use common::*;
use shoal_proto::lsd;
use std::ffi::OsStr;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

const IP_A: &str = "10.201.0.1";
const IP_B: &str = "10.201.0.2";
const PIECE: &str = "32768";
/// The whole test, processes included.
const LIMIT: Duration = Duration::from_secs(60);

/// Two namespaces and the veth pair between them (deleted on drop), with a multicast
/// route in each.
struct Hosts {
    pair: Pair,
}

impl Hosts {
    /// Creates A and B, or `Ok(None)` after printing why this machine cannot (the test
    /// then passes as skipped, or fails under `SHOAL_INTEROP_REQUIRED=1`).
    fn create(test: &str) -> Result<Option<Hosts>> {
        let Some(pair) = Pair::create(test, "lsd", IP_A, IP_B)? else {
            return Ok(None);
        };
        for (ns, dev) in pair.devices() {
            // Shoal names the interface (IP_MULTICAST_IF); the route is for anything
            // that does not, such as a listener joined on 0.0.0.0.
            ns.ip(&["route", "add", "224.0.0.0/4", "dev", dev])?;
        }
        Ok(Some(Hosts { pair }))
    }

    /// `shoal ARGS` inside namespace `ns`, killed on drop like any [`Proc`].
    fn shoal(&self, ns: &Netns, name: &str, args: &[&OsStr], cwd: &Path) -> Result<Proc> {
        ns.shoal(name, args, cwd, &[("SHOAL_LOG", "shoal_engine::lsd=debug")])
    }
}

impl std::ops::Deref for Hosts {
    type Target = Pair;
    fn deref(&self) -> &Pair {
        &self.pair
    }
}

/// `shoal create DATA -o OUT` with no tracker; returns the info-hash.
fn create(data: &Path, out: &Path, private: bool) -> Result<String> {
    let mut args: Vec<&OsStr> = vec![
        "create".as_ref(),
        data.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--piece-size".as_ref(),
        PIECE.as_ref(),
    ];
    if private {
        args.push("--private".as_ref());
    }
    let stdout = run_shoal(&args, out.parent().context("no parent")?, QUICK)?;
    let info = run_shoal(&["info".as_ref(), out.as_os_str()], data, QUICK)?;
    ensure!(
        !info.contains("tracker:"),
        "a tracker-less torrent lists a tracker:\n{info}"
    );
    Ok(field(&stdout, "info hash: ")?.to_string())
}

/// `shoal seed TORRENT --dir DIR --port 0 --bind-ip 10.201.0.1 --lsd-interface 10.201.0.1`
/// in A; waits until it seeds.
fn seed_in_a(hosts: &Hosts, name: &str, torrent: &Path, dir: &Path) -> Result<Proc> {
    let args: [&OsStr; 10] = [
        "seed".as_ref(),
        torrent.as_os_str(),
        "--dir".as_ref(),
        dir.as_os_str(),
        "--port".as_ref(),
        "0".as_ref(),
        "--bind-ip".as_ref(),
        IP_A.as_ref(),
        "--lsd-interface".as_ref(),
        IP_A.as_ref(),
    ];
    let mut p = hosts.shoal(&hosts.a, &format!("seed {name} in A"), &args, dir)?;
    let seeding = format!("seeding {name}");
    p.wait_for_line(Some(Stream::Stdout), READY, |l| l.trim() == seeding)?;
    Ok(p)
}

#[test]
fn download_finds_the_seeder_by_lsd_alone() -> Result<()> {
    with_timeout(LIMIT + Duration::from_secs(20), || {
        let start = Instant::now();
        let Some(hosts) = Hosts::create("download_finds_the_seeder_by_lsd_alone")? else {
            return Ok(());
        };
        let t = TestDir::new("lsd-download")?;
        let data = t.sub("seed/payload")?;
        make_files(
            &data,
            &[("a.bin", 2 * 1024 * 1024 + 77), ("sub/b.bin", 40_000)],
            14,
        )?;
        let torrent = t.path().join("payload.torrent");
        create(&data, &torrent, false)?;
        let _seeder = seed_in_a(&hosts, "payload", &torrent, &t.sub("seed")?)?;
        let dl = t.sub("dl")?;
        let args: [&OsStr; 8] = [
            "download".as_ref(),
            torrent.as_os_str(),
            "--dir".as_ref(),
            dl.as_os_str(),
            "--bind-ip".as_ref(),
            IP_B.as_ref(),
            "--lsd-interface".as_ref(),
            IP_B.as_ref(),
        ];
        let mut down = hosts.shoal(&hosts.b, "download in B", &args, &dl)?;
        let left = LIMIT.saturating_sub(start.elapsed());
        finish_download(&mut down, "payload", left)?;
        compare_trees(&data, &dl.join("payload"))
    })
}

/// What a plain socket joined to the group in namespace B hears.
struct Listener {
    heard: mpsc::Receiver<lsd::Announce>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Result<()>>>,
}

impl Listener {
    /// Joins the group inside `ns` on a thread of its own: `setns` moves only the
    /// calling thread, and the socket stays in the namespace it was made in.
    fn start(ns: &str) -> Result<Listener> {
        let path = format!("/run/netns/{ns}");
        let (tx, heard) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || -> Result<()> {
            let socket = match joined_socket_in(&path) {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return Err(e);
                }
            };
            let mut buf = [0u8; 2048];
            while !stopped.load(Ordering::Relaxed) {
                // A read timeout, so the stop flag is seen.
                if let Ok((n, _)) = socket.recv_from(&mut buf) {
                    if let Ok(a) = lsd::parse_announce(&buf[..n]) {
                        let _ = tx.send(a);
                    }
                }
            }
            Ok(())
        });
        match ready.recv_timeout(READY) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("listener in {ns}: {e}"),
            Err(_) => bail!("listener in {ns} did not start"),
        }
        Ok(Listener {
            heard,
            stop,
            thread: Some(thread),
        })
    }

    /// Collects the info-hashes heard until `until` holds for them or `timeout` passes.
    fn collect(
        &self,
        seen: &mut Vec<String>,
        timeout: Duration,
        until: impl Fn(&[String]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !until(seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.heard.recv_timeout(left) {
                Ok(a) => seen.extend(a.info_hashes.iter().map(|h| h.to_hex())),
                Err(_) => return,
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn joined_socket_in(netns: &str) -> Result<UdpSocket> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(netns).with_context(|| format!("opening {netns}"))?;
    // SAFETY: setns on a valid namespace fd; it affects only this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns {netns}: {}", std::io::Error::last_os_error());
    }
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, lsd::PORT)).context("bind 6771")?;
    let iface: Ipv4Addr = IP_B.parse()?;
    socket
        .join_multicast_v4(&lsd::GROUP_V4, &iface)
        .context("join the LSD group")?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(socket)
}

#[test]
fn private_torrents_are_not_announced() -> Result<()> {
    with_timeout(LIMIT + Duration::from_secs(20), || {
        let Some(hosts) = Hosts::create("private_torrents_are_not_announced")? else {
            return Ok(());
        };
        let t = TestDir::new("lsd-private")?;
        let (pub_data, priv_data) = (t.sub("seed/open")?, t.sub("seed/closed")?);
        make_files(&pub_data, &[("x.bin", 100_000)], 1)?;
        make_files(&priv_data, &[("y.bin", 100_000)], 2)?;
        let pub_torrent = t.path().join("open.torrent");
        let priv_torrent = t.path().join("closed.torrent");
        let pub_hash = create(&pub_data, &pub_torrent, false)?;
        let priv_hash = create(&priv_data, &priv_torrent, true)?;
        let listener = Listener::start(hosts.b.name())?;
        let seed_dir = t.sub("seed")?;
        // The private one first: had it announced at its start, that would come before
        // the public one's.
        let _private = seed_in_a(&hosts, "closed", &priv_torrent, &seed_dir)?;
        let _public = seed_in_a(&hosts, "open", &pub_torrent, &seed_dir)?;
        let mut seen = Vec::new();
        listener.collect(&mut seen, Duration::from_secs(20), |s| {
            s.contains(&pub_hash)
        });
        ensure!(
            seen.contains(&pub_hash),
            "the public torrent's announce never reached B (heard {seen:?})"
        );
        listener.collect(&mut seen, Duration::from_secs(3), |_| false);
        ensure!(
            !seen.contains(&priv_hash),
            "the private torrent {priv_hash} was announced"
        );
        Ok(())
    })
}
