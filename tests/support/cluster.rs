//! Cluster test support: a real `nats-server` on a free port, and the `ticker` binary started
//! as publisher and edges with the commands and settings `docker-compose.yml` uses.

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::PATIENCE;
use super::process::{ServerProcess, free_port, start_process};

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
        let mut nats = Self {
            port: free_port(),
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
        self.process = Some(ServerProcess::adopt(child));
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

/// A publisher with this feed seed; returns once it is ready (connected to NATS).
pub async fn publisher(nats: &Nats, seed: &str) -> (ServerProcess, SocketAddr) {
    publisher_with(nats, seed, &[]).await
}

/// A publisher with this feed seed and extra settings; returns once it is ready.
pub async fn publisher_with(
    nats: &Nats,
    seed: &str,
    extra: &[(&str, &str)],
) -> (ServerProcess, SocketAddr) {
    let url = nats.url();
    let mut vars = vec![("TICKER__FEED__SEED", seed)];
    vars.extend_from_slice(extra);
    start_process(PUBLISHER_COMMAND, &with_common(&url, &vars)).await
}

/// An edge named `node`; returns once it is ready (it has a snapshot).
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
    start_process(EDGE_COMMAND, &with_common(&url, &vars)).await
}
