//! LEDBAT congestion control (RFC 6817) as BEP 29 applies it to uTP.
//!
//! The remote end reports, in every packet, how long our latest packet took to reach it
//! by its clock (`timestamp_difference_microseconds`). The clocks are not synchronised,
//! so the absolute value means nothing; the minimum over the last two minutes (kept in
//! per-minute buckets) is the *base delay*, and a sample minus the base is the queueing
//! delay our traffic adds. Below the 100 ms target the window grows by at most
//! `gain` packets per round trip (a full window acked at zero queueing delay; two
//! packets, as libutp's and libtorrent's 3000 bytes per round trip); above it it shrinks
//! in proportion to how far the delay is past the target. A loss halves it, at most once
//! per round trip; a retransmission timeout drops it to one packet. The window never goes below one packet.
//!
//! Under random loss (not congestion) the additive growth decides the rate: halving on
//! each loss and growing `gain` packets per round trip settles near a mean window of
//! `sqrt(1.5 * gain / p)` packets (Reno's formula with `gain` for its one packet), so the
//! rate goes with the square root of the gain. A gain of one packet left Shoal at about
//! 60% of libtorrent's rate over a 40 ms round trip with 1% loss each way
//! (`tests/utp_faults.rs`); the `lossy_long_link` simulation in `utp/tests.rs` went from
//! 0.49 to 0.70 MB/s with two.
//!
//! Slow start (RFC 6817 allows it) doubles the window per round trip until the first
//! loss or until the queueing delay reaches half the target, so a fresh connection
//! fills a fast link in a few round trips rather than hundreds; after that the rule
//! above alone applies. Samples are `u32` microseconds that may wrap, so comparisons
//! go through [`wrapping_less`].

use std::time::{Duration, Instant};

/// Base-delay buckets: the minimum over this many minutes (BEP 29: two).
const BASE_BUCKETS: usize = 2;
/// Length of one base-delay bucket.
const BUCKET: Duration = Duration::from_secs(60);
/// Recent samples whose minimum is the current delay (RFC 6817 `CURRENT_FILTER`).
const CURRENT_FILTER: usize = 4;

/// Congestion-control settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LedbatConfig {
    /// Queueing delay the sender aims for (BEP 29: 100 ms).
    pub target: Duration,
    /// Most packets the window grows per round trip at zero queueing delay (2: libutp and
    /// libtorrent grow 3000 bytes per round trip, two packets of 1500 bytes).
    pub gain: f64,
    /// Whether a new connection starts in slow start.
    pub slow_start: bool,
    /// Largest window, bytes (the receiver's window caps it too).
    pub max_cwnd: u32,
}

impl Default for LedbatConfig {
    fn default() -> Self {
        LedbatConfig {
            target: Duration::from_millis(100),
            gain: 2.0,
            slow_start: true,
            max_cwnd: 8 << 20,
        }
    }
}

/// Whether `a` is before `b` on a wrapping 32-bit clock.
pub fn wrapping_less(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 1 << 31
}

/// Minimum of recent one-way delay samples over the last two minutes.
#[derive(Debug, Clone)]
struct BaseDelay {
    /// Per-minute minima, the current minute last.
    buckets: [Option<u32>; BASE_BUCKETS],
    /// When the current bucket began.
    bucket_start: Option<Instant>,
}

impl BaseDelay {
    fn add(&mut self, now: Instant, sample: u32) {
        let start = *self.bucket_start.get_or_insert(now);
        if now.saturating_duration_since(start) >= BUCKET {
            self.buckets.rotate_left(1);
            self.buckets[BASE_BUCKETS - 1] = None;
            self.bucket_start = Some(now);
        }
        let cur = &mut self.buckets[BASE_BUCKETS - 1];
        if cur.map_or(true, |c| wrapping_less(sample, c)) {
            *cur = Some(sample);
        }
    }

    fn get(&self) -> Option<u32> {
        self.buckets
            .iter()
            .flatten()
            .copied()
            .reduce(|a, b| if wrapping_less(b, a) { b } else { a })
    }
}

