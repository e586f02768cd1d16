//! The node commands (`shoal add/share/ls/pause/resume/rm/export/stats/search/get`) against
//! real `shoal up` nodes on loopback: one node through its life cycle, two nodes sharing a
//! folder through the catalog with nothing but the CLI, and the exit codes when no node runs.

mod common;
mod nodeutil;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::*;
use nodeutil::*;
use serde_json::Value;

/// What a finished `shoal` command left.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `shoal args` with `SHOAL_DATA_DIR=data` (how the commands find the node) to its end.
fn shoal_in(data: &Path, cwd: &Path, args: &[&OsStr]) -> Result<Outcome> {
    let name = format!(
        "shoal {}",
        args.first().map_or("".into(), |a| a.to_string_lossy())
    );
    let mut cmd = Command::new(shoal_bin());
    cmd.args(args)
        .current_dir(cwd)
        .env("SHOAL_DATA_DIR", data)
        .env_remove("SHOAL_NODE");
    let mut p = Proc::spawn_command(&name, cmd)?;
    let status = p.wait_exit(QUICK)?;
    Ok(Outcome {
        code: status.code().unwrap_or(-1),
        stdout: p.output(Stream::Stdout),
        stderr: p.output(Stream::Stderr),
    })
}

/// Runs `shoal args` for the node with data dir `data`; fails unless it exits 0.
fn ok(data: &Path, cwd: &Path, args: &[&str]) -> Result<String> {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let out = shoal_in(data, cwd, &args)?;
    ensure!(
        out.code == 0,
        "shoal {args:?} exited {}:\n{}{}",
        out.code,
        out.stdout,
        out.stderr
    );
    Ok(out.stdout)
}

/// `shoal ls --json`.
fn ls(data: &Path, cwd: &Path) -> Result<Vec<Value>> {
    let out = ok(data, cwd, &["ls", "--json"])?;
    let v: Value = serde_json::from_str(&out).with_context(|| format!("ls --json: {out}"))?;
    Ok(v.as_array().context("ls --json is not an array")?.clone())
}

