//! Shutdown waits for every task the session started, including connections stuck
//! in the middle of their handshake.

use std::path::Path;
use std::time::Duration;

use shoal_proto::wire::Handshake;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::create::{create_torrent, CreateOptions};
use crate::torrent::Phase;

fn seed_torrent(dir: &Path) -> Metainfo {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(data.join("file.bin"), bytes).unwrap();
    let opts = CreateOptions {
        piece_length: Some(32 * 1024),
        ..CreateOptions::default()
    };
    create_torrent(&data, &opts, &|_, _| {}).unwrap()
}

/// Polls `cond` until it holds; panics after a generous bound (a hang, not a timing).
async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn shutdown_waits_for_half_open_and_connected_peers() {
    let dir = tempfile::tempdir().unwrap();
    let meta = seed_torrent(dir.path());
    let hash = meta.info_hash;
    let session = Session::start(SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        port_range: None,
        // TCP only: the task count below is the accept loop and two handshakes.
        utp: false,
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    let opts = TorrentOptions {
        save_dir: dir.path().to_path_buf(),
        seed_only: true,
        ..TorrentOptions::default()
    };
    let handle = session.add_torrent(meta, opts).unwrap();
    let mut phase = handle.phase();
    while *phase.borrow_and_update() != Phase::Seeding {
        phase.changed().await.unwrap();
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], session.listen_port()));

    // Two connections stuck before their handshake: one silent, one half-way.
    let silent = TcpStream::connect(addr).await.unwrap();
    let mut partial = TcpStream::connect(addr).await.unwrap();
    let hs = Handshake::new(hash, PeerId::with_random([9; 12])).encode();
    partial.write_all(&hs[..10]).await.unwrap();
    // One that completes the handshake and becomes a peer of the torrent.
    let mut peer = TcpStream::connect(addr).await.unwrap();
    peer.write_all(&hs).await.unwrap();

    let tasks = session.tasks().clone();
    until("the accept loop and two handshakes", || tasks.len() == 3).await;
    until("the peer to register", || handle.status().peers == 1).await;
    let torrent_tasks = handle.shared.tasks.clone();
    assert!(!torrent_tasks.is_empty());

    session.shutdown().await;

    assert!(tasks.is_closed(), "the session's tracker is closed");
    assert!(
        tasks.is_empty(),
        "{} session tasks still alive",
        tasks.len()
    );
    assert!(torrent_tasks.is_closed(), "the torrent's tracker is closed");
    assert!(
        torrent_tasks.is_empty(),
        "{} torrent tasks still alive",
        torrent_tasks.len()
    );
    // Every socket was closed by our side: each read ends (EOF or reset) at once.
    for mut s in [silent, partial, peer] {
        let mut buf = vec![0u8; 64 * 1024];
        let end = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(end.is_ok(), "a connection stayed open after shutdown");
    }
    // Nothing accepts any more.
    assert!(TcpStream::connect(addr).await.is_err());
}

fn torrent_in(dir: &Path, private: bool) -> Metainfo {
    let data = dir.join(if private { "private" } else { "public" });
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f.bin"), [u8::from(private); 1000]).unwrap();
    let opts = CreateOptions {
        private,
        ..CreateOptions::default()
    };
    create_torrent(&data, &opts, &|_, _| {}).unwrap()
}

#[tokio::test]
async fn lsd_sees_public_torrents_only_and_feeds_them_peers() {
    let dir = tempfile::tempdir().unwrap();
    let (public, private) = (torrent_in(dir.path(), false), torrent_in(dir.path(), true));
    let (pub_hash, priv_hash) = (public.info_hash, private.info_hash);
    let session = Session::start(SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        port_range: None,
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    let opts = || TorrentOptions {
        save_dir: dir.path().join("dl"),
        ..TorrentOptions::default()
    };
    session.add_torrent(public, opts()).unwrap();
    session.add_torrent(private, opts()).unwrap();
    let inner: &dyn LsdTorrents = &*session.inner;
    assert_eq!(inner.public_info_hashes(), [pub_hash]);
    // Nothing listens on port 1 of loopback: a dial, if it starts, fails at once.
    let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
    assert!(!inner.add_lsd_peer(&priv_hash, peer));
    assert!(!inner.add_lsd_peer(&InfoHash([3; 20]), peer));
    assert!(inner.add_lsd_peer(&pub_hash, peer));
    let shared = |h| session.inner.torrents.lock().unwrap()[h].0.clone();
    assert!(shared(&pub_hash).candidate_or_dialing(&peer));
    assert!(!shared(&priv_hash).candidate_or_dialing(&peer));
    session.shutdown().await;
}
