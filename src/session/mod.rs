//! The session actor: one per WebSocket connection; it answers the client's requests and pings,
//! pings it on a heartbeat, drops it when it stops reading, and closes it with the right RFC 6455
//! code. The quotes themselves never pass through it: the response [`body`] takes the ticks
//! its thread's listener hands it ([`interest`]: only those that move one of its symbols) on
//! the connection's own task (`http::upgraded`), so a tick wakes one task per interested
//! connection.
//!
//! `run` is one loop over `tokio::select!` (client frame, heartbeat deadline, stall check, feed
//! status, shutdown, drain) that ends with a reason; then the Close frame and one log line.
//! Shutdown does not close at once: the session says when it will close ([`drain`]) and
//! closes then.
//! [`frames`] parses the client's frames, [`inbound`] turns them into messages, [`outbound`]
//! encodes the server's frames, [`body`] sends them, [`subscription`] decides what to send (and conflates for slow clients),
//! [`heartbeat`] keeps time, [`drain`] picks the close of a shutdown, [`frame_guard`] refuses
//! oversized frames from their header; [`resume`] replays what a reconnecting client missed;
//! [`extension`] negotiates permessage-deflate, [`deflate`] compresses and inflates;
//! [`tokens`] closes the session when its token expires and takes fresh ones.
//!
//! Imports `feed`, `access` (token buckets, tokens, entitlements), `metrics`, `protocol` and
//! `settings`.

pub(crate) mod body;
pub(crate) mod deflate;
pub mod drain;
pub mod extension;
pub(crate) mod frame_guard;
pub(crate) mod frames;
pub(crate) mod heartbeat;
pub(crate) mod inbound;
pub(crate) mod interest;
pub(crate) mod outbound;
pub(crate) mod prefetch;
pub(crate) mod resume;
pub(crate) mod subscription;
mod tokens;
pub(crate) mod wire;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix_ws::{CloseCode, CloseReason};
use bytes::Bytes;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::access::auth::Auth;
use crate::access::entitlements::Entitlements;
use crate::access::rate::{Decision, MessageRate, Rate};
use crate::feed::{FeedHandle, FeedStatus, Snapshot};
use crate::metrics::{Metrics, SessionCounts};
use crate::protocol::history::Interval;
use crate::protocol::{
    ClientMessage, ErrorCode, Liveness, PROTOCOL_VERSION, Request, ServerMessage,
    WELCOME_SYMBOLS_MAX, close, parse_since,
};
use crate::session::body::{Gone, Outlet};
use crate::session::deflate::Inflater;
use crate::session::drain::Drain;
use crate::session::extension::Deflate;
use crate::session::frame_guard::Marks;
use crate::session::frames::Frames;
use crate::session::heartbeat::{Beat, Heartbeat, overslept, stall_tolerance};
use crate::session::inbound::{Inbound, Reassembly, reason};
use crate::session::outbound::{Encoder, OpCode};
use crate::session::subscription::Subscription;
use crate::settings::WsSettings;

/// Close code for a client silent past the idle timeout (private-use range, like HTTP 408).
pub const CLOSE_IDLE: u16 = crate::protocol::close::IDLE;
/// With the `fault-injection` feature (tests only), this request makes its session panic.
#[cfg(feature = "fault-injection")]
pub const FAULT_PANIC: &str = "fault-injection: panic";
/// The Close reason for a client that keeps sending past its message rate (1008).
const RATE_LIMIT_REASON: &str = "rate limit";
/// The most frames one client request is answered with (`error` for unknown symbols, `error`
/// for forbidden ones, `error` for a resume's bad `since` entries, `subscribed`, `snapshot`; or
/// for `auth`: `error`, `subscribed`, `authenticated`): room for them is made before the
/// request is processed. A resume adds its replayed frames on top, at most
/// `history.max_resume_quotes / REPLAY_FRAME_QUOTES`.
const FRAMES_PER_REQUEST: usize = 5;

