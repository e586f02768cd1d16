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

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use thiserror::Error;

use crate::ids::{InfoHash, PeerId};
use crate::peers;
use crate::tracker::{AnnounceEvent, ScrapeStats};

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

/// A UDP announce request (BEP 15 `action = 1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpAnnounce {
    /// The id a `connect` handed out.
    pub connection_id: u64,
    /// Echoed in the response.
    pub transaction_id: u32,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing client.
    pub peer_id: PeerId,
    /// Bytes downloaded.
    pub downloaded: u64,
    /// Bytes missing; 0 means seeder.
    pub left: u64,
    /// Bytes uploaded.
    pub uploaded: u64,
    /// Lifecycle event.
    pub event: AnnounceEvent,
    /// IPv4 address the client claims (0: use the packet's source).
    pub ip: Ipv4Addr,
    /// Opaque key.
    pub key: u32,
    /// Peers wanted; `None` for the tracker's default (sent as -1).
    pub num_want: Option<u32>,
    /// The client's listening port.
    pub port: u16,
}

/// A request from client to tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Asks for a connection id.
    Connect {
        /// Echoed in the response.
        transaction_id: u32,
    },
    /// An announce.
    Announce(UdpAnnounce),
    /// Counts for up to [`MAX_UDP_SCRAPE`] torrents.
    Scrape {
        /// The id a `connect` handed out.
        connection_id: u64,
        /// Echoed in the response.
        transaction_id: u32,
        /// Torrents asked about, in order.
        info_hashes: Vec<InfoHash>,
    },
}

/// A response from tracker to client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A fresh connection id.
    Connect {
        /// From the request.
        transaction_id: u32,
        /// To be sent with announces and scrapes.
        connection_id: u64,
    },
    /// Swarm counts and peers.
    Announce {
        /// From the request.
        transaction_id: u32,
        /// Seconds to wait before re-announcing.
        interval: u32,
        /// Leechers in the swarm.
        leechers: u32,
        /// Seeders in the swarm.
        seeders: u32,
        /// Peers of the request's address family (others are skipped when writing).
        peers: Vec<SocketAddr>,
    },
    /// Counts per requested torrent, in request order.
    Scrape {
        /// From the request.
        transaction_id: u32,
        /// One entry per requested info-hash.
        stats: Vec<ScrapeStats>,
    },
    /// The tracker refused the request.
    Error {
        /// From the request.
        transaction_id: u32,
        /// Human-readable reason.
        message: String,
    },
}

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

fn event_code(e: AnnounceEvent) -> u32 {
    match e {
        AnnounceEvent::None => 0,
        AnnounceEvent::Completed => 1,
        AnnounceEvent::Started => 2,
        AnnounceEvent::Stopped => 3,
    }
}

/// Parses a client's datagram.
pub fn parse_request(buf: &[u8]) -> Result<Request, UdpParseError> {
    let (Some(head), Some(action), transaction_id) =
        (be_u64(buf, 0), be_u32(buf, 8), be_u32(buf, 12))
    else {
        return Err(UdpParseError {
            transaction_id: None,
            reason: UdpProblem::TooShort,
        });
    };
    let Some(tid) = transaction_id else {
        return Err(UdpParseError {
            transaction_id: None,
            reason: UdpProblem::TooShort,
        });
    };
    let fail = |reason| UdpParseError {
        transaction_id: Some(tid),
        reason,
    };
    match action {
        ACTION_CONNECT if head == PROTOCOL_ID => Ok(Request::Connect {
            transaction_id: tid,
        }),
        // A wrong magic means this is not a BEP 15 client: stay silent.
        ACTION_CONNECT => Err(UdpParseError {
            transaction_id: None,
            reason: UdpProblem::BadProtocolId,
        }),
        ACTION_ANNOUNCE => parse_announce(buf, head, tid).ok_or(fail(UdpProblem::TooShort))?,
        ACTION_SCRAPE => {
            let rest = buf.get(16..).unwrap_or_default();
            if rest.is_empty() || rest.len() % 20 != 0 {
                return Err(fail(UdpProblem::BadScrapeLength));
            }
            if rest.len() / 20 > MAX_UDP_SCRAPE {
                return Err(fail(UdpProblem::TooManyHashes));
            }
            let info_hashes = rest
                .chunks_exact(20)
                .filter_map(|c| array20(c, 0).map(InfoHash))
                .collect();
            Ok(Request::Scrape {
                connection_id: head,
                transaction_id: tid,
                info_hashes,
            })
        }
        _ => Err(fail(UdpProblem::UnknownAction)),
    }
}

