//! `shoal download MAGNET --dht-bootstrap HOST:PORT` finds a libtorrent seeder through
//! the DHT alone: libtorrent (Debian's python3-libtorrent) seeds a torrent with no
//! tracker and its DHT on (`tests/drivers/lt_dht_seed.py`); Shoal is given a bare magnet
//! and libtorrent's DHT node, fetches the metadata from the seeder it finds, and
//! completes byte for byte.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use common::libtorrent::have_libtorrent;
use common::*;

const NAME: &str = "dhtpayload";

/// The libtorrent child, killed on drop.
struct Lt(Child);

impl Drop for Lt {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn shoal_download_finds_a_libtorrent_seeder_through_the_dht() -> Result<()> {
    if !have_libtorrent("dht_interop_cli") {
        return Ok(());
    }
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("dht-cli")?;
        let parent = t.sub("seed")?;
        let data = parent.join(NAME);
        make_files(&data, &[("a.bin", 1024 * 1024 + 5), ("b.bin", 77_777)], 12)?;
        let torrent = t.path().join("d.torrent");
        let out = run_shoal(
            &[
                "create".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                torrent.as_os_str(),
            ],
            t.path(),
            Duration::from_secs(60),
        )?;
        let hash = field(&out, "info hash: ")?.trim().to_string();

        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/drivers/lt_dht_seed.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(&parent)
            .arg(&torrent)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting libtorrent")?;
        let mut stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let _lt = Lt(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let lt_port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .context("libtorrent printed no PORT")?
            .parse()?;

        let our_port = free_port()?.to_string();
        let dir = t.sub("leech")?;
        let magnet = format!("magnet:?xt=urn:btih:{hash}");
        let boot = format!("127.0.0.1:{lt_port}");
        let mut dl = Proc::shoal(
            "shoal download",
            &[
                "download",
                &magnet,
                "--dir",
                dir.to_str().context("utf-8")?,
                "--bind-ip",
                "127.0.0.1",
                "--port",
                &our_port,
                "--dht-bootstrap",
                &boot,
            ],
            t.path(),
        )?;
        // libtorrent adds us as a DHT node and announces itself to us.
        writeln!(stdin, "{our_port}")?;
        finish_download(&mut dl, NAME, Duration::from_secs(90))?;
        compare_trees(&data, &dir.join(NAME))?;
        drop(stdin);
        Ok(())
    })
}
