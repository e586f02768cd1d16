//! Serving a peer's requests from storage: the driver's side of
//! [`crate::conn::Connection::poll_disk_read`]. Each batch is read off the runtime,
//! one positional read per run of adjacent blocks, into pooled page-aligned buffers.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use shoal_proto::wire::BlockRef;
use tokio::sync::mpsc;

use crate::conn::DiskRead;
use crate::torrent::Shared;

/// Blocks read for a peer, tagged with the choke epoch of their [`DiskRead`].
pub(super) type DiskBlocks = (DiskRead, Vec<(BlockRef, Bytes)>);

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

/// Reads `read` off the runtime and sends what could be read to `done`.
pub(super) fn start(
    shared: &Arc<Shared>,
    read: DiskRead,
    done: &mpsc::Sender<DiskBlocks>,
    addr: SocketAddr,
) {
    let storage = shared.storage();
    let sh = shared.clone();
    let done = done.clone();
    let job = async move {
        let (read, blocks) = tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(read.blocks.len());
            if let Some(storage) = storage {
                if let Err(e) = read_blocks(&*storage, &read.blocks, &mut out) {
                    sh.serve_failed(addr, e);
                }
            }
            (read, out)
        })
        .await
        .unwrap_or_else(|_| (DiskRead::default(), Vec::new()));
        let _ = done.send((read, blocks)).await;
    };
    // In the peer's span, so read failures are logged under it.
    shared
        .tasks
        .spawn(shared.traced(tracing::Span::current(), job));
}
