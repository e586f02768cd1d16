//! KRPC messages (BEP 5): bencoded dictionaries over UDP, one per datagram.
//!
//! [`Message::decode`] turns a datagram into a typed query, response or error, and
//! [`Message::encode`] writes one back. Responses carry no method name, so a
//! [`Response`] holds every field a BEP 5 response may have; the caller knows which
//! query it answers from the transaction id. Decoding never panics and bounds what it
//! keeps: transaction ids and tokens at [`MAX_TOKEN`] bytes, at most [`MAX_NODES`]
//! nodes and [`MAX_VALUES`] peers (extra entries are dropped, not an error). IPv6
//! `values` entries and BEP 32's `nodes6` and `want` are accepted and ignored: this
//! DHT speaks IPv4.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use thiserror::Error;

use super::NodeId;
use crate::bencode::{self, BencodeError, Encoder, Value};

/// Most nodes kept from one response's `nodes`.
pub const MAX_NODES: usize = 32;
/// Most peers kept from one response's `values`.
pub const MAX_VALUES: usize = 100;
/// Longest transaction id or token accepted.
pub const MAX_TOKEN: usize = 64;
/// Bytes of one compact node: id and IPv4 address with port.
pub const COMPACT_NODE_LEN: usize = 26;

/// KRPC error codes (BEP 5).
pub mod code {
    /// Generic error.
    pub const GENERIC: i64 = 201;
    /// Server error.
    pub const SERVER: i64 = 202;
    /// Malformed packet, invalid arguments or bad token.
    pub const PROTOCOL: i64 = 203;
    /// Method unknown.
    pub const METHOD_UNKNOWN: i64 = 204;
}

/// Why a datagram is not a KRPC message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KrpcError {
    /// Not bencode.
    #[error("krpc: {0}")]
    Bencode(#[from] BencodeError),
    /// Not a dictionary at the top, or an argument dictionary missing.
    #[error("krpc: expected a dictionary for {0}")]
    NotADict(&'static str),
    /// A required key is absent.
    #[error("krpc: missing key {0}")]
    Missing(&'static str),
    /// A key with a value of the wrong type, length or range.
    #[error("krpc: invalid value for key {0}")]
    Invalid(&'static str),
}

/// One KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Transaction id, echoed by the responder.
    pub tid: Vec<u8>,
    /// Query, response or error.
    pub body: Body,
    /// BEP 42: in a response, the address the responder saw the query come from.
    pub ip: Option<SocketAddrV4>,
}

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `y = q`.
    Query(Query),
    /// `y = r`.
    Response(Response),
    /// `y = e`: code and message.
    Error(i64, String),
}

/// A query: the querier's id and the method with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The querying node.
    pub id: NodeId,
    /// Method and arguments.
    pub method: Method,
}

/// The four BEP 5 methods, and any other name (answered with error 204).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `ping`.
    Ping,
    /// `find_node`: the 8 closest nodes to `target`.
    FindNode {
        /// The id looked for.
        target: [u8; 20],
    },
    /// `get_peers`: peers for the info-hash, or the closest nodes, and a token.
    GetPeers {
        /// The torrent.
        info_hash: [u8; 20],
    },
    /// `announce_peer`: the querier downloads the torrent on `port`.
    AnnouncePeer {
        /// The torrent.
        info_hash: [u8; 20],
        /// The announced port (ignored when `implied_port`).
        port: u16,
        /// Token from an earlier `get_peers` to us.
        token: Vec<u8>,
        /// Use the query's source port instead of `port` (behind NAT, or uTP).
        implied_port: bool,
    },
    /// A method we do not know.
    Other(String),
}

/// A response; which fields are set depends on the query it answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The responding node.
    pub id: NodeId,
    /// Compact nodes (`find_node`, `get_peers`).
    pub nodes: Vec<(NodeId, SocketAddrV4)>,
    /// Peers (`get_peers`), IPv4 only.
    pub values: Vec<SocketAddrV4>,
    /// Token for a later `announce_peer` (`get_peers`).
    pub token: Option<Vec<u8>>,
}

