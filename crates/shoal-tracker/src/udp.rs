//! The UDP tracker (BEP 15) on the same port number as HTTP.
//!
//! A few worker tasks share one socket, each taking every queued datagram (up to 32)
//! with one `recvmmsg`, answering each with [`Service::udp_datagram`] (synchronous:
//! parse, check the connection id, touch one swarm) into reused buffers and sending
//! the replies with one `sendmmsg` (`batch` module). Nothing is kept per client:
//! connection ids are keyed hashes ([`ConnectionIds`]), whose key the workers share and
//! the core [`Service`] never sees.
//!
//! Malformed packets whose transaction id could be read get an `error` response;
//! others (too short, wrong connect magic: not a BEP 15 client) are dropped. Replies
//! are never much larger than requests except announces, which need a valid
//! connection id, so the tracker cannot be used to amplify spoofed traffic.
//!
//! IPv6: a request from a native IPv6 address gets 18-byte peers and only IPv6 peers;
//! an IPv4 (or IPv4-mapped) one gets 6-byte IPv4 peers. Peers are drawn from the whole
//! swarm and then filtered, so a requester may get fewer peers of its family than it
//! asked for. Peer counts are capped so a reply fits a 1500-byte datagram.

mod batch;
mod connection_id;

pub(crate) use connection_id::ConnectionIds;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_proto::udp_tracker::{parse_request, wants_v6, Request, Response, UdpAnnounce};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::{debug, trace};

use crate::service::{Scratch, Service};
use crate::swarm::PeerAnnounce;
use batch::Batch;

/// Largest datagram read; a maximal valid request (a 74-hash scrape) is 1496 bytes.
const MAX_DATAGRAM: usize = 2048;
/// Most IPv4 peers in a reply: 20 + 6 * 200 bytes.
const MAX_PEERS_V4: usize = 200;
/// Most IPv6 peers in a reply: 20 + 18 * 80 = 1460 bytes.
const MAX_PEERS_V6: usize = 80;

