//! [`FileStorage`]: a torrent's pieces in its files, with positional I/O.
//!
//! Each file is opened once and kept open; reads and writes use `pread`/`pwrite`
//! (`FileExt::read_exact_at`) and `pwritev`, which take `&self`, so one storage is
//! shared through an `Arc` by any number of threads. Writes to one file take a
//! per-file lock: concurrent buffered writes to one inode otherwise spin on its
//! `i_rwsem` in the kernel, burning the CPU that the other hashing thread needs. Blocks
//! may span file boundaries and zero-length files. Every request is bounds checked
//! against its piece: bad indices are errors, never panics.
//!
//! Modes: [`OpenMode::Seed`] opens read-only and insists every file exists with its exact
//! size. [`OpenMode::Download`] opens the files that exist, extends short ones to their
//! final size (sparse) and refuses files larger than expected rather than truncating them;
//! missing files (and their folders) are created on their first write, so a torrent of
//! thousands of files starts transferring at once instead of first creating every inode,
//! and files never written (a stopped download) are never created. The torrent's own
//! folder and its zero-length files are created at open, which also reports an
//! unwritable save folder straight away. Download mode is also right for complete data: a torrent that
//! finishes downloading keeps its storage and seeds from it; there is no upgrade step.
//!
//! Files stay open for the torrent's lifetime, so a torrent needs one descriptor per
//! non-empty file; very large multi-file torrents may need a higher `ulimit -n`.

use super::layout::{self, Layout};
use super::{check, open, vectored, OpenMode, Storage, StorageError};
use sha1::{Digest, Sha1};
use shoal_proto::metainfo::Info;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::buf::AlignedBuf;

/// A torrent's files, open for positional I/O. `Send + Sync`: share it via `Arc`.
#[derive(Debug)]
pub struct FileStorage {
    layout: Layout,
    /// Parallel to `layout.files`: the open file, once it exists (never for zero-length
    /// files; in download mode, missing files are created on their first write).
    handles: Vec<OnceLock<File>>,
    /// Parallel to `layout.files`: held while writing to that file (see the module doc).
    write_locks: Vec<Mutex<()>>,
    /// Held while creating a missing file, so two writers never race to create it.
    create_lock: Mutex<()>,
    /// Parallel to `layout.files`: bytes each file held before we opened it. Pieces
    /// lying wholly beyond these are known to be missing and need no hashing.
    existing: Vec<u64>,
    /// Parallel to `layout.files`: written through this `Storage`.
    written: Vec<AtomicBool>,
    hashes: Vec<[u8; 20]>,
    mode: OpenMode,
}

impl FileStorage {
    /// Opens (and in [`OpenMode::Download`], creates) the files of `info` below
    /// `save_dir`: `save_dir/name` for a single-file torrent, `save_dir/name/...` for a
    /// multi-file one. Blocking; may take a while for torrents with many files.
    pub fn open(save_dir: &Path, info: &Info, mode: OpenMode) -> Result<FileStorage, StorageError> {
        let layout = Layout::new(save_dir, info)?;
        if mode == OpenMode::Download {
            open::create_root(save_dir, info)?;
        }
        let (handles, existing): (Vec<_>, _) = layout
            .files
            .iter()
            .map(|f| open::open_file(&f.path, f.length, mode))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        let handles = handles
            .into_iter()
            .map(|h| match h {
                Some(file) => OnceLock::from(file),
                None => OnceLock::new(),
            })
            .collect();
        let written = layout
            .files
            .iter()
            .map(|_| AtomicBool::new(false))
            .collect();
        let write_locks = layout.files.iter().map(|_| Mutex::new(())).collect();
        Ok(FileStorage {
            layout,
            handles,
            write_locks,
            create_lock: Mutex::new(()),
            existing,
            written,
            hashes: info.pieces.clone(),
            mode,
        })
    }

