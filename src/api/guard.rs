//! Who may drive the node over HTTP: a middleware on every request (API and UI) that
//! stops other web sites from using the node through the user's browser.
//!
//! - `Host` must name the node (against DNS rebinding: a name the attacker controls
//!   that resolves to the node): always a loopback name (`localhost`, `127.0.0.1`,
//!   `[::1]`, any port, so SSH tunnels work); the IP literal of the address the node was
//!   bound to on purpose (`--web`); and each `--web-host` name (`*.example.org` matches
//!   its subdomains). Bound to `0.0.0.0`/`[::]` with no `--web-host`, any IP literal
//!   passes (the node cannot know every address it is reached by) but no other name.
//!   Anything else is 403. (qBittorrent's "Host header validation" likewise takes a
//!   list of server domains and the bound addresses, `*` turning it off.)
//! - `POST`/`PUT`/`PATCH`/`DELETE` with an `Origin` must come from the node's own
//!   origin, `http://` (`https://` under TLS) + the request's `Host`; anything else
//!   (another site, `null`) is 403. Requests without `Origin` (the CLI, curl) pass:
//!   browsers send it on every cross-origin request that can change state.
//!
//! Content types are checked where bodies are read (415): JSON bodies need
//! `application/json`, raw ones `application/x-bittorrent` or
//! `application/octet-stream`, neither of which a cross-site form can send.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The addresses the node answers to.
#[derive(Debug, Clone)]
pub struct Access {
    /// What `Host` may name besides the loopback names.
    extra: Extra,
    /// `--web-host` names, lower case (`*.suffix` for subdomains).
    names: Vec<String>,
    /// `https` under TLS, else `http`.
    scheme: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
enum Extra {
    /// Loopback only (the default bind, or an explicit loopback one).
    None,
    /// This IP (bound to it explicitly).
    Ip(IpAddr),
    /// Any IP literal (bound to `0.0.0.0` or `[::]` explicitly, no `--web-host`).
    AnyIp,
}

impl Access {
    /// For a server bound to `bound`; `explicit` when the user chose the address;
    /// `names` from `--web-host`; `tls` when served over HTTPS.
    pub fn new(bound: SocketAddr, explicit: bool, names: &[String], tls: bool) -> Access {
        let ip = bound.ip();
        let extra = if !explicit || ip.is_loopback() {
            Extra::None
        } else if ip.is_unspecified() {
            if names.is_empty() {
                Extra::AnyIp
            } else {
                Extra::None
            }
        } else {
            Extra::Ip(ip)
        };
        Access {
            extra,
            names: names
                .iter()
                .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
            scheme: if tls { "https" } else { "http" },
        }
    }

    /// Whether a `Host` value names this node.
    fn host_allowed(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else {
            return false;
        };
        if name == "localhost" || self.names.iter().any(|n| name_matches(n, &name)) {
            return true;
        }
        let Ok(ip) = name.trim_start_matches('[').trim_end_matches(']').parse() else {
            return false;
        };
        let ip: IpAddr = ip;
        ip.is_loopback()
            || match self.extra {
                Extra::None => false,
                Extra::Ip(own) => ip == own,
                Extra::AnyIp => true,
            }
    }

    /// `Ok` when the request may go on, else the 403 to send.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !self.host_allowed(host) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "Host {host:?} is not this node's address; use http://127.0.0.1:PORT/, \
                     the address given with --web, or allow the name with --web-host"
                ),
            ));
        }
        let changes = matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        if let (true, Some(origin)) = (changes, headers.get(header::ORIGIN)) {
            let origin = origin.to_str().unwrap_or("");
            let own = format!("{}://{host}", self.scheme);
            if !origin.eq_ignore_ascii_case(&own) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "cross-site request refused: Origin {origin:?} is not {own:?}; \
                         use the node's own web UI or a client that sends no Origin"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether the allowed `pattern` (`name` or `*.suffix`) covers `name`.
fn name_matches(pattern: &str, name: &str) -> bool {
    let name = name.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .strip_suffix(suffix)
            .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        None => name == pattern,
    }
}

/// The host part of a `Host` value (`name`, `name:port`, `[v6]`, `[v6]:port`),
/// lower-cased; `None` when malformed.
fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        let (name, rest) = host.split_at(end + 1);
        (
            name,
            rest.strip_prefix(':').or(rest.is_empty().then_some("")),
        )
    } else {
        match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, Some("")),
        }
    };
    let port = port?;
    if name.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

