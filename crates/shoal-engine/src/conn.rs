//! The rules of one peer connection, with no IO, no clock and no tokio: a state
//! machine in the shape of quinn-proto's `Connection`. Bytes and time go in, bytes
//! and disk-read requests come out, and timers are deadlines it is asked about:
//!
//! - [`Connection::handle_input`] decodes what the peer sent (the wire codec of
//!   `shoal-proto`) and applies the rules of each message;
//! - [`Connection::handle_command`] takes the torrent's orders (HAVE, choke, cancel);
//! - [`Connection::handle_timeout`] runs the timers at the deadline given by
//!   [`Connection::poll_timeout`] (idle, snub, keep-alive, a peer that stops reading);
//! - [`Connection::poll_transmit`] hands out framed bytes in order, and
//!   [`Connection::poll_disk_read`] / [`Connection::handle_disk_read`] serve the
//!   peer's requests from storage that the driver reads.
//!
//! The torrent is reached through the [`Swarm`] trait (picker, our pieces, received
//! blocks); the engine implements it over the torrent's shared state, tests over the
//! same or their own. The tokio task in [`crate::peer`] is a thin driver between
//! socket, this machine and the torrent; `conn/tests.rs` wires machines together in
//! memory on simulated time.
//!
//! Rules and invariants:
//! - Every block in `inflight` is registered with the picker under this peer's key; on
//!   [`Connection::close`] all of them are returned and the peer's pieces leave the
//!   availability counts (the driver passes them to `unregister_peer`).
//! - Only data we asked this peer for is taken: a block in `inflight`, or one in the
//!   short `recent` list of requests we gave up on (our cancel, its choke, a snub) that
//!   may still be answered. Anything else is discarded, and more than
//!   [`MAX_UNSOLICITED`] such blocks close the connection, so a peer cannot slip blocks
//!   into pieces other peers are fetching.
//! - Fast extension (BEP 6): a fast peer's choke keeps our requests until it rejects
//!   them; a reject we cannot match closes the connection; HaveAll/HaveNone only open
//!   the conversation, and need the extension. A late bitfield replaces what we knew
//!   (aria2 sends one) at most [`MAX_BITFIELD_REPLACEMENTS`] times.
//! - Requests must lie within their piece and be at most [`MAX_REQUEST_LEN`]; at most
//!   [`MAX_UPLOAD_QUEUE`] wait (a fast peer gets rejects beyond that).
//! - Output that waits more than [`WRITE_TIMEOUT`] to be taken means the peer stopped
//!   reading; while more than [`MAX_TRANSMIT_BYTES`] wait, [`Connection::wants_input`]
//!   is false, so a peer that floods requests but never reads cannot grow our memory.

mod download;
mod extension;
mod swarm;
mod upload;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use rand::rngs::SmallRng;
use shoal_proto::wire::{decode_message, Bitfield, BlockRef, Message, WireError};
use thiserror::Error;

use crate::picker::{Block, PeerKey};
use crate::rate::RateEstimator;
pub(crate) use extension::Extensions;
pub(crate) use swarm::Swarm;

