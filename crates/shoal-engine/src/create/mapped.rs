//! Read-only windows of a file mapped into memory, for hashing without a copy.
//!
//! Reading a file the hasher has to copy every byte from the page cache into a buffer
//! first; on a 1 GiB file in the page cache that copy was 15 % of `shoal create`'s CPU
//! (`perf`: `_copy_to_iter`), the rest being SHA-1 itself. A mapping lets SHA-1 read the
//! page cache directly, for the price of page faults (see `hash.rs` for the figures).
//!
//! The catch of mapping files: touching a page past the end of a file that shrank after
//! it was mapped (or a page the disk fails to read) raises `SIGBUS`, whose default action
//! kills the process. A [`Window`] turns that into an error instead: a process-wide
//! `SIGBUS` handler, installed once, looks up the faulting address in the window the
//! faulting thread has open (a thread-local record; a thread has at most one window),
//! maps a page of zeros over the faulting page so the interrupted instruction can finish,
//! and flags the window. The owner checks [`Window::faulted`] (and the file's length)
//! before trusting a hash. Faults outside any window go to the handler installed before
//! ours (Rust's stack-overflow handler) or, if there was none, kill the process as
//! before. The handler only touches thread-local atomics and calls `mmap`, a plain
//! system call.
//!
//! Another process writing the file while it is mapped changes the bytes under the
//! hasher, just as it would between two reads: the hashes are then of a mix of old and
//! new data, which is what the size check after hashing and the peers' verification
//! catch (a changed size) or cannot catch (same size) with reads as well.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Once;

thread_local! {
    /// Start and length of this thread's open window (0, 0 when none).
    static ACTIVE_START: AtomicUsize = const { AtomicUsize::new(0) };
    static ACTIVE_LEN: AtomicUsize = const { AtomicUsize::new(0) };
    /// Set by the `SIGBUS` handler when it patched a page of this thread's window.
    static FAULTED: AtomicBool = const { AtomicBool::new(false) };
}

/// The `SIGBUS` action that was installed before ours.
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A mapped, read-only range of a file. Unmapped on drop.
pub(super) struct Window {
    base: *mut libc::c_void,
    map_len: usize,
    /// Offset of the requested range inside the mapping (page alignment).
    skip: usize,
    len: usize,
}

impl Window {
    /// Maps `len` bytes of `file` from `offset` (any alignment); pages fault in (with
    /// the kernel's read-around) as they are hashed.
    /// Fails if the mapping or the `SIGBUS` handler cannot be set up; callers then read.
    pub(super) fn map(file: &File, offset: u64, len: usize) -> io::Result<Window> {
        install_handler()?;
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let skip = (offset % page as u64) as usize;
        let map_offset = offset - skip as u64;
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty window"));
        }
        debug_assert_eq!(
            ACTIVE_START.with(|s| s.load(Ordering::Relaxed)),
            0,
            "one window per thread at a time"
        );
        let map_len = len
            .checked_add(skip)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "window too long"))?;
        let file_offset = libc::off_t::try_from(map_offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))?;
        // SAFETY: a fresh shared read-only mapping chosen by the kernel (no MAP_FIXED), of
        // a file descriptor that is valid for this call; nothing else refers to the range.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                file_offset,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        FAULTED.with(|f| f.store(false, Ordering::Relaxed));
        ACTIVE_LEN.with(|l| l.store(map_len, Ordering::Relaxed));
        ACTIVE_START.with(|s| s.store(base as usize, Ordering::Relaxed));
        // The handler runs on this thread: keep the record ahead of any access.
        compiler_fence(Ordering::SeqCst);
        Ok(Window {
            base,
            map_len,
            skip,
            len,
        })
    }

    /// The mapped bytes. Pages the `SIGBUS` handler patched read as zeros; check
    /// [`Self::faulted`] after use.
    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: `base..base + map_len` is mapped readable until drop, `skip + len ==
        // map_len`. Strictly, a `&[u8]` must not change while it lives, and a shared
        // mapping changes if another process writes the file (or the SIGBUS handler
        // patches a page): the same caveat as memmap2's. The slice is only read by
        // SHA-1, whose result is then checked (see the module docs).
        unsafe { std::slice::from_raw_parts((self.base as *const u8).add(self.skip), self.len) }
    }

    /// True if a page of this window could not be read (the file shrank, or a read
    /// error): its bytes are not the file's.
    pub(super) fn faulted(&self) -> bool {
        compiler_fence(Ordering::SeqCst);
        FAULTED.with(|f| f.load(Ordering::Relaxed))
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        compiler_fence(Ordering::SeqCst);
        ACTIVE_START.with(|s| s.store(0, Ordering::Relaxed));
        ACTIVE_LEN.with(|l| l.store(0, Ordering::Relaxed));
        compiler_fence(Ordering::SeqCst);
        // SAFETY: unmaps exactly the mapping made in `map` (pages the handler replaced
        // included); no slice from `bytes` outlives `self`.
        unsafe {
            libc::munmap(self.base, self.map_len);
        }
    }
}

