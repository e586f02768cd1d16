//! `shoal up` end to end: identity across restarts, two nodes sharing through the
//! embedded tracker (API and catalog), and the API's error paths.

mod common;
mod nodeutil;

use anyhow::{ensure, Context, Result};
use common::*;
use nodeutil::*;
use serde_json::json;
use std::io::Read as _;
use std::time::Duration;

#[test]
fn peer_id_is_kept_per_data_dir() -> Result<()> {
    with_timeout(Duration::from_secs(90), || {
        let t = TestDir::new("node-id")?;
        let dl = t.sub("dl")?;
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        let mut n = start_node("node a", &a, &dl, &[])?;
        let first = n.peer_id.clone();
        ensure!(
            first.starts_with("-SH0100-") && first.len() == 20,
            "peer id {first:?}"
        );
        ensure!(n.get("node")?["peer_id"] == first, "API peer id differs");
        n.stop()?;
        let mut n = start_node("node a again", &a, &dl, &[])?;
        ensure!(
            n.peer_id == first,
            "peer id changed: {first} -> {}",
            n.peer_id
        );
        let mut other = start_node("node b", &b, &dl, &[])?;
        ensure!(other.peer_id != first, "two data dirs share a peer id");
        ensure!(a.join("node.json").is_file(), "node.json missing");
        n.stop()?;
        other.stop()?;
        ensure!(
            !a.join("node.json").exists(),
            "node.json left after a clean stop"
        );
        Ok(())
    })
}

#[test]
fn shared_on_a_downloaded_by_b_through_the_api() -> Result<()> {
    with_timeout(Duration::from_secs(150), || {
        let t = TestDir::new("node-pair")?;
        let share = t.sub("share")?;
        let data = share.join("album");
        make_files(
            &data,
            &[("one.bin", 700_000), ("sub/two.bin", 123_457), ("empty", 0)],
            11,
        )?;
        let a = start_node("node A", &t.path().join("a"), &t.sub("dl-a")?, &[])?;
        let tracker = a.tracker.clone().context("A runs the embedded tracker")?;
        let b = start_node(
            "node B",
            &t.path().join("b"),
            &t.sub("dl-b")?,
            &["--tracker", &tracker],
        )?;
        let id = a.share(&data, TRANSFER)?;
        let ta = a.wait_torrent(&id, "A seeds", TRANSFER, |t| state(t) == "seeding")?;
        ensure!(ta["progress"] == 1.0, "A: {ta}");

        // B finds it in the tracker's catalog by a prefix and fetches it.
        let found = poll("catalog lists the share", QUICK, || {
            let r = b.get("search?q=album")?;
            let ids: Vec<String> = r["results"]
                .as_array()
                .context("results")?
                .iter()
                .filter_map(|h| h["id"].as_str().map(String::from))
                .collect();
            Ok(ids.contains(&id).then_some(ids))
        })?;
        ensure!(found.contains(&id));
        let (status, added) = call("POST", &b.api("get"), Some(json!({"id": &id[..8]})))?;
        ensure!(status == 201, "POST /api/get: {status} {added}");
        ensure!(added["id"] == id.as_str(), "{added}");
        let (status, again) = call("POST", &b.api("get"), Some(json!({"id": &id})))?;
        ensure!(
            status == 409 && again["id"] == id.as_str(),
            "second get: {status} {again}"
        );

        let done = b.wait_torrent(&id, "B completes", TRANSFER, |t| state(t) == "seeding")?;
        ensure!(
            done["progress"] == 1.0 && done["role"] == "seeder",
            "{done}"
        );
        compare_trees(&data, &t.path().join("dl-b").join("album"))?;

        // History, log and counters are written within a second or two.
        poll("history, transfer log and stats", QUICK, || {
            let hist = b.get("history?status=completed")?;
            let recorded = hist
                .as_array()
                .is_some_and(|h| h.iter().any(|r| r["id"] == id.as_str()));
            let log = b.get(&format!("log?direction=down&torrent={}", &id[..6]))?;
            let logged = log["total"].as_u64().unwrap_or(0) > 0;
            let stats = b.get("stats")?;
            let counted = stats["downloads_completed"] == 1
                && stats["downloaded"].as_u64().unwrap_or(0) >= 823_457;
            Ok((recorded && logged && counted).then_some(()))
        })?;
        let peers = a.get(&format!("torrents/{id}/peers"))?;
        ensure!(peers.as_array().is_some(), "{peers}");
        Ok(())
    })
}

