//! Two sessions on loopback over uTP: with uTP on both sides the leecher's dial goes
//! over uTP (plaintext and under MSE) and both peer lists say so; with uTP off on
//! either side the dial ends up on TCP (after the 3 s uTP attempt when only the
//! seeder has it off). Every transfer is byte-identical.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use shoal_engine::create::{create_torrent, CreateOptions};
use shoal_engine::peer::TransportKind;
use shoal_engine::{EncryptionPolicy, Phase, Session, SessionConfig, TorrentOptions};
use shoal_proto::metainfo::Metainfo;

use EncryptionPolicy::{Off, Require};
use TransportKind::{Tcp, Utp};

/// Seeder upload limit: the 1 MiB transfer takes over a second, so both peer lists
/// are seen with the other side in them.
const MAX_UP: u64 = 768 * 1024;

fn config(utp: bool, encryption: EncryptionPolicy, max_up: u64) -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        port_range: None,
        max_up,
        encryption,
        utp,
        ..SessionConfig::default()
    }
}

fn make_torrent(dir: &Path) -> (Metainfo, Vec<u8>) {
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 7 % 253) as u8).collect();
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

/// What one seeder/leecher run saw: the transports in the leecher's and the
/// seeder's peer lists (first seen), and the downloaded bytes.
struct Outcome {
    leecher_saw: Option<(TransportKind, bool, bool)>,
    seeder_saw: Option<(TransportKind, bool, bool)>,
    data: Vec<u8>,
}

async fn run_pair(
    dir: &Path,
    meta: &Metainfo,
    seed_utp: bool,
    leech_utp: bool,
    encryption: EncryptionPolicy,
) -> Outcome {
    let seeder = Session::start(config(seed_utp, encryption, MAX_UP))
        .await
        .unwrap();
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
    let leecher = Session::start(config(leech_utp, encryption, 0))
        .await
        .unwrap();
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.listen_port()));
    let save = dir.join(format!("leech-{seed_utp}-{leech_utp}-{encryption}"));
    let l = leecher
        .add_torrent(
            meta.clone(),
            TorrentOptions {
                save_dir: save.clone(),
                peers: vec![peer],
                ..TorrentOptions::default()
            },
        )
        .unwrap();
    let (mut leecher_saw, mut seeder_saw) = (None, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let seen = |p: &shoal_engine::PeerInfo| (p.transport, p.ipv6, p.encrypted);
        leecher_saw = leecher_saw.or_else(|| l.peers().first().map(seen));
        seeder_saw = seeder_saw.or_else(|| s.peers().first().map(seen));
        if *l.phase().borrow() == Phase::Seeding {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no transfer: seeder uTP {seed_utp}, leecher uTP {leech_utp}, {encryption}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    leecher.shutdown().await;
    seeder.shutdown().await;
    Outcome {
        leecher_saw,
        seeder_saw,
        data: std::fs::read(save.join("f.bin")).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_over_utp_and_falls_back_to_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, data) = make_torrent(&dir.path().join("seed"));
    // (seeder uTP, leecher uTP, policy, transport expected on both sides)
    let cases = [
        (true, true, Off, Utp),
        (true, true, Require, Utp),
        (false, true, Off, Tcp),
        (true, false, Off, Tcp),
    ];
    let all = async {
        let mut set = tokio::task::JoinSet::new();
        for (seed_utp, leech_utp, enc, want) in cases {
            let (dir, meta, data) = (dir.path().to_path_buf(), meta.clone(), data.clone());
            set.spawn(async move {
                let o = run_pair(&dir, &meta, seed_utp, leech_utp, enc).await;
                let case = format!("seeder uTP {seed_utp}, leecher uTP {leech_utp}, {enc}");
                let expect = Some((want, false, enc == Require));
                assert_eq!(o.leecher_saw, expect, "leecher's view, {case}");
                assert_eq!(o.seeder_saw, expect, "seeder's view, {case}");
                assert!(o.data == data, "downloaded data differs, {case}");
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("transfers took over 120 s");
}