/// The middleware: checks [`Access`] before the handler runs.
pub async fn guard(State(access): State<Access>, req: Request, next: Next) -> Response {
    match access.check(req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    fn status(a: &Access, m: Method, host: &str, origin: Option<&str>) -> u16 {
        match a.check(&m, &headers(host, origin)) {
            Ok(()) => 200,
            Err(e) => e.status.as_u16(),
        }
    }

    #[test]
    fn loopback_node_takes_loopback_hosts_only() {
        let a = Access::new("127.0.0.1:8080".parse().unwrap(), false, &[], false);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:9000",
            "127.0.0.2:1",
        ] {
            assert_eq!(status(&a, Method::GET, ok, None), 200, "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "192.168.1.5:8080",
            "",
            "127.0.0.1:80:80",
            "[::1",
            "127.0.0.1:x",
            "localhost.evil.example",
        ] {
            assert_eq!(status(&a, Method::GET, bad, None), 403, "{bad:?}");
        }
    }

    #[test]
    fn origin_must_be_the_hosts_own_for_state_changes() {
        let a = Access::new("127.0.0.1:8080".parse().unwrap(), false, &[], false);
        let h = "127.0.0.1:8080";
        assert_eq!(status(&a, Method::POST, h, None), 200);
        assert_eq!(
            status(&a, Method::POST, h, Some("http://127.0.0.1:8080")),
            200
        );
        for bad in [
            "http://evil.example",
            "null",
            "http://127.0.0.1:8081",
            "https://127.0.0.1:8080",
            "http://localhost:8080",
        ] {
            for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                assert_eq!(status(&a, m.clone(), h, Some(bad)), 403, "{m} {bad}");
            }
        }
        // Reading cross-site is left to the browser's same-origin policy.
        assert_eq!(status(&a, Method::GET, h, Some("http://evil.example")), 200);
    }

    #[test]
    fn explicit_non_loopback_bind_adds_its_address() {
        let a = Access::new("192.168.1.5:8080".parse().unwrap(), true, &[], false);
        assert_eq!(status(&a, Method::GET, "192.168.1.5:8080", None), 200);
        assert_eq!(status(&a, Method::GET, "192.168.1.6:8080", None), 403);
        assert_eq!(status(&a, Method::GET, "localhost:8080", None), 200);
        let any = Access::new("0.0.0.0:8080".parse().unwrap(), true, &[], false);
        assert_eq!(status(&any, Method::GET, "10.0.0.7:8080", None), 200);
        assert_eq!(status(&any, Method::GET, "[fe80::1]:8080", None), 200);
        assert_eq!(status(&any, Method::GET, "rebind.example:8080", None), 403);
        // Not chosen by the user: loopback only.
        let default = Access::new("0.0.0.0:8080".parse().unwrap(), false, &[], false);
        assert_eq!(status(&default, Method::GET, "10.0.0.7:8080", None), 403);
    }

    #[test]
    fn web_host_names_are_allowed_and_replace_any_ip_on_a_wildcard_bind() {
        let names = vec!["Shoal.Example.org".to_string(), "*.lan".to_string()];
        let a = Access::new("0.0.0.0:8080".parse().unwrap(), true, &names, false);
        for ok in [
            "shoal.example.org:8080",
            "SHOAL.EXAMPLE.ORG",
            "nas.lan",
            "a.b.lan:1",
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
        ] {
            assert_eq!(status(&a, Method::GET, ok, None), 200, "{ok}");
        }
        for bad in [
            "example.org",
            "evil.shoal.example.org",
            "lan",
            ".lan",
            "evil-lan",
            "10.0.0.7:8080",
            "rebind.example:8080",
        ] {
            assert_eq!(status(&a, Method::GET, bad, None), 403, "{bad}");
        }
        // On a loopback bind the names are allowed too, IP literals still not.
        let l = Access::new("127.0.0.1:8080".parse().unwrap(), true, &names, false);
        assert_eq!(status(&l, Method::GET, "nas.lan", None), 200);
        assert_eq!(status(&l, Method::GET, "10.0.0.7", None), 403);
    }

    #[test]
    fn under_tls_the_own_origin_is_https() {
        let a = Access::new("127.0.0.1:8443".parse().unwrap(), true, &[], true);
        let h = "127.0.0.1:8443";
        assert_eq!(
            status(&a, Method::POST, h, Some("https://127.0.0.1:8443")),
            200
        );
        assert_eq!(
            status(&a, Method::POST, h, Some("http://127.0.0.1:8443")),
            403
        );
    }
}
