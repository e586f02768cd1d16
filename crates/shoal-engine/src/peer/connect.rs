//! Opening a connection to a peer: uTP first, then TCP, as libtorrent does, but
//! without libtorrent's 3 s wait for a peer that ignores uTP.
//!
//! With a uTP endpoint, a dial sends a uTP SYN and gives it [`UTP_HEAD_START`] alone;
//! refused (`ST_RESET`) in that time, it connects over TCP at once; unanswered, it
//! also dials TCP and the first transport to connect wins (the other attempt is
//! dropped), uTP keeping its chance until [`UTP_CONNECT_TIMEOUT`]. Both need one
//! round trip, so a peer that answers uTP within the head start still gets uTP; a
//! TCP-only peer that drops the SYN silently (libtorrent with uTP off, most
//! firewalls) costs the head start, not the full timeout (which made the first
//! byte of a stream from such a seeder 3 s late). The transport that worked is
//! remembered per address ([`MAX_REMEMBERED`] addresses, the memory forgotten at
//! once when full), so later dials to a TCP peer go straight to TCP. Without an
//! endpoint (uTP off) every dial is TCP, and so is a dial to an address family the
//! endpoint has no socket for (IPv6 when the IPv6 UDP socket could not be bound).
//! The connector is shared by the session's torrents.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tracing::debug;

use super::handshake::HANDSHAKE_TIMEOUT;
use super::{PeerError, PeerStream, TransportKind};
use crate::utp::UtpEndpoint;

/// How long a uTP SYN may go unanswered before the uTP attempt is given up
/// (libtorrent's default); TCP is dialled much earlier, see [`UTP_HEAD_START`].
pub const UTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a uTP SYN goes alone before TCP is dialled beside it. Both attempts
/// travel the same path, so the head start need not cover the round trip (unlike
/// RFC 8305's 250 ms between address families), only the time the peer's client,
/// not its kernel as for TCP, takes to answer the SYN: a few ms for a healthy one.
/// Each ms of it is a ms of delay to a TCP-only peer's first byte (once per address).
pub const UTP_HEAD_START: Duration = Duration::from_millis(20);
/// Addresses whose working transport is remembered.
pub const MAX_REMEMBERED: usize = 4096;

/// Opens peer connections over uTP or TCP; cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Connector {
    utp: Option<Arc<UtpEndpoint>>,
    /// The transport that last connected, per address.
    worked: Mutex<HashMap<SocketAddr, TransportKind>>,
}

impl Connector {
    /// A connector trying `utp` first when given, TCP only otherwise.
    pub fn new(utp: Option<Arc<UtpEndpoint>>) -> Connector {
        Connector {
            utp,
            worked: Mutex::new(HashMap::new()),
        }
    }

