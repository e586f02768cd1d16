//! Length-prefixed peer messages (BEP 3, BEP 5 `port`, BEP 6, BEP 10 framing):
//! decoding from a receive buffer and encoding into a send buffer.

use super::WireError;

const CHOKE: u8 = 0;
const UNCHOKE: u8 = 1;
const INTERESTED: u8 = 2;
const NOT_INTERESTED: u8 = 3;
const HAVE: u8 = 4;
const BITFIELD: u8 = 5;
const REQUEST: u8 = 6;
const PIECE: u8 = 7;
const CANCEL: u8 = 8;
const PORT: u8 = 9;
const SUGGEST_PIECE: u8 = 13;
const HAVE_ALL: u8 = 14;
const HAVE_NONE: u8 = 15;
const REJECT_REQUEST: u8 = 16;
const ALLOWED_FAST: u8 = 17;
const EXTENDED: u8 = 20;

/// A block within a piece, as named by `request`, `cancel` and `reject request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    /// Piece index.
    pub index: u32,
    /// Byte offset of the block within the piece.
    pub begin: u32,
    /// Block length in bytes.
    pub length: u32,
}

/// One peer wire message. Variable-size payloads borrow from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Zero-length message that keeps the connection open.
    KeepAlive,
    /// The sender will not serve requests.
    Choke,
    /// The sender will serve requests.
    Unchoke,
    /// The sender wants pieces the receiver has.
    Interested,
    /// The sender wants nothing from the receiver.
    NotInterested,
    /// The sender now has this piece.
    Have(u32),
    /// The sender's pieces, MSB-first; check it with [`super::Bitfield::from_bytes`].
    Bitfield(&'a [u8]),
    /// Asks for a block.
    Request(BlockRef),
    /// A block of data.
    Piece {
        /// Piece index.
        index: u32,
        /// Byte offset within the piece.
        begin: u32,
        /// The block's bytes.
        data: &'a [u8],
    },
    /// Withdraws a request.
    Cancel(BlockRef),
    /// The sender's DHT port (BEP 5).
    Port(u16),
    /// BEP 6: the sender suggests downloading this piece.
    SuggestPiece(u32),
    /// BEP 6: the sender has every piece (replaces `bitfield`).
    HaveAll,
    /// BEP 6: the sender has no piece (replaces `bitfield`).
    HaveNone,
    /// BEP 6: the sender will not serve this request.
    RejectRequest(BlockRef),
    /// BEP 6: the receiver may request this piece even while choked.
    AllowedFast(u32),
    /// BEP 10: an extension message; `id` 0 is the extended handshake, other ids are
    /// those the receiver assigned in its handshake's `m` dictionary.
    Extended {
        /// Extension message id.
        id: u8,
        /// Bytes after the id.
        payload: &'a [u8],
    },
}

/// Decodes one message from the start of `buf`.
///
/// `Ok(None)`: more bytes are needed. `Ok(Some((msg, used)))`: `used` bytes (4-byte
/// length prefix plus body) were consumed. A length prefix above `max_len` is an error
/// as soon as the 4 prefix bytes are seen, before any body is buffered.
pub fn decode_message(buf: &[u8], max_len: u32) -> Result<Option<(Message<'_>, usize)>, WireError> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix);
    if len > max_len {
        return Err(WireError::MessageTooLong { len, max: max_len });
    }
    // Only fails on 16-bit targets or with a cap near u32::MAX on 32-bit ones.
    let Some(total) = usize::try_from(len).ok().and_then(|l| l.checked_add(4)) else {
        return Err(WireError::MessageTooLong { len, max: max_len });
    };
    let Some(body) = buf.get(4..total) else {
        return Ok(None);
    };
    let Some((&id, payload)) = body.split_first() else {
        return Ok(Some((Message::KeepAlive, 4)));
    };
    Ok(Some((parse_body(id, payload)?, total)))
}

