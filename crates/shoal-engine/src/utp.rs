//! uTP (BEP 29) over a UDP socket: the tokio driver of `shoal_proto::utp` connections.
//!
//! A [`UtpEndpoint`] is one task (the driver) owning every connection of one UDP
//! socket. It does not read the socket itself: it takes incoming datagrams from an
//! `mpsc` channel, so the socket can be shared with the DHT and demultiplexed by first
//! byte (DHT messages are bencoded dictionaries, `b'd'`; a uTP packet starts with
//! `type << 4 | 1`). [`spawn_socket_reader`] feeds a socket of its own to the
//! endpoint. Output goes straight to the sockets ([`UtpSockets`]: one per address
//! family at most, the datagram going out on its destination's, with a payload cut
//! to fit IPv6's larger header for an IPv6 peer; see `sockets.rs`), runs of datagrams
//! to one peer in one segmented send where the kernel offers it (`output.rs`).
//!
//! The driver routes each datagram by (remote address, connection id): a SYN for an
//! unknown id opens a connection that [`UtpEndpoint::accept`] hands out (at most
//! [`ACCEPT_QUEUE`] waiting, and [`MAX_CONNECTIONS`] in all; SYNs past that are
//! ignored and the initiator gives up after its retries); any other packet for an
//! unknown connection is answered with `ST_RESET`, except a RESET. After each event on
//! a connection it sends what the connection yields, re-arms its timer in a heap
//! (stale entries are skipped), wakes the stream halves and drops the connection once
//! it is closed. Streams ([`UtpStream`]) share the connection with the driver under a
//! mutex (see `stream.rs`).
//!
//! Tasks: the driver and the optional socket reader are spawned on the caller's
//! `TaskTracker` and end on its cancellation token (or when their input closes).

mod output;
mod sockets;
mod stream;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shoal_proto::utp::{peek_route, Connection, Header, Packet, PacketType, UtpConfig, UtpError};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info_span, trace, Instrument};

use crate::udp::offload;
use output::Output;
pub use sockets::{config_for, UtpSockets, IPV6_EXTRA_HEADER};
use stream::{wake, Key, Shared};
pub use stream::{UtpReadHalf, UtpStream, UtpWriteHalf};

/// Accepted connections waiting for [`UtpEndpoint::accept`].
pub const ACCEPT_QUEUE: usize = 64;
/// Most connections one endpoint holds.
pub const MAX_CONNECTIONS: usize = 2048;
/// Datagrams queued between [`spawn_socket_reader`] and the driver.
pub const INCOMING_QUEUE: usize = 1024;
/// Datagrams taken from the queue before the driver sends what they caused.
const RECV_BATCH: usize = 64;

