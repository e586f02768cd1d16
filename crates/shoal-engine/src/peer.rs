//! One connected peer: a task that reads and decodes wire messages, keeps the
//! peer's state (choke/interest flags, its pieces, our outstanding requests), asks
//! the picker for blocks and hands received blocks to their pieces (`download`), and
//! serves the peer's requests from disk (`upload`). A companion writer task owns the
//! socket's write half.
//!
//! Invariants: every block in `inflight` is registered with the picker under this
//! peer's key; on exit all of them are returned (`PiecePicker::peer_gone`), and the
//! peer's pieces are removed from the availability counts.
//!
//! Only data we asked this peer for is taken: a block in `inflight`, or one in the
//! short `recent` list of requests we gave up on (our cancel, its choke, a snub) that
//! may still be answered. Anything else is discarded, and too much of it closes the
//! connection, so a peer cannot make us start piece buffers or slip blocks into
//! pieces other peers are fetching. Fast extension (BEP 6): a fast peer's choke keeps
//! our requests until it rejects them; a reject we cannot match closes the
//! connection; HaveAll/HaveNone only open the conversation. A late bitfield replaces
//! what we knew (aria2 sends one) at most [`MAX_BITFIELD_REPLACEMENTS`] times.
//!
//! Nothing here waits on the writer without also watching the torrent's cancellation
//! and [`writer::WRITE_TIMEOUT`], so a peer that never reads cannot freeze the task.

mod download;
pub mod handshake;
mod upload;
pub(crate) mod writer;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use shoal_proto::wire::{
    self, decode_message, Bitfield, BlockRef, ExtendedHandshake, Handshake, Message, WireError,
};
use shoal_proto::PeerId;
use thiserror::Error;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::picker::Block;
use crate::rate::RateEstimator;
use crate::torrent::{PeerKey, Shared};
use writer::Out;

