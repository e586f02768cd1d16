//! [`Limits`]: the session's upload and download limits, shared by every peer task.
//!
//! Each direction is a [`TokenBucket`] behind a short mutex section (take a ticket, or
//! ask whether it is ready) and an atomic copy of its rate, so that with no limit set
//! the data path reads one atomic and takes no lock. A limited caller takes its ticket
//! and sleeps until the bucket has earned it, however long that is: bytes are never
//! forgiven, so the limit holds with any number of peers. Tickets are served first come,
//! first served, so no peer starves; and [`Limits::down_read_cap`] /
//! [`Limits::up_batch_cap`] shrink each peer's reads and writes as more peers wait, so
//! that a round over all of them stays short (each gets its share often, rather than a
//! large batch every few seconds).
//!
//! A limit changed at run time ([`Limits::set`]) wakes the sleepers, which recompute
//! their wait at the new rate (or go at once when the limit is lifted).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::TokenBucket;

/// Rounds per second that the callers sharing a limit should get: each read or batch
/// is sized to the rate over this, split among the callers waiting.
const ROUNDS_PER_SEC: u64 = 4;
/// Smallest read or batch a limit asks for: one block, since tokens are charged per
/// block anyway.
const MIN_CHUNK: usize = 16 * 1024;
/// Largest socket read a download limit allows (the peer's receive buffer size).
const MAX_READ: usize = 256 * 1024;
/// Largest batch of block data an upload limit allows (the writer's own batch size).
const MAX_BATCH: usize = 128 * 1024;

/// Global rate limits shared by every peer.
pub struct Limits {
    up: Limiter,
    down: Limiter,
}

impl Limits {
    /// Limits in bytes per second; 0 means unlimited.
    pub fn new(up: u64, down: u64) -> Limits {
        Limits {
            up: Limiter::new(up),
            down: Limiter::new(down),
        }
    }

    /// Changes both limits (0: unlimited); callers waiting recompute their wait.
    pub fn set(&self, up: u64, down: u64) {
        self.up.set(up);
        self.down.set(down);
    }

    /// The upload limit in bytes per second (0: unlimited).
    pub fn up(&self) -> u64 {
        self.up.rate.load(Ordering::Relaxed)
    }

    /// The download limit in bytes per second (0: unlimited).
    pub fn down(&self) -> u64 {
        self.down.rate.load(Ordering::Relaxed)
    }

    /// Waits until `n` bytes may be sent.
    pub async fn wait_up(&self, n: u64) {
        self.up.wait(n).await
    }

    /// Most block data one write should carry while an upload limit is set (`None`:
    /// unlimited): the limit's share for one round among the writers waiting.
    pub fn up_batch_cap(&self) -> Option<usize> {
        self.up.chunk(MAX_BATCH)
    }

    /// How much one socket read may take while a download limit is set (`None`:
    /// unlimited): the limit's share for one round among the readers waiting, so that
    /// each waits briefly and often, and TCP holds the rest back at the sender.
    pub fn down_read_cap(&self) -> Option<usize> {
        self.down.chunk(MAX_READ)
    }

    /// Waits until `n` received bytes may be taken.
    pub async fn wait_down(&self, n: u64) {
        self.down.wait(n).await
    }
}

