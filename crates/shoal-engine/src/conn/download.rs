//! The download side of a connection: keeping the request pipeline full, taking the
//! blocks the peer sends (only those we asked for), and giving requests back to the
//! picker when they are rejected, cancelled or the peer goes away.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use shoal_proto::wire::{self, BlockRef, Message};

use super::{Connection, PeerError, Swarm, MAX_RECENT, MAX_UNSOLICITED};
use crate::picker::Block;

impl Connection {
    /// A fast peer will not send a block: give it back to the picker. Rejecting what
    /// we never asked for breaks BEP 6.
    pub(super) fn on_reject(&mut self, r: BlockRef, swarm: &impl Swarm) -> Result<(), PeerError> {
        let b = Block {
            piece: r.index,
            begin: r.begin,
            length: r.length,
        };
        if let Some(pos) = self.inflight.iter().position(|x| *x == b) {
            self.inflight.swap_remove(pos);
            swarm.request_dropped(self.key, b);
        } else if !self.take_recent(b) {
            return Err(PeerError::Protocol(format!(
                "reject for a request we never sent: piece {} offset {} length {}",
                r.index, r.begin, r.length
            )));
        }
        Ok(())
    }

    /// Our cancel of a request another peer answered first (endgame).
    pub(super) fn cancel_request(&mut self, b: Block) {
        if let Some(p) = self.inflight.iter().position(|x| *x == b) {
            self.inflight.swap_remove(p);
            self.remember_dropped([b]);
            self.send(Message::Cancel(BlockRef {
                index: b.piece,
                begin: b.begin,
                length: b.length,
            }));
        }
    }

    /// Removes `b` from the requests we gave up on; false if it is not there.
    fn take_recent(&mut self, b: Block) -> bool {
        match self.recent.iter().position(|x| *x == b) {
            Some(pos) => {
                self.recent.remove(pos);
                true
            }
            None => false,
        }
    }

    /// Remembers requests we gave up on, so that their late answers are taken.
    fn remember_dropped(&mut self, blocks: impl IntoIterator<Item = Block>) {
        for b in blocks {
            if self.recent.len() >= MAX_RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(b);
        }
    }

    pub(super) fn on_piece(
        &mut self,
        index: u32,
        begin: u32,
        data: Bytes,
        swarm: &impl Swarm,
    ) -> Result<(), PeerError> {
        let block = Block {
            piece: index,
            begin,
            length: data.len() as u32,
        };
        if let Some(p) = self.inflight.iter().position(|b| *b == block) {
            self.inflight.swap_remove(p);
        } else if !self.take_recent(block) {
            // Never asked for (or too long ago): not ours to place, nor progress.
            self.unsolicited += 1;
            tracing::debug!(index, begin, "discarding a block we did not request");
            if self.unsolicited > MAX_UNSOLICITED {
                return Err(PeerError::Protocol(format!(
                    "{} blocks we did not request",
                    self.unsolicited
                )));
            }
            return Ok(());
        }
        self.last_block = self.now;
        self.stats.snubbed.store(false, Ordering::Relaxed);
        self.received_unmetered += data.len() as u64;
        self.rate.add(data.len() as u64, self.now);
        self.stats
            .downloaded
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        swarm.block_received(self.key, self.addr, block, data);
        Ok(())
    }

    /// Keeps enough requests outstanding to cover the peer's rate.
    pub(super) fn fill_requests(&mut self, swarm: &impl Swarm) {
        if self.peer_choking || !self.am_interested || swarm.backlogged() {
            return;
        }
        let rate = self.rate.rate(self.now);
        // About half a second of data at the current rate, within the peer's queue.
        let depth = ((rate / 2) / u64::from(wire::BLOCK_LEN)) as usize;
        let their_reqq = self.extensions.their_reqq();
        self.max_inflight = depth.clamp(16, their_reqq.clamp(16, 500));
        let room = self.max_inflight.saturating_sub(self.inflight.len());
        if room == 0 || (room < 4 && !self.inflight.is_empty()) {
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        swarm.pick(
            self.key,
            &self.their_pieces,
            room,
            &mut self.rng,
            &mut scratch,
        );
        for b in &scratch {
            self.inflight.push(*b);
            self.send(Message::Request(BlockRef {
                index: b.piece,
                begin: b.begin,
                length: b.length,
            }));
        }
        if scratch.is_empty() && self.inflight.is_empty() {
            self.update_interest(swarm);
        }
        self.scratch = scratch;
    }

    /// Gives every outstanding request back to the picker; their late answers are
    /// still taken (see `recent`).
    pub(super) fn release_requests(&mut self, swarm: &impl Swarm) {
        if !self.inflight.is_empty() {
            swarm.requests_dropped(self.key, &self.inflight);
            let mut dropped = std::mem::take(&mut self.inflight);
            self.remember_dropped(dropped.drain(..));
            self.inflight = dropped;
        }
    }
}
