//! `announce_peer` tokens (BEP 5): a keyed hash of the querier's IP address.
//!
//! A token proves the announcer received our `get_peers` answer at its address, so no
//! one can announce a third party. The secret changes every [`ROTATE`]; tokens made
//! with the current or the previous secret are accepted, so a token lives 5 to 10 min.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

/// How often the secret changes.
pub const ROTATE: Duration = Duration::from_secs(5 * 60);
/// Bytes of a token we hand out.
pub const TOKEN_LEN: usize = 8;

/// The two live secrets and when the current one was made.
pub(crate) struct Tokens {
    current: [u8; 20],
    previous: [u8; 20],
    rotated: Instant,
}

impl Tokens {
    pub(crate) fn new(secret: [u8; 20], now: Instant) -> Self {
        Tokens {
            current: secret,
            previous: secret,
            rotated: now,
        }
    }

    /// When the secret is next due to change.
    pub(crate) fn next_rotation(&self) -> Instant {
        self.rotated + ROTATE
    }

    /// Replaces the secret with `fresh` if it is due.
    pub(crate) fn rotate_if_due(&mut self, now: Instant, fresh: [u8; 20]) {
        if now >= self.next_rotation() {
            self.previous = self.current;
            self.current = fresh;
            self.rotated = now;
        }
    }

    /// The token for a querier at `ip`.
    pub(crate) fn make(&self, ip: IpAddr) -> [u8; TOKEN_LEN] {
        token(&self.current, ip)
    }

    /// Whether `t` is a token we gave `ip` within the last two secrets.
    pub(crate) fn check(&self, ip: IpAddr, t: &[u8]) -> bool {
        t == token(&self.current, ip) || t == token(&self.previous, ip)
    }
}

fn token(secret: &[u8; 20], ip: IpAddr) -> [u8; TOKEN_LEN] {
    let mut h = Sha1::new();
    h.update(secret);
    match ip {
        IpAddr::V4(ip) => h.update(ip.octets()),
        IpAddr::V6(ip) => h.update(ip.octets()),
    }
    let d: [u8; 20] = h.finalize().into();
    let mut t = [0u8; TOKEN_LEN];
    t.copy_from_slice(&d[..TOKEN_LEN]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn tokens_live_two_rotations() {
        let t0 = Instant::now();
        let ip = IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4));
        let mut k = Tokens::new([1; 20], t0);
        let tok = k.make(ip);
        assert!(k.check(ip, &tok));
        assert!(!k.check(Ipv4Addr::new(1, 2, 3, 5).into(), &tok));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(k.check(v6, &k.make(v6)));
        assert!(!k.check(v6, &tok));
        k.rotate_if_due(t0 + ROTATE / 2, [2; 20]);
        assert_eq!(k.make(ip), tok, "not yet due");
        k.rotate_if_due(t0 + ROTATE, [2; 20]);
        assert!(k.check(ip, &tok), "previous secret still accepted");
        k.rotate_if_due(t0 + ROTATE * 2, [3; 20]);
        assert!(!k.check(ip, &tok), "two rotations later it is refused");
        assert!(!k.check(ip, b""));
    }
}
