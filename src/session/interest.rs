//! Which sessions of this worker thread want a tick: one listener per thread and feed waits on
//! the feed's ring, and hands each tick to the sessions that watch a symbol in it, waking them;
//! a session none of whose symbols moved is not woken at all.
//!
//! A session's [`Slot`] holds the ticks handed to it and not yet sent (its body takes them) and
//! its waker. A session watching a large part of the universe (a by-id index in its
//! `Subscription`) is handed every tick; a smaller one is listed under each of its symbols, so
//! a tick costs the listener one look per moved symbol and one hand-over per interested session.
//!
//! Why a listener, not each session on the ring: a task waiting on the ring is woken by the
//! feed's thread (waking another thread's task takes that thread's queue lock), and waits and
//! re-registers under the ring's lock on every tick; the ring cannot tell who wants what.
//! Here a tick wakes one task per worker from the feed's thread; that task wakes, on its own
//! thread, only the sessions that want the tick.
//!
//! A session that waits for nothing else (nothing queued, nothing being written) is not even
//! woken: the listener sends it its part of the tick itself ([`Deliver`], which the session's
//! outbox implements), straight to its socket, which spares a task wake-up and poll per client
//! and tick. Only when the socket does not take the frame whole is the connection's task woken,
//! by the socket, to write the rest. Going down the list, the listener prefetches the state of
//! the sessions a few places ahead (`hand_all`).
//!
//! No gap, no duplicate: a thread's listener receives from the ring before any of its sessions
//! subscribes (its receiver is made at once, `FeedHandle::subscribe_ticks`), and a session
//! registers its symbols in the same step as it takes the snapshot they start from, so every
//! tick after that snapshot reaches it; one the snapshot already covers is dropped by seq in
//! `Subscription`.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::Waker;

use tokio::sync::broadcast::{self, error::RecvError};

use crate::feed::{FeedHandle, TICK_BUFFER, Tick};
use crate::session::prefetch::prefetch;
use crate::session::subscription::Subscription;

/// A tick that moves more than 1/`DENSE_TICK` of the universe is handed to every session.
const DENSE_TICK: usize = 8;

/// The sessions of one thread following one feed.
pub struct Interest {
    inner: RefCell<Inner>,
}

#[derive(Default)]
struct Inner {
    slots: Vec<Option<SlotState>>,
    free: Vec<u32>,
    /// Sessions handed every tick.
    every_tick: Vec<u32>,
    /// By symbol id: the sessions watching it (of those not handed every tick).
    by_symbol: Vec<Vec<u32>>,
    /// The sessions listed in `by_symbol`.
    listed: Vec<u32>,
    /// The feed has stopped: no tick will come.
    closed: bool,
}

#[derive(Default)]
struct SlotState {
    ticks: Waiting,
    /// More than `TICK_BUFFER` ticks waited: they were dropped, the session resyncs.
    lagged: bool,
    /// The number of the last tick handed over or sent, to do either once per tick however
    /// many of the session's symbols it moves.
    last_tick: Option<u64>,
    waker: Option<Waker>,
    registered: Registered,
    /// Takes a tick at once while the session waits for nothing else.
    direct: Option<Weak<dyn Deliver>>,
    /// The size of what `direct` points to, to prefetch.
    direct_bytes: usize,
}

/// A session that may be sent a tick by the listener itself (`body::Outbox`).
pub trait Deliver {
    /// Sends the session its part of `tick` now, if nothing waits to go before it; false:
    /// hand the tick over as usual. `waker` is the session's waiting connection task's.
    fn deliver(&self, tick: &Arc<Tick>, waker: &Waker) -> bool;

    /// Prefetches what `deliver` will reach through this (its socket): it comes soon.
    fn prefetch(&self) {}
}

/// The ticks waiting for a session, oldest first. The first is kept inline: a session that
/// keeps up has at most one, and so never touches a queue's buffer (a cache line of its own,
/// cold by the time the next tick comes) when a tick is handed over or taken.
#[derive(Default)]
struct Waiting {
    first: Option<Arc<Tick>>,
    /// After `first`; empty while `first` is.
    more: VecDeque<Arc<Tick>>,
}

impl Waiting {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    fn push(&mut self, tick: Arc<Tick>) {
        match self.first {
            None => self.first = Some(tick),
            Some(_) => self.more.push_back(tick),
        }
    }

    fn pop(&mut self) -> Option<Arc<Tick>> {
        let oldest = self.first.take()?;
        if !self.more.is_empty() {
            self.first = self.more.pop_front();
        }
        Some(oldest)
    }

    fn clear(&mut self) {
        self.first = None;
        self.more.clear();
    }
}

#[derive(Default, Clone, PartialEq)]
enum Registered {
    #[default]
    Nothing,
    EveryTick,
    Symbols(Vec<u32>),
}

/// A session's place in its thread's [`Interest`]; leaves it when dropped.
pub struct Slot {
    interest: Rc<Interest>,
    id: u32,
}

