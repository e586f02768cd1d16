//! The download limit holds: a leecher limited to 256 KiB/s cannot fetch 1 MiB from an
//! unlimited seeder in less than the limit allows (a lower bound only, so a slow machine
//! cannot make it fail), and lifting the limit at run time lets it finish.

use std::time::{Duration, Instant};

use shoal_engine::create::{create_torrent, CreateOptions};
use shoal_engine::{Phase, Session, SessionConfig, TorrentOptions};

fn config(max_down: u64) -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        port_range: None,
        max_down,
        ..SessionConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_limit_is_enforced_and_can_be_changed() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(seed_dir.join("f.bin"), &data).unwrap();
    let opts = CreateOptions {
        piece_length: Some(16 * 1024),
        ..CreateOptions::default()
    };
    let meta = create_torrent(&seed_dir.join("f.bin"), &opts, &|_, _| {}).unwrap();

    let test = async {
        let seeder = Session::start(config(0)).await.unwrap();
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
        let limit = 256 * 1024;
        let leecher = Session::start(config(limit)).await.unwrap();
        let peer = format!("127.0.0.1:{}", seeder.listen_port())
            .parse()
            .unwrap();
        let start = Instant::now();
        let leech = leecher
            .add_torrent(
                meta.clone(),
                TorrentOptions {
                    save_dir: dir.path().join("leech"),
                    peers: vec![peer],
                    ..TorrentOptions::default()
                },
            )
            .unwrap();
        // Two seconds at 256 KiB/s (plus a one-second burst) is at most 768 KiB of 1 MiB.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mid = leech.status();
        assert!(
            mid.phase != Phase::Seeding,
            "finished in {:?} despite the limit",
            start.elapsed()
        );
        assert!(
            mid.downloaded <= 3 * limit + 64 * 1024,
            "got {} bytes in 2 s",
            mid.downloaded
        );
        leecher.set_limits(0, 0);
        let mut phase = leech.phase();
        loop {
            let p = phase.borrow_and_update().clone();
            match p {
                Phase::Seeding => break,
                Phase::Error(e) => panic!("download failed: {e}"),
                _ => phase.changed().await.unwrap(),
            }
        }
        // Rates fall back to zero once nothing moves (5 s window).
        tokio::time::sleep(Duration::from_secs(7)).await;
        let idle = leech.status();
        assert_eq!((idle.down_rate, idle.up_rate), (0, 0), "{idle:?}");
        leecher.shutdown().await;
        seeder.shutdown().await;
    };
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test timed out");
    let got = std::fs::read(dir.path().join("leech").join("f.bin")).unwrap();
    assert!(got == data, "downloaded file differs");
}
