//! The engine over storages chosen by the test (`TorrentOptions::storage`): a whole
//! download between two sessions in memory, a full disk while downloading, failed
//! reads while serving a peer (written here with shoal-proto, so every byte it gets
//! is checked), and a data file cut short under a seeding torrent.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha1::{Digest, Sha1};
use shoal_engine::storage::{
    Fault, FaultKind, FaultOp, FaultyStorage, MemoryStorage, Storage, StorageFactory,
};
use shoal_engine::{Phase, Session, SessionConfig, TorrentHandle, TorrentOptions};
use shoal_proto::metainfo::{InfoBuilder, Metainfo};
use shoal_proto::wire::{decode_message, BlockRef, Handshake, Message, HANDSHAKE_LEN};
use shoal_proto::PeerId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config() -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        port_range: None,
        ..SessionConfig::default()
    }
}

/// A two-file torrent (`t/a.bin`, `t/b.bin`) over `len` pseudo-random bytes, built in
/// memory: no file holds its data.
fn torrent(len: u64, piece_length: u64) -> (Metainfo, Vec<u8>) {
    let mut x: u32 = 4242;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let pieces: Vec<[u8; 20]> = bytes
        .chunks(piece_length as usize)
        .map(|c| Sha1::digest(c).into())
        .collect();
    let a = len * 2 / 3;
    let info = InfoBuilder {
        name: "t".into(),
        piece_length,
        files: vec![(vec!["a.bin".into()], a), (vec!["b.bin".into()], len - a)],
        single_file: false,
        private: false,
    }
    .encode(&pieces);
    (Metainfo::from_info_bytes(&info, Vec::new()).unwrap(), bytes)
}

/// Adds `meta` to `session` over `storage`; `save_dir` does not exist.
fn add(
    session: &Session,
    meta: &Metainfo,
    storage: Arc<dyn Storage>,
    seed: bool,
    save_dir: &Path,
) -> TorrentHandle {
    session
        .add_torrent(
            meta.clone(),
            TorrentOptions {
                save_dir: save_dir.into(),
                seed_only: seed,
                storage: StorageFactory::shared(storage),
                ..TorrentOptions::default()
            },
        )
        .unwrap()
}