/// Receives and answers datagrams, a batch per syscall, until the task is aborted.
/// `ids` and `clock` are shared by every worker on `socket`, so any of them accepts a
/// connection id another minted.
pub(crate) async fn serve(
    socket: Arc<UdpSocket>,
    service: Arc<Service>,
    ids: Arc<ConnectionIds>,
    clock: Instant,
) {
    let mut batch = Batch::new(MAX_DATAGRAM);
    let mut scratch = Scratch::default();
    loop {
        if let Err(e) = socket
            .async_io(Interest::READABLE, || batch.recv(&*socket))
            .await
        {
            // ICMP errors from earlier sends and the like: transient.
            debug!(error = %e, "udp receive failed");
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        let now = clock.elapsed().as_secs();
        batch.answer_each(|packet, from, out| {
            if !service.udp_datagram(&ids, packet, from, now, out, &mut scratch) {
                out.clear();
            }
        });
        let mut next = 0;
        while next < batch.len() {
            match socket
                .async_io(Interest::WRITABLE, || batch.send(&*socket, next))
                .await
            {
                Ok(n) => next = n,
                Err(e) => {
                    trace!(error = %e, "udp send failed");
                    break;
                }
            }
        }
    }
}

impl Service {
    /// Answers one datagram from `from` into `out`; false when it is dropped.
    /// `now_secs` is seconds on the tracker's steady clock (connection-id windows).
    pub(crate) fn udp_datagram(
        &self,
        ids: &ConnectionIds,
        packet: &[u8],
        from: SocketAddr,
        now_secs: u64,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> bool {
        let v6 = wants_v6(&from);
        let reply = match parse_request(packet) {
            Err(e) => match e.transaction_id {
                Some(transaction_id) => Response::Error {
                    transaction_id,
                    message: e.reason.to_string(),
                },
                None => {
                    trace!(%from, reason = %e, "dropped udp packet");
                    return false;
                }
            },
            Ok(Request::Connect { transaction_id }) => Response::Connect {
                transaction_id,
                connection_id: ids.mint(&from, now_secs),
            },
            Ok(Request::Announce(a)) => {
                if !ids.check(a.connection_id, &from, now_secs) {
                    bad_connection(a.transaction_id)
                } else {
                    return self.udp_announce(&a, from, v6, out, scratch);
                }
            }
            Ok(Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            }) => {
                if !ids.check(connection_id, &from, now_secs) {
                    bad_connection(transaction_id)
                } else {
                    self.stats.outcomes.scrape_ok(crate::metrics::Proto::Udp);
                    Response::Scrape {
                        transaction_id,
                        stats: info_hashes.iter().map(|h| self.registry.stats(h)).collect(),
                    }
                }
            }
        };
        reply.write_for(v6, out);
        true
    }

    fn udp_announce(
        &self,
        a: &UdpAnnounce,
        from: SocketAddr,
        v6: bool,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> bool {
        let transaction_id = a.transaction_id;
        if a.port == 0 {
            Response::Error {
                transaction_id,
                message: "invalid port 0: expected a number from 1 to 65535".into(),
            }
            .write_for(v6, out);
            return true;
        }
        // The claimed IP is honoured only from loopback, as over HTTP.
        let ip = if from.ip().is_loopback() && !a.ip.is_unspecified() {
            IpAddr::V4(a.ip)
        } else {
            from.ip().to_canonical()
        };
        let announce = PeerAnnounce {
            peer_id: a.peer_id,
            addr: SocketAddr::new(ip, a.port),
            seeder: a.left == 0,
            event: a.event,
        };
        let cap = if v6 { MAX_PEERS_V6 } else { MAX_PEERS_V4 };
        let numwant = self.numwant(a.num_want, a.event).min(cap);
        let mut peers = std::mem::take(&mut scratch.peers);
        peers.clear();
        let reply = match self.announce(&a.info_hash, &announce, numwant, true, &mut peers) {
            Ok(stats) => Response::Announce {
                transaction_id,
                interval: self.config.interval,
                leechers: stats.incomplete,
                seeders: stats.complete,
                peers,
            },
            Err(refusal) => {
                scratch.peers = peers;
                Response::Error {
                    transaction_id,
                    message: self.refusal_text(refusal),
                }
            }
        };
        reply.write_for(v6, out);
        if let Response::Announce { peers, .. } = reply {
            scratch.peers = peers;
        }
        true
    }
}

fn bad_connection(transaction_id: u32) -> Response {
    Response::Error {
        transaction_id,
        message: "unknown or expired connection id; connect again".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::config::TrackerConfig;
    use shoal_proto::tracker::AnnounceEvent;
    use shoal_proto::{InfoHash, PeerId};
    use std::net::Ipv4Addr;

    fn service(config: TrackerConfig) -> Service {
        let catalog = Catalog::open(&config).unwrap();
        Service::new(config, catalog)
    }

    /// The key every test service answers with: ids are checked per call anyway.
    fn ids() -> &'static ConnectionIds {
        static IDS: std::sync::OnceLock<ConnectionIds> = std::sync::OnceLock::new();
        IDS.get_or_init(ConnectionIds::new)
    }

    fn ask(s: &Service, req: &Request, from: SocketAddr, now: u64) -> Option<Response> {
        let mut b = Vec::new();
        req.write(&mut b);
        let mut out = Vec::new();
        s.udp_datagram(ids(), &b, from, now, &mut out, &mut Scratch::default())
            .then(|| Response::parse(&out, wants_v6(&from)).unwrap())
    }

    fn connect(s: &Service, from: SocketAddr, now: u64) -> u64 {
        match ask(s, &Request::Connect { transaction_id: 1 }, from, now) {
            Some(Response::Connect { connection_id, .. }) => connection_id,
            other => panic!("{other:?}"),
        }
    }

    fn announce(cid: u64, n: u8, port: u16) -> Request {
        Request::Announce(UdpAnnounce {
            connection_id: cid,
            transaction_id: 2,
            info_hash: InfoHash([7; 20]),
            peer_id: PeerId([n; 20]),
            downloaded: 0,
            left: 10,
            uploaded: 0,
            event: AnnounceEvent::Started,
            ip: Ipv4Addr::UNSPECIFIED,
            key: 0,
            num_want: None,
            port,
        })
    }

    #[test]
    fn v6_requesters_get_v6_peers_only() {
        let s = service(TrackerConfig::default());
        let a4: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let a6: SocketAddr = "[2001:db8::1]:1000".parse().unwrap();
        let b6: SocketAddr = "[2001:db8::2]:1000".parse().unwrap();
        for (n, from) in [(1, a4), (2, a6)] {
            let cid = connect(&s, from, 0);
            ask(&s, &announce(cid, n, 7000 + u16::from(n)), from, 0).unwrap();
        }
        let cid = connect(&s, b6, 0);
        match ask(&s, &announce(cid, 3, 7003), b6, 0) {
            Some(Response::Announce {
                peers, leechers, ..
            }) => {
                assert_eq!(leechers, 3);
                assert_eq!(peers, ["[2001:db8::1]:7002".parse().unwrap()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn forged_or_expired_ids_get_an_error_and_change_nothing() {
        let s = service(TrackerConfig::default());
        let from: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let other: SocketAddr = "10.0.0.2:1000".parse().unwrap();
        let cid = connect(&s, from, 0);
        for (cid, from, now) in [(cid ^ 1, from, 0), (cid, other, 0), (cid, from, 130)] {
            assert!(matches!(
                ask(&s, &announce(cid, 1, 7000), from, now),
                Some(Response::Error { .. })
            ));
        }
        assert_eq!(s.registry.swarm_count(), 0);
        assert!(matches!(
            ask(&s, &announce(cid, 1, 0), from, 0),
            Some(Response::Error { .. })
        ));
        assert!(matches!(
            ask(&s, &announce(cid, 1, 7000), from, 61),
            Some(Response::Announce { .. })
        ));
    }

    #[test]
    fn catalog_only_refuses_unpublished() {
        let s = service(TrackerConfig {
            catalog_only: true,
            ..TrackerConfig::default()
        });
        let from: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let cid = connect(&s, from, 0);
        match ask(&s, &announce(cid, 1, 7000), from, 0) {
            Some(Response::Error { message, .. }) => assert!(message.contains("publish")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn junk_is_dropped_or_answered_never_fatal() {
        let s = service(TrackerConfig::default());
        let from: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let mut out = Vec::new();
        let mut scratch = Scratch::default();
        assert!(!s.udp_datagram(ids(), &[1, 2, 3], from, 0, &mut out, &mut scratch));
        let mut unknown = vec![0u8; 16];
        unknown[11] = 9;
        out.clear();
        assert!(s.udp_datagram(ids(), &unknown, from, 0, &mut out, &mut scratch));
        assert!(matches!(
            Response::parse(&out, false),
            Ok(Response::Error { .. })
        ));
        for n in 0..200u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ n).collect();
            out.clear();
            let _ = s.udp_datagram(ids(), &junk, from, 0, &mut out, &mut scratch);
        }
    }

    #[test]
    fn a_peer_id_reused_from_another_address_is_another_peer() {
        let s = service(TrackerConfig {
            max_peers_per_swarm: 2,
            ..TrackerConfig::default()
        });
        let victim: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let forger: SocketAddr = "10.6.6.6:1000".parse().unwrap();
        let cid = connect(&s, victim, 0);
        ask(&s, &announce(cid, 1, 7001), victim, 0).unwrap();
        let fid = connect(&s, forger, 0);
        let Request::Announce(mut stop) = announce(fid, 1, 7001) else {
            unreachable!()
        };
        stop.event = AnnounceEvent::Stopped;
        ask(&s, &Request::Announce(stop), forger, 0).unwrap();
        assert_eq!(s.registry.stats(&InfoHash([7; 20])).incomplete, 1);
        match ask(&s, &announce(fid, 1, 7666), forger, 0) {
            Some(Response::Announce {
                peers, leechers, ..
            }) => {
                assert_eq!(leechers, 2);
                assert_eq!(peers, ["10.0.0.1:7001".parse().unwrap()]);
            }
            other => panic!("{other:?}"),
        }
        // Full at two: a third address is answered with both, and not stored.
        let third: SocketAddr = "10.0.0.3:1000".parse().unwrap();
        let tid = connect(&s, third, 0);
        match ask(&s, &announce(tid, 3, 7003), third, 0) {
            Some(Response::Announce {
                peers, leechers, ..
            }) => assert_eq!((peers.len(), leechers), (2, 2)),
            other => panic!("{other:?}"),
        }
    }
}
