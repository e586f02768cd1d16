//! Process faults: `shoal up` killed with SIGKILL at random moments, 23 rounds over four
//! tests, each round restarting the node on the same data dir and checking that
//! verified progress is never lost and the store is never corrupt:
//! - during a download (8 rounds): every piece verified before the kill is verified
//!   after the restart; at the end the download completes byte-identical;
//! - during a check (6 rounds): the node restarts into the check again, and ends with
//!   every piece of the untouched data verified;
//! - during state writes (5 rounds): adds, pauses, resumes, file choices and removals
//!   from four threads at once; every change the API acknowledged is there after the
//!   restart (or the one in flight after it, which may have been committed unanswered);
//! - during the hashing of a share (4 rounds): the node comes back clean, and sharing
//!   the folder again completes.
//!
//! After every kill `PRAGMA integrity_check` runs on a copy of `shoal.db` (with its WAL),
//! so the node's own recovery is what the next start sees. Delays are drawn from a
//! seeded RNG; the seed is printed, and `SHOAL_KILL_SEED=N` replays it.

mod common;
mod nodeutil;

use anyhow::{bail, ensure, Context, Result};
use base64::Engine;
use common::*;
use nodeutil::*;
use serde_json::json;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A seeded RNG; prints its seed.
fn rng(test: &str) -> SplitMix64 {
    let seed = std::env::var("SHOAL_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("{test}: SHOAL_KILL_SEED={seed}");
    SplitMix64::new(seed)
}

/// A delay drawn uniformly from `lo..hi` milliseconds.
fn between(rng: &mut SplitMix64, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(lo + rng.next_u64() % (hi - lo).max(1))
}

/// Runs `PRAGMA integrity_check` on a copy of the node's `shoal.db` (and its WAL and
/// shared-memory files), leaving the original for the node to recover itself.
fn check_store(data: &Path, scratch: &Path) -> Result<()> {
    std::fs::create_dir_all(scratch)?;
    for suffix in ["", "-wal", "-shm"] {
        let from = data.join(format!("shoal.db{suffix}"));
        let to = scratch.join(format!("shoal.db{suffix}"));
        let _ = std::fs::remove_file(&to);
        if from.exists() {
            std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
        }
    }
    let c = rusqlite::Connection::open(scratch.join("shoal.db"))?;
    let verdict: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    ensure!(verdict == "ok", "shoal.db is corrupt: {verdict}");
    let n: i64 = c.query_row("SELECT count(*) FROM torrents", [], |r| r.get(0))?;
    ensure!(n >= 0);
    Ok(())
}

/// The torrent's verified pieces (`GET /api/torrents/:id/pieces`).
fn pieces(node: &Node, id: &str) -> Result<Vec<bool>> {
    let p = node.get(&format!("torrents/{id}/pieces"))?;
    let count = p["count"].as_u64().context("count")? as usize;
    let bits =
        base64::engine::general_purpose::STANDARD.decode(p["have"].as_str().context("have")?)?;
    Ok((0..count)
        .map(|i| bits.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
        .collect())
}

fn count(bits: &[bool]) -> usize {
    bits.iter().filter(|&&b| b).count()
}

#[test]
fn kills_during_a_download_lose_no_verified_piece() -> Result<()> {
    with_timeout(Duration::from_secs(240), || {
        let mut rng = rng("download");
        let t = TestDir::new("kill-download")?;
        let tracker = start_tracker(t.path(), 2)?;
        let src = t.sub("src")?;
        write_random_file(&src.join("big.bin"), 12 << 20, 78)?;
        let torrent = t.path().join("big.torrent");
        let id = create_torrent(&src.join("big.bin"), &tracker.url, &torrent, 64 * 1024)?;
        let _seed = start_seed(&torrent, &src, "big.bin", &["--max-up", "640KiB"])?;
        let (data, dl) = (t.path().join("n"), t.sub("dl")?);
        let net = ["--tracker", tracker.url.as_str()];
        let mut n = start_node("node", &data, &dl, &net)?;
        n.add_torrent_file(&torrent)?;
        let mut kills = 0;
        while kills < 8 {
            let wait = between(&mut rng, 300, 2000);
            std::thread::sleep(wait);
            let before = pieces(&n, &id)?;
            if count(&before) == before.len() {
                bail!("the download finished after {kills} kills; slow the seeder down");
            }
            n.proc.kill();
            kills += 1;
            check_store(&data, &t.path().join("db-copy"))?;
            n = start_node(&format!("node after kill {kills}"), &data, &dl, &net)?;
            n.wait_torrent(&id, "checked after restart", TRANSFER, |t| {
                matches!(state(t), "downloading" | "seeding")
            })?;
            let after = pieces(&n, &id)?;
            let lost: Vec<usize> = (0..before.len())
                .filter(|&i| before[i] && !after[i])
                .collect();
            println!(
                "kill {kills} after {wait:?}: {} pieces verified before, {} after restart",
                count(&before),
                count(&after)
            );
            ensure!(
                lost.is_empty(),
                "kill {kills}: pieces {lost:?} were verified before the kill and are not now"
            );
        }
        n.wait_torrent(&id, "download complete", TRANSFER, |t| {
            state(t) == "seeding"
        })?;
        compare_trees(&src, &dl)?;
        n.stop()?;
        Ok(())
    })
}

/// Gives `file` a new modification time (an hour and `round` seconds ago), so the
/// node's resume record no longer matches it and the next start checks it.
fn touch(file: &Path, round: u64) -> Result<()> {
    let f = std::fs::File::options().write(true).open(file)?;
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600 + round))?;
    Ok(())
}

