//! The 68-byte BEP 3 handshake: `\x13BitTorrent protocol`, 8 reserved bytes
//! (extension bits), info-hash, peer ID.

use super::WireError;
use crate::ids::{InfoHash, PeerId};

/// The protocol string that opens every handshake.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// Bytes in a handshake: 1 + 19 + 8 + 20 + 20.
pub const HANDSHAKE_LEN: usize = 68;

/// Reserved byte and mask for BEP 10, the extension protocol.
const EXTENDED: (usize, u8) = (5, 0x10);
/// Reserved byte and mask for BEP 6, the fast extension.
const FAST: (usize, u8) = (7, 0x04);
/// Reserved byte and mask for BEP 5, DHT (the peer sends `port` messages).
const DHT: (usize, u8) = (7, 0x01);

/// A decoded or to-be-sent handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// Reserved bytes; each set bit announces an extension.
    pub reserved: [u8; 8],
    /// The torrent the connection is about.
    pub info_hash: InfoHash,
    /// The sender's peer ID.
    pub peer_id: PeerId,
}

impl Handshake {
    /// Shoal's handshake: the extension protocol (BEP 10) and fast extension (BEP 6)
    /// bits set, nothing else.
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Self {
        let mut reserved = [0u8; 8];
        reserved[EXTENDED.0] |= EXTENDED.1;
        reserved[FAST.0] |= FAST.1;
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// The peer speaks the BEP 10 extension protocol (reserved byte 5, bit 0x10).
    pub fn supports_extended(&self) -> bool {
        self.reserved[EXTENDED.0] & EXTENDED.1 != 0
    }

    /// The peer speaks the BEP 6 fast extension (reserved byte 7, bit 0x04).
    pub fn supports_fast(&self) -> bool {
        self.reserved[FAST.0] & FAST.1 != 0
    }

    /// The peer runs a DHT node (reserved byte 7, bit 0x01).
    pub fn supports_dht(&self) -> bool {
        self.reserved[DHT.0] & DHT.1 != 0
    }

    /// The 68 bytes to send.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id.0);
        out
    }

    /// Decodes the first [`HANDSHAKE_LEN`] bytes of `buf`; later bytes (the first
    /// messages, if they arrived in the same read) are left to the caller.
    pub fn decode(buf: &[u8]) -> Result<Handshake, WireError> {
        match Self::decode_prefix(buf)? {
            Some(h) => Ok(h),
            None => Err(WireError::HandshakeTruncated { len: buf.len() }),
        }
    }

    /// Like [`Handshake::decode`] but incremental: `Ok(None)` while fewer than
    /// [`HANDSHAKE_LEN`] bytes have arrived. A wrong protocol string is reported as
    /// soon as its first bad byte is seen, so non-BitTorrent connections drop early.
    pub fn decode_prefix(buf: &[u8]) -> Result<Option<Handshake>, WireError> {
        let mut expected = [0u8; 20];
        expected[0] = 19;
        expected[1..].copy_from_slice(PROTOCOL);
        let seen = buf.len().min(expected.len());
        if buf[..seen] != expected[..seen] {
            return Err(WireError::NotBitTorrent {
                prefix: buf[..seen].to_vec(),
            });
        }
        let Some(hs) = buf.get(..HANDSHAKE_LEN) else {
            return Ok(None);
        };
        let mut h = Handshake {
            reserved: [0; 8],
            info_hash: InfoHash([0; 20]),
            peer_id: PeerId([0; 20]),
        };
        h.reserved.copy_from_slice(&hs[20..28]);
        h.info_hash.0.copy_from_slice(&hs[28..48]);
        h.peer_id.0.copy_from_slice(&hs[48..68]);
        Ok(Some(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Handshake {
        Handshake::new(InfoHash([0xAA; 20]), PeerId(*b"-SH0100-abcdefghijkl"))
    }

    #[test]
    fn byte_layout() {
        let b = sample().encode();
        assert_eq!(b.len(), 68);
        assert_eq!(&b[..20], b"\x13BitTorrent protocol");
        assert_eq!(&b[20..28], &[0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        assert_eq!(&b[28..48], &[0xAA; 20]);
        assert_eq!(&b[48..68], b"-SH0100-abcdefghijkl");
    }

    #[test]
    fn reserved_bits() {
        let h = sample();
        assert!(h.supports_extended() && h.supports_fast() && !h.supports_dht());
        let mut d = h;
        d.reserved = [0, 0, 0, 0, 0, 0, 0, 0x01];
        assert!(d.supports_dht() && !d.supports_fast() && !d.supports_extended());
    }

    #[test]
    fn round_trip_with_trailing_bytes() {
        let mut b = sample().encode().to_vec();
        b.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(Handshake::decode(&b).unwrap(), sample());
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let b = sample().encode();
        for n in 0..HANDSHAKE_LEN {
            assert_eq!(Handshake::decode_prefix(&b[..n]), Ok(None), "prefix {n}");
            assert_eq!(
                Handshake::decode(&b[..n]),
                Err(WireError::HandshakeTruncated { len: n })
            );
        }
    }

    #[test]
    fn wrong_protocol_rejected_early() {
        assert!(matches!(
            Handshake::decode_prefix(b"GET / HTTP/1.1"),
            Err(WireError::NotBitTorrent { .. })
        ));
        let mut b = sample().encode();
        b[5] = b'X';
        assert!(Handshake::decode(&b).is_err());
        assert!(Handshake::decode_prefix(&b[..6]).is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = Handshake::decode(&bytes);
        }

        #[test]
        fn round_trip(reserved: [u8; 8], ih: [u8; 20], id: [u8; 20]) {
            let h = Handshake { reserved, info_hash: InfoHash(ih), peer_id: PeerId(id) };
            prop_assert_eq!(Handshake::decode(&h.encode()), Ok(h));
        }
    }
}
