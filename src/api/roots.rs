//! The folders the API may touch: the configured share roots and the download dir.
//! `/api/fs` lists only inside them, `/api/share` shares only from them and `save_dir`
//! (`POST /api/torrents`, `/api/get`) must lie in them, so whoever reaches the API cannot
//! read or write anywhere else through it.
//!
//! Paths are compared canonical (symlinks resolved), so a link inside a root that points
//! out of it does not count as inside. Canonicalising touches the disk: it runs on the
//! blocking pool.

use std::path::{Component, Path, PathBuf};

use super::{ApiError, ApiResult};
use crate::node::Node;

/// The allowed roots: the configured share roots and the download dir, canonical,
/// without duplicates, in that order (those that do not exist are left out).
pub async fn roots(node: &Node) -> Vec<PathBuf> {
    let mut r: Vec<PathBuf> = node.config().share_roots.clone();
    r.push(node.settings().download_dir);
    tokio::task::spawn_blocking(move || canonical_roots(r))
        .await
        .unwrap_or_default()
}

fn canonical_roots(r: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in r.into_iter().filter_map(|p| p.canonicalize().ok()) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// "outside the share roots" with what they are and how to add one.
pub fn outside(path: &Path, roots: &[PathBuf]) -> ApiError {
    ApiError::bad_request(format!(
        "{} is outside the folders this node may use ({}); add it to share_roots in \
         config.toml (or --share-root), or use a folder inside them",
        path.display(),
        roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// `path` (absolute, existing) canonical, if it lies within a root; else 400.
pub async fn existing_within(node: &Node, path: PathBuf) -> ApiResult<PathBuf> {
    let roots = roots(node).await;
    tokio::task::spawn_blocking(move || {
        if !path.is_absolute() {
            return Err(ApiError::bad_request(format!(
                "{} is not an absolute path",
                path.display()
            )));
        }
        let canon = path.canonicalize().map_err(|_| {
            ApiError::bad_request(format!(
                "{} does not exist; give a file or folder on the node's machine",
                path.display()
            ))
        })?;
        inside(&canon, &roots).ok_or_else(|| outside(&path, &roots))?;
        Ok(canon)
    })
    .await
    .map_err(|e| ApiError::internal(e.into()))?
}

/// A folder to save into (it may not exist yet), if it lies within a root; else 400.
/// Returned as given: the torrent's data goes where the user said.
pub async fn save_dir_within(node: &Node, dir: PathBuf) -> ApiResult<PathBuf> {
    let roots = roots(node).await;
    tokio::task::spawn_blocking(move || {
        let canon = canonical_target(&dir)?;
        inside(&canon, &roots).ok_or_else(|| outside(&dir, &roots))?;
        Ok(dir)
    })
    .await
    .map_err(|e| ApiError::internal(e.into()))?
}

/// The root `canon` lies in.
pub fn inside<'a>(canon: &Path, roots: &'a [PathBuf]) -> Option<&'a PathBuf> {
    roots.iter().find(|r| canon.starts_with(r))
}

/// `path` with its longest existing ancestor canonicalised and the rest appended; `..`
/// is refused (it could climb out after a folder that does not exist yet).
fn canonical_target(path: &Path) -> ApiResult<PathBuf> {
    if !path.is_absolute() {
        return Err(ApiError::bad_request(format!(
            "save_dir {} is not an absolute path",
            path.display()
        )));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(ApiError::bad_request(format!(
            "save_dir {} contains \"..\"; give a plain absolute path",
            path.display()
        )));
    }
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            return Ok(rest.iter().rev().fold(c, |acc, part| acc.join(part)));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "save_dir {} cannot be resolved",
                    path.display()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_through_existing_ancestors_and_links() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let out = t.path().join("out");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        let roots = canonical_roots(vec![root.clone()]);
        let ok = canonical_target(&root.join("a/new/deeper")).unwrap();
        assert!(inside(&ok, &roots).is_some(), "{}", ok.display());
        let escaped = canonical_target(&out.join("x")).unwrap();
        assert!(inside(&escaped, &roots).is_none());
        assert!(canonical_target(&root.join("new/../../out")).is_err());
        assert!(canonical_target(Path::new("relative/dir")).is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&out, root.join("link")).unwrap();
            let via_link = canonical_target(&root.join("link/new")).unwrap();
            assert!(
                inside(&via_link, &roots).is_none(),
                "{}",
                via_link.display()
            );
        }
        // A root's sibling with the root's name as prefix is not inside it.
        std::fs::create_dir_all(t.path().join("rootx")).unwrap();
        let sibling = canonical_target(&t.path().join("rootx/y")).unwrap();
        assert!(inside(&sibling, &roots).is_none());
    }
}
