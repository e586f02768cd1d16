//! One connection of a metadata fetch: the BitTorrent and extension handshakes, then
//! `ut_metadata` requests (at most [`MAX_INFLIGHT`] at a time) until the dictionary is
//! complete, the peer has nothing to give, or it misbehaves.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use shoal_proto::metadata::{MetadataError, Progress};
use shoal_proto::wire::{
    decode_message, max_message_len, ExtendedHandshake, Message, MetadataMessage,
    EXTENDED_HANDSHAKE_ID, MAX_PIECES,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::FetchShared;
use crate::peer::handshake::{self, HANDSHAKE_TIMEOUT};
use crate::peer::PeerError;

/// Our id for `ut_metadata` messages to us.
const UT_METADATA: u8 = 3;
/// Metadata requests outstanding per peer (BEP 9 clients commonly allow 2).
const MAX_INFLIGHT: usize = 2;
/// A request unanswered this long closes the connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// After a reject, the peer is not asked again for this long.
const REJECT_BACKOFF: Duration = Duration::from_secs(5);
/// Rejects before the peer is given up.
const MAX_REJECTS: u32 = 3;
/// Silence before the connection is closed.
const IDLE: Duration = Duration::from_secs(60);

/// Connects to `addr` and takes metadata pieces from it until the fetch completes.
pub(super) async fn fetch_from(
    s: &FetchShared,
    addr: SocketAddr,
    key: u64,
) -> Result<(), PeerError> {
    let connect = async {
        let mut stream =
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(r) => r?,
                Err(_) => return Err(PeerError::Timeout("connect")),
            };
        let theirs = handshake::outgoing(&mut stream, s.info_hash, s.our_id).await?;
        Ok((stream, theirs))
    };
    let (stream, theirs) = tokio::select! {
        r = connect => r?,
        _ = s.cancel.cancelled() => return Ok(()),
    };
    if !theirs.supports_extended() {
        return Err(PeerError::Closed(
            "peer does not speak the extension protocol",
        ));
    }
    let mut conn = MetaConn {
        s,
        addr,
        key,
        stream,
        their_id: None,
        their_size: None,
        inflight: Vec::new(),
        paused_until: None,
        rejects: 0,
    };
    let r = tokio::select! {
        r = conn.run() => r,
        _ = s.cancel.cancelled() => Ok(()),
    };
    s.assembler
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .peer_gone(key);
    r
}

struct MetaConn<'a> {
    s: &'a FetchShared,
    addr: SocketAddr,
    key: u64,
    stream: TcpStream,
    their_id: Option<u8>,
    their_size: Option<u64>,
    /// Pieces asked of this peer, with when.
    inflight: Vec<(u32, Instant)>,
    paused_until: Option<Instant>,
    rejects: u32,
}

