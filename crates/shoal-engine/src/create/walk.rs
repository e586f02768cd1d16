//! Lists the files a new torrent will hold.
//!
//! A folder is walked recursively; files are ordered by their path components (so
//! `a/b` sorts before `a-b`, unlike a plain string sort). Hidden files are included.
//! Symbolic links below the folder are skipped, files and folders alike: following them
//! could leave the folder, loop, or list the same data twice. Sockets, FIFOs and devices
//! are skipped too. The path given by the user is followed even if it is a link.

use super::CreateError;
use std::fs;
use std::path::{Path, PathBuf};

/// One file to hash, in torrent order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SourceFile {
    /// Path components below the torrent root (the name itself for a single file).
    pub components: Vec<String>,
    /// Where to read it.
    pub path: PathBuf,
    /// Length when listed.
    pub length: u64,
}

/// What `path` will become: its name, files, and whether it is a single-file torrent.
#[derive(Debug)]
pub(super) struct Listing {
    pub name: String,
    pub files: Vec<SourceFile>,
    pub single_file: bool,
}

/// Lists `path`: a file gives a single-file torrent, a folder a multi-file one.
pub(super) fn list(path: &Path) -> Result<Listing, CreateError> {
    let meta = fs::metadata(path).map_err(|source| CreateError::NotFound {
        path: path.into(),
        source,
    })?;
    let name = torrent_name(path)?;
    if meta.is_file() {
        let files = vec![SourceFile {
            components: vec![name.clone()],
            path: path.into(),
            length: meta.len(),
        }];
        return Ok(Listing {
            name,
            files,
            single_file: true,
        });
    }
    if !meta.is_dir() {
        return Err(CreateError::Unsupported { path: path.into() });
    }
    let mut files = Vec::new();
    let mut stack = vec![(path.to_path_buf(), Vec::new())];
    while let Some((dir, prefix)) = stack.pop() {
        walk_dir(&dir, &prefix, &mut files, &mut stack)?;
    }
    if files.is_empty() {
        return Err(CreateError::EmptyFolder { path: path.into() });
    }
    files.sort_unstable_by(|a, b| a.components.cmp(&b.components));
    Ok(Listing {
        name,
        files,
        single_file: false,
    })
}

/// Adds the files of `dir` to `files` and its subfolders to `stack`.
fn walk_dir(
    dir: &Path,
    prefix: &[String],
    files: &mut Vec<SourceFile>,
    stack: &mut Vec<(PathBuf, Vec<String>)>,
) -> Result<(), CreateError> {
    let walk_err = |source| CreateError::Walk {
        path: dir.into(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(walk_err)? {
        let entry = entry.map_err(walk_err)?;
        let path = entry.path();
        // `DirEntry::file_type` does not follow symlinks.
        let kind = entry.file_type().map_err(|source| CreateError::Walk {
            path: path.clone(),
            source,
        })?;
        if kind.is_symlink() {
            tracing::info!(path = %path.display(), "skipping symbolic link");
            continue;
        }
        if !kind.is_dir() && !kind.is_file() {
            tracing::info!(path = %path.display(), "skipping special file");
            continue;
        }
        let mut components = prefix.to_vec();
        components.push(component(&entry.file_name(), &path)?);
        if kind.is_dir() {
            stack.push((path, components));
        } else {
            let length = entry
                .metadata()
                .map_err(|source| CreateError::Walk {
                    path: path.clone(),
                    source,
                })?
                .len();
            files.push(SourceFile {
                components,
                path,
                length,
            });
        }
    }
    Ok(())
}

/// The torrent name: the base name of `path`, or of its canonical form for `.` or `..`.
fn torrent_name(path: &Path) -> Result<String, CreateError> {
    let canonical;
    let base = match path.file_name() {
        Some(base) => base,
        None => {
            canonical = fs::canonicalize(path).map_err(|source| CreateError::NotFound {
                path: path.into(),
                source,
            })?;
            canonical
                .file_name()
                .ok_or_else(|| CreateError::NoName { path: path.into() })?
        }
    };
    component(base, path)
}

/// A path component as the torrent stores it: UTF-8, with no backslash (which other
/// systems would read as a separator, and which metainfo validation rejects).
fn component(name: &std::ffi::OsStr, path: &Path) -> Result<String, CreateError> {
    match name.to_str() {
        Some(s) if !s.contains('\\') => Ok(s.to_string()),
        _ => Err(CreateError::BadName { path: path.into() }),
    }
}
