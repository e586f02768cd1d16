//! The qBittorrent WebUI API v2 (`/api/v2`) of a real `shoal up`, driven by the
//! `qbittorrent-api` Python package (`tests/drivers/qbt_client.py`), and its
//! conformance with Debian's `qbittorrent-nox`: the same calls against both, comparing
//! the keys and JSON types of every answer.

mod common;
mod nodeutil;

use anyhow::{bail, ensure, Context, Result};
use common::libtorrent::{skip, PYTHON};
use common::*;
use nodeutil::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DRIVER: &str = include_str!("drivers/qbt_client.py");

/// A magnet no swarm has (added stopped; only its entry is exercised).
const MAGNET: &str = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=nothing";

/// Keys qbittorrent-nox returns that Shoal leaves out, and why. Everything else the
/// reference has, Shoal must have with the same JSON type.
const EXEMPT: &[(&str, &str)] = &[
    // Preferences of features Shoal does not have at all (mail, RSS, DynDNS, proxy,
    // scheduler, IP filter, libtorrent tuning knobs, WebUI HTTPS/ban/CSRF options of a
    // login layer that is a separate part): tools read none of them, and a value for
    // them would describe a qBittorrent that is not there.
    ("app/preferences", "*"),
];

/// True when `PYTHON` imports qbittorrentapi; otherwise prints why (or panics under
/// `SHOAL_INTEROP_REQUIRED=1`).
fn have_qbittorrent_api(test: &str) -> bool {
    let ok = std::process::Command::new(PYTHON)
        .args(["-c", "import qbittorrentapi, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(&format!(
            "SKIPPED {test}: {PYTHON} cannot import qbittorrentapi \
             (pip install --break-system-packages qbittorrent-api, or run scripts/test)"
        ));
    }
    ok
}

/// A data file, its `.torrent`, and the folder holding the data.
struct Fixture {
    torrent: PathBuf,
    save: PathBuf,
}

fn fixture(t: &TestDir) -> Result<Fixture> {
    let save = t.sub("content")?;
    let data = save.join("payload.bin");
    write_random_file(&data, 300_000, 15)?;
    let torrent = t.path().join("payload.torrent");
    create_torrent(&data, "http://127.0.0.1:1/announce", &torrent, 32768)?;
    Ok(Fixture { torrent, save })
}

fn driver(t: &TestDir, mode: &str, url: &str, f: &Fixture) -> Result<String> {
    let script = t.path().join("qbt_client.py");
    std::fs::write(&script, DRIVER)?;
    let utf8 = |p: &Path| p.to_str().map(str::to_string).context("path is not UTF-8");
    let args = [
        utf8(&script)?,
        mode.to_string(),
        url.to_string(),
        utf8(&f.torrent)?,
        utf8(&f.save)?,
        MAGNET.to_string(),
    ];
    let mut p = Proc::spawn(&format!("qbt_client {mode}"), PYTHON, &args, t.path())?;
    let r = p.wait_success(Duration::from_secs(150));
    let out = p.output(Stream::Stdout);
    r.with_context(|| format!("qbt_client {mode} against {url}:\n{out}"))?;
    Ok(out)
}

fn start(t: &TestDir) -> Result<Node> {
    let data = t.path().join("node");
    let dl = t.sub("downloads")?;
    start_node("shoal", &data, &dl, &["--no-tracker"])
}

#[test]
fn qbittorrent_api_client_drives_shoal() -> Result<()> {
    if !have_qbittorrent_api("qbittorrent_api_client_drives_shoal") {
        return Ok(());
    }
    with_timeout(Duration::from_secs(240), || {
        let t = TestDir::new("qbt-api")?;
        let f = fixture(&t)?;
        let mut node = start(&t)?;
        let out = driver(&t, "scenario", node.url.trim_end_matches('/'), &f)?;
        ensure!(out.trim_end().ends_with("OK"), "driver output:\n{out}");
        // The native API sees the same labels machinery.
        let (code, _) = call_raw("GET", &node.api("categories"), "application/json", b"")?;
        ensure!(code == 200, "GET /api/categories answered {code}");
        // The preferences the driver left are the node's settings.
        let (code, s) = call_raw("GET", &node.api("settings"), "application/json", b"")?;
        ensure!(code == 200, "GET /api/settings answered {code}");
        ensure!(
            s["queueing_enabled"] == true
                && s["max_active_seeds"] == 3
                && s["alt_max_up"] == 2048
                && s["alt_enabled"] == false,
            "settings after the driver: {s}"
        );
        node.stop()
    })
}

#[test]
fn qbittorrent_api_login_is_required_once_a_password_is_set() -> Result<()> {
    if !have_qbittorrent_api("qbittorrent_api_login_is_required_once_a_password_is_set") {
        return Ok(());
    }
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("qbt-login")?;
        let data = t.path().join("node");
        let (ok, out) = passwd(&data, "s3cret-qbt\ns3cret-qbt\n")?;
        ensure!(ok, "shoal passwd: {out}");
        let mut node = start_node("shoal", &data, &t.sub("downloads")?, &["--no-tracker"])?;
        let script = t.path().join("qbt_client.py");
        std::fs::write(&script, DRIVER)?;
        let script = script.to_str().context("path is not UTF-8")?.to_string();
        let url = node.url.trim_end_matches('/').to_string();
        let args = [script, "login".into(), url, "s3cret-qbt".into()];
        let mut p = Proc::spawn("qbt_client login", PYTHON, &args, t.path())?;
        let r = p.wait_success(Duration::from_secs(60));
        let out = p.output(Stream::Stdout);
        r.with_context(|| format!("qbt_client login:\n{out}"))?;
        ensure!(out.trim_end().ends_with("OK"), "driver output:\n{out}");
        node.stop()
    })
}

