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

/// Writes every piece of `bytes` to `s` as uneven parts.
fn write_pieces(s: &dyn Storage, bytes: &[u8]) {
    for (piece, chunk) in bytes.chunks(PL as usize).enumerate() {
        let mid = chunk.len() / 3;
        s.write_parts(piece as u32, 0, &[&chunk[..mid], &chunk[mid..]])
            .unwrap();
    }
}

#[test]
fn memory_storage_round_trip_missing_and_truncated_files() {
    let (info, bytes) = torrent(FILES, false);
    let s = MemoryStorage::new(&info).unwrap();
    // Nothing written: every piece is missing, reads are `Truncated`, not zeros.
    assert_eq!(s.check_all(2, &|_| {}).unwrap(), vec![false; 4]);
    let mut block = vec![0u8; 10];
    assert!(matches!(
        s.read(0, 0, &mut block),
        Err(StorageError::Truncated { piece: 0, .. })
    ));
    assert_eq!(s.file_data(1), Some(Vec::new()), "empty file exists");
    assert_eq!(s.file_data(0), None);
    assert_eq!(s.data(), None);

    write_pieces(&s, &bytes);
    assert_eq!(s.data().unwrap(), bytes);
    assert_eq!(s.file_data(2).unwrap(), bytes[40_000..60_000]);
    let mut block = vec![0u8; 2000];
    s.read(2, 7000, &mut block).unwrap();
    assert_eq!(block, bytes[39_768..41_768]);
    assert_eq!(s.check_all(3, &|_| {}).unwrap(), vec![true; 4]);
    assert!(s.read(4, 0, &mut block).is_err());
    assert!(s.write(3, 0, &bytes[..PL as usize]).is_err());

    // sub/b.bin (pieces 2 and 3) cut to 100 bytes under the storage.
    s.truncate_file(2, 100);
    assert_eq!(
        s.check_all(2, &|_| {}).unwrap(),
        vec![true, true, false, false]
    );
    let err = s.read(3, 0, &mut block).unwrap_err();
    assert!(
        matches!(&err, StorageError::Truncated { path, piece: 3, .. } if path == Path::new("root/sub/b.bin")),
        "{err}"
    );
    // Writing the pieces again repairs it, as with a real file.
    write_pieces(&s, &bytes);
    assert_eq!(s.data().unwrap(), bytes);
}

#[test]
fn memory_storage_with_data_is_complete() {
    let (info, bytes) = torrent(FILES, false);
    let s = MemoryStorage::with_data(&info, &bytes).unwrap();
    assert_eq!(s.check_all(1, &|_| {}).unwrap(), vec![true; 4]);
    assert!(matches!(
        MemoryStorage::with_data(&info, &bytes[1..]),
        Err(StorageError::BadLayout(_))
    ));
    let (single, bytes) = torrent(&[(&["root"], 3 * PL)], true);
    let s = MemoryStorage::with_data(&single, &bytes).unwrap();
    assert_eq!(s.check_all(8, &|_| {}).unwrap(), vec![true; 3]);
}

/// A fault-injecting storage over memory storage, and the memory storage.
fn faulty(info: &Info) -> (FaultyStorage, Arc<MemoryStorage>) {
    let inner = Arc::new(MemoryStorage::new(info).unwrap());
    let s = FaultyStorage::new(inner.clone(), Path::new("/save"), info).unwrap();
    (s, inner)
}

#[test]
fn fault_disk_full_after_n_writes_then_times_out() {
    let (info, bytes) = torrent(FILES, false);
    let (s, inner) = faulty(&info);
    s.add(
        Fault::new(FaultOp::Write, FaultKind::NoSpace)
            .after(2)
            .times(1),
    );
    let piece = |p: usize| &bytes[p * PL as usize..((p + 1) * PL as usize).min(bytes.len())];
    s.write(0, 0, piece(0)).unwrap();
    s.write(1, 0, piece(1)).unwrap();
    let err = s.write(2, 0, piece(2)).unwrap_err();
    assert!(
        matches!(&err, StorageError::DiskFull { path, piece: 2, offset: 32_768 } if path == Path::new("/save/root/a.bin")),
        "{err}"
    );
    assert_eq!(s.injected(), 1);
    // It fired once; later writes pass again.
    s.write(3, 0, piece(3)).unwrap();
    assert_eq!(
        inner.check_all(2, &|_| {}).unwrap(),
        vec![true, true, false, true]
    );
    // Reads were never faulted.
    assert_eq!(
        s.check_all(2, &|_| {}).unwrap(),
        vec![true, true, false, true]
    );
}

