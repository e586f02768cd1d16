use super::*;
use clap::Parser;

/// Stands in for `shoal`'s argument parser.
#[derive(Parser, Debug)]
struct Cli {
    #[command(subcommand)]
    command: ClientCommand,
}

fn parse(args: &[&str]) -> Result<ClientCommand, clap::Error> {
    Cli::try_parse_from(std::iter::once("shoal").chain(args.iter().copied())).map(|c| c.command)
}

#[test]
fn arguments_parse() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
    match parse(&["rm", "abcd", "--delete-data", "--json", "--node", "h:1"]).unwrap() {
        ClientCommand::Rm(a) => {
            assert!(a.delete_data && a.node.json);
            assert_eq!(a.node.node.as_deref(), Some("h:1"));
        }
        other => panic!("{other:?}"),
    }
    match parse(&["get", "ubuntu", "iso", "--paused"]).unwrap() {
        ClientCommand::Get(a) => {
            assert_eq!(a.query.join(" "), "ubuntu iso");
            assert!(a.placement.paused && a.placement.save_dir.is_none());
            assert_eq!(a.placement.to_json().ok().unwrap(), json!({"paused": true}));
        }
        other => panic!("{other:?}"),
    }
    match parse(&["export", "abcd", "-o", "-"]).unwrap() {
        ClientCommand::Export(a) => assert_eq!(a.output, Some(PathBuf::from("-"))),
        other => panic!("{other:?}"),
    }
    assert!(parse(&["search"]).is_err());
    assert!(parse(&["pause"]).is_err());
}

#[test]
fn export_names_stay_in_this_directory() {
    let id = "ab".repeat(20);
    assert_eq!(torrent_file_name("photos", &id), "photos.torrent");
    assert_eq!(torrent_file_name("../../etc/x", &id), ".._.._etc_x.torrent");
    assert_eq!(torrent_file_name("..", &id), format!("{id}.torrent"));
    assert_eq!(torrent_file_name("", &id), format!("{id}.torrent"));
    assert_eq!(torrent_file_name("a\nb", &id), "a_b.torrent");
}

#[test]
fn bad_ids_fail_before_any_request() {
    // No node anywhere: the ID check must fail first, with exit code 1.
    let args = IdArgs {
        id: "xyz!".into(),
        node: NodeOpts {
            node: Some("http://127.0.0.1:9".into()),
            data_dir: None,
            json: false,
            password: None,
            web_user: None,
        },
    };
    let err = pause_resume(args, "pause", "paused").unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("not a torrent ID"), "{err}");
}
