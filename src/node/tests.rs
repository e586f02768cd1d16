//! The node's shutdown waits for every task it owns, the torrents' monitors included,
//! and a monitor's report of completion reaches the node.

use std::path::Path;
use std::time::Duration;

use shoal_engine::create::{create_torrent, CreateOptions};
use shoal_engine::{Session, SessionConfig};

use super::*;
use crate::config::{Settings, SettingsPatch};

async fn node(dir: &Path) -> Node {
    let store = Store::open(&dir.join("shoal.db")).await.unwrap();
    let session = Session::start(SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        port_range: None,
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    let config = NodeConfig {
        data_dir: dir.to_path_buf(),
        port: None,
        web: None,
        tracker_bind: None,
        no_tracker: false,
        share_roots: Vec::new(),
        max_upload: 1 << 20,
        encryption: shoal_engine::EncryptionPolicy::default(),
        utp: true,
        settings: Settings {
            max_down: 0,
            max_up: 0,
            auto_share: true,
            max_active: 0,
            // No tracker: nothing leaves loopback, and the announce task idles.
            trackers: Vec::new(),
            download_dir: dir.join("downloads"),
            auto: crate::config::automation::AutoSettings::default(),
        },
        overrides: SettingsPatch::default(),
        lsd: None,
        dht: None,
        pex: true,
    };
    let parts = NodeParts {
        session,
        store,
        peer_id: PeerId::with_random([3; 12]),
        embedded_tracker: None,
    };
    Node::start(config, parts).await.unwrap()
}

/// A `.torrent` named `data` over a folder written in `dir`; returns its bytes.
fn torrent(dir: &Path) -> Vec<u8> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(data.join("file.bin"), bytes).unwrap();
    let opts = CreateOptions {
        piece_length: Some(16 * 1024),
        ..CreateOptions::default()
    };
    let meta = create_torrent(&data, &opts, &|_, _| {}).unwrap();
    meta.to_bytes()
}

/// Polls `cond` until it holds; panics after a generous bound (a hang, not a timing).
async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn shutdown_waits_for_monitors_and_node_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path()).await;
    let bytes = torrent(dir.path());
    let req = AddRequest {
        peers: Vec::new(),
        wanted: None,
        torrent: bytes,
        save_dir: Some(dir.path().to_path_buf()),
        paused: false,
        complete: false,
    };
    let hash = node.add(req).await.unwrap();
    // The data is all there: the check finds it complete, the monitor reports it and
    // the outcome task records it.
    until("the completion to be recorded", || {
        node.torrents()
            .get(&hash)
            .is_some_and(|e| e.completed_at.is_some())
    })
    .await;
    let monitor_running = node
        .torrents()
        .get(&hash)
        .and_then(|e| e.run.as_ref())
        .and_then(|r| r.monitor.as_ref())
        .is_some_and(|m| !m.is_finished());
    assert!(
        monitor_running,
        "auto-share keeps the torrent and its monitor"
    );
    let tasks = node.inner().tasks.clone();
    assert!(!tasks.is_empty());

    node.shutdown().await;

    assert!(tasks.is_closed(), "the node's tracker is closed");
    assert!(tasks.is_empty(), "{} node tasks still alive", tasks.len());
    assert!(node.session().torrents().is_empty());
    assert!(node.torrents().get(&hash).is_some_and(|e| e.run.is_none()));
    // Nothing starts once shut down, not even through the queue.
    node.schedule().await;
    assert!(node.torrents().get(&hash).is_some_and(|e| e.run.is_none()));
}
