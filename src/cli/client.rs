//! Commands that talk to a running node (`shoal up`) over its JSON API: `add`, `share`, `ls`,
//! `pause`, `resume`, `rm`, `export`, `stats`, `search` and `get`.
//!
//! Each prints text for people, or with `--json` the node's JSON unchanged (pretty-printed).
//! The node is found through `--node URL` or `<data dir>/node.json` ([`node`]). Exit codes:
//! 0 done, 1 the node refused (its `error` message is printed) or a local problem, 2 no node
//! answered. IDs are any unique prefix (4+ hex digits) of the info-hash; the node resolves them.
//!
//! The commands are blocking (a few HTTP requests each, and `get` may read a choice from the
//! terminal), so [`run`] runs them on a blocking thread, off the async runtime.

mod choice;
mod node;
mod view;

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use choice::{parse_answer, pick, torrent_id, Answer, Pick};
use node::{Failure, Node};
use view::{SearchHit, SearchPage, Summary};

/// How often `shoal share` asks for the hashing job's progress.
const JOB_POLL: Duration = Duration::from_millis(200);

/// Options every node command takes.
#[derive(Args, Debug, Clone)]
pub struct NodeOpts {
    /// The node's API URL, e.g. http://127.0.0.1:8080 (default: from <data dir>/node.json).
    #[arg(long, env = "SHOAL_NODE", value_name = "URL")]
    pub node: Option<String>,
    /// Data dir of the node to talk to (default: the platform's data dir for shoal).
    #[arg(long, env = "SHOAL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the node's JSON answer instead of text, for scripts.
    #[arg(long)]
    pub json: bool,
    /// The node's web password, when it asks for a login (sent as HTTP Basic auth).
    #[arg(
        long,
        env = "SHOAL_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub password: Option<String>,
    /// The login user name (default: web_user in the data dir's config.toml, else admin).
    #[arg(long, env = "SHOAL_WEB_USER", value_name = "NAME")]
    pub web_user: Option<String>,
}

/// The node commands, flattened into `shoal`'s subcommands.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Add a .torrent file or a magnet link to the running node.
    Add(AddArgs),
    /// Share a file or folder from the running node: hash it, seed it, publish it.
    Share(ShareArgs),
    /// List the node's torrents.
    Ls(LsArgs),
    /// Pause a torrent.
    Pause(IdArgs),
    /// Resume a paused torrent.
    Resume(IdArgs),
    /// Remove a torrent from the node (its data stays unless --delete-data).
    Rm(RmArgs),
    /// Write a torrent's .torrent file.
    Export(ExportArgs),
    /// Show the node's transfer statistics.
    Stats(LsArgs),
    /// Search the trackers' catalogs for shared torrents.
    Search(SearchArgs),
    /// Find a torrent in the trackers' catalogs and download it.
    Get(GetArgs),
}

/// Where and how a new torrent starts (`add`, `get`).
#[derive(Args, Debug, Clone)]
pub struct PlacementOpts {
    /// Save the data in this folder instead of the node's download dir.
    #[arg(long, value_name = "DIR")]
    pub save_dir: Option<PathBuf>,
    /// Add the torrent paused.
    #[arg(long)]
    pub paused: bool,
}

impl PlacementOpts {
    /// The API's optional `save_dir` and `paused` fields (absolute path: the node does not
    /// share our working directory).
    fn to_json(&self) -> Result<Value, Failure> {
        let mut body = json!({});
        if let Some(dir) = &self.save_dir {
            let dir = std::path::absolute(dir)
                .with_context(|| format!("cannot resolve {}", dir.display()))?;
            let dir = dir
                .to_str()
                .with_context(|| format!("{}: the API takes UTF-8 paths only", dir.display()))?;
            body["save_dir"] = json!(dir);
        }
        if self.paused {
            body["paused"] = json!(true);
        }
        Ok(body)
    }
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// A .torrent file, or a magnet link (its metadata comes from a tracker catalog the node
    /// uses, or from peers: x.pe, trackers, the DHT).
    pub source: OsString,
    #[command(flatten)]
    pub placement: PlacementOpts,
    /// Download pieces in order, lowest first (to play a file while it downloads).
    #[arg(long)]
    pub sequential: bool,
    /// Download the first and last piece of every file before the rest.
    #[arg(long)]
    pub first_last: bool,
    #[command(flatten)]
    pub node: NodeOpts,
}