/// `None` when too short; the inner error for a bad event.
fn parse_announce(b: &[u8], cid: u64, tid: u32) -> Option<Result<Request, UdpParseError>> {
    if b.len() < ANNOUNCE_LEN {
        return None;
    }
    let event = match be_u32(b, 80)? {
        0 => AnnounceEvent::None,
        1 => AnnounceEvent::Completed,
        2 => AnnounceEvent::Started,
        3 => AnnounceEvent::Stopped,
        _ => {
            return Some(Err(UdpParseError {
                transaction_id: Some(tid),
                reason: UdpProblem::BadEvent,
            }))
        }
    };
    let num_want = be_u32(b, 92)?;
    let port = b.get(96..98)?;
    Some(Ok(Request::Announce(UdpAnnounce {
        connection_id: cid,
        transaction_id: tid,
        info_hash: InfoHash(array20(b, 16)?),
        peer_id: PeerId(array20(b, 36)?),
        downloaded: be_u64(b, 56)?,
        left: be_u64(b, 64)?,
        uploaded: be_u64(b, 72)?,
        event,
        ip: Ipv4Addr::from(be_u32(b, 84)?),
        key: be_u32(b, 88)?,
        // -1 (and any negative i32) means "default".
        num_want: i32::try_from(num_want).is_ok().then_some(num_want),
        port: u16::from_be_bytes([port[0], port[1]]),
    })))
}

impl Request {
    /// Appends the datagram to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Request::Connect { transaction_id } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
            }
            Request::Announce(a) => {
                out.extend_from_slice(&a.connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&a.transaction_id.to_be_bytes());
                out.extend_from_slice(&a.info_hash.0);
                out.extend_from_slice(&a.peer_id.0);
                out.extend_from_slice(&a.downloaded.to_be_bytes());
                out.extend_from_slice(&a.left.to_be_bytes());
                out.extend_from_slice(&a.uploaded.to_be_bytes());
                out.extend_from_slice(&event_code(a.event).to_be_bytes());
                out.extend_from_slice(&a.ip.octets());
                out.extend_from_slice(&a.key.to_be_bytes());
                let want = a.num_want.and_then(|n| i32::try_from(n).ok()).unwrap_or(-1);
                out.extend_from_slice(&want.to_be_bytes());
                out.extend_from_slice(&a.port.to_be_bytes());
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for h in info_hashes.iter().take(MAX_UDP_SCRAPE) {
                    out.extend_from_slice(&h.0);
                }
            }
        }
    }
}

impl Response {
    /// Appends the datagram to `out`, with IPv4 announce peers (see
    /// [`Response::write_for`] for IPv6 requesters).
    pub fn write(&self, out: &mut Vec<u8>) {
        self.write_for(false, out);
    }

