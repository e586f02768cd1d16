//! HTTP tracker messages (BEP 3 tracker section, BEP 23 compact peers, BEP 7 `peers6`,
//! BEP 48 scrape), for both sides: the client builds announce queries and parses
//! responses, the tracker parses queries and encodes responses.
//!
//! Sans-IO: query strings in, bencoded bytes out, and back. Nothing here knows about
//! sockets or HTTP framing. Server-side parsers never panic on input; every error
//! displays as a sentence fit to send back as a bencoded `failure reason`.
//!
//! Compact peer lists go through [`crate::peers`] (IPv4-mapped IPv6 addresses are
//! sent as IPv4 in `peers`).
//!
//! The server-side hot path ([`AnnounceRequest::from_query`],
//! [`AnnounceResponse::encode_into`]) avoids allocations where it can: the query is
//! walked in place, ids are decoded straight into arrays, and responses are written
//! into a caller-owned buffer.
//!
//! ```
//! use shoal_proto::tracker::{AnnounceRequest, AnnounceResponse};
//! use shoal_proto::{InfoHash, PeerId};
//!
//! let req = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881);
//! let parsed = AnnounceRequest::from_query(req.to_query().as_bytes()).unwrap();
//! assert_eq!(parsed, req);
//!
//! let resp = AnnounceResponse { interval: 60, peers: vec!["10.0.0.1:6881".parse().unwrap()],
//!     ..Default::default() };
//! assert_eq!(AnnounceResponse::parse(&resp.encode(true)).unwrap(), resp);
//! ```

mod announce;
mod scrape;

pub use announce::{
    announce_url, encode_failure, AnnounceEvent, AnnounceRequest, AnnounceResponse,
};
pub use scrape::{scrape_url, ScrapeRequest, ScrapeResponse, ScrapeStats, MAX_SCRAPE_HASHES};

use std::borrow::Cow;
use thiserror::Error;

use crate::bencode::{BencodeError, Value};
use crate::peers::PeersError;

/// Why a tracker query or response was rejected, or the tracker's own refusal.
///
/// Display strings are complete sentences: a tracker can send them back verbatim as
/// the `failure reason` of a bad announce or scrape.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TrackerError {
    /// The tracker answered with a `failure reason`; the text is the tracker's, verbatim.
    #[error("tracker refused the request: {0}")]
    Failure(String),
    /// A required query parameter is absent.
    #[error("missing {0} parameter")]
    MissingParam(&'static str),
    /// `info_hash` or `peer_id` does not decode to exactly 20 bytes.
    #[error("{param} must be 20 bytes, got {got}; send the raw 20 bytes percent-encoded")]
    BadIdLength {
        /// `info_hash` or `peer_id`.
        param: &'static str,
        /// Decoded length received.
        got: usize,
    },
    /// A numeric parameter is not a non-negative decimal integer in range.
    #[error("invalid {param} \"{value}\": expected a non-negative decimal integer")]
    InvalidNumber {
        /// The parameter name.
        param: &'static str,
        /// The offending value, shortened and escaped.
        value: String,
    },
    /// `port` is not in 1..=65535.
    #[error("invalid port \"{0}\": expected a number from 1 to 65535")]
    InvalidPort(String),
    /// `event` is not one of the BEP 3 values.
    #[error("invalid event \"{0}\": expected started, completed, stopped or empty")]
    InvalidEvent(String),
    /// A `%` escape in the query is not followed by two hex digits.
    #[error("malformed percent-encoding in the query string")]
    BadEscape,
    /// A scrape asked for more info-hashes than a tracker answers at once.
    #[error("too many info_hash parameters: at most {max} per scrape")]
    TooManyInfoHashes {
        /// The cap, [`MAX_SCRAPE_HASHES`].
        max: usize,
    },
    /// A tracker response is not valid bencode.
    #[error("tracker response is not valid bencode: {0}")]
    Bencode(#[from] BencodeError),
    /// A tracker response's `peers` or `peers6` is malformed.
    #[error("malformed tracker response: {0}")]
    Peers(#[from] PeersError),
    /// A tracker response is bencode but not shaped like an announce or scrape reply.
    #[error("malformed tracker response: {0}")]
    Malformed(&'static str),
}

/// Iterates `key=value` pairs of a raw query string, without decoding.
fn query_pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&c| c == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.iter().position(|&c| c == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        })
}

/// Percent-decodes (with `+` as space), borrowing when there is nothing to decode.
fn unescape(raw: &[u8]) -> Result<Cow<'_, [u8]>, TrackerError> {
    if raw.iter().any(|&c| c == b'%' || c == b'+') {
        crate::urlenc::decode(raw, true)
            .map(Cow::Owned)
            .ok_or(TrackerError::BadEscape)
    } else {
        Ok(Cow::Borrowed(raw))
    }
}