    /// The mode the files were opened in.
    pub fn mode(&self) -> OpenMode {
        self.mode
    }

    /// Number of pieces.
    pub fn num_pieces(&self) -> u32 {
        self.layout.num_pieces
    }

    /// Size of `piece` in bytes (the last piece may be shorter), or `None` past the end.
    pub fn piece_size(&self, piece: u32) -> Option<u32> {
        // Piece lengths are capped at 64 MiB by `Layout::new`, so this always fits.
        self.layout
            .piece_size(piece)
            .and_then(|s| u32::try_from(s).ok())
    }

    /// The expected SHA-1 of `piece`, for verifying a piece held in memory.
    pub fn expected_hash(&self, piece: u32) -> Option<[u8; 20]> {
        self.hashes.get(piece as usize).copied()
    }

    /// Size of `piece`, or an error past the end.
    fn checked_piece_size(&self, piece: u32) -> Result<usize, StorageError> {
        self.layout
            .piece_size(piece)
            .map(|s| s as usize)
            .ok_or(StorageError::PieceOutOfRange {
                piece,
                num_pieces: self.layout.num_pieces,
            })
    }

    /// Reads the whole of `piece` into `buf`, resized to the piece's size. Reusing the
    /// same `buf` across calls avoids allocating.
    pub fn read_piece(&self, piece: u32, buf: &mut Vec<u8>) -> Result<(), StorageError> {
        let size = self.checked_piece_size(piece)?;
        // `resize` only zero-fills when growing, so a reused buffer costs nothing.
        buf.resize(size, 0);
        self.read(piece, 0, buf)
    }

    /// SHA-1 of `piece` as stored on disk; `buf` is scratch space (see [`FileStorage::read_piece`]).
    pub fn hash_piece(&self, piece: u32, buf: &mut Vec<u8>) -> Result<[u8; 20], StorageError> {
        self.read_piece(piece, buf)?;
        Ok(Sha1::digest(buf.as_slice()).into())
    }

    /// Whether `piece` on disk matches its hash from the torrent; `buf` is scratch space.
    pub fn verify_piece(&self, piece: u32, buf: &mut Vec<u8>) -> Result<bool, StorageError> {
        let hash = self.hash_piece(piece, buf)?;
        Ok(self.hashes.get(piece as usize) == Some(&hash))
    }

    /// Whether any byte of `piece` lies in data that existed before we opened the files.
    fn piece_may_exist(&self, piece: u32) -> bool {
        let start = u64::from(piece) * self.layout.piece_length;
        let end = start + self.layout.piece_size(piece).unwrap_or(0);
        self.layout
            .files
            .iter()
            .zip(self.existing.iter().zip(&self.written))
            .any(|(f, (&have, written))| {
                let have = if written.load(Ordering::Relaxed) {
                    f.length
                } else {
                    have
                };
                have > 0 && f.offset < end && start < f.offset + have
            })
    }

    /// File `index` and its open handle, `None` while it does not exist yet. The error
    /// path is for a broken invariant (`Layout::segments` yields valid indices only).
    fn file(&self, index: usize) -> Result<(Option<&File>, &layout::FileSlot), StorageError> {
        match (self.handles.get(index), self.layout.files.get(index)) {
            (Some(handle), Some(slot)) => Ok((handle.get(), slot)),
            _ => Err(StorageError::BadLayout(format!("no file {index}"))),
        }
    }

    /// The open handle of file `index`, creating the file (download mode) if it does not
    /// exist yet.
    fn file_for_write(&self, index: usize) -> Result<(&File, &layout::FileSlot), StorageError> {
        let (file, slot) = self.file(index)?;
        if let Some(file) = file {
            return Ok((file, slot));
        }
        let _creating = self
            .create_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(handle) = self.handles.get(index) else {
            return Err(StorageError::BadLayout(format!("no file {index}")));
        };
        if let Some(file) = handle.get() {
            return Ok((file, slot));
        }
        let (file, _) = open::create_file(&slot.path, slot.length)?;
        Ok((handle.get_or_init(|| file), slot))
    }
}

