//! Message Stream Encryption against libtorrent 2.0 (Debian's python3-libtorrent), both
//! directions, with libtorrent forcing RC4 (`in_enc_policy` = `out_enc_policy` =
//! `pe_forced` (0), `allowed_enc_level` = `pe_rc4` (2 in libtorrent 2.0; 1 is
//! `pe_plaintext`)) and Shoal at `--encryption require`:
//! - `shoal download` dials a libtorrent seeder (Shoal is the MSE initiator);
//! - a libtorrent leecher dials `shoal seed` (Shoal is the MSE receiver).
//!
//! The torrent's tracker is a closed port, so the only connection is the one each test
//! asks for. libtorrent reports the connection as RC4-encrypted, and the data arrives
//! byte-identical.
//!
//! Skips with a message when python3 with libtorrent is missing, unless
//! `SHOAL_INTEROP_REQUIRED=1`.

mod common;

use anyhow::{Context, Result};
use common::libtorrent::have_libtorrent;
use common::*;
use std::path::Path;
use std::time::Duration;

const NAME: &str = "payload";
/// Nobody listens there: no tracker introduces the peers to each other.
const NO_TRACKER: &str = "http://127.0.0.1:1/announce";

/// A libtorrent session seeding or leeching one torrent with RC4 forced both ways.
/// Prints `peer port: N`, `seeding NAME`, `complete: NAME` (a leecher then exits) and
/// `rc4 peer: ADDR` once a connected peer's stream is RC4-encrypted.
const DRIVER: &str = r#"
import signal, sys, time
import libtorrent as lt

mode, torrent, save = sys.argv[1:4]
peers = sys.argv[4:]
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    # Symbolic: in 2.0 pe_forced is 0 but pe_rc4 is 2 (1 is pe_plaintext).
    "in_enc_policy": int(lt.enc_policy.forced), "out_enc_policy": int(lt.enc_policy.forced),
    "allowed_enc_level": int(lt.enc_level.rc4), "prefer_rc4": True,
}, flags=0)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
info = lt.torrent_info(torrent)
atp = lt.add_torrent_params()
atp.ti = info
atp.save_path = save
h = ses.add_torrent(atp)
port = ses.listen_port()
while port == 0:
    time.sleep(0.01)
    port = ses.listen_port()
print(f"peer port: {port}", flush=True)
for p in peers:
    host, _, pport = p.rpartition(":")
    h.connect_peer((host, int(pport)))
said_seeding = said_rc4 = False
while not stop:
    ses.wait_for_alert(50)
    ses.pop_alerts()
    for pi in h.get_peer_info():
        if not said_rc4 and pi.flags & lt.peer_info.rc4_encrypted:
            print(f"rc4 peer: {pi.ip[0]}:{pi.ip[1]}", flush=True)
            said_rc4 = True
    st = h.status()
    if st.is_seeding and not said_seeding:
        print(f"seeding {info.name()}" if mode == "seed" else f"complete: {info.name()}", flush=True)
        said_seeding = True
        if mode == "leech":
            break
"#;

fn libtorrent(
    mode: &str,
    torrent: &Path,
    save: &Path,
    work: &Path,
    peers: &[String],
) -> Result<Proc> {
    common::libtorrent::run_driver("lt_mse.py", DRIVER, mode, torrent, save, work, peers)
}

/// Data and torrent for one test.
fn payload(t: &TestDir, seed_dir: &Path) -> Result<std::path::PathBuf> {
    let data = seed_dir.join(NAME);
    make_files(
        &data,
        &[("a.bin", 3 * 1024 * 1024 + 11), ("b/c.bin", 200_003)],
        41,
    )?;
    let torrent = t.path().join("payload.torrent");
    create_torrent(&data, NO_TRACKER, &torrent, 64 * 1024)?;
    Ok(torrent)
}

#[test]
fn shoal_require_downloads_from_libtorrent_forced_rc4() -> Result<()> {
    if !have_libtorrent("mse interop (shoal dials libtorrent)") {
        return Ok(());
    }
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("mse-lt-seed")?;
        let seed_dir = t.sub("lt")?;
        let torrent = payload(&t, &seed_dir)?;
        let mut lt = libtorrent("seed", &torrent, &seed_dir, t.path(), &[])?;
        let port = parse_port(&lt.wait_for_prefix("peer port: ", READY)?)?;
        lt.wait_for_prefix("seeding ", READY)?;

        let dir = t.sub("leech")?;
        let peer = format!("127.0.0.1:{port}");
        let mut leech = spawn_download(
            "shoal download",
            &torrent,
            &dir,
            &["--encryption", "require", "--peer", &peer],
        )?;
        finish_download(&mut leech, NAME, TRANSFER)
            .with_context(|| format!("libtorrent side:\n{}", lt.output_tail(20)))?;
        lt.wait_for_prefix("rc4 peer: ", QUICK)?;
        compare_trees(&seed_dir.join(NAME), &dir.join(NAME))?;
        Ok(())
    })
}

#[test]
fn libtorrent_forced_rc4_downloads_from_shoal_require() -> Result<()> {
    if !have_libtorrent("mse interop (libtorrent dials shoal)") {
        return Ok(());
    }
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("mse-shoal-seed")?;
        let seed_dir = t.sub("seed")?;
        let torrent = payload(&t, &seed_dir)?;
        let seeder = start_seed(&torrent, &seed_dir, NAME, &["--encryption", "require"])?;

        let out = t.sub("lt")?;
        let peer = format!("127.0.0.1:{}", seeder.port);
        let mut lt = libtorrent("leech", &torrent, &out, t.path(), &[peer])?;
        lt.wait_success(TRANSFER)
            .with_context(|| format!("shoal side:\n{}", seeder.proc.output_tail(20)))?;
        let said = lt.output(Stream::Stdout);
        anyhow::ensure!(
            said.lines().any(|l| l.starts_with("rc4 peer: ")),
            "libtorrent did not report an RC4 connection:\n{said}"
        );
        compare_trees(&seed_dir.join(NAME), &out.join(NAME))?;
        Ok(())
    })
}
