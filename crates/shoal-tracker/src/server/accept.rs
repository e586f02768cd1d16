//! The HTTP accept loop: one task accepting connections, answering the simple ones
//! inline ([`Inline`]) and giving the others a task each.
//!
//! It runs as a spawned task (not in the caller of [`super::Tracker::run`], which may
//! be a `block_on` thread) so that the runtime worker whose reactor reports the
//! listener ready runs it directly, without a cross-thread wake-up per event. It owns
//! the connection tasks; on stop it aborts them and waits until they are gone, so
//! every connection is closed when it returns.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;
use tracing::{warn, Instrument};

use crate::http::{serve_connection, Inline, Outcome, UploadLimits};
use crate::service::Service;

/// Accepts and serves connections until `stop` fires (or its sender is dropped).
/// The loop owns the publish upload limits its connections share.
pub(crate) async fn accept_loop(
    listener: AsyncFd<std::net::TcpListener>,
    service: Arc<Service>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    let permits = Arc::new(Semaphore::new(service.config.max_connections));
    let mut inline = Inline::new(service.config.max_request_bytes);
    let uploads = Arc::new(UploadLimits::new(&service.config));
    loop {
        let permit = tokio::select! {
            biased;
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // never closed; defensive
            },
            _ = &mut stop => break,
        };
        let accepted = tokio::select! {
            biased;
            accepted = accept(&listener) => accepted,
            _ = &mut stop => break,
        };
        // Reap finished connection tasks so the set does not grow without bound.
        while conns.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "accept failed; retrying shortly");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let outcome = inline.try_answer(&service, &stream, peer);
        if outcome == Outcome::Done {
            continue; // closes the socket and frees the permit
        }
        let stream = match TcpStream::from_std(stream) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot register a connection");
                continue;
            }
        };
        let span = tracing::debug_span!("tracker_conn", %peer);
        let svc = service.clone();
        if outcome == Outcome::Flush {
            let rest = inline.unwritten().to_vec();
            conns.spawn(
                async move {
                    flush_and_close(stream, &rest, &svc).await;
                    drop(permit);
                }
                .instrument(span),
            );
            continue;
        }
        // Small responses: send them now rather than waiting on Nagle.
        let _ = stream.set_nodelay(true);
        let received = inline.received().to_vec();
        let up = uploads.clone();
        conns.spawn(
            async move {
                serve_connection(stream, peer, svc, up, &received).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
    conns.shutdown().await;
}

/// Accepts the next connection, many per readiness event when they queue up.
async fn accept(
    listener: &AsyncFd<std::net::TcpListener>,
) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    loop {
        let mut ready = listener.readable().await?;
        if let Ok(accepted) = ready.try_io(|l| crate::sys::accept_nonblocking(l.get_ref())) {
            return accepted;
        }
    }
}

/// Writes the rest of a response answered inline, then closes.
async fn flush_and_close(mut stream: TcpStream, rest: &[u8], service: &Service) {
    let idle = Duration::from_secs(service.config.idle_timeout.into());
    if let Ok(Ok(())) = tokio::time::timeout(idle, stream.write_all(rest)).await {
        let _ = tokio::time::timeout(idle, stream.shutdown()).await;
    }
}
