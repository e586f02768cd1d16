//! The announce response: the bencoded body encoded by the tracker into a reused
//! buffer ([`AnnounceResponse::encode_into`], compact or dict-list peers) and parsed by
//! the client ([`AnnounceResponse::parse`]), plus the `failure reason` body.

use std::io::Write as _;
use std::net::SocketAddr;

use crate::bencode::{self, Value};
use crate::peers;
use crate::tracker::{failure_of, get_u32, put_bytes, put_int, uint_digits, TrackerError};

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

    proptest! {
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
            let _ = AnnounceResponse::parse(&b);
        }
    }
}
