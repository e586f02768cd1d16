//! Magnet links (BEP 9 form): `magnet:?xt=urn:btih:<hash>&dn=<name>&tr=<tracker>...`.
//!
//! The info-hash may be 40 hex characters or 32 base32 characters (RFC 4648, either
//! case). `dn`, `tr` and `x.pe` are percent-decoded; `+` means a space in `dn` only,
//! since tracker URLs may contain a literal `+`. Indexed keys (`xt.1`, `tr.2`) count as
//! their base key. `so` (BEP 53) selects files by index and range. Unknown keys are
//! ignored; v2-only links (`btmh` without `btih`) are
//! refused.
//!
//! ```
//! use shoal_proto::magnet::Magnet;
//! let m = Magnet::parse("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=a+b").unwrap();
//! assert_eq!(m.display_name.as_deref(), Some("a b"));
//! assert_eq!(Magnet::parse(&m.to_uri()).unwrap(), m);
//! ```

use thiserror::Error;

use crate::ids::InfoHash;
use crate::urlenc;

/// A parsed magnet link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The torrent's v1 info-hash (`xt=urn:btih:`).
    pub info_hash: InfoHash,
    /// Suggested name (`dn`), until the metadata says otherwise.
    pub display_name: Option<String>,
    /// Tracker URLs (`tr`), in link order.
    pub trackers: Vec<String>,
    /// Peer addresses to try (`x.pe`, `host:port`), in link order.
    pub peers: Vec<String>,
    /// Files to download (BEP 53 `so`: indices and ranges such as `0,2,4-6`), sorted
    /// and without duplicates; `None`: every file.
    pub select_only: Option<Vec<u32>>,
}

/// Most file indices a `so` parameter may name (a range `0-4000000000` is refused, not
/// expanded).
pub const MAX_SELECT_ONLY: usize = 100_000;

/// Why a magnet link was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MagnetError {
    /// The text does not start with `magnet:?`.
    #[error("not a magnet link: it should start with `magnet:?`")]
    NotMagnet,
    /// No `xt=urn:btih:` parameter.
    #[error(
        "magnet link has no `xt=urn:btih:` info-hash (v2-only `btmh` links are not supported)"
    )]
    NoBtih,
    /// The btih value is neither 40 hex nor 32 base32 characters.
    #[error("magnet info-hash `{hash}` is not 40 hex or 32 base32 characters")]
    BadHash {
        /// The value after `urn:btih:`.
        hash: String,
    },
    /// A parameter has a malformed `%XX` escape.
    #[error("magnet parameter `{key}` has a bad percent-escape")]
    BadEscape {
        /// The parameter name.
        key: String,
    },
    /// A parameter does not decode to UTF-8.
    #[error("magnet parameter `{key}` is not valid UTF-8 after percent-decoding")]
    NotUtf8 {
        /// The parameter name.
        key: String,
    },
    /// `so` is not a list of file indices and ranges (BEP 53).
    #[error("magnet `so` value `{0}` is not a list of file indices such as 0,2,4-6")]
    BadSelectOnly(String),
}

impl Magnet {
    /// A magnet for `info_hash` with no name, trackers or peers.
    pub fn new(info_hash: InfoHash) -> Self {
        Magnet {
            info_hash,
            display_name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
            select_only: None,
        }
    }

