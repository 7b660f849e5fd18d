//! The load balancer for real, with Debian's nginx (1.22): the config `deploy/local-cluster.sh`
//! generates from `deploy/nginx.conf` passes `nginx -t` and proxies WebSockets and polling to a
//! real cluster (`Cluster::start`), moves a client whose edge dies or drains (a rolling deploy)
//! to the other one, and the script itself starts the whole cluster and stops it again on
//! Ctrl-C.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use support::cluster::{Cluster, Roles};
use support::http::wait_status;
use support::prereq::{self, NATS_SERVER, Program};
use support::process::free_port;
use support::{PATIENCE, ServerProcess, symbol_count};
use tempfile::TempDir;
use ticker::protocol::ServerMessage;
use tokio::net::TcpStream as TokioTcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TokioTcpStream>>;

const NGINX: Program = Program {
    names: &["nginx"],
    env: Some("NGINX"),
    install: "apt-get install nginx, or set NGINX",
};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/local-cluster.sh");
const COMPOSE_NGINX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx.conf");

fn main() {
    let trials = vec![
        prereq::trial(
            "generated_config_passes_nginx_t_and_keeps_the_proxy_settings",
            &[NGINX],
            generated_config_passes_nginx_t_and_keeps_the_proxy_settings,
        ),
        prereq::trial(
            "websocket_and_polling_through_nginx",
            &[NGINX, NATS_SERVER],
            websocket_and_polling_through_nginx,
        ),
        prereq::trial(
            "killed_edge_client_reconnects_through_nginx_to_the_other",
            &[NGINX, NATS_SERVER],
            killed_edge_client_reconnects_through_nginx_to_the_other,
        ),
        prereq::trial(
            "draining_edge_client_follows_the_advice_through_nginx_to_the_other",
            &[NGINX, NATS_SERVER],
            draining_edge_client_follows_the_advice_through_nginx_to_the_other,
        ),
        prereq::trial(
            "local_cluster_script_starts_and_stops_everything",
            &[NGINX, NATS_SERVER],
            local_cluster_script_starts_and_stops_everything,
        ),
    ];
    prereq::run(trials)
}

fn nginx_path() -> PathBuf {
    NGINX.find().expect("the trial runs only when nginx exists")
}

/// A directory nginx can use as its prefix, also from a worker running as another user.
fn prefix_dir() -> TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the prefix");
    dir
}

