//! Where a torrent's pieces live: the [`Storage`] trait, which maps pieces and blocks
//! onto bytes somewhere, and its implementations.
//!
//! - [`FileStorage`]: the torrent's files under its save folder, with positional I/O
//!   (`pread`, one `pwritev` per file span of a piece). What every torrent uses unless
//!   told otherwise.
//! - [`MemoryStorage`]: the files as buffers in memory, for tests that need no disk.
//! - [`FaultyStorage`]: wraps another storage and injects disk faults (a full disk,
//!   `EIO`, short reads, a file shortened underneath) where a test asks for them.
//!
//! A torrent gets its storage from the [`StorageFactory`] in its
//! [`TorrentOptions`](crate::TorrentOptions); the default opens a [`FileStorage`].
//!
//! # Contract
//!
//! Every method **blocks** (file I/O, SHA-1, fsync): call them from `spawn_blocking`
//! or a disk pool, never on the async runtime. A storage is shared through an
//! `Arc<dyn Storage>` by any number of threads at once; implementations serialize
//! what needs it themselves (the file implementation takes a per-file write lock).
//! The engine writes only pieces whose hash matched, writes each piece at most once
//! per verification, and reads only verified pieces, so a piece is never read and
//! written at the same time.
//!
//! - [`Storage::read`] fills the whole buffer or fails. On failure the buffer's
//!   contents are unspecified (partly read, partly stale) and must not be used: no
//!   byte of it may reach a peer.
//! - [`Storage::write_parts`] writes the whole range or fails. It is **not** atomic: a
//!   failed write may have stored any part of its range, so the piece counts as
//!   missing until it is written again. It never touches bytes outside its range, so
//!   a failed write cannot damage another (verified) piece.
//! - [`Storage::check_all`] reports each piece as present and matching its hash or
//!   not; data that is missing (never written, or cut off) is `false`, not an error.
//! - [`Storage::sync`]: after it returns `Ok`, every write that returned `Ok` before
//!   it was called is durable.
//!
//! What the errors ([`StorageError`]) mean to the engine: [`StorageError::Truncated`]
//! is data that should be there and is not (a file shortened outside Shoal), and
//! [`StorageError::Deleted`] a file deleted while open (reads through the open handle
//! would still succeed, so [`FileStorage`] checks the link count after each read and
//! write): pieces we announced are gone, so a seeding torrent stops and asks for a
//! recheck. [`StorageError::DiskFull`], [`StorageError::Write`] and
//! [`StorageError::Sync`] stop the torrent (it can resume once the disk is fixed).
//! [`StorageError::Read`] (e.g. `EIO`) fails that read only: the peer asking gets
//! nothing. Range errors (`PieceOutOfRange`, `BlockOutOfRange`) are caller bugs or
//! bad input and change nothing.

mod check;
mod error;
mod fault;
mod file;
mod layout;
mod memory;
mod open;
#[cfg(test)]
mod tests;
mod vectored;

pub use error::StorageError;
pub use fault::{Fault, FaultKind, FaultOp, FaultyStorage};
pub use file::FileStorage;
pub use memory::MemoryStorage;

use shoal_proto::metainfo::Info;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// How a storage treats data that is already there when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read-only; every file must exist with exactly the torrent's size.
    Seed,
    /// Read-write; missing folders and files are created, short files are extended
    /// (sparse), larger files are an error. Also fine for already complete data.
    Download,
}

/// The bytes of one torrent's pieces. Object-safe: the engine holds an
/// `Arc<dyn Storage>`. See the [module documentation](self) for the contract every
/// implementation keeps.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Fills `buf` from offset `begin` of `piece`. Fails for blocks that do not fit in
    /// the piece. On failure `buf` holds no usable data.
    fn read(&self, piece: u32, begin: u32, buf: &mut [u8]) -> Result<(), StorageError>;

    /// Writes `parts`, one after the other, from offset `begin` of `piece`. Fails for
    /// ranges that do not fit in the piece (writing nothing) and for read-only data.
    /// Not atomic: on failure, any part of the range may have been written.
    fn write_parts(&self, piece: u32, begin: u32, parts: &[&[u8]]) -> Result<(), StorageError>;

    /// Verifies every piece on `threads` threads (at least one), calling `progress`
    /// with the number of pieces done so far after each (one call at a time, never
    /// decreasing). Missing data is `false`; other errors stop the check.
    fn check_all(
        &self,
        threads: usize,
        progress: &(dyn Fn(u32) + Sync),
    ) -> Result<Vec<bool>, StorageError>;

    /// Makes every completed write durable. A no-op for read-only data.
    fn sync(&self) -> Result<(), StorageError>;

    /// Writes `data` at offset `begin` of `piece` (see [`Storage::write_parts`]).
    fn write(&self, piece: u32, begin: u32, data: &[u8]) -> Result<(), StorageError> {
        self.write_parts(piece, begin, &[data])
    }
}

/// What a [`StorageFactory`] calls: save folder, `info` and mode to storage.
type OpenFn =
    dyn Fn(&Path, &Info, OpenMode) -> Result<Arc<dyn Storage>, StorageError> + Send + Sync;

/// Builds a torrent's [`Storage`] from its save folder, its `info` and the
/// [`OpenMode`] each time the torrent starts, from a blocking thread (opening may
/// touch thousands of files). The default opens a [`FileStorage`]; tests pass their
/// own through [`TorrentOptions::storage`](crate::TorrentOptions::storage).
#[derive(Clone)]
pub struct StorageFactory(Arc<OpenFn>);

impl StorageFactory {
    /// A factory calling `open(save_dir, info, mode)` for each start.
    pub fn new(
        open: impl Fn(&Path, &Info, OpenMode) -> Result<Arc<dyn Storage>, StorageError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        StorageFactory(Arc::new(open))
    }

    /// The torrent's files below its save folder ([`FileStorage::open`]).
    pub fn files() -> Self {
        Self::new(|dir, info, mode| Ok(Arc::new(FileStorage::open(dir, info, mode)?)))
    }

    /// Always the same `storage`, whatever the folder and mode: for tests that build
    /// the storage first and look into it afterwards.
    pub fn shared(storage: Arc<dyn Storage>) -> Self {
        Self::new(move |_, _, _| Ok(storage.clone()))
    }

    /// Opens the storage of `info` below `save_dir`. Blocking.
    pub fn open(
        &self,
        save_dir: &Path,
        info: &Info,
        mode: OpenMode,
    ) -> Result<Arc<dyn Storage>, StorageError> {
        (self.0)(save_dir, info, mode)
    }
}

impl Default for StorageFactory {
    fn default() -> Self {
        Self::files()
    }
}

impl fmt::Debug for StorageFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageFactory")
    }
}
