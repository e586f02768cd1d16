//! Transfer rates and rate limits: plain values fed with `now`, cheap enough to
//! call per block, and the session's limits built on them.
//!
//! - [`RateEstimator`]: bytes per second over a sliding window of 1 s buckets.
//! - [`TokenBucket`]: a byte budget refilled continuously, handing out tickets served
//!   first come, first served; every byte granted is paid for.
//! - [`Limits`]: the session-wide upload and download limits that peer tasks wait on.

mod bucket;
mod limits;

pub use bucket::{Ticket, TokenBucket};
pub use limits::{min_cap, Limits};

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
}
