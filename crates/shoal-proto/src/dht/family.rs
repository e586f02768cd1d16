//! Address families (BEP 32): the IPv4 and the IPv6 DHT are two separate networks.
//!
//! A [`super::Dht`] runs in one [`Family`]: every address in its routing table, lookups,
//! pending queries and peer store is of that family, in one canonical form (IPv4 as
//! `SocketAddr::V4`, also when it arrived IPv4-mapped; IPv6 without flow label), so
//! addresses from sockets and from compact nodes compare equal.

use std::net::SocketAddr;

use super::krpc::{ipv4_of, ipv6_of, Response, Want};
use super::NodeId;

/// The address family a DHT runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Family {
    /// The IPv4 DHT (BEP 5): `nodes`, 6-byte values.
    #[default]
    V4,
    /// The IPv6 DHT (BEP 32): `nodes6`, 18-byte values.
    V6,
}

impl Family {
    /// The family of `addr`; IPv4-mapped IPv6 addresses count as IPv4.
    pub fn of(addr: SocketAddr) -> Family {
        match ipv4_of(addr) {
            Some(_) => Family::V4,
            None => Family::V6,
        }
    }

    /// The other family.
    pub fn other(self) -> Family {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }

    /// `addr` in canonical form when it is of this family.
    pub fn normalize(self, addr: SocketAddr) -> Option<SocketAddr> {
        match self {
            Family::V4 => ipv4_of(addr).map(SocketAddr::V4),
            Family::V6 => ipv6_of(addr).map(SocketAddr::V6),
        }
    }

    /// The nodes of this family in an answer (`nodes` or `nodes6`).
    pub fn nodes_of(self, r: &Response) -> Vec<(NodeId, SocketAddr)> {
        match self {
            Family::V4 => r.nodes.iter().map(|(i, a)| (*i, (*a).into())).collect(),
            Family::V6 => r.nodes6.iter().map(|(i, a)| (*i, (*a).into())).collect(),
        }
    }

    /// Whether `want` asks for this family's nodes; an empty `want` asks for the
    /// family of the socket the query came on, `on`.
    pub(crate) fn wanted(self, want: Want, on: Family) -> bool {
        match (want.is_empty(), self) {
            (true, _) => self == on,
            (false, Family::V4) => want.n4,
            (false, Family::V6) => want.n6,
        }
    }

    /// Puts `nodes` (all of this family) into the answer's `nodes` or `nodes6`.
    pub(crate) fn fill(self, r: &mut Response, nodes: Vec<(NodeId, SocketAddr)>) {
        for (id, a) in nodes {
            match (self, a) {
                (Family::V4, SocketAddr::V4(a)) => r.nodes.push((id, a)),
                (Family::V6, SocketAddr::V6(a)) => r.nodes6.push((id, a)),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        let mapped: SocketAddr = "[::ffff:1.2.3.4]:5".parse().unwrap();
        let v4: SocketAddr = "1.2.3.4:5".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:5".parse().unwrap();
        assert_eq!(Family::of(mapped), Family::V4);
        assert_eq!(Family::V4.normalize(mapped), Some(v4));
        assert_eq!(Family::V6.normalize(mapped), None);
        assert_eq!(Family::V6.normalize(v6), Some(v6));
        assert_eq!(Family::V4.normalize(v6), None);
        assert_eq!(Family::of(v6).other(), Family::V4);
        let none = Want::default();
        let n6 = Want {
            n4: false,
            n6: true,
        };
        assert!(Family::V4.wanted(none, Family::V4));
        assert!(!Family::V6.wanted(none, Family::V4));
        assert!(Family::V6.wanted(n6, Family::V4));
        assert!(!Family::V4.wanted(n6, Family::V4));
    }
}
