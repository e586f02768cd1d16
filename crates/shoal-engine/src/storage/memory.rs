//! [`MemoryStorage`]: a torrent's files as buffers in memory, for tests that move
//! pieces without touching the disk.
//!
//! It keeps the file implementation's rules where a test can see them: a file holds
//! nothing until its first write (reads of it are [`StorageError::Truncated`], as for
//! a file not created yet), a write fills in the whole file's buffer (zeros elsewhere,
//! like a sparse file), and [`MemoryStorage::truncate_file`] plays a file shortened
//! outside Shoal. Errors name the torrent's relative paths (`name/dir/file`).

use super::layout::{self, Layout};
use super::{check, Storage, StorageError};
use shoal_proto::metainfo::Info;
use std::fmt;
use std::path::Path;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A torrent's data in memory. `Send + Sync`: share it via `Arc`.
pub struct MemoryStorage {
    layout: Layout,
    hashes: Vec<[u8; 20]>,
    /// Parallel to `layout.files`: the file's bytes once written (`None` before, as a
    /// file not created yet); shorter than the file after `truncate_file`.
    files: Vec<RwLock<Option<Vec<u8>>>>,
}

impl MemoryStorage {
    /// Empty storage for `info`: no file holds anything yet.
    pub fn new(info: &Info) -> Result<MemoryStorage, StorageError> {
        let layout = Layout::new(Path::new(""), info)?;
        let files = layout
            .files
            .iter()
            // Zero-length files exist from the start, as the file storage creates them.
            .map(|f| RwLock::new((f.length == 0).then(Vec::new)))
            .collect();
        Ok(MemoryStorage {
            layout,
            hashes: info.pieces.clone(),
            files,
        })
    }

    /// Storage for `info` whose files hold `data`, the torrent's bytes in order (which
    /// must be exactly the torrent's length).
    pub fn with_data(info: &Info, data: &[u8]) -> Result<MemoryStorage, StorageError> {
        let s = MemoryStorage::new(info)?;
        if data.len() as u64 != s.layout.total_length {
            return Err(StorageError::BadLayout(format!(
                "{} bytes of data for a torrent of {}",
                data.len(),
                s.layout.total_length
            )));
        }
        for (slot, file) in s.layout.files.iter().zip(&s.files) {
            // Within `data`: its length equals the sum of the file lengths.
            let range = slot.offset as usize..(slot.offset + slot.length) as usize;
            *write(file) = data.get(range).map(<[u8]>::to_vec);
        }
        Ok(s)
    }

    /// The bytes of file `index` (by its place in the torrent), `None` while nothing
    /// was written to it.
    pub fn file_data(&self, index: usize) -> Option<Vec<u8>> {
        self.files.get(index).and_then(|f| read(f).clone())
    }

    /// The torrent's bytes in order, `None` while any file is missing or short.
    pub fn data(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(self.layout.total_length as usize);
        for (slot, file) in self.layout.files.iter().zip(&self.files) {
            let file = read(file);
            let bytes = file.as_ref()?;
            if bytes.len() as u64 != slot.length {
                return None;
            }
            out.extend_from_slice(bytes);
        }
        Some(out)
    }

    /// Cuts file `index` down to `len` bytes, as if shortened outside Shoal: reads past
    /// `len` then fail with [`StorageError::Truncated`].
    pub fn truncate_file(&self, index: usize, len: u64) {
        if let Some(file) = self.files.get(index) {
            if let Some(bytes) = write(file).as_mut() {
                bytes.truncate(usize::try_from(len).unwrap_or(usize::MAX));
            }
        }
    }
}

impl Storage for MemoryStorage {
    fn read(&self, piece: u32, begin: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        let start = self.layout.block_offset(piece, begin, buf.len())?;
        for seg in self.layout.segments(start, buf.len()) {
            let (Some(file), Some(slot)) =
                (self.files.get(seg.file), self.layout.files.get(seg.file))
            else {
                return Err(StorageError::BadLayout(format!("no file {}", seg.file)));
            };
            let file = read(file);
            let from = usize::try_from(seg.file_offset).unwrap_or(usize::MAX);
            let src = file
                .as_ref()
                .and_then(|b| b.get(from..from.saturating_add(seg.len)));
            let Some(src) = src else {
                return Err(StorageError::Truncated {
                    path: slot.path.clone(),
                    piece,
                    offset: seg.file_offset,
                });
            };
            buf[seg.buf_offset..seg.buf_offset + seg.len].copy_from_slice(src);
        }
        Ok(())
    }

    fn write_parts(&self, piece: u32, begin: u32, parts: &[&[u8]]) -> Result<(), StorageError> {
        let total: usize = parts.iter().map(|b| b.len()).sum();
        let start = self.layout.block_offset(piece, begin, total)?;
        let mut seg_parts: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
        for seg in self.layout.segments(start, total) {
            let (Some(file), Some(slot)) =
                (self.files.get(seg.file), self.layout.files.get(seg.file))
            else {
                return Err(StorageError::BadLayout(format!("no file {}", seg.file)));
            };
            layout::parts_within(
                parts,
                seg.buf_offset,
                seg.buf_offset + seg.len,
                &mut seg_parts,
            );
            let mut file = write(file);
            // Created at its full size on the first write, like a sparse file.
            let bytes = file.get_or_insert_with(|| vec![0; slot.length as usize]);
            // Within the file: `block_offset` checked the range against the torrent.
            let mut at = seg.file_offset as usize;
            if bytes.len() < at + seg.len {
                // Written past the end of a shortened file: it grows again.
                bytes.resize(at + seg.len, 0);
            }
            for p in &seg_parts {
                bytes[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
        }
        Ok(())
    }

    fn check_all(
        &self,
        threads: usize,
        progress: &(dyn Fn(u32) + Sync),
    ) -> Result<Vec<bool>, StorageError> {
        check::check_by_reading(
            &self.layout,
            &self.hashes,
            threads,
            progress,
            &|piece, buf| self.read(piece, 0, buf),
        )
    }

    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

impl fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStorage")
            .field("files", &self.files.len())
            .field("bytes", &self.layout.total_length)
            .finish()
    }
}

// A panic while holding a file's lock is a test bug; the bytes are still usable.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}