/// Installs the `SIGBUS` handler once per process.
fn install_handler() -> io::Result<()> {
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if let Ok(page) = usize::try_from(page) {
            if page.is_power_of_two() {
                PAGE_SIZE.store(page, Ordering::Relaxed);
            }
        }
        // SAFETY: zeroed `sigaction` structs are valid; `sigaction` reads `new` and
        // writes `old`, both live for the call. The previous action is stored (leaked,
        // once per process) before ours can run.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_sigbus as extern "C" fn(_, _, _) as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            let old: &'static mut libc::sigaction = Box::leak(Box::new(std::mem::zeroed()));
            if libc::sigaction(libc::SIGBUS, ptr::null(), old) != 0 {
                return;
            }
            PREVIOUS.store(old, Ordering::Release);
            if libc::sigaction(libc::SIGBUS, &new, ptr::null_mut()) == 0 {
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
    if INSTALLED.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(io::Error::other("could not install the SIGBUS handler"))
    }
}

/// The `SIGBUS` handler: see the module docs. Async-signal-safe: thread-local atomics
/// (const-initialized, no destructor), `mmap`, `sigaction` and `raise`; errno is kept.
/// A chained handler is called directly: the previous action's `sa_mask` and
/// `SA_RESETHAND`/`SA_NODEFER` flags are not re-applied (Rust's stack-overflow
/// handler, the one expected here, needs none of them).
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; the interrupted code must find it unchanged.
    let errno = unsafe { *libc::__errno_location() };
    on_sigbus_inner(sig, info, ctx);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

fn on_sigbus_inner(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // Only a fault the kernel raised (si_code > 0) has an address; a SIGBUS sent with
    // kill() or tgkill() (si_code <= 0) is not ours to absorb.
    let start = ACTIVE_START
        .try_with(|s| s.load(Ordering::Relaxed))
        .unwrap_or(0);
    let len = ACTIVE_LEN
        .try_with(|l| l.load(Ordering::Relaxed))
        .unwrap_or(0);
    if code > 0 && start != 0 && addr >= start && addr - start < len {
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let at = addr & !(page - 1);
        // SAFETY: replaces one page inside this thread's own window with zeros; the
        // window is unmapped as a whole on drop.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            let _ = FAULTED.try_with(|f| f.store(true, Ordering::Relaxed));
            return;
        }
    }
    // Not ours: whoever handled SIGBUS before us, or the default action.
    let prev = PREVIOUS.load(Ordering::Acquire);
    // SAFETY: `prev` is null or the leaked action saved at installation. Calling the
    // saved handler with our arguments is how handlers are chained; restoring the
    // default action and returning re-runs the faulting instruction, which then
    // terminates the process as if we had never been installed.
    unsafe {
        if let Some(prev) = prev.as_ref() {
            let h = prev.sa_sigaction;
            if h != libc::SIG_DFL && h != libc::SIG_IGN {
                if prev.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(h);
                    f(sig, info, ctx);
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
                    f(sig);
                }
                return;
            }
        }
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGBUS, &dfl, ptr::null_mut());
        if code <= 0 {
            // A sent signal does not come back by itself: send it again (delivered,
            // with the default action, once this handler returns).
            libc::raise(sig);
        }
    }
}
