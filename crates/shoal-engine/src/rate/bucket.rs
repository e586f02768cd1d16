//! [`TokenBucket`]: a byte budget refilled at a fixed rate, handing out tickets that
//! are served in the order they were taken.
//!
//! Invariants:
//! - Every byte granted is paid for: a [`Ticket`] is ready only once the bucket has
//!   earned every byte granted up to and including it. Nothing is forgiven while a
//!   limit is set (only lifting the limit clears the debt), so however many callers
//!   share the bucket, their long-run total is the rate (plus one burst).
//! - Debt is bounded by what callers hold: each caller takes its ticket and waits for it
//!   before taking the next, so the debt never exceeds the sum of the requests waiting.
//! - Tickets are ready in the order they were taken (first come, first served), so no
//!   caller starves however many share the bucket.
//!
//! The bucket does no IO and reads no clock: every call takes `now`, so it is tested on
//! simulated time.

use std::time::{Duration, Instant};

/// Units per byte of the counters: nanoseconds, so that refills are exact at any rate.
const UNIT: u128 = 1_000_000_000;

/// The smallest burst: one block, so a single request never waits on an idle bucket.
const MIN_BURST: u64 = 16 * 1024;

/// A place in a [`TokenBucket`]'s queue: ready once the bucket has earned every byte
/// granted up to and including it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u128);

