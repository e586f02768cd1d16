//! One uTP connection (BEP 29) as a sans-IO state machine.
//!
//! The caller feeds every datagram routed to this connection to
//! [`Connection::handle_packet`], sends what [`Connection::poll_transmit`] yields until
//! it yields nothing, and calls [`Connection::handle_timeout`] once the instant from
//! [`Connection::poll_timeout`] is reached; the application side is
//! [`Connection::write`] (bounded by the send buffer), [`Connection::read`] and
//! [`Connection::close`]. `now` comes with every call: no clock is read here.
//!
//! Rules, after BEP 29 and libtorrent's defaults:
//! - Ids: the initiator picks `recv_id` and sends with `recv_id + 1`; its SYN carries
//!   `recv_id`. The acceptor receives on SYN id + 1 and sends on the SYN id.
//! - Sequence numbers count packets and wrap; an `ST_STATE` carries the next number
//!   without taking it. The initiator's first is 1; the acceptor's is given (random).
//! - Sending: data is cut into packets of up to `max_payload` bytes as soon as the
//!   window allows (no Nagle). The window is the smaller of LEDBAT's `cwnd` and the
//!   peer's advertised window; one packet may always go when nothing is in flight.
//! - Loss: three duplicate acks or three later packets selectively acked resend a
//!   packet and halve `cwnd`; the timeout (`srtt + 4 * rttvar`, at least 500 ms, 1 s
//!   before any sample, doubled per consecutive timeout) resends everything unacked
//!   with a one-packet window; before it, two round trips after the last send, a
//!   probe resends the oldest unacked packet alone. `max_timeouts` in a row (`syn_retries` for the SYN) end
//!   the connection.
//! - Receiving: packets are delivered in order; duplicates are dropped and re-acked;
//!   every packet received is acked (with a selective ack past a gap).
//! - Closing: [`Connection::close`] sends a FIN after the queued data. The reader sees
//!   the end once everything up to the peer's FIN has been read. The connection is
//!   closed once both FINs are acknowledged and delivered, on `ST_RESET`, or when
//!   nothing arrives for `idle_timeout` (keep-alives go out after `keepalive` of
//!   silence).

mod recv;
mod send;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::config::UtpConfig;
use super::ledbat::Ledbat;
use super::packet::{Header, Packet, PacketError, PacketType, MAX_SACK_BYTES};
use super::stats::UtpStats;
use recv::{Received, RecvBuffer, MAX_AHEAD};
use send::{Flight, Rtt};

/// Why a connection ended other than by both sides closing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UtpError {
    /// The peer answered with `ST_RESET`.
    #[error("uTP connection reset by the peer")]
    Reset,
    /// The SYN went unanswered.
    #[error("uTP connect timed out: no answer to the SYN")]
    ConnectTimedOut,
    /// Packets went unacknowledged through every retransmission.
    #[error("uTP connection timed out: packets unacknowledged after retransmissions")]
    TimedOut,
    /// Nothing arrived for the idle timeout.
    #[error("uTP connection idle: nothing received for the idle timeout")]
    Idle,
    /// The packet given to [`Connection::accept`] does not parse.
    #[error("malformed uTP SYN: {0}")]
    Malformed(#[from] PacketError),
    /// The packet given to [`Connection::accept`] is not a SYN.
    #[error("not a uTP SYN")]
    NotSyn,
}

/// Shortest wait before a tail-loss probe, for round trips of a few microseconds.
const MIN_PROBE: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    SynSent,
    Connected,
    Closed,
}

