//! The session's UDP endpoint: one socket on the peer port's number, shared by the DHT
//! and uTP, and, when the session listens on IPv6 too, a second socket on `[::]` with
//! the same port number for the IPv6 DHT (BEP 32) and uTP with IPv6 peers.
//!
//! The second socket is `IPV6_V6ONLY`, so it and the IPv4 socket can hold one port
//! number without clashing. [`UdpEndpoint::send_to`] picks the socket by the
//! destination's family, as the uTP endpoint does for its own sends. Both sockets are
//! read and routed alike.
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
//!
//! Receiving asks the kernel to coalesce datagrams (`UDP_GRO`, see [`offload`]): one
//! read may hold several datagrams of one sender and size, each routed on its own.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, Instrument};

pub(crate) mod offload;

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

/// The shared UDP socket(s); cheap to clone.
#[derive(Debug, Clone)]
pub struct UdpEndpoint {
    socket: Arc<UdpSocket>,
    /// The IPv6-only socket beside an IPv4 one (BEP 32), when bound.
    socket6: Option<Arc<UdpSocket>>,
}

impl UdpEndpoint {
    /// Binds `addr` (the peer listener's IP and port).
    pub async fn bind(addr: SocketAddr) -> io::Result<UdpEndpoint> {
        Ok(UdpEndpoint {
            socket: Arc::new(bind_socket(addr, false)?),
            socket6: None,
        })
    }

    /// Adds an IPv6-only socket on `[::]` with the first socket's port number.
    pub fn bind_v6(&mut self) -> io::Result<()> {
        let port = self.local_addr()?.port();
        let addr = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
        self.socket6 = Some(Arc::new(bind_socket(addr, true)?));
        Ok(())
    }

    /// The socket itself, for the uTP driver (which sends on it directly).
    pub fn socket(&self) -> Arc<UdpSocket> {
        self.socket.clone()
    }

    /// The IPv6 socket beside the first one, when bound: for the uTP driver.
    pub fn socket6(&self) -> Option<Arc<UdpSocket>> {
        self.socket6.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The IPv6 socket's address, when there is one beside the first socket.
    pub fn local_addr6(&self) -> Option<SocketAddr> {
        self.socket6.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Sends one datagram, over the IPv6 socket when `to` is IPv6 and there is one.
    pub async fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        match (&self.socket6, to) {
            (Some(s6), SocketAddr::V6(_)) => s6.send_to(buf, to).await,
            _ => self.socket.send_to(buf, to).await,
        }
    }

    /// Starts the receive task(s) on `tasks`; they stop on `cancel`.
    pub fn start_receiver(
        &self,
        routes: UdpRoutes,
        tasks: &TaskTracker,
        cancel: CancellationToken,
    ) {
        let port = self.local_addr().map(|a| a.port()).unwrap_or(0);
        if let Some(s6) = &self.socket6 {
            let span = tracing::info_span!("udp6", port);
            tasks.spawn(receive(s6.clone(), routes.clone(), cancel.clone()).instrument(span));
        }
        let socket = self.socket.clone();
        let span = tracing::info_span!("udp", port);
        tasks.spawn(receive(socket, routes, cancel).instrument(span));
    }
}

/// A nonblocking UDP socket on `addr` with large buffers; `v6_only` for the IPv6
/// socket beside an IPv4 one on the same port number.
fn bind_socket(addr: SocketAddr, v6_only: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if v6_only {
        socket.set_only_v6(true)?;
    }
    // Best effort: a smaller buffer than asked still works, only slower.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    let socket = UdpSocket::from_std(socket.into())?;
    // Best effort too: without it every datagram is a read of its own.
    offload::enable_gro(&socket);
    Ok(socket)
}

async fn receive(socket: Arc<UdpSocket>, routes: UdpRoutes, cancel: CancellationToken) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from, stride) = tokio::select! {
            r = offload::recv_from(&socket, &mut buf) => match r {
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
        // One copy for all the datagrams of a coalesced read; each is a slice of it.
        let all = Bytes::copy_from_slice(&buf[..n]);
        for range in offload::datagrams(n, stride) {
            let Some(&first) = all.get(range.start) else {
                continue;
            };
            let route = if first == b'd' {
                &routes.dht
            } else {
                &routes.utp
            };
            if let Some(tx) = route {
                if tx.try_send((from, all.slice(range))).is_err() {
                    debug!(%from, "udp: queue full or closed; datagram dropped");
                }
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

    /// The IPv6 socket shares the port number, is split between KRPC and uTP by first
    /// byte as the first socket is, and answers go out on the socket of the
    /// destination's family.
    #[tokio::test]
    async fn ipv6_socket_beside_ipv4_on_one_port() {
        let mut ep = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        if let Err(e) = ep.bind_v6() {
            eprintln!("skipped: no IPv6 on this host ({e})");
            return;
        }
        let port = ep.local_addr().unwrap().port();
        assert_eq!(ep.local_addr6().map(|a| a.port()), Some(port));
        let (dht_tx, mut dht_rx) = mpsc::channel(4);
        let (utp_tx, mut utp_rx) = mpsc::channel(4);
        let tasks = TaskTracker::new();
        let cancel = CancellationToken::new();
        let routes = UdpRoutes {
            dht: Some(dht_tx),
            utp: Some(utp_tx),
        };
        ep.start_receiver(routes, &tasks, cancel.clone());
        let other = UdpEndpoint::bind("[::1]:0".parse().unwrap()).await.unwrap();
        let to: SocketAddr = format!("[::1]:{port}").parse().unwrap();
        other.send_to(&[0x41, 0, 0, 0], to).await.unwrap();
        other.send_to(b"d1:y1:qe", to).await.unwrap();
        let (from, b) = dht_rx.recv().await.unwrap();
        assert_eq!(from, other.local_addr().unwrap());
        assert_eq!(&b[..], b"d1:y1:qe");
        let (from6, b) = utp_rx.recv().await.unwrap();
        assert_eq!((from6, &b[..]), (from, &[0x41, 0, 0, 0][..]));
        assert!(dht_rx.try_recv().is_err() && utp_rx.try_recv().is_err());
        ep.send_to(b"d1:y1:re", from).await.unwrap();
        let mut buf = [0u8; 16];
        let (n, seen) = other.socket().recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], seen), (&b"d1:y1:re"[..], to));
        cancel.cancel();
        tasks.close();
        tasks.wait().await;
    }
}
