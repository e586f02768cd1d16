//! The UDP tracker client: URL forms, and the driver against a small fake tracker on
//! loopback (real sockets and timers). The exchange's logic is tested on simulated
//! time beside the state machine, in `shoal_proto::udp_tracker::client`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_proto::ids::{InfoHash, PeerId};
use shoal_proto::tracker::AnnounceEvent;
use shoal_proto::udp_tracker::{parse_request, Request, Response, UdpAnnounce};

use super::*;
use crate::announce::announce_tiers_via;

fn request() -> AnnounceRequest {
    let mut req = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881);
    req.event = AnnounceEvent::Started;
    req.numwant = Some(80);
    req.key = Some("00c0ffee".into());
    req.left = 500;
    req
}

// ---- URLs --------------------------------------------------------------------------

#[test]
fn url_forms() {
    let ok = |u: &str| split_url(u).unwrap();
    assert_eq!(
        ok("udp://tracker.example:1337/announce"),
        ("tracker.example".into(), 1337)
    );
    assert_eq!(
        ok("udp://tracker.example:1337"),
        ("tracker.example".into(), 1337)
    );
    assert_eq!(
        ok("udp://tracker.example:1337/"),
        ("tracker.example".into(), 1337)
    );
    assert_eq!(
        ok("udp://10.0.0.1:80/announce?passkey=x"),
        ("10.0.0.1".into(), 80)
    );
    assert_eq!(ok("UDP://h:9"), ("h".into(), 9));
    assert_eq!(ok("udp://[::1]:6969/announce"), ("::1".into(), 6969));
    assert_eq!(ok("udp://[2001:db8::1]:6969"), ("2001:db8::1".into(), 6969));
}

#[test]
fn bad_urls() {
    for u in [
        "udp://tracker.example/announce", // no port: BEP 15 has no default
        "udp://tracker.example",
        "udp://:80/announce",
        "udp://h:0/announce",
        "udp://h:65536",
        "udp://h:x/announce",
        "udp://[::1]/announce",
        "udp://[::1:80",
        "udp://::1:80",
        "udp://",
    ] {
        assert!(
            matches!(split_url(u), Err(AnnounceError::BadUrl(_))),
            "{u}: {:?}",
            split_url(u)
        );
    }
    assert!(matches!(
        split_url("http://h:1/announce"),
        Err(AnnounceError::Unsupported(_))
    ));
}

// ---- the client against a fake tracker ---------------------------------------------

/// What the fake tracker saw.
#[derive(Default)]
struct Log {
    /// Every datagram's request, in arrival order (dropped ones included).
    requests: Vec<Request>,
    /// Connection ids handed out, with the address they were handed to.
    issued: Vec<(SocketAddr, u64)>,
}

impl Log {
    fn connects(&self) -> usize {
        self.requests
            .iter()
            .filter(|r| matches!(r, Request::Connect { .. }))
            .count()
    }

    fn announces(&self) -> Vec<&UdpAnnounce> {
        self.requests
            .iter()
            .filter_map(|r| match r {
                Request::Announce(a) => Some(a),
                _ => None,
            })
            .collect()
    }
}

/// How the fake tracker misbehaves.
#[derive(Default, Clone)]
struct Script {
    /// Indexes (in arrival order) of datagrams to drop, as if lost.
    drop: Vec<usize>,
    /// Answer valid announces with this error.
    error: Option<String>,
    /// Peers in announce replies.
    peers: Vec<SocketAddr>,
}

