//! Two endpoints on loopback UDP sockets: bulk transfers byte for byte (with a
//! throughput figure), both directions at once through `Transport::split`, and a
//! connect nobody answers. An endpoint with an IPv4 and an IPv6 socket against a bare
//! `shoal_proto` connection: each family's packets leave on that family's socket,
//! IPv6 ones with the smaller payload, dialled and accepted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shoal_proto::utp::{Connection, Packet, PacketType, UtpConfig, UtpError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{
    spawn_socket_reader, UtpConnectError, UtpEndpoint, UtpSockets, INCOMING_QUEUE,
    IPV6_EXTRA_HEADER,
};
use crate::peer::Transport;

struct Net {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Net {
    fn new() -> Self {
        Net {
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
        }
    }

    async fn endpoint(&self, cfg: UtpConfig) -> (UtpEndpoint, SocketAddr) {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        spawn_socket_reader(socket.clone(), tx, &self.tracker, self.cancel.clone());
        let sockets = UtpSockets::new(socket);
        (
            UtpEndpoint::new(sockets, rx, cfg, &self.tracker, self.cancel.clone()),
            addr,
        )
    }

    /// An endpoint on `127.0.0.1` and `[::1]` (as the session's, on two port numbers
    /// here), both sockets read into its one queue; `None` without IPv6.
    async fn dual_endpoint(&self) -> Option<(UtpEndpoint, SocketAddr, SocketAddr)> {
        let v6 = match UdpSocket::bind("[::1]:0").await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!("skipped: no IPv6 on this host ({e})");
                return None;
            }
        };
        let v4 = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let (a4, a6) = (v4.local_addr().unwrap(), v6.local_addr().unwrap());
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        spawn_socket_reader(v4.clone(), tx.clone(), &self.tracker, self.cancel.clone());
        spawn_socket_reader(v6.clone(), tx, &self.tracker, self.cancel.clone());
        let sockets = UtpSockets::new(v4).with_v6(Some(v6));
        let ep = UtpEndpoint::new(
            sockets,
            rx,
            UtpConfig::default(),
            &self.tracker,
            self.cancel.clone(),
        );
        Some((ep, a4, a6))
    }

    /// Cancels every task and checks they all end.
    async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.close();
        timeout(Duration::from_secs(5), self.tracker.wait())
            .await
            .expect("tasks end on cancel");
    }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_transfer_20mb() {
    let net = Net::new();
    let (a, _) = net.endpoint(UtpConfig::default()).await;
    let (b, b_addr) = net.endpoint(UtpConfig::default()).await;
    let sent = Arc::new(data(20 << 20, 1));
    let server = tokio::spawn(async move {
        let (mut s, from) = b.accept().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        (got, from)
    });
    let mut c = timeout(Duration::from_secs(10), a.connect(b_addr))
        .await
        .unwrap()
        .unwrap();
    let start = Instant::now();
    c.write_all(&sent).await.unwrap();
    c.shutdown().await.unwrap();
    let (got, _) = timeout(Duration::from_secs(120), server)
        .await
        .unwrap()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(
        got == *sent,
        "{} of {} bytes, or different",
        got.len(),
        sent.len()
    );
    let st = c.stats();
    eprintln!(
        "uTP loopback: 20 MiB in {secs:.2} s = {:.1} MB/s; cwnd {}, rtt {:?}, retransmits {}, timeouts {}",
        got.len() as f64 / 1e6 / secs,
        st.cwnd,
        st.rtt,
        st.retransmits,
        st.timeouts
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_directions_through_transport_halves() {
    let net = Net::new();
    let (a, _) = net.endpoint(UtpConfig::default()).await;
    let (b, b_addr) = net.endpoint(UtpConfig::default()).await;
    let (da, db) = (Arc::new(data(3 << 20, 2)), Arc::new(data(3 << 20, 3)));
    async fn exchange<T: Transport>(s: T, mine: Arc<Vec<u8>>) -> Vec<u8> {
        let (mut r, mut w) = s.split();
        let writer = tokio::spawn(async move {
            w.write_all(&mine).await.unwrap();
            w.shutdown().await.unwrap();
            w // dropping the half would close it; keep it until the reader is done
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        drop(writer.await.unwrap());
        got
    }
    let db2 = db.clone();
    let server = tokio::spawn(async move {
        let (s, _) = b.accept().await.unwrap();
        exchange(s, db2).await
    });
    let c = a.connect(b_addr).await.unwrap();
    let got_a = timeout(Duration::from_secs(60), exchange(c, da.clone()))
        .await
        .unwrap();
    let got_b = timeout(Duration::from_secs(60), server)
        .await
        .unwrap()
        .unwrap();
    assert!(got_a == *db && got_b == *da);
    net.shutdown().await;
}

#[tokio::test]
async fn connect_to_a_silent_socket_times_out() {
    let net = Net::new();
    let cfg = UtpConfig {
        initial_rto: Duration::from_millis(50),
        syn_retries: 2,
        ..UtpConfig::default()
    };
    let (a, _) = net.endpoint(cfg).await;
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let r = timeout(
        Duration::from_secs(5),
        a.connect(silent.local_addr().unwrap()),
    )
    .await
    .unwrap();
    assert!(
        matches!(
            r,
            Err(UtpConnectError::Connection(UtpError::ConnectTimedOut))
        ),
        "{r:?}"
    );
    net.shutdown().await;
}

#[tokio::test]
async fn stray_packets_get_a_reset_and_shutdown_ends_streams() {
    let net = Net::new();
    let (a, _) = net.endpoint(UtpConfig::default()).await;
    let (b, b_addr) = net.endpoint(UtpConfig::default()).await;
    let accept = tokio::spawn(async move { b.accept().await });
    let mut c = a.connect(b_addr).await.unwrap();
    let (mut s, _) = accept.await.unwrap().unwrap();
    c.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    // A data packet for a connection the endpoint does not know: answered by a RESET.
    let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut stray = vec![0x01, 0, 0x12, 0x34];
    stray.resize(24, 0);
    probe.send_to(&stray, b_addr).await.unwrap();
    let mut reply = [0u8; 64];
    let (n, _) = timeout(Duration::from_secs(5), probe.recv_from(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((n, reply[0], &reply[2..4]), (20, 0x31, &[0x12, 0x34][..]));
    net.shutdown().await;
    let e = timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap();
    assert!(e.is_err(), "{e:?}");
}

/// A bare `shoal_proto` connection on its own socket at `ip`, driven by hand.
struct BarePeer {
    socket: UdpSocket,
    conn: Option<Connection>,
}

impl BarePeer {
    async fn bind(ip: &str) -> Self {
        let socket = UdpSocket::bind(format!("{ip}:0")).await.unwrap();
        BarePeer { socket, conn: None }
    }

    async fn recv(&self) -> (Vec<u8>, SocketAddr) {
        let mut buf = vec![0u8; 64 * 1024];
        let (n, from) = timeout(Duration::from_secs(10), self.socket.recv_from(&mut buf))
            .await
            .expect("a packet within 10 s")
            .unwrap();
        buf.truncate(n);
        (buf, from)
    }

    async fn flush(&mut self, to: SocketAddr) {
        let conn = self.conn.as_mut().unwrap();
        while let Some(p) = conn.poll_transmit(std::time::Instant::now()) {
            self.socket.send_to(&p, to).await.unwrap();
        }
    }

    /// Feeds what arrives to the connection until a DATA packet comes; its payload
    /// length and the address it came from.
    async fn first_data(&mut self) -> (usize, SocketAddr) {
        loop {
            let (bytes, from) = self.recv().await;
            let p = Packet::decode(&bytes).unwrap();
            if p.header.kind == PacketType::Data {
                return (p.payload.len(), from);
            }
            let conn = self.conn.as_mut().unwrap();
            conn.handle_packet(std::time::Instant::now(), &bytes);
            self.flush(from).await;
        }
    }
}

/// The endpoint dials a bare peer at `ip` and writes; returns the first DATA payload
/// and where the SYN and the data came from.
async fn dialled_payload(ep: Arc<UtpEndpoint>, ip: &str) -> (usize, SocketAddr, SocketAddr) {
    let mut peer = BarePeer::bind(ip).await;
    let to = peer.socket.local_addr().unwrap();
    let writer = tokio::spawn(async move {
        let mut s = ep.connect(to).await.unwrap();
        s.write_all(&data(64 * 1024, 4)).await.unwrap();
        s // kept open until the packet was seen
    });
    let (syn, syn_from) = peer.recv().await;
    let now = std::time::Instant::now();
    peer.conn = Some(Connection::accept(UtpConfig::default(), now, &syn, 77).unwrap());
    peer.flush(syn_from).await;
    let (len, data_from) = peer.first_data().await;
    drop(writer.await.unwrap());
    (len, syn_from, data_from)
}

/// A bare peer at `ip` dials the endpoint at `to`, which accepts and writes; returns
/// the first DATA payload and where it came from.
async fn accepted_payload(ep: Arc<UtpEndpoint>, ip: &str, to: SocketAddr) -> (usize, SocketAddr) {
    let mut peer = BarePeer::bind(ip).await;
    let writer = tokio::spawn(async move {
        let (mut s, _) = ep.accept().await.unwrap();
        s.write_all(&data(64 * 1024, 5)).await.unwrap();
        s
    });
    let now = std::time::Instant::now();
    peer.conn = Some(Connection::connect(UtpConfig::default(), now, 4242));
    peer.flush(to).await;
    let got = peer.first_data().await;
    drop(writer.await.unwrap());
    got
}

#[tokio::test]
async fn each_family_on_its_socket_ipv6_with_a_smaller_payload() {
    let net = Net::new();
    let Some((ep, a4, a6)) = net.dual_endpoint().await else {
        return;
    };
    let ep = Arc::new(ep);
    let full = UtpConfig::default().max_payload;
    let v6 = full - IPV6_EXTRA_HEADER;
    assert!(ep.reaches(&"[::1]:1".parse().unwrap()) && ep.reaches(&a4));

    let (len, syn_from, data_from) = dialled_payload(ep.clone(), "127.0.0.1").await;
    assert_eq!(
        (len, syn_from, data_from),
        (full, a4, a4),
        "dialled over IPv4"
    );
    let (len, syn_from, data_from) = dialled_payload(ep.clone(), "[::1]").await;
    assert_eq!(
        (len, syn_from, data_from),
        (v6, a6, a6),
        "dialled over IPv6"
    );

    assert_eq!(
        accepted_payload(ep.clone(), "127.0.0.1", a4).await,
        (full, a4)
    );
    assert_eq!(accepted_payload(ep.clone(), "[::1]", a6).await, (v6, a6));
    net.shutdown().await;
}

#[tokio::test]
async fn an_ipv4_endpoint_does_not_reach_ipv6() {
    let net = Net::new();
    let (ep, a4) = net.endpoint(UtpConfig::default()).await;
    assert!(ep.reaches(&a4));
    assert!(ep.reaches(&"[::ffff:127.0.0.1]:1".parse().unwrap()));
    assert!(!ep.reaches(&"[::1]:1".parse().unwrap()));
    net.shutdown().await;
}
