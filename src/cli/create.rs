//! `shoal create` and `shoal info`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shoal_engine::create::{create_torrent, CreateOptions};
use shoal_proto::metainfo::Metainfo;

pub async fn run(
    path: PathBuf,
    trackers: Vec<String>,
    output: Option<PathBuf>,
    piece_size: Option<u64>,
    private: bool,
    comment: Option<String>,
) -> anyhow::Result<ExitCode> {
    let opts = CreateOptions {
        trackers,
        piece_length: piece_size,
        private,
        comment,
        creation_date: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs() as i64),
        ..CreateOptions::default()
    };
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "hashing {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let b = bar.clone();
    let src = path.clone();
    let meta = tokio::task::spawn_blocking(move || {
        create_torrent(&src, &opts, &|done, total| {
            b.set_length(total);
            b.set_position(done);
        })
    })
    .await
    .context("hashing thread failed")??;
    bar.finish_and_clear();
    let out = output.unwrap_or_else(|| PathBuf::from(format!("{}.torrent", meta.info.name)));
    let bytes = meta.to_bytes();
    tokio::fs::write(&out, &bytes)
        .await
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("info hash: {}", meta.info_hash);
    println!(
        "wrote {} ({} in {} files, {} pieces of {})",
        out.display(),
        super::human_bytes(meta.info.total_length),
        meta.info.files.len(),
        meta.info.num_pieces(),
        super::human_bytes(meta.info.piece_length)
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads and validates a .torrent file.
pub fn load(path: &Path) -> anyhow::Result<Metainfo> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Metainfo::from_bytes(&bytes)
        .with_context(|| format!("{} is not a usable .torrent", path.display()))
}

/// Prints what a .torrent holds. A reader that goes away early (`shoal info X | head`)
/// ends the output quietly instead of panicking on the broken pipe.
pub fn info(path: &Path) -> anyhow::Result<ExitCode> {
    use std::fmt::Write as _;
    let m = load(path)?;
    let mut out = String::new();
    let _ = writeln!(out, "info hash: {}", m.info_hash);
    let _ = writeln!(out, "name: {}", m.info.name);
    let _ = writeln!(out, "size: {}", m.info.total_length);
    let _ = writeln!(
        out,
        "pieces: {} x {}",
        m.info.num_pieces(),
        m.info.piece_length
    );
    let _ = writeln!(
        out,
        "private: {}",
        if m.info.private { "yes" } else { "no" }
    );
    for tier in m.tracker_tiers() {
        let _ = writeln!(out, "tracker: {}", tier.join(" "));
    }
    for f in &m.info.files {
        let _ = writeln!(out, "file: {} {}", f.length, f.path.join("/"));
    }
    let mut stdout = std::io::stdout().lock();
    match std::io::Write::write_all(&mut stdout, out.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut stdout))
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to standard output"))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
