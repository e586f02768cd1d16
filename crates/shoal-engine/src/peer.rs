//! The tokio side of a peer connection: a thin driver between the socket, the
//! connection's rules ([`crate::conn::Connection`], no IO) and the torrent. It reads
//! into a receive buffer and hands the bytes to the connection, passes the torrent's
//! commands, runs the connection's timers, reads blocks from storage off the runtime
//! when the connection asks, and passes output to a writer task that owns the write
//! half ([`writer`]).
//!
//! The stream is any [`Transport`]: TCP, or TCP after an MSE handshake
//! ([`mse::MseStream`]), uTP, or either as a [`PeerStream`]; the rules do not know
//! which.
//!
//! Nothing here waits on the writer without also watching the torrent's cancellation
//! and the connection's write timeout, so a peer that never reads cannot freeze the
//! task: output waits in the connection, which stops asking for input past a bound
//! and ends the connection when nothing is taken for `WRITE_TIMEOUT` (60 s).

pub mod connect;
pub mod handshake;
pub mod mse;
mod stream;
mod upload;
pub(crate) mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use shoal_proto::wire::{self, Bitfield, Handshake};
use shoal_proto::PeerId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tracing::{debug, Span};

pub(crate) use crate::conn::PeerCmd;
use crate::conn::{ConnConfig, Connection, Transmit};
pub use crate::conn::{PeerError, PeerStats};
use crate::picker::PeerKey;
use crate::torrent::{PeerSource, Shared};
pub use stream::{PeerRead, PeerStream, PeerWrite, TransportKind};
use upload::DiskBlocks;

/// A byte stream to a peer, split into a read half the driver owns and a write half
/// the writer task owns.
pub trait Transport: Send + 'static {
    /// The read half.
    type Read: AsyncRead + Unpin + Send + 'static;
    /// The write half.
    type Write: AsyncWrite + Unpin + Send + 'static;
    /// Splits the stream, after setting whatever options the driver relies on.
    fn split(self) -> (Self::Read, Self::Write);
    /// The payload is encrypted (shown in the peer list).
    fn encrypted(&self) -> bool {
        false
    }
    /// The transport underneath (shown in the peer list).
    fn kind(&self) -> TransportKind {
        TransportKind::Tcp
    }
}

impl Transport for TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;

    fn split(self) -> (Self::Read, Self::Write) {
        // Requests and HAVEs are small and latency-bound; the writer batches data.
        let _ = self.set_nodelay(true);
        self.into_split()
    }
}

/// Output items the writer's queue holds (each a message batch or one block).
const WRITER_QUEUE: usize = 256;
/// Receive buffer size: blocks are split off it (see `Connection::handle_input`).
const RECV_BUF: usize = 256 * 1024;
/// How long the last output (say, our final HAVE) may take to reach the writer's queue
/// when the connection ends, and the writer to send what is queued.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// Runs a connected, handshaken peer until it disconnects or is told to go.
pub(crate) async fn run<T: Transport>(
    shared: Arc<Shared>,
    stream: T,
    addr: SocketAddr,
    remote: Handshake,
    source: PeerSource,
) -> Result<(), PeerError> {
    let link = crate::torrent::Link {
        encrypted: stream.encrypted(),
        transport: stream.kind(),
    };
    let (key, stats, cmd_rx) = shared.register_peer_on(addr, remote.peer_id, source, link)?;
    let (result, pieces) = drive(&shared, stream, addr, &remote, key, stats, cmd_rx).await;
    shared.unregister_peer(key, remote.peer_id, &pieces);
    if let Err(e) = &result {
        debug!(%addr, "peer closed: {e}");
    }
    result
}

