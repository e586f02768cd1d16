//! Exchanging the 68-byte BitTorrent handshake on a fresh TCP stream, with timeouts.

use std::time::Duration;

use shoal_proto::wire::{Handshake, HANDSHAKE_LEN};
use shoal_proto::{InfoHash, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::PeerError;

/// How long a peer may take to send its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the remote handshake (used by the listener before it knows the torrent).
pub async fn read_handshake(stream: &mut TcpStream) -> Result<Handshake, PeerError> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut buf))
        .await
        .map_err(|_| PeerError::Timeout("handshake"))??;
    Ok(Handshake::decode(&buf)?)
}

/// Sends our handshake for `info_hash`.
pub async fn write_handshake(
    stream: &mut TcpStream,
    info_hash: InfoHash,
    our_id: PeerId,
) -> Result<(), PeerError> {
    let hs = Handshake::new(info_hash, our_id).encode();
    tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.write_all(&hs))
        .await
        .map_err(|_| PeerError::Timeout("handshake"))??;
    Ok(())
}

/// Outgoing side: send ours, read theirs, check the info-hash and that we did not dial
/// ourselves.
pub async fn outgoing(
    stream: &mut TcpStream,
    info_hash: InfoHash,
    our_id: PeerId,
) -> Result<Handshake, PeerError> {
    write_handshake(stream, info_hash, our_id).await?;
    let theirs = read_handshake(stream).await?;
    if theirs.info_hash != info_hash {
        return Err(PeerError::Protocol(
            "peer answered for another torrent".into(),
        ));
    }
    if theirs.peer_id == our_id {
        return Err(PeerError::SelfConnection);
    }
    Ok(theirs)
}
