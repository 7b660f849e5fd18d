//! The session actor: one task per WebSocket connection that sends the client the quotes it
//! subscribed to, answers its requests and pings, pings it on a heartbeat, and closes it with the
//! right RFC 6455 code.
//!
//! `run` is one loop over `tokio::select!` (client frame, feed tick, heartbeat deadline, feed
//! status, shutdown) that ends with a reason; then the close handshake and one log line.
//! [`inbound`] turns client frames into messages, [`subscription`] decides what to send (and
//! conflates for slow clients), [`heartbeat`] keeps time, [`frame_guard`] refuses oversized
//! frames from their header.
//!
//! Imports `feed`, `access` (token buckets), `metrics`, `protocol` and `settings`.

pub(crate) mod frame_guard;
pub(crate) mod heartbeat;
pub(crate) mod inbound;
pub(crate) mod subscription;

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_ws::{CloseCode, CloseReason, Message, MessageStream};
use bytestring::ByteString;
use futures_util::Sink;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use crate::access::rate::{Decision, MessageRate, Rate};
use crate::clock::now_ms;
use crate::feed::{FeedHandle, FeedStatus, Snapshot, Tick, Watcher};
use crate::metrics::{Metrics, SessionCounts};
use crate::protocol::{ClientMessage, ErrorCode, Liveness, PROTOCOL_VERSION, ServerMessage};
use crate::session::heartbeat::{Beat, Heartbeat, overslept, stall_tolerance};
use crate::session::inbound::{Inbound, Reassembly, reason};
use crate::session::subscription::{Batch, Subscription};
use crate::settings::WsSettings;

/// Close code for a client silent past the idle timeout (private-use range, like HTTP 408).
pub const CLOSE_IDLE: u16 = 4408;
/// With the `fault-injection` feature (tests only), this request makes its session panic.
#[cfg(feature = "fault-injection")]
pub const FAULT_PANIC: &str = "fault-injection: panic";
/// The Close reason for a client that keeps sending past its message rate (1008).
const RATE_LIMIT_REASON: &str = "rate limit";
/// How long the final Close frame may take to be queued before the connection is just dropped.
const CLOSE_SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// What every session shares.
#[derive(Clone)]
pub struct SessionContext {
    pub feed: FeedHandle,
    /// This server's name, told to clients in `welcome`.
    pub node: Arc<str>,
    pub ws: Arc<WsSettings>,
    pub shutdown: CancellationToken,
    pub metrics: Arc<Metrics>,
}

/// Who this session is talking to and what it asked for when it connected.
pub struct SessionParams {
    pub id: String,
    pub peer: String,
    /// From `?symbols=` on the upgrade request.
    pub initial_symbols: Vec<String>,
}

/// How the loop ended, and so what the close handshake looks like.
#[derive(Debug)]
enum End {
    /// The server closes with this reason.
    Close(CloseReason),
    /// The client closed; answer with the same code.
    Echo(Option<CloseReason>),
    /// The client stopped reading for longer than `ws.slow_client_timeout_ms`.
    Slow,
    /// The client kept sending past its message rate (`ws.max_excess_messages`).
    RateLimited,
    /// The connection is gone; nothing more can be sent.
    Gone,
}

struct Session {
    ctx: SessionContext,
    id: String,
    out: actix_ws::Session,
    subscription: Subscription,
    counts: SessionCounts,
    /// What of `counts` has been added to the shared metrics.
    reported: SessionCounts,
    /// `ws.max_client_messages_per_sec` for this client.
    message_rate: MessageRate,
}

