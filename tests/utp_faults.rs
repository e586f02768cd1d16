//! uTP (BEP 29) over a poor link: two hosts in network namespaces (seeder 10.203.0.1,
//! leecher 10.203.0.2), the link between them 20 ms one way in each direction (a 40 ms
//! round trip) and 1% loss per packet in each direction, as `tc qdisc add dev eth0 root
//! netem delay 20ms loss 1%` on both hosts' links would make it.
//!
//! The link is always the userspace one of `net_faults/emu.rs` (a TUN device per host, the
//! test process as the switch applying delay and loss): it also drops every TCP packet
//! between the hosts ([`emu::Switch::block_tcp`]), which is what forces the peers onto
//! uTP. This machine's kernel has neither `sch_netem` nor `iptables`/`nft`, and Shoal has no
//! switch to turn TCP off; a dropped TCP SYN is what a firewall would do. Every transfer
//! must then carry at least the payload's size in UDP bytes through the switch (checked),
//! and libtorrent reports its peer on a uTP socket (checked).
//!
//! In one test, one after the other (so the figures do not share the CPU), the same
//! 16 MiB file:
//! 1. Shoal seeder -> Shoal leecher (`shoal download --peer`, uTP on by default);
//! 2. libtorrent -> libtorrent (Debian's python3-libtorrent, `bench/drivers/lt_driver.py
//!    --utp`: TCP off, uTP on);
//! 3. libtorrent seeder -> Shoal leecher.
//!
//! Each download must end byte-identical. The test prints
//! `utp impaired throughput: shoal X MB/s, libtorrent Y MB/s (ratio Z)` (and the mixed
//! figure): throughput is a measurement, never asserted.
//!
//! The torrent's tracker is a closed port: the only connection is the leecher's dial.
//! Needs root, `ip` and /dev/net/tun (and python3-libtorrent for parts 2 and 3); without
//! them the test prints why and passes, unless `SHOAL_INTEROP_REQUIRED=1`.

mod common;
#[path = "net_faults/emu.rs"]
mod emu;

use anyhow::{ensure, Result};
use common::libtorrent::{have_libtorrent, PYTHON};
use common::netns::{unique_suffix, Netns};
use common::*;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DEV: &str = "eth0";
const NAME: &str = "payload";
const SIZE: u64 = 16 * 1024 * 1024;
const PIECE: u32 = 256 * 1024;
/// Nobody listens there: no tracker introduces the peers to each other.
const NO_TRACKER: &str = "http://127.0.0.1:1/announce";
const SEEDER: [u8; 4] = [10, 203, 0, 1];
const LEECHER: [u8; 4] = [10, 203, 0, 2];
/// The impairment of the issue, applied to each packet as it leaves its host.
const IMPAIRMENT: emu::Impairment = emu::Impairment {
    delay: Duration::from_millis(20),
    loss: 0.01,
};
/// Time allowed for one 16 MiB download (at least 0.24 MB/s); three fit in nextest's 240 s.
const DOWNLOAD: Duration = Duration::from_secs(70);

fn ip([a, b, c, d]: [u8; 4]) -> String {
    format!("{a}.{b}.{c}.{d}")
}

/// The two hosts and the switch between them. Fields drop in order: the switch (its TUN
/// devices) before the namespaces.
struct Link {
    switch: emu::Switch,
    seeder: Netns,
    leecher: Netns,
}

impl Link {
    /// The impaired, TCP-blocking link, or `Ok(None)` when this machine cannot (skip).
    fn new(test: &str) -> Result<Option<Link>> {
        let id = unique_suffix();
        let Some(seeder) = Netns::add(test, &format!("shoal-uf-sd-{id}"))? else {
            return Ok(None);
        };
        let leecher = Netns::add_more(&format!("shoal-uf-l1-{id}"))?;
        let switch = emu::Switch::start(
            &[(&seeder, SEEDER), (&leecher, LEECHER)],
            DEV,
            IMPAIRMENT,
            0x07e5,
        )?;
        switch.block_tcp(true);
        Ok(Some(Link {
            switch,
            seeder,
            leecher,
        }))
    }