impl Message {
    /// Parses one datagram.
    pub fn decode(buf: &[u8]) -> Result<Message, KrpcError> {
        let v = bencode::decode(buf)?;
        if v.as_dict().is_none() {
            return Err(KrpcError::NotADict("message"));
        }
        let tid = bytes(&v, "t")?.to_vec();
        if tid.len() > MAX_TOKEN {
            return Err(KrpcError::Invalid("t"));
        }
        let ip = match v.get("ip").and_then(Value::as_bytes) {
            Some(b) => Some(compact_addr(b).ok_or(KrpcError::Invalid("ip"))?),
            None => None,
        };
        let body = match bytes(&v, "y")? {
            b"q" => Body::Query(decode_query(&v)?),
            b"r" => Body::Response(decode_response(v.get("r").ok_or(KrpcError::Missing("r"))?)?),
            b"e" => decode_error(&v)?,
            _ => return Err(KrpcError::Invalid("y")),
        };
        Ok(Message { tid, body, ip })
    }

    /// Writes the message as bencode (keys in order).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.dict();
        match &self.body {
            Body::Query(q) => encode_query(&mut e, q),
            Body::Response(r) => {
                if let Some(ip) = self.ip {
                    e.str("ip").bytes(&compact_addr_bytes(ip));
                }
                encode_response(&mut e, r);
            }
            Body::Error(c, msg) => {
                e.str("e").list().int(*c).str(msg).end();
            }
        }
        e.str("t").bytes(&self.tid);
        let y = match self.body {
            Body::Query(_) => "q",
            Body::Response(_) => "r",
            Body::Error(..) => "e",
        };
        e.str("y").str(y).end();
        e.finish()
    }
}

fn bytes<'a>(v: &Value<'a>, key: &'static str) -> Result<&'a [u8], KrpcError> {
    v.get(key)
        .ok_or(KrpcError::Missing(key))?
        .as_bytes()
        .ok_or(KrpcError::Invalid(key))
}

fn hash(v: &Value<'_>, key: &'static str) -> Result<[u8; 20], KrpcError> {
    bytes(v, key)?
        .try_into()
        .map_err(|_| KrpcError::Invalid(key))
}

fn decode_query(v: &Value<'_>) -> Result<Query, KrpcError> {
    let name = bytes(v, "q")?;
    let a = v.get("a").ok_or(KrpcError::Missing("a"))?;
    if a.as_dict().is_none() {
        return Err(KrpcError::NotADict("a"));
    }
    let id = NodeId(hash(a, "id")?);
    let method = match name {
        b"ping" => Method::Ping,
        b"find_node" => Method::FindNode {
            target: hash(a, "target")?,
        },
        b"get_peers" => Method::GetPeers {
            info_hash: hash(a, "info_hash")?,
        },
        b"announce_peer" => {
            let implied_port = a.get("implied_port").and_then(Value::as_int).unwrap_or(0) != 0;
            let port = match a.get("port").and_then(Value::as_int) {
                Some(p) => u16::try_from(p).map_err(|_| KrpcError::Invalid("port"))?,
                None if implied_port => 0,
                None => return Err(KrpcError::Missing("port")),
            };
            let token = bytes(a, "token")?;
            if token.len() > MAX_TOKEN {
                return Err(KrpcError::Invalid("token"));
            }
            Method::AnnouncePeer {
                info_hash: hash(a, "info_hash")?,
                port,
                token: token.to_vec(),
                implied_port,
            }
        }
        other => Method::Other(String::from_utf8_lossy(&other[..other.len().min(32)]).into()),
    };
    Ok(Query { id, method })
}

