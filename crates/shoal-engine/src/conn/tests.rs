//! The connection's rules, tested in memory on simulated time: two machines wired
//! together, or one facing a scripted (hostile) peer. No sockets, no sleeps.

mod harness;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shoal_proto::wire::{BlockRef, Message};

use super::{
    PeerError, IDLE_TIMEOUT, KEEPALIVE, MAX_BITFIELD_REPLACEMENTS, MAX_REQUEST_LEN,
    MAX_TRANSMIT_BYTES, MAX_UNSOLICITED, MAX_UPLOAD_QUEUE, SNUB_TIMEOUT, TICK, WRITE_TIMEOUT,
};
use harness::{addr, torrent, Msg, Pair, Side, SideOpts, PIECE};

/// A seeder side and the torrent's data; the scripted peer is a leecher.
fn seeder(dir: &std::path::Path, len: usize, fast: bool, now: Instant) -> (Side, Vec<u8>) {
    let (data, meta) = torrent(dir, len);
    let side = Side::new(
        SideOpts {
            meta,
            seed: Some(&data),
            peer: (addr(2), 2),
            fast,
            extended: true,
        },
        now,
    );
    (side, data)
}

/// A leecher side with an empty save folder; the scripted peer is a seeder.
fn leecher(dir: &std::path::Path, len: usize, fast: bool, now: Instant) -> (Side, Vec<u8>) {
    let (data, meta) = torrent(dir, len);
    let side = Side::new(
        SideOpts {
            meta,
            seed: None,
            peer: (addr(3), 3),
            fast,
            extended: true,
        },
        now,
    );
    (side, data)
}

fn block(index: u32, begin: u32, length: u32) -> BlockRef {
    BlockRef {
        index,
        begin,
        length,
    }
}

fn requests(msgs: &[Msg]) -> Vec<BlockRef> {
    msgs.iter()
        .filter_map(|m| match m {
            Msg::Request(r) => Some(*r),
            _ => None,
        })
        .collect()
}

