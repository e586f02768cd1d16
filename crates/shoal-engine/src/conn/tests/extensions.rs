//! BEP 9 metadata serving and BEP 11 peer exchange on one connection, against a
//! scripted peer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_proto::wire::{
    ExtendedHandshake, Message, MetadataMessage, PexMessage, EXTENDED_HANDSHAKE_ID,
};

use super::super::extension::{PEX_FIRST, PEX_INTERVAL, PEX_MIN_GAP};
use super::harness::{addr, peer_id, torrent, Msg, Side, SideOpts, PIECE};
use super::protocol_error;
use crate::create::{create_torrent, CreateOptions};
use crate::torrent::PeerSource;

/// Our id for the peer's `ut_metadata` and `ut_pex` messages to us.
const THEIR_METADATA: u8 = 7;
const THEIR_PEX: u8 = 9;

fn their_handshake() -> Vec<u8> {
    ExtendedHandshake {
        m: vec![
            ("ut_metadata".into(), THEIR_METADATA),
            ("ut_pex".into(), THEIR_PEX),
        ],
        ..ExtendedHandshake::default()
    }
    .encode()
}

fn seeder_side(meta: Arc<shoal_proto::metainfo::Metainfo>, data: &[u8], now: Instant) -> Side {
    let mut side = Side::new(
        SideOpts {
            meta,
            seed: Some(data),
            peer: (addr(2), 2),
            fast: true,
            extended: true,
        },
        now,
    );
    let hs = their_handshake();
    side.feed(
        now,
        &[Message::Extended {
            id: EXTENDED_HANDSHAKE_ID,
            payload: &hs,
        }],
    )
    .unwrap();
    side
}

/// Our extension handshake among `msgs`, decoded.
fn our_handshake(msgs: &[Msg]) -> ExtendedHandshake {
    msgs.iter()
        .find_map(|m| match m {
            Msg::Extended(EXTENDED_HANDSHAKE_ID, p) => Some(ExtendedHandshake::decode(p).unwrap()),
            _ => None,
        })
        .expect("an extension handshake")
}

fn extended(msgs: &[Msg], id: u8) -> Vec<Vec<u8>> {
    msgs.iter()
        .filter_map(|m| match m {
            Msg::Extended(i, p) if *i == id => Some(p.clone()),
            _ => None,
        })
        .collect()
}

fn request_metadata(side: &mut Side, now: Instant, piece: u32) -> Vec<u8> {
    let mut req = Vec::new();
    MetadataMessage::Request { piece }.encode(&mut req);
    let our_id = our_handshake_id(side, "ut_metadata");
    side.feed(
        now,
        &[Message::Extended {
            id: our_id,
            payload: &req,
        }],
    )
    .unwrap();
    let out = extended(&side.output(), THEIR_METADATA);
    assert_eq!(out.len(), 1, "one answer");
    out.into_iter().next().unwrap()
}

fn our_handshake_id(side: &Side, name: &str) -> u8 {
    // Ids are fixed: ut_metadata 3, ut_pex 1 (checked in the handshake test).
    let _ = side;
    match name {
        "ut_metadata" => 3,
        _ => 1,
    }
}

#[tokio::test]
async fn metadata_is_served_by_piece_and_bad_pieces_are_rejected() {
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (data, meta) = torrent(dir.path(), 4 * PIECE as usize);
    let mut side = seeder_side(meta.clone(), &data, now);
    let hs = our_handshake(&side.output());
    assert_eq!(hs.extension_id("ut_metadata"), Some(3));
    assert_eq!(hs.extension_id("ut_pex"), Some(1));
    assert_eq!(hs.metadata_size, Some(meta.info_bytes.len() as u64));

    let answer = request_metadata(&mut side, now, 0);
    match MetadataMessage::decode(&answer).unwrap() {
        MetadataMessage::Data {
            piece: 0,
            total_size,
            data,
        } => {
            assert_eq!(total_size, meta.info_bytes.len() as u64);
            assert_eq!(data, &meta.info_bytes[..]);
        }
        other => panic!("expected data, got {other:?}"),
    }
    let answer = request_metadata(&mut side, now, 1);
    assert_eq!(
        MetadataMessage::decode(&answer).unwrap(),
        MetadataMessage::Reject { piece: 1 }
    );
    // Garbage under the metadata id ends the connection with a clear reason.
    let why = protocol_error(side.feed(
        now,
        &[Message::Extended {
            id: 3,
            payload: b"d8:msg_typei5e5:piecei0ee",
        }],
    ));
    assert!(why.contains("bad metadata message"), "{why}");
}

