//! Streaming a file over HTTP while it downloads (`GET .../files/:index/stream` with
//! `Range`), stream tokens, and the per-torrent download order, with real `shoal up`
//! nodes on loopback.

mod common;
mod nodeutil;

use std::io::Read as _;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use base64::Engine as _;
use common::*;
use nodeutil::*;
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;

/// An answer to a stream request: status, headers we check, body.
struct Answer {
    status: u16,
    content_range: Option<String>,
    content_type: Option<String>,
    accept_ranges: Option<String>,
    content_length: Option<u64>,
    body: Vec<u8>,
}

/// `method url` with an optional `Range`; reads the whole body.
fn fetch(method: &str, url: &str, range: Option<&str>) -> Result<Answer> {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(120));
    if let Some(r) = range {
        req = req.set("Range", r);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e).context("stream request failed"),
    };
    let h = |n: &str| resp.header(n).map(str::to_string);
    let mut a = Answer {
        status: resp.status(),
        content_range: h("content-range"),
        content_type: h("content-type"),
        accept_ranges: h("accept-ranges"),
        content_length: h("content-length").and_then(|v| v.parse().ok()),
        body: Vec::new(),
    };
    resp.into_reader().read_to_end(&mut a.body)?;
    Ok(a)
}

fn stream_url(node: &Node, id: &str, index: usize) -> String {
    node.api(&format!("torrents/{id}/files/{index}/stream"))
}

/// A 206 for `range` whose body is `want`, with the right `Content-Range`.
fn expect_range(url: &str, range: &str, data: &[u8], start: usize, end: usize) -> Result<()> {
    let a = fetch("GET", url, Some(range))?;
    ensure!(a.status == 206, "{range}: status {}", a.status);
    let cr = format!("bytes {start}-{}/{}", end - 1, data.len());
    ensure!(
        a.content_range.as_deref() == Some(cr.as_str()),
        "{range}: Content-Range {:?}, want {cr}",
        a.content_range
    );
    ensure!(
        a.content_length == Some((end - start) as u64),
        "{range}: length"
    );
    ensure!(a.body == data[start..end], "{range}: wrong bytes");
    Ok(())
}

/// Shares `name` of `size` random bytes from a new node A; returns A, the torrent id
/// and the data.
fn seeder(t: &TestDir, name: &str, size: u64, seed: u64) -> Result<(Node, String, Vec<u8>)> {
    let data = t.sub("share")?.join(name);
    write_random_file(&data, size, seed)?;
    let a = start_node("node A", &t.path().join("a"), &t.sub("dl-a")?, &[])?;
    let id = a.share(&data, TRANSFER)?;
    a.wait_torrent(&id, "A seeds", TRANSFER, |t| state(t) == "seeding")?;
    Ok((a, id, std::fs::read(&data)?))
}

/// Node B using A's embedded tracker (and catalog), with `extra` flags.
fn leecher(t: &TestDir, a: &Node, extra: &[&str]) -> Result<Node> {
    let tracker = a.tracker.clone().context("A runs the embedded tracker")?;
    let mut args = vec!["--tracker", tracker.as_str()];
    args.extend_from_slice(extra);
    start_node("node B", &t.path().join("b"), &t.sub("dl-b")?, &args)
}

fn progress(node: &Node, id: &str) -> Result<f64> {
    node.torrent(id)?["progress"].as_f64().context("progress")
}