fn protocol_error(r: Result<(), PeerError>) -> String {
    match r {
        Err(PeerError::Protocol(why)) => why,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn two_connections_transfer_a_torrent_in_memory() {
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let len = 20 * PIECE as usize + 1234;
    let (data, meta) = torrent(dir.path(), len);
    let mk = |seed, peer: u8, fast| SideOpts {
        meta: meta.clone(),
        seed,
        peer: (addr(peer), peer),
        fast,
        extended: true,
    };
    let mut pair = Pair {
        a: Side::new(mk(Some(&data), 2, true), now),
        b: Side::new(mk(None, 1, true), now),
        now,
    };
    let pieces = meta.info.num_pieces();
    for _ in 0..200 {
        pair.drive().await.unwrap();
        if pair.b.have_count() == pieces {
            break;
        }
        pair.advance(TICK).unwrap();
    }
    assert_eq!(pair.b.have_count(), pieces, "the leecher did not complete");
    assert!(
        pair.b.storage.data() == Some(data),
        "downloaded data differs"
    );
    assert_eq!(
        pair.b.stats.downloaded.load(Ordering::Relaxed),
        len as u64,
        "every block was fetched once"
    );
    // Both sides seed now: the next tick closes the connection.
    pair.drive().await.unwrap();
    let closed = pair.advance(TICK);
    assert!(
        matches!(closed, Err(PeerError::Closed("both sides are seeds"))),
        "{closed:?}"
    );
}

#[tokio::test]
async fn unsolicited_blocks_are_discarded_then_the_peer_is_dropped() {
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (mut us, _) = leecher(dir.path(), 4 * PIECE as usize, true, now);
    us.feed(now, &[Message::HaveAll, Message::Unchoke]).unwrap();
    let asked = requests(&us.output());
    assert!(!asked.is_empty(), "no requests after an unchoke");
    // Blocks nobody asked for (an offset never requested) are dropped, uncounted.
    let junk = vec![0u8; 16 * 1024];
    for n in 0..MAX_UNSOLICITED {
        us.feed(
            now,
            &[Message::Piece {
                index: 3,
                begin: 100 + n,
                data: &junk,
            }],
        )
        .unwrap();
    }
    assert_eq!(us.stats.downloaded.load(Ordering::Relaxed), 0);
    let why = protocol_error(us.feed(
        now,
        &[Message::Piece {
            index: 3,
            begin: 1,
            data: &junk,
        }],
    ));
    assert!(why.contains("did not request"), "{why}");
}

#[tokio::test]
async fn requests_out_of_range_or_too_long_close_the_connection() {
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let len = 3 * PIECE as usize + 100;
    let last = (3, 0, 100);
    for (index, begin, length) in [
        (0, 0, 0),
        (0, PIECE as u32 - 10, 16 * 1024),
        (3, 0, 101),
        (last.0, last.1, last.2 + 1),
        (4, 0, 16 * 1024),
        (u32::MAX, 0, 16 * 1024),
        (0, u32::MAX, 16 * 1024),
        (0, 0, MAX_REQUEST_LEN + 1),
    ] {
        let (mut us, _) = seeder(dir.path(), len, true, now);
        let why = protocol_error(us.feed(now, &[Message::Request(block(index, begin, length))]));
        assert!(why.contains("bad request"), "{why}");
    }
    // The largest valid request is served.
    let (mut us, _) = seeder(dir.path(), len, true, now);
    us.conn
        .handle_command(now, super::PeerCmd::Unchoke, &us.shared)
        .unwrap();
    us.feed(now, &[Message::Request(block(last.0, last.1, last.2))])
        .unwrap();
    us.serve_reads(now);
    assert!(us
        .output()
        .iter()
        .any(|m| matches!(m, Msg::Piece { index: 3, data, .. } if data.len() == 100)));
}

#[tokio::test]
async fn a_request_flood_is_bounded_and_rejected() {
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (mut us, _) = seeder(dir.path(), 64 * PIECE as usize, true, now);
    us.conn
        .handle_command(now, super::PeerCmd::Unchoke, &us.shared)
        .unwrap();
    us.output();
    let flood: Vec<Message> = (0..MAX_UPLOAD_QUEUE as u32 + 100)
        .map(|i| Message::Request(block(i % 64, (i / 64) * 16384 % PIECE as u32, 16384)))
        .collect();
    us.feed(now, &flood).unwrap();
    let rejects = us
        .output()
        .iter()
        .filter(|m| matches!(m, Msg::Reject(_)))
        .count();
    assert_eq!(
        rejects, 100,
        "requests beyond our queue are rejected (BEP 6)"
    );
    // Choked, it is rejected whatever it asks, and output that nobody takes stops
    // our reading before it grows past its bound.
    us.conn
        .handle_command(now, super::PeerCmd::Choke, &us.shared)
        .unwrap();
    let one = [Message::Request(block(0, 0, 16384))];
    let mut fed = 0usize;
    while us.conn.wants_input() {
        us.feed(now, &one).unwrap();
        fed += 1;
        assert!(fed < 1_000_000, "input never stopped");
    }
    assert!(fed * 17 >= MAX_TRANSMIT_BYTES - MAX_UPLOAD_QUEUE * 17);
}

#[tokio::test]
async fn a_peer_that_never_reads_times_out() {
    let mut now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (mut us, _) = seeder(dir.path(), 64 * PIECE as usize, false, now);
    us.conn
        .handle_command(now, super::PeerCmd::Unchoke, &us.shared)
        .unwrap();
    let reqs: Vec<Message> = (0..64u32)
        .flat_map(|i| {
            [
                Message::Request(block(i, 0, 16384)),
                Message::Request(block(i, 16384, 16384)),
            ]
        })
        .collect();
    us.feed(now, &reqs).unwrap();
    // Reads follow the peer's reading: with output untaken, they stop.
    us.serve_reads(now);
    us.serve_reads(now);
    assert!(
        us.conn.poll_disk_read().is_none(),
        "reads went on while nothing was sent"
    );
    // The peer keeps talking (keep-alives) but never reads.
    let step = Duration::from_secs(10);
    let mut waited = Duration::ZERO;
    let err = loop {
        now += step;
        waited += step;
        us.feed(now, &[Message::KeepAlive]).unwrap();
        if let Err(e) = us.timeout(now) {
            break e;
        }
        assert!(waited < WRITE_TIMEOUT * 2, "no write timeout");
    };
    assert!(
        matches!(err, PeerError::Timeout("the peer to read our data")),
        "{err:?}"
    );
    assert!(waited > WRITE_TIMEOUT);
}

#[tokio::test]
async fn idle_peers_time_out_and_we_send_keepalives() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (mut us, _) = seeder(dir.path(), 4 * PIECE as usize, true, t0);
    us.output();
    let mut now = t0 + KEEPALIVE + TICK;
    us.timeout(now).unwrap();
    assert_eq!(us.output(), vec![Msg::KeepAlive]);
    now = t0 + IDLE_TIMEOUT;
    us.timeout(now).unwrap();
    now += TICK * 2;
    let err = us.timeout(now).unwrap_err();
    assert!(matches!(err, PeerError::Timeout("any message")), "{err:?}");
}

#[tokio::test]
async fn snubbed_requests_go_back_and_late_answers_still_count() {
    let mut now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (mut us, data) = leecher(dir.path(), 4 * PIECE as usize, false, now);
    us.feed(now, &[Message::Bitfield(&[0xf0]), Message::Unchoke])
        .unwrap();
    let asked = requests(&us.output());
    assert!(!asked.is_empty());
    now += SNUB_TIMEOUT + TICK;
    us.feed(now, &[Message::KeepAlive]).unwrap();
    us.timeout(now).unwrap();
    assert!(
        us.stats.snubbed.load(Ordering::Relaxed),
        "not marked snubbed"
    );
    // Released to the picker: the same blocks are asked for again.
    let again = requests(&us.output());
    assert!(again.contains(&asked[0]), "{again:?}");
    // An answer now to an old request is taken, not counted as unsolicited.
    let r = asked[0];
    let start = (u64::from(r.index) * PIECE + u64::from(r.begin)) as usize;
    us.feed(
        now,
        &[Message::Piece {
            index: r.index,
            begin: r.begin,
            data: &data[start..start + r.length as usize],
        }],
    )
    .unwrap();
    assert_eq!(
        us.stats.downloaded.load(Ordering::Relaxed),
        u64::from(r.length)
    );
    assert!(!us.stats.snubbed.load(Ordering::Relaxed));
}

#[tokio::test]
async fn fast_extension_abuse_closes_the_connection() {
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let len = 4 * PIECE as usize;
    // Fast messages from a peer that did not offer the extension.
    for m in [
        Message::HaveAll,
        Message::HaveNone,
        Message::RejectRequest(block(0, 0, 16384)),
    ] {
        let (mut us, _) = leecher(dir.path(), len, false, now);
        let why = protocol_error(us.feed(now, &[m]));
        assert!(why.contains("without fast extension"), "{why}");
    }
    // HaveAll after the conversation opened.
    let (mut us, _) = leecher(dir.path(), len, true, now);
    let why = protocol_error(us.feed(now, &[Message::Have(1), Message::HaveAll]));
    assert!(why.contains("after the first message"), "{why}");
    // A reject for something we never asked.
    let (mut us, _) = leecher(dir.path(), len, true, now);
    let why = protocol_error(us.feed(
        now,
        &[Message::HaveAll, Message::RejectRequest(block(0, 0, 16384))],
    ));
    assert!(why.contains("never sent"), "{why}");
    // Bitfields again and again.
    let (mut us, _) = leecher(dir.path(), len, true, now);
    us.feed(now, &[Message::Bitfield(&[0x80])]).unwrap();
    for _ in 0..MAX_BITFIELD_REPLACEMENTS {
        us.feed(now, &[Message::Bitfield(&[0xc0])]).unwrap();
    }
    let why = protocol_error(us.feed(now, &[Message::Bitfield(&[0xf0])]));
    assert!(why.contains("too many bitfields"), "{why}");
    // A HAVE beyond the last piece.
    let (mut us, _) = leecher(dir.path(), len, true, now);
    let why = protocol_error(us.feed(now, &[Message::Have(4)]));
    assert!(why.contains("out of range"), "{why}");
}

#[tokio::test]
async fn a_choke_from_a_fast_peer_keeps_requests_until_rejected() {
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (mut us, _) = leecher(dir.path(), 4 * PIECE as usize, true, now);
    us.feed(now, &[Message::HaveAll, Message::Unchoke]).unwrap();
    let asked = requests(&us.output());
    us.feed(now, &[Message::Choke]).unwrap();
    // Still ours: its reject is matched, not a protocol error.
    for r in &asked {
        us.feed(now, &[Message::RejectRequest(*r)]).unwrap();
    }
    // A second reject of the same block was never asked for any more.
    let why = protocol_error(us.feed(now, &[Message::RejectRequest(asked[0])]));
    assert!(why.contains("never sent"), "{why}");
}

#[tokio::test]
async fn corrupt_pieces_get_the_peer_banned() {
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (mut us, _) = leecher(dir.path(), 8 * PIECE as usize, true, now);
    us.feed(now, &[Message::HaveAll, Message::Unchoke]).unwrap();
    let garbage = vec![0xAAu8; MAX_REQUEST_LEN as usize];
    let mut closed = None;
    for _ in 0..20 {
        let asked = requests(&us.output());
        let answers: Vec<Message> = asked
            .iter()
            .map(|r| Message::Piece {
                index: r.index,
                begin: r.begin,
                data: &garbage[..r.length as usize],
            })
            .collect();
        us.feed(now, &answers).unwrap();
        us.settle().await;
        if let Err(e) = us.commands(now) {
            closed = Some(e);
            break;
        }
    }
    let err = closed.expect("the corrupt peer was never dropped");
    assert!(
        matches!(err, PeerError::Closed(why) if why.contains("hash check")),
        "{err:?}"
    );
    assert_eq!(us.have_count(), 0, "corrupt data was accepted");
    // Banned: it cannot come back, under its address or its ID.
    us.conn.close(&us.shared);
    us.shared.unregister_peer(
        us.key,
        harness::peer_id(3),
        &shoal_proto::wire::Bitfield::new(0),
    );
    let again = us.shared.register_peer(
        addr(3),
        harness::peer_id(3),
        crate::torrent::PeerSource::Incoming,
        false,
    );
    assert!(matches!(again, Err(PeerError::Closed(why)) if why.contains("banned")));
    let other_port = std::net::SocketAddr::from(([10, 0, 0, 3], 7000));
    let again = us.shared.register_peer(
        other_port,
        harness::peer_id(3),
        crate::torrent::PeerSource::Incoming,
        false,
    );
    assert!(again.is_err(), "a banned peer ID came back on another port");
}

#[tokio::test]
async fn requests_storage_could_not_read_are_rejected_never_sent_wrong() {
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (mut us, data) = seeder(dir.path(), 4 * PIECE as usize, true, now);
    us.conn
        .handle_command(now, super::PeerCmd::Unchoke, &us.shared)
        .unwrap();
    us.output();
    let asked = [
        block(0, 0, 16384),
        block(0, 16384, 16384),
        block(1, 0, 16384),
    ];
    let msgs: Vec<Message> = asked.iter().map(|r| Message::Request(*r)).collect();
    us.feed(now, &msgs).unwrap();
    let read = us.conn.poll_disk_read().expect("no disk read asked for");
    assert_eq!(read.blocks, asked);
    // Storage stopped after the first block; the second came back short.
    let first = bytes::Bytes::copy_from_slice(&data[..16384]);
    let short = bytes::Bytes::copy_from_slice(&data[16384..20000]);
    us.conn
        .handle_disk_read(now, read, vec![(asked[0], first), (asked[1], short)]);
    let out = us.output();
    assert_eq!(
        out,
        vec![
            Msg::Piece {
                index: 0,
                begin: 0,
                data: data[..16384].to_vec()
            },
            Msg::Reject(asked[1]),
            Msg::Reject(asked[2]),
        ]
    );
}

mod extensions;

/// A peer that crashed and connects again (a uTP connection of a killed process gets no
/// reset, so its old half still stands here) replaces its old incoming connection; other
/// second connections with the same peer ID are still refused.
#[tokio::test]
async fn a_peer_reconnecting_from_its_address_replaces_its_old_connection() {
    use crate::peer::PeerCmd;
    use crate::torrent::PeerSource;
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (us, _) = seeder(dir.path(), 4 * PIECE as usize, true, now);
    let sh = &us.shared;
    let id = harness::peer_id(9);
    let first = std::net::SocketAddr::from(([10, 0, 0, 9], 5000));
    let (old, _, mut old_rx) = sh
        .register_peer(first, id, PeerSource::Incoming, false)
        .unwrap();
    // The same peer, restarted: a new connection from another port of the same host.
    let second = std::net::SocketAddr::from(([10, 0, 0, 9], 5001));
    let (new, _, _new_rx) = sh
        .register_peer(second, id, PeerSource::Incoming, false)
        .expect("the reconnecting peer was refused");
    assert!(
        matches!(old_rx.try_recv(), Ok(PeerCmd::Disconnect(why)) if why.contains("replaced")),
        "the old connection was not told to close"
    );
    // The old connection's task ends; the ID stays taken by the new one.
    sh.unregister_peer(old, id, &shoal_proto::wire::Bitfield::new(0));
    let dial = sh.register_peer(addr(9), id, PeerSource::Tracker, false);
    assert!(
        matches!(dial, Err(PeerError::Closed(why)) if why.contains("already connected")),
        "a dial to a connected peer was admitted"
    );
    let elsewhere = std::net::SocketAddr::from(([10, 0, 0, 10], 5000));
    let other_host = sh.register_peer(elsewhere, id, PeerSource::Incoming, false);
    assert!(
        other_host.is_err(),
        "the same ID from another host replaced the peer"
    );
    sh.unregister_peer(new, id, &shoal_proto::wire::Bitfield::new(0));
    assert!(sh
        .register_peer(addr(9), id, PeerSource::Tracker, false)
        .is_ok());
}
