//! Transmission's RPC at `POST /transmission/rpc`, so `transmission-remote`, Sonarr,
//! Radarr, Flood and the `transmission-rpc` Python package can drive the node.
//!
//! The classic protocol of Transmission 4.0 (rpc-version 17, the last before JSON-RPC
//! 2.0): a request `{"method", "arguments", "tag"}` is answered with HTTP 200 and
//! `{"result": "success" | error string, "arguments", "tag"}`. Anti-CSRF: a request
//! without this node's `X-Transmission-Session-Id` gets 409 carrying the id (the
//! client retries with it), so a cross-site form can never act. `Host` and `Origin`
//! are checked as for `/api` ([`super::guard`]).
//!
//! Torrents get Transmission's integer ids from [`ids::IdMap`], assigned at first
//! sight and stable while the node runs; `ids` may also name them by info-hash.
//! The methods live in `transmission/`: `session.rs` (session-get/-set/-stats,
//! free-space, port-test), `view.rs` + `fields.rs` (torrent-get), `actions.rs`
//! (torrent-add/-start/-stop/-verify/-remove/-set, queue moves), `rules.rs` +
//! `modes.rs` (seeding limits, queues, stalled and alternative speeds over the
//! node's automation). What the node cannot do (per-torrent speed limits,
//! relocation) is answered with an error result naming why, never a pretend success.

mod actions;
mod fields;
mod ids;
mod modes;
mod rules;
mod session;
mod speed;
mod trackers;
mod view;

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::node::Node;
use ids::IdMap;

/// The header carrying the anti-CSRF session id.
const SESSION_HEADER: &str = "X-Transmission-Session-Id";

/// Largest request body: a base64 `.torrent` (32 MiB) with room for the JSON around it.
const MAX_BODY: usize = 48 << 20;

/// Arguments of a request or an answer.
pub type Args = Map<String, Value>;

/// A method's outcome: its answer's arguments, or the `result` error string.
pub type MethodResult = Result<Args, String>;

/// What the RPC keeps while the node runs.
pub struct Rpc {
    node: Node,
    /// The session id clients must echo in [`SESSION_HEADER`].
    session_id: String,
    ids: Mutex<IdMap>,
    /// Speed limits (KB/s: down, up) set while their `-enabled` is off: Transmission
    /// keeps them for later, the node has one number per direction (0 = off).
    saved_limits: Mutex<(u64, u64)>,
    /// Seeding and queue values set while their `-enabled` is off (see `rules.rs`).
    saved_auto: Mutex<rules::Saved>,
    /// The node's byte totals (down, up) when the RPC started: `current-stats`.
    totals_at_start: (u64, u64),
}

