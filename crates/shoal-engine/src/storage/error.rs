//! [`StorageError`]: everything that can go wrong between a torrent and its files.
//!
//! Each variant names the file, and for I/O on piece data the piece and the offset
//! within the file, and says what the user can do about it. These are torrent-scoped
//! errors: the torrent pauses with the message as its reason.

use std::io;
use std::path::PathBuf;
use thiserror::Error;

/// Linux and macOS both use 28 for "no space left on device". Matched on the raw OS
/// error because `io::ErrorKind::StorageFull` needs a newer Rust than our MSRV.
const ENOSPC: i32 = 28;
/// Linux "disk quota exceeded".
#[cfg(target_os = "linux")]
const EDQUOT: i32 = 122;
/// macOS "disc quota exceeded".
#[cfg(not(target_os = "linux"))]
const EDQUOT: i32 = 69;

/// Why opening, reading, writing or checking a torrent's files failed.
#[derive(Debug, Error)]
pub enum StorageError {
    /// Seeding needs every file, and this one is not there.
    #[error(
        "{path} is missing: put the torrent's data in the save folder, \
         or add the torrent for download instead of seeding"
    )]
    Missing {
        /// The file that should exist.
        path: PathBuf,
    },
    /// Seeding found a file of another size than the torrent says.
    #[error(
        "{path} is {actual} bytes but the torrent expects {expected}: it is not this \
         torrent's data; replace the file, or add the torrent for download to repair it"
    )]
    WrongSize {
        /// The file.
        path: PathBuf,
        /// Size from the torrent.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// Downloading found a file larger than the torrent's; Shoal never truncates data.
    #[error(
        "{path} is {actual} bytes, larger than the {expected} the torrent expects: Shoal \
         won't cut it short; move the file away or choose another save folder"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Size from the torrent.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// Something other than a regular file (a folder, a device) is in a file's place.
    #[error("{path} exists but is not a regular file: move it away or choose another save folder")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A file could not be opened or created.
    #[error("cannot open {path}: {source}; check that the save folder exists and is accessible")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A folder could not be created.
    #[error("cannot create folder {path}: {source}; check permissions on the save folder")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file or folder could not be created or opened for writing because the save
    /// folder is read-only (a read-only mount, an immutable folder) or its permissions
    /// forbid it.
    #[error(
        "cannot write to {path}: {source}; the save folder is read-only or not writable: \
         make it writable or choose another save folder, then resume"
    )]
    NotWritable {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file could not be extended to its final (sparse) size.
    #[error(
        "cannot extend {path} to {length} bytes: {source}; check free space and the \
         file system's file size limit"
    )]
    Resize {
        /// The file.
        path: PathBuf,
        /// The size asked for.
        length: u64,
        /// The OS error.
        source: io::Error,
    },
    /// The disk (or the user's quota) is full.
    #[error(
        "disk full while writing piece {piece} at offset {offset} of {path}: free space and resume"
    )]
    DiskFull {
        /// The file being written.
        path: PathBuf,
        /// The piece being written.
        piece: u32,
        /// Offset in the file.
        offset: u64,
    },
    /// Any other write failure.
    #[error("cannot write piece {piece} at offset {offset} of {path}: {source}; check the disk and resume")]
    Write {
        /// The file.
        path: PathBuf,
        /// The piece.
        piece: u32,
        /// Offset in the file.
        offset: u64,
        /// The OS error.
        source: io::Error,
    },
    /// A read failure.
    #[error("cannot read piece {piece} at offset {offset} of {path}: {source}; check the disk, then recheck the torrent")]
    Read {
        /// The file.
        path: PathBuf,
        /// The piece.
        piece: u32,
        /// Offset in the file.
        offset: u64,
        /// The OS error.
        source: io::Error,
    },
    /// A file ended before its torrent length: it was shortened after opening.
    #[error(
        "{path} ended early while reading piece {piece} at offset {offset}: the file was \
         shortened outside Shoal; recheck the torrent"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The piece.
        piece: u32,
        /// Offset in the file.
        offset: u64,
    },
    /// A file was deleted (unlinked) while the torrent had it open: reads still see the
    /// old data through the open handle, but the user removed it, and writes would go
    /// to a file nobody can reach, so the torrent stops.
    #[error(
        "{path} was deleted outside Shoal while in use (piece {piece}): put it back and \
         recheck, or resume the torrent to check its data and download what is missing"
    )]
    Deleted {
        /// The file.
        path: PathBuf,
        /// The piece being read or written.
        piece: u32,
    },
    /// Flushing a file to disk failed.
    #[error("cannot flush {path} to disk: {source}; check the disk, then recheck the torrent")]
    Sync {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A piece index past the end of the torrent.
    #[error("piece {piece} does not exist: the torrent has {num_pieces} pieces")]
    PieceOutOfRange {
        /// The piece asked for.
        piece: u32,
        /// Pieces in the torrent.
        num_pieces: u32,
    },
    /// A block that does not fit inside its piece.
    #[error("block of {len} bytes at {begin} lies outside piece {piece} ({piece_size} bytes)")]
    BlockOutOfRange {
        /// The piece.
        piece: u32,
        /// Offset of the block in the piece.
        begin: u32,
        /// Length of the block.
        len: usize,
        /// Size of the piece.
        piece_size: u64,
    },
    /// A write to storage opened read-only for seeding.
    #[error("cannot write piece {piece}: the data was opened read-only for seeding; reopen it for download")]
    ReadOnly {
        /// The piece.
        piece: u32,
    },
    /// The `Info` a storage was opened for is inconsistent.
    #[error("inconsistent torrent layout: {0}; remove and re-add the torrent")]
    BadLayout(String),
}

impl StorageError {
    /// Classifies a failed write: a full disk gets its own variant.
    pub(super) fn write(path: PathBuf, piece: u32, offset: u64, source: io::Error) -> Self {
        if is_disk_full(&source) {
            StorageError::DiskFull {
                path,
                piece,
                offset,
            }
        } else {
            StorageError::Write {
                path,
                piece,
                offset,
                source,
            }
        }
    }

    /// Classifies a failed read: an early end of file gets its own variant.
    pub(super) fn read(path: PathBuf, piece: u32, offset: u64, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            StorageError::Truncated {
                path,
                piece,
                offset,
            }
        } else {
            StorageError::Read {
                path,
                piece,
                offset,
                source,
            }
        }
    }
}

/// Linux and macOS "read-only file system".
const EROFS: i32 = 30;

impl StorageError {
    /// Classifies a failure to create or open for writing: a read-only or unwritable
    /// place gets its own variant, anything else `other`.
    pub(super) fn creating(
        path: PathBuf,
        source: io::Error,
        other: impl FnOnce(PathBuf, io::Error) -> StorageError,
    ) -> Self {
        if source.kind() == io::ErrorKind::PermissionDenied || source.raw_os_error() == Some(EROFS)
        {
            StorageError::NotWritable { path, source }
        } else {
            other(path, source)
        }
    }
}

fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(ENOSPC) | Some(EDQUOT))
}