    /// Appends the datagram to `out`, writing announce peers as 18-byte IPv6 entries
    /// when `v6` (the request came over IPv6), else as 6-byte IPv4 entries. Peers of
    /// the other family are skipped. Error messages are cut to
    /// [`MAX_ERROR_MESSAGE`] bytes.
    pub fn write_for(&self, v6: bool, out: &mut Vec<u8>) {
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&interval.to_be_bytes());
                out.extend_from_slice(&leechers.to_be_bytes());
                out.extend_from_slice(&seeders.to_be_bytes());
                if v6 {
                    peers::encode_compact_v6(peers, out);
                } else {
                    peers::encode_compact_v4(peers, out);
                }
            }
            Response::Scrape {
                transaction_id,
                stats,
            } => {
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for s in stats.iter().take(MAX_UDP_SCRAPE) {
                    out.extend_from_slice(&s.complete.to_be_bytes());
                    out.extend_from_slice(&s.downloaded.to_be_bytes());
                    out.extend_from_slice(&s.incomplete.to_be_bytes());
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                out.extend_from_slice(&ACTION_ERROR.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                let mut end = message.len().min(MAX_ERROR_MESSAGE);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                out.extend_from_slice(&message.as_bytes()[..end]);
            }
        }
    }

    /// Parses a tracker's datagram; `v6` says announce peers are 18-byte entries.
    pub fn parse(buf: &[u8], v6: bool) -> Result<Response, UdpParseError> {
        let (Some(action), Some(tid)) = (be_u32(buf, 0), be_u32(buf, 4)) else {
            return Err(UdpParseError {
                transaction_id: None,
                reason: UdpProblem::TooShort,
            });
        };
        let fail = |reason| UdpParseError {
            transaction_id: Some(tid),
            reason,
        };
        let rest = buf.get(8..).unwrap_or_default();
        match action {
            ACTION_CONNECT => Ok(Response::Connect {
                transaction_id: tid,
                connection_id: be_u64(rest, 0).ok_or(fail(UdpProblem::TooShort))?,
            }),
            ACTION_ANNOUNCE => {
                let (Some(interval), Some(leechers), Some(seeders)) =
                    (be_u32(rest, 0), be_u32(rest, 4), be_u32(rest, 8))
                else {
                    return Err(fail(UdpProblem::TooShort));
                };
                let list = rest.get(12..).unwrap_or_default();
                let peers = if v6 {
                    peers::parse_compact_v6(list)
                } else {
                    peers::parse_compact_v4(list)
                }
                .map_err(|_| fail(UdpProblem::BadEntries))?;
                Ok(Response::Announce {
                    transaction_id: tid,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            ACTION_SCRAPE => {
                if rest.len() % 12 != 0 {
                    return Err(fail(UdpProblem::BadEntries));
                }
                let stats = rest
                    .chunks_exact(12)
                    .filter_map(|c| {
                        Some(ScrapeStats {
                            complete: be_u32(c, 0)?,
                            downloaded: be_u32(c, 4)?,
                            incomplete: be_u32(c, 8)?,
                        })
                    })
                    .collect();
                Ok(Response::Scrape {
                    transaction_id: tid,
                    stats,
                })
            }
            ACTION_ERROR => {
                let msg = &rest[..rest.len().min(MAX_ERROR_MESSAGE)];
                Ok(Response::Error {
                    transaction_id: tid,
                    message: String::from_utf8_lossy(msg).into_owned(),
                })
            }
            _ => Err(fail(UdpProblem::UnknownAction)),
        }
    }
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
    use proptest::prelude::*;

    fn announce() -> UdpAnnounce {
        UdpAnnounce {
            connection_id: 0x1122_3344_5566_7788,
            transaction_id: 9,
            info_hash: InfoHash([0xab; 20]),
            peer_id: PeerId(*b"-SH0100-abcdefghijkl"),
            downloaded: 1,
            left: 2,
            uploaded: 3,
            event: AnnounceEvent::Started,
            ip: Ipv4Addr::UNSPECIFIED,
            key: 77,
            num_want: Some(50),
            port: 6881,
        }
    }

    fn requests() -> Vec<Request> {
        let mut no_want = announce();
        no_want.num_want = None;
        no_want.event = AnnounceEvent::Stopped;
        vec![
            Request::Connect { transaction_id: 1 },
            Request::Announce(announce()),
            Request::Announce(no_want),
            Request::Scrape {
                connection_id: 5,
                transaction_id: 6,
                info_hashes: vec![InfoHash([1; 20]), InfoHash([2; 20])],
            },
        ]
    }

    fn responses() -> Vec<(Response, bool)> {
        let v4: SocketAddr = "10.0.0.1:6881".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
        let announce = |peers, v6| {
            (
                Response::Announce {
                    transaction_id: 3,
                    interval: 1800,
                    leechers: 4,
                    seeders: 5,
                    peers,
                },
                v6,
            )
        };
        vec![
            (
                Response::Connect {
                    transaction_id: 1,
                    connection_id: u64::MAX,
                },
                false,
            ),
            announce(vec![v4, v4], false),
            announce(vec![v6], true),
            announce(vec![], false),
            (
                Response::Scrape {
                    transaction_id: 2,
                    stats: vec![ScrapeStats {
                        complete: 1,
                        downloaded: 2,
                        incomplete: 3,
                    }],
                },
                false,
            ),
            (
                Response::Error {
                    transaction_id: 4,
                    message: "no".into(),
                },
                false,
            ),
        ]
    }

    #[test]
    fn bep15_connect_vector() {
        let b = [
            0, 0, 4, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef,
        ];
        assert_eq!(
            parse_request(&b),
            Ok(Request::Connect {
                transaction_id: 0xdead_beef
            })
        );
    }

    #[test]
    fn announce_layout_is_98_bytes() {
        let mut b = Vec::new();
        Request::Announce(announce()).write(&mut b);
        assert_eq!(b.len(), ANNOUNCE_LEN);
        assert_eq!(&b[96..], &6881u16.to_be_bytes());
        // Event "started" is 2; BEP 41 options after the fixed part are ignored.
        assert_eq!(&b[80..84], &2u32.to_be_bytes());
        b.extend_from_slice(&[2, 5, b'/', b'a', b'n', b'n', b'o']);
        assert_eq!(parse_request(&b), Ok(Request::Announce(announce())));
    }

    #[test]
    fn requests_round_trip_and_every_prefix_is_safe() {
        for req in requests() {
            let mut b = Vec::new();
            req.write(&mut b);
            assert_eq!(parse_request(&b), Ok(req.clone()));
            for n in 0..b.len() {
                let r = parse_request(&b[..n]);
                // Scrape with one hash cut short is also malformed; nothing panics.
                assert!(r.is_err() || matches!(req, Request::Scrape { .. }), "{n}");
            }
        }
    }

    #[test]
    fn responses_round_trip_and_every_prefix_is_safe() {
        for (resp, v6) in responses() {
            let mut b = Vec::new();
            resp.write_for(v6, &mut b);
            assert_eq!(Response::parse(&b, v6), Ok(resp.clone()));
            for n in 0..b.len() {
                let _ = Response::parse(&b[..n], v6);
                let _ = Response::parse(&b[..n], !v6);
            }
        }
    }

    #[test]
    fn errors_say_whether_the_client_can_be_told() {
        let short = parse_request(&[0; 15]).unwrap_err();
        assert_eq!(short.transaction_id, None);
        let mut bad_magic = Vec::new();
        Request::Connect { transaction_id: 1 }.write(&mut bad_magic);
        bad_magic[0] = 1;
        assert_eq!(
            parse_request(&bad_magic).unwrap_err().reason,
            UdpProblem::BadProtocolId
        );
        let mut unknown = vec![0u8; 16];
        unknown[11] = 9;
        unknown[15] = 4;
        let e = parse_request(&unknown).unwrap_err();
        assert_eq!(
            (e.transaction_id, e.reason),
            (Some(4), UdpProblem::UnknownAction)
        );
        let mut b = Vec::new();
        Request::Announce(announce()).write(&mut b);
        b[83] = 7;
        assert_eq!(parse_request(&b).unwrap_err().reason, UdpProblem::BadEvent);
        let mut scrape = vec![0u8; 16 + 20 * 75];
        scrape[11] = 2;
        assert_eq!(
            parse_request(&scrape).unwrap_err().reason,
            UdpProblem::TooManyHashes
        );
        assert_eq!(
            parse_request(&scrape[..16]).unwrap_err().reason,
            UdpProblem::BadScrapeLength
        );
    }

    #[test]
    fn error_message_is_capped_on_a_char_boundary() {
        let r = Response::Error {
            transaction_id: 1,
            message: "é".repeat(MAX_ERROR_MESSAGE),
        };
        let mut b = Vec::new();
        r.write(&mut b);
        assert!(b.len() <= 8 + MAX_ERROR_MESSAGE);
        assert!(std::str::from_utf8(&b[8..]).is_ok());
    }

    #[test]
    fn family_of_requester() {
        assert!(!wants_v6(&"1.2.3.4:1".parse().unwrap()));
        assert!(!wants_v6(&"[::ffff:1.2.3.4]:1".parse().unwrap()));
        assert!(wants_v6(&"[::1]:1".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
            let _ = parse_request(&bytes);
            let _ = Response::parse(&bytes, false);
            let _ = Response::parse(&bytes, true);
        }

        #[test]
        fn random_actions_never_panic(action in 0u32..6, tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut b = PROTOCOL_ID.to_be_bytes().to_vec();
            b.extend_from_slice(&action.to_be_bytes());
            b.extend_from_slice(&tail);
            let _ = parse_request(&b);
        }
    }

    proptest! {
        #[test]
        fn mutated_packets_never_panic(i in 0usize..6, edits in crate::smoke::edits()) {
            let reqs = requests();
            let mut b = Vec::new();
            reqs[i % reqs.len()].write(&mut b);
            if let Ok(req) = parse_request(&crate::smoke::mutate(&b, &edits)) {
                let mut again = Vec::new();
                req.write(&mut again);
                prop_assert_eq!(parse_request(&again), Ok(req));
            }
            let (resp, v6) = &responses()[i];
            let mut b = Vec::new();
            resp.write_for(*v6, &mut b);
            let b = crate::smoke::mutate(&b, &edits);
            let _ = Response::parse(&b, *v6);
            let _ = Response::parse(&b, !*v6);
        }
    }
}
