//! Local Service Discovery announces (BEP 14): HTTP-over-UDP-multicast packets that say
//! "I take part in these swarms and listen on this port".
//!
//! ```text
//! BT-SEARCH * HTTP/1.1\r\n
//! Host: 239.192.152.143:6771\r\n
//! Port: 6881\r\n
//! Infohash: <40 hex>\r\n      (one or more, consecutive)
//! cookie: <opaque>\r\n
//! \r\n
//! \r\n
//! ```
//!
//! [`encode_announces`] splits many info-hashes over several packets so that none
//! exceeds [`MAX_PACKET_LEN`] (1400 bytes, as the BEP asks, to avoid fragmentation).
//! [`parse_announce`] reads one packet: header names in any case, unknown headers
//! ignored, line ends `\r\n` or `\n`. It refuses (with an [`LsdError`], never a panic)
//! a packet larger than [`MAX_PARSE_LEN`], a missing or bad port, a bad info-hash, none
//! at all, or more than [`MAX_INFO_HASHES`], so one packet costs a bounded amount of
//! work. The receiver's address comes from the UDP source, not from the packet.
//!
//! ```
//! use shoal_proto::lsd::{encode_announces, parse_announce, Cookie};
//! use shoal_proto::InfoHash;
//! let cookie = Cookie::new("shoal-1").unwrap();
//! let packets = encode_announces(6881, &[InfoHash([7; 20])], &cookie);
//! let a = parse_announce(&packets[0]).unwrap();
//! assert_eq!((a.port, a.info_hashes, a.cookie), (6881, vec![InfoHash([7; 20])], Some(cookie)));
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};

use thiserror::Error;

use crate::InfoHash;

/// The IPv4 (org-local) multicast group announces go to.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 192, 152, 143);
/// The UDP port of the LSD groups.
pub const PORT: u16 = 6771;
/// The IPv4 group and port, as one address.
pub const GROUP_V4_ADDR: SocketAddrV4 = SocketAddrV4::new(GROUP_V4, PORT);
/// Largest packet [`encode_announces`] writes (BEP 14: avoid MTU fragmentation).
pub const MAX_PACKET_LEN: usize = 1400;
/// Largest packet [`parse_announce`] reads; longer ones are refused unread.
pub const MAX_PARSE_LEN: usize = 2048;
/// Most info-hashes [`parse_announce`] accepts in one packet.
pub const MAX_INFO_HASHES: usize = 30;
/// Longest cookie, in bytes, either way.
pub const MAX_COOKIE_LEN: usize = 64;

const REQUEST_LINE: &[u8] = b"BT-SEARCH * HTTP/1.1";
const HOST_LINE: &str = "Host: 239.192.152.143:6771\r\n";
/// "Infohash: " + 40 hex digits + "\r\n".
const INFO_HASH_LINE_LEN: usize = 10 + 40 + 2;

/// The opaque value a client puts in its announces to recognise its own when the
/// group loops them back: printable ASCII without spaces, 1 to [`MAX_COOKIE_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cookie(String);

impl Cookie {
    /// `None` if `s` is empty, too long, or has bytes outside visible ASCII (they
    /// would break the header line).
    pub fn new(s: &str) -> Option<Cookie> {
        let ok =
            !s.is_empty() && s.len() <= MAX_COOKIE_LEN && s.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Cookie(s.to_owned()))
    }

    /// A cookie of 16 hex digits from the caller's random bytes (this crate has no
    /// randomness of its own).
    pub fn with_random(random: [u8; 8]) -> Cookie {
        Cookie(crate::ids::to_hex(&random))
    }

    /// The cookie's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One parsed announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// The port the sender listens on for peer connections.
    pub port: u16,
    /// The swarms it announces, in packet order (1 to [`MAX_INFO_HASHES`]).
    pub info_hashes: Vec<InfoHash>,
    /// Its cookie, if it sent a valid one (an invalid cookie is ignored like an
    /// unknown header: it can only mean "not ours").
    pub cookie: Option<Cookie>,
}