fn parse_body(id: u8, p: &[u8]) -> Result<Message<'_>, WireError> {
    let msg = match id {
        CHOKE => empty(p, "choke", Message::Choke)?,
        UNCHOKE => empty(p, "unchoke", Message::Unchoke)?,
        INTERESTED => empty(p, "interested", Message::Interested)?,
        NOT_INTERESTED => empty(p, "not interested", Message::NotInterested)?,
        HAVE => Message::Have(u32_payload(p, "have")?),
        BITFIELD => Message::Bitfield(p),
        REQUEST => Message::Request(block_ref(p, "request")?),
        PIECE => match p {
            [i0, i1, i2, i3, b0, b1, b2, b3, data @ ..] => Message::Piece {
                index: u32::from_be_bytes([*i0, *i1, *i2, *i3]),
                begin: u32::from_be_bytes([*b0, *b1, *b2, *b3]),
                data,
            },
            _ => return Err(bad_len("piece", p, "at least 8 bytes")),
        },
        CANCEL => Message::Cancel(block_ref(p, "cancel")?),
        PORT => match p {
            [a, b] => Message::Port(u16::from_be_bytes([*a, *b])),
            _ => return Err(bad_len("port", p, "2 bytes")),
        },
        SUGGEST_PIECE => Message::SuggestPiece(u32_payload(p, "suggest piece")?),
        HAVE_ALL => empty(p, "have all", Message::HaveAll)?,
        HAVE_NONE => empty(p, "have none", Message::HaveNone)?,
        REJECT_REQUEST => Message::RejectRequest(block_ref(p, "reject request")?),
        ALLOWED_FAST => Message::AllowedFast(u32_payload(p, "allowed fast")?),
        EXTENDED => match p.split_first() {
            Some((&id, payload)) => Message::Extended { id, payload },
            None => return Err(bad_len("extended", p, "at least 1 byte")),
        },
        _ => return Err(WireError::UnknownMessage { id }),
    };
    Ok(msg)
}

fn bad_len(kind: &'static str, p: &[u8], expected: &'static str) -> WireError {
    WireError::BadPayloadLength {
        kind,
        len: p.len(),
        expected,
    }
}

fn empty<'a>(p: &[u8], kind: &'static str, m: Message<'a>) -> Result<Message<'a>, WireError> {
    if p.is_empty() {
        Ok(m)
    } else {
        Err(bad_len(kind, p, "0 bytes"))
    }
}

fn u32_payload(p: &[u8], kind: &'static str) -> Result<u32, WireError> {
    match p.try_into() {
        Ok(b) => Ok(u32::from_be_bytes(b)),
        Err(_) => Err(bad_len(kind, p, "4 bytes")),
    }
}

fn block_ref(p: &[u8], kind: &'static str) -> Result<BlockRef, WireError> {
    match p {
        [i0, i1, i2, i3, b0, b1, b2, b3, l0, l1, l2, l3] => Ok(BlockRef {
            index: u32::from_be_bytes([*i0, *i1, *i2, *i3]),
            begin: u32::from_be_bytes([*b0, *b1, *b2, *b3]),
            length: u32::from_be_bytes([*l0, *l1, *l2, *l3]),
        }),
        _ => Err(bad_len(kind, p, "12 bytes")),
    }
}

/// The 13 bytes that precede a block's data in a `piece` message (length prefix, id,
/// index, begin), so the engine can write header and data without copying the data.
///
/// # Panics
/// If `data_len` exceeds `u32::MAX - 9`; no real block comes near that.
pub fn piece_header(index: u32, begin: u32, data_len: u32) -> [u8; 13] {
    let len = data_len
        .checked_add(9)
        .unwrap_or_else(|| panic!("piece_header: block of {data_len} bytes cannot be framed"));
    let mut h = [0u8; 13];
    h[..4].copy_from_slice(&len.to_be_bytes());
    h[4] = PIECE;
    h[5..9].copy_from_slice(&index.to_be_bytes());
    h[9..13].copy_from_slice(&begin.to_be_bytes());
    h
}

