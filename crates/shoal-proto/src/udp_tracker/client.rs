//! The client side of a BEP 15 announce, as a sans-IO state machine.
//!
//! [`AnnounceExchange`] is one announce to one tracker address: `connect` unless a live
//! connection id is at hand, then `announce` with it. It owns no socket, reads no clock
//! and draws no random numbers: the caller passes `now` and a fresh random transaction
//! id into every call, sends what [`AnnounceExchange::poll_transmit`] yields, calls
//! [`AnnounceExchange::handle_timeout`] once [`AnnounceExchange::poll_timeout`] is
//! reached, feeds every datagram from the tracker to
//! [`AnnounceExchange::handle_datagram`], and takes the outcome from
//! [`AnnounceExchange::poll_result`]. Afterwards [`AnnounceExchange::connection`] is the
//! id worth keeping for the next announce, beside the socket that obtained it: trackers
//! bind an id to the client's address *and port*.
//!
//! Invariants:
//! - A reply counts only if its transaction id is the one of the request in flight;
//!   anything else (a late reply to an earlier request, stray traffic, a datagram too
//!   short to carry an id) is ignored. A reply with our id that does not parse ends the
//!   exchange with [`UdpClientError::Malformed`].
//! - Each new request takes the fresh transaction id passed with the call that starts
//!   it; a retransmission repeats the request byte for byte, id included.
//! - A connection id is used for at most [`UdpTimeouts::connection_ttl`] after it was
//!   received (BEP 15: one minute). One that runs out while its announce is unanswered
//!   is requested anew at the next retransmission, keeping the back-off going. A cached
//!   id the tracker rejects with an `error` is dropped and a fresh one fetched once;
//!   any other `error` is the tracker's answer ([`UdpClientError::Failure`]).
//! - Retransmission follows BEP 15's `first * 2^n` (15 s, 30 s, 60 s, ...; `n` stops
//!   at 8), but the exchange gives up after [`UdpTimeouts::total`] (60 s by default:
//!   sends at 0, 15 and 45 s) instead of retrying for hours: the caller's announce loop
//!   has its own back-off.
//!
//! ```
//! use std::time::Instant;
//! use shoal_proto::tracker::AnnounceRequest;
//! use shoal_proto::udp_tracker::{parse_request, AnnounceExchange, Request, Response, UdpTimeouts};
//! use shoal_proto::{InfoHash, PeerId};
//!
//! let now = Instant::now();
//! let req = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881);
//! let mut x = AnnounceExchange::new(&req, false, None, UdpTimeouts::default(), now, 7);
//! let sent = parse_request(x.poll_transmit().unwrap()).unwrap();
//! assert_eq!(sent, Request::Connect { transaction_id: 7 });
//!
//! let mut reply = Vec::new();
//! Response::Connect { transaction_id: 7, connection_id: 42 }.write(&mut reply);
//! x.handle_datagram(&reply, now, 8);
//! let Request::Announce(a) = parse_request(x.poll_transmit().unwrap()).unwrap() else { panic!() };
//! assert_eq!((a.connection_id, a.transaction_id), (42, 8));
//! assert!(x.poll_result().is_none());
//! ```

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::{Request, Response, UdpAnnounce, UdpParseError, ANNOUNCE_LEN};
use crate::tracker::{AnnounceRequest, AnnounceResponse};

/// Longest wait added to an `Instant`: keeps absurd settings from overflowing it.
const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Retransmission and connection-id timing; [`Default`] is BEP 15's, bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpTimeouts {
    /// Wait before the first retransmission; the n-th waits `first * 2^n` (BEP 15: 15 s).
    pub first: Duration,
    /// Give up on one announce (connect included) after this long.
    pub total: Duration,
    /// Use a connection id for this long after receiving it (BEP 15: one minute).
    pub connection_ttl: Duration,
}

impl Default for UdpTimeouts {
    fn default() -> Self {
        UdpTimeouts {
            first: Duration::from_secs(15),
            total: Duration::from_secs(60),
            connection_ttl: Duration::from_secs(60),
        }
    }
}

/// A connection id from a tracker's `connect` reply and the end of its use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The id, sent with every announce.
    pub id: u64,
    /// From this instant on the id is not used any more.
    pub expires: Instant,
}

impl Connection {
    /// Whether the id may still be used at `now`.
    pub fn is_live(&self, now: Instant) -> bool {
        self.expires > now
    }
}

