//! The body of a stream response: bytes of one file range, read piece by piece as
//! pieces verify.
//!
//! From a running torrent, each chunk waits for its piece to verify and is read
//! through the engine ([`TorrentHandle::read_verified`]), so unverified bytes are
//! never sent. While it waits or reads, the reader's deadline window covers its
//! piece and [`READ_AHEAD`] bytes after it (up to the end of the file) and moves
//! with it; the window is cleared when the body is dropped (finished, or the client
//! went away). A torrent that stops (removed, paused, an error) ends the body with
//! an error, which closes the connection: the client sees a short body, never a hang.
//! A torrent that is not running but whose file is complete is read from its file.

use std::io;
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use shoal_engine::torrent::{PieceWaiter, StreamError};
use shoal_engine::TorrentHandle;

/// Why a stream body ends early.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    /// The torrent stopped, or its data could not be read.
    #[error(transparent)]
    Torrent(#[from] StreamError),
    /// The complete file of a stopped torrent could not be read.
    #[error("cannot read {path}: {source}")]
    File { path: PathBuf, source: io::Error },
    /// The blocking pool is gone: the node is stopping.
    #[error("the node is stopping")]
    Shutdown,
}

/// Bytes after the read position that are fetched with deadline priority.
pub const READ_AHEAD: u64 = 16 << 20;
/// Largest chunk read and sent at once.
const CHUNK: u64 = 1 << 20;

/// Where the bytes come from.
pub enum Source {
    /// The torrent runs: only verified pieces are read.
    Running(TorrentHandle),
    /// The torrent is stopped with this file complete: the file at this path.
    File(PathBuf),
}

/// A byte range of one file of a torrent.
pub struct Span {
    /// The file's offset in the torrent.
    pub file_offset: u64,
    /// The file's length.
    pub file_len: u64,
    /// First byte wanted, in the file.
    pub start: u64,
    /// One past the last byte wanted, in the file.
    pub end: u64,
    /// The torrent's piece length.
    pub piece_len: u64,
}

/// Clears a stream window when the body goes.
struct Window {
    handle: TorrentHandle,
    id: u64,
    /// The piece the window starts at now.
    at: Option<u32>,
}

impl Drop for Window {
    fn drop(&mut self) {
        self.handle.clear_stream(self.id);
    }
}

struct Reader {
    source: Source,
    span: Span,
    /// Next byte to send, in the file.
    pos: u64,
    window: Option<Window>,
    waiter: Option<PieceWaiter>,
}

/// The response body for `span` of `source`.
pub fn body(source: Source, span: Span) -> Body {
    let pos = span.start;
    let reader = Reader {
        source,
        span,
        pos,
        window: None,
        waiter: None,
    };
    let stream = futures_util::stream::unfold(reader, |mut r| async move {
        if r.pos >= r.span.end {
            return None;
        }
        match r.next_chunk().await {
            Ok(bytes) => {
                r.pos += bytes.len() as u64;
                Some((Ok(bytes), r))
            }
            Err(e) => {
                tracing::debug!("stream ends early: {e}");
                // Nothing more after the error: the connection closes.
                r.pos = r.span.end;
                r.window = None;
                Some((Err(io::Error::other(e.to_string())), r))
            }
        }
    });
    Body::from_stream(stream)
}

impl Reader {
    async fn next_chunk(&mut self) -> Result<Bytes, ReadError> {
        let left = self.span.end - self.pos;
        match &self.source {
            Source::File(path) => {
                let (p, at) = (path.clone(), self.pos);
                let len = left.min(CHUNK) as usize;
                let read = tokio::task::spawn_blocking(move || read_file(&p, at, len));
                match read.await {
                    Ok(Ok(buf)) => Ok(Bytes::from(buf)),
                    Ok(Err(source)) => Err(ReadError::File {
                        path: path.clone(),
                        source,
                    }),
                    Err(_) => Err(ReadError::Shutdown),
                }
            }
            Source::Running(handle) => {
                let handle = handle.clone();
                Ok(self.read_torrent(&handle, left).await?)
            }
        }
    }

    async fn read_torrent(
        &mut self,
        handle: &TorrentHandle,
        left: u64,
    ) -> Result<Bytes, StreamError> {
        let s = &self.span;
        let global = s.file_offset + self.pos;
        let piece = u32::try_from(global / s.piece_len).map_err(|_| StreamError::Stopped)?;
        let begin = global % s.piece_len;
        let len = left.min(s.piece_len - begin).min(CHUNK);
        self.move_window(handle, piece);
        let waiter = self.waiter.get_or_insert_with(|| handle.piece_waiter());
        waiter.wait(piece).await?;
        handle.read_verified(piece, begin as u32, len as u32).await
    }

    /// Sets the deadline window at `piece` and the read-ahead after it (once per
    /// piece; nothing while the torrent has the pieces).
    fn move_window(&mut self, handle: &TorrentHandle, piece: u32) {
        let s = &self.span;
        let w = self.window.get_or_insert_with(|| Window {
            handle: handle.clone(),
            id: TorrentHandle::new_stream_id(),
            at: None,
        });
        if w.at == Some(piece) {
            return;
        }
        w.at = Some(piece);
        let ahead_end = (s.file_offset + self.pos + READ_AHEAD).min(s.file_offset + s.file_len);
        let last = u32::try_from(ahead_end.saturating_sub(1) / s.piece_len).unwrap_or(u32::MAX);
        handle.set_stream_window(w.id, piece, last.max(piece));
    }
}

/// `len` bytes of the file at `path` from `at` (fewer only at its end).
fn read_file(path: &std::path::Path, at: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(at))?;
    let mut buf = Vec::with_capacity(len);
    f.take(len as u64).read_to_end(&mut buf)?;
    if buf.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{} is shorter than the torrent says", path.display()),
        ));
    }
    Ok(buf)
}
