//! An independent permessage-deflate implementation against the server: Node's `ws` package
//! (installed with npm into a temporary directory) offers the extension, compresses its own
//! requests and inflates every compressed frame the server sends. Needs `node` and `npm`
//! (tests/support/prereq.rs).

mod support;

use std::process::Stdio;

use serde_json::Value;
use support::TestApp;
use support::prereq::{self, NODE, NPM};
use tokio::process::Command;

fn main() {
    prereq::run(vec![prereq::trial(
        "node_ws_client_negotiates_and_inflates",
        &[NODE, NPM],
        node_ws_client_negotiates_and_inflates,
    )]);
}

async fn node_ws_client_negotiates_and_inflates() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let install = Command::new("npm")
        .args(["install", "ws@8", "--no-audit", "--no-fund", "--silent"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output();
    let install = tokio::time::timeout(std::time::Duration::from_secs(180), install)
        .await
        .expect("npm install ws finishes in time")
        .expect("npm runs");
    assert!(
        install.status.success(),
        "npm install ws failed: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let script = dir.path().join("deflate_client.js");
    std::fs::write(&script, include_str!("node/deflate_client.js")).expect("write the script");

    let app = TestApp::spawn().await;
    let run = Command::new("node")
        .arg(&script)
        .arg(app.ws_url("/ws?symbols=*"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(support::PATIENCE * 2, run)
        .await
        .expect("the node client finishes in time")
        .expect("node runs");
    assert!(
        out.status.success(),
        "node client failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let extensions = seen["extensions"].as_str().unwrap_or_default();
    assert!(
        extensions.starts_with("permessage-deflate")
            && extensions.contains("server_no_context_takeover"),
        "{seen}"
    );
    assert_eq!(seen["pong"], 7, "{seen}");
    assert_eq!(seen["types"]["welcome"], 1, "{seen}");
    assert!(seen["types"]["subscribed"].as_u64() >= Some(1), "{seen}");
    app.stop().await;
}
