//! The data check every storage shares: pieces hashed in parallel, each read into a
//! page-aligned scratch buffer (see `crate::buf`), missing data counted as absent.

use super::layout::Layout;
use super::StorageError;
use crate::buf::AlignedBuf;
use sha1::{Digest, Sha1};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// What a storage tells [`check_pieces`] about one piece before it is read.
pub(super) type Verify<'a> = dyn Fn(u32, &mut AlignedBuf) -> Result<bool, StorageError> + Sync + 'a;

/// Whether `piece` as `read` fills it matches its hash in `hashes`. `buf` is scratch
/// space, grown as needed.
pub(super) fn verify_piece(
    layout: &Layout,
    hashes: &[[u8; 20]],
    piece: u32,
    buf: &mut AlignedBuf,
    read: impl FnOnce(&mut [u8]) -> Result<(), StorageError>,
) -> Result<bool, StorageError> {
    let size = layout
        .piece_size(piece)
        .ok_or(StorageError::PieceOutOfRange {
            piece,
            num_pieces: layout.num_pieces,
        })?;
    // At most the 64 MiB piece cap (checked by `Layout::new`): fits in usize.
    let data = buf.prefix(size as usize);
    read(data)?;
    let hash: [u8; 20] = Sha1::digest(&*data).into();
    Ok(hashes.get(piece as usize) == Some(&hash))
}

/// Reads piece `piece` whole into the buffer, from the piece's start.
pub(super) type ReadPiece<'a> = dyn Fn(u32, &mut [u8]) -> Result<(), StorageError> + Sync + 'a;

/// Checks every piece by reading it whole through `read`: for storages that know no
/// cheaper way.
pub(super) fn check_by_reading(
    layout: &Layout,
    hashes: &[[u8; 20]],
    threads: usize,
    progress: &(dyn Fn(u32) + Sync),
    read: &ReadPiece<'_>,
) -> Result<Vec<bool>, StorageError> {
    let verify = |piece: u32, buf: &mut AlignedBuf| {
        verify_piece(layout, hashes, piece, buf, |data| read(piece, data))
    };
    check_pieces(layout.num_pieces, threads, progress, &verify)
}

/// Runs `verify` over pieces `0..num_pieces` on `threads` threads (at least one),
/// calling `progress` with the number done after each (one call at a time, never
/// decreasing). [`StorageError::Truncated`] makes a piece `false`; other errors stop
/// the check.
pub(super) fn check_pieces(
    num_pieces: u32,
    threads: usize,
    progress: &(dyn Fn(u32) + Sync),
    verify: &Verify<'_>,
) -> Result<Vec<bool>, StorageError> {
    let n = num_pieces;
    let next = AtomicU64::new(0);
    let done = Mutex::new(0u32);
    let stop = AtomicBool::new(false);
    let have: Vec<AtomicBool> = (0..n).map(|_| AtomicBool::new(false)).collect();
    let threads = threads.clamp(1, (n as usize).max(1));
    let worker = || -> Result<(), StorageError> {
        let mut buf = AlignedBuf::new(0);
        while !stop.load(Ordering::Relaxed) {
            let piece = next.fetch_add(1, Ordering::Relaxed);
            let Ok(piece) = u32::try_from(piece) else {
                break;
            };
            if piece >= n {
                break;
            }
            let ok = match verify(piece, &mut buf) {
                Ok(ok) => ok,
                Err(StorageError::Truncated { .. }) => false,
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            };
            if let Some(slot) = have.get(piece as usize) {
                slot.store(ok, Ordering::Relaxed);
            }
            // Counting and reporting under one lock keeps reports in order.
            let mut done = done.lock().unwrap_or_else(PoisonError::into_inner);
            *done += 1;
            progress(*done);
        }
        Ok(())
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
        // A worker can only panic on a bug; re-raise it rather than hide it.
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })?;
    Ok(have.into_iter().map(AtomicBool::into_inner).collect())
}
