//! The download limit holds on real sockets, and can be lifted at run time: a leecher
//! limited to 256 KiB/s has no more than the limit allows (plus the one-second burst) a
//! moment after it starts (an upper bound only, so a slow machine cannot make it fail),
//! and lifting the limit lets it finish. The limiter's timing is tested on simulated
//! time in `rate::bucket` and `rate::limits`; the limits with 60 peers in
//! `tests/rate_limits.rs` (real `shoal` processes).

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
        // Wait for the first bytes, then a second more: the limit allows at most the
        // burst plus the elapsed time at 256 KiB/s, short of the 1 MiB unless the
        // machine stalled us for seconds.
        while leech.status().downloaded == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mid = leech.status();
        let elapsed = start.elapsed().as_secs_f64();
        // Slack: bytes are charged after the read that brought them (at most a read
        // of a quarter second's worth, plus a block split across reads).
        let allowed = limit + (limit as f64 * elapsed) as u64 + 128 * 1024;
        assert!(
            mid.downloaded <= allowed,
            "got {} bytes in {elapsed:.2} s, the limit allows {allowed}",
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
        leecher.shutdown().await;
        seeder.shutdown().await;
    };
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test timed out");
    let got = std::fs::read(dir.path().join("leech").join("f.bin")).unwrap();
    assert!(got == data, "downloaded file differs");
}
