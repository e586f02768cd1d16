//! Identifier newtypes: [`InfoHash`], [`PeerId`], [`PieceIndex`], and hex helpers.

use std::fmt;

/// SHA-1 of a torrent's raw `info` dictionary (BEP 3): the torrent's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

/// The 20-byte peer ID sent in handshakes and announces.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 20]);

/// Zero-based index of a piece (the hashed unit; the UI may call it a chunk).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PieceIndex(pub u32);

/// Azureus-style client prefix Shoal puts at the start of its peer IDs.
pub const CLIENT_PREFIX: &[u8; 8] = b"-SH0100-";

impl InfoHash {
    /// Lower-case hex, 40 characters.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
    /// Parses 40 hex characters (either case).
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 20];
        from_hex_into(s, &mut out).then_some(InfoHash(out))
    }
    /// SHA-1 of raw bytes, as used for the `info` dictionary.
    pub fn of(bytes: &[u8]) -> Self {
        use sha1::{Digest, Sha1};
        InfoHash(Sha1::digest(bytes).into())
    }
}

impl PeerId {
    /// A peer ID with Shoal's client prefix and the given 12 bytes of randomness,
    /// printable so logs and tracker pages stay readable.
    pub fn with_random(random: [u8; 12]) -> Self {
        const ALPHABET: &[u8; 62] =
            b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(CLIENT_PREFIX);
        for (slot, r) in id[8..].iter_mut().zip(random) {
            *slot = ALPHABET[usize::from(r) % ALPHABET.len()];
        }
        PeerId(id)
    }
    /// A readable client name guessed from an Azureus-style prefix (`-TR3000-` -> `TR 3000`).
    pub fn client_name(&self) -> String {
        let id = &self.0;
        if id[0] == b'-' && id[7] == b'-' && id[1..7].iter().all(u8::is_ascii_alphanumeric) {
            let code = String::from_utf8_lossy(&id[1..3]);
            let ver = String::from_utf8_lossy(&id[3..7]);
            let name = match &*code {
                "SH" => "Shoal",
                "TR" => "Transmission",
                "qB" => "qBittorrent",
                "lt" | "LT" => "libtorrent",
                "AR" => "aria2",
                "rQ" => "rqbit",
                "UT" => "uTorrent",
                "DE" => "Deluge",
                _ => return format!("{code} {ver}"),
            };
            return format!("{name} {ver}");
        }
        if id.starts_with(b"A2-") {
            return "aria2".into();
        }
        "unknown".into()
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}
impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PeerId({})",
            String::from_utf8_lossy(&self.0).escape_debug()
        )
    }
}
impl fmt::Display for PieceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// Decodes hex into `out`; false unless `s` is exactly `2 * out.len()` hex digits.
pub fn from_hex_into(s: &str, out: &mut [u8]) -> bool {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return false;
    }
    for (i, o) in out.iter_mut().enumerate() {
        match (hex_val(b[2 * i]), hex_val(b[2 * i + 1])) {
            (Some(h), Some(l)) => *o = h << 4 | l,
            _ => return false,
        }
    }
    true
}

/// The value of one hex digit (either case).
pub(crate) fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = InfoHash::of(b"abc");
        assert_eq!(h.to_hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(InfoHash::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert_eq!(InfoHash::from_hex("zz"), None);
    }

    #[test]
    fn peer_id_prefix_and_name() {
        let p = PeerId::with_random([200; 12]);
        assert!(p.0.starts_with(CLIENT_PREFIX));
        assert_eq!(p.client_name(), "Shoal 0100");
        assert_eq!(
            PeerId(*b"-TR3000-abcdefghijkl").client_name(),
            "Transmission 3000"
        );
    }
}
