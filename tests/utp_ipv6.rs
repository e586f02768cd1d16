//! uTP (BEP 29) over IPv6 on `::1`, with every Shoal on its defaults (bound to the
//! IPv4 wildcard: a dual-stack TCP listener, UDP on `0.0.0.0` and an IPv6-only UDP
//! socket on `[::]` beside it, same port number):
//! - two `shoal up` nodes: B is given A only as `[::1]:PORT` in a magnet's `x.pe`; B's
//!   API lists A with transport `utp` and family `ipv6`, A's lists B as an incoming
//!   `utp`/`ipv6` peer, and B's copy is byte-identical (A also lists the incoming TCP
//!   connection B fetched the metadata over: the magnet fetcher dials TCP only);
//! - libtorrent (Debian's python3-libtorrent) listening on `[::1]` with its TCP off
//!   both ways (uTP only), both directions: `shoal download` dials a libtorrent
//!   seeder, a libtorrent leecher dials `shoal seed`. libtorrent reports the
//!   connection as a uTP socket from `::1`.
//!
//! Skips with a message when `::1` or python3 with libtorrent is missing, unless
//! `SHOAL_INTEROP_REQUIRED=1`. The libtorrent driver prints its error and connection
//! alerts to stderr, which a failure's message includes. The two libtorrent scenarios
//! are those of `utp_interop.rs` on `::1` (`common/lt_utp.rs`).

mod common;
mod nodeutil;

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use common::libtorrent::{have_libtorrent, skip};
use common::lt_utp::{libtorrent_dials_shoal, shoal_dials_libtorrent, IPV6};
use common::*;
use nodeutil::*;
use serde_json::{json, Value};

const NAME: &str = "payload6";

fn have_ipv6(test: &str) -> bool {
    let ok = std::net::UdpSocket::bind("[::1]:0").is_ok()
        && std::net::TcpListener::bind("[::1]:0").is_ok();
    if !ok {
        skip(&format!("SKIPPED {test}: no ::1 on this host"));
    }
    ok
}

/// Adds the peers `node`'s API lists for torrent `id` to `seen`, as
/// `(addr, transport, family, incoming)`.
fn note_peers(node: &Node, id: &str, seen: &mut Vec<(String, String, String, bool)>) {
    let Ok(peers) = node.get(&format!("torrents/{id}/peers")) else {
        return;
    };
    let s = |p: &Value, k: &str| p[k].as_str().unwrap_or_default().to_string();
    for p in peers.as_array().into_iter().flatten() {
        let row = (
            s(p, "addr"),
            s(p, "transport"),
            s(p, "family"),
            p["incoming"] == true,
        );
        if !seen.contains(&row) {
            seen.push(row);
        }
    }
}

#[test]
fn shoal_nodes_talk_utp_over_ipv6_loopback() -> Result<()> {
    if !have_ipv6("utp ipv6 (shoal to shoal)") {
        return Ok(());
    }
    with_timeout(Duration::from_secs(180), || {
        let t = TestDir::new("utp6-nodes")?;
        let data = t.sub("a-files")?.join(NAME);
        make_files(
            &data,
            &[("x.bin", 3 * 1024 * 1024 + 5), ("y.bin", 77_777)],
            61,
        )?;
        let a = start_node("a", &t.sub("a-data")?, &t.sub("a-dl")?, &["--no-tracker"])?;
        // B downloads slowly enough (1 MiB/s for 3 MiB) for both peer lists to be read
        // while the two are connected.
        let b = start_node(
            "b",
            &t.sub("b-data")?,
            &t.sub("b-dl")?,
            &["--no-tracker", "--max-down", "1MiB"],
        )?;
        let id = a.share(&data, Duration::from_secs(60))?;
        let a_addr = format!("[::1]:{}", a.peer_port);
        let magnet = format!("magnet:?xt=urn:btih:{id}&x.pe={a_addr}");
        b.post("torrents", json!({ "magnet": magnet }))?;

        let (mut b_sees, mut a_sees) = (Vec::new(), Vec::new());
        let end = Instant::now() + Duration::from_secs(120);
        loop {
            note_peers(&b, &id, &mut b_sees);
            note_peers(&a, &id, &mut a_sees);
            if b.torrent(&id).is_ok_and(|s| s["state"] == "seeding") {
                break;
            }
            if Instant::now() > end {
                bail!(
                    "B not seeding; B saw {b_sees:?}, A saw {a_sees:?}\n{}\n{}",
                    b.proc.output_tail(30),
                    a.proc.output_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("B's API listed {b_sees:?}; A's listed {a_sees:?}");
        let utp6 = |r: &(String, String, String, bool)| r.1 == "utp" && r.2 == "ipv6";
        ensure!(
            b_sees.iter().any(|r| r.0 == a_addr && !r.3 && utp6(r)),
            "B lists A ({a_addr}) as an outgoing utp/ipv6 peer: {b_sees:?}"
        );
        ensure!(
            a_sees
                .iter()
                .any(|r| r.0.starts_with("[::1]:") && r.3 && utp6(r)),
            "A lists B as an incoming utp/ipv6 peer: {a_sees:?}"
        );
        compare_trees(&data, &t.path().join("b-dl").join(NAME))?;
        Ok(())
    })
}

#[test]
fn shoal_downloads_from_libtorrent_over_ipv6_utp() -> Result<()> {
    let test = "utp ipv6 interop (shoal dials libtorrent)";
    if !have_ipv6(test) || !have_libtorrent(test) {
        return Ok(());
    }
    shoal_dials_libtorrent(IPV6, "utp6")
}

#[test]
fn libtorrent_downloads_from_shoal_over_ipv6_utp() -> Result<()> {
    let test = "utp ipv6 interop (libtorrent dials shoal)";
    if !have_ipv6(test) || !have_libtorrent(test) {
        return Ok(());
    }
    libtorrent_dials_shoal(IPV6, "utp6")
}
