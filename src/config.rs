//! Node configuration. Sources, later ones winning: built-in defaults,
//! `<data dir>/config.toml`, settings changed at run time through the API (kept in the
//! node's database), then `SHOAL_*` environment variables and command-line flags.
//!
//! Only this module reads the config file and environment; the node gets a typed
//! [`NodeConfig`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

use shoal_engine::EncryptionPolicy;

use crate::cli::parse_size;

pub mod automation;

use automation::{AutoPatch, AutoSettings};

/// First port tried for the web UI and API when `--web` is not given.
pub const DEFAULT_WEB_PORT: u16 = 8080;
/// Port of the embedded tracker (or the next free one).
pub const DEFAULT_TRACKER_PORT: u16 = 5000;
/// Downloads running at once by default; more wait as `queued`.
pub const DEFAULT_MAX_ACTIVE: u32 = 5;
/// Largest file `POST /api/upload` takes by default (it goes to disk, not memory).
pub const DEFAULT_MAX_UPLOAD: u64 = 4 << 30;

/// Options of `shoal up` (each also `SHOAL_<NAME>` in the environment and a key of
/// `<data dir>/config.toml`).
#[derive(Args, Debug, Clone, Default)]
pub struct UpArgs {
    /// Folder for the node's state (default: the platform data dir, e.g. ~/.local/share/shoal).
    #[arg(long, env = "SHOAL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Peer listen port (0: any free port; default: first free in 6000-6100).
    #[arg(long, env = "SHOAL_PORT")]
    pub port: Option<u16>,
    /// Address of the web UI and JSON API (default: 127.0.0.1, first free port from 8080).
    #[arg(long, env = "SHOAL_WEB")]
    pub web: Option<SocketAddr>,
    /// Tracker announce URL (repeatable; none: run an embedded tracker and use it).
    #[arg(long = "tracker", env = "SHOAL_TRACKER", value_delimiter = ',')]
    pub trackers: Vec<String>,
    /// Address of the embedded tracker (default: 0.0.0.0:5000 or the next free port).
    #[arg(long, env = "SHOAL_TRACKER_BIND")]
    pub tracker_bind: Option<SocketAddr>,
    /// Run no embedded tracker and use no default tracker: each torrent relies on its
    /// own trackers, the DHT, peer exchange and local discovery.
    #[arg(long, env = "SHOAL_NO_TRACKER")]
    pub no_tracker: bool,
    /// Where downloads are saved (default: the user's download folder).
    #[arg(long, env = "SHOAL_DOWNLOAD_DIR")]
    pub download_dir: Option<PathBuf>,
    /// Keep seeding completed downloads (default: true; `--auto-share false` stops them).
    #[arg(long, env = "SHOAL_AUTO_SHARE", num_args = 0..=1, default_missing_value = "true")]
    pub auto_share: Option<bool>,
    /// Download limit in bytes per second, e.g. 8MiB (0: unlimited, the default).
    #[arg(long, env = "SHOAL_MAX_DOWN", value_parser = parse_size)]
    pub max_down: Option<u64>,
    /// Upload limit in bytes per second, e.g. 1MiB (0: unlimited, the default).
    #[arg(long, env = "SHOAL_MAX_UP", value_parser = parse_size)]
    pub max_up: Option<u64>,
    /// Downloads running at once; others wait as `queued` (0: no limit; default 5).
    #[arg(long, env = "SHOAL_MAX_ACTIVE")]
    pub max_active: Option<u32>,
    /// Folder the API may share from and save to (repeatable; replaces `share_roots` of
    /// config.toml; default: the home dir). The download dir is always allowed.
    #[arg(long = "share-root", env = "SHOAL_SHARE_ROOT", value_delimiter = ',')]
    pub share_roots: Vec<PathBuf>,
    /// Largest file accepted by `POST /api/upload`, e.g. 1GiB (default 4GiB).
    #[arg(long, env = "SHOAL_MAX_UPLOAD", value_parser = parse_size)]
    pub max_upload: Option<u64>,
    /// Find peers on the local network by multicast (BEP 14 local service discovery).
    #[arg(long, env = "SHOAL_LSD")]
    pub lsd: bool,
    /// IPv4 address of the interface local discovery uses (implies --lsd; default:
    /// the kernel's choice).
    #[arg(long, env = "SHOAL_LSD_INTERFACE", value_name = "IPV4")]
    pub lsd_interface: Option<Ipv4Addr>,
    /// Join the Mainline DHT (BEP 5) through the usual public routers (off by default).
    #[arg(long, env = "SHOAL_DHT")]
    pub dht: bool,
    /// Exchange peers with connected peers (BEP 11; default true; never on private
    /// torrents).
    #[arg(long, env = "SHOAL_PEX", value_name = "BOOL")]
    pub pex: Option<bool>,
    /// Join the DHT through this node instead of the public routers (repeatable;
    /// implies --dht).
    #[arg(
        long = "dht-bootstrap",
        env = "SHOAL_DHT_BOOTSTRAP",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    pub dht_bootstrap: Vec<String>,
    /// Peer connection encryption (MSE): off, allow, prefer or require (default allow).
    #[arg(long, env = "SHOAL_ENCRYPTION")]
    pub encryption: Option<EncryptionPolicy>,
    /// uTP (BEP 29) on the peer port's number over UDP, tried before TCP when
    /// dialling: true or false (default true).
    #[arg(long, env = "SHOAL_UTP", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub utp: Option<bool>,
    /// User name of the web UI and API login (default: admin; the password is set with
    /// `shoal passwd`).
    #[arg(long, env = "SHOAL_WEB_USER", value_name = "NAME")]
    pub web_user: Option<String>,
    /// Host name the web UI and API answer to besides loopback names and the bound
    /// address (repeatable; `*.example.org` matches subdomains). Guards against DNS
    /// rebinding.
    #[arg(
        long = "web-host",
        env = "SHOAL_WEB_HOST",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub web_hosts: Vec<String>,
    /// PEM certificate chain: serve the web UI and API over HTTPS (with --web-tls-key).
    #[arg(
        long,
        env = "SHOAL_WEB_TLS_CERT",
        value_name = "FILE",
        requires = "web_tls_key"
    )]
    pub web_tls_cert: Option<PathBuf>,
    /// PEM private key of --web-tls-cert.
    #[arg(
        long,
        env = "SHOAL_WEB_TLS_KEY",
        value_name = "FILE",
        requires = "web_tls_cert"
    )]
    pub web_tls_key: Option<PathBuf>,
    /// Seeding rules, queue, watch folder, alternative speed limits.
    #[command(flatten)]
    pub auto: AutoPatch,
}

