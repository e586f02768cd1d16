//! Transfer rates and rate limits: plain values fed with `now`, cheap enough to
//! call per block.
//!
//! - [`RateEstimator`]: bytes per second over a sliding window of 1 s buckets.
//! - [`TokenBucket`]: a byte budget refilled continuously; callers wait for debt.

use std::time::{Duration, Instant};

/// Seconds covered by a [`RateEstimator`].
pub const RATE_WINDOW_SECS: usize = 5;

/// Bytes per second over the last [`RATE_WINDOW_SECS`] seconds.
///
/// Bytes are counted in 1 s buckets relative to the first sample; the rate is the
/// window's bytes over the time the window spans (at least 1 s, so the very first
/// block does not read as a huge rate). `add` and `rate` are O(1) amortised.
#[derive(Debug, Clone, Default)]
pub struct RateEstimator {
    buckets: [u64; RATE_WINDOW_SECS],
    /// Time of the first sample; bucket `s` covers `[origin + s, origin + s + 1)`.
    origin: Option<Instant>,
    /// Second (since `origin`) of the newest bucket.
    head: u64,
    total: u64,
    /// Last value seen by [`Self::add_total`].
    last_total: Option<u64>,
}

impl RateEstimator {
    /// An estimator with no samples (rate 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `bytes` transferred at `now`.
    pub fn add(&mut self, bytes: u64, now: Instant) {
        let sec = self.advance(now);
        self.buckets[(sec % RATE_WINDOW_SECS as u64) as usize] += bytes;
        self.total = self.total.saturating_add(bytes);
    }

    /// Samples a cumulative byte counter: counts the increase since the previous
    /// sample. The first sample only sets the baseline.
    pub fn add_total(&mut self, total: u64, now: Instant) {
        match self.last_total {
            Some(prev) => self.add(total.saturating_sub(prev), now),
            None => {
                self.advance(now);
            }
        }
        self.last_total = Some(total);
    }

    /// Bytes counted since creation.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes per second over the window ending at `now`.
    pub fn rate(&self, now: Instant) -> u64 {
        let Some(origin) = self.origin else {
            return 0;
        };
        let elapsed = now.saturating_duration_since(origin);
        let sec = elapsed.as_secs().max(self.head);
        let window_start = (sec + 1).saturating_sub(RATE_WINDOW_SECS as u64);
        let sum: u64 = (window_start..=self.head)
            .map(|s| self.buckets[(s % RATE_WINDOW_SECS as u64) as usize])
            .sum();
        let span = elapsed.saturating_sub(Duration::from_secs(window_start));
        let span_ms = span.as_millis().max(1000);
        (u128::from(sum) * 1000 / span_ms)
            .try_into()
            .unwrap_or(u64::MAX)
    }

