//! The 101 response's body: the connection's only writer. The connection's task
//! (`http::upgraded`), which also reads the client's bytes, pulls frames from it whenever the
//! socket took the last one; on that same poll the body takes the ticks its thread's listener
//! handed to it ([`interest`](super::interest): only ticks that move one of its symbols), so a
//! tick wakes one task per interested connection and its frame goes to the socket as shared
//! `Bytes`, encoded once per tick.
//!
//! A session that waits for nothing (no frame queued or being written, no tick waiting) is not
//! woken for a tick at all: the listener calls [`Outbox::send_now`], which writes the client's
//! part of the tick to the connection's [`Wire`] at once; the connection's task, which the
//! body's 101 [`Attach`]es to the outbox, takes over only what the socket did not take.
//!
//! The session queues its own frames (replies, snapshots, pings, the Close) in a short queue the
//! body sends before any tick. The two share an [`Outbox`] on the connection's worker thread.
//!
//! Backpressure: the connection stops polling the body while the socket is full. Ticks then
//! wait in the session's slot; when polling resumes more than `CONFLATE_BACKLOG` behind, the
//! ticks that piled up become one frame with the latest state of their symbols (past the slot's
//! bound, a resync), so a slow client costs a flag per symbol. The body cannot run while it is
//! not polled, so it leaves a timestamp instead: [`Outlet::stalled_since`] is when it last
//! handed out a frame without being asked for the next, and the session, on its own timer,
//! drops a client stuck that way past `ws.slow_client_timeout_ms`.

use std::cell::{RefCell, RefMut};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;
use bytestring::ByteString;
use tokio::time::Instant;

use crate::clock::now_ms;
use crate::feed::{FeedHandle, Tick};
use crate::metrics::SessionCounts;
use crate::session::interest::{self, Deliver, Slot};
use crate::session::outbound::Encoder;
use crate::session::prefetch::prefetch;
use crate::session::subscription::Subscription;
use crate::session::wire::{Link, Socket, Wire};

/// Frames the session may queue ahead of the client (replies, snapshots, control frames); past
/// it the session waits for room, and drops a client that does not make any.
pub const QUEUE_FRAMES: usize = 16;
/// How many ticks a client may be behind the feed and still get each one; past it, what waits
/// is conflated. As much slack as a client used to have in actix-ws's 32-frame queue.
const CONFLATE_BACKLOG: usize = 32;

/// The connection is gone: its task dropped the body.
#[derive(Debug)]
pub struct Gone;

/// What the session and the body share.
pub struct Outbox {
    pub subscription: Subscription,
    /// Everything this connection sent and received, counted where it happens.
    pub counts: SessionCounts,
    feed: FeedHandle,
    /// The session's frames, sent before any tick.
    queue: VecDeque<Queued>,
    /// Encodes text messages as they are written, so a per-connection compressor sees them in
    /// the order the client reads them.
    encoder: Encoder,
    /// Where this thread's listener hands over the ticks the client wants; set once the
    /// client is welcomed.
    slot: Option<Slot>,
    /// The connection's socket, once attached, while the body lives.
    wire: Option<Rc<dyn Link>>,
    /// When the body last handed out a frame, if the connection has not asked for the next
    /// since; or when a frame sent at once did not fit the socket.
    yielded_at: Option<Instant>,
    /// The session queued its last frame: the body ends after the queue.
    closed: bool,
    gone: bool,
    body_waker: Option<Waker>,
    room_waker: Option<Waker>,
}

/// A frame the session queued.
enum Queued {
    /// A text message, encoded (maybe compressed) when it is written.
    Text(ByteString),
    /// A whole frame (control frames: never compressed).
    Frame(Bytes),
}

/// The session's end of the outbox.
pub struct Outlet(Rc<RefCell<Outbox>>);

/// The response body: what the connection's task polls.
pub struct Body {
    outbox: Rc<RefCell<Outbox>>,
}

/// What joins the connection's [`Wire`] to the outbox: the 101 response carries it (in its
/// extensions) to the code that serves the connection.
pub struct Attach(Rc<RefCell<Outbox>>);