    /// The transport that last connected to `addr`, if remembered.
    pub fn remembered(&self, addr: &SocketAddr) -> Option<TransportKind> {
        self.lock().get(addr).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, TransportKind>> {
        self.worked.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, addr: SocketAddr, kind: TransportKind) {
        let mut map = self.lock();
        if map.len() >= MAX_REMEMBERED && !map.contains_key(&addr) {
            map.clear();
        }
        map.insert(addr, kind);
    }

    /// Connects to `addr`: uTP first (unless TCP is what worked last time or the
    /// endpoint cannot reach `addr`'s family), TCP beside it once uTP's head start
    /// passed or at once if uTP failed.
    pub async fn connect(&self, addr: SocketAddr) -> Result<PeerStream, PeerError> {
        let utp = match &self.utp {
            Some(u) if u.reaches(&addr) && self.remembered(&addr) != Some(TransportKind::Tcp) => u,
            _ => return self.connect_tcp(addr).await,
        };
        let utp_try = tokio::time::timeout(UTP_CONNECT_TIMEOUT, utp.connect(addr));
        tokio::pin!(utp_try);
        tokio::select! {
            r = &mut utp_try => {
                match r {
                    Ok(Ok(s)) => return Ok(self.utp_won(addr, s)),
                    Ok(Err(e)) => debug!(%addr, "uTP connect failed: {e}; trying TCP"),
                    Err(_) => debug!(%addr, "uTP connect unanswered; trying TCP"),
                }
                return self.connect_tcp(addr).await;
            }
            _ = tokio::time::sleep(UTP_HEAD_START) => {}
        }
        // Both at once: the first to connect wins. A TCP failure waits for uTP's answer.
        let tcp_try = self.connect_tcp(addr);
        tokio::pin!(tcp_try);
        let mut tcp_failed = None;
        loop {
            tokio::select! {
                r = &mut utp_try => {
                    match r {
                        Ok(Ok(s)) => return Ok(self.utp_won(addr, s)),
                        Ok(Err(e)) => debug!(%addr, "uTP connect failed: {e}"),
                        Err(_) => debug!(%addr, "uTP connect unanswered"),
                    }
                    return match tcp_failed {
                        Some(e) => Err(e),
                        None => tcp_try.await,
                    };
                }
                r = &mut tcp_try, if tcp_failed.is_none() => match r {
                    Ok(s) => return Ok(s),
                    Err(e) => tcp_failed = Some(e),
                },
            }
        }
    }

    fn utp_won(&self, addr: SocketAddr, s: crate::utp::UtpStream) -> PeerStream {
        self.remember(addr, TransportKind::Utp);
        PeerStream::Utp(s)
    }

    /// Connects over TCP; remembers it as `addr`'s transport when uTP is on.
    async fn connect_tcp(&self, addr: SocketAddr) -> Result<PeerStream, PeerError> {
        let s = match tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(PeerError::Timeout("connect")),
        };
        if self.utp.is_some() {
            self.remember(addr, TransportKind::Tcp);
        }
        Ok(PeerStream::Tcp(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_bounded() {
        let c = Connector::new(None);
        for i in 0..(MAX_REMEMBERED + 10) {
            let addr = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6881));
            c.remember(addr, TransportKind::Tcp);
            assert!(c.lock().len() <= MAX_REMEMBERED);
        }
    }

    #[tokio::test]
    async fn tcp_only_without_endpoint() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let c = Connector::new(None);
        let s = c.connect(addr).await.unwrap();
        assert!(matches!(s, PeerStream::Tcp(_)));
        assert_eq!(c.remembered(&addr), None);
    }

    use std::time::Instant;

    use shoal_proto::utp::UtpConfig;
    use tokio::net::{TcpListener, UdpSocket};
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use crate::utp::{spawn_socket_reader, UtpSockets, INCOMING_QUEUE};

    /// A uTP endpoint on a loopback socket of its own.
    fn utp_endpoint(socket: UdpSocket, t: &TaskTracker, c: &CancellationToken) -> Arc<UtpEndpoint> {
        dual_endpoint(socket, None, t, c)
    }

    /// A uTP endpoint on `socket` and, beside it, the IPv6 socket `v6`.
    fn dual_endpoint(
        socket: UdpSocket,
        v6: Option<UdpSocket>,
        t: &TaskTracker,
        c: &CancellationToken,
    ) -> Arc<UtpEndpoint> {
        let (socket, v6) = (Arc::new(socket), v6.map(Arc::new));
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        spawn_socket_reader(socket.clone(), tx.clone(), t, c.clone());
        if let Some(v6) = &v6 {
            spawn_socket_reader(v6.clone(), tx, t, c.clone());
        }
        Arc::new(UtpEndpoint::new(
            UtpSockets::new(socket).with_v6(v6),
            rx,
            UtpConfig::default(),
            t,
            c.clone(),
        ))
    }

    /// A TCP listener and a UDP socket on the same loopback port.
    async fn tcp_and_udp() -> (TcpListener, UdpSocket, SocketAddr) {
        tcp_and_udp_on("127.0.0.1:0").await
    }

    async fn tcp_and_udp_on(any_port: &str) -> (TcpListener, UdpSocket, SocketAddr) {
        loop {
            let l = TcpListener::bind(any_port).await.unwrap();
            let addr = l.local_addr().unwrap();
            if let Ok(u) = UdpSocket::bind(addr).await {
                return (l, u, addr);
            }
        }
    }

