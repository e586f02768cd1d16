//! The session's UDP endpoint: one socket on the peer port's number, shared by the DHT
//! and uTP.
//!
//! One receive task reads every datagram and routes it by its first byte: `d` (a
//! bencoded dictionary: KRPC, BEP 5) to the DHT's channel, anything else to the uTP
//! channel. uTP packets start with a version/type byte (`0x01`, `0x11`, `0x21`, `0x31`,
//! `0x41`), never `d`, so the split is exact. Channels are bounded: a datagram that
//! finds its channel full is dropped, as the network might have dropped it, so a flood
//! cannot grow our memory. A route left `None` (DHT or uTP off) drops its datagrams.
//!
//! The socket asks for [`SOCKET_BUFFER`] bytes of kernel buffer each way: uTP sends
//! and receives a window of ~1400-byte datagrams in bursts, which the default
//! (~200 KiB) drops under load, and every drop costs uTP a halved window.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, Instrument};

/// Largest datagram read: the UDP maximum, so nothing is cut short.
const MAX_DATAGRAM: usize = 65_536;
/// Kernel send and receive buffer asked for (the kernel may cap it, `rmem_max`).
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Where received datagrams go, by protocol.
#[derive(Debug, Default, Clone)]
pub struct UdpRoutes {
    /// KRPC (first byte `d`): the DHT driver.
    pub dht: Option<mpsc::Sender<(SocketAddr, Bytes)>>,
    /// Everything else: the uTP driver, when uTP is on.
    pub utp: Option<mpsc::Sender<(SocketAddr, Bytes)>>,
}

/// The shared UDP socket; cheap to clone.
#[derive(Debug, Clone)]
pub struct UdpEndpoint {
    socket: Arc<UdpSocket>,
}

impl UdpEndpoint {
    /// Binds `addr` (the peer listener's IP and port).
    pub async fn bind(addr: SocketAddr) -> io::Result<UdpEndpoint> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        // Best effort: a smaller buffer than asked still works, only slower.
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.bind(&addr.into())?;
        socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(socket.into())?;
        Ok(UdpEndpoint {
            socket: Arc::new(socket),
        })
    }

    /// The socket itself, for the uTP driver (which sends on it directly).
    pub fn socket(&self) -> Arc<UdpSocket> {
        self.socket.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends one datagram.
    pub async fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.socket.send_to(buf, to).await
    }

    /// Starts the receive task on `tasks`; it stops on `cancel`.
    pub fn start_receiver(
        &self,
        routes: UdpRoutes,
        tasks: &TaskTracker,
        cancel: CancellationToken,
    ) {
        let socket = self.socket.clone();
        let port = self.local_addr().map(|a| a.port()).unwrap_or(0);
        let span = tracing::info_span!("udp", port);
        tasks.spawn(receive(socket, routes, cancel).instrument(span));
    }
}

async fn receive(socket: Arc<UdpSocket>, routes: UdpRoutes, cancel: CancellationToken) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors of earlier sends (port unreachable) surface here on
                // some systems; they concern one peer, not the socket.
                Err(e) => {
                    debug!("udp receive: {e}");
                    continue;
                }
            },
            () = cancel.cancelled() => return,
        };
        let Some(&first) = buf.get(..n).and_then(|b| b.first()) else {
            continue;
        };
        let route = if first == b'd' {
            &routes.dht
        } else {
            &routes.utp
        };
        if let Some(tx) = route {
            if tx
                .try_send((from, Bytes::copy_from_slice(&buf[..n])))
                .is_err()
            {
                debug!(%from, "udp: queue full or closed; datagram dropped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn routes_by_first_byte() {
        let ep = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (dht_tx, mut dht_rx) = mpsc::channel(4);
        let (utp_tx, mut utp_rx) = mpsc::channel(4);
        let tasks = TaskTracker::new();
        let cancel = CancellationToken::new();
        let routes = UdpRoutes {
            dht: Some(dht_tx),
            utp: Some(utp_tx),
        };
        ep.start_receiver(routes, &tasks, cancel.clone());
        let other = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let to = ep.local_addr().unwrap();
        other.send_to(b"d1:y1:qe", to).await.unwrap();
        other.send_to(&[0x41, 0, 0, 0], to).await.unwrap();
        let (from, b) = dht_rx.recv().await.unwrap();
        assert_eq!(
            (from, &b[..]),
            (other.local_addr().unwrap(), &b"d1:y1:qe"[..])
        );
        assert_eq!(&utp_rx.recv().await.unwrap().1[..], &[0x41, 0, 0, 0]);
        cancel.cancel();
        tasks.close();
        tasks.wait().await;
    }
}
