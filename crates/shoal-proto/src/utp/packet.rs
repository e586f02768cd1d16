//! The uTP packet: the 20-byte version 1 header, its extension chain and the payload.
//!
//! Decoding checks the version, the type, and every extension length against the bytes
//! present; unknown extensions are skipped. A selective ack of any length is taken (an
//! empty one is none): BEP 29 asks for a multiple of 4 bytes, but libtorrent sends
//! `ceil(span / 8)` bytes, up to an MTU's worth, and rejecting those packets loses every
//! ack sent while a gap is open (issue 14: uTP transfers to libtorrent stalled in doubling
//! timeouts). We write multiples of 4, at most [`MAX_SACK_BYTES`]. Nothing here panics on
//! input: a malformed datagram is a [`PacketError`].

use thiserror::Error;

/// Size of the fixed header.
pub const HEADER_LEN: usize = 20;
/// Protocol version carried in the low nibble of the first byte.
pub const VERSION: u8 = 1;
/// Extension type of the selective ack.
pub const EXT_SACK: u8 = 1;
/// Longest selective-ack bitmask we write (bytes): 1024 packets past `ack_nr + 1`. We read
/// any length the extension's length byte allows.
pub const MAX_SACK_BYTES: usize = 128;

/// The kind of a uTP packet (the high nibble of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// `ST_DATA`: carries payload and takes a sequence number.
    Data = 0,
    /// `ST_FIN`: the sender's last sequence number.
    Fin = 1,
    /// `ST_STATE`: an ack with no payload; does not take a sequence number.
    State = 2,
    /// `ST_RESET`: the sender has no state for this connection.
    Reset = 3,
    /// `ST_SYN`: opens a connection.
    Syn = 4,
}

impl PacketType {
    fn from_nibble(n: u8) -> Option<Self> {
        Some(match n {
            0 => PacketType::Data,
            1 => PacketType::Fin,
            2 => PacketType::State,
            3 => PacketType::Reset,
            4 => PacketType::Syn,
            _ => return None,
        })
    }
}

/// Why a datagram is not a uTP packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    /// Fewer bytes than the header or an extension announces.
    #[error("uTP packet truncated: {0} bytes")]
    Truncated(usize),
    /// A version other than 1.
    #[error("uTP version {0} is not supported (only 1)")]
    Version(u8),
    /// A type nibble above 4.
    #[error("unknown uTP packet type {0}")]
    Type(u8),
}

/// The fixed header fields of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Packet type.
    pub kind: PacketType,
    /// Connection id as seen by the receiver of this packet.
    pub conn_id: u16,
    /// Sender's clock when sending, in microseconds (wrapping).
    pub timestamp_us: u32,
    /// Sender's latest one-way delay sample of packets it received (0 = none yet).
    pub timestamp_diff_us: u32,
    /// Bytes the sender can still take into its receive buffer.
    pub wnd_size: u32,
    /// Sequence number of this packet (for `ST_STATE`, the next one the sender will use).
    pub seq_nr: u16,
    /// Last sequence number the sender received in order.
    pub ack_nr: u16,
}

/// A decoded packet, borrowing its selective ack and payload from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The fixed header.
    pub header: Header,
    /// Selective-ack bitmask (bit 0 of byte 0 is `ack_nr + 2`), if present and not empty;
    /// of any length (libtorrent does not pad it to a multiple of 4).
    pub sack: Option<&'a [u8]>,
    /// The payload after the header and extensions.
    pub payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Decodes one datagram.
    pub fn decode(buf: &'a [u8]) -> Result<Self, PacketError> {
        let fixed: &[u8; HEADER_LEN] = buf
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(PacketError::Truncated(buf.len()))?;
        let version = fixed[0] & 0x0f;
        if version != VERSION {
            return Err(PacketError::Version(version));
        }
        let kind =
            PacketType::from_nibble(fixed[0] >> 4).ok_or(PacketError::Type(fixed[0] >> 4))?;
        let u16_at = |i: usize| u16::from_be_bytes([fixed[i], fixed[i + 1]]);
        let u32_at =
            |i: usize| u32::from_be_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
        let header = Header {
            kind,
            conn_id: u16_at(2),
            timestamp_us: u32_at(4),
            timestamp_diff_us: u32_at(8),
            wnd_size: u32_at(12),
            seq_nr: u16_at(16),
            ack_nr: u16_at(18),
        };
        let mut next = fixed[1];
        let mut rest = &buf[HEADER_LEN..];
        let mut sack = None;
        while next != 0 {
            let (&[ext, len], body) = rest
                .split_first_chunk::<2>()
                .ok_or(PacketError::Truncated(buf.len()))?;
            let len = usize::from(len);
            let data = body.get(..len).ok_or(PacketError::Truncated(buf.len()))?;
            if next == EXT_SACK && !data.is_empty() {
                sack = Some(data);
            }
            next = ext;
            rest = &body[len..];
        }
        Ok(Packet {
            header,
            sack,
            payload: rest,
        })
    }

    /// Appends the encoded packet to `out`. A selective ack longer than
    /// [`MAX_SACK_BYTES`] is cut there; one not a multiple of 4 is padded with zeros.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let h = &self.header;
        let sack = self.sack.map(|s| &s[..s.len().min(MAX_SACK_BYTES)]);
        out.push(((h.kind as u8) << 4) | VERSION);
        out.push(if sack.is_some() { EXT_SACK } else { 0 });
        out.extend_from_slice(&h.conn_id.to_be_bytes());
        out.extend_from_slice(&h.timestamp_us.to_be_bytes());
        out.extend_from_slice(&h.timestamp_diff_us.to_be_bytes());
        out.extend_from_slice(&h.wnd_size.to_be_bytes());
        out.extend_from_slice(&h.seq_nr.to_be_bytes());
        out.extend_from_slice(&h.ack_nr.to_be_bytes());
        if let Some(s) = sack {
            let padded = s.len().div_ceil(4).max(1) * 4;
            out.push(0);
            // `padded` is at most MAX_SACK_BYTES (128), so it fits the length byte.
            out.push(padded as u8);
            out.extend_from_slice(s);
            out.resize(out.len() + padded - s.len(), 0);
        }
        out.extend_from_slice(self.payload);
    }
}

