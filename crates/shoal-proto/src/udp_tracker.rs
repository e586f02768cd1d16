//! UDP tracker packets (BEP 15), both directions, as plain bytes in and typed values out.
//!
//! Requests: `connect` (16 bytes), `announce` (98 bytes; trailing BEP 41 options are
//! ignored), `scrape` (16 bytes plus 20 per info-hash, at most [`MAX_UDP_SCRAPE`]).
//! Responses: `connect`, `announce` (6-byte IPv4 or 18-byte IPv6 peers: the family is
//! that of the socket the request came over, so the parser is told which), `scrape`,
//! and `error`. All integers are big-endian.
//!
//! Parsers never panic and never allocate more than the datagram allows. A
//! [`UdpParseError`] carries the transaction id when one could be read, so a tracker
//! can tell the client what was wrong with an `error` response instead of going quiet;
//! without it the packet is dropped. Connection ids are opaque here: minting and
//! checking them (a keyed hash of address and time) is the tracker's job.
//!
//! Files: `request` (client to tracker: parse and write), `response` (tracker to
//! client: parse and write), `client` (the client side's exchange as a sans-IO state
//! machine: connect, cached connection id, retransmission, reply matching). Every
//! public item is re-exported here, so `shoal_proto::udp_tracker::X` is the path.
//!
//! ```
//! use shoal_proto::udp_tracker::{parse_request, Request, Response};
//! let mut buf = Vec::new();
//! Request::Connect { transaction_id: 7 }.write(&mut buf);
//! assert_eq!(parse_request(&buf), Ok(Request::Connect { transaction_id: 7 }));
//! let mut out = Vec::new();
//! Response::Connect { transaction_id: 7, connection_id: 42 }.write(&mut out);
//! assert_eq!(Response::parse(&out, false).unwrap(),
//!     Response::Connect { transaction_id: 7, connection_id: 42 });
//! ```

mod client;
mod request;
mod response;

pub use client::{AnnounceExchange, Connection, UdpClientError, UdpTimeouts};
pub use request::{parse_request, Request, UdpAnnounce};
pub use response::Response;

use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

/// The magic `protocol_id` of a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Most info-hashes one UDP scrape may carry (BEP 15: about 74 fit a safe datagram).
pub const MAX_UDP_SCRAPE: usize = 74;
/// Size of an announce request without BEP 41 options.
pub const ANNOUNCE_LEN: usize = 98;
/// Largest error message we put into or accept from an `error` response.
pub const MAX_ERROR_MESSAGE: usize = 1024;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;
/// Why a datagram is not a valid request or response.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason}")]
pub struct UdpParseError {
    /// The transaction id, when the packet was long enough to carry one: the tracker
    /// can then answer with an `error` response.
    pub transaction_id: Option<u32>,
    /// What was wrong, as a sentence to send back.
    pub reason: UdpProblem,
}

impl UdpParseError {
    /// A packet too short to carry even its transaction id.
    pub(crate) fn too_short() -> Self {
        UdpParseError {
            transaction_id: None,
            reason: UdpProblem::TooShort,
        }
    }
}

/// The kinds of malformed UDP tracker packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum UdpProblem {
    /// Shorter than the fixed part of its action.
    #[error("packet too short for its action")]
    TooShort,
    /// A connect request without the BEP 15 magic.
    #[error("connect request has the wrong protocol id")]
    BadProtocolId,
    /// An action number this protocol does not define.
    #[error("unknown action")]
    UnknownAction,
    /// An announce event outside 0-3.
    #[error("invalid announce event: expected 0 to 3")]
    BadEvent,
    /// Scrape length is not 16 plus a multiple of 20, or names no torrent.
    #[error("scrape must carry 1 or more whole 20-byte info-hashes")]
    BadScrapeLength,
    /// More info-hashes than [`MAX_UDP_SCRAPE`].
    #[error("too many info-hashes in one scrape: at most 74")]
    TooManyHashes,
    /// Peer or scrape entries of a response do not divide evenly.
    #[error("response entries are not whole")]
    BadEntries,
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_be_bytes(a))
}

fn array20(b: &[u8], at: usize) -> Option<[u8; 20]> {
    let s = b.get(at..at.checked_add(20)?)?;
    let mut a = [0u8; 20];
    a.copy_from_slice(s);
    Some(a)
}

/// Whether `addr` should get 18-byte peers: a native IPv6 source (an IPv4-mapped
/// source on a dual-stack socket is an IPv4 client).
pub fn wants_v6(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(_) => false,
        IpAddr::V6(ip) => ip.to_ipv4_mapped().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_of_requester() {
        assert!(!wants_v6(&"1.2.3.4:1".parse().unwrap()));
        assert!(!wants_v6(&"[::ffff:1.2.3.4]:1".parse().unwrap()));
        assert!(wants_v6(&"[::1]:1".parse().unwrap()));
    }
}
