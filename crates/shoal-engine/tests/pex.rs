//! Peer exchange (BEP 11) on real sockets: a leecher that knows only the seeder learns
//! the two other leechers from the seeder's PEX message, dials them, and takes pieces
//! from them. The seeder's upload is limited so that the others hold pieces the late
//! leecher lacks while it runs.

use std::net::SocketAddr;
use std::time::Duration;

use shoal_engine::create::{create_torrent, CreateOptions};
use shoal_engine::{PeerSource, Phase, Session, SessionConfig, TorrentHandle, TorrentOptions};
use shoal_proto::metainfo::Metainfo;

fn config(max_up: u64) -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        port_range: None,
        max_up,
        ..SessionConfig::default()
    }
}

async fn leech(
    meta: &Metainfo,
    dir: std::path::PathBuf,
    peer: SocketAddr,
) -> (Session, TorrentHandle) {
    let s = Session::start(config(0)).await.unwrap();
    let t = s
        .add_torrent(
            meta.clone(),
            TorrentOptions {
                save_dir: dir,
                peers: vec![peer],
                ..TorrentOptions::default()
            },
        )
        .unwrap();
    (s, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_learns_peers_through_pex_and_downloads_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let data: Vec<u8> = (0..(12u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(seed_dir.join("f.bin"), &data).unwrap();
    let opts = CreateOptions {
        piece_length: Some(64 * 1024),
        ..CreateOptions::default()
    };
    let meta = create_torrent(&seed_dir.join("f.bin"), &opts, &|_, _| {}).unwrap();

    let test = async {
        let seeder = Session::start(config(1 << 20)).await.unwrap();
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
        let s_addr: SocketAddr = format!("127.0.0.1:{}", seeder.listen_port())
            .parse()
            .unwrap();
        let (b, bt) = leech(&meta, dir.path().join("b"), s_addr).await;
        let (c, ct) = leech(&meta, dir.path().join("c"), s_addr).await;
        // Let B and C hold some pieces first.
        while bt.status().pieces_have < 8 || ct.status().pieces_have < 8 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (d, dt) = leech(&meta, dir.path().join("d"), s_addr).await;
        let others = [b.listen_port(), c.listen_port()];
        let mut from_pex = 0u64;
        let mut phase = dt.phase();
        loop {
            for p in dt.peers() {
                if p.source == PeerSource::Pex {
                    assert!(others.contains(&p.addr.port()), "PEX gave {p:?}");
                    from_pex = from_pex.max(p.downloaded);
                }
            }
            if *phase.borrow_and_update() == Phase::Seeding {
                break;
            }
            tokio::select! {
                _ = phase.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        for s in [&d, &c, &b, &seeder] {
            s.shutdown().await;
        }
        from_pex
    };
    let from_pex = tokio::time::timeout(Duration::from_secs(90), test)
        .await
        .expect("PEX test timed out");
    assert!(
        from_pex > 0,
        "nothing came from the peers learnt through PEX"
    );
    assert_eq!(
        std::fs::read(dir.path().join("d").join("f.bin")).unwrap(),
        data
    );
}
