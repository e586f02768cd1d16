//! Sans-IO BitTorrent protocol for Shoal.
//!
//! This crate maps bytes to typed values and back. It owns no sockets, files, threads,
//! clocks or randomness: the engine and tracker crates drive it.
//!
//! - [`bencode`]: decoder that keeps raw spans (for the info-hash) and an encoder.
//! - [`metainfo`]: `.torrent` files, v1 single- and multi-file, BEP 12 and BEP 27.
//! - [`magnet`]: magnet URIs (BEP 9 form).
//! - [`mse`]: Message Stream Encryption (RC4 + Diffie-Hellman obfuscation handshake).
//! - [`wire`]: peer wire handshake and messages (BEP 3, BEP 6 fast, BEP 10 framing).
//! - [`peers`]: compact peer lists (BEP 23, BEP 7).
//! - [`tracker`]: HTTP tracker announce/scrape requests and responses (BEP 3, 23, 48).
//! - [`udp_tracker`]: UDP tracker packets (BEP 15).
//! - [`utp`]: uTP (BEP 29) packets, connections and LEDBAT congestion control.
//! - [`lsd`]: Local Service Discovery announces (BEP 14).
//! - [`dht`]: the Mainline DHT (BEP 5, BEP 42 ids) as a sans-IO state machine.
//! - [`catalog`]: the tracker catalog's JSON messages and search-query parsing.
//! - [`ids`]: [`InfoHash`], [`PeerId`], [`PieceIndex`].
//!
//! ```
//! use shoal_proto::bencode;
//! let v = bencode::decode(b"d4:name3:abce").unwrap();
//! assert_eq!(v.get("name").and_then(|n| n.as_str()), Some("abc"));
//! ```
#![deny(missing_docs)]

pub mod bencode;
pub mod catalog;
pub mod dht;
pub mod ids;
pub mod lsd;
pub mod magnet;
pub mod metadata;
pub mod metainfo;
pub mod mse;
pub mod peers;
pub mod tracker;
pub mod udp_tracker;
pub mod urlenc;
pub mod utp;
pub mod wire;

#[cfg(test)]
mod smoke;

pub use ids::{InfoHash, PeerId, PieceIndex};
