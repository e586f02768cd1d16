//! `shoal tracker`: runs the tracker (HTTP and UDP announces, catalog, status page) in
//! the foreground.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
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
    /// Folder for the catalog database (catalog.sqlite), created if missing. Without
    /// it the catalog lives in memory and is lost at exit.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
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
    let bind = args.bind;
    let config = TrackerConfig {
        interval: args.interval,
        data_dir: args.data_dir.clone(),
        catalog_only: args.catalog_only,
        list_private: args.list_private,
        max_publish_bytes: usize::try_from(args.max_publish).unwrap_or(usize::MAX),
        udp: !args.no_udp,
        ..TrackerConfig::default()
    };
    let tracker = Tracker::bind(bind, config).await.with_context(|| {
        format!(
            "cannot start the tracker on {bind}; is another tracker running? choose another \
             --bind, and check that --data-dir is writable"
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
    if let Some(dir) = &args.data_dir {
        println!("catalog: {}", dir.join("catalog.sqlite").display());
    }
    if addr.ip().is_unspecified() {
        println!(
            "listening on all interfaces; other machines use http://<this host>:{}/announce",
            addr.port()
        );
    }
    tracker.run(super::interrupted()).await?;
    Ok(ExitCode::SUCCESS)
}