    /// Parses a magnet URI. The first `btih` wins if several are given.
    pub fn parse(uri: &str) -> Result<Magnet, MagnetError> {
        let query =
            strip_prefix_ignore_case(uri.trim(), "magnet:?").ok_or(MagnetError::NotMagnet)?;
        let mut info_hash = None;
        let mut display_name = None;
        let mut trackers = Vec::new();
        let mut peers = Vec::new();
        let mut select_only = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let base = match key {
                "x.pe" => key,
                _ => key.split_once('.').map_or(key, |(base, _)| base),
            };
            match base {
                "xt" => {
                    let value = decode_param(key, raw, false)?;
                    if let Some(hash) = strip_prefix_ignore_case(&value, "urn:btih:") {
                        if info_hash.is_none() {
                            info_hash = Some(parse_btih(hash)?);
                        }
                    }
                }
                "dn" => display_name = Some(decode_param(key, raw, true)?),
                "tr" => trackers.push(decode_param(key, raw, false)?),
                "x.pe" => peers.push(decode_param(key, raw, false)?),
                "so" => select_only = Some(parse_select_only(&decode_param(key, raw, false)?)?),
                _ => {}
            }
        }
        Ok(Magnet {
            info_hash: info_hash.ok_or(MagnetError::NoBtih)?,
            display_name,
            trackers,
            peers,
            select_only,
        })
    }

    /// The magnet URI: hex `btih`, then percent-encoded `dn`, `tr` and `x.pe`.
    pub fn to_uri(&self) -> String {
        let mut s = format!("magnet:?xt=urn:btih:{}", self.info_hash.to_hex());
        if let Some(dn) = &self.display_name {
            s.push_str("&dn=");
            s.push_str(&urlenc::encode(dn.as_bytes()));
        }
        for tr in &self.trackers {
            s.push_str("&tr=");
            s.push_str(&urlenc::encode(tr.as_bytes()));
        }
        for pe in &self.peers {
            s.push_str("&x.pe=");
            s.push_str(&urlenc::encode(pe.as_bytes()));
        }
        if let Some(so) = &self.select_only {
            let list: Vec<String> = so.iter().map(u32::to_string).collect();
            s.push_str("&so=");
            s.push_str(&list.join(","));
        }
        s
    }

    /// Per file of a torrent with `files` files: whether `so` selects it (all when the
    /// link has no `so`; indices past the end are ignored).
    pub fn wanted_files(&self, files: usize) -> Option<Vec<bool>> {
        let so = self.select_only.as_ref()?;
        let mut wanted = vec![false; files];
        for &i in so {
            if let Some(w) = wanted.get_mut(i as usize) {
                *w = true;
            }
        }
        Some(wanted)
    }
}

