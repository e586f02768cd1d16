use super::*;
use super::{hash, walk};
use crate::storage::{FileStorage, OpenMode, Storage};
use sha1::{Digest, Sha1};
use std::fs;

const PL: u64 = 16 << 10;

fn data(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

/// The straightforward way: SHA-1 of each piece of the concatenated data.
fn sequential_pieces(all: &[u8], piece_length: u64) -> Vec<[u8; 20]> {
    all.chunks(piece_length as usize)
        .map(|c| Sha1::digest(c).into())
        .collect()
}

fn opts(piece_length: u64) -> CreateOptions {
    CreateOptions {
        piece_length: Some(piece_length),
        ..CreateOptions::default()
    }
}

fn create(path: &Path, o: &CreateOptions) -> Result<Metainfo, CreateError> {
    create_torrent(path, o, &|_, _| {})
}

#[test]
fn single_file_exact_pieces_and_one_byte_more() {
    let dir = tempfile::tempdir().unwrap();
    for (len, pieces) in [(3 * PL as usize, 3), (3 * PL as usize + 1, 4)] {
        let path = dir.path().join(format!("movie-{len}.mkv"));
        let bytes = data(len, 7);
        fs::write(&path, &bytes).unwrap();
        let reports = std::sync::Mutex::new(Vec::new());
        let m = create_torrent(&path, &opts(PL), &|done, total| {
            reports.lock().unwrap().push((done, total));
        })
        .unwrap();
        let reports = reports.into_inner().unwrap();
        assert!(reports.windows(2).all(|w| w[0].0 < w[1].0), "{reports:?}");
        assert_eq!(reports.last(), Some(&(len as u64, len as u64)));
        assert!(m.info.single_file);
        assert_eq!(m.info.name, format!("movie-{len}.mkv"));
        assert_eq!(m.info.total_length, len as u64);
        assert_eq!(m.info.pieces.len(), pieces);
        assert_eq!(m.info.pieces, sequential_pieces(&bytes, PL));
        assert_eq!(Metainfo::from_bytes(&m.to_bytes()).unwrap(), m);
    }
}

#[test]
fn folder_with_nested_dirs_empty_hidden_and_symlinked_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("album");
    fs::create_dir_all(root.join("b/deep")).unwrap();
    fs::create_dir_all(root.join("a")).unwrap();
    // Written in an order unlike the torrent order, with sizes off the 16 KiB grid.
    let files: [(&str, usize); 6] = [
        ("b/deep/z.bin", 5_000),
        ("a-z.txt", 33_000),
        ("a/empty", 0),
        ("a/x.bin", 20_001),
        (".hidden", 10),
        ("b/y.bin", 16_384),
    ];
    for (i, (rel, len)) in files.iter().enumerate() {
        fs::write(root.join(rel), data(*len, i as u32)).unwrap();
    }
    std::os::unix::fs::symlink(root.join("a/x.bin"), root.join("link.bin")).unwrap();
    std::os::unix::fs::symlink(&root, root.join("b/loop")).unwrap();

    let m = create(&root, &opts(PL)).unwrap();
    assert!(!m.info.single_file);
    assert_eq!(m.info.name, "album");
    // Sorted by components: `a/...` before `a-z.txt`; hidden included; links skipped.
    let order = [
        ".hidden",
        "a/empty",
        "a/x.bin",
        "a-z.txt",
        "b/deep/z.bin",
        "b/y.bin",
    ];
    let listed: Vec<String> = m.info.files.iter().map(|f| f.path.join("/")).collect();
    assert_eq!(listed, order);
    let mut all = Vec::new();
    for rel in order {
        all.extend(fs::read(root.join(rel)).unwrap());
    }
    assert_eq!(m.info.total_length, all.len() as u64);
    assert_eq!(m.info.pieces, sequential_pieces(&all, PL));
    assert_eq!(Metainfo::from_bytes(&m.to_bytes()).unwrap(), m);

    // Storage reads the same layout back and agrees with every piece.
    let s = FileStorage::open(dir.path(), &m.info, OpenMode::Seed).unwrap();
    assert_eq!(
        s.check_all(2, &|_| {}).unwrap(),
        vec![true; m.info.pieces.len()]
    );
}

