//! Who is logged in: one axum middleware over the whole HTTP application (the native
//! `/api`, the web UI, and whatever else is served beside them, such as `/api/v2/*`
//! and `/transmission/*`). It runs before routing, so a path with no route is refused
//! like any other.
//!
//! A login is needed once a password is set (`shoal passwd`, an Argon2id hash in
//! `config.toml`), or always when the node listens beyond loopback: with no password
//! set it then makes one up at start ([`password::generate`]). A request passes with a
//! live `SID` session cookie ([`session`]) or HTTP Basic credentials (Transmission
//! clients, scripts); failed checks of either are throttled per client address
//! ([`throttle`]). The login endpoints ([`login`]) are answered here, not by routes, so
//! no router merged into the app can shadow them. Exempt: those endpoints, the login
//! page and the static assets.
//!
//! `config.toml` is re-read at each login and at most every [`RELOAD_EVERY`] otherwise,
//! so a password set with `shoal passwd` takes effect on a running node; a changed
//! password or user name ends every session.

mod login;
pub mod password;
mod session;
mod throttle;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use sha1::{Digest, Sha1};
use tokio::sync::Semaphore;

use session::Sessions;
use throttle::Throttle;

/// How often `config.toml` is checked for new credentials while requests come in.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// Password checks (Argon2id, ~20 MiB and tens of ms each) run at most this many at
/// once: bounds CPU and memory, and keeps parallel guesses from outrunning the throttle.
const PARALLEL_CHECKS: usize = 2;
/// Basic credentials remembered as verified, so a client sending them on every
/// request does not pay a password hash each time.
const BASIC_CACHE: usize = 64;

/// How the login layer starts.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// Login user name.
    pub user: String,
    /// The user name was given as a flag: a reloaded config does not change it.
    pub user_from_flag: bool,
    /// Argon2id PHC string of the password (set or generated); `None`: no login needed.
    pub password_hash: Option<String>,
    /// Served over TLS: cookies get `Secure`.
    pub tls: bool,
    /// Data dir whose `config.toml` is re-read for new credentials (`None`: never).
    pub data_dir: Option<PathBuf>,
}

/// The login layer's shared state (cheap to clone).
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<AuthState>,
    tls: bool,
    data_dir: Option<PathBuf>,
    user_from_flag: bool,
    checks: Semaphore,
    /// Random key of the Basic cache's digests, so the cache holds no usable secret.
    basic_key: [u8; 16],
}

struct AuthState {
    user: String,
    hash: Option<String>,
    sessions: Sessions,
    throttle: Throttle,
    basic_ok: HashSet<[u8; 20]>,
    next_reload: Instant,
}

/// The outcome of checking a user name and password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Right (or no password is needed).
    Ok,
    /// Wrong user name or password; counted by the throttle.
    Wrong,
    /// The client's address is banned for this long; nothing was checked.
    Banned(Duration),
}

