//! Shoal's BitTorrent engine, async on tokio.
//!
//! (crate docs are completed as modules land)

pub mod choker;
pub mod create;
pub mod picker;
pub mod rate;
pub mod storage;
