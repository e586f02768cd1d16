//! Announce (BEP 3 tracker GET, BEP 23 compact peers, BEP 7 `peers6`).
//!
//! Server-side parsing requires `info_hash`, `peer_id`, `port` (1-65535) and `left`;
//! `uploaded`/`downloaded` default to 0 and `compact` defaults to on, as BEP 23
//! suggests. An `ip` that is not an IP literal is ignored (BEP 3 allows DNS names; a
//! tracker resolving them would be an amplification vector).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::{
    decode_id, failure_of, get_u32, parse_u64, put_bytes, put_int, query_pairs, shown, uint_digits,
    unescape, TrackerError,
};
use crate::bencode::{self, Value};
use crate::ids::{InfoHash, PeerId};
use crate::peers;
use crate::urlenc::encode;

/// The `event` of an announce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AnnounceEvent {
    /// A regular re-announce (absent, empty, `empty` or BEP 21 `paused`).
    #[default]
    None,
    /// The first announce of a download.
    Started,
    /// The download finished (sent once).
    Completed,
    /// The client is leaving the swarm.
    Stopped,
}

impl AnnounceEvent {
    /// The query value (`""` for [`AnnounceEvent::None`]).
    pub fn as_str(self) -> &'static str {
        match self {
            AnnounceEvent::None => "",
            AnnounceEvent::Started => "started",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Stopped => "stopped",
        }
    }

    fn parse(raw: &[u8]) -> Result<Self, TrackerError> {
        match raw {
            b"" | b"empty" | b"paused" => Ok(AnnounceEvent::None),
            b"started" => Ok(AnnounceEvent::Started),
            b"completed" => Ok(AnnounceEvent::Completed),
            b"stopped" => Ok(AnnounceEvent::Stopped),
            other => Err(TrackerError::InvalidEvent(shown(other))),
        }
    }
}

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
                    port = Some(
                        p.filter(|&p| p != 0)
                            .ok_or(TrackerError::InvalidPort(shown(&v)))?,
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

/// A successful announce response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds the client should wait between regular announces.
    pub interval: u32,
    /// Seconds the client must wait before announcing again, if the tracker sets it.
    pub min_interval: Option<u32>,
    /// Seeders in the swarm.
    pub complete: u32,
    /// Leechers in the swarm.
    pub incomplete: u32,
    /// Peers for the client (IPv4 and IPv6 mixed).
    pub peers: Vec<SocketAddr>,
    /// `warning message`: shown to the user, the announce still succeeded.
    pub warning: Option<String>,
    /// `tracker id` the client should echo as `trackerid`.
    pub tracker_id: Option<String>,
}

/// Interval assumed when a tracker response omits `interval` (the common default).
const DEFAULT_INTERVAL: u32 = 1800;

