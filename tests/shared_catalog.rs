//! Two `shoal tracker` processes sharing one PostgreSQL catalog (`--catalog-db`): what
//! one publishes, the other finds and serves. PostgreSQL is a real server the test
//! starts (the tracker crate's `tests/common/postgres.rs`); without it installed the test
//! prints `SKIPPED:` and passes, or fails when `SHOAL_INTEROP_REQUIRED=1`. Also the errors for unusable `--catalog-db` values.

mod common;
#[path = "../crates/shoal-tracker/tests/common/postgres.rs"]
mod pg_server;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

/// `shoal tracker --catalog-db URL` on a free port; returns it and its base URL.
fn start_shared_tracker(name: &str, url: &str, cwd: &Path) -> Result<(Proc, String)> {
    let args = [
        "tracker",
        "--bind",
        "127.0.0.1:0",
        "--no-udp",
        "--catalog-db",
        url,
    ];
    let mut proc = Proc::shoal(name, &args, cwd)?;
    let announce = proc.wait_for_prefix("tracker: ", READY)?;
    let base = announce
        .strip_suffix("/announce")
        .with_context(|| format!("unexpected tracker URL {announce:?}"))?
        .to_string();
    let catalog = proc.wait_for_prefix("catalog: ", READY)?;
    ensure!(
        catalog.ends_with("(PostgreSQL)"),
        "{name} does not say it uses PostgreSQL: {catalog:?}"
    );
    Ok((proc, base))
}

fn get_json(url: &str) -> Result<Value> {
    let resp = ureq::get(url)
        .timeout(QUICK)
        .call()
        .with_context(|| format!("GET {url}"))?;
    Ok(resp.into_json()?)
}

#[test]
fn two_trackers_share_a_postgres_catalog() {
    with_timeout(LIMIT, || -> Result<()> {
        let Some(db) = pg_server::fresh_database() else {
            return Ok(());
        };
        let dir = TestDir::new("shared-catalog")?;
        let data = dir.sub("data/Field Recordings")?;
        make_files(
            &data,
            &[("dawn chorus.flac", 70_000), ("rain.flac", 20_000)],
            7,
        )?;
        let torrent = dir.path().join("field.torrent");
        let (mut a, base_a) = start_shared_tracker("tracker A", &db, dir.path())?;
        let (mut b, base_b) = start_shared_tracker("tracker B", &db, dir.path())?;
        let hash = create_torrent(&data, &format!("{base_a}/announce"), &torrent, 16384)?;
        let bytes = std::fs::read(&torrent)?;

        let reply: Value = ureq::post(&format!("{base_a}/publish"))
            .timeout(QUICK)
            .send_bytes(&bytes)
            .context("publish to tracker A")?
            .into_json()?;
        ensure!(reply["id"] == hash.as_str(), "publish reply {reply}");
        ensure!(reply["created"] == true, "publish reply {reply}");

        let found = get_json(&format!("{base_b}/search?q=recordings%20dawn"))?;
        ensure!(found["total"] == 1, "tracker B search: {found}");
        ensure!(found["hits"][0]["id"] == hash.as_str(), "{found}");
        ensure!(found["hits"][0]["name"] == "Field Recordings", "{found}");
        let by_id = get_json(&format!("{base_b}/search?q={}", &hash[..8]))?;
        ensure!(by_id["hits"][0]["id"] == hash.as_str(), "{by_id}");
        let served = ureq::get(&format!("{base_b}/torrent/{hash}"))
            .timeout(QUICK)
            .call()?;
        let mut served_bytes = Vec::new();
        served.into_reader().read_to_end(&mut served_bytes)?;
        ensure!(
            served_bytes == bytes,
            "tracker B serves the published .torrent"
        );

        // Publishing again through B is idempotent.
        let again: Value = ureq::post(&format!("{base_b}/publish"))
            .timeout(QUICK)
            .send_bytes(&bytes)?
            .into_json()?;
        ensure!(again["created"] == false, "second publish: {again}");
        a.terminate()?;
        b.terminate()?;
        a.wait_exit(QUICK)?;
        b.wait_exit(QUICK)?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn unusable_catalog_databases_are_clear_errors() {
    with_timeout(LIMIT, || -> Result<()> {
        let dir = TestDir::new("catalog-db-errors")?;
        let mut bad = Proc::shoal(
            "tracker mysql",
            &[
                "tracker",
                "--bind",
                "127.0.0.1:0",
                "--catalog-db",
                "mysql://u:pw@h/db",
            ],
            dir.path(),
        )?;
        let status = bad.wait_exit(QUICK)?;
        let err = bad.output(Stream::Stderr);
        ensure!(!status.success(), "a mysql:// URL was accepted");
        ensure!(err.contains("not a PostgreSQL URL"), "{err}");
        ensure!(!err.contains("pw"), "password shown: {err}");

        let port = free_port()?;
        let url = format!("postgres://shoal:secret@127.0.0.1:{port}/catalog");
        let mut down = Proc::shoal(
            "tracker unreachable",
            &["tracker", "--bind", "127.0.0.1:0", "--catalog-db", &url],
            dir.path(),
        )?;
        let status = down.wait_exit(READY)?;
        let err = down.output(Stream::Stderr);
        ensure!(!status.success(), "started without its database");
        ensure!(
            err.contains("cannot connect to the PostgreSQL catalog"),
            "{err}"
        );
        ensure!(!err.contains("secret"), "password shown: {err}");
        Ok(())
    })
    .unwrap();
}
