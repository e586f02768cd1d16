//! UDP tracker client (BEP 15): the tokio driver around
//! [`shoal_proto::udp_tracker::AnnounceExchange`].
//!
//! The protocol logic of one announce (connect, connection id reuse, retransmission
//! with back-off, transaction ids, matching replies) is the sans-IO state machine in
//! `shoal-proto`; this module owns what it leaves out: the sockets, name resolution,
//! the timers (`tokio::time`), the random transaction ids, and the cache of connection
//! ids between announces. A socket connected to the tracker also means the kernel drops
//! datagrams from anyone else before the machine sees them.
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

use shoal_proto::tracker::{AnnounceRequest, AnnounceResponse, TrackerError};
use shoal_proto::udp_tracker::{wants_v6, AnnounceExchange, Connection, UdpClientError};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracing::debug;

use super::AnnounceError;

/// Re-exported so the engine's callers configure the client without naming the proto
/// crate.
pub use shoal_proto::udp_tracker::UdpTimeouts;

/// Largest datagram read: the UDP maximum, so a long peer list is never cut short.
const MAX_DATAGRAM: usize = 65_536;

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

/// A socket connected to one tracker address and the connection id it holds.
struct Link {
    socket: UdpSocket,
    connection: Option<Connection>,
}

impl Link {
    fn is_live(&self, at: Instant) -> bool {
        self.connection.is_some_and(|c| c.is_live(at.into_std()))
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
        let mut x = AnnounceExchange::new(
            req,
            wants_v6(&addr),
            link.connection,
            self.timeouts,
            now.into_std(),
            rand::random(),
        );
        let result = drive(&mut x, link, &mut self.buf).await;
        link.connection = x.connection();
        // A socket is worth keeping only while it works and holds a usable connection id.
        if matches!(result, Err(AnnounceError::Io(_))) || !link.is_live(Instant::now()) {
            self.links.remove(&addr);
        }
        result
    }
}

/// Runs `x` over `link` to its end: sends what it asks, feeds it replies and timer
/// expiries with the time and a fresh random transaction id, and returns its result.
async fn drive(
    x: &mut AnnounceExchange,
    link: &Link,
    buf: &mut [u8],
) -> Result<AnnounceResponse, AnnounceError> {
    loop {
        if let Some(packet) = x.poll_transmit() {
            link.socket.send(packet).await?;
        }
        if let Some(result) = x.poll_result() {
            return result.map_err(announce_error);
        }
        // An exchange with neither a result nor a deadline would be a bug in the
        // machine; fail the announce rather than wait forever.
        let Some(wake) = x.poll_timeout() else {
            return Err(AnnounceError::Timeout);
        };
        tokio::select! {
            r = link.socket.recv(buf) => {
                let n = r?;
                let datagram = buf.get(..n).unwrap_or_default();
                x.handle_datagram(datagram, Instant::now().into_std(), rand::random());
            }
            _ = tokio::time::sleep_until(Instant::from_std(wake)) => {
                x.handle_timeout(Instant::now().into_std(), rand::random());
            }
        }
    }
}

/// The engine's error for a failed exchange; the texts are the machine's.
fn announce_error(e: UdpClientError) -> AnnounceError {
    match e {
        UdpClientError::Timeout => AnnounceError::Timeout,
        UdpClientError::Failure(message) => AnnounceError::Tracker(TrackerError::Failure(message)),
        e @ (UdpClientError::Malformed(_) | UdpClientError::WrongAction(_)) => {
            AnnounceError::Udp(e.to_string())
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
