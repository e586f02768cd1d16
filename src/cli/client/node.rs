//! Finding the running node and calling its JSON API (`docs/API.md`).
//!
//! The node is `--node URL` when given, else the `url` in `<data dir>/node.json`, which the
//! node writes once its API listens (the data dir defaults as for `shoal up`). Failures are sorted by who is at fault, because they exit
//! with different codes: the node answered with an error ([`Failure::Node`], exit 1), no node
//! answered ([`Failure::Unreachable`], exit 2, with how to start one), or something local such
//! as an unreadable file ([`Failure::Local`], exit 1).
//!
//! A node that asks for a login gets HTTP Basic credentials (`--password` or
//! `SHOAL_PASSWORD`) on every request; it remembers verified ones, so this costs it no
//! password hash per request.
//!
//! Calls are blocking (ureq, plain HTTP on loopback): each command makes a handful of requests,
//! so they run on one blocking thread rather than the async runtime.

use std::fmt;
use std::io::{ErrorKind, Read};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

/// How to start a node, for messages about a missing one.
const START_HINT: &str =
    "start one with `shoal up` (in a source checkout: `cargo run --release`), or pass --node URL";

/// Longest wait for the TCP connection to the node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for one whole request (search merges remote trackers, so not too short).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response body read (a `.torrent` of a very large share stays below this).
const MAX_BODY: u64 = 64 << 20;

/// Why a node command failed.
#[derive(Debug)]
pub enum Failure {
    /// The node answered with an error status; `message` is its `error` text.
    Node { status: u16, message: String },
    /// No node answered; the message says why and how to start one.
    Unreachable(String),
    /// A local problem: arguments, files, an unexpected answer.
    Local(anyhow::Error),
}

impl Failure {
    /// The process exit code: 2 when no node answered, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Unreachable(_) => 2,
            Failure::Node { .. } | Failure::Local(_) => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Node { status, message } if *status == 500 => {
                write!(f, "the node failed (HTTP {status}): {message}")
            }
            Failure::Node { message, .. } => f.write_str(message),
            Failure::Unreachable(msg) => f.write_str(msg),
            Failure::Local(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Local(e)
    }
}

/// `<data dir>/node.json`, as the node writes it.
#[derive(Deserialize, Debug)]
struct NodeFile {
    url: String,
    #[serde(default)]
    pid: Option<u32>,
}

/// `http://host:port` without a trailing slash; a bare `host:port` gets `http://`.
pub fn normalize_url(url: &str) -> Result<String, Failure> {
    let url = url.trim().trim_end_matches('/');
    if url.is_empty() {
        return Err(anyhow::anyhow!("--node needs a URL such as http://127.0.0.1:8080").into());
    }
    if url.starts_with("https://") {
        return Err(anyhow::anyhow!(
            "{url}: shoal's node commands speak plain HTTP only; use http:// (a node \
             serving HTTPS with --web-tls-cert is driven from its web UI or with curl)"
        )
        .into());
    }
    let url = if url.starts_with("http://") {
        url.to_string()
    } else if url.contains("://") {
        return Err(anyhow::anyhow!("{url}: the node URL must start with http://").into());
    } else {
        format!("http://{url}")
    };
    // The API lives under /api; a URL the user copied from a browser may already end in it.
    Ok(url.strip_suffix("/api").unwrap_or(&url).to_string())
}

/// A node to talk to: its base URL and where that URL came from (for messages).
pub struct Node {
    agent: ureq::Agent,
    base: String,
    origin: String,
    /// `Authorization` header value, when logging in.
    login: Option<String>,
}

/// A successful answer's body.
pub struct Reply {
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (any value).
    pub fn json(&self) -> Result<Value, Failure> {
        serde_json::from_slice(&self.body)
            .context("the node's answer is not JSON")
            .map_err(Failure::Local)
    }

    /// The body as a typed value.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_slice(&self.body)
            .context("the node's answer is not what this shoal version expects")
            .map_err(Failure::Local)
    }
}

