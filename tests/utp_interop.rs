//! uTP (BEP 29) against libtorrent 2.0 (Debian's python3-libtorrent), both directions,
//! with libtorrent's TCP turned off (`enable_incoming_tcp` = `enable_outgoing_tcp` =
//! false, uTP on) and Shoal on its defaults (uTP on, tried before TCP):
//! - `shoal download` dials a libtorrent seeder (Shoal sends the SYN);
//! - a libtorrent leecher dials `shoal seed` (Shoal accepts over uTP).
//!
//! The scenarios live in `common/lt_utp.rs`, shared with their IPv6 twins in
//! `utp_ipv6.rs`: the torrent's tracker is a closed port, so the only connection is the
//! one each test asks for; libtorrent reports it as a uTP socket from `127.0.0.1`, and
//! the data arrives byte-identical.
//!
//! Skips with a message when python3 with libtorrent is missing, unless
//! `SHOAL_INTEROP_REQUIRED=1`.

mod common;

use anyhow::Result;
use common::libtorrent::have_libtorrent;
use common::lt_utp::{libtorrent_dials_shoal, shoal_dials_libtorrent, IPV4};

#[test]
fn shoal_downloads_from_libtorrent_over_utp() -> Result<()> {
    if !have_libtorrent("utp interop (shoal dials libtorrent)") {
        return Ok(());
    }
    shoal_dials_libtorrent(IPV4, "utp")
}

#[test]
fn libtorrent_downloads_from_shoal_over_utp() -> Result<()> {
    if !have_libtorrent("utp interop (libtorrent dials shoal)") {
        return Ok(());
    }
    libtorrent_dials_shoal(IPV4, "utp")
}
