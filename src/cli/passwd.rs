//! `shoal passwd`: sets the password of the web UI and API login. It asks twice on a
//! terminal (without echo) or reads two lines from stdin otherwise, and stores the
//! Argon2id hash as `web_password` in `<data dir>/config.toml` (with `web_user` when
//! `--web-user` is given). The rest of the file is kept as it was, comments included.
//! A running node picks the new password up within seconds (see `api::auth`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

use crate::api::auth::password;
use crate::config;

/// Options of `shoal passwd`.
#[derive(Args, Debug, Clone)]
pub struct PasswdArgs {
    /// Data dir of the node (default: the platform's data dir for shoal).
    #[arg(long, env = "SHOAL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Also set the login user name (default: keep the current one; at first, admin).
    #[arg(long, value_name = "NAME")]
    pub web_user: Option<String>,
}

pub async fn run(args: PasswdArgs) -> anyhow::Result<ExitCode> {
    tokio::task::spawn_blocking(move || set(&args))
        .await
        .context("the command's thread failed")?
}

fn set(args: &PasswdArgs) -> anyhow::Result<ExitCode> {
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(config::default_data_dir);
    if let Some(user) = &args.web_user {
        if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
            bail!("--web-user needs a name without ':' or control characters");
        }
    }
    let (first, second) = if std::io::stdin().is_terminal() {
        (
            read_hidden("New web UI password: ")?,
            read_hidden("Repeat it: ")?,
        )
    } else {
        let mut lines = std::io::stdin().lock().lines();
        let mut next = || -> anyhow::Result<String> {
            Ok(lines
                .next()
                .transpose()
                .context("reading the password from stdin")?
                .unwrap_or_default())
        };
        (next()?, next()?)
    };
    let first = strip_line_end(first);
    if first.is_empty() {
        bail!("the password is empty; nothing changed");
    }
    if first != strip_line_end(second) {
        bail!("the two passwords differ; nothing changed");
    }
    let hash = password::hash(&first)?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the data dir {}", dir.display()))?;
    let path = config::config_path(&dir);
    write_config(&path, args.web_user.as_deref(), &hash)?;
    let user = config::web_credentials(&dir)?
        .0
        .unwrap_or_else(|| config::DEFAULT_WEB_USER.to_string());
    println!(
        "web UI password set for {user} in {}; a running node uses it within seconds \
         (and ends its sessions)",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Drops the line end a terminal or pipe leaves (`\n`, `\r\n`), nothing else.
fn strip_line_end(mut s: String) -> String {
    while s.ends_with('\n') || s.ends_with('\r') {
        s.pop();
    }
    s
}

/// Reads a line from the terminal on stdin with echo off.
fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{prompt}");
    let _ = err.flush();
    let fd = libc::STDIN_FILENO;
    // SAFETY: an all-zero termios is a valid value for tcgetattr to overwrite.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is stdin, a terminal (checked by the caller); `term` is writable.
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        return Err(std::io::Error::last_os_error()).context("reading the terminal's settings");
    }
    let saved = term;
    term.c_lflag &= !libc::ECHO;
    term.c_lflag |= libc::ECHONL;
    // SAFETY: as above; `term` came from tcgetattr with one flag changed.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    read.context("reading the password")?;
    Ok(line)
}

/// `old` (a `config.toml`) with `web_password` (and `web_user` when given) replaced.
/// The file holds top-level keys only (`FileConfig` has no tables), so appending is safe.
fn updated(old: &str, user: Option<&str>, hash: &str) -> anyhow::Result<String> {
    let mut out = String::with_capacity(old.len() + 128);
    for line in old.lines() {
        let key = line
            .trim_start()
            .split(|c: char| c == '=' || c.is_whitespace())
            .next()
            .unwrap_or("");
        if key == "web_password" || (user.is_some() && key == "web_user") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if let Some(user) = user {
        // A JSON string is a valid TOML basic string.
        out.push_str(&format!("web_user = {}\n", serde_json::to_string(user)?));
    }
    // PHC strings hold no quote: a literal string needs no escaping.
    out.push_str(&format!("web_password = '{hash}'\n"));
    config::validate_file(&out)?;
    Ok(out)
}

/// Replaces `path` atomically with the updated text (mode 0600 when new).
fn write_config(path: &Path, user: Option<&str>, hash: &str) -> anyhow::Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let text = updated(old.as_deref().unwrap_or(""), user, hash)
        .with_context(|| format!("{} could not be updated", path.display()))?;
    let tmp = path.with_extension("toml.tmp");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mode = match std::fs::metadata(path) {
            Ok(m) => std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777,
            Err(_) => 0o600,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_other_lines_and_replaces_the_credentials() {
        let old = "# my node\nport = 6001\nweb_password = 'old'\nweb_user = \"bob\"\n\
                   share_roots = [\n  \"/srv\",\n]\n";
        let new = updated(old, None, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").unwrap();
        assert!(new.starts_with("# my node\nport = 6001\n"), "{new}");
        assert!(new.contains("web_user = \"bob\""));
        assert!(!new.contains("'old'"));
        assert!(new.contains("\"/srv\""));
        assert_eq!(new.matches("web_password").count(), 1);
        let new = updated(&new, Some("a \"quoted\" name"), "$argon2id$x").unwrap();
        assert_eq!(new.matches("web_user").count(), 1);
        assert!(new.contains(r#"web_user = "a \"quoted\" name""#), "{new}");
        // A file that was not valid before is not made worse silently.
        assert!(updated("nonsense = 1\n", None, "h").is_err());
    }

    #[test]
    fn line_ends_are_stripped_but_spaces_kept() {
        assert_eq!(strip_line_end(" pw \r\n".into()), " pw ");
        assert_eq!(strip_line_end("pw".into()), "pw");
    }
}