#[test]
fn api_error_paths_and_queue() -> Result<()> {
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("node-errors")?;
        let src = t.sub("src")?;
        // No seeder anywhere: these stay downloading (or queued) for the whole test.
        let tracker = "http://127.0.0.1:1/announce";
        let mut ids = Vec::new();
        for i in 0..2 {
            let data = src.join(format!("lonely{i}.bin"));
            write_random_file(&data, 100_000, 40 + i)?;
            let torrent = t.path().join(format!("lonely{i}.torrent"));
            ids.push((create_torrent(&data, tracker, &torrent, 16384)?, torrent));
        }
        let n = start_node(
            "node",
            &t.path().join("n"),
            &t.sub("dl")?,
            &["--tracker", tracker, "--max-active", "1"],
        )?;

        // Unknown, malformed and ambiguous ids.
        let (s, v) = call("GET", &n.api("torrents/00000000"), None)?;
        ensure!(s == 404 && v["error"].is_string(), "unknown id: {s} {v}");
        let (s, _) = call("POST", &n.api("torrents/zz/pause"), None)?;
        ensure!(s == 400, "malformed id: {s}");
        let (s, _) = call("GET", &n.api("jobs/j999"), None)?;
        ensure!(s == 404, "unknown job: {s}");
        let (s, _) = call("GET", &n.api("nope"), None)?;
        ensure!(s == 404, "unknown endpoint: {s}");

        // Malformed bodies.
        let (s, v) = call_raw("POST", &n.api("torrents"), "application/json", b"{not json")?;
        ensure!(
            s == 400 && v["error"].is_string(),
            "malformed JSON: {s} {v}"
        );
        let (s, _) = call(
            "POST",
            &n.api("torrents"),
            Some(json!({"torrent_base64": "!!"})),
        )?;
        ensure!(s == 400, "bad base64: {s}");
        let (s, _) = call_raw(
            "POST",
            &n.api("torrents"),
            "application/x-bittorrent",
            b"d4:infoe",
        )?;
        ensure!(s == 400, "bad torrent: {s}");
        let (s, _) = call("POST", &n.api("share"), Some(json!({"path": "relative"})))?;
        ensure!(s == 400, "relative share path: {s}");
        let (s, _) = call_raw(
            "PATCH",
            &n.api("settings"),
            "application/json",
            b"{\"max_up\": \"x\"}",
        )?;
        ensure!(s == 400, "bad settings: {s}");
        let (s, _) = call("GET", &n.api("log?direction=sideways"), None)?;
        ensure!(s == 400, "bad log filter: {s}");

        // Adding twice: 409 with the id. The second download waits for the slot.
        let first = n.add_torrent_file(&ids[0].1)?;
        ensure!(first["id"] == ids[0].0.as_str(), "{first}");
        let (s, v) = call_raw(
            "POST",
            &n.api("torrents"),
            "application/x-bittorrent",
            &std::fs::read(&ids[0].1)?,
        )?;
        ensure!(
            s == 409 && v["id"] == ids[0].0.as_str(),
            "duplicate: {s} {v}"
        );
        let b64 = base64_encode(&std::fs::read(&ids[1].1)?);
        let (s, second) = call(
            "POST",
            &n.api("torrents"),
            Some(json!({"torrent_base64": b64})),
        )?;
        ensure!(s == 201, "add base64: {s} {second}");
        n.wait_torrent(&ids[0].0, "first downloads", QUICK, |t| {
            state(t) == "downloading"
        })?;
        n.wait_torrent(&ids[1].0, "second queued", QUICK, |t| state(t) == "queued")?;

        // The unreachable tracker: an error, and a retry due within the first back-off (15 s),
        // not after an interval; a queued torrent has no announce due.
        let trackers = format!("torrents/{}/trackers", ids[0].0);
        let tr = poll("a failed announce", QUICK, || {
            let v = n.get(&trackers)?;
            Ok((v[0]["failures"].as_u64() >= Some(1)).then_some(v))
        })?;
        let next = tr[0]["next_announce_in"].as_u64();
        ensure!(
            tr[0]["status"] == "error" && next.is_some_and(|s| s <= 15),
            "trackers after a failed announce: {tr}"
        );
        let tr = n.get(&format!("torrents/{}/trackers", ids[1].0))?;
        ensure!(
            tr[0]["next_announce_in"].is_null() && tr[0]["failures"] == 0,
            "queued: {tr}"
        );

        // Files: out of range is 404, a change is returned.
        let (s, _) = call(
            "PUT",
            &n.api(&format!("torrents/{}/files/7", ids[0].0)),
            Some(json!({"wanted": false})),
        )?;
        ensure!(s == 404, "file index out of range: {s}");
        let (s, f) = call(
            "PUT",
            &n.api(&format!("torrents/{}/files/0", ids[0].0)),
            Some(json!({"priority": "high"})),
        )?;
        ensure!(s == 200 && f["priority"] == "high", "set priority: {s} {f}");

        // Removing during a download: 204, gone, recorded as cancelled; the queue moves.
        let (s, _) = call(
            "DELETE",
            &n.api(&format!("torrents/{}?delete_data=true", &ids[0].0[..10])),
            None,
        )?;
        ensure!(s == 204, "remove: {s}");
        let (s, _) = call("GET", &n.api(&format!("torrents/{}", ids[0].0)), None)?;
        ensure!(s == 404, "removed torrent still listed: {s}");
        let (s, _) = call("DELETE", &n.api(&format!("torrents/{}", ids[0].0)), None)?;
        ensure!(s == 404, "second remove: {s}");
        let hist = n.get("history?status=cancelled")?;
        ensure!(
            hist.as_array()
                .is_some_and(|h| h.iter().any(|r| r["id"] == ids[0].0.as_str())),
            "no cancelled record: {hist}"
        );
        n.wait_torrent(&ids[1].0, "second starts", QUICK, |t| {
            state(t) == "downloading"
        })?;

        // Pause and resume round trip; export gives back the same bytes.
        let p = n.post(&format!("torrents/{}/pause", ids[1].0), json!({}))?;
        ensure!(state(&p) == "paused", "{p}");
        let r = n.post(&format!("torrents/{}/resume", ids[1].0), json!({}))?;
        ensure!(state(&r) != "paused", "{r}");
        let exported = ureq::get(&n.api(&format!("torrents/{}/torrent", ids[1].0)))
            .call()?
            .into_reader();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut exported.take(1 << 20), &mut bytes)?;
        ensure!(
            bytes == std::fs::read(&ids[1].1)?,
            "exported .torrent differs"
        );
        let (s, v) = call("PATCH", &n.api("settings"), Some(json!({"max_up": 1000})))?;
        ensure!(s == 200 && v["max_up"] == 1000, "{s} {v}");
        Ok(())
    })
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A finished download's rates fall back to 0 while it seeds (the engine's rate window
/// is 5 s), and a seeder of its own share that uploaded gets a ratio over its size.
#[test]
fn rates_fall_to_zero_after_completion_and_seeder_ratio() -> Result<()> {
    with_timeout(Duration::from_secs(150), || {
        let t = TestDir::new("node-idle-rate")?;
        let data = t.sub("share")?.join("idle.bin");
        write_random_file(&data, 3_000_000, 21)?;
        let a = start_node("node A", &t.path().join("a"), &t.sub("dl-a")?, &[])?;
        let tracker = a.tracker.clone().context("A runs the embedded tracker")?;
        // B's limit makes the download last a few seconds, so its rate is seen above 0.
        let b = start_node(
            "node B",
            &t.path().join("b"),
            &t.sub("dl-b")?,
            &["--tracker", &tracker, "--max-down", "1000000"],
        )?;
        let id = a.share(&data, TRANSFER)?;
        a.wait_torrent(&id, "A seeds", TRANSFER, |t| state(t) == "seeding")?;
        let (status, added) = call("POST", &b.api("get"), Some(json!({"id": &id})))?;
        ensure!(status == 201, "POST /api/get: {status} {added}");
        b.wait_torrent(&id, "B downloads at a rate", TRANSFER, |t| {
            t["down_rate"].as_u64().unwrap_or(0) > 0 || state(t) == "seeding"
        })?;
        let done = b.wait_torrent(&id, "B completes", TRANSFER, |t| state(t) == "seeding")?;
        ensure!(done["down_rate"] != 0, "B's rate was never above 0: {done}");
        b.wait_torrent(&id, "B's down_rate back to 0", QUICK, |t| {
            t["down_rate"] == 0 && t["up_rate"] == 0
        })?;
        poll("B's node-wide down_rate back to 0", QUICK, || {
            Ok((b.get("stats")?["down_rate"] == 0).then_some(()))
        })?;
        // A never downloaded: its ratio is uploaded / size, 1.0 after one full copy.
        let seeded = a.wait_torrent(&id, "A counts the upload", QUICK, |t| {
            t["uploaded"].as_u64().unwrap_or(0) >= 3_000_000
        })?;
        let ratio = seeded["ratio"].as_f64().context("ratio")?;
        let expect = seeded["uploaded"].as_f64().context("uploaded")? / 3_000_000.0;
        ensure!(
            seeded["downloaded"] == 0 && (ratio - expect).abs() < 1e-9 && ratio >= 1.0,
            "A: {seeded}"
        );
        Ok(())
    })
}

