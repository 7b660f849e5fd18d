//! Cluster test support: a real `nats-server` on a free port, and the `ticker` binary started
//! as publisher and edges with the commands and settings `docker-compose.yml` uses.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::PATIENCE;
use super::process::{ServerProcess, start_process};

/// What compose runs: `ticker publish` and `ticker serve` with these settings (`TICKER_ENV`
/// selects `config/docker.toml`). Tests only add the addresses, node names and seeds.
pub const PUBLISHER_COMMAND: &[&str] = &["publish"];
pub const EDGE_COMMAND: &[&str] = &["serve"];
pub const COMMON_ENV: &[(&str, &str)] = &[("TICKER_ENV", "docker")];
pub const EDGE_ENV: &[(&str, &str)] = &[("TICKER__FEED__SOURCE", "nats")];

fn nats_server_installed() -> bool {
    Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when the test can run; under CI a missing `nats-server` fails the test.
pub fn require_nats() -> bool {
    if nats_server_installed() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "nats-server is not installed, and CI must run the cluster tests"
    );
    eprintln!("SKIPPED: nats-server not installed");
    false
}

/// A `nats-server` on a fixed port, so it can be stopped and started again at the same address.
pub struct Nats {
    port: u16,
    process: Option<ServerProcess>,
}

impl Nats {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut nats = Self {
            port,
            process: None,
        };
        nats.restart();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        self.process.take();
    }

    pub fn restart(&mut self) {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.process = Some(ServerProcess(child));
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server listens in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn with_common<'a>(nats: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = COMMON_ENV.to_vec();
    vars.extend([
        ("TICKER__NATS__URL", nats),
        ("TICKER__SERVER__HOST", "127.0.0.1"),
        ("TICKER__NATS__RECONNECT_MAX_MS", "300"),
    ]);
    vars.extend_from_slice(extra);
    vars
}

pub fn publisher(nats: &Nats, seed: &str) -> (ServerProcess, SocketAddr) {
    let url = nats.url();
    let vars = with_common(&url, &[("TICKER__FEED__SEED", seed)]);
    start_process(PUBLISHER_COMMAND, &vars)
}

pub async fn edge(nats: &Nats, node: &str) -> (ServerProcess, SocketAddr) {
    edge_with(nats, node, &[]).await
}

/// An edge with extra settings; returns once it is ready (it has a snapshot).
pub async fn edge_with(
    nats: &Nats,
    node: &str,
    extra: &[(&str, &str)],
) -> (ServerProcess, SocketAddr) {
    let url = nats.url();
    let mut vars = EDGE_ENV.to_vec();
    vars.push(("TICKER__SERVER__NODE_ID", node));
    vars.extend_from_slice(extra);
    let (process, addr) = start_process(EDGE_COMMAND, &with_common(&url, &vars));
    wait_ready(addr, 200).await;
    (process, addr)
}

/// Polls `/readyz` until it answers `status`.
pub async fn wait_ready(addr: SocketAddr, status: u16) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = reqwest::get(format!("http://{addr}/readyz"))
            .await
            .map(|r| r.status().as_u16());
        if got.as_ref().is_ok_and(|&s| s == status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never became {status}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM and waits for the process to exit; returns its exit code.
pub async fn terminate(process: &mut ServerProcess) -> Option<i32> {
    let status = Command::new("kill")
        .args(["-TERM", &process.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = process.0.try_wait().expect("the process can be waited for") {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "the process exits in time after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
