//! One accepted TCP connection while it is plain HTTP: the [`Connection`] that actix-http reads
//! and writes through, the [`Guard`] that bounds its life until it becomes a WebSocket session,
//! and [`policy`], the middleware that applies the guard to each request.
//!
//! actix-http bounds the request head (`server.handshake_timeout_ms`) and the idle time between
//! requests (`server.keep_alive_ms`), and nothing in between: a request body that never ends is
//! drained for ever after its answer, and an answer the client never reads waits for ever for
//! room in the socket. So:
//! - The service takes no request bodies. A request that announces one (`Content-Length` above
//!   0, `Transfer-Encoding`) is answered with `Connection: close`, and from then on the
//!   connection reads as ended (`Guard::stop_reading`): actix finishes the answer and closes,
//!   without reading the body.
//! - Each request arms a deadline `server.request_timeout_ms` after its head. If it passes while
//!   a write to the client is blocked (the client does not read its answer), the connection is
//!   dropped ([`Guard::overdue`]); otherwise it is idle, and actix's keep-alive takes over.
//! - The answer to request number `server.max_requests_per_connection` says `Connection: close`,
//!   so no plain HTTP connection lives for ever, however busy.
//!
//! A connection that becomes a session ([`Guard::became_session`]) leaves all this to the
//! session, which has its own heartbeat, idle and slow-client timeouts.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::rt::net::TcpStream;
use actix_web::web;
use prometheus_client::metrics::gauge::Gauge;
use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

use crate::access::admission::Permit;
use crate::http::state::AppState;
use crate::session::wire::Socket;

/// The limits a [`Guard`] applies, from `ServerSettings`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_timeout: Duration,
    /// 0 = no limit.
    pub max_requests: u32,
}

/// An accepted TCP stream, with the guard that watches it and what it holds while open.
pub struct Connection {
    tcp: TcpStream,
    guard: Rc<Guard>,
    _lease: Lease,
}

/// What a connection holds until it closes, whichever task serves it by then (an upgraded one
/// gets a task of its own, `http::upgrade`): its place in the connection limits and in
/// `ticker_tcp_connections_open`.
pub struct Lease {
    _permit: Permit,
    _open: Open,
}

impl Lease {
    pub fn new(permit: Permit, open: &Gauge) -> Self {
        open.inc();
        Self {
            _permit: permit,
            _open: Open(open.clone()),
        }
    }
}

/// Counts a connection in `ticker_tcp_connections_open` while it lives.
struct Open(Gauge);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Connection {
    pub fn new(tcp: TcpStream, limits: Limits, lease: Lease) -> Self {
        Self {
            tcp,
            guard: Rc::new(Guard::new(limits)),
            _lease: lease,
        }
    }

    pub fn guard(&self) -> Rc<Guard> {
        Rc::clone(&self.guard)
    }

    /// Whether the socket has something to read (or an error), without reading it.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp.poll_read_ready(cx)
    }
}

/// A session's frames go to the socket through `send_now` first (`session::wire`).
impl Socket for Connection {
    fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
        SockRef::from(&self.tcp).send(buf)
    }
}

/// What bounds a connection's life while it is plain HTTP. Shared (one worker thread) by the
/// connection, the task that serves it and, through actix's connection data, its requests.
pub struct Guard {
    limits: Limits,
    requests: Cell<u32>,
    /// When the latest request's answer must be out; None while idle or a session.
    deadline: Cell<Option<Instant>>,
    /// Wakes [`Guard::overdue`] when a deadline is armed.
    armed: Notify,
    session: Cell<bool>,
    reading: Cell<bool>,
    /// The last write found the socket full.
    write_blocked: Cell<bool>,
    /// The task waiting to read, woken when reading stops.
    reader: Cell<Option<Waker>>,
}

/// Why the server closes a plain HTTP connection early; the `reason` label in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// A request announced a body.
    RequestBody,
    /// An answer stayed unread past `server.request_timeout_ms`.
    RequestTimeout,
    /// The connection made `server.max_requests_per_connection` requests.
    MaxRequests,
}

impl Close {
    pub fn reason(self) -> &'static str {
        match self {
            Self::RequestBody => "request_body",
            Self::RequestTimeout => "request_timeout",
            Self::MaxRequests => "max_requests",
        }
    }
}

impl Guard {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            requests: Cell::new(0),
            deadline: Cell::new(None),
            armed: Notify::new(),
            session: Cell::new(false),
            reading: Cell::new(true),
            write_blocked: Cell::new(false),
            reader: Cell::new(None),
        }
    }

    /// A request's head has arrived: arms its deadline. True when it is the last one the
    /// connection may make.
    fn request_started(&self) -> bool {
        let n = self.requests.get().saturating_add(1);
        self.requests.set(n);
        self.deadline
            .set(Some(Instant::now() + self.limits.request_timeout));
        self.armed.notify_one();
        self.limits.max_requests > 0 && n >= self.limits.max_requests
    }

    /// The connection is a WebSocket session now; the session bounds its life.
    pub fn became_session(&self) {
        self.session.set(true);
        self.deadline.set(None);
        self.reader.take();
        self.armed.notify_one();
    }

    pub fn is_session(&self) -> bool {
        self.session.get()
    }

    /// From now on the connection reads as ended: actix answers what it has and closes.
    fn stop_reading(&self) {
        self.reading.set(false);
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }

    /// Resolves when a request's deadline passes while the client leaves its answer unread;
    /// never for a session.
    pub async fn overdue(&self) {
        loop {
            if self.session.get() {
                return std::future::pending().await;
            }
            let Some(at) = self.deadline.get() else {
                self.armed.notified().await;
                continue;
            };
            tokio::select! {
                () = sleep_until(at) => {}
                () = self.armed.notified() => continue,
            }
            if self.deadline.get() != Some(at) || self.session.get() {
                continue;
            }
            if self.write_blocked.get() {
                return;
            }
            // The answer is out: the connection is idle, which keep-alive bounds.
            self.deadline.set(None);
        }
    }

    fn park_reader(&self, waker: &Waker) {
        let parked = match self.reader.take() {
            Some(parked) if parked.will_wake(waker) => parked,
            _ => waker.clone(),
        };
        self.reader.set(Some(parked));
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.guard.reading.get() {
            return Poll::Ready(Ok(()));
        }
        let poll = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if poll.is_pending() && !this.guard.session.get() {
            this.guard.park_reader(cx.waker());
        }
        poll
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tcp).poll_write(cx, buf);
        this.guard.write_blocked.set(poll.is_pending());
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        this.guard.write_blocked.set(poll.is_pending());
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Whether a request announces a body: `Transfer-Encoding`, or a `Content-Length` above 0
/// (actix refuses one that is not a number before any route sees it).
pub fn announces_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get_all(header::CONTENT_LENGTH)
            .any(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) != Some(0))
}

/// Middleware around every route: applies the connection's guard to the request (deadline,
/// request count, no body) and says `Connection: close` when the connection will close.
pub async fn policy(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(guard) = req.conn_data::<Rc<Guard>>().cloned() else {
        return next.call(req).await;
    };
    let last = guard.request_started();
    let body = announces_body(req.headers());
    if body {
        guard.stop_reading();
    }
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let mut res = next.call(req).await?;
    let close = match (body, last) {
        _ if guard.is_session() => None,
        (true, _) => Some(Close::RequestBody),
        (false, true) => Some(Close::MaxRequests),
        (false, false) => None,
    };
    if let Some(close) = close {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        if let Some(state) = state {
            state.metrics().http_closed(close.reason());
        }
    }
    Ok(res)
}