/// `PATCH /api/settings` `max_down` shows in `GET /api/settings` and reaches the engine:
/// 1.5 MB at 256 KiB/s (plus a one-second burst) cannot arrive in under 3 s. A lower
/// bound only, so a slow machine cannot make it fail. `/api/fs` lists every share root.
#[test]
fn download_limit_set_through_the_api_slows_a_download() -> Result<()> {
    with_timeout(Duration::from_secs(150), || {
        let t = TestDir::new("node-limit")?;
        let data = t.sub("share")?.join("slow.bin");
        write_random_file(&data, 1_500_000, 33)?;
        let a = start_node("node A", &t.path().join("a"), &t.sub("dl-a")?, &[])?;
        let tracker = a.tracker.clone().context("A runs the embedded tracker")?;
        let dl_b = t.sub("dl-b")?;
        let b = start_node(
            "node B",
            &t.path().join("b"),
            &dl_b,
            &["--tracker", &tracker],
        )?;
        let fs = b.get("fs")?;
        let roots = fs["roots"].as_array().context("roots")?;
        let dl = dl_b.canonicalize()?.display().to_string();
        ensure!(
            roots.iter().any(|r| r == dl.as_str()) && fs["path"] == roots[0],
            "GET /api/fs: {fs}"
        );

        let limit = 256 * 1024;
        let (s, v) = call(
            "PATCH",
            &b.api("settings"),
            Some(json!({"max_down": limit})),
        )?;
        ensure!(s == 200 && v["max_down"] == limit, "PATCH: {s} {v}");
        let got = b.get("settings")?;
        ensure!(got["max_down"] == limit && got["max_up"] == 0, "GET: {got}");

        let id = a.share(&data, TRANSFER)?;
        a.wait_torrent(&id, "A seeds", TRANSFER, |t| state(t) == "seeding")?;
        let start = std::time::Instant::now();
        let (status, added) = call("POST", &b.api("get"), Some(json!({"id": &id})))?;
        ensure!(status == 201, "POST /api/get: {status} {added}");
        b.wait_torrent(&id, "B completes", TRANSFER, |t| state(t) == "seeding")?;
        let took = start.elapsed();
        ensure!(
            took >= Duration::from_secs(3),
            "1.5 MB arrived in {took:?} despite max_down = 256 KiB/s"
        );
        Ok(())
    })
}

