//! The `ticker` binary as a child process: started on a free port with the variables of
//! `settings.rs`, its log drained (so it never blocks on a full pipe) and kept for tests, and
//! handed over once it answers `/readyz` 200 (or `/healthz` 200, for a server that may start
//! unready).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::PATIENCE;
use super::http::{self, POLL_INTERVAL};
use super::settings::{BINARY, CLIENT_LIMITS_OFF};

/// How many free ports `launch` tries when the child exits at start (the port was taken).
const START_ATTEMPTS: usize = 5;

/// The binary's exit code for invalid settings: no other port will help.
const EXIT_BAD_SETTINGS: i32 = 2;

/// A child process; killed and reaped when dropped (if the test fails before it exits by itself).
pub struct ServerProcess {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Adopts any child (e.g. `nats-server`) so that it too is killed and reaped when dropped.
    pub fn adopt(child: Child) -> Self {
        Self {
            child,
            logs: Arc::default(),
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's stderr, when it was piped and nobody took it yet.
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .expect("the process can be waited for")
    }

    /// Every line the process has written to stderr so far (its JSON log, for `ticker`).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of the log, for failure messages.
    fn log_tail(&self) -> String {
        let logs = self.logs.lock().unwrap();
        logs[logs.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What `launch` waits for before it hands the process over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// `/healthz` 200: it answers at all (an edge does while its feed is stale).
    Healthy,
    /// `/readyz` 200: it takes traffic (an edge: it has a live feed; a publisher: NATS is up).
    Ready,
}

/// Starts the `ticker` binary (`serve`) with extra `TICKER__…` variables; returns the process
/// and its address once it is ready.
pub async fn start_server(vars: &[(&str, &str)]) -> (ServerProcess, SocketAddr) {
    launch(&[], vars, Wait::Ready).await
}

/// Like `start_server`, with command-line arguments (`publish`, `serve`, `--config …`).
pub async fn start_process(args: &[&str], vars: &[(&str, &str)]) -> (ServerProcess, SocketAddr) {
    launch(args, vars, Wait::Ready).await
}

/// Starts the binary with `args` and the variables `BINARY`, `CLIENT_LIMITS_OFF`, then `vars`
/// (later ones win) on a free port of 127.0.0.1, and waits as `wait` says. When the process
/// exits at start, most likely because another one took the port first, tries another port.
pub async fn launch(
    args: &[&str],
    vars: &[(&str, &str)],
    wait: Wait,
) -> (ServerProcess, SocketAddr) {
    launch_limited(args, vars, wait, None).await
}

/// Like `start_server`, under an open-file limit of `limit` (soft and hard, so the server
/// cannot raise it).
pub async fn start_server_with_file_limit(
    limit: u64,
    vars: &[(&str, &str)],
) -> (ServerProcess, SocketAddr) {
    launch_limited(&[], vars, Wait::Ready, Some(limit)).await
}

async fn launch_limited(
    args: &[&str],
    vars: &[(&str, &str)],
    wait: Wait,
    file_limit: Option<u64>,
) -> (ServerProcess, SocketAddr) {
    for attempt in 1..=START_ATTEMPTS {
        let port = free_port();
        let mut process = spawn(args, vars, port, file_limit);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        match until_up(&mut process, addr, wait).await {
            Ok(()) => return (process, addr),
            Err(status) if attempt < START_ATTEMPTS && status.code() != Some(EXIT_BAD_SETTINGS) => {
                eprintln!(
                    "the server exited at start ({status}), port {port} was likely taken; retrying"
                );
            }
            Err(status) => panic!(
                "the server exited at start ({status}) on attempt {attempt}; its log:\n{}",
                process.log_tail()
            ),
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// A TCP port of 127.0.0.1 that nothing listens on right now (bound on port 0, then released).
/// Another process may take it before the child binds it: `launch` then retries.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn spawn(
    args: &[&str],
    vars: &[(&str, &str)],
    port: u16,
    file_limit: Option<u64>,
) -> ServerProcess {
    let binary = env!("CARGO_BIN_EXE_ticker");
    let mut command = match file_limit {
        None => Command::new(binary),
        Some(limit) => {
            let mut shell = Command::new("sh");
            let script = format!("ulimit -n {limit} && exec \"$0\" \"$@\"");
            shell.args(["-c", &script, binary]);
            shell
        }
    };
    let mut child = command
        .args(args)
        .envs(BINARY.iter().copied())
        .envs(CLIENT_LIMITS_OFF.iter().copied())
        .envs(vars.iter().copied())
        .env("TICKER__SERVER__PORT", port.to_string())
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&logs);
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    ServerProcess { child, logs }
}

/// Polls until the process answers as `wait` says on `addr` and owns that listener; the exit
/// status if it exits first. Panics after `PATIENCE`.
async fn until_up(
    process: &mut ServerProcess,
    addr: SocketAddr,
    wait: Wait,
) -> Result<(), ExitStatus> {
    let path = match wait {
        Wait::Healthy => "/healthz",
        Wait::Ready => "/readyz",
    };
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = process.try_wait() {
            return Err(status);
        }
        let got = http::status(addr, path).await;
        if got == Ok(200) && listens_on(process.id(), addr.port()) {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "{path} on {addr} never answered 200 from the child: {got:?}; its log:\n{}",
            process.log_tail()
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// True when process `pid` holds the socket listening on TCP `port`, so that another server
/// which took the port first is not mistaken for this one (`/proc/net/tcp*` name the listening
/// socket's inode, `/proc/{pid}/fd` the sockets the process holds).
#[cfg(target_os = "linux")]
fn listens_on(pid: u32, port: u16) -> bool {
    const LISTEN: &str = "0A";
    let mut sockets = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        // Columns: sl, local address (hex ip:port), remote address, state, …, inode (10th).
        for row in text.lines().skip(1) {
            let columns: Vec<&str> = row.split_whitespace().collect();
            let local_port = columns
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port)
                && columns.get(3) == Some(&LISTEN)
                && let Some(inode) = columns.get(9)
            {
                sockets.push(format!("socket:[{inode}]"));
            }
        }
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()))
}

/// Elsewhere, trust the answer: the child's exit at start is still noticed and retried.
#[cfg(not(target_os = "linux"))]
fn listens_on(_pid: u32, _port: u16) -> bool {
    true
}

/// Sends SIGTERM and waits for the process to exit; returns its exit code.
pub async fn terminate(process: &mut ServerProcess) -> Option<i32> {
    let status = Command::new("kill")
        .args(["-TERM", &process.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = process.try_wait() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "the process exits in time after SIGTERM"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The environment `launch` gives the binary (`BINARY`, `CLIENT_LIMITS_OFF`, then `vars`), with
/// port 0 and stdout discarded, for tests that must spawn it themselves (special stdio).
pub fn with_test_env(command: &mut Command, vars: &[(&str, &str)]) {
    command
        .envs(BINARY.iter().copied())
        .envs(CLIENT_LIMITS_OFF.iter().copied())
        .envs(vars.iter().copied())
        .env("TICKER__SERVER__PORT", "0")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null());
}

/// The bound address from the server's JSON `listening` log line, if `line` is that line: for
/// a test that must read the log itself before letting go of it.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let event = serde_json::from_str::<serde_json::Value>(line).ok()?;
    (event["message"] == "listening").then(|| {
        event["addr"]
            .as_str()
            .expect("addr is logged")
            .parse()
            .expect("addr is an address")
    })
}

/// Sends `signal` (`TERM`, `STOP`, `CONT`, …) to a process with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Waits for the process to exit by itself within `limit`; returns its exit code.
pub async fn exit_code_within(
    server: &mut ServerProcess,
    limit: std::time::Duration,
) -> Option<i32> {
    let started = Instant::now();
    loop {
        if let Some(status) = server.try_wait() {
            return status.code();
        }
        assert!(
            started.elapsed() < limit,
            "the process did not exit within {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The `ticker` binary as a command with no `TICKER…` variable from the test's own environment:
/// for tests of the command line itself (settings, flags, exit codes).
pub fn bare_ticker() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ticker"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TICKER") {
            command.env_remove(key);
        }
    }
    command
}
