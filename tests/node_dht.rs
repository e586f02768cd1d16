//! No tracker anywhere: three `shoal up --no-tracker` nodes whose DHTs bootstrap only
//! from each other (`--dht-bootstrap 127.0.0.1:PORT`). A shares a folder; C is given
//! only `magnet:?xt=urn:btih:<info-hash>` through `shoal add MAGNET --node URL`, finds A
//! through the DHT, fetches the metadata from it and completes, byte-identical. The
//! DHT's routing table is saved in C's store at shutdown.
//!
//! The IPv6 variant (BEP 32) bootstraps only over `[::1]:PORT`: the IPv4 DHTs know no
//! node, so A is found through the IPv6 DHT, as an IPv6 peer (`[::1]`), and the saved
//! routing table holds IPv6 nodes.

mod common;
mod nodeutil;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::*;
use nodeutil::*;

const NAME: &str = "shared";

#[test]
fn a_bare_magnet_completes_through_the_dht_with_no_tracker() -> Result<()> {
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("node-dht")?;
        let ([_a, _b, mut c], _) = three_nodes(&t, "127.0.0.1", &[])?;
        c.stop()?;
        let saved = saved_nodes(&t)?;
        assert!(saved.lines().count() >= 1, "saved DHT nodes: {saved:?}");
        Ok(())
    })
}

#[test]
fn a_bare_magnet_completes_through_the_ipv6_dht() -> Result<()> {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        common::libtorrent::skip("SKIPPED node_dht ipv6: no ::1 on this host");
        return Ok(());
    }
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("node-dht6")?;
        // C downloads slowly enough (1 MiB/s for 3 MiB) that its connection to A can
        // be seen before both are seeds and part.
        let ([a, _b, mut c], met) = three_nodes(&t, "[::1]", &["--max-down", "1MiB"])?;
        let a_port = format!("]:{}", a.peer_port);
        assert!(
            met.iter()
                .any(|p| p.starts_with("[::1") && p.ends_with(&a_port)),
            "C met A at [::1]:{} through the DHT: {met:?}",
            a.peer_port
        );
        let node = c.get("node")?;
        println!("c: /api/node dht: {}", node["dht"]);
        assert!(node["dht"]["nodes_v6"].as_u64() >= Some(1), "{node}");
        // Nothing bootstrapped the IPv4 DHTs: A can only have come through the IPv6 one.
        assert_eq!(node["dht"]["nodes_v4"], 0, "{node}");
        c.stop()?;
        let saved = saved_nodes(&t)?;
        assert!(
            saved.lines().any(|l| l.contains(" [::1]:")),
            "IPv6 nodes saved: {saved:?}"
        );
        Ok(())
    })
}

/// Starts A, B and C bootstrapping from each other at `host:PORT` (C with `c_extra`),
/// shares a folder on A and has C complete it from a bare magnet, byte-identical.
/// Returns the nodes and the addresses of the DHT peers C was seen connected to.
fn three_nodes(t: &TestDir, host: &str, c_extra: &[&str]) -> Result<([Node; 3], Vec<String>)> {
    let data = t.sub("a-files")?.join(NAME);
    make_files(
        &data,
        &[("x.bin", 3 * 1024 * 1024 + 11), ("y.bin", 123_457)],
        9,
    )?;
    let ports = [free_port()?, free_port()?, free_port()?];
    let boot = |i: usize| format!("{host}:{}", ports[i]);
    let start = |name: &str, i: usize, peers: [usize; 2], extra: &[&str]| -> Result<Node> {
        let (data_dir, dl) = (
            t.sub(&format!("{name}-data"))?,
            t.sub(&format!("{name}-dl"))?,
        );
        let port = ports[i].to_string();
        let (b1, b2) = (boot(peers[0]), boot(peers[1]));
        let mut args = vec![
            "--no-tracker",
            "--port",
            &port,
            "--dht-bootstrap",
            &b1,
            "--dht-bootstrap",
            &b2,
        ];
        args.extend_from_slice(extra);
        let mut n = start_node(name, &data_dir, &dl, &args)?;
        n.proc.wait_for_prefix("dht: on", Duration::from_secs(20))?;
        Ok(n)
    };
    let a = start("a", 0, [1, 2], &[])?;
    let b = start("b", 1, [0, 2], &[])?;
    let c = start("c", 2, [0, 1], c_extra)?;

    let id = a.share(&data, Duration::from_secs(60))?;
    let magnet = format!("magnet:?xt=urn:btih:{id}");
    let out = run_shoal(
        &["add", &magnet, "--node", c.url.trim_end_matches('/')],
        t.path(),
        Duration::from_secs(30),
    )?;
    println!("shoal add: {out}");
    let met = wait_seeding_and_watch_peers(&c, &id, Duration::from_secs(120))?;
    println!("c met over the DHT: {met:?}");
    let done = c.torrent(&id)?;
    assert_eq!(done["name"], NAME);
    compare_trees(&data, &t.path().join("c-dl").join(NAME))?;
    Ok(([a, b, c], met))
}

/// Waits for torrent `id` on `node` to seed, watching its peer list meanwhile; returns
/// the addresses of the peers it learnt from the DHT.
fn wait_seeding_and_watch_peers(node: &Node, id: &str, timeout: Duration) -> Result<Vec<String>> {
    let end = Instant::now() + timeout;
    let mut met = Vec::new();
    loop {
        if let Ok(peers) = node.get(&format!("torrents/{id}/peers")) {
            for p in peers.as_array().into_iter().flatten() {
                let addr = p["addr"].as_str().unwrap_or_default().to_string();
                if p["source"] == "dht" && !met.contains(&addr) {
                    met.push(addr);
                }
            }
        }
        let t = node.torrent(id).ok();
        if t.as_ref().is_some_and(|t| t["state"] == "seeding") {
            return Ok(met);
        }
        if Instant::now() > end {
            bail!(
                "{}: torrent {id} not seeding: {t:?}\n{}",
                node.proc.name(),
                node.proc.output_tail(30)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The DHT nodes C saved in its store at shutdown (`hexid ip:port` lines).
fn saved_nodes(t: &TestDir) -> Result<String> {
    let db = t.path().join("c-data").join("shoal.db");
    rusqlite::Connection::open(&db)?
        .query_row("SELECT value FROM meta WHERE key = 'dht_nodes'", [], |r| {
            r.get(0)
        })
        .context("DHT nodes saved at shutdown")
}