/// What every session shares.
#[derive(Clone)]
pub struct SessionContext {
    pub feed: FeedHandle,
    /// This server's name, told to clients in `welcome`.
    pub node: Arc<str>,
    pub ws: Arc<WsSettings>,
    pub shutdown: CancellationToken,
    /// When, after `shutdown`, each session closes.
    pub drain: Drain,
    pub metrics: Arc<Metrics>,
    /// Checks the tokens sessions are opened with and those they send with `auth`.
    pub auth: Auth,
    /// The delayed tiers (`auth.delayed_tiers_ms`): feeds that replay `feed` later.
    pub delayed: Arc<[FeedHandle]>,
}

impl SessionContext {
    /// The feed of the tier `delay_ms` names: the live one for 0. Auth refuses delays that are
    /// not served, so an unknown one (never granted) falls back to live.
    pub fn feed_for(&self, delay_ms: u64) -> &FeedHandle {
        self.delayed
            .iter()
            .find(|f| f.delay_ms() == delay_ms)
            .unwrap_or(&self.feed)
    }
}

/// Who this session is talking to and what it asked for when it connected.
pub struct SessionParams {
    pub id: String,
    pub peer: String,
    /// From `?symbols=` on the upgrade request.
    pub initial_symbols: Vec<String>,
    /// permessage-deflate, if agreed, and the frame guard's marks of compressed messages.
    pub deflate: Option<(Deflate, Marks)>,
    /// What the upgrade's token grants.
    pub entitlements: Entitlements,
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
    out: Outlet,
    /// What of the outlet's counts has been added to the shared metrics.
    reported: SessionCounts,
    /// `ws.max_client_messages_per_sec` for this client.
    message_rate: MessageRate,
    /// The `id` of the request being answered: every reply to it carries it.
    replying_to: Option<serde_json::Value>,
    /// What the session's token grants; replaced by a fresh token (`tokens`).
    entitlements: Entitlements,
}

/// The 101's body (the session's [`body::Body`]) and the future that runs the session to its
/// end.
pub fn start(
    ctx: SessionContext,
    params: SessionParams,
    frames: Frames,
) -> (body::Body, impl Future<Output = ()>) {
    // A delayed tier's session is served from its feed, like any other.
    let mut ctx = ctx;
    ctx.feed = ctx.feed_for(params.entitlements.delay_ms).clone();
    let out = Outlet::new(
        Subscription::new(ctx.feed.universe().len()),
        ctx.feed.clone(),
        Encoder::new(params.deflate.as_ref().map(|(agreed, _)| *agreed)),
    );
    (out.body(), run(ctx, params, out, frames))
}

