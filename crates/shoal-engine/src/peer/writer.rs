//! The writing half of a peer connection: batches queued messages and block data into
//! few large vectored writes (block data is not copied again: headers and control
//! messages are gathered in one small buffer and the blocks' bytes are passed as they
//! were read from disk), applies the upload rate limit (under a limit, batches are
//! sized by [`crate::rate::Limits::up_batch_cap`] and each waits until its bytes are
//! earned), and counts uploaded bytes. A batch that the peer does not take within
//! [`WRITE_TIMEOUT`] means it stopped reading: the connection is dropped.

use std::io::{ErrorKind, IoSlice};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::PeerStats;
use crate::torrent::{Shared, TorrentEvent};

/// Something to send to the peer.
pub(crate) use crate::conn::Transmit as Out;

/// Bytes gathered before a write is issued.
const BATCH: usize = 128 * 1024;
/// Slices per `writev` (Linux refuses more than 1024; tiny requested blocks could make
/// a batch of more).
const MAX_SLICES: usize = 512;
use crate::conn::WRITE_TIMEOUT;

pub(crate) async fn run<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::Receiver<Out>,
    shared: Arc<Shared>,
    stats: Arc<PeerStats>,
    addr: SocketAddr,
) -> std::io::Result<()> {
    let mut batch = Batch::default();
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
        // Under an upload limit a batch is the limit's share for one round among the
        // writers waiting (at least one block), so each peer waits briefly and often.
        let cap = crate::rate::min_cap(
            shared.limits.up_batch_cap(),
            shared.own_limits.up_batch_cap(),
        );
        let batch_cap = cap.map_or(BATCH, |c| c.min(BATCH));
        let mut payload = 0u64;
        let mut next = Some(first);
        while let Some(out) = next.take() {
            match out {
                Out::Msgs(m) => batch.small(&m),
                Out::Block { header, data } => {
                    batch.small(&header);
                    let len = data.len();
                    batch.data(data);
                    payload += len as u64;
                    let piece = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
                    match &mut sent {
                        Some((p, bytes)) if *p == piece => *bytes += len as u64,
                        _ => {
                            report(&mut sent);
                            sent = Some((piece, len as u64));
                        }
                    }
                    if sent.is_some_and(|(p, b)| b >= shared.meta.info.piece_size(p)) {
                        report(&mut sent);
                    }
                }
            }
            if batch.len < batch_cap {
                next = rx.try_recv().ok();
            }
        }
        if payload > 0 {
            // Waits until the limit has earned these bytes, however long that takes.
            shared.limits.wait_up(payload).await;
            shared.own_limits.wait_up(payload).await;
        }
        batch.write_all(&mut w).await?;
        if payload > 0 {
            stats.uploaded.fetch_add(payload, Ordering::Relaxed);
            shared.uploaded.fetch_add(payload, Ordering::Relaxed);
        }
    }
    report(&mut sent);
    let _ = w.shutdown().await;
    Ok(())
}

/// Part of a batch: bytes in [`Batch::small`] or a block's data.
enum Part {
    Small(std::ops::Range<usize>),
    Data(Bytes),
}

/// What one vectored write sends: small pieces (headers, control messages) gathered in
/// one buffer, block data by reference.
#[derive(Default)]
struct Batch {
    small: Vec<u8>,
    parts: Vec<Part>,
    /// Bytes in the batch.
    len: usize,
}

impl Batch {
    fn small(&mut self, bytes: &[u8]) {
        let start = self.small.len();
        self.small.extend_from_slice(bytes);
        self.len += bytes.len();
        match self.parts.last_mut() {
            Some(Part::Small(r)) if r.end == start => r.end = self.small.len(),
            _ => self.parts.push(Part::Small(start..self.small.len())),
        }
    }

    fn data(&mut self, data: Bytes) {
        self.len += data.len();
        if !data.is_empty() {
            self.parts.push(Part::Data(data));
        }
    }

    /// Writes the whole batch (each write bounded by [`WRITE_TIMEOUT`]) and empties it.
    async fn write_all<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> std::io::Result<()> {
        // (part, offset in it) of the first byte not yet written.
        let (mut part, mut offset) = (0, 0);
        while part < self.parts.len() {
            let mut slices = Vec::with_capacity((self.parts.len() - part).min(MAX_SLICES));
            for (i, p) in self.parts.iter().enumerate().skip(part).take(MAX_SLICES) {
                let bytes = match p {
                    Part::Small(r) => self.small.get(r.clone()).unwrap_or_default(),
                    Part::Data(d) => d,
                };
                let skip = if i == part { offset } else { 0 };
                slices.push(IoSlice::new(bytes.get(skip..).unwrap_or_default()));
            }
            let n = tokio::time::timeout(WRITE_TIMEOUT, w.write_vectored(&slices))
                .await
                .map_err(|_| std::io::Error::new(ErrorKind::TimedOut, "peer stopped reading"))??;
            if n == 0 {
                return Err(ErrorKind::WriteZero.into());
            }
            // Advance the cursor by the n bytes written.
            let mut rest = n;
            while rest > 0 {
                let Some(p) = self.parts.get(part) else { break };
                let plen = match p {
                    Part::Small(r) => r.len(),
                    Part::Data(d) => d.len(),
                };
                let left = plen - offset;
                if rest < left {
                    offset += rest;
                    rest = 0;
                } else {
                    rest -= left;
                    part += 1;
                    offset = 0;
                }
            }
        }
        // A buffering transport (MSE encrypts ahead of the socket) sends the rest now,
        // before the writer waits for more output.
        tokio::time::timeout(WRITE_TIMEOUT, w.flush())
            .await
            .map_err(|_| std::io::Error::new(ErrorKind::TimedOut, "peer stopped reading"))??;
        self.small.clear();
        self.parts.clear();
        self.len = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// More parts than one `writev` takes, small and large, written to a slow reader:
    /// every byte arrives once, in order.
    #[tokio::test]
    async fn batch_writes_every_part_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let (_r, mut w) = client.into_split();
        let mut batch = Batch::default();
        let mut expected = Vec::new();
        for i in 0..1500u32 {
            let header = i.to_be_bytes();
            batch.small(&header);
            expected.extend_from_slice(&header);
            let len = if i % 100 == 0 {
                200_000
            } else {
                (i % 7) as usize
            };
            let data: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
            expected.extend_from_slice(&data);
            batch.data(Bytes::from(data));
        }
        assert_eq!(batch.len, expected.len());
        let total = expected.len();
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; total];
            let mut at = 0;
            while at < total {
                // Small reads keep the socket buffers full, forcing partial writes.
                let end = (at + 4096).min(total);
                let n = server.read(&mut got[at..end]).await.unwrap();
                assert!(n > 0, "early end of stream");
                at += n;
            }
            got
        });
        batch.write_all(&mut w).await.unwrap();
        assert_eq!(batch.len, 0);
        assert!(batch.parts.is_empty() && batch.small.is_empty());
        assert!(reader.await.unwrap() == expected);
    }
}