/// What `deploy/local-cluster.sh --print-nginx-conf` prints for these ports.
fn generated_config(prefix: &Path, port: u16, edges: &[u16]) -> String {
    let output = Command::new("bash")
        .arg(SCRIPT)
        .arg("--print-nginx-conf")
        .arg(prefix)
        .arg(port.to_string())
        .args(edges.iter().map(u16::to_string))
        .output()
        .expect("the script runs");
    assert!(
        output.status.success(),
        "--print-nginx-conf failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// Writes the generated config under `prefix` and runs `nginx -t` on it.
fn write_and_check(prefix: &Path, port: u16, edges: &[u16]) -> PathBuf {
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, generated_config(prefix, port, edges)).expect("write the config");
    let output = Command::new(nginx_path())
        .args(["-t", "-e", "stderr", "-p"])
        .arg(prefix)
        .arg("-c")
        .arg(&conf)
        .output()
        .expect("nginx runs");
    assert!(
        output.status.success(),
        "nginx -t refuses the generated config: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    conf
}

/// nginx in the foreground with the generated config, in front of `edges`.
struct Nginx {
    addr: SocketAddr,
    _process: ServerProcess,
    _prefix: TempDir,
}

impl Nginx {
    async fn start(edges: &[SocketAddr]) -> Self {
        let prefix = prefix_dir();
        let port = free_port();
        let ports: Vec<u16> = edges.iter().map(SocketAddr::port).collect();
        let conf = write_and_check(prefix.path(), port, &ports);
        let child = Command::new(nginx_path())
            .args(["-e", "stderr", "-p"])
            .arg(prefix.path())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let process = ServerProcess::adopt(child);
        wait_status(addr, "/lb-health", 200).await;
        Self {
            addr,
            _process: process,
            _prefix: prefix,
        }
    }
}

/// A WebSocket through the balancer as a browser on its page opens it (with `Origin`, which the
/// edge checks against the `Host` nginx passes on); returns the socket and its node.
async fn connect_as_browser(lb: SocketAddr) -> (Ws, String) {
    let mut request = format!("ws://{lb}/ws?symbols=*")
        .into_client_request()
        .expect("a request");
    let origin = HeaderValue::from_str(&format!("http://{lb}")).expect("a header value");
    request.headers_mut().insert("Origin", origin);
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade passes through nginx");
    let mut ws = ws;
    match next_message(&mut ws).await {
        Some(ServerMessage::Welcome { node, .. }) => (ws, node),
        other => panic!("expected welcome first, got {other:?}"),
    }
}

/// The next protocol message, `None` once the connection is closed or gone; tungstenite answers
/// the server's pings while it reads. Panics after `PATIENCE` without one.
async fn next_message(ws: &mut Ws) -> Option<ServerMessage> {
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a message within PATIENCE");
        match frame {
            Some(Ok(Message::Text(text))) => {
                return Some(serde_json::from_str(&text).expect("a protocol message"));
            }
            Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Reads the `subscribed`/`snapshot` answers to `?symbols=*`, then a `quotes` frame.
async fn snapshot_then_quotes(ws: &mut Ws) {
    let mut snapshot = false;
    loop {
        match next_message(ws).await {
            Some(ServerMessage::Subscribed { .. } | ServerMessage::Status { .. }) => {}
            Some(ServerMessage::Snapshot { quotes }) if !snapshot => {
                assert!(!quotes.is_empty(), "a snapshot with quotes");
                snapshot = true;
            }
            Some(ServerMessage::Quotes { quotes }) if snapshot && !quotes.is_empty() => return,
            other => panic!("expected subscribed, a snapshot, then quotes; got {other:?}"),
        }
    }
}

/// The config the script generates passes `nginx -t`, and holds every line of `deploy/nginx.conf`
/// except the compose-only ones (Docker's resolver, the `upstream` block, `listen 80`): the local
/// balancer proxies exactly like the compose one.
async fn generated_config_passes_nginx_t_and_keeps_the_proxy_settings() {
    let prefix = prefix_dir();
    let conf = write_and_check(prefix.path(), free_port(), &[free_port(), free_port()]);
    let generated = std::fs::read_to_string(conf).expect("read the config");
    let generated: Vec<&str> = generated.lines().map(str::trim).collect();
    let compose = std::fs::read_to_string(COMPOSE_NGINX).expect("deploy/nginx.conf");
    let mut in_upstream = false;
    for line in compose.lines().map(str::trim) {
        in_upstream |= line.starts_with("upstream edges");
        let compose_only = in_upstream || line.starts_with("resolver ") || line == "listen 80;";
        if line == "}" && in_upstream {
            in_upstream = false;
        }
        if compose_only || line.is_empty() || line.starts_with('#') {
            continue;
        }
        assert!(
            generated.contains(&line),
            "the generated config lacks `{line}` of deploy/nginx.conf"
        );
    }
    assert!(!generated.iter().any(|l| l.contains(" resolve")));
}

/// Through nginx: a browser's upgrade gets `welcome`, the snapshot and quotes from an edge, and
/// `GET /api/quotes` answers with every symbol.
async fn websocket_and_polling_through_nginx() {
    let cluster = Cluster::start(2).await;
    let lb = Nginx::start(&[cluster.addr(0), cluster.addr(1)]).await;
    let (mut client, node) = connect_as_browser(lb.addr).await;
    assert!(cluster.edges.iter().any(|e| e.node == node), "node {node}");
    snapshot_then_quotes(&mut client).await;

    let response = reqwest::get(format!("http://{}/api/quotes", lb.addr))
        .await
        .expect("GET /api/quotes through nginx");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().contains_key("etag"), "the ETag passes");
    let body: Value = response.json().await.expect("a JSON body");
    let quotes = body["quotes"].as_array().expect("a quotes array");
    assert_eq!(quotes.len(), symbol_count(cluster.addr(0)).await);
}

/// A client whose edge is killed reconnects to the same nginx address and lands on the other
/// edge (its `welcome` names the other node), with a snapshot and quotes.
async fn killed_edge_client_reconnects_through_nginx_to_the_other() {
    let mut cluster = Cluster::start(2).await;
    let lb = Nginx::start(&[cluster.addr(0), cluster.addr(1)]).await;
    let (mut client, first) = connect_as_browser(lb.addr).await;
    snapshot_then_quotes(&mut client).await;
    let dead = cluster
        .edges
        .iter()
        .position(|e| e.node == first)
        .expect("the node is one of the edges");
    cluster.edges[dead].process.kill();
    // Whatever was in flight, then the end of the connection (a Close or just EOF).
    while next_message(&mut client).await.is_some() {}
    // Twice: round robin would pick the dead edge for one of them, nginx must go past it.
    for _ in 0..2 {
        let (mut client, node) = connect_as_browser(lb.addr).await;
        assert_ne!(node, first, "a reconnect lands on the edge still alive");
        snapshot_then_quotes(&mut client).await;
    }
}

/// A rolling deploy through nginx: SIGTERM to a client's edge, which tells it
/// `reconnect_after_ms` and then closes it with 1001; the client waits as told and reconnects
/// to the same nginx address, landing on the other edge every time (nginx passes a draining
/// edge's 503, or a refused connection once it is gone, on to the next upstream).
async fn draining_edge_client_follows_the_advice_through_nginx_to_the_other() {
    let roles = Roles {
        edge_env: &[("TICKER__SERVER__DRAIN_MS", "4000")],
        ..Roles::default()
    };
    let mut cluster = Cluster::start_with(2, roles).await;
    let lb = Nginx::start(&[cluster.addr(0), cluster.addr(1)]).await;
    let (mut client, first) = connect_as_browser(lb.addr).await;
    snapshot_then_quotes(&mut client).await;
    let draining = cluster
        .edges
        .iter()
        .position(|e| e.node == first)
        .expect("the node is one of the edges");
    support::signal(cluster.edges[draining].process.id(), "TERM");
    let advised = loop {
        match next_message(&mut client).await {
            Some(ServerMessage::Status {
                reconnect_after_ms: Some(ms),
                ..
            }) => break Duration::from_millis(ms),
            Some(_) => continue,
            None => panic!("closed without the draining notice"),
        }
    };
    let noticed = Instant::now();
    while next_message(&mut client).await.is_some() {}
    tokio::time::sleep(advised.saturating_sub(noticed.elapsed())).await;
    for _ in 0..4 {
        let (mut client, node) = connect_as_browser(lb.addr).await;
        assert_ne!(node, first, "a reconnect lands on the edge still serving");
        snapshot_then_quotes(&mut client).await;
    }
    assert_eq!(
        support::exit_code_within(
            &mut cluster.edges[draining].process,
            Duration::from_secs(10)
        )
        .await,
        Some(0)
    );
}

/// `deploy/local-cluster.sh`, started like an operator does, as its own process.
struct Script {
    child: Child,
    log: PathBuf,
}

impl Script {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` to the script and waits up to `within` for it to exit.
    fn signal_and_wait(&mut self, signal: &str, within: Duration) -> bool {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Script {
    /// SIGTERM first, so the script's trap stops what it started; SIGKILL only as a last resort.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        if !self.signal_and_wait("-TERM", PATIENCE) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// The one documented command: `deploy/local-cluster.sh` brings up nats-server, a publisher, two
/// edges and nginx on the ports it is given; a client through nginx gets `welcome` from
/// `edge-1` or `edge-2`; on Ctrl-C (SIGINT) every one of them is stopped.
async fn local_cluster_script_starts_and_stops_everything() {
    let logs = tempfile::tempdir().expect("a temporary directory");
    let (lb, edge_1, edge_2, publisher, nats) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let log = logs.path().join("script.log");
    let child = Command::new("bash")
        .arg(SCRIPT)
        .env("TICKER_BIN", env!("CARGO_BIN_EXE_ticker"))
        .env("NGINX", nginx_path())
        .env("LB_PORT", lb.to_string())
        .env("EDGE_PORTS", format!("{edge_1} {edge_2}"))
        .env("PUBLISHER_PORT", publisher.to_string())
        .env("NATS_PORT", nats.to_string())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("the script starts");
    let mut script = Script { child, log };
    let lb_addr = SocketAddr::from(([127, 0, 0, 1], lb));
    let deadline = Instant::now() + 3 * PATIENCE;
    while support::http::status(lb_addr, "/readyz").await != Ok(200) {
        assert!(
            script.child.try_wait().ok().flatten().is_none(),
            "the script exited at start:\n{}",
            script.log()
        );
        assert!(
            Instant::now() < deadline,
            "nginx never answered /readyz 200:\n{}",
            script.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut client, node) = connect_as_browser(lb_addr).await;
    assert!(["edge-1", "edge-2"].contains(&node.as_str()), "node {node}");
    snapshot_then_quotes(&mut client).await;

    assert!(
        script.signal_and_wait("-INT", PATIENCE),
        "the script stops on SIGINT:\n{}",
        script.log()
    );
    for port in [lb, edge_1, edge_2, publisher, nats] {
        assert!(
            !listening(port),
            "port {port} still listens after the script stopped:\n{}",
            script.log()
        );
    }
}
