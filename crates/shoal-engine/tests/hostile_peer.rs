//! Peers that break the protocol on purpose, written here with shoal-proto: one that
//! pushes blocks nobody asked for, one that asks for data and never reads it, and
//! fast-extension (BEP 6) violations. Each must be dropped without harming the
//! download or the torrent's shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shoal_engine::create::{create_torrent, CreateOptions};
use shoal_engine::{Phase, Session, SessionConfig, TorrentHandle, TorrentOptions};
use shoal_proto::metainfo::Metainfo;
use shoal_proto::wire::{piece_header, BlockRef, Handshake, Message, HANDSHAKE_LEN};
use shoal_proto::PeerId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const PIECE: u64 = 32 * 1024;

fn config() -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        port_range: None,
        ..SessionConfig::default()
    }
}

/// A torrent over `len` pseudo-random bytes in `dir/data/file.bin`.
fn make_torrent(dir: &Path, len: usize) -> (Metainfo, PathBuf, Vec<u8>) {
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(seed_dir.join("data")).unwrap();
    let mut x: u32 = 777;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    std::fs::write(seed_dir.join("data").join("file.bin"), &bytes).unwrap();
    let opts = CreateOptions {
        piece_length: Some(PIECE),
        ..CreateOptions::default()
    };
    let meta = create_torrent(&seed_dir.join("data"), &opts, &|_, _| {}).unwrap();
    (meta, seed_dir, bytes)
}

async fn wait_phase(h: &TorrentHandle, want: Phase) {
    let mut phase = h.phase();
    loop {
        let p = phase.borrow_and_update().clone();
        if p == want {
            return;
        }
        if let Phase::Error(e) = p {
            panic!("torrent failed: {e}");
        }
        phase.changed().await.unwrap();
    }
}

async fn add(session: &Session, meta: &Metainfo, dir: &Path, seed: bool) -> TorrentHandle {
    let h = session
        .add_torrent(
            meta.clone(),
            TorrentOptions {
                save_dir: dir.to_path_buf(),
                seed_only: seed,
                ..TorrentOptions::default()
            },
        )
        .unwrap();
    wait_phase(
        &h,
        if seed {
            Phase::Seeding
        } else {
            Phase::Downloading
        },
    )
    .await;
    h
}

/// Connects to `port` and exchanges handshakes; `fast` sets the BEP 6 bit.
async fn connect(port: u16, meta: &Metainfo, fast: bool, id: &[u8; 20]) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    handshake(&mut s, meta, fast, id).await;
    s
}

async fn handshake(s: &mut TcpStream, meta: &Metainfo, fast: bool, id: &[u8; 20]) {
    let mut hs = Handshake::new(meta.info_hash, PeerId(*id));
    if !fast {
        hs.reserved = [0; 8];
    }
    s.write_all(&hs.encode()).await.unwrap();
    let mut theirs = [0u8; HANDSHAKE_LEN];
    s.read_exact(&mut theirs).await.unwrap();
}

/// Reads and discards until the other side closes; false if it is still open after
/// `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    let read_to_end = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_to_end).await.is_ok()
}

fn encode(msgs: &[Message<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        m.encode(&mut out);
    }
    out
}

/// A peer that has nothing, is never asked for anything, and pushes a garbage block
/// into every piece: the blocks must not start piece buffers or mix into the pieces an
/// honest seeder sends (which would fail their hash and strike the seeder), and the
/// peer is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrequested_blocks_are_discarded_and_the_pusher_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, seed_dir, bytes) = make_torrent(dir.path(), 3 << 20);
    let leech_dir = dir.path().join("leech");
    let test = async {
        let seeder = Session::start(config()).await.unwrap();
        add(&seeder, &meta, &seed_dir, true).await;
        let leecher = Session::start(config()).await.unwrap();
        let leech = add(&leecher, &meta, &leech_dir, false).await;

        let mut evil = connect(leecher.listen_port(), &meta, false, b"-XX0000-pushpushpush").await;
        let garbage = vec![0xABu8; 16 * 1024];
        let mut out = Vec::new();
        for piece in 0..meta.info.num_pieces() {
            out.extend_from_slice(&piece_header(piece, 0, garbage.len() as u32));
            out.extend_from_slice(&garbage);
        }
        // The leecher may hang up part way: that is the point.
        let _ = evil.write_all(&out).await;
        let dropped = closed_within(&mut evil, Duration::from_secs(10)).await;
        let after_push = leech.status();

        let honest: SocketAddr = format!("127.0.0.1:{}", seeder.listen_port())
            .parse()
            .unwrap();
        leech.add_peers(&[honest]);
        wait_phase(&leech, Phase::Seeding).await;
        let status = leech.status();
        leecher.shutdown().await;
        seeder.shutdown().await;
        (dropped, after_push, status)
    };
    let (dropped, after_push, status) = tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test timed out");
    assert!(
        dropped,
        "the leecher kept a peer that pushes unrequested blocks"
    );
    assert_eq!(
        after_push.downloaded, 0,
        "unrequested blocks were counted as progress"
    );
    assert_eq!(status.hash_failures, 0, "pushed blocks poisoned pieces");
    assert_eq!(status.banned_peers, 0, "an honest peer was banned");
    let got = std::fs::read(leech_dir.join("data").join("file.bin")).unwrap();
    assert!(got == bytes, "downloaded file differs from the original");
}