/// Another web site cannot drive the node through the user's browser: a foreign `Origin`
/// or `Host` is 403, a body without its proper `Content-Type` is 415 (a cross-site form
/// can only send `text/plain` and friends), and paths outside the share roots and the
/// download dir are 400. The node's own origin (the web UI) still works.
#[test]
fn cross_site_requests_and_paths_outside_the_roots_are_refused() -> Result<()> {
    with_timeout(Duration::from_secs(90), || {
        let t = TestDir::new("node-guard")?;
        let elsewhere = TestDir::new("node-guard-outside")?;
        let dl = t.sub("dl")?;
        let data = t.sub("src")?.join("guarded.bin");
        write_random_file(&data, 50_000, 77)?;
        let tracker = "http://127.0.0.1:1/announce";
        let torrent = t.path().join("guarded.torrent");
        let id = create_torrent(&data, tracker, &torrent, 16384)?;
        let b64 = base64_encode(&std::fs::read(&torrent)?);
        let n = start_node(
            "node",
            &t.path().join("n"),
            &dl,
            &["--tracker", tracker, "--max-upload", "100000"],
        )?;
        let own = n.url.trim_end_matches('/').to_string();
        let port = own.rsplit(':').next().context("port")?.to_string();
        let evil = [
            ("Origin", "http://evil.example"),
            ("Content-Type", "text/plain"),
        ];
        let add = |save: &std::path::Path| {
            serde_json::to_vec(&json!({"torrent_base64": b64, "save_dir": save}))
                .map_err(anyhow::Error::from)
        };

        // The reproduction: text/plain from another origin, saving anywhere.
        let target = elsewhere.path().join("dropped");
        let body = add(&target)?;
        let (s, v) = call_with("POST", &n.api("torrents"), &evil, Some(&body))?;
        ensure!(
            s == 403 && v["error"].is_string(),
            "cross-site add: {s} {v}"
        );
        let (s, v) = call_with(
            "POST",
            &n.api("torrents"),
            &[("Content-Type", "text/plain")],
            Some(&body),
        )?;
        ensure!(s == 415, "text/plain add: {s} {v}");
        let json_ct = [("Content-Type", "application/json")];
        let (s, v) = call_with("POST", &n.api("torrents"), &json_ct, Some(&body))?;
        ensure!(
            s == 400 && v["error"].as_str().unwrap_or("").contains("outside"),
            "save_dir outside the roots: {s} {v}"
        );
        let sneaky = add(&dl.join("..").join("..").join("x"))?;
        let (s, v) = call_with("POST", &n.api("torrents"), &json_ct, Some(&sneaky))?;
        ensure!(s == 400, "save_dir with ..: {s} {v}");
        let (s, v) = call_with(
            "POST",
            &n.api("get"),
            &json_ct,
            Some(&serde_json::to_vec(
                &json!({"id": &id, "save_dir": &target}),
            )?),
        )?;
        ensure!(s == 400, "get with save_dir outside: {s} {v}");
        ensure!(n.torrents()?.is_empty(), "a refused add was added");

        // Other state-changing endpoints, and a foreign Host (DNS rebinding).
        let share = serde_json::to_vec(&json!({"path": &data}))?;
        let (s, _) = call_with("POST", &n.api("share"), &evil, Some(&share))?;
        ensure!(s == 403, "cross-site share: {s}");
        let (s, _) = call_with(
            "POST",
            &n.api("share"),
            &[("Content-Type", "text/plain")],
            Some(&share),
        )?;
        ensure!(s == 415, "text/plain share: {s}");
        let outside_file = elsewhere.path().join("secret.txt");
        std::fs::write(&outside_file, b"not for sharing")?;
        let (s, v) = call_with(
            "POST",
            &n.api("share"),
            &json_ct,
            Some(&serde_json::to_vec(&json!({"path": &outside_file}))?),
        )?;
        ensure!(s == 400, "share outside the roots: {s} {v}");
        let (s, _) = call_with(
            "PATCH",
            &n.api("settings"),
            &[("Origin", "null"), ("Content-Type", "application/json")],
            Some(b"{\"max_up\": 1}"),
        )?;
        ensure!(s == 403, "settings from Origin null: {s}");
        let (s, _) = call_with(
            "POST",
            &n.api("upload?name=x.txt"),
            &[("Content-Type", "text/plain")],
            Some(b"hello"),
        )?;
        ensure!(s == 415, "text/plain upload: {s}");
        let (s, _) = call_with(
            "POST",
            &n.api("upload?name=x.txt"),
            &[
                ("Origin", "http://evil.example"),
                ("Content-Type", "application/octet-stream"),
            ],
            Some(b"hello"),
        )?;
        ensure!(s == 403, "cross-site upload: {s}");
        let rebound = format!("rebind.example:{port}");
        let (s, v) = call_with("GET", &n.api("node"), &[("Host", &rebound)], None)?;
        ensure!(s == 403, "foreign Host: {s} {v}");
        let local = format!("localhost:{port}");
        let (s, _) = call_with("GET", &n.api("node"), &[("Host", &local)], None)?;
        ensure!(s == 200, "Host localhost: {s}");
        ensure!(
            std::fs::read_dir(elsewhere.path())?.count() == 1 && !dl.join("x.txt").exists(),
            "a refused request left files behind"
        );

        // Same origin, proper types, inside the roots: accepted.
        let inside = t.path().join("saves");
        let (s, v) = call_with(
            "POST",
            &n.api("torrents"),
            &[("Origin", &own), ("Content-Type", "application/json")],
            Some(&add(&inside)?),
        )?;
        ensure!(
            s == 201 && v["id"] == id.as_str(),
            "same-origin add: {s} {v}"
        );
        let (s, v) = call_with(
            "POST",
            &n.api("upload?name=up.bin"),
            &[
                ("Origin", &own),
                ("Content-Type", "application/octet-stream"),
            ],
            Some(&[7u8; 99_000]),
        )?;
        ensure!(s == 202 && v["job_id"].is_string(), "upload: {s} {v}");
        ensure!(
            std::fs::read(dl.join("up.bin"))? == vec![7u8; 99_000],
            "uploaded bytes differ"
        );
        let (s, _) = call_with(
            "POST",
            &n.api("upload?name=up.bin"),
            &[("Content-Type", "application/octet-stream")],
            Some(b"again"),
        )?;
        ensure!(s == 409, "upload over an existing file: {s}");

        // Over max_upload: 413, and no temp file is left in the download dir.
        let (s, v) = call_with(
            "POST",
            &n.api("upload?name=big.bin"),
            &[("Content-Type", "application/octet-stream")],
            Some(&vec![1u8; 100_001]),
        )?;
        ensure!(s == 413, "upload over the limit: {s} {v}");
        poll("the temp file is removed", QUICK, || {
            let left: Vec<String> = std::fs::read_dir(&dl)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "up.bin")
                .collect();
            Ok(left.is_empty().then_some(()))
        })?;
        Ok(())
    })
}