impl Auth {
    pub fn new(s: AuthSettings) -> Auth {
        let mut basic_key = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut basic_key);
        Auth {
            inner: Arc::new(Inner {
                state: Mutex::new(AuthState {
                    user: s.user,
                    hash: s.password_hash,
                    sessions: Sessions::new(),
                    throttle: Throttle::new(),
                    basic_ok: HashSet::new(),
                    next_reload: Instant::now() + RELOAD_EVERY,
                }),
                tls: s.tls,
                data_dir: s.data_dir,
                user_from_flag: s.user_from_flag,
                checks: Semaphore::new(PARALLEL_CHECKS),
                basic_key,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, AuthState> {
        // The state stays consistent under a panic elsewhere (each change is one step).
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether requests need a session or credentials.
    pub fn required(&self) -> bool {
        self.state().hash.is_some()
    }

    /// The login user name.
    pub fn user(&self) -> String {
        self.state().user.clone()
    }

    fn tls(&self) -> bool {
        self.inner.tls
    }

    /// The live session named by the request's `SID` cookie, counted as used now.
    fn session_of(&self, headers: &HeaderMap) -> Option<String> {
        let token = sid_cookie(headers)?;
        self.state()
            .sessions
            .touch(&token, Instant::now())
            .then_some(token)
    }

    fn start_session(&self) -> String {
        self.state().sessions.create(Instant::now())
    }

    fn end_session(&self, headers: &HeaderMap) {
        if let Some(token) = sid_cookie(headers) {
            self.state().sessions.remove(&token);
        }
    }

    /// Checks `user` and `password` from `ip`, under the throttle.
    pub async fn verify(&self, ip: IpAddr, user: &str, password: &str) -> Verdict {
        self.reload(Instant::now(), true).await;
        // Closed only on drop of the semaphore, which outlives this call.
        let Ok(_permit) = self.inner.checks.acquire().await else {
            return Verdict::Wrong;
        };
        let (hash, expected) = {
            let s = self.state();
            if let Err(b) = s.throttle.check(ip, Instant::now()) {
                return Verdict::Banned(b.retry_after);
            }
            (s.hash.clone(), s.user.clone())
        };
        let Some(hash) = hash else {
            return Verdict::Ok;
        };
        let password = password.to_owned();
        // Hashed even for a wrong user name, so timing does not reveal the name.
        let pass_ok = tokio::task::spawn_blocking(move || password::verify(&hash, &password))
            .await
            .unwrap_or(false);
        let ok = pass_ok && same(user.as_bytes(), expected.as_bytes());
        let mut s = self.state();
        if ok {
            s.throttle.success(ip);
            Verdict::Ok
        } else {
            s.throttle.failure(ip, Instant::now());
            tracing::warn!(%ip, user, "web login refused: wrong user name or password");
            Verdict::Wrong
        }
    }

    /// Checks an `Authorization: Basic` value, remembering right ones.
    async fn verify_basic(&self, ip: IpAddr, value: &str) -> Verdict {
        let Some((user, password)) = basic_credentials(value) else {
            return Verdict::Wrong;
        };
        let key = {
            let s = self.state();
            let mut h = Sha1::new();
            h.update(self.inner.basic_key);
            h.update(s.hash.as_deref().unwrap_or("").as_bytes());
            h.update(s.user.as_bytes());
            h.update([0]);
            h.update(value.as_bytes());
            let key: [u8; 20] = h.finalize().into();
            if s.basic_ok.contains(&key) {
                return Verdict::Ok;
            }
            key
        };
        let v = self.verify(ip, &user, &password).await;
        if v == Verdict::Ok {
            let mut s = self.state();
            if s.basic_ok.len() >= BASIC_CACHE {
                s.basic_ok.clear();
            }
            s.basic_ok.insert(key);
        }
        v
    }

    /// Re-reads the credentials in `config.toml` when due (or `force`d).
    async fn reload(&self, now: Instant, force: bool) {
        let Some(dir) = self.inner.data_dir.clone() else {
            return;
        };
        {
            let mut s = self.state();
            if !force && now < s.next_reload {
                return;
            }
            s.next_reload = now + RELOAD_EVERY;
        }
        match tokio::task::spawn_blocking(move || crate::config::web_credentials(&dir)).await {
            Ok(Ok((user, hash))) => self.apply(user, hash),
            Ok(Err(e)) => tracing::warn!("web login: keeping the current credentials: {e:#}"),
            Err(e) => tracing::warn!("web login: config reload failed: {e}"),
        }
    }

    /// Takes credentials read from `config.toml`. A password removed from the file
    /// stays in force until restart (a node beyond loopback must never become open).
    fn apply(&self, user: Option<String>, hash: Option<String>) {
        let mut s = self.state();
        let mut changed = false;
        if let Some(h) = hash {
            if !password::is_valid_hash(&h) {
                tracing::warn!(
                    "config.toml: web_password is not an Argon2 hash; set it with `shoal passwd`"
                );
            } else if s.hash.as_deref() != Some(h.as_str()) {
                s.hash = Some(h);
                changed = true;
            }
        }
        if !self.inner.user_from_flag {
            let user = user.unwrap_or_else(|| crate::config::DEFAULT_WEB_USER.to_string());
            if user != s.user {
                s.user = user;
                changed = true;
            }
        }
        if changed {
            s.sessions.clear();
            s.basic_ok.clear();
            tracing::info!("web login credentials changed in config.toml; every session ended");
        }
    }
}

/// Compares without an early exit on the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `SID` cookie's value, if the request has one.
fn sid_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == "SID")
        .map(|(_, value)| value.trim().to_string())
}

/// `(user, password)` of an `Authorization: Basic` value.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The client's address (unspecified when the server did not record it).
fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| {
            c.0.ip().to_canonical()
        })
}

/// Paths anyone may fetch: the login page and the static files it loads.
fn is_public(path: &str) -> bool {
    matches!(path, "/login" | "/login.html") || path.starts_with("/assets/")
}

/// The middleware: the login endpoints, then the session or credential check.
pub async fn layer(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    let ip = client_ip(&req);
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::POST, "/api/login") => return login::native_login(&auth, ip, req).await,
        (Method::POST, "/api/logout") => return login::logout(&auth, &req, false),
        (Method::POST, "/api/v2/auth/login") => return login::qbt_login(&auth, ip, req).await,
        (Method::POST | Method::GET, "/api/v2/auth/logout") => {
            return login::logout(&auth, &req, true)
        }
        (Method::GET, "/api/session") => return login::status(&auth, &req),
        _ => {}
    }
    auth.reload(Instant::now(), false).await;
    // A valid stream token (`stream::mark_token`) opens that one file's stream, so that
    // VLC or mpv can play a link copied from the UI.
    let token = req
        .extensions()
        .get::<super::stream::StreamTokenAccess>()
        .is_some();
    if !auth.required() || is_public(&path) || token || auth.session_of(req.headers()).is_some() {
        return next.run(req).await;
    }
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(value) = basic {
        return match auth.verify_basic(ip, &value).await {
            Verdict::Ok => next.run(req).await,
            Verdict::Banned(d) => login::banned(d),
            Verdict::Wrong => login::refused(&path),
        };
    }
    login::refused(&path)
}

#[cfg(test)]
mod tests;
