//! The send side of a connection: packets in flight, acks (cumulative and selective),
//! loss detection, and the round-trip estimate behind the retransmission timeout.
//!
//! Invariants: `packets` holds every sequenced packet (SYN, DATA, FIN) from the oldest
//! unacknowledged one up to the newest, contiguous in sequence numbers, so packet `i`
//! is `next_seq - len + i`. `bytes` is the payload of the packets counted in the
//! window: sent, not acked (cumulatively or selectively) and not declared lost. A packet
//! is declared lost by a timeout (all of them), three duplicate acks (the oldest), or
//! three later packets selectively acked; a fast-retransmitted packet is declared lost
//! again by those only once it has had a round trip and a quarter to be acked (else
//! by the timeout), so the acks that caused a resend do not repeat it at once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::super::packet::PacketType;

/// One sequenced packet we sent.
#[derive(Debug)]
pub(super) struct Sent {
    pub(super) seq: u16,
    pub(super) kind: PacketType,
    pub(super) payload: Vec<u8>,
    pub(super) sent_at: Instant,
    pub(super) transmissions: u32,
    /// Selectively acked: delivered, awaiting the cumulative ack.
    acked: bool,
    /// Declared lost, awaiting retransmission; not counted in the window.
    lost: bool,
    fast_resent: bool,
}

/// What one incoming ack did.
#[derive(Debug, Default)]
pub(super) struct AckResult {
    /// Payload bytes newly acknowledged.
    pub(super) acked_bytes: u32,
    /// Packets newly acknowledged cumulatively.
    pub(super) advanced: usize,
    /// Whether a packet was newly declared lost.
    pub(super) lost: bool,
}

#[derive(Debug, Default)]
pub(super) struct Flight {
    packets: VecDeque<Sent>,
    bytes: u32,
    dup_acks: u32,
    /// Packets declared lost and not acked since: waiting for a resend. Kept so that
    /// sending new data (every packet) need not scan the whole flight for resends.
    lost: usize,
}

fn size(p: &Sent) -> u32 {
    // Payloads are at most one MTU; the cast cannot truncate.
    p.payload.len() as u32
}

