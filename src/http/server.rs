//! The HTTP server: actix-server accepts TCP connections on the workers; each is admitted at once
//! (`Admission::admit_connection`), then served by actix-http with the routes, under its
//! [`Guard`](super::connection::Guard) until it becomes a session.
//!
//! actix-web's `HttpServer` cannot refuse a connection (its `on_connect` hook sees each one and
//! can only let it through) and cannot watch one. Its per-worker `max_connections` pauses
//! accepting instead, so the clients past it wait in the backlog without an answer, health
//! checks among them, which is what a dead server looks like. So this builds what
//! `HttpServer::listen` builds, actix-server's `ServerBuilder` with an `HttpService` per
//! worker, with admission and the guard in front. A refused connection is answered as soon as
//! its request starts to arrive, without reading it: `503 too_many_connections` or
//! `429 too_many_connections_from_ip` with `Retry-After` and `Connection: close`, and closed
//! once the client has read it. At most [`MAX_ANSWERING`] refusals are answered at a time, each
//! for at most `ANSWER_TIME`; past that, refused connections are closed unanswered, so refusing
//! never costs more than a few descriptors.
//!
//! Per-address counting here uses the TCP peer, the only address known before the request: a
//! peer in `server.trusted_proxies` counts only in the total, and its sessions count against
//! the forwarded client at upgrade (`access::admission`).
//!
//! The routes see `AppConfig::default()`, whose host and address are only the fallback of URL
//! generation, which no route uses.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use actix_http::{HttpService, KeepAlive, Protocol};
use actix_server::Server;
use actix_service::{Service, apply_fn_factory, map_config};
use actix_web::dev::AppConfig;
use actix_web::middleware::from_fn;
use actix_web::rt::net::TcpStream;
use actix_web::{App, web};
use futures_util::future::LocalBoxFuture;
use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::access::Refusal;
use crate::http::connection::{self, Close, Connection, Lease, Limits};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::http::upgrade::Upgrade;
use crate::settings::{MIN_HANDSHAKE_TIMEOUT_MS, ServerSettings};

/// Refused connections answered at a time; past it they are closed unanswered.
pub const MAX_ANSWERING: usize = 32;
/// How long a refused connection may take to send its request and read the answer.
const ANSWER_TIME: Duration = Duration::from_secs(1);
/// After the server ends a connection, how long the client has to close its side before the
/// socket is dropped.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const BACKLOG: i32 = 4096;

/// Binds `server.host:port` (every address it resolves to) and starts serving on `workers`
/// threads; returns the server and the bound addresses.
pub fn serve(
    settings: &ServerSettings,
    workers: usize,
    state: web::Data<AppState>,
) -> io::Result<(Server, Vec<SocketAddr>)> {
    let listeners = bind(&settings.host, settings.port).map_err(|e| {
        let (host, port) = (&settings.host, settings.port);
        io::Error::new(
            e.kind(),
            format!(
                "cannot listen on {host}:{port}: {e}; choose another with server.port \
                 (--port, TICKER__SERVER__PORT), or 0 for any free port"
            ),
        )
    })?;
    let addrs = listeners
        .iter()
        .map(std::net::TcpListener::local_addr)
        .collect::<io::Result<Vec<_>>>()?;
    let mut builder = Server::build()
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout_ms.get().as_secs().max(1));
    let shutdown = builder.graceful_shutdown_signal();
    let answering = Arc::new(AtomicUsize::new(0));
    for (listener, addr) in listeners.into_iter().zip(addrs.iter().copied()) {
        let settings = settings.clone();
        let state = state.clone();
        let shutdown = shutdown.clone();
        let answering = Arc::clone(&answering);
        builder = builder.listen(format!("ticker-{addr}"), listener, move || {
            let shutdown = shutdown.clone();
            let max_uri_bytes = settings.max_uri_bytes;
            let routes = || {
                map_config(
                    App::new()
                        .app_data(state.clone())
                        .wrap(from_fn(connection::policy))
                        .wrap(from_fn(move |req, next| {
                            super::uri_limit::limit_uri(max_uri_bytes, req, next)
                        }))
                        .configure(|cfg| super::configure(cfg, &state)),
                    |()| AppConfig::default(),
                )
            };
            let http = HttpService::build()
                .keep_alive(match settings.keep_alive_ms.ms() {
                    0 => KeepAlive::Disabled,
                    _ => KeepAlive::Timeout(settings.keep_alive_ms.get()),
                })
                // actix arms this deadline from a clock that ticks every 500 ms.
                .client_request_timeout(
                    settings
                        .handshake_timeout_ms
                        .get()
                        .max(Duration::from_millis(MIN_HANDSHAKE_TIMEOUT_MS)),
                )
                .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .local_addr(addr)
                .on_connect_ext(|conn: &Connection, data| {
                    data.insert(conn.guard());
                })
                .finish(routes())
                // Upgrade requests go through the same routes, then keep their connection.
                .upgrade(Some(Upgrade {
                    routes: routes(),
                    upgraded: state.upgraded.clone(),
                }));
            let acceptor = Acceptor {
                state: state.clone(),
                limits: Limits {
                    request_timeout: settings.request_timeout_ms.get(),
                    max_requests: settings.max_requests_per_connection,
                },
                send_buffer_bytes: settings.send_buffer_bytes,
                answering: Arc::clone(&answering),
            };
            apply_fn_factory(http, move |tcp: TcpStream, http| acceptor.accept(tcp, http))
        })?;
    }
    Ok((builder.run(), addrs))
}

