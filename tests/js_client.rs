//! The JavaScript client package (`clients/js`): its node tests against the real server binary
//! (the tests start and stop servers themselves, with the binary named in `TICKER_BIN` and Node's
//! `ws` package, installed with npm into a temporary directory, in `TICKER_WS_MODULE`), its types
//! checked by `tsc --noEmit`, and `npm pack`. Needs `node` and `npm` (tests/support/prereq.rs).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use support::prereq::{self, NODE, NPM};
use tokio::process::Command;

fn main() {
    prereq::run(vec![
        prereq::trial(
            "node_tests_against_the_server",
            &[NODE, NPM],
            node_tests_against_the_server,
        ),
        prereq::trial(
            "node_tests_on_the_builtin_websocket",
            &[NODE],
            node_tests_on_the_builtin_websocket,
        ),
        prereq::trial("types_check_with_tsc", &[NODE, NPM], types_check_with_tsc),
        prereq::trial(
            "npm_pack_builds_the_package",
            &[NPM],
            npm_pack_builds_the_package,
        ),
    ]);
}

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/js")
}

/// Runs `command` to the end within `limit`; panics with its output unless it succeeded.
async fn run(what: &str, command: &mut Command, limit: Duration) -> Output {
    let out = tokio::time::timeout(limit, command.stdin(Stdio::null()).output())
        .await
        .unwrap_or_else(|_| panic!("{what} finishes within {limit:?}"))
        .unwrap_or_else(|e| panic!("{what} runs: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `npm install <packages>` into a fresh temporary directory.
async fn npm_install(packages: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut npm = Command::new("npm");
    npm.args(["install", "--no-audit", "--no-fund", "--silent"])
        .args(packages)
        .current_dir(dir.path());
    run("npm install", &mut npm, Duration::from_secs(180)).await;
    dir
}

/// Resume across drops, restart, auth codes, draining, token refresh, polling fallback and
/// request timeouts: `node --test` on `clients/js/test/*.test.js`, all against the real binary,
/// with Node's `ws` package as the WebSocket.
async fn node_tests_against_the_server() {
    let deps = npm_install(&["ws@8"]).await;
    let ws = deps.path().join("node_modules/ws/index.js");
    node_tests(&[], Some(&ws)).await;
}

/// The same tests on Node's own WebSocket (the WHATWG one browsers have; behind a flag on Node
/// 20), where this Node has one.
async fn node_tests_on_the_builtin_websocket() {
    for flags in [&["--experimental-websocket"][..], &[]] {
        let probe = Command::new("node")
            .args(flags)
            .args([
                "-e",
                "process.exit(typeof WebSocket === 'function' ? 0 : 1)",
            ])
            .stdin(Stdio::null())
            .output()
            .await
            .expect("node runs");
        if probe.status.success() {
            node_tests(flags, None).await;
            return;
        }
    }
    eprintln!("this node has no built-in WebSocket: only the ws package was tested");
}

/// `node [flags] --test` on every `*.test.js`, with the binary and the `ws` package (if any).
async fn node_tests(flags: &[&str], ws_module: Option<&Path>) {
    let mut tests: Vec<PathBuf> = std::fs::read_dir(package_dir().join("test"))
        .expect("clients/js/test")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".test.js"))
        .collect();
    tests.sort();
    assert!(!tests.is_empty(), "node tests in clients/js/test");
    let mut node = Command::new("node");
    node.args(flags)
        .arg("--test")
        .args(&tests)
        .env("TICKER_BIN", env!("CARGO_BIN_EXE_ticker"))
        .env_remove("TICKER_WS_MODULE")
        .current_dir(package_dir());
    if let Some(ws) = ws_module {
        node.env("TICKER_WS_MODULE", ws);
    }
    let out = run("node --test", &mut node, Duration::from_secs(300)).await;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("# fail 0"), "{report}");
}

/// The hand-written `.d.ts` and a typed usage example pass `tsc --noEmit` in strict mode.
async fn types_check_with_tsc() {
    let deps = npm_install(&["typescript@5"]).await;
    let mut tsc = Command::new("node");
    tsc.arg(deps.path().join("node_modules/typescript/bin/tsc"))
        .args(["--noEmit", "-p", "tsconfig.json"])
        .current_dir(package_dir());
    run("tsc --noEmit", &mut tsc, Duration::from_secs(120)).await;
}

/// `npm pack` makes a tarball holding the sources, the types and the README.
async fn npm_pack_builds_the_package() {
    let out_dir = tempfile::tempdir().expect("a temporary directory");
    let mut npm = Command::new("npm");
    npm.args(["pack", "--json", "--pack-destination"])
        .arg(out_dir.path())
        .current_dir(package_dir());
    let out = run("npm pack", &mut npm, Duration::from_secs(60)).await;
    let packed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("npm pack --json");
    let files: Vec<&str> = packed[0]["files"]
        .as_array()
        .expect("the packed files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    for needed in [
        "package.json",
        "README.md",
        "src/index.js",
        "src/index.d.ts",
        "src/client.js",
    ] {
        assert!(files.contains(&needed), "{needed} in {files:?}");
    }
    let tarball = packed[0]["filename"].as_str().expect("a file name");
    assert!(out_dir.path().join(tarball).is_file(), "{tarball} written");
}