impl Flight {
    pub(super) fn len(&self) -> usize {
        self.packets.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Payload bytes counted in the window.
    pub(super) fn bytes(&self) -> u32 {
        self.bytes
    }

    /// Whether `seq` (our FIN, say) has been acknowledged.
    pub(super) fn is_acked(&self, seq: u16, next_seq: u16) -> bool {
        let first = next_seq.wrapping_sub(self.packets.len() as u16);
        seq.wrapping_sub(first) >= 0x8000
    }

    /// Records a new packet as sent at `now`.
    pub(super) fn push(&mut self, now: Instant, seq: u16, kind: PacketType, payload: Vec<u8>) {
        let p = Sent {
            seq,
            kind,
            payload,
            sent_at: now,
            transmissions: 1,
            acked: false,
            lost: false,
            fast_resent: false,
        };
        self.bytes += size(&p);
        self.packets.push_back(p);
    }

    /// The oldest packet waiting for retransmission, and whether it is the oldest in
    /// flight (which may always go, so a closed window cannot stall recovery).
    pub(super) fn next_resend(&self) -> Option<(usize, u32, bool)> {
        // The counter's invariant, checked in this crate's tests only: a check in every
        // debug build would scan the flight on each send, the cost the counter removes.
        #[cfg(test)]
        assert_eq!(
            self.lost,
            self.packets.iter().filter(|p| p.lost && !p.acked).count()
        );
        if self.lost == 0 {
            return None;
        }
        let i = self.packets.iter().position(|p| p.lost && !p.acked)?;
        Some((i, size(&self.packets[i]), i == 0))
    }

    /// Takes packet `i` for retransmission at `now`.
    pub(super) fn resend(&mut self, now: Instant, i: usize) -> Option<&Sent> {
        let p = self.packets.get_mut(i)?;
        if p.lost && !p.acked {
            self.lost -= 1;
        }
        p.lost = false;
        p.transmissions += 1;
        p.sent_at = now;
        self.bytes += size(p);
        Some(p)
    }

    /// The oldest packet was dropped by the receiver: resend it, if it is unacked.
    pub(super) fn drop_oldest(&mut self) {
        if let Some(p) = self.packets.front_mut() {
            if !p.acked && !p.lost {
                p.lost = true;
                self.lost += 1;
                self.bytes -= size(p);
            }
        }
    }

    /// The retransmission timer fired: every unacked packet is lost.
    pub(super) fn on_timeout(&mut self) {
        for p in self.packets.iter_mut().filter(|p| !p.acked) {
            p.lost = true;
            p.fast_resent = false;
        }
        self.bytes = 0;
        self.dup_acks = 0;
        self.lost = self.packets.iter().filter(|p| !p.acked).count();
    }

    /// Applies an ack for everything up to `ack_nr` plus the selective ack `sack`.
    /// `dup_candidate`: the packet carried no data, so an unchanged `ack_nr` is a
    /// duplicate ack. Returns `None` for an ack outside what we have in flight.
    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        next_seq: u16,
        ack_nr: u16,
        sack: Option<&[u8]>,
        dup_candidate: bool,
        rtt: &mut Rtt,
    ) -> Option<AckResult> {
        let first = next_seq.wrapping_sub(self.packets.len() as u16);
        let n = usize::from(ack_nr.wrapping_sub(first).wrapping_add(1));
        if n > self.packets.len() {
            return None;
        }
        let mut res = AckResult {
            advanced: n,
            ..AckResult::default()
        };
        for p in self.packets.drain(..n) {
            if p.lost && !p.acked {
                self.lost -= 1;
            }
            if !p.acked {
                if !p.lost {
                    self.bytes -= size(&p);
                }
                res.acked_bytes += size(&p);
                if p.transmissions == 1 {
                    rtt.sample(now.saturating_duration_since(p.sent_at));
                }
            }
        }
        if n > 0 {
            self.dup_acks = 0;
        } else if dup_candidate && !self.packets.is_empty() {
            self.dup_acks += 1;
            if self.dup_acks == 3 {
                res.lost |= self.declare_lost(0, now, rtt);
            }
        }
        if let Some(mask) = sack {
            self.apply_sack(now, mask, &mut res, rtt);
        }
        Some(res)
    }

    fn apply_sack(&mut self, now: Instant, mask: &[u8], res: &mut AckResult, rtt: &mut Rtt) {
        // After the cumulative part, packet 0 is ack_nr + 1 and bit i is ack_nr + 2 + i.
        for (i, p) in self.packets.iter_mut().skip(1).enumerate() {
            let Some(byte) = mask.get(i / 8) else { break };
            if byte & (1 << (i % 8)) == 0 || p.acked {
                continue;
            }
            p.acked = true;
            if p.lost {
                self.lost -= 1;
            } else {
                self.bytes -= size(p);
            }
            res.acked_bytes += size(p);
            if p.transmissions == 1 {
                rtt.sample(now.saturating_duration_since(p.sent_at));
            }
        }
        let mut acked_after = 0;
        for i in (0..self.packets.len()).rev() {
            if self.packets[i].acked {
                acked_after += 1;
            } else if acked_after >= 3 {
                res.lost |= self.declare_lost(i, now, rtt);
            }
        }
    }

    fn declare_lost(&mut self, i: usize, now: Instant, rtt: &Rtt) -> bool {
        let Some(p) = self.packets.get_mut(i) else {
            return false;
        };
        // A resend still unacked a round trip (and a quarter) after it went out, while
        // later packets are being acked, was lost too; younger, it may be on its way.
        let srtt = rtt.srtt();
        let resend_lost =
            !srtt.is_zero() && now.saturating_duration_since(p.sent_at) > srtt + srtt / 4;
        if p.acked || p.lost || (p.fast_resent && !resend_lost) {
            return false;
        }
        p.lost = true;
        p.fast_resent = true;
        self.lost += 1;
        self.bytes -= size(p);
        true
    }
}

/// Round-trip estimate and retransmission timeout (BEP 29, after RFC 6298).
#[derive(Debug, Clone)]
pub(super) struct Rtt {
    srtt: Option<Duration>,
    var: Duration,
    rto: Duration,
    min_rto: Duration,
}

