//! The torrent's registry of connected peers: admitting and removing connections,
//! and what connections tell the torrent about their peers (pieces, interest, listen
//! ports), which keeps the picker's availability and the choker up to date.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use shoal_proto::wire::Bitfield;
use shoal_proto::PeerId;
use tokio::sync::mpsc;

use super::{
    Link, PeerEntry, PeerKey, PeerSource, Shared, State, MAX_DEPARTED, MAX_PEERS, SEED_MEMORY,
};
use crate::peer::{PeerCmd, PeerError, PeerStats};

impl Shared {
    /// [`Shared::register_peer_on`] a plain TCP connection (or an encrypted one).
    #[cfg(test)]
    pub(crate) fn register_peer(
        &self,
        addr: SocketAddr,
        peer_id: PeerId,
        source: PeerSource,
        encrypted: bool,
    ) -> Result<(PeerKey, Arc<PeerStats>, mpsc::UnboundedReceiver<PeerCmd>), PeerError> {
        let link = Link {
            encrypted,
            ..Link::default()
        };
        self.register_peer_on(addr, peer_id, source, link)
    }

    /// Admits a handshaken connection carried by `link` into the peer registry.
    pub(crate) fn register_peer_on(
        &self,
        addr: SocketAddr,
        peer_id: PeerId,
        source: PeerSource,
        link: Link,
    ) -> Result<(PeerKey, Arc<PeerStats>, mpsc::UnboundedReceiver<PeerCmd>), PeerError> {
        if self.storage.get().is_none() {
            return Err(PeerError::Closed("torrent is still checking its data"));
        }
        let mut st = self.lock();
        if st.banned_ids.contains(&peer_id) || st.banned_addrs.contains(&addr) {
            return Err(PeerError::Closed("banned for sending corrupt data"));
        }
        let mut replacing = false;
        if !st.peer_ids.insert(peer_id) {
            // A peer that connects again from the same address while its earlier incoming
            // connection still stands has lost that connection (it crashed or restarted: a
            // killed process's uTP connection gets no reset, and its half stays open here
            // until it times out). The new connection replaces the old one; any other
            // second connection is a duplicate.
            let stale = st.peers.values().find(|p| {
                p.peer_id == peer_id
                    && p.incoming
                    && source == PeerSource::Incoming
                    && p.addr.ip() == addr.ip()
            });
            match stale {
                Some(old) => {
                    tracing::debug!(%addr, old = %old.addr, "peer reconnected; closing its old connection");
                    let _ = old.tx.send(PeerCmd::Disconnect(
                        "replaced by a new connection from the same peer",
                    ));
                    replacing = true;
                }
                None => return Err(PeerError::Closed("already connected to this peer")),
            }
        }
        // A replacement takes the place of the connection it closes.
        if st.peers.len() >= MAX_PEERS && !replacing {
            st.peer_ids.remove(&peer_id);
            return Err(PeerError::Closed("too many peers"));
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(PeerStats::default());
        st.peers.insert(
            key,
            PeerEntry {
                addr,
                client: peer_id.client_name(),
                incoming: source == PeerSource::Incoming,
                source,
                encrypted: link.encrypted,
                transport: link.transport,
                listen_addr: None,
                peer_id,
                tx,
                stats: stats.clone(),
            },
        );
        drop(st);
        self.wake.notify_one();
        Ok((key, stats, rx))
    }

    pub(crate) fn unregister_peer(&self, key: PeerKey, peer_id: PeerId, pieces: &Bitfield) {
        let mut st = self.lock();
        if let Some(p) = st.peers.remove(&key) {
            tracing::debug!(
                addr = %p.addr,
                uploaded = p.stats.uploaded.load(Ordering::Relaxed),
                downloaded = p.stats.downloaded.load(Ordering::Relaxed),
                "peer unregistered"
            );
            // A connection replaced by a newer one from the same peer leaves the id in use.
            if !st.peers.values().any(|p| p.peer_id == peer_id) {
                st.peer_ids.remove(&peer_id);
            }
            if st.departed.len() >= MAX_DEPARTED {
                st.departed.pop_front();
            }
            st.departed.push_back((key, p.addr, peer_id));
        }
        if pieces.is_full() {
            st.seed_left_at = Some(Instant::now());
        }
        st.picker.peer_gone(key);
        st.picker.peer_bitfield_removed(pieces);
        st.choker.peer_removed(key);
        self.note_coverage(&mut st);
    }

    pub(crate) fn have_snapshot(&self) -> Bitfield {
        self.lock().have.clone()
    }

    pub(crate) fn have_piece(&self, i: u32) -> bool {
        self.lock().have.get(i)
    }

    pub(crate) fn peer_have(&self, i: u32) {
        let mut st = self.lock();
        st.picker.peer_have(i);
        self.note_coverage(&mut st);
    }

    pub(crate) fn peer_bitfield_replaced(&self, old: &Bitfield, new: &Bitfield) {
        let mut st = self.lock();
        st.picker.peer_bitfield_removed(old);
        st.picker.peer_bitfield_added(new);
        self.note_coverage(&mut st);
    }

    /// Tells the choker whether the connected peers hold every piece between them;
    /// a seeder's change of mind is applied at once (see [`crate::choker`]).
    pub(super) fn note_coverage(&self, st: &mut State) {
        let covered = st.picker.pieces_unavailable() == 0
            || st.seed_left_at.is_some_and(|t| t.elapsed() < SEED_MEMORY);
        if st.choker.set_swarm_covered(covered, self.is_seeding()) {
            tracing::debug!(covered, "seeding choker: peers hold every piece");
            self.rechoke.notify_one();
        }
    }

    /// Records the port a connected peer listens on (BEP 10 `p`), so that tracker
    /// replies naming it are not dialled a second time.
    pub(crate) fn set_listen_addr(&self, key: PeerKey, addr: SocketAddr) {
        if let Some(p) = self.lock().peers.get_mut(&key) {
            p.listen_addr = Some(addr);
        }
    }

    /// Whether the peer has a piece we still want.
    pub(crate) fn wants_any(&self, theirs: &Bitfield) -> bool {
        if self.is_seeding() {
            return false;
        }
        let st = self.lock();
        theirs
            .iter_set()
            .any(|i| !st.have.get(i) && st.picker.is_wanted(i))
    }

    /// Unchokes `key` at once while a regular slot is free, recording it with the
    /// choker so that its next recheck may choke the peer again.
    pub(crate) fn peer_became_interested(&self, key: PeerKey) {
        let mut st = self.lock();
        let slots = st.choker.regular_slots(self.is_seeding());
        if st.choker.unchoked().len() >= slots || st.choker.is_unchoked(key) {
            return;
        }
        if let Some(p) = st.peers.get(&key) {
            let _ = p.tx.send(PeerCmd::Unchoke);
            st.choker.mark_unchoked(key);
        }
    }
}
