//! uTP, the uTorrent transport protocol (BEP 29), with LEDBAT congestion control
//! (RFC 6817), as sans-IO state machines.
//!
//! A uTP connection is a reliable, ordered byte stream over UDP whose sender backs off
//! when its packets start to queue: it aims for 100 ms of queueing delay on the path,
//! measured from one-way delay samples, so BitTorrent traffic yields to everything
//! else on a user's uplink. Nothing here owns a socket or reads a clock: the engine
//! routes datagrams by (address, connection id), passes `now` and random ids in, and
//! sends what the connection yields.
//!
//! - [`packet`]: the 20-byte header, extensions (selective ack), [`peek_route`].
//! - [`ledbat`]: the congestion window from delay samples and losses.
//! - [`Connection`]: handshake, sequencing, acks, retransmission, reordering, FIN,
//!   keep-alive and timeouts; API shaped like quinn-proto (`handle_packet`,
//!   `poll_transmit`, `poll_timeout`, `handle_timeout`, `write`, `read`, `close`).
//!
//! ```
//! use std::time::Instant;
//! use shoal_proto::utp::{Connection, UtpConfig};
//!
//! let now = Instant::now();
//! let mut a = Connection::connect(UtpConfig::default(), now, 1000);
//! let syn = a.poll_transmit(now).unwrap();
//! let mut b = Connection::accept(UtpConfig::default(), now, &syn, 4242).unwrap();
//! a.handle_packet(now, &b.poll_transmit(now).unwrap());
//! assert!(a.is_connected());
//! assert_eq!(a.write(b"hello"), 5);
//! b.handle_packet(now, &a.poll_transmit(now).unwrap());
//! let mut buf = [0; 16];
//! assert_eq!(b.read(&mut buf), 5);
//! assert_eq!(&buf[..5], b"hello");
//! ```

mod config;
mod conn;
pub mod ledbat;
pub mod packet;
mod stats;

#[cfg(test)]
mod tests;

pub use config::UtpConfig;
pub use conn::{Connection, UtpError};
pub use packet::{peek_route, Header, Packet, PacketError, PacketType};
pub use stats::UtpStats;
