//! Requests and received blocks: picking, collecting the blocks of each piece, and
//! finishing pieces (hash, store, announce) off the async runtime.
//!
//! Blocks are kept as they arrived, as shared slices of the peer's receive buffer
//! ([`Bytes`]), not copied into a piece buffer: the hash reads them in order and the
//! write hands them to the kernel in one vectored write per file. The copy they
//! replace was 4.4 % of a 1 GiB leecher's CPU (`memmove` under the torrent lock).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::SmallRng;
use sha1::{Digest, Sha1};
use shoal_proto::wire::Bitfield;
use tracing::warn;

use super::{PeerKey, Phase, Shared, State, TorrentEvent, BAN_STRIKES};
use crate::peer::PeerCmd;
use crate::picker::Block;
use crate::storage::StorageError;

/// Complete pieces waiting to be hashed and written beyond which peers stop
/// requesting more (backpressure from disk and CPU to the network). Blocks pin the
/// receive buffers they were read into until written, so this bounds most of a
/// leecher's memory. Bench scenario 1 (1 GiB, quiet machine, 3 runs): 12 MiB gave a
/// peak of 31.7-37.5 MiB anonymous memory, 8 MiB 20.9-27.9 MiB at the same speed
/// (757 and 808 MB/s medians).
const MAX_PENDING_BYTES: u64 = 8 << 20;
/// Pieces in progress (each holding up to a piece of received blocks) beyond which no new piece
/// is started; requests go only to pieces already started until some complete.
const MAX_PARTIAL_BYTES: u64 = 64 << 20;

impl Shared {
    /// Too much received data waits for hashing or disk: request nothing new for now.
    pub(crate) fn backlogged(&self) -> bool {
        self.pending_bytes.load(Ordering::Relaxed) > MAX_PENDING_BYTES
    }

    pub(crate) fn pick(
        &self,
        key: PeerKey,
        theirs: &Bitfield,
        max: usize,
        rng: &mut SmallRng,
        out: &mut Vec<Block>,
    ) {
        let mut st = self.lock();
        super::stream::clock_if_streaming(&mut st.picker);
        let started = st.picker.active_pieces() as u64;
        if started * self.meta.info.piece_length >= MAX_PARTIAL_BYTES {
            st.picker.pick_started_only(key, theirs, max, rng, out);
        } else {
            st.picker.pick(key, theirs, max, rng, out);
        }
    }

    pub(crate) fn request_dropped(&self, key: PeerKey, b: Block) {
        self.lock().picker.request_dropped(key, b);
    }

    pub(crate) fn requests_dropped(&self, key: PeerKey, blocks: &[Block]) {
        let mut st = self.lock();
        for b in blocks {
            st.picker.request_dropped(key, *b);
        }
    }

    /// Keeps a received block with its piece; hashes and stores the piece when it is
    /// complete.
    pub(crate) fn block_received(
        self: &Arc<Self>,
        key: PeerKey,
        addr: SocketAddr,
        block: Block,
        data: Bytes,
    ) {
        self.downloaded
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let mut st = self.lock();
        if st.have.get(block.piece) {
            return;
        }
        let r = st.picker.block_received(key, block);
        if !r.first {
            return;
        }
        for other in &r.other_requesters {
            if let Some(p) = st.peers.get(other) {
                let _ = p.tx.send(PeerCmd::Cancel(block));
            }
        }
        let blocks = st.partial.entry(block.piece).or_default();
        blocks.push((block.begin, data));
        if blocks.len() == 1 {
            st.piece_source.insert(block.piece, addr);
        }
        if r.piece_complete {
            if let Some(blocks) = st.partial.remove(&block.piece) {
                drop(st);
                let len: usize = blocks.iter().map(|(_, b)| b.len()).sum();
                self.pending_bytes.fetch_add(len as u64, Ordering::Relaxed);
                let me = self.clone();
                let finish = async move { me.finish_piece(block.piece, blocks).await };
                self.tasks
                    .spawn(self.traced(self.piece_span(block.piece), finish));
            }
        }
    }

