//! Datagrams in batches: `recvmmsg` takes every queued request (up to [`BATCH`]) in one
//! syscall and `sendmmsg` sends their replies in one more, each reply addressed with
//! the raw source address its request came from. All buffers are allocated once per
//! worker; nothing is allocated per packet.
//!
//! Every `unsafe` block is one of those two syscalls (or zero-initialising the C
//! structs they take); the pointers handed to the kernel point into this struct's own
//! buffers, are rebuilt for each call and do not outlive it.

use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// Most datagrams taken or sent per syscall.
pub(crate) const BATCH: usize = 32;

/// Buffers for one worker's batches.
pub(crate) struct Batch {
    /// `BATCH` request slots of `slot` bytes each.
    data: Vec<u8>,
    slot: usize,
    lens: [usize; BATCH],
    names: Vec<libc::sockaddr_storage>,
    name_lens: [libc::socklen_t; BATCH],
    /// One reply buffer per request; empty when the request gets no reply.
    replies: Vec<Vec<u8>>,
    count: usize,
}

impl Batch {
    /// Buffers for requests of up to `max_datagram` bytes.
    pub fn new(max_datagram: usize) -> Self {
        // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
        let zero: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        Batch {
            data: vec![0; max_datagram * BATCH],
            slot: max_datagram,
            lens: [0; BATCH],
            names: vec![zero; BATCH],
            name_lens: [0; BATCH],
            replies: (0..BATCH).map(|_| Vec::with_capacity(1500)).collect(),
            count: 0,
        }
    }

    /// Requests received by the last [`Batch::recv`].
    pub fn len(&self) -> usize {
        self.count
    }

    /// Calls `answer(request, source, reply)` for each request received (skipping
    /// sources of a family we do not serve); a reply left empty is not sent.
    pub fn answer_each(&mut self, mut answer: impl FnMut(&[u8], SocketAddr, &mut Vec<u8>)) {
        for i in 0..self.count {
            let start = i * self.slot;
            let data = self
                .data
                .get(start..start + self.lens[i].min(self.slot))
                .unwrap_or_default();
            if let Some(from) = crate::sys::to_socket_addr(&self.names[i], self.name_lens[i]) {
                answer(data, from, &mut self.replies[i]);
            }
        }
    }

    /// Takes the queued datagrams without blocking (`WouldBlock` when there are none)
    /// and clears every reply buffer.
    pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        self.count = 0;
        let mut iovs: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: mmsghdr is plain old data; all zeroes is a valid (empty) value.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let name_len = socklen(size_of::<libc::sockaddr_storage>());
        for (i, (iov, hdr)) in iovs.iter_mut().zip(hdrs.iter_mut()).enumerate() {
            iov.iov_base = self.data[i * self.slot..].as_mut_ptr().cast();
            iov.iov_len = self.slot;
            hdr.msg_hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_hdr.msg_namelen = name_len;
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at a distinct, live slot of `data` of `slot`
        // bytes and at a distinct sockaddr_storage, all owned by `self` for the call.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        for (i, hdr) in hdrs.iter().enumerate().take(n) {
            self.lens[i] = usize::try_from(hdr.msg_len).unwrap_or(0);
            self.name_lens[i] = hdr.msg_hdr.msg_namelen;
            self.replies[i].clear();
        }
        self.count = n.min(BATCH);
        Ok(self.count)
    }

    /// Sends the non-empty replies from index `from` on, each to its request's source,
    /// without blocking. Returns the index to resume from: [`Batch::len`] when all are
    /// sent. Replies the kernel refuses (other than `WouldBlock`) are skipped.
    pub fn send(&mut self, socket: &impl AsRawFd, from: usize) -> io::Result<usize> {
        let mut iovs: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: as in recv.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut index = [0usize; BATCH];
        let mut k = 0;
        for i in from..self.count {
            if self.replies[i].is_empty() {
                continue;
            }
            iovs[k].iov_base = self.replies[i].as_mut_ptr().cast();
            iovs[k].iov_len = self.replies[i].len();
            index[k] = i;
            k += 1;
        }
        if k == 0 {
            return Ok(self.count);
        }
        for j in 0..k {
            let i = index[j];
            let hdr = &mut hdrs[j].msg_hdr;
            hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = self.name_lens[i];
            hdr.msg_iov = &mut iovs[j];
            hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `k` headers point at live reply buffers and addresses owned
        // by `self`, unchanged for the call.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                k as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        match usize::try_from(n) {
            Ok(sent) if sent >= k => Ok(self.count),
            Ok(sent) => Ok(index[sent]),
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    Err(e)
                } else if e.kind() == io::ErrorKind::Interrupted {
                    Ok(index[0])
                } else {
                    // The first reply failed (e.g. unreachable): skip it, not the rest.
                    Ok(index[0] + 1)
                }
            }
        }
    }
}

fn socklen(n: usize) -> libc::socklen_t {
    libc::socklen_t::try_from(n).unwrap_or(libc::socklen_t::MAX)
}
