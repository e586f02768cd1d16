//! KRPC messages (BEP 5): bencoded dictionaries over UDP, one per datagram.
//!
//! [`Message::decode`] turns a datagram into a typed query, response or error, and
//! [`Message::encode`] writes one back. Responses carry no method name, so a
//! [`Response`] holds every field a BEP 5 response may have; the caller knows which
//! query it answers from the transaction id. Decoding never panics and bounds what it
//! keeps: transaction ids and tokens at [`MAX_TOKEN`] bytes, at most [`MAX_NODES`]
//! nodes per list and [`MAX_VALUES`] peers (extra entries are dropped, not an error).
//!
//! BEP 32 (IPv6): compact nodes are 26 bytes in `nodes` (IPv4) and 38 in `nodes6`
//! (IPv6); `values` entries are 6 or 18 bytes, and hybrid lists are parsed (each entry
//! by its length). `find_node` and `get_peers` may carry `want` ([`Want`]: `n4`, `n6`;
//! other strings are ignored), which says which of `nodes` and `nodes6` the answer
//! should hold. The BEP 42 `ip` field is 6 or 18 bytes likewise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

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
/// Bytes of one compact IPv6 node (BEP 32): id and IPv6 address with port.
pub const COMPACT_NODE6_LEN: usize = 38;
/// Most strings looked at in a `want` list (BEP 32 defines two).
const MAX_WANT: usize = 8;

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
    pub ip: Option<SocketAddr>,
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
        /// Which families of nodes the answer should hold (BEP 32).
        want: Want,
    },
    /// `get_peers`: peers for the info-hash, or the closest nodes, and a token.
    GetPeers {
        /// The torrent.
        info_hash: [u8; 20],
        /// Which families of nodes the answer should hold (BEP 32).
        want: Want,
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

/// BEP 32's `want` of a `find_node` or `get_peers`: the node families asked for.
/// Neither set means no `want` key: the answer holds the family of the socket the
/// query came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want {
    /// `n4`: a `nodes` key (IPv4 nodes).
    pub n4: bool,
    /// `n6`: a `nodes6` key (IPv6 nodes).
    pub n6: bool,
}

impl Want {
    /// Whether the query named no family (no `want` key).
    pub fn is_empty(&self) -> bool {
        !self.n4 && !self.n6
    }
}

/// A response; which fields are set depends on the query it answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The responding node.
    pub id: NodeId,
    /// Compact IPv4 nodes, `nodes` (`find_node`, `get_peers`).
    pub nodes: Vec<(NodeId, SocketAddrV4)>,
    /// Compact IPv6 nodes, `nodes6` (BEP 32).
    pub nodes6: Vec<(NodeId, SocketAddrV6)>,
    /// Peers (`get_peers`): 6-byte IPv4 or 18-byte IPv6 entries.
    pub values: Vec<SocketAddr>,
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
            Some(b) => Some(compact_peer(b).ok_or(KrpcError::Invalid("ip"))?),
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
        // Keys in order: `a` and `e` come before `ip`, `q` and `r` after it.
        let ip = |e: &mut Encoder| {
            if let Some(ip) = self.ip {
                e.str("ip").bytes(&compact_peer_bytes(ip));
            }
        };
        match &self.body {
            Body::Query(q) => encode_query(&mut e, q, ip),
            Body::Response(r) => {
                ip(&mut e);
                encode_response(&mut e, r);
            }
            Body::Error(c, msg) => {
                e.str("e").list().int(*c).str(msg).end();
                ip(&mut e);
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
            want: want(a),
        },
        b"get_peers" => Method::GetPeers {
            info_hash: hash(a, "info_hash")?,
            want: want(a),
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
    let nodes = compact_nodes(r, "nodes", COMPACT_NODE_LEN, |a| match compact_peer(a)? {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(_) => None,
    })?;
    let nodes6 = compact_nodes(r, "nodes6", COMPACT_NODE6_LEN, |a| match compact_peer(a)? {
        SocketAddr::V6(a) => Some(a),
        SocketAddr::V4(_) => None,
    })?;
    let mut values = Vec::new();
    if let Some(list) = r.get("values") {
        let list = list.as_list().ok_or(KrpcError::Invalid("values"))?;
        // Entries of another length are skipped: one bad peer spoils nothing else.
        for p in list
            .iter()
            .filter_map(Value::as_bytes)
            .filter_map(compact_peer)
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
        nodes6,
        values,
        token,
    })
}

