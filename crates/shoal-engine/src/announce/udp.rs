//! UDP tracker client (BEP 15): `connect`, then `announce` with the connection id.
//!
//! Two halves, as elsewhere in Shoal: [`Exchange`] is the protocol logic of one announce
//! as a plain state machine (what to send, what a datagram means, when to retransmit;
//! time is passed in), and [`UdpClient`] is the thin async shell that owns the sockets,
//! resolves the host and drives the machine. Packets are encoded and parsed by
//! `shoal_proto::udp_tracker`.
//!
//! Invariants:
//! - A response counts only if its transaction id is the one of the request in flight;
//!   anything else (a late reply to an earlier request, stray traffic) is ignored. The
//!   socket is connected to the tracker, so the kernel drops datagrams from elsewhere.
//! - A connection id is used for at most [`UdpTimeouts::connection_ttl`] after it was
//!   received (BEP 15: one minute). A cached id the tracker rejects with an `error`
//!   is dropped and a fresh one fetched once; any other `error` is the tracker's answer
//!   and surfaces verbatim as [`TrackerError::Failure`].
//! - Retransmission follows BEP 15's `15 * 2^n` seconds, but one announce gives up
//!   after [`UdpTimeouts::total`] (60 s by default: sends at 0, 15 and 45 s) instead of
//!   retrying for hours: the announce loop above has its own back-off.
//!
//! Sockets: one per tracker address, bound to an ephemeral port and kept together with
//! the connection id it obtained, because trackers (Shoal's included) bind the id to the
//! client's address *and port*: a socket per request would make every cached id useless.
//! A client lives in one torrent's announce task, and [`UdpClient::expire`] drops a
//! socket once its id is stale, so an idle torrent holds no descriptors between
//! announces. A single socket per session would save a connect when several torrents
//! announce to one tracker within the same minute, but it needs a task to route replies
//! by transaction id and an owner in the session; per-torrent sockets need neither and
//! get ICMP "port unreachable" as a fast error from a connected socket.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shoal_proto::tracker::{AnnounceRequest, AnnounceResponse, TrackerError};
use shoal_proto::udp_tracker::{wants_v6, Request, Response, UdpAnnounce};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracing::debug;

use super::AnnounceError;

/// Largest datagram read: the UDP maximum, so a long peer list is never cut short.
const MAX_DATAGRAM: usize = 65_536;

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