/// The `ls --json` entry of `id`, once `pred` holds for it.
fn wait_ls(
    data: &Path,
    cwd: &Path,
    id: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value> {
    poll(what, timeout, || {
        let all = ls(data, cwd)?;
        Ok(all.into_iter().find(|t| t["id"] == id).filter(|t| pred(t)))
    })
}

#[test]
fn node_commands_through_a_torrents_life() -> Result<()> {
    with_timeout(Duration::from_secs(150), || {
        let t = TestDir::new("cli-client")?;
        let data_dir = t.path().join("node");
        let cwd = t.sub("work")?;
        let folder = t.sub("share")?.join("holiday pics");
        let total = make_files(&folder, &[("a.bin", 300_000), ("sub/b.bin", 4_321)], 7)?;
        let node = start_node("node", &data_dir, &t.sub("dl")?, &[])?;
        let d = data_dir.as_path();

        // share: hashes in the node, prints the ID.
        let shared = ok(
            d,
            &cwd,
            &["share", folder.to_str().context("utf-8 temp path")?],
        )?;
        let id = field(&shared, "id: ")?.to_string();
        ensure!(is_info_hash(&id), "share printed {shared}");
        let short = &id[..8];

        // ls --json: the stable fields scripts use.
        let entry = wait_ls(d, &cwd, &id, "seeding", TRANSFER, |t| {
            t["state"] == "seeding"
        })?;
        ensure!(entry["name"] == "holiday pics", "{entry}");
        ensure!(entry["size"] == total, "{entry}");
        ensure!(entry["progress"] == 1.0, "{entry}");
        ensure!(
            entry["down_rate"].is_u64() && entry["up_rate"].is_u64(),
            "{entry}"
        );
        let table = ok(d, &cwd, &["ls"])?;
        let row = table
            .lines()
            .find(|l| l.starts_with(short))
            .with_context(|| format!("no row for {short}:\n{table}"))?;
        ensure!(
            row.contains("holiday pics") && row.contains("100.0%") && row.contains("seeding"),
            "{row}"
        );

        // pause and resume by an 8-character prefix.
        let paused = ok(d, &cwd, &["pause", short])?;
        ensure!(paused.starts_with(&format!("paused {short}")), "{paused}");
        let entry = ls(d, &cwd)?
            .into_iter()
            .find(|t| t["id"] == id.as_str())
            .context("gone after pause")?;
        ensure!(entry["state"] == "paused", "{entry}");
        let resumed: Value = serde_json::from_str(&ok(d, &cwd, &["resume", short, "--json"])?)?;
        ensure!(resumed["id"] == id.as_str(), "{resumed}");
        wait_ls(d, &cwd, &id, "seeding again", TRANSFER, |t| {
            t["state"] == "seeding"
        })?;

        // export: default name in the working dir, and -o; both hash to the same ID.
        let wrote = ok(d, &cwd, &["export", short])?;
        ensure!(wrote.starts_with("wrote holiday pics.torrent"), "{wrote}");
        let info = ok(d, &cwd, &["info", "holiday pics.torrent"])?;
        ensure!(field(&info, "info hash: ")? == id, "{info}");
        let out = t.path().join("copy.torrent");
        ok(
            d,
            &cwd,
            &["export", &id, "-o", out.to_str().context("utf-8")?],
        )?;
        let info = ok(d, &cwd, &["info", out.to_str().context("utf-8")?])?;
        ensure!(field(&info, "info hash: ")? == id, "{info}");

        // stats, search (by --node instead of the data dir), get of what is already here.
        let stats: Value = serde_json::from_str(&ok(d, &cwd, &["stats", "--json"])?)?;
        ensure!(stats["torrents"] == 1, "{stats}");
        let url = node.url.clone();
        let found = poll("the catalog lists the share", QUICK, || {
            let out = ok(d, &cwd, &["search", "holiday", "--json", "--node", &url])?;
            let v: Value = serde_json::from_str(&out)?;
            Ok(v["results"]
                .as_array()
                .is_some_and(|r| r.iter().any(|h| h["id"] == id.as_str()))
                .then_some(v))
        })?;
        ensure!(found["page"] == 0, "{found}");
        let again = shoal_in(d, &cwd, &[OsStr::new("get"), OsStr::new(short)])?;
        ensure!(
            again.code == 1 && again.stderr.contains("already"),
            "get of a present torrent: {} {}",
            again.code,
            again.stderr
        );

        // add of the exported file: the node refuses a duplicate with exit 1.
        let dup = shoal_in(d, &cwd, &[OsStr::new("add"), out.as_os_str()])?;
        ensure!(dup.code == 1, "duplicate add exited {}", dup.code);

        // rm keeps the data; an unknown ID is the node's error, exit 1.
        let removed = ok(d, &cwd, &["rm", short])?;
        ensure!(
            removed.starts_with(&format!("removed {short}")),
            "{removed}"
        );
        ensure!(ls(d, &cwd)?.is_empty(), "still listed after rm");
        ensure!(folder.join("a.bin").is_file(), "rm deleted the data");
        let gone = shoal_in(d, &cwd, &[OsStr::new("pause"), OsStr::new(short)])?;
        ensure!(
            gone.code == 1,
            "pause of a removed torrent exited {}",
            gone.code
        );

        // add it back from the file, paused, then rm --delete-data removes the files.
        let added: Value = serde_json::from_str(&ok(
            d,
            &cwd,
            &[
                "add",
                out.to_str().context("utf-8")?,
                "--save-dir",
                folder.parent().and_then(Path::to_str).context("utf-8")?,
                "--paused",
                "--json",
            ],
        )?)?;
        ensure!(added["id"] == id.as_str(), "{added}");
        ok(d, &cwd, &["rm", short, "--delete-data"])?;
        poll("data deleted", QUICK, || {
            Ok((!folder.join("a.bin").exists()).then_some(()))
        })?;

        // With the node gone (node.json left behind or not), commands exit 2 and say why.
        drop(node);
        let down = shoal_in(d, &cwd, &[OsStr::new("ls")])?;
        ensure!(
            down.code == 2 && down.stderr.contains("shoal up"),
            "ls with no node: {} {}",
            down.code,
            down.stderr
        );
        Ok(())
    })
}

#[test]
fn shared_on_a_found_and_fetched_by_b_with_the_cli() -> Result<()> {
    with_timeout(Duration::from_secs(150), || {
        let t = TestDir::new("cli-client-pair")?;
        let cwd = t.sub("work")?;
        let folder = t.sub("share")?.join("field recordings");
        make_files(
            &folder,
            &[("dawn.wav", 500_000), ("dusk.wav", 70_001), ("notes/x", 0)],
            21,
        )?;
        let (da, db) = (t.path().join("a"), t.path().join("b"));
        let a = start_node("node A", &da, &t.sub("dl-a")?, &[])?;
        let tracker = a.tracker.clone().context("A runs the embedded tracker")?;
        let b = start_node("node B", &db, &t.sub("dl-b")?, &["--tracker", &tracker])?;

        let shared = ok(&da, &cwd, &["share", folder.to_str().context("utf-8")?])?;
        let id = field(&shared, "id: ")?.to_string();

        // B searches by part of the name, then gets by an 8-character ID prefix.
        let listing = poll("B finds the share", QUICK, || {
            let out = ok(&db, &cwd, &["search", "recordings"])?;
            Ok(out.contains(&id[..8]).then_some(out))
        })?;
        ensure!(listing.contains("field recordings"), "{listing}");
        let saves = t.sub("b-saves")?;
        let got = ok(
            &db,
            &cwd,
            &[
                "get",
                &id[..8],
                "--save-dir",
                saves.to_str().context("utf-8")?,
            ],
        )?;
        ensure!(field(&got, "id: ")? == id, "{got}");

        wait_ls(&db, &cwd, &id, "B completes", TRANSFER, |t| {
            t["state"] == "seeding" && t["progress"] == 1.0
        })?;
        compare_trees(&folder, &saves.join("field recordings"))?;
        drop((a, b));
        Ok(())
    })
}

#[test]
fn no_node_means_exit_2_with_how_to_start_one() -> Result<()> {
    with_timeout(Duration::from_secs(60), || {
        let t = TestDir::new("cli-client-none")?;
        let empty = t.sub("empty-data")?;
        for args in [vec!["ls"], vec!["stats", "--json"], vec!["pause", "abcd"]] {
            let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
            let out = shoal_in(&empty, t.path(), &args)?;
            ensure!(out.code == 2, "{args:?} exited {}", out.code);
            ensure!(out.stderr.contains("shoal up"), "{}", out.stderr);
            ensure!(out.stdout.is_empty(), "{}", out.stdout);
        }
        // A bad ID is refused before looking for a node: exit 1.
        let bad = shoal_in(&empty, t.path(), &[OsStr::new("rm"), OsStr::new("zz")])?;
        ensure!(
            bad.code == 1 && bad.stderr.contains("torrent ID"),
            "{}",
            bad.stderr
        );
        Ok(())
    })
}