/// Percent-decodes a 20-byte id straight into an array.
fn decode_id(param: &'static str, raw: &[u8]) -> Result<[u8; 20], TrackerError> {
    let mut out = [0u8; 20];
    let mut len = 0usize;
    let mut i = 0;
    while i < raw.len() {
        let byte = match raw[i] {
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(crate::ids::hex_val);
                let lo = raw.get(i + 2).copied().and_then(crate::ids::hex_val);
                i += 3;
                match (hi, lo) {
                    (Some(h), Some(l)) => h << 4 | l,
                    _ => return Err(TrackerError::BadEscape),
                }
            }
            b'+' => {
                i += 1;
                b' '
            }
            c => {
                i += 1;
                c
            }
        };
        if let Some(slot) = out.get_mut(len) {
            *slot = byte;
        }
        len += 1;
    }
    if len != 20 {
        return Err(TrackerError::BadIdLength { param, got: len });
    }
    Ok(out)
}

/// Parses a canonical-enough unsigned decimal (digits only, no sign, no overflow).
fn parse_u64(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 20 {
        return None;
    }
    raw.iter().try_fold(0u64, |n, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// A shortened, printable copy of untrusted input for error messages.
fn shown(raw: &[u8]) -> String {
    const MAX: usize = 40;
    let text = String::from_utf8_lossy(&raw[..raw.len().min(MAX)]);
    let mut s: String = text.escape_debug().collect();
    if raw.len() > MAX {
        s.push_str("...");
    }
    s
}

/// Bencode writers into a caller-owned buffer (no intermediate allocations).
fn put_uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(uint_digits(n, &mut [0; 20]));
}

/// Decimal digits of `n`, formatted into `buf` without allocating.
fn uint_digits(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

fn put_int(out: &mut Vec<u8>, n: u64) {
    out.push(b'i');
    put_uint(out, n);
    out.push(b'e');
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uint(out, b.len() as u64);
    out.push(b':');
    out.extend_from_slice(b);
}

/// Reads an optional non-negative integer that must fit in `u32`.
fn get_u32(dict: &Value<'_>, key: &'static str) -> Result<Option<u32>, TrackerError> {
    match dict.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_int()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or(TrackerError::Malformed(key)),
    }
}

/// The `failure reason` of a response dict, if it has one.
fn failure_of(dict: &Value<'_>) -> Option<TrackerError> {
    dict.get("failure reason").map(|r| {
        TrackerError::Failure(String::from_utf8_lossy(r.as_bytes().unwrap_or_default()).into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_id_counts_true_length() {
        let raw = crate::urlenc::encode(&[0xab; 20]);
        assert_eq!(decode_id("info_hash", raw.as_bytes()).unwrap(), [0xab; 20]);
        assert_eq!(
            decode_id("info_hash", b"%ab%cd"),
            Err(TrackerError::BadIdLength {
                param: "info_hash",
                got: 2
            })
        );
        let long = crate::urlenc::encode(&[1; 25]);
        assert_eq!(
            decode_id("peer_id", long.as_bytes()),
            Err(TrackerError::BadIdLength {
                param: "peer_id",
                got: 25
            })
        );
        assert_eq!(decode_id("x", b"%zz"), Err(TrackerError::BadEscape));
        assert_eq!(decode_id("x", b"abc%4"), Err(TrackerError::BadEscape));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"1e3"), None);
        let mut out = Vec::new();
        put_int(&mut out, 0);
        put_int(&mut out, u64::MAX);
        assert_eq!(out, b"i0ei18446744073709551615e");
    }

    #[test]
    fn shown_is_short_and_printable() {
        assert_eq!(shown(b"a\nb"), "a\\nb");
        assert!(shown(&[b'x'; 100]).ends_with("..."));
    }
}