/// Why [`UtpEndpoint::connect`] failed.
#[derive(Debug, Error)]
pub enum UtpConnectError {
    /// The handshake failed (no answer, or a reset).
    #[error(transparent)]
    Connection(#[from] UtpError),
    /// The endpoint holds [`MAX_CONNECTIONS`] already.
    #[error("too many uTP connections ({MAX_CONNECTIONS}); close some first")]
    TooMany,
    /// The endpoint's driver has stopped (shutdown).
    #[error("uTP endpoint shut down")]
    Closed,
}

type ConnectReply = oneshot::Sender<Result<UtpStream, UtpConnectError>>;

enum Command {
    Connect {
        addr: SocketAddr,
        reply: ConnectReply,
    },
}

/// uTP connections over one UDP socket. Cheap to share behind an `Arc`.
pub struct UtpEndpoint {
    cmds: mpsc::Sender<Command>,
    sockets: UtpSockets,
    accepted: tokio::sync::Mutex<mpsc::Receiver<(UtpStream, SocketAddr)>>,
}

impl UtpEndpoint {
    /// Starts the driver on `tracker`: datagrams for uTP come in on `incoming` (from
    /// every socket), output goes to the socket of the destination's family in
    /// `sockets`; it stops on `cancel` or when `incoming` closes. `config` is for IPv4
    /// peers; IPv6 peers get it with a smaller payload ([`config_for`]).
    pub fn new(
        sockets: UtpSockets,
        incoming: mpsc::Receiver<(SocketAddr, Bytes)>,
        config: UtpConfig,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Self {
        let (cmd_tx, cmds) = mpsc::channel(64);
        let (accept_tx, accepted) = mpsc::channel(ACCEPT_QUEUE);
        let (flush_tx, flush_rx) = mpsc::unbounded_channel();
        let span = info_span!("utp", local = ?sockets.local_addrs());
        let driver = Driver {
            output: Output::new(sockets.primary()),
            sockets: sockets.clone(),
            incoming,
            cmds,
            flush_tx,
            flush_rx,
            accept_tx,
            config,
            cancel,
            conns: HashMap::new(),
            timers: BinaryHeap::new(),
            rng: SmallRng::from_entropy(),
            out: Vec::new(),
            dirty: Vec::new(),
        };
        tracker.spawn(driver.run().instrument(span));
        UtpEndpoint {
            cmds: cmd_tx,
            sockets,
            accepted: tokio::sync::Mutex::new(accepted),
        }
    }

    /// Whether the endpoint has a socket of `addr`'s family (else a connect to it
    /// cannot get through).
    pub fn reaches(&self, addr: &SocketAddr) -> bool {
        self.sockets.reaches(addr)
    }

    /// Opens a connection to `addr`; fails after the SYN's retries (15 s by default).
    pub async fn connect(&self, addr: SocketAddr) -> Result<UtpStream, UtpConnectError> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Command::Connect { addr, reply })
            .await
            .map_err(|_| UtpConnectError::Closed)?;
        rx.await.map_err(|_| UtpConnectError::Closed)?
    }

    /// The next incoming connection; `None` once the endpoint has shut down.
    pub async fn accept(&self) -> Option<(UtpStream, SocketAddr)> {
        self.accepted.lock().await.recv().await
    }
}

/// Reads `socket` into `tx` until `cancel` or until the receiver is gone: for an
/// endpoint with a socket of its own.
pub fn spawn_socket_reader(
    socket: Arc<UdpSocket>,
    tx: mpsc::Sender<(SocketAddr, Bytes)>,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) {
    let span = info_span!("utp_socket", local = ?socket.local_addr().ok());
    // Several datagrams per read where the kernel coalesces them.
    offload::enable_gro(&socket);
    let task = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let received = tokio::select! {
                _ = cancel.cancelled() => return,
                r = offload::recv_from(&socket, &mut buf) => r,
            };
            match received {
                Ok((n, addr, stride)) => {
                    let all = Bytes::copy_from_slice(&buf[..n]);
                    for range in offload::datagrams(n, stride) {
                        if tx.send((addr, all.slice(range))).await.is_err() {
                            return;
                        }
                    }
                }
                // ICMP errors for earlier sends surface here on some systems; the
                // socket itself is fine.
                Err(e) => debug!("uTP socket receive: {e}"),
            }
        }
    };
    tracker.spawn(task.instrument(span));
}

struct Entry {
    shared: Arc<Shared>,
    /// The instant this connection's live timer-heap entry is for.
    timer: Option<Instant>,
    /// Set until the handshake ends, for a connection we opened.
    connecting: Option<ConnectReply>,
}

struct Driver {
    sockets: UtpSockets,
    output: Output,
    incoming: mpsc::Receiver<(SocketAddr, Bytes)>,
    cmds: mpsc::Receiver<Command>,
    flush_tx: mpsc::UnboundedSender<Key>,
    flush_rx: mpsc::UnboundedReceiver<Key>,
    accept_tx: mpsc::Sender<(UtpStream, SocketAddr)>,
    config: UtpConfig,
    cancel: CancellationToken,
    conns: HashMap<Key, Entry>,
    timers: BinaryHeap<Reverse<(Instant, Key)>>,
    rng: SmallRng,
    /// Datagrams to send once the current event is handled.
    out: Vec<(SocketAddr, Vec<u8>)>,
    /// Connections that took packets in the current batch (at most `RECV_BATCH`).
    dirty: Vec<Key>,
}