impl Node {
    /// The node from `--node URL`, else from `node.json` in `data_dir` (or the default one).
    pub fn locate(url: Option<&str>, data_dir: Option<&Path>) -> Result<Node, Failure> {
        if let Some(url) = url {
            return Ok(Node::new(normalize_url(url)?, format!("--node {url}")));
        }
        let dir = data_dir.map_or_else(crate::config::default_data_dir, Path::to_path_buf);
        let file = dir.join("node.json");
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Failure::Unreachable(format!(
                    "no node is running for data dir {} ({} not found): {START_HINT}",
                    dir.display(),
                    file.display()
                )))
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot read {}", file.display()))
                    .into())
            }
        };
        let info: NodeFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a node file (expected {{\"url\": ...}}); delete it if no node runs there", file.display()))?;
        let origin = match info.pid {
            Some(pid) => format!("{} (pid {pid})", file.display()),
            None => file.display().to_string(),
        };
        Ok(Node::new(normalize_url(&info.url)?, origin))
    }

    fn new(base: String, origin: String) -> Node {
        // No proxy: the default agent ignores *_proxy variables (the node is usually local).
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("shoal/", env!("CARGO_PKG_VERSION")))
            .build();
        Node {
            agent,
            base,
            origin,
            login: None,
        }
    }

    /// Sends `user` and `password` (HTTP Basic) with every request.
    pub fn with_login(mut self, user: &str, password: &str) -> Node {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.login = Some(format!("Basic {token}"));
        self
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path`, with the login when there is one.
    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let req = self.agent.request(method, &self.endpoint(path));
        match &self.login {
            Some(v) => req.set("Authorization", v),
            None => req,
        }
    }

    /// `GET path?query`.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Reply, Failure> {
        let mut req = self.request("GET", path);
        for (k, v) in query {
            req = req.query(k, v);
        }
        self.finish(req.call())
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Reply, Failure> {
        self.finish(self.request("POST", path).send_json(body))
    }

    /// `POST path` with no body.
    pub fn post_empty(&self, path: &str) -> Result<Reply, Failure> {
        self.finish(self.request("POST", path).call())
    }

    /// `POST path` with raw bytes of `content_type`.
    pub fn post_bytes(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Reply, Failure> {
        let req = self.request("POST", path).set("Content-Type", content_type);
        self.finish(req.send_bytes(body))
    }

    /// `DELETE path?query`.
    pub fn delete(&self, path: &str, query: &[(&str, &str)]) -> Result<Reply, Failure> {
        let mut req = self.request("DELETE", path);
        for (k, v) in query {
            req = req.query(k, v);
        }
        self.finish(req.call())
    }

    fn finish(&self, res: Result<ureq::Response, ureq::Error>) -> Result<Reply, Failure> {
        let (ok, status, resp) = match res {
            Ok(resp) => (true, resp.status(), resp),
            Err(ureq::Error::Status(status, resp)) => (false, status, resp),
            Err(ureq::Error::Transport(t)) => return Err(self.transport_failure(&t)),
        };
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_BODY + 1)
            .read_to_end(&mut body)
            .map_err(|e| self.unreachable(&format!("reading the answer failed: {e}")))?;
        if body.len() as u64 > MAX_BODY {
            return Err(anyhow::anyhow!(
                "the node's answer is larger than {MAX_BODY} bytes; giving up"
            )
            .into());
        }
        if ok {
            Ok(Reply { body })
        } else if status == 401 {
            Err(Failure::Node {
                status,
                message: if self.login.is_some() {
                    "the node refused the login: wrong user name or password \
                     (--password / SHOAL_PASSWORD, --web-user)"
                        .into()
                } else {
                    "the node asks for a login: give its web password with --password or \
                     SHOAL_PASSWORD (set with `shoal passwd`)"
                        .into()
                },
            })
        } else {
            Err(Failure::Node {
                status,
                message: error_message(status, &body),
            })
        }
    }

    fn unreachable(&self, why: &str) -> Failure {
        Failure::Unreachable(format!(
            "cannot reach the node at {} (from {}): {why}; {START_HINT}",
            self.base, self.origin
        ))
    }

    fn transport_failure(&self, t: &ureq::Transport) -> Failure {
        use ureq::ErrorKind as K;
        match t.kind() {
            K::InvalidUrl | K::UnknownScheme => Failure::Local(anyhow::anyhow!(
                "{}: not a usable node URL ({}): {t}",
                self.base,
                self.origin
            )),
            K::ConnectionFailed if is_refused(t) => {
                self.unreachable("connection refused, so no node is listening there")
            }
            _ => self.unreachable(&t.to_string()),
        }
    }
}

/// True when the transport error comes from a refused TCP connection.
fn is_refused(t: &ureq::Transport) -> bool {
    let mut source = std::error::Error::source(t);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.kind() == ErrorKind::ConnectionRefused;
        }
        source = e.source();
    }
    false
}

/// The `error` field of an API error body, or a description of the status when the body
/// isn't the documented `{"error": ...}` (e.g. a proxy or another server answered).
fn error_message(status: u16, body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string));
    match from_json {
        Some(msg) if !msg.is_empty() => msg,
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let snippet: String = text.chars().take(200).collect();
            if snippet.is_empty() {
                format!("the node answered HTTP {status}")
            } else {
                format!("the node answered HTTP {status}: {snippet}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized() {
        let n = |s: &str| normalize_url(s).map_err(|e| e.to_string());
        assert_eq!(
            n("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(n("127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(n("http://h:1/api/").unwrap(), "http://h:1");
        assert!(n("").is_err());
        assert!(n("https://h:1").unwrap_err().contains("plain HTTP"));
        assert!(n("ftp://h").is_err());
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_message(404, br#"{"error":"no torrent matches abcd"}"#),
            "no torrent matches abcd"
        );
        assert_eq!(error_message(502, b""), "the node answered HTTP 502");
        assert_eq!(
            error_message(500, b"oops"),
            "the node answered HTTP 500: oops"
        );
    }

    #[test]
    fn missing_node_file_is_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let err = Node::locate(None, Some(dir.path())).err().unwrap();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("shoal up"), "{err}");
    }

    #[test]
    fn node_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("node.json"),
            r#"{"url": "http://127.0.0.1:8123/", "pid": 42, "peer_port": 6001}"#,
        )
        .unwrap();
        let node = Node::locate(None, Some(dir.path())).ok().unwrap();
        assert_eq!(node.base, "http://127.0.0.1:8123");
        assert!(node.origin.contains("pid 42"));
        std::fs::write(dir.path().join("node.json"), "garbage").unwrap();
        let err = Node::locate(None, Some(dir.path())).err().unwrap();
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn refused_connection_exits_2() {
        // Bind and drop to get a port that nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let node = Node::locate(Some(&format!("127.0.0.1:{port}")), None)
            .ok()
            .unwrap();
        let err = node.get("/api/stats", &[]).err().unwrap();
        assert_eq!(err.exit_code(), 2, "{err}");
        assert!(err.to_string().contains("shoal up"), "{err}");
    }

    /// Serves one HTTP request on loopback with `status` and `body`; returns the node
    /// pointing at it and a handle yielding the raw request (head and body).
    fn one_shot(
        status: &'static str,
        body: &'static str,
    ) -> (Node, std::thread::JoinHandle<String>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                request.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut payload = vec![0; length];
            reader.read_exact(&mut payload).unwrap();
            request.push_str(&String::from_utf8_lossy(&payload));
            let mut stream = reader.into_inner();
            write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            request
        });
        (Node::locate(Some(&url), None).ok().unwrap(), handle)
    }

    #[test]
    fn requests_are_formed_as_the_api_says() {
        let (node, server) = one_shot("201 Created", r#"{"id":"ab"}"#);
        let reply = node
            .post_bytes("/api/torrents", "application/x-bittorrent", b"d4:infod")
            .ok()
            .unwrap();
        assert_eq!(reply.json().ok().unwrap()["id"], "ab");
        let req = server.join().unwrap();
        assert!(req.starts_with("POST /api/torrents HTTP/1.1\r\n"), "{req}");
        assert!(req
            .to_ascii_lowercase()
            .contains("content-type: application/x-bittorrent"));
        assert!(req.ends_with("\r\n\r\nd4:infod"), "{req}");

        let (node, server) = one_shot("204 No Content", "");
        node.delete("/api/torrents/abcd", &[("delete_data", "true")])
            .ok()
            .unwrap();
        let req = server.join().unwrap();
        assert!(
            req.starts_with("DELETE /api/torrents/abcd?delete_data=true "),
            "{req}"
        );

        let (node, server) = one_shot("200 OK", r#"{"results":[],"page":0}"#);
        node.get("/api/search", &[("q", "a b&c"), ("page", "0")])
            .ok()
            .unwrap();
        let req = server.join().unwrap();
        assert!(req.starts_with("GET /api/search?q=a"), "{req}");
        assert!(
            !req.lines().next().unwrap().contains("b&c"),
            "query not encoded: {req}"
        );
    }

    #[test]
    fn a_login_goes_with_every_request_as_basic_auth() {
        let (node, server) = one_shot("200 OK", "[]");
        let node = node.with_login("admin", "pw");
        node.get("/api/torrents", &[]).ok().unwrap();
        let req = server.join().unwrap().to_ascii_lowercase();
        assert!(req.contains("authorization: basic ywrtaw46chc="), "{req}");

        let (node, _server) = one_shot("401 Unauthorized", r#"{"error":"log in"}"#);
        let err = node.get("/api/torrents", &[]).err().unwrap();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("--password"), "{err}");
    }

    #[test]
    fn node_errors_exit_1_with_the_message() {
        let (node, server) = one_shot("409 Conflict", r#"{"error":"already added","id":"ab"}"#);
        let err = node
            .post_json("/api/get", &serde_json::json!({"id": "ab"}))
            .err()
            .unwrap();
        server.join().unwrap();
        assert_eq!(err.exit_code(), 1);
        assert_eq!(err.to_string(), "already added");

        let (node, server) = one_shot("500 Internal Server Error", r#"{"error":"disk full"}"#);
        let err = node.get("/api/stats", &[]).err().unwrap();
        server.join().unwrap();
        assert_eq!(err.to_string(), "the node failed (HTTP 500): disk full");
    }
}
