//! Bounds on `POST /publish` bodies: a per-IP rate, a global byte budget and a deadline.
//!
//! A body is read incrementally into a buffer that grows as bytes arrive, never sized
//! from the announced `Content-Length` up front, so a client that sends only headers
//! costs nothing. Every byte of buffer capacity is first charged to one tracker-wide
//! budget ([`TrackerConfig::publish_budget_bytes`]); when the budget is spent the
//! upload gets 503 and the connection is closed. The whole body must arrive within
//! [`TrackerConfig::publish_body_timeout`]. Before any of that, a token bucket per
//! source IP ([`TrackerConfig::publish_per_minute`]) answers 429 to hosts publishing
//! faster than a person would.
//!
//! Invariant: the budget's free permits plus the capacity of every live upload buffer
//! equals the budget (the charge is returned when the [`Upload`] drops).
//!
//! [`TrackerConfig::publish_budget_bytes`]: crate::TrackerConfig::publish_budget_bytes
//! [`TrackerConfig::publish_body_timeout`]: crate::TrackerConfig::publish_body_timeout
//! [`TrackerConfig::publish_per_minute`]: crate::TrackerConfig::publish_per_minute

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::TrackerConfig;

/// Smallest step by which an upload buffer grows (and is charged).
const MIN_GROWTH: usize = 16 << 10;
/// Most source IPs whose buckets are remembered; beyond it, new IPs are let through
/// untracked (the byte budget still bounds memory).
const MAX_TRACKED_IPS: usize = 65_536;
/// Loopback gets this many times the per-IP rate: a reverse proxy or a local test
/// speaks for many publishers from one address.
const LOOPBACK_FACTOR: f64 = 10.0;

/// Tracker-wide state limiting publish uploads.
pub(crate) struct UploadLimits {
    budget: Semaphore,
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// A token bucket: `tokens` as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Why an upload was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UploadError {
    /// Other uploads hold the whole byte budget.
    Busy,
    /// The peer closed, failed or missed the deadline; nothing can be answered.
    Gone,
}

/// A body being received, with the budget it holds.
pub(crate) struct Upload<'a> {
    pub body: Vec<u8>,
    charge: Option<SemaphorePermit<'a>>,
}

impl UploadLimits {
    pub fn new(config: &TrackerConfig) -> Self {
        // One maximal upload always fits, whatever the two settings say.
        let budget = config.publish_budget_bytes.max(config.max_publish_bytes);
        UploadLimits {
            budget: Semaphore::new(budget.min(Semaphore::MAX_PERMITS)),
            per_minute: config.publish_per_minute,
            buckets: Mutex::default(),
        }
    }

