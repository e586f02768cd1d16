//! `.torrent` metainfo, BitTorrent v1 (BEP 3), with `announce-list` (BEP 12) and
//! `private` (BEP 27).
//!
//! [`Metainfo::from_bytes`] validates everything a client relies on: piece count matches
//! the total length, file paths are relative and free of `..`, lengths fit in `u64`.
//! The info-hash is the SHA-1 of the raw `info` bytes as they appear in the file.
//! [`InfoBuilder`] builds a new `info` dictionary from file lengths and piece hashes.

use crate::bencode::{self, BencodeError, Encoder, Value};
use crate::ids::InfoHash;
use thiserror::Error;

/// Largest piece length accepted (64 MiB); larger is almost certainly hostile.
pub const MAX_PIECE_LENGTH: u64 = 64 << 20;
/// Most files accepted in one torrent.
pub const MAX_FILES: usize = 1_000_000;

/// Why a `.torrent` was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetainfoError {
    /// Not valid bencode.
    #[error("not a valid .torrent file: {0}")]
    Bencode(#[from] BencodeError),
    /// A required key is missing or has the wrong type.
    #[error("not a valid .torrent file: `{0}` is missing or has the wrong type")]
    Field(&'static str),
    /// A value is out of range or inconsistent.
    #[error("not a valid .torrent file: {0}")]
    Invalid(String),
    /// A file path that could escape the download folder.
    #[error("unsafe file path in .torrent: {0:?} (paths must be relative, without `..`)")]
    UnsafePath(String),
}

/// One file of a torrent, in torrent order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Path components below the torrent's root folder (just `[name]` for single-file torrents).
    pub path: Vec<String>,
    /// Length in bytes (may be zero).
    pub length: u64,
    /// Offset of the file's first byte in the torrent's concatenated data.
    pub offset: u64,
}

/// The `info` dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Suggested name of the file (single-file) or root folder (multi-file).
    pub name: String,
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u64,
    /// SHA-1 of each piece.
    pub pieces: Vec<[u8; 20]>,
    /// Files in order. Single-file torrents have one entry whose path is `[name]`.
    pub files: Vec<FileInfo>,
    /// True for a single-file torrent (`length` key), false for `files`.
    pub single_file: bool,
    /// BEP 27 private flag.
    pub private: bool,
    /// Sum of file lengths.
    pub total_length: u64,
}

impl Info {
    /// Number of pieces.
    pub fn num_pieces(&self) -> u32 {
        self.pieces.len() as u32
    }
    /// Length of piece `index` (the last one may be shorter); 0 if out of range.
    pub fn piece_size(&self, index: u32) -> u64 {
        let start = u64::from(index) * self.piece_length;
        if start >= self.total_length {
            return 0;
        }
        (self.total_length - start).min(self.piece_length)
    }
    /// Relative filesystem path of a file below the save directory: `name/path...` for
    /// multi-file torrents, `name` for single-file ones.
    pub fn file_rel_path(&self, file: &FileInfo) -> std::path::PathBuf {
        let mut p = std::path::PathBuf::from(&self.name);
        if !self.single_file {
            p.extend(&file.path);
        }
        p
    }