/// What a session's body finds in its slot.
pub enum Next {
    Tick {
        tick: Arc<Tick>,
        /// Ticks still waiting behind this one.
        behind: usize,
    },
    /// Ticks were dropped: the session is too far behind.
    Lagged,
    /// Nothing yet; the waker will be woken when something comes.
    Empty,
    /// The feed has stopped.
    Closed,
}

thread_local! {
    /// This thread's interest in each feed, by `FeedHandle::ring_id`.
    static INTERESTS: RefCell<HashMap<usize, Rc<Interest>>> = RefCell::new(HashMap::new());
}

/// A slot for a session of this thread following `feed`; the thread's listener for `feed` is
/// started with the first one. Must run on a `LocalSet` (an actix worker). `None` once the feed
/// has stopped.
pub fn slot(feed: &FeedHandle) -> Option<Slot> {
    let key = feed.ring_id();
    let interest = INTERESTS.with(|interests| {
        let mut interests = interests.borrow_mut();
        if let Some(interest) = interests.get(&key) {
            return Some(Rc::clone(interest));
        }
        let ticks = feed.subscribe_ticks()?;
        let interest = Rc::new(Interest::new(feed.universe().len()));
        // Unconstrained: tokio's cooperative budget (128 operations a poll) would make every
        // socket write past the first 128 of a tick report a full socket, and so wake the
        // connection's task after all. The listener yields after each tick instead (`listen`).
        let listener = listen(ticks, Rc::clone(&interest), key);
        tokio::task::spawn_local(tokio::task::unconstrained(listener));
        interests.insert(key, Rc::clone(&interest));
        Some(interest)
    })?;
    Some(Interest::slot(&interest))
}

/// The thread's listener: hands every tick of the ring to the sessions that want it.
async fn listen(mut ticks: broadcast::Receiver<Arc<Tick>>, interest: Rc<Interest>, key: usize) {
    loop {
        match ticks.recv().await {
            Ok(tick) => {
                // Behind the ring (the thread was busy), ticks are handed over, not sent: each
                // session then finds its backlog in its slot and conflates it (`body`),
                // instead of the listener sending every late tick to everyone.
                let send = ticks.is_empty();
                interest.dispatch(&tick, send);
                // The thread's other tasks (reads, timers, new sessions) run between ticks,
                // even when the next tick is already waiting.
                tokio::task::yield_now().await;
            }
            // The listener itself fell behind (the thread was busy): everyone missed ticks.
            Err(RecvError::Lagged(_)) => interest.lag_all(),
            Err(RecvError::Closed) => break,
        }
    }
    interest.close();
    INTERESTS.with(|interests| interests.borrow_mut().remove(&key));
}

impl Interest {
    pub fn new(universe_len: usize) -> Self {
        Self {
            inner: RefCell::new(Inner {
                by_symbol: vec![Vec::new(); universe_len],
                ..Inner::default()
            }),
        }
    }

    /// A new, empty slot.
    pub fn slot(this: &Rc<Self>) -> Slot {
        let mut inner = this.inner.borrow_mut();
        let state = Some(SlotState::default());
        let id = match inner.free.pop() {
            Some(id) => {
                inner.slots[id as usize] = state;
                id
            }
            None => {
                inner.slots.push(state);
                (inner.slots.len() - 1) as u32
            }
        };
        Slot {
            interest: Rc::clone(this),
            id,
        }
    }

    /// Hands `tick` to every session that watches one of its symbols, and wakes them. A tick
    /// that moves a large part of the universe goes to every session at once: looking up
    /// each moved symbol's watchers would cost more than what it spares (each session finds
    /// its own symbols in the tick's index, and few would not find any).
    /// With `send`, a session that waits for nothing is sent the tick at once ([`Deliver`]).
    pub fn dispatch(&self, tick: &Arc<Tick>, send: bool) {
        let mut inner = self.inner.borrow_mut();
        let Inner {
            slots,
            every_tick,
            by_symbol,
            listed,
            ..
        } = &mut *inner;
        hand_all(slots, every_tick, tick, send);
        if listed.is_empty() {
            return;
        }
        if tick.updates.len() * DENSE_TICK > by_symbol.len() {
            hand_all(slots, listed, tick, send);
            return;
        }
        for u in &tick.updates {
            for &id in by_symbol.get(u.symbol).into_iter().flatten() {
                hand(slots, id, tick, send);
            }
        }
    }

