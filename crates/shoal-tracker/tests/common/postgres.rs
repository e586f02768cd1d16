//! A throwaway PostgreSQL server for the catalog tests, one per test process.
//!
//! [`server`] starts it on first use (`initdb` into a fresh temp dir, trust auth,
//! listening on 127.0.0.1 at a free port and on a unix socket in that dir) and returns
//! `None` after printing a `SKIPPED:` line when PostgreSQL is not installed, unless
//! `SHOAL_INTEROP_REQUIRED=1` (set by `scripts/test`), which makes a missing PostgreSQL a
//! failure as it does for the interop tests' clients; it installs nothing (`scripts/test`
//! does). As root the server runs as the `postgres` user, since
//! PostgreSQL refuses to run as root. [`PgServer::database`] creates an empty database
//! per test, so tests sharing the server stay independent.
//!
//! A static is never dropped, so the server is stopped by an `atexit` hook
//! (`pg_ctl stop`, then the temp dir is removed) and, should the process die without
//! running it (killed by a test-runner timeout), by a watchdog shell that waits for
//! this process to go away, kills the postmaster by the PID in `postmaster.pid` and
//! removes the dir. Every step has a time limit.
//!
//! Shared by the tracker's unit tests, `tests/catalog.rs` and the repository's
//! end-to-end tests through `#[path]`, so it uses only `std` and `libc`.
#![allow(dead_code)] // each includer uses a different subset

use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Printed (to the real stderr, past test output capture) when the tests skip PostgreSQL.
pub const SKIPPED: &str = "SKIPPED: PostgreSQL not installed (apt-get install postgresql)";

const INITDB_LIMIT: Duration = Duration::from_secs(60);
const START_LIMIT: Duration = Duration::from_secs(40);
const CREATEDB_LIMIT: Duration = Duration::from_secs(30);
const STOP_LIMIT: Duration = Duration::from_secs(15);
const START_ATTEMPTS: usize = 3;

/// A running test server.
pub struct PgServer {
    /// Host and port for URLs: `127.0.0.1:PORT`.
    pub addr: String,
    bin: PathBuf,
    dir: PathBuf,
    next_db: AtomicU32,
}

static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();

/// The server of this test process, started on first use; `None` (with a `SKIPPED:`
/// line on stderr) when PostgreSQL is not installed. Panics when it is installed but
/// does not start, and when it is missing while `SHOAL_INTEROP_REQUIRED=1`: those are
/// failures, not skips.
pub fn server() -> Option<&'static PgServer> {
    let server = SERVER.get_or_init(|| {
        let Some(bin) = find_bin_dir() else {
            if std::env::var_os("SHOAL_INTEROP_REQUIRED").is_some_and(|v| v == "1") {
                panic!("{SKIPPED} [SHOAL_INTEROP_REQUIRED=1: PostgreSQL must be installed]");
            }
            return None;
        };
        match PgServer::start(bin) {
            Ok(s) => Some(s),
            Err(e) => panic!("PostgreSQL is installed but the test server did not start: {e}"),
        }
    });
    if server.is_none() {
        let _ = writeln!(std::io::stderr(), "{SKIPPED}");
    }
    server.as_ref()
}

/// A URL of a new, empty database on the server of this process, or `None` (skipped).
pub fn fresh_database() -> Option<String> {
    server().map(PgServer::database)
}

impl PgServer {
    /// Creates an empty database and returns its URL.
    pub fn database(&self) -> String {
        let name = format!(
            "shoal_test_{}_{}",
            std::process::id(),
            self.next_db.fetch_add(1, Ordering::Relaxed)
        );
        let (host, port) = self.addr.split_once(':').unwrap_or(("127.0.0.1", ""));
        let mut cmd = Command::new(self.bin.join("createdb"));
        cmd.args(["-h", host, "-p", port, "-U", "postgres", &name]);
        run(cmd, &self.dir.join("createdb.log"), CREATEDB_LIMIT)
            .unwrap_or_else(|e| panic!("createdb {name}: {e}"));
        format!("postgres://postgres@{}/{name}", self.addr)
    }

