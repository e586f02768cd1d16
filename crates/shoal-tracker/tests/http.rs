//! The tracker over real TCP on 127.0.0.1: announces, scrapes, errors and HTTP framing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shoal_proto::tracker::{
    AnnounceEvent, AnnounceRequest, AnnounceResponse, ScrapeRequest, ScrapeResponse, TrackerError,
};
use shoal_proto::{InfoHash, PeerId};
use shoal_tracker::{Tracker, TrackerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

struct Harness {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Harness {
    async fn start(config: TrackerConfig) -> Harness {
        let tracker = Tracker::bind("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let addr = tracker.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tracker.run(async {
            let _ = stopped.await;
        }));
        Harness {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn client(&self) -> Client {
        Client {
            stream: TcpStream::connect(self.addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// One request on a fresh connection.
    async fn get(&self, target: &str) -> (u16, Vec<u8>) {
        self.client().await.get(target).await
    }

    async fn announce(&self, req: &AnnounceRequest) -> Result<AnnounceResponse, TrackerError> {
        let (status, body) = self.get(&format!("/announce?{}", req.to_query())).await;
        assert_eq!(status, 200);
        AnnounceResponse::parse(&body)
    }

    async fn scrape(&self, hashes: &[InfoHash]) -> ScrapeResponse {
        let q = ScrapeRequest {
            info_hashes: hashes.to_vec(),
        }
        .to_query();
        let (status, body) = self.get(&format!("/scrape?{q}")).await;
        assert_eq!(status, 200);
        ScrapeResponse::parse(&body).unwrap()
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        timeout(WAIT, task).await.unwrap().unwrap().unwrap();
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A keep-alive HTTP client reading `Content-Length`-framed responses.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).await.unwrap();
    }

    async fn get(&mut self, target: &str) -> (u16, Vec<u8>) {
        let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        self.send(req.as_bytes()).await;
        self.response().await.expect("response")
    }

    /// Reads one response; `None` if the server closed first.
    async fn response(&mut self) -> Option<(u16, Vec<u8>)> {
        timeout(WAIT, async {
            loop {
                if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                    let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
                    let status: u16 = head[9..12].parse().unwrap();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    let total = end + 4 + len;
                    while self.buf.len() < total {
                        if self.fill().await == 0 {
                            return None;
                        }
                    }
                    let body = self.buf[end + 4..total].to_vec();
                    self.buf.drain(..total);
                    return Some((status, body));
                }
                if self.fill().await == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("response timed out")
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// True once the server has closed the connection (after any pending bytes).
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        // EOF or a reset both mean closed; only a timeout means still open.
        timeout(WAIT, self.stream.read_to_end(&mut rest))
            .await
            .is_ok()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn req(hash: u8, peer: u8, port: u16, left: u64, event: AnnounceEvent) -> AnnounceRequest {
    let mut r = AnnounceRequest::new(InfoHash([hash; 20]), PeerId([peer; 20]), port);
    r.left = left;
    r.event = event;
    r
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn failure_text(body: &[u8]) -> String {
    match AnnounceResponse::parse(body) {
        Err(TrackerError::Failure(reason)) => reason,
        other => panic!("expected a failure reason, got {other:?}"),
    }
}

#[tokio::test]
async fn two_peers_see_each_other_compact_and_not() {
    let t = Harness::start(TrackerConfig::default()).await;
    let a = t
        .announce(&req(1, 1, 7001, 100, AnnounceEvent::Started))
        .await
        .unwrap();
    assert!(a.peers.is_empty());
    assert_eq!((a.complete, a.incomplete), (0, 1));
    assert_eq!(a.interval, 1800);
    assert_eq!(a.min_interval, Some(60));

    let b = t
        .announce(&req(1, 2, 7002, 100, AnnounceEvent::Started))
        .await
        .unwrap();
    assert_eq!(b.peers, vec![local(7001)]);
    assert_eq!((b.complete, b.incomplete), (0, 2));

    let mut again = req(1, 1, 7001, 100, AnnounceEvent::None);
    again.compact = false;
    let (status, body) = t.get(&format!("/announce?{}", again.to_query())).await;
    assert_eq!(status, 200);
    assert!(find(&body, b"5:peersld2:ip9:127.0.0.14:porti7002eee").is_some());
    assert_eq!(
        AnnounceResponse::parse(&body).unwrap().peers,
        vec![local(7002)]
    );
    t.shutdown().await;
}

#[tokio::test]
async fn counts_completion_stop_and_scrape() {
    let t = Harness::start(TrackerConfig::default()).await;
    let h = InfoHash([2; 20]);
    t.announce(&req(2, 1, 7001, 0, AnnounceEvent::Started))
        .await
        .unwrap();
    t.announce(&req(2, 2, 7002, 50, AnnounceEvent::Started))
        .await
        .unwrap();
    t.announce(&req(2, 3, 7003, 50, AnnounceEvent::Started))
        .await
        .unwrap();
    let r = t
        .announce(&req(2, 3, 7003, 0, AnnounceEvent::Completed))
        .await
        .unwrap();
    assert_eq!((r.complete, r.incomplete), (2, 1));
    // A seeder is only given leechers.
    assert_eq!(r.peers, vec![local(7002)]);

    let s = t.scrape(&[h, InfoHash([99; 20])]).await;
    assert_eq!(s.files.len(), 2);
    let stats = s.files.iter().find(|(x, _)| *x == h).unwrap().1;
    assert_eq!(
        (stats.complete, stats.downloaded, stats.incomplete),
        (2, 1, 1)
    );
    let unknown = s.files.iter().find(|(x, _)| *x != h).unwrap().1;
    assert_eq!(unknown.complete + unknown.incomplete, 0);

    let r = t
        .announce(&req(2, 2, 7002, 50, AnnounceEvent::Stopped))
        .await
        .unwrap();
    assert!(r.peers.is_empty());
    assert_eq!((r.complete, r.incomplete), (2, 0));
    let r = t
        .announce(&req(2, 4, 7004, 50, AnnounceEvent::Started))
        .await
        .unwrap();
    let mut peers = r.peers.clone();
    peers.sort();
    assert_eq!(peers, vec![local(7001), local(7003)]);

    // A full scrape lists every swarm.
    t.announce(&req(3, 1, 7001, 1, AnnounceEvent::Started))
        .await
        .unwrap();
    let all = t.scrape(&[]).await;
    assert_eq!(all.files.len(), 2);
    t.shutdown().await;
}

#[tokio::test]
async fn ip_param_is_honoured_from_loopback() {
    let t = Harness::start(TrackerConfig::default()).await;
    let mut a = req(4, 1, 7001, 1, AnnounceEvent::Started);
    a.ip = Some("10.9.8.7".parse().unwrap());
    t.announce(&a).await.unwrap();
    let b = t
        .announce(&req(4, 2, 7002, 1, AnnounceEvent::Started))
        .await
        .unwrap();
    assert_eq!(b.peers, vec!["10.9.8.7:7001".parse().unwrap()]);
    t.shutdown().await;
}

#[tokio::test]
async fn a_known_peer_id_from_another_ip_cannot_stop_or_move_the_peer() {
    let t = Harness::start(TrackerConfig {
        max_peers_per_swarm: 3,
        ..TrackerConfig::default()
    })
    .await;
    let at = |peer: u8, ip: &str, event| {
        let mut r = req(5, peer, 7000 + u16::from(peer), 1, event);
        r.ip = Some(ip.parse().unwrap());
        r
    };
    t.announce(&at(1, "10.0.0.1", AnnounceEvent::Started))
        .await
        .unwrap();
    // Same peer id from another address: stopping removes nothing, announcing adds a
    // second peer rather than moving the first.
    let forged = t
        .announce(&at(1, "10.6.6.6", AnnounceEvent::Stopped))
        .await
        .unwrap();
    assert_eq!(forged.incomplete, 1);
    let forged = t
        .announce(&at(1, "10.6.6.6", AnnounceEvent::Started))
        .await
        .unwrap();
    assert_eq!(forged.incomplete, 2);
    let watcher = t
        .announce(&at(2, "10.0.0.2", AnnounceEvent::Started))
        .await
        .unwrap();
    let mut peers = watcher.peers.clone();
    peers.sort();
    let want: Vec<SocketAddr> = vec![
        "10.0.0.1:7001".parse().unwrap(),
        "10.6.6.6:7001".parse().unwrap(),
    ];
    assert_eq!(peers, want);
    // The swarm is now full (3): a fourth peer is answered but not stored.
    let late = t
        .announce(&at(4, "10.0.0.4", AnnounceEvent::Started))
        .await
        .unwrap();
    assert_eq!((late.incomplete, late.peers.len()), (3, 3));
    assert_eq!(
        t.scrape(&[InfoHash([5; 20])]).await.files[0].1.incomplete,
        3
    );
    t.shutdown().await;
}

#[tokio::test]
async fn silent_peers_expire() {
    let t = Harness::start(TrackerConfig {
        interval: 1,
        peer_ttl: Some(1),
        ..TrackerConfig::default()
    })
    .await;
    let h = InfoHash([5; 20]);
    t.announce(&req(5, 1, 7001, 1, AnnounceEvent::Started))
        .await
        .unwrap();
    assert_eq!(t.scrape(&[h]).await.files[0].1.incomplete, 1);
    let started = Instant::now();
    loop {
        let s = t.scrape(&[h]).await;
        if s.files[0].1.incomplete == 0 {
            break;
        }
        assert!(started.elapsed() < WAIT, "peer never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The emptied swarm is gone from a full scrape too.
    assert!(t.scrape(&[]).await.files.is_empty());
    t.shutdown().await;
}

#[tokio::test]
async fn numwant_is_capped_and_defaulted() {
    let t = Harness::start(TrackerConfig {
        max_numwant: 5,
        default_numwant: 3,
        ..TrackerConfig::default()
    })
    .await;
    let mut c = t.client().await;
    for n in 1..=20u8 {
        let q = req(6, n, 7000 + u16::from(n), 1, AnnounceEvent::Started).to_query();
        let (status, _) = c.get(&format!("/announce?{q}")).await;
        assert_eq!(status, 200);
    }
    let mut r = req(6, 1, 7001, 1, AnnounceEvent::None);
    r.numwant = Some(100);
    let peers = t.announce(&r).await.unwrap().peers;
    assert_eq!(peers.len(), 5);
    assert!(!peers.contains(&local(7001)));
    r.numwant = None;
    assert_eq!(t.announce(&r).await.unwrap().peers.len(), 3);
    r.numwant = Some(0);
    assert_eq!(t.announce(&r).await.unwrap().peers.len(), 0);
    t.shutdown().await;
}

#[tokio::test]
async fn malformed_announces_get_failure_reasons_on_a_live_connection() {
    let t = Harness::start(TrackerConfig::default()).await;
    let good = req(7, 1, 7001, 1, AnnounceEvent::Started).to_query();
    let ih = format!("info_hash={}", "%01".repeat(20));
    let pid = format!("peer_id={}", "p".repeat(20));
    let cases = [
        (
            "info_hash=%01%02&peer_id=x&port=1&left=0".to_string(),
            "info_hash must be 20 bytes, got 2",
        ),
        (
            format!("{pid}&port=1&left=0"),
            "missing info_hash parameter",
        ),
        (format!("{ih}&{pid}&left=0"), "missing port parameter"),
        (format!("{ih}&{pid}&port=0&left=0"), "invalid port \"0\""),
        (
            format!("{ih}&{pid}&port=1&left=0&uploaded=lots"),
            "invalid uploaded \"lots\"",
        ),
        (format!("{ih}&{pid}&port=1&left=x"), "invalid left \"x\""),
        (
            format!("{ih}&{pid}&port=1&left=0&event=bogus"),
            "invalid event \"bogus\"",
        ),
        (
            format!("{ih}&{pid}&port=1&left=0&key=%Z"),
            "malformed percent-encoding",
        ),
        (String::new(), "missing info_hash parameter"),
    ];
    let mut c = t.client().await;
    for (query, want) in cases {
        let (status, body) = c.get(&format!("/announce?{query}")).await;
        assert_eq!(status, 200, "{query}");
        let reason = failure_text(&body);
        assert!(reason.contains(want), "{query}: {reason}");
    }
    let (status, body) = c.get("/scrape?info_hash=short").await;
    assert_eq!(status, 200);
    assert!(ScrapeResponse::parse(&body).is_err());
    // The same connection still serves good requests.
    let (status, body) = c.get(&format!("/announce?{good}")).await;
    assert_eq!(status, 200);
    assert_eq!(AnnounceResponse::parse(&body).unwrap().incomplete, 1);
    t.shutdown().await;
}

#[tokio::test]
async fn full_tracker_refuses_new_torrents() {
    let t = Harness::start(TrackerConfig {
        max_swarms: 1,
        ..TrackerConfig::default()
    })
    .await;
    t.announce(&req(8, 1, 7001, 1, AnnounceEvent::Started))
        .await
        .unwrap();
    match t
        .announce(&req(9, 1, 7001, 1, AnnounceEvent::Started))
        .await
    {
        Err(TrackerError::Failure(reason)) => assert!(reason.contains("tracker is full")),
        other => panic!("{other:?}"),
    }
    assert!(t
        .announce(&req(8, 2, 7002, 1, AnnounceEvent::None))
        .await
        .is_ok());
    t.shutdown().await;
}

#[tokio::test]
async fn keep_alive_and_pipelining() {
    let t = Harness::start(TrackerConfig::default()).await;
    let mut c = t.client().await;
    for n in 1..=5u8 {
        let q = req(10, n, 7000 + u16::from(n), 1, AnnounceEvent::None).to_query();
        let (status, body) = c.get(&format!("/announce?{q}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            AnnounceResponse::parse(&body).unwrap().incomplete,
            u32::from(n)
        );
    }
    // Three requests in one write, answered in order.
    let pipelined = "GET /scrape HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET /scrape HTTP/1.1\r\nConnection: close\r\n\r\n";
    c.send(pipelined.as_bytes()).await;
    assert_eq!(c.response().await.unwrap().0, 200);
    assert_eq!(c.response().await.unwrap().0, 404);
    let (status, body) = c.response().await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(ScrapeResponse::parse(&body).unwrap().files.len(), 1);
    assert!(c.closed().await);
    t.shutdown().await;
}

#[tokio::test]
async fn http_errors_and_connection_close() {
    let t = Harness::start(TrackerConfig {
        max_request_bytes: 1024,
        ..TrackerConfig::default()
    })
    .await;
    let (status, body) = t.get("/favicon.ico").await;
    assert_eq!(status, 404);
    assert!(body.starts_with(b"not found"));

    // Oversized request line: 414, then closed.
    let mut c = t.client().await;
    c.send(format!("GET /announce?{} HTTP/1.1\r\n\r\n", "a".repeat(2000)).as_bytes())
        .await;
    assert_eq!(c.response().await.unwrap().0, 414);
    assert!(c.closed().await);

    // Oversized headers: 431, then closed.
    let mut c = t.client().await;
    c.send(
        format!(
            "GET /scrape HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
            "b".repeat(2000)
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(c.response().await.unwrap().0, 431);
    assert!(c.closed().await);

    // Garbage and bodies: 400, then closed.
    for raw in [
        "BLAH\r\n\r\n",
        "GET /announce HTTP/9.9\r\n\r\n",
        "POST /announce HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
    ] {
        let mut c = t.client().await;
        c.send(raw.as_bytes()).await;
        assert_eq!(c.response().await.unwrap().0, 400, "{raw:?}");
        assert!(c.closed().await);
    }

    // Other methods: 405, connection kept.
    let mut c = t.client().await;
    c.send(b"HEAD /announce HTTP/1.1\r\n\r\n").await;
    assert_eq!(c.response().await.unwrap().0, 405);
    assert_eq!(c.get("/scrape").await.0, 200);

    // HTTP/1.0 closes unless asked to keep alive.
    let mut c = t.client().await;
    c.send(b"GET /scrape HTTP/1.0\r\n\r\n").await;
    assert_eq!(c.response().await.unwrap().0, 200);
    assert!(c.closed().await);

    // A client that disconnects mid-request does not disturb the tracker.
    let mut c = t.client().await;
    c.send(b"GET /announce?info_hash=").await;
    drop(c);

    // Still serving.
    let ok = t
        .announce(&req(11, 1, 7001, 1, AnnounceEvent::Started))
        .await;
    assert_eq!(ok.unwrap().incomplete, 1);
    t.shutdown().await;
}

#[tokio::test]
async fn serve_stops_on_shutdown() {
    let listener_addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(shoal_tracker::serve(
        listener_addr,
        TrackerConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let _ = stop.send(());
    timeout(WAIT, server).await.unwrap().unwrap().unwrap();

    let bad = TrackerConfig {
        interval: 0,
        ..TrackerConfig::default()
    };
    assert!(Tracker::bind(listener_addr, bad).await.is_err());
}