/// Splits `udp://host:port[/path][?query]` into host and port. The path (usually
/// `/announce`) means nothing to BEP 15 and is ignored; the port is required.
pub fn split_url(url: &str) -> Result<(String, u16), AnnounceError> {
    let bad = || AnnounceError::BadUrl(url.to_string());
    let rest = url
        .get(..6)
        .filter(|scheme| scheme.eq_ignore_ascii_case("udp://"))
        .and_then(|_| url.get(6..))
        .ok_or_else(|| AnnounceError::Unsupported(url.to_string()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = if let Some(h) = authority.strip_prefix('[') {
        let (host, after) = h.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':').ok_or_else(bad)?)
    } else {
        authority.rsplit_once(':').ok_or_else(bad)?
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || (host.contains(':') && !authority.starts_with('[')) {
        return Err(bad());
    }
    Ok((host.to_string(), port))
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

/// What an [`Exchange`] reports from a datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A fresh connection id, to cache until `expires`.
    Connected {
        /// The id.
        id: u64,
        /// End of its use.
        expires: Instant,
    },
    /// The cached id was refused: forget it (a connect is under way).
    Stale,
    /// The announce succeeded.
    Announced(AnnounceResponse),
}

/// The request in flight.
#[derive(Debug, Clone, Copy)]
enum Step {
    Connect { tid: u32 },
    Announce { tid: u32, id: u64, expires: Instant },
}

/// One announce to one tracker address, as a state machine: feed datagrams and timeouts
/// with the current time, send what [`Exchange::poll_transmit`] yields, and wake at
/// [`Exchange::poll_timeout`].
pub(crate) struct Exchange {
    announce: UdpAnnounce,
    v6: bool,
    timeouts: UdpTimeouts,
    step: Step,
    /// Whether the id in an `Announce` step came from the cache (may be stale).
    cached: bool,
    /// Retransmissions of the current request: the `n` of `15 * 2^n`.
    retries: u32,
    /// When the current request is sent again.
    wake: Instant,
    /// When the whole exchange fails.
    deadline: Instant,
    transmit: Option<Vec<u8>>,
    rng: SmallRng,
}

impl Exchange {
    /// Starts announcing `req` to a tracker at an IPv6 address (`v6`) or not, with a
    /// cached connection id `(id, expires)` if there is one.
    pub(crate) fn new(
        req: &AnnounceRequest,
        v6: bool,
        cached: Option<(u64, Instant)>,
        timeouts: UdpTimeouts,
        now: Instant,
        seed: u64,
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
        let mut x = Exchange {
            announce,
            v6,
            timeouts,
            step: Step::Connect { tid: 0 },
            cached: false,
            retries: 0,
            wake: now,
            deadline: now + timeouts.total,
            transmit: None,
            rng: SmallRng::seed_from_u64(seed),
        };
        match cached {
            Some((id, expires)) if expires > now => {
                x.cached = true;
                x.begin_announce(id, expires, now);
            }
            _ => x.begin_connect(now),
        }
        x
    }

    /// The datagram to send now, if any.
    pub(crate) fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.take()
    }

    /// When to call [`Exchange::handle_timeout`].
    pub(crate) fn poll_timeout(&self) -> Instant {
        self.wake.min(self.deadline)
    }

    /// Retransmits (or reconnects, if the connection id ran out) when the wait is over;
    /// fails once the exchange's total time is spent.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<(), AnnounceError> {
        if now >= self.deadline {
            return Err(AnnounceError::Timeout);
        }
        if now < self.wake {
            return Ok(());
        }
        self.retries += 1;
        match self.step {
            // BEP 15: an expired id is requested anew, keeping the back-off going.
            Step::Announce { expires, .. } if now >= expires => {
                let retries = self.retries;
                self.cached = false;
                self.begin_connect(now);
                self.retries = retries;
                self.wake = self.next_wake(now);
            }
            _ => self.send(now),
        }
        Ok(())
    }

    /// Interprets a datagram from the tracker.
    pub(crate) fn handle_datagram(
        &mut self,
        buf: &[u8],
        now: Instant,
    ) -> Result<Option<Event>, AnnounceError> {
        let expected = match self.step {
            Step::Connect { tid } | Step::Announce { tid, .. } => tid,
        };
        let resp = match Response::parse(buf, self.v6) {
            Ok(r) => r,
            Err(e) if e.transaction_id == Some(expected) => {
                return Err(AnnounceError::Udp(format!(
                    "tracker sent a malformed reply: {e}"
                )))
            }
            Err(_) => return Ok(None),
        };
        let tid = match &resp {
            Response::Connect { transaction_id, .. }
            | Response::Announce { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
        };
        if tid != expected {
            return Ok(None);
        }
        match (self.step, resp) {
            (Step::Connect { .. }, Response::Connect { connection_id, .. }) => {
                let expires = now + self.timeouts.connection_ttl;
                self.begin_announce(connection_id, expires, now);
                Ok(Some(Event::Connected {
                    id: connection_id,
                    expires,
                }))
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
            ) => Ok(Some(Event::Announced(AnnounceResponse {
                interval,
                complete: seeders,
                incomplete: leechers,
                peers,
                ..AnnounceResponse::default()
            }))),
            // A tracker that forgot our id (restart, key rotation) says so with an error;
            // fetch a fresh id once rather than failing the announce.
            (Step::Announce { .. }, Response::Error { .. }) if self.cached => {
                self.cached = false;
                self.begin_connect(now);
                Ok(Some(Event::Stale))
            }
            (_, Response::Error { message, .. }) => {
                Err(AnnounceError::Tracker(TrackerError::Failure(message)))
            }
            (_, other) => Err(AnnounceError::Udp(format!(
                "tracker answered with the wrong action: {}",
                action_name(&other)
            ))),
        }
    }

    fn begin_connect(&mut self, now: Instant) {
        self.step = Step::Connect {
            tid: self.rng.gen(),
        };
        self.retries = 0;
        self.send(now);
    }

    fn begin_announce(&mut self, id: u64, expires: Instant, now: Instant) {
        self.step = Step::Announce {
            tid: self.rng.gen(),
            id,
            expires,
        };
        self.retries = 0;
        self.send(now);
    }

    /// Queues the current request and sets the retransmission time.
    fn send(&mut self, now: Instant) {
        let req = match self.step {
            Step::Connect { tid } => Request::Connect {
                transaction_id: tid,
            },
            Step::Announce { tid, id, .. } => Request::Announce(UdpAnnounce {
                connection_id: id,
                transaction_id: tid,
                ..self.announce.clone()
            }),
        };
        let mut out = Vec::with_capacity(shoal_proto::udp_tracker::ANNOUNCE_LEN);
        req.write(&mut out);
        self.transmit = Some(out);
        self.wake = self.next_wake(now);
    }

    fn next_wake(&self, now: Instant) -> Instant {
        // BEP 15 stops doubling at n = 8; the total bound comes much sooner by default.
        let wait = self.timeouts.first.saturating_mul(1 << self.retries.min(8));
        now.checked_add(wait)
            .unwrap_or(self.deadline)
            .min(self.deadline)
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

/// A socket connected to one tracker address and the connection id it holds.
struct Link {
    socket: UdpSocket,
    connection: Option<(u64, Instant)>,
}

impl Link {
    fn is_live(&self, at: Instant) -> bool {
        self.connection.is_some_and(|(_, expires)| expires > at)
    }
}

/// Announces to `udp://` trackers, caching one connection id (and its socket) per
/// tracker address. Not shared between tasks: each announce task owns one.
pub struct UdpClient {
    timeouts: UdpTimeouts,
    links: HashMap<SocketAddr, Link>,
    buf: Vec<u8>,
}

impl Default for UdpClient {
    fn default() -> Self {
        UdpClient::new(UdpTimeouts::default())
    }
}

impl UdpClient {
    /// A client with no sockets yet; they are bound on first use.
    pub fn new(timeouts: UdpTimeouts) -> Self {
        UdpClient {
            timeouts,
            links: HashMap::new(),
            buf: Vec::new(),
        }
    }

    /// Drops sockets whose connection id will have expired by `at` (call before a long
    /// sleep, so an idle torrent keeps no sockets open).
    pub fn expire(&mut self, at: Instant) {
        self.links.retain(|_, l| l.is_live(at));
    }

    /// Announces `req` to `url` (`udp://host:port[/announce]`).
    ///
    /// The host's addresses are tried in resolver order, moving on only when one fails
    /// with a socket error (no route, port unreachable), never on silence, so the time
    /// taken stays within [`UdpTimeouts::total`] plus resolution.
    pub async fn announce(
        &mut self,
        url: &str,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, AnnounceError> {
        let (host, port) = split_url(url)?;
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(self.timeouts.total, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| AnnounceError::Timeout)??
                .collect();
        let mut last = None;
        for addr in addrs {
            match self.announce_to(addr, req).await {
                Err(AnnounceError::Io(e)) => {
                    debug!(%url, %addr, "udp tracker address failed: {e}");
                    last = Some(e);
                }
                r => return r,
            }
        }
        Err(AnnounceError::Io(last.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{url}: the host name has no address"),
            )
        })))
    }

    /// One exchange with one tracker address.
    async fn announce_to(
        &mut self,
        addr: SocketAddr,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, AnnounceError> {
        let now = Instant::now();
        self.expire(now);
        let link = match self.links.entry(addr) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(Link {
                socket: bind_to(addr).await?,
                connection: None,
            }),
        };
        if self.buf.len() < MAX_DATAGRAM {
            self.buf.resize(MAX_DATAGRAM, 0);
        }
        let mut x = Exchange::new(
            req,
            wants_v6(&addr),
            link.connection,
            self.timeouts,
            now,
            rand::random(),
        );
        let result = drive(&mut x, link, &mut self.buf).await;
        // A socket is worth keeping only while it works and holds a usable connection id.
        if matches!(result, Err(AnnounceError::Io(_))) || !link.is_live(Instant::now()) {
            self.links.remove(&addr);
        }
        result
    }
}

/// Runs `x` over `link` to its end.
async fn drive(
    x: &mut Exchange,
    link: &mut Link,
    buf: &mut [u8],
) -> Result<AnnounceResponse, AnnounceError> {
    loop {
        if let Some(packet) = x.poll_transmit() {
            link.socket.send(&packet).await?;
        }
        tokio::select! {
            r = link.socket.recv(buf) => {
                let n = r?;
                let datagram = buf.get(..n).unwrap_or_default();
                match x.handle_datagram(datagram, Instant::now())? {
                    None => {}
                    Some(Event::Connected { id, expires }) => link.connection = Some((id, expires)),
                    Some(Event::Stale) => link.connection = None,
                    Some(Event::Announced(resp)) => return Ok(resp),
                }
            }
            _ = tokio::time::sleep_until(x.poll_timeout()) => x.handle_timeout(Instant::now())?,
        }
    }
}

/// A socket on an ephemeral port of `addr`'s family, connected to `addr`.
async fn bind_to(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: IpAddr = match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((any, 0)).await?;
    socket.connect(addr).await?;
    Ok(socket)
}

#[cfg(test)]
mod tests;