#[test]
fn many_batches_and_large_pieces_match_sequential_hash() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("big");
    fs::create_dir(&root).unwrap();
    // ~10 MiB over three files: several 4 MiB batches with pieces crossing files.
    let sizes = [3_000_001usize, 1, 7_500_000];
    let mut all = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let bytes = data(*len, 100 + i as u32);
        fs::write(root.join(format!("f{i}")), &bytes).unwrap();
        all.extend(bytes);
    }
    for pl in [PL, 1 << 20, 8 << 20] {
        let m = create(&root, &opts(pl)).unwrap();
        assert_eq!(
            m.info.pieces,
            sequential_pieces(&all, pl),
            "piece length {pl}"
        );
    }
    // The default piece length applies when none is given.
    let m = create(&root, &CreateOptions::default()).unwrap();
    assert_eq!(m.info.piece_length, default_piece_length(all.len() as u64));
}

#[test]
fn trackers_flags_and_text_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    fs::write(&path, b"hello").unwrap();

    let one = CreateOptions {
        trackers: vec!["http://t1/announce".into()],
        ..CreateOptions::default()
    };
    let m = create(&path, &one).unwrap();
    assert_eq!(m.announce.as_deref(), Some("http://t1/announce"));
    assert!(m.announce_list.is_empty());
    assert_eq!(m.created_by.as_deref(), Some("Shoal 0.1.0"));
    assert_eq!(m.creation_date, None);
    assert!(!m.info.private);

    let full = CreateOptions {
        trackers: vec![
            "http://t1/a".into(),
            "udp://t2:80".into(),
            "http://t3/a".into(),
        ],
        piece_length: None,
        private: true,
        comment: Some("a comment".into()),
        created_by: "test".into(),
        creation_date: Some(1_700_000_000),
    };
    let m = create(&path, &full).unwrap();
    assert_eq!(m.announce.as_deref(), Some("http://t1/a"));
    let tiers: Vec<Vec<String>> = full.trackers.iter().map(|t| vec![t.clone()]).collect();
    assert_eq!(m.announce_list, tiers);
    assert!(m.info.private);
    assert_eq!(m.comment.as_deref(), Some("a comment"));
    assert_eq!(m.created_by.as_deref(), Some("test"));
    assert_eq!(m.creation_date, Some(1_700_000_000));

    let none = create(&path, &CreateOptions::default()).unwrap();
    assert_eq!(none.announce, None);
    // The private flag is inside `info`, so it changes the info-hash.
    assert_ne!(none.info_hash, m.info_hash);
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    fs::write(&path, b"hello").unwrap();
    for pl in [0, 1000, 3 * PL, 8 << 10, 128 << 20] {
        let err = create(&path, &opts(pl)).unwrap_err();
        assert!(
            matches!(err, CreateError::PieceLength(p) if p == pl),
            "{err}"
        );
        assert!(err.to_string().contains("power of two"), "{err}");
    }

    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert!(matches!(
        create(&empty, &opts(PL)),
        Err(CreateError::EmptyFolder { .. })
    ));
    std::os::unix::fs::symlink(&path, empty.join("link")).unwrap();
    assert!(matches!(
        create(&empty, &opts(PL)),
        Err(CreateError::EmptyFolder { .. })
    ));
    fs::write(empty.join("zero"), b"").unwrap();
    assert!(matches!(
        create(&empty, &opts(PL)),
        Err(CreateError::NoData { .. })
    ));

    let missing = dir.path().join("nope");
    let err = create(&missing, &opts(PL)).unwrap_err();
    assert!(matches!(err, CreateError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn dot_path_is_named_after_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("named");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("f"), b"x").unwrap();
    let m = create(&root.join("sub/.."), &opts(PL));
    // `sub` does not exist, so the OS refuses the path; `.` inside works.
    assert!(m.is_err());
    let m = create(&root.join("."), &opts(PL)).unwrap();
    assert_eq!(m.info.name, "named");
}