impl AnnounceResponse {
    /// The bencoded response. `compact`: IPv4 peers as a 6-byte-per-peer `peers` string
    /// and IPv6 peers in `peers6`; otherwise a `peers` list of `ip`/`port` dicts (peer
    /// ids omitted).
    pub fn encode(&self, compact: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.peers.len() * 20);
        self.encode_into(compact, &mut out);
        out
    }

    /// Like [`AnnounceResponse::encode`], appending to `out` (the tracker reuses buffers).
    pub fn encode_into(&self, compact: bool, out: &mut Vec<u8>) {
        // Keys in ascending byte order, as bencode requires.
        out.push(b'd');
        put_bytes(out, b"complete");
        put_int(out, self.complete.into());
        put_bytes(out, b"incomplete");
        put_int(out, self.incomplete.into());
        put_bytes(out, b"interval");
        put_int(out, self.interval.into());
        if let Some(min) = self.min_interval {
            put_bytes(out, b"min interval");
            put_int(out, min.into());
        }
        put_bytes(out, b"peers");
        if compact {
            // IPv4 (and IPv4-mapped) into `peers`, native IPv6 into `peers6`.
            let mark = out.len();
            let n4 = peers::encode_compact_v4(&self.peers, out);
            insert_len(out, mark, n4 * peers::COMPACT_V4_LEN);
            let mark = out.len();
            put_bytes(out, b"peers6");
            let body = out.len();
            let n6 = peers::encode_compact_v6(&self.peers, out);
            if n6 == 0 {
                out.truncate(mark);
            } else {
                insert_len(out, body, n6 * peers::COMPACT_V6_LEN);
            }
        } else {
            out.push(b'l');
            for addr in &self.peers {
                out.extend_from_slice(b"d2:ip");
                let mut ip = [0u8; 48];
                let mut cursor = &mut ip[..];
                // An IP address always fits 48 bytes.
                let _ = write!(cursor, "{}", addr.ip());
                let len = 48 - cursor.len();
                put_bytes(out, &ip[..len]);
                put_bytes(out, b"port");
                put_int(out, addr.port().into());
                out.push(b'e');
            }
            out.push(b'e');
        }
        if let Some(id) = &self.tracker_id {
            put_bytes(out, b"tracker id");
            put_bytes(out, id.as_bytes());
        }
        if let Some(w) = &self.warning {
            put_bytes(out, b"warning message");
            put_bytes(out, w.as_bytes());
        }
        out.push(b'e');
    }

    /// Parses a tracker's reply. A `failure reason` becomes [`TrackerError::Failure`].
    /// Accepts compact and dict-list `peers`, and `peers6`; dict entries whose `ip` is
    /// not an IP literal are skipped.
    pub fn parse(buf: &[u8]) -> Result<AnnounceResponse, TrackerError> {
        let v = bencode::decode(buf)?;
        if v.as_dict().is_none() {
            return Err(TrackerError::Malformed("not a dictionary"));
        }
        if let Some(failure) = failure_of(&v) {
            return Err(failure);
        }
        let mut peers = match v.get("peers") {
            None => Vec::new(),
            Some(list) => peers::parse_peers(list)?,
        };
        match v.get("peers6") {
            None => {}
            Some(Value::Bytes(b)) => peers.extend(peers::parse_compact_v6(b)?),
            Some(_) => return Err(TrackerError::Malformed("peers6 is not a string")),
        }
        let string = |key| {
            v.get(key)
                .and_then(Value::as_bytes)
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        Ok(AnnounceResponse {
            interval: get_u32(&v, "interval")?.unwrap_or(DEFAULT_INTERVAL),
            min_interval: get_u32(&v, "min interval")?,
            complete: get_u32(&v, "complete")?.unwrap_or(0),
            incomplete: get_u32(&v, "incomplete")?.unwrap_or(0),
            peers,
            warning: string("warning message"),
            tracker_id: string("tracker id"),
        })
    }
}

/// Inserts a bencode string-length prefix for the `len` bytes already written at `at`.
fn insert_len(out: &mut Vec<u8>, at: usize, len: usize) {
    let mut buf = [0; 20];
    let digits = uint_digits(len as u64, &mut buf);
    out.splice(at..at, digits.iter().copied().chain([b':']));
}

