//! The Transmission RPC at `/transmission/rpc` (docs/API.md) driven by real clients:
//! Debian's `transmission-remote` 3.00, the `transmission-rpc` Python package, and a
//! conformance run comparing the shape (keys and JSON types) of every answer with
//! Debian's `transmission-daemon` given the same requests.

mod common;
mod nodeutil;

use anyhow::{bail, ensure, Context, Result};
use base64::Engine;
use common::libtorrent::{skip, PYTHON};
use common::transmission::Transmission;
use common::*;
use nodeutil::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A node whose download dir already holds `content.bin`, and its `.torrent`.
struct Setup {
    t: TestDir,
    node: Node,
    torrent: std::path::PathBuf,
    hash: String,
}

fn setup(name: &str) -> Result<Setup> {
    let t = TestDir::new(name)?;
    let dl = t.sub("dl")?;
    write_random_file(&dl.join("content.bin"), 300_000, 7)?;
    let node = start_node("trpc node", &t.path().join("node"), &dl, &[])?;
    let tracker = node.tracker.clone().context("embedded tracker")?;
    let torrent = t.path().join("content.torrent");
    let hash = create_torrent(&dl.join("content.bin"), &tracker, &torrent, 16384)?;
    Ok(Setup {
        t,
        node,
        torrent,
        hash,
    })
}

