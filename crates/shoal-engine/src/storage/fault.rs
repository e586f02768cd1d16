//! [`FaultyStorage`]: wraps a storage and makes chosen operations fail the way disks
//! do, so tests can see what the engine does with a full disk, `EIO`, a short read or
//! a file shortened underneath it, without special mounts.
//!
//! A [`Fault`] says which operation fails ([`FaultOp`]), how ([`FaultKind`]), where
//! (a file of the torrent and a range of offsets in it) and when (after how many
//! matching operations, and how many times). A read or write that reaches a fault's
//! range behaves as the real thing would when the disk fails there: the bytes before
//! the fault point are read or written through the inner storage, the operation then
//! fails with the error the file storage would report (the OS error goes through the
//! same classification, so `ENOSPC` becomes [`StorageError::DiskFull`] and an early
//! end of file [`StorageError::Truncated`]). A failed read leaves junk (`0xEE`) in the
//! rest of the buffer, so a caller that used it anyway would send detectably wrong
//! bytes.

use super::layout::{self, Layout, Segment};
use super::{check, Storage, StorageError};
use shoal_proto::metainfo::Info;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Linux `EIO`.
const EIO: i32 = 5;
/// Linux and macOS `ENOSPC`.
const ENOSPC: i32 = 28;
/// What a failed read leaves in the rest of the caller's buffer.
const JUNK: u8 = 0xEE;

/// The operation a [`Fault`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// [`Storage::read`] (serving peers, and the data check).
    Read,
    /// [`Storage::write_parts`] (storing verified pieces).
    Write,
    /// [`Storage::sync`] (flushing when the torrent stops).
    Sync,
}

/// How the operation fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `ENOSPC`: the disk is full.
    NoSpace,
    /// `EIO`: the device failed.
    Io,
    /// The data ends early at the fault point (a read returning fewer bytes, then end
    /// of file); on writes, a write that stores nothing (`WriteZero`).
    ShortRead,
}

impl FaultKind {
    fn error(self) -> io::Error {
        match self {
            FaultKind::NoSpace => io::Error::from_raw_os_error(ENOSPC),
            FaultKind::Io => io::Error::from_raw_os_error(EIO),
            FaultKind::ShortRead => {
                io::Error::new(io::ErrorKind::UnexpectedEof, "injected short read or write")
            }
        }
    }
}

/// One fault to inject. Built with [`Fault::new`] and narrowed with the other methods;
/// by default it hits every operation of its kind, anywhere, from the first one on.
#[derive(Debug, Clone)]
pub struct Fault {
    op: FaultOp,
    kind: FaultKind,
    file: Option<usize>,
    range: Range<u64>,
    after: u64,
    times: Option<u64>,
}

impl Fault {
    /// `op` fails with `kind` everywhere, every time.
    pub fn new(op: FaultOp, kind: FaultKind) -> Fault {
        Fault {
            op,
            kind,
            file: None,
            range: 0..u64::MAX,
            after: 0,
            times: None,
        }
    }

    /// Reads past `len` bytes of file `index` end early, every time: the file was cut
    /// short underneath the torrent.
    pub fn truncated(index: usize, len: u64) -> Fault {
        Fault::new(FaultOp::Read, FaultKind::ShortRead)
            .in_file(index)
            .at(len..u64::MAX)
    }

    /// Only in file `index` (its place in the torrent's file list). A sync fault
    /// fails every sync; the file only names the error's path.
    pub fn in_file(mut self, index: usize) -> Fault {
        self.file = Some(index);
        self
    }

    /// Only operations touching these offsets within the file; the fault point is the
    /// first such offset an operation reaches.
    pub fn at(mut self, range: Range<u64>) -> Fault {
        self.range = range;
        self
    }

    /// The first `n` matching operations succeed.
    pub fn after(mut self, n: u64) -> Fault {
        self.after = n;
        self
    }

    /// Fails at most `n` times, then matching operations succeed again.
    pub fn times(mut self, n: u64) -> Fault {
        self.times = Some(n);
        self
    }

    /// Where `seg` reaches this fault: the offset in the file, if it does.
    fn hit(&self, seg: &Segment) -> Option<u64> {
        if self.file.is_some_and(|f| f != seg.file) {
            return None;
        }
        let end = seg.file_offset + seg.len as u64;
        let at = seg.file_offset.max(self.range.start);
        (at < end && at < self.range.end).then_some(at)
    }
}

/// A fault with its counts.
#[derive(Debug)]
struct Armed {
    fault: Fault,
    /// Matching operations so far.
    seen: u64,
    /// Times it failed one.
    fired: u64,
}

/// Where an operation fails: the segment, the offset in its file, the error.
struct Trip {
    seg: Segment,
    offset: u64,
    kind: FaultKind,
}

impl Trip {
    /// Bytes of the operation's buffer before the fault point.
    fn prefix(&self) -> usize {
        // Within the segment, whose length is a usize.
        self.seg.buf_offset + (self.offset - self.seg.file_offset) as usize
    }
}