/// Why a peer connection ended. Peer errors drop only that peer.
#[derive(Debug, Error)]
pub enum PeerError {
    /// Socket error.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The MSE (encryption) handshake failed.
    #[error("encryption handshake: {0}")]
    Encryption(#[from] shoal_proto::mse::MseError),
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

/// Commands from the torrent to a peer connection.
#[derive(Debug)]
pub(crate) enum PeerCmd {
    Have(u32),
    Choke,
    Unchoke,
    Cancel(Block),
    Disconnect(&'static str),
}

/// Counters shared between the connection, its writer and the torrent (for rates,
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

/// Something to send to the peer, in order.
#[derive(Debug)]
pub(crate) enum Transmit {
    /// Already-framed control messages (possibly several).
    Msgs(Vec<u8>),
    /// A `piece` message: header plus the block's bytes (sent without another copy).
    Block { header: [u8; 13], data: Bytes },
}

impl Transmit {
    fn len(&self) -> usize {
        match self {
            Transmit::Msgs(m) => m.len(),
            Transmit::Block { header, data } => header.len() + data.len(),
        }
    }
}

/// Blocks to read from storage for the peer (see [`Connection::poll_disk_read`]).
#[derive(Debug, Default)]
pub(crate) struct DiskRead {
    /// How often we had choked the peer when the read was asked for; blocks read
    /// before a later choke are not sent.
    pub epoch: u64,
    pub blocks: Vec<BlockRef>,
}

/// Blocks a peer may have queued with us before we refuse more (our `reqq`).
pub(crate) const MAX_UPLOAD_QUEUE: usize = 500;
/// Largest block we serve.
pub(crate) const MAX_REQUEST_LEN: u32 = 128 * 1024;
/// Without any message for this long, the peer is gone.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(150);
/// Requests unanswered for this long go back to the picker.
pub(crate) const SNUB_TIMEOUT: Duration = Duration::from_secs(30);
/// We send a keep-alive after this long without sending anything.
pub(crate) const KEEPALIVE: Duration = Duration::from_secs(60);
/// Output not taken for this long means the peer stopped reading.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the periodic rules run (refilling requests, timers).
pub(crate) const TICK: Duration = Duration::from_millis(250);
/// Requests we gave up on whose late answers are still taken.
const MAX_RECENT: usize = 512;
/// Blocks we never asked for (or asked for long ago) before the connection is closed.
pub(crate) const MAX_UNSOLICITED: u32 = 64;
/// Bitfields after the first one (each costs a pass over every piece) before the
/// connection is closed.
pub(crate) const MAX_BITFIELD_REPLACEMENTS: u32 = 2;
/// Output bytes waiting to be taken beyond which no more input is read.
pub(crate) const MAX_TRANSMIT_BYTES: usize = 4 << 20;

/// What a connection needs to know when it starts.
pub(crate) struct ConnConfig {
    pub key: PeerKey,
    pub addr: SocketAddr,
    pub num_pieces: u32,
    /// Both sides support the fast extension (BEP 6).
    pub fast: bool,
    /// Both sides support the extension protocol (BEP 10).
    pub extended: bool,
    /// Seeds the request randomness (entropy in the engine, fixed in tests).
    pub rng: SmallRng,
}

/// One peer connection's state (see the module docs).
pub(crate) struct Connection {
    key: PeerKey,
    addr: SocketAddr,
    stats: Arc<PeerStats>,
    fast: bool,
    extensions: Extensions,
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
    /// How many times we choked the peer; disk reads started before a choke are not
    /// sent.
    choke_epoch: u64,
    max_inflight: usize,
    upload_queue: VecDeque<BlockRef>,
    /// A disk read for the peer is under way.
    reading: bool,
    /// Control messages not yet queued in `transmit`.
    out_buf: Vec<u8>,
    transmit: VecDeque<Transmit>,
    /// Bytes in `transmit` and `out_buf`.
    transmit_bytes: usize,
    /// Since when output has waited without any being taken.
    stalled_since: Option<Instant>,
    rate: RateEstimator,
    /// Payload bytes received since [`Connection::take_received`] was last called.
    received_unmetered: u64,
    /// The time given with the latest input, command or timeout.
    now: Instant,
    last_recv: Instant,
    last_send: Instant,
    last_block: Instant,
    next_tick: Instant,
    rng: SmallRng,
    scratch: Vec<Block>,
}

impl Connection {
    /// A connection that has exchanged handshakes; [`Connection::start`] queues our
    /// side's opening messages.
    pub(crate) fn new(cfg: ConnConfig, stats: Arc<PeerStats>, now: Instant) -> Self {
        stats.am_choking.store(true, Ordering::Relaxed);
        stats.peer_choking.store(true, Ordering::Relaxed);
        Connection {
            key: cfg.key,
            addr: cfg.addr,
            stats,
            fast: cfg.fast,
            extensions: Extensions::new(cfg.extended),
            their_pieces: Bitfield::new(cfg.num_pieces),
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
            max_inflight: 32,
            upload_queue: VecDeque::new(),
            reading: false,
            out_buf: Vec::with_capacity(4096),
            transmit: VecDeque::new(),
            transmit_bytes: 0,
            stalled_since: None,
            rate: RateEstimator::new(),
            received_unmetered: 0,
            now,
            last_recv: now,
            last_send: now,
            last_block: now,
            next_tick: now + TICK,
            rng: cfg.rng,
            scratch: Vec::new(),
        }
    }

    /// Queues the extension handshake and our pieces (bitfield, or HaveAll/HaveNone
    /// to a fast peer).
    pub(crate) fn start(&mut self, swarm: &impl Swarm) {
        let ours = self.extensions.our_handshake(
            swarm.listen_port(),
            swarm.public_info(),
            swarm.pex_enabled(),
        );
        if let Some(payload) = ours {
            self.send(Message::Extended {
                id: shoal_proto::wire::EXTENDED_HANDSHAKE_ID,
                payload: &payload,
            });
        }
        let have = swarm.have_snapshot();
        if self.fast && have.is_full() {
            self.send(Message::HaveAll);
        } else if self.fast && have.count_ones() == 0 {
            self.send(Message::HaveNone);
        } else if have.count_ones() > 0 {
            self.send(Message::Bitfield(have.as_bytes()));
        }
    }

    /// Takes every complete message from the front of `rbuf` (bytes read from the
    /// peer at `now`) and applies it. Blocks are split off the buffer and handed on
    /// as shared slices, not copied. `max_len` caps a message's length.
    pub(crate) fn handle_input(
        &mut self,
        now: Instant,
        rbuf: &mut BytesMut,
        max_len: u32,
        swarm: &impl Swarm,
    ) -> Result<(), PeerError> {
        self.now = now;
        self.last_recv = now;
        while let Some((msg, used)) = decode_message(rbuf, max_len)? {
            if let Message::Piece { index, begin, data } = msg {
                let payload = used - data.len();
                let frame = rbuf.split_to(used).freeze();
                self.intro_open = false;
                self.on_piece(index, begin, frame.slice(payload..), swarm)?;
                continue;
            }
            self.on_message(msg, swarm)?;
            rbuf.advance(used);
        }
        // Top up the request pipeline once per batch of messages, not per block.
        self.fill_requests(swarm);
        Ok(())
    }

    /// Payload bytes accepted since the last call (the driver applies the download
    /// limit to them).
    pub(crate) fn take_received(&mut self) -> u64 {
        std::mem::take(&mut self.received_unmetered)
    }

    /// Whether the driver should read more input: false while too much output waits.
    pub(crate) fn wants_input(&self) -> bool {
        self.transmit_bytes < MAX_TRANSMIT_BYTES
    }

    /// The next piece of output, in order.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = match self.transmit.pop_front() {
            Some(t) => t,
            None if !self.out_buf.is_empty() => Transmit::Msgs(std::mem::replace(
                &mut self.out_buf,
                Vec::with_capacity(512),
            )),
            None => return None,
        };
        self.transmit_bytes -= t.len();
        self.last_send = self.now;
        self.stalled_since = self.has_transmit().then_some(self.now);
        Some(t)
    }

    /// Output is waiting.
    pub(crate) fn has_transmit(&self) -> bool {
        !self.transmit.is_empty() || !self.out_buf.is_empty()
    }

    /// When [`Connection::handle_timeout`] must next run.
    pub(crate) fn poll_timeout(&self) -> Instant {
        self.next_tick
    }

    /// Runs the timers due at `now`: idle and write timeouts, snubbing, keep-alive,
    /// both sides seeding, and a request refill.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        swarm: &impl Swarm,
    ) -> Result<(), PeerError> {
        self.now = now;
        if now < self.next_tick {
            return Ok(());
        }
        self.next_tick = now + TICK;
        if now.saturating_duration_since(self.last_recv) > IDLE_TIMEOUT {
            return Err(PeerError::Timeout("any message"));
        }
        if self
            .stalled_since
            .is_some_and(|t| now.saturating_duration_since(t) > WRITE_TIMEOUT)
        {
            return Err(PeerError::Timeout("the peer to read our data"));
        }
        if !self.inflight.is_empty()
            && now.saturating_duration_since(self.last_block) > SNUB_TIMEOUT
        {
            tracing::debug!("peer snubbed us; returning its requests");
            self.stats.snubbed.store(true, Ordering::Relaxed);
            self.release_requests(swarm);
            self.last_block = now;
        }
        self.send_pex(now, swarm);
        if now.saturating_duration_since(self.last_send) > KEEPALIVE && !self.has_transmit() {
            self.send(Message::KeepAlive);
        }
        if swarm.is_seeding() && self.their_pieces.is_full() {
            return Err(PeerError::Closed("both sides are seeds"));
        }
        self.fill_requests(swarm);
        Ok(())
    }

