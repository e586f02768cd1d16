//! The upload side of a peer: checking its requests, reading the blocks from disk in
//! batches off the runtime, and sending them unless we choked the peer meanwhile.

use std::time::Instant;

use bytes::Bytes;
use shoal_proto::wire::{piece_header, BlockRef, Message};
use tokio::sync::mpsc;

use super::writer::Out;
use super::{DiskBlocks, Peer, PeerError, MAX_REQUEST_LEN, MAX_UPLOAD_QUEUE};

/// Requests read from disk in one blocking job.
const UPLOAD_READ_BATCH: usize = 32;

/// Largest single read when coalescing adjacent requests.
const MAX_COALESCED_READ: usize = 1 << 20;

/// Reads the blocks of `batch` into `out`, one positional read per run of adjacent
/// requests in the same piece (peers ask for a piece's blocks in order), sharing the
/// buffer between the blocks of a run. Stops at the first error.
fn read_blocks(
    storage: &dyn crate::storage::Storage,
    batch: &[BlockRef],
    out: &mut Vec<(BlockRef, Bytes)>,
) -> Result<(), crate::storage::StorageError> {
    let mut i = 0;
    while let Some(first) = batch.get(i) {
        let mut len = first.length as usize;
        let mut j = i + 1;
        while let Some(next) = batch.get(j) {
            let adjacent = next.index == first.index
                && u64::from(next.begin) == u64::from(first.begin) + len as u64;
            if !adjacent || len + next.length as usize > MAX_COALESCED_READ {
                break;
            }
            len += next.length as usize;
            j += 1;
        }
        let run = crate::buf::read_aligned(len, |buf| storage.read(first.index, first.begin, buf))?;
        let mut off = 0;
        for r in &batch[i..j] {
            let end = off + r.length as usize;
            out.push((*r, run.slice(off..end)));
            off = end;
        }
        i = j;
    }
    Ok(())
}

impl Peer {
    /// Sends blocks read from disk, unless we choked the peer since the read started:
    /// a fast peer then gets a reject per block, another peer has already forgotten
    /// its requests (BEP 3).
    pub(super) async fn send_blocks(
        &mut self,
        epoch: u64,
        blocks: Vec<(BlockRef, Bytes)>,
    ) -> Result<(), PeerError> {
        if epoch != self.choke_epoch {
            if self.fast {
                for (r, _) in blocks {
                    self.send(Message::RejectRequest(r));
                }
            }
            return Ok(());
        }
        for (r, data) in blocks {
            let header = piece_header(r.index, r.begin, r.length);
            self.send_out(Out::Block { header, data }).await?;
        }
        self.last_send = Instant::now();
        Ok(())
    }

    pub(super) fn on_request(&mut self, r: BlockRef) -> Result<(), PeerError> {
        let size = self.shared.meta.info.piece_size(r.index);
        let valid = r.length > 0
            && r.length <= MAX_REQUEST_LEN
            && u64::from(r.begin) + u64::from(r.length) <= size;
        if !valid {
            return Err(PeerError::Protocol(format!(
                "bad request: piece {} offset {} length {}",
                r.index, r.begin, r.length
            )));
        }
        let ok = !self.am_choking
            && self.upload_queue.len() < MAX_UPLOAD_QUEUE
            && self.shared.have_piece(r.index);
        if ok {
            self.upload_queue.push_back(r);
        } else if self.fast {
            self.send(Message::RejectRequest(r));
        }
        Ok(())
    }

    pub(super) fn start_disk_read(&mut self, done: &mpsc::Sender<DiskBlocks>) {
        let n = self.upload_queue.len().min(UPLOAD_READ_BATCH);
        let batch: Vec<BlockRef> = self.upload_queue.drain(..n).collect();
        self.reading = true;
        let storage = self.shared.storage();
        let shared = self.shared.clone();
        let done = done.clone();
        let addr = self.addr;
        let epoch = self.choke_epoch;
        self.shared.tasks.spawn(async move {
            let read = tokio::task::spawn_blocking(move || {
                let storage = storage?;
                let mut out = Vec::with_capacity(batch.len());
                if let Err(e) = read_blocks(&*storage, &batch, &mut out) {
                    shared.serve_failed(addr, e);
                }
                Some(out)
            })
            .await;
            let blocks = read.ok().flatten().unwrap_or_default();
            let _ = done.send((epoch, blocks)).await;
        });
    }
}
