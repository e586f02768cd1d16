//! Positional vectored writes (`pwritev`), which std does not offer on stable Rust.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;

/// Most slices per `pwritev` call (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Writes all of `parts`, in order, at `offset` of `file`, retrying short writes.
pub(super) fn write_all_vectored_at(
    file: &File,
    mut parts: &[&[u8]],
    mut offset: u64,
) -> io::Result<()> {
    parts = {
        // Empty parts write nothing; without any others there is nothing to do.
        let first = parts
            .iter()
            .position(|p| !p.is_empty())
            .unwrap_or(parts.len());
        &parts[first..]
    };
    // Bytes of `parts[0]` already written by a short write.
    let mut skip = 0usize;
    let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len().min(IOV_MAX));
    while !parts.is_empty() {
        iov.clear();
        for (i, p) in parts.iter().take(IOV_MAX).enumerate() {
            let p = if i == 0 { &p[skip..] } else { p };
            iov.push(IoSlice::new(p));
        }
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))?;
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix; the slices it points
        // to are borrowed for the call; `iov.len()` is at most IOV_MAX.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                iov.as_ptr().cast::<libc::iovec>(),
                iov.len() as libc::c_int,
                off,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing"));
        }
        let mut n = n as usize;
        offset += n as u64;
        while let Some(first) = parts.first() {
            let left = first.len() - skip;
            if n < left {
                skip += n;
                break;
            }
            n -= left;
            skip = 0;
            parts = &parts[1..];
        }
    }
    Ok(())
}
