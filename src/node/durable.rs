//! Resume data must never claim a piece whose data is not on the disk yet: after a power
//! loss the stored bitfield is trusted (when the file stamps match) and nothing is
//! hashed. So before a bitfield that claims new pieces is saved, the files those pieces
//! lie in are flushed (`fdatasync`).
//!
//! The bitfield is taken first and the files flushed after, so every piece it claims
//! was written (the engine marks a piece only after its write returned) before the
//! flush. A fresh handle suffices: on Linux `fdatasync` flushes the inode's dirty pages
//! whichever handle wrote them. Runs on the blocking pool.

use std::path::Path;

use shoal_proto::metainfo::Info;
use shoal_proto::wire::Bitfield;

/// Indexes of the non-empty files holding a byte of a piece that `new` claims and the
/// last saved bitfield `old` (raw bytes, `None`: nothing saved) did not.
pub(crate) fn files_to_sync(info: &Info, old: Option<&[u8]>, new: &Bitfield) -> Vec<usize> {
    let n = info.num_pieces();
    let old = old.and_then(|b| Bitfield::from_bytes(b, n).ok());
    let mut hit = vec![false; info.files.len()];
    for piece in new.iter_set() {
        if old.as_ref().is_some_and(|o| o.get(piece)) {
            continue;
        }
        let start = u64::from(piece).saturating_mul(info.piece_length);
        let end = start.saturating_add(info.piece_size(piece));
        // Files are in offset order: skip those ending before the piece.
        let first = info
            .files
            .partition_point(|f| f.offset.saturating_add(f.length) <= start);
        for (i, f) in info.files.iter().enumerate().skip(first) {
            if f.offset >= end {
                break;
            }
            if f.length > 0 {
                if let Some(h) = hit.get_mut(i) {
                    *h = true;
                }
            }
        }
    }
    hit.iter()
        .enumerate()
        .filter_map(|(i, &h)| h.then_some(i))
        .collect()
}

/// Flushes the given files of the torrent saved in `save_dir` to disk. A file that does
/// not exist is skipped (its stamp will not match on restart, which forces a check).
pub(crate) fn sync_files(save_dir: &Path, info: &Info, files: &[usize]) -> std::io::Result<()> {
    for f in files.iter().filter_map(|&i| info.files.get(i)) {
        let path = save_dir.join(info.file_rel_path(f));
        match std::fs::File::open(&path) {
            Ok(file) => file.sync_data().map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot flush {}: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot open {} to flush it: {e}", path.display()),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::metainfo::FileInfo;

    /// Pieces of 10 bytes over files of 15, 0, 5 and 30 bytes (offsets 0, 15, 15, 20).
    fn info() -> Info {
        let files = [(15, 0), (0, 15), (5, 15), (30, 20)]
            .iter()
            .enumerate()
            .map(|(i, &(length, offset))| FileInfo {
                path: vec![format!("f{i}")],
                length,
                offset,
            })
            .collect();
        Info {
            name: "t".into(),
            piece_length: 10,
            pieces: vec![[0; 20]; 5],
            files,
            single_file: false,
            private: false,
            total_length: 50,
        }
    }

    fn bits(set: &[u32]) -> Bitfield {
        let mut b = Bitfield::new(5);
        for &p in set {
            b.set(p);
        }
        b
    }

    #[test]
    fn only_files_of_newly_claimed_pieces_are_flushed() {
        let i = info();
        assert_eq!(files_to_sync(&i, None, &bits(&[])), Vec::<usize>::new());
        assert_eq!(files_to_sync(&i, None, &bits(&[0])), vec![0]);
        // Piece 1 (bytes 10..20) spans f0 and f2; the empty f1 is never flushed.
        assert_eq!(files_to_sync(&i, None, &bits(&[1])), vec![0, 2]);
        assert_eq!(files_to_sync(&i, None, &bits(&[4])), vec![3]);
        // Already saved pieces need nothing.
        let old = bits(&[0, 1]);
        assert_eq!(
            files_to_sync(&i, Some(old.as_bytes()), &bits(&[0, 1])),
            Vec::<usize>::new()
        );
        assert_eq!(
            files_to_sync(&i, Some(old.as_bytes()), &bits(&[0, 1, 2])),
            vec![3]
        );
        // A malformed old record counts as nothing saved.
        assert_eq!(files_to_sync(&i, Some(&[1, 2, 3]), &bits(&[0])), vec![0]);
    }

    #[test]
    fn flushing_skips_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let i = info();
        std::fs::create_dir_all(dir.path().join("t")).unwrap();
        std::fs::write(dir.path().join("t/f0"), [0u8; 15]).unwrap();
        sync_files(dir.path(), &i, &[0, 2, 3, 99]).unwrap();
    }
}
