//! Reading a torrent while it downloads: stream windows for the picker, download
//! order, waiting for a piece to verify and reading verified bytes.
//!
//! Only verified pieces are read: [`TorrentHandle::read_verified`] refuses a piece
//! the torrent does not have, so a reader never sees bytes whose hash was not
//! checked. Reads run on the blocking pool, never on the runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use super::{Phase, TorrentEvents, TorrentHandle};
use crate::picker::{DownloadOrder, StreamId};
use crate::storage::StorageError;

/// How often a waiting reader looks again without an event (events may be dropped
/// for a slow subscriber, and errors and stops come by the phase).
const RECHECK: Duration = Duration::from_millis(500);

/// Stream ids, unique in the process (so in every torrent).
static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);

/// Why a stream read gave up.
#[derive(Debug, Error)]
pub enum StreamError {
    /// The torrent was stopped or removed, or stopped on an error.
    #[error("the torrent stopped")]
    Stopped,
    /// The piece is not verified (yet).
    #[error("piece {0} is not verified")]
    NotVerified(u32),
    /// The range does not fit in the piece.
    #[error("{len} bytes at {begin} do not fit in piece {piece}")]
    OutOfRange {
        /// Piece index.
        piece: u32,
        /// Offset within it.
        begin: u32,
        /// Bytes asked for.
        len: u32,
    },
    /// The torrent's data is not open yet.
    #[error("the torrent's data is not open yet")]
    NotOpen,
    /// Reading the data failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Waits for pieces of one torrent to verify (see [`TorrentHandle::piece_waiter`]).
pub struct PieceWaiter {
    handle: TorrentHandle,
    events: TorrentEvents,
}

impl PieceWaiter {
    /// Returns once `piece` is verified; [`StreamError::Stopped`] if the torrent
    /// stopped (removed, paused, or an error), even when it has the piece. Cancel
    /// safe.
    pub async fn wait(&mut self, piece: u32) -> Result<(), StreamError> {
        let sh = &self.handle.shared;
        loop {
            // Stopped first: a removed torrent ends its streams even where it had
            // the pieces.
            if sh.cancel.is_cancelled()
                || matches!(*sh.phase_rx().borrow(), Phase::Error(_) | Phase::Stopped)
            {
                return Err(StreamError::Stopped);
            }
            if sh.have_piece(piece) {
                return Ok(());
            }
            tokio::select! {
                _ = sh.cancel.cancelled() => return Err(StreamError::Stopped),
                e = self.events.recv() => {
                    if e.is_none() {
                        return Err(StreamError::Stopped);
                    }
                }
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    }
}

impl TorrentHandle {
    /// A fresh stream id for [`Self::set_stream_window`].
    pub fn new_stream_id() -> StreamId {
        NEXT_STREAM.fetch_add(1, Ordering::Relaxed)
    }

    /// Sets stream `id`'s deadline window to pieces `first..=last`: they are
    /// requested before any other, earliest first (see `picker/deadline.rs`).
    pub fn set_stream_window(&self, id: StreamId, first: u32, last: u32) {
        self.shared.lock().picker.set_stream_window(id, first, last);
    }

    /// Removes stream `id`'s window.
    pub fn clear_stream(&self, id: StreamId) {
        self.shared.lock().picker.clear_stream(id);
    }

    /// Sets the download order: sequential or rarest first, and whether the first
    /// and last piece of every file come before the rest.
    pub fn set_download_order(&self, order: DownloadOrder, first_last: bool) {
        let pieces = if first_last {
            first_last_pieces(&self.shared.meta.info)
        } else {
            Vec::new()
        };
        let mut st = self.shared.lock();
        st.picker.set_order(order);
        st.picker.set_first_last(pieces);
    }

    /// True if piece `piece` is verified.
    pub fn has_piece(&self, piece: u32) -> bool {
        self.shared.have_piece(piece)
    }

    /// A waiter for pieces to verify, subscribed from now on.
    pub fn piece_waiter(&self) -> PieceWaiter {
        PieceWaiter {
            handle: self.clone(),
            events: self.shared.subscribe(),
        }
    }

    /// Reads `len` bytes at `begin` of verified piece `piece`, on the blocking pool.
    pub async fn read_verified(
        &self,
        piece: u32,
        begin: u32,
        len: u32,
    ) -> Result<Bytes, StreamError> {
        let size = self.shared.meta.info.piece_size(piece);
        if u64::from(begin) + u64::from(len) > size {
            return Err(StreamError::OutOfRange { piece, begin, len });
        }
        if !self.shared.have_piece(piece) {
            return Err(StreamError::NotVerified(piece));
        }
        let storage = self.shared.storage().ok_or(StreamError::NotOpen)?;
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len as usize];
            storage.read(piece, begin, &mut buf).map(|()| buf)
        });
        match read.await {
            Ok(r) => Ok(Bytes::from(r?)),
            // The blocking pool is shutting down: the node is stopping.
            Err(_) => Err(StreamError::Stopped),
        }
    }
}

/// The first and last piece of every non-empty file, in file order, without
/// repeats next to each other.
fn first_last_pieces(info: &shoal_proto::metainfo::Info) -> Vec<u32> {
    let pl = info.piece_length.max(1);
    let mut out: Vec<u32> = Vec::new();
    for f in info.files.iter().filter(|f| f.length > 0) {
        for p in [f.offset / pl, (f.offset + f.length - 1) / pl] {
            let p = p as u32;
            if out.last() != Some(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// The current time for the picker's deadline duplicates, read only while a
/// stream window is set.
pub(crate) fn clock_if_streaming(picker: &mut crate::picker::PiecePicker) {
    if picker.has_stream_windows() {
        picker.set_clock(Instant::now());
    }
}
