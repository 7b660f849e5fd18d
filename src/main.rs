//! The `ticker` binary: parses arguments, loads settings, starts logging, and runs.
//!
//! Exit codes: 0 done; 1 the server or publisher failed at run time (e.g. its port is taken);
//! 2 the settings cannot be loaded or are invalid; 64 the command line is wrong.
//!
//! Nothing here prints with `print!`/`eprintln!`: they panic when the stream is closed or its
//! reader has gone (the process ignores SIGPIPE), and a broken pipe must cost output, not the
//! process. See `telemetry` for the log.

use std::fmt::Display;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ticker::access::auth::Auth;
use ticker::access::jwt::{Claims, OneOrMany, SigningKey};
use ticker::access::symbol_rights::SymbolRights;
use ticker::app::Application;
use ticker::cluster::publisher::Publisher;
use ticker::settings::{Settings, Sources};
use tokio_util::sync::CancellationToken;

/// Shown after `--help`: where settings come from and how to check them.
const SETTINGS_HELP: &str = "\
Settings, later wins: config/default.toml (built in) < config/$TICKER_ENV.toml (relative to the
working directory) < --config PATH < environment variables TICKER__SECTION__KEY (e.g.
TICKER__SERVER__PORT=9000, TICKER__WS__IDLE_TIMEOUT_MS=1500) < --host/--port.
`ticker check-config` prints the effective settings and checks them; see config/default.toml
for every setting. Exit codes: 0 ok, 1 run-time failure, 2 invalid settings, 64 usage.";

#[derive(Parser)]
#[command(version, about = "Live stock-ticker push service", after_help = SETTINGS_HELP)]
struct Cli {
    /// A settings file layered over config/default.toml (and config/$TICKER_ENV.toml).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The address to listen on (server.host), e.g. 0.0.0.0 for every interface.
    #[arg(long, global = true, value_name = "ADDR")]
    host: Option<String>,
    /// The port to listen on (server.port); 0 takes any free port.
    #[arg(long, global = true, value_name = "PORT")]
    port: Option<String>,
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
    /// Print a JWT for `/ws` and `/api/*` that expires after `--ttl-secs`: HS256 under
    /// auth.hmac_secret (or auth.hmac_secret_file), or signed with `--private-key`. Its `aud`
    /// and `iss` are the first of auth.audience and auth.issuer, if set.
    Token(TokenArgs),
}

#[derive(clap::Args)]
struct TokenArgs {
    /// Seconds the token stays valid (`exp`).
    #[arg(long, default_value_t = 3600)]
    ttl_secs: u64,
    /// Who the token is for (`sub`).
    #[arg(long)]
    sub: Option<String>,
    /// The symbols it opens, comma-separated: names, prefixes such as `A*`, or `*` for all.
    #[arg(long, default_value = "*")]
    symbols: String,
    /// The delayed tier's delay in milliseconds; 0 is the live tier.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// An RSA, EC P-256 or Ed25519 private key in PEM (PKCS#8): signs with RS256, ES256 or EdDSA.
    #[arg(long, value_name = "PATH")]
    private_key: Option<PathBuf>,
    /// The key id (`kid`) in the token's header, naming its key in a JWKS.
    #[arg(long)]
    kid: Option<String>,
}

/// Exit code for settings that cannot be loaded or are invalid.
const EXIT_BAD_SETTINGS: u8 = 2;
/// Exit code for a command line that cannot be parsed (`EX_USAGE`).
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS // --help, --version
            };
        }
    };
    let mut sources = Sources::from_process(cli.config);
    if let Some(host) = cli.host {
        sources.flags.push(("server.host", host, "--host"));
    }
    if let Some(port) = cli.port {
        sources.flags.push(("server.port", port, "--port"));
    }
    let settings = match Settings::load(&sources) {
        Ok(settings) => settings,
        Err(e) => {
            // Logging is configured by these very settings, so report on stderr directly.
            report(e);
            return ExitCode::from(EXIT_BAD_SETTINGS);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    // Key files are settings too: one that does not load is refused like a bad value.
    if matches!(command, Command::Serve | Command::CheckConfig)
        && let Err(e) = Auth::new(&settings.auth)
    {
        report(format_args!("auth: {e}"));
        return ExitCode::from(EXIT_BAD_SETTINGS);
    }
    match command {
        // The last line is a TOML comment, so the output stays valid TOML.
        Command::CheckConfig => print_out(&format!(
            "{}\n# ok: the settings are valid\n",
            settings.to_toml()
        )),
        Command::Serve => serve(settings),
        Command::Token(args) => token(&settings, &args),
        Command::Publish => publish(settings),
    }
}

fn token(settings: &Settings, args: &TokenArgs) -> ExitCode {
    let symbols: Vec<String> = args
        .symbols
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if let Err(e) = SymbolRights::parse(&symbols) {
        report(format_args!("--symbols: {e}"));
        return ExitCode::from(EXIT_USAGE);
    }
    let key = match &args.private_key {
        Some(path) => std::fs::read(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|pem| SigningKey::from_pem(&pem).map_err(|e| e.to_string())),
        None => SigningKey::from_settings(&settings.auth).map_err(|e| e.to_string()),
    };
    let key = match key {
        Ok(key) => match &args.kid {
            Some(kid) => key.with_kid(kid),
            None => key,
        },
        Err(e) => {
            report(e);
            return ExitCode::from(EXIT_BAD_SETTINGS);
        }
    };
    let now = ticker::clock::now_secs();
    let claims = Claims {
        sub: args.sub.clone(),
        exp: now.saturating_add(args.ttl_secs),
        iat: Some(now),
        aud: settings.auth.audience.first().cloned().map(OneOrMany::One),
        iss: settings.auth.issuer.first().cloned(),
        symbols: (symbols != ["*"]).then_some(symbols),
        delay_ms: args.delay_ms,
        ..Claims::default()
    };
    match key.mint(&claims) {
        Ok(token) => print_out(&format!("{token}\n")),
        Err(e) => {
            report(e);
            ExitCode::FAILURE
        }
    }
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
        let app = Application::build(settings, shutdown)?;
        announce(app.local_addr());
        app.run_until_stopped().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Tells a person where to point a browser, once, also when the port was 0. On stdout and
/// never fatal: a closed stdout must not stop the server.
fn announce(addr: SocketAddr) {
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let _ = writeln!(
        std::io::stdout(),
        "dashboard: http://{shown}/\nwebsocket: ws://{shown}/ws"
    );
}
