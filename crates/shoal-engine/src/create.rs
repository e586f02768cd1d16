//! Creating a new `.torrent` (v1) from a file or folder.
//!
//! [`create_torrent`] lists the files (see the `walk` rules: recursive, sorted by path
//! components, hidden files included, symbolic links skipped), hashes the pieces in
//! parallel (one worker per core, each reading its own chunks with 1 MiB positional
//! reads into a reused page-aligned buffer and hashing each read; see `hash`), builds
//! the `info` dictionary with [`InfoBuilder`], and parses the finished file with
//! [`Metainfo::from_bytes`] so the info-hash is over the exact bytes written. Files are
//! only read, never mapped, and no signal handler is installed: a file that gets
//! shorter while it is hashed is a short read, reported as [`CreateError::Changed`]. It
//! blocks for as long as reading the data takes: call it from a thread or
//! `spawn_blocking`, never on the async runtime.

mod hash;
mod walk;

use shoal_proto::bencode::Encoder;
use shoal_proto::metainfo::{
    default_piece_length, InfoBuilder, Metainfo, MetainfoError, MAX_FILES, MAX_PIECE_LENGTH,
};
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Smallest piece length accepted (one block).
pub const MIN_PIECE_LENGTH: u64 = 16 << 10;

/// Settings for a new torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// Tracker URLs. The first is `announce`; with more than one, all go into
    /// `announce-list`, one tier each (BEP 12). Empty: a trackerless torrent.
    pub trackers: Vec<String>,
    /// Bytes per piece: a power of two from 16 KiB to 64 MiB. `None` picks
    /// [`default_piece_length`] for the total size.
    pub piece_length: Option<u64>,
    /// Sets the BEP 27 private flag (trackers only, no DHT or PEX).
    pub private: bool,
    /// Free-text `comment`.
    pub comment: Option<String>,
    /// `created by`; omitted when empty.
    pub created_by: String,
    /// `creation date` in Unix seconds; `None` leaves it out (reproducible output).
    pub creation_date: Option<i64>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            trackers: Vec::new(),
            piece_length: None,
            private: false,
            comment: None,
            created_by: concat!("Shoal ", env!("CARGO_PKG_VERSION")).to_string(),
            creation_date: None,
        }
    }
}

/// Why a torrent could not be created.
#[derive(Debug, Error)]
pub enum CreateError {
    /// The path does not exist or cannot be examined.
    #[error("cannot read {path}: {source}; check the path")]
    NotFound {
        /// The path given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The path is neither a regular file nor a folder.
    #[error("{path} is neither a file nor a folder: give a file or a folder to share")]
    Unsupported {
        /// The path given.
        path: PathBuf,
    },
    /// The path has no usable base name (the file system root, say).
    #[error("{path} has no name to give the torrent: give a file or a named folder")]
    NoName {
        /// The path given.
        path: PathBuf,
    },
    /// The folder holds no files (symbolic links are skipped).
    #[error("{path} holds no files to share (symbolic links are skipped): add files or choose another folder")]
    EmptyFolder {
        /// The folder.
        path: PathBuf,
    },
    /// Every file is empty; a torrent needs at least one byte.
    #[error("{path} holds only empty files: a torrent needs at least one byte of data")]
    NoData {
        /// The path given.
        path: PathBuf,
    },
    /// A file or folder name that cannot go into a torrent.
    #[error("the name of {path} is not valid UTF-8 or contains a backslash: rename it")]
    BadName {
        /// The offending path.
        path: PathBuf,
    },
    /// An invalid `piece_length` option.
    #[error("piece length {0} is invalid: use a power of two from 16 KiB (16384) to 64 MiB")]
    PieceLength(u64),
    /// A folder (or an entry in it) could not be listed.
    #[error("cannot list {path}: {source}; check permissions")]
    Walk {
        /// The folder or entry.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file could not be opened or read.
    #[error("cannot read {path} at offset {offset}: {source}; check the file and try again")]
    Read {
        /// The file.
        path: PathBuf,
        /// Offset of the failed read.
        offset: u64,
        /// The OS error.
        source: io::Error,
    },
    /// A file got shorter while it was being hashed.
    #[error(
        "{path} changed while hashing (listed as {expected} bytes, ended at {actual}): \
         wait until nothing is writing it and try again"
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// Length when listed.
        expected: u64,
        /// Bytes actually read.
        actual: u64,
    },
    /// The result would not be a valid torrent (too many files or pieces, say).
    #[error("cannot make a valid torrent: {0}")]
    Invalid(#[source] MetainfoError),
}

/// Creates a torrent from `path`, a file (single-file torrent named after it) or a folder
/// (multi-file torrent named after the folder). `progress` gets (bytes hashed, total
/// bytes) from the hashing threads, one call at a time, never decreasing. Blocking.
pub fn create_torrent(
    path: &Path,
    opts: &CreateOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Metainfo, CreateError> {
    let listing = walk::list(path)?;
    if listing.files.len() > MAX_FILES {
        return Err(CreateError::Invalid(MetainfoError::Invalid(format!(
            "{} files is more than the {MAX_FILES} a torrent may hold",
            listing.files.len()
        ))));
    }
    let total = listing
        .files
        .iter()
        .try_fold(0u64, |sum, f| sum.checked_add(f.length))
        .ok_or_else(|| {
            CreateError::Invalid(MetainfoError::Invalid("total size overflows".into()))
        })?;
    if total == 0 {
        return Err(CreateError::NoData { path: path.into() });
    }
    let piece_length = match opts.piece_length {
        Some(pl) if pl.is_power_of_two() && (MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&pl) => {
            pl
        }
        Some(pl) => return Err(CreateError::PieceLength(pl)),
        None => default_piece_length(total),
    };
    if total.div_ceil(piece_length) > u64::from(u32::MAX) {
        return Err(CreateError::Invalid(MetainfoError::Invalid(format!(
            "{total} bytes need more than 2^32 pieces of {piece_length} bytes; use larger pieces"
        ))));
    }
    let pieces = hash::hash_pieces(&listing.files, piece_length, total, progress)?;
    let builder = InfoBuilder {
        name: listing.name,
        piece_length,
        files: listing
            .files
            .into_iter()
            .map(|f| (f.components, f.length))
            .collect(),
        single_file: listing.single_file,
        private: opts.private,
    };
    let bytes = encode_torrent(opts, &builder.encode(&pieces));
    Metainfo::from_bytes(&bytes).map_err(CreateError::Invalid)
}

/// The whole `.torrent` around an encoded `info` dict, keys in sorted order.
fn encode_torrent(opts: &CreateOptions, info: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.dict();
    if let Some(first) = opts.trackers.first() {
        e.str("announce").str(first);
    }
    if opts.trackers.len() > 1 {
        e.str("announce-list").list();
        for t in &opts.trackers {
            e.list().str(t).end();
        }
        e.end();
    }
    if let Some(c) = &opts.comment {
        e.str("comment").str(c);
    }
    if !opts.created_by.is_empty() {
        e.str("created by").str(&opts.created_by);
    }
    if let Some(d) = opts.creation_date {
        e.str("creation date").int(d);
    }
    e.str("info").raw(info);
    e.end();
    e.finish()
}

#[cfg(test)]
mod tests;
