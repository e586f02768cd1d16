//! Buffers that the kernel copies file data into.
//!
//! On the AMD EPYC machines we measure on, the kernel's copy from the page cache (or a
//! socket) into user memory (`rep movsb`) costs about three times as much when the
//! destination is not 32-byte aligned: reading 1 GiB from the page cache took 0.82
//! system CPU-seconds into a buffer 16 bytes past a page (where malloc puts large
//! blocks) and 0.25 into an aligned one. Buffers that `pread` fills are therefore
//! allocated aligned here. (Writes are not affected: the page cache side is aligned.)
//! Read buffers handed out as [`Bytes`] are also recycled, which spares the zeroing of
//! a fresh buffer per read (12% of a seeder's CPU in a profile).

use bytes::Bytes;
use std::sync::{Mutex, PoisonError};

/// Alignment of the buffers made here: a page, which is also a multiple of every cache
/// line and vector width.
pub(crate) const ALIGN: usize = 4096;

/// Zeroed bytes `len` long with an aligned start, as the backing `Vec` and the offset
/// of the aligned part in it.
fn aligned_vec(len: usize) -> (Vec<u8>, usize) {
    let storage = vec![0u8; len + ALIGN];
    let misalign = storage.as_ptr() as usize % ALIGN;
    (storage, (ALIGN - misalign) % ALIGN)
}

/// A reusable, aligned scratch buffer.
pub(crate) struct AlignedBuf {
    storage: Vec<u8>,
    offset: usize,
    len: usize,
}

impl AlignedBuf {
    /// An aligned, zeroed buffer of `len` bytes.
    pub(crate) fn new(len: usize) -> Self {
        let (storage, offset) = aligned_vec(len);
        AlignedBuf {
            storage,
            offset,
            len,
        }
    }

    /// The whole buffer.
    pub(crate) fn get(&mut self) -> &mut [u8] {
        &mut self.storage[self.offset..self.offset + self.len]
    }

    /// The first `len` bytes, growing (and re-aligning) the buffer when it is shorter.
    pub(crate) fn prefix(&mut self, len: usize) -> &mut [u8] {
        if len > self.len {
            *self = AlignedBuf::new(len);
        }
        &mut self.storage[self.offset..self.offset + len]
    }
}

/// Smallest and largest buffers kept for reuse by [`read_aligned`]: size classes are the
/// powers of two in between (larger reads get a buffer of their own).
const POOL_MIN: usize = 16 << 10;
const POOL_MAX: usize = 1 << 20;
/// Buffers kept per size class; more are freed.
const POOL_KEEP: usize = 16;

/// Free aligned buffers by size class (index: log2(size / POOL_MIN)).
static POOL: Mutex<Vec<Vec<AlignedBuf>>> = Mutex::new(Vec::new());

fn class_of(len: usize) -> Option<(usize, usize)> {
    let size = len.max(POOL_MIN).checked_next_power_of_two()?;
    (size <= POOL_MAX).then(|| ((size / POOL_MIN).trailing_zeros() as usize, size))
}

/// An aligned buffer lent to a [`Bytes`]; back to the pool when the last slice is gone.
struct Lent {
    buf: Option<AlignedBuf>,
    len: usize,
    class: usize,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        match &self.buf {
            Some(b) => &b.storage[b.offset..b.offset + self.len],
            None => &[],
        }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() <= self.class {
                pool.resize_with(self.class + 1, Vec::new);
            }
            if let Some(free) = pool.get_mut(self.class) {
                if free.len() < POOL_KEEP {
                    free.push(buf);
                }
            }
        }
    }
}

/// Reads `len` bytes with `fill` into an aligned buffer and returns them as [`Bytes`]
/// (zero-copy). Buffers up to 1 MiB come from a small process-wide pool and go back to
/// it when the returned bytes (and every slice of them) are dropped, so a seeder does
/// not allocate and zero a buffer per read.
pub(crate) fn read_aligned<E>(
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
) -> Result<Bytes, E> {
    let Some((class, size)) = class_of(len) else {
        let mut buf = AlignedBuf::new(len);
        fill(buf.get())?;
        let AlignedBuf {
            storage, offset, ..
        } = buf;
        return Ok(Bytes::from(storage).slice(offset..offset + len));
    };
    let reused = POOL
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_mut(class)
        .and_then(Vec::pop);
    let mut buf = reused.unwrap_or_else(|| AlignedBuf::new(size));
    fill(buf.prefix(len))?;
    Ok(Bytes::from_owner(Lent {
        buf: Some(buf),
        len,
        class,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_sized() {
        for len in [0, 1, 100, 16 << 10, 256 << 10, (1 << 20) + 3] {
            let mut b = AlignedBuf::new(len);
            assert_eq!(b.get().len(), len);
            assert_eq!(b.get().as_ptr() as usize % ALIGN, 0);
            let p = b.prefix(len + 5000);
            assert_eq!(p.len(), len + 5000);
            assert_eq!(p.as_ptr() as usize % ALIGN, 0);
            assert_eq!(b.prefix(1).len(), 1);
            for round in 0..3u8 {
                let bytes = read_aligned::<()>(len, |s| {
                    s.fill(round);
                    Ok(())
                })
                .unwrap();
                let half = bytes.slice(len / 2..);
                assert_eq!(bytes.len(), len);
                assert!(bytes.iter().all(|&x| x == round));
                if len > 0 {
                    assert_eq!(bytes.as_ptr() as usize % ALIGN, 0);
                }
                drop(bytes);
                // A slice keeps the buffer alive (and out of the pool).
                assert!(half.iter().all(|&x| x == round));
            }
        }
    }
}
