use super::*;
use sha1::{Digest, Sha1};
use shoal_proto::bencode;
use shoal_proto::metainfo::Info;
use shoal_proto::metainfo::InfoBuilder;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

const PL: u64 = 16 << 10;

/// a.bin is not a multiple of 16 KiB, `empty` sits between files, the rest is nested.
const FILES: &[(&[&str], u64)] = &[
    (&["a.bin"], 40_000),
    (&["empty"], 0),
    (&["sub", "b.bin"], 20_000),
    (&["sub", "deeper", "c"], 7),
];
const TOTAL: u64 = 60_007;

fn data(len: u64) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

/// An `Info` for `files` whose pieces are the hashes of `data(total)`.
fn torrent(files: &[(&[&str], u64)], single_file: bool) -> (Info, Vec<u8>) {
    let total = files.iter().map(|f| f.1).sum();
    let bytes = data(total);
    let pieces: Vec<[u8; 20]> = bytes
        .chunks(PL as usize)
        .map(|c| Sha1::digest(c).into())
        .collect();
    let builder = InfoBuilder {
        name: "root".into(),
        piece_length: PL,
        files: files
            .iter()
            .map(|(p, l)| (p.iter().map(|s| s.to_string()).collect(), *l))
            .collect(),
        single_file,
        private: false,
    };
    let raw = builder.encode(&pieces);
    let info = Info::from_value(&bencode::decode(&raw).unwrap()).unwrap();
    (info, bytes)
}

fn write_all(s: &FileStorage, bytes: &[u8], only: impl Fn(u32) -> bool) {
    for (piece, chunk) in bytes.chunks(PL as usize).enumerate() {
        let piece = piece as u32;
        if !only(piece) {
            continue;
        }
        // 16 KiB blocks, written in reverse order to exercise positional writes.
        for (i, block) in chunk.chunks(4096).enumerate().rev() {
            s.write(piece, (i * 4096) as u32, block).unwrap();
        }
    }
}

fn path_of(dir: &Path, rel: &str) -> PathBuf {
    dir.join("root").join(rel)
}

#[test]
fn download_creates_files_on_first_write_with_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let (info, bytes) = torrent(FILES, false);
    let s = FileStorage::open(dir.path(), &info, OpenMode::Download).unwrap();
    assert_eq!(s.num_pieces(), 4);
    // At open: the torrent's folder and its empty file, nothing else yet.
    assert!(path_of(dir.path(), "empty").is_file());
    assert!(!path_of(dir.path(), "a.bin").exists());
    assert!(!path_of(dir.path(), "sub").exists());
    // Missing files verify as nothing (no error) before they exist.
    assert_eq!(s.check_all(2, &|_| {}).unwrap(), vec![false; 4]);
    // Piece 0 lies in a.bin only: it alone is created, at its full (sparse) size.
    write_all(&s, &bytes, |p| p == 0);
    assert_eq!(
        std::fs::metadata(path_of(dir.path(), "a.bin"))
            .unwrap()
            .len(),
        40_000
    );
    assert!(!path_of(dir.path(), "sub").exists());
    write_all(&s, &bytes, |p| p != 0);
    for (rel, len) in [
        ("a.bin", 40_000),
        ("empty", 0),
        ("sub/b.bin", 20_000),
        ("sub/deeper/c", 7),
    ] {
        let meta = std::fs::metadata(path_of(dir.path(), rel)).unwrap();
        assert!(meta.is_file(), "{rel}");
        assert_eq!(meta.len(), len, "{rel}");
    }
    assert_eq!(s.check_all(2, &|_| {}).unwrap(), vec![true; 4]);
}

#[test]
fn unwritable_save_folder_fails_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let (info, _) = torrent(FILES, false);
    let err = FileStorage::open(&blocker, &info, OpenMode::Download).unwrap_err();
    assert!(matches!(err, StorageError::CreateDir { .. }), "{err}");
}