/// A size in TOML: a number of bytes or a string such as `"8MiB"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    /// Bytes.
    Bytes(u64),
    /// Human units, parsed by [`parse_size`].
    Text(String),
}

impl SizeValue {
    fn bytes(&self) -> anyhow::Result<u64> {
        match self {
            SizeValue::Bytes(n) => Ok(*n),
            SizeValue::Text(s) => parse_size(s).map_err(anyhow::Error::msg),
        }
    }
}

/// `<data dir>/config.toml`. Every key is optional; absent keys keep the defaults
/// documented on [`UpArgs`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Peer listen port (0: any free port). Default: first free in 6000-6100.
    pub port: Option<u16>,
    /// Web UI and API address. Default: 127.0.0.1 and the first free port from 8080.
    pub web: Option<SocketAddr>,
    /// Tracker announce URLs. Default: none, which runs the embedded tracker.
    pub trackers: Vec<String>,
    /// Embedded tracker address. Default: 0.0.0.0:5000 or the next free port.
    pub tracker_bind: Option<SocketAddr>,
    /// No embedded tracker and no default tracker (see `--no-tracker`). Default: false.
    pub no_tracker: Option<bool>,
    /// Download folder. Default: the user's download folder.
    pub download_dir: Option<PathBuf>,
    /// Keep seeding completed downloads. Default: true.
    pub auto_share: Option<bool>,
    /// Download limit, bytes per second or `"8MiB"`. Default: 0 (unlimited).
    pub max_down: Option<SizeValue>,
    /// Upload limit, bytes per second or `"1MiB"`. Default: 0 (unlimited).
    pub max_up: Option<SizeValue>,
    /// Downloads running at once (0: no limit). Default: 5.
    pub max_active: Option<u32>,
    /// Folders the API may browse, share from and save downloads to (the download
    /// folder always may). Default: home.
    pub share_roots: Vec<PathBuf>,
    /// Largest file `POST /api/upload` takes, bytes or `"1GiB"`. Default: 4 GiB.
    pub max_upload: Option<SizeValue>,
    /// Local service discovery (BEP 14). Default: false.
    pub lsd: Option<bool>,
    /// IPv4 address of the interface LSD uses (implies `lsd = true`). Default: the
    /// kernel's choice.
    pub lsd_interface: Option<Ipv4Addr>,
    /// Join the Mainline DHT through the public routers. Default: false.
    pub dht: Option<bool>,
    /// Peer exchange (BEP 11). Default: true.
    pub pex: Option<bool>,
    /// DHT bootstrap nodes (`"host:port"`), replacing the public routers; implies
    /// `dht = true`. Default: none.
    pub dht_bootstrap: Vec<String>,
    /// Peer connection encryption (MSE): `"off"`, `"allow"`, `"prefer"` or
    /// `"require"`. Default: `"allow"`.
    pub encryption: Option<String>,
    /// uTP (BEP 29) besides TCP, tried first when dialling. Default: true.
    pub utp: Option<bool>,
    /// User name of the web login. Default: `"admin"`.
    pub web_user: Option<String>,
    /// Argon2id hash (PHC string) of the web login password, written by `shoal passwd`.
    /// Default: none (no login on loopback; a generated password beyond it).
    pub web_password: Option<String>,
    /// Host names the web server answers to besides loopback and its address. Default:
    /// none.
    pub web_hosts: Vec<String>,
    /// PEM certificate chain for HTTPS (with `web_tls_key`). Default: plain HTTP.
    pub web_tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS. Default: none.
    pub web_tls_key: Option<PathBuf>,
    /// Seeding rules, queue, watch folder, alternative speed limits (the keys of
    /// [`AutoPatch`]). Default: see [`AutoSettings`].
    #[serde(flatten)]
    pub auto: AutoPatch,
}