    /// Takes one publish token for `ip` at `now`; false when its bucket is empty.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let factor = if ip.is_loopback() {
            LOOPBACK_FACTOR
        } else {
            1.0
        };
        let capacity = f64::from(self.per_minute) * factor;
        let per_sec = capacity / 60.0;
        let refill = |b: &Bucket| {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            (b.tokens + elapsed * per_sec).min(capacity)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED_IPS && !buckets.contains_key(&ip) {
            // Full buckets say nothing a fresh one would not.
            buckets.retain(|_, b| refill(b) < capacity);
            if buckets.len() >= MAX_TRACKED_IPS {
                return true;
            }
        }
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        b.tokens = refill(b);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Starts an upload of `len` bytes whose first bytes already arrived in `prefix`.
    pub fn start(&self, prefix: &[u8], len: usize) -> Result<Upload<'_>, UploadError> {
        let mut up = Upload {
            body: Vec::new(),
            charge: None,
        };
        self.grow(&mut up, len, prefix.len())?;
        up.body.extend_from_slice(prefix);
        Ok(up)
    }

    /// Reads the rest of the body from `from` within `deadline`.
    pub async fn finish<'a, R: AsyncRead + Unpin>(
        &'a self,
        up: &mut Upload<'a>,
        from: &mut R,
        len: usize,
        deadline: Duration,
    ) -> Result<(), UploadError> {
        let read = async {
            while up.body.len() < len {
                if up.body.len() == up.body.capacity() {
                    // Wait for a byte before charging more, so a stalled client holds
                    // only what it has sent (rounded up to the last growth step).
                    let mut first = [0u8; 1];
                    match from.read(&mut first).await {
                        Ok(0) | Err(_) => return Err(UploadError::Gone),
                        Ok(_) => {}
                    }
                    self.grow(up, len, 1)?;
                    up.body.push(first[0]);
                    continue;
                }
                let room = up.body.capacity().min(len) - up.body.len();
                let mut limited = (&mut *from).take(room as u64);
                match limited.read_buf(&mut up.body).await {
                    Ok(0) | Err(_) => return Err(UploadError::Gone),
                    Ok(_) => {}
                }
            }
            Ok(())
        };
        tokio::time::timeout(deadline, read)
            .await
            .unwrap_or(Err(UploadError::Gone))
    }

    /// Makes room for at least `need` more bytes (at most up to `len` in all),
    /// doubling the buffer and charging the budget for the new capacity first.
    fn grow<'a>(&'a self, up: &mut Upload<'a>, len: usize, need: usize) -> Result<(), UploadError> {
        let (have, cap) = (up.body.len(), up.body.capacity());
        if cap - have >= need || have >= len {
            return Ok(());
        }
        let target = cap
            .saturating_mul(2)
            .max(MIN_GROWTH)
            .max(have + need)
            .min(len);
        let extra = target - cap;
        let n = u32::try_from(extra).map_err(|_| UploadError::Busy)?;
        let permit = self
            .budget
            .try_acquire_many(n)
            .map_err(|_| UploadError::Busy)?;
        up.body.reserve_exact(target - have);
        match &mut up.charge {
            Some(held) => held.merge(permit),
            None => up.charge = Some(permit),
        }
        // `reserve_exact` may round up; charge any rounding too, or give up the buffer.
        let over = up.body.capacity().saturating_sub(target);
        if over > 0 {
            let n = u32::try_from(over).map_err(|_| UploadError::Busy)?;
            let more = self
                .budget
                .try_acquire_many(n)
                .map_err(|_| UploadError::Busy)?;
            if let Some(held) = &mut up.charge {
                held.merge(more);
            }
        }
        Ok(())
    }

    /// Bytes of budget not held by any upload.
    #[cfg(test)]
    fn free(&self) -> usize {
        self.budget.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(budget: usize, per_minute: u32) -> UploadLimits {
        UploadLimits::new(&TrackerConfig {
            publish_budget_bytes: budget,
            max_publish_bytes: 1,
            publish_per_minute: per_minute,
            ..TrackerConfig::default()
        })
    }

    #[test]
    fn token_bucket_per_ip_refills_over_time() {
        let l = limits(1 << 20, 2);
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.allow(a, t0) && l.allow(a, t0));
        assert!(!l.allow(a, t0), "burst is the per-minute rate");
        assert!(l.allow(b, t0), "other hosts are unaffected");
        assert!(!l.allow(a, t0 + Duration::from_secs(20)));
        assert!(l.allow(a, t0 + Duration::from_secs(31)));
        // Loopback gets ten times the rate.
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!((0..20).all(|_| l.allow(lo, t0)));
        assert!(!l.allow(lo, t0));
        let unlimited = limits(1 << 20, 0);
        assert!((0..1000).all(|_| unlimited.allow(a, t0)));
    }

    #[tokio::test]
    async fn headers_alone_cost_nothing_and_the_budget_is_shared() {
        let l = limits(200 << 10, 0);
        let total = l.free();
        // Announcing 16 MiB charges only what is buffered, even while waiting.
        let mut idle = l.start(b"", 16 << 20).unwrap();
        let (mut silent, _keep) = tokio::io::duplex(64);
        let wait = l.finish(&mut idle, &mut silent, 16 << 20, Duration::from_millis(50));
        assert_eq!(wait.await, Err(UploadError::Gone));
        assert_eq!(l.free(), total);
        drop(idle);
        let mut a = l.start(b"abc", 150 << 10).unwrap();
        assert!(a.body.capacity() >= 3 && total - l.free() == a.body.capacity());
        let data = vec![7u8; 150 << 10];
        let mut src = &data[3..];
        l.finish(&mut a, &mut src, 150 << 10, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(a.body.len(), 150 << 10);
        assert_eq!(&a.body[..3], b"abc");
        // The second upload cannot grow past what is left.
        let mut b = l.start(b"", 150 << 10).unwrap_or_else(|_| unreachable!());
        let mut src = &data[..];
        let r = l
            .finish(&mut b, &mut src, 150 << 10, Duration::from_secs(5))
            .await;
        assert_eq!(r, Err(UploadError::Busy));
        drop((a, b));
        assert_eq!(l.free(), total, "every charge is returned");
    }

    #[tokio::test]
    async fn short_or_stalled_bodies_are_gone() {
        let l = limits(1 << 20, 0);
        let mut up = l.start(b"", 10).unwrap();
        let mut short = &b"12345"[..];
        let r = l
            .finish(&mut up, &mut short, 10, Duration::from_secs(5))
            .await;
        assert_eq!(r, Err(UploadError::Gone));
        let (mut stalled, _keep) = tokio::io::duplex(64);
        let mut up = l.start(b"", 10).unwrap();
        let r = l
            .finish(&mut up, &mut stalled, 10, Duration::from_millis(50))
            .await;
        assert_eq!(r, Err(UploadError::Gone));
    }
}
