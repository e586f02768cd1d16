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
}

impl Transmission {
    /// Starts a daemon with config in `work/transmission`, DHT/LPD/PEX/uTP/port mapping off,
    /// plaintext peers allowed, no speed or ratio limits, RPC without auth on 127.0.0.1.
    pub fn start(work: &Path) -> Result<Self> {
        let conf = work.join("transmission");
        fs::create_dir_all(&conf)?;
        let peer_port = free_port()?;
        let rpc_port = free_port()?;
        let settings = format!(
            r#"{{
    "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
    "port-forwarding-enabled": false, "blocklist-enabled": false,
    "peer-port": {peer_port}, "peer-port-random-on-start": false,
    "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
    "encryption": 0,
    "rpc-enabled": true, "rpc-port": {rpc_port}, "rpc-bind-address": "127.0.0.1",
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
        let mut cmd = Command::new("transmission-daemon");
        cmd.arg("-f")
            .arg("-g")
            .arg(&conf)
            .current_dir(work)
            .env("HOME", work);
        let mut daemon = Proc::spawn_command("transmission-daemon", cmd)?;
        // message-level 3 logs "Bound socket N to port P on 127.0.0.1"; a taken port fails here.
        let bound = format!("to port {peer_port} on 127.0.0.1");
        daemon.wait_for_line(Some(Stream::Stderr), READY, |l| l.contains(&bound))?;
        let t = Self {
            daemon,
            peer_port,
            rpc: format!("127.0.0.1:{rpc_port}"),
            cwd: work.to_path_buf(),
        };
        poll("transmission RPC to answer", READY, || {
            Ok(t.remote(&["-l"]).ok())
        })?;
        Ok(t)
    }

    /// Runs `transmission-remote 127.0.0.1:RPC args...` and returns its stdout.
    pub fn remote(&self, args: &[&str]) -> Result<String> {
        let mut all = vec![self.rpc.as_str()];
        all.extend_from_slice(args);
        run(
            "transmission-remote",
            "transmission-remote",
            &all,
            &self.cwd,
            QUICK,
        )
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

/// Parses `Hash: <40 hex>` from `transmission-show TORRENT` output.
pub fn show_hash(show_output: &str) -> Result<String> {
    let hash = show_output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Hash: "))
        .with_context(|| format!("no `Hash:` line in transmission-show output:\n{show_output}"))?;
    Ok(hash.trim().to_ascii_lowercase())
}