/// Why a packet is not a usable announce. The sender cannot be told (multicast has no
/// reply), so these are for a debug log.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LsdError {
    /// Longer than [`MAX_PARSE_LEN`].
    #[error("LSD packet of {len} bytes is longer than {MAX_PARSE_LEN}")]
    TooLong {
        /// Bytes received.
        len: usize,
    },
    /// The first line is not `BT-SEARCH * HTTP/1.1`.
    #[error("not an LSD announce: the first line is not 'BT-SEARCH * HTTP/1.1'")]
    NotAnnounce,
    /// A header line without a colon.
    #[error("LSD header line {line} has no ':'")]
    MalformedHeader {
        /// 1-based line number.
        line: usize,
    },
    /// No `Port` header.
    #[error("LSD announce has no Port header")]
    MissingPort,
    /// A `Port` that is not a decimal number from 1 to 65535, or a second `Port`.
    #[error("LSD announce has a bad Port header")]
    BadPort,
    /// An `Infohash` that is not 40 hex digits.
    #[error("LSD announce has an Infohash that is not 40 hex digits")]
    BadInfoHash,
    /// No `Infohash` header.
    #[error("LSD announce names no Infohash")]
    MissingInfoHash,
    /// More than [`MAX_INFO_HASHES`] `Infohash` headers.
    #[error("LSD announce names more than {MAX_INFO_HASHES} info-hashes")]
    TooManyInfoHashes,
}

/// Writes the announces for `info_hashes`: as few packets as fit them, each at most
/// [`MAX_PACKET_LEN`] bytes. No info-hashes, no packets.
pub fn encode_announces(port: u16, info_hashes: &[InfoHash], cookie: &Cookie) -> Vec<Vec<u8>> {
    let head = format!("BT-SEARCH * HTTP/1.1\r\n{HOST_LINE}Port: {port}\r\n");
    let tail = format!("cookie: {}\r\n\r\n\r\n", cookie.as_str());
    let room = MAX_PACKET_LEN - head.len() - tail.len();
    // At least one per packet; the cookie cap keeps `room` far above one line anyway.
    let per_packet = (room / INFO_HASH_LINE_LEN).clamp(1, MAX_INFO_HASHES);
    info_hashes
        .chunks(per_packet)
        .map(|chunk| {
            let mut p = Vec::with_capacity(MAX_PACKET_LEN);
            p.extend_from_slice(head.as_bytes());
            for h in chunk {
                p.extend_from_slice(b"Infohash: ");
                p.extend_from_slice(h.to_hex().as_bytes());
                p.extend_from_slice(b"\r\n");
            }
            p.extend_from_slice(tail.as_bytes());
            p
        })
        .collect()
}

/// Parses one announce packet (see the module doc for what is refused).
pub fn parse_announce(packet: &[u8]) -> Result<Announce, LsdError> {
    if packet.len() > MAX_PARSE_LEN {
        return Err(LsdError::TooLong { len: packet.len() });
    }
    let mut lines = packet
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    if lines.next() != Some(REQUEST_LINE) {
        return Err(LsdError::NotAnnounce);
    }
    let mut port = None;
    let mut info_hashes = Vec::new();
    let mut cookie = None;
    for (i, line) in lines.enumerate() {
        if line.is_empty() {
            break;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(LsdError::MalformedHeader { line: i + 2 })?;
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"port") {
            if port.is_some() {
                return Err(LsdError::BadPort);
            }
            port = Some(parse_port(value)?);
        } else if name.eq_ignore_ascii_case(b"infohash") {
            if info_hashes.len() == MAX_INFO_HASHES {
                return Err(LsdError::TooManyInfoHashes);
            }
            let hex = std::str::from_utf8(value).map_err(|_| LsdError::BadInfoHash)?;
            info_hashes.push(InfoHash::from_hex(hex).ok_or(LsdError::BadInfoHash)?);
        } else if name.eq_ignore_ascii_case(b"cookie") {
            cookie = std::str::from_utf8(value).ok().and_then(Cookie::new);
        }
    }
    let port = port.ok_or(LsdError::MissingPort)?;
    if info_hashes.is_empty() {
        return Err(LsdError::MissingInfoHash);
    }
    Ok(Announce {
        port,
        info_hashes,
        cookie,
    })
}

