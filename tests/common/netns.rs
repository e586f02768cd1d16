//! Network namespaces as hosts for tests that need several machines (`tests/lsd.rs`,
//! `tests/net_faults.rs`). A [`Netns`] is deleted on drop, which also deletes every
//! interface inside it (a veth end takes its peer with it), whatever the test did.
//! Only private addresses chosen by each test are used, inside its own namespaces.
//!
//! Needs root and `ip`; without them [`Netns::add`] returns `Ok(None)` after printing why
//! (a skip), or panics under `SHOAL_INTEROP_REQUIRED=1`.

use super::{have_tools, shoal_bin, Proc};
use anyhow::{bail, ensure, Context, Result};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// `PID-N`, different for every call in every test process (namespace names are global).
pub fn unique_suffix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A network namespace made by the test; `ip netns del` on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// `ip netns add NAME`, or `Ok(None)` after [`skip_or_fail`] if this machine cannot
    /// (no `ip`, not root).
    pub fn add(test: &str, name: &str) -> Result<Option<Netns>> {
        if !have_tools(test, &["ip"]) {
            return Ok(None);
        }
        if let Err(e) = ip(&["netns", "add", name]) {
            skip_or_fail(test, &format!("cannot create a network namespace: {e:#}"));
            return Ok(None);
        }
        Ok(Some(Netns {
            name: name.to_string(),
        }))
    }

    /// `ip netns add NAME` where a first namespace already worked: a failure is an error.
    pub fn add_more(name: &str) -> Result<Netns> {
        ip(&["netns", "add", name])?;
        Ok(Netns {
            name: name.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// `PROGRAM` run inside the namespace (`ip netns exec NAME PROGRAM`; `ip` execs it, so
    /// the child's PID is the program's own).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `PROGRAM ARGS` inside the namespace to completion; fails on a non-zero exit.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<()> {
        let out = self
            .command(program)
            .args(args)
            .output()
            .with_context(|| format!("running {program} in {}", self.name))?;
        ensure!(
            out.status.success(),
            "{program} {} in {} failed: {}",
            args.join(" "),
            self.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// `shoal ARGS` inside the namespace with `env` added, killed on drop like any [`Proc`].
    pub fn shoal(
        &self,
        name: &str,
        args: &[&OsStr],
        cwd: &Path,
        env: &[(&str, &str)],
    ) -> Result<Proc> {
        let mut cmd = self.command(shoal_bin());
        cmd.args(args)
            .current_dir(cwd)
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc::spawn_command(name, cmd)
    }

    /// Moves the calling thread into the namespace (`setns`; only this thread moves).
    /// Sockets and devices it then creates belong to the namespace.
    pub fn enter_on_this_thread(&self) -> Result<()> {
        use std::os::fd::AsRawFd;
        let path = format!("/run/netns/{}", self.name);
        let f = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        // SAFETY: setns on a valid namespace fd; it affects only the calling thread.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns {path}: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("warning: {e:#}");
        }
    }
}

/// `ip ARGS`; fails with its stderr.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running ip {}", args.join(" ")))?;
    ensure!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Prints `SKIPPED test: why` (the test then passes), or panics under
/// `SHOAL_INTEROP_REQUIRED=1`.
pub fn skip_or_fail(test: &str, why: &str) {
    let msg = format!("SKIPPED {test}: {why} (needs root: ip netns, veth)");
    if std::env::var_os("SHOAL_INTEROP_REQUIRED").is_some_and(|v| v == "1") {
        panic!("{msg} [SHOAL_INTEROP_REQUIRED=1]");
    }
    eprintln!("{msg}");
    println!("{msg}");
}

/// Two namespaces joined by a veth pair, each end given its address on a /24; the
/// namespaces (and with them both veth ends) are deleted on drop, whatever happened.
pub struct Pair {
    pub a: Netns,
    pub b: Netns,
    veth_a: String,
    veth_b: String,
}

impl Pair {
    /// Creates `shoal-TAG-a-ID` at `ip_a` and `shoal-TAG-b-ID` at `ip_b`, or `Ok(None)`
    /// after [`skip_or_fail`] when this machine cannot.
    pub fn create(test: &str, tag: &str, ip_a: &str, ip_b: &str) -> Result<Option<Pair>> {
        let id = unique_suffix();
        let Some(a) = Netns::add(test, &format!("shoal-{tag}-a-{id}"))? else {
            return Ok(None);
        };
        let b = Netns::add_more(&format!("shoal-{tag}-b-{id}"))?;
        // Interface names are at most 15 bytes.
        let id = id.replace('-', "n");
        let pair = Pair {
            a,
            b,
            veth_a: format!("va{id}"),
            veth_b: format!("vb{id}"),
        };
        let (va, vb) = (&pair.veth_a, &pair.veth_b);
        ip(&["link", "add", va, "type", "veth", "peer", "name", vb])?;
        ip(&["link", "set", va, "netns", pair.a.name()])?;
        ip(&["link", "set", vb, "netns", pair.b.name()])?;
        for (ns, dev, addr) in [(&pair.a, va, ip_a), (&pair.b, vb, ip_b)] {
            ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ns.ip(&["link", "set", dev, "up"])?;
            ns.ip(&["link", "set", "lo", "up"])?;
        }
        Ok(Some(pair))
    }

    /// The veth devices in A and in B.
    pub fn devices(&self) -> [(&Netns, &str); 2] {
        [(&self.a, &self.veth_a), (&self.b, &self.veth_b)]
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // Still in the root namespace if setup failed before moving it.
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth_a])
            .stderr(Stdio::null())
            .status();
    }
}
