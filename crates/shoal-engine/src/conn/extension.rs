//! The extension protocol (BEP 10) on a connection: our extension handshake, what we
//! learn from the peer's (its request queue, its listen port), and the dispatch of
//! extension messages by the ids we gave out. An extension (BEP 9 `ut_metadata`,
//! BEP 11 `ut_pex`) joins [`OURS`] and gets its arm in [`Extensions::on_message`];
//! the connection's other rules do not change.

use shoal_proto::wire::{ExtendedHandshake, EXTENDED_HANDSHAKE_ID};

use super::{PeerError, MAX_UPLOAD_QUEUE};

/// Extension messages we understand, with the ids peers are asked to send them under.
/// None yet beyond the handshake itself.
const OURS: &[(&str, u8)] = &[];

/// The peer's request queue when it does not say (libtorrent's default).
const DEFAULT_REQQ: usize = 250;

/// What an extension message told us that the torrent should know.
#[derive(Debug, Default)]
pub(crate) struct Learnt {
    /// The port the peer accepts connections on (handshake `p`).
    pub listen_port: Option<u16>,
}

/// Extension state of one connection.
#[derive(Debug)]
pub(crate) struct Extensions {
    /// Both sides set the extension bit in their handshakes.
    enabled: bool,
    their_reqq: usize,
}

impl Extensions {
    pub(crate) fn new(enabled: bool) -> Self {
        Extensions {
            enabled,
            their_reqq: DEFAULT_REQQ,
        }
    }

    /// Our extension handshake, when the peer speaks the protocol.
    pub(crate) fn our_handshake(&self, listen_port: u16) -> Option<Vec<u8>> {
        if !self.enabled {
            return None;
        }
        let hs = ExtendedHandshake {
            m: OURS.iter().map(|&(n, id)| (n.to_string(), id)).collect(),
            v: Some(concat!("Shoal ", env!("CARGO_PKG_VERSION")).to_string()),
            p: Some(listen_port),
            reqq: Some(MAX_UPLOAD_QUEUE as u32),
            metadata_size: None,
            yourip: None,
        };
        Some(hs.encode())
    }

    /// How many requests the peer accepts outstanding.
    pub(crate) fn their_reqq(&self) -> usize {
        self.their_reqq
    }

    /// Applies extension message `id`. A handshake that does not decode is ignored
    /// (the peer keeps its defaults), as are messages under ids we never gave out.
    pub(crate) fn on_message(&mut self, id: u8, payload: &[u8]) -> Result<Learnt, PeerError> {
        if id != EXTENDED_HANDSHAKE_ID {
            tracing::debug!(id, "ignoring an extension message we did not offer");
            return Ok(Learnt::default());
        }
        let hs = match ExtendedHandshake::decode(payload) {
            Ok(hs) => hs,
            Err(e) => {
                tracing::debug!("ignoring an extension handshake that does not decode: {e}");
                return Ok(Learnt::default());
            }
        };
        if let Some(q) = hs.reqq {
            self.their_reqq = (q as usize).clamp(1, 2000);
        }
        Ok(Learnt {
            listen_port: hs.p.filter(|p| *p != 0),
        })
    }
}