impl Rpc {
    fn ids(&self) -> MutexGuard<'_, IdMap> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `/transmission/rpc` route (the Host/Origin guard and the login layer wrap the whole app).
pub fn router(node: Node) -> Router {
    let mut id = [0u8; 24];
    rand::thread_rng().fill(&mut id[..]);
    let rpc = Arc::new(Rpc {
        session_id: id.iter().map(|b| format!("{b:02x}")).collect(),
        ids: Mutex::new(IdMap::default()),
        saved_limits: Mutex::new((0, 0)),
        saved_auto: Mutex::new(rules::Saved::default()),
        totals_at_start: node.totals(),
        node,
    });
    Router::new()
        .route("/transmission/rpc", post(rpc_call).get(rpc_call))
        // transmission-remote 3.00 posts to the path with a trailing slash.
        .route("/transmission/rpc/", post(rpc_call).get(rpc_call))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(rpc)
}

/// One RPC request: the session-id exchange, then the method.
async fn rpc_call(State(rpc): State<Arc<Rpc>>, headers: HeaderMap, body: Bytes) -> Response {
    let given = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    if given != Some(rpc.session_id.as_str()) {
        return conflict(&rpc.session_id);
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let tag = request.get("tag").cloned();
    let args = match request.get("arguments") {
        Some(Value::Object(a)) => a.clone(),
        _ => Args::new(),
    };
    let outcome = match request.get("method").and_then(Value::as_str) {
        Some(method) => dispatch(&rpc, method, &args).await,
        None => Err("no method name".to_string()),
    };
    let mut answer = Map::new();
    match outcome {
        Ok(a) => {
            answer.insert("arguments".into(), Value::Object(a));
            answer.insert("result".into(), json!("success"));
        }
        Err(e) => {
            // port-test's error still carries its (unknown, so false) answer.
            let args = if request.get("method") == Some(&json!("port-test")) {
                json!({"port-is-open": false})
            } else {
                json!({})
            };
            answer.insert("arguments".into(), args);
            answer.insert("result".into(), json!(e));
        }
    }
    if let Some(t) = tag {
        answer.insert("tag".into(), t);
    }
    let mut r = Json(Value::Object(answer)).into_response();
    if let Ok(v) = HeaderValue::from_str(&rpc.session_id) {
        r.headers_mut().insert(SESSION_HEADER, v);
    }
    r
}

/// 409 with the session id, as Transmission answers a request without it.
fn conflict(session_id: &str) -> Response {
    let body = format!(
        "<h1>409: Conflict</h1><p>Your request had an invalid session-id header.</p>\
         <p>To fix this, follow these steps:<ol><li> When reading a response, get its \
         X-Transmission-Session-Id header and remember it<li> Add the updated header to \
         your outgoing requests<li> When you get this 409 error message, resend your \
         request with the updated header</ol></p><p>\
         <code>X-Transmission-Session-Id: {session_id}</code></p>"
    );
    let mut r = (StatusCode::CONFLICT, body).into_response();
    if let Ok(v) = HeaderValue::from_str(session_id) {
        r.headers_mut().insert(SESSION_HEADER, v);
    }
    r
}

/// Runs `method`.
async fn dispatch(rpc: &Rpc, method: &str, args: &Args) -> MethodResult {
    match method {
        "session-get" => session::get(rpc, args).await,
        "session-set" => session::set(rpc, args).await,
        "session-stats" => session::stats(rpc).await,
        "free-space" => session::free_space(args).await,
        "port-test" => session::port_test(rpc).await,
        "torrent-get" => fields::torrent_get(rpc, args),
        "torrent-add" => actions::add(rpc, args).await,
        "torrent-start" | "torrent-start-now" => actions::start(rpc, args).await,
        "torrent-stop" => actions::stop(rpc, args).await,
        "torrent-verify" => actions::verify(rpc, args).await,
        "torrent-remove" => actions::remove(rpc, args).await,
        "torrent-set" => actions::set(rpc, args).await,
        "torrent-reannounce" => actions::reannounce(rpc, args),
        "queue-move-top" | "queue-move-up" | "queue-move-down" | "queue-move-bottom" => {
            actions::queue_move(rpc, method, args).await
        }
        "torrent-set-location" | "torrent-rename-path" => Err(format!(
            "{method} is not supported by this node: it cannot move or rename data"
        )),
        "blocklist-update" => {
            Err("blocklist-update is not supported: Shoal has no blocklist".into())
        }
        "session-close" => Err(
            "session-close is not supported over RPC: stop the node with `shoal stop` or a signal"
                .into(),
        ),
        "group-get" | "group-set" => Err(format!(
            "{method} is not supported: Shoal has no bandwidth groups"
        )),
        _ => Err("method name not recognized".into()),
    }
}

/// `args[key]` as an integer, when present and one.
fn int_arg(args: &Args, key: &str) -> Option<i64> {
    args.get(key).and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
    })
}

/// `args[key]` as a bool; Transmission also takes 0/1.
fn bool_arg(args: &Args, key: &str) -> Option<bool> {
    args.get(key)
        .and_then(|v| v.as_bool().or_else(|| v.as_i64().map(|n| n != 0)))
}
