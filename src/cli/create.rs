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

pub fn info(path: &Path) -> anyhow::Result<ExitCode> {
    let m = load(path)?;
    println!("info hash: {}", m.info_hash);
    println!("name: {}", m.info.name);
    println!("size: {}", m.info.total_length);
    println!("pieces: {} x {}", m.info.num_pieces(), m.info.piece_length);
    println!("private: {}", if m.info.private { "yes" } else { "no" });
    for tier in m.tracker_tiers() {
        println!("tracker: {}", tier.join(" "));
    }
    for f in &m.info.files {
        println!("file: {} {}", f.length, f.path.join("/"));
    }
    Ok(ExitCode::SUCCESS)
}