#[test]
fn write_read_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (info, bytes) = torrent(FILES, false);
    let s = FileStorage::open(dir.path(), &info, OpenMode::Download).unwrap();
    write_all(&s, &bytes, |_| true);
    s.sync().unwrap();
    let mut buf = Vec::new();
    for p in 0..4 {
        assert!(s.verify_piece(p, &mut buf).unwrap(), "piece {p}");
        let start = p as usize * PL as usize;
        assert_eq!(buf, bytes[start..start + buf.len()]);
    }
    // A block crossing a.bin -> empty -> sub/b.bin: piece 2 starts at 32768.
    let mut block = vec![0u8; 2000];
    s.read(2, 7000, &mut block).unwrap();
    assert_eq!(block, bytes[39_768..41_768]);
    // The files hold exactly their slices of the data.
    assert_eq!(
        std::fs::read(path_of(dir.path(), "a.bin")).unwrap(),
        bytes[..40_000]
    );
    assert_eq!(
        std::fs::read(path_of(dir.path(), "sub/deeper/c")).unwrap(),
        bytes[60_000..]
    );
    let reports = std::sync::Mutex::new(Vec::new());
    let all = s
        .check_all(3, &|n| reports.lock().unwrap().push(n))
        .unwrap();
    assert_eq!(all, vec![true; 4]);
    assert_eq!(reports.into_inner().unwrap(), [1, 2, 3, 4]);
}

#[test]
fn last_piece_is_short_and_out_of_range_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (info, bytes) = torrent(FILES, false);
    let s = FileStorage::open(dir.path(), &info, OpenMode::Download).unwrap();
    let last = (TOTAL - 3 * PL) as u32;
    assert_eq!(s.piece_size(3), Some(last));
    assert_eq!(s.piece_size(4), None);
    s.write(3, 0, &bytes[3 * PL as usize..]).unwrap();
    let mut buf = Vec::new();
    s.read_piece(3, &mut buf).unwrap();
    assert_eq!(buf.len(), last as usize);

    let mut one = [0u8; 1];
    assert!(matches!(
        s.read(3, last, &mut one),
        Err(StorageError::BlockOutOfRange { piece: 3, .. })
    ));
    assert!(matches!(
        s.write(3, last - 1, &[0, 0]),
        Err(StorageError::BlockOutOfRange { .. })
    ));
    assert!(matches!(
        s.read(4, 0, &mut one),
        Err(StorageError::PieceOutOfRange {
            piece: 4,
            num_pieces: 4
        })
    ));
    assert!(s.read(0, u32::MAX, &mut one).is_err());
    assert!(s.read(u32::MAX, u32::MAX, &mut one).is_err());
    assert!(s.read_piece(u32::MAX, &mut buf).is_err());
    assert!(s.verify_piece(9, &mut buf).is_err());
    // Zero-length blocks inside the piece are harmless no-ops.
    s.read(0, 100, &mut []).unwrap();
}

#[test]
fn check_all_on_half_written_data() {
    let dir = tempfile::tempdir().unwrap();
    let (info, bytes) = torrent(FILES, false);
    let s = FileStorage::open(dir.path(), &info, OpenMode::Download).unwrap();
    write_all(&s, &bytes, |p| p % 2 == 0);
    assert_eq!(
        s.check_all(4, &|_| {}).unwrap(),
        vec![true, false, true, false]
    );

    // Reopening keeps the data (no truncation) and finds the same pieces.
    drop(s);
    let s = FileStorage::open(dir.path(), &info, OpenMode::Download).unwrap();
    assert_eq!(
        s.check_all(1, &|_| {}).unwrap(),
        vec![true, false, true, false]
    );

    // A file shortened behind our back makes its pieces false, not an error.
    std::fs::File::options()
        .write(true)
        .open(path_of(dir.path(), "sub/b.bin"))
        .unwrap()
        .set_len(100)
        .unwrap();
    assert_eq!(
        s.check_all(2, &|_| {}).unwrap(),
        vec![true, false, false, false]
    );
    let mut buf = Vec::new();
    assert!(matches!(
        s.read_piece(3, &mut buf),
        Err(StorageError::Truncated { piece: 3, .. })
    ));
}

