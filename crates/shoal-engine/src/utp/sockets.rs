//! [`UtpSockets`]: the UDP sockets one uTP endpoint sends on, one per address family
//! at most, and the packet size each family gets.
//!
//! The session's endpoint sends on the peer port's socket (IPv4 unless the node is
//! bound to an IPv6 address) and, when it could be bound, on the IPv6-only socket on
//! `[::]` beside it (`crate::udp`). A datagram goes out on the socket of its
//! destination's family; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) counts as
//! IPv4, as that is what goes on the wire. With no socket of a destination's family
//! the endpoint cannot reach it ([`UtpSockets::reaches`]), and the connector dials
//! that peer over TCP at once.
//!
//! Packet size: the IPv6 header is 40 bytes to IPv4's 20, so a connection to an IPv6
//! peer carries [`IPV6_EXTRA_HEADER`] fewer payload bytes per packet than the
//! configured `max_payload`, and its IP packets are as large as an IPv4 connection's:
//! within the same path MTU (IPv6 routers never fragment; a packet over the path MTU
//! is dropped).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use shoal_proto::utp::UtpConfig;
use tokio::net::UdpSocket;

/// How much larger the IPv6 header is than the IPv4 one (40 against 20 bytes,
/// without options).
pub const IPV6_EXTRA_HEADER: usize = 20;

/// The sockets of one endpoint; cheap to clone.
#[derive(Debug, Clone)]
pub struct UtpSockets {
    /// The first socket, of either family.
    primary: Arc<UdpSocket>,
    primary_v6: bool,
    /// The primary is an IPv6 wildcard socket that takes IPv4 too (not `IPV6_V6ONLY`).
    primary_dual: bool,
    /// An IPv6 socket beside an IPv4 primary.
    v6: Option<Arc<UdpSocket>>,
}

impl UtpSockets {
    /// One socket, of the family it is bound to.
    pub fn new(primary: Arc<UdpSocket>) -> Self {
        let local = primary.local_addr().ok();
        let primary_v6 = local.is_some_and(|a| a.is_ipv6());
        let primary_dual = primary_v6
            && local.is_some_and(|a| a.ip().is_unspecified())
            && !socket2::SockRef::from(&*primary).only_v6().unwrap_or(true);
        UtpSockets {
            primary,
            primary_v6,
            primary_dual,
            v6: None,
        }
    }

    /// Adds an IPv6 socket for IPv6 destinations, beside an IPv4 primary (ignored
    /// when the primary is IPv6 itself).
    pub fn with_v6(mut self, v6: Option<Arc<UdpSocket>>) -> Self {
        if !self.primary_v6 {
            self.v6 = v6;
        }
        self
    }

    /// Whether a socket of `addr`'s family is there to reach it.
    pub fn reaches(&self, addr: &SocketAddr) -> bool {
        if is_ipv6(addr) {
            self.primary_v6 || self.v6.is_some()
        } else {
            !self.primary_v6 || self.primary_dual
        }
    }

    /// `addr` as this endpoint's sockets report it: IPv4 as plain IPv4 to an IPv4
    /// primary, IPv4-mapped to a dual-stack IPv6 primary; so a connection we open is
    /// keyed as the replies to it arrive.
    pub fn route_addr(&self, addr: SocketAddr) -> SocketAddr {
        match addr.ip().to_canonical() {
            IpAddr::V4(v4) if self.primary_v6 => {
                SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port())
            }
            ip => SocketAddr::new(ip, addr.port()),
        }
    }

    /// The socket to send to `addr` on: that of its family, else the primary (whose
    /// send then fails as it would have, and the connection times out).
    pub fn for_dest(&self, addr: &SocketAddr) -> &Arc<UdpSocket> {
        match &self.v6 {
            Some(v6) if is_ipv6(addr) => v6,
            _ => &self.primary,
        }
    }

    /// The first socket (of either family).
    pub fn primary(&self) -> &Arc<UdpSocket> {
        &self.primary
    }

    /// The sockets' local addresses, for logs.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        std::iter::once(&self.primary)
            .chain(self.v6.as_ref())
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