/// Waits for a phase `done` accepts; `Phase::Error` is returned as `Err`.
async fn phase_until(h: &TorrentHandle, done: impl Fn(&Phase) -> bool) -> Result<(), String> {
    let mut phase = h.phase();
    loop {
        let p = phase.borrow_and_update().clone();
        if done(&p) {
            return Ok(());
        }
        if let Phase::Error(e) = p {
            return Err(e);
        }
        phase.changed().await.unwrap();
    }
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_storage_downloads_between_two_sessions_without_files() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("nowhere");
    let (meta, bytes) = torrent(700_000, 32 * 1024);
    let seeded = Arc::new(MemoryStorage::with_data(&meta.info, &bytes).unwrap());
    let fetched = Arc::new(MemoryStorage::new(&meta.info).unwrap());
    let (seeder, leecher) = within(async {
        let seeder = Session::start(config()).await.unwrap();
        let seed = add(&seeder, &meta, seeded.clone(), true, &nowhere);
        phase_until(&seed, |p| *p == Phase::Seeding).await.unwrap();
        let leecher = Session::start(config()).await.unwrap();
        let leech = add(&leecher, &meta, fetched.clone(), false, &nowhere);
        leech.add_peers(&[format!("127.0.0.1:{}", seeder.listen_port())
            .parse()
            .unwrap()]);
        phase_until(&leech, |p| *p == Phase::Seeding).await.unwrap();
        assert_eq!(leech.status().pieces_have, meta.info.num_pieces());
        (seeder, leecher)
    })
    .await;
    leecher.shutdown().await;
    seeder.shutdown().await;
    assert!(fetched.data() == Some(bytes), "downloaded data differs");
    assert!(!nowhere.exists(), "a storage in memory touched the disk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_stops_the_download_and_keeps_verified_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("nowhere");
    let (meta, bytes) = torrent(600_000, 16 * 1024);
    let seeded = Arc::new(MemoryStorage::with_data(&meta.info, &bytes).unwrap());
    let disk = Arc::new(MemoryStorage::new(&meta.info).unwrap());
    let faulty = Arc::new(FaultyStorage::new(disk.clone(), &nowhere, &meta.info).unwrap());
    // Five pieces are stored, then the disk is full for good.
    faulty.add(Fault::new(FaultOp::Write, FaultKind::NoSpace).after(5));
    let (seeder, leecher, leech) = within(async {
        let seeder = Session::start(config()).await.unwrap();
        let seed = add(&seeder, &meta, seeded.clone(), true, &nowhere);
        phase_until(&seed, |p| *p == Phase::Seeding).await.unwrap();
        let leecher = Session::start(config()).await.unwrap();
        let leech = add(&leecher, &meta, faulty.clone(), false, &nowhere);
        leech.add_peers(&[format!("127.0.0.1:{}", seeder.listen_port())
            .parse()
            .unwrap()]);
        let err = phase_until(&leech, |p| *p == Phase::Seeding)
            .await
            .expect_err("the download finished on a full disk");
        assert!(err.contains("disk full"), "unclear error: {err}");
        assert!(err.contains("nowhere/t/"), "error names no file: {err}");
        (seeder, leecher, leech)
    })
    .await;
    // Pieces whose writes went through before the failure may still be finishing
    // when the error shows; shutdown waits for them.
    leecher.shutdown().await;
    seeder.shutdown().await;
    let have = leech.have_pieces();
    assert_eq!(
        have.count_ones(),
        5,
        "verified pieces: {}",
        have.count_ones()
    );
    assert!(faulty.injected() >= 1);
    // Exactly the pieces reported verified are on the disk, intact.
    let on_disk = disk.check_all(2, &|_| {}).unwrap();
    for (piece, ok) in on_disk.iter().enumerate() {
        assert_eq!(*ok, have.get(piece as u32), "piece {piece}");
    }
}

/// A leecher written with shoal-proto that records exactly what the seeder sends.
struct RawPeer {
    s: TcpStream,
    buf: Vec<u8>,
}

/// What the seeder answered to a request.
#[derive(Debug, PartialEq)]
enum Reply {
    Block {
        index: u32,
        begin: u32,
        data: Vec<u8>,
    },
    Reject(BlockRef),
}

impl RawPeer {
    /// Connects (with the fast extension), says it is interested, waits for unchoke.
    async fn connect(port: u16, meta: &Metainfo) -> RawPeer {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let hs = Handshake::new(meta.info_hash, PeerId(*b"-XX0000-rawrawrawraw"));
        let mut out = hs.encode().to_vec();
        Message::Interested.encode(&mut out);
        s.write_all(&out).await.unwrap();
        let mut theirs = [0u8; HANDSHAKE_LEN];
        s.read_exact(&mut theirs).await.unwrap();
        let mut peer = RawPeer { s, buf: Vec::new() };
        while !matches!(peer.next().await, Some(Msg::Unchoke)) {}
        peer
    }

    /// The next message that matters here, `None` when the connection ends.
    async fn next(&mut self) -> Option<Msg> {
        loop {
            if let Some((msg, used)) = decode_message(&self.buf, 1 << 20).unwrap() {
                let m = match msg {
                    Message::Unchoke => Msg::Unchoke,
                    Message::Piece { index, begin, data } => Msg::Reply(Reply::Block {
                        index,
                        begin,
                        data: data.to_vec(),
                    }),
                    Message::RejectRequest(r) => Msg::Reply(Reply::Reject(r)),
                    _ => Msg::Other,
                };
                self.buf.drain(..used);
                return Some(m);
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.s.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Asks for `reqs` and collects replies until each has one or `quiet` passes
    /// without any (or the connection ends).
    async fn ask(&mut self, reqs: &[BlockRef], quiet: Duration) -> Vec<Reply> {
        let mut out = Vec::new();
        for r in reqs {
            Message::Request(*r).encode(&mut out);
        }
        let _ = self.s.write_all(&out).await;
        let mut replies = Vec::new();
        while replies.len() < reqs.len() {
            match tokio::time::timeout(quiet, self.next()).await {
                Ok(Some(Msg::Reply(r))) => replies.push(r),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        replies
    }
}

enum Msg {
    Unchoke,
    Reply(Reply),
    Other,
}

/// The requests for every 16 KiB block of `piece`.
fn blocks_of(meta: &Metainfo, piece: u32) -> Vec<BlockRef> {
    let size = meta.info.piece_size(piece) as u32;
    (0..size)
        .step_by(16 * 1024)
        .map(|begin| BlockRef {
            index: piece,
            begin,
            length: (size - begin).min(16 * 1024),
        })
        .collect()
}

/// Every block in `replies` holds the torrent's true bytes; returns how many blocks.
fn count_true_blocks(replies: &[Reply], meta: &Metainfo, bytes: &[u8]) -> usize {
    let mut n = 0;
    for r in replies {
        if let Reply::Block { index, begin, data } = r {
            let at = (u64::from(*index) * meta.info.piece_length + u64::from(*begin)) as usize;
            assert!(
                bytes.get(at..at + data.len()) == Some(&data[..]),
                "wrong bytes sent for piece {index} at {begin}"
            );
            n += 1;
        }
    }
    n
}

/// A session seeding `meta` from memory through a [`FaultyStorage`] (no faults yet),
/// and a raw peer connected to it.
async fn faulty_seeder(
    meta: &Metainfo,
    bytes: &[u8],
    nowhere: &Path,
) -> (Session, TorrentHandle, Arc<FaultyStorage>, RawPeer) {
    let data = Arc::new(MemoryStorage::with_data(&meta.info, bytes).unwrap());
    let faulty = Arc::new(FaultyStorage::new(data, nowhere, &meta.info).unwrap());
    let seeder = Session::start(config()).await.unwrap();
    let seed = add(&seeder, meta, faulty.clone(), true, nowhere);
    phase_until(&seed, |p| *p == Phase::Seeding).await.unwrap();
    let peer = RawPeer::connect(seeder.listen_port(), meta).await;
    (seeder, seed, faulty, peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_errors_when_serving_send_no_bad_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("nowhere");
    let (meta, bytes) = torrent(300_000, 32 * 1024);
    let quiet = Duration::from_millis(1500);
    within(async {
        let (seeder, seed, faulty, mut peer) = faulty_seeder(&meta, &bytes, &nowhere).await;
        let replies = peer.ask(&blocks_of(&meta, 0), quiet).await;
        assert_eq!(count_true_blocks(&replies, &meta, &bytes), 2, "{replies:?}");

        // EIO in the second block of piece 1 (a.bin offsets 32768..65536).
        faulty.add(
            Fault::new(FaultOp::Read, FaultKind::Io)
                .in_file(0)
                .at(50_000..50_001),
        );
        let replies = peer.ask(&blocks_of(&meta, 1), quiet).await;
        count_true_blocks(&replies, &meta, &bytes);
        assert!(faulty.injected() >= 1, "the fault never fired");
        // An I/O error stops the torrent with the reason (a recheck on resume), and
        // nothing more is served.
        let err = phase_until(&seed, |_| false).await.unwrap_err();
        assert!(
            err.contains("cannot read piece 1") && err.contains("recheck"),
            "{err}"
        );
        let replies = peer.ask(&blocks_of(&meta, 2), quiet).await;
        assert_eq!(count_true_blocks(&replies, &meta, &bytes), 0, "{replies:?}");
        seeder.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_read_when_serving_stops_the_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("nowhere");
    let (meta, bytes) = torrent(300_000, 32 * 1024);
    let quiet = Duration::from_millis(1500);
    within(async {
        let (seeder, seed, faulty, mut peer) = faulty_seeder(&meta, &bytes, &nowhere).await;
        // A short read (the data ends early) in piece 3: nothing wrong is sent, and the
        // torrent stops, since data it announced is gone.
        faulty.add(
            Fault::new(FaultOp::Read, FaultKind::ShortRead)
                .in_file(0)
                .at(100_000..u64::MAX),
        );
        let replies = peer.ask(&blocks_of(&meta, 3), quiet).await;
        count_true_blocks(&replies, &meta, &bytes);
        assert!(faulty.injected() >= 1, "the short read never happened");
        let err = phase_until(&seed, |_| false).await.unwrap_err();
        assert!(err.contains("ended early"), "{err}");
        seeder.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_truncated_under_a_seeding_torrent_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, bytes) = torrent(300_000, 32 * 1024);
    // Real files, opened by the default storage.
    let root = dir.path().join("t");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.bin"), &bytes[..200_000]).unwrap();
    std::fs::write(root.join("b.bin"), &bytes[200_000..]).unwrap();
    let quiet = Duration::from_millis(1500);
    within(async {
        let seeder = Session::start(config()).await.unwrap();
        let seed = seeder
            .add_torrent(
                meta.clone(),
                TorrentOptions {
                    save_dir: dir.path().into(),
                    seed_only: true,
                    ..TorrentOptions::default()
                },
            )
            .unwrap();
        phase_until(&seed, |p| *p == Phase::Seeding).await.unwrap();
        let mut peer = RawPeer::connect(seeder.listen_port(), &meta).await;
        let last = meta.info.num_pieces() - 1;
        let replies = peer.ask(&blocks_of(&meta, 0), quiet).await;
        assert_eq!(count_true_blocks(&replies, &meta, &bytes), 2, "{replies:?}");

        // b.bin loses its tail behind the torrent's back.
        std::fs::File::options()
            .write(true)
            .open(root.join("b.bin"))
            .unwrap()
            .set_len(1000)
            .unwrap();
        let replies = peer.ask(&blocks_of(&meta, last), quiet).await;
        count_true_blocks(&replies, &meta, &bytes);
        let err = phase_until(&seed, |_| false).await.unwrap_err();
        assert!(
            err.contains("b.bin") && err.contains("shortened outside Shoal"),
            "{err}"
        );
        seeder.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_deleted_under_a_seeding_torrent_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, bytes) = torrent(300_000, 32 * 1024);
    let root = dir.path().join("t");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.bin"), &bytes[..200_000]).unwrap();
    std::fs::write(root.join("b.bin"), &bytes[200_000..]).unwrap();
    let quiet = Duration::from_millis(1500);
    within(async {
        let seeder = Session::start(config()).await.unwrap();
        let seed = seeder
            .add_torrent(
                meta.clone(),
                TorrentOptions {
                    save_dir: dir.path().into(),
                    seed_only: true,
                    ..TorrentOptions::default()
                },
            )
            .unwrap();
        phase_until(&seed, |p| *p == Phase::Seeding).await.unwrap();
        let mut peer = RawPeer::connect(seeder.listen_port(), &meta).await;
        let last = meta.info.num_pieces() - 1;
        let replies = peer.ask(&blocks_of(&meta, last), quiet).await;
        assert_eq!(count_true_blocks(&replies, &meta, &bytes), 1, "{replies:?}");

        // b.bin is deleted behind the torrent's back. Its open handle still reads the
        // old bytes, so only the link count tells: the seeder must notice, send none of
        // its blocks and stop, naming the file.
        std::fs::remove_file(root.join("b.bin")).unwrap();
        let replies = peer.ask(&blocks_of(&meta, last - 1), quiet).await;
        assert_eq!(
            count_true_blocks(&replies, &meta, &bytes),
            0,
            "blocks of a deleted file were sent: {replies:?}"
        );
        let err = phase_until(&seed, |_| false).await.unwrap_err();
        assert!(
            err.contains("b.bin") && err.contains("deleted outside Shoal"),
            "{err}"
        );
        // Once stopped, a.bin is not served either.
        let mut gone = false;
        for _ in 0..20 {
            if peer.ask(&blocks_of(&meta, 0), quiet).await.is_empty() {
                gone = true;
                break;
            }
        }
        assert!(gone, "the stopped torrent still serves");
        seeder.shutdown().await;
    })
    .await;
}
