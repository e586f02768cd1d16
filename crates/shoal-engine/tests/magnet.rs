//! Magnet links: a session fetches the info dictionary from peers (BEP 9), refusing a
//! peer whose metadata does not hash to the info-hash, then downloads the torrent.
//! The lying peer is a small wire-protocol server written here with shoal-proto.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shoal_engine::create::{create_torrent, CreateOptions};
use shoal_engine::{PeerSource, Phase, Session, SessionConfig, TorrentOptions};
use shoal_proto::magnet::Magnet;
use shoal_proto::metainfo::Metainfo;
use shoal_proto::wire::{
    decode_message, ExtendedHandshake, Handshake, Message, MetadataMessage, EXTENDED_HANDSHAKE_ID,
    HANDSHAKE_LEN, MAX_MESSAGE_LEN,
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

fn data(len: usize) -> Vec<u8> {
    let mut x: u32 = 777;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

/// A seeding session for a torrent of `bytes` in `dir`.
async fn seeder(dir: &std::path::Path, bytes: &[u8]) -> (Session, Metainfo) {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data").join("file.bin"), bytes).unwrap();
    // Small pieces: the info dictionary spans several 16 KiB metadata pieces.
    let opts = CreateOptions {
        piece_length: Some(16 * 1024),
        ..CreateOptions::default()
    };
    let meta = create_torrent(&dir.join("data"), &opts, &|_, _| {}).unwrap();
    let session = Session::start(config()).await.unwrap();
    let t = session
        .add_torrent(
            meta.clone(),
            TorrentOptions {
                save_dir: dir.to_path_buf(),
                seed_only: true,
                ..TorrentOptions::default()
            },
        )
        .unwrap();
    let mut phase = t.phase();
    while *phase.borrow_and_update() != Phase::Seeding {
        phase.changed().await.unwrap();
    }
    (session, meta)
}

/// States the right metadata size, then answers every metadata request with junk.
async fn liar(listener: TcpListener, info_hash: InfoHash, size: u64, closed: Arc<AtomicBool>) {
    let Ok((mut s, _)) = listener.accept().await else {
        return;
    };
    let mut hs = [0u8; HANDSHAKE_LEN];
    if s.read_exact(&mut hs).await.is_err() {
        return;
    }
    let mut out = Handshake::new(info_hash, PeerId(*b"-XX0000-liarliarliar"))
        .encode()
        .to_vec();
    let ours = ExtendedHandshake {
        m: vec![("ut_metadata".into(), 5)],
        metadata_size: Some(size),
        ..ExtendedHandshake::default()
    }
    .encode();
    Message::Extended {
        id: EXTENDED_HANDSHAKE_ID,
        payload: &ours,
    }
    .encode(&mut out);
    if s.write_all(&out).await.is_err() {
        return;
    }
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut their_id = None;
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut replies = Vec::new();
        while let Ok(Some((msg, used))) = decode_message(&buf, MAX_MESSAGE_LEN) {
            match msg {
                Message::Extended { id: 0, payload } => {
                    their_id = ExtendedHandshake::decode(payload)
                        .ok()
                        .and_then(|h| h.extension_id("ut_metadata"));
                }
                Message::Extended { id: 5, payload } => {
                    if let (Ok(MetadataMessage::Request { piece }), Some(id)) =
                        (MetadataMessage::decode(payload), their_id)
                    {
                        let start = piece as u64 * 16384;
                        let len = (size - start).min(16384) as usize;
                        let junk = vec![0x5A; len];
                        let mut p = Vec::new();
                        MetadataMessage::Data {
                            piece,
                            total_size: size,
                            data: &junk,
                        }
                        .encode(&mut p);
                        Message::Extended { id, payload: &p }.encode(&mut replies);
                    }
                }
                _ => {}
            }
            buf.drain(..used);
        }
        if s.write_all(&replies).await.is_err() {
            break;
        }
    }
    closed.store(true, Ordering::Relaxed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_magnet_fetches_metadata_from_peers_then_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = data((17 << 20) + 999);
    let test = async {
        let (seed, meta) = seeder(&dir.path().join("seed"), &bytes).await;
        assert!(meta.info_bytes.len() > 16 * 1024, "several metadata pieces");
        let seed_addr: SocketAddr = format!("127.0.0.1:{}", seed.listen_port()).parse().unwrap();

        // The liar is listed first, so its junk is likely taken first.
        let lie = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let lie_addr = lie.local_addr().unwrap();
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(liar(
            lie,
            meta.info_hash,
            meta.info_bytes.len() as u64,
            closed.clone(),
        ));

        let mut magnet = Magnet::new(meta.info_hash);
        magnet.peers = vec![lie_addr.to_string(), seed_addr.to_string()];
        let leecher = Session::start(config()).await.unwrap();
        let mut fetch = leecher.fetch_metadata(&magnet);
        let fetched = fetch.wait().await.unwrap();
        assert_eq!(InfoHash::of(&fetched.info_bytes), meta.info_hash);
        assert_eq!(fetched.info_bytes, meta.info_bytes);
        assert!(fetched.peers.contains(&(seed_addr, PeerSource::Magnet)));

        let got = Metainfo::from_info_bytes(&fetched.info_bytes, vec![]).unwrap();
        let out = dir.path().join("leech");
        let t = leecher
            .add_torrent(
                got,
                TorrentOptions {
                    save_dir: out.clone(),
                    peers: vec![seed_addr],
                    peer_source: PeerSource::Magnet,
                    ..TorrentOptions::default()
                },
            )
            .unwrap();
        let mut phase = t.phase();
        let mut seen = Vec::new();
        while *phase.borrow_and_update() != Phase::Seeding {
            seen.extend(t.peers().into_iter().map(|p| p.source));
            phase.changed().await.unwrap();
        }
        assert!(seen.iter().all(|s| *s == PeerSource::Magnet), "{seen:?}");
        leecher.shutdown().await;
        seed.shutdown().await;
        (out, closed)
    };
    let (out, closed) = tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("magnet download timed out");
    assert_eq!(
        std::fs::read(out.join("data").join("file.bin")).unwrap(),
        bytes
    );
    // The liar's connection was dropped (or never needed).
    let _ = closed.load(Ordering::Relaxed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_peer_alone_never_completes_the_metadata_and_is_dropped() {
    let test = async {
        let info_hash = InfoHash([9; 20]);
        let lie = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let lie_addr = lie.local_addr().unwrap();
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(liar(lie, info_hash, 40_000, closed.clone()));
        let mut magnet = Magnet::new(info_hash);
        magnet.peers = vec![lie_addr.to_string()];
        let leecher = Session::start(config()).await.unwrap();
        let mut fetch = leecher.fetch_metadata(&magnet);
        let waited = tokio::time::timeout(Duration::from_secs(3), fetch.wait()).await;
        assert!(waited.is_err(), "junk metadata must never complete");
        while !closed.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        fetch.cancel();
        leecher.shutdown().await;
    };
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("the liar was not dropped in time");
}
