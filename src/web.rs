//! The web UI: plain HTML, CSS and JavaScript modules from `web/`, embedded in the binary
//! at build time (`include_bytes!`, so cargo alone rebuilds it) and served by [`router`].
//!
//! Caching: `index.html` is served with `Cache-Control: no-cache` and an ETag, so a browser
//! always revalidates it. It refers to every other file under `/assets/<version>/…`, where
//! `<version>` is a hash of all embedded files; those URLs change whenever any asset does,
//! so they are served as immutable for a year. A request for another version (a page
//! loaded before an upgrade) still gets the current file, but uncached.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file under `web/`.
struct Asset {
    path: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $mime:expr) => {
        Asset {
            path: $path,
            mime: $mime,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the UI loads, besides `index.html`. A test checks that this list and the
/// files under `web/` agree.
const ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("js/api.js", JS),
    asset!("js/app.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/format.js", JS),
    asset!("js/login.js", JS),
    asset!("js/piecemap.js", JS),
    asset!("js/table.js", JS),
    asset!("js/ui.js", JS),
    asset!("js/views/dashboard.js", JS),
    asset!("js/views/download.js", JS),
    asset!("js/views/labels.js", JS),
    asset!("js/views/player.js", JS),
    asset!("js/views/settings.js", JS),
    asset!("js/views/settings_auto.js", JS),
    asset!("js/views/share.js", JS),
    asset!("js/views/stats.js", JS),
];

const INDEX_TEMPLATE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/index.html"));

/// The login page (`/login`), shown when the node asks for a login (`api::auth`).
const LOGIN_TEMPLATE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/login.html"));

/// Placeholder in `index.html` replaced by the assets' version.
const VERSION_MARK: &str = "{{VERSION}}";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Scripts, styles and requests stay on the node's own origin.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// The index page with its version filled in, computed once.
struct Built {
    version: String,
    index: String,
    index_etag: String,
    login: String,
    login_etag: String,
    /// ETags of `ASSETS`, in order.
    etags: Vec<String>,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut h = Fnv::new();
        for a in ASSETS {
            h.write(a.path.as_bytes());
            h.write(&[0]);
            h.write(a.body);
        }
        let version = format!("{:012x}", h.finish() & 0xffff_ffff_ffff);
        let index = INDEX_TEMPLATE.replace(VERSION_MARK, &version);
        let mut h = Fnv::new();
        h.write(index.as_bytes());
        let index_etag = format!("\"{:016x}\"", h.finish());
        let login = LOGIN_TEMPLATE.replace(VERSION_MARK, &version);
        let mut h = Fnv::new();
        h.write(login.as_bytes());
        let login_etag = format!("\"{:016x}\"", h.finish());
        let etags = ASSETS
            .iter()
            .map(|a| {
                let mut h = Fnv::new();
                h.write(a.body);
                format!("\"{:016x}\"", h.finish())
            })
            .collect();
        Built {
            version,
            index,
            index_etag,
            login,
            login_etag,
            etags,
        }
    })
}

/// FNV-1a, 64 bit: a stable content hash for cache keys (not for security).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Routes for the UI: `/`, `/index.html`, `/login` and `/assets/<version>/<path>`.
/// Stateless, so it merges into the API router as it is.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/login", get(login))
        .route("/login.html", get(login))
        .route("/assets/:version/*path", get(asset))
}

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        })
}

async fn index(headers: HeaderMap) -> Response {
    let b = built();
    page(&headers, &b.index, &b.index_etag)
}

async fn login(headers: HeaderMap) -> Response {
    let b = built();
    page(&headers, &b.login, &b.login_etag)
}

/// An HTML page: revalidated every time, with the UI's security headers.
fn page(headers: &HeaderMap, body: &str, etag_text: &str) -> Response {
    let etag = HeaderValue::from_str(etag_text).unwrap_or(HeaderValue::from_static("\"\""));
    if not_modified(headers, etag_text) {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, etag),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body.to_owned(),
    )
        .into_response()
}

async fn asset(Path((version, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.path == path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-cache")],
            "no such asset",
        )
            .into_response();
    };
    let a = &ASSETS[i];
    let b = built();
    let cache = if version == b.version {
        IMMUTABLE
    } else {
        "no-cache"
    };
    let etag = HeaderValue::from_str(&b.etags[i]).unwrap_or(HeaderValue::from_static("\"\""));
    if not_modified(&headers, &b.etags[i]) {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            ],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(a.mime)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::ETAG, etag),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        a.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn web_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web")
    }

    fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }

    #[test]
    fn every_file_under_web_is_embedded() {
        let mut files = Vec::new();
        walk(&web_dir(), &web_dir(), &mut files);
        files.retain(|f| f != "index.html" && f != "login.html");
        files.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        listed.sort();
        assert_eq!(files, listed, "web/ and ASSETS in src/web.rs disagree");
        assert!(ASSETS
            .iter()
            .filter(|a| a.path.ends_with(".js"))
            .all(|a| a.mime == JS));
    }

    #[test]
    fn index_refers_only_to_versioned_assets_that_exist() {
        let b = built();
        assert!(!b.index.contains(VERSION_MARK));
        let prefix = format!("/assets/{}/", b.version);
        let mut refs = 0;
        for part in b.index.split(&prefix).skip(1) {
            let path = &part[..part.find('"').unwrap()];
            assert!(ASSETS.iter().any(|a| a.path == path), "{path} not embedded");
            refs += 1;
        }
        assert_eq!(refs, 2, "index.html loads the stylesheet and app.js");
        assert!(!b.login.contains(VERSION_MARK));
        assert!(b.login.contains(&format!("{prefix}js/login.js")));
        assert!(b.login.contains(&format!("{prefix}app.css")));
    }

    #[test]
    fn js_imports_resolve_to_embedded_modules() {
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(a.body).unwrap();
            let dir = std::path::Path::new(a.path).parent().unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let spec = line.rsplit(" from ").next().unwrap();
                let spec = spec.trim_matches(|c| c == '\'' || c == ';' || c == '"');
                let mut p = dir.to_path_buf();
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            p.pop();
                        }
                        s => p.push(s),
                    }
                }
                let p = p.to_string_lossy().into_owned();
                assert!(
                    ASSETS.iter().any(|x| x.path == p),
                    "{} imports {spec}, which is not embedded",
                    a.path
                );
            }
        }
    }

    async fn body(r: Response) -> Vec<u8> {
        axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn index_is_revalidated_and_assets_are_immutable() {
        let r = index(HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        let etag = r.headers()[header::ETAG].clone();
        assert!(String::from_utf8(body(r).await)
            .unwrap()
            .contains("<title>Shoal</title>"));

        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(index(h).await.status(), StatusCode::NOT_MODIFIED);

        let v = built().version.clone();
        let r = asset(Path((v, "js/app.js".into())), HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], IMMUTABLE);
        assert_eq!(r.headers()[header::CONTENT_TYPE], JS);

        let r = asset(Path(("old".into(), "app.css".into())), HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");

        let r = asset(Path(("x".into(), "../Cargo.toml".into())), HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
