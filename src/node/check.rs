//! Deciding, before a torrent starts, what its data on disk is worth: trusted from the
//! resume record (every file's size and modification time unchanged), re-checked by
//! hashing, or unusable because a file it had is gone.

use shoal_proto::metainfo::Metainfo;
use shoal_proto::wire::Bitfield;

use crate::store::torrents::{file_stamps, ResumeRecord};

/// What to tell the engine about existing data.
pub(crate) enum Check {
    /// Trust these piece states.
    Trusted(Vec<bool>),
    /// Hash everything.
    Recheck,
    /// A file the torrent had is gone.
    Missing(String),
}

/// Compares the files with the resume record. Blocking.
pub(crate) fn decide(
    meta: &Metainfo,
    dir: &std::path::Path,
    resume: Option<&ResumeRecord>,
    complete: bool,
) -> Check {
    let info = &meta.info;
    let now = file_stamps(dir, info);
    for (i, f) in info.files.iter().enumerate() {
        let had = resume
            .and_then(|r| r.files.get(i))
            .is_some_and(Option::is_some);
        if f.length > 0 && now[i].is_none() && (had || complete) {
            let path = dir.join(info.file_rel_path(f));
            return Check::Missing(format!(
                "file {} is missing; put it back and resume, resume to download it \
                 again, or remove the torrent",
                path.display()
            ));
        }
    }
    let Some(r) = resume else {
        return Check::Recheck;
    };
    if r.files != now {
        return Check::Recheck;
    }
    match Bitfield::from_bytes(&r.pieces, info.num_pieces()) {
        Ok(b) => Check::Trusted((0..info.num_pieces()).map(|i| b.get(i)).collect()),
        Err(_) => Check::Recheck,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::metainfo::InfoBuilder;

    fn meta() -> Metainfo {
        let b = InfoBuilder {
            name: "f.bin".into(),
            piece_length: 16384,
            files: vec![(vec!["f.bin".into()], 20000)],
            single_file: true,
            private: false,
        };
        Metainfo::from_info_bytes(&b.encode(&[[0u8; 20]; 2]), vec![]).unwrap()
    }

    #[test]
    fn trusts_unchanged_files_rechecks_changed_and_reports_missing() {
        let dir = tempfile::tempdir().unwrap();
        let m = meta();
        let path = dir.path().join("f.bin");
        // Nothing on disk and nothing known: the engine checks (and creates) it.
        assert!(matches!(
            decide(&m, dir.path(), None, false),
            Check::Recheck
        ));
        std::fs::write(&path, vec![1u8; 20000]).unwrap();
        let record = ResumeRecord {
            pieces: vec![0x80],
            files: file_stamps(dir.path(), &m.info),
        };
        match decide(&m, dir.path(), Some(&record), false) {
            Check::Trusted(v) => assert_eq!(v, vec![true, false]),
            _ => panic!("unchanged files must be trusted"),
        }
        std::fs::write(&path, vec![2u8; 19999]).unwrap();
        assert!(matches!(
            decide(&m, dir.path(), Some(&record), false),
            Check::Recheck
        ));
        std::fs::remove_file(&path).unwrap();
        match decide(&m, dir.path(), Some(&record), false) {
            Check::Missing(msg) => assert!(msg.contains("f.bin"), "{msg}"),
            _ => panic!("a missing file must be reported"),
        }
    }
}