/// Writes `sizes` as files `f000`, `f001`, ... under `root`; returns the listing (in that
/// order) and the concatenated data.
fn write_files(root: &Path, sizes: &[usize]) -> (Vec<walk::SourceFile>, Vec<u8>) {
    fs::create_dir_all(root).unwrap();
    let mut files = Vec::new();
    let mut all = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let name = format!("f{i:03}");
        let bytes = data(*len, 1000 + i as u32);
        fs::write(root.join(&name), &bytes).unwrap();
        all.extend(&bytes);
        files.push(walk::SourceFile {
            components: vec![name.clone()],
            path: root.join(name),
            length: *len as u64,
        });
    }
    (files, all)
}

fn tuning(threads: usize, chunk: u64, read: u64) -> hash::Tuning {
    hash::Tuning {
        threads,
        chunk,
        read,
    }
}

#[test]
fn pieces_spanning_many_files_and_empty_files_with_any_split() {
    let dir = tempfile::tempdir().unwrap();
    // Empty files first, last and between; files much smaller and larger than a piece;
    // the last piece is short.
    let sizes = [
        0, 100, 0, 0, 5_000, 1, 16_383, 16_385, 0, 40_000, 7, 0, 70_001, 3, 0,
    ];
    let (files, all) = write_files(&dir.path().join("t"), &sizes);
    let total = all.len() as u64;
    assert_ne!(total % PL, 0);
    let expected = sequential_pieces(&all, PL);
    for t in [
        tuning(1, PL, PL),
        tuning(1, 4 << 20, 128 << 10),
        tuning(3, PL, 1000), // reads not aligned to pieces or files
        tuning(2, 2 * PL, 64),
        tuning(8, 3 * PL, 5 * PL),   // chunk rounds down to whole pieces
        tuning(4, 0, 0),             // clamped to one piece, one byte
        tuning(2, 4 << 20, 1 << 20), // reads longer than most files: cut at file ends
    ] {
        let reports = std::sync::Mutex::new(Vec::new());
        let got = hash::hash_pieces_with(&files, PL, total, t, &|done, all| {
            reports.lock().unwrap().push((done, all));
        })
        .unwrap();
        assert_eq!(got, expected, "{t:?}");
        let reports = reports.into_inner().unwrap();
        assert!(reports.windows(2).all(|w| w[0].0 < w[1].0), "{reports:?}");
        assert_eq!(reports.last(), Some(&(total, total)), "{t:?}");
    }
}

#[test]
fn one_thread_and_many_threads_give_identical_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [300_000, 0, 1_000_000, 12_345, 65_536, 65_536, 999_999];
    let (files, all) = write_files(&dir.path().join("t"), &sizes);
    let total = all.len() as u64;
    for pl in [PL, 64 << 10, 1 << 20, 4 << 20] {
        let one =
            hash::hash_pieces_with(&files, pl, total, tuning(1, 1 << 20, 128 << 10), &|_, _| {})
                .unwrap();
        for threads in [2, 4, 16] {
            for read in [32 << 10, 100_000, 4 << 20] {
                let t = tuning(threads, 256 << 10, read);
                let many = hash::hash_pieces_with(&files, pl, total, t, &|_, _| {}).unwrap();
                assert_eq!(
                    one, many,
                    "piece length {pl}, {threads} threads, read {read}"
                );
            }
        }
        assert_eq!(one, sequential_pieces(&all, pl), "piece length {pl}");
        // The default tuning agrees too.
        assert_eq!(
            hash::hash_pieces(&files, pl, total, &|_, _| {}).unwrap(),
            one
        );
    }
}

