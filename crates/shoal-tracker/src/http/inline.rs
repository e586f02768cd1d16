//! Answering a request inline in the accept loop.
//!
//! A client that opens a connection per announce (`Connection: close`) has usually
//! sent its request by the time the tracker accepts the connection. Spawning a task
//! and registering the socket with the reactor for that one request costs more than
//! the announce itself, so the accept loop first tries one non-blocking read: a
//! complete `GET /announce` or `/scrape` asking to close is answered with one
//! non-blocking write into a reused buffer and the socket closed, with no task, no
//! reactor registration and no allocation. Anything else (nothing readable yet,
//! keep-alive, other routes, partial or bad heads, bodies) goes to a connection task
//! with the bytes read so far, which serves it as if it had read them itself; so the
//! behaviour on the wire is the same either way.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};

use super::{answer_tracker, parse_head};
use crate::service::{Scratch, Service};

/// What became of an accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answered and to be closed, or the client already left.
    Done,
    /// To be served by a connection task; [`Inline::received`] holds what was read.
    Task,
    /// Answered but the response did not fit the socket buffer: a task writes
    /// [`Inline::unwritten`] and closes.
    Flush,
}

/// Buffers the accept loop reuses for every inline answer.
pub(crate) struct Inline {
    buf: Vec<u8>,
    received: usize,
    out: Vec<u8>,
    written: usize,
    body: Vec<u8>,
    scratch: Scratch,
}

impl Inline {
    /// Buffers for requests of up to `max_request_bytes`.
    pub fn new(max_request_bytes: usize) -> Self {
        Inline {
            buf: vec![0; max_request_bytes],
            received: 0,
            out: Vec::with_capacity(1024),
            written: 0,
            body: Vec::with_capacity(1024),
            scratch: Scratch::default(),
        }
    }

    /// Bytes read from the last connection before it was handed to a task.
    pub fn received(&self) -> &[u8] {
        &self.buf[..self.received]
    }

    /// The part of the last response the socket did not take.
    pub fn unwritten(&self) -> &[u8] {
        self.out.get(self.written..).unwrap_or_default()
    }

    /// Reads what `stream` (non-blocking) already sent and answers it when it is one
    /// complete tracker request asking to close.
    pub fn try_answer(
        &mut self,
        service: &Service,
        stream: &TcpStream,
        peer: SocketAddr,
    ) -> Outcome {
        self.received = 0;
        let n = match (&*stream).read(&mut self.buf) {
            Ok(0) => return Outcome::Done,
            Ok(n) => n,
            Err(e) if is_retry(&e) => return Outcome::Task,
            Err(_) => return Outcome::Done,
        };
        self.received = n;
        // A full buffer may have more behind it: leave that to the task.
        if n >= self.buf.len() {
            return Outcome::Task;
        }
        let Ok(Some((head, used))) = parse_head(&self.buf[..n]) else {
            return Outcome::Task;
        };
        if used != n || head.keep_alive || head.has_body {
            return Outcome::Task;
        }
        self.out.clear();
        if !answer_tracker(
            service,
            &head,
            peer,
            &mut self.out,
            &mut self.body,
            &mut self.scratch,
        ) {
            return Outcome::Task;
        }
        self.written = 0;
        match crate::sys::send_before_close(stream, &self.out) {
            Ok(w) if w >= self.out.len() => Outcome::Done,
            Ok(w) => {
                self.written = w;
                Outcome::Flush
            }
            Err(e) if is_retry(&e) => Outcome::Flush,
            Err(_) => Outcome::Done,
        }
    }
}

fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
