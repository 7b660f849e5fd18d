//! `Application`: assembles every area from `Settings` (the feed of the configured source,
//! access control within the capacity the open-file limit allows, metrics, the HTTP server),
//! binds (port 0 in tests), and runs until the injected shutdown token is cancelled, then
//! drains: sessions close over `server.drain_ms` while the feed keeps them supplied, and the
//! feed stops after the last one. Nothing imports this module but `main`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::web;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use crate::access::admission::Admission;
use crate::access::auth::Auth;
use crate::access::capacity::Capacity;
use crate::access::client_ip::TrustedProxies;
use crate::access::origin::OriginPolicy;
use crate::cluster::edge;
use crate::feed::{delayed, simulated};
use crate::http;
use crate::http::state::AppState;
use crate::metrics::Metrics;
use crate::session::SessionContext;
use crate::session::drain::Drain;
use crate::settings::{FeedSource, ServerSettings, Settings};

pub struct Application {
    server: Server,
    addr: SocketAddr,
    settings: ServerSettings,
    shutdown: CancellationToken,
    sessions: TaskTracker,
    /// The upgraded connections' tasks, which write each session's last frames.
    upgraded: TaskTracker,
    /// Stops the feed when dropped: after the last session, or with an application never run.
    feed_stop: DropGuard,
}

/// Raises the soft open-file limit to the hard limit: every connection is a file descriptor, and
/// the common soft default of 1,024 would cap the server far below what it can hold.
pub fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
}

/// The soft open-file limit now, if it can be read; None when there is none.
fn open_file_limit() -> Option<u64> {
    rlimit::Resource::NOFILE
        .get()
        .ok()
        .map(|(soft, _)| soft)
        .filter(|&soft| soft != rlimit::INFINITY)
}

impl Application {
    /// Starts the feed and binds the listener; nothing is served until `run_until_stopped`.
    pub fn build(settings: Settings, shutdown: CancellationToken) -> io::Result<Self> {
        // Not `shutdown`: draining sessions still get quotes.
        let feed_stop = CancellationToken::new();
        let feed = match settings.feed.source {
            FeedSource::Simulated => {
                simulated::spawn(&settings.feed, &settings.history, feed_stop.clone())
            }
            FeedSource::Nats => {
                edge::spawn(&settings, feed_stop.clone()).map_err(io::Error::other)?
            }
        };
        let delayed: Arc<[_]> = settings
            .auth
            .delayed_tiers_ms
            .iter()
            .map(|delay| delayed::spawn(&feed, delay.get(), feed_stop.clone()))
            .collect();
        let node: Arc<str> = settings.server.node().into();
        tracing::info!(node = %node, source = ?settings.feed.source, "feed started");
        let sessions = TaskTracker::new();
        let upgraded = TaskTracker::new();
        let metrics = Metrics::new(feed.clone());
        let proxies = TrustedProxies::new(&settings.server.trusted_proxies);
        let origins = OriginPolicy::new(&settings.server);
        let auth = Auth::new(&settings.auth).map_err(io::Error::other)?;
        auth.reload_on_sighup(shutdown.clone());
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let open_file_limit = open_file_limit();
        let capacity = Capacity::derive(
            settings.server.max_connections,
            settings.server.http_headroom,
            workers,
            open_file_limit,
        );
        metrics
            .connections_limit
            .set(Capacity::shown(capacity.sessions));
        metrics
            .tcp_connections_limit
            .set(Capacity::shown(capacity.connections));
        if capacity.lowered {
            tracing::warn!(
                max_connections = ?settings.server.max_connections,
                http_headroom = ?settings.server.http_headroom,
                open_file_limit,
                "connection limits lowered to fit the open-file limit"
            );
        }
        tracing::info!(
            sessions = Capacity::shown(capacity.sessions),
            connections = Capacity::shown(capacity.connections),
            max_connections_per_ip = settings.server.max_connections_per_ip,
            connect_rate_per_ip = settings.server.connect_rate_per_ip,
            open_file_limit,
            auth = auth.is_enabled(),
            "limits"
        );
        let state = web::Data::new(AppState {
            session: SessionContext {
                feed,
                node,
                ws: Arc::new(settings.ws.clone()),
                shutdown: shutdown.clone(),
                drain: Drain::new(settings.server.drain_ms.get()),
                metrics,
                auth,
                delayed,
            },
            sessions: sessions.clone(),
            upgraded: upgraded.clone(),
            admission: Admission::new(&settings.server, capacity),
            proxies,
            origins,
        });
        let (server, addrs) = http::server::serve(&settings.server, workers, state)?;
        let addr = *addrs
            .first()
            .expect("serve binds at least one address or fails");
        tracing::info!(%addr, workers, "listening");
        Ok(Self {
            server,
            addr,
            settings: settings.server,
            shutdown,
            sessions,
            upgraded,
            feed_stop: feed_stop.drop_guard(),
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

    /// Serves until the shutdown token is cancelled. Then `/readyz` and upgrades answer 503,
    /// sessions close with 1001 over the drain window, the listener keeps answering for at
    /// least the grace period, and the server stops.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        tokio::select! {
            result = &mut server => return result.map_err(io::Error::other)?,
            () = self.shutdown.cancelled() => {}
        }
        let drain = self.settings.drain_ms.get();
        tracing::info!(
            sessions = self.sessions.len(),
            drain_ms = self.settings.drain_ms.ms(),
            "shutting down"
        );
        let grace = tokio::time::sleep(self.settings.shutdown_grace_ms.get());
        self.sessions.close();
        self.upgraded.close();
        // The sessions end once they queued their Close; their connections once it is written
        // and the client closed its side (or `http::upgraded::LINGER` passed).
        let closed = async {
            self.sessions.wait().await;
            self.upgraded.wait().await;
        };
        if tokio::time::timeout(drain + self.settings.shutdown_timeout_ms.get(), closed)
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.sessions.len(),
                connections = self.upgraded.len(),
                "sessions still open at shutdown timeout"
            );
        }
        drop(self.feed_stop);
        grace.await;
        handle.stop(true).await;
        server.await.map_err(io::Error::other)??;
        tracing::info!("stopped");
        Ok(())
    }
}
