//! The upload side of a connection: checking the peer's requests, asking the driver
//! to read them from storage in batches, and queueing the blocks unless we choked the
//! peer meanwhile.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use shoal_proto::wire::{piece_header, BlockRef, Message};

use super::{Connection, DiskRead, PeerError, Swarm, MAX_REQUEST_LEN, MAX_UPLOAD_QUEUE};

/// Requests read from storage in one batch.
pub(crate) const UPLOAD_READ_BATCH: usize = 32;

impl Connection {
    pub(super) fn on_request(&mut self, r: BlockRef, swarm: &impl Swarm) -> Result<(), PeerError> {
        let size = swarm.piece_size(r.index);
        let valid = r.index < self.their_pieces.num_pieces()
            && r.length > 0
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
            && swarm.have_piece(r.index);
        if ok {
            self.upload_queue.push_back(r);
        } else if self.fast {
            self.send(Message::RejectRequest(r));
        }
        Ok(())
    }

    /// Chokes the peer: its queued requests are dropped (rejected, to a fast peer) and
    /// blocks being read for it are not sent.
    pub(super) fn choke_peer(&mut self) {
        if self.am_choking {
            return;
        }
        self.am_choking = true;
        self.choke_epoch += 1;
        self.stats.am_choking.store(true, Ordering::Relaxed);
        if self.fast {
            for r in std::mem::take(&mut self.upload_queue) {
                self.send(Message::RejectRequest(r));
            }
        } else {
            self.upload_queue.clear();
        }
        self.send(Message::Choke);
    }

    /// The next batch of the peer's requests to read from storage, when none is being
    /// read and little output waits (so reads follow the peer's reading).
    pub(crate) fn poll_disk_read(&mut self) -> Option<DiskRead> {
        if self.reading || self.upload_queue.is_empty() || self.transmit.len() >= UPLOAD_READ_BATCH
        {
            return None;
        }
        let n = self.upload_queue.len().min(UPLOAD_READ_BATCH);
        self.reading = true;
        Some(DiskRead {
            epoch: self.choke_epoch,
            blocks: self.upload_queue.drain(..n).collect(),
        })
    }

    /// Blocks read for `read`: those that could be read, in order, a prefix of what
    /// was asked (storage stops at its first error). Sent unless we choked the peer
    /// since the read started; requests that get no block are rejected to a fast peer
    /// (a peer without the extension has forgotten them after a choke, BEP 3, and
    /// otherwise asks again once its request times out).
    pub(crate) fn handle_disk_read(
        &mut self,
        now: std::time::Instant,
        read: DiskRead,
        blocks: Vec<(BlockRef, Bytes)>,
    ) {
        self.now = now;
        self.reading = false;
        let current = read.epoch == self.choke_epoch;
        let mut blocks = blocks.into_iter().peekable();
        for r in read.blocks {
            // A short block is never sent as if it were the one asked for.
            let block = blocks
                .next_if(|(b, _)| *b == r)
                .filter(|(_, data)| data.len() == r.length as usize);
            match block {
                Some((_, data)) if current => {
                    self.send_block(piece_header(r.index, r.begin, r.length), data)
                }
                _ if self.fast => self.send(Message::RejectRequest(r)),
                _ => {}
            }
        }
    }
}
