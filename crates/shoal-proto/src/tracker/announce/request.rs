//! The announce request: the query string of `GET /announce`, built by the client
//! ([`AnnounceRequest::to_query`], [`announce_url`]) and parsed in place by the tracker
//! ([`AnnounceRequest::from_query`]), whose errors are sentences to send back.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::AnnounceEvent;
use crate::ids::{InfoHash, PeerId};
use crate::tracker::{decode_id, parse_u64, query_pairs, shown, unescape, TrackerError};
use crate::urlenc::encode;

/// An announce request: the query parameters of `GET /announce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing client.
    pub peer_id: PeerId,
    /// The client's listening port.
    pub port: u16,
    /// Bytes uploaded since `started`.
    pub uploaded: u64,
    /// Bytes downloaded since `started`.
    pub downloaded: u64,
    /// Bytes still missing; 0 means seeder.
    pub left: u64,
    /// Lifecycle event.
    pub event: AnnounceEvent,
    /// Wants the BEP 23 compact peer list.
    pub compact: bool,
    /// How many peers the client wants.
    pub numwant: Option<u32>,
    /// Address the client claims (trackers usually trust only the socket address).
    pub ip: Option<IpAddr>,
    /// Opaque key proving identity across IP changes.
    pub key: Option<String>,
    /// `tracker id` echoed from a previous response.
    pub trackerid: Option<String>,
    /// Asks to omit peer ids in a non-compact list.
    pub no_peer_id: bool,
}

impl AnnounceRequest {
    /// A request with zero counters, no event, compact on and no optional fields.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16) -> Self {
        AnnounceRequest {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: AnnounceEvent::None,
            compact: true,
            numwant: None,
            ip: None,
            key: None,
            trackerid: None,
            no_peer_id: false,
        }
    }

    /// The query string (without `?`), with binary ids percent-encoded.
    pub fn to_query(&self) -> String {
        let mut q = String::with_capacity(256);
        // Writing into a String cannot fail.
        let _ = write!(
            q,
            "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact={}",
            encode(&self.info_hash.0),
            encode(&self.peer_id.0),
            self.port,
            self.uploaded,
            self.downloaded,
            self.left,
            u8::from(self.compact),
        );
        if self.event != AnnounceEvent::None {
            let _ = write!(q, "&event={}", self.event.as_str());
        }
        if let Some(n) = self.numwant {
            let _ = write!(q, "&numwant={n}");
        }
        if let Some(ip) = self.ip {
            let _ = write!(q, "&ip={}", encode(ip.to_string().as_bytes()));
        }
        if let Some(key) = &self.key {
            let _ = write!(q, "&key={}", encode(key.as_bytes()));
        }
        if let Some(id) = &self.trackerid {
            let _ = write!(q, "&trackerid={}", encode(id.as_bytes()));
        }
        if self.no_peer_id {
            q.push_str("&no_peer_id=1");
        }
        q
    }

    /// Parses the query string of `GET /announce` (the part after `?`).
    ///
    /// Unknown parameters are ignored; a repeated parameter keeps its last value.
    pub fn from_query(query: &[u8]) -> Result<AnnounceRequest, TrackerError> {
        let mut info_hash = None;
        let mut peer_id = None;
        let mut port = None;
        let mut left = None;
        let mut req = AnnounceRequest::new(InfoHash([0; 20]), PeerId([0; 20]), 0);
        for (raw_key, raw_value) in query_pairs(query) {
            let key = unescape(raw_key)?;
            match &*key {
                b"info_hash" => info_hash = Some(InfoHash(decode_id("info_hash", raw_value)?)),
                b"peer_id" => peer_id = Some(PeerId(decode_id("peer_id", raw_value)?)),
                b"port" => {
                    let v = unescape(raw_value)?;
                    let p = parse_u64(&v).and_then(|p| u16::try_from(p).ok());
                    // Lazily: `shown` allocates, and this runs on every announce.
                    port = Some(
                        p.filter(|&p| p != 0)
                            .ok_or_else(|| TrackerError::InvalidPort(shown(&v)))?,
                    );
                }
                b"uploaded" => req.uploaded = number("uploaded", raw_value)?,
                b"downloaded" => req.downloaded = number("downloaded", raw_value)?,
                b"left" => left = Some(number("left", raw_value)?),
                b"event" => req.event = AnnounceEvent::parse(&unescape(raw_value)?)?,
                b"compact" => req.compact = &*unescape(raw_value)? != b"0",
                b"numwant" => {
                    let n = number("numwant", raw_value)?;
                    req.numwant = Some(u32::try_from(n).unwrap_or(u32::MAX));
                }
                b"ip" => {
                    let v = unescape(raw_value)?;
                    req.ip = std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok());
                }
                b"key" => req.key = Some(text(raw_value)?),
                b"trackerid" => req.trackerid = Some(text(raw_value)?),
                b"no_peer_id" => req.no_peer_id = &*unescape(raw_value)? != b"0",
                _ => {}
            }
        }
        req.info_hash = info_hash.ok_or(TrackerError::MissingParam("info_hash"))?;
        req.peer_id = peer_id.ok_or(TrackerError::MissingParam("peer_id"))?;
        req.port = port.ok_or(TrackerError::MissingParam("port"))?;
        req.left = left.ok_or(TrackerError::MissingParam("left"))?;
        Ok(req)
    }
}

