//! The BEP 15 UDP tracker over real sockets on loopback: connect, announce, scrape,
//! connection-id checks, IPv6 peers, and a bounded throughput probe (ignored by
//! default; it prints a figure and asserts no timing).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Running, UdpClient};
use shoal_proto::tracker::{AnnounceEvent, ScrapeStats};
use shoal_proto::udp_tracker::{Request, Response, UdpAnnounce};
use shoal_proto::{InfoHash, PeerId};
use shoal_tracker::TrackerConfig;

fn announce(cid: u64, hash: u8, peer: u8, port: u16, left: u64) -> Request {
    Request::Announce(UdpAnnounce {
        connection_id: cid,
        transaction_id: u32::from(peer),
        info_hash: InfoHash([hash; 20]),
        peer_id: PeerId([peer; 20]),
        downloaded: 0,
        left,
        uploaded: 0,
        event: AnnounceEvent::Started,
        ip: Ipv4Addr::UNSPECIFIED,
        key: 0,
        num_want: None,
        port,
    })
}

#[tokio::test]
async fn connect_announce_scrape_over_udp() {
    let t = Running::start(TrackerConfig {
        interval: 900,
        ..TrackerConfig::default()
    })
    .await;
    let a = UdpClient::new(t.addr).await;
    let b = UdpClient::new(t.addr).await;
    let (ca, cb) = (a.connect().await, b.connect().await);
    assert_ne!(ca, cb, "ids are bound to the client address");
    match a.ask(&announce(ca, 1, 1, 7001, 0)).await {
        Response::Announce {
            transaction_id,
            interval,
            seeders,
            leechers,
            peers,
        } => {
            assert_eq!(
                (transaction_id, interval, seeders, leechers),
                (1, 900, 1, 0)
            );
            assert!(peers.is_empty());
        }
        other => panic!("{other:?}"),
    }
    match b.ask(&announce(cb, 1, 2, 7002, 10)).await {
        Response::Announce { peers, .. } => {
            assert_eq!(peers, ["127.0.0.1:7001".parse::<SocketAddr>().unwrap()])
        }
        other => panic!("{other:?}"),
    }
    // b's id is not valid from a's address.
    assert!(matches!(
        a.ask(&announce(cb, 1, 3, 7003, 10)).await,
        Response::Error { .. }
    ));
    let scrape = Request::Scrape {
        connection_id: ca,
        transaction_id: 99,
        info_hashes: vec![InfoHash([1; 20]), InfoHash([2; 20])],
    };
    match a.ask(&scrape).await {
        Response::Scrape {
            transaction_id: 99,
            stats,
        } => assert_eq!(
            stats,
            [
                ScrapeStats {
                    complete: 1,
                    downloaded: 0,
                    incomplete: 1
                },
                ScrapeStats::default()
            ]
        ),
        other => panic!("{other:?}"),
    }
    // HTTP sees the same swarm.
    let s = t.json("/stats").await;
    assert_eq!(
        (s["peers"].as_u64(), s["udp_announces_total"].as_u64()),
        (Some(2), Some(2))
    );
    t.shutdown().await;
}

#[tokio::test]
async fn ipv6_requesters_get_18_byte_peers() {
    let Ok(t) = Running::start_on("[::1]:0".parse().unwrap(), TrackerConfig::default()).await
    else {
        eprintln!("skipping: IPv6 loopback [::1] is not available here");
        return;
    };
    let a = UdpClient::new(t.addr).await;
    let b = UdpClient::new(t.addr).await;
    let ca = a.connect().await;
    a.ask(&announce(ca, 4, 1, 7001, 0)).await;
    let cb = b.connect().await;
    // UdpClient parses replies from a v6 tracker as 18-byte entries.
    match b.ask(&announce(cb, 4, 2, 7002, 5)).await {
        Response::Announce { peers, .. } => {
            assert_eq!(peers, ["[::1]:7001".parse::<SocketAddr>().unwrap()])
        }
        other => panic!("{other:?}"),
    }
    t.shutdown().await;
}

/// Sequential announces from a few clients for at most 3 seconds or 200,000 packets.
/// Run with `cargo test --release -p shoal-tracker --test udp -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput probe: prints a figure, asserts no timing"]
async fn udp_announce_throughput_probe() {
    let t = Running::start(TrackerConfig::default()).await;
    let clients = 8u8;
    let deadline = Instant::now() + Duration::from_secs(3);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let addr = t.addr;
        tasks.push(tokio::spawn(async move {
            let client = UdpClient::new(addr).await;
            let cid = client.connect().await;
            let mut done = 0u64;
            let mut buf = Vec::new();
            let mut reply = vec![0u8; 2048];
            while Instant::now() < deadline && done < 200_000 / u64::from(clients) {
                buf.clear();
                announce(cid, c, (done % 200) as u8, 7000, done % 2).write(&mut buf);
                client.socket.send_to(&buf, addr).await.unwrap();
                let got =
                    tokio::time::timeout(Duration::from_secs(1), client.socket.recv(&mut reply))
                        .await;
                if !matches!(got, Ok(Ok(_))) {
                    break;
                }
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "udp announces: {total} in {secs:.2} s = {:.0}/s ({clients} clients, request-reply)",
        total as f64 / secs
    );
    t.shutdown().await;
}