#[derive(Args, Debug)]
pub struct ShareArgs {
    /// File or folder to share (it is seeded from where it is).
    pub path: PathBuf,
    #[command(flatten)]
    pub node: NodeOpts,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    #[command(flatten)]
    pub node: NodeOpts,
}

#[derive(Args, Debug)]
pub struct IdArgs {
    /// Torrent ID: the info-hash in hex or a unique prefix of it (4+ digits, as `shoal ls` shows).
    pub id: String,
    #[command(flatten)]
    pub node: NodeOpts,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Torrent ID: the info-hash in hex or a unique prefix of it.
    pub id: String,
    /// Also delete the downloaded or shared files.
    #[arg(long)]
    pub delete_data: bool,
    #[command(flatten)]
    pub node: NodeOpts,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Torrent ID: the info-hash in hex or a unique prefix of it.
    pub id: String,
    /// Where to write the .torrent (default: <name>.torrent here; `-`: standard output).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeOpts,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Words of the name (all must match), or an info-hash prefix.
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
    /// Result page, from 0.
    #[arg(long, default_value_t = 0)]
    pub page: u32,
    #[command(flatten)]
    pub node: NodeOpts,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// Words of the name, or an info-hash prefix. Takes the only match, the one ID it is a
    /// prefix of, or the one exact name; with several you are asked (on a terminal) or shown
    /// the list.
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
    #[command(flatten)]
    pub placement: PlacementOpts,
    #[command(flatten)]
    pub node: NodeOpts,
}

/// Runs a node command on a blocking thread and turns its failure into the exit code.
pub async fn run(cmd: ClientCommand) -> anyhow::Result<ExitCode> {
    tokio::task::spawn_blocking(move || match dispatch(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {f}");
            ExitCode::from(f.exit_code())
        }
    })
    .await
    .context("the command's thread failed")
}

fn dispatch(cmd: ClientCommand) -> Result<(), Failure> {
    match cmd {
        ClientCommand::Add(a) => add(a),
        ClientCommand::Share(a) => share(a),
        ClientCommand::Ls(a) => ls(&a.node),
        ClientCommand::Pause(a) => pause_resume(a, "pause", "paused"),
        ClientCommand::Resume(a) => pause_resume(a, "resume", "resumed"),
        ClientCommand::Rm(a) => rm(a),
        ClientCommand::Export(a) => export(a),
        ClientCommand::Stats(a) => stats(&a.node),
        ClientCommand::Search(a) => search(a),
        ClientCommand::Get(a) => get(a),
    }
}

fn connect(opts: &NodeOpts) -> Result<Node, Failure> {
    let node = Node::locate(opts.node.as_deref(), opts.data_dir.as_deref())?;
    let Some(password) = &opts.password else {
        return Ok(node);
    };
    let user = match &opts.web_user {
        Some(u) => u.clone(),
        None => {
            let dir = opts
                .data_dir
                .clone()
                .unwrap_or_else(crate::config::default_data_dir);
            crate::config::web_credentials(&dir)
                .ok()
                .and_then(|(user, _)| user)
                .unwrap_or_else(|| crate::config::DEFAULT_WEB_USER.to_string())
        }
    };
    Ok(node.with_login(&user, password))
}

/// Writes to stdout; a closed pipe (`shoal ls | head`) is not an error.
fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(anyhow::Error::new(e)
            .context("cannot write to stdout")
            .into()),
        _ => Ok(()),
    }
}

fn emit_json(v: &Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(v).context("cannot print JSON")?;
    emit(&format!("{text}\n"))
}

/// Prints a torrent summary the node returned: JSON as is, or one line and its full ID.
fn emit_summary(json_out: bool, verb: &str, v: &Value) -> Result<(), Failure> {
    if json_out {
        return emit_json(v);
    }
    let t: Summary = serde_json::from_value(v.clone())
        .context("the node's torrent summary is not what this shoal version expects")?;
    emit(&format!("{}id: {}\n", view::torrent_line(verb, &t), t.id))
}

fn id_arg(arg: &str) -> Result<String, Failure> {
    torrent_id(arg).map_err(|e| Failure::Local(anyhow!(e)))
}

