//! The web login end to end (docs/NODE.md, "Web login"): real `shoal` processes on
//! loopback. A password set with `shoal passwd` closes every endpoint (native,
//! qBittorrent, Transmission, UI) to requests without a session; login, logout, Basic
//! auth, the brute-force throttle, the Host allow-list, the cross-site check, a password
//! change picked up without restart, the generated password of a node bound to
//! `0.0.0.0`, and HTTPS.

mod common;
mod nodeutil;

use anyhow::{ensure, Context, Result};
use common::*;
use nodeutil::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// An answer: status, `Set-Cookie`, `WWW-Authenticate`, `Location`, body.
struct Answer {
    status: u16,
    cookie: Option<String>,
    challenge: Option<String>,
    location: Option<String>,
    body: String,
}

/// One request without following redirects.
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Result<Answer> {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(30))
        .build();
    let mut req = agent.request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let r = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e).context("HTTP request failed"),
    };
    Ok(Answer {
        status: resp.status(),
        cookie: resp.header("set-cookie").map(str::to_owned),
        challenge: resp.header("www-authenticate").map(str::to_owned),
        location: resp.header("location").map(str::to_owned),
        body: resp.into_string()?,
    })
}

fn login_body(user: &str, pw: &str) -> String {
    serde_json::json!({"username": user, "password": pw}).to_string()
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// Logs in through `POST /api/login`; returns the `SID=...` cookie pair.
fn login(node: &Node, pw: &str) -> Result<String> {
    let a = http(
        "POST",
        &node.api("login"),
        &[JSON],
        Some(&login_body("admin", pw)),
    )?;
    ensure!(a.status == 200, "login: {} {}", a.status, a.body);
    let cookie = a.cookie.context("no Set-Cookie")?;
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        ensure!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }
    ensure!(
        !cookie.contains("Secure"),
        "Secure over plain HTTP: {cookie}"
    );
    Ok(cookie.split(';').next().unwrap_or("").to_string())
}

/// Every endpoint, as (method, path after the base URL, expected refusal status).
const ENDPOINTS: &[(&str, &str, u16)] = &[
    ("GET", "api/node", 401),
    ("GET", "api/stats", 401),
    ("GET", "api/torrents", 401),
    ("POST", "api/torrents", 401),
    ("POST", "api/share", 401),
    ("GET", "api/jobs", 401),
    ("GET", "api/jobs/1", 401),
    ("GET", "api/torrents/abcd", 401),
    ("DELETE", "api/torrents/abcd", 401),
    ("POST", "api/torrents/abcd/pause", 401),
    ("POST", "api/torrents/abcd/resume", 401),
    ("POST", "api/torrents/abcd/recheck", 401),
    ("GET", "api/torrents/abcd/torrent", 401),
    ("GET", "api/torrents/abcd/files", 401),
    ("PUT", "api/torrents/abcd/files/0", 401),
    ("GET", "api/torrents/abcd/peers", 401),
    ("GET", "api/torrents/abcd/pieces", 401),
    ("GET", "api/torrents/abcd/trackers", 401),
    ("GET", "api/history", 401),
    ("GET", "api/log", 401),
    ("GET", "api/settings", 401),
    ("PATCH", "api/settings", 401),
    ("GET", "api/search?q=x", 401),
    ("POST", "api/get", 401),
    ("GET", "api/fs", 401),
    ("POST", "api/upload", 401),
    ("GET", "api/events", 401),
    ("GET", "api/no-such-endpoint", 401),
    ("GET", "api/v2/app/version", 403),
    ("GET", "api/v2/torrents/info", 403),
    ("POST", "api/v2/torrents/add", 403),
    ("POST", "transmission/rpc", 401),
    ("GET", "metrics", 401),
    ("GET", "index.html", 303),
    ("GET", "", 303),
];

