//! Two connections over a simulated link (`tests/link.rs`) on simulated time: bulk
//! transfers under loss, reordering, duplication and delay; LEDBAT against a deep
//! bottleneck queue; timeouts; and hostile input.

mod libtorrent;
mod link;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::packet::{Header, Packet, PacketType};
use super::{Connection, UtpConfig, UtpError};
use link::{Link, LinkConfig};

struct Side {
    conn: Option<Connection>,
    data: Vec<u8>,
    written: usize,
    got: Vec<u8>,
    /// Close once everything is written.
    close: bool,
    /// Most bytes the application reads per step (a slow reader).
    read_limit: usize,
    /// Steps the application on its own every so often, not only on network events.
    tick: Option<Duration>,
}

impl Side {
    fn new(data: Vec<u8>) -> Self {
        Side {
            conn: None,
            data,
            written: 0,
            got: Vec::new(),
            close: true,
            read_limit: usize::MAX,
            tick: None,
        }
    }

    fn app(&mut self) {
        let Some(c) = &mut self.conn else { return };
        if self.written < self.data.len() {
            self.written += c.write(&self.data[self.written..]);
        }
        if self.close && self.written == self.data.len() {
            c.close();
        }
        let mut buf = [0u8; 64 * 1024];
        let mut budget = self.read_limit;
        while budget > 0 {
            let n = c.read(&mut buf[..budget.min(64 * 1024)]);
            if n == 0 {
                break;
            }
            budget -= n;
            self.got.extend_from_slice(&buf[..n]);
        }
    }

    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("connection exists")
    }
}

/// Rewrites a datagram as it goes onto a link, or drops it (`None`): to make one end
/// speak like another implementation, or to lose chosen packets.
type Tap = Box<dyn FnMut(Vec<u8>) -> Option<Vec<u8>>>;

struct Sim {
    t0: Instant,
    now: Instant,
    cfg: UtpConfig,
    a: Side,
    b: Side,
    ab: Link,
    ba: Link,
    ab_tap: Option<Tap>,
    ba_tap: Option<Tap>,
}

fn flush(now: Instant, side: &mut Side, link: &mut Link, tap: Option<&mut Tap>) {
    let Some(c) = &mut side.conn else { return };
    let mut tap = tap;
    while let Some(p) = c.poll_transmit(now) {
        let p = match tap.as_mut() {
            Some(t) => t(p),
            None => Some(p),
        };
        if let Some(p) = p {
            link.send(now, p);
        }
    }
}

impl Sim {
    fn new(ab: LinkConfig, ba: LinkConfig, seed: u64, a_data: Vec<u8>, b_data: Vec<u8>) -> Self {
        let t0 = Instant::now();
        let cfg = UtpConfig::default();
        let mut a = Side::new(a_data);
        a.conn = Some(Connection::connect(cfg, t0, 0xfff0));
        Sim {
            t0,
            now: t0,
            cfg,
            a,
            b: Side::new(b_data),
            ab: Link::new(ab, seed),
            ba: Link::new(ba, seed ^ 0x5555),
            ab_tap: None,
            ba_tap: None,
        }
    }

    fn done(&self) -> bool {
        // Closed, and the application has read everything up to the peer's FIN.
        let over = |c: &Connection| c.is_closed() && c.at_eof();
        [&self.a, &self.b]
            .iter()
            .all(|s| s.conn.as_ref().is_some_and(over))
    }

    /// Runs until both sides are closed or `until`; returns whether they closed.
    fn run(&mut self, until: Duration) -> bool {
        loop {
            self.a.app();
            self.b.app();
            flush(self.now, &mut self.a, &mut self.ab, self.ab_tap.as_mut());
            flush(self.now, &mut self.b, &mut self.ba, self.ba_tap.as_mut());
            if self.done() {
                return true;
            }
            let timers =
                [&self.a, &self.b].map(|s| s.conn.as_ref().and_then(Connection::poll_timeout));
            let ticks = [&self.a, &self.b].map(|s| s.tick.map(|t| self.now + t));
            let next = [
                self.ab.next_arrival(),
                self.ba.next_arrival(),
                timers[0],
                timers[1],
                ticks[0],
                ticks[1],
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return false };
            if next > self.t0 + until {
                self.now = self.t0 + until;
                return false;
            }
            self.now = next.max(self.now);
            self.deliver();
        }
    }

