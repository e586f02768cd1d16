//! The queue end to end: real `shoal up` nodes on 127.0.0.1.
//!
//! - With one download slot, three added torrents: one runs, two wait as `queued`; the
//!   last moved to the top starts next when the first finishes; queue moves answer 409
//!   with queueing off, and then everything starts.
//! - A download that moves nothing for `stalled_secs` frees its slot.
//! - With one seed slot, a second seed waits until the first is paused; force start
//!   runs a torrent past the limit.

mod common;
mod nodeutil;

use anyhow::{ensure, Context, Result};
use common::*;
use nodeutil::*;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn move_to(n: &Node, id: &str, to: &str) -> Result<(u16, serde_json::Value)> {
    call(
        "POST",
        &n.api(&format!("torrents/{id}/queue")),
        Some(json!({"move": to})),
    )
}

#[test]
fn downloads_take_their_slot_in_queue_order() -> Result<()> {
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("queue-downloads")?;
        let share = t.sub("share")?;
        // The seeder's upload limit makes each download last about four seconds.
        let s = start_node(
            "seeder",
            &t.path().join("s"),
            &t.sub("dl-s")?,
            &["--max-up", "512KiB"],
        )?;
        let tracker = s.tracker.clone().context("tracker")?;
        let mut ids = Vec::new();
        for i in 0..3 {
            let f = share.join(format!("f{i}.bin"));
            write_random_file(&f, 2 << 20, 10 + i)?;
            ids.push(s.share(&f, QUICK)?);
        }
        let l = start_node(
            "leecher",
            &t.path().join("l"),
            &t.sub("dl-l")?,
            &["--tracker", &tracker, "--max-active", "1"],
        )?;
        for id in &ids {
            let bytes = export(&s, id)?;
            let (st, v) = call_raw(
                "POST",
                &l.api("torrents"),
                "application/x-bittorrent",
                &bytes,
            )?;
            ensure!(st == 201 || st == 200, "add: {st} {v}");
        }
        let list = l.torrents()?;
        let queued: Vec<&str> = list
            .iter()
            .filter(|t| state(t) == "queued")
            .filter_map(|t| t["id"].as_str())
            .collect();
        ensure!(
            queued.len() == 2 && !queued.contains(&ids[0].as_str()),
            "queued: {list:?}"
        );
        let (st, v) = move_to(&l, &ids[2], "top")?;
        ensure!(st == 200 && v["queue_position"] == 1, "top: {st} {v}");
        let (st, v) = move_to(&l, &ids[1], "bottom")?;
        ensure!(st == 200 && v["queue_position"] == 3, "bottom: {st} {v}");

        // Record when each leaves the queue: the third, moved up, before the second.
        let mut left: HashMap<String, Instant> = HashMap::new();
        poll("every download completes", TRANSFER, || {
            let list = l.torrents()?;
            for t in &list {
                let id = t["id"].as_str().unwrap_or("").to_string();
                if state(t) != "queued" {
                    left.entry(id).or_insert_with(Instant::now);
                }
            }
            let running = list.iter().filter(|t| state(t) == "downloading").count();
            ensure!(running <= 1, "more than one download runs: {list:?}");
            Ok(list.iter().all(|t| t["progress"] == 1.0).then_some(()))
        })?;
        ensure!(
            left[&ids[2]] < left[&ids[1]],
            "the moved torrent did not go first"
        );

        // Queueing off: moves are refused.
        l.patch_settings(json!({"queueing_enabled": false}))?;
        let (st, _) = move_to(&l, &ids[0], "up")?;
        ensure!(st == 409, "move with queueing off: {st}");
        let (st, _) = move_to(&l, &ids[0], "sideways")?;
        ensure!(st == 400 || st == 422 || st == 409, "bad move: {st}");
        Ok(())
    })
}

fn export(n: &Node, id: &str) -> Result<Vec<u8>> {
    let r = ureq::get(&n.api(&format!("torrents/{id}/torrent"))).call()?;
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut buf)?;
    Ok(buf)
}

#[test]
fn a_stalled_download_frees_its_slot() -> Result<()> {
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("queue-stalled")?;
        let l = start_node(
            "leecher",
            &t.path().join("l"),
            &t.sub("dl")?,
            &["--max-active", "1", "--stalled-secs", "2"],
        )?;
        let tracker = l.tracker.clone().context("tracker")?;
        // Torrents of data nobody has: they never move a byte.
        let mut ids = Vec::new();
        for i in 0..2 {
            let d = t.sub(&format!("nowhere{i}"))?;
            let f = d.join("x.bin");
            write_random_file(&f, 300_000, 20 + i)?;
            let out = t.path().join(format!("x{i}.torrent"));
            create_torrent(&f, &tracker, &out, 65536)?;
            ids.push(
                l.add_torrent_file(&out)?["id"]
                    .as_str()
                    .context("id")?
                    .to_string(),
            );
        }
        ensure!(state(&l.torrent(&ids[1])?) == "queued", "second not queued");
        l.wait_torrent(&ids[1], "the second starts", Duration::from_secs(20), |t| {
            state(t) == "downloading"
        })?;
        let first = l.torrent(&ids[0])?;
        ensure!(
            state(&first) == "downloading" && first["stalled"] == true,
            "first: {first}"
        );
        Ok(())
    })
}

#[test]
fn seeds_wait_for_their_own_limit() -> Result<()> {
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("queue-seeds")?;
        let share = t.sub("share")?;
        let n = start_node(
            "node",
            &t.path().join("n"),
            &t.sub("dl")?,
            &["--max-active-seeds", "1"],
        )?;
        let mut ids = Vec::new();
        for i in 0..2 {
            let f = share.join(format!("s{i}.bin"));
            write_random_file(&f, 100_000, 30 + i)?;
            ids.push(n.share(&f, QUICK)?);
        }
        n.wait_torrent(&ids[0], "first seeds", QUICK, |t| state(t) == "seeding")?;
        n.wait_torrent(&ids[1], "second waits", QUICK, |t| state(t) == "queued")?;
        n.post(&format!("torrents/{}/pause", ids[0]), json!({}))?;
        n.wait_torrent(&ids[1], "second seeds", QUICK, |t| state(t) == "seeding")?;
        n.post(&format!("torrents/{}/resume", ids[0]), json!({}))?;
        n.wait_torrent(&ids[0], "first waits", QUICK, |t| state(t) == "queued")?;
        let (st, v) = call(
            "POST",
            &n.api(&format!("torrents/{}/force_start", ids[0])),
            Some(json!({"force": true})),
        )?;
        ensure!(st == 200 && v["force_start"] == true, "force: {st} {v}");
        n.wait_torrent(&ids[0], "forced seeds", QUICK, |t| state(t) == "seeding")?;
        ensure!(
            state(&n.torrent(&ids[1])?) == "seeding",
            "second still seeds"
        );
        Ok(())
    })
}
