//! Where torrent bytes live: maps a range of the torrent's concatenated data onto
//! (file, offset in file, length) segments.
//!
//! Invariants, checked once by [`Layout::new`] so that the I/O paths need no further
//! checks: file offsets are contiguous from 0, their lengths sum to the total length, the
//! piece count matches, and every file path stays below the save folder.

use super::StorageError;
use shoal_proto::metainfo::{Info, MAX_PIECE_LENGTH};
use std::path::{Component, Path, PathBuf};

/// One file of the torrent, with its place in the concatenated data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileSlot {
    /// Absolute path: save folder joined with the torrent's relative path.
    pub path: PathBuf,
    /// Offset of the file's first byte in the torrent's data.
    pub offset: u64,
    /// Length in bytes (may be zero).
    pub length: u64,
}

impl FileSlot {
    fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// Part of a byte range that falls in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    /// Index into [`Layout::files`].
    pub file: usize,
    /// Offset within that file.
    pub file_offset: u64,
    /// Offset within the caller's buffer.
    pub buf_offset: usize,
    /// Bytes in this segment (never zero).
    pub len: usize,
}

/// The validated file layout of one torrent.
#[derive(Debug)]
pub(super) struct Layout {
    pub files: Vec<FileSlot>,
    pub piece_length: u64,
    pub total_length: u64,
    pub num_pieces: u32,
}

impl Layout {
    /// Validates `info` and resolves file paths below `save_dir`.
    pub fn new(save_dir: &Path, info: &Info) -> Result<Layout, StorageError> {
        let bad = |m: String| Err(StorageError::BadLayout(m));
        if info.piece_length == 0 || info.piece_length > MAX_PIECE_LENGTH {
            return bad(format!(
                "piece length {} is out of range",
                info.piece_length
            ));
        }
        if info.files.is_empty() {
            return bad("the torrent lists no files".into());
        }
        let mut files = Vec::with_capacity(info.files.len());
        let mut offset: u64 = 0;
        for f in &info.files {
            if f.offset != offset {
                return bad(format!(
                    "file {:?} starts at {} instead of {offset}",
                    f.path, f.offset
                ));
            }
            let rel = info.file_rel_path(f);
            if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
                return bad(format!("file path {rel:?} would leave the save folder"));
            }
            files.push(FileSlot {
                path: save_dir.join(rel),
                offset,
                length: f.length,
            });
            offset = match offset.checked_add(f.length) {
                Some(o) => o,
                None => return bad("total length overflows".into()),
            };
        }
        if offset != info.total_length {
            return bad(format!(
                "files add up to {offset} bytes but the total length is {}",
                info.total_length
            ));
        }
        let expected = offset.div_ceil(info.piece_length);
        if expected != info.pieces.len() as u64 || expected > u64::from(u32::MAX) {
            return bad(format!(
                "{} piece hashes for {offset} bytes; expected {expected}",
                info.pieces.len()
            ));
        }
        Ok(Layout {
            files,
            piece_length: info.piece_length,
            total_length: offset,
            num_pieces: expected as u32,
        })
    }

    /// Size of `piece`, or `None` past the end.
    pub fn piece_size(&self, piece: u32) -> Option<u64> {
        if piece >= self.num_pieces {
            return None;
        }
        let start = u64::from(piece) * self.piece_length;
        Some((self.total_length - start).min(self.piece_length))
    }

    /// Checks that `len` bytes at `begin` fit in `piece`; returns the absolute offset.
    pub fn block_offset(&self, piece: u32, begin: u32, len: usize) -> Result<u64, StorageError> {
        let piece_size = self
            .piece_size(piece)
            .ok_or(StorageError::PieceOutOfRange {
                piece,
                num_pieces: self.num_pieces,
            })?;
        let fits =
            matches!(u64::from(begin).checked_add(len as u64), Some(end) if end <= piece_size);
        if !fits {
            return Err(StorageError::BlockOutOfRange {
                piece,
                begin,
                len,
                piece_size,
            });
        }
        Ok(u64::from(piece) * self.piece_length + u64::from(begin))
    }

    /// The file segments covering `len` bytes at absolute offset `start`, in order,
    /// skipping zero-length files. The range must lie within the torrent (see
    /// [`Layout::block_offset`]).
    pub fn segments(&self, start: u64, len: usize) -> Segments<'_> {
        let first = self.files.partition_point(|f| f.end() <= start);
        Segments {
            files: &self.files,
            next_file: first,
            pos: start,
            buf_offset: 0,
            remaining: len,
        }
    }
}