/// A BEP 15 tracker in a task: connection ids bound to the client's address, answers
/// from shoal-proto's encoders. Aborted on drop.
struct Fake {
    url: String,
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn fake(bind: &str, script: Script) -> std::io::Result<Fake> {
    let socket = UdpSocket::bind(bind).await?;
    let addr = socket.local_addr()?;
    let url = match addr {
        SocketAddr::V4(a) => format!("udp://{a}/announce"),
        SocketAddr::V6(a) => format!("udp://[{}]:{}", a.ip(), a.port()),
    };
    let log = Arc::new(Mutex::new(Log::default()));
    let task = tokio::spawn(serve(socket, script, log.clone()));
    Ok(Fake { url, log, task })
}

async fn serve(socket: UdpSocket, script: Script, log: Arc<Mutex<Log>>) {
    let mut buf = vec![0u8; 2048];
    let mut next_id = 0x5000_u64;
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        let Ok(req) = parse_request(&buf[..n]) else {
            continue;
        };
        let reply = {
            let mut log = log.lock().unwrap();
            log.requests.push(req.clone());
            if script.drop.contains(&(log.requests.len() - 1)) {
                continue;
            }
            match req {
                Request::Connect { transaction_id } => {
                    next_id += 1;
                    log.issued.push((from, next_id));
                    Response::Connect {
                        transaction_id,
                        connection_id: next_id,
                    }
                }
                Request::Announce(a) if !log.issued.contains(&(from, a.connection_id)) => {
                    Response::Error {
                        transaction_id: a.transaction_id,
                        message: "bad connection id".into(),
                    }
                }
                Request::Announce(a) => match &script.error {
                    Some(message) => Response::Error {
                        transaction_id: a.transaction_id,
                        message: message.clone(),
                    },
                    None => Response::Announce {
                        transaction_id: a.transaction_id,
                        interval: 900,
                        leechers: 1,
                        seeders: 2,
                        peers: script.peers.clone(),
                    },
                },
                Request::Scrape { .. } => continue,
            }
        };
        let mut out = Vec::new();
        reply.write_for(wants_v6(&from), &mut out);
        let _ = socket.send_to(&out, from).await;
    }
}

/// Short waits, so a lost packet costs milliseconds.
fn quick() -> UdpTimeouts {
    UdpTimeouts {
        first: Duration::from_millis(100),
        total: Duration::from_secs(5),
        connection_ttl: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn connection_id_is_reused_within_its_minute() {
    let peer: SocketAddr = "10.9.8.7:6881".parse().unwrap();
    let t = fake(
        "127.0.0.1:0",
        Script {
            peers: vec![peer],
            ..Script::default()
        },
    )
    .await
    .unwrap();
    let mut client = UdpClient::new(quick());
    let r = client.announce(&t.url, &request()).await.unwrap();
    assert_eq!((r.interval, r.complete, r.incomplete), (900, 2, 1));
    assert_eq!(r.peers, vec![peer]);
    let mut again = request();
    again.event = AnnounceEvent::None;
    client.announce(&t.url, &again).await.unwrap();

    let log = t.log.lock().unwrap();
    assert_eq!(log.connects(), 1, "the second announce reuses the id");
    let announces = log.announces();
    assert_eq!(announces.len(), 2);
    assert_eq!(announces[0].connection_id, announces[1].connection_id);
    assert_ne!(announces[0].transaction_id, announces[1].transaction_id);
    assert_eq!(announces[1].event, AnnounceEvent::None);
}

#[tokio::test]
async fn expired_ids_are_dropped_with_their_socket() {
    let t = fake("127.0.0.1:0", Script::default()).await.unwrap();
    let mut client = UdpClient::new(quick());
    client.announce(&t.url, &request()).await.unwrap();
    client.expire(Instant::now() + Duration::from_secs(61));
    assert!(client.links.is_empty());
    client.announce(&t.url, &request()).await.unwrap();
    assert_eq!(t.log.lock().unwrap().connects(), 2);
}

#[tokio::test]
async fn tracker_error_is_surfaced() {
    let script = Script {
        error: Some("torrent not registered with this tracker".into()),
        ..Script::default()
    };
    let t = fake("127.0.0.1:0", script).await.unwrap();
    let err = UdpClient::new(quick())
        .announce(&t.url, &request())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AnnounceError::Tracker(TrackerError::Failure(m)) if m == "torrent not registered with this tracker"),
        "{err:?}"
    );
    assert!(err.to_string().contains("torrent not registered"));
}

