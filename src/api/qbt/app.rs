//! `app/*` and `transfer/*`: versions, default save path, preferences, global rates
//! and limits.
//!
//! Preferences map onto Shoal's settings (`save_path` ↔ `download_dir`, `dl_limit` and
//! `up_limit` ↔ `max_down`/`max_up` in bytes per second; seeding limits, queue and
//! alternative speed limits in `qbt/speed.rs`); `setPreferences` writes them through the same
//! path as `PATCH /api/settings`. `listen_port`, `dht`, `pex`, `lsd` and `encryption`
//! are reported but fixed for the node's run (flags); changing them is ignored with a
//! warning in the log, as qBittorrent ignores preferences it does not know.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Map, Value};
use shoal_engine::EncryptionPolicy;

use super::{json, text, Params, Qbt, QbtError, QbtResult};
use crate::config::{Settings, SettingsPatch};

pub async fn version() -> Response {
    text(super::APP_VERSION)
}

pub async fn webapi_version() -> Response {
    text(super::WEBAPI_VERSION)
}

/// Library versions; Shoal's own stack in qBittorrent's keys (`libtorrent` names the
/// BitTorrent engine, here Shoal's).
pub async fn build_info() -> Response {
    json(json!({
        "qt": "", "libtorrent": format!("shoal {}", env!("CARGO_PKG_VERSION")),
        "boost": "", "openssl": "", "zlib": "",
        "bitness": usize::BITS,
        "platform": std::env::consts::OS,
    }))
}

pub async fn default_save_path(State(q): State<Qbt>) -> Response {
    text(q.node.settings().download_dir.display().to_string())
}

/// qBittorrent's encryption mode: 0 prefer, 1 force, 2 disable.
fn encryption_mode(p: EncryptionPolicy) -> u8 {
    match p {
        EncryptionPolicy::Off => 2,
        EncryptionPolicy::Require => 1,
        _ => 0,
    }
}

pub async fn preferences(State(q): State<Qbt>) -> Response {
    let node = &q.node;
    let s = node.settings();
    let c = node.config();
    let web = node.web_url();
    let web_port = web
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    let mut out = super::merge([
        json!({
            "save_path": s.download_dir.display().to_string(),
            "temp_path_enabled": false, "temp_path": "",
            "dl_limit": s.max_down, "up_limit": s.max_up,
        }),
        json!({
            "listen_port": node.session().listen_port(), "random_port": false, "upnp": false,
            "dht": c.dht.is_some(), "pex": c.pex, "lsd": c.lsd.is_some(),
            "encryption": encryption_mode(c.encryption), "anonymous_mode": false,
            "bittorrent_protocol": if c.utp { 0 } else { 1 },
            "start_paused_enabled": false, "add_stopped_enabled": false,
            "auto_tmm_enabled": false, "torrent_content_layout": "Original",
            "torrent_stop_condition": "None", "preallocate_all": false,
            "incomplete_files_ext": false, "create_subfolder_enabled": true,
            "add_trackers_enabled": !s.trackers.is_empty(), "add_trackers": s.trackers.join("\n"),
        }),
        json!({
            "web_ui_address": web.trim_start_matches("http://").rsplit_once(':')
                .map_or(String::new(), |(a, _)| a.to_string()),
            "web_ui_port": web_port, "use_https": false,
            "locale": "en", "scan_dirs": {}, "export_dir": "", "export_dir_fin": "",
            "mail_notification_enabled": false, "autorun_enabled": false,
            "rss_processing_enabled": false, "rss_auto_downloading_enabled": false,
            "dyndns_enabled": false, "proxy_type": 0, "ip_filter_enabled": false,
            "web_ui_upnp": false, "bypass_local_auth": false,
        }),
    ]);
    out.extend(super::speed::preferences(&s));
    json(Value::Object(out))
}

/// `setPreferences`: `json` is an object of the preferences to change.
pub async fn set_preferences(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let raw = p.need("json")?;
    let prefs: Map<String, Value> = serde_json::from_str(raw)
        .map_err(|e| QbtError::bad(format!("json is not a JSON object: {e}")))?;
    let patch = patch_of(&prefs, &q.node.settings())?;
    for key in [
        "listen_port",
        "dht",
        "pex",
        "lsd",
        "encryption",
        "random_port",
    ] {
        if prefs.contains_key(key) {
            tracing::warn!(
                "qBittorrent API: preference {key} is fixed for the node's run (set it with \
                 flags or config.toml); ignored"
            );
        }
    }
    apply(&q, patch).await?;
    Ok(text(""))
}

