//! Node ids and XOR distance (BEP 5), and BEP 42's ids bound to the node's IP address.
//!
//! BEP 42 ties the first 21 bits of an id to a CRC32-C of the node's masked IP address
//! and the id's last byte, so a node cannot pick ids next to a target at will. IPv4
//! masks the whole address with `03 0f 3f ff`; IPv6 masks the first 8 bytes (the /64
//! a host is usually given) with `01 03 07 0f 1f 3f 7f ff`, so the rest of the address
//! is free. Addresses that cannot be checked from the outside (loopback, private,
//! link-local, IPv6 unique-local) are exempt.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A 160-bit DHT node id; also the key space of info-hashes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; 20]);

impl NodeId {
    /// XOR distance to `other`, compared as a big-endian number.
    pub fn distance(&self, other: &[u8; 20]) -> [u8; 20] {
        let mut d = [0u8; 20];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.0[i] ^ other[i];
        }
        d
    }

    /// Number of leading bits shared with `other` (160 when equal): the routing-table
    /// bucket `other` falls in, counted from the farthest half.
    pub fn common_prefix(&self, other: &[u8; 20]) -> usize {
        for (i, b) in self.0.iter().enumerate() {
            let x = b ^ other[i];
            if x != 0 {
                return i * 8 + x.leading_zeros() as usize;
            }
        }
        160
    }

    /// A BEP 42 id for `ip`: `r` is the random byte kept as the id's last byte,
    /// `tail` fills the unconstrained bytes (3 random bits of byte 2, bytes 3..19).
    pub fn bep42(ip: impl Into<IpAddr>, r: u8, tail: [u8; 17]) -> NodeId {
        let crc = bep42_crc(ip.into().to_canonical(), r);
        let mut id = [0u8; 20];
        id[0] = (crc >> 24) as u8;
        id[1] = (crc >> 16) as u8;
        id[2] = ((crc >> 8) as u8 & 0xf8) | (tail[0] & 0x07);
        id[3..19].copy_from_slice(&tail[1..17]);
        id[19] = r;
        NodeId(id)
    }

    /// Whether this id is valid for `ip` under BEP 42 (exempt addresses always are).
    pub fn is_valid_for(&self, ip: impl Into<IpAddr>) -> bool {
        let ip = ip.into().to_canonical();
        if is_exempt(ip) {
            return true;
        }
        let crc = bep42_crc(ip, self.0[19]);
        self.0[0] == (crc >> 24) as u8
            && self.0[1] == (crc >> 16) as u8
            && self.0[2] & 0xf8 == (crc >> 8) as u8 & 0xf8
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", crate::ids::to_hex(&self.0))
    }
}

/// Addresses BEP 42 does not apply to: nobody outside can check them.
pub fn is_exempt(ip: impl Into<IpAddr>) -> bool {
    match ip.into() {
        IpAddr::V4(ip) => is_exempt_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_exempt_v4(v4),
            None => is_exempt_v6(ip),
        },
    }
}

fn is_exempt_v4(ip: Ipv4Addr) -> bool {
    ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
}

/// Loopback, unspecified, unique-local (`fc00::/7`) and link-local (`fe80::/10`).
fn is_exempt_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback() || ip.is_unspecified() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
}

fn bep42_crc(ip: IpAddr, r: u8) -> u32 {
    let r = u64::from(r & 0x07);
    match ip {
        IpAddr::V4(ip) => {
            let masked = u32::from(ip) & 0x030f_3fff | ((r as u32) << 29);
            crc32c(&masked.to_be_bytes())
        }
        IpAddr::V6(ip) => {
            let o = ip.octets();
            let high = u64::from_be_bytes([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]]);
            let masked = high & 0x0103_070f_1f3f_7fff | (r << 61);
            crc32c(&masked.to_be_bytes())
        }
    }
}

/// CRC-32C (Castagnoli), bitwise: it only ever runs over 4 or 8 bytes.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82f6_3b78 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    /// The table in BEP 42: IP, random byte, expected first three bytes.
    #[test]
    fn bep42_vectors() {
        let cases: [(&str, u8, [u8; 3]); 5] = [
            ("124.31.75.21", 1, [0x5f, 0xbf, 0xbf]),
            ("21.75.31.124", 86, [0x5a, 0x3c, 0xe9]),
            ("65.23.51.170", 22, [0xa5, 0xd4, 0x32]),
            ("84.124.73.14", 65, [0x1b, 0x03, 0x21]),
            ("43.213.53.83", 90, [0xe5, 0x6f, 0x6c]),
        ];
        for (ip, r, prefix) in cases {
            let ip: Ipv4Addr = ip.parse().unwrap();
            // The vectors' third byte carries their random low bits; ours come from tail[0].
            let id = NodeId::bep42(ip, r, [prefix[2] & 7; 17]);
            assert_eq!(&id.0[..3], &prefix, "{ip}");
            assert_eq!(id.0[19], r);
            assert!(id.is_valid_for(ip));
            let mut bad = id;
            bad.0[0] ^= 1;
            assert!(!bad.is_valid_for(ip));
        }
    }

    #[test]
    fn private_addresses_are_exempt() {
        let id = NodeId([0xab; 20]);
        assert!(id.is_valid_for(Ipv4Addr::LOCALHOST));
        assert!(id.is_valid_for(Ipv4Addr::new(192, 168, 1, 2)));
        assert!(!id.is_valid_for(Ipv4Addr::new(124, 31, 75, 21)));
    }

    #[test]
    fn bep42_ipv6_masks_the_first_64_bits() {
        let ip: Ipv6Addr = "2001:db8:85a3:1234:8a2e:370:7334:1".parse().unwrap();
        let id = NodeId::bep42(ip, 0x45, [3; 17]);
        assert!(id.is_valid_for(ip));
        assert_eq!(id.0[19], 0x45);
        // The interface half of the address, and masked-out bits of the /64, are free.
        let same_64: Ipv6Addr = "2001:db8:85a3:1234::99".parse().unwrap();
        assert!(id.is_valid_for(same_64));
        let other: Ipv6Addr = "2101:db8:85a3:1234::1".parse().unwrap();
        assert!(!id.is_valid_for(other));
        // Only the random byte's low 3 bits enter the CRC, as for IPv4.
        assert_eq!(
            &NodeId::bep42(ip, 0x05, [3; 17]).0[..3],
            &NodeId::bep42(ip, 0x45, [3; 17]).0[..3]
        );
        // A v4 address checks the same whether written plainly or IPv4-mapped.
        let v4 = Ipv4Addr::new(124, 31, 75, 21);
        let id4 = NodeId::bep42(v4, 1, [7; 17]);
        assert_eq!(&id4.0[..3], &[0x5f, 0xbf, 0xbf]);
        assert!(id4.is_valid_for(v4.to_ipv6_mapped()));
        assert!(is_exempt(Ipv6Addr::LOCALHOST));
        assert!(is_exempt("fd12::1".parse::<Ipv6Addr>().unwrap()));
        assert!(is_exempt("fe80::1".parse::<Ipv6Addr>().unwrap()));
        assert!(is_exempt(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()));
        assert!(!is_exempt(ip));
        assert!(NodeId([0xab; 20]).is_valid_for(Ipv6Addr::LOCALHOST));
    }

    #[test]
    fn prefix_and_distance() {
        let a = NodeId([0; 20]);
        let mut b = [0u8; 20];
        assert_eq!(a.common_prefix(&b), 160);
        b[2] = 0x10;
        assert_eq!(a.common_prefix(&b), 19);
        assert_eq!(a.distance(&b)[2], 0x10);
    }
}
