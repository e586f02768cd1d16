//! Peer wire protocol: the handshake and length-prefixed messages of BEP 3, the fast
//! extension messages of BEP 6, and the framing of BEP 10 extension messages.
//!
//! Everything here maps bytes to values and back; the engine owns the socket.
//! [`decode_message`] takes whatever bytes have arrived and answers "need more"
//! (`Ok(None)`), a message plus the bytes it used, or an error that should drop the
//! peer. It checks the length prefix against a cap before waiting for the body, so a
//! peer cannot make us buffer more than [`max_message_len`] allows.
//!
//! Encoding appends to a caller-owned `Vec<u8>` (no per-message allocation), and
//! [`piece_header`] lets the engine send block data with a vectored write.
//!
//! ```
//! use shoal_proto::wire::{decode_message, BlockRef, Message, MAX_MESSAGE_LEN};
//! let mut out = Vec::new();
//! Message::Request(BlockRef { index: 1, begin: 0, length: 16384 }).encode(&mut out);
//! let (msg, used) = decode_message(&out, MAX_MESSAGE_LEN).unwrap().unwrap();
//! assert_eq!(used, out.len());
//! assert!(matches!(msg, Message::Request(b) if b.index == 1));
//! ```

mod bitfield;
mod extended;
mod handshake;
mod message;
mod pex;
mod ut_metadata;

pub use bitfield::{Bitfield, IterSet};
pub use extended::{ExtendedHandshake, EXTENDED_HANDSHAKE_ID};
pub use handshake::{Handshake, HANDSHAKE_LEN, PROTOCOL};
pub use message::{decode_message, piece_header, BlockRef, Message};
pub use pex::{
    PexMessage, PexPeer, PEX_FLAG_ENCRYPTION, PEX_FLAG_SEED, PEX_FLAG_UTP, PEX_MAX_PEERS,
};
pub use ut_metadata::{metadata_pieces, MetadataMessage, METADATA_PIECE_LEN};

use thiserror::Error;

use crate::bencode::BencodeError;

/// Size of a block, the unit of `request` and `piece` messages (BEP 3 convention).
pub const BLOCK_LEN: u32 = 16 * 1024;

/// Extra room above a full `piece` message for extension messages: a BEP 9 metadata
/// piece is 16 KiB of data after a bencoded dictionary of a few dozen bytes.
const EXTENSION_SLACK: u32 = 1024;

/// Default cap on a message body (the length prefix): a `piece` message with a full
/// block (9 + 16 KiB) or a BEP 9 metadata piece, plus slack for other extension
/// messages. Too small for the bitfield of a torrent with more than ~139k pieces; use
/// [`max_message_len`] once the piece count is known.
pub const MAX_MESSAGE_LEN: u32 = 9 + BLOCK_LEN + EXTENSION_SLACK;

/// Most pieces a torrent may have for [`max_message_len`] to admit its bitfield
/// (a 1 MiB bitfield; the metainfo would carry 160 MiB of piece hashes).
/// Metainfo parsing should refuse torrents with more pieces.
pub const MAX_PIECES: u32 = 8 * 1024 * 1024;

/// The message cap for a torrent with `num_pieces` pieces: [`MAX_MESSAGE_LEN`], or
/// a full bitfield message if that is larger. `num_pieces` is clamped to
/// [`MAX_PIECES`], so the cap never exceeds 1 MiB + 1 byte.
///
/// Before the metadata is known (magnet links) a peer's bitfield size is unknown too;
/// pass [`MAX_PIECES`] then, and check the bitfield once the piece count is known.
pub fn max_message_len(num_pieces: u32) -> u32 {
    let bitfield_msg = 1 + Bitfield::byte_len(num_pieces.min(MAX_PIECES));
    MAX_MESSAGE_LEN.max(bitfield_msg)
}

/// Why peer wire input was rejected. Any of these means the peer should be dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// Fewer than [`HANDSHAKE_LEN`] bytes were given to [`Handshake::decode`].
    #[error("handshake: need {HANDSHAKE_LEN} bytes, got {len}; wait for the rest")]
    HandshakeTruncated {
        /// Bytes available.
        len: usize,
    },
    /// The handshake does not start with `\x13BitTorrent protocol`.
    #[error(
        "handshake: not the BitTorrent protocol (first bytes {prefix:02x?}); not a BitTorrent peer"
    )]
    NotBitTorrent {
        /// Up to the first 20 bytes received.
        prefix: Vec<u8>,
    },
    /// A length prefix above the cap in force.
    #[error("message length {len} exceeds the cap of {max} bytes; the peer is broken or hostile")]
    MessageTooLong {
        /// Length announced by the peer.
        len: u32,
        /// The cap passed to [`decode_message`].
        max: u32,
    },
    /// A message id outside BEP 3, 5, 6 and 10 (0-9, 13-17, 20).
    #[error("unknown message id {id}")]
    UnknownMessage {
        /// The id byte.
        id: u8,
    },
    /// A message whose payload has the wrong size for its kind.
    #[error("{kind} message with a {len}-byte payload; expected {expected}")]
    BadPayloadLength {
        /// Message name, e.g. `request`.
        kind: &'static str,
        /// Payload bytes received (after the id).
        len: usize,
        /// What the protocol requires, e.g. `12 bytes`.
        expected: &'static str,
    },
    /// A bitfield of the wrong size for the torrent.
    #[error("bitfield is {len} bytes; {num_pieces} pieces need {expected}")]
    BitfieldLength {
        /// Bytes received.
        len: usize,
        /// Bytes required.
        expected: usize,
        /// Pieces in the torrent.
        num_pieces: u32,
    },
    /// A bitfield with bits set past the last piece.
    #[error("bitfield has spare bits set past piece {num_pieces}")]
    BitfieldSpareBits {
        /// Pieces in the torrent.
        num_pieces: u32,
    },
    /// The BEP 10 extended handshake is not valid bencode.
    #[error("extended handshake: {0}")]
    ExtendedBencode(#[source] BencodeError),
    /// A BEP 10 extended handshake field has the wrong type or range.
    #[error("extended handshake: `{key}` {problem}")]
    ExtendedField {
        /// The offending key (`m`, `p`, ...).
        key: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A BEP 9 or BEP 11 extension message that is not valid bencode.
    #[error("{ext} message: {source}")]
    ExtensionBencode {
        /// The extension (`ut_metadata`, `ut_pex`).
        ext: &'static str,
        /// The decoding error.
        #[source]
        source: BencodeError,
    },
    /// A BEP 9 or BEP 11 extension message with a missing or malformed field.
    #[error("{ext} message: {problem}")]
    ExtensionField {
        /// The extension (`ut_metadata`, `ut_pex`).
        ext: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps() {
        assert_eq!(MAX_MESSAGE_LEN, 16384 + 9 + 1024);
        assert_eq!(max_message_len(0), MAX_MESSAGE_LEN);
        assert_eq!(max_message_len(1000), MAX_MESSAGE_LEN);
        // 200k pieces: 25000-byte bitfield + id.
        assert_eq!(max_message_len(200_000), 25_001);
        assert_eq!(max_message_len(u32::MAX), 1024 * 1024 + 1);
        assert_eq!(max_message_len(MAX_PIECES), 1024 * 1024 + 1);
    }

    #[test]
    fn errors_read_well() {
        let e = WireError::MessageTooLong {
            len: 99999,
            max: 17417,
        };
        assert_eq!(
            e.to_string(),
            "message length 99999 exceeds the cap of 17417 bytes; the peer is broken or hostile"
        );
    }
}