    /// Moves the head to `now`'s second, clearing buckets that left the window;
    /// returns the bucket second to count into (never older than the head).
    fn advance(&mut self, now: Instant) -> u64 {
        let origin = *self.origin.get_or_insert(now);
        let sec = now.saturating_duration_since(origin).as_secs();
        if sec > self.head {
            if sec - self.head >= RATE_WINDOW_SECS as u64 {
                self.buckets = [0; RATE_WINDOW_SECS];
            } else {
                for s in self.head + 1..=sec {
                    self.buckets[(s % RATE_WINDOW_SECS as u64) as usize] = 0;
                }
            }
            self.head = sec;
        }
        self.head
    }
}

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// A rate limit of `bytes_per_sec` with a burst of one second (at least 16 KiB);
/// 0 means unlimited.
///
/// [`TokenBucket::take`] always grants the bytes, possibly going into debt, and
/// returns how long the caller must wait before using them; so a request larger
/// than the burst still passes, and nothing has to be retried. Tokens are kept in
/// byte-nanoseconds, so refills are exact at any rate.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    /// Current budget in bytes × 10⁹ (negative: debt).
    tokens: i128,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket for `bytes_per_sec` (0: unlimited).
    pub fn new(bytes_per_sec: u64) -> Self {
        let mut b = TokenBucket {
            rate: bytes_per_sec,
            tokens: 0,
            last: None,
        };
        b.tokens = b.capacity();
        b
    }

    /// The limit in bytes per second (0: unlimited).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// True if there is no limit.
    pub fn is_unlimited(&self) -> bool {
        self.rate == 0
    }

    /// Changes the limit, keeping accrued debt and capping the budget at the new
    /// burst.
    pub fn set_rate(&mut self, bytes_per_sec: u64) {
        self.rate = bytes_per_sec;
        self.tokens = self.tokens.min(self.capacity());
    }

    /// Takes `n` bytes at `now`: `None` to go ahead, or how long to wait first.
    pub fn take(&mut self, n: u64, now: Instant) -> Option<Duration> {
        if self.rate == 0 {
            return None;
        }
        self.refill(now);
        self.tokens = self
            .tokens
            .saturating_sub(i128::from(n).saturating_mul(NANOS_PER_SEC));
        if self.tokens >= 0 {
            return None;
        }
        let rate = i128::from(self.rate);
        let nanos = (-self.tokens + rate - 1) / rate;
        Some(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    fn capacity(&self) -> i128 {
        i128::from(self.rate.max(16 * 1024)) * NANOS_PER_SEC
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            // Past one second of idleness the bucket is full anyway; capping keeps
            // the product far from overflow.
            let ns = now
                .saturating_duration_since(last)
                .as_nanos()
                .min(10 * NANOS_PER_SEC as u128);
            let gained = (ns as i128).saturating_mul(i128::from(self.rate));
            self.tokens = self.tokens.saturating_add(gained).min(self.capacity());
        }
        match self.last {
            Some(last) if last >= now => {}
            _ => self.last = Some(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn empty_rate_is_zero() {
        let r = RateEstimator::new();
        assert_eq!(r.rate(Instant::now()), 0);
    }

    #[test]
    fn steady_rate_is_measured() {
        let t0 = Instant::now();
        let mut r = RateEstimator::new();
        // 100 KiB/s in 16 KiB blocks... 10 samples of 10_000 bytes per second.
        for i in 0..200 {
            r.add(10_000, t0 + secs(f64::from(i) * 0.1));
        }
        let rate = r.rate(t0 + secs(19.95));
        assert!((95_000..=105_000).contains(&rate), "{rate}");
        assert_eq!(r.total(), 2_000_000);
    }

    #[test]
    fn rate_decays_to_zero_after_window() {
        let t0 = Instant::now();
        let mut r = RateEstimator::new();
        r.add(1_000_000, t0);
        assert_eq!(
            r.rate(t0),
            1_000_000,
            "first second counts as a full second"
        );
        assert!(r.rate(t0 + secs(3.0)) < 400_000);
        assert_eq!(r.rate(t0 + secs(RATE_WINDOW_SECS as f64 + 0.5)), 0);
        // Resumes after a long gap.
        r.add(50_000, t0 + secs(100.2));
        let rate = r.rate(t0 + secs(100.5));
        assert!(rate > 0 && rate <= 50_000, "{rate}");
    }

    #[test]
    fn add_total_counts_increments() {
        let t0 = Instant::now();
        let mut r = RateEstimator::new();
        r.add_total(5_000_000, t0); // baseline only
        for i in 1..=10 {
            r.add_total(5_000_000 + i * 200_000, t0 + secs(i as f64));
        }
        let rate = r.rate(t0 + secs(10.5));
        assert!((150_000..=250_000).contains(&rate), "{rate}");
        assert_eq!(r.total(), 2_000_000);
    }

    #[test]
    fn out_of_order_time_does_not_panic() {
        let t0 = Instant::now();
        let mut r = RateEstimator::new();
        r.add(100, t0 + secs(5.0));
        r.add(100, t0);
        assert_eq!(r.total(), 200);
        let _ = r.rate(t0);
    }

    #[test]
    fn unlimited_bucket_never_waits() {
        let mut b = TokenBucket::new(0);
        assert!(b.is_unlimited());
        assert_eq!(b.take(u64::MAX, Instant::now()), None);
    }

    #[test]
    fn bucket_allows_burst_then_paces() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100_000);
        assert_eq!(b.take(100_000, t0), None, "one second of burst");
        let w = b.take(50_000, t0).expect("must wait");
        assert_eq!(w, Duration::from_millis(500));
        // After waiting, the debt is paid; half a second more buys 50 KB.
        assert_eq!(b.take(50_000, t0 + secs(1.0)), None);
        assert!(b.take(1, t0 + secs(1.0)).is_some());
    }

    #[test]
    fn bucket_long_run_average_matches_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1_000_000);
        let mut now = t0;
        let mut sent = 0u64;
        while now < t0 + secs(10.0) {
            if let Some(w) = b.take(16_384, now) {
                now += w;
            }
            sent += 16_384;
        }
        // 10 s at 1 MB/s plus the 1 s burst.
        assert!((10_900_000..=11_100_000).contains(&sent), "{sent}");
    }

    #[test]
    fn bucket_caps_at_burst_and_handles_huge_requests() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000);
        // Idle for an hour: still only the 16 KiB minimum burst.
        assert_eq!(b.take(16 * 1024, t0 + secs(3600.0)), None);
        assert!(b.take(1, t0 + secs(3600.0)).is_some());
        let w = b.take(u64::MAX, t0 + secs(3600.0)).expect("wait");
        assert!(w > Duration::from_secs(1_000_000));
        b.set_rate(0);
        assert_eq!(b.take(5, t0), None);
    }
}
