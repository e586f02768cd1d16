//! `shoal` with no command runs a node and takes `up`'s options directly, so
//! `cargo run --release -- --tracker URL` works as the README says.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{with_timeout, Proc, TestDir};

#[test]
fn bare_shoal_runs_a_node_with_up_options() -> Result<()> {
    with_timeout(Duration::from_secs(60), || {
        let t = TestDir::new("bare")?;
        let data = t.sub("data")?;
        let data = data.to_string_lossy().into_owned();
        let args = [
            "--data-dir",
            data.as_str(),
            "--web",
            "127.0.0.1:0",
            "--port",
            "0",
            "--tracker",
            "http://127.0.0.1:9/announce",
        ];
        let mut node = Proc::shoal("node", &args, t.path())?;
        let peer_id = node.wait_for_prefix("peer id: ", Duration::from_secs(20))?;
        assert!(peer_id.starts_with("-SH0100-"), "{peer_id}");
        let web = node.wait_for_prefix("web: ", Duration::from_secs(20))?;
        assert!(web.starts_with("http://127.0.0.1:"), "{web}");
        // A configured tracker means no embedded one.
        assert!(!node.output(common::Stream::Stdout).contains("(embedded"));
        node.terminate()?;
        node.wait_exit(Duration::from_secs(20))?;
        Ok(())
    })
}