/// The congestion window of one connection.
#[derive(Debug, Clone)]
pub struct Ledbat {
    cfg: LedbatConfig,
    /// Payload bytes of a full packet: the window's unit and its floor.
    mss: u32,
    cwnd: f64,
    slow_start: bool,
    base: BaseDelay,
    recent: [Option<u32>; CURRENT_FILTER],
    recent_next: usize,
    last_cut: Option<Instant>,
}

impl Ledbat {
    /// A controller for packets of `mss` payload bytes, starting at two packets.
    pub fn new(cfg: LedbatConfig, mss: u32) -> Self {
        let mss = mss.max(1);
        Ledbat {
            cfg,
            mss,
            cwnd: f64::from(2 * mss),
            slow_start: cfg.slow_start,
            base: BaseDelay {
                buckets: [None; BASE_BUCKETS],
                bucket_start: None,
            },
            recent: [None; CURRENT_FILTER],
            recent_next: 0,
            last_cut: None,
        }
    }

    /// The congestion window, bytes.
    pub fn cwnd(&self) -> u32 {
        self.cwnd as u32
    }

    /// Whether the controller is still in slow start.
    pub fn in_slow_start(&self) -> bool {
        self.slow_start
    }

    /// The base delay (minimum sample of the last two minutes), if any sample came in.
    pub fn base_delay(&self) -> Option<u32> {
        self.base.get()
    }

    /// The current queueing delay estimate: recent minimum minus base.
    pub fn queuing_delay(&self) -> Option<Duration> {
        let base = self.base.get()?;
        let cur = self.recent.iter().flatten().copied().reduce(|a, b| {
            if wrapping_less(b, a) {
                b
            } else {
                a
            }
        })?;
        Some(Duration::from_micros(u64::from(
            cur.wrapping_sub(base).min(1 << 31),
        )))
    }

    /// Records a one-way delay sample (the peer's `timestamp_difference_microseconds`).
    pub fn on_delay_sample(&mut self, now: Instant, sample_us: u32) {
        self.base.add(now, sample_us);
        self.recent[self.recent_next] = Some(sample_us);
        self.recent_next = (self.recent_next + 1) % CURRENT_FILTER;
    }

    /// Adjusts the window for `acked` bytes newly acknowledged. `window_limited` says
    /// whether the sender had filled the window before this ack: an unused window is not
    /// grown (RFC 6817 §2.4.1), so it cannot balloon while the application is idle.
    pub fn on_ack(&mut self, acked: u32, window_limited: bool) {
        let Some(delay) = self.queuing_delay() else {
            return;
        };
        let target = self.cfg.target.as_secs_f64().max(1e-6);
        // At most 1 (no queueing); below -1 when the queue is past twice the target, so a
        // window far too large comes down in proportion.
        let off_target = (target - delay.as_secs_f64()) / target;
        if self.slow_start && delay.as_secs_f64() > target / 2.0 {
            self.slow_start = false;
        }
        let acked = f64::from(acked);
        let delta = if self.slow_start {
            acked
        } else {
            self.cfg.gain * off_target * acked * f64::from(self.mss) / self.cwnd
        };
        if delta > 0.0 && !window_limited {
            return;
        }
        self.set_cwnd(self.cwnd + delta);
    }

    /// A packet was lost: halves the window, at most once per `rtt`.
    pub fn on_loss(&mut self, now: Instant, rtt: Duration) {
        self.slow_start = false;
        if self
            .last_cut
            .is_some_and(|t| now.saturating_duration_since(t) < rtt)
        {
            return;
        }
        self.last_cut = Some(now);
        self.set_cwnd(self.cwnd / 2.0);
    }

    /// The retransmission timer fired: back to one packet.
    pub fn on_timeout(&mut self, now: Instant) {
        self.slow_start = false;
        self.last_cut = Some(now);
        self.set_cwnd(0.0);
    }