/// Why a peer connection ended. Peer errors drop only that peer.
#[derive(Debug, Error)]
pub enum PeerError {
    /// Socket error.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that break the protocol.
    #[error("protocol error: {0}")]
    Wire(#[from] WireError),
    /// The peer broke a rule of the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer said nothing for too long.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// We dialled ourselves.
    #[error("connected to ourselves")]
    SelfConnection,
    /// The torrent asked us to go (shutdown, ban, both seeding).
    #[error("closed: {0}")]
    Closed(&'static str),
}

/// Commands from the torrent to a peer task.
#[derive(Debug)]
pub(crate) enum PeerCmd {
    Have(u32),
    Choke,
    Unchoke,
    Cancel(Block),
    Disconnect(&'static str),
}

/// Counters shared between the peer task, its writer and the torrent (for rates,
/// choking and the API).
#[derive(Debug, Default)]
pub struct PeerStats {
    /// Payload bytes received from the peer that we accepted.
    pub downloaded: AtomicU64,
    /// Payload bytes sent to the peer.
    pub uploaded: AtomicU64,
    /// The peer is interested in us.
    pub peer_interested: AtomicBool,
    /// We choke the peer.
    pub am_choking: AtomicBool,
    /// The peer chokes us.
    pub peer_choking: AtomicBool,
    /// The peer has every piece.
    pub is_seed: AtomicBool,
    /// Pieces the peer has.
    pub pieces: AtomicU64,
    /// We are interested in the peer.
    pub am_interested: AtomicBool,
    /// The peer left our requests unanswered for a long time.
    pub snubbed: AtomicBool,
    /// Recent bytes per second from the peer (set by the torrent driver).
    pub down_rate: AtomicU64,
    /// Recent bytes per second to the peer (set by the torrent driver).
    pub up_rate: AtomicU64,
}

/// Blocks a peer may have queued with us before we refuse more (our `reqq`).
const MAX_UPLOAD_QUEUE: usize = 500;
/// Largest block we serve.
const MAX_REQUEST_LEN: u32 = 128 * 1024;
/// Without any message for this long, the peer is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(150);
/// Requests unanswered for this long go back to the picker.
const SNUB_TIMEOUT: Duration = Duration::from_secs(30);
const KEEPALIVE: Duration = Duration::from_secs(60);
/// Requests we gave up on whose late answers are still taken.
const MAX_RECENT: usize = 512;
/// Blocks we never asked for (or asked for long ago) before the connection is closed.
const MAX_UNSOLICITED: u32 = 64;
/// Bitfields after the first one (each costs a pass over every piece) before the
/// connection is closed.
const MAX_BITFIELD_REPLACEMENTS: u32 = 2;
/// Blocks read from disk for the peer, tagged with how often we had choked it when
/// the read started.
type DiskBlocks = (u64, Vec<(BlockRef, Bytes)>);

pub(crate) struct Peer {
    shared: Arc<Shared>,
    key: PeerKey,
    addr: SocketAddr,
    stats: Arc<PeerStats>,
    fast: bool,
    extended: bool,
    their_pieces: Bitfield,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    inflight: Vec<Block>,
    /// Requests given up on (cancelled, voided by a choke, snubbed), oldest first.
    recent: VecDeque<Block>,
    /// Blocks received that we did not ask for.
    unsolicited: u32,
    /// Nothing but the extension handshake has come yet: the time for a bitfield,
    /// HaveAll or HaveNone.
    intro_open: bool,
    bitfield_replacements: u32,
    /// How many times we choked the peer; disk reads started before a choke are not sent.
    choke_epoch: u64,
    cancel: CancellationToken,
    max_inflight: usize,
    their_reqq: usize,
    upload_queue: VecDeque<BlockRef>,
    reading: bool,
    out_buf: Vec<u8>,
    out: mpsc::Sender<Out>,
    rate: RateEstimator,
    /// Payload bytes received since the download limit was last applied.
    received_unmetered: u64,
    last_recv: Instant,
    last_send: Instant,
    last_block: Instant,
    rng: SmallRng,
    scratch: Vec<Block>,
}

/// Runs a connected, handshaken peer until it disconnects or is told to go.
pub(crate) async fn run(
    shared: Arc<Shared>,
    stream: TcpStream,
    addr: SocketAddr,
    remote: Handshake,
    incoming: bool,
) -> Result<(), PeerError> {
    let _ = stream.set_nodelay(true);
    let (key, stats, cmd_rx) = shared.register_peer(addr, remote.peer_id, incoming)?;
    let (result, pieces) = run_registered(&shared, stream, addr, remote, key, stats, cmd_rx).await;
    shared.unregister_peer(key, remote.peer_id, &pieces);
    if let Err(e) = &result {
        debug!(%addr, "peer closed: {e}");
    }
    result
}

async fn run_registered(
    shared: &Arc<Shared>,
    stream: TcpStream,
    addr: SocketAddr,
    remote: Handshake,
    key: PeerKey,
    stats: Arc<PeerStats>,
    mut cmd_rx: mpsc::UnboundedReceiver<PeerCmd>,
) -> (Result<(), PeerError>, Bitfield) {
    let (mut rd, wr) = stream.into_split();
    let (out_tx, out_rx) = mpsc::channel(256);
    let mut writer = tokio::spawn(writer::run(wr, out_rx, shared.clone(), stats.clone(), addr));
    let num_pieces = shared.meta.info.num_pieces();
    let now = Instant::now();
    let mut peer = Peer {
        shared: shared.clone(),
        key,
        addr,
        stats,
        fast: remote.supports_fast(),
        extended: remote.supports_extended(),
        their_pieces: Bitfield::new(num_pieces),
        am_choking: true,
        am_interested: false,
        peer_choking: true,
        peer_interested: false,
        inflight: Vec::new(),
        recent: VecDeque::new(),
        unsolicited: 0,
        intro_open: true,
        bitfield_replacements: 0,
        choke_epoch: 0,
        cancel: shared.cancel.clone(),
        max_inflight: 32,
        their_reqq: 250,
        upload_queue: VecDeque::new(),
        reading: false,
        out_buf: Vec::with_capacity(4096),
        out: out_tx,
        rate: RateEstimator::new(),
        received_unmetered: 0,
        last_recv: now,
        last_send: now,
        last_block: now,
        rng: SmallRng::from_entropy(),
        scratch: Vec::new(),
    };
    peer.stats.am_choking.store(true, Ordering::Relaxed);
    peer.stats.peer_choking.store(true, Ordering::Relaxed);
    peer.send_intro();
    if let Err(e) = peer.flush().await {
        return (Err(e), peer.their_pieces);
    }

    let max_len = wire::max_message_len(num_pieces);
    let mut rbuf = BytesMut::with_capacity(RECV_BUF);
    let (disk_tx, mut disk_rx) = mpsc::channel::<DiskBlocks>(2);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let cancel = shared.cancel.clone();
    let res = loop {
        tokio::select! {
            r = read_some(&mut rd, &mut rbuf, shared.limits.down_read_cap()) => {
                match r {
                    Ok(0) => break Err(PeerError::Closed("peer closed the connection")),
                    Ok(_) => {}
                    Err(e) => break Err(e.into()),
                }
                peer.last_recv = Instant::now();
                if let Err(e) = peer.drain_messages(&mut rbuf, max_len).await {
                    break Err(e);
                }
            }
            Some(cmd) = cmd_rx.recv() => {
                if let Err(e) = peer.on_command(cmd) { break Err(e); }
            }
            Some((epoch, blocks)) = disk_rx.recv() => {
                peer.reading = false;
                if let Err(e) = peer.send_blocks(epoch, blocks).await { break Err(e); }
            }
            _ = tick.tick() => {
                if let Err(e) = peer.on_tick() { break Err(e); }
            }
            _ = cancel.cancelled() => break Err(PeerError::Closed("torrent stopped")),
        }
        if !peer.reading && !peer.upload_queue.is_empty() {
            peer.start_disk_read(&disk_tx);
        }
        if let Err(e) = peer.flush().await {
            break Err(e);
        }
    };
    peer.release_requests();
    // What the last step queued goes out too: closing a seed-to-seed connection
    // follows our final HAVE, which tells a seeder that we hold a copy (see
    // `choker`).
    let _ = peer.flush().await;
    let pieces = std::mem::replace(&mut peer.their_pieces, Bitfield::new(0));
    drop(peer);
    // The writer flushes what is queued, unless the peer does not read it.
    if tokio::time::timeout(Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    (res, pieces)
}

/// Receive buffer size: blocks are split off it (see `drain_messages`).
const RECV_BUF: usize = 256 * 1024;

/// Reads what is available, at most `cap` bytes (small reads keep a download limit
/// precise; unlimited reads fill the buffer's spare capacity).
async fn read_some(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
    cap: Option<usize>,
) -> std::io::Result<usize> {
    match cap {
        None => rd.read_buf(buf).await,
        Some(n) => (&mut *rd).take(n as u64).read_buf(buf).await,
    }
}

impl Peer {
    fn send(&mut self, msg: Message<'_>) {
        msg.encode(&mut self.out_buf);
    }

    async fn flush(&mut self) -> Result<(), PeerError> {
        if self.out_buf.is_empty() {
            return Ok(());
        }
        let msgs = std::mem::replace(&mut self.out_buf, Vec::with_capacity(512));
        self.last_send = Instant::now();
        self.send_out(Out::Msgs(msgs)).await
    }

    /// Queues `item` for the writer. When the queue is full, waits only as long as
    /// the torrent runs and the writer could still make progress.
    async fn send_out(&self, item: Out) -> Result<(), PeerError> {
        let item = match self.out.try_send(item) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(_)) => return Err(PeerError::Closed("writer stopped")),
            Err(TrySendError::Full(item)) => item,
        };
        tokio::select! {
            r = self.out.send(item) => r.map_err(|_| PeerError::Closed("writer stopped")),
            _ = self.cancel.cancelled() => Err(PeerError::Closed("torrent stopped")),
            _ = tokio::time::sleep(writer::WRITE_TIMEOUT) => {
                Err(PeerError::Timeout("the peer to read our data"))
            }
        }
    }

    /// Bitfield (or HaveAll/HaveNone) and the extension handshake.
    fn send_intro(&mut self) {
        if self.extended {
            let hs = ExtendedHandshake {
                m: Vec::new(),
                v: Some(concat!("Shoal ", env!("CARGO_PKG_VERSION")).to_string()),
                p: Some(self.shared.listen_port),
                reqq: Some(MAX_UPLOAD_QUEUE as u32),
                metadata_size: None,
                yourip: None,
            };
            let payload = hs.encode();
            self.send(Message::Extended {
                id: wire::EXTENDED_HANDSHAKE_ID,
                payload: &payload,
            });
        }
        let have = self.shared.have_snapshot();
        if self.fast && have.is_full() {
            self.send(Message::HaveAll);
        } else if self.fast && have.count_ones() == 0 {
            self.send(Message::HaveNone);
        } else if have.count_ones() > 0 {
            self.send(Message::Bitfield(have.as_bytes()));
        }
    }

    async fn drain_messages(&mut self, rbuf: &mut BytesMut, max_len: u32) -> Result<(), PeerError> {
        while let Some((msg, used)) = decode_message(rbuf, max_len)? {
            if let Message::Piece { index, begin, data } = msg {
                // The block goes on as a slice of the receive buffer, not a copy: the
                // frame is split off and shared until its piece is written.
                let payload = used - data.len();
                let frame = rbuf.split_to(used).freeze();
                self.intro_open = false;
                self.on_piece(index, begin, frame.slice(payload..))?;
                continue;
            }
            self.on_message(msg)?;
            rbuf.advance(used);
        }
        // The download limit delays reading, so TCP slows the sender down.
        if self.received_unmetered > 0 {
            let n = std::mem::take(&mut self.received_unmetered);
            self.shared.limits.wait_down(n).await;
        }
        if rbuf.capacity() - rbuf.len() < 32 * 1024 {
            // Blocks split off keep the old buffer alive: this usually starts a new
            // one (or reuses the old one once all its blocks are written).
            rbuf.reserve(RECV_BUF - rbuf.len().min(RECV_BUF / 2));
        }
        // Top up the request pipeline once per batch of messages, not per block.
        self.fill_requests();
        Ok(())
    }

    fn on_message(&mut self, msg: Message<'_>) -> Result<(), PeerError> {
        let intro = std::mem::replace(
            &mut self.intro_open,
            matches!(msg, Message::KeepAlive | Message::Extended { .. }),
        );
        match msg {
            Message::KeepAlive | Message::Port(_) | Message::SuggestPiece(_) => {}
            Message::Choke => {
                self.peer_choking = true;
                self.stats.peer_choking.store(true, Ordering::Relaxed);
                // A fast peer answers each request (data or reject) even when choking.
                if !self.fast {
                    self.release_requests();
                }
            }
            Message::Unchoke => {
                self.peer_choking = false;
                self.stats.peer_choking.store(false, Ordering::Relaxed);
                self.last_block = Instant::now();
            }
            Message::Interested => self.set_peer_interested(true),
            Message::NotInterested => self.set_peer_interested(false),
            Message::Have(i) => {
                if i >= self.their_pieces.num_pieces() {
                    return Err(PeerError::Protocol(format!(
                        "have for piece {i} out of range"
                    )));
                }
                if !self.their_pieces.get(i) {
                    self.their_pieces.set(i);
                    self.shared.peer_have(i);
                    self.after_pieces_changed();
                }
            }
            Message::Bitfield(bytes) => {
                // BEP 3 wants it first, but some clients (aria2) send it again later;
                // a late one replaces what we knew, a few times.
                if !intro {
                    self.bitfield_replacements += 1;
                    if self.bitfield_replacements > MAX_BITFIELD_REPLACEMENTS {
                        return Err(PeerError::Protocol("too many bitfields".into()));
                    }
                }
                let bf = Bitfield::from_bytes(bytes, self.their_pieces.num_pieces())?;
                self.replace_pieces(bf);
            }
            Message::HaveAll | Message::HaveNone | Message::RejectRequest(_) if !self.fast => {
                return Err(PeerError::Protocol(
                    "fast extension message without fast extension".into(),
                ));
            }
            Message::HaveAll | Message::HaveNone if !intro => {
                return Err(PeerError::Protocol(
                    "have all/have none after the first message (BEP 6)".into(),
                ));
            }
            Message::HaveAll => {
                let bf = Bitfield::full(self.their_pieces.num_pieces());
                self.replace_pieces(bf);
            }
            Message::HaveNone => {}
            Message::Request(r) => self.on_request(r)?,
            Message::Cancel(r) => self.upload_queue.retain(|q| *q != r),
            // `drain_messages` hands blocks on without copying; this copy is for callers
            // that decode messages themselves.
            Message::Piece { index, begin, data } => {
                self.on_piece(index, begin, Bytes::copy_from_slice(data))?
            }
            Message::RejectRequest(r) => self.on_reject(r)?,
            Message::AllowedFast(_) => {}
            Message::Extended { id, payload } => {
                if id == wire::EXTENDED_HANDSHAKE_ID {
                    if let Ok(hs) = ExtendedHandshake::decode(payload) {
                        if let Some(q) = hs.reqq {
                            self.their_reqq = (q as usize).clamp(1, 2000);
                        }
                        if let Some(port) = hs.p.filter(|p| *p != 0) {
                            let listen = SocketAddr::new(self.addr.ip(), port);
                            self.shared.set_listen_addr(self.key, listen);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn replace_pieces(&mut self, bf: Bitfield) {
        self.shared.peer_bitfield_replaced(&self.their_pieces, &bf);
        self.their_pieces = bf;
        self.after_pieces_changed();
    }

    fn set_peer_interested(&mut self, yes: bool) {
        self.peer_interested = yes;
        self.stats.peer_interested.store(yes, Ordering::Relaxed);
        if yes {
            self.shared.peer_became_interested(self.key);
        }
    }

    /// Recomputes interest after the peer's pieces changed, and drops the connection
    /// when both sides are seeds.
    fn after_pieces_changed(&mut self) {
        let ones = self.their_pieces.count_ones();
        self.stats.pieces.store(u64::from(ones), Ordering::Relaxed);
        let seed = self.their_pieces.is_full();
        self.stats.is_seed.store(seed, Ordering::Relaxed);
        self.update_interest();
    }

    fn update_interest(&mut self) {
        let want = self.shared.wants_any(&self.their_pieces);
        if want != self.am_interested {
            self.am_interested = want;
            self.stats.am_interested.store(want, Ordering::Relaxed);
            self.send(if want {
                Message::Interested
            } else {
                Message::NotInterested
            });
        }
    }

    fn on_command(&mut self, cmd: PeerCmd) -> Result<(), PeerError> {
        match cmd {
            PeerCmd::Have(i) => {
                // Seeds get HAVEs too (libtorrent's `send_redundant_have`): a seeder
                // sees from them when its peers hold a copy between them and then
                // keeps fewer upload slots (see `choker`).
                if !self.their_pieces.get(i) || self.their_pieces.is_full() {
                    self.send(Message::Have(i));
                }
                if self.am_interested && !self.shared.wants_any(&self.their_pieces) {
                    self.am_interested = false;
                    self.stats.am_interested.store(false, Ordering::Relaxed);
                    self.send(Message::NotInterested);
                }
                // Both sides seeds now: `on_tick` closes the connection. Not here: the
                // HAVEs of pieces verified just before the last one may still be
                // queued, and a seeder counts our copy only once it has them all.
                // A verified piece may end a hashing backlog that stopped our requests
                // (`Shared::backlogged`); without this the pipe stays empty until the
                // next tick (up to 250 ms), the stall that made Shoal slow whenever
                // hashing fell behind the network.
                self.fill_requests();
            }
            PeerCmd::Choke => {
                if !self.am_choking {
                    self.am_choking = true;
                    self.choke_epoch += 1;
                    self.stats.am_choking.store(true, Ordering::Relaxed);
                    if self.fast {
                        for r in std::mem::take(&mut self.upload_queue) {
                            self.send(Message::RejectRequest(r));
                        }
                    } else {
                        self.upload_queue.clear();
                    }
                    self.send(Message::Choke);
                }
            }
            PeerCmd::Unchoke => {
                if self.am_choking {
                    self.am_choking = false;
                    self.stats.am_choking.store(false, Ordering::Relaxed);
                    self.send(Message::Unchoke);
                }
            }
            PeerCmd::Cancel(b) => {
                if let Some(p) = self.inflight.iter().position(|x| *x == b) {
                    self.inflight.swap_remove(p);
                    self.remember_dropped([b]);
                    self.send(Message::Cancel(BlockRef {
                        index: b.piece,
                        begin: b.begin,
                        length: b.length,
                    }));
                }
            }
            PeerCmd::Disconnect(why) => return Err(PeerError::Closed(why)),
        }
        Ok(())
    }

    fn on_tick(&mut self) -> Result<(), PeerError> {
        let now = Instant::now();
        if now.duration_since(self.last_recv) > IDLE_TIMEOUT {
            return Err(PeerError::Timeout("any message"));
        }
        if !self.inflight.is_empty() && now.duration_since(self.last_block) > SNUB_TIMEOUT {
            debug!(addr = %self.addr, "peer snubbed us; returning its requests");
            self.stats.snubbed.store(true, Ordering::Relaxed);
            self.release_requests();
            self.last_block = now;
        }
        if now.duration_since(self.last_send) > KEEPALIVE {
            self.send(Message::KeepAlive);
        }
        if self.shared.is_seeding() && self.their_pieces.is_full() {
            return Err(PeerError::Closed("both sides are seeds"));
        }
        self.fill_requests();
        Ok(())
    }
}

/// The peer ID from a remote handshake, for logs.
pub fn describe(id: &PeerId) -> String {
    id.client_name()
}
