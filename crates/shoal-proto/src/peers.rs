//! Peer lists from trackers and PEX: compact IPv4 entries (BEP 23, 6 bytes: IP then
//! port, big-endian), compact IPv6 entries (BEP 7, 18 bytes), and the original BEP 3
//! list of `{ip, port}` dictionaries.
//!
//! Compact parsing is exact: every entry is returned, port 0 included, so encoding
//! and parsing round-trip; the engine filters unusable addresses. The dictionary form
//! skips entries that cannot be dialled (no port, port 0, an `ip` that is not a
//! literal address: resolving host names is I/O and is not done here).
//!
//! ```
//! use shoal_proto::peers::{encode_compact_v4, parse_compact_v4};
//! let addr = "10.0.0.1:6881".parse().unwrap();
//! let mut out = Vec::new();
//! encode_compact_v4([&addr], &mut out);
//! assert_eq!(out, [10, 0, 0, 1, 0x1a, 0xe1]);
//! assert_eq!(parse_compact_v4(&out).unwrap(), [addr]);
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use thiserror::Error;

use crate::bencode::Value;

/// Bytes per compact IPv4 peer: 4 IP + 2 port.
pub const COMPACT_V4_LEN: usize = 6;
/// Bytes per compact IPv6 peer: 16 IP + 2 port.
pub const COMPACT_V6_LEN: usize = 18;

/// Why a peer list was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeersError {
    /// A compact list whose length is not a whole number of entries.
    #[error("compact peer list is {len} bytes, not a multiple of {entry}; the sender is broken")]
    CompactLength {
        /// Bytes received.
        len: usize,
        /// Entry size: 6 for IPv4, 18 for IPv6.
        entry: usize,
    },
    /// `peers` is neither a compact string nor a list of dictionaries.
    #[error("peer list is neither a compact string nor a list of dictionaries")]
    NotAPeerList,
}

/// Parses a BEP 23 compact IPv4 list.
pub fn parse_compact_v4(buf: &[u8]) -> Result<Vec<SocketAddr>, PeersError> {
    check_len(buf, COMPACT_V4_LEN)?;
    Ok(buf
        .chunks_exact(COMPACT_V4_LEN)
        .map(|c| {
            let ip = Ipv4Addr::new(c[0], c[1], c[2], c[3]);
            SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be_bytes([c[4], c[5]])))
        })
        .collect())
}

/// Parses a BEP 7 compact IPv6 list (`peers6`).
pub fn parse_compact_v6(buf: &[u8]) -> Result<Vec<SocketAddr>, PeersError> {
    check_len(buf, COMPACT_V6_LEN)?;
    Ok(buf
        .chunks_exact(COMPACT_V6_LEN)
        .map(|c| {
            let (ip, port) = c.split_at(16);
            let mut octets = [0u8; 16];
            octets.copy_from_slice(ip);
            let port = u16::from_be_bytes([port[0], port[1]]);
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(octets), port, 0, 0))
        })
        .collect())
}

fn check_len(buf: &[u8], entry: usize) -> Result<(), PeersError> {
    if buf.chunks_exact(entry).remainder().is_empty() {
        Ok(())
    } else {
        Err(PeersError::CompactLength {
            len: buf.len(),
            entry,
        })
    }
}

/// Appends the IPv4 addresses among `addrs` in compact form and returns how many were
/// written. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as IPv4; other IPv6
/// addresses are skipped (they belong in [`encode_compact_v6`]).
pub fn encode_compact_v4<'a>(
    addrs: impl IntoIterator<Item = &'a SocketAddr>,
    out: &mut Vec<u8>,
) -> usize {
    let mut n = 0;
    for addr in addrs {
        let ip = match addr.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(ip) => ip,
                None => continue,
            },
        };
        out.extend_from_slice(&ip.octets());
        out.extend_from_slice(&addr.port().to_be_bytes());
        n += 1;
    }
    n
}

/// Appends the IPv6 addresses among `addrs` in compact form (`peers6`) and returns how
/// many were written. IPv4 and IPv4-mapped addresses are skipped.
pub fn encode_compact_v6<'a>(
    addrs: impl IntoIterator<Item = &'a SocketAddr>,
    out: &mut Vec<u8>,
) -> usize {
    let mut n = 0;
    for addr in addrs {
        let IpAddr::V6(ip) = addr.ip() else {
            continue;
        };
        if ip.to_ipv4_mapped().is_some() {
            continue;
        }
        out.extend_from_slice(&ip.octets());
        out.extend_from_slice(&addr.port().to_be_bytes());
        n += 1;
    }
    n
}

/// Parses the BEP 3 non-compact form: a list of dictionaries with `ip` (a textual
/// IPv4 or IPv6 address, brackets allowed) and `port`. Entries that are not
/// dictionaries, lack a usable `ip` or have a port outside 1-65535 are skipped.
pub fn parse_peer_dicts(value: &Value<'_>) -> Result<Vec<SocketAddr>, PeersError> {
    let list = value.as_list().ok_or(PeersError::NotAPeerList)?;
    Ok(list.iter().filter_map(peer_from_dict).collect())
}