/// Parses a BEP 53 `so` value: comma-separated indices and inclusive ranges.
fn parse_select_only(v: &str) -> Result<Vec<u32>, MagnetError> {
    let bad = || MagnetError::BadSelectOnly(v.to_owned());
    let mut out = Vec::new();
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: u32 = a.trim().parse().map_err(|_| bad())?;
        let b: u32 = b.trim().parse().map_err(|_| bad())?;
        if a > b || (b - a) as usize >= MAX_SELECT_ONLY || out.len() > MAX_SELECT_ONLY {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    if out.is_empty() || out.len() > MAX_SELECT_ONLY {
        return Err(bad());
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn decode_param(key: &str, raw: &str, plus_is_space: bool) -> Result<String, MagnetError> {
    let bytes =
        urlenc::decode(raw.as_bytes(), plus_is_space).ok_or_else(|| MagnetError::BadEscape {
            key: key.to_owned(),
        })?;
    String::from_utf8(bytes).map_err(|_| MagnetError::NotUtf8 {
        key: key.to_owned(),
    })
}

fn parse_btih(hash: &str) -> Result<InfoHash, MagnetError> {
    let parsed = match hash.len() {
        40 => InfoHash::from_hex(hash),
        32 => base32_20(hash).map(InfoHash),
        _ => None,
    };
    parsed.ok_or_else(|| MagnetError::BadHash {
        hash: hash.to_owned(),
    })
}

/// Decodes 32 RFC 4648 base32 characters (either case, no padding) into 20 bytes.
fn base32_20(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let mut acc: u64 = 0;
    let mut bits = 0;
    let mut n = 0;
    for c in s.bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    (n == 20).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
    const B32: &str = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";

    #[test]
    fn select_only_lists_and_ranges() {
        let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&so=0,2,4-6,2")).unwrap();
        assert_eq!(m.select_only, Some(vec![0, 2, 4, 5, 6]));
        assert_eq!(Magnet::parse(&m.to_uri()).unwrap(), m);
        assert_eq!(
            m.wanted_files(5),
            Some(vec![true, false, true, false, true])
        );
        for bad in ["x", "3-1", "0-4000000000", "", "1,,-2"] {
            let uri = format!("magnet:?xt=urn:btih:{HEX}&so={bad}");
            assert!(Magnet::parse(&uri).is_err(), "{bad}");
        }
        assert_eq!(Magnet::new(InfoHash([0; 20])).wanted_files(3), None);
    }

    #[test]
    fn hex_and_base32_agree() {
        let a = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}")).unwrap();
        let b = Magnet::parse(&format!("magnet:?xt=urn:btih:{B32}")).unwrap();
        let c = Magnet::parse(&format!("MAGNET:?xt=URN:BTIH:{}", B32.to_lowercase())).unwrap();
        let d = Magnet::parse(&format!("magnet:?xt=urn:btih:{}", HEX.to_uppercase())).unwrap();
        assert_eq!(a.info_hash.to_hex(), HEX);
        assert!(a == b && b == c && c == d);
    }

    #[test]
    fn full_link() {
        let uri = format!(
            "magnet:?xt=urn:btmh:1220aa&xt=urn:btih:{HEX}&dn=Big+Buck%20Bunny\
             &tr=udp%3A%2F%2Ftracker.example%3A1337&tr.1=http://t.example/a+b\
             &x.pe=10.0.0.1%3A6881&x.pe=[::1]:7&ws=http://ignored&"
        );
        let m = Magnet::parse(&uri).unwrap();
        assert_eq!(m.display_name.as_deref(), Some("Big Buck Bunny"));
        assert_eq!(
            m.trackers,
            ["udp://tracker.example:1337", "http://t.example/a+b"]
        );
        assert_eq!(m.peers, ["10.0.0.1:6881", "[::1]:7"]);
        assert_eq!(Magnet::parse(&m.to_uri()).unwrap(), m);
    }

    #[test]
    fn to_uri_form() {
        let mut m = Magnet::new(InfoHash::from_hex(HEX).unwrap());
        m.display_name = Some("a b/c".into());
        m.trackers.push("http://t/announce".into());
        assert_eq!(
            m.to_uri(),
            format!("magnet:?xt=urn:btih:{HEX}&dn=a%20b%2Fc&tr=http%3A%2F%2Ft%2Fannounce")
        );
    }

    #[test]
    fn errors() {
        assert_eq!(Magnet::parse("http://x"), Err(MagnetError::NotMagnet));
        assert_eq!(Magnet::parse("magnet"), Err(MagnetError::NotMagnet));
        assert_eq!(Magnet::parse("magnet:?dn=x"), Err(MagnetError::NoBtih));
        assert_eq!(
            Magnet::parse("magnet:?xt=urn:btmh:1220abcd"),
            Err(MagnetError::NoBtih)
        );
        for bad in [
            "abc",
            &HEX[1..],
            "Z".repeat(40).as_str(),
            "1".repeat(32).as_str(),
        ] {
            assert_eq!(
                Magnet::parse(&format!("magnet:?xt=urn:btih:{bad}")),
                Err(MagnetError::BadHash { hash: bad.into() })
            );
        }
        assert_eq!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&tr=%zz")),
            Err(MagnetError::BadEscape { key: "tr".into() })
        );
        assert_eq!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&dn=%ff")),
            Err(MagnetError::NotUtf8 { key: "dn".into() })
        );
        // Multi-byte characters where the prefix would be cut mid-character.
        assert_eq!(Magnet::parse("magnét:?"), Err(MagnetError::NotMagnet));
    }

    proptest! {
        #[test]
        fn round_trip(hash: [u8; 20], dn in proptest::option::of(".{0,30}"),
                      trackers in proptest::collection::vec(".{0,30}", 0..4),
                      peers in proptest::collection::vec(".{0,20}", 0..3)) {
            let m = Magnet { info_hash: InfoHash(hash), display_name: dn, trackers, peers, select_only: None };
            prop_assert_eq!(Magnet::parse(&m.to_uri()), Ok(m));
        }

        #[test]
        fn random_text_never_panics(s in "\\PC{0,80}", tail in ".{0,80}") {
            let _ = Magnet::parse(&s);
            let _ = Magnet::parse(&format!("magnet:?{tail}"));
            let _ = Magnet::parse(&format!("magnet:?xt=urn:btih:{tail}"));
        }
    }
}