#[test]
fn file_shrinking_during_hashing_is_a_changed_error() {
    // Reads of one piece, of less, and of more (the short read then ends mid-buffer).
    for read in [PL, 4096, 5 * PL] {
        shrinking_file_is_a_changed_error(read);
    }
}

fn shrinking_file_is_a_changed_error(read: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (files, all) = write_files(&dir.path().join("t"), &[10 * PL as usize, 3 * PL as usize]);
    let total = all.len() as u64;
    let victim = files[0].path.clone();
    // One thread, one piece per chunk: truncate the first file after the first report.
    let t = tuning(1, PL, read);
    let err = hash::hash_pieces_with(&files, PL, total, t, &|done, _| {
        if done == PL {
            fs::OpenOptions::new()
                .write(true)
                .open(&victim)
                .unwrap()
                .set_len(PL + 100)
                .unwrap();
        }
    })
    .unwrap_err();
    match &err {
        CreateError::Changed {
            path,
            expected,
            actual,
        } => {
            assert_eq!(path, &victim);
            assert_eq!(*expected, 10 * PL);
            assert_eq!(*actual, PL + 100);
        }
        other => panic!("read {read}: {other}"),
    }
    assert!(err.to_string().contains("changed while hashing"), "{err}");

    // Shrunk (here: emptied) after listing, with many threads: the same error, no panic.
    fs::write(&victim, b"").unwrap();
    for threads in [1, 2, 8] {
        let t = tuning(threads, 2 * PL, read);
        let err = hash::hash_pieces_with(&files, PL, total, t, &|_, _| {}).unwrap_err();
        assert!(
            matches!(&err, CreateError::Changed { path, actual: 0, .. } if path == &victim),
            "read {read}: {err}"
        );
    }

    // A missing file is a read error naming it.
    fs::remove_file(&files[1].path).unwrap();
    fs::write(&victim, &all[..10 * PL as usize]).unwrap();
    let t = tuning(2, PL, read);
    let err = hash::hash_pieces_with(&files, PL, total, t, &|_, _| {}).unwrap_err();
    assert!(
        matches!(&err, CreateError::Read { path, .. } if path == &files[1].path),
        "read {read}: {err}"
    );
}

#[test]
fn file_cut_mid_read_with_the_default_tuning_is_a_changed_error() {
    // 1 MiB reads, 4 MiB chunks, a worker per core: the file is cut inside a read, after
    // the first chunk is reported. No chunk after it can have been claimed yet (claims
    // wait for the report's lock), so some read runs past the new end.
    let dir = tempfile::tempdir().unwrap();
    let len = 12 << 20;
    let (files, _) = write_files(&dir.path().join("t"), &[len, 5]);
    let victim = files[0].path.clone();
    let cut = (5 << 20) + 3;
    let err = hash::hash_pieces(&files, PL, len as u64 + 5, &|done, _| {
        if done == 4 << 20 {
            fs::OpenOptions::new()
                .write(true)
                .open(&victim)
                .unwrap()
                .set_len(cut)
                .unwrap();
        }
    })
    .unwrap_err();
    assert!(
        matches!(
            &err,
            CreateError::Changed { path, expected, actual }
                if path == &victim && *expected == len as u64 && *actual == cut
        ),
        "{err}"
    );
}

#[test]
fn last_short_piece_and_data_smaller_than_one_piece() {
    let dir = tempfile::tempdir().unwrap();
    for sizes in [
        &[1usize][..],
        &[0, 5, 0][..],
        &[PL as usize - 1, 2][..],
        &[(4 << 20) + 17][..],
    ] {
        let (files, all) = write_files(&dir.path().join(format!("t{}", all_len(sizes))), sizes);
        let total = all.len() as u64;
        for pl in [PL, 1 << 20] {
            let got = hash::hash_pieces(&files, pl, total, &|_, _| {}).unwrap();
            assert_eq!(got, sequential_pieces(&all, pl), "{sizes:?} {pl}");
        }
    }
}

fn all_len(sizes: &[usize]) -> usize {
    sizes.iter().sum()
}