/// A bencoded `failure reason` response.
pub fn encode_failure(reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + reason.len());
    out.push(b'd');
    put_bytes(&mut out, b"failure reason");
    put_bytes(&mut out, reason.as_bytes());
    out.push(b'e');
    out
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

    fn sample_response() -> AnnounceResponse {
        AnnounceResponse {
            interval: 1800,
            min_interval: Some(60),
            complete: 3,
            incomplete: 4,
            peers: vec![
                "1.2.3.4:6881".parse().unwrap(),
                "[2001:db8::2]:51413".parse().unwrap(),
                "5.6.7.8:1".parse().unwrap(),
            ],
            warning: Some("be nice".into()),
            tracker_id: Some("T1".into()),
        }
    }

    #[test]
    fn response_round_trips() {
        let r = sample_response();
        let compact = AnnounceResponse::parse(&r.encode(true)).unwrap();
        // Compact output groups v4 then v6.
        let mut expected = r.clone();
        expected.peers = vec![r.peers[0], r.peers[2], r.peers[1]];
        assert_eq!(compact, expected);
        assert_eq!(AnnounceResponse::parse(&r.encode(false)).unwrap(), r);
        let empty = AnnounceResponse {
            interval: 5,
            ..Default::default()
        };
        assert_eq!(AnnounceResponse::parse(&empty.encode(true)).unwrap(), empty);
        assert_eq!(
            AnnounceResponse::parse(&empty.encode(false)).unwrap(),
            empty
        );
    }

    #[test]
    fn known_response_encodings() {
        let r = AnnounceResponse {
            interval: 60,
            complete: 1,
            incomplete: 2,
            peers: vec!["1.2.3.4:256".parse().unwrap()],
            ..Default::default()
        };
        assert_eq!(
            r.encode(true),
            b"d8:completei1e10:incompletei2e8:intervali60e5:peers6:\x01\x02\x03\x04\x01\x00e"
        );
        assert_eq!(
            r.encode(false),
            b"d8:completei1e10:incompletei2e8:intervali60e5:peersld2:ip7:1.2.3.44:porti256eeee"
        );
        // The encoder's output is canonical bencode (sorted keys) for every field.
        bencode::decode(&sample_response().encode(true)).unwrap();
        bencode::decode(&sample_response().encode(false)).unwrap();
    }

    #[test]
    fn parses_real_world_shapes() {
        let dict_list = b"d8:intervali900e5:peersld2:ip7:1.2.3.47:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti80eed2:ip11:example.org4:porti1eeee";
        let r = AnnounceResponse::parse(dict_list).unwrap();
        assert_eq!(r.interval, 900);
        assert_eq!(r.peers, vec!["1.2.3.4:80".parse().unwrap()]);
        let no_interval = AnnounceResponse::parse(b"d5:peers0:e").unwrap();
        assert_eq!(no_interval.interval, 1800);
        assert_eq!(
            AnnounceResponse::parse(b"d5:peers5:abcdee"),
            Err(TrackerError::Peers(peers::PeersError::CompactLength {
                len: 5,
                entry: 6
            }))
        );
        assert!(AnnounceResponse::parse(b"d5:peers0:6:peers65:abcdee").is_err());
        // IPv4-mapped addresses travel in `peers`, as plain IPv4.
        let mapped = AnnounceResponse {
            peers: vec!["[::ffff:1.2.3.4]:80".parse().unwrap()],
            ..Default::default()
        };
        let parsed = AnnounceResponse::parse(&mapped.encode(true)).unwrap();
        assert_eq!(parsed.peers, vec!["1.2.3.4:80".parse().unwrap()]);
        assert_eq!(
            AnnounceResponse::parse(b"d8:intervali-1ee"),
            Err(TrackerError::Malformed("interval"))
        );
        assert!(matches!(
            AnnounceResponse::parse(b"d8:interval"),
            Err(TrackerError::Bencode(_))
        ));
        assert_eq!(
            AnnounceResponse::parse(b"le"),
            Err(TrackerError::Malformed("not a dictionary"))
        );
    }

    #[test]
    fn failure_reason_is_verbatim() {
        let f = encode_failure("torrent not registered");
        assert_eq!(f, b"d14:failure reason22:torrent not registerede");
        let e = AnnounceResponse::parse(&f).unwrap_err();
        assert_eq!(e, TrackerError::Failure("torrent not registered".into()));
        assert_eq!(
            e.to_string(),
            "tracker refused the request: torrent not registered"
        );
        assert_eq!(
            AnnounceResponse::parse(b"d14:failure reason3:no!8:intervali5ee"),
            Err(TrackerError::Failure("no!".into()))
        );
    }

    #[test]
    fn response_parse_never_panics() {
        let enc = sample_response().encode(true);
        for i in 0..enc.len() {
            let _ = AnnounceResponse::parse(&enc[..i]);
        }
        let enc = sample_response().encode(false);
        for i in 0..enc.len() {
            let _ = AnnounceResponse::parse(&enc[..i]);
        }
    }

    fn sample_queries() -> Vec<Vec<u8>> {
        let minimal = AnnounceRequest::new(InfoHash([0x25; 20]), PeerId([b'&'; 20]), 1);
        vec![
            full_request().to_query().into_bytes(),
            minimal.to_query().into_bytes(),
        ]
    }

    #[test]
    fn every_prefix_of_a_response_or_query_is_safe() {
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
        fn mutated_responses_never_panic(compact: bool, edits in smoke::edits()) {
            let enc = sample_response().encode(compact);
            if let Ok(r) = AnnounceResponse::parse(&smoke::mutate(&enc, &edits)) {
                // Whatever parses re-encodes to something that parses.
                prop_assert!(AnnounceResponse::parse(&r.encode(compact)).is_ok());
            }
        }

        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = AnnounceRequest::from_query(&b);
            let _ = AnnounceResponse::parse(&b);
        }
    }
}