    fn lag_all(&self) {
        for state in self.inner.borrow_mut().slots.iter_mut().flatten() {
            state.ticks.clear();
            state.lagged = true;
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
    }

    fn close(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.closed = true;
        for state in inner.slots.iter_mut().flatten() {
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
    }
}

/// [`hand`]s `tick` to each of `ids` in turn, prefetching the state of the ones a few places
/// ahead: a session's slot three places ahead, its outbox two ahead (through its slot), its
/// socket one ahead (through its outbox), so that each step's cache misses overlap the system
/// calls before it instead of each waiting for the last (`prefetch`).
fn hand_all(slots: &mut [Option<SlotState>], ids: &[u32], tick: &Arc<Tick>, send: bool) {
    for (k, &id) in ids.iter().enumerate() {
        if let Some(&later) = ids.get(k + 3) {
            let slot = slots.as_ptr().wrapping_add(later as usize);
            prefetch(slot, size_of::<Option<SlotState>>());
        }
        if let Some(state) = slot_at(slots, ids, k + 2)
            && let Some(direct) = &state.direct
        {
            // The allocation's counts (two words) before the value; a hint, so a wrong guess
            // of the layout would cost a wasted prefetch, nothing more.
            let counts = 2 * size_of::<usize>();
            let start = direct.as_ptr().cast::<u8>().wrapping_sub(counts);
            prefetch(start, counts + state.direct_bytes);
        }
        if let Some(state) = slot_at(slots, ids, k + 1)
            && let Some(direct) = state.direct.as_ref().and_then(Weak::upgrade)
        {
            direct.prefetch();
        }
        hand(slots, id, tick, send);
    }
}

/// The state of the slot `ids[k]`.
fn slot_at<'a>(slots: &'a [Option<SlotState>], ids: &[u32], k: usize) -> Option<&'a SlotState> {
    let &id = ids.get(k)?;
    slots.get(id as usize)?.as_ref()
}

/// Queues `tick` for slot `id` (once, however many of its symbols moved) and wakes it; with
/// `send`, sends it instead if the session waits for nothing else.
fn hand(slots: &mut [Option<SlotState>], id: u32, tick: &Arc<Tick>, send: bool) {
    let Some(state) = slots.get_mut(id as usize).and_then(Option::as_mut) else {
        return;
    };
    // Once per tick: a tick's numbers rise (`Subscription` relies on it too).
    if state.last_tick == Some(tick.number) {
        return;
    }
    state.last_tick = Some(tick.number);
    if send
        && state.ticks.len() == 0
        && !state.lagged
        && let Some(waker) = &state.waker
        && let Some(direct) = state.direct.as_ref().and_then(Weak::upgrade)
        && direct.deliver(tick, waker)
    {
        return;
    }
    if state.ticks.len() >= TICK_BUFFER {
        state.ticks.clear();
        state.lagged = true;
    } else if !state.lagged {
        state.ticks.push(Arc::clone(tick));
    }
    if let Some(waker) = state.waker.take() {
        waker.wake();
    }
}

impl Slot {
    /// Registers what `subscription` watches: every tick for a large subscription, its
    /// symbols' ticks for a small one, none for an empty one.
    pub fn watch(&self, subscription: &Subscription) {
        let wanted = if subscription.len() == 0 {
            Registered::Nothing
        } else if subscription.is_dense() {
            Registered::EveryTick
        } else {
            Registered::Symbols(subscription.symbols().map(|id| id as u32).collect())
        };
        let mut inner = self.interest.inner.borrow_mut();
        let inner = &mut *inner;
        let Some(state) = inner.slots[self.id as usize].as_mut() else {
            return;
        };
        if state.registered == wanted {
            return;
        }
        let before = std::mem::replace(&mut state.registered, wanted.clone());
        unlist(inner, self.id, &before);
        match wanted {
            Registered::Nothing => {}
            Registered::EveryTick => inner.every_tick.push(self.id),
            Registered::Symbols(ids) => {
                inner.listed.push(self.id);
                for id in ids {
                    inner.by_symbol[id as usize].push(self.id);
                }
            }
        }
    }

    /// From now on ticks may go to `direct` at once while its session waits for nothing else.
    pub fn deliver_to<D: Deliver + 'static>(&self, direct: &Rc<D>) {
        let mut inner = self.interest.inner.borrow_mut();
        if let Some(state) = inner.slots[self.id as usize].as_mut() {
            state.direct = Some(Rc::downgrade(direct) as Weak<dyn Deliver>);
            state.direct_bytes = size_of::<D>();
        }
    }

    /// The next tick handed to this session, or why there is none; with `Empty`, `waker` is
    /// woken when one comes.
    pub fn next(&self, waker: &Waker) -> Next {
        let mut inner = self.interest.inner.borrow_mut();
        let closed = inner.closed;
        let Some(state) = inner.slots[self.id as usize].as_mut() else {
            return Next::Closed;
        };
        if std::mem::take(&mut state.lagged) {
            return Next::Lagged;
        }
        if let Some(tick) = state.ticks.pop() {
            let behind = state.ticks.len();
            return Next::Tick { tick, behind };
        }
        if closed {
            return Next::Closed;
        }
        match &state.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => state.waker = Some(waker.clone()),
        }
        Next::Empty
    }
}

/// Takes slot `id` off the lists `registered` put it on.
fn unlist(inner: &mut Inner, id: u32, registered: &Registered) {
    match registered {
        Registered::Nothing => {}
        Registered::EveryTick => inner.every_tick.retain(|&s| s != id),
        Registered::Symbols(ids) => {
            inner.listed.retain(|&s| s != id);
            for &symbol in ids {
                inner.by_symbol[symbol as usize].retain(|&s| s != id);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.interest.inner.borrow_mut();
        let inner = &mut *inner;
        if let Some(state) = inner.slots[self.id as usize].take() {
            unlist(inner, self.id, &state.registered);
            inner.free.push(self.id);
        }
    }
}