fn now() -> Instant {
    // Through tokio's clock, so tests with paused time drive the connections too.
    tokio::time::Instant::now().into_std()
}

impl Driver {
    async fn run(mut self) {
        let mut cmds_open = true;
        loop {
            let next_timer = self.timers.peek().map(|Reverse((t, _))| *t);
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                d = self.incoming.recv() => {
                    let Some((addr, bytes)) = d else { break };
                    self.on_datagram(addr, &bytes);
                    for _ in 1..RECV_BATCH {
                        let Ok((addr, bytes)) = self.incoming.try_recv() else { break };
                        self.on_datagram(addr, &bytes);
                    }
                    // One service per connection per batch: one ack for many packets.
                    for key in std::mem::take(&mut self.dirty) {
                        self.service(key);
                    }
                }
                c = self.cmds.recv(), if cmds_open => match c {
                    Some(Command::Connect { addr, reply }) => self.connect(addr, reply),
                    None => cmds_open = false,
                },
                Some(key) = self.flush_rx.recv() => self.service(key),
                _ = sleep_until(next_timer), if next_timer.is_some() => self.on_timers(),
            }
            self.send_out().await;
        }
        // Wake every stream: they see the endpoint gone (the flush queue is closed).
        drop(self.flush_rx);
        for e in self.conns.values() {
            let mut st = e.shared.lock();
            wake(&mut st.read_waker);
            wake(&mut st.write_waker);
        }
    }

    async fn send_out(&mut self) {
        self.output.send(&self.sockets, &mut self.out).await;
    }

    fn connect(&mut self, addr: SocketAddr, reply: ConnectReply) {
        // Keyed as the replies will come in (a mapped address is IPv4 on the wire).
        let addr = self.sockets.route_addr(addr);
        if self.conns.len() >= MAX_CONNECTIONS {
            let _ = reply.send(Err(UtpConnectError::TooMany));
            return;
        }
        // A random id, unused towards this address (the address space is 65536 wide;
        // a handful of tries find a free one unless MAX_CONNECTIONS go to one peer).
        let Some(id) = (0..64).map(|_| self.rng.gen::<u16>()).find(|id| {
            !self.conns.contains_key(&(addr, *id))
                && !self.conns.contains_key(&(addr, id.wrapping_add(1)))
        }) else {
            let _ = reply.send(Err(UtpConnectError::TooMany));
            return;
        };
        let key = (addr, id);
        let conn = Connection::connect(config_for(&self.config, &addr), now(), id);
        let shared = Shared::new(key, conn, self.flush_tx.clone());
        self.conns.insert(
            key,
            Entry {
                shared,
                timer: None,
                connecting: Some(reply),
            },
        );
        self.service(key);
    }

    fn on_datagram(&mut self, addr: SocketAddr, bytes: &[u8]) {
        let Some((kind, id)) = peek_route(bytes) else {
            return;
        };
        trace_packet("in", addr, bytes);
        let key = match kind {
            // A SYN carries the initiator's receive id; we receive on id + 1.
            PacketType::Syn => (addr, id.wrapping_add(1)),
            // A RESET carries the id the resetting side got: our send id, one off our
            // receive id either way.
            PacketType::Reset if !self.conns.contains_key(&(addr, id)) => {
                let (up, down) = ((addr, id.wrapping_add(1)), (addr, id.wrapping_sub(1)));
                if self.conns.contains_key(&up) {
                    up
                } else {
                    down
                }
            }
            _ => (addr, id),
        };
        let now = now();
        if let Some(e) = self.conns.get(&key) {
            e.shared.lock().conn.handle_packet(now, bytes);
            if !self.dirty.contains(&key) {
                self.dirty.push(key);
            }
        } else if kind == PacketType::Syn {
            self.accept(key, now, bytes);
        } else if kind != PacketType::Reset {
            self.out.push((addr, reset_packet(id, &mut self.rng)));
        }
    }

    fn accept(&mut self, key: Key, now: Instant, syn: &[u8]) {
        if self.conns.len() >= MAX_CONNECTIONS {
            return;
        }
        let Ok(permit) = self.accept_tx.try_reserve() else {
            return;
        };
        let config = config_for(&self.config, &key.0);
        let Ok(conn) = Connection::accept(config, now, syn, self.rng.gen()) else {
            return;
        };
        let shared = Shared::new(key, conn, self.flush_tx.clone());
        permit.send((UtpStream::new(shared.clone()), key.0));
        self.conns.insert(
            key,
            Entry {
                shared,
                timer: None,
                connecting: None,
            },
        );
        self.service(key);
    }

    fn on_timers(&mut self) {
        let now = now();
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(e) = self.conns.get_mut(&key) else {
                continue;
            };
            if e.timer != Some(at) {
                continue; // re-armed since
            }
            e.timer = None;
            e.shared.lock().conn.handle_timeout(now);
            self.service(key);
        }
    }

    /// After anything happened to connection `key`: send its output, wake its stream,
    /// re-arm its timer, finish a connect, drop it once closed.
    fn service(&mut self, key: Key) {
        let Some(e) = self.conns.get_mut(&key) else {
            return;
        };
        let now = now();
        let mut st = e.shared.lock();
        st.flush_queued = false;
        if !st.reader_alive {
            // Nobody reads: take the data so the window stays open and the peer's FIN
            // gets through.
            let mut sink = [0u8; 16 * 1024];
            while st.conn.read(&mut sink) > 0 {}
        }
        while let Some(p) = st.conn.poll_transmit(now) {
            trace_packet("out", key.0, &p);
            self.out.push((key.0, p));
        }
        let closed = st.conn.is_closed();
        if st.conn.readable() > 0 || st.conn.at_eof() || closed {
            wake(&mut st.read_waker);
        }
        if st.conn.send_capacity() > 0 || closed {
            wake(&mut st.write_waker);
        }
        let timer = st.conn.poll_timeout();
        let connected = st.conn.is_connected();
        let error = st.conn.error().cloned();
        drop(st);
        if timer != e.timer {
            e.timer = timer;
            if let Some(t) = timer {
                self.timers.push(Reverse((t, key)));
            }
        }
        if connected || closed {
            if let Some(reply) = e.connecting.take() {
                let result = match error {
                    Some(err) => Err(UtpConnectError::Connection(err)),
                    None if connected => Ok(UtpStream::new(e.shared.clone())),
                    None => Err(UtpConnectError::Closed),
                };
                let _ = reply.send(result);
            }
        }
        if closed {
            self.conns.remove(&key);
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    }
}

