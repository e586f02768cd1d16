//! Helpers for tests of `shoal up`: start a node on loopback (all ports chosen by the OS
//! and read from its output), and call its JSON API (docs/API.md) with a small blocking
//! client.
#![allow(dead_code)] // each test binary uses a different subset

use crate::common::*;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A running `shoal up`.
pub struct Node {
    pub proc: Proc,
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    pub peer_id: String,
    pub peer_port: u16,
    /// The embedded tracker's announce URL, when it runs one.
    pub tracker: Option<String>,
    pub data_dir: PathBuf,
}

/// Starts `shoal up --data-dir DATA --download-dir DL --port 0 --web 127.0.0.1:0
/// --tracker-bind 127.0.0.1:0 --share-root <DATA's parent> [extra...]` and waits for its
/// `web:` line. The share root lets the API share and save anywhere in the test's dir.
/// A `--port` in `extra` replaces `--port 0`.
pub fn start_node(name: &str, data: &Path, downloads: &Path, extra: &[&str]) -> Result<Node> {
    let mut args: Vec<String> = vec![
        "up".into(),
        "--data-dir".into(),
        data.display().to_string(),
        "--download-dir".into(),
        downloads.display().to_string(),
        "--port".into(),
        "0".into(),
        "--web".into(),
        "127.0.0.1:0".into(),
        "--tracker-bind".into(),
        "127.0.0.1:0".into(),
        "--share-root".into(),
        data.parent().unwrap_or(data).display().to_string(),
    ];
    // A `--port` in `extra` replaces the default `--port 0`.
    if extra.contains(&"--port") {
        args.drain(5..7);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let cwd = data.parent().unwrap_or(data);
    let mut proc = Proc::shoal(name, &args, cwd)?;
    let peer_id = proc.wait_for_prefix("peer id: ", READY)?;
    let peer_port = parse_port(&proc.wait_for_prefix("peer port: ", READY)?)?;
    let url = proc.wait_for_prefix("web: ", READY)?;
    let has_tracker = !extra.contains(&"--tracker") && !extra.contains(&"--no-tracker");
    let tracker = if has_tracker {
        let line = proc.wait_for_prefix("tracker: ", READY)?;
        Some(
            line.split_whitespace()
                .next()
                .context("tracker URL")?
                .to_string(),
        )
    } else {
        None
    };
    Ok(Node {
        proc,
        url,
        peer_id,
        peer_port,
        tracker,
        data_dir: data.to_path_buf(),
    })
}

impl Node {
    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> Result<()> {
        self.proc.terminate()?;
        self.proc.wait_success(Duration::from_secs(30))
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}api/{}", self.url, path.trim_start_matches('/'))
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        expect_ok(call("GET", &self.api(path), None)?)
    }

    pub fn post(&self, path: &str, body: Value) -> Result<Value> {
        expect_ok(call("POST", &self.api(path), Some(body))?)
    }

    /// `POST /api/torrents` with the raw `.torrent`.
    pub fn add_torrent_file(&self, torrent: &Path) -> Result<Value> {
        let bytes = std::fs::read(torrent)?;
        let r = ureq::post(&self.api("torrents"))
            .set("Content-Type", "application/x-bittorrent")
            .timeout(Duration::from_secs(30))
            .send_bytes(&bytes);
        expect_ok(response(r)?)
    }

    /// Shares `path` and waits for the job; returns the torrent id.
    pub fn share(&self, path: &Path, timeout: Duration) -> Result<String> {
        let job = self.post("share", serde_json::json!({"path": path}))?;
        let id = job["job_id"].as_str().context("job_id")?.to_string();
        poll("share job done", timeout, || {
            let j = self.get(&format!("jobs/{id}"))?;
            match j["state"].as_str() {
                Some("done") => Ok(Some(
                    j["torrent_id"].as_str().context("torrent_id")?.to_string(),
                )),
                Some("error") => bail!("share failed: {j}"),
                _ => Ok(None),
            }
        })
    }

    /// `PATCH /api/settings`; returns the settings after.
    pub fn patch_settings(&self, patch: Value) -> Result<Value> {
        expect_ok(call("PATCH", &self.api("settings"), Some(patch))?)
    }

    pub fn torrents(&self) -> Result<Vec<Value>> {
        Ok(self.get("torrents")?.as_array().context("array")?.clone())
    }

    pub fn torrent(&self, id: &str) -> Result<Value> {
        self.get(&format!("torrents/{id}"))
    }

    /// Waits until `pred` holds for the torrent's summary.
    pub fn wait_torrent(
        &self,
        id: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let r = poll(what, timeout, || {
            let t = self.torrent(id)?;
            Ok(pred(&t).then_some(t))
        });
        r.with_context(|| {
            format!(
                "{}: torrent {id}: {:?}\n{}",
                self.proc.name(),
                self.torrent(id).ok(),
                self.proc.output_tail(30)
            )
        })
    }
}

/// The state word of a summary.
pub fn state(t: &Value) -> &str {
    t["state"].as_str().unwrap_or("")
}

/// An HTTP call: (status, JSON body or `null`).
pub fn call(method: &str, url: &str, body: Option<Value>) -> Result<(u16, Value)> {
    let req = ureq::request(method, url).timeout(Duration::from_secs(30));
    let r = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    response(r)
}

/// Sends a request with extra headers (e.g. `Origin`, `Host`) and an optional body.
pub fn call_with(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<(u16, Value)> {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(30));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    response(match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    })
}

/// Sends a raw body with a content type.
pub fn call_raw(method: &str, url: &str, ctype: &str, body: &[u8]) -> Result<(u16, Value)> {
    let r = ureq::request(method, url)
        .set("Content-Type", ctype)
        .timeout(Duration::from_secs(30))
        .send_bytes(body);
    response(r)
}

fn response(r: std::result::Result<ureq::Response, ureq::Error>) -> Result<(u16, Value)> {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e).context("HTTP request failed"),
    };
    let status = resp.status();
    let text = resp.into_string()?;
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).with_context(|| format!("not JSON ({status}): {text}"))?
    };
    Ok((status, v))
}

fn expect_ok((status, v): (u16, Value)) -> Result<Value> {
    if !(200..300).contains(&status) {
        bail!("HTTP {status}: {v}");
    }
    Ok(v)
}

/// `shoal passwd --data-dir DIR` with `input` on stdin; `(success, stdout + stderr)`.
pub fn passwd(data: &Path, input: &str) -> Result<(bool, String)> {
    let mut child = std::process::Command::new(shoal_bin())
        .args(["passwd", "--data-dir"])
        .arg(data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting shoal passwd")?;
    use std::io::Write as _;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}