fn number(param: &'static str, raw: &[u8]) -> Result<u64, TrackerError> {
    let v = unescape(raw)?;
    parse_u64(&v).ok_or_else(|| TrackerError::InvalidNumber {
        param,
        value: shown(&v),
    })
}

fn text(raw: &[u8]) -> Result<String, TrackerError> {
    Ok(String::from_utf8_lossy(&unescape(raw)?).into_owned())
}

/// `base` plus the request's query, joined with `?` or, when `base` already carries a
/// query (a private tracker's passkey), with `&`.
pub fn announce_url(base: &str, req: &AnnounceRequest) -> String {
    let sep = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{base}{sep}{}", req.to_query())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke;
    use proptest::prelude::*;

    fn full_request() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash(*b"\x00\x01\xff abc&=%+/?#xyz\x80\x90\xa0"),
            peer_id: PeerId(*b"-SH0100-abcdefghijkl"),
            port: 6881,
            uploaded: 10,
            downloaded: 20,
            left: u64::MAX,
            event: AnnounceEvent::Completed,
            compact: false,
            numwant: Some(80),
            ip: Some("2001:db8::1".parse().unwrap()),
            key: Some("k e&y".into()),
            trackerid: Some("tid".into()),
            no_peer_id: true,
        }
    }

    #[test]
    fn query_round_trip() {
        let req = full_request();
        assert_eq!(
            AnnounceRequest::from_query(req.to_query().as_bytes()),
            Ok(req)
        );
        let min = AnnounceRequest::new(InfoHash([7; 20]), PeerId([8; 20]), 1);
        assert_eq!(
            AnnounceRequest::from_query(min.to_query().as_bytes()),
            Ok(min)
        );
    }

    #[test]
    fn known_query_encoding() {
        let mut req =
            AnnounceRequest::new(InfoHash([0x12; 20]), PeerId(*b"-SH0100-abcdefghijkl"), 80);
        req.left = 5;
        req.event = AnnounceEvent::Started;
        let q = req.to_query();
        assert!(q.starts_with(&format!(
            "info_hash={}&peer_id=-SH0100-abcdefghijkl&port=80",
            "%12".repeat(20)
        )));
        assert!(q.ends_with("&left=5&compact=1&event=started"));
    }

    #[test]
    fn announce_url_joins_query() {
        let req = AnnounceRequest::new(InfoHash([b'a'; 20]), PeerId([b'b'; 20]), 1);
        let q = req.to_query();
        assert_eq!(
            announce_url("http://t/announce", &req),
            format!("http://t/announce?{q}")
        );
        assert_eq!(
            announce_url("http://t/a?pk=1", &req),
            format!("http://t/a?pk=1&{q}")
        );
        assert_eq!(
            announce_url("http://t/a?pk=1&", &req),
            format!("http://t/a?pk=1&{q}")
        );
        assert_eq!(announce_url("http://t/a?", &req), format!("http://t/a?{q}"));
    }

    fn base() -> String {
        format!("info_hash={}&peer_id={}", "%AA".repeat(20), "b".repeat(20))
    }

    fn err(q: &str) -> String {
        AnnounceRequest::from_query(q.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn malformed_queries() {
        let b = base();
        assert_eq!(err("port=1&left=0"), "missing info_hash parameter");
        assert_eq!(
            err("info_hash=abc&port=1"),
            "info_hash must be 20 bytes, got 3; send the raw 20 bytes percent-encoded"
        );
        assert_eq!(err(&format!("{b}&left=0")), "missing port parameter");
        assert_eq!(
            err(&format!("info_hash={}&port=1&left=0", "a".repeat(20))),
            "missing peer_id parameter"
        );
        assert_eq!(err(&format!("{b}&port=1")), "missing left parameter");
        assert_eq!(
            err(&format!("{b}&port=0&left=0")),
            "invalid port \"0\": expected a number from 1 to 65535"
        );
        assert_eq!(
            err(&format!("{b}&port=65536&left=0")),
            "invalid port \"65536\": expected a number from 1 to 65535"
        );
        assert_eq!(
            err(&format!("{b}&port=x&left=0")),
            "invalid port \"x\": expected a number from 1 to 65535"
        );
        assert_eq!(
            err(&format!("{b}&port=1&left=0&uploaded=ten")),
            "invalid uploaded \"ten\": expected a non-negative decimal integer"
        );
        assert_eq!(
            err(&format!("{b}&port=1&left=-1")),
            "invalid left \"-1\": expected a non-negative decimal integer"
        );
        assert_eq!(
            err(&format!("{b}&port=1&left=0&downloaded=")),
            "invalid downloaded \"\": expected a non-negative decimal integer"
        );
        assert_eq!(
            err(&format!("{b}&port=1&left=0&event=paws")),
            "invalid event \"paws\": expected started, completed, stopped or empty"
        );
        assert_eq!(
            err(&format!("{b}&port=1&left=0&key=%G0")),
            "malformed percent-encoding in the query string"
        );
        assert_eq!(err(""), "missing info_hash parameter");
    }

    #[test]
    fn lenient_fields() {
        let b = base();
        let r = AnnounceRequest::from_query(
            format!("{b}&port=1&left=0&ip=example.org&x=%zz&numwant=99999999999&event=").as_bytes(),
        );
        // Values of unknown keys are never decoded, so their bad escapes do not matter.
        let r = r.unwrap();
        assert_eq!(r.ip, None);
        assert_eq!(r.numwant, Some(u32::MAX));
        assert_eq!(r.event, AnnounceEvent::None);
        assert!(r.compact);
        let r = AnnounceRequest::from_query(
            format!("{b}&port=1&left=0&compact=0&ip=10.0.0.1").as_bytes(),
        )
        .unwrap();
        assert!(!r.compact);
        assert_eq!(r.ip, Some("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn never_panics_on_prefixes() {
        let q = full_request().to_query();
        for i in 0..=q.len() {
            let _ = AnnounceRequest::from_query(&q.as_bytes()[..i]);
        }
        let _ = AnnounceRequest::from_query(b"&&==&%&=%&info_hash=%");
    }

    fn sample_queries() -> Vec<Vec<u8>> {
        let minimal = AnnounceRequest::new(InfoHash([0x25; 20]), PeerId([b'&'; 20]), 1);
        vec![
            full_request().to_query().into_bytes(),
            minimal.to_query().into_bytes(),
        ]
    }

    #[test]
    fn every_prefix_of_a_query_is_safe() {
        for q in sample_queries() {
            for i in 0..=q.len() {
                let _ = AnnounceRequest::from_query(&q[..i]);
            }
        }
    }

    proptest! {
        #[test]
        fn mutated_queries_never_panic(i in 0usize..2, edits in smoke::edits()) {
            let q = &sample_queries()[i];
            let _ = AnnounceRequest::from_query(&smoke::mutate(q, &edits));
        }

        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = AnnounceRequest::from_query(&b);
        }
    }
}