impl Rtt {
    pub(super) fn new(initial_rto: Duration, min_rto: Duration) -> Self {
        Rtt {
            srtt: None,
            var: Duration::ZERO,
            rto: initial_rto,
            min_rto,
        }
    }

    fn sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.var = r / 2;
            }
            Some(srtt) => {
                let delta = if srtt > r { srtt - r } else { r - srtt };
                // var += (|delta| - var) / 4; srtt += (r - srtt) / 8, in signed form.
                self.var = (self.var * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + r) / 8);
            }
        }
        self.rto = (self.srtt.unwrap_or_default() + self.var * 4).max(self.min_rto);
    }

    /// Smoothed round-trip time (zero before the first sample).
    pub(super) fn srtt(&self) -> Duration {
        self.srtt.unwrap_or_default()
    }

    pub(super) fn var(&self) -> Duration {
        self.var
    }

    /// The current timeout, before back-off.
    pub(super) fn rto(&self) -> Duration {
        self.rto
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight(now: Instant, n: u16) -> Flight {
        let mut f = Flight::default();
        for seq in 10..10 + n {
            f.push(now, seq, PacketType::Data, vec![0; 100]);
        }
        f
    }

    #[test]
    fn cumulative_ack_sack_and_loss() {
        let now = Instant::now();
        let mut rtt = Rtt::new(Duration::from_secs(1), Duration::from_millis(500));
        let mut f = flight(now, 6); // 10..=15, next 16
        let later = now + Duration::from_millis(40);
        let r = f.on_ack(later, 16, 10, None, true, &mut rtt).unwrap();
        assert_eq!((r.advanced, r.acked_bytes, r.lost), (1, 100, false));
        assert_eq!(rtt.srtt(), Duration::from_millis(40));
        // 11 missing; 12, 13, 14 selectively acked: 11 is lost.
        let r = f
            .on_ack(later, 16, 10, Some(&[0b111, 0, 0, 0]), false, &mut rtt)
            .unwrap();
        assert_eq!((r.advanced, r.acked_bytes, r.lost), (0, 300, true));
        assert_eq!(f.bytes(), 100, "only 15 counted: 11 is lost");
        assert_eq!(f.next_resend(), Some((0, 100, true)));
        f.resend(later, 0);
        // The same sack again does not declare the resent packet lost again.
        let r = f
            .on_ack(later, 16, 10, Some(&[0b111, 0, 0, 0]), false, &mut rtt)
            .unwrap();
        assert!(!r.lost && f.next_resend().is_none());
        let r = f.on_ack(later, 16, 14, None, false, &mut rtt).unwrap();
        assert_eq!(
            (r.advanced, r.acked_bytes),
            (4, 100),
            "11's resend, nothing twice"
        );
        assert!(f.on_ack(later, 16, 200, None, false, &mut rtt).is_none());
        assert!(f.on_ack(later, 16, 5, None, false, &mut rtt).is_none());
    }

    #[test]
    fn three_duplicate_acks_resend_the_oldest() {
        let now = Instant::now();
        let mut rtt = Rtt::new(Duration::from_secs(1), Duration::from_millis(500));
        let mut f = flight(now, 4);
        for i in 0..3 {
            let r = f.on_ack(now, 14, 9, None, true, &mut rtt).unwrap();
            assert_eq!(r.lost, i == 2);
        }
        assert_eq!(f.next_resend(), Some((0, 100, true)));
    }

    #[test]
    fn rto_follows_bep29() {
        let mut rtt = Rtt::new(Duration::from_secs(1), Duration::from_millis(500));
        rtt.sample(Duration::from_millis(100));
        assert_eq!(rtt.rto(), Duration::from_millis(500), "floor");
        rtt.sample(Duration::from_millis(900));
        assert_eq!(rtt.srtt(), Duration::from_millis(200));
        assert_eq!(
            rtt.var(),
            Duration::from_millis(237) + Duration::from_micros(500)
        );
        assert_eq!(rtt.rto(), Duration::from_millis(1150));
    }
}