/// Runs one WebSocket session to its end. Errors stay inside: they end this session only.
pub async fn run(
    ctx: SessionContext,
    params: SessionParams,
    out: actix_ws::Session,
    frames: MessageStream,
) {
    let started = Instant::now();
    let n = ctx.feed.universe().len();
    let message_rate = MessageRate::new(
        Rate::new(
            ctx.ws.max_client_messages_per_sec,
            ctx.ws.client_message_burst,
        ),
        ctx.ws.max_excess_messages,
        started,
    );
    let mut session = Session {
        ctx,
        id: params.id,
        out,
        subscription: Subscription::new(n),
        counts: SessionCounts::default(),
        reported: SessionCounts::default(),
        message_rate,
    };
    let metrics = Arc::clone(&session.ctx.metrics);
    let open = metrics.session_opened();
    tracing::info!(session = %session.id, peer = %params.peer, "session opened");
    let end = match session.serve(frames, params.initial_symbols).await {
        Ok(never) => match never {},
        Err(end) => end,
    };
    let code = session.finish(&end).await;
    // What still waited for a slow client is lost with it; count it with the conflated.
    session.counts.conflated += session.subscription.undelivered(&session.ctx.feed.latest());
    match end {
        End::Slow => metrics.slow_client_closes.inc(),
        End::Close(ref r) if r.code == CloseCode::Other(CLOSE_IDLE) => metrics.idle_closes.inc(),
        End::RateLimited => metrics.rate_limit_closes.inc(),
        _ => 0,
    };
    metrics.record(&session.counts, &mut session.reported);
    open.closed(end.close_code());
    let c = &session.counts;
    tracing::info!(
        session = %session.id,
        peer = %params.peer,
        code,
        end = ?end,
        duration_ms = started.elapsed().as_millis() as u64,
        frames_out = c.frames_out,
        quotes_out = c.quotes_out,
        messages_in = c.messages_in,
        conflated = c.conflated,
        resyncs = c.resyncs,
        "session closed"
    );
}

impl Session {
    async fn serve(
        &mut self,
        mut frames: MessageStream,
        initial: Vec<String>,
    ) -> Result<Infallible, End> {
        let shutdown = self.ctx.shutdown.clone();
        let Watcher {
            snapshot,
            mut ticks,
            mut status,
        } = self.ctx.feed.watch().await.map_err(|_| away())?;
        self.send_welcome().await?;
        let initial_status = *status.borrow_and_update();
        if initial_status != FeedStatus::Live {
            self.send_status(initial_status).await?;
        }
        if !initial.is_empty() {
            self.subscribe(&initial, &snapshot).await?;
        }
        drop(snapshot);

        let ws = Arc::clone(&self.ctx.ws);
        let mut reassembly = Reassembly::new(ws.max_message_bytes);
        let mut heartbeat = Heartbeat::new(
            Instant::now(),
            ws.heartbeat_interval_ms.get(),
            ws.idle_timeout_ms.get(),
        );
        let beat = sleep_until(heartbeat.deadline());
        // Armed while quotes wait for a connection that has no room (see `Subscription`).
        let stall = sleep_until(Instant::now());
        let mut stalled = false;
        let cancelled = shutdown.cancelled();
        tokio::pin!(beat, stall, cancelled);
        loop {
            if self.subscription.has_pending() != stalled {
                stalled = !stalled;
                stall
                    .as_mut()
                    .reset(Instant::now() + ws.slow_client_timeout_ms.get());
            }
            // Biased, ticks first: a tick wakes every session, and polling only the branch that
            // is ready keeps that wake cheap. Nothing starves: the ring holds a bounded number of
            // ticks, after which `recv` is pending until the next one.
            tokio::select! {
                biased;
                tick = ticks.recv() => match tick {
                    Ok(tick) => self.on_tick(&tick)?,
                    Err(RecvError::Lagged(missed)) => {
                        self.counts.resyncs += 1;
                        tracing::debug!(session = %self.id, missed, "fell behind the feed");
                        self.subscription.defer_all();
                    }
                    Err(RecvError::Closed) => return Err(away()),
                },
                room = poll_fn(|cx| Pin::new(&mut self.out).poll_ready(cx)),
                    if stalled => {
                    room.map_err(|_| End::Gone)?;
                    self.flush_pending()?;
                }
                item = frames.recv() => {
                    let item = item.ok_or(End::Gone)?;
                    heartbeat.seen(Instant::now());
                    if let Some(inbound) = reassembly.accept(item) {
                        self.on_inbound(inbound).await?;
                    }
                }
                () = &mut beat => {
                    self.ctx.metrics.record(&self.counts, &mut self.reported);
                    match heartbeat.on_deadline(Instant::now()) {
                        Beat::Ping => self.try_ping()?,
                        Beat::Stalled => {
                            self.on_server_stall("heartbeat");
                            self.try_ping()?;
                        }
                        Beat::Expired => {
                            return Err(End::Close(reason(CloseCode::Other(CLOSE_IDLE), "idle timeout")));
                        }
                        Beat::Wait => {}
                    }
                    beat.as_mut().reset(heartbeat.deadline());
                }
                changed = status.changed() => {
                    changed.map_err(|_| away())?;
                    let now = *status.borrow_and_update();
                    self.send_status(now).await?;
                }
                () = &mut stall, if stalled => {
                    let now = Instant::now();
                    if !overslept(stall.deadline(), now, heartbeat.stall_tolerance()) {
                        return Err(End::Slow);
                    }
                    // The client may have read everything meanwhile: judge it from now on.
                    self.on_server_stall("slow client timer");
                    stall.as_mut().reset(now + ws.slow_client_timeout_ms.get());
                }
                () = &mut cancelled => return Err(away()),
            }
        }
    }

