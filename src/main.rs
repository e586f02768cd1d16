//! `shoal`: one binary for the Shoal peer-to-peer file sharing system — the tracker,
//! torrent creation, and foreground seed/download commands.
//!
//! Argument parsing lives here; each command is in [`cli`].

mod api;
mod cli;
mod config;
mod node;
mod store;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Shoal: peer-to-peer file sharing over the BitTorrent protocol.
#[derive(Parser, Debug)]
#[command(name = "shoal", version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Args {
    /// Without a command: `up` (its options may be given directly: `shoal --port 6001`).
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    up: config::UpArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node: seed and download many torrents, with a web UI and JSON API (the default).
    Up(Box<config::UpArgs>),
    /// Start a tracker and N nodes in separate data dirs, for local trials.
    Swarm(node::swarm::SwarmArgs),
    /// Run a BitTorrent tracker (HTTP announce and scrape).
    Tracker(cli::tracker::TrackerArgs),
    /// Commands for a running node (`shoal up`): add, share, ls, pause, resume, rm, ...
    #[command(flatten)]
    Node(cli::client::ClientCommand),
    /// Make a .torrent from a file or folder.
    Create {
        /// File or folder to share.
        path: PathBuf,
        /// Tracker announce URL (repeat for backups, one tier each).
        #[arg(long = "tracker", short = 't')]
        trackers: Vec<String>,
        /// Where to write the .torrent (default: <name>.torrent here).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// Piece size in bytes (power of two, 16 KiB or more; default: chosen by size).
        #[arg(long, value_parser = cli::parse_size)]
        piece_size: Option<u64>,
        /// Mark the torrent private (BEP 27: trackers only).
        #[arg(long)]
        private: bool,
        /// A comment stored in the torrent.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Show what a .torrent holds.
    Info {
        /// The .torrent file.
        torrent: PathBuf,
    },
    /// Seed a torrent whose data is complete under DIR/<name>.
    Seed {
        /// The .torrent file.
        torrent: PathBuf,
        #[command(flatten)]
        net: cli::NetArgs,
    },
    /// Download a torrent into DIR/<name>; exits when every piece is verified.
    Download {
        /// The .torrent file, or a magnet link (its metadata is fetched from its peers:
        /// `x.pe`, `--peer`, its trackers).
        torrent: PathBuf,
        /// Keep seeding after the download completes, until interrupted.
        #[arg(long)]
        seed: bool,
        /// Give up with an error when no data arrives for this many seconds (0: never).
        #[arg(long, default_value_t = 600)]
        stall_timeout: u64,
        #[command(flatten)]
        net: cli::NetArgs,
    },
    /// Set the password of the web UI and API login (asks twice, or reads two lines
    /// from stdin).
    Passwd(cli::passwd::PasswdArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Before any thread starts. The tracker allocates little per request and serves
    // from several threads at once: it keeps glibc's defaults (one heap per thread).
    if !matches!(args.command, Some(Command::Tracker(_))) {
        keep_freed_memory();
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        let command = match args.command {
            Some(c) => c,
            None => Command::Up(Box::new(args.up)),
        };
        match command {
            Command::Up(args) => node::up::run(*args).await,
            Command::Swarm(args) => node::swarm::run(args).await,
            Command::Tracker(args) => cli::tracker::run(args).await,
            Command::Node(cmd) => cli::client::run(cmd).await,
            Command::Create {
                path,
                trackers,
                output,
                piece_size,
                private,
                comment,
            } => cli::create::run(path, trackers, output, piece_size, private, comment).await,
            Command::Info { torrent } => cli::create::info(&torrent),
            Command::Seed { torrent, net } => cli::transfer::seed(torrent, net).await,
            Command::Download {
                torrent,
                seed,
                stall_timeout,
                net,
            } => cli::transfer::download(torrent, net, seed, stall_timeout).await,
            Command::Passwd(args) => cli::passwd::run(args).await,
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Makes glibc keep freed memory for reuse instead of handing it back to the kernel.
///
/// A leecher reads into 256 KiB receive buffers and keeps each alive until the pieces
/// sliced from it are hashed and written, so buffers are freed and allocated all the
/// time. By default glibc serves allocations of that size with fresh `mmap`s (after the
/// first free, from heaps it trims back as soon as their top is free), so every new
/// buffer is fresh memory: a page fault and a zeroed page per 4 KiB, and on a VM whose
/// freed pages go back to the host, a host fault too. With these thresholds the buffers
/// are reused from one heap (a buffer freed by the thread that wrote its piece is
/// reused by whichever thread reads next). Bench S1 (1 GiB, one seeder, one leecher),
/// 2 x 3 interleaved runs: 703-724 -> 789-798 MB/s, leecher 1.97-1.98 -> 1.62-1.63
/// CPU-s per GiB, peak anonymous memory 22-23 -> 18.4-18.7 MiB.
/// The binary owns the process's allocator settings; the engine does not touch them.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc allocator parameters; called before any thread.
    unsafe {
        // Allocations below 16 MiB come from the heap, not from mmap.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        // Heaps are trimmed only past 256 MiB of free memory at their top.
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        // One heap for every thread: a buffer freed by the thread that wrote its piece
        // is reused by whichever thread reads next, so the heap holds one set of buffers,
        // not one per thread.
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