    /// Applies a command from the torrent.
    pub(crate) fn handle_command(
        &mut self,
        now: Instant,
        cmd: PeerCmd,
        swarm: &impl Swarm,
    ) -> Result<(), PeerError> {
        self.now = now;
        match cmd {
            PeerCmd::Have(i) => {
                // Seeds get HAVEs too (libtorrent's `send_redundant_have`): a seeder
                // sees from them when its peers hold a copy between them and then
                // keeps fewer upload slots (see `choker`).
                if !self.their_pieces.get(i) || self.their_pieces.is_full() {
                    self.send(Message::Have(i));
                }
                if self.am_interested && !swarm.wants_any(&self.their_pieces) {
                    self.set_am_interested(false);
                }
                // Both sides seeds now: the next tick closes the connection, not this
                // command: the HAVEs of pieces verified just before may still be
                // queued, and a seeder counts our copy only once it has them all.
                // A verified piece may end a hashing backlog that stopped our requests
                // (`Swarm::backlogged`); refill now rather than at the next tick.
                self.fill_requests(swarm);
            }
            PeerCmd::Choke => self.choke_peer(),
            PeerCmd::Unchoke => {
                if self.am_choking {
                    self.am_choking = false;
                    self.stats.am_choking.store(false, Ordering::Relaxed);
                    self.send(Message::Unchoke);
                }
            }
            PeerCmd::Cancel(b) => self.cancel_request(b),
            PeerCmd::Disconnect(why) => return Err(PeerError::Closed(why)),
        }
        Ok(())
    }

