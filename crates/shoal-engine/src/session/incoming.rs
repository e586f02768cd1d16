//! Incoming peer connections, over TCP or uTP alike: an accept loop per transport
//! wraps each new connection in a [`PeerStream`] and hands it to one path that reads
//! its handshake (plaintext, or MSE as the policy allows, told apart by the first 20
//! bytes) and gives it to the torrent the handshake names.
//!
//! Both loops share one budget of [`MAX_HALF_OPEN`] connections between accept and
//! handshake; more are closed at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shoal_proto::wire::Handshake;
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, Instrument};

use super::Inner;
use crate::peer::handshake::{self, PREFIX_LEN};
use crate::peer::{mse, PeerError, PeerStream, Transport};
use crate::utp::UtpEndpoint;

/// Incoming connections that may be between accept and handshake at once; more are
/// closed at once (a flood of silent connections cannot pile up tasks and sockets).
pub(super) const MAX_HALF_OPEN: usize = 256;

/// Accepts TCP connections until the session's accept token is cancelled.
pub(super) async fn tcp_accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    loop {
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                // A dual-stack listener reports IPv4 peers as `::ffff:a.b.c.d`.
                Ok((s, a)) => (s, SocketAddr::new(a.ip().to_canonical(), a.port())),
                Err(e) => {
                    debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = inner.accept_cancel.cancelled() => return,
        };
        admit(&inner, PeerStream::Tcp(stream), addr);
    }
}

/// Accepts uTP connections until the token is cancelled or the endpoint stops.
pub(super) async fn utp_accept_loop(inner: Arc<Inner>, endpoint: Arc<UtpEndpoint>) {
    loop {
        let (stream, addr) = tokio::select! {
            r = endpoint.accept() => match r {
                Some(x) => x,
                None => return,
            },
            _ = inner.accept_cancel.cancelled() => return,
        };
        admit(&inner, PeerStream::Utp(stream), addr);
    }
}

/// Starts reading a new connection's handshake, within the half-open budget.
fn admit(inner: &Arc<Inner>, stream: PeerStream, addr: SocketAddr) {
    let transport = stream.kind();
    let Ok(permit) = inner.half_open.clone().try_acquire_owned() else {
        debug!(%addr, %transport, "too many incoming handshakes; closing");
        return;
    };
    let span = tracing::info_span!("incoming", %addr, %transport);
    let cancel = inner.accept_cancel.clone();
    let task = incoming(inner.clone(), stream, addr, permit);
    inner.tasks.spawn(
        async move {
            tokio::select! {
                () = task => {}
                () = cancel.cancelled() => debug!("handshake abandoned: shutting down"),
            }
        }
        .instrument(span),
    );
}

/// Reads an incoming connection's handshake (after an MSE handshake, if that is what
/// it opens with) and hands it to the torrent it names.
async fn incoming(
    inner: Arc<Inner>,
    stream: PeerStream,
    addr: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    if let Err(e) = sniff(&inner, stream, addr, permit).await {
        debug!("incoming connection refused: {e}");
    }
}

async fn sniff(
    inner: &Arc<Inner>,
    mut stream: PeerStream,
    addr: SocketAddr,
    permit: OwnedSemaphorePermit,
) -> Result<(), PeerError> {
    let policy = inner.config.encryption;
    let mut first = [0u8; PREFIX_LEN];
    // An MSE initiator sends at least its 96-byte key at once, so 20 bytes come
    // either way.
    tokio::time::timeout(handshake::HANDSHAKE_TIMEOUT, stream.read_exact(&mut first))
        .await
        .map_err(|_| PeerError::Timeout("handshake"))??;
    if handshake::is_plaintext(&first) {
        if !policy.accepts_plaintext() {
            return Err(PeerError::Closed(
                "plaintext refused: encryption is required",
            ));
        }
        let hs = handshake::read_handshake_after(&mut stream, &first).await?;
        return hand_over(inner, stream, addr, hs, permit);
    }
    let accept = policy.incoming_methods().ok_or(PeerError::Closed(
        "not a BitTorrent handshake, and encryption is off",
    ))?;
    let lookup = |req2: &[u8; 20]| {
        // A handful of torrents per node: hashing each is cheaper than keeping a map.
        let map = inner.torrents.lock().unwrap_or_else(|p| p.into_inner());
        map.keys()
            .copied()
            .find(|h| shoal_proto::mse::req2_hash(h) == *req2)
    };
    let (mut s, skey) = mse::accept(stream, &first, accept, lookup).await?;
    let hs = handshake::read_handshake(&mut s).await?;
    if hs.info_hash != skey {
        return Err(PeerError::Protocol(
            "handshake names another torrent than the encryption handshake".into(),
        ));
    }
    hand_over(inner, s, addr, hs, permit)
}

/// Gives a handshaken connection to the torrent it names.
fn hand_over<T: Transport + AsyncWrite + Unpin>(
    inner: &Arc<Inner>,
    stream: T,
    addr: SocketAddr,
    hs: Handshake,
    permit: OwnedSemaphorePermit,
) -> Result<(), PeerError> {
    let shared = {
        let map = inner.torrents.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&hs.info_hash).map(|(s, _)| s.clone())
    };
    match shared {
        Some(s) => {
            s.accept(stream, addr, hs, permit);
            Ok(())
        }
        None => Err(PeerError::Protocol(format!(
            "incoming peer for unknown torrent {}",
            hs.info_hash
        ))),
    }
}
