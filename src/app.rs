//! `Application`: assembles every area from `Settings` (the feed of the configured source,
//! access control, metrics, the HTTP server), binds (port 0 in tests), and runs until the
//! injected shutdown token is cancelled, then drains. Nothing imports this module but `main`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::admission::Admission;
use crate::access::auth::Auth;
use crate::access::client_ip::TrustedProxies;
use crate::access::origin::OriginPolicy;
use crate::cluster::edge;
use crate::feed::simulated;
use crate::http;
use crate::http::state::AppState;
use crate::metrics::Metrics;
use crate::session::SessionContext;
use crate::settings::{FeedSource, ServerSettings, Settings};

/// After the server ends a connection, how long the client has to close its side before the
/// socket is dropped.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Application {
    server: Server,
    addr: SocketAddr,
    settings: ServerSettings,
    shutdown: CancellationToken,
    sessions: TaskTracker,
}

/// Raises the soft open-file limit to the hard limit: every connection is a file descriptor, and
/// the common soft default of 1,024 would cap the server far below what it can hold.
pub fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
}

/// Each session is a file descriptor: a connection limit above the open-file limit would fail
/// with accept errors before it refuses anyone politely.
fn warn_if_above_file_limit(max_connections: usize) {
    /// Descriptors for everything else: the listener, logs, NATS, polling clients.
    const RESERVE: u64 = 256;
    if let Ok((soft, _)) = rlimit::Resource::NOFILE.get()
        && (max_connections == 0 || max_connections as u64 + RESERVE > soft)
    {
        tracing::warn!(
            max_connections,
            open_file_limit = soft,
            "server.max_connections is not below the open-file limit"
        );
    }
}

/// Sets up each accepted socket. Quotes are small frames that must leave at once: Nagle's
/// algorithm would hold them back waiting for the previous segment's ACK (tens of milliseconds
/// with delayed ACKs). A bounded send buffer makes a client that stops reading show up as
/// backpressure (and conflation) within seconds instead of after megabytes of kernel memory.
fn tune_socket(connection: &dyn std::any::Any, send_buffer_bytes: u32) {
    let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot disable Nagle's algorithm");
    }
    if send_buffer_bytes > 0
        && let Err(e) = socket2::SockRef::from(tcp).set_send_buffer_size(send_buffer_bytes as usize)
    {
        tracing::debug!(error = %e, "cannot set the send buffer size");
    }
}

impl Application {
    /// Starts the feed and binds the listener; nothing is served until `run_until_stopped`.
    pub fn build(settings: Settings, shutdown: CancellationToken) -> io::Result<Self> {
        let feed = match settings.feed.source {
            FeedSource::Simulated => simulated::spawn(&settings.feed, shutdown.clone()),
            FeedSource::Nats => {
                edge::spawn(&settings, shutdown.clone()).map_err(io::Error::other)?
            }
        };
        let node: Arc<str> = settings.server.node().into();
        tracing::info!(node = %node, source = ?settings.feed.source, "feed started");
        let sessions = TaskTracker::new();
        let metrics = Metrics::new(feed.clone());
        let invalid = |key: &str, (i, entry): (usize, String)| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid setting `{key}[{i}]`: {entry}"),
            )
        };
        let proxies = TrustedProxies::parse(&settings.server.trusted_proxies)
            .map_err(|e| invalid("server.trusted_proxies", e))?;
        let origins = OriginPolicy::parse(&settings.server.allowed_origins)
            .map_err(|e| invalid("server.allowed_origins", e))?;
        let auth = Auth::new(&settings.auth);
        warn_if_above_file_limit(settings.server.max_connections);
        tracing::info!(
            max_connections = settings.server.max_connections,
            max_connections_per_ip = settings.server.max_connections_per_ip,
            connect_rate_per_ip = settings.server.connect_rate_per_ip,
            auth = auth.is_enabled(),
            "limits"
        );
        let state = web::Data::new(AppState {
            session: SessionContext {
                feed,
                node,
                ws: Arc::new(settings.ws.clone()),
                shutdown: shutdown.clone(),
                metrics,
            },
            sessions: sessions.clone(),
            admission: Admission::new(&settings.server),
            proxies,
            origins,
            auth,
        });
        let send_buffer_bytes = settings.server.send_buffer_bytes;
        let max_uri_bytes = settings.server.max_uri_bytes;
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(from_fn(move |req, next| {
                    http::uri_limit::limit_uri(max_uri_bytes, req, next)
                }))
                .configure(http::configure)
        })
        .on_connect(move |connection, _| tune_socket(connection, send_buffer_bytes))
        .workers(workers)
        .backlog(4096)
        .client_request_timeout(
            settings
                .server
                .handshake_timeout()
                .max(Duration::from_millis(
                    crate::settings::MIN_HANDSHAKE_TIMEOUT_MS,
                )),
        )
        .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout().as_secs().max(1))
        .bind((settings.server.host.as_str(), settings.server.port))?;
        let addr = *server
            .addrs()
            .first()
            .expect("bind succeeded, so there is at least one address");
        let server = server.run();
        tracing::info!(%addr, workers, "listening");
        Ok(Self {
            server,
            addr,
            settings: settings.server,
            shutdown,
            sessions,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live WebSocket sessions; `len()` is how many are open right now.
    pub fn sessions(&self) -> TaskTracker {
        self.sessions.clone()
    }

    /// Serves until the shutdown token is cancelled. Then sessions close with 1001 at once, the
    /// listener keeps answering for the grace period (`/readyz` 503), and the server stops.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        tokio::select! {
            result = &mut server => return result.map_err(io::Error::other)?,
            () = self.shutdown.cancelled() => {}
        }
        tracing::info!(sessions = self.sessions.len(), "shutting down");
        let grace = tokio::time::sleep(self.settings.shutdown_grace());
        self.sessions.close();
        if tokio::time::timeout(self.settings.shutdown_timeout(), self.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.sessions.len(),
                "sessions still open at shutdown timeout"
            );
        }
        grace.await;
        handle.stop(true).await;
        server.await.map_err(io::Error::other)??;
        tracing::info!("stopped");
        Ok(())
    }
}