    fn set_cwnd(&mut self, cwnd: f64) {
        self.cwnd = cwnd.clamp(
            f64::from(self.mss),
            f64::from(self.cfg.max_cwnd.max(self.mss)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn steady(now: Instant) -> Ledbat {
        let cfg = LedbatConfig {
            slow_start: false,
            ..LedbatConfig::default()
        };
        let mut l = Ledbat::new(cfg, MSS);
        l.on_delay_sample(now, 50_000); // base: 50 ms of propagation
        l.set_cwnd(f64::from(10 * MSS));
        l
    }

    /// Acks one full window in packets, each with the given delay sample.
    fn ack_window(l: &mut Ledbat, now: Instant, sample: u32) {
        for _ in 0..l.cwnd() / MSS {
            l.on_delay_sample(now, sample);
            l.on_ack(MSS, true);
        }
    }

    #[test]
    fn below_target_grows_at_most_gain_packets_per_rtt() {
        let now = Instant::now();
        let mut l = steady(now);
        ack_window(&mut l, now, 50_000); // zero queueing delay
        let grown = l.cwnd();
        assert!(grown > 11 * MSS && grown <= 12 * MSS, "{grown}");
        let mut half = steady(now);
        ack_window(&mut half, now, 100_000); // 50 ms queueing: half the gain
        assert!(half.cwnd() > 10 * MSS && half.cwnd() < grown);
    }

    #[test]
    fn above_target_shrinks() {
        let now = Instant::now();
        let mut l = steady(now);
        ack_window(&mut l, now, 350_000); // 300 ms queueing
        let c = l.cwnd();
        assert!((7 * MSS..10 * MSS).contains(&c), "{c}");
        for _ in 0..100 {
            ack_window(&mut l, now, 350_000);
        }
        assert_eq!(l.cwnd(), MSS, "never below one packet");
    }

    #[test]
    fn unused_window_does_not_grow() {
        let now = Instant::now();
        let mut l = steady(now);
        l.on_delay_sample(now, 50_000);
        l.on_ack(MSS, false);
        assert_eq!(l.cwnd(), 10 * MSS);
    }

    #[test]
    fn loss_halves_once_per_rtt_and_timeout_resets() {
        let now = Instant::now();
        let rtt = Duration::from_millis(100);
        let mut l = steady(now);
        l.on_loss(now, rtt);
        assert_eq!(l.cwnd(), 5 * MSS);
        l.on_loss(now + Duration::from_millis(50), rtt);
        assert_eq!(l.cwnd(), 5 * MSS, "same round trip");
        l.on_loss(now + Duration::from_millis(150), rtt);
        assert_eq!(l.cwnd(), 2500);
        l.on_timeout(now);
        assert_eq!(l.cwnd(), MSS);
    }

    #[test]
    fn slow_start_doubles_until_delay_rises() {
        let now = Instant::now();
        let mut l = Ledbat::new(LedbatConfig::default(), MSS);
        l.on_delay_sample(now, 10_000);
        ack_window(&mut l, now, 10_000);
        assert_eq!(l.cwnd(), 4 * MSS);
        ack_window(&mut l, now, 70_000); // 60 ms queueing: past half the target
        assert!(!l.in_slow_start());
        let c = l.cwnd();
        ack_window(&mut l, now, 70_000);
        assert!(
            l.cwnd() <= c + 2 * MSS,
            "after slow start: at most `gain` packets per round trip"
        );
    }

    #[test]
    fn base_delay_forgets_after_two_minutes_and_handles_wrap() {
        let t0 = Instant::now();
        let mut l = steady(t0);
        l.on_delay_sample(t0 + Duration::from_secs(61), 80_000);
        assert_eq!(l.base_delay(), Some(50_000));
        l.on_delay_sample(t0 + Duration::from_secs(122), 90_000);
        assert_eq!(l.base_delay(), Some(80_000));
        // Samples straddling the 32-bit wrap: u32::MAX - 5 is before 10.
        let mut w = steady(t0);
        w.on_delay_sample(t0, u32::MAX - 5);
        w.on_delay_sample(t0, 10);
        assert_eq!(w.base_delay(), Some(u32::MAX - 5));
        assert!(wrapping_less(u32::MAX - 5, 10) && !wrapping_less(10, u32::MAX - 5));
    }
}
