//! The Python client (`clients/python`) passes its own tests, run with pytest against this
//! build's `ticker` binary: the tests start the servers, relays and clients they need
//! themselves (`clients/python/tests/conftest.py`). Needs `python3` with `websockets`, `httpx`
//! and `pytest` (`.ci/run` installs them); ignored with the reason when they are missing.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::prereq::{self, PYTHON3};
use tokio::process::Command;

/// What the pytest run may take at most (it takes about 20 s).
const PYTEST_LIMIT: Duration = Duration::from_secs(600);

const INSTALL: &str = "python3 -m pip install websockets httpx pytest";

fn main() {
    let mut missing = Vec::new();
    if PYTHON3.find().is_none() {
        missing.push(format!("python3 ({})", PYTHON3.install));
    } else {
        missing = prereq::missing_python_modules(&["websockets", "httpx", "pytest"], INSTALL);
    }
    prereq::run(vec![prereq::trial_unless_missing(
        "python_client_passes_pytest",
        missing,
        python_client_passes_pytest,
    )]);
}

async fn python_client_passes_pytest() {
    let run = Command::new("python3")
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA"])
        .arg("clients/python/tests")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TICKER_BIN", env!("CARGO_BIN_EXE_ticker"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(PYTEST_LIMIT, run)
        .await
        .expect("pytest finishes in time")
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "pytest failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