/// The settings that can change at run time (`GET`/`PATCH /api/settings`); kept in the
/// database once changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Download limit in bytes per second (0: unlimited).
    pub max_down: u64,
    /// Upload limit in bytes per second (0: unlimited).
    pub max_up: u64,
    /// Keep seeding completed downloads.
    pub auto_share: bool,
    /// Downloads running at once (0: no limit).
    pub max_active: u32,
    /// Tracker announce URLs used for new and resumed torrents.
    pub trackers: Vec<String>,
    /// Where downloads are saved.
    pub download_dir: PathBuf,
    /// Seeding rules, queue, watch folder, alternative speed limits.
    #[serde(flatten)]
    pub auto: AutoSettings,
}

/// Settings changed through the API (any subset); also the database record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// See [`Settings::max_down`].
    pub max_down: Option<u64>,
    /// See [`Settings::max_up`].
    pub max_up: Option<u64>,
    /// See [`Settings::auto_share`].
    pub auto_share: Option<bool>,
    /// See [`Settings::max_active`].
    pub max_active: Option<u32>,
    /// See [`Settings::trackers`].
    pub trackers: Option<Vec<String>>,
    /// See [`Settings::download_dir`].
    pub download_dir: Option<PathBuf>,
    /// See [`Settings::auto`].
    #[serde(flatten)]
    pub auto: AutoPatch,
}

