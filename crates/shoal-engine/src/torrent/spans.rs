//! `tracing` spans of a torrent's tasks, so a busy node's log can be followed for one
//! torrent or one peer.
//!
//! Every task of a torrent runs inside two spans: the torrent's own
//! (`torrent{hash, name}`, kept in [`Shared::span`]) and its task's, a child of it
//! (`driver`, `announce`, `piece{piece}`, `peer{addr}`). Both are entered while the
//! task is polled, because `EnvFilter` span directives (`shoal_engine[torrent{hash=..}]`)
//! look only at the spans entered, not at a span's parents; the log lines show the
//! chain `torrent{..}:peer{..}`.

use std::future::Future;
use std::net::SocketAddr;

use shoal_proto::metainfo::Metainfo;
use tracing::instrument::Instrumented;
use tracing::{Instrument, Span};

use super::Shared;

/// Hex digits of the info-hash in span fields: the UI and CLI show the same 8.
const SHORT_HASH: usize = 8;

/// The torrent's root span. Not a child of whatever span adds the torrent (an API
/// request, say): the torrent outlives it.
pub(super) fn torrent_span(meta: &Metainfo) -> Span {
    let hex = meta.info_hash.to_hex();
    let short = hex.get(..SHORT_HASH).unwrap_or(&hex);
    tracing::info_span!(parent: None, "torrent", hash = %short, name = %meta.info.name)
}

impl Shared {
    /// `fut` inside `span` (made with [`Self::peer_span`] and friends) and the
    /// torrent's span.
    pub(crate) fn traced<F: Future>(&self, span: Span, fut: F) -> Instrumented<Instrumented<F>> {
        fut.instrument(span).instrument(self.span.clone())
    }

    /// The driver's span (span names must be literals, hence one method each).
    pub(crate) fn driver_span(&self) -> Span {
        tracing::info_span!(parent: &self.span, "driver")
    }

    /// The DHT lookup task's span.
    pub(crate) fn dht_span(&self) -> Span {
        tracing::info_span!(parent: &self.span, "dht")
    }

    /// The announce task's span.
    pub(crate) fn announce_span(&self) -> Span {
        tracing::info_span!(parent: &self.span, "announce")
    }

    /// The span of one peer connection's task: `peer{addr}`.
    pub(crate) fn peer_span(&self, addr: SocketAddr) -> Span {
        tracing::info_span!(parent: &self.span, "peer", %addr)
    }

    /// The span of a piece being hashed and written: `piece{piece}`. Debug level: one
    /// per piece is too many for an `info` log.
    pub(crate) fn piece_span(&self, piece: u32) -> Span {
        tracing::debug_span!(parent: &self.span, "piece", piece)
    }
}
