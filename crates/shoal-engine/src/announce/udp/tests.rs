//! The UDP tracker client: URL forms, the exchange state machine on simulated time, and
//! the async client against a small fake tracker on loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use shoal_proto::ids::{InfoHash, PeerId};
use shoal_proto::tracker::AnnounceEvent;
use shoal_proto::udp_tracker::parse_request;

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

#[test]
fn keys() {
    assert_eq!(key_number(Some("00c0ffee")), 0x00c0_ffee);
    assert_eq!(key_number(None), 0);
    let hashed = key_number(Some("not hex at all"));
    assert_eq!(hashed, key_number(Some("not hex at all")));
    assert_ne!(hashed, key_number(Some("not hex at all!")));
}

// ---- the state machine, on simulated time -------------------------------------------

fn timeouts() -> UdpTimeouts {
    UdpTimeouts::default()
}

/// The transaction id of a request the machine sent.
fn sent(packet: &[u8]) -> Request {
    parse_request(packet).unwrap()
}

fn tid_of(req: &Request) -> u32 {
    match req {
        Request::Connect { transaction_id } => *transaction_id,
        Request::Announce(a) => a.transaction_id,
        Request::Scrape { transaction_id, .. } => *transaction_id,
    }
}

fn reply(r: Response, v6: bool) -> Vec<u8> {
    let mut b = Vec::new();
    r.write_for(v6, &mut b);
    b
}

fn connected(tid: u32, id: u64) -> Vec<u8> {
    reply(
        Response::Connect {
            transaction_id: tid,
            connection_id: id,
        },
        false,
    )
}

#[test]
fn connect_then_announce_fills_every_field() {
    let t0 = Instant::now();
    let mut x = Exchange::new(&request(), false, None, timeouts(), t0, 1);
    let c = sent(&x.poll_transmit().unwrap());
    assert!(matches!(c, Request::Connect { .. }));
    assert_eq!(x.poll_transmit(), None);
    let ev = x.handle_datagram(&connected(tid_of(&c), 99), t0).unwrap();
    assert_eq!(
        ev,
        Some(Event::Connected {
            id: 99,
            expires: t0 + Duration::from_secs(60)
        })
    );
    let Request::Announce(a) = sent(&x.poll_transmit().unwrap()) else {
        panic!("expected an announce");
    };
    assert_ne!(a.transaction_id, tid_of(&c));
    assert_eq!(a.connection_id, 99);
    assert_eq!(
        (a.event, a.num_want, a.key),
        (AnnounceEvent::Started, Some(80), 0x00c0_ffee)
    );
    assert_eq!((a.port, a.left, a.ip), (6881, 500, Ipv4Addr::UNSPECIFIED));
    assert_eq!(a.info_hash, InfoHash([1; 20]));

    let peer: SocketAddr = "10.1.2.3:6000".parse().unwrap();
    let resp = reply(
        Response::Announce {
            transaction_id: a.transaction_id,
            interval: 900,
            leechers: 3,
            seeders: 4,
            peers: vec![peer],
        },
        false,
    );
    let Some(Event::Announced(r)) = x.handle_datagram(&resp, t0).unwrap() else {
        panic!("expected the announce result");
    };
    assert_eq!((r.interval, r.complete, r.incomplete), (900, 4, 3));
    assert_eq!(r.peers, vec![peer]);
}

#[test]
fn ipv6_tracker_replies_carry_18_byte_peers() {
    let t0 = Instant::now();
    let mut x = Exchange::new(
        &request(),
        true,
        Some((5, t0 + Duration::from_secs(9))),
        timeouts(),
        t0,
        2,
    );
    let tid = tid_of(&sent(&x.poll_transmit().unwrap()));
    let peer: SocketAddr = "[2001:db8::7]:6001".parse().unwrap();
    let resp = reply(
        Response::Announce {
            transaction_id: tid,
            interval: 60,
            leechers: 0,
            seeders: 1,
            peers: vec![peer],
        },
        true,
    );
    let Some(Event::Announced(r)) = x.handle_datagram(&resp, t0).unwrap() else {
        panic!("expected the announce result");
    };
    assert_eq!(r.peers, vec![peer]);
}

#[test]
fn retransmits_on_the_bep15_schedule_and_gives_up_at_the_bound() {
    let t0 = Instant::now();
    let mut x = Exchange::new(&request(), false, None, timeouts(), t0, 3);
    let first = x.poll_transmit().unwrap();
    let mut sends = vec![0];
    let mut now;
    let err = loop {
        now = x.poll_timeout();
        match x.handle_timeout(now) {
            Ok(()) => {
                let again = x.poll_transmit().unwrap();
                assert_eq!(again, first, "a retransmission repeats the request");
                sends.push((now - t0).as_secs());
            }
            Err(e) => break e,
        }
    };
    // BEP 15: 15 * 2^n; bounded to 60 s in total.
    assert_eq!(sends, [0, 15, 45]);
    assert_eq!((now - t0).as_secs(), 60);
    assert!(matches!(err, AnnounceError::Timeout));
}

