//! Opening a connection to a peer: uTP first, then TCP, as libtorrent does.
//!
//! With a uTP endpoint, a dial sends a uTP SYN and waits [`UTP_CONNECT_TIMEOUT`] for
//! the answer; unanswered or refused (`ST_RESET`), it connects over TCP instead. The
//! transport that worked is remembered per address ([`MAX_REMEMBERED`] addresses, the
//! memory forgotten at once when full), so a peer without uTP costs the wait once:
//! later dials to it go straight to TCP. Without an endpoint (uTP off) every dial is
//! TCP. The connector is shared by the session's torrents.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tracing::debug;

use super::handshake::HANDSHAKE_TIMEOUT;
use super::{PeerError, PeerStream, TransportKind};
use crate::utp::UtpEndpoint;

/// How long a uTP SYN may go unanswered before TCP is tried (libtorrent's default).
pub const UTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Addresses whose working transport is remembered.
pub const MAX_REMEMBERED: usize = 4096;

/// Opens peer connections over uTP or TCP; cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Connector {
    utp: Option<Arc<UtpEndpoint>>,
    /// The transport that last connected, per address.
    worked: Mutex<HashMap<SocketAddr, TransportKind>>,
}

impl Connector {
    /// A connector trying `utp` first when given, TCP only otherwise.
    pub fn new(utp: Option<Arc<UtpEndpoint>>) -> Connector {
        Connector {
            utp,
            worked: Mutex::new(HashMap::new()),
        }
    }

    /// The transport that last connected to `addr`, if remembered.
    pub fn remembered(&self, addr: &SocketAddr) -> Option<TransportKind> {
        self.lock().get(addr).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, TransportKind>> {
        self.worked.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, addr: SocketAddr, kind: TransportKind) {
        let mut map = self.lock();
        if map.len() >= MAX_REMEMBERED && !map.contains_key(&addr) {
            map.clear();
        }
        map.insert(addr, kind);
    }

    /// Connects to `addr`: uTP first (unless TCP is what worked last time), then TCP.
    pub async fn connect(&self, addr: SocketAddr) -> Result<PeerStream, PeerError> {
        if let Some(utp) = &self.utp {
            if self.remembered(&addr) != Some(TransportKind::Tcp) {
                match tokio::time::timeout(UTP_CONNECT_TIMEOUT, utp.connect(addr)).await {
                    Ok(Ok(s)) => {
                        self.remember(addr, TransportKind::Utp);
                        return Ok(PeerStream::Utp(s));
                    }
                    Ok(Err(e)) => debug!(%addr, "uTP connect failed: {e}; trying TCP"),
                    Err(_) => debug!(%addr, "uTP connect unanswered; trying TCP"),
                }
            }
        }
        let s = match tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(PeerError::Timeout("connect")),
        };
        if self.utp.is_some() {
            self.remember(addr, TransportKind::Tcp);
        }
        Ok(PeerStream::Tcp(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_bounded() {
        let c = Connector::new(None);
        for i in 0..(MAX_REMEMBERED + 10) {
            let addr = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6881));
            c.remember(addr, TransportKind::Tcp);
            assert!(c.lock().len() <= MAX_REMEMBERED);
        }
    }

    #[tokio::test]
    async fn tcp_only_without_endpoint() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let c = Connector::new(None);
        let s = c.connect(addr).await.unwrap();
        assert!(matches!(s, PeerStream::Tcp(_)));
        assert_eq!(c.remembered(&addr), None);
    }
}
