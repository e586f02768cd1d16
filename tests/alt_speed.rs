//! Alternative speed limits end to end: a `shoal up` downloading from another on
//! 127.0.0.1 with a 256 KiB/s alternative download limit scheduled all day, every day.
//! `/api/stats` shows the alternative limits in effect and the measured rate stays
//! under them; with a schedule that covers no day, the normal (unlimited) limits
//! return and the download finishes at once.

mod common;
mod nodeutil;

use anyhow::{ensure, Context, Result};
use common::*;
use nodeutil::*;
use serde_json::json;
use std::time::{Duration, Instant};

const ALT: u64 = 256 * 1024;
const SIZE: u64 = 6 << 20;

#[test]
fn scheduled_alternative_limits_apply_and_lift() -> Result<()> {
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("alt-speed")?;
        let file = t.sub("share")?.join("big.bin");
        write_random_file(&file, SIZE, 51)?;
        let s = start_node("seeder", &t.path().join("s"), &t.sub("dl-s")?, &[])?;
        let tracker = s.tracker.clone().context("tracker")?;
        let id = s.share(&file, QUICK)?;
        let l = start_node(
            "leecher",
            &t.path().join("l"),
            &t.sub("dl-l")?,
            &[
                "--tracker",
                &tracker,
                "--alt-max-down",
                "256KiB",
                "--alt-schedule",
                "true",
                "--alt-schedule-days",
                "all",
                "--alt-schedule-begin",
                "00:00",
                "--alt-schedule-end",
                "24:00",
            ],
        )?;
        let stats = l.get("stats")?;
        ensure!(
            stats["alt_speed_active"] == true && stats["limit_down"] == ALT,
            "stats: {stats}"
        );
        let r = ureq::get(&s.api(&format!("torrents/{id}/torrent"))).call()?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes)?;
        let (st, v) = call_raw(
            "POST",
            &l.api("torrents"),
            "application/x-bittorrent",
            &bytes,
        )?;
        ensure!((200..300).contains(&st), "add: {st} {v}");
        // Measure from the first byte over 6 s.
        let t0 = l.wait_torrent(&id, "download starts", TRANSFER, |t| {
            t["downloaded"].as_u64().unwrap_or(0) > 0
        })?;
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(6));
        let t1 = l.torrent(&id)?;
        let got = t1["downloaded"].as_u64().unwrap_or(0) - t0["downloaded"].as_u64().unwrap_or(0);
        let rate = got as f64 / start.elapsed().as_secs_f64();
        ensure!(
            rate < ALT as f64 * 1.3 && got > 0,
            "rate {rate:.0} B/s under a {ALT} B/s limit"
        );
        ensure!(t1["progress"].as_f64().unwrap_or(1.0) < 1.0, "already done");

        // A schedule on no day: the normal limits (none) return.
        let after = l.patch_settings(json!({"alt_schedule_days": 0}))?;
        ensure!(after["alt_schedule_days"] == 0, "settings: {after}");
        let stats = l.get("stats")?;
        ensure!(
            stats["alt_speed_active"] == false && stats["limit_down"] == 0,
            "stats: {stats}"
        );
        l.wait_torrent(
            &id,
            "completes without the limit",
            Duration::from_secs(30),
            |t| t["progress"] == 1.0,
        )?;
        Ok(())
    })
}