#[tokio::test]
async fn lost_packets_are_retransmitted() {
    // The first connect and the first announce vanish.
    let script = Script {
        drop: vec![0, 2],
        ..Script::default()
    };
    let t = fake("127.0.0.1:0", script).await.unwrap();
    UdpClient::new(quick())
        .announce(&t.url, &request())
        .await
        .unwrap();
    let log = t.log.lock().unwrap();
    assert_eq!(log.connects(), 2);
    let announces = log.announces();
    assert_eq!(announces.len(), 2);
    assert_eq!(
        announces[0], announces[1],
        "a retransmission is the same packet"
    );
}

#[tokio::test]
async fn silence_ends_in_a_timeout() {
    let t = fake(
        "127.0.0.1:0",
        Script {
            drop: (0..100).collect(),
            ..Script::default()
        },
    )
    .await
    .unwrap();
    let timeouts = UdpTimeouts {
        first: Duration::from_millis(20),
        total: Duration::from_millis(300),
        ..quick()
    };
    let err = UdpClient::new(timeouts)
        .announce(&t.url, &request())
        .await
        .unwrap_err();
    assert!(matches!(err, AnnounceError::Timeout), "{err:?}");
    assert!(t.log.lock().unwrap().connects() >= 2);
}

#[tokio::test]
async fn a_tracker_that_forgot_our_id_gets_a_fresh_one() {
    let t = fake("127.0.0.1:0", Script::default()).await.unwrap();
    let mut client = UdpClient::new(quick());
    client.announce(&t.url, &request()).await.unwrap();
    t.log.lock().unwrap().issued.clear(); // as after a tracker restart
    client.announce(&t.url, &request()).await.unwrap();
    let log = t.log.lock().unwrap();
    assert_eq!((log.connects(), log.announces().len()), (2, 3));
}

#[tokio::test]
async fn ipv6_tracker() {
    let peer: SocketAddr = "[2001:db8::5]:7000".parse().unwrap();
    let script = Script {
        peers: vec![peer, "10.0.0.1:1".parse().unwrap()],
        ..Script::default()
    };
    let Ok(t) = fake("[::1]:0", script).await else {
        eprintln!("skipping: no IPv6 loopback here");
        return;
    };
    let r = UdpClient::new(quick())
        .announce(&t.url, &request())
        .await
        .unwrap();
    // The tracker writes only peers of the requester's family, 18 bytes each.
    assert_eq!(r.peers, vec![peer]);
}

#[tokio::test]
async fn tiers_mix_http_and_udp() {
    let t = fake("127.0.0.1:0", Script::default()).await.unwrap();
    // A closed TCP port: the HTTP tracker fails fast and the UDP one answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/announce", closed.local_addr().unwrap());
    drop(closed);
    let mut tiers = vec![vec![dead.clone(), t.url.clone()]];
    let mut client = UdpClient::new(quick());
    let mut seen = Vec::new();
    let (_, url) = announce_tiers_via(&mut client, &mut tiers, &request(), |u, r| {
        seen.push((u.to_string(), r.is_ok()))
    })
    .await
    .unwrap();
    assert_eq!(url, t.url);
    assert_eq!(seen, vec![(dead.clone(), false), (t.url.clone(), true)]);
    assert_eq!(
        tiers[0],
        vec![t.url.clone(), dead],
        "BEP 12: the answering tracker moves up"
    );
}

#[test]
fn machine_errors_keep_the_engine_kinds_and_texts() {
    use shoal_proto::udp_tracker::{UdpParseError, UdpProblem};
    assert!(matches!(
        announce_error(UdpClientError::Timeout),
        AnnounceError::Timeout
    ));
    assert!(matches!(
        announce_error(UdpClientError::Failure("no".into())),
        AnnounceError::Tracker(TrackerError::Failure(m)) if m == "no"
    ));
    let malformed = UdpClientError::Malformed(UdpParseError {
        transaction_id: Some(1),
        reason: UdpProblem::BadEntries,
    });
    let AnnounceError::Udp(text) = announce_error(malformed) else {
        panic!("a malformed reply is a UDP error");
    };
    assert_eq!(
        text,
        "tracker sent a malformed reply: response entries are not whole"
    );
    let AnnounceError::Udp(text) = announce_error(UdpClientError::WrongAction("scrape")) else {
        panic!("a wrong action is a UDP error");
    };
    assert_eq!(text, "tracker answered with the wrong action: scrape");
}