    /// Hashes a complete piece off the runtime; stores it if good, refetches it if not.
    async fn finish_piece(self: Arc<Self>, piece: u32, mut blocks: Vec<(u32, Bytes)>) {
        // Counted in `pending_bytes` by the caller; released on every way out.
        struct Pending<'a>(&'a Shared, u64);
        impl Drop for Pending<'_> {
            fn drop(&mut self) {
                self.0.pending_bytes.fetch_sub(self.1, Ordering::Relaxed);
            }
        }
        let len: usize = blocks.iter().map(|(_, b)| b.len()).sum();
        let _pending = Pending(&self, len as u64);
        let Ok(_permit) = self.hash_slots.acquire().await else {
            return;
        };
        let Some(storage) = self.storage() else {
            return;
        };
        let expected = self.meta.info.pieces[piece as usize];
        let size = self.meta.info.piece_size(piece) as usize;
        let job = tokio::task::spawn_blocking(move || {
            blocks.sort_unstable_by_key(|(begin, _)| *begin);
            // The picker accepts each requested block once, so they tile the piece; a
            // gap or overlap would be our bug: the piece is fetched again, not stored,
            // and no peer is blamed.
            let mut at = 0usize;
            let tiled = blocks.iter().all(|(begin, b)| {
                let ok = *begin as usize == at;
                at += b.len();
                ok
            }) && at == size;
            let mut sha = Sha1::new();
            for (_, b) in &blocks {
                sha.update(b);
            }
            let ok = tiled && sha.finalize().as_slice() == expected;
            let written = if ok {
                let parts: Vec<&[u8]> = blocks.iter().map(|(_, b)| &b[..]).collect();
                storage.write_parts(piece, 0, &parts)
            } else {
                Ok(())
            };
            (tiled, ok, written)
        });
        let Ok((tiled, ok, written)) = job.await else {
            return;
        };
        let mut st = self.lock();
        if !tiled {
            st.piece_source.remove(&piece);
            st.picker.piece_failed(piece);
            drop(st);
            tracing::error!(
                piece,
                "received blocks do not tile the piece; fetching it again"
            );
            return;
        }
        match (ok, written) {
            (true, Ok(())) => {
                st.picker.piece_verified(piece);
                st.have.set(piece);
                let source = st.piece_source.remove(&piece);
                for p in st.peers.values() {
                    let _ = p.tx.send(PeerCmd::Have(piece));
                }
                let done = st.picker.is_complete_wanted();
                drop(st);
                self.emit(TorrentEvent::PieceVerified {
                    piece,
                    bytes: self.meta.info.piece_size(piece),
                    peer: source,
                });
                if done {
                    self.update_completion(true);
                }
            }
            (true, Err(e)) => {
                st.picker.piece_failed(piece);
                st.piece_source.remove(&piece);
                drop(st);
                warn!("cannot store piece {piece}: {e}");
                self.set_phase(Phase::Error(format!("{e}")));
                self.emit(TorrentEvent::Error(e.to_string()));
                self.cancel.cancel();
            }
            (false, _) => {
                st.hash_failures += 1;
                st.piece_source.remove(&piece);
                self.emit(TorrentEvent::PieceFailed { piece });
                let contributors = st.picker.piece_failed(piece);
                let sole = contributors.len() == 1;
                warn!(
                    piece,
                    ?contributors,
                    "piece failed its hash check; fetching it again"
                );
                for k in contributors {
                    Self::strike(&mut st, k, if sole { 2 } else { 1 });
                }
            }
        }
    }

    /// A read of blocks for the peer at `addr` failed: it gets none of the blocks not
    /// read. Data that should be there and is not (a file shortened or deleted outside
    /// Shoal) means pieces we announced are gone, and a read error (`EIO`) means the
    /// disk under them cannot be trusted: either way the torrent stops with the reason,
    /// and resuming it rechecks. Range errors are bad requests and change nothing.
    pub(crate) fn serve_failed(&self, addr: SocketAddr, e: StorageError) {
        if !matches!(
            e,
            StorageError::Truncated { .. }
                | StorageError::Deleted { .. }
                | StorageError::Read { .. }
        ) {
            warn!(%addr, "cannot serve data: {e}");
            return;
        }
        // Once stopped, later failures (other reads finding the same hole) add nothing.
        if self.cancel.is_cancelled() {
            return;
        }
        tracing::error!("stopping: {e}");
        self.set_phase(Phase::Error(e.to_string()));
        self.emit(TorrentEvent::Error(e.to_string()));
        self.cancel.cancel();
    }

    /// Gives the peer behind connection `k` (connected or recently gone) strikes for
    /// a failed piece; at [`BAN_STRIKES`] it is dropped and its address and ID banned.
    pub(super) fn strike(st: &mut State, k: PeerKey, n: u32) {
        let (addr, id) = match st.peers.get(&k) {
            Some(p) => (p.addr, p.peer_id),
            None => match st.departed.iter().rev().find(|d| d.0 == k) {
                Some(&(_, addr, id)) => (addr, id),
                None => return,
            },
        };
        let s = st.strikes.entry((addr.ip(), id)).or_insert(0);
        *s += n;
        if *s < BAN_STRIKES {
            return;
        }
        warn!(%addr, "dropping peer that sent corrupt data");
        if let Some(p) = st.peers.get(&k) {
            let _ =
                p.tx.send(PeerCmd::Disconnect("sent data that failed the hash check"));
        }
        st.banned_addrs.insert(addr);
        st.banned_ids.insert(id);
    }
}
