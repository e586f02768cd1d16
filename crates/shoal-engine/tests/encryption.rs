//! Two sessions on loopback under each pair of encryption policies: the pairs that
//! should connect transfer the whole torrent, byte-identical, over the kind of
//! connection the policies imply (shown by `PeerInfo::encrypted`); `require` against
//! `off` never connects, either way round.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use shoal_engine::create::{create_torrent, CreateOptions};
use shoal_engine::{EncryptionPolicy, Phase, Session, SessionConfig, TorrentOptions};
use shoal_proto::metainfo::Metainfo;
use tokio::task::JoinSet;

use EncryptionPolicy::{Allow, Off, Prefer, Require};

fn config(encryption: EncryptionPolicy, max_up: u64) -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        port_range: None,
        max_up,
        encryption,
        ..SessionConfig::default()
    }
}

/// Seeder upload limit: the 1 MiB transfer then takes long enough (most of a second)
/// that the leecher's peer list is seen with the seeder in it.
const MAX_UP: u64 = 768 * 1024;

fn make_torrent(dir: &Path) -> (Metainfo, Vec<u8>) {
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("f.bin"), &data).unwrap();
    let opts = CreateOptions {
        piece_length: Some(32 * 1024),
        ..CreateOptions::default()
    };
    (
        create_torrent(&dir.join("f.bin"), &opts, &|_, _| {}).unwrap(),
        data,
    )
}

/// A seeder with policy `seed` and a leecher with policy `leech` that dials it. Returns
/// whether the leecher finished within `wait`, and `encrypted` of the seeder in the
/// leecher's peer list when it was seen.
async fn run_pair(
    dir: &Path,
    meta: &Metainfo,
    seed: EncryptionPolicy,
    leech: EncryptionPolicy,
    wait: Duration,
) -> (bool, Option<bool>) {
    let seeder = Session::start(config(seed, MAX_UP)).await.unwrap();
    let s = seeder
        .add_torrent(
            meta.clone(),
            TorrentOptions {
                save_dir: dir.join("seed"),
                seed_only: true,
                ..TorrentOptions::default()
            },
        )
        .unwrap();
    let mut phase = s.phase();
    while *phase.borrow_and_update() != Phase::Seeding {
        phase.changed().await.unwrap();
    }
    let leecher = Session::start(config(leech, 0)).await.unwrap();
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.listen_port()));
    let save = dir.join(format!("leech-{seed}-{leech}"));
    let l = leecher
        .add_torrent(
            meta.clone(),
            TorrentOptions {
                save_dir: save,
                peers: vec![peer],
                ..TorrentOptions::default()
            },
        )
        .unwrap();
    let mut encrypted = None;
    let deadline = tokio::time::Instant::now() + wait;
    let done = loop {
        if encrypted.is_none() {
            encrypted = l.peers().first().map(|p| p.encrypted);
        }
        if *l.phase().borrow() == Phase::Seeding {
            break true;
        }
        if tokio::time::Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    leecher.shutdown().await;
    seeder.shutdown().await;
    (done, encrypted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_pairs_connect_or_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, data) = make_torrent(&dir.path().join("seed"));
    // (seeder, leecher that dials, encrypted?)
    let connect = [
        (Off, Off, false),
        (Allow, Off, false),
        (Off, Allow, false),
        (Allow, Allow, false),
        (Require, Allow, true),
        (Allow, Prefer, true),
        (Off, Prefer, false),
        (Prefer, Prefer, true),
        (Prefer, Allow, false),
        (Allow, Require, true),
        (Prefer, Require, true),
        (Require, Require, true),
        (Require, Prefer, true),
    ];
    let mut set = JoinSet::new();
    for (seed, leech, enc) in connect {
        let (dir, meta) = (dir.path().to_path_buf(), meta.clone());
        set.spawn(async move {
            let r = run_pair(&dir, &meta, seed, leech, Duration::from_secs(60)).await;
            assert_eq!(r, (true, Some(enc)), "seeder {seed}, leecher {leech}");
            dir.join(format!("leech-{seed}-{leech}")).join("f.bin")
        });
    }
    for (seed, leech) in [(Require, Off), (Off, Require)] {
        let (dir, meta) = (dir.path().to_path_buf(), meta.clone());
        set.spawn(async move {
            // Long enough for the first dial and its retry to be refused; no
            // connection may ever register.
            let r = run_pair(&dir, &meta, seed, leech, Duration::from_secs(2)).await;
            assert_eq!(r, (false, None), "seeder {seed}, leecher {leech}");
            Default::default()
        });
    }
    let all = async {
        while let Some(r) = set.join_next().await {
            let path: std::path::PathBuf = r.unwrap();
            if !path.as_os_str().is_empty() {
                assert!(std::fs::read(&path).unwrap() == data, "{path:?} differs");
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("test timed out");
}
