//! Harness for end-to-end tests: real `shoal` processes (and third-party clients) on 127.0.0.1.
//!
//! - [`Proc`] runs a child with stdout/stderr read by threads into memory, lets a test wait for a
//!   line (with a deadline), and kills the child by its own PID on drop. Children also get
//!   `PR_SET_PDEATHSIG`, so they die with the thread that spawned them even if a test is aborted.
//! - [`with_timeout`] bounds a whole test; every wait takes its own timeout as well.
//! - Files: [`write_random_file`] (seeded, deterministic), [`compare_trees`] (byte for byte).
//! - Ports: [`free_port`] for clients that cannot take port 0 (Transmission, aria2). Shoal itself
//!   always gets `--port 0` / `--bind 127.0.0.1:0` and the test reads the port it prints.
//!
//! The `shoal` binary is `CARGO_BIN_EXE_shoal`, or `$SHOAL_TEST_BIN` when set (to run the suites
//! against another build). `SHOAL_KEEP_TMP=1` keeps each test's temp dir for a post-mortem.
//! The CLI lines parsed here are specified in `docs/CLI-CONTRACT.md`.
#![allow(dead_code)] // each test binary uses a different subset

pub mod aria2;
pub mod libtorrent;
pub mod lt_utp;
pub mod netns;
pub mod transmission;

use anyhow::{bail, ensure, Context, Result};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Default deadline for a readiness line (a process starting and binding its socket).
pub const READY: Duration = Duration::from_secs(30);
/// Default deadline for a short-lived command (`shoal create`, `shoal info`, `transmission-show`).
pub const QUICK: Duration = Duration::from_secs(30);
/// Default deadline for a transfer of a few MiB on loopback (generous: debug builds, 2 cores).
pub const TRANSFER: Duration = Duration::from_secs(120);

/// Runs `f` on its own thread and panics if it takes longer than `limit`.
///
/// Spawn every [`Proc`] inside `f`: their death signal is tied to the spawning thread, so a
/// timed-out test's children die when the test process exits.
pub fn with_timeout<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let name = thread::current().name().unwrap_or("test").to_string();
    let handle = thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn test thread");
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test exceeded its time limit of {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("test thread ended without a result"),
        },
    }
}