    /// Parses and validates an `info` dictionary value.
    pub fn from_value(v: &Value<'_>) -> Result<Info, MetainfoError> {
        let name = v
            .get("name")
            .and_then(Value::as_bytes)
            .ok_or(MetainfoError::Field("info.name"))?;
        let name = check_component(&String::from_utf8_lossy(name))?;
        let piece_length = v
            .get("piece length")
            .and_then(Value::as_int)
            .ok_or(MetainfoError::Field("info.piece length"))?;
        let piece_length = u64::try_from(piece_length)
            .ok()
            .filter(|&p| p > 0 && p <= MAX_PIECE_LENGTH)
            .ok_or_else(|| {
                MetainfoError::Invalid(format!(
                    "piece length {piece_length} is out of range (1 to {MAX_PIECE_LENGTH})"
                ))
            })?;
        let pieces_raw = v
            .get("pieces")
            .and_then(Value::as_bytes)
            .ok_or(MetainfoError::Field("info.pieces"))?;
        if pieces_raw.len() % 20 != 0 {
            return Err(MetainfoError::Invalid(format!(
                "`pieces` is {} bytes, not a multiple of 20",
                pieces_raw.len()
            )));
        }
        let pieces: Vec<[u8; 20]> = pieces_raw
            .chunks_exact(20)
            .map(|c| {
                let mut h = [0u8; 20];
                h.copy_from_slice(c);
                h
            })
            .collect();
        let private = v.get("private").and_then(Value::as_int) == Some(1);

        let (files, single_file) = match (v.get("length"), v.get("files")) {
            (Some(len), None) => {
                let length = len
                    .as_int()
                    .and_then(|l| u64::try_from(l).ok())
                    .ok_or(MetainfoError::Field("info.length"))?;
                let f = FileInfo {
                    path: vec![name.clone()],
                    length,
                    offset: 0,
                };
                (vec![f], true)
            }
            (None, Some(files)) => (parse_files(files)?, false),
            _ => {
                return Err(MetainfoError::Invalid(
                    "info must have exactly one of `length` and `files`".into(),
                ))
            }
        };
        let total_length = files.last().map_or(0, |f| f.offset + f.length);
        if total_length == 0 {
            return Err(MetainfoError::Invalid("the torrent holds no data".into()));
        }
        let expected = total_length.div_ceil(piece_length);
        if expected != pieces.len() as u64 {
            return Err(MetainfoError::Invalid(format!(
                "{} piece hashes for {total_length} bytes in pieces of {piece_length}; expected {expected}",
                pieces.len()
            )));
        }
        if expected > u64::from(crate::wire::MAX_PIECES) {
            return Err(MetainfoError::Invalid(format!(
                "{expected} pieces is more than the {} a peer bitfield can carry; use larger pieces",
                crate::wire::MAX_PIECES
            )));
        }
        Ok(Info {
            name,
            piece_length,
            pieces,
            files,
            single_file,
            private,
            total_length,
        })
    }
}

