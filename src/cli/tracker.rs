//! `shoal tracker`: runs the HTTP tracker in the foreground.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use shoal_tracker::{Tracker, TrackerConfig};

/// Options of `shoal tracker`.
#[derive(Args, Debug, Clone)]
pub struct TrackerArgs {
    /// Address to listen on (port 0: any free port, printed once listening).
    #[arg(long, default_value = "0.0.0.0:6969")]
    pub bind: SocketAddr,
    /// Seconds clients should wait between announces.
    #[arg(long, default_value_t = 1800)]
    pub interval: u32,
}

pub async fn run(args: TrackerArgs) -> anyhow::Result<ExitCode> {
    let bind = args.bind;
    let config = TrackerConfig {
        interval: args.interval,
        ..TrackerConfig::default()
    };
    let tracker = Tracker::bind(bind, config).await.with_context(|| {
        format!("cannot listen on {bind}; is another tracker running? choose another --bind")
    })?;
    let addr = tracker.local_addr()?;
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    println!("tracker: http://{shown}/announce");
    if addr.ip().is_unspecified() {
        println!(
            "listening on all interfaces; other machines use http://<this host>:{}/announce",
            addr.port()
        );
    }
    tracker.run(super::interrupted()).await?;
    Ok(ExitCode::SUCCESS)
}