/// The compact nodes under `key` (`len` bytes each), at most [`MAX_NODES`].
fn compact_nodes<A>(
    r: &Value<'_>,
    key: &'static str,
    len: usize,
    addr: impl Fn(&[u8]) -> Option<A>,
) -> Result<Vec<(NodeId, A)>, KrpcError> {
    let mut nodes = Vec::new();
    if let Some(n) = r.get(key) {
        let n = n.as_bytes().ok_or(KrpcError::Invalid(key))?;
        if n.len() % len != 0 {
            return Err(KrpcError::Invalid(key));
        }
        for c in n.chunks_exact(len).take(MAX_NODES) {
            let (nid, a) = c.split_at(20);
            if let (Ok(nid), Some(a)) = (nid.try_into(), addr(a)) {
                nodes.push((NodeId(nid), a));
            }
        }
    }
    Ok(nodes)
}

/// BEP 32's `want`: anything but a list of strings counts as absent, unknown strings
/// are ignored (as the BEP asks), and only the first [`MAX_WANT`] are looked at.
fn want(a: &Value<'_>) -> Want {
    let mut w = Want::default();
    let Some(list) = a.get("want").and_then(Value::as_list) else {
        return w;
    };
    for s in list.iter().take(MAX_WANT).filter_map(Value::as_bytes) {
        match s {
            b"n4" => w.n4 = true,
            b"n6" => w.n6 = true,
            _ => {}
        }
    }
    w
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

fn encode_query(e: &mut Encoder, q: &Query, ip: impl FnOnce(&mut Encoder)) {
    e.str("a").dict().str("id").bytes(&q.id.0);
    let name = match &q.method {
        Method::Ping => "ping",
        Method::FindNode { target, want } => {
            e.str("target").bytes(target);
            encode_want(e, *want);
            "find_node"
        }
        Method::GetPeers { info_hash, want } => {
            e.str("info_hash").bytes(info_hash);
            encode_want(e, *want);
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
    e.end();
    ip(e);
    e.str("q").str(name);
}

fn encode_want(e: &mut Encoder, w: Want) {
    if w.is_empty() {
        return;
    }
    e.str("want").list();
    if w.n4 {
        e.str("n4");
    }
    if w.n6 {
        e.str("n6");
    }
    e.end();
}

fn encode_response(e: &mut Encoder, r: &Response) {
    e.str("r").dict().str("id").bytes(&r.id.0);
    let nodes = r.nodes.iter().map(|(id, a)| (id, SocketAddr::V4(*a)));
    encode_nodes(e, "nodes", nodes);
    let nodes6 = r.nodes6.iter().map(|(id, a)| (id, SocketAddr::V6(*a)));
    encode_nodes(e, "nodes6", nodes6);
    if let Some(t) = &r.token {
        e.str("token").bytes(t);
    }
    if !r.values.is_empty() {
        e.str("values").list();
        for v in &r.values {
            e.bytes(&compact_peer_bytes(*v));
        }
        e.end();
    }
    e.end();
}

/// Writes `key` with the nodes' compact forms, unless there are none.
fn encode_nodes<'a>(
    e: &mut Encoder,
    key: &str,
    nodes: impl ExactSizeIterator<Item = (&'a NodeId, SocketAddr)>,
) {
    if nodes.len() == 0 {
        return;
    }
    let mut buf = Vec::with_capacity(nodes.len() * COMPACT_NODE6_LEN);
    for (id, addr) in nodes {
        buf.extend_from_slice(&id.0);
        buf.extend_from_slice(&compact_peer_bytes(addr));
    }
    e.str(key).bytes(&buf);
}

/// A compact address and port: 6 bytes (IPv4) or 18 (IPv6); `None` for any other length.
pub fn compact_peer(b: &[u8]) -> Option<SocketAddr> {
    match b.len() {
        6 => {
            let ip: [u8; 4] = b[..4].try_into().ok()?;
            let port = u16::from_be_bytes([b[4], b[5]]);
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        18 => {
            let ip: [u8; 16] = b[..16].try_into().ok()?;
            let port = u16::from_be_bytes([b[16], b[17]]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        _ => None,
    }
}

/// The compact form of `a`: 6 bytes for IPv4, 18 for IPv6.
pub fn compact_peer_bytes(a: SocketAddr) -> Vec<u8> {
    let mut b = match a.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    b.extend_from_slice(&a.port().to_be_bytes());
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

/// The IPv6 address of `addr` when it is a true IPv6 one (not IPv4-mapped), without
/// flow label: the form compact nodes decode to, so addresses compare equal.
pub fn ipv6_of(addr: SocketAddr) -> Option<SocketAddrV6> {
    match addr {
        SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_none() => {
            Some(SocketAddrV6::new(*a.ip(), a.port(), 0, a.scope_id()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
