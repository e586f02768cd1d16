//! Exchanging the 68-byte BitTorrent handshake on a fresh stream (TCP, or TCP after
//! an MSE handshake), with timeouts.

use std::time::Duration;

use shoal_proto::wire::{Handshake, HANDSHAKE_LEN, PROTOCOL};
use shoal_proto::{InfoHash, PeerId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::PeerError;

/// How long a peer may take to send its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first bytes of a plaintext handshake: the length byte and the protocol name.
pub const PREFIX_LEN: usize = 1 + PROTOCOL.len();

/// Whether `first` (the first [`PREFIX_LEN`] bytes of a connection) opens a plaintext
/// BitTorrent handshake; anything else may be MSE.
pub fn is_plaintext(first: &[u8; PREFIX_LEN]) -> bool {
    first[0] as usize == PROTOCOL.len() && first[1..] == *PROTOCOL
}

/// Reads the remote handshake (used by the listener before it knows the torrent).
pub async fn read_handshake<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Handshake, PeerError> {
    read_handshake_after(stream, &[]).await
}

/// Reads the rest of a remote handshake whose first bytes, `head`, were read already.
pub async fn read_handshake_after<S: AsyncRead + Unpin>(
    stream: &mut S,
    head: &[u8],
) -> Result<Handshake, PeerError> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    let head = &head[..head.len().min(HANDSHAKE_LEN)];
    buf[..head.len()].copy_from_slice(head);
    tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut buf[head.len()..]))
        .await
        .map_err(|_| PeerError::Timeout("handshake"))??;
    Ok(Handshake::decode(&buf)?)
}

/// Sends our handshake for `info_hash`.
pub async fn write_handshake<S: AsyncWrite + Unpin>(
    stream: &mut S,
    info_hash: InfoHash,
    our_id: PeerId,
) -> Result<(), PeerError> {
    let hs = Handshake::new(info_hash, our_id).encode();
    let write = async {
        stream.write_all(&hs).await?;
        stream.flush().await
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, write)
        .await
        .map_err(|_| PeerError::Timeout("handshake"))??;
    Ok(())
}

/// Outgoing side: send ours, read theirs, check the info-hash and that we did not dial
/// ourselves.
pub async fn outgoing<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    info_hash: InfoHash,
    our_id: PeerId,
) -> Result<Handshake, PeerError> {
    write_handshake(stream, info_hash, our_id).await?;
    answer(stream, info_hash, our_id).await
}

/// Outgoing side once ours is sent (inside MSE it travels in the initial payload):
/// read theirs and check it.
pub async fn answer<S: AsyncRead + Unpin>(
    stream: &mut S,
    info_hash: InfoHash,
    our_id: PeerId,
) -> Result<Handshake, PeerError> {
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