#[test]
fn fault_write_stores_the_bytes_before_the_fault_point_only() {
    let (info, bytes) = torrent(FILES, false);
    let (s, inner) = faulty(&info);
    write_pieces(&s, &bytes[..32_768]);
    // EIO 100 bytes into sub/b.bin: piece 2 covers a.bin 32768..40000, then b.bin.
    s.add(
        Fault::new(FaultOp::Write, FaultKind::Io)
            .in_file(2)
            .at(100..u64::MAX),
    );
    let p2 = &bytes[32_768..49_152];
    let err = s
        .write_parts(2, 0, &[&p2[..7000], &p2[7000..]])
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::Write { piece: 2, offset: 100, source, .. } if source.raw_os_error() == Some(5)),
        "{err}"
    );
    let a = inner.file_data(0).unwrap();
    assert_eq!(a, bytes[..40_000], "a.bin: written up to the fault");
    let b = inner.file_data(2).unwrap();
    assert_eq!(b[..100], bytes[40_000..40_100]);
    assert!(
        b[100..].iter().all(|&x| x == 0),
        "nothing after the fault point"
    );
    // Verified pieces around it are intact; the failed one is not there.
    assert_eq!(
        inner.check_all(2, &|_| {}).unwrap(),
        vec![true, true, false, false]
    );
}

#[test]
fn fault_reads_fail_with_junk_after_the_prefix() {
    let (info, bytes) = torrent(FILES, false);
    let (s, _inner) = faulty(&info);
    write_pieces(&s, &bytes);
    s.add(
        Fault::new(FaultOp::Read, FaultKind::ShortRead)
            .in_file(0)
            .at(1000..2000)
            .times(1),
    );
    let mut buf = vec![0u8; 4096];
    let err = s.read(0, 0, &mut buf).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Truncated {
                piece: 0,
                offset: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(buf[..1000], bytes[..1000]);
    assert!(buf[1000..].iter().all(|&x| x == 0xEE));
    // Spent: the same read now succeeds; reads elsewhere never matched.
    s.read(0, 0, &mut buf).unwrap();
    assert_eq!(buf, bytes[..4096]);

    s.add(Fault::new(FaultOp::Read, FaultKind::Io).after(1));
    s.read(1, 0, &mut buf).unwrap();
    let err = s.read(1, 0, &mut buf).unwrap_err();
    assert!(matches!(err, StorageError::Read { piece: 1, .. }), "{err}");
    assert_eq!(s.injected(), 2);
    s.clear();

    // A file cut short underneath: its pieces check as missing, others are fine.
    s.add(Fault::truncated(2, 100));
    assert_eq!(
        s.check_all(2, &|_| {}).unwrap(),
        vec![true, true, false, false]
    );
}

#[test]
fn fault_sync_and_wrapping_file_storage() {
    let dir = tempfile::tempdir().unwrap();
    let (info, bytes) = torrent(FILES, false);
    let file = Arc::new(FileStorage::open(dir.path(), &info, OpenMode::Download).unwrap());
    let s = FaultyStorage::new(file, dir.path(), &info).unwrap();
    s.add(
        Fault::new(FaultOp::Sync, FaultKind::NoSpace)
            .in_file(3)
            .times(1),
    );
    write_pieces(&s, &bytes);
    let err = s.sync().unwrap_err();
    assert!(
        matches!(&err, StorageError::Sync { path, .. } if path.ends_with("sub/deeper/c")),
        "{err}"
    );
    s.sync().unwrap();
    assert_eq!(s.check_all(2, &|_| {}).unwrap(), vec![true; 4]);
    assert_eq!(
        std::fs::read(path_of(dir.path(), "a.bin")).unwrap(),
        bytes[..40_000]
    );
}
