//! Two endpoints on loopback UDP sockets: bulk transfers byte for byte (with a
//! throughput figure), both directions at once through `Transport::split`, and a
//! connect nobody answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shoal_proto::utp::{UtpConfig, UtpError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{spawn_socket_reader, UtpConnectError, UtpEndpoint, INCOMING_QUEUE};
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
        (
            UtpEndpoint::new(socket, rx, cfg, &self.tracker, self.cancel.clone()),
            addr,
        )
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
