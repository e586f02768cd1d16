//! BEP 9 `ut_metadata` messages: a bencoded dictionary (`msg_type`, `piece`, and
//! `total_size` on data), followed on data messages by the piece's bytes.
//!
//! The info dictionary travels in [`METADATA_PIECE_LEN`] pieces; every piece but the
//! last is full. Decoding checks the shape only; whether a data piece has the right
//! length for its index is the fetcher's check (it knows the total size it expects).

use crate::bencode::{self, Encoder};

use super::WireError;

/// Bytes in every metadata piece but the last (BEP 9).
pub const METADATA_PIECE_LEN: usize = 16 * 1024;

const EXT: &str = "ut_metadata";

/// One `ut_metadata` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage<'a> {
    /// Asks for piece `piece` of the info dictionary.
    Request {
        /// Piece index.
        piece: u32,
    },
    /// Piece `piece` of an info dictionary of `total_size` bytes.
    Data {
        /// Piece index.
        piece: u32,
        /// Size of the whole info dictionary.
        total_size: u64,
        /// The piece's bytes.
        data: &'a [u8],
    },
    /// The sender will not send piece `piece`.
    Reject {
        /// Piece index.
        piece: u32,
    },
}

impl<'a> MetadataMessage<'a> {
    /// Decodes the payload of a `ut_metadata` extension message (after the
    /// extension id). Unknown `msg_type` values are errors.
    pub fn decode(payload: &'a [u8]) -> Result<Self, WireError> {
        let (dict, used) = bencode::decode_prefix(payload)
            .map_err(|source| WireError::ExtensionBencode { ext: EXT, source })?;
        let int = |key: &str| dict.get(key).and_then(|v| v.as_int());
        let bad = |problem| WireError::ExtensionField { ext: EXT, problem };
        let msg_type = int("msg_type").ok_or(bad("`msg_type` is missing"))?;
        let piece = int("piece").ok_or(bad("`piece` is missing"))?;
        let piece = u32::try_from(piece).map_err(|_| bad("`piece` is out of range"))?;
        let rest = &payload[used..];
        match msg_type {
            0 if rest.is_empty() => Ok(MetadataMessage::Request { piece }),
            2 if rest.is_empty() => Ok(MetadataMessage::Reject { piece }),
            0 | 2 => Err(bad("request or reject carries trailing bytes")),
            1 => {
                let total = int("total_size").ok_or(bad("data without `total_size`"))?;
                let total_size = u64::try_from(total).map_err(|_| bad("negative `total_size`"))?;
                if rest.len() > METADATA_PIECE_LEN {
                    return Err(bad("data piece longer than 16 KiB"));
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data: rest,
                })
            }
            _ => Err(bad("unknown `msg_type`")),
        }
    }

    /// Appends the encoded payload (without the extension id) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut e = Encoder::new();
        e.dict();
        match *self {
            MetadataMessage::Request { piece } => {
                e.str("msg_type").int(0).str("piece").int(piece.into());
            }
            MetadataMessage::Reject { piece } => {
                e.str("msg_type").int(2).str("piece").int(piece.into());
            }
            MetadataMessage::Data {
                piece, total_size, ..
            } => {
                // Sizes are capped far below i64::MAX by whoever serves them.
                let total = i64::try_from(total_size).unwrap_or(i64::MAX);
                e.str("msg_type").int(1).str("piece").int(piece.into());
                e.str("total_size").int(total);
            }
        }
        e.end();
        out.extend_from_slice(&e.finish());
        if let MetadataMessage::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
    }
}

/// Pieces in an info dictionary of `size` bytes.
pub fn metadata_pieces(size: usize) -> usize {
    size.div_ceil(METADATA_PIECE_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bep9_examples() {
        let m = MetadataMessage::decode(b"d8:msg_typei0e5:piecei0ee").unwrap();
        assert_eq!(m, MetadataMessage::Request { piece: 0 });
        let m =
            MetadataMessage::decode(b"d8:msg_typei1e5:piecei0e10:total_sizei34256eexxxx").unwrap();
        assert_eq!(
            m,
            MetadataMessage::Data {
                piece: 0,
                total_size: 34256,
                data: b"xxxx"
            }
        );
        let m = MetadataMessage::decode(b"d8:msg_typei2e5:piecei0ee").unwrap();
        assert_eq!(m, MetadataMessage::Reject { piece: 0 });
    }

    #[test]
    fn round_trips() {
        let data = vec![7u8; 100];
        for m in [
            MetadataMessage::Request { piece: 3 },
            MetadataMessage::Reject { piece: 9 },
            MetadataMessage::Data {
                piece: 1,
                total_size: 16484,
                data: &data,
            },
        ] {
            let mut out = Vec::new();
            m.encode(&mut out);
            assert_eq!(MetadataMessage::decode(&out).unwrap(), m);
        }
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            &b"d8:msg_typei9e5:piecei0ee"[..],
            b"d5:piecei0ee",
            b"d8:msg_typei0ee",
            b"d8:msg_typei0e5:piecei-1ee",
            b"d8:msg_typei1e5:piecei0ee",
            b"d8:msg_typei0e5:piecei0eextra",
            b"le",
            b"",
        ] {
            assert!(MetadataMessage::decode(bad).is_err(), "{bad:?}");
        }
        let mut long = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
        long.extend(vec![0u8; METADATA_PIECE_LEN + 1]);
        assert!(MetadataMessage::decode(&long).is_err());
    }

    #[test]
    fn piece_count() {
        assert_eq!(metadata_pieces(0), 0);
        assert_eq!(metadata_pieces(1), 1);
        assert_eq!(metadata_pieces(METADATA_PIECE_LEN), 1);
        assert_eq!(metadata_pieces(METADATA_PIECE_LEN + 1), 2);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = MetadataMessage::decode(&bytes);
        }
    }
}