impl Settings {
    /// Applies the fields present in `p`.
    pub fn apply(&mut self, p: &SettingsPatch) {
        if let Some(v) = p.max_down {
            self.max_down = v;
        }
        if let Some(v) = p.max_up {
            self.max_up = v;
        }
        if let Some(v) = p.auto_share {
            self.auto_share = v;
        }
        if let Some(v) = p.max_active {
            self.max_active = v;
        }
        if let Some(v) = &p.trackers {
            self.trackers = v.clone();
        }
        if let Some(v) = &p.download_dir {
            self.download_dir = v.clone();
        }
        self.auto.apply(&p.auto);
    }
}

/// Everything the node needs, resolved.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Folder of the database, config file and `node.json`.
    pub data_dir: PathBuf,
    /// Peer port: `None` tries 6000-6100, then any.
    pub port: Option<u16>,
    /// Web address: `None` tries 127.0.0.1:8080 upwards.
    pub web: Option<SocketAddr>,
    /// Embedded tracker address (used when `settings.trackers` is empty at start).
    pub tracker_bind: Option<SocketAddr>,
    /// No embedded tracker, no default tracker.
    pub no_tracker: bool,
    /// Folders the API may list (`/api/fs`), share from and save to, besides the
    /// download dir.
    pub share_roots: Vec<PathBuf>,
    /// Largest body of `POST /api/upload`, in bytes.
    pub max_upload: u64,
    /// Peer connection encryption (fixed for the node's run).
    pub encryption: EncryptionPolicy,
    /// uTP besides TCP (fixed for the node's run).
    pub utp: bool,
    /// Run-time settings at start.
    pub settings: Settings,
    /// Settings given by flags or environment this run (they override stored ones).
    pub overrides: SettingsPatch,
    /// Local service discovery; `None`: off.
    pub lsd: Option<shoal_engine::LsdConfig>,
    /// DHT bootstrap nodes; `None`: no DHT.
    pub dht: Option<Vec<String>>,
    /// Peer exchange on public torrents.
    pub pex: bool,
}

/// The platform data directory for Shoal (`$XDG_DATA_HOME/shoal`, `~/.local/share/shoal`).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("shoal"))
        .unwrap_or_else(|| PathBuf::from(".shoal"))
}

/// Reads `<data dir>/config.toml` (absent: defaults) and merges `args` over it.
/// Stored settings are merged later by the node ([`NodeConfig::overrides`]).
pub fn load(args: &UpArgs) -> anyhow::Result<NodeConfig> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir).with_context(|| {
        format!(
            "cannot create the data dir {}; choose another with --data-dir",
            data_dir.display()
        )
    })?;
    let file = read_file(&data_dir.join("config.toml"))?;
    let download_dir = file.download_dir.clone().unwrap_or_else(|| {
        dirs::download_dir()
            .or_else(|| dirs::home_dir().map(|h| h.join("Downloads")))
            .unwrap_or_else(|| data_dir.join("downloads"))
    });
    let size = |v: &Option<SizeValue>, key: &str| -> anyhow::Result<u64> {
        v.as_ref()
            .map_or(Ok(0), SizeValue::bytes)
            .with_context(|| format!("config.toml: bad {key}"))
    };
    let settings = Settings {
        max_down: size(&file.max_down, "max_down")?,
        max_up: size(&file.max_up, "max_up")?,
        auto_share: file.auto_share.unwrap_or(true),
        max_active: file.max_active.unwrap_or(DEFAULT_MAX_ACTIVE),
        trackers: file.trackers.clone(),
        download_dir,
        auto: {
            let mut a = AutoSettings::default();
            a.apply(&file.auto);
            a
        },
    };
    let overrides = SettingsPatch {
        max_down: args.max_down,
        max_up: args.max_up,
        auto_share: args.auto_share,
        max_active: args.max_active,
        trackers: (!args.trackers.is_empty()).then(|| args.trackers.clone()),
        download_dir: args.download_dir.clone(),
        auto: args.auto.clone(),
    };
    let mut share_roots = if args.share_roots.is_empty() {
        file.share_roots.clone()
    } else {
        args.share_roots.clone()
    };
    if share_roots.is_empty() {
        share_roots.extend(dirs::home_dir());
    }
    Ok(NodeConfig {
        data_dir,
        port: args.port.or(file.port),
        web: args.web.or(file.web),
        tracker_bind: args.tracker_bind.or(file.tracker_bind),
        no_tracker: args.no_tracker || file.no_tracker.unwrap_or(false),
        lsd: crate::cli::lsd_config(
            args.lsd || file.lsd.unwrap_or(false),
            args.lsd_interface.or(file.lsd_interface),
        ),
        pex: args.pex.or(file.pex).unwrap_or(true),
        dht: crate::cli::dht_bootstrap(
            args.dht || file.dht.unwrap_or(false),
            if args.dht_bootstrap.is_empty() {
                &file.dht_bootstrap
            } else {
                &args.dht_bootstrap
            },
        ),
        share_roots,
        max_upload: match args.max_upload {
            Some(n) => n,
            None => file
                .max_upload
                .as_ref()
                .map_or(Ok(DEFAULT_MAX_UPLOAD), SizeValue::bytes)
                .context("config.toml: bad max_upload")?,
        },
        encryption: match args.encryption {
            Some(p) => p,
            None => file
                .encryption
                .as_deref()
                .map_or(Ok(EncryptionPolicy::default()), str::parse)
                .map_err(anyhow::Error::msg)
                .context("config.toml: bad encryption")?,
        },
        utp: args.utp.or(file.utp).unwrap_or(true),
        settings,
        overrides,
    })
}

