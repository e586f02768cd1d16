//! The catalog end to end over real HTTP on 127.0.0.1: publish, search, fetch, restart
//! with the same data dir, limits, modes, the status page, and malformed input.
//! Catalog scenarios run against SQLite and, when installed, a PostgreSQL server the
//! test starts (`common/postgres.rs`); trackers sharing one PostgreSQL catalog too.

mod common;
#[path = "common/postgres.rs"]
mod pg_server;

use common::{torrent, Running, UdpClient, WAIT};
use shoal_proto::catalog::{PublishReply, SearchResults};
use shoal_proto::tracker::{AnnounceEvent, AnnounceRequest, AnnounceResponse, TrackerError};
use shoal_proto::udp_tracker::{Request, Response, UdpAnnounce};
use shoal_proto::urlenc::encode;
use shoal_proto::{InfoHash, PeerId};
use shoal_tracker::TrackerConfig;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

/// A new PostgreSQL database on the test server, or `None` (skipped, with a message).
async fn pg_database() -> Option<String> {
    tokio::task::spawn_blocking(pg_server::fresh_database)
        .await
        .unwrap()
}

/// Tracker configs for each catalog store: SQLite in `dir`, and a fresh PostgreSQL
/// database when PostgreSQL is installed. Each config reopens the same catalog.
async fn catalog_backends(dir: &Path) -> Vec<(&'static str, TrackerConfig)> {
    let mut out = vec![(
        "sqlite",
        TrackerConfig {
            data_dir: Some(dir.join("data")),
            ..TrackerConfig::default()
        },
    )];
    if let Some(url) = pg_database().await {
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

async fn publish(t: &Running, bytes: &[u8], peer: Option<PeerId>) -> PublishReply {
    let target = match peer {
        Some(p) => format!("/publish?peer_id={}", encode(&p.0)),
        None => "/publish".into(),
    };
    let (status, _, body) = t.request("POST", &target, bytes).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

async fn search(t: &Running, q: &str) -> SearchResults {
    let (status, _, body) = t.get(&format!("/search?q={}", encode(q.as_bytes()))).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

async fn announce(t: &Running, req: &AnnounceRequest) -> Result<AnnounceResponse, TrackerError> {
    let (status, _, body) = t.get(&format!("/announce?{}", req.to_query())).await;
    assert_eq!(status, 200);
    AnnounceResponse::parse(&body)
}

fn seeder(hash: InfoHash, n: u8, port: u16) -> AnnounceRequest {
    let mut r = AnnounceRequest::new(hash, PeerId([n; 20]), port);
    r.event = AnnounceEvent::Started;
    r
}

#[tokio::test]
async fn publish_search_fetch_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    for (store, config) in catalog_backends(dir.path()).await {
        eprintln!("store: {store}");
        publish_search_fetch_restart(config).await;
    }
}

async fn publish_search_fetch_restart(config: TrackerConfig) {
    let t = Running::start(config.clone()).await;
    let bytes = torrent(
        "Big Buck Bunny",
        &[("video/bbb_1080p.mkv", 50_000), ("subs/en.srt", 100)],
        false,
    );
    let other = torrent("Sintel", &[("sintel.mkv", 10)], false);
    let r = publish(&t, &bytes, Some(PeerId(*b"-SH0100-publisher001"))).await;
    assert!(r.created);
    assert_eq!(r.name, "Big Buck Bunny");
    assert!(!publish(&t, &bytes, None).await.created, "idempotent");
    publish(&t, &other, None).await;

    // A seeder shows up in the live counts.
    let hash = InfoHash::from_hex(&r.id).unwrap();
    announce(&t, &seeder(hash, 1, 7001)).await.unwrap();

    let res = search(&t, "buck BUNNY").await;
    assert_eq!(res.total, 1);
    let hit = &res.hits[0];
    assert_eq!(
        (hit.id.as_str(), hit.size, hit.file_count, hit.seeders),
        (r.id.as_str(), 50_100, 2, 1)
    );
    assert!(hit.published > 1_600_000_000);
    assert_eq!(search(&t, "srt").await.hits[0].name, "Big Buck Bunny");
    assert_eq!(search(&t, "mkv").await.total, 2);
    assert_eq!(search(&t, &r.id[..8]).await.hits[0].id, r.id);
    assert_eq!(search(&t, "nothing-like-this").await.total, 0);

    let (status, head, body) = t.get(&format!("/torrent/{}", r.id)).await;
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: application/x-bittorrent"));
    assert_eq!(body, bytes);
    assert_eq!(t.get(&format!("/torrent/{}", "0".repeat(40))).await.0, 404);
    assert_eq!(t.get("/torrent/xyz").await.0, 400);
    t.shutdown().await;

    // Same catalog: the torrents are still there, and so is the swarm (saved at
    // shutdown); the seeder announcing again is the same seeder.
    let t = Running::start(config).await;
    let res = search(&t, "bunny").await;
    assert_eq!(res.total, 1);
    assert_eq!(res.hits[0].seeders, 1);
    assert_eq!(t.get(&format!("/torrent/{}", r.id)).await.2, bytes);
    announce(&t, &seeder(hash, 1, 7001)).await.unwrap();
    assert_eq!(search(&t, "bunny").await.hits[0].seeders, 1);
    t.shutdown().await;
}

#[tokio::test]
async fn publish_limits_and_bad_bodies() {
    let t = Running::start(TrackerConfig {
        max_publish_bytes: 1000,
        ..TrackerConfig::default()
    })
    .await;
    let (status, _, body) = t.request("POST", "/publish", &vec![b'x'; 5000]).await;
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("up to 1000 bytes"));
    let (status, _, body) = t.request("POST", "/publish", b"not bencode").await;
    assert_eq!(status, 400);
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(err["error"]
        .as_str()
        .unwrap()
        .contains("not a valid .torrent"));
    assert_eq!(t.request("POST", "/publish", b"").await.0, 400);
    let bad_peer = t
        .request(
            "POST",
            "/publish?peer_id=short",
            &torrent("x", &[("a", 1)], false),
        )
        .await;
    assert_eq!(bad_peer.0, 400);
    let chunked = t
        .raw(b"POST /publish HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        .await;
    assert_eq!(chunked.0, 411);
    assert_eq!(t.request("POST", "/announce", b"x").await.0, 400);
    assert_eq!(t.get("/search").await.0, 400);
    assert_eq!(t.get("/search?q=x&page=abc").await.0, 400);
    // Still serving.
    let ok = publish(&t, &torrent("small", &[("a", 1)], false), None).await;
    assert!(ok.created);
    t.shutdown().await;
}

/// Opens a connection and sends a publish head announcing `len` bytes plus `body`.
async fn start_upload(t: &Running, len: usize, body: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    let head =
        format!("POST /publish HTTP/1.1\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    s
}

#[tokio::test]
async fn publish_bodies_are_bounded_by_rate_budget_and_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const MAX: usize = 100_000;
    let t = Running::start(TrackerConfig {
        max_publish_bytes: MAX,
        publish_budget_bytes: MAX,
        // Long enough for the slow upload below to finish on a loaded machine.
        publish_body_timeout: 5,
        publish_per_minute: 3,
        ..TrackerConfig::default()
    })
    .await;
    // Heads announcing the maximum with no body hold none of the budget.
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(start_upload(&t, MAX, b"").await);
    }
    assert!(
        publish(&t, &torrent("tiny", &[("a", 1)], false), None)
            .await
            .created
    );
    // A slow upload holding the whole budget makes others wait with a 503.
    let mut slow = start_upload(&t, MAX, &vec![b'x'; 70_000]).await;
    // Let the tracker take in what it sent before others compete for the budget: the
    // tracker accepts connections once their data is in (TCP_DEFER_ACCEPT), so a
    // request sent right away would be accepted with it and the two bodies would grow
    // in turns, leaving the slow upload short of the budget and refused itself.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    loop {
        let (status, _, body) = t.request("POST", "/publish", &vec![b'y'; 20_000]).await;
        if status == 503 {
            let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(err["error"].as_str().unwrap().contains("try again"));
            break;
        }
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
        assert!(
            started.elapsed() < WAIT,
            "the slow upload never took the budget"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    slow.write_all(&vec![b'x'; MAX - 70_000]).await.unwrap();
    let mut reply = Vec::new();
    slow.read_to_end(&mut reply).await.unwrap();
    assert!(
        reply.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // A body that stops short is cut off at the deadline, without an answer.
    for mut s in idle {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    }
    // Loopback gets ten times the per-IP rate (30 here), then 429 with a reason.
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(t.request("POST", "/publish", b"junk").await.0);
        if statuses.last() == Some(&429) {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses.len() > 10, "{statuses:?}");
    let (_, _, body) = t.request("POST", "/publish", b"junk").await;
    assert!(String::from_utf8_lossy(&body).contains("too many publishes"));
    // Other endpoints are not rate limited.
    assert_eq!(t.get("/stats").await.0, 200);
    t.shutdown().await;
}

#[tokio::test]
async fn private_torrents_are_listed_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    for (store, config) in catalog_backends(dir.path()).await {
        for list_private in [false, true] {
            eprintln!("store: {store}, list_private: {list_private}");
            let t = Running::start(TrackerConfig {
                list_private,
                ..config.clone()
            })
            .await;
            let r = publish(&t, &torrent("members only", &[("a", 1)], true), None).await;
            assert_eq!(search(&t, "members").await.total, u64::from(list_private));
            // Served by id either way.
            assert_eq!(t.get(&format!("/torrent/{}", r.id)).await.0, 200);
            t.shutdown().await;
        }
    }
}

#[tokio::test]
async fn trackers_sharing_a_postgres_catalog_see_each_others_torrents() {
    let Some(url) = pg_database().await else {
        return;
    };
    let shared = TrackerConfig {
        catalog_db: Some(url),
        catalog_only: true,
        ..TrackerConfig::default()
    };
    let (a, b) = (
        Running::start(shared.clone()).await,
        Running::start(shared).await,
    );
    let bytes = torrent("Shared Catalog Film", &[("film.mkv", 4096)], false);
    let (ra, rb) = tokio::join!(publish(&a, &bytes, None), publish(&b, &bytes, None));
    assert_eq!(ra.id, rb.id);
    assert!(ra.created ^ rb.created, "created once: {ra:?} {rb:?}");
    let other = torrent("Only On A", &[("a.bin", 1)], false);
    let r = publish(&a, &other, None).await;
    let res = search(&b, "only on").await;
    assert_eq!((res.total, res.hits[0].id.as_str()), (1, r.id.as_str()));
    assert_eq!(b.get(&format!("/torrent/{}", r.id)).await.2, other);
    // Catalog-only: b accepts announces for a's torrents once it refreshed.
    let hash = InfoHash::from_hex(&r.id).unwrap();
    let late = torrent("Published Later", &[("l.bin", 1)], false);
    let late_hash = InfoHash::from_hex(&publish(&a, &late, None).await.id).unwrap();
    assert!(announce(&b, &seeder(hash, 1, 7001)).await.is_ok());
    let deadline = Instant::now() + Duration::from_secs(15);
    while announce(&b, &seeder(late_hash, 1, 7001)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "b never learned of the new torrent"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(b.json("/stats").await["catalog_torrents"], 3);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn catalog_only_mode_refuses_unpublished_torrents_on_both_transports() {
    let t = Running::start(TrackerConfig {
        catalog_only: true,
        ..TrackerConfig::default()
    })
    .await;
    let bytes = torrent("allowed", &[("a", 1)], false);
    let unknown = InfoHash([0x55; 20]);
    match announce(&t, &seeder(unknown, 1, 7001)).await {
        Err(TrackerError::Failure(reason)) => assert!(reason.contains("publish"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let udp = UdpClient::new(t.addr).await;
    let cid = udp.connect().await;
    let req = |hash| {
        Request::Announce(UdpAnnounce {
            connection_id: cid,
            transaction_id: 5,
            info_hash: hash,
            peer_id: PeerId([2; 20]),
            downloaded: 0,
            left: 0,
            uploaded: 0,
            event: AnnounceEvent::Started,
            ip: Ipv4Addr::UNSPECIFIED,
            key: 0,
            num_want: None,
            port: 7002,
        })
    };
    assert!(matches!(
        udp.ask(&req(unknown)).await,
        Response::Error { .. }
    ));
    let r = publish(&t, &bytes, None).await;
    let hash = InfoHash::from_hex(&r.id).unwrap();
    assert_eq!(
        announce(&t, &seeder(hash, 1, 7001)).await.unwrap().complete,
        1
    );
    match udp.ask(&req(hash)).await {
        Response::Announce { seeders, .. } => assert_eq!(seeders, 2),
        other => panic!("{other:?}"),
    }
    t.shutdown().await;
}

#[tokio::test]
async fn status_page_and_stats() {
    let t = Running::start(TrackerConfig::default()).await;
    publish(&t, &torrent("stat me", &[("a", 1)], false), None).await;
    for n in 1..=3 {
        let mut r = seeder(InfoHash([9; 20]), n, 7000 + u16::from(n));
        r.left = u64::from(n % 2);
        announce(&t, &r).await.unwrap();
    }
    let s = t.json("/stats").await;
    assert_eq!(s["torrents"], 1);
    assert_eq!(s["catalog_torrents"], 1);
    assert_eq!(s["peers"], 3);
    assert_eq!(s["seeders"], 1);
    assert_eq!(s["leechers"], 2);
    assert_eq!(s["announces_total"], 3);
    assert!(s["uptime_secs"].is_u64());
    assert!(s["announces_per_sec"].is_f64());
    let (status, head, body) = t.get("/").await;
    assert_eq!(status, 200);
    assert!(head.contains("text/html"));
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("Shoal tracker") && page.contains("<td>Leechers</td><td>2</td>"));
    t.shutdown().await;
}

#[tokio::test]
async fn ipv6_peers_come_back_as_peers6_over_http() {
    let t = Running::start(TrackerConfig::default()).await;
    let hash = InfoHash([0x66; 20]);
    // From loopback the `ip` parameter is honoured, so a v6 peer can be simulated.
    let mut v6 = seeder(hash, 1, 7001);
    v6.ip = Some("2001:db8::7".parse().unwrap());
    announce(&t, &v6).await.unwrap();
    let mut v4 = seeder(hash, 2, 7002);
    v4.left = 5;
    let (_, _, body) = t.get(&format!("/announce?{}", v4.to_query())).await;
    assert!(
        body.windows(8).any(|w| w == b"6:peers6"),
        "compact reply has peers6"
    );
    let resp = AnnounceResponse::parse(&body).unwrap();
    assert_eq!(resp.peers, ["[2001:db8::7]:7001".parse().unwrap()]);
    t.shutdown().await;
}

#[tokio::test]
async fn malformed_announces_and_packets_leave_the_tracker_serving() {
    let t = Running::start(TrackerConfig::default()).await;
    let ih = format!("info_hash={}", "%01".repeat(20));
    let pid = format!("peer_id={}", "p".repeat(20));
    for (query, want) in [
        (
            format!("info_hash=%01%02&{pid}&port=1&left=0"),
            "must be 20 bytes",
        ),
        (format!("{ih}&{pid}&left=0"), "missing port"),
        (format!("{ih}&{pid}&port=abc&left=0"), "invalid port"),
        (
            format!("{ih}&{pid}&port=1&left=0&numwant=many"),
            "invalid numwant",
        ),
    ] {
        let (status, _, body) = t.get(&format!("/announce?{query}")).await;
        assert_eq!(status, 200);
        match AnnounceResponse::parse(&body) {
            Err(TrackerError::Failure(r)) => assert!(r.contains(want), "{query}: {r}"),
            other => panic!("{query}: {other:?}"),
        }
    }
    let oversized = t
        .get(&format!("/announce?{ih}&pad={}", "x".repeat(20_000)))
        .await;
    assert_eq!(oversized.0, 414);

    let udp = UdpClient::new(t.addr).await;
    udp.send_raw(&[]).await;
    udp.send_raw(&[1, 2, 3]).await;
    udp.send_raw(&[0xff; 15]).await;
    // Long, action "connect" without the BEP 15 magic: not a tracker client, dropped.
    let mut not_bep15 = vec![0xee; 3000];
    not_bep15[8..12].copy_from_slice(&[0, 0, 0, 0]);
    udp.send_raw(&not_bep15).await;
    assert!(udp
        .recv(std::time::Duration::from_millis(300))
        .await
        .is_none());
    let mut unknown_action = vec![0u8; 16];
    unknown_action[11] = 42;
    unknown_action[15] = 9;
    udp.send_raw(&unknown_action).await;
    match udp.recv(WAIT).await {
        Some(Response::Error {
            transaction_id: 9, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Both transports still answer.
    let cid = udp.connect().await;
    assert_ne!(cid, 0);
    assert!(announce(&t, &seeder(InfoHash([1; 20]), 1, 7001))
        .await
        .is_ok());
    t.shutdown().await;
}
