//! Shoal's BitTorrent engine, async on tokio.
//!
//! A [`Session`] owns our peer ID, the peer listener and global rate limits, and runs
//! torrents. Each torrent ([`TorrentHandle`]) checks its data, announces to its
//! trackers ([`announce`]), dials and accepts peers ([`peer`]: a tokio driver around
//! each connection's rules, which live IO-free in the private `conn` module and are
//! tested in memory on simulated time), picks blocks rarest-first ([`picker`]), chokes
//! tit-for-tat ([`choker`]), verifies every piece with SHA-1 off the async runtime and
//! stores it through a [`storage::Storage`] (files, memory, or fault injection for
//! tests). [`create`] builds new torrents from files. [`utp`] carries connections over
//! uTP on a UDP socket (BEP 29, LEDBAT). [`lsd`] finds peers on the local network by
//! multicast (BEP 14) when [`SessionConfig::lsd`] is set. [`magnet`] fetches a
//! torrent's metadata from peers (BEP 9).
//!
//! Peer connections may use Message Stream Encryption ([`peer::mse`], per
//! [`EncryptionPolicy`]). With [`SessionConfig::dht`] it runs a Mainline DHT node
//! ([`dht`], on the shared UDP endpoint [`udp`]) through which torrents that are not
//! private find peers.
//!
//! It does not persist state between runs; the node above it does persistence
//! (including the DHT's nodes, from [`dht::DhtHandle::nodes`]).
//!
//! ```no_run
//! # async fn demo(meta: shoal_proto::metainfo::Metainfo) -> Result<(), Box<dyn std::error::Error>> {
//! use shoal_engine::{Session, SessionConfig, TorrentOptions};
//! let session = Session::start(SessionConfig::default()).await?;
//! let torrent = session.add_torrent(meta, TorrentOptions {
//!     save_dir: "downloads".into(),
//!     ..TorrentOptions::default()
//! })?;
//! println!("{:?}", torrent.status().phase);
//! # Ok(()) }
//! ```

pub mod announce;
mod buf;
pub mod catalog;
pub mod choker;
mod conn;
pub mod create;
pub mod dht;
pub mod lsd;
pub mod magnet;
pub mod peer;
pub mod picker;
pub mod rate;
pub mod session;
pub mod storage;
pub mod torrent;
pub mod udp;
pub mod utp;

pub use dht::{DhtConfig, DhtHandle};
pub use lsd::LsdConfig;
pub use session::{EncryptionPolicy, Session, SessionConfig, SessionError};
pub use torrent::{
    PeerInfo, PeerSource, Phase, TorrentEvent, TorrentHandle, TorrentOptions, TorrentStatus,
    TrackerInfo,
};
