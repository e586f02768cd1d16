//! `shoal up` state across restarts and crashes: 200 torrents come back as they were
//! after SIGTERM, and a download killed with SIGKILL at random moments resumes without
//! losing verified pieces and ends byte-identical.

mod common;
mod nodeutil;

use anyhow::{ensure, Context, Result};
use common::*;
use nodeutil::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

const PIECE: u64 = 16 * 1024;

/// Shares every file under `dir` on `node` at once and returns the torrent ids, in
/// file-name order.
fn share_all(node: &Node, dir: &Path, names: &[String]) -> Result<Vec<String>> {
    let mut jobs = Vec::new();
    for n in names {
        let j = node.post("share", json!({"path": dir.join(n)}))?;
        jobs.push(j["job_id"].as_str().context("job_id")?.to_string());
    }
    poll("every share job done", TRANSFER, || {
        let all = node.get("jobs")?;
        let by_id: HashMap<&str, &Value> = all
            .as_array()
            .context("jobs")?
            .iter()
            .filter_map(|j| Some((j["id"].as_str()?, j)))
            .collect();
        let mut ids = Vec::new();
        for j in &jobs {
            let job = by_id.get(j.as_str()).context("job missing")?;
            match job["state"].as_str() {
                Some("done") => ids.push(job["torrent_id"].as_str().context("id")?.to_string()),
                Some("error") => anyhow::bail!("share failed: {job}"),
                _ => return Ok(None),
            }
        }
        Ok(Some(ids))
    })
}

/// id -> (state, pieces_have) of every torrent.
fn snapshot(node: &Node) -> Result<HashMap<String, (String, u64)>> {
    Ok(node
        .torrents()?
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap_or("").to_string(),
                (state(t).to_string(), t["pieces_have"].as_u64().unwrap_or(0)),
            )
        })
        .collect())
}

fn bytes_of(seed: u64, size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size];
    SplitMix64::new(seed).fill(&mut v);
    v
}

#[test]
fn two_hundred_torrents_come_back_after_a_restart() -> Result<()> {
    with_timeout(Duration::from_secs(240), || {
        let t = TestDir::new("node-restart")?;
        let tracker = start_tracker(t.path(), 3)?;
        let net = ["--tracker", tracker.url.as_str(), "--max-active", "0"];

        // 100 files the seeder node S shares; N gets half of each (2 of 4 pieces).
        let s_dir = t.sub("s-share")?;
        let n_dl = t.sub("n-dl")?;
        let half_names: Vec<String> = (0..100).map(|i| format!("half{i:03}.bin")).collect();
        for (i, name) in half_names.iter().enumerate() {
            let full = bytes_of(1000 + i as u64, 4 * PIECE as usize);
            std::fs::write(s_dir.join(name), &full)?;
            let mut partial = full.clone();
            partial[2 * PIECE as usize..].fill(0);
            std::fs::write(n_dl.join(name), &partial)?;
        }
        let mut s = start_node("node S", &t.path().join("s"), &t.sub("s-dl")?, &net)?;
        let half_ids = share_all(&s, &s_dir, &half_names)?;
        let mut torrents = Vec::new();
        for id in &half_ids {
            let r = ureq::get(&s.api(&format!("torrents/{id}/torrent"))).call()?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes)?;
            torrents.push(bytes);
        }
        s.stop()?;

        // N: 100 tiny shares (seeding), then the 100 half-downloaded torrents.
        let n_share = t.sub("n-share")?;
        let seed_names: Vec<String> = (0..100).map(|i| format!("seed{i:03}.bin")).collect();
        for (i, name) in seed_names.iter().enumerate() {
            write_random_file(&n_share.join(name), 5000 + i as u64, 2000 + i as u64)?;
        }
        let n_data = t.path().join("n");
        let mut n = start_node("node N", &n_data, &n_dl, &net)?;
        let seed_ids = share_all(&n, &n_share, &seed_names)?;
        for bytes in &torrents {
            let (st, v) = call_raw(
                "POST",
                &n.api("torrents"),
                "application/x-bittorrent",
                bytes,
            )?;
            ensure!(st == 201, "add: {st} {v}");
        }
        poll("half-downloaded torrents checked", TRANSFER, || {
            let snap = snapshot(&n)?;
            Ok(half_ids
                .iter()
                .all(|id| snap.get(id) == Some(&("downloading".to_string(), 2)))
                .then_some(()))
        })?;
        let paused: Vec<&String> = half_ids.iter().take(40).collect();
        for id in &paused {
            let p = n.post(&format!("torrents/{id}/pause"), json!({}))?;
            ensure!(state(&p) == "paused", "{p}");
        }
        let mut before = snapshot(&n)?;
        ensure!(before.len() == 200, "{} torrents", before.len());
        ensure!(
            seed_ids.iter().all(|id| before[id].0 == "seeding"),
            "{before:?}"
        );
        n.stop()?;
        // A shared file disappears while the node is down: that torrent comes back
        // failed, naming the file.
        std::fs::remove_file(n_share.join(&seed_names[0]))?;
        if let Some(e) = before.get_mut(&seed_ids[0]) {
            e.0 = "error".into();
        }

        let restart = Instant::now();
        let mut n = start_node("node N again", &n_data, &n_dl, &net)?;
        let listening = restart.elapsed();
        let listed = n.torrents()?.len();
        let first_answer = restart.elapsed();
        poll("every torrent back in its state", TRANSFER, || {
            Ok((snapshot(&n)? == before).then_some(()))
        })
        .with_context(|| format!("{:?}", snapshot(&n).ok()))?;
        let all_back = restart.elapsed();
        let missing = n.torrent(&seed_ids[0])?;
        ensure!(
            missing["error"]
                .as_str()
                .is_some_and(|e| e.contains(&seed_names[0]) && e.contains("missing")),
            "{missing}"
        );
        println!(
            "restart with 200 torrents: web up after {listening:?}, API answered after \
             {first_answer:?} ({listed} listed), all back after {all_back:?}"
        );

        // The seeder returns: active downloads finish; resumed ones too.
        let mut s = start_node("node S again", &t.path().join("s"), &t.sub("s-dl")?, &net)?;
        for id in &paused {
            n.post(&format!("torrents/{id}/resume"), json!({}))?;
        }
        poll("every download finished", TRANSFER, || {
            let snap = snapshot(&n)?;
            Ok(snap
                .iter()
                .all(|(id, (st, _))| st == "seeding" || *id == seed_ids[0])
                .then_some(()))
        })
        .with_context(|| format!("{:?}", snapshot(&n).ok()))?;
        for name in &half_names {
            ensure!(
                std::fs::read(n_dl.join(name))? == std::fs::read(s_dir.join(name))?,
                "{name} differs"
            );
        }
        n.stop()?;
        s.stop()?;
        Ok(())
    })
}

