//! The writing half of a peer connection: batches queued messages and block data into
//! few large writes, applies the upload rate limit, and counts uploaded bytes. A
//! batch that the peer does not take within [`WRITE_TIMEOUT`] means it stopped reading:
//! the connection is dropped.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use super::PeerStats;
use crate::torrent::{Shared, TorrentEvent};

/// Something to send to the peer.
pub(crate) enum Out {
    /// Already-framed control messages (possibly several).
    Msgs(Vec<u8>),
    /// A `piece` message: header plus the block's bytes (sent without another copy of
    /// the block when it is large).
    Block { header: [u8; 13], data: Bytes },
}

/// Bytes gathered before a write is issued.
const BATCH: usize = 128 * 1024;
/// A write that makes no progress for this long means the peer stopped reading.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) async fn run(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Out>,
    shared: Arc<Shared>,
    stats: Arc<PeerStats>,
    addr: SocketAddr,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(BATCH + 32 * 1024);
    // (piece, bytes) sent to this peer and not yet reported as an event.
    let mut sent: Option<(u32, u64)> = None;
    let report = |sent: &mut Option<(u32, u64)>| {
        if let Some((piece, bytes)) = sent.take() {
            shared.emit(TorrentEvent::BlocksSent {
                peer: addr,
                piece,
                bytes,
            });
        }
    };
    while let Some(first) = rx.recv().await {
        let mut payload = 0u64;
        let mut next = Some(first);
        while let Some(out) = next.take() {
            match out {
                Out::Msgs(m) => buf.extend_from_slice(&m),
                Out::Block { header, data } => {
                    buf.extend_from_slice(&header);
                    buf.extend_from_slice(&data);
                    payload += data.len() as u64;
                    let piece = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
                    match &mut sent {
                        Some((p, bytes)) if *p == piece => *bytes += data.len() as u64,
                        _ => {
                            report(&mut sent);
                            sent = Some((piece, data.len() as u64));
                        }
                    }
                    if sent.is_some_and(|(p, b)| b >= shared.meta.info.piece_size(p)) {
                        report(&mut sent);
                    }
                }
            }
            if buf.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if payload > 0 {
            shared.limits.wait_up(payload).await;
        }
        tokio::time::timeout(WRITE_TIMEOUT, w.write_all(&buf))
            .await
            .map_err(|_| std::io::Error::new(ErrorKind::TimedOut, "peer stopped reading"))??;
        buf.clear();
        if payload > 0 {
            stats.uploaded.fetch_add(payload, Ordering::Relaxed);
            shared.uploaded.fetch_add(payload, Ordering::Relaxed);
        }
    }
    report(&mut sent);
    let _ = w.shutdown().await;
    Ok(())
}
