//! Responses from tracker to client (BEP 15 `connect`, `announce`, `scrape`, `error`):
//! written by the tracker, parsed by the client from untrusted datagrams.
//!
//! Announce peers are 6-byte IPv4 or 18-byte IPv6 entries; which one is not in the
//! packet but follows the family of the socket the request came over, so both the
//! writer and the parser are told. Error messages are capped at [`MAX_ERROR_MESSAGE`].

use std::net::SocketAddr;

use super::{
    be_u32, be_u64, UdpParseError, UdpProblem, ACTION_ANNOUNCE, ACTION_CONNECT, ACTION_ERROR,
    ACTION_SCRAPE, MAX_ERROR_MESSAGE, MAX_UDP_SCRAPE,
};
use crate::peers;
use crate::tracker::ScrapeStats;

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
            return Err(UdpParseError::too_short());
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
            let _ = Response::parse(&bytes, false);
            let _ = Response::parse(&bytes, true);
        }
    }

    proptest! {
        #[test]
        fn mutated_responses_never_panic(i in 0usize..6, edits in crate::smoke::edits()) {
            let (resp, v6) = &responses()[i];
            let mut b = Vec::new();
            resp.write_for(*v6, &mut b);
            let b = crate::smoke::mutate(&b, &edits);
            let _ = Response::parse(&b, *v6);
            let _ = Response::parse(&b, !*v6);
        }
    }
}