    #[tokio::test]
    async fn peer_ignoring_utp_costs_the_head_start_not_the_timeout() {
        let (t, c) = (TaskTracker::new(), CancellationToken::new());
        let ours = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let conn = Connector::new(Some(utp_endpoint(ours, &t, &c)));
        // TCP-only, and its UDP socket reads nothing: SYNs vanish without a reset,
        // as with libtorrent with uTP off.
        let (l, _silent, addr) = tcp_and_udp().await;
        let accept = tokio::spawn(async move { l.accept().await.map(|_| ()) });
        let start = Instant::now();
        let s = conn.connect(addr).await.unwrap();
        let took = start.elapsed();
        assert!(matches!(s, PeerStream::Tcp(_)));
        assert!(
            took >= UTP_HEAD_START,
            "TCP before uTP's head start: {took:?}"
        );
        assert!(
            took < UTP_CONNECT_TIMEOUT,
            "waited for uTP's timeout: {took:?}"
        );
        assert_eq!(conn.remembered(&addr), Some(TransportKind::Tcp));
        accept.await.unwrap().unwrap();
        c.cancel();
    }

    #[tokio::test]
    async fn utp_peer_gets_utp_when_tcp_is_refused() {
        let (t, c) = (TaskTracker::new(), CancellationToken::new());
        let ours = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let conn = Connector::new(Some(utp_endpoint(ours, &t, &c)));
        // uTP only, and late: the TCP port is closed, so the TCP attempt made after
        // the head start fails at once, and the dial must still wait for uTP, whose
        // SYN waits in the peer's socket until its endpoint starts.
        let (l, theirs, addr) = tcp_and_udp().await;
        drop(l);
        let (t2, c2) = (t.clone(), c.clone());
        let accept = tokio::spawn(async move {
            tokio::time::sleep(UTP_HEAD_START * 3).await;
            let peer = utp_endpoint(theirs, &t2, &c2);
            peer.accept().await.map(|_| ())
        });
        let s = conn.connect(addr).await.unwrap();
        assert!(matches!(s, PeerStream::Utp(_)));
        assert_eq!(conn.remembered(&addr), Some(TransportKind::Utp));
        accept.await.unwrap().unwrap();
        c.cancel();
    }

    /// The IPv6 twin of the test above: the dial goes out on the endpoint's IPv6
    /// socket and gets uTP.
    #[tokio::test]
    async fn ipv6_peer_gets_utp_over_the_ipv6_socket() {
        let Ok(ours6) = UdpSocket::bind("[::1]:0").await else {
            eprintln!("skipped: no IPv6 on this host");
            return;
        };
        let (t, c) = (TaskTracker::new(), CancellationToken::new());
        let ours = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let conn = Connector::new(Some(dual_endpoint(ours, Some(ours6), &t, &c)));
        let (l, theirs, addr) = tcp_and_udp_on("[::1]:0").await;
        drop(l);
        let peer = utp_endpoint(theirs, &t, &c);
        let accept = tokio::spawn(async move { peer.accept().await.map(|(_, from)| from) });
        let s = conn.connect(addr).await.unwrap();
        assert!(matches!(&s, PeerStream::Utp(u) if u.peer_addr() == addr));
        assert_eq!(conn.remembered(&addr), Some(TransportKind::Utp));
        let from = accept.await.unwrap().unwrap();
        assert!(from.is_ipv6(), "{from}");
        c.cancel();
    }

    /// Without an IPv6 socket, an IPv6 peer is dialled over TCP (even one that
    /// would answer uTP).
    #[tokio::test]
    async fn ipv6_peer_gets_tcp_without_an_ipv6_socket() {
        if UdpSocket::bind("[::1]:0").await.is_err() {
            eprintln!("skipped: no IPv6 on this host");
            return;
        }
        let (t, c) = (TaskTracker::new(), CancellationToken::new());
        let ours = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let conn = Connector::new(Some(utp_endpoint(ours, &t, &c)));
        let (l, theirs, addr) = tcp_and_udp_on("[::1]:0").await;
        let _peer = utp_endpoint(theirs, &t, &c);
        let accept = tokio::spawn(async move { l.accept().await.map(|_| ()) });
        let s = conn.connect(addr).await.unwrap();
        assert!(matches!(s, PeerStream::Tcp(_)));
        accept.await.unwrap().unwrap();
        c.cancel();
    }
}