impl Message<'_> {
    /// The message id byte; `None` for keep-alive, which has no id.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => CHOKE,
            Message::Unchoke => UNCHOKE,
            Message::Interested => INTERESTED,
            Message::NotInterested => NOT_INTERESTED,
            Message::Have(_) => HAVE,
            Message::Bitfield(_) => BITFIELD,
            Message::Request(_) => REQUEST,
            Message::Piece { .. } => PIECE,
            Message::Cancel(_) => CANCEL,
            Message::Port(_) => PORT,
            Message::SuggestPiece(_) => SUGGEST_PIECE,
            Message::HaveAll => HAVE_ALL,
            Message::HaveNone => HAVE_NONE,
            Message::RejectRequest(_) => REJECT_REQUEST,
            Message::AllowedFast(_) => ALLOWED_FAST,
            Message::Extended { .. } => EXTENDED,
        })
    }

    /// A short lower-case name for logs, e.g. `"reject request"`.
    pub fn name(&self) -> &'static str {
        match self {
            Message::KeepAlive => "keep-alive",
            Message::Choke => "choke",
            Message::Unchoke => "unchoke",
            Message::Interested => "interested",
            Message::NotInterested => "not interested",
            Message::Have(_) => "have",
            Message::Bitfield(_) => "bitfield",
            Message::Request(_) => "request",
            Message::Piece { .. } => "piece",
            Message::Cancel(_) => "cancel",
            Message::Port(_) => "port",
            Message::SuggestPiece(_) => "suggest piece",
            Message::HaveAll => "have all",
            Message::HaveNone => "have none",
            Message::RejectRequest(_) => "reject request",
            Message::AllowedFast(_) => "allowed fast",
            Message::Extended { .. } => "extended",
        }
    }

    /// Payload bytes after the id.
    fn payload_len(&self) -> usize {
        match self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 0,
            Message::Have(_) | Message::SuggestPiece(_) | Message::AllowedFast(_) => 4,
            Message::Bitfield(b) => b.len(),
            Message::Request(_) | Message::Cancel(_) | Message::RejectRequest(_) => 12,
            Message::Piece { data, .. } => 8 + data.len(),
            Message::Port(_) => 2,
            Message::Extended { payload, .. } => 1 + payload.len(),
        }
    }

    /// Bytes [`Message::encode`] appends: the 4-byte length prefix plus the body.
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::KeepAlive => 4,
            _ => 4 + 1 + self.payload_len(),
        }
    }

    /// Appends the framed message (length prefix, id, payload) to `out`.
    ///
    /// # Panics
    /// If the body exceeds `u32::MAX` bytes, which no valid message does.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let body = self.encoded_len() - 4;
        let len = u32::try_from(body)
            .unwrap_or_else(|_| panic!("{} message of {body} bytes cannot be framed", self.name()));
        out.reserve(4 + body);
        out.extend_from_slice(&len.to_be_bytes());
        let Some(id) = self.id() else {
            return;
        };
        out.push(id);
        match *self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => {}
            Message::Have(i) | Message::SuggestPiece(i) | Message::AllowedFast(i) => {
                out.extend_from_slice(&i.to_be_bytes());
            }
            Message::Bitfield(b) => out.extend_from_slice(b),
            Message::Request(b) | Message::Cancel(b) | Message::RejectRequest(b) => {
                out.extend_from_slice(&b.index.to_be_bytes());
                out.extend_from_slice(&b.begin.to_be_bytes());
                out.extend_from_slice(&b.length.to_be_bytes());
            }
            Message::Piece { index, begin, data } => {
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(data);
            }
            Message::Port(p) => out.extend_from_slice(&p.to_be_bytes()),
            Message::Extended { id, payload } => {
                out.push(id);
                out.extend_from_slice(payload);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(m: Message<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out.len(), m.encoded_len(), "{}", m.name());
        out
    }

    fn dec(b: &[u8]) -> Result<Option<(Message<'_>, usize)>, WireError> {
        decode_message(b, super::super::MAX_MESSAGE_LEN)
    }

    fn block(index: u32, begin: u32, length: u32) -> BlockRef {
        BlockRef {
            index,
            begin,
            length,
        }
    }

    /// One of every kind, with fixed contents.
    fn samples(data: &[u8]) -> Vec<Message<'_>> {
        vec![
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have(7),
            Message::Bitfield(data),
            Message::Request(block(1, 16384, 16384)),
            Message::Piece {
                index: 1,
                begin: 0,
                data,
            },
            Message::Cancel(block(1, 16384, 16384)),
            Message::Port(6881),
            Message::SuggestPiece(3),
            Message::HaveAll,
            Message::HaveNone,
            Message::RejectRequest(block(2, 0, 16384)),
            Message::AllowedFast(9),
            Message::Extended {
                id: 0,
                payload: b"d1:md11:ut_metadatai3eee",
            },
        ]
    }

    #[test]
    fn bep3_vectors() {
        assert_eq!(enc(Message::KeepAlive), [0, 0, 0, 0]);
        assert_eq!(enc(Message::Choke), [0, 0, 0, 1, 0]);
        assert_eq!(enc(Message::Unchoke), [0, 0, 0, 1, 1]);
        assert_eq!(enc(Message::Interested), [0, 0, 0, 1, 2]);
        assert_eq!(enc(Message::NotInterested), [0, 0, 0, 1, 3]);
        assert_eq!(enc(Message::Have(0x0102_0304)), [0, 0, 0, 5, 4, 1, 2, 3, 4]);
        assert_eq!(
            enc(Message::Bitfield(&[0xff, 0x80])),
            [0, 0, 0, 3, 5, 0xff, 0x80]
        );
        assert_eq!(
            enc(Message::Request(block(1, 0x4000, 0x4000))),
            [0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0]
        );
        assert_eq!(
            enc(Message::Piece {
                index: 2,
                begin: 3,
                data: b"xy"
            }),
            [0, 0, 0, 11, 7, 0, 0, 0, 2, 0, 0, 0, 3, b'x', b'y']
        );
        assert_eq!(enc(Message::Port(0x1ae1)), [0, 0, 0, 3, 9, 0x1a, 0xe1]);
        assert_eq!(enc(Message::HaveAll), [0, 0, 0, 1, 0x0e]);
        assert_eq!(enc(Message::HaveNone), [0, 0, 0, 1, 0x0f]);
        assert_eq!(
            enc(Message::SuggestPiece(1)),
            [0, 0, 0, 5, 0x0d, 0, 0, 0, 1]
        );
        assert_eq!(enc(Message::AllowedFast(1)), [0, 0, 0, 5, 0x11, 0, 0, 0, 1]);
        assert_eq!(
            enc(Message::RejectRequest(block(0, 0, 1)))[..5],
            [0, 0, 0, 13, 0x10]
        );
        assert_eq!(
            enc(Message::Extended {
                id: 3,
                payload: b"de"
            }),
            [0, 0, 0, 4, 20, 3, b'd', b'e']
        );
    }

    #[test]
    fn piece_header_matches_encode() {
        let data = [9u8; 100];
        let full = enc(Message::Piece {
            index: 5,
            begin: 16384,
            data: &data,
        });
        assert_eq!(piece_header(5, 16384, 100), full[..13]);
    }

    #[test]
    fn samples_round_trip_and_stream() {
        let data = [0xA5u8; 37];
        let msgs = samples(&data);
        let mut stream = Vec::new();
        for m in &msgs {
            let b = enc(*m);
            assert_eq!(dec(&b), Ok(Some((*m, b.len()))), "{}", m.name());
            stream.extend_from_slice(&b);
        }
        let mut pos = 0;
        let mut got = Vec::new();
        while let Some((m, used)) = dec(&stream[pos..]).unwrap() {
            got.push(m);
            pos += used;
        }
        assert_eq!(pos, stream.len());
        assert_eq!(got, msgs);
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let data = [1u8; 20];
        for m in samples(&data) {
            let b = enc(m);
            for n in 0..b.len() {
                assert_eq!(dec(&b[..n]), Ok(None), "{} prefix {n}", m.name());
            }
        }
    }

    #[test]
    fn every_length_prefix_never_panics() {
        let data = [1u8; 20];
        for m in samples(&data) {
            let mut b = enc(m);
            b.extend_from_slice(&[0; 8]);
            for len in 0..40u32 {
                b[..4].copy_from_slice(&len.to_be_bytes());
                for n in 0..=b.len() {
                    let _ = dec(&b[..n]);
                }
            }
        }
    }

    #[test]
    fn oversize_rejected_before_body() {
        let cap = 1000;
        let b = 1001u32.to_be_bytes();
        assert_eq!(
            decode_message(&b, cap),
            Err(WireError::MessageTooLong {
                len: 1001,
                max: 1000
            })
        );
        assert_eq!(decode_message(&1000u32.to_be_bytes(), cap), Ok(None));
        assert!(decode_message(&u32::MAX.to_be_bytes(), u32::MAX)
            .unwrap()
            .is_none());
    }

    #[test]
    fn unknown_ids_rejected() {
        for id in (0..=255u8).filter(|i| !matches!(i, 0..=9 | 13..=17 | 20)) {
            let b = [0, 0, 0, 1, id];
            assert_eq!(dec(&b), Err(WireError::UnknownMessage { id }));
        }
    }

    #[test]
    fn wrong_payload_sizes_rejected() {
        let cases: &[&[u8]] = &[
            &[0, 0, 0, 2, 0, 0],                                // choke with payload
            &[0, 0, 0, 4, 4, 0, 0, 0],                          // short have
            &[0, 0, 0, 6, 4, 0, 0, 0, 0, 0],                    // long have
            &[0, 0, 0, 12, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // short request
            &[0, 0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0],              // piece without begin
            &[0, 0, 0, 2, 9, 1],                                // short port
            &[0, 0, 0, 2, 14, 0],                               // have all with payload
            &[0, 0, 0, 1, 20],                                  // extended without id
        ];
        for b in cases {
            assert!(
                matches!(dec(b), Err(WireError::BadPayloadLength { .. })),
                "{b:?} -> {:?}",
                dec(b)
            );
        }
        let e = dec(&[0, 0, 0, 4, 4, 0, 0, 0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "have message with a 3-byte payload; expected 4 bytes"
        );
    }

    fn build(kind: u8, a: u32, b: u32, c: u32, data: &[u8]) -> Message<'_> {
        match kind % 17 {
            0 => Message::KeepAlive,
            1 => Message::Choke,
            2 => Message::Unchoke,
            3 => Message::Interested,
            4 => Message::NotInterested,
            5 => Message::Have(a),
            6 => Message::Bitfield(data),
            7 => Message::Request(block(a, b, c)),
            8 => Message::Piece {
                index: a,
                begin: b,
                data,
            },
            9 => Message::Cancel(block(a, b, c)),
            10 => Message::Port(c as u16),
            11 => Message::SuggestPiece(a),
            12 => Message::HaveAll,
            13 => Message::HaveNone,
            14 => Message::RejectRequest(block(a, b, c)),
            15 => Message::AllowedFast(a),
            _ => Message::Extended {
                id: b as u8,
                payload: data,
            },
        }
    }

    proptest! {
        #[test]
        fn round_trip(kind: u8, a: u32, b: u32, c: u32,
                      data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let m = build(kind, a, b, c, &data);
            let bytes = enc(m);
            prop_assert_eq!(dec(&bytes), Ok(Some((m, bytes.len()))));
            // A following message is left alone.
            let mut two = bytes.clone();
            two.extend_from_slice(&[0, 0, 0, 1, 1]);
            prop_assert_eq!(dec(&two), Ok(Some((m, bytes.len()))));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                    cap in 0u32..64) {
            let mut pos = 0;
            while let Ok(Some((_, used))) = decode_message(&bytes[pos..], cap) {
                prop_assert!(used >= 4 && pos + used <= bytes.len());
                pos += used;
            }
        }
    }
}
