//! The few raw socket calls std and tokio do not offer, as safe functions: `accept4`
//! with `SOCK_NONBLOCK` (one syscall where std needs a second to make the socket
//! non-blocking) and address conversion from `sockaddr_storage`.
//!
//! Also `send` with `MSG_MORE`, `TCP_DEFER_ACCEPT` and the registration of the listener with tokio's reactor.
//!
//! Every `unsafe` block here is a plain syscall on a descriptor the caller owns, with
//! buffers sized by their Rust types; no pointer outlives the call.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{
    Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream,
};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Registers the non-blocking `listener` with the reactor for readability, asking the
/// kernel to hand over connections only once they have sent data (`TCP_DEFER_ACCEPT`,
/// best effort): an HTTP client speaks first, so its request is then readable right at
/// accept and can be answered inline. A client that connects and stays silent is
/// still accepted, after about a second, and costs nothing in the meantime.
pub(crate) fn async_listener(listener: TcpListener) -> io::Result<AsyncFd<TcpListener>> {
    let secs: libc::c_int = 1;
    // SAFETY: setsockopt reads exactly size_of::<c_int>() bytes from `secs`.
    let _ = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            socklen(size_of::<libc::c_int>()),
        )
    };
    // SAFETY: a std TcpListener owns its descriptor, keeps it open until dropped and
    // always returns the same one from as_raw_fd; the AsyncFd owns the listener.
    unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// Accepts one connection on the non-blocking listener `listener` as a non-blocking,
/// close-on-exec socket, with the peer's address. `WouldBlock` when none is pending.
pub(crate) fn accept_nonblocking(listener: &impl AsRawFd) -> io::Result<(TcpStream, SocketAddr)> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = socklen(size_of::<libc::sockaddr_storage>());
    // SAFETY: `storage` is a writable sockaddr_storage and `len` its size; the kernel
    // writes at most `len` bytes and updates `len`.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            storage.as_mut_ptr().cast::<libc::sockaddr>(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a fresh descriptor that nothing else owns.
    let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: zero-initialised, then (partly) written by the kernel; every bit pattern
    // is a valid sockaddr_storage.
    let storage = unsafe { storage.assume_init() };
    let peer = to_socket_addr(&storage, len).map_or_else(|| stream.peer_addr(), Ok)?;
    Ok((stream, peer))
}

/// Sends the last bytes before a close: `MSG_MORE` holds them back until the close,
/// whose FIN then rides in the same segment, so the client gets one packet instead of
/// two (and on loopback the tracker, which runs both ends' network stack for its sends,
/// does half the work). Returns the bytes taken, like `write`.
pub(crate) fn send_before_close(stream: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a readable slice of `buf.len()` bytes for the duration of the call.
    let n = unsafe {
        libc::send(
            stream.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_MORE | libc::MSG_NOSIGNAL,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn socklen(n: usize) -> libc::socklen_t {
    libc::socklen_t::try_from(n).unwrap_or(libc::socklen_t::MAX)
}

/// The address in `storage` when it is an IPv4 or IPv6 one of the right length.
pub(crate) fn to_socket_addr(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    let len = usize::try_from(len).ok()?;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is larger and at least as aligned.
            let a =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
