//! A receiver that acks the way libtorrent does, over a simulated link.
//!
//! libtorrent 2.0 (`utp_stream.cpp`, `send_pkt`) sizes its selective ack to the reorder
//! buffer: `(span + 7) / 8` bytes, not padded to the multiple of 4 BEP 29 asks for. A
//! sender that rejects such a packet as malformed ignores every ack sent while a gap is
//! open, wnd and cumulative ack included; near the end of a transfer it then resends the
//! oldest packet it still believes unacked, libtorrent answers each resend with the same
//! unpadded ack, and the retransmission timeout doubles until the connection gives up:
//! the 60-100 s stall of `tests/utp_interop.rs` (Shoal seeding to libtorrent), issue 14.

use std::collections::HashSet;
use std::time::Duration;

use super::link::LinkConfig;
use super::{data, Sim, Tap};
use crate::utp::packet::{Packet, PacketType, HEADER_LEN};

/// Payload bytes per packet (`UtpConfig::default().max_payload`).
const MSS: usize = 1400;

/// Re-encodes one of our packets with its selective ack cut to the bytes that hold a set
/// bit (at least one), as libtorrent writes it: same header, same payload.
fn as_libtorrent(packet: Vec<u8>) -> Option<Vec<u8>> {
    let Ok(p) = Packet::decode(&packet) else {
        return Some(packet);
    };
    let Some(sack) = p.sack else {
        return Some(packet);
    };
    let used = sack.iter().rposition(|&b| b != 0).map_or(1, |i| i + 1);
    let mut out = packet[..HEADER_LEN].to_vec();
    out.extend_from_slice(&[0, u8::try_from(used).expect("at most 128 bytes")]);
    out.extend_from_slice(&sack[..used]);
    out.extend_from_slice(p.payload);
    Some(out)
}

/// Drops the first transmission of the data packets numbered `seqs`.
fn lose_once(seqs: &[u16]) -> Tap {
    let mut pending: HashSet<u16> = seqs.iter().copied().collect();
    Box::new(move |packet: Vec<u8>| {
        let Ok(p) = Packet::decode(&packet) else {
            return Some(packet);
        };
        let h = p.header;
        let lose = h.kind == PacketType::Data && pending.remove(&h.seq_nr);
        (!lose).then_some(packet)
    })
}

/// 200 packets to a libtorrent-style receiver; the first sends of packets 150 and 190 are
/// lost (the initiator's data starts at sequence number 2). Every ack after the first
/// loss carries a selective ack of 1 to 7 bytes. The transfer must end as on any lossy
/// link, in well under a second of simulated time and without a single timeout; a sender
/// that drops those acks stalls in doubling timeouts and times the connection out.
#[test]
fn unpadded_selective_acks_from_libtorrent_are_used() {
    let len = 200 * MSS;
    let mut sim = Sim::new(
        LinkConfig::default(),
        LinkConfig::default(),
        3,
        data(len, 14),
        Vec::new(),
    );
    sim.ab_tap = Some(lose_once(&[150, 190]));
    sim.ba_tap = Some(Box::new(as_libtorrent));
    let closed = sim.run(Duration::from_secs(300));
    let a = sim.a.conn().stats();
    let secs = (sim.now - sim.t0).as_secs_f64();
    eprintln!(
        "libtorrent-style acks: {} of {len} bytes in {secs:.2} s simulated, \
         retransmits {}, timeouts {}, error {:?}",
        sim.b.got.len(),
        a.retransmits,
        a.timeouts,
        sim.a.conn().error()
    );
    assert!(closed, "not closed: {:?}", sim.a.conn().error());
    assert_eq!(sim.a.conn().error(), None);
    assert!(
        sim.b.got == sim.a.data,
        "{} of {len} bytes",
        sim.b.got.len()
    );
    assert_eq!(a.timeouts, 0, "every loss repaired from the selective acks");
    assert!(secs < 1.0, "{secs:.2} s simulated for 280 kB at 10 MB/s");
}
