//! The watch folder (`watch_dir`): `.torrent` files and `.magnet` files (a text file
//! holding a magnet link) put there are added with the default save folder, then
//! moved to `added/` inside it; a file that cannot be added goes to `failed/`, with
//! the reason in `NAME.error.txt` beside it.
//!
//! The folder is polled every 2 s (no inotify: a poll also works on network mounts
//! and costs one directory listing). A file is taken once its size and modification
//! time are the same in two polls in a row, so one still being written is left alone.
//! A torrent that is already added counts as added (as Transmission's watch folder
//! does): the file goes to `added/`. Subfolders are not searched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{AddError, AddRequest, Node};

/// How often the folder is listed.
const POLL: Duration = Duration::from_secs(2);
/// Largest file taken (a `.torrent` may hold a 32 MiB info dictionary).
const MAX_FILE: u64 = 40 << 20;
/// Where added files go, inside the watch folder.
const ADDED: &str = "added";
/// Where files that failed go, with their reasons.
const FAILED: &str = "failed";

/// What a file looked like at the last poll.
type Stamp = (u64, Option<SystemTime>);

/// Polls the watch folder until the node stops.
pub(crate) async fn run(node: Node) {
    let cancel = node.inner().cancel.clone();
    let mut seen: HashMap<PathBuf, Stamp> = HashMap::new();
    let mut warned: Option<PathBuf> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = cancel.cancelled() => return,
        }
        let Some(dir) = node.settings().auto.watch_dir else {
            seen.clear();
            continue;
        };
        let d = dir.clone();
        let listing = match tokio::task::spawn_blocking(move || list(&d)).await {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                if warned.as_ref() != Some(&dir) {
                    tracing::warn!("cannot read the watch folder {}: {e}", dir.display());
                    warned = Some(dir);
                }
                continue;
            }
            Err(_) => continue,
        };
        warned = None;
        let mut next = HashMap::new();
        let mut ready = Vec::new();
        for (path, stamp) in listing {
            if seen.get(&path) == Some(&stamp) {
                ready.push(path);
            } else {
                next.insert(path, stamp);
            }
        }
        seen = next;
        for path in ready {
            take(&node, &dir, path).await;
        }
    }
}

/// The `.torrent` and `.magnet` files directly in `dir`, with their stamps.
fn list(dir: &Path) -> std::io::Result<Vec<(PathBuf, Stamp)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if kind(&path).is_none() {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() {
            out.push((path, (meta.len(), meta.modified().ok())));
        }
    }
    Ok(out)
}

/// What a watched file holds, by its extension (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Torrent,
    Magnet,
}

fn kind(path: &Path) -> Option<Kind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "torrent" => Some(Kind::Torrent),
        "magnet" => Some(Kind::Magnet),
        _ => None,
    }
}

/// Adds one file and moves it to `added/` or `failed/`.
async fn take(node: &Node, dir: &Path, path: PathBuf) {
    let result = add(node, &path).await;
    let name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let (sub, reason) = match &result {
        Ok(()) => (ADDED, None),
        Err(reason) => (FAILED, Some(reason.clone())),
    };
    match &reason {
        None => tracing::info!("added {} from the watch folder", path.display()),
        Some(r) => tracing::warn!("cannot add {} from the watch folder: {r}", path.display()),
    }
    let to = dir.join(sub);
    let moved = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&to)?;
        let dest = free_name(&to, &name);
        std::fs::rename(&path, &dest)?;
        if let Some(r) = reason {
            let mut note = dest.into_os_string();
            note.push(".error.txt");
            std::fs::write(note, format!("{r}\n"))?;
        }
        Ok(())
    })
    .await;
    if let Ok(Err(e)) = moved {
        tracing::warn!("cannot move a file out of the watch folder: {e}");
    }
}

/// `dir/name`, or `dir/name.N` for the first N that is free.
fn free_name(dir: &Path, name: &std::ffi::OsStr) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    (1..)
        .map(|n| {
            let mut s = name.to_os_string();
            s.push(format!(".{n}"));
            dir.join(s)
        })
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Adds the torrent or magnet in `path`; the reason when it cannot.
async fn add(node: &Node, path: &Path) -> Result<(), String> {
    let Some(kind) = kind(path) else {
        return Err("neither a .torrent nor a .magnet file".into());
    };
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if meta.len() > MAX_FILE {
        return Err(format!(
            "the file is {} bytes, more than any .torrent (at most {MAX_FILE})",
            meta.len()
        ));
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| format!("cannot read the file: {e}"))?;
    let r = match kind {
        Kind::Torrent => {
            let req = AddRequest {
                torrent: bytes,
                save_dir: None,
                paused: false,
                complete: false,
                peers: Vec::new(),
                wanted: None,
            };
            node.add(req).await
        }
        Kind::Magnet => {
            let text = String::from_utf8(bytes)
                .map_err(|_| "a .magnet file holds a magnet link as text, this is not text")?;
            let uri = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .ok_or("the .magnet file is empty: put a magnet link in it")?;
            node.add_magnet(uri, None, false).await
        }
    };
    match r {
        Ok(_) | Err(AddError::Duplicate(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_extension_and_free_names() {
        assert_eq!(kind(Path::new("/w/a.TORRENT")), Some(Kind::Torrent));
        assert_eq!(kind(Path::new("/w/a.magnet")), Some(Kind::Magnet));
        assert_eq!(kind(Path::new("/w/a.torrent.part")), None);
        assert_eq!(kind(Path::new("/w/magnet")), None);
        let dir = tempfile::tempdir().unwrap();
        let n = std::ffi::OsStr::new("x.torrent");
        assert_eq!(free_name(dir.path(), n), dir.path().join("x.torrent"));
        std::fs::write(dir.path().join("x.torrent"), b"").unwrap();
        assert_eq!(free_name(dir.path(), n), dir.path().join("x.torrent.1"));
    }
}
