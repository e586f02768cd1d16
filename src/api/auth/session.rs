//! Login sessions: random 128-bit tokens (the `SID` cookie) kept in memory, on a clock
//! passed in. A session ends after [`IDLE`] without a request, on logout, or when the
//! password or user name changes ([`Sessions::clear`]). A restart ends them all.
//!
//! At most [`MAX_SESSIONS`] live at once; a new one past that evicts expired ones, then
//! the one idle longest, so repeated logins cannot grow memory.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::RngCore;

/// A session unused this long is gone.
pub const IDLE: Duration = Duration::from_secs(60 * 60);
/// Sessions kept at most.
pub const MAX_SESSIONS: usize = 1024;

/// Live sessions: token (32 hex digits) → last use.
#[derive(Debug, Default)]
pub struct Sessions {
    live: HashMap<String, Instant>,
}

/// A new random token: 128 bits from the OS, as 32 lower-case hex digits.
pub fn new_token() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    shoal_proto::ids::to_hex(&b)
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions::default()
    }

    /// Starts a session; returns its token.
    pub fn create(&mut self, now: Instant) -> String {
        if self.live.len() >= MAX_SESSIONS {
            self.live
                .retain(|_, &mut t| now.saturating_duration_since(t) < IDLE);
            if self.live.len() >= MAX_SESSIONS {
                let oldest = self
                    .live
                    .iter()
                    .min_by_key(|(_, &t)| t)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.live.remove(&k);
                }
            }
        }
        let token = new_token();
        self.live.insert(token.clone(), now);
        token
    }

    /// Whether `token` is a live session; if so, it counts as used at `now`.
    pub fn touch(&mut self, token: &str, now: Instant) -> bool {
        match self.live.get_mut(token) {
            Some(last) if now.saturating_duration_since(*last) < IDLE => {
                *last = now;
                true
            }
            Some(_) => {
                self.live.remove(token);
                false
            }
            None => false,
        }
    }

    /// Ends one session (logout).
    pub fn remove(&mut self, token: &str) {
        self.live.remove(token);
    }

    /// Ends every session (the credentials changed).
    pub fn clear(&mut self) {
        self.live.clear();
    }

    /// Sessions held (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_while_used_and_ends_after_an_idle_hour() {
        let mut s = Sessions::new();
        let t0 = Instant::now();
        let tok = s.create(t0);
        assert_eq!(tok.len(), 32);
        assert!(tok.bytes().all(|b| b.is_ascii_hexdigit()));
        // Used every 50 minutes, it lives for hours.
        let mut t = t0;
        for _ in 0..5 {
            t += Duration::from_secs(50 * 60);
            assert!(s.touch(&tok, t));
        }
        assert!(!s.touch(&tok, t + IDLE));
        // Gone for good, even if the clock were to go back.
        assert!(!s.touch(&tok, t));
        assert!(!s.touch("0123456789abcdef0123456789abcdef", t0));
    }

    #[test]
    fn logout_and_clear_end_sessions() {
        let mut s = Sessions::new();
        let t0 = Instant::now();
        let a = s.create(t0);
        let b = s.create(t0);
        assert_ne!(a, b);
        s.remove(&a);
        assert!(!s.touch(&a, t0));
        assert!(s.touch(&b, t0));
        s.clear();
        assert!(!s.touch(&b, t0));
    }

    #[test]
    fn sessions_are_bounded_evicting_the_idlest() {
        let mut s = Sessions::new();
        let t0 = Instant::now();
        let idle = s.create(t0);
        let busy = s.create(t0);
        let mut newest = String::new();
        for i in 1..=MAX_SESSIONS as u64 {
            let now = t0 + Duration::from_secs(i);
            assert!(s.touch(&busy, now));
            newest = s.create(now);
        }
        assert!(s.len() <= MAX_SESSIONS);
        let now = t0 + Duration::from_secs(MAX_SESSIONS as u64 + 1);
        assert!(!s.touch(&idle, now), "the idlest session goes first");
        assert!(s.touch(&busy, now));
        assert!(s.touch(&newest, now));
    }
}
