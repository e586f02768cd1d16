//! Brute-force throttle: failed logins counted per client address on a clock passed
//! in. Five failures within 15 minutes ban the address for 15 minutes, during which its
//! credentials are not even checked (the caller answers 429, or 403 on the qBittorrent
//! login as qBittorrent does). A success forgets the address's failures.
//!
//! Memory is bounded: at most [`MAX_ADDRESSES`] addresses are tracked; when full, stale
//! records go first, then the one idle longest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures within [`WINDOW`] that ban an address.
pub const MAX_FAILURES: usize = 5;
/// How far back failures count.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a ban lasts.
pub const BAN: Duration = Duration::from_secs(15 * 60);
/// Addresses tracked at most.
pub const MAX_ADDRESSES: usize = 4096;

/// The address is banned; try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Banned {
    pub retry_after: Duration,
}

#[derive(Debug, Default)]
struct Record {
    /// Times of the failures still inside the window, oldest first (at most
    /// `MAX_FAILURES`).
    failures: Vec<Instant>,
    banned_until: Option<Instant>,
}

impl Record {
    fn last_seen(&self) -> Option<Instant> {
        self.failures.last().copied()
    }

    fn stale(&self, now: Instant) -> bool {
        self.banned_until.map_or(true, |t| t <= now)
            && self
                .last_seen()
                .map_or(true, |t| now.saturating_duration_since(t) >= WINDOW)
    }
}

/// Failed logins per client address.
#[derive(Debug, Default)]
pub struct Throttle {
    records: HashMap<IpAddr, Record>,
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle::default()
    }

    /// `Err` while `ip` is banned.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Banned> {
        match self.records.get(&ip).and_then(|r| r.banned_until) {
            Some(until) if until > now => Err(Banned {
                retry_after: until - now,
            }),
            _ => Ok(()),
        }
    }

    /// Records a failed login from `ip`; the one that makes [`MAX_FAILURES`] within
    /// [`WINDOW`] starts a ban.
    pub fn failure(&mut self, ip: IpAddr, now: Instant) {
        if !self.records.contains_key(&ip) && self.records.len() >= MAX_ADDRESSES {
            self.make_room(now);
        }
        let r = self.records.entry(ip).or_default();
        if r.banned_until.is_some_and(|t| t <= now) {
            r.banned_until = None;
            r.failures.clear();
        }
        r.failures
            .retain(|&t| now.saturating_duration_since(t) < WINDOW);
        r.failures.push(now);
        if r.failures.len() >= MAX_FAILURES {
            r.banned_until = Some(now + BAN);
            r.failures.clear();
        }
    }

    /// A successful login from `ip`: its failures are forgotten.
    pub fn success(&mut self, ip: IpAddr) {
        self.records.remove(&ip);
    }

    fn make_room(&mut self, now: Instant) {
        self.records.retain(|_, r| !r.stale(now));
        if self.records.len() >= MAX_ADDRESSES {
            let oldest = self
                .records
                .iter()
                .filter(|(_, r)| r.banned_until.is_none())
                .min_by_key(|(_, r)| r.last_seen())
                .map(|(ip, _)| *ip);
            if let Some(ip) = oldest {
                self.records.remove(&ip);
            }
        }
    }

    /// Addresses tracked (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    #[test]
    fn fifth_failure_bans_for_fifteen_minutes() {
        let mut t = Throttle::new();
        let t0 = Instant::now();
        let a = ip(1);
        for i in 0..4 {
            t.failure(a, t0 + Duration::from_secs(i * 60));
            assert_eq!(t.check(a, t0 + Duration::from_secs(i * 60)), Ok(()));
        }
        let fifth = t0 + Duration::from_secs(10 * 60);
        t.failure(a, fifth);
        let banned = t.check(a, fifth).unwrap_err();
        assert_eq!(banned.retry_after, BAN);
        // Another address is not affected.
        assert_eq!(t.check(ip(2), fifth), Ok(()));
        assert!(t.check(a, fifth + BAN - Duration::from_secs(1)).is_err());
        assert_eq!(t.check(a, fifth + BAN), Ok(()));
        // After the ban a single failure does not ban again.
        t.failure(a, fifth + BAN);
        assert_eq!(t.check(a, fifth + BAN), Ok(()));
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let mut t = Throttle::new();
        let t0 = Instant::now();
        let a = ip(1);
        for i in 0..4 {
            t.failure(a, t0 + Duration::from_secs(i));
        }
        // The fifth comes 15 minutes after the first four: only 1 (+0) in the window.
        let later = t0 + WINDOW + Duration::from_secs(10);
        t.failure(a, later);
        assert_eq!(t.check(a, later), Ok(()));
        for i in 1..4 {
            t.failure(a, later + Duration::from_secs(i));
        }
        assert_eq!(t.check(a, later + Duration::from_secs(3)), Ok(()));
        t.failure(a, later + Duration::from_secs(4));
        assert!(t.check(a, later + Duration::from_secs(4)).is_err());
    }

    #[test]
    fn success_forgets_failures() {
        let mut t = Throttle::new();
        let t0 = Instant::now();
        let a = ip(1);
        for _ in 0..4 {
            t.failure(a, t0);
        }
        t.success(a);
        t.failure(a, t0);
        assert_eq!(t.check(a, t0), Ok(()));
    }

    #[test]
    fn tracked_addresses_are_bounded_and_bans_survive_the_pressure() {
        let mut t = Throttle::new();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            t.failure(ip(0), t0);
        }
        for n in 1..(MAX_ADDRESSES as u32 * 2) {
            t.failure(ip(n), t0 + Duration::from_millis(u64::from(n)));
        }
        assert!(t.len() <= MAX_ADDRESSES);
        assert!(t.check(ip(0), t0 + Duration::from_secs(60)).is_err());
    }
}