#[test]
fn kills_during_a_check_keep_the_data() -> Result<()> {
    with_timeout(Duration::from_secs(240), || {
        let mut rng = rng("check");
        let t = TestDir::new("kill-check")?;
        let tracker = start_tracker(t.path(), 2)?;
        let src = t.sub("src")?;
        write_random_file(&src.join("big.bin"), 32 << 20, 79)?;
        let torrent = t.path().join("big.torrent");
        let id = create_torrent(&src.join("big.bin"), &tracker.url, &torrent, 64 * 1024)?;
        // The data is already in the download dir: adding the torrent checks it.
        let (data, dl) = (t.path().join("n"), t.sub("dl")?);
        std::fs::copy(src.join("big.bin"), dl.join("big.bin"))?;
        let net = ["--tracker", tracker.url.as_str()];
        let mut n = start_node("node", &data, &dl, &net)?;
        n.add_torrent_file(&torrent)?;
        let mut max_wait = 1500u64;
        let mut mid_check = 0;
        let mut round = 0;
        while mid_check < 6 {
            ensure!(
                round < 20,
                "only {mid_check} of {round} kills landed in a check"
            );
            round += 1;
            let s = n.wait_torrent(&id, "checking", TRANSFER, |t| {
                matches!(state(t), "checking" | "seeding")
            })?;
            if state(&s) == "seeding" {
                // The last kill came just after the check finished: the record now
                // trusts the file. Change its stamp so the next start checks again.
                n.proc.kill();
                touch(&dl.join("big.bin"), round)?;
                n = start_node(&format!("node restarted {round}"), &data, &dl, &net)?;
                continue;
            }
            let wait = between(&mut rng, 50, max_wait);
            std::thread::sleep(wait);
            let s = n.torrent(&id)?;
            let was = state(&s).to_string();
            n.proc.kill();
            check_store(&data, &t.path().join("db-copy"))?;
            if was == "checking" {
                mid_check += 1;
            } else {
                // The check was done before the kill: aim earlier, and make the next
                // start check again (the record now trusts the file's stamp).
                max_wait = (max_wait / 2).max(100);
                touch(&dl.join("big.bin"), round)?;
            }
            println!("round {round}: killed {wait:?} after `checking` was seen, while {was}");
            n = start_node(&format!("node after kill {round}"), &data, &dl, &net)?;
        }
        let done = n.wait_torrent(&id, "checked", TRANSFER, |t| {
            matches!(state(t), "seeding" | "downloading" | "error")
        })?;
        ensure!(
            state(&done) == "seeding" && count(&pieces(&n, &id)?) == 512,
            "after the check: {done}"
        );
        compare_trees(&src, &dl)?;
        n.stop()?;
        Ok(())
    })
}

/// What the test knows of one torrent of the state-write rounds.
#[derive(Clone, Debug, PartialEq)]
struct Model {
    present: bool,
    paused: bool,
    /// Per file: (wanted, priority).
    files: Vec<(bool, String)>,
}

impl Model {
    fn new(files: usize) -> Model {
        Model {
            present: false,
            paused: false,
            files: vec![(true, "normal".into()); files],
        }
    }
}

/// One change to a torrent, applied to the model once the API acknowledged it.
#[derive(Clone, Debug)]
enum Op {
    Add,
    Pause,
    Resume,
    File(usize, bool, &'static str),
    Remove,
}

impl Op {
    fn apply(&self, m: &mut Model) {
        match self {
            Op::Add => {
                *m = Model {
                    present: true,
                    ..Model::new(m.files.len())
                }
            }
            Op::Pause => m.paused = true,
            Op::Resume => m.paused = false,
            Op::File(i, w, p) => m.files[*i] = (*w, p.to_string()),
            Op::Remove => *m = Model::new(m.files.len()),
        }
    }

