//! Magnet links on a node with no tracker at all (`shoal up --no-tracker`): a link
//! whose peers cannot be reached waits in state `metadata`, can be paused (kept across
//! a restart), resumed and removed; a link naming a seeder in `x.pe` gets its metadata
//! from it, completes byte-identical, and exports as a complete `.torrent`.

mod common;
mod nodeutil;

use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use nodeutil::*;
use serde_json::json;

const NAME: &str = "payload";

#[test]
fn magnets_wait_for_metadata_then_download_with_no_tracker() -> Result<()> {
    with_timeout(Duration::from_secs(150), || {
        let t = TestDir::new("node-magnet")?;
        let parent = t.sub("seed")?;
        let data = parent.join(NAME);
        make_files(
            &data,
            &[("a.bin", 2 * 1024 * 1024 + 3), ("b.bin", 70_001)],
            5,
        )?;
        let torrent = t.path().join("p.torrent");
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
        let seed = start_seed(&torrent, &parent, NAME, &["--bind-ip", "127.0.0.1"])?;

        let (data_dir, dl) = (t.sub("node")?, t.sub("downloads")?);
        let mut node = start_node("node", &data_dir, &dl, &["--no-tracker"])?;

        // Nobody answers for this one: it waits in `metadata`.
        let ghost_hash = "0123456789abcdef0123456789abcdef01234567";
        let ghost = format!("magnet:?xt=urn:btih:{ghost_hash}&dn=ghost&x.pe=127.0.0.1:1");
        let s = node.post("torrents", json!({"magnet": ghost}))?;
        assert_eq!(s["state"], "metadata", "{s}");
        assert_eq!(s["name"], "ghost");
        let d = node.torrent(ghost_hash)?;
        assert_eq!(d["magnet"], ghost.as_str());
        assert_eq!(
            node.get(&format!("torrents/{ghost_hash}/files"))?,
            json!([])
        );
        let s = node.post(&format!("torrents/{ghost_hash}/pause"), json!({}))?;
        assert_eq!(s["state"], "paused");
        node.stop()?;

        let mut node = start_node("node again", &data_dir, &dl, &["--no-tracker"])?;
        assert_eq!(
            node.torrent(ghost_hash)?["state"],
            "paused",
            "kept paused across a restart"
        );
        let s = node.post(&format!("torrents/{ghost_hash}/resume"), json!({}))?;
        assert_eq!(s["state"], "metadata");
        let (code, _) = call("DELETE", &node.api(&format!("torrents/{ghost_hash}")), None)?;
        assert_eq!(code, 204);
        assert!(node.torrents()?.is_empty());

        // The seeder is in x.pe: metadata, then the data.
        let live = format!("magnet:?xt=urn:btih:{hash}&x.pe=127.0.0.1:{}", seed.port);
        node.post("torrents", json!({"magnet": live}))?;
        node.wait_torrent(&hash, "download complete", Duration::from_secs(60), |s| {
            s["state"] == "seeding"
        })?;
        compare_trees(&data, &dl.join(NAME))?;

        // The exported .torrent is complete: shoal info reads it, same info-hash.
        let r = ureq::get(&node.api(&format!("torrents/{hash}/torrent")))
            .timeout(Duration::from_secs(10))
            .call()
            .context("export")?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes)?;
        let exported = t.path().join("exported.torrent");
        std::fs::write(&exported, bytes)?;
        let info = run_shoal(
            &["info".as_ref(), exported.as_os_str()],
            t.path(),
            Duration::from_secs(20),
        )?;
        assert_eq!(field(&info, "info hash: ")?.trim(), hash);
        node.stop()?;
        drop(seed);
        Ok(())
    })
}
