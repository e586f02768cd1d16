//! The extension protocol (BEP 10) on a connection: our extension handshake, what we
//! learn from the peer's (its request queue, its listen port, its extension ids), and
//! the extensions themselves:
//!
//! - `ut_metadata` (BEP 9): we serve the info dictionary in 16 KiB pieces to peers
//!   that opened a magnet link. At most [`MAX_METADATA_REQUESTS`] pieces per
//!   connection; beyond that, and for pieces out of range, we reject.
//! - `ut_pex` (BEP 11): every [`PEX_INTERVAL`] (the first [`PEX_FIRST`] after the
//!   peer's handshake) we send the peers we are connected to that we have not sent
//!   yet and those gone since, at most 50 of each; the peers it sends us are dialled.
//!   A peer that sends more often than every [`PEX_MIN_GAP`], or more than 50 peers
//!   at once, is dropped.
//!
//! Neither is offered for a private torrent (BEP 27): its peers come from its tracker
//! only, and its metadata is not given out.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shoal_proto::wire::{
    metadata_pieces, ExtendedHandshake, Message, MetadataMessage, PexMessage,
    EXTENDED_HANDSHAKE_ID, METADATA_PIECE_LEN, PEX_MAX_PEERS,
};

use super::{Connection, PeerError, MAX_UPLOAD_QUEUE};
use crate::conn::Swarm;
use crate::picker::PeerKey;

/// Our id for `ut_metadata` messages.
const UT_METADATA: u8 = 3;
/// Our id for `ut_pex` messages.
const UT_PEX: u8 = 1;

/// The peer's request queue when it does not say (libtorrent's default).
const DEFAULT_REQQ: usize = 250;
/// Metadata pieces served per connection before we reject (a 32 MiB dictionary is
/// 2048 pieces; a peer fetching it twice over is misbehaving).
pub(crate) const MAX_METADATA_REQUESTS: u32 = 4096;
/// Between our PEX messages (BEP 11: at most one a minute).
pub(crate) const PEX_INTERVAL: Duration = Duration::from_secs(60);
/// From the peer's extension handshake to our first PEX message.
pub(crate) const PEX_FIRST: Duration = Duration::from_secs(2);
/// Peer messages closer together than this are a flood.
pub(crate) const PEX_MIN_GAP: Duration = Duration::from_secs(20);

/// What an extension message told us, and what to answer.
#[derive(Debug, Default)]
pub(crate) struct Learnt {
    /// The port the peer accepts connections on (handshake `p`).
    pub listen_port: Option<u16>,
    /// Extension messages to send back: (the peer's id for them, payload).
    pub replies: Vec<(u8, Vec<u8>)>,
    /// Peers learnt through PEX.
    pub pex: Vec<SocketAddr>,
}

/// Extension state of one connection.
#[derive(Debug)]
pub(crate) struct Extensions {
    /// Both sides set the extension bit in their handshakes.
    enabled: bool,
    /// The torrent is not private: metadata is offered.
    public: bool,
    /// PEX is offered (public torrent, PEX not turned off).
    pex: bool,
    their_reqq: usize,
    their_metadata: Option<u8>,
    their_pex: Option<u8>,
    metadata_served: u32,
    /// Addresses in our PEX messages so far, less those dropped since.
    pex_sent: HashSet<SocketAddr>,
    next_pex: Option<Instant>,
    last_pex_in: Option<Instant>,
}

impl Extensions {
    pub(crate) fn new(enabled: bool) -> Self {
        Extensions {
            enabled,
            public: false,
            pex: false,
            their_reqq: DEFAULT_REQQ,
            their_metadata: None,
            their_pex: None,
            metadata_served: 0,
            pex_sent: HashSet::new(),
            next_pex: None,
            last_pex_in: None,
        }
    }

    /// Our extension handshake, when the peer speaks the protocol. `metadata` is the
    /// info dictionary of a public torrent (`None` for a private one); `pex`: offer
    /// peer exchange (never for a private torrent).
    pub(crate) fn our_handshake(
        &mut self,
        listen_port: u16,
        metadata: Option<&[u8]>,
        pex: bool,
    ) -> Option<Vec<u8>> {
        if !self.enabled {
            return None;
        }
        self.public = metadata.is_some();
        self.pex = pex && self.public;
        let mut m = Vec::new();
        if self.public {
            m.push(("ut_metadata".to_string(), UT_METADATA));
        }
        if self.pex {
            m.push(("ut_pex".to_string(), UT_PEX));
        }
        let hs = ExtendedHandshake {
            m,
            v: Some(concat!("Shoal ", env!("CARGO_PKG_VERSION")).to_string()),
            p: Some(listen_port),
            reqq: Some(MAX_UPLOAD_QUEUE as u32),
            metadata_size: metadata.map(|m| m.len() as u64),
            yourip: None,
        };
        Some(hs.encode())
    }

    /// How many requests the peer accepts outstanding.
    pub(crate) fn their_reqq(&self) -> usize {
        self.their_reqq
    }

    /// Applies extension message `id` received at `now`. A handshake that does not
    /// decode is ignored (the peer keeps its defaults), as are messages under ids we
    /// never gave out; a malformed metadata or PEX message, or a PEX flood, ends the
    /// connection.
    pub(crate) fn on_message(
        &mut self,
        now: Instant,
        id: u8,
        payload: &[u8],
        swarm: &impl Swarm,
    ) -> Result<Learnt, PeerError> {
        match id {
            EXTENDED_HANDSHAKE_ID => Ok(self.on_handshake(now, payload)),
            UT_METADATA if self.public => self.on_metadata(payload, swarm),
            UT_PEX if self.pex => self.on_pex(now, payload),
            _ => {
                tracing::debug!(id, "ignoring an extension message we did not offer");
                Ok(Learnt::default())
            }
        }
    }

