//! Answers to other nodes' queries (BEP 5).
//!
//! Every well-formed query is answered, also from nodes whose id fails BEP 42 (they
//! are only kept out of our table). `get_peers` hands out a token for the querier's
//! IP; `announce_peer` stores the peer only with a valid token, on the announced port
//! or, with `implied_port`, the query's source port.
//!
//! BEP 32: `find_node` and `get_peers` answers hold `nodes` and/or `nodes6` as the
//! query's `want` asks (without `want`, our own family's); the other family's come from
//! the other DHT when it runs, else that key is left out. `values` are always of our
//! family, capped so the answer stays within 1024 bytes.

use std::net::SocketAddr;
use std::time::Instant;

use super::krpc::{code, Want};
use super::store::{MAX_ANSWER, MAX_ANSWER6};
use super::{Body, Dht, Family, Message, Method, Query, Response};

impl Dht {
    pub(super) fn answer(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tid: Vec<u8>,
        q: Query,
        other: Option<&Dht>,
    ) {
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
            Method::FindNode { target, want } => {
                self.fill_nodes(&mut r, &target, want, other, now);
                Body::Response(r)
            }
            Method::GetPeers { info_hash, want } => {
                self.fill_nodes(&mut r, &info_hash, want, other, now);
                let max = match self.config.family {
                    Family::V4 => MAX_ANSWER,
                    Family::V6 => MAX_ANSWER6,
                };
                // Not the querier itself (same address and port, as when its UDP and
                // TCP ports agree): some clients ban the address they meet themselves at.
                r.values = self.store.get(&info_hash, now, max + 1);
                r.values.retain(|p| *p != from);
                r.values.truncate(max);
                r.token = Some(self.tokens.make(from.ip()).to_vec());
                Body::Response(r)
            }
            Method::AnnouncePeer {
                info_hash,
                port,
                token,
                implied_port,
            } => {
                let port = if implied_port { from.port() } else { port };
                if !self.tokens.check(from.ip(), &token) {
                    Body::Error(code::PROTOCOL, "bad token".into())
                } else if port == 0 {
                    Body::Error(code::PROTOCOL, "bad port".into())
                } else if !self
                    .store
                    .announce(info_hash, SocketAddr::new(from.ip(), port), now)
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
        self.transmit.push_back((from, msg.encode()));
        // After the answer: the querier should not wait on our ping of someone else.
        if let Some((_, addr)) = ping {
            self.ping(now, addr);
        }
    }

    /// Puts the nodes closest to `target` in `r`, of the families `want` asks for.
    fn fill_nodes(
        &self,
        r: &mut Response,
        target: &[u8; 20],
        want: Want,
        other: Option<&Dht>,
        now: Instant,
    ) {
        let own = self.config.family;
        for family in [Family::V4, Family::V6] {
            if !family.wanted(want, own) {
                continue;
            }
            let nodes = if family == own {
                self.closest(target, now)
            } else {
                match other.filter(|o| o.config.family == family) {
                    Some(o) => o.closest(target, now),
                    None => continue,
                }
            };
            family.fill(r, nodes);
        }
    }
}
