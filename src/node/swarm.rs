//! `shoal swarm N`: a tracker and N nodes as child processes, each node with its own
//! data and download dirs under one folder, for trying Shoal on one machine. Prints
//! every node's web URL; on SIGINT or SIGTERM stops them all (SIGTERM, then SIGKILL
//! after 10 s) and exits.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Options of `shoal swarm`.
#[derive(Args, Debug, Clone)]
pub struct SwarmArgs {
    /// Number of nodes.
    #[arg(value_parser = clap::value_parser!(u16).range(1..=100))]
    pub nodes: u16,
    /// Folder for the nodes' data (node-1, node-2, ...; created if missing).
    #[arg(long, default_value = "shoal-swarm")]
    pub dir: PathBuf,
}

struct Member {
    name: String,
    child: Child,
    /// Its stdout, until handed to a drain task.
    lines: Option<Lines<BufReader<ChildStdout>>>,
}

pub async fn run(args: SwarmArgs) -> anyhow::Result<ExitCode> {
    let interrupted = crate::cli::interrupted();
    let exe = std::env::current_exe().context("cannot find the shoal executable")?;
    tokio::fs::create_dir_all(&args.dir)
        .await
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut members: Vec<Member> = Vec::new();
    let result = start_all(&exe, &args, &mut members).await;
    if let Err(e) = result {
        stop_all(&mut members).await;
        return Err(e);
    }
    println!("swarm running; Ctrl-C stops every node");
    // Keep draining the children's output so they never block on a full pipe.
    let mut drains = tokio::task::JoinSet::new();
    for mut lines in members.iter_mut().filter_map(|m| m.lines.take()) {
        drains.spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    }
    interrupted.await;
    stop_all(&mut members).await;
    // The children are gone, so their pipes are at end of file; abort in case not.
    drains.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn start_all(exe: &Path, args: &SwarmArgs, members: &mut Vec<Member>) -> anyhow::Result<()> {
    let mut tracker = spawn(exe, "tracker", &["tracker", "--bind", "0.0.0.0:0"])?;
    let line = wait_prefix(&mut tracker, "tracker: ").await?;
    let url = line
        .split_whitespace()
        .next()
        .context("the tracker printed no URL")?
        .to_string();
    println!("tracker: {url}");
    members.push(tracker);
    for i in 1..=args.nodes {
        let dir = args.dir.join(format!("node-{i}"));
        let downloads = dir.join("downloads");
        let (d, dl) = (dir.display().to_string(), downloads.display().to_string());
        let mut node = spawn(
            exe,
            &format!("node-{i}"),
            &[
                "up",
                "--data-dir",
                &d,
                "--download-dir",
                &dl,
                "--tracker",
                &url,
            ],
        )?;
        let web = wait_prefix(&mut node, "web: ").await?;
        println!("node {i}: {web} (data in {d})");
        members.push(node);
    }
    Ok(())
}

fn spawn(exe: &Path, name: &str, args: &[&str]) -> anyhow::Result<Member> {
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    let out = child.stdout.take().context("no stdout")?;
    Ok(Member {
        name: name.to_string(),
        child,
        lines: Some(BufReader::new(out).lines()),
    })
}

async fn wait_prefix(m: &mut Member, prefix: &str) -> anyhow::Result<String> {
    let name = m.name.clone();
    let Some(lines) = m.lines.as_mut() else {
        anyhow::bail!("{name}: output already taken");
    };
    let wait = async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.trim().to_string());
            }
        }
        anyhow::bail!("{name} exited before printing `{prefix}`")
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .with_context(|| format!("{name} did not start within 30 s"))?
}

async fn stop_all(members: &mut [Member]) {
    for m in members.iter() {
        if let Some(pid) = m.child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: a plain syscall on our own child, not yet reaped (so the PID is ours).
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    for m in members.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(10), m.child.wait())
            .await
            .is_err()
        {
            let _ = m.child.kill().await;
        }
    }
}