/// Fails with [`StorageError::Deleted`] when `file` was unlinked since we opened it (one
/// `fstat`): the data read through the handle is still the old, intact data, but the
/// user removed the file, and what we write to it is lost, so the torrent must stop.
fn still_linked(file: &File, slot: &layout::FileSlot, piece: u32) -> Result<(), StorageError> {
    match file.metadata() {
        Ok(m) if m.nlink() == 0 => Err(StorageError::Deleted {
            path: slot.path.clone(),
            piece,
        }),
        // A failed fstat on an open handle says nothing about the file's name: the read
        // or write itself succeeded, so keep it.
        _ => Ok(()),
    }
}

impl Storage for FileStorage {
    /// One `pread` per file the block touches; a file not created yet is missing data.
    fn read(&self, piece: u32, begin: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        let start = self.layout.block_offset(piece, begin, buf.len())?;
        for seg in self.layout.segments(start, buf.len()) {
            let (file, slot) = self.file(seg.file)?;
            let Some(file) = file else {
                // Not created yet: nothing of it was ever written.
                return Err(StorageError::Truncated {
                    path: slot.path.clone(),
                    piece,
                    offset: seg.file_offset,
                });
            };
            let chunk = &mut buf[seg.buf_offset..seg.buf_offset + seg.len];
            file.read_exact_at(chunk, seg.file_offset)
                .map_err(|e| StorageError::read(slot.path.clone(), piece, seg.file_offset, e))?;
            still_linked(file, slot, piece)?;
        }
        Ok(())
    }

    /// One vectored positional write (`pwritev`) per file the parts touch: a piece
    /// received as blocks is written without first copying them into one buffer.
    fn write_parts(&self, piece: u32, begin: u32, parts: &[&[u8]]) -> Result<(), StorageError> {
        if self.mode == OpenMode::Seed {
            return Err(StorageError::ReadOnly { piece });
        }
        let total: usize = parts.iter().map(|b| b.len()).sum();
        let start = self.layout.block_offset(piece, begin, total)?;
        let mut seg_parts: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
        for seg in self.layout.segments(start, total) {
            layout::parts_within(
                parts,
                seg.buf_offset,
                seg.buf_offset + seg.len,
                &mut seg_parts,
            );
            let (file, slot) = self.file_for_write(seg.file)?;
            let lock = self.write_locks.get(seg.file).map(|l| l.lock());
            vectored::write_all_vectored_at(file, &seg_parts, seg.file_offset)
                .map_err(|e| StorageError::write(slot.path.clone(), piece, seg.file_offset, e))?;
            drop(lock);
            still_linked(file, slot, piece)?;
            if let Some(w) = self.written.get(seg.file) {
                w.store(true, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Pieces lying wholly in data that did not exist at open (and was not written
    /// since) are `false` without reading them.
    fn check_all(
        &self,
        threads: usize,
        progress: &(dyn Fn(u32) + Sync),
    ) -> Result<Vec<bool>, StorageError> {
        let verify = |piece: u32, buf: &mut AlignedBuf| {
            if !self.piece_may_exist(piece) {
                return Ok(false);
            }
            check::verify_piece(&self.layout, &self.hashes, piece, buf, |data| {
                self.read(piece, 0, data)
            })
        };
        check::check_pieces(self.layout.num_pieces, threads, progress, &verify)
    }

    /// `fdatasync` on every file written to. A no-op for seeding.
    fn sync(&self) -> Result<(), StorageError> {
        if self.mode == OpenMode::Seed {
            return Ok(());
        }
        for (slot, handle) in self.layout.files.iter().zip(&self.handles) {
            if let Some(file) = handle.get() {
                file.sync_data().map_err(|source| StorageError::Sync {
                    path: slot.path.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }
}
