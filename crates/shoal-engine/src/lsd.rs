//! Local Service Discovery (BEP 14): the session's task that announces its public
//! torrents to the LAN's multicast group and hands the announcers it hears to the
//! torrents they name.
//!
//! One UDP socket on `0.0.0.0:6771`, with `SO_REUSEADDR` and `SO_REUSEPORT` so that
//! several clients on one host each get a copy of every announce, joined to
//! `239.192.152.143` on the configured interface, which is also where it sends
//! (`IP_MULTICAST_IF`). TTL 1: the announce stays on the local link, which is all a
//! client needs to find its neighbours, and a larger scope would reach networks that
//! did not ask for our swarms. Multicast loop stays on so that other clients on this
//! host hear us; we recognise our own announces by a random cookie.
//!
//! When: a torrent's first announce goes out as soon as it is added (the session
//! pokes [`LsdHandle::torrent_added`]), then every torrent is announced every 5
//! minutes, and never more than once a minute (BEP 14), all of them in as few
//! packets as fit ([`shoal_proto::lsd::encode_announces`]). Private torrents (BEP 27)
//! are never announced and never given LSD peers. A received announce's address is
//! its UDP source IP with its `Port`; malformed packets are logged at debug and
//! dropped.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_proto::lsd::{self, Cookie};
use shoal_proto::InfoHash;
use socket2::{Domain, Protocol, Socket, Type};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// LSD settings: present in [`SessionConfig`](crate::SessionConfig) to turn it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsdConfig {
    /// The IPv4 address of the interface to announce and listen on; `0.0.0.0` lets
    /// the kernel choose (the interface of the default route).
    pub interface: Ipv4Addr,
}

/// Why LSD could not start.
#[derive(Debug, Error)]
#[error(
    "cannot start local service discovery on interface {interface} ({step}): {source}; \
     give the IPv4 address of a multicast-capable interface with --lsd-interface, or \
     turn LSD off"
)]
pub struct LsdError {
    /// The configured interface.
    pub interface: Ipv4Addr,
    /// What failed: "bind 0.0.0.0:6771", "join 239.192.152.143", ...
    pub step: &'static str,
    /// The cause.
    pub source: io::Error,
}

/// Every torrent is announced this often (BEP 14).
pub(crate) const ROUND: Duration = Duration::from_secs(5 * 60);
/// No torrent is announced more often than this, except once when added.
pub(crate) const MIN_GAP: Duration = Duration::from_secs(60);
/// Our announces go no further than the local link; see the module doc.
const TTL: u32 = 1;

/// What the LSD task needs from the session: its public torrents.
pub(crate) trait LsdTorrents: Send + Sync + 'static {
    /// The info-hashes of the running torrents that are not private.
    fn public_info_hashes(&self) -> Vec<InfoHash>;
    /// Gives `addr` to the running, non-private torrent `hash` as a peer learnt by
    /// LSD; false if there is no such torrent.
    fn add_lsd_peer(&self, hash: &InfoHash, addr: SocketAddr) -> bool;
}

/// The session's side of the task: wakes it when a torrent is added.
#[derive(Debug, Clone)]
pub(crate) struct LsdHandle {
    wake: Arc<Notify>,
}

impl LsdHandle {
    /// A torrent was added: announce it now.
    pub(crate) fn torrent_added(&self) {
        self.wake.notify_one();
    }
}

/// A bound, joined socket and what the task needs; made before the session exists so
/// a bad interface is a start-up error.
pub(crate) struct Lsd {
    socket: UdpSocket,
    cookie: Cookie,
    wake: Arc<Notify>,
}

