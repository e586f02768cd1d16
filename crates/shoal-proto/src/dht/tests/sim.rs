//! A deterministic in-memory network of [`Dht`] nodes on simulated time.
//!
//! Every datagram is delivered after a fixed latency through one time-ordered queue,
//! or lost with a set probability; nodes marked down receive nothing. Timers come from
//! each node's `poll_timeout`. Randomness comes from one seeded RNG, so a run is the
//! same every time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::dht::{Dht, DhtConfig, DhtEvent, Family, LookupId};

type Delivery = Reverse<(Instant, u64, usize, SocketAddr, Vec<u8>)>;

pub(crate) struct Net {
    pub(crate) nodes: Vec<Dht>,
    pub(crate) addrs: Vec<SocketAddr>,
    index: HashMap<SocketAddr, usize>,
    pub(crate) now: Instant,
    queue: BinaryHeap<Delivery>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    timer_at: Vec<Option<Instant>>,
    latency: Duration,
    /// Probability that a datagram is lost.
    pub(crate) loss: f64,
    pub(crate) rng: SmallRng,
    seq: u64,
    /// Nodes that receive nothing (crashed or unreachable).
    pub(crate) down: HashSet<usize>,
    /// Events of every node: node, event, time.
    pub(crate) events: Vec<(usize, DhtEvent, Instant)>,
    /// When each lookup ended, by node and lookup.
    done: HashMap<(usize, LookupId), Instant>,
    /// Datagrams sent so far.
    pub(crate) sent: u64,
}

/// A public (BEP 42-checked) address for node `i` in `family`: IPv6 ones in distinct
/// /64s, so their BEP 42 ids differ.
pub(crate) fn addr_of(i: usize, family: Family) -> SocketAddr {
    let ip = match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(0x2100_0000u32 + (i as u32) * 7919 + 1)),
        Family::V6 => {
            let x = (i as u32).wrapping_mul(2_654_435_761);
            let (hi, lo) = ((x >> 16) as u16, x as u16);
            IpAddr::V6(Ipv6Addr::new(0x2a00, hi, lo, i as u16, 0, 0, 0, 1))
        }
    };
    SocketAddr::new(ip, 6881)
}

impl Net {
    pub(crate) fn new(n: usize, seed: u64, latency: Duration) -> Net {
        Net::new_in(Family::V4, n, seed, latency)
    }

    /// `n` nodes of the `family` DHT.
    pub(crate) fn new_in(family: Family, n: usize, seed: u64, latency: Duration) -> Net {
        let mut rng = SmallRng::seed_from_u64(seed);
        let now = Instant::now();
        let mut net = Net {
            nodes: Vec::new(),
            addrs: Vec::new(),
            index: HashMap::new(),
            now,
            queue: BinaryHeap::new(),
            timers: BinaryHeap::new(),
            timer_at: Vec::new(),
            latency,
            loss: 0.0,
            rng: SmallRng::seed_from_u64(rng.gen()),
            seq: 0,
            down: HashSet::new(),
            events: Vec::new(),
            done: HashMap::new(),
            sent: 0,
        };
        let config = DhtConfig {
            family,
            ..DhtConfig::default()
        };
        for i in 0..n {
            let addr = addr_of(i, family);
            let node = Dht::new(config.clone(), Some(addr.ip()), rng.gen(), now);
            net.index.insert(addr, i);
            net.addrs.push(addr);
            net.nodes.push(node);
            net.timer_at.push(None);
            net.flush(i);
        }
        net
    }

    /// Moves node `i`'s output into the network and re-arms its timer.
    pub(crate) fn flush(&mut self, i: usize) {
        while let Some((to, bytes)) = self.nodes[i].poll_transmit() {
            self.sent += 1;
            if self.loss > 0.0 && self.rng.gen_bool(self.loss) {
                continue;
            }
            let Some(&j) = self.index.get(&to) else {
                continue;
            };
            self.seq += 1;
            let at = self.now + self.latency;
            self.queue
                .push(Reverse((at, self.seq, j, self.addrs[i], bytes)));
        }
        while let Some(e) = self.nodes[i].poll_event() {
            if let DhtEvent::LookupDone { lookup, .. } = e {
                self.done.insert((i, lookup), self.now);
            }
            self.events.push((i, e, self.now));
        }
        let t = self.nodes[i].poll_timeout();
        if t != self.timer_at[i] {
            self.timer_at[i] = t;
            if let Some(t) = t {
                self.timers.push(Reverse((t, i)));
            }
        }
    }

    /// Delivers the next datagram or fires the next timer; false when nothing is left.
    fn step(&mut self) -> bool {
        while let Some(Reverse((t, i))) = self.timers.peek().copied() {
            if self.timer_at[i] == Some(t) {
                break;
            }
            self.timers.pop();
        }
        let next_msg = self.queue.peek().map(|Reverse(d)| d.0);
        let next_timer = self.timers.peek().map(|Reverse(t)| t.0);
        let take_msg = match (next_msg, next_timer) {
            (Some(m), Some(t)) => m <= t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return false,
        };
        if take_msg {
            let Some(Reverse((at, _, to, from, bytes))) = self.queue.pop() else {
                return false;
            };
            self.now = self.now.max(at);
            if !self.down.contains(&to) {
                self.nodes[to].handle_input(self.now, from, &bytes);
                self.flush(to);
            }
        } else {
            let Some(Reverse((t, i))) = self.timers.pop() else {
                return false;
            };
            self.now = self.now.max(t);
            self.timer_at[i] = None;
            self.nodes[i].handle_timeout(self.now);
            self.flush(i);
        }
        true
    }

    /// Runs until `done` holds (true) or `limit` of simulated time passes (false).
    pub(crate) fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Net) -> bool,
    ) -> bool {
        let end = self.now + limit;
        while !done(self) {
            if self.now >= end || !self.step() {
                return done(self);
            }
        }
        true
    }

    /// Runs for `d` of simulated time.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(d, |n| n.now >= end);
    }

    /// Bootstraps every node but node 0 from node 0, one every `gap`, then settles.
    pub(crate) fn bootstrap_all(&mut self, gap: Duration) {
        let router = self.addrs[0];
        for i in 1..self.nodes.len() {
            let now = self.now;
            self.nodes[i].bootstrap(now, &[router]);
            self.flush(i);
            self.run_for(gap);
        }
        self.run_for(Duration::from_secs(10));
    }

    /// When the lookup `lid` of node `i` ended, if it did.
    pub(crate) fn done_at(&self, i: usize, lid: LookupId) -> Option<Instant> {
        self.done.get(&(i, lid)).copied()
    }

    /// Peers found by the lookup `lid` of node `i`.
    pub(crate) fn peers_of(&self, i: usize, lid: LookupId) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for (n, e, _) in &self.events {
            if let DhtEvent::Peers { lookup, peers } = e {
                if *n == i && *lookup == lid {
                    out.extend(peers.iter().copied());
                }
            }
        }
        out
    }
}
