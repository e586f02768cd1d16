//! Driving Debian's python3-libtorrent from interop tests.

use std::process::Command;

/// The system Python, which has Debian's `libtorrent` module.
pub const PYTHON: &str = "/usr/bin/python3";

/// True when [`PYTHON`] imports libtorrent. Otherwise prints why `test` is skipped and
/// returns false, or panics when `SHOAL_INTEROP_REQUIRED=1` (set by `scripts/test`).
pub fn have_libtorrent(test: &str) -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    skip(&format!(
        "SKIPPED {test}: {PYTHON} cannot import libtorrent (apt-get install python3-libtorrent)"
    ));
    false
}

/// Prints `msg` (a skip reason), or panics with it when `SHOAL_INTEROP_REQUIRED=1`.
pub fn skip(msg: &str) {
    if std::env::var_os("SHOAL_INTEROP_REQUIRED").is_some_and(|v| v == "1") {
        panic!("{msg} [SHOAL_INTEROP_REQUIRED=1]");
    }
    eprintln!("{msg}");
    println!("{msg}");
}

/// Writes the Python `script` to `work/name` and runs it as
/// `script MODE TORRENT SAVE [PEERS...]`.
pub fn run_driver(
    name: &str,
    script: &str,
    mode: &str,
    torrent: &std::path::Path,
    save: &std::path::Path,
    work: &std::path::Path,
    peers: &[String],
) -> anyhow::Result<super::Proc> {
    run_driver_env(name, script, mode, torrent, save, work, peers, &[])
}

/// [`run_driver`] with extra environment variables (e.g. `LT_LISTEN`).
#[allow(clippy::too_many_arguments)]
pub fn run_driver_env(
    name: &str,
    script: &str,
    mode: &str,
    torrent: &std::path::Path,
    save: &std::path::Path,
    work: &std::path::Path,
    peers: &[String],
    env: &[(&str, &str)],
) -> anyhow::Result<super::Proc> {
    use anyhow::Context;
    let path = work.join(name);
    std::fs::write(&path, script)?;
    let utf8 = |p: &std::path::Path| p.to_str().map(str::to_string).context("path is not UTF-8");
    let mut args = vec![utf8(&path)?, mode.to_string(), utf8(torrent)?, utf8(save)?];
    args.extend(peers.iter().cloned());
    let mut cmd = std::process::Command::new(PYTHON);
    cmd.args(&args).current_dir(work).envs(env.iter().copied());
    super::Proc::spawn_command(&format!("libtorrent {mode}"), cmd)
}