/// A leecher that requests far more than its receive window and never reads: the
/// seeder's peer task must still see the torrent stop, so the peer is gone (and its
/// task ended) shortly after `remove_torrent`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_that_never_reads_does_not_outlive_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, seed_dir, _) = make_torrent(dir.path(), 4 << 20);
    let test = async {
        let seeder = Session::start(config()).await.unwrap();
        let seed = add(&seeder, &meta, &seed_dir, true).await;

        let sock = TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", seeder.listen_port())
            .parse()
            .unwrap();
        let mut s = sock.connect(addr).await.unwrap();
        handshake(&mut s, &meta, false, b"-XX0000-neverreadsss").await;
        let (_rd, mut wr) = s.into_split();
        let blocks = meta.info.total_length / (16 * 1024);
        let requests = tokio::spawn(async move {
            let mut out = encode(&[Message::Interested]);
            loop {
                for i in 0..blocks {
                    Message::Request(BlockRef {
                        index: (i * 16 * 1024 / PIECE) as u32,
                        begin: ((i * 16 * 1024) % PIECE) as u32,
                        length: 16 * 1024,
                    })
                    .encode(&mut out);
                }
                if wr.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        // Let our receive window, the seeder's socket buffer and its queues fill.
        let mut served = 0;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            served = seed.status().uploaded;
            if served > 0 && seed.peers().len() == 1 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stopped = tokio::time::timeout(
            Duration::from_secs(30),
            seeder.remove_torrent(&meta.info_hash),
        )
        .await
        .is_ok();
        let mut gone = false;
        for _ in 0..100 {
            if seed.peers().is_empty() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        requests.abort();
        seeder.shutdown().await;
        (served, stopped, gone)
    };
    let (served, stopped, gone) = tokio::time::timeout(Duration::from_secs(90), test)
        .await
        .expect("test timed out");
    assert!(served > 0, "the seeder never served the reader-less peer");
    assert!(stopped, "remove_torrent did not finish");
    assert!(gone, "the peer task survived the torrent's stop");
}

/// BEP 6 violations each close the connection: a reject for a request we never
/// sent, HaveAll after other messages, and bitfield after bitfield.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_extension_violations_close_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, _, _) = make_torrent(dir.path(), 1 << 20);
    let leech_dir = dir.path().join("leech");
    let reject = BlockRef {
        index: 0,
        begin: 0,
        length: 16 * 1024,
    };
    let nothing = vec![0u8; meta.info.num_pieces().div_ceil(8) as usize];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "reject for a request never sent",
            encode(&[Message::HaveNone, Message::RejectRequest(reject)]),
        ),
        (
            "have all after have",
            encode(&[Message::HaveNone, Message::Have(1), Message::HaveAll]),
        ),
        (
            "bitfield after bitfield",
            encode(&[
                Message::Bitfield(&nothing),
                Message::Bitfield(&nothing),
                Message::Bitfield(&nothing),
                Message::Bitfield(&nothing),
            ]),
        ),
    ];
    let test = async {
        let leecher = Session::start(config()).await.unwrap();
        add(&leecher, &meta, &leech_dir, false).await;
        let mut results = Vec::new();
        for (i, (what, bytes)) in cases.iter().enumerate() {
            let mut id = *b"-XX0000-fastfast0000";
            id[19] = b'0' + i as u8;
            let mut s = connect(leecher.listen_port(), &meta, true, &id).await;
            s.write_all(bytes).await.unwrap();
            results.push((*what, closed_within(&mut s, Duration::from_secs(5)).await));
        }
        leecher.shutdown().await;
        results
    };
    let results = tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test timed out");
    for (what, closed) in results {
        assert!(closed, "{what}: connection left open");
    }
}