fn parse_files(files: &Value<'_>) -> Result<Vec<FileInfo>, MetainfoError> {
    let list = files.as_list().ok_or(MetainfoError::Field("info.files"))?;
    if list.is_empty() {
        return Err(MetainfoError::Invalid("`files` is empty".into()));
    }
    if list.len() > MAX_FILES {
        return Err(MetainfoError::Invalid(format!(
            "{} files is more than the {MAX_FILES} accepted",
            list.len()
        )));
    }
    let mut out = Vec::with_capacity(list.len());
    let mut offset: u64 = 0;
    let mut seen = std::collections::HashSet::new();
    for f in list {
        let length = f
            .get("length")
            .and_then(Value::as_int)
            .and_then(|l| u64::try_from(l).ok())
            .ok_or(MetainfoError::Field("info.files.length"))?;
        let comps = f
            .get("path")
            .and_then(Value::as_list)
            .ok_or(MetainfoError::Field("info.files.path"))?;
        if comps.is_empty() {
            return Err(MetainfoError::UnsafePath(String::new()));
        }
        let path = comps
            .iter()
            .map(|c| {
                let b = c
                    .as_bytes()
                    .ok_or(MetainfoError::Field("info.files.path"))?;
                check_component(&String::from_utf8_lossy(b))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !seen.insert(path.clone()) {
            return Err(MetainfoError::Invalid(format!(
                "file {:?} is listed twice",
                path.join("/")
            )));
        }
        out.push(FileInfo {
            path,
            length,
            offset,
        });
        offset = offset
            .checked_add(length)
            .ok_or_else(|| MetainfoError::Invalid("total length overflows".into()))?;
    }
    Ok(out)
}

/// Rejects path components that could escape the save folder or are not portable.
fn check_component(c: &str) -> Result<String, MetainfoError> {
    let bad = c.is_empty() || c == "." || c == ".." || c.contains(['/', '\\', '\0']);
    if bad {
        return Err(MetainfoError::UnsafePath(c.to_string()));
    }
    Ok(c.to_string())
}

/// A parsed `.torrent` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    /// The validated `info` dictionary.
    pub info: Info,
    /// SHA-1 of the raw `info` bytes.
    pub info_hash: InfoHash,
    /// The raw `info` bytes exactly as in the file (served to peers by BEP 9).
    pub info_bytes: Vec<u8>,
    /// `announce`, if any.
    pub announce: Option<String>,
    /// BEP 12 tiers; empty if absent.
    pub announce_list: Vec<Vec<String>>,
    /// `comment`, if any.
    pub comment: Option<String>,
    /// `created by`, if any.
    pub created_by: Option<String>,
    /// `creation date` (Unix seconds), if any.
    pub creation_date: Option<i64>,
}

impl Metainfo {
    /// Parses and validates a `.torrent` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        let root = bencode::decode(bytes)?;
        if root.as_dict().is_none() {
            return Err(MetainfoError::Invalid(
                "top level is not a dictionary".into(),
            ));
        }
        let info_v = root.get("info").ok_or(MetainfoError::Field("info"))?;
        if info_v.as_dict().is_none() {
            return Err(MetainfoError::Field("info"));
        }
        let info = Info::from_value(info_v)?;
        let info_bytes = info_v.raw().to_vec();
        let text = |k: &str| root.get(k).and_then(Value::as_str).map(str::to_string);
        let announce_list = root
            .get("announce-list")
            .and_then(Value::as_list)
            .map(|tiers| {
                tiers
                    .iter()
                    .filter_map(|t| {
                        let urls: Vec<String> = t
                            .as_list()?
                            .iter()
                            .filter_map(|u| u.as_str().map(str::to_string))
                            .collect();
                        (!urls.is_empty()).then_some(urls)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Metainfo {
            info_hash: InfoHash::of(&info_bytes),
            info,
            info_bytes,
            announce: text("announce"),
            announce_list,
            comment: text("comment"),
            created_by: text("created by"),
            creation_date: root.get("creation date").and_then(Value::as_int),
        })
    }

    /// Builds a metainfo from raw `info` bytes (e.g. fetched by BEP 9) plus trackers.
    pub fn from_info_bytes(
        info_bytes: &[u8],
        trackers: Vec<Vec<String>>,
    ) -> Result<Metainfo, MetainfoError> {
        let v = bencode::decode(info_bytes)?;
        let info = Info::from_value(&v)?;
        Ok(Metainfo {
            info,
            info_hash: InfoHash::of(info_bytes),
            info_bytes: info_bytes.to_vec(),
            announce: trackers.first().and_then(|t| t.first()).cloned(),
            announce_list: trackers,
            comment: None,
            created_by: None,
            creation_date: None,
        })
    }

    /// Tracker tiers to use: `announce-list` if present (BEP 12), else `announce`.
    pub fn tracker_tiers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            return self.announce_list.clone();
        }
        self.announce.iter().map(|a| vec![a.clone()]).collect()
    }

    /// Encodes the whole `.torrent` file, keeping the raw `info` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.dict();
        if let Some(a) = &self.announce {
            e.str("announce").str(a);
        }
        if !self.announce_list.is_empty() {
            e.str("announce-list").list();
            for tier in &self.announce_list {
                e.list();
                for u in tier {
                    e.str(u);
                }
                e.end();
            }
            e.end();
        }
        if let Some(c) = &self.comment {
            e.str("comment").str(c);
        }
        if let Some(c) = &self.created_by {
            e.str("created by").str(c);
        }
        if let Some(d) = self.creation_date {
            e.str("creation date").int(d);
        }
        e.str("info").raw(&self.info_bytes);
        e.end();
        e.finish()
    }
}

/// Builds a new v1 `info` dictionary.
#[derive(Debug, Clone)]
pub struct InfoBuilder {
    /// Torrent name (file or root folder name).
    pub name: String,
    /// Bytes per piece.
    pub piece_length: u64,
    /// Files as (path below root, length), in torrent order. For a single file, pass
    /// one entry and set `single_file`.
    pub files: Vec<(Vec<String>, u64)>,
    /// Single-file layout (`length`) rather than `files`.
    pub single_file: bool,
    /// BEP 27 private flag.
    pub private: bool,
}

impl InfoBuilder {
    /// Encodes the `info` dictionary with the given piece hashes (keys in sorted order).
    pub fn encode(&self, pieces: &[[u8; 20]]) -> Vec<u8> {
        let mut e = Encoder::new();
        e.dict();
        if self.single_file {
            let len = self.files.first().map_or(0, |f| f.1);
            e.str("length").int(len as i64);
        } else {
            e.str("files").list();
            for (path, len) in &self.files {
                e.dict().str("length").int(*len as i64).str("path").list();
                for c in path {
                    e.str(c);
                }
                e.end().end();
            }
            e.end();
        }
        e.str("name").str(&self.name);
        e.str("piece length").int(self.piece_length as i64);
        let mut flat = Vec::with_capacity(pieces.len() * 20);
        for p in pieces {
            flat.extend_from_slice(p);
        }
        e.str("pieces").bytes(&flat);
        if self.private {
            e.str("private").int(1);
        }
        e.end();
        e.finish()
    }
}