/// One uTP connection.
#[derive(Debug)]
pub struct Connection {
    cfg: UtpConfig,
    state: State,
    error: Option<UtpError>,
    /// Zero of our wire timestamps.
    epoch: Instant,
    recv_id: u16,
    send_id: u16,
    /// Next sequence number to use.
    seq_nr: u16,
    unsent: VecDeque<u8>,
    flight: Flight,
    rtt: Rtt,
    ledbat: Ledbat,
    peer_wnd: u32,
    /// Backed-off timeout and when it fires (set while packets are in flight).
    rto: Duration,
    rto_at: Option<Instant>,
    /// Tail-loss probe: two round trips after the last send with packets unacked,
    /// resend the oldest without collapsing the window (the timeout would).
    probe_at: Option<Instant>,
    /// A probe went out since the last ack that advanced: at most one per stall.
    probed: bool,
    timeouts_in_row: u32,
    /// New data waited for the window since the last ack: the window was the limit.
    window_limited: bool,
    close_requested: bool,
    fin_seq: Option<u16>,
    recv: RecvBuffer,
    /// Our latest one-way delay sample of the peer's packets, echoed back.
    reply_micro: u32,
    ack_pending: bool,
    /// Window last advertised, to announce a reopened one.
    advertised: u32,
    last_recv: Instant,
    last_sent: Instant,
    stats: UtpStats,
}

impl Connection {
    fn new(
        cfg: UtpConfig,
        now: Instant,
        recv_id: u16,
        send_id: u16,
        seq_nr: u16,
        ack_nr: u16,
    ) -> Self {
        let mss = u32::try_from(cfg.max_payload.max(1)).unwrap_or(u32::MAX);
        Connection {
            cfg,
            state: State::SynSent,
            error: None,
            epoch: now,
            recv_id,
            send_id,
            seq_nr,
            unsent: VecDeque::new(),
            flight: Flight::default(),
            rtt: Rtt::new(cfg.initial_rto, cfg.min_rto),
            ledbat: Ledbat::new(cfg.ledbat, mss),
            peer_wnd: mss,
            rto: cfg.initial_rto,
            rto_at: None,
            probe_at: None,
            probed: false,
            timeouts_in_row: 0,
            window_limited: false,
            close_requested: false,
            fin_seq: None,
            recv: RecvBuffer::new(ack_nr, cfg.recv_buffer),
            reply_micro: 0,
            ack_pending: false,
            advertised: 0,
            last_recv: now,
            last_sent: now,
            stats: UtpStats::default(),
        }
    }

    /// Opens a connection receiving on `recv_id` (random, chosen by the caller so it
    /// is unique per remote address); the SYN is the first [`Self::poll_transmit`].
    pub fn connect(cfg: UtpConfig, now: Instant, recv_id: u16) -> Self {
        Connection::new(cfg, now, recv_id, recv_id.wrapping_add(1), 1, 0)
    }

    /// Accepts the connection a SYN opens; `seq_nr` is our first sequence number
    /// (random). The ack of the SYN is the first [`Self::poll_transmit`].
    pub fn accept(cfg: UtpConfig, now: Instant, syn: &[u8], seq_nr: u16) -> Result<Self, UtpError> {
        let p = Packet::decode(syn)?;
        let h = p.header;
        if h.kind != PacketType::Syn {
            return Err(UtpError::NotSyn);
        }
        let mut c = Connection::new(
            cfg,
            now,
            h.conn_id.wrapping_add(1),
            h.conn_id,
            seq_nr,
            h.seq_nr,
        );
        c.state = State::Connected;
        c.peer_wnd = h.wnd_size;
        c.reply_micro = c.micros(now).wrapping_sub(h.timestamp_us);
        c.ack_pending = true;
        c.stats.packets_received = 1;
        Ok(c)
    }

    /// The id packets to us carry: with the peer's address, the key to route by.
    pub fn recv_id(&self) -> u16 {
        self.recv_id
    }

    /// The id our packets carry (but the SYN).
    pub fn send_id(&self) -> u16 {
        self.send_id
    }

    /// Whether the handshake is done (always, for an accepted connection).
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Whether the connection is over: both ways closed, reset, or timed out.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Why the connection ended, if it did not end by both sides closing.
    pub fn error(&self) -> Option<&UtpError> {
        self.error.as_ref()
    }

    /// Whether the reader has everything the peer sent before its FIN.
    pub fn at_eof(&self) -> bool {
        self.recv.at_eof()
    }

    /// Bytes waiting for [`Self::read`].
    pub fn readable(&self) -> usize {
        self.recv.readable()
    }

    /// Whether [`Self::close`] was called (or the connection ended): no more writes.
    pub fn is_write_closed(&self) -> bool {
        self.close_requested || self.state == State::Closed
    }