#[test]
fn a_password_closes_every_endpoint_until_login() -> Result<()> {
    with_timeout(Duration::from_secs(150), || {
        let t = TestDir::new("auth-closed")?;
        let data = t.path().join("node");
        let (ok, out) = passwd(&data, "first pw\nfirst pw\n")?;
        ensure!(ok, "shoal passwd failed: {out}");
        let config = std::fs::read_to_string(data.join("config.toml"))?;
        ensure!(config.contains("web_password = '$argon2id$"), "{config}");
        ensure!(
            !config.contains("first pw"),
            "the password itself is stored"
        );
        let n = start_node("auth node", &data, &t.sub("dl")?, &[])?;

        for (method, path, want) in ENDPOINTS {
            let body = (*method != "GET" && *method != "DELETE").then_some("{}");
            let a = http(method, &format!("{}{path}", n.url), &[JSON], body)?;
            ensure!(
                a.status == *want,
                "{method} /{path}: {} {}",
                a.status,
                a.body
            );
            if path.starts_with("transmission") {
                ensure!(
                    a.challenge.as_deref() == Some("Basic realm=\"Transmission\""),
                    "{:?}",
                    a.challenge
                );
            }
            if *want == 303 {
                ensure!(a.location.as_deref() == Some("/login"), "{:?}", a.location);
            }
        }
        // The login page is open, and so is the session status.
        let page = http("GET", &format!("{}login", n.url), &[], None)?;
        ensure!(
            page.status == 200 && page.body.contains("Log in"),
            "{}",
            page.body
        );
        let s = http("GET", &n.api("session"), &[], None)?;
        ensure!(s.body.contains("\"required\":true"), "{}", s.body);

        // A wrong password is 401; the right one gives a session that opens everything.
        let wrong = http(
            "POST",
            &n.api("login"),
            &[JSON],
            Some(&login_body("admin", "x")),
        )?;
        ensure!(wrong.status == 401, "wrong password: {}", wrong.status);
        let sid = login(&n, "first pw")?;
        let with = [("Cookie", sid.as_str())];
        let a = http("GET", &n.api("node"), &with, None)?;
        ensure!(
            a.status == 200 && a.body.contains("peer_id"),
            "{} {}",
            a.status,
            a.body
        );
        let a = http("GET", &n.url, &with, None)?;
        ensure!(
            a.status == 200 && a.body.contains("<title>Shoal</title>"),
            "UI: {}",
            a.status
        );
        // Past the login layer, the same cookie serves the qBittorrent API.
        let a = http("GET", &n.api("v2/app/version"), &with, None)?;
        ensure!(
            a.status == 200 && a.body.starts_with('v'),
            "v2 with session: {} {}",
            a.status,
            a.body
        );
        // Basic auth works too (CLI, Transmission clients); the CLI takes SHOAL_PASSWORD.
        let basic = format!("Basic {}", b64("admin:first pw"));
        let a = http("GET", &n.api("stats"), &[("Authorization", &basic)], None)?;
        ensure!(a.status == 200, "basic: {} {}", a.status, a.body);
        let mut ls = Proc::shoal("ls", &["ls", "--node", &n.url], t.path())?;
        let st = ls.wait_exit(QUICK)?;
        let err = ls.output(Stream::Stderr);
        ensure!(
            !st.success() && err.contains("asks for a login"),
            "ls: {err}"
        );
        let mut cmd = Command::new(shoal_bin());
        cmd.args(["ls", "--node", &n.url])
            .env("SHOAL_PASSWORD", "first pw")
            .current_dir(t.path());
        let mut ls = Proc::spawn_command("ls with password", cmd)?;
        ls.wait_success(QUICK)?;

        // Logout ends the session.
        let out = http("POST", &n.api("logout"), &with, None)?;
        ensure!(out.status == 204, "logout: {}", out.status);
        ensure!(
            http("GET", &n.api("node"), &with, None)?.status == 401,
            "session outlived logout"
        );

        // A new password reaches the running node: old sessions end, the new one works.
        let sid = login(&n, "first pw")?;
        let (ok, out) = passwd(&data, "second pw\nsecond pw\n")?;
        ensure!(ok, "passwd again: {out}");
        poll("old session ended", Duration::from_secs(20), || {
            Ok(
                (http("GET", &n.api("node"), &[("Cookie", &sid)], None)?.status == 401)
                    .then_some(()),
            )
        })?;
        login(&n, "second pw")?;
        let old = http(
            "POST",
            &n.api("login"),
            &[JSON],
            Some(&login_body("admin", "first pw")),
        )?;
        ensure!(
            old.status == 401,
            "old password still works: {}",
            old.status
        );
        Ok(())
    })
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn passwd_refuses_mismatch_and_empty() -> Result<()> {
    with_timeout(Duration::from_secs(60), || {
        let t = TestDir::new("auth-passwd")?;
        let data = t.path().join("node");
        let (ok, out) = passwd(&data, "one\ntwo\n")?;
        ensure!(!ok && out.contains("differ"), "{out}");
        let (ok, out) = passwd(&data, "\n\n")?;
        ensure!(!ok && out.contains("empty"), "{out}");
        ensure!(!data.join("config.toml").exists(), "a config was written");
        Ok(())
    })
}

#[test]
fn brute_force_is_throttled() -> Result<()> {
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("auth-throttle")?;
        let data = t.path().join("node");
        ensure!(passwd(&data, "pw\npw\n")?.0, "passwd");
        let n = start_node("auth node", &data, &t.sub("dl")?, &[])?;
        for i in 1..=5 {
            let a = http(
                "POST",
                &n.api("login"),
                &[JSON],
                Some(&login_body("admin", "guess")),
            )?;
            ensure!(a.status == 401, "failure {i}: {}", a.status);
        }
        let started = Instant::now();
        let a = http(
            "POST",
            &n.api("login"),
            &[JSON],
            Some(&login_body("admin", "pw")),
        )?;
        ensure!(a.status == 429, "6th attempt: {} {}", a.status, a.body);
        // Basic auth and the qBittorrent login are throttled alike.
        let basic = format!("Basic {}", b64("admin:pw"));
        let a = http("GET", &n.api("node"), &[("Authorization", &basic)], None)?;
        ensure!(a.status == 429, "basic while banned: {}", a.status);
        let a = http(
            "POST",
            &n.api("v2/auth/login"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some("username=admin&password=pw"),
        )?;
        ensure!(
            a.status == 403 && a.body.contains("banned after too many failed"),
            "qbt login while banned: {} {}",
            a.status,
            a.body
        );
        // Refused at once, without a password hash.
        ensure!(started.elapsed() < Duration::from_secs(5), "slow refusals");
        Ok(())
    })
}