    fn on_handshake(&mut self, now: Instant, payload: &[u8]) -> Learnt {
        let hs = match ExtendedHandshake::decode(payload) {
            Ok(hs) => hs,
            Err(e) => {
                tracing::debug!("ignoring an extension handshake that does not decode: {e}");
                return Learnt::default();
            }
        };
        if let Some(q) = hs.reqq {
            self.their_reqq = (q as usize).clamp(1, 2000);
        }
        self.their_metadata = hs.extension_id("ut_metadata");
        self.their_pex = hs.extension_id("ut_pex");
        if self.their_pex.is_some() && self.next_pex.is_none() {
            self.next_pex = Some(now + PEX_FIRST);
        }
        Learnt {
            listen_port: hs.p.filter(|p| *p != 0),
            ..Learnt::default()
        }
    }

    fn on_metadata(&mut self, payload: &[u8], swarm: &impl Swarm) -> Result<Learnt, PeerError> {
        let msg = MetadataMessage::decode(payload)
            .map_err(|e| PeerError::Protocol(format!("bad metadata message: {e}")))?;
        let MetadataMessage::Request { piece } = msg else {
            // We never ask: we have the metadata.
            tracing::debug!("ignoring metadata data or reject we did not ask for");
            return Ok(Learnt::default());
        };
        let Some(their_id) = self.their_metadata else {
            return Ok(Learnt::default());
        };
        let info = swarm.public_info().unwrap_or(&[]);
        let mut out = Vec::new();
        let start = piece as usize * METADATA_PIECE_LEN;
        if piece as usize >= metadata_pieces(info.len())
            || self.metadata_served >= MAX_METADATA_REQUESTS
        {
            MetadataMessage::Reject { piece }.encode(&mut out);
        } else {
            self.metadata_served += 1;
            let end = (start + METADATA_PIECE_LEN).min(info.len());
            MetadataMessage::Data {
                piece,
                total_size: info.len() as u64,
                data: &info[start..end],
            }
            .encode(&mut out);
        }
        Ok(Learnt {
            replies: vec![(their_id, out)],
            ..Learnt::default()
        })
    }

    fn on_pex(&mut self, now: Instant, payload: &[u8]) -> Result<Learnt, PeerError> {
        if self
            .last_pex_in
            .is_some_and(|t| now.saturating_duration_since(t) < PEX_MIN_GAP)
        {
            return Err(PeerError::Protocol(
                "peer exchange flood: messages less than 20 s apart".into(),
            ));
        }
        self.last_pex_in = Some(now);
        let msg = PexMessage::decode(payload)
            .map_err(|e| PeerError::Protocol(format!("bad peer exchange message: {e}")))?;
        let pex = msg
            .added
            .iter()
            .map(|p| p.addr)
            .filter(|a| a.port() != 0 && !a.ip().is_unspecified())
            .collect();
        Ok(Learnt {
            pex,
            ..Learnt::default()
        })
    }

    /// Our PEX message when one is due at `now`: peers connected (to `swarm`, other
    /// than this one, `key`) not yet sent, and those sent that are gone.
    pub(crate) fn poll_pex(
        &mut self,
        now: Instant,
        key: PeerKey,
        swarm: &impl Swarm,
    ) -> Option<(u8, Vec<u8>)> {
        let their_id = self.their_pex?;
        match self.next_pex {
            Some(t) if self.pex && now >= t => {}
            _ => return None,
        }
        self.next_pex = Some(now + PEX_INTERVAL);
        let current = swarm.pex_peers(key);
        let addrs: HashSet<SocketAddr> = current.iter().map(|p| p.addr).collect();
        let mut msg = PexMessage::default();
        for p in current {
            if msg.added.len() < PEX_MAX_PEERS && self.pex_sent.insert(p.addr) {
                msg.added.push(p);
            }
        }
        let gone: Vec<SocketAddr> = self
            .pex_sent
            .iter()
            .filter(|a| !addrs.contains(a))
            .take(PEX_MAX_PEERS)
            .copied()
            .collect();
        for a in &gone {
            self.pex_sent.remove(a);
        }
        msg.dropped = gone;
        if msg.added.is_empty() && msg.dropped.is_empty() {
            return None;
        }
        Some((their_id, msg.encode()))
    }
}

impl Connection {
    /// Applies extension message `id` and sends what it calls for.
    pub(super) fn on_extended(
        &mut self,
        id: u8,
        payload: &[u8],
        swarm: &impl Swarm,
    ) -> Result<(), PeerError> {
        let learnt = self.extensions.on_message(self.now, id, payload, swarm)?;
        if let Some(port) = learnt.listen_port {
            swarm.set_listen_addr(self.key, SocketAddr::new(self.addr.ip(), port));
        }
        for (id, payload) in &learnt.replies {
            self.send(Message::Extended { id: *id, payload });
        }
        if !learnt.pex.is_empty() {
            swarm.pex_learnt(&learnt.pex);
        }
        Ok(())
    }

    /// Sends our PEX message when one is due at `now`.
    pub(super) fn send_pex(&mut self, now: Instant, swarm: &impl Swarm) {
        if let Some((id, payload)) = self.extensions.poll_pex(now, self.key, swarm) {
            self.send(Message::Extended {
                id,
                payload: &payload,
            });
        }
    }
}
