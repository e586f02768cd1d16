//! Public value types of a torrent: events, peer and tracker info.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::peer::TransportKind;

/// Something that happened to a torrent, for logs and persistence. Delivered through a
/// bounded queue per subscriber: a slow subscriber misses events rather than slowing
/// transfers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TorrentEvent {
    /// A piece passed its hash check and is stored.
    PieceVerified {
        /// The piece.
        piece: u32,
        /// Its size.
        bytes: u64,
        /// The peer that sent its first block.
        peer: Option<SocketAddr>,
    },
    /// Blocks of one piece were sent to a peer (aggregated per piece and peer).
    BlocksSent {
        /// The receiving peer.
        peer: SocketAddr,
        /// The piece.
        piece: u32,
        /// Payload bytes sent.
        bytes: u64,
    },
    /// A piece failed its hash check and will be fetched again.
    PieceFailed {
        /// The piece.
        piece: u32,
    },
    /// Every wanted piece is verified.
    Completed,
    /// The torrent stopped with an error.
    Error(String),
}

/// Where we learnt of a peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PeerSource {
    /// A tracker's announce reply.
    Tracker,
    /// The Mainline DHT.
    Dht,
    /// Peer exchange (BEP 11) from another peer.
    Pex,
    /// Local service discovery (BEP 14).
    Lsd,
    /// It connected to us.
    Incoming,
    /// The magnet link's `x.pe`.
    Magnet,
    /// Given by the user (`--peer`, the API).
    #[default]
    Manual,
}

impl PeerSource {
    /// The lowercase name the API and UI show.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerSource::Tracker => "tracker",
            PeerSource::Dht => "dht",
            PeerSource::Pex => "pex",
            PeerSource::Lsd => "lsd",
            PeerSource::Incoming => "incoming",
            PeerSource::Magnet => "magnet",
            PeerSource::Manual => "manual",
        }
    }
}

/// The address is IPv6 and not an IPv4 address mapped into IPv6.
pub(crate) fn is_ipv6(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_none(),
    }
}

/// A connected peer, for APIs.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Remote address of the connection.
    pub addr: SocketAddr,
    /// Client name from the handshake.
    pub client: String,
    /// Share of the torrent the peer has, 0 to 1.
    pub progress: f64,
    /// Bytes per second from the peer.
    pub down_rate: u64,
    /// Bytes per second to the peer.
    pub up_rate: u64,
    /// Payload bytes from the peer.
    pub downloaded: u64,
    /// Payload bytes to the peer.
    pub uploaded: u64,
    /// The peer has every piece.
    pub seed: bool,
    /// We choke the peer.
    pub am_choking: bool,
    /// We want pieces the peer has.
    pub am_interested: bool,
    /// The peer chokes us.
    pub peer_choking: bool,
    /// The peer wants pieces we have.
    pub peer_interested: bool,
    /// The peer connected to us.
    pub incoming: bool,
    /// The payload is RC4-encrypted (MSE); an MSE connection that settled on
    /// plaintext is not.
    pub encrypted: bool,
    /// The transport carrying the connection (TCP or uTP).
    pub transport: TransportKind,
    /// The peer's address is IPv6 (an IPv4-mapped one, from a dual-stack socket,
    /// counts as IPv4).
    pub ipv6: bool,
    /// The peer left our requests unanswered for a long time.
    pub snubbed: bool,
    /// Where we learnt of it.
    pub source: PeerSource,
}

/// A tracker's last outcome, for APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerInfo {
    /// Announce URL.
    pub url: String,
    /// BEP 12 tier, from 0.
    pub tier: usize,
    /// `working`, `error` or `not contacted`.
    pub status: &'static str,
    /// The tracker's warning or error, if any.
    pub message: Option<String>,
    /// Seeders it reported.
    pub seeders: Option<u32>,
    /// Leechers it reported.
    pub leechers: Option<u32>,
    /// Announces to it that failed in a row (refused, timed out, `failure reason`).
    pub failures: u32,
    /// When it is next contacted, at the earliest: the next announce round, or its
    /// retry after failures. `None` when no round will reach it (another tracker of its
    /// tier answers first) or the torrent is stopping.
    pub next_announce: Option<Instant>,
}