fn decode_response(r: &Value<'_>) -> Result<Response, KrpcError> {
    if r.as_dict().is_none() {
        return Err(KrpcError::NotADict("r"));
    }
    let id = NodeId(hash(r, "id")?);
    let mut nodes = Vec::new();
    if let Some(n) = r.get("nodes") {
        let n = n.as_bytes().ok_or(KrpcError::Invalid("nodes"))?;
        if n.len() % COMPACT_NODE_LEN != 0 {
            return Err(KrpcError::Invalid("nodes"));
        }
        for c in n.chunks_exact(COMPACT_NODE_LEN).take(MAX_NODES) {
            let (nid, addr) = c.split_at(20);
            if let (Ok(nid), Some(addr)) = (nid.try_into(), compact_addr(addr)) {
                nodes.push((NodeId(nid), addr));
            }
        }
    }
    let mut values = Vec::new();
    if let Some(list) = r.get("values") {
        let list = list.as_list().ok_or(KrpcError::Invalid("values"))?;
        // 18-byte (IPv6) and odd entries are skipped: one bad peer spoils nothing else.
        for p in list
            .iter()
            .filter_map(Value::as_bytes)
            .filter_map(compact_addr)
        {
            if values.len() == MAX_VALUES {
                break;
            }
            values.push(p);
        }
    }
    let token = match r.get("token") {
        Some(t) => {
            let t = t.as_bytes().ok_or(KrpcError::Invalid("token"))?;
            if t.len() > MAX_TOKEN {
                return Err(KrpcError::Invalid("token"));
            }
            Some(t.to_vec())
        }
        None => None,
    };
    Ok(Response {
        id,
        nodes,
        values,
        token,
    })
}

fn decode_error(v: &Value<'_>) -> Result<Body, KrpcError> {
    let e = v
        .get("e")
        .and_then(Value::as_list)
        .ok_or(KrpcError::Invalid("e"))?;
    let code = e
        .first()
        .and_then(Value::as_int)
        .ok_or(KrpcError::Invalid("e"))?;
    let msg = e.get(1).and_then(Value::as_bytes).unwrap_or_default();
    let msg = String::from_utf8_lossy(&msg[..msg.len().min(256)]).into_owned();
    Ok(Body::Error(code, msg))
}

fn encode_query(e: &mut Encoder, q: &Query) {
    e.str("a").dict().str("id").bytes(&q.id.0);
    let name = match &q.method {
        Method::Ping => "ping",
        Method::FindNode { target } => {
            e.str("target").bytes(target);
            "find_node"
        }
        Method::GetPeers { info_hash } => {
            e.str("info_hash").bytes(info_hash);
            "get_peers"
        }
        Method::AnnouncePeer {
            info_hash,
            port,
            token,
            implied_port,
        } => {
            e.str("implied_port").int(i64::from(*implied_port));
            e.str("info_hash").bytes(info_hash);
            e.str("port").int(i64::from(*port));
            e.str("token").bytes(token);
            "announce_peer"
        }
        Method::Other(name) => name.as_str(),
    };
    e.end().str("q").str(name);
}

fn encode_response(e: &mut Encoder, r: &Response) {
    e.str("r").dict().str("id").bytes(&r.id.0);
    if !r.nodes.is_empty() {
        let mut buf = Vec::with_capacity(r.nodes.len() * COMPACT_NODE_LEN);
        for (id, addr) in &r.nodes {
            buf.extend_from_slice(&id.0);
            buf.extend_from_slice(&compact_addr_bytes(*addr));
        }
        e.str("nodes").bytes(&buf);
    }
    if let Some(t) = &r.token {
        e.str("token").bytes(t);
    }
    if !r.values.is_empty() {
        e.str("values").list();
        for v in &r.values {
            e.bytes(&compact_addr_bytes(*v));
        }
        e.end();
    }
    e.end();
}

/// A 6-byte compact IPv4 address and port.
fn compact_addr(b: &[u8]) -> Option<SocketAddrV4> {
    let b: [u8; 6] = b.try_into().ok()?;
    let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    Some(SocketAddrV4::new(ip, u16::from_be_bytes([b[4], b[5]])))
}

fn compact_addr_bytes(a: SocketAddrV4) -> [u8; 6] {
    let mut b = [0u8; 6];
    b[..4].copy_from_slice(&a.ip().octets());
    b[4..].copy_from_slice(&a.port().to_be_bytes());
    b
}

