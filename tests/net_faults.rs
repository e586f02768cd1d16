//! Network faults between hosts: four network namespaces made by the test (tracker 10.202.0.1,
//! seeder .2, leecher1 .3, leecher2 .4 on one /24), each with its own `shoal` process
//! (`ip netns exec`), joined by a switch:
//!
//! - a Linux bridge in a fifth "switch" namespace, each host on it through a veth pair
//!   (`eth0` in the host, `pN` on the bridge), for the link cut and the tracker restart;
//! - for the lossy, slow link: `tc qdisc add dev eth0 root netem delay 50ms loss 1%` on
//!   every host's `eth0`, or, where the kernel has no netem (`sch_netem`), the same
//!   impairment in userspace: a TUN device per host and the test process as the switch
//!   (`net_faults/emu.rs`). The test prints which one it used.
//!
//! Cases: leecher1's link cut mid-transfer and restored (both leechers end byte-identical);
//! the tracker killed (SIGKILL) mid-transfer and restarted on the same address, port and
//! data dir (a leecher started after the restart finds the seeder); a 16 MiB download over
//! the impaired link, Shoal to Shoal, then libtorrent to libtorrent (Debian's
//! python3-libtorrent, `bench/drivers/lt_driver.py`), each printing
//! `netem throughput: X MB/s`. Throughput is a measurement, never asserted.
//!
//! `SHOAL_NETEM_CC=reno` (a namespace may only pick one of `net.ipv4.tcp_allowed_congestion_control`) sets
//! the hosts' TCP congestion control for the netem case; otherwise they keep the
//! machine's default, which the test prints with the figures.
//!
//! Needs root, `ip` (and `tc` for real netem); without them the tests print why and pass,
//! unless `SHOAL_INTEROP_REQUIRED=1`, which makes that a failure. Every namespace (and so
//! every link) is deleted on drop, also when a test fails.

mod common;
#[path = "net_faults/emu.rs"]
mod emu;

use anyhow::{ensure, Context, Result};
use common::netns::{skip_or_fail, unique_suffix, Netns};
use common::*;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

const DEV: &str = "eth0";
const PIECE: u32 = 256 * 1024;
/// Short, so announces come often; failed ones back off from 15 s regardless.
const INTERVAL: &str = "10";
const NAME: &str = "payload";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Host {
    Tracker,
    Seeder,
    Leecher1,
    Leecher2,
}

const HOSTS: [Host; 4] = [Host::Tracker, Host::Seeder, Host::Leecher1, Host::Leecher2];

impl Host {
    fn index(self) -> usize {
        self as usize
    }

    fn octets(self) -> [u8; 4] {
        [10, 202, 0, self.index() as u8 + 1]
    }

    fn ip(self) -> String {
        let [a, b, c, d] = self.octets();
        format!("{a}.{b}.{c}.{d}")
    }

    fn role(self) -> &'static str {
        match self {
            Host::Tracker => "tr",
            Host::Seeder => "sd",
            Host::Leecher1 => "l1",
            Host::Leecher2 => "l2",
        }
    }
}

/// The four hosts and what joins them. Fields drop in order: the userspace switch (its TUN
/// devices) first, then the hosts, then the switch namespace.
struct Lan {
    emulated: Option<emu::Switch>,
    hosts: Vec<Netns>,
    _switch: Option<Netns>,
}

impl Lan {
    /// Hosts on a bridge through veth pairs, or `Ok(None)` when this machine cannot (skip).
    fn bridged(test: &str) -> Result<Option<Lan>> {
        let id = unique_suffix();
        let Some(switch) = Netns::add(test, &format!("shoal-nf-sw-{id}"))? else {
            return Ok(None);
        };
        let mut hosts = Vec::new();
        for h in HOSTS {
            hosts.push(Netns::add_more(&format!("shoal-nf-{}-{id}", h.role()))?);
        }
        switch.ip(&["link", "add", "br0", "type", "bridge"])?;
        switch.ip(&["link", "set", "br0", "up"])?;
        for h in HOSTS {
            let ns = &hosts[h.index()];
            let port = format!("p{}", h.index() + 1);
            common::netns::ip(&[
                "link",
                "add",
                DEV,
                "netns",
                ns.name(),
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                switch.name(),
            ])?;
            switch.ip(&["link", "set", &port, "master", "br0"])?;
            switch.ip(&["link", "set", &port, "up"])?;
            ns.ip(&["addr", "add", &format!("{}/24", h.ip()), "dev", DEV])?;
            ns.ip(&["link", "set", DEV, "up"])?;
            ns.ip(&["link", "set", "lo", "up"])?;
        }
        Ok(Some(Lan {
            emulated: None,
            hosts,
            _switch: Some(switch),
        }))
    }

