//! The stream after an MSE handshake: read and write halves over the transport's
//! halves (TCP or uTP) that apply RC4
//! (when it was selected) and first yield the payload that arrived with the handshake.
//!
//! Writing: `poll_write` encrypts the caller's bytes into the half's own buffer and
//! reports them taken, then pushes the buffer to the socket. A keystream byte is thus
//! used exactly once, however little of a buffer the socket takes: encrypted bytes are
//! never handed back to be encrypted again. The buffer is drained before more is
//! taken, and by `poll_flush` (which callers must use before waiting for other input,
//! as with any buffered writer; the peer writer flushes after each batch).
//! Under plaintext the halves pass everything straight to the transport's halves.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use shoal_proto::mse::{Established, Method, Rc4};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::peer::{Transport, TransportKind};

/// Most bytes encrypted ahead of the socket (a writer batch is 128 KiB).
const WRITE_BUF: usize = 128 * 1024;

/// A connection (TCP unless said otherwise) after an MSE handshake.
pub struct MseStream<S: Transport = TcpStream> {
    rd: MseRead<S::Read>,
    wr: MseWrite<S::Write>,
    kind: TransportKind,
}

impl<S: Transport> MseStream<S> {
    pub(crate) fn new(stream: S, est: Established) -> MseStream<S> {
        let kind = stream.kind();
        // The transport's split sets its options (TCP: no Nagle; the writer batches).
        let (r, w) = stream.split();
        let rc4 = est.method == Method::Rc4;
        MseStream {
            kind,
            rd: MseRead {
                inner: r,
                cipher: rc4.then_some(est.decrypt),
                pending: est.rest,
                pos: 0,
            },
            wr: MseWrite {
                inner: w,
                cipher: rc4.then_some(est.encrypt),
                buf: Vec::new(),
                sent: 0,
            },
        }
    }

    /// The payload is RC4-encrypted (not only the handshake obfuscated).
    pub fn is_rc4(&self) -> bool {
        self.wr.cipher.is_some()
    }
}

impl<S: Transport> Transport for MseStream<S> {
    type Read = MseRead<S::Read>;
    type Write = MseWrite<S::Write>;

    fn split(self) -> (Self::Read, Self::Write) {
        (self.rd, self.wr)
    }

    fn encrypted(&self) -> bool {
        self.is_rc4()
    }

    fn kind(&self) -> TransportKind {
        self.kind
    }
}

/// The read half: the handshake's leftover payload, then the socket, decrypted.
pub struct MseRead<R> {
    inner: R,
    cipher: Option<Rc4>,
    /// Payload that arrived with the handshake (already decrypted).
    pending: Vec<u8>,
    pos: usize,
}

impl<R: AsyncRead + Unpin> AsyncRead for MseRead<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if let Some(left) = me.pending.get(me.pos..).filter(|l| !l.is_empty()) {
            let n = left.len().min(buf.remaining());
            buf.put_slice(&left[..n]);
            me.pos += n;
            if me.pos == me.pending.len() {
                me.pending = Vec::new();
                me.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut me.inner).poll_read(cx, buf))?;
        if let Some(c) = &mut me.cipher {
            c.apply(&mut buf.filled_mut()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

/// The write half: encrypts into its buffer, then sends the buffer.
pub struct MseWrite<W> {
    inner: W,
    cipher: Option<Rc4>,
    /// Encrypted bytes not yet taken by the socket start at `sent`.
    buf: Vec<u8>,
    sent: usize,
}

impl<W: AsyncWrite + Unpin> MseWrite<W> {
    /// Sends what is encrypted and waiting; ready when the buffer is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.buf.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Encrypts as much of `slices` as the buffer takes (it is empty) and tries to
    /// send it; returns the bytes taken.
    fn take(&mut self, cx: &mut Context<'_>, slices: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let Some(cipher) = &mut self.cipher else {
            return Poll::Ready(Ok(0));
        };
        for s in slices {
            let n = s.len().min(WRITE_BUF - self.buf.len());
            if n == 0 {
                continue;
            }
            let start = self.buf.len();
            self.buf.resize(start + n, 0);
            cipher.apply_into(&s[..n], &mut self.buf[start..]);
        }
        let taken = self.buf.len();
        // The bytes are ours now; whether the socket takes them yet does not matter
        // (a pending write is finished by the next write or flush), but an error does.
        if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(taken))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for MseWrite<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.cipher.is_none() {
            return Pin::new(&mut me.inner).poll_write(cx, data);
        }
        ready!(me.poll_drain(cx))?;
        me.take(cx, &[IoSlice::new(data)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.cipher.is_none() {
            return Pin::new(&mut me.inner).poll_write_vectored(cx, slices);
        }
        ready!(me.poll_drain(cx))?;
        me.take(cx, slices)
    }

    fn is_write_vectored(&self) -> bool {
        // Encrypting gathers the slices into one buffer either way.
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

/// The unsplit stream reads and writes like its halves (for the BitTorrent handshake
/// before the driver splits it).
impl<S: Transport> AsyncRead for MseStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().rd).poll_read(cx, buf)
    }
}

impl<S: Transport> AsyncWrite for MseStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().wr).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().wr).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().wr).poll_shutdown(cx)
    }
}