    /// Ends the connection: every outstanding request goes back to the picker (late
    /// answers can no longer come). Returns the peer's pieces, which the driver
    /// removes from the torrent's availability.
    pub(crate) fn close(&mut self, swarm: &impl Swarm) -> Bitfield {
        self.release_requests(swarm);
        std::mem::replace(&mut self.their_pieces, Bitfield::new(0))
    }

    fn send(&mut self, msg: Message<'_>) {
        let before = self.out_buf.len();
        msg.encode(&mut self.out_buf);
        self.note_queued(self.out_buf.len() - before);
    }

    /// Queues a block after the control messages queued before it.
    fn send_block(&mut self, header: [u8; 13], data: Bytes) {
        if !self.out_buf.is_empty() {
            let msgs = std::mem::replace(&mut self.out_buf, Vec::with_capacity(512));
            self.transmit.push_back(Transmit::Msgs(msgs));
        }
        let t = Transmit::Block { header, data };
        self.note_queued(t.len());
        self.transmit.push_back(t);
    }

    fn note_queued(&mut self, n: usize) {
        if self.transmit_bytes == 0 {
            self.stalled_since = Some(self.now);
        }
        self.transmit_bytes += n;
    }

    fn on_message(&mut self, msg: Message<'_>, swarm: &impl Swarm) -> Result<(), PeerError> {
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
                    self.release_requests(swarm);
                }
            }
            Message::Unchoke => {
                self.peer_choking = false;
                self.stats.peer_choking.store(false, Ordering::Relaxed);
                self.last_block = self.now;
            }
            Message::Interested => self.set_peer_interested(true, swarm),
            Message::NotInterested => self.set_peer_interested(false, swarm),
            Message::Have(i) => {
                if i >= self.their_pieces.num_pieces() {
                    return Err(PeerError::Protocol(format!(
                        "have for piece {i} out of range"
                    )));
                }
                if !self.their_pieces.get(i) {
                    self.their_pieces.set(i);
                    swarm.peer_have(i);
                    self.after_pieces_changed(swarm);
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
                self.replace_pieces(bf, swarm);
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
                self.replace_pieces(bf, swarm);
            }
            Message::HaveNone => {}
            Message::Request(r) => self.on_request(r, swarm)?,
            Message::Cancel(r) => self.upload_queue.retain(|q| *q != r),
            // `handle_input` hands blocks on without copying; this copy is for callers
            // that decode messages themselves.
            Message::Piece { index, begin, data } => {
                self.on_piece(index, begin, Bytes::copy_from_slice(data), swarm)?
            }
            Message::RejectRequest(r) => self.on_reject(r, swarm)?,
            Message::AllowedFast(_) => {}
            Message::Extended { id, payload } => self.on_extended(id, payload, swarm)?,
        }
        Ok(())
    }

    fn replace_pieces(&mut self, bf: Bitfield, swarm: &impl Swarm) {
        swarm.peer_bitfield_replaced(&self.their_pieces, &bf);
        self.their_pieces = bf;
        self.after_pieces_changed(swarm);
    }

    fn set_peer_interested(&mut self, yes: bool, swarm: &impl Swarm) {
        self.peer_interested = yes;
        self.stats.peer_interested.store(yes, Ordering::Relaxed);
        if yes {
            swarm.peer_became_interested(self.key);
        }
    }

    /// Recomputes interest after the peer's pieces changed.
    fn after_pieces_changed(&mut self, swarm: &impl Swarm) {
        let ones = self.their_pieces.count_ones();
        self.stats.pieces.store(u64::from(ones), Ordering::Relaxed);
        self.stats
            .is_seed
            .store(self.their_pieces.is_full(), Ordering::Relaxed);
        self.update_interest(swarm);
    }

    fn update_interest(&mut self, swarm: &impl Swarm) {
        let want = swarm.wants_any(&self.their_pieces);
        if want != self.am_interested {
            self.set_am_interested(want);
        }
    }

    fn set_am_interested(&mut self, want: bool) {
        self.am_interested = want;
        self.stats.am_interested.store(want, Ordering::Relaxed);
        self.send(if want {
            Message::Interested
        } else {
            Message::NotInterested
        });
    }
}

#[cfg(test)]
mod tests;
