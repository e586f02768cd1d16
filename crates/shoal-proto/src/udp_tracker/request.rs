//! Requests from client to tracker (BEP 15 `connect`, `announce`, `scrape`): parsed by
//! the tracker from untrusted datagrams, written by the client.
//!
//! An announce is [`ANNOUNCE_LEN`] bytes; trailing BEP 41 options are ignored. A scrape
//! carries 1 to [`MAX_UDP_SCRAPE`] info-hashes. Errors carry the transaction id when
//! one could be read (see [`UdpParseError`]).

use std::net::Ipv4Addr;

use super::{
    array20, be_u32, be_u64, UdpParseError, UdpProblem, ACTION_ANNOUNCE, ACTION_CONNECT,
    ACTION_SCRAPE, ANNOUNCE_LEN, MAX_UDP_SCRAPE, PROTOCOL_ID,
};
use crate::ids::{InfoHash, PeerId};
use crate::tracker::AnnounceEvent;

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
        return Err(UdpParseError::too_short());
    };
    let Some(tid) = transaction_id else {
        return Err(UdpParseError::too_short());
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

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
            let _ = parse_request(&bytes);
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
        fn mutated_requests_never_panic(i in 0usize..6, edits in crate::smoke::edits()) {
            let reqs = requests();
            let mut b = Vec::new();
            reqs[i % reqs.len()].write(&mut b);
            if let Ok(req) = parse_request(&crate::smoke::mutate(&b, &edits)) {
                let mut again = Vec::new();
                req.write(&mut again);
                prop_assert_eq!(parse_request(&again), Ok(req));
            }
        }
    }
}