/// How an announce over UDP failed, apart from socket errors (the caller's).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UdpClientError {
    /// No answer within [`UdpTimeouts::total`].
    #[error("tracker did not answer in time")]
    Timeout,
    /// The tracker answered with an `error`; the text is the tracker's, verbatim.
    #[error("tracker refused the request: {0}")]
    Failure(String),
    /// A reply carrying our transaction id that is not valid BEP 15.
    #[error("tracker sent a malformed reply: {0}")]
    Malformed(UdpParseError),
    /// A reply carrying our transaction id for another action (`scrape`, or `connect`
    /// to an announce).
    #[error("tracker answered with the wrong action: {0}")]
    WrongAction(&'static str),
}

/// The request in flight.
#[derive(Debug, Clone, Copy)]
enum Step {
    Connect { tid: u32 },
    Announce { tid: u32, connection: Connection },
    Done,
}

/// One announce to one tracker address; see the module documentation for the calling
/// pattern.
#[derive(Debug)]
pub struct AnnounceExchange {
    /// The announce to send, connection and transaction ids filled in per request.
    announce: UdpAnnounce,
    /// Whether the tracker is at a native IPv6 address (18-byte peers).
    v6: bool,
    timeouts: UdpTimeouts,
    step: Step,
    /// The id worth keeping: received or passed in, not refused, not expired.
    connection: Option<Connection>,
    /// Whether the id of the `Announce` step came from the caller's cache (may be
    /// stale: the tracker may have restarted).
    cached: bool,
    /// Retransmissions of the current request: the `n` of `first * 2^n`.
    retries: u32,
    /// When the current request is sent again.
    wake: Instant,
    /// When the whole exchange fails.
    deadline: Instant,
    /// The current request's datagram, reused across retransmissions.
    out: Vec<u8>,
    /// Whether `out` is waiting to be sent.
    transmit: bool,
    result: Option<Result<AnnounceResponse, UdpClientError>>,
}

impl AnnounceExchange {
    /// Starts announcing `req` at `now` to a tracker at a native IPv6 address (`v6`) or
    /// not, with `cached` connection id if there is one. `tid` is a fresh random
    /// transaction id for the first request, which is ready at once in
    /// [`AnnounceExchange::poll_transmit`].
    pub fn new(
        req: &AnnounceRequest,
        v6: bool,
        cached: Option<Connection>,
        timeouts: UdpTimeouts,
        now: Instant,
        tid: u32,
    ) -> Self {
        let announce = UdpAnnounce {
            connection_id: 0,
            transaction_id: 0,
            info_hash: req.info_hash,
            peer_id: req.peer_id,
            downloaded: req.downloaded,
            left: req.left,
            uploaded: req.uploaded,
            event: req.event,
            // BEP 15: 0 means "the packet's source"; the field cannot carry IPv6 anyway.
            ip: Ipv4Addr::UNSPECIFIED,
            key: key_number(req.key.as_deref()),
            num_want: req.numwant,
            port: req.port,
        };
        let mut x = AnnounceExchange {
            announce,
            v6,
            timeouts,
            step: Step::Connect { tid },
            connection: None,
            cached: false,
            retries: 0,
            wake: now,
            deadline: later(now, timeouts.total),
            out: Vec::with_capacity(ANNOUNCE_LEN),
            transmit: false,
            result: None,
        };
        match cached {
            Some(c) if c.is_live(now) => {
                x.cached = true;
                x.connection = Some(c);
                x.begin_announce(c, now, tid);
            }
            _ => x.begin_connect(now, tid),
        }
        x
    }

    /// The datagram to send now, if any; each is yielded once.
    pub fn poll_transmit(&mut self) -> Option<&[u8]> {
        if !self.transmit {
            return None;
        }
        self.transmit = false;
        Some(&self.out)
    }

