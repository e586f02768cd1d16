//! Swarms across tracker restarts: saved in the data dir (SQLite) or beside a PostgreSQL
//! catalog, restored at start; a tracker with neither keeps them in memory only, and a
//! store that cannot be read gives an empty tracker, not a failed start.

mod common;
#[path = "common/postgres.rs"]
mod pg_server;

use common::*;
use shoal_proto::tracker::{AnnounceEvent, AnnounceRequest, AnnounceResponse};
use shoal_proto::{InfoHash, PeerId};
use shoal_tracker::TrackerConfig;
use std::net::SocketAddr;
use std::path::Path;

const HASH: InfoHash = InfoHash([0x42; 20]);

async fn announce(t: &Running, req: &AnnounceRequest) -> AnnounceResponse {
    let (status, _, body) = t.get(&format!("/announce?{}", req.to_query())).await;
    assert_eq!(status, 200);
    AnnounceResponse::parse(&body).unwrap()
}

fn peer(n: u8, port: u16, seeder: bool, event: AnnounceEvent) -> AnnounceRequest {
    let mut r = AnnounceRequest::new(HASH, PeerId([n; 20]), port);
    r.left = u64::from(!seeder);
    r.event = event;
    r
}

/// SQLite in `dir`, and a fresh PostgreSQL database when PostgreSQL is installed.
async fn backends(dir: &Path) -> Vec<(&'static str, TrackerConfig)> {
    let mut out = vec![(
        "sqlite",
        TrackerConfig {
            data_dir: Some(dir.join("data")),
            ..TrackerConfig::default()
        },
    )];
    let pg = tokio::task::spawn_blocking(pg_server::fresh_database)
        .await
        .unwrap();
    if let Some(url) = pg {
        out.push((
            "postgres",
            TrackerConfig {
                catalog_db: Some(url),
                ..TrackerConfig::default()
            },
        ));
    }
    out
}

#[tokio::test]
async fn a_restarted_tracker_hands_out_the_seeders_it_had() {
    let dir = tempfile::tempdir().unwrap();
    for (store, config) in backends(dir.path()).await {
        eprintln!("store: {store}");
        let t = Running::start(config.clone()).await;
        announce(&t, &peer(1, 7001, false, AnnounceEvent::Started)).await;
        announce(&t, &peer(1, 7001, true, AnnounceEvent::Completed)).await;
        announce(&t, &peer(2, 7002, false, AnnounceEvent::Started)).await;
        announce(&t, &peer(3, 7003, false, AnnounceEvent::Started)).await;
        announce(&t, &peer(3, 7003, false, AnnounceEvent::Stopped)).await;
        let port = t.addr;
        t.shutdown().await;

        // Same port, as a restart under a supervisor would be.
        let t = Running::start_on(port, config.clone()).await.unwrap();
        let got = announce(&t, &peer(9, 7009, false, AnnounceEvent::Started)).await;
        let mut peers = got.peers.clone();
        peers.sort();
        let want: Vec<SocketAddr> = vec![
            "127.0.0.1:7001".parse().unwrap(),
            "127.0.0.1:7002".parse().unwrap(),
        ];
        assert_eq!(peers, want, "{store}: the stopped peer stays gone");
        assert_eq!((got.complete, got.incomplete), (1, 2), "{store}");
        let s = t.json("/stats").await;
        assert_eq!(
            (s["seeders"].as_u64(), s["leechers"].as_u64()),
            (Some(1), Some(2))
        );
        // The restored seeder is the same peer: announcing again adds nobody.
        let again = announce(&t, &peer(1, 7001, true, AnnounceEvent::None)).await;
        assert_eq!((again.complete, again.incomplete), (1, 2), "{store}");
        t.shutdown().await;
    }
}

#[tokio::test]
async fn without_a_data_dir_swarms_stay_in_memory() {
    let t = Running::start(TrackerConfig::default()).await;
    announce(&t, &peer(1, 7001, true, AnnounceEvent::Started)).await;
    t.shutdown().await;
    let t = Running::start(TrackerConfig::default()).await;
    let got = announce(&t, &peer(2, 7002, false, AnnounceEvent::Started)).await;
    assert!(got.peers.is_empty());
    t.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_store_gives_an_empty_tracker_that_saves_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("swarms.sqlite"), b"not a database ".repeat(200)).unwrap();
    let config = TrackerConfig {
        data_dir: Some(data.clone()),
        ..TrackerConfig::default()
    };
    let t = Running::start(config.clone()).await;
    let got = announce(&t, &peer(1, 7001, true, AnnounceEvent::Started)).await;
    assert_eq!((got.complete, got.incomplete), (1, 0), "nothing restored");
    assert!(data.join("swarms.sqlite.corrupt").is_file(), "moved aside");
    t.shutdown().await;
    let t = Running::start(config).await;
    let got = announce(&t, &peer(2, 7002, false, AnnounceEvent::Started)).await;
    assert_eq!(got.peers, ["127.0.0.1:7001".parse::<SocketAddr>().unwrap()]);
    t.shutdown().await;
}