#[tokio::test]
async fn private_torrents_offer_neither_metadata_nor_pex() {
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = vec![5u8; 3 * PIECE as usize];
    let path = dir.path().join("private.bin");
    std::fs::write(&path, &data).unwrap();
    let opts = CreateOptions {
        piece_length: Some(PIECE),
        private: true,
        ..CreateOptions::default()
    };
    let meta = Arc::new(create_torrent(&path, &opts, &|_, _| {}).unwrap());
    let mut side = seeder_side(meta, &data, now);
    let hs = our_handshake(&side.output());
    assert!(hs.m.is_empty(), "{:?}", hs.m);
    assert_eq!(hs.metadata_size, None);
    // A request under the id a public torrent would use is ignored, not answered.
    let mut req = Vec::new();
    MetadataMessage::Request { piece: 0 }.encode(&mut req);
    side.feed(
        now,
        &[Message::Extended {
            id: 3,
            payload: &req,
        }],
    )
    .unwrap();
    assert!(extended(&side.output(), THEIR_METADATA).is_empty());
    // Nor do we ever send PEX, and PEX sent to us is ignored.
    side.shared
        .register_peer(addr(40), peer_id(40), PeerSource::Tracker, false)
        .unwrap();
    side.timeout(now + PEX_FIRST + Duration::from_secs(1))
        .unwrap();
    assert!(extended(&side.output(), THEIR_PEX).is_empty());
}

#[tokio::test]
async fn pex_sends_added_then_dropped_peers_once_a_minute() {
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (data, meta) = torrent(dir.path(), 4 * PIECE as usize);
    let mut side = seeder_side(meta, &data, now);
    side.output();
    let (other, ..) = side
        .shared
        .register_peer(addr(40), peer_id(40), PeerSource::Tracker, false)
        .unwrap();
    side.timeout(now + Duration::from_millis(500)).unwrap();
    assert!(
        extended(&side.output(), THEIR_PEX).is_empty(),
        "not before PEX_FIRST"
    );
    let t1 = now + PEX_FIRST + Duration::from_millis(10);
    side.timeout(t1).unwrap();
    let sent = extended(&side.output(), THEIR_PEX);
    assert_eq!(sent.len(), 1);
    let msg = PexMessage::decode(&sent[0]).unwrap();
    let added: Vec<_> = msg.added.iter().map(|p| p.addr).collect();
    assert_eq!(
        added,
        vec![addr(40)],
        "the other peer, not the receiver itself"
    );

    side.shared
        .unregister_peer(other, peer_id(40), &shoal_proto::wire::Bitfield::new(0));
    side.timeout(t1 + Duration::from_secs(30)).unwrap();
    assert!(
        extended(&side.output(), THEIR_PEX).is_empty(),
        "at most one a minute"
    );
    side.timeout(t1 + PEX_INTERVAL + Duration::from_millis(10))
        .unwrap();
    let msg = PexMessage::decode(&extended(&side.output(), THEIR_PEX)[0]).unwrap();
    assert!(msg.added.is_empty());
    assert_eq!(msg.dropped, vec![addr(40)]);
}

#[tokio::test]
async fn pex_received_is_dialled_and_floods_drop_the_peer() {
    let now = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (data, meta) = torrent(dir.path(), 4 * PIECE as usize);
    let mut side = seeder_side(meta.clone(), &data, now);
    // Loopback, nothing listening: the dial this starts is refused at once.
    let learnt = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let pex = PexMessage {
        added: vec![shoal_proto::wire::PexPeer {
            addr: learnt,
            flags: 0,
        }],
        dropped: vec![],
    }
    .encode();
    side.feed(
        now,
        &[Message::Extended {
            id: 1,
            payload: &pex,
        }],
    )
    .unwrap();
    assert!(
        side.shared.candidate_or_dialing(&learnt),
        "learnt peer queued"
    );
    let why = protocol_error(side.feed(
        now + PEX_MIN_GAP / 2,
        &[Message::Extended {
            id: 1,
            payload: &pex,
        }],
    ));
    assert!(why.contains("peer exchange flood"), "{why}");

    // 51 peers in one message is a flood too.
    let mut side = seeder_side(meta, &data, now);
    let many = PexMessage {
        added: (0..51)
            .map(|i| shoal_proto::wire::PexPeer {
                addr: std::net::SocketAddr::from(([10, 0, 0, i as u8], 6881)),
                flags: 0,
            })
            .collect(),
        dropped: vec![],
    }
    .encode();
    let why = protocol_error(side.feed(
        now,
        &[Message::Extended {
            id: 1,
            payload: &many,
        }],
    ));
    assert!(why.contains("bad peer exchange message"), "{why}");
}