/// Logs one datagram's header at trace level (`SHOAL_LOG=shoal_engine::utp=trace`): the
/// packet trace to diagnose a transfer by. A datagram routed as uTP that does not decode
/// is worth a debug line at any rate: the connection drops it unseen.
fn trace_packet(dir: &str, addr: SocketAddr, bytes: &[u8]) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    match Packet::decode(bytes) {
        Ok(p) => {
            let h = p.header;
            trace!(
                dir, %addr, kind = ?h.kind, id = h.conn_id, seq = h.seq_nr, ack = h.ack_nr,
                wnd = h.wnd_size, ts = h.timestamp_us, diff = h.timestamp_diff_us,
                sack = ?p.sack, len = p.payload.len(), "uTP packet"
            );
        }
        Err(e) => debug!(dir, %addr, len = bytes.len(), "malformed uTP packet: {e}"),
    }
}

/// An `ST_RESET` answering a packet with connection id `id` from a peer we hold no
/// connection for.
fn reset_packet(id: u16, rng: &mut SmallRng) -> Vec<u8> {
    let header = Header {
        kind: PacketType::Reset,
        conn_id: id,
        timestamp_us: 0,
        timestamp_diff_us: 0,
        wnd_size: 0,
        seq_nr: rng.gen(),
        ack_nr: 0,
    };
    let mut out = Vec::with_capacity(20);
    Packet {
        header,
        sack: None,
        payload: &[],
    }
    .encode(&mut out);
    out
}