/// The settings change a preferences object asks for; `cur`: the settings now.
fn patch_of(prefs: &Map<String, Value>, cur: &Settings) -> QbtResult<SettingsPatch> {
    let num = |k: &str| -> QbtResult<Option<i64>> {
        match prefs.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| QbtError::bad(format!("{k} must be a number"))),
        }
    };
    let mut patch = SettingsPatch::default();
    if let Some(v) = prefs.get("save_path") {
        let path = v
            .as_str()
            .ok_or_else(|| QbtError::bad("save_path must be a string"))?;
        patch.download_dir = Some(path.into());
    }
    // qBittorrent's "no limit" is 0 or -1.
    patch.max_down = num("dl_limit")?.map(|v| v.max(0) as u64);
    patch.max_up = num("up_limit")?.map(|v| v.max(0) as u64);
    super::speed::patch(prefs, cur, &mut patch)?;
    if let Some(v) = prefs.get("add_trackers") {
        let list = v
            .as_str()
            .ok_or_else(|| QbtError::bad("add_trackers must be a string"))?;
        patch.trackers = Some(
            list.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        );
    }
    Ok(patch)
}

/// Applies a settings change as `PATCH /api/settings` does.
pub(super) async fn apply(q: &Qbt, patch: SettingsPatch) -> QbtResult<()> {
    super::super::info::patch_settings(State(q.node.clone()), Ok(Json(patch)))
        .await
        .map(|_| ())
        .map_err(|e| {
            let r = axum::response::IntoResponse::into_response(e);
            QbtError::new(r.status(), "Fails.")
        })
}

/// `transfer/info` (also the base of `sync/maindata`'s `server_state`).
pub async fn transfer_state(q: &Qbt) -> Map<String, Value> {
    let node = &q.node;
    let s = node.settings();
    let objects = super::object::objects(node);
    let sum = |k: &str| -> u64 { objects.iter().filter_map(|(_, o)| o[k].as_u64()).sum() };
    let dht_nodes = match node.session().dht() {
        Some(d) => {
            let st = d.stats().await;
            st.good + st.questionable
        }
        None => 0,
    };
    let incoming = {
        let map = node.torrents();
        map.values()
            .filter_map(|e| e.run.as_ref())
            .any(|r| r.handle.peers().iter().any(|p| p.incoming))
    };
    let v = json!({
        "dl_info_speed": sum("dlspeed"), "dl_info_data": sum("downloaded_session"),
        "up_info_speed": sum("upspeed"), "up_info_data": sum("uploaded_session"),
        "dl_rate_limit": s.max_down, "up_rate_limit": s.max_up,
        "dht_nodes": dht_nodes,
        // qBittorrent's rule: "connected" once a peer reached us, else "firewalled".
        "connection_status": if incoming { "connected" } else { "firewalled" },
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub async fn transfer_info(State(q): State<Qbt>) -> Response {
    json(Value::Object(transfer_state(&q).await))
}

pub async fn download_limit(State(q): State<Qbt>) -> Response {
    text(q.node.settings().max_down.to_string())
}

pub async fn upload_limit(State(q): State<Qbt>) -> Response {
    text(q.node.settings().max_up.to_string())
}

/// The `limit` parameter (bytes per second; 0 or less: none).
fn limit(p: &Params) -> QbtResult<u64> {
    let v = p
        .int("limit")
        .ok_or_else(|| QbtError::bad("limit must be a number"))?;
    Ok(v.max(0) as u64)
}

pub async fn set_download_limit(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let patch = SettingsPatch {
        max_down: Some(limit(&p)?),
        ..SettingsPatch::default()
    };
    apply(&q, patch).await?;
    Ok(text(""))
}

pub async fn set_upload_limit(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let patch = SettingsPatch {
        max_up: Some(limit(&p)?),
        ..SettingsPatch::default()
    };
    apply(&q, patch).await?;
    Ok(text(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn preferences_map_onto_settings() {
        let cur = Settings {
            max_down: 0,
            max_up: 0,
            auto_share: true,
            max_active: 5,
            trackers: Vec::new(),
            download_dir: "/d".into(),
            auto: Default::default(),
        };
        let p = patch_of(
            &prefs(json!({"save_path": "/srv", "dl_limit": -1, "up_limit": 2048})),
            &cur,
        )
        .unwrap();
        assert_eq!(
            p.download_dir.as_deref(),
            Some(std::path::Path::new("/srv"))
        );
        assert_eq!((p.max_down, p.max_up), (Some(0), Some(2048)));
        assert_eq!(p.max_active, None);
        let n = patch_of(&prefs(json!({"max_active_downloads": 7})), &cur).unwrap();
        assert_eq!(n.max_active, Some(7));
        assert!(patch_of(&prefs(json!({"dl_limit": "x"})), &cur).is_err());
    }
}
