//! Seeding rules end to end, with short limits: real `shoal up` nodes on 127.0.0.1.
//!
//! - A share ratio limit of 1 stops a seeder once another node has downloaded a full
//!   copy from it; with the action `remove`, resuming it removes it and keeps the files.
//! - A seeding time limit of 3 s stops a seed; its own idle limit (the global time
//!   limit turned off for it) stops it again; the seeding time survives a restart.
//! - A node stopped while it seeds keeps its seeding time (written at shutdown).
//! - `seed_while_fewer_seeds` keeps the only seed of a swarm seeding past a ratio
//!   limit of 0; turning it off stops it.

mod common;
mod nodeutil;

use anyhow::{ensure, Context, Result};
use common::*;
use nodeutil::*;
use serde_json::{json, Value};
use std::time::Duration;

const LIMIT_WAIT: Duration = Duration::from_secs(20);

fn paused_with(t: &Value, word: &str) -> bool {
    state(t) == "paused" && t["stop_reason"].as_str().is_some_and(|r| r.contains(word))
}

/// Exports a torrent of `from` and adds it to `to`; returns its id.
fn copy_torrent(from: &Node, to: &Node, id: &str) -> Result<String> {
    let bytes = ureq::get(&from.api(&format!("torrents/{id}/torrent")))
        .call()
        .context("export")?;
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut bytes.into_reader(), &mut buf)?;
    let (s, v) = call_raw(
        "POST",
        &to.api("torrents"),
        "application/x-bittorrent",
        &buf,
    )?;
    ensure!((200..300).contains(&s), "add: {s} {v}");
    Ok(v["id"].as_str().context("id")?.to_string())
}

#[test]
fn ratio_limit_stops_and_remove_keeps_the_files() -> Result<()> {
    with_timeout(Duration::from_secs(150), || {
        let t = TestDir::new("rules-ratio")?;
        let share = t.sub("share")?;
        let file = share.join("one.bin");
        write_random_file(&file, 1 << 20, 3)?;
        let a = start_node(
            "seeder A",
            &t.path().join("a"),
            &t.sub("dl-a")?,
            &["--seed-ratio-limit", "1"],
        )?;
        let tracker = a.tracker.clone().context("A's tracker")?;
        let id = a.share(&file, QUICK)?;
        a.wait_torrent(&id, "A seeds", QUICK, |t| state(t) == "seeding")?;
        let b = start_node(
            "leecher B",
            &t.path().join("b"),
            &t.sub("dl-b")?,
            &["--tracker", &tracker],
        )?;
        copy_torrent(&a, &b, &id)?;
        b.wait_torrent(&id, "B completes", TRANSFER, |t| t["progress"] == 1.0)?;
        let s = a.wait_torrent(&id, "A stops at ratio 1", LIMIT_WAIT, |t| {
            paused_with(t, "ratio")
        })?;
        ensure!(s["ratio"].as_f64().unwrap_or(0.0) >= 1.0, "ratio: {s}");

        a.patch_settings(json!({"seed_limit_action": "remove"}))?;
        a.post(&format!("torrents/{id}/resume"), json!({}))?;
        poll("A removes the torrent", LIMIT_WAIT, || {
            Ok(a.torrents()?.is_empty().then_some(()))
        })?;
        ensure!(file.is_file(), "the shared file was deleted");
        Ok(())
    })
}

