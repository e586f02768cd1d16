//! A userspace stand-in for `tc netem delay D loss P` on every host's link, for kernels
//! built without `sch_netem` (`tc` then says "Specified qdisc kind is unknown").
//!
//! Each host namespace gets a TUN device (layer 3, no Ethernet, no ARP) holding its address
//! on the /24; the test process is the switch between them: one thread per host reads the
//! IPv4 packets its host sends, drops each with probability P (like netem's `loss` on the
//! host's egress), and queues the rest for the destination host's writer thread, which
//! writes each into that host's TUN device D after it was read (netem's constant `delay`;
//! a constant delay keeps the order). Packets to other addresses, and anything not IPv4,
//! are dropped. No queue limit (netem's default is 1000 packets). TUN devices have no
//! offloads, so every packet is at most the MTU and carries its own checksums.
//!
//! [`Switch::block_tcp`] makes the switch drop every TCP packet between hosts (IP protocol
//! 6), for tests that must force peers onto uTP without a firewall tool (`tests/utp_faults.rs`);
//! [`Switch::udp_bytes`] says how many IPv4 bytes of UDP it carried, so such a test can
//! check that its payload really crossed over UDP.
//!
//! The devices exist as long as their file descriptors: [`Switch`]'s drop stops the
//! threads and closes them, before the namespaces are deleted.

use super::common::netns::Netns;
use super::common::SplitMix64;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// A packet and when it is due at its destination.
type Due = (Instant, Vec<u8>);

/// The link emulation: one-way delay and loss probability per packet.
#[derive(Clone, Copy, Debug)]
pub struct Impairment {
    pub delay: Duration,
    pub loss: f64,
}

/// The running switch; stops its threads and closes the TUN devices on drop.
pub struct Switch {
    stop: Arc<AtomicBool>,
    block_tcp: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
    counters: Arc<Counters>,
}

/// What the switch saw: IPv4 packets between hosts, how many it dropped, the largest.
#[derive(Default)]
pub struct Counters {
    packets: AtomicU64,
    dropped: AtomicU64,
    largest: AtomicU64,
    /// TCP packets dropped because of [`Switch::block_tcp`].
    tcp_blocked: AtomicU64,
    /// IPv4 bytes of UDP packets delivered (not lost).
    udp_bytes: AtomicU64,
}

/// Creates TUN device `dev` in `ns` (from a thread moved into it) and returns its fd.
fn open_tun(ns: &Netns, dev: &str) -> Result<File> {
    let (tx, rx) = mpsc::channel();
    let ns_name = ns.name().to_string();
    let dev = dev.to_string();
    // A fresh thread, so the caller's thread stays in its own namespace.
    let ns_path = format!("/run/netns/{ns_name}");
    thread::spawn(move || {
        let r = (|| -> Result<File> {
            let f = File::open(&ns_path).with_context(|| format!("opening {ns_path}"))?;
            // SAFETY: setns on a valid namespace fd; it affects only this thread.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!("setns {ns_path}: {}", std::io::Error::last_os_error());
            }
            let tun = File::options()
                .read(true)
                .write(true)
                .open("/dev/net/tun")
                .context("opening /dev/net/tun")?;
            // struct ifreq: 16-byte name, then the flags (the union is 24 bytes).
            let mut req = [0u8; 40];
            req[..dev.len()].copy_from_slice(dev.as_bytes());
            req[16..18].copy_from_slice(&(IFF_TUN | IFF_NO_PI).to_ne_bytes());
            // SAFETY: TUNSETIFF reads and writes an ifreq, which `req` is large enough for.
            if unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF as _, req.as_mut_ptr()) } != 0 {
                bail!("TUNSETIFF {dev}: {}", std::io::Error::last_os_error());
            }
            Ok(tun)
        })();
        let _ = tx.send(r);
    });
    rx.recv().context("tun thread died")?
}