    fn deliver(&mut self) {
        let now = self.now;
        while let Some(p) = self.ab.pop_due(now) {
            match &mut self.b.conn {
                Some(c) => c.handle_packet(now, &p),
                None => self.b.conn = Connection::accept(self.cfg, now, &p, 0x7ffe).ok(),
            }
        }
        while let Some(p) = self.ba.pop_due(now) {
            if let Some(c) = &mut self.a.conn {
                c.handle_packet(now, &p);
            }
        }
        for s in [&mut self.a, &mut self.b] {
            if let Some(c) = &mut s.conn {
                if c.poll_timeout().is_some_and(|t| t <= now) {
                    c.handle_timeout(now);
                }
            }
        }
    }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen()).collect()
}

/// Transfers `a_len` bytes from a to b and `b_len` from b to a over the two links,
/// checks both arrive byte for byte and both ends close cleanly, and prints the
/// simulated throughput (run with `--nocapture` to see it).
fn transfer(name: &str, ab: LinkConfig, ba: LinkConfig, a_len: usize, b_len: usize) {
    let mut sim = Sim::new(ab, ba, 42, data(a_len, 1), data(b_len, 2));
    assert!(
        sim.run(Duration::from_secs(600)),
        "{name}: not closed in 600 s"
    );
    for (s, other) in [(&sim.a, &sim.b), (&sim.b, &sim.a)] {
        assert_eq!(s.conn().error(), None, "{name}");
        assert!(
            s.got == other.data,
            "{name}: {} of {} bytes, or different",
            s.got.len(),
            other.data.len()
        );
    }
    let secs = (sim.now - sim.t0).as_secs_f64();
    let (sa, sb) = (sim.a.conn().stats(), sim.b.conn().stats());
    eprintln!(
        "{name}: {:.1} MB in {secs:.2} s simulated = {:.2} MB/s (a->b {:.2} MB/s); \
         retransmits {}+{}, timeouts {}+{}, link lost {}+{}, queue drops {}+{}",
        (a_len + b_len) as f64 / 1e6,
        (a_len + b_len) as f64 / 1e6 / secs,
        a_len as f64 / 1e6 / secs,
        sa.retransmits,
        sb.retransmits,
        sa.timeouts,
        sb.timeouts,
        sim.ab.stats.lost,
        sim.ba.stats.lost,
        sim.ab.stats.queue_drops,
        sim.ba.stats.queue_drops,
    );
}

const MB: usize = 1_000_000;

fn lossy(loss: f64) -> LinkConfig {
    LinkConfig {
        loss,
        ..LinkConfig::default()
    }
}

#[test]
fn transfer_clean_one_way() {
    transfer(
        "clean one way",
        LinkConfig::default(),
        LinkConfig::default(),
        8 * MB,
        0,
    );
}

#[test]
fn transfer_clean_both_ways() {
    transfer(
        "clean both ways",
        LinkConfig::default(),
        LinkConfig::default(),
        5 * MB,
        5 * MB,
    );
}

#[test]
fn transfer_one_percent_loss() {
    transfer("1% loss", lossy(0.01), lossy(0.01), 5 * MB, 5 * MB);
}

#[test]
fn transfer_five_percent_loss() {
    transfer("5% loss", lossy(0.05), lossy(0.05), 5 * MB, 5 * MB);
}

#[test]
fn transfer_reordering() {
    let link = LinkConfig {
        reorder: 0.2,
        reorder_delay: Duration::from_millis(15),
        ..LinkConfig::default()
    };
    transfer("20% reordered by up to 15 ms", link, link, 5 * MB, 5 * MB);
}

#[test]
fn transfer_duplication() {
    let link = LinkConfig {
        duplicate: 0.1,
        ..LinkConfig::default()
    };
    transfer("10% duplicated", link, link, 5 * MB, 5 * MB);
}

#[test]
fn transfer_delay_and_loss() {
    let link = LinkConfig {
        delay: Duration::from_millis(20),
        loss: 0.01,
        ..LinkConfig::default()
    };
    transfer("20 ms + 1% loss", link, link, 5 * MB, 0);
}

/// A receiver with a 32 KiB buffer that reads 200 bytes every millisecond: the sender
/// is held by the advertised window (down to zero), and the transfer goes at the
/// reader's pace (200 kB/s), not at one packet per retransmission timeout.
#[test]
fn slow_reader_small_window() {
    let mut sim = Sim::new(
        LinkConfig::default(),
        LinkConfig::default(),
        5,
        data(MB, 9),
        Vec::new(),
    );
    sim.cfg.recv_buffer = 32 * 1024;
    sim.b.read_limit = 200;
    sim.b.tick = Some(Duration::from_millis(1));
    assert!(sim.run(Duration::from_secs(600)), "not closed in 600 s");
    assert!(sim.b.got == sim.a.data);
    let secs = (sim.now - sim.t0).as_secs_f64();
    assert!(secs < 6.0, "{secs} s for 1 MB at 200 kB/s");
    let st = sim.a.conn().stats();
    eprintln!(
        "slow reader: 1 MB in {:.2} s simulated, retransmits {}, timeouts {}",
        (sim.now - sim.t0).as_secs_f64(),
        st.retransmits,
        st.timeouts
    );
}