#[test]
fn foreign_hosts_and_cross_site_requests_are_refused() -> Result<()> {
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("auth-host")?;
        let data = t.path().join("node");
        ensure!(passwd(&data, "pw\npw\n")?.0, "passwd");
        let n = start_node(
            "auth node",
            &data,
            &t.sub("dl")?,
            &["--web-host", "shoal.test"],
        )?;
        let sid = login(&n, "pw")?;
        let port = n
            .url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .context("port")?;
        let evil = format!("rebind.example:{port}");
        let named = format!("shoal.test:{port}");
        // A foreign Host is refused even with a session, and before any login attempt.
        let a = http(
            "GET",
            &n.api("node"),
            &[("Host", &evil), ("Cookie", &sid)],
            None,
        )?;
        ensure!(a.status == 403, "foreign Host: {}", a.status);
        let a = http("GET", &n.url, &[("Host", &evil)], None)?;
        ensure!(a.status == 403, "foreign Host on the UI: {}", a.status);
        let a = http(
            "POST",
            &n.api("login"),
            &[("Host", &evil), JSON],
            Some(&login_body("admin", "pw")),
        )?;
        ensure!(
            a.status == 403,
            "login through a foreign Host: {}",
            a.status
        );
        // A --web-host name passes.
        let a = http(
            "GET",
            &n.api("node"),
            &[("Host", &named), ("Cookie", &sid)],
            None,
        )?;
        ensure!(a.status == 200, "--web-host name: {} {}", a.status, a.body);
        // Cross-site state changes are refused even with the session cookie.
        let own = n.url.trim_end_matches('/').to_string();
        for origin in ["http://evil.example", "null"] {
            let a = http(
                "PATCH",
                &n.api("settings"),
                &[("Origin", origin), ("Cookie", &sid), JSON],
                Some("{\"max_up\": 1}"),
            )?;
            ensure!(a.status == 403, "Origin {origin}: {}", a.status);
            let a = http(
                "POST",
                &n.api("login"),
                &[("Origin", origin), JSON],
                Some(&login_body("admin", "pw")),
            )?;
            ensure!(a.status == 403, "cross-site login {origin}: {}", a.status);
        }
        let a = http(
            "PATCH",
            &n.api("settings"),
            &[("Origin", &own), ("Cookie", &sid), JSON],
            Some("{\"max_up\": 1}"),
        )?;
        ensure!(a.status == 200, "own Origin: {} {}", a.status, a.body);
        Ok(())
    })
}