/// The IPv4 address of `addr`, also when written as an IPv4-mapped IPv6 address.
pub fn ipv4_of(addr: SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(a) => a
            .ip()
            .to_ipv4_mapped()
            .map(|ip| SocketAddrV4::new(ip, a.port())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(method: Method) -> Message {
        Message {
            tid: b"aa".to_vec(),
            body: Body::Query(Query {
                id: NodeId(*b"abcdefghij0123456789"),
                method,
            }),
            ip: None,
        }
    }

    /// The examples of BEP 5, byte for byte.
    #[test]
    fn bep5_examples() {
        let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
        assert_eq!(q(Method::Ping).encode(), ping);
        assert_eq!(Message::decode(ping).unwrap(), q(Method::Ping));
        let find = b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe";
        let m = q(Method::FindNode {
            target: *b"mnopqrstuvwxyz123456",
        });
        assert_eq!(m.encode(), find);
        let ann = b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe";
        let m = q(Method::AnnouncePeer {
            info_hash: *b"mnopqrstuvwxyz123456",
            port: 6881,
            token: b"aoeusnth".to_vec(),
            implied_port: true,
        });
        assert_eq!(m.encode(), ann);
        assert_eq!(Message::decode(ann).unwrap(), m);
        let err = b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee";
        let m = Message::decode(err).unwrap();
        assert_eq!(m.body, Body::Error(201, "A Generic Error Ocurred".into()));
        assert_eq!(m.encode(), err);
        let values = b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re";
        let m = Message::decode(values).unwrap();
        let Body::Response(r) = &m.body else { panic!() };
        assert_eq!(r.values.len(), 2);
        assert_eq!(r.token.as_deref(), Some(&b"aoeusnth"[..]));
        assert_eq!(m.encode(), values);
    }

    #[test]
    fn nodes_round_trip_and_bounds() {
        let nodes: Vec<_> = (0..40u8)
            .map(|i| {
                (
                    NodeId([i; 20]),
                    SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, i), 6881),
                )
            })
            .collect();
        let m = Message {
            tid: vec![1, 2],
            body: Body::Response(Response {
                id: NodeId([9; 20]),
                nodes: nodes.clone(),
                values: vec![],
                token: None,
            }),
            ip: Some(SocketAddrV4::new(Ipv4Addr::new(5, 6, 7, 8), 9)),
        };
        let back = Message::decode(&m.encode()).unwrap();
        let Body::Response(r) = back.body else {
            panic!()
        };
        assert_eq!(r.nodes, nodes[..MAX_NODES]);
        assert_eq!(back.ip, m.ip);
    }

    #[test]
    fn malformed_are_errors() {
        for bad in [
            &b"le"[..],
            b"d1:t2:aa1:y1:qe",
            b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
            b"d1:rd2:id20:abcdefghij01234567895:nodes3:abce1:t2:aa1:y1:re",
            b"d1:t2:aa1:y1:xe",
            b"d1:ad2:id20:abcdefghij01234567894:porti70000e5:token1:x9:info_hash20:mnopqrstuvwxyz123456e1:q13:announce_peer1:t2:aa1:y1:qe",
        ] {
            assert!(Message::decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn every_prefix_of_a_valid_message_is_safe() {
        let m = q(Method::GetPeers { info_hash: [7; 20] }).encode();
        for n in 0..m.len() {
            assert!(Message::decode(&m[..n]).is_err());
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Message::decode(&b);
        }

        #[test]
        fn queries_round_trip(id in any::<[u8; 20]>(), t in any::<[u8; 20]>(), port in any::<u16>(),
                              tok in proptest::collection::vec(any::<u8>(), 0..20), implied in any::<bool>()) {
            for method in [Method::Ping, Method::FindNode { target: t }, Method::GetPeers { info_hash: t },
                           Method::AnnouncePeer { info_hash: t, port, token: tok.clone(), implied_port: implied }] {
                let m = Message { tid: tok.clone(), body: Body::Query(Query { id: NodeId(id), method }), ip: None };
                prop_assert_eq!(Message::decode(&m.encode()).unwrap(), m);
            }
        }
    }
}
