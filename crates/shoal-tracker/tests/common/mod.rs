//! Helpers for the catalog and UDP suites: a tracker on 127.0.0.1 port 0, a one-shot
//! HTTP client, a UDP client and `.torrent` builders.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use shoal_proto::metainfo::InfoBuilder;
use shoal_proto::udp_tracker::{Request, Response};
use shoal_tracker::{Tracker, TrackerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

pub const WAIT: Duration = Duration::from_secs(10);

/// A running tracker; aborted on drop, stopped cleanly by [`Running::shutdown`].
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub async fn start(config: TrackerConfig) -> Running {
        Self::start_on("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap()
    }

    pub async fn start_on(bind: SocketAddr, config: TrackerConfig) -> std::io::Result<Running> {
        let tracker = Tracker::bind(bind, config).await?;
        let addr = tracker.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tracker.run(async {
            let _ = stopped.await;
        }));
        Ok(Running {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        timeout(WAIT, task).await.unwrap().unwrap().unwrap();
    }

    /// One request on a fresh connection: (status, headers, body).
    pub async fn request(&self, method: &str, target: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        let mut raw = format!(
            "{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        self.raw(&raw).await
    }

    pub async fn get(&self, target: &str) -> (u16, String, Vec<u8>) {
        self.request("GET", target, b"").await
    }

    /// Sends raw bytes and reads until the server closes.
    pub async fn raw(&self, raw: &[u8]) -> (u16, String, Vec<u8>) {
        timeout(WAIT, async {
            let mut s = TcpStream::connect(self.addr).await.unwrap();
            // The server may close before reading everything (413): ignore write errors.
            let _ = s.write_all(raw).await;
            let mut reply = Vec::new();
            let _ = s.read_to_end(&mut reply).await;
            let end = reply
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("response head");
            let head = String::from_utf8(reply[..end].to_vec()).unwrap();
            let status = head[9..12].parse().unwrap();
            (status, head, reply[end + 4..].to_vec())
        })
        .await
        .expect("HTTP request timed out")
    }

    pub async fn json(&self, target: &str) -> serde_json::Value {
        let (status, _, body) = self.get(target).await;
        assert_eq!(status, 200, "{target}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A UDP tracker client socket.
pub struct UdpClient {
    pub socket: UdpSocket,
    pub tracker: SocketAddr,
}

impl UdpClient {
    pub async fn new(tracker: SocketAddr) -> UdpClient {
        let any: SocketAddr = if tracker.is_ipv6() {
            "[::1]:0".parse().unwrap()
        } else {
            "127.0.0.1:0".parse().unwrap()
        };
        UdpClient {
            socket: UdpSocket::bind(any).await.unwrap(),
            tracker,
        }
    }

    pub async fn send_raw(&self, b: &[u8]) {
        self.socket.send_to(b, self.tracker).await.unwrap();
    }

    /// The next datagram, or `None` after `wait`.
    pub async fn recv(&self, wait: Duration) -> Option<Response> {
        let mut buf = vec![0u8; 4096];
        let (n, _) = timeout(wait, self.socket.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        Some(Response::parse(&buf[..n], self.tracker.is_ipv6()).unwrap())
    }

    pub async fn ask(&self, req: &Request) -> Response {
        let mut b = Vec::new();
        req.write(&mut b);
        self.send_raw(&b).await;
        self.recv(WAIT).await.expect("UDP reply")
    }

    pub async fn connect(&self) -> u64 {
        match self.ask(&Request::Connect { transaction_id: 77 }).await {
            Response::Connect {
                transaction_id: 77,
                connection_id,
            } => connection_id,
            other => panic!("{other:?}"),
        }
    }
}

/// A multi-file `.torrent` (piece hashes are zeros: fine for a tracker).
pub fn torrent(name: &str, files: &[(&str, u64)], private: bool) -> Vec<u8> {
    let info = InfoBuilder {
        name: name.into(),
        piece_length: 16384,
        files: files
            .iter()
            .map(|(p, l)| (p.split('/').map(String::from).collect(), *l))
            .collect(),
        single_file: false,
        private,
    };
    let total: u64 = files.iter().map(|f| f.1).sum();
    let pieces = vec![[0u8; 20]; total.div_ceil(16384).max(1) as usize];
    let announce = "http://127.0.0.1:1/announce";
    let mut out = format!("d8:announce{}:{announce}4:info", announce.len()).into_bytes();
    out.extend_from_slice(&info.encode(&pieces));
    out.push(b'e');
    out
}