fn add(a: AddArgs) -> Result<(), Failure> {
    let source = a.source.to_string_lossy();
    let mut body = a.placement.to_json()?;
    if a.sequential {
        body["sequential"] = json!(true);
    }
    if a.first_last {
        body["first_last_piece"] = json!(true);
    }
    let reply = if source.to_ascii_lowercase().starts_with("magnet:") {
        body["magnet"] = json!(source);
        connect(&a.node)?.post_json("/api/torrents", &body)?
    } else {
        let path = Path::new(&a.source);
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let node = connect(&a.node)?;
        if body.as_object().is_some_and(|o| o.is_empty()) {
            node.post_bytes("/api/torrents", "application/x-bittorrent", &bytes)?
        } else {
            body["torrent_base64"] = json!(BASE64.encode(&bytes));
            node.post_json("/api/torrents", &body)?
        }
    };
    emit_summary(a.node.json, "added", &reply.json()?)
}

fn share(a: ShareArgs) -> Result<(), Failure> {
    // The node resolves nothing against our working directory: send an absolute path.
    let path = std::path::absolute(&a.path)
        .with_context(|| format!("cannot resolve {}", a.path.display()))?;
    let path_str = path
        .to_str()
        .with_context(|| format!("{}: the API takes UTF-8 paths only", path.display()))?;
    let node = connect(&a.node)?;
    let started = node
        .post_json("/api/share", &json!({ "path": path_str }))?
        .json()?;
    // Both IDs go into URL paths: accept only what the API documents.
    let job_id = started
        .get("job_id")
        .and_then(Value::as_str)
        .filter(|j| {
            !j.is_empty()
                && j.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or_else(|| anyhow!("the node's answer to /api/share has no usable job_id: {started}"))?
        .to_string();
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "hashing {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let job = wait_for_job(&node, &job_id, &path, &bar);
    bar.finish_and_clear();
    let job = job?;
    let torrent = job
        .get("torrent_id")
        .and_then(Value::as_str)
        .and_then(|t| torrent_id(t).ok())
        .ok_or_else(|| anyhow!("the share job finished without a torrent_id: {job}"))?;
    if a.node.json {
        return emit_json(&job);
    }
    // The summary only adds a name to the line; the ID is what matters.
    match node.get(&format!("/api/torrents/{torrent}"), &[]) {
        Ok(reply) => emit_summary(false, "shared", &reply.json()?),
        Err(_) => emit(&format!("shared {}\nid: {torrent}\n", path.display())),
    }
}

/// Polls a share job until it is done, showing its progress on `bar` (drawn on stderr when
/// it is a terminal). Returns the job's final JSON.
fn wait_for_job(
    node: &Node,
    job_id: &str,
    path: &Path,
    bar: &ProgressBar,
) -> Result<Value, Failure> {
    loop {
        let v = node.get(&format!("/api/jobs/{job_id}"), &[])?.json()?;
        let job: view::Job = serde_json::from_value(v.clone())
            .context("the node's job is not what this shoal version expects")?;
        bar.set_length(job.total_bytes);
        bar.set_position(job.done_bytes);
        match job.state.as_str() {
            "done" => return Ok(v),
            "error" => {
                let why = job.error.unwrap_or_else(|| "no reason given".into());
                return Err(Failure::Local(anyhow!(
                    "sharing {} failed: {why}",
                    path.display()
                )));
            }
            _ => std::thread::sleep(JOB_POLL),
        }
    }
}

fn ls(opts: &NodeOpts) -> Result<(), Failure> {
    let reply = connect(opts)?.get("/api/torrents", &[])?;
    if opts.json {
        return emit_json(&reply.json()?);
    }
    let torrents: Vec<Summary> = reply.parse()?;
    emit(&view::torrent_table(&torrents))
}

fn pause_resume(a: IdArgs, action: &str, verb: &str) -> Result<(), Failure> {
    let id = id_arg(&a.id)?;
    let reply = connect(&a.node)?.post_empty(&format!("/api/torrents/{id}/{action}"))?;
    emit_summary(a.node.json, verb, &reply.json()?)
}

fn rm(a: RmArgs) -> Result<(), Failure> {
    let id = id_arg(&a.id)?;
    let node = connect(&a.node)?;
    // Resolve the prefix first, so the line names what was removed.
    let t: Summary = node.get(&format!("/api/torrents/{id}"), &[])?.parse()?;
    let delete = if a.delete_data { "true" } else { "false" };
    node.delete(
        &format!("/api/torrents/{}", t.id),
        &[("delete_data", delete)],
    )?;
    if a.node.json {
        return emit_json(&json!({
            "id": t.id, "name": t.name, "removed": true, "delete_data": a.delete_data,
        }));
    }
    let data = if a.delete_data {
        " and deleted its data"
    } else {
        " (data kept)"
    };
    emit(&format!(
        "removed {} {}{data}\n",
        view::short_id(&t.id),
        t.name
    ))
}

fn export(a: ExportArgs) -> Result<(), Failure> {
    let id = id_arg(&a.id)?;
    let node = connect(&a.node)?;
    let t: Summary = node.get(&format!("/api/torrents/{id}"), &[])?.parse()?;
    let bytes = node
        .get(&format!("/api/torrents/{}/torrent", t.id), &[])?
        .body;
    if a.output.as_deref() == Some(Path::new("-")) {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)
            .and_then(|()| out.flush())
            .context("cannot write to stdout")?;
        return Ok(());
    }
    let out = a
        .output
        .unwrap_or_else(|| PathBuf::from(torrent_file_name(&t.name, &t.id)));
    std::fs::write(&out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    if a.node.json {
        return emit_json(&json!({
            "id": t.id, "name": t.name, "path": out, "bytes": bytes.len(),
        }));
    }
    emit(&format!(
        "wrote {} ({} bytes) for {} {}\n",
        out.display(),
        bytes.len(),
        view::short_id(&t.id),
        t.name
    ))
}

/// `<name>.torrent` as one plain file name in the current directory: the name comes from the
/// torrent (someone else's data), so path separators and `..` must not lead elsewhere.
fn torrent_file_name(name: &str, id: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | '\0') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let clean = clean.trim();
    if clean.is_empty() || clean.chars().all(|c| c == '.') {
        format!("{id}.torrent")
    } else {
        format!("{clean}.torrent")
    }
}

fn stats(opts: &NodeOpts) -> Result<(), Failure> {
    let reply = connect(opts)?.get("/api/stats", &[])?;
    if opts.json {
        return emit_json(&reply.json()?);
    }
    emit(&view::stats_lines(&reply.parse()?))
}

fn search_page(node: &Node, query: &str, page: u32) -> Result<(Value, SearchPage), Failure> {
    let page = page.to_string();
    let reply = node.get("/api/search", &[("q", query), ("page", &page)])?;
    Ok((reply.json()?, reply.parse()?))
}

fn search(a: SearchArgs) -> Result<(), Failure> {
    let query = a.query.join(" ");
    let node = connect(&a.node)?;
    let (raw, page) = search_page(&node, &query, a.page)?;
    if a.node.json {
        return emit_json(&raw);
    }
    if page.results.is_empty() {
        let more = if a.page > 0 { " on this page" } else { "" };
        return emit(&format!("no torrents match {query:?}{more}\n"));
    }
    emit(&view::search_table(&page.results, unix_now()))
}

fn get(a: GetArgs) -> Result<(), Failure> {
    let query = a.query.join(" ");
    let mut body = a.placement.to_json()?;
    let node = connect(&a.node)?;
    let (_, page) = search_page(&node, &query, 0)?;
    let chosen = match pick(&query, &page.results) {
        Pick::None => {
            return Err(Failure::Local(anyhow!(
                "no torrent in the trackers' catalogs matches {query:?}; try `shoal search` with fewer words"
            )))
        }
        Pick::One(hit) => hit.clone(),
        Pick::Several(hits) => choose(&query, &hits)?,
    };
    body["id"] = json!(chosen.id);
    let reply = node.post_json("/api/get", &body)?;
    emit_summary(a.node.json, "added", &reply.json()?)
}

/// Asks which of several results to get when stdin is a terminal; otherwise fails listing them.
fn choose(query: &str, hits: &[&SearchHit]) -> Result<SearchHit, Failure> {
    let owned: Vec<SearchHit> = hits.iter().map(|h| (*h).clone()).collect();
    let list = view::numbered(&owned);
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::Local(anyhow!(
            "{} torrents match {query:?}; give an ID prefix or more of the name:\n{}",
            hits.len(),
            list.trim_end()
        )));
    }
    eprint!("{} torrents match {query:?}:\n{list}", hits.len());
    for _ in 0..3 {
        eprint!(
            "which one? [1-{}, an ID prefix, or q to cancel] ",
            hits.len()
        );
        let mut line = String::new();
        let read = stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the answer")?;
        let answer = if read == 0 {
            Answer::Cancel
        } else {
            parse_answer(&line, hits)
        };
        match answer {
            Answer::Choice(i) => return Ok(hits[i].clone()),
            Answer::Cancel => return Err(Failure::Local(anyhow!("cancelled; nothing added"))),
            Answer::Invalid => eprintln!("{:?} is not one of the choices", line.trim()),
        }
    }
    Err(Failure::Local(anyhow!("no valid choice; nothing added")))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