/// The issue's scenario: B, limited to 2 MiB/s, gets a 48 MiB file from the catalog;
/// a Range request for its last MiB is answered with exactly those bytes while B
/// has under 60 % of the file.
#[test]
fn last_mib_streams_before_the_download_is_60_percent_done() -> Result<()> {
    with_timeout(Duration::from_secs(240), || {
        let t = TestDir::new("stream-48m")?;
        let (a, id, data) = seeder(&t, "big.mkv", 48 * MIB, 48)?;
        let b = leecher(&t, &a, &["--max-down", "2MiB"])?;
        let (status, added) = call("POST", &b.api("get"), Some(json!({"id": &id})))?;
        ensure!(status == 201, "POST /api/get: {status} {added}");
        let started = Instant::now();
        let len = data.len();
        let range = format!("bytes={}-", len - MIB as usize);
        let ans = fetch("GET", &stream_url(&b, &id, 0), Some(&range))?;
        let took = started.elapsed();
        let p = progress(&b, &id)?;
        ensure!(ans.status == 206, "status {}", ans.status);
        ensure!(
            ans.content_range.as_deref()
                == Some(&format!("bytes {}-{}/{len}", len - MIB as usize, len - 1)[..]),
            "Content-Range {:?}",
            ans.content_range
        );
        ensure!(
            ans.content_type.as_deref() == Some("video/x-matroska"),
            "Content-Type {:?}",
            ans.content_type
        );
        ensure!(
            ans.body == data[len - MIB as usize..],
            "the last MiB differs"
        );
        ensure!(p < 0.6, "B had {:.0} % when the range arrived", p * 100.0);
        println!(
            "last MiB of 48 MiB at 2 MiB/s: {took:?}, B at {:.1} %",
            p * 100.0
        );
        Ok(())
    })
}

/// First byte, last byte, a suffix, past the end (416), no Range (200), HEAD, two
/// streams at once, a token URL, and a paused complete torrent read from its file.
#[test]
fn range_edge_cases_tokens_and_a_stopped_torrent() -> Result<()> {
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("stream-ranges")?;
        let (a, id, data) = seeder(&t, "clip.webm", 3 * MIB + 12_345, 7)?;
        let url = stream_url(&a, &id, 0);
        let len = data.len();
        expect_range(&url, "bytes=0-0", &data, 0, 1)?;
        expect_range(
            &url,
            &format!("bytes={}-{}", len - 1, len - 1),
            &data,
            len - 1,
            len,
        )?;
        expect_range(&url, "bytes=-1000", &data, len - 1000, len)?;
        expect_range(&url, "bytes=1000-", &data, 1000, len)?;
        expect_range(&url, "bytes=5-9, 20-30", &data, 5, 10)?;
        let past = fetch("GET", &url, Some(&format!("bytes={len}-")))?;
        ensure!(past.status == 416, "past the end: {}", past.status);
        ensure!(
            past.content_range.as_deref() == Some(&format!("bytes */{len}")[..]),
            "416 Content-Range {:?}",
            past.content_range
        );
        let whole = fetch("GET", &url, None)?;
        ensure!(
            whole.status == 200 && whole.body == data,
            "no Range: {}",
            whole.status
        );
        ensure!(
            whole.accept_ranges.as_deref() == Some("bytes"),
            "Accept-Ranges"
        );
        ensure!(whole.content_type.as_deref() == Some("video/webm"), "type");
        let head = fetch("HEAD", &url, Some("bytes=10-19"))?;
        ensure!(
            head.status == 206 && head.body.is_empty() && head.content_length == Some(10),
            "HEAD: {} {:?}",
            head.status,
            head.content_length
        );
        // Two streams at once.
        let (u1, u2) = (url.clone(), url.clone());
        let s1 = std::thread::spawn(move || fetch("GET", &u1, Some("bytes=0-")));
        let s2 = std::thread::spawn(move || fetch("GET", &u2, Some("bytes=1000000-")));
        let (r1, r2) = (s1.join().expect("thread")?, s2.join().expect("thread")?);
        ensure!(
            r1.body == data && r2.body == data[1_000_000..],
            "concurrent streams"
        );
        // Errors: no such file, bad index, bad token.
        let (st, _) = call("GET", &stream_url(&a, &id, 1), None)?;
        ensure!(st == 404, "file 1: {st}");
        let (st, _) = call(
            "GET",
            &a.api(&format!("torrents/{id}/files/x/stream")),
            None,
        )?;
        ensure!(st == 400, "file x: {st}");
        let (st, _) = call("GET", &format!("{url}?token=0000"), None)?;
        ensure!(st == 403, "bad token: {st}");
        // A token URL.
        let tok = a.post(&format!("torrents/{id}/files/0/stream-token"), json!({}))?;
        let turl = tok["url"].as_str().context("url")?;
        ensure!(
            turl.starts_with("http://127.0.0.1:") && turl.contains("token="),
            "{tok}"
        );
        ensure!(tok["expires_in"] == 6 * 3600, "{tok}");
        expect_range(turl, "bytes=-10", &data, len - 10, len)?;
        // Paused: read from the complete file.
        a.post(&format!("torrents/{id}/pause"), json!({}))?;
        a.wait_torrent(&id, "A paused", QUICK, |t| state(t) == "paused")?;
        expect_range(&url, "bytes=100-199", &data, 100, 200)?;
        Ok(())
    })
}