    /// A timer that judges the client fired so late that the server itself must have stalled;
    /// the caller restarts the client's clock instead of closing it.
    fn on_server_stall(&self, timer: &'static str) {
        self.ctx.metrics.session_stalls.inc();
        tracing::debug!(session = %self.id, timer, "woke late: the server stalled");
    }

    async fn on_inbound(&mut self, inbound: Inbound) -> Result<(), End> {
        match inbound {
            Inbound::Text(text) => {
                self.counts.messages_in += 1;
                self.counts.bytes_in += text.len() as u64;
                match self.message_rate.check(Instant::now()) {
                    Decision::Allow => self.on_request(&text).await,
                    Decision::Refuse => self.refuse_rate_limited().await,
                    Decision::Close => Err(End::RateLimited),
                }
            }
            Inbound::Ping(payload) => self.deliver(Outgoing::Pong(payload)).await,
            Inbound::Pong => Ok(()),
            Inbound::Close(reason) => Err(End::Echo(reason)),
            Inbound::Violation(reason) => Err(End::Close(reason)),
            Inbound::Lost => Err(End::Gone),
        }
    }

    async fn on_request(&mut self, text: &str) -> Result<(), End> {
        #[cfg(feature = "fault-injection")]
        if text == FAULT_PANIC {
            panic!("fault injection: session {} panics on request", self.id);
        }
        match ClientMessage::parse(text) {
            Err(message) => {
                self.send(&ServerMessage::error(ErrorCode::BadRequest, message))
                    .await
            }
            Ok(ClientMessage::Subscribe { symbols }) => {
                let latest = self.ctx.feed.latest();
                self.subscribe(&symbols, &latest).await
            }
            Ok(ClientMessage::Unsubscribe { symbols }) => self.unsubscribe(&symbols).await,
            Ok(ClientMessage::Ping { id }) => self.send(&ServerMessage::Pong { id }).await,
        }
    }

    async fn refuse_rate_limited(&mut self) -> Result<(), End> {
        self.ctx.metrics.messages_rate_limited.inc();
        let ws = &self.ctx.ws;
        let message = format!(
            "more than {} messages per second (burst {}); this one was dropped",
            ws.max_client_messages_per_sec, ws.client_message_burst
        );
        self.send(&ServerMessage::error(ErrorCode::RateLimited, message))
            .await
    }

    /// Refuses a request naming more than `ws.max_symbols_per_request` symbols; true if it did.
    async fn too_many_symbols(&mut self, names: &[String]) -> Result<bool, End> {
        let max = self.ctx.ws.max_symbols_per_request;
        if names.len() <= max {
            return Ok(false);
        }
        let message = format!(
            "{} symbols in one request; at most {max} are allowed, nothing was changed",
            names.len()
        );
        self.send(&ServerMessage::error(ErrorCode::TooManySymbols, message))
            .await?;
        Ok(true)
    }

    /// Adds symbols: `error` for unknown names, then `subscribed`, then a snapshot of the new ones.
    async fn subscribe(&mut self, names: &[String], snapshot: &Snapshot) -> Result<(), End> {
        if self.too_many_symbols(names).await? {
            return Ok(());
        }
        let resolved = self.ctx.feed.universe().resolve(names);
        self.report_unknown(resolved.unknown).await?;
        let new = resolved
            .ids
            .iter()
            .filter(|&&id| !self.subscription.contains(id))
            .count();
        let max = self.ctx.ws.max_subscriptions;
        if self.subscription.len() + new > max {
            let message = format!(
                "subscribing to {new} more symbols would exceed the limit of {max}; nothing was changed"
            );
            return self
                .send(&ServerMessage::error(
                    ErrorCode::TooManySubscriptions,
                    message,
                ))
                .await;
        }
        let snapshot_frame = self.subscription.add(&resolved.ids, snapshot);
        self.send_subscribed().await?;
        match snapshot_frame {
            Some(out) => {
                self.counts.quotes_out += out.quotes as u64;
                self.deliver(Outgoing::Text(out.frame)).await
            }
            None => Ok(()),
        }
    }

