//! Opening (and for downloads, creating) one torrent file according to [`OpenMode`].

use super::{OpenMode, StorageError};
use shoal_proto::metainfo::Info;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// Opens the file at `path` that should hold `length` bytes. Returns the open file
/// (`None` for zero-length files, which are checked (seed) or created (download) but not
/// kept open, and in download mode for files that do not exist yet: they are created on
/// their first write) and how many bytes the file held before it was opened (data that
/// may be valid).
pub(super) fn open_file(
    path: &Path,
    length: u64,
    mode: OpenMode,
) -> Result<(Option<File>, u64), StorageError> {
    let (file, existing) = match mode {
        OpenMode::Seed => (open_for_seeding(path, length)?, length),
        OpenMode::Download if length > 0 && !exists(path)? => return Ok((None, 0)),
        OpenMode::Download => create_file(path, length)?,
    };
    Ok(((length > 0).then_some(file), existing))
}

/// Creates the folder that holds the torrent's data (the save folder for a single file,
/// `save_dir/name` for several), so that an unwritable destination fails at open.
pub(super) fn create_root(save_dir: &Path, info: &Info) -> Result<(), StorageError> {
    let root = if info.single_file {
        save_dir.to_path_buf()
    } else {
        save_dir.join(&info.name)
    };
    fs::create_dir_all(&root).map_err(|source| {
        StorageError::creating(root, source, |path, source| StorageError::CreateDir {
            path,
            source,
        })
    })
}

/// Whether anything is at `path` (a folder there is reported when it is opened).
fn exists(path: &Path) -> Result<bool, StorageError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(false)
        }
        Err(source) => Err(StorageError::Open {
            path: path.into(),
            source,
        }),
    }
}

fn open_for_seeding(path: &Path, length: u64) -> Result<File, StorageError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => StorageError::Missing { path: path.into() },
        _ => StorageError::Open {
            path: path.into(),
            source,
        },
    })?;
    let actual = file_len(&file, path)?;
    if actual != length {
        return Err(StorageError::WrongSize {
            path: path.into(),
            expected: length,
            actual,
        });
    }
    Ok(file)
}

/// Opens or creates (with its folders) the file at `path` for writing and extends it to
/// `length` bytes (sparse); returns it with the length it had before.
pub(super) fn create_file(path: &Path, length: u64) -> Result<(File, u64), StorageError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|source| {
            StorageError::creating(parent.into(), source, |path, source| {
                StorageError::CreateDir { path, source }
            })
        })?;
    }
    // Never `truncate(true)`: existing data is kept and checked, not thrown away.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| {
            if path.is_dir() {
                StorageError::NotAFile { path: path.into() }
            } else {
                StorageError::creating(path.into(), source, |path, source| StorageError::Open {
                    path,
                    source,
                })
            }
        })?;
    let actual = file_len(&file, path)?;
    if actual > length {
        return Err(StorageError::TooLarge {
            path: path.into(),
            expected: length,
            actual,
        });
    }
    if actual < length {
        // Sparse: no blocks are allocated until pieces are written.
        file.set_len(length)
            .map_err(|source| StorageError::Resize {
                path: path.into(),
                length,
                source,
            })?;
    }
    Ok((file, actual))
}

/// Length of an open regular file; anything else (a folder, a device) is an error.
fn file_len(file: &File, path: &Path) -> Result<u64, StorageError> {
    let meta = file.metadata().map_err(|source| StorageError::Open {
        path: path.into(),
        source,
    })?;
    if !meta.is_file() {
        return Err(StorageError::NotAFile { path: path.into() });
    }
    Ok(meta.len())
}
