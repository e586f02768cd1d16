//! `shoal up`: opens the data dir, starts the embedded tracker when no tracker is
//! configured, the engine session, the node and the web server, prints where they
//! are, and runs until SIGINT or SIGTERM, then stops cleanly (resume data saved).
//!
//! The web server ([`web_server`]) asks for a login once a password is set, and always
//! when it listens beyond loopback: with no password set it then makes one up, prints it
//! once (stdout and log) and keeps it in memory only.

mod web_server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use shoal_engine::{Session, SessionConfig};
use shoal_proto::PeerId;
use shoal_tracker::{Tracker, TrackerConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Node, NodeParts};
use crate::api::auth::{password, Auth, AuthSettings};
use crate::config::{self, UpArgs};
use crate::store::{torrents, Store};

/// Ports tried after the default one for the web UI and the embedded tracker.
const PORT_TRIES: u16 = 100;
/// Announce interval of the embedded tracker (a small local network wants it short).
const EMBEDDED_INTERVAL: u32 = 120;

/// `<data dir>/node.json`, for CLI commands to find a running node.
#[derive(Serialize)]
struct NodeFile<'a> {
    url: &'a str,
    pid: u32,
    peer_port: u16,
}

/// Printable form of a peer ID (Shoal's are ASCII).
pub fn peer_id_text(id: &PeerId) -> String {
    if id.0.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(&id.0).into_owned()
    } else {
        shoal_proto::ids::to_hex(&id.0)
    }
}

pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    // SIGINT/SIGTERM are caught from here on, well before the ready lines below tell a
    // supervisor (or a test) that the node is up: a signal sent right after them must
    // stop the node cleanly, not kill it with the default action.
    let interrupted = crate::cli::interrupted();
    let mut config = config::load(&args)?;
    let store = Store::open(&config.data_dir.join("shoal.db")).await?;
    let (peer_id, stored, dht_nodes) = store
        .call(|c| {
            Ok((
                torrents::peer_id(c)?,
                torrents::stored_settings(c)?,
                torrents::dht_nodes(c)?,
            ))
        })
        .await?;
    config.settings.apply(&stored);
    config.settings.apply(&config.overrides);

    let stop = CancellationToken::new();
    let mut embedded = None;
    let mut tracker_task = None;
    if config.no_tracker {
        config.settings.trackers.clear();
    } else if config.settings.trackers.is_empty() {
        let bind = config
            .tracker_bind
            .unwrap_or_else(config::default_tracker_bind);
        let tracker = bind_tracker(bind, &config.data_dir.join("tracker")).await?;
        let addr = tracker.local_addr()?;
        let url = format!("http://127.0.0.1:{}/announce", addr.port());
        config.settings.trackers = vec![url.clone()];
        embedded = Some((url, addr.port()));
        let s = stop.clone();
        tracker_task = Some(tokio::spawn(
            tracker.run(async move { s.cancelled().await }),
        ));
    }

    let session = Session::start(SessionConfig {
        peer_id,
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), config.port.unwrap_or(0)),
        port_range: config.port.is_none().then_some((6000, 6100)),
        max_up: config.settings.max_up,
        max_down: config.settings.max_down,
        lsd: config.lsd.clone(),
        encryption: config.encryption,
        dht: crate::cli::dht_config(config.dht.clone(), dht_nodes),
        pex: config.pex,
        utp: config.utp,
    })
    .await?;
    let access = config::web_access(&args, &config.data_dir)?;
    let tls = match &access.tls {
        Some((cert, key)) => Some(web_server::tls_acceptor(cert, key).await?),
        None => None,
    };
    let web = bind_web(config.web).await?;
    let web_addr = web.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let web_url = format!("{scheme}://{}/", shown(web_addr));
    let auth = web_auth(&access, web_addr, tls.is_some(), &config.data_dir).await?;
    let data_dir = config.data_dir.clone();
    let no_tracker = config.no_tracker;
    let node = Node::start(
        config,
        NodeParts {
            session: session.clone(),
            store,
            peer_id,
            embedded_tracker: embedded.as_ref().map(|(u, _)| u.clone()),
        },
    )
    .await?;
    node.set_web_url(web_url.clone());

    println!("peer id: {}", peer_id_text(&peer_id));
    println!("peer port: {}", session.listen_port());
    println!("web: {web_url}");
    if let Some((url, port)) = &embedded {
        println!(
            "tracker: {url} (embedded; other machines join with --tracker http://<this host>:{port}/announce)"
        );
    } else if no_tracker {
        println!("tracker: none (--no-tracker: torrents use their own trackers, DHT, PEX and LSD)");
    }
    if let Some(dht) = session.dht() {
        let families = if dht.ipv6() { ", with IPv6" } else { "" };
        println!(
            "dht: on (port {} over UDP{families})",
            session.listen_port()
        );
    }
    write_node_file(&data_dir, &web_url, session.listen_port()).await?;

    let layers = crate::api::WebLayers {
        auth,
        hosts: access.hosts.clone(),
        tls: tls.is_some(),
    };
    let app = crate::api::app(node.clone(), web_addr, &layers);
    let server = tokio::spawn(web_server::serve(web, app, tls, stop.clone()));
    interrupted.await;
    stop.cancel();
    node.shutdown().await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), server).await;
    if let Some(t) = tracker_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), t).await;
    }
    let _ = tokio::fs::remove_file(data_dir.join("node.json")).await;
    Ok(ExitCode::SUCCESS)
}