    async fn unsubscribe(&mut self, names: &[String]) -> Result<(), End> {
        if self.too_many_symbols(names).await? {
            return Ok(());
        }
        let resolved = self.ctx.feed.universe().resolve(names);
        self.report_unknown(resolved.unknown).await?;
        self.subscription.remove(&resolved.ids);
        self.send_subscribed().await
    }

    async fn report_unknown(&mut self, unknown: Vec<String>) -> Result<(), End> {
        if unknown.is_empty() {
            return Ok(());
        }
        let message = format!("unknown symbol: {}", unknown.join(", "));
        self.send(&ServerMessage::Error {
            code: ErrorCode::UnknownSymbol,
            message,
            symbols: unknown,
        })
        .await
    }

    /// Sends this client its part of a tick if the connection has room; otherwise (or while
    /// earlier quotes still wait) only marks the tick's symbols pending. Never waits.
    fn on_tick(&mut self, tick: &Tick) -> Result<(), End> {
        if self.subscription.wanted(tick) == 0 {
            return Ok(());
        }
        if !self.subscription.has_pending() && self.has_room()? {
            if let Some(out) = self.subscription.take_tick(tick) {
                self.start_send(out)?;
                let age_ms = now_ms().saturating_sub(tick.ts);
                self.counts.tick_to_send.observe_ms(age_ms);
            }
        } else {
            self.subscription.defer_tick(tick);
        }
        Ok(())
    }

    /// The connection has room again: send the latest state of everything pending.
    fn flush_pending(&mut self) -> Result<(), End> {
        let latest = self.ctx.feed.latest();
        if let Some(out) = self.subscription.take_pending(&latest) {
            self.counts.conflated += out.skipped;
            self.start_send(out)?;
        }
        Ok(())
    }

    /// Whether the connection's outgoing queue takes a frame now; reserves the slot if so.
    fn has_room(&mut self) -> Result<bool, End> {
        let waker = std::task::Waker::noop();
        match Pin::new(&mut self.out).poll_ready(&mut Context::from_waker(waker)) {
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Ready(Err(_)) => Err(End::Gone),
            Poll::Pending => Ok(false),
        }
    }

    /// Pings if the queue has room. A full queue means the client is behind on reading, and
    /// liveness is judged by what arrives from it, so a skipped ping costs nothing.
    fn try_ping(&mut self) -> Result<(), End> {
        if self.has_room()? {
            Pin::new(&mut self.out)
                .start_send(Message::Ping(actix_web::web::Bytes::new()))
                .map_err(|_| End::Gone)?;
        }
        Ok(())
    }

    /// Queues a quotes frame into a slot reserved by `has_room` or a ready `poll_ready`.
    fn start_send(&mut self, out: Batch) -> Result<(), End> {
        self.counts.bytes_out += out.frame.len() as u64;
        Pin::new(&mut self.out)
            .start_send(Message::Text(out.frame))
            .map_err(|_| End::Gone)?;
        self.counts.frames_out += 1;
        self.counts.quotes_out += out.quotes as u64;
        Ok(())
    }

    async fn send_welcome(&mut self) -> Result<(), End> {
        let welcome = ServerMessage::Welcome {
            version: PROTOCOL_VERSION,
            session_id: self.id.clone(),
            symbols: self.ctx.feed.universe().names(),
            heartbeat_interval_ms: self.ctx.ws.heartbeat_interval_ms.ms(),
            idle_timeout_ms: self.ctx.ws.idle_timeout_ms.ms(),
            node: self.ctx.node.to_string(),
        };
        self.send(&welcome).await
    }