/// A 1 MB/s bottleneck with a one-second queue: LEDBAT keeps the queueing delay near
/// its 100 ms target instead of filling the queue, and still uses the link.
#[test]
fn ledbat_holds_queueing_delay_near_target() {
    let bottleneck = LinkConfig {
        delay: Duration::from_millis(10),
        bandwidth: 1_000_000,
        queue: 1_000_000,
        ..LinkConfig::default()
    };
    let mut sim = Sim::new(
        bottleneck,
        LinkConfig::default(),
        7,
        data(40 * MB, 3),
        Vec::new(),
    );
    sim.a.close = false;
    sim.b.close = false;
    sim.run(Duration::from_secs(10));
    let (got0, t0) = (sim.b.got.len(), sim.now);
    sim.ab.stats = link::LinkStats::default();
    sim.run(Duration::from_secs(40));
    let s = sim.ab.stats;
    let mean = s.queue_delay_sum / u32::try_from(s.queue_delay_n).unwrap();
    let rate = (sim.b.got.len() - got0) as f64 / (sim.now - t0).as_secs_f64();
    let st = sim.a.conn().stats();
    eprintln!(
        "ledbat: mean queueing delay {mean:?}, max {:?}, rate {:.3} MB/s, cwnd {}, \
         sender's estimate {:?}, queue drops {}",
        s.queue_delay_max,
        rate / 1e6,
        st.cwnd,
        st.queuing_delay,
        s.queue_drops
    );
    assert!(
        mean > Duration::from_millis(50) && mean < Duration::from_millis(150),
        "{mean:?}"
    );
    assert!(
        s.queue_delay_max < Duration::from_millis(300),
        "{:?}",
        s.queue_delay_max
    );
    assert_eq!(s.queue_drops, 0);
    assert!(rate > 0.9e6, "{rate}");
}

#[test]
fn connect_to_nobody_times_out() {
    let now = Instant::now();
    let mut c = Connection::connect(UtpConfig::default(), now, 9);
    let mut t = now;
    let mut syns = 0;
    while !c.is_closed() {
        while c.poll_transmit(t).is_some() {
            syns += 1;
        }
        t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
    }
    assert_eq!(c.error(), Some(&UtpError::ConnectTimedOut));
    assert_eq!(syns, 4, "the SYN and 3 retries");
    assert_eq!(t - now, Duration::from_secs(1 + 2 + 4 + 8));
}

/// Connects a pair with no impairment at `now` and returns it.
fn pair(now: Instant) -> (Connection, Connection) {
    let cfg = UtpConfig::default();
    let mut a = Connection::connect(cfg, now, 100);
    let mut b = Connection::accept(cfg, now, &a.poll_transmit(now).unwrap(), 5000).unwrap();
    a.handle_packet(now, &b.poll_transmit(now).unwrap());
    assert!(a.is_connected() && b.is_connected());
    assert_eq!(
        (a.recv_id(), a.send_id(), b.recv_id(), b.send_id()),
        (100, 101, 101, 100)
    );
    (a, b)
}

/// A packet sent into a closed window is dropped by the receiver; the update that
/// reopens the window gets it resent at once, not after a retransmission timeout.
#[test]
fn a_reopened_window_resends_the_dropped_packet() {
    let now = Instant::now();
    let cfg = UtpConfig {
        recv_buffer: 2800,
        ..UtpConfig::default()
    };
    let mut a = Connection::connect(UtpConfig::default(), now, 100);
    let mut b = Connection::accept(cfg, now, &a.poll_transmit(now).unwrap(), 5000).unwrap();
    a.handle_packet(now, &b.poll_transmit(now).unwrap());
    a.write(&[1; 10_000]);
    let mut t = now;
    // Two packets fill b's window; the third goes out as a probe and is dropped.
    for _ in 0..3 {
        t += Duration::from_millis(10);
        let p = a.poll_transmit(t).unwrap();
        b.handle_packet(t, &p);
        a.handle_packet(t, &b.poll_transmit(t).unwrap());
    }
    assert_eq!(b.readable(), 2800);
    assert!(
        a.poll_transmit(t).is_none(),
        "window closed, one packet out"
    );
    assert!(!b.ack_pending(), "everything received was acked");
    assert_eq!(b.read(&mut [0; 2800]), 2800);
    assert!(b.ack_pending(), "the reopened window must be announced");
    a.handle_packet(t, &b.poll_transmit(t).expect("a window update"));
    assert!(!b.ack_pending());
    let resent = a
        .poll_transmit(t)
        .expect("the dropped packet, resent at once");
    assert_eq!(Packet::decode(&resent).unwrap().payload.len(), 1400);
    assert_eq!((a.stats().retransmits, a.stats().timeouts), (1, 0));
    b.handle_packet(t, &resent);
    assert_eq!(b.readable(), 1400);
    assert!(b.poll_transmit(t).is_some() && !b.ack_pending());
    // Reading from an open window needs no ack of its own: the next one carries it.
    assert_eq!(b.read(&mut [0; 100]), 100);
    assert!(!b.ack_pending());
}