/// Parses a tracker's `peers` value in either form: a compact IPv4 string or a list of
/// dictionaries.
pub fn parse_peers(value: &Value<'_>) -> Result<Vec<SocketAddr>, PeersError> {
    match value {
        Value::Bytes(b) => parse_compact_v4(b),
        Value::List(..) => parse_peer_dicts(value),
        _ => Err(PeersError::NotAPeerList),
    }
}

fn peer_from_dict(entry: &Value<'_>) -> Option<SocketAddr> {
    let ip = entry.get("ip")?.as_str()?;
    let ip = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip);
    let ip: IpAddr = ip.parse().ok()?;
    let port = u16::try_from(entry.get("port")?.as_int()?).ok()?;
    (port != 0).then_some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode;
    use proptest::prelude::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn compact_v4_vector() {
        let b = [127, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0, 80];
        assert_eq!(
            parse_compact_v4(&b).unwrap(),
            [sa("127.0.0.1:6881"), sa("192.168.1.2:80")]
        );
        assert_eq!(
            parse_compact_v4(&b[..7]),
            Err(PeersError::CompactLength { len: 7, entry: 6 })
        );
        assert_eq!(parse_compact_v4(&[]).unwrap(), []);
    }

    #[test]
    fn compact_v6_vector() {
        let mut b = vec![0u8; 16];
        b[15] = 1;
        b.extend_from_slice(&[0x1a, 0xe1]);
        assert_eq!(parse_compact_v6(&b).unwrap(), [sa("[::1]:6881")]);
        assert_eq!(
            parse_compact_v6(&b[..17]),
            Err(PeersError::CompactLength { len: 17, entry: 18 })
        );
    }

    #[test]
    fn every_length_parses_or_errors() {
        let b = [7u8; 40];
        for n in 0..=b.len() {
            assert_eq!(parse_compact_v4(&b[..n]).is_ok(), n % 6 == 0, "v4 {n}");
            assert_eq!(parse_compact_v6(&b[..n]).is_ok(), n % 18 == 0, "v6 {n}");
        }
    }

    #[test]
    fn encode_splits_families() {
        let addrs = [
            sa("1.2.3.4:5"),
            sa("[2001:db8::1]:6881"),
            sa("[::ffff:10.0.0.1]:7"),
        ];
        let mut v4 = Vec::new();
        assert_eq!(encode_compact_v4(&addrs, &mut v4), 2);
        assert_eq!(v4, [1, 2, 3, 4, 0, 5, 10, 0, 0, 1, 0, 7]);
        let mut v6 = Vec::new();
        assert_eq!(encode_compact_v6(&addrs, &mut v6), 1);
        assert_eq!(parse_compact_v6(&v6).unwrap(), [addrs[1]]);
    }

    #[test]
    fn dictionary_list() {
        let b = b"ld2:ip9:127.0.0.14:porti6881eed2:ip5:[::1]4:porti80eed2:ip11:example.com4:porti1eed2:ip7:1.2.3.44:porti0eed2:ip7:1.2.3.44:porti70000eei5ed2:ip7:1.2.3.47:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti9eee";
        let v = bencode::decode(b).unwrap();
        assert_eq!(
            parse_peer_dicts(&v).unwrap(),
            [sa("127.0.0.1:6881"), sa("[::1]:80"), sa("1.2.3.4:9")]
        );
        assert_eq!(parse_peers(&v).unwrap().len(), 3);
        assert_eq!(
            parse_peers(&bencode::decode(b"6:\x01\x02\x03\x04\x00\x05").unwrap()).unwrap(),
            [sa("1.2.3.4:5")]
        );
        assert_eq!(
            parse_peers(&bencode::decode(b"i1e").unwrap()),
            Err(PeersError::NotAPeerList)
        );
        assert_eq!(
            parse_peer_dicts(&bencode::decode(b"de").unwrap()),
            Err(PeersError::NotAPeerList)
        );
    }

    proptest! {
        #[test]
        fn v4_round_trip(raw in proptest::collection::vec(any::<([u8; 4], u16)>(), 0..20)) {
            let addrs: Vec<SocketAddr> =
                raw.iter().map(|&(ip, port)| SocketAddr::from((ip, port))).collect();
            let mut out = Vec::new();
            prop_assert_eq!(encode_compact_v4(&addrs, &mut out), addrs.len());
            prop_assert_eq!(parse_compact_v4(&out).unwrap(), addrs);
        }

        #[test]
        fn v6_round_trip(raw in proptest::collection::vec(any::<([u8; 16], u16)>(), 0..20)) {
            let addrs: Vec<SocketAddr> = raw
                .iter()
                .map(|&(ip, port)| SocketAddr::from((Ipv6Addr::from(ip), port)))
                .filter(|a| matches!(a.ip(), IpAddr::V6(ip) if ip.to_ipv4_mapped().is_none()))
                .collect();
            let mut out = Vec::new();
            prop_assert_eq!(encode_compact_v6(&addrs, &mut out), addrs.len());
            prop_assert_eq!(parse_compact_v6(&out).unwrap(), addrs);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = parse_compact_v4(&bytes);
            let _ = parse_compact_v6(&bytes);
            if let Ok(v) = bencode::decode(&bytes) {
                let _ = parse_peers(&v);
            }
        }
    }
}
