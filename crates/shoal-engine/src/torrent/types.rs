//! Public value types of a torrent: events, peer and tracker info.

use std::net::SocketAddr;

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
    /// The peer left our requests unanswered for a long time.
    pub snubbed: bool,
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
}