/// The last packets of a burst are lost: two round trips later one probe resends the
/// oldest, well before the retransmission timeout, and the window stays.
#[test]
fn tail_loss_is_probed_before_the_timeout() {
    let t0 = Instant::now();
    let cfg = UtpConfig::default();
    let mut a = Connection::connect(cfg, t0, 100);
    let syn = a.poll_transmit(t0).unwrap();
    let t = t0 + Duration::from_millis(20);
    let mut b = Connection::accept(cfg, t, &syn, 5000).unwrap();
    a.handle_packet(t, &b.poll_transmit(t).unwrap()); // srtt 20 ms
    a.write(&[1; 2800]);
    let lost = [a.poll_transmit(t).unwrap(), a.poll_transmit(t).unwrap()];
    let cwnd = a.stats().cwnd;
    let probe = a.poll_timeout().unwrap();
    assert_eq!(probe - t, Duration::from_millis(40));
    a.handle_timeout(probe);
    let resent = a.poll_transmit(probe).expect("the probe");
    assert_eq!(resent[20..], lost[0][20..], "the oldest packet's payload");
    assert_eq!(
        (a.stats().retransmits, a.stats().timeouts, a.stats().cwnd),
        (1, 0, cwnd)
    );
    assert!(a.poll_transmit(probe).is_none());
    assert!(
        a.poll_timeout().unwrap() - t >= Duration::from_millis(500),
        "then the RTO"
    );
}

#[test]
fn keepalive_holds_an_idle_connection_and_silence_ends_it() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    let mut t = now;
    while t < now + Duration::from_secs(600) {
        t = a.poll_timeout().unwrap().min(b.poll_timeout().unwrap());
        a.handle_timeout(t);
        b.handle_timeout(t);
        while let Some(p) = a.poll_transmit(t) {
            b.handle_packet(t, &p);
        }
        while let Some(p) = b.poll_transmit(t) {
            a.handle_packet(t, &p);
        }
    }
    assert!(a.is_connected() && b.is_connected());
    // The link dies: a hears nothing, and gives up after the idle timeout.
    let dead = t;
    while !a.is_closed() {
        t = a.poll_timeout().unwrap();
        a.handle_timeout(t);
        while a.poll_transmit(t).is_some() {}
    }
    assert_eq!(a.error(), Some(&UtpError::Idle));
    assert!(t - dead <= UtpConfig::default().idle_timeout);
}

#[test]
fn unacked_data_times_out_after_retries() {
    let now = Instant::now();
    let (mut a, _b) = pair(now);
    a.write(b"lost forever");
    let mut t = now;
    let mut sends = 0;
    while !a.is_closed() {
        while let Some(p) = a.poll_transmit(t) {
            sends += usize::from(Packet::decode(&p).unwrap().header.kind == PacketType::Data);
        }
        t = a.poll_timeout().unwrap();
        a.handle_timeout(t);
    }
    assert_eq!(a.error(), Some(&UtpError::TimedOut));
    assert_eq!(sends, 7, "the packet and 6 resends");
}

#[test]
fn reset_ends_the_connection() {
    let now = Instant::now();
    let (mut a, _b) = pair(now);
    let mut rst = Vec::new();
    let header = Header {
        kind: PacketType::Reset,
        conn_id: a.recv_id(),
        timestamp_us: 0,
        timestamp_diff_us: 0,
        wnd_size: 0,
        seq_nr: 0,
        ack_nr: 0,
    };
    Packet {
        header,
        sack: None,
        payload: &[],
    }
    .encode(&mut rst);
    a.handle_packet(now, &rst);
    assert_eq!(a.error(), Some(&UtpError::Reset));
    assert!(a.poll_transmit(now).is_none() && a.poll_timeout().is_none());
}