impl Body {
    /// What joins the connection's socket to this body's outbox (`Attach::wire`).
    pub fn attach(&self) -> Attach {
        Attach(Rc::clone(&self.outbox))
    }
}

impl Attach {
    /// Ticks may go straight to `wire` from now on, while the body lives.
    pub fn wire<W: Socket + 'static>(self, wire: Rc<RefCell<Wire<W>>>) {
        let mut outbox = self.0.borrow_mut();
        if !outbox.gone {
            outbox.wire = Some(wire);
        }
    }
}

impl Outlet {
    pub fn new(subscription: Subscription, feed: FeedHandle, encoder: Encoder) -> Self {
        Self(Rc::new(RefCell::new(Outbox {
            subscription,
            counts: SessionCounts::default(),
            feed,
            queue: VecDeque::with_capacity(QUEUE_FRAMES),
            encoder,
            slot: None,
            wire: None,
            yielded_at: None,
            closed: false,
            gone: false,
            body_waker: None,
            room_waker: None,
        })))
    }

    /// The response body that sends this outbox.
    pub fn body(&self) -> Body {
        Body {
            outbox: Rc::clone(&self.0),
        }
    }

    /// The subscription and counts. Never held across an await.
    pub fn state(&self) -> RefMut<'_, Outbox> {
        self.0.borrow_mut()
    }

    /// Starts the hot path: from now on the body sends the client its part of every tick
    /// handed to `slot`; what it is handed follows the subscription (`watch_symbols`).
    pub fn follow(&self, slot: Slot) {
        let mut outbox = self.0.borrow_mut();
        slot.watch(&outbox.subscription);
        slot.deliver_to(&self.0);
        outbox.slot = Some(slot);
        outbox.wake_body();
    }

    /// After the subscription changed: the ticks handed to this session follow it. Call it in
    /// the same step as the snapshot the change starts from is taken (`interest`).
    pub fn watch_symbols(&self) {
        let outbox = self.0.borrow();
        if let Some(slot) = &outbox.slot {
            slot.watch(&outbox.subscription);
        }
    }

    /// Queues a control frame; the caller made room first (`has_room` or `room`).
    pub fn push(&self, frame: Bytes) {
        self.queue(Queued::Frame(frame));
    }

    /// Queues a text message; the caller made room first (`has_room` or `room`).
    pub fn push_text(&self, text: ByteString) {
        self.queue(Queued::Text(text));
    }

    fn queue(&self, queued: Queued) {
        let mut outbox = self.0.borrow_mut();
        outbox.queue.push_back(queued);
        outbox.wake_body();
    }

    /// Queues the last frame, if any; the body ends once it is sent.
    pub fn close(&self, last: Option<Bytes>) {
        let mut outbox = self.0.borrow_mut();
        outbox.queue.extend(last.map(Queued::Frame));
        outbox.closed = true;
        outbox.wake_body();
    }

    pub fn has_room(&self, frames: usize) -> Result<bool, Gone> {
        let outbox = self.0.borrow();
        if outbox.gone {
            return Err(Gone);
        }
        Ok(outbox.queue.len() + frames <= QUEUE_FRAMES)
    }

    /// Waits until `frames` more fit in the queue.
    pub async fn room(&self, frames: usize) -> Result<(), Gone> {
        poll_fn(|cx| {
            if self.has_room(frames)? {
                return Poll::Ready(Ok(()));
            }
            self.0.borrow_mut().room_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Since when the connection has not asked for more after taking a frame: the socket
    /// is full because the client does not read.
    pub fn stalled_since(&self) -> Option<Instant> {
        self.0.borrow().yielded_at
    }
}

impl Outbox {
    fn wake_body(&mut self) {
        if let Some(waker) = self.body_waker.take() {
            waker.wake();
        }
    }

    /// The next frame for the client: the session's first, else the ticks that arrived.
    fn next_frame(&mut self, cx: &mut Context<'_>) -> Next {
        if let Some(queued) = self.queue.pop_front() {
            if let Some(waker) = self.room_waker.take() {
                waker.wake();
            }
            return Next::Frame(match queued {
                Queued::Text(text) => self.encoder.text(text.as_bytes()),
                Queued::Frame(frame) => frame,
            });
        }
        if self.closed {
            return Next::End;
        }
        // Until a frame or `Pending`, which leaves the connection's waker with the slot.
        while let Poll::Ready(tick) = self.receive_tick(cx) {
            if let Some(frame) = self.tick_frame(tick.as_ref()) {
                return Next::Frame(frame);
            }
        }
        Next::Wait
    }

    /// The next tick, one at a time while the client keeps up. With more than
    /// `CONFLATE_BACKLOG` ticks behind it, the client is slow: every tick that waits is marked
    /// pending instead (`Ready(None)`), to go out as one frame of the latest quotes.
    fn receive_tick(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arc<Tick>>> {
        let Some(slot) = &self.slot else {
            return Poll::Pending;
        };
        match slot.next(cx.waker()) {
            interest::Next::Tick { tick, behind } if behind <= CONFLATE_BACKLOG => {
                Poll::Ready(Some(tick))
            }
            interest::Next::Tick { tick, .. } => {
                self.subscription.defer_tick(&tick);
                self.drain(cx.waker());
                Poll::Ready(None)
            }
            interest::Next::Lagged => {
                self.counts.resyncs += 1;
                self.subscription.defer_all();
                self.drain(cx.waker());
                Poll::Ready(None)
            }
            // The feed is gone when closed; the session learns it from the feed's status.
            interest::Next::Empty | interest::Next::Closed => Poll::Pending,
        }
    }

    /// Marks every tick waiting in the slot pending.
    fn drain(&mut self, waker: &Waker) {
        let Some(slot) = &self.slot else {
            return;
        };
        loop {
            match slot.next(waker) {
                interest::Next::Tick { tick, .. } => {
                    self.subscription.defer_tick(&tick);
                }
                interest::Next::Lagged => {
                    self.counts.resyncs += 1;
                    self.subscription.defer_all();
                }
                interest::Next::Empty | interest::Next::Closed => return,
            }
        }
    }

    /// One frame for what arrived: the tick's own frame when nothing waits, else the latest
    /// state of every pending symbol (conflation).
    fn tick_frame(&mut self, tick: Option<&Arc<Tick>>) -> Option<Bytes> {
        if let Some(tick) = tick
            && self.subscription.has_pending()
        {
            self.subscription.defer_tick(tick);
        }
        if self.subscription.has_pending() {
            let latest = self.feed.latest();
            let batch = self.subscription.take_pending(&latest)?;
            self.counts.conflated += batch.skipped;
            self.counts.quotes_out += batch.quotes as u64;
            return Some(self.encoder.text(batch.frame.as_bytes()));
        }
        let tick = tick?;
        let frame = match self.subscription.take_whole(tick) {
            Some(quotes) => {
                self.counts.quotes_out += quotes as u64;
                self.encoder.tick(tick)
            }
            None => {
                let encoder = &mut self.encoder;
                let (frame, quotes) = self.subscription.take_tick_with(tick, |wanted| {
                    if wanted.len() == tick.updates.len() {
                        encoder.tick(tick)
                    } else {
                        encoder.quotes(wanted)
                    }
                })?;
                self.counts.quotes_out += quotes as u64;
                frame
            }
        };
        self.counts
            .tick_to_send
            .observe_ms(now_ms().saturating_sub(tick.ts));
        Some(frame)
    }
}

impl Outbox {
    /// Sends the client its part of `tick` now, from the listener, if nothing waits to go
    /// before it: no frame queued or being written, nothing pending. Counted as the body
    /// counts what it hands out. A frame the socket takes in part stays on the wire for the
    /// connection's task (`waker`), which the socket wakes; like a frame the body handed out
    /// and the socket did not take, it starts the slow-client clock.
    ///
    /// Not for a client with a compressor of its own (`per_connection`): deflating is most of
    /// its cost, and it stays on the session's task, between the thread's other tasks, instead
    /// of in the listener's one pass over every session.
    fn send_now(&mut self, tick: &Arc<Tick>, waker: &Waker) -> bool {
        if !self.queue.is_empty()
            || self.closed
            || self.subscription.has_pending()
            || matches!(self.encoder, Encoder::Context(_))
        {
            return false;
        }
        let Some(wire) = self.wire.clone() else {
            return false;
        };
        if !wire.is_idle() {
            return false;
        }
        let Some(frame) = self.tick_frame(Some(tick)) else {
            // Nothing of its own in this tick.
            return true;
        };
        self.counts.frames_out += 1;
        self.counts.bytes_out += frame.len() as u64;
        match wire.send(frame, waker) {
            Poll::Ready(Ok(())) => {}
            Poll::Pending => self.yielded_at = Some(Instant::now()),
            // The connection's task fails on the frame left on the wire.
            Poll::Ready(Err(_)) => waker.wake_by_ref(),
        }
        true
    }
}

impl Deliver for RefCell<Outbox> {
    fn deliver(&self, tick: &Arc<Tick>, waker: &Waker) -> bool {
        self.try_borrow_mut()
            .is_ok_and(|mut outbox| outbox.send_now(tick, waker))
    }

    fn prefetch(&self) {
        let Ok(outbox) = self.try_borrow() else {
            return;
        };
        if let Some(wire) = &outbox.wire {
            prefetch(Rc::as_ptr(wire), size_of_val::<dyn Link>(&**wire));
        }
        outbox.subscription.prefetch();
    }
}

enum Next {
    Frame(Bytes),
    Wait,
    End,
}

impl MessageBody for Body {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let mut outbox = this.outbox.borrow_mut();
        outbox.yielded_at = None;
        match outbox.next_frame(cx) {
            Next::Frame(frame) => {
                outbox.counts.frames_out += 1;
                outbox.counts.bytes_out += frame.len() as u64;
                outbox.yielded_at = Some(Instant::now());
                Poll::Ready(Some(Ok(frame)))
            }
            Next::End => Poll::Ready(None),
            Next::Wait => {
                if !outbox
                    .body_waker
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    outbox.body_waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// A session that ends, even by a panic, ends the body after what it queued.
impl Drop for Outlet {
    fn drop(&mut self) {
        // Unwinding has released any borrow by now; never panic in a drop regardless.
        if let Ok(mut outbox) = self.0.try_borrow_mut() {
            outbox.closed = true;
            outbox.wake_body();
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        let mut outbox = self.outbox.borrow_mut();
        outbox.gone = true;
        outbox.wire = None;
        if let Some(waker) = outbox.room_waker.take() {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;
    use crate::feed::outlets::Outlets;
    use crate::feed::symbols::{SymbolId, Universe};
    use crate::feed::{FeedStatus, Snapshot, Update};
    use crate::session::interest::Interest;
    use crate::session::outbound;
    use crate::session::wire::tests::TestSocket;
    use crate::settings::SymbolSettings;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn update(symbol: SymbolId, seq: u64) -> Update {
        Update {
            symbol,
            seq,
            ts: seq,
            json: format!(r#"{{"s":{symbol},"seq":{seq}}}"#).into(),
            recorded: Default::default(),
        }
    }

    /// A feed of `n` symbols, as one worker thread sees it: the ring and this thread's
    /// interest, which `publish` hands each tick to, as the thread's listener would.
    struct Feed {
        outlets: Outlets,
        handle: FeedHandle,
        ring: tokio::sync::broadcast::Receiver<Arc<Tick>>,
        interest: Rc<Interest>,
    }

    impl Feed {
        fn publish(&mut self, number: u64, updates: Vec<Update>) {
            self.outlets.publish(number, number, 1, updates);
            while let Ok(tick) = self.ring.try_recv() {
                self.interest.dispatch(&tick, self.ring.is_empty());
            }
        }
    }

    fn feed_of(n: usize) -> Feed {
        let settings: Vec<SymbolSettings> = (0..n)
            .map(|i| SymbolSettings {
                symbol: format!("S{i}"),
                name: format!("S{i}"),
                price: 10.0,
                volatility: 0.1,
                drift: 0.0,
            })
            .collect();
        let universe = Arc::new(Universe::new(&settings));
        let first = Snapshot {
            tick: 0,
            quotes: (0..n).map(|id| update(id, 0)).collect(),
            epoch: 1,
        };
        let history = Arc::new(crate::feed::history::History::new(
            Arc::clone(&universe),
            &crate::settings::Settings::defaults().unwrap().history,
        ));
        let (outlets, _, handle) = Outlets::new(first, FeedStatus::Live, universe, history);
        let ring = handle.subscribe_ticks().expect("the feed runs");
        Feed {
            outlets,
            handle,
            ring,
            interest: Rc::new(Interest::new(n)),
        }
    }

    /// A feed of two symbols.
    fn feed() -> Feed {
        feed_of(2)
    }

    /// An outlet following the feed, subscribed to `symbols`, and its body.
    fn follower(feed: &Feed, symbols: &[SymbolId]) -> (Outlet, Body) {
        follower_with(feed, symbols, Encoder::Plain)
    }

    /// The same, its text messages encoded by `encoder`.
    fn follower_with(feed: &Feed, symbols: &[SymbolId], encoder: Encoder) -> (Outlet, Body) {
        let handle = &feed.handle;
        let outlet = Outlet::new(
            Subscription::new(handle.universe().len()),
            handle.clone(),
            encoder,
        );
        outlet
            .state()
            .subscription
            .add(symbols, &handle.latest(), &[]);
        outlet.follow(Interest::slot(&feed.interest));
        let body = outlet.body();
        (outlet, body)
    }

    fn poll(body: &mut Body, wakes: &Arc<Wakes>) -> Poll<Option<Bytes>> {
        let waker = Waker::from(Arc::clone(wakes));
        Pin::new(body)
            .poll_next(&mut Context::from_waker(&waker))
            .map(|frame| frame.map(|f| f.expect("infallible")))
    }

    fn frame(poll: Poll<Option<Bytes>>) -> Bytes {
        match poll {
            Poll::Ready(Some(frame)) => frame,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// A tick two clients want whole is encoded once: both bodies hand out the same buffer.
    #[test]
    fn whole_tick_frame_is_encoded_once_and_shared() {
        let mut feed = feed();
        let (_a, mut a) = follower(&feed, &[0, 1]);
        let (_b, mut b) = follower(&feed, &[0, 1]);
        let wakes = Arc::new(Wakes::default());
        assert!(poll(&mut a, &wakes).is_pending());
        feed.publish(1, vec![update(0, 1), update(1, 1)]);
        let one = frame(poll(&mut a, &wakes));
        let two = frame(poll(&mut b, &wakes));
        assert_eq!(one.as_ptr(), two.as_ptr(), "the same buffer");
        assert_eq!(one[0], 0x81, "FIN + text");
        assert_eq!(
            &one[2..],
            br#"{"type":"quotes","quotes":[{"s":0,"seq":1},{"s":1,"seq":1}]}"#
        );
    }

    /// A tick without this client's symbols leaves the body waiting, so the next tick wakes it.
    #[test]
    fn unwanted_tick_keeps_the_body_registered() {
        let mut feed = feed();
        let (_outlet, mut body) = follower(&feed, &[0]);
        let wakes = Arc::new(Wakes::default());
        assert!(poll(&mut body, &wakes).is_pending());
        feed.publish(1, vec![update(1, 1)]);
        assert!(poll(&mut body, &wakes).is_pending());
        let before = wakes.0.load(Ordering::SeqCst);
        feed.publish(2, vec![update(0, 2)]);
        assert!(
            wakes.0.load(Ordering::SeqCst) > before,
            "woken by the wanted tick"
        );
        assert!(frame(poll(&mut body, &wakes)).ends_with(br#"[{"s":0,"seq":2}]}"#));
    }

    /// The body leaves a timestamp when it hands out a frame, cleared when asked for the next;
    /// the session's frames go before ticks; the body ends after the Close.
    #[test]
    fn stall_timestamp_queue_order_and_end() {
        let mut feed = feed();
        let (outlet, mut body) = follower(&feed, &[0]);
        let wakes = Arc::new(Wakes::default());
        feed.publish(1, vec![update(0, 1)]);
        outlet.push_text("first".into());
        assert_eq!(frame(poll(&mut body, &wakes)), outbound::text("first"));
        assert!(outlet.stalled_since().is_some());
        assert!(frame(poll(&mut body, &wakes)).ends_with(br#"[{"s":0,"seq":1}]}"#));
        assert!(poll(&mut body, &wakes).is_pending());
        assert!(outlet.stalled_since().is_none());
        outlet.close(Some(outbound::close(Some((1001, "bye")))));
        assert_eq!(frame(poll(&mut body, &wakes))[0], 0x88);
        assert_eq!(poll(&mut body, &wakes), Poll::Ready(None));
    }

    /// More than `CONFLATE_BACKLOG` ticks behind, what waits goes out as one frame of the
    /// latest quotes, the skipped updates counted.
    #[test]
    fn backlog_is_conflated() {
        let mut feed = feed();
        let (outlet, mut body) = follower(&feed, &[0, 1]);
        let wakes = Arc::new(Wakes::default());
        let n = CONFLATE_BACKLOG as u64 + 5;
        for seq in 1..=n {
            feed.publish(seq, vec![update(0, seq), update(1, seq)]);
        }
        let conflated = frame(poll(&mut body, &wakes));
        let latest = format!(r#"[{{"s":0,"seq":{n}}},{{"s":1,"seq":{n}}}]}}"#);
        assert!(conflated.ends_with(latest.as_bytes()));
        assert!(
            poll(&mut body, &wakes).is_pending(),
            "nothing older follows"
        );
        assert_eq!(outlet.state().counts.conflated, 2 * (n - 1));
    }

    /// A client watching a few symbols of a large universe is handed only the ticks that move
    /// one of them: a tick of other symbols does not wake it at all; one of its own does, once.
    #[test]
    fn quiet_symbols_wake_nobody() {
        let mut feed = feed_of(40);
        let (outlet, mut body) = follower(&feed, &[3]);
        assert!(
            !outlet.state().subscription.is_dense(),
            "1 of 40: listed by symbol"
        );
        let wakes = Arc::new(Wakes::default());
        assert!(poll(&mut body, &wakes).is_pending());
        for n in 1..=100 {
            feed.publish(n, vec![update(1, n), update(7, n)]);
        }
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "never woken");
        assert!(poll(&mut body, &wakes).is_pending());
        feed.publish(101, vec![update(1, 101), update(3, 101), update(3, 102)]);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "woken once");
        let sent = frame(poll(&mut body, &wakes));
        assert!(sent.ends_with(br#"[{"s":3,"seq":101},{"s":3,"seq":102}]}"#));
        assert_eq!(outlet.state().counts.resyncs, 0, "quiet is not slow");
        // A tick that moves a large part of the universe is handed to everyone: the body
        // finds none of its symbols in it and sends nothing.
        assert!(poll(&mut body, &wakes).is_pending());
        let before = wakes.0.load(Ordering::SeqCst);
        feed.publish(102, (10..20).map(|id| update(id, 102)).collect());
        assert_eq!(wakes.0.load(Ordering::SeqCst), before + 1);
        assert!(poll(&mut body, &wakes).is_pending(), "nothing of its own");
        // Unsubscribed: not even its own symbol's ticks reach it.
        outlet.state().subscription.remove(&[3]);
        outlet.watch_symbols();
        let before = wakes.0.load(Ordering::SeqCst);
        feed.publish(103, vec![update(3, 103)]);
        assert_eq!(wakes.0.load(Ordering::SeqCst), before);
    }

    /// A socket with `room` bytes of room, attached to `body` as its connection's wire.
    fn attach(body: &Body, room: usize) -> Rc<RefCell<Wire<TestSocket>>> {
        let wire = Rc::new(RefCell::new(Wire::new(
            TestSocket::with_room(room),
            Bytes::new(),
        )));
        body.attach().wire(Rc::clone(&wire));
        wire
    }

    /// A session waiting for nothing is sent its ticks by the listener itself, straight to
    /// its socket: its task is never woken, and it counts what it sent.
    #[test]
    fn idle_session_is_sent_ticks_without_a_wake() {
        let mut feed = feed();
        let (outlet, mut body) = follower(&feed, &[0, 1]);
        let wire = attach(&body, 1 << 20);
        let wakes = Arc::new(Wakes::default());
        assert!(poll(&mut body, &wakes).is_pending());
        feed.publish(1, vec![update(0, 1), update(1, 1)]);
        feed.publish(2, vec![update(1, 2)]);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "never woken");
        let mut expected =
            outbound::text(r#"{"type":"quotes","quotes":[{"s":0,"seq":1},{"s":1,"seq":1}]}"#)
                .to_vec();
        expected.extend_from_slice(&outbound::text(
            r#"{"type":"quotes","quotes":[{"s":1,"seq":2}]}"#,
        ));
        assert_eq!(*wire.borrow_mut().io().taken.borrow(), expected);
        assert!(wire.borrow().is_idle());
        let (frames, quotes, bytes) = {
            let counts = &outlet.state().counts;
            (counts.frames_out, counts.quotes_out, counts.bytes_out)
        };
        assert_eq!((frames, quotes, bytes), (2, 3, expected.len() as u64));
        assert!(outlet.stalled_since().is_none());
        assert!(
            poll(&mut body, &wakes).is_pending(),
            "nothing left for the body"
        );
    }

    /// A frame the socket takes in part stays on the wire and starts the slow-client clock;
    /// the next tick waits in the slot (the task woken) until the wire is free, and goes out
    /// after the rest, never interleaved.
    #[test]
    fn full_socket_falls_back_to_the_task() {
        let mut feed = feed();
        let (outlet, mut body) = follower(&feed, &[0]);
        let wire = attach(&body, 10);
        let wakes = Arc::new(Wakes::default());
        assert!(poll(&mut body, &wakes).is_pending());
        feed.publish(1, vec![update(0, 1)]);
        assert!(!wire.borrow().is_idle(), "the rest of the frame waits");
        assert!(outlet.stalled_since().is_some(), "the clock runs");
        assert!(
            wire.borrow_mut().io().waker.borrow().is_some(),
            "the socket wakes the task"
        );
        feed.publish(2, vec![update(0, 2)]);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "handed over, woken");
        // The connection's task: the rest of the frame, then what the body has.
        wire.borrow_mut().io().room.set(1 << 20);
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        assert!(wire.borrow_mut().poll_frame(&mut cx).is_ready());
        let next = frame(poll(&mut body, &wakes));
        assert!(
            outlet.stalled_since().is_some(),
            "handed out, not yet asked again"
        );
        wire.borrow_mut().start(next);
        assert!(wire.borrow_mut().poll_frame(&mut cx).is_ready());
        assert!(poll(&mut body, &wakes).is_pending());
        assert!(outlet.stalled_since().is_none());
        let mut expected =
            outbound::text(r#"{"type":"quotes","quotes":[{"s":0,"seq":1}]}"#).to_vec();
        expected.extend_from_slice(&outbound::text(
            r#"{"type":"quotes","quotes":[{"s":0,"seq":2}]}"#,
        ));
        assert_eq!(*wire.borrow_mut().io().taken.borrow(), expected);
        // Idle again: the next tick goes straight out.
        let before = wakes.0.load(Ordering::SeqCst);
        feed.publish(3, vec![update(0, 3)]);
        assert_eq!(wakes.0.load(Ordering::SeqCst), before);
        assert!(
            wire.borrow_mut()
                .io()
                .taken
                .borrow()
                .ends_with(br#"{"s":0,"seq":3}]}"#)
        );
    }

    /// A frame the session queued goes before any tick: with one waiting, the tick is handed
    /// to the body, which sends them in order.
    #[test]
    fn queued_frame_goes_before_a_tick() {
        let mut feed = feed();
        let (outlet, mut body) = follower(&feed, &[0]);
        let wire = attach(&body, 1 << 20);
        let wakes = Arc::new(Wakes::default());
        assert!(poll(&mut body, &wakes).is_pending());
        outlet.push_text("reply".into());
        feed.publish(1, vec![update(0, 1)]);
        assert!(
            wire.borrow_mut().io().taken.borrow().is_empty(),
            "not sent past the reply"
        );
        assert_eq!(frame(poll(&mut body, &wakes)), outbound::text("reply"));
        assert!(frame(poll(&mut body, &wakes)).ends_with(br#"[{"s":0,"seq":1}]}"#));
        // The connection is gone: nothing is written to it any more.
        drop(body);
        feed.publish(2, vec![update(0, 2)]);
        assert!(wire.borrow_mut().io().taken.borrow().is_empty());
    }

    /// A session listed under its symbols is sent a tick that moves several of them once,
    /// in one frame.
    #[test]
    fn listed_session_is_sent_a_tick_once() {
        let mut feed = feed_of(40);
        let (outlet, mut body) = follower(&feed, &[3, 5]);
        assert!(!outlet.state().subscription.is_dense());
        let wire = attach(&body, 1 << 20);
        let wakes = Arc::new(Wakes::default());
        assert!(poll(&mut body, &wakes).is_pending());
        feed.publish(1, vec![update(3, 1), update(5, 1), update(7, 1)]);
        assert_eq!(outlet.state().counts.frames_out, 1);
        assert_eq!(
            *wire.borrow_mut().io().taken.borrow(),
            outbound::text(r#"{"type":"quotes","quotes":[{"s":3,"seq":1},{"s":5,"seq":1}]}"#)
        );
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
    }

    /// Ticks the listener finds waiting behind each other in the ring (its thread was busy)
    /// are handed to the body, not sent: the session's own backlog rules apply to them.
    #[test]
    fn late_ticks_are_handed_over() {
        let mut feed = feed();
        let (_outlet, mut body) = follower(&feed, &[0]);
        let wire = attach(&body, 1 << 20);
        let wakes = Arc::new(Wakes::default());
        assert!(poll(&mut body, &wakes).is_pending());
        feed.outlets.publish(1, 1, 1, vec![update(0, 1)]);
        feed.outlets.publish(2, 2, 1, vec![update(0, 2)]);
        while let Ok(tick) = feed.ring.try_recv() {
            feed.interest.dispatch(&tick, feed.ring.is_empty());
        }
        assert!(
            wire.borrow_mut().io().taken.borrow().is_empty(),
            "nothing sent"
        );
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "the body is woken");
        assert!(frame(poll(&mut body, &wakes)).ends_with(br#"[{"s":0,"seq":1}]}"#));
        assert!(frame(poll(&mut body, &wakes)).ends_with(br#"[{"s":0,"seq":2}]}"#));
    }

    /// A session with a compressor of its own is never sent a tick by the listener: its
    /// deflate is most of its cost, and runs on its own task, between the thread's others.
    #[test]
    fn per_connection_deflate_stays_on_the_task() {
        let mut feed = feed();
        let (_outlet, mut body) = follower_with(&feed, &[0], Encoder::Context(Box::default()));
        let wire = attach(&body, 1 << 20);
        let wakes = Arc::new(Wakes::default());
        assert!(poll(&mut body, &wakes).is_pending());
        feed.publish(1, vec![update(0, 1)]);
        assert!(wire.borrow_mut().io().taken.borrow().is_empty());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut body, &wakes).is_ready());
    }
}
