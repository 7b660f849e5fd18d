//! The `ticker` binary: parses arguments, loads settings, starts logging, and runs.
//!
//! Nothing here prints with `print!`/`eprintln!`: they panic when the stream is closed or its
//! reader has gone (the process ignores SIGPIPE), and a broken pipe must cost output, not the
//! process. See `telemetry` for the log.

use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ticker::access::auth::SignedTokens;
use ticker::app::Application;
use ticker::cluster::publisher::Publisher;
use ticker::settings::{Settings, Sources};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "Live stock-ticker push service")]
struct Cli {
    /// A settings file layered over config/default.toml (and config/$TICKER_ENV.toml).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve WebSocket, polling API and dashboard (the default), from the simulated feed or,
    /// with feed.source = "nats", as an edge fed by `ticker publish`.
    Serve,
    /// Run the simulated feed alone and publish it to NATS for edges (see docs/cluster.md).
    Publish,
    /// Validate the settings and print the effective values.
    CheckConfig,
    /// Print a signed token for `/ws` and `/api/*` that expires after `--ttl-secs`
    /// (needs auth.hmac_secret).
    Token {
        /// Seconds the token stays valid.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
}

/// Exit code for settings that cannot be loaded or are invalid.
const EXIT_BAD_SETTINGS: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&Sources::from_process(cli.config)) {
        Ok(settings) => settings,
        Err(e) => {
            // Logging is configured by these very settings, so report on stderr directly.
            report(e);
            return ExitCode::from(EXIT_BAD_SETTINGS);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => print_out(&settings.to_toml()),
        Command::Serve => serve(settings),
        Command::Token { ttl_secs } => token(&settings, ttl_secs),
        Command::Publish => publish(settings),
    }
}

fn token(settings: &Settings, ttl_secs: u64) -> ExitCode {
    let Some(secret) = &settings.auth.hmac_secret else {
        report("`ticker token` needs auth.hmac_secret (e.g. TICKER__AUTH__HMAC_SECRET)");
        return ExitCode::from(EXIT_BAD_SETTINGS);
    };
    let expires = ticker::clock::now_secs().saturating_add(ttl_secs);
    print_out(&format!("{}\n", SignedTokens::new(secret).sign(expires)))
}

/// An error for the person at the terminal, before logging exists; lost if stderr is broken.
fn report(message: impl Display) {
    let _ = writeln!(std::io::stderr(), "ticker: {message}");
}

/// Writes a command's output; fails the command, without a panic, if stdout cannot take it.
fn print_out(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn publish(settings: Settings) -> ExitCode {
    let _log = ticker::telemetry::init(&settings.log);
    let result = actix_web::rt::System::new().block_on(async move {
        let shutdown = CancellationToken::new();
        ticker::shutdown::cancel_on_signal(shutdown.clone());
        Publisher::build(settings, shutdown)
            .await
            .map_err(std::io::Error::other)?
            .run_until_stopped()
            .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "publisher failed");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> ExitCode {
    let _log = ticker::telemetry::init(&settings.log);
    ticker::app::raise_open_file_limit();
    let result = actix_web::rt::System::new().block_on(async move {
        let shutdown = CancellationToken::new();
        ticker::shutdown::cancel_on_signal(shutdown.clone());
        Application::build(settings, shutdown)?
            .run_until_stopped()
            .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
