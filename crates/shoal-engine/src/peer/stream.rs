//! [`PeerStream`]: a peer connection over TCP or uTP as one type, so the handshake
//! paths (plaintext or MSE, incoming or dialled) are written once for both.
//!
//! Each method forwards to the variant; writes keep TCP's vectored path (the peer
//! writer gathers a batch into one `writev`), while uTP copies the slices into its
//! send buffer one after the other.

use std::fmt;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::Transport;
use crate::utp::{UtpReadHalf, UtpStream, UtpWriteHalf};

/// Which transport carries a peer connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// TCP.
    #[default]
    Tcp,
    /// uTP (BEP 29) over UDP.
    Utp,
}

impl TransportKind {
    /// `"tcp"` or `"utp"`, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Tcp => "tcp",
            TransportKind::Utp => "utp",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connected peer stream: TCP or uTP.
#[derive(Debug)]
pub enum PeerStream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A uTP connection.
    Utp(UtpStream),
}

/// The read half of a [`PeerStream`].
#[derive(Debug)]
pub enum PeerRead {
    /// TCP.
    Tcp(OwnedReadHalf),
    /// uTP.
    Utp(UtpReadHalf),
}

/// The write half of a [`PeerStream`].
#[derive(Debug)]
pub enum PeerWrite {
    /// TCP.
    Tcp(OwnedWriteHalf),
    /// uTP.
    Utp(UtpWriteHalf),
}

impl Transport for PeerStream {
    type Read = PeerRead;
    type Write = PeerWrite;

    fn split(self) -> (PeerRead, PeerWrite) {
        match self {
            PeerStream::Tcp(s) => {
                let (r, w) = Transport::split(s);
                (PeerRead::Tcp(r), PeerWrite::Tcp(w))
            }
            PeerStream::Utp(s) => {
                let (r, w) = s.into_split();
                (PeerRead::Utp(r), PeerWrite::Utp(w))
            }
        }
    }

    fn kind(&self) -> TransportKind {
        match self {
            PeerStream::Tcp(_) => TransportKind::Tcp,
            PeerStream::Utp(_) => TransportKind::Utp,
        }
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            PeerStream::Utp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Tcp(s) => Pin::new(s).poll_write(cx, b),
            PeerStream::Utp(s) => Pin::new(s).poll_write(cx, b),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            PeerStream::Utp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            PeerStream::Utp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for PeerRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerRead::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            PeerRead::Utp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PeerWrite {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerWrite::Tcp(s) => Pin::new(s).poll_write(cx, b),
            PeerWrite::Utp(s) => Pin::new(s).poll_write(cx, b),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerWrite::Tcp(s) => Pin::new(s).poll_write_vectored(cx, slices),
            PeerWrite::Utp(s) => Pin::new(s).poll_write_vectored(cx, slices),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            PeerWrite::Tcp(s) => s.is_write_vectored(),
            PeerWrite::Utp(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerWrite::Tcp(s) => Pin::new(s).poll_flush(cx),
            PeerWrite::Utp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerWrite::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            PeerWrite::Utp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