/// A temp dir for one test, removed on drop unless `SHOAL_KEEP_TMP=1`.
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl TestDir {
    pub fn new(test: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("shoal-{test}-"))
            .tempdir()
            .context("creating test temp dir")?;
        let path = dir.path().to_path_buf();
        Ok(Self {
            dir: Some(dir),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path/rel`, with its directory created.
    pub fn sub(&self, rel: &str) -> Result<PathBuf> {
        let p = self.path.join(rel);
        fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(p)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::env::var_os("SHOAL_KEEP_TMP").is_some_and(|v| v == "1") {
            if let Some(dir) = self.dir.take() {
                eprintln!("keeping {}", dir.keep().display());
            }
        }
    }
}

/// Which output stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Default)]
struct Lines {
    lines: Vec<(Stream, String)>,
    /// Streams whose reader reached EOF.
    closed: u8,
}

#[derive(Default)]
struct Captured {
    lines: Mutex<Lines>,
    changed: Condvar,
}

impl Captured {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lines> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A child process with captured output, killed (SIGKILL to its own PID) and reaped on drop.
pub struct Proc {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    out: Arc<Captured>,
}

impl Proc {
    /// Spawns `program args` in `cwd` with stdin closed and stdout/stderr captured.
    pub fn spawn<S: AsRef<OsStr>>(
        name: &str,
        program: impl AsRef<OsStr>,
        args: &[S],
        cwd: &Path,
    ) -> Result<Self> {
        let mut cmd = Command::new(program.as_ref());
        cmd.args(args).current_dir(cwd);
        Self::spawn_command(name, cmd)
    }

    /// Spawns a prepared command (for extra environment); stdio and death signal are set here.
    pub fn spawn_command(name: &str, mut cmd: Command) -> Result<Self> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {name}: {cmd:?}"))?;
        let out = Arc::new(Captured::default());
        let stdout = child.stdout.take().context("child stdout")?;
        let stderr = child.stderr.take().context("child stderr")?;
        spawn_reader(name, Stream::Stdout, stdout, out.clone());
        spawn_reader(name, Stream::Stderr, stderr, out.clone());
        Ok(Self {
            name: name.to_string(),
            child,
            status: None,
            out,
        })
    }

    /// Spawns `shoal args` in `cwd`.
    pub fn shoal<S: AsRef<OsStr>>(name: &str, args: &[S], cwd: &Path) -> Result<Self> {
        let mut cmd = Command::new(shoal_bin());
        cmd.args(args).current_dir(cwd).env("RUST_BACKTRACE", "1");
        Self::spawn_command(name, cmd)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it, trimmed.
    /// Lines already printed count, so asking twice gives the same answer.
    pub fn wait_for_prefix(&mut self, prefix: &str, timeout: Duration) -> Result<String> {
        let line = self
            .wait_for_line(Some(Stream::Stdout), timeout, |l| l.starts_with(prefix))
            .with_context(|| format!("waiting for a line `{prefix}...`"))?;
        Ok(line[prefix.len()..].trim().to_string())
    }

    /// Waits for a line (on `stream`, or either if `None`) matching `pred`, and returns it.
    /// Fails at the deadline or as soon as the process has closed its output without one.
    pub fn wait_for_line(
        &mut self,
        stream: Option<Stream>,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        let out = self.out.clone();
        let mut lines = out.lock();
        loop {
            for (s, line) in &lines.lines[seen..] {
                if (stream.is_none() || stream == Some(*s)) && pred(line) {
                    return Ok(line.clone());
                }
            }
            seen = lines.lines.len();
            let closed = lines.closed == 2;
            if !closed && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                lines = out
                    .changed
                    .wait_timeout(lines, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            drop(lines);
            let why = if closed {
                match self.wait_exit(Duration::from_secs(5)) {
                    Ok(status) => format!("it exited with {status}"),
                    Err(_) => "it closed its output but did not exit".to_string(),
                }
            } else {
                "timed out".to_string()
            };
            bail!(
                "{}: no expected line within {timeout:?}: {why}\n{}",
                self.name,
                self.output_tail(40)
            );
        }
    }

    /// Waits up to `timeout` for the process to exit; kills it and fails past the deadline.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for child")? {
                self.status = Some(status);
                self.wait_output_closed(Duration::from_secs(2));
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                bail!(
                    "{}: did not exit within {timeout:?} (killed)\n{}",
                    self.name,
                    self.output_tail(40)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for exit and fails unless the exit status is success.
    pub fn wait_success(&mut self, timeout: Duration) -> Result<()> {
        let status = self.wait_exit(timeout)?;
        ensure!(
            status.success(),
            "{}: exited with {status}\n{}",
            self.name,
            self.output_tail(40)
        );
        Ok(())
    }

    /// Sends SIGTERM to the child (by its PID) if it is still running.
    pub fn terminate(&mut self) -> Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// Sends SIGINT to the child (by its PID) if it is still running.
    pub fn interrupt(&mut self) -> Result<()> {
        self.signal(libc::SIGINT)
    }

    fn signal(&mut self, sig: libc::c_int) -> Result<()> {
        if self.status.is_some() || self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: plain syscall on our own, not yet reaped child (so the PID is not reused).
        if unsafe { libc::kill(pid, sig) } != 0 {
            return Err(std::io::Error::last_os_error()).context("kill");
        }
        Ok(())
    }

    /// SIGKILL and reap, if still running.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    fn wait_output_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut lines = self.out.lock();
        while lines.closed < 2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            lines = self
                .out
                .changed
                .wait_timeout(lines, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Everything printed on `stream` so far.
    pub fn output(&self, stream: Stream) -> String {
        let lines = self.out.lock();
        let mut s = String::new();
        for (_, l) in lines.lines.iter().filter(|(st, _)| *st == stream) {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    /// The last `n` lines of both streams, tagged, for failure messages.
    pub fn output_tail(&self, n: usize) -> String {
        let lines = self.out.lock();
        let start = lines.lines.len().saturating_sub(n);
        let mut s = format!("--- last {} lines of {} ---\n", n, self.name);
        for (st, l) in &lines.lines[start..] {
            let tag = match st {
                Stream::Stdout => "out",
                Stream::Stderr => "err",
            };
            s.push_str(&format!("[{tag}] {l}\n"));
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!("{}", self.output_tail(60));
        }
    }
}

fn spawn_reader(name: &str, stream: Stream, pipe: impl Read + Send + 'static, out: Arc<Captured>) {
    let echo = std::env::var_os("SHOAL_TEST_ECHO").is_some_and(|v| v == "1");
    let name = name.to_string();
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    if echo {
                        eprintln!("[{name}] {line}");
                    }
                    out.lock().lines.push((stream, line));
                    out.changed.notify_all();
                }
            }
        }
        out.lock().closed += 1;
        out.changed.notify_all();
    });
}

/// Path of the `shoal` binary under test.
pub fn shoal_bin() -> PathBuf {
    match std::env::var_os("SHOAL_TEST_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_shoal")),
    }
}

/// Runs a command to completion (bounded by `timeout`) and returns its stdout; fails on a
/// non-zero exit with both streams in the message.
pub fn run<S: AsRef<OsStr>>(
    name: &str,
    program: impl AsRef<OsStr>,
    args: &[S],
    cwd: &Path,
    timeout: Duration,
) -> Result<String> {
    let mut p = Proc::spawn(name, program, args, cwd)?;
    p.wait_success(timeout)?;
    Ok(p.output(Stream::Stdout))
}

/// Runs `shoal args` to completion and returns its stdout.
pub fn run_shoal<S: AsRef<OsStr>>(args: &[S], cwd: &Path, timeout: Duration) -> Result<String> {
    let name = args
        .first()
        .map(|a| format!("shoal {}", a.as_ref().to_string_lossy()))
        .unwrap_or_else(|| "shoal".into());
    let mut p = Proc::shoal(&name, args, cwd)?;
    p.wait_success(timeout)?;
    Ok(p.output(Stream::Stdout))
}

/// The rest of the first line of `text` starting with `prefix`, trimmed.
pub fn field<'a>(text: &'a str, prefix: &str) -> Result<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
        .with_context(|| format!("no line starting with {prefix:?} in:\n{text}"))
}

/// Searches `$PATH` for an executable.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// True if every program is on `$PATH`. Otherwise prints why the test is skipped and returns
/// false, or panics when `SHOAL_INTEROP_REQUIRED=1` (set by `scripts/test`, which installs them).
pub fn have_tools(test: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "SKIPPED {test}: {} not found on PATH (Debian: apt-get install aria2 transmission-cli \
         transmission-daemon mktorrent, or run scripts/test)",
        missing.join(", ")
    );
    if std::env::var_os("SHOAL_INTEROP_REQUIRED").is_some_and(|v| v == "1") {
        panic!("{msg} [SHOAL_INTEROP_REQUIRED=1]");
    }
    eprintln!("{msg}");
    println!("{msg}");
    false
}

/// A port that was free on 127.0.0.1 a moment ago, for clients that cannot bind port 0.
/// (Racy by nature; Shoal itself always gets port 0 and reports its port.)
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// SplitMix64: small, seeded and stable across platforms and crate versions.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Writes `size` pseudo-random bytes determined by `seed` to `path`, creating parent dirs.
pub fn write_random_file(path: &Path, size: u64, seed: u64) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut rng = SplitMix64::new(seed);
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64))?;
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    Ok(())
}

/// Writes each `(relative path, size)` under `root` with seeds `seed, seed + 1, ...`; returns
/// the total size.
pub fn make_files(root: &Path, files: &[(&str, u64)], seed: u64) -> Result<u64> {
    let mut total = 0;
    for (i, (rel, size)) in files.iter().enumerate() {
        write_random_file(&root.join(rel), *size, seed.wrapping_add(i as u64))?;
        total += size;
    }
    Ok(total)
}

/// Fails unless `a` and `b` hold the same relative paths, kinds and bytes.
pub fn compare_trees(a: &Path, b: &Path) -> Result<()> {
    let left = list_tree(a)?;
    let right = list_tree(b)?;
    let names = |v: &[(PathBuf, bool)]| -> Vec<PathBuf> { v.iter().map(|e| e.0.clone()).collect() };
    ensure!(
        left == right,
        "trees differ:\n{}: {:?}\n{}: {:?}",
        a.display(),
        names(&left),
        b.display(),
        names(&right)
    );
    for (rel, is_dir) in &left {
        if !is_dir {
            compare_files(&a.join(rel), &b.join(rel))?;
        }
    }
    Ok(())
}

/// Sorted `(relative path, is_dir)` of everything under `root` (symlinks are reported as errors).
fn list_tree(root: &Path) -> Result<Vec<(PathBuf, bool)>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let ty = entry.file_type()?;
            let child = rel.join(entry.file_name());
            ensure!(
                ty.is_dir() || ty.is_file(),
                "{}: not a file or dir",
                root.join(&child).display()
            );
            if ty.is_dir() {
                stack.push(child.clone());
            }
            out.push((child, ty.is_dir()));
        }
    }
    out.sort();
    Ok(out)
}

fn compare_files(a: &Path, b: &Path) -> Result<()> {
    let (la, lb) = (fs::metadata(a)?.len(), fs::metadata(b)?.len());
    ensure!(
        la == lb,
        "size differs: {} is {la} bytes, {} is {lb}",
        a.display(),
        b.display()
    );
    let mut fa = BufReader::new(File::open(a)?);
    let mut fb = BufReader::new(File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        ensure!(n == m, "{} changed while comparing", a.display());
        if n == 0 {
            return Ok(());
        }
        if let Some(i) = (0..n).find(|&i| ba[i] != bb[i]) {
            bail!(
                "content differs at byte {}: {} vs {}",
                offset + i as u64,
                a.display(),
                b.display()
            );
        }
        offset += n as u64;
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Polls `f` every 100 ms until it returns `Some`, failing after `timeout` with `what`.
pub fn poll<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            match last_err {
                Some(e) => return Err(e.context(format!("timed out after {timeout:?}: {what}"))),
                None => bail!("timed out after {timeout:?}: {what}"),
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
}

// ---- Shoal commands, per docs/CLI-CONTRACT.md -------------------------------------------------

/// A running `shoal tracker` and its announce URL.
pub struct Tracker {
    pub proc: Proc,
    pub url: String,
}

/// Starts `shoal tracker --bind 127.0.0.1:0 --interval SECS` and reads its announce URL.
pub fn start_tracker(cwd: &Path, interval_secs: u32) -> Result<Tracker> {
    let interval = interval_secs.to_string();
    let mut proc = Proc::shoal(
        "shoal tracker",
        &["tracker", "--bind", "127.0.0.1:0", "--interval", &interval],
        cwd,
    )?;
    let url = proc.wait_for_prefix("tracker: ", READY)?;
    ensure!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/announce"),
        "unexpected tracker URL {url:?}"
    );
    Ok(Tracker { proc, url })
}

/// `shoal create DATA --tracker URL -o OUT --piece-size BYTES`; returns the printed info-hash.
pub fn create_torrent(data: &Path, tracker: &str, out: &Path, piece_size: u32) -> Result<String> {
    let cwd = out.parent().context("torrent path has no parent")?;
    let piece = piece_size.to_string();
    let args: [&OsStr; 8] = [
        "create".as_ref(),
        data.as_os_str(),
        "--tracker".as_ref(),
        tracker.as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        "--piece-size".as_ref(),
        piece.as_ref(),
    ];
    let stdout = run_shoal(&args, cwd, QUICK)?;
    let hash = field(&stdout, "info hash: ")?.to_string();
    ensure!(is_info_hash(&hash), "bad info hash {hash:?}");
    ensure!(out.is_file(), "{} was not written", out.display());
    Ok(hash)
}

/// 40 lowercase hex digits.
pub fn is_info_hash(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A running `shoal seed` and the peer port it printed.
pub struct Seeder {
    pub proc: Proc,
    pub port: u16,
}

/// `shoal seed TORRENT --dir DIR --port 0 [extra...]`; waits for `peer port:` and `seeding <name>`.
pub fn start_seed(torrent: &Path, dir: &Path, name: &str, extra: &[&str]) -> Result<Seeder> {
    let mut args: Vec<&OsStr> = vec![
        "seed".as_ref(),
        torrent.as_os_str(),
        "--dir".as_ref(),
        dir.as_os_str(),
        "--port".as_ref(),
        "0".as_ref(),
    ];
    args.extend(extra.iter().map(|a| OsStr::new(*a)));
    let cwd = dir.parent().unwrap_or(dir);
    let mut proc = Proc::shoal("shoal seed", &args, cwd)?;
    let port = parse_port(&proc.wait_for_prefix("peer port: ", READY)?)?;
    let seeding = format!("seeding {name}");
    proc.wait_for_line(Some(Stream::Stdout), TRANSFER, |l| l.trim() == seeding)?;
    Ok(Seeder { proc, port })
}

/// Spawns `shoal download TORRENT --dir DIR --port 0 [extra...]` (does not wait).
pub fn spawn_download(name: &str, torrent: &Path, dir: &Path, extra: &[&str]) -> Result<Proc> {
    let mut args: Vec<&OsStr> = vec![
        "download".as_ref(),
        torrent.as_os_str(),
        "--dir".as_ref(),
        dir.as_os_str(),
        "--port".as_ref(),
        "0".as_ref(),
    ];
    args.extend(extra.iter().map(|a| OsStr::new(*a)));
    Proc::shoal(name, &args, dir)
}

/// Waits for a `shoal download` to print `complete: <name>` and exit 0.
pub fn finish_download(p: &mut Proc, name: &str, timeout: Duration) -> Result<()> {
    p.wait_success(timeout)?;
    let complete = format!("complete: {name}");
    ensure!(
        p.output(Stream::Stdout)
            .lines()
            .any(|l| l.trim() == complete),
        "{}: exited 0 without `{complete}`\n{}",
        p.name(),
        p.output_tail(40)
    );
    Ok(())
}

pub fn parse_port(s: &str) -> Result<u16> {
    let port: u16 = s
        .trim()
        .parse()
        .with_context(|| format!("bad port {s:?}"))?;
    ensure!(port != 0, "port 0 reported");
    Ok(port)
}
