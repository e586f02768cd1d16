//! Binding the session's sockets: the TCP listener and, unless uTP and the DHT are
//! both off, a UDP socket on the same IP and port number, then starting what reads
//! the UDP socket (the receiver routing by first byte, the uTP driver, the DHT).
//!
//! A port from the configured range, or one the system picks, is only taken when
//! both protocols get it, so peers reach us over TCP and uTP on one number.
//!
//! With a dual-stack listener (`[::]`, from the IPv4 wildcard), an IPv6-only UDP
//! socket on `[::]` and the same port number joins the endpoint, for the IPv6 DHT
//! (BEP 32) and uTP with IPv6 peers (accepted and dialled as over IPv4). It is best
//! effort: when that port is taken on IPv6, the node runs the DHT and uTP on IPv4
//! alone, dials IPv6 peers over TCP, and says so in the log.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use shoal_proto::utp::UtpConfig;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{SessionConfig, SessionError};
use crate::dht::DhtHandle;
use crate::udp::{UdpEndpoint, UdpRoutes};
use crate::utp::{UtpEndpoint, UtpSockets};

/// System-picked TCP ports tried before giving up when the same UDP port is taken.
const EPHEMERAL_TRIES: usize = 16;

fn listen_error(addr: SocketAddr) -> impl FnOnce(std::io::Error) -> SessionError {
    move |source| SessionError::Listen { addr, source }
}

/// Binds the listener and (with `want_udp`) the UDP socket on the same port number,
/// with an IPv6 one beside it for the DHT and uTP when the listener is dual-stack.
pub(super) async fn bind(
    config: &SessionConfig,
    want_udp: bool,
) -> Result<(TcpListener, Option<UdpEndpoint>), SessionError> {
    let (tcp, mut udp) = bind_pair(config, want_udp).await?;
    let dual_stack = tcp.local_addr().is_ok_and(|a| a.is_ipv6()) && config.listen.is_ipv4();
    if let (Some(udp), true) = (&mut udp, dual_stack) {
        if let Err(e) = udp.bind_v6() {
            tracing::warn!(
                "no IPv6 DHT or uTP (IPv6 peers get TCP): cannot bind UDP [::]:{}: {e}",
                tcp_port(&tcp)
            );
        }
    }
    Ok((tcp, udp))
}

fn tcp_port(tcp: &TcpListener) -> u16 {
    tcp.local_addr().map(|a| a.port()).unwrap_or(0)
}

/// The listener and the UDP socket of the configured family on one port number.
async fn bind_pair(
    config: &SessionConfig,
    want_udp: bool,
) -> Result<(TcpListener, Option<UdpEndpoint>), SessionError> {
    let listen = config.listen;
    if listen.port() != 0 {
        let tcp = bind_tcp(listen).await.map_err(listen_error(listen))?;
        if !want_udp {
            return Ok((tcp, None));
        }
        let udp = UdpEndpoint::bind(listen)
            .await
            .map_err(|source| SessionError::Udp {
                addr: listen,
                source,
            })?;
        return Ok((tcp, Some(udp)));
    }
    if let Some((lo, hi)) = config.port_range {
        for port in lo..=hi {
            let addr = SocketAddr::new(listen.ip(), port);
            let Ok(tcp) = bind_tcp(addr).await else {
                continue;
            };
            if !want_udp {
                return Ok((tcp, None));
            }
            if let Ok(udp) = UdpEndpoint::bind(addr).await {
                return Ok((tcp, Some(udp)));
            }
        }
    }
    let mut last = None;
    for _ in 0..EPHEMERAL_TRIES {
        let tcp = bind_tcp(listen).await.map_err(listen_error(listen))?;
        if !want_udp {
            return Ok((tcp, None));
        }
        // The port the system gave, on the configured IP (a dual-stack listener
        // reports `[::]`; UDP stays on the configured family).
        let port = tcp.local_addr().map_err(listen_error(listen))?.port();
        let addr = SocketAddr::new(listen.ip(), port);
        match UdpEndpoint::bind(addr).await {
            Ok(udp) => return Ok((tcp, Some(udp))),
            Err(e) => last = Some((addr, e)),
        }
    }
    let (addr, source) = last.unwrap_or_else(|| (listen, std::io::ErrorKind::AddrInUse.into()));
    Err(SessionError::Udp { addr, source })
}

/// Starts the UDP receiver and, as configured, the uTP driver and the DHT on
/// `tasks`; all stop on `cancel`.
pub(super) fn start_udp(
    config: &SessionConfig,
    endpoint: UdpEndpoint,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> (Option<DhtHandle>, Option<Arc<UtpEndpoint>>) {
    let mut routes = UdpRoutes::default();
    let dht_rx = config.dht.as_ref().map(|_| {
        let (tx, rx) = mpsc::channel(crate::dht::DATAGRAM_QUEUE);
        routes.dht = Some(tx);
        rx
    });
    let utp = config.utp.then(|| {
        let (tx, rx) = mpsc::channel(crate::utp::INCOMING_QUEUE);
        routes.utp = Some(tx);
        let sockets = UtpSockets::new(endpoint.socket()).with_v6(endpoint.socket6());
        Arc::new(UtpEndpoint::new(
            sockets,
            rx,
            UtpConfig::default(),
            tasks,
            cancel.clone(),
        ))
    });
    endpoint.start_receiver(routes, tasks, cancel.clone());
    let dht = match (config.dht.clone(), dht_rx) {
        (Some(c), Some(rx)) => Some(crate::dht::start(c, endpoint, rx, tasks, cancel.clone())),
        _ => None,
    };
    (dht, utp)
}

/// Binds a TCP listener on `addr`; the IPv4 wildcard listens on both stacks (`[::]`
/// with IPv4 mapped in) when the host has IPv6, so IPv6 peers reach us too.
async fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    if addr.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
        match bind_dual_stack(addr.port()) {
            Ok(l) => return Ok(l),
            Err(e) => tracing::debug!("no dual-stack listener on port {}: {e}", addr.port()),
        }
    }
    TcpListener::bind(addr).await
}

fn bind_dual_stack(port: u16) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    s.set_only_v6(false)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    let addr = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(std::net::TcpListener::from(s))
}