/// Starts `qbittorrent-nox` with its own profile on loopback (no DHT, LSD, PeX or port
/// forwarding; WebUI without login for 127.0.0.1) and waits until its API answers.
fn start_reference(t: &TestDir) -> Result<(Proc, String)> {
    let profile = t.sub("qbt-profile")?;
    let config = profile.join("qBittorrent/config");
    std::fs::create_dir_all(&config)?;
    let port = free_port()?;
    let downloads = t.sub("qbt-downloads")?;
    std::fs::write(
        config.join("qBittorrent.conf"),
        format!(
            "[LegalNotice]\nAccepted=true\n\n\
             [Network]\nPortForwardingEnabled=false\n\n\
             [BitTorrent]\nSession\\DHTEnabled=false\nSession\\LSDEnabled=false\n\
             Session\\PeXEnabled=false\nSession\\Interface=lo\nSession\\InterfaceName=lo\n\
             Session\\DefaultSavePath={}\n\n\
             [Preferences]\nConnection\\UPnP=false\nBittorrent\\DHT=false\n\
             Bittorrent\\LSD=false\nBittorrent\\PeX=false\nWebUI\\Address=127.0.0.1\n\
             WebUI\\Port={port}\nWebUI\\LocalHostAuth=false\nWebUI\\CSRFProtection=false\n\
             WebUI\\HostHeaderValidation=false\nWebUI\\UseUPnP=false\n",
            downloads.display()
        ),
    )?;
    let args = [
        format!("--profile={}", profile.display()),
        format!("--webui-port={port}"),
    ];
    let proc = Proc::spawn("qbittorrent-nox", "qbittorrent-nox", &args, t.path())?;
    let url = format!("http://127.0.0.1:{port}");
    let version = format!("{url}/api/v2/app/version");
    poll("qbittorrent-nox's WebUI", Duration::from_secs(30), || {
        Ok(ureq::get(&version).call().ok().map(|_| ()))
    })?;
    Ok((proc, url))
}

/// Differences between a reference shape and Shoal's, one line each; returns the number
/// of leaf values compared.
fn shape_diff(path: &str, reference: &Value, ours: &Value, out: &mut Vec<String>) -> usize {
    let exempt = |key: &str| {
        EXEMPT
            .iter()
            .any(|(p, k)| *p == path && (*k == "*" || *k == key))
    };
    match (reference, ours) {
        (Value::Object(r), Value::Object(o)) => {
            let mut n = 0;
            for (k, rv) in r {
                match o.get(k) {
                    Some(ov) => n += shape_diff(&format!("{path}.{k}"), rv, ov, out),
                    None if exempt(k) => {}
                    None => out.push(format!("{path}: missing key {k:?} (reference: {rv})")),
                }
            }
            n
        }
        (Value::Array(r), Value::Array(o)) => match (r.first(), o.first()) {
            (Some(rv), Some(ov)) => shape_diff(&format!("{path}[]"), rv, ov, out),
            (Some(_), None) => {
                out.push(format!(
                    "{path}: empty in Shoal's answer, not in the reference"
                ));
                1
            }
            _ => 1,
        },
        (r, o) => {
            if r != o {
                out.push(format!("{path}: reference {r}, Shoal {o}"));
            }
            1
        }
    }
}

#[test]
fn qbittorrent_api_answers_have_qbittorrent_nox_shapes() -> Result<()> {
    let test = "qbittorrent_api_answers_have_qbittorrent_nox_shapes";
    if !have_qbittorrent_api(test) || !have_tools(test, &["qbittorrent-nox"]) {
        return Ok(());
    }
    with_timeout(Duration::from_secs(240), || {
        let t = TestDir::new("qbt-conformance")?;
        let f = fixture(&t)?;
        let (mut reference, ref_url) = start_reference(&t)?;
        let ref_out = driver(&t, "shapes", &ref_url, &f);
        reference.terminate()?;
        let ref_out = ref_out?;
        let mut node = start(&t)?;
        let ours = driver(&t, "shapes", node.url.trim_end_matches('/'), &f)?;
        node.stop()?;
        let parse = |s: &str| -> Result<Value> {
            let line = s.lines().last().context("no output")?;
            serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))
        };
        let (r, o) = (parse(&ref_out)?, parse(&ours)?);
        let (Value::Object(r), Value::Object(o)) = (&r, &o) else {
            bail!("shapes are not objects");
        };
        let mut diffs = Vec::new();
        let mut compared = 0;
        for (endpoint, rv) in r {
            match o.get(endpoint) {
                Some(ov) => compared += shape_diff(endpoint, rv, ov, &mut diffs),
                None => diffs.push(format!("{endpoint}: not answered by Shoal")),
            }
        }
        println!(
            "compared {compared} values of {} answers with qbittorrent-nox",
            r.len()
        );
        // The torrent object alone has about 50 keys: a tiny count means the reference's
        // answers were not what this test expects.
        ensure!(compared > 150, "only {compared} values compared");
        ensure!(
            diffs.is_empty(),
            "Shoal's qBittorrent API differs from qbittorrent-nox's:\n  {}",
            diffs.join("\n  ")
        );
        Ok(())
    })
}
