//! Peers announced to us (`announce_peer`), per info-hash, for our `get_peers` answers.
//!
//! Bounded: [`MAX_PEERS_PER_HASH`] per torrent (a new peer replaces the oldest), and
//! [`MAX_HASHES`] torrents (a new torrent is refused when full). Entries expire
//! [`PEER_TTL`] after their last announce.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long an announced peer is kept without a new announce (BEP 5 suggests 30 min).
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);
/// Most peers kept per info-hash.
pub const MAX_PEERS_PER_HASH: usize = 100;
/// Most info-hashes kept.
pub const MAX_HASHES: usize = 10_000;
/// Most IPv4 peers given in one `get_peers` answer (fits a datagram with the nodes).
pub const MAX_ANSWER: usize = 50;
/// Most IPv6 peers given in one `get_peers` answer: 21 bytes each, they and 8 nodes
/// of each family stay within BEP 32's 1024-byte datagram.
pub const MAX_ANSWER6: usize = 20;

/// The peer store.
#[derive(Default)]
pub(crate) struct PeerStore {
    torrents: HashMap<[u8; 20], Vec<(SocketAddr, Instant)>>,
}

impl PeerStore {
    /// Records `peer` for `info_hash`; false when the store is full of other torrents.
    pub(crate) fn announce(&mut self, info_hash: [u8; 20], peer: SocketAddr, now: Instant) -> bool {
        if !self.torrents.contains_key(&info_hash) && self.torrents.len() >= MAX_HASHES {
            return false;
        }
        let peers = self.torrents.entry(info_hash).or_default();
        if let Some(p) = peers.iter_mut().find(|p| p.0 == peer) {
            p.1 = now;
        } else if peers.len() < MAX_PEERS_PER_HASH {
            peers.push((peer, now));
        } else if let Some(oldest) = peers.iter_mut().min_by_key(|p| p.1) {
            *oldest = (peer, now);
        }
        true
    }

    /// Up to `max` live peers for `info_hash`, most recent first.
    pub(crate) fn get(&self, info_hash: &[u8; 20], now: Instant, max: usize) -> Vec<SocketAddr> {
        let Some(peers) = self.torrents.get(info_hash) else {
            return Vec::new();
        };
        let mut live: Vec<_> = peers
            .iter()
            .filter(|p| now.saturating_duration_since(p.1) < PEER_TTL)
            .collect();
        live.sort_by_key(|p| std::cmp::Reverse(p.1));
        live.iter().take(max).map(|p| p.0).collect()
    }

    /// Drops expired peers and torrents left without any.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.torrents.retain(|_, peers| {
            peers.retain(|p| now.saturating_duration_since(p.1) < PEER_TTL);
            !peers.is_empty()
        });
    }

    /// Number of torrents with peers.
    pub(crate) fn len(&self) -> usize {
        self.torrents.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn peer(i: u32) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::from(0x0100_0000 + i), 6881))
    }

    #[test]
    fn bounded_and_expiring() {
        let t0 = Instant::now();
        let mut s = PeerStore::default();
        for i in 0..(MAX_PEERS_PER_HASH as u32 + 10) {
            assert!(s.announce([1; 20], peer(i), t0 + Duration::from_secs(u64::from(i))));
        }
        assert_eq!(s.torrents[&[1; 20]].len(), MAX_PEERS_PER_HASH);
        let got = s.get(&[1; 20], t0 + Duration::from_secs(200), MAX_ANSWER);
        assert_eq!(got.len(), MAX_ANSWER);
        assert_eq!(got[0], peer(MAX_PEERS_PER_HASH as u32 + 9));
        assert!(!got.contains(&peer(0)), "the oldest was replaced");
        assert!(s
            .get(
                &[1; 20],
                t0 + PEER_TTL + Duration::from_secs(500),
                MAX_ANSWER
            )
            .is_empty());
        s.expire(t0 + PEER_TTL + Duration::from_secs(500));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn torrents_are_bounded() {
        let t0 = Instant::now();
        let mut s = PeerStore::default();
        for i in 0..MAX_HASHES as u32 {
            let mut h = [0u8; 20];
            h[..4].copy_from_slice(&i.to_be_bytes());
            assert!(s.announce(h, peer(1), t0));
        }
        assert!(!s.announce([0xff; 20], peer(1), t0));
        assert!(
            s.announce([0; 20], peer(2), t0),
            "known torrents still take peers"
        );
    }
}
