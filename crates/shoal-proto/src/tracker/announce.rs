//! Announce (BEP 3 tracker GET, BEP 23 compact peers, BEP 7 `peers6`): the event
//! shared by both directions, the request (`request`: query string built by the
//! client, parsed by the tracker) and the response (`response`: bencoded body encoded
//! by the tracker, parsed by the client).
//!
//! Server-side parsing requires `info_hash`, `peer_id`, `port` (1-65535) and `left`;
//! `uploaded`/`downloaded` default to 0 and `compact` defaults to on, as BEP 23
//! suggests. An `ip` that is not an IP literal is ignored (BEP 3 allows DNS names; a
//! tracker resolving them would be an amplification vector).

mod request;
mod response;

pub use request::{announce_url, AnnounceRequest};
pub use response::{encode_failure, AnnounceResponse};

use super::{shown, TrackerError};

/// The `event` of an announce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AnnounceEvent {
    /// A regular re-announce (absent, empty, `empty` or BEP 21 `paused`).
    #[default]
    None,
    /// The first announce of a download.
    Started,
    /// The download finished (sent once).
    Completed,
    /// The client is leaving the swarm.
    Stopped,
}

impl AnnounceEvent {
    /// The query value (`""` for [`AnnounceEvent::None`]).
    pub fn as_str(self) -> &'static str {
        match self {
            AnnounceEvent::None => "",
            AnnounceEvent::Started => "started",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Stopped => "stopped",
        }
    }

    fn parse(raw: &[u8]) -> Result<Self, TrackerError> {
        match raw {
            b"" | b"empty" | b"paused" => Ok(AnnounceEvent::None),
            b"started" => Ok(AnnounceEvent::Started),
            b"completed" => Ok(AnnounceEvent::Completed),
            b"stopped" => Ok(AnnounceEvent::Stopped),
            other => Err(TrackerError::InvalidEvent(shown(other))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_query_values() {
        for e in [
            AnnounceEvent::None,
            AnnounceEvent::Started,
            AnnounceEvent::Completed,
            AnnounceEvent::Stopped,
        ] {
            assert_eq!(AnnounceEvent::parse(e.as_str().as_bytes()), Ok(e));
        }
        assert_eq!(AnnounceEvent::parse(b"paused"), Ok(AnnounceEvent::None));
        assert_eq!(AnnounceEvent::parse(b"empty"), Ok(AnnounceEvent::None));
        assert!(AnnounceEvent::parse(b"Started").is_err());
    }
}
