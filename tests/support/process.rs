//! The `ticker` binary as a child process: started on a free port (port 0), its JSON log
//! drained so it never blocks on a full pipe, handed over with the address it logs.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use super::PATIENCE;
use super::settings::CLIENT_LIMITS_OFF;

/// The server process; killed and reaped if the test fails before it exits by itself.
pub struct ServerProcess(pub Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the `ticker` binary on a free port with JSON logs, `CLIENT_LIMITS_OFF` and extra
/// `TICKER__…` variables; returns the process and its bound address.
pub fn start_server(vars: &[(&str, &str)]) -> (ServerProcess, SocketAddr) {
    start_process(&[], vars)
}

/// Like `start_server`, with command-line arguments (`publish`, `serve`, `--config …`).
pub fn start_process(args: &[&str], vars: &[(&str, &str)]) -> (ServerProcess, SocketAddr) {
    let child = Command::new(env!("CARGO_BIN_EXE_ticker"))
        .args(args)
        .envs(CLIENT_LIMITS_OFF.iter().copied())
        .envs(vars.iter().copied())
        .env("TICKER__SERVER__PORT", "0")
        .env("TICKER__LOG__FORMAT", "json")
        .env("TICKER__LOG__LEVEL", "info")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut server = ServerProcess(child);
    let stderr = server.0.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + PATIENCE;
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server logs its address in time");
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if event["message"] == "listening" {
            let addr = event["addr"]
                .as_str()
                .expect("addr is logged")
                .parse()
                .unwrap();
            return (server, addr);
        }
    }
}
