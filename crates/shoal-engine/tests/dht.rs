//! Torrents found through the DHT alone (no tracker, no peer given): three sessions
//! on loopback whose DHTs know only each other; private torrents never use it.
//! (`dht_interop.rs`: the same against libtorrent.)

use std::path::Path;
use std::time::Duration;

use sha1::{Digest, Sha1};
use shoal_engine::{DhtConfig, Phase, Session, SessionConfig, TorrentHandle, TorrentOptions};
use shoal_proto::metainfo::{InfoBuilder, Metainfo};

fn config(bootstrap: Option<u16>) -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        port_range: None,
        dht: Some(DhtConfig {
            bootstrap: bootstrap
                .map(|p| format!("127.0.0.1:{p}"))
                .into_iter()
                .collect(),
            ..DhtConfig::default()
        }),
        ..SessionConfig::default()
    }
}

/// A two-file torrent (`t/a.bin`, `t/b.bin`) with no announce URL, its data written
/// below `dir`.
fn torrent(dir: &Path, len: u64, piece_length: u64, private: bool) -> Metainfo {
    let mut x: u32 = 77;
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
        private,
    }
    .encode(&pieces);
    std::fs::create_dir_all(dir.join("t")).unwrap();
    std::fs::write(dir.join("t/a.bin"), &bytes[..a as usize]).unwrap();
    std::fs::write(dir.join("t/b.bin"), &bytes[a as usize..]).unwrap();
    let meta = Metainfo::from_info_bytes(&info, Vec::new()).unwrap();
    assert!(
        meta.tracker_tiers().is_empty(),
        "no tracker: the DHT is the only way"
    );
    meta
}

fn add(session: &Session, meta: &Metainfo, dir: &Path, seed: bool) -> TorrentHandle {
    let opts = TorrentOptions {
        save_dir: dir.into(),
        seed_only: seed,
        ..TorrentOptions::default()
    };
    session.add_torrent(meta.clone(), opts).unwrap()
}

async fn seeding(h: &TorrentHandle) {
    let mut phase = h.phase();
    loop {
        let p = phase.borrow_and_update().clone();
        match p {
            Phase::Seeding => return,
            Phase::Error(e) => panic!("torrent failed: {e}"),
            _ => phase.changed().await.unwrap(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sessions_find_each_other_through_the_dht_alone() {
    let (seed_dir, fetch_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let meta = torrent(seed_dir.path(), 3 * 1024 * 1024 + 1234, 256 * 1024, false);
    // A plain DHT node; the other two know only it.
    let router = Session::start(config(None)).await.unwrap();
    let seeder = Session::start(config(Some(router.listen_port())))
        .await
        .unwrap();
    let fetcher = Session::start(config(Some(router.listen_port())))
        .await
        .unwrap();
    let seed = add(&seeder, &meta, seed_dir.path(), true);
    let fetch = add(&fetcher, &meta, fetch_dir.path(), false);
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        seeding(&seed).await;
        seeding(&fetch).await;
    })
    .await;
    let router_nodes = router.dht().unwrap().stats().await;
    let fetcher_nodes = fetcher.dht().unwrap().nodes().await;
    for s in [&fetcher, &seeder, &router] {
        s.shutdown().await;
    }
    assert!(
        done.is_ok(),
        "download through the DHT did not finish in 60 s"
    );
    assert_eq!(router_nodes.good + router_nodes.questionable, 2);
    assert_eq!(
        fetcher_nodes.len(),
        2,
        "the fetcher learnt both other nodes"
    );
    for f in ["t/a.bin", "t/b.bin"] {
        let want = std::fs::read(seed_dir.path().join(f)).unwrap();
        let got = std::fs::read(fetch_dir.path().join(f)).unwrap();
        assert!(want == got, "{f} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_torrents_stay_off_the_dht() {
    let dir = tempfile::tempdir().unwrap();
    let router = Session::start(config(None)).await.unwrap();
    let session = Session::start(config(Some(router.listen_port())))
        .await
        .unwrap();
    let meta = torrent(dir.path(), 64 * 1024, 16 * 1024, true);
    assert!(meta.info.private);
    let h = add(&session, &meta, dir.path(), true);
    seeding(&h).await;
    // Long enough for a lookup and its announce had there been one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lookups = router.dht().unwrap();
    let stats = lookups.stats().await;
    let mut found = lookups.get_peers(meta.info_hash).await;
    let mut peers = Vec::new();
    while let Some(p) = found.recv().await {
        peers.push(p);
    }
    session.shutdown().await;
    router.shutdown().await;
    assert_eq!(stats.torrents, 0, "nothing announced to the router");
    assert!(peers.is_empty());
}
