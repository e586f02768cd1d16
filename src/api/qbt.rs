//! The qBittorrent WebUI API v2 under `/api/v2/`, for the tools that speak it (Sonarr,
//! Radarr, VueTorrent, qBitController, `qbittorrent-api` scripts). A translation layer
//! over the node: no state of its own except the `sync/maindata` snapshots.
//!
//! qBittorrent's conventions: parameters in the query string or a form body
//! (`application/x-www-form-urlencoded`, multipart for `torrents/add`), `hashes`
//! separated by `|` or `all`, plain-text answers (`Ok.`, `Fails.`), 400 for a missing
//! parameter, 404 for an unknown hash or endpoint, 409 for a refused change. Reads
//! answer `GET` and `POST`; changes answer `POST` only (405 otherwise), as qBittorrent
//! 5 does.
//!
//! The answers mirror qBittorrent 5.0 (WebAPI 2.11.2) key for key; `tests/qbt_api.rs`
//! compares their shapes with a real `qbittorrent-nox`. Share limits, queue moves,
//! force start, download order and reannounce (`qbt/control.rs`) map onto the node's
//! seeding rules, queue (`crate::node::queue`), download order and the engine's
//! announce trigger; alternative speed limits and their schedule onto its `alt_*`
//! settings (`qbt/app.rs`).

mod app;
mod control;
mod labels;
mod object;
mod read;
mod speed;
mod sync;
mod write;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequest, Query, Request};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use shoal_proto::InfoHash;

use crate::node::Node;

/// The qBittorrent version reported by `app/version`.
pub const APP_VERSION: &str = "v5.0.0";
/// The WebAPI version of qBittorrent 5.0.0, whose endpoint names (`stop`/`start`) and
/// state names (`stoppedDL`) Shoal answers with; tools gate features on it.
pub const WEBAPI_VERSION: &str = "2.11.2";

/// Largest `torrents/add` body (several `.torrent` files).
const MAX_ADD_BODY: usize = 64 << 20;

/// State of the qBittorrent API: the node and the `sync/maindata` history.
#[derive(Clone)]
pub struct Qbt {
    node: Node,
    sync: Arc<Mutex<sync::History>>,
}

/// The `/api/v2` router.
pub fn router(node: Node) -> Router {
    let state = Qbt {
        node,
        sync: Arc::new(Mutex::new(sync::History::default())),
    };
    // Reads answer both methods, as qBittorrent 4 did and many scripts still expect.
    macro_rules! read {
        ($h:expr) => {
            get($h).post($h)
        };
    }
    Router::new()
        .route("/app/version", read!(app::version))
        .route("/app/webapiVersion", read!(app::webapi_version))
        .route("/app/buildInfo", read!(app::build_info))
        .route("/app/defaultSavePath", read!(app::default_save_path))
        .route("/app/preferences", read!(app::preferences))
        .route("/app/setPreferences", post(app::set_preferences))
        .route("/transfer/info", read!(app::transfer_info))
        .route("/transfer/speedLimitsMode", read!(speed::speed_limits_mode))
        .route("/transfer/downloadLimit", read!(app::download_limit))
        .route("/transfer/uploadLimit", read!(app::upload_limit))
        .route("/transfer/setDownloadLimit", post(app::set_download_limit))
        .route("/transfer/setUploadLimit", post(app::set_upload_limit))
        .route("/torrents/info", read!(read::info))
        .route("/torrents/properties", read!(read::properties))
        .route("/torrents/files", read!(read::files))
        .route("/torrents/trackers", read!(read::trackers))
        .route("/torrents/pieceStates", read!(read::piece_states))
        .route("/torrents/count", read!(read::count))
        .route(
            "/torrents/add",
            post(write::add).layer(axum::extract::DefaultBodyLimit::max(MAX_ADD_BODY)),
        )
        .route("/torrents/stop", post(write::stop))
        .route("/torrents/pause", post(write::stop))
        .route("/torrents/start", post(write::start))
        .route("/torrents/resume", post(write::start))
        .route("/torrents/delete", post(write::delete))
        .route("/torrents/recheck", post(write::recheck))
        .route("/torrents/filePrio", post(write::file_prio))
        .route("/torrents/categories", read!(labels::categories))
        .route("/torrents/createCategory", post(labels::create_category))
        .route("/torrents/editCategory", post(labels::edit_category))
        .route(
            "/torrents/removeCategories",
            post(labels::remove_categories),
        )
        .route("/torrents/setCategory", post(labels::set_category))
        .route("/torrents/tags", read!(labels::tags))
        .route("/torrents/createTags", post(labels::create_tags))
        .route("/torrents/deleteTags", post(labels::delete_tags))
        .route("/torrents/addTags", post(labels::add_tags))
        .route("/torrents/removeTags", post(labels::remove_tags))
        .route("/sync/maindata", read!(sync::maindata))
        .route("/torrents/setShareLimits", post(control::set_share_limits))
        .route("/torrents/topPrio", post(control::top_prio))
        .route("/torrents/bottomPrio", post(control::bottom_prio))
        .route("/torrents/increasePrio", post(control::increase_prio))
        .route("/torrents/decreasePrio", post(control::decrease_prio))
        .route("/torrents/setForceStart", post(control::set_force_start))
        .route(
            "/torrents/toggleSequentialDownload",
            post(control::toggle_sequential),
        )
        .route(
            "/torrents/toggleFirstLastPiecePrio",
            post(control::toggle_first_last),
        )
        .route("/torrents/reannounce", post(control::reannounce))
        .route(
            "/transfer/toggleSpeedLimitsMode",
            post(speed::toggle_speed_limits_mode),
        )
        .route(
            "/transfer/setSpeedLimitsMode",
            post(speed::set_speed_limits_mode),
        )
        .fallback(|| async { QbtError::new(StatusCode::NOT_FOUND, "Not Found") })
        .with_state(state)
}

