//! Interop with third-party clients over a `shoal tracker` on loopback:
//! - info-hash agreement with mktorrent / transmission-show in both directions;
//! - aria2c downloads from `shoal seed`;
//! - `shoal download` downloads from a Transmission 3.00 seeder (Shoal dials it: Transmission
//!   never dials loopback peers).
//!
//! Each test skips with a message when its client is missing, unless `SHOAL_INTEROP_REQUIRED=1`
//! (set by `scripts/test`, which installs them).

mod common;

use anyhow::{ensure, Context, Result};
use common::transmission::{show_hash, Transmission};
use common::*;
use std::time::Duration;

const NAME: &str = "payload";

fn utf8(p: &std::path::Path) -> Result<&str> {
    p.to_str().context("path is not UTF-8")
}

#[test]
fn info_hash_matches_mktorrent_and_transmission() -> Result<()> {
    if !have_tools("interop info-hash", &["mktorrent", "transmission-show"]) {
        return Ok(());
    }
    with_timeout(Duration::from_secs(60), || {
        let t = TestDir::new("infohash")?;
        let data = t.sub(NAME)?;
        make_files(
            &data,
            &[("a.bin", 200_000), ("empty", 0), ("sub/b.bin", 65_537)],
            3,
        )?;
        let url = "http://127.0.0.1:1/announce";

        // mktorrent -> shoal info
        let mk = t.path().join("mk.torrent");
        let args = ["-l", "15", "-a", url, "-o", utf8(&mk)?, utf8(&data)?];
        run("mktorrent", "mktorrent", &args, t.path(), QUICK)?;
        let theirs = show_hash(&run(
            "transmission-show",
            "transmission-show",
            &[utf8(&mk)?],
            t.path(),
            QUICK,
        )?)?;
        let ours = run_shoal(&["info", utf8(&mk)?], t.path(), QUICK)?;
        ensure!(
            field(&ours, "info hash: ")? == theirs,
            "mktorrent torrent: transmission-show says {theirs}, shoal info says:\n{ours}"
        );

        // shoal create -> transmission-show
        let sh = t.path().join("shoal.torrent");
        let created = create_torrent(&data, url, &sh, 32 * 1024)?;
        let theirs = show_hash(&run(
            "transmission-show",
            "transmission-show",
            &[utf8(&sh)?],
            t.path(),
            QUICK,
        )?)?;
        ensure!(
            created == theirs,
            "shoal create printed {created}, transmission-show says {theirs}"
        );
        Ok(())
    })
}

#[test]
fn aria2_downloads_from_shoal_seed() -> Result<()> {
    if !have_tools("interop aria2", &["aria2c"]) {
        return Ok(());
    }
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("aria2")?;
        let tracker = start_tracker(t.path(), 2)?;
        let seed_dir = t.sub("seed")?;
        let data = seed_dir.join(NAME);
        make_files(
            &data,
            &[
                ("big.bin", 2 * 1024 * 1024 + 77),
                ("empty", 0),
                ("sub/odd.bin", 100_001),
            ],
            11,
        )?;
        let torrent = t.path().join("payload.torrent");
        create_torrent(&data, &tracker.url, &torrent, 64 * 1024)?;
        let _seeder = start_seed(&torrent, &seed_dir, NAME, &[])?;

        let out = t.sub("aria2")?;
        let mut aria = aria2::download(&torrent, &out, t.path())?;
        aria.wait_success(TRANSFER)?;
        compare_trees(&data, &out.join(NAME))?;
        drop(tracker);
        Ok(())
    })
}

#[test]
fn shoal_downloads_from_transmission() -> Result<()> {
    if !have_tools(
        "interop transmission",
        &["transmission-daemon", "transmission-remote"],
    ) {
        return Ok(());
    }
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("transmission")?;
        let tracker = start_tracker(t.path(), 2)?;
        let seed_parent = t.sub("tr-data")?;
        let data = seed_parent.join(NAME);
        // Small: Transmission seeds at a few MB/s on loopback.
        make_files(&data, &[("a.bin", 1024 * 1024 + 5), ("b.bin", 300_001)], 23)?;
        let torrent = t.path().join("payload.torrent");
        let hash = create_torrent(&data, &tracker.url, &torrent, 64 * 1024)?;

        let tr = Transmission::start(t.path())?;
        tr.seed(&torrent, &seed_parent, &hash)?;

        let dir = t.sub("leech")?;
        let mut leech = spawn_download("shoal download", &torrent, &dir, &[])?;
        finish_download(&mut leech, NAME, TRANSFER)
            .with_context(|| format!("transmission side:\n{}", tr.info(&hash)))?;
        compare_trees(&data, &dir.join(NAME))?;
        drop(tracker);
        Ok(())
    })
}