/// The connection id a packet is addressed to, and its type, read from the first four
/// bytes without decoding the rest: what a demultiplexer needs to route a datagram.
pub fn peek_route(buf: &[u8]) -> Option<(PacketType, u16)> {
    let [b0, _, c0, c1, ..] = *buf else {
        return None;
    };
    if b0 & 0x0f != VERSION {
        return None;
    }
    Some((
        PacketType::from_nibble(b0 >> 4)?,
        u16::from_be_bytes([c0, c1]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(kind: PacketType) -> Header {
        Header {
            kind,
            conn_id: 0x1234,
            timestamp_us: 0xdead_beef,
            timestamp_diff_us: 77,
            wnd_size: 1 << 20,
            seq_nr: 65535,
            ack_nr: 3,
        }
    }

    #[test]
    fn round_trip_with_sack_and_payload() {
        let sack = [0b101u8, 0, 0, 0x80];
        let p = Packet {
            header: header(PacketType::Data),
            sack: Some(&sack),
            payload: b"hello",
        };
        let mut buf = Vec::new();
        p.encode(&mut buf);
        assert_eq!(buf.len(), HEADER_LEN + 2 + 4 + 5);
        assert_eq!(buf[0], 0x01);
        assert_eq!(Packet::decode(&buf), Ok(p));
        assert_eq!(peek_route(&buf), Some((PacketType::Data, 0x1234)));
    }

    #[test]
    fn state_packet_layout_matches_bep29() {
        let p = Packet {
            header: header(PacketType::State),
            sack: None,
            payload: &[],
        };
        let mut buf = Vec::new();
        p.encode(&mut buf);
        assert_eq!(
            buf,
            [
                0x21, 0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 77, 0, 0x10, 0, 0, 0xff,
                0xff, 0, 3
            ]
        );
    }

    #[test]
    fn unknown_extensions_are_skipped() {
        let mut buf = Vec::new();
        Packet {
            header: header(PacketType::Data),
            sack: None,
            payload: &[],
        }
        .encode(&mut buf);
        buf[1] = 7; // an unknown extension, then a sack, then the payload
        buf.extend_from_slice(&[EXT_SACK, 3, 9, 9, 9, 0, 4, 1, 0, 0, 0, b'x']);
        let p = Packet::decode(&buf).unwrap();
        assert_eq!(p.sack, Some(&[1u8, 0, 0, 0][..]));
        assert_eq!(p.payload, b"x");
    }

    #[test]
    fn malformed_packets_are_errors() {
        let mut buf = Vec::new();
        Packet {
            header: header(PacketType::Syn),
            sack: Some(&[1, 2, 3, 4]),
            payload: &[],
        }
        .encode(&mut buf);
        for len in 0..buf.len() {
            assert!(Packet::decode(&buf[..len]).is_err(), "prefix {len}");
        }
        let mut bad = buf.clone();
        bad[0] = 0x02;
        assert_eq!(Packet::decode(&bad), Err(PacketError::Version(2)));
        bad[0] = 0x51;
        assert_eq!(Packet::decode(&bad), Err(PacketError::Type(5)));
    }

    /// libtorrent writes `ceil(span / 8)` bytes of selective ack, unpadded and up to an
    /// MTU's worth: every length is taken as sent, and an empty one means none.
    #[test]
    fn selective_acks_of_any_length_decode() {
        for len in [0usize, 1, 2, 3, 5, 14, 129, 255] {
            let mut buf = Vec::new();
            Packet {
                header: header(PacketType::State),
                sack: None,
                payload: &[],
            }
            .encode(&mut buf);
            buf[1] = EXT_SACK;
            buf.extend_from_slice(&[0, len as u8]);
            buf.extend((0..len).map(|i| i as u8 | 1));
            buf.extend_from_slice(b"xy");
            let p = Packet::decode(&buf).unwrap_or_else(|e| panic!("{len} bytes: {e}"));
            assert_eq!(p.header, header(PacketType::State));
            assert_eq!(p.sack.map_or(0, <[u8]>::len), len, "{len} bytes");
            assert_eq!(p.payload, b"xy");
            let mut again = Vec::new();
            p.encode(&mut again);
            let q = Packet::decode(&again).unwrap();
            let written = q.sack.map_or(0, <[u8]>::len);
            assert_eq!(written, len.div_ceil(4).min(32) * 4, "padded, at most 128");
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(p) = Packet::decode(&bytes) {
                let mut out = Vec::new();
                p.encode(&mut out);
                let again = Packet::decode(&out).unwrap();
                prop_assert_eq!(again.header, p.header);
                prop_assert_eq!(again.payload, p.payload);
            }
        }
    }
}
