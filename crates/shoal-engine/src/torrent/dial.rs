//! Dialling peers learnt from trackers (with retries) and accepting incoming ones.
//! Every task started here belongs to the torrent's task tracker, runs in the span
//! `torrent{hash, name}:peer{addr}` (see `spans`), and gives up its connect or
//! handshake when the torrent stops.
//!
//! A dial connects through the session's [`Connector`] (uTP first when uTP is on,
//! then TCP) and follows the session's [`EncryptionPolicy`] over either transport:
//! one attempt, or (`allow`, `prefer`) a second one the other way round when the peer
//! closed the connection during the first one's handshake, as a peer refusing that
//! kind of connection does.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;

use shoal_proto::mse::Methods;
use shoal_proto::wire::Handshake;
use tokio::io::AsyncWrite;
use tokio::sync::OwnedSemaphorePermit;

use super::candidates::MAX_CANDIDATES;
use super::{PeerSource, Shared, MAX_DIAL_RETRIES, MAX_PEERS};
use crate::peer::connect::Connector;
use crate::peer::mse::{EncryptionPolicy, MseStream};
use crate::peer::{self, PeerError, PeerStream, Transport};

/// A connection whose handshakes are done, plaintext or through MSE.
enum Dialled {
    Plain(PeerStream, Handshake),
    /// Boxed: two RC4 states make the stream large, and it moves a few times.
    Mse(Box<MseStream<PeerStream>>, Handshake),
}

/// The peer hung up (or reset) during the handshake: it may want the other kind of
/// connection.
fn peer_closed(e: &PeerError) -> bool {
    matches!(e, PeerError::Io(io) if matches!(
        io.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
    ))
}

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

    /// The session's encryption policy.
    pub(crate) fn encryption(&self) -> EncryptionPolicy {
        self.encryption.get().copied().unwrap_or_default()
    }

    /// Dials and runs one peer; the flag says whether the handshake completed.
    async fn dial(
        self: &Arc<Self>,
        addr: SocketAddr,
        source: PeerSource,
    ) -> (bool, Result<(), PeerError>) {
        let plan = self.encryption().dial_plan();
        let mut result = Err(PeerError::Closed("nothing to dial"));
        for (i, &mse) in plan.iter().enumerate() {
            let r = tokio::select! {
                r = self.dial_once(addr, mse) => r,
                _ = self.cancel.cancelled() => Err(PeerError::Closed("torrent stopped")),
            };
            match r {
                Err(e) if i + 1 < plan.len() && peer_closed(&e) => {
                    tracing::debug!(
                        encrypted = mse.is_some(),
                        "peer closed the handshake: {e}; trying the other way"
                    );
                }
                r => {
                    result = r;
                    break;
                }
            }
        }
        match result {
            Ok(Dialled::Plain(s, theirs)) => {
                (true, peer::run(self.clone(), s, addr, theirs, source).await)
            }
            Ok(Dialled::Mse(s, theirs)) => (
                true,
                peer::run(self.clone(), *s, addr, theirs, source).await,
            ),
            Err(e) => (false, Err(e)),
        }
    }

    /// Connects and exchanges the handshakes: plaintext, or MSE offering `mse` with our
    /// BitTorrent handshake inside.
    async fn dial_once(
        &self,
        addr: SocketAddr,
        mse: Option<Methods>,
    ) -> Result<Dialled, PeerError> {
        let mut stream = match self.connector.get() {
            Some(c) => c.connect(addr).await?,
            None => Connector::default().connect(addr).await?,
        };
        let (hash, id) = (self.meta.info_hash, self.our_id);
        match mse {
            None => {
                let theirs = peer::handshake::outgoing(&mut stream, hash, id).await?;
                Ok(Dialled::Plain(stream, theirs))
            }
            Some(provide) => {
                let ia = Handshake::new(hash, id).encode().to_vec();
                let mut s = peer::mse::connect(stream, hash, provide, ia).await?;
                let theirs = peer::handshake::answer(&mut s, hash, id).await?;
                Ok(Dialled::Mse(Box::new(s), theirs))
            }
        }
    }

    /// Takes over an incoming connection whose handshake named this torrent. `permit`
    /// is the session's half-open slot, held until our handshake is sent.
    pub(crate) fn accept<T: Transport + AsyncWrite + Unpin>(
        self: &Arc<Self>,
        mut stream: T,
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
