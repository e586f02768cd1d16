//! Command implementations and the helpers they share (sizes, rates, signals).

pub mod client;
pub mod create;
pub mod passwd;
pub mod tracker;
pub mod transfer;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Args;
use shoal_engine::EncryptionPolicy;

/// Network options of the seed and download commands.
#[derive(Args, Debug, Clone)]
pub struct NetArgs {
    /// Folder that holds the torrent's data under its name.
    #[arg(long, short = 'd', default_value = ".")]
    pub dir: PathBuf,
    /// Peer listen port (0: any free port; default: first free in 6000-6100).
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on for peers.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_ip: IpAddr,
    /// Also connect to this peer (repeatable).
    #[arg(long = "peer")]
    pub peers: Vec<SocketAddr>,
    /// Use this tracker instead of the torrent's (repeatable).
    #[arg(long = "tracker")]
    pub trackers: Vec<String>,
    /// Upload limit in bytes per second, e.g. 1MiB (default: unlimited).
    #[arg(long, value_parser = parse_size)]
    pub max_up: Option<u64>,
    /// Download limit in bytes per second, e.g. 8MiB (default: unlimited).
    #[arg(long, value_parser = parse_size)]
    pub max_down: Option<u64>,
    /// Find peers on the local network by multicast (BEP 14 local service discovery).
    #[arg(long)]
    pub lsd: bool,
    /// IPv4 address of the interface local discovery uses (implies --lsd; default:
    /// the kernel's choice).
    #[arg(long, value_name = "IPV4")]
    pub lsd_interface: Option<Ipv4Addr>,
    /// Peer connection encryption (MSE): off, allow, prefer or require.
    #[arg(long, default_value = "allow")]
    pub encryption: EncryptionPolicy,
    /// Join the Mainline DHT (BEP 5) through the usual public routers.
    #[arg(long)]
    pub dht: bool,
    /// Exchange peers with connected peers (BEP 11; never on private torrents).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub pex: bool,
    /// Join the DHT through this node instead of the public routers (repeatable;
    /// implies --dht).
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// uTP (BEP 29) on the peer port's number over UDP, tried before TCP when
    /// dialling: true or false.
    #[arg(long, default_value_t = true, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub utp: bool,
}

/// Public DHT routers used by `--dht` when no `--dht-bootstrap` is given.
pub const DHT_ROUTERS: &[&str] = &[
    "router.bittorrent.com:6881",
    "router.utorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
];

/// The DHT's bootstrap nodes from `--dht` and `--dht-bootstrap` (which implies it):
/// `None` when the DHT is off; the public routers when none are named.
pub fn dht_bootstrap(on: bool, nodes: &[String]) -> Option<Vec<String>> {
    if !nodes.is_empty() {
        return Some(nodes.to_vec());
    }
    on.then(|| DHT_ROUTERS.iter().map(|s| s.to_string()).collect())
}

/// The engine's DHT settings for `bootstrap` nodes and nodes saved earlier.
pub fn dht_config(
    bootstrap: Option<Vec<String>>,
    saved: Vec<(shoal_proto::dht::NodeId, std::net::SocketAddr)>,
) -> Option<shoal_engine::DhtConfig> {
    bootstrap.map(|bootstrap| shoal_engine::DhtConfig {
        bootstrap,
        nodes: saved,
        ..shoal_engine::DhtConfig::default()
    })
}

/// The engine's LSD settings from `--lsd` and `--lsd-interface` (which implies it).
pub fn lsd_config(on: bool, interface: Option<Ipv4Addr>) -> Option<shoal_engine::LsdConfig> {
    (on || interface.is_some()).then(|| shoal_engine::LsdConfig {
        interface: interface.unwrap_or(Ipv4Addr::UNSPECIFIED),
    })
}

/// Parses `123`, `16KiB`, `8MiB`, `1GiB`, `2MB`, `1k`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 16384, 16KiB or 8MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(format!("unknown unit in {s:?}: use B, KiB, MiB or GiB")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// `1.5 MiB` style.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `1h 02m`, `3m 05s`, `12s`.
pub fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed by this call, not on the
/// first poll: call it before the process announces that it is ready, so that a signal
/// sent right after start-up still shuts it down gracefully. Must run inside the runtime.
pub fn interrupted() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let (Some(mut term), Some(mut int)) = (term, int) else {
                return std::future::pending().await;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16384"), Ok(16384));
        assert_eq!(parse_size("16KiB"), Ok(16384));
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("2mb"), Ok(2_000_000));
        assert!(parse_size("x").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_duration(3720), "1h 02m");
        assert_eq!(human_duration(65), "1m 05s");
    }
}
