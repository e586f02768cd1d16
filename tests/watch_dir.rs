//! The watch folder end to end: a `shoal up --watch-dir W` on 127.0.0.1 adds a
//! `.torrent` and a `.magnet` put in W and moves them to `W/added/`; a corrupt
//! `.torrent` goes to `W/failed/` with the reason beside it; a torrent already added
//! counts as added.

mod common;
mod nodeutil;

use anyhow::{ensure, Context, Result};
use common::*;
use nodeutil::*;
use std::time::Duration;

const WATCH: Duration = Duration::from_secs(20);

#[test]
fn watch_folder_adds_and_sorts_files() -> Result<()> {
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("watch-dir")?;
        let watch = t.sub("watch")?;
        let w = watch.display().to_string();
        let n = start_node(
            "node",
            &t.path().join("n"),
            &t.sub("dl")?,
            &["--watch-dir", &w],
        )?;
        let tracker = n.tracker.clone().context("tracker")?;
        let data = t.sub("data")?;
        let f = data.join("a.bin");
        write_random_file(&f, 100_000, 41)?;
        let made = t.path().join("made.torrent");
        let hash = create_torrent(&f, &tracker, &made, 16384)?;

        // Written in two steps under another name, as a slow copy would be.
        std::fs::copy(&made, watch.join("good.torrent"))?;
        poll("the .torrent is added", WATCH, || {
            Ok(n.torrents()?
                .iter()
                .any(|t| t["id"] == hash.as_str())
                .then_some(()))
        })?;
        poll("the .torrent moves to added/", WATCH, || {
            Ok(watch.join("added/good.torrent").is_file().then_some(()))
        })?;
        ensure!(!watch.join("good.torrent").exists(), "left in the folder");

        let other = "0123456789abcdef0123456789abcdef01234567";
        std::fs::write(
            watch.join("link.magnet"),
            format!("\nmagnet:?xt=urn:btih:{other}&dn=watched\n"),
        )?;
        std::fs::write(watch.join("bad.torrent"), b"d4:infoi3ee")?;
        std::fs::write(watch.join("notes.txt"), b"not watched")?;
        // A duplicate of the first: added (nothing to do).
        std::fs::copy(&made, watch.join("again.torrent"))?;
        poll("the magnet is added", WATCH, || {
            Ok(n.torrents()?.iter().any(|t| t["id"] == other).then_some(()))
        })?;
        poll("every file is sorted", WATCH, || {
            Ok((watch.join("added/link.magnet").is_file()
                && watch.join("added/again.torrent").is_file()
                && watch.join("failed/bad.torrent").is_file())
            .then_some(()))
        })?;
        let reason = std::fs::read_to_string(watch.join("failed/bad.torrent.error.txt"))?;
        ensure!(
            reason.contains("not a valid .torrent"),
            "reason: {reason:?}"
        );
        ensure!(
            watch.join("notes.txt").is_file(),
            "other files are left alone"
        );
        ensure!(n.torrents()?.len() == 2, "torrents: {:?}", n.torrents()?);
        Ok(())
    })
}