/// Removing a torrent while a stream waits for its pieces ends the body (short)
/// quickly, and the node keeps answering.
#[test]
fn removing_a_torrent_mid_stream_ends_the_body() -> Result<()> {
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("stream-remove")?;
        let (a, id, data) = seeder(&t, "film.mp4", 16 * MIB, 16)?;
        let b = leecher(&t, &a, &["--max-down", "512KiB"])?;
        let (status, added) = call("POST", &b.api("get"), Some(json!({"id": &id})))?;
        ensure!(status == 201, "POST /api/get: {status} {added}");
        let url = stream_url(&b, &id, 0);
        let reader = std::thread::spawn(move || -> Result<(usize, Duration)> {
            let resp = ureq::get(&url)
                .set("Range", "bytes=0-")
                .timeout(Duration::from_secs(120))
                .call()?;
            ensure!(resp.status() == 206, "status {}", resp.status());
            let mut body = resp.into_reader();
            let mut got = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            let mut ended = Instant::now();
            loop {
                match body.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
                ended = Instant::now();
            }
            Ok((got, ended.elapsed()))
        });
        b.wait_torrent(&id, "B has some pieces", TRANSFER, |t| {
            t["pieces_have"].as_u64().unwrap_or(0) > 0
        })?;
        std::thread::sleep(Duration::from_millis(500));
        let removed_at = Instant::now();
        let (st, v) = call("DELETE", &b.api(&format!("torrents/{id}")), None)?;
        ensure!(st == 204, "DELETE: {st} {v}");
        let (got, _) = reader.join().expect("reader thread")?;
        let waited = removed_at.elapsed();
        ensure!(
            got < data.len(),
            "the whole file came ({got} bytes) before the removal"
        );
        ensure!(
            waited < Duration::from_secs(15),
            "the body took {waited:?} to end"
        );
        ensure!(b.get("node").is_ok(), "B no longer answers");
        ensure!(b.torrents()?.is_empty(), "the torrent is still listed");
        Ok(())
    })
}

