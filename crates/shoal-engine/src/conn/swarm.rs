//! The torrent as a connection sees it. The engine implements [`Swarm`] over the
//! torrent's shared state (`torrent/swarm.rs`); each call takes the torrent's lock
//! briefly, so a connection never holds it between calls.

use std::net::SocketAddr;

use bytes::Bytes;
use rand::rngs::SmallRng;
use shoal_proto::wire::{Bitfield, PexPeer};

use crate::picker::{Block, PeerKey};

/// What a connection asks of and tells its torrent.
pub(crate) trait Swarm {
    /// The port we accept connections on (sent in the extension handshake).
    fn listen_port(&self) -> u16;
    /// Bytes in piece `piece` (0 when out of range).
    fn piece_size(&self, piece: u32) -> u64;
    /// The pieces we have verified.
    fn have_snapshot(&self) -> Bitfield;
    /// Whether we have verified `piece`.
    fn have_piece(&self, piece: u32) -> bool;
    /// We have every wanted piece.
    fn is_seeding(&self) -> bool;
    /// The peer has a piece we still want.
    fn wants_any(&self, theirs: &Bitfield) -> bool;
    /// Too much received data waits for hashing or disk: request nothing new.
    fn backlogged(&self) -> bool;
    /// Up to `max` blocks to request from peer `key`, which has `theirs`.
    fn pick(
        &self,
        key: PeerKey,
        theirs: &Bitfield,
        max: usize,
        rng: &mut SmallRng,
        out: &mut Vec<Block>,
    );
    /// A request to `key` will not be answered (rejected).
    fn request_dropped(&self, key: PeerKey, block: Block);
    /// Requests to `key` given up on (choke, snub, close).
    fn requests_dropped(&self, key: PeerKey, blocks: &[Block]);
    /// A block we requested arrived.
    fn block_received(&self, key: PeerKey, addr: SocketAddr, block: Block, data: Bytes);
    /// The peer announced a piece.
    fn peer_have(&self, piece: u32);
    /// The peer's pieces are now `new` instead of `old`.
    fn peer_bitfield_replaced(&self, old: &Bitfield, new: &Bitfield);
    /// The peer accepts connections at `addr`.
    fn set_listen_addr(&self, key: PeerKey, addr: SocketAddr);
    /// The peer became interested in our pieces.
    fn peer_became_interested(&self, key: PeerKey);
    /// The info dictionary, to serve by BEP 9; `None` for a private torrent.
    fn public_info(&self) -> Option<&[u8]>;
    /// Peer exchange is on for this torrent (public, and not turned off).
    fn pex_enabled(&self) -> bool;
    /// Where our connected peers other than `key` accept connections (for PEX).
    fn pex_peers(&self, key: PeerKey) -> Vec<PexPeer>;
    /// Peers learnt through PEX, to dial.
    fn pex_learnt(&self, addrs: &[SocketAddr]);
}
