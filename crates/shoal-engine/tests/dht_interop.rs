//! Our DHT against libtorrent's (Debian `python3-libtorrent`, 2.0): a libtorrent
//! session on loopback seeds a torrent with no tracker and its DHT on; our session's
//! DHT bootstraps from it alone, finds the seeder through `get_peers` (libtorrent
//! announces itself to us), and the torrent downloads byte for byte.
//!
//! The Python side is a script the test writes to a temp dir. It prints `PORT n` once
//! listening, reads our DHT port from stdin and adds us as a DHT node (libtorrent does
//! not take nodes into its table from their queries alone), then asks for a DHT
//! announce every two seconds until stdin closes. The child is killed on drop. Its uTP
//! is off until Shoal speaks uTP. Set `RUST_LOG=shoal_engine=debug` to see the lookups.
//! Skips when `/usr/bin/python3` cannot import `libtorrent`, unless
//! `SHOAL_INTEROP_REQUIRED=1`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use sha1::{Digest, Sha1};
use shoal_engine::{DhtConfig, Phase, Session, SessionConfig, TorrentOptions};
use shoal_proto::metainfo::{InfoBuilder, Metainfo};

const PYTHON: &str = "/usr/bin/python3";

const SCRIPT: &str = include_str!("../../../tests/drivers/lt_dht_seed.py");

/// Kills the child on drop.
struct Python {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for Python {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have_libtorrent() -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let msg = "SKIPPED dht_interop: /usr/bin/python3 cannot import libtorrent \
               (Debian: apt-get install python3-libtorrent)";
    if std::env::var_os("SHOAL_INTEROP_REQUIRED").is_some_and(|v| v == "1") {
        panic!("{msg} [SHOAL_INTEROP_REQUIRED=1]");
    }
    eprintln!("{msg}");
    false
}

/// A two-file torrent written below `dir` (data) and to `dir/t.torrent`, no tracker.
fn torrent(dir: &Path, len: u64, piece_length: u64) -> Metainfo {
    let mut x: u32 = 99;
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
    let a = len / 3;
    let info = InfoBuilder {
        name: "t".into(),
        piece_length,
        files: vec![(vec!["a.bin".into()], a), (vec!["b.bin".into()], len - a)],
        single_file: false,
        private: false,
    }
    .encode(&pieces);
    std::fs::create_dir_all(dir.join("t")).unwrap();
    std::fs::write(dir.join("t/a.bin"), &bytes[..a as usize]).unwrap();
    std::fs::write(dir.join("t/b.bin"), &bytes[a as usize..]).unwrap();
    let mut file = b"d4:info".to_vec();
    file.extend_from_slice(&info);
    file.push(b'e');
    std::fs::write(dir.join("t.torrent"), &file).unwrap();
    Metainfo::from_info_bytes(&info, Vec::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_a_libtorrent_seeder_through_its_dht() {
    if !have_libtorrent() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (seed_dir, fetch_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let meta = torrent(seed_dir.path(), 2 * 1024 * 1024 + 77, 128 * 1024);
    let script = seed_dir.path().join("seed.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let mut child = Command::new(PYTHON)
        .arg(&script)
        .arg(seed_dir.path())
        .arg(seed_dir.path().join("t.torrent"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut py = Python {
        stdin: child.stdin.take(),
        child,
    };
    let port = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        lines.find_map(|l| l.ok()?.strip_prefix("PORT ")?.trim().parse::<u16>().ok())
    });
    let port = tokio::time::timeout(Duration::from_secs(30), port)
        .await
        .expect("libtorrent did not start within 30 s")
        .unwrap()
        .expect("libtorrent printed no port");

    let session = Session::start(SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        port_range: None,
        dht: Some(DhtConfig {
            bootstrap: vec![format!("127.0.0.1:{port}")],
            ..DhtConfig::default()
        }),
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    if let Some(stdin) = py.stdin.as_mut() {
        writeln!(stdin, "{}", session.listen_port()).unwrap();
        stdin.flush().unwrap();
    }
    let opts = TorrentOptions {
        save_dir: fetch_dir.path().into(),
        ..TorrentOptions::default()
    };
    let h = session.add_torrent(meta, opts).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        let mut phase = h.phase();
        loop {
            let p = phase.borrow_and_update().clone();
            match p {
                Phase::Seeding => return Ok(()),
                Phase::Error(e) => return Err(e),
                _ => phase.changed().await.unwrap(),
            }
        }
    })
    .await;
    let stats = session.dht().unwrap().stats().await;
    session.shutdown().await;
    drop(py);
    assert_eq!(
        done,
        Ok(Ok(())),
        "no download from libtorrent within 60 s; dht {stats:?}"
    );
    for f in ["t/a.bin", "t/b.bin"] {
        let want = std::fs::read(seed_dir.path().join(f)).unwrap();
        let got = std::fs::read(fetch_dir.path().join(f)).unwrap();
        assert!(want == got, "{f} differs");
    }
}