#[test]
fn an_expired_connection_id_is_fetched_anew_on_retransmission() {
    let t0 = Instant::now();
    let cached = Some((7, t0 + Duration::from_secs(20)));
    let mut x = Exchange::new(&request(), false, cached, timeouts(), t0, 4);
    assert!(matches!(
        sent(&x.poll_transmit().unwrap()),
        Request::Announce(_)
    ));
    x.handle_timeout(x.poll_timeout()).unwrap(); // t = 15: id still valid
    assert!(matches!(
        sent(&x.poll_transmit().unwrap()),
        Request::Announce(_)
    ));
    x.handle_timeout(x.poll_timeout()).unwrap(); // t = 45: id expired at 20
    assert!(matches!(
        sent(&x.poll_transmit().unwrap()),
        Request::Connect { .. }
    ));
}

#[test]
fn other_transaction_ids_and_garbage_are_ignored() {
    let t0 = Instant::now();
    let mut x = Exchange::new(&request(), false, None, timeouts(), t0, 5);
    let tid = tid_of(&sent(&x.poll_transmit().unwrap()));
    assert_eq!(x.handle_datagram(&connected(tid ^ 1, 1), t0).unwrap(), None);
    assert_eq!(x.handle_datagram(&[1, 2, 3], t0).unwrap(), None);
    assert_eq!(x.handle_datagram(&[], t0).unwrap(), None);
    assert!(x.poll_transmit().is_none());
    assert!(matches!(
        x.handle_datagram(&connected(tid, 1), t0).unwrap(),
        Some(Event::Connected { id: 1, .. })
    ));
}

#[test]
fn error_replies_surface_the_message() {
    let t0 = Instant::now();
    let mut x = Exchange::new(&request(), false, None, timeouts(), t0, 6);
    let tid = tid_of(&sent(&x.poll_transmit().unwrap()));
    x.handle_datagram(&connected(tid, 1), t0).unwrap();
    let tid = tid_of(&sent(&x.poll_transmit().unwrap()));
    let err = reply(
        Response::Error {
            transaction_id: tid,
            message: "unregistered torrent".into(),
        },
        false,
    );
    match x.handle_datagram(&err, t0) {
        Err(AnnounceError::Tracker(TrackerError::Failure(m))) => {
            assert_eq!(m, "unregistered torrent")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refused_cached_id_is_replaced_once() {
    let t0 = Instant::now();
    let cached = Some((7, t0 + Duration::from_secs(50)));
    let mut x = Exchange::new(&request(), false, cached, timeouts(), t0, 7);
    let refuse = |tid| {
        reply(
            Response::Error {
                transaction_id: tid,
                message: "bad connection id".into(),
            },
            false,
        )
    };
    let tid = tid_of(&sent(&x.poll_transmit().unwrap()));
    assert_eq!(
        x.handle_datagram(&refuse(tid), t0).unwrap(),
        Some(Event::Stale)
    );
    let tid = tid_of(&sent(&x.poll_transmit().unwrap()));
    x.handle_datagram(&connected(tid, 8), t0).unwrap();
    let tid = tid_of(&sent(&x.poll_transmit().unwrap()));
    // The fresh id is refused too: that is the tracker's answer.
    assert!(matches!(
        x.handle_datagram(&refuse(tid), t0),
        Err(AnnounceError::Tracker(TrackerError::Failure(_)))
    ));
}

#[test]
fn wrong_action_or_malformed_reply_with_our_id_fails() {
    let t0 = Instant::now();
    let mut x = Exchange::new(&request(), false, None, timeouts(), t0, 8);
    let tid = tid_of(&sent(&x.poll_transmit().unwrap()));
    let scrape = reply(
        Response::Scrape {
            transaction_id: tid,
            stats: vec![],
        },
        false,
    );
    assert!(matches!(
        x.handle_datagram(&scrape, t0),
        Err(AnnounceError::Udp(_))
    ));

    let mut x = Exchange::new(
        &request(),
        false,
        Some((1, t0 + Duration::from_secs(5))),
        timeouts(),
        t0,
        9,
    );
    let tid = tid_of(&sent(&x.poll_transmit().unwrap()));
    let mut bad = reply(
        Response::Announce {
            transaction_id: tid,
            interval: 1,
            leechers: 0,
            seeders: 0,
            peers: vec![],
        },
        false,
    );
    bad.extend_from_slice(&[1, 2, 3]); // not a whole 6-byte peer
    assert!(matches!(
        x.handle_datagram(&bad, t0),
        Err(AnnounceError::Udp(_))
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
