//! [`UtpStream`]: one uTP connection as a tokio byte stream.
//!
//! The connection's state machine lives behind a mutex shared with the endpoint's
//! driver task (the quinn layout): the stream reads and writes the connection's
//! buffers directly and asks the driver to flush; the driver feeds it datagrams and
//! timers, sends what it yields and wakes the stream. The mutex is `std`'s, held for a
//! copy and never across an `.await`.
//!
//! Dropping the write half sends a FIN after the queued data (`poll_shutdown` does
//! the same earlier); dropping the read half makes the driver discard what arrives, so
//! the peer's data and FIN are still acknowledged and the connection can finish.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Waker};

use shoal_proto::utp::{Connection, UtpError, UtpStats};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use crate::peer::{Transport, TransportKind};

/// A connection's routing key at its endpoint: remote address and our receive id.
pub(super) type Key = (SocketAddr, u16);

/// What the stream halves and the driver share.
#[derive(Debug)]
pub(super) struct ConnState {
    pub(super) conn: Connection,
    pub(super) read_waker: Option<Waker>,
    pub(super) write_waker: Option<Waker>,
    pub(super) reader_alive: bool,
    pub(super) writer_alive: bool,
    /// A flush request for this connection is in the driver's queue.
    pub(super) flush_queued: bool,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) key: Key,
    pub(super) state: Mutex<ConnState>,
    /// The driver's flush queue; at most one entry per connection (`flush_queued`).
    pub(super) flush: mpsc::UnboundedSender<Key>,
}

impl Shared {
    pub(super) fn new(key: Key, conn: Connection, flush: mpsc::UnboundedSender<Key>) -> Arc<Self> {
        Arc::new(Shared {
            key,
            state: Mutex::new(ConnState {
                conn,
                read_waker: None,
                write_waker: None,
                reader_alive: true,
                writer_alive: true,
                flush_queued: false,
            }),
            flush,
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, ConnState> {
        // A panic while holding the lock leaves plain buffers behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the driver to send what the connection has to send.
    fn request_flush(&self, st: &mut ConnState) {
        if !st.flush_queued {
            st.flush_queued = true;
            // The driver is gone only at shutdown; then nothing needs sending.
            let _ = self.flush.send(self.key);
        }
    }
}

/// Wakes the task waiting in `waker`, if one is.
pub(super) fn wake(waker: &mut Option<Waker>) {
    if let Some(w) = waker.take() {
        w.wake();
    }
}

fn io_error(e: &UtpError) -> io::Error {
    let kind = match e {
        UtpError::Reset => io::ErrorKind::ConnectionReset,
        UtpError::ConnectTimedOut | UtpError::TimedOut | UtpError::Idle => io::ErrorKind::TimedOut,
        UtpError::Malformed(_) | UtpError::NotSyn => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e.clone())
}

fn endpoint_gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "uTP endpoint shut down")
}

fn poll_read(shared: &Shared, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
    let mut st = shared.lock();
    // Only as much of the buffer as there is to read: zeroing all of a large
    // uninitialised read buffer on every read cost more than the copy.
    let want = st.conn.readable().min(buf.remaining());
    let n = st.conn.read(buf.initialize_unfilled_to(want));
    if n > 0 {
        buf.advance(n);
        // Reading may reopen a window we advertised as closed, which the peer must
        // hear about; otherwise the next ack carries the new window anyway, and a
        // wake-up of the driver per read would be wasted.
        if st.conn.ack_pending() {
            shared.request_flush(&mut st);
        }
        return Poll::Ready(Ok(()));
    }
    if let Some(e) = st.conn.error() {
        return Poll::Ready(Err(io_error(e)));
    }
    if st.conn.at_eof() || buf.remaining() == 0 {
        return Poll::Ready(Ok(()));
    }
    if st.conn.is_closed() || shared.flush.is_closed() {
        return Poll::Ready(Err(endpoint_gone()));
    }
    st.read_waker = Some(cx.waker().clone());
    Poll::Pending
}

fn poll_write(shared: &Shared, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
    let mut st = shared.lock();
    if let Some(e) = st.conn.error() {
        return Poll::Ready(Err(io_error(e)));
    }
    if st.conn.is_closed() || shared.flush.is_closed() {
        return Poll::Ready(Err(endpoint_gone()));
    }
    if data.is_empty() {
        return Poll::Ready(Ok(0));
    }
    if st.conn.is_write_closed() {
        return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
    }
    let n = st.conn.write(data);
    if n == 0 {
        st.write_waker = Some(cx.waker().clone());
        return Poll::Pending;
    }
    shared.request_flush(&mut st);
    Poll::Ready(Ok(n))
}

/// Copies as many of `slices` as the send buffer takes under one lock (the peer
/// writer hands over a batch of messages and blocks at once).
fn poll_write_vectored(
    shared: &Shared,
    cx: &mut Context<'_>,
    slices: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let Some(first) = slices.iter().position(|s| !s.is_empty()) else {
        return Poll::Ready(Ok(0));
    };
    let n = ready!(poll_write(shared, cx, &slices[first]))?;
    if n < slices[first].len() {
        return Poll::Ready(Ok(n));
    }
    let mut st = shared.lock();
    let mut total = n;
    for s in &slices[first + 1..] {
        let k = st.conn.write(s);
        total += k;
        if k < s.len() {
            break;
        }
    }
    // The driver may have served the first slice's flush request already.
    shared.request_flush(&mut st);
    Poll::Ready(Ok(total))
}

fn shutdown(shared: &Shared) {
    let mut st = shared.lock();
    st.conn.close();
    shared.request_flush(&mut st);
}

/// A uTP connection as a byte stream: [`AsyncRead`], [`AsyncWrite`], and a
/// [`Transport`] for the peer driver.
#[derive(Debug)]
pub struct UtpStream {
    read: UtpReadHalf,
    write: UtpWriteHalf,
}

impl UtpStream {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        UtpStream {
            read: UtpReadHalf(shared.clone()),
            write: UtpWriteHalf(shared),
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.read.0.key.0
    }

    /// The connection's counters and congestion-control state.
    pub fn stats(&self) -> UtpStats {
        self.read.0.lock().conn.stats()
    }

    /// Splits into independently owned halves.
    pub fn into_split(self) -> (UtpReadHalf, UtpWriteHalf) {
        (self.read, self.write)
    }
}

/// The read half of a [`UtpStream`].
#[derive(Debug)]
pub struct UtpReadHalf(Arc<Shared>);

/// The write half of a [`UtpStream`]; dropping it closes our direction (FIN).
#[derive(Debug)]
pub struct UtpWriteHalf(Arc<Shared>);

impl Drop for UtpReadHalf {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.reader_alive = false;
        self.0.request_flush(&mut st);
    }
}

impl Drop for UtpWriteHalf {
    fn drop(&mut self) {
        self.0.lock().writer_alive = false;
        shutdown(&self.0);
    }
}

impl AsyncRead for UtpReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read(&self.0, cx, buf)
    }
}

impl AsyncWrite for UtpWriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write(&self.0, cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_write_vectored(&self.0, cx, slices)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written bytes are with the connection, which sends as its window allows.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        shutdown(&self.0);
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for UtpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for UtpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.write).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_shutdown(cx)
    }
}

impl Transport for UtpStream {
    type Read = UtpReadHalf;
    type Write = UtpWriteHalf;

    fn split(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Utp
    }
}
