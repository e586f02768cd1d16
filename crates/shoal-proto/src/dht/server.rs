//! Answers to other nodes' queries (BEP 5).
//!
//! Every well-formed query is answered, also from nodes whose id fails BEP 42 (they
//! are only kept out of our table). `get_peers` hands out a token for the querier's
//! IP; `announce_peer` stores the peer only with a valid token, on the announced port
//! or, with `implied_port`, the query's source port.

use std::net::SocketAddrV4;
use std::time::Instant;

use super::krpc::code;
use super::{Body, Dht, Message, Method, Query, Response, K};

impl Dht {
    pub(super) fn answer(&mut self, now: Instant, from: SocketAddrV4, tid: Vec<u8>, q: Query) {
        let ping = if self.id_acceptable(&q.id, from) {
            self.table.heard(q.id, from, now, false)
        } else {
            None
        };
        let mut r = Response {
            id: self.id,
            ..Response::default()
        };
        let body = match q.method {
            Method::Ping => Body::Response(r),
            Method::FindNode { target } => {
                r.nodes = self.table.closest(&target, K, now);
                Body::Response(r)
            }
            Method::GetPeers { info_hash } => {
                r.nodes = self.table.closest(&info_hash, K, now);
                // Not the querier itself (same address and port, as when its UDP and
                // TCP ports agree): some clients ban the address they meet themselves at.
                r.values = self.store.get(&info_hash, now);
                r.values.retain(|p| *p != from);
                r.token = Some(self.tokens.make(*from.ip()).to_vec());
                Body::Response(r)
            }
            Method::AnnouncePeer {
                info_hash,
                port,
                token,
                implied_port,
            } => {
                let port = if implied_port { from.port() } else { port };
                if !self.tokens.check(*from.ip(), &token) {
                    Body::Error(code::PROTOCOL, "bad token".into())
                } else if port == 0 {
                    Body::Error(code::PROTOCOL, "bad port".into())
                } else if !self
                    .store
                    .announce(info_hash, SocketAddrV4::new(*from.ip(), port), now)
                {
                    Body::Error(code::SERVER, "peer store full".into())
                } else {
                    Body::Response(r)
                }
            }
            Method::Other(_) => Body::Error(code::METHOD_UNKNOWN, "method unknown".into()),
        };
        let ip = matches!(body, Body::Response(_)).then_some(from);
        let msg = Message { tid, body, ip };
        self.transmit.push_back((from.into(), msg.encode()));
        // After the answer: the querier should not wait on our ping of someone else.
        if let Some((_, addr)) = ping {
            self.ping(now, addr);
        }
    }
}
