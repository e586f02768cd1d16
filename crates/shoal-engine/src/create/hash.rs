//! Parallel piece hashing for torrent creation.
//!
//! The torrent's data (the files concatenated in torrent order) is cut into chunks of
//! whole pieces, a few MiB each. One worker per core claims the next chunk and hashes
//! it file by file, reading each part of a file with positional reads (`pread`) of up
//! to 1 MiB into one page-aligned buffer per worker ([`AlignedBuf`]: the kernel copies
//! into an unaligned one about three times slower), reused for every read and hashed
//! right after it is read. No mapping, no signal handler: a file that shrinks while it
//! is hashed ends before its listed length, and that short read is a
//! [`CreateError::Changed`].
//!
//! The copy from the page cache is what reading costs over hashing in place: on 1 GiB
//! in the page cache on one core (`taskset -c 0`), SHA-1 took 0.63-0.67 user CPU-s
//! (openssl's speed) and the reads 0.10-0.16 system CPU-s. Read sizes from 128 KiB to
//! 4 MiB cost the same there; on a cold cache, 4 MiB reads cost 0.64-0.74 system CPU-s
//! against 0.10-0.16 for 1 MiB, so reads stay at 1 MiB. Each worker's handle is opened
//! with `POSIX_FADV_SEQUENTIAL`, which doubles the kernel's read-ahead window: on a
//! cold cache, both cores, 1.65-1.99 s for 1 GiB with it, 1.88-3.10 without. Asking
//! for each part ahead with `POSIX_FADV_WILLNEED` made cold runs slower (2.6-3.6 s,
//! 0.6-0.8 system CPU-s), so it is not done. Nor is the next read overlapped with
//! hashing in a second thread: with the data cached, reading and hashing are both CPU
//! work on the same core; uncached, the kernel's asynchronous read-ahead already keeps
//! the disk busy while the worker hashes (the cold runs above are bound by the disk).
//! (All figures: 3 interleaved runs each on a busy 2-core machine.)
//!
//! Chunks are contiguous ranges and every worker keeps its own handle. Pieces may span
//! files. Chunks start on piece boundaries, so the result equals hashing the
//! concatenated data sequentially.

use super::walk::SourceFile;
use super::CreateError;
use crate::buf::AlignedBuf;
use sha1::{Digest, Sha1};
use shoal_proto::metainfo::MetainfoError;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// Bytes a worker claims at a time (rounded to whole pieces, at least one piece).
const CHUNK: u64 = 4 << 20;
/// Bytes per read: large enough to make system calls rare, small enough that the
/// kernel's read-ahead (not one huge synchronous read) fetches cold data (see above).
const READ: u64 = 1 << 20;

/// How the work is split; tests use small values to exercise the edges.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tuning {
    /// Worker threads (at least one).
    pub threads: usize,
    /// Target bytes per chunk.
    pub chunk: u64,
    /// Bytes per read.
    pub read: u64,
}

/// SHA-1 of every piece of the concatenation of `files`. `piece_length` is a power of
/// two, at most 64 MiB; `total` is the sum of file lengths.
pub(super) fn hash_pieces(
    files: &[SourceFile],
    piece_length: u64,
    total: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<[u8; 20]>, CreateError> {
    let tuning = Tuning {
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        chunk: CHUNK,
        read: READ,
    };
    hash_pieces_with(files, piece_length, total, tuning, progress)
}

/// [`hash_pieces`] with explicit [`Tuning`].
pub(super) fn hash_pieces_with(
    files: &[SourceFile],
    piece_length: u64,
    total: u64,
    tuning: Tuning,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<[u8; 20]>, CreateError> {
    let num_pieces = usize::try_from(total.div_ceil(piece_length)).unwrap_or(usize::MAX);
    let pieces_per_chunk = (tuning.chunk / piece_length).max(1);
    let chunk_len = pieces_per_chunk * piece_length;
    let chunks = total.div_ceil(chunk_len);
    let threads = tuning
        .threads
        .clamp(1, usize::try_from(chunks).unwrap_or(1).max(1));
    let read_len = tuning.read.clamp(1, chunk_len.min(total)) as usize;
    let layout = Layout::new(files);

    let mut pieces = vec![[0u8; 20]; num_pieces];
    let shared = Shared {
        layout: &layout,
        piece_length,
        chunk_len,
        total,
        read_len,
        next: Mutex::new(
            pieces
                .chunks_mut(pieces_per_chunk as usize)
                .enumerate()
                .map(|(i, slots)| (i as u64 * chunk_len, slots)),
        ),
        stop: AtomicBool::new(false),
        hashed: Mutex::new(0),
        progress,
    };
    let mut errors = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(|| shared.work())).collect();
        let mut errors: Vec<_> = shared.work().into_iter().collect();
        for h in helpers {
            // Workers only panic on a bug; re-raise rather than hide it.
            let result = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            errors.extend(result);
        }
        errors
    });
    // Report the error a sequential read would have met first.
    errors.sort_by_key(|(at, _)| *at);
    match errors.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(pieces),
    }
}

/// State shared by the workers. `I` yields each chunk's start and its piece hash slots.
struct Shared<'a, I> {
    layout: &'a Layout<'a>,
    piece_length: u64,
    chunk_len: u64,
    total: u64,
    read_len: usize,
    next: Mutex<I>,
    /// Set on the first error: workers stop claiming chunks.
    stop: AtomicBool,
    hashed: Mutex<u64>,
    progress: &'a (dyn Fn(u64, u64) + Sync),
}