#[test]
fn killed_download_resumes_without_losing_pieces() -> Result<()> {
    with_timeout(Duration::from_secs(240), || {
        let t = TestDir::new("node-crash")?;
        let tracker = start_tracker(t.path(), 2)?;
        let src = t.sub("src")?;
        let data = src.join("big.bin");
        write_random_file(&data, 4 << 20, 77)?;
        let torrent = t.path().join("big.torrent");
        let id = create_torrent(&data, &tracker.url, &torrent, 32 * 1024)?;
        let _seed = start_seed(&torrent, &src, "big.bin", &["--max-up", "320KiB"])?;

        let (n_data, dl) = (t.path().join("n"), t.sub("dl")?);
        let net = ["--tracker", tracker.url.as_str()];
        let mut n = start_node("node", &n_data, &dl, &net)?;
        n.add_torrent_file(&torrent)?;
        let mut rng = SplitMix64::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as u64,
        );
        let mut kills = 0;
        let mut last_have = 0;
        while kills < 3 {
            let wait = Duration::from_millis(1000 + rng.next_u64() % 2500);
            std::thread::sleep(wait);
            let s = n.torrent(&id)?;
            if state(&s) == "seeding" {
                break;
            }
            let have = s["pieces_have"].as_u64().unwrap_or(0);
            ensure!(have >= last_have, "pieces went from {last_have} to {have}");
            n.proc.kill();
            kills += 1;
            n = start_node(&format!("node after kill {kills}"), &n_data, &dl, &net)?;
            let back = n.wait_torrent(&id, "checked after restart", TRANSFER, |t| {
                matches!(state(t), "downloading" | "seeding")
            })?;
            let now = back["pieces_have"].as_u64().unwrap_or(0);
            ensure!(
                now >= have,
                "after kill {kills}: {now} pieces verified, {have} were before the kill"
            );
            println!("kill {kills} after {wait:?}: {have} pieces before, {now} after restart");
            last_have = now;
        }
        ensure!(
            kills >= 2,
            "the download finished before it could be killed twice"
        );
        n.wait_torrent(&id, "download complete", TRANSFER, |t| {
            state(t) == "seeding"
        })?;
        compare_trees(&src, &dl)?;
        n.stop()?;
        Ok(())
    })
}
