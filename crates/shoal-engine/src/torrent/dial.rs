//! Dialling peers learnt from trackers (with retries) and accepting incoming ones.
//! Every task started here belongs to the torrent's task tracker, runs in the span
//! `torrent{hash, name}:peer{addr}` (see `spans`), and gives up its connect or
//! handshake when the torrent stops.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::candidates::MAX_CANDIDATES;
use super::{PeerSource, Shared, MAX_DIAL_RETRIES, MAX_PEERS};
use crate::peer::{self, PeerError};

/// Dial failure counts kept; beyond this, counts of addresses no longer queued go.
const MAX_DIAL_FAILURES: usize = 2 * MAX_CANDIDATES;

impl Shared {
    /// Learns peer addresses and dials as many as the connection budget allows.
    pub(crate) fn add_peers(self: &Arc<Self>, addrs: &[SocketAddr], source: PeerSource) {
        if addrs.is_empty() {
            return;
        }
        {
            let mut st = self.lock();
            for a in addrs {
                if st.candidates.is_full() {
                    break;
                }
                let own = a.port() == self.listen_port
                    && (a.ip().is_loopback() || a.ip().is_unspecified());
                if !own && a.port() != 0 && !st.dialing.contains(a) {
                    st.candidates.push_new(*a, source);
                }
            }
        }
        self.dial_candidates();
        self.wake.notify_one();
    }

    /// `a` is queued to dial or being dialled.
    #[cfg(test)]
    pub(crate) fn candidate_or_dialing(&self, a: &SocketAddr) -> bool {
        let st = self.lock();
        st.candidates.contains(a) || st.dialing.contains(a)
    }

    pub(crate) fn dial_candidates(self: &Arc<Self>) {
        if self.cancel.is_cancelled() || self.storage.get().is_none() {
            return;
        }
        let mut to_dial = Vec::new();
        {
            let mut st = self.lock();
            while st.peers.len() + st.dialing.len() < MAX_PEERS {
                let Some((a, source)) = st.candidates.pop() else {
                    break;
                };
                let connected = st
                    .peers
                    .values()
                    .any(|p| p.addr == a || p.listen_addr == Some(a));
                if connected || st.banned_addrs.contains(&a) || !st.dialing.insert(a) {
                    continue;
                }
                to_dial.push((a, source));
            }
        }
        for (addr, source) in to_dial {
            let me = self.clone();
            let dial = async move {
                let (connected, r) = me.dial(addr, source).await;
                if let Err(e) = &r {
                    tracing::debug!("peer connection ended: {e}");
                }
                let mut st = me.lock();
                st.dialing.remove(&addr);
                // A peer that could not be reached (or, like Transmission right after
                // another loopback peer left, dropped our handshake) is tried again a
                // few times on later driver ticks.
                let retry = !connected
                    && !matches!(r, Err(PeerError::SelfConnection))
                    && !st.banned_addrs.contains(&addr);
                if connected {
                    st.dial_failures.remove(&addr);
                    return;
                }
                let failures = st.dial_failures.entry(addr).or_insert(0);
                *failures += 1;
                if retry && *failures <= MAX_DIAL_RETRIES {
                    st.candidates.push_retry(addr, source);
                }
                if st.dial_failures.len() > MAX_DIAL_FAILURES {
                    let st = &mut *st;
                    let (queued, dialing) = (&st.candidates, &st.dialing);
                    st.dial_failures
                        .retain(|a, _| queued.contains(a) || dialing.contains(a));
                }
            };
            self.tasks.spawn(self.traced(self.peer_span(addr), dial));
        }
    }

    /// Dials and runs one peer; the flag says whether the handshake completed.
    async fn dial(
        self: &Arc<Self>,
        addr: SocketAddr,
        source: PeerSource,
    ) -> (bool, Result<(), PeerError>) {
        let handshake = async {
            let connect = TcpStream::connect(addr);
            let mut stream =
                match tokio::time::timeout(peer::handshake::HANDSHAKE_TIMEOUT, connect).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => return Err(PeerError::Timeout("connect")),
                };
            let theirs =
                peer::handshake::outgoing(&mut stream, self.meta.info_hash, self.our_id).await?;
            Ok((stream, theirs))
        };
        let r = tokio::select! {
            r = handshake => r,
            _ = self.cancel.cancelled() => Err(PeerError::Closed("torrent stopped")),
        };
        let (stream, theirs) = match r {
            Ok(x) => x,
            Err(e) => return (false, Err(e)),
        };
        (
            true,
            peer::run(self.clone(), stream, addr, theirs, source).await,
        )
    }

    /// Takes over an incoming connection whose handshake named this torrent. `permit`
    /// is the session's half-open slot, held until our handshake is sent.
    pub(crate) fn accept(
        self: &Arc<Self>,
        mut stream: TcpStream,
        addr: SocketAddr,
        theirs: shoal_proto::wire::Handshake,
        permit: OwnedSemaphorePermit,
    ) {
        // Not once stopping: `stop` may already have waited for the tracker.
        if self.cancel.is_cancelled() {
            return;
        }
        let me = self.clone();
        let task = async move {
            // Not while checking: the peer would see no pieces. Closing before our
            // handshake makes it try again later.
            if theirs.peer_id == me.our_id || me.storage.get().is_none() {
                return;
            }
            let write = peer::handshake::write_handshake(&mut stream, me.meta.info_hash, me.our_id);
            let sent = tokio::select! {
                r = write => r.is_ok(),
                _ = me.cancel.cancelled() => false,
            };
            drop(permit);
            if !sent {
                return;
            }
            if let Err(e) = peer::run(me, stream, addr, theirs, PeerSource::Incoming).await {
                tracing::debug!("incoming peer ended: {e}");
            }
        };
        self.tasks.spawn(self.traced(self.peer_span(addr), task));
    }
}
