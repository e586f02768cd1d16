//! Connection ids that cannot be forged (BEP 15 "connect").
//!
//! An id is the first 8 bytes of SHA-1(key || window || ip || port), where `key` is 32
//! random bytes drawn once per process and `window` is the current minute. Nothing is
//! stored per client, so a flood of connects costs no memory. Only someone who sees the
//! reply (the real owner of the address) learns a valid id, which is the point: a
//! spoofed source cannot announce on someone else's behalf or use the tracker to
//! amplify traffic at a victim. Inputs are fixed-length, so SHA-1's length extension
//! does not apply; a 64-bit tag is plenty for an id that lives two minutes.
//!
//! An id is accepted in the window it was minted and the next one: at least one and
//! at most two minutes, matching BEP 15 (clients use an id for up to a minute).

use std::net::{IpAddr, SocketAddr};

use rand::RngCore;
use sha1::{Digest, Sha1};

/// Seconds per window.
const WINDOW_SECS: u64 = 60;

/// Mints and checks connection ids.
pub(crate) struct ConnectionIds {
    key: [u8; 32],
}

impl ConnectionIds {
    /// A fresh random key (from the OS-seeded CSPRNG).
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        ConnectionIds { key }
    }

    fn tag(&self, window: u64, addr: &SocketAddr) -> u64 {
        let ip = match addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        let mut h = Sha1::new();
        h.update(self.key);
        h.update(window.to_be_bytes());
        h.update(ip);
        h.update(addr.port().to_be_bytes());
        let d = h.finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        u64::from_be_bytes(b)
    }

    /// The id for `addr` at `now_secs` (seconds on any steady clock).
    pub fn mint(&self, addr: &SocketAddr, now_secs: u64) -> u64 {
        self.tag(now_secs / WINDOW_SECS, addr)
    }

    /// Whether `id` was minted for `addr` in this window or the previous one.
    pub fn check(&self, id: u64, addr: &SocketAddr, now_secs: u64) -> bool {
        let w = now_secs / WINDOW_SECS;
        id == self.tag(w, addr) || (w > 0 && id == self.tag(w - 1, addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_for_one_to_two_minutes_and_bound_to_the_address() {
        let ids = ConnectionIds::new();
        let a: SocketAddr = "10.0.0.1:6881".parse().unwrap();
        let b: SocketAddr = "10.0.0.1:6882".parse().unwrap();
        let t = 1_000_020;
        let id = ids.mint(&a, t);
        assert!(ids.check(id, &a, t));
        assert!(ids.check(id, &a, t + 60));
        assert!(!ids.check(id, &a, t + 120));
        assert!(!ids.check(id, &b, t));
        assert!(!ids.check(id ^ 1, &a, t));
        // Another process (another key) does not accept it.
        assert!(!ConnectionIds::new().check(id, &a, t));
        // IPv4 and its mapped IPv6 form are the same client.
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:6881".parse().unwrap();
        assert!(ids.check(id, &mapped, t));
    }
}
