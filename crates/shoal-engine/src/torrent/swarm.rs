//! The torrent's shared state as a connection's [`Swarm`].

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::SmallRng;
use shoal_proto::wire::{Bitfield, PexPeer, PEX_FLAG_SEED};

use super::Shared;
use crate::conn::Swarm;
use crate::picker::{Block, PeerKey};

// Inherent methods of `Shared` are named as the trait's; calls name `Shared::` so
// that they cannot resolve to the trait method on `Arc<Shared>` and recurse.
impl Swarm for Arc<Shared> {
    fn listen_port(&self) -> u16 {
        self.listen_port
    }

    fn piece_size(&self, piece: u32) -> u64 {
        self.meta.info.piece_size(piece)
    }

    fn have_snapshot(&self) -> Bitfield {
        Shared::have_snapshot(self)
    }

    fn have_piece(&self, piece: u32) -> bool {
        Shared::have_piece(self, piece)
    }

    fn is_seeding(&self) -> bool {
        Shared::is_seeding(self)
    }

    fn wants_any(&self, theirs: &Bitfield) -> bool {
        Shared::wants_any(self, theirs)
    }

    fn backlogged(&self) -> bool {
        Shared::backlogged(self)
    }

    fn pick(
        &self,
        key: PeerKey,
        theirs: &Bitfield,
        max: usize,
        rng: &mut SmallRng,
        out: &mut Vec<Block>,
    ) {
        Shared::pick(self, key, theirs, max, rng, out)
    }

    fn request_dropped(&self, key: PeerKey, block: Block) {
        Shared::request_dropped(self, key, block)
    }

    fn requests_dropped(&self, key: PeerKey, blocks: &[Block]) {
        Shared::requests_dropped(self, key, blocks)
    }

    fn block_received(&self, key: PeerKey, addr: SocketAddr, block: Block, data: Bytes) {
        Shared::block_received(self, key, addr, block, data)
    }

    fn peer_have(&self, piece: u32) {
        Shared::peer_have(self, piece)
    }

    fn peer_bitfield_replaced(&self, old: &Bitfield, new: &Bitfield) {
        Shared::peer_bitfield_replaced(self, old, new)
    }

    fn set_listen_addr(&self, key: PeerKey, addr: SocketAddr) {
        Shared::set_listen_addr(self, key, addr)
    }

    fn peer_became_interested(&self, key: PeerKey) {
        Shared::peer_became_interested(self, key)
    }

    fn public_info(&self) -> Option<&[u8]> {
        (!self.meta.info.private).then_some(&self.meta.info_bytes[..])
    }

    fn pex_enabled(&self) -> bool {
        !self.meta.info.private && self.pex.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn pex_peers(&self, key: PeerKey) -> Vec<PexPeer> {
        let st = self.lock();
        st.peers
            .iter()
            .filter(|(k, _)| **k != key)
            .filter_map(|(_, p)| {
                // A peer that dialled us is reachable only at its announced port.
                let addr = if p.incoming { p.listen_addr? } else { p.addr };
                let seed = p.stats.is_seed.load(std::sync::atomic::Ordering::Relaxed);
                Some(PexPeer {
                    addr,
                    flags: if seed { PEX_FLAG_SEED } else { 0 },
                })
            })
            .collect()
    }

    fn pex_learnt(&self, addrs: &[SocketAddr]) {
        if !self.meta.info.private {
            self.add_peers(addrs, super::PeerSource::Pex);
        }
    }
}