/// Binds every address `host:port` resolves to, as `HttpServer::bind` does.
fn bind(host: &str, port: u16) -> io::Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::new();
    let mut failure = None;
    for addr in (host, port).to_socket_addrs()? {
        match listen(addr) {
            Ok(listener) => listeners.push(listener),
            Err(e) => failure = Some(e),
        }
    }
    match failure {
        Some(e) if listeners.is_empty() => Err(e),
        _ if listeners.is_empty() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{host}` resolves to no address"),
        )),
        _ => Ok(listeners),
    }
}

fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// What each worker needs to admit, tune and guard its connections.
#[derive(Clone)]
struct Acceptor {
    state: web::Data<AppState>,
    limits: Limits,
    send_buffer_bytes: u32,
    /// Refusals being answered now, over all workers.
    answering: Arc<AtomicUsize>,
}

impl Acceptor {
    fn accept<S>(&self, tcp: TcpStream, http: &S) -> LocalBoxFuture<'static, Result<(), S::Error>>
    where
        S: Service<(Connection, Protocol, Option<SocketAddr>), Response = ()>,
        S::Future: 'static,
    {
        let peer = tcp.peer_addr().ok();
        let state = self.state.clone();
        // Without a peer address (the connection is already gone) it shares one budget.
        let peer_ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip());
        let counted = (!state.proxies.trusts(peer_ip)).then_some(peer_ip);
        let permit = match state.admission.admit_connection(counted) {
            Ok(permit) => permit,
            Err(refusal) => {
                let answering = Arc::clone(&self.answering);
                return Box::pin(async move {
                    refuse(tcp, &refusal, &answering, &state).await;
                    Ok(())
                });
            }
        };
        tune_socket(&tcp, self.send_buffer_bytes);
        let lease = Lease::new(permit, &state.metrics().tcp_connections_open);
        let conn = Connection::new(tcp, self.limits, lease);
        let guard = conn.guard();
        let served = http.call((conn, Protocol::Http1, peer));
        Box::pin(async move {
            let overdue = guard.overdue();
            let mut served = std::pin::pin!(served);
            let mut overdue = std::pin::pin!(overdue);
            // Not `select!`, which would poll the guard on every wake-up of the connection:
            // once it is a session, a tick's.
            let timed_out = std::future::poll_fn(|cx| {
                if served.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(false);
                }
                if guard.is_session() {
                    return Poll::Pending;
                }
                overdue.as_mut().poll(cx).map(|()| true)
            })
            .await;
            if timed_out {
                state.metrics().http_closed(Close::RequestTimeout.reason());
            }
            Ok(())
        })
    }
}

/// Answers a refused connection and closes it, or closes it at once when too many are being
/// answered already.
async fn refuse(mut tcp: TcpStream, refusal: &Refusal, answering: &AtomicUsize, state: &AppState) {
    let error = ApiError::Refused(refusal.clone());
    state.metrics().connection_refused(error.code());
    if answering.fetch_add(1, Ordering::AcqRel) >= MAX_ANSWERING {
        answering.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let answer = error.to_http1_bytes();
    let _ = tokio::time::timeout(ANSWER_TIME, async {
        // Answer once the request starts to arrive: a client that has not sent it yet may take
        // an answer before its request for garbage.
        tcp.readable().await?;
        tcp.write_all(&answer).await?;
        tcp.shutdown().await?;
        // Read until the client closes: closing with its request unread would reset the
        // connection, and a reset can destroy the answer before the client reads it.
        let mut sink = [0u8; 1024];
        while tcp.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
    answering.fetch_sub(1, Ordering::AcqRel);
}

/// Sets up each accepted socket. Quotes are small frames that must leave at once: Nagle's
/// algorithm would hold them back waiting for the previous segment's ACK (tens of milliseconds
/// with delayed ACKs). A bounded send buffer makes a client that stops reading show up as
/// backpressure (and conflation) within seconds instead of after megabytes of kernel memory.
fn tune_socket(tcp: &TcpStream, send_buffer_bytes: u32) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot disable Nagle's algorithm");
    }
    if send_buffer_bytes > 0
        && let Err(e) = socket2::SockRef::from(tcp).set_send_buffer_size(send_buffer_bytes as usize)
    {
        tracing::debug!(error = %e, "cannot set the send buffer size");
    }
}
