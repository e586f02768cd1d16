//! A simulated one-way link for uTP tests: a drop-tail queue in front of a bottleneck
//! of fixed bandwidth, then a propagation delay, with seeded random loss, reordering
//! (extra delay for some packets) and duplication.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Impairments of one direction.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// Propagation delay after the bottleneck.
    pub delay: Duration,
    /// Bottleneck rate, bytes per second.
    pub bandwidth: u64,
    /// Queue in front of the bottleneck, bytes; a packet that finds it full is dropped.
    pub queue: usize,
    /// Probability a packet is lost.
    pub loss: f64,
    /// Probability a packet is held back by up to `reorder_delay`.
    pub reorder: f64,
    /// Longest extra delay of a reordered packet.
    pub reorder_delay: Duration,
    /// Probability a packet arrives twice.
    pub duplicate: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            delay: Duration::from_millis(5),
            bandwidth: 10_000_000,
            queue: 256 * 1024,
            loss: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(10),
            duplicate: 0.0,
        }
    }
}

/// What a link saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinkStats {
    pub sent: u64,
    pub lost: u64,
    pub queue_drops: u64,
    /// Sum and count of the queueing delay of packets that entered the queue, for means
    /// over a window of time (reset by the caller).
    pub queue_delay_sum: Duration,
    pub queue_delay_n: u64,
    pub queue_delay_max: Duration,
}

pub struct Link {
    cfg: LinkConfig,
    rng: SmallRng,
    /// When the bottleneck finishes sending what is queued.
    free_at: Option<Instant>,
    arrivals: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    order: u64,
    pub stats: LinkStats,
}

impl Link {
    pub fn new(cfg: LinkConfig, seed: u64) -> Self {
        Link {
            cfg,
            rng: SmallRng::seed_from_u64(seed),
            free_at: None,
            arrivals: BinaryHeap::new(),
            order: 0,
            stats: LinkStats::default(),
        }
    }

    /// Puts a datagram on the link at `now`.
    pub fn send(&mut self, now: Instant, packet: Vec<u8>) {
        self.stats.sent += 1;
        if self.rng.gen_bool(self.cfg.loss) {
            self.stats.lost += 1;
            return;
        }
        let start = self.free_at.map_or(now, |f| f.max(now));
        let queued = start - now;
        let queued_bytes = queued.as_secs_f64() * self.cfg.bandwidth as f64;
        if queued_bytes + packet.len() as f64 > self.cfg.queue as f64 {
            self.stats.queue_drops += 1;
            return;
        }
        self.stats.queue_delay_sum += queued;
        self.stats.queue_delay_n += 1;
        self.stats.queue_delay_max = self.stats.queue_delay_max.max(queued);
        let tx = Duration::from_secs_f64(packet.len() as f64 / self.cfg.bandwidth as f64);
        self.free_at = Some(start + tx);
        let mut arrive = start + tx + self.cfg.delay;
        if self.rng.gen_bool(self.cfg.reorder) {
            arrive += self.cfg.reorder_delay.mul_f64(self.rng.gen::<f64>());
        }
        if self.rng.gen_bool(self.cfg.duplicate) {
            let later = arrive + Duration::from_micros(self.rng.gen_range(0..2000));
            self.push(later, packet.clone());
        }
        self.push(arrive, packet);
    }

    fn push(&mut self, at: Instant, packet: Vec<u8>) {
        self.order += 1;
        self.arrivals.push(Reverse((at, self.order, packet)));
    }

    /// When the next datagram arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.arrivals.peek().map(|Reverse((at, _, _))| *at)
    }

    /// A datagram that has arrived by `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_arrival()? > now {
            return None;
        }
        self.arrivals.pop().map(|Reverse((_, _, p))| p)
    }
}
