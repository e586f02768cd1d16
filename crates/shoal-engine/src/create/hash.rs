//! Parallel piece hashing for torrent creation.
//!
//! The calling thread reads the files sequentially, as one stream, in large reads into
//! batches of whole pieces (at least 4 MiB). Hasher threads take batches from a bounded
//! queue, hash each piece, and hand the buffer back for reuse, so memory stays at a fixed
//! number of batches. Batches start on piece boundaries, so pieces spanning files need no
//! special case, and the result equals hashing the concatenated data sequentially.

use super::walk::SourceFile;
use super::CreateError;
use sha1::{Digest, Sha1};
use std::fs::File;
use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Mutex, PoisonError};

/// Smallest batch; large sequential reads keep the disk busy.
const MIN_BATCH: u64 = 4 << 20;
/// Memory budget for batches in flight (always at least two batches).
const MEMORY_BUDGET: u64 = 256 << 20;

/// Pieces `first..` of the torrent, in `buf[..len]`.
struct Batch {
    first: usize,
    buf: Vec<u8>,
    len: usize,
}

/// SHA-1 of every piece of the concatenation of `files`. `piece_length` is a power of
/// two, at most 64 MiB; `total` is the sum of file lengths.
pub(super) fn hash_pieces(
    files: &[SourceFile],
    piece_length: u64,
    total: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<[u8; 20]>, CreateError> {
    let hashers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let batch_len = piece_length.max(MIN_BATCH - MIN_BATCH % piece_length);
    let pool = (MEMORY_BUDGET / batch_len).clamp(2, hashers as u64 + 2) as usize;
    let num_pieces = usize::try_from(total.div_ceil(piece_length)).unwrap_or(usize::MAX);
    let hashed = Mutex::new(0u64);

    let (work_tx, work_rx) = mpsc::sync_channel::<Batch>(pool);
    let work_rx = Mutex::new(work_rx);
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();

    let mut pieces = vec![[0u8; 20]; num_pieces];
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..hashers)
            .map(|_| {
                let free_tx = free_tx.clone();
                let (work_rx, hashed) = (&work_rx, &hashed);
                s.spawn(move || {
                    hash_batches(work_rx, free_tx, piece_length, total, hashed, progress)
                })
            })
            .collect();
        drop(free_tx);
        let read = read_batches(
            files,
            batch_len as usize,
            piece_length,
            pool,
            work_tx,
            free_rx,
        );
        for w in workers {
            // Hashers only panic on a bug; re-raise rather than hide it.
            let results = w.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            for (index, hash) in results {
                if let Some(slot) = pieces.get_mut(index) {
                    *slot = hash;
                }
            }
        }
        read
    })?;
    Ok(pieces)
}

/// Hasher thread: hashes batches until the queue closes; returns (piece, hash) pairs.
fn hash_batches(
    work: &Mutex<Receiver<Batch>>,
    free: mpsc::Sender<Vec<u8>>,
    piece_length: u64,
    total: u64,
    hashed: &Mutex<u64>,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Vec<(usize, [u8; 20])> {
    let mut out = Vec::new();
    loop {
        // The lock is held only while waiting for the next batch.
        let batch = match work.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => break, // another hasher panicked; its panic is re-raised on join
        };
        let Ok(batch) = batch else { break };
        let data = batch.buf.get(..batch.len).unwrap_or_default();
        for (i, piece) in data.chunks(piece_length as usize).enumerate() {
            out.push((batch.first + i, Sha1::digest(piece).into()));
        }
        // Counting and reporting under one lock keeps reports in order.
        let mut done = hashed.lock().unwrap_or_else(PoisonError::into_inner);
        *done += batch.len as u64;
        progress(*done, total);
        drop(done);
        // The reader may have stopped on an error; then the buffer is just dropped.
        let _ = free.send(batch.buf);
    }
    out
}

/// Reader: streams `files` into batches of `batch_len` bytes (a multiple of
/// `piece_length`; the last batch may be short) and queues them for the hashers.
fn read_batches(
    files: &[SourceFile],
    batch_len: usize,
    piece_length: u64,
    pool: usize,
    work: SyncSender<Batch>,
    free: Receiver<Vec<u8>>,
) -> Result<(), CreateError> {
    let mut files = files.iter().filter(|f| f.length > 0);
    let mut current: Option<OpenSource> = None;
    let mut allocated = 0;
    let mut first = 0;
    loop {
        let mut buf = match free.try_recv() {
            Ok(buf) => buf,
            Err(_) if allocated < pool => {
                allocated += 1;
                vec![0u8; batch_len]
            }
            Err(_) => match free.recv() {
                Ok(buf) => buf,
                Err(_) => return Ok(()), // hashers gone: a panic, re-raised on join
            },
        };
        let mut len = 0;
        while len < batch_len {
            let src = match &mut current {
                Some(src) if src.remaining > 0 => src,
                _ => match files.next() {
                    Some(f) => current.insert(OpenSource::open(f)?),
                    None => break,
                },
            };
            len += src.read(&mut buf[len..batch_len])?;
        }
        if len == 0 {
            return Ok(());
        }
        if work.send(Batch { first, buf, len }).is_err() {
            return Ok(()); // hashers gone: a panic, re-raised on join
        }
        if len < batch_len {
            return Ok(());
        }
        first += (batch_len as u64 / piece_length) as usize;
    }
}

/// A file being read, with the bytes still expected from it.
struct OpenSource<'a> {
    src: &'a SourceFile,
    file: File,
    remaining: u64,
}

impl<'a> OpenSource<'a> {
    fn open(src: &'a SourceFile) -> Result<Self, CreateError> {
        let file = File::open(&src.path).map_err(|source| CreateError::Read {
            path: src.path.clone(),
            offset: 0,
            source,
        })?;
        Ok(OpenSource {
            src,
            file,
            remaining: src.length,
        })
    }

    /// Reads up to `buf.len()` bytes, never past the listed length; at least one byte.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, CreateError> {
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let offset = self.src.length - self.remaining;
        loop {
            match self.file.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(CreateError::Changed {
                        path: self.src.path.clone(),
                        expected: self.src.length,
                        actual: offset,
                    })
                }
                Ok(n) => {
                    self.remaining -= n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(CreateError::Read {
                        path: self.src.path.clone(),
                        offset,
                        source,
                    })
                }
            }
        }
    }
}