impl Lsd {
    /// Opens the socket (see the module doc). Needs a tokio runtime.
    pub(crate) fn bind(config: &LsdConfig) -> Result<Lsd, LsdError> {
        let interface = config.interface;
        let err = |step| {
            move |source| LsdError {
                interface,
                step,
                source,
            }
        };
        let socket =
            Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err("socket"))?;
        socket
            .set_reuse_address(true)
            .map_err(err("SO_REUSEADDR"))?;
        socket.set_reuse_port(true).map_err(err("SO_REUSEPORT"))?;
        socket.set_nonblocking(true).map_err(err("non-blocking"))?;
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, lsd::PORT);
        socket.bind(&any.into()).map_err(err("bind 0.0.0.0:6771"))?;
        socket
            .join_multicast_v4(&lsd::GROUP_V4, &interface)
            .map_err(err("join 239.192.152.143"))?;
        if !interface.is_unspecified() {
            socket
                .set_multicast_if_v4(&interface)
                .map_err(err("IP_MULTICAST_IF"))?;
        }
        socket.set_multicast_ttl_v4(TTL).map_err(err("TTL"))?;
        socket
            .set_multicast_loop_v4(true)
            .map_err(err("IP_MULTICAST_LOOP"))?;
        let socket = UdpSocket::from_std(socket.into()).map_err(err("register"))?;
        Ok(Lsd {
            socket,
            cookie: Cookie::with_random(rand::random()),
            wake: Arc::new(Notify::new()),
        })
    }

    /// The handle the session keeps to wake the task.
    pub(crate) fn handle(&self) -> LsdHandle {
        LsdHandle {
            wake: self.wake.clone(),
        }
    }

    /// Runs until `cancel`: announces on schedule, hands announcers to torrents.
    pub(crate) async fn run(
        self,
        torrents: Arc<dyn LsdTorrents>,
        listen_port: u16,
        cancel: CancellationToken,
    ) {
        let mut schedule = Schedule::new(Instant::now());
        // One byte more than the parser reads, so that a longer packet is refused as
        // too long rather than parsed truncated.
        let mut buf = vec![0u8; lsd::MAX_PARSE_LEN + 1];
        loop {
            let due = schedule.due(Instant::now(), &torrents.public_info_hashes());
            self.announce(listen_port, &due).await;
            let round = schedule.next_round().into();
            // Received packets are handled here without looking at the schedule, so a
            // flood of them never walks the session's torrent list.
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = self.wake.notified() => break,
                    () = tokio::time::sleep_until(round) => break,
                    r = self.socket.recv_from(&mut buf) => match r {
                        Ok((n, from)) => {
                            handle_packet(&*torrents, &self.cookie, from, &buf[..n]);
                        }
                        Err(e) => {
                            debug!("LSD receive failed: {e}");
                            // Errors such as ICMP reports must not spin the loop.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                }
            }
        }
    }

    async fn announce(&self, listen_port: u16, hashes: &[InfoHash]) {
        for packet in lsd::encode_announces(listen_port, hashes, &self.cookie) {
            if let Err(e) = self.socket.send_to(&packet, lsd::GROUP_V4_ADDR).await {
                debug!("LSD announce not sent: {e}");
            }
        }
        if !hashes.is_empty() {
            debug!(torrents = hashes.len(), "LSD announce sent");
        }
    }
}

/// Parses one received packet and gives its sender to the torrents it names that we
/// run. Returns how many torrents got the peer.
pub(crate) fn handle_packet(
    torrents: &dyn LsdTorrents,
    ours: &Cookie,
    from: SocketAddr,
    packet: &[u8],
) -> usize {
    let announce = match lsd::parse_announce(packet) {
        Ok(a) => a,
        Err(e) => {
            debug!(%from, "LSD packet dropped: {e}");
            return 0;
        }
    };
    if announce.cookie.as_ref() == Some(ours) {
        return 0;
    }
    let peer = SocketAddr::new(from.ip(), announce.port);
    let given = announce
        .info_hashes
        .iter()
        .filter(|h| torrents.add_lsd_peer(h, peer))
        .count();
    if given > 0 {
        debug!(%peer, torrents = given, "LSD peer");
    }
    given
}

/// Which torrents to announce when: new ones at once, every one each [`ROUND`], none
/// twice within [`MIN_GAP`] otherwise. Plain policy on a given `now`.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// When each known torrent was last announced; torrents gone are forgotten.
    last: HashMap<InfoHash, Instant>,
    next_round: Instant,
}

impl Schedule {
    pub(crate) fn new(now: Instant) -> Schedule {
        Schedule {
            last: HashMap::new(),
            next_round: now + ROUND,
        }
    }

    /// The torrents among `current` to announce now, marked as announced.
    pub(crate) fn due(&mut self, now: Instant, current: &[InfoHash]) -> Vec<InfoHash> {
        let live: HashSet<&InfoHash> = current.iter().collect();
        self.last.retain(|h, _| live.contains(h));
        let round = now >= self.next_round;
        if round {
            self.next_round = now + ROUND;
        }
        let mut due = Vec::new();
        for h in current {
            let ready = match self.last.get(h) {
                None => true,
                Some(&at) => round && now.saturating_duration_since(at) >= MIN_GAP,
            };
            if ready {
                self.last.insert(*h, now);
                due.push(*h);
            }
        }
        due
    }

    /// When the next round of announces is due.
    pub(crate) fn next_round(&self) -> Instant {
        self.next_round
    }
}

#[cfg(test)]
mod tests;