    /// Sends the op; `Err` when the node refused it or did not answer (killed).
    fn send(&self, node_url: &str, id: &str, torrent: &[u8]) -> Result<()> {
        let api = |p: &str| format!("{node_url}api/{p}");
        let (st, v) = match self {
            Op::Add => call_raw(
                "POST",
                &api("torrents"),
                "application/x-bittorrent",
                torrent,
            )?,
            Op::Pause => call(
                "POST",
                &api(&format!("torrents/{id}/pause")),
                Some(json!({})),
            )?,
            Op::Resume => call(
                "POST",
                &api(&format!("torrents/{id}/resume")),
                Some(json!({})),
            )?,
            Op::File(i, w, p) => call(
                "PUT",
                &api(&format!("torrents/{id}/files/{i}")),
                Some(json!({"wanted": w, "priority": p})),
            )?,
            Op::Remove => call("DELETE", &api(&format!("torrents/{id}")), None)?,
        };
        ensure!((200..300).contains(&st), "{self:?} on {id}: HTTP {st} {v}");
        Ok(())
    }
}

/// A torrent of the state-write rounds: id, `.torrent` bytes, model, op in flight.
struct Tracked {
    id: String,
    bytes: Vec<u8>,
    model: Model,
    in_flight: Option<Op>,
}

/// The node's view of a torrent, as a model.
fn observe(node: &Node, id: &str, files: usize) -> Result<Model> {
    let (st, s) = call("GET", &node.api(&format!("torrents/{id}")), None)?;
    if st == 404 {
        return Ok(Model::new(files));
    }
    ensure!(st == 200, "GET torrent {id}: {st} {s}");
    let list = node.get(&format!("torrents/{id}/files"))?;
    let files = list
        .as_array()
        .context("files")?
        .iter()
        .map(|f| {
            (
                f["wanted"].as_bool().unwrap_or(false),
                f["priority"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    Ok(Model {
        present: true,
        paused: state(&s) == "paused",
        files,
    })
}

/// A random op that the model allows (present torrents are changed or removed, absent
/// ones added).
fn pick_op(rng: &mut SplitMix64, m: &Model) -> Op {
    if !m.present {
        return Op::Add;
    }
    match rng.next_u64() % 10 {
        0 => Op::Remove,
        1..=2 => Op::Pause,
        3..=4 => Op::Resume,
        _ => {
            let i = (rng.next_u64() % m.files.len() as u64) as usize;
            let p = ["low", "normal", "high"][(rng.next_u64() % 3) as usize];
            Op::File(i, rng.next_u64() % 4 != 0, p)
        }
    }
}

#[test]
fn kills_during_state_writes_keep_every_acknowledged_change() -> Result<()> {
    with_timeout(Duration::from_secs(240), || {
        let mut rng = rng("state writes");
        let t = TestDir::new("kill-writes")?;
        let tracker = start_tracker(t.path(), 2)?;
        // Eight torrents of three files each; their data is nowhere, so they wait.
        let src = t.sub("src")?;
        let mut all = Vec::new();
        for k in 0..8 {
            let dir = src.join(format!("t{k}"));
            make_files(
                &dir,
                &[("a", 40_000), ("b/c", 30_000), ("d", 20_000)],
                100 * k,
            )?;
            let out = t.path().join(format!("t{k}.torrent"));
            let id = create_torrent(&dir, &tracker.url, &out, 16 * 1024)?;
            all.push(Tracked {
                id,
                bytes: std::fs::read(&out)?,
                model: Model::new(3),
                in_flight: None,
            });
        }
        std::fs::remove_dir_all(&src)?;
        let (data, dl) = (t.path().join("n"), t.sub("dl")?);
        let net = ["--tracker", tracker.url.as_str()];
        let all = Arc::new(Mutex::new(all));
        let mut n = start_node("node", &data, &dl, &net)?;
        for round in 1..=5 {
            // Four workers, two torrents each, firing changes until the node dies.
            let workers: Vec<_> = (0..4)
                .map(|w| {
                    let all = all.clone();
                    let url = n.url.clone();
                    let mut rng = SplitMix64::new(rng.next_u64());
                    std::thread::spawn(move || -> usize {
                        let mut acked = 0;
                        loop {
                            let k = 2 * w + (rng.next_u64() % 2) as usize;
                            let (op, id, bytes) = {
                                let mut all = all.lock().unwrap();
                                let tr = &mut all[k];
                                let op = pick_op(&mut rng, &tr.model);
                                tr.in_flight = Some(op.clone());
                                (op, tr.id.clone(), tr.bytes.clone())
                            };
                            let sent = op.send(&url, &id, &bytes);
                            let mut all = all.lock().unwrap();
                            let tr = &mut all[k];
                            match sent {
                                Ok(()) => {
                                    op.apply(&mut tr.model);
                                    tr.in_flight = None;
                                    acked += 1;
                                }
                                // Refused or unanswered: it may or may not be stored.
                                Err(_) => return acked,
                            }
                        }
                    })
                })
                .collect();
            let wait = between(&mut rng, 200, 1500);
            std::thread::sleep(wait);
            n.proc.kill();
            let acked: usize = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
            check_store(&data, &t.path().join("db-copy"))?;
            n = start_node(&format!("node after kill {round}"), &data, &dl, &net)?;
            let mut all = all.lock().unwrap();
            let mut in_flight_won = 0;
            for tr in all.iter_mut() {
                let seen = observe(&n, &tr.id, 3)?;
                if seen == tr.model {
                    tr.in_flight = None;
                    continue;
                }
                // The request in flight at the kill may have been committed unanswered.
                let mut alt = tr.model.clone();
                if let Some(op) = tr.in_flight.take() {
                    op.apply(&mut alt);
                }
                ensure!(
                    seen == alt,
                    "round {round}: torrent {} is {seen:?}; acknowledged {:?}",
                    tr.id,
                    tr.model
                );
                tr.model = alt;
                in_flight_won += 1;
            }
            println!(
                "round {round}: killed after {wait:?}, {acked} changes acknowledged, all \
                 there after restart ({in_flight_won} unanswered ones too)"
            );
            ensure!(
                acked > 0,
                "round {round}: no change was acknowledged before the kill"
            );
        }
        n.stop()?;
        Ok(())
    })
}

#[test]
fn kills_while_hashing_a_share_leave_a_clean_node() -> Result<()> {
    with_timeout(Duration::from_secs(240), || {
        let mut rng = rng("share");
        let t = TestDir::new("kill-share")?;
        let tracker = start_tracker(t.path(), 2)?;
        let folder = t.path().join("photos");
        make_files(
            &folder,
            &[
                ("a.bin", 12 << 20),
                ("b/c.bin", 10 << 20),
                ("d.bin", 6 << 20),
            ],
            500,
        )?;
        let (data, dl) = (t.path().join("n"), t.sub("dl")?);
        let net = ["--tracker", tracker.url.as_str()];
        let mut n = start_node("node", &data, &dl, &net)?;
        let mut max_wait = 1500u64;
        let (mut mid_hash, mut round) = (0, 0);
        while mid_hash < 4 {
            ensure!(
                round < 15,
                "only {mid_hash} of {round} kills landed while hashing"
            );
            round += 1;
            let job = n.post("share", json!({"path": folder}))?;
            let job = job["job_id"].as_str().context("job_id")?.to_string();
            let wait = between(&mut rng, 20, max_wait);
            std::thread::sleep(wait);
            let j = n.get(&format!("jobs/{job}"))?;
            n.proc.kill();
            let was = j["state"].as_str().unwrap_or("").to_string();
            check_store(&data, &t.path().join("db-copy"))?;
            n = start_node(&format!("node after kill {round}"), &data, &dl, &net)?;
            // A share whose hashing ended just before the kill may be there, but only
            // whole: seeding every piece. It is removed for the next round.
            let list = n.torrents()?;
            for s in &list {
                let id = s["id"].as_str().context("id")?;
                let s = n.wait_torrent(id, "back seeding", TRANSFER, |t| {
                    matches!(state(t), "seeding" | "downloading" | "error")
                })?;
                ensure!(
                    state(&s) == "seeding" && s["pieces_have"] == s["pieces"],
                    "round {round}: a half-hashed share came back: {s}"
                );
                let (st, _) = call("DELETE", &n.api(&format!("torrents/{id}")), None)?;
                ensure!(st == 204);
            }
            if was == "hashing" {
                mid_hash += 1;
                println!(
                    "round {round}: killed {wait:?} into hashing ({} of {} bytes), {} \
                     torrents after restart",
                    j["done_bytes"],
                    j["total_bytes"],
                    list.len()
                );
            } else {
                println!("round {round}: hashing was {was} {wait:?} after the share");
                max_wait = (max_wait / 2).max(50);
            }
            ensure!(
                n.get("jobs")?.as_array().is_some_and(|j| j.is_empty()),
                "jobs survived the kill"
            );
        }
        let id = n.share(&folder, TRANSFER)?;
        let s = n.wait_torrent(&id, "seeding", TRANSFER, |t| state(t) == "seeding")?;
        ensure!(
            s["pieces_have"] == s["pieces"] && s["size"].as_u64() == Some(28 << 20),
            "{s}"
        );
        n.stop()?;
        Ok(())
    })
}