/// Iterator returned by [`Layout::segments`].
pub(super) struct Segments<'a> {
    files: &'a [FileSlot],
    next_file: usize,
    pos: u64,
    buf_offset: usize,
    remaining: usize,
}

impl Iterator for Segments<'_> {
    type Item = Segment;

    fn next(&mut self) -> Option<Segment> {
        while self.remaining > 0 {
            let file = self.next_file;
            let f = self.files.get(file)?;
            self.next_file += 1;
            let end = f.end();
            if end <= self.pos {
                continue; // zero-length file
            }
            // Fits in usize: bounded by `remaining`.
            let len = (end - self.pos).min(self.remaining as u64) as usize;
            let seg = Segment {
                file,
                file_offset: self.pos - f.offset,
                buf_offset: self.buf_offset,
                len,
            };
            self.pos += len as u64;
            self.buf_offset += len;
            self.remaining -= len;
            return Some(seg);
        }
        None
    }
}

/// Collects into `out` the bytes of `parts` (taken one after the other as one buffer)
/// at `lo..hi` of that buffer, as slices of the parts: a segment's share of a piece
/// received as blocks, without copying.
pub(super) fn parts_within<'a>(parts: &[&'a [u8]], lo: usize, hi: usize, out: &mut Vec<&'a [u8]>) {
    out.clear();
    let mut at = 0usize;
    for p in parts {
        let (p_lo, p_hi) = (at, at + p.len());
        at = p_hi;
        if p_hi > lo && p_lo < hi {
            out.push(&p[lo.max(p_lo) - p_lo..hi.min(p_hi) - p_lo]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::metainfo::FileInfo;

    fn info(lengths: &[u64], piece_length: u64) -> Info {
        let mut offset = 0;
        let files = lengths
            .iter()
            .enumerate()
            .map(|(i, &length)| {
                let f = FileInfo {
                    path: vec![format!("f{i}")],
                    length,
                    offset,
                };
                offset += length;
                f
            })
            .collect();
        Info {
            name: "t".into(),
            piece_length,
            pieces: vec![[0; 20]; offset.div_ceil(piece_length) as usize],
            files,
            single_file: false,
            private: false,
            total_length: offset,
        }
    }

    #[test]
    fn segments_span_files_and_skip_empty_ones() {
        let l = Layout::new(Path::new("/s"), &info(&[10, 0, 0, 5, 20], 16)).unwrap();
        assert_eq!(l.files[3].path, Path::new("/s/t/f3"));
        let segs: Vec<_> = l.segments(8, 10).collect();
        assert_eq!(
            segs,
            vec![
                Segment {
                    file: 0,
                    file_offset: 8,
                    buf_offset: 0,
                    len: 2
                },
                Segment {
                    file: 3,
                    file_offset: 0,
                    buf_offset: 2,
                    len: 5
                },
                Segment {
                    file: 4,
                    file_offset: 0,
                    buf_offset: 7,
                    len: 3
                },
            ]
        );
        // Starting exactly at a boundary skips the empty files before the next one.
        let segs: Vec<_> = l.segments(10, 1).collect();
        assert_eq!(
            segs,
            vec![Segment {
                file: 3,
                file_offset: 0,
                buf_offset: 0,
                len: 1
            }]
        );
        assert_eq!(l.segments(3, 0).count(), 0);
    }

    #[test]
    fn block_bounds() {
        let l = Layout::new(Path::new("/s"), &info(&[40], 16)).unwrap();
        assert_eq!(l.num_pieces, 3);
        assert_eq!(l.piece_size(2), Some(8));
        assert_eq!(l.block_offset(2, 0, 8).unwrap(), 32);
        assert!(l.block_offset(2, 1, 8).is_err());
        assert!(l.block_offset(3, 0, 1).is_err());
        assert!(l.block_offset(0, u32::MAX, usize::MAX).is_err());
    }

    #[test]
    fn rejects_inconsistent_info() {
        let mut i = info(&[10, 5], 16);
        i.files[1].offset = 9;
        assert!(Layout::new(Path::new("/s"), &i).is_err());
        let mut i = info(&[10, 5], 16);
        i.files[1].path = vec!["..".into()];
        assert!(Layout::new(Path::new("/s"), &i).is_err());
        let mut i = info(&[10, 5], 16);
        i.pieces.push([0; 20]);
        assert!(Layout::new(Path::new("/s"), &i).is_err());
        let mut i = info(&[10, 5], 16);
        i.piece_length = 0;
        assert!(Layout::new(Path::new("/s"), &i).is_err());
    }
}