    /// `shoal seed TORRENT --dir DIR --port 0 --bind-ip SEEDER`, until it seeds; with its
    /// peer address.
    fn shoal_seed(&self, torrent: &Path, dir: &Path) -> Result<(Proc, String)> {
        let bind = ip(SEEDER);
        let args: [&OsStr; 8] = [
            "seed".as_ref(),
            torrent.as_os_str(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--port".as_ref(),
            "0".as_ref(),
            "--bind-ip".as_ref(),
            bind.as_ref(),
        ];
        let mut p = self.seeder.shoal("shoal seed", &args, dir, &[])?;
        let port = parse_port(&p.wait_for_prefix("peer port: ", READY)?)?;
        let seeding = format!("seeding {NAME}");
        p.wait_for_line(Some(Stream::Stdout), READY, |l| l.trim() == seeding)?;
        Ok((p, format!("{bind}:{port}")))
    }

    /// `shoal download TORRENT --dir DIR --port 0 --bind-ip LEECHER --peer PEER`.
    fn shoal_download(&self, torrent: &Path, dir: &Path, peer: &str) -> Result<Proc> {
        let bind = ip(LEECHER);
        let args: [&OsStr; 10] = [
            "download".as_ref(),
            torrent.as_os_str(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--port".as_ref(),
            "0".as_ref(),
            "--bind-ip".as_ref(),
            bind.as_ref(),
            "--peer".as_ref(),
            peer.as_ref(),
        ];
        self.leecher.shoal("shoal download", &args, dir, &[])
    }

    /// `lt_driver.py MODE TORRENT SAVE --utp-only --bind IP [--peer PEER]` on `ns`.
    fn libtorrent(
        &self,
        ns: &Netns,
        host: [u8; 4],
        mode: &str,
        torrent: &Path,
        save: &Path,
        peer: Option<&str>,
    ) -> Result<Proc> {
        let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/drivers/lt_driver.py");
        let mut cmd = ns.command(PYTHON);
        cmd.arg(&driver)
            .args([mode.as_ref(), torrent.as_os_str(), save.as_os_str()])
            .args(["--utp-only", "--bind", &ip(host)])
            .current_dir(save);
        if let Some(p) = peer {
            cmd.args(["--peer", p]);
        }
        Proc::spawn_command(&format!("libtorrent {mode}"), cmd)
    }

    /// A libtorrent seeder on the seeder host, until it seeds; with its peer address.
    fn lt_seed(&self, torrent: &Path, dir: &Path) -> Result<(Proc, String)> {
        let mut p = self.libtorrent(&self.seeder, SEEDER, "seed", torrent, dir, None)?;
        let port = parse_port(&p.wait_for_prefix("peer port: ", READY)?)?;
        let seeding = format!("seeding {NAME}");
        p.wait_for_line(Some(Stream::Stdout), READY, |l| l.trim() == seeding)?;
        Ok((p, format!("{}:{port}", ip(SEEDER))))
    }
}

/// Seeded data under `DIR/seed/NAME` and its torrent; returns (data dir, torrent).
fn payload(t: &TestDir, seed: u64) -> Result<(PathBuf, PathBuf)> {
    let data = t.sub(&format!("seed/{NAME}"))?;
    make_files(&data, &[("a.bin", SIZE)], seed)?;
    let torrent = t.path().join(format!("{NAME}.torrent"));
    create_torrent(&data, NO_TRACKER, &torrent, PIECE)?;
    Ok((data, torrent))
}

/// One download's figures: how long from the leecher's spawn to its `complete: NAME`.
struct Measured {
    took: Duration,
}

impl Measured {
    fn mbps(&self) -> f64 {
        SIZE as f64 / self.took.as_secs_f64() / 1e6
    }
}

/// Waits for `leecher`'s `complete: NAME` (spawned at `t0`), then checks the bytes and that
/// at least the payload crossed the switch as UDP since `udp_before`.
fn measure(
    link: &Link,
    leecher: &mut Proc,
    t0: Instant,
    udp_before: u64,
    data: &Path,
    out: &Path,
) -> Result<Measured> {
    let done = format!("complete: {NAME}");
    leecher.wait_for_line(Some(Stream::Stdout), DOWNLOAD, |l| l.trim() == done)?;
    let took = t0.elapsed();
    leecher.wait_success(QUICK)?;
    compare_trees(data, &out.join(NAME))?;
    let udp = link.switch.udp_bytes() - udp_before;
    ensure!(
        udp >= SIZE,
        "only {udp} UDP bytes crossed the link for {SIZE} bytes of payload: not over uTP?"
    );
    Ok(Measured { took })
}

#[test]
fn utp_completes_over_a_slow_lossy_link_shoal_and_libtorrent() -> Result<()> {
    with_timeout(Duration::from_secs(230), || {
        let test = "utp_completes_over_a_slow_lossy_link_shoal_and_libtorrent";
        let started = Instant::now();
        let Some(link) = Link::new(test)? else {
            return Ok(());
        };
        let how =
            "userspace link: 20 ms one way each direction, 1% loss each direction, TCP blocked";
        println!("{test}: {how}");

        // 1. Shoal -> Shoal.
        let t = TestDir::new("utpfaults-shoal")?;
        let (data, torrent) = payload(&t, 51)?;
        let (mut seeder, peer) = link.shoal_seed(&torrent, &t.sub("seed")?)?;
        let out = t.sub("leech")?;
        let udp0 = link.switch.udp_bytes();
        let t0 = Instant::now();
        let mut leecher = link.shoal_download(&torrent, &out, &peer)?;
        let shoal = measure(&link, &mut leecher, t0, udp0, &data, &out)?;
        println!(
            "{test}: shoal -> shoal: {SIZE} bytes in {:.1} s ({:.2} MB/s)",
            shoal.took.as_secs_f64(),
            shoal.mbps()
        );
        seeder.terminate()?;
        seeder.wait_success(Duration::from_secs(20))?;

        if !have_libtorrent(&format!("{test} (libtorrent parts)")) {
            return Ok(());
        }
        // 2. libtorrent -> libtorrent.
        let t2 = TestDir::new("utpfaults-lt")?;
        let (data, torrent) = payload(&t2, 52)?;
        let (mut lt_seeder, peer) = link.lt_seed(&torrent, &t2.sub("seed")?)?;
        let out = t2.sub("leech")?;
        let udp0 = link.switch.udp_bytes();
        let t0 = Instant::now();
        let mut lt_leecher =
            link.libtorrent(&link.leecher, LEECHER, "leech", &torrent, &out, Some(&peer))?;
        let lt = measure(&link, &mut lt_leecher, t0, udp0, &data, &out)?;
        ensure!(
            lt_leecher
                .output(Stream::Stdout)
                .lines()
                .any(|l| l.starts_with("utp peer: ")),
            "libtorrent leecher did not report a uTP peer"
        );
        println!(
            "{test}: libtorrent -> libtorrent: {SIZE} bytes in {:.1} s ({:.2} MB/s)",
            lt.took.as_secs_f64(),
            lt.mbps()
        );
        println!(
            "utp impaired throughput: shoal {:.2} MB/s, libtorrent {:.2} MB/s (ratio {:.2})",
            shoal.mbps(),
            lt.mbps(),
            shoal.mbps() / lt.mbps()
        );

        // 3. libtorrent seeder (still running) -> Shoal leecher.
        let out = t2.sub("leech-shoal")?;
        let udp0 = link.switch.udp_bytes();
        let t0 = Instant::now();
        let mut leecher = link.shoal_download(&torrent, &out, &peer)?;
        let mixed = measure(&link, &mut leecher, t0, udp0, &data, &out)?;
        println!(
            "utp impaired throughput: libtorrent -> shoal {:.2} MB/s ({:.1} s)",
            mixed.mbps(),
            mixed.took.as_secs_f64()
        );
        lt_seeder.terminate()?;
        lt_seeder.wait_success(Duration::from_secs(20))?;
        println!("{test}: switch: {}", link.switch.summary());
        println!("{test}: took {:?}", started.elapsed());
        Ok(())
    })
}