/// Another storage with faults injected; see the module documentation.
#[derive(Debug)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    layout: Layout,
    hashes: Vec<[u8; 20]>,
    faults: Mutex<Vec<Armed>>,
    injected: AtomicU64,
}

impl FaultyStorage {
    /// Wraps `inner`, the storage of `info` below `save_dir` (used to name files in
    /// errors), with no faults yet.
    pub fn new(
        inner: Arc<dyn Storage>,
        save_dir: &Path,
        info: &Info,
    ) -> Result<FaultyStorage, StorageError> {
        Ok(FaultyStorage {
            inner,
            layout: Layout::new(save_dir, info)?,
            hashes: info.pieces.clone(),
            faults: Mutex::new(Vec::new()),
            injected: AtomicU64::new(0),
        })
    }

    /// Adds a fault; it applies to operations that start from now on.
    pub fn add(&self, fault: Fault) {
        self.lock().push(Armed {
            fault,
            seen: 0,
            fired: 0,
        });
    }

    /// Removes every fault: operations pass through again.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Operations failed so far, by all faults.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Armed>> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an `op` over `len` bytes at torrent offset `start` fails, and where.
    /// Counts the operation for every fault it matches.
    fn trip(&self, op: FaultOp, start: u64, len: usize) -> Option<Trip> {
        let mut faults = self.lock();
        let mut trip = None;
        for armed in faults.iter_mut().filter(|a| a.fault.op == op) {
            let Some((seg, offset)) = self
                .layout
                .segments(start, len)
                .find_map(|s| armed.fault.hit(&s).map(|o| (s, o)))
            else {
                continue;
            };
            armed.seen += 1;
            let spent = armed.fault.times.is_some_and(|t| armed.fired >= t);
            if trip.is_some() || armed.seen <= armed.fault.after || spent {
                continue;
            }
            armed.fired += 1;
            trip = Some(Trip {
                seg,
                offset,
                kind: armed.fault.kind,
            });
        }
        if trip.is_some() {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        trip
    }

    fn path(&self, file: usize) -> PathBuf {
        self.layout
            .files
            .get(file)
            .map(|f| f.path.clone())
            .unwrap_or_default()
    }
}

impl Storage for FaultyStorage {
    fn read(&self, piece: u32, begin: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        let start = self.layout.block_offset(piece, begin, buf.len())?;
        let Some(trip) = self.trip(FaultOp::Read, start, buf.len()) else {
            return self.inner.read(piece, begin, buf);
        };
        let prefix = trip.prefix();
        let (head, rest) = buf.split_at_mut(prefix);
        if !head.is_empty() {
            self.inner.read(piece, begin, head)?;
        }
        rest.fill(JUNK);
        let path = self.path(trip.seg.file);
        Err(StorageError::read(
            path,
            piece,
            trip.offset,
            trip.kind.error(),
        ))
    }

    fn write_parts(&self, piece: u32, begin: u32, parts: &[&[u8]]) -> Result<(), StorageError> {
        let total: usize = parts.iter().map(|b| b.len()).sum();
        let start = self.layout.block_offset(piece, begin, total)?;
        let Some(trip) = self.trip(FaultOp::Write, start, total) else {
            return self.inner.write_parts(piece, begin, parts);
        };
        let mut head = Vec::with_capacity(parts.len());
        layout::parts_within(parts, 0, trip.prefix(), &mut head);
        if !head.is_empty() {
            self.inner.write_parts(piece, begin, &head)?;
        }
        let path = self.path(trip.seg.file);
        let e = match trip.kind {
            FaultKind::ShortRead => io::Error::new(io::ErrorKind::WriteZero, "wrote nothing"),
            kind => kind.error(),
        };
        Err(StorageError::write(path, piece, trip.offset, e))
    }

    fn check_all(
        &self,
        threads: usize,
        progress: &(dyn Fn(u32) + Sync),
    ) -> Result<Vec<bool>, StorageError> {
        // Through `self.read`, so read faults apply to the check too.
        check::check_by_reading(
            &self.layout,
            &self.hashes,
            threads,
            progress,
            &|piece, buf| self.read(piece, 0, buf),
        )
    }

    fn sync(&self) -> Result<(), StorageError> {
        // A sync touches every file: any sync fault matches it.
        let mut hit = None;
        for a in self
            .lock()
            .iter_mut()
            .filter(|a| a.fault.op == FaultOp::Sync)
        {
            a.seen += 1;
            let spent = a.fault.times.is_some_and(|t| a.fired >= t);
            if hit.is_some() || a.seen <= a.fault.after || spent {
                continue;
            }
            a.fired += 1;
            hit = Some((a.fault.file.unwrap_or(0), a.fault.kind));
        }
        match hit {
            Some((file, kind)) => {
                self.injected.fetch_add(1, Ordering::Relaxed);
                Err(StorageError::Sync {
                    path: self.path(file),
                    source: kind.error(),
                })
            }
            None => self.inner.sync(),
        }
    }
}