fn parse_port(value: &[u8]) -> Result<u16, LsdError> {
    // Digits only (no sign, no spaces inside) and at most 5 of them, so no overflow.
    if value.is_empty() || value.len() > 5 || !value.iter().all(u8::is_ascii_digit) {
        return Err(LsdError::BadPort);
    }
    let n = value.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    match u16::try_from(n) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(LsdError::BadPort),
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn random_cookies_are_valid() {
        let c = Cookie::with_random([0xff, 0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(Cookie::new(c.as_str()), Some(c));
    }

    fn cookie() -> Cookie {
        Cookie::new("c00k1e").unwrap()
    }

    fn hashes(n: usize) -> Vec<InfoHash> {
        (0..n)
            .map(|i| {
                let mut h = [0u8; 20];
                h[..8].copy_from_slice(&(i as u64).to_be_bytes());
                InfoHash(h)
            })
            .collect()
    }

    #[test]
    fn encodes_the_bep_layout() {
        let p = encode_announces(6881, &[InfoHash([0xab; 20])], &cookie());
        assert_eq!(p.len(), 1);
        let want = format!(
            "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\n\
             Infohash: {}\r\ncookie: c00k1e\r\n\r\n\r\n",
            "ab".repeat(20)
        );
        assert_eq!(String::from_utf8(p[0].clone()).unwrap(), want);
    }

    #[test]
    fn no_hashes_no_packets() {
        assert!(encode_announces(1, &[], &cookie()).is_empty());
    }

    #[test]
    fn many_hashes_split_under_the_packet_limit() {
        let long = Cookie::new(&"x".repeat(MAX_COOKIE_LEN)).unwrap();
        for n in [1, 24, 25, 26, 30, 31, 100, 257] {
            let all = hashes(n);
            let packets = encode_announces(65535, &all, &long);
            let mut back = Vec::new();
            for p in &packets {
                assert!(p.len() <= MAX_PACKET_LEN, "{} bytes", p.len());
                let a = parse_announce(p).unwrap();
                assert_eq!((a.port, a.cookie.as_ref()), (65535, Some(&long)));
                back.extend(a.info_hashes);
            }
            assert_eq!(back, all);
            // Packets are full except the last: as few as fit.
            let per = packets
                .first()
                .map_or(0, |p| parse_announce(p).unwrap().info_hashes.len());
            assert_eq!(packets.len(), n.div_ceil(per));
        }
    }

    #[test]
    fn header_names_any_case_extra_headers_ignored_bare_newlines() {
        let p = format!(
            "BT-SEARCH * HTTP/1.1\nHOST: whatever\nX-Other: 1:2\nport:  51413 \n\
             INFOHASH: {}\ninfoHash:{}\nCOOKIE: z\n\n",
            "AB".repeat(20),
            "01".repeat(20)
        );
        let a = parse_announce(p.as_bytes()).unwrap();
        assert_eq!(a.port, 51413);
        assert_eq!(a.info_hashes, [InfoHash([0xab; 20]), InfoHash([1; 20])]);
        assert_eq!(a.cookie, Cookie::new("z"));
    }

    #[test]
    fn no_cookie_and_no_trailing_blank_line_are_fine() {
        let p = format!(
            "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: {}",
            "00".repeat(20)
        );
        let a = parse_announce(p.as_bytes()).unwrap();
        assert_eq!((a.port, a.cookie), (1, None));
    }

    #[test]
    fn headers_after_the_blank_line_are_not_read() {
        let p = format!(
            "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n\r\nInfohash: {}\r\n",
            "00".repeat(20)
        );
        assert_eq!(parse_announce(p.as_bytes()), Err(LsdError::MissingInfoHash));
    }

    fn with(port: &str, hash: &str) -> Vec<u8> {
        format!("BT-SEARCH * HTTP/1.1\r\nPort: {port}\r\nInfohash: {hash}\r\n\r\n").into_bytes()
    }

    #[test]
    fn bad_values_are_refused() {
        let good = "00".repeat(20);
        for port in [
            "0", "65536", "99999", "-1", "+1", "1 2", "", "0x10", "123456",
        ] {
            assert_eq!(
                parse_announce(&with(port, &good)),
                Err(LsdError::BadPort),
                "{port:?}"
            );
        }
        let short = "0".repeat(39);
        let long = "0".repeat(41);
        let nonhex = "g".repeat(40);
        for hash in [short.as_str(), long.as_str(), nonhex.as_str(), ""] {
            assert_eq!(parse_announce(&with("1", hash)), Err(LsdError::BadInfoHash));
        }
        let mut latin1 = with("1", &good);
        let at = latin1.len() - 10;
        latin1[at] = 0xe9;
        assert_eq!(parse_announce(&latin1), Err(LsdError::BadInfoHash));
    }

    #[test]
    fn structure_errors() {
        let h = "00".repeat(20);
        assert_eq!(parse_announce(b""), Err(LsdError::NotAnnounce));
        assert_eq!(
            parse_announce(b"M-SEARCH * HTTP/1.1\r\n\r\n"),
            Err(LsdError::NotAnnounce)
        );
        let no_port = format!("BT-SEARCH * HTTP/1.1\r\nInfohash: {h}\r\n\r\n");
        assert_eq!(
            parse_announce(no_port.as_bytes()),
            Err(LsdError::MissingPort)
        );
        let two_ports = format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nPort: 2\r\nInfohash: {h}\r\n");
        assert_eq!(parse_announce(two_ports.as_bytes()), Err(LsdError::BadPort));
        let garbage = format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nnonsense\r\nInfohash: {h}\r\n");
        assert_eq!(
            parse_announce(garbage.as_bytes()),
            Err(LsdError::MalformedHeader { line: 3 })
        );
        let big = vec![b'a'; MAX_PARSE_LEN + 1];
        assert_eq!(
            parse_announce(&big),
            Err(LsdError::TooLong {
                len: MAX_PARSE_LEN + 1
            })
        );
    }

    #[test]
    fn too_many_info_hashes() {
        let mut p = b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n".to_vec();
        for h in hashes(MAX_INFO_HASHES) {
            p.extend_from_slice(format!("Infohash: {}\r\n", h.to_hex()).as_bytes());
        }
        assert_eq!(
            parse_announce(&p).unwrap().info_hashes.len(),
            MAX_INFO_HASHES
        );
        p.extend_from_slice(format!("Infohash: {}\r\n", "00".repeat(20)).as_bytes());
        assert_eq!(parse_announce(&p), Err(LsdError::TooManyInfoHashes));
    }

    #[test]
    fn bad_cookies_are_ignored_or_refused() {
        assert_eq!(Cookie::new(""), None);
        assert_eq!(Cookie::new("a b"), None);
        assert_eq!(Cookie::new("a\r\n"), None);
        assert_eq!(Cookie::new(&"x".repeat(MAX_COOKIE_LEN + 1)), None);
        let p = format!(
            "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: {}\r\ncookie: a b\r\n",
            "00".repeat(20)
        );
        assert_eq!(parse_announce(p.as_bytes()).unwrap().cookie, None);
    }

    #[test]
    fn every_prefix_of_a_valid_packet_is_safe() {
        let p = &encode_announces(6881, &hashes(3), &cookie())[0];
        for n in 0..=p.len() {
            let _ = parse_announce(&p[..n]);
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let _ = parse_announce(&bytes);
        }

        #[test]
        fn random_headers_after_a_valid_request_line_never_panic(
            tail in proptest::collection::vec(
                prop_oneof![Just(b'\r'), Just(b'\n'), Just(b':'), Just(b' '), any::<u8>()],
                0..1500),
        ) {
            let mut p = REQUEST_LINE.to_vec();
            p.extend_from_slice(b"\r\n");
            p.extend_from_slice(&tail);
            let _ = parse_announce(&p);
        }

        #[test]
        fn round_trip(port in 1u16.., hs in proptest::collection::vec(any::<[u8; 20]>(), 0..80),
                      c in "[!-~]{1,64}") {
            let cookie = Cookie::new(&c).unwrap();
            let all: Vec<InfoHash> = hs.into_iter().map(InfoHash).collect();
            let mut back = Vec::new();
            for p in encode_announces(port, &all, &cookie) {
                prop_assert!(p.len() <= MAX_PACKET_LEN);
                let a = parse_announce(&p).unwrap();
                prop_assert_eq!(a.port, port);
                prop_assert_eq!(a.cookie.as_ref(), Some(&cookie));
                back.extend(a.info_hashes);
            }
            prop_assert_eq!(back, all);
        }
    }
}
