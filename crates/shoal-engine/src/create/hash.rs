//! Parallel piece hashing for torrent creation.
//!
//! The torrent's data (the files concatenated in torrent order) is cut into chunks of
//! whole pieces, a few MiB each. One worker per core claims the next chunk and hashes
//! it file by file. A part of a file of at least 1 MiB is mapped ([`Window`]) and hashed
//! in place: SHA-1 reads the page cache directly. Reading it instead costs a copy of
//! every byte from the page cache, 15 % of the CPU of hashing a 1 GiB file on one core
//! in a profile. Mapping it costs page faults and unmapping instead (about half as
//! much): `taskset -c 0 shoal create` of 1 GiB in the page cache took 0.85-0.91
//! CPU-s reading and 0.80-0.87 mapped (4 interleaved runs each on a busy machine;
//! SHA-1 alone is 0.69 at openssl's speed). Prefaulting the window (`MAP_POPULATE`)
//! was no cheaper (0.83-0.86) and would read a cold window whole before hashing. Smaller
//! parts (many small files, where a mapping per file costs more than the copy) are read
//! with positional reads (`pread`) into one small buffer per worker, reused for every
//! read and hashed right away while it is still in the core's cache. Chunks are
//! contiguous ranges, so on a cold cache each worker still reads sequentially (the
//! kernel reads ahead per open file, and every worker keeps its own handle). Pieces may
//! span files. Chunks start on piece boundaries, so the result equals hashing the
//! concatenated data sequentially. A file that shrinks while it is hashed is a
//! [`CreateError::Changed`], whether read (a short read) or mapped (its length is
//! checked after each window; pages past its new end fault, see [`super::mapped`]).

use super::mapped::Window;
use super::walk::SourceFile;
use super::CreateError;
use crate::buf::AlignedBuf;
use sha1::{Digest, Sha1};
use shoal_proto::metainfo::MetainfoError;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// Bytes a worker claims at a time (rounded to whole pieces, at least one piece).
const CHUNK: u64 = 4 << 20;
/// Bytes per read: small enough that the buffer stays in the core's L2 cache.
const READ: u64 = 128 << 10;
/// Parts of files at least this long are mapped instead of read.
const MAP_MIN: u64 = 1 << 20;

/// How the work is split; tests use small values to exercise the edges.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tuning {
    /// Worker threads (at least one).
    pub threads: usize,
    /// Target bytes per chunk.
    pub chunk: u64,
    /// Bytes per read.
    pub read: u64,
    /// Parts of files at least this long are mapped (`u64::MAX`: never).
    pub map_min: u64,
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
        map_min: MAP_MIN,
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
        map_min: tuning.map_min.max(1),
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
    map_min: u64,
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
        let mut reader = Reader {
            layout: self.layout,
            open: None,
        };
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

    /// Hashes the pieces of `start..end` (piece-aligned) into `slots`, file by file:
    /// a large enough part of a file is mapped and hashed in place ([`Window`]), a
    /// smaller one (or one that cannot be mapped) is read `buf` at a time, each read
    /// hashed right after it is read.
    fn hash_chunk(
        &self,
        reader: &mut Reader<'_>,
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
            let offset = pos - file_start;
            let n = (end - pos).min(src.length - offset);
            if n >= self.map_min && self.hash_mapped(reader, index, src, offset, n, &mut hasher)? {
                pos += n;
                continue;
            }
            let seg_end = pos + n;
            while pos < seg_end {
                let m = (buf.len() as u64).min(seg_end - pos) as usize;
                let data = &mut buf[..m];
                reader.read_exact_at(pos, data)?;
                hasher.feed(data);
                pos += m as u64;
            }
        }
        Ok(())
    }

    /// Hashes `n` bytes of file `index` from `offset` through a mapping. False if the
    /// range could not be mapped (the caller reads it instead).
    fn hash_mapped(
        &self,
        reader: &mut Reader<'_>,
        index: usize,
        src: &SourceFile,
        offset: u64,
        n: u64,
        hasher: &mut PieceHasher<'_>,
    ) -> Result<bool, (u64, CreateError)> {
        let at = hasher.pos;
        let file = reader.file(index, src).map_err(|e| (at, e))?;
        let Ok(len) = usize::try_from(n) else {
            return Ok(false);
        };
        let Ok(window) = Window::map(file, offset, len) else {
            return Ok(false);
        };
        hasher.feed(window.bytes());
        let faulted = window.faulted();
        drop(window);
        // A file that shrank reads as zeros past its end (within the last page) or
        // faults (further on): either way the hashes are not of the listed data.
        let actual = file
            .metadata()
            .map_err(|e| (at, read_error(src, offset, e)))?
            .len();
        if actual < src.length {
            return Err((
                at,
                CreateError::Changed {
                    path: src.path.clone(),
                    expected: src.length,
                    actual,
                },
            ));
        }
        if faulted {
            let e = io::Error::other("the data could not be read (SIGBUS)");
            return Err((at, read_error(src, offset, e)));
        }
        Ok(true)
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
struct Reader<'a> {
    layout: &'a Layout<'a>,
    open: Option<(usize, File)>,
}

impl Reader<'_> {
    /// Fills `buf` with the torrent data from `pos`, across files as needed. Errors come
    /// with the position where they happened.
    fn read_exact_at(&mut self, pos: u64, buf: &mut [u8]) -> Result<(), (u64, CreateError)> {
        let mut index = self.layout.find(pos);
        let mut done = 0;
        while done < buf.len() {
            let at = pos + done as u64;
            let Some(&(start, src)) = self.layout.files.get(index) else {
                // Unreachable while `total` is the sum of the lengths; an error, not a panic.
                let e = MetainfoError::Invalid(format!("no listed file holds byte {at}"));
                return Err((at, CreateError::Invalid(e)));
            };
            let offset = at - start;
            let n =
                (buf.len() - done).min(usize::try_from(src.length - offset).unwrap_or(usize::MAX));
            let file = self.file(index, src).map_err(|e| (at, e))?;
            read_file_at(file, src, offset, &mut buf[done..done + n]).map_err(|e| (at, e))?;
            done += n;
            index += 1;
        }
        Ok(())
    }

    /// The open file at `index`, opening it (and closing the previous one) if needed.
    fn file(&mut self, index: usize, src: &SourceFile) -> Result<&File, CreateError> {
        let open = match self.open.take() {
            Some((i, file)) if i == index => (i, file),
            _ => {
                let file = File::open(&src.path).map_err(|e| read_error(src, 0, e))?;
                (index, file)
            }
        };
        Ok(&self.open.insert(open).1)
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
