//! A leecher connected to an honest seeder and to a peer that answers every request
//! with garbage still completes, fails the garbage pieces, and drops and bans the bad
//! peer. The bad peer is a small wire-protocol server written here with shoal-proto.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shoal_engine::create::{create_torrent, CreateOptions};
use shoal_engine::{Phase, Session, SessionConfig, TorrentOptions};
use shoal_proto::wire::{
    decode_message, piece_header, Handshake, Message, HANDSHAKE_LEN, MAX_MESSAGE_LEN,
};
use shoal_proto::{InfoHash, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn config() -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        port_range: None,
        ..SessionConfig::default()
    }
}

/// Serves HaveAll + Unchoke and answers every request with bytes that fail the hash.
/// Counts the blocks served and notes when the leecher hangs up.
async fn evil_peer(
    listener: TcpListener,
    info_hash: InfoHash,
    served: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
) {
    let Ok((mut s, _)) = listener.accept().await else {
        return;
    };
    let mut hs = [0u8; HANDSHAKE_LEN];
    if s.read_exact(&mut hs).await.is_err() {
        return;
    }
    let ours = Handshake::new(info_hash, PeerId(*b"-XX0000-evilevilevil"));
    let mut out = ours.encode().to_vec();
    Message::HaveAll.encode(&mut out);
    Message::Unchoke.encode(&mut out);
    if s.write_all(&out).await.is_err() {
        return;
    }
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut replies = Vec::new();
        loop {
            match decode_message(&buf, MAX_MESSAGE_LEN) {
                Ok(Some((msg, used))) => {
                    if let Message::Request(r) = msg {
                        replies.extend_from_slice(&piece_header(r.index, r.begin, r.length));
                        replies.extend(std::iter::repeat(0xAB).take(r.length as usize));
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if s.write_all(&replies).await.is_err() {
            break;
        }
    }
    closed.store(true, Ordering::Relaxed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_peer_is_dropped_and_download_completes() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let leech_dir = dir.path().join("leech");
    std::fs::create_dir_all(seed_dir.join("data")).unwrap();
    let mut x: u32 = 12345;
    let bytes: Vec<u8> = (0..(2 << 20) + 4321)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    std::fs::write(seed_dir.join("data").join("file.bin"), &bytes).unwrap();
    let opts = CreateOptions {
        piece_length: Some(32 * 1024),
        ..CreateOptions::default()
    };
    let meta = create_torrent(&seed_dir.join("data"), &opts, &|_, _| {}).unwrap();
    let info_hash = meta.info_hash;

    let test = async {
        let seeder = Session::start(config()).await.unwrap();
        let seed = seeder
            .add_torrent(
                meta.clone(),
                TorrentOptions {
                    save_dir: seed_dir.clone(),
                    seed_only: true,
                    ..TorrentOptions::default()
                },
            )
            .unwrap();
        let mut phase = seed.phase();
        while *phase.borrow_and_update() != Phase::Seeding {
            phase.changed().await.unwrap();
        }

        let evil = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let evil_addr = evil.local_addr().unwrap();
        let served = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(evil_peer(evil, info_hash, served.clone(), closed.clone()));

        let leecher = Session::start(config()).await.unwrap();
        let honest: SocketAddr = format!("127.0.0.1:{}", seeder.listen_port())
            .parse()
            .unwrap();
        // The bad peer is dialled first so it gets requests before the honest one.
        let leech = leecher
            .add_torrent(
                meta.clone(),
                TorrentOptions {
                    save_dir: leech_dir.clone(),
                    peers: vec![evil_addr],
                    ..TorrentOptions::default()
                },
            )
            .unwrap();
        // The honest seeder joins once the bad peer has been asked for data.
        while served.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        leech.add_peers(&[honest]);
        let mut phase = leech.phase();
        loop {
            let p = phase.borrow_and_update().clone();
            match p {
                Phase::Seeding => break,
                Phase::Error(e) => panic!("download failed: {e}"),
                _ => phase.changed().await.unwrap(),
            }
        }
        let status = leech.status();
        // Give the bad peer's connection a moment to be torn down.
        for _ in 0..50 {
            if closed.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        leecher.shutdown().await;
        seeder.shutdown().await;
        (
            status,
            served.load(Ordering::Relaxed),
            closed.load(Ordering::Relaxed),
        )
    };
    let (status, served, closed) = tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test timed out");
    assert!(served > 0, "the bad peer was never asked for data");
    assert!(status.hash_failures >= 1, "no piece failed: {status:?}");
    assert_eq!(status.banned_peers, 1, "bad peer not banned: {status:?}");
    assert!(closed, "the leecher kept the bad peer's connection open");
    let got = std::fs::read(leech_dir.join("data").join("file.bin")).unwrap();
    assert!(got == bytes, "downloaded file differs from the original");
}