#[test]
fn a_lost_syn_ack_is_answered_again() {
    let now = Instant::now();
    let cfg = UtpConfig::default();
    let mut a = Connection::connect(cfg, now, 100);
    let syn = a.poll_transmit(now).unwrap();
    let mut b = Connection::accept(cfg, now, &syn, 5000).unwrap();
    let _lost = b.poll_transmit(now).unwrap();
    let t = a.poll_timeout().unwrap();
    a.handle_timeout(t);
    b.handle_packet(t, &a.poll_transmit(t).unwrap());
    a.handle_packet(t, &b.poll_transmit(t).unwrap());
    assert!(a.is_connected());
}

fn arb_packet(conn_id: u16) -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..6,
        any::<[u32; 3]>(),
        any::<[u16; 2]>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..40)),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(move |(kind, [ts, diff, wnd], [seq, ack], sack, payload)| {
            let mut out = Vec::new();
            let header = Header {
                kind: PacketType::Data,
                conn_id,
                timestamp_us: ts,
                timestamp_diff_us: diff,
                wnd_size: wnd,
                seq_nr: seq,
                ack_nr: ack,
            };
            Packet {
                header,
                sack: sack.as_deref(),
                payload: &payload,
            }
            .encode(&mut out);
            out[0] = (kind << 4) | 1;
            out
        })
}

proptest! {
    /// Random bytes and random well-formed packets, to either end, in any state, never
    /// panic, and every output still decodes.
    #[test]
    fn hostile_packets_never_panic(
        raw in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..20),
        shaped in proptest::collection::vec(arb_packet(101), 0..40),
        shaped_a in proptest::collection::vec(arb_packet(100), 0..40),
        steps in proptest::collection::vec(0u64..3_000_000, 0..10),
    ) {
        let now = Instant::now();
        let (mut a, mut b) = pair(now);
        let mut fresh = Connection::connect(UtpConfig::default(), now, 100);
        a.write(&[7; 5000]);
        b.write(&[8; 5000]);
        let mut t = now;
        let inputs = raw.iter().chain(&shaped).chain(&shaped_a).enumerate();
        for (i, p) in inputs {
            if let Some(d) = steps.get(i % 16) {
                t += Duration::from_micros(*d);
            }
            for c in [&mut a, &mut b, &mut fresh] {
                c.handle_packet(t, p);
                if c.poll_timeout().is_some_and(|x| x <= t) {
                    c.handle_timeout(t);
                }
                while let Some(out) = c.poll_transmit(t) {
                    prop_assert!(Packet::decode(&out).is_ok());
                }
                c.read(&mut [0; 256]);
            }
        }
    }
}

/// The link of `tests/utp_faults.rs`: 20 ms one way and 1% loss in each direction, no
/// bandwidth limit to speak of (the userspace switch forwards at CPU speed). Loss, not
/// queueing, limits the window here: the mean a->b rate over a few seeds says how well
/// the sender recovers from it.
fn lossy_long_link_rate(seeds: std::ops::Range<u64>) -> f64 {
    let link = LinkConfig {
        delay: Duration::from_millis(20),
        loss: 0.01,
        bandwidth: 100_000_000,
        queue: 4 << 20,
        ..LinkConfig::default()
    };
    let len = 4 * MB;
    let mut rates = Vec::new();
    for seed in seeds {
        let mut sim = Sim::new(link, link, seed, data(len, seed), Vec::new());
        assert!(sim.run(Duration::from_secs(600)), "seed {seed}: not closed");
        assert!(sim.b.got == sim.a.data, "seed {seed}");
        let secs = (sim.now - sim.t0).as_secs_f64();
        let st = sim.a.conn().stats();
        eprintln!(
            "20 ms + 1% loss each way, seed {seed}: {:.3} MB/s; retransmits {}, timeouts {}",
            len as f64 / 1e6 / secs,
            st.retransmits,
            st.timeouts
        );
        rates.push(len as f64 / secs);
    }
    rates.iter().sum::<f64>() / rates.len() as f64
}

/// Simulated time and fixed seeds: the figure is deterministic. It was 0.49 MB/s with a
/// gain of one packet per round trip, 0.70 MB/s with two (libutp's and libtorrent's 3000
/// bytes).
#[test]
fn lossy_long_link_keeps_its_rate() {
    let rate = lossy_long_link_rate(0..6);
    eprintln!("20 ms + 1% loss each way: mean {:.3} MB/s", rate / 1e6);
    assert!(rate > 0.65e6, "{:.3} MB/s", rate / 1e6);
}
