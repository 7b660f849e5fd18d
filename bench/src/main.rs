//! `ticker-bench`: load and comparison tool for a running `ticker` server (loopback only).
//!
//! - `push`: N WebSocket clients (some optionally slow); delivery, latency, server CPU and memory.
//! - `poll`: M HTTP pollers: requests, 304s, staleness, missed updates, server CPU and memory.
//! - `compare`: one WebSocket client against one HTTP poller on the same symbols.
//! - `universe`: a generated symbol universe of any size, as a settings file.

mod compare;
mod counting;
mod histogram;
mod poll;
mod process;
mod push;
mod raw_ws;
mod scan;
mod stats;
mod universe;
mod zipf;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Benchmarks for a running ticker server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// N WebSocket clients: throughput, latency, seq gaps, server CPU and RSS.
    Push(push::PushArgs),
    /// M HTTP clients polling /api/quotes: requests, staleness, missed updates, server CPU.
    Poll(poll::PollArgs),
    /// Push versus polling on the same symbols: shown, missed, staleness, requests, bytes.
    Compare(compare::CompareArgs),
    /// Print a generated universe of N symbols as a settings file (`--config` it).
    Universe(universe::UniverseArgs),
}

/// Whatever stops a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Usage(String),
    #[error("bad URL: {0}")]
    Url(#[from] hyper::http::uri::InvalidUri),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("HTTP request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("unexpected JSON from the server: {0}")]
    Json(#[from] serde_json::Error),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Push(args) => push::run(args).await,
        Command::Poll(args) => poll::run(args).await,
        Command::Compare(args) => compare::run(args).await,
        Command::Universe(args) => universe::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ticker-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