/// The smaller of two read or batch caps (`None`: unlimited).
pub fn min_cap(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One direction's limit.
struct Limiter {
    /// The bucket's rate, readable without the lock (0: unlimited).
    rate: AtomicU64,
    /// Callers sleeping on a ticket.
    waiting: AtomicUsize,
    bucket: Mutex<TokenBucket>,
    /// Woken when the rate changes.
    changed: Notify,
}

impl Limiter {
    fn new(rate: u64) -> Self {
        Limiter {
            rate: AtomicU64::new(rate),
            waiting: AtomicUsize::new(0),
            bucket: Mutex::new(TokenBucket::new(rate)),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TokenBucket> {
        self.bucket.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, rate: u64) {
        {
            let mut b = self.lock();
            if b.rate() == rate {
                return;
            }
            b.set_rate(rate, Instant::now().into_std());
            self.rate.store(rate, Ordering::Relaxed);
        }
        self.changed.notify_waiters();
    }

    fn chunk(&self, max: usize) -> Option<usize> {
        let rate = self.rate.load(Ordering::Relaxed);
        if rate == 0 {
            return None;
        }
        let sharers = self.waiting.load(Ordering::Relaxed) as u64 + 1;
        let share = rate / ROUNDS_PER_SEC / sharers;
        Some(usize::try_from(share).unwrap_or(max).clamp(MIN_CHUNK, max))
    }

    async fn wait(&self, n: u64) {
        if n == 0 || self.rate.load(Ordering::Relaxed) == 0 {
            return;
        }
        // Registered before the ticket is taken, so a change made after it wakes us.
        let changed = self.changed.notified();
        tokio::pin!(changed);
        let now = Instant::now();
        let (ticket, mut wait) = self.lock().reserve(n, now.into_std());
        if wait.is_none() {
            return;
        }
        let _waiting = Waiting::enter(&self.waiting);
        let mut from = now;
        while let Some(d) = wait {
            tokio::select! {
                _ = tokio::time::sleep_until(from + d) => {}
                _ = changed.as_mut() => changed.set(self.changed.notified()),
            }
            from = Instant::now();
            wait = self.lock().ready(ticket, from.into_std());
        }
    }
}

/// Counts a caller in [`Limiter::waiting`] while it lives (also when its future is
/// dropped mid-wait).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_smaller_cap_wins() {
        assert_eq!(min_cap(None, None), None);
        assert_eq!(min_cap(Some(5), None), Some(5));
        assert_eq!(min_cap(None, Some(7)), Some(7));
        assert_eq!(min_cap(Some(9), Some(7)), Some(7));
    }

    #[test]
    fn no_limit_means_no_cap() {
        let l = Limits::new(0, 0);
        assert_eq!((l.up_batch_cap(), l.down_read_cap()), (None, None));
        l.set(MIB, 4 * MIB);
        assert_eq!((l.up(), l.down()), (MIB, 4 * MIB));
        assert_eq!(l.up_batch_cap(), Some(MAX_BATCH));
        assert_eq!(l.down_read_cap(), Some(MAX_READ));
        l.set(16 * 1024, 0);
        assert_eq!(
            (l.up_batch_cap(), l.down_read_cap()),
            (Some(MIN_CHUNK), None)
        );
    }

    /// Unlimited waits return at once, and a full bucket lets a burst through.
    #[tokio::test(start_paused = true)]
    async fn unlimited_and_burst_do_not_sleep() {
        let l = Limits::new(0, MIB);
        let t0 = Instant::now();
        l.wait_up(u64::MAX).await;
        l.wait_down(MIB).await;
        assert_eq!(Instant::now(), t0);
        l.wait_down(MIB / 2).await;
        assert_eq!(Instant::now() - t0, Duration::from_millis(500));
    }

    /// Sixty tasks sending through a 1 MiB/s limit for 20 s of simulated time: over the
    /// last 15 s the total is the limit, every task gets an equal share, and the caps
    /// shrink to one block while they all wait.
    #[tokio::test(start_paused = true)]
    async fn sixty_peers_hold_the_limit() {
        const PEERS: usize = 60;
        let l = Arc::new(Limits::new(MIB, 0));
        let t0 = Instant::now();
        // Counted after a warm-up: the burst goes to whoever asks first.
        let start = t0 + Duration::from_secs(5);
        let end = t0 + Duration::from_secs(20);
        let mut tasks = Vec::new();
        for _ in 0..PEERS {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                let mut sent = 0u64;
                loop {
                    let n = l.up_batch_cap().unwrap_or(MAX_BATCH) as u64;
                    l.wait_up(n).await;
                    let now = Instant::now();
                    if now > end {
                        return sent;
                    }
                    if now > start {
                        sent += n;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            l.up_batch_cap(),
            Some(MIN_CHUNK),
            "many waiters: small batches"
        );
        let mut total = 0;
        let mut shares = Vec::new();
        for t in tasks {
            let sent = t.await.expect("task");
            total += sent;
            shares.push(sent);
        }
        let expected = 15 * MIB;
        let slack = 2 * MIN_CHUNK as u64;
        assert!(total.abs_diff(expected) <= slack, "{total} vs {expected}");
        let (min, max) = (shares.iter().min(), shares.iter().max());
        let (Some(&min), Some(&max)) = (min, max) else {
            panic!("no peers")
        };
        assert!(max - min <= slack, "shares from {min} to {max}");
        assert_eq!(l.up.waiting.load(Ordering::Relaxed), 0);
    }

    /// A sleeper wakes when the limit changes: at once when it is lifted, sooner when it
    /// is raised.
    #[tokio::test(start_paused = true)]
    async fn changing_the_limit_wakes_sleepers() {
        let l = Arc::new(Limits::new(0, 100_000));
        l.wait_down(100_000).await; // the burst
        let t0 = Instant::now();
        let sleeper = {
            let l = l.clone();
            tokio::spawn(async move {
                l.wait_down(1_000_000).await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        // 900 KB left at 100 KB/s; at 300 KB/s it is 3 s.
        l.set(0, 300_000);
        let done = sleeper.await.expect("task");
        assert_eq!(done - t0, Duration::from_secs(4));

        let sleeper = {
            let l = l.clone();
            tokio::spawn(async move {
                l.wait_down(3_000_000).await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        let t1 = Instant::now();
        l.set(0, 0);
        let done = sleeper.await.expect("task");
        assert_eq!(done, t1, "lifting the limit frees the sleeper");
        assert_eq!(l.down_read_cap(), None);
    }

    /// A waiter dropped mid-sleep (its peer went away) no longer counts as waiting.
    #[tokio::test(start_paused = true)]
    async fn dropped_waiter_is_not_counted() {
        let l = Limits::new(1000, 0);
        l.wait_up(16 * 1024).await;
        let r = tokio::time::timeout(Duration::from_secs(1), l.wait_up(10_000)).await;
        assert!(r.is_err());
        assert_eq!(l.up.waiting.load(Ordering::Relaxed), 0);
    }
}