    /// Hosts on TUN devices switched by this process under `imp` (see `net_faults/emu.rs`).
    fn emulated(test: &str, imp: emu::Impairment) -> Result<Option<Lan>> {
        let id = unique_suffix();
        let mut hosts = Vec::new();
        for h in HOSTS {
            let name = format!("shoal-nf-{}-{id}", h.role());
            let ns = if hosts.is_empty() {
                match Netns::add(test, &name)? {
                    Some(ns) => ns,
                    None => return Ok(None),
                }
            } else {
                Netns::add_more(&name)?
            };
            hosts.push(ns);
        }
        let mut lan = Lan {
            emulated: None,
            hosts,
            _switch: None,
        };
        let pairs: Vec<(&Netns, [u8; 4])> =
            HOSTS.iter().map(|h| (lan.ns(*h), h.octets())).collect();
        let switch = emu::Switch::start(&pairs, DEV, imp, 0x5eed)?;
        lan.emulated = Some(switch);
        Ok(Some(lan))
    }

    fn ns(&self, h: Host) -> &Netns {
        &self.hosts[h.index()]
    }

    /// `shoal ARGS` on host `h`.
    fn shoal(&self, h: Host, name: &str, args: &[&OsStr], cwd: &Path) -> Result<Proc> {
        self.ns(h).shoal(name, args, cwd, &[])
    }