    /// Bytes [`Self::write`] would take now.
    pub fn send_capacity(&self) -> usize {
        if self.close_requested || self.state == State::Closed {
            return 0;
        }
        self.cfg.send_buffer.saturating_sub(self.unsent.len())
    }

    /// Whether an ack waits to go out (data arrived, or [`Self::read`] reopened a window
    /// we had advertised as closed): [`Self::poll_transmit`] has something to send.
    pub fn ack_pending(&self) -> bool {
        self.ack_pending
    }

    /// Counters and estimates.
    pub fn stats(&self) -> UtpStats {
        UtpStats {
            cwnd: self.ledbat.cwnd(),
            in_flight: self.flight.bytes(),
            rtt: self.rtt.srtt(),
            rtt_var: self.rtt.var(),
            rto: self.rto,
            base_delay_us: self.ledbat.base_delay(),
            queuing_delay: self.ledbat.queuing_delay(),
            ..self.stats
        }
    }

    /// Queues bytes to send; returns how many fit in the send buffer (0 once closing).
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.send_capacity());
        self.unsent.extend(&data[..n]);
        n
    }

    /// Reads received bytes in order; 0 when none are waiting (see [`Self::at_eof`]).
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = self.recv.read(buf);
        // A window we advertised as (nearly) closed has reopened: say so, or the
        // sender waits for its timeout to probe.
        if n > 0
            && (self.advertised as usize) < self.cfg.max_payload
            && self.recv.window() as usize >= self.cfg.max_payload
        {
            self.ack_pending = true;
        }
        n
    }

    /// Sends a FIN once the queued data is out; writing ends here.
    pub fn close(&mut self) {
        self.close_requested = true;
    }

    fn micros(&self, now: Instant) -> u32 {
        // Wire timestamps are the low 32 bits of a microsecond clock: they wrap.
        now.saturating_duration_since(self.epoch).as_micros() as u32
    }

    fn mss(&self) -> u32 {
        u32::try_from(self.cfg.max_payload.max(1)).unwrap_or(u32::MAX)
    }

    fn window(&self) -> u32 {
        self.ledbat.cwnd().min(self.peer_wnd)
    }

    fn fail(&mut self, e: UtpError) {
        self.state = State::Closed;
        self.error = Some(e);
        self.rto_at = None;
        self.unsent.clear();
    }

    /// Feeds one datagram routed to this connection. Anything that does not parse or
    /// does not belong is ignored.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        let Ok(p) = Packet::decode(bytes) else {
            return;
        };
        let h = p.header;
        if self.error.is_some() {
            return;
        }
        if h.kind == PacketType::Syn {
            // The initiator resends its SYN when our ack was lost: ack it again.
            let ours = self.recv_id == self.send_id.wrapping_add(1) && h.conn_id == self.send_id;
            if ours && self.state == State::Connected {
                self.last_recv = now;
                self.ack_pending = true;
            }
            return;
        }
        // A peer without state for us answers with a RESET carrying the id it got,
        // which is our send id.
        let reset_to_us = h.kind == PacketType::Reset && h.conn_id == self.send_id;
        if h.conn_id != self.recv_id && !reset_to_us {
            return;
        }
        self.stats.packets_received += 1;
        self.last_recv = now;
        self.reply_micro = self.micros(now).wrapping_sub(h.timestamp_us);
        // The peer's window reopening (it read its buffer) means a packet we sent into
        // it while closed was dropped for want of room, not lost in the network.
        let reopened = self.peer_wnd < self.mss() && h.wnd_size >= self.mss();
        self.peer_wnd = h.wnd_size;
        if h.kind == PacketType::Reset {
            self.fail(UtpError::Reset);
            return;
        }
        if self.state == State::SynSent {
            // The acceptor's ack may be lost, or overtaken by its data or FIN (sent in
            // the same burst when it has something or nothing to say): any of them
            // acking the SYN completes the handshake.
            let answer = matches!(
                h.kind,
                PacketType::State | PacketType::Data | PacketType::Fin
            );
            if !answer || h.ack_nr != 1 {
                return;
            }
            self.state = State::Connected;
            // Its first sequenced packet takes the number an ST_STATE carries.
            self.recv.reset_ack_nr(h.seq_nr.wrapping_sub(1));
        }
        if h.timestamp_diff_us != 0 {
            self.ledbat.on_delay_sample(now, h.timestamp_diff_us);
        }
        self.on_ack(now, &p, reopened);
        match h.kind {
            PacketType::Data if !p.payload.is_empty() => {
                self.on_sequenced(h.seq_nr, p.payload, false)
            }
            PacketType::Fin => self.on_sequenced(h.seq_nr, &[], true),
            _ => {}
        }
        let fin_acked = self
            .fin_seq
            .is_some_and(|s| self.flight.is_acked(s, self.seq_nr));
        if self.state == State::Connected && fin_acked && self.recv.finished() {
            self.state = State::Closed;
            self.rto_at = None;
        }
    }

    fn on_ack(&mut self, now: Instant, p: &Packet<'_>, reopened: bool) {
        let h = p.header;
        let limited = self.window_limited || self.flight.bytes() + self.mss() > self.window();
        let dup = h.kind == PacketType::State;
        let Some(res) = self
            .flight
            .on_ack(now, self.seq_nr, h.ack_nr, p.sack, dup, &mut self.rtt)
        else {
            return;
        };
        if res.lost {
            self.ledbat.on_loss(now, self.rtt.srtt());
        } else if res.acked_bytes > 0 {
            self.ledbat.on_ack(res.acked_bytes, limited);
            self.window_limited = false;
        }
        if reopened && res.advanced == 0 {
            // Resent at once, without a congestion cut: the window, not the path, failed.
            self.flight.drop_oldest();
        }
        if res.advanced > 0 {
            self.probed = false;
            self.timeouts_in_row = 0;
            self.rto = self.rtt.rto();
            self.rto_at = (!self.flight.is_empty()).then(|| now + self.rto);
            if self.flight.is_empty() {
                self.probe_at = None;
            }
        }
    }

    fn on_sequenced(&mut self, seq: u16, payload: &[u8], fin: bool) {
        match self.recv.insert(seq, payload, fin) {
            Received::New => self.stats.bytes_received += payload.len() as u64,
            Received::Duplicate => self.stats.duplicates += 1,
            Received::Dropped => {}
        }
        self.ack_pending = true;
    }

    /// When [`Self::handle_timeout`] wants calling, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let idle = self.last_recv + self.cfg.idle_timeout;
        let keepalive =
            (self.state == State::Connected).then(|| self.last_sent + self.cfg.keepalive);
        [self.rto_at, self.probe_at, Some(idle), keepalive]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers due at `now`: retransmission, idle end, keep-alive.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if now.saturating_duration_since(self.last_recv) >= self.cfg.idle_timeout {
            self.fail(UtpError::Idle);
            return;
        }
        if self.rto_at.is_some_and(|at| now >= at) {
            self.probe_at = None;
            self.on_rto(now);
        } else if self.probe_at.is_some_and(|at| now >= at) {
            self.probe_at = None;
            if !self.probed {
                self.probed = true;
                self.flight.drop_oldest();
            }
        }
        if self.state == State::Connected
            && now.saturating_duration_since(self.last_sent) >= self.cfg.keepalive
        {
            self.ack_pending = true;
        }
    }

    fn on_rto(&mut self, now: Instant) {
        if self.flight.is_empty() {
            self.rto_at = None;
            return;
        }
        self.stats.timeouts += 1;
        // A peer advertising no room is not losing packets: probing it is not failing.
        if self.state == State::SynSent || self.peer_wnd >= self.mss() {
            self.timeouts_in_row += 1;
        }
        let (limit, err) = match self.state {
            State::SynSent => (self.cfg.syn_retries, UtpError::ConnectTimedOut),
            _ => (self.cfg.max_timeouts, UtpError::TimedOut),
        };
        if self.timeouts_in_row > limit {
            self.fail(err);
            return;
        }
        self.flight.on_timeout();
        self.ledbat.on_timeout(now);
        self.rto = (self.rto * 2).min(self.cfg.max_rto);
        self.rto_at = Some(now + self.rto);
    }

    /// The next datagram to send, if any: resends first, then new data, the FIN, and
    /// finally a bare ack. Call until it returns `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.error.is_some() {
            return None;
        }
        if self.state == State::SynSent && self.flight.is_empty() {
            self.flight
                .push(now, self.seq_nr, PacketType::Syn, Vec::new());
            self.seq_nr = self.seq_nr.wrapping_add(1);
            return Some(self.emit(now, PacketType::Syn, 1, &[]));
        }
        if let Some(out) = self.poll_resend(now) {
            return Some(out);
        }
        if self.state == State::Connected {
            if let Some(out) = self.poll_new_data(now) {
                return Some(out);
            }
            if self.close_requested && self.unsent.is_empty() && self.fin_seq.is_none() {
                let seq = self.seq_nr;
                self.seq_nr = seq.wrapping_add(1);
                self.fin_seq = Some(seq);
                self.flight.push(now, seq, PacketType::Fin, Vec::new());
                return Some(self.emit(now, PacketType::Fin, seq, &[]));
            }
        }
        if self.ack_pending {
            return Some(self.emit(now, PacketType::State, self.seq_nr, &[]));
        }
        None
    }

    fn poll_resend(&mut self, now: Instant) -> Option<Vec<u8>> {
        let (i, size, oldest) = self.flight.next_resend()?;
        if !oldest && self.flight.bytes() + size > self.window() {
            return None;
        }
        let (seq, kind, payload) = {
            let p = self.flight.resend(now, i)?;
            // A copy: the original stays for a further resend until acked.
            (p.seq, p.kind, p.payload.clone())
        };
        self.stats.retransmits += 1;
        Some(self.emit(now, kind, seq, &payload))
    }

    fn poll_new_data(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.unsent.is_empty() || self.flight.len() >= MAX_AHEAD - 1 {
            return None;
        }
        let size = self.unsent.len().min(self.cfg.max_payload.max(1));
        let in_flight = self.flight.bytes();
        if in_flight > 0 && in_flight as usize + size > self.window() as usize {
            self.window_limited = true;
            return None;
        }
        let mut payload = Vec::with_capacity(size);
        let (front, back) = self.unsent.as_slices();
        let from_front = size.min(front.len());
        payload.extend_from_slice(&front[..from_front]);
        payload.extend_from_slice(&back[..size - from_front]);
        self.unsent.drain(..size);
        let seq = self.seq_nr;
        self.seq_nr = seq.wrapping_add(1);
        let out = self.emit(now, PacketType::Data, seq, &payload);
        self.flight.push(now, seq, PacketType::Data, payload);
        self.stats.bytes_sent += size as u64;
        Some(out)
    }

    /// Encodes a packet with the current ack state; every packet acks.
    fn emit(&mut self, now: Instant, kind: PacketType, seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut sack = [0u8; MAX_SACK_BYTES];
        let sack_len = self.recv.sack(&mut sack);
        let wnd = self.recv.window();
        let header = Header {
            kind,
            conn_id: if kind == PacketType::Syn {
                self.recv_id
            } else {
                self.send_id
            },
            timestamp_us: self.micros(now),
            timestamp_diff_us: self.reply_micro,
            wnd_size: wnd,
            seq_nr: seq,
            ack_nr: self.recv.ack_nr(),
        };
        let mut out = Vec::with_capacity(payload.len() + 24 + sack_len.unwrap_or(0));
        Packet {
            header,
            sack: sack_len.map(|l| &sack[..l]),
            payload,
        }
        .encode(&mut out);
        self.advertised = wnd;
        self.ack_pending = false;
        self.last_sent = now;
        self.stats.packets_sent += 1;
        if kind != PacketType::State {
            let srtt = self.rtt.srtt();
            if !srtt.is_zero() && !self.probed {
                self.probe_at = Some(now + (srtt * 2).max(MIN_PROBE));
            }
        }
        if kind != PacketType::State && self.rto_at.is_none() {
            self.rto_at = Some(now + self.rto);
        }
        out
    }
}