    async fn send_status(&mut self, status: FeedStatus) -> Result<(), End> {
        let message = match status {
            FeedStatus::Live => ServerMessage::Status {
                feed: Liveness::Live,
                since: None,
            },
            FeedStatus::Stale { since } => ServerMessage::Status {
                feed: Liveness::Stale,
                since: Some(since),
            },
        };
        self.send(&message).await
    }

    async fn send_subscribed(&mut self) -> Result<(), End> {
        let universe = Arc::clone(self.ctx.feed.universe());
        let symbols = self
            .subscription
            .symbols()
            .map(|id| universe.name(id).to_owned())
            .collect();
        self.send(&ServerMessage::Subscribed { symbols }).await
    }

    async fn send(&mut self, message: &ServerMessage) -> Result<(), End> {
        self.deliver(Outgoing::Text(message.to_frame())).await
    }

    /// Queues one frame for the client. The common case, room in the connection's queue, is
    /// one poll and no timer; a client that stops reading is dropped after
    /// `ws.slow_client_timeout_ms`, and shutdown interrupts the wait.
    async fn deliver(&mut self, outgoing: Outgoing) -> Result<(), End> {
        let text_len = match &outgoing {
            Outgoing::Text(text) => Some(text.len() as u64),
            Outgoing::Pong(_) => None,
        };
        let out = &mut self.out;
        let send = async move {
            match outgoing {
                Outgoing::Text(text) => out.text(text).await,
                Outgoing::Pong(payload) => out.pong(&payload).await,
            }
        };
        tokio::pin!(send);
        let first_try = std::future::poll_fn(|cx| Poll::Ready(send.as_mut().poll(cx))).await;
        let sent = match first_try {
            Poll::Ready(sent) => sent.map_err(|_| End::Gone),
            Poll::Pending => {
                let ws = &self.ctx.ws;
                let tolerance =
                    stall_tolerance(ws.heartbeat_interval_ms.get(), ws.idle_timeout_ms.get());
                let mut due = Instant::now() + ws.slow_client_timeout_ms.get();
                loop {
                    tokio::select! {
                        sent = &mut send => break sent.map_err(|_| End::Gone),
                        () = sleep_until(due) => {
                            let now = Instant::now();
                            if !overslept(due, now, tolerance) {
                                break Err(End::Slow);
                            }
                            self.ctx.metrics.session_stalls.inc();
                            due = now + ws.slow_client_timeout_ms.get();
                        }
                        () = self.ctx.shutdown.cancelled() => break Err(away()),
                    }
                }
            }
        };
        if let (Ok(()), Some(len)) = (&sent, text_len) {
            self.counts.frames_out += 1;
            self.counts.bytes_out += len;
        }
        sent
    }

    /// Completes the close handshake for `end`; returns the close code sent, if any.
    async fn finish(&mut self, end: &End) -> Option<u16> {
        let reason = match end {
            End::Close(reason) => Some(reason.clone()),
            End::Echo(reason) => reason.as_ref().map(|r| CloseReason {
                code: r.code,
                description: None,
            }),
            End::Slow => Some(reason(CloseCode::Policy, "client too slow")),
            End::RateLimited => Some(reason(CloseCode::Policy, RATE_LIMIT_REASON)),
            End::Gone => return None,
        };
        let code = reason.as_ref().map(|r| u16::from(r.code));
        let out = self.out.clone();
        match timeout(CLOSE_SEND_TIMEOUT, out.close(reason)).await {
            Ok(Ok(())) => code,
            _ => None,
        }
    }
}

enum Outgoing {
    Text(ByteString),
    Pong(actix_web::web::Bytes),
}

impl End {
    /// The code the server closes with, whether or not the peer takes the Close frame.
    fn close_code(&self) -> Option<u16> {
        match self {
            End::Close(reason) => Some(reason.code.into()),
            End::Echo(reason) => Some(reason.as_ref().map_or(1005, |r| r.code.into())),
            End::Slow | End::RateLimited => Some(CloseCode::Policy.into()),
            End::Gone => None,
        }
    }
}

fn away() -> End {
    End::Close(reason(CloseCode::Away, "server shutting down"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The idle close has a series of its own in `ticker_connections_closed_total`.
    #[test]
    fn idle_close_has_its_own_metrics_label() {
        assert_eq!(crate::metrics::close_label(Some(CLOSE_IDLE)), "4408");
    }
}