/// A rate limit of `bytes_per_sec` with a burst of one second (at least 16 KiB); 0
/// means unlimited.
///
/// [`TokenBucket::reserve`] always grants the bytes, possibly going into debt, and
/// returns a [`Ticket`] and how long to wait before using them; so a request larger
/// than the burst still passes, and nothing has to be retried. The counters are
/// cumulative (bytes × 10⁹ granted and earned since creation), so a ticket stays valid
/// across refills and rate changes: [`TokenBucket::ready`] tells at any time, at the
/// current rate, how long its holder still has to wait.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    /// Bytes × 10⁹ granted since creation.
    taken: u128,
    /// Bytes × 10⁹ earned since creation: the initial burst plus `rate` per second,
    /// never more than `taken` plus the burst (an idle bucket stops filling).
    earned: u128,
    /// Time of the last refill.
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket for `bytes_per_sec` (0: unlimited).
    pub fn new(bytes_per_sec: u64) -> Self {
        let mut b = TokenBucket {
            rate: bytes_per_sec,
            taken: 0,
            earned: 0,
            last: None,
        };
        b.earned = b.capacity();
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

    /// Bytes granted and not yet earned (what waiting callers still owe).
    pub fn debt(&self) -> u64 {
        let owed = self.taken.saturating_sub(self.earned) / UNIT;
        u64::try_from(owed).unwrap_or(u64::MAX)
    }

    /// Changes the limit at `now`. Bytes already granted stay owed (they are repaid at
    /// the new rate); the budget is capped at the new burst. Lifting the limit clears
    /// the debt, and a new limit after none starts with a full bucket.
    pub fn set_rate(&mut self, bytes_per_sec: u64, now: Instant) {
        self.refill(now);
        let was_unlimited = self.rate == 0;
        self.rate = bytes_per_sec;
        let full = self.taken.saturating_add(self.capacity());
        self.earned = if bytes_per_sec == 0 {
            self.taken
        } else if was_unlimited {
            full
        } else {
            self.earned.min(full)
        };
        self.last = Some(now);
    }

    /// Takes `n` bytes at `now`: `None` to go ahead, or how long to wait first. (For
    /// callers that sleep exactly that long and need no ticket; see [`Self::reserve`].)
    pub fn take(&mut self, n: u64, now: Instant) -> Option<Duration> {
        self.reserve(n, now).1
    }

    /// Grants `n` bytes at `now`: the ticket to wait for, and how long it will take at
    /// the current rate (`None`: go ahead).
    pub fn reserve(&mut self, n: u64, now: Instant) -> (Ticket, Option<Duration>) {
        if self.rate == 0 {
            return (Ticket(0), None);
        }
        self.refill(now);
        self.taken = self
            .taken
            .saturating_add(u128::from(n).saturating_mul(UNIT));
        let ticket = Ticket(self.taken);
        (ticket, self.wait_for(ticket))
    }

    /// How long the holder of `ticket` must still wait at `now` (`None`: it may go).
    pub fn ready(&mut self, ticket: Ticket, now: Instant) -> Option<Duration> {
        if self.rate == 0 {
            return None;
        }
        self.refill(now);
        self.wait_for(ticket)
    }

    fn wait_for(&self, ticket: Ticket) -> Option<Duration> {
        let owed = ticket.0.checked_sub(self.earned).filter(|&o| o > 0)?;
        let rate = u128::from(self.rate.max(1));
        let nanos = owed.div_ceil(rate);
        Some(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    fn capacity(&self) -> u128 {
        u128::from(self.rate.max(MIN_BURST)) * UNIT
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let ns = now.saturating_duration_since(last).as_nanos();
            let gained = ns.saturating_mul(u128::from(self.rate));
            // An idle bucket stops filling one burst ahead of what was granted.
            let full = self.taken.saturating_add(self.capacity());
            self.earned = self.earned.saturating_add(gained).min(full);
        }
        // Time that runs backwards (callers racing for the lock) refills nothing.
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
    fn unlimited_bucket_never_waits() {
        let mut b = TokenBucket::new(0);
        assert!(b.is_unlimited());
        assert_eq!(b.take(u64::MAX, Instant::now()), None);
        assert_eq!(b.debt(), 0);
    }

    #[test]
    fn bucket_allows_burst_then_paces() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100_000);
        assert_eq!(b.take(100_000, t0), None, "one second of burst");
        let w = b.take(50_000, t0).expect("must wait");
        assert_eq!(w, Duration::from_millis(500));
        assert_eq!(b.debt(), 50_000);
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
        b.set_rate(0, t0 + secs(3600.0));
        assert_eq!(b.take(5, t0), None);
    }

    /// A waiter whose wait is long is not let through early: it waits the whole debt,
    /// however long (the old limiter capped each wait at 5 s and let debt grow).
    #[test]
    fn long_waits_are_served_in_full() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20_000);
        assert_eq!(b.take(20_000, t0), None);
        let (ticket, w) = b.reserve(1_200_000, t0);
        assert_eq!(w, Some(secs(60.0)));
        assert_eq!(b.ready(ticket, t0 + secs(5.0)), Some(secs(55.0)));
        assert_eq!(b.ready(ticket, t0 + secs(59.999)), Some(secs(0.001)));
        assert_eq!(b.ready(ticket, t0 + secs(60.0)), None);
    }

    /// Tickets are ready in the order they were taken.
    #[test]
    fn tickets_are_first_come_first_served() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(16_384);
        let tickets: Vec<_> = (0..10).map(|_| b.reserve(16_384, t0)).collect();
        assert_eq!(tickets[0].1, None, "the burst covers the first");
        for (i, (_, w)) in tickets.iter().enumerate().skip(1) {
            assert_eq!(*w, Some(secs(i as f64)), "ticket {i}");
        }
        let now = t0 + secs(4.5);
        for (i, (t, _)) in tickets.iter().enumerate() {
            assert_eq!(b.ready(*t, now).is_none(), i <= 4, "ticket {i}");
        }
    }

    /// A new rate applies to bytes still owed: halving the rate doubles what is left
    /// of every wait, doubling it halves it; lifting the limit frees every ticket.
    #[test]
    fn rate_change_rescales_waits_and_keeps_debt() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100_000);
        b.take(100_000, t0);
        let (t1, w) = b.reserve(200_000, t0);
        assert_eq!(w, Some(secs(2.0)));
        b.set_rate(50_000, t0 + secs(1.0));
        assert_eq!(b.debt(), 100_000);
        assert_eq!(b.ready(t1, t0 + secs(1.0)), Some(secs(2.0)));
        b.set_rate(200_000, t0 + secs(2.0));
        assert_eq!(b.ready(t1, t0 + secs(2.0)), Some(secs(0.25)));
        let (t2, _) = b.reserve(1_000_000, t0 + secs(2.0));
        b.set_rate(0, t0 + secs(2.0));
        assert_eq!(b.ready(t2, t0 + secs(2.0)), None);
        assert_eq!(b.debt(), 0);
        // A limit again: a full bucket, no old debt.
        b.set_rate(100_000, t0 + secs(3.0));
        assert_eq!(b.take(100_000, t0 + secs(3.0)), None);
        assert!(b.take(1, t0 + secs(3.0)).is_some());
    }

    /// A lower limit caps the budget saved under the higher one.
    #[test]
    fn lower_rate_caps_the_saved_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1_000_000);
        b.set_rate(20_000, t0);
        assert_eq!(b.take(20_000, t0), None);
        assert_eq!(b.take(10_000, t0), Some(secs(0.5)));
    }

    /// Many callers, each taking a request and waiting for its ticket before the next
    /// (as peers do): the total over 20 s is the rate (plus the burst), the debt never
    /// exceeds what the callers hold, and every caller gets an equal share.
    #[test]
    fn many_callers_share_the_limit_fairly() {
        const RATE: u64 = 1 << 20;
        const CALLERS: usize = 60;
        let t0 = Instant::now();
        let mut b = TokenBucket::new(RATE);
        // Each caller's next request: (time it may send, ticket). Requests vary in size
        // (one to eight blocks) so callers do not move in lockstep.
        let size = |i: usize, k: u64| 16_384 * (1 + (i as u64 * 7 + k * 3) % 8);
        let mut next: Vec<(Instant, Ticket, u64)> = (0..CALLERS)
            .map(|i| {
                let n = size(i, 0);
                let (t, w) = b.reserve(n, t0);
                (t0 + w.unwrap_or_default(), t, n)
            })
            .collect();
        let mut sent = vec![0u64; CALLERS];
        let mut rounds = vec![0u64; CALLERS];
        let end = t0 + secs(20.0);
        loop {
            let (i, &(at, ticket, n)) = next
                .iter()
                .enumerate()
                .min_by_key(|(_, (at, ..))| *at)
                .expect("callers");
            if at > end {
                break;
            }
            assert_eq!(b.ready(ticket, at), None, "caller {i} woke too early");
            sent[i] += n;
            rounds[i] += 1;
            let m = size(i, rounds[i]);
            let (t, w) = b.reserve(m, at);
            let held: u64 = next.iter().map(|x| x.2).sum::<u64>() - n + m;
            assert!(b.debt() <= held, "debt {} > held {held}", b.debt());
            next[i] = (at + w.unwrap_or_default(), t, m);
        }
        let total: u64 = sent.iter().sum();
        let expected = 21 * RATE;
        assert!(
            total <= expected && total >= expected - 2 * 131_072,
            "{total} vs {expected}"
        );
        let (min, max) = (rounds.iter().min(), rounds.iter().max());
        let (Some(&min), Some(&max)) = (min, max) else {
            panic!("no callers")
        };
        assert!(max - min <= 1, "rounds per caller from {min} to {max}");
    }
}