impl Switch {
    /// Gives each `(namespace, address)` a TUN device `dev` with `address/24`, up, and
    /// switches packets between them under `imp`. Addresses must be `A.B.C.N`, one /24.
    pub fn start(
        hosts: &[(&Netns, [u8; 4])],
        dev: &str,
        imp: Impairment,
        seed: u64,
    ) -> Result<Switch> {
        let stop = Arc::new(AtomicBool::new(false));
        let block_tcp = Arc::new(AtomicBool::new(false));
        let mut switch = Switch {
            stop: stop.clone(),
            block_tcp: block_tcp.clone(),
            threads: Vec::new(),
            counters: Arc::default(),
        };
        let mut tuns = Vec::new();
        for (ns, addr) in hosts {
            let tun = open_tun(ns, dev)?;
            let [a, b, c, d] = *addr;
            ns.ip(&["addr", "add", &format!("{a}.{b}.{c}.{d}/24"), "dev", dev])?;
            ns.ip(&["link", "set", dev, "up"])?;
            ns.ip(&["link", "set", "lo", "up"])?;
            tuns.push((*addr, tun));
        }
        // One writer per host: packets for it, each due at its time.
        let mut routes = Vec::new();
        for (addr, tun) in &tuns {
            let (tx, rx) = mpsc::channel::<Due>();
            routes.push((*addr, tx));
            let mut out = tun.try_clone()?;
            let stop = stop.clone();
            switch.threads.push(thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((due, pkt)) = rx.recv_timeout(Duration::from_millis(100)) else {
                        continue;
                    };
                    let now = Instant::now();
                    if due > now {
                        thread::sleep(due - now);
                    }
                    // A host whose link is down refuses the packet: lost, as on a wire.
                    let _ = out.write(&pkt);
                }
            }));
        }
        // One reader per host: the packets it sends.
        for (i, (_, tun)) in tuns.into_iter().enumerate() {
            let routes = routes.clone();
            let stop = stop.clone();
            let block_tcp = block_tcp.clone();
            let counters = switch.counters.clone();
            let mut rng = SplitMix64::new(seed.wrapping_add(i as u64));
            let threshold = (imp.loss * u64::MAX as f64) as u64;
            switch.threads.push(thread::spawn(move || {
                let mut tun = tun;
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    let mut pfd = libc::pollfd {
                        fd: tun.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                        continue;
                    }
                    let Ok(n) = tun.read(&mut buf) else {
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let pkt = &buf[..n];
                    if n < 20 || pkt[0] >> 4 != 4 {
                        continue;
                    }
                    let dst = [pkt[16], pkt[17], pkt[18], pkt[19]];
                    let Some((_, tx)) = routes.iter().find(|(a, _)| *a == dst) else {
                        continue;
                    };
                    counters.packets.fetch_add(1, Ordering::Relaxed);
                    counters.largest.fetch_max(n as u64, Ordering::Relaxed);
                    let proto = pkt[9];
                    if proto == IPPROTO_TCP && block_tcp.load(Ordering::Relaxed) {
                        counters.tcp_blocked.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if rng.next_u64() < threshold {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if proto == IPPROTO_UDP {
                        counters.udp_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    let _ = tx.send((Instant::now() + imp.delay, pkt.to_vec()));
                }
            }));
        }
        Ok(switch)
    }
}

impl Switch {
    /// `N packets, M dropped (x%), largest L bytes` so far (and the TCP packets blocked and
    /// UDP bytes carried, once TCP is blocked).
    pub fn summary(&self) -> String {
        let c = &self.counters;
        let (n, d) = (
            c.packets.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed),
        );
        let mut s = format!(
            "{n} packets, {d} dropped ({:.2}%), largest {} bytes",
            d as f64 * 100.0 / n.max(1) as f64,
            c.largest.load(Ordering::Relaxed)
        );
        if self.block_tcp.load(Ordering::Relaxed) {
            s += &format!(
                ", {} TCP packets blocked, {} UDP bytes carried",
                c.tcp_blocked.load(Ordering::Relaxed),
                self.udp_bytes()
            );
        }
        s
    }

    /// From now on, drops every TCP packet between hosts (`on`), or carries them again.
    /// Not counted as loss: the impairment applies to what gets through.
    #[allow(dead_code)] // net_faults.rs includes this file too and keeps TCP.
    pub fn block_tcp(&self, on: bool) {
        self.block_tcp.store(on, Ordering::Relaxed);
    }

    /// IPv4 bytes (headers included) of the UDP packets delivered so far.
    pub fn udp_bytes(&self) -> u64 {
        self.counters.udp_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