/// Pieces verified so far (from `GET .../pieces`).
fn have_pieces(node: &Node, id: &str) -> Result<(Vec<bool>, usize)> {
    let v = node.get(&format!("torrents/{id}/pieces"))?;
    let n = v["count"].as_u64().context("count")? as usize;
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(v["have"].as_str().context("have")?)?;
    let bits = (0..n)
        .map(|i| bytes.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
        .collect();
    Ok((bits, n))
}

/// `shoal add --sequential`: pieces complete in (nearly) increasing order, the order
/// shows in the summary, and it survives a restart; `PUT .../order` changes it.
#[test]
fn sequential_download_completes_pieces_in_order() -> Result<()> {
    with_timeout(Duration::from_secs(240), || {
        let t = TestDir::new("stream-seq")?;
        let (a, id, _) = seeder(&t, "seq.bin", 12 * MIB, 12)?;
        let torrent = t.path().join("seq.torrent");
        let export = ureq::get(&a.api(&format!("torrents/{id}/torrent"))).call()?;
        let mut bytes = Vec::new();
        export.into_reader().read_to_end(&mut bytes)?;
        std::fs::write(&torrent, &bytes)?;
        let b_data = t.path().join("b");
        let mut b = leecher(&t, &a, &["--max-down", "1MiB"])?;
        let out = run_shoal(
            &[
                "add",
                "--sequential",
                "--json",
                "--node",
                b.url.trim_end_matches('/'),
                &torrent.display().to_string(),
            ],
            t.path(),
            QUICK,
        )?;
        let added: Value = serde_json::from_str(out.trim()).context(out.clone())?;
        ensure!(added["sequential"] == true, "added: {added}");
        ensure!(added["first_last_piece"] == false, "added: {added}");
        // Sample: pieces had beyond the first missing one stay few.
        let mut samples = 0;
        let mut worst = 0;
        let deadline = Instant::now() + TRANSFER;
        loop {
            let (bits, n) = have_pieces(&b, &id)?;
            let have = bits.iter().filter(|&&h| h).count();
            if have == n {
                break;
            }
            let gap = bits.iter().position(|&h| !h).unwrap_or(n);
            let beyond = bits[gap..].iter().filter(|&&h| h).count();
            if have > n / 10 && have < n * 9 / 10 {
                samples += 1;
                worst = worst.max(beyond);
            }
            ensure!(Instant::now() < deadline, "B did not finish");
            std::thread::sleep(Duration::from_millis(200));
        }
        let (_, n) = have_pieces(&b, &id)?;
        ensure!(samples >= 3, "only {samples} samples of {n} pieces");
        // In flight at once: a few pieces (half a second of requests per peer).
        ensure!(
            worst <= 4.max(n / 32),
            "{worst} of {n} pieces verified past the first gap"
        );
        // Changing and restoring after a restart.
        let (st, v) = call(
            "PUT",
            &b.api(&format!("torrents/{id}/order")),
            Some(json!({"first_last_piece": true})),
        )?;
        ensure!(
            st == 200 && v["sequential"] == true && v["first_last_piece"] == true,
            "PUT order: {st} {v}"
        );
        let (st, _) = call(
            "PUT",
            &b.api(&format!("torrents/{id}/order")),
            Some(json!({"sequential": "yes"})),
        )?;
        ensure!(st == 400, "bad order body: {st}");
        b.stop()?;
        let b2 = start_node("node B again", &b_data, &t.sub("dl-b")?, &[])?;
        let s = b2.torrent(&id)?;
        ensure!(
            s["sequential"] == true && s["first_last_piece"] == true,
            "after restart: {s}"
        );
        println!("sequential: worst {worst} of {n} pieces past the first gap in {samples} samples");
        Ok(())
    })
}

/// Behind a login, the stream URL needs a session, and a stream token from the
/// logged-in UI opens that one file's stream (for VLC or mpv) without one.
#[test]
fn a_stream_token_opens_the_stream_behind_a_login() -> Result<()> {
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("stream-login")?;
        let (a, id, data) = seeder(&t, "clip.webm", 300_000, 9)?;
        let len = data.len();
        let (ok, out) = passwd(&a.data_dir, "pw-stream\npw-stream\n")?;
        ensure!(ok, "shoal passwd: {out}");
        let url = stream_url(&a, &id, 0);
        // The node picks up the new password within seconds, without a restart.
        poll("the login to be required", QUICK, || {
            Ok((fetch("GET", &url, Some("bytes=0-9"))?.status == 401).then_some(()))
        })?;
        let login = ureq::post(&a.api("login"))
            .set("Content-Type", "application/json")
            .send_string(r#"{"username":"admin","password":"pw-stream"}"#)
            .context("login")?;
        let sid = login
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .context("no session cookie")?
            .to_string();
        let tok: Value = ureq::post(&a.api(&format!("torrents/{id}/files/0/stream-token")))
            .set("Cookie", &sid)
            .set("Content-Type", "application/json")
            .send_string("{}")
            .context("stream-token")?
            .into_json()?;
        let turl = tok["url"].as_str().context("url")?;
        expect_range(turl, "bytes=-10", &data, len - 10, len)?;
        // The token opens the stream only: the rest of the API stays closed.
        let other = turl.replace("/files/0/stream", "/files");
        ensure!(fetch("GET", &other, None)?.status == 401, "{other} opened");
        Ok(())
    })
}