/// `127.0.0.1:PORT` of the node's web server.
fn host_port(node: &Node) -> String {
    node.url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

fn remote(addr: &str, args: &[&str], cwd: &Path) -> Result<String> {
    let mut all = vec![addr];
    all.extend_from_slice(args);
    run(
        "transmission-remote",
        "transmission-remote",
        &all,
        cwd,
        QUICK,
    )
}

/// Summary of the node's torrent `hash` (JSON API), or `None` once removed.
fn api_torrent(node: &Node, hash: &str) -> Result<Option<Value>> {
    Ok(node
        .torrents()?
        .into_iter()
        .find(|t| t["id"].as_str() == Some(hash)))
}

#[test]
fn transmission_remote_drives_the_node() -> Result<()> {
    if !have_tools("transmission-remote", &["transmission-remote"]) {
        return Ok(());
    }
    with_timeout(Duration::from_secs(150), || {
        let mut s = setup("trpc-remote")?;
        let addr = host_port(&s.node);
        let cwd = s.t.path().to_path_buf();
        let torrent = s.torrent.to_str().context("utf-8")?;
        let out = remote(&addr, &["-a", torrent], &cwd)?;
        ensure!(out.contains("success"), "add: {out}");
        let list = remote(&addr, &["-l"], &cwd)?;
        ensure!(
            list.lines()
                .any(|l| l.trim_start().starts_with("1 ") && l.contains("content.bin")),
            "list:\n{list}"
        );
        poll("the node to verify the data", TRANSFER, || {
            let info = remote(&addr, &["-t", "1", "-i"], &cwd)?;
            Ok(info.contains("Percent Done: 100%").then_some(info))
        })
        .and_then(|info| {
            ensure!(info.contains(&format!("Hash: {}", s.hash)), "info:\n{info}");
            ensure!(info.contains("Name: content.bin"), "info:\n{info}");
            Ok(())
        })?;
        remote(&addr, &["-t", "1", "-S"], &cwd)?;
        let t = api_torrent(&s.node, &s.hash)?.context("torrent gone")?;
        ensure!(state(&t) == "paused", "after -S: {t}");
        ensure!(
            remote(&addr, &["-l"], &cwd)?.contains("Stopped"),
            "-l after -S"
        );
        remote(&addr, &["-t", "1", "-s"], &cwd)?;
        let t = api_torrent(&s.node, &s.hash)?.context("torrent gone")?;
        ensure!(state(&t) != "paused", "after -s: {t}");
        let files = remote(&addr, &["-t", "1", "-if"], &cwd)?;
        ensure!(files.contains("content.bin"), "-if:\n{files}");
        let trackers = remote(&addr, &["-t", "1", "-it"], &cwd)?;
        ensure!(trackers.contains("Tracker 0:"), "-it:\n{trackers}");
        // The engine's announce-now trigger (counted by a tracker in tests/qbt_api.rs).
        let re = remote(&addr, &["-t", "1", "--reannounce"], &cwd)?;
        ensure!(re.contains("success"), "--reannounce: {re}");
        let magnet = format!("magnet:?xt=urn:btih:{}&dn=trpc-magnet", "ab".repeat(20));
        ensure!(
            remote(&addr, &["-a", &magnet], &cwd)?.contains("success"),
            "magnet add"
        );
        let list = remote(&addr, &["-l"], &cwd)?;
        ensure!(list.contains("trpc-magnet"), "magnet not listed:\n{list}");
        remote(&addr, &["-t", "2", "-r"], &cwd)?;
        ensure!(
            !remote(&addr, &["-l"], &cwd)?.contains("trpc-magnet"),
            "magnet not removed"
        );
        let data = s.t.path().join("dl/content.bin");
        ensure!(data.is_file(), "data missing before delete");
        remote(&addr, &["-t", "1", "--remove-and-delete"], &cwd)?;
        ensure!(
            api_torrent(&s.node, &s.hash)?.is_none(),
            "torrent not removed"
        );
        poll("the data to be deleted", QUICK, || {
            Ok((!data.exists()).then_some(()))
        })?;
        s.node.stop()
    })
}

/// Whether the system Python has the `transmission-rpc` package (scripts/test installs
/// it); otherwise skips (or fails under `SHOAL_INTEROP_REQUIRED=1`).
fn have_python_client(test: &str) -> bool {
    let ok = std::process::Command::new(PYTHON)
        .args(["-c", "import transmission_rpc"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(&format!(
            "SKIPPED {test}: {PYTHON} cannot import transmission_rpc \
             (pip install --break-system-packages transmission-rpc)"
        ));
    }
    ok
}

/// Runs `tests/drivers/trpc_client.py` against the RPC on `port`; its JSON report.
fn python_client(name: &str, port: u16, torrent: &Path, data: &Path, cwd: &Path) -> Result<Value> {
    let script = cwd.join("trpc_client.py");
    std::fs::write(&script, include_str!("drivers/trpc_client.py"))?;
    let magnet = format!("magnet:?xt=urn:btih:{}&dn=py-magnet", "cd".repeat(20));
    let utf8 = |p: &Path| p.to_str().map(str::to_string).context("path is not UTF-8");
    let args = [
        utf8(&script)?,
        port.to_string(),
        utf8(torrent)?,
        utf8(data)?,
        magnet,
    ];
    let out = run(name, PYTHON, &args, cwd, TRANSFER)?;
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("{name} printed {out}"))
}

#[test]
fn python_client_drives_the_node_and_the_reference() -> Result<()> {
    if !have_python_client("transmission-rpc python")
        || !have_tools("transmission-rpc python", &["transmission-daemon"])
    {
        return Ok(());
    }
    with_timeout(Duration::from_secs(200), || {
        let mut s = setup("trpc-python")?;
        // The reference first: a failure there is the script's, not Shoal's.
        let work = s.t.sub("reference")?;
        let refdata = s.t.sub("reference/data")?;
        std::fs::copy(
            s.t.path().join("dl/content.bin"),
            refdata.join("content.bin"),
        )?;
        let daemon = Transmission::start(&work)?;
        let port = parse_port(daemon.rpc_addr().rsplit(':').next().unwrap_or(""))?;
        let reference = python_client("python vs transmission", port, &s.torrent, &refdata, &work)?;
        let dl = s.t.path().join("dl");
        let port = parse_port(host_port(&s.node).rsplit(':').next().unwrap_or(""))?;
        let ours = python_client("python vs shoal", port, &s.torrent, &dl, s.t.path())?;
        ensure!(ours["added"]["hash"] == s.hash, "shoal: {ours}");
        ensure!(ours["rpc_version"] == 17, "shoal: {ours}");
        for key in ["name", "total_size", "files"] {
            ensure!(
                ours["torrent"][key] == reference["torrent"][key],
                "{key}: shoal {ours} vs transmission {reference}"
            );
        }
        ensure!(!dl.join("content.bin").exists(), "shoal kept the data");
        s.node.stop()
    })
}

/// A raw RPC client: the 409 session-id exchange, then JSON requests.
struct RawRpc {
    url: String,
    session: String,
}

impl RawRpc {
    fn new(addr: &str) -> RawRpc {
        RawRpc {
            url: format!("http://{addr}/transmission/rpc"),
            session: String::new(),
        }
    }

    fn call(&mut self, method: &str, args: Value) -> Result<Value> {
        let body = json!({"method": method, "arguments": args, "tag": 7});
        for _ in 0..2 {
            let r = ureq::post(&self.url)
                .set("X-Transmission-Session-Id", &self.session)
                .timeout(Duration::from_secs(30))
                .send_json(body.clone());
            match r {
                Ok(resp) => return Ok(resp.into_json()?),
                Err(ureq::Error::Status(409, resp)) => {
                    self.session = resp
                        .header("X-Transmission-Session-Id")
                        .context("409 without a session id")?
                        .to_string();
                }
                Err(e) => return Err(e).context(format!("{method} to {}", self.url)),
            }
        }
        bail!("{method}: 409 twice")
    }
}

/// Every key path of `v` with its JSON type; arrays contribute their first element's
/// paths under `path[]`.
fn shape(v: &Value, path: &str, out: &mut BTreeMap<String, &'static str>) {
    let ty = match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    out.insert(path.to_string(), ty);
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                shape(v, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => {
            if let Some(first) = a.first() {
                shape(first, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// Paths of `reference` missing from `ours` or of another type. A path inside an array
/// that is empty on one side is not compared.
fn shape_diff(reference: &Value, ours: &Value) -> Vec<String> {
    let (mut r, mut o) = (BTreeMap::new(), BTreeMap::new());
    shape(reference, "", &mut r);
    shape(ours, "", &mut o);
    let mut diff = Vec::new();
    for (path, ty) in &r {
        match o.get(path) {
            Some(t) if t == ty => {}
            Some(t) => diff.push(format!("{path}: transmission {ty}, shoal {t}")),
            None => {
                let elem = path.rfind("[]").map(|i| &path[..i + 2]);
                if elem.is_some_and(|e| !o.contains_key(e)) {
                    continue;
                }
                diff.push(format!("{path}: missing (transmission {ty})"));
            }
        }
    }
    diff
}

/// Fields `torrent-get` is asked for: everything `transmission-remote` (-l, -i, -if,
/// -ip, -ic, -it), Sonarr/Radarr, Flood and transmission-rpc read.
const FIELDS: &[&str] = &[
    "activityDate",
    "addedDate",
    "availability",
    "bandwidthPriority",
    "comment",
    "corruptEver",
    "creator",
    "dateCreated",
    "desiredAvailable",
    "doneDate",
    "downloadDir",
    "downloadedEver",
    "downloadLimit",
    "downloadLimited",
    "editDate",
    "error",
    "errorString",
    "eta",
    "etaIdle",
    "file-count",
    "files",
    "fileStats",
    "group",
    "hashString",
    "haveUnchecked",
    "haveValid",
    "honorsSessionLimits",
    "id",
    "isFinished",
    "isPrivate",
    "isStalled",
    "labels",
    "leftUntilDone",
    "magnetLink",
    "manualAnnounceTime",
    "maxConnectedPeers",
    "metadataPercentComplete",
    "name",
    "peer-limit",
    "peers",
    "peersConnected",
    "peersFrom",
    "peersGettingFromUs",
    "peersSendingToUs",
    "percentComplete",
    "percentDone",
    "pieces",
    "pieceCount",
    "pieceSize",
    "priorities",
    "primary-mime-type",
    "queuePosition",
    "rateDownload",
    "rateUpload",
    "recheckProgress",
    "secondsDownloading",
    "secondsSeeding",
    "seedIdleLimit",
    "seedIdleMode",
    "seedRatioLimit",
    "seedRatioMode",
    "sizeWhenDone",
    "startDate",
    "status",
    "trackers",
    "trackerList",
    "trackerStats",
    "totalSize",
    "torrentFile",
    "uploadedEver",
    "uploadLimit",
    "uploadLimited",
    "uploadRatio",
    "wanted",
    "webseeds",
    "webseedsSendingToUs",
];

/// `torrent-get` fields added in rpc-version 17 (Transmission 4.0), with the JSON type
/// its spec gives them: the 3.00 reference answers them with junk numbers, so they are
/// checked against the spec instead.
const NEWER_THAN_REFERENCE: &[(&str, &str)] = &[
    ("availability", "array"),
    ("file-count", "number"),
    ("group", "string"),
    ("percentComplete", "number"),
    ("primary-mime-type", "string"),
    ("trackerList", "string"),
];

/// Takes the fields of [`NEWER_THAN_REFERENCE`] out of a `torrent-get` answer.
fn strip_newer(v: &mut Value) {
    let list = v
        .get_mut("arguments")
        .and_then(|a| a.get_mut("torrents"))
        .and_then(Value::as_array_mut);
    if let Some(list) = list {
        for t in list.iter_mut().filter_map(Value::as_object_mut) {
            for (f, _) in NEWER_THAN_REFERENCE {
                t.remove(*f);
            }
        }
    }
}

/// The conformance script: the same requests to a server; `(name, answer)` each.
fn script(rpc: &mut RawRpc, torrent: &[u8], dir: &Path) -> Result<Vec<(String, Value)>> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(torrent);
    let dir = dir.to_str().context("utf-8")?;
    let mut out = vec![(
        "session-get".to_string(),
        rpc.call("session-get", json!({}))?,
    )];
    let added = rpc.call("torrent-add", json!({"metainfo": b64, "download-dir": dir}))?;
    let id = added["arguments"]["torrent-added"]["id"].clone();
    ensure!(id.is_i64(), "torrent-add answered {added}");
    out.push(("torrent-add".into(), added));
    poll("the data to be verified", TRANSFER, || {
        let r = rpc.call(
            "torrent-get",
            json!({"ids": [id], "fields": ["percentDone"]}),
        )?;
        Ok((r["arguments"]["torrents"][0]["percentDone"].as_f64() == Some(1.0)).then_some(()))
    })?;
    let calls: Vec<(&str, &str, Value)> = vec![
        (
            "torrent-get objects",
            "torrent-get",
            json!({"ids": [id], "fields": FIELDS}),
        ),
        (
            "torrent-get table",
            "torrent-get",
            json!({"fields": ["id", "name", "status"], "format": "table"}),
        ),
        (
            "torrent-get recent",
            "torrent-get",
            json!({"ids": "recently-active", "fields": ["id"]}),
        ),
        (
            "torrent-add duplicate",
            "torrent-add",
            json!({"metainfo": b64, "download-dir": dir}),
        ),
        ("session-stats", "session-stats", json!({})),
        ("free-space", "free-space", json!({"path": dir})),
        (
            "torrent-set files",
            "torrent-set",
            json!({"ids": [id], "files-wanted": [], "priority-high": [0]}),
        ),
        (
            "torrent-set seeding",
            "torrent-set",
            json!({"ids": [id], "seedRatioMode": 1, "seedRatioLimit": 1.5,
                   "seedIdleMode": 2, "labels": ["linux"], "queuePosition": 0,
                   "downloadLimit": 100, "downloadLimited": true}),
        ),
        (
            "queue-move-bottom",
            "queue-move-bottom",
            json!({"ids": [id]}),
        ),
        ("queue-move-top", "queue-move-top", json!({"ids": [id]})),
        (
            "session-set automation",
            "session-set",
            json!({"seedRatioLimit": 3, "seedRatioLimited": true, "alt-speed-down": 50,
                   "alt-speed-time-day": 65, "queue-stalled-minutes": 10}),
        ),
        ("torrent-stop", "torrent-stop", json!({"ids": [id]})),
        ("torrent-start", "torrent-start", json!({"ids": [id]})),
        ("torrent-verify", "torrent-verify", json!({"ids": [id]})),
        (
            "torrent-remove",
            "torrent-remove",
            json!({"ids": [id], "delete-local-data": false}),
        ),
    ];
    for (name, method, args) in calls {
        out.push((name.to_string(), rpc.call(method, args)?));
    }
    Ok(out)
}

#[test]
fn answers_have_the_shape_of_transmission_daemon() -> Result<()> {
    if !have_tools("trpc conformance", &["transmission-daemon"]) {
        return Ok(());
    }
    with_timeout(Duration::from_secs(200), || {
        let mut s = setup("trpc-shape")?;
        let torrent = std::fs::read(&s.torrent)?;
        let work = s.t.sub("reference")?;
        let refdata = s.t.sub("reference/data")?;
        std::fs::copy(
            s.t.path().join("dl/content.bin"),
            refdata.join("content.bin"),
        )?;
        let daemon = Transmission::start(&work)?;
        let reference = script(&mut RawRpc::new(daemon.rpc_addr()), &torrent, &refdata)?;
        let dl = s.t.path().join("dl");
        let ours = script(&mut RawRpc::new(&host_port(&s.node)), &torrent, &dl)?;
        let mut report = String::new();
        let (_, got) = ours
            .iter()
            .find(|(n, _)| n == "torrent-get objects")
            .context("get")?;
        let mut spec = BTreeMap::new();
        shape(got, "", &mut spec);
        for (f, ty) in NEWER_THAN_REFERENCE {
            let path = format!(".arguments.torrents[].{f}");
            if spec.get(&path) != Some(ty) {
                report.push_str(&format!("{path}: spec {ty}, shoal {:?}\n", spec.get(&path)));
            }
        }
        let mut reference = reference;
        for (_, r) in reference.iter_mut() {
            strip_newer(r);
        }
        for ((name, r), (_, o)) in reference.iter().zip(&ours) {
            ensure!(r["result"] == "success", "transmission {name}: {r}");
            if o["result"] != "success" {
                report.push_str(&format!("{name}: result {}\n", o["result"]));
            }
            for d in shape_diff(r, o) {
                report.push_str(&format!("{name}: {d}\n"));
            }
        }
        ensure!(
            report.is_empty(),
            "answers differ from transmission-daemon:\n{report}"
        );
        s.node.stop()
    })
}

#[test]
fn requests_without_the_session_id_get_409() -> Result<()> {
    with_timeout(Duration::from_secs(60), || {
        let t = TestDir::new("trpc-409")?;
        let mut node = start_node("trpc node", &t.path().join("n"), &t.sub("dl")?, &[])?;
        let url = format!("{}transmission/rpc", node.url);
        let r = ureq::post(&url).send_string(r#"{"method":"session-get"}"#);
        let Err(ureq::Error::Status(409, resp)) = r else {
            bail!("expected 409, got {r:?}");
        };
        let sid = resp
            .header("X-Transmission-Session-Id")
            .context("no id")?
            .to_string();
        let (status, v) = call_with(
            "POST",
            &url,
            &[("X-Transmission-Session-Id", &sid)],
            Some(br#"{"method":"no-such-method","tag":5}"#),
        )?;
        ensure!(status == 200, "status {status}");
        ensure!(
            v["result"] == "method name not recognized" && v["tag"] == 5,
            "{v}"
        );
        let (_, v) = call_with(
            "POST",
            &url,
            &[("X-Transmission-Session-Id", &sid)],
            Some(br#"{"method":"torrent-set-location","arguments":{"ids":[1],"location":"/x"}}"#),
        )?;
        ensure!(
            v["result"] != "success",
            "torrent-set-location pretended: {v}"
        );
        let (_, v) = call_with(
            "POST",
            &url,
            &[("X-Transmission-Session-Id", &sid)],
            Some(br#"{"method":"port-test"}"#),
        )?;
        ensure!(
            v["arguments"]["port-is-open"] == false && v["result"] != "success",
            "{v}"
        );
        node.stop()
    })
}

/// Once a password is set, `transmission-remote` and the `transmission-rpc` package are
/// refused without it or with a wrong one (HTTP Basic, as Transmission does), and get
/// in with the right one.
#[test]
fn a_password_is_required_by_transmission_clients() -> Result<()> {
    let python = have_python_client("transmission-rpc login");
    with_timeout(Duration::from_secs(120), move || {
        let t = TestDir::new("trpc-login")?;
        let data = t.path().join("node");
        let (ok, out) = passwd(&data, "tr-pass\ntr-pass\n")?;
        ensure!(ok, "shoal passwd: {out}");
        let mut node = start_node("trpc node", &data, &t.sub("dl")?, &[])?;
        let addr = host_port(&node);
        for auth in [None, Some("admin:wrong")] {
            let mut args = vec!["-l"];
            if let Some(a) = auth {
                args.splice(0..0, ["--auth", a]);
            }
            let err = match remote(&addr, &args, t.path()) {
                Ok(out) => bail!("transmission-remote {args:?} got in: {out}"),
                Err(e) => format!("{e:#}"),
            };
            ensure!(err.contains("401"), "refusal without 401: {err}");
        }
        let listed = remote(&addr, &["--auth", "admin:tr-pass", "-l"], t.path())?;
        ensure!(listed.contains("Sum:"), "{listed}");
        if python {
            let port = addr.rsplit(':').next().context("port")?;
            let script = format!(
                "from transmission_rpc import Client\n\
                 from transmission_rpc.error import TransmissionAuthError\n\
                 try:\n    Client(host='127.0.0.1', port={port}, username='admin', password='nope')\n    \
                 raise SystemExit('a wrong password got in')\n\
                 except TransmissionAuthError:\n    pass\n\
                 c = Client(host='127.0.0.1', port={port}, username='admin', password='tr-pass')\n\
                 print('rpc', c.get_session().rpc_version)\n"
            );
            let out = run(
                "transmission-rpc login",
                PYTHON,
                &["-c", &script],
                t.path(),
                QUICK,
            )?;
            ensure!(out.contains("rpc 17"), "{out}");
        }
        node.stop()
    })
}

/// Seeding limits, labels, queue positions and the session's seeding, queue, stalled
/// and alternative speed settings set through `transmission-remote` and raw RPC show
/// in the node's own API.
#[test]
fn seeding_rules_queue_and_alt_speeds_reach_the_node() -> Result<()> {
    if !have_tools("transmission-remote", &["transmission-remote"]) {
        return Ok(());
    }
    with_timeout(Duration::from_secs(150), || {
        let mut s = setup("trpc-rules")?;
        let addr = host_port(&s.node);
        let cwd = s.t.path().to_path_buf();
        let torrent = s.torrent.to_str().context("utf-8")?;
        ensure!(remote(&addr, &["-a", torrent], &cwd)?.contains("success"));
        let magnet = format!("magnet:?xt=urn:btih:{}&dn=second", "cd".repeat(20));
        ensure!(remote(&addr, &["-a", &magnet], &cwd)?.contains("success"));
        let own = |f: &str| -> Result<Value> {
            Ok(api_torrent(&s.node, &s.hash)?.context("torrent gone")?[f].clone())
        };
        let mut rpc = RawRpc::new(&addr);
        let get = |rpc: &mut RawRpc, f: &str| -> Result<Value> {
            let r = rpc.call("torrent-get", json!({"ids": [1], "fields": [f]}))?;
            Ok(r["arguments"]["torrents"][0][f].clone())
        };
        remote(&addr, &["-t", "1", "-sr", "1.5"], &cwd)?;
        ensure!(
            own("ratio_limit")? == json!(1.5),
            "-sr: {}",
            own("ratio_limit")?
        );
        ensure!(get(&mut rpc, "seedRatioMode")? == json!(1));
        ensure!(get(&mut rpc, "seedRatioLimit")? == json!(1.5));
        remote(&addr, &["-t", "1", "-SR"], &cwd)?;
        ensure!(
            own("ratio_limit")? == json!(-1.0),
            "-SR: {}",
            own("ratio_limit")?
        );
        ensure!(get(&mut rpc, "seedRatioMode")? == json!(2));
        remote(&addr, &["-t", "1", "-srd"], &cwd)?;
        ensure!(
            own("ratio_limit")? == json!(-2.0),
            "-srd: {}",
            own("ratio_limit")?
        );
        let r = rpc.call(
            "torrent-set",
            json!({"ids": [1], "seedIdleMode": 1, "seedIdleLimit": 45, "labels": ["a", "b"]}),
        )?;
        ensure!(r["result"] == "success", "{r}");
        ensure!(own("seed_idle_limit")? == json!(45.0));
        ensure!(own("tags")? == json!(["a", "b"]), "tags {}", own("tags")?);
        ensure!(get(&mut rpc, "labels")? == json!(["a", "b"]));
        ensure!(get(&mut rpc, "seedIdleLimit")? == json!(45));
        // A limit alone for a torrent not in mode 1 has nowhere to live.
        let r = rpc.call("torrent-set", json!({"ids": [1], "seedRatioLimit": 4}))?;
        ensure!(r["result"] != "success", "orphan limit accepted: {r}");
        // Switching a speed limit on without saying which one has nothing to apply.
        let r = rpc.call("torrent-set", json!({"ids": [1], "downloadLimited": true}))?;
        ensure!(r["result"] != "success", "speed limit pretended: {r}");

        ensure!(own("queue_position")? == json!(1));
        ensure!(get(&mut rpc, "queuePosition")? == json!(0));
        let r = rpc.call("queue-move-bottom", json!({"ids": [1]}))?;
        ensure!(r["result"] == "success", "{r}");
        // The magnet is not in the node's queue yet: the torrent stays first.
        ensure!(own("queue_position")? == json!(1));
        let r = rpc.call(
            "torrent-get",
            json!({"fields": ["id", "isFinished", "isStalled", "secondsSeeding"]}),
        )?;
        let t0 = &r["arguments"]["torrents"][0];
        ensure!(
            t0["isFinished"] == false && t0["isStalled"].is_boolean(),
            "{r}"
        );
        ensure!(t0["secondsSeeding"].is_u64(), "{r}");

        remote(&addr, &["-gsr", "2.5"], &cwd)?;
        remote(&addr, &["-as"], &cwd)?;
        remote(&addr, &["--alt-speed-scheduler"], &cwd)?;
        let r = rpc.call(
            "session-set",
            json!({"alt-speed-down": 300, "alt-speed-up": 40, "alt-speed-time-begin": 60,
                   "alt-speed-time-end": 120, "alt-speed-time-day": 62,
                   "idle-seeding-limit": 20, "idle-seeding-limit-enabled": true,
                   "seed-queue-size": 3, "seed-queue-enabled": true,
                   "queue-stalled-minutes": 5, "queue-stalled-enabled": true,
                   "download-queue-size": 4, "download-queue-enabled": true}),
        )?;
        ensure!(r["result"] == "success", "{r}");
        let set = s.node.get("settings")?;
        for (k, v) in [
            ("seed_ratio_limit", json!(2.5)),
            ("alt_enabled", json!(true)),
            ("alt_schedule_enabled", json!(true)),
            ("alt_max_down", json!(300_000)),
            ("alt_max_up", json!(40_000)),
            ("alt_schedule_begin", json!(60)),
            ("alt_schedule_end", json!(120)),
            ("alt_schedule_days", json!(62)),
            ("seed_idle_limit", json!(20.0)),
            ("max_active_seeds", json!(3)),
            ("stalled_secs", json!(300)),
            ("max_active", json!(4)),
            ("queueing_enabled", json!(true)),
        ] {
            ensure!(set[k] == v, "{k}: {} in {set}", set[k]);
        }
        let g = rpc.call("session-get", json!({}))?["arguments"].clone();
        ensure!(
            g["seedRatioLimit"] == json!(2.5) && g["seedRatioLimited"] == true,
            "{g}"
        );
        ensure!(
            g["alt-speed-enabled"] == true && g["alt-speed-down"] == 300,
            "{g}"
        );
        ensure!(
            g["queue-stalled-minutes"] == 5 && g["seed-queue-size"] == 3,
            "{g}"
        );
        remote(&addr, &["-GSR"], &cwd)?;
        remote(&addr, &["-AS"], &cwd)?;
        let set = s.node.get("settings")?;
        ensure!(
            set["seed_ratio_limit"].as_f64().is_some_and(|r| r < 0.0),
            "{set}"
        );
        ensure!(set["alt_enabled"] == false, "{set}");
        let g = rpc.call(
            "session-get",
            json!({"fields": ["seedRatioLimit", "seedRatioLimited"]}),
        )?;
        ensure!(
            g["arguments"]["seedRatioLimit"] == json!(2.5)
                && g["arguments"]["seedRatioLimited"] == false,
            "the ratio is kept while off: {g}"
        );
        s.node.stop()
    })
}

/// A per-torrent download limit set with `transmission-remote -t 1 -d 200` reaches
/// the node's API and holds: a second node downloading from the first gets no more
/// than 1.3 x 200 kB/s over a few seconds (and does transfer). `-D` lifts it.
#[test]
fn a_per_torrent_download_limit_holds() -> Result<()> {
    if !have_tools("transmission-remote", &["transmission-remote"]) {
        return Ok(());
    }
    const LIMIT_KB: u64 = 200;
    with_timeout(Duration::from_secs(150), || {
        let t = TestDir::new("trpc-speed")?;
        let seed_dir = t.sub("seed")?;
        let file = seed_dir.join("big.bin");
        write_random_file(&file, 8 << 20, 11)?;
        let mut seeder = start_node("seeder", &t.path().join("a"), &seed_dir, &[])?;
        let tracker = seeder.tracker.clone().context("embedded tracker")?;
        let torrent = t.path().join("big.torrent");
        let hash = create_torrent(&file, &tracker, &torrent, 65536)?;
        seeder.add_torrent_file(&torrent)?;
        let mut node = start_node(
            "leecher",
            &t.path().join("b"),
            &t.sub("dl")?,
            &["--no-tracker"],
        )?;
        let addr = host_port(&node);
        let cwd = t.path().to_path_buf();
        let mut rpc = RawRpc::new(&addr);
        let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&torrent)?);
        let r = rpc.call("torrent-add", json!({"metainfo": b64, "paused": true}))?;
        ensure!(r["result"] == "success", "{r}");
        remote(&addr, &["-t", "1", "-d", &LIMIT_KB.to_string()], &cwd)?;
        let own = node.torrent(&hash)?;
        ensure!(own["max_down"] == json!(LIMIT_KB * 1000), "{own}");
        let r = rpc.call(
            "torrent-get",
            json!({"ids": [1], "fields": ["downloadLimit", "downloadLimited"]}),
        )?;
        let got = &r["arguments"]["torrents"][0];
        ensure!(
            got["downloadLimit"] == LIMIT_KB && got["downloadLimited"] == true,
            "{r}"
        );
        remote(&addr, &["-t", "1", "-s"], &cwd)?;
        node.wait_torrent(&hash, "bytes arrive", TRANSFER, |t| {
            t["downloaded"].as_u64().unwrap_or(0) > 0
        })?;
        std::thread::sleep(Duration::from_secs(1));
        let read = || -> Result<(u64, std::time::Instant)> {
            let t = node.torrent(&hash)?;
            Ok((
                t["downloaded"].as_u64().context("downloaded")?,
                std::time::Instant::now(),
            ))
        };
        let (d0, t0) = read()?;
        std::thread::sleep(Duration::from_secs(5));
        let (d1, t1) = read()?;
        let rate = (d1 - d0) as f64 / (t1 - t0).as_secs_f64();
        let limit = (LIMIT_KB * 1000) as f64;
        println!("per-torrent limit {limit} B/s: measured {rate:.0} B/s");
        ensure!(
            rate <= limit * 1.3,
            "{rate:.0} B/s over a {limit} B/s limit"
        );
        ensure!(rate >= limit * 0.3, "{rate:.0} B/s: hardly any transfer");
        remote(&addr, &["-t", "1", "-D"], &cwd)?;
        ensure!(node.torrent(&hash)?["max_down"] == json!(0));
        node.stop()?;
        seeder.stop()
    })
}
