//! UDP segmentation offload on Linux: many datagrams in one system call each way.
//!
//! uTP sends ~1400-byte datagrams; one `sendto` and one `recvfrom` per datagram cost
//! far more than the bytes (kernel entry, socket lookup, routing, a wake-up of the
//! receiver), so a 1 GiB transfer on loopback spent ~10 CPU-seconds per end in them.
//! - Sending (`UDP_SEGMENT`, "GSO"): a buffer of equal-sized datagrams (the last may be
//!   shorter) goes to the kernel in one `sendmsg`, which cuts it into separate
//!   datagrams of that size. What goes on the wire is exactly what separate sends
//!   would have put there, so any peer receives it as usual.
//! - Receiving (`UDP_GRO`): the kernel may hand consecutive datagrams of one flow and
//!   one size over in one buffer, with the datagram size in a control message; each
//!   `stride` bytes of it (the last may be shorter) is one datagram. Without the option
//!   the kernel splits them again before queueing.
//!
//! Both are best effort: where the kernel lacks them (before Linux 4.18 / 5.0, or
//! other systems) or refuses a send, datagrams go one by one as before. Every
//! datagram a caller sees is a whole one, as `recv_from` would have returned it.

use std::io::{self, IoSlice};
use std::net::SocketAddr;

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Most datagrams in one segmented send (the kernel's `UDP_MAX_SEGMENTS`).
pub const MAX_SEGMENTS: usize = 64;
/// Most bytes in one segmented send: the UDP length field is 16 bits, less the IPv4
/// and UDP headers, with room to spare.
pub const MAX_SEND_BYTES: usize = 65_000;

/// Asks the kernel to coalesce received datagrams (`UDP_GRO`); whether it agreed.
pub fn enable_gro(socket: &UdpSocket) -> bool {
    sys::set_gro(socket)
}

/// Whether `socket` takes segmented sends (`UDP_SEGMENT` is known to the kernel).
pub fn gso_supported(socket: &UdpSocket) -> bool {
    sys::gso_supported(socket)
}

/// Receives into `buf`: bytes, sender, and the size of each datagram in it (`n` when
/// it holds one datagram).
pub async fn recv_from(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, usize)> {
    socket
        .async_io(Interest::READABLE, || sys::recv(socket, buf))
        .await
}

/// The datagrams of a received buffer of `n` bytes, `stride` bytes each (the last
/// may be shorter), as ranges.
pub fn datagrams(n: usize, stride: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let stride = if stride == 0 { n.max(1) } else { stride };
    (0..n)
        .step_by(stride)
        .map(move |at| at..(at + stride).min(n))
}

/// Sends the bytes of `parts`, back to back, to `to` as datagrams of `segment` bytes
/// (the last may be shorter) in one system call; the kernel gathers the parts, so
/// they need not be copied together first (at most [`MAX_SEGMENTS`] of them). Fails
/// with the kernel's error (`EIO`/`EINVAL` when it cannot segment for this route);
/// the caller then sends them one by one.
pub async fn send_segments(
    socket: &UdpSocket,
    to: SocketAddr,
    parts: &[IoSlice<'_>],
    segment: usize,
) -> io::Result<()> {
    socket
        .async_io(Interest::WRITABLE, || sys::send(socket, to, parts, segment))
        .await
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io::{self, IoSlice};
    use std::mem;
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;

    use socket2::{SockAddr, SockAddrStorage};
    use tokio::net::UdpSocket;

    /// Room for one control message with an `int` (or smaller) payload.
    const CMSG_ROOM: usize = 64;

    #[repr(C, align(8))]
    struct Control([u8; CMSG_ROOM]);

    fn setsockopt_int(socket: &UdpSocket, opt: libc::c_int, value: libc::c_int) -> bool {
        // SAFETY: a plain `int` option of a socket we own, passed by pointer and size.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_UDP,
                opt,
                (&value as *const libc::c_int).cast(),
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    }

    pub(super) fn set_gro(socket: &UdpSocket) -> bool {
        setsockopt_int(socket, libc::UDP_GRO, 1)
    }

    pub(super) fn gso_supported(socket: &UdpSocket) -> bool {
        let mut value: libc::c_int = 0;
        let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: reads an `int` option into a local of that size.
        unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_UDP,
                libc::UDP_SEGMENT,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            ) == 0
        }
    }

    pub(super) fn recv(
        socket: &UdpSocket,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, usize)> {
        let mut addr = SockAddrStorage::zeroed();
        let mut control = Control([0; CMSG_ROOM]);
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_name = (&mut addr as *mut SockAddrStorage).cast();
        msg.msg_namelen = addr.size_of();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = CMSG_ROOM as _;
        // SAFETY: every buffer msg points to is alive and as long as it says.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes.
        let from = unsafe { SockAddr::new(addr, msg.msg_namelen) }
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP sender"))?;
        let mut stride = n;
        // SAFETY: walks the control messages the kernel wrote within msg_controllen,
        // with the libc macros; the payload read is the `int` UDP_GRO carries.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                let c = &*cmsg;
                if c.cmsg_level == libc::SOL_UDP && c.cmsg_type == libc::UDP_GRO {
                    let size = libc::CMSG_DATA(cmsg).cast::<libc::c_int>().read_unaligned();
                    if size > 0 {
                        stride = size as usize;
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok((n, from, stride))
    }

    pub(super) fn send(
        socket: &UdpSocket,
        to: SocketAddr,
        parts: &[IoSlice<'_>],
        segment: usize,
    ) -> io::Result<()> {
        let addr = SockAddr::from(to);
        let segment = u16::try_from(segment)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
        let mut control = Control([0; CMSG_ROOM]);
        // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_name = addr.as_ptr().cast_mut().cast();
        msg.msg_namelen = addr.len();
        // `IoSlice` is ABI-compatible with `iovec` on Unix; the kernel only reads them.
        msg.msg_iov = parts.as_ptr().cast_mut().cast();
        msg.msg_iovlen = parts.len() as _;
        msg.msg_control = control.0.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE/LEN are pure size computations; the header and the u16
        // written through CMSG_FIRSTHDR/CMSG_DATA lie within `control` (64 bytes, 8-byte
        // aligned, far more than one u16 message needs).
        unsafe {
            msg.msg_controllen = libc::CMSG_SPACE(mem::size_of::<u16>() as u32) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = libc::UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as _;
            libc::CMSG_DATA(cmsg).cast::<u16>().write_unaligned(segment);
        }
        // SAFETY: every buffer msg points to is alive and as long as it says.
        let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io::{self, IoSlice};
    use std::net::SocketAddr;

    use tokio::net::UdpSocket;

    pub(super) fn set_gro(_: &UdpSocket) -> bool {
        false
    }

    pub(super) fn gso_supported(_: &UdpSocket) -> bool {
        false
    }

    pub(super) fn recv(
        socket: &UdpSocket,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, usize)> {
        let (n, from) = socket.try_recv_from(buf)?;
        Ok((n, from, n))
    }

    pub(super) fn send(
        _: &UdpSocket,
        _: SocketAddr,
        _: &[IoSlice<'_>],
        _: usize,
    ) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_split_by_stride() {
        let r: Vec<_> = datagrams(10, 4).collect();
        assert_eq!(r, vec![0..4, 4..8, 8..10]);
        assert_eq!(datagrams(8, 8).collect::<Vec<_>>(), vec![0..8]);
        assert_eq!(datagrams(0, 4).count(), 0);
        assert_eq!(datagrams(5, 0).collect::<Vec<_>>(), vec![0..5]);
    }

    /// A segmented send arrives as separate datagrams at a plain socket, and as one
    /// buffer with its stride at a socket with GRO on; either way the same bytes.
    #[tokio::test]
    async fn segmented_send_arrives_as_datagrams() {
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if !gso_supported(&tx) {
            eprintln!("skipped: no UDP_SEGMENT here");
            return;
        }
        let plain = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let gro = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let coalesces = enable_gro(&gro);
        let buf: Vec<u8> = (0..3500u32).map(|i| i as u8).collect();
        for to in [&plain, &gro] {
            let addr = to.local_addr().unwrap();
            let parts: Vec<IoSlice<'_>> = buf.chunks(1000).map(IoSlice::new).collect();
            send_segments(&tx, addr, &parts, 1400).await.unwrap();
        }
        let mut got = Vec::new();
        let mut rbuf = vec![0u8; 65536];
        while got.len() < 3 {
            let (n, from, stride) = recv_from(&plain, &mut rbuf).await.unwrap();
            assert_eq!((from, stride), (tx.local_addr().unwrap(), n));
            got.push(rbuf[..n].to_vec());
        }
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let (n, _, stride) = recv_from(&gro, &mut rbuf).await.unwrap();
            if coalesces {
                assert!(stride <= 1400);
            }
            seen.extend(datagrams(n, stride).map(|r| rbuf[r].to_vec()));
        }
        let want: Vec<Vec<u8>> = buf.chunks(1400).map(<[u8]>::to_vec).collect();
        assert_eq!(got, want);
        assert_eq!(seen, want);
    }
}
