//! Driving aria2c as a leecher: no DHT, LPD or PEX, no RPC (with RPC it never exits), exits as
//! soon as the download is complete (`--seed-time=0`), so the test times it to process exit.

use super::{free_port, Proc};
use anyhow::{Context, Result};
use std::path::Path;

/// Spawns `aria2c` downloading `torrent` into `dir` (files land in `dir/<name>`); its log goes
/// to `work/aria2.log`. Wait for it with [`Proc::wait_success`].
pub fn download(torrent: &Path, dir: &Path, work: &Path) -> Result<Proc> {
    let listen = free_port()?;
    let args = [
        "--no-conf=true".to_string(),
        "--enable-dht=false".into(),
        "--enable-dht6=false".into(),
        "--bt-enable-lpd=false".into(),
        "--enable-peer-exchange=false".into(),
        "--enable-rpc=false".into(),
        "--seed-time=0".into(),
        "--bt-require-crypto=false".into(),
        "--file-allocation=none".into(),
        "--allow-overwrite=true".into(),
        "--auto-file-renaming=false".into(),
        "--follow-torrent=mem".into(),
        format!("--listen-port={listen}"),
        format!("--dir={}", dir.to_str().context("dir is not UTF-8")?),
        format!("--log={}", work.join("aria2.log").display()),
        "--log-level=info".into(),
        "--console-log-level=warn".into(),
        "--summary-interval=0".into(),
        "--show-console-readout=false".into(),
        "--enable-color=false".into(),
        torrent
            .to_str()
            .context("torrent path is not UTF-8")?
            .into(),
    ];
    Proc::spawn("aria2c", "aria2c", &args, work)
}
