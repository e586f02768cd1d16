//! Node ids and XOR distance (BEP 5), and BEP 42's ids bound to the node's IP address.
//!
//! BEP 42 ties the first 21 bits of an id to a CRC32-C of the node's masked IPv4 address
//! and the id's last byte, so a node cannot pick ids next to a target at will. Addresses
//! that cannot be checked from the outside (loopback, private, link-local) are exempt.

use std::fmt;
use std::net::Ipv4Addr;

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
    pub fn bep42(ip: Ipv4Addr, r: u8, tail: [u8; 17]) -> NodeId {
        let crc = bep42_crc(ip, r);
        let mut id = [0u8; 20];
        id[0] = (crc >> 24) as u8;
        id[1] = (crc >> 16) as u8;
        id[2] = ((crc >> 8) as u8 & 0xf8) | (tail[0] & 0x07);
        id[3..19].copy_from_slice(&tail[1..17]);
        id[19] = r;
        NodeId(id)
    }

    /// Whether this id is valid for `ip` under BEP 42 (exempt addresses always are).
    pub fn is_valid_for(&self, ip: Ipv4Addr) -> bool {
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
pub fn is_exempt(ip: Ipv4Addr) -> bool {
    ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
}

fn bep42_crc(ip: Ipv4Addr, r: u8) -> u32 {
    let masked = u32::from(ip) & 0x030f_3fff | (u32::from(r & 0x07) << 29);
    crc32c(&masked.to_be_bytes())
}

/// CRC-32C (Castagnoli), bitwise: it only ever runs over 4 bytes.
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
    fn prefix_and_distance() {
        let a = NodeId([0; 20]);
        let mut b = [0u8; 20];
        assert_eq!(a.common_prefix(&b), 160);
        b[2] = 0x10;
        assert_eq!(a.common_prefix(&b), 19);
        assert_eq!(a.distance(&b)[2], 0x10);
    }
}
