//! Counters for the status page: uptime and announces per second.
//!
//! Announces are one relaxed atomic increment each. A ticker samples the total once a
//! second into a short ring; the rate is the slope over the ring (the last ten
//! seconds), so the figure is smooth and costs nothing on the announce path.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Samples kept: ten one-second intervals.
const WINDOW: usize = 11;

/// Tracker-wide counters.
pub(crate) struct Stats {
    started: Instant,
    announces: AtomicU64,
    udp_announces: AtomicU64,
    samples: Mutex<VecDeque<(Instant, u64)>>,
    /// Requests by protocol and result, for `/metrics`.
    pub outcomes: crate::metrics::Outcomes,
}

impl Stats {
    pub fn new(now: Instant) -> Self {
        Stats {
            started: now,
            announces: AtomicU64::new(0),
            udp_announces: AtomicU64::new(0),
            samples: Mutex::new(VecDeque::from([(now, 0)])),
            outcomes: Default::default(),
        }
    }

    /// Counts one announce (over UDP when `udp`).
    pub fn announce(&self, udp: bool) {
        self.announces.fetch_add(1, Ordering::Relaxed);
        if udp {
            self.udp_announces.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Announces so far: (all, over UDP).
    pub fn announces(&self) -> (u64, u64) {
        (
            self.announces.load(Ordering::Relaxed),
            self.udp_announces.load(Ordering::Relaxed),
        )
    }

    /// Records the current total; called about once a second.
    pub fn sample(&self, now: Instant) {
        let total = self.announces.load(Ordering::Relaxed);
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        s.push_back((now, total));
        while s.len() > WINDOW {
            s.pop_front();
        }
    }

    /// Announces per second over the sampled window.
    pub fn rate(&self) -> f64 {
        let s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        match (s.front(), s.back()) {
            (Some(&(t0, n0)), Some(&(t1, n1))) if t1 > t0 => {
                n1.saturating_sub(n0) as f64 / (t1 - t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    pub fn uptime(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_the_slope_over_the_window() {
        let t0 = Instant::now();
        let s = Stats::new(t0);
        assert_eq!(s.rate(), 0.0);
        for i in 1..=20u64 {
            for _ in 0..10 {
                s.announce(i % 2 == 0);
            }
            s.sample(t0 + Duration::from_secs(i));
        }
        assert!((s.rate() - 10.0).abs() < 1e-9);
        assert_eq!(s.announces(), (200, 100));
        assert_eq!(
            s.uptime(t0 + Duration::from_secs(3)),
            Duration::from_secs(3)
        );
    }
}
