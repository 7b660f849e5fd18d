//! The command line as a newcomer meets it: `--help`, flags over variables over files, exit
//! codes that tell a usage error from bad settings, the URLs printed at start, a taken port
//! named with the setting to change, and node names that differ between two local servers.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use support::process::{bare_ticker, free_port, start_server};
use support::{PATIENCE, connect_ws};
use ticker::protocol::ServerMessage;

/// `--help` names the settings variables and `check-config`; a bad flag exits 64, bad settings 2.
#[test]
fn help_and_exit_codes() {
    let help = bare_ticker().arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for needle in ["TICKER__SECTION__KEY", "check-config", "--port", "--host"] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    let usage = bare_ticker().arg("--no-such-flag").output().unwrap();
    assert_eq!(usage.status.code(), Some(64));
    let bad = bare_ticker()
        .args(["check-config", "--port", "eighty"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert!(
        stderr.contains("`server.port`") && stderr.contains("--port"),
        "{stderr}"
    );
}

/// Flags beat variables, which beat files; `check-config` ends with an explicit ok line.
#[test]
fn flags_win_and_check_config_says_ok() {
    let output = bare_ticker()
        .env("TICKER__SERVER__PORT", "1111")
        .env("TICKER__SERVER__HOST", "0.0.0.0")
        .args(["check-config", "--port", "2222"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let printed: toml::Table = toml::from_str(&text).expect("still valid TOML");
    assert_eq!(printed["server"]["port"].as_integer(), Some(2222));
    assert_eq!(printed["server"]["host"].as_str(), Some("0.0.0.0"));
    assert_eq!(
        text.trim_end().lines().last(),
        Some("# ok: the settings are valid")
    );
}

/// `TICKER_ENV` outside the repository says where the file was looked for and what to do.
#[test]
fn ticker_env_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let output = bare_ticker()
        .current_dir(dir.path())
        .env("TICKER_ENV", "bench")
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("config/bench.toml")
            && stderr.contains("working directory")
            && stderr.contains("--config"),
        "{stderr}"
    );
}

/// On start the server prints where the dashboard and the WebSocket are (port 0 resolved), and
/// a second server on the same port fails with the address and the setting to change.
#[test]
fn prints_urls_and_names_a_taken_port() {
    let mut first = bare_ticker()
        .args(["serve", "--port", "0"])
        .env("TICKER__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let dashboard = lines.next().unwrap().unwrap();
    let websocket = lines.next().unwrap().unwrap();
    let url = dashboard
        .strip_prefix("dashboard: http://")
        .unwrap_or_else(|| panic!("{dashboard}"));
    let addr = url.trim_end_matches('/');
    assert_eq!(websocket, format!("websocket: ws://{addr}/ws"));
    let port = addr.rsplit(':').next().unwrap();
    assert_ne!(port, "0");

    let second = bare_ticker()
        .args(["serve", "--port", port])
        .env("TICKER__LOG__FORMAT", "text")
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8(second.stderr).unwrap();
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("server.port"),
        "{stderr}"
    );
}

/// Two servers on one host without `server.node_id` get different node names (host and port).
#[tokio::test]
async fn default_node_names_differ() {
    let mut nodes = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let (server, addr) =
            start_server(&[("TICKER__SERVER__PORT", &free_port().to_string())]).await;
        let (_client, welcome) = tokio::time::timeout(PATIENCE, connect_ws(addr, "/ws"))
            .await
            .unwrap();
        let ServerMessage::Welcome { node, .. } = welcome else {
            panic!("welcome first");
        };
        assert!(node.ends_with(&format!(":{}", addr.port())), "{node}");
        nodes.push(node);
        servers.push(server);
    }
    assert_ne!(nodes[0], nodes[1]);
}