/// The login layer: the stored password, or beyond loopback with none set, a generated
/// one, printed once here.
async fn web_auth(
    access: &config::WebAccess,
    web_addr: SocketAddr,
    tls: bool,
    data_dir: &Path,
) -> anyhow::Result<Auth> {
    let mut hash = access.password_hash.clone();
    if hash.as_deref().is_some_and(|h| !password::is_valid_hash(h)) {
        anyhow::bail!(
            "config.toml: web_password is not an Argon2 hash; set it with `shoal passwd`"
        );
    }
    if hash.is_none() && !web_addr.ip().is_loopback() {
        let generated = password::generate();
        let pw = generated.clone();
        hash = Some(
            tokio::task::spawn_blocking(move || password::hash(&pw))
                .await
                .context("hashing the generated password")??,
        );
        let line = format!(
            "web UI password for {} (generated, set one with shoal passwd): {generated}",
            access.user
        );
        println!("{line}");
        tracing::warn!("{line}");
    }
    Ok(Auth::new(AuthSettings {
        user: access.user.clone(),
        user_from_flag: access.user_from_flag,
        password_hash: hash,
        tls,
        data_dir: Some(data_dir.to_path_buf()),
    }))
}

/// Binds the embedded tracker at `bind`, or the next free port up to 100 above it.
async fn bind_tracker(bind: SocketAddr, data_dir: &Path) -> anyhow::Result<Tracker> {
    let config = TrackerConfig {
        interval: EMBEDDED_INTERVAL,
        data_dir: Some(data_dir.to_path_buf()),
        ..TrackerConfig::default()
    };
    let tries = if bind.port() == 0 { 0 } else { PORT_TRIES };
    let mut last = None;
    for i in 0..=tries {
        let Some(port) = bind.port().checked_add(i) else {
            break;
        };
        match Tracker::bind(SocketAddr::new(bind.ip(), port), config.clone()).await {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow::anyhow!(
        "cannot start the embedded tracker on {bind} or the next {tries} ports: {}; \
         choose --tracker-bind or give --tracker URL",
        last.map_or_else(|| "no port".into(), |e| e.to_string())
    ))
}

/// Binds the web server at `web`, or 127.0.0.1 from port 8080 upwards.
async fn bind_web(web: Option<SocketAddr>) -> anyhow::Result<TcpListener> {
    if let Some(addr) = web {
        return TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}; choose another --web address"));
    }
    let base = config::default_web();
    for i in 0..=PORT_TRIES {
        if let Ok(l) = TcpListener::bind(SocketAddr::new(base.ip(), base.port() + i)).await {
            return Ok(l);
        }
    }
    TcpListener::bind(SocketAddr::new(base.ip(), 0))
        .await
        .context("cannot listen for the web UI on 127.0.0.1")
}

/// The address to print: loopback instead of the unspecified address.
fn shown(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

async fn write_node_file(dir: &Path, url: &str, peer_port: u16) -> anyhow::Result<()> {
    let body = serde_json::to_vec(&NodeFile {
        url,
        pid: std::process::id(),
        peer_port,
    })?;
    let tmp = dir.join("node.json.tmp");
    tokio::fs::write(&tmp, body).await?;
    tokio::fs::rename(&tmp, dir.join("node.json"))
        .await
        .context("cannot write node.json")
}