/// True for an IPv6 address that is not IPv4-mapped.
pub fn is_ipv6(addr: &SocketAddr) -> bool {
    matches!(addr.ip().to_canonical(), IpAddr::V6(_))
}

/// The settings of a connection with `addr`: `base` with the payload cut by
/// [`IPV6_EXTRA_HEADER`] for an IPv6 peer.
pub fn config_for(base: &UtpConfig, addr: &SocketAddr) -> UtpConfig {
    let mut cfg = *base;
    if is_ipv6(addr) {
        cfg.max_payload = base.max_payload.saturating_sub(IPV6_EXTRA_HEADER).max(1);
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_peers_get_the_smaller_payload() {
        let base = UtpConfig::default();
        let v4 = config_for(&base, &addr("10.0.0.1:6881"));
        let mapped = config_for(&base, &addr("[::ffff:10.0.0.1]:6881"));
        let v6 = config_for(&base, &addr("[2001:db8::1]:6881"));
        assert_eq!((v4, mapped), (base, base));
        assert_eq!(v6.max_payload, base.max_payload - IPV6_EXTRA_HEADER);
        assert_eq!(
            UtpConfig {
                max_payload: base.max_payload,
                ..v6
            },
            base,
            "only the payload differs"
        );
        // Header plus payload in an IPv6 packet: as large as in an IPv4 one.
        assert_eq!(40 + 8 + 20 + v6.max_payload, 20 + 8 + 20 + v4.max_payload);
    }

    #[tokio::test]
    async fn ipv4_primary_with_an_ipv6_socket() {
        let v4 = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let Ok(v6) = UdpSocket::bind("[::1]:0").await else {
            eprintln!("skipped: no IPv6 on this host");
            return;
        };
        let v6 = Arc::new(v6);
        let alone = UtpSockets::new(v4.clone());
        assert!(!alone.reaches(&addr("[::1]:1")));
        let both = alone.with_v6(Some(v6.clone()));
        assert!(both.reaches(&addr("[::1]:1")) && both.reaches(&addr("127.0.0.1:1")));
        assert!(Arc::ptr_eq(both.for_dest(&addr("[::1]:1")), &v6));
        assert!(Arc::ptr_eq(both.for_dest(&addr("127.0.0.1:1")), &v4));
        // A mapped address is IPv4 on the wire: the IPv4 socket, keyed as IPv4.
        let mapped = addr("[::ffff:127.0.0.1]:7");
        assert_eq!(both.route_addr(mapped), addr("127.0.0.1:7"));
        assert!(Arc::ptr_eq(both.for_dest(&both.route_addr(mapped)), &v4));
        assert_eq!(both.local_addrs().len(), 2);
    }

    #[tokio::test]
    async fn ipv6_primary_keys_ipv4_as_mapped_and_takes_no_second_socket() {
        let Ok(v6) = UdpSocket::bind("[::1]:0").await else {
            eprintln!("skipped: no IPv6 on this host");
            return;
        };
        let v6 = Arc::new(v6);
        let other = Arc::new(UdpSocket::bind("[::1]:0").await.unwrap());
        let s = UtpSockets::new(v6.clone()).with_v6(Some(other));
        assert!(s.reaches(&addr("[::1]:1")));
        // Bound to ::1, not the wildcard: no IPv4 through it.
        assert!(!s.reaches(&addr("127.0.0.1:1")));
        assert!(Arc::ptr_eq(s.for_dest(&addr("[::1]:1")), &v6));
        assert_eq!(
            s.route_addr(addr("127.0.0.1:7")),
            addr("[::ffff:127.0.0.1]:7")
        );
        assert_eq!(s.local_addrs().len(), 1);
    }
}