/// Runs one WebSocket session to its end. Errors stay inside: they end this session only.
async fn run(ctx: SessionContext, params: SessionParams, out: Outlet, frames: Frames) {
    let started = Instant::now();
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
        reported: SessionCounts::default(),
        message_rate,
        replying_to: None,
        entitlements: params.entitlements,
    };
    let metrics = Arc::clone(&session.ctx.metrics);
    let open = metrics.session_opened(session.entitlements.tier().label());
    tracing::info!(session = %session.id, peer = %params.peer, "session opened");
    let end = match session
        .serve(frames, params.initial_symbols, params.deflate)
        .await
    {
        Ok(never) => match never {},
        Err(end) => end,
    };
    let code = session.finish(&end);
    let latest = session.ctx.feed.latest();
    let mut state = session.out.state();
    // What still waited for a slow client is lost with it; count it with the conflated. A
    // stuck client's backlog is still in its slot (`interest`), not yet marked pending.
    state.counts.conflated += match end {
        End::Slow => state.subscription.missed(&latest),
        _ => state.subscription.undelivered(&latest),
    };
    match end {
        End::Slow => metrics.slow_client_closes.inc(),
        End::Close(ref r) if r.code == CloseCode::Other(CLOSE_IDLE) => metrics.idle_closes.inc(),
        End::RateLimited => metrics.rate_limit_closes.inc(),
        End::Close(ref r) if r.code == CloseCode::Other(close::TOKEN_EXPIRED) => {
            metrics.token_expiry_closes.inc()
        }
        _ => 0,
    };
    metrics.record(&state.counts, &mut session.reported);
    open.closed(end.close_code());
    let c = &state.counts;
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
        mut frames: Frames,
        initial: Vec<String>,
        deflate: Option<(Deflate, Marks)>,
    ) -> Result<Infallible, End> {
        let shutdown = self.ctx.shutdown.clone();
        let mut status = self.ctx.feed.status_updates();
        // From here on this thread's listener hands the session the ticks it subscribes to
        // (none once the feed has stopped: the session ends at once).
        let slot = interest::slot(&self.ctx.feed).ok_or_else(away)?;
        self.out.follow(slot);
        // The queue is empty: welcome, status and the first subscription fit.
        self.send_welcome();
        let initial_status = *status.borrow_and_update();
        if initial_status != FeedStatus::Live {
            self.send_status(initial_status);
        }
        if !initial.is_empty() {
            let latest = self.ctx.feed.latest();
            self.subscribe(&initial, None, &latest);
        }

        let ws = Arc::clone(&self.ctx.ws);
        let slow_after = ws.slow_client_timeout_ms.get();
        let mut reassembly = Reassembly::new(ws.max_message_bytes);
        if let Some((agreed, marks)) = deflate {
            reassembly =
                reassembly.with_deflate(marks, Inflater::new(agreed.client_no_context_takeover));
        }
        let mut heartbeat = Heartbeat::new(
            Instant::now(),
            ws.heartbeat_interval_ms.get(),
            ws.idle_timeout_ms.get(),
        );
        let beat = sleep_until(heartbeat.deadline());
        // Looks for a stalled connection every half timeout; once one is seen, fires at its
        // exact deadline.
        let stall = sleep_until(Instant::now() + slow_after / 2);
        let cancelled = shutdown.cancelled();
        // Armed once shutdown begins: this session's moment in the drain window.
        let drained = sleep_until(Instant::now());
        let mut draining = false;
        let expiry = sleep_until(self.token_deadline());
        // After the server itself stalled, a client is not blamed for what it could not read
        // meanwhile: its stall counts from the resume at the earliest.
        let mut forgiven = Instant::now();
        tokio::pin!(beat, stall, cancelled, drained, expiry);
        loop {
            tokio::select! {
                item = frames.recv() => {
                    let item = item.ok_or(End::Gone)?;
                    heartbeat.seen(Instant::now());
                    if let Some(inbound) = reassembly.accept(item) {
                        self.on_inbound(inbound).await?;
                        // An `auth` may have moved it.
                        if expiry.deadline() != self.token_deadline() {
                            expiry.as_mut().reset(self.token_deadline());
                        }
                    }
                }
                () = &mut beat => {
                    self.ctx.metrics.record(&self.out.state().counts, &mut self.reported);
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
                () = &mut stall => {
                    let now = Instant::now();
                    if overslept(stall.deadline(), now, heartbeat.stall_tolerance()) {
                        self.on_server_stall("slow client timer");
                        forgiven = now;
                    }
                    match self.out.stalled_since().map(|since| since.max(forgiven)) {
                        Some(since) if now >= since + slow_after => return Err(End::Slow),
                        Some(since) => stall.as_mut().reset(since + slow_after),
                        None => stall.as_mut().reset(now + slow_after / 2),
                    }
                }
                changed = status.changed() => {
                    changed.map_err(|_| away())?;
                    let now = *status.borrow_and_update();
                    self.room(1).await?;
                    self.send_status(now);
                }
                () = &mut cancelled, if !draining => {
                    draining = true;
                    let after = self.ctx.drain.close_after(&mut rand::rng());
                    self.announce_drain(*status.borrow(), after)?;
                    drained.as_mut().reset(Instant::now() + after);
                }
                () = &mut drained, if draining => return Err(away()),
                () = &mut expiry => return Err(self.on_token_expired()),
            }
        }
    }

    async fn on_inbound(&mut self, inbound: Inbound) -> Result<(), End> {
        match inbound {
            Inbound::Text(text) => {
                {
                    let counts = &mut self.out.state().counts;
                    counts.messages_in += 1;
                    counts.bytes_in += text.len() as u64;
                }
                let decision = self.message_rate.check(Instant::now());
                if decision == Decision::Close {
                    return Err(End::RateLimited);
                }
                self.room(FRAMES_PER_REQUEST).await?;
                match decision {
                    Decision::Allow => self.on_request(&text),
                    _ => self.refuse_rate_limited(),
                }
                Ok(())
            }
            Inbound::Ping(payload) => {
                self.room(1).await?;
                self.out.push(outbound::control(OpCode::Pong, &payload));
                Ok(())
            }
            Inbound::Pong => Ok(()),
            Inbound::Close(reason) => Err(End::Echo(reason)),
            Inbound::Violation(reason) => Err(End::Close(reason)),
            Inbound::Lost => Err(End::Gone),
        }
    }

    /// Answers one request; room for `FRAMES_PER_REQUEST` frames was made.
    fn on_request(&mut self, text: &str) {
        #[cfg(feature = "fault-injection")]
        if text == FAULT_PANIC {
            panic!("fault injection: session {} panics on request", self.id);
        }
        let request = match Request::parse(text) {
            Ok(request) => request,
            Err(unreadable) => {
                self.replying_to = unreadable.id;
                self.send(ServerMessage::error(
                    ErrorCode::BadRequest,
                    unreadable.reason,
                ));
                self.replying_to = None;
                return;
            }
        };
        self.replying_to = request.id;
        match request.message {
            ClientMessage::Subscribe { symbols, since } => {
                let latest = self.ctx.feed.latest();
                self.subscribe(&symbols, since.as_ref(), &latest);
            }
            ClientMessage::Unsubscribe { symbols } => self.unsubscribe(&symbols),
            ClientMessage::Ping => self.send(ServerMessage::Pong {
                id: serde_json::Value::Null,
            }),
            ClientMessage::History {
                symbol,
                interval,
                limit,
            } => self.history(symbol, interval, limit),
            ClientMessage::Auth { token } => self.on_auth(&token),
        }
        self.replying_to = None;
    }

    /// Answers `history` with the newest `limit` bars (all kept when absent).
    fn history(&mut self, symbol: String, interval: Interval, limit: Option<usize>) {
        let feed = self.ctx.feed.clone();
        let Some(id) = feed.universe().lookup(&symbol) else {
            return self.report_unknown(vec![symbol]);
        };
        if !self.entitlements.symbols.allows(&symbol) {
            return self.report_forbidden(vec![symbol]);
        }
        let limit = match feed.history().limits().intervals.bars_for(interval, limit) {
            Ok(limit) => limit,
            Err(e) => {
                let message = format!("limit {}: {e}", limit.unwrap_or(0));
                return self.send(ServerMessage::error(ErrorCode::BadRequest, message));
            }
        };
        let (bars, _) = feed.bars(id, interval, limit);
        self.send(ServerMessage::History {
            id: None,
            symbol,
            interval,
            bars,
        });
    }

    fn refuse_rate_limited(&mut self) {
        self.ctx.metrics.messages_rate_limited.inc();
        let ws = &self.ctx.ws;
        let message = format!(
            "more than {} messages per second (burst {}); this one was dropped",
            ws.max_client_messages_per_sec, ws.client_message_burst
        );
        self.send(ServerMessage::error(ErrorCode::RateLimited, message));
    }

    /// Refuses a request naming more than `ws.max_symbols_per_request` symbols; true if it did.
    fn too_many_symbols(&mut self, names: &[String]) -> bool {
        let max = self.ctx.ws.max_symbols_per_request;
        if names.len() <= max {
            return false;
        }
        let message = format!(
            "{} symbols in one request; at most {max} are allowed, nothing was changed",
            names.len()
        );
        self.send(ServerMessage::error(ErrorCode::TooManySymbols, message));
        true
    }

    /// Adds symbols: `error` for unknown names, then `subscribed`, then what the client missed
    /// of the symbols it resumes (`since`), then a snapshot of the other new ones.
    fn subscribe(
        &mut self,
        names: &[String],
        since: Option<&serde_json::Value>,
        snapshot: &Snapshot,
    ) {
        if self.too_many_symbols(names) {
            return;
        }
        let since = match since.map(parse_since).transpose() {
            Ok(since) => since.unwrap_or_default(),
            Err(message) => {
                let message = format!("{message}; nothing was changed");
                return self.send(ServerMessage::error(ErrorCode::BadRequest, message));
            }
        };
        let feed = self.ctx.feed.clone();
        let universe = feed.universe();
        let resolved = self.entitlements.symbols.resolve(universe, names);
        self.report_unknown(resolved.unknown);
        self.report_forbidden(resolved.forbidden);
        let mut state = self.out.state();
        let mut new: Vec<_> = resolved
            .ids
            .iter()
            .copied()
            .filter(|&id| !state.subscription.contains(id))
            .collect();
        new.sort_unstable();
        new.dedup();
        let max = self.ctx.ws.max_subscriptions;
        if state.subscription.len() + new.len() > max {
            drop(state);
            let message = format!(
                "subscribing to {} more symbols would exceed the limit of {max}; nothing was changed",
                new.len()
            );
            return self.send(ServerMessage::error(
                ErrorCode::TooManySubscriptions,
                message,
            ));
        }
        let plan = resume::plan(
            &since,
            &resolved.ids,
            &new,
            snapshot,
            feed.history(),
            universe,
        );
        let snapshot_frame = state
            .subscription
            .add(&resolved.ids, snapshot, &plan.recovered);
        state.counts.quotes_out += plan.quotes as u64;
        if let Some(out) = &snapshot_frame {
            state.counts.quotes_out += out.quotes as u64;
        }
        drop(state);
        // In the same step as `snapshot` was taken: every later tick of these symbols comes.
        self.out.watch_symbols();
        if !plan.problems.is_empty() {
            self.send(ServerMessage::Error {
                id: None,
                code: ErrorCode::BadRequest,
                message: plan.problems.join("; "),
                symbols: plan.problem_symbols,
            });
        }
        let recovered = plan
            .recovered
            .iter()
            .map(|&id| universe.name(id).to_owned())
            .collect();
        self.send_subscribed(recovered);
        // Queued with the subscription, before the body can send any tick of these symbols.
        for frame in plan.frames {
            self.out.push_text(frame);
        }
        if let Some(out) = snapshot_frame {
            self.out.push_text(out.frame);
        }
    }

    fn unsubscribe(&mut self, names: &[String]) {
        if self.too_many_symbols(names) {
            return;
        }
        let resolved = self.ctx.feed.universe().resolve(names);
        self.report_unknown(resolved.unknown);
        self.out.state().subscription.remove(&resolved.ids);
        self.out.watch_symbols();
        self.send_subscribed(Vec::new());
    }

    fn report_unknown(&mut self, unknown: Vec<String>) {
        if unknown.is_empty() {
            return;
        }
        let message = format!("unknown symbol: {}", unknown.join(", "));
        self.send(ServerMessage::Error {
            id: None,
            code: ErrorCode::UnknownSymbol,
            message,
            symbols: unknown,
        });
    }

    /// Pings if the queue has room. A full queue means the client is behind on reading, and
    /// liveness is judged by what arrives from it, so a skipped ping costs nothing.
    fn try_ping(&mut self) -> Result<(), End> {
        if self.out.has_room(1).map_err(gone)? {
            self.out.push(outbound::control(OpCode::Ping, &[]));
        }
        Ok(())
    }

    fn send_welcome(&mut self) {
        let universe = self.ctx.feed.universe();
        let welcome = ServerMessage::Welcome {
            version: PROTOCOL_VERSION,
            session_id: self.id.clone(),
            symbols: if universe.len() <= WELCOME_SYMBOLS_MAX {
                universe.names()
            } else {
                Vec::new()
            },
            symbol_count: universe.len(),
            heartbeat_interval_ms: self.ctx.ws.heartbeat_interval_ms.ms(),
            idle_timeout_ms: self.ctx.ws.idle_timeout_ms.ms(),
            node: self.ctx.node.to_string(),
            history: Some(self.ctx.feed.history().limits().clone()),
            expires_at: self.entitlements.expires_at_ms(),
            delay_ms: Some(self.ctx.feed.delay_ms()).filter(|&d| d > 0),
            run: Some(format!("{:x}", self.ctx.feed.latest().epoch)),
        };
        self.send(welcome);
    }

    fn send_status(&mut self, status: FeedStatus) {
        let message = match status {
            FeedStatus::Live => ServerMessage::status(Liveness::Live, None),
            FeedStatus::Stale { since } => ServerMessage::status(Liveness::Stale, Some(since)),
        };
        self.send(message);
    }

    /// Tells the client that the server is leaving and closes this session `after` from now;
    /// a client too far behind to take the notice just gets the Close.
    fn announce_drain(&mut self, status: FeedStatus, after: Duration) -> Result<(), End> {
        if self.out.has_room(1).map_err(gone)? {
            let feed = match status {
                FeedStatus::Live => Liveness::Live,
                FeedStatus::Stale { .. } => Liveness::Stale,
            };
            let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
            self.send(ServerMessage::draining(feed, after_ms));
        }
        Ok(())
    }

    fn send_subscribed(&mut self, recovered: Vec<String>) {
        let universe = Arc::clone(self.ctx.feed.universe());
        let symbols = self
            .out
            .state()
            .subscription
            .symbols()
            .map(|id| universe.name(id).to_owned())
            .collect();
        self.send(ServerMessage::Subscribed {
            id: None,
            symbols,
            recovered,
        });
    }

    /// Queues a message, as a reply to the request being answered if there is one; the caller
    /// made room for it.
    fn send(&mut self, message: ServerMessage) {
        let message = message.with_id(self.replying_to.as_ref());
        self.out.push_text(message.to_frame());
    }

    /// Waits until `frames` more fit in the queue. The common case, room, is one check and no
    /// timer; a client that stops reading is dropped after `ws.slow_client_timeout_ms`, and
    /// shutdown interrupts the wait.
    async fn room(&mut self, frames: usize) -> Result<(), End> {
        if self.out.has_room(frames).map_err(gone)? {
            return Ok(());
        }
        // Boxed: the waiting (a timer among others) is rare, and inline it would make every
        // session's future larger for its whole life.
        Box::pin(self.wait_for_room(frames)).await
    }

    async fn wait_for_room(&mut self, frames: usize) -> Result<(), End> {
        let ws = Arc::clone(&self.ctx.ws);
        let tolerance = stall_tolerance(ws.heartbeat_interval_ms.get(), ws.idle_timeout_ms.get());
        let mut due = Instant::now() + ws.slow_client_timeout_ms.get();
        loop {
            tokio::select! {
                room = self.out.room(frames) => return room.map_err(gone),
                () = sleep_until(due) => {
                    let now = Instant::now();
                    if !overslept(due, now, tolerance) {
                        return Err(End::Slow);
                    }
                    self.on_server_stall("slow client wait");
                    due = now + ws.slow_client_timeout_ms.get();
                }
                () = self.ctx.shutdown.cancelled() => return Err(away()),
            }
        }
    }

    /// A timer that judges the client fired so late that the server itself must have stalled;
    /// the caller restarts the client's clock instead of closing it.
    fn on_server_stall(&self, timer: &'static str) {
        self.ctx.metrics.session_stalls.inc();
        tracing::debug!(session = %self.id, timer, "woke late: the server stalled");
    }

    /// Queues the Close frame for `end` and ends the body after it; returns the close code
    /// sent, if any.
    fn finish(&mut self, end: &End) -> Option<u16> {
        let reason = match end {
            End::Close(reason) => Some(reason.clone()),
            End::Echo(reason) => reason.as_ref().map(|r| CloseReason {
                code: r.code,
                description: None,
            }),
            End::Slow => Some(reason(CloseCode::Policy, "client too slow")),
            End::RateLimited => Some(reason(CloseCode::Policy, RATE_LIMIT_REASON)),
            End::Gone => {
                self.out.close(None);
                return None;
            }
        };
        let code = reason.as_ref().map(|r| u16::from(r.code));
        let frame: Bytes = outbound::close(
            reason
                .as_ref()
                .map(|r| (u16::from(r.code), r.description.as_deref().unwrap_or(""))),
        );
        self.out.close(Some(frame));
        code
    }
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

fn gone(_: Gone) -> End {
    End::Gone
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