    fn start(bin: PathBuf) -> Result<PgServer, String> {
        let owner = server_user()?;
        let dir = unique_dir()?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {} to postgres: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let mut initdb = as_user(Command::new(bin.join("initdb")), owner, &dir);
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
            .args(["--no-locale", "--no-sync"]);
        run(initdb, &dir.join("initdb.log"), INITDB_LIMIT)?;
        register_cleanup(&bin, &dir, owner);
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                dir.display()
            );
            let mut pg_ctl = as_user(Command::new(bin.join("pg_ctl")), owner, &dir);
            pg_ctl
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "-t", "30", "-o", &options, "start"]);
            match run(pg_ctl, &dir.join("pg_ctl.log"), START_LIMIT) {
                Ok(()) => {
                    return Ok(PgServer {
                        addr: format!("127.0.0.1:{port}"),
                        bin,
                        dir,
                        next_db: AtomicU32::new(0),
                    })
                }
                // Most likely the free port was taken meanwhile: try another.
                Err(e) => {
                    last = format!(
                        "{e}\nserver log:\n{}",
                        std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                    )
                }
            }
        }
        Err(last)
    }
}

/// Debian's `/usr/lib/postgresql/<newest version>/bin`, or the directory of `initdb`
/// on `PATH`; `None` when `initdb` or `pg_ctl` is missing.
fn find_bin_dir() -> Option<PathBuf> {
    let usable = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, d)| usable(d))
        .collect();
    debian.sort();
    if let Some((_, d)) = debian.pop() {
        return Some(d);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|d| usable(d))
}

/// `None` when not root; as root, the uid and gid of `postgres` (PostgreSQL refuses to
/// run as root; the Debian package creates that user).
fn server_user() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: getuid has no preconditions and cannot fail.
    if unsafe { libc::getuid() } != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"postgres"))
        .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
        .map(Some)
        .ok_or_else(|| "running as root and there is no `postgres` user to run the server".into())
}

fn as_user(mut cmd: Command, owner: Option<(u32, u32)>, cwd: &Path) -> Command {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
    // The server user may not be able to read the test's working directory.
    cmd.current_dir(cwd);
    for var in [
        "PGDATA",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGOPTIONS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn unique_dir() -> Result<PathBuf, String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "shoal-pg-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// Runs `cmd` with its output in `log`, killing it after `limit`.
fn run(mut cmd: Command, log: &Path, limit: Duration) -> Result<(), String> {
    let out = File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let what = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} did not finish within {limit:?}"));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    if status.success() {
        Ok(())
    } else {
        let output = std::fs::read_to_string(log).unwrap_or_default();
        Err(format!("{what} failed ({status}):\n{output}"))
    }
}

/// What the exit hook needs; set once, before the server starts.
struct Cleanup {
    bin: PathBuf,
    dir: PathBuf,
    owner: Option<(u32, u32)>,
}

static CLEANUP: OnceLock<Cleanup> = OnceLock::new();

fn register_cleanup(bin: &Path, dir: &Path, owner: Option<(u32, u32)>) {
    let first = CLEANUP
        .set(Cleanup {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            owner,
        })
        .is_ok();
    if !first {
        return;
    }
    // SAFETY: `stop_at_exit` is a plain `extern "C" fn()` that never unwinds.
    unsafe { libc::atexit(stop_at_exit) };
    // The watchdog: for a process killed before exit hooks run. Detached, silent, and
    // done within a second of this process going away.
    let data = dir.join("data");
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         pid=$(head -n 1 '{pidfile}' 2>/dev/null) && kill -QUIT \"$pid\" 2>/dev/null; \
         sleep 1; rm -rf '{dir}'",
        pid = std::process::id(),
        pidfile = data.join("postmaster.pid").display(),
        dir = dir.display(),
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
}

extern "C" fn stop_at_exit() {
    let Some(c) = CLEANUP.get() else { return };
    let data = c.dir.join("data");
    if data.join("postmaster.pid").exists() {
        let mut stop = as_user(Command::new(c.bin.join("pg_ctl")), c.owner, &c.dir);
        stop.arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "-t", "10", "stop"]);
        if run(stop, &c.dir.join("stop.log"), STOP_LIMIT).is_err() {
            kill_postmaster(&data);
        }
    }
    let _ = std::fs::remove_dir_all(&c.dir);
}

/// Immediate shutdown by the PID the postmaster recorded.
fn kill_postmaster(data: &Path) {
    let pid = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse::<i32>().ok());
    if let Some(pid) = pid.filter(|p| *p > 0) {
        // SAFETY: sending a signal to a PID we read from our own server's pid file.
        unsafe { libc::kill(pid, libc::SIGQUIT) };
    }
}