    /// `shoal tracker --bind 10.202.0.1:PORT --interval 10 [--data-dir DIR]` with the tracker
    /// crate's debug lines ("swarms saved", "swarms restored"); returns it and its port.
    fn tracker(&self, cwd: &Path, port: u16, data: Option<&Path>) -> Result<(Proc, u16)> {
        let bind = format!("{}:{port}", Host::Tracker.ip());
        let mut args: Vec<&OsStr> = vec![
            "tracker".as_ref(),
            "--bind".as_ref(),
            bind.as_ref(),
            "--interval".as_ref(),
            INTERVAL.as_ref(),
        ];
        if let Some(d) = data {
            args.extend(["--data-dir".as_ref(), d.as_os_str()]);
        }
        let mut p = self.ns(Host::Tracker).shoal(
            "shoal tracker",
            &args,
            cwd,
            &[("SHOAL_LOG", "shoal_tracker=debug")],
        )?;
        let url = p.wait_for_prefix("tracker: ", READY)?;
        let prefix = format!("http://{}:", Host::Tracker.ip());
        let got = url
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix("/announce"))
            .with_context(|| format!("unexpected tracker URL {url:?}"))?;
        Ok((p, parse_port(got)?))
    }

    /// `shoal seed TORRENT --dir DIR --port 0 --bind-ip 10.202.0.2 [extra]`, until it seeds.
    fn seed(&self, torrent: &Path, dir: &Path, extra: &[&str]) -> Result<Proc> {
        let ip = Host::Seeder.ip();
        let mut args: Vec<&OsStr> = vec![
            "seed".as_ref(),
            torrent.as_os_str(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--port".as_ref(),
            "0".as_ref(),
            "--bind-ip".as_ref(),
            ip.as_ref(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        let mut p = self.shoal(Host::Seeder, "shoal seed", &args, dir)?;
        let seeding = format!("seeding {NAME}");
        p.wait_for_line(Some(Stream::Stdout), READY, |l| l.trim() == seeding)?;
        Ok(p)
    }

    /// `shoal download TORRENT --dir DIR --port 0 --bind-ip IP` on `h` (does not wait).
    fn download(&self, h: Host, torrent: &Path, dir: &Path) -> Result<Proc> {
        let ip = h.ip();
        let args: [&OsStr; 8] = [
            "download".as_ref(),
            torrent.as_os_str(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--port".as_ref(),
            "0".as_ref(),
            "--bind-ip".as_ref(),
            ip.as_ref(),
        ];
        self.shoal(h, &format!("shoal download on {}", h.role()), &args, dir)
    }
}

/// `announce URL` of the tracker at `port`.
fn announce_url(port: u16) -> String {
    format!("http://{}:{port}/announce", Host::Tracker.ip())
}

/// Seeded data under `TMP/seed/NAME` and its torrent; returns (data dir, torrent).
fn payload(t: &TestDir, files: &[(&str, u64)], seed: u64, port: u16) -> Result<(PathBuf, PathBuf)> {
    let data = t.sub(&format!("seed/{NAME}"))?;
    make_files(&data, files, seed)?;
    let torrent = t.path().join(format!("{NAME}.torrent"));
    create_torrent(&data, &announce_url(port), &torrent, PIECE)?;
    Ok((data, torrent))
}

/// True once `p` printed `complete: NAME`.
fn completed(p: &Proc) -> bool {
    let done = format!("complete: {NAME}");
    p.output(Stream::Stdout).lines().any(|l| l.trim() == done)
}

/// 20 MiB and a bit, two files: at 1-2 MiB/s from the seeder, long enough for a fault.
const FAULT_FILES: &[(&str, u64)] = &[("a.bin", 20 * 1024 * 1024 + 12_345), ("b/c.bin", 1_000_001)];

#[test]
fn a_cut_link_is_restored_and_both_leechers_complete() -> Result<()> {
    with_timeout(Duration::from_secs(150), || {
        let test = "a_cut_link_is_restored_and_both_leechers_complete";
        let started = Instant::now();
        let Some(lan) = Lan::bridged(test)? else {
            return Ok(());
        };
        let t = TestDir::new("netfaults-cut")?;
        let (_tracker, port) = lan.tracker(t.path(), 0, None)?;
        let (data, torrent) = payload(&t, FAULT_FILES, 21, port)?;
        let _seeder = lan.seed(&torrent, &t.sub("seed")?, &["--max-up", "2MiB"])?;
        let (d1, d2) = (t.sub("l1")?, t.sub("l2")?);
        let mut l1 = lan.download(Host::Leecher1, &torrent, &d1)?;
        let mut l2 = lan.download(Host::Leecher2, &torrent, &d2)?;
        l1.wait_for_line(Some(Stream::Stdout), Duration::from_secs(60), |l| {
            l == "first piece verified"
        })?;
        thread::sleep(Duration::from_secs(2));
        ensure!(!completed(&l1), "leecher1 finished before the cut");
        let l1_ns = lan.ns(Host::Leecher1);
        let cut = Instant::now();
        l1_ns.ip(&["link", "set", DEV, "down"])?;
        eprintln!("{test}: leecher1's {DEV} down");
        thread::sleep(Duration::from_secs(6));
        ensure!(!completed(&l1), "leecher1 completed with its link down");
        l1_ns.ip(&["link", "set", DEV, "up"])?;
        eprintln!("{test}: leecher1's {DEV} up after {:?}", cut.elapsed());
        finish_download(&mut l1, NAME, TRANSFER)?;
        let l1_done = cut.elapsed();
        finish_download(&mut l2, NAME, TRANSFER)?;
        compare_trees(&data, &d1.join(NAME))?;
        compare_trees(&data, &d2.join(NAME))?;
        eprintln!(
            "{test}: leecher1 completed {l1_done:?} after the cut; test took {:?}",
            started.elapsed()
        );
        Ok(())
    })
}

#[test]
fn a_killed_tracker_is_restarted_and_a_new_leecher_finds_the_seeder() -> Result<()> {
    with_timeout(Duration::from_secs(150), || {
        let test = "a_killed_tracker_is_restarted_and_a_new_leecher_finds_the_seeder";
        let started = Instant::now();
        let Some(lan) = Lan::bridged(test)? else {
            return Ok(());
        };
        let t = TestDir::new("netfaults-tracker")?;
        let tracker_data = t.path().join("tracker-data");
        let (mut tracker, port) = lan.tracker(t.path(), 0, Some(&tracker_data))?;
        let (data, torrent) = payload(&t, FAULT_FILES, 22, port)?;
        let _seeder = lan.seed(&torrent, &t.sub("seed")?, &["--max-up", "1MiB"])?;
        let (d1, d2) = (t.sub("l1")?, t.sub("l2")?);
        let mut l1 = lan.download(Host::Leecher1, &torrent, &d1)?;
        l1.wait_for_line(Some(Stream::Stdout), Duration::from_secs(60), |l| {
            l == "first piece verified"
        })?;
        // SIGKILL runs no shutdown save: wait for a periodic one holding both peers.
        tracker.wait_for_line(Some(Stream::Stderr), Duration::from_secs(20), |l| {
            l.contains("swarms saved") && l.contains("peers=2")
        })?;
        ensure!(
            !completed(&l1),
            "leecher1 finished before the tracker was killed"
        );
        tracker.kill();
        let killed = Instant::now();
        eprintln!("{test}: tracker killed");
        thread::sleep(Duration::from_secs(2));
        let (mut tracker, again) = lan.tracker(t.path(), port, Some(&tracker_data))?;
        ensure!(again == port, "restarted on port {again}, not {port}");
        tracker.wait_for_line(Some(Stream::Stderr), READY, |l| {
            l.contains("swarms restored")
        })?;
        eprintln!("{test}: tracker restarted after {:?}", killed.elapsed());
        ensure!(
            !completed(&l1),
            "leecher1 finished while the tracker was down"
        );
        let l2_start = Instant::now();
        let mut l2 = lan.download(Host::Leecher2, &torrent, &d2)?;
        finish_download(&mut l2, NAME, TRANSFER)?;
        let l2_took = l2_start.elapsed();
        finish_download(&mut l1, NAME, TRANSFER)?;
        compare_trees(&data, &d1.join(NAME))?;
        compare_trees(&data, &d2.join(NAME))?;
        eprintln!(
            "{test}: leecher2 (started after the restart) took {l2_took:?}; test took {:?}",
            started.elapsed()
        );
        tracker.terminate()?;
        tracker.wait_success(Duration::from_secs(20))?;
        Ok(())
    })
}

/// The impairment of the issue: `netem delay 50ms loss 1%` on every host's link.
const NETEM: emu::Impairment = emu::Impairment {
    delay: Duration::from_millis(50),
    loss: 0.01,
};
const NETEM_SIZE: u64 = 16 * 1024 * 1024;

/// The bridged LAN with real netem on every host's `eth0`, or the emulated one when this
/// kernel has no netem (or there is no `tc`); says which.
fn impaired_lan(test: &str) -> Result<Option<(Lan, &'static str)>> {
    if which("tc").is_some() {
        let Some(lan) = Lan::bridged(test)? else {
            return Ok(None);
        };
        let mut ok = true;
        for h in HOSTS {
            let args = [
                "qdisc", "add", "dev", DEV, "root", "netem", "delay", "50ms", "loss", "1%",
            ];
            if let Err(e) = lan.ns(h).run("tc", &args) {
                eprintln!("{test}: no tc netem here ({e:#}); emulating it over TUN devices");
                ok = false;
                break;
            }
        }
        if ok {
            return Ok(Some((
                lan,
                "tc netem delay 50ms loss 1% on each host's veth",
            )));
        }
    } else {
        eprintln!("{test}: no tc on PATH; emulating netem over TUN devices");
    }
    Ok(Lan::emulated(test, NETEM)?.map(|lan| {
        (
            lan,
            "userspace netem (no sch_netem in this kernel): 50 ms one way, 1% loss per packet, over TUN devices",
        )
    }))
}

/// How long a TCP connect to `addr` takes from inside `ns` (one round trip).
fn connect_time(ns: &Netns, addr: &str) -> Result<Duration> {
    let addr: std::net::SocketAddr = addr.parse()?;
    thread::scope(|s| {
        s.spawn(|| -> Result<Duration> {
            ns.enter_on_this_thread()?;
            let t0 = Instant::now();
            let _c = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
            Ok(t0.elapsed())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("connect thread panicked"))?
    })
}

/// `net.ipv4.tcp_congestion_control` inside `ns` (the figures depend on it: BBR barely
/// slows down for random loss, CUBIC does).
fn congestion_control(ns: &Netns) -> String {
    ns.command("cat")
        .arg("/proc/sys/net/ipv4/tcp_congestion_control")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Time from `t0` (the leecher's spawn) to its `complete: NAME` line: what follows (tracker
/// announces, shutdown, the exit) is not the transfer's.
fn until_complete(p: &mut Proc, t0: Instant) -> Result<Duration> {
    let done = format!("complete: {NAME}");
    p.wait_for_line(Some(Stream::Stdout), TRANSFER, |l| l.trim() == done)?;
    Ok(t0.elapsed())
}

fn throughput_line(who: &str, bytes: u64, took: Duration, how: &str) -> String {
    let mbps = bytes as f64 / took.as_secs_f64() / 1e6;
    format!(
        "netem throughput: {mbps:.2} MB/s ({who}: {bytes} bytes in {:.1} s, spawn to `complete:`; {how})",
        took.as_secs_f64()
    )
}

/// `/usr/bin/python3` with libtorrent, or why not.
fn libtorrent_python() -> Result<PathBuf, String> {
    let py = PathBuf::from("/usr/bin/python3");
    if !py.is_file() {
        return Err("/usr/bin/python3 not found".into());
    }
    match Command::new(&py).args(["-c", "import libtorrent"]).output() {
        Ok(o) if o.status.success() => Ok(py),
        Ok(o) => Err(format!(
            "python3-libtorrent missing: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run /usr/bin/python3: {e}")),
    }
}

/// `lt_driver.py MODE TORRENT SAVE --bind IP` on host `h`.
fn lt_driver(
    lan: &Lan,
    h: Host,
    py: &Path,
    mode: &str,
    torrent: &Path,
    save: &Path,
) -> Result<Proc> {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/drivers/lt_driver.py");
    let mut cmd = lan.ns(h).command(py);
    cmd.arg(&driver)
        .args([mode.as_ref(), torrent.as_os_str(), save.as_os_str()])
        .args(["--bind", &h.ip()])
        .current_dir(save);
    Proc::spawn_command(&format!("libtorrent {mode} on {}", h.role()), cmd)
}

#[test]
fn a_download_over_a_slow_lossy_link_completes() -> Result<()> {
    with_timeout(Duration::from_secs(230), || {
        let test = "a_download_over_a_slow_lossy_link_completes";
        let started = Instant::now();
        let Some((lan, how)) = impaired_lan(test)? else {
            return Ok(());
        };
        if let Some(cc) = std::env::var_os("SHOAL_NETEM_CC") {
            let cc = cc.to_string_lossy();
            for h in HOSTS {
                let knob = format!("net.ipv4.tcp_congestion_control={cc}");
                lan.ns(h).run("sysctl", &["-q", "-w", &knob])?;
            }
        }
        let t = TestDir::new("netfaults-netem")?;
        let (_tracker, port) = lan.tracker(t.path(), 0, None)?;
        // What the link does, seen from the seeder: a TCP connect takes one round trip.
        let rtt = connect_time(
            lan.ns(Host::Seeder),
            &format!("{}:{port}", Host::Tracker.ip()),
        )?;
        let cc = congestion_control(lan.ns(Host::Seeder));
        let how = format!("{how}; TCP connect seeder->tracker {rtt:.0?}; congestion control {cc}");
        println!("{test}: {how}");
        let how = how.as_str();

        // Shoal seeder -> Shoal leecher.
        let (data, torrent) = payload(&t, &[("a.bin", NETEM_SIZE)], 31, port)?;
        let mut seeder = lan.seed(&torrent, &t.sub("seed")?, &[])?;
        let dl = t.sub("l1")?;
        let t0 = Instant::now();
        let mut l1 = lan.download(Host::Leecher1, &torrent, &dl)?;
        let shoal_took = until_complete(&mut l1, t0)?;
        finish_download(&mut l1, NAME, QUICK)?;
        compare_trees(&data, &dl.join(NAME))?;
        let line = throughput_line("shoal", NETEM_SIZE, shoal_took, how);
        println!("{line}");
        seeder.terminate()?;
        seeder.wait_success(Duration::from_secs(20))?;

        // libtorrent seeder -> libtorrent leecher, other bytes (another info-hash), same size.
        let py = match libtorrent_python() {
            Ok(py) => py,
            Err(why) => {
                skip_or_fail(&format!("{test} (libtorrent part)"), &why);
                return Ok(());
            }
        };
        let t2 = TestDir::new("netfaults-netem-lt")?;
        let (lt_data, lt_torrent) = payload(&t2, &[("a.bin", NETEM_SIZE)], 32, port)?;
        let mut lt_seed = lt_driver(
            &lan,
            Host::Seeder,
            &py,
            "seed",
            &lt_torrent,
            &t2.sub("seed")?,
        )?;
        lt_seed.wait_for_line(Some(Stream::Stdout), READY, |l| {
            l.trim() == format!("seeding {NAME}")
        })?;
        let lt_dl = t2.sub("l1")?;
        let t0 = Instant::now();
        let mut lt_leech = lt_driver(&lan, Host::Leecher1, &py, "leech", &lt_torrent, &lt_dl)?;
        let lt_took = until_complete(&mut lt_leech, t0)?;
        finish_download(&mut lt_leech, NAME, QUICK)?;
        compare_trees(&lt_data, &lt_dl.join(NAME))?;
        let line = throughput_line("libtorrent", NETEM_SIZE, lt_took, how);
        println!("{line}");
        if let Some(sw) = &lan.emulated {
            println!("{test}: userspace switch: {}", sw.summary());
        }
        println!("{test}: took {:?}", started.elapsed());
        Ok(())
    })
}