/// A sensible piece length for `total` bytes: about 1000-2000 pieces, 16 KiB to 16 MiB.
pub fn default_piece_length(total: u64) -> u64 {
    let mut pl: u64 = 16 << 10;
    while pl < (16 << 20) && total / pl > 2000 {
        pl *= 2;
    }
    pl.max(16 << 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multi(paths: &[(&[&str], u64)], pl: u64) -> Vec<u8> {
        let total: u64 = paths.iter().map(|p| p.1).sum();
        let n = total.div_ceil(pl) as usize;
        let b = InfoBuilder {
            name: "root".into(),
            piece_length: pl,
            files: paths
                .iter()
                .map(|(p, l)| (p.iter().map(|s| s.to_string()).collect(), *l))
                .collect(),
            single_file: false,
            private: false,
        };
        let info = b.encode(&vec![[7u8; 20]; n]);
        let mut e = Encoder::new();
        e.dict()
            .str("announce")
            .str("http://t/announce")
            .str("info")
            .raw(&info)
            .end();
        e.finish()
    }

    #[test]
    fn multi_file_round_trip_and_offsets() {
        let bytes = multi(
            &[(&["a.bin"], 40_000), (&["empty"], 0), (&["d", "c"], 5)],
            16384,
        );
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(m.info.total_length, 40_005);
        assert_eq!(m.info.num_pieces(), 3);
        assert_eq!(m.info.piece_size(2), 40_005 - 32768);
        assert_eq!(m.info.files[2].offset, 40_000);
        assert_eq!(
            m.info.file_rel_path(&m.info.files[2]),
            std::path::PathBuf::from("root/d/c")
        );
        assert_eq!(m.to_bytes(), bytes);
        assert_eq!(
            m.tracker_tiers(),
            vec![vec!["http://t/announce".to_string()]]
        );
    }

    #[test]
    fn info_hash_is_over_raw_bytes() {
        // A non-canonical but valid info dict with an unknown key: the hash must cover it.
        let info =
            b"d6:lengthi3e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa1:zi1ee";
        let mut t = b"d4:info".to_vec();
        t.extend_from_slice(info);
        t.push(b'e');
        let m = Metainfo::from_bytes(&t).unwrap();
        assert_eq!(m.info_hash, InfoHash::of(info));
        assert!(m.info.single_file);
    }

    #[test]
    fn rejects_unsafe_paths() {
        for bad in [&["..", "x"][..], &["/etc"], &["a/b"], &[""], &["."]] {
            let bytes = multi(&[(bad, 10)], 16384);
            assert!(
                matches!(
                    Metainfo::from_bytes(&bytes),
                    Err(MetainfoError::UnsafePath(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_inconsistent_piece_count() {
        let info =
            b"d6:lengthi40000e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let mut t = b"d4:info".to_vec();
        t.extend_from_slice(info);
        t.push(b'e');
        let err = Metainfo::from_bytes(&t).unwrap_err();
        assert!(err.to_string().contains("expected 3"), "{err}");
    }

    #[test]
    fn rejects_garbage_and_missing_fields() {
        assert!(Metainfo::from_bytes(b"not bencode").is_err());
        assert!(Metainfo::from_bytes(b"le").is_err());
        assert!(Metainfo::from_bytes(b"d4:infoi1ee").is_err());
        assert!(Metainfo::from_bytes(b"d4:infodee").is_err());
        let dup = multi(&[(&["a"], 10), (&["a"], 10)], 16384);
        assert!(Metainfo::from_bytes(&dup).is_err());
    }

    #[test]
    fn every_prefix_fails_cleanly() {
        let bytes = multi(&[(&["a"], 20000), (&["b"], 1)], 16384);
        for n in 0..bytes.len() {
            assert!(Metainfo::from_bytes(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn piece_length_default() {
        assert_eq!(default_piece_length(1000), 16 << 10);
        assert_eq!(default_piece_length(1 << 30), 1 << 20);
        assert_eq!(default_piece_length(1 << 40), 16 << 20);
    }
}
