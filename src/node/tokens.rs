//! Stream tokens: short-lived random tokens that let a media player (VLC, mpv),
//! which cannot log in, open one file's stream URL (`?token=...`).
//!
//! A token is 128 random bits in hex, bound to one torrent and file, valid for
//! [`TOKEN_TTL`]; tokens live in memory only (a restart revokes them). At most
//! [`MAX_TOKENS`] are kept: expired ones are dropped first, then the oldest.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use shoal_proto::InfoHash;

/// How long a stream token is valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);
/// Most tokens kept at once.
const MAX_TOKENS: usize = 4096;

#[derive(Clone, Copy)]
struct Grant {
    hash: InfoHash,
    file: usize,
    expires: Instant,
}

/// The node's stream tokens.
#[derive(Default)]
pub struct StreamTokens {
    map: Mutex<HashMap<String, Grant>>,
}

impl StreamTokens {
    /// A new token for file `file` of torrent `hash`.
    pub fn issue(&self, hash: InfoHash, file: usize) -> String {
        self.issue_at(hash, file, Instant::now())
    }

    fn issue_at(&self, hash: InfoHash, file: usize, now: Instant) -> String {
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TOKENS {
            map.retain(|_, g| g.expires > now);
        }
        if map.len() >= MAX_TOKENS {
            let oldest = map
                .iter()
                .min_by_key(|(_, g)| g.expires)
                .map(|(t, _)| t.clone());
            if let Some(t) = oldest {
                map.remove(&t);
            }
        }
        let expires = now + TOKEN_TTL;
        map.insert(
            token.clone(),
            Grant {
                hash,
                file,
                expires,
            },
        );
        token
    }

    /// True if `token` is valid now for file `file` of torrent `hash`.
    pub fn check(&self, token: &str, hash: InfoHash, file: usize) -> bool {
        self.check_at(token, hash, file, Instant::now())
    }

    fn check_at(&self, token: &str, hash: InfoHash, file: usize, now: Instant) -> bool {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(token)
            .is_some_and(|g| g.hash == hash && g.file == file && g.expires > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_a_file_and_expire() {
        let t = StreamTokens::default();
        let (a, b) = (InfoHash([1; 20]), InfoHash([2; 20]));
        let now = Instant::now();
        let tok = t.issue_at(a, 3, now);
        assert_eq!(tok.len(), 32);
        assert!(t.check_at(&tok, a, 3, now));
        assert!(!t.check_at(&tok, a, 2, now), "another file");
        assert!(!t.check_at(&tok, b, 3, now), "another torrent");
        assert!(!t.check_at("00", a, 3, now));
        assert!(!t.check_at(&tok, a, 3, now + TOKEN_TTL), "expired");
        assert_ne!(t.issue_at(a, 3, now), tok);
    }

    #[test]
    fn the_map_is_bounded() {
        let t = StreamTokens::default();
        let a = InfoHash([1; 20]);
        let now = Instant::now();
        let first = t.issue_at(a, 0, now);
        for i in 0..MAX_TOKENS {
            t.issue_at(a, 0, now + Duration::from_millis(i as u64 + 1));
        }
        assert_eq!(t.map.lock().unwrap().len(), MAX_TOKENS);
        assert!(!t.check_at(&first, a, 0, now), "the oldest went");
    }
}