#[test]
fn wildcard_bind_without_password_requires_a_generated_one() -> Result<()> {
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("auth-generated")?;
        let data = t.path().join("node");
        let args: Vec<String> = [
            "up",
            "--data-dir",
            &data.display().to_string(),
            "--download-dir",
            &t.sub("dl")?.display().to_string(),
            "--port",
            "0",
            "--web",
            "0.0.0.0:0",
            "--tracker-bind",
            "127.0.0.1:0",
            "--no-tracker",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut p = Proc::shoal("wildcard node", &args, t.path())?;
        let line = p.wait_for_prefix(
            "web UI password for admin (generated, set one with shoal passwd): ",
            READY,
        )?;
        let pw = line.trim().to_string();
        ensure!(pw.len() >= 12, "generated password {pw:?}");
        // Only loopback is ever contacted: the printed URL is 127.0.0.1.
        let url = p.wait_for_prefix("web: ", READY)?;
        ensure!(url.starts_with("http://127.0.0.1:"), "{url}");
        let log = p.output(Stream::Stderr);
        ensure!(log.contains(&pw), "the password is not in the log: {log}");
        ensure!(
            !std::fs::read_to_string(data.join("config.toml"))
                .unwrap_or_default()
                .contains(&pw),
            "stored"
        );
        let api = format!("{url}api/node");
        ensure!(
            http("GET", &api, &[], None)?.status == 401,
            "open without the password"
        );
        let wrong = http(
            "POST",
            &format!("{url}api/login"),
            &[JSON],
            Some(&login_body("admin", "nope")),
        )?;
        ensure!(wrong.status == 401, "wrong: {}", wrong.status);
        let a = http(
            "POST",
            &format!("{url}api/login"),
            &[JSON],
            Some(&login_body("admin", &pw)),
        )?;
        ensure!(a.status == 200, "login: {} {}", a.status, a.body);
        let sid = a
            .cookie
            .context("cookie")?
            .split(';')
            .next()
            .unwrap_or("")
            .to_string();
        ensure!(
            http("GET", &api, &[("Cookie", &sid)], None)?.status == 200,
            "session"
        );
        p.terminate()?;
        p.wait_success(Duration::from_secs(30))
    })
}

#[test]
fn https_with_a_certificate() -> Result<()> {
    if !have_tools("https_with_a_certificate", &["openssl", "curl"]) {
        return Ok(());
    }
    with_timeout(Duration::from_secs(120), || {
        let t = TestDir::new("auth-tls")?;
        let (cert, key) = (t.path().join("cert.pem"), t.path().join("key.pem"));
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()?;
        ensure!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let data = t.path().join("node");
        ensure!(passwd(&data, "pw\npw\n")?.0, "passwd");
        let (c, k) = (cert.display().to_string(), key.display().to_string());
        let n = start_node(
            "tls node",
            &data,
            &t.sub("dl")?,
            &["--web-tls-cert", &c, "--web-tls-key", &k],
        )?;
        ensure!(n.url.starts_with("https://127.0.0.1:"), "{}", n.url);
        let curl = |args: &[&str]| -> Result<String> {
            let out = Command::new("curl")
                .args(["-sS", "--max-time", "20", "--cacert", &c])
                .args(args)
                .output()?;
            ensure!(
                out.status.success(),
                "curl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let code = curl(&["-o", "/dev/null", "-w", "%{http_code}", &n.api("node")])?;
        ensure!(code == "401", "without login over TLS: {code}");
        let head = curl(&[
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-H",
            "Content-Type: application/json",
            "--data",
            &login_body("admin", "pw"),
            &n.api("login"),
        ])?;
        ensure!(head.starts_with("HTTP/1.1 200"), "{head}");
        let cookie = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
            .context("no cookie")?;
        ensure!(
            cookie.contains("; Secure") && cookie.contains("HttpOnly"),
            "{cookie}"
        );
        let sid = cookie
            .split_once(':')
            .context("cookie")?
            .1
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .to_string();
        let body = curl(&["-H", &format!("Cookie: {sid}"), &n.api("node")])?;
        ensure!(body.contains("peer_id"), "{body}");
        // Plain HTTP to the TLS port gets nothing useful.
        let plain = n.api("node").replacen("https://", "http://", 1);
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &plain,
            ])
            .output()?;
        ensure!(
            String::from_utf8_lossy(&out.stdout) != "200",
            "plain HTTP answered"
        );
        Ok(())
    })
}