impl MetaConn<'_> {
    async fn run(&mut self) -> Result<(), PeerError> {
        let ours = ExtendedHandshake {
            m: vec![("ut_metadata".into(), UT_METADATA)],
            v: Some(concat!("Shoal ", env!("CARGO_PKG_VERSION")).to_string()),
            p: Some(self.s.listen_port),
            ..ExtendedHandshake::default()
        }
        .encode();
        self.send(Message::Extended {
            id: EXTENDED_HANDSHAKE_ID,
            payload: &ours,
        })
        .await?;
        let max = max_message_len(MAX_PIECES);
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut last_input = Instant::now();
        loop {
            self.check_banned()?;
            self.request_more().await?;
            let read = tokio::time::timeout(Duration::from_secs(1), self.stream.read_buf(&mut buf));
            match read.await {
                Ok(Ok(0)) => return Err(PeerError::Closed("peer closed the connection")),
                Ok(Ok(_)) => last_input = Instant::now(),
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => {}
            }
            while let Some((msg, used)) = decode_message(&buf, max)? {
                let done = self.on_message(msg)?;
                buf.advance(used);
                if done {
                    return Ok(());
                }
            }
            let now = Instant::now();
            if now.duration_since(last_input) > IDLE {
                return Err(PeerError::Timeout("any message"));
            }
            if self
                .inflight
                .iter()
                .any(|(_, at)| now.duration_since(*at) > REQUEST_TIMEOUT)
            {
                return Err(PeerError::Timeout("a metadata piece"));
            }
        }
    }

    fn check_banned(&self) -> Result<(), PeerError> {
        let banned = self.s.banned.lock().unwrap_or_else(|p| p.into_inner());
        if banned.contains(&self.addr) {
            return Err(PeerError::Closed(
                "sent metadata that does not match the info-hash",
            ));
        }
        Ok(())
    }

    async fn send(&mut self, msg: Message<'_>) -> Result<(), PeerError> {
        let mut out = Vec::new();
        msg.encode(&mut out);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.stream.write_all(&out)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(PeerError::Timeout("the peer to read our request")),
        }
    }

    /// Asks for pieces while fewer than two are outstanding and some are unasked.
    async fn request_more(&mut self) -> Result<(), PeerError> {
        let (Some(id), Some(size)) = (self.their_id, self.their_size) else {
            return Ok(());
        };
        if self.paused_until.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        while self.inflight.len() < MAX_INFLIGHT {
            let piece = {
                let mut a = self.s.assembler.lock().unwrap_or_else(|p| p.into_inner());
                // After a hash mismatch the attempt restarts with no size.
                if a.size().is_none() && !a.offer_size(size).map_err(bad_metadata)? {
                    return Ok(());
                }
                if a.size() != Some(size) {
                    return Err(PeerError::Closed("peer states another metadata size"));
                }
                a.next_request(self.key)
            };
            let Some(piece) = piece else { break };
            self.inflight.push((piece, Instant::now()));
            let mut payload = Vec::new();
            MetadataMessage::Request { piece }.encode(&mut payload);
            self.send(Message::Extended {
                id,
                payload: &payload,
            })
            .await?;
        }
        Ok(())
    }

    /// Applies one message; true when the dictionary is complete.
    fn on_message(&mut self, msg: Message<'_>) -> Result<bool, PeerError> {
        match msg {
            Message::Extended {
                id: EXTENDED_HANDSHAKE_ID,
                payload,
            } => {
                let hs = ExtendedHandshake::decode(payload)?;
                let id = hs
                    .extension_id("ut_metadata")
                    .ok_or(PeerError::Closed("peer does not serve metadata"))?;
                let size = hs
                    .metadata_size
                    .filter(|s| *s > 0)
                    .ok_or(PeerError::Closed("peer has no metadata yet"))?;
                let mut a = self.s.assembler.lock().unwrap_or_else(|p| p.into_inner());
                if !a.offer_size(size).map_err(bad_metadata)? {
                    return Err(PeerError::Closed("peer states another metadata size"));
                }
                self.their_id = Some(id);
                self.their_size = Some(size);
                Ok(false)
            }
            Message::Extended {
                id: UT_METADATA,
                payload,
            } => self.on_metadata(MetadataMessage::decode(payload)?),
            // Bitfields, HAVEs, chokes: nothing to do before the torrent starts.
            _ => Ok(false),
        }
    }

    fn on_metadata(&mut self, msg: MetadataMessage<'_>) -> Result<bool, PeerError> {
        match msg {
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => {
                self.inflight.retain(|(p, _)| *p != piece);
                let progress = {
                    let mut a = self.s.assembler.lock().unwrap_or_else(|p| p.into_inner());
                    a.on_data(self.key, piece, total_size, data)
                        .map_err(bad_metadata)?
                };
                match progress {
                    Progress::Partial => Ok(false),
                    Progress::Done(info) => {
                        tracing::info!(addr = %self.addr, bytes = info.len(), "metadata complete");
                        let _ = self.s.complete.send(info);
                        Ok(true)
                    }
                    Progress::HashMismatch(culprits) => {
                        let [liar] = culprits[..] else {
                            tracing::warn!(
                                peers = culprits.len(),
                                "metadata from several peers does not match the info-hash; \
                                 fetching it again from one peer at a time"
                            );
                            return Ok(false);
                        };
                        let addr = self.s.addr_of(liar);
                        tracing::warn!(
                            ?addr,
                            "metadata does not match the info-hash; dropping the peer that sent it"
                        );
                        if let Some(a) = addr {
                            let mut banned =
                                self.s.banned.lock().unwrap_or_else(|p| p.into_inner());
                            banned.insert(a);
                        }
                        // `check_banned` closes the liar's connection, this one included.
                        Ok(false)
                    }
                }
            }
            MetadataMessage::Reject { piece } => {
                self.inflight.retain(|(p, _)| *p != piece);
                self.s
                    .assembler
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .unrequest(self.key, piece);
                self.rejects += 1;
                if self.rejects >= MAX_REJECTS {
                    return Err(PeerError::Closed("peer rejects our metadata requests"));
                }
                self.paused_until = Some(Instant::now() + REJECT_BACKOFF);
                Ok(false)
            }
            // A peer asking us: we have nothing to give yet.
            MetadataMessage::Request { .. } => Ok(false),
        }
    }
}

fn bad_metadata(e: MetadataError) -> PeerError {
    PeerError::Protocol(format!("bad metadata: {e}"))
}