async fn drive<T: Transport>(
    shared: &Arc<Shared>,
    stream: T,
    addr: SocketAddr,
    remote: &Handshake,
    key: PeerKey,
    stats: Arc<PeerStats>,
    mut cmd_rx: mpsc::UnboundedReceiver<PeerCmd>,
) -> (Result<(), PeerError>, Bitfield) {
    let (mut rd, wr) = stream.split();
    let (out_tx, out_rx) = mpsc::channel(WRITER_QUEUE);
    // The writer and disk reads log under the peer's span (set where the peer task is
    // spawned), so one peer's story can be filtered out of a busy log.
    let mut writer = shared.tasks.spawn(shared.traced(
        Span::current(),
        writer::run(wr, out_rx, shared.clone(), stats.clone(), addr),
    ));
    let num_pieces = shared.meta.info.num_pieces();
    let cfg = ConnConfig {
        key,
        addr,
        num_pieces,
        fast: remote.supports_fast(),
        extended: remote.supports_extended(),
        rng: SmallRng::from_entropy(),
    };
    let mut conn = Connection::new(cfg, stats, Instant::now());
    conn.start(shared);

    let max_len = wire::max_message_len(num_pieces);
    let mut rbuf = BytesMut::with_capacity(RECV_BUF);
    let (disk_tx, mut disk_rx) = mpsc::channel::<DiskBlocks>(2);
    let cancel = shared.cancel.clone();
    let res = loop {
        if let Err(e) = pass_output(&mut conn, &out_tx) {
            break Err(e);
        }
        if let Some(read) = conn.poll_disk_read() {
            upload::start(shared, read, &disk_tx, addr);
        }
        let deadline = tokio::time::Instant::from_std(conn.poll_timeout());
        let step = tokio::select! {
            r = read_some(&mut rd, &mut rbuf, down_cap(shared)), if conn.wants_input() => {
                match r {
                    Ok(0) => Err(PeerError::Closed("peer closed the connection")),
                    Ok(_) => on_input(shared, &mut conn, &mut rbuf, max_len).await,
                    Err(e) => Err(e.into()),
                }
            }
            permit = out_tx.reserve(), if conn.has_transmit() => match permit {
                Ok(permit) => {
                    if let Some(t) = conn.poll_transmit() {
                        permit.send(t);
                    }
                    Ok(())
                }
                Err(_) => Err(PeerError::Closed("writer stopped")),
            },
            Some(cmd) = cmd_rx.recv() => conn.handle_command(Instant::now(), cmd, shared),
            Some((read, blocks)) = disk_rx.recv() => {
                conn.handle_disk_read(Instant::now(), read, blocks);
                Ok(())
            }
            _ = tokio::time::sleep_until(deadline) => conn.handle_timeout(Instant::now(), shared),
            _ = cancel.cancelled() => Err(PeerError::Closed("torrent stopped")),
        };
        if let Err(e) = step {
            break Err(e);
        }
    };
    let pieces = conn.close(shared);
    // What the last step queued goes out too: closing a seed-to-seed connection
    // follows our final HAVE, which tells a seeder that we hold a copy (see
    // `choker`).
    while let Some(t) = conn.poll_transmit() {
        if !matches!(
            tokio::time::timeout(CLOSE_FLUSH, out_tx.send(t)).await,
            Ok(Ok(()))
        ) {
            break;
        }
    }
    drop(out_tx);
    // The writer flushes what is queued, unless the peer does not read it.
    if tokio::time::timeout(CLOSE_FLUSH, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    (res, pieces)
}

/// Hands the connection's output to the writer as far as its queue takes it.
fn pass_output(conn: &mut Connection, out: &mpsc::Sender<Transmit>) -> Result<(), PeerError> {
    while conn.has_transmit() {
        match out.try_reserve() {
            Ok(permit) => {
                if let Some(t) = conn.poll_transmit() {
                    permit.send(t);
                }
            }
            Err(TrySendError::Full(())) => break,
            Err(TrySendError::Closed(())) => return Err(PeerError::Closed("writer stopped")),
        }
    }
    Ok(())
}

/// Applies what was read, then the download limit: delaying the next read lets TCP
/// slow the sender down.
async fn on_input(
    shared: &Arc<Shared>,
    conn: &mut Connection,
    rbuf: &mut BytesMut,
    max_len: u32,
) -> Result<(), PeerError> {
    conn.handle_input(Instant::now(), rbuf, max_len, shared)?;
    let n = conn.take_received();
    if n > 0 {
        shared.limits.wait_down(n).await;
        shared.own_limits.wait_down(n).await;
    }
    if rbuf.capacity() - rbuf.len() < 32 * 1024 {
        // Blocks split off keep the old buffer alive: this usually starts a new one
        // (or reuses the old one once all its blocks are written).
        rbuf.reserve(RECV_BUF - rbuf.len().min(RECV_BUF / 2));
    }
    Ok(())
}

/// Reads what is available, at most `cap` bytes (small reads keep a download limit
/// precise; unlimited reads fill the buffer's spare capacity).
async fn read_some<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    cap: Option<usize>,
) -> std::io::Result<usize> {
    match cap {
        None => rd.read_buf(buf).await,
        Some(n) => (&mut *rd).take(n as u64).read_buf(buf).await,
    }
}

/// The peer ID from a remote handshake, for logs.
pub fn describe(id: &PeerId) -> String {
    id.client_name()
}

/// The read cap of the session's and the torrent's download limits.
fn down_cap(shared: &Shared) -> Option<usize> {
    crate::rate::min_cap(
        shared.limits.down_read_cap(),
        shared.own_limits.down_read_cap(),
    )
}