/// A plain-text error answer, as qBittorrent sends them.
#[derive(Debug)]
pub struct QbtError {
    status: StatusCode,
    text: String,
}

impl QbtError {
    fn new(status: StatusCode, text: impl Into<String>) -> QbtError {
        QbtError {
            status,
            text: text.into(),
        }
    }

    /// 400: a parameter is missing or malformed.
    fn bad(text: impl Into<String>) -> QbtError {
        QbtError::new(StatusCode::BAD_REQUEST, text)
    }

    /// 404: no torrent with that hash.
    fn not_found() -> QbtError {
        QbtError::new(StatusCode::NOT_FOUND, "Not Found")
    }

    /// 409: the change is refused.
    fn conflict(text: impl Into<String>) -> QbtError {
        QbtError::new(StatusCode::CONFLICT, text)
    }

    fn internal(e: impl std::fmt::Display) -> QbtError {
        QbtError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for QbtError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
            self.text,
        )
            .into_response()
    }
}

type QbtResult<T> = Result<T, QbtError>;

/// A JSON answer.
fn json(v: serde_json::Value) -> Response {
    axum::Json(v).into_response()
}

/// The keys of several JSON objects in one (large `json!` literals hit the macro
/// recursion limit, so big objects are written in parts).
fn merge<const N: usize>(
    parts: [serde_json::Value; N],
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for p in parts {
        if let serde_json::Value::Object(m) = p {
            out.extend(m);
        }
    }
    out
}

/// A plain-text answer.
fn text(s: impl Into<String>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        s.into(),
    )
        .into_response()
}

/// The request's parameters: the query string, then a form body over it.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

#[axum::async_trait]
impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = QbtError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut map: HashMap<String, String> = Query::try_from_uri(req.uri())
            .map(|Query(q)| q)
            .unwrap_or_default();
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if req.method() == Method::POST && is_form {
            let Form(body) = Form::<HashMap<String, String>>::from_request(req, state)
                .await
                .map_err(|e| QbtError::bad(e.body_text()))?;
            map.extend(body);
        }
        Ok(Params(map))
    }
}

impl Params {
    /// A parameter's value.
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A parameter that must be there (400 otherwise).
    fn need(&self, key: &str) -> QbtResult<&str> {
        self.get(key)
            .ok_or_else(|| QbtError::bad(format!("Missing required parameter: {key}")))
    }

    /// A boolean parameter (`true`/`false`, any case); `None` when absent or other.
    fn flag(&self, key: &str) -> Option<bool> {
        parse_bool(self.get(key)?)
    }

    /// An integer parameter; `None` when absent or not a number.
    fn int(&self, key: &str) -> Option<i64> {
        self.get(key)?.trim().parse().ok()
    }

    /// The one torrent `hash` names (400 when missing, 404 when unknown).
    fn torrent(&self, node: &Node) -> QbtResult<InfoHash> {
        let h = self.need("hash")?;
        InfoHash::from_hex(&h.to_ascii_lowercase())
            .filter(|h| node.summary(*h).is_some())
            .ok_or_else(QbtError::not_found)
    }

    /// The torrents `hashes` names (400 when missing): `all`, or hashes separated by `|`;
    /// unknown ones are left out, as qBittorrent does.
    fn hashes(&self, node: &Node) -> QbtResult<Vec<InfoHash>> {
        let known: Vec<InfoHash> = node
            .summaries()
            .iter()
            .filter_map(|s| InfoHash::from_hex(&s.id))
            .collect();
        Ok(select(self.need("hashes")?, &known))
    }
}

/// qBittorrent's boolean parsing: `true`/`false` in any case.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The torrents of `known` a `hashes` parameter names, in `known`'s order for `all`,
/// otherwise in the parameter's order without repeats.
fn select(param: &str, known: &[InfoHash]) -> Vec<InfoHash> {
    if param.trim().eq_ignore_ascii_case("all") {
        return known.to_vec();
    }
    let mut out: Vec<InfoHash> = Vec::new();
    for h in param.split('|') {
        let Some(h) = InfoHash::from_hex(&h.trim().to_ascii_lowercase()) else {
            continue;
        };
        if known.contains(&h) && !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> InfoHash {
        InfoHash::from_hex(&format!("{b:02x}").repeat(20)).unwrap()
    }

    #[test]
    fn hash_lists() {
        let known = [h(1), h(2), h(3)];
        assert_eq!(select("all", &known), known.to_vec());
        assert_eq!(select("ALL", &known), known.to_vec());
        let p = format!("{}|{}|{}", h(3).to_hex(), h(9).to_hex(), h(1).to_hex());
        assert_eq!(select(&p, &known), vec![h(3), h(1)]);
        let upper = h(2).to_hex().to_ascii_uppercase();
        assert_eq!(select(&format!("{upper}|{upper}"), &known), vec![h(2)]);
        assert!(select("", &known).is_empty());
        assert!(select("xyz|12", &known).is_empty());
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("False"), Some(false));
        assert_eq!(parse_bool("1"), None);
    }
}
