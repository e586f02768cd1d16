//! No tracker anywhere: three `shoal up --no-tracker` nodes whose DHTs bootstrap only
//! from each other (`--dht-bootstrap 127.0.0.1:PORT`). A shares a folder; C is given
//! only `magnet:?xt=urn:btih:<info-hash>` through `shoal add MAGNET --node URL`, finds A
//! through the DHT, fetches the metadata from it and completes, byte-identical. The
//! DHT's routing table is saved in C's store at shutdown.

mod common;
mod nodeutil;

use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use nodeutil::*;

const NAME: &str = "shared";

#[test]
fn a_bare_magnet_completes_through_the_dht_with_no_tracker() -> Result<()> {
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("node-dht")?;
        let data = t.sub("a-files")?.join(NAME);
        make_files(
            &data,
            &[("x.bin", 3 * 1024 * 1024 + 11), ("y.bin", 123_457)],
            9,
        )?;
        let ports = [free_port()?, free_port()?, free_port()?];
        let boot = |i: usize| format!("127.0.0.1:{}", ports[i]);
        let start = |name: &str, i: usize, peers: [usize; 2]| -> Result<Node> {
            let (data_dir, dl) = (
                t.sub(&format!("{name}-data"))?,
                t.sub(&format!("{name}-dl"))?,
            );
            let port = ports[i].to_string();
            let (b1, b2) = (boot(peers[0]), boot(peers[1]));
            let mut n = start_node(
                name,
                &data_dir,
                &dl,
                &[
                    "--no-tracker",
                    "--port",
                    &port,
                    "--dht-bootstrap",
                    &b1,
                    "--dht-bootstrap",
                    &b2,
                ],
            )?;
            n.proc.wait_for_prefix("dht: on", Duration::from_secs(20))?;
            Ok(n)
        };
        let a = start("a", 0, [1, 2])?;
        let _b = start("b", 1, [0, 2])?;
        let mut c = start("c", 2, [0, 1])?;

        let id = a.share(&data, Duration::from_secs(60))?;
        let magnet = format!("magnet:?xt=urn:btih:{id}");
        let out = run_shoal(
            &["add", &magnet, "--node", c.url.trim_end_matches('/')],
            t.path(),
            Duration::from_secs(30),
        )?;
        println!("shoal add: {out}");
        let done = c.wait_torrent(
            &id,
            "the magnet to complete",
            Duration::from_secs(120),
            |s| s["state"] == "seeding",
        )?;
        assert_eq!(done["name"], NAME);
        compare_trees(&data, &t.path().join("c-dl").join(NAME))?;
        c.stop()?;
        let db = t.path().join("c-data").join("shoal.db");
        let saved: String = rusqlite::Connection::open(&db)?
            .query_row("SELECT value FROM meta WHERE key = 'dht_nodes'", [], |r| {
                r.get(0)
            })
            .context("DHT nodes saved at shutdown")?;
        assert!(saved.lines().count() >= 1, "saved DHT nodes: {saved:?}");
        Ok(())
    })
}