impl<'a, 'p, I: Iterator<Item = (u64, &'p mut [[u8; 20]])>> Shared<'a, I> {
    /// One worker: hashes chunks until none is left; returns the first error and the
    /// position in the torrent data where it happened.
    fn work(&self) -> Option<(u64, CreateError)> {
        let mut reader = Reader { open: None };
        let mut buf = AlignedBuf::new(self.read_len);
        while !self.stop.load(Ordering::Relaxed) {
            let next = self
                .next
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .next();
            let Some((start, slots)) = next else { break };
            let end = (start + self.chunk_len).min(self.total);
            if let Err(e) = self.hash_chunk(&mut reader, buf.get(), start, end, slots) {
                self.stop.store(true, Ordering::Relaxed);
                return Some(e);
            }
            // Counting and reporting under one lock keeps reports in order.
            let mut done = self.hashed.lock().unwrap_or_else(PoisonError::into_inner);
            *done += end - start;
            (self.progress)(*done, self.total);
        }
        None
    }

    /// Hashes the pieces of `start..end` (piece-aligned) into `slots`, file by file,
    /// `buf` at a time, each read hashed right after it is read.
    fn hash_chunk(
        &self,
        reader: &mut Reader,
        buf: &mut [u8],
        start: u64,
        end: u64,
        slots: &mut [[u8; 20]],
    ) -> Result<(), (u64, CreateError)> {
        let mut hasher = PieceHasher {
            hasher: Sha1::new(),
            pos: start,
            end,
            piece_length: self.piece_length,
            slots: slots.iter_mut(),
        };
        let mut pos = start;
        while pos < end {
            let index = self.layout.find(pos);
            let Some(&(file_start, src)) = self.layout.files.get(index) else {
                // Unreachable while `total` is the sum of the lengths; an error, not a panic.
                let e = MetainfoError::Invalid(format!("no listed file holds byte {pos}"));
                return Err((pos, CreateError::Invalid(e)));
            };
            let part_end = end.min(file_start + src.length);
            let file = reader.file(index, src).map_err(|e| (pos, e))?;
            while pos < part_end {
                let m = (buf.len() as u64).min(part_end - pos) as usize;
                let data = &mut buf[..m];
                read_file_at(file, src, pos - file_start, data).map_err(|e| (pos, e))?;
                hasher.feed(data);
                pos += m as u64;
            }
        }
        Ok(())
    }
}

/// SHA-1 of consecutive pieces, fed in slices of any size.
struct PieceHasher<'p> {
    hasher: Sha1,
    /// Position in the torrent data of the next byte fed.
    pos: u64,
    /// End of the chunk (the last piece may be short).
    end: u64,
    piece_length: u64,
    slots: std::slice::IterMut<'p, [u8; 20]>,
}

impl PieceHasher<'_> {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let piece_end = ((self.pos / self.piece_length + 1) * self.piece_length).min(self.end);
            let take = (piece_end - self.pos).min(data.len() as u64) as usize;
            let (now, rest) = data.split_at(take);
            self.hasher.update(now);
            self.pos += take as u64;
            data = rest;
            if self.pos == piece_end {
                if let Some(slot) = self.slots.next() {
                    *slot = self.hasher.finalize_reset().into();
                }
            }
        }
    }
}

/// The non-empty files and where each starts in the torrent data.
struct Layout<'a> {
    files: Vec<(u64, &'a SourceFile)>,
}

impl<'a> Layout<'a> {
    fn new(files: &'a [SourceFile]) -> Self {
        let mut start = 0;
        let files = files
            .iter()
            .filter(|f| f.length > 0)
            .map(|f| {
                let at = start;
                start += f.length;
                (at, f)
            })
            .collect();
        Layout { files }
    }

    /// Index of the file holding byte `pos` of the torrent data.
    fn find(&self, pos: u64) -> usize {
        self.files
            .partition_point(|(start, _)| *start <= pos)
            .saturating_sub(1)
    }
}

/// A worker's reader, keeping the file it read last open.
struct Reader {
    open: Option<(usize, File)>,
}

impl Reader {
    /// The open file at `index`, opening it (and closing the previous one) if needed.
    fn file(&mut self, index: usize, src: &SourceFile) -> Result<&File, CreateError> {
        let open = match self.open.take() {
            Some((i, file)) if i == index => (i, file),
            _ => {
                let file = File::open(&src.path).map_err(|e| read_error(src, 0, e))?;
                advise_sequential(&file);
                (index, file)
            }
        };
        Ok(&self.open.insert(open).1)
    }
}

/// Tells the kernel `file` will be read sequentially: it doubles the read-ahead window.
fn advise_sequential(file: &File) {
    // SAFETY: posix_fadvise only reads its arguments; the descriptor is open for the call.
    // Its result is ignored: advice only changes how soon data is read, never what.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
    }
}

/// Fills `buf` from `offset` of `file`; running out before the listed length means the
/// file shrank.
fn read_file_at(
    file: &File,
    src: &SourceFile,
    mut offset: u64,
    mut buf: &mut [u8],
) -> Result<(), CreateError> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => {
                // Where it ends now, as far as we can tell.
                let len = file.metadata().map_or(offset, |m| m.len().min(offset));
                return Err(CreateError::Changed {
                    path: src.path.clone(),
                    expected: src.length,
                    actual: len,
                });
            }
            Ok(n) => {
                offset += n as u64;
                buf = &mut buf[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(src, offset, e)),
        }
    }
    Ok(())
}

fn read_error(src: &SourceFile, offset: u64, source: io::Error) -> CreateError {
    CreateError::Read {
        path: src.path.clone(),
        offset,
        source,
    }
}
