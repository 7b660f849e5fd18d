//! Cluster test support: a real `nats-server` on a free port, the `ticker` binary started as
//! publisher and edges with the commands and settings `docker-compose.yml` uses, and
//! `Cluster::start`, which brings all three up for a test.

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

/// An edge named `node` with extra settings; returns once it is ready (it has a snapshot).
pub async fn edge(nats: &Nats, node: &str, extra: &[(&str, &str)]) -> (ServerProcess, SocketAddr) {
    let url = nats.url();
    let mut vars = EDGE_ENV.to_vec();
    vars.push(("TICKER__SERVER__NODE_ID", node));
    vars.extend_from_slice(extra);
    start_process(EDGE_COMMAND, &with_common(&url, &vars)).await
}

/// What a test changes in `Cluster::start_with`: the publisher's seed and extra variables for
/// each role.
#[derive(Clone, Copy)]
pub struct Roles<'a> {
    /// The publisher's `feed.seed`.
    pub seed: &'a str,
    /// Extra `TICKER__…` variables of the publisher.
    pub publisher_env: &'a [(&'a str, &'a str)],
    /// Extra `TICKER__…` variables of every edge.
    pub edge_env: &'a [(&'a str, &'a str)],
}

impl Default for Roles<'_> {
    fn default() -> Self {
        Self {
            seed: "7",
            publisher_env: &[],
            edge_env: &[],
        }
    }
}

impl<'a> Roles<'a> {
    /// The defaults with this publisher seed.
    pub fn seed(seed: &'a str) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }
}

/// One edge of a `Cluster`.
pub struct Edge {
    /// Its `server.node_id`: `edge-a`, `edge-b`, … in start order.
    pub node: String,
    pub addr: SocketAddr,
    pub process: ServerProcess,
}

/// A `nats-server`, a publisher and edges, every one ready. Fields drop (and processes are
/// killed) edges first, then the publisher, then NATS.
pub struct Cluster {
    pub edges: Vec<Edge>,
    pub publisher: ServerProcess,
    /// The publisher's health listener.
    pub publisher_addr: SocketAddr,
    pub nats: Nats,
}

impl Cluster {
    /// `nats-server`, a publisher (seed 7) and `edges` edges named `edge-a`, `edge-b`, …
    pub async fn start(edges: usize) -> Self {
        Self::start_with(edges, Roles::default()).await
    }

    /// Like `start`, with the seed and extra variables of `roles`.
    pub async fn start_with(edges: usize, roles: Roles<'_>) -> Self {
        let nats = Nats::start();
        let (publisher, publisher_addr) =
            publisher_with(&nats, roles.seed, roles.publisher_env).await;
        let mut started = Vec::with_capacity(edges);
        for node in (b'a'..)
            .take(edges)
            .map(|c| format!("edge-{}", char::from(c)))
        {
            let (process, addr) = edge(&nats, &node, roles.edge_env).await;
            started.push(Edge {
                node,
                addr,
                process,
            });
        }
        Self {
            edges: started,
            publisher,
            publisher_addr,
            nats,
        }
    }

    /// The address of edge `i` (0 for `edge-a`).
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.edges[i].addr
    }
}