    /// When to call [`AnnounceExchange::handle_timeout`]; `None` once the exchange is
    /// over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.step {
            Step::Done => None,
            _ => Some(self.wake.min(self.deadline)),
        }
    }

    /// The outcome, once: the tracker's answer or why there is none.
    pub fn poll_result(&mut self) -> Option<Result<AnnounceResponse, UdpClientError>> {
        self.result.take()
    }

    /// The connection id to keep for the next announce from the same socket: the one
    /// received or passed in, unless the tracker refused it or it expired.
    pub fn connection(&self) -> Option<Connection> {
        self.connection
    }

    /// Retransmits (or reconnects, if the connection id ran out) when the wait is over,
    /// using `fresh_tid` for a new request; fails once the total time is spent. Early
    /// calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant, fresh_tid: u32) {
        if matches!(self.step, Step::Done) {
            return;
        }
        if now >= self.deadline {
            return self.finish(Err(UdpClientError::Timeout));
        }
        if now < self.wake {
            return;
        }
        self.retries += 1;
        match self.step {
            Step::Announce { connection, .. } if !connection.is_live(now) => {
                // BEP 15: an expired id is requested anew; the back-off goes on.
                self.connection = None;
                self.cached = false;
                self.step = Step::Connect { tid: fresh_tid };
                self.send(now);
            }
            _ => self.send(now),
        }
    }

    /// Interprets a datagram from the tracker received at `now`; `fresh_tid` is used if
    /// it leads to a new request (the announce after a connect).
    pub fn handle_datagram(&mut self, buf: &[u8], now: Instant, fresh_tid: u32) {
        let expected = match self.step {
            Step::Connect { tid } | Step::Announce { tid, .. } => tid,
            Step::Done => return,
        };
        let resp = match Response::parse(buf, self.v6) {
            Ok(r) => r,
            Err(e) if e.transaction_id == Some(expected) => {
                return self.finish(Err(UdpClientError::Malformed(e)))
            }
            Err(_) => return,
        };
        if transaction_id(&resp) != expected {
            return;
        }
        match (self.step, resp) {
            (Step::Connect { .. }, Response::Connect { connection_id, .. }) => {
                let connection = Connection {
                    id: connection_id,
                    expires: later(now, self.timeouts.connection_ttl),
                };
                self.connection = Some(connection);
                self.begin_announce(connection, now, fresh_tid);
            }
            (
                Step::Announce { .. },
                Response::Announce {
                    interval,
                    leechers,
                    seeders,
                    peers,
                    ..
                },
            ) => self.finish(Ok(AnnounceResponse {
                interval,
                complete: seeders,
                incomplete: leechers,
                peers,
                ..AnnounceResponse::default()
            })),
            // A tracker that forgot our id (restart, key rotation) says so with an error;
            // fetch a fresh id once rather than failing the announce.
            (Step::Announce { .. }, Response::Error { .. }) if self.cached => {
                self.cached = false;
                self.connection = None;
                self.begin_connect(now, fresh_tid);
            }
            (_, Response::Error { message, .. }) => {
                self.finish(Err(UdpClientError::Failure(message)))
            }
            (_, other) => self.finish(Err(UdpClientError::WrongAction(action_name(&other)))),
        }
    }

    fn begin_connect(&mut self, now: Instant, tid: u32) {
        self.step = Step::Connect { tid };
        self.retries = 0;
        self.send(now);
    }

    fn begin_announce(&mut self, connection: Connection, now: Instant, tid: u32) {
        self.step = Step::Announce { tid, connection };
        self.retries = 0;
        self.send(now);
    }

    /// Queues the current request and sets the retransmission time.
    fn send(&mut self, now: Instant) {
        let req = match self.step {
            Step::Connect { tid } => Request::Connect {
                transaction_id: tid,
            },
            Step::Announce { tid, connection } => Request::Announce(UdpAnnounce {
                connection_id: connection.id,
                transaction_id: tid,
                ..self.announce.clone()
            }),
            Step::Done => return,
        };
        self.out.clear();
        req.write(&mut self.out);
        self.transmit = true;
        // BEP 15 stops doubling at n = 8; the total bound comes much sooner by default.
        let wait = self.timeouts.first.saturating_mul(1 << self.retries.min(8));
        self.wake = later(now, wait).min(self.deadline);
    }

    fn finish(&mut self, result: Result<AnnounceResponse, UdpClientError>) {
        self.step = Step::Done;
        self.transmit = false;
        self.result = Some(result);
    }
}

/// `now + wait`, with waits capped at [`MAX_WAIT`] so the sum cannot overflow.
fn later(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait.min(MAX_WAIT)).unwrap_or(now)
}

fn transaction_id(r: &Response) -> u32 {
    match r {
        Response::Connect { transaction_id, .. }
        | Response::Announce { transaction_id, .. }
        | Response::Scrape { transaction_id, .. }
        | Response::Error { transaction_id, .. } => *transaction_id,
    }
}

fn action_name(r: &Response) -> &'static str {
    match r {
        Response::Connect { .. } => "connect",
        Response::Announce { .. } => "announce",
        Response::Scrape { .. } => "scrape",
        Response::Error { .. } => "error",
    }
}

/// The BEP 15 `key`: Shoal's HTTP key is 8 hex digits, sent as their value; any other
/// text is hashed (FNV-1a) so the same key always maps to the same number.
fn key_number(key: Option<&str>) -> u32 {
    let Some(key) = key else { return 0 };
    if key.len() <= 8 {
        if let Ok(n) = u32::from_str_radix(key, 16) {
            return n;
        }
    }
    key.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests;
