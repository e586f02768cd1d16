//! `shoal tracker`: runs the tracker (HTTP and UDP announces, catalog, status page) in
//! the foreground.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use shoal_tracker::catalog::postgres::{is_postgres_url, redact_url};
use shoal_tracker::{Tracker, TrackerConfig};

/// Options of `shoal tracker`.
#[derive(Args, Debug, Clone)]
pub struct TrackerArgs {
    /// Address to listen on, TCP (HTTP) and UDP on the same port (port 0: any free
    /// port, printed once listening).
    #[arg(long, default_value = "0.0.0.0:6969")]
    pub bind: SocketAddr,
    /// Seconds clients should wait between announces.
    #[arg(long, default_value_t = 1800)]
    pub interval: u32,
    /// Folder for the catalog database (catalog.sqlite) and the saved swarms
    /// (swarms.sqlite: peers written every 5 s and at exit, restored at start), created
    /// if missing. Without it both live in memory and are lost at exit.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Keep the catalog in this PostgreSQL database instead of --data-dir, e.g.
    /// postgres://shoal:PASSWORD@db.lan:5432/shoal; several trackers may share it (each
    /// sees the others' torrents within 5 s). The swarms are saved there too, so a
    /// replacement tracker starts with them. Tables are created on first use. No TLS.
    #[arg(long, env = "SHOAL_CATALOG_DB", value_name = "URL")]
    pub catalog_db: Option<String>,
    /// Track only torrents published to the catalog; announces for others are refused.
    #[arg(long)]
    pub catalog_only: bool,
    /// List private (BEP 27) torrents in search results.
    #[arg(long)]
    pub list_private: bool,
    /// Largest .torrent accepted by POST /publish, e.g. 16MiB.
    #[arg(long, value_parser = super::parse_size, default_value = "16MiB")]
    pub max_publish: u64,
    /// Serve HTTP only (no BEP 15 UDP tracker).
    #[arg(long)]
    pub no_udp: bool,
}

pub async fn run(args: TrackerArgs) -> anyhow::Result<ExitCode> {
    let interrupted = super::interrupted();
    let bind = args.bind;
    // Checked here rather than by clap, which would echo a password in its error.
    if let Some(url) = &args.catalog_db {
        check_catalog_db(url).map_err(anyhow::Error::msg)?;
    }
    let config = TrackerConfig {
        interval: args.interval,
        data_dir: args.data_dir.clone(),
        catalog_db: args.catalog_db.clone(),
        catalog_only: args.catalog_only,
        list_private: args.list_private,
        max_publish_bytes: usize::try_from(args.max_publish).unwrap_or(usize::MAX),
        udp: !args.no_udp,
        ..TrackerConfig::default()
    };
    let tracker = Tracker::bind(bind, config).await.with_context(|| {
        format!(
            "cannot start the tracker on {bind}; is another tracker running? choose another \
             --bind, and check that --data-dir is writable or --catalog-db reachable"
        )
    })?;
    let addr = tracker.local_addr()?;
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    println!("tracker: http://{shown}/announce");
    if !args.no_udp {
        println!("udp tracker: udp://{shown}");
    }
    if let Some(url) = &args.catalog_db {
        println!("catalog: {} (PostgreSQL)", redact_url(url));
        println!("swarms: {} (PostgreSQL)", redact_url(url));
    } else if let Some(dir) = &args.data_dir {
        println!("catalog: {}", dir.join("catalog.sqlite").display());
        println!("swarms: {}", dir.join(shoal_tracker::SWARMS_FILE).display());
    }
    if addr.ip().is_unspecified() {
        println!(
            "listening on all interfaces; other machines use http://<this host>:{}/announce",
            addr.port()
        );
    }
    tracker.run(interrupted).await?;
    Ok(ExitCode::SUCCESS)
}

/// Accepts only PostgreSQL URLs for `--catalog-db` (SQLite is `--data-dir`).
fn check_catalog_db(s: &str) -> Result<(), String> {
    if is_postgres_url(s) {
        Ok(())
    } else {
        Err(format!(
            "--catalog-db {} is not a PostgreSQL URL; give \
             postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or postgresql://...), or leave \
             --catalog-db out to use SQLite in --data-dir",
            redact_url(s)
        ))
    }
}