/// Who may use the web UI and API, resolved from flags and `config.toml`.
#[derive(Debug, Clone, Default)]
pub struct WebAccess {
    /// Login user name.
    pub user: String,
    /// The user name came from `--web-user`, so a reloaded config file does not change it.
    pub user_from_flag: bool,
    /// Argon2id PHC string of the password; `None`: no password set.
    pub password_hash: Option<String>,
    /// Extra host names allowed in `Host` (`--web-host`).
    pub hosts: Vec<String>,
    /// PEM certificate chain and key files, for HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Default login user name.
pub const DEFAULT_WEB_USER: &str = "admin";

/// The web access settings of `shoal up` (flags over `<data dir>/config.toml`).
pub fn web_access(args: &UpArgs, data_dir: &Path) -> anyhow::Result<WebAccess> {
    let file = read_file(&config_path(data_dir))?;
    let hosts = if args.web_hosts.is_empty() {
        file.web_hosts
    } else {
        args.web_hosts.clone()
    };
    let tls = match (
        args.web_tls_cert.clone().or(file.web_tls_cert),
        args.web_tls_key.clone().or(file.web_tls_key),
    ) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => anyhow::bail!("HTTPS needs both web_tls_cert and web_tls_key (or neither)"),
    };
    Ok(WebAccess {
        user: args
            .web_user
            .clone()
            .or(file.web_user)
            .unwrap_or_else(|| DEFAULT_WEB_USER.to_string()),
        user_from_flag: args.web_user.is_some(),
        password_hash: file.web_password,
        hosts,
        tls,
    })
}

/// `(web_user, web_password)` as `config.toml` holds them now, for a running node to
/// pick up a password set by `shoal passwd`.
pub fn web_credentials(data_dir: &Path) -> anyhow::Result<(Option<String>, Option<String>)> {
    let file = read_file(&config_path(data_dir))?;
    Ok((file.web_user, file.web_password))
}

/// Checks that `text` is a valid `config.toml` (before `shoal passwd` replaces it).
pub fn validate_file(text: &str) -> anyhow::Result<()> {
    toml::from_str::<FileConfig>(text)
        .map(drop)
        .context("the new config.toml would not be valid")
}

/// `<data dir>/config.toml`.
pub fn config_path(data_dir: &Path) -> PathBuf {
    data_dir.join("config.toml")
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("{} is not a valid config file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The default web address: 127.0.0.1 with the first free port from 8080.
pub fn default_web() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_WEB_PORT)
}