#[test]
fn time_and_idle_limits_stop_seeding() -> Result<()> {
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("rules-time")?;
        let file = t.sub("share")?.join("one.bin");
        write_random_file(&file, 200_000, 4)?;
        let data = t.path().join("a");
        let dl = t.sub("dl")?;
        let mut a = start_node("seeder", &data, &dl, &["--seed-time-limit", "0.05"])?;
        let id = a.share(&file, QUICK)?;
        let s = a.wait_torrent(&id, "stopped by seeding time", LIMIT_WAIT, |t| {
            paused_with(t, "seeding time")
        })?;
        let seeded = s["seeding_secs"].as_u64().unwrap_or(0);
        ensure!(seeded >= 3, "seeded {seeded} s: {s}");

        // Its own limits: no seeding time limit, 3 s idle.
        let (st, v) = call(
            "PUT",
            &a.api(&format!("torrents/{id}/limits")),
            Some(json!({"seed_time_limit": -1, "seed_idle_limit": 0.05})),
        )?;
        ensure!(
            st == 200 && v["seed_idle_limit"] == 0.05,
            "limits: {st} {v}"
        );
        a.post(&format!("torrents/{id}/resume"), json!({}))?;
        a.wait_torrent(&id, "seeding again", LIMIT_WAIT, |t| state(t) == "seeding")?;
        a.wait_torrent(&id, "stopped by idle time", LIMIT_WAIT, |t| {
            paused_with(t, "idle")
        })?;
        let (st, _) = call(
            "PUT",
            &a.api(&format!("torrents/{id}/limits")),
            Some(json!({"ratio_limit": "x"})),
        )?;
        ensure!(st == 400, "bad limit: {st}");

        // The seeding time and the torrent's own limits are kept across a restart.
        a.stop()?;
        let a = start_node("seeder again", &data, &dl, &[])?;
        let s = a.torrent(&id)?;
        ensure!(
            s["seeding_secs"].as_u64().unwrap_or(0) >= seeded && s["seed_time_limit"] == -1.0,
            "after restart: {s}"
        );
        ensure!(paused_with(&s, "idle"), "reason kept: {s}");
        Ok(())
    })
}

#[test]
fn the_only_seed_keeps_seeding_past_its_ratio() -> Result<()> {
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("rules-few-seeds")?;
        let file = t.sub("share")?.join("one.bin");
        write_random_file(&file, 200_000, 5)?;
        let a = start_node(
            "seeder",
            &t.path().join("a"),
            &t.sub("dl")?,
            &["--seed-ratio-limit", "0", "--seed-while-fewer-seeds", "2"],
        )?;
        let id = a.share(&file, QUICK)?;
        a.wait_torrent(&id, "seeding", QUICK, |t| state(t) == "seeding")?;
        std::thread::sleep(Duration::from_secs(4));
        let s = a.torrent(&id)?;
        ensure!(state(&s) == "seeding", "stopped though the only seed: {s}");
        a.patch_settings(json!({"seed_while_fewer_seeds": 0}))?;
        a.wait_torrent(&id, "stops at ratio 0", LIMIT_WAIT, |t| {
            paused_with(t, "ratio")
        })?;
        Ok(())
    })
}

/// Seeding times are written every minute and at shutdown: a node stopped while it seeds
/// (no limit, so no stop writes the row) keeps the seconds it seeded.
#[test]
fn seeding_time_is_kept_across_a_graceful_restart() -> Result<()> {
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("rules-seeding-time")?;
        let file = t.sub("share")?.join("one.bin");
        write_random_file(&file, 100_000, 6)?;
        let (data, dl) = (t.path().join("a"), t.sub("dl")?);
        let mut a = start_node("seeder", &data, &dl, &[])?;
        let id = a.share(&file, QUICK)?;
        a.wait_torrent(&id, "seeding", QUICK, |t| state(t) == "seeding")?;
        let s = a.wait_torrent(&id, "3 s seeded", LIMIT_WAIT, |t| {
            t["seeding_secs"].as_u64().unwrap_or(0) >= 3
        })?;
        let seeded = s["seeding_secs"].as_u64().unwrap_or(0);
        a.stop()?;
        let mut a = start_node("seeder again", &data, &dl, &[])?;
        let s = a.torrent(&id)?;
        ensure!(
            s["seeding_secs"].as_u64().unwrap_or(0) >= seeded,
            "{seeded} s seeded before the restart, after it: {s}"
        );
        a.stop()?;
        Ok(())
    })
}
