//! Driving Transmission 3.00 headless as a seeder: `transmission-daemon -f -g CONFDIR` with an
//! isolated `settings.json`, controlled with `transmission-remote` over RPC on a free port.
//!
//! Transmission 3.00 never dials peers in 127.0.0.0/8 that it learns from a tracker, but accepts
//! incoming connections, so the other client must dial it. It also keys peers by IP: right
//! after one loopback peer disconnects, a new connection from 127.0.0.1 may be dropped during the
//! handshake for a second or two, so a dialer must retry.

use super::{free_port, poll, run, Proc, Stream, QUICK, READY, TRANSFER};
use anyhow::{ensure, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running `transmission-daemon` with its own config dir, peer port and RPC port.
pub struct Transmission {
    pub daemon: Proc,
    pub peer_port: u16,
    rpc: String,
    cwd: PathBuf,
    /// The network namespace it runs in (`ip netns exec`), if any.
    netns: Option<String>,
}

/// Where and how [`Transmission::start_with`] runs the daemon.
pub struct Options<'a> {
    /// A network namespace to run in (daemon and `transmission-remote` alike).
    pub netns: Option<&'a str>,
    /// The IPv4 address for peers and RPC.
    pub ip: &'a str,
    /// Transmission's `encryption` setting: 0 prefer plaintext, 1 prefer encrypted,
    /// 2 require encrypted.
    pub encryption: u8,
}

impl Transmission {
    /// Starts a daemon with config in `work/transmission`, DHT/LPD/PEX/uTP/port mapping off,
    /// plaintext peers allowed, no speed or ratio limits, RPC without auth on 127.0.0.1.
    pub fn start(work: &Path) -> Result<Self> {
        Self::start_with(
            work,
            &Options {
                netns: None,
                ip: "127.0.0.1",
                encryption: 0,
            },
        )
    }

    /// [`Transmission::start`] on `opts.ip`, in `opts.netns`, with `opts.encryption`.
    pub fn start_with(work: &Path, opts: &Options) -> Result<Self> {
        let conf = work.join("transmission");
        fs::create_dir_all(&conf)?;
        let peer_port = free_port()?;
        let rpc_port = free_port()?;
        let (ip, encryption) = (opts.ip, opts.encryption);
        let settings = format!(
            r#"{{
    "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
    "port-forwarding-enabled": false, "blocklist-enabled": false,
    "peer-port": {peer_port}, "peer-port-random-on-start": false,
    "bind-address-ipv4": "{ip}", "bind-address-ipv6": "::1",
    "encryption": {encryption},
    "rpc-enabled": true, "rpc-port": {rpc_port}, "rpc-bind-address": "{ip}",
    "rpc-authentication-required": false, "rpc-whitelist-enabled": false,
    "rpc-host-whitelist-enabled": false,
    "download-dir": "{dl}", "incomplete-dir-enabled": false, "watch-dir-enabled": false,
    "start-added-torrents": true, "trash-original-torrent-files": false,
    "ratio-limit-enabled": false, "idle-seeding-limit-enabled": false,
    "speed-limit-up-enabled": false, "speed-limit-down-enabled": false, "alt-speed-enabled": false,
    "download-queue-enabled": false, "seed-queue-enabled": false, "queue-stalled-enabled": false,
    "cache-size-mb": 4, "message-level": 3
}}
"#,
            dl = work.display()
        );
        fs::write(conf.join("settings.json"), settings)?;
        let mut cmd = in_netns(opts.netns, "transmission-daemon");
        cmd.arg("-f")
            .arg("-g")
            .arg(&conf)
            .current_dir(work)
            .env("HOME", work);
        let mut daemon = Proc::spawn_command("transmission-daemon", cmd)?;
        // message-level 3 logs "Bound socket N to port P on IP"; a taken port fails here.
        let bound = format!("to port {peer_port} on {ip}");
        daemon.wait_for_line(Some(Stream::Stderr), READY, |l| l.contains(&bound))?;
        let t = Self {
            daemon,
            peer_port,
            rpc: format!("{ip}:{rpc_port}"),
            cwd: work.to_path_buf(),
            netns: opts.netns.map(str::to_string),
        };
        poll("transmission RPC to answer", READY, || {
            Ok(t.remote(&["-l"]).ok())
        })?;
        Ok(t)
    }

    /// Runs `transmission-remote IP:RPC args...` (in the daemon's namespace) and returns
    /// its stdout.
    pub fn remote(&self, args: &[&str]) -> Result<String> {
        let mut all = Vec::new();
        if let Some(ns) = &self.netns {
            all.extend(["netns", "exec", ns.as_str(), "transmission-remote"]);
        }
        all.push(self.rpc.as_str());
        all.extend_from_slice(args);
        let program = if self.netns.is_some() {
            "ip"
        } else {
            "transmission-remote"
        };
        run("transmission-remote", program, &all, &self.cwd, QUICK)
    }

    /// Adds `torrent` with its data already under `data_parent/<name>`, then waits until
    /// Transmission has verified it (100%) and announced to the tracker at least once.
    pub fn seed(&self, torrent: &Path, data_parent: &Path, info_hash: &str) -> Result<()> {
        let torrent = torrent.to_str().context("torrent path is not UTF-8")?;
        let dir = data_parent.to_str().context("data path is not UTF-8")?;
        let out = self.remote(&["-a", torrent, "-w", dir])?;
        ensure!(out.contains("success"), "adding torrent: {out}");
        poll("transmission to verify the data", TRANSFER, || {
            let info = self.remote(&["-t", info_hash, "-i"])?;
            ensure!(!info.contains("Error:"), "transmission reports: {info}");
            Ok(info.contains("Percent Done: 100%").then_some(()))
        })?;
        poll("transmission to announce", READY, || {
            let trackers = self.remote(&["-t", info_hash, "-it"])?;
            Ok(trackers.contains("Got a list of").then_some(()))
        })?;
        Ok(())
    }

    /// The RPC's `127.0.0.1:PORT`.
    pub fn rpc_addr(&self) -> &str {
        &self.rpc
    }

    /// `transmission-remote -t HASH -i`, for failure messages.
    pub fn info(&self, info_hash: &str) -> String {
        self.remote(&["-t", info_hash, "-i"])
            .unwrap_or_else(|e| format!("(transmission-remote failed: {e:#})"))
    }
}

/// `PROGRAM`, run inside `netns` when given (`ip netns exec`, which execs it).
fn in_netns(netns: Option<&str>, program: &str) -> Command {
    match netns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns, program]);
            cmd
        }
        None => Command::new(program),
    }
}

/// Parses `Hash: <40 hex>` from `transmission-show TORRENT` output.
pub fn show_hash(show_output: &str) -> Result<String> {
    let hash = show_output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Hash: "))
        .with_context(|| format!("no `Hash:` line in transmission-show output:\n{show_output}"))?;
    Ok(hash.trim().to_ascii_lowercase())
}