#[test]
fn seed_requires_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let (info, bytes) = torrent(FILES, false);
    let s = FileStorage::open(dir.path(), &info, OpenMode::Download).unwrap();
    write_all(&s, &bytes, |_| true);
    drop(s);

    let s = FileStorage::open(dir.path(), &info, OpenMode::Seed).unwrap();
    assert_eq!(s.check_all(2, &|_| {}).unwrap(), vec![true; 4]);
    assert!(matches!(
        s.write(0, 0, b"x"),
        Err(StorageError::ReadOnly { piece: 0 })
    ));
    s.sync().unwrap();
    drop(s);

    let empty = path_of(dir.path(), "empty");
    std::fs::remove_file(&empty).unwrap();
    let err = FileStorage::open(dir.path(), &info, OpenMode::Seed).unwrap_err();
    assert!(
        matches!(&err, StorageError::Missing { path } if *path == empty),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("root/empty") && msg.contains("missing"),
        "{msg}"
    );

    std::fs::write(&empty, b"not empty").unwrap();
    let err = FileStorage::open(dir.path(), &info, OpenMode::Seed).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::WrongSize {
                expected: 0,
                actual: 9,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn download_never_truncates_a_larger_file() {
    let dir = tempfile::tempdir().unwrap();
    let (info, _) = torrent(FILES, false);
    let a = path_of(dir.path(), "a.bin");
    std::fs::create_dir_all(a.parent().unwrap()).unwrap();
    std::fs::write(&a, vec![1u8; 50_000]).unwrap();
    let err = FileStorage::open(dir.path(), &info, OpenMode::Download).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::TooLarge {
                expected: 40_000,
                actual: 50_000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(std::fs::metadata(&a).unwrap().len(), 50_000);

    // A folder where a file should be.
    std::fs::remove_file(&a).unwrap();
    std::fs::create_dir(&a).unwrap();
    for mode in [OpenMode::Download, OpenMode::Seed] {
        let err = FileStorage::open(dir.path(), &info, mode).unwrap_err();
        assert!(matches!(err, StorageError::NotAFile { .. }), "{err}");
    }
}

#[test]
fn single_file_lives_at_save_dir_name() {
    let dir = tempfile::tempdir().unwrap();
    let (info, bytes) = torrent(&[(&["root"], 3 * PL)], true);
    let s = FileStorage::open(dir.path(), &info, OpenMode::Download).unwrap();
    write_all(&s, &bytes, |_| true);
    assert_eq!(std::fs::read(dir.path().join("root")).unwrap(), bytes);
    assert_eq!(s.piece_size(2), Some(PL as u32));
    assert_eq!(s.check_all(8, &|_| {}).unwrap(), vec![true; 3]);
}

#[test]
fn shared_across_threads_without_locks() {
    let dir = tempfile::tempdir().unwrap();
    let (info, bytes) = torrent(FILES, false);
    let s = Arc::new(FileStorage::open(dir.path(), &info, OpenMode::Download).unwrap());
    let bytes = Arc::new(bytes);
    let writers: Vec<_> = (0..4u32)
        .map(|p| {
            let (s, bytes) = (Arc::clone(&s), Arc::clone(&bytes));
            std::thread::spawn(move || write_all(&s, &bytes, |q| q == p))
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(s.check_all(2, &|_| {}).unwrap(), vec![true; 4]);
}

#[test]
fn disk_full_is_reported_with_piece_and_path() {
    let e = StorageError::write(
        PathBuf::from("/d/x.bin"),
        12,
        4096,
        std::io::Error::from_raw_os_error(28),
    );
    assert!(matches!(
        e,
        StorageError::DiskFull {
            piece: 12,
            offset: 4096,
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        "disk full while writing piece 12 at offset 4096 of /d/x.bin: free space and resume"
    );
}

#[test]
fn storage_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<FileStorage>();
}

#[test]
fn pieces_written_as_parts_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let (info, bytes) = torrent(FILES, false);
    let s = FileStorage::open(dir.path(), &info, OpenMode::Download).unwrap();
    // Uneven parts, some crossing a.bin -> empty -> sub/b.bin (piece 2 starts at
    // 32768; a.bin ends at 40000), one empty part, and the short last piece.
    for (piece, chunk) in bytes.chunks(PL as usize).enumerate() {
        let cuts = [0, 1, 7000, 7000, 7232, 9000, chunk.len()];
        let parts: Vec<&[u8]> = cuts
            .windows(2)
            .map(|w| &chunk[w[0].min(chunk.len())..w[1].min(chunk.len())])
            .collect();
        s.write_parts(piece as u32, 0, &parts).unwrap();
    }
    let mut buf = Vec::new();
    for p in 0..4 {
        assert!(s.verify_piece(p, &mut buf).unwrap(), "piece {p}");
    }
    assert_eq!(
        std::fs::read(path_of(dir.path(), "sub/b.bin")).unwrap(),
        bytes[40_000..60_000]
    );
    // Parts that do not fit the piece are refused, nothing is written past it.
    let big = vec![0u8; PL as usize];
    assert!(s.write_parts(3, 0, &[&big[..10], &big[..]]).is_err());
}