/// The default embedded tracker address: all interfaces, port 5000 or the next free.
pub fn default_tracker_bind() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_TRACKER_PORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_config_is_strict_and_takes_sizes() {
        let c: FileConfig =
            toml::from_str("max_up = \"1MiB\"\nmax_down = 500\nport = 0\n").unwrap();
        assert_eq!(c.max_up.unwrap().bytes().unwrap(), 1 << 20);
        assert_eq!(c.max_down.unwrap().bytes().unwrap(), 500);
        assert!(toml::from_str::<FileConfig>("nope = 1").is_err());
    }

    /// `encryption` comes from config.toml unless a flag gives it; a bad value names
    /// the key.
    #[test]
    fn encryption_from_file_then_flag() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = UpArgs {
            data_dir: Some(dir.path().to_path_buf()),
            ..UpArgs::default()
        };
        assert_eq!(load(&args).unwrap().encryption, EncryptionPolicy::Allow);
        std::fs::write(dir.path().join("config.toml"), "encryption = \"prefer\"\n").unwrap();
        assert_eq!(load(&args).unwrap().encryption, EncryptionPolicy::Prefer);
        args.encryption = Some(EncryptionPolicy::Require);
        assert_eq!(load(&args).unwrap().encryption, EncryptionPolicy::Require);
        args.encryption = None;
        std::fs::write(dir.path().join("config.toml"), "encryption = \"forced\"\n").unwrap();
        let e = format!("{:#}", load(&args).unwrap_err());
        assert!(e.contains("encryption") && e.contains("require"), "{e}");
    }

    #[test]
    fn lsd_is_off_unless_asked_and_an_interface_implies_it() {
        use shoal_engine::LsdConfig;
        let c: FileConfig = toml::from_str("lsd_interface = \"10.0.0.1\"\n").unwrap();
        let iface = c.lsd_interface;
        assert_eq!(
            crate::cli::lsd_config(c.lsd.unwrap_or(false), iface),
            Some(LsdConfig {
                interface: Ipv4Addr::new(10, 0, 0, 1)
            })
        );
        let c: FileConfig = toml::from_str("lsd = true\n").unwrap();
        assert_eq!(
            crate::cli::lsd_config(c.lsd.unwrap_or(false), c.lsd_interface),
            Some(LsdConfig {
                interface: Ipv4Addr::UNSPECIFIED
            })
        );
        assert_eq!(crate::cli::lsd_config(false, None), None);
        assert!(toml::from_str::<FileConfig>("lsd_interface = \"::1\"").is_err());
    }

    #[test]
    fn patch_applies_only_given_fields() {
        let mut s = Settings {
            max_down: 1,
            max_up: 2,
            auto_share: true,
            max_active: 5,
            trackers: vec![],
            download_dir: "d".into(),
            auto: AutoSettings::default(),
        };
        s.apply(&SettingsPatch {
            max_up: Some(9),
            ..SettingsPatch::default()
        });
        assert_eq!((s.max_down, s.max_up, s.auto_share), (1, 9, true));
    }

    /// The automation keys sit beside the others, and unknown keys are still refused
    /// (in `config.toml` and in `PATCH /api/settings`).
    #[test]
    fn automation_keys_are_flat_and_strict() {
        let c: FileConfig =
            toml::from_str("max_active = 2\nseed_ratio_limit = 1.5\nwatch_dir = \"/w\"\n").unwrap();
        assert_eq!(c.auto.seed_ratio_limit, Some(1.5));
        assert!(toml::from_str::<FileConfig>("seed_ratio = 1").is_err());
        let p: SettingsPatch =
            serde_json::from_str(r#"{"max_up": 5, "max_active_seeds": 2}"#).unwrap();
        assert_eq!((p.max_up, p.auto.max_active_seeds), (Some(5), Some(2)));
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"bogus": 1}"#).is_err());
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"max_up": "x"}"#).is_err());
    }
}
